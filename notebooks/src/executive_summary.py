# %% tags=["parameters"]
workspace = "demo-engagement"
run_dir = ""
language = "zh"
as_of = "2022-12"
seed = 20221231

# %%
import pandas as pd
from analysis.context import StageContext
from analysis import executive, style
from analysis.catalog import load_event_catalog, load_tag_catalog, load_yaml
from analysis.deck import fig_events, fig_pilot, fig_readiness, fig_tags, fig_tiers
from analysis.report import show_markdown, show_table, show_figure, show_kpis

ctx = StageContext.open(workspace, run_dir, language)
style.setup_matplotlib()
T = ctx.t
zh = language == "zh"
results = {s: ctx.load_results(s) for s in executive.STAGE_IDS}
conclusions = executive.conclusions(results, language)
points = executive.headline_points(results, language)
catalog_dir = ctx.workspace.root / "catalog"
event_labels = {e.id: (e.label_zh, e.label_en) for e in load_event_catalog(catalog_dir).events}
tag_labels = {d.id: (d.label_zh, d.label_en) for d in load_tag_catalog(catalog_dir).tags}
tier_labels = {d["id"]: (d["label_zh"], d["label_en"]) for d in load_yaml("tiers.yaml", catalog_dir)["tiers"]}


def titled(fig, message, source):
    """Title the chart with its message; source and as-of month go under it."""
    style.chart_title(fig.axes[0], message, source, ctx.as_of, language)
    show_figure(fig)


# %%
show_markdown(T("# 核心结论", "# Key conclusions"))
if conclusions:
    show_kpis([(c.figure_label, c.figure) for c in conclusions[:4]])
show_markdown("\n".join(f"{i}. **{c.label}**: {c.sentence}" for i, c in enumerate(conclusions, 1)) +
              "\n\n**" + executive.recommendation(results, language) + "**")

# %%
r1 = results.get("01_data_assessment")
if r1:
    rd = r1.get("readiness", [])
    stop = [r for r in rd if not (r.get("go") or r.get("decision") == "go")]
    show_markdown(T("# 一、数据评估", "# 1. Data assessment") + "\n\n" + T(
        f"收到 {r1.get('rows_in', 0):,} 行, 隔离 {r1.get('rows_quarantined', 0):,} 行; 发现问题 {sum(r1.get('counts_by_severity', {}).values())} 项, 其中阻断 {r1.get('counts_by_severity', {}).get('blocker', 0)} 项。",
        f"{r1.get('rows_in', 0):,} rows received, {r1.get('rows_quarantined', 0):,} quarantined; {sum(r1.get('counts_by_severity', {}).values())} findings, {r1.get('counts_by_severity', {}).get('blocker', 0)} of them blocking."))
    if rd:
        titled(fig_readiness(r1, language),
               T(f"{len(rd) - len(stop)}/{len(rd)} 个阶段数据就绪, 其余待科技部门整改", f"{len(rd) - len(stop)} of {len(rd)} stages are ready; the rest wait on IT fixes"),
               T("数据评估", "Data assessment"))
        lab = "label_zh" if zh else "label_en"
        show_table(pd.DataFrame({
            T("阶段", "Stage"): [r.get(lab) or r.get("stage") for r in rd],
            T("评分", "Score"): [r.get("score") for r in rd],
            T("结论", "Decision"): [T("可启动", "go") if (r.get("go") or r.get("decision") == "go") else T("暂缓", "on hold") for r in rd],
            T("原因", "Reason"): [r.get("reason_zh" if zh else "reason_en") or "—" for r in rd]}),
            formats={T("评分", "Score"): "{:.0f}".format})

# %%
r2 = results.get("02_tag_design")
if r2:
    show_markdown(T("# 二、标签体系", "# 2. Tag library") + "\n\n" + T(
        f"{r2['tags']} 个客户标签按时点口径覆盖 {r2['customers']:,} 户客户; 建议保留 {r2['recommendations'].get('keep', 0)} 个, 具有预测力的标签 {len(r2.get('predictive_tags', []))} 个。",
        f"{r2['tags']} customer tags computed point-in-time for {r2['customers']:,} customers; {r2['recommendations'].get('keep', 0)} to keep, {len(r2.get('predictive_tags', []))} predictive."))
    fig = fig_tags(r2, language, tag_labels)
    if fig is not None:
        top = max(r2["predictive_tags"], key=lambda x: x.get("iv", 0))
        top_name = (tag_labels.get(top["tag_id"], (top["tag_id"], top["tag_id"]))[0 if zh else 1])
        titled(fig, T(f"预测力最强的标签是「{top_name}」", f"“{top_name}” is the strongest predictor of take-up"),
               T("标签体系, 信息值 (IV)", "Tag library, information value"))

# %%
r3 = results.get("03_value_tiers")
if r3:
    tiers = pd.DataFrame(r3["tiers"])
    lab = "label_zh" if zh else "label_en"
    show_markdown(T("# 三、价值分层与一户一价", "# 3. Value tiers and pricing") + "\n\n" +
                  " ".join(c.sentence for c in conclusions if c.topic in ("concentration", "strategic", "pricing")))
    titled(fig_tiers(r3, language),
           T(f"前 20% 客户贡献 {style.fmt_pct(r3['top20_value_share'])} 的价值", f"The top 20% of customers earn {style.fmt_pct(r3['top20_value_share'])} of value"),
           T("行内数据, 价值分层模型", "Bank data, value-tier model"))
    show_table(tiers[[lab, "customers", "share", "value_share"]].rename(columns={lab: T("层级", "Tier"), "customers": T("客户数", "Customers"),
                                                                            "share": T("客户占比", "Share"), "value_share": T("价值占比", "Value share")}),
               formats={T("客户占比", "Share"): style.fmt_pct, T("价值占比", "Value share"): style.fmt_pct, T("客户数", "Customers"): "{:,}".format})

# %%
r4 = results.get("04_opportunities")
if r4:
    ev = pd.DataFrame(r4["events"])
    sel = ev[ev["selected"]]
    show_markdown(T("# 四、商机事件", "# 4. Opportunity events") + "\n\n" +
                  " ".join(c.sentence for c in conclusions if c.topic == "events"))
    fig = fig_events(r4, language, event_labels)
    if fig is not None:
        titled(fig, T(f"{len(sel)} 个事件显著提升转化, 入选试点", f"{len(sel)} events lift conversion significantly and go to the pilot"),
               T(f"回测 {r4['backtest_first_month']} 至 {r4['backtest_last_month']}", f"Backtest {r4['backtest_first_month']} to {r4['backtest_last_month']}"))
    show_table(pd.DataFrame({
        T("事件", "Event"): [event_labels.get(e, (e, e))[0 if zh else 1] for e in sel["event_id"]],
        T("触发次数", "Triggers"): sel["triggers"].to_numpy(), T("触发转化率", "Hit rate"): sel["hit_rate"].to_numpy(),
        T("基准转化率", "Base rate"): sel["base_rate"].to_numpy(), T("提升度", "Lift"): sel["lift"].to_numpy(), "q": sel["q_value"].to_numpy()}),
        formats={T("触发转化率", "Hit rate"): style.fmt_pct, T("基准转化率", "Base rate"): style.fmt_pct,
                 T("提升度", "Lift"): "{:.2f}".format, "q": "{:.3f}".format, T("触发次数", "Triggers"): "{:,}".format})

# %%
r5 = results.get("05_pilot")
if r5 and r5.get("outcomes"):
    show_markdown(T("# 五、试点评估", "# 5. Pilot evaluation") + "\n\n" + T(
        f"试点 {r5['pilot_id']}: {r5['customers']:,} 户随机分组, 样本比例检验 p = {r5['srm_p_value']:.2f}; 触达率 {style.fmt_pct(r5['contact_rate'])}。",
        f"Pilot {r5['pilot_id']}: {r5['customers']:,} customers randomised; sample-ratio test p = {r5['srm_p_value']:.2f}; contact rate {style.fmt_pct(r5['contact_rate'])}.") +
        " " + " ".join(c.sentence for c in conclusions if c.topic == "pilot"))
    conv = next((o for o in r5["outcomes"] if o["outcome"] == "loan_conversion"), None)
    fig = fig_pilot(r5, language)
    if fig is not None:
        titled(fig, T(f"营销组贷款转化率 {style.fmt_pct(conv['mean_treatment'])}, 对照组 {style.fmt_pct(conv['mean_control'])}",
                      f"Loan conversion {style.fmt_pct(conv['mean_treatment'])} treated vs {style.fmt_pct(conv['mean_control'])} control"),
               T(f"试点 {r5['pilot_id']}, 随机对照; 误差线为 95% 区间", f"Pilot {r5['pilot_id']}, randomised; bar shows the 95% CI"))

    def shown(o, v):
        return f"{v * 100:+.1f}pp" if o == "loan_conversion" else style.fmt_money(v, language)

    oc = pd.DataFrame([{
        T("指标", "Outcome"): T("贷款转化率", "Loan conversion") if o["outcome"] == "loan_conversion" else T("活期日均变化 (户均)", "Demand deposit change per customer"),
        T("效果", "Effect"): shown(o["outcome"], o["effect"]),
        T("95% 区间", "95% CI"): f"{shown(o['outcome'], o['ci_low'])} ~ {shown(o['outcome'], o['ci_high'])}",
        "p": "<0.001" if o["p_value"] < 0.001 else f"{o['p_value']:.3f}"} for o in r5["outcomes"]])
    show_table(oc)

# %%
ctx.save_results("executive_summary", {"points": points, "recommendation": executive.recommendation(results, language),
                                       "stages_present": [s for s, r in results.items() if r]})
ctx.close()
