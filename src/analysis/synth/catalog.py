"""Codes of the extract contract the generator writes: products, account types, purposes, events.

These are contract values other code relies on (schema.yaml categories, product ids), not
magnitudes; magnitudes are in `config.BankConfig`.
"""

from __future__ import annotations

# product_id, name_zh, name_en, product_type, account_type (None = loans.csv only)
PRODUCTS: list[tuple[str, str, str, str, str | None]] = [
    ("DEP_BASIC", "单位活期(基本户)", "Corporate current account (basic)", "存款", "基本存款账户"),
    ("DEP_GENERAL", "单位活期(一般户)", "Corporate current account (general)", "存款", "一般存款账户"),
    ("TD", "单位定期存款", "Corporate time deposit", "存款", "定期存款"),
    ("AGD", "协定存款", "Agreement deposit", "存款", "协定存款"),
    ("MARGIN", "保证金存款", "Margin deposit", "存款", "保证金账户"),
    ("LOAN_OP", "经营快贷", "Business quick loan", "贷款", "贷款账户"),
    ("LOAN_TAX", "税易贷", "Tax-based credit loan", "贷款", "贷款账户"),
    ("LOAN_MORT", "抵押经营贷", "Secured business loan", "贷款", "贷款账户"),
    ("DISC", "票据贴现", "Bill discounting", "票据", None),
    ("BA", "银行承兑汇票", "Bank acceptance bill", "票据", "签约服务"),
    ("PAYROLL", "代发工资", "Payroll service", "中间业务", "签约服务"),
    ("ACQ", "收单/聚合支付", "Merchant acquiring / QR payments", "结算", "签约服务"),
    ("FXS", "国际结算", "International settlement", "国际业务", "签约服务"),
    ("CASHMGT", "现金管理", "Cash management", "结算", "签约服务"),
    ("EBANK", "企业网银", "Corporate e-banking", "结算", "签约服务"),
]
PRODUCT_IDS = [p[0] for p in PRODUCTS]
PRODUCT_INDEX = {p: i for i, p in enumerate(PRODUCT_IDS)}
ACCOUNT_TYPE = {p[0]: p[4] for p in PRODUCTS}
LOAN_PRODUCTS = ["LOAN_OP", "LOAN_TAX", "LOAN_MORT", "DISC"]       # rows of loans.csv
CREDIT_LOANS = ["LOAN_OP", "LOAN_TAX", "LOAN_MORT"]                # "any LOAN_*" (pilot outcome)
ACCOUNT_PRODUCTS = ["DEP_GENERAL", "TD", "AGD", "MARGIN", "BA", "PAYROLL", "ACQ", "FXS", "CASHMGT",
                    "EBANK"]                                       # one open account per customer
SERVICE_PRODUCTS = ["BA", "PAYROLL", "ACQ", "FXS", "CASHMGT", "EBANK"]
TAKEUP_PRODUCTS = ACCOUNT_PRODUCTS + LOAN_PRODUCTS

CUSTOMER_TYPES = ["个体工商户", "微型企业", "小型企业", "中型企业"]
RATINGS = ["AAA", "AA", "A", "BBB", "BB", "B", "C", "未评级"]
PURPOSES = ["货款", "工资", "税费", "社保", "取现", "公转私", "同名划转", "保证金", "票据", "外汇",
            "贷款发放", "贷款还款", "其他"]
P = {name: i for i, name in enumerate(PURPOSES)}
CHANNELS = ["柜面", "网银", "手机银行", "ATM", "POS", "批量"]
CP_BANKS = ["本行", "他行", "无"]
DIRECTIONS = ["C", "D"]
CURRENCIES = ["CNY", "USD"]
ACCOUNT_STATUS = ["正常", "冻结", "久悬", "销户"]
GUARANTEE = ["信用", "保证", "抵押", "质押"]
FIVE_CLASS = ["正常", "关注", "次级", "可疑", "损失"]
GRID_TYPES = ["商圈", "园区", "市场", "社区", "乡镇"]
CONTACT_CHANNELS = ["电话", "上门", "微信", "短信", "网点"]
CONTACT_OUTCOMES = ["未接通", "无意向", "有意向", "已申请", "已成交"]
REGISTRY_TYPES = ["法定代表人变更", "增资", "减资", "新设分支机构", "股权变更", "经营异常", "行政处罚", "涉诉"]

# Event → target product. Triggers are defined in EVENT_DEFINITIONS and computed in triggers.py.
EVENT_TARGET = {
    "EV_LARGE_INFLOW": "TD",
    "EV_PAYROLL_PATTERN": "PAYROLL",
    "EV_CASH_HEAVY": "ACQ",
    "EV_FX_RECEIPT": "FXS",
    "EV_BILL_RECEIVED": "DISC",
    "EV_INFLOW_SURGE": "LOAN_OP",
    "EV_TAX_STABLE_NO_LOAN": "LOAN_TAX",
    "EV_HIGH_DEMAND_BALANCE": "AGD",
    "EV_ANNIVERSARY": "CASHMGT",
    "EV_SAME_NAME_OUT": "CASHMGT",
    "EV_NEW_RELATIONSHIP": "EBANK",
    "EV_DEPOSIT_DROP": "EBANK",
    "EV_DORMANT_3M": "EBANK",
}
EVENT_IDS = list(EVENT_TARGET)

PANEL = ("Customer-months: every calendar month m of the 24-month window with "
         "month(relationship_start_date) <= m (the customer's first panel month is the later of the "
         "window start and that month). 'Prior months' are panel months; a trigger that needs k "
         "prior months cannot fire before the customer has them. Demand accounts are accounts of "
         "account_type 基本存款账户 or 一般存款账户; a customer's transactions are those on any of "
         "its accounts. Missing balances / tax rows count as 0. Active loan at month end e: any "
         "loans.csv row with disbursement_date <= e AND COALESCE(settled_date, maturity_date) > e.")

EVENT_DEFINITIONS = {
    "EV_LARGE_INFLOW": ">= 1 transaction in m with direction C, purpose 货款 and amount >= 500000",
    "EV_PAYROLL_PATTERN": ">= 6 transactions in m with purpose 公转私",
    "EV_CASH_HEAVY": ">= 8 transactions in m with purpose 取现",
    "EV_FX_RECEIPT": ">= 1 transaction in m with purpose 外汇 and direction C",
    "EV_BILL_RECEIVED": ">= 1 transaction in m with purpose 票据 and direction C",
    "EV_INFLOW_SURGE": "S(m) >= 1.5 * mean(S(m-1), S(m-2), S(m-3)) AND that mean >= 50000, "
                       "S = sum of balances_monthly.credit_amount over demand accounts; "
                       "needs 3 prior panel months",
    "EV_TAX_STABLE_NO_LOAN": "tax_monthly.tax_paid > 0 in each of m-5..m (6 panel months) AND no "
                             "active loan at the end of m",
    "EV_HIGH_DEMAND_BALANCE": "sum of balance_daily_avg over demand accounts >= 800000 in each of "
                              "m-2..m (3 panel months)",
    "EV_ANNIVERSARY": "calendar month of m = month of established_date AND m >= "
                      "month(established_date) + 12 months",
    "EV_SAME_NAME_OUT": ">= 1 transaction in m with purpose 同名划转, direction D, counterparty_bank "
                        "他行 and amount >= 100000",
    "EV_NEW_RELATIONSHIP": "month(relationship_start_date) within m-5..m",
    "EV_DEPOSIT_DROP": "demand 日均 sum in m <= 0.7 * that of m-1 AND m-1's >= 100000 (m-1 a panel "
                       "month)",
    "EV_DORMANT_3M": "no transaction on the customer's accounts in m and in the (up to two) "
                     "preceding panel months",
}
