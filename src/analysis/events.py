"""Stage 04: opportunity events — point-in-time triggers, backtest against product take-up, selection.

Triggers are computed on the tag table (which is point-in-time); outcomes are take-ups of a
target product in the months (t, t+W]. The comparison group is every eligible customer-month
(customers not holding a target product at t) in the same backtest months that did not trigger.
Customer-months of one customer are correlated, so lift intervals use a customer-clustered
(sandwich) variance of log lift — the same estimator as a Poisson GLM with cluster-robust errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
from scipy import stats as sps

from .catalog import EventCatalog, EventDef, TagCatalog
from .errors import InputError
from .sqlsafety import check_expression
from .stats import benjamini_hochberg, wilson_interval
from .tags import build_product_starts, build_tag_table, product_column

LEAK_REASON = "leaks future data"


def validate_events(catalog: EventCatalog, tag_ids: list[str], product_ids: list[str]) -> None:
    """Reject unsafe triggers and unknown target products before anything runs, naming the event."""
    allowed = set(tag_ids)
    known = set(product_ids)
    for ev in catalog.events:
        check_expression(ev.trigger, owner=ev.id, allowed_columns=allowed)
        unknown = [p for p in ev.target_products if p not in known]
        if unknown:
            raise InputError(f"{ev.id}: unknown target product(s) {unknown}",
                             fix="use product ids of the products table")
        if not ev.suppresses_offers and not ev.target_products:
            raise InputError(f"{ev.id}: no target product", fix="add target_products or mark it a risk event")


def build_event_triggers(con: duckdb.DuckDBPyConnection, catalog: EventCatalog) -> None:
    """Create `event_triggers` (customer_id, month, one boolean column per event) from `tag_table`."""
    cols = ",\n  ".join(f"coalesce(CAST(({e.trigger}) AS BOOLEAN), false) AS {e.id}" for e in catalog.events)
    con.execute(f"""
CREATE OR REPLACE TABLE event_triggers AS
SELECT customer_id, month,
  {cols}
FROM tag_table
WINDOW w AS (PARTITION BY customer_id ORDER BY month)
ORDER BY customer_id, month""")
    build_product_starts(con)


# How each extract table looks to an analyst standing at the end of the cutoff month: rows dated
# later do not exist yet; end dates still in the future are unknown (NULL); extract-date snapshot
# columns (overdue days, five-class) are unknown before the as-of month.
_PIT_ROWS = {
    "customers": "relationship_start_date IS NULL OR relationship_start_date <= {end}",
    "accounts": "open_date IS NULL OR open_date <= {end}",
    "balances_monthly": "month <= {month}",
    "transactions": "txn_date <= {end}",
    "loans": "disbursement_date <= {end}",
    "credit_lines": "start_date IS NULL OR start_date <= {end}",
    "marketing_contacts": "contact_date <= {end}",
    "loan_offers": "offer_date <= {end}",
    "pilot_assignments": "assigned_date <= {end}",
    "pilot_feedback": "coalesce(feedback_date, contact_date) <= {end}",
    "tax_monthly": "month <= {month}",
    "invoices_monthly": "month <= {month}",
    "registry_changes": "change_date <= {end}",
    "relationship_managers": "hire_date IS NULL OR hire_date <= {end}",
}
_PIT_FUTURE_END_DATES = {"accounts": ["close_date"], "loans": ["settled_date"]}
_PIT_SNAPSHOTS = {"loans": ["five_class", "overdue_days"]}
_DERIVED = {"customer_month", "tag_table", "event_triggers", "product_starts"}


def _truncated_view_sql(con, table: str, schema: str, cutoff: str, as_of: str) -> str:
    month = f"DATE '{cutoff}-01'"
    end = f"last_day({month})"
    cols = con.execute(f"SELECT column_name, data_type FROM information_schema.columns "
                       f"WHERE table_schema = 'main' AND table_name = '{table}' ORDER BY ordinal_position").fetchall()
    select = []
    for name, dtype in cols:
        if name in _PIT_FUTURE_END_DATES.get(table, []):
            select.append(f'CASE WHEN "{name}" <= {end} THEN "{name}" END AS "{name}"')
        elif name in _PIT_SNAPSHOTS.get(table, []) and cutoff < as_of:
            select.append(f'CAST(NULL AS {dtype}) AS "{name}"')
        else:
            select.append(f'"{name}"')
    if table in _PIT_ROWS:
        where = _PIT_ROWS[table].format(end=end, month=month)
    else:  # a table we do not know: keep rows none of whose dates lie after the cutoff
        dates = [n for n, t in cols if t in ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE")]
        where = " AND ".join(f'("{d}" IS NULL OR "{d}" <= {end})' for d in dates) or "true"
    return f'CREATE VIEW {schema}."{table}" AS SELECT {", ".join(select)} FROM main."{table}" WHERE {where}'


def point_in_time_check(con: duckdb.DuckDBPyConnection, catalog: EventCatalog, cutoff_month: str,
                        tag_catalog: TagCatalog, *, schema: str = "pit_check") -> list[str]:
    """Events whose triggers in months <= cutoff change when every later fact is removed.

    Recomputes customer_month, tag_table and event_triggers in a scratch schema whose views show
    each extract table truncated at the cutoff month's end (later rows gone, future end dates and
    extract-date snapshots unknown), over the same first month as the built tables, and compares
    them with `main.event_triggers` month by month. A point-in-time trigger cannot differ; one that
    does reads data from after the month it fires in (e.g. a window without ORDER BY, or ordered
    DESC), which no static check of the SQL catches in general.
    Needs `customer_month` and `event_triggers` built in the main schema.
    """
    if not (schema.isidentifier() and schema.islower()):
        raise InputError(f"bad scratch schema name {schema!r}", fix="use a lower-case identifier")
    first, last = con.execute("SELECT min(month), max(month) FROM main.customer_month").fetchone()
    start, as_of = pd.Period(first, "M"), pd.Period(last, "M")
    cutoff = pd.Period(cutoff_month, "M")
    if not start <= cutoff <= as_of:
        raise InputError(f"cutoff month {cutoff_month} outside the tag table's months {start}..{as_of}",
                         column="cutoff_month", fix=f"choose a month between {start} and {as_of}")
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_type = 'BASE TABLE'").fetchall() if r[0] not in _DERIVED]
    saved_path = con.execute("SELECT current_setting('search_path')").fetchone()[0]
    con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    con.execute(f"CREATE SCHEMA {schema}")
    try:
        for t in tables:
            con.execute(_truncated_view_sql(con, t, schema, str(cutoff), str(as_of)))
        # Unqualified names now resolve to the truncated views first; new tables land in `schema`.
        con.execute(f"SET search_path = '{schema},main'")
        try:
            build_tag_table(con, tag_catalog, str(cutoff), months=(cutoff - start).n + 1)
            build_event_triggers(con, catalog)
        finally:
            if saved_path:
                con.execute(f"SET search_path = '{saved_path}'")
            else:
                con.execute("RESET search_path")
        diffs = ", ".join(
            f"count(*) FILTER (WHERE coalesce(f.{e.id}, false) IS DISTINCT FROM coalesce(p.{e.id}, false)) AS {e.id}"
            for e in catalog.events)
        row = con.execute(f"""
SELECT {diffs}
FROM (SELECT * FROM main.event_triggers WHERE month <= DATE '{cutoff}-01') f
FULL JOIN {schema}.event_triggers p USING (customer_id, month)""").fetchone()
    finally:
        con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return [e.id for e, n in zip(catalog.events, row) if n]


def backtest_months(con: duckdb.DuckDBPyConnection, as_of: str, window: int, n_months: int) -> tuple[str, str]:
    """The last `n_months` trigger months whose outcome window is complete by the as-of month."""
    last = pd.Period(as_of, "M") - window
    first = last - (n_months - 1)
    return str(first), str(last)


def _event_customer_counts_sql(ev: EventDef, first: str, last: str, window: int) -> str:
    targets = ", ".join("'" + p.replace("'", "''") + "'" for p in ev.target_products)
    not_holding = " AND ".join(f"cm.{product_column(p)} = 0" for p in ev.target_products)
    return f"""
SELECT '{ev.id}' AS event_id, x.customer_id,
  sum(CASE WHEN x.trig THEN 1 ELSE 0 END) AS m,
  sum(CASE WHEN x.trig AND x.hit THEN 1 ELSE 0 END) AS a,
  sum(CASE WHEN NOT x.trig THEN 1 ELSE 0 END) AS k,
  sum(CASE WHEN NOT x.trig AND x.hit THEN 1 ELSE 0 END) AS b,
  min(CASE WHEN x.trig AND x.hit THEN x.lead_months END) AS lead_months
FROM (
  SELECT et.customer_id, et.month, et.{ev.id} AS trig,
    o.first_start IS NOT NULL AS hit,
    datediff('month', et.month, o.first_start) AS lead_months
  FROM event_triggers et
  JOIN customer_month cm USING (customer_id, month)
  LEFT JOIN LATERAL (
    SELECT min(ps.start_month) AS first_start FROM product_starts ps
    WHERE ps.customer_id = et.customer_id AND ps.product_id IN ({targets})
      AND ps.start_month > et.month AND ps.start_month <= et.month + INTERVAL {window} MONTH
  ) o ON true
  WHERE et.month BETWEEN DATE '{first}-01' AND DATE '{last}-01' AND {not_holding}
) x GROUP BY x.customer_id"""


def _monthly_sql(ev: EventDef, first: str, last: str, window: int) -> str:
    targets = ", ".join("'" + p.replace("'", "''") + "'" for p in ev.target_products)
    not_holding = " AND ".join(f"cm.{product_column(p)} = 0" for p in ev.target_products)
    return f"""
SELECT '{ev.id}' AS event_id, et.month,
  sum(CASE WHEN et.{ev.id} THEN 1 ELSE 0 END) AS triggers,
  sum(CASE WHEN et.{ev.id} AND h.hit THEN 1 ELSE 0 END) AS hits,
  sum(CASE WHEN NOT et.{ev.id} THEN 1 ELSE 0 END) AS n_base,
  sum(CASE WHEN NOT et.{ev.id} AND h.hit THEN 1 ELSE 0 END) AS hits_base
FROM event_triggers et
JOIN customer_month cm USING (customer_id, month)
LEFT JOIN LATERAL (
  SELECT count(*) > 0 AS hit FROM product_starts ps
  WHERE ps.customer_id = et.customer_id AND ps.product_id IN ({targets})
    AND ps.start_month > et.month AND ps.start_month <= et.month + INTERVAL {window} MONTH
) h ON true
WHERE et.month BETWEEN DATE '{first}-01' AND DATE '{last}-01' AND {not_holding}
GROUP BY et.month"""


@dataclass(frozen=True)
class ClusteredLift:
    lift: float
    ci_low: float
    ci_high: float
    p_value: float
    se_log: float


def clustered_lift(a, m, b, k, alpha: float = 0.05) -> ClusteredLift:
    """Lift (p1/p0) with a customer-clustered sandwich interval on the log scale.

    Per customer i: a_i hits in m_i triggered months, b_i hits in k_i non-triggered months.
    p1 = Σa/Σm, p0 = Σb/Σk; Var(log p1) = Σ(a_i − p1·m_i)² / A², Var(log p0) likewise, and their
    covariance Σ(a_i − p1·m_i)(b_i − p0·k_i)/(A·B), scaled by G/(G−1) for G customers. This equals
    statsmodels' Poisson GLM (log link, regressor = triggered) with cov_type='cluster'.
    """
    a, m, b, k = (np.asarray(v, dtype=float) for v in (a, m, b, k))
    A, M, B, K = a.sum(), m.sum(), b.sum(), k.sum()
    z = sps.norm.ppf(1 - alpha / 2)
    if A > 0 and B == 0 and M > 0 and K > 0:
        # No comparison customer converted: the ratio is infinite and log p0 has no variance. Use the
        # Haldane–Anscombe correction (0.5 added to each cell of the 2×2 table; unclustered), so a
        # perfect predictor — a real rare signal, or a leak — is scored, not silently dropped.
        p1, p0 = (A + 0.5) / (M + 1), 0.5 / (K + 1)
        se = float(np.sqrt(1 / (A + 0.5) - 1 / (M + 1) + 1 / 0.5 - 1 / (K + 1)))
        log_lift = float(np.log(p1 / p0))
        return ClusteredLift(float(p1 / p0), float(np.exp(log_lift - z * se)), float(np.exp(log_lift + z * se)),
                             float(2 * sps.norm.sf(abs(log_lift) / se)), se)
    if A == 0 or B == 0 or M == 0 or K == 0:
        lift = (A / M) / (B / K) if M and K and B else float("nan")
        return ClusteredLift(lift, float("nan"), float("nan"), float("nan"), float("nan"))
    p1, p0 = A / M, B / K
    r1, r0 = a - p1 * m, b - p0 * k
    g = len(a)
    scale = g / (g - 1) if g > 1 else 1.0
    var = scale * ((r1 ** 2).sum() / A ** 2 + (r0 ** 2).sum() / B ** 2 - 2 * (r1 * r0).sum() / (A * B))
    se = float(np.sqrt(max(var, 0.0)))
    log_lift = np.log(p1 / p0)
    p = float(2 * sps.norm.sf(abs(log_lift) / se)) if se > 0 else float("nan")
    return ClusteredLift(float(p1 / p0), float(np.exp(log_lift - z * se)), float(np.exp(log_lift + z * se)), p, se)


def backtest_events(con: duckdb.DuckDBPyConnection, catalog: EventCatalog, as_of: str, *,
                    window: int = 3, n_months: int = 12, fdr_q: float = 0.10, min_lift: float = 1.2,
                    min_triggers: int = 30, tag_catalog: TagCatalog | None = None,
                    leaking: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Backtest every non-risk event; returns (scorecard, monthly) frames.

    scorecard: event_id, triggers, customers_triggered, hits, hit_rate (+ Wilson CI), base_rate,
    lift (+ clustered CI), p_value, q_value (Benjamini–Hochberg across events), monthly_volume,
    coverage, lead_time_months, months_lift_above_1, point_in_time, selected, reason.
    tag_catalog: when given, `point_in_time_check` runs at the last backtest month and every event
    whose past triggers change is rejected ('leaks future data'); `leaking` adds ids known to leak.
    """
    first, last = backtest_months(con, as_of, window, n_months)
    leaks = set(leaking or [])
    if tag_catalog is not None:
        leaks |= set(point_in_time_check(con, catalog, last, tag_catalog))
    events = [e for e in catalog.events if not e.suppresses_offers]
    per_customer = con.execute(" UNION ALL ".join(
        _event_customer_counts_sql(e, first, last, window) for e in events)).df()
    monthly = con.execute(" UNION ALL ".join(_monthly_sql(e, first, last, window) for e in events)).df()
    n_customers = con.execute("SELECT count(DISTINCT customer_id) FROM customer_month "
                              f"WHERE month BETWEEN DATE '{first}-01' AND DATE '{last}-01'").fetchone()[0]
    rows = []
    for ev in events:
        d = per_customer[per_customer["event_id"] == ev.id]
        cl = clustered_lift(d["a"], d["m"], d["b"], d["k"])
        trig, hits = int(d["m"].sum()), int(d["a"].sum())
        base_n, base_hits = int(d["k"].sum()), int(d["b"].sum())
        lo, hi = wilson_interval(hits, trig) if trig else (float("nan"), float("nan"))
        mo = monthly[monthly["event_id"] == ev.id]
        with np.errstate(divide="ignore", invalid="ignore"):
            mlift = (mo["hits"] / mo["triggers"]) / (mo["hits_base"] / mo["n_base"])
        rows.append({
            "event_id": ev.id, "label_zh": ev.label_zh, "label_en": ev.label_en, "category": ev.category,
            "target_products": ",".join(ev.target_products),
            "triggers": trig, "customers_triggered": int((d["m"] > 0).sum()), "hits": hits,
            "hit_rate": hits / trig if trig else float("nan"), "hit_rate_ci_low": lo, "hit_rate_ci_high": hi,
            "base_n": base_n, "base_hits": base_hits,
            "base_rate": base_hits / base_n if base_n else float("nan"),
            "lift": cl.lift, "lift_ci_low": cl.ci_low, "lift_ci_high": cl.ci_high, "p_value": cl.p_value,
            "monthly_volume": trig / n_months, "coverage": (d["m"] > 0).sum() / n_customers if n_customers else 0.0,
            "lead_time_months": float(d["lead_months"].median()) if d["lead_months"].notna().any() else float("nan"),
            "months_lift_above_1": float((mlift > 1).mean()) if len(mlift) else float("nan"),
        })
    card = pd.DataFrame(rows)
    q, _ = benjamini_hochberg(card["p_value"].to_numpy(), q=fdr_q)
    card["q_value"] = q
    card["point_in_time"] = ~card["event_id"].isin(leaks)
    reasons, selected = [], []
    for r in card.itertuples():
        why = [] if r.point_in_time else [LEAK_REASON]
        if r.triggers < min_triggers:
            why.append(f"triggers<{min_triggers}")
        if not (r.q_value <= fdr_q):
            why.append(f"q>{fdr_q:g}")
        if not (r.lift_ci_low > 1):
            why.append("lift CI includes 1")
        if not (r.lift >= min_lift):
            why.append(f"lift<{min_lift:g}")
        selected.append(not why)
        reasons.append("; ".join(why) if why else "selected")
    card["selected"] = selected
    card["reason"] = reasons
    card.attrs["backtest_months"] = (first, last)
    card.attrs["point_in_time_cutoff"] = last if tag_catalog is not None else None
    return card.sort_values(["selected", "lift"], ascending=[False, False]).reset_index(drop=True), monthly


def new_product_balances(con: duckdb.DuckDBPyConnection, first: str, last: str) -> pd.DataFrame:
    """Average balance a new product brings, measured on take-ups starting in months first..last.

    Loans (and discounted bills): the contract amount. Deposit accounts: the account's average
    daily balance over its first three months (open month and the two after). Service products
    (payroll, acquiring, e-banking …) carry no balance: NaN. Returns product_id, new_starts,
    avg_new_balance (元), basis.
    """
    lo, hi = f"DATE '{first}-01'", f"last_day(DATE '{last}-01')"
    return con.execute(f"""
WITH loan_starts AS (
  SELECT product_id, count(*) AS new_starts, avg(contract_amount) AS avg_new_balance, 'loan amount' AS basis
  FROM loans WHERE disbursement_date BETWEEN {lo} AND {hi} GROUP BY 1),
dep AS (
  SELECT a.product_id, a.account_id, avg(b.balance_daily_avg) AS first_3m_avg
  FROM accounts a LEFT JOIN balances_monthly b ON b.account_id = a.account_id
    AND b.month BETWEEN date_trunc('month', a.open_date) AND date_trunc('month', a.open_date) + INTERVAL 2 MONTH
  WHERE a.open_date BETWEEN {lo} AND {hi}
    AND a.account_type IN ('基本存款账户', '一般存款账户', '定期存款', '协定存款', '保证金账户')
  GROUP BY 1, 2),
dep_starts AS (
  SELECT product_id, count(*) AS new_starts, avg(coalesce(first_3m_avg, 0)) AS avg_new_balance,
    'deposit daily average, first 3 months' AS basis
  FROM dep GROUP BY 1),
service AS (
  SELECT product_id, count(*) AS new_starts, CAST(NULL AS DOUBLE) AS avg_new_balance, 'no balance' AS basis
  FROM accounts WHERE open_date BETWEEN {lo} AND {hi}
    AND product_id NOT IN (SELECT product_id FROM loan_starts) AND product_id NOT IN (SELECT product_id FROM dep_starts)
  GROUP BY 1)
SELECT * FROM loan_starts UNION ALL SELECT * FROM dep_starts UNION ALL SELECT * FROM service
ORDER BY product_id""").df()


def pilot_expectations(card: pd.DataFrame, balances: pd.DataFrame) -> pd.DataFrame:
    """Per selected event: expected monthly conversions (volume × hit rate) and the balances they bring.

    The incremental part uses the base rate: conversions the event adds over what would happen anyway.
    """
    sel = card[card["selected"]]
    first_product = sel["target_products"].str.split(",").str[0]
    bal = balances.set_index("product_id")["avg_new_balance"]
    out = pd.DataFrame({
        "event_id": sel["event_id"], "label_en": sel["label_en"], "label_zh": sel["label_zh"],
        "product_id": first_product, "monthly_volume": sel["monthly_volume"], "hit_rate": sel["hit_rate"],
        "lift": sel["lift"],
        "expected_conversions": sel["monthly_volume"] * sel["hit_rate"],
        "incremental_conversions": sel["monthly_volume"] * (sel["hit_rate"] - sel["base_rate"]),
        "avg_new_balance": first_product.map(bal).to_numpy(),
    })
    out["expected_balance"] = out["expected_conversions"] * out["avg_new_balance"]
    return out.reset_index(drop=True)
