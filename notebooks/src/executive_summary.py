# %% tags=["parameters"]
workspace = "demo-engagement"
run_dir = ""
language = "zh"
as_of = "2022-12"
seed = 20221231

# %%
import pandas as pd
import matplotlib.pyplot as plt
from analysis.context import StageContext
from analysis import executive, style
from analysis.report import show_markdown, show_table, show_figure, show_kpis

ctx = StageContext.open(workspace, run_dir, language)
style.setup_matplotlib()
T = ctx.t
fmt_m = lambda v: style.fmt_money(v, language)
results = {s: ctx.load_results(s) for s in executive.STAGE_IDS}
points = executive.headline_points(results, language)

# %%
show_markdown(T("## 核心结论", "## Key conclusions") + "\n\n" + "\n".join(f"{i}. {p}" for i, p in enumerate(points, 1)) +
              "\n\n" + executive.recommendation(results, language))

# %%
r3 = results.get("03_value_tiers")
if r3:
    tiers = pd.DataFrame(r3["tiers"])
    lab = "label_zh" if language == "zh" else "label_en"
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    x = range(len(tiers))
    ax.bar([i - 0.2 for i in x], tiers["share"], width=0.4, color=style.PALETTE["grey_light"], label=T("客户占比", "Share of customers"))
    ax.bar([i + 0.2 for i in x], tiers["value_share"], width=0.4, color=style.PALETTE["navy"], label=T("价值占比", "Share of value"))
    ax.set_xticks(list(x), tiers[lab])
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.legend(frameon=False)
    style.chart_title(ax, T(f"前 20% 客户贡献 {style.fmt_pct(r3['top20_value_share'])} 的价值", f"The top 20% of customers earn {style.fmt_pct(r3['top20_value_share'])} of value"),
                      T("行内数据, 价值分层模型", "Bank data, value-tier model"), ctx.as_of, language)
    show_figure(fig)

# %%
r1 = results.get("01_data_assessment")
if r1:
    show_markdown(T("## 一、数据评估", "## 1. Data assessment") + "\n\n" + T(
        f"收到 {r1.get('rows_in', 0):,} 行, 隔离 {r1.get('rows_quarantined', 0):,} 行; 发现问题 {sum(r1.get('counts_by_severity', {}).values())} 项。",
        f"{r1.get('rows_in', 0):,} rows received, {r1.get('rows_quarantined', 0):,} quarantined; {sum(r1.get('counts_by_severity', {}).values())} findings."))
    rd = pd.DataFrame(r1.get("readiness", []))
    if len(rd):
        show_table(rd[[c for c in ("stage", "score", "go", "reason") if c in rd.columns]])

# %%
r2 = results.get("02_tag_design")
if r2:
    show_markdown(T("## 二、标签体系", "## 2. Tag library") + "\n\n" + T(
        f"{r2['tags']} 个客户标签按时点口径覆盖 {r2['customers']:,} 户客户; 建议保留 {r2['recommendations'].get('keep', 0)} 个, 具有预测力的标签 {len(r2.get('predictive_tags', []))} 个。",
        f"{r2['tags']} customer tags computed point-in-time for {r2['customers']:,} customers; {r2['recommendations'].get('keep', 0)} to keep, {len(r2.get('predictive_tags', []))} predictive."))

# %%
if r3:
    show_markdown(T("## 三、价值分层与一户一价", "## 3. Value tiers and pricing"))
    show_table(tiers[[lab, "customers", "share", "value_share"]].rename(columns={lab: T("层级", "Tier"), "customers": T("客户数", "Customers"),
                                                                            "share": T("客户占比", "Share"), "value_share": T("价值占比", "Value share")}),
               formats={T("客户占比", "Share"): style.fmt_pct, T("价值占比", "Value share"): style.fmt_pct, T("客户数", "Customers"): "{:,}".format})

# %%
r4 = results.get("04_opportunities")
if r4:
    ev = pd.DataFrame(r4["events"])
    sel = ev[ev["selected"]]
    show_markdown(T("## 四、商机事件", "## 4. Opportunity events") + "\n\n" + T(
        f"入选试点的事件 {len(sel)} 个 (回测期 {r4['backtest_first_month']} 至 {r4['backtest_last_month']}):",
        f"{len(sel)} events selected for the pilot (backtest {r4['backtest_first_month']} to {r4['backtest_last_month']}):"))
    show_table(sel[["event_id", "triggers", "hit_rate", "base_rate", "lift", "q_value"]].rename(columns={
        "event_id": T("事件", "Event"), "triggers": T("触发次数", "Triggers"), "hit_rate": T("触发转化率", "Hit rate"),
        "base_rate": T("基准转化率", "Base rate"), "lift": T("提升度", "Lift"), "q_value": "q"}),
        formats={T("触发转化率", "Hit rate"): style.fmt_pct, T("基准转化率", "Base rate"): style.fmt_pct,
                 T("提升度", "Lift"): "{:.2f}".format, "q": "{:.3f}".format})

# %%
r5 = results.get("05_pilot")
if r5 and r5.get("outcomes"):
    show_markdown(T("## 五、试点评估", "## 5. Pilot evaluation") + "\n\n" + T(
        f"试点 {r5['pilot_id']}: {r5['customers']:,} 户随机分组, 样本比例检验 p = {r5['srm_p_value']:.2f}; 触达率 {style.fmt_pct(r5['contact_rate'])}。",
        f"Pilot {r5['pilot_id']}: {r5['customers']:,} customers randomised; sample-ratio test p = {r5['srm_p_value']:.2f}; contact rate {style.fmt_pct(r5['contact_rate'])}."))
    oc = pd.DataFrame(r5["outcomes"])
    oc["outcome"] = oc["outcome"].map({"loan_conversion": T("贷款转化率", "Loan conversion"), "deposit_change": T("活期日均变化(元)", "Demand deposit change (CNY)")})
    show_table(oc[["outcome", "effect", "ci_low", "ci_high", "p_value"]].rename(columns={"outcome": T("指标", "Outcome"), "effect": T("效果", "Effect"),
               "ci_low": T("95%下限", "95% low"), "ci_high": T("95%上限", "95% high"), "p_value": "p"}),
               formats={T("效果", "Effect"): "{:,.4f}".format, T("95%下限", "95% low"): "{:,.4f}".format, T("95%上限", "95% high"): "{:,.4f}".format,
                        "p": lambda v: "<0.001" if v < 0.001 else f"{v:.3f}"})

# %%
ctx.save_results("executive_summary", {"points": points, "recommendation": executive.recommendation(results, language),
                                       "stages_present": [s for s, r in results.items() if r]})
ctx.close()
