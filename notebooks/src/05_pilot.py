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
from analysis import pilot, style
from analysis.pilot_data import pilot_frame, funnel, rm_league
from analysis.privacy import mask_value
from analysis.report import show_markdown, show_table, show_figure, show_kpis
from analysis.catalog import load_yaml
from analysis import value

ctx = StageContext.open(workspace, run_dir, language)
style.setup_matplotlib()
T = ctx.t
p = ctx.config.stages.pilot
fmt_m = lambda v: style.fmt_money(v, language)
frame = pilot_frame(ctx.con, p.pilot_id, window_start=p.window_start, window_end=p.window_end,
                    pre_start=p.pre_start, pre_end=p.pre_end)
has_pilot = len(frame) > 0
if has_pilot:
    conv = pilot.evaluate_experiment(frame, "arm", "control", ["loan_conversion"], alpha=p.alpha)
    dep = pilot.evaluate_experiment(frame, "arm", "control", ["deposit_change"], covariates=["pre_deposit"], alpha=p.alpha)
    results = pd.concat([conv.results, dep.results], ignore_index=True)
    srm_p = conv.summary["srm_p_value"]
    cace = pilot.contacted_effect(frame, "assigned", "contacted", "loan_conversion", alpha=p.alpha)
    by_tier = pilot.effects_by_segment(frame, "tier", "arm", "loan_conversion", control_value="control", alpha=p.alpha)
    overall = funnel(frame).iloc[0]
    league = rm_league(frame)
    n_t = int((frame["assigned"] == 1).sum())
    rc, rd = results.iloc[0], results.iloc[1]
    extra_loans = (rc["effect"] * n_t, rc["ci_low"] * n_t, rc["ci_high"] * n_t)
    extra_dep = (rd["effect"] * n_t, rd["ci_low"] * n_t, rd["ci_high"] * n_t)
    n_c = int(len(frame) - n_t)
    mde = pilot.minimum_detectable_effect(n_t, n_c, p_control=float(rc["mean_control"]), alpha=p.alpha)
    dep_sd = float(frame.loc[frame["assigned"] == 0, "deposit_change"].std())
    mde_dep = pilot.minimum_detectable_effect(n_t, n_c, sd=dep_sd, alpha=p.alpha) if dep_sd > 0 else float("nan")
    balance = pilot.balance_table(frame, "arm", ["pre_deposit", "tier"], control_value="control")
    n_imbalanced = int((balance["smd"].abs() > 0.1).sum())
    dep_raw = pilot.evaluate_experiment(frame, "arm", "control", ["deposit_change"], alpha=p.alpha).results.iloc[0]
    cuped_narrower = 1 - (rd["ci_high"] - rd["ci_low"]) / (dep_raw["ci_high"] - dep_raw["ci_low"])
    conv_rm = pilot.evaluate_experiment(frame, "arm", "control", ["loan_conversion"], cluster_col="rm_id", alpha=p.alpha).results.iloc[0]
    cace_dep = pilot.contacted_effect(frame, "assigned", "contacted", "deposit_change", alpha=p.alpha)
    by_event = pilot.effects_by_segment(frame.assign(event_id=frame["event_id"].fillna("none")), "event_id", "arm", "loan_conversion",
                                        control_value="control", alpha=p.alpha)
    by_branch = funnel(frame, "branch_id")
    tier_labels = {t.id: (t.label_zh if language == "zh" else t.label_en)
                   for t in value.TierScheme.from_catalog(load_yaml("tiers.yaml", ctx.workspace.catalog)).tiers}
    tier_labels["unknown"] = T("未分层", "Not tiered")

# %%
if not has_pilot:
    show_markdown(T("## 结论\n\n本行尚未提供试点分组数据 (pilot_assignments), 试点评估待试点结束后进行。",
                    "## Conclusions\n\nThe bank has not supplied pilot assignments yet; the evaluation follows when the pilot ends."))
else:
    sig = rc["ci_low"] > 0
    show_markdown(T(
        f"## 结论\n\n试点 {p.pilot_id} ({p.window_start} 至 {p.window_end}) 共 {len(frame):,} 户随机分为营销组 {n_t:,} 户与对照组 {len(frame) - n_t:,} 户 (样本比例检验 p = {srm_p:.2f}, {'分组比例正常' if srm_p >= 0.01 else '分组比例异常, 需排查'})。\n\n"
        f"- **贷款转化**: 营销组 {style.fmt_pct(rc['mean_treatment'])} vs 对照组 {style.fmt_pct(rc['mean_control'])}, 提升 **{rc['effect'] * 100:+.1f} 个百分点** (95% 区间 {rc['ci_low'] * 100:.1f} 至 {rc['ci_high'] * 100:.1f}), 即营销组成交户数变化约 **{round(extra_loans[0]):+,d} 户** (区间 {extra_loans[1]:,.0f} 至 {extra_loans[2]:,.0f} 户){'' if sig else ', 尚不显著'}。\n"
        f"- **存款**: 营销组活期日均户均多增 **{fmt_m(rd['effect'])}** (95% 区间 {fmt_m(rd['ci_low'])} 至 {fmt_m(rd['ci_high'])}), 合计约 {fmt_m(extra_dep[0])}。\n"
        f"- **执行**: 客户经理触达率 {style.fmt_pct(overall['contact_rate'])}; 对实际触达客户的转化提升约 {cace.effect * 100:.1f} 个百分点 (95% 区间 {cace.ci_low * 100:.1f} 至 {cace.ci_high * 100:.1f}), 活期日均多增 {fmt_m(cace_dep.effect)} (95% 区间 {fmt_m(cace_dep.ci_low)} 至 {fmt_m(cace_dep.ci_high)})。{int(league['never_worked'].sum())} 位客户经理的名单基本未跟进 (石沉大海)。\n"
        f"- **给管理层的一句话**: 营销组贷款客户变化 {round(extra_loans[0]):+,d} 户 (区间 {extra_loans[1]:,.0f} 至 {extra_loans[2]:,.0f}), 活期日均变化 {fmt_m(extra_dep[0])} (区间 {fmt_m(extra_dep[1])} 至 {fmt_m(extra_dep[2])}); 本试点规模可检出的最小转化提升为 {mde * 100:.1f} 个百分点, 更小的效果需要更大的名单。",
        f"## Conclusions\n\nPilot {p.pilot_id} ({p.window_start} to {p.window_end}) randomised {len(frame):,} customers into {n_t:,} treated and {len(frame) - n_t:,} controls (sample-ratio test p = {srm_p:.2f}: {'split as designed' if srm_p >= 0.01 else 'split is off, investigate'}).\n\n"
        f"- **Loan conversion**: {style.fmt_pct(rc['mean_treatment'])} treated vs {style.fmt_pct(rc['mean_control'])} control, **{rc['effect'] * 100:+.1f} points** (95% CI {rc['ci_low'] * 100:.1f} to {rc['ci_high'] * 100:.1f}): a change of about **{round(extra_loans[0]):+,d} customers** taking a loan (CI {extra_loans[1]:,.0f} to {extra_loans[2]:,.0f}){'' if sig else ', not yet significant'}.\n"
        f"- **Deposits**: demand-deposit daily average rose by **{fmt_m(rd['effect'])}** more per treated customer (95% CI {fmt_m(rd['ci_low'])} to {fmt_m(rd['ci_high'])}), about {fmt_m(extra_dep[0])} in total.\n"
        f"- **Execution**: RMs contacted {style.fmt_pct(overall['contact_rate'])} of their lists; among customers actually contacted conversion rose about {cace.effect * 100:.1f} points (95% CI {cace.ci_low * 100:.1f} to {cace.ci_high * 100:.1f}) and demand deposits by {fmt_m(cace_dep.effect)} (95% CI {fmt_m(cace_dep.ci_low)} to {fmt_m(cace_dep.ci_high)}). {int(league['never_worked'].sum())} RMs left their lists largely unworked.\n"
        f"- **In one sentence for the board**: the treated lists changed borrowing customers by an estimated {round(extra_loans[0]):+,d} (CI {extra_loans[1]:,.0f} to {extra_loans[2]:,.0f}) and demand-deposit daily average by {fmt_m(extra_dep[0])} (CI {fmt_m(extra_dep[1])} to {fmt_m(extra_dep[2])}); at this pilot's size the smallest conversion lift it could reliably detect is {mde * 100:.1f} points, so smaller effects need larger lists."))

# %%
if has_pilot:
    show_markdown(T("## 试点设计与分组检验", "## Design and randomisation checks") + "\n\n" + T(
        f"- 分组: 按客户经理 × 层级分层随机, 营销组 {n_t:,} 户、对照组 {n_c:,} 户。样本比例检验 (χ²) p = {srm_p:.2f}: {'分组比例与设计一致。' if srm_p >= 0.01 else '分组比例与设计不符, 结论须待排查后使用。'}\n"
        f"- 检验力: 按此名单规模 (α = {p.alpha}, 检验力 80%), 可检出的最小转化提升为 **{mde * 100:.1f} 个百分点** (对照组转化率 {style.fmt_pct(rc['mean_control'])}), 活期日均的最小可检出变化为 **{fmt_m(mde_dep)}**。\n"
        f"- 误差: 随机化单位是客户, 故用客户层面的稳健误差; 同一客户经理的客户可能相互影响, 按客户经理聚类 ({frame['rm_id'].nunique()} 个聚类) 的稳健误差下转化提升的 95% 区间为 {conv_rm['ci_low'] * 100:.1f} 至 {conv_rm['ci_high'] * 100:.1f} 个百分点, {'结论不变' if (conv_rm['ci_low'] > 0) == (rc['ci_low'] > 0) else '结论改变, 应以聚类区间为准'}。\n"
        f"- 下表为试点前各组的协变量均值; 标准化差异 |SMD| > 0.1 视为不平衡 (本次 {n_imbalanced} 项), 存款效果已按试点前余额调整。",
        f"- Assignment: randomised within RM × tier strata, {n_t:,} treated and {n_c:,} controls. Sample-ratio test (χ²) p = {srm_p:.2f}: {'the split matches the design.' if srm_p >= 0.01 else 'the split does not match the design; investigate before using the results.'}\n"
        f"- Power: with these list sizes (α = {p.alpha}, 80% power) the smallest detectable conversion lift is **{mde * 100:.1f} points** (control conversion {style.fmt_pct(rc['mean_control'])}); for demand-deposit daily average it is **{fmt_m(mde_dep)}**.\n"
        f"- Errors: customers were randomised individually, so errors are customer-level robust ones; since an RM's customers may influence each other, errors clustered by RM ({frame['rm_id'].nunique()} clusters) give a conversion-lift 95% CI of {conv_rm['ci_low'] * 100:.1f} to {conv_rm['ci_high'] * 100:.1f} points, {'the same conclusion' if (conv_rm['ci_low'] > 0) == (rc['ci_low'] > 0) else 'which changes the conclusion: rely on the clustered interval'}.\n"
        f"- Below: pre-pilot covariate means by arm; a standardised difference |SMD| > 0.1 flags imbalance ({n_imbalanced} here); the deposit effect is adjusted for pre-pilot balances."))
    bal = balance.copy()
    bal["covariate"] = [T("试点前活期日均", "Pre-pilot demand deposits") if c == "pre_deposit"
                        else T("层级: ", "Tier: ") + tier_labels.get(c.split("=", 1)[1], c.split("=", 1)[1]) for c in bal["covariate"]]
    is_money = (balance["covariate"] == "pre_deposit").to_numpy()
    for c in ("mean_treatment", "mean_control"):
        bal[c] = [fmt_m(v) if m else style.fmt_pct(v) for v, m in zip(balance[c], is_money)]
    show_table(bal[["covariate", "mean_treatment", "mean_control", "smd", "p_value"]].rename(columns={
        "covariate": T("协变量", "Covariate"), "mean_treatment": T("营销组", "Treated"), "mean_control": T("对照组", "Control"),
        "smd": "SMD", "p_value": "p"}),
        formats={"SMD": "{:+.3f}".format, "p": lambda v: "—" if pd.isna(v) else f"{v:.3f}"})

# %%
if has_pilot:
    show_markdown(T("## 效果估计 (意向处理分析)", "## Effect estimates (intention to treat)") + "\n\n" + T(
        "按分组比较 (不论是否实际触达), 绝对提升与相对提升 (相对提升的区间用 delta 方法) 均列出。",
        "Arms are compared as assigned, whether or not the RM made contact; absolute and relative lifts are shown (the relative interval by the delta method).") + " " +
        pilot.interval_explanation(rc["method"], language, p.alpha) + " " + pilot.interval_explanation(rd["method"], language, p.alpha) + "\n\n" + T(
        f"存款效果用试点前 3 个月活期日均做回归调整 (CUPED 的回归形式): 试点前余额解释了大部分客户间差异, 扣除后区间比不调整时窄 {style.fmt_pct(cuped_narrower)} (未调整: {fmt_m(dep_raw['effect'])}, 区间 {fmt_m(dep_raw['ci_low'])} 至 {fmt_m(dep_raw['ci_high'])})。",
        f"The deposit effect is adjusted for each customer's demand deposits in the 3 pre-pilot months (CUPED, in its regression form): the pre-period balance explains much of the differences between customers, and removing it makes the interval {style.fmt_pct(cuped_narrower)} narrower than without (unadjusted: {fmt_m(dep_raw['effect'])}, CI {fmt_m(dep_raw['ci_low'])} to {fmt_m(dep_raw['ci_high'])})."))
    rows = []
    for _, r in results.iterrows():
        binary = r["outcome"] == "loan_conversion"
        f_level = style.fmt_pct if binary else fmt_m
        f_eff = (lambda v: f"{v * 100:+.1f} pt") if binary else (lambda v: ("+" if v >= 0 else "") + fmt_m(v))
        rows.append({T("指标", "Outcome"): T("贷款转化率", "Loan conversion") if binary else T("活期日均变化", "Demand-deposit change"),
                     T("营销组", "Treated"): f_level(r["mean_treatment"]), T("对照组", "Control"): f_level(r["mean_control"]),
                     T("效果 (95% 区间)", "Effect (95% CI)"): f"{f_eff(r['effect'])} ({f_eff(r['ci_low'])}, {f_eff(r['ci_high'])})",
                     "p": "<0.001" if r["p_value"] < 0.001 else f"{r['p_value']:.3f}",
                     T("相对提升 (95% 区间)", "Relative lift (95% CI)"): f"{r['relative_lift']:+.0%} ({r['relative_ci_low']:+.0%}, {r['relative_ci_high']:+.0%})",
                     T("方法", "Method"): pilot.method_label(r["method"], language)})
    show_table(pd.DataFrame(rows))

# %%
if has_pilot:
    f = funnel(frame)
    stages = [T("下发名单", "Listed"), T("已触达", "Contacted"), T("有意向", "Interested"), T("已申请", "Applied"), T("已放款", "Loan booked")]
    vals = [f.iloc[0][c] for c in ("listed", "contacted", "interested", "applied", "converted")]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.barh(stages[::-1], vals[::-1], color=style.PALETTE["navy"])
    for i, v in enumerate(vals[::-1]):
        ax.text(v, i, f" {int(v):,}", va="center")
    style.chart_title(ax, T(f"触达率 {style.fmt_pct(f.iloc[0]['contact_rate'])}: 执行是转化的瓶颈", f"Contact rate {style.fmt_pct(f.iloc[0]['contact_rate'])}: execution is the bottleneck"),
                      T("客户经理反馈与行内放款数据", "RM feedback and the bank's loan data"), ctx.as_of, language)
    show_figure(fig)

# %%
if has_pilot:
    seg_cols = ["segment", "n_treatment", "n_control", "mean_treatment", "mean_control", "effect", "ci_low", "ci_high", "p_value", "p_adjusted"]
    seg_names = {"segment": T("分组", "Segment"), "n_treatment": T("营销组", "Treated"), "n_control": T("对照组", "Control"),
                 "mean_treatment": T("营销组转化", "Conv. treated"), "mean_control": T("对照组转化", "Conv. control"), "effect": T("提升", "Lift"),
                 "ci_low": T("95%下限", "95% low"), "ci_high": T("95%上限", "95% high"), "p_value": "p", "p_adjusted": T("BH校正p", "BH p")}
    seg_fmt = {T("营销组转化", "Conv. treated"): style.fmt_pct, T("对照组转化", "Conv. control"): style.fmt_pct,
               T("提升", "Lift"): lambda v: "—" if pd.isna(v) else f"{v * 100:+.1f} pt", T("95%下限", "95% low"): lambda v: "—" if pd.isna(v) else f"{v * 100:+.1f}",
               T("95%上限", "95% high"): lambda v: "—" if pd.isna(v) else f"{v * 100:+.1f}", "p": lambda v: "—" if pd.isna(v) else f"{v:.3f}",
               T("BH校正p", "BH p"): lambda v: "—" if pd.isna(v) else f"{v:.3f}"}
    n_sig = int((by_tier["p_adjusted"] < p.alpha).sum() + (by_event["p_adjusted"] < p.alpha).sum())
    show_markdown(T("## 异质性: 按层级与事件 (Benjamini–Hochberg 校正)", "## Heterogeneity by tier and event (Benjamini–Hochberg adjusted)") + "\n\n" + T(
        f"分组越多, 偶然显著的越多; 经 BH 多重检验校正 (错误发现率 {p.alpha:.0%}) 后, 共 {n_sig} 个分组的转化提升显著。各分组样本小, 区间宽, 仅作为下一轮试点的线索。",
        f"The more segments, the more chance findings; after Benjamini–Hochberg correction (false discovery rate {p.alpha:.0%}) {n_sig} segments show a significant conversion lift. Segments are small and intervals wide: read them as leads for the next pilot."))
    bt = by_tier.assign(segment=by_tier["segment"].map(lambda v: tier_labels.get(v, v)))[seg_cols]
    show_table(bt.rename(columns={**seg_names, "segment": T("层级", "Tier")}), formats=seg_fmt)
    be = by_event.assign(segment=by_event["segment"].replace({"none": T("无事件", "no event")}))[seg_cols]
    show_table(be.rename(columns={**seg_names, "segment": T("触发事件", "Event")}), formats=seg_fmt)

# %%
if has_pilot:
    show_markdown(T("## 执行: 分支行漏斗与客户经理排名", "## Execution: funnel by branch and RM league table") + "\n\n" + T(
        "触达、意向、申请来自客户经理反馈; 成交来自行内放款数据。触达率低于 20% 的名单视为石沉大海 (未跟进)。",
        "Contacted, interested and applied come from RM feedback; converted from the bank's loan data. Lists with a contact rate below 20% are flagged as never worked."))
    fb = by_branch[["branch_id", "listed", "contacted", "interested", "applied", "converted", "contact_rate", "conversion_rate"]]
    funnel_names = {"branch_id": T("支行", "Branch"), "listed": T("名单", "Listed"), "contacted": T("触达", "Contacted"),
                    "interested": T("意向", "Interested"), "applied": T("申请", "Applied"), "converted": T("成交", "Converted"),
                    "contact_rate": T("触达率", "Contact rate"), "conversion_rate": T("转化率", "Conversion")}
    show_table(fb.rename(columns=funnel_names), formats={T("触达率", "Contact rate"): style.fmt_pct, T("转化率", "Conversion"): style.fmt_pct})
    never = league[league["never_worked"]]
    show_markdown(T(f"石沉大海: {len(never)} 位客户经理的名单 ({int(never['listed'].sum()):,} 户) 基本未跟进" + (": " + ", ".join(never["rm_id"]) + "。" if len(never) else "。"),
                    f"Never worked: {len(never)} RMs left their lists ({int(never['listed'].sum()):,} customers) largely unworked" + (": " + ", ".join(never["rm_id"]) + "." if len(never) else ".")))
    lg = league.head(15).copy()
    cols = ["rank", "rm_id", "listed", "contacted", "interested", "applied", "converted", "contact_rate", "conversion_rate", "never_worked"]
    if language == "zh":  # masked names only in the Chinese report; the English one shows RM ids
        names = dict(ctx.con.execute("SELECT rm_id, rm_name FROM relationship_managers").fetchall())
        lg.insert(1, "rm_name", [mask_value(names.get(r), "person_name") for r in lg["rm_id"]])
        cols.insert(2, "rm_name")
    show_table(lg[cols].rename(columns={**funnel_names, "rank": T("排名", "Rank"), "rm_id": T("客户经理号", "RM"), "rm_name": T("姓名", "Name"),
                                        "never_worked": T("石沉大海", "Unworked")}),
               formats={T("触达率", "Contact rate"): style.fmt_pct, T("转化率", "Conversion"): style.fmt_pct,
                        T("石沉大海", "Unworked"): lambda v: T("是", "yes") if v else ""})

# %%
if has_pilot:
    ctx.save_results("05_pilot", {
        "pilot_id": p.pilot_id, "customers": len(frame), "n_treatment": n_t, "n_control": int(len(frame) - n_t),
        "srm_p_value": srm_p,
        "outcomes": results[["outcome", "effect", "ci_low", "ci_high", "p_value", "relative_lift", "relative_ci_low",
                             "relative_ci_high", "mean_treatment", "mean_control", "method"]],
        "extra_loans": {"estimate": extra_loans[0], "ci_low": extra_loans[1], "ci_high": extra_loans[2]},
        "extra_deposits": {"estimate": extra_dep[0], "ci_low": extra_dep[1], "ci_high": extra_dep[2]},
        "contacted_effect": cace.as_dict(), "contact_rate": float(overall["contact_rate"]),
        "never_worked_rms": int(league["never_worked"].sum()), "rms": int(len(league)),
        "by_tier": by_tier, "by_event": by_event, "minimum_detectable_effect": mde, "minimum_detectable_deposit_change": mde_dep,
        "balance": balance, "deposit_unadjusted": dep_raw[["effect", "ci_low", "ci_high", "p_value"]].to_dict(),
        "cuped_interval_narrower": cuped_narrower, "conversion_rm_clustered": conv_rm[["effect", "ci_low", "ci_high", "p_value"]].to_dict(),
        "contacted_effect_deposits": cace_dep.as_dict(), "funnel_by_branch": by_branch,
        "never_worked_rm_ids": list(league.loc[league["never_worked"], "rm_id"]),
    })
else:
    ctx.save_results("05_pilot", {"pilot_id": p.pilot_id, "customers": 0, "srm_p_value": None, "outcomes": []})
ctx.close()
