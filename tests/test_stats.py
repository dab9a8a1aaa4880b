"""Tests for analysis.stats: worked examples by hand and agreement with statsmodels / scipy."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import statsmodels.api as sm
from scipy import stats as sps
from scipy.optimize import linprog
from statsmodels.stats.contingency_tables import Table2x2
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from analysis.errors import InputError
from analysis.quantreg import QuantRegConvergenceError, check_loss, quantile_regression
from analysis.stats import (
    MISSING_BIN,
    PSI_BAND_LABELS,
    PSI_EMPTY_SHARE,
    WOE_TABLE_COLUMNS,
    benjamini_hochberg,
    information_value,
    information_value_numeric,
    monotone_bins,
    psi,
    psi_band,
    psi_from_shares,
    risk_ratio,
    spearman,
    wilson_interval,
    woe_table,
    woe_table_from_counts,
    woe_table_numeric,
)

Z95 = 1.959963984540054  # standard normal 97.5% quantile


# ---------------------------------------------------------------------------------------------
# Wilson interval
# ---------------------------------------------------------------------------------------------

def test_wilson_worked_example():
    # 3 of 10, 95%: centre = (p + z²/2n) / (1 + z²/n), half = z/(1 + z²/n) · sqrt(p(1-p)/n + z²/4n²)
    p, n, z = 0.3, 10, Z95
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    low, high = wilson_interval(3, 10)
    assert isinstance(low, float) and isinstance(high, float)
    assert low == pytest.approx(centre - half, abs=1e-12)
    assert high == pytest.approx(centre + half, abs=1e-12)
    assert low == pytest.approx(0.10779126740630104, abs=1e-12)
    assert high == pytest.approx(0.6032218525388546, abs=1e-12)


def test_wilson_matches_statsmodels_vectorised():
    rng = np.random.default_rng(11)
    n = rng.integers(1, 5000, size=400)
    hits = rng.integers(0, n + 1)
    hits[:3] = [0, n[1], 1]  # edges: none, all, one
    for alpha in (0.05, 0.1, 0.01):
        low, high = wilson_interval(hits, n, alpha=alpha)
        sm_low, sm_high = proportion_confint(hits, n, alpha=alpha, method="wilson")
        assert low.shape == high.shape == (400,)
        np.testing.assert_allclose(low, sm_low, rtol=0, atol=1e-12)
        np.testing.assert_allclose(high, sm_high, rtol=0, atol=1e-12)
    assert low[0] == 0.0 and high[1] == pytest.approx(1.0, abs=1e-15)


def test_wilson_broadcasts_scalar_n():
    low, high = wilson_interval(np.array([0, 3, 10]), 10)
    assert low.shape == (3,)
    assert low[1] == pytest.approx(0.10779126740630104, abs=1e-12)


@pytest.mark.parametrize(("hits", "n"), [(11, 10), (-1, 10), (0, 0), (np.nan, 10)])
def test_wilson_rejects_bad_counts(hits, n):
    with pytest.raises(InputError):
        wilson_interval(hits, n)


def test_wilson_rejects_bad_alpha():
    with pytest.raises(InputError, match="alpha"):
        wilson_interval(3, 10, alpha=1.5)


# ---------------------------------------------------------------------------------------------
# Risk ratio
# ---------------------------------------------------------------------------------------------

def test_risk_ratio_worked_example():
    # 30/100 triggered customers took up vs 20/200 in the base: lift = 0.3 / 0.1 = 3.
    # se(ln RR) = sqrt(1/30 − 1/100 + 1/20 − 1/200) = sqrt(0.068333…) = 0.2614064…
    # CI = 3·exp(±1.959964·0.2614064) = (1.79726, 5.00761)
    # z = ln 3 / 0.2614064 = 4.2027 → p ≈ 2.64e-5
    se = math.sqrt(1 / 30 - 1 / 100 + 1 / 20 - 1 / 200)
    result = risk_ratio(30, 100, 20, 200)
    assert result.lift == pytest.approx(3.0, rel=1e-12)
    assert result.ci_low == pytest.approx(3 * math.exp(-Z95 * se), rel=1e-12)
    assert result.ci_high == pytest.approx(3 * math.exp(Z95 * se), rel=1e-12)
    assert result.ci_low == pytest.approx(1.7972631879852459, rel=1e-12)
    assert result.ci_high == pytest.approx(5.007613832056007, rel=1e-12)
    assert result.p_value == pytest.approx(2 * sps.norm.sf(math.log(3) / se), rel=1e-9)
    assert result.p_value == pytest.approx(2.637527515234682e-05, rel=1e-9)
    lift, low, high, p = result  # unpacks as a tuple
    assert low < lift < high and p < 0.05


def test_risk_ratio_matches_statsmodels_table2x2():
    rng = np.random.default_rng(7)
    n_a = rng.integers(20, 3000, size=60)
    n_b = rng.integers(20, 3000, size=60)
    hits_a = rng.integers(1, n_a)  # no zero cells: both tests defined
    hits_b = rng.integers(1, n_b)
    result = risk_ratio(hits_a, n_a, hits_b, n_b, alpha=0.1)
    for i in range(60):
        table = Table2x2(np.array([[hits_a[i], n_a[i] - hits_a[i]],
                                   [hits_b[i], n_b[i] - hits_b[i]]]), shift_zeros=False)
        low, high = table.riskratio_confint(alpha=0.1)
        assert result.lift[i] == pytest.approx(table.riskratio, rel=1e-9)
        assert result.ci_low[i] == pytest.approx(low, rel=1e-9)
        assert result.ci_high[i] == pytest.approx(high, rel=1e-9)
        assert result.p_value[i] == pytest.approx(table.riskratio_pvalue(), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("hits_a", "n_a", "hits_b", "n_b"), [
    (0, 100, 20, 200),   # no hits among the triggered
    (30, 100, 0, 200),   # no hits in the base
    (100, 100, 20, 200),  # everyone triggered took up (zero non-hit cell)
    (0, 50, 0, 80),      # nothing anywhere
])
def test_risk_ratio_zero_cells_interval_follows_statsmodels_shift(hits_a, n_a, hits_b, n_b):
    result = risk_ratio(hits_a, n_a, hits_b, n_b)
    table = Table2x2(np.array([[hits_a, n_a - hits_a], [hits_b, n_b - hits_b]]), shift_zeros=True)
    low, high = table.riskratio_confint()
    assert result.ci_low == pytest.approx(low, rel=1e-9)
    assert result.ci_high == pytest.approx(high, rel=1e-9)


def test_risk_ratio_zero_hits_leave_point_and_p_value_uncorrected():
    result = risk_ratio([0, 30, 0, 100], [100, 100, 50, 100], [20, 0, 0, 20], [200, 200, 80, 200])
    np.testing.assert_array_equal(result.lift[:2], [0.0, np.inf])
    assert np.isnan(result.lift[2])
    assert np.isnan(result.p_value[:3]).all()
    # a zero non-hit cell keeps the Wald test defined: se = sqrt(0 + 1/20 − 1/200)
    se = math.sqrt(1 / 20 - 1 / 200)
    assert result.lift[3] == pytest.approx(10.0)
    assert result.p_value[3] == pytest.approx(2 * sps.norm.sf(math.log(10) / se), rel=1e-12)


def test_risk_ratio_interval_covers_true_lift_about_95_percent():
    # 4,000 simulated backtests, true lift 2 (10% vs 5%): Katz should cover ~95% at these sizes.
    rng = np.random.default_rng(2024)
    hits_a = rng.binomial(500, 0.10, size=4000)
    hits_b = rng.binomial(2000, 0.05, size=4000)
    result = risk_ratio(hits_a, 500, hits_b, 2000)
    coverage = np.mean((result.ci_low <= 2.0) & (2.0 <= result.ci_high))
    assert 0.94 <= coverage <= 0.96
    # p < 0.05 exactly when the interval excludes 1 (same se in both)
    excludes_one = (result.ci_low > 1) | (result.ci_high < 1)
    np.testing.assert_array_equal(result.p_value < 0.05, excludes_one)


def test_risk_ratio_rejects_hits_above_n():
    with pytest.raises(InputError, match="hits_b"):
        risk_ratio(3, 10, 30, 20)


# ---------------------------------------------------------------------------------------------
# Benjamini–Hochberg
# ---------------------------------------------------------------------------------------------

def test_bh_worked_example():
    # p = [0.01, 0.04, 0.03, 0.005], m = 4. Sorted: 0.005, 0.01, 0.03, 0.04
    # p·m/rank: 0.02, 0.02, 0.04, 0.04; running minimum from the top leaves them as they are.
    # Back in input order: q = [0.02, 0.04, 0.04, 0.02].
    q_values, rejected = benjamini_hochberg([0.01, 0.04, 0.03, 0.005], q=0.05)
    np.testing.assert_allclose(q_values, [0.02, 0.04, 0.04, 0.02], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(rejected, [True, True, True, True])
    _, rejected = benjamini_hochberg([0.01, 0.04, 0.03, 0.005], q=0.03)
    np.testing.assert_array_equal(rejected, [True, False, False, True])


def test_bh_matches_statsmodels():
    rng = np.random.default_rng(5)
    p = np.concatenate([rng.uniform(size=80), rng.uniform(0, 0.002, size=20)])
    rng.shuffle(p)
    q_values, rejected = benjamini_hochberg(p, q=0.1)
    sm_reject, sm_q, _, _ = multipletests(p, alpha=0.1, method="fdr_bh")
    np.testing.assert_allclose(q_values, sm_q, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(rejected, sm_reject)


def test_bh_nan_passes_through_and_is_not_counted():
    q_values, rejected = benjamini_hochberg([0.01, np.nan, 0.04, 0.03, 0.005], q=0.03)
    np.testing.assert_allclose(q_values, [0.02, np.nan, 0.04, 0.04, 0.02], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(rejected, [True, False, False, False, True])
    all_nan_q, all_nan_rejected = benjamini_hochberg([np.nan, np.nan])
    assert np.isnan(all_nan_q).all() and not all_nan_rejected.any()
    empty_q, empty_rejected = benjamini_hochberg([])
    assert empty_q.shape == empty_rejected.shape == (0,)


def test_bh_rejects_values_outside_unit_interval():
    with pytest.raises(InputError, match="between 0 and 1"):
        benjamini_hochberg([0.2, 5.0])


# ---------------------------------------------------------------------------------------------
# WoE / IV, categorical
# ---------------------------------------------------------------------------------------------

def _expand(counts: dict) -> tuple[list, list]:
    """Rows of (category, target) from {category: (events, non_events)}."""
    x, y = [], []
    for category, (events, non_events) in counts.items():
        x += [category] * (events + non_events)
        y += [1] * events + [0] * non_events
    return x, y


def test_woe_worked_example_with_zero_cell():
    # category: events / non-events     A: 10 / 90     B: 20 / 80     C: 0 / 50
    # totals: events = 30, non-events = 220. C has 0 events → use 0.5 for that cell only.
    # %non-event: A 90/220 = 9/22, B 80/220 = 8/22, C 50/220 = 5/22
    # %event:     A 10/30 = 1/3,   B 20/30 = 2/3,   C 0.5/30 = 1/60
    # WoE = ln(%non-event / %event):
    #   A ln((9/22)/(1/3)) = ln(27/22)  =  0.204794413
    #   B ln((8/22)/(2/3)) = ln(6/11)   = -0.606135804
    #   C ln((5/22)/(1/60)) = ln(150/11) =  2.612740021
    # IV_i = (%non-event − %event) · WoE:
    #   A (9/22 − 1/3) = 5/66     → 5/66 · 0.204794413   = 0.015514728
    #   B (8/22 − 2/3) = −20/66   → −20/66 · −0.606135804 = 0.183677516
    #   C (5/22 − 1/60) = 139/660 → 139/660 · 2.612740021 = 0.550258883
    #   IV = 0.749451128
    x, y = _expand({"A": (10, 90), "B": (20, 80), "C": (0, 50)})
    table = woe_table(x, y)
    assert list(table.columns) == WOE_TABLE_COLUMNS
    assert table["bin"].tolist() == ["A", "B", "C"]
    np.testing.assert_array_equal(table["events"], [10, 20, 0])
    np.testing.assert_array_equal(table["non_events"], [90, 80, 50])
    np.testing.assert_allclose(table["event_share"], [1 / 3, 2 / 3, 1 / 60], rtol=1e-12)
    np.testing.assert_allclose(table["non_event_share"], [9 / 22, 8 / 22, 5 / 22], rtol=1e-12)
    expected_woe = [math.log(27 / 22), math.log(6 / 11), math.log(150 / 11)]
    np.testing.assert_allclose(table["woe"], expected_woe, rtol=1e-12)
    np.testing.assert_allclose(table["woe"], [0.204794413, -0.606135804, 2.612740021], atol=1e-9)
    expected_iv = [5 / 66 * expected_woe[0], -20 / 66 * expected_woe[1],
                   139 / 660 * expected_woe[2]]
    np.testing.assert_allclose(table["iv"], expected_iv, rtol=1e-12)
    np.testing.assert_allclose(table["iv"], [0.015514728, 0.183677516, 0.550258883], atol=1e-9)
    assert information_value(x, y) == pytest.approx(sum(expected_iv), rel=1e-12)
    assert information_value(x, y) == pytest.approx(0.749451128, abs=1e-9)


def test_woe_from_counts_equals_row_level():
    x, y = _expand({"A": (10, 90), "B": (20, 80), "C": (0, 50)})
    from_counts = woe_table_from_counts(["A", "B", "C"], [10, 20, 0], [90, 80, 50])
    pd.testing.assert_frame_equal(from_counts, woe_table(x, y))


def test_iv_same_under_either_sign_convention():
    # Calling the non-event the event flips every WoE and leaves IV unchanged.
    x, y = _expand({"A": (10, 90), "B": (20, 80), "C": (0, 50), "D": (7, 0)})
    flipped = [1 - v for v in y]
    np.testing.assert_allclose(woe_table(x, flipped)["woe"], -woe_table(x, y)["woe"], rtol=1e-12)
    assert information_value(x, flipped) == pytest.approx(information_value(x, y), rel=1e-12)


def test_missing_category_is_its_own_last_bin():
    x, y = _expand({"B": (20, 80), "A": (10, 90)})
    x += [None] * 5 + [np.nan] * 5
    y += [1] * 5 + [0] * 5
    table = woe_table(pd.Series(x, name="industry"), pd.Series(y, dtype="boolean"))
    assert table["bin"].tolist() == ["A", "B", MISSING_BIN]
    assert table.loc[2, "events"] == 5 and table.loc[2, "non_events"] == 5
    # totals: events 20 + 10 + 5 = 35, non-events 80 + 90 + 5 = 175
    # missing bin: ln((5/175) / (5/35)) = ln(1/5) = −1.609437912
    assert table.loc[2, "woe"] == pytest.approx(math.log(1 / 5), rel=1e-12)


def test_categorical_keeps_category_order_and_drops_unused_categories():
    x = pd.Categorical(["high", "low", "mid", "low"], categories=["low", "mid", "high", "unused"])
    table = woe_table(x, [1, 0, 1, 1])
    assert table["bin"].tolist() == ["low", "mid", "high"]


def test_woe_does_not_mutate_inputs():
    x = pd.Series(["A", None, "B", "A"])
    y = pd.Series([1, 0, 0, 1])
    x_before, y_before = x.copy(), y.copy()
    woe_table(x, y)
    pd.testing.assert_series_equal(x, x_before)
    pd.testing.assert_series_equal(y, y_before)


@pytest.mark.parametrize("bad_target", [[1, 2, 0, 1], [1, None, 0, 1], ["yes", "no", "no", "yes"]])
def test_woe_rejects_non_binary_target(bad_target):
    with pytest.raises(InputError, match="target"):
        woe_table(["A", "B", "A", "B"], pd.Series(bad_target, name="took_up"))


def test_woe_needs_both_outcomes():
    with pytest.raises(InputError, match="both events and non-events"):
        information_value(["A", "B"], [0, 0])


def test_woe_rejects_length_mismatch():
    with pytest.raises(InputError, match="length"):
        woe_table(["A", "B", "C"], [0, 1])


# ---------------------------------------------------------------------------------------------
# Monotone bins and numeric IV
# ---------------------------------------------------------------------------------------------

def test_monotone_bins_worked_example_merges_the_violating_pair():
    # x = 1,2,3,4 ten times each; events per value 1, 5, 3, 8 → rates 0.1, 0.5, 0.3, 0.8.
    # Quantile cut points of 40 values (linear interpolation): 1.75, 2.5, 3.25 → one bin per value.
    # Spearman > 0 → increasing; 0.5 > 0.3 violates, so bins {2} and {3} merge (8/20 = 0.4):
    # rates 0.1 < 0.4 < 0.8, edges [-inf, 1.75, 3.25, inf].
    x = np.repeat([1, 2, 3, 4], 10)
    y = np.concatenate([[1] * e + [0] * (10 - e) for e in (1, 5, 3, 8)])
    edges = monotone_bins(x, y, max_bins=4)
    np.testing.assert_array_equal(edges, [-np.inf, 1.75, 3.25, np.inf])

    # IV over those bins: events 1, 8, 8 of 17; non-events 9, 12, 2 of 23.
    events, non_events = np.array([1, 8, 8]), np.array([9, 12, 2])
    ne_share, e_share = non_events / 23, events / 17
    expected_iv = float(np.sum((ne_share - e_share) * np.log(ne_share / e_share)))
    assert information_value_numeric(x, y, max_bins=4) == pytest.approx(expected_iv, rel=1e-12)
    assert expected_iv == pytest.approx(1.283101, abs=1e-6)
    table = woe_table_numeric(x, y, max_bins=4)
    assert table["bin"].tolist() == ["(-inf, 1.75]", "(1.75, 3.25]", "(3.25, inf]"]


def _simulated(seed: int, shape: str, n: int = 6000):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    signal = {"up": 1.2 * x, "down": -0.8 * x, "u": 1.5 * x**2 - 1.5}[shape]
    y = (rng.random(n) < 1 / (1 + np.exp(-(signal - 1.0)))).astype(int)
    return x, y


def _bin_rates(x, y, edges):
    index = np.searchsorted(edges[1:-1], x, side="left")
    return np.bincount(index, weights=y) / np.bincount(index)


@pytest.mark.parametrize(("shape", "sign"), [("up", 1), ("down", -1), ("u", None)])
def test_monotone_bins_give_strictly_monotone_rates(shape, sign):
    x, y = _simulated(31, shape)
    edges = monotone_bins(x, y, max_bins=10)
    assert edges[0] == -np.inf and edges[-1] == np.inf
    assert np.all(np.diff(edges) > 0)
    assert 2 <= len(edges) - 1 <= 10
    steps = np.diff(_bin_rates(x, y, edges))
    direction = np.sign(spearman(x, y)) if sign is None else sign
    assert np.all(steps * direction > 0)
    if shape != "u":
        assert len(edges) - 1 >= 6  # a clean monotone signal keeps most of its bins


def test_monotone_bins_ignore_missing_and_numeric_iv_gives_it_a_bin():
    x, y = _simulated(8, "up", n=3000)
    x = x.copy()
    x[:300] = np.nan
    edges = monotone_bins(x, y)
    table = woe_table_numeric(x, y, edges=edges)
    assert table["bin"].iloc[-1] == MISSING_BIN
    assert table["count"].iloc[-1] == 300
    assert table["count"].sum() == 3000
    assert information_value_numeric(x, y) == pytest.approx(table["iv"].sum(), rel=1e-12)


def test_monotone_bins_heavy_ties_and_constant_input():
    # 80% zeros: the 10%..80% quantiles are all 0 and collapse into one cut point at 0.
    # Event rate 1/3 among the zeros, exactly 1/2 in every positive bin (even x) → the positive
    # bins have equal rates and merge: edges [-inf, 0, inf].
    x = np.r_[np.zeros(800), np.arange(1, 201)]
    y = np.r_[np.arange(800) % 3 == 0, np.arange(1, 201) % 2 == 0].astype(int)
    np.testing.assert_array_equal(monotone_bins(x, y, max_bins=10), [-np.inf, 0.0, np.inf])
    np.testing.assert_array_equal(monotone_bins(np.ones(50), np.arange(50) % 2), [-np.inf, np.inf])


def test_monotone_bins_reject_bad_max_bins():
    with pytest.raises(InputError, match="positive integer"):
        monotone_bins([1, 2, 3], [0, 1, 0], max_bins=0)


# ---------------------------------------------------------------------------------------------
# PSI
# ---------------------------------------------------------------------------------------------

def test_psi_from_shares_worked_example():
    # e = [0.25, 0.25, 0.5], a = [0.2, 0.3, 0.5]
    # (0.2 − 0.25)·ln(0.2/0.25) = −0.05·ln 0.8 = 0.011157178
    # (0.3 − 0.25)·ln(0.3/0.25) =  0.05·ln 1.2 = 0.009116078
    # (0.5 − 0.5)·ln 1 = 0
    # PSI = 0.05·(ln 1.2 − ln 0.8) = 0.05·ln 1.5 = 0.020273255
    value = psi_from_shares([0.25, 0.25, 0.5], [0.2, 0.3, 0.5])
    assert isinstance(value, float)
    assert value == pytest.approx(0.05 * math.log(1.5), rel=1e-12)
    assert value == pytest.approx(0.020273255, abs=1e-9)


def test_psi_from_shares_empty_bin_uses_epsilon():
    # e = [0.5, 0.5, 0] → third share 1e-4; a = [0.4, 0.4, 0.2]
    # 2·(−0.1)·ln 0.8 = 0.044628710;  (0.2 − 0.0001)·ln(0.2/0.0001) = 0.1999·ln 2000 = 1.519420402
    assert PSI_EMPTY_SHARE == 1e-4
    expected = 2 * (-0.1) * math.log(0.8) + 0.1999 * math.log(2000)
    value = psi_from_shares([0.5, 0.5, 0.0], [0.4, 0.4, 0.2])
    assert value == pytest.approx(expected, rel=1e-12)
    assert value == pytest.approx(1.564049112, abs=1e-9)


def test_psi_from_shares_rows():
    e = np.array([[0.25, 0.25, 0.5], [0.5, 0.5, 0.0]])
    a = np.array([[0.2, 0.3, 0.5], [0.5, 0.5, 0.0]])
    np.testing.assert_allclose(psi_from_shares(e, a), [0.05 * math.log(1.5), 0.0], rtol=1e-12)


def test_psi_from_shares_rejects_counts():
    with pytest.raises(InputError, match="add up to 1"):
        psi_from_shares([25, 25, 50], [20, 30, 50])


def test_psi_on_samples_uses_baseline_quantiles():
    # baseline 1..100, 4 bins: cut points 25.75, 50.5, 75.25 → 25 values per bin, shares 0.25 each.
    # actual: 20 in bin 1, 30 in bin 2, 25, 25 → PSI = 0.05·ln 0.8⁻¹ + 0.05·ln 1.2 = 0.05·ln 1.5
    baseline = np.arange(1, 101)
    actual = np.r_[np.arange(1, 21), np.arange(26, 51), np.arange(26, 31) + 0.5,
                   np.arange(51, 76), np.arange(76, 101)]
    assert psi(baseline, actual, bins=4) == pytest.approx(0.05 * math.log(1.5), rel=1e-12)
    assert psi(baseline, baseline, bins=10) == 0.0
    # explicit edges give the same bins; outer edges act as ±inf (101+ falls in the last bin)
    edges = [0, 25.75, 50.5, 75.25, 100]
    assert psi(baseline, actual, bins=edges) == pytest.approx(0.05 * math.log(1.5), rel=1e-12)
    assert psi(baseline, np.r_[actual[:-5], [500.0] * 5], bins=edges) == pytest.approx(
        0.05 * math.log(1.5), rel=1e-12)


def test_psi_counts_missing_as_a_bin():
    # baseline 1..100 (no missing), actual = baseline with 10 of them missing, 4 bins:
    # actual shares: 0.25, 0.25, 0.25, 0.15 (last 10 gone), missing 0.10; baseline missing 0 → 1e-4
    baseline = np.arange(1, 101, dtype=float)
    actual = baseline.copy()
    actual[-10:] = np.nan
    expected = (0.15 - 0.25) * math.log(0.15 / 0.25) + (0.10 - 1e-4) * math.log(0.10 / 1e-4)
    assert psi(baseline, actual, bins=4) == pytest.approx(expected, rel=1e-12)


def test_psi_band_boundaries():
    assert psi_band(0.0999) == "stable"
    assert psi_band(0.1) == "watch"
    assert psi_band(0.2499) == "watch"
    assert psi_band(0.25) == "shift"
    assert psi_band(np.array([0.05, 0.1, 0.3])).tolist() == ["stable", "watch", "shift"]
    assert PSI_BAND_LABELS["shift"]["zh"] and PSI_BAND_LABELS["shift"]["en"] == "shift"
    with pytest.raises(InputError):
        psi_band(float("nan"))


# ---------------------------------------------------------------------------------------------
# Spearman
# ---------------------------------------------------------------------------------------------

def test_spearman_worked_example():
    # ranks a = 1..5; b = [5,6,7,8,7] → ranks 1, 2, 3.5, 5, 3.5 (both means 3)
    # Σ da·db = 4 + 1 + 0 + 2 + 1 = 8; Σ da² = 10; Σ db² = 9.5 → rho = 8/√95 = 0.820782682
    value = spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])
    assert isinstance(value, float)
    assert value == pytest.approx(8 / math.sqrt(95), rel=1e-12)


def test_spearman_drops_missing_pairs_and_handles_constant():
    assert spearman([1, 2, np.nan, 3, 4, 5], [5, 6, 1, 7, 8, 7]) == pytest.approx(
        8 / math.sqrt(95), rel=1e-12)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1], [2]))
    with pytest.raises(InputError, match="equal lengths"):
        spearman([1, 2], [1, 2, 3])


# ---------------------------------------------------------------------------------------------
# Quantile regression (analysis.quantreg): Frisch–Newton interior point vs statsmodels QuantReg
# ---------------------------------------------------------------------------------------------

def test_quantreg_worked_example_median_line_through_two_points():
    # x = 1..8, y = [1, 3, 2, 5, 4, 6, 9, 7]. Claim: the median (LAD) line is y = x, through
    # (1, 1) and (6, 6); residuals y − x = [0, 1, −1, 1, −1, 0, 2, −1], objective ½ Σ|e| = 3.5.
    # Proof: moving (b0, b1) by (d0, d1) changes the objective at rate
    #   ½ (|d0 + d1| + |d0 + 6 d1|) − ½ Σ_{others} sign(eᵢ)(d0 + d1 xᵢ)
    # where the signs (+ − + − + −) at x = 2, 3, 4, 5, 7, 8 sum to 0 and Σ sign·x = −3, so the
    # rate is ½ (|u| + |v| + 0.6 (v − u)) with u = d0 + d1, v = d0 + 6 d1, > 0 for any nonzero
    # move as 0.6 < 1: the optimum is unique. Null model: median of y 4.5, ½ Σ|y − 4.5| = 8.5,
    # so pseudo R² = 1 − 3.5 / 8.5 = 10/17.
    x = np.arange(1.0, 9.0)
    y = np.array([1.0, 3, 2, 5, 4, 6, 9, 7])
    fit = quantile_regression(y, np.column_stack([np.ones(8), x]), 0.5)
    assert fit.params == pytest.approx([0.0, 1.0], abs=1e-8)
    assert fit.objective == pytest.approx(3.5, abs=1e-8)
    resid = y - fit.params[0] - fit.params[1] * x
    assert np.flatnonzero(np.abs(resid) < 1e-7).tolist() == [0, 5]  # interpolates k = 2 points
    assert fit.prsquared == pytest.approx(10 / 17, abs=1e-8)
    assert fit.nobs == 8 and fit.df_resid == 6 and 0 < fit.iterations < 20
    assert 0 <= fit.gap <= 1e-8 * (3.5 + np.abs(y).mean())
    # q = 0.8 on the same points: a different (here also unique) optimum, checked by brute force
    # over the 28 lines through two points (an LP optimum is attained at such a vertex)
    lines = [(y[i] - (y[j] - y[i]) / (x[j] - x[i]) * x[i], (y[j] - y[i]) / (x[j] - x[i]))
             for i in range(8) for j in range(i + 1, 8)]
    losses = sorted((check_loss(y - b0 - b1 * x, 0.8), b0, b1) for b0, b1 in lines)
    assert losses[1][0] > losses[0][0] + 1e-3  # the best vertex is unique
    fit = quantile_regression(y, np.column_stack([np.ones(8), x]), 0.8)
    assert fit.objective == pytest.approx(losses[0][0], abs=1e-8)
    assert fit.params == pytest.approx(losses[0][1:], abs=1e-7)


def _qr_dataset(seed: int, n: int, k: int, errors: str, one_hot: bool = False):
    """Seeded design with a constant, normal covariates and (optionally) one-hot levels."""
    rng = np.random.default_rng(seed)
    if one_hot:
        # level sizes end in 1, 3, 7 or 9, so size × q is never an integer for q in
        # {0.2, 0.5, 0.8}; otherwise a level's coefficient can have a whole interval of optima
        # and two exact solvers may legitimately return different points of it
        sizes = [1001, 13, 21, 33, 41, 57, 63, 77, 91, 99, 111, 123, 137, 149, 161, 173, 187,
                 199, 211, 223][: k - 10]
        level = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
        n = len(level)
        dummies = [(level == j).astype(float) for j in range(1, len(sizes))]
    else:
        dummies = []
    numeric = rng.normal(size=(k - 1 - len(dummies), n))
    X = np.column_stack([np.ones(n), *numeric, *dummies])
    noise = {
        "t2": lambda: rng.standard_t(2, n),
        "cauchy": lambda: rng.standard_cauchy(n),
        "hetero_t3": lambda: (1 + np.abs(X[:, 1])) * rng.standard_t(3, n),
        "lognormal": lambda: rng.lognormal(0, 1, n),
        # light tails: sd(y) < IQR(e) / 1.34, the other branch of the bandwidth rule
        "uniform": lambda: rng.uniform(-10, 10, n),
    }[errors]()
    return X @ rng.normal(0, 1, k) + noise, X


def _statsmodels_at(y, X, q, params, alpha):
    """statsmodels QuantReg's own statistics evaluated at ``params`` instead of its IRLS fit.

    QuantReg.fit starts from b = 1 and p_tol=inf ends it before the first IRLS step, so on the
    design with column j multiplied by params[j] it computes its covariance, p-values and
    pseudo R² at exactly our fit; bse and intervals are scaled back by params.
    """
    res = sm.QuantReg(y, X * params).fit(q=q, p_tol=np.inf)
    assert res.iterations == 0 and np.allclose(res.params, 1.0)
    return {"bse": res.bse * np.abs(params), "pvalues": res.pvalues,
            "prsquared": res.prsquared, "cov": res.cov_params() * np.outer(params, params),
            "ci": np.sort(res.conf_int(alpha) * params[:, None], axis=1)}


QR_CASES = [  # seed, n, k, errors, one-hot, q
    (1, 200, 2, "t2", False, 0.5),
    (2, 1000, 5, "cauchy", False, 0.2),
    (3, 5000, 10, "hetero_t3", False, 0.8),
    (4, None, 30, "lognormal", True, 0.8),   # n = 3170 from the level sizes
    (5, None, 22, "t2", True, 0.2),          # n = 1385
    (6, 20000, 4, "t2", False, 0.5),
    (9, 600, 3, "uniform", False, 0.8),
]


@pytest.mark.parametrize(("seed", "n", "k", "errors", "one_hot", "q"), QR_CASES)
def test_quantreg_matches_statsmodels(seed, n, k, errors, one_hot, q):
    y, X = _qr_dataset(seed, n, k, errors, one_hot)
    assert X.shape[1] == k and np.linalg.matrix_rank(X) == k
    fit = quantile_regression(y, X, q)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # statsmodels must converge for the comparison to hold
        ref = sm.QuantReg(y, X).fit(q=q, max_iter=5000, p_tol=1e-10)
    ref_objective = check_loss(y - X @ ref.params, q)
    # the LP optimum can only be at least as good as where IRLS stops
    assert fit.objective <= ref_objective * (1 + 1e-7)
    assert fit.objective == pytest.approx(check_loss(y - X @ fit.params, q), rel=1e-12)
    assert fit.iterations < 40
    np.testing.assert_allclose(fit.params, ref.params, rtol=1e-4, atol=1e-4)

    # same covariance formula: statsmodels' statistics at our params agree to rounding
    at = _statsmodels_at(y, X, q, fit.params, alpha=0.1)
    np.testing.assert_allclose(fit.bse, at["bse"], rtol=1e-6)
    np.testing.assert_allclose(fit.cov_params, at["cov"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(fit.pvalues, at["pvalues"], rtol=1e-6, atol=1e-15)
    np.testing.assert_allclose(fit.conf_int(0.1), at["ci"], rtol=1e-6, atol=1e-9)
    assert fit.prsquared == pytest.approx(at["prsquared"], rel=1e-6)
    assert fit.tvalues == pytest.approx(fit.params / fit.bse)
    # and close to statsmodels' own fit, only approximately: the formula weights a residual by
    # q² or (1 − q)² on its sign, and the k interpolated residuals are ~0 in both fits with
    # arbitrary signs (this moves a small one-hot level's bse by up to ~10%)
    assert np.median(np.abs(fit.bse / ref.bse - 1)) < 0.02
    assert fit.prsquared == pytest.approx(ref.prsquared, abs=1e-6)


@pytest.mark.parametrize("kind", ["ties", "mass_at_zero", "exact_fit"])
def test_quantreg_reaches_the_lp_optimum_on_degenerate_data(kind):
    # independent exact reference: the LP min q·1'u + (1 − q)·1'v s.t. Xb + u − v = y, u, v ≥ 0
    # solved by HiGHS; ties and a mass of zeros (loss-making customers clipped to 0) make it
    # degenerate, where IRLS is least reliable
    y, X = _qr_dataset(10, 1500, 6, "t2")
    q = {"ties": 0.5, "mass_at_zero": 0.2, "exact_fit": 0.8}[kind]
    if kind == "ties":
        y = np.round(y)
    elif kind == "mass_at_zero":
        y = np.where(np.arange(y.size) % 5 < 2, 0.0, np.abs(y))
    else:
        y = X @ np.arange(1.0, 7.0)
    n, k = X.shape
    lp = linprog(np.r_[np.zeros(k), np.full(n, q), np.full(n, 1 - q)],
                 A_eq=scipy.sparse.hstack([scipy.sparse.csr_matrix(X), scipy.sparse.eye(n),
                                           -scipy.sparse.eye(n)]),
                 b_eq=y, bounds=[(None, None)] * k + [(0, None)] * (2 * n), method="highs")
    assert lp.status == 0
    fit = quantile_regression(y, X, q)
    assert fit.objective == pytest.approx(lp.fun, rel=1e-8, abs=1e-9)
    if kind == "exact_fit":
        assert fit.params == pytest.approx(np.arange(1.0, 7.0), abs=1e-9)


def test_quantreg_scale_and_shift_equivariant():
    y, X = _qr_dataset(7, 800, 4, "t2")
    fit = quantile_regression(y, X, 0.8)
    scaled = quantile_regression(1e5 * y, X, 0.8)  # e.g. 元 instead of 10⁵ 元
    np.testing.assert_allclose(scaled.params, 1e5 * fit.params, rtol=1e-6, atol=1e-1)
    np.testing.assert_allclose(scaled.bse, 1e5 * fit.bse, rtol=1e-6)
    np.testing.assert_allclose(scaled.pvalues, fit.pvalues, rtol=1e-6, atol=1e-15)
    shifted = quantile_regression(y + 3.0 * X[:, 1], X, 0.8)
    np.testing.assert_allclose(shifted.params, fit.params + [0.0, 3.0, 0.0, 0.0],
                               rtol=1e-6, atol=1e-6)


def test_quantreg_errors():
    y, X = _qr_dataset(8, 300, 3, "t2")
    with pytest.raises(QuantRegConvergenceError, match="no convergence in 2 interior-point"):
        quantile_regression(y, X, 0.5, max_iter=2)
    with pytest.raises(InputError, match="full column rank"):
        quantile_regression(y, np.column_stack([X, 2 * X[:, 1]]), 0.5)
    with pytest.raises(InputError, match="not in"):
        quantile_regression(y, X, 1.0)
    with pytest.raises(InputError, match="shape"):
        quantile_regression(y[:-1], X, 0.5)
    with pytest.raises(InputError, match="missing or infinite"):
        quantile_regression(np.where(np.arange(300) == 5, np.nan, y), X, 0.5)


def _large_qr_dataset(seed: int, n: int = 60_000):
    """Heavy-tailed, heteroscedastic data with a rare level (7 rows: most subsamples miss it;
    7 × q is not an integer, so its coefficient has a unique optimum)."""
    rng = np.random.default_rng(seed)
    rare = np.zeros(n)
    rare[rng.choice(n, 7, replace=False)] = 1.0
    common = (rng.uniform(size=n) < 0.3).astype(float)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 4)), common, rare])
    y = X @ rng.normal(0, 1, X.shape[1]) + (1 + np.abs(X[:, 1])) * rng.standard_t(3, n)
    return y, X


@pytest.mark.parametrize("q", [0.2, 0.5, 0.8])
def test_quantreg_preprocessing_reaches_the_same_optimum(q):
    y, X = _large_qr_dataset(12)
    full = quantile_regression(y, X, q, preprocess=False)
    fit = quantile_regression(y, X, q)          # preprocesses by default at this size
    assert full.rows_solved == len(y) and fit.rows_solved < len(y) / 3
    assert fit.objective == pytest.approx(full.objective, rel=1e-9)
    np.testing.assert_allclose(fit.params, full.params, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fit.bse, full.bse, rtol=1e-3)
    assert quantile_regression(y, X, q).params.tolist() == fit.params.tolist()   # seeded


@pytest.mark.parametrize("m", [60, 300, 3000])  # 60: drawn again larger; 300: rows put back
def test_quantreg_preprocessing_repairs_a_poor_subsample(m):
    # a small subsample predicts the sides badly: rows on the wrong side are put back, or the
    # subsample is drawn again larger; either way the answer is the full problem's optimum
    from analysis.quantreg import _frisch_newton, _preprocessed

    y, X = _large_qr_dataset(13, n=20_000)
    q = 0.8
    b_full, _, _ = _frisch_newton(y, X, X.T @ X, q, 1e-8, 100)
    b, _, gap, rows = _preprocessed(y, X, X.T @ X, q, 1e-8, 100, seed=3, m=m)
    assert rows <= len(y)
    assert check_loss(y - X @ b, q) == pytest.approx(check_loss(y - X @ b_full, q), rel=1e-9)
    assert gap <= 1e-8 * (check_loss(y - X @ b, q) + np.abs(y).mean())   # the full problem's rule


def test_quantreg_preprocessing_never_fails_where_the_plain_solve_succeeds():
    # counts (many ties) make the reduced problem's summed rows badly scaled: a reduced solve
    # that does not converge must fall back, not raise (seed 6 raised before the fallback)
    n = 200_000
    rng = np.random.default_rng(6)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    y = rng.poisson(3 + X[:, 1] ** 2).astype(float)
    fit = quantile_regression(y, X, 0.5)
    plain = quantile_regression(y, X, 0.5, preprocess=False)
    assert fit.objective - plain.objective <= fit.gap + plain.gap


def test_quantreg_preprocessing_keeps_the_documented_tolerance_for_large_levels():
    # y far from 0: the summed rows' y would loosen a tolerance taken from the reduced problem
    n = 200_000
    rng = np.random.default_rng(2)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 3))])
    y = 1e6 + X @ np.array([1.0, 2.0, 3.0, 4.0]) + rng.normal(size=n)
    fit = quantile_regression(y, X, 0.5)
    assert fit.rows_solved < n
    assert fit.gap <= 1e-8 * (fit.objective + np.abs(y).mean())
