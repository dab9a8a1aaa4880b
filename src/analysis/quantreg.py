"""Linear quantile regression solved exactly by the Frisch–Newton interior-point method.

``quantile_regression`` minimises Σ ρ_q(yᵢ − xᵢ'b), ρ_q(u) = u (q − 1[u < 0]), as a linear
programme with the primal-dual (Mehrotra predictor-corrector) interior-point method of

    Portnoy, S. and Koenker, R. (1997). The Gaussian hare and the Laplacian tortoise:
    computability of squared-error versus absolute-error estimators. Statistical Science
    12(4): 279–300 (section 4, "Frisch–Newton").

the method behind R quantreg's ``rq.fit.fnb`` (method "fn"). Each iteration costs one
weighted cross-product X'DX (O(n k²)); a few dozen iterations reach the LP optimum, where
statsmodels' ``QuantReg`` (iteratively reweighted least squares) needs hundreds and stops short
of it. The standard errors reproduce statsmodels ``QuantReg.fit`` defaults (``vcov='robust'``,
``kernel='epa'``, ``bandwidth='hsheather'``) evaluated at these parameters; the tests check
both against statsmodels.

From PREPROCESS_FROM observations the same LP is first reduced (section 5.1 of the paper, R's
``rq.fit.pfn``): a fit on a random subsample predicts which observations lie surely above or
below the quantile, those are merged into two rows, and every observation's side is checked
against the final fit, so the answer is still the full problem's optimum.

Written from the published algorithm; the notation follows the paper's dual formulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy import stats

from analysis.errors import InputError

#: Fraction of the way to the boundary an interior-point step may go (keeps iterates interior).
STEP_FRACTION = 0.99995

#: From this many observations the fit first drops those that surely lie above or below the
#: fitted quantile (``preprocess``): each interior-point iteration then touches a few percent of
#: the rows, and the cost stops growing with n in the cache misses of an n × k working set.
PREPROCESS_FROM = 50_000


class QuantRegConvergenceError(RuntimeError):
    """The interior-point iterations did not reach the requested duality gap."""


@dataclass(frozen=True)
class QuantRegFit:
    """A fitted linear quantile regression.

    ``params``: coefficients (one per column of X); ``objective``: Σ ρ_q(y − X params);
    ``iterations``: interior-point iterations; ``gap``: final duality-gap bound (the objective
    exceeds the LP optimum by at most this). ``cov_params``, ``bse``, ``tvalues``, ``pvalues``
    (Student t on ``df_resid`` = n − k degrees of freedom) and ``prsquared`` (Koenker–Machado
    pseudo R¹) are as statsmodels ``QuantRegResults`` computes them with its default kernel
    covariance; ``bandwidth`` and ``sparsity`` (1 / density of the residuals at 0) are the
    intermediate values of that covariance.
    """

    params: np.ndarray
    cov_params: np.ndarray
    bse: np.ndarray
    tvalues: np.ndarray
    pvalues: np.ndarray
    prsquared: float
    objective: float
    gap: float
    iterations: int
    q: float
    nobs: int
    df_resid: int
    bandwidth: float
    sparsity: float
    #: rows the last interior-point solve used: nobs, or fewer after preprocessing (plus ≤ 2 globs)
    rows_solved: int | None = None

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """(k, 2) array of lower and upper limits, params ± t_{1−α/2, df_resid} × bse."""
        if not 0 < alpha < 1:
            raise InputError(f"alpha must be between 0 and 1, got {alpha}",
                             fix="use e.g. alpha=0.05 for a 95% interval")
        t = stats.t.ppf(1 - alpha / 2, self.df_resid)
        return np.column_stack([self.params - t * self.bse, self.params + t * self.bse])


def check_loss(residuals: np.ndarray, q: float) -> float:
    """Σ ρ_q(u) = Σ u (q − 1[u < 0]): the quantile-regression objective."""
    u = np.asarray(residuals, dtype=float)
    return float(np.sum(np.where(u < 0, (q - 1.0) * u, q * u)))


def quantile_regression(y, X, q: float, *, tol: float = 1e-8, max_iter: int = 100,
                        preprocess: bool | None = None, seed: int = 0) -> QuantRegFit:
    """Fit the q-th conditional quantile of y as X b by the Frisch–Newton interior point.

    ``y``: n values; ``X``: n × k design of full column rank (include a constant column for an
    intercept); 0 < q < 1. Iterates until the duality gap is at most ``tol`` × (objective +
    mean |y|), i.e. the objective is within a relative ``tol`` of the LP optimum (the mean |y|
    term only matters for an exact fit, objective 0). Raises ``QuantRegConvergenceError`` if
    that takes more than ``max_iter`` iterations. See the module docstring for the reference.

    ``preprocess`` (default: from PREPROCESS_FROM rows) solves the same LP on fewer rows first
    (``_preprocessed``); the answer is an optimum of the full problem, checked on every row. ``seed`` fixes
    its random subsample, so a fit is reproducible.
    """
    y = np.asarray(y, dtype=float).ravel()
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] != y.size:
        raise InputError(f"quantile_regression: X has shape {X.shape} for {y.size} values of y",
                         fix="pass an n × k design with one row per value of y")
    n, k = X.shape
    if not 0 < q < 1:
        raise InputError(f"quantile_regression: q = {q} is not in (0, 1)",
                         fix="use e.g. 0.5 for the median")
    if not (np.isfinite(y).all() and np.isfinite(X).all()):
        raise InputError("quantile_regression: y or X has missing or infinite values",
                         fix="drop or fill those rows first")
    xtx = X.T @ X
    # rank from X'X (k × k) rather than an SVD of X, which costs seconds at a million rows
    if n <= k or np.linalg.matrix_rank(xtx, hermitian=True) < k:
        raise InputError(f"quantile_regression: the {n} × {k} design is not of full column "
                         "rank", fix="drop collinear or constant columns")
    if preprocess is None:
        preprocess = n >= PREPROCESS_FROM
    if preprocess:
        params, iterations, gap, rows = _preprocessed(y, X, xtx, q, tol, max_iter, seed)
    else:
        (params, iterations, gap), rows = _frisch_newton(y, X, xtx, q, tol, max_iter), n
    return _fit_statistics(y, X, xtx, q, params, iterations, gap, rows)


def _preprocessed(y: np.ndarray, X: np.ndarray, xtx: np.ndarray, q: float, tol: float,
                  max_iter: int, seed: int, *, m: int | None = None, m_factor: float = 0.8,
                  max_fixups: int = 3) -> tuple[np.ndarray, int, float, int]:
    """Frisch–Newton on a reduced problem, Portnoy and Koenker (1997) section 5.1 (R quantreg's
    ``rq.fit.pfn``); returns (b, iterations summed over the solves, gap bound, rows of the last
    solve).

    A fit on a random subsample of m ≈ ((k + 1) n)^⅔ rows predicts, with a band of about
    m_factor × m rows around it, which observations fall above the full fit (a = 1 at the
    optimum) or below it (a = 0). Those are replaced by one "glob" row each (the sums of
    their x and y), which contributes exactly their loss as long as every one of them stays on
    its side; the reduced LP is solved and every row's residual sign checked. A few rows on the
    wrong side are put back and the reduced LP solved again (at most max_fixups times); many
    (over a tenth of the band), or still some after max_fixups, mean the subsample was
    unlucky, and it is drawn again with m doubled (at m ≥ n: the plain solve). A reduced solve
    that does not converge (the summed rows can make it badly scaled) also ends in the plain
    solve, so preprocessing never fails where the plain solve succeeds.

    Why the answer is exact: the check loss is sublinear, so the reduced objective is at most
    the full one for every b, and equal at b when the signs hold. The reduced optimum b is
    then optimal for the full problem, with the same duality-gap bound (the reduced solve stops
    on the full problem's tolerance). Where the optimum is not unique (a small category whose
    size × q is an integer), the objective is the same and the coefficients may be another
    point of the optimal set than the plain solve's.
    """
    n, k = X.shape
    rng = np.random.default_rng(seed)
    m = m or round(((k + 1) * n) ** (2 / 3))
    iterations = 0
    floor = float(np.mean(np.abs(y)))   # the full problem's tolerance floor, for every reduced solve
    while m < n:
        sample = np.sort(rng.choice(n, size=m, replace=False))
        xs = X[sample]
        xtx_s = xs.T @ xs
        if np.linalg.matrix_rank(xtx_s, hermitian=True) < k:   # e.g. a rare category not drawn
            m *= 2
            continue
        try:
            b, it, _ = _frisch_newton(y[sample], xs, xtx_s, q, tol, max_iter)
        except QuantRegConvergenceError:
            m *= 2
            continue
        iterations += it
        # band: the scale of x_i'b's sampling error, ‖L⁻¹ x_i‖ with L L' = X_s'X_s
        chol = scipy.linalg.cholesky(xtx_s, lower=True)
        # (as X L⁻ᵀ, one BLAS product: a triangular solve against X' took 0.4 s at 10⁶ rows)
        l_inv = scipy.linalg.solve_triangular(chol, np.eye(k), lower=True)
        scaled_x = X @ l_inv.T
        band = np.sqrt(np.einsum("ij,ij->i", scaled_x, scaled_x))
        r = y - X @ b
        keep = m_factor * m
        lo, hi = np.quantile(r / np.maximum(band, 1e-6),
                             [max(1 / n, q - keep / (2 * n)), min(q + keep / (2 * n), (n - 1) / n)])
        below, above = r < band * lo, r > band * hi
        for _ in range(max_fixups):
            middle = ~(below | above)
            xr, yr = [X[middle]], [y[middle]]
            for side in (below, above):
                if side.any():
                    weight = side.astype(float)     # sums as BLAS products, not row gathers
                    xr.append((weight @ X)[None, :])
                    yr.append(np.array([weight @ y]))
            xr, yr = np.concatenate(xr), np.concatenate(yr)
            try:
                b, it, gap = _frisch_newton(yr, xr, xr.T @ xr, q, tol, max_iter, floor)
            except QuantRegConvergenceError:
                # the summed rows make the reduced problem badly scaled (|x| ~ n); rare, and
                # the plain solve below does not have them
                m = n
                break
            iterations += it
            r = y - X @ b
            wrong_below, wrong_above = below & (r > 0), above & (r < 0)
            n_wrong = int(wrong_below.sum() + wrong_above.sum())
            if n_wrong == 0:
                return b, iterations, gap, len(yr)
            if n_wrong > 0.1 * keep:
                break
            below &= ~wrong_below
            above &= ~wrong_above
        m *= 2
    b, it, gap = _frisch_newton(y, X, xtx, q, tol, max_iter)
    return b, iterations + it, gap, n


def _frisch_newton(y: np.ndarray, X: np.ndarray, xtx: np.ndarray, q: float, tol: float,
                   max_iter: int, floor: float | None = None) -> tuple[np.ndarray, int, float]:
    """Primal-dual interior point on the dual LP; returns (b, iterations, gap bound).

    Stops when the gap is at most tol × (objective + floor), floor = mean |y| unless given
    (a reduced problem passes its full problem's, as its summed rows inflate its own).

    The LP solved is   max y'a  subject to  X'a = (1 − q) X'1,  0 ≤ a ≤ 1,
    whose Lagrange multipliers on the equality are the regression coefficients b: its dual is
    min_b Σ ρ_q(y − Xb) up to the constant (1 − q) Σ y. Variables: a and its slack s = 1 − a
    (primal), b with z ≥ 0 (for a ≥ 0) and w ≥ 0 (for a ≤ 1) such that y − Xb = w − z (dual).
    At the optimum a·z = s·w = 0, so a = 1 above the fit, 0 below, and in between on the k
    observations the fit interpolates.
    """
    n, _ = X.shape
    rhs = (1.0 - q) * X.sum(axis=0)
    # a = 1 − q everywhere satisfies X'a = (1 − q) X'1 exactly: a feasible, central start
    a = np.full(n, 1.0 - q)
    s = np.full(n, q)
    # least squares start from the normal equations (an SVD of X costs ~1 s at 10⁶ rows; the
    # start needs no accuracy)
    b = _solve(_factor(xtx), X.T @ y)
    e = y - X @ b
    # split the OLS residuals into w − z, both shifted off zero so the start is interior;
    # the shift scales with the residuals, which keeps the method scale-equivariant
    shift = max(np.mean(np.abs(e)), np.finfo(float).tiny)
    z = np.maximum(-e, 0.0) + shift
    w = np.maximum(e, 0.0) + shift
    floor = np.mean(np.abs(y)) if floor is None else floor
    scaled = np.empty_like(X)
    gap = float(a @ z + s @ w)
    iteration = 0
    while True:
        e = y - X @ b
        r_primal = rhs - X.T @ a
        r_dual = e + z - w
        objective = check_loss(e, q)
        # with X'a = rhs and y − Xb = w − z, the objective exceeds the optimum by at most
        # a'z + s'w, so this bound is also the stopping rule
        if gap <= tol * (objective + floor) and _small(r_primal, rhs) and _small(r_dual, y):
            return b, iteration, gap
        if iteration == max_iter:
            raise QuantRegConvergenceError(
                f"quantile_regression: no convergence in {max_iter} interior-point "
                f"iterations (duality gap {gap:.3g}, objective {objective:.6g}); raise "
                "max_iter or check the design for near-collinear columns")
        iteration += 1

        # Newton steps share the matrix X'Q⁻¹X with Q = z/a + w/s; factor it once
        q_inv = 1.0 / (z / a + w / s)
        # X'Q⁻¹X as S'S with S = Q^-½ X (numpy then uses the symmetric rank-k BLAS update);
        # S reuses one buffer, as allocating n × k floats each iteration is measurable
        np.multiply(X, np.sqrt(q_inv)[:, None], out=scaled)
        factor = _factor(scaled.T @ scaled)

        def direction(ra: np.ndarray, rs: np.ndarray):
            """Newton step for complementarity targets a∘z + ... = ra, s∘w + ... = rs."""
            rho = r_dual + ra / a - rs / s
            db = _solve(factor, X.T @ (q_inv * rho) - r_primal)
            da = q_inv * (rho - X @ db)
            dz = (ra - z * da) / a
            dw = (rs + w * da) / s
            return db, da, dz, dw

        # predictor: the pure Newton (affine-scaling) step towards a∘z = s∘w = 0
        db, da, dz, dw = direction(-a * z, -s * w)
        step_p = min(_max_step(a, da), _max_step(s, -da), 1.0)
        step_d = min(_max_step(z, dz), _max_step(w, dw), 1.0)
        gap_affine = float((a + step_p * da) @ (z + step_d * dz)
                           + (s - step_p * da) @ (w + step_d * dw))
        # corrector (Mehrotra): centre more when the predictor made little progress, and
        # correct for the second-order term da∘dz the predictor ignored
        mu = (gap_affine / gap) ** 3 * gap / (2 * n)
        db, da, dz, dw = direction(mu - a * z - da * dz, mu - s * w + da * dw)
        step_p = min(STEP_FRACTION * min(_max_step(a, da), _max_step(s, -da)), 1.0)
        step_d = min(STEP_FRACTION * min(_max_step(z, dz), _max_step(w, dw)), 1.0)
        a = a + step_p * da
        s = s - step_p * da
        b = b + step_d * db
        z = z + step_d * dz
        w = w + step_d * dw
        gap = float(a @ z + s @ w)


def _small(residual: np.ndarray, scale: np.ndarray) -> bool:
    # feasibility is kept by the Newton steps up to rounding; this only guards against drift
    return float(np.max(np.abs(residual))) <= 1e-8 * (1.0 + float(np.max(np.abs(scale))))


def _max_step(v: np.ndarray, dv: np.ndarray) -> float:
    """Largest α with v + α dv ≥ 0 for v > 0 (inf if dv ≥ 0)."""
    # 1 / max(−dv / v) avoids boolean indexing, which dominates at a million rows
    fastest = float(np.max(-dv / v))
    return 1.0 / fastest if fastest > 0 else np.inf


def _factor(matrix: np.ndarray):
    try:
        return ("cholesky", scipy.linalg.cho_factor(matrix))
    except np.linalg.LinAlgError:
        # near the optimum the weights span many orders of magnitude; fall back to a
        # least-squares solve rather than fail on a numerically semi-definite matrix
        return ("lstsq", matrix)


def _solve(factor, rhs: np.ndarray) -> np.ndarray:
    kind, value = factor
    if kind == "cholesky":
        return scipy.linalg.cho_solve(value, rhs)
    return np.linalg.lstsq(value, rhs, rcond=None)[0]


def _fit_statistics(y: np.ndarray, X: np.ndarray, xtx: np.ndarray, q: float,
                    params: np.ndarray, iterations: int, gap: float, rows_solved: int) -> QuantRegFit:
    """statsmodels ``QuantReg.fit`` defaults (robust, Epanechnikov, Hall–Sheather) at params.

    Same formula as statsmodels (Greene 2008, pp. 407–408, bandwidth as in Stata 12):
    h = min(sd(y), IQR(e) / 1.34) × (Φ⁻¹(q + h_HS) − Φ⁻¹(q − h_HS)), the residual density at
    0 f = Σ K(e/h) / (n h) with the Epanechnikov kernel, and the sandwich
    (X'X)⁻¹ X'DX (X'X)⁻¹ with D = (q/f)² where e > 0, ((1 − q)/f)² elsewhere.
    """
    n, k = X.shape
    e = y - X @ params
    iqr = np.percentile(e, 75) - np.percentile(e, 25)
    h_hs = _hall_sheather(n, q)
    bandwidth = min(np.std(y), iqr / 1.34) * (stats.norm.ppf(q + h_hs)
                                              - stats.norm.ppf(q - h_hs))
    u = e / bandwidth
    density = np.sum(np.where(np.abs(u) <= 1, 0.75 * (1 - u**2), 0.0)) / (n * bandwidth)
    d = np.where(e > 0, (q / density) ** 2, ((1 - q) / density) ** 2)
    xtx_inv = np.linalg.pinv(xtx)
    cov = xtx_inv @ ((X.T * d) @ X) @ xtx_inv
    bse = np.sqrt(np.diag(cov))
    tvalues = params / bse
    df_resid = n - k
    null_loss = check_loss(y - np.percentile(y, 100 * q), q)
    objective = check_loss(e, q)
    return QuantRegFit(
        params=params, cov_params=cov, bse=bse, tvalues=tvalues,
        pvalues=2 * stats.t.sf(np.abs(tvalues), df_resid),
        prsquared=1.0 - objective / null_loss, objective=objective, gap=gap,
        iterations=iterations, q=q, nobs=n, df_resid=df_resid, bandwidth=float(bandwidth),
        sparsity=float(1.0 / density), rows_solved=rows_solved,
    )


def _hall_sheather(n: int, q: float, alpha: float = 0.05) -> float:
    """Hall–Sheather (1988) bandwidth on the probability scale, as statsmodels uses it."""
    z = stats.norm.ppf(q)
    return float(n ** (-1 / 3) * stats.norm.ppf(1 - alpha / 2) ** (2 / 3)
                 * (1.5 * stats.norm.pdf(z) ** 2 / (2 * z**2 + 1)) ** (1 / 3))
