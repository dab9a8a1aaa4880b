"""One month of settlement-account flows: special transactions, ordinary ones, and the balance chain.

Amounts are int64 cents so that, for every settlement account and month,
month-end(m) = month-end(m−1) + credit_amount(m) − debit_amount(m) exactly, and the
monthly credit / debit / count equal the sums of that account-month's transactions.
Slots: 0..n−1 are customers' 基本户, n..2n−1 their 一般户.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .catalog import CHANNELS, CP_BANKS, P, PURPOSES
from .config import BankConfig

C, D = 0, 1
BANK_SAME, BANK_OTHER, BANK_NONE = 0, 1, 2


@dataclass
class TxnBuffer:
    """Special transactions of one month, appended group by group."""

    parts: list[tuple] = field(default_factory=list)

    def add(self, slot, day, cents, direction: int, purpose: str, cp: int = -1, same: bool = False,
            usd: bool = False) -> None:
        slot = np.asarray(slot, dtype=np.int64)
        if not len(slot):
            return
        n = len(slot)
        self.parts.append((slot, np.broadcast_to(np.asarray(day, dtype=np.int64), (n,)),
                           np.broadcast_to(np.asarray(cents, dtype=np.int64), (n,)),
                           np.full(n, direction, np.int8), np.full(n, P[purpose], np.int8),
                           np.full(n, cp, np.int8), np.full(n, same, bool), np.full(n, usd, bool)))

    def arrays(self) -> dict[str, np.ndarray]:
        keys = ("slot", "day", "cents", "dir", "purpose", "cp", "same", "usd")
        if not self.parts:
            empty = (np.int64, np.int64, np.int64, np.int8, np.int8, np.int8, bool, bool)
            return {k: np.zeros(0, dtype=t) for k, t in zip(keys, empty)}
        return {k: np.concatenate([p[i] for p in self.parts]) for i, k in enumerate(keys)}


def lognormal_cents(rng: np.random.Generator, n: int, median, sd: float,
                    round_to: float = 0.01) -> np.ndarray:
    """Positive log-normal amounts in cents, rounded to `round_to` yuan (≥ one unit).

    `median` is a number or one per row.
    """
    x = np.asarray(median, dtype=float) * np.exp(rng.normal(0.0, sd, n))
    unit = round_to * 100
    return np.maximum(np.round(x * 100 / unit) * unit, unit).astype(np.int64)


def _split(rng: np.random.Generator, totals: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split per-slot cent totals into `counts` positive parts that sum exactly to the totals."""
    counts = np.minimum(counts, totals).astype(np.int64)
    slots = np.repeat(np.arange(len(totals)), counts)
    if not len(slots):
        return slots, np.zeros(0, dtype=np.int64)
    w = rng.exponential(1.0, len(slots)) + 0.05
    sums = np.bincount(slots, weights=w, minlength=len(totals))
    share = w / sums[slots]
    # one cent reserved per part keeps every part ≥ 1 cent after flooring
    spare = totals[slots] - counts[slots]
    cents = 1 + np.floor(share * spare).astype(np.int64)
    last = np.cumsum(counts)[counts > 0] - 1
    short = totals - np.bincount(slots, weights=cents, minlength=len(totals)).astype(np.int64)
    cents[last] += short[counts > 0]
    return slots, cents


@dataclass
class MonthFlows:
    """Per-slot results of a month (cents) and the transaction rows (None when disabled)."""

    end: np.ndarray
    credit: np.ndarray
    debit: np.ndarray
    count: np.ndarray
    txns: dict[str, np.ndarray] | None


def settle(rng: np.random.Generator, cfg: BankConfig, specials: TxnBuffer, *, is_open: np.ndarray,
           first_day: np.ndarray, last_day: int, prev_end: np.ndarray, target_end: np.ndarray,
           inflow: np.ndarray, intensity: np.ndarray, with_txns: bool) -> MonthFlows:
    """Balance chain and ordinary transactions of every open settlement slot for one month.

    Ordinary credits carry `inflow` (cents); ordinary debits take whatever keeps the month-end
    at `target_end` (or as close as the money allows without going negative; a same-name
    transfer in from another bank funds any shortfall below zero).
    """
    n2 = len(prev_end)
    sp = specials.arrays()
    is_c = sp["dir"] == C
    sc = np.bincount(sp["slot"], weights=np.where(is_c, sp["cents"], 0), minlength=n2).astype(np.int64)
    sd = np.bincount(sp["slot"], weights=np.where(is_c, 0, sp["cents"]), minlength=n2).astype(np.int64)
    inflow = np.where(is_open, inflow, 0)
    avail = prev_end + inflow + sc - sd
    funding = np.where(is_open & (avail < 0), target_end - avail, 0)
    fill_debit = np.where(is_open, np.maximum(avail - target_end, 0), 0)
    end = np.where(is_open, avail + funding - fill_debit, prev_end)
    credit = inflow + sc + funding
    debit = sd + fill_debit
    if not with_txns:
        return MonthFlows(end=end, credit=credit, debit=debit, count=np.zeros(n2, np.int64), txns=None)

    fund_slots = np.flatnonzero(funding > 0)
    specials.add(fund_slots, first_day[fund_slots], funding[fund_slots], C, "同名划转", BANK_OTHER, True)
    lam = np.where(is_open, intensity, 0.0) / 2.0
    n_c = np.where(inflow > 0, np.maximum(rng.poisson(lam), 1), 0)
    n_d = np.where(fill_debit > 0, np.maximum(rng.poisson(lam), 1), 0)
    parts = [specials.arrays()]
    for totals, counts, direction, mix in ((inflow, n_c, C, cfg.filler_credit_purposes),
                                           (fill_debit, n_d, D, cfg.filler_debit_purposes)):
        slots, cents = _split(rng, totals, counts)
        keys = list(mix)
        p = np.asarray([mix[k] for k in keys], dtype=float)
        purpose = np.asarray([P[k] for k in keys], dtype=np.int8)[rng.choice(len(keys), len(slots), p=p / p.sum())]
        parts.append({"slot": slots, "day": np.zeros(len(slots), np.int64) - 1, "cents": cents,
                      "dir": np.full(len(slots), direction, np.int8), "purpose": purpose,
                      "cp": np.full(len(slots), -1, np.int8), "same": np.zeros(len(slots), bool),
                      "usd": np.zeros(len(slots), bool)})
    tx = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    undated = tx["day"] < 0
    lo = first_day[tx["slot"][undated]]
    tx["day"][undated] = lo + np.floor(rng.random(undated.sum()) * (last_day - lo + 1)).astype(np.int64)
    _draw_codes(rng, cfg, tx)
    count = np.bincount(tx["slot"], minlength=n2).astype(np.int64)
    return MonthFlows(end=end, credit=credit, debit=debit, count=count, txns=tx)


def _table(cfg_mix: dict, width: int) -> np.ndarray:
    out = np.zeros((len(PURPOSES), width))
    for name, probs in cfg_mix.items():
        p = np.asarray(probs, dtype=float)
        out[P[name]] = np.cumsum(p / p.sum())
    return out


def _draw_codes(rng: np.random.Generator, cfg: BankConfig, tx: dict[str, np.ndarray]) -> None:
    """Channel for every row; counterparty bank where the builder left it open (-1)."""
    n = len(tx["slot"])
    ch_cdf = _table(cfg.channel_mix, len(CHANNELS))
    tx["channel"] = (rng.random(n)[:, None] > ch_cdf[tx["purpose"]]).sum(axis=1).astype(np.int8)
    tx["channel"] = np.minimum(tx["channel"], len(CHANNELS) - 1)
    open_cp = tx["cp"] < 0
    cp_cdf = _table(cfg.counterparty_mix, len(CP_BANKS))
    drawn = (rng.random(open_cp.sum())[:, None] > cp_cdf[tx["purpose"][open_cp]]).sum(axis=1)
    tx["cp"][open_cp] = np.minimum(drawn, len(CP_BANKS) - 1).astype(np.int8)
