"""Writing values into generated SQL text (kept free of heavy imports: ingest and the CLI use it)."""

from __future__ import annotations


def sql_string(value) -> str:
    """`value` as a single-quoted SQL string literal, quotes doubled (DuckDB and Spark alike)."""
    return "'" + str(value).replace("'", "''") + "'"
