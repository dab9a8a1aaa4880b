"""Ingest: inbox files → typed warehouse tables + quarantine, with exact row accounting."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from analysis.errors import InputError
from analysis.ingest import IngestOptions, ingest_inbox
from analysis.schema import load_schema

SCHEMA = load_schema()

# Two valid rows per required table, in template column names; tests change what they test.
# Every name, mobile and ID number below is made up (IDs end in 1234 / 5678); they live only in
# test inputs, and the outputs under test are checked to carry them masked.
BASE_ROWS: dict[str, list[dict[str, str]]] = {
    "branches": [
        {"branch_id": "B001", "branch_name": "总行营业部", "level": "总行", "parent_branch_id": "", "city": "杭州"},
        {"branch_id": "B002", "branch_name": "城西支行", "level": "支行", "parent_branch_id": "B001", "city": "杭州"},
    ],
    "grids": [
        {"grid_id": "G01", "grid_name": "西湖商圈", "branch_id": "B002", "grid_type": "商圈"},
        {"grid_id": "G02", "grid_name": "三墩园区", "branch_id": "B002", "grid_type": "园区"},
    ],
    "relationship_managers": [
        {"rm_id": "R01", "rm_name": "张晓明", "branch_id": "B002", "grid_id": "G01", "hire_date": "2019-03-01",
         "status": "在岗", "mobile": "13912345678"},
        {"rm_id": "R02", "rm_name": "李雪梅", "branch_id": "B002", "grid_id": "G02", "hire_date": "2020-07-15",
         "status": "在岗", "mobile": "13812345679"},
    ],
    "customers": [
        {"customer_id": "C001", "customer_name": "杭州鑫源餐饮有限公司", "customer_type": "小型企业",
         "uscc": "91330106MA2KXXXX1A", "legal_rep_name": "王建国", "legal_rep_id_number": "330106198001011234",
         "mobile": "13700001111", "industry_code": "H", "established_date": "2015-04-01",
         "relationship_start_date": "2018-05-20", "registered_capital": "1000000", "employees": "25",
         "annual_turnover": "8500000", "region_code": "330106", "branch_id": "B002", "grid_id": "G01",
         "rm_id": "R01", "credit_rating": "A"},
        {"customer_id": "C002", "customer_name": "余杭区赵记五金店", "customer_type": "个体工商户",
         "uscc": "92330110MA2HYYYY2B", "legal_rep_name": "赵德胜", "legal_rep_id_number": "330110197512125678",
         "mobile": "13600002222", "industry_code": "F", "established_date": "2012-09-10",
         "relationship_start_date": "2016-01-08", "registered_capital": "", "employees": "3",
         "annual_turnover": "1200000", "region_code": "330110", "branch_id": "B002", "grid_id": "G02",
         "rm_id": "R02", "credit_rating": "BBB"},
    ],
    "products": [
        {"product_id": "P01", "product_name_zh": "流动资金贷款", "product_name_en": "Working-capital loan",
         "product_type": "贷款", "guide_rate": "0.0385", "term_months": "12"},
        {"product_id": "P02", "product_name_zh": "基本存款账户", "product_name_en": "Basic deposit account",
         "product_type": "存款", "guide_rate": "0.002", "term_months": ""},
    ],
    "accounts": [
        {"account_id": "6228480012345678", "customer_id": "C001", "product_id": "P02",
         "account_type": "基本存款账户", "currency": "CNY", "open_date": "2018-05-20", "close_date": "",
         "status": "正常"},
        {"account_id": "6228480087654321", "customer_id": "C002", "product_id": "P02",
         "account_type": "基本存款账户", "currency": "CNY", "open_date": "2016-01-08", "close_date": "",
         "status": "正常"},
    ],
    "balances_monthly": [
        {"account_id": "6228480012345678", "month": "2024-01", "balance_month_end": "152000.50",
         "balance_daily_avg": "140000", "rate": "0.002", "credit_amount": "300000", "debit_amount": "280000",
         "txn_count": "42"},
        {"account_id": "6228480087654321", "month": "2024-01", "balance_month_end": "8000",
         "balance_daily_avg": "7600", "rate": "0.002", "credit_amount": "50000", "debit_amount": "48000",
         "txn_count": "17"},
    ],
    "transactions": [
        {"txn_id": "T0001", "account_id": "6228480012345678", "txn_date": "2024-01-05", "amount": "12000",
         "direction": "C", "channel": "网银", "purpose": "货款", "counterparty_bank": "他行",
         "counterparty_same_name": "0", "currency": "CNY"},
        {"txn_id": "T0002", "account_id": "6228480087654321", "txn_date": "2024-01-06", "amount": "3000",
         "direction": "D", "channel": "手机银行", "purpose": "工资", "counterparty_bank": "本行",
         "counterparty_same_name": "1", "currency": "CNY"},
    ],
    "loans": [
        {"loan_id": "L0001", "customer_id": "C001", "account_id": "", "product_id": "P01",
         "contract_amount": "50", "disbursement_date": "2023-06-01", "maturity_date": "2024-06-01",
         "executed_rate": "0.0435", "guide_rate": "0.0385", "guarantee_type": "信用", "five_class": "正常",
         "overdue_days": "0", "settled_date": ""},
        {"loan_id": "L0002", "customer_id": "C002", "account_id": "", "product_id": "P01",
         "contract_amount": "12.5", "disbursement_date": "2023-09-15", "maturity_date": "2024-09-15",
         "executed_rate": "0.0465", "guide_rate": "0.0385", "guarantee_type": "保证", "five_class": "正常",
         "overdue_days": "0", "settled_date": ""},
    ],
    "credit_lines": [
        {"credit_line_id": "CL01", "customer_id": "C001", "product_id": "P01", "limit_amount": "1000000",
         "start_date": "2023-06-01", "end_date": "2025-06-01", "status": "有效"},
        {"credit_line_id": "CL02", "customer_id": "C002", "product_id": "P01", "limit_amount": "200000",
         "start_date": "2023-09-01", "end_date": "2025-09-01", "status": "有效"},
    ],
    "marketing_contacts": [
        {"contact_id": "M01", "customer_id": "C001", "rm_id": "R01", "contact_date": "2024-01-10",
         "channel": "电话", "event_id": "EV01", "product_id": "P01", "outcome": "有意向"},
        {"contact_id": "M02", "customer_id": "C002", "rm_id": "R02", "contact_date": "2024-01-11",
         "channel": "上门", "event_id": "", "product_id": "", "outcome": "未接通"},
    ],
}

PII_VALUES = [row[c.name] for t, rows in BASE_ROWS.items() for row in rows
              for c in SCHEMA.tables[t].columns if c.pii and row.get(c.name)]


def write_table(inbox: Path, table: str, rows: list[dict[str, str]] | None = None, *,
                encoding: str = "utf-8", fmt: str = "csv", header: list[str] | None = None,
                delimiter: str = ",", stem: str | None = None) -> Path:
    """Write one extract file; ``header`` renames the columns as the bank would (same order)."""
    rows = BASE_ROWS[table] if rows is None else rows
    columns = list(rows[0].keys()) if rows else SCHEMA.tables[table].column_names
    names = header or columns
    path = inbox / f"{stem or table}.{fmt}"
    if fmt in ("csv", "txt"):
        with open(path, "w", encoding=encoding, newline="") as fh:
            w = csv.writer(fh, delimiter=delimiter, lineterminator="\r\n")
            w.writerow(names)
            for r in rows:
                w.writerow([r.get(c, "") for c in columns])
    elif fmt == "xlsx":
        from openpyxl import Workbook
        wb = Workbook()
        ws = wb.active
        ws.append(names)
        for r in rows:
            ws.append([r.get(c) if not isinstance(r.get(c), str) or r.get(c) != "" else None for c in columns])
        wb.save(path)
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq
        data = {n: [r.get(c) for r in rows] for n, c in zip(names, columns)}
        pq.write_table(pa.table(data), path)
    return path


def build_inbox(root: Path, skip: tuple[str, ...] = ()) -> Path:
    inbox = root / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    for table in BASE_ROWS:
        if table not in skip:
            write_table(inbox, table)
    return inbox


def run(root: Path, **options) -> tuple:
    report = ingest_inbox(root / "inbox", root / "warehouse.duckdb", root / "quarantine",
                          options=IngestOptions(**options) if options else None)
    return report, duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)


def assert_accounting(report) -> None:
    for t in report.tables.values():
        assert t.rows_in == t.rows_loaded + t.rows_quarantined, t.table
        assert sum(t.quarantine_reasons.values()) == t.rows_quarantined, t.table


# ---------------------------------------------------------------- the happy path

def test_clean_extract_loads_every_table_with_schema_types(tmp_path):
    build_inbox(tmp_path)
    (tmp_path / "inbox" / "readme.txt").write_text("notes from the bank", encoding="utf-8")
    report, con = run(tmp_path)
    assert_accounting(report)
    assert set(report.tables) == set(BASE_ROWS)
    assert all(t.rows_in == 2 and t.rows_loaded == 2 for t in report.tables.values())
    assert report.missing_optional_tables == ["loan_offers", "pilot_assignments", "pilot_feedback",
                                              "tax_monthly", "invoices_monthly", "registry_changes"]
    assert report.unknown_files == ["readme.txt"]
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'customers'").fetchall())
    assert types == {c.name: c.sql_type for c in SCHEMA.tables["customers"].columns}
    assert con.execute("SELECT month, balance_month_end FROM balances_monthly ORDER BY account_id").fetchall() \
        == [(dt.date(2024, 1, 1), 152000.5), (dt.date(2024, 1, 1), 8000.0)]
    assert con.execute("SELECT counterparty_same_name FROM transactions").fetchall() == [(False,), (True,)]
    files = con.execute('SELECT "table", rows_in, rows_loaded, rows_quarantined, length(sha256) '
                        "FROM _ingest_files WHERE \"table\" = 'loans'").fetchall()
    assert files == [("loans", 2, 2, 0, 64)]
    json.dumps(report.to_dict())  # JSON-able
    assert not (tmp_path / "quarantine" / "customers.csv").exists()


def test_loans_in_wan_yuan_are_converted_to_yuan_and_recorded(tmp_path):
    build_inbox(tmp_path)
    rows = [dict(r) for r in BASE_ROWS["credit_lines"]]
    rows[0]["limit_amount"] = "100"  # the bank delivered this table in 万元 too (declared below)
    write_table(tmp_path / "inbox", "credit_lines", rows)
    report, con = run(tmp_path, units={"credit_lines.limit_amount": "万元"})
    assert con.execute("SELECT contract_amount FROM loans ORDER BY loan_id").fetchall() == [(500000.0,), (125000.0,)]
    assert con.execute("SELECT limit_amount FROM credit_lines ORDER BY credit_line_id").fetchall() \
        == [(1000000.0,), (2000000000.0,)]
    assert any(n.startswith("contract_amount: 万元 × 10,000 → 元") for n in report.tables["loans"].conversions)
    assert "limit_amount: 万元 × 10,000 → 元 (unit declared in ingest.units)" in report.tables["credit_lines"].conversions


def test_gbk_customers_file_loads_with_correct_chinese(tmp_path):
    build_inbox(tmp_path)
    write_table(tmp_path / "inbox", "customers", encoding="gbk")
    report, con = run(tmp_path)
    assert report.tables["customers"].encoding == "gb18030"
    assert con.execute("SELECT customer_name, customer_type FROM customers ORDER BY customer_id").fetchall() \
        == [("杭州鑫源餐饮有限公司", "小型企业"), ("余杭区赵记五金店", "个体工商户")]


def test_gbk_declared_and_chinese_headers_and_file_named_by_label(tmp_path):
    inbox = build_inbox(tmp_path, skip=("customers",))
    cols = SCHEMA.tables["customers"].columns
    write_table(inbox, "customers", encoding="gb18030", header=[c.label_zh for c in cols], stem="客户信息表")
    report, con = run(tmp_path, encodings={"客户信息表.csv": "GBK"})
    t = report.tables["customers"]
    assert (t.file, t.encoding, t.rows_loaded) == ("客户信息表.csv", "gb18030", 2)
    assert t.renamed_columns["客户名称"] == "customer_name"
    assert con.execute("SELECT customer_name FROM customers WHERE customer_id = 'C002'").fetchone() == ("余杭区赵记五金店",)


def test_utf8_bom_header_and_pipe_delimited_txt(tmp_path):
    inbox = build_inbox(tmp_path, skip=("branches", "grids"))
    write_table(inbox, "branches", encoding="utf-8-sig")
    write_table(inbox, "grids", fmt="txt", delimiter="|", header=[" Grid_ID ", "GRID_NAME", "branch_id", "grid_type"])
    report, con = run(tmp_path)
    assert report.tables["branches"].encoding == "utf-8-sig"
    assert report.tables["grids"].delimiter == "|"
    assert con.execute("SELECT branch_id, branch_name FROM branches ORDER BY 1").fetchall() \
        == [("B001", "总行营业部"), ("B002", "城西支行")]
    assert con.execute("SELECT grid_id FROM grids ORDER BY 1").fetchall() == [("G01",), ("G02",)]


def test_date_formats_yyyymmdd_and_nian_yue_ri(tmp_path):
    inbox = build_inbox(tmp_path)
    rows = [dict(r) for r in BASE_ROWS["accounts"]]
    rows[0]["open_date"], rows[1]["open_date"] = "20180520", "2016年1月8日"
    rows[0]["close_date"] = "2023/12/31"
    write_table(inbox, "accounts", rows)
    bal = [dict(r) for r in BASE_ROWS["balances_monthly"]]
    bal[0]["month"], bal[1]["month"] = "202401", "2024-02-29"
    write_table(inbox, "balances_monthly", bal)
    report, con = run(tmp_path)
    assert con.execute("SELECT open_date, close_date FROM accounts").fetchall() \
        == [(dt.date(2018, 5, 20), dt.date(2023, 12, 31)), (dt.date(2016, 1, 8), None)]
    assert con.execute("SELECT month FROM balances_monthly").fetchall() == [(dt.date(2024, 1, 1),), (dt.date(2024, 2, 1),)]
    notes = report.tables["accounts"].conversions
    assert "open_date: YYYYMMDD text parsed (1 row)" in notes
    assert "open_date: YYYY年MM月DD日 text parsed (1 row)" in notes
    assert "month: YYYYMM text parsed (1 row)" in report.tables["balances_monthly"].conversions


def test_thousands_separators_full_width_digits_and_placeholders(tmp_path):
    inbox = build_inbox(tmp_path)
    rows = [dict(r) for r in BASE_ROWS["customers"]]
    rows[0]["registered_capital"] = "1,000,000.00"
    rows[0]["annual_turnover"] = "８５０００００"
    rows[1]["employees"] = "３"
    rows[1]["registered_capital"] = " NULL "
    rows[1]["credit_rating"] = "ＢＢＢ"
    write_table(inbox, "customers", rows)
    report, con = run(tmp_path)
    assert con.execute("SELECT registered_capital, annual_turnover, employees, credit_rating FROM customers").fetchall() \
        == [(1000000.0, 8500000.0, 25, "A"), (None, 1200000.0, 3, "BBB")]
    notes = report.tables["customers"].conversions
    assert "registered_capital: thousands separators removed (1 row)" in notes
    assert "annual_turnover: full-width digits converted (1 row)" in notes
    assert "credit_rating: full-width letters converted to half-width (1 row)" in notes
    assert "registered_capital: blank or placeholder values ('-', 'NULL', …) read as empty (1 row)" in notes


# ---------------------------------------------------------------- rows that are quarantined

def test_duplicate_keys_first_in_file_order_loaded_rest_quarantined(tmp_path):
    inbox = build_inbox(tmp_path)
    base = BASE_ROWS["transactions"]
    rows = [base[0], base[1], {**base[0], "amount": "999"}, {**base[1], "amount": "888"}, {**base[0], "amount": "777"}]
    write_table(inbox, "transactions", rows)
    report, con = run(tmp_path)  # duplicates never stop the ingest, even with on_bad_rows=stop
    t = report.tables["transactions"]
    assert (t.rows_in, t.rows_loaded, t.rows_quarantined) == (5, 2, 3)
    assert t.quarantine_reasons == {"duplicate_key": 3}
    assert_accounting(report)
    assert con.execute("SELECT txn_id, amount FROM transactions ORDER BY txn_id").fetchall() \
        == [("T0001", 12000.0), ("T0002", 3000.0)]
    with open(tmp_path / "quarantine" / "transactions.csv", encoding="utf-8-sig", newline="") as fh:
        quarantined = list(csv.DictReader(fh))
    assert [(q["txn_id"], q["amount"], q["source_file"], q["source_row"], q["reason"]) for q in quarantined] == [
        ("T0001", "999", "transactions.csv", "4", "duplicate_key"),
        ("T0002", "888", "transactions.csv", "5", "duplicate_key"),
        ("T0001", "777", "transactions.csv", "6", "duplicate_key"),
    ]
    assert (tmp_path / "quarantine" / "transactions.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_non_numeric_amount_stops_naming_file_row_column(tmp_path):
    inbox = build_inbox(tmp_path)
    rows = [dict(r) for r in BASE_ROWS["transactions"]]
    rows[1]["amount"] = "12O0"  # letter O typed for a zero
    write_table(inbox, "transactions", rows)
    with pytest.raises(InputError) as info:
        run(tmp_path)
    err = info.value
    assert (err.file, err.row, err.column) == ("transactions.csv", 3, "amount")
    assert "'12O0'" in str(err) and "not a number" in str(err)
    assert "ingest.on_bad_rows: quarantine" in err.fix
    # the warehouse and the report are still written
    report = err.report
    assert report.tables["transactions"].rows_quarantined == 1
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM transactions").fetchone() == (1,)
    assert con.execute("SELECT count(*) FROM customers").fetchone() == (2,)


def test_bad_rows_quarantined_when_asked_and_accounting_holds(tmp_path):
    inbox = build_inbox(tmp_path)
    base = BASE_ROWS["transactions"]
    rows = [base[0], {**base[1], "amount": "abc"}, {**base[0], "txn_id": "T0003", "txn_date": ""},
            {**base[0], "txn_id": "T0004", "txn_date": "2024-13-45"}, {**base[0], "txn_id": "T0005"}]
    write_table(inbox, "transactions", rows)
    report, con = run(tmp_path, on_bad_rows="quarantine")
    t = report.tables["transactions"]
    assert (t.rows_in, t.rows_loaded, t.rows_quarantined) == (5, 2, 3)
    assert t.quarantine_reasons == {"type_error:amount": 1, "missing_required:txn_date": 1,
                                    "type_error:txn_date": 1}
    assert_accounting(report)
    assert con.execute("SELECT txn_id FROM transactions").fetchall() == [("T0001",), ("T0005",)]
    with open(tmp_path / "quarantine" / "transactions.csv", encoding="utf-8-sig", newline="") as fh:
        assert [(q["source_row"], q["reason"], q["amount"]) for q in csv.DictReader(fh)] == [
            ("3", "type_error:amount", "abc"), ("4", "missing_required:txn_date", "12000"),
            ("5", "type_error:txn_date", "12000")]


# ---------------------------------------------------------------- files that stop the ingest

def test_declared_utf8_but_gbk_names_file_and_row(tmp_path):
    inbox = build_inbox(tmp_path)
    rows = [dict(r) for r in BASE_ROWS["branches"]]
    rows[0]["branch_name"] = "Head office"  # row 2 is ASCII, row 3 is the first with Chinese text
    rows[0]["level"] = rows[0]["city"] = ""
    with open(inbox / "branches.csv", "w", encoding="gbk", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(rows[0].keys())
        w.writerow(["B001", "Head office", "", "", ""])
        w.writerow(rows[1].values())
    with pytest.raises(InputError) as info:
        run(tmp_path, encodings={"branches.csv": "utf-8"})
    err = info.value
    assert (err.file, err.row) == ("branches.csv", 3)
    assert "declare gb18030 in engagement.yaml ingest.encodings" in err.fix
    assert not (tmp_path / "warehouse.duckdb").exists()
    assert not list(tmp_path.glob("warehouse.duckdb.tmp*"))


def test_missing_required_column_names_file_column_and_template(tmp_path):
    inbox = build_inbox(tmp_path)
    rows = [{k: v for k, v in r.items() if k != "rm_id"} for r in BASE_ROWS["customers"]]
    write_table(inbox, "customers", rows)
    with pytest.raises(InputError) as info:
        run(tmp_path)
    err = info.value
    assert (err.file, err.column) == ("customers.csv", "rm_id")
    assert "add the column rm_id (管户客户经理) — see data_templates/templates/customers.csv" in err.fix


def test_missing_required_table_names_it_and_the_template(tmp_path):
    build_inbox(tmp_path, skip=("loans",))
    with pytest.raises(InputError) as info:
        run(tmp_path)
    assert "loans (贷款借据表)" in str(info.value)
    assert "data_templates/templates/loans.csv" in info.value.fix


def test_extra_columns_reported_and_dropped(tmp_path):
    inbox = build_inbox(tmp_path)
    rows = [{**r, "备用字段1": "x", "etl_date": "20240131"} for r in BASE_ROWS["products"]]
    write_table(inbox, "products", rows)
    report, con = run(tmp_path)
    assert report.tables["products"].unexpected_columns == ["备用字段1", "etl_date"]
    assert [r[0] for r in con.execute("DESCRIBE products").fetchall()] == SCHEMA.tables["products"].column_names


# ---------------------------------------------------------------- other formats

def test_xlsx_input_with_typed_cells(tmp_path):
    inbox = build_inbox(tmp_path, skip=("loans",))
    rows = [{**r, "contract_amount": float(r["contract_amount"]), "overdue_days": 0,
             "disbursement_date": dt.datetime.fromisoformat(r["disbursement_date"]),
             "maturity_date": r["maturity_date"]} for r in BASE_ROWS["loans"]]
    write_table(inbox, "loans", rows, fmt="xlsx")
    report, con = run(tmp_path)
    t = report.tables["loans"]
    assert (t.format, t.rows_loaded) == ("xlsx", 2)
    assert con.execute("SELECT loan_id, contract_amount, disbursement_date, overdue_days FROM loans").fetchall() == [
        ("L0001", 500000.0, dt.date(2023, 6, 1), 0), ("L0002", 125000.0, dt.date(2023, 9, 15), 0)]


def test_xlsx_bad_row_reports_the_excel_row(tmp_path):
    inbox = build_inbox(tmp_path, skip=("loans",))
    rows = [dict(r) for r in BASE_ROWS["loans"]]
    rows.insert(1, {k: "" for k in rows[0]})  # a blank Excel row keeps the numbering
    rows[2]["executed_rate"] = "high"
    write_table(inbox, "loans", rows, fmt="xlsx")
    with pytest.raises(InputError) as info:
        run(tmp_path)
    assert (info.value.file, info.value.row, info.value.column) == ("loans.xlsx", 4, "executed_rate")
    assert info.value.report.tables["loans"].rows_in == 2


def test_parquet_input_with_native_types(tmp_path):
    inbox = build_inbox(tmp_path, skip=("transactions",))
    rows = [{**r, "amount": float(r["amount"]), "txn_date": dt.date.fromisoformat(r["txn_date"]),
             "counterparty_same_name": r["counterparty_same_name"] == "1"} for r in BASE_ROWS["transactions"]]
    rows.append({**rows[0], "txn_id": "T0003", "amount": None})
    write_table(inbox, "transactions", rows, fmt="parquet")
    report, con = run(tmp_path, on_bad_rows="quarantine")
    t = report.tables["transactions"]
    assert (t.format, t.rows_in, t.rows_loaded, t.quarantine_reasons) == ("parquet", 3, 2, {"missing_required:amount": 1})
    assert con.execute("SELECT txn_id, txn_date, amount, counterparty_same_name FROM transactions").fetchall() == [
        ("T0001", dt.date(2024, 1, 5), 12000.0, False), ("T0002", dt.date(2024, 1, 6), 3000.0, True)]
    with open(tmp_path / "quarantine" / "transactions.csv", encoding="utf-8-sig", newline="") as fh:
        assert [(q["txn_id"], q["source_row"]) for q in csv.DictReader(fh)] == [("T0003", "4")]


# ---------------------------------------------------------------- warehouse and personal data

def test_warehouse_swap_replaces_old_and_leaves_no_tmp(tmp_path):
    build_inbox(tmp_path)
    run(tmp_path)[1].close()
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE TABLE derived_from_old_data AS SELECT 1 AS x")
    con.close()
    (tmp_path / "warehouse.duckdb.tmp").write_bytes(b"left by an interrupted ingest")
    report, con = run(tmp_path)
    tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    assert "derived_from_old_data" not in tables and "_ingest_files" in tables
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in ("inbox", "quarantine", "warehouse.duckdb")]
    assert leftovers == []


def test_no_personal_data_in_error_messages(tmp_path):
    schema = SCHEMA.model_copy(deep=True)
    schema.tables["customers"].column("mobile").type = "integer"  # a PII column that can fail its type
    messages = []
    inbox = build_inbox(tmp_path)
    rows = [dict(r) for r in BASE_ROWS["customers"]]
    rows[0]["mobile"] = rows[0]["customer_name"]
    write_table(inbox, "customers", rows)
    with pytest.raises(InputError) as info:
        ingest_inbox(inbox, tmp_path / "warehouse.duckdb", tmp_path / "quarantine", schema=schema)
    assert info.value.column == "mobile" and "value masked" in str(info.value)
    messages.append(str(info.value))
    rows = [dict(r) for r in BASE_ROWS["relationship_managers"]]
    rows[1]["rm_name"] = ""
    rows[0]["hire_date"] = "入职很久了"
    write_table(inbox, "customers")
    write_table(inbox, "relationship_managers", rows)
    with pytest.raises(InputError) as info:
        run(tmp_path)
    messages.append(str(info.value))
    rows = [{k: v for k, v in r.items() if k != "customer_name"} for r in BASE_ROWS["customers"]]
    write_table(inbox, "customers", rows)
    with pytest.raises(InputError) as info:
        run(tmp_path)
    messages.append(str(info.value))
    assert len(messages) == 3
    for message in messages:
        assert not [v for v in PII_VALUES if v in message], message


def test_row_with_an_extra_delimiter_stops_naming_the_line(tmp_path):
    inbox = build_inbox(tmp_path)
    text = (inbox / "grids.csv").read_text(encoding="utf-8").splitlines()
    text[2] = text[2].replace("三墩园区", "三墩,园区")  # unquoted delimiter inside a value
    (inbox / "grids.csv").write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        run(tmp_path, on_bad_rows="quarantine")
    assert (info.value.file, info.value.row) == ("grids.csv", 3)
    assert "Expected Number of Columns" in str(info.value) and "三墩" not in str(info.value)


def test_gbk_body_after_an_ascii_first_megabyte_is_detected(tmp_path):
    inbox = build_inbox(tmp_path, skip=("products",))
    base = BASE_ROWS["products"]
    filler = [{**base[1], "product_id": f"X{i:06d}", "product_name_zh": "deposit", "product_type": "deposit"}
              for i in range(30000)]
    path = write_table(inbox, "products", filler + [base[0]], encoding="gbk")
    assert path.stat().st_size > 1024 * 1024 and path.read_bytes()[:1024 * 1024].isascii()
    report, con = run(tmp_path)
    assert report.tables["products"].encoding == "gb18030"
    assert any("utf-8 sample, but the body decodes only as gb18030" in n for n in report.tables["products"].conversions)
    assert con.execute("SELECT product_name_zh FROM products WHERE product_id = 'P01'").fetchone() == ("流动资金贷款",)


def test_declared_gbk_but_utf8_is_refused(tmp_path):
    build_inbox(tmp_path)
    with pytest.raises(InputError) as info:
        run(tmp_path, encodings={"customers.csv": "gbk"})
    assert info.value.file == "customers.csv" and "declare utf-8" in info.value.fix


def test_unit_override_to_yuan_skips_conversion(tmp_path):
    build_inbox(tmp_path)
    report, con = run(tmp_path, units={"loans.contract_amount": "元"})
    assert con.execute("SELECT contract_amount FROM loans ORDER BY loan_id").fetchall() == [(50.0,), (12.5,)]
    assert "contract_amount: delivered in 元 (ingest.units), not converted" in report.tables["loans"].conversions


def test_large_parquet_keeps_file_order_and_row_numbers(tmp_path):
    inbox = build_inbox(tmp_path, skip=("transactions",))
    n = 130_000  # more than one parquet row group and one DuckDB row group
    duckdb.execute(f"""
        COPY (SELECT 'T' || lpad(i::VARCHAR, 7, '0') AS txn_id, '6228480012345678' AS account_id,
                     CASE WHEN i = {n - 1} THEN 'not a date' ELSE '20240105' END AS txn_date,
                     (i % 1000)::DOUBLE AS amount, 'C' AS direction
              FROM range({n}) t(i))
        TO '{inbox / "transactions.parquet"}' (FORMAT parquet, ROW_GROUP_SIZE 50000)""")
    report, con = run(tmp_path, on_bad_rows="quarantine")
    t = report.tables["transactions"]
    assert (t.rows_in, t.rows_loaded, t.quarantine_reasons) == (n, n - 1, {"type_error:txn_date": 1})
    out_of_order = con.execute("""SELECT count(*) FROM (SELECT txn_id, lag(txn_id) OVER (ORDER BY rowid) AS prev
                                  FROM transactions) WHERE txn_id < prev""").fetchone()
    assert out_of_order == (0,)
    with open(tmp_path / "quarantine" / "transactions.csv", encoding="utf-8-sig", newline="") as fh:
        assert [(q["txn_id"], q["source_row"]) for q in csv.DictReader(fh)] == [(f"T{n - 1:07d}", str(n + 1))]


def test_excel_unicode_text_export_utf16_tab_delimited(tmp_path):
    inbox = build_inbox(tmp_path, skip=("grids",))
    write_table(inbox, "grids", fmt="txt", encoding="utf-16", delimiter="\t")  # Excel "Unicode Text"
    report, con = run(tmp_path)
    assert (report.tables["grids"].encoding, report.tables["grids"].delimiter) == ("utf-16", "\t")
    assert con.execute("SELECT grid_name FROM grids ORDER BY grid_id").fetchall() == [("西湖商圈",), ("三墩园区",)]
