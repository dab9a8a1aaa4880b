"""The executive deck (pptx): one message per slide, its chart and its numbers, zh or en.

Built with python-pptx from the same results/*.json as the executive summary; charts are PNGs
drawn with matplotlib in the house style (analysis.style), so LibreOffice shows them exactly.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from . import executive, style
from .i18n import stage_title, t

# 16:9 in EMU (English Metric Units: 914,400 per inch).
SLIDE_W, SLIDE_H = 12_192_000, 6_858_000
INCH = 914_400


@dataclass
class SlideSpec:
    """What one slide says: its message (title), a chart PNG, numbers and notes."""

    message: str
    chart: object | None = None  # a matplotlib Figure or PNG bytes
    numbers: list[tuple[str, str]] = field(default_factory=list)  # (value, label)
    bullets: list[str] = field(default_factory=list)
    source: str = ""


def _rgb(hex_colour: str):
    from pptx.dml.color import RGBColor

    return RGBColor.from_string(hex_colour.lstrip("#"))


def _east_asian_font(run, family: str) -> None:
    """Name the font for Chinese characters too (a:ea); python-pptx sets only the Latin one."""
    from pptx.oxml.ns import qn

    rpr = run._r.get_or_add_rPr()
    latin = rpr.find(qn("a:latin"))
    ea = rpr.find(qn("a:ea"))
    if ea is None:
        ea = rpr.makeelement(qn("a:ea"), {})
        if latin is not None:
            latin.addnext(ea)
        else:
            rpr.append(ea)
    ea.set("typeface", family)


def soffice_env(workdir: Path) -> dict[str, str]:
    """Environment for LibreOffice that finds the CJK font mplfonts ships (for pdf checks)."""
    import os

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
        f"<dir>{style.cjk_font_dir()}</dir>"
        '<include ignore_missing="yes">/etc/fonts/fonts.conf</include>'
        f"<cachedir>{workdir / 'fc-cache'}</cachedir></fontconfig>", encoding="utf-8")
    return {**os.environ, "FONTCONFIG_FILE": str(conf), "HOME": str(workdir)}


def pptx_to_pdf(pptx: Path, out_dir: Path) -> Path:
    """Convert a deck to pdf with LibreOffice (soffice on PATH); returns the pdf path."""
    import subprocess

    out_dir = Path(out_dir)
    env = soffice_env(out_dir / ".soffice")
    subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(out_dir), str(pptx)],
                   env=env, check=True, capture_output=True, timeout=300)
    return out_dir / (Path(pptx).stem + ".pdf")


def _fig_png(fig) -> bytes:
    return style.figure_png(fig, dpi=200, pad_inches=0.12)


# ---------------------------------------------------------------- charts

def fig_tiers(r3: dict, lang: str) -> "Figure":
    import matplotlib.pyplot as plt

    tiers = r3["tiers"]
    lab = "label_zh" if lang == "zh" else "label_en"
    fig, ax = plt.subplots(figsize=(7.2, 4.0))
    x = range(len(tiers))
    ax.bar([i - 0.2 for i in x], [t_["share"] for t_ in tiers], width=0.4, color=style.PALETTE["grey_light"],
           label=t("客户占比", "Share of customers", lang))
    ax.bar([i + 0.2 for i in x], [t_["value_share"] for t_ in tiers], width=0.4, color=style.PALETTE["navy"],
           label=t("价值占比", "Share of value", lang))
    for i, t_ in enumerate(tiers):
        ax.text(i + 0.2, t_["value_share"], style.fmt_pct(t_["value_share"], 0), ha="center", va="bottom", fontsize=8.5,
                color=style.PALETTE["navy"])
    ax.set_xticks(list(x), [t_.get(lab) or t_["tier"] for t_ in tiers])
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.legend(loc="upper right")
    return fig


def _barh(names, values, color, *, height: float = 3.6, xlabel: str | None = None):
    """The deck's horizontal bar chart: slide width, bars 0.6 high, vertical grid lines only."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, height))
    ax.barh(names, values, color=color, height=0.6)
    ax.grid(axis="x", color=style.PALETTE["grey_faint"])
    ax.grid(axis="y", visible=False)
    if xlabel:
        ax.set_xlabel(xlabel)
    return fig, ax


def fig_readiness(r1: dict, lang: str) -> "Figure":
    rd = r1.get("readiness", [])
    names = [str(r.get("label_zh" if lang == "zh" else "label_en") or r.get("stage")) for r in rd]
    scores = [float(r.get("score", 0)) for r in rd]
    go = [bool(r.get("go") or r.get("decision") == "go") for r in rd]
    fig, ax = _barh(names[::-1], scores[::-1], [style.PALETTE["teal"] if g else style.PALETTE["gold"] for g in go[::-1]],
                    xlabel=t("数据就绪评分 (满分 100)", "Readiness score (of 100)", lang))
    for y, (s, g) in enumerate(zip(scores[::-1], go[::-1])):
        ax.text(s + 1, y, f"{s:.0f}  " + (t("可启动", "go", lang) if g else t("暂缓", "on hold", lang)), va="center", fontsize=9)
    ax.set_xlim(0, 125)
    return fig


def fig_events(r4: dict, lang: str, labels: dict[str, tuple[str, str]]) -> "Figure | None":
    ev = sorted([e for e in r4.get("events", []) if e.get("lift") is not None], key=lambda e: e["lift"])[-8:]
    if not ev:
        return None
    names = [t(*labels[e["event_id"]], lang) if e["event_id"] in labels else e["event_id"] for e in ev]
    fig, ax = _barh(names, [e["lift"] for e in ev],
                    [style.PALETTE["navy"] if e.get("selected") else style.PALETTE["grey_light"] for e in ev],
                    height=3.8, xlabel=t("转化提升度 (倍, 深色 = 入选)", "Conversion lift (x; dark = selected)", lang))
    ax.axvline(1, color=style.PALETTE["grey"], lw=0.8, ls="--")
    return fig


def fig_pilot(r5: dict, lang: str) -> "Figure | None":
    import matplotlib.pyplot as plt

    conv = next((o for o in r5.get("outcomes", []) if o["outcome"] == "loan_conversion"), None)
    if conv is None:
        return None
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    vals = [conv["mean_control"], conv["mean_treatment"]]
    ax.bar([t("对照组", "Control", lang), t("营销组", "Treated", lang)], vals,
           color=[style.PALETTE["grey_light"], style.PALETTE["navy"]], width=0.55)
    for i, v in enumerate(vals):
        ax.text(i, v, style.fmt_pct(v), ha="center", va="bottom", fontsize=10, color=style.PALETTE["navy"])
    ax.errorbar([1], [conv["mean_treatment"]], yerr=[[conv["effect"] - conv["ci_low"]], [conv["ci_high"] - conv["effect"]]],
                fmt="none", ecolor=style.PALETTE["gold"], capsize=6, lw=1.6)
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.set_ylabel(t("贷款转化率", "Loan conversion", lang))
    return fig


def fig_funnel(fn: dict | None, lang: str) -> "Figure | None":
    if not fn:
        return None
    steps = [k for k in ("listed", "contacted", "interested", "applied", "converted") if k in fn]
    if len(steps) < 2:
        return None
    names = {"listed": ("入名单", "Listed"), "contacted": ("已触达", "Contacted"), "interested": ("有意向", "Interested"),
             "applied": ("已申请", "Applied"), "converted": ("已放款", "Loan disbursed")}
    vals = [float(fn[k]) for k in steps]
    colors = [style.PALETTE["navy"], style.PALETTE["navy"], style.PALETTE["teal"], style.PALETTE["teal"], style.PALETTE["gold"]]
    fig, ax = _barh([t(*names[k], lang) for k in steps][::-1], vals[::-1], colors[:len(steps)][::-1])
    for y, v in enumerate(vals[::-1]):
        ax.text(v, y, f"  {v:,.0f} ({style.fmt_pct(v / vals[0] if vals[0] else 0, 0)})", va="center", fontsize=9)
    ax.set_xlim(0, max(vals) * 1.3 if max(vals) else 1)
    return fig


def fig_tags(r2: dict, lang: str, tag_labels: dict[str, tuple[str, str]] | None = None) -> "Figure | None":
    tags = sorted(r2.get("predictive_tags", []), key=lambda x: x.get("iv", 0))[-8:]
    if not tags:
        return None
    labels = tag_labels or {}
    names = [t(*labels[x["tag_id"]], lang) if x["tag_id"] in labels else x["tag_id"] for x in tags]
    fig, ax = _barh(names, [x["iv"] for x in tags], style.PALETTE["navy"], height=3.8,
                    xlabel=t("信息值 IV (虚线 0.1 = 中等预测力)", "Information value (dashed 0.1 = medium power)", lang))
    ax.axvline(0.1, color=style.PALETTE["gold"], lw=1, ls="--")
    return fig


def fig_tier_value(r3: dict, lang: str) -> "Figure | None":
    import matplotlib.pyplot as plt

    tiers = [x for x in r3.get("tiers", []) if x.get("avg_current") is not None]
    if not tiers:
        return None
    lab = "label_zh" if lang == "zh" else "label_en"
    scale = 1e4 if lang == "zh" else 1e3
    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    x = range(len(tiers))
    cur = [x_["avg_current"] / scale for x_ in tiers]
    head = [max(x_.get("avg_headroom") or 0, 0) / scale for x_ in tiers]
    ax.bar(list(x), cur, color=style.PALETTE["navy"], width=0.55, label=t("户均当前价值", "Current value each", lang))
    ax.bar(list(x), head, bottom=cur, color=style.PALETTE["teal_light"], width=0.55, label=t("户均提升空间", "Headroom each", lang))
    ax.set_xticks(list(x), [x_.get(lab) or x_["tier"] for x_ in tiers])
    ax.set_ylabel(t("万元 / 年", "CNY K a year", lang))
    ax.legend(loc="upper right")
    return fig


def fig_pilot_tiers(r5: dict, lang: str, tier_labels: dict[str, tuple[str, str]] | None = None) -> "Figure | None":
    import matplotlib.pyplot as plt

    rows = [r for r in r5.get("by_tier", []) if r.get("effect") is not None and r.get("ci_low") is not None]
    if not rows:
        return None
    labels = tier_labels or {}
    key = next((k for k in ("segment", "tier", "stratum", "group") if k in rows[0]), None)
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    names = [t(*labels[r[key]], lang) if key and r[key] in labels else str(r.get(key, i)) for i, r in enumerate(rows)]
    ys = range(len(rows))
    ax.errorbar([r["effect"] * 100 for r in rows], list(ys),
                xerr=[[(r["effect"] - r["ci_low"]) * 100 for r in rows], [(r["ci_high"] - r["effect"]) * 100 for r in rows]],
                fmt="o", color=style.PALETTE["navy"], ecolor=style.PALETTE["grey"], capsize=4)
    ax.axvline(0, color=style.PALETTE["gold"], lw=1, ls="--")
    ax.set_yticks(list(ys), names)
    ax.set_xlabel(t("贷款转化提升 (百分点, 95% 区间)", "Loan conversion lift (points, 95% CI)", lang))
    ax.grid(axis="x", color=style.PALETTE["grey_faint"])
    ax.grid(axis="y", visible=False)
    return fig


def fig_pricing(sim: dict, lang: str) -> "Figure":
    import matplotlib.pyplot as plt

    items = [(t("让利 / 增收", "Rate effect", lang), -sim["nii_cost"]),
             (t("量的变化", "Volume effect", lang), sim["extra_nii"]),
             (t("净影响", "Net effect", lang), sim["net_nii_effect"])]
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    scale = 1e4 if lang == "zh" else 1e6
    vals = [v / scale for _, v in items]
    ax.bar([k for k, _ in items], vals,
           color=[style.PALETTE["teal"] if v >= 0 else style.PALETTE["gold"] for v in vals[:2]] + [style.PALETTE["navy"]], width=0.55)
    for i, (_, v) in enumerate(items):
        ax.text(i, v / scale, style.fmt_money(v, lang), ha="center", va="bottom" if v >= 0 else "top", fontsize=9.5)
    ax.axhline(0, color=style.PALETTE["grey"], lw=0.8)
    ax.set_ylabel(t("万元 / 年", "CNY M a year", lang))
    return fig


# ---------------------------------------------------------------- slides from results

def deck_slides(results: dict[str, dict | None], language: str, as_of: str,
                event_labels: dict[str, tuple[str, str]] | None = None,
                tag_labels: dict[str, tuple[str, str]] | None = None,
                tier_labels: dict[str, tuple[str, str]] | None = None,
                funnel: dict | None = None) -> list[SlideSpec]:
    """The deck's content slides after the title slide, one message each.

    funnel: treatment-arm counts (listed, contacted, interested, applied, converted) as of the
    latest RM feedback, when the warehouse is at hand (see analysis.dashboard).
    """
    style.setup_matplotlib()
    L = lambda zh, en: t(zh, en, language)  # noqa: E731
    labels = event_labels or {}
    concl = {c.topic: c for c in executive.conclusions(results, language)}
    slides: list[SlideSpec] = []
    src_bank = L("行内数据", "Bank data")

    conv = next((o for o in (results.get("05_pilot") or {}).get("outcomes", []) if o["outcome"] == "loan_conversion"), None)
    if conv is not None and conv["ci_low"] > 0:
        headline = L("核心结论: 价值高度集中, 商机名单经试点验证有效", "Key conclusions: value is concentrated and the event lists work")
    elif conv is not None:
        headline = L("核心结论: 价值高度集中, 试点方向正确但效果尚需更大样本确认",
                     "Key conclusions: value is concentrated; the pilot points the right way but needs a larger sample")
    else:
        headline = L("核心结论", "Key conclusions")
    slides.append(SlideSpec(
        message=headline,
        numbers=[(c.figure, c.figure_label) for c in concl.values()][:4],
        bullets=[f"{c.label}: {c.sentence}" for c in concl.values()], source=src_bank))

    r1 = results.get("01_data_assessment")
    if r1:
        c = concl.get("readiness")
        slides.append(SlideSpec(message=c.sentence if c else L("数据就绪", "Data readiness"),
                                chart=fig_readiness(r1, language),
                                numbers=[(f"{r1.get('rows_in', 0):,}", L("收到数据行", "rows received")),
                                         (f"{r1.get('findings_total', 0)}", L("数据问题", "findings")),
                                         (f"{r1.get('counts_by_severity', {}).get('blocker', 0)}", L("阻断问题", "blocking"))],
                                bullets=[str(f.get("fix_zh" if language == "zh" else "fix_en", ""))[:140]
                                         for f in r1.get("top_findings", [])[:2] if f.get("severity") == "blocker"],
                                source=L("数据评估", "Data assessment")))
    r2 = results.get("02_tag_design")
    if r2:
        keep = (r2.get("recommendations") or {}).get("keep", 0)
        slides.append(SlideSpec(
            message=L(f"{r2.get('tags', 0)} 个标签覆盖 {r2.get('customers', 0):,} 户, {len(r2.get('predictive_tags', []))} 个具备预测力",
                      f"{r2.get('tags', 0)} tags cover {r2.get('customers', 0):,} customers; {len(r2.get('predictive_tags', []))} predict take-up"),
            numbers=[(f"{r2.get('tags', 0)}", L("标签", "tags")), (f"{keep}", L("建议保留", "to keep")),
                     (f"{len(r2.get('predictive_tags', []))}", L("预测力标签", "predictive tags")),
                     (style.fmt_pct(r2.get("target_rate")), L("目标产品转化基准", "base take-up rate"))],
            chart=fig_tags(r2, language, tag_labels),
            bullets=[L("标签按时点口径计算, 只用当月末及以前的数据, 可直接用于营销名单与模型。",
                       "Tags are computed point-in-time from data up to each month end, ready for lists and models.")],
            source=L("标签体系", "Tag library")))
    r3 = results.get("03_value_tiers")
    if r3 and r3.get("tiers"):
        c = concl.get("concentration")
        slides.append(SlideSpec(message=c.sentence if c else L("价值分层", "Value tiers"), chart=fig_tiers(r3, language),
                                numbers=[(style.fmt_pct(r3.get("top20_value_share"), 0), L("前 20% 客户价值占比", "value of the top 20%")),
                                         (f"{r3.get('gini', 0):.2f}", L("基尼系数", "Gini")),
                                         (style.fmt_money(r3.get("total_current_value"), language), L("年度价值合计", "total annual value"))],
                                source=L("价值分层模型", "Value-tier model")))
        s = concl.get("strategic")
        strat = next((x for x in r3["tiers"] if x.get("tier") == "strategic"), None)
        if s and strat:
            slides.append(SlideSpec(message=s.sentence, chart=fig_tier_value(r3, language),
                                    numbers=[(f"{strat['customers']:,}", L("战略客户 (户)", "strategic customers")),
                                             (style.fmt_pct(strat.get("value_share")), L("价值占比", "share of value")),
                                             (style.fmt_money(strat.get("avg_current"), language), L("户均年度价值", "annual value each")),
                                             (style.fmt_money(strat.get("avg_headroom"), language), L("户均提升空间", "headroom each"))],
                                    bullets=[L("由支行行长与资深客户经理一对一维护, 每季度走访并制定综合方案。",
                                               "Serve one-to-one by branch heads and senior RMs: quarterly visits and a tailored package."),
                                             L("客户一页纸画像见 reports/customer360/。", "One-page profiles are in reports/customer360/.")],
                                    source=L("价值分层模型", "Value-tier model")))
        sim = (r3.get("pricing") or {}).get("simulation")
        p = concl.get("pricing")
        if sim and p:
            el = (r3.get("pricing") or {}).get("elasticity") or {}
            slides.append(SlideSpec(message=p.sentence, chart=fig_pricing(sim, language),
                                    numbers=[(f"{abs(sim['avg_discount_bp']):.0f} bp", L("平均价格调整", "average rate change")),
                                             (style.fmt_money(sim["net_nii_effect"], language), L("净利息收入净影响", "net interest income effect")),
                                             (f"{el.get('marginal_effect_per_bp', 0) * 100:.2f}pp", L("每 1bp 让利的转化变化", "take-up change per bp"))],
                                    source=L("定价弹性模型", "Price-elasticity model")))
    r4 = results.get("04_opportunities")
    if r4:
        c = concl.get("events")
        tl = r4.get("task_list", {})
        slides.append(SlideSpec(message=c.sentence if c else L("商机事件", "Opportunity events"),
                                chart=fig_events(r4, language, labels),
                                numbers=[(f"{len([e for e in r4.get('events', []) if e.get('selected')])}", L("入选事件", "events selected")),
                                         (f"{tl.get('customers', 0):,}", L("本月名单 (户)", "customers listed")),
                                         (f"{tl.get('expected_conversions', 0):,.0f}", L("预计成交 (户)", "expected conversions")),
                                         (f"{tl.get('rms', 0)}", L("客户经理", "RMs"))],
                                source=L(f"回测 {r4.get('backtest_first_month', '')} 至 {r4.get('backtest_last_month', '')}",
                                         f"Backtest {r4.get('backtest_first_month', '')} to {r4.get('backtest_last_month', '')}")))
    r5 = results.get("05_pilot")
    if r5 and r5.get("outcomes"):
        c = concl.get("pilot")
        el = r5.get("extra_loans", {})
        slides.append(SlideSpec(message=c.sentence if c else L("试点结果", "Pilot result"), chart=fig_pilot(r5, language),
                                numbers=[(f"{r5.get('customers', 0):,}", L("随机分组客户", "customers randomised")),
                                         (f"{el.get('estimate', 0):,.0f}", L("多成交 (户)", "extra customers")),
                                         (f"{el.get('ci_low', 0):,.0f}–{el.get('ci_high', 0):,.0f}", L("95% 区间 (户)", "95% CI (customers)"))]
                                + ([(style.fmt_money(r5["extra_deposits"]["estimate"], language), L("多增活期日均", "extra demand deposits"))]
                                   if r5.get("extra_deposits") else []),
                                source=L(f"试点 {r5.get('pilot_id', '')}, 随机对照", f"Pilot {r5.get('pilot_id', '')}, randomised control")))
        tiers_fig = fig_pilot_tiers(r5, language, tier_labels)
        if tiers_fig is not None:
            sig = [r for r in r5.get("by_tier", []) if (r.get("ci_low") or 0) > 0]
            slides.append(SlideSpec(
                message=(L(f"分层看: {len(sig)} 个客户层级的提升区间全部为正, 其余层级样本尚小",
                           f"By tier: the lift is clearly positive in {len(sig)} tiers; the other tiers are still too small to tell")
                         if sig else
                         L("分层看: 各层级样本尚小, 区间均跨零, 推广前需扩大试点",
                           "By tier: every tier's interval still spans zero; enlarge the pilot before scaling by tier")),
                chart=tiers_fig,
                numbers=[(f"{len(r5.get('by_tier', []))}", L("客户层级", "tiers")),
                         (f"{len(sig)}", L("区间为正的层级", "tiers with a positive interval")),
                         (f"{r5.get('minimum_detectable_effect', 0) * 100:.1f}pp", L("最小可检测效果", "minimum detectable effect"))],
                source=L(f"试点 {r5.get('pilot_id', '')}, 分层估计", f"Pilot {r5.get('pilot_id', '')}, by tier")))
        ce = r5.get("contacted_effect") or {}
        slides.append(SlideSpec(
            message=L(f"触达率 {style.fmt_pct(r5.get('contact_rate'))}: 真正触达的客户转化提升 {ce.get('effect', 0) * 100:.1f} 个百分点",
                      f"{style.fmt_pct(r5.get('contact_rate'))} were contacted; contact itself lifts conversion by {ce.get('effect', 0) * 100:.1f} points"),
            chart=fig_funnel(funnel, language),
            numbers=[(style.fmt_pct(r5.get("contact_rate")), L("触达率", "contact rate")),
                     (f"{ce.get('effect', 0) * 100:.1f}pp", L("触达带来的转化提升", "lift from contact")),
                     (f"{r5.get('never_worked_rms', 0)}", L("名单未跟进的客户经理", "RMs who left lists unworked"))],
            bullets=[L("提高触达率是扩大效果最直接的杠杆: 按周跟踪看板 reports/pilot_dashboard.html。",
                       "Raising the contact rate is the most direct lever: track it weekly in reports/pilot_dashboard.html.")],
            source=L("客户经理反馈、贷款系统", "RM feedback, loan system")))
    slides.append(SlideSpec(message=_capital(executive.recommendation(results, language).split(":", 1)[-1].strip()),
                            bullets=_next_steps(results, language), source=L("项目组建议", "Engagement team")))
    return slides


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _next_steps(results: dict, language: str) -> list[str]:
    L = lambda zh, en: t(zh, en, language)  # noqa: E731
    steps = [L("科技部门按数据问题清单整改阻断项, 下月复核。", "IT fixes the blocking data findings; re-assessed next month."),
             L("按月刷新标签与商机名单, 推送至客户经理。", "Refresh tags and event lists monthly and push them to RMs."),
             L("战略与核心客户执行一户一价, 按季度复盘利差。", "Apply per-customer pricing to strategic and core customers; review margins quarterly."),
             L("扩大试点到全部支行, 以看板周度跟踪触达与转化。", "Extend the pilot to every branch; track contact and conversion weekly.")]
    return steps


# ---------------------------------------------------------------- pptx

def build_deck(slides: list[SlideSpec], path: Path, *, title: str, bank_name: str, as_of: str,
               language: str, logo: Path | None = None, confidentiality: str | None = None) -> Path:
    """Write the pptx: a title slide, the content slides, each with source, as-of and page number."""
    from pptx import Presentation
    from pptx.enum.text import MSO_ANCHOR, PP_ALIGN
    from pptx.util import Emu, Pt

    P = style.PALETTE
    L = lambda zh, en: t(zh, en, language)  # noqa: E731
    # One family for both scripts: the CJK font carries Latin glyphs and digits too.
    font = style.cjk_font_family()
    conf = confidentiality or L(f"机密 · 仅供{bank_name}内部使用", f"Confidential · for internal use by {bank_name} only")
    prs = Presentation()
    prs.slide_width, prs.slide_height = Emu(SLIDE_W), Emu(SLIDE_H)
    blank = prs.slide_layouts[6]

    def box(slide, x, y, w, h, text="", size=12, color=P["grey_dark"], bold=False, fill=None,
            align=PP_ALIGN.LEFT, anchor=MSO_ANCHOR.TOP):
        shape = slide.shapes.add_textbox(Emu(int(x)), Emu(int(y)), Emu(int(w)), Emu(int(h)))
        if fill:
            shape.fill.solid()
            shape.fill.fore_color.rgb = _rgb(fill)
        tf = shape.text_frame
        tf.word_wrap = True
        tf.vertical_anchor = anchor
        lines = text if isinstance(text, list) else [text]
        for i, line in enumerate(lines):
            para = tf.paragraphs[0] if i == 0 else tf.add_paragraph()
            para.alignment = align
            run = para.add_run()
            run.text = line
            run.font.size = Pt(size)
            run.font.bold = bold
            run.font.name = font
            run.font.color.rgb = _rgb(color)
            _east_asian_font(run, font)
            if isinstance(text, list):
                para.space_after = Pt(8)
        return shape

    def rect(slide, x, y, w, h, colour):
        from pptx.enum.shapes import MSO_SHAPE

        s = slide.shapes.add_shape(MSO_SHAPE.RECTANGLE, Emu(int(x)), Emu(int(y)), Emu(int(w)), Emu(int(h)))
        s.fill.solid()
        s.fill.fore_color.rgb = _rgb(colour)
        s.line.fill.background()
        s.shadow.inherit = False  # LibreOffice draws the theme's default shadow otherwise
        return s

    # Title slide: navy band, bank, title, as-of, confidentiality.
    s = prs.slides.add_slide(blank)
    rect(s, 0, 0, SLIDE_W, SLIDE_H * 0.58, P["navy"])
    box(s, 0.7 * INCH, 0.6 * INCH, 8 * INCH, 0.5 * INCH, bank_name, 18, P["white"])
    if logo and Path(logo).is_file():
        s.shapes.add_picture(str(logo), Emu(int(SLIDE_W - 2.4 * INCH)), Emu(int(0.5 * INCH)), height=Emu(int(0.8 * INCH)))
    box(s, 0.7 * INCH, 1.9 * INCH, 11 * INCH, 1.5 * INCH, title, 34, P["white"], anchor=MSO_ANCHOR.BOTTOM)
    rect(s, 0.7 * INCH, 3.65 * INCH, 1.2 * INCH, 0.05 * INCH, P["gold"])
    box(s, 0.7 * INCH, 4.85 * INCH, 10 * INCH, 0.5 * INCH, f"{L('数据截至', 'As of')} {as_of}", 14, P["grey_dark"])
    box(s, 0.7 * INCH, 6.8 * INCH, 11 * INCH, 0.4 * INCH, conf, 10, P["grey"])

    total = len(slides) + 1
    for n, spec in enumerate(slides, start=2):
        s = prs.slides.add_slide(blank)
        rect(s, 0, 0, SLIDE_W, 0.09 * INCH, P["navy"])
        box(s, 0.5 * INCH, 0.3 * INCH, 12.3 * INCH, 1.1 * INCH, spec.message, 22 if len(spec.message) < 60 else 19,
            P["navy"], anchor=MSO_ANCHOR.MIDDLE)
        rect(s, 0.5 * INCH, 1.45 * INCH, 0.9 * INCH, 0.04 * INCH, P["gold"])
        top = 1.75 * INCH
        if spec.chart is not None and not isinstance(spec.chart, bytes):
            spec.chart = _fig_png(spec.chart)
        if spec.chart:
            from PIL import Image

            img = Image.open(io.BytesIO(spec.chart))
            max_w, max_h = 7.6 * INCH, 4.75 * INCH
            scale = min(max_w / img.width, max_h / img.height)
            s.shapes.add_picture(io.BytesIO(spec.chart), Emu(int(0.5 * INCH)), Emu(int(top)),
                                 width=Emu(int(img.width * scale)), height=Emu(int(img.height * scale)))
            num_x, num_w = 8.5 * INCH, 4.3 * INCH
        else:
            num_x, num_w = 0.5 * INCH, 12.3 * INCH
        # Numbers: cards stacked beside the chart, or in a row across the slide without one.
        cards = spec.numbers[:4]
        if spec.chart:
            for i, (value, label) in enumerate(cards):
                y = top + i * 1.15 * INCH
                rect(s, num_x, y, num_w, 1.02 * INCH, P["grey_faint"])
                rect(s, num_x, y, 0.06 * INCH, 1.02 * INCH, P["navy"])
                box(s, num_x + 0.2 * INCH, y + 0.05 * INCH, num_w - 0.3 * INCH, 0.55 * INCH, value, 24, P["navy"])
                box(s, num_x + 0.2 * INCH, y + 0.58 * INCH, num_w - 0.3 * INCH, 0.4 * INCH, label, 11, P["grey_dark"])
            bullets_y = top + 4.8 * INCH
        else:
            w = (num_w - 0.25 * INCH * (len(cards) - 1)) / max(len(cards), 1)
            for i, (value, label) in enumerate(cards):
                x = num_x + i * (w + 0.25 * INCH)
                rect(s, x, top, w, 1.25 * INCH, P["grey_faint"])
                rect(s, x, top, w, 0.06 * INCH, P["navy"])
                box(s, x + 0.15 * INCH, top + 0.15 * INCH, w - 0.3 * INCH, 0.6 * INCH, value, 26, P["navy"])
                box(s, x + 0.15 * INCH, top + 0.78 * INCH, w - 0.3 * INCH, 0.4 * INCH, label, 11, P["grey_dark"])
            bullets_y = top + (1.55 * INCH if cards else 0)
        if spec.bullets and bullets_y < 6.2 * INCH:
            box(s, 0.5 * INCH if not spec.chart else num_x, bullets_y, (12.3 * INCH if not spec.chart else num_w),
                6.45 * INCH - bullets_y, ["▪ " + b for b in spec.bullets], 14 if len(spec.bullets) < 5 else 12.5, P["grey_dark"])
        # Footer: source and as-of, confidentiality, page number.
        rect(s, 0.5 * INCH, 6.95 * INCH, 12.3 * INCH, 0.01 * INCH, P["grey_light"])
        note = (f"{L('来源', 'Source')}: {spec.source}   {L('数据截至', 'As of')} {as_of}")
        box(s, 0.5 * INCH, 7.0 * INCH, 6.5 * INCH, 0.35 * INCH, note, 9, P["grey"])
        box(s, 7.0 * INCH, 7.0 * INCH, 5.2 * INCH, 0.35 * INCH, conf, 9, P["grey"], align=PP_ALIGN.RIGHT)
        box(s, 12.2 * INCH, 7.0 * INCH, 0.6 * INCH, 0.35 * INCH, f"{n}/{total}", 9, P["grey"], align=PP_ALIGN.RIGHT)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prs.core_properties.title = title
    prs.save(str(path))
    return path


def write_deck(ws, results: dict[str, dict | None], language: str, out: Path | None = None) -> Path:
    """reports/executive_deck.pptx for a workspace, from its latest results."""
    from .catalog import load_event_catalog

    cfg = ws.config()
    try:
        labels = {e.id: (e.label_zh, e.label_en) for e in load_event_catalog(ws.root / "catalog").events}
    except Exception:  # a damaged workspace catalogue must not stop the deck: ids then
        labels = {}
    from .catalog import load_tag_catalog, load_yaml

    cat = ws.root / "catalog"
    tag_labels = {d.id: (d.label_zh, d.label_en) for d in load_tag_catalog(cat).tags}
    tier_labels = {d["id"]: (d["label_zh"], d["label_en"]) for d in load_yaml("tiers.yaml", cat)["tiers"]}
    funnel = None
    if ws.warehouse.exists():
        from .dashboard import workspace_dashboard_data

        data = workspace_dashboard_data(ws)
        funnel = None if data is None else data.total.iloc[0].to_dict()
    slides = deck_slides(results, language, cfg.as_of, labels, tag_labels, tier_labels, funnel)
    logo = ws.root / cfg.bank.logo if cfg.bank.logo else None
    return build_deck(slides, out or ws.reports / "executive_deck.pptx", title=stage_title("executive_deck", language),
                      bank_name=cfg.bank.name(language), as_of=cfg.as_of, language=language, logo=logo)
