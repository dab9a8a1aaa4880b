"""Load a bank's extract (inbox/) into the DuckDB warehouse, typed per the schema, with a quarantine.

Every row of every delivered file ends up either in its warehouse table or in
``quarantine/<table>.csv`` with the reason, so ``rows_in = rows_loaded + rows_quarantined``.
Typing, unit conversion and duplicate-key checks run as SQL in DuckDB; Python only streams bytes
(encoding) and reads Excel. The warehouse is built beside the old one and swapped in at the end,
so an interrupted ingest never leaves a half-written warehouse.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict

from .errors import InputError
from .readers import PreparedText, file_sha256, normalise_name, prepare_text, prepare_xlsx
from .schema import Column, Schema, Table, load_schema
from .sqltext import sql_string as _lit

TEXT_SUFFIXES = {".csv", ".txt", ".tsv"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | {".xlsx", ".parquet"}
# Delivered under a table's name but in a form we cannot read: say how to re-export, not "missing".
UNSUPPORTED_SUFFIXES = {".xls", ".xlsm", ".xlsb", ".et", ".ods", ".zip", ".gz", ".7z", ".rar", ".dbf",
                        ".json", ".dat"}

WHITESPACE = " \t\r\n\u3000\u00a0\u200b\ufeff"
# Exports from core systems write these for "no value"; they are read as empty, never as text.
NULL_TOKENS = ("-", "--", "NULL", "null", "Null", "\\N", "N/A", "n/a", "NA", "#N/A", "nan", "NaN", "None")
FULLWIDTH_DIGITS = "０１２３４５６７８９"
NUMBER_FROM = FULLWIDTH_DIGITS + "．－＋ｅＥ" + ",，'" + " \u3000\u00a0" + "¥￥$"
NUMBER_TO = "0123456789" + ".-+eE"  # the rest of NUMBER_FROM is deleted by translate()
DATE_FROM = FULLWIDTH_DIGITS + "／－．"
DATE_TO = "0123456789" + "/-."
FULLWIDTH_ASCII = "".join(chr(c) for c in range(0xFF01, 0xFF5F))
HALFWIDTH_ASCII = "".join(chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F))
DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d", "%Y年%m月%d日", "%Y.%m.%d",
                "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M",
                "%Y-%m-%dT%H:%M:%S")
MONTH_FORMATS = ("%Y-%m", "%Y%m", "%Y/%m", "%Y年%m月", "%Y.%m")
TRUE_TEXT = ("1", "1.0", "TRUE", "T", "Y", "YES", "是", "真")
FALSE_TEXT = ("0", "0.0", "FALSE", "F", "N", "NO", "否", "假")
NUMERIC_SQL_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                     "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
INTEGER_SQL_TYPES = NUMERIC_SQL_TYPES[:10]

TYPE_WORDS = {"decimal": "a number", "integer": "a whole number", "date": "a date",
              "month": "a month", "boolean": "a yes/no value", "string": "text", "category": "text"}


class IngestOptions(BaseModel):
    """The ``ingest:`` section of engagement.yaml."""

    model_config = ConfigDict(extra="forbid")

    encodings: dict[str, str] = {}
    """file name in inbox/ → declared encoding (absent → auto-detect)."""
    units: dict[str, Literal["元", "万元"]] = {}
    """"table.column" → the unit the bank delivered, overriding the schema's declaration."""
    on_bad_rows: Literal["stop", "quarantine"] = "stop"
    column_map: dict[str, dict[str, str]] = {}
    """table → {bank's column name → template column name}."""


@dataclass
class TableIngest:
    """What happened to one delivered file."""

    table: str
    file: str
    format: str
    encoding: str | None
    delimiter: str | None
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    conversions: list[str] = field(default_factory=list)
    unexpected_columns: list[str] = field(default_factory=list)
    renamed_columns: dict[str, str] = field(default_factory=dict)
    missing_optional_columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """loaded as delivered, but a person should look (e.g. garbled text); never quotes values."""
    orphan_references: dict[str, int] = field(default_factory=dict)
    """column → rows whose value is not in the referenced table (loaded; stage 01 assesses them)."""
    sha256: str = ""
    seconds: float = 0.0


@dataclass
class IngestReport:
    """Per-table accounting of an ingest; ``to_dict()`` is what runs/<run-id>/ingest.json holds."""

    tables: dict[str, TableIngest] = field(default_factory=dict)
    missing_optional_tables: list[str] = field(default_factory=list)
    unknown_files: list[str] = field(default_factory=list)
    warehouse: str = ""
    quarantine_dir: str = ""
    on_bad_rows: str = "stop"
    seconds: float = 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["tables"] = {name: asdict(t) for name, t in self.tables.items()}
        return out

    @property
    def rows_quarantined(self) -> int:
        return sum(t.rows_quarantined for t in self.tables.values())


# ---------------------------------------------------------------- small SQL helpers

def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'




def _list(items: tuple[str, ...]) -> str:
    return "[" + ", ".join(_lit(i) for i in items) + "]"


def _any_equal(expr: str, values: tuple) -> str:
    """``expr`` equals one of ``values``, as an OR chain.

    Not ``IN (…)``: DuckDB rewrites a long IN list over an expression into a hash MARK join,
    which is slower here and does not keep the file's row order.
    """
    return "(" + " OR ".join(f"{expr} = {_lit(v) if isinstance(v, str) else v}" for v in values) + ")"


_WS_CODES = tuple(ord(c) for c in WHITESPACE)

# Typing runs as stacked projections, one step per level, so that no intermediate value is
# computed twice (DuckDB does not share sub-expressions inside CASE / OR):
#   L0  o, e: code points of the first / last character; r: delivered non-empty; f: note flags
#   L1  u: trimmed text (trim() with a character list only where an end is whitespace)
#   L2  k: clean value (placeholders → NULL)
#   L3  x: intermediate (number text → DOUBLE, full-width date digits → ASCII, …)
#   L4  t: typed value, in 元 for amounts
#   L5  the reason a row is rejected, first failing column in schema order


def _non_ascii(v: str) -> str:
    return f"strlen({v}) <> length({v})"


def _number_text(v: str) -> str:
    return f"translate({v}, {_lit(NUMBER_FROM)}, {_lit(NUMBER_TO)})"


def _to_double(v: str) -> str:
    """Text to DOUBLE; the slow clean-up (separators, full-width digits, ¥) only where plain fails."""
    return f"coalesce(TRY_CAST({v} AS DOUBLE), TRY_CAST({_number_text(v)} AS DOUBLE))"


def _text_typing(col: Column) -> tuple[str, str]:
    """(x, t) templates over ``{k}`` (clean text) and ``{x}`` that type a text column."""
    if col.type == "string":
        return "{k}", "{x}"
    if col.type == "category":
        return "{k}", "{x}"  # full-width letters are fixed per distinct value after the load
    if col.type == "decimal":
        if col.unit == "rate":
            # "3.85%" is a percentage written out; rates are stored as decimals (0.0385)
            stripped = f"rtrim({{k}}, {_lit('%％')})"
            x = (f"CASE WHEN ends_with({{k}}, '%') OR ends_with({{k}}, '％') "
                 f"THEN {_to_double(stripped)} / 100 ELSE {_to_double('{k}')} END")
        else:
            x = _to_double("{k}")
        return x, "CASE WHEN isfinite({x}) THEN {x} END"
    if col.type == "integer":
        # TRY_CAST('12.5' AS BIGINT) rounds to 13; a fraction in a count is an error, not a 13
        return _to_double("{k}"), ("CASE WHEN isfinite({x}) AND {x} = trunc({x}) AND abs({x}) < 9.2e18 "
                                   "THEN coalesce(TRY_CAST({k} AS BIGINT), CAST({x} AS BIGINT)) END")
    if col.type in ("date", "month"):
        x = (f"CASE WHEN {_non_ascii('{k}')} THEN translate({{k}}, {_lit(DATE_FROM)}, {_lit(DATE_TO)}) "
             "ELSE {k} END")
        if col.type == "date":
            lo, hi = EXCEL_SERIAL_RANGE
            serial = (f"CASE WHEN regexp_full_match({{x}}, '[0-9]{{5}}(\\.0+)?') "
                      f"AND TRY_CAST({{x}} AS DOUBLE) BETWEEN {lo} AND {hi} "
                      f"THEN DATE '1899-12-30' + CAST(TRY_CAST({{x}} AS DOUBLE) AS INTEGER) END")
            return x, f"coalesce(CAST(try_strptime({{x}}, {_list(DATE_FORMATS)}) AS DATE), {serial})"
        return x, (f"CAST(coalesce(try_strptime({{x}}, {_list(MONTH_FORMATS)}), "
                   f"date_trunc('month', try_strptime({{x}}, {_list(DATE_FORMATS)}))) AS DATE)")
    if col.type == "boolean":
        return "upper({k})", (f"CASE WHEN {_any_equal('{x}', TRUE_TEXT)} THEN true "
                              f"WHEN {_any_equal('{x}', FALSE_TEXT)} THEN false END")
    raise AssertionError(col.type)


def _amount_text(unit: str | None) -> str:
    """x template for an amount: a number, or one written with its unit (850万元, 12.5万, 3000元).

    The value is brought to the column's delivered unit, which L4 then turns into 元, so that
    '850万元' in a column delivered in 元 and '850' in a column delivered in 万元 both end as
    8,500,000 元. The suffix is looked at only where the plain cast fails (fast path unchanged).
    """
    per_wan = 1 if unit == "万元" else 10000
    stripped = f"rtrim({{k}}, {_lit('万元')})"
    return (f"coalesce(TRY_CAST({{k}} AS DOUBLE), CASE "
            f"WHEN ends_with({{k}}, '万元') OR ends_with({{k}}, '万') "
            f"THEN TRY_CAST({_number_text(stripped)} AS DOUBLE) * {per_wan} "
            f"WHEN ends_with({{k}}, '元') THEN TRY_CAST({_number_text(stripped)} AS DOUBLE) / {10000 // per_wan} "
            f"ELSE TRY_CAST({_number_text('{k}')} AS DOUBLE) END)")


# Excel stores a date as days since 1899-12-30; a date cell exported as a number shows that count.
# Five-digit serials (1927-05-18 … 2119-01-14) are read as dates; no other date format has 5 digits.
EXCEL_SERIAL_RANGE = (10000, 80000)


def _base_type(sql_type: str) -> str:
    return sql_type.split("(")[0].strip().upper()


def _native_typing(col: Column, source_type: str) -> tuple[str, str] | None:
    """(k, t) templates over ``{c}`` / ``{x}`` for a column already typed in the file (parquet).

    None → the column goes through the text path (cast to VARCHAR first).
    """
    base = _base_type(source_type)
    numeric = base in NUMERIC_SQL_TYPES
    floating = base in ("FLOAT", "DOUBLE", "DECIMAL")
    # pandas writes a missing float as NaN; it is a missing value, not a number
    clean = "CASE WHEN isnan({c}) THEN NULL ELSE {c} END" if base in ("FLOAT", "DOUBLE") else "{c}"
    if col.type == "decimal" and numeric:
        return clean, "CASE WHEN isfinite(CAST({x} AS DOUBLE)) THEN CAST({x} AS DOUBLE) END"
    if col.type == "integer" and numeric:
        if floating:
            return clean, "CASE WHEN {x} = trunc({x}) THEN TRY_CAST({x} AS BIGINT) END"
        return clean, "TRY_CAST({x} AS BIGINT)"
    if col.type == "date" and (base == "DATE" or base.startswith("TIMESTAMP")):
        return "{c}", "CAST({x} AS DATE)"
    if col.type == "month" and (base == "DATE" or base.startswith("TIMESTAMP")):
        return "{c}", "CAST(date_trunc('month', {x}) AS DATE)"
    if col.type == "boolean" and base == "BOOLEAN":
        return "{c}", "{x}"
    if col.type == "boolean" and base in INTEGER_SQL_TYPES:
        return "{c}", "CASE WHEN {x} = 1 THEN true WHEN {x} = 0 THEN false END"
    return None


# ---------------------------------------------------------------- files and headers

@dataclass
class _Source:
    """One delivered file as DuckDB sees it."""

    table: Table
    path: Path                       # the delivered file
    format: str
    relation: str                    # SQL FROM-clause item
    row_expr: str                    # SQL giving the spreadsheet-style row number
    columns: list[tuple[str, str, str]]  # (sql name, delivered header, duckdb type)
    encoding: str | None = None
    delimiter: str | None = None
    sha256: str = ""
    encoding_note: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)   # template column → sql name
    unexpected: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    reader_notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _stem_index(schema: Schema) -> dict[str, str]:
    index: dict[str, str] = {}
    for t in schema.tables.values():
        index[normalise_name(t.name)] = t.name
        index[normalise_name(t.label_zh)] = t.name
    return index


def _header_names(table: Table, options: IngestOptions) -> tuple[str, ...]:
    """Every header text that names one of the table's columns (to find the header row in xlsx)."""
    names = [n for c in table.columns for n in (c.name, c.label_zh, c.label_en)]
    return tuple(names + list(options.column_map.get(table.name, {})))


def _find_files(inbox: Path, schema: Schema) -> tuple[dict[str, Path], list[str]]:
    """table → delivered file, and the names of files that are no table's."""
    if not inbox.is_dir():
        raise InputError("the inbox folder does not exist", file=str(inbox),
                         fix="create it and put the bank's extract files in it (one file per table)")
    index = _stem_index(schema)
    found: dict[str, Path] = {}
    unknown: list[str] = []
    for path in sorted(inbox.iterdir()):
        name = path.name
        if name.startswith((".", "~$")) or not path.is_file():
            continue  # hidden files, Excel lock files, folders
        table = index.get(normalise_name(path.stem))
        suffix = path.suffix.lower()
        if table is None:
            unknown.append(name)
            continue
        if suffix not in SUPPORTED_SUFFIXES:
            if suffix in UNSUPPORTED_SUFFIXES:
                raise InputError(f"{suffix} files cannot be read", file=name,
                                 fix=f"save the table as {table}.xlsx or {table}.csv (UTF-8 or GBK)")
            unknown.append(name)
            continue
        if table in found:
            raise InputError(f"two files hold table {table}: {found[table].name} and {name}",
                             file=name, fix="keep one file per table in inbox/")
        found[table] = path
    return found, unknown


def _map_columns(source: _Source, options: IngestOptions) -> None:
    """Match delivered headers to template columns (name, label_zh, label_en, column_map)."""
    table = source.table
    explicit = {normalise_name(k): v for k, v in options.column_map.get(table.name, {}).items()}
    by_key: dict[str, str] = {}
    ambiguous: set[str] = set()
    for col in table.columns:
        for key in (col.name, col.label_zh, col.label_en):
            k = normalise_name(key)
            if k in by_key and by_key[k] != col.name:
                ambiguous.add(k)
            by_key[k] = col.name
    for k in ambiguous:
        by_key.pop(k, None)
    for col in table.columns:  # the column's own name always wins
        by_key[normalise_name(col.name)] = col.name

    mapping: dict[str, str] = {}
    auto: dict[str, list[tuple[str, str]]] = {}
    for sql_name, header, _ in source.columns:
        key = normalise_name(header)
        if key in explicit:
            target = explicit[key]
            if target in mapping:
                raise InputError(f"ingest.column_map maps two columns to {table.name}.{target}",
                                 file=source.path.name, column=header,
                                 fix="map one delivered column to each template column")
            mapping[target] = sql_name
            if header != target:
                source.renamed[header] = target
        elif key in by_key:
            auto.setdefault(by_key[key], []).append((sql_name, header))
        else:
            source.unexpected.append(header)
    for target, hits in auto.items():
        if target in mapping:
            source.unexpected.extend(h for _, h in hits)
            continue
        if len(hits) > 1:
            names = ", ".join(h for _, h in hits)
            raise InputError(f"several columns match {target}: {names}", file=source.path.name,
                             column=hits[1][1],
                             fix=f"remove all but one, or name the right one for {target} in "
                                 f"engagement.yaml ingest.column_map.{table.name}")
        sql_name, header = hits[0]
        mapping[target] = sql_name
        if header != target:
            source.renamed[header] = target

    missing = [c for c in table.columns if c.required and c.name not in mapping]
    if missing:
        first = missing[0]
        listed = ", ".join(f"{c.name} ({c.label_zh})" for c in missing)
        raise InputError(
            f"required column{'s' if len(missing) > 1 else ''} missing: {listed}",
            file=source.path.name, column=first.name,
            fix=f"add the column {first.name} ({first.label_zh}) — see "
                f"data_templates/templates/{table.name}.csv; or, if the bank calls it differently, "
                f"map it in engagement.yaml ingest.column_map.{table.name}",
        )
    source.mapping = mapping


def _text_source(table: Table, path: Path, prepared: PreparedText, fmt: str) -> _Source:
    header = prepared.header  # an xlsx copy's leading __source_row column is not in it
    names = [f"c{i}" for i in range(len(header))]
    sql_cols = (["__source_row"] if prepared.row_number_column else []) + names
    columns_struct = "{" + ", ".join(f"{_lit(n)}: 'VARCHAR'" for n in sql_cols) + "}"
    relation = (f"read_csv({_lit(str(prepared.path))}, header=false, skip=1, "
                f"columns={columns_struct}, delim={_lit(prepared.delimiter)}, quote='\"', "
                f"escape='\"', null_padding=true, auto_detect=false)")
    row_expr = ("CAST(__source_row AS BIGINT)" if prepared.row_number_column
                else "CAST(row_number() OVER () + 1 AS BIGINT)")
    return _Source(table=table, path=path, format=fmt, relation=relation, row_expr=row_expr,
                   columns=[(n, h or f"(unnamed column {i + 1})", "VARCHAR")
                            for i, (n, h) in enumerate(zip(names, header))],
                   encoding=prepared.encoding if fmt != "xlsx" else None,
                   delimiter=prepared.delimiter if fmt != "xlsx" else None,
                   sha256=prepared.sha256, encoding_note=prepared.encoding_note,
                   reader_notes=list(prepared.notes), warnings=list(prepared.warnings))


def _parquet_source(con: duckdb.DuckDBPyConnection, table: Table, path: Path) -> _Source:
    relation = f"read_parquet({_lit(str(path))}, file_row_number=true)"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    except duckdb.Error as exc:
        raise InputError(f"cannot read the parquet file ({type(exc).__name__})", file=path.name,
                         fix="re-export the table as parquet, csv or xlsx") from exc
    described = [(name, str(dtype)) for name, dtype, *_ in described if name != "file_row_number"]
    columns = [(f"c{i}", name, dtype) for i, (name, dtype) in enumerate(described)]
    aliased = ", ".join(f"{_q(name)} AS c{i}" for i, (name, _) in enumerate(described))
    return _Source(table=table, path=path, format="parquet",
                   relation=f"(SELECT file_row_number, {aliased} FROM {relation})",
                   row_expr="CAST(file_row_number + 2 AS BIGINT)", columns=columns,
                   sha256=file_sha256(path))


# ---------------------------------------------------------------- loading one table

_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")
DELIMITER_NAMES = {",": "comma", "\t": "tab", "|": "pipe |", ";": "semicolon"}


def _csv_error(exc: duckdb.Error, source: _Source) -> InputError:
    """A DuckDB CSV parse error as an InputError, without echoing the offending line (may hold PII)."""
    text = str(exc)
    m = _CSV_LINE.search(text)
    detail = next((ln.strip() for ln in text.splitlines()
                   if ln.startswith(("Expected Number of Columns", "Value with unterminated quote",
                                     "Invalid unicode", "Maximum line size"))), "malformed row")
    return InputError(f"the file cannot be parsed as delimited text: {detail}",
                      file=source.path.name, row=int(m.group(1)) if m else None,
                      fix=f"check that row's delimiters ({DELIMITER_NAMES.get(source.delimiter, source.delimiter)}) "
                          "and quotes: a value containing the delimiter must be enclosed in double quotes")


def _effective_unit(col: Column, table: Table, options: IngestOptions) -> str | None:
    return options.units.get(f"{table.name}.{col.name}", col.unit)


def _fill(template: str, **names: str) -> str:
    """Put column names into a {k}/{x}/{c} template (not str.format: SQL holds literal braces)."""
    for key, value in names.items():
        template = template.replace("{" + key + "}", value)
    return template


def _typing_levels(source: _Source, options: IngestOptions) -> list[list[str]]:
    """Projection lists L0…L5 (see the comment above) typing every template column present."""
    types = {n: t for n, _, t in source.columns}
    levels: list[list[str]] = [[] for _ in range(5)]
    reasons: list[str] = []
    for i, col in enumerate(source.table.columns):
        c = source.mapping.get(col.name)
        if c is None:
            continue
        native = None if types[c] == "VARCHAR" else _native_typing(col, types[c])
        if native is not None:
            k_tmpl, t_tmpl = native
            levels[2].append(f"{_fill(k_tmpl, c=c)} AS k{i}")
            levels[3].append(f"k{i} AS x{i}")
        else:
            raw = c if types[c] == "VARCHAR" else f"CAST({c} AS VARCHAR)"
            levels[0] += [f"{raw} AS v{i}", f"ord({raw}) AS o{i}", f"ord(({raw})[-1]) AS e{i}",
                          f"{c} IS NOT NULL AS r{i}"]
            levels[1].append(f"CASE WHEN {_any_equal(f'o{i}', _WS_CODES)} OR {_any_equal(f'e{i}', _WS_CODES)} "
                             f"THEN trim(v{i}, {_lit(WHITESPACE)}) ELSE v{i} END AS u{i}")
            levels[2].append(f"CASE WHEN strlen(u{i}) <= {max(len(t.encode()) for t in NULL_TOKENS)} AND "
                             f"{_any_equal(f'u{i}', ('', *NULL_TOKENS))} THEN NULL ELSE u{i} END AS k{i}")
            x_tmpl, t_tmpl = _text_typing(col)
            if col.is_amount:
                x_tmpl = _amount_text(_effective_unit(col, source.table, options))
            levels[3].append(f"{_fill(x_tmpl, k=f'k{i}')} AS x{i}")
        typed = _fill(t_tmpl, k=f"k{i}", x=f"x{i}")
        if _effective_unit(col, source.table, options) == "万元":
            typed = f"round(({typed}) * 10000, 4)"
        levels[4].append(f"{typed} AS t{i}")
        checks = []
        if col.required:
            checks.append(f"WHEN k{i} IS NULL THEN {_lit('missing_required:' + col.name)}")
        checks.append(f"WHEN k{i} IS NOT NULL AND t{i} IS NULL THEN {_lit('type_error:' + col.name)}")
        reasons.append("CASE " + " ".join(checks) + " END")
    reason = f"coalesce({', '.join(reasons)})" if reasons else "CAST(NULL AS VARCHAR)"
    return [*levels, [f"{reason} AS __reason"]]


def _conversion_checks(source: _Source, options: IngestOptions) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Notes that need no counting, and (SQL flag over the raw value, column, what) to count.

    The flags are computed in the same pass that types the rows and counted afterwards.
    """
    notes: list[str] = []
    types = {n: t for n, _, t in source.columns}
    flags: list[tuple[str, str, str]] = []
    for col in source.table.columns:
        s = source.mapping.get(col.name)
        if s is None:
            continue
        unit = _effective_unit(col, source.table, options)
        if unit == "万元":
            origin = "ingest.units" if f"{source.table.name}.{col.name}" in options.units else "schema"
            notes.append(f"{col.name}: 万元 × 10,000 → 元 (unit declared in {origin})")
        elif col.unit == "万元":
            notes.append(f"{col.name}: delivered in 元 (ingest.units), not converted")
        if types[s] != "VARCHAR":
            base = _base_type(types[s])
            if col.type in ("date", "month") and base.startswith("TIMESTAMP"):
                notes.append(f"{col.name}: {base} values cut to {'month' if col.type == 'month' else 'date'}")
            continue
        v = _q(s)
        fw = f"{_non_ascii(v)} AND regexp_matches({v}, '[０-９]')"
        checks: list[tuple[str, str]] = []
        if col.type == "date":
            checks = [
                ("YYYYMMDD text parsed", f"strlen({v}) = 8 AND NOT contains({v}, '-') "
                                         f"AND NOT contains({v}, '/') AND NOT contains({v}, '.')"),
                ("YYYY/MM/DD text parsed", f"contains({v}, '/') AND NOT contains({v}, ':')"),
                ("YYYY年MM月DD日 text parsed", f"contains({v}, '年')"),
                ("date-time text cut to the date", f"contains({v}, ':')"),
                ("full-width digits converted", fw),
                ("Excel serial day numbers read as dates",
                 # the regex only on short values: it runs over every row of a date column
                 f"CASE WHEN strlen({v}) BETWEEN 5 AND 12 "
                 f"THEN regexp_full_match(trim({v}), '[0-9]{{5}}(\\.0+)?') ELSE false END"),
            ]
        elif col.type == "month":
            checks = [
                ("YYYYMM text parsed", f"strlen({v}) = 6 AND NOT contains({v}, '-') AND NOT contains({v}, '/')"),
                ("full dates turned into their month (first day)",
                 f"(strlen({v}) >= 8 AND NOT contains({v}, '年')) OR contains({v}, '日')"),
                ("YYYY年MM月 text parsed", f"contains({v}, '年') AND NOT contains({v}, '日')"),
                ("full-width digits converted", fw),
            ]
        elif col.type in ("decimal", "integer"):
            checks = [("thousands separators removed", f"contains({v}, ',') OR contains({v}, '，')"),
                      ("full-width digits converted", fw)]
            if col.is_amount:
                checks.append(("amounts written with 万元 / 万 converted to 元" if unit != "万元" else
                               "amounts written with 万元 / 万 read in 万元",
                               f"ends_with({v}, '万元') OR ends_with({v}, '万')"))
                checks.append(("amounts written with 元 read as 元",
                               f"ends_with({v}, '元') AND NOT ends_with({v}, '万元')"))
            if col.unit == "rate":
                checks.append(("percentages divided by 100", f"ends_with({v}, '%') OR ends_with({v}, '％')"))
        elif col.type == "boolean":
            checks = [("是/否 read as true/false", f"contains({v}, '是') OR contains({v}, '否')")]
        flags.extend((f"coalesce({cond}, false)", col.name, what) for what, cond in checks)
    return notes, flags


_HALFWIDTH = str.maketrans(FULLWIDTH_ASCII + "\u3000", HALFWIDTH_ASCII + " ")


def _halfwidth_categories(con: duckdb.DuckDBPyConnection, target: str, source: _Source) -> list[str]:
    """Turn full-width letters in category values (ＡＴＭ → ATM) to half-width; notes with counts.

    Done on distinct values after the load, all category columns in one scan (GROUPING SETS):
    a regex per row over millions of rows costs more than the rest of the typing of a column.
    """
    cats = [col.name for col in source.table.columns if col.type == "category" and col.name in source.mapping]
    if not cats:
        return []
    qs = [_q(c) for c in cats]
    which = "CASE " + " ".join(f"WHEN grouping({q}) = 0 THEN {i}" for i, q in enumerate(qs)) + " END"
    value = "CASE " + " ".join(f"WHEN grouping({q}) = 0 THEN {q}" for q in qs) + " END"
    found = con.execute(
        f"SELECT {which} AS col, {value} AS v, count(*) FROM {target} "
        f"GROUP BY GROUPING SETS ({', '.join(f'({q})' for q in qs)}) "
        f"HAVING regexp_matches({value}, '[\uff01-\uff5e\u3000]')").fetchall()
    notes = []
    for i, name in enumerate(cats):
        hits = [(v, n) for col, v, n in found if col == i]
        if not hits:
            continue
        c = qs[i]
        cases = " ".join(f"WHEN {_lit(v)} THEN {_lit(v.translate(_HALFWIDTH).strip())}" for v, _ in hits)
        con.execute(f"UPDATE {target} SET {c} = CASE {c} {cases} END "
                    f"WHERE {c} IN ({', '.join(_lit(v) for v, _ in hits)})")
        notes.append(_count_note(name, "full-width letters converted to half-width", sum(n for _, n in hits)))
    return notes


def _count_note(column: str, what: str, n: int) -> str:
    return f"{column}: {what} ({n:,} row{'s' if n != 1 else ''})"


def _load_table(con: duckdb.DuckDBPyConnection, source: _Source, options: IngestOptions,
                workdir: Path) -> tuple[TableIngest, dict | None]:
    """Stage, type, check and insert one file; returns its report and its first stopping row."""
    started = time.perf_counter()
    table = source.table
    report = TableIngest(table=table.name, file=source.path.name, format=source.format,
                         encoding=source.encoding, delimiter=source.delimiter, sha256=source.sha256,
                         unexpected_columns=list(source.unexpected), renamed_columns=dict(source.renamed),
                         missing_optional_columns=[c.name for c in table.columns
                                                   if c.name not in source.mapping])
    if source.encoding_note and source.encoding not in (None, "utf-8"):
        report.conversions.append(f"encoding {source.encoding} ({source.encoding_note}) → utf-8")
    report.conversions.extend(source.reader_notes)
    report.warnings.extend(source.warnings)

    raw_cols = ", ".join(_q(n) for n, _, _ in source.columns)
    # a view: the file is scanned once to type it, and again only to copy rejected rows
    con.execute(f"CREATE OR REPLACE TEMP VIEW __src AS "
                f"SELECT {source.row_expr} AS __source_row, {raw_cols} FROM {source.relation}")

    present = [(i, c) for i, c in enumerate(table.columns) if c.name in source.mapping]
    types = {n: t for n, _, t in source.columns}
    text_cols = [i for i, c in present if types[source.mapping[c.name]] == "VARCHAR"
                 or _native_typing(c, types[source.mapping[c.name]]) is None]
    static_notes, flags = _conversion_checks(source, options)
    flag_names = [f"f{j}" for j in range(len(flags))]
    levels = _typing_levels(source, options)
    levels[0] += [f"{sql} AS {name}" for (sql, _, _), name in zip(flags, flag_names)]
    query = "__src"
    for level in levels[:-1]:
        query = f"(SELECT *{''.join(', ' + e for e in level)} FROM {query})"
    # The typed rows go straight into the warehouse table with helper columns (source row,
    # reason, note flags); rejected rows are then deleted and the helpers dropped. Writing once
    # saves a full copy of the table: persisting 2M rows is most of an ingest's time.
    typed = [f"CAST(t{i} AS {c.sql_type}) AS {_q(c.name)}" if c.name in source.mapping
             else f"CAST(NULL AS {c.sql_type}) AS {_q(c.name)}" for i, c in enumerate(table.columns)]
    # p: placeholders, delivered non-empty but read as empty ('-', 'NULL', blanks); the note
    # flags travel in one struct so that one DROP COLUMN removes them
    notes = [f"p{i} := r{i} AND k{i} IS NULL" for i in text_cols] + [f"{n} := {n}" for n in flag_names]
    keep = ["__source_row", *typed, *levels[-1], f"struct_pack({', '.join(notes)}) AS __notes" if notes
            else "NULL AS __notes"]
    target = _q(table.name)
    try:
        try:
            con.execute(f"CREATE TABLE {target} AS SELECT {', '.join(keep)} FROM {query}")
        except duckdb.Error as exc:
            # A quoted value spanning lines (an address, a note) defeats DuckDB's parallel CSV
            # scanner with null_padding; such a file is read again, single-threaded.
            if "parallel=false" not in str(exc) or "parallel=false" in source.relation:
                raise
            source.relation = source.relation[:-1] + ", parallel=false)"
            con.execute(f"CREATE OR REPLACE TEMP VIEW __src AS "
                        f"SELECT {source.row_expr} AS __source_row, {raw_cols} FROM {source.relation}")
            con.execute(f"CREATE TABLE {target} AS SELECT {', '.join(keep)} FROM {query}")
    except duckdb.Error as exc:
        if source.format == "parquet":
            raise InputError(f"cannot read the parquet file ({type(exc).__name__})",
                             file=source.path.name, fix="re-export the table") from exc
        raise _csv_error(exc, source) from exc
    counted = [(f"p{i}", table.columns[i].name, "blank or placeholder values ('-', 'NULL', …) read as empty")
               for i in text_cols]
    counted += [(name, column, what) for name, (_, column, what) in zip(flag_names, flags)]

    halfwidth_notes = _halfwidth_categories(con, target, source)
    pk = table.primary_key
    if pk and all(c in source.mapping for c in pk):
        keys = ", ".join(_q(c) for c in pk)
        # Candidates first by a 64-bit hash of the key (grouping integers is several times cheaper
        # than grouping hundreds of millions of distinct strings), then exactly among the
        # candidates: a hash collision only makes a row a candidate, never a duplicate.
        con.execute(f"""
            UPDATE {target} SET __reason = 'duplicate_key'
            WHERE __source_row IN (
                SELECT __source_row FROM (
                    SELECT __source_row,
                           row_number() OVER (PARTITION BY {keys} ORDER BY __source_row) AS n
                    FROM {target}
                    WHERE __reason IS NULL AND hash({keys}) IN (
                        SELECT hash({keys}) FROM {target} WHERE __reason IS NULL
                        GROUP BY 1 HAVING count(*) > 1))
                WHERE n > 1)
        """)

    for reason_text, n in con.execute(
            f"SELECT __reason, count(*) FROM {target} GROUP BY ALL ORDER BY 1 NULLS FIRST").fetchall():
        report.rows_in += n
        if reason_text is None:
            report.rows_loaded = n
        else:
            report.rows_quarantined += n
            report.quarantine_reasons[reason_text] = n
    report.conversions.extend(static_notes + halfwidth_notes)
    if counted:
        counts = con.execute(f"SELECT {', '.join(f'count_if(__notes.{n})' for n, _, _ in counted)} "
                             f"FROM {target}").fetchone()
        report.conversions.extend(_count_note(column, what, n) for (_, column, what), n in zip(counted, counts) if n)

    stop: dict | None = None
    if report.rows_quarantined:
        con.execute(f"CREATE OR REPLACE TEMP TABLE __bad AS SELECT __source_row, __reason FROM {target} "
                    "WHERE __reason IS NOT NULL")
        con.execute(f"DELETE FROM {target} WHERE __reason IS NOT NULL")
        _write_quarantine(con, source, workdir / f"{table.name}.csv")
        first = con.execute("""
            SELECT __source_row, __reason, count(*) OVER () FROM __bad
            WHERE __reason LIKE 'type_error:%' OR __reason LIKE 'missing_required:%'
            ORDER BY __source_row LIMIT 1""").fetchone()
        if first is not None:
            row, why, n_bad = first
            kind, column = why.split(":", 1)
            value = con.execute(f"SELECT {_q(source.mapping[column])} FROM __src "
                                f"WHERE __source_row = ?", [row]).fetchone()[0]
            stop = {"table": table.name, "file": source.path.name, "row": row, "kind": kind,
                    "column": column, "value": value, "others": n_bad - 1}
        con.execute("DROP TABLE __bad")
    alter = [f"ALTER TABLE {target} DROP COLUMN {helper}" for helper in ("__source_row", "__reason", "__notes")]
    alter += [f"ALTER TABLE {target} ALTER COLUMN {_q(c.name)} SET NOT NULL" for c in table.columns if c.required]
    con.execute("BEGIN TRANSACTION; " + "; ".join(alter) + "; COMMIT")
    con.execute("DROP VIEW IF EXISTS __src")
    report.seconds = round(time.perf_counter() - started, 3)
    return report, stop


def _write_quarantine(con: duckdb.DuckDBPyConnection, source: _Source, target: Path) -> None:
    """The rejected rows as delivered, + source_file, source_row, reason (CSV, UTF-8 with BOM)."""
    seen: set[str] = set()
    cols = []
    for name, header, dtype in source.columns:
        label = header
        while label in seen or label in ("source_file", "source_row", "reason"):
            label += "_"
        seen.add(label)
        value = _q(name) if dtype == "VARCHAR" else f"CAST({_q(name)} AS VARCHAR)"
        cols.append(f"{value} AS {_q(label)}")
    plain = target.with_suffix(".plain.csv")
    con.execute(f"""
        COPY (SELECT {', '.join(cols)}, {_lit(source.path.name)} AS source_file,
                     s.__source_row AS source_row, r.__reason AS reason
              FROM __src s JOIN __bad r USING (__source_row)
              ORDER BY s.__source_row)
        TO {_lit(str(plain))} (HEADER, DELIMITER ',', QUOTE '"')
    """)
    # Excel opens a UTF-8 CSV correctly only with a BOM
    with open(target, "wb") as out, open(plain, "rb") as src:
        out.write(b"\xef\xbb\xbf")
        shutil.copyfileobj(src, out, 8 * 1024 * 1024)
    plain.unlink()


# ---------------------------------------------------------------- the entry point

def _check_options(options: IngestOptions, schema: Schema) -> None:
    for key in options.units:
        table, _, column = key.partition(".")
        if table not in schema.tables or column not in schema.tables[table].column_names:
            raise InputError(f"ingest.units names an unknown column {key!r}",
                             fix="write it as table.column, e.g. loans.contract_amount")
        if not schema.tables[table].column(column).is_amount:
            raise InputError(f"ingest.units: {key} is not an amount column",
                             fix="declare units only for amount columns (元 or 万元 in the schema)")
    for table, renames in options.column_map.items():
        if table not in schema.tables:
            raise InputError(f"ingest.column_map names an unknown table {table!r}",
                             fix=f"use one of: {', '.join(schema.tables)}")
        for bank_col, template_col in renames.items():
            if template_col not in schema.tables[table].column_names:
                raise InputError(f"ingest.column_map.{table} maps {bank_col!r} to unknown column "
                                 f"{template_col!r}", column=template_col,
                                 fix=f"use a column of data_templates/templates/{table}.csv")


def _count_orphans(con: duckdb.DuckDBPyConnection, schema: Schema, report: IngestReport) -> None:
    """Count, per referencing column, loaded rows whose value the referenced table lacks.

    Such rows stay loaded (schema: references are assessed in stage 01, not quarantined); the
    counts make them visible in ingest.json from the start.
    """
    for table in schema.tables.values():
        loaded = report.tables.get(table.name)
        if loaded is None:
            continue
        for col in table.columns:
            if not col.references:
                continue
            ref_table, ref_col = col.references.split(".")
            if ref_table not in report.tables or col.name in loaded.missing_optional_columns:
                continue
            n = con.execute(
                f"SELECT count(*) FROM {_q(table.name)} t WHERE t.{_q(col.name)} IS NOT NULL AND NOT EXISTS "
                f"(SELECT 1 FROM {_q(ref_table)} r WHERE r.{_q(ref_col)} = t.{_q(col.name)})").fetchone()[0]
            if n:
                loaded.orphan_references[col.name] = n


def _stop_error(stop: dict, schema: Schema) -> InputError:
    col = schema.tables[stop["table"]].column(stop["column"])
    if stop["kind"] == "missing_required":
        what = f"required column {col.name} ({col.label_zh}) is empty"
    else:
        shown = "value masked" if col.pii else f"value {stop['value']!r}"
        what = f"column {col.name} ({col.label_zh}) is not {TYPE_WORDS[col.type]} ({shown})"
    more = f"; {stop['others']:,} more such row(s) in this file" if stop["others"] else ""
    return InputError(
        f"{stop['file']} row {stop['row']}: {what}{more}",
        file=stop["file"], row=stop["row"], column=col.name,
        fix=f"correct the value in the extract, or set ingest.on_bad_rows: quarantine in "
            f"engagement.yaml to load the other rows and keep such rows in quarantine/{stop['table']}.csv",
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_abandoned_workdirs(folder: Path) -> None:
    """Delete work folders of ingests that were killed (they hold copies of bank data)."""
    for stale in folder.glob(".ingest-*"):
        pid = stale.name.split("-")[1]
        if stale.is_dir() and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def ingest_inbox(inbox: Path, warehouse: Path, quarantine_dir: Path, *, schema: Schema | None = None,
                 options: IngestOptions | None = None) -> IngestReport:
    """Load every extract file in ``inbox`` into a fresh ``warehouse`` (DuckDB), typed per ``schema``.

    Rejected rows go to ``quarantine_dir/<table>.csv``. With ``options.on_bad_rows == "stop"`` a
    type error or an empty required value raises InputError after the warehouse and quarantine are
    written (the report is attached to the error as ``.report``); duplicate keys never stop.
    Raises InputError for a missing required table or column, or a file that does not decode.
    """
    started = time.perf_counter()
    inbox, warehouse, quarantine_dir = Path(inbox), Path(warehouse), Path(quarantine_dir)
    schema = schema or load_schema()
    options = options or IngestOptions()
    _check_options(options, schema)

    files, unknown = _find_files(inbox, schema)
    missing = [t for t in schema.tables.values() if t.required and t.name not in files]
    if missing:
        first = missing[0]
        raise InputError(
            "required table{} not delivered: {}".format(
                "s" if len(missing) > 1 else "", ", ".join(f"{t.name} ({t.label_zh})" for t in missing)),
            file=f"inbox/{first.name}.csv",
            fix=f"put the extract in inbox/ as {first.name}.csv (or .xlsx / .parquet, or named "
                f"{first.label_zh}) following data_templates/templates/{first.name}.csv",
        )
    report = IngestReport(unknown_files=unknown, warehouse=str(warehouse),
                          quarantine_dir=str(quarantine_dir), on_bad_rows=options.on_bad_rows,
                          missing_optional_tables=[t.name for t in schema.tables.values()
                                                   if not t.required and t.name not in files])
    declared = {normalise_name(k): v for k, v in options.encodings.items()}

    warehouse.parent.mkdir(parents=True, exist_ok=True)
    building = warehouse.with_name(warehouse.name + ".tmp")
    if building.is_dir():
        raise InputError("the warehouse is in use (DuckDB's spill folder exists)", file=str(building),
                         fix="close notebooks or sessions using the warehouse, then ingest again")
    for stale in (building, building.with_name(building.name + ".wal")):
        stale.unlink(missing_ok=True)
    _remove_abandoned_workdirs(warehouse.parent)

    first_stop: dict | None = None
    with tempfile.TemporaryDirectory(prefix=f".ingest-{os.getpid()}-", dir=warehouse.parent) as tmp:
        workdir = Path(tmp)
        qdir = workdir / "quarantine"
        qdir.mkdir()
        # spill inside the work folder: bank data stays in the workspace and is removed with it
        con = duckdb.connect(str(building), config={"temp_directory": str(workdir / "spill")})
        try:
            # read every header first: a missing column or a bad encoding fails before heavy work
            sources: list[_Source] = []
            for table in schema.tables.values():
                path = files.get(table.name)
                if path is None:
                    continue
                suffix = path.suffix.lower()
                if suffix in TEXT_SUFFIXES:
                    prepared = prepare_text(path, declared.get(normalise_name(path.name)), workdir)
                    source = _text_source(table, path, prepared, suffix[1:])
                elif suffix == ".xlsx":
                    prepared = prepare_xlsx(path, workdir, (table.name, table.label_zh),
                                            _header_names(table, options))
                    source = _text_source(table, path, prepared, "xlsx")
                else:
                    source = _parquet_source(con, table, path)
                _map_columns(source, options)
                sources.append(source)

            con.execute("CREATE TABLE _ingest_files (\"table\" VARCHAR, file VARCHAR, sha256 VARCHAR, "
                        "rows_in BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT, format VARCHAR, "
                        "encoding VARCHAR, ingested_at TIMESTAMP)")
            for source in sources:
                table_report, stop = _load_table(con, source, options, qdir)
                report.tables[source.table.name] = table_report
                if stop is not None and first_stop is None:
                    first_stop = stop
                con.execute("INSERT INTO _ingest_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, current_localtimestamp())",
                            [table_report.table, table_report.file, table_report.sha256,
                             table_report.rows_in, table_report.rows_loaded,
                             table_report.rows_quarantined, table_report.format, table_report.encoding])
            _count_orphans(con, schema, report)
            con.execute("CHECKPOINT")
            con.close()
        except BaseException:
            con.close()
            for stale in (building, building.with_name(building.name + ".wal")):
                stale.unlink(missing_ok=True)
            raise

        # swap: drop the old warehouse's WAL first, or DuckDB would replay it onto the new file
        warehouse.with_name(warehouse.name + ".wal").unlink(missing_ok=True)
        os.replace(building, warehouse)

        quarantine_dir.mkdir(parents=True, exist_ok=True)
        for table in schema.tables.values():
            (quarantine_dir / f"{table.name}.csv").unlink(missing_ok=True)  # stale from an earlier run
        for produced in qdir.iterdir():
            shutil.move(str(produced), quarantine_dir / produced.name)

    report.seconds = round(time.perf_counter() - started, 3)
    if first_stop is not None and options.on_bad_rows == "stop":
        err = _stop_error(first_stop, schema)
        err.report = report  # type: ignore[attr-defined]
        raise err
    return report


__all__ = ["IngestOptions", "IngestReport", "TableIngest", "ingest_inbox"]
