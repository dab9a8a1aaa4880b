"""Pilot A/B statistics: agreement with statsmodels/scipy, worked examples, input errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.regression.linear_model import OLS
from statsmodels.sandbox.regression.gmm import IV2SLS
from statsmodels.stats.multitest import multipletests
from statsmodels.stats import proportion as sm_proportion
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from analysis import pilot
from analysis.errors import InputError
from analysis.synth.pilot import simulate_pilot

Z975 = 1.959963984540054
TOL = 1e-6


@pytest.fixture(scope="module")
def individual():
    frame, truth = simulate_pilot(n_customers=4000, n_rms=40, seed=11)
    return frame, truth


@pytest.fixture(scope="module")
def clustered():
    frame, truth = simulate_pilot(n_customers=4000, n_rms=40, design="cluster", seed=12)
    return frame, truth


def _arms(frame, col):
    t = frame["arm"].eq("treatment").to_numpy()
    y = frame[col].to_numpy(dtype=float)
    return y[t], y[~t]


# --- design ---------------------------------------------------------------------------

def test_sample_size_proportions_matches_cohens_h_formula():
    size = pilot.sample_size_proportions(0.05, 0.02)
    h = 2 * math.asin(math.sqrt(0.07)) - 2 * math.asin(math.sqrt(0.05))
    # normal approximation, var(2·asin√p̂) = 1/n per arm: n = 2((z_.975 + z_.8)/h)²
    closed_form = 2 * ((Z975 + stats.norm.ppf(0.8)) / h) ** 2
    assert size.effect_size == pytest.approx(h, abs=1e-12)
    assert abs(size.n_treatment - closed_form) < 1.5
    assert (size.n_treatment, size.n_control, size.total) == (2199, 2199, 4398)


def test_sample_size_means_and_design_effect():
    assert pilot.sample_size_means(sd=10, mde=2).n_treatment == 394  # t-test, d = 0.2
    unequal = pilot.sample_size_means(sd=10, mde=2, ratio=2.0)
    assert unequal.n_control == pytest.approx(2 * unequal.n_treatment, abs=1)
    clustered = pilot.sample_size_proportions(0.05, 0.02, cluster_size=21, icc=0.05)
    assert clustered.design_effect == pytest.approx(2.0)
    assert clustered.n_treatment == 4397  # ceil(2198.49 × 2)
    assert pilot.design_effect(11, 0.1) == pytest.approx(2.0)


def test_minimum_detectable_effect_inverts_sample_size():
    mde = pilot.minimum_detectable_effect(2199, 2199, p_control=0.05)
    assert 0.0199 < mde <= 0.02
    assert pilot.minimum_detectable_effect(394, 394, sd=10) == pytest.approx(2.0, abs=0.01)
    deff = pilot.minimum_detectable_effect(4397, 4397, p_control=0.05, cluster_size=21, icc=0.05)
    assert deff == pytest.approx(mde, abs=1e-5)
    with pytest.raises(InputError):
        pilot.minimum_detectable_effect(100, 100)


# --- randomisation ----------------------------------------------------------------------

def test_stratified_assignment_is_balanced_and_reproducible(individual):
    frame, _ = individual
    base = frame.drop(columns="arm")
    before = base.copy()
    a = pilot.assign_stratified(base, ["rm_id", "tier"], seed=7)
    b = pilot.assign_stratified(base, ["rm_id", "tier"], seed=7)
    c = pilot.assign_stratified(base, ["rm_id", "tier"], seed=8)
    pd.testing.assert_frame_equal(base, before)  # input untouched
    assert "arm" not in base.columns
    assert a["arm"].tolist() == b["arm"].tolist()
    assert a["arm"].tolist() != c["arm"].tolist()
    assert a.attrs["assignment"]["seed"] == 7
    per_stratum = a.groupby(["rm_id", "tier"])["arm"].agg(
        n="size", treated=lambda s: (s == "treatment").sum())
    assert ((per_stratum["treated"] - per_stratum["n"] / 2).abs() <= 0.5).all()


def test_stratified_assignment_with_uneven_share_and_lottery_for_leftovers():
    frame = pd.DataFrame({"stratum": np.repeat(["a", "b", "c"], [10, 7, 1])})
    out = pilot.assign_stratified(frame, ["stratum"], treat_share=0.3, seed=1)
    treated = out.groupby("stratum")["arm"].apply(lambda s: (s == "treatment").sum())
    assert treated["a"] == 3
    assert treated["b"] in (2, 3)  # 2.1 → 2, plus the leftover with probability 0.1
    # a one-customer stratum is treated by lottery: about half the seeds at share 0.5
    single = pd.DataFrame({"stratum": ["x"]})
    share = np.mean([pilot.assign_stratified(single, ["stratum"], seed=s)["arm"].iloc[0]
                     == "treatment" for s in range(400)])
    assert 0.43 < share < 0.57


def test_clustered_assignment_keeps_clusters_whole(clustered):
    frame, _ = clustered
    out = pilot.assign_clustered(frame.drop(columns="arm"), "rm_id", seed=3,
                                 strata_col="branch_id")
    assert (out.groupby("rm_id")["arm"].nunique() == 1).all()
    per_branch = out.drop_duplicates("rm_id").groupby("branch_id")["arm"].agg(
        n="size", treated=lambda s: (s == "treatment").sum())
    assert ((per_branch["treated"] - per_branch["n"] / 2).abs() <= 0.5).all()
    bad = frame.assign(branch_id=np.where(np.arange(len(frame)) % 2, "BR01", "BR02"))
    with pytest.raises(InputError, match="more than one stratum"):
        pilot.assign_clustered(bad, "rm_id", seed=1, strata_col="branch_id")


def test_balance_table_worked_example():
    frame = pd.DataFrame({"arm": ["treatment", "treatment", "control", "control"],
                          "x": [1.0, 3.0, 0.0, 2.0], "tier": ["A", "B", "A", "A"]})
    table = pilot.balance_table(frame, "arm", ["x", "tier"]).set_index("covariate")
    assert table.loc["x", "smd"] == pytest.approx(1 / math.sqrt(2))  # (2-1)/sqrt((2+2)/2)
    assert table.loc["x", "p_value"] == pytest.approx(
        stats.ttest_ind([1, 3], [0, 2], equal_var=False).pvalue)
    assert table.loc["tier=B", "mean_treatment"] == 0.5
    assert table.loc["tier=B", "mean_control"] == 0.0


# --- SRM ----------------------------------------------------------------------------------

def test_srm_flags_52_48_split_on_10000():
    p = pilot.srm_test([5200, 4800])
    assert p == pytest.approx(6.334248366623988e-05, rel=1e-9)  # χ² = 16 on 1 df
    assert p < pilot.SRM_ALPHA
    assert pilot.srm_test([5000, 5000]) == pytest.approx(1.0)
    assert pilot.srm_test({"treatment": 5200, "control": 4800},
                          {"treatment": 0.52, "control": 0.48}) == pytest.approx(1.0)


def test_experiment_reports_srm_from_a_skewed_split():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"arm": np.repeat(["treatment", "control"], [5200, 4800]),
                          "converted": rng.integers(0, 2, 10_000)})
    result = pilot.evaluate_experiment(frame, "arm", "control", ["converted"])
    assert result.summary["srm_p_value"] == pytest.approx(6.334248366623988e-05, rel=1e-9)
    srm_notes = [n for n in result.summary["notes"] if n["code"] == "srm"]
    assert "Sample ratio mismatch" in srm_notes[0]["en"] and "样本比例失衡" in srm_notes[0]["zh"]


# --- estimators against statsmodels / scipy ---------------------------------------------

def test_binary_matches_statsmodels_wald(individual):
    t, c = _arms(individual[0], "loan_converted")
    est = pilot.evaluate_binary(t, c)
    x1, n1, x0, n0 = t.sum(), len(t), c.sum(), len(c)
    low, high = sm_proportion.confint_proportions_2indep(x1, n1, x0, n0, method="wald")
    test = sm_proportion.test_proportions_2indep(x1, n1, x0, n0, method="wald")
    assert est.effect == pytest.approx(x1 / n1 - x0 / n0, abs=1e-12)
    assert abs(est.ci_low - low) < TOL and abs(est.ci_high - high) < TOL
    assert abs(est.p_value - test.pvalue) < TOL
    # hand formula: unpooled variance for both the interval and the test
    se = math.sqrt(x1 / n1 * (1 - x1 / n1) / n1 + x0 / n0 * (1 - x0 / n0) / n0)
    assert abs(est.ci_low - (est.effect - Z975 * se)) < TOL
    assert abs(est.p_value - 2 * stats.norm.sf(abs(est.effect) / se)) < TOL
    assert est.method == "diff_proportions"


def test_welch_matches_statsmodels_and_scipy(individual):
    t, c = _arms(individual[0], "deposit_change")
    est = pilot.evaluate_continuous(t, c)
    cm = CompareMeans(DescrStatsW(t), DescrStatsW(c))
    low, high = cm.tconfint_diff(usevar="unequal")
    _, p, _ = cm.ttest_ind(usevar="unequal")
    scipy_res = stats.ttest_ind(t, c, equal_var=False)
    ci = scipy_res.confidence_interval(0.95)
    assert abs(est.ci_low - low) < TOL and abs(est.ci_high - high) < TOL
    assert abs(est.p_value - p) < TOL
    assert abs(est.ci_low - ci.low) < TOL and abs(est.ci_high - ci.high) < TOL
    assert abs(est.p_value - scipy_res.pvalue) < TOL
    assert est.method == "welch"


def test_relative_lift_delta_method_worked_example():
    # 60/1000 vs 50/1000: r = 0.2;
    # Var = .06·.94/1000/.05² + .06²·.05·.95/1000/.05⁴ = 0.02256 + 0.02736 = 0.04992
    lift, low, high = pilot.relative_lift_delta(0.06, 0.05, 0.06 * 0.94 / 1000,
                                                0.05 * 0.95 / 1000)
    se = math.sqrt(0.04992)
    assert lift == pytest.approx(0.2, abs=1e-12)
    assert low == pytest.approx(0.2 - Z975 * se, abs=1e-12)
    assert high == pytest.approx(0.6379105209161464, abs=1e-9)
    est = pilot.evaluate_binary([1] * 60 + [0] * 940, [1] * 50 + [0] * 950)
    assert (est.relative_lift, est.relative_ci_low, est.relative_ci_high) == pytest.approx(
        (lift, low, high), abs=1e-12)


def test_cuped_worked_example_and_variance_reduction(individual):
    y = np.array([2.0, 3.0, 5.0, 4.0, 6.0])
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    adjusted = pilot.cuped_adjust(y, x)
    assert adjusted.attrs["theta"] == pytest.approx(0.9)  # cov 2.25 / var 2.5
    assert adjusted.to_numpy() == pytest.approx([3.8, 3.9, 5.0, 3.1, 4.2])
    assert adjusted.var() == pytest.approx(2.5 * (1 - 0.81))  # var(y)(1 - ρ²), ρ² = 0.81
    frame = individual[0]
    t = frame["arm"].eq("treatment")
    plain = pilot.evaluate_continuous(frame.loc[t, "deposit_change"],
                                      frame.loc[~t, "deposit_change"])
    cuped = pilot.evaluate_cuped(frame.loc[t, "deposit_change"], frame.loc[~t, "deposit_change"],
                                 frame.loc[t, "deposit_pre"], frame.loc[~t, "deposit_pre"])
    assert cuped.method == "cuped"
    # the standard error shrinks by about sqrt(1 - ρ²), ρ = corr(outcome, pre-period balance)
    rho = np.corrcoef(frame["deposit_change"], frame["deposit_pre"])[0, 1]
    assert rho > 0.25
    assert cuped.std_error / plain.std_error == pytest.approx(math.sqrt(1 - rho**2), rel=0.02)


def _design(frame):
    treated = frame["arm"].eq("treatment").to_numpy(float)
    dep = frame["deposit_pre"].to_numpy()
    tier_b = frame["tier"].eq("B").to_numpy(float)
    tier_c = frame["tier"].eq("C").to_numpy(float)
    covs = np.column_stack([dep, tier_b, tier_c])
    X = np.column_stack([np.ones(len(frame)), treated, covs - covs.mean(axis=0)])
    return X


@pytest.mark.parametrize("outcome", ["loan_converted", "deposit_change"])
def test_adjusted_regression_matches_statsmodels_hc2(individual, outcome):
    frame = individual[0]
    est = pilot.evaluate_regression(frame, "arm", "treatment", "control", outcome,
                                    covariates=["deposit_pre", "tier"])
    fit = OLS(frame[outcome].to_numpy(float), _design(frame)).fit(cov_type="HC2", use_t=True)
    low, high = fit.conf_int()[1]
    assert est.method == "ols_adjusted"
    assert abs(est.effect - fit.params[1]) < TOL
    assert abs(est.ci_low - low) < TOL and abs(est.ci_high - high) < TOL
    assert abs(est.p_value - fit.pvalues[1]) < TOL


@pytest.mark.parametrize(("cluster_se", "cov_type", "se_type"),
                         [("crv3", "cluster-crv3", "CR3"), ("crv1", "cluster", "CR1")])
@pytest.mark.parametrize("outcome", ["loan_converted", "deposit_change"])
def test_cluster_regression_matches_statsmodels(clustered, outcome, cluster_se, cov_type,
                                                se_type):
    frame = clustered[0]
    est = pilot.evaluate_regression(frame, "arm", "treatment", "control", outcome,
                                    covariates=["deposit_pre", "tier"], cluster_col="rm_id",
                                    cluster_se=cluster_se)
    groups = pd.factorize(frame["rm_id"])[0]
    fit = OLS(frame[outcome].to_numpy(float), _design(frame)).fit(
        cov_type=cov_type, cov_kwds={"groups": groups}, use_t=True)
    low, high = fit.conf_int()[1]
    assert (est.method, est.se_type) == ("ols_cluster", se_type)
    assert abs(est.effect - fit.params[1]) < TOL
    assert abs(est.ci_low - low) < TOL and abs(est.ci_high - high) < TOL
    assert abs(est.p_value - fit.pvalues[1]) < TOL
    assert fit.df_resid_inference == 39  # t with G - 1 degrees of freedom
    # relative lift: effect / intercept (adjusted control mean), delta method on fit's cov
    b, V = fit.params, fit.cov_params()
    grad = np.array([-b[1] / b[0] ** 2, 1 / b[0]])
    se = math.sqrt(grad @ V[:2, :2] @ grad)
    crit = stats.t.ppf(0.975, 39)
    assert est.relative_lift == pytest.approx(b[1] / b[0], rel=1e-9)
    assert est.relative_ci_low == pytest.approx(b[1] / b[0] - crit * se, rel=1e-9)


def test_cluster_without_covariates_is_ols_on_treatment(clustered):
    frame = clustered[0]
    y = frame["loan_converted"].to_numpy(float)
    treated = frame["arm"].eq("treatment").to_numpy(float)
    est = pilot.evaluate_ols(y, treated, groups=frame["rm_id"].to_numpy())
    fit = OLS(y, np.column_stack([np.ones(len(y)), treated])).fit(
        cov_type="cluster-crv3", cov_kwds={"groups": pd.factorize(frame["rm_id"])[0]},
        use_t=True)
    assert abs(est.effect - (y[treated == 1].mean() - y[treated == 0].mean())) < 1e-12
    assert abs(est.ci_low - fit.conf_int()[1][0]) < TOL
    assert est.relative_lift == pytest.approx(est.mean_treatment / est.mean_control - 1)


def test_lin_interactions_option(individual):
    frame = individual[0]
    est = pilot.evaluate_regression(frame, "arm", "treatment", "control", "deposit_change",
                                    covariates=["deposit_pre"], interactions=True)
    treated = frame["arm"].eq("treatment").to_numpy(float)
    x = frame["deposit_pre"].to_numpy() - frame["deposit_pre"].mean()
    X = np.column_stack([np.ones(len(x)), treated, x, treated * x])
    fit = OLS(frame["deposit_change"].to_numpy(), X).fit(cov_type="HC2", use_t=True)
    assert abs(est.effect - fit.params[1]) < TOL
    assert abs(est.ci_high - fit.conf_int()[1][1]) < TOL


def test_did_worked_example():
    panel = pd.DataFrame({
        "unit": ["u1", "u1", "u2", "u2", "u3", "u3", "u4", "u4", "u5", "u5", "u6", "u6"],
        "post": [0, 1] * 6,
        "treated": [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
        "y": [10, 15, 12, 19, 8, 14, 11, 13, 9, 12, 10, 11],
    })
    est = pilot.did_effect(panel, "unit", "post", "treated", "y")
    # treated change (5 + 7 + 6)/3 = 6, control change (2 + 3 + 1)/3 = 2 → DiD 4
    assert est.effect == pytest.approx(4.0)
    y = panel["y"].to_numpy(float)
    t, p = panel["treated"].to_numpy(float), panel["post"].to_numpy(float)
    X = np.column_stack([np.ones(12), t, p, t * p])
    fit = OLS(y, X).fit(cov_type="cluster-crv3",
                        cov_kwds={"groups": pd.factorize(panel["unit"])[0]}, use_t=True)
    assert abs(est.ci_low - fit.conf_int()[3][0]) < TOL
    assert abs(est.p_value - fit.pvalues[3]) < TOL
    # same point estimate as unit and period fixed effects
    unit_dummies = pd.get_dummies(panel["unit"], dtype=float).to_numpy()
    fe = OLS(y, np.column_stack([unit_dummies, p, t * p])).fit()
    assert fe.params[-1] == pytest.approx(4.0)
    # counterfactual treated post mean = 10 + 2 = 12, treated post mean 16 → lift 1/3
    assert est.relative_lift == pytest.approx(16 / 12 - 1)


def test_contacted_effect_worked_example():
    frame = pd.DataFrame({
        "assigned": [1, 1, 1, 1, 0, 0, 0, 0],
        "contacted": [1, 1, 0, 0, 0, 0, 0, 0],
        "converted": [1, 1, 0, 0, 0, 0, 0, 1],
    })
    est = pilot.contacted_effect(frame, "assigned", "contacted", "converted")
    # ITT 0.5 - 0.25 = 0.25, first stage 0.5 → 0.5. Residuals u = y - 0.25 - 0.5·d:
    # assigned (.25, .25, -.25, -.25), control (-.25, -.25, -.25, .75);
    # HC0: (Σu²_t/4² + Σu²_c/4²) / 0.5² = (0.25/16 + 0.75/16) / 0.25 = 0.25 → se 0.5
    assert est.itt == pytest.approx(0.25)
    assert est.first_stage == pytest.approx(0.5)
    assert est.effect == pytest.approx(0.5)
    assert est.std_error == pytest.approx(0.5)
    assert est.ci_low == pytest.approx(0.5 - Z975 * 0.5)
    assert est.p_value == pytest.approx(2 * stats.norm.sf(1.0))


def test_contacted_effect_agrees_with_iv2sls_and_delta_formula(individual):
    frame = individual[0]
    est = pilot.contacted_effect(frame, "arm", "contacted", "loan_converted",
                                 treatment_value="treatment")
    z = frame["arm"].eq("treatment").to_numpy(float)
    d = frame["contacted"].to_numpy(float)
    y = frame["loan_converted"].to_numpy(float)
    ones = np.ones(len(y))
    iv = IV2SLS(y, np.column_stack([ones, d]), np.column_stack([ones, z])).fit()
    assert est.effect == pytest.approx(iv.params[1], abs=1e-10)
    assert est.effect == pytest.approx(est.itt / est.first_stage, abs=1e-10)
    u = y - iv.params[0] - iv.params[1] * d
    n1, n0 = z.sum(), (1 - z).sum()
    hc0 = math.sqrt((u[z == 1] ** 2).sum() / n1**2 + (u[z == 0] ** 2).sum() / n0**2)
    assert est.std_error == pytest.approx(hc0 / est.first_stage, rel=1e-9)


def test_effects_by_segment_adjusts_with_bh(individual):
    frame = individual[0]
    table = pilot.effects_by_segment(frame, "tier", "arm", "loan_converted")
    assert table["segment"].tolist() == ["A", "B", "C"]
    assert table["p_adjusted"].to_numpy() == pytest.approx(
        multipletests(table["p_value"], method="fdr_bh")[1])
    tier_a = frame[frame["tier"] == "A"]
    direct = pilot.evaluate_binary(*_arms(tier_a, "loan_converted"))
    assert table.loc[0, "effect"] == pytest.approx(direct.effect)


# --- the experiment table -----------------------------------------------------------------

def test_experiment_columns_methods_and_summary(individual):
    frame = individual[0]
    plain = pilot.evaluate_experiment(frame, "arm", "control",
                                      ["loan_converted", "deposit_change"])
    assert list(plain.results.columns) == [
        "arm", "outcome", "n_treatment", "n_control", "mean_treatment", "mean_control",
        "effect", "ci_low", "ci_high", "p_value", "relative_lift", "relative_ci_low",
        "relative_ci_high", "method"]
    assert plain.results["method"].tolist() == ["diff_proportions", "welch"]
    direct = pilot.evaluate_binary(*_arms(frame, "loan_converted"))
    assert plain.results.loc[0, "ci_low"] == pytest.approx(direct.ci_low, abs=1e-12)
    summary = plain.summary
    assert summary["n_per_arm"] == frame["arm"].value_counts().sort_index().to_dict()
    assert summary["srm_p_value"] == pytest.approx(
        stats.chisquare(list(summary["n_per_arm"].values())).pvalue)
    assert summary["alpha"] == 0.05 and summary["rows_excluded"] == []
    json.dumps(summary)  # serialisable as is

    adjusted = pilot.evaluate_experiment(frame, "arm", "control", ["loan_converted"],
                                         covariates=["deposit_pre", "tier"])
    assert adjusted.results["method"].tolist() == ["ols_adjusted"]
    clustered = pilot.evaluate_experiment(frame, "arm", "control", ["loan_converted"],
                                          cluster_col="rm_id")
    assert clustered.results["method"].tolist() == ["ols_cluster"]
    assert clustered.summary["srm_unit"] == "row"  # customers, not RMs, were randomised


def test_experiment_cluster_srm_counts_clusters(clustered):
    result = pilot.evaluate_experiment(clustered[0], "arm", "control", ["deposit_change"],
                                       cluster_col="rm_id")
    assert result.summary["srm_unit"] == "cluster"
    assert sum(result.summary["srm_counts"].values()) == 40


def test_experiment_multi_arm_and_boolean_outcome():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"group": rng.choice(["ctrl", "sms", "visit"], 3000),
                          "converted": rng.random(3000) < 0.1,
                          "amount": rng.normal(100, 20, 3000)})
    result = pilot.evaluate_experiment(frame, "group", "ctrl", ["converted", "amount"])
    table = result.results
    assert table[["arm", "outcome"]].values.tolist() == [
        ["sms", "converted"], ["visit", "converted"], ["sms", "amount"], ["visit", "amount"]]
    assert table["method"].tolist() == ["diff_proportions", "diff_proportions", "welch", "welch"]
    assert [n["code"] for n in result.summary["notes"]] == ["multiple_arms"]


def test_missing_outcomes_are_counted_not_silently_dropped(individual):
    frame = individual[0].copy()
    treated_rows = np.flatnonzero(frame["arm"].eq("treatment").to_numpy())[:4]
    control_rows = np.flatnonzero(frame["arm"].eq("control").to_numpy())[:3]
    frame["loan_converted"] = frame["loan_converted"].astype(float)
    frame.loc[frame.index[np.r_[treated_rows, control_rows]], "loan_converted"] = np.nan
    result = pilot.evaluate_experiment(frame, "arm", "control",
                                       ["loan_converted", "deposit_change"])
    assert result.summary["rows_excluded"] == [
        {"outcome": "loan_converted", "reason": "outcome_missing", "column": "loan_converted",
         "rows": 7, "by_arm": {"control": 3, "treatment": 4}}]
    row = result.results.iloc[0]
    assert row["n_treatment"] + row["n_control"] == len(frame) - 7
    assert result.results.iloc[1]["n_treatment"] + result.results.iloc[1]["n_control"] == 4000


def test_numeric_arm_codes_match_a_text_control_value():
    frame = pd.DataFrame({"assigned": [0, 1] * 50, "y": [0, 1, 1, 1] * 25})
    result = pilot.evaluate_experiment(frame, "assigned", "0", ["y"])
    assert result.results.loc[0, "arm"] == "1"
    assert result.results.loc[0, "effect"] == pytest.approx(0.5)


# --- input errors -------------------------------------------------------------------------

def test_input_errors_name_column_and_fix(individual):
    frame = individual[0]
    with pytest.raises(InputError) as missing:
        pilot.evaluate_experiment(frame, "arm", "control", ["loan_convert"])
    assert missing.value.column == "loan_convert" and "loan_converted" in missing.value.fix
    with pytest.raises(InputError) as no_control:
        pilot.evaluate_experiment(frame, "arm", "ctrl", ["loan_converted"])
    assert no_control.value.column == "arm" and "control" in no_control.value.fix
    text = frame.assign(deposit_change=frame["deposit_change"].map(lambda v: f"{v:.0f}元"))
    with pytest.raises(InputError) as not_numeric:
        pilot.evaluate_experiment(text, "arm", "control", ["deposit_change"])
    assert not_numeric.value.column == "deposit_change" and "not numeric" in str(not_numeric.value)
    with pytest.raises(InputError, match="covariate column 'nope'"):
        pilot.evaluate_experiment(frame, "arm", "control", ["loan_converted"], covariates=["nope"])
    with pytest.raises(InputError, match="only the control arm"):
        pilot.evaluate_experiment(frame[frame["arm"] == "control"], "arm", "control",
                                  ["loan_converted"])
    with pytest.raises(InputError, match="missing values"):
        pilot.evaluate_binary([1, 0, np.nan], [0, 1])


# --- files and report ---------------------------------------------------------------------

def test_run_evaluate_pilot_gbk_csv_writes_outputs(tmp_path, individual):
    frame = individual[0].rename(columns={"arm": "组别", "loan_converted": "是否放款"})
    frame["组别"] = frame["组别"].map({"treatment": "处理", "control": "对照"})
    frame["deposit_change"] = frame["deposit_change"].where(frame.index >= 3)
    path = tmp_path / "pilot.csv"
    frame.to_csv(path, index=False, encoding="gbk")
    out = tmp_path / "out"
    result = pilot.run_evaluate_pilot(path, "组别", "对照", ["是否放款", "deposit_change"],
                                      cluster="rm_id", out_dir=out, language="zh")
    written = pd.read_csv(out / "results.csv")
    assert list(written.columns) == pilot.RESULT_COLUMNS
    assert written["arm"].tolist() == ["处理", "处理"]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["srm_p_value"] == pytest.approx(result.summary["srm_p_value"])
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "分配到“处理”组使是否放款" in html and "样本比例检验" in html
    assert "deposit_change：结果指标缺失：3 行" in html
    assert "聚类稳健回归" in html and "outcome missing" not in html
    assert summary["rows_excluded"][0]["rows"] == 3


def test_run_evaluate_pilot_english_parquet_and_xlsx(tmp_path, individual):
    frame = individual[0].head(600)
    for name, write in (("p.parquet", frame.to_parquet), ("p.xlsx", frame.to_excel)):
        path = tmp_path / name
        write(path, index=False)
        out = tmp_path / name.replace(".", "_")
        pilot.run_evaluate_pilot(path, "arm", "control", ["loan_converted"], out_dir=out)
        html = (out / "report.html").read_text(encoding="utf-8")
        assert "Assignment to the treatment" in html and "Sample ratio check" in html


def test_run_evaluate_pilot_errors_name_the_file(tmp_path, individual):
    with pytest.raises(InputError, match="file not found"):
        pilot.run_evaluate_pilot(tmp_path / "none.csv", "arm", "control", ["y"],
                                 out_dir=tmp_path)
    odd = tmp_path / "pilot.json"
    odd.write_text("{}")
    with pytest.raises(InputError, match="unsupported file type"):
        pilot.run_evaluate_pilot(odd, "arm", "control", ["y"], out_dir=tmp_path)
    path = tmp_path / "p.csv"
    individual[0].head(50).to_csv(path, index=False)
    with pytest.raises(InputError) as err:
        pilot.run_evaluate_pilot(path, "arm", "control", ["nope"], out_dir=tmp_path)
    assert err.value.file == str(path) and err.value.column == "nope"
    assert str(err.value).count("(file") == 1


def test_effect_sentences_and_interval_explanations():
    row = {"arm": "treatment", "outcome": "conversion", "effect": 0.024, "ci_low": 0.011,
           "ci_high": 0.037}
    assert pilot.effect_sentence(row, binary=True) == (
        "Assignment to the treatment raised conversion by 2.4 points (95% CI 1.1 to 3.7).")
    assert pilot.effect_sentence(row, binary=True, language="zh") == (
        "分配到处理组使conversion提高了2.4个百分点（95%置信区间：1.1至3.7）。")
    flat = {**row, "effect": -1500.0, "ci_low": -4000.0, "ci_high": 1000.0}
    assert "includes zero" in pilot.effect_sentence(flat, binary=False)
    for method in ("diff_proportions", "welch", "ols_adjusted", "ols_cluster", "cuped",
                   "did_ols_cluster", "iv_2sls"):
        assert "95%" in pilot.interval_explanation(method, "en")
        assert "置信区间" in pilot.interval_explanation(method, "zh")
    assert "90%" in pilot.interval_explanation("welch", "en", alpha=0.10)


def test_expected_shares_segments_with_clusters_and_wrapped_errors(clustered):
    frame = clustered[0]
    counts = frame["arm"].value_counts()
    shares = {"treatment": counts["treatment"], "control": counts["control"]}
    result = pilot.evaluate_experiment(frame, "arm", "control", ["loan_converted"],
                                       expected_shares=shares)
    assert result.summary["srm_p_value"] == pytest.approx(1.0)
    table = pilot.effects_by_segment(frame, "tier", "arm", "deposit_change",
                                     cluster_col="rm_id")
    assert set(table["method"]) == {"ols_cluster"}
    assert table["p_adjusted"].notna().all()
    empty = frame.assign(loan_converted=frame["loan_converted"].where(frame["arm"] == "control"))
    with pytest.raises(InputError) as err:
        pilot.evaluate_experiment(empty, "arm", "control", ["loan_converted"])
    assert str(err.value).startswith("cannot compare arm 'treatment' with control: arm")
    assert str(err.value).count("(column") == 1


def test_did_clustered_by_branch_matches_statsmodels():
    # branches chosen (not randomised): 8 branches, 4 treated, 10 customers each, pre and post
    rng = np.random.default_rng(11)
    branch = np.repeat([f"B{i}" for i in range(8)], 10)
    treated = np.repeat([1, 1, 1, 1, 0, 0, 0, 0], 10)
    unit = [f"c{i}" for i in range(80)]
    branch_shock = np.repeat(rng.normal(0, 2, 8), 10)
    base = rng.normal(50, 5, 80) + branch_shock
    panel = pd.DataFrame({"unit": unit * 2, "branch": list(branch) * 2, "treated": list(treated) * 2,
                          "post": [0] * 80 + [1] * 80,
                          "y": np.concatenate([base, base + 1 + 3 * treated + rng.normal(0, 2, 80)])})
    est = pilot.did_effect(panel, "unit", "post", "treated", "y", cluster="branch")
    y = panel["y"].to_numpy(float)
    t, p = panel["treated"].to_numpy(float), panel["post"].to_numpy(float)
    X = np.column_stack([np.ones(len(y)), t, p, t * p])
    fit = OLS(y, X).fit(cov_type="cluster-crv3",
                        cov_kwds={"groups": pd.factorize(panel["branch"])[0]}, use_t=True)
    assert abs(est.effect - fit.params[3]) < TOL
    assert abs(est.std_error - fit.bse[3]) < TOL
    assert abs(est.ci_low - fit.conf_int()[3][0]) < TOL and abs(est.ci_high - fit.conf_int()[3][1]) < TOL
    assert abs(est.p_value - fit.pvalues[3]) < TOL
    assert est.se_type and est.n_treatment == 40 and est.n_control == 40
    # the point estimate does not depend on how errors are clustered
    naive = pilot.did_effect(panel, "unit", "post", "treated", "y")
    assert naive.effect == pytest.approx(est.effect)
