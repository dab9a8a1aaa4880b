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
    mde = pilot.minimum_detectable_effect(n_t, int(len(frame) - n_t), p_control=float(rc["mean_control"]), alpha=p.alpha)

# %%
if not has_pilot:
    show_markdown(T("## 结论\n\n本行尚未提供试点分组数据 (pilot_assignments), 试点评估待试点结束后进行。",
                    "## Conclusions\n\nThe bank has not supplied pilot assignments yet; the evaluation follows when the pilot ends."))
else:
    sig = rc["ci_low"] > 0
    show_markdown(T(
        f"## 结论\n\n试点 {p.pilot_id} ({p.window_start} 至 {p.window_end}) 共 {len(frame):,} 户随机分为营销组 {n_t:,} 户与对照组 {len(frame) - n_t:,} 户 (样本比例检验 p = {srm_p:.2f}, {'分组比例正常' if srm_p >= 0.01 else '分组比例异常, 需排查'})。\n\n"
        f"- **贷款转化**: 营销组 {style.fmt_pct(rc['mean_treatment'])} vs 对照组 {style.fmt_pct(rc['mean_control'])}, 提升 **{rc['effect'] * 100:.1f} 个百分点** (95% 区间 {rc['ci_low'] * 100:.1f} 至 {rc['ci_high'] * 100:.1f}), 即营销组多成交约 **{extra_loans[0]:,.0f} 户** (区间 {extra_loans[1]:,.0f} 至 {extra_loans[2]:,.0f} 户){'' if sig else ', 尚不显著'}。\n"
        f"- **存款**: 营销组活期日均户均多增 **{fmt_m(rd['effect'])}** (95% 区间 {fmt_m(rd['ci_low'])} 至 {fmt_m(rd['ci_high'])}), 合计约 {fmt_m(extra_dep[0])}。\n"
        f"- **执行**: 客户经理触达率 {style.fmt_pct(overall['contact_rate'])}; 对实际触达客户的转化提升约 {cace.effect * 100:.1f} 个百分点 (95% 区间 {cace.ci_low * 100:.1f} 至 {cace.ci_high * 100:.1f})。{int(league['never_worked'].sum())} 位客户经理的名单基本未跟进 (石沉大海)。",
        f"## Conclusions\n\nPilot {p.pilot_id} ({p.window_start} to {p.window_end}) randomised {len(frame):,} customers into {n_t:,} treated and {len(frame) - n_t:,} controls (sample-ratio test p = {srm_p:.2f}: {'split as designed' if srm_p >= 0.01 else 'split is off, investigate'}).\n\n"
        f"- **Loan conversion**: {style.fmt_pct(rc['mean_treatment'])} treated vs {style.fmt_pct(rc['mean_control'])} control, **+{rc['effect'] * 100:.1f} points** (95% CI {rc['ci_low'] * 100:.1f} to {rc['ci_high'] * 100:.1f}): about **{extra_loans[0]:,.0f} more customers** took a loan (CI {extra_loans[1]:,.0f} to {extra_loans[2]:,.0f}){'' if sig else ', not yet significant'}.\n"
        f"- **Deposits**: demand-deposit daily average rose by **{fmt_m(rd['effect'])}** more per treated customer (95% CI {fmt_m(rd['ci_low'])} to {fmt_m(rd['ci_high'])}), about {fmt_m(extra_dep[0])} in total.\n"
        f"- **Execution**: RMs contacted {style.fmt_pct(overall['contact_rate'])} of their lists; among customers actually contacted conversion rose about {cace.effect * 100:.1f} points (95% CI {cace.ci_low * 100:.1f} to {cace.ci_high * 100:.1f}). {int(league['never_worked'].sum())} RMs left their lists largely unworked."))

# %%
if has_pilot:
    show_markdown(T("## 效果估计", "## Effect estimates") + "\n\n" + pilot.interval_explanation(rc["method"], language, p.alpha) + " " +
                  pilot.interval_explanation(rd["method"], language, p.alpha))
    tab = results[["outcome", "n_treatment", "n_control", "mean_treatment", "mean_control", "effect", "ci_low", "ci_high", "p_value", "relative_lift", "method"]].copy()
    tab["outcome"] = tab["outcome"].map({"loan_conversion": T("贷款转化率", "Loan conversion"), "deposit_change": T("活期日均变化(元)", "Demand deposit change (CNY)")})
    tab["method"] = [pilot.method_label(m, language) for m in tab["method"]]
    show_table(tab.rename(columns={"outcome": T("指标", "Outcome"), "n_treatment": T("营销组", "Treated"), "n_control": T("对照组", "Control"),
                                   "mean_treatment": T("营销组均值", "Mean treated"), "mean_control": T("对照组均值", "Mean control"),
                                   "effect": T("效果", "Effect"), "ci_low": T("95%下限", "95% low"), "ci_high": T("95%上限", "95% high"),
                                   "p_value": "p", "relative_lift": T("相对提升", "Relative lift"), "method": T("方法", "Method")}),
               formats={T("营销组均值", "Mean treated"): "{:,.4f}".format, T("对照组均值", "Mean control"): "{:,.4f}".format,
                        T("效果", "Effect"): "{:,.4f}".format, T("95%下限", "95% low"): "{:,.4f}".format, T("95%上限", "95% high"): "{:,.4f}".format,
                        "p": lambda v: "<0.001" if v < 0.001 else f"{v:.3f}", T("相对提升", "Relative lift"): style.fmt_pct})

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
    show_markdown(T("## 分层效果 (Benjamini–Hochberg 校正)", "## Effect by tier (Benjamini–Hochberg adjusted)"))
    bt = by_tier.copy()
    show_table(bt, formats={c: "{:,.4f}".format for c in bt.columns if bt[c].dtype.kind == "f"})
    show_markdown(T("## 客户经理执行排名", "## RM league table"))
    lg = league.head(15).copy()
    names = dict(ctx.con.execute("SELECT rm_id, rm_name FROM relationship_managers").fetchall())
    lg.insert(1, "rm_name", [mask_value(names.get(r), "person_name") for r in lg["rm_id"]])
    show_table(lg[["rank", "rm_id", "rm_name", "listed", "contacted", "converted", "contact_rate", "conversion_rate", "never_worked"]].rename(
        columns={"rank": T("排名", "Rank"), "rm_id": T("客户经理号", "RM"), "rm_name": T("姓名", "Name"), "listed": T("名单", "Listed"),
                 "contacted": T("触达", "Contacted"), "converted": T("成交", "Converted"), "contact_rate": T("触达率", "Contact rate"),
                 "conversion_rate": T("转化率", "Conversion"), "never_worked": T("石沉大海", "Unworked")}),
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
        "by_tier": by_tier, "minimum_detectable_effect": mde,
    })
else:
    ctx.save_results("05_pilot", {"pilot_id": p.pilot_id, "customers": 0, "srm_p_value": None, "outcomes": []})
ctx.close()
