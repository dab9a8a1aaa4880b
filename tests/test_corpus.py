"""The broken-extract corpus: every way a bank's export goes wrong, each through ``ingest_inbox``.

Each case is a complete small inbox (two valid rows per table, from test_ingest.BASE_ROWS) in
which exactly one file is broken. A case states its outcome — loaded (with the conversion
recorded), quarantined (with the reason) or rejected (InputError naming file, row, column and the
fix) — and the exact row accounting of the broken file: rows_in = rows_loaded + rows_quarantined.
A file refused as a whole (cannot be decoded or parsed) loads nothing; no warehouse is written.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest

from analysis.errors import InputError
from analysis.ingest import IngestOptions, ingest_inbox
from test_ingest import BASE_ROWS, PII_VALUES, SCHEMA

LONG_TEXT = "货款往来备注" * 20_000  # 120,000 characters, 360 kB in UTF-8


# ------------------------------------------------------------------ writing the corpus

def rows_of(table: str, **changes: dict[str, str]) -> list[dict[str, str]]:
    """Copies of the base rows; ``changes`` maps a row index ('r0', 'r1', …) to changed values."""
    rows = [dict(r) for r in BASE_ROWS[table]]
    for key, values in changes.items():
        i = int(key[1:])
        while i >= len(rows):  # extra rows start as copies of the first row
            rows.append(dict(rows[0]))
        rows[i].update(values)
    return rows


def delimited(rows: list[dict[str, str]], *, delimiter: str = ",", line_end: str = "\r\n",
              quoting: int = csv.QUOTE_MINIMAL) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=line_end, quoting=quoting)
    w.writerow(list(rows[0]))
    for r in rows:
        w.writerow(list(r.values()))
    return buf.getvalue()


def put(inbox: Path, name: str, data: bytes | str, encoding: str = "utf-8") -> None:
    """Replace the table's base file by ``name`` holding ``data``."""
    stem = Path(name).stem
    for old in inbox.glob(f"{stem}.*"):
        old.unlink()
    (inbox / name).write_bytes(data if isinstance(data, bytes) else data.encode(encoding))


def put_xlsx(inbox: Path, name: str, sheets: dict[str, list[list]], merges: dict[str, list[str]] | None = None) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
        for rng in (merges or {}).get(title, []):
            ws.merge_cells(rng)
    buf = io.BytesIO()
    wb.save(buf)
    put(inbox, name, buf.getvalue())


def table_rows(table: str, rows: list[dict[str, str]] | None = None) -> list[list]:
    rows = rows or BASE_ROWS[table]
    return [list(rows[0])] + [[v if v != "" else None for v in r.values()] for r in rows]


def mojibake(text: str) -> str:
    """UTF-8 bytes read as GBK: what a tool that guessed wrong wrote back."""
    return text.encode("utf-8").decode("gb18030")


# ------------------------------------------------------------------ the cases

@dataclass
class Case:
    id: str
    table: str                                    # the broken file's table
    write: Callable[[Path], None]
    outcome: str                                  # loaded | quarantined | rejected
    rows: tuple[int, int, int] | None = None      # rows_in, rows_loaded, rows_quarantined
    reasons: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()                   # substrings of the table's conversions
    warnings: tuple[str, ...] = ()                # substrings of the table's warnings
    check: str | None = None                      # SQL over the warehouse ...
    expect: list | None = None                    # ... and its exact result
    options: dict = field(default_factory=dict)
    error: dict | None = None                     # rejected: file, row, column, message / fix substrings
    report_extra: dict = field(default_factory=dict)  # other TableIngest fields, exactly


C = "customers"
GBK_NAME = "杭州鑫源餐饮有限公司"
RARE_NAME = "杭州𠮷野家餐饮有限公司"   # 𠮷 is outside GBK: only GB18030 (4-byte) encodes it
MOJIBAKE_SOURCE = "杭州鑫源餐饮有限公司"


def _mixed(inbox: Path) -> None:
    lines = delimited(BASE_ROWS[C]).split("\r\n")
    put(inbox, "customers.csv", ("\r\n".join(lines[:2]) + "\r\n").encode("utf-8")
        + ("\r\n".join(lines[2:])).encode("gbk"))


def _truncated_mid_char(inbox: Path) -> None:
    data = delimited(rows_of(C, r1={"customer_name": "余杭区赵记五金店", "credit_rating": ""}))
    raw = data.rstrip("\r\n,").encode("utf-8")
    # drop the credit_rating..end and cut the last multibyte character in half
    cut = data.encode("utf-8").rfind("五金店".encode("utf-8")) + 4
    put(inbox, "customers.csv", data.encode("utf-8")[:cut] if raw else b"")


def _truncated_mid_row(inbox: Path) -> None:
    data = delimited(BASE_ROWS["transactions"]).encode("utf-8")
    put(inbox, "transactions.csv", data[: data.rfind(b",3000,")])  # ends after the account number


def _xlsx_title_rows(inbox: Path) -> None:
    rows = rows_of(C, r1={"employees": "三人"}, r2={"customer_id": "C003", "customer_name": "杭州新客户有限公司"})
    put_xlsx(inbox, "customers.xlsx", {
        "customers": [["客户信息表（导出日期：2022-12-31）"], [None], *table_rows(C, rows)]},
        merges={"customers": ["A1:F1"]})


def _xlsx_merged_headers(inbox: Path) -> None:
    cols = list(BASE_ROWS[C][0])
    group = ["客户号"] + ["基本信息"] * 6 + ["经营信息"] * (len(cols) - 7)
    group[2:7] = [None] * 5
    group[8:] = [None] * (len(cols) - 8)
    header = [None] + cols[1:]   # 客户号 is merged down over both header rows
    body = [[v if v != "" else None for v in r.values()] for r in BASE_ROWS[C]]
    put_xlsx(inbox, "customers.xlsx", {"客户信息": [group, header, *body]},
             merges={"客户信息": ["A1:A2", "B1:G1", f"H1:{chr(64 + len(cols))}1"]})


def _xlsx_several_sheets(inbox: Path) -> None:
    put_xlsx(inbox, "customers.xlsx", {
        "说明": [["字段说明"], ["customer_id", "客户号"], ["customer_name", "客户名称"]],
        "汇总": [["客户类型", "户数"], ["小型企业", 1], ["个体工商户", 1]],
        "导出数据": table_rows(C),
    })


def _xlsx_named_sheet(inbox: Path) -> None:
    other = table_rows(C, rows_of(C, r0={"customer_id": "X1"}, r1={"customer_id": "X2"}, r2={"customer_id": "X3"}))
    put_xlsx(inbox, "customers.xlsx", {"上月数据": other, "客户信息表": table_rows(C)})


def _xlsx_dates(inbox: Path) -> None:
    rows = table_rows(C)
    est = list(BASE_ROWS[C][0]).index("established_date")
    rows[1][est] = dt.datetime(2022, 11, 11)
    rows[2][est] = 44876   # the same day as an Excel serial number (cell not formatted as a date)
    put_xlsx(inbox, "customers.xlsx", {"customers": rows})


def _gb18030(inbox: Path) -> None:
    put(inbox, "customers.csv", delimited(rows_of(C, r0={"customer_name": RARE_NAME})), "gb18030")


def _mojibake(inbox: Path) -> None:
    garbled = mojibake(MOJIBAKE_SOURCE)
    assert garbled.encode("gb18030").decode("utf-8") == MOJIBAKE_SOURCE  # the corpus is what it says
    put(inbox, "customers.csv", delimited(rows_of(C, r1={"customer_name": garbled})))


def _replacement_chars(inbox: Path) -> None:
    put(inbox, "customers.csv", delimited(rows_of(C, r0={"legal_rep_name": "王\ufffd\ufffd"})))


def _quoted(delim: str) -> Callable[[Path], None]:
    def write(inbox: Path) -> None:
        rows = rows_of(C, r0={"customer_name": f'杭州"鑫源"{delim}餐饮,有限公司\n二号店'})
        put(inbox, "customers.txt", delimited(rows, delimiter=delim))
    return write


CASES: list[Case] = [
    # ---- encodings
    Case("encoding-gbk", C, lambda i: put(i, "customers.csv", delimited(BASE_ROWS[C]), "gbk"),
         "loaded", (2, 2, 0), notes=("encoding gb18030",),
         check="SELECT customer_name FROM customers ORDER BY customer_id",
         expect=[(GBK_NAME,), ("余杭区赵记五金店",)]),
    Case("encoding-gb18030-four-byte", C, _gb18030, "loaded", (2, 2, 0), notes=("encoding gb18030",),
         check="SELECT customer_name FROM customers WHERE customer_id = 'C001'", expect=[(RARE_NAME,)]),
    Case("encoding-utf8-bom", C, lambda i: put(i, "customers.csv", b"\xef\xbb\xbf" + delimited(BASE_ROWS[C]).encode()),
         "loaded", (2, 2, 0), check="SELECT customer_id FROM customers ORDER BY 1", expect=[("C001",), ("C002",)]),
    Case("encoding-mixed-utf8-then-gbk", C, _mixed, "rejected",
         error={"file": "customers.csv", "row": 3, "column": None, "message": "mixes encodings",
                "fix": "one encoding"}),
    Case("encoding-mojibake", C, _mojibake, "loaded", (2, 2, 0),
         warnings=("customer_name: text looks garbled (UTF-8 read as GBK) in row 3",)),
    Case("encoding-replacement-characters", C, _replacement_chars, "loaded", (2, 2, 0),
         warnings=("legal_rep_name: text looks garbled (replacement characters", "row 2;")),
    Case("encoding-declared-wrong", C, lambda i: put(i, "customers.csv", delimited(BASE_ROWS[C]), "gbk"),
         "rejected", options={"encodings": {"customers.csv": "utf-8"}},
         error={"file": "customers.csv", "row": 2, "column": None, "message": "does not decode as utf-8",
                "fix": "declare gb18030"}),
    # ---- delimiters and quoting
    Case("delimiter-tab-quoted", C, _quoted("\t"), "loaded", (2, 2, 0),
         check="SELECT customer_name FROM customers WHERE customer_id = 'C001'",
         expect=[('杭州"鑫源"\t餐饮,有限公司\n二号店',)]),
    Case("delimiter-pipe-quoted", C, _quoted("|"), "loaded", (2, 2, 0),
         check="SELECT customer_name FROM customers WHERE customer_id = 'C001'",
         expect=[('杭州"鑫源"|餐饮,有限公司\n二号店',)]),
    Case("delimiter-semicolon-quoted", C, _quoted(";"), "loaded", (2, 2, 0),
         check="SELECT customer_name FROM customers WHERE customer_id = 'C001'",
         expect=[('杭州"鑫源";餐饮,有限公司\n二号店',)]),
    Case("quoting-all-fields", C, lambda i: put(i, "customers.csv", delimited(BASE_ROWS[C], quoting=csv.QUOTE_ALL)),
         "loaded", (2, 2, 0), check="SELECT count(*) FROM customers WHERE registered_capital IS NULL", expect=[(1,)]),
    Case("quoting-unescaped-delimiter", "transactions",
         lambda i: put(i, "transactions.csv", delimited(BASE_ROWS["transactions"]).replace("货款", "货款,押金")),
         "rejected", error={"file": "transactions.csv", "row": 2, "column": None,
                            "message": "cannot be parsed as delimited text", "fix": "enclosed in double quotes"}),
    Case("quoting-unterminated", "transactions",
         lambda i: put(i, "transactions.csv", delimited(BASE_ROWS["transactions"]).replace("货款", '"货款')),
         "rejected", error={"file": "transactions.csv", "row": 2, "column": None,
                            "message": "unterminated quote", "fix": "quotes"}),
    # ---- line endings
    Case("line-endings-crlf", C, lambda i: put(i, "customers.csv", delimited(BASE_ROWS[C], line_end="\r\n")),
         "loaded", (2, 2, 0), check="SELECT credit_rating FROM customers ORDER BY 1", expect=[("A",), ("BBB",)]),
    Case("line-endings-lf", C, lambda i: put(i, "customers.csv", delimited(BASE_ROWS[C], line_end="\n")),
         "loaded", (2, 2, 0), check="SELECT credit_rating FROM customers ORDER BY 1", expect=[("A",), ("BBB",)]),
    Case("line-endings-cr-only", C, lambda i: put(i, "customers.csv", delimited(BASE_ROWS[C], line_end="\r"), "gbk"),
         "loaded", (2, 2, 0), notes=("CR-only line endings read as line breaks", "encoding gb18030"),
         check="SELECT customer_name, credit_rating FROM customers ORDER BY 1",
         expect=[("余杭区赵记五金店", "BBB"), (GBK_NAME, "A")]),
    # ---- xlsx
    Case("xlsx-title-rows", C, _xlsx_title_rows, "quarantined", (3, 2, 1),
         reasons={"type_error:employees": 1}, options={"on_bad_rows": "quarantine"},
         notes=("title / group-header row(s) above the header (row 1) skipped",),
         check="SELECT customer_id FROM customers ORDER BY 1", expect=[("C001",), ("C003",)]),
    Case("xlsx-merged-headers", C, _xlsx_merged_headers, "loaded", (2, 2, 0),
         notes=("(row 1) skipped",),
         check="SELECT customer_id, uscc FROM customers ORDER BY 1",
         expect=[("C001", "91330106MA2KXXXX1A"), ("C002", "92330110MA2HYYYY2B")]),
    Case("xlsx-several-sheets", C, _xlsx_several_sheets, "loaded", (2, 2, 0),
         notes=("sheet '导出数据' read", "other sheets ignored: '说明', '汇总'"),
         check="SELECT customer_id FROM customers ORDER BY 1", expect=[("C001",), ("C002",)]),
    Case("xlsx-sheet-named-like-the-table", C, _xlsx_named_sheet, "loaded", (2, 2, 0),
         check="SELECT customer_id FROM customers ORDER BY 1", expect=[("C001",), ("C002",)]),
    Case("xlsx-date-cells-and-serials", C, _xlsx_dates, "loaded", (2, 2, 0),
         notes=("established_date: Excel serial day numbers read as dates (1 row)",),
         check="SELECT established_date FROM customers ORDER BY customer_id",
         expect=[(dt.date(2022, 11, 11),), (dt.date(2022, 11, 11),)]),
    # ---- numbers
    Case("numbers-thousands-separators", C,
         lambda i: put(i, "customers.csv", delimited(rows_of(C, r0={"annual_turnover": "8,500,000.00"},
                                                             r1={"annual_turnover": "1，200，000"}))),
         "loaded", (2, 2, 0), notes=("annual_turnover: thousands separators removed (2 rows)",),
         check="SELECT annual_turnover FROM customers ORDER BY customer_id", expect=[(8500000.0,), (1200000.0,)]),
    Case("numbers-full-width-digits", C,
         lambda i: put(i, "customers.csv", delimited(rows_of(C, r0={"employees": "２５"},
                                                             r1={"annual_turnover": "１２０００００．５"}))),
         "loaded", (2, 2, 0), notes=("employees: full-width digits converted (1 row)",
                                     "annual_turnover: full-width digits converted (1 row)"),
         check="SELECT employees, annual_turnover FROM customers ORDER BY customer_id",
         expect=[(25, 8500000.0), (3, 1200000.5)]),
    Case("numbers-wan-yuan-suffix", C,
         lambda i: put(i, "customers.csv", delimited(rows_of(C, r0={"annual_turnover": "850万元", "registered_capital": "100万"},
                                                             r1={"annual_turnover": "1,200,000元"}))),
         "loaded", (2, 2, 0), notes=("annual_turnover: amounts written with 万元 / 万 converted to 元 (1 row)",
                                     "registered_capital: amounts written with 万元 / 万 converted to 元 (1 row)",
                                     "annual_turnover: amounts written with 元 read as 元 (1 row)"),
         check="SELECT annual_turnover, registered_capital FROM customers ORDER BY customer_id",
         expect=[(8500000.0, 1000000.0), (1200000.0, None)]),
    Case("numbers-wan-yuan-suffix-in-wan-column", "loans",
         # loans.contract_amount is delivered in 万元 (schema): '50万元' and '50' are the same amount
         lambda i: put(i, "loans.csv", delimited(rows_of("loans", r0={"contract_amount": "50万元"},
                                                         r1={"contract_amount": "125000元"}))),
         "loaded", (2, 2, 0), notes=("contract_amount: 万元 × 10,000 → 元",),
         check="SELECT contract_amount FROM loans ORDER BY loan_id", expect=[(500000.0,), (125000.0,)]),
    Case("numbers-not-a-number", C,
         lambda i: put(i, "customers.csv", delimited(rows_of(C, r1={"annual_turnover": "约120万左右"}))),
         "rejected", (2, 1, 1), reasons={"type_error:annual_turnover": 1},
         error={"file": "customers.csv", "row": 3, "column": "annual_turnover",
                "message": "is not a number", "fix": "on_bad_rows: quarantine"}),
    Case("numbers-not-a-number-quarantined", C,
         lambda i: put(i, "customers.csv", delimited(rows_of(C, r1={"annual_turnover": "约120万左右"}))),
         "quarantined", (2, 1, 1), reasons={"type_error:annual_turnover": 1}, options={"on_bad_rows": "quarantine"}),
    # ---- dates
    Case("dates-every-format", "transactions",
         lambda i: put(i, "transactions.csv", delimited(rows_of(
             "transactions", r0={"txn_date": "20221111"}, r1={"txn_date": "2022-11-11"},
             r2={"txn_id": "T0003", "txn_date": "2022/11/11"}, r3={"txn_id": "T0004", "txn_date": "2022年11月11日"},
             r4={"txn_id": "T0005", "txn_date": "44876"}, r5={"txn_id": "T0006", "txn_date": "２０２２－１１－１１"}))),
         "loaded", (6, 6, 0), notes=("txn_date: YYYYMMDD text parsed (1 row)", "txn_date: YYYY/MM/DD text parsed (1 row)",
                                     "txn_date: YYYY年MM月DD日 text parsed (1 row)",
                                     "txn_date: Excel serial day numbers read as dates (1 row)",
                                     "txn_date: full-width digits converted (1 row)"),
         check="SELECT DISTINCT txn_date FROM transactions", expect=[(dt.date(2022, 11, 11),)]),
    Case("dates-impossible", "transactions",
         lambda i: put(i, "transactions.csv", delimited(rows_of("transactions", r1={"txn_date": "2022-02-30"}))),
         "quarantined", (2, 1, 1), reasons={"type_error:txn_date": 1}, options={"on_bad_rows": "quarantine"}),
    # ---- keys
    Case("duplicate-keys", C,
         lambda i: put(i, "customers.csv", delimited(rows_of(C, r2={"customer_name": "重复的客户号"}))),
         "quarantined", (3, 2, 1), reasons={"duplicate_key": 1},
         check="SELECT customer_name FROM customers ORDER BY customer_id", expect=[(GBK_NAME,), ("余杭区赵记五金店",)]),
    Case("orphan-foreign-keys", "accounts",
         lambda i: put(i, "accounts.csv", delimited(rows_of("accounts", r2={"account_id": "6228480099990000",
                                                                            "customer_id": "C999"}))),
         "loaded", (3, 3, 0), report_extra={"orphan_references": {"customer_id": 1}},
         check="SELECT count(*) FROM accounts WHERE customer_id = 'C999'", expect=[(1,)]),
    # ---- columns
    Case("missing-required-column", C,
         lambda i: put(i, "customers.csv", delimited([{k: v for k, v in r.items() if k != "rm_id"}
                                                      for r in BASE_ROWS[C]])),
         "rejected", error={"file": "customers.csv", "row": None, "column": "rm_id",
                            "message": "required column missing: rm_id", "fix": "templates/customers.csv"}),
    Case("missing-required-value", C,
         lambda i: put(i, "customers.csv", delimited(rows_of(C, r1={"relationship_start_date": "  "}))),
         "quarantined", (2, 1, 1), reasons={"missing_required:relationship_start_date": 1},
         options={"on_bad_rows": "quarantine"}),
    Case("missing-required-personal-value", C,
         lambda i: put(i, "customers.csv", delimited(rows_of(C, r1={"customer_name": ""}))),
         "rejected", (2, 1, 1), reasons={"missing_required:customer_name": 1},
         error={"file": "customers.csv", "row": 3, "column": "customer_name",
                "message": "required column customer_name (客户名称) is empty", "fix": "on_bad_rows"}),
    Case("unquoted-delimiter-in-a-personal-value", C,
         lambda i: put(i, "customers.csv", delimited(BASE_ROWS[C]).replace("王建国", "王建国,王小明")),
         "rejected", error={"file": "customers.csv", "row": 2, "column": None,
                            "message": "cannot be parsed as delimited text", "fix": "double quotes"}),
    Case("unexpected-columns", C,
         lambda i: put(i, "customers.csv", delimited([{**r, "备注": "x", "内部评分": "9"} for r in BASE_ROWS[C]])),
         "loaded", (2, 2, 0), report_extra={"unexpected_columns": ["备注", "内部评分"]}),
    Case("missing-optional-column", C,
         lambda i: put(i, "customers.csv", delimited([{k: v for k, v in r.items() if k != "credit_rating"}
                                                      for r in BASE_ROWS[C]])),
         "loaded", (2, 2, 0), report_extra={"missing_optional_columns": ["credit_rating"]},
         check="SELECT count(credit_rating) FROM customers", expect=[(0,)]),
    # ---- empty and truncated
    Case("empty-file", "branches", lambda i: put(i, "branches.csv", b""), "rejected",
         error={"file": "branches.csv", "row": None, "column": None, "message": "the file is empty",
                "fix": "header row"}),
    Case("header-only", "marketing_contacts",
         lambda i: put(i, "marketing_contacts.csv", delimited(BASE_ROWS["marketing_contacts"]).split("\r\n")[0] + "\r\n"),
         "loaded", (0, 0, 0)),
    Case("truncated-mid-row", "transactions", _truncated_mid_row, "rejected", (2, 1, 1),
         reasons={"missing_required:amount": 1},
         error={"file": "transactions.csv", "row": 3, "column": "amount",
                "message": "required column amount (交易金额) is empty", "fix": "quarantine/transactions.csv"}),
    Case("truncated-mid-row-quarantined", "transactions", _truncated_mid_row, "quarantined", (2, 1, 1),
         reasons={"missing_required:amount": 1}, options={"on_bad_rows": "quarantine"}),
    Case("truncated-mid-character", C, _truncated_mid_char, "rejected",
         error={"file": "customers.csv", "row": 3, "column": None, "message": "looks truncated",
                "fix": "copy or export the file again"}),
    # ---- very long text
    Case("very-long-text-field", "transactions",
         lambda i: put(i, "transactions.csv", delimited(rows_of("transactions", r0={"purpose": LONG_TEXT}))),
         "loaded", (2, 2, 0), check="SELECT length(purpose) FROM transactions ORDER BY txn_id",
         expect=[(len(LONG_TEXT),), (2,)]),
]


def build_case(root: Path, case: Case) -> Path:
    """A complete inbox of valid files in ``root``/inbox, then the case's one broken file."""
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    for table, rows in BASE_ROWS.items():
        (inbox / f"{table}.csv").write_text(delimited(rows), encoding="utf-8")
    case.write(inbox)
    return inbox


def _ingest(root: Path, case: Case):
    return ingest_inbox(root / "inbox", root / "warehouse.duckdb", root / "quarantine",
                        options=IngestOptions(**case.options))


def _assert_no_personal_values(text: str) -> None:
    """No C2 value of the corpus (names, ID numbers, USCCs, mobiles, accounts) in a message."""
    values = PII_VALUES + [RARE_NAME, mojibake(MOJIBAKE_SOURCE), "王\ufffd\ufffd"]
    assert not [v for v in values if v in text], text


def _assert_accounting(table_report, case: Case) -> None:
    rows_in, loaded, quarantined = case.rows
    assert (table_report.rows_in, table_report.rows_loaded, table_report.rows_quarantined) == case.rows
    assert rows_in == loaded + quarantined
    assert table_report.quarantine_reasons == case.reasons


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_extract(tmp_path, case: Case):
    build_case(tmp_path, case)
    if case.outcome == "rejected":
        with pytest.raises(InputError) as info:
            _ingest(tmp_path, case)
        err, want = info.value, case.error
        assert (err.file, err.row, err.column) == (want["file"], want["row"], want["column"]), str(err)
        assert want["message"] in str(err).split(" Fix: ")[0] and want["fix"] in err.fix, str(err)
        report = getattr(err, "report", None)
        _assert_no_personal_values(str(err) + repr(report.to_dict() if report else None))
        if case.rows is None:
            # refused as a whole: nothing is loaded, no warehouse or quarantine is written
            assert report is None
            assert not (tmp_path / "warehouse.duckdb").exists()
            assert not (tmp_path / "quarantine").exists()
            return
        # bad rows stop the ingest, but the accounting is complete and the rows are in quarantine
        table_report = report.tables[case.table]
    else:
        report = _ingest(tmp_path, case)
        table_report = report.tables[case.table]
        _assert_no_personal_values(json.dumps(report.to_dict(), ensure_ascii=False))
    _assert_accounting(table_report, case)
    for note in case.notes:
        assert any(note in c for c in table_report.conversions), (note, table_report.conversions)
    for warning in case.warnings:
        assert any(warning in w for w in table_report.warnings), (warning, table_report.warnings)
    if not case.warnings:
        assert table_report.warnings == []
    for key, value in case.report_extra.items():
        assert getattr(table_report, key) == value
    qfile = tmp_path / "quarantine" / f"{case.table}.csv"
    if case.rows[2]:
        with open(qfile, encoding="utf-8-sig", newline="") as fh:
            quarantined = list(csv.DictReader(fh))
        assert len(quarantined) == case.rows[2]
        assert {r["reason"] for r in quarantined} == set(case.reasons)
        assert all(r["source_file"] == table_report.file for r in quarantined)
    else:
        assert not qfile.exists()
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute(f"SELECT count(*) FROM {case.table}").fetchone()[0] == case.rows[1]
        if case.check:
            assert con.execute(case.check).fetchall() == case.expect
    finally:
        con.close()


def test_corpus_covers_every_outcome_and_table_file_is_the_only_broken_one(tmp_path):
    """Each outcome occurs, and the builder leaves every other table's file exactly valid."""
    assert {c.outcome for c in CASES} == {"loaded", "quarantined", "rejected"}
    assert len({c.id for c in CASES}) == len(CASES)
    case = next(c for c in CASES if c.id == "encoding-gbk")
    inbox = build_case(tmp_path, case)
    assert sorted(p.stem for p in inbox.iterdir()) == sorted(BASE_ROWS)
    report = ingest_inbox(inbox, tmp_path / "w.duckdb", tmp_path / "q")
    assert all(t.rows_quarantined == 0 and t.warnings == [] for t in report.tables.values())
    assert all(t.orphan_references == {} for t in report.tables.values())


def test_quarantined_xlsx_row_keeps_the_excel_row_number(tmp_path):
    case = next(c for c in CASES if c.id == "xlsx-title-rows")
    build_case(tmp_path, case)
    _ingest(tmp_path, case)
    with open(tmp_path / "quarantine" / "customers.csv", encoding="utf-8-sig", newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    # title row 1, blank row 2, header row 3, data from row 4: the bad second data row is row 5
    assert (row["source_row"], row["reason"], row["customer_id"]) == ("5", "type_error:employees", "C002")


def test_warnings_and_errors_never_quote_personal_values(tmp_path):
    """Garbled-text warnings name column and row, never the (personal) value."""
    case = next(c for c in CASES if c.id == "encoding-replacement-characters")
    build_case(tmp_path, case)
    report = _ingest(tmp_path, case)
    text = repr(report.to_dict())
    assert "王\ufffd" not in text and "\ufffd\ufffd" not in text


def test_codecs_of_the_corpus_are_what_the_case_names_claim():
    # guard against a corpus that silently stopped being broken
    with pytest.raises(UnicodeEncodeError):
        RARE_NAME.encode("gbk")
    assert codecs.lookup("gb18030").name == "gb18030"
    assert mojibake(MOJIBAKE_SOURCE) != MOJIBAKE_SOURCE
    assert SCHEMA.tables["loans"].column("contract_amount").unit == "万元"
