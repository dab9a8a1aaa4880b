"""Stage 05 inputs: pilot list, RM feedback and outcomes measured from the warehouse (SQL on DuckDB).

Outcomes come from the bank's own systems, not from RM self-reports: loan_conversion = any new
loan disbursed in the pilot window; deposit_change = demand-deposit 日均 in the window minus the
pre-period. RM feedback (contacted / interested / applied / converted) drives the funnel and the
contacted-customer (IV) estimate.
"""

from __future__ import annotations

import duckdb
import pandas as pd

DEMAND = "('基本存款账户', '一般存款账户')"


def _has(con, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                            [table]).fetchone()[0])


def pilot_frame(con: duckdb.DuckDBPyConnection, pilot_id: str, *, window_start: str, window_end: str,
                pre_start: str, pre_end: str) -> pd.DataFrame:
    """One row per pilot customer: arm, stratum, rm, branch, tier, feedback flags and outcomes."""
    if not _has(con, "pilot_assignments"):
        return pd.DataFrame()
    ws, we = f"DATE '{window_start}-01'", f"last_day(DATE '{window_end}-01')"
    ps, pe = f"DATE '{pre_start}-01'", f"DATE '{pre_end}-01'"
    feedback = ("LEFT JOIN pilot_feedback f ON f.pilot_id = a.pilot_id AND f.customer_id = a.customer_id"
                if _has(con, "pilot_feedback") else
                "LEFT JOIN (SELECT NULL::VARCHAR AS pilot_id, NULL::VARCHAR AS customer_id, NULL::BOOLEAN AS contacted, "
                "NULL::BOOLEAN AS interested, NULL::BOOLEAN AS applied, NULL::BOOLEAN AS converted, NULL::DATE AS feedback_date) f "
                "ON f.customer_id = a.customer_id")
    tier = ("LEFT JOIN customer_value v ON v.customer_id = a.customer_id" if _has(con, "customer_value")
            else "LEFT JOIN (SELECT NULL::VARCHAR AS customer_id, NULL::VARCHAR AS tier) v ON v.customer_id = a.customer_id")
    return con.execute(f"""
WITH dep AS (
  SELECT ac.customer_id,
    sum(b.balance_daily_avg) FILTER (WHERE b.month BETWEEN {ps} AND {pe}) AS pre_sum,
    sum(b.balance_daily_avg) FILTER (WHERE b.month BETWEEN {ws} AND DATE '{window_end}-01') AS win_sum
  FROM balances_monthly b JOIN accounts ac USING (account_id)
  WHERE ac.account_type IN {DEMAND}
  GROUP BY 1),
months AS (
  SELECT datediff('month', {ps}, {pe}) + 1 AS n_pre, datediff('month', {ws}, DATE '{window_end}-01') + 1 AS n_win),
conv AS (
  SELECT customer_id, count(*) AS new_loans, sum(contract_amount) AS new_loan_amount
  FROM loans WHERE product_id LIKE 'LOAN%' AND disbursement_date BETWEEN {ws} AND {we}
  GROUP BY 1)
SELECT a.customer_id, a.arm, a.stratum, a.rm_id, a.event_id, c.branch_id, c.grid_id,
  coalesce(v.tier, 'unknown') AS tier,
  CASE WHEN a.arm = 'treatment' THEN 1 ELSE 0 END AS assigned,
  coalesce(CAST(f.contacted AS INTEGER), 0) AS contacted,
  coalesce(CAST(f.interested AS INTEGER), 0) AS interested,
  coalesce(CAST(f.applied AS INTEGER), 0) AS applied,
  coalesce(CAST(f.converted AS INTEGER), 0) AS reported_converted,
  f.customer_id IS NOT NULL AS has_feedback,
  CASE WHEN conv.new_loans > 0 THEN 1 ELSE 0 END AS loan_conversion,
  coalesce(conv.new_loan_amount, 0) AS new_loan_amount,
  coalesce(dep.pre_sum, 0) / months.n_pre AS pre_deposit,
  coalesce(dep.win_sum, 0) / months.n_win - coalesce(dep.pre_sum, 0) / months.n_pre AS deposit_change
FROM pilot_assignments a
CROSS JOIN months
LEFT JOIN customers c ON c.customer_id = a.customer_id
{feedback}
{tier}
LEFT JOIN conv ON conv.customer_id = a.customer_id
LEFT JOIN dep ON dep.customer_id = a.customer_id
WHERE a.pilot_id = ?
ORDER BY a.customer_id""", [pilot_id]).df()


def funnel(frame: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Treatment-arm funnel: listed → contacted → interested → applied → converted (bank data)."""
    t = frame[frame["assigned"] == 1]
    keys = [by] if by else []
    agg = (t.groupby(keys) if keys else t.assign(_all=1).groupby("_all")).agg(
        listed=("customer_id", "count"), contacted=("contacted", "sum"), interested=("interested", "sum"),
        applied=("applied", "sum"), converted=("loan_conversion", "sum")).reset_index()
    agg["contact_rate"] = agg["contacted"] / agg["listed"]
    agg["conversion_rate"] = agg["converted"] / agg["listed"]
    return agg.drop(columns=["_all"], errors="ignore")


def rm_league(frame: pd.DataFrame, never_worked_below: float = 0.2) -> pd.DataFrame:
    """RM league table; an RM whose contact rate is below `never_worked_below` has left the list
    unworked (石沉大海)."""
    lg = funnel(frame, "rm_id").sort_values(["conversion_rate", "contact_rate"], ascending=False)
    lg["never_worked"] = lg["contact_rate"] < never_worked_below
    lg["rank"] = range(1, len(lg) + 1)
    return lg.reset_index(drop=True)
