"""One chunk of customers simulated month by month: holdings, take-ups, flows, balances, events.

Order inside month k: loan maturities (renewal offers) and early settlements → service
closures → pilot assignment (first pilot month) → take-ups (hazard = base × Π lifts of events
fired in k−3..k−1, for customers not holding the product at the end of k−1) → pilot-induced
conversions → flows, transactions and balances → what the extract shows (`Observed`) →
event triggers of month k → holdings at the end of k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .catalog import (ACCOUNT_PRODUCTS, CREDIT_LOANS, EVENT_IDS, EVENT_TARGET, LOAN_PRODUCTS,
                      PRODUCT_INDEX, RATINGS, SERVICE_PRODUCTS, TAKEUP_PRODUCTS)
from .catalog import P as PURPOSE
from .config import BankConfig
from .customers import Customers, draw_customers, personal_data, share_of_wallet
from .dates import Calendar, add_months, day, month_index
from .flows import BANK_NONE, BANK_OTHER, BANK_SAME, C, D, TxnBuffer, lognormal_cents, settle
from .structure import Chunk, Structure
from .triggers import Observed, fire

P_TO_PRIVATE, P_CASH, P_GOODS, P_FX, P_BILL, P_SAME = (
    PURPOSE[x] for x in ("公转私", "取现", "货款", "外汇", "票据", "同名划转"))
ORIGIN_INITIAL, ORIGIN_TAKEUP, ORIGIN_RENEWAL, ORIGIN_PILOT = 0, 1, 2, 3
GUAR = {"信用": 0, "保证": 1, "抵押": 2, "质押": 3}


class Growable:
    """Column arrays that grow by doubling; `t[col]` is a live view of the filled rows."""

    def __init__(self, spec: dict[str, type], capacity: int = 1024):
        self.cols = {k: np.empty(max(capacity, 16), dtype=t) for k, t in spec.items()}
        self.n = 0

    def add(self, **values) -> np.ndarray:
        m = len(next(iter(values.values())))
        cap = len(next(iter(self.cols.values())))
        if self.n + m > cap:
            new = max(cap * 2, self.n + m)
            for k, a in self.cols.items():
                b = np.empty(new, dtype=a.dtype)
                b[:self.n] = a[:self.n]
                self.cols[k] = b
        for k, a in self.cols.items():
            a[self.n:self.n + m] = values[k]
        self.n += m
        return np.arange(self.n - m, self.n)

    def __getitem__(self, k: str) -> np.ndarray:
        return self.cols[k][:self.n]


def _logistic(z):
    return 1.0 / (1.0 + np.exp(-z))


def _logit(p):
    return np.log(p / (1 - p))


@dataclass
class PilotState:
    customers: np.ndarray      # chunk-local indices of pilot customers
    treat: np.ndarray
    contacted: np.ndarray
    tier: np.ndarray           # index into cfg.pilot_tiers
    stratum: np.ndarray
    event_id: np.ndarray
    contact_day: np.ndarray
    induced_day: np.ndarray    # −1: no induced conversion
    p0: np.ndarray
    rate: np.ndarray           # RM follow-up rate


class ChunkSim:
    """Simulates the customers of one chunk (whole RM books)."""

    def __init__(self, cfg: BankConfig, cal: Calendar, st: Structure, chunk: Chunk, seed: int,
                 txn_per_active_month: float):
        self.cfg, self.cal, self.st, self.chunk = cfg, cal, st, chunk
        self.rng = np.random.default_rng([seed, 1, chunk.index])
        self.with_txns = txn_per_active_month > 0
        self.txn_rate = float(txn_per_active_month)
        books = st.rm_book[chunk.rm_start:chunk.rm_end]
        self.cu: Customers = draw_customers(self.rng, cfg, cal, st, chunk.cust_start, books, chunk.rm_start)
        self.personal = personal_data(self.rng, self.cu, st, cal)
        n, T = self.cu.n, cal.n
        self.n, self.T = n, T
        self.acc = Growable(dict(owner=np.int64, product=np.int16, open_day=np.int64, close_day=np.int64,
                                 serial=np.int64, rate=np.float64, amount=np.int64, frac=np.float64),
                            capacity=n * 4)
        self.loans = Growable(dict(owner=np.int64, product=np.int16, amount=np.int64, disb=np.int64,
                                   maturity=np.int64, settled=np.int64, rate=np.float64,
                                   guide=np.float64, gap_bp=np.int64, guarantee=np.int8,
                                   account=np.int64, origin=np.int8), capacity=n)
        self.offers = Growable(dict(owner=np.int64, product=np.int16, day=np.int64, guide=np.float64,
                                    offered=np.float64, amount=np.int64, accepted=bool), capacity=n // 2)
        self.acc_count = np.zeros(n, dtype=np.int64)
        self.cur_acc = {p: np.full(n, -1, np.int64) for p in ["DEP_BASIC", *ACCOUNT_PRODUCTS]}
        self.cur_loan = {p: np.full(n, -1, np.int64) for p in LOAN_PRODUCTS}
        self.fired = np.zeros((len(EVENT_IDS), n, T), dtype=bool)
        self.takeup = np.zeros((len(TAKEUP_PRODUCTS), n, T), dtype=bool)
        self.hold_end = np.zeros((len(TAKEUP_PRODUCTS), n, T), dtype=bool)
        self.ob = Observed.empty(n, T, cal.month0)
        self.bal_parts: list[tuple] = []
        self.prev_other = np.zeros(0, np.int64)     # last month-end of TD / AGD / MARGIN accounts
        self.txn_parts: list[dict] = []
        self.takeup_log: list[tuple] = []
        self.pilot: PilotState | None = None
        self.pilot_k = int(month_index(np.asarray([day(cfg.pilot_assigned_date)]))[0] - cal.month0) + 1
        self.pilot_valid = 1 <= self.pilot_k and self.pilot_k + 2 <= T - 1

    # ------------------------------------------------------------------ helpers
    def holds(self, product: str, at_day) -> np.ndarray:
        """Whether each customer holds `product` at the end of day `at_day`."""
        if product in self.cur_loan:
            if not self.loans.n:
                return np.zeros(self.n, dtype=bool)
            i = self.cur_loan[product]
            ok = i >= 0
            j = np.where(ok, i, 0)
            end = np.where(self.loans["settled"][j] >= 0, self.loans["settled"][j], self.loans["maturity"][j])
            return ok & (self.loans["disb"][j] <= at_day) & (end > at_day)
        i = self.cur_acc[product]
        ok = i >= 0
        j = np.where(ok, i, 0)
        close = self.acc["close_day"][j]
        return ok & (self.acc["open_day"][j] <= at_day) & ((close < 0) | (close > at_day))

    def _lpr(self, days: np.ndarray, table: dict) -> np.ndarray:
        keys = sorted(table)
        starts = np.asarray([np.datetime64(k, "M").astype(np.int64) for k in keys])
        vals = np.asarray([table[k] for k in keys])
        pos = np.searchsorted(starts, month_index(days), side="right") - 1
        return vals[np.clip(pos, 0, len(vals) - 1)]

    def guide_at(self, product: str, days: np.ndarray) -> np.ndarray:
        """Guide rate when priced: the product's current guide moved with the LPR since then."""
        base = self.cfg.guide_rate[product]
        if product == "DISC":
            return np.full(len(days), base)
        table = self.cfg.lpr_5y if product == "LOAN_MORT" else self.cfg.lpr_1y
        now = self._lpr(np.asarray([self.cal.end]), table)[0]
        return np.round(base + self._lpr(days, table) - now, 4)

    def gap_bp(self, who: np.ndarray) -> np.ndarray:
        mean = np.asarray([self.cfg.pricing_gap_mean_bp[r] for r in RATINGS])[self.cu.rating[who]]
        return np.round(self.rng.normal(mean, self.cfg.pricing_gap_sd_bp)).astype(np.int64)

    def open_accounts(self, who: np.ndarray, product: str, days: np.ndarray, *, amount=None,
                      frac=None, rate=None) -> np.ndarray:
        m = len(who)
        if not m:
            return np.zeros(0, np.int64)
        serial = self.acc_count[who].copy()
        self.acc_count[who] += 1
        idx = self.acc.add(owner=who, product=np.full(m, PRODUCT_INDEX[product]), open_day=days,
                           close_day=np.full(m, -1), serial=serial,
                           rate=np.full(m, np.nan) if rate is None else rate,
                           amount=np.zeros(m, np.int64) if amount is None else amount,
                           frac=np.zeros(m) if frac is None else frac)
        if product in self.cur_acc:
            self.cur_acc[product][who] = idx
        return idx

    def deposit_account(self, who: np.ndarray, product: str, days: np.ndarray, level: np.ndarray) -> np.ndarray:
        """Open TD / AGD / MARGIN / 一般户 / service accounts with their terms."""
        cfg, rng, m = self.cfg, self.rng, len(who)
        if product == "TD":
            amount = np.round(rng.uniform(0.3, 1.2, m) * np.maximum(level, 100_000.0), -4) * 100
            in_2022 = days >= day("2022-01-01")
            rate = np.round(rng.uniform(*cfg.td_rate_range, m) - 0.001 * in_2022, 4)
            return self.open_accounts(who, product, days, amount=amount.astype(np.int64), rate=rate)
        if product == "AGD":
            return self.open_accounts(who, product, days, frac=rng.uniform(0.2, 0.6, m),
                                      rate=np.round(rng.uniform(*cfg.agreement_rate_range, m), 4))
        if product == "MARGIN":
            amount = lognormal_cents(rng, m, 300_000.0, 0.6, 1000.0)
            return self.open_accounts(who, product, days, amount=amount, rate=np.full(m, cfg.margin_rate))
        if product == "DEP_GENERAL":
            return self.open_accounts(who, product, days, frac=rng.uniform(*cfg.general_account_level, m),
                                      rate=self.cu.demand_rate[who])
        return self.open_accounts(who, product, days)

    def new_loans(self, who: np.ndarray, product: str, disb: np.ndarray, origin: int, *,
                  amount=None, rate=None, guide=None, gap=None) -> np.ndarray:
        cfg, rng, m = self.cfg, self.rng, len(who)
        if not m:
            return np.zeros(0, np.int64)
        if guide is None:
            guide = self.guide_at(product, disb)
        if gap is None:
            gap = self.gap_bp(who)
            if product == "DISC":
                gap = np.round(gap * 0.5).astype(np.int64)
        if rate is None:
            rate = np.round(guide + gap / 10_000.0, 4)
        if amount is None:
            lo, hi = cfg.loan_amount_range_wan
            if product == "DISC":
                wan = np.clip(np.exp(rng.normal(np.log(30.0), 0.8, m)), lo, 500.0)
            else:
                wan = cfg.loan_to_wallet * self.cu.wallet[who] * np.exp(rng.normal(0, cfg.loan_amount_sigma, m)) / 1e4
                wan = np.minimum(wan, cfg.loan_max_turnover_share * self.cu.turnover[who] / 1e4)
                wan = np.clip(wan, lo, hi)
            amount = (np.round(wan * 2) / 2 * 1_000_000).astype(np.int64)   # 0.5万 steps, in cents
        term = (rng.integers(3, 7, m) if product == "DISC" else np.full(m, cfg.term_months[product]))
        maturity = add_months(disb, term)
        if product == "LOAN_OP":
            guar = np.where(rng.random(m) < 0.6, GUAR["信用"], GUAR["保证"])
        elif product == "LOAN_TAX":
            guar = np.full(m, GUAR["信用"])
        elif product == "LOAN_MORT":
            guar = np.full(m, GUAR["抵押"])
        else:   # a discounted bill is recorded as pledged (票据质押)
            guar = np.full(m, GUAR["质押"])
        account = (self.open_accounts(who, product, disb, rate=rate) if product != "DISC"
                   else np.full(m, -1))
        idx = self.loans.add(owner=who, product=np.full(m, PRODUCT_INDEX[product]), amount=amount,
                             disb=disb, maturity=maturity, settled=np.full(m, -1), rate=rate, guide=guide,
                             gap_bp=gap, guarantee=guar, account=account, origin=np.full(m, origin))
        self.cur_loan[product][who] = idx
        return idx

    def outstanding(self, idx: np.ndarray, at_day: np.ndarray) -> np.ndarray:
        """Principal outstanding (cents) after the repayments made up to `at_day`."""
        amt = self.loans["amount"][idx]
        mort = self.loans["product"][idx] == PRODUCT_INDEX["LOAN_MORT"]
        disb = self.loans["disb"][idx]
        at = np.asarray(at_day, dtype=np.int64)
        dom = at - (at.astype("datetime64[D]").astype("datetime64[M]").astype("datetime64[D]").astype(np.int64))
        paid = month_index(at) - month_index(disb) - (dom < 20)
        paid = np.clip(paid, 0, 35)
        return np.where(mort, amt - (amt // 36) * paid, amt)

    def random_days(self, k: int, m: int, lo=None) -> np.ndarray:
        f, last = self.cal.first[k], self.cal.last[k]
        lo = np.full(m, f) if lo is None else np.maximum(lo, f)
        return lo + np.floor(self.rng.random(m) * (last - lo + 1)).astype(np.int64)

    # ------------------------------------------------------------------ set-up
    def initial_state(self) -> None:
        """Accounts and loans held before the window (or opened in a new customer's first month)."""
        cfg, rng, cu, cal = self.cfg, self.rng, self.cu, self.cal
        n = self.n
        everyone = np.arange(n)
        self.open_accounts(everyone, "DEP_BASIC", cu.rel_day, rate=cu.demand_rate)
        new = cu.rel_month >= 0
        rel_month_end = np.where(new, cal.last[np.clip(cu.rel_month, 0, self.T - 1)], cal.start - 1)
        lo = cu.rel_day
        hi = np.where(new, rel_month_end, cal.start - 1)
        held = {}
        for product, share in cfg.initial_product_share.items():
            p = _logistic(_logit(share) + cfg.engagement_loading * cu.engagement)
            if product == "EBANK":
                p = np.where(cu.dormant, share * 0.3, p)
            else:
                p = np.where(cu.dormant, 0.0, p)
            held[product] = rng.random(n) < p
        p_loan = np.where(cu.dormant, cfg.initial_loan_share_dormant,
                          _logistic(_logit(cfg.initial_loan_share) + cfg.engagement_loading * cu.engagement))
        has_loan = (rng.random(n) < p_loan) & ~new
        mix = list(cfg.initial_loan_product_mix)
        pm = np.asarray([cfg.initial_loan_product_mix[k] for k in mix])
        loan_product = np.asarray(mix)[rng.choice(len(mix), n, p=pm / pm.sum())]
        held["DISC"] = held["DISC"] & ~new
        # depth at the start → share of wallet → deposit level
        products_held = 1 + sum(h.astype(int) for h in held.values()) + has_loan
        self.share = share_of_wallet(cfg, products_held, cu.years_with_bank, cu.dormant)
        self.products_held0 = products_held
        spread = cfg.deposit_ftp - cu.demand_rate
        self.level0 = np.where(cu.dormant, rng.uniform(0, 3_000, n), self.share * cu.wallet / spread)
        self._levels()
        for product in ["DEP_GENERAL", "TD", "AGD", "BA", "PAYROLL", "ACQ", "FXS", "CASHMGT", "EBANK"]:
            who = np.flatnonzero(held[product])
            days = lo[who] + np.floor(rng.random(len(who)) * (hi[who] - lo[who] + 1)).astype(np.int64)
            self.deposit_account(who, product, days, self.level0[who])
            if product == "BA":
                self.deposit_account(who, "MARGIN", days, self.level0[who])
        start = cal.start
        for product in mix:
            who = np.flatnonzero(has_loan & (loan_product == product))
            back = 3 * 365 if product == "LOAN_MORT" else 364
            first = np.maximum(cu.rel_day[who], start - back)
            disb = first + np.floor(rng.random(len(who)) * (start - first)).astype(np.int64)
            self.new_loans(who, product, disb, ORIGIN_INITIAL)
        who = np.flatnonzero(held["DISC"])
        first = np.maximum(cu.rel_day[who], start - 90)
        disb = first + np.floor(rng.random(len(who)) * (start - first)).astype(np.int64)
        self.new_loans(who, "DISC", disb, ORIGIN_INITIAL)

    def _levels(self) -> None:
        """Exogenous monthly paths: demand 日均 level, month-end deviation, ordinary inflows."""
        cfg, rng, cu, cal = self.cfg, self.rng, self.cu, self.cal
        n, T = self.n, self.T
        moy = (cal.month0 + np.arange(T)) % 12
        growth = cfg.deposit_growth_base + cfg.headroom_growth_coef * (1 - self.share)
        self.growth = growth
        x = np.zeros((n, T))
        prev = rng.normal(0, cfg.deposit_noise_sd / np.sqrt(1 - cfg.deposit_ar ** 2), n)
        for k in range(T):
            shock = rng.normal(0, cfg.deposit_noise_sd, n) - 0.5 * (rng.random(n) < cfg.deposit_drop_prob)
            prev = cfg.deposit_ar * prev + shock
            x[:, k] = prev
        season = np.asarray(cfg.deposit_seasonality)[moy]
        logl = np.log(self.level0)[:, None] + growth[:, None] * np.arange(T) + x + season
        self.level = np.where(cu.dormant[:, None], self.level0[:, None], np.exp(logl))
        q_end = np.isin(moy, [2, 5, 8, 11])
        self.eps = rng.normal(0, cfg.month_end_deviation_sd, (n, T)) + cfg.quarter_end_uplift * q_end
        lo, hi = cfg.inflow_share_of_turnover
        flow_share = np.clip(self.share * 1.6 * rng.lognormal(0, 0.3, n), lo, hi)
        peak = np.where(rng.random((n, T)) < cfg.inflow_peak_prob, rng.uniform(1.6, 3.0, (n, T)), 1.0)
        inflow = (cu.turnover * flow_share / 12.0)[:, None] * np.exp(
            rng.normal(0, cfg.inflow_noise_sd, (n, T)) + np.asarray(cfg.inflow_seasonality)[moy]) * peak
        self.inflow = np.where(cu.dormant[:, None], 0.0, inflow)
        # event-relevant behaviour
        emp = cu.employees
        payroll_like = (rng.random(n) < cfg.payroll_like_share) & (emp >= 2)
        self.to_private_share = np.where(payroll_like, rng.uniform(*cfg.to_private_paid_share, n), 0.0)
        self.payroll_like = payroll_like
        heavy_p = np.asarray([cfg.cash_heavy_share.get(s, cfg.cash_heavy_share_other) for s in cu.industry])
        heavy = rng.random(n) < heavy_p
        self.cash_rate = np.where(heavy, rng.uniform(*cfg.cash_rate_heavy, n), rng.uniform(*cfg.cash_rate_light, n))
        fx_p = np.asarray([cfg.fx_trader_share.get(s, cfg.fx_trader_share_other) for s in cu.industry])
        self.fx_trader = rng.random(n) < fx_p
        bill_p = np.asarray([cfg.bill_receiver_share.get(s, cfg.bill_receiver_share_other) for s in cu.industry])
        self.bill_receiver = rng.random(n) < bill_p
        self.multibank = rng.random(n) < cfg.multibank_share
        self.large_prob = np.clip(cfg.large_inflow_slope * (np.log10(cu.turnover) - cfg.large_inflow_floor_log10),
                                  0, cfg.large_inflow_max_prob)
        self.social_payer = (rng.random(n) < cfg.social_insurance_share) & (emp >= 2)
        # latent monthly tax (cents); tax_monthly rows are written for authorised customers only
        monthly = cu.annual_tax / 12.0 * rng.lognormal(0, 0.25, (n, T)).T
        monthly = monthly.T
        zero = rng.random((n, T)) < cfg.tax_zero_month_prob
        small = (cu.turnover < cfg.tax_small_turnover)[:, None] & (rng.random((n, T)) < cfg.tax_small_zero_prob)
        quarter_pay = np.isin(moy, [0, 3, 6, 9])
        amount = np.where(cu.tax_monthly_filer[:, None], monthly, np.where(quarter_pay, 3 * monthly, 0.0))
        amount = np.where(zero | small | cu.dormant[:, None], 0.0, amount)
        self.tax_cents = np.round(amount * 100).astype(np.int64)
        self.gen_share = np.where(cu.dormant, 0.0, cfg.general_account_inflow_share)

    # ------------------------------------------------------------------ the month loop
    def run(self) -> None:
        cfg, cal, cu, n, T = self.cfg, self.cal, self.cu, self.n, self.T
        self.initial_state()
        self.est_abs = month_index(cu.est_day)
        self.rel_abs = month_index(cu.rel_day)
        self.pilot_delta = np.zeros(n)
        self.converted_window = np.zeros(n, dtype=bool)
        self.is_pilot = np.zeros(n, dtype=bool)
        old = cu.rel_month < 0
        prev_basic = np.where(old, np.round(self.level[:, 0] * (1 + self.eps[:, 0]) * 100), 0)
        prev_basic = np.where(cu.dormant & old, np.round(self.level0 * 100), prev_basic)
        g = self.cur_acc["DEP_GENERAL"]
        gen_frac = np.where(g >= 0, self.acc["frac"][np.maximum(g, 0)], 0.0)
        prev_gen = np.where(old & (g >= 0), np.round(gen_frac * self.level[:, 0] * 100), 0)
        self.prev_end = np.concatenate([prev_basic, prev_gen]).astype(np.int64)
        hold_prev = {p: self.holds(p, cal.start - 1) for p in TAKEUP_PRODUCTS}
        self.lift = np.asarray([cfg.event_lift[e] for e in EVENT_IDS])
        self.targets_of = {p: [i for i, e in enumerate(EVENT_IDS) if EVENT_TARGET[e] == p]
                           for p in TAKEUP_PRODUCTS}
        for k in range(T):
            buf = TxnBuffer()
            self._maturities(k, buf)
            self._early_settlements(k, buf)
            self._closures(k)
            if self.pilot_valid and k == self.pilot_k:
                self._assign_pilot(k)
            self._takeups(k, buf, hold_prev)
            if self.pilot is not None and self.pilot_k <= k <= self.pilot_k + 2:
                self._induced(k, buf)
            self._month_flows(k, buf)
            flags = fire(k, self.ob, self.est_abs, self.rel_abs)
            for e, name in enumerate(EVENT_IDS):
                self.fired[e, :, k] = flags[name]
            last = cal.last[k]
            for j, p in enumerate(TAKEUP_PRODUCTS):
                self.hold_end[j, :, k] = self.holds(p, last)
            hold_prev = {p: self.hold_end[j, :, k] for j, p in enumerate(TAKEUP_PRODUCTS)}

    def _lifts(self, product: str, k: int, who: np.ndarray | None = None, upto: int | None = None) -> np.ndarray:
        """Π lift over events targeting `product` fired in months k−3 … min(k−1, upto)."""
        w = self.cfg.event_window_months
        hi = k if upto is None else min(k, upto + 1)
        lo = max(0, k - w)
        out = np.ones(self.n if who is None else len(who))
        if hi <= lo:
            return out
        for e in self.targets_of[product]:
            rec = self.fired[e, :, lo:hi] if who is None else self.fired[e, who, lo:hi]
            out = out * np.where(rec.any(axis=1), self.lift[e], 1.0)
        return out

    def _maturities(self, k: int, buf: TxnBuffer) -> None:
        cfg, rng, L = self.cfg, self.rng, self.loans
        f, last = self.cal.first[k], self.cal.last[k]
        due = np.flatnonzero((L["settled"] < 0) & (L["maturity"] >= f) & (L["maturity"] <= last))
        if not len(due):
            return
        L["settled"][due] = L["maturity"][due]
        acc = L["account"][due]
        self.acc["close_day"][acc[acc >= 0]] = L["maturity"][due][acc >= 0]
        for product in CREDIT_LOANS:
            idx = due[L["product"][due] == PRODUCT_INDEX[product]]
            if not len(idx):
                continue
            who = L["owner"][idx]
            mat = L["maturity"][idx]
            offer_day = mat - rng.integers(5, 31, len(idx))
            guide = self.guide_at(product, offer_day)
            gap = self.gap_bp(who)
            offered = np.round(guide + gap / 10_000.0, 4)
            accept = rng.random(len(idx)) < _logistic(cfg.pricing_intercept + cfg.pricing_slope_per_bp * gap)
            amount = (np.round(L["amount"][idx] / 1_000_000 * rng.uniform(0.9, 1.3, len(idx)) * 2) / 2
                      * 1_000_000).astype(np.int64)
            amount = np.maximum(amount, 500_000)
            rec = offer_day >= day(cfg.offers_recorded_from)
            self.offers.add(owner=who[rec], product=np.full(rec.sum(), PRODUCT_INDEX[product]),
                            day=offer_day[rec], guide=guide[rec], offered=offered[rec],
                            amount=amount[rec], accepted=accept[rec])
            a = accept
            self.new_loans(who[a], product, mat[a], ORIGIN_RENEWAL, amount=amount[a], rate=offered[a],
                           guide=guide[a], gap=gap[a])
            nr = ~a
            buf.add(who[nr], mat[nr], self.outstanding(idx[nr], mat[nr]), D, "贷款还款", BANK_SAME)

    def _early_settlements(self, k: int, buf: TxnBuffer) -> None:
        L = self.loans
        f, last = self.cal.first[k], self.cal.last[k]
        credit = np.isin(L["product"], [PRODUCT_INDEX[p] for p in CREDIT_LOANS])
        live = np.flatnonzero(credit & (L["settled"] < 0) & (L["disb"] < f) & (L["maturity"] > last))
        go = live[self.rng.random(len(live)) < self.cfg.early_settlement_hazard]
        if not len(go):
            return
        days = self.random_days(k, len(go))
        L["settled"][go] = days
        self.acc["close_day"][L["account"][go]] = days
        buf.add(L["owner"][go], days, self.outstanding(go, days), D, "贷款还款", BANK_SAME)

    def _closures(self, k: int) -> None:
        f = self.cal.first[k]
        for product in SERVICE_PRODUCTS:
            held = np.flatnonzero(self.holds(product, f - 1))
            go = held[self.rng.random(len(held)) < self.cfg.account_close_hazard]
            self.acc["close_day"][self.cur_acc[product][go]] = self.random_days(k, len(go))

    def _takeups(self, k: int, buf: TxnBuffer, hold_prev: dict[str, np.ndarray]) -> None:
        cfg, rng = self.cfg, self.rng
        exists = self.cu.rel_month < k
        in_pilot_window = self.pilot is not None and self.pilot_k <= k <= self.pilot_k + 2
        for j, product in enumerate(TAKEUP_PRODUCTS):
            base = cfg.base_hazard.get(product, 0.0)
            extra = cfg.pilot_window_loan_hazard if (in_pilot_window and product == "LOAN_OP") else 0.0
            if base <= 0 and extra <= 0:
                continue
            eligible = exists & ~hold_prev[product]
            hazard = base * self._lifts(product, k) + extra * self.is_pilot
            who = np.flatnonzero(eligible & (rng.random(self.n) < hazard))
            if not len(who):
                continue
            days = self.random_days(k, len(who))
            self._start_product(who, product, days, k, buf, ORIGIN_TAKEUP)
            self.takeup[j, who, k] = True
            self.takeup_log.append((who, product, days))

    def _start_product(self, who, product, days, k, buf, origin) -> None:
        if product in LOAN_PRODUCTS:
            idx = self.new_loans(who, product, days, origin)
            cents = self.loans["amount"][idx]
            if product == "DISC":
                years = (self.loans["maturity"][idx] - days) / 365.0
                cents = np.round(cents * (1 - self.loans["rate"][idx] * years)).astype(np.int64)
            buf.add(who, days, cents, C, "贷款发放", BANK_SAME)
            if product in CREDIT_LOANS and self.pilot is not None and k >= self.pilot_k:
                self.converted_window[who] = True
            return
        level = self.level[who, k]
        acc = self.deposit_account(who, product, days, level)
        if product == "TD":
            buf.add(who, days, self.acc["amount"][acc], D, "同名划转", BANK_SAME, True)
        elif product == "AGD":
            buf.add(who, days, np.round(self.acc["frac"][acc] * level * 100).astype(np.int64), D,
                    "同名划转", BANK_SAME, True)
        elif product == "BA":
            need = ~self.holds("MARGIN", self.cal.last[k])[who]
            m = self.deposit_account(who[need], "MARGIN", days[need], level[need])
            buf.add(who[need], days[need], self.acc["amount"][m], D, "保证金", BANK_SAME)

    # ------------------------------------------------------------------ the pilot
    def _assign_pilot(self, k: int) -> None:
        """Randomise the pilot population 50/50 within RM × tier strata at the end of month k−1."""
        cfg, rng, cu, ob = self.cfg, self.rng, self.cu, self.ob
        prev = k - 1
        cand = np.flatnonzero(self.st.sub_branch_pilot[cu.sub] & (cu.rel_month <= prev)
                              & ~ob.loan_active_end[:, prev])
        self.is_pilot[cand] = True
        q3 = ob.demand_avg[cand, max(0, k - 3):k].mean(axis=1)
        hi_t, mid_t = cfg.pilot_tier_thresholds
        tier = np.where(q3 >= hi_t, 0, np.where(q3 >= mid_t, 1, 2))
        rm = cu.rm[cand]
        key = rm * 3 + tier
        order = np.lexsort((rng.random(len(cand)), key))
        sk = key[order]
        starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
        sizes = np.diff(np.r_[starts, len(sk)])
        group = np.repeat(np.arange(len(starts)), sizes)
        rank = np.arange(len(sk)) - starts[group]
        coin = rng.random(len(starts)) < 0.5
        half = sizes // 2
        treat_sorted = (rank < half[group]) | ((rank == half[group]) & (sizes[group] % 2 == 1) & coin[group])
        treat = np.empty(len(cand), dtype=bool)
        treat[order] = treat_sorted
        rate = self.st.rm_follow_up[rm]
        contacted = treat & (rng.random(len(cand)) < rate)
        first = self.cal.first[k]
        lo, hi = cfg.pilot_contact_days
        contact_day = first + rng.integers(lo - 1, hi, len(cand))
        # natural conversion probability over the three pilot months from what is known now
        survive = np.ones(len(cand))
        for j in range(3):
            for product in CREDIT_LOANS:
                h = cfg.base_hazard.get(product, 0.0) * self._lifts(product, k + j, cand, upto=k - 1)
                if product == "LOAN_OP":
                    h = h + cfg.pilot_window_loan_hazard
                survive *= 1 - np.clip(h, 0, 1)
        p0 = 1 - survive
        delta = np.asarray([cfg.pilot_conversion_uplift[t] for t in cfg.pilot_tiers])[tier]
        q = np.clip(delta / (1 - p0), 0, 1)
        induced = contacted & (rng.random(len(cand)) < q)
        end = self.cal.last[min(k + 2, self.T - 1)]
        induced_day = np.where(induced, np.minimum(contact_day + rng.integers(3, 51, len(cand)), end), -1)
        dep = np.asarray([cfg.pilot_deposit_uplift[t] for t in cfg.pilot_tiers])[tier]
        self.pilot_delta[cand] = np.where(contacted, dep, 0.0)
        loan_events = [i for i, e in enumerate(EVENT_IDS) if EVENT_TARGET[e] in CREDIT_LOANS]
        ev = np.full(len(cand), "", dtype=object)
        for m in range(max(0, k - 3), k):          # later months overwrite: the most recent wins
            for i in loan_events:
                ev = np.where(self.fired[i, cand, m], EVENT_IDS[i], ev)
        tiers = np.asarray(cfg.pilot_tiers)
        stratum = np.strings.add(np.strings.add(self.st.rm_ids[rm], "|"), tiers[tier])
        self.pilot = PilotState(customers=cand, treat=treat, contacted=contacted, tier=tier,
                                stratum=stratum, event_id=ev.astype(str), contact_day=contact_day,
                                induced_day=induced_day, p0=p0, rate=rate)

    def _induced(self, k: int, buf: TxnBuffer) -> None:
        """Conversions caused by an RM contact (customers who have not converted by then)."""
        p = self.pilot
        f, last = self.cal.first[k], self.cal.last[k]
        sel = (p.induced_day >= f) & (p.induced_day <= last)
        who = p.customers[sel]
        days = p.induced_day[sel]
        keep = ~self.converted_window[who]
        who, days = who[keep], days[keep]
        if not len(who):
            return
        self._start_product(who, "LOAN_OP", days, k, buf, ORIGIN_PILOT)
        self.takeup[TAKEUP_PRODUCTS.index("LOAN_OP"), who, k] = True
        self.takeup_log.append((who, "LOAN_OP", days))

    # ------------------------------------------------------------------ flows and balances
    def _specials(self, k: int, buf: TxnBuffer, active: np.ndarray, first: np.ndarray) -> None:
        """Event-relevant transactions on the 基本户 of active customers."""
        cfg, rng, cu = self.cfg, self.rng, self.cu
        f = self.cal.first[k]
        act = np.flatnonzero(active)
        level = self.level[:, k]

        def days(who):
            return self.random_days(k, len(who), lo=first[who])

        def fixed(who, dom):
            return np.maximum(f + dom - 1, first[who])

        payroll = self.holds("PAYROLL", f - 1)[act]
        paid = self.to_private_share[act] * np.where(payroll, cfg.payroll_service_to_private, 1.0)
        cnt = rng.binomial(cu.employees[act], paid)
        who = np.repeat(act, cnt)
        buf.add(who, days(who), lognormal_cents(rng, len(who), *cfg.amount_to_private), D, "公转私")
        sal = act[payroll & self.payroll_like[act]]
        med, sd = cfg.amount_salary_per_employee
        buf.add(sal, fixed(sal, 10), lognormal_cents(rng, len(sal), med * cu.employees[sal], sd), D, "工资")
        acq = self.holds("ACQ", f - 1)[act]
        cnt = rng.poisson(self.cash_rate[act] * np.where(acq, cfg.acq_cash_reduction, 1.0))
        who = np.repeat(act, cnt)
        buf.add(who, days(who), lognormal_cents(rng, len(who), *cfg.amount_cash, round_to=100.0), D, "取现",
                BANK_NONE)
        tax = act[self.tax_cents[act, k] > 0]
        buf.add(tax, fixed(tax, 15), self.tax_cents[tax, k], D, "税费")
        soc = act[self.social_payer[act]]
        med, sd = cfg.amount_social_per_employee
        buf.add(soc, fixed(soc, 20), lognormal_cents(rng, len(soc), med * cu.employees[soc], sd), D, "社保")
        mb = act[self.multibank[act]]
        out = mb[rng.random(len(mb)) < cfg.same_name_out_monthly_prob]
        buf.add(out, days(out), lognormal_cents(rng, len(out), np.maximum(0.5 * level[out], 30_000.0), 0.8, 100.0),
                D, "同名划转", BANK_OTHER, True)
        inn = mb[rng.random(len(mb)) < cfg.same_name_in_monthly_prob]
        buf.add(inn, days(inn), lognormal_cents(rng, len(inn), np.maximum(0.5 * level[inn], 30_000.0), 0.8, 100.0),
                C, "同名划转", BANK_OTHER, True)
        big = act[rng.random(len(act)) < self.large_prob[act]]
        amount = cfg.large_inflow_threshold * np.exp(rng.exponential(cfg.large_inflow_excess, len(big)))
        buf.add(big, days(big), np.ceil(amount * 100).astype(np.int64), C, "货款")
        bill = act[self.bill_receiver[act] & (rng.random(len(act)) < cfg.bill_monthly_prob)]
        buf.add(bill, days(bill), lognormal_cents(rng, len(bill), *cfg.amount_bill, round_to=100.0), C, "票据")
        fx = act[self.fx_trader[act] & (rng.random(len(act)) < cfg.fx_monthly_prob)]
        buf.add(fx, days(fx), lognormal_cents(rng, len(fx), *cfg.amount_fx), C, "外汇", BANK_OTHER, usd=True)
        ba = act[self.holds("BA", f - 1)[act]]
        ba = ba[rng.random(len(ba)) < cfg.margin_monthly_prob]
        buf.add(ba, days(ba), lognormal_cents(rng, len(ba), *cfg.amount_margin, round_to=100.0), D, "保证金",
                BANK_SAME)

    def _loan_flows(self, k: int, buf: TxnBuffer) -> None:
        """Interest (and 抵押经营贷 principal) collected on the 21st from the 基本户."""
        L = self.loans
        d21 = self.cal.first[k] + 20
        credit = np.isin(L["product"], [PRODUCT_INDEX[p] for p in CREDIT_LOANS])
        end = np.where(L["settled"] >= 0, L["settled"], L["maturity"])
        live = np.flatnonzero(credit & (L["disb"] < d21) & (end > d21))
        if not len(live):
            return
        before = self.outstanding(live, np.full(len(live), d21 - 1))
        after = self.outstanding(live, np.full(len(live), d21))
        interest = np.round(before * L["rate"][live] / 12).astype(np.int64)
        buf.add(L["owner"][live], d21, interest + before - after, D, "贷款还款", BANK_SAME)

    def _month_flows(self, k: int, buf: TxnBuffer) -> None:
        cfg, cu, rng, n = self.cfg, self.cu, self.rng, self.n
        f, last, nd = self.cal.first[k], self.cal.last[k], self.cal.ndays[k]
        panel = cu.rel_month <= k
        self.ob.panel[:, k] = panel
        basic_first = np.maximum(f, cu.rel_day)
        g = self.cur_acc["DEP_GENERAL"]
        has_gen = (g >= 0) & (self.acc["open_day"][np.maximum(g, 0)] <= last)
        gen_first = np.maximum(f, self.acc["open_day"][np.maximum(g, 0)])
        gen_frac = np.where(has_gen, self.acc["frac"][np.maximum(g, 0)], 0.0)
        frac_b = np.where(panel, (last - basic_first + 1) / nd, 0.0)
        frac_g = np.where(has_gen, (last - gen_first + 1) / nd, 0.0)
        in_pilot = self.pilot is not None and self.pilot_k <= k <= self.pilot_k + 2
        bump = self.pilot_delta if in_pilot else 0.0
        level = np.where(cu.dormant, self.level0, self.level[:, k]) + bump
        eps = np.where(cu.dormant, 0.0, self.eps[:, k])
        target_b = level * (1 + eps)
        target_g = gen_frac * self.level[:, k] * (1 + eps + rng.normal(0, 0.03, n))
        target = np.round(np.concatenate([target_b, target_g]) * 100).astype(np.int64)
        infl = self.inflow[:, k]
        ib = infl * (1 - self.gen_share * has_gen) * frac_b
        ig = infl * self.gen_share * has_gen * frac_g
        inflow = np.round(np.concatenate([ib, ig]) * 100).astype(np.int64)
        active = panel & ~cu.dormant
        base = self.txn_rate * cu.activity * active
        intensity = np.concatenate([base, base * cfg.general_txn_share * has_gen])
        if self.with_txns:
            self._specials(k, buf, active, basic_first)
        self._loan_flows(k, buf)
        is_open = np.concatenate([panel, has_gen])
        first_day = np.concatenate([basic_first, gen_first])
        mf = settle(rng, cfg, buf, is_open=is_open, first_day=first_day, last_day=last,
                    prev_end=self.prev_end, target_end=target, inflow=inflow, intensity=intensity,
                    with_txns=self.with_txns)
        self.prev_end = mf.end
        avg_b = np.round(level * frac_b * 100).astype(np.int64)
        avg_g = np.round(gen_frac * self.level[:, k] * frac_g * 100).astype(np.int64)
        avg = np.concatenate([avg_b, avg_g])
        acc_of_slot = np.concatenate([self.cur_acc["DEP_BASIC"], g])
        rows = np.flatnonzero(is_open)
        a = acc_of_slot[rows]
        count = mf.count[rows] if self.with_txns else np.full(len(rows), -1)
        self.bal_parts.append((a, np.full(len(rows), k), mf.end[rows], avg[rows], self.acc["rate"][a],
                               mf.credit[rows], mf.debit[rows], count))
        ob = self.ob
        ob.inflow[:, k] = (np.where(panel, mf.credit[:n], 0) + np.where(has_gen, mf.credit[n:], 0)) / 100.0
        ob.demand_avg[:, k] = (np.where(panel, avg_b, 0) + np.where(has_gen, avg_g, 0)) / 100.0
        ob.tax_positive[:, k] = cu.tax_authorised & panel & (self.tax_cents[:, k] > 0)
        if mf.txns is not None:
            tx = mf.txns
            owner = tx["slot"] % n
            pur, dirn, cents = tx["purpose"], tx["dir"], tx["cents"]
            ob.n_txn[:, k] = np.bincount(owner, minlength=n)
            ob.n_to_private[:, k] = np.bincount(owner[pur == P_TO_PRIVATE], minlength=n)
            ob.n_cash[:, k] = np.bincount(owner[pur == P_CASH], minlength=n)
            ob.large_goods_in[:, k] = np.bincount(
                owner[(pur == P_GOODS) & (dirn == C) & (cents >= 50_000_000)], minlength=n) > 0
            ob.fx_in[:, k] = np.bincount(owner[(pur == P_FX) & (dirn == C)], minlength=n) > 0
            ob.bill_in[:, k] = np.bincount(owner[(pur == P_BILL) & (dirn == C)], minlength=n) > 0
            ob.same_name_out[:, k] = np.bincount(
                owner[(pur == P_SAME) & (dirn == D) & (tx["cp"] == BANK_OTHER) & (cents >= 10_000_000)],
                minlength=n) > 0
            tx["acc"] = acc_of_slot[tx["slot"]]
            del tx["slot"]
            self.txn_parts.append(tx)
        self._other_balance_rows(k)
        ob.loan_active_end[:, k] = np.logical_or.reduce([self.holds(p, last) for p in LOAN_PRODUCTS])

    def _other_balance_rows(self, k: int) -> None:
        """Month rows of time, agreement, margin and loan accounts.

        These accounts have no rows in the transactions table (it holds settlement accounts);
        their credit / debit amounts are the month's balance movements and txn_count the number
        of movements (a deposit account's increase is a credit; a loan's drawdown a debit and its
        repayments credits).
        """
        A, rng = self.acc, self.rng
        f, last, nd = self.cal.first[k], self.cal.last[k], self.cal.ndays[k]
        if len(self.prev_other) < A.n:
            self.prev_other = np.concatenate([self.prev_other, np.zeros(A.n - len(self.prev_other), np.int64)])
        close = A["close_day"]
        live = (A["open_day"] <= last) & ((close < 0) | (close > f))
        stop = np.where(close < 0, last + 1, np.minimum(close, last + 1))
        days = stop - np.maximum(A["open_day"], f)
        open_end = (close < 0) | (close > last)
        prod = A["product"]
        for product in ("TD", "AGD", "MARGIN"):
            idx = np.flatnonzero(live & (prod == PRODUCT_INDEX[product]) & (days > 0))
            if not len(idx):
                continue
            if product == "TD":
                full = A["amount"][idx].astype(float)
            elif product == "AGD":
                full = A["frac"][idx] * self.level[A["owner"][idx], k] * 100
            else:
                full = A["amount"][idx] * rng.uniform(0.7, 1.3, len(idx))
            avg = np.round(full * days[idx] / nd).astype(np.int64)
            end = np.where(open_end[idx], np.round(full * (1 + rng.normal(0, 0.02, len(idx)))), 0).astype(np.int64)
            move = end - self.prev_other[idx]
            self.prev_other[idx] = end
            credit, debit = np.maximum(move, 0), np.maximum(-move, 0)
            m = len(idx)
            self.bal_parts.append((idx, np.full(m, k), end, avg, A["rate"][idx], credit, debit,
                                   (credit > 0).astype(np.int64) + (debit > 0)))
        L = self.loans
        has_acc = L["account"] >= 0
        lend = np.where(L["settled"] >= 0, L["settled"], L["maturity"])
        lstop = np.minimum(lend, last + 1)
        ldays = lstop - np.maximum(L["disb"], f)
        li = np.flatnonzero(has_acc & (L["disb"] <= last) & (ldays > 0))
        if len(li):
            out_end = self.outstanding(li, np.full(len(li), last))
            end = np.where(lend[li] > last, out_end, 0)
            avg = np.round(out_end * ldays[li] / nd).astype(np.int64)
            drawn = L["disb"][li] >= f
            debit = np.where(drawn, L["amount"][li], 0)
            before = np.where(drawn, L["amount"][li], self.outstanding(li, np.full(len(li), f - 1)))
            credit = before - end
            m = len(li)
            self.bal_parts.append((L["account"][li], np.full(m, k), end, avg, L["rate"][li], credit, debit,
                                   (credit > 0).astype(np.int64) + (debit > 0)))
