"""Small statistical formulas the stages share: intervals, lifts, FDR, WoE / IV, PSI, Spearman.

Where statsmodels or scipy compute the thing, these functions call them and only add input
checks, vectorisation and the missing-data conventions. WoE / IV, monotone binning and PSI are
written here (neither library has them) and are tested against worked examples.

Conventions, fixed here so every stage reports the same numbers:

* Bad input raises :class:`analysis.errors.InputError`.
* Scalars in give Python floats out; arrays in give numpy arrays out (broadcast together).
* Event = target 1 (e.g. took up the product). WoE follows the credit-scoring convention
  ``ln(%non-event / %event)``; IV does not depend on that sign choice.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from analysis.errors import InputError

#: Count used in place of a zero event / non-event count in a WoE bin (that cell only).
WOE_ZERO_COUNT = 0.5
#: Value that replaces a zero cell of the 2x2 table, for the risk-ratio interval only.
RISK_RATIO_ZERO_CELL = 0.5
#: Share used in place of an empty bin's share in PSI.
PSI_EMPTY_SHARE = 1e-4
#: PSI band limits: below the first is 'stable', below the second 'watch', else 'shift'.
PSI_WATCH_FROM = 0.1
PSI_SHIFT_FROM = 0.25

#: Bin label for missing values in WoE tables (the label the tables carry is the en one).
MISSING_BIN = "(missing)"
MISSING_BIN_LABELS = {"zh": "（缺失）", "en": MISSING_BIN}
PSI_BAND_LABELS = {
    "stable": {"zh": "稳定", "en": "stable"},
    "watch": {"zh": "关注", "en": "watch"},
    "shift": {"zh": "显著偏移", "en": "shift"},
}

WOE_TABLE_COLUMNS = [
    "bin", "count", "events", "non_events", "event_rate",
    "non_event_share", "event_share", "woe", "iv",
]


# ----------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------

def _name(values, default: str) -> str:
    name = getattr(values, "name", None)
    return str(name) if name is not None else default


def _float_array(values, what: str) -> np.ndarray:
    try:
        if isinstance(values, (pd.Series, pd.Index)):
            # Nullable dtypes hold pd.NA, which np.asarray cannot turn into a float.
            return values.to_numpy(dtype=float, na_value=np.nan)
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be numeric", column=_name(values, what),
                         fix="pass numbers (counts, rates or measurements)") from exc


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be between 0 and 1, got {alpha}",
                         fix="use e.g. alpha=0.05 for a 95% interval")


def _check_counts(hits: np.ndarray, n: np.ndarray, hits_name: str, n_name: str) -> None:
    if not (np.all(np.isfinite(hits)) and np.all(np.isfinite(n))):
        raise InputError(f"{hits_name} and {n_name} must be finite numbers",
                         column=f"{hits_name}/{n_name}",
                         fix="fill or drop rows with missing counts")
    if np.any(n <= 0):
        raise InputError(f"{n_name} must be positive", column=n_name,
                         fix="drop groups with no observations before computing rates")
    if np.any(hits < 0) or np.any(hits > n):
        raise InputError(f"{hits_name} must lie between 0 and {n_name}", column=hits_name,
                         fix=f"check that {hits_name} counts a subset of {n_name}")


def _out(values: np.ndarray):
    """A 0-d result becomes a Python float so scalar callers get scalars."""
    return float(values) if np.ndim(values) == 0 else values


def _binary_target(y) -> np.ndarray:
    """Target as an int array of 0/1; anything else (including missing) is an input error."""
    column = _name(y, "target")
    series = pd.Series(y) if not isinstance(y, pd.Series) else y
    if series.isna().any():
        raise InputError("the target has missing values", column=column,
                         fix="drop rows with an unknown outcome or decide what they mean first")
    try:
        values = np.asarray(series, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError("the target must be 0/1 or True/False", column=column,
                         fix="map the event (e.g. took up the product) to 1, everything else to 0"
                         ) from exc
    if not np.all((values == 0) | (values == 1)):
        raise InputError("the target must be 0/1 or True/False", column=column,
                         fix="map the event (e.g. took up the product) to 1, everything else to 0")
    return values.astype(np.int64)


def _check_same_length(x, y) -> None:
    if len(x) != len(y):
        raise InputError(f"the variable and the target differ in length ({len(x)} vs {len(y)})",
                         column=_name(x, "x"), fix="pass the two columns of the same frame")


# ----------------------------------------------------------------------------------------------
# Proportions and lifts
# ----------------------------------------------------------------------------------------------

def wilson_interval(successes, n, alpha: float = 0.05):
    """Wilson score interval for a proportion; (low, high), vectorised over arrays.

    Calls statsmodels ``proportion_confint(method='wilson')``; this adds the input checks.
    """
    _check_alpha(alpha)
    hits = _float_array(successes, "successes")
    total = _float_array(n, "n")
    _check_counts(hits, total, "successes", "n")
    low, high = proportion_confint(hits, total, alpha=alpha, method="wilson")
    return _out(np.asarray(low, dtype=float)), _out(np.asarray(high, dtype=float))


class RiskRatio(NamedTuple):
    """Lift of group a over group b with its interval and p-value (floats or arrays)."""

    lift: float | np.ndarray
    ci_low: float | np.ndarray
    ci_high: float | np.ndarray
    p_value: float | np.ndarray


def risk_ratio(hits_a, n_a, hits_b, n_b, alpha: float = 0.05) -> RiskRatio:
    """Risk ratio (lift) ``(hits_a/n_a) / (hits_b/n_b)`` with Katz interval and Wald p-value.

    Vectorised: every argument may be an array; they broadcast together.

    * ``lift`` is the observed ratio, uncorrected: 0 when ``hits_a`` is 0, ``inf`` when
      ``hits_b`` is 0 (``nan`` when both are).
    * ``ci_low, ci_high``: Katz log interval, ``exp(ln RR ± z·se)`` with
      ``se = sqrt(1/a − 1/n_a + 1/c − 1/n_c)``. Where a cell of the 2x2 table (hits or
      non-hits in either group) is 0, that cell — only that cell — is replaced by 0.5 before
      the interval is computed; this is statsmodels' ``Table2x2(shift_zeros=True)`` rule, and
      the interval then equals its ``riskratio_confint``.
    * ``p_value``: two-sided Wald test of H0: ln RR = 0 with the same se (statsmodels'
      ``riskratio_pvalue``), so p < alpha exactly when the interval excludes 1 (for tables
      without zero cells). No zero correction: where either hit count is 0 the statistic is
      undefined and the p-value is ``nan`` (``benjamini_hochberg`` passes it through).
    """
    _check_alpha(alpha)
    a, na, c, nc = np.broadcast_arrays(
        _float_array(hits_a, "hits_a"), _float_array(n_a, "n_a"),
        _float_array(hits_b, "hits_b"), _float_array(n_b, "n_b"))
    _check_counts(a, na, "hits_a", "n_a")
    _check_counts(c, nc, "hits_b", "n_b")
    z = stats.norm.ppf(1 - alpha / 2)

    with np.errstate(divide="ignore", invalid="ignore"):
        lift = (a / na) / (c / nc)

        cells = [np.where(cell == 0, RISK_RATIO_ZERO_CELL, cell) for cell in (a, na - a, c, nc - c)]
        a_s, b_s, c_s, d_s = cells
        log_rr_s = np.log(a_s / (a_s + b_s)) - np.log(c_s / (c_s + d_s))
        se_s = np.sqrt(1 / a_s - 1 / (a_s + b_s) + 1 / c_s - 1 / (c_s + d_s))
        ci_low = np.exp(log_rr_s - z * se_s)
        ci_high = np.exp(log_rr_s + z * se_s)

        defined = (a > 0) & (c > 0)
        log_rr = np.log(np.where(defined, lift, 1.0))
        se = np.sqrt(np.where(defined, 1 / a - 1 / na + 1 / c - 1 / nc, np.nan))
        # Same expression as statsmodels so the two agree to the last bits.
        p_value = np.where(defined, 2 * stats.norm.cdf(-np.abs(log_rr / se)), np.nan)

    return RiskRatio(_out(lift), _out(ci_low), _out(ci_high), _out(p_value))


def benjamini_hochberg(p_values, q: float = 0.05):
    """Benjamini–Hochberg FDR: (q_values, rejected) as arrays in the input's order.

    Equals statsmodels ``multipletests(method='fdr_bh')``. NaN p-values (tests that could not
    be run) pass through as NaN q-values, not rejected, and do not count in the family size.
    """
    if not 0 < q < 1:
        raise InputError(f"q must be between 0 and 1, got {q}", fix="use e.g. q=0.05")
    p = _float_array(p_values, "p_values")
    flat = p.ravel()
    present = ~np.isnan(flat)
    if np.any((flat[present] < 0) | (flat[present] > 1)):
        raise InputError("p-values must lie between 0 and 1", column=_name(p_values, "p_values"),
                         fix="pass p-values, not test statistics or percentages")
    q_values = np.full(flat.shape, np.nan)
    rejected = np.zeros(flat.shape, dtype=bool)
    if present.any():
        reject, corrected, _, _ = multipletests(flat[present], alpha=q, method="fdr_bh")
        q_values[present] = corrected
        rejected[present] = reject
    return q_values.reshape(p.shape), rejected.reshape(p.shape)


# ----------------------------------------------------------------------------------------------
# Weight of evidence and information value
# ----------------------------------------------------------------------------------------------

def woe_table_from_counts(bins: Sequence, events, non_events) -> pd.DataFrame:
    """WoE table from per-bin event / non-event counts (e.g. aggregated in SQL).

    Columns: bin, count, events, non_events, event_rate, non_event_share, event_share, woe, iv.

    * ``non_event_share_i = non_events_i / total non-events``, likewise ``event_share_i``.
      A bin with 0 events (or 0 non-events) uses 0.5 for that count only; totals stay the
      observed totals, so the shares of a table with a zero cell add up to slightly over 1.
      ``count``, ``events`` and ``non_events`` show the observed counts.
    * ``woe_i = ln(non_event_share_i / event_share_i)`` (credit-scoring sign: a bin where the
      event is more common than average has negative WoE).
    * ``iv_i = (non_event_share_i − event_share_i) × woe_i``, never negative; IV = Σ iv_i. Swapping
      which outcome is the event flips every WoE's sign and leaves IV unchanged.

    Bins with no observations at all are dropped (they carry no evidence).
    """
    labels = list(bins)
    ev = _float_array(events, "events")
    ne = _float_array(non_events, "non_events")
    if not (ev.ndim == ne.ndim == 1 and len(ev) == len(ne) == len(labels)):
        raise InputError("bins, events and non_events must be 1-D and of equal length",
                         fix="pass one entry per bin")
    finite = np.all(np.isfinite(ev)) and np.all(np.isfinite(ne))
    if not finite or np.any(ev < 0) or np.any(ne < 0):
        raise InputError("event and non-event counts must be non-negative numbers",
                         fix="fill missing counts with 0")
    keep = (ev + ne) > 0
    labels = [label for label, k in zip(labels, keep) if k]
    ev, ne = ev[keep], ne[keep]
    total_events, total_non_events = ev.sum(), ne.sum()
    if total_events == 0 or total_non_events == 0:
        raise InputError("WoE needs both events and non-events; the target has only one value",
                         fix="check the target definition and the observation window")

    event_share = np.where(ev == 0, WOE_ZERO_COUNT, ev) / total_events
    non_event_share = np.where(ne == 0, WOE_ZERO_COUNT, ne) / total_non_events
    woe = np.log(non_event_share / event_share)
    return pd.DataFrame({
        "bin": pd.Series(labels, dtype=object),
        "count": ev + ne,
        "events": ev,
        "non_events": ne,
        "event_rate": ev / (ev + ne),
        "non_event_share": non_event_share,
        "event_share": event_share,
        "woe": woe,
        "iv": (non_event_share - event_share) * woe,
    })


def _category_codes(x) -> tuple[np.ndarray, list]:
    """Codes 0..k-1 for x's categories (sorted; a Categorical keeps its order); -1 = missing."""
    codes, uniques = pd.factorize(pd.Series(x), sort=True, use_na_sentinel=True)
    return codes, list(uniques)


def _woe_table_from_codes(codes: np.ndarray, labels: list, target: np.ndarray) -> pd.DataFrame:
    # Missing x gets the last code so its bin comes last in the table.
    codes = np.where(codes < 0, len(labels), codes)
    size = len(labels) + 1
    counts = np.bincount(codes, minlength=size)
    events = np.bincount(codes, weights=target, minlength=size)
    return woe_table_from_counts(labels + [MISSING_BIN], events, counts - events)


def woe_table(x, y) -> pd.DataFrame:
    """WoE table of a categorical variable against a 0/1 target; each category is its own bin.

    Missing x forms the bin ``"(missing)"``, listed last. Categories are sorted (a pandas
    Categorical keeps its category order). See :func:`woe_table_from_counts` for the columns
    and the zero-count convention.
    """
    _check_same_length(x, y)
    target = _binary_target(y)
    codes, labels = _category_codes(x)
    return _woe_table_from_codes(codes, labels, target)


def information_value(x, y) -> float:
    """Information value of a categorical variable against a 0/1 target (sum of woe_table's iv)."""
    return float(woe_table(x, y)["iv"].sum())


def _quantile_cut_points(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Distinct inner quantile cut points of values, each below the maximum (no empty top bin)."""
    if n_bins < 2 or len(values) == 0:
        return np.empty(0)
    cuts = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return cuts[cuts < values.max()]


def _bin_index(values: np.ndarray, cut_points: np.ndarray) -> np.ndarray:
    # side='left' makes bins right-closed, (e_k, e_k+1], as pd.cut does by default.
    return np.searchsorted(cut_points, values, side="left")


def _check_max_bins(max_bins) -> None:
    if isinstance(max_bins, bool) or not isinstance(max_bins, (int, np.integer)) or max_bins < 1:
        raise InputError(f"the number of bins must be a positive integer, got {max_bins!r}",
                         fix="use e.g. 10")


def monotone_bins(x, y, max_bins: int = 10) -> np.ndarray:
    """Bin edges for a numeric variable whose bins have monotone event rates.

    Starts from up to ``max_bins`` quantile bins of the non-missing x, then merges adjacent
    bins (pool-adjacent-violators, weighted by bin size) until the event rate strictly
    increases — or strictly decreases when Spearman's rho of x and y is negative — from bin to
    bin. Returns edges ``[-inf, c_1, ..., c_k, inf]``; bins are right-closed ``(e_i, e_i+1]``,
    as in ``pd.cut(x, edges)``, so the edges also bin new data. Missing x is ignored here.
    """
    _check_same_length(x, y)
    _check_max_bins(max_bins)
    target = _binary_target(y)
    values = _float_array(x, "x")
    present = ~np.isnan(values)
    values, target = values[present], target[present]
    if len(values) == 0:
        raise InputError("the variable has no non-missing values", column=_name(x, "x"),
                         fix="drop the variable or fill it before binning")

    cut_points = _quantile_cut_points(values, max_bins)
    counts = np.bincount(_bin_index(values, cut_points), minlength=len(cut_points) + 1)
    # Interpolated quantiles can leave a bin with no data between two cut points: merge it up.
    cut_points = cut_points[counts[:-1] > 0]
    index = _bin_index(values, cut_points)
    counts = np.bincount(index, minlength=len(cut_points) + 1)
    events = np.bincount(index, weights=target, minlength=len(cut_points) + 1)

    increasing = not spearman(values, target) < 0  # nan (constant x or y) counts as increasing
    # Each block: [events, count, index of its last starting bin].
    blocks: list[list[float]] = []
    for k in range(len(counts)):
        blocks.append([events[k], counts[k], k])
        while len(blocks) >= 2:
            (e1, n1, _), (e2, n2, _) = blocks[-2], blocks[-1]
            # Compare rates e1/n1 and e2/n2 by cross-multiplying: exact for counts.
            violated = e1 * n2 >= e2 * n1 if increasing else e1 * n2 <= e2 * n1
            if not violated:
                break
            blocks[-2:] = [[e1 + e2, n1 + n2, blocks[-1][2]]]
    kept = cut_points[[int(last) for _, _, last in blocks[:-1]]]
    return np.concatenate([[-np.inf], kept, [np.inf]])


def _interval_label(low: float, high: float) -> str:
    return f"({low:.6g}, {high:.6g}]"


def woe_table_numeric(x, y, max_bins: int = 10, edges=None) -> pd.DataFrame:
    """WoE table of a numeric variable over :func:`monotone_bins` (or the given edges).

    Bins are labelled ``"(low, high]"``; missing x forms the last bin ``"(missing)"``. The
    outermost edges are treated as −inf / +inf so every value falls in a bin.
    """
    _check_same_length(x, y)
    target = _binary_target(y)
    values = _float_array(x, "x")
    if edges is None:
        edges = monotone_bins(x, y, max_bins)
    edges = _check_edges(edges)
    inner = edges[1:-1]
    codes = np.where(np.isnan(values), -1, _bin_index(values, inner))
    outer = np.concatenate([[-np.inf], inner, [np.inf]])
    labels = [_interval_label(lo, hi) for lo, hi in zip(outer[:-1], outer[1:])]
    return _woe_table_from_codes(codes, labels, target)


def information_value_numeric(x, y, max_bins: int = 10) -> float:
    """Information value of a numeric variable over its monotone bins (see monotone_bins)."""
    return float(woe_table_numeric(x, y, max_bins)["iv"].sum())


# ----------------------------------------------------------------------------------------------
# Population stability
# ----------------------------------------------------------------------------------------------

def _check_edges(edges) -> np.ndarray:
    edges = _float_array(edges, "edges")
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.isnan(edges)) or np.any(np.diff(edges) <= 0):
        raise InputError("bin edges must be at least two strictly increasing numbers",
                         fix="pass sorted, distinct edges, or an integer number of bins")
    return edges


def psi_from_shares(expected_shares, actual_shares):
    """Population stability index ``Σ (a_i − e_i) · ln(a_i / e_i)`` from bin shares.

    Shares are taken along the last axis (a 2-D input gives one PSI per row) and must each add
    up to 1. An empty bin's share (0) is replaced by 1e-4 (``PSI_EMPTY_SHARE``) in both the
    difference and the log, without renormalising, so one emptied bin adds a finite amount.
    """
    e = _float_array(expected_shares, "expected_shares")
    a = _float_array(actual_shares, "actual_shares")
    if e.shape != a.shape or e.ndim == 0 or e.shape[-1] == 0:
        raise InputError("expected and actual shares must have the same, non-empty shape",
                         fix="pass one share per bin for both periods")
    for shares in (e, a):
        if not np.all(np.isfinite(shares)) or np.any(shares < 0):
            raise InputError("shares must be non-negative numbers", fix="fill empty bins with 0")
        if not np.allclose(shares.sum(axis=-1), 1.0, rtol=0, atol=1e-6):
            raise InputError("shares must add up to 1",
                             fix="pass shares, not counts: divide each bin by the total")
    e = np.where(e == 0, PSI_EMPTY_SHARE, e)
    a = np.where(a == 0, PSI_EMPTY_SHARE, a)
    return _out(np.sum((a - e) * np.log(a / e), axis=-1))


def psi(expected, actual, bins: int | Sequence[float] = 10) -> float:
    """Population stability index of a numeric variable, baseline ``expected`` vs ``actual``.

    ``bins`` is a number of quantile bins of the baseline (distinct quantiles only, so heavy
    ties give fewer bins) or explicit edges; either way bins are right-closed and the outermost
    bins extend to −inf / +inf. When either sample has missing values they form one more bin,
    so a change in the missing rate shows in the PSI. Empty bins: see :func:`psi_from_shares`.
    """
    e = _float_array(expected, "expected").ravel()
    a = _float_array(actual, "actual").ravel()
    if len(e) == 0 or len(a) == 0:
        raise InputError("PSI needs values in both the baseline and the comparison sample",
                         fix="check the two periods' filters")
    e_present, a_present = ~np.isnan(e), ~np.isnan(a)
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        _check_max_bins(bins)
        if not e_present.any():
            raise InputError("the baseline has no non-missing values", fix="pick another baseline")
        inner = _quantile_cut_points(e[e_present], int(bins))
    else:
        inner = _check_edges(bins)[1:-1]

    def shares(values: np.ndarray, present: np.ndarray) -> np.ndarray:
        counts = np.bincount(_bin_index(values[present], inner), minlength=len(inner) + 1)
        if not (e_present.all() and a_present.all()):
            counts = np.append(counts, (~present).sum())
        return counts / len(values)

    return float(psi_from_shares(shares(e, e_present), shares(a, a_present)))


def psi_band(value):
    """'stable' (< 0.1), 'watch' (0.1 to < 0.25) or 'shift' (≥ 0.25); arrays give arrays.

    Labels for reports are in ``PSI_BAND_LABELS[band][language]``.
    """
    v = _float_array(value, "psi")
    if np.any(np.isnan(v)) or np.any(v < 0):
        raise InputError("PSI values must be non-negative numbers", column=_name(value, "psi"),
                         fix="compute PSI for every variable before banding")
    band = np.select([v < PSI_WATCH_FROM, v < PSI_SHIFT_FROM], ["stable", "watch"], "shift")
    return str(band) if band.ndim == 0 else band.astype(object)


# ----------------------------------------------------------------------------------------------
# Correlation
# ----------------------------------------------------------------------------------------------

def spearman(a, b) -> float:
    """Spearman's rho of two equal-length sequences, pairs with a missing value dropped.

    ``nan`` when fewer than two pairs remain or either side is constant.
    """
    x, y = _float_array(a, "a").ravel(), _float_array(b, "b").ravel()
    if len(x) != len(y):
        raise InputError(f"spearman needs equal lengths ({len(x)} vs {len(y)})",
                         fix="pass two columns of the same frame")
    present = ~(np.isnan(x) | np.isnan(y))
    x, y = x[present], y[present]
    if len(x) < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return float(stats.spearmanr(x, y).statistic)
