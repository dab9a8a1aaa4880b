"""The stage SQL (customer_month, tag table, event triggers and backtest, value inputs) gives the same rows on
Spark as on DuckDB.

The pure transpilation tests run everywhere; the engine comparison needs pyspark and Java and is
skipped cleanly without them. Numbers are compared with a relative tolerance of 1e-9 (floating
sums are added in a different order by the two engines; every difference seen is in the last
bits); everything else (ids, dates, flags, counts, NULLs) must be equal exactly.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import warnings
from decimal import Decimal

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot

from analysis import engines, events, tags, value_data
from analysis.catalog import load_event_catalog, load_tag_catalog
from analysis.engines import to_spark

AS_OF = "2022-12"
RTOL = 1e-9

pytestmark = pytest.mark.xdist_group("spark")


# ---------------------------------------------------------------------------------------------
# Pure: the SQL generators and the DuckDB → Spark rewrites
# ---------------------------------------------------------------------------------------------

def test_month_grid_is_the_24_months_to_as_of():
    grid = tags.month_grid("2022-12", 24)
    assert len(grid) == 24
    assert grid[0] == ("2021-01-01", "2021-01-31")
    assert grid[1] == ("2021-02-01", "2021-02-28")
    assert grid[13] == ("2022-02-01", "2022-02-28")
    assert grid[-1] == ("2022-12-01", "2022-12-31")
    assert tags.month_grid("2024-02", 1) == [("2024-02-01", "2024-02-29")]


def test_customer_month_sql_is_plain_statements_spark_can_parse():
    stmts = tags.customer_month_sql(AS_OF, 3, ["LOAN_OP", "DEP_DEMAND"], ["tax_monthly"])
    assert [sqlglot.parse_one(s, read="duckdb").this.name for s in stmts] == [
        "_months", "_grid", "_acct", "_bal", "_txn", "_loans", "_risk", "_lines", "_holds", "customer_month"]
    assert "DATE '2022-10-01', DATE '2022-10-31'" in stmts[0] and "range(" not in stmts[0]
    final = stmts[-1]
    assert "holds_loan_op" in final and "holds_dep_demand" in final
    assert "CAST(NULL AS DOUBLE) AS invoice_amount" in final and "tax_grade" in final
    for s in stmts:
        sqlglot.parse_one(to_spark(s), read="spark")


def test_named_window_with_frame_is_inlined():
    sql = to_spark("SELECT avg(x) OVER (w ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS a, lag(x) OVER w AS b "
                   "FROM t WINDOW w AS (PARTITION BY c ORDER BY m)")
    assert not sqlglot.parse_one(sql, read="spark").args.get("windows")  # no WINDOW clause left
    assert sql.count("PARTITION BY c ORDER BY m") == 2
    assert "ROWS BETWEEN 2 PRECEDING AND CURRENT ROW" in sql.upper()


def test_month_difference_counts_boundaries_like_duckdb():
    sql = to_spark("SELECT datediff('month', a, b) FROM t")
    assert "DATEDIFF" not in sql.upper()
    con = duckdb.connect()
    # 31 Jan → 1 Feb: DuckDB counts one month boundary; the rewrite computes the same.
    rewritten = sqlglot.transpile(sql, read="spark", write="duckdb")[0]
    row = con.execute(rewritten.replace("FROM t", "FROM (SELECT DATE '2020-01-31' AS a, DATE '2020-02-01' AS b) t")
                      ).fetchone()
    assert row[0] == 1 == con.execute("SELECT datediff('month', DATE '2020-01-31', DATE '2020-02-01')").fetchone()[0]


def test_division_any_value_and_round_rewrites():
    sql = to_spark("SELECT max(m) / 12.0, any_value(c), round(x, 2) FROM t")
    assert "CAST(MAX(m) AS DOUBLE) / 12.0" in sql
    assert "ANY_VALUE(c, TRUE)" in sql
    assert "ROUND(" not in sql.upper().split("ANY_VALUE")[1]  # round() is emulated, not Spark's


def test_round_emulation_equals_duckdb_round_at_ties():
    # DuckDB rounds a double's exact binary value: 211224.835 is 211224.83499… → .83, where Spark's
    # round (half-up on the decimal text) gives .84. The emulation is plain double arithmetic, so
    # it can be checked by running it on DuckDB itself.
    values = [0.125, -0.125, 0.375, 1.005, 2.675, 211224.835, -211224.835, 137630.405, 97513.135,
              41049.510833333334, 0.0, 1e300, 123.456e-5]
    rng = np.random.default_rng(1)
    values += list(np.round(rng.uniform(-1e6, 1e6, 400) * 200) / 200)  # many x.xx5 texts
    con = duckdb.connect()
    con.execute("CREATE TABLE v AS SELECT unnest(?) AS x", [values])
    for n in (1, 2, 8):
        emulated = sqlglot.transpile(to_spark(f"SELECT round(x, {n}) AS r FROM v"), read="spark", write="duckdb")[0]
        want = con.execute(f"SELECT round(x, {n}) AS r FROM v").df()["r"].tolist()
        got = con.execute(emulated).df()["r"].tolist()
        assert got == want, n
    assert con.execute("SELECT round(211224.835::DOUBLE, 2)").fetchone()[0] == 211224.83


def test_duckdb_engine_is_the_connection_unchanged(tmp_path):
    con = duckdb.connect()
    eng = engines.as_engine(con)
    assert isinstance(eng, engines.DuckDBEngine) and engines.as_engine(eng) is eng
    eng.run("CREATE TABLE a AS SELECT 1 AS x; CREATE TABLE b AS SELECT x + 1 AS y FROM a")
    assert eng.columns("b") == ["y"] and eng.has_table("a") and not eng.has_table("zz")
    assert eng.df("SELECT y FROM b")["y"].tolist() == [2]
    with pytest.raises(TypeError):
        engines.as_engine("not a connection")


# ---------------------------------------------------------------------------------------------
# Spark against DuckDB on a small synthetic bank
# ---------------------------------------------------------------------------------------------

def _spark_available() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark not installed"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime"
    return None


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """(DuckDB frames, Spark frames) of every compared table, built once for the module."""
    reason = _spark_available()
    if reason:
        pytest.skip(reason)
    from analysis.ingest import IngestOptions, ingest_inbox
    from analysis.synth.bank import generate_bank

    root = tmp_path_factory.mktemp("spark_bank")
    generate_bank(root / "inbox", customers=800, seed=2, txn_per_active_month=3)
    ingest_inbox(root / "inbox", root / "warehouse.duckdb", root / "quarantine",
                 options=IngestOptions(on_bad_rows="quarantine"))
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    spark = engines.spark_session("local[2]", shuffle_partitions=2)
    spark.sparkContext.setLogLevel("ERROR")
    try:
        engines.register_duckdb_tables(spark, con, root / "parquet")
        spark_engine = engines.SparkEngine(spark)
        tag_catalog, event_catalog = load_tag_catalog(), load_event_catalog()
        assumptions = value_data.ValueAssumptions()
        frames = {}
        for name, target in (("duckdb", con), ("spark", spark_engine.con)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # pyspark's notice about pandas 3
                rows = tags.build_tag_table(target, tag_catalog, AS_OF)
                events.build_event_triggers(target, event_catalog)
                out = {"rows": rows}
                for table, keys in (("customer_month", "customer_id, month"), ("tag_table", "customer_id, month"),
                                    ("event_triggers", "customer_id, month"),
                                    ("product_starts", "customer_id, product_id, start_month")):
                    out[table] = target.execute(f"SELECT * FROM {table} ORDER BY {keys}").df()
                out["value_inputs"] = value_data.value_inputs(target, AS_OF, 12, assumptions)
                out["scorecard"], out["monthly"] = events.backtest_events(target, event_catalog, AS_OF)
            frames[name] = out
        frames["spark"]["engine"] = spark_engine
        yield frames["duckdb"], frames["spark"]
    finally:
        spark.stop()
        con.close()


def _assert_same(duck: pd.DataFrame, spark: pd.DataFrame, keys: list[str]) -> None:
    assert list(spark.columns) == list(duck.columns)
    assert len(duck) == len(spark) and len(duck) > 0
    duck = duck.sort_values(keys, kind="stable").reset_index(drop=True)
    spark = spark.sort_values(keys, kind="stable").reset_index(drop=True)
    for col in duck.columns:
        a, b = duck[col], spark[col]
        a_num = pd.api.types.is_numeric_dtype(a) and not pd.api.types.is_bool_dtype(a)
        if a_num or (a.dtype == object and a.dropna().map(lambda v: isinstance(v, (int, float, Decimal))).all()
                     and a.notna().any()):
            np.testing.assert_allclose(pd.to_numeric(b).astype(float).to_numpy(),
                                       pd.to_numeric(a).astype(float).to_numpy(),
                                       rtol=RTOL, atol=0, equal_nan=True, err_msg=col)
        elif pd.api.types.is_bool_dtype(a) or pd.api.types.is_bool_dtype(b):
            assert a.astype(bool).tolist() == b.astype(bool).tolist(), col
        elif pd.api.types.is_datetime64_any_dtype(a) or pd.api.types.is_datetime64_any_dtype(b):
            assert pd.to_datetime(a).tolist() == pd.to_datetime(b).tolist(), col
        else:
            assert a.isna().tolist() == b.isna().tolist(), col
            assert a.dropna().astype(str).tolist() == b.dropna().astype(str).tolist(), col


def test_customer_month_identical(both):
    duck, spark = both
    assert duck["rows"] == spark["rows"]
    _assert_same(duck["customer_month"], spark["customer_month"], ["customer_id", "month"])
    # the comparison has teeth: money, counts, flags and NULLs all occur
    cm = duck["customer_month"]
    assert cm["demand_avg"].gt(0).any() and cm["n_txn"].gt(0).any() and cm["overdue_days_now"].isna().any()


def test_tag_table_identical(both):
    duck, spark = both
    _assert_same(duck["tag_table"], spark["tag_table"], ["customer_id", "month"])
    assert duck["tag_table"].shape[1] > 50


def test_event_triggers_identical(both):
    duck, spark = both
    _assert_same(duck["event_triggers"], spark["event_triggers"], ["customer_id", "month"])
    flags = duck["event_triggers"].drop(columns=["customer_id", "month"])
    assert flags.to_numpy().any()
    _assert_same(duck["product_starts"], spark["product_starts"], ["customer_id", "product_id", "start_month"])


def test_value_inputs_identical(both):
    duck, spark = both
    _assert_same(duck["value_inputs"], spark["value_inputs"], ["customer_id"])
    assert duck["value_inputs"]["deposit_avg_balance"].gt(0).sum() > 100


def test_event_backtest_identical(both):
    """The whole backtest (take-ups, state codes, customer-level sums, the scorecard) on Spark."""
    duck, spark = both
    _assert_same(duck["scorecard"], spark["scorecard"], ["event_id"])
    _assert_same(duck["monthly"], spark["monthly"], ["event_id", "month"])
    card = duck["scorecard"]
    assert card["hits"].sum() > 0 and card["lift"].notna().sum() > 10


def test_spark_table_copies_back_into_duckdb(both, tmp_path):
    duck, spark = both
    local = duckdb.connect()
    engines.copy_to_duckdb(spark["engine"], "product_starts", local, tmp_path)
    back = local.execute("SELECT * FROM product_starts ORDER BY customer_id, product_id, start_month").df()
    _assert_same(duck["product_starts"], back, ["customer_id", "product_id", "start_month"])


def test_stage_notebook_builds_its_tables_on_spark_when_the_engagement_says_so(tmp_path):
    """`engine: spark` in engagement.yaml: stage 02 builds customer_month and the tag table on Spark
    (through StageContext.build_on_engine) and the warehouse ends up with the same rows as DuckDB's."""
    reason = _spark_available()
    if reason:
        pytest.skip(reason)
    from analysis.config import dump_engagement
    from analysis.pipeline import ingest_workspace, run_workspace
    from analysis.synth.bank import generate_bank
    from analysis.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws", bank_zh="测试银行", as_of=AS_OF, language="en")
    generate_bank(ws.inbox, customers=300, seed=4, txn_per_active_month=2)
    cfg = ws.config()
    cfg.engine = "spark"
    cfg.spark.master = "local[1]"
    cfg.spark.shuffle_partitions = 2
    dump_engagement(cfg, ws.config_path)
    _, error = ingest_workspace(ws)
    assert error is None
    outcome = run_workspace(ws, stages=["02_tag_design"], progress=False)
    assert outcome.ok, outcome.failed and outcome.failed.error
    assert (outcome.run_dir / "spark" / "out" / "tag_table").is_dir()   # it really went through Spark
    con = duckdb.connect(str(ws.warehouse))
    from_spark = con.execute("SELECT * FROM tag_table").df()
    tags.build_tag_table(con, load_tag_catalog(ws.catalog), AS_OF)
    _assert_same(con.execute("SELECT * FROM tag_table").df(), from_spark, ["customer_id", "month"])
    con.close()
