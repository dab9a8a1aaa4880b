"""Stage 03 inputs: the warehouse aggregated (SQL on DuckDB) to one row per customer for a value window."""

from __future__ import annotations

import duckdb
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from .engines import query_frame
from .tags import product_column


class ValueAssumptions(BaseModel):
    """Risk and fee parameters that are design assumptions until the bank confirms them."""

    model_config = ConfigDict(extra="forbid")

    note_zh: str = ""
    note_en: str = ""
    pd_by_rating: dict[str, float] = Field(default_factory=lambda: {"未评级": 0.025})
    lgd: float = Field(0.45, gt=0, le=1)
    annual_fee_by_product: dict[str, float] = {}
    expected_loan_amount: float = Field(400_000, gt=0)


def value_inputs(con: duckdb.DuckDBPyConnection, end_month: str, window_months: int,
                 assumptions: ValueAssumptions) -> pd.DataFrame:
    """One row per customer: 日均 balances and rates over the window ending `end_month`, PD, LGD, fees,
    and the firmographic / flow drivers of potential value (all known by `end_month`)."""
    start = str(pd.Period(end_month, "M") - (window_months - 1))
    # Rounded to cents / 1e-8: parallel float sums differ in the last bits between runs, and the
    # quantile regression would amplify that into different published numbers.
    pd_cases = " ".join(f"WHEN '{k}' THEN {float(v)}" for k, v in assumptions.pd_by_rating.items())
    default_pd = float(assumptions.pd_by_rating.get("未评级", 0.025))
    cols = {r[0] for r in con.execute("DESCRIBE customer_month").fetchall()}
    # Fees accrue on service products held; products the bank does not offer are skipped.
    fee_terms = " + ".join(f"max(cm.{product_column(p)}) * {float(f)}"
                           for p, f in assumptions.annual_fee_by_product.items()
                           if product_column(p) in cols) or "0"
    return query_frame(con, f"""
SELECT cm.customer_id,
  any_value(cm.customer_type) AS customer_type,
  coalesce(any_value(cm.industry_code), '未知') AS industry_code,
  any_value(cm.branch_id) AS branch_id, any_value(cm.rm_id) AS rm_id,
  coalesce(any_value(cm.credit_rating), '未评级') AS credit_rating,
  round(sum(cm.deposit_avg) / {window_months}, 2) AS deposit_avg_balance,
  round(coalesce(sum(cm.deposit_interest_annual) / nullif(sum(cm.deposit_avg), 0), 0), 8) AS deposit_rate_paid,
  round(sum(cm.loan_avg) / {window_months}, 2) AS loan_avg_balance,
  round(coalesce(sum(cm.loan_interest_annual) / nullif(sum(cm.loan_avg), 0), 0), 8) AS loan_rate,
  CAST(CASE coalesce(any_value(cm.credit_rating), '未评级') {pd_cases} ELSE {default_pd} END AS DOUBLE) AS pd,
  CAST({float(assumptions.lgd)} AS DOUBLE) AS lgd,
  CAST({fee_terms} AS DOUBLE) AS fee_income,
  max(cm.months_established) / 12.0 AS years_established,
  max(cm.months_with_bank) / 12.0 AS years_with_bank,
  any_value(cm.annual_turnover) AS annual_turnover,
  any_value(cm.employees) AS employees,
  round(sum(cm.demand_inflow) * 12.0 / {window_months}, 2) AS annual_inflow,
  round(sum(cm.other_bank_in_amount) * 12.0 / {window_months}, 2) AS annual_other_bank_inflow,
  round(sum(coalesce(cm.tax_paid, 0)) * 12.0 / {window_months}, 2) AS annual_tax,
  round(sum(coalesce(cm.invoice_amount, 0)) * 12.0 / {window_months}, 2) AS annual_invoices,
  max(cm.active_loan_amount) AS max_loan_amount,
  count(*) AS months_observed
FROM customer_month cm
WHERE cm.month BETWEEN DATE '{start}-01' AND DATE '{end_month}-01'
GROUP BY cm.customer_id
ORDER BY cm.customer_id""")


def loan_offers(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    has = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'loan_offers'").fetchone()[0]
    if not has:
        return None
    return con.execute("SELECT offered_rate, guide_rate, CAST(accepted AS INTEGER) AS accepted, amount "
                       "FROM loan_offers WHERE offered_rate IS NOT NULL AND guide_rate IS NOT NULL").df()


POTENTIAL_DRIVERS = ["industry_code", "customer_type", "years_established"]
# Headcount is long-tailed like the amounts: log1p, so one 500-person firm does not set the slope.
POTENTIAL_LOG_DRIVERS = ["annual_turnover", "employees", "annual_inflow", "annual_other_bank_inflow",
                         "annual_tax", "annual_invoices"]

CUSTOMER_TYPE_EN = {"个体工商户": "sole proprietor", "微型企业": "micro enterprise", "小型企业": "small enterprise",
                    "中型企业": "medium enterprise", "未知": "unknown"}
DRIVER_LABELS = {  # term → (label_zh, label_en)
    "years_established": ("成立年限", "Years established"),
    "log1p(annual_turnover)": ("年营业收入 (对数)", "Annual turnover (log)"),
    "log1p(employees)": ("员工人数 (对数)", "Employees (log)"),
    "log1p(annual_inflow)": ("年活期流入 (对数)", "Annual demand inflow (log)"),
    "log1p(annual_other_bank_inflow)": ("年他行转入 (对数)", "Annual other-bank inflow (log)"),
    "log1p(annual_tax)": ("年纳税额 (对数)", "Annual tax (log)"),
    "log1p(annual_invoices)": ("年开票额 (对数)", "Annual invoices (log)"),
}


def driver_label(term: str, language: str = "zh") -> str:
    """A potential-model term in words, e.g. ``customer_type[小型企业]`` → "Customer type: small enterprise"."""
    if term in DRIVER_LABELS:
        return DRIVER_LABELS[term][0 if language == "zh" else 1]
    if "[" in term and term.endswith("]"):
        col, level = term[:-1].split("[", 1)
        if col == "industry_code":
            return f"行业 {level}" if language == "zh" else f"Industry {'unknown' if level == '未知' else level}"
        if col == "customer_type":
            return f"客户类型: {level}" if language == "zh" else f"Customer type: {CUSTOMER_TYPE_EN.get(level, 'other')}"
        return term if language == "zh" or level.isascii() else f"{col}: other level"
    return term


def score_customers(con: duckdb.DuckDBPyConnection, end_month: str, window_months: int, *,
                    assumptions: ValueAssumptions, ftp, scheme, quantile: float = 0.8):
    """Current value, potential value and tier of every customer for the window ending `end_month`.

    Returns (frame, PotentialModel, TierThresholds). Customers observed for less than the whole
    window are valued on the months they were customers (日均 over the window, so newer
    customers are not flattered by annualising a short history).
    """
    from .value import assign_tiers, current_value, potential_value

    frame = value_inputs(con, end_month, window_months, assumptions)
    frame = frame.assign(employees=frame["employees"].fillna(frame["employees"].median()),
                         years_established=frame["years_established"].fillna(frame["years_established"].median()),
                         annual_turnover=frame["annual_turnover"].fillna(0.0))
    frame = current_value(frame, ftp)
    frame, model = potential_value(frame, POTENTIAL_DRIVERS, log_drivers=POTENTIAL_LOG_DRIVERS,
                                   quantile=quantile)
    frame, thresholds = assign_tiers(frame, scheme=scheme)
    return frame, model, thresholds


def loan_eligibility(con: duckdb.DuckDBPyConnection, as_of: str, *,
                     worst_five_class_allowed: int = 2) -> pd.DataFrame:
    """Who may be offered a loan at `as_of`: one row per customer with the reasons.

    A customer is ineligible when a loan is past due at `as_of` (``overdue``), a loan is
    classified worse than ``worst_five_class_allowed`` (1 正常, 2 关注, 3 次级 …; ``impaired``),
    or an abnormal listing, penalty or lawsuit was registered in the 12 months to `as_of`
    (``registry_risk``: the risk events that suppress offers in the event catalogue).
    Returns customer_id, overdue, impaired, registry_risk (bool) and eligible.
    """
    cols = {r[0] for r in con.execute("DESCRIBE customer_month").fetchall()}
    reg_terms = [c for c in ("n_abnormal_listing", "n_penalty", "n_lawsuit") if c in cols]
    registry = (f"coalesce(sum({' + '.join(f'coalesce(cm.{c}, 0)' for c in reg_terms)}), 0) > 0"
                if reg_terms else "false")
    overdue = ("coalesce(max(cm.overdue_days_now) FILTER (WHERE cm.month = m.end_m), 0) > 0"
               if "overdue_days_now" in cols else "false")
    impaired = (f"coalesce(max(cm.worst_five_class_now) FILTER (WHERE cm.month = m.end_m), 1) "
                f"> {int(worst_five_class_allowed)}" if "worst_five_class_now" in cols else "false")
    start = str(pd.Period(as_of, "M") - 11)
    out = con.execute(f"""
WITH m AS (SELECT DATE '{as_of}-01' AS end_m)
SELECT cm.customer_id, {overdue} AS overdue, {impaired} AS impaired, {registry} AS registry_risk
FROM customer_month cm CROSS JOIN m
WHERE cm.month BETWEEN DATE '{start}-01' AND DATE '{as_of}-01'
GROUP BY cm.customer_id
ORDER BY cm.customer_id""").df()
    return out.assign(eligible=~(out["overdue"] | out["impaired"] | out["registry_risk"]))


def tier_growth_evidence(con: duckdb.DuckDBPyConnection, as_of: str, *, assumptions: ValueAssumptions,
                         ftp, scheme, quantile: float = 0.8, window_months: int = 6):
    """Backtest of the potential ranking: rank customers at t = as_of − 12 on a `window_months` window,
    then compare the growth of annual value to t+6 and t+12 of the high-potential band vs the rest.

    Returns (growth table of value.tier_growth_backtest with Welch intervals, t as YYYY-MM).
    """
    from .value import tier_growth_backtest

    t0 = str(pd.Period(as_of, "M") - 12)
    kw = dict(assumptions=assumptions, ftp=ftp, scheme=scheme, quantile=quantile)
    base, _, _ = score_customers(con, t0, window_months, **kw)
    later6, _, _ = score_customers(con, str(pd.Period(t0, "M") + 6), window_months, **kw)
    later12, _, _ = score_customers(con, as_of, window_months, **kw)
    bt = base[["customer_id", "current_value", "potential_band"]].merge(
        later6[["customer_id", "current_value"]].rename(columns={"current_value": "v6"}), on="customer_id").merge(
        later12[["customer_id", "current_value"]].rename(columns={"current_value": "v12"}), on="customer_id")
    bt = bt.assign(high_potential=bt["potential_band"] == "high", growth_6m=bt["v6"] - bt["current_value"],
                   growth_12m=bt["v12"] - bt["current_value"])
    return tier_growth_backtest(bt, "high_potential", ["growth_6m", "growth_12m"]), t0
