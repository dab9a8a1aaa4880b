"""Pilot A/B design and evaluation: power, randomisation, effect estimates, SRM, report.

Sections: design (sample size, MDE) · randomisation (stratified, clustered, balance) ·
estimators (proportions, Welch, CUPED, regression, DiD, IV, segments) · the multi-arm
experiment table · `run_evaluate_pilot` behind `playbook evaluate-pilot`.

Conventions used throughout:
- effect = treatment minus control, in the outcome's units (a proportion difference for
  binary outcomes, so 0.024 is 2.4 percentage points).
- relative_lift = effect / control mean (= mean_t / mean_c - 1 for unadjusted methods), with
  a delta-method interval.
- intervals are two-sided at level 1 - alpha.
"""

from __future__ import annotations

import html
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
    test_proportions_2indep,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from analysis.errors import InputError

TREATMENT = "treatment"
CONTROL = "control"
# An SRM p-value this small is treated as a broken assignment or extract, not chance.
SRM_ALPHA = 0.001

RESULT_COLUMNS = [
    "arm", "outcome", "n_treatment", "n_control", "mean_treatment", "mean_control",
    "effect", "ci_low", "ci_high", "p_value", "relative_lift", "relative_ci_low",
    "relative_ci_high", "method",
]

Method = Literal["diff_proportions", "welch", "ols_adjusted", "ols_cluster", "cuped",
                 "did_ols_cluster", "iv_2sls"]
# Cluster-robust covariance: 'crv3' (statsmodels cov_type='cluster-crv3', the leave-one-
# cluster-out jackknife) is the default because pilots have 10-50 RMs, where CR1 ('crv1',
# cov_type='cluster') intervals measurably under-cover (about 93% at 20 clusters, 94% at 40,
# in tests/test_pilot_coverage.py's design; CR3 about 95%).
ClusterSE = Literal["crv3", "crv1"]


# ---------------------------------------------------------------------------------------
# Results that travel
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SampleSize:
    """Customers needed per arm (already inflated by the design effect)."""

    n_treatment: int
    n_control: int
    effect_size: float  # standardised: Cohen's h for proportions, d for means
    design_effect: float
    alpha: float
    power: float

    @property
    def total(self) -> int:
        return self.n_treatment + self.n_control


@dataclass(frozen=True)
class EffectEstimate:
    """One treatment-vs-control comparison of one outcome."""

    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    relative_lift: float
    relative_ci_low: float
    relative_ci_high: float
    method: str
    n_treatment: int
    n_control: int
    mean_treatment: float
    mean_control: float
    std_error: float
    alpha: float = 0.05
    se_type: str = ""  # 'wald', 'welch', 'HC2', 'CR3', 'CR1'

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ComplierEffect:
    """Effect on customers actually contacted (IV / complier average causal effect)."""

    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    std_error: float
    itt: float  # outcome difference assigned minus control
    contact_rate_treatment: float
    contact_rate_control: float
    first_stage: float  # contact-rate difference
    n: int
    method: str = "iv_2sls"
    alpha: float = 0.05

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ExperimentResult:
    """`results`: one row per non-control arm × outcome (RESULT_COLUMNS); `summary`: JSON-able."""

    results: pd.DataFrame
    summary: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# Design: sample size and minimum detectable effect
# ---------------------------------------------------------------------------------------

def design_effect(cluster_size: float = 1.0, icc: float = 0.0) -> float:
    """Variance inflation of cluster randomisation: 1 + (m - 1) * ICC for mean cluster size m."""
    if cluster_size < 1:
        raise InputError("cluster_size must be at least 1",
                         fix="pass the mean number of customers per cluster")
    if not 0 <= icc < 1:
        raise InputError("icc must be in [0, 1)", fix="typical marketing ICCs are 0.01-0.10")
    return 1.0 + (cluster_size - 1.0) * icc


def _check_alpha_power(alpha: float, power: float) -> None:
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be between 0 and 1, got {alpha}", fix="use e.g. 0.05")
    if not 0 < power < 1:
        raise InputError(f"power must be between 0 and 1, got {power}", fix="use e.g. 0.8")


def sample_size_proportions(p_control: float, mde_abs: float, alpha: float = 0.05,
                            power: float = 0.8, ratio: float = 1.0, cluster_size: float = 1.0,
                            icc: float = 0.0) -> SampleSize:
    """Customers per arm to detect an absolute change `mde_abs` of a conversion rate.

    Two-sided normal test on Cohen's h (statsmodels NormalIndPower). `ratio` is
    n_control / n_treatment, as in statsmodels. With clusters, n is multiplied by the
    design effect 1 + (cluster_size - 1) * icc.
    """
    _check_alpha_power(alpha, power)
    p_treat = p_control + mde_abs
    if not 0 < p_control < 1 or not 0 < p_treat < 1 or mde_abs == 0:
        raise InputError("p_control and p_control + mde_abs must lie strictly between 0 and 1, "
                         "and mde_abs must not be 0",
                         fix="give rates as decimals, e.g. p_control=0.05, mde_abs=0.02")
    h = float(proportion_effectsize(p_treat, p_control))
    n1 = NormalIndPower().solve_power(effect_size=abs(h), alpha=alpha, power=power, ratio=ratio)
    return _inflate(float(n1), ratio, h, cluster_size, icc, alpha, power)


def sample_size_means(sd: float, mde: float, alpha: float = 0.05, power: float = 0.8,
                      ratio: float = 1.0, cluster_size: float = 1.0,
                      icc: float = 0.0) -> SampleSize:
    """Customers per arm to detect a change `mde` of a mean with outcome standard deviation `sd`.

    Two-sample t-test (statsmodels TTestIndPower) on d = mde / sd.
    """
    _check_alpha_power(alpha, power)
    if sd <= 0 or mde == 0:
        raise InputError("sd must be positive and mde non-zero",
                         fix="estimate sd from last period's outcome")
    d = mde / sd
    n1 = TTestIndPower().solve_power(effect_size=abs(d), alpha=alpha, power=power, ratio=ratio)
    return _inflate(float(n1), ratio, d, cluster_size, icc, alpha, power)


def _inflate(n1: float, ratio: float, es: float, cluster_size: float, icc: float,
             alpha: float, power: float) -> SampleSize:
    deff = design_effect(cluster_size, icc)
    return SampleSize(n_treatment=math.ceil(n1 * deff), n_control=math.ceil(n1 * ratio * deff),
                      effect_size=es, design_effect=deff, alpha=alpha, power=power)


def minimum_detectable_effect(n_treatment: int, n_control: int, p_control: float | None = None,
                              sd: float | None = None, alpha: float = 0.05, power: float = 0.8,
                              cluster_size: float = 1.0, icc: float = 0.0) -> float:
    """Smallest upward absolute effect the given list sizes detect with `power`.

    Give `p_control` for a conversion rate (returns a rate difference, via Cohen's h) or
    `sd` for a continuous outcome (returns outcome units). Cluster randomisation divides
    the effective n by the design effect.
    """
    _check_alpha_power(alpha, power)
    if n_treatment < 2 or n_control < 2:
        raise InputError("each arm needs at least 2 customers", fix="check the list sizes")
    if (p_control is None) == (sd is None):
        raise InputError("give exactly one of p_control (binary) or sd (continuous)")
    deff = design_effect(cluster_size, icc)
    n1 = n_treatment / deff
    ratio = n_control / n_treatment
    if p_control is not None:
        if not 0 < p_control < 1:
            raise InputError("p_control must be strictly between 0 and 1", fix="e.g. 0.05")
        h = NormalIndPower().solve_power(nobs1=n1, alpha=alpha, power=power, ratio=ratio)
        angle = math.asin(math.sqrt(p_control)) + float(h) / 2
        if angle > math.pi / 2:
            return float("nan")  # no achievable rate is that far above p_control
        return math.sin(angle) ** 2 - p_control
    if sd <= 0:
        raise InputError("sd must be positive")
    d = TTestIndPower().solve_power(nobs1=n1, alpha=alpha, power=power, ratio=ratio)
    return float(d) * sd


# ---------------------------------------------------------------------------------------
# Randomisation
# ---------------------------------------------------------------------------------------

def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str = "column") -> None:
    for col in columns:
        if col not in frame.columns:
            shown = ", ".join(map(str, list(frame.columns)[:30]))
            raise InputError(f"{what} '{col}' is not in the table", column=str(col),
                             fix=f"check the spelling; the table has: {shown}")


def _check_share(treat_share: float) -> None:
    if not 0 < treat_share < 1:
        raise InputError(f"treat_share must be between 0 and 1, got {treat_share}",
                         fix="use e.g. 0.5 for an even split")


def _assign_within_groups(codes: np.ndarray, treat_share: float,
                          rng: np.random.Generator) -> np.ndarray:
    """Boolean treated flag: per group floor(n*share) treated, the fractional unit by lottery."""
    n = len(codes)
    order = np.lexsort((rng.random(n), codes))  # a random permutation inside each group
    sizes = np.bincount(codes)
    target = sizes * treat_share
    n_treat = np.floor(target).astype(int)
    # the leftover unit of a group is treated with the fractional probability, so every
    # customer's chance of treatment is exactly treat_share
    n_treat += rng.random(len(sizes)) < (target - n_treat)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank_sorted = np.arange(n) - starts[codes[order]]
    treated = np.empty(n, dtype=bool)
    treated[order] = rank_sorted < n_treat[codes[order]]
    return treated


def assign_stratified(frame: pd.DataFrame, strata_cols: Sequence[str], treat_share: float = 0.5,
                      *, seed: int, arm_col: str = "arm") -> pd.DataFrame:
    """Randomise customers within strata (e.g. rm_id × tier); returns a copy with `arm_col`.

    Each stratum gets floor(n * treat_share) treated customers, its leftover one treated
    by a seeded lottery. Same frame (same row order) and seed give the same assignment.
    The seed and settings are recorded in `result.attrs['assignment']`.
    """
    strata_cols = [strata_cols] if isinstance(strata_cols, str) else list(strata_cols)
    _require_columns(frame, strata_cols, "stratum column")
    _check_share(treat_share)
    rng = np.random.default_rng(seed)
    codes = (frame.groupby(strata_cols, dropna=False, sort=True).ngroup().to_numpy()
             if strata_cols else np.zeros(len(frame), dtype=int))
    treated = _assign_within_groups(codes, treat_share, rng) if len(frame) else np.array([], bool)
    out = frame.assign(**{arm_col: np.where(treated, TREATMENT, CONTROL)})
    out.attrs["assignment"] = {"method": "stratified", "seed": seed, "strata": strata_cols,
                               "treat_share": treat_share}
    return out


def assign_clustered(frame: pd.DataFrame, cluster_col: str, treat_share: float = 0.5, *,
                     seed: int, strata_col: str | None = None,
                     arm_col: str = "arm") -> pd.DataFrame:
    """Randomise whole clusters (e.g. all customers of an RM), optionally within cluster strata.

    Every cluster must sit in one stratum (e.g. RM within branch). Returns a copy with
    `arm_col`; seed and settings in `result.attrs['assignment']`.
    """
    _require_columns(frame, [cluster_col] + ([strata_col] if strata_col else []))
    _check_share(treat_share)
    if frame[cluster_col].isna().any():
        row = int(np.flatnonzero(frame[cluster_col].isna().to_numpy())[0])
        raise InputError("cluster is missing, so the customer cannot be assigned", row=row,
                         column=cluster_col, fix="fill the cluster (e.g. RM id) or drop the row")
    # clusters in sorted order, so the assignment does not depend on the row order
    cluster_codes, cluster_names = pd.factorize(frame[cluster_col], sort=True)
    if strata_col:
        strata_codes = pd.factorize(frame[strata_col], sort=True)[0] + 1  # 0 = missing stratum
        pairs = np.unique(np.column_stack([cluster_codes, strata_codes]), axis=0)
        if len(pairs) != len(cluster_names):
            bad = cluster_names[pairs[np.flatnonzero(np.diff(pairs[:, 0]) == 0)[0], 0]]
            raise InputError(f"cluster {bad!r} appears in more than one stratum",
                             column=strata_col,
                             fix="strata must be at cluster level (e.g. branch of the RM)")
        cluster_strata = pairs[:, 1]
    else:
        cluster_strata = np.zeros(len(cluster_names), dtype=int)
    rng = np.random.default_rng(seed)
    treated = _assign_within_groups(cluster_strata, treat_share, rng)
    out = frame.assign(**{arm_col: np.where(treated[cluster_codes], TREATMENT, CONTROL)})
    out.attrs["assignment"] = {"method": "clustered", "seed": seed, "cluster": cluster_col,
                               "strata": strata_col, "treat_share": treat_share}
    return out


def _covariate_frame(frame: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """Numeric covariates as float; categorical ones as 0/1 indicators named 'col=level'."""
    parts = []
    for col in covariates:
        s = frame[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            parts.append(s.astype(float).rename(str(col)))
        else:
            dummies = pd.get_dummies(s.astype(str), prefix=str(col), prefix_sep="=",
                                     dtype=float, drop_first=True)
            parts.append(dummies)
    if not parts:
        return pd.DataFrame(index=frame.index)
    return pd.concat(parts, axis=1)


def balance_table(frame: pd.DataFrame, arm_col: str, covariates: Sequence[str],
                  control_value: object = CONTROL) -> pd.DataFrame:
    """Pre-pilot covariate means per arm, standardised mean difference and Welch p-value.

    SMD = (mean_t - mean_c) / sqrt((var_t + var_c) / 2); |SMD| > 0.1 is the usual flag.
    Categorical covariates appear as one row per level (share of customers).
    """
    _require_columns(frame, [arm_col, *covariates])
    labels = _arm_labels(frame[arm_col])
    control = _match_control(labels, control_value, arm_col)
    rows = []
    for col in covariates:
        s = frame[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            indicators = s.astype(float).rename(str(col)).to_frame()
        else:
            indicators = pd.get_dummies(s.astype(str), prefix=str(col), prefix_sep="=",
                                        dtype=float)
            indicators.loc[s.isna().to_numpy(), :] = np.nan
        for name in indicators.columns:
            x = indicators[name]
            xc = x[(labels == control).to_numpy()].dropna().to_numpy()
            for arm in _treatment_arms(labels, control):
                xt = x[(labels == arm).to_numpy()].dropna().to_numpy()
                pooled_sd = math.sqrt((_var(xt) + _var(xc)) / 2)
                diff = _mean(xt) - _mean(xc)
                smd = diff / pooled_sd if pooled_sd > 0 else (0.0 if diff == 0 else float("inf"))
                if len(xt) > 1 and len(xc) > 1 and pooled_sd > 0:
                    with warnings.catch_warnings():  # one constant arm is fine for Welch
                        warnings.simplefilter("ignore", RuntimeWarning)
                        p = float(stats.ttest_ind(xt, xc, equal_var=False).pvalue)
                else:
                    p = float("nan")
                rows.append({"covariate": name, "arm": arm, "n_treatment": len(xt),
                             "n_control": len(xc), "mean_treatment": _mean(xt),
                             "mean_control": _mean(xc), "smd": smd, "p_value": p})
    return pd.DataFrame(rows, columns=["covariate", "arm", "n_treatment", "n_control",
                                       "mean_treatment", "mean_control", "smd", "p_value"])


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


def _var(x: np.ndarray) -> float:
    return float(np.var(x, ddof=1)) if len(x) > 1 else float("nan")


# ---------------------------------------------------------------------------------------
# Sample ratio mismatch
# ---------------------------------------------------------------------------------------

def srm_test(counts_observed: Sequence[float] | Mapping[str, float],
             expected_shares: Sequence[float] | Mapping[str, float] | None = None) -> float:
    """P-value of Pearson's χ² test that arm sizes follow the planned shares (scipy chisquare).

    Mappings are matched by arm; shares are normalised to sum to 1; default equal shares.
    A p-value below SRM_ALPHA (0.001) means the assignment or the extract is broken.
    """
    if isinstance(counts_observed, Mapping):
        arms = list(counts_observed)
        observed = np.array([counts_observed[a] for a in arms], dtype=float)
        if isinstance(expected_shares, Mapping):
            missing = [a for a in arms if a not in expected_shares]
            if missing:
                raise InputError(f"no expected share for arm {missing[0]!r}",
                                 fix="give a share for every arm")
            expected_shares = [expected_shares[a] for a in arms]
    else:
        observed = np.asarray(counts_observed, dtype=float)
    if len(observed) < 2:
        raise InputError("the sample ratio test needs at least two arms")
    shares = (np.full(len(observed), 1.0 / len(observed)) if expected_shares is None
              else np.asarray(expected_shares, dtype=float))
    if len(shares) != len(observed) or (shares <= 0).any():
        raise InputError("expected shares must be positive, one per arm")
    expected = shares / shares.sum() * observed.sum()
    return float(stats.chisquare(observed, expected).pvalue)


# ---------------------------------------------------------------------------------------
# Estimators
# ---------------------------------------------------------------------------------------

def _ratio_interval(num: float, den: float, var_num: float, var_den: float, cov: float,
                    crit: float) -> tuple[float, float, float]:
    """num/den - 1 with a delta-method interval; (nan, nan, nan) when den is 0."""
    if den == 0 or not np.isfinite(den):
        return float("nan"), float("nan"), float("nan")
    r = num / den
    var = var_num / den**2 + num**2 * var_den / den**4 - 2 * num * cov / den**3
    se = math.sqrt(max(var, 0.0))
    return r - 1, r - 1 - crit * se, r - 1 + crit * se


def relative_lift_delta(mean_treatment: float, mean_control: float, var_mean_treatment: float,
                        var_mean_control: float, alpha: float = 0.05,
                        crit: float | None = None) -> tuple[float, float, float]:
    """mean_t / mean_c - 1 and its delta-method interval for two independent means.

    Var(r) ≈ Var(m_t)/m_c² + m_t²·Var(m_c)/m_c⁴; interval r ± z·sd (z normal unless `crit`).
    """
    crit = stats.norm.ppf(1 - alpha / 2) if crit is None else crit
    return _ratio_interval(mean_treatment, mean_control, var_mean_treatment, var_mean_control,
                           0.0, crit)


def _clean(values, name: str) -> np.ndarray:
    arr = np.asarray(pd.Series(values).astype(float), dtype=float)
    if np.isnan(arr).any():
        raise InputError(f"{name} contains missing values", fix="drop or fill them first; "
                         "evaluate_experiment counts and reports them for you")
    return arr


def evaluate_binary(treatment, control, alpha: float = 0.05) -> EffectEstimate:
    """Difference in conversion rates: unpooled Wald interval and unpooled Wald z-test.

    Uses statsmodels confint_proportions_2indep(method='wald') and
    test_proportions_2indep(method='wald'). Both use each arm's own variance
    p(1-p)/n, so the test rejects at alpha exactly when the interval excludes 0
    (the pooled proportions_ztest would not always agree with the interval).
    """
    t, c = _clean(treatment, "treatment"), _clean(control, "control")
    for arr, name in ((t, "treatment"), (c, "control")):
        if len(arr) == 0:
            raise InputError(f"the {name} arm has no customers")
        if not np.isin(arr, (0.0, 1.0)).all():
            raise InputError(f"{name} outcome is not 0/1", fix="use evaluate_continuous")
    x1, n1, x0, n0 = t.sum(), len(t), c.sum(), len(c)
    p1, p0 = x1 / n1, x0 / n0
    effect = p1 - p0
    var1, var0 = p1 * (1 - p1) / n1, p0 * (1 - p0) / n0
    se = math.sqrt(var1 + var0)
    z = stats.norm.ppf(1 - alpha / 2)
    if se > 0:
        low, high = confint_proportions_2indep(x1, n1, x0, n0, method="wald", compare="diff",
                                               alpha=alpha)
        with warnings.catch_warnings():  # statsmodels also forms an odds ratio, inf at p = 1
            warnings.simplefilter("ignore", RuntimeWarning)
            p_value = test_proportions_2indep(x1, n1, x0, n0, method="wald",
                                              compare="diff").pvalue
    else:  # both arms all-0 or all-1: no sampling variance to speak of
        low = high = effect
        p_value = float("nan")
    rel = relative_lift_delta(p1, p0, var1, var0, crit=z)
    return EffectEstimate(float(effect), float(low), float(high), float(p_value), *map(float, rel),
                          method="diff_proportions", n_treatment=n1, n_control=n0,
                          mean_treatment=float(p1), mean_control=float(p0), std_error=se,
                          alpha=alpha, se_type="wald")


def evaluate_continuous(treatment, control, alpha: float = 0.05,
                        method: str = "welch") -> EffectEstimate:
    """Difference in means with Welch's unequal-variance t interval and test (statsmodels)."""
    t, c = _clean(treatment, "treatment"), _clean(control, "control")
    if len(t) < 2 or len(c) < 2:
        raise InputError("each arm needs at least 2 customers with the outcome")
    cm = CompareMeans(DescrStatsW(t), DescrStatsW(c))
    effect = float(t.mean() - c.mean())
    var1, var0 = t.var(ddof=1) / len(t), c.var(ddof=1) / len(c)
    se = float(math.sqrt(var1 + var0))
    if se > 0:
        low, high = cm.tconfint_diff(alpha=alpha, usevar="unequal")
        _, p_value, df = cm.ttest_ind(usevar="unequal")
        crit = stats.t.ppf(1 - alpha / 2, df)
    else:
        low = high = effect
        p_value, crit = float("nan"), stats.norm.ppf(1 - alpha / 2)
    rel = relative_lift_delta(t.mean(), c.mean(), var1, var0, crit=crit)
    return EffectEstimate(effect, float(low), float(high), float(p_value), *map(float, rel),
                          method=method, n_treatment=len(t), n_control=len(c),
                          mean_treatment=float(t.mean()), mean_control=float(c.mean()),
                          std_error=se, alpha=alpha, se_type="welch")


def cuped_adjust(y, x_pre) -> pd.Series:
    """CUPED outcome y - θ(x - mean x), θ = cov(y, x) / var(x) on the pooled arms.

    θ is the OLS slope of y on the pre-period metric, so the adjusted outcome keeps the
    mean of y and has variance var(y)·(1 - corr(y, x)²). θ is in `result.attrs['theta']`.
    """
    ys, xs = pd.Series(np.asarray(y, dtype=float)), pd.Series(np.asarray(x_pre, dtype=float))
    if len(ys) != len(xs):
        raise InputError("y and x_pre must have the same length")
    if ys.isna().any() or xs.isna().any():
        raise InputError("CUPED needs y and the pre-period metric on every row",
                         fix="fill the pre-period metric (e.g. 0 for new customers) or drop rows")
    var_x = xs.var(ddof=1)
    theta = float(ys.cov(xs) / var_x) if var_x > 0 else 0.0
    adjusted = ys - theta * (xs - xs.mean())
    if isinstance(y, pd.Series):
        adjusted.index, adjusted.name = y.index, y.name
    adjusted.attrs["theta"] = theta
    return adjusted


def evaluate_cuped(y_treatment, y_control, x_treatment, x_control,
                   alpha: float = 0.05) -> EffectEstimate:
    """Welch comparison of the CUPED-adjusted outcome (θ estimated on both arms pooled)."""
    yt, yc = _clean(y_treatment, "treatment"), _clean(y_control, "control")
    xt, xc = _clean(x_treatment, "treatment pre"), _clean(x_control, "control pre")
    adjusted = cuped_adjust(np.concatenate([yt, yc]), np.concatenate([xt, xc])).to_numpy()
    return evaluate_continuous(adjusted[:len(yt)], adjusted[len(yt):], alpha, method="cuped")


def _fit_ols(y: np.ndarray, X: np.ndarray, groups: np.ndarray | None,
             cluster_se: ClusterSE = "crv3"):
    """OLS with HC2 errors, or cluster-robust errors with t(G-1) inference; (fit, se_type).

    CR3 falls back to CR1 when dropping some cluster leaves the design singular (e.g. a
    covariate level found in one cluster only).
    """
    model = OLS(y, X)
    if groups is None:
        return model.fit(cov_type="HC2", use_t=True), "HC2"
    if cluster_se not in ("crv3", "crv1"):
        raise InputError(f"cluster_se must be 'crv3' or 'crv1', got {cluster_se!r}")
    if len(np.unique(groups)) < 2:
        raise InputError("cluster-robust errors need at least 2 clusters",
                         fix="check the cluster column")
    if cluster_se == "crv3":
        try:
            return model.fit(cov_type="cluster-crv3", cov_kwds={"groups": groups},
                             use_t=True), "CR3"
        except ValueError:
            pass
    return model.fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True), "CR1"


def evaluate_ols(y, treated, covariates: pd.DataFrame | np.ndarray | None = None,
                 groups=None, interactions: bool = False, alpha: float = 0.05,
                 cluster_se: ClusterSE = "crv3") -> EffectEstimate:
    """Treatment coefficient of OLS y ~ 1 + T + centred covariates [+ T × centred covariates].

    Arrays in (treated is 0/1; covariates numeric, one column each). Errors: HC2 (method
    'ols_adjusted') or, with `groups`, cluster-robust with t(G-1) (method 'ols_cluster';
    statsmodels cov_type 'cluster-crv3', or 'cluster' = CR1 with cluster_se='crv1').
    Centring makes the intercept the adjusted control mean, so relative_lift =
    effect / intercept with a delta-method interval from the same covariance matrix.
    """
    y = _clean(y, "outcome")
    treated = _clean(treated, "treatment flag")
    if not np.isin(treated, (0.0, 1.0)).all() or treated.min() == treated.max():
        raise InputError("the treatment flag must be 0/1 with both values present")
    covs = (pd.DataFrame(index=range(len(y))) if covariates is None
            else pd.DataFrame(np.asarray(covariates, dtype=float)))
    if len(covs) != len(y) or (groups is not None and len(groups) != len(y)):
        raise InputError("outcome, treatment, covariates and groups must have the same length")
    if covs.isna().any().any():
        raise InputError("covariates contain missing values", fix="drop or fill them first")
    if groups is not None:
        groups = pd.factorize(np.asarray(groups))[0]
        if (groups < 0).any():
            raise InputError("groups contain missing values", fix="drop or fill them first")
    return _regression_estimate(y, treated, covs, groups, interactions, alpha,
                                "ols_cluster" if groups is not None else "ols_adjusted",
                                cluster_se)


def _regression_estimate(y: np.ndarray, treated: np.ndarray, covs: pd.DataFrame,
                         groups: np.ndarray | None, interactions: bool, alpha: float,
                         method: str, cluster_se: ClusterSE = "crv3") -> EffectEstimate:
    """Fit behind evaluate_ols, on already validated arrays."""
    cov_values = covs.to_numpy(dtype=float)
    if cov_values.shape[1]:
        keep = cov_values.std(axis=0) > 0  # a constant covariate carries no information
        cov_values = cov_values[:, keep] - cov_values[:, keep].mean(axis=0)
    cols = [np.ones(len(y)), treated.astype(float), *cov_values.T]
    if interactions:
        cols += [treated * v for v in cov_values.T]
    res, se_type = _fit_ols(y, np.column_stack(cols), groups, cluster_se)
    params, cov = np.asarray(res.params), np.asarray(res.cov_params())
    low, high = np.asarray(res.conf_int(alpha=alpha))[1]
    crit = (stats.t.ppf(1 - alpha / 2, res.df_resid_inference)
            if getattr(res, "df_resid_inference", None) else stats.t.ppf(1 - alpha / 2,
                                                                         res.df_resid))
    # centred covariates make the intercept the (adjusted) control mean
    rel = _ratio_interval(params[0] + params[1], params[0],
                          cov[0, 0] + cov[1, 1] + 2 * cov[0, 1], cov[0, 0], cov[0, 0] + cov[0, 1],
                          crit)
    t_mask = treated == 1
    return EffectEstimate(float(params[1]), float(low), float(high), float(res.pvalues[1]),
                          *map(float, rel), method=method, n_treatment=int(t_mask.sum()),
                          n_control=int((~t_mask).sum()), mean_treatment=float(y[t_mask].mean()),
                          mean_control=float(y[~t_mask].mean()),
                          std_error=float(res.bse[1]), alpha=alpha, se_type=se_type)


def evaluate_regression(frame: pd.DataFrame, arm_col: str, treatment_value: object,
                        control_value: object, outcome: str, covariates: Sequence[str] = (),
                        cluster_col: str | None = None, interactions: bool = False,
                        alpha: float = 0.05, cluster_se: ClusterSE = "crv3") -> EffectEstimate:
    """Regression-adjusted effect: OLS of y on treatment + centred covariates.

    Errors are HC2 (method 'ols_adjusted') or, with `cluster_col`, cluster-robust with
    t(G-1) inference (method 'ols_cluster'; CR3 by default, CR1 with cluster_se='crv1').
    `interactions=True` adds treatment × centred covariate terms (Lin 2013). relative_lift
    is effect / adjusted control mean (the intercept), with a delta-method interval from the
    same covariance matrix.
    """
    cols = [arm_col, outcome, *covariates] + ([cluster_col] if cluster_col else [])
    _require_columns(frame, cols)
    labels = _arm_labels(frame[arm_col])
    control = _match_control(labels, control_value, arm_col)
    treat = _match_control(labels, treatment_value, arm_col)
    sub = frame.loc[labels.isin([control, treat]).to_numpy(), cols]
    if sub.isna().any().any():
        bad = sub.columns[sub.isna().any()].tolist()[0]
        raise InputError("missing values in the regression's columns", column=bad,
                         fix="drop or fill them; evaluate_experiment counts them for you")
    y = _numeric_outcome(sub[outcome], outcome)
    treated = (_arm_labels(sub[arm_col]) == treat).to_numpy().astype(float)
    groups = pd.factorize(sub[cluster_col])[0] if cluster_col else None
    return _regression_estimate(y, treated, _covariate_frame(sub, covariates), groups,
                                interactions, alpha,
                                "ols_cluster" if cluster_col else "ols_adjusted", cluster_se)


def did_effect(panel: pd.DataFrame, unit: str, period_post_col: str, treated_col: str,
               outcome: str, cluster: str | None = None, alpha: float = 0.05,
               cluster_se: ClusterSE = "crv3") -> EffectEstimate:
    """Difference-in-differences from the 2×2 OLS y ~ 1 + treated + post + treated×post.

    Errors are clustered by `cluster` (default: the unit, so a customer's pre and post rows
    are not treated as independent), CR3 (or CR1) with t(G-1). In a balanced two-period panel the
    point estimate equals the unit and period fixed-effects estimate.
    mean_treatment / mean_control are the post-period means; relative_lift is the effect over
    the treated group's counterfactual post mean.
    """
    cluster = cluster or unit
    cols = list(dict.fromkeys([unit, period_post_col, treated_col, outcome, cluster]))
    _require_columns(panel, cols)
    sub = panel[cols]
    if sub.isna().any().any():
        bad = sub.columns[sub.isna().any()].tolist()[0]
        raise InputError("missing values in the panel", column=bad, fix="drop or fill them")
    post = _binary_flag(sub[period_post_col], period_post_col)
    treated = _binary_flag(sub[treated_col], treated_col)
    y = _numeric_outcome(sub[outcome], outcome)
    X = np.column_stack([np.ones(len(y)), treated, post, treated * post])
    res, se_type = _fit_ols(y, X, pd.factorize(sub[cluster])[0], cluster_se)
    b, V = np.asarray(res.params), np.asarray(res.cov_params())
    low, high = np.asarray(res.conf_int(alpha=alpha))[3]
    crit = stats.t.ppf(1 - alpha / 2, res.df_resid_inference)
    # counterfactual treated post mean = b0 + b1 + b2
    g_den = np.array([1.0, 1.0, 1.0, 0.0])
    g_num = g_den + np.array([0.0, 0.0, 0.0, 1.0])
    rel = _ratio_interval(float(g_num @ b), float(g_den @ b), float(g_num @ V @ g_num),
                          float(g_den @ V @ g_den), float(g_num @ V @ g_den), crit)
    is_t, is_post = treated == 1, post == 1
    return EffectEstimate(float(b[3]), float(low), float(high), float(res.pvalues[3]),
                          *map(float, rel), method="did_ols_cluster",
                          n_treatment=int(sub.loc[is_t, unit].nunique()),
                          n_control=int(sub.loc[~is_t, unit].nunique()),
                          mean_treatment=float(y[is_t & is_post].mean()),
                          mean_control=float(y[~is_t & is_post].mean()),
                          std_error=float(res.bse[3]), alpha=alpha, se_type=se_type)


def iv_2sls(y: np.ndarray, d: np.ndarray, z: np.ndarray,
            groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Just-identified 2SLS of y on [1, d] instrumented by [1, z]; (params, robust covariance).

    β = (Z'X)⁻¹Z'y; covariance (Z'X)⁻¹ M (X'Z)⁻¹ with M = Σ u²·z z' (HC0, as Stata's
    ivregress robust) or, with groups, Σ_g (Z_g'u_g)(Z_g'u_g)' · G/(G-1) · (N-1)/(N-K) (CR1).
    """
    n = len(y)
    Z = np.column_stack([np.ones(n), z])
    X = np.column_stack([np.ones(n), d])
    bread = np.linalg.inv(Z.T @ X)
    params = bread @ (Z.T @ y)
    u = y - X @ params
    scores = Z * u[:, None]
    if groups is None:
        meat = scores.T @ scores
    else:
        codes = pd.factorize(groups)[0]
        g = codes.max() + 1
        sums = np.column_stack([np.bincount(codes, weights=scores[:, j], minlength=g)
                                for j in range(scores.shape[1])])
        meat = sums.T @ sums * (g / (g - 1)) * ((n - 1) / (n - X.shape[1]))
    return params, bread @ meat @ bread.T


def contacted_effect(frame: pd.DataFrame, assigned: str, contacted: str, outcome: str,
                     treatment_value: object | None = None, cluster: str | None = None,
                     alpha: float = 0.05) -> ComplierEffect:
    """Effect on customers the RM actually contacted: ITT / contact-rate difference (IV).

    Assignment instruments contact (2SLS, `iv_2sls`), so the estimate is the average effect
    among customers who were contacted because they were assigned (compliers). It assumes
    assignment changes the outcome only through contact. `assigned` is 0/1 (or the arm
    column with `treatment_value` naming the treated arm). Robust HC0 errors with a normal
    interval, or CR1 by `cluster` with t(G-1).
    """
    cols = list(dict.fromkeys([assigned, contacted, outcome] + ([cluster] if cluster else [])))
    _require_columns(frame, cols)
    sub = frame[cols]
    if sub.isna().any().any():
        bad = sub.columns[sub.isna().any()].tolist()[0]
        raise InputError("missing values in the complier analysis", column=bad,
                         fix="fill contacted with 0 for customers nobody contacted (including "
                             "the control group); drop rows without an outcome")
    if treatment_value is None:
        z = _binary_flag(sub[assigned], assigned)
    else:
        labels = _arm_labels(sub[assigned])
        z = (labels == _match_control(labels, treatment_value, assigned)).to_numpy().astype(float)
    d = _binary_flag(sub[contacted], contacted)
    y = _numeric_outcome(sub[outcome], outcome)
    rate_t, rate_c = d[z == 1].mean(), d[z == 0].mean()
    if rate_t - rate_c == 0 or not (z == 1).any() or not (z == 0).any():
        raise InputError("contact rates do not differ between assigned and control customers, "
                         "so the contacted effect is not identified", column=contacted,
                         fix="check the contacted flag; it should be 1 for worked customers")
    groups = sub[cluster].to_numpy() if cluster else None
    params, V = iv_2sls(y, d, z, groups)
    se = math.sqrt(V[1, 1])
    if groups is None:
        dist = stats.norm
    else:
        dist = stats.t(len(pd.unique(groups)) - 1)
    crit = dist.ppf(1 - alpha / 2)
    p = 2 * dist.sf(abs(params[1] / se)) if se > 0 else float("nan")
    return ComplierEffect(float(params[1]), float(params[1] - crit * se),
                          float(params[1] + crit * se), float(p), se,
                          itt=float(y[z == 1].mean() - y[z == 0].mean()),
                          contact_rate_treatment=float(rate_t), contact_rate_control=float(rate_c),
                          first_stage=float(rate_t - rate_c), n=len(y), alpha=alpha)


def effects_by_segment(frame: pd.DataFrame, segment_col: str, arm_col: str, outcome: str,
                       control_value: object = CONTROL, treatment_value: object | None = None,
                       covariates: Sequence[str] = (), cluster_col: str | None = None,
                       alpha: float = 0.05, cluster_se: ClusterSE = "crv3") -> pd.DataFrame:
    """Effect per segment (e.g. tier) with Benjamini–Hochberg adjusted p (`p_adjusted`).

    Each segment is estimated like evaluate_experiment would; segments lacking an arm get
    NaN and are left out of the adjustment. Rows with a missing outcome are dropped and
    counted in `rows_excluded`.
    """
    _require_columns(frame, [segment_col, arm_col, outcome, *covariates]
                     + ([cluster_col] if cluster_col else []))
    labels = _arm_labels(frame[arm_col])
    control = _match_control(labels, control_value, arm_col)
    if treatment_value is None:
        arms = _treatment_arms(labels, control)
        if len(arms) != 1:
            raise InputError("several treatment arms: say which one", column=arm_col,
                             fix=f"pass treatment_value, one of {arms}")
        treat = arms[0]
    else:
        treat = _match_control(labels, treatment_value, arm_col)
    is_binary = _is_binary(_numeric_series(frame[outcome], outcome))
    rows = []
    for segment, part in frame.groupby(segment_col, sort=True):
        part_labels = _arm_labels(part[arm_col])
        keep = part_labels.isin([control, treat]).to_numpy()
        need = [outcome, *covariates] + ([cluster_col] if cluster_col else [])
        complete = keep & part[need].notna().all(axis=1).to_numpy()
        row = {"segment": segment, "rows_excluded": int(keep.sum() - complete.sum())}
        try:
            est = _estimate(part.loc[complete], part_labels[complete], treat, outcome,
                            is_binary, covariates, cluster_col, alpha, cluster_se)
            row.update({k: getattr(est, k) for k in RESULT_COLUMNS if hasattr(est, k)})
        except (InputError, ValueError, np.linalg.LinAlgError):
            row.update({"effect": float("nan"), "p_value": float("nan")})
        rows.append(row)
    out = pd.DataFrame(rows)
    out["p_adjusted"] = np.nan
    ok = out["p_value"].notna().to_numpy()
    if ok.any():
        out.loc[ok, "p_adjusted"] = multipletests(out.loc[ok, "p_value"], alpha=alpha,
                                                  method="fdr_bh")[1]
    order = ["segment", "n_treatment", "n_control", "mean_treatment", "mean_control", "effect",
             "ci_low", "ci_high", "p_value", "p_adjusted", "relative_lift", "method",
             "rows_excluded"]
    return out.reindex(columns=order)


# ---------------------------------------------------------------------------------------
# Input checks shared by the estimators and the experiment table
# ---------------------------------------------------------------------------------------

def _arm_labels(series: pd.Series) -> pd.Series:
    """Arm values as strings; integer-valued numbers print without '.0' (csv reads 1 as 1.0)."""
    missing = series.isna().to_numpy()
    text = series.astype(str).to_numpy(dtype=object)
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        finite = values[~missing]
        if len(finite) and np.all(finite == np.round(finite)):
            text = np.where(missing, 0, values).astype(np.int64).astype(str).astype(object)
    text[missing] = None
    return pd.Series(text, index=series.index, dtype="object")


def _label_of(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _match_control(labels: pd.Series, value: object, column: str) -> str:
    label = _label_of(value)
    present = sorted({v for v in labels.dropna().unique()})
    if label not in present:
        raise InputError(f"arm value {value!r} does not occur in the arm column", column=column,
                         fix=f"use one of: {', '.join(present[:20])}")
    return label


def _treatment_arms(labels: pd.Series, control: str) -> list[str]:
    return sorted(v for v in labels.dropna().unique() if v != control)


def _numeric_series(series: pd.Series, column: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        return series.astype(float)
    if pd.api.types.is_numeric_dtype(series):
        return series.astype(float)
    non_null = series.dropna()
    if len(non_null) and non_null.map(lambda v: isinstance(v, (bool, np.bool_))).all():
        return series.map(lambda v: np.nan if pd.isna(v) else float(v))
    example = non_null.iloc[0] if len(non_null) else None
    raise InputError(f"outcome column is not numeric (e.g. value {example!r})", column=column,
                     fix="use 0/1 for conversions and numbers (元) for amounts; remove text "
                         "such as units or thousands separators")


def _numeric_outcome(series: pd.Series, column: str) -> np.ndarray:
    return _numeric_series(series, column).to_numpy(dtype=float)


def _binary_flag(series: pd.Series, column: str) -> np.ndarray:
    values = _numeric_outcome(series, column)
    if not np.isin(values, (0.0, 1.0)).all():
        raise InputError("column must be 0/1 (or true/false)", column=column,
                         fix="code the flag as 1 = yes, 0 = no")
    return values


def _is_binary(values: pd.Series) -> bool:
    non_null = values.dropna()
    return bool(len(non_null)) and bool(non_null.isin([0.0, 1.0]).all())


def _estimate(sub: pd.DataFrame, labels: pd.Series, treat: str, outcome: str, is_binary: bool,
              covariates: Sequence[str], cluster_col: str | None, alpha: float,
              cluster_se: ClusterSE = "crv3") -> EffectEstimate:
    """Pick the estimator: clusters → ols_cluster; covariates → ols_adjusted; else plain."""
    y = _numeric_outcome(sub[outcome], outcome)
    treated = (labels == treat).to_numpy()
    if treated.all() or not treated.any():
        missing_arm = CONTROL if treated.all() else treat
        raise InputError(f"arm {missing_arm!r} has no rows with this outcome", column=outcome,
                         fix="check the outcome column for that arm")
    if cluster_col or covariates:
        groups = pd.factorize(sub[cluster_col])[0] if cluster_col else None
        return _regression_estimate(y, treated.astype(float), _covariate_frame(sub, covariates),
                                    groups, False, alpha,
                                    "ols_cluster" if cluster_col else "ols_adjusted", cluster_se)
    if is_binary:
        return evaluate_binary(y[treated], y[~treated], alpha)
    return evaluate_continuous(y[treated], y[~treated], alpha)


# ---------------------------------------------------------------------------------------
# The experiment table
# ---------------------------------------------------------------------------------------

def evaluate_experiment(frame: pd.DataFrame, arm_col: str, control_value: object,
                        outcomes: Sequence[str], covariates: Sequence[str] = (),
                        cluster_col: str | None = None, alpha: float = 0.05,
                        expected_shares: Mapping[str, float] | None = None,
                        cluster_se: ClusterSE = "crv3") -> ExperimentResult:
    """Every non-control arm against control on every outcome, plus an SRM check.

    Method per row: 'ols_cluster' with a cluster column, else 'ols_adjusted' with
    covariates, else 'diff_proportions' for 0/1 outcomes and 'welch' otherwise. Rows with
    a missing arm, covariate, cluster or outcome are left out of that comparison and
    counted in summary['rows_excluded'] with the reason. The SRM test counts clusters
    when whole clusters were assigned, customers otherwise; equal shares unless
    `expected_shares` (arm → share) is given.
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError("the experiment table must be a DataFrame")
    outcomes = [outcomes] if isinstance(outcomes, str) else list(outcomes)
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    if not outcomes:
        raise InputError("no outcome given", fix="name at least one outcome column")
    _require_columns(frame, [arm_col], "arm column")
    _require_columns(frame, outcomes, "outcome column")
    _require_columns(frame, covariates, "covariate column")
    if cluster_col:
        _require_columns(frame, [cluster_col], "cluster column")
    for col in outcomes:
        if col == arm_col or col in covariates or col == cluster_col:
            raise InputError("an outcome cannot also be the arm, a covariate or the cluster",
                             column=col, fix="name each column in one role only")
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be between 0 and 1, got {alpha}")

    labels = _arm_labels(frame[arm_col])
    control = _match_control(labels, control_value, arm_col)
    arms = _treatment_arms(labels, control)
    if not arms:
        raise InputError("only the control arm occurs in the arm column", column=arm_col,
                         fix="the table must contain treated customers too")
    values = {col: _numeric_series(frame[col], col) for col in outcomes}

    excluded: list[dict] = []

    def count(mask: np.ndarray, reason: str, column: str, outcome: str | None = None) -> None:
        if mask.any():
            by_arm = labels[mask].fillna("(missing)").value_counts().sort_index()
            excluded.append({"outcome": outcome, "reason": reason, "column": column,
                             "rows": int(mask.sum()),
                             "by_arm": {str(k): int(v) for k, v in by_arm.items()}})

    base_ok = labels.notna().to_numpy().copy()
    count(~base_ok, "arm_missing", arm_col)
    for col in covariates:
        miss = base_ok & frame[col].isna().to_numpy()
        count(miss, "covariate_missing", col)
        base_ok &= ~miss
    if cluster_col:
        miss = base_ok & frame[cluster_col].isna().to_numpy()
        count(miss, "cluster_missing", cluster_col)
        base_ok &= ~miss

    notes: list[dict] = []

    def note(code: str, en: str, zh: str) -> None:
        notes.append({"code": code, "en": en, "zh": zh})

    se_types: dict[str, str] = {}
    rows = []
    for col in outcomes:
        y = values[col]
        miss = base_ok & y.isna().to_numpy()
        count(miss, "outcome_missing", col, col)
        ok = base_ok & ~miss
        if not ok.any():
            raise InputError("no row has this outcome", column=col, fix="check the column")
        is_binary = _is_binary(y[ok])
        differential = _differential_missing(labels[base_ok], miss[base_ok])
        if differential is not None and differential < 0.01:
            note("differential_missing",
                 f"{col}: the share of missing outcomes differs between arms "
                 f"(p = {differential:.2g}); effects may be biased by who is missing.",
                 f"{col}：各组结果缺失的比例不同（p = {differential:.2g}），"
                 "效果估计可能因缺失而有偏。")
        for arm in arms:
            in_pair = ok & labels.isin([control, arm]).to_numpy()
            sub = frame.loc[in_pair]
            try:
                est = _estimate(sub.assign(**{col: y[in_pair]}), labels[in_pair], arm, col,
                                is_binary, covariates, cluster_col, alpha, cluster_se)
            except InputError as err:
                raise InputError(f"cannot compare arm {arm!r} with control: {_bare_message(err)}",
                                 column=col, fix=err.fix) from err
            rows.append({"arm": arm, "outcome": col, **{k: getattr(est, k)
                                                        for k in RESULT_COLUMNS[2:]}})
            se_types[f"{arm}/{col}"] = est.se_type
            if cluster_col and est.se_type == "CR1" and cluster_se == "crv3":
                note("cr1_fallback",
                     f"{arm}/{col}: leaving one cluster out made the regression singular, so "
                     "CR1 cluster-robust errors were used instead of CR3.",
                     f"{arm}/{col}：去掉某一聚类后回归不可估，"
                     "因此改用CR1聚类稳健标准误（而非CR3）。")
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)

    srm_unit, srm_counts = _srm_counts(frame, labels, cluster_col)
    if expected_shares is not None:
        shares = {_label_of(k): float(v) for k, v in expected_shares.items()}
    else:
        shares = {a: 1.0 / len(srm_counts) for a in srm_counts}
    srm_p = srm_test(srm_counts, shares)
    if srm_p < SRM_ALPHA:
        note("srm", f"Sample ratio mismatch (p = {srm_p:.2g}): arm sizes are not what the "
             "assignment planned; check assignment and extraction before using effects.",
             f"样本比例失衡（p = {srm_p:.2g}）：各组样本量与分组计划不符，"
             "使用效果估计前请核查分组和数据提取。")
    if len(arms) > 1:
        note("multiple_arms", "Several treatment arms: p-values are per comparison, not "
             "adjusted for multiple comparisons.",
             "存在多个处理组：p值按每组比较分别计算，未做多重比较校正。")
    if cluster_col:
        n_clusters = int(frame.loc[base_ok, cluster_col].nunique())
        if n_clusters < 20:
            note("few_clusters",
                 f"Only {n_clusters} clusters: cluster-robust intervals are approximate with "
                 "fewer than about 20 clusters; read p-values near the threshold with care.",
                 f"仅有{n_clusters}个聚类：聚类数少于约20个时聚类稳健区间只是近似，"
                 "p值接近阈值时需谨慎解读。")
    n_per_arm = {str(k): int(v) for k, v in labels.value_counts().sort_index().items()}
    summary = {
        "srm_p_value": srm_p,
        "srm_unit": srm_unit,
        "srm_counts": srm_counts,
        "expected_shares": shares,
        "n_per_arm": n_per_arm,
        "control": control,
        "alpha": alpha,
        "outcome_types": {c: ("binary" if _is_binary(values[c]) else "continuous")
                          for c in outcomes},
        "std_error_types": se_types,
        "rows_in": int(len(frame)),
        "rows_excluded": excluded,
        "notes": notes,
        "interval_explanations": {m: {lang: interval_explanation(m, lang, alpha)
                                      for lang in ("en", "zh")}
                                  for m in results["method"].unique()},
        "outcomes": results[["arm", "outcome", "effect", "ci_low", "ci_high",
                             "p_value"]].to_dict("records"),
    }
    return ExperimentResult(results=results, summary=summary)


def _bare_message(err: InputError) -> str:
    """An InputError's message without the '(file …, column …) Fix: …' tail it appends."""
    text = str(err)
    suffix = str(InputError("", file=err.file, row=err.row, column=err.column, fix=err.fix))
    return text[: len(text) - len(suffix)] if suffix.strip() and text.endswith(suffix) else text


def _srm_counts(frame: pd.DataFrame, labels: pd.Series,
                cluster_col: str | None) -> tuple[str, dict[str, int]]:
    """Count clusters per arm when every cluster sits in one arm, else customers per arm."""
    ok = labels.notna().to_numpy()
    if cluster_col:
        cluster_codes = pd.factorize(frame[cluster_col])[0]  # -1 marks a missing cluster
        arm_codes, arm_names = pd.factorize(labels)
        keep = ok & (cluster_codes >= 0)
        pairs = np.unique(np.column_stack([cluster_codes[keep], arm_codes[keep]]), axis=0)
        if len(pairs) and len(np.unique(pairs[:, 0])) == len(pairs):  # one arm per cluster
            per_arm = np.bincount(pairs[:, 1], minlength=len(arm_names))
            return "cluster", {str(arm_names[i]): int(per_arm[i])
                               for i in np.argsort(arm_names.astype(str))}
    per_arm = labels[ok].value_counts().sort_index()
    return "row", {str(k): int(v) for k, v in per_arm.items()}


def _differential_missing(labels: pd.Series, missing: np.ndarray) -> float | None:
    """χ² p-value that the outcome-missing share is the same in every arm (None if not testable)."""
    if not missing.any() or missing.all():
        return None
    table = pd.crosstab(labels.to_numpy(), missing)
    if table.shape[0] < 2 or table.shape[1] < 2:
        return None
    return float(stats.chi2_contingency(table.to_numpy())[1])


# ---------------------------------------------------------------------------------------
# Words for the report
# ---------------------------------------------------------------------------------------

_EXPLANATIONS = {
    "diff_proportions": (
        "The {level}% interval is the range of differences in conversion rate (treatment minus "
        "control) that fit the data: if the pilot were rerun many times, intervals built this "
        "way would contain the true difference {level}% of the time. It uses each arm's own "
        "variance (unpooled Wald, normal approximation).",
        "{level}%置信区间是与数据相符的转化率差（处理组减对照组）的范围：如果把试点重复做很多次，"
        "用这种方法算出的区间约有{level}%会包含真实差值。方法为各组各自方差的Wald正态近似。"),
    "welch": (
        "The {level}% interval is the range of differences in the average (treatment minus "
        "control) that fit the data; intervals built this way contain the true difference "
        "{level}% of the time over repeated pilots. Welch's method lets the two arms have "
        "different spread.",
        "{level}%置信区间是与数据相符的均值差（处理组减对照组）的范围；重复试点时，这样构造的区间约"
        "有{level}%包含真实差值。Welch方法允许两组波动程度不同。"),
    "ols_adjusted": (
        "The {level}% interval is for the difference between arms after adjusting for "
        "characteristics measured before the pilot, which removes chance imbalance and usually "
        "narrows the interval; intervals built this way contain the true effect {level}% of "
        "the time (regression with HC2 robust errors).",
        "{level}%置信区间针对的是在控制试点前已测量的客户特征之后的组间差异，"
        "这样可消除偶然的不均衡，"
        "通常区间更窄；这样构造的区间约有{level}%包含真实效果（回归，HC2稳健标准误）。"),
    "ols_cluster": (
        "The {level}% interval accounts for customers of the same cluster (e.g. the same RM) "
        "being alike, so it is wider than a customer-level interval would be; intervals built "
        "this way contain the true effect about {level}% of the time when there are enough "
        "clusters (roughly 20 or more).",
        "{level}%置信区间考虑了同一聚类（如同一客户经理）下客户彼此相似，"
        "因此比按客户计算的区间更宽；"
        "当聚类数足够（约20个以上）时，这样构造的区间约有{level}%包含真实效果。"),
    "cuped": (
        "The {level}% interval is for the difference in averages after removing the part of "
        "the outcome predicted by the same metric before the pilot (CUPED); it targets the same "
        "effect as the plain comparison, with a narrower interval.",
        "{level}%置信区间针对的是扣除试点前同一指标可预测部分（CUPED）之后的均值差；"
        "它估计的效果与简单"
        "比较相同，但区间更窄。"),
    "did_ols_cluster": (
        "The {level}% interval is for the change in the treated group beyond the change in the "
        "comparison group over the same period (difference-in-differences), with errors "
        "clustered by customer.",
        "{level}%置信区间针对的是处理组在同期内超出对照组变化的那部分变化（双重差分），"
        "标准误按客户聚类。"),
    "iv_2sls": (
        "The {level}% interval is for the effect on customers who were contacted because they "
        "were assigned (assignment used as an instrument for contact); it is wider than the "
        "interval for the effect of assignment.",
        "{level}%置信区间针对的是因被分配而实际被联系的客户所受的效果（以分配作为联系的工具变量）；"
        "它比分配效果的区间更宽。"),
}


def interval_explanation(method: str, language: str = "en", alpha: float = 0.05) -> str:
    """Plain-words meaning of the method's confidence interval, in 'en' or 'zh'."""
    if method not in _EXPLANATIONS:
        raise InputError(f"unknown method {method!r}", fix=f"one of {sorted(_EXPLANATIONS)}")
    text = _EXPLANATIONS[method][0 if language == "en" else 1]
    return text.format(level=_level(alpha))


def _level(alpha: float) -> str:
    level = 100 * (1 - alpha)
    return f"{level:.0f}" if abs(level - round(level)) < 1e-9 else f"{level:g}"


_LABELS = {
    "en": {"title": "Pilot evaluation", "srm": "Sample ratio check", "results": "Results",
           "findings": "What the pilot shows", "intervals": "What the intervals mean",
           "excluded": "Rows left out", "notes": "Notes", "colon": ": ", "rows": "rows",
           "pp": " pp", "sizes_row": "customers per arm", "sizes_cluster": "clusters per arm",
           "srm_bad": "Sample ratio mismatch: the {what} ({counts}) differ from the planned "
                      "shares by more than chance allows (p = {p}). Check the assignment and "
                      "the data extract before trusting the effects below.",
           "srm_ok": "The {what} ({counts}) are consistent with the planned shares "
                     "(p = {p}).",
           "none": "None.",
           "arm": "arm", "outcome": "outcome", "n_treatment": "n treatment",
           "n_control": "n control", "mean_treatment": "mean treatment",
           "mean_control": "mean control", "effect": "effect", "ci_low": "CI low",
           "ci_high": "CI high", "p_value": "p-value", "relative_lift": "relative lift",
           "relative_ci_low": "relative CI low", "relative_ci_high": "relative CI high",
           "method": "method"},
    "zh": {"title": "试点效果评估", "srm": "样本比例检验", "results": "结果",
           "findings": "试点结论", "intervals": "置信区间的含义", "excluded": "未纳入分析的行",
           "notes": "说明", "colon": "：", "rows": "行", "pp": "个百分点",
           "sizes_row": "各组客户数", "sizes_cluster": "各组聚类数",
           "srm_bad": "样本比例失衡：{what}（{counts}）与计划比例的差异超出了随机波动的范围"
                      "（p = {p}）。请先核查分组和数据提取，再使用下面的效果估计。",
           "srm_ok": "{what}（{counts}）与计划比例一致（p = {p}）。",
           "none": "无。",
           "arm": "组别", "outcome": "指标", "n_treatment": "处理组样本数",
           "n_control": "对照组样本数", "mean_treatment": "处理组均值",
           "mean_control": "对照组均值", "effect": "效果", "ci_low": "置信区间下限",
           "ci_high": "置信区间上限", "p_value": "p值", "relative_lift": "相对提升",
           "relative_ci_low": "相对提升下限", "relative_ci_high": "相对提升上限",
           "method": "方法"},
}

_REASONS = {
    "arm_missing": {"en": "arm missing ({column})", "zh": "组别缺失（{column}）"},
    "covariate_missing": {"en": "covariate missing ({column})", "zh": "协变量缺失（{column}）"},
    "cluster_missing": {"en": "cluster missing ({column})", "zh": "聚类缺失（{column}）"},
    "outcome_missing": {"en": "{column}: outcome missing", "zh": "{column}：结果指标缺失"},
}

_METHOD_LABELS = {
    "diff_proportions": ("difference in proportions (Wald)", "比例差（Wald）"),
    "welch": ("difference in means (Welch)", "均值差（Welch）"),
    "ols_adjusted": ("covariate-adjusted regression (HC2)", "协变量调整回归（HC2）"),
    "ols_cluster": ("cluster-robust regression", "聚类稳健回归"),
    "cuped": ("CUPED-adjusted difference in means", "CUPED调整均值差"),
    "did_ols_cluster": ("difference-in-differences", "双重差分"),
    "iv_2sls": ("effect on contacted (IV)", "对被联系客户的效果（工具变量）"),
}


def method_label(method: str, language: str = "en") -> str:
    """Short display name of an estimation method in 'en' or 'zh'."""
    pair = _METHOD_LABELS.get(method, (method, method))
    return pair[0 if language == "en" else 1]


def _fmt_amount(x: float) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.3g}"


def effect_sentence(row: Mapping, binary: bool, language: str = "en", alpha: float = 0.05) -> str:
    """One plain sentence for a results row, e.g. 'Assignment to the treatment raised
    conversion by 2.4 points (95% CI 1.1 to 3.7).'"""
    level = _level(alpha)
    effect, low, high = row["effect"], row["ci_low"], row["ci_high"]
    arm, outcome = str(row["arm"]), str(row["outcome"])
    if binary:
        amount, lo, hi = (f"{abs(effect) * 100:.1f}", f"{low * 100:.1f}", f"{high * 100:.1f}")
    else:
        amount, lo, hi = _fmt_amount(abs(effect)), _fmt_amount(low), _fmt_amount(high)
    up = effect >= 0
    includes_zero = not (low > 0 or high < 0)
    if language == "en":
        who = "the treatment" if arm == TREATMENT else f"arm '{arm}'"
        verb = "raised" if up else "lowered"
        unit = " points" if binary else ""
        text = f"Assignment to {who} {verb} {outcome} by {amount}{unit} ({level}% CI {lo} to {hi})."
        if includes_zero:
            text += " The interval includes zero, so the data are also consistent with no effect."
        return text
    who = "处理组" if arm == TREATMENT else f"“{arm}”组"
    verb = "提高" if up else "降低"
    unit = "个百分点" if binary else ""
    text = f"分配到{who}使{outcome}{verb}了{amount}{unit}（{level}%置信区间：{lo}至{hi}）。"
    if includes_zero:
        text += "区间包含零，数据也与没有效果相符。"
    return text


def render_report_html(result: ExperimentResult, language: str = "en",
                       title: str | None = None) -> str:
    """Self-contained html: title, SRM verdict, results table, sentences, interval meanings."""
    if language not in _LABELS:
        raise InputError(f"language must be 'zh' or 'en', got {language!r}", fix="use zh or en")
    L, s, res = _LABELS[language], result.summary, result.results
    esc = html.escape
    p_text = f"{s['srm_p_value']:.3g}"
    sep = ", " if language == "en" else "，"
    counts = sep.join(f"{k}{L['colon']}{v:,}" for k, v in s["srm_counts"].items())
    srm_key = "srm_bad" if s["srm_p_value"] < SRM_ALPHA else "srm_ok"
    srm = L[srm_key].format(what=L[f"sizes_{s['srm_unit']}"], counts=counts, p=p_text)

    binary = {o: t == "binary" for o, t in s["outcome_types"].items()}
    head = "".join(f"<th>{esc(L[c])}</th>" for c in RESULT_COLUMNS)
    body = []
    for _, r in res.iterrows():
        cells = []
        for c in RESULT_COLUMNS:
            v = r[c]
            if c == "method":
                text = method_label(v, language)
            elif c in ("arm", "outcome"):
                text = str(v)
            elif c in ("n_treatment", "n_control"):
                text = f"{int(v):,}"
            elif c == "p_value":
                text = "–" if not np.isfinite(v) else f"{v:.3g}"
            elif c.startswith("relative"):
                text = "–" if not np.isfinite(v) else f"{v * 100:+.1f}%"
            elif binary[r["outcome"]]:
                text = f"{v * 100:.2f}%" if c.startswith("mean") else f"{v * 100:+.2f}{L['pp']}"
            else:
                text = _fmt_amount(v)
            cells.append(f"<td>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    sentences = "".join(
        f"<li>{esc(effect_sentence(r, binary[r['outcome']], language, s['alpha']))}</li>"
        for _, r in res.iterrows())
    meanings = "".join(
        f"<li><b>{esc(method_label(m, language))}</b>{L['colon']}"
        f"{esc(interval_explanation(m, language, s['alpha']))}</li>"
        for m in res["method"].unique())
    excluded = "".join(
        f"<li>{esc(_REASONS[e['reason']][language].format(column=e['column']))}"
        f"{L['colon']}{e['rows']:,} {L['rows']}</li>"
        for e in s["rows_excluded"]) or f"<li>{L['none']}</li>"
    notes = "".join(f"<li>{esc(n[language])}</li>" for n in s["notes"]) or f"<li>{L['none']}</li>"
    title = esc(title or L["title"])
    lang_attr = "zh-CN" if language == "zh" else "en"
    return f"""<!DOCTYPE html>
<html lang="{lang_attr}"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", Arial, sans-serif;
       max-width: 1100px; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; }}
th {{ background: #f2f2f2; }}
.srm-bad {{ color: #b00020; font-weight: bold; }}
</style></head><body>
<h1>{title}</h1>
<h2>{L['srm']}</h2>
<p class="{'srm-bad' if srm_key == 'srm_bad' else 'srm-ok'}">{esc(srm)}</p>
<h2>{L['findings']}</h2><ul>{sentences}</ul>
<h2>{L['results']}</h2>
<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>
<h2>{L['intervals']}</h2><ul>{meanings}</ul>
<h2>{L['excluded']}</h2><ul>{excluded}</ul>
<h2>{L['notes']}</h2><ul>{notes}</ul>
</body></html>
"""


# ---------------------------------------------------------------------------------------
# File in, files out (behind `playbook evaluate-pilot`)
# ---------------------------------------------------------------------------------------

def read_experiment_table(path: str | Path) -> pd.DataFrame:
    """Read a csv (UTF-8 with or without BOM, else GB18030), xlsx or parquet table."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", file=str(path), fix="check the path")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                return pd.read_csv(path, encoding=encoding)
            except UnicodeDecodeError:
                continue
        raise InputError("csv is neither UTF-8 nor GBK/GB18030", file=str(path),
                         fix="save the file as UTF-8")
    if suffix in (".xlsx", ".xlsm", ".xls"):
        return pd.read_excel(path)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise InputError(f"unsupported file type {suffix!r}", file=str(path),
                     fix="give a .csv, .xlsx or .parquet file")


def _with_file(err: InputError, path: str | Path) -> InputError:
    """The same error, now also naming the file."""
    return InputError(_bare_message(err), file=str(path), row=err.row, column=err.column,
                      fix=err.fix)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def run_evaluate_pilot(path: str | Path, arm: str, control: object, outcomes: Sequence[str],
                       covariates: Sequence[str] = (), cluster: str | None = None,
                       out_dir: str | Path = ".", language: str = "en", alpha: float = 0.05,
                       cluster_se: ClusterSE = "crv3") -> ExperimentResult:
    """Evaluate an experiment file; write out_dir/results.csv, summary.json, report.html.

    Bad input raises InputError naming the file and column. Non-finite numbers are written
    as empty cells (csv) and null (json).
    """
    if language not in _LABELS:
        raise InputError(f"language must be 'zh' or 'en', got {language!r}", fix="use zh or en")
    frame = read_experiment_table(path)
    try:
        result = evaluate_experiment(frame, arm, control, outcomes, covariates, cluster,
                                     alpha=alpha, cluster_se=cluster_se)
    except InputError as err:
        raise _with_file(err, path) from err
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result.results.to_csv(out / "results.csv", index=False)
    summary = {"file": str(path), "arm_column": arm, "cluster_column": cluster,
               "covariates": list(covariates), "language": language, **result.summary}
    (out / "summary.json").write_text(
        json.dumps(_jsonable(summary), ensure_ascii=False, indent=2), encoding="utf-8")
    (out / "report.html").write_text(render_report_html(result, language), encoding="utf-8")
    return result
