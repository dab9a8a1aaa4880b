"""Stage 01 data assessment: each planted problem is found with its table, column and row count."""

from __future__ import annotations

import datetime as dt
import json
import re

import duckdb
import numpy as np
import openpyxl
import pandas as pd
import pytest

from analysis import assessment as A
from analysis.errors import InputError
from analysis.schema import load_schema

AS_OF = "2022-12"
MONTHS = [dt.date(2022, 10, 1), dt.date(2022, 11, 1), dt.date(2022, 12, 1)]
N_CUSTOMERS = 20

# ----------------------------------------------------------------------------------------------
# Independent check-digit generators (written from the standards, not from the module)
# ----------------------------------------------------------------------------------------------

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def make_uscc(body17: str) -> str:
    weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    total = sum(USCC_CHARS.index(ch) * w for ch, w in zip(body17, weights, strict=True))
    return body17 + USCC_CHARS[(31 - total % 31) % 31]


def make_id(body17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(body17, weights, strict=True))
    return body17 + "10X98765432"[total % 11]


def wrong_last(code: str, alphabet: str = USCC_CHARS) -> str:
    return code[:-1] + (alphabet[0] if code[-1] != alphabet[0] else alphabet[1])


# ----------------------------------------------------------------------------------------------
# A small, clean warehouse (every schema table, every column filled where it should be)
# ----------------------------------------------------------------------------------------------

def cid(i: int) -> str:
    return f"C{i:03d}"


def dep_acct(i: int) -> str:
    return f"62220200{i:04d}0001"


def loan_acct(i: int) -> str:
    return f"62220200{i:04d}0009"


def has_loan(i: int) -> bool:
    return i % 2 == 1


def _rows() -> dict[str, list[tuple]]:
    d = dt.date
    rows: dict[str, list[tuple]] = {t: [] for t in load_schema().tables}
    rows["branches"] = [("B00", "总行", "总行", None, "杭州"),
                        ("B01", "杭州分行", "分行", "B00", "杭州"),
                        ("B11", "西湖支行", "支行", "B01", "杭州"),
                        ("B12", "滨江支行", "支行", "B01", "杭州")]
    rows["grids"] = [("G1", "西湖商圈", "B11", "商圈"), ("G2", "滨江园区", "B12", "园区")]
    rows["relationship_managers"] = [
        ("R1", "张伟", "B11", "G1", d(2015, 3, 1), "在岗", "13812340001"),
        ("R2", "李娜", "B12", "G2", d(2016, 7, 1), "在岗", "13912340002")]
    types = ["个体工商户", "微型企业", "小型企业", "中型企业"]
    for i in range(1, N_CUSTOMERS + 1):
        rows["customers"].append((
            cid(i), f"杭州第{i}号贸易有限公司", types[i % 4], make_uscc(f"91330106MA2{i:06d}"),
            f"王{'甲乙丙丁戊己庚辛壬癸'[i % 10]}明", make_id(f"33010619800101{i:03d}"),
            f"1381234{i:04d}", "CFGI"[i % 4], d(2010, 1, 1) + dt.timedelta(days=30 * i),
            d(2015, 1, 1), 1_000_000.0, 10, 5_000_000.0, "330106", "B11" if i % 2 else "B12",
            "G1" if i % 2 else "G2", "R1" if i % 2 else "R2", "A"))
        rows["accounts"].append((dep_acct(i), cid(i), "P_DEP", "基本存款账户", "CNY", d(2018, 1, 1),
                                 None, "正常"))
        if has_loan(i):
            rows["accounts"].append((loan_acct(i), cid(i), "P_LOAN", "贷款账户", "CNY",
                                     d(2022, 3, 1), None, "正常"))
            rows["loans"].append((f"L{i:03d}", cid(i), loan_acct(i), "P_LOAN", 300_000.0 + i,
                                  d(2022, 3, 1), d(2023, 3, 1), 0.0435, 0.0385, "信用", "正常", 0,
                                  None))
            rows["credit_lines"].append((f"CL{i:03d}", cid(i), "P_LOAN", 500_000.0 + i,
                                         d(2022, 1, 1), d(2023, 12, 31), "有效"))
            rows["marketing_contacts"].append((f"MC{i:03d}", cid(i), "R1", d(2022, 11, 15), "电话",
                                               "E01", "P_LOAN", "有意向"))
            rows["loan_offers"].append((f"O{i:03d}", cid(i), "P_LOAN", d(2022, 6, 1), 0.0385,
                                        0.0435, 300_000.0, True))
            rows["pilot_assignments"].append(("PILOT1", cid(i), "treatment" if i % 4 == 1
                                              else "control", "S1", "R1", "E01", d(2022, 12, 1)))
            rows["pilot_feedback"].append(("PILOT1", cid(i), "R1", True, d(2022, 12, 5), True,
                                           False, False, d(2022, 12, 10), "已联系"))
        for m in MONTHS:
            rows["balances_monthly"].append((dep_acct(i), m, 50_000.0 + 1000 * i,
                                             48_000.0 + 1000 * i, 0.0035, 200_000.0 + i,
                                             190_000.0 + i, 30))
            if has_loan(i):
                rows["balances_monthly"].append((loan_acct(i), m, 300_000.0 + i, 300_000.0 + i,
                                                 0.0435, 1_000.0, 1_000.0, 1))
            for k, day in enumerate((5, 20)):
                rows["transactions"].append((
                    f"T{i:03d}{m.month:02d}{k}", dep_acct(i), m.replace(day=day), 10_000.0 + i,
                    "CD"[k], "网银", "货款", "他行", False, "CNY"))
            rows["tax_monthly"].append((cid(i), m, 5_000.0 + i, "A"))
            rows["invoices_monthly"].append((cid(i), m, 200_000.0 + i, 20))
    rows["products"] = [("P_DEP", "单位活期存款", "Corporate demand deposit", "存款", 0.0035, 0),
                        ("P_LOAN", "小微信用贷", "SME credit loan", "贷款", 0.0435, 12),
                        ("P_SET", "企业网银", "Corporate e-banking", "结算", 0.0, 0)]
    rows["registry_changes"] = [(cid(i), d(2022, 5, 1), "增资", "注册资本增加") for i in (2, 4, 6)]
    return rows


def build_warehouse(con: duckdb.DuckDBPyConnection) -> None:
    """Create every schema table, typed per the schema, and fill it with clean rows."""
    schema = load_schema()
    for name, rows in _rows().items():
        table = schema.tables[name]
        cols = ", ".join(f'"{c.name}" {c.sql_type}' for c in table.columns)
        con.execute(f'CREATE TABLE "{name}" ({cols})')
        if rows:
            marks = ", ".join("?" for _ in table.columns)
            con.executemany(f'INSERT INTO "{name}" VALUES ({marks})', rows)


@pytest.fixture
def con():
    connection = duckdb.connect()
    build_warehouse(connection)
    yield connection
    connection.close()


def found(findings: pd.DataFrame, check: str) -> list[tuple]:
    sub = findings.loc[findings["check"] == check]
    return sorted((r.table, r.column if isinstance(r.column, str) else None, r.rows_affected)
                  for r in sub.itertuples())


def as_set(findings: pd.DataFrame) -> set[tuple]:
    return {(r.check, r.table, r.column if isinstance(r.column, str) else None, r.rows_affected)
            for r in findings.itertuples()}


# ----------------------------------------------------------------------------------------------
# Planted problems: SQL that breaks the clean warehouse, and the finding it must produce
# ----------------------------------------------------------------------------------------------

PLANTS: dict[str, tuple[list[str], set[tuple]]] = {
    "missing_industry": (
        ["UPDATE customers SET industry_code = NULL WHERE customer_id IN ('C003', 'C007')",
         "UPDATE customers SET industry_code = '  ' WHERE customer_id = 'C011'"],
        {("null_values", "customers", "industry_code", 3)}),
    "same_uscc_multiple_ids": (
        ["UPDATE customers SET uscc = (SELECT uscc FROM customers WHERE customer_id = 'C001') "
         "WHERE customer_id IN ('C002', 'C003')",
         "UPDATE customers SET uscc = (SELECT lower(uscc) FROM customers "
         "WHERE customer_id = 'C005') WHERE customer_id = 'C004'"],
        {("same_uscc_multiple_ids", "customers", "uscc", 3)}),
    "invalid_uscc_check_digit": (
        ["UPDATE customers SET uscc = substr(uscc, 1, 17) || CASE WHEN substr(uscc, 18, 1) = '0' "
         "THEN '1' ELSE '0' END WHERE customer_id IN ('C010', 'C012')"],
        {("invalid_uscc_check_digit", "customers", "uscc", 2)}),
    "invalid_uscc_format": (
        ["UPDATE customers SET uscc = '91330106MA2O00001X' WHERE customer_id = 'C013'"],
        {("invalid_uscc_format", "customers", "uscc", 1)}),
    "invalid_id_number": (
        ["UPDATE customers SET legal_rep_id_number = substr(legal_rep_id_number, 1, 17) || "
         "CASE WHEN substr(legal_rep_id_number, 18, 1) = '1' THEN '2' ELSE '1' END "
         "WHERE customer_id = 'C005'"],
        {("invalid_id_number", "customers", "legal_rep_id_number", 1)}),
    "invalid_category_value": (
        ["UPDATE customers SET credit_rating = 'AAA+' WHERE customer_id = 'C006'"],
        {("invalid_category_value", "customers", "credit_rating", 1)}),
    "invalid_format": (
        ["UPDATE customers SET industry_code = 'Z' WHERE customer_id = 'C015'",
         "UPDATE customers SET mobile = '12345' WHERE customer_id = 'C016'"],
        {("invalid_format", "customers", "industry_code", 1),
         ("invalid_format", "customers", "mobile", 1)}),
    "placeholder_value": (
        ["UPDATE customers SET region_code = '-' WHERE customer_id = 'C014'"],
        {("placeholder_value", "customers", "region_code", 1)}),
    "mojibake": (
        ["UPDATE customers SET customer_name = '锟斤拷贸易有限公司' WHERE customer_id = 'C008'",
         "UPDATE customers SET customer_name = 'æœ‰é™å…¬å¸' WHERE customer_id = 'C009'"],
        {("mojibake", "customers", "customer_name", 2)}),
    "fullwidth_characters": (
        ["UPDATE customers SET customer_name = '杭州ＡＢＣ贸易有限公司' "
         "WHERE customer_id = 'C017'"],
        {("fullwidth_characters", "customers", "customer_name", 1)}),
    "negative_balance": (
        [f"UPDATE balances_monthly SET balance_month_end = -500 WHERE account_id = '{dep_acct(2)}'"
         " AND month >= DATE '2022-11-01'",
         # a loan account's negative balance is a sign convention, not a finding
         f"UPDATE balances_monthly SET balance_month_end = -100 WHERE account_id = '{loan_acct(1)}'"
         " AND month = DATE '2022-12-01'"],
        {("negative_balance", "balances_monthly", "balance_month_end", 2)}),
    "start_after_end": (
        [f"UPDATE accounts SET close_date = DATE '2017-06-30' WHERE account_id = '{dep_acct(4)}'"],
        {("start_after_end", "accounts", "close_date", 1)}),
    "future_date": (
        ["UPDATE transactions SET txn_date = DATE '2023-01-05' WHERE txn_id = 'T003120'"],
        {("future_date", "transactions", "txn_date", 1)}),
    "rate_implausible": (
        ["UPDATE loans SET executed_rate = 0 WHERE loan_id = 'L001'",
         "UPDATE loans SET executed_rate = 0.25 WHERE loan_id = 'L003'",
         # bill discounting is priced off the money market: not judged against the LPR
         "INSERT INTO products VALUES ('P_DISC', '票据贴现', 'Bill discounting', '票据', 0.02, 6)",
         "UPDATE loans SET product_id = 'P_DISC', executed_rate = 0.015, guide_rate = 0.02 "
         "WHERE loan_id = 'L005'"],
        {("rate_implausible", "loans", "executed_rate", 2)}),
    "orphan_accounts": (
        [f"UPDATE accounts SET customer_id = 'C998' WHERE account_id IN ('{dep_acct(2)}', "
         f"'{dep_acct(4)}')"],
        {("orphan_foreign_key", "accounts", "customer_id", 2)}),
    "unit_wan_as_yuan": (
        ["UPDATE credit_lines SET limit_amount = limit_amount / 10000"],
        {("unit_suspicion", "credit_lines", "limit_amount", 10)}),
    "missing_months": (
        ["DELETE FROM balances_monthly WHERE month = DATE '2022-11-01'"],
        {("missing_months", "balances_monthly", "month", 1)}),
    "incomplete_month_coverage": (
        [f"DELETE FROM balances_monthly WHERE account_id = '{dep_acct(6)}' "
         "AND month = DATE '2022-11-01'"],
        {("incomplete_month_coverage", "balances_monthly", "month", 1)}),
    "stale_data": (
        ["DELETE FROM balances_monthly WHERE month = DATE '2022-12-01'"],
        {("stale_data", "balances_monthly", "month", 60)}),
    "distribution_shift": (
        ["UPDATE balances_monthly SET balance_month_end = balance_month_end * 50 "
         "WHERE month = DATE '2022-12-01' AND account_id LIKE '%0001'"],
        {("distribution_shift", "balances_monthly", "balance_month_end", 30)}),
    "duplicate_key_in_warehouse": (
        ["INSERT INTO products SELECT * FROM products WHERE product_id = 'P_SET'"],
        {("duplicate_key", "products", "product_id", 1)}),
    "missing_optional_table": (
        ["DROP TABLE loan_offers"], {("missing_table", "loan_offers", None, 0)}),
    "missing_column": (
        ["ALTER TABLE customers DROP COLUMN employees"],
        {("missing_column", "customers", "employees", 20)}),
    "unexpected_type": (
        ["ALTER TABLE customers ALTER COLUMN employees TYPE VARCHAR"],
        {("unexpected_type", "customers", "employees", 20)}),
}


def test_clean_warehouse_has_no_findings(con):
    findings = A.run_checks(con, load_schema(), as_of=AS_OF, ingest_report=None,
                            quarantine_dir=None)
    assert list(findings.columns) == A.FINDING_COLUMNS
    assert findings.empty, findings[["check", "table", "column", "rows_affected"]]
    assert findings.attrs["tables_assessed"] == list(load_schema().tables)


@pytest.mark.parametrize("name", sorted(PLANTS))
def test_each_planted_problem_is_found_exactly(con, name):
    statements, expected = PLANTS[name]
    for sql in statements:
        con.execute(sql)
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=None, quarantine_dir=None)
    assert as_set(findings) == expected
    for check in {e[0] for e in expected}:
        row = findings.loc[findings["check"] == check].iloc[0]
        assert row["dimension"] == A.CHECKS[check].dimension
        assert row["severity"] in A.SEVERITIES
        assert row["fix_zh"] and row["fix_en"]
        assert 0 <= row["share"] <= 1


def test_shares_totals_and_severities(con):
    for sql in PLANTS["invalid_uscc_check_digit"][0] + PLANTS["orphan_accounts"][0] \
            + PLANTS["unit_wan_as_yuan"][0] + PLANTS["missing_optional_table"][0]:
        con.execute(sql)
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=None, quarantine_dir=None)
    by = findings.set_index("check")
    assert by.loc["invalid_uscc_check_digit", "rows_total"] == 20
    assert by.loc["invalid_uscc_check_digit", "share"] == pytest.approx(0.1)
    assert by.loc["invalid_uscc_check_digit", "severity"] == "major"
    assert by.loc["orphan_foreign_key", "rows_total"] == 30  # 20 deposit + 10 loan accounts
    assert by.loc["unit_suspicion", "severity"] == "blocker"
    assert by.loc["missing_table", "severity"] == "minor"
    # blockers first
    assert findings["severity"].tolist()[0] == "blocker"
    assert findings["severity"].map(A.SEVERITIES.index).is_monotonic_increasing
    fix = by.loc["invalid_uscc_check_digit", "fix_zh"]
    assert "GB 32100" in fix and "2 个客户" in fix
    assert "1/" in by.loc["unit_suspicion", "fix_zh"] and "万元" in by.loc["unit_suspicion",
                                                                        "fix_zh"]


def test_monthly_psi_matches_stats_psi():
    """The warehouse PSI equals analysis.stats.psi on the same two months (ties, nulls, shift)."""
    from analysis.stats import psi

    rng = np.random.default_rng(7)
    before = np.round(rng.lognormal(10, 1, 400), -3)  # rounded: heavy ties
    after = np.round(rng.lognormal(10.3, 1.1, 500), -3)
    before[:30] = np.nan
    after[:5] = np.nan
    after[5:40] = before.max() + 1  # values above the baseline maximum
    con = duckdb.connect()
    con.execute("CREATE TABLE balances_monthly (account_id VARCHAR, month DATE, "
                "balance_month_end DOUBLE)")
    months = [dt.date(2022, 11, 1)] * 400 + [dt.date(2022, 12, 1)] * 500
    values = [None if np.isnan(v) else float(v) for v in np.concatenate([before, after])]
    con.executemany("INSERT INTO balances_monthly VALUES (?, ?, ?)",
                    [(f"A{i}", m, v) for i, (m, v) in enumerate(zip(months, values, strict=True))])
    ctx = A._Context(A._Warehouse(con), load_schema(), AS_OF, 0.0365, {}, {}, None)
    [(month, value, rows)] = A._monthly_psi(ctx, "balances_monthly", "balance_month_end")
    assert (month, rows) == (dt.date(2022, 12, 1), 500)
    assert value == pytest.approx(psi(before, after, bins=10), rel=1e-12)


def test_orphans_share_escalates_to_blocker(con):
    con.execute("UPDATE accounts SET customer_id = 'C999' WHERE account_id LIKE '%0001' "
                "AND customer_id IN ('C001','C002','C003','C004','C005','C006','C007')")
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=None, quarantine_dir=None)
    row = findings.loc[findings["check"] == "orphan_foreign_key"].iloc[0]
    assert (row["rows_affected"], row["rows_total"]) == (7, 30)
    assert row["severity"] == "blocker"  # 23% of a column tags/value/events use


def test_severity_override(con):
    for sql in PLANTS["unit_wan_as_yuan"][0]:
        con.execute(sql)
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=None, quarantine_dir=None,
                            severity_overrides={"unit_suspicion": "major"})
    assert findings.loc[0, "severity"] == "major"
    with pytest.raises(InputError):
        A.run_checks(con, as_of=AS_OF, ingest_report=None, quarantine_dir=None,
                     severity_overrides={"no_such_check": "major"})


def test_as_of_must_be_a_month(con):
    with pytest.raises(InputError, match="YYYY-MM"):
        A.run_checks(con, as_of="2022-12-31", ingest_report=None, quarantine_dir=None)


def test_tolerates_missing_required_table(con):
    con.execute("DROP TABLE accounts")
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=None, quarantine_dir=None)
    assert as_set(findings) == {("missing_table", "accounts", None, 0)}
    assert findings.loc[0, "severity"] == "blocker"


def test_empty_warehouse_reports_every_table_missing():
    findings = A.run_checks(duckdb.connect(), as_of=AS_OF, ingest_report=None,
                            quarantine_dir=None)
    schema = load_schema()
    assert set(findings["table"]) == set(schema.tables)
    assert (findings["check"] == "missing_table").all()
    assert (findings["severity"] == "blocker").sum() == sum(t.required for t in
                                                           schema.tables.values())


# ----------------------------------------------------------------------------------------------
# Findings from the ingest report and the quarantine folder
# ----------------------------------------------------------------------------------------------

def write_quarantine(tmp_path, table: str, rows: list[dict]):
    folder = tmp_path / "quarantine"
    folder.mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / f"{table}.csv", index=False)
    return folder


def customer_dupes() -> list[dict]:
    return [{"customer_id": cid(i), "customer_name": f"杭州第{i}号贸易有限公司",
             "uscc": make_uscc(f"91330106MA2{i:06d}"), "source_file": "customers.csv",
             "source_row": 20 + i, "reason": "duplicate_key"} for i in (1, 2, 3)]


INGEST_REPORT = {
    "customers": {"file": "inbox/customers.csv", "encoding": "GB18030", "rows_in": 23,
                  "rows_loaded": 20, "rows_quarantined": 3,
                  "quarantine_reasons": {"duplicate_key": 3}, "conversions": []},
    "accounts": {"file": "inbox/accounts.csv", "encoding": "utf-8", "rows_in": 30,
                 "rows_loaded": 30, "rows_quarantined": 0, "quarantine_reasons": {},
                 "conversions": [{"column": "open_date", "from": "YYYYMMDD text", "to": "date",
                                  "rows": 30}]},
    "loans": {"file": "inbox/loans.xlsx", "encoding": None, "rows_in": 13, "rows_loaded": 10,
              "rows_quarantined": 3,
              "quarantine_reasons": {"missing_required:executed_rate": 2,
                                     "type_error:contract_amount": 1},
              "conversions": ["contract_amount: 万元 → 元 (10 rows)",
                              "disbursement_date: %Y%m%d text → date (7 rows)"]},
}


def test_ingest_report_and_quarantine_findings(con, tmp_path):
    folder = write_quarantine(tmp_path, "customers", customer_dupes())
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=INGEST_REPORT, quarantine_dir=folder)
    assert as_set(findings) == {
        ("duplicate_key", "customers", "customer_id", 3),
        ("encoding_non_utf8", "customers", None, 23),
        ("date_text_format", "accounts", "open_date", 30),
        ("date_text_format", "loans", "disbursement_date", 7),
        ("missing_required", "loans", "executed_rate", 2),
        ("type_error", "loans", "contract_amount", 1),
    }
    dup = findings.loc[findings["check"] == "duplicate_key"].iloc[0]
    assert dup["rows_total"] == 23
    assert dup["example"] == "customer_id=C001"
    enc = findings.loc[findings["check"] == "encoding_non_utf8"].iloc[0]
    assert enc["severity"] == "minor" and "GB18030" in enc["fix_zh"]


def test_ingest_report_wrapped_in_tables_key(con):
    findings = A.run_checks(con, as_of=AS_OF, ingest_report={"tables": INGEST_REPORT},
                            quarantine_dir=None)
    assert ("duplicate_key", "customers", "customer_id", 3) in as_set(findings)


def test_quarantine_folder_alone_counts_duplicates(con, tmp_path):
    folder = write_quarantine(tmp_path, "customers", customer_dupes()[:2])
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=None, quarantine_dir=folder)
    assert as_set(findings) == {("duplicate_key", "customers", "customer_id", 2)}


# ----------------------------------------------------------------------------------------------
# Every planted problem of the synthetic bank at once, compared like truth.json
# ----------------------------------------------------------------------------------------------

TRUTH = [  # the shape of truth.json's data_problems
    {"problem": "duplicate_rows", "table": "customers", "column": "customer_id", "rows": 3},
    {"problem": "same_uscc_multiple_ids", "table": "customers", "column": "uscc", "rows": 3},
    {"problem": "missing_industry", "table": "customers", "column": "industry_code", "rows": 3},
    {"problem": "invalid_uscc_check_digit", "table": "customers", "column": "uscc", "rows": 2},
    {"problem": "encoding_gbk", "table": "customers", "column": None, "rows": 23},
    {"problem": "yyyymmdd_dates", "table": "accounts", "column": "open_date", "rows": 30},
    {"problem": "orphan_accounts", "table": "accounts", "column": "customer_id", "rows": 2},
    {"problem": "future_date", "table": "transactions", "column": "txn_date", "rows": 1},
    {"problem": "negative_balance", "table": "balances_monthly", "column": "balance_month_end",
     "rows": 2},
    {"problem": "unit_wan_as_yuan", "table": "credit_lines", "column": "limit_amount", "rows": 10},
]


def test_all_planted_problems_match_truth(con, tmp_path):
    assert set(A.PLANTED_PROBLEM_CHECKS) == {t["problem"] for t in TRUTH}
    assert set(A.PLANTED_PROBLEM_CHECKS.values()) <= set(A.CHECKS)
    for name in ("missing_industry", "same_uscc_multiple_ids", "invalid_uscc_check_digit",
                 "orphan_accounts", "future_date", "negative_balance", "unit_wan_as_yuan"):
        for sql in PLANTS[name][0]:
            con.execute(sql)
    folder = write_quarantine(tmp_path, "customers", customer_dupes())
    report = {k: v for k, v in INGEST_REPORT.items() if k != "loans"}
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=json.loads(json.dumps(report)),
                            quarantine_dir=folder)
    for truth in TRUTH:
        check = A.PLANTED_PROBLEM_CHECKS[truth["problem"]]
        hit = findings.loc[(findings["check"] == check) & (findings["table"] == truth["table"])]
        if truth["column"] is not None:
            hit = hit.loc[hit["column"] == truth["column"]]
        assert len(hit) == 1, truth
        assert hit["rows_affected"].iloc[0] == truth["rows"], truth


# ----------------------------------------------------------------------------------------------
# Check digits and masking
# ----------------------------------------------------------------------------------------------

def test_public_uscc_example_is_valid():
    code = "91350100M000100Y43"
    assert make_uscc(code[:17]) == code  # the test's own implementation agrees
    assert A.has_valid_uscc_check_char(code)
    assert not A.has_valid_uscc_check_char(wrong_last(code))
    assert not A.has_valid_uscc_check_char("91350100M000100Y4")  # 17 characters
    assert not A.has_valid_uscc_check_char("91350100M0001O0Y43")  # O is not in the code set
    assert A.has_valid_uscc_check_char(" 91350100m000100y43 ")  # case and spaces normalised
    assert not A.has_valid_uscc_check_char(None)


def test_generated_codes_validate_in_python_and_sql():
    rng = np.random.default_rng(20221231)
    usccs = [make_uscc("".join(rng.choice(list(USCC_CHARS), 17))) for _ in range(200)]
    ids = [make_id("".join(rng.choice(list("0123456789"), 17))) for _ in range(200)]
    assert all(A.has_valid_uscc_check_char(c) for c in usccs)
    assert not any(A.has_valid_uscc_check_char(wrong_last(c)) for c in usccs)
    assert all(A.has_valid_id_check(c) for c in ids)
    assert not any(A.has_valid_id_check(wrong_last(c, "0123456789X")) for c in ids)
    assert A.has_valid_id_check("11010519491231002X")  # GB 11643 worked examples (public, not persons)
    assert A.has_valid_id_check("440524188001010014")
    assert A.has_valid_id_check("110105491231002")  # 15-digit legacy number
    assert not A.has_valid_id_check("1101051949123100")
    # the SQL run in the warehouse gives the same verdicts as Python
    con = duckdb.connect()
    codes = usccs[:50] + [wrong_last(c) for c in usccs[:50]]
    verdicts = con.execute(
        f"SELECT {A._uscc_check_ok_sql('c')} FROM unnest(?) t(c)", [codes]).fetchall()
    assert [v[0] for v in verdicts] == [True] * 50 + [False] * 50
    idcodes = ids[:50] + [wrong_last(c, "0123456789X") for c in ids[:50]]
    verdicts = con.execute(f"SELECT {A._id_valid_sql('c')} FROM unnest(?) t(c)",
                           [idcodes]).fetchall()
    assert [v[0] for v in verdicts] == [True] * 50 + [False] * 50


def test_mask_example_uses_the_privacy_rules():
    assert A._mask_example("13812345678", "mobile") == "138****5678"
    assert A._mask_example("11010519491231002X", "id_number") == "110105********002X"
    assert A._mask_example("张伟", "person_name") == "张*"
    assert A._mask_example("91350100M000100Y43", "uscc") == "91350100**********"
    assert A._mask_example("6222020200010001", "account") == "****0001"
    assert A._mask_example("杭州第1号贸易有限公司", "org_name") == "杭州*******公司"
    assert A._mask_example(" C001 ", None) == "C001"
    assert A._mask_example(None, "mobile") == ""
    with pytest.raises(InputError):
        A._mask_example("x", "passport")


def pii_values(con) -> list[str]:
    values = []
    for table, cols in load_schema().pii_columns().items():
        for col in cols:
            values += [r[0] for r in con.execute(
                f'SELECT DISTINCT CAST("{col}" AS VARCHAR) FROM "{table}" '
                f'WHERE "{col}" IS NOT NULL').fetchall()]
    return values


def test_examples_and_fix_texts_carry_no_full_personal_data(con, tmp_path):
    for name in PLANTS:
        if name in ("missing_column", "unexpected_type", "missing_optional_table", "stale_data",
                    "missing_months"):
            continue
        for sql in PLANTS[name][0]:
            con.execute(sql)
    folder = write_quarantine(tmp_path, "customers", customer_dupes())
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=INGEST_REPORT, quarantine_dir=folder)
    assert len(findings) >= 20
    text = "\n".join(findings["example"].tolist() + findings["fix_zh"].tolist()
                     + findings["fix_en"].tolist())
    leaks = [v for v in pii_values(con) + [d["uscc"] for d in customer_dupes()] if v in text]
    assert leaks == []
    uscc = findings.loc[findings["check"] == "invalid_uscc_check_digit", "example"].iloc[0]
    assert re.fullmatch(r"customer_id=C010; uscc=91330106\*{10}", uscc)
    neg = findings.loc[findings["check"] == "negative_balance", "example"].iloc[0]
    assert neg.startswith("account_id=****0001; month=2022-11-01; balance_month_end=-500")


# ----------------------------------------------------------------------------------------------
# Readiness, profiles, summary, xlsx
# ----------------------------------------------------------------------------------------------

def test_readiness_all_go_on_clean_data(con):
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=None, quarantine_dir=None)
    ready = A.readiness_matrix(findings, load_schema(), con)
    assert list(ready.columns) == A.READINESS_COLUMNS
    assert ready["stage"].tolist() == list(A.STAGES)
    assert (ready["decision"] == "go").all()
    assert (ready["score"] == 100).all()
    schema = load_schema()
    needed_tags = sum("tags" in c.used_by for t in schema.tables.values() for c in t.columns)
    assert ready.set_index("stage").loc["tags", "fields_needed"] == needed_tags


def test_readiness_flips_to_no_go_on_a_blocker(con):
    for sql in PLANTS["unit_wan_as_yuan"][0]:
        con.execute(sql)
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=None, quarantine_dir=None)
    ready = A.readiness_matrix(findings, load_schema(), con).set_index("stage")
    # limit_amount is used by tags, events and pricing only
    assert ready["decision"].to_dict() == {"tags": "no-go", "value": "go", "pricing": "no-go",
                                           "events": "no-go", "pilot": "go"}
    assert ready["go"].tolist() == [False, True, False, False, True]
    assert "credit_lines.limit_amount" in ready.loc["pricing", "reason_zh"]
    assert "credit_lines.limit_amount" in ready.loc["pricing", "unfit_fields"]
    n = ready.loc["pricing", "fields_needed"]
    assert ready.loc["pricing", "score"] == round(100 * (n - 1) / n)


def test_unit_blocker_fix_and_executive_brief_name_the_one_line_fix(con):
    for sql in PLANTS["unit_wan_as_yuan"][0]:
        con.execute(sql)
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=None, quarantine_dir=None)
    ready = A.readiness_matrix(findings, load_schema(), con)
    unit = findings.set_index("check").loc["unit_suspicion"]
    line = "ingest: {units: {credit_lines.limit_amount: 万元}}"
    line_en = "ingest: {units: {credit_lines.limit_amount: 10k_yuan}}"  # the ASCII alias of 万元
    assert f"set `{line_en}` in engagement.yaml" in unit["fix_en"]
    assert f"设置 `{line}`" in unit["fix_zh"]
    assert "Stages blocked: customer tags, per-customer pricing, opportunity events." in unit["fix_en"]
    en = A.blocker_briefs(findings, ready, load_schema(), "en")
    zh = A.blocker_briefs(findings, ready, load_schema(), "zh")
    assert len(en) == len(zh) == 1
    assert en[0].startswith("**Credit limit (credit_lines.limit_amount) looks like 10,000-yuan "
                            "units read as yuan.**")
    assert "Its median is only 50, about 1/6,000 of the same customers' loan amount " \
           "(loans.contract_amount, median 300,000)" in en[0]
    assert "**customer tags, per-customer pricing, opportunity events are on hold**" in en[0]
    assert f"**One-line fix:** confirm the unit with the bank's IT and, if it is 10,000 yuan, set " \
           f"`{line_en}` in engagement.yaml" in en[0]
    # the English brief holds no Chinese apart from the value the config file needs
    assert not re.search(r"[\u4e00-\u9fff]", en[0].replace("万元}}", ""))
    assert "客户标签、一户一价定价、商机事件暂缓" in zh[0] and f"`{line}`" in zh[0]


def test_readiness_no_go_when_required_table_missing(con):
    con.execute("DROP TABLE accounts")
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=None, quarantine_dir=None)
    ready = A.readiness_matrix(findings, load_schema(), con).set_index("stage")
    assert ready["decision"].to_dict() == {"tags": "no-go", "value": "no-go", "pricing": "go",
                                           "events": "no-go", "pilot": "go"}
    assert "accounts" in ready.loc["tags", "reason_en"]


def test_readiness_mostly_empty_field_lowers_score_but_stays_go(con):
    con.execute("UPDATE customers SET industry_code = NULL WHERE customer_id <> 'C001'")
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=None, quarantine_dir=None)
    assert found(findings, "null_values") == [("customers", "industry_code", 19)]
    ready = A.readiness_matrix(findings, load_schema(), con).set_index("stage")
    n = ready.loc["value", "fields_needed"]
    assert ready.loc["value", "decision"] == "go"
    assert ready.loc["value", "fields_fit"] == n - 1
    assert ready.loc["value", "score"] == round(100 * (n - 1) / n)
    assert ready.loc["pricing", "score"] == 100  # industry_code is not a pricing field


def test_column_profiles(con):
    profiles = A.column_profiles(con, load_schema())
    assert list(profiles.columns) == A.PROFILE_COLUMNS
    schema = load_schema()
    assert len(profiles) == sum(len(t.columns) for t in schema.tables.values())
    p = profiles.set_index(["table", "column"])
    bal = p.loc[("balances_monthly", "balance_daily_avg")]
    assert bal["rows"] == 90 and bal["non_null_share"] == 1.0
    assert (bal["min"], bal["max"]) == ("49000.0", "300019.0")
    assert p.loc[("balances_monthly", "month"), "min"] == "2022-10"
    assert p.loc[("transactions", "txn_date"), "max"] == "2022-12-20"
    assert p.loc[("accounts", "close_date"), "non_null_share"] == 0.0
    assert p.loc[("accounts", "account_type"), "top_values"] == "基本存款账户 66.7%; 贷款账户 33.3%"
    assert p.loc[("customers", "customer_type"), "distinct"] == 4
    # personal data is masked in top values
    assert p.loc[("relationship_managers", "rm_name"), "top_values"] == "张* 50.0%; 李* 50.0%"


def test_assessment_summary_is_json_and_counts(con, tmp_path):
    for sql in PLANTS["unit_wan_as_yuan"][0] + PLANTS["future_date"][0]:
        con.execute(sql)
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=None, quarantine_dir=None)
    ready = A.readiness_matrix(findings, load_schema(), con)
    summary = A.assessment_summary(findings, ready)
    json.dumps(summary, ensure_ascii=False)
    assert summary["verdict"] == "no-go"
    assert summary["as_of"] == AS_OF
    assert summary["counts_by_severity"] == {"blocker": 1, "major": 1, "minor": 0}
    assert summary["findings_total"] == 2
    assert len(summary["tables_assessed"]) == len(load_schema().tables)
    assert summary["top_findings"][0]["check"] == "unit_suspicion"
    assert [r["stage"] for r in summary["readiness"]] == list(A.STAGES)
    clean = A.assessment_summary(findings.iloc[0:0], A.readiness_matrix(
        findings.iloc[0:0], load_schema(), con))
    assert clean["verdict"] == "go" and clean["top_findings"] == []


@pytest.mark.parametrize("language", ["zh", "en"])
def test_findings_xlsx(con, tmp_path, language):
    for sql in PLANTS["unit_wan_as_yuan"][0] + PLANTS["invalid_uscc_check_digit"][0] \
            + PLANTS["missing_industry"][0]:
        con.execute(sql)
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=None, quarantine_dir=None)
    path = A.write_findings_xlsx(findings.iloc[::-1], tmp_path / "out" / "findings.xlsx",
                                 language=language)
    wb = openpyxl.load_workbook(path)
    cover_name, sheet_name = ("说明", "问题清单") if language == "zh" else ("About", "Findings")
    assert wb.sheetnames == [cover_name, sheet_name]
    cover = "\n".join(str(c.value) for row in wb[cover_name].iter_rows() for c in row if c.value)
    assert AS_OF in cover
    assert ("数据需求单" if language == "zh" else "data request") in cover
    sheet = wb[sheet_name]
    header = [c.value for c in sheet[1]]
    assert header[1] == ("严重程度" if language == "zh" else "Severity")
    assert sheet.auto_filter.ref == f"A1:L{len(findings) + 1}"
    assert sheet.column_dimensions["K"].width > 50
    severities = [sheet.cell(r, 2).value for r in range(2, len(findings) + 2)]
    assert severities == ([("阻断" if language == "zh" else "Blocker")]
                          + [("重要" if language == "zh" else "Major")] * 2)
    checks = [sheet.cell(r, 12).value for r in range(2, len(findings) + 2)]
    assert checks[0] == "unit_suspicion"
    if language == "zh":
        assert sheet.cell(2, 4).value == "授信额度表 (credit_lines)"
        assert "GB 32100" in "".join(str(sheet.cell(r, 11).value) for r in range(2, 5))


# ----------------------------------------------------------------------------------------------
# Through the real ingest: the report and quarantine it writes are read as intended
# ----------------------------------------------------------------------------------------------

def test_findings_from_a_real_ingest(con, tmp_path):
    from analysis.ingest import IngestOptions, ingest_inbox

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for table in load_schema().tables:
        cols = [f'"{c.name}"' for c in load_schema().tables[table].columns]
        if table == "accounts":
            cols = [("strftime(open_date, '%Y%m%d') AS open_date" if c == '"open_date"' else c)
                    for c in cols]
        if table == "loans":  # the credit system delivers 万元
            cols = [("contract_amount / 10000 AS contract_amount" if c == '"contract_amount"'
                     else c) for c in cols]
        source = f'(SELECT {", ".join(cols)} FROM "{table}"'
        if table == "customers":  # three rows extracted twice
            source += (" UNION ALL SELECT * FROM "
                       "(SELECT * FROM customers ORDER BY customer_id LIMIT 3)")
        con.execute(f"COPY {source}) TO '{inbox / (table + '.csv')}' (HEADER, DELIMITER ',')")
    text = (inbox / "customers.csv").read_text(encoding="utf-8")
    (inbox / "customers.csv").write_bytes(text.encode("gb18030"))

    report = ingest_inbox(inbox, tmp_path / "warehouse.duckdb", tmp_path / "quarantine",
                          options=IngestOptions(on_bad_rows="quarantine"))
    wh = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    findings = A.run_checks(wh, as_of=AS_OF, ingest_report=report.to_dict(),
                            quarantine_dir=tmp_path / "quarantine")
    assert as_set(findings) == {
        ("duplicate_key", "customers", "customer_id", 3),
        ("encoding_non_utf8", "customers", None, 23),
        ("date_text_format", "accounts", "open_date", 30),
    }
    dup = findings.loc[findings["check"] == "duplicate_key"].iloc[0]
    assert dup["example"] == "customer_id=C001" and dup["rows_total"] == 23


def test_undelivered_optional_column_from_the_ingest_report(con):
    # the ingest creates a column the file lacked, empty; the report names it
    con.execute("UPDATE loans SET guarantee_type = NULL")
    report = {"loans": {"file": "loans.csv", "encoding": "utf-8", "rows_in": 10,
                        "rows_loaded": 10, "rows_quarantined": 0, "quarantine_reasons": {},
                        "conversions": [], "missing_optional_columns": ["guarantee_type"]}}
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=report, quarantine_dir=None)
    assert as_set(findings) == {("missing_column", "loans", "guarantee_type", 10)}
    assert findings.loc[0, "severity"] == "major"  # pricing uses it
    ready = A.readiness_matrix(findings, load_schema(), con).set_index("stage")
    assert "loans.guarantee_type" in ready.loc["pricing", "unfit_fields"]
    assert ready.loc["pricing", "decision"] == "go"


def test_ingest_conversion_notes_become_minor_format_findings(con):
    report = {"accounts": {"file": "accounts.csv", "encoding": "utf-8", "rows_in": 30,
                           "quarantine_reasons": {}, "conversions": [
                               "open_date: YYYYMMDD text parsed (20 rows)",
                               "open_date: YYYY/MM/DD text parsed (5 rows)",
                               "close_date: placeholder values ('-', 'NULL', …) read as empty "
                               "(12 rows)",
                               "account_type: full-width letters converted to half-width (1 row)",
                               "status: 万元 × 10,000 → 元 (unit declared in schema)"]}}
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=report, quarantine_dir=None)
    assert as_set(findings) == {("date_text_format", "accounts", "open_date", 25),
                                ("placeholder_value", "accounts", "close_date", 12),
                                ("fullwidth_characters", "accounts", "account_type", 1)}
    assert set(findings["severity"]) == {"minor"}
    fmt = findings.loc[findings["check"] == "date_text_format", "fix_zh"].iloc[0]
    assert "YYYYMMDD, YYYY/MM/DD" in fmt


# ----------------------------------------------------------------------------------------------
# The synthetic bank: every planted data problem of truth.json is found with its row count
# ----------------------------------------------------------------------------------------------

def test_synthetic_bank_planted_problems_match_truth(tmp_path):
    from analysis.ingest import IngestOptions, ingest_inbox
    from analysis.synth.bank import generate_bank

    generate_bank(tmp_path / "inbox", customers=1000, seed=20221231, txn_per_active_month=2)
    report = ingest_inbox(tmp_path / "inbox", tmp_path / "warehouse.duckdb",
                          tmp_path / "quarantine", options=IngestOptions(on_bad_rows="quarantine"))
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    findings = A.run_checks(con, as_of=AS_OF, ingest_report=report.to_dict(),
                            quarantine_dir=tmp_path / "quarantine")
    truth = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))["data_problems"]
    assert {p["problem"] for p in truth} == set(A.PLANTED_PROBLEM_CHECKS)
    for problem in truth:
        check = A.PLANTED_PROBLEM_CHECKS[problem["problem"]]
        hit = findings.loc[(findings["check"] == check) & (findings["table"] == problem["table"])]
        if problem["column"] is not None:
            hit = hit.loc[hit["column"] == problem["column"]]
        assert hit["rows_affected"].tolist() == [problem["rows"]], problem
    # nothing else of weight: the only blocker is the planted unit problem
    assert findings.loc[findings["severity"] == "blocker", "check"].tolist() == ["unit_suspicion"]
