"""Catalogue SQL is consulting know-how edited per bank: parse it and allow only expressions over our tables."""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from .errors import InputError

# Statements and functions that reach outside the warehouse or change the session.
_FORBIDDEN_FUNCTIONS = {
    "read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "read_json", "read_json_auto",
    "read_text", "read_blob", "read_xlsx", "st_read", "sniff_csv", "glob", "query", "query_table",
    "getenv", "current_setting", "duckdb_settings", "duckdb_extensions", "iceberg_scan",
    "delta_scan", "sqlite_scan", "postgres_scan", "mysql_scan", "read_ndjson",
}
_FORBIDDEN_KEYWORDS = re.compile(
    r"\b(COPY|ATTACH|DETACH|INSTALL|LOAD|PRAGMA|SET|RESET|EXPORT|IMPORT|CALL|CREATE|DROP|ALTER|"
    r"INSERT|UPDATE|DELETE|TRUNCATE|GRANT|USE|CHECKPOINT|VACUUM)\b", re.IGNORECASE)
# Point-in-time: a value at month t may use months <= t only.
_FUTURE_LOOKING = re.compile(r"\b(LEAD|FOLLOWING|LAST_VALUE)\b", re.IGNORECASE)


def check_expression(expr: str, *, owner: str, allowed_columns: set[str] | None = None,
                     point_in_time: bool = True) -> None:
    """Raise InputError naming `owner` (a tag or event id) if the expression is not a safe scalar expression."""
    text = expr.strip()
    if not text:
        raise InputError(f"{owner}: empty expression", fix="write a DuckDB SQL expression")
    if ";" in text:
        raise InputError(f"{owner}: ';' is not allowed in a catalogue expression",
                         fix="write one expression, not statements")
    if "'" not in text and _FORBIDDEN_KEYWORDS.search(text) or _FORBIDDEN_KEYWORDS.search(
            re.sub(r"'[^']*'", "''", text)):
        kw = _FORBIDDEN_KEYWORDS.search(re.sub(r"'[^']*'", "''", text)).group(0).upper()
        raise InputError(f"{owner}: '{kw}' is not allowed in a catalogue expression",
                         fix="catalogue expressions may only compute values from warehouse columns")
    if point_in_time and _FUTURE_LOOKING.search(re.sub(r"'[^']*'", "''", text)):
        kw = _FUTURE_LOOKING.search(text).group(0).upper()
        raise InputError(f"{owner}: '{kw}' looks into later months (not point-in-time)",
                         fix="use LAG or windows 'ROWS BETWEEN n PRECEDING AND CURRENT ROW' only")
    try:
        tree = sqlglot.parse_one(f"SELECT {text} AS v FROM t", read="duckdb")
    except sqlglot.errors.ParseError as exc:
        raise InputError(f"{owner}: expression does not parse: {str(exc).splitlines()[0]}",
                         fix="correct the DuckDB SQL syntax") from None
    for node in tree.find_all(exp.Subquery, exp.Select):
        if node is not tree:
            raise InputError(f"{owner}: sub-queries are not allowed in a catalogue expression",
                             fix="express the logic over the tag table's columns")
    for node in tree.find_all(exp.Table):
        if node.name != "t":
            raise InputError(f"{owner}: reads table '{node.name}'",
                             fix="catalogue expressions may not reference tables or files")
    for fn in tree.find_all(exp.Func):
        name = (fn.sql_name() if not isinstance(fn, exp.Anonymous) else fn.name).lower()
        if name in _FORBIDDEN_FUNCTIONS or name.startswith(("read_", "st_")):
            raise InputError(f"{owner}: function '{name}' reads outside the warehouse",
                             fix="remove the file-reading function; use warehouse columns only")
    if allowed_columns is not None:
        unknown = sorted({c.name for c in tree.find_all(exp.Column)} - allowed_columns - {"v"})
        if unknown:
            raise InputError(f"{owner}: unknown column(s) {', '.join(unknown)}",
                             fix="use columns of the base view or tag ids defined earlier in the catalogue")
