"""Stage 03 value: current value, potential value (wallet), value tiers and their calibration.

Every function takes a customer-level frame (one row per ``customer_id``) that the warehouse
SQL has already aggregated; the docstrings name the columns each one reads. Money is yuan (元)
per year, rates are decimals.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from analysis.errors import InputError
from analysis.quantreg import quantile_regression

# ---------------------------------------------------------------------------------------------
# input checks shared by the functions below


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{what}: the frame lacks column(s) {', '.join(missing)}",
            column=missing[0],
            fix=f"provide {', '.join(missing)} (see the docstring of {what} for definitions)",
        )


def _numeric(frame: pd.DataFrame, column: str, what: str) -> pd.Series:
    series = frame[column]
    if pd.api.types.is_bool_dtype(series):
        return series.astype(float)
    if not pd.api.types.is_numeric_dtype(series):
        raise InputError(f"{what}: column {column} is not numeric (dtype {series.dtype})",
                         column=column, fix="cast it to a number; amounts in 元, rates as decimals")
    return series.astype(float)


def _first_id(frame: pd.DataFrame, mask: pd.Series) -> str:
    rows = frame.loc[mask.to_numpy()]
    if "customer_id" in rows.columns and len(rows):
        return f" (first: customer_id {rows['customer_id'].iloc[0]}, {int(mask.sum())} rows)"
    return f" ({int(mask.sum())} rows)"


# ---------------------------------------------------------------------------------------------
# current value


@dataclass(frozen=True)
class FtpCurve:
    """Funds-transfer-pricing rates (decimals) credited to deposits and charged to loans.

    The defaults are labelled assumptions: FTP is internal to each bank; 2.4% / 3.0% sit in the
    plausible 2021–2022 ranges (deposit FTP ~2.2–2.6%, 1-year loan FTP ~2.8–3.3%).
    """

    deposit_ftp: float = 0.024
    loan_ftp: float = 0.030
    source: str = "assumption"

    def __post_init__(self) -> None:
        for name in ("deposit_ftp", "loan_ftp"):
            rate = getattr(self, name)
            if not 0 <= rate < 0.5:
                raise InputError(f"FtpCurve.{name} = {rate} is not a decimal rate", column=name,
                                 fix="give rates as decimals, e.g. 0.024 for 2.4%")


CURRENT_VALUE_COLUMNS = ("customer_id", "deposit_avg_balance", "deposit_rate_paid",
                         "loan_avg_balance", "loan_rate", "pd", "lgd")


def current_value(frame: pd.DataFrame, ftp: FtpCurve | None = None, *,
                  fee_income_col: str | None = "fee_income",
                  capital_charge_rate: float = 0.0) -> pd.DataFrame:
    """Annualised contribution per customer (元/yr), each component shown.

    Input columns, one row per customer:

    - ``customer_id``
    - ``deposit_avg_balance``: 日均 deposit balance over the period, 元 (not month-end: banks'
      month-end figures are inflated, 存款偏离度).
    - ``deposit_rate_paid``: balance-weighted rate paid on those deposits, decimal; may be
      missing where the balance is 0.
    - ``loan_avg_balance``: 日均 loan balance over the period, 元.
    - ``loan_rate``: balance-weighted executed loan rate, decimal; may be missing where the
      balance is 0.
    - ``pd``: annual probability of default, ``lgd``: loss given default (both 0–1); may be
      missing where the loan balance is 0.
    - ``fee_income_col`` (default ``fee_income``): fee income, 元/yr; ``None`` means no fees.

    Returns a copy with ``deposit_contribution = (deposit_ftp − deposit_rate_paid) ×
    deposit_avg_balance``, ``loan_contribution = (loan_rate − loan_ftp) × loan_avg_balance``,
    ``expected_loss = pd × lgd × loan_avg_balance``, ``capital_charge = capital_charge_rate ×
    loan_avg_balance`` (0 by default), ``fee_income`` and ``current_value`` = deposit + loan
    contribution − expected loss − capital charge + fee income. Balances are period averages and
    rates annual, so every component is yuan per year.
    """
    what = "current_value"
    ftp = ftp or FtpCurve()
    needed = list(CURRENT_VALUE_COLUMNS) + ([fee_income_col] if fee_income_col else [])
    _require_columns(frame, needed, what)
    dep_bal = _numeric(frame, "deposit_avg_balance", what)
    loan_bal = _numeric(frame, "loan_avg_balance", what)
    for name, bal in (("deposit_avg_balance", dep_bal), ("loan_avg_balance", loan_bal)):
        bad = bal.isna() | (bal < 0)
        if bad.any():
            raise InputError(f"{what}: {name} is missing or negative{_first_id(frame, bad)}",
                             column=name, fix="use 0 for customers without the product; "
                             "check sign conventions of the balance extract")

    def _rate_where_balance(rate_col: str, bal: pd.Series) -> pd.Series:
        rate = _numeric(frame, rate_col, what)
        bad = rate.isna() & (bal > 0)
        if bad.any():
            raise InputError(f"{what}: {rate_col} is missing where the balance is positive"
                             f"{_first_id(frame, bad)}", column=rate_col,
                             fix="compute the balance-weighted rate for every customer holding "
                             "the product")
        return rate.where(bal > 0, 0.0)

    paid = _rate_where_balance("deposit_rate_paid", dep_bal)
    loan_rate = _rate_where_balance("loan_rate", loan_bal)
    pd_ = _rate_where_balance("pd", loan_bal)
    lgd = _rate_where_balance("lgd", loan_bal)
    for name, s in (("pd", pd_), ("lgd", lgd)):
        bad = (s < 0) | (s > 1)
        if bad.any():
            raise InputError(f"{what}: {name} outside 0–1{_first_id(frame, bad)}", column=name,
                             fix="give probabilities and loss rates as decimals")
    if fee_income_col:
        fees = _numeric(frame, fee_income_col, what).fillna(0.0)
    else:
        fees = pd.Series(0.0, index=frame.index)

    deposit_contribution = (ftp.deposit_ftp - paid) * dep_bal
    loan_contribution = (loan_rate - ftp.loan_ftp) * loan_bal
    expected_loss = pd_ * lgd * loan_bal
    capital_charge = capital_charge_rate * loan_bal
    return frame.assign(
        deposit_contribution=deposit_contribution,
        loan_contribution=loan_contribution,
        expected_loss=expected_loss,
        capital_charge=capital_charge,
        fee_income=fees,
        current_value=deposit_contribution + loan_contribution - expected_loss
        - capital_charge + fees,
    )


# ---------------------------------------------------------------------------------------------
# potential value (wallet) by high-quantile regression


@dataclass(frozen=True)
class _Design:
    """How driver columns become regressors, kept so the fitted model can score new frames."""

    numeric: tuple[str, ...]
    logged: tuple[str, ...]
    categorical: tuple[tuple[str, str, tuple[str, ...]], ...]  # (column, reference, other levels)

    @property
    def terms(self) -> list[str]:
        return (["const"] + list(self.numeric) + [f"log1p({c})" for c in self.logged]
                + [f"{c}[{lvl}]" for c, _, levels in self.categorical for lvl in levels])

    def matrix(self, frame: pd.DataFrame, what: str) -> pd.DataFrame:
        # filled column by column into one float array in term order: a dict of columns made
        # into a frame and reordered copied it twice (1 s at a million customers)
        terms = self.terms
        out = np.zeros((len(frame), len(terms)), order="F")   # columns contiguous, as filled
        out[:, 0] = 1.0
        j = 1
        for c in self.numeric:
            values = _numeric(frame, c, what)
            if values.isna().any():
                raise InputError(f"{what}: driver {c} has missing values"
                                 f"{_first_id(frame, values.isna())}", column=c,
                                 fix="fill a meaningful value upstream (0 for no tax / no "
                                 "inflows) or drop the customers")
            out[:, j] = values.to_numpy()
            j += 1
        for c in self.logged:
            values = _numeric(frame, c, what)
            bad = values.isna() | (values < 0)
            if bad.any():
                raise InputError(f"{what}: log driver {c} is missing or negative"
                                 f"{_first_id(frame, bad)}", column=c,
                                 fix="log drivers are amounts ≥ 0 (元); fill 0 where none")
            out[:, j] = np.log1p(values.to_numpy())
            j += 1
        for c, reference, levels in self.categorical:
            values = frame[c]
            if values.isna().any():
                raise InputError(f"{what}: categorical driver {c} has missing values"
                                 f"{_first_id(frame, values.isna())}", column=c,
                                 fix="map missing codes to an explicit level such as '未知'")
            text = values.astype(str)
            # one hashing pass over the rows, then the few distinct values: code 0 is the
            # reference level, 1.. the dummies in order, −1 a level the model does not know
            seen, distinct = pd.factorize(text)
            position = {v: i for i, v in enumerate([reference, *levels])}
            codes = np.array([position.get(v, -1) for v in distinct], dtype=np.int64)[seen]
            if (codes < 0).any():
                raise InputError(f"{what}: {c} has level(s) the model was not fitted on: "
                                 f"{sorted(text[codes < 0].unique())[:5]}", column=c,
                                 fix="refit the model on data containing these levels")
            rows = np.flatnonzero(codes > 0)
            out[rows, j + codes[rows] - 1] = 1.0
            j += len(levels)
        return pd.DataFrame(out, index=frame.index, columns=terms, copy=False)


def _build_design(frame: pd.DataFrame, drivers: Sequence[str], log_drivers: Sequence[str],
                  reference_levels: Mapping[str, str], what: str) -> _Design:
    numeric, categorical = [], []
    for c in drivers:
        s = frame[c]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            numeric.append(c)
            continue
        text = s.dropna().astype(str)
        counts = text.value_counts()
        # the most frequent level is the default reference: its coefficients are the best
        # estimated, and "compared with the typical customer" reads naturally
        ref = reference_levels.get(c) or sorted(counts.index, key=lambda v: (-counts[v], v))[0]
        if ref not in counts.index:
            raise InputError(f"{what}: reference level {ref!r} does not occur in {c}",
                             column=c, fix=f"choose one of {sorted(counts.index)[:10]}")
        categorical.append((c, ref, tuple(sorted(v for v in counts.index if v != ref))))
    for c in numeric:
        if _numeric(frame, c, what).nunique() < 2:
            raise InputError(f"{what}: driver {c} is constant", column=c,
                             fix="drop it from the drivers")
    return _Design(tuple(numeric), tuple(log_drivers), tuple(categorical))


@dataclass(frozen=True)
class PotentialModel:
    """A fitted wallet model: the ``quantile``-th conditional quantile of value given drivers.

    ``params`` is indexed by term (``const``, numeric drivers, ``log1p(x)``, ``column[level]``
    for one-hot levels against ``reference_levels``) with columns coef, std_err, ci_low,
    ci_high, p_value. On ``scale='log1p'`` a coefficient is the change in log(1 + value): for
    a one-hot level, exp(coef) − 1 is the relative difference from the reference level.
    ``pseudo_r2`` is Koenker–Machado R¹ = 1 − V̂(fitted) / Ṽ(intercept-only), the share of the
    check-loss explained at that quantile.
    """

    params: pd.DataFrame
    pseudo_r2: float
    quantile: float
    n: int
    scale: Literal["log1p", "level"]
    target: str
    reference_levels: dict[str, str]
    _design: _Design = field(repr=False)

    def predict(self, frame: pd.DataFrame) -> pd.Series:
        """Predicted wallet (元/yr, on the value scale) for each row of ``frame``."""
        x = self._design.matrix(frame, "PotentialModel.predict")
        linear = x.to_numpy() @ self.params["coef"].to_numpy()
        # quantiles are equivariant to monotone maps, so expm1 of the log-scale quantile is the
        # quantile of value itself (no retransformation bias as there would be for a mean)
        values = np.expm1(linear) if self.scale == "log1p" else linear
        return pd.Series(values, index=frame.index, name="predicted_wallet")

    def to_dict(self) -> dict[str, Any]:
        return {
            "quantile": self.quantile, "n": self.n, "pseudo_r2": self.pseudo_r2,
            "scale": self.scale, "target": self.target,
            "reference_levels": dict(self.reference_levels),
            "params": self.params.reset_index(names="term").to_dict(orient="records"),
        }


def potential_value(frame: pd.DataFrame, drivers: Sequence[str], *,
                    log_drivers: Sequence[str] = (), target: str = "current_value",
                    quantile: float = 0.8, scale: Literal["log1p", "level"] = "log1p",
                    reference_levels: Mapping[str, str] | None = None,
                    alpha: float = 0.05) -> tuple[pd.DataFrame, PotentialModel]:
    """Potential value (wallet) as what similar customers at the top already achieve.

    Fits a linear quantile regression of ``target`` (default ``current_value``, 元/yr) at
    ``quantile`` (default 0.8) on the drivers, so a customer's potential is the value reached
    by the top 20% of customers who look like them. The fit is the exact LP optimum from
    ``analysis.quantreg.quantile_regression`` (Frisch–Newton interior point, from 50,000
    customers on a reduced problem after Portnoy–Koenker preprocessing; 5–10× faster than
    statsmodels' IRLS ``QuantReg`` at 10⁵–10⁶ customers); standard errors, intervals, p-values
    (Student t) and pseudo R² use statsmodels ``QuantReg``'s default kernel-sandwich formulas,
    and the tests check coefficients and statistics against statsmodels.

    Input columns: ``target`` plus

    - ``drivers``: numeric columns enter as they are (e.g. ``years_in_business``,
      ``employees``, already-logged ``log_turnover``); any non-numeric column (e.g.
      ``industry_code``, ``customer_type``) is one-hot encoded against a reference level, by
      default its most frequent level (override with ``reference_levels``).
    - ``log_drivers``: long-tailed amounts ≥ 0 (元) entered as log1p(x): e.g. annual turnover,
      tax paid, invoice amount, monthly inflows, other-bank same-name transfers.

    ``scale='log1p'`` (default) models log(1 + max(value, 0)): wallets are long-tailed and
    multiplicative in size, so a log-linear model fits and the largest customers do not
    dominate. Negative values are set to 0 first; that changes no conditional quantile that
    is positive (a monotone map), and loss-making customers have no wallet to speak of.
    Predictions are mapped back with expm1, which is exact for quantiles. ``scale='level'``
    regresses the value itself.

    Returns (frame copy with ``predicted_wallet``, ``potential_value = max(predicted_wallet,
    target)`` and ``headroom = potential_value − target``; the fitted ``PotentialModel``).
    """
    what = "potential_value"
    reference_levels = dict(reference_levels or {})
    if not 0 < quantile < 1:
        raise InputError(f"{what}: quantile {quantile} is not in (0, 1)", column="quantile",
                         fix="use e.g. 0.8 for the top fifth")
    if scale not in ("log1p", "level"):
        raise InputError(f"{what}: scale {scale!r} is not 'log1p' or 'level'", column="scale",
                         fix="use 'log1p' for long-tailed values")
    if not drivers and not log_drivers:
        raise InputError(f"{what}: no drivers given", fix="name at least one driver column")
    _require_columns(frame, [target, *drivers, *log_drivers], what)
    y_value = _numeric(frame, target, what)
    if y_value.isna().any():
        raise InputError(f"{what}: {target} has missing values"
                         f"{_first_id(frame, y_value.isna())}", column=target,
                         fix="compute current_value first; every customer has one")
    design = _build_design(frame, drivers, log_drivers, reference_levels, what)
    x = design.matrix(frame, what)
    if len(frame) < 5 * x.shape[1]:
        raise InputError(f"{what}: {len(frame)} customers for {x.shape[1]} terms is too few",
                         fix="use fewer drivers or merge rare categorical levels")
    xv = x.to_numpy(dtype=float)
    # rank of X'X (k × k): an SVD of X itself took 1.1 s at a million customers
    if np.linalg.matrix_rank(xv.T @ xv, hermitian=True) < x.shape[1]:
        raise InputError(f"{what}: the drivers are collinear (terms {list(x.columns)})",
                         fix="drop a driver that is a combination of others")
    y = np.log1p(y_value.clip(lower=0.0)) if scale == "log1p" else y_value
    fit = quantile_regression(y.to_numpy(), xv, quantile)
    ci = fit.conf_int(alpha=alpha)
    params = pd.DataFrame({
        "coef": fit.params, "std_err": fit.bse, "ci_low": ci[:, 0], "ci_high": ci[:, 1],
        "p_value": fit.pvalues,
    }, index=x.columns)
    params.index.name = "term"
    model = PotentialModel(
        params=params, pseudo_r2=float(fit.prsquared), quantile=quantile, n=fit.nobs,
        scale=scale, target=target,
        reference_levels={c: ref for c, ref, _ in design.categorical}, _design=design,
    )
    predicted = model.predict(frame)
    potential = np.maximum(predicted, y_value)
    return frame.assign(predicted_wallet=predicted, potential_value=potential,
                        headroom=potential - y_value), model


# ---------------------------------------------------------------------------------------------
# tier scheme (catalogue) and tier assignment


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BandDefinition(_Strict):
    """A value band on either axis of the grid, lowest first."""

    id: str
    label_zh: str
    label_en: str


class TierDefinition(_Strict):
    """A named tier and its service model."""

    id: str
    label_zh: str
    label_en: str
    rank: int  # 1 = most valuable; orders tables and charts
    visits_per_month: float  # RM visit cadence
    coverage_zh: str
    coverage_en: str
    discount_band_bp: tuple[float, float]  # pricing discount off the guide rate, bp (min, max)

    @model_validator(mode="after")
    def _band_ordered(self) -> TierDefinition:
        lo, hi = self.discount_band_bp
        if not 0 <= lo <= hi:
            raise ValueError(f"discount_band_bp {self.discount_band_bp} must be 0 ≤ min ≤ max")
        return self


class TierScheme(_Strict):
    """Bands per axis, the named tiers, and the grid mapping (current band, potential band) → tier.

    ``grid[current_band][potential_band] = tier code``; every band pair must be mapped.
    Load a bank's scheme from its tier catalogue with ``TierScheme.from_catalog(data)``.
    """

    bands: list[BandDefinition]
    tiers: list[TierDefinition]
    grid: dict[str, dict[str, str]]

    @model_validator(mode="after")
    def _consistent(self) -> TierScheme:
        band_codes = [b.id for b in self.bands]
        tier_codes = [t.id for t in self.tiers]
        if len(band_codes) < 2 or len(set(band_codes)) != len(band_codes):
            raise ValueError(f"bands must be ≥ 2 distinct codes, got {band_codes}")
        if len(set(tier_codes)) != len(tier_codes):
            raise ValueError(f"tier codes repeat: {tier_codes}")
        for cb in band_codes:
            row = self.grid.get(cb)
            if row is None:
                raise ValueError(f"grid has no row for current band {cb!r}")
            for pb in band_codes:
                if row.get(pb) not in tier_codes:
                    raise ValueError(f"grid[{cb!r}][{pb!r}] = {row.get(pb)!r} is not a tier "
                                     f"code ({tier_codes})")
        extra = set(self.grid) - set(band_codes) | {
            pb for row in self.grid.values() for pb in row if pb not in band_codes}
        if extra:
            raise ValueError(f"grid names unknown band(s) {sorted(extra)}")
        return self

    @classmethod
    def from_catalog(cls, data: Mapping[str, Any], *, file: str | None = None) -> TierScheme:
        """Validate a tier catalogue (e.g. YAML ``safe_load`` output); errors name the key."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            raise InputError(f"tier catalogue: {err['msg']}", file=file, column=key,
                             fix="see TierScheme in analysis.value for the expected keys") from exc

    @property
    def band_codes(self) -> list[str]:
        return [b.id for b in self.bands]

    @property
    def tier_order(self) -> list[str]:
        return [t.id for t in sorted(self.tiers, key=lambda t: t.rank)]

    def tier(self, tier_id: str) -> TierDefinition:
        return next(t for t in self.tiers if t.id == tier_id)


DEFAULT_TIER_SCHEME_DATA: dict[str, Any] = {
    # 3 × 3 grid of current value × headroom onto 6 tiers. Visit cadence follows the one
    # sourced example (中行武威: 行长 ≥ 1/month, RM ≥ 3/month for the top class); the rest,
    # and the discount bands, are design assumptions to be replaced by the bank's catalogue.
    "bands": [
        {"id": "low", "label_zh": "低", "label_en": "Low"},
        {"id": "mid", "label_zh": "中", "label_en": "Mid"},
        {"id": "high", "label_zh": "高", "label_en": "High"},
    ],
    "tiers": [
        {"id": "strategic", "label_zh": "战略客户", "label_en": "Strategic", "rank": 1,
         "visits_per_month": 4, "coverage_zh": "支行行长挂点 + 专属客户经理",
         "coverage_en": "Sub-branch head sponsor + dedicated RM", "discount_band_bp": (40, 60)},
        {"id": "core", "label_zh": "核心客户", "label_en": "Core", "rank": 2,
         "visits_per_month": 3, "coverage_zh": "专属客户经理，守住份额",
         "coverage_en": "Dedicated RM, defend share of wallet", "discount_band_bp": (25, 40)},
        {"id": "key", "label_zh": "重点客户", "label_en": "Key", "rank": 3,
         "visits_per_month": 2, "coverage_zh": "客户经理重点名单",
         "coverage_en": "RM priority list", "discount_band_bp": (15, 25)},
        {"id": "potential", "label_zh": "潜力客户", "label_en": "Potential", "rank": 4,
         "visits_per_month": 2, "coverage_zh": "客户经理 + 产品经理联合拓展",
         "coverage_en": "RM with product specialist, development plan",
         "discount_band_bp": (15, 30)},
        {"id": "general", "label_zh": "一般客户", "label_en": "General", "rank": 5,
         "visits_per_month": 0.33, "coverage_zh": "网格客户经理季度走访 + 远程银行",
         "coverage_en": "Grid RM quarterly visit + remote banking", "discount_band_bp": (0, 10)},
        {"id": "long_tail", "label_zh": "长尾客户", "label_en": "Long tail", "rank": 6,
         "visits_per_month": 0, "coverage_zh": "线上批量经营",
         "coverage_en": "Digital batch servicing", "discount_band_bp": (0, 0)},
    ],
    # grid[current band][headroom band]
    "grid": {
        "high": {"high": "strategic", "mid": "core", "low": "core"},
        "mid": {"high": "potential", "mid": "key", "low": "general"},
        "low": {"high": "potential", "mid": "general", "low": "long_tail"},
    },
}

DEFAULT_TIER_SCHEME = TierScheme.model_validate(DEFAULT_TIER_SCHEME_DATA)

# A/B/C ≈ 20/30/50% of customers (DOMAIN.md §2, S19): bottom half low, next 30% mid, top 20% high
DEFAULT_CUTS = (0.5, 0.8)


@dataclass(frozen=True)
class TierThresholds:
    """The band thresholds used, in yuan, and how they were chosen.

    ``method`` is ``quantile`` (cuts are quantile levels), ``value`` (cuts are yuan) or
    ``target_shares`` (quantile levels searched to match target tier shares). A customer is
    in a higher band only if strictly above the threshold (ties stay below).
    """

    current_col: str
    potential_col: str
    method: Literal["quantile", "value", "target_shares"]
    current_thresholds: tuple[float, ...]
    potential_thresholds: tuple[float, ...]
    current_quantiles: tuple[float, ...] | None = None
    potential_quantiles: tuple[float, ...] | None = None
    target_shares: dict[str, float] | None = None
    achieved_shares: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def _band_index(values: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    # side="left": a value equal to a threshold stays in the lower band, so a mass of zeros at
    # the median threshold is not promoted
    return np.searchsorted(np.asarray(thresholds, dtype=float), values, side="left")


def _cut_levels(cuts: Sequence[float], n_bands: int, name: str, quantiles: bool) -> tuple:
    cuts = tuple(float(c) for c in cuts)
    if len(cuts) != n_bands - 1 or any(b < a for a, b in itertools.pairwise(cuts)):
        raise InputError(f"assign_tiers: {name} {cuts} must be {n_bands - 1} ascending cuts",
                         column=name, fix=f"give {n_bands - 1} cuts for {n_bands} bands")
    if quantiles and not all(0 < c < 1 for c in cuts):
        raise InputError(f"assign_tiers: quantile {name} {cuts} must lie in (0, 1)",
                         column=name, fix="use e.g. (0.5, 0.8)")
    return cuts


def cuts_for_target_shares(frame: pd.DataFrame, target_shares: Mapping[str, float], *,
                           current_col: str = "current_value", potential_col: str = "headroom",
                           scheme: TierScheme | None = None,
                           step: float = 0.05) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Quantile cuts per axis whose tiers come closest to ``target_shares`` (tier → share).

    Searches every pair of ascending cut sets on a grid of quantile levels ``step`` apart and
    minimises the sum of squared differences between achieved and target shares over the
    tiers named in ``target_shares``. Returns (current quantile cuts, potential quantile cuts).
    """
    scheme = scheme or DEFAULT_TIER_SCHEME
    unknown = set(target_shares) - set(scheme.tier_order)
    if unknown:
        raise InputError(f"cuts_for_target_shares: unknown tier(s) {sorted(unknown)}",
                         column="target_shares", fix=f"use tier codes {scheme.tier_order}")
    if not 0 < step < 0.5:
        raise InputError(f"cuts_for_target_shares: step {step} not in (0, 0.5)", column="step",
                         fix="use e.g. 0.05")
    _require_columns(frame, [current_col, potential_col], "cuts_for_target_shares")
    grid = np.round(np.arange(step, 1 - step / 2, step), 10)
    m, k = len(grid), len(scheme.bands)
    bins = []
    for col in (current_col, potential_col):
        values = _numeric(frame, col, "cuts_for_target_shares").to_numpy()
        bins.append(_band_index(values, np.quantile(values, grid)))
    # 2-D histogram over fine bins, then prefix sums give any band rectangle's count in O(1)
    hist = np.zeros((m + 1, m + 1))
    np.add.at(hist, (bins[0], bins[1]), 1.0)
    prefix = np.zeros((m + 2, m + 2))
    prefix[1:, 1:] = hist.cumsum(0).cumsum(1)
    combos = np.array(list(itertools.combinations(range(m), k - 1)))
    if len(combos) ** 2 * k * k > 5e7:  # the search holds every pair of cut sets in memory
        raise InputError(f"cuts_for_target_shares: {k} bands at step {step} is too fine a "
                         "search", column="step", fix="use a larger step, e.g. 0.1")
    edges = np.column_stack([np.zeros(len(combos), int), combos + 1,
                             np.full(len(combos), m + 1)])  # band b covers bins [e_b, e_b+1)
    r0, r1 = edges[:, None, :-1, None], edges[:, None, 1:, None]
    c0, c1 = edges[None, :, None, :-1], edges[None, :, None, 1:]
    cells = prefix[r1, c1] - prefix[r0, c1] - prefix[r1, c0] + prefix[r0, c0]
    cells /= len(frame)  # (combo_current, combo_potential, current band, potential band)
    loss = np.zeros(cells.shape[:2])
    for tier, target in target_shares.items():
        share = sum(cells[:, :, i, j] for i, cb in enumerate(scheme.band_codes)
                    for j, pb in enumerate(scheme.band_codes) if scheme.grid[cb][pb] == tier)
        loss += (share - target) ** 2
    ic, ip = np.unravel_index(np.argmin(loss), loss.shape)
    return tuple(float(grid[i]) for i in combos[ic]), tuple(float(grid[i]) for i in combos[ip])


def assign_tiers(frame: pd.DataFrame, current_col: str = "current_value",
                 potential_col: str = "headroom", *,
                 cuts: Sequence[float] = DEFAULT_CUTS,
                 potential_cuts: Sequence[float] | None = None,
                 cut_type: Literal["quantile", "value"] = "quantile",
                 target_shares: Mapping[str, float] | None = None,
                 scheme: TierScheme | Mapping[str, Any] | None = None,
                 ) -> tuple[pd.DataFrame, TierThresholds]:
    """Place each customer on the current × potential grid and name its tier.

    Input columns: ``current_col`` (default ``current_value``, 元/yr) and ``potential_col``
    (default ``headroom`` = potential − current, 元/yr). Headroom rather than potential value
    is the default second axis because potential ≥ current by construction: ranking potential
    mostly re-ranks current, while headroom separates the large-but-saturated (core) from the
    large-and-growing (strategic).

    Thresholds: ``cuts`` are quantile levels (``cut_type='quantile'``, default (0.5, 0.8):
    bottom 50% low, next 30% mid, top 20% high) or yuan (``cut_type='value'``, e.g. a bank's
    absolute 日均 floors); ``potential_cuts`` defaults to ``cuts``. With ``target_shares``
    (tier → share) the quantile cuts are searched to match the target tier sizes instead.
    ``scheme`` is a ``TierScheme`` or its catalogue dict (default ``DEFAULT_TIER_SCHEME``).

    Returns (frame copy with ``current_band``, ``potential_band`` and ``tier`` codes;
    ``TierThresholds``).
    """
    what = "assign_tiers"
    if scheme is None:
        scheme = DEFAULT_TIER_SCHEME
    elif not isinstance(scheme, TierScheme):
        scheme = TierScheme.from_catalog(scheme)
    _require_columns(frame, [current_col, potential_col], what)
    current = _numeric(frame, current_col, what)
    potential = _numeric(frame, potential_col, what)
    for col, s in ((current_col, current), (potential_col, potential)):
        if s.isna().any():
            raise InputError(f"{what}: {col} has missing values{_first_id(frame, s.isna())}",
                             column=col, fix="compute value for every customer first")
    if len(frame) == 0:
        raise InputError(f"{what}: the frame is empty", fix="pass at least one customer")
    n_bands = len(scheme.bands)
    method: Literal["quantile", "value", "target_shares"] = cut_type
    if target_shares is not None:
        cuts, potential_cuts = cuts_for_target_shares(
            frame, target_shares, current_col=current_col, potential_col=potential_col,
            scheme=scheme)
        method, cut_type = "target_shares", "quantile"
    if cut_type not in ("quantile", "value"):
        raise InputError(f"{what}: cut_type {cut_type!r} is not 'quantile' or 'value'",
                         column="cut_type", fix="use 'quantile' or 'value'")
    quantiles = cut_type == "quantile"
    c_cuts = _cut_levels(cuts, n_bands, "cuts", quantiles)
    p_cuts = _cut_levels(potential_cuts if potential_cuts is not None else cuts, n_bands,
                         "potential_cuts", quantiles)
    if quantiles:
        c_thr = tuple(float(v) for v in np.quantile(current.to_numpy(), c_cuts))
        p_thr = tuple(float(v) for v in np.quantile(potential.to_numpy(), p_cuts))
    else:
        c_thr, p_thr = c_cuts, p_cuts
    codes = np.array(scheme.band_codes, dtype=object)
    c_band = codes[_band_index(current.to_numpy(), c_thr)]
    p_band = codes[_band_index(potential.to_numpy(), p_thr)]
    tier = [scheme.grid[c][p] for c, p in zip(c_band, p_band, strict=True)]
    out = frame.assign(current_band=pd.array(c_band, dtype="string"),
                       potential_band=pd.array(p_band, dtype="string"),
                       tier=pd.array(tier, dtype="string"))
    achieved = out["tier"].value_counts(normalize=True)
    thresholds = TierThresholds(
        current_col=current_col, potential_col=potential_col, method=method,
        current_thresholds=c_thr, potential_thresholds=p_thr,
        current_quantiles=c_cuts if quantiles else None,
        potential_quantiles=p_cuts if quantiles else None,
        target_shares=dict(target_shares) if target_shares is not None else None,
        achieved_shares={t: float(achieved.get(t, 0.0)) for t in scheme.tier_order},
    )
    return out, thresholds


# ---------------------------------------------------------------------------------------------
# concentration


def _clean_values(values: Any, negatives: str, what: str) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0 or np.isnan(x).any():
        raise InputError(f"{what}: values are empty or contain missing values",
                         fix="pass one finite value per customer")
    if (x < 0).any():
        if negatives == "raise":
            raise InputError(f"{what}: {int((x < 0).sum())} negative values",
                             fix="pass negatives='clip' to count loss-making customers as 0")
        x = np.clip(x, 0.0, None)
    if x.sum() <= 0:
        raise InputError(f"{what}: the values sum to zero; concentration is undefined",
                         fix="check that value was computed")
    return x


def gini(values: Any, *, negatives: Literal["clip", "raise"] = "clip") -> float:
    """Gini coefficient of value across customers (population definition).

    G = Σᵢ Σⱼ |xᵢ − xⱼ| / (2 n² x̄) = 1 − 2 × (area under the Lorenz curve drawn by
    ``lorenz_curve``). No n/(n − 1) correction, so one customer holding everything among n
    gives (n − 1)/n: gini([0, 0, 0, 1]) = 0.75, gini([1, 2, 3, 4]) = 0.25. Negative values
    (loss-making customers) are set to 0 by default, as a Lorenz curve needs non-negative
    shares.
    """
    x = np.sort(_clean_values(values, negatives, "gini"))
    n = x.size
    ranks = np.arange(1, n + 1)
    return float(2.0 * np.sum(ranks * x) / (n * x.sum()) - (n + 1) / n)


def lorenz_curve(values: Any, *, points: int | None = None,
                 negatives: Literal["clip", "raise"] = "clip") -> pd.DataFrame:
    """Lorenz curve: ``customer_share`` (poorest first) against cumulative ``value_share``.

    Starts at (0, 0) and ends at (1, 1); n + 1 rows, or ``points`` rows evenly spaced in
    customer share (linear interpolation) for plotting large books.
    """
    x = np.sort(_clean_values(values, negatives, "lorenz_curve"))
    customer_share = np.arange(x.size + 1) / x.size
    value_share = np.concatenate([[0.0], np.cumsum(x) / x.sum()])
    if points is not None:
        grid = np.linspace(0.0, 1.0, points)
        value_share, customer_share = np.interp(grid, customer_share, value_share), grid
    return pd.DataFrame({"customer_share": customer_share, "value_share": value_share})


def top_value_share(values: Any, top: float = 0.2, *,
                    negatives: Literal["clip", "raise"] = "clip") -> float:
    """Share of total value held by the top ``top`` fraction of customers (二八法则 check)."""
    if not 0 < top <= 1:
        raise InputError(f"top_value_share: top {top} not in (0, 1]", column="top",
                         fix="use e.g. 0.2")
    curve = lorenz_curve(values, negatives=negatives)
    return float(1.0 - np.interp(1.0 - top, curve["customer_share"], curve["value_share"]))


def tier_summary(frame: pd.DataFrame, *, tier_col: str = "tier",
                 current_col: str = "current_value", potential_col: str = "potential_value",
                 scheme: TierScheme | None = None) -> pd.DataFrame:
    """Customers and value by tier, in scheme order (tiers with no customers included).

    Input columns: ``tier_col``, ``current_col`` (元/yr), ``potential_col`` (元/yr).
    Returns tier, label_zh, label_en, customers, share (of customers), value_share (of total
    current value, losses included, so a tier of loss-making customers has a negative share),
    avg_current, avg_potential, avg_headroom.
    """
    scheme = scheme or DEFAULT_TIER_SCHEME
    _require_columns(frame, [tier_col, current_col, potential_col], "tier_summary")
    unknown = set(frame[tier_col].dropna().astype(str)) - set(scheme.tier_order)
    if unknown or frame[tier_col].isna().any():
        raise InputError(f"tier_summary: tiers {sorted(unknown) or ['<missing>']} are not in "
                         "the scheme", column=tier_col, fix="assign tiers with the same scheme")
    data = pd.DataFrame({"tier": frame[tier_col].astype(str),
                         "current": _numeric(frame, current_col, "tier_summary"),
                         "potential": _numeric(frame, potential_col, "tier_summary")})
    grouped = data.groupby("tier").agg(customers=("current", "size"),
                                       value=("current", "sum"),
                                       avg_current=("current", "mean"),
                                       avg_potential=("potential", "mean"))
    grouped = grouped.reindex(scheme.tier_order)
    grouped["customers"] = grouped["customers"].fillna(0).astype(int)
    total_value = data["current"].sum()
    out = pd.DataFrame({
        "tier": scheme.tier_order,
        "label_zh": [scheme.tier(t).label_zh for t in scheme.tier_order],
        "label_en": [scheme.tier(t).label_en for t in scheme.tier_order],
        "customers": grouped["customers"].to_numpy(),
        "share": grouped["customers"].to_numpy() / len(data),
        "value_share": grouped["value"].fillna(0.0).to_numpy() / total_value
        if total_value != 0 else np.nan,
        "avg_current": grouped["avg_current"].to_numpy(),
        "avg_potential": grouped["avg_potential"].to_numpy(),
    })
    return out.assign(avg_headroom=out["avg_potential"] - out["avg_current"])


# ---------------------------------------------------------------------------------------------
# stability and backtest


@dataclass(frozen=True)
class TierMigration:
    """Tier transitions between two dates for the customers present at both.

    ``counts``: from-tier rows × to-tier columns; ``matrix``: the same, each row divided by its
    total (rows with no customers are NaN); ``share_staying``: overall share on the diagonal;
    ``staying_by_tier``: diagonal of ``matrix``.
    """

    counts: pd.DataFrame
    matrix: pd.DataFrame
    share_staying: float
    staying_by_tier: pd.Series
    n_matched: int
    n_only_t0: int
    n_only_t1: int


def migration_matrix(tiers_t0: pd.DataFrame, tiers_t1: pd.DataFrame, *,
                     tier_col: str = "tier", order: Sequence[str] | None = None) -> TierMigration:
    """Row-normalised tier migration matrix from t0 to t1.

    Input: two frames with ``customer_id`` and ``tier_col``, one row per customer. Customers
    in only one frame (new or closed) are counted, not placed in the matrix. ``order`` gives
    the tier order (default: the default scheme's order when all tiers belong to it, else
    sorted).
    """
    what = "migration_matrix"
    for name, f in (("tiers_t0", tiers_t0), ("tiers_t1", tiers_t1)):
        _require_columns(f, ["customer_id", tier_col], what)
        dup = f["customer_id"].duplicated()
        if dup.any():
            raise InputError(f"{what}: {name} repeats customer_id {f['customer_id'][dup].iloc[0]}",
                             column="customer_id", fix="pass one row per customer")
    merged = tiers_t0[["customer_id", tier_col]].merge(
        tiers_t1[["customer_id", tier_col]], on="customer_id", suffixes=("_t0", "_t1"))
    if merged.empty:
        raise InputError(f"{what}: no customer is present at both dates", column="customer_id",
                         fix="check that both frames use the same customer_id")
    from_t, to_t = merged[f"{tier_col}_t0"].astype(str), merged[f"{tier_col}_t1"].astype(str)
    seen = set(from_t) | set(to_t)
    if order is None:
        default = DEFAULT_TIER_SCHEME.tier_order
        order = default if seen <= set(default) else sorted(seen)
    order = list(order)
    if not seen <= set(order):
        raise InputError(f"{what}: tiers {sorted(seen - set(order))} are not in order",
                         column=tier_col, fix="list every tier in order")
    counts = pd.crosstab(pd.Categorical(from_t, categories=order),
                         pd.Categorical(to_t, categories=order), dropna=False)
    counts = counts.reindex(index=order, columns=order, fill_value=0)
    counts.index.name, counts.columns.name = "tier_t0", "tier_t1"
    row_totals = counts.sum(axis=1)
    matrix = counts.div(row_totals.where(row_totals > 0), axis=0)
    diagonal = pd.Series(np.diag(counts.to_numpy()), index=order)
    ids0, ids1 = set(tiers_t0["customer_id"]), set(tiers_t1["customer_id"])
    return TierMigration(
        counts=counts, matrix=matrix,
        share_staying=float(diagonal.sum() / len(merged)),
        staying_by_tier=pd.Series(np.diag(matrix.to_numpy()), index=order, name="share_staying"),
        n_matched=len(merged), n_only_t0=len(ids0 - ids1), n_only_t1=len(ids1 - ids0),
    )


def tier_growth_backtest(frame: pd.DataFrame, group_col: str,
                         growth_col: str | Sequence[str], *, high: Any = True,
                         alpha: float = 0.05) -> pd.DataFrame:
    """Did customers ranked high-potential at month t grow more afterwards than the rest?

    Input columns: ``group_col`` (the ranking at t: a boolean flag, or tiers with ``high`` a
    collection of tier codes such as ``{"strategic", "potential"}``) and one or more
    ``growth_col`` (growth from t to t+6, t+12, ..., e.g. change in 日均 balance or value in
    元; rows with missing growth, e.g. closed customers, are left out and not counted).

    Returns one row per growth column: growth, n_high, n_rest, mean_high, mean_rest,
    difference (high − rest), ci_low, ci_high, p_value (Welch's unequal-variance t test,
    statsmodels ``CompareMeans``), method.
    """
    what = "tier_growth_backtest"
    growth_cols = [growth_col] if isinstance(growth_col, str) else list(growth_col)
    _require_columns(frame, [group_col, *growth_cols], what)
    if isinstance(high, Collection) and not isinstance(high, str):
        is_high = frame[group_col].isin(list(high))
    else:
        is_high = frame[group_col] == high
    is_high = is_high.fillna(False).astype(bool)
    rows = []
    for col in growth_cols:
        growth = _numeric(frame, col, what)
        keep = growth.notna()
        g_high = growth[keep & is_high].to_numpy()
        g_rest = growth[keep & ~is_high].to_numpy()
        if len(g_high) < 2 or len(g_rest) < 2:
            raise InputError(f"{what}: {col} needs ≥ 2 customers in each group "
                             f"(high {len(g_high)}, rest {len(g_rest)})", column=group_col,
                             fix="check the high-potential flag or the value of `high`")
        compare = CompareMeans(DescrStatsW(g_high), DescrStatsW(g_rest))
        _, p_value, _ = compare.ttest_ind(usevar="unequal")
        ci_low, ci_high = compare.tconfint_diff(alpha=alpha, usevar="unequal")
        rows.append({
            "growth": col, "n_high": len(g_high), "n_rest": len(g_rest),
            "mean_high": float(g_high.mean()), "mean_rest": float(g_rest.mean()),
            "difference": float(g_high.mean() - g_rest.mean()),
            "ci_low": float(ci_low), "ci_high": float(ci_high), "p_value": float(p_value),
            "method": "Welch t",
        })
    return pd.DataFrame(rows)
