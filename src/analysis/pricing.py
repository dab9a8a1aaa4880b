"""Stage 03 pricing (一户一价): floors, per-customer offers, take-up elasticity, policy simulation.

Rates are decimals (0.0385 = 3.85%); names ending ``_bp`` are basis points (1 bp = 0.0001).
Money is yuan (元) per year.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas
import pandas as pd
import statsmodels.api as sm
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy.special import expit, logit

from analysis.errors import InputError
from analysis.value import FtpCurve, _numeric, _require_columns

BP = 1e-4

APPROVAL_LEVELS: dict[str, tuple[str, str]] = {
    # code: (label_zh, label_en), in increasing authority
    "sub_branch": ("支行", "Sub-branch"),
    "branch": ("分行", "Branch"),
    "head_office": ("总行", "Head office"),
}


# ---------------------------------------------------------------------------------------------
# policy


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContributionStep(_Strict):
    """Extra discount for customers whose historical contribution reaches ``min_contribution``."""

    min_contribution: float  # 元/yr
    discount_bp: float = Field(ge=0)


class ApprovalBands(_Strict):
    """Who may approve an offer, by bp below the guide rate (inclusive upper bounds)."""

    sub_branch_max_bp: float = Field(default=30, ge=0)  # 支行
    branch_max_bp: float = Field(default=60, ge=0)  # 分行; beyond goes to 总行

    @model_validator(mode="after")
    def _ordered(self) -> ApprovalBands:
        if self.branch_max_bp < self.sub_branch_max_bp:
            raise ValueError("branch_max_bp must be ≥ sub_branch_max_bp")
        return self


class PricingPolicy(_Strict):
    """The pricing rules of one engagement, loaded from the pricing catalogue.

    Every default is a labelled design assumption (no published bp tables exist for floors or
    authority, DOMAIN.md §3); the bank's catalogue replaces them.

    - ``operating_cost_rate``: operating cost per yuan of loan per year.
    - ``capital_ratio``: economic capital per yuan of loan.
    - ``hurdle_raroc``: the return on economic capital a loan must earn.
    - ``capital_funding_benefit``: capital funds part of the loan, so that part needs no
      FTP funding; if true the capital charge is ``capital_ratio × (hurdle − ftp)``, else
      ``capital_ratio × hurdle``.
    - ``lpr_1y`` and the regulatory floor: ``max(lpr_1y + floor_lpr_spread_bp, floor_absolute)``
      over whichever are set (spread may be negative).
    - ``tier_discount_bp``: discount off the guide rate by tier code.
    - ``contribution_discount``: steps by historical contribution; the highest step reached
      applies (steps do not add up).
    - ``max_discount_bp``: cap on tier + contribution discount.
    - ``approval``: authority bands by bp below guide (支行 / 分行 / 总行).
    """

    operating_cost_rate: float = Field(default=0.005, ge=0, lt=0.2)
    capital_ratio: float = Field(default=0.08, gt=0, le=1)
    hurdle_raroc: float = Field(default=0.12, ge=0, lt=1)
    capital_funding_benefit: bool = True
    lpr_1y: float = Field(default=0.0365, ge=0, lt=0.5)  # from Aug 2022
    floor_lpr_spread_bp: float | None = 0.0
    floor_absolute: float | None = Field(default=None, ge=0, lt=0.5)
    tier_discount_bp: dict[str, float] = Field(default_factory=lambda: {
        "strategic": 50.0, "core": 30.0, "key": 20.0, "potential": 20.0,
        "general": 5.0, "long_tail": 0.0,
    })
    contribution_discount: list[ContributionStep] = Field(default_factory=lambda: [
        ContributionStep(min_contribution=10_000, discount_bp=5),
        ContributionStep(min_contribution=30_000, discount_bp=10),
        ContributionStep(min_contribution=100_000, discount_bp=15),
    ])
    max_discount_bp: float = Field(default=80.0, ge=0)
    approval: ApprovalBands = Field(default_factory=ApprovalBands)

    @model_validator(mode="after")
    def _checks(self) -> PricingPolicy:
        if any(v < 0 for v in self.tier_discount_bp.values()):
            raise ValueError("tier_discount_bp values must be ≥ 0")
        return self

    @classmethod
    def from_catalog(cls, data: Mapping[str, Any], *, file: str | None = None) -> PricingPolicy:
        """Validate a pricing catalogue (e.g. YAML ``safe_load`` output); errors name the key."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            raise InputError(f"pricing catalogue: {err['msg']}", file=file, column=key,
                             fix="see PricingPolicy in analysis.pricing for the expected keys"
                             ) from exc

    def regulatory_floor(self) -> float | None:
        """The LPR-based or absolute floor rate (decimal), ``None`` when neither is set."""
        floors = []
        if self.floor_lpr_spread_bp is not None:
            floors.append(self.lpr_1y + self.floor_lpr_spread_bp * BP)
        if self.floor_absolute is not None:
            floors.append(self.floor_absolute)
        return max(floors) if floors else None


# ---------------------------------------------------------------------------------------------
# floor and RAROC


def _check_probability(name: str, value: Any) -> None:
    arr = np.asarray(value, dtype=float)
    if np.isnan(arr).any() or (arr < 0).any() or (arr > 1).any():
        raise InputError(f"{name} must be a decimal in 0–1 with no missing values", column=name,
                         fix="give e.g. 0.02 for a 2% default probability")


def floor_components(ftp: Any, pd: Any, lgd: Any, policy: PricingPolicy) -> pandas.DataFrame:
    """The build-up of the price floor (decimals), one row per input element.

    Columns: ftp, operating_cost, expected_loss (= pd × lgd), capital_charge, cost_floor (their
    sum: the rate at which RAROC equals the hurdle), regulatory_floor, floor (the larger).
    """
    _check_probability("pd", pd)
    _check_probability("lgd", lgd)
    ftp_a, pd_a, lgd_a = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=float))
                                               for v in (ftp, pd, lgd)))
    expected_loss = pd_a * lgd_a
    funding = ftp_a if policy.capital_funding_benefit else 0.0
    capital_charge = policy.capital_ratio * (policy.hurdle_raroc - funding)
    cost_floor = ftp_a + policy.operating_cost_rate + expected_loss + capital_charge
    reg = policy.regulatory_floor()
    # `pd` here is the probability of default, hence `pandas.` spelled out
    return pandas.DataFrame({
        "ftp": ftp_a, "operating_cost": np.full_like(ftp_a, policy.operating_cost_rate),
        "expected_loss": expected_loss, "capital_charge": np.broadcast_to(capital_charge,
                                                                          ftp_a.shape),
        "cost_floor": cost_floor,
        "regulatory_floor": np.full_like(ftp_a, np.nan if reg is None else reg),
        "floor": cost_floor if reg is None else np.maximum(cost_floor, reg),
    })


def price_floor(ftp: Any, pd: Any, lgd: Any, policy: PricingPolicy) -> Any:
    """Lowest rate a loan may be offered at (decimal).

    floor = max(ftp + operating_cost_rate + pd × lgd + capital charge, regulatory floor), where
    the capital charge is ``capital_ratio × (hurdle_raroc − ftp)`` with the funding benefit of
    capital (``capital_ratio × hurdle_raroc`` without). At the cost floor the loan's RAROC
    equals the hurdle exactly. Scalars in, float out; arrays or Series in, array out.
    """
    floor = floor_components(ftp, pd, lgd, policy)["floor"].to_numpy()
    if all(np.ndim(v) == 0 for v in (ftp, pd, lgd)):
        return float(floor[0])
    return floor


def raroc(revenue: Any, cost: Any, expected_loss: Any, economic_capital: Any) -> Any:
    """RAROC = (revenue − cost − expected loss) / economic capital.

    Worked example (DOMAIN.md §3, S23): (1000 − 200 − 100) / 16000 = 4.375%.
    """
    return (np.asarray(revenue, dtype=float) - cost - expected_loss) / economic_capital


def loan_raroc(rate: Any, ftp: Any, pd: Any, lgd: Any, policy: PricingPolicy) -> Any:
    """Expected RAROC of one yuan of loan at ``rate``.

    (rate − ftp − operating_cost_rate − pd × lgd [+ capital_ratio × ftp, the funding benefit
    of capital]) / capital_ratio, consistent with ``price_floor``: RAROC(cost floor) = hurdle.
    """
    funding = np.asarray(ftp, dtype=float) if policy.capital_funding_benefit else 0.0
    revenue = np.asarray(rate, dtype=float) - ftp + policy.capital_ratio * funding
    return raroc(revenue, policy.operating_cost_rate, np.asarray(pd, dtype=float) * lgd,
                 policy.capital_ratio)


# ---------------------------------------------------------------------------------------------
# per-customer pricing


def _rate_input(frame: pd.DataFrame, value: float | str, name: str, what: str) -> np.ndarray:
    if isinstance(value, str):
        _require_columns(frame, [value], what)
        rate = _numeric(frame, value, what).to_numpy()
        if np.isnan(rate).any():
            raise InputError(f"{what}: {value} has missing values", column=value,
                             fix="give every customer a rate")
        return rate
    return np.full(len(frame), float(value))


def approval_level(discount_bp: Any, policy: PricingPolicy) -> np.ndarray:
    """Approval authority code for offers ``discount_bp`` below the guide rate."""
    d = np.asarray(discount_bp, dtype=float)
    return np.where(d <= policy.approval.sub_branch_max_bp + 1e-9, "sub_branch",
                    np.where(d <= policy.approval.branch_max_bp + 1e-9, "branch", "head_office"))


def price_customers(frame: pd.DataFrame, policy: PricingPolicy, guide_rate: float | str, *,
                    loan_ftp: float | str | None = None, tier_col: str = "tier",
                    contribution_col: str = "current_value",
                    discount_scale: float = 1.0) -> pd.DataFrame:
    """一户一价: each customer's offer from the guide rate, discount ladders, floor and authority.

    Input columns, one row per customer: ``customer_id``, ``tier_col`` (tier code, default
    ``tier``), ``contribution_col`` (historical contribution 元/yr, default ``current_value``;
    a bank may prefer deposit contribution + fee income), ``pd`` and ``lgd`` (decimals).
    ``guide_rate`` and ``loan_ftp`` are a rate or the name of a per-customer column (default
    FTP: ``FtpCurve().loan_ftp``). ``discount_scale`` multiplies both ladders (for
    sensitivity runs).

    Returns a copy with guide_rate, loan_ftp, tier_discount_bp, contribution_discount_bp,
    discount_bp (their sum, capped at ``max_discount_bp``), floor_rate, offered_rate =
    max(guide − discount, floor), floor_binding (the floor raised the offer), granted_bp
    (guide − offered in bp; negative if the floor is above the guide), approval_level
    (sub_branch / branch / head_office for 支行 / 分行 / 总行, see ``APPROVAL_LEVELS``) and
    expected_raroc at the offered rate.
    """
    what = "price_customers"
    if discount_scale < 0:
        raise InputError(f"{what}: discount_scale {discount_scale} < 0", column="discount_scale",
                         fix="use a non-negative multiplier")
    _require_columns(frame, ["customer_id", tier_col, contribution_col, "pd", "lgd"], what)
    guide = _rate_input(frame, guide_rate, "guide_rate", what)
    ftp = _rate_input(frame, FtpCurve().loan_ftp if loan_ftp is None else loan_ftp,
                      "loan_ftp", what)
    pd_ = _numeric(frame, "pd", what).to_numpy()
    lgd = _numeric(frame, "lgd", what).to_numpy()
    tiers = frame[tier_col].astype(str)
    unknown = sorted(set(tiers) - set(policy.tier_discount_bp))
    if unknown or frame[tier_col].isna().any():
        raise InputError(f"{what}: tier(s) {unknown or ['<missing>']} have no discount in the "
                         "policy", column=tier_col, fix="add them to tier_discount_bp")
    contribution = _numeric(frame, contribution_col, what).fillna(0.0).to_numpy()

    tier_bp = tiers.map(policy.tier_discount_bp).to_numpy(dtype=float) * discount_scale
    contrib_bp = np.zeros(len(frame))
    for step in sorted(policy.contribution_discount, key=lambda s: s.min_contribution):
        contrib_bp = np.where(contribution >= step.min_contribution,
                              step.discount_bp * discount_scale, contrib_bp)
    discount_bp = np.minimum(tier_bp + contrib_bp, policy.max_discount_bp)
    floor = floor_components(ftp, pd_, lgd, policy)["floor"].to_numpy()
    target = guide - discount_bp * BP
    offered = np.maximum(target, floor)
    # rounded so float noise cannot push an exact 30 bp offer into the next authority band
    granted_bp = np.round((guide - offered) / BP, 6)
    return frame.assign(
        guide_rate=guide, loan_ftp=ftp, tier_discount_bp=tier_bp,
        contribution_discount_bp=contrib_bp, discount_bp=discount_bp, floor_rate=floor,
        offered_rate=offered, floor_binding=floor > target, granted_bp=granted_bp,
        approval_level=pd.array(approval_level(np.maximum(granted_bp, 0), policy),
                                dtype="string"),
        expected_raroc=loan_raroc(offered, ftp, pd_, lgd, policy),
    )


# ---------------------------------------------------------------------------------------------
# take-up elasticity


@dataclass(frozen=True)
class TakeupElasticity:
    """Logistic take-up on the offered rate's gap to the guide rate.

    ``slope_per_bp``: change in log-odds of acceptance per bp of (offered − guide); negative
    when dearer offers are refused more. ``marginal_effect_per_bp``: average change in the
    acceptance probability per bp (statsmodels average marginal effect). ``takeup_at_guide``:
    mean predicted acceptance with every offer set at the guide rate (gap 0), controls as
    observed: the baseline the policy simulation shifts from. ``gap_bp_range``: smallest and
    largest gap among the fitted offers; beyond it the logit is an extrapolation.
    """

    slope_per_bp: float
    std_err: float
    ci_low: float
    ci_high: float
    p_value: float
    marginal_effect_per_bp: float
    marginal_effect_ci_low: float
    marginal_effect_ci_high: float
    takeup_at_guide: float
    observed_takeup: float
    n: int
    params: pd.DataFrame
    gap_bp_range: tuple[float, float] = (float("-inf"), float("inf"))  # of the fitted offers

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "params"}
        out["params"] = self.params.reset_index(names="term").to_dict(orient="records")
        return out


def estimate_takeup_elasticity(offers: pd.DataFrame, *, controls: Sequence[str] = (),
                               accepted_col: str = "accepted",
                               offered_col: str = "offered_rate", guide_col: str = "guide_rate",
                               alpha: float = 0.05) -> TakeupElasticity:
    """Fit statsmodels ``Logit`` of acceptance on gap_bp = (offered − guide) / 1 bp.

    Input columns (table ``loan_offers``): ``offered_rate`` and ``guide_rate`` (decimals),
    ``accepted`` (bool or 0/1), optional ``controls`` (numeric as they are; non-numeric
    one-hot with the first level dropped), e.g. tier, product, loan size.
    """
    what = "estimate_takeup_elasticity"
    _require_columns(offers, [accepted_col, offered_col, guide_col, *controls], what)
    accepted = _numeric(offers, accepted_col, what)
    if accepted.isna().any() or not accepted.isin([0.0, 1.0]).all():
        raise InputError(f"{what}: {accepted_col} must be 0/1 with no missing values",
                         column=accepted_col, fix="code accepted offers 1, refused 0")
    if accepted.nunique() < 2:
        raise InputError(f"{what}: every offer has the same outcome", column=accepted_col,
                         fix="the elasticity needs both accepted and refused offers")
    gap_bp = (_numeric(offers, offered_col, what) - _numeric(offers, guide_col, what)) / BP
    if gap_bp.isna().any():
        raise InputError(f"{what}: missing offered or guide rates", column=offered_col,
                         fix="drop offers without rates")
    if gap_bp.nunique() < 2:
        raise InputError(f"{what}: every offer has the same gap to guide", column=offered_col,
                         fix="the elasticity needs offers at different rates")
    parts = [pd.DataFrame({"const": 1.0, "gap_bp": gap_bp.to_numpy()}, index=offers.index)]
    for c in controls:
        s = offers[c]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            parts.append(_numeric(offers, c, what).rename(c).to_frame())
        else:
            parts.append(pd.get_dummies(s.astype(str), prefix=c, prefix_sep="=",
                                        drop_first=True, dtype=float))
    x = pd.concat(parts, axis=1)
    if x.isna().any().any():
        raise InputError(f"{what}: controls have missing values", column=str(controls),
                         fix="fill or drop them")
    fit = sm.Logit(accepted.to_numpy(), x).fit(disp=0, maxiter=100)
    if not fit.mle_retvals.get("converged", True):
        raise InputError(f"{what}: the logit did not converge (perfect separation?)",
                         fix="check that acceptance is not fully determined by a control")
    ci = fit.conf_int(alpha=alpha)
    margeff = fit.get_margeff(at="overall", method="dydx")
    me_ci = margeff.conf_int(alpha=alpha)
    gap_pos = list(x.columns).index("gap_bp") - 1  # margins exclude the constant
    at_guide = x.assign(gap_bp=0.0)
    params = pd.DataFrame({"coef": fit.params, "std_err": fit.bse, "ci_low": ci[0],
                           "ci_high": ci[1], "p_value": fit.pvalues})
    params.index.name = "term"
    return TakeupElasticity(
        slope_per_bp=float(fit.params["gap_bp"]), std_err=float(fit.bse["gap_bp"]),
        ci_low=float(ci.loc["gap_bp", 0]), ci_high=float(ci.loc["gap_bp", 1]),
        p_value=float(fit.pvalues["gap_bp"]),
        marginal_effect_per_bp=float(margeff.margeff[gap_pos]),
        marginal_effect_ci_low=float(me_ci[gap_pos, 0]),
        marginal_effect_ci_high=float(me_ci[gap_pos, 1]),
        takeup_at_guide=float(np.mean(fit.predict(at_guide))),
        observed_takeup=float(accepted.mean()), n=int(fit.nobs), params=params,
        gap_bp_range=(float(gap_bp.min()), float(gap_bp.max())),
    )


# ---------------------------------------------------------------------------------------------
# policy simulation


@dataclass(frozen=True)
class PolicySimulation:
    """Expected first-year effect of a pricing policy against offering the guide rate.

    The customers priced fall in three populations (``detail['population']``):

    - ``discount``: eligible customers whose floor is at or below the guide rate. The policy
      lowers their rate; every headline figure is over them. ``avg_discount_bp`` is their mean
      discount off the guide. ``nii_cost``: interest given away to those who would have taken
      the loan at the guide rate anyway, Σ p0 × L × (guide − offered). ``extra_customers`` /
      ``extra_volume``: expected additional loans, Σ (p − p0) and Σ (p − p0) × L.
      ``extra_nii``: net interest on that volume, Σ (p − p0) × L × (offered − ftp).
      ``net_nii_effect`` = extra_nii − nii_cost; ``net_risk_adjusted_effect`` also charges
      operating cost and expected loss on the extra volume. All 元/yr.
    - ``risk_priced``: eligible customers whose floor (risk, capital and regulatory) is above
      the guide rate: they are offered the floor, which is not a discount but risk-based
      pricing; reported apart (``risk_priced_customers``, their mean premium over the guide
      ``risk_priced_avg_premium_bp`` and the expected loans at the floor rate
      ``risk_priced_expected_loans`` = Σ p) because the guide rate is not a price the bank
      would lend to them at. ``priced_above_guide`` is the same count (kept for callers).
    - ``ineligible``: customers the bank would not offer a loan to (``eligible_col`` false:
      risk suppression, past due, impaired), counted in ``ineligible_customers`` only.

    ``customers`` = discount + risk-priced customers. ``outside_gap_range``: priced customers
    whose gap lies outside the historical offers the elasticity was fitted on.
    """

    customers: int
    avg_discount_bp: float
    priced_above_guide: int
    outside_gap_range: int
    nii_cost: float
    extra_customers: float
    extra_volume: float
    extra_nii: float
    net_nii_effect: float
    net_risk_adjusted_effect: float
    detail: pd.DataFrame
    discounted_customers: int = 0
    expected_loans_at_guide: float = 0.0
    risk_priced_customers: int = 0
    risk_priced_avg_premium_bp: float = float("nan")
    risk_priced_expected_loans: float = 0.0
    ineligible_customers: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "detail"}


def simulate_policy(frame: pd.DataFrame, policy: PricingPolicy, elasticity: TakeupElasticity,
                    guide_rate: float | str, *, loan_size_col: str = "loan_amount",
                    slope_per_bp: float | None = None, base_takeup: float | str | None = None,
                    discount_scale: float = 1.0, eligible_col: str | None = None,
                    **price_kwargs: Any) -> PolicySimulation:
    """Price ``frame`` with ``policy`` and estimate its cost and volume gain.

    Input columns: those of ``price_customers`` plus ``loan_size_col`` (expected loan amount
    if taken, 元) and, optionally, ``eligible_col`` (bool: the customer may be offered a loan
    at all). Take-up at the guide rate is ``base_takeup`` (a probability, or a column of
    per-customer probabilities, e.g. from a propensity model; default
    ``elasticity.takeup_at_guide``); at the offered rate p = expit(logit(p0) + slope × gap_bp)
    with gap_bp = (offered − guide) / 1 bp and slope ``elasticity.slope_per_bp`` unless
    ``slope_per_bp`` overrides it. See ``PolicySimulation`` for the three populations.
    """
    what = "simulate_policy"
    _require_columns(frame, [loan_size_col] + ([eligible_col] if eligible_col else []), what)
    priced = price_customers(frame, policy, guide_rate, discount_scale=discount_scale,
                             **price_kwargs)
    size = _numeric(frame, loan_size_col, what).to_numpy()
    if np.isnan(size).any() or (size < 0).any():
        raise InputError(f"{what}: {loan_size_col} is missing or negative",
                         column=loan_size_col, fix="give the expected loan amount in 元")
    if eligible_col:
        elig_s = frame[eligible_col]
        if elig_s.isna().any():
            raise InputError(f"{what}: {eligible_col} has missing values", column=eligible_col,
                             fix="mark every customer eligible (true) or not (false)")
        eligible = elig_s.astype(bool).to_numpy()
    else:
        eligible = np.ones(len(frame), dtype=bool)
    if isinstance(base_takeup, str):
        _require_columns(frame, [base_takeup], what)
        p0 = _numeric(frame, base_takeup, what).to_numpy()
    else:
        p0 = np.full(len(frame), elasticity.takeup_at_guide if base_takeup is None
                     else float(base_takeup))
    if np.isnan(p0).any() or (p0 <= 0).any() or (p0 >= 1).any():
        raise InputError(f"{what}: base take-up must lie strictly between 0 and 1",
                         column=base_takeup if isinstance(base_takeup, str) else "base_takeup",
                         fix="give probabilities, not percentages")
    slope = elasticity.slope_per_bp if slope_per_bp is None else slope_per_bp
    guide = priced["guide_rate"].to_numpy()
    offered = priced["offered_rate"].to_numpy()
    gap_bp = (offered - guide) / BP
    p1 = expit(logit(p0) + slope * gap_bp)
    margin = offered - priced["loan_ftp"].to_numpy()
    risk_cost = policy.operating_cost_rate + priced["pd"].to_numpy() * priced["lgd"].to_numpy()
    nii_cost = p0 * size * (guide - offered)
    extra = p1 - p0
    extra_nii = extra * size * margin
    above = offered > guide + 1e-12
    disc = eligible & ~above
    risk = eligible & above
    population = np.where(~eligible, "ineligible", np.where(above, "risk_priced", "discount"))
    detail = priced.assign(population=pd.array(population, dtype="string"),
                           takeup_at_guide=p0, takeup_offered=p1, nii_cost=nii_cost,
                           extra_takeup=extra, extra_volume=extra * size, extra_nii=extra_nii)
    granted = priced["granted_bp"].to_numpy()
    return PolicySimulation(
        customers=int(eligible.sum()),
        avg_discount_bp=float(np.mean(granted[disc])) if disc.any() else 0.0,
        priced_above_guide=int(risk.sum()),
        outside_gap_range=int((eligible & ((gap_bp < elasticity.gap_bp_range[0] - 1e-6)
                                           | (gap_bp > elasticity.gap_bp_range[1] + 1e-6))).sum()),
        nii_cost=float(nii_cost[disc].sum()), extra_customers=float(extra[disc].sum()),
        extra_volume=float((extra * size)[disc].sum()), extra_nii=float(extra_nii[disc].sum()),
        net_nii_effect=float(extra_nii[disc].sum() - nii_cost[disc].sum()),
        net_risk_adjusted_effect=float((extra * size * (margin - risk_cost))[disc].sum()
                                       - nii_cost[disc].sum()),
        detail=detail,
        discounted_customers=int(disc.sum()),
        expected_loans_at_guide=float(p0[disc].sum()),
        risk_priced_customers=int(risk.sum()),
        risk_priced_avg_premium_bp=float(-np.mean(granted[risk])) if risk.any() else float("nan"),
        risk_priced_expected_loans=float(p1[risk].sum()),
        ineligible_customers=int((~eligible).sum()),
    )


def sensitivity_table(frame: pd.DataFrame, policy: PricingPolicy, elasticity: TakeupElasticity,
                      guide_rate: float | str, *, scales: Sequence[float] = (0.5, 1.0, 1.5),
                      se_multipliers: Sequence[float] = (-1.0, 0.0, 1.0),
                      **simulate_kwargs: Any) -> pd.DataFrame:
    """``simulate_policy`` over discount scalings × slope = estimate + k standard errors.

    A negative multiplier makes the slope more negative, i.e. customers more rate-sensitive.
    Returns one row per combination: discount_scale, se_multiplier, slope_per_bp, then the
    ``PolicySimulation`` figures (avg_discount_bp, priced_above_guide, outside_gap_range,
    nii_cost, extra_customers, extra_volume, extra_nii, net_nii_effect,
    net_risk_adjusted_effect and the population counts).
    """
    rows = []
    for scale in scales:
        for k in se_multipliers:
            slope = elasticity.slope_per_bp + k * elasticity.std_err
            sim = simulate_policy(frame, policy, elasticity, guide_rate, slope_per_bp=slope,
                                  discount_scale=scale, **simulate_kwargs)
            summary = sim.to_dict()
            summary.pop("customers")
            rows.append({"discount_scale": scale, "se_multiplier": k, "slope_per_bp": slope,
                         **summary})
    return pd.DataFrame(rows)
