"""Catalogue SQL may only compute values from our tables, point-in-time; violations name the entry."""

import pytest

from analysis.errors import InputError
from analysis.sqlsafety import check_expression


@pytest.mark.parametrize("expr, why", [
    ("read_csv('/etc/passwd')", "reads outside"),
    ("(SELECT * FROM read_parquet('x.parquet'))", "sub-queries"),
    ("x; ATTACH 'other.duckdb'", ";"),
    ("ATTACH", "ATTACH"),
    ("x FROM other_table", "does not parse|reads table"),
    ("lead(x) OVER w", "LEAD"),
    ("sum(x) OVER (w ROWS BETWEEN CURRENT ROW AND 2 FOLLOWING)", "FOLLOWING"),
    ("getenv('HOME')", "reads outside"),
    ("INSTALL httpfs", "INSTALL"),
    ("PRAGMA version", "PRAGMA"),
    ("unknown_col > 1", "unknown column"),
])
def test_rejected_with_owner(expr, why):
    with pytest.raises(InputError, match=why) as exc:
        check_expression(expr, owner="TAG_X", allowed_columns={"x", "y"})
    assert str(exc.value).startswith("TAG_X")


@pytest.mark.parametrize("expr", [
    "x >= 500000", "CASE WHEN x > 0 THEN 1 ELSE 0 END", "avg(x) OVER (w ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)",
    "lag(x) OVER w", "x = 'SET'", "coalesce(x, 0) / nullif(y, 0)",
])
def test_allowed(expr):
    check_expression(expr, owner="T", allowed_columns={"x", "y"})
