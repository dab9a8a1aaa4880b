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
from .sqltext import sql_string
from .stats import benjamini_hochberg, wilson_interval
from .engines import as_engine
from .tags import build_product_starts, build_tag_table, customer_batches, product_column

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
WINDOW w AS (PARTITION BY customer_id ORDER BY month)""")   # no ORDER BY: every reader aggregates or sorts
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


# Per customer-month and event, the backtest needs one of five states; coded in one small integer
# so that every later aggregate is a count over one column:
# 0 holds a target product already (not eligible), 1 not triggered / no take-up,
# 2 not triggered / take-up, 3 triggered / no take-up, 4 triggered / take-up.


def _build_backtest_base(con, events: list[EventDef], first: str, last: str, window: int) -> dict[str, str]:
    """Create `backtest_base`: (customer_id, month, one state code per event, one lead per target product).

    One range join finds, per customer-month of the backtest and per target product, the months
    to its first take-up in (t, t+W]; the events then only read columns. Returns product → column.
    """
    products = sorted({p for e in events for p in e.target_products})
    lead_col = {p: f"lead_{i}" for i, p in enumerate(products)}
    months = f"BETWEEN DATE '{first}-01' AND DATE '{last}-01'"
    leads = ",\n  ".join(
        f"min(CASE WHEN ps.product_id = {sql_string(p)} THEN datediff('month', cm.month, ps.start_month) END) AS {c}"
        for p, c in lead_col.items())
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE backtest_takeups AS
SELECT cm.customer_id, cm.month,
  {leads}
FROM customer_month cm
JOIN product_starts ps ON ps.customer_id = cm.customer_id
  AND ps.start_month > cm.month AND ps.start_month <= cm.month + INTERVAL {int(window)} MONTH
WHERE cm.month {months} AND ps.product_id IN ({", ".join(sql_string(p) for p in products)})
GROUP BY cm.customer_id, cm.month""")
    codes = []
    for ev in events:
        eligible = " AND ".join(f"cm.{product_column(p)} = 0" for p in ev.target_products)
        hit = " OR ".join(f"o.{lead_col[p]} IS NOT NULL" for p in ev.target_products)
        codes.append(f"CASE WHEN NOT coalesce(({eligible}), false) THEN 0 "
                     f"WHEN et.{ev.id} THEN (CASE WHEN {hit} THEN 4 ELSE 3 END) "
                     f"ELSE (CASE WHEN {hit} THEN 2 ELSE 1 END) END AS {ev.id}")
    leads_out = ", ".join(f"o.{c}" for c in lead_col.values())
    codes_out = ",\n  ".join(codes)
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE backtest_base AS
SELECT et.customer_id, et.month,
  {leads_out},
  {codes_out}
FROM event_triggers et
JOIN customer_month cm ON cm.customer_id = et.customer_id AND cm.month = et.month
LEFT JOIN backtest_takeups o ON o.customer_id = et.customer_id AND o.month = et.month
WHERE et.month {months}""")
    return lead_col


# Per customer i and event: m triggered months, a of them followed by take-up; k eligible months
# not triggered, b of them followed by take-up. The clustered variance needs only these sums over
# customers (see clustered_lift_from_sums), so the per-customer rows never leave the database.
_TOTALS = ("A", "M", "B", "K")            # Σa, Σm, Σb, Σk
_CROSS = ("aa", "mm", "am", "bb", "kk", "bk", "ab", "ak", "mb", "mk")   # Σa², Σm², Σa·m, …


def _customer_sums_sql(events: list[EventDef], lead_col: dict[str, str], window: int, where: str) -> str:
    inner, outer = [], []
    for j, ev in enumerate(events):
        c = ev.id
        leads = [lead_col[p] for p in ev.target_products]
        lead = f"least({', '.join(leads)})" if len(leads) > 1 else leads[0]   # Spark: least needs two
        inner.append(f"count_if({c} >= 3) AS m{j}, count_if({c} = 4) AS a{j}, "
                     f"count_if({c} = 1 OR {c} = 2) AS k{j}, count_if({c} = 2) AS b{j}, "
                     f"min(CASE WHEN {c} = 4 THEN {lead} END) AS l{j}")
        sums = [f"sum({t.lower()}{j}) AS {t}_{j}" for t in _TOTALS]
        sums += [f"sum({x}{j} * {y}{j}) AS {x}{y}_{j}" for x, y in _CROSS]
        sums.append(f"count_if(m{j} + k{j} > 0) AS G_{j}")
        sums.append(f"count_if(m{j} > 0) AS T_{j}")
        sums += [f"count_if(l{j} = {d}) AS L{d}_{j}" for d in range(1, window + 1)]
        outer.append(", ".join(sums))
    return (f"SELECT {', '.join(outer)}\nFROM (SELECT customer_id, {', '.join(inner)}\n"
            f"  FROM backtest_base WHERE {where} GROUP BY customer_id) c")


def _median_from_counts(counts: dict[int, int]) -> float:
    """Median of a sample given as value → count (as pandas' median of the expanded sample)."""
    n = sum(counts.values())
    if n == 0:
        return float("nan")
    values = sorted(v for v, c in counts.items() if c)

    def at(pos: int) -> int:
        seen = 0
        for v in values:
            seen += counts[v]
            if pos < seen:
                return v
        raise IndexError(pos)

    return float(at((n - 1) // 2)) if n % 2 else (at(n // 2 - 1) + at(n // 2)) / 2


def _event_sums(con, events: list[EventDef], lead_col: dict[str, str], window: int) -> list[dict]:
    """Per event, the customer-level sums over all customers of the backtest, added up over the
    customer batches of the tag table (tags.customer_batches), so the per-customer aggregate of
    ~100 events fits in memory at a million customers; one pass on Spark."""
    names = [*_TOTALS, *_CROSS, "G", "T", *(f"L{d}" for d in range(1, window + 1))]
    totals = [dict.fromkeys(names, 0) for _ in events]
    for where in customer_batches(as_engine(con)) or ["true"]:
        row = con.execute(_customer_sums_sql(events, lead_col, window, where)).fetchone()
        for j, tot in enumerate(totals):
            for k, name in enumerate(names):
                tot[name] += int(row[j * len(names) + k] or 0)
    return totals


def _monthly_sql(events: list[EventDef]) -> str:
    cols = ",\n  ".join(
        f"count_if({e.id} >= 3) AS triggers_{j}, count_if({e.id} = 4) AS hits_{j}, "
        f"count_if({e.id} = 1 OR {e.id} = 2) AS n_base_{j}, count_if({e.id} = 2) AS hits_base_{j}"
        for j, e in enumerate(events))
    return f"SELECT month, {cols}\nFROM backtest_base GROUP BY month ORDER BY month"


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
    sums = {"A": a.sum(), "M": m.sum(), "B": b.sum(), "K": k.sum(), "G": len(a)}
    columns = {"a": a, "m": m, "b": b, "k": k}
    for x, y in _CROSS:
        sums[x + y] = float((columns[x] * columns[y]).sum())
    return clustered_lift_from_sums(sums, alpha)


def clustered_lift_from_sums(s: dict, alpha: float = 0.05) -> ClusteredLift:
    """`clustered_lift` from the customer-level sums A=Σa, M=Σm, B=Σb, K=Σk, the cross sums
    aa=Σa², am=Σa·m, … and G customers — what the database returns, so per-customer rows stay there.

    Σ(a − p1·m)² = Σa² − 2·p1·Σam + p1²·Σm², and likewise for the other residual sums.
    """
    A, M, B, K, g = (float(s[n]) for n in ("A", "M", "B", "K", "G"))
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
    r1r1 = s["aa"] - 2 * p1 * s["am"] + p1 * p1 * s["mm"]
    r0r0 = s["bb"] - 2 * p0 * s["bk"] + p0 * p0 * s["kk"]
    r1r0 = s["ab"] - p0 * s["ak"] - p1 * s["mb"] + p1 * p0 * s["mk"]
    scale = g / (g - 1) if g > 1 else 1.0
    var = scale * (r1r1 / A ** 2 + r0r0 / B ** 2 - 2 * r1r0 / (A * B))
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
    All events are counted in one pass over `backtest_base` (see `_build_backtest_base`).
    """
    first, last = backtest_months(con, as_of, window, n_months)
    leaks = set(leaking or [])
    if tag_catalog is not None:
        leaks |= set(point_in_time_check(con, catalog, last, tag_catalog))
    events = [e for e in catalog.events if not e.suppresses_offers]
    lead_col = _build_backtest_base(con, events, first, last, window)
    sums = _event_sums(con, events, lead_col, window)
    wide = con.execute(_monthly_sql(events)).df()
    n_customers = con.execute("SELECT count(DISTINCT customer_id) FROM customer_month "
                              f"WHERE month BETWEEN DATE '{first}-01' AND DATE '{last}-01'").fetchone()[0]
    con.execute("DROP TABLE IF EXISTS backtest_base")
    con.execute("DROP TABLE IF EXISTS backtest_takeups")
    monthly = pd.concat([
        pd.DataFrame({"event_id": ev.id, "month": wide["month"],
                      **{c: wide[f"{c}_{j}"].astype("int64") for c in ("triggers", "hits", "n_base", "hits_base")}})
        for j, ev in enumerate(events)], ignore_index=True)
    monthly = monthly[(monthly["triggers"] + monthly["n_base"]) > 0].reset_index(drop=True)
    rows = []
    for j, ev in enumerate(events):
        s = sums[j]
        cl = clustered_lift_from_sums(s)
        trig, hits, base_n, base_hits = s["M"], s["A"], s["K"], s["B"]
        lo, hi = wilson_interval(hits, trig) if trig else (float("nan"), float("nan"))
        mo = monthly[monthly["event_id"] == ev.id]
        with np.errstate(divide="ignore", invalid="ignore"):
            mlift = (mo["hits"] / mo["triggers"]) / (mo["hits_base"] / mo["n_base"])
        rows.append({
            "event_id": ev.id, "label_zh": ev.label_zh, "label_en": ev.label_en, "category": ev.category,
            "target_products": ",".join(ev.target_products),
            "triggers": trig, "customers_triggered": s["T"], "hits": hits,
            "hit_rate": hits / trig if trig else float("nan"), "hit_rate_ci_low": lo, "hit_rate_ci_high": hi,
            "base_n": base_n, "base_hits": base_hits,
            "base_rate": base_hits / base_n if base_n else float("nan"),
            "lift": cl.lift, "lift_ci_low": cl.ci_low, "lift_ci_high": cl.ci_high, "p_value": cl.p_value,
            "monthly_volume": trig / n_months, "coverage": s["T"] / n_customers if n_customers else 0.0,
            "lead_time_months": _median_from_counts({d: s[f"L{d}"] for d in range(1, window + 1)}),
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
