"""Every magnitude of the synthetic demo bank in one place (defaults from /work/shared/SYNTHETIC.md).

`BankConfig` is the only knob: the generator reads no other constant that a banker would
recognise as a number about the bank. Product ids, account types and purposes are the
extract contract (schema.yaml), not magnitudes, and live in `catalog.py`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


def _d(**kw):
    return field(default_factory=lambda: dict(kw))


@dataclass(frozen=True)
class BankConfig:
    """Magnitudes of the synthetic bank. Money in 元, rates as decimals, hazards per month."""

    # ---- the bank
    bank_name_zh: str = "江澄银行"
    bank_name_en: str = "Jiangcheng Bank"
    home_city_zh: str = "江澄市"
    sub_branches_per_branch: int = 5            # 3 分行 × 5 = 15 支行
    grids_per_sub_branch: tuple[int, int] = (3, 5)
    customers_per_rm: float = 170.0             # RM count = customers / this (≥ one per 支行)
    rm_book_range: tuple[int, int] = (100, 400)
    rm_book_sigma: float = 0.45                 # log-normal spread of book sizes
    rm_left_share: float = 0.04                 # RMs 离职 / 调岗 (books not reassigned yet)

    # ---- customers
    customer_type_shares: dict = _d(个体工商户=0.60, 微型企业=0.30, 小型企业=0.09, 中型企业=0.01)
    industry_shares: dict = _d(F=0.34, C=0.15, H=0.12, E=0.08, G=0.07, L=0.07, A=0.05, O=0.05,
                               M=0.03, I=0.02, R=0.01, K=0.01)
    # median annual turnover (元) and log-sd by customer type
    turnover_median: dict = _d(个体工商户=600_000.0, 微型企业=3_000_000.0, 小型企业=20_000_000.0,
                               中型企业=150_000_000.0)
    turnover_sigma: float = 0.8
    turnover_per_employee: float = 250_000.0
    employees_range: dict = _d(个体工商户=(1, 8), 微型企业=(2, 19), 小型企业=(20, 99),
                               中型企业=(100, 299))
    registered_capital_median: dict = _d(个体工商户=100_000.0, 微型企业=1_000_000.0,
                                         小型企业=5_000_000.0, 中型企业=30_000_000.0)
    new_relationship_share: float = 0.12        # relationship started inside the 24 months
    dormant_share: float = 0.12                 # no transactions, tiny balances
    dormant_suspended_share: float = 0.5        # of dormant basic accounts marked 久悬
    frozen_account_share: float = 0.004
    unrated_share_sole_prop: float = 0.35
    rating_cutpoints: dict = _d(AAA=2.2, AA=1.5, A=0.7, BBB=-0.2, BB=-1.0, B=-1.8)  # risk z ≥ cut
    tax_authorised_share: float = 0.55          # 银税互动 authorisation (non-dormant customers)
    tax_monthly_filer_share: float = 0.75       # others file quarterly
    tax_rate_median: float = 0.015              # effective tax / turnover
    tax_rate_sigma: float = 0.5
    tax_zero_month_prob: float = 0.04
    tax_small_turnover: float = 1_200_000.0     # below this, many months are VAT-exempt (zero)
    tax_small_zero_prob: float = 0.5
    invoice_authorised_share: float = 0.40
    social_insurance_share: float = 0.7

    # ---- value: potential wallet (元/yr of contribution a bank could earn)
    wallet_intercept: float = -1.2
    wallet_coef: dict = _d(log_annual_turnover=0.55, log1p_employees=0.20, years_established=0.02,
                           log1p_annual_tax=0.15)
    wallet_industry_effect: dict = _d(F=0.0, C=0.15, H=-0.10, E=0.20, G=0.05, L=0.10, A=-0.20,
                                      O=-0.05, M=0.10, I=0.05, R=-0.10, K=0.10)
    wallet_noise_sd: float = 0.45
    # share of wallet = lo + (hi − lo) × logistic(a + b·(products − 1) + c·years_with_bank)
    share_range: tuple[float, float] = (0.08, 0.85)
    share_logit: dict = _d(intercept=-1.6, per_extra_product=0.45, per_year_with_bank=0.05)
    dormant_share_of_wallet: float = 0.01
    deposit_ftp: float = 0.024                  # assumption (internal to each bank)
    loan_ftp: float = 0.030                     # assumption
    demand_rate_range: tuple[float, float] = (0.0025, 0.0035)
    agreement_rate_range: tuple[float, float] = (0.010, 0.016)
    td_rate_range: tuple[float, float] = (0.016, 0.020)
    margin_rate: float = 0.0150
    # monthly log-growth of demand 日均 = base + coef × (1 − share_of_wallet)
    deposit_growth_base: float = 0.001
    headroom_growth_coef: float = 0.012
    deposit_ar: float = 0.6
    deposit_noise_sd: float = 0.13
    deposit_drop_prob: float = 0.02             # monthly chance of a transitory −40% shock
    month_end_deviation_sd: float = 0.04        # month-end vs 日均 (存款偏离度)
    quarter_end_uplift: float = 0.03            # 冲时点
    general_account_level: tuple[float, float] = (0.05, 0.30)   # of the basic account's level
    general_account_inflow_share: float = 0.15
    inflow_share_of_turnover: tuple[float, float] = (0.05, 1.0)
    inflow_noise_sd: float = 0.2
    inflow_peak_prob: float = 0.03              # a month with a 1.6–3× inflow (seasonal orders)
    # log shifts by calendar month (Jan … Dec): Spring Festival and year-end
    deposit_seasonality: tuple = (0.04, -0.06, 0.0, 0.0, 0.0, 0.01, 0.0, 0.0, 0.01, 0.0, 0.0, 0.05)
    inflow_seasonality: tuple = (0.15, -0.35, 0.05, 0.0, 0.0, 0.05, 0.0, 0.0, 0.05, 0.0, 0.05, 0.2)

    # ---- transactions (event-relevant monthly intensities)
    payroll_like_share: float = 0.35            # of customers paying staff by 公转私
    to_private_paid_share: tuple[float, float] = (0.7, 1.0)   # employees paid by 公转私 each month
    payroll_service_to_private: float = 0.15    # what is left of 公转私 once 代发 is signed
    cash_heavy_share: dict = _d(H=0.45, F=0.20, A=0.20, E=0.15, O=0.15, R=0.15)   # others: _other
    cash_heavy_share_other: float = 0.03
    cash_rate_heavy: tuple[float, float] = (12.0, 20.0)   # 取现 per month
    cash_rate_light: tuple[float, float] = (0.3, 3.0)
    acq_cash_reduction: float = 0.5
    fx_trader_share: dict = _d(C=0.08, F=0.04)  # others fx_trader_share_other
    fx_trader_share_other: float = 0.005
    fx_monthly_prob: float = 0.22
    bill_receiver_share: dict = _d(C=0.08, F=0.04, E=0.06, G=0.02)
    bill_receiver_share_other: float = 0.008
    bill_monthly_prob: float = 0.45
    multibank_share: float = 0.25
    same_name_out_monthly_prob: float = 0.12
    same_name_in_monthly_prob: float = 0.08
    large_inflow_threshold: float = 500_000.0
    large_inflow_slope: float = 0.3             # monthly prob = slope × (log10 turnover − 6.7)
    large_inflow_floor_log10: float = 6.7
    large_inflow_max_prob: float = 0.85
    general_txn_share: float = 0.3              # filler intensity of 一般户 vs 基本户
    filler_credit_purposes: dict = _d(货款=0.88, 其他=0.12)   # ordinary transactions
    filler_debit_purposes: dict = _d(货款=0.78, 其他=0.22)
    # channel mix per purpose: 柜面, 网银, 手机银行, ATM, POS, 批量
    channel_mix: dict = _d(货款=(0.12, 0.45, 0.33, 0, 0.10, 0), 工资=(0, 0, 0, 0, 0, 1),
                           税费=(0.05, 0.35, 0.10, 0, 0, 0.50), 社保=(0.05, 0.30, 0.05, 0, 0, 0.60),
                           取现=(0.55, 0, 0, 0.45, 0, 0), 公转私=(0.10, 0.50, 0.40, 0, 0, 0),
                           同名划转=(0.15, 0.55, 0.30, 0, 0, 0), 保证金=(0.40, 0.60, 0, 0, 0, 0),
                           票据=(0.50, 0.50, 0, 0, 0, 0), 外汇=(0.40, 0.60, 0, 0, 0, 0),
                           贷款发放=(0.30, 0.40, 0.30, 0, 0, 0), 贷款还款=(0, 0, 0, 0, 0, 1),
                           其他=(0.30, 0.35, 0.30, 0.05, 0, 0))
    # counterparty bank mix per purpose: 本行, 他行, 无 (同名划转 is set explicitly)
    counterparty_mix: dict = _d(货款=(0.30, 0.70, 0), 工资=(0.60, 0.40, 0), 税费=(0, 1, 0),
                                社保=(0, 1, 0), 取现=(0, 0, 1), 公转私=(0.35, 0.65, 0),
                                同名划转=(0, 1, 0), 保证金=(1, 0, 0), 票据=(0.30, 0.70, 0),
                                外汇=(0, 1, 0), 贷款发放=(1, 0, 0), 贷款还款=(1, 0, 0),
                                其他=(0.30, 0.50, 0.20))
    # amounts (元): log-normal median and log-sd
    amount_to_private: tuple[float, float] = (4_500.0, 0.5)
    amount_cash: tuple[float, float] = (3_000.0, 0.7)
    amount_salary_per_employee: tuple[float, float] = (4_500.0, 0.2)
    amount_social_per_employee: tuple[float, float] = (1_100.0, 0.15)
    amount_bill: tuple[float, float] = (200_000.0, 0.8)
    amount_fx: tuple[float, float] = (250_000.0, 0.9)
    amount_margin: tuple[float, float] = (200_000.0, 0.6)
    large_inflow_excess: float = 0.7            # amount = threshold × exp(Exp(this))
    margin_monthly_prob: float = 0.25

    # ---- products held at the start (non-dormant customers; driven by a latent engagement
    # score independent of the wallet drivers)
    initial_product_share: dict = _d(DEP_GENERAL=0.12, TD=0.04, AGD=0.015, BA=0.015, PAYROLL=0.04,
                                     ACQ=0.08, FXS=0.01, CASHMGT=0.01, EBANK=0.25, DISC=0.01)
    initial_loan_share: float = 0.30
    initial_loan_share_dormant: float = 0.05
    initial_loan_product_mix: dict = _d(LOAN_OP=0.55, LOAN_TAX=0.25, LOAN_MORT=0.20)
    engagement_loading: float = 1.0
    # take-up hazards per month (eligible customers), before event lifts
    base_hazard: dict = _d(DEP_GENERAL=0.0005, TD=0.0025, AGD=0.003, MARGIN=0.0, BA=0.0005,
                           LOAN_OP=0.0045, LOAN_TAX=0.0035, LOAN_MORT=0.0012, DISC=0.003,
                           PAYROLL=0.0025, ACQ=0.003, FXS=0.004, CASHMGT=0.002, EBANK=0.003)
    account_close_hazard: float = 0.002         # service / general / TD / AGD accounts
    # ---- events: true hazard multipliers (lift) and target products
    event_lift: dict = _d(EV_LARGE_INFLOW=3.0, EV_PAYROLL_PATTERN=2.5, EV_CASH_HEAVY=1.5,
                          EV_FX_RECEIPT=5.0, EV_BILL_RECEIVED=4.0, EV_INFLOW_SURGE=1.8,
                          EV_TAX_STABLE_NO_LOAN=2.0, EV_HIGH_DEMAND_BALANCE=1.3,
                          EV_ANNIVERSARY=1.0, EV_SAME_NAME_OUT=1.0, EV_NEW_RELATIONSHIP=1.0,
                          EV_DEPOSIT_DROP=1.0, EV_DORMANT_3M=1.0)
    event_window_months: int = 3

    # ---- loans and pricing
    loan_to_wallet: float = 25.0                # contract amount ≈ this × wallet × noise
    loan_amount_sigma: float = 0.45
    loan_amount_range_wan: tuple[float, float] = (3.0, 1000.0)
    loan_max_turnover_share: float = 0.8
    lpr_1y: dict = _d(**{"2019-08": 0.0425, "2020-04": 0.0385, "2021-12": 0.0380,
                         "2022-01": 0.0370, "2022-08": 0.0365})
    lpr_5y: dict = _d(**{"2019-08": 0.0485, "2020-04": 0.0465, "2021-12": 0.0465,
                         "2022-01": 0.0460, "2022-05": 0.0445, "2022-08": 0.0430})
    guide_rate: dict = _d(LOAN_OP=0.052, LOAN_TAX=0.050, LOAN_MORT=0.046, DISC=0.020)
    term_months: dict = _d(TD=12, LOAN_OP=12, LOAN_TAX=12, LOAN_MORT=36, DISC=6)
    # offered / executed rate − guide (bp) by internal rating: mean; sd pricing_gap_sd_bp
    pricing_gap_mean_bp: dict = _d(AAA=-45, AA=-30, A=-15, BBB=0, BB=20, B=40, C=70, 未评级=10)
    pricing_gap_sd_bp: float = 35.0
    # renewal offers: logit P(accept) = intercept + slope × gap_bp
    pricing_intercept: float = 1.0
    pricing_slope_per_bp: float = -0.03
    offers_recorded_from: str = "2022-01-01"    # the 一户一价 system went live
    early_settlement_hazard: float = 0.004
    pd_by_rating: dict = _d(AAA=0.003, AA=0.006, A=0.01, BBB=0.02, BB=0.04, B=0.08, C=0.15,
                            未评级=0.03)
    five_class_shares: dict = _d(关注=0.05, 次级=0.02, 可疑=0.01, 损失=0.005)   # × PD / mean PD
    credit_line_headroom: tuple[float, float] = (1.0, 1.5)
    unused_credit_line_share: float = 0.03

    # ---- pilot
    pilot_id: str = "P2022Q4"
    pilot_assigned_date: str = "2022-09-30"
    pilot_sub_branches: int = 4
    pilot_follow_up_range: tuple[float, float] = (0.3, 0.9)
    pilot_tier_thresholds: tuple[float, float] = (500_000.0, 50_000.0)  # mean demand 日均 Q3
    pilot_tiers: tuple[str, str, str] = ("T1", "T2", "T3")              # high → low
    pilot_conversion_uplift: dict = _d(T1=0.06, T2=0.045, T3=0.03)     # δ, added probability
    pilot_deposit_uplift: dict = _d(T1=200_000.0, T2=50_000.0, T3=15_000.0)  # Δ 元 of 日均
    pilot_window_loan_hazard: float = 0.006     # extra LOAN_OP hazard for pilot customers
    pilot_contact_days: tuple[int, int] = (1, 25)   # contact day in October

    # ---- marketing contacts and registry
    random_contacts_per_customer_year: float = 0.5
    takeup_contact_share: float = 0.4
    registry_changes_per_customer_year: float = 0.06

    # ---- planted data problems (rates of customers; at least one row each)
    duplicate_customer_rate: float = 0.0003
    same_uscc_extra_id_rate: float = 0.0003
    missing_industry_rate: float = 0.015
    invalid_uscc_rate: float = 0.0005
    orphan_account_rate: float = 0.0005
    negative_balance_rate: float = 0.0003
    future_dated_transactions: int = 2

    def summary(self) -> dict:
        """The configuration as plain JSON-able values (for truth.json)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
