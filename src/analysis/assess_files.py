"""`playbook assess`: profile and check any csv / xlsx / parquet file (or folder), template or not.

A bank's first extract rarely follows the data template. This module reads whatever was
delivered — detecting encoding (analysis.readers), delimiter, quoting, line endings (LF, CRLF,
CR-only) and header row(s) — loads each file as text into DuckDB and runs the checks that need
no schema: empty values, placeholders ('?', '-', 'NULL', …), duplicate rows and duplicate keys,
type consistency, text dates (YYMMDD / YYYYMMDD), codes that pack two facts into one value
(a birth number whose month carries +50 for women), full-width characters, mojibake and
out-of-range values. Given a binary target it adds each column's information value.

Every check is SQL over the loaded table; pandas only sees per-column aggregates (and, for the
IV of a numeric column, that one column and the target). Results: ``assessment.json``,
``findings.xlsx`` and a compact, self-contained ``assessment.html``.

Bad input raises :class:`analysis.errors.InputError` naming file, row, column and fix; a folder
carries on past an unreadable file (reported as a blocker finding) as long as one file reads.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import math
import re
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from analysis import stats
from analysis.assessment import (DIMENSION_LABELS, FINDING_COLUMNS, FULLWIDTH_PATTERN,
                                 MOJIBAKE_PATTERN, SEVERITIES, SEVERITY_LABELS)
from analysis.errors import InputError
from analysis.privacy import mask_value
from analysis.readers import prepare_text, prepare_xlsx
from analysis.sqltext import sql_string as _lit

TEXT_SUFFIXES = {".csv", ".tsv", ".txt", ".asc", ".dat", ".psv", ".del"}
XLSX_SUFFIXES = {".xlsx", ".xlsm"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
DELIMITERS = (",", ";", "\t", "|")
#: Values that stand for "no value" in extracts; compared upper-cased and trimmed.
PLACEHOLDERS = ("?", "-", "--", "---", "NULL", "NONE", "N/A", "NA", "#N/A", "\\N", "NAN", "NIL",
                "UNKNOWN", "未知", "无", "空")
#: A type that holds for this share of a column's values makes the rest type violations.
TYPE_SHARE = 0.90
#: Share of values for a column to *be* a (text) date or a number.
FORMAT_SHARE = 0.95
#: A column with at least this share of NULL / empty values is a major finding.
NULL_MAJOR_SHARE = 0.20
#: At most this share of negatives in an otherwise positive column is suspicious.
RARE_NEGATIVE_SHARE = 0.01
#: Categorical columns with more distinct values than this get no IV (an id, a free text).
IV_MAX_CATEGORIES = 1000
MAX_LINE_BYTES = 8 * 1024 * 1024
SAMPLE_CHARS = 1024 * 1024
#: A column whose name says it holds personal data has its example values masked.
PERSONAL_NAME = re.compile(
    r"name|姓名|名称|birth|id_?num|身份证|证件|mobile|phone|tel|手机|电话|account_?no|账号|卡号|"
    r"uscc|信用代码|e-?mail|address|地址", re.IGNORECASE)
KEY_NAME = re.compile(r"(^id$|_id$|^id_|编号|代码$|号$|^key$|_key$|_no$)", re.IGNORECASE)
AGE_NAME = re.compile(r"^(age|年龄)$", re.IGNORECASE)


@dataclass(frozen=True)
class GenericCheck:
    dimension: str
    label_zh: str
    label_en: str
    severity: str


#: Check ids of `playbook assess` (shared ids mean the same as in analysis.assessment.CHECKS).
GENERIC_CHECKS: dict[str, GenericCheck] = {
    "unreadable_file": GenericCheck("completeness", "文件无法读取", "File cannot be read", "blocker"),
    "empty_table": GenericCheck("completeness", "数据表为空", "Empty table", "blocker"),
    "rejected_rows": GenericCheck("validity", "行结构错误(列数不符或引号未闭合)",
                                  "Malformed rows (wrong field count, open quote)", "major"),
    "null_values": GenericCheck("completeness", "空值", "Missing values", "minor"),
    "placeholder_value": GenericCheck("completeness", "占位符代替空值",
                                      "Placeholder instead of empty", "minor"),
    "duplicate_rows": GenericCheck("uniqueness", "整行重复", "Duplicate rows", "major"),
    "duplicate_key": GenericCheck("uniqueness", "主键重复", "Duplicate key", "major"),
    "mixed_types": GenericCheck("validity", "类型不一致", "Inconsistent type", "major"),
    "out_of_range": GenericCheck("validity", "取值超出合理范围", "Out-of-range values", "major"),
    "date_text_format": GenericCheck("consistency", "日期以文本格式提供", "Dates delivered as text",
                                     "minor"),
    "encoded_sex_in_date": GenericCheck("consistency", "编码中隐含性别(月份+50)",
                                        "Sex packed into a date code (month + 50)", "minor"),
    "fullwidth_characters": GenericCheck("consistency", "全角字符", "Full-width characters",
                                         "minor"),
    "mojibake": GenericCheck("consistency", "乱码", "Garbled text (mojibake)", "major"),
    "encoding_non_utf8": GenericCheck("consistency", "文件非 UTF-8 编码", "File not UTF-8",
                                      "minor"),
    "file_format_note": GenericCheck("consistency", "文件格式说明", "File format note", "minor"),
}


@dataclass
class LoadedTable:
    """One delivered file as read: how it was parsed and what it holds."""

    name: str
    file: str
    format: str                    # csv | xlsx | parquet
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    encoding: str | None = None
    delimiter: str | None = None
    quote: str | None = None
    line_ending: str | None = None  # LF | CRLF | CR | mixed
    header_rows: int = 1
    skipped_rows: int = 0          # preamble lines above the header
    rows_rejected: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Assessment:
    tables: list[LoadedTable]
    findings: pd.DataFrame
    profiles: pd.DataFrame
    iv: dict[str, float] | None = None
    target: str | None = None
    positive: str | None = None


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------

def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'




def sniff_kind(path: Path) -> str:
    """What a file is by its bytes, whatever its name: parquet, xlsx, xls, text or binary."""
    with open(path, "rb") as fh:
        head = fh.read(65536)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "text"  # UTF-16 with a BOM: NUL bytes are expected
    if b"\x00" in head:
        return "binary"
    return "text"


def line_ending(sample: str) -> str:
    """LF, CRLF, CR or mixed, from a decoded text sample (a single line counts as LF)."""
    crlf = sample.count("\r\n")
    cr = sample.count("\r") - crlf
    lf = sample.count("\n") - crlf
    kinds = [k for k, n in (("CRLF", crlf), ("CR", cr), ("LF", lf)) if n]
    if not kinds:
        return "LF"
    return kinds[0] if len(kinds) == 1 else "mixed"


def _rows_of(sample: str, delimiter: str, quote: str | None, limit: int = 200) -> list[list[str]]:
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter,
                        quotechar=quote or '"', quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE)
    rows = []
    try:
        for row in reader:
            rows.append(row)
            if len(rows) >= limit:
                break
    except csv.Error:
        pass  # an unterminated quote in the sample: judge on the rows read so far
    return rows


def _looks_numeric(cell: str) -> bool:
    return bool(re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", cell.strip().replace(",", "")))


def detect_dialect(sample: str) -> tuple[str, str | None, int, int]:
    """(delimiter, quote or None, preamble lines to skip, header rows 0–2) of a text sample.

    The delimiter is the candidate giving the most rows of one consistent field count (> 1);
    preamble lines (a title, blank lines) are the leading rows with another field count; the
    first row of the common count is a header when every cell is a non-numeric, distinct
    name, and a second such row is a header too when some column below it is numeric.
    """
    lines = sample.splitlines()
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        sample = "\n".join(lines[:-1])  # the sample cut a line short
    quote = '"' if re.search(r'(^|[,;\t|])"', sample, re.MULTILINE) else None
    best = (",", 1, 0)  # delimiter, field count, rows with that count
    for d in DELIMITERS:
        rows = [r for r in _rows_of(sample, d, quote) if any(c.strip() for c in r)]
        if not rows:
            continue
        counts = pd.Series([len(r) for r in rows]).value_counts()
        width, n = int(counts.index[0]), int(counts.iloc[0])
        if width > 1 and (n, width) > (best[2], best[1]):
            best = (d, width, n)
    delimiter, width, _ = best
    rows = _rows_of(sample, delimiter, quote, limit=60)
    skip = 0
    while skip < min(len(rows), 10) and len(rows[skip]) != width and width > 1:
        skip += 1
    if skip >= len(rows):
        skip = 0
    body = rows[skip:]
    header_rows = 0

    def is_names(row: list[str]) -> bool:
        cells = [c.strip() for c in row]
        return (len(cells) == width and all(cells) and len(set(cells)) == len(cells)
                and not any(_looks_numeric(c) for c in cells))

    if body and is_names(body[0]):
        header_rows = 1
        if len(body) > 2 and is_names(body[1]):
            below = body[2:]
            numeric_below = any(
                below and sum(_looks_numeric(r[j]) for r in below if j < len(r)) >= 0.9 * len(below)
                for j in range(width))
            if numeric_below:
                header_rows = 2
    elif body and width == 1 and body[0] and body[0][0].strip() and not _looks_numeric(body[0][0]):
        header_rows = 1
    return delimiter, quote, skip, header_rows


def _column_names(rows: list[list[str]], width: int) -> list[str]:
    names = []
    for j in range(width):
        parts = [r[j].strip().lstrip("\ufeff") for r in rows if j < len(r) and r[j].strip()]
        names.append(" / ".join(parts) or f"column_{j + 1}")
    seen: dict[str, int] = {}
    unique = []
    for n in names:
        k = n.lower()
        seen[k] = seen.get(k, 0) + 1
        unique.append(n if seen[k] == 1 else f"{n}_{seen[k]}")
    return unique


def _table_name(path: Path, taken: set[str]) -> str:
    base = re.sub(r"\W+", "_", path.stem).strip("_") or "table"
    name, i = base, 2
    while name.lower() in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name.lower())
    return name


def _read_text(con, path: Path, name: str, workdir: Path, fmt: str = "csv",
               prepared=None) -> LoadedTable:
    prepared = prepared or prepare_text(path, None, workdir)
    with open(prepared.path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        sample = fh.read(SAMPLE_CHARS)
    if not sample.strip():
        raise InputError("the file holds no data (only blank lines)", file=path.name,
                         fix="re-export the table with its header row and data")
    # line endings of the delivered bytes: a transcoded working copy may have normalised them
    with open(path, "rb") as fh:
        raw = fh.read(SAMPLE_CHARS)
    wide = (prepared.encoding or "").startswith(("utf-16", "utf-32"))
    # latin-1 keeps every byte; CR / LF never occur inside a GBK or UTF-8 multibyte character
    ending = line_ending(raw.decode(prepared.encoding, errors="replace") if wide
                         else raw.decode("latin-1"))
    delimiter, quote, skip, header_rows = detect_dialect(sample)
    rows = _rows_of(sample, delimiter, quote, limit=skip + header_rows + 1)
    width = max((len(r) for r in rows[skip:skip + header_rows + 1]), default=1)
    columns = _column_names(rows[skip:skip + header_rows], width) if header_rows else \
        [f"column_{j + 1}" for j in range(width)]
    spec = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in columns) + "}"
    q = _lit(quote) if quote else "''"
    new_line = {"CR": ", new_line = '\\r'", "CRLF": ", new_line = '\\r\\n'"}.get(
        line_ending(sample), "")  # of the copy DuckDB reads
    con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
    try:
        con.execute(
            f"CREATE TABLE {_q(name)} AS SELECT * FROM read_csv({_lit(str(prepared.path))}, "
            f"delim = {_lit(delimiter)}, quote = {q}, escape = {q}, header = false, "
            f"skip = {skip + header_rows}, columns = {spec}, auto_detect = false, "
            f"ignore_errors = true, store_rejects = true, max_line_size = {MAX_LINE_BYTES}"
            f"{new_line})")
        rejected = con.execute(
            "SELECT line, error_type, error_message FROM reject_errors ORDER BY line").fetchall()
    except duckdb.Error as exc:
        raise InputError(f"cannot parse the file as delimited text ({str(exc).splitlines()[0][:160]})",
                         file=path.name,
                         fix="re-export it as UTF-8 csv with one header row, one record per line and "
                             "quotes around values that contain the delimiter or a line break") from None
    table = LoadedTable(name=name, file=path.name, format=fmt,
                        encoding=prepared.encoding if fmt == "csv" else None,
                        delimiter=delimiter if fmt == "csv" else None,
                        quote=quote if fmt == "csv" else None,
                        line_ending=ending if fmt == "csv" else None,
                        header_rows=header_rows, skipped_rows=skip, columns=columns)
    table.rows = int(con.execute(f"SELECT count(*) FROM {_q(name)}").fetchone()[0])
    table.rows_rejected = len({r[0] for r in rejected})
    table.rejects = rejected  # type: ignore[attr-defined]
    return table


def _read_xlsx(con, path: Path, name: str, workdir: Path) -> LoadedTable:
    prepared = prepare_xlsx(path, workdir)
    # the working copy starts with the Excel row number; the header is row 1 by contract
    con.execute(f"CREATE TABLE {_q(name)} AS SELECT * EXCLUDE (__source_row) FROM read_csv("
                f"{_lit(str(prepared.path))}, header = true, all_varchar = true, delim = ',', "
                f"quote = '\"', escape = '\"', auto_detect = false, "
                f"columns = {{'__source_row': 'VARCHAR', "
                + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in _column_names([prepared.header],
                                                                          len(prepared.header)))
                + "})")
    cols = [r[0] for r in con.execute(f"DESCRIBE {_q(name)}").fetchall()]
    rows = int(con.execute(f"SELECT count(*) FROM {_q(name)}").fetchone()[0])
    return LoadedTable(name=name, file=path.name, format="xlsx", rows=rows, columns=cols)


def _read_parquet(con, path: Path, name: str) -> LoadedTable:
    try:
        con.execute(f"CREATE TABLE {_q(name)} AS SELECT COLUMNS(*)::VARCHAR "
                    f"FROM read_parquet({_lit(str(path))})")
    except duckdb.Error as exc:
        raise InputError(f"cannot read the parquet file ({type(exc).__name__})", file=path.name,
                         fix="re-export the table as parquet or csv") from None
    cols = [r[0] for r in con.execute(f"DESCRIBE {_q(name)}").fetchall()]
    rows = int(con.execute(f"SELECT count(*) FROM {_q(name)}").fetchone()[0])
    return LoadedTable(name=name, file=path.name, format="parquet", rows=rows, columns=cols)


def load_file(con: duckdb.DuckDBPyConnection, path: Path, name: str, workdir: Path) -> LoadedTable:
    """Load one file, whatever its extension says, as an all-text DuckDB table ``name``."""
    if path.stat().st_size == 0:
        raise InputError("the file is empty (0 bytes)", file=path.name,
                         fix="re-export the table with its header row and data")
    kind = sniff_kind(path)
    suffix = path.suffix.lower()
    if kind == "binary":
        raise InputError("the file is not a table (binary content)", file=path.name,
                         fix="deliver the table as csv, xlsx or parquet")
    if kind == "xls":
        raise InputError("old-style .xls workbooks are not read", file=path.name,
                         fix="open it in Excel and save it as .xlsx, or export the sheet as csv")
    try:
        if kind == "parquet":
            table = _read_parquet(con, path, name)
        elif kind == "xlsx":
            table = _read_xlsx(con, path, name, workdir)
        else:
            table = _read_text(con, path, name, workdir)
    except InputError:
        raise
    except (csv.Error, UnicodeError, ValueError, KeyError, EOFError, OSError, zipfile.BadZipFile,
            duckdb.Error) as exc:
        # a malformed file must give a message, never a traceback (e.g. the csv module's field
        # size limit on a file with no line break, a damaged sheet inside a valid zip)
        raise InputError(f"cannot read the file ({type(exc).__name__}: {str(exc)[:160]})",
                         file=path.name,
                         fix="re-export it as csv (UTF-8, one header row, one record per line), "
                             "xlsx or parquet") from None
    expected = ("parquet" if suffix in PARQUET_SUFFIXES else "xlsx" if suffix in XLSX_SUFFIXES
                else "csv" if suffix in TEXT_SUFFIXES else None)
    if expected != table.format:
        table.notes.append(f"named {suffix or '(no extension)'} but the content is {table.format}; "
                           f"read as {table.format}")
    return table


def input_files(path: Path) -> list[Path]:
    """The files to assess: ``path`` itself, or the table files in a folder (not recursive)."""
    if not path.exists():
        raise InputError("no such file or folder", file=str(path),
                         fix="give the path of a csv / xlsx / parquet file or of a folder of them")
    if path.is_file():
        return [path]
    known = TEXT_SUFFIXES | XLSX_SUFFIXES | PARQUET_SUFFIXES
    files = sorted(p for p in path.iterdir()
                   if p.is_file() and not p.name.startswith((".", "~$")) and p.suffix.lower() in known)
    if not files:
        raise InputError("the folder holds no csv / xlsx / parquet file", file=str(path),
                         fix="put the extract files (.csv, .txt, .asc, .xlsx, .parquet) in the folder")
    return files


# ----------------------------------------------------------------------------------------------
# Checks and profiles (SQL over the all-text table)
# ----------------------------------------------------------------------------------------------

_NUM_RE = r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?"
_ISO_RE = r"[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}([ T][0-9]{1,2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?"


def _column_stats_sql(i: int) -> list[str]:
    """Aggregates over the projection of column i: raw r{i}, trimmed x{i}, value v{i}."""
    r, x, v = f"r{i}", f"x{i}", f"v{i}"
    six = f"regexp_full_match({v}, '[0-9]{{6}}( 00:00:00)?')"
    mm = f"TRY_CAST(substr({v}, 3, 2) AS INTEGER)"
    # strlen (bytes) ≠ length (characters) only for non-ASCII text: a cheap guard before the
    # full-width and mojibake patterns; the date parsers run only on values of the right shape
    wide = f"strlen({r}) <> length({r})"
    return [
        f"count({r})",                                                   # non-NULL
        f"count_if({x} <> '')",                                          # non-empty
        f"count_if({x} <> '' AND {v} IS NULL)",                          # placeholders
        f"count({v})",                                                   # values
        f"count_if(regexp_full_match({v}, '{_NUM_RE}'))",                # numbers
        f"count_if(regexp_full_match({v}, '[-+]?[0-9]+'))",              # integers
        f"count_if(CASE WHEN regexp_full_match({v}, '{_ISO_RE}') THEN "
        f"TRY_CAST(replace(substr({v}, 1, 10), '/', '-') AS DATE) IS NOT NULL END)",  # ISO dates
        f"count_if(CASE WHEN {six} THEN try_strptime(substr({v}, 1, 6), '%y%m%d') IS NOT NULL END)",
        f"count_if(CASE WHEN {six} AND {mm} BETWEEN 51 AND 62 THEN try_strptime(substr({v}, 1, 2) || "
        f"lpad(CAST({mm} - 50 AS VARCHAR), 2, '0') || substr({v}, 5, 2), '%y%m%d') IS NOT NULL END)",
        f"count_if(CASE WHEN regexp_full_match({v}, '(19|20)[0-9]{{6}}') THEN "
        f"try_strptime({v}, '%Y%m%d') IS NOT NULL END)",                 # YYYYMMDD
        f"count_if(CASE WHEN {wide} THEN regexp_matches({r}, '{FULLWIDTH_PATTERN}') END)",
        f"count_if(CASE WHEN {wide} THEN regexp_matches({r}, '{MOJIBAKE_PATTERN}') END)",
        f"approx_count_distinct({v})",
    ]


_STAT_NAMES = ["non_null", "non_empty", "placeholders", "values", "numbers", "integers",
               "iso_dates", "yymmdd", "yymmdd_plus50", "yyyymmdd", "fullwidth", "mojibake",
               "distinct"]


def column_stats(con, table: LoadedTable) -> dict[str, dict[str, int]]:
    """Per column the counts behind type inference and the text checks (one scan per table)."""
    if not table.columns:
        return {}
    ph = ", ".join(_lit(p) for p in PLACEHOLDERS)
    inner = []
    for i, c in enumerate(table.columns):
        x = f"trim({_q(c)})"
        inner += [f"{_q(c)} AS r{i}", f"{x} AS x{i}",
                  f"CASE WHEN {x} <> '' AND upper({x}) NOT IN ({ph}) THEN {x} END AS v{i}"]
    exprs = [e for i in range(len(table.columns)) for e in _column_stats_sql(i)]
    row = con.execute(f"SELECT {', '.join(exprs)} FROM (SELECT {', '.join(inner)} "
                      f"FROM {_q(table.name)})").fetchone()
    k = len(_STAT_NAMES)
    return {c: {n: int(row[i * k + j] or 0) for j, n in enumerate(_STAT_NAMES)}
            for i, c in enumerate(table.columns)}


def infer_type(s: dict[str, int]) -> str:
    """integer | number | date | yymmdd | yymmdd_sex | yyyymmdd | text | empty, from column_stats."""
    m = s["values"]
    if m == 0:
        return "empty"
    if s["yymmdd"] + s["yymmdd_plus50"] >= FORMAT_SHARE * m and s["yymmdd_plus50"] >= 0.2 * m:
        return "yymmdd_sex"
    if s["yymmdd"] >= FORMAT_SHARE * m:
        return "yymmdd"
    if s["yyyymmdd"] >= FORMAT_SHARE * m:
        return "yyyymmdd"
    if s["iso_dates"] >= TYPE_SHARE * m:
        return "date"
    if s["integers"] >= TYPE_SHARE * m:
        return "integer"
    if s["numbers"] >= TYPE_SHARE * m:
        return "number"
    return "text"


def _is_numeric(kind: str) -> bool:
    return kind in ("integer", "number")


def _show(column: str, value) -> str:
    """An example value for a report: masked when the column name says it is personal."""
    if value is None:
        return "∅"
    text = str(value)
    if PERSONAL_NAME.search(column):
        if re.fullmatch(r"[0-9]{6}", text):  # a packed date code: keep only the month part
            return f"**{text[2:4]}**"
        return str(mask_value(text, "account"))
    if re.search(r"[0-9]{11,}", text):  # a long digit run may be an id, card or phone number
        return str(mask_value(text, "account"))
    return text if len(text) <= 40 else text[:37] + "…"


class _Findings:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def add(self, check: str, table: str, column: str | None, affected: int, total: int,
            example: str, fix_zh: str, fix_en: str, severity: str | None = None) -> None:
        info = GENERIC_CHECKS[check]
        self.rows.append({
            "table": table, "column": column, "check": check, "dimension": info.dimension,
            "severity": severity or info.severity, "rows_affected": int(affected),
            "rows_total": int(total), "share": affected / total if total else 1.0,
            "example": example, "fix_zh": fix_zh, "fix_en": fix_en,
        })

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=FINDING_COLUMNS)
        if frame.empty:
            return frame.astype({"rows_affected": "int64", "rows_total": "int64",
                                 "share": "float64"})
        order = {s: i for i, s in enumerate(SEVERITIES)}
        return (frame.assign(_s=frame["severity"].map(order))
                .sort_values(["_s", "table", "check"], kind="stable")
                .drop(columns="_s").reset_index(drop=True))


def _first_value(con, table: str, where: str, column: str) -> str:
    row = con.execute(f"SELECT {_q(column)} FROM {_q(table)} WHERE {where} LIMIT 1").fetchone()
    return _show(column, row[0] if row else None)


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "—"


def check_table(con, table: LoadedTable, stats_by_col: dict[str, dict[str, int]],
                types: dict[str, str], out: _Findings, today: dt.date) -> None:
    """The schema-free checks of one loaded table, appended to ``out``."""
    t, n = table.name, table.rows
    if table.format == "csv" and table.encoding not in ("utf-8", "utf-8-sig", None):
        out.add("encoding_non_utf8", t, None, n, n, table.encoding or "",
                f"文件 {table.file} 以 {table.encoding} 编码提供，已自动转换。今后请统一以 UTF-8 导出。",
                f"File {table.file} is {table.encoding}, converted automatically. Please export "
                "UTF-8 from now on.")
    for note in table.notes:
        out.add("file_format_note", t, None, 0, n, note,
                f"文件 {table.file}：扩展名与内容不符（{note}）。请按内容使用正确的扩展名。",
                f"File {table.file}: {note}. Please give the file the extension of its content.")
    if table.line_ending in ("CR", "mixed"):
        out.add("file_format_note", t, None, 0, n, f"line endings {table.line_ending}",
                f"文件 {table.file} 的换行符为 {table.line_ending}（已正确读取）。今后请使用 LF 或 CRLF。",
                f"File {table.file} uses {table.line_ending} line endings (read correctly). "
                "Please use LF or CRLF from now on.")
    rejects = getattr(table, "rejects", [])
    if rejects:
        line, kind, msg = rejects[0]
        total = n + table.rows_rejected
        out.add("rejected_rows", t, None, table.rows_rejected, total,
                f"line {line}: {kind.lower()}",
                f"文件 {table.file} 有 {table.rows_rejected} 行结构错误未能读取（首个在第 {line} 行：{msg}）。"
                "请检查这些行的分隔符个数与引号是否闭合后重新导出。",
                f"{table.rows_rejected} line(s) of {table.file} could not be read (first at line "
                f"{line}: {msg}). Please check the number of delimiters and closing quotes on "
                "these lines and export again.",
                severity="blocker" if total and table.rows_rejected >= 0.2 * total else None)
    if n == 0:
        out.add("empty_table", t, None, 0, 0, "",
                f"文件 {table.file} 没有数据行。请检查抽数条件后重新提供。",
                f"File {table.file} has no data rows. Please check the extraction and deliver "
                "it again.")
        return

    dup = con.execute(f"SELECT count(*) - (SELECT count(*) FROM (SELECT DISTINCT * FROM {_q(t)})) "
                      f"FROM {_q(t)}").fetchone()[0]
    if dup:
        out.add("duplicate_rows", t, None, dup, n, "",
                f"{table.file} 有 {dup:,} 行与其他行完全相同。请确认是否重复抽取，每条记录只保留一行。",
                f"{table.file} has {dup:,} row(s) identical to another row. Please check for a "
                "double extraction and deliver each record once.")
    key = likely_key(table, stats_by_col)
    if key:
        kx = _q(key)
        extra = con.execute(f"SELECT count({kx}) - count(DISTINCT {kx}) FROM {_q(t)}").fetchone()[0]
        if extra:
            ex = con.execute(f"SELECT {kx} FROM {_q(t)} WHERE {kx} IS NOT NULL GROUP BY 1 "
                             f"HAVING count(*) > 1 ORDER BY 1 LIMIT 1").fetchone()
            out.add("duplicate_key", t, key, extra, n, _show(key, ex[0] if ex else None),
                    f"{table.file} 的 {key}（疑似主键）有 {extra:,} 个重复值。请确认口径，每个主键只保留一行。",
                    f"{key} in {table.file} (the likely key) repeats {extra:,} time(s). Please "
                    "deliver one row per key or tell us the real key.")

    for c in table.columns:
        s, kind, x = stats_by_col[c], types[c], _q(c)
        empty = n - s["non_empty"]
        if empty:
            out.add("null_values", t, c, empty, n, "",
                    f"{table.file} 的 {c} 有 {empty:,} 行为空（{_pct(empty, n)}）。请从源系统补充或说明原因。",
                    f"{c} in {table.file} is empty in {empty:,} row(s) ({_pct(empty, n)}). Please "
                    "fill it from the source system or tell us why it has no value.",
                    severity="major" if empty >= NULL_MAJOR_SHARE * n else None)
        if s["placeholders"]:
            ph = ", ".join(_lit(p) for p in PLACEHOLDERS)
            where = f"upper(trim({x})) IN ({ph})"
            values = [r[0] for r in con.execute(
                f"SELECT DISTINCT trim({x}) FROM {_q(t)} WHERE {where} ORDER BY 1 LIMIT 3").fetchall()]
            shown = ", ".join(f"'{v}'" for v in values)
            out.add("placeholder_value", t, c, s["placeholders"], n, shown,
                    f"{table.file} 的 {c} 有 {s['placeholders']:,} 行用 {shown} 代替空值。"
                    "请导出真实值或留空，并说明其含义（未知 / 不适用）。",
                    f"{c} in {table.file} holds {shown} instead of a value in "
                    f"{s['placeholders']:,} row(s). Please export the real value or leave it empty, "
                    "and say what it means (unknown / not applicable).")
        if kind in ("yymmdd", "yyyymmdd", "yymmdd_sex"):
            fmt = "YYYYMMDD" if kind == "yyyymmdd" else "YYMMDD"
            lo, hi = con.execute(f"SELECT min(trim({x})), max(trim({x})) FROM {_q(t)} "
                                 f"WHERE trim({x}) <> ''").fetchone()
            century = ("两位年份无法区分 19xx 与 20xx，需在映射中指定世纪。"
                       if fmt == "YYMMDD" else "")
            century_en = (" Two-digit years do not say 19xx or 20xx; the mapping must name the "
                          "century." if fmt == "YYMMDD" else "")
            out.add("date_text_format", t, c, s["values"], n,
                    f"{_show(c, lo)} … {_show(c, hi)}" if kind != "yymmdd_sex" else _show(c, lo),
                    f"{table.file} 的 {c} 是 {fmt} 文本日期（{s['values']:,} 行）。{century}"
                    "请以 YYYY-MM-DD 日期格式导出。",
                    f"{c} in {table.file} holds dates as {fmt} text ({s['values']:,} rows).{century_en}"
                    " Please export dates as YYYY-MM-DD.")
        if kind == "yymmdd_sex":
            ex = _first_value(con, t, f"TRY_CAST(substr(trim({x}), 3, 2) AS INTEGER) > 50", c)
            out.add("encoded_sex_in_date", t, c, s["yymmdd_plus50"], s["values"], ex,
                    f"{table.file} 的 {c} 是 YYMMDD 出生日期，且 {s['yymmdd_plus50']:,} 行"
                    f"（{_pct(s['yymmdd_plus50'], s['values'])}）的月份加了 50——月份 > 50 表示女性。"
                    "请分列提供性别与出生日期，或在映射文件中解码（月份 − 50）。",
                    f"{c} in {table.file} is a YYMMDD birth date whose month carries +50 in "
                    f"{s['yymmdd_plus50']:,} rows ({_pct(s['yymmdd_plus50'], s['values'])}): a month "
                    "above 50 marks a woman. Please deliver sex and birth date as separate columns, "
                    "or decode it in the mapping (month − 50).")
        if kind in ("integer", "number", "date"):
            ok = s["numbers"] if kind != "date" else s["iso_dates"]
            bad = s["values"] - ok
            if bad:
                cond = (f"NOT regexp_full_match(trim({x}), '{_NUM_RE}')" if kind != "date"
                        else f"NOT (regexp_full_match(trim({x}), '{_ISO_RE}') AND TRY_CAST("
                             f"replace(substr(trim({x}), 1, 10), '/', '-') AS DATE) IS NOT NULL)")
                ph = ", ".join(_lit(p) for p in PLACEHOLDERS)
                ex = _first_value(con, t, f"trim({x}) <> '' AND upper(trim({x})) NOT IN ({ph}) "
                                          f"AND {cond}", c)
                what = ("数值", "a number") if kind != "date" else ("日期", "a date")
                out.add("mixed_types", t, c, bad, s["values"], ex,
                        f"{table.file} 的 {c} 绝大多数为{what[0]}，但有 {bad:,} 行不是（示例：{ex}）。请更正这些值。",
                        f"{c} in {table.file} is {what[1]} in most rows but not in {bad:,} "
                        f"(e.g. {ex}). Please correct these values.")
        if s["fullwidth"]:
            ex = _first_value(con, t, f"regexp_matches({x}, '{FULLWIDTH_PATTERN}')", c)
            out.add("fullwidth_characters", t, c, s["fullwidth"], n, ex,
                    f"{table.file} 的 {c} 有 {s['fullwidth']:,} 行含全角字母或数字（示例：{ex}）。请转换为半角。",
                    f"{c} in {table.file} holds full-width letters or digits in {s['fullwidth']:,} "
                    f"row(s) (e.g. {ex}). Please convert them to half-width.")
        if s["mojibake"]:
            ex = _first_value(con, t, f"regexp_matches({x}, '{MOJIBAKE_PATTERN}')", c)
            out.add("mojibake", t, c, s["mojibake"], n, ex,
                    f"{table.file} 的 {c} 有 {s['mojibake']:,} 行乱码（示例：{ex}），通常是 GBK 与 UTF-8 混用所致。"
                    "请统一以 UTF-8 重新导出。",
                    f"{c} in {table.file} is garbled in {s['mojibake']:,} row(s) (e.g. {ex}), "
                    "usually GBK and UTF-8 mixed up. Please export again in UTF-8.")
        _check_range(con, table, c, kind, s, out, today)


def _check_range(con, table: LoadedTable, c: str, kind: str, s: dict[str, int], out: _Findings,
                 today: dt.date) -> None:
    t, x = table.name, _q(c)
    if _is_numeric(kind):
        v = f"TRY_CAST(trim({x}) AS DOUBLE)"
        neg, pos, bad_age = con.execute(
            f"SELECT count_if({v} < 0), count_if({v} > 0), "
            f"count_if({v} < 0 OR {v} > 120) FROM {_q(t)}").fetchone()
        if AGE_NAME.match(c) and bad_age:
            ex = _first_value(con, t, f"{v} < 0 OR {v} > 120", c)
            out.add("out_of_range", t, c, bad_age, s["numbers"], ex,
                    f"{table.file} 的 {c}（年龄）有 {bad_age:,} 行不在 0–120 之间（示例：{ex}）。请核对更正。",
                    f"{c} (an age) in {table.file} lies outside 0–120 in {bad_age:,} row(s) "
                    f"(e.g. {ex}). Please check and correct them.")
        elif neg and pos and neg <= RARE_NEGATIVE_SHARE * (neg + pos):
            ex = _first_value(con, t, f"{v} < 0", c)
            out.add("out_of_range", t, c, neg, s["numbers"], ex,
                    f"{table.file} 的 {c} 几乎全为正数，但有 {neg:,} 行为负数（示例：{ex}）。请确认符号口径。",
                    f"{c} in {table.file} is positive except in {neg:,} row(s) (e.g. {ex}). Please "
                    "check the sign convention.")
    elif kind in ("date", "yyyymmdd"):
        d = (f"TRY_CAST(replace(substr(trim({x}), 1, 10), '/', '-') AS DATE)" if kind == "date"
             else f"CAST(try_strptime(trim({x}), '%Y%m%d') AS DATE)")
        where = f"{d} < DATE '1900-01-01' OR {d} > DATE '{today.isoformat()}'"
        bad = con.execute(f"SELECT count_if({where}) FROM {_q(t)}").fetchone()[0]
        if bad:
            ex = _first_value(con, t, where, c)
            out.add("out_of_range", t, c, bad, s["values"], ex,
                    f"{table.file} 的 {c} 有 {bad:,} 行早于 1900 年或晚于今天（示例：{ex}）。"
                    "请核对是否为默认值（如 9999-12-31）并更正或置空。",
                    f"{c} in {table.file} is before 1900 or after today in {bad:,} row(s) "
                    f"(e.g. {ex}). Please check for default values such as 9999-12-31 and "
                    "correct or blank them.")


def likely_key(table: LoadedTable, stats_by_col: dict[str, dict[str, int]]) -> str | None:
    """The column that looks like the table's key: an id-like name (or the first column) with
    values in ≥ 95% of rows and (approximately) ≥ 95% distinct."""
    n = table.rows
    if not n:
        return None
    candidates = [c for c in table.columns if KEY_NAME.search(c)] + table.columns[:1]
    for c in candidates:
        s = stats_by_col[c]
        if s["values"] >= 0.95 * n and s["distinct"] >= 0.95 * s["values"]:
            return c
    return None


def profile_table(con, table: LoadedTable, stats_by_col: dict[str, dict[str, int]],
                  types: dict[str, str], max_top: int = 5) -> list[dict]:
    """One compact profile row per column: type, fill, distinct, min / median / max, top values."""
    records = []
    n = table.rows
    for c in table.columns:
        s, kind, x = stats_by_col[c], types[c], _q(c)
        lo = med = hi = None
        if _is_numeric(kind):
            v = f"TRY_CAST(trim({x}) AS DOUBLE)"
            lo, med, hi = con.execute(f"SELECT min({v}), quantile_cont({v}, 0.5), max({v}) "
                                      f"FROM {_q(table.name)}").fetchone()
        elif kind != "text" and kind != "empty":
            lo, hi = con.execute(f"SELECT min(trim({x})), max(trim({x})) FROM {_q(table.name)} "
                                 f"WHERE trim({x}) <> ''").fetchone()
        top = ""
        if s["non_empty"] and s["distinct"] <= 50 and not PERSONAL_NAME.search(c):
            rows = con.execute(f"SELECT trim({x}) AS v, count(*) AS k FROM {_q(table.name)} "
                               f"WHERE trim({x}) <> '' GROUP BY 1 ORDER BY k DESC, 1 "
                               f"LIMIT {int(max_top)}").fetchall()
            top = "; ".join(f"{_show(c, v)} {100 * k / s['non_empty']:.1f}%" for v, k in rows)

        def txt(v):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return None
            if isinstance(v, float):
                return f"{v:.6g}"
            return _show(c, v)
        records.append({"table": table.name, "column": c, "type": kind, "rows": n,
                        "non_null_share": round(s["non_empty"] / n, 6) if n else 0.0,
                        "distinct": s["distinct"], "min": txt(lo), "median": txt(med),
                        "max": txt(hi), "top_values": top})
    return records


# ----------------------------------------------------------------------------------------------
# Information value
# ----------------------------------------------------------------------------------------------

def _find_column(table: LoadedTable, name: str) -> str | None:
    exact = [c for c in table.columns if c == name]
    if exact:
        return exact[0]
    folded = [c for c in table.columns if c.strip().lower() == name.strip().lower()]
    return folded[0] if folded else None


def information_values(con, table: LoadedTable, target: str, positive: str,
                       types: dict[str, str], stats_by_col: dict[str, dict[str, int]]
                       ) -> dict[str, float | None]:
    """Column → information value against ``target == positive`` (rows with a target only).

    Categorical (text, date-code) columns: each category its own bin, missing its own bin, 0.5
    added to zero counts (analysis.stats.woe_table_from_counts, as stats.information_value);
    the counts come from one GROUP BY. Numeric columns: stats.information_value_numeric
    (monotone quantile bins). Columns with more than IV_MAX_CATEGORIES categories get None.
    """
    y = f"(trim({_q(target)}) = {_lit(positive)})"
    has_target = f"trim({_q(target)}) <> ''"
    events, total = con.execute(f"SELECT count_if({y}), count(*) FROM {_q(table.name)} "
                                f"WHERE {has_target}").fetchone()
    if not events or events == total:
        raise InputError(f"the target has {'no' if not events else 'only'} rows equal to "
                         f"{positive!r}", file=table.file, column=target,
                         fix="give --positive a value the target column takes, and check that "
                             "the other value occurs too")
    out: dict[str, float | None] = {}
    for c in table.columns:
        if c == target:
            continue
        kind, x = types[c], _q(c)
        try:
            if _is_numeric(kind):
                frame = con.execute(f"SELECT TRY_CAST(trim({x}) AS DOUBLE) AS x, "
                                    f"CAST({y} AS INTEGER) AS y FROM {_q(table.name)} "
                                    f"WHERE {has_target}").df()
                out[c] = stats.information_value_numeric(frame["x"].to_numpy(dtype=float),
                                                         frame["y"].to_numpy(dtype=float))
            elif stats_by_col[c]["distinct"] <= IV_MAX_CATEGORIES * 1.1:
                counts = con.execute(
                    f"SELECT coalesce(nullif(trim({x}), ''), '(missing)') AS bin, "
                    f"count_if({y}) AS ev, count_if(NOT {y}) AS ne FROM {_q(table.name)} "
                    f"WHERE {has_target} GROUP BY 1 ORDER BY 1").fetchall()
                if len(counts) > IV_MAX_CATEGORIES:
                    out[c] = None
                    continue
                woe = stats.woe_table_from_counts([r[0] for r in counts], [r[1] for r in counts],
                                                  [r[2] for r in counts])
                out[c] = float(woe["iv"].sum())
            else:
                out[c] = None
        except InputError:
            out[c] = None  # e.g. a column with no values among the rows with a target
    return {k: (round(v, 12) if v is not None else None) for k, v in out.items()}


# ----------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------

def assess(input_path: str | Path, *, target: str | None = None, positive: str | None = None,
           today: dt.date | None = None) -> Assessment:
    """Read, profile and check every table of ``input_path``; with a target, add IVs."""
    input_path = Path(input_path)
    if (target is None) != (positive is None):
        raise InputError("--target and --positive go together", column="--target" if target is None
                         else "--positive", fix="give both, e.g. --target y --positive yes")
    files = input_files(input_path)
    today = today or dt.date.today()
    found = _Findings()
    tables: list[LoadedTable] = []
    profiles: list[dict] = []
    iv: dict[str, float | None] | None = None
    errors: list[InputError] = []
    with tempfile.TemporaryDirectory(prefix="playbook-assess-") as tmp:
        workdir = Path(tmp)
        con = duckdb.connect(str(workdir / "assess.duckdb"))
        con.execute("SET enable_progress_bar = false")
        try:
            taken: set[str] = set()
            for path in files:
                name = _table_name(path, taken)
                try:
                    table = load_file(con, path, name, workdir)
                except InputError as exc:
                    if len(files) == 1:
                        raise
                    errors.append(exc)
                    found.add("unreadable_file", name, None, 0, 0, path.name,
                              f"文件 {path.name} 无法读取：{exc}",
                              f"File {path.name} cannot be read: {exc}")
                    continue
                tables.append(table)
                stats_by_col = column_stats(con, table)
                types = {c: infer_type(s) for c, s in stats_by_col.items()}
                check_table(con, table, stats_by_col, types, found, today)
                profiles.extend(profile_table(con, table, stats_by_col, types))
                if target is not None:
                    col = _find_column(table, target)
                    if col is not None:
                        iv = {**(iv or {}), **{
                            (k if len(files) == 1 else f"{table.name}.{k}"): v
                            for k, v in information_values(con, table, col, positive, types,
                                                           stats_by_col).items()}}
        finally:
            con.close()
    if not tables:
        first = errors[0]
        raise InputError(f"no file in the folder could be read; first: {first}",
                         file=str(input_path), fix="deliver the tables as csv, xlsx or parquet "
                                                   "files with a header row")
    if target is not None and iv is None:
        names = ", ".join(tables[0].columns[:20])
        raise InputError(f"no table has the target column {target!r}", file=tables[0].file,
                         column=target, fix=f"use one of the columns: {names}")
    return Assessment(tables=tables, findings=found.frame(),
                      profiles=pd.DataFrame(profiles, columns=[
                          "table", "column", "type", "rows", "non_null_share", "distinct", "min",
                          "median", "max", "top_values"]),
                      iv=iv, target=target, positive=positive)


def _table_record(t: LoadedTable) -> dict:
    d = asdict(t)
    d["column_names"] = d.pop("columns")
    d["columns"] = len(t.columns)
    return d


def assessment_json(result: Assessment) -> dict:
    """The contract of DIR/assessment.json (DESIGN.md §7): tables, findings and, with a target, iv."""
    def clean(v):
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, np.generic):
            return v.item()
        return v
    doc = {
        "tables": [_table_record(t) for t in result.tables],
        "findings": [{k: clean(v) for k, v in r.items()}
                     for r in result.findings.to_dict("records")],
        "counts_by_severity": {s: int((result.findings["severity"] == s).sum()) for s in SEVERITIES},
        "profiles": [{k: clean(v) for k, v in r.items()}
                     for r in result.profiles.to_dict("records")],
    }
    if result.target is not None:
        doc["target"] = result.target
        doc["positive"] = result.positive
        doc["iv"] = result.iv or {}
    return doc


LABELS = {
    "title": ("数据评估报告", "Data assessment"),
    "tables": ("数据文件", "Files read"),
    "findings": ("问题清单", "Findings"),
    "profiles": ("字段概况", "Column profiles"),
    "iv": ("信息值 (IV)", "Information value (IV)"),
    "file": ("文件", "File"), "table": ("表", "Table"), "format": ("格式", "Format"),
    "rows": ("行数", "Rows"), "columns": ("列数", "Columns"), "encoding": ("编码", "Encoding"),
    "delimiter": ("分隔符", "Delimiter"), "quote": ("引号", "Quote"),
    "line_ending": ("换行符", "Line endings"), "header_rows": ("表头行数", "Header rows"),
    "rows_rejected": ("未能读取行数", "Rows rejected"), "column": ("字段", "Column"),
    "check": ("问题类型", "Issue"), "severity": ("严重程度", "Severity"),
    "rows_affected": ("影响行数", "Rows affected"), "example": ("示例（已脱敏）", "Example (masked)"),
    "fix": ("整改要求", "Request to IT"), "type": ("推断类型", "Inferred type"),
    "non_null_share": ("非空占比", "Filled"), "distinct": ("不同值", "Distinct"),
    "min": ("最小", "Min"), "median": ("中位数", "Median"), "max": ("最大", "Max"),
    "top_values": ("常见值", "Top values"), "strength": ("预测力", "Strength"),
    "summary": ("{n} 个文件，{rows} 行；问题 {f} 项：阻断 {b}、重要 {m}、一般 {mi}。",
                "{n} file(s), {rows} rows; {f} findings: {b} blocker, {m} major, {mi} minor."),
    "target": ("目标变量：{t} = {p}（事件）", "Target: {t} = {p} (the event)"),
    "truncated": ("（仅显示前 {k} 项，完整清单见 findings.xlsx）",
                  "(first {k} shown; the full list is in findings.xlsx)"),
}


def _iv_strength(v: float | None, lang: int) -> str:
    if v is None:
        return "—"
    bands = [(0.02, ("无", "none")), (0.1, ("弱", "weak")), (0.3, ("中", "medium")),
             (0.5, ("强", "strong")), (math.inf, ("过强，疑似信息泄露", "suspicious (leak?)"))]
    return next(label[lang] for cut, label in bands if v < cut)


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))}</td>"
                                    for v in row) + "</tr>" for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(result: Assessment, language: str = "en", max_findings: int = 200) -> str:
    """A compact, self-contained html report (inline css, no scripts, no images)."""
    lang = 0 if language == "zh" else 1
    L = {k: v[lang] for k, v in LABELS.items()}
    f = result.findings
    counts = {s: int((f["severity"] == s).sum()) for s in SEVERITIES}
    parts = [f"<h1>{L['title']}</h1>",
             "<p>" + L["summary"].format(n=len(result.tables),
                                         rows=f"{sum(t.rows for t in result.tables):,}",
                                         f=len(f), b=counts["blocker"], m=counts["major"],
                                         mi=counts["minor"]) + "</p>"]
    tables = pd.DataFrame([{L["file"]: t.file, L["table"]: t.name, L["format"]: t.format,
                            L["rows"]: f"{t.rows:,}", L["columns"]: len(t.columns),
                            L["encoding"]: t.encoding or "", L["delimiter"]: repr(t.delimiter)
                            if t.delimiter else "", L["quote"]: t.quote or "",
                            L["line_ending"]: t.line_ending or "", L["header_rows"]: t.header_rows,
                            L["rows_rejected"]: t.rows_rejected} for t in result.tables])
    parts += [f"<h2>{L['tables']}</h2>", _html_table(tables)]
    parts.append(f"<h2>{L['findings']}</h2>")
    if len(f) > max_findings:
        parts.append(f"<p>{L['truncated'].format(k=max_findings)}</p>")
    shown = f.head(max_findings)
    ft = pd.DataFrame({
        L["severity"]: [SEVERITY_LABELS[s][language] for s in shown["severity"]],
        L["table"]: shown["table"], L["column"]: shown["column"].fillna(""),
        L["check"]: [(GENERIC_CHECKS[c].label_zh, GENERIC_CHECKS[c].label_en)[lang]
                     for c in shown["check"]],
        L["rows_affected"]: [f"{int(v):,}" for v in shown["rows_affected"]],
        L["example"]: shown["example"].fillna(""),
        L["fix"]: shown["fix_zh" if lang == 0 else "fix_en"],
    })
    parts.append(_html_table(ft))
    if result.target is not None:
        parts += [f"<h2>{L['iv']}</h2>",
                  f"<p>{L['target'].format(t=html.escape(result.target), p=html.escape(result.positive or ''))}</p>"]
        iv = sorted((result.iv or {}).items(), key=lambda kv: -(kv[1] if kv[1] is not None else -1))
        parts.append(_html_table(pd.DataFrame(
            [{L["column"]: k, "IV": f"{v:.4f}" if v is not None else "—",
              L["strength"]: _iv_strength(v, lang)} for k, v in iv])))
    parts.append(f"<h2>{L['profiles']}</h2>")
    for name, group in result.profiles.groupby("table", sort=False):
        parts.append(f"<h3>{html.escape(str(name))}</h3>")
        g = group.drop(columns=["table", "rows"]).assign(
            non_null_share=lambda d: [f"{100 * v:.1f}%" for v in d["non_null_share"]])
        parts.append(_html_table(g.rename(columns={k: L[k] for k in g.columns if k in L})))
    css = ("body{font-family:'Noto Sans CJK SC','Microsoft YaHei',Arial,sans-serif;margin:2em;"
           "color:#1b2430;max-width:1400px}table{border-collapse:collapse;margin:0.5em 0 1.5em;"
           "font-size:12px}th{background:#0B2545;color:#fff;text-align:left}th,td{border:1px solid "
           "#c9cdd2;padding:3px 6px;vertical-align:top}h1{color:#0B2545}")
    return (f"<!DOCTYPE html><html lang=\"{language}\"><head><meta charset=\"utf-8\">"
            f"<title>{L['title']}</title><style>{css}</style></head><body>"
            + "".join(parts) + "</body></html>")


def write_findings_workbook(result: Assessment, path: Path, language: str = "en") -> Path:
    """findings.xlsx: a cover sheet and the findings, via analysis.xlsx.write_sheets."""
    from analysis.xlsx import write_sheets

    lang = 0 if language == "zh" else 1
    L = {k: v[lang] for k, v in LABELS.items()}
    f = result.findings
    sheet = pd.DataFrame({
        L["severity"]: [SEVERITY_LABELS[s][language] for s in f["severity"]],
        ("质量维度", "Dimension")[lang]: [DIMENSION_LABELS[d][language] for d in f["dimension"]],
        L["table"]: f["table"], L["column"]: f["column"].fillna(""),
        L["check"]: [(GENERIC_CHECKS[c].label_zh, GENERIC_CHECKS[c].label_en)[lang]
                     for c in f["check"]],
        L["rows_affected"]: f["rows_affected"].astype("int64"),
        ("检查行数", "Rows checked")[lang]: f["rows_total"].astype("int64"),
        L["example"]: f["example"].fillna(""),
        L["fix"]: f["fix_zh" if lang == 0 else "fix_en"],
        ("检查编号", "Check ID")[lang]: f["check"],
    }).astype({L["example"]: object, L["fix"]: object})
    counts = {s: int((f["severity"] == s).sum()) for s in SEVERITIES}
    files = ", ".join(t.file for t in result.tables)
    cover = ([f"文件：{files}", f"问题：阻断 {counts['blocker']}、重要 {counts['major']}、一般 {counts['minor']}",
              "每行一个问题：在哪个文件、哪个字段、影响多少行、一个示例（已脱敏），以及需要科技部门如何整改。",
              "请按严重程度从阻断到一般依次处理；整改后重新提供文件即可复核。"] if lang == 0 else
             [f"Files: {files}",
              f"Findings: {counts['blocker']} blocker, {counts['major']} major, {counts['minor']} minor",
              "Each row is one problem: the file, the column, how many rows, one (masked) example "
              "and what the bank's IT needs to do.",
              "Work from blockers to minor findings; deliver the files again after the fix and we "
              "re-check them."])
    sheets = {("问题清单", "Findings")[lang]: sheet}
    if result.iv is not None:
        sheets["IV"] = pd.DataFrame([{L["column"]: k, "IV": v} for k, v in result.iv.items()])
    return write_sheets(path, sheets, cover_title=("数据评估问题清单", "Data assessment findings")[lang],
                        cover_lines=cover)


def run_assess(input_path: str | Path, out_dir: str | Path, *, target: str | None = None,
               positive: str | None = None, language: str = "en") -> Assessment:
    """`playbook assess`: assess, then write assessment.html, findings.xlsx and assessment.json."""
    if language not in ("zh", "en"):
        raise InputError(f"unknown language {language!r}", column="--language", fix="use zh or en")
    result = assess(input_path, target=target, positive=positive)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder ({exc.strerror})", file=str(out),
                         fix="give --out a folder you can write to") from None
    (out / "assessment.json").write_text(
        json.dumps(assessment_json(result), ensure_ascii=False, indent=1), encoding="utf-8")
    (out / "assessment.html").write_text(render_html(result, language), encoding="utf-8")
    write_findings_workbook(result, out / "findings.xlsx", language)
    return result


# ----------------------------------------------------------------------------------------------
# Mapping a bank's own extract onto the template
# ----------------------------------------------------------------------------------------------

_MAPPING_KEYS = {"column", "constant", "date", "sex", "add_months", "codes", "scale", "prefix"}
_DATE_FORMATS = ("YYMMDD", "YYYYMMDD", "YYMMDD+50")


def _mapping_error(message: str, mapping: Path, where: str, fix: str) -> InputError:
    return InputError(message, file=mapping.name, column=where, fix=fix)


def load_mapping(path: str | Path) -> dict:
    """Read and validate a mapping file (format: examples/berka/mapping.yaml)."""
    import yaml

    from analysis.schema import load_schema

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError:
        raise InputError("cannot read the mapping file", file=str(path),
                         fix="give the path of a mapping yaml such as examples/berka/mapping.yaml") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise InputError("the mapping file is not valid YAML", file=path.name,
                         row=line + 1 if line is not None else None,
                         fix="fix the indentation / quoting at that line") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tables"), dict) or not doc["tables"]:
        raise InputError("the mapping file has no `tables:` section", file=path.name,
                         fix="see examples/berka/mapping.yaml for the format")
    unknown = set(doc) - {"century", "tables"}
    if unknown:
        raise InputError(f"unknown key {sorted(unknown)[0]!r} in the mapping file", file=path.name,
                         fix="use only century and tables at the top level")
    schema = load_schema()
    for table, spec in doc["tables"].items():
        if table not in schema.tables:
            raise _mapping_error(f"unknown template table {table!r}", path, table,
                                 f"use one of: {', '.join(schema.tables)}")
        if not isinstance(spec, dict) or "from" not in spec or not isinstance(spec.get("columns"), dict):
            raise _mapping_error(f"table {table} needs `from:` and `columns:`", path, table,
                                 "see examples/berka/mapping.yaml")
        for col, rule in spec["columns"].items():
            where = f"{table}.{col}"
            if not isinstance(rule, dict) or not ({"column", "constant"} & set(rule)):
                raise _mapping_error(f"{where} needs `column:` or `constant:`", path, where,
                                     "write e.g. {column: client_id} or {constant: 正常}")
            bad = set(rule) - _MAPPING_KEYS
            if bad:
                raise _mapping_error(f"{where}: unknown transform {sorted(bad)[0]!r}", path, where,
                                     f"use: {', '.join(sorted(_MAPPING_KEYS))}")
            for key in ("date", "sex"):
                if key in rule and rule[key] not in _DATE_FORMATS:
                    raise _mapping_error(f"{where}: unknown date format {rule[key]!r}", path, where,
                                         f"use one of {', '.join(_DATE_FORMATS)}")
        missing = [c.name for c in schema.tables[table].columns
                   if c.required and c.name not in spec["columns"]]
        if missing:
            raise _mapping_error(f"{table}: required template column(s) not mapped: "
                                 f"{', '.join(missing)}", path, f"{table}.{missing[0]}",
                                 "map each from a source column or give a constant")
    return doc


def _date_sql(x: str, fmt: str, century: int) -> str:
    if fmt == "YYYYMMDD":
        return f"CAST(try_strptime({x}, '%Y%m%d') AS DATE)"
    yy = f"TRY_CAST(substr({x}, 1, 2) AS INTEGER)"
    mm = f"TRY_CAST(substr({x}, 3, 2) AS INTEGER)"
    dd = f"TRY_CAST(substr({x}, 5, 2) AS INTEGER)"
    if fmt == "YYMMDD+50":
        mm = f"({mm} - CASE WHEN {mm} > 50 THEN 50 ELSE 0 END)"
    # try_cast of the text keeps an impossible date (month 13) empty instead of failing
    return (f"TRY_CAST(lpad(CAST({century} + {yy} AS VARCHAR), 4, '0') || '-' || "
            f"lpad(CAST({mm} AS VARCHAR), 2, '0') || '-' || lpad(CAST({dd} AS VARCHAR), 2, '0') "
            f"AS DATE)")


def apply_mapping(mapping_path: str | Path, source_dir: str | Path, out_inbox: str | Path
                  ) -> dict[str, list[str]]:
    """Write template-shaped CSVs (one per mapped table) into ``out_inbox``.

    Source files are read as ``playbook assess`` reads them (any encoding, delimiter, line
    ending); the tables are built in DuckDB SQL. Returns, per template table, the notes an
    ingest report carries as ``conversions`` — text dates converted, placeholders read as
    empty, codes decoded — so stage 01 reports the source's quirks as findings.
    """
    mapping_path, source_dir, out_inbox = Path(mapping_path), Path(source_dir), Path(out_inbox)
    doc = load_mapping(mapping_path)
    century = int(doc.get("century", 1900))
    out_inbox.mkdir(parents=True, exist_ok=True)
    notes: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="playbook-map-") as tmp:
        workdir = Path(tmp)
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        try:
            loaded: dict[str, LoadedTable] = {}
            stats_of: dict[str, dict[str, dict[str, int]]] = {}

            def source(file: str, table: str) -> LoadedTable:
                if file not in loaded:
                    path = source_dir / file
                    if not path.is_file():
                        raise InputError(f"source file {file} not found", file=str(path),
                                         column=table, fix="check `from:` / `join:` in the mapping "
                                                           "and the source folder")
                    name = re.sub(r"\W+", "_", Path(file).stem)
                    loaded[file] = load_file(con, path, name, workdir)
                    stats_of[file] = column_stats(con, loaded[file])
                return loaded[file]

            for table, spec in doc["tables"].items():
                t_notes = notes.setdefault(table, [])
                main = source(spec["from"], table)
                aliases = [(main, "s0")]
                joins = []
                for i, j in enumerate(spec.get("join") or [], start=1):
                    other = source(j["file"], table)
                    # YAML 1.1 reads a bare `on` key as the boolean true
                    on = str(j.get("on", j.get(True, "")))
                    left = next((a for t, a in aliases if on in t.columns), None)
                    if left is None or on not in other.columns:
                        raise InputError(f"cannot join {j['file']} on {on!r}", file=mapping_path.name,
                                         column=f"{table}.join", fix="name a column both files have")
                    cond = " AND ".join(f"trim({_q(k)}) = {_lit(str(v))}"
                                        for k, v in (j.get("where") or {}).items())
                    sub = f"(SELECT * FROM {_q(other.name)}{' WHERE ' + cond if cond else ''})"
                    joins.append(f"LEFT JOIN {sub} AS s{i} ON trim({left}.{_q(on)}) = trim(s{i}.{_q(on)})")
                    aliases.append((other, f"s{i}"))

                def ref(name: str, where: str) -> tuple[str, LoadedTable, str]:
                    stem, _, col = name.rpartition(".")
                    for t, a in aliases:
                        if (not stem or t.name == stem) and col in t.columns:
                            return f"{a}.{_q(col)}", t, col
                    raise InputError(f"{where}: source column {name!r} not found",
                                     file=mapping_path.name, column=where,
                                     fix="use a column of the `from` / `join` files "
                                         "(file_stem.column when several have it)")

                ph = ", ".join(_lit(p) for p in PLACEHOLDERS)
                selects, counts = [], []
                for col, rule in spec["columns"].items():
                    where = f"{table}.{col}"
                    if "constant" in rule:
                        expr = _lit(str(rule["constant"]))
                    else:
                        raw, src, src_col = ref(str(rule["column"]), where)
                        expr = f"(CASE WHEN upper(trim({raw})) IN ({ph}) THEN NULL ELSE nullif(trim({raw}), '') END)"
                        file = next(f for f, t in loaded.items() if t is src)
                        if rule.get("date"):
                            counts.append((f"count({expr})",
                                           f"{col}: {rule['date'].replace('+50', '')} text → date "
                                           f"({src.file} {src_col}; {{n}} rows)"))
                        if rule.get("date") == "YYMMDD+50" or rule.get("sex") == "YYMMDD+50":
                            women = stats_of[file][src_col]["yymmdd_plus50"]
                            note = (f"source: {src.file} {src_col} is a YYMMDD birth date whose "
                                    f"month carries +50 for women in {women:,} rows (of "
                                    f"{stats_of[file][src_col]['values']:,}); decoded by the "
                                    f"mapping into {col}")  # one note per source column
                            note = note.rsplit(" into ", 1)[0]
                            if note not in t_notes:
                                t_notes.append(note)
                        if rule.get("sex"):
                            mm = f"TRY_CAST(substr({expr}, 3, 2) AS INTEGER)"
                            expr = f"CASE WHEN {mm} > 50 THEN 'F' WHEN {mm} IS NOT NULL THEN 'M' END"
                        elif rule.get("date"):
                            expr = _date_sql(expr, rule["date"], century)
                        if rule.get("add_months"):
                            months, _, _ = ref(str(rule["add_months"]), where)
                            expr = f"CAST({expr} + to_months(TRY_CAST(trim({months}) AS INTEGER)) AS DATE)"
                        if rule.get("codes"):
                            cases = " ".join(f"WHEN {_lit(str(k))} THEN {_lit(str(v))}"
                                             for k, v in rule["codes"].items())
                            expr = f"(CASE {expr} {cases} ELSE {expr} END)"
                            counts.append((f"count({expr})", f"{col}: codes "
                                           + ", ".join(f"{k}→{v}" for k, v in rule["codes"].items())
                                           + " ({n} rows)"))
                        if rule.get("scale") is not None:
                            expr = f"TRY_CAST({expr} AS DOUBLE) * {float(rule['scale'])!r}"
                    if rule.get("prefix"):
                        expr = f"({_lit(str(rule['prefix']))} || {expr})"
                    selects.append(f"{expr} AS {_q(col)}")
                rel = f"FROM {_q(main.name)} AS s0 {' '.join(joins)}"
                where_main = " AND ".join(f"trim(s0.{_q(k)}) = {_lit(str(v))}"
                                          for k, v in (spec.get("where") or {}).items())
                if where_main:
                    rel += f" WHERE {where_main}"
                target = out_inbox / f"{table}.csv"
                con.execute(f"COPY (SELECT {', '.join(selects)} {rel}) TO {_lit(str(target))} "
                            "(HEADER, DELIMITER ',', QUOTE '\"')")
                if counts:
                    got = con.execute(f"SELECT {', '.join(c for c, _ in counts)} {rel}").fetchone()
                    t_notes.extend(text.format(n=f"{n:,}") for (_, text), n in zip(counts, got))
                # placeholders anywhere in the source files this table reads
                for t, _ in aliases:
                    file = next(f for f, x in loaded.items() if x is t)
                    for c, st in stats_of[file].items():
                        if st["placeholders"]:
                            shown = ", ".join(f"'{r[0]}'" for r in con.execute(
                                f"SELECT DISTINCT trim({_q(c)}) FROM {_q(t.name)} WHERE "
                                f"upper(trim({_q(c)})) IN ({ph}) ORDER BY 1 LIMIT 3").fetchall())
                            t_notes.append(f"source: {t.file} {c} holds placeholder {shown} for an "
                                           f"unknown value ({st['placeholders']:,} row(s)), read as empty")
        finally:
            con.close()
    return notes


def ingest_mapped(workspace: str | Path, notes: dict[str, list[str]]) -> Path:
    """Ingest a mapped (partial) extract: tables the mapping does not deliver are treated as
    optional, so the ingest loads what there is and stage 01 reports what is missing.

    Writes runs/<run-id>/ingest.json with the mapping's notes added to each table's
    ``conversions``, and points runs/latest at it. Returns the ingest.json path.
    """
    import time

    from analysis.ingest import IngestOptions, ingest_inbox
    from analysis.runner import RunOutcome, write_manifest
    from analysis.schema import load_schema
    from analysis.workspace import Workspace

    ws = Workspace.open(workspace)
    cfg = ws.config()
    schema = load_schema()
    delivered = {p.stem for p in ws.inbox.iterdir() if p.is_file()}
    relaxed = schema.model_copy(update={"tables": {
        n: (t if n in delivered else t.model_copy(update={"required": False}))
        for n, t in schema.tables.items()}})
    opts = IngestOptions(encodings=cfg.ingest.encodings, units=cfg.ingest.units,
                         on_bad_rows=cfg.ingest.on_bad_rows, column_map=cfg.ingest.column_map)
    run_id = ws.new_run_id()
    run_dir = ws.run_dir(run_id)
    (run_dir / "results").mkdir(parents=True)
    started = time.time()
    report = ingest_inbox(ws.inbox, ws.warehouse, ws.quarantine, schema=relaxed, options=opts)
    for table, extra in notes.items():
        if table in report.tables:
            report.tables[table].conversions.extend(extra)
    path = run_dir / "ingest.json"
    path.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    write_manifest(ws, RunOutcome(run_id, run_dir), cfg, started)
    ws.set_latest(run_id)
    return path


__all__ = ["apply_mapping", "ingest_mapped", "load_mapping", "assess", "run_assess", "assessment_json", "render_html", "detect_dialect",
           "line_ending", "sniff_kind", "load_file", "information_values", "GENERIC_CHECKS",
           "LoadedTable", "Assessment"]
