"""Pilot progress dashboard: one self-contained html page (funnel, events, RM follow-up).

Read-only over the warehouse (pilot_assignments, pilot_feedback, loans via
``analysis.pilot_data``); as of the latest RM feedback date. Charts are PNGs in the house
style, inlined as data URIs, so the page opens anywhere without network access.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from . import style
from .i18n import stage_title, t
from .pilot_data import funnel, pilot_frame, rm_league

STEPS = ("listed", "contacted", "interested", "applied", "converted")
STEP_LABELS = {"listed": ("入名单", "Listed"), "contacted": ("已触达", "Contacted"),
               "interested": ("有意向", "Interested"), "applied": ("已申请", "Applied"),
               "converted": ("已放款", "Loan disbursed")}


@dataclass(frozen=True)
class DashboardData:
    """What the dashboard shows, computed from the warehouse."""

    pilot_id: str
    as_of_feedback: str | None  # latest feedback date, ISO
    total: pd.DataFrame  # one row: the treatment-arm funnel
    by_event: pd.DataFrame
    league: pd.DataFrame
    weekly: pd.DataFrame  # week, contacts, cumulative


def dashboard_data(con: duckdb.DuckDBPyConnection, *, pilot_id: str, window_start: str,
                   window_end: str, pre_start: str, pre_end: str) -> DashboardData | None:
    """The dashboard's frames; None when the warehouse holds no pilot list."""
    frame = pilot_frame(con, pilot_id, window_start=window_start, window_end=window_end,
                        pre_start=pre_start, pre_end=pre_end)
    if frame.empty or not (frame["assigned"] == 1).any():
        return None
    has_fb = bool(con.execute("SELECT count(*) FROM information_schema.tables "
                              "WHERE table_name = 'pilot_feedback'").fetchone()[0])
    latest, weekly = None, pd.DataFrame(columns=["week", "contacts", "cumulative"])
    if has_fb:
        latest = con.execute("SELECT max(feedback_date) FROM pilot_feedback WHERE pilot_id = ?",
                             [pilot_id]).fetchone()[0]
        weekly = con.execute("""
SELECT date_trunc('week', contact_date) AS week, count(*) AS contacts
FROM pilot_feedback WHERE pilot_id = ? AND contacted AND contact_date IS NOT NULL
GROUP BY 1 ORDER BY 1""", [pilot_id]).df()
        weekly = weekly.assign(cumulative=weekly["contacts"].cumsum())
    return DashboardData(
        pilot_id=pilot_id, as_of_feedback=None if latest is None else str(latest)[:10],
        total=funnel(frame), by_event=funnel(frame, "event_id").sort_values("listed", ascending=False),
        league=rm_league(frame), weekly=weekly)


# ---------------------------------------------------------------- charts

def _png(fig) -> str:
    return style.figure_data_uri(fig, dpi=150, pad_inches=0.15)


def _funnel_chart(total: pd.Series, lang: str, as_of: str) -> str:
    import matplotlib.pyplot as plt

    values = [int(total[s]) for s in STEPS]
    labels = [t(*STEP_LABELS[s], lang) for s in STEPS]
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    colors = [style.PALETTE["navy"]] * 2 + [style.PALETTE["teal"]] * 2 + [style.PALETTE["gold"]]
    ax.barh(labels[::-1], values[::-1], color=colors[::-1], height=0.6)
    for y, v in enumerate(values[::-1]):
        share = v / values[0] if values[0] else 0
        ax.text(v, y, f"  {v:,} ({style.fmt_pct(share, 0)})", va="center", fontsize=9,
                color=style.PALETTE["grey_dark"])
    ax.set_xlim(0, max(values) * 1.3 if max(values) else 1)
    ax.grid(axis="x", color=style.PALETTE["grey_faint"])
    ax.grid(axis="y", visible=False)
    rate = values[1] / values[0] if values[0] else 0
    style.chart_title(ax, t(f"名单客户触达率 {style.fmt_pct(rate)}", f"{style.fmt_pct(rate)} of listed customers contacted", lang),
                      t("客户经理反馈、贷款系统", "RM feedback, loan system", lang), as_of, lang)
    return _png(fig)


def _weekly_chart(weekly: pd.DataFrame, lang: str, as_of: str) -> str | None:
    import matplotlib.pyplot as plt

    if weekly.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.0))
    # Weeks as categories: one bar per week, labelled by its Monday, thinned when crowded.
    labels = [pd.Timestamp(w).strftime("%m-%d") for w in weekly["week"]]
    xs = list(range(len(labels)))
    ax.bar(xs, weekly["contacts"], width=0.6, color=style.PALETTE["grey_light"],
           label=t("本周触达", "Contacts in the week", lang))
    ax2 = ax.twinx()
    ax2.plot(xs, weekly["cumulative"], color=style.PALETTE["navy"], lw=2, marker="o", ms=3,
             label=t("累计触达", "Cumulative contacts", lang))
    ax2.spines["right"].set_visible(True)
    ax2.grid(False)
    step = max(1, -(-len(xs) // 8))
    ax.set_xticks(xs[::step], labels[::step])
    ax.set_xlabel(t("周 (周一)", "Week (Monday)", lang))
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left")
    total = int(weekly["cumulative"].iloc[-1])
    style.chart_title(ax, t(f"累计触达 {total:,} 户", f"{total:,} customers contacted so far", lang),
                      t("客户经理反馈", "RM feedback", lang), as_of, lang)
    return _png(fig)


# ---------------------------------------------------------------- page

_CSS = """
:root { --navy: %(navy)s; --teal: %(teal)s; --gold: %(gold)s; --grey: %(grey)s;
        --grey-light: %(grey_light)s; --grey-faint: %(grey_faint)s; --ink: #1F2329; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); font: 14px/1.6 "Noto Sans CJK SC", "Source Han Sans SC",
       "PingFang SC", "Microsoft YaHei", sans-serif; background: #fff; }
header { background: var(--navy); color: #fff; padding: 22px 40px 18px; }
header .bank { opacity: .8; letter-spacing: .06em; font-size: 13px; }
header h1 { margin: 4px 0 2px; font-weight: 500; font-size: 24px; }
header .meta { opacity: .85; font-size: 13px; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 40px 40px; }
.kpis { display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px; margin: 8px 0 20px; }
.kpi { background: var(--grey-faint); border-top: 3px solid var(--navy); padding: 12px 14px; }
.kpi b { display: block; font-size: 24px; font-weight: 500; color: var(--navy); }
.kpi span { font-size: 12px; color: #4A4F55; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; }
h2 { color: var(--navy); font-weight: 500; font-size: 17px; border-bottom: 2px solid var(--gold);
     padding-bottom: 4px; margin: 22px 0 10px; }
img { max-width: 100%%; }
table { border-collapse: collapse; width: 100%%; font-size: 12.5px; font-variant-numeric: tabular-nums; }
th { text-align: left; color: var(--navy); font-weight: 500; background: var(--grey-faint);
     border-top: 2px solid var(--navy); border-bottom: 1px solid var(--navy); padding: 6px 8px; }
td { border-bottom: 1px solid var(--grey-light); padding: 5px 8px; }
td.num, th.num { text-align: right; }
tr.flag td { color: #9B2C2C; }
footer { border-top: 1px solid var(--grey-light); margin-top: 28px; padding-top: 8px;
         color: var(--grey); font-size: 12px; display: flex; justify-content: space-between; }
""" % style.PALETTE


def _table(df: pd.DataFrame, numeric: set[str], flag: pd.Series | None = None) -> str:
    esc = html.escape
    head = "".join(f'<th class="{"num" if c in numeric else ""}">{esc(str(c))}</th>' for c in df.columns)
    rows = []
    for i, rec in enumerate(df.itertuples(index=False)):
        cls = ' class="flag"' if flag is not None and bool(flag.iloc[i]) else ""
        cells = "".join(f'<td class="{"num" if c in numeric else ""}">{esc(str(v))}</td>'
                        for c, v in zip(df.columns, rec))
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_dashboard(data: DashboardData, *, language: str, bank_name: str, as_of: str,
                     event_labels: dict[str, tuple[str, str]] | None = None,
                     confidentiality: str | None = None) -> str:
    """The dashboard page as one self-contained html string."""
    style.setup_matplotlib()
    L = lambda zh, en: t(zh, en, language)  # noqa: E731
    esc = html.escape
    labels = event_labels or {}
    tot = data.total.iloc[0]
    as_of_fb = data.as_of_feedback or as_of
    kpi_items = [(L("入名单客户", "Customers listed"), f"{int(tot['listed']):,}"),
                 (L("已触达", "Contacted"), f"{int(tot['contacted']):,}"),
                 (L("触达率", "Contact rate"), style.fmt_pct(tot["contact_rate"])),
                 (L("有意向", "Interested"), f"{int(tot['interested']):,}"),
                 (L("已申请", "Applied"), f"{int(tot['applied']):,}"),
                 (L("已放款 (贷款系统)", "Loans disbursed (loan system)"), f"{int(tot['converted']):,}")]
    kpis = "".join(f'<div class="kpi"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for k, v in kpi_items)

    ev = data.by_event.assign(
        event=lambda d: d["event_id"].map(lambda e: t(*labels[e], language) if e in labels else str(e)))
    ev_tab = pd.DataFrame({
        L("事件", "Event"): ev["event"],
        L("入名单", "Listed"): ev["listed"].map("{:,}".format),
        L("触达率", "Contact rate"): ev["contact_rate"].map(style.fmt_pct),
        L("有意向", "Interested"): ev["interested"].map("{:,}".format),
        L("已申请", "Applied"): ev["applied"].map("{:,}".format),
        L("放款率", "Conversion"): ev["conversion_rate"].map(style.fmt_pct)})
    lg = data.league
    lg_tab = pd.DataFrame({
        L("排名", "Rank"): lg["rank"], L("客户经理", "RM"): lg["rm_id"],
        L("名单", "Listed"): lg["listed"].map("{:,}".format),
        L("触达率", "Contact rate"): lg["contact_rate"].map(style.fmt_pct),
        L("放款率", "Conversion"): lg["conversion_rate"].map(style.fmt_pct),
        L("状态", "Status"): lg["never_worked"].map(lambda b: L("名单未跟进", "list not worked") if b else L("跟进中", "working"))})
    idle = int(lg["never_worked"].sum())
    num_ev = {c for c in ev_tab.columns if c != L("事件", "Event")}
    num_lg = {L("排名", "Rank"), L("名单", "Listed"), L("触达率", "Contact rate"), L("放款率", "Conversion")}
    weekly = _weekly_chart(data.weekly, language, as_of_fb)
    conf = confidentiality or L(f"机密 · 仅供{bank_name}内部使用", f"Confidential · for internal use by {bank_name} only")
    title = stage_title("pilot_dashboard", language)
    return f"""<!DOCTYPE html>
<html lang="{'zh-CN' if language == 'zh' else 'en'}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(bank_name)} · {esc(title)}</title><style>{_CSS}</style></head>
<body><header><div class="bank">{esc(bank_name)}</div><h1>{esc(title)} · {esc(data.pilot_id)}</h1>
<div class="meta">{esc(L('截至最新反馈', 'As of the latest feedback'))} {esc(as_of_fb)}</div></header>
<main><div class="kpis">{kpis}</div>
<div class="grid"><div><h2>{esc(L('营销漏斗', 'Funnel'))}</h2><img alt="" src="{_funnel_chart(tot, language, as_of_fb)}"></div>
<div><h2>{esc(L('跟进进度', 'Follow-up progress'))}</h2>{f'<img alt="" src="{weekly}">' if weekly else '<p>' + esc(L('暂无反馈', 'No feedback yet')) + '</p>'}</div></div>
<h2>{esc(L('按商机事件', 'By opportunity event'))}</h2>{_table(ev_tab, num_ev)}
<h2>{esc(L(f'客户经理跟进 ({idle} 位名单未跟进)', f'RM follow-up ({idle} RMs have not worked their list)'))}</h2>{_table(lg_tab, num_lg, lg['never_worked'])}
<footer><span>{esc(conf)}</span><span>{esc(L('来源: 试点名单、客户经理反馈、贷款系统', 'Source: pilot list, RM feedback, loan system'))}</span></footer>
</main></body></html>
"""


def workspace_dashboard_data(ws):
    """The pilot's dashboard data read from a workspace's warehouse (read-only); None without a pilot."""
    p = ws.config().stages.pilot
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        return dashboard_data(con, pilot_id=p.pilot_id, window_start=p.window_start,
                              window_end=p.window_end, pre_start=p.pre_start, pre_end=p.pre_end)
    finally:
        con.close()


def write_dashboard(ws, language: str, out: Path | None = None) -> Path | None:
    """Write reports/pilot_dashboard.html for a workspace; None when there is no pilot list."""
    from .catalog import load_event_catalog

    cfg = ws.config()
    data = workspace_dashboard_data(ws)
    if data is None:
        return None
    try:
        cat = load_event_catalog(ws.root / "catalog")
        labels = {e.id: (e.label_zh, e.label_en) for e in cat.events}
    except Exception:  # a damaged workspace catalogue must not stop the dashboard: ids then
        labels = {}
    page = render_dashboard(data, language=language, bank_name=cfg.bank.name(language),
                            as_of=cfg.as_of, event_labels=labels)
    out = Path(out) if out else ws.reports / "pilot_dashboard.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
