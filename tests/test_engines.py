"""engines.query_frame: the Arrow path gives the same frame as DuckDB's .df()."""

import warnings

import duckdb
import pandas as pd

from analysis.engines import query_frame


def test_query_frame_equals_df_for_every_column_kind():
    con = duckdb.connect()
    sql = """SELECT * FROM (VALUES
        (1::INTEGER, NULL::INTEGER, 2::BIGINT, DATE '2020-01-01', 1.5::DECIMAL(10, 2), NULL::VARCHAR,
         '小微', 0.45, true, NULL::DOUBLE, NULL::DATE, NULL::BOOLEAN, 7::BIGINT),
        (NULL, 3, NULL, NULL, NULL, 'x', NULL, 0.5, NULL, 2.5, DATE '2021-02-03', NULL, 8))
        t(a, b, c, d, e, f, g, h, i, j, k, l, m)"""
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no DuckDB warning reaches a notebook
        got = query_frame(con, sql)
    want = con.execute(sql).df()
    pd.testing.assert_frame_equal(got, want, check_dtype=True)
    assert got["m"].dtype == "int64" and got["e"].dtype == "float64"   # no NULLs: plain numpy


def test_query_frame_on_an_empty_result():
    con = duckdb.connect()
    sql = "SELECT 1::INTEGER AS a, 'x' AS b, 0.5 AS c WHERE false"
    got = query_frame(con, sql)
    assert list(got.columns) == ["a", "b", "c"] and len(got) == 0
    assert got["c"].dtype == "float64"


def test_query_frame_converts_decimals_exactly_as_duckdb():
    # Arrow's decimal → double cast gives 0.6000000000000001; DuckDB's .df() gives 0.6
    con = duckdb.connect()
    sql = "SELECT * FROM (VALUES (0.6, 0.3::DECIMAL(18, 2)), (0.35, NULL), (0.7, 123456.78)) t(a, b)"
    got = query_frame(con, sql)
    pd.testing.assert_frame_equal(got, con.execute(sql).df(), check_exact=True)
    assert got["a"].tolist() == [0.6, 0.35, 0.7]
