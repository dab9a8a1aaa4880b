"""Opportunity-event triggers computed from the very values written to the extract.

`Observed` holds customer × month matrices of what the extract shows (built month by month
during the simulation); `fire(k, ...)` evaluates every event of catalog.EVENT_DEFINITIONS for
month k. The take-up hazards of later months read these flags, so the planted lifts are exact
for the observable triggers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .catalog import EVENT_IDS


@dataclass
class Observed:
    """Customer × month matrices as the extract shows them (yuan as written, counts)."""

    panel: np.ndarray            # bool: month ≥ relationship start month
    inflow: np.ndarray           # S: credit_amount over demand accounts
    demand_avg: np.ndarray       # balance_daily_avg over demand accounts
    tax_positive: np.ndarray     # tax_monthly.tax_paid > 0
    loan_active_end: np.ndarray  # any loans.csv row active at month end
    n_txn: np.ndarray
    n_to_private: np.ndarray
    n_cash: np.ndarray
    large_goods_in: np.ndarray   # any 货款 C ≥ 500,000
    fx_in: np.ndarray
    bill_in: np.ndarray
    same_name_out: np.ndarray    # any 同名划转 D 他行 ≥ 100,000
    month0: int = 0              # months since 1970-01 of window month 0

    @classmethod
    def empty(cls, n: int, months: int, month0: int) -> Observed:
        f = lambda dt: np.zeros((n, months), dtype=dt)  # noqa: E731
        return cls(month0=month0, panel=f(bool), inflow=f(np.float64), demand_avg=f(np.float64), tax_positive=f(bool),
                   loan_active_end=f(bool), n_txn=f(np.int64), n_to_private=f(np.int64),
                   n_cash=f(np.int64), large_goods_in=f(bool), fx_in=f(bool), bill_in=f(bool),
                   same_name_out=f(bool))


def _have_prior(panel: np.ndarray, k: int, lags: int) -> np.ndarray:
    """Customers whose months k−lags … k are all panel months (within the window)."""
    if k - lags < 0:
        return np.zeros(panel.shape[0], dtype=bool)
    return panel[:, k - lags:k + 1].all(axis=1)


def fire(k: int, ob: Observed, est_month: np.ndarray, rel_month: np.ndarray) -> dict[str, np.ndarray]:
    """Every event's trigger flag in window month k (False outside the customer's panel).

    est_month / rel_month: months since 1970-01 of established / relationship start dates.
    """
    m_abs = ob.month0 + k
    panel = ob.panel[:, k]
    out: dict[str, np.ndarray] = {}
    out["EV_LARGE_INFLOW"] = ob.large_goods_in[:, k]
    out["EV_PAYROLL_PATTERN"] = ob.n_to_private[:, k] >= 6
    out["EV_CASH_HEAVY"] = ob.n_cash[:, k] >= 8
    out["EV_FX_RECEIPT"] = ob.fx_in[:, k]
    out["EV_BILL_RECEIVED"] = ob.bill_in[:, k]
    if k >= 3:
        prior = ob.inflow[:, k - 3:k].sum(axis=1) / 3.0
        out["EV_INFLOW_SURGE"] = (_have_prior(ob.panel, k, 3) & (prior >= 50_000.0)
                                  & (ob.inflow[:, k] >= 1.5 * prior))
    else:
        out["EV_INFLOW_SURGE"] = np.zeros_like(panel)
    out["EV_TAX_STABLE_NO_LOAN"] = (_have_prior(ob.panel, k, 5)
                                    & ob.tax_positive[:, max(0, k - 5):k + 1].all(axis=1)
                                    & ~ob.loan_active_end[:, k])
    out["EV_HIGH_DEMAND_BALANCE"] = (_have_prior(ob.panel, k, 2)
                                     & ((ob.demand_avg[:, max(0, k - 2):k + 1] >= 800_000.0).all(axis=1)))
    out["EV_ANNIVERSARY"] = (est_month % 12 == m_abs % 12) & (m_abs >= est_month + 12)
    out["EV_SAME_NAME_OUT"] = ob.same_name_out[:, k]
    out["EV_NEW_RELATIONSHIP"] = (rel_month >= m_abs - 5) & (rel_month <= m_abs)
    if k >= 1:
        prev = ob.demand_avg[:, k - 1]
        out["EV_DEPOSIT_DROP"] = (ob.panel[:, k - 1] & (prev >= 100_000.0)
                                  & (ob.demand_avg[:, k] <= 0.7 * prev))
    else:
        out["EV_DEPOSIT_DROP"] = np.zeros_like(panel)
    lo = max(0, k - 2)
    recent = np.where(ob.panel[:, lo:k + 1], ob.n_txn[:, lo:k + 1], 0).sum(axis=1)
    out["EV_DORMANT_3M"] = recent == 0
    return {e: np.asarray(out[e], dtype=bool) & panel for e in EVENT_IDS}

