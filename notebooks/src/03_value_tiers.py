# %% tags=["parameters"]
workspace = "demo-engagement"
run_dir = ""
language = "zh"
as_of = "2022-12"
seed = 20221231

# %%
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from analysis.context import StageContext
from analysis.catalog import load_yaml
from analysis import value, pricing, style
from analysis.value_data import ValueAssumptions, score_customers, loan_offers, loan_eligibility, driver_label, tier_growth_evidence
from analysis.privacy import mask_value
from analysis.report import show_markdown, show_table, show_figure, show_kpis
from analysis.xlsx import write_sheets

ctx = StageContext.open(workspace, run_dir, language)
style.setup_matplotlib()
T, L = ctx.t, ("label_zh" if language == "zh" else "label_en")
p = ctx.config.stages.value_tiers
scheme = value.TierScheme.from_catalog(load_yaml("tiers.yaml", ctx.workspace.catalog))
pricing_doc = load_yaml("pricing.yaml", ctx.workspace.catalog)
policy = pricing.PricingPolicy.from_catalog(pricing_doc["policy"])
assumptions = ValueAssumptions(**pricing_doc.get("assumptions", {}))
ftp = value.FtpCurve(deposit_ftp=p.ftp.deposit_ftp, loan_ftp=p.ftp.loan_ftp)

frame, model, thresholds = score_customers(ctx.con, ctx.as_of, p.window_months, assumptions=assumptions, ftp=ftp,
                                           scheme=scheme, quantile=p.quantile)
summary = value.tier_summary(frame)
g = value.gini(frame["current_value"])
top20 = value.top_value_share(frame["current_value"], 0.2)
tier_labels = {t.id: getattr(t, L) for t in scheme.tiers}

# Stability: the same procedure six months earlier, then who stayed in the same tier.
earlier = str(pd.Period(ctx.as_of, "M") - 6)
frame_6, _, _ = score_customers(ctx.con, earlier, p.window_months, assumptions=assumptions, ftp=ftp,
                                scheme=scheme, quantile=p.quantile)
migration = value.migration_matrix(frame_6[["customer_id", "tier"]], frame[["customer_id", "tier"]])

# Backtest: customers ranked high-potential a year ago — did they grow more by t+6 and t+12?
growth, t0 = tier_growth_evidence(ctx.con, ctx.as_of, assumptions=assumptions, ftp=ftp, scheme=scheme,
                                   quantile=p.quantile)

# Pricing (一户一价) on the pilot loan product.
guide = float(ctx.con.execute("SELECT guide_rate FROM products WHERE product_id = ?", [p.pricing_product]).fetchone()[0])
priced = pricing.price_customers(frame, policy, guide, loan_ftp=ftp.loan_ftp)
offers = loan_offers(ctx.con)
elasticity = pricing.estimate_takeup_elasticity(offers) if offers is not None and len(offers) >= 100 else None
# Only customers the bank may lend to are priced (no past due, no impaired loan, no abnormal listing /
# penalty / lawsuit in 12 months); those whose floor is above the guide rate are risk-priced at the
# floor and reported apart, so the discount figures describe the discount alone.
eligibility = loan_eligibility(ctx.con, ctx.as_of)
sim_frame = frame.merge(eligibility, on="customer_id", how="left")
sim_frame = sim_frame.assign(eligible=sim_frame["eligible"].fillna(False).astype(bool),
                             loan_amount=sim_frame["max_loan_amount"].where(sim_frame["max_loan_amount"] > 0, assumptions.expected_loan_amount))
simulation = pricing.simulate_policy(sim_frame, policy, elasticity, guide, loan_ftp=ftp.loan_ftp, eligible_col="eligible") if elasticity else None
sensitivity = pricing.sensitivity_table(sim_frame, policy, elasticity, guide, loan_ftp=ftp.loan_ftp, eligible_col="eligible") if elasticity else None
strategic = summary[summary["tier"] == "strategic"].iloc[0] if (summary["tier"] == "strategic").any() else None
top_tier_share = float(summary.loc[summary["tier"].isin(["strategic", "core"]), "value_share"].sum())
n_ineligible = {k: int(sim_frame[k].fillna(False).sum()) for k in ("overdue", "impaired", "registry_risk")}

# %%
fmt_m = lambda v: style.fmt_money(v, language)
sim = simulation
lines_zh = [f"## 结论\n",
            f"- **价值高度集中**: 前 20% 的客户贡献了 **{style.fmt_pct(top20)}** 的年化综合贡献 (基尼系数 {g:.2f}); 战略与核心两层合计贡献 {style.fmt_pct(top_tier_share)}。",
            f"- **战略客户 {int(strategic.customers):,} 户** (占 {style.fmt_pct(strategic.share)}), 贡献 {style.fmt_pct(strategic.value_share)} 的当前价值, 户均 {fmt_m(strategic.avg_current)}, 户均提升空间 {fmt_m(strategic.avg_headroom)}; 建议支行行长挂点、专属客户经理服务。贡献最高的 5 户见下表。" if strategic is not None else "",
            f"- **潜力识别经回测验证**: {t0} 被识别为高潜力的客户, 12 个月后年化贡献平均多增长 **{fmt_m(growth.iloc[-1]['difference'])}** (95% 区间 {fmt_m(growth.iloc[-1]['ci_low'])} 至 {fmt_m(growth.iloc[-1]['ci_high'])})。",
            (f"- **一户一价的代价与收益**: {p.pricing_product} 可授信客户 {sim.customers:,} 户 (另 {sim.ineligible_customers:,} 户因逾期、不良或涉诉处罚不予营销)。其中 {sim.discounted_customers:,} 户按层级与贡献度在指导利率 {style.fmt_rate(guide)} 基础上平均优惠 **{sim.avg_discount_bp:.0f} bp**: "
             f"对本会按指导利率贷款的客户年让利 **{fmt_m(sim.nii_cost)}**, 因降价预计新增贷款 **{sim.extra_customers:,.0f} 户、{fmt_m(sim.extra_volume)}**, 带来利息净收入 {fmt_m(sim.extra_nii)}; 净利息收入净影响 **{fmt_m(sim.net_nii_effect)}**, 扣除运营成本与预期损失后 {fmt_m(sim.net_risk_adjusted_effect)}。"
             f"另有 {sim.risk_priced_customers:,} 户价格底线高于指导利率, 按底线风险定价 (平均高于指导利率 {sim.risk_priced_avg_premium_bp:.0f} bp), 不计入优惠。" if sim else "- 一户一价: 行内未提供历史报价数据, 无法估计价格弹性。")]
lines_en = [f"## Conclusions\n",
            f"- **Value is concentrated**: the top 20% of customers earn **{style.fmt_pct(top20)}** of annual contribution (Gini {g:.2f}); the strategic and core tiers together earn {style.fmt_pct(top_tier_share)}.",
            f"- **{int(strategic.customers):,} strategic customers** ({style.fmt_pct(strategic.share)} of customers) earn {style.fmt_pct(strategic.value_share)} of current value, {fmt_m(strategic.avg_current)} each on average, with {fmt_m(strategic.avg_headroom)} headroom each; they get a sub-branch head sponsor and a dedicated RM. The five largest are listed below." if strategic is not None else "",
            f"- **Potential is proven by backtest**: customers ranked high-potential in {t0} grew their annual contribution by **{fmt_m(growth.iloc[-1]['difference'])}** more over 12 months (95% CI {fmt_m(growth.iloc[-1]['ci_low'])} to {fmt_m(growth.iloc[-1]['ci_high'])}).",
            (f"- **What per-customer pricing costs and earns**: {sim.customers:,} customers may be offered {p.pricing_product} ({sim.ineligible_customers:,} more are excluded: past due, impaired, or listed / penalised / sued). {sim.discounted_customers:,} of them get on average **{sim.avg_discount_bp:.0f} bp** off the {style.fmt_rate(guide)} guide rate by tier and contribution: "
             f"the interest given away to those who would have borrowed at the guide rate is **{fmt_m(sim.nii_cost)}** a year; the lower price is expected to add **{sim.extra_customers:,.0f} loans, {fmt_m(sim.extra_volume)}**, earning {fmt_m(sim.extra_nii)} net interest; net effect on net interest income **{fmt_m(sim.net_nii_effect)}**, {fmt_m(sim.net_risk_adjusted_effect)} after operating cost and expected loss. "
             f"The other {sim.risk_priced_customers:,} have a floor above the guide rate and are risk-priced at the floor (on average {sim.risk_priced_avg_premium_bp:.0f} bp above guide), outside the discount figures." if sim else "- Pricing: the bank supplied no historical offers, so price elasticity cannot be estimated.")]
show_markdown("\n".join(l for l in (lines_zh if language == "zh" else lines_en) if l))
if strategic is not None:
    top = frame[frame["tier"] == "strategic"].nlargest(5, "current_value")
    top = top.merge(ctx.con.execute("SELECT customer_id, customer_name FROM customers").df(), on="customer_id", how="left")
    if simulation:
        top = top.merge(simulation.detail[["customer_id", "offered_rate", "population"]], on="customer_id", how="left")
    ex = pd.DataFrame({T("客户", "Customer"): [mask_value(v, "org_name") for v in top["customer_name"]] if language == "zh" else top["customer_id"],
                       T("年化贡献", "Annual contribution"): top["current_value"], T("潜在价值", "Potential"): top["potential_value"],
                       T("提升空间", "Headroom"): top["headroom"], T("存款日均", "Deposit daily avg"): top["deposit_avg_balance"],
                       T("贷款日均", "Loan daily avg"): top["loan_avg_balance"]})
    if simulation:
        ex[T("一户一价利率", "Offered rate")] = [style.fmt_rate(r) if pop != "ineligible" else T("不予营销", "not offered")
                                           for r, pop in zip(top["offered_rate"], top["population"])]
    show_table(ex, formats={c: fmt_m for c in ex.columns[1:6]})

# %%
show_markdown(T("## 客户价值分层", "## Value tiers"))
tab = summary.assign(label=summary[L])[["label", "customers", "share", "value_share", "avg_current", "avg_headroom"]]
show_table(tab.rename(columns={"label": T("层级", "Tier"), "customers": T("客户数", "Customers"), "share": T("客户占比", "Share"),
                               "value_share": T("价值占比", "Value share"), "avg_current": T("户均当前价值", "Avg current value"),
                               "avg_headroom": T("户均提升空间", "Avg headroom")}),
           formats={T("客户占比", "Share"): style.fmt_pct, T("价值占比", "Value share"): style.fmt_pct,
                    T("户均当前价值", "Avg current value"): fmt_m, T("户均提升空间", "Avg headroom"): fmt_m,
                    T("客户数", "Customers"): lambda v: f"{int(v):,}"})

# %%
lc = value.lorenz_curve(frame["current_value"], points=101)
fig, ax = plt.subplots(figsize=(6.5, 4.2))
ax.plot(lc.iloc[:, 0], lc.iloc[:, 1], color=style.PALETTE["navy"], lw=2)
ax.plot([0, 1], [0, 1], color=style.PALETTE["grey"], ls="--", lw=1)
ax.set_xlabel(T("客户累计占比 (按贡献由低到高)", "Cumulative share of customers (by contribution)"))
ax.set_ylabel(T("贡献累计占比", "Cumulative share of contribution"))
style.chart_title(ax, T(f"前 20% 客户贡献 {style.fmt_pct(top20)} 的价值", f"The top 20% of customers earn {style.fmt_pct(top20)} of value"),
                  T("行内数据, 价值模型", "Bank data, value model"), ctx.as_of, language)
show_figure(fig)

# %%
show_markdown(T("## 当前价值构成", "## What current value is made of") + "\n\n" + T(
    f"年化综合贡献 = 存款利差 (FTP {style.fmt_rate(ftp.deposit_ftp)} − 付息率) × 日均 + 贷款利差 (执行利率 − FTP {style.fmt_rate(ftp.loan_ftp)}) × 日均 − 预期损失 (PD × LGD × 贷款日均) + 中间业务收入。FTP、PD、LGD 与收费为设计假设, 待行内确认。",
    f"Annual contribution = deposit spread (FTP {style.fmt_rate(ftp.deposit_ftp)} − paid rate) × daily average + loan spread (executed rate − FTP {style.fmt_rate(ftp.loan_ftp)}) × daily average − expected loss (PD × LGD × loan daily average) + fee income. FTP, PD, LGD and fees are assumptions until the bank confirms them."))
comp = frame[["deposit_contribution", "loan_contribution", "expected_loss", "fee_income", "current_value"]].sum()
show_table(pd.DataFrame({T("组成", "Component"): [T("存款贡献", "Deposit spread"), T("贷款贡献", "Loan spread"), T("预期损失", "Expected loss"),
                                                   T("中间业务收入", "Fee income"), T("合计", "Total")],
                         T("年化金额", "Annual amount"): [comp["deposit_contribution"], comp["loan_contribution"], -comp["expected_loss"],
                                                       comp["fee_income"], comp["current_value"]]}),
           formats={T("年化金额", "Annual amount"): fmt_m})

# %%
show_markdown(T(f"## 潜在价值模型 ({p.quantile:.0%} 分位数回归)", f"## Potential value model ({p.quantile:.0%} quantile regression)") + "\n\n" + T(
    f"潜在价值 = 同类客户中处于前 {1 - p.quantile:.0%} 者已实现的价值水平。模型伪 R² (Koenker–Machado) 为 {model.pseudo_r2:.2f}, 样本 {model.n:,} 户。下表为显著的驱动因素 (系数为对数尺度)。",
    f"Potential value = what similar customers in the top {1 - p.quantile:.0%} already achieve. Pseudo R² (Koenker–Machado) {model.pseudo_r2:.2f} on {model.n:,} customers. Significant drivers below (coefficients on the log scale)."))
params = model.params.reset_index(names="term")
params = params[(params["term"] != "const") & (params["p_value"] < 0.05)].sort_values("coef", key=abs, ascending=False).head(12).reset_index(drop=True)
params["term"] = [driver_label(t, language) for t in params["term"]]
show_table(params[["term", "coef", "ci_low", "ci_high", "p_value"]].rename(columns={"term": T("驱动因素", "Driver"), "coef": T("系数", "Coefficient"),
           "ci_low": T("95%下限", "95% low"), "ci_high": T("95%上限", "95% high"), "p_value": "p"}),
           formats={T("系数", "Coefficient"): "{:.3f}".format, T("95%下限", "95% low"): "{:.3f}".format,
                    T("95%上限", "95% high"): "{:.3f}".format, "p": lambda v: "<0.001" if v < 0.001 else f"{v:.3f}"})

# %%
show_markdown(T("## 分层校准证据", "## Calibration evidence") + "\n\n" + T(
    f"- 阈值: 当前价值按 {', '.join(f'{q:.0%}' for q in (thresholds.current_quantiles or ()))} 分位切分 ({', '.join(fmt_m(v) for v in thresholds.current_thresholds)}); 提升空间按同样分位切分 ({', '.join(fmt_m(v) for v in thresholds.potential_thresholds)})。\n"
    f"- 稳定性: 与 6 个月前 ({earlier}) 相比, **{style.fmt_pct(migration.share_staying)}** 的客户保持在同一层级。\n"
    f"- 回测: 见下表, 差值为高潜力客户与其他客户平均增长之差, 区间为 Welch 95% 置信区间。",
    f"- Thresholds: current value cut at the {', '.join(f'{q:.0%}' for q in (thresholds.current_quantiles or ()))} quantiles ({', '.join(fmt_m(v) for v in thresholds.current_thresholds)}); headroom at the same quantiles ({', '.join(fmt_m(v) for v in thresholds.potential_thresholds)}).\n"
    f"- Stability: **{style.fmt_pct(migration.share_staying)}** of customers are in the same tier as six months earlier ({earlier}).\n"
    f"- Backtest: below; the difference is the high-potential group's mean growth minus the others', with a Welch 95% interval."))
gt = growth.assign(growth=growth["growth"].map({"growth_6m": T("6 个月", "6 months"), "growth_12m": T("12 个月", "12 months")}))
gt = gt[["growth", "n_high", "n_rest", "mean_high", "mean_rest", "difference", "ci_low", "ci_high", "p_value"]].rename(columns={
    "growth": T("期限", "Horizon"), "n_high": T("高潜力户数", "High-potential"), "n_rest": T("其他户数", "Others"),
    "mean_high": T("高潜力户均增长", "Mean growth, high"), "mean_rest": T("其他户均增长", "Mean growth, others"),
    "difference": T("差值", "Difference"), "ci_low": T("95%下限", "95% low"), "ci_high": T("95%上限", "95% high"), "p_value": "p"})
show_table(gt, formats={**{c: fmt_m for c in gt.columns[3:8]}, "p": lambda v: "<0.001" if v < 0.001 else f"{v:.3f}",
                        gt.columns[1]: lambda v: f"{int(v):,}", gt.columns[2]: lambda v: f"{int(v):,}"})

# %%
if simulation:
    show_markdown(T("## 一户一价定价政策", "## Per-customer pricing policy") + "\n\n" + T(
        f"执行利率 = max(指导利率 − 层级优惠 − 贡献度优惠, 价格底线); 底线 = FTP + 运营成本 {style.fmt_pct(policy.operating_cost_rate, 2)} + 预期损失 + 资本成本 (目标 RAROC {style.fmt_pct(policy.hurdle_raroc)}), 且不低于 LPR {style.fmt_rate(policy.lpr_1y)}。"
        f"价格弹性由 {elasticity.n:,} 笔历史报价的 logistic 回归估计: 报价每高于指导利率 1 bp, 接受概率平均下降 {abs(elasticity.marginal_effect_per_bp) * 100:.2f} 个百分点 (95% 区间 {abs(elasticity.marginal_effect_ci_high) * 100:.2f}–{abs(elasticity.marginal_effect_ci_low) * 100:.2f})。",
        f"Offered rate = max(guide − tier discount − contribution discount, floor); floor = FTP + operating cost {style.fmt_pct(policy.operating_cost_rate, 2)} + expected loss + capital charge at a {style.fmt_pct(policy.hurdle_raroc)} hurdle RAROC, and not below LPR {style.fmt_rate(policy.lpr_1y)}. "
        f"Price elasticity from a logistic regression on {elasticity.n:,} historical offers: each bp above the guide rate lowers acceptance by {abs(elasticity.marginal_effect_per_bp) * 100:.2f} points on average (95% CI {abs(elasticity.marginal_effect_ci_high) * 100:.2f}–{abs(elasticity.marginal_effect_ci_low) * 100:.2f})."))
    pop_labels = {"discount": T("优惠定价", "Discounted"), "risk_priced": T("风险定价 (高于指导利率)", "Risk-priced above guide"),
                  "ineligible": T("不予营销", "Not offered")}
    det = simulation.detail
    by_pop = det.groupby("population").agg(customers=("customer_id", "count"), granted_bp=("granted_bp", "mean"),
                                            offered=("offered_rate", "mean"), expected_loans=("takeup_offered", "sum"), nii_cost=("nii_cost", "sum"),
                                            extra=("extra_takeup", "sum"), extra_volume=("extra_volume", "sum")).reset_index()
    by_pop = by_pop.set_index("population").reindex(["discount", "risk_priced", "ineligible"]).dropna(how="all").reset_index()
    # the guide rate is no price for the risk-priced, so "given away" and "extra" are discount-only figures
    for c in ("granted_bp", "offered", "expected_loans", "nii_cost", "extra", "extra_volume"):
        by_pop.loc[by_pop["population"] == "ineligible", c] = np.nan
    for c in ("nii_cost", "extra", "extra_volume"):
        by_pop.loc[by_pop["population"] == "risk_priced", c] = np.nan
    by_pop["population"] = by_pop["population"].map(pop_labels)
    dash = lambda f: (lambda v: "—" if pd.isna(v) else f(v))
    show_markdown(T(f"定价人群: 逾期 {n_ineligible['overdue']:,} 户、不良 (次级及以下) {n_ineligible['impaired']:,} 户、近 12 个月经营异常/处罚/涉诉 {n_ineligible['registry_risk']:,} 户不予营销 (可重叠); 价格底线高于指导利率的客户按底线定价, 单列为风险定价 (指导利率并非可放贷的价格, 故不计让利与新增), 预计贷款户数 {simulation.risk_priced_expected_loans:,.0f}。",
                    f"Who is priced: {n_ineligible['overdue']:,} past-due, {n_ineligible['impaired']:,} impaired (substandard or worse) and {n_ineligible['registry_risk']:,} listed / penalised / sued customers (12 months; may overlap) are not offered a loan. Customers whose floor is above the guide rate are priced at the floor and shown apart as risk-priced: the guide rate is no price the bank would lend to them at, so no interest is given away and no volume added for them (expected loans {simulation.risk_priced_expected_loans:,.0f})."))
    show_table(by_pop.rename(columns={"population": T("人群", "Population"), "customers": T("客户数", "Customers"), "granted_bp": T("平均低于指导利率(bp)", "Avg below guide (bp)"),
                                      "offered": T("平均执行利率", "Avg offered rate"), "expected_loans": T("预计贷款户数", "Expected loans"),
                                      "nii_cost": T("让利成本", "NII given away"),
                                      "extra": T("新增贷款户数", "Extra loans"), "extra_volume": T("新增贷款额", "Extra volume")}),
               formats={T("平均低于指导利率(bp)", "Avg below guide (bp)"): dash("{:.0f}".format), T("平均执行利率", "Avg offered rate"): dash(style.fmt_rate),
                        T("让利成本", "NII given away"): dash(fmt_m), T("新增贷款户数", "Extra loans"): dash("{:,.0f}".format),
                        T("新增贷款额", "Extra volume"): dash(fmt_m), T("客户数", "Customers"): lambda v: f"{int(v):,}",
                        T("预计贷款户数", "Expected loans"): dash("{:,.0f}".format)})
    disc = det[det["population"] == "discount"]
    by_tier = disc.groupby("tier").agg(customers=("customer_id", "count"), discount_bp=("granted_bp", "mean"),
                                       offered=("offered_rate", "mean"), floor_binding=("floor_binding", "mean")).reset_index()
    order = {t.id: i for i, t in enumerate(scheme.tiers)}
    by_tier = by_tier.sort_values("tier", key=lambda c: c.map(order)).reset_index(drop=True)
    by_tier["tier"] = by_tier["tier"].map(tier_labels)
    show_markdown(T("优惠定价客户按层级:", "Discounted customers by tier:"))
    show_table(by_tier.rename(columns={"tier": T("层级", "Tier"), "customers": T("客户数", "Customers"), "discount_bp": T("平均优惠(bp)", "Avg discount (bp)"),
                                       "offered": T("平均执行利率", "Avg offered rate"), "floor_binding": T("触及底线占比", "At floor")}),
               formats={T("平均优惠(bp)", "Avg discount (bp)"): "{:.0f}".format, T("平均执行利率", "Avg offered rate"): style.fmt_rate,
                        T("触及底线占比", "At floor"): style.fmt_pct})
    show_markdown(T("敏感性分析 (优惠力度 × 弹性 ±1 标准误):", "Sensitivity (discount scale × elasticity ± 1 SE):"))
    sens = sensitivity[["discount_scale", "se_multiplier", "avg_discount_bp", "nii_cost", "extra_customers", "extra_volume", "net_nii_effect", "net_risk_adjusted_effect"]]
    show_table(sens.rename(columns={"discount_scale": T("优惠倍数", "Discount scale"), "se_multiplier": T("弹性偏移(SE)", "Elasticity shift (SE)"),
                                    "avg_discount_bp": T("平均优惠(bp)", "Avg discount (bp)"),
                                    "nii_cost": T("让利成本", "NII cost"), "extra_customers": T("新增户数", "Extra loans"),
                                    "extra_volume": T("新增贷款", "Extra volume"), "net_nii_effect": T("净利息影响", "Net NII effect"),
                                    "net_risk_adjusted_effect": T("风险调整后", "Risk-adjusted")}),
               formats={T("让利成本", "NII cost"): fmt_m, T("新增贷款", "Extra volume"): fmt_m, T("净利息影响", "Net NII effect"): fmt_m,
                        T("风险调整后", "Risk-adjusted"): fmt_m, T("平均优惠(bp)", "Avg discount (bp)"): "{:.0f}".format,
                        T("新增户数", "Extra loans"): "{:,.0f}".format})

# %%
names = ctx.con.execute("SELECT customer_id, customer_name FROM customers").df()
price_sheet = priced.merge(names, on="customer_id", how="left")
price_sheet = pd.DataFrame({
    T("客户号", "Customer ID"): price_sheet["customer_id"],
    T("客户名称(脱敏)", "Customer (masked)"): [mask_value(v, "org_name") for v in price_sheet["customer_name"]],
    T("层级", "Tier"): price_sheet["tier"].map(tier_labels),
    T("年化贡献(元)", "Annual contribution (CNY)"): price_sheet["current_value"].round(0),
    T("指导利率", "Guide rate"): price_sheet["guide_rate"], T("优惠(bp)", "Discount (bp)"): price_sheet["discount_bp"],
    T("价格底线", "Floor rate"): price_sheet["floor_rate"].round(6), T("执行利率", "Offered rate"): price_sheet["offered_rate"].round(6),
    T("审批权限", "Approval"): price_sheet["approval_level"],
})
if simulation:
    pop = simulation.detail.set_index("customer_id")["population"]
    price_sheet[T("定价人群", "Pricing population")] = price_sheet[T("客户号", "Customer ID")].map(pop).map(
        {"discount": T("优惠定价", "discounted"), "risk_priced": T("风险定价", "risk-priced above guide"), "ineligible": T("不予营销", "not offered")})
write_sheets(ctx.deliverable("pricing_table.xlsx"), {T("一户一价表", "Price table"): price_sheet},
             cover_title=T(f"{ctx.bank_name} 一户一价定价表", f"{ctx.bank_name} per-customer price table"),
             cover_lines=[T(f"数据截至 {ctx.as_of}; 产品 {p.pricing_product}, 指导利率 {style.fmt_rate(guide)}。执行利率低于审批权限的须按审批层级报批。",
                            f"Data as of {ctx.as_of}; product {p.pricing_product}, guide rate {style.fmt_rate(guide)}. Discounts beyond a level's authority go to the next level.")])
frame[["customer_id", "tier", "current_value", "potential_value", "headroom"]].to_parquet(ctx.run_dir / "results" / "value_tiers.parquet")
ctx.con.execute("CREATE OR REPLACE TABLE customer_value AS SELECT * FROM frame")
ctx.save_results("03_value_tiers", {
    "tiers": summary[["tier", "label_zh", "label_en", "customers", "share", "value_share", "avg_current", "avg_potential", "avg_headroom"]],
    "gini": g, "top20_value_share": top20, "customers": len(frame),
    "total_current_value": float(frame["current_value"].sum()),
    "thresholds": thresholds.to_dict(), "potential_model": {"pseudo_r2": model.pseudo_r2, "quantile": model.quantile, "n": model.n,
                                                            "params": model.params.reset_index(names="term")},
    "migration_share_staying": migration.share_staying, "migration_from": earlier,
    "growth_backtest": growth, "backtest_month": t0,
    "pricing": {"product": p.pricing_product, "guide_rate": guide,
                "elasticity": elasticity.to_dict() if elasticity else None,
                "simulation": simulation.to_dict() if simulation else None,
                "ineligible_reasons": n_ineligible,
                "sensitivity": sensitivity if sensitivity is not None else None},
    "value_concentration": {"top20_value_share": top20, "gini": g, "strategic_core_value_share": top_tier_share},
})
ctx.close()
