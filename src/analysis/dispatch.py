"""RM task lists (营销名单): from selected events to one prioritised, policy-checked list per RM.

Two variants: `internal` carries what an RM needs to call (full name, mobile) and is for the RM
only; `masked` is for circulation (managers, the pilot office, the consultants) and is what a
report may show.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from .catalog import EventCatalog
from .tags import product_column

UNASSIGNED_RM = "UNASSIGNED"
FEEDBACK_COLUMNS_ZH = ["是否触达(是/否)", "触达日期", "客户意向(有/无)", "是否申请(是/否)", "是否成交(是/否)", "备注"]
FEEDBACK_COLUMNS_EN = ["Contacted (Y/N)", "Contact date", "Interested (Y/N)", "Applied (Y/N)", "Converted (Y/N)", "Notes"]


def build_task_list(con: duckdb.DuckDBPyConnection, catalog: EventCatalog, scorecard: pd.DataFrame,
                    as_of: str, *, rm_capacity: int = 40, contacts_per_customer: int = 1,
                    language: str = "zh") -> pd.DataFrame:
    """Customers to contact this month: one row per customer × event kept after the contact policy.

    Policy, in order: only selected events; not holding the target product; no risk event firing
    (risk suppresses offers); not contacted within the event's cooling-off period before the as-of
    month end; at most `contacts_per_customer` events per customer (highest expected conversion
    first); at most `rm_capacity` customers per RM (highest expected conversion first).
    """
    chosen = scorecard[scorecard["selected"]]
    if chosen.empty:
        return pd.DataFrame()
    events = {e.id: e for e in catalog.events}
    risk_ids = [e.id for e in catalog.events if e.suppresses_offers]
    month = f"DATE '{as_of}-01'"
    parts = []
    for r in chosen.itertuples():
        ev = events[r.event_id]
        not_holding = " AND ".join(f"cm.{product_column(p)} = 0" for p in ev.target_products)
        parts.append(f"""
SELECT et.customer_id, '{ev.id}' AS event_id, '{ev.target_products[0]}' AS product_id,
  {float(r.hit_rate)} AS expected_conversion, {float(r.lift)} AS lift, {ev.priority} AS priority,
  {ev.cooling_off_days} AS cooling_off_days
FROM event_triggers et JOIN customer_month cm USING (customer_id, month)
WHERE et.month = {month} AND et.{ev.id} AND {not_holding}""")
    suppress = " OR ".join(f"et.{r}" for r in risk_ids) or "false"
    has_contacts = bool(con.execute("SELECT count(*) FROM information_schema.tables "
                                    "WHERE table_name = 'marketing_contacts'").fetchone()[0])
    last_contact = ("LEFT JOIN (SELECT customer_id, max(contact_date) AS last_contact FROM marketing_contacts "
                    "GROUP BY 1) mc USING (customer_id)") if has_contacts else \
        "LEFT JOIN (SELECT NULL::VARCHAR AS customer_id, NULL::DATE AS last_contact) mc USING (customer_id)"
    df = con.execute(f"""
WITH cand AS ({' UNION ALL '.join(parts)}),
risk AS (SELECT customer_id FROM event_triggers et WHERE et.month = {month} AND ({suppress}))
SELECT c.*, cu.customer_name, cu.mobile, cu.customer_type, cu.industry_code, cu.rm_id, cu.branch_id,
  cu.grid_id, rm.rm_name, b.branch_name, g.grid_name, p.product_name_zh, p.product_name_en, mc.last_contact
FROM cand c
JOIN customers cu USING (customer_id)
LEFT JOIN relationship_managers rm ON rm.rm_id = cu.rm_id
LEFT JOIN branches b ON b.branch_id = cu.branch_id
LEFT JOIN grids g ON g.grid_id = cu.grid_id
LEFT JOIN products p ON p.product_id = c.product_id
{last_contact}
WHERE c.customer_id NOT IN (SELECT customer_id FROM risk)
  AND (mc.last_contact IS NULL
       OR mc.last_contact < last_day({month}) - to_days(CAST(c.cooling_off_days AS INTEGER)))
""").df()
    if df.empty:
        return df
    df = df.assign(rm_id=df["rm_id"].fillna(UNASSIGNED_RM))
    # One priority per customer: events ordered by backtested conversion, then catalogue priority;
    # the others firing for the same customer are kept as context, not as extra calls.
    df = df.sort_values(["expected_conversion", "priority", "customer_id", "event_id"],
                        ascending=[False, True, True, True])
    df["rank_in_customer"] = df.groupby("customer_id").cumcount() + 1
    fired = df.groupby("customer_id")["event_id"].agg(list)
    df = df[df["rank_in_customer"] <= contacts_per_customer].copy()
    df["other_events"] = [",".join(e for e in fired[c] if e != ev) for c, ev in zip(df["customer_id"], df["event_id"])]
    # RM capacity counts customers (a customer with two tasks is one call), best customers first.
    best = df.groupby("customer_id", sort=False).agg(score=("expected_conversion", "max"), rm_id=("rm_id", "first"))
    best = best.reset_index().sort_values(["rm_id", "score", "customer_id"], ascending=[True, False, True])
    best["rank_in_rm"] = best.groupby("rm_id").cumcount() + 1
    df = df.merge(best[["customer_id", "rank_in_rm"]], on="customer_id")
    df = df[df["rank_in_rm"] <= rm_capacity].sort_values(
        ["rm_id", "rank_in_rm", "rank_in_customer"]).copy()
    due = (pd.Period(as_of, "M") + 1).to_timestamp(how="end").normalize()
    df["due_date"] = due.date().isoformat()
    name_col = "product_name_zh" if language == "zh" else "product_name_en"
    df["product_name"] = df[name_col].fillna(df["product_id"])
    return df.reset_index(drop=True)


def recommend_products(con: duckdb.DuckDBPyConnection, as_of: str, *, min_peer_share: float = 0.30,
                       min_peers: int = 20, max_per_customer: int = 2) -> pd.DataFrame:
    """Products similar customers hold that this one lacks (同类客户常用产品), computed in SQL.

    Peers: customers of the same customer_type × industry section × deposit band (daily average
    < 10万, 10–100万, ≥ 100万) at the as-of month. For each segment of at least `min_peers`
    customers, a product held by ≥ `min_peer_share` of them is recommended to each member not
    holding it, highest peer share first, at most `max_per_customer` per customer.
    Returns customer_id, product_id, peer_share, peers, rank.
    """
    products = [r[0] for r in con.execute("SELECT product_id FROM products ORDER BY product_id").fetchall()]
    cm_cols = {r[0] for r in con.execute("DESCRIBE customer_month").fetchall()}
    products = [p for p in products if product_column(p) in cm_cols]
    if not products:
        return pd.DataFrame(columns=["customer_id", "product_id", "peer_share", "peers", "rank"])
    unpivot = " UNION ALL ".join(
        f"SELECT customer_id, seg, '{p}' AS product_id, {product_column(p)} AS held FROM base" for p in products)
    return con.execute(f"""
WITH base AS (
  SELECT customer_id,
    coalesce(customer_type, '?') || '|' || coalesce(left(industry_code, 1), '?') || '|' ||
    CASE WHEN coalesce(deposit_avg, 0) < 100000 THEN 'lt10w' WHEN deposit_avg < 1000000 THEN '10w-100w'
         ELSE 'ge100w' END AS seg, {", ".join(product_column(p) for p in products)}
  FROM customer_month WHERE month = DATE '{as_of}-01'),
seg_size AS (SELECT seg, count(*) AS peers FROM base GROUP BY 1),
long AS ({unpivot}),
share AS (SELECT seg, product_id, avg(held) AS peer_share FROM long GROUP BY 1, 2),
cand AS (
  SELECT l.customer_id, l.product_id, s.peer_share, z.peers,
    row_number() OVER (PARTITION BY l.customer_id ORDER BY s.peer_share DESC, l.product_id) AS rank
  FROM long l JOIN share s USING (seg, product_id) JOIN seg_size z USING (seg)
  WHERE l.held = 0 AND s.peer_share >= {float(min_peer_share)} AND z.peers >= {int(min_peers)})
SELECT customer_id, product_id, peer_share, peers, rank FROM cand WHERE rank <= {int(max_per_customer)}
ORDER BY customer_id, rank""").df()


def attach_recommendations(tasks: pd.DataFrame, recs: pd.DataFrame, product_names: dict[str, str]) -> pd.DataFrame:
    """Add `peer_products` to each task: recommended products other than the task's own, with peer share."""
    if tasks.empty:
        return tasks.assign(peer_products=pd.Series(dtype="str"))
    by_customer: dict[str, list[tuple[str, float]]] = {}
    for r in recs.itertuples():
        by_customer.setdefault(r.customer_id, []).append((r.product_id, float(r.peer_share)))
    text = []
    for c, own in zip(tasks["customer_id"], tasks["product_id"]):
        items = [f"{product_names.get(p, p)} ({share:.0%})" for p, share in by_customer.get(c, []) if p != own]
        text.append("; ".join(items))
    return tasks.assign(peer_products=text)


def fill_scripts(tasks: pd.DataFrame, catalog: EventCatalog, *, language: str, masked: bool) -> pd.Series:
    """Talk script per task with {name}, {product}, {rm} filled (masked names for circulated lists)."""
    from .privacy import mask_value

    events = {e.id: e for e in catalog.events}
    out = []
    for r in tasks.itertuples():
        ev = events[r.event_id]
        tpl = ev.script_zh if language == "zh" else ev.script_en
        name = mask_value(r.customer_name, "org_name") if masked else r.customer_name
        rm = mask_value(r.rm_name, "person_name") if masked else r.rm_name
        out.append(tpl.format(name=name, product=r.product_name, rm=rm))
    return pd.Series(out, index=tasks.index)


def task_sheet(tasks: pd.DataFrame, catalog: EventCatalog, *, language: str, masked: bool) -> pd.DataFrame:
    """The columns an RM works from, in the report language, plus empty feedback columns."""
    from .privacy import mask_value

    events = {e.id: e for e in catalog.events}
    zh = language == "zh"
    label = (lambda e: events[e].label_zh) if zh else (lambda e: events[e].label_en)
    sheet = pd.DataFrame({
        ("客户号" if zh else "Customer ID"): tasks["customer_id"],
        ("客户名称" if zh else "Customer"): [mask_value(v, "org_name") if masked else v for v in tasks["customer_name"]],
        ("联系电话" if zh else "Mobile"): [mask_value(v, "mobile") if masked else v for v in tasks["mobile"]],
        ("商机事件" if zh else "Opportunity"): [label(e) for e in tasks["event_id"]],
        ("推荐产品" if zh else "Product"): tasks["product_name"],
        ("预计转化率" if zh else "Expected conversion"): tasks["expected_conversion"].round(4),
        ("同类客户常用产品" if zh else "Peers also hold"): (tasks["peer_products"] if "peer_products" in tasks
                                                       else pd.Series("", index=tasks.index)),
        ("营销话术" if zh else "Talk script"): fill_scripts(tasks, catalog, language=language, masked=masked),
        ("完成期限" if zh else "Due date"): tasks["due_date"],
    })
    for c in (FEEDBACK_COLUMNS_ZH if zh else FEEDBACK_COLUMNS_EN):
        sheet[c] = ""
    return sheet


def branch_summary(tasks: pd.DataFrame, *, language: str) -> pd.DataFrame:
    """Per sub-branch and grid: customers on the lists, RMs, expected conversions (and balances if known)."""
    zh = language == "zh"
    t = tasks.assign(expected_balance=tasks["expected_balance"] if "expected_balance" in tasks else 0.0)
    # Branch and grid names are Chinese data values: an English summary shows their ids instead.
    keys = ["branch_name", "grid_name"] if zh else ["branch_id", "grid_id"]
    g = t.groupby(keys, dropna=False).agg(
        customers=("customer_id", "nunique"), rms=("rm_id", "nunique"),
        expected=("expected_conversion", "sum"), balance=("expected_balance", "sum")).reset_index()
    g.columns = (["支行", "网格", "名单客户数", "客户经理数", "预计成交户数", "预计新增余额(元)"] if zh
                 else ["Sub-branch", "Grid", "Customers", "RMs", "Expected conversions", "Expected new balance (CNY)"])
    return g


def add_expected_balance(tasks: pd.DataFrame, balances: pd.DataFrame) -> pd.DataFrame:
    """expected_balance = expected conversion × the product's average new balance (0 for service products)."""
    bal = balances.set_index("product_id")["avg_new_balance"]
    per = tasks["product_id"].map(bal).astype(float).fillna(0.0)
    return tasks.assign(expected_balance=tasks["expected_conversion"] * per)


def write_dispatch_workbook(tasks: pd.DataFrame, catalog: EventCatalog, path: Path, *, language: str,
                            masked: bool, bank_name: str, as_of: str) -> Path:
    """One workbook: cover, branch / grid summary, then one sheet per RM (named by RM id)."""
    from .privacy import mask_value
    from .xlsx import write_sheets

    zh = language == "zh"
    cover = [
        (("RM 营销任务清单" if zh else "RM task lists") + f" · {bank_name}"),
        (f"数据截至 {as_of}; 名单按商机事件回测的预计转化率排序。" if zh
         else f"Data as of {as_of}; customers ranked by the backtested expected conversion."),
        ("版本: 脱敏版 (可在管理层与项目组内流转)" if masked else "版本: 客户经理内部版 (含完整客户信息, 仅限本人使用, 不得外传)")
        if zh else ("Variant: masked (may circulate among managers and the project team)" if masked
                    else "Variant: internal (full customer details, for the named RM only; do not forward)"),
        ("使用方法: 每位客户经理一张工作表; 跟进后填写右侧反馈列, 每周五前交回试点办公室。" if zh
         else "How to use: one sheet per RM; fill in the feedback columns after each contact and return them every Friday."),
    ]
    sheets = {("汇总" if zh else "Summary"): branch_summary(tasks, language=language)}
    for rm_id, part in tasks.groupby("rm_id", sort=True):
        sheets[str(rm_id)[:31]] = task_sheet(part, catalog, language=language, masked=masked)
    write_sheets(path, sheets, cover_title=cover[0], cover_lines=cover[1:])
    return path
