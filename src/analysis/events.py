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

from .catalog import EventCatalog, EventDef
from .sqlsafety import check_expression
from .stats import benjamini_hochberg, wilson_interval
from .tags import build_product_starts, product_column


def validate_events(catalog: EventCatalog, tag_ids: list[str], product_ids: list[str]) -> None:
    """Reject unsafe triggers and unknown target products before anything runs, naming the event."""
    from .errors import InputError

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
    if A == 0 or B == 0 or M == 0 or K == 0:
        lift = (A / M) / (B / K) if M and K and B else float("nan")
        return ClusteredLift(lift, float("nan"), float("nan"), float("nan"), float("nan"))
    p1, p0 = A / M, B / K
    r1, r0 = a - p1 * m, b - p0 * k
    g = len(a)
    scale = g / (g - 1) if g > 1 else 1.0
    var = scale * ((r1 ** 2).sum() / A ** 2 + (r0 ** 2).sum() / B ** 2 - 2 * (r1 * r0).sum() / (A * B))
    se = float(np.sqrt(max(var, 0.0)))
    z = sps.norm.ppf(1 - alpha / 2)
    log_lift = np.log(p1 / p0)
    p = float(2 * sps.norm.sf(abs(log_lift) / se)) if se > 0 else float("nan")
    return ClusteredLift(float(p1 / p0), float(np.exp(log_lift - z * se)), float(np.exp(log_lift + z * se)), p, se)


def backtest_events(con: duckdb.DuckDBPyConnection, catalog: EventCatalog, as_of: str, *,
                    window: int = 3, n_months: int = 12, fdr_q: float = 0.10, min_lift: float = 1.2,
                    min_triggers: int = 30) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Backtest every non-risk event; returns (scorecard, monthly) frames.

    scorecard: event_id, triggers, customers_triggered, hits, hit_rate (+ Wilson CI), base_rate,
    lift (+ clustered CI), p_value, q_value (Benjamini–Hochberg across events), monthly_volume,
    coverage, lead_time_months, months_lift_above_1, selected, reason.
    """
    first, last = backtest_months(con, as_of, window, n_months)
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
    reasons, selected = [], []
    for r in card.itertuples():
        why = []
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
    return card.sort_values(["selected", "lift"], ascending=[False, False]).reset_index(drop=True), monthly
