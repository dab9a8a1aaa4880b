"""Static customer attributes, the potential wallet and the share of wallet (one chunk).

The wallet's drivers are firmographic (turnover, employees, age, tax, industry); the share of
wallet depends only on relationship depth (products held at the start, years with the bank).
Initial holdings follow a latent engagement score drawn independently of the wallet drivers,
so log(realised value) = log(share) + log(wallet) separates cleanly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import names
from .catalog import CUSTOMER_TYPES, RATINGS
from .config import BankConfig
from .dates import Calendar, month_index
from .structure import Structure


@dataclass
class Customers:
    g: np.ndarray                 # global customer index
    rm: np.ndarray                # RM index
    sub: np.ndarray               # 支行 index
    grid: np.ndarray              # grid_id
    ctype: np.ndarray             # index into CUSTOMER_TYPES
    industry: np.ndarray          # GB/T 4754 section letter
    turnover: np.ndarray          # 元/yr
    employees: np.ndarray
    reg_capital: np.ndarray
    est_day: np.ndarray
    rel_day: np.ndarray
    rel_month: np.ndarray         # month index within the window (may be negative)
    dormant: np.ndarray
    engagement: np.ndarray
    rating: np.ndarray            # index into RATINGS
    tax_rate: np.ndarray
    annual_tax: np.ndarray        # latent, 元/yr
    tax_authorised: np.ndarray
    tax_monthly_filer: np.ndarray
    invoice_authorised: np.ndarray
    region: np.ndarray
    years_established: np.ndarray   # at the window end
    years_with_bank: np.ndarray     # at the window start (0 for new customers)
    log_wallet: np.ndarray
    wallet: np.ndarray              # potential annual contribution, 元/yr
    demand_rate: np.ndarray
    activity: np.ndarray            # filler-transaction intensity multiplier (mean 1)

    @property
    def n(self) -> int:
        return len(self.g)


def draw_customers(rng: np.random.Generator, cfg: BankConfig, cal: Calendar, st: Structure,
                   g0: int, rm_books: np.ndarray, rm0: int) -> Customers:
    """Static attributes of the customers of RMs rm0, rm0+1, … (books `rm_books`)."""
    n = int(rm_books.sum())
    rm = np.repeat(np.arange(rm0, rm0 + len(rm_books)), rm_books)
    sub = st.rm_sub[rm]
    own_grid = rng.random(n) < 0.7
    other = np.asarray([st.grid_ids_by_sub[s][rng.integers(0, len(st.grid_ids_by_sub[s]))] for s in sub])
    grid = np.where(own_grid, st.rm_grid[rm], other) if n else np.asarray([], dtype=str)

    shares = np.asarray([cfg.customer_type_shares[t] for t in CUSTOMER_TYPES])
    ctype = rng.choice(len(CUSTOMER_TYPES), size=n, p=shares / shares.sum())
    sections = list(cfg.industry_shares)
    p_ind = np.asarray(list(cfg.industry_shares.values()))
    industry = np.asarray(sections)[rng.choice(len(sections), size=n, p=p_ind / p_ind.sum())]

    med = np.asarray([cfg.turnover_median[t] for t in CUSTOMER_TYPES])[ctype]
    turnover = np.round(med * np.exp(rng.normal(0, cfg.turnover_sigma, n)), -3)
    turnover = np.maximum(turnover, 30_000.0)
    lo = np.asarray([cfg.employees_range[t][0] for t in CUSTOMER_TYPES])[ctype]
    hi = np.asarray([cfg.employees_range[t][1] for t in CUSTOMER_TYPES])[ctype]
    emp = np.exp(np.log(turnover / cfg.turnover_per_employee) + rng.normal(0, 0.4, n))
    employees = np.clip(np.round(emp), lo, hi).astype(np.int64)
    cap_med = np.asarray([cfg.registered_capital_median[t] for t in CUSTOMER_TYPES])[ctype]
    reg_capital = np.round(cap_med * np.exp(rng.normal(0, 0.9, n)), -4).clip(10_000)

    # ages: established long before the window, or (new relationships) recently
    end, start = cal.end, cal.start
    new = rng.random(n) < cfg.new_relationship_share
    age_old = np.clip(rng.lognormal(np.log(8.0), 0.6, n), (end - start) / 365.25 + 0.1, 30.0)
    est_old = end - np.round(age_old * 365.25).astype(np.int64)
    rel_old = est_old + np.floor(rng.beta(1.0, 1.4, n) * (start - 1 - est_old)).astype(np.int64)
    rel_new = start + rng.integers(0, end - start + 1, n)
    brand_new = rng.random(n) < 0.5
    est_new = np.where(brand_new, rel_new - rng.integers(0, 120, n),
                       rel_new - np.round(np.clip(rng.lognormal(np.log(5.0), 0.7, n), 0.5, 25) * 365.25
                                          ).astype(np.int64))
    est_day = np.where(new, est_new, est_old)
    rel_day = np.where(new, rel_new, rel_old)
    rel_month = month_index(rel_day) - cal.month0

    dormant = rng.random(n) < cfg.dormant_share * np.where(new, 0.5, 1.0)
    engagement = rng.normal(0, 1, n)
    risk = rng.normal(0, 1, n)
    cuts = cfg.rating_cutpoints
    rating = np.full(n, RATINGS.index("C"))
    for name in reversed(list(cuts)):   # B … AAA: the highest cut met wins
        rating = np.where(risk >= cuts[name], RATINGS.index(name), rating)
    unrated = (ctype == 0) & (rng.random(n) < cfg.unrated_share_sole_prop)
    rating = np.where(unrated, RATINGS.index("未评级"), rating)

    tax_rate = cfg.tax_rate_median * np.exp(rng.normal(0, cfg.tax_rate_sigma, n))
    annual_tax = turnover * tax_rate
    tax_authorised = ~dormant & (rng.random(n) < cfg.tax_authorised_share)
    tax_monthly_filer = rng.random(n) < cfg.tax_monthly_filer_share
    invoice_authorised = ~dormant & (rng.random(n) < cfg.invoice_authorised_share * np.where(ctype == 0, 0.4, 1.0))
    region = st.sub_branch_region[sub]

    years_established = (end - est_day) / 365.25
    years_with_bank = np.maximum(0.0, (start - rel_day) / 365.25)
    c = cfg.wallet_coef
    ind_eff = np.asarray([cfg.wallet_industry_effect.get(s, 0.0) for s in industry])
    log_wallet = (cfg.wallet_intercept + c["log_annual_turnover"] * np.log(turnover)
                  + c["log1p_employees"] * np.log1p(employees)
                  + c["years_established"] * years_established
                  + c["log1p_annual_tax"] * np.log1p(annual_tax) + ind_eff
                  + rng.normal(0, cfg.wallet_noise_sd, n))
    demand_rate = np.round(rng.uniform(*cfg.demand_rate_range, n), 4)
    activity = rng.lognormal(-0.125, 0.5, n)
    return Customers(
        g=g0 + np.arange(n), rm=rm, sub=sub, grid=grid, ctype=ctype, industry=industry,
        turnover=turnover, employees=employees, reg_capital=reg_capital, est_day=est_day,
        rel_day=rel_day, rel_month=rel_month, dormant=dormant, engagement=engagement, rating=rating,
        tax_rate=tax_rate, annual_tax=annual_tax, tax_authorised=tax_authorised,
        tax_monthly_filer=tax_monthly_filer, invoice_authorised=invoice_authorised, region=region,
        years_established=years_established, years_with_bank=years_with_bank,
        log_wallet=log_wallet, wallet=np.exp(log_wallet), demand_rate=demand_rate, activity=activity)


def share_of_wallet(cfg: BankConfig, products_held: np.ndarray, years_with_bank: np.ndarray,
                    dormant: np.ndarray) -> np.ndarray:
    """Share of wallet from relationship depth (products held at the start, years with the bank)."""
    lo, hi = cfg.share_range
    s = cfg.share_logit
    z = (s["intercept"] + s["per_extra_product"] * (products_held - 1)
         + s["per_year_with_bank"] * years_with_bank)
    share = lo + (hi - lo) / (1 + np.exp(-z))
    return np.where(dormant, cfg.dormant_share_of_wallet, share)


def personal_data(rng: np.random.Generator, cu: Customers, st: Structure, cal: Calendar) -> dict:
    """Names, ID numbers, USCCs, mobiles (strings) for the customers."""
    n = cu.n
    owner = names.person_names(rng, n)
    sole = cu.ctype == 0
    company = names.company_names(rng, sole, cu.industry, st.sub_branch_city[cu.sub],
                                  st.sub_branch_district[cu.sub], owner)
    birth = cal.end - np.round(rng.uniform(25, 65, n) * 365.25).astype(np.int64)
    birth_region = np.where(rng.random(n) < 0.8, cu.region,
                            st.sub_branch_region[rng.integers(0, len(st.sub_branch_region), n)])
    return {
        "customer_name": company,
        "legal_rep_name": owner,
        "legal_rep_id_number": names.id_numbers(rng, birth_region, birth),
        "uscc": names.usccs(rng, sole, cu.region),
        "mobile": names.mobiles(rng, n),
    }
