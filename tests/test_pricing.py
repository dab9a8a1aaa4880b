"""Stage 03 pricing (一户一价): worked examples for floor, RAROC, offers and the policy simulation;
simulation recovery for the take-up elasticity."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.errors import InputError
from analysis.pricing import (
    APPROVAL_LEVELS,
    PricingPolicy,
    TakeupElasticity,
    estimate_takeup_elasticity,
    floor_components,
    loan_raroc,
    price_customers,
    price_floor,
    raroc,
    sensitivity_table,
    simulate_policy,
)
from analysis.value import DEFAULT_TIER_SCHEME

POLICY = PricingPolicy()  # ops 0.5%, capital 8%, hurdle 12%, LPR 3.65%, floor = LPR
GUIDE = 0.0528  # 普惠小微 new-loan average, Jan–Oct 2022


# ---------------------------------------------------------------------------------------------
# floor and RAROC


def test_price_floor_worked_example():
    # 3.0% FTP + 0.5% operating + 2% × 45% = 0.9% EL + 8% × (12% − 3%) = 0.72% capital = 5.12%
    assert price_floor(0.03, 0.02, 0.45, POLICY) == pytest.approx(0.0512, abs=1e-12)
    parts = floor_components(0.03, 0.02, 0.45, POLICY).iloc[0]
    assert parts[["ftp", "operating_cost", "expected_loss", "capital_charge", "cost_floor",
                  "regulatory_floor", "floor"]].tolist() == pytest.approx(
        [0.03, 0.005, 0.009, 0.0072, 0.0512, 0.0365, 0.0512], abs=1e-12)
    # without the funding benefit of capital the charge is 8% × 12% = 0.96%
    no_benefit = PricingPolicy(capital_funding_benefit=False)
    assert price_floor(0.03, 0.02, 0.45, no_benefit) == pytest.approx(0.0536, abs=1e-12)


def test_price_floor_regulatory_floor_binds_and_vectorises():
    low_risk = (0.03, 0.001, 0.4)  # cost floor 3% + 0.5% + 0.04% + 0.72% = 4.26%
    assert price_floor(*low_risk, POLICY) == pytest.approx(0.0426, abs=1e-12)
    lpr_plus = PricingPolicy(floor_lpr_spread_bp=100)  # 3.65% + 1% = 4.65%
    assert price_floor(*low_risk, lpr_plus) == pytest.approx(0.0465, abs=1e-12)
    absolute = PricingPolicy(floor_absolute=0.045)
    assert price_floor(*low_risk, absolute) == pytest.approx(0.045, abs=1e-12)
    assert PricingPolicy(floor_lpr_spread_bp=None).regulatory_floor() is None
    floors = price_floor(0.03, np.array([0.001, 0.02]), np.array([0.4, 0.45]), lpr_plus)
    assert floors.tolist() == pytest.approx([0.0465, 0.0512], abs=1e-12)
    with pytest.raises(InputError, match="pd must be a decimal"):
        price_floor(0.03, 2.0, 0.45, POLICY)


def test_raroc_worked_example():
    assert raroc(1000, 200, 100, 16000) == pytest.approx(0.04375, abs=1e-15)  # 4.38%
    # at the cost floor a loan earns exactly the hurdle
    floor = price_floor(0.03, 0.02, 0.45, POLICY)
    assert loan_raroc(floor, 0.03, 0.02, 0.45, POLICY) == pytest.approx(0.12, abs=1e-12)
    # at 6%: (6% − 3% − 0.5% − 0.9% + 8% × 3%) / 8% = 1.84% / 8% = 23%
    assert loan_raroc(0.06, 0.03, 0.02, 0.45, POLICY) == pytest.approx(0.23, abs=1e-12)
    no_benefit = PricingPolicy(capital_funding_benefit=False)  # (1.6%) / 8% = 20%
    assert loan_raroc(0.06, 0.03, 0.02, 0.45, no_benefit) == pytest.approx(0.20, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# policy catalogue


def test_policy_from_catalogue_and_errors():
    policy = PricingPolicy.from_catalog({
        "hurdle_raroc": 0.10, "tier_discount_bp": {"strategic": 40, "long_tail": 0},
        "contribution_discount": [{"min_contribution": 50000, "discount_bp": 10}],
        "approval": {"sub_branch_max_bp": 20, "branch_max_bp": 50},
    })
    assert policy.hurdle_raroc == 0.10 and policy.approval.branch_max_bp == 50
    with pytest.raises(InputError, match="capital_ratio") as exc:
        PricingPolicy.from_catalog({"capital_ratio": 2}, file="pricing.yml")
    assert exc.value.file == "pricing.yml" and exc.value.column == "capital_ratio"
    with pytest.raises(InputError, match="unknown_key"):
        PricingPolicy.from_catalog({"unknown_key": 1})
    with pytest.raises(InputError, match="branch_max_bp must be ≥ sub_branch_max_bp"):
        PricingPolicy.from_catalog({"approval": {"sub_branch_max_bp": 40, "branch_max_bp": 20}})
    with pytest.raises(InputError, match="contribution_discount.0.discount_bp"):
        PricingPolicy.from_catalog({"contribution_discount": [{"min_contribution": 1,
                                                               "discount_bp": -5}]})


def test_default_ladder_sits_inside_the_tier_service_bands():
    for tier in DEFAULT_TIER_SCHEME.tiers:
        lo, hi = tier.discount_band_bp
        assert lo <= POLICY.tier_discount_bp[tier.id] <= hi, tier.id
    assert set(APPROVAL_LEVELS) == {"sub_branch", "branch", "head_office"}


# ---------------------------------------------------------------------------------------------
# per-customer pricing


@pytest.fixture
def prospects() -> pd.DataFrame:
    return pd.DataFrame({
        "customer_id": ["a", "b", "c", "d"],
        "tier": ["strategic", "core", "long_tail", "potential"],
        "current_value": [150_000.0, 20_000.0, 0.0, 40_000.0],
        "pd": [0.005, 0.01, 0.02, 0.06],
        "lgd": [0.4, 0.45, 0.45, 0.5],
        "loan_amount": [1_000_000.0, 500_000.0, 300_000.0, 400_000.0],
    })


def test_price_customers_worked_example(prospects):
    before = prospects.copy()
    out = price_customers(prospects, POLICY, GUIDE)
    # a: 50 (strategic) + 15 (≥ 100k contribution) = 65 bp → 4.63%; floor 3% + 0.5% + 0.2% +
    #    0.72% = 4.42%; 65 bp > 60 → 总行
    # b: 30 + 5 (≥ 10k) = 35 bp → 4.93%; floor 4.67%; 35 bp → 分行
    # c: 0 bp → 5.28%; floor 5.12%; 支行
    # d: 20 + 10 (≥ 30k) = 30 bp → 4.98%, but floor 3% + 0.5% + 3% + 0.72% = 7.22% binds
    assert out["discount_bp"].tolist() == [65, 35, 0, 30]
    assert out["tier_discount_bp"].tolist() == [50, 30, 0, 20]
    assert out["contribution_discount_bp"].tolist() == [15, 5, 0, 10]
    assert out["floor_rate"].tolist() == pytest.approx([0.0442, 0.0467, 0.0512, 0.0722],
                                                       abs=1e-12)
    assert out["offered_rate"].tolist() == pytest.approx([0.0463, 0.0493, 0.0528, 0.0722],
                                                         abs=1e-12)
    assert out["floor_binding"].tolist() == [False, False, False, True]
    assert out["granted_bp"].tolist() == pytest.approx([65, 35, 0, -194], abs=1e-6)
    assert out["approval_level"].tolist() == ["head_office", "branch", "sub_branch",
                                              "sub_branch"]
    # RAROC a: (4.63% − 3% − 0.5% − 0.2% + 0.24%) / 8% = 14.625%; d sits at the hurdle
    assert out["expected_raroc"].tolist() == pytest.approx([0.14625, 0.1525, 0.14, 0.12],
                                                           abs=1e-10)
    pd.testing.assert_frame_equal(prospects, before)


def test_price_customers_cap_columns_and_boundaries(prospects):
    doubled = price_customers(prospects, POLICY, GUIDE, discount_scale=2.0)
    assert doubled["discount_bp"].tolist() == [80, 70, 0, 60]  # a: 130 capped at 80
    # exactly 60 bp below guide is still 分行 (inclusive bands)
    frame = prospects.assign(guide=[0.05, 0.06, 0.06, 0.06], ftp=[0.028, 0.03, 0.03, 0.032])
    out = price_customers(frame.iloc[[1]], POLICY, "guide", loan_ftp="ftp",
                          discount_scale=60 / 35)  # 30 + 5 bp scaled to exactly 60 bp
    assert out["granted_bp"].iloc[0] == pytest.approx(60, abs=1e-6)
    assert out["approval_level"].iloc[0] == "branch"
    out = price_customers(frame, POLICY, "guide", loan_ftp="ftp")
    assert out["guide_rate"].tolist() == [0.05, 0.06, 0.06, 0.06]
    assert out.loc[0, "floor_rate"] == pytest.approx(0.028 + 0.005 + 0.002 + 0.08 * 0.092)
    with pytest.raises(InputError, match="have no discount"):
        price_customers(prospects.assign(tier="gold"), POLICY, GUIDE)
    with pytest.raises(InputError, match="lacks column.*lgd"):
        price_customers(prospects.drop(columns="lgd"), POLICY, GUIDE)


# ---------------------------------------------------------------------------------------------
# take-up elasticity

TRUE_SLOPE, TRUE_INTERCEPT = -0.02, -0.85  # per bp of (offered − guide); logit(0.30) ≈ −0.85


def simulated_offers(seed: int, n: int = 20_000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    gap_bp = rng.uniform(-60, 20, n)
    segment = rng.choice(["tier_high", "tier_low"], n)
    log_odds = TRUE_INTERCEPT + TRUE_SLOPE * gap_bp + np.where(segment == "tier_low", -0.5, 0)
    return pd.DataFrame({"guide_rate": GUIDE, "offered_rate": GUIDE + gap_bp * 1e-4,
                         "segment": segment,
                         "accepted": rng.random(n) < 1 / (1 + np.exp(-log_odds))})


def test_takeup_elasticity_recovers_planted_slope():
    offers = simulated_offers(seed=20221231)
    el = estimate_takeup_elasticity(offers, controls=["segment"])
    # tolerance: within 3 standard errors AND within 15% of the true slope
    # (100 of 100 seeds passed when written)
    err = abs(el.slope_per_bp - TRUE_SLOPE)
    assert err < 3 * el.std_err
    assert err < 0.15 * abs(TRUE_SLOPE)
    assert el.ci_low < el.slope_per_bp < el.ci_high < 0 and el.p_value < 1e-10
    assert abs(el.params.loc["segment=tier_low", "coef"] + 0.5) < 3 * el.params.loc[
        "segment=tier_low", "std_err"]
    assert el.n == len(offers)
    assert el.marginal_effect_ci_low < el.marginal_effect_per_bp < el.marginal_effect_ci_high < 0


def test_takeup_elasticity_marginal_effect_and_baseline_by_formula():
    offers = simulated_offers(seed=5, n=4000).drop(columns="segment")
    el = estimate_takeup_elasticity(offers)
    b0, b1 = el.params.loc["const", "coef"], el.params.loc["gap_bp", "coef"]
    gap = (offers["offered_rate"] - offers["guide_rate"]).to_numpy() / 1e-4
    p = 1 / (1 + np.exp(-(b0 + b1 * gap)))
    # average marginal effect of a logit: β × mean p(1 − p); baseline: p at gap 0
    assert el.marginal_effect_per_bp == pytest.approx(b1 * np.mean(p * (1 - p)), rel=1e-8)
    assert el.takeup_at_guide == pytest.approx(1 / (1 + math.exp(-b0)), rel=1e-10)
    assert el.observed_takeup == pytest.approx(offers["accepted"].mean())
    assert el.gap_bp_range == pytest.approx((gap.min(), gap.max()))
    with pytest.raises(InputError, match="same outcome"):
        estimate_takeup_elasticity(offers.assign(accepted=True))
    with pytest.raises(InputError, match="must be 0/1"):
        estimate_takeup_elasticity(offers.assign(accepted=2))


# ---------------------------------------------------------------------------------------------
# policy simulation


def known_elasticity(slope: float = -0.02, base: float = 0.2, se: float = 0.002):
    return TakeupElasticity(
        slope_per_bp=slope, std_err=se, ci_low=slope - 1.96 * se, ci_high=slope + 1.96 * se,
        p_value=0.0, marginal_effect_per_bp=np.nan, marginal_effect_ci_low=np.nan,
        marginal_effect_ci_high=np.nan, takeup_at_guide=base, observed_takeup=base, n=1000,
        params=pd.DataFrame())


@pytest.fixture
def two_prospects() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ["s", "t"], "tier": ["strategic", "long_tail"],
                         "current_value": [0.0, 0.0], "pd": [0.005, 0.02], "lgd": [0.4, 0.45],
                         "loan_amount": [1_000_000.0, 500_000.0]})


def test_simulate_policy_worked_example(two_prospects):
    sim = simulate_policy(two_prospects, POLICY, known_elasticity(), GUIDE)
    # s: 50 bp discount → 4.78%; odds 0.25 → 0.25 e (slope −0.02 × −50 bp = +1 in log-odds)
    p1 = 0.25 * math.e / (1 + 0.25 * math.e)
    extra = p1 - 0.2
    assert sim.nii_cost == pytest.approx(0.2 * 1_000_000 * 0.005, rel=1e-10)  # 1,000
    assert sim.extra_customers == pytest.approx(extra, rel=1e-10)  # t: no discount, no change
    assert sim.extra_volume == pytest.approx(extra * 1_000_000, rel=1e-10)
    assert sim.extra_nii == pytest.approx(extra * 1_000_000 * (0.0478 - 0.03), rel=1e-10)
    assert sim.net_nii_effect == pytest.approx(extra * 1e6 * 0.0178 - 1000, rel=1e-10)
    # risk-adjusted: margin less 0.5% operating cost and 0.5% × 40% = 0.2% expected loss
    assert sim.net_risk_adjusted_effect == pytest.approx(extra * 1e6 * 0.0108 - 1000, rel=1e-10)
    assert sim.avg_discount_bp == pytest.approx(25.0)
    assert sim.detail["takeup_offered"].tolist() == pytest.approx([p1, 0.2], rel=1e-10)
    per_customer = simulate_policy(two_prospects.assign(p0=[0.5, 0.1]), POLICY,
                                   known_elasticity(), GUIDE, base_takeup="p0")
    assert per_customer.nii_cost == pytest.approx(0.5 * 1e6 * 0.005, rel=1e-10)
    with pytest.raises(InputError, match="strictly between 0 and 1"):
        simulate_policy(two_prospects, POLICY, known_elasticity(), GUIDE, base_takeup=20)


def test_simulate_policy_flags_floor_uplift_and_extrapolation(prospects):
    el = known_elasticity()
    sim = simulate_policy(prospects, POLICY, el, GUIDE)
    assert sim.priced_above_guide == 1  # d: floor 7.22% above the 5.28% guide
    assert sim.outside_gap_range == 0  # the hand-made elasticity has an unbounded range
    narrow = TakeupElasticity(**{**el.__dict__, "gap_bp_range": (-40.0, 20.0)})
    # a: −65 bp and d: +194 bp lie outside the fitted −40..+20 bp
    assert simulate_policy(prospects, POLICY, narrow, GUIDE).outside_gap_range == 2
    # d's higher rate lowers its take-up: p = 1 / (1 + 4 e^{3.88})
    d = sim.detail.set_index("customer_id").loc["d"]
    assert d["takeup_offered"] == pytest.approx(1 / (1 + 4 * math.exp(0.02 * 194)), rel=1e-10)
    assert d["nii_cost"] == pytest.approx(0.2 * 400_000 * (GUIDE - 0.0722), rel=1e-10)


def test_sensitivity_table(two_prospects):
    el = known_elasticity()
    table = sensitivity_table(two_prospects, POLICY, el, GUIDE)
    assert len(table) == 9
    assert table["slope_per_bp"].tolist()[:3] == pytest.approx([-0.022, -0.02, -0.018])
    central = table.query("discount_scale == 1.0 and se_multiplier == 0.0").iloc[0]
    assert central["net_nii_effect"] == pytest.approx(
        simulate_policy(two_prospects, POLICY, el, GUIDE).net_nii_effect, rel=1e-12)
    # more rate-sensitive customers (−1 SE) bring more extra volume for the same discount
    at_one = table[table["discount_scale"] == 1.0].set_index("se_multiplier")
    assert at_one.loc[-1.0, "extra_volume"] > at_one.loc[0.0, "extra_volume"] > at_one.loc[
        1.0, "extra_volume"]
    # a bigger discount costs more interest on the loans that would have come anyway
    assert table.groupby("discount_scale")["nii_cost"].first().is_monotonic_increasing
    half = table.query("discount_scale == 0.5 and se_multiplier == 0.0").iloc[0]
    assert half["nii_cost"] == pytest.approx(0.2 * 1e6 * 0.0025, rel=1e-10)


def test_simulate_policy_populations_discount_risk_priced_ineligible(prospects):
    # b is ineligible (e.g. past due); d's floor 7.22% is above the 5.28% guide: risk-priced
    frame = prospects.assign(ok=[True, False, True, True])
    sim = simulate_policy(frame, POLICY, known_elasticity(), GUIDE, eligible_col="ok")
    assert (sim.customers, sim.discounted_customers, sim.risk_priced_customers,
            sim.ineligible_customers, sim.priced_above_guide) == (3, 2, 1, 1, 1)
    assert sim.detail["population"].tolist() == ["discount", "ineligible", "discount",
                                                 "risk_priced"]
    # headline over a (65 bp) and c (0 bp) only: a positive average discount
    assert sim.avg_discount_bp == pytest.approx(32.5)
    assert sim.nii_cost == pytest.approx(0.2 * 1_000_000 * 0.0065, rel=1e-10)  # 1,300
    p1_a = 0.25 * math.exp(1.3) / (1 + 0.25 * math.exp(1.3))
    assert sim.extra_customers == pytest.approx(p1_a - 0.2, rel=1e-10)
    assert sim.extra_nii == pytest.approx((p1_a - 0.2) * 1e6 * (0.0463 - 0.03), rel=1e-10)
    assert sim.expected_loans_at_guide == pytest.approx(0.4)
    assert sim.risk_priced_avg_premium_bp == pytest.approx(194.0)
    assert sim.risk_priced_expected_loans == pytest.approx(1 / (1 + 4 * math.exp(0.02 * 194)),
                                                           rel=1e-10)
    with pytest.raises(InputError, match="missing values"):
        simulate_policy(frame.assign(ok=[True, None, True, True]), POLICY, known_elasticity(),
                        GUIDE, eligible_col="ok")
