"""Synthetic customer-level pilot with planted intention-to-treat effects.

The estimand planted here is the intention-to-treat (ITT) effect of *assigning* a customer
to the treatment list, averaged over the pilot's customers:

    ITT = mean_i [ f_rm(i) × τ_i ]

where f_rm is the follow-up (contact) rate of the customer's RM and τ_i the effect of an
RM contact on that customer (it differs by tier). Control customers are never contacted.
A randomised comparison of assigned vs control estimates ITT; ITT / contact rate estimates
the effect on contacted customers (CACE = Σ f·τ / Σ f, also in the truth).

`true_effect_binary` / `true_effect_continuous` are the ITT targets: τ is scaled so the
frame's ITT equals them (for the binary outcome exactly unless probabilities had to be
clipped to [0, 1]; the truth reports the value actually planted).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from analysis.errors import InputError
from analysis.pilot import assign_clustered, assign_stratified

TIERS = ("A", "B", "C")  # A = highest value tier
TIER_SHARES = (0.15, 0.35, 0.50)
TIER_BASE_MULTIPLIER = (1.4, 1.1, 0.8)  # conversion propensity without contact
TIER_EFFECT_MULTIPLIER = (1.6, 1.1, 0.7)  # contact works best on high-value customers
TIER_DEPOSIT_MEDIAN = (600_000.0, 250_000.0, 100_000.0)  # 元, average balance before the pilot
DEPOSIT_SIGMA = 0.8  # log-normal spread of pre-pilot balances
DEPOSIT_DRIFT = 0.03  # balances drift by ~3% of their level over the window
DEPOSIT_NOISE_SD = 40_000.0  # 元, idiosyncratic change over the window
RMS_PER_BRANCH = 8


def simulate_pilot(n_customers: int = 4000, n_rms: int = 40, true_effect_binary: float = 0.025,
                   true_effect_continuous: float = 5_000.0, base_rate: float = 0.05,
                   design: Literal["individual", "cluster"] = "individual", icc: float = 0.02,
                   follow_up_range: tuple[float, float] = (0.3, 0.9), seed: int = 0,
                   treat_share: float = 0.5) -> tuple[pd.DataFrame, dict]:
    """Customer-level pilot frame and its planted truth.

    design 'individual': customers randomised within rm_id × tier strata.
    design 'cluster': whole RM books randomised within branches.
    `icc` is the RM-level intra-cluster correlation of the no-contact conversion
    probability (beta-binomial) and the RM share of the deposit-change noise variance.

    Frame columns: customer_id, branch_id, rm_id, tier, arm ('treatment'/'control'),
    rm_follow_up_rate, contacted (0/1), loan_converted (0/1), deposit_pre (元),
    deposit_change (元). Truth: 'itt' (outcome → planted ITT), 'effect_on_contacted',
    'itt_by_tier', 'contact_rate_treatment' and the settings.
    """
    if design not in ("individual", "cluster"):
        raise InputError(f"design must be 'individual' or 'cluster', got {design!r}")
    if n_rms < 2 or n_customers < 2 * n_rms:
        raise InputError("need at least 2 RMs and 2 customers per RM",
                         fix="raise n_customers or lower n_rms")
    if not 0 < base_rate < 1 or not 0 <= icc < 1:
        raise InputError("base_rate must be in (0, 1) and icc in [0, 1)")
    low, high = follow_up_range
    if not 0 < low <= high <= 1:
        raise InputError("follow_up_range must satisfy 0 < low <= high <= 1")
    rng = np.random.default_rng(seed)

    # RM books are uneven (some RMs carry three times the customers of others)
    book_weights = rng.lognormal(0.0, 0.5, n_rms)
    book_sizes = 1 + rng.multinomial(n_customers - n_rms, book_weights / book_weights.sum())
    rm = np.repeat(np.arange(n_rms), book_sizes)
    n_branches = max(1, round(n_rms / RMS_PER_BRANCH))
    branch_of_rm = np.sort(np.arange(n_rms) % n_branches)
    tier = rng.choice(len(TIERS), size=n_customers, p=TIER_SHARES)

    follow_up = rng.uniform(low, high, n_rms)
    if icc > 0:
        concentration = 1.0 / icc - 1.0  # beta-binomial: ICC = 1 / (a + b + 1)
        rm_rate = rng.beta(base_rate * concentration, (1 - base_rate) * concentration, n_rms)
    else:
        rm_rate = np.full(n_rms, base_rate)
    base_mult = np.asarray(TIER_BASE_MULTIPLIER)[tier]
    p0 = np.clip(rm_rate[rm] * base_mult / np.dot(TIER_SHARES, TIER_BASE_MULTIPLIER), 0, 1)

    f = follow_up[rm]
    effect_mult = np.asarray(TIER_EFFECT_MULTIPLIER)[tier]
    scale = 1.0 / np.mean(f * effect_mult)  # makes mean(f × τ) equal the ITT target
    tau_binary = np.clip(p0 + true_effect_binary * scale * effect_mult, 0, 1) - p0
    tau_deposit = true_effect_continuous * scale * effect_mult

    rm_names = np.array([f"RM{r + 1:03d}" for r in range(n_rms)])
    branch_names = np.array([f"BR{b + 1:02d}" for b in range(n_branches)])
    frame = pd.DataFrame({
        "customer_id": np.char.add("C", np.char.zfill(np.arange(1, n_customers + 1).astype(str),
                                                      6)),
        "branch_id": branch_names[branch_of_rm[rm]],
        "rm_id": rm_names[rm],
        "tier": np.asarray(TIERS)[tier],
    })
    assignment_seed = int(rng.integers(2**31 - 1))
    if design == "individual":
        frame = assign_stratified(frame, ["rm_id", "tier"], treat_share, seed=assignment_seed)
    else:
        frame = assign_clustered(frame, "rm_id", treat_share, seed=assignment_seed,
                                 strata_col="branch_id")
    treated = (frame["arm"] == "treatment").to_numpy()
    contacted = treated & (rng.random(n_customers) < f)

    converted = rng.random(n_customers) < p0 + contacted * tau_binary
    deposit_pre = rng.lognormal(np.log(np.asarray(TIER_DEPOSIT_MEDIAN)[tier]), DEPOSIT_SIGMA)
    rm_shift = rng.normal(0.0, DEPOSIT_NOISE_SD * np.sqrt(icc / (1 - icc)), n_rms)
    deposit_change = (DEPOSIT_DRIFT * deposit_pre + rm_shift[rm]
                      + rng.normal(0.0, DEPOSIT_NOISE_SD, n_customers) + contacted * tau_deposit)

    frame = frame.assign(
        rm_follow_up_rate=np.round(f, 4),
        contacted=contacted.astype(int),
        loan_converted=converted.astype(int),
        deposit_pre=np.round(deposit_pre, 2),
        deposit_change=np.round(deposit_change, 2),
    )

    itt_binary, itt_deposit = f * tau_binary, f * tau_deposit
    truth = {
        "estimand": "intention-to-treat: mean over the pilot's customers of "
                    "(RM follow-up rate × effect of a contact on the customer)",
        "itt": {"loan_converted": float(itt_binary.mean()),
                "deposit_change": float(itt_deposit.mean())},
        "effect_on_contacted": {"loan_converted": float(itt_binary.sum() / f.sum()),
                                "deposit_change": float(itt_deposit.sum() / f.sum())},
        "itt_by_tier": {
            name: {"loan_converted": float(itt_binary[tier == k].mean()),
                   "deposit_change": float(itt_deposit[tier == k].mean())}
            for k, name in enumerate(TIERS) if (tier == k).any()},
        "contact_rate_treatment": float(f.mean()),
        "base_rate": float(p0.mean()),
        "design": design,
        "icc": icc,
        "n_customers": n_customers,
        "n_rms": n_rms,
        "seed": seed,
        "assignment_seed": assignment_seed,
        "treat_share": treat_share,
    }
    return frame, truth
