"""Customer 360 one-pagers: a one-page html profile per customer for the RM's visit.

From the warehouse tables customer_value (tier, value), tag_table (holdings), customer_month
(recent flows) and event_triggers (open opportunities); read-only. Identity is always masked
(analysis.privacy.mask_value); the page is self-contained (chart inlined as a PNG).
"""

from __future__ import annotations

import html
from pathlib import Path

import duckdb
import pandas as pd

from . import style
from .i18n import stage_title, t, translate
from .privacy import mask_value


def _has(con, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                            [table]).fetchone()[0])


def top_customers(con: duckdb.DuckDBPyConnection, n: int = 5, tier: str = "strategic") -> list[str]:
    """Ids of the n customers of a tier with the highest current value (ties by id)."""
    if not _has(con, "customer_value"):
        return []
    return [r[0] for r in con.execute(
        "SELECT customer_id FROM customer_value WHERE tier = ? "
        "ORDER BY current_value DESC, customer_id LIMIT ?", [tier, n]).fetchall()]


def profile(con: duckdb.DuckDBPyConnection, customer_id: str, months: int = 12) -> dict:
    """Everything a one-pager shows for one customer, identity already masked."""
    cust = con.execute("SELECT customer_name, customer_type, industry_code, branch_id, rm_id, "
                       "relationship_start_date FROM customers WHERE customer_id = ?",
                       [customer_id]).fetchone()
    if cust is None:
        from .errors import InputError

        raise InputError(f"customer {customer_id} is not in the warehouse", column="customer_id",
                         fix="pick an id from customers.customer_id")
    value = (con.execute("SELECT tier, current_value, potential_value, headroom, deposit_avg_balance, "
                         "loan_avg_balance FROM customer_value WHERE customer_id = ?",
                         [customer_id]).fetchone() if _has(con, "customer_value") else None)
    flows = con.execute(f"""
SELECT month, demand_inflow, demand_outflow, deposit_avg, loan_avg FROM customer_month
WHERE customer_id = ? ORDER BY month DESC LIMIT {int(months)}""", [customer_id]).df().sort_values("month")
    holds = pd.DataFrame()
    if _has(con, "tag_table"):
        holds = con.execute("SELECT * FROM tag_table WHERE customer_id = ? ORDER BY month DESC LIMIT 1",
                            [customer_id]).df()
    events = pd.DataFrame()
    if _has(con, "event_triggers"):
        events = con.execute("SELECT * FROM event_triggers WHERE customer_id = ? ORDER BY month DESC LIMIT 1",
                             [customer_id]).df()
    held = ([c for c in holds.columns if (c.startswith("holds_") or c == "has_loan") and bool(holds.iloc[0][c])]
            if len(holds) else [])
    open_events = ([c for c in events.columns if c.startswith("EV_") and bool(events.iloc[0][c])]
                   if len(events) else [])
    return {
        "customer_id": customer_id,
        "name_masked": mask_value(cust[0], "org_name"),
        "customer_type": cust[1], "industry_code": cust[2], "branch_id": cust[3], "rm_id": cust[4],
        "since": None if cust[5] is None else str(cust[5])[:7],
        "tier": value[0] if value else None,
        "current_value": value[1] if value else None, "potential_value": value[2] if value else None,
        "headroom": value[3] if value else None,
        "deposit_avg": value[4] if value else None, "loan_avg": value[5] if value else None,
        "flows": flows, "holdings": held, "open_events": open_events,
        "as_of_month": None if flows.empty else str(flows["month"].iloc[-1])[:7],
    }


def _flows_chart(flows: pd.DataFrame, lang: str, as_of: str) -> str | None:
    import matplotlib.pyplot as plt

    if flows.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.0, 2.4))
    x = [str(m)[2:7] for m in flows["month"]]
    scale = 1e4 if lang == "zh" else 1e3
    ax.bar([i - 0.2 for i in range(len(x))], flows["demand_inflow"].fillna(0) / scale, width=0.4,
           color=style.PALETTE["navy"], label=t("流入", "Inflow", lang))
    ax.bar([i + 0.2 for i in range(len(x))], flows["demand_outflow"].fillna(0) / scale, width=0.4,
           color=style.PALETTE["grey_light"], label=t("流出", "Outflow", lang))
    ax.set_xticks(range(len(x)), x, fontsize=8)
    ax.set_ylabel(t("万元", "CNY K", lang))
    ax.legend(loc="upper left", ncols=2)
    inflow = float(flows["demand_inflow"].fillna(0).sum())
    style.chart_title(ax, t(f"近 {len(x)} 个月活期流入 {style.fmt_money(inflow, 'zh')}",
                            f"{style.fmt_money(inflow, 'en')} into demand accounts over {len(x)} months", lang),
                      t("核心系统", "Core banking", lang), as_of, lang)
    return style.figure_data_uri(fig, dpi=150, pad_inches=0.12)


_CSS = """
@page { size: A4; margin: 14mm; }
body { margin: 0; color: #1F2329; font: 13px/1.55 "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC",
       "Microsoft YaHei", sans-serif; }
.page { max-width: 800px; margin: 0 auto; padding: 0 0 24px; }
header { background: %(navy)s; color: #fff; padding: 18px 28px; }
header .bank { opacity: .8; font-size: 12px; letter-spacing: .06em; }
header h1 { margin: 2px 0; font-size: 22px; font-weight: 500; }
header .tier { display: inline-block; background: %(gold)s; color: #fff; padding: 1px 10px; font-size: 12px; }
section { padding: 0 28px; }
h2 { color: %(navy)s; font-size: 15px; font-weight: 500; border-bottom: 2px solid %(gold)s;
     padding-bottom: 3px; margin: 18px 0 8px; }
.facts { display: grid; grid-template-columns: repeat(3, 1fr); gap: 8px 18px; margin-top: 14px; }
.facts div span { display: block; color: %(grey)s; font-size: 11.5px; }
.facts div b { font-weight: 500; color: %(navy)s; font-size: 15px; }
ul { margin: 4px 0; padding-left: 18px; }
li { margin: 2px 0; }
img { max-width: 100%%; }
footer { border-top: 1px solid %(grey_light)s; margin: 18px 28px 0; padding-top: 6px; color: %(grey)s;
         font-size: 11px; display: flex; justify-content: space-between; }
""" % style.PALETTE


def render_profile(p: dict, *, language: str, bank_name: str, as_of: str,
                   tier_labels: dict[str, tuple[str, str]] | None = None,
                   tag_labels: dict[str, tuple[str, str]] | None = None,
                   event_labels: dict[str, tuple[str, str]] | None = None) -> str:
    """One customer's one-pager as a self-contained html string."""
    style.setup_matplotlib()
    esc = html.escape
    L = lambda zh, en: t(zh, en, language)  # noqa: E731

    def lab(mapping, key):
        pair = (mapping or {}).get(key)
        return t(*pair, language) if pair else str(key)

    money = lambda v: style.fmt_money(v, language)  # noqa: E731
    # In English the masked Chinese name would leak Chinese: the id identifies the customer.
    name = p["name_masked"] if language == "zh" else p["customer_id"]
    facts = [(L("客户编号", "Customer id"), p["customer_id"]),
             (L("客户类型", "Customer type"), translate(p["customer_type"], language)),
             (L("行业门类", "Industry section"), p["industry_code"] or "—"),
             (L("所属支行", "Branch"), p["branch_id"] or "—"),
             (L("客户经理", "Relationship manager"), p["rm_id"] or "—"),
             (L("合作起始", "Customer since"), p["since"] or "—"),
             (L("存款日均", "Deposits, daily average"), money(p["deposit_avg"])),
             (L("贷款日均", "Loans, daily average"), money(p["loan_avg"])),
             (L("年度价值贡献", "Annual value"), money(p["current_value"])),
             (L("潜在价值", "Potential value"), money(p["potential_value"])),
             (L("提升空间", "Headroom"), money(p["headroom"])),
             (L("持有产品数", "Products held"), str(len(p["holdings"])))]
    fact_html = "".join(f"<div><span>{esc(k)}</span><b>{esc(str(v))}</b></div>" for k, v in facts)
    holds = "".join(f"<li>{esc(lab(tag_labels, h))}</li>" for h in p["holdings"]) or f"<li>{esc(L('无', 'none'))}</li>"
    evs = "".join(f"<li>{esc(lab(event_labels, e))}</li>" for e in p["open_events"]) or \
        f"<li>{esc(L('本月无触发事件', 'no event triggered this month'))}</li>"
    chart = _flows_chart(p["flows"], language, p["as_of_month"] or as_of)
    tier = lab(tier_labels, p["tier"]) if p["tier"] else "—"
    title = stage_title("customer360", language)
    conf = L(f"机密 · 仅供{bank_name}内部使用 · 客户信息已脱敏", f"Confidential · for internal use by {bank_name} only · identity masked")
    return f"""<!DOCTYPE html>
<html lang="{'zh-CN' if language == 'zh' else 'en'}"><head><meta charset="utf-8">
<title>{esc(title)} · {esc(p['customer_id'])}</title><style>{_CSS}</style></head>
<body><div class="page"><header><div class="bank">{esc(bank_name)} · {esc(title)}</div>
<h1>{esc(name)}</h1><span class="tier">{esc(tier)}</span></header>
<section><div class="facts">{fact_html}</div>
<h2>{esc(L('近期资金流', 'Recent flows'))}</h2>{f'<img alt="" src="{chart}">' if chart else ''}
<div style="display:grid;grid-template-columns:1fr 1fr;gap:18px">
<div><h2>{esc(L('持有产品', 'Products held'))}</h2><ul>{holds}</ul></div>
<div><h2>{esc(L('待跟进商机', 'Open opportunities'))}</h2><ul>{evs}</ul></div></div></section>
<footer><span>{esc(conf)}</span><span>{esc(L('数据截至', 'As of'))} {esc(p['as_of_month'] or as_of)}</span></footer>
</div></body></html>
"""


def write_customer360(ws, language: str, n: int = 5, customer_ids: list[str] | None = None,
                      out_dir: Path | None = None) -> list[Path]:
    """Write reports/customer360/<id>.html for the given customers (default: top n strategic)."""
    from .catalog import load_event_catalog, load_tag_catalog, load_yaml

    cfg = ws.config()
    out_dir = Path(out_dir) if out_dir else ws.reports / "customer360"
    cat_dir = ws.root / "catalog"
    tag_labels = {d.id: (d.label_zh, d.label_en) for d in load_tag_catalog(cat_dir).tags}
    event_labels = {e.id: (e.label_zh, e.label_en) for e in load_event_catalog(cat_dir).events}
    tier_labels = {d["id"]: (d["label_zh"], d["label_en"]) for d in load_yaml("tiers.yaml", cat_dir)["tiers"]}
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    try:
        ids = customer_ids if customer_ids is not None else top_customers(con, n)
        profiles = [profile(con, cid) for cid in ids]
    finally:
        con.close()
    written = []
    if profiles:
        out_dir.mkdir(parents=True, exist_ok=True)
    for p in profiles:
        page = render_profile(p, language=language, bank_name=cfg.bank.name(language), as_of=cfg.as_of,
                              tier_labels=tier_labels, tag_labels=tag_labels, event_labels=event_labels)
        path = out_dir / f"{p['customer_id']}.html"
        path.write_text(page, encoding="utf-8")
        written.append(path)
    return written
