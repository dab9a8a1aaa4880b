"""The executive summary: conclusions with numbers, generated from the stages' results/*.json.

Every sentence is a template (zh and en) with the numbers inserted, so the summary, the deck
and any later re-run read the same way. ``conclusions`` feeds the first page of the summary and
the deck; ``headline_points`` keeps the one-sentence-per-topic form.
"""

from __future__ import annotations

from dataclasses import dataclass

from .style import fmt_money, fmt_pct

STAGE_IDS = ("01_data_assessment", "02_tag_design", "03_value_tiers", "04_opportunities", "05_pilot")

# Sentence templates: key → (zh, en). Fields are pre-formatted strings.
TEMPLATES: dict[str, tuple[str, str]] = {
    "readiness": ("{go}/{n} 个阶段具备启动条件, 阻断问题 {blockers} 项{blocking}; 整改清单已交科技部门。",
                  "{go} of {n} stages can start; {blockers} blocking finding{plural}{blocking}; the fix list is with IT."),
    "concentration": ("前 20% 客户贡献 {top20} 的价值 (基尼系数 {gini})。",
                      "The top 20% of customers earn {top20} of value (Gini {gini})."),
    "strategic": ("战略客户 {n} 户 (占 {share}) 贡献 {value_share} 的价值, 户均提升空间 {headroom}。",
                  "{n} strategic customers ({share} of customers) earn {value_share} of value, with {headroom} headroom each."),
    "pricing_discount": ("平均优惠 {bp} bp, 年让利 {cost}, 预计新增贷款 {extra} 户 / {volume}; 净利息收入净影响 {net}。",
                         "An average {bp} bp discount costs {cost} a year and adds an expected {extra} loans ({volume}); net interest income effect {net}."),
    "pricing_premium": ("平均上浮 {bp} bp, 年增利息收入 {cost}, 预计流失贷款 {extra} 户 / {volume}; 净利息收入净影响 {net}。",
                        "An average {bp} bp premium earns {cost} a year but loses an expected {extra} loans ({volume}); net interest income effect {net}."),
    "events": ("回测 {n} 个商机事件, {sel} 个显著提升转化 (FDR ≤ {q}); 本月名单 {customers} 户, 预计成交 {conv} 户。",
               "{sel} of {n} backtested events lift conversion significantly (FDR ≤ {q}); this month's lists hold {customers} customers with {conv} expected conversions."),
    "pilot": ("试点贷款转化提升 {effect} 个百分点 (95% 区间 {lo} 至 {hi}), 多成交约 {extra} 户 (区间 {extra_lo} 至 {extra_hi})。",
              "The pilot lifted loan conversion by {effect} points (95% CI {lo} to {hi}): about {extra} extra customers (CI {extra_lo} to {extra_hi})."),
    "pilot_deposits": ("营销组活期日均多增 {est} (区间 {lo} 至 {hi})。",
                       "Demand deposits grew {est} more in the treated group (CI {lo} to {hi})."),
}

TOPIC_LABELS: dict[str, tuple[str, str]] = {
    "readiness": ("数据就绪", "Data readiness"),
    "concentration": ("价值集中", "Value concentration"),
    "strategic": ("战略客户", "Strategic customers"),
    "pricing": ("一户一价", "Per-customer pricing"),
    "events": ("商机事件", "Opportunity events"),
    "pilot": ("试点结果", "Pilot result"),
}


@dataclass(frozen=True)
class Conclusion:
    """One first-page conclusion: topic, headline number and the sentence with numbers."""

    topic: str
    label: str
    figure: str  # the headline number, formatted
    figure_label: str
    sentence: str


def _say(key: str, language: str, **fields) -> str:
    zh, en = TEMPLATES[key]
    return (zh if language == "zh" else en).format(**fields)


def _n(v: float) -> str:
    return f"{v:,.0f}"


def conclusions(results: dict[str, dict | None], language: str) -> list[Conclusion]:
    """The first page's conclusions, in the report language, from whatever stages have results."""
    zh = language == "zh"
    L = lambda a, b: a if zh else b  # noqa: E731
    out: list[Conclusion] = []

    def add(topic, figure, figure_label, sentence):
        out.append(Conclusion(topic, L(*TOPIC_LABELS[topic]), figure, figure_label, sentence))

    r3 = results.get("03_value_tiers")
    if r3 and r3.get("top20_value_share") is not None:
        add("concentration", fmt_pct(r3["top20_value_share"], 0), L("前 20% 客户的价值占比", "value share of the top 20%"),
            _say("concentration", language, top20=fmt_pct(r3["top20_value_share"]), gini=f"{r3.get('gini', 0):.2f}"))
        strat = next((t for t in r3.get("tiers", []) if t.get("tier") == "strategic"), None)
        if strat:
            add("strategic", f"{strat['customers']:,}", L("战略客户 (户)", "strategic customers"),
                _say("strategic", language, n=f"{strat['customers']:,}", share=fmt_pct(strat.get("share")),
                     value_share=fmt_pct(strat.get("value_share")),
                     headroom=fmt_money(strat.get("avg_headroom"), language)))
    r4 = results.get("04_opportunities")
    if r4:
        events = r4.get("events", [])
        sel = [e for e in events if e.get("selected")]
        tl = r4.get("task_list", {})
        add("events", _n(tl.get("expected_conversions", 0)), L("本月名单预计成交 (户)", "expected conversions this month"),
            _say("events", language, n=len(events), sel=len(sel), q=f"{r4.get('fdr_q', 0.1):.0%}",
                 customers=f"{tl.get('customers', 0):,}", conv=_n(tl.get("expected_conversions", 0))))
    r5 = results.get("05_pilot")
    if r5 and r5.get("outcomes"):
        conv = next((o for o in r5["outcomes"] if o["outcome"] == "loan_conversion"), None)
        dep = next((o for o in r5["outcomes"] if o["outcome"] == "deposit_change"), None)
        if conv:
            el = r5.get("extra_loans", {})
            s = _say("pilot", language, effect=f"{conv['effect'] * 100:.1f}", lo=f"{conv['ci_low'] * 100:.1f}",
                     hi=f"{conv['ci_high'] * 100:.1f}", extra=_n(el.get("estimate", 0)),
                     extra_lo=_n(el.get("ci_low", 0)), extra_hi=_n(el.get("ci_high", 0)))
            ed = r5.get("extra_deposits")
            if ed:
                s += " " + _say("pilot_deposits", language, est=fmt_money(ed["estimate"], language),
                                lo=fmt_money(ed["ci_low"], language), hi=fmt_money(ed["ci_high"], language))
            elif dep:
                s += " " + _say("pilot_deposits", language, est=fmt_money(dep["effect"], language),
                                lo=fmt_money(dep["ci_low"], language), hi=fmt_money(dep["ci_high"], language))
            add("pilot", f"+{conv['effect'] * 100:.1f}pp", L("贷款转化提升", "loan conversion lift"), s)
    if r3:
        sim = (r3.get("pricing") or {}).get("simulation")
        if sim:
            bp = sim["avg_discount_bp"]
            key = "pricing_discount" if bp >= 0 else "pricing_premium"
            add("pricing", fmt_money(sim["net_nii_effect"], language), L("净利息收入净影响 (年)", "net interest income effect a year"),
                _say(key, language, bp=f"{abs(bp):.0f}", cost=fmt_money(abs(sim["nii_cost"]), language),
                     extra=_n(abs(sim["extra_customers"])), volume=fmt_money(abs(sim["extra_volume"]), language),
                     net=fmt_money(sim["net_nii_effect"], language)))
    r1 = results.get("01_data_assessment")
    if r1:
        rd = r1.get("readiness", [])
        go = [r for r in rd if r.get("go") or r.get("decision") == "go"]
        blockers = r1.get("counts_by_severity", {}).get("blocker", 0)
        stopped = [r for r in rd if not (r.get("go") or r.get("decision") == "go")]
        blocking = ""
        if stopped:
            names = ", ".join(str(r.get("label_zh" if zh else "label_en") or r.get("stage")) for r in stopped[:3])
            blocking = L(f", 暂缓: {names}", f"; on hold: {names}")
        add("readiness", f"{len(go)}/{len(rd)}", L("阶段具备启动条件", "stages ready to start"),
            _say("readiness", language, go=len(go), n=len(rd), blockers=blockers, blocking=blocking,
                 plural="" if blockers == 1 else "s"))
    return out


def headline_points(results: dict[str, dict | None], language: str) -> list[str]:
    """One sentence per conclusion, in the report language, with the topic in bold."""
    return [f"**{c.label}**: {c.sentence}" for c in conclusions(results, language)]


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
