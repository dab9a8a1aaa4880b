"""Stage 01 data assessment: data-quality findings, readiness per stage and column profiles.

Every check is DuckDB SQL against the warehouse connection (one table per schema table, typed
per the schema, amounts in 元), so a bank of 10⁶ customers × 24 months is checked without
loading a table into pandas. Checks are driven by ``data_templates/schema.yaml`` and skip
quietly when their inputs (a table, a column, the ingest report) are absent.

A finding is one row: ``table, column, check, dimension, severity, rows_affected, rows_total,
share, example, fix_zh, fix_en``. ``check`` is a stable id (see :data:`CHECKS`);
``column`` is ``None`` for table- or file-level findings; ``rows_total`` is the number of rows
the check examined (e.g. the non-empty values of the column for a validity check), so
``share = rows_affected / rows_total``; ``example`` is one offending row, masked wherever the
schema declares a mask; ``fix_zh`` / ``fix_en`` are the request the bank's IT can act on.

Severity (overridable per check with ``severity_overrides``):

* ``blocker`` — the affected later stage cannot produce a trustworthy number: a required
  table or required column is missing or empty, an amount column is in the wrong unit, core
  data are 3+ months stale, or a row-level defect hits ≥ 20% of the rows of a column that a
  later stage uses (``BLOCKER_SHARE``).
* ``major`` — must be fixed, but the stage can run on the clean rows (most defects on
  columns a later stage uses, duplicate keys, identity codes).
* ``minor`` — cosmetic or on columns no stage uses; format notes the ingest already repaired.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from analysis.errors import InputError
from analysis.privacy import id_check_digit, mask_value, uscc_check_char
from analysis.schema import Column, Schema, Table, load_schema
from analysis.sqltext import sql_string as _lit
from analysis.stats import PSI_SHIFT_FROM, psi_from_shares
from analysis.style import fmt_pct

# ----------------------------------------------------------------------------------------------
# Vocabulary
# ----------------------------------------------------------------------------------------------

SEVERITIES = ("blocker", "major", "minor")
DIMENSIONS = ("completeness", "uniqueness", "validity", "consistency", "timeliness", "accuracy")
STAGES = ("tags", "value", "pricing", "events", "pilot")

FINDING_COLUMNS = [
    "table", "column", "check", "dimension", "severity", "rows_affected", "rows_total",
    "share", "example", "fix_zh", "fix_en",
]
READINESS_COLUMNS = [
    "stage", "label_zh", "label_en", "fields_needed", "fields_fit", "score", "decision", "go",
    "reason_zh", "reason_en", "unfit_fields",
]
PROFILE_COLUMNS = [
    "table", "column", "type", "rows", "non_null_share", "distinct", "min", "median", "max",
    "top_values",
]

SEVERITY_LABELS = {
    "blocker": {"zh": "阻断", "en": "Blocker"},
    "major": {"zh": "重要", "en": "Major"},
    "minor": {"zh": "一般", "en": "Minor"},
}
DIMENSION_LABELS = {
    "completeness": {"zh": "完整性", "en": "Completeness"},
    "uniqueness": {"zh": "唯一性", "en": "Uniqueness"},
    "validity": {"zh": "有效性", "en": "Validity"},
    "consistency": {"zh": "一致性", "en": "Consistency"},
    "timeliness": {"zh": "及时性", "en": "Timeliness"},
    "accuracy": {"zh": "准确性", "en": "Accuracy"},
}
STAGE_LABELS = {
    "tags": {"zh": "客户标签", "en": "Customer tags"},
    "value": {"zh": "价值分层", "en": "Value tiers"},
    "pricing": {"zh": "一户一价定价", "en": "Per-customer pricing"},
    "events": {"zh": "商机事件", "en": "Opportunity events"},
    "pilot": {"zh": "试点评估", "en": "Pilot evaluation"},
}
DECISION_LABELS = {"go": {"zh": "可推进", "en": "Go"}, "no-go": {"zh": "暂缓", "en": "No-go"}}


@dataclass(frozen=True)
class CheckInfo:
    """What a check id means and how severe its findings are by default."""

    dimension: str
    label_zh: str
    label_en: str
    #: severity when the column (or, for table-level findings, the table) feeds a later stage
    severity_used: str
    severity_unused: str
    #: becomes a blocker when ≥ BLOCKER_SHARE of a used column's rows are affected
    escalates: bool = False


#: Every check id this module can emit. Ids are stable: tests and reports key on them.
CHECKS: dict[str, CheckInfo] = {
    "missing_table": CheckInfo("completeness", "缺少数据表", "Missing table", "blocker", "minor"),
    "empty_table": CheckInfo("completeness", "数据表为空", "Empty table", "blocker", "minor"),
    "missing_column": CheckInfo("completeness", "缺少字段", "Missing column", "major", "minor"),
    "null_values": CheckInfo("completeness", "空值", "Missing values", "major", "minor"),
    "placeholder_value": CheckInfo("completeness", "占位符代替空值", "Placeholder instead of empty",
                                   "major", "minor"),
    "missing_required": CheckInfo("completeness", "必填字段为空(已隔离)",
                                  "Required value missing (quarantined)", "major", "major", True),
    "missing_months": CheckInfo("completeness", "整月缺失", "Months missing", "major", "major"),
    "incomplete_month_coverage": CheckInfo("completeness", "客户月份不连续",
                                           "Customers with month gaps", "major", "major", True),
    "duplicate_key": CheckInfo("uniqueness", "主键重复", "Duplicate key", "major", "major", True),
    "same_uscc_multiple_ids": CheckInfo("uniqueness", "一户多号(同一信用代码多个客户号)",
                                        "One enterprise under several customer IDs",
                                        "major", "major"),
    "invalid_uscc_format": CheckInfo("validity", "统一社会信用代码格式错误", "Malformed USCC",
                                     "major", "major"),
    "invalid_uscc_check_digit": CheckInfo("validity", "统一社会信用代码校验位错误",
                                          "USCC check digit wrong", "major", "major"),
    "invalid_id_number": CheckInfo("validity", "身份证号码错误", "Invalid ID number",
                                   "major", "major"),
    "invalid_format": CheckInfo("validity", "格式不符", "Wrong format", "major", "minor", True),
    "invalid_category_value": CheckInfo("validity", "码值不在码表内", "Value outside the code list",
                                        "major", "minor", True),
    "type_error": CheckInfo("validity", "类型错误(已隔离)", "Type error (quarantined)",
                            "major", "major", True),
    "quarantined_rows": CheckInfo("validity", "其他隔离记录", "Other quarantined rows",
                                  "major", "major", True),
    "negative_balance": CheckInfo("validity", "存款余额为负", "Negative deposit balance",
                                  "major", "major", True),
    "start_after_end": CheckInfo("validity", "起始日期晚于结束日期", "Start date after end date",
                                 "major", "minor", True),
    "future_date": CheckInfo("validity", "日期晚于数据截止月", "Date after the as-of month",
                             "major", "minor", True),
    "rate_implausible": CheckInfo("validity", "利率不合理", "Implausible interest rate",
                                  "major", "major", True),
    "unexpected_type": CheckInfo("consistency", "字段类型不符", "Unexpected column type",
                                 "major", "minor"),
    "orphan_foreign_key": CheckInfo("consistency", "关联不上(孤儿记录)", "Orphan reference",
                                    "major", "minor", True),
    "unit_suspicion": CheckInfo("consistency", "金额单位存疑", "Amount unit suspect",
                                "blocker", "blocker"),
    "mojibake": CheckInfo("consistency", "乱码", "Garbled text (mojibake)", "major", "minor", True),
    "fullwidth_characters": CheckInfo("consistency", "全角字符", "Full-width characters",
                                      "minor", "minor"),
    "encoding_non_utf8": CheckInfo("consistency", "文件非 UTF-8 编码", "File not UTF-8",
                                   "minor", "minor"),
    "date_text_format": CheckInfo("consistency", "日期以文本格式提供", "Dates delivered as text",
                                  "minor", "minor"),
    "source_quirk": CheckInfo("consistency", "源数据特殊编码(已由映射转换)",
                              "Source quirk (decoded by the mapping)", "minor", "minor"),
    "stale_data": CheckInfo("timeliness", "数据不够新", "Data not current", "major", "minor"),
    "distribution_shift": CheckInfo("accuracy", "月度分布突变", "Month-on-month distribution shift",
                                    "major", "major"),
}

#: Planted problem of the synthetic bank (truth.json ``data_problems[].problem``) → check id.
PLANTED_PROBLEM_CHECKS: dict[str, str] = {
    "duplicate_rows": "duplicate_key",
    "same_uscc_multiple_ids": "same_uscc_multiple_ids",
    "missing_industry": "null_values",
    "invalid_uscc_check_digit": "invalid_uscc_check_digit",
    "encoding_gbk": "encoding_non_utf8",
    "yyyymmdd_dates": "date_text_format",
    "orphan_accounts": "orphan_foreign_key",
    "future_date": "future_date",
    "negative_balance": "negative_balance",
    "unit_wan_as_yuan": "unit_suspicion",
}

# ----------------------------------------------------------------------------------------------
# Thresholds and domain rules (one place, so a reader finds "why was this flagged" in one guess)
# ----------------------------------------------------------------------------------------------

#: Share of a used column's rows at which an escalating check becomes a blocker.
BLOCKER_SHARE = 0.20
#: Non-null share a needed field must reach to count as fit in the readiness matrix.
FIT_MIN_NON_NULL = 0.80
#: Core tables this many months behind the as-of month are a blocker (fewer: major).
STALE_BLOCKER_MONTHS = 3
#: Executed loan rates outside [LPR − 100 bp, LPR + 1,000 bp] (or ≤ 0) are implausible.
RATE_FLOOR_BELOW_LPR = 0.01
RATE_CAP_ABOVE_LPR = 0.10
#: A peer-amount median ratio this many decades away from its expected ratio is a unit problem
#: (the 万元/元 confusion is 4 decades; real spreads between peers stay well within 2).
UNIT_DECADES = 2.5
#: Coverage is checked over at most this many months (a 64-bit month mask per customer).
COVERAGE_MAX_MONTHS = 60
#: Deciles of the earlier month are the PSI bins.
PSI_BINS = 10

LOAN_ACCOUNT_TYPE = "贷款账户"
PLACEHOLDERS = ("-", "--", "---", "NULL", "NONE", "N/A", "NA", "#N/A", "\\N", "NAN", "NIL")

#: Optional columns that are empty by design for many rows (an open account has no close date);
#: their nulls are not findings.
NULLS_EXPECTED = {
    ("branches", "parent_branch_id"), ("relationship_managers", "grid_id"),
    ("products", "product_name_en"), ("products", "guide_rate"), ("products", "term_months"),
    ("accounts", "close_date"), ("loans", "settled_date"), ("loans", "overdue_days"),
    ("marketing_contacts", "event_id"), ("marketing_contacts", "product_id"),
    ("pilot_assignments", "event_id"), ("pilot_feedback", "contact_date"),
    ("pilot_feedback", "interested"), ("pilot_feedback", "applied"),
    ("pilot_feedback", "converted"), ("pilot_feedback", "feedback_date"),
    ("pilot_feedback", "notes"), ("registry_changes", "detail"),
}
#: Date columns that legitimately lie after the as-of month.
FUTURE_DATES_ALLOWED = {("loans", "maturity_date"), ("credit_lines", "end_date")}
#: (table, start column, end column): the start must not be after the end.
DATE_ORDER_PAIRS = [
    ("accounts", "open_date", "close_date"),
    ("loans", "disbursement_date", "maturity_date"),
    ("loans", "disbursement_date", "settled_date"),
    ("credit_lines", "start_date", "end_date"),
]
#: Product types whose rates are not tied to the LPR (excluded from the loan-rate check).
RATE_EXEMPT_PRODUCT_TYPES = ("票据",)
#: Loan-rate columns compared with the 1-year LPR.
LOAN_RATE_COLUMNS = [
    ("loans", "executed_rate"), ("loans", "guide_rate"),
    ("loan_offers", "offered_rate"), ("loan_offers", "guide_rate"),
]
#: Amount columns whose negative values are errors on deposit accounts.
BALANCE_COLUMNS = [("balances_monthly", "balance_month_end"),
                   ("balances_monthly", "balance_daily_avg")]
#: Distribution shift is watched on these amounts, month by month.
PSI_COLUMNS = BALANCE_COLUMNS
#: (table, date column, core?): freshness against the as-of month. External data may lag.
FRESHNESS_COLUMNS = [
    ("balances_monthly", "month", True),
    ("transactions", "txn_date", True),
    ("tax_monthly", "month", False),
    ("invoices_monthly", "month", False),
]

#: Typical median of each amount column for an SME book, in 元. Used only to decide which side
#: of an inconsistent peer pair is the wrong one (the one farther from its typical magnitude).
TYPICAL_MEDIAN_YUAN = {
    ("loans", "contract_amount"): 3e5,
    ("credit_lines", "limit_amount"): 5e5,
    ("loan_offers", "amount"): 3e5,
    ("balances_monthly", "balance_month_end"): 5e4,
    ("balances_monthly", "balance_daily_avg"): 5e4,
    ("balances_monthly", "credit_amount"): 2e5,
    ("balances_monthly", "debit_amount"): 2e5,
    ("transactions", "amount"): 1e4,
    ("customers", "annual_turnover"): 3e6,
    ("customers", "registered_capital"): 1e6,
    ("invoices_monthly", "invoice_amount"): 2e5,
    ("tax_monthly", "tax_paid"): 5e3,
}


@dataclass(frozen=True)
class UnitPeer:
    """Two amount columns whose medians should be within a few decades of each other."""

    a: tuple[str, str]
    b: tuple[str, str]
    #: expected log10(median a / median b)
    expected_decades: float
    #: restrict both medians to customers present in both tables
    same_customers: bool = False


UNIT_PEERS = [
    UnitPeer(("credit_lines", "limit_amount"), ("loans", "contract_amount"), 0.0, True),
    UnitPeer(("loan_offers", "amount"), ("loans", "contract_amount"), 0.0, True),
    UnitPeer(("balances_monthly", "balance_month_end"), ("balances_monthly", "balance_daily_avg"),
             0.0),
    UnitPeer(("balances_monthly", "credit_amount"), ("balances_monthly", "balance_daily_avg"), 0.5),
    UnitPeer(("balances_monthly", "debit_amount"), ("balances_monthly", "credit_amount"), 0.0),
    UnitPeer(("transactions", "amount"), ("balances_monthly", "credit_amount"), -1.5),
    UnitPeer(("customers", "annual_turnover"), ("loans", "contract_amount"), 1.0, True),
    UnitPeer(("customers", "registered_capital"), ("loans", "contract_amount"), 0.5, True),
    UnitPeer(("invoices_monthly", "invoice_amount"), ("customers", "annual_turnover"), -1.0, True),
    UnitPeer(("tax_monthly", "tax_paid"), ("invoices_monthly", "invoice_amount"), -1.5, True),
]

#: Format rules for code columns: (table, column) or mask kind → (regex, expected zh, en).
FORMAT_RULES: dict[tuple[str, str] | str, tuple[str, str, str]] = {
    ("customers", "industry_code"): (r"[A-T]", "GB/T 4754 门类字母 A–T",
                                     "a GB/T 4754 section letter A–T"),
    ("customers", "region_code"): (r"[1-9][0-9]{5}", "6 位行政区划代码", "a 6-digit region code"),
    "mobile": (r"(\+?86-?)?1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8}",
               "11 位手机号或带区号的固定电话", "an 11-digit mobile or a landline with area code"),
}

# Mis-decoded Chinese: UTF-8 read as Latin-1 / cp1252 (lead byte E4–E9 then a continuation
# byte), double-encoded Latin ('Ã'), GBK bytes read as UTF-8 (U+FFFD), the classic '锟斤拷' /
# '烫烫烫' / '屯屯屯', and UTF-8 read as GBK for the commonest company-name word (有限 → 鏈夐檺).
_CP1252_HIGH = ("\\x{152}\\x{153}\\x{160}\\x{161}\\x{178}\\x{17D}\\x{17E}\\x{192}\\x{2C6}\\x{2DC}"
                "\\x{2013}\\x{2014}\\x{2018}-\\x{201E}\\x{2020}-\\x{2022}\\x{2026}\\x{2030}"
                "\\x{2039}\\x{203A}\\x{20AC}\\x{2122}")
MOJIBAKE_PATTERN = (f"[äåæçèé][\\x{{80}}-\\x{{BF}}{_CP1252_HIGH}]|Ã|Â[\\x{{80}}-\\x{{BF}}]"
                    "|\\x{FFFD}|锟斤拷|烫烫|屯屯|鏈夐檺")
FULLWIDTH_PATTERN = "[Ａ-Ｚａ-ｚ０-９]"

# ----------------------------------------------------------------------------------------------
# Check digits (GB 32100-2015 USCC, GB 11643-1999 citizen ID)
# ----------------------------------------------------------------------------------------------

#: The 31 characters of the USCC code set (no I, O, S, V, Z), in value order 0..30.
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
#: Weights of USCC positions 1–17: 3^(i−1) mod 31.
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
#: Check character of an 18-digit ID, indexed by (Σ digit × weight) mod 11.
ID_CHECK_CODES = "10X98765432"


def has_valid_uscc_check_char(code: str | None) -> bool:
    """The warehouse rule in Python: 18 characters of the code set, right check character.

    Unlike :func:`analysis.privacy.is_valid_uscc` it ignores the code's structure (department,
    type, region), which the assessment does not judge; case and outer spaces are ignored.
    """
    if not isinstance(code, str):
        return False
    code = code.strip().upper()
    if len(code) != 18 or any(ch not in USCC_CHARSET for ch in code):
        return False
    return uscc_check_char(code[:17]) == code[17]


def has_valid_id_check(code: str | None) -> bool:
    """The warehouse rule in Python: 17 digits + the GB 11643 check character, or 15 digits."""
    if not isinstance(code, str):
        return False
    code = code.strip().upper()
    if len(code) == 15:
        return code.isascii() and code.isdigit()
    if len(code) != 18 or not (code[:17].isascii() and code[:17].isdigit()):
        return False
    return id_check_digit(code[:17]) == code[17]


def _uscc_well_formed_sql(x: str) -> str:
    return f"regexp_full_match({x}, '[{USCC_CHARSET}]{{18}}')"


def _uscc_check_ok_sql(x: str) -> str:
    """SQL: the check character of a well-formed USCC expression ``x`` is right."""
    terms = " + ".join(f"(strpos('{USCC_CHARSET}', substr({x}, {i + 1}, 1)) - 1) * {w}"
                       for i, w in enumerate(USCC_WEIGHTS))
    return (f"substr('{USCC_CHARSET}', ((31 - ({terms}) % 31) % 31) + 1, 1) = substr({x}, 18, 1)")


def _id_valid_sql(x: str) -> str:
    """SQL: ``x`` is a valid 18-digit ID or 15 digits."""
    terms = " + ".join(f"CAST(substr({x}, {i + 1}, 1) AS INTEGER) * {w}"
                       for i, w in enumerate(ID_WEIGHTS))
    return (f"(regexp_full_match({x}, '[0-9]{{15}}') OR "
            f"(regexp_full_match({x}, '[0-9]{{17}}[0-9X]')"
            f" AND substr('{ID_CHECK_CODES}', (({terms}) % 11) + 1, 1) = substr({x}, 18, 1)))")


# ----------------------------------------------------------------------------------------------
# Masking (the rules live in analysis.privacy)
# ----------------------------------------------------------------------------------------------

def _mask_example(value: Any, mask_kind: str | None) -> str:
    """A value as text for an example cell: masked by its schema mask kind (analysis.privacy)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if mask_kind is None:
        return str(value).strip()
    return str(mask_value(str(value), mask_kind))


# ----------------------------------------------------------------------------------------------
# Fix texts: the request to the bank's IT, per check
# ----------------------------------------------------------------------------------------------

FIX_TEXT: dict[str, tuple[str, str]] = {
    "missing_table": (
        "未提供{table_zh}（{table}）{required_zh}。请按数据模板提供该表{stages_zh}。",
        "{table_en} ({table}) was not delivered{required_en}. Please extract it per the data "
        "template{stages_en}."),
    "empty_table": (
        "{table_zh}（{table}）为空（0 行）。请检查抽数条件后重新提供。",
        "{table_en} ({table}) is empty (0 rows). Please check the extraction filter and "
        "deliver it again."),
    "missing_column": (
        "{where_zh}字段缺失。请在{table_zh}中补充该列（列名 {column}），口径见数据字典。",
        "{where_en} is missing. Please add column {column} to {table_en} as defined in the data "
        "dictionary."),
    "unexpected_type": (
        "{where_zh}的类型为 {actual}，应为{expected_zh}。请按数据字典口径导出。",
        "{where_en} has type {actual}; expected {expected_en}. Please export it as defined in "
        "the data dictionary."),
    "null_values": (
        "{where_zh}有 {n} 行为空（占 {pct}；示例：{example}）。"
        "请从源系统补充；如确实无值，请说明原因。",
        "{where_en} is empty in {n_rows} ({pct}; e.g. {example}). Please fill it from the source "
        "system, or tell us why it has no value."),
    "placeholder_value": (
        "{where_zh}有 {n} 行用“-”“NULL”等占位符代替空值（示例：{example}）。请导出真实值或留空。",
        "{where_en} holds a placeholder such as '-' or 'NULL' in {n_rows} (e.g. {example}). "
        "Please export the real value or leave it empty."),
    "missing_required": (
        "{where_zh}为必填字段，有 {n} 行为空，已隔离（示例：{example}）。请补齐后重新提供这些行。",
        "{where_en} is required but empty in {n_rows}, which were quarantined (e.g. {example}). "
        "Please fill them and deliver these rows again."),
    "missing_months": (
        "{table_zh}（{table}）缺少 {n} 个月份的数据：{months}。请补提这些月份。",
        "{table_en} ({table}) has no rows for {n_months}: {months}. Please deliver these "
        "months."),
    "incomplete_month_coverage": (
        "{n} 个客户在{table_zh}中存在月份缺失（示例：{example}）。请补齐每个账户从开户到销户"
        "（或数据截止月）每个月的余额记录。",
        "{n_customers_have} months missing in {table_en} (e.g. {example}). Please deliver one "
        "row per account for every month from opening to closing (or the as-of month)."),
    "duplicate_key": (
        "{table_zh}按主键（{key}）有 {n} 行重复（示例：{example}），重复行已隔离。请确认重复原因"
        "（如重复抽取、历史快照），每个主键只保留一行后重新提供。",
        "{table_en} has {n_rows} repeating the key ({key}) (e.g. {example}); the repeats were "
        "quarantined. Please find why (double extraction, history snapshots) and deliver one row "
        "per key."),
    "same_uscc_multiple_ids": (
        "有 {n} 个多余的客户号与其他客户号共用同一统一社会信用代码（一户多号；示例：{example}）。"
        "请在 ECIF 中确认是否为同一企业，并提供主客户号与从客户号的对照表。",
        "{n_extra_ids_share} a unified social credit code with another customer ID "
        "(one enterprise, several IDs; e.g. {example}). Please confirm in ECIF whether they are "
        "the same enterprise and send a mapping of secondary to primary customer IDs."),
    "invalid_uscc_format": (
        "{where_zh}有 {n} 个代码长度或字符不合规"
        "（应为 18 位，不含 I、O、S、V、Z；示例：{example}）。"
        "请核对后更正。",
        "{where_en}: {n_codes_have} the wrong length or characters (18 characters without I, O, "
        "S, V, Z; e.g. {example}). Please check and correct them."),
    "invalid_uscc_check_digit": (
        "请按 GB 32100-2015 校验统一社会信用代码的校验位，更正以下 {n} 个{entity_zh}（{where_zh}；"
        "示例：{example}）。",
        "Please validate the check character of the unified social credit code (GB 32100-2015) "
        "and correct these {n} {entity_en} ({where_en}; e.g. {example})."),
    "invalid_id_number": (
        "请按 GB 11643-1999 校验身份证号码的校验码（第 18 位），更正以下 {n} 条记录（{where_zh}；"
        "示例：{example}）。",
        "Please validate the check digit (18th character, GB 11643-1999) of the ID numbers and "
        "correct these {n_rows} ({where_en}; e.g. {example})."),
    "invalid_format": (
        "{where_zh}有 {n} 行格式不符，应为{expected_zh}（示例：{example}）。请按数据字典口径更正。",
        "{where_en} has the wrong format in {n_rows}; expected {expected_en} (e.g. {example}). "
        "Please correct it as defined in the data dictionary."),
    "invalid_category_value": (
        "{where_zh}有 {n} 行取值不在码值表内（示例：{example}；允许值：{values}）。请按码值表转换，"
        "或提供行内码值与模板码值的对照表。",
        "{where_en} has {n_rows} outside the code list (e.g. {example}; allowed: {values}). "
        "Please convert them to the code list or send a mapping from the bank's codes."),
    "type_error": (
        "{where_zh}有 {n} 行无法按{type_zh}解析，已隔离（示例：{example}）。"
        "请更正格式后重新提供这些行。",
        "{where_en} could not be read as {type_en} in {n_rows}, which were quarantined (e.g. "
        "{example}). Please correct the format and deliver these rows again."),
    "quarantined_rows": (
        "{table_zh}（{table}）有 {n} 行因“{reason}”被隔离（示例：{example}）。请核对后重新提供。",
        "{table_en} ({table}) has {n_rows} quarantined for '{reason}' (e.g. {example}). Please "
        "check and deliver them again."),
    "negative_balance": (
        "{where_zh}在存款类账户上有 {n} 行为负数（示例：{example}）。"
        "请确认是否为透支或符号口径问题，"
        "并更正。",
        "{where_en} is negative on deposit accounts in {n_rows} (e.g. {example}). Please check "
        "for overdrafts or a sign convention and correct them."),
    "start_after_end": (
        "{table_zh}有 {n} 行{start_zh}晚于{end_zh}（示例：{example}）。请核对源系统日期并更正。",
        "{table_en} has {n_rows} whose {start_en} is after the {end_en} (e.g. {example}). "
        "Please check the dates in the source system and correct them."),
    "future_date": (
        "{where_zh}有 {n} 行晚于数据截止月（{as_of}）月末（示例：{example}）。"
        "请核对是否为录入错误或"
        "默认值（如 9999-12-31），更正或置空。",
        "{where_en} is after the end of the as-of month ({as_of}) in {n_rows} (e.g. {example}). "
        "Please check for typos or default values (e.g. 9999-12-31) and correct or blank them."),
    "rate_implausible": (
        "{where_zh}有 {n} 笔利率不合理（≤0、低于 LPR−100bp 或高于 LPR+1000bp，一年期 LPR 取 {lpr}；"
        "示例：{example}）。{percent_zh}请核对后更正。",
        "{where_en} is implausible in {n_rows} (≤ 0, below LPR − 100 bp or above LPR + 1,000 bp, "
        "1-year LPR {lpr}; e.g. {example}). {percent_en}Please check and correct them."),
    "orphan_foreign_key": (
        "{where_zh}有 {n} 行在{ref_table_zh}中找不到对应的{ref_column_zh}（示例：{example}）。"
        "请补齐被引用的记录，或说明这些记录的来源。",
        "{where_en}: {n_rows} refer to a {ref_column_en} that is not in {ref_table_en} (e.g. "
        "{example}). Please deliver the missing records or explain where these rows come from."),
    "unit_suspicion": (
        "{where_zh}的中位数为 {median}，约为{peers_zh}的 {factor}，疑似{unit_zh}。"
        "受影响阶段：{stages_zh}。一行修复：请行内确认该字段单位；若确为{unit}，在 engagement.yaml "
        "中设置 `{units_yaml}` 后重新入库（playbook ingest）。",
        "The median of {where_en} is {median}, about {factor} that of {peers_en}; it looks "
        "{unit_en}. Stages blocked: {stages_en}. One-line fix: confirm the unit with the bank "
        "and, if so, set `{units_yaml_en}` in engagement.yaml, then ingest again "
        "(playbook ingest)."),
    "mojibake": (
        "{where_zh}有 {n} 行出现乱码（示例：{example}），通常是 GBK 与 UTF-8 编码混用所致。"
        "请统一以 UTF-8 重新导出（或注明文件编码）。",
        "{where_en} is garbled in {n_rows} (e.g. {example}), usually GBK and UTF-8 mixed up. "
        "Please export again in UTF-8 (or state the file's encoding)."),
    "fullwidth_characters": (
        "{where_zh}有 {n} 行含全角字母或数字（示例：{example}）。请转换为半角后提供。",
        "{where_en} holds full-width letters or digits in {n_rows} (e.g. {example}). Please "
        "convert them to half-width."),
    "encoding_non_utf8": (
        "文件 {file} 以 {encoding} 编码提供，已自动转换（{n} 行）。今后请统一以 UTF-8 导出。",
        "File {file} was delivered in {encoding} and converted automatically ({n_rows}). Please "
        "export in UTF-8 from now on."),
    "date_text_format": (
        "{where_zh}以文本格式 {fmt} 提供（{n} 行），已自动转换。今后请以 YYYY-MM-DD 日期格式导出。",
        "{where_en} was delivered as {fmt} text ({n_rows}) and converted automatically. Please "
        "export dates as YYYY-MM-DD from now on."),
    "source_quirk": (
        "源数据问题（映射文件已转换）：{detail}。今后请按数据模板直接提供转换后的字段。",
        "Source quirk, decoded by the mapping file: {detail}. Please deliver the field as the "
        "data template defines it from now on."),
    "stale_data": (
        "{where_zh}的最新数据为 {latest}，比数据截止月 {as_of} 早 {months} 个月。"
        "请提供截至 {as_of} 的数据。",
        "{where_en} ends at {latest}, {months} month(s) before the as-of month {as_of}. Please "
        "deliver data up to {as_of}."),
    "distribution_shift": (
        "{where_zh}在以下月份分布突变（与上月相比 PSI ≥ {psi_limit}）：{months}。"
        "请确认这些月份的口径、"
        "单位或抽数范围是否有变化。",
        "{where_en} shifts abruptly in these months (PSI vs the month before ≥ {psi_limit}): "
        "{months}. Please check whether the definition, unit or extraction scope changed."),
}

TYPE_LABELS = {
    "string": ("文本", "text"), "category": ("码值", "a code"), "integer": ("整数", "an integer"),
    "decimal": ("数值", "a number"), "date": ("日期", "a date"), "month": ("月份", "a month"),
    "boolean": ("是/否", "a yes/no flag"),
}


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return ""


# ----------------------------------------------------------------------------------------------
# Warehouse access
# ----------------------------------------------------------------------------------------------

def _first(cursor) -> tuple | None:
    """First row of a result, fetched to the end (DuckDB 2 refuses new work on a connection
    while a result is only partly fetched)."""
    rows = cursor.fetchall()
    return rows[0] if rows else None


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'




def _type_family(duckdb_type: str) -> str:
    t = duckdb_type.upper()
    if t.startswith(("VARCHAR", "CHAR", "TEXT", "STRING")):
        return "text"
    if t.startswith(("DATE", "TIMESTAMP")):
        return "date"
    if t == "BOOLEAN":
        return "boolean"
    if t.startswith(("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                     "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")):
        return "integer"
    if t.startswith(("DOUBLE", "FLOAT", "REAL", "DECIMAL", "NUMERIC")):
        return "number"
    return "other"


_EXPECTED_FAMILIES = {
    "string": {"text"}, "category": {"text"}, "integer": {"integer"},
    "decimal": {"number", "integer"}, "date": {"date"}, "month": {"date"}, "boolean": {"boolean"},
}


class _Warehouse:
    """Which schema tables and columns the connection holds, with cached row counts."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = current_schema() "
            "ORDER BY table_name, column_index").fetchall()
        self.columns: dict[str, dict[str, str]] = {}
        for table, column, data_type in rows:
            self.columns.setdefault(table, {})[column] = data_type
        self._rows: dict[str, int] = {}

    def has(self, table: str, column: str | None = None) -> bool:
        if table not in self.columns:
            return False
        return column is None or column in self.columns[table]

    def family(self, table: str, column: str) -> str:
        return _type_family(self.columns[table][column])

    def rows(self, table: str) -> int:
        if table not in self._rows:
            self._rows[table] = int(self.one(f"SELECT count(*) FROM {_q(table)}"))
        return self._rows[table]

    def all(self, sql: str, params: Iterable | None = None) -> list[tuple]:
        return self.con.execute(sql, list(params or [])).fetchall()

    def one(self, sql: str, params: Iterable | None = None):
        row = _first(self.con.execute(sql, list(params or [])))
        return None if row is None else row[0]


# ----------------------------------------------------------------------------------------------
# Findings
# ----------------------------------------------------------------------------------------------

@dataclass
class _Context:
    wh: _Warehouse
    schema: Schema
    as_of: str
    lpr_1y: float
    overrides: Mapping[str, str]
    ingest: dict[str, dict]
    quarantine_dir: Path | None
    findings: list[dict] = field(default_factory=list)
    #: (table, column) the ingest created empty because the file lacked them
    not_delivered: set[tuple[str, str]] = field(default_factory=set)

    @property
    def month_start(self) -> dt.date:
        return dt.date(int(self.as_of[:4]), int(self.as_of[5:7]), 1)

    @property
    def month_end(self) -> dt.date:
        start = self.month_start
        nxt = dt.date(start.year + (start.month == 12), start.month % 12 + 1, 1)
        return nxt - dt.timedelta(days=1)

    # -- schema helpers

    def present_tables(self) -> list[Table]:
        return [t for t in self.schema.tables.values() if self.wh.has(t.name)]

    def present_columns(self, table: Table) -> list[Column]:
        """Schema columns in the warehouse that hold delivered data."""
        return [c for c in table.columns if self.wh.has(table.name, c.name)
                and (table.name, c.name) not in self.not_delivered]

    def col(self, table: str, column: str) -> Column | None:
        t = self.schema.tables.get(table)
        if t is None:
            return None
        return next((c for c in t.columns if c.name == column), None)

    def used(self, table: str, column: str | None) -> bool:
        t = self.schema.tables.get(table)
        if t is None:
            return False
        if column is None:
            return any(c.used_by for c in t.columns)
        # a composite key is written "a+b"
        return any(bool(c and c.used_by) for c in (self.col(table, p) for p in column.split("+")))

    def show(self, table: str, column: str, value: Any) -> str:
        """A value as it may appear in an output: masked when the schema says so."""
        c = self.col(table, column)
        if isinstance(value, (dt.datetime, pd.Timestamp)):
            value = value.date() if value.time() == dt.time(0) else value
        if isinstance(value, float):
            value = f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4f}"
        return _mask_example(value, c.mask if c else None)

    def key_example(self, table: str, column: str | None, where: str) -> str:
        """'key=…; column=…' of the first row matching ``where`` (masked), or ''."""
        t = self.schema.tables[table]
        keys = [k for k in t.primary_key if self.wh.has(table, k)]
        cols = keys + ([column] if column and column not in keys else [])
        if not cols:
            return ""
        row = _first(self.wh.con.execute(
            f"SELECT {', '.join(_q(c) for c in cols)} FROM {_q(table)} WHERE {where} LIMIT 1"
        ))
        if row is None:
            return ""
        return "; ".join(f"{c}={self.show(table, c, v) if v is not None else '∅'}"
                         for c, v in zip(cols, row, strict=True))

    # -- labels for fix texts

    def where_fields(self, table: str, column: str | None) -> dict[str, str]:
        t = self.schema.tables.get(table)
        t_zh, t_en = (t.label_zh, t.label_en) if t else (table, table)
        out = {"table": table, "table_zh": t_zh, "table_en": t_en, "column": column or ""}
        if column:
            c = self.col(table, column)
            c_zh, c_en = (c.label_zh, c.label_en) if c else (column, column)
            out.update(column_zh=c_zh, column_en=c_en,
                       where_zh=f"{t_zh}的{c_zh}（{table}.{column}）",
                       where_en=f"{c_en} ({table}.{column}) in {t_en}")
        else:
            out.update(where_zh=f"{t_zh}（{table}）", where_en=f"{t_en} ({table})")
        return out

    # -- severity

    def severity(self, check: str, table: str, column: str | None, share: float) -> str:
        info = CHECKS[check]
        used = self.used(table, column)
        sev = info.severity_used if used else info.severity_unused
        if info.escalates and used and share >= BLOCKER_SHARE:
            sev = "blocker"
        return sev

    def add(self, check: str, table: str, column: str | None, rows_affected: int,
            rows_total: int, example: str = "", severity: str | None = None, **fields) -> None:
        rows_affected, rows_total = int(rows_affected), int(rows_total)
        share = rows_affected / rows_total if rows_total else 1.0
        sev = self.overrides.get(check) or severity or self.severity(check, table, column, share)
        texts = _Fields(self.where_fields(table, column))
        n, one = f"{rows_affected:,}", rows_affected == 1
        texts.update(n=n, pct=fmt_pct(share), example=example or "—", as_of=self.as_of,
                     n_rows=f"{n} row" if one else f"{n} rows",
                     n_months=f"{n} month" if one else f"{n} months",
                     n_customers_have=f"{n} customer has" if one else f"{n} customers have",
                     n_codes_have=f"{n} code has" if one else f"{n} codes have",
                     n_extra_ids_share=f"{n} extra customer ID shares" if one
                     else f"{n} extra customer IDs share")
        texts.update(fields)
        zh, en = FIX_TEXT[check]
        self.findings.append({
            "table": table, "column": column, "check": check,
            "dimension": CHECKS[check].dimension, "severity": sev,
            "rows_affected": rows_affected, "rows_total": rows_total, "share": share,
            "example": example, "fix_zh": zh.format_map(texts), "fix_en": en.format_map(texts),
        })


def _empty_sql(x: str) -> str:
    return f"({x} IS NULL OR trim({x}) = '')"


def _placeholder_sql(x: str) -> str:
    # The length guard skips the trim/upper for almost every value (10× faster on IDs).
    return (f"(length({x}) <= 16 AND upper(trim({x})) IN "
            f"({', '.join(_lit(p) for p in PLACEHOLDERS)}))")


def _non_ascii_sql(x: str) -> str:
    """SQL: the text has a non-ASCII character (more bytes than characters), a cheap regex guard."""
    return f"strlen({x}) > length({x})"


def _valued_sql(x: str) -> str:
    """SQL: a text value that is neither empty nor a placeholder."""
    return f"(NOT {_empty_sql(x)} AND NOT {_placeholder_sql(x)})"


# ----------------------------------------------------------------------------------------------
# Completeness of tables and columns
# ----------------------------------------------------------------------------------------------

def _stages_text(table: Table) -> tuple[str, str]:
    stages = [s for s in STAGES if any(s in c.used_by for c in table.columns)]
    if not stages:
        return "", ""
    return ("，用于" + "、".join(STAGE_LABELS[s]["zh"] for s in stages),
            " (used by " + ", ".join(STAGE_LABELS[s]["en"].lower() for s in stages) + ")")


def _check_tables_and_columns(ctx: _Context) -> None:
    for table in ctx.schema.tables.values():
        if not ctx.wh.has(table.name):
            sev = "blocker" if table.required else "minor"
            stages_zh, stages_en = _stages_text(table)
            ctx.add("missing_table", table.name, None, 0, 0, severity=sev,
                    required_zh="（必需表）" if table.required else "（可选表）",
                    required_en=" (required)" if table.required else " (optional)",
                    stages_zh=stages_zh, stages_en=stages_en)
            continue
        if ctx.wh.rows(table.name) == 0:
            ctx.add("empty_table", table.name, None, 0, 0,
                    severity="blocker" if table.required else "minor")
            continue
        for col in table.columns:
            if not ctx.wh.has(table.name, col.name):
                sev = ("blocker" if table.required and col.required
                       else "major" if col.used_by else "minor")
                ctx.add("missing_column", table.name, col.name, ctx.wh.rows(table.name),
                        ctx.wh.rows(table.name), severity=sev)
                continue
            actual = ctx.wh.columns[table.name][col.name]
            if _type_family(actual) not in _EXPECTED_FAMILIES[col.type]:
                zh, en = TYPE_LABELS[col.type]
                ctx.add("unexpected_type", table.name, col.name, ctx.wh.rows(table.name),
                        ctx.wh.rows(table.name), actual=actual, expected_zh=zh, expected_en=en)


def _typed(ctx: _Context, table: str, column: str, family: str | set[str]) -> bool:
    """The column is present and its warehouse type belongs to ``family``."""
    if not ctx.wh.has(table, column):
        return False
    families = {family} if isinstance(family, str) else family
    return ctx.wh.family(table, column) in families


# ----------------------------------------------------------------------------------------------
# Column-value checks, one scan per table: nulls, placeholders, text artefacts, codes, categories
# ----------------------------------------------------------------------------------------------

@dataclass
class _Probe:
    """One count_if predicate of a table scan and the finding it becomes when non-zero."""

    check: str
    column: str
    predicate: str
    #: SQL for the rows the check examines (rows_total); None = every row
    denominator: str | None = None
    fields: dict = field(default_factory=dict)


def _value_probes(table: Table, col: Column, x: str, v: str | None = None) -> list[_Probe]:
    """Checks of one text column's values, written over the value expression ``x`` and its
    upper-cased, trimmed form ``v`` (computed once per value by the caller when given)."""
    probes: list[_Probe] = []
    valued = _valued_sql(x)
    v = v or f"upper(trim({x}))"
    if (table.name, col.name) not in NULLS_EXPECTED:
        probes.append(_Probe("null_values", col.name, _empty_sql(x)))
    if col.type == "category" and col.values:
        # A garbled or full-width code is outside the code list too: one finding, not three.
        allowed = ", ".join(_lit(a) for a in col.values)
        probes.append(_Probe("invalid_category_value", col.name,
                             f"{valued} AND trim({x}) NOT IN ({allowed})", valued,
                             {"values": "、".join(col.values)}))
        return probes
    # Keys and references are ASCII codes; a broken one shows as a duplicate or an orphan.
    if col.key or col.references:
        return probes
    if col.type == "string":
        probes.append(_Probe("placeholder_value", col.name, _placeholder_sql(x)))
    probes.append(_Probe("mojibake", col.name, f"({_non_ascii_sql(x)} AND regexp_matches("
                         f"{x}, {_lit(MOJIBAKE_PATTERN)}))", f"{x} IS NOT NULL"))
    probes.append(_Probe("fullwidth_characters", col.name, f"({_non_ascii_sql(x)} AND "
                         f"regexp_matches({x}, {_lit(FULLWIDTH_PATTERN)}))", f"{x} IS NOT NULL"))
    if col.mask == "uscc":
        probes.append(_Probe("invalid_uscc_format", col.name,
                             f"{valued} AND NOT {_uscc_well_formed_sql(v)}", valued))
        probes.append(_Probe("invalid_uscc_check_digit", col.name,
                             f"{valued} AND {_uscc_well_formed_sql(v)} AND NOT "
                             f"{_uscc_check_ok_sql(v)}", valued,
                             {"entity_zh": "客户" if table.name == "customers" else "记录",
                              "entity_en": "customers" if table.name == "customers" else "rows"}))
    if col.mask == "id_number":
        probes.append(_Probe("invalid_id_number", col.name,
                             f"{valued} AND NOT {_id_valid_sql(v)}", valued))
    rule = FORMAT_RULES.get((table.name, col.name)) or (
        FORMAT_RULES.get(col.mask) if col.mask else None)
    if rule:
        pattern, expected_zh, expected_en = rule
        probes.append(_Probe("invalid_format", col.name,
                             f"{valued} AND NOT regexp_full_match(trim({x}), {_lit(pattern)})",
                             valued, {"expected_zh": expected_zh, "expected_en": expected_en}))
    return probes


def _by_value(ctx: _Context, table: Table, col: Column) -> bool:
    """Whether a column's checks run on its distinct values (text that is not a key or a
    reference: codes, names, categories); keys and references are judged by duplicates and
    orphans, and reading them again would cost a full decompression of the biggest columns."""
    return _typed(ctx, table.name, col.name, "text") and (
        not (col.key or col.references) or (col.type == "category" and bool(col.values)))


def _check_nulls(ctx: _Context, table: Table) -> None:
    """NULLs of the columns not judged by value, one scan (count(x) comes from statistics)."""
    cols = [c for c in ctx.present_columns(table)
            if (table.name, c.name) not in NULLS_EXPECTED and not _by_value(ctx, table, c)]
    if not cols:
        return
    parts = [f"count(*) - count({_q(c.name)})" for c in cols]
    row = _first(ctx.wh.con.execute(f"SELECT count(*), {', '.join(parts)} FROM {_q(table.name)}"))
    for c, affected in zip(cols, row[1:], strict=True):
        if affected:
            ctx.add("null_values", table.name, c.name, affected, row[0],
                    ctx.key_example(table.name, c.name, f"{_q(c.name)} IS NULL"))


def _check_column_values(ctx: _Context) -> None:
    """Codes, categories, placeholders and text artefacts, judged once per distinct value.

    Grouping first keeps the cost at one hash aggregate per column: the big tables' text
    columns are low-cardinality (codes, currency), the high-cardinality ones (names, credit
    codes) live in customer-sized tables.
    """
    for table in ctx.present_tables():
        if ctx.wh.rows(table.name) == 0:
            continue
        _check_nulls(ctx, table)
        for col in ctx.present_columns(table):
            if not _by_value(ctx, table, col):
                continue
            probes = _value_probes(table, col, "v", "u")
            if not probes:
                continue
            parts = []
            for p in probes:
                parts.append(f"coalesce(sum(n) FILTER (WHERE {p.predicate}), 0)")
                parts.append(f"coalesce(sum(n) FILTER (WHERE {p.denominator}), 0)"
                             if p.denominator else "sum(n)")
            row = _first(ctx.wh.con.execute(
                f"SELECT {', '.join(parts)} FROM (SELECT v, n, upper(trim(v)) AS u FROM "
                f"(SELECT {_q(col.name)} AS v, count(*) AS n FROM {_q(table.name)} GROUP BY 1))"))
            for i, p in enumerate(probes):
                affected, total = int(row[2 * i]), int(row[2 * i + 1])
                if affected == 0:
                    continue
                on_table = _value_probes(table, col, _q(col.name))[i].predicate
                example = ctx.key_example(table.name, p.column, on_table)
                ctx.add(p.check, table.name, p.column, affected, total, example, **p.fields)


# ----------------------------------------------------------------------------------------------
# Uniqueness
# ----------------------------------------------------------------------------------------------

def _check_duplicate_keys(ctx: _Context, quarantined: dict[str, int],
                          q_examples: dict[str, str]) -> None:
    """Duplicates the ingest quarantined plus any still in the warehouse, one finding per table."""
    for table in ctx.schema.tables.values():
        key = table.primary_key
        if not key:
            continue
        in_warehouse = 0
        example = q_examples.get(table.name, "")
        # The ingest guarantees unique keys for the tables it reports on; re-grouping a
        # 10⁸-row table to confirm it would be the most expensive query of the stage.
        if (table.name not in ctx.ingest and ctx.wh.has(table.name)
                and all(ctx.wh.has(table.name, k) for k in key)):
            cols = ", ".join(_q(k) for k in key)
            in_warehouse = int(ctx.wh.one(
                f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {_q(table.name)} "
                f"GROUP BY {cols} HAVING count(*) > 1)"))
            if in_warehouse and not example:
                first = _first(ctx.wh.con.execute(
                    f"SELECT {cols} FROM {_q(table.name)} GROUP BY {cols} HAVING count(*) > 1 "
                    "LIMIT 1"))
                example = "; ".join(f"{k}={ctx.show(table.name, k, v)}"
                                    for k, v in zip(key, first, strict=True))
        total_dupes = in_warehouse + quarantined.get(table.name, 0)
        if total_dupes == 0:
            continue
        report = ctx.ingest.get(table.name, {})
        rows_total = _int(report.get("rows_in")) or (
            (ctx.wh.rows(table.name) if ctx.wh.has(table.name) else 0)
            + quarantined.get(table.name, 0))
        column = "+".join(key)
        ctx.add("duplicate_key", table.name, column, total_dupes, rows_total, example,
                key=", ".join(key))


def _check_same_uscc(ctx: _Context) -> None:
    """One enterprise (USCC) under several customer IDs: the extra IDs are counted."""
    for table in ctx.present_tables():
        key = table.primary_key
        if len(key) != 1 or not ctx.wh.has(table.name, key[0]):
            continue
        for col in ctx.present_columns(table):
            if col.mask != "uscc" or not _typed(ctx, table.name, col.name, "text"):
                continue
            x, k = _q(col.name), _q(key[0])
            base = (f"SELECT upper(trim({x})) AS code, count(DISTINCT {k}) AS ids "
                    f"FROM {_q(table.name)} WHERE {_valued_sql(x)} GROUP BY 1")
            extra, total = _first(ctx.wh.con.execute(
                f"SELECT coalesce(sum(ids - 1), 0), coalesce(sum(ids), 0) FROM ({base})"))
            if not extra:
                continue
            code, ids = _first(ctx.wh.con.execute(
                f"SELECT code, ids FROM ({base}) WHERE ids > 1 ORDER BY ids DESC, code LIMIT 1"
            ))
            members = [r[0] for r in ctx.wh.all(
                f"SELECT DISTINCT {k} FROM {_q(table.name)} WHERE upper(trim({x})) = ? "
                f"ORDER BY 1 LIMIT 3", [code])]
            example = (f"{col.name}={ctx.show(table.name, col.name, code)} ← {key[0]} "
                       + ", ".join(ctx.show(table.name, key[0], m) for m in members)
                       + (" …" if ids > 3 else ""))
            ctx.add("same_uscc_multiple_ids", table.name, col.name, extra, total, example)


# ----------------------------------------------------------------------------------------------
# Validity of amounts, dates and rates
# ----------------------------------------------------------------------------------------------

def _check_negative_balances(ctx: _Context) -> None:
    for table, column in BALANCE_COLUMNS:
        if not _typed(ctx, table, column, {"number", "integer"}):
            continue
        source = _q(table)
        if (ctx.wh.has(table, "account_id") and ctx.wh.has("accounts", "account_id")
                and ctx.wh.has("accounts", "account_type")):
            source += (" ANTI JOIN (SELECT account_id FROM accounts WHERE account_type = "
                       f"{_lit(LOAN_ACCOUNT_TYPE)}) loan_accounts USING (account_id)")
        x = _q(column)
        affected, total = _first(ctx.wh.con.execute(
            f"SELECT count_if({x} < 0), count({x}) FROM {source}"))
        if affected:
            ctx.add("negative_balance", table, column, affected, total,
                    ctx.key_example(table, column, f"{x} < 0 AND " + (
                        "account_id NOT IN (SELECT account_id FROM accounts WHERE account_type = "
                        f"{_lit(LOAN_ACCOUNT_TYPE)})" if "ANTI JOIN" in source else "TRUE")))


def _check_date_order(ctx: _Context) -> None:
    for table, start, end in DATE_ORDER_PAIRS:
        if not (_typed(ctx, table, start, "date") and _typed(ctx, table, end, "date")):
            continue
        s, e = _q(start), _q(end)
        affected, total = _first(ctx.wh.con.execute(
            f"SELECT count_if({s} > {e}), count_if({s} IS NOT NULL AND {e} IS NOT NULL) "
            f"FROM {_q(table)}"))
        if not affected:
            continue
        sc, ec = ctx.col(table, start), ctx.col(table, end)
        example = ctx.key_example(table, start, f"{s} > {e}")
        end_value = ctx.wh.one(f"SELECT {e} FROM {_q(table)} WHERE {s} > {e} LIMIT 1")
        ctx.add("start_after_end", table, end, affected, total,
                f"{example}; {end}={ctx.show(table, end, end_value)}",
                start_zh=sc.label_zh, end_zh=ec.label_zh,
                start_en=sc.label_en.lower(), end_en=ec.label_en.lower())


def _check_future_dates(ctx: _Context) -> None:
    for table in ctx.present_tables():
        probes = []
        for col in ctx.present_columns(table):
            if col.type not in ("date", "month") or (table.name, col.name) in FUTURE_DATES_ALLOWED:
                continue
            if not _typed(ctx, table.name, col.name, "date"):
                continue
            limit = ctx.month_start if col.type == "month" else ctx.month_end
            probes.append((col.name, f"{_q(col.name)} > DATE '{limit.isoformat()}'"))
        if not probes:
            continue
        parts = [f"count_if({pred}), count({_q(name)})" for name, pred in probes]
        row = _first(ctx.wh.con.execute(f"SELECT {', '.join(parts)} FROM {_q(table.name)}"))
        for i, (name, pred) in enumerate(probes):
            if row[2 * i]:
                ctx.add("future_date", table.name, name, row[2 * i], row[2 * i + 1],
                        ctx.key_example(table.name, name, pred))


def _check_loan_rates(ctx: _Context) -> None:
    low, high = ctx.lpr_1y - RATE_FLOOR_BELOW_LPR, ctx.lpr_1y + RATE_CAP_ABOVE_LPR
    for table, column in LOAN_RATE_COLUMNS:
        if not _typed(ctx, table, column, {"number", "integer"}):
            continue
        x = _q(column)
        scope = "TRUE"
        if (ctx.wh.has(table, "product_id") and ctx.wh.has("products", "product_id")
                and ctx.wh.has("products", "product_type")):
            # Bill discounting (票据) is priced off the money market, far below the LPR.
            scope = (f"product_id NOT IN (SELECT product_id FROM products WHERE product_type IN "
                     f"({', '.join(_lit(t) for t in RATE_EXEMPT_PRODUCT_TYPES)}))")
        pred = f"({x} <= 0 OR {x} < {low!r} OR {x} > {high!r}) AND {scope}"
        affected, total, median = _first(ctx.wh.con.execute(
            f"SELECT count_if({pred}), count({x}), quantile_cont({x}, 0.5) FROM {_q(table)} "
            f"WHERE {scope}"))
        if not affected:
            continue
        percent = median is not None and median > 1
        ctx.add("rate_implausible", table, column, affected, total,
                ctx.key_example(table, column, pred), lpr=f"{ctx.lpr_1y * 100:.2f}%",
                percent_zh="多数利率大于 1，疑似以百分数填报（应为小数，如 0.0385 表示 3.85%）。"
                if percent else "",
                percent_en="Most rates exceed 1, so they look like percentages (use decimals: "
                "0.0385 = 3.85%). " if percent else "")


# ----------------------------------------------------------------------------------------------
# Consistency: references, units
# ----------------------------------------------------------------------------------------------

def _check_references(ctx: _Context) -> None:
    for table in ctx.present_tables():
        for col in ctx.present_columns(table):
            if not col.references:
                continue
            ref_table, ref_column = col.references.split(".")
            if not ctx.wh.has(ref_table, ref_column):
                continue
            x = _q(col.name)
            orphan = (f"{x} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {_q(ref_table)} r "
                      f"WHERE r.{_q(ref_column)} = {_q(table.name)}.{x})")
            affected, total = _first(ctx.wh.con.execute(
                f"SELECT count_if({orphan}), count({x}) FROM {_q(table.name)}"))
            if not affected:
                continue
            rt = ctx.schema.tables[ref_table]
            rc = rt.column(ref_column)
            ctx.add("orphan_foreign_key", table.name, col.name, affected, total,
                    ctx.key_example(table.name, col.name, orphan),
                    ref_table_zh=f"{rt.label_zh}（{ref_table}）", ref_table_en=f"{rt.label_en} "
                    f"({ref_table})", ref_column_zh=rc.label_zh, ref_column_en=rc.label_en.lower())


#: Values kept by the reservoir behind a unit median: exact below it, ±1% above (decades matter).
UNIT_SAMPLE = 100_000


def _amount_median(ctx: _Context, cache: dict, table: str, column: str,
                   customers_in: str | None) -> float | None:
    """Median of the positive values (of the customers also in ``customers_in``), cached."""
    key = (table, column, customers_in)
    if key not in cache:
        x = _q(column)
        where = f"{x} > 0"
        if customers_in and ctx.wh.has(table, "customer_id"):
            where += f" AND customer_id IN (SELECT customer_id FROM {_q(customers_in)})"
        # A reservoir sample: exact on small tables, a second on 10⁸ rows where an exact
        # median or a t-digest takes many.
        value = ctx.wh.one(f"SELECT reservoir_quantile({x}, 0.5, {UNIT_SAMPLE}) "
                           f"FROM {_q(table)} WHERE {where}")
        cache[key] = float(value) if value is not None else None
    return cache[key]


def _check_units(ctx: _Context) -> None:
    cache: dict = {}
    results = []  # (peer, ratio decades off, median a, median b)
    for peer in UNIT_PEERS:
        if not all(_typed(ctx, t, c, {"number", "integer"}) for t, c in (peer.a, peer.b)):
            continue
        same = peer.same_customers and all(ctx.wh.has(t, "customer_id")
                                           for t, _ in (peer.a, peer.b))
        ma = _amount_median(ctx, cache, *peer.a, peer.b[0] if same else None)
        mb = _amount_median(ctx, cache, *peer.b, peer.a[0] if same else None)
        if same and (ma is None or mb is None):  # no customers in common: compare whole columns
            ma = _amount_median(ctx, cache, *peer.a, None)
            mb = _amount_median(ctx, cache, *peer.b, None)
        if not ma or not mb:
            continue
        off = math.log10(ma / mb) - peer.expected_decades
        results.append((peer, off, ma, mb))

    consistent: dict[tuple[str, str], list[bool]] = {}
    for peer, off, _, _ in results:
        for side in (peer.a, peer.b):
            consistent.setdefault(side, []).append(abs(off) < UNIT_DECADES)

    def trust(side: tuple[str, str], median: float) -> tuple[float, float]:
        votes = consistent.get(side, [])
        typical = TYPICAL_MEDIAN_YUAN.get(side)
        distance = abs(math.log10(median / typical)) if typical else 0.0
        return (sum(votes) / len(votes) if votes else 0.0, -distance)

    suspects: dict[tuple[str, str], list[tuple[tuple[str, str], float, float, float]]] = {}
    for peer, off, ma, mb in results:
        if abs(off) < UNIT_DECADES:
            continue
        # Blame the side that agrees with fewer of its other peers, then the one farther from
        # a typical SME magnitude; the factor is expressed from the suspect's side.
        if trust(peer.a, ma) <= trust(peer.b, mb):
            suspects.setdefault(peer.a, []).append((peer.b, ma, mb, off))
        else:
            suspects.setdefault(peer.b, []).append((peer.a, mb, ma, -off))

    for (table, column), peers in suspects.items():
        x = _q(column)
        total = int(ctx.wh.one(f"SELECT count({x}) FROM {_q(table)}"))
        if total == 0:
            continue
        _, own, other, off = peers[0]
        factor = own / other
        small = off < 0
        peers_zh = "、".join(
            f"{ctx.schema.tables[t].label_zh}的{ctx.col(t, c).label_zh}（{t}.{c}，中位数 "
            f"{_num(o)}）" for (t, c), _, o, _ in peers)
        peers_en = ", ".join(f"{ctx.col(t, c).label_en} ({t}.{c}, median {_num(o)})"
                             for (t, c), _, o, _ in peers)
        ctx.add("unit_suspicion", table, column, total, total,
                f"median {_num(own)} vs {peers[0][0][0]}.{peers[0][0][1]} {_num(other)}",
                median=_num(own), factor=_factor_text(factor), peers_zh=peers_zh,
                peers_en=peers_en,
                unit="万元" if small else "元",
                units_yaml=f"ingest: {{units: {{{table}.{column}: {'万元' if small else '元'}}}}}",
                # English reports carry no Chinese: the config accepts the ASCII aliases too.
                units_yaml_en=f"ingest: {{units: {{{table}.{column}: {'10k_yuan' if small else 'yuan'}}}}}",
                stages_zh="、".join(STAGE_LABELS[s]["zh"] for s in _column_stages(ctx, table, column))
                or "无",
                stages_en=", ".join(STAGE_LABELS[s]["en"].lower()
                                    for s in _column_stages(ctx, table, column)) or "none",
                unit_zh="以万元填报却标为元" if small else "以元填报却标为万元（或重复换算）",
                unit_en="to be in units of 10,000 yuan but labelled yuan" if small
                else "to be in yuan but labelled in units of 10,000 yuan (or converted twice)")


def _column_stages(ctx: _Context, table: str, column: str) -> list[str]:
    """Later stages (in STAGES order) whose needed fields include table.column."""
    col = ctx.col(table, column)
    return [s for s in STAGES if col is not None and s in col.used_by]


def _num(x: float) -> str:
    """A median for the text, to 2 significant digits (the reservoir makes the rest noise)."""
    if x == 0:
        return "0"
    rounded = round(x, 1 - math.floor(math.log10(abs(x))))
    return f"{rounded:,.0f}" if abs(rounded) >= 10 else f"{rounded:g}"


def _factor_text(factor: float) -> str:
    return f"1/{1 / factor:,.0f}" if factor < 1 else f"{factor:,.0f}×"


# ----------------------------------------------------------------------------------------------
# Months: coverage, freshness, distribution shift
# ----------------------------------------------------------------------------------------------

def _month_key_tables(ctx: _Context) -> list[tuple[str, str]]:
    out = []
    for table in ctx.present_tables():
        for col in ctx.present_columns(table):
            if col.type == "month" and col.key == "primary" and _typed(ctx, table.name, col.name,
                                                                       "date"):
                out.append((table.name, col.name))
    return out


def _check_month_coverage(ctx: _Context) -> None:
    as_of_start = f"DATE '{ctx.month_start.isoformat()}'"
    for table, column in _month_key_tables(ctx):
        m = f"date_trunc('month', {_q(column)})"
        first, last = _first(ctx.wh.con.execute(
            f"SELECT min({m}), max({m}) FROM {_q(table)} WHERE {m} <= {as_of_start}"))
        if first is None:
            continue
        missing = [r[0] for r in ctx.wh.all(
            f"SELECT g.m FROM generate_series(CAST(? AS DATE), CAST(? AS DATE), INTERVAL 1 MONTH) "
            f"g(m) WHERE g.m NOT IN (SELECT DISTINCT {m} FROM {_q(table)}) ORDER BY 1",
            [first, last])]
        period = _months_between(first, last) + 1
        if missing:
            ctx.add("missing_months", table, column, len(missing), period,
                    ", ".join(_month_text(d) for d in missing[:12]),
                    months=", ".join(_month_text(d) for d in missing[:12])
                    + (" …" if len(missing) > 12 else ""))
        if table == "balances_monthly":
            _check_customer_months(ctx, table, column, first, last)


def _check_customer_months(ctx: _Context, table: str, column: str, first, last) -> None:
    """Customers whose balances skip a month between their first month and the last month."""
    if not (ctx.wh.has(table, "account_id") and ctx.wh.has("accounts", "account_id")
            and ctx.wh.has("accounts", "customer_id")):
        return
    start = _add_months(_as_date(last), -(COVERAGE_MAX_MONTHS - 1))
    start = max(start, _as_date(first))
    last_d = _as_date(last)
    last_end = _add_months(last_d, 1) - dt.timedelta(days=1)
    m = f"date_trunc('month', b.{_q(column)})"
    idx = f"datediff('month', DATE '{start.isoformat()}', {m})"
    has_close = ctx.wh.has("accounts", "close_date") and _typed(ctx, "accounts", "close_date",
                                                                "date")
    still_open = (f"bool_or(a.close_date IS NULL OR a.close_date > DATE '{last_end.isoformat()}')"
                  if has_close else "TRUE")
    window = f"BETWEEN DATE '{start.isoformat()}' AND DATE '{last_d.isoformat()}'"
    # Months absent from the whole table are reported once (missing_months), not per customer.
    present_mask = ctx.wh.one(
        f"SELECT bit_or(1::BIGINT << datediff('month', DATE '{start.isoformat()}', mm)) "
        f"FROM (SELECT DISTINCT date_trunc('month', {_q(column)}) AS mm FROM {_q(table)}) "
        f"WHERE mm {window}")
    n_last = _months_between(start, last_d)
    per_customer = f"""
        SELECT a.customer_id,
               bit_or(1::BIGINT << {idx}) AS covered,
               min({idx}) AS first_idx, max({idx}) AS last_idx,
               {still_open} AS open_at_end
        FROM {_q(table)} b JOIN (SELECT DISTINCT account_id, customer_id
                                 {', close_date' if has_close else ''} FROM accounts) a
             ON a.account_id = b.account_id
        WHERE {m} {window}
        GROUP BY a.customer_id"""
    expected = (f"((1::BIGINT << (CASE WHEN open_at_end THEN {n_last} ELSE last_idx END + 1)) "
                f"- (1::BIGINT << first_idx)) & {int(present_mask)}")
    gap = f"bit_count({expected}) > bit_count(covered & {expected})"
    affected, total = _first(ctx.wh.con.execute(
        f"SELECT count_if({gap}), count(*) FROM ({per_customer})"))
    if not affected:
        return
    cid, covered, exp = _first(ctx.wh.con.execute(
        f"SELECT customer_id, bit_count(covered & {expected}), bit_count({expected}) "
        f"FROM ({per_customer}) WHERE {gap} ORDER BY customer_id LIMIT 1"))
    ctx.add("incomplete_month_coverage", table, column, affected, total,
            f"customer_id={ctx.show('customers', 'customer_id', cid)}: {covered}/{exp} months")


def _check_freshness(ctx: _Context) -> None:
    for table, column, core in FRESHNESS_COLUMNS:
        if not _typed(ctx, table, column, "date"):
            continue
        x = _q(column)
        latest, total = _first(ctx.wh.con.execute(
            f"SELECT max({x}) FILTER (WHERE {x} <= DATE '{ctx.month_end.isoformat()}'), count({x}) "
            f"FROM {_q(table)}"))
        if latest is None:
            continue
        behind = _months_between(_as_date(latest), ctx.month_start)
        if behind <= 0:
            continue
        sev = ("blocker" if behind >= STALE_BLOCKER_MONTHS else "major") if core else "minor"
        latest_text = (_month_text(latest) if ctx.col(table, column).type == "month"
                       else _as_date(latest).isoformat())
        ctx.add("stale_data", table, column, total, total,
                f"latest {latest_text} < as-of {ctx.as_of}", severity=sev,
                latest=latest_text, months=str(behind))


def _check_distribution_shift(ctx: _Context) -> None:
    for table, column in PSI_COLUMNS:
        if not (_typed(ctx, table, column, {"number", "integer"}) and ctx.wh.has(table, "month")
                and _typed(ctx, table, "month", "date")):
            continue
        shifted = [(m, v, n) for m, v, n in _monthly_psi(ctx, table, column)
                   if v >= PSI_SHIFT_FROM]
        if not shifted:
            continue
        text = ", ".join(f"{_month_text(m)} (PSI {v:.2f})" for m, v, _ in shifted)
        ctx.add("distribution_shift", table, column, sum(n for _, _, n in shifted),
                ctx.wh.rows(table), text, months=text, psi_limit=f"{PSI_SHIFT_FROM:g}")


def _monthly_psi(ctx: _Context, table: str, column: str) -> list[tuple[dt.date, float, int]]:
    """(month, PSI against the month before, rows of the month) for consecutive month pairs.

    Bins are the deciles of the earlier month, right-closed, missing values a bin of their own
    (the convention of :func:`analysis.stats.psi`). One grouped quantile query gives every
    month's deciles; one scan bins each row by its own month's and by the previous month's.
    """
    x, m = _q(column), "date_trunc('month', month)"
    probs = [i / PSI_BINS for i in range(1, PSI_BINS)]
    deciles = ctx.wh.all(
        f"SELECT {m} AS mm, quantile_cont({x}, {probs}), max({x}) FROM {_q(table)} "
        f"WHERE month <= DATE '{ctx.month_start.isoformat()}' GROUP BY 1 ORDER BY 1")
    # A cut at the month's maximum would leave its top bin empty; like analysis.stats.psi,
    # such cuts are dropped (an infinite cut puts no value above it).
    deciles = [(_as_date(mm), [v if v < top else math.inf for v in e])
               for mm, e, top in deciles if e is not None]
    if len(deciles) < 2:
        return []
    n_edges = PSI_BINS - 1
    # One row per month carrying its own deciles and the previous month's, so a single
    # equi-join bins every row both ways (a second join on the previous month is 30× slower).
    by_month = dict(deciles)
    nulls = ", ".join(["CAST(NULL AS DOUBLE)"] * n_edges)

    def edges(mm: dt.date) -> str:
        return ", ".join(_double(v) for v in by_month[mm]) if mm in by_month else nulls

    values = ", ".join(f"(DATE '{mm.isoformat()}', {edges(mm)}, {edges(_add_months(mm, -1))})"
                       for mm, _ in deciles)
    cols = ", ".join([f"o{i}" for i in range(n_edges)] + [f"p{i}" for i in range(n_edges)])

    def bin_of(prefix: str) -> str:
        # Duplicate deciles (ties) leave an always-empty bin between them: it adds 0 to the PSI.
        return (f"CASE WHEN e.{prefix}0 IS NULL THEN NULL WHEN b.x IS NULL THEN -1 ELSE "
                + " + ".join(f"CAST(b.x > e.{prefix}{i} AS INTEGER)" for i in range(n_edges))
                + " END")

    rows = ctx.wh.all(
        f"WITH e(month, {cols}) AS (VALUES {values}), "
        f"b AS (SELECT {m} AS mm, {x} AS x FROM {_q(table)} "
        f"WHERE month <= DATE '{ctx.month_start.isoformat()}') "
        f"SELECT b.mm, {bin_of('o')} AS own_bin, {bin_of('p')} AS prev_bin, count(*) "
        f"FROM b JOIN e ON e.month = b.mm GROUP BY ALL")
    own: dict[dt.date, dict[int, int]] = {}
    prev: dict[dt.date, dict[int, int]] = {}
    for mm, own_bin, prev_bin, n in rows:
        mm = _as_date(mm)
        own.setdefault(mm, {}).setdefault(own_bin, 0)
        own[mm][own_bin] += n
        if prev_bin is not None:
            prev.setdefault(mm, {}).setdefault(prev_bin, 0)
            prev[mm][prev_bin] += n
    out = []
    for (before, _), (after, _) in pairwise(deciles):
        if _months_between(before, after) != 1 or after not in prev:
            continue
        base, actual = own[before], prev[after]
        bins = list(range(PSI_BINS)) + ([-1] if -1 in base or -1 in actual else [])
        tb, ta = sum(base.values()), sum(actual.values())
        value = psi_from_shares([base.get(k, 0) / tb for k in bins],
                                [actual.get(k, 0) / ta for k in bins])
        out.append((after, float(value), ta))
    return out


def _double(v: float) -> str:
    return "CAST('inf' AS DOUBLE)" if v == math.inf else repr(float(v))


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, pd.Timestamp):
        return value.date()
    return value


def _months_between(a, b) -> int:
    a, b = _as_date(a), _as_date(b)
    return (b.year - a.year) * 12 + b.month - a.month


def _add_months(d: dt.date, n: int) -> dt.date:
    total = d.year * 12 + d.month - 1 + n
    return dt.date(total // 12, total % 12 + 1, 1)


def _month_text(value) -> str:
    return _as_date(value).strftime("%Y-%m")


# ----------------------------------------------------------------------------------------------
# Ingest report and quarantine
# ----------------------------------------------------------------------------------------------

def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _as_plain(obj):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    return obj


def _normalise_ingest(report) -> dict[str, dict]:
    """table → report dict, from {table: {...}}, {'tables': {...} | [...]} or a list of dicts."""
    if report is None:
        return {}
    report = _as_plain(report)
    if isinstance(report, Mapping) and "tables" in report:
        report = report["tables"]
    out: dict[str, dict] = {}
    if isinstance(report, Mapping):
        for name, value in report.items():
            value = _as_plain(value)
            if isinstance(value, Mapping):
                out[str(value.get("table", name))] = dict(value)
    elif isinstance(report, list):
        for value in report:
            value = _as_plain(value)
            if isinstance(value, Mapping) and "table" in value:
                out[str(value["table"])] = dict(value)
    return out


def _reason_counts(entry: Mapping) -> dict[str, int]:
    reasons = entry.get("quarantine_reasons") or {}
    if isinstance(reasons, Mapping):
        return {str(k): _int(v) for k, v in reasons.items()}
    counts: dict[str, int] = {}
    for item in reasons:
        if isinstance(item, Mapping):
            counts[str(item.get("reason"))] = counts.get(str(item.get("reason")), 0) + _int(
                item.get("count", item.get("rows", 1)))
        else:
            counts[str(item)] = counts.get(str(item), 0) + 1
    return counts


def _read_quarantine(ctx: _Context) -> dict[str, tuple[dict[str, int], dict[str, dict]]]:
    """table → (reason → rows, reason → first raw row) from quarantine/<table>.csv."""
    out: dict[str, tuple[dict[str, int], dict[str, dict]]] = {}
    if ctx.quarantine_dir is None or not Path(ctx.quarantine_dir).is_dir():
        return out
    for path in sorted(Path(ctx.quarantine_dir).glob("*.csv")):
        table = path.stem
        if table not in ctx.schema.tables:
            continue
        try:
            frame = ctx.wh.con.execute(
                "SELECT * FROM read_csv(?, header = true, all_varchar = true)", [str(path)]).df()
        except (duckdb.Error, OSError):
            continue
        if "reason" not in frame.columns or frame.empty:
            continue
        counts = frame["reason"].value_counts().to_dict()
        firsts = {str(r): frame.loc[frame["reason"] == r].iloc[0].to_dict() for r in counts}
        out[table] = ({str(k): int(v) for k, v in counts.items()}, firsts)
    return out


def _conversion_items(entry: Mapping) -> list[tuple[str | None, str, int | None]]:
    """(column, description, rows) of each conversion the ingest reported, whatever its shape."""
    conv = entry.get("conversions") or []
    items: list[tuple[str | None, str, int | None]] = []
    if isinstance(conv, Mapping):
        for key, value in conv.items():
            if isinstance(value, Mapping):
                items.append((str(value.get("column", key)), str(value),
                              _int(value.get("rows")) or None))
            else:
                items.append((str(key), str(value), None))
    else:
        for value in conv:
            if isinstance(value, Mapping):
                items.append((value.get("column"), str(value), _int(value.get("rows")) or None))
            else:
                text = str(value)
                m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*[:：]", text)
                rows = re.search(r"(\d[\d,]*)\s*rows?", text)
                items.append((m.group(1) if m else None, text,
                              int(rows.group(1).replace(",", "")) if rows else None))
    return items


_DATE_TEXT = re.compile(
    r"YYYYMMDD|%Y%m%d|YYYY/MM/DD|%Y/%m/%d|YYYY\.MM\.DD|%Y\.%m\.%d|YYYY年MM月DD日|%Y年%m月%d日"
    r"|(?<!YY)YYMMDD|%y%m%d|YYYYMM(?!DD)|%Y%m(?!%d)|YYYY年MM月(?!DD)|%Y年%m月(?!%d)|excel[ _]serial", re.IGNORECASE)
_UTF8_NAMES = {"utf-8", "utf8", "utf-8-sig", "utf_8", "utf_8_sig", "ascii", "us-ascii", "utf8-sig"}


def _conversion_findings(ctx: _Context, table: str, entry: Mapping, rows_in: int) -> None:
    """Format notes of what the ingest repaired (minor): text dates, placeholders, full width.

    Notes on the same column and check are merged (rows added, formats listed).
    """
    merged: dict[tuple[str, str], list] = {}  # (check, column) → [rows, formats]
    for column, text, rows in _conversion_items(entry):
        if text.startswith("source:"):
            # a quirk of the bank's own extract that a mapping file decoded (assess_files)
            detail = text.removeprefix("source:").strip()
            ctx.add("source_quirk", table, None, rows if rows is not None else rows_in, rows_in,
                    detail[:120], severity="minor", detail=detail)
            continue
        c = ctx.col(table, column) if column else None
        if c is None:
            continue
        found = _DATE_TEXT.search(text)
        if found and c.type in ("date", "month"):
            check, what = "date_text_format", found.group(0)
        elif "placeholder" in text.lower():
            check, what = "placeholder_value", "-/NULL"
        elif "full-width" in text.lower() or "fullwidth" in text.lower():
            check, what = "fullwidth_characters", "全角/full-width"
        else:
            continue
        slot = merged.setdefault((check, column), [0, []])
        slot[0] += rows if rows is not None else rows_in
        if what not in slot[1]:
            slot[1].append(what)
    for (check, column), (rows, whats) in merged.items():
        ctx.add(check, table, column, min(rows, rows_in) if rows_in else rows, rows_in,
                f"{column}: {', '.join(whats)}", severity="minor", fmt=", ".join(whats))


def _check_ingest(ctx: _Context) -> tuple[dict[str, int], dict[str, str]]:
    """Findings from the ingest report and quarantine files; returns duplicate counts/examples."""
    quarantine = _read_quarantine(ctx)
    duplicates: dict[str, int] = {}
    dup_examples: dict[str, str] = {}
    for table in ctx.schema.tables:
        entry = ctx.ingest.get(table, {})
        counts = _reason_counts(entry) if entry else {}
        q_counts, q_first = quarantine.get(table, ({}, {}))
        if not counts:
            counts = q_counts
        rows_in = _int(entry.get("rows_in")) or (
            (ctx.wh.rows(table) if ctx.wh.has(table) else 0) + sum(counts.values()))
        for reason, n in counts.items():
            if n <= 0:
                continue
            first = q_first.get(reason)
            kind, _, column = reason.partition(":")
            column = column or None
            if kind == "duplicate_key":
                duplicates[table] = duplicates.get(table, 0) + n
                if first:
                    key = ctx.schema.tables[table].primary_key
                    dup_examples[table] = "; ".join(
                        f"{k}={ctx.show(table, k, first.get(k))}" for k in key)
                continue
            example = ""
            if first:
                key = ctx.schema.tables[table].primary_key
                shown = [k for k in key if k in first] + (
                    [column] if column and column in first and column not in key else [])
                example = "; ".join(f"{k}={ctx.show(table, k, first.get(k)) or '∅'}"
                                    for k in shown)
            if kind == "missing_required" and column:
                ctx.add("missing_required", table, column, n, rows_in, example)
            elif kind == "type_error" and column:
                c = ctx.col(table, column)
                zh, en = TYPE_LABELS.get(c.type if c else "string", ("", ""))
                ctx.add("type_error", table, column, n, rows_in, example, type_zh=zh, type_en=en)
            else:
                ctx.add("quarantined_rows", table, column, n, rows_in, example, reason=reason)
        if not entry:
            continue
        for column in entry.get("missing_optional_columns") or []:
            c = ctx.col(table, column)
            if c is not None and (table, column) not in ctx.not_delivered:
                ctx.not_delivered.add((table, column))
                ctx.add("missing_column", table, column, rows_in, rows_in,
                        severity="major" if c.used_by else "minor")
        encoding = str(entry.get("encoding") or "").strip()
        if encoding and encoding.lower().replace("_", "-") not in _UTF8_NAMES:
            ctx.add("encoding_non_utf8", table, None, rows_in, rows_in,
                    f"{Path(str(entry.get('file') or table)).name}: {encoding}",
                    file=Path(str(entry.get("file") or table)).name, encoding=encoding)
        _conversion_findings(ctx, table, entry, rows_in)
    return duplicates, dup_examples


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------

_SEVERITY_ORDER = {s: i for i, s in enumerate(SEVERITIES)}
_DIMENSION_ORDER = {d: i for i, d in enumerate(DIMENSIONS)}


def _check_as_of(as_of: str) -> str:
    if not isinstance(as_of, str) or not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", as_of):
        raise InputError(f"as_of must be a month written YYYY-MM, got {as_of!r}", column="as_of",
                         fix="set as_of to the last month of the extract, e.g. 2022-12")
    return as_of


def _sorted_findings(rows: list[dict], schema: Schema) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=FINDING_COLUMNS)
    if frame.empty:
        return frame.astype({"rows_affected": "int64", "rows_total": "int64", "share": "float64"})
    table_order = {t: i for i, t in enumerate(schema.tables)}
    order = frame.assign(
        _s=frame["severity"].map(_SEVERITY_ORDER), _d=frame["dimension"].map(_DIMENSION_ORDER),
        _t=frame["table"].map(table_order).fillna(len(table_order)),
    ).sort_values(["_s", "_d", "_t", "column", "check"], na_position="first", kind="stable")
    return order.drop(columns=["_s", "_d", "_t"]).reset_index(drop=True).astype(
        {"rows_affected": "int64", "rows_total": "int64", "share": "float64"})


def run_checks(con: duckdb.DuckDBPyConnection, schema: Schema | None = None, *, as_of: str,
               ingest_report: Mapping | None = None, quarantine_dir: Path | str | None = None,
               lpr_1y: float = 0.0365,
               severity_overrides: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Run every data-quality check on the warehouse; one row per finding (see module docstring).

    ``ingest_report``: the ingest's per-table report ({table: {file, encoding, rows_in, …}} or
    {'tables': …}); ``quarantine_dir``: the folder of quarantine/<table>.csv; ``lpr_1y``: the
    1-year loan prime rate at the as-of month; ``severity_overrides``: check id → severity.
    The frame's ``attrs`` carry ``as_of`` and ``tables_assessed``.
    """
    schema = schema or load_schema()
    _check_as_of(as_of)
    for check, sev in (severity_overrides or {}).items():
        if check not in CHECKS or sev not in SEVERITIES:
            raise InputError(f"unknown severity override {check!r}: {sev!r}",
                             column="severity_overrides",
                             fix=f"use a check id of analysis.assessment.CHECKS and one of "
                                 f"{', '.join(SEVERITIES)}")
    ctx = _Context(_Warehouse(con), schema, as_of, float(lpr_1y), dict(severity_overrides or {}),
                   _normalise_ingest(ingest_report),
                   Path(quarantine_dir) if quarantine_dir is not None else None)
    _check_tables_and_columns(ctx)
    duplicates, dup_examples = _check_ingest(ctx)
    _check_duplicate_keys(ctx, duplicates, dup_examples)
    _check_column_values(ctx)
    _check_same_uscc(ctx)
    _check_negative_balances(ctx)
    _check_date_order(ctx)
    _check_future_dates(ctx)
    _check_loan_rates(ctx)
    _check_references(ctx)
    _check_units(ctx)
    _check_month_coverage(ctx)
    _check_freshness(ctx)
    _check_distribution_shift(ctx)
    findings = _sorted_findings(ctx.findings, schema)
    findings.attrs["as_of"] = as_of
    findings.attrs["tables_assessed"] = [t.name for t in ctx.present_tables()]
    return findings


def readiness_matrix(findings: pd.DataFrame, schema: Schema | None,
                     con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per later stage: fields it needs, how many are fit, a 0–100 score and go / no-go.

    A needed field is a schema column whose ``used_by`` names the stage. It is fit when its
    table and column were delivered, at least ``FIT_MIN_NON_NULL`` of its rows are non-NULL
    (unless empty by design, ``NULLS_EXPECTED``) and no blocker finding sits on it (or on its
    table as a whole). The stage is no-go when a blocker sits on a needed field or a required
    table holding needed fields is missing; the score is the fit share of needed fields, ×100
    and rounded. Returns one row per stage (``READINESS_COLUMNS``).
    """
    schema = schema or load_schema()
    wh = _Warehouse(con)
    blockers: dict[tuple[str, str | None], list[str]] = {}
    if not findings.empty:
        for row in findings.loc[findings["severity"] == "blocker"].itertuples(index=False):
            column = row.column if isinstance(row.column, str) else None
            for part in (column.split("+") if column else [None]):
                blockers.setdefault((row.table, part), []).append(row.check)
    # columns the bank did not deliver (the ingest created them empty)
    undelivered = set() if findings.empty else {
        (r.table, r.column) for r in findings.loc[findings["check"] == "missing_column"]
        .itertuples(index=False)}

    non_null: dict[tuple[str, str], float] = {}
    for table in schema.tables.values():
        cols = [c for c in table.columns if c.used_by and wh.has(table.name, c.name)]
        if not cols:
            continue
        # NULLs only: count(x) comes from statistics, and blank text is already a finding.
        parts = [f"count({_q(c.name)})" for c in cols]
        row = _first(con.execute(f"SELECT count(*), {', '.join(parts)} FROM {_q(table.name)}"))
        for c, n in zip(cols, row[1:], strict=True):
            non_null[(table.name, c.name)] = n / row[0] if row[0] else 0.0

    records = []
    for stage in STAGES:
        needed = [(t, c) for t in schema.tables.values() for c in t.columns if stage in c.used_by]
        unfit, blocking, missing_required = [], [], []
        for t, c in needed:
            name = f"{t.name}.{c.name}"
            checks = blockers.get((t.name, c.name), []) + blockers.get((t.name, None), [])
            if not wh.has(t.name):
                unfit.append(name)
                if t.required and t.name not in missing_required:
                    missing_required.append(t.name)
            elif not wh.has(t.name, c.name) or (t.name, c.name) in undelivered or (
                    (t.name, c.name) not in NULLS_EXPECTED
                    and non_null.get((t.name, c.name), 0.0) < FIT_MIN_NON_NULL):
                unfit.append(name)
            if checks and wh.has(t.name):
                if name not in unfit:
                    unfit.append(name)
                blocking.append((t, c, sorted(set(checks))))
        fit = len(needed) - len(unfit)
        score = round(100 * fit / len(needed)) if needed else 100
        decision = "no-go" if blocking or missing_required else "go"
        reason_zh, reason_en = _readiness_reason(schema, blocking, missing_required, unfit,
                                                 len(needed))
        records.append({
            "stage": stage, "label_zh": STAGE_LABELS[stage]["zh"],
            "label_en": STAGE_LABELS[stage]["en"], "fields_needed": len(needed),
            "fields_fit": fit, "score": score, "decision": decision, "go": decision == "go",
            "reason_zh": reason_zh,
            "reason_en": reason_en, "unfit_fields": ", ".join(unfit),
        })
    return pd.DataFrame(records, columns=READINESS_COLUMNS)


def _readiness_reason(schema: Schema, blocking, missing_required, unfit, n_needed,
                      limit: int = 4) -> tuple[str, str]:
    def more(items, lang):
        extra = len(items) - limit
        if extra <= 0:
            return ""
        return f" 等 {len(items)} 项" if lang == "zh" else f" and {extra} more"

    if blocking or missing_required:
        zh, en = [], []
        if missing_required:
            zh.append("缺少必需表：" + "、".join(
                f"{schema.tables[t].label_zh}（{t}）" for t in missing_required[:limit])
                + more(missing_required, "zh"))
            en.append("required tables missing: " + ", ".join(missing_required[:limit])
                      + more(missing_required, "en"))
        if blocking:
            zh.append("阻断问题：" + "；".join(
                f"{t.label_zh}.{c.label_zh}（{t.name}.{c.name}）"
                + "、".join(CHECKS[k].label_zh for k in checks)
                for t, c, checks in blocking[:limit])
                + more(blocking, "zh"))
            en.append("blocking findings: " + "; ".join(
                f"{t.name}.{c.name} ({', '.join(CHECKS[k].label_en.lower() for k in checks)})"
                for t, c, checks in blocking[:limit]) + more(blocking, "en"))
        return "；".join(zh) + "。", "; ".join(en).capitalize() + "."
    if not unfit:
        return (f"所需 {n_needed} 个字段全部可用。", f"All {n_needed} needed fields are fit.")
    return (f"可推进；{len(unfit)} 个字段待补充或缺失较多：{'、'.join(unfit[:limit])}"
            f"{more(unfit, 'zh')}。",
            f"Can proceed; {len(unfit)} fields missing or mostly empty: {', '.join(unfit[:limit])}"
            f"{more(unfit, 'en')}.")


def column_profiles(con: duckdb.DuckDBPyConnection, schema: Schema | None = None,
                    max_top: int = 5) -> pd.DataFrame:
    """One row per schema column in the warehouse: type, non-null share, distinct count,
    min / median / max (numbers and dates, as text) and top values with shares (categories,
    flags and low-cardinality text; masked for personal data). Computed in SQL, one column at
    a time so a 10⁸-row table never holds more than one column's values."""
    schema = schema or load_schema()
    wh = _Warehouse(con)
    records = []
    for table in schema.tables.values():
        if not wh.has(table.name):
            continue
        n = wh.rows(table.name)
        for col in table.columns:
            if not wh.has(table.name, col.name):
                continue
            x, t = _q(col.name), _q(table.name)
            family = wh.family(table.name, col.name)
            present = f"NOT {_empty_sql(x)}" if family == "text" else f"{x} IS NOT NULL"
            stats = {"min": None, "median": None, "max": None}
            if family in ("number", "integer"):
                non_null, distinct, lo, med, hi = _first(con.execute(
                    f"SELECT count_if({present}), approx_count_distinct({x}), min({x}), "
                    f"quantile_cont({x}, 0.5), max({x}) FROM {t}"))
                stats = {"min": lo, "median": med, "max": hi}
            elif family == "date":
                non_null, distinct, lo, med, hi = _first(con.execute(
                    f"SELECT count_if({present}), approx_count_distinct({x}), min({x}), "
                    f"quantile_disc({x}, 0.5), max({x}) FROM {t}"))
                stats = {"min": lo, "median": med, "max": hi}
            else:
                non_null, distinct = _first(con.execute(
                    f"SELECT count_if({present}), approx_count_distinct({x}) FROM {t}"))
            top = ""
            if max_top > 0 and non_null and (col.type in ("category", "boolean") or (
                    family == "text" and distinct <= 50 and not col.key)):
                rows = con.execute(
                    f"SELECT {x}, count(*) AS k FROM {t} WHERE {present} GROUP BY 1 "
                    f"ORDER BY k DESC, 1 LIMIT {int(max_top)}").fetchall()
                top = "; ".join(f"{_mask_example(v, col.mask)} {fmt_pct(k / non_null)}"
                                for v, k in rows)
            records.append({
                "table": table.name, "column": col.name, "type": col.type, "rows": n,
                "non_null_share": non_null / n if n else 0.0, "distinct": int(distinct or 0),
                **{k: _profile_text(v, col) for k, v in stats.items()}, "top_values": top,
            })
    return pd.DataFrame(records, columns=PROFILE_COLUMNS)


def _profile_text(value, col: Column) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        d = _as_date(value)
        return d.strftime("%Y-%m") if col.type == "month" else d.isoformat()
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


def _json_value(value):
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if value is pd.NA:
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{k: _json_value(v) for k, v in row.items()} for row in frame.to_dict("records")]


def assessment_summary(findings: pd.DataFrame, readiness: pd.DataFrame, *,
                       top: int = 10) -> dict:
    """JSON-able key figures for results/01_data_assessment.json.

    Keys: ``as_of``, ``verdict`` ('go' when every stage is go), ``counts_by_severity``,
    ``counts_by_dimension``, ``findings_total``, ``tables_assessed``, ``readiness`` (records)
    and ``top_findings`` (the first ``top`` findings, blockers first).
    """
    by_severity = findings["severity"].value_counts() if not findings.empty else pd.Series()
    by_dimension = findings["dimension"].value_counts() if not findings.empty else pd.Series()
    tables = findings.attrs.get("tables_assessed")
    if tables is None:
        tables = sorted(findings["table"].dropna().unique().tolist()) if not findings.empty else []
    verdict = "go" if (not readiness.empty and (readiness["decision"] == "go").all()) else "no-go"
    keep = ["table", "column", "check", "dimension", "severity", "rows_affected", "rows_total",
            "share", "example", "fix_zh", "fix_en"]
    return {
        "as_of": findings.attrs.get("as_of"),
        "verdict": verdict,
        "counts_by_severity": {s: int(by_severity.get(s, 0)) for s in SEVERITIES},
        "counts_by_dimension": {d: int(by_dimension.get(d, 0)) for d in DIMENSIONS},
        "findings_total": len(findings),
        "tables_assessed": list(tables),
        "readiness": _records(readiness),
        "top_findings": _records(findings[keep].head(top)) if not findings.empty else [],
    }


# ----------------------------------------------------------------------------------------------
# Blockers explained for an executive
# ----------------------------------------------------------------------------------------------

BRIEF_TEXT = {
    "unit_suspicion": (
        "**{where_zh}疑似单位错误（万元被当作元）。** 该字段中位数仅为 {median}，约为同一批客户"
        "{peer_zh}的 {factor}——这正是以万元填报、却按元读入的典型特征。若不纠正，所有基于该金额的标签、"
        "价格和商机都会相差一万倍，因此 **{stages_zh}暂缓**。"
        "**一行修复：**请行内科技确认该字段单位；若确为万元，在 engagement.yaml 中设置 "
        "`{units_yaml}`，然后重新运行 `playbook ingest` 与 `playbook run`。",
        "**{where_en} looks like 10,000-yuan units read as yuan.** Its median is only {median}, "
        "about {factor} of the same customers' {peer_en}: the typical sign of figures in units of "
        "10,000 yuan loaded as yuan. Left as is, every tag, price and event built on this amount "
        "would be off by a factor of 10,000, so **{stages_en} {are} on hold**. "
        "**One-line fix:** confirm the unit with the bank's IT and, if it is 10,000 yuan, set "
        "`{units_yaml_en}` in engagement.yaml, then run `playbook ingest` and `playbook run` again."),
    "_default": (
        "**{where_zh}：{check_zh}**（影响 {n} 行）。受影响阶段：{stages_zh}。整改：{fix_zh}",
        "**{where_en}: {check_en}** ({n} rows affected). Stages on hold: {stages_en}. "
        "Fix: {fix_en}"),
}


def blocker_briefs(findings: pd.DataFrame, readiness: pd.DataFrame,
                   schema: Schema | None = None, language: str = "zh") -> list[str]:
    """One plain-language paragraph per blocker finding: what it is, which no-go stages it
    holds up (stages needing the column, or any column of the table) and the fix. Markdown."""
    schema = schema or load_schema()
    if findings.empty:
        return []
    nogo = set(readiness.loc[readiness["decision"] == "no-go", "stage"]) if not readiness.empty \
        else set()
    lang = 0 if language == "zh" else 1
    out = []
    for row in findings.loc[findings["severity"] == "blocker"].to_dict("records"):
        table = schema.tables.get(row["table"])
        column = row["column"] if isinstance(row["column"], str) else None
        cols = [c for c in (table.columns if table else [])
                if column is None or c.name in column.split("+")]
        stages = [st for st in STAGES if st in nogo and any(st in c.used_by for c in cols)]
        names_zh = "、".join(STAGE_LABELS[st]["zh"] for st in stages) or "无"
        names_en = ", ".join(STAGE_LABELS[st]["en"].lower() for st in stages) or "none"
        t_zh, t_en = (table.label_zh, table.label_en) if table else (row["table"], row["table"])
        if column and table is not None and len(cols) == 1:
            where_zh, where_en = f"{t_zh}的{cols[0].label_zh}（{row['table']}.{column}）", \
                f"{cols[0].label_en} ({row['table']}.{column})"
        else:
            where_zh, where_en = f"{t_zh}（{row['table']}）", f"{t_en} ({row['table']})"
        info = CHECKS.get(row["check"])
        fields = _Fields(where_zh=where_zh, where_en=where_en, stages_zh=names_zh,
                         stages_en=names_en, are="is" if len(stages) == 1 else "are",
                         n=f"{int(row['rows_affected']):,}", fix_zh=row["fix_zh"],
                         fix_en=row["fix_en"], check_zh=info.label_zh if info else row["check"],
                         check_en=info.label_en if info else row["check"])
        if row["check"] == "unit_suspicion":
            m = re.search(r"median (\S+) vs (\S+)\.(\S+) (\S+)", row["example"] or "")
            small = "1/" in (row["fix_en"] or "")
            unit = "万元" if small else "元"
            peer = schema.tables.get(m.group(2)) if m else None
            peer_col = next((c for c in peer.columns if c.name == m.group(3)), None) if peer else None
            fields.update(
                median=m.group(1) if m else "", factor=(re.search(r"about (\S+)", row["fix_en"])
                                                         or [None, ""])[1],
                peer_zh=(f"{peer_col.label_zh}（{m.group(2)}.{m.group(3)}，中位数 {m.group(4)}）"
                         if peer_col else ""),
                peer_en=(f"{peer_col.label_en.lower()} ({m.group(2)}.{m.group(3)}, median "
                         f"{m.group(4)})" if peer_col else "peers"),
                units_yaml=f"ingest: {{units: {{{row['table']}.{column}: {unit}}}}}",
                units_yaml_en=f"ingest: {{units: {{{row['table']}.{column}: "
                              f"{'10k_yuan' if small else 'yuan'}}}}}")
            text = BRIEF_TEXT["unit_suspicion"][lang]
            if not small:  # yuan labelled 万元: the same brief, the other direction
                text = BRIEF_TEXT["_default"][lang]
        else:
            text = BRIEF_TEXT["_default"][lang]
        out.append(text.format_map(fields))
    return out


# ----------------------------------------------------------------------------------------------
# findings.xlsx: the data request to the bank's IT
# ----------------------------------------------------------------------------------------------

XLSX_HEADERS = {
    "no": ("序号", "No."),
    "severity": ("严重程度", "Severity"),
    "dimension": ("质量维度", "Dimension"),
    "table": ("数据表", "Table"),
    "column": ("字段", "Column"),
    "check_label": ("问题类型", "Issue"),
    "rows_affected": ("影响行数", "Rows affected"),
    "rows_total": ("检查行数", "Rows checked"),
    "share": ("占比", "Share"),
    "example": ("示例（已脱敏）", "Example (masked)"),
    "fix": ("整改要求", "Request to IT"),
    "check": ("检查编号", "Check ID"),
}
_XLSX_WIDTHS = {"no": 6, "severity": 10, "dimension": 10, "table": 22, "column": 26,
                "check_label": 22, "rows_affected": 11, "rows_total": 11, "share": 8,
                "example": 36, "fix": 80, "check": 24}
_SEVERITY_FILL = {"blocker": "#F4CCCC", "major": "#FCE5CD", "minor": "#EEF0F2"}

_COVER_TEXT = {
    "zh": {
        "sheet": "说明", "findings_sheet": "问题清单",
        "title": "数据质量问题清单",
        "as_of": "数据截止月", "bank": "银行",
        "what_h": "这是什么",
        "what": "对本行按数据模板提供的数据逐表逐字段检查后发现的问题。每一行是一个问题：在哪张表、"
                "哪个字段、影响多少行、一个示例，以及需要科技部门如何整改。",
        "how_h": "如何使用",
        "how": ["请将本文件作为数据需求单发送给行内科技/数据部门。",
                "按“严重程度”从阻断到一般依次处理；阻断问题不解决，相关分析阶段无法启动。",
                "整改后请按原数据模板重新提供相关表，我们将复核并更新本清单。",
                "“检查编号”用于双方沟通时准确指代同一问题。"],
        "severity_h": "严重程度说明",
        "severity": {"blocker": "阻断：相关分析阶段无法得到可信结果，须先整改。",
                     "major": "重要：须整改，可先用干净数据推进。",
                     "minor": "一般：格式或非关键字段问题，建议下次提数时一并更正。"},
        "counts_h": "问题数量",
        "privacy": "示例中的个人信息（姓名、证件号、统一社会信用代码、手机号、账号、客户名称）"
                   "均已脱敏。",
    },
    "en": {
        "sheet": "About", "findings_sheet": "Findings",
        "title": "Data quality findings",
        "as_of": "As-of month", "bank": "Bank",
        "what_h": "What this is",
        "what": "The problems found when checking every table and column the bank delivered "
                "against the data template. Each row is one problem: the table, the column, how "
                "many rows, one example and what the bank's IT needs to do.",
        "how_h": "How to use it",
        "how": ["Send this file to the bank's IT / data team as the data request.",
                "Work from blockers to minor findings; a stage cannot start while a blocker on "
                "its data is open.",
                "After the fix, deliver the affected tables again in the template format; we "
                "re-check and update this list.",
                "Quote the check ID to refer to a finding unambiguously."],
        "severity_h": "Severity",
        "severity": {"blocker": "Blocker: the affected stage cannot give a trustworthy result "
                                "until this is fixed.",
                     "major": "Major: must be fixed; work can proceed on the clean rows.",
                     "minor": "Minor: format or non-critical fields; fix with the next "
                              "delivery."},
        "counts_h": "Findings",
        "privacy": "Personal data in the examples (names, ID numbers, credit codes, mobiles, "
                   "account numbers, customer names) is masked.",
    },
}


def write_findings_xlsx(findings: pd.DataFrame, path: str | Path, language: str = "zh", *,
                        schema: Schema | None = None, as_of: str | None = None,
                        bank: str | None = None) -> Path:
    """Write findings.xlsx: a cover sheet (what it is, as-of, how to send it to the bank's IT)
    and the findings sheet sorted blocker → minor, with headers in ``language``, an autofilter
    and column widths. Returns the path."""
    if language not in ("zh", "en"):
        raise InputError(f"unknown language {language!r}", column="language", fix="use zh or en")
    import xlsxwriter

    schema = schema or load_schema()
    lang = 0 if language == "zh" else 1
    text = _COVER_TEXT[language]
    as_of = as_of or findings.attrs.get("as_of") or ""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    font = "Microsoft YaHei" if language == "zh" else "Calibri"
    ordered = _sorted_findings(findings.to_dict("records"), schema) if not findings.empty \
        else findings

    wb = xlsxwriter.Workbook(str(path))
    # A fixed creation date: the same findings give the same file (as analysis.xlsx does).
    wb.set_properties({"title": text["title"], "created": dt.datetime(2022, 1, 1)})
    try:
        base = {"font_name": font, "font_size": 10, "valign": "top"}
        f_title = wb.add_format({**base, "bold": True, "font_size": 16, "font_color": "#0B2545"})
        f_head = wb.add_format({**base, "bold": True, "font_size": 11, "font_color": "#0B2545"})
        f_text = wb.add_format({**base, "text_wrap": True})
        f_hdr = wb.add_format({**base, "bold": True, "font_color": "#FFFFFF", "bg_color": "#0B2545",
                               "text_wrap": True, "border": 1})
        f_cell = wb.add_format({**base, "text_wrap": True, "border": 1, "border_color": "#C9CDD2"})
        f_int = wb.add_format({**base, "num_format": "#,##0", "border": 1,
                               "border_color": "#C9CDD2"})
        f_pct = wb.add_format({**base, "num_format": "0.0%", "border": 1,
                               "border_color": "#C9CDD2"})
        f_sev = {s: wb.add_format({**base, "bold": True, "bg_color": c, "border": 1,
                                   "border_color": "#C9CDD2"}) for s, c in _SEVERITY_FILL.items()}

        cover = wb.add_worksheet(text["sheet"])
        cover.set_column(0, 0, 18)
        cover.set_column(1, 1, 90)
        cover.write(0, 0, text["title"], f_title)
        r = 2
        if bank:
            cover.write(r, 0, text["bank"], f_head)
            cover.write(r, 1, bank, f_text)
            r += 1
        cover.write(r, 0, text["as_of"], f_head)
        cover.write(r, 1, as_of, f_text)
        r += 2
        cover.write(r, 0, text["what_h"], f_head)
        cover.write(r, 1, text["what"], f_text)
        r += 2
        cover.write(r, 0, text["how_h"], f_head)
        for i, line in enumerate(text["how"], start=1):
            cover.write(r, 1, f"{i}. {line}", f_text)
            r += 1
        r += 1
        cover.write(r, 0, text["severity_h"], f_head)
        for s in SEVERITIES:
            cover.write(r, 1, text["severity"][s], f_sev[s])
            r += 1
        r += 1
        cover.write(r, 0, text["counts_h"], f_head)
        counts = ordered["severity"].value_counts() if not ordered.empty else {}
        for s in SEVERITIES:
            cover.write(r, 1, f"{SEVERITY_LABELS[s][language]}: {int(counts.get(s, 0))}", f_text)
            r += 1
        r += 1
        cover.write(r, 1, text["privacy"], f_text)

        sheet = wb.add_worksheet(text["findings_sheet"])
        keys = list(XLSX_HEADERS)
        for j, k in enumerate(keys):
            sheet.write(0, j, XLSX_HEADERS[k][lang], f_hdr)
            sheet.set_column(j, j, _XLSX_WIDTHS[k])
        for i, row in enumerate(ordered.to_dict("records"), start=1):
            table = schema.tables.get(row["table"])
            column = row["column"] if isinstance(row["column"], str) else ""
            col_label = ""
            if column and table is not None:
                labels = [(c.label_zh, c.label_en) for name in column.split("+")
                          for c in table.columns if c.name == name]
                col_label = "+".join(lb[lang] for lb in labels)
            table_text = (f"{(table.label_zh, table.label_en)[lang]} ({row['table']})"
                          if table is not None else row["table"])
            column_text = f"{col_label} ({column})" if col_label else column
            info = CHECKS.get(row["check"])
            values = {
                "no": i, "severity": SEVERITY_LABELS[row["severity"]][language],
                "dimension": DIMENSION_LABELS[row["dimension"]][language],
                "table": table_text, "column": column_text,
                "check_label": (info.label_zh, info.label_en)[lang] if info else row["check"],
                "rows_affected": row["rows_affected"], "rows_total": row["rows_total"],
                "share": row["share"], "example": row["example"] or "",
                "fix": row["fix_zh"] if language == "zh" else row["fix_en"], "check": row["check"],
            }
            for j, k in enumerate(keys):
                v = values[k]
                if k == "severity":
                    sheet.write(i, j, v, f_sev[row["severity"]])
                elif k in ("no", "rows_affected", "rows_total"):
                    sheet.write_number(i, j, int(v), f_int)
                elif k == "share":
                    sheet.write_number(i, j, float(v), f_pct)
                else:
                    sheet.write_string(i, j, str(v), f_cell)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(len(ordered), 1), len(keys) - 1)
        sheet.set_row(0, 30)
    finally:
        wb.close()
    return path
