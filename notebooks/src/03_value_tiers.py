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
from analysis.value_data import ValueAssumptions, score_customers, loan_offers
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

# Backtest: rank at t = as_of − 12 on a 6-month window, then compare value growth to t+6 and t+12.
t0 = str(pd.Period(ctx.as_of, "M") - 12)
bt, _, _ = score_customers(ctx.con, t0, 6, assumptions=assumptions, ftp=ftp, scheme=scheme, quantile=p.quantile)
later6, _, _ = score_customers(ctx.con, str(pd.Period(t0, "M") + 6), 6, assumptions=assumptions, ftp=ftp, scheme=scheme, quantile=p.quantile)
later12, _, _ = score_customers(ctx.con, ctx.as_of, 6, assumptions=assumptions, ftp=ftp, scheme=scheme, quantile=p.quantile)
bt = bt[["customer_id", "current_value", "potential_band"]].merge(
    later6[["customer_id", "current_value"]].rename(columns={"current_value": "v6"}), on="customer_id").merge(
    later12[["customer_id", "current_value"]].rename(columns={"current_value": "v12"}), on="customer_id")
bt = bt.assign(high_potential=bt["potential_band"] == "high", growth_6m=bt["v6"] - bt["current_value"],
               growth_12m=bt["v12"] - bt["current_value"])
growth = value.tier_growth_backtest(bt, "high_potential", ["growth_6m", "growth_12m"])

# Pricing (一户一价) on the pilot loan product.
guide = float(ctx.con.execute("SELECT guide_rate FROM products WHERE product_id = ?", [p.pricing_product]).fetchone()[0])
priced = pricing.price_customers(frame, policy, guide, loan_ftp=ftp.loan_ftp)
offers = loan_offers(ctx.con)
elasticity = pricing.estimate_takeup_elasticity(offers) if offers is not None and len(offers) >= 100 else None
sim_frame = frame.assign(loan_amount=frame["max_loan_amount"].where(frame["max_loan_amount"] > 0, assumptions.expected_loan_amount))
simulation = pricing.simulate_policy(sim_frame, policy, elasticity, guide, loan_ftp=ftp.loan_ftp) if elasticity else None
sensitivity = pricing.sensitivity_table(sim_frame, policy, elasticity, guide, loan_ftp=ftp.loan_ftp) if elasticity else None
strategic = summary[summary["tier"] == "strategic"].iloc[0] if (summary["tier"] == "strategic").any() else None

# %%
fmt_m = lambda v: style.fmt_money(v, language)
lines_zh = [f"## 结论\n",
            f"- **价值高度集中**: 前 20% 的客户贡献了 **{style.fmt_pct(top20)}** 的年化综合贡献 (基尼系数 {g:.2f})。",
            f"- **战略客户 {int(strategic.customers):,} 户** (占 {style.fmt_pct(strategic.share)}), 贡献 {style.fmt_pct(strategic.value_share)} 的当前价值, 且潜在价值空间最大, 建议支行行长挂点、专属客户经理服务。" if strategic is not None else "",
            f"- **潜力识别经回测验证**: {t0} 被识别为高潜力的客户, 12 个月后年化贡献平均多增长 **{fmt_m(growth.iloc[-1]['difference'])}** (95% 区间 {fmt_m(growth.iloc[-1]['ci_low'])} 至 {fmt_m(growth.iloc[-1]['ci_high'])})。",
            (f"- **一户一价**: 对 {p.pricing_product} 指导利率 {style.fmt_rate(guide)} 平均优惠 {simulation.avg_discount_bp:.0f} bp, 年让利约 {fmt_m(simulation.nii_cost)}, 预计新增贷款 {simulation.extra_customers:,.0f} 户、{fmt_m(simulation.extra_volume)}, 净利息收入净影响 {fmt_m(simulation.net_nii_effect)}。" if simulation else "- 一户一价: 行内未提供历史报价数据, 无法估计价格弹性。")]
lines_en = [f"## Conclusions\n",
            f"- **Value is concentrated**: the top 20% of customers earn **{style.fmt_pct(top20)}** of annual contribution (Gini {g:.2f}).",
            f"- **{int(strategic.customers):,} strategic customers** ({style.fmt_pct(strategic.share)}) earn {style.fmt_pct(strategic.value_share)} of current value and have the most headroom; they get a sub-branch head sponsor and a dedicated RM." if strategic is not None else "",
            f"- **Potential is proven by backtest**: customers ranked high-potential in {t0} grew their annual contribution by **{fmt_m(growth.iloc[-1]['difference'])}** more over 12 months (95% CI {fmt_m(growth.iloc[-1]['ci_low'])} to {fmt_m(growth.iloc[-1]['ci_high'])}).",
            (f"- **Per-customer pricing**: an average {simulation.avg_discount_bp:.0f} bp off the {style.fmt_rate(guide)} guide rate of {p.pricing_product} costs about {fmt_m(simulation.nii_cost)} a year and is expected to add {simulation.extra_customers:,.0f} loans ({fmt_m(simulation.extra_volume)}); net effect on net interest income {fmt_m(simulation.net_nii_effect)}." if simulation else "- Pricing: the bank supplied no historical offers, so price elasticity cannot be estimated.")]
show_markdown("\n".join(l for l in (lines_zh if language == "zh" else lines_en) if l))

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
params = params[(params["term"] != "const") & (params["p_value"] < 0.05)].sort_values("coef", key=abs, ascending=False).head(12)
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
gt = growth.copy()
show_table(gt, formats={c: fmt_m for c in gt.columns if gt[c].dtype.kind == "f" and c not in ("p_value",)})

# %%
if simulation:
    show_markdown(T("## 一户一价定价政策", "## Per-customer pricing policy") + "\n\n" + T(
        f"执行利率 = max(指导利率 − 层级优惠 − 贡献度优惠, 价格底线); 底线 = FTP + 运营成本 {style.fmt_pct(policy.operating_cost_rate, 2)} + 预期损失 + 资本成本 (目标 RAROC {style.fmt_pct(policy.hurdle_raroc)}), 且不低于 LPR {style.fmt_rate(policy.lpr_1y)}。"
        f"价格弹性由 {elasticity.n:,} 笔历史报价的 logistic 回归估计: 报价每高于指导利率 1 bp, 接受概率平均下降 {abs(elasticity.marginal_effect_per_bp) * 100:.2f} 个百分点 (95% 区间 {abs(elasticity.marginal_effect_ci_high) * 100:.2f}–{abs(elasticity.marginal_effect_ci_low) * 100:.2f})。",
        f"Offered rate = max(guide − tier discount − contribution discount, floor); floor = FTP + operating cost {style.fmt_pct(policy.operating_cost_rate, 2)} + expected loss + capital charge at a {style.fmt_pct(policy.hurdle_raroc)} hurdle RAROC, and not below LPR {style.fmt_rate(policy.lpr_1y)}. "
        f"Price elasticity from a logistic regression on {elasticity.n:,} historical offers: each bp above the guide rate lowers acceptance by {abs(elasticity.marginal_effect_per_bp) * 100:.2f} points on average (95% CI {abs(elasticity.marginal_effect_ci_high) * 100:.2f}–{abs(elasticity.marginal_effect_ci_low) * 100:.2f})."))
    by_tier = priced.groupby("tier").agg(customers=("customer_id", "count"), discount_bp=("discount_bp", "mean"),
                                         offered=("offered_rate", "mean"), floor_binding=("floor_binding", "mean")).reset_index()
    by_tier["tier"] = by_tier["tier"].map(tier_labels)
    show_table(by_tier.rename(columns={"tier": T("层级", "Tier"), "customers": T("客户数", "Customers"), "discount_bp": T("平均优惠(bp)", "Avg discount (bp)"),
                                       "offered": T("平均执行利率", "Avg offered rate"), "floor_binding": T("触及底线占比", "At floor")}),
               formats={T("平均优惠(bp)", "Avg discount (bp)"): "{:.0f}".format, T("平均执行利率", "Avg offered rate"): style.fmt_rate,
                        T("触及底线占比", "At floor"): style.fmt_pct})
    show_markdown(T("敏感性分析 (优惠力度 × 弹性 ±1 标准误):", "Sensitivity (discount scale × elasticity ± 1 SE):"))
    sens = sensitivity[["discount_scale", "se_multiplier", "nii_cost", "extra_customers", "extra_volume", "net_nii_effect"]]
    show_table(sens.rename(columns={"discount_scale": T("优惠倍数", "Discount scale"), "se_multiplier": T("弹性偏移(SE)", "Elasticity shift (SE)"),
                                    "nii_cost": T("让利成本", "NII cost"), "extra_customers": T("新增户数", "Extra loans"),
                                    "extra_volume": T("新增贷款", "Extra volume"), "net_nii_effect": T("净影响", "Net effect")}),
               formats={T("让利成本", "NII cost"): fmt_m, T("新增贷款", "Extra volume"): fmt_m, T("净影响", "Net effect"): fmt_m,
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
                "simulation": simulation.to_dict() if simulation else None},
})
ctx.close()
