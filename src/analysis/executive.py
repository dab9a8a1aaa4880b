"""The executive summary: conclusions with numbers, generated from the stages' results/*.json."""

from __future__ import annotations

from .style import fmt_money, fmt_pct

STAGE_IDS = ("01_data_assessment", "02_tag_design", "03_value_tiers", "04_opportunities", "05_pilot")


def headline_points(results: dict[str, dict | None], language: str) -> list[str]:
    """One sentence per stage that has results, in the report language, numbers inserted."""
    zh = language == "zh"
    pts: list[str] = []
    r1 = results.get("01_data_assessment")
    if r1:
        go = [r["stage"] for r in r1.get("readiness", []) if r.get("go")]
        n = len(r1.get("readiness", []))
        blockers = r1.get("counts_by_severity", {}).get("blocker", 0)
        pts.append(f"**数据就绪**: {len(go)}/{n} 个阶段具备启动条件, 阻断问题 {blockers} 项, 已形成给科技部门的整改清单。" if zh else
                   f"**Data readiness**: {len(go)} of {n} stages can start; {blockers} blocking findings, sent to IT as a fix list.")
    r3 = results.get("03_value_tiers")
    if r3:
        strat = next((t for t in r3.get("tiers", []) if t.get("tier") == "strategic"), None)
        s = (f"**价值集中**: 前 20% 客户贡献 {fmt_pct(r3['top20_value_share'])} 的价值 (基尼 {r3['gini']:.2f})" if zh else
             f"**Value concentration**: the top 20% of customers earn {fmt_pct(r3['top20_value_share'])} of value (Gini {r3['gini']:.2f})")
        if strat:
            s += (f"; 战略客户 {strat['customers']:,} 户贡献 {fmt_pct(strat['value_share'])}。" if zh else
                  f"; {strat['customers']:,} strategic customers earn {fmt_pct(strat['value_share'])}.")
        pts.append(s)
        sim = (r3.get("pricing") or {}).get("simulation")
        if sim:
            pts.append(f"**一户一价**: 平均优惠 {sim['avg_discount_bp']:.0f} bp, 年让利 {fmt_money(sim['nii_cost'], 'zh')}, 预计新增贷款 {sim['extra_customers']:,.0f} 户 / {fmt_money(sim['extra_volume'], 'zh')}, 净利息收入净影响 {fmt_money(sim['net_nii_effect'], 'zh')}。" if zh else
                       f"**Per-customer pricing**: an average {sim['avg_discount_bp']:.0f} bp discount costs {fmt_money(sim['nii_cost'], 'en')} a year, adds an expected {sim['extra_customers']:,.0f} loans ({fmt_money(sim['extra_volume'], 'en')}); net interest income effect {fmt_money(sim['net_nii_effect'], 'en')}.")
    r4 = results.get("04_opportunities")
    if r4:
        sel = [e for e in r4.get("events", []) if e.get("selected")]
        tl = r4.get("task_list", {})
        pts.append(f"**商机事件**: {len(r4.get('events', []))} 个事件经回测, {len(sel)} 个显著提升转化 (FDR ≤ {r4.get('fdr_q', 0.1):.0%}); 本月名单 {tl.get('customers', 0):,} 户, 预计成交 {tl.get('expected_conversions', 0):,.0f} 户。" if zh else
                   f"**Opportunity events**: of {len(r4.get('events', []))} events backtested, {len(sel)} lift conversion significantly (FDR ≤ {r4.get('fdr_q', 0.1):.0%}); this month's lists hold {tl.get('customers', 0):,} customers with {tl.get('expected_conversions', 0):,.0f} expected conversions.")
    r5 = results.get("05_pilot")
    if r5 and r5.get("outcomes"):
        conv = next((o for o in r5["outcomes"] if o["outcome"] == "loan_conversion"), None)
        dep = next((o for o in r5["outcomes"] if o["outcome"] == "deposit_change"), None)
        if conv:
            el = r5.get("extra_loans", {})
            pts.append(f"**试点结果**: 贷款转化提升 {conv['effect'] * 100:.1f} 个百分点 (95% 区间 {conv['ci_low'] * 100:.1f} 至 {conv['ci_high'] * 100:.1f}), 多成交约 {el.get('estimate', 0):,.0f} 户" + (f"; 户均活期日均多增 {fmt_money(dep['effect'], 'zh')} (区间 {fmt_money(dep['ci_low'], 'zh')} 至 {fmt_money(dep['ci_high'], 'zh')})。" if dep else "。") if zh else
                       f"**Pilot result**: loan conversion up {conv['effect'] * 100:.1f} points (95% CI {conv['ci_low'] * 100:.1f} to {conv['ci_high'] * 100:.1f}), about {el.get('estimate', 0):,.0f} extra customers" + (f"; demand deposits up {fmt_money(dep['effect'], 'en')} per customer (CI {fmt_money(dep['ci_low'], 'en')} to {fmt_money(dep['ci_high'], 'en')})." if dep else "."))
    return pts


def recommendation(results: dict[str, dict | None], language: str) -> str:
    """The decision the summary asks for, derived from the pilot's interval."""
    zh = language == "zh"
    r5 = results.get("05_pilot") or {}
    conv = next((o for o in r5.get("outcomes", []) if o["outcome"] == "loan_conversion"), None)
    if conv is None:
        return "建议: 按商机名单启动试点, 试点结束后评估推广。" if zh else "Recommendation: launch the pilot on the event lists and evaluate before scaling."
    if conv["ci_low"] > 0:
        return ("建议: 试点效果显著为正, 建议在全行推广商机名单与一户一价, 同时针对触达率低的支行加强过程管理。" if zh else
                "Recommendation: the pilot effect is clearly positive; roll the event lists and per-customer pricing out bank-wide and tighten follow-up where contact rates are low.")
    return ("建议: 试点效果尚不显著, 建议延长试点或扩大样本后再决定推广。" if zh else
            "Recommendation: the pilot effect is not yet conclusive; extend or enlarge the pilot before scaling.")
