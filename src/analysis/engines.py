"""Where the stage SQL runs: DuckDB (the default) or Spark, behind one small interface.

Catalogue and stage SQL is written once, in DuckDB's dialect. `DuckDBEngine` runs it as is.
`SparkEngine` parses each statement with sqlglot, rewrites the few constructs whose meaning differs
between the two engines (below), transpiles it to Spark SQL and runs it; `CREATE TABLE x AS SELECT`
becomes a materialised (checkpointed) temp view, so later statements read it like a table.

Rewrites on the way to Spark, each because Spark would otherwise answer differently or refuse:
- `datediff('month', a, b)` counts month boundaries crossed in DuckDB; Spark's counts whole months
  elapsed. It becomes `(year(b) - year(a)) * 12 + month(b) - month(a)`.
- `OVER (w ROWS BETWEEN …)` (a frame added to a named window) is not Spark syntax: the named
  window's partition and order are copied into every OVER clause and the WINDOW clause dropped.
- `any_value(x)` skips NULLs in DuckDB; it becomes Spark's `any_value(x, true)` (ignore nulls).
- `a / b` is always a DOUBLE in DuckDB (decimal literals such as `12.0` included); Spark keeps
  DECIMAL arithmetic (scale 6) when a side is decimal. It becomes `CAST(a AS DOUBLE) / b`.
- `round(x, n)` on a double rounds x's exact binary value half away from zero in DuckDB
  (round(211224.835, 2) = 211224.83, the double being 211224.83499…); Spark rounds the shortest
  decimal text half-up (…84). That differs at every decimal-text tie — 1 customer in 12 when a
  12-month sum of cents is divided by 12 — so it becomes an exact double-arithmetic emulation.
NULL ordering (DuckDB: NULLS LAST ascending; Spark: NULLS FIRST) is made explicit by sqlglot.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Protocol, runtime_checkable

import duckdb
import pandas as pd
import pyarrow as pa
import sqlglot
from sqlglot import exp


def query_frame(con, sql: str) -> pd.DataFrame:
    """Run `sql` on a DuckDB connection (or a SparkConnection) and return the rows as a DataFrame.

    DuckDB's result goes through Arrow: ``.df()`` first builds a Python string object for every
    string value, 1.5 s against 0.6–0.9 s for a million customers' ids and codes. Column types
    are those ``.df()`` gives: DECIMAL (e.g. a literal 0.45) as float64, DATE as datetime64, an
    integer or boolean column with NULLs as pandas' nullable Int / boolean.
    """
    result = con.execute(sql)
    to_arrow = getattr(result, "to_arrow_table", None)
    if to_arrow is None:                       # SparkResult
        return result.df()
    with warnings.catch_warnings():
        # DuckDB 2 suggests con.sql(query) to save one copy of the rows; that copy costs less
        # than the string objects, and con.execute keeps the statement timed by the bench
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)
        table = to_arrow()
    fields = [pa.field(f.name, pa.timestamp("us")) if pa.types.is_date(f.type) else f
              for f in table.schema]
    table = table.cast(pa.schema(fields))
    frame = table.to_pandas()
    for i, f in enumerate(table.schema):
        if pa.types.is_decimal(f.type):
            # Arrow's decimal → double cast is not correctly rounded (0.6 → 0.6000000000000001);
            # Python's float(Decimal) is, as DuckDB's own cast. Slow: cast to DOUBLE in SQL.
            frame.isetitem(i, pd.Series(table.column(i).to_pylist(), index=frame.index,
                                        dtype=object).astype(float))
    # .df() gives an integer or boolean column with NULLs pandas' nullable dtype (Arrow: float / object)
    nullable = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
                pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
                pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(), pa.bool_(): pd.BooleanDtype()}
    for i, f in enumerate(table.schema):
        if f.type in nullable and table.column(i).null_count:
            frame.isetitem(i, table.column(i).to_pandas(types_mapper=nullable.get))
    return frame


@runtime_checkable
class Engine(Protocol):
    """The few operations the stage SQL needs; statements are DuckDB SQL in both engines."""

    name: str

    def run(self, sql: str) -> None:
        """Execute one or more `;`-separated statements."""

    def df(self, sql: str) -> pd.DataFrame:
        """Run one query and return its (small, aggregated) result."""

    def columns(self, table: str) -> list[str]:
        """Column names of a table or view, in order."""

    def has_table(self, table: str) -> bool:
        """True if the table or view exists."""


class DuckDBEngine:
    """Runs the SQL unchanged on a DuckDB connection (the warehouse)."""

    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def run(self, sql: str) -> None:
        self.con.execute(sql)

    def df(self, sql: str) -> pd.DataFrame:
        return self.con.execute(sql).df()

    def columns(self, table: str) -> list[str]:
        return [r[0] for r in self.con.execute(f"DESCRIBE {table}").fetchall()]

    def has_table(self, table: str) -> bool:
        return bool(self.con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                                     [table]).fetchone()[0])


def as_engine(con_or_engine) -> Engine:
    """A DuckDB connection is wrapped in DuckDBEngine; an engine is returned as is."""
    if isinstance(con_or_engine, duckdb.DuckDBPyConnection):
        return DuckDBEngine(con_or_engine)
    if isinstance(con_or_engine, SparkConnection):
        return con_or_engine.engine
    if isinstance(con_or_engine, Engine):
        return con_or_engine
    raise TypeError(f"expected a DuckDB connection or an Engine, got {type(con_or_engine).__name__}")


# ---------------------------------------------------------------------------------------------
# DuckDB SQL → Spark SQL
# ---------------------------------------------------------------------------------------------

def _month_diff(node: exp.Expression) -> exp.Expression:
    if not isinstance(node, exp.DateDiff):
        return node
    unit = node.args.get("unit")
    if unit is None or unit.name.upper() not in ("MONTH", "MONTHS", "MON", "MONS"):
        return node
    # sqlglot's DateDiff: this = end, expression = start (DuckDB datediff(unit, start, end)).
    end, start = node.this, node.expression
    return exp.paren(sqlglot.parse_one(
        f"(year({end.sql('spark')}) - year({start.sql('spark')})) * 12 "
        f"+ (month({end.sql('spark')}) - month({start.sql('spark')}))", read="spark"), copy=False)


def _inline_named_windows(select: exp.Expression) -> exp.Expression:
    """Copy each WINDOW definition into the OVER clauses that name it; drop the WINDOW clause."""
    if not isinstance(select, exp.Select) or not select.args.get("windows"):
        return select
    named = {w.this.name: w for w in select.args["windows"]}
    for win in list(select.find_all(exp.Window)):
        if win.parent is select and win.arg_key == "windows":
            continue
        ref = win.args.get("alias")
        if ref is None or ref.name not in named:
            continue
        base = named[ref.name]
        if base.args.get("partition_by") and not win.args.get("partition_by"):
            win.set("partition_by", [p.copy() for p in base.args["partition_by"]])
        if base.args.get("order") and not win.args.get("order"):
            win.set("order", base.args["order"].copy())
        if base.args.get("spec") and not win.args.get("spec"):
            win.set("spec", base.args["spec"].copy())
        win.set("alias", None)
    select.set("windows", None)
    return select


def _any_value_ignore_nulls(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.IgnoreNulls) and isinstance(node.this, exp.AnyValue):
        return exp.Anonymous(this="any_value", expressions=[node.this.this.copy(), exp.true()])
    if isinstance(node, exp.AnyValue) and not isinstance(node.parent, exp.IgnoreNulls):
        return exp.Anonymous(this="any_value", expressions=[node.this.copy(), exp.true()])
    return node


def _double_division(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Div) and not (isinstance(node.this, exp.Cast) and node.this.to.is_type("double")):
        node.set("this", exp.cast(node.this, "double"))
    return node


# round(x, n) as DuckDB computes it on a double: the exact binary value of x rounded half away
# from zero. p = x·10^n is rounded; its exact error (Dekker's two-product with a Veltkamp split;
# 10^n has few significant bits, so every partial product is exact) decides the ties.
_ROUND_TEMPLATE = """
CASE WHEN abs(__x * __s) >= CAST(4503599627370496 AS DOUBLE) OR isnan(__x) THEN __x
ELSE (floor(__x * __s) + CASE
    WHEN __x * __s - floor(__x * __s) > CAST(0.5 AS DOUBLE) THEN 1
    WHEN __x * __s - floor(__x * __s) < CAST(0.5 AS DOUBLE) THEN 0
    WHEN ((__x * CAST(134217729 AS DOUBLE) - (__x * CAST(134217729 AS DOUBLE) - __x)) * __s - __x * __s)
         + (__x - (__x * CAST(134217729 AS DOUBLE) - (__x * CAST(134217729 AS DOUBLE) - __x))) * __s
         > CAST(0 AS DOUBLE) THEN 1
    WHEN ((__x * CAST(134217729 AS DOUBLE) - (__x * CAST(134217729 AS DOUBLE) - __x)) * __s - __x * __s)
         + (__x - (__x * CAST(134217729 AS DOUBLE) - (__x * CAST(134217729 AS DOUBLE) - __x))) * __s
         < CAST(0 AS DOUBLE) THEN 0
    WHEN __x > CAST(0 AS DOUBLE) THEN 1 ELSE 0 END) / __s
END"""


def _duckdb_round(node: exp.Expression) -> exp.Expression:
    decimals = node.args.get("decimals") if isinstance(node, exp.Round) else None
    if decimals is None or not decimals.is_int or not 0 < int(decimals.name) <= 10:
        return node
    value = exp.cast(node.this.copy(), "double")
    scale = exp.cast(exp.Literal.number(10 ** int(decimals.name)), "double")
    tree = sqlglot.parse_one(_ROUND_TEMPLATE, read="spark")

    def fill(n):
        if isinstance(n, exp.Column) and n.name in ("__x", "__s"):
            return (value if n.name == "__x" else scale).copy()
        return n

    return exp.paren(tree.transform(fill), copy=False)


def to_spark(statement: exp.Expression | str) -> str:
    """One DuckDB statement (text or sqlglot tree) as Spark SQL, with the rewrites above."""
    tree = sqlglot.parse_one(statement, read="duckdb") if isinstance(statement, str) else statement.copy()
    for select in list(tree.find_all(exp.Select)):
        _inline_named_windows(select)
    tree = tree.transform(_month_diff).transform(_any_value_ignore_nulls).transform(_double_division).transform(_duckdb_round)
    return tree.sql(dialect="spark")


def split_statements(sql: str) -> list[exp.Expression]:
    return [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]


def _create_as(statement: exp.Expression) -> tuple[str, exp.Expression] | None:
    """(name, SELECT) of a `CREATE [OR REPLACE] [TEMP] TABLE|VIEW name AS SELECT`, else None."""
    if isinstance(statement, exp.Create) and statement.args.get("kind", "").upper() in ("TABLE", "VIEW") \
            and statement.expression is not None:
        target = statement.this
        table = target.this if isinstance(target, exp.Schema) else target
        return table.name, statement.expression
    return None


class SparkEngine:
    """Runs DuckDB-dialect stage SQL on a SparkSession (local mode, a cluster, or over Hive tables).

    Warehouse tables are whatever the session resolves: temp views registered by
    `register_duckdb_tables`, or the tables of `database` (e.g. a Hive database) when given.
    Tables the stage SQL creates are temp views, checkpointed so each is computed once.
    """

    name = "spark"

    def __init__(self, spark, database: str | None = None):
        self.spark = spark
        if database:
            spark.catalog.setCurrentDatabase(database)

    def run(self, sql: str) -> None:
        self._run_all(sql)

    def df(self, sql: str) -> pd.DataFrame:
        return self._run_all(sql).toPandas()

    def _run_all(self, sql: str):
        """Run every statement; the DataFrame of the last (a query's rows, or a created table)."""
        last = None
        for statement in split_statements(sql):
            created = _create_as(statement)
            if created is None:
                last = self.spark.sql(to_spark(statement))
                continue
            name, select = created
            # localCheckpoint is eager: the table is computed now, once, and later reads do not
            # recompute its lineage (what a DuckDB table gives for free).
            last = self.spark.sql(to_spark(select)).localCheckpoint()
            last.createOrReplaceTempView(name)
        return last

    @property
    def con(self) -> "SparkConnection":
        """A DuckDB-connection look-alike, so stage functions written against `con.execute(sql)`
        run on Spark unchanged."""
        return SparkConnection(self)

    def columns(self, table: str) -> list[str]:
        return list(self.spark.table(table).columns)

    def has_table(self, table: str) -> bool:
        return bool(self.spark.catalog.tableExists(table))


class SparkResult:
    """The part of DuckDB's result API the stage code uses: df(), fetchall(), fetchone()."""

    def __init__(self, frame):
        self._frame = frame

    def df(self) -> pd.DataFrame:
        return self._frame.toPandas() if self._frame is not None else pd.DataFrame()

    def fetchall(self) -> list[tuple]:
        return [tuple(r) for r in self._frame.collect()] if self._frame is not None else []

    def fetchone(self) -> tuple | None:
        rows = self._frame.take(1) if self._frame is not None else []
        return tuple(rows[0]) if rows else None


class SparkConnection:
    """`con.execute(sql)` over a SparkEngine: DuckDB SQL in, transpiled, run on Spark."""

    def __init__(self, engine: SparkEngine):
        self.engine = engine

    def execute(self, sql: str, parameters=None) -> SparkResult:
        if parameters:
            raise NotImplementedError("SparkConnection.execute takes no bound parameters; inline literals")
        return SparkResult(self.engine._run_all(sql))

    def sql(self, sql: str) -> SparkResult:
        return self.execute(sql)


def spark_session(master: str = "local[2]", *, app_name: str = "sme-playbook", shuffle_partitions: int = 8,
                  conf: dict[str, str] | None = None):
    """A SparkSession bound to loopback when local (no ports on other interfaces, no UI).

    For a cluster pass its master URL (e.g. "yarn", "spark://host:7077"); then the bind settings
    are left to the cluster's configuration.
    """
    from pyspark.sql import SparkSession

    local = master.startswith("local")
    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.session.timeZone", "UTC"))
    if local:
        builder = (builder.config("spark.driver.bindAddress", "127.0.0.1")
                   .config("spark.driver.host", "127.0.0.1"))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def register_duckdb_tables(spark, con: duckdb.DuckDBPyConnection, folder: Path | None = None,
                           tables: list[str] | None = None) -> list[str]:
    """Copy warehouse tables (default: all base tables but internal `_` ones) to Parquet in `folder` and register each
    as a Spark temp view of the same name; returns the table names."""
    folder = Path(folder or tempfile.mkdtemp(prefix="spark_wh_"))
    folder.mkdir(parents=True, exist_ok=True)
    if tables is None:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema = 'main' ORDER BY table_name").fetchall() if not r[0].startswith("_")]
    for table in tables:
        # Spark skips files whose names start with "_" or "." (its metadata convention).
        path = folder / f"t_{table}.parquet"
        con.execute(f"COPY (SELECT * FROM {table}) TO '{path.as_posix()}' (FORMAT parquet)")
        spark.read.parquet(str(path)).createOrReplaceTempView(table)
    return tables


def copy_to_duckdb(engine: SparkEngine, table: str, con: duckdb.DuckDBPyConnection,
                   folder: Path | None = None) -> None:
    """Bring a table computed on Spark back into the DuckDB warehouse (via Parquet), e.g. the
    customer × month tag table, so the notebooks' small aggregate queries run locally."""
    folder = Path(folder or tempfile.mkdtemp(prefix="spark_out_"))
    path = folder / table
    engine.spark.table(table).write.mode("overwrite").parquet(str(path))
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM read_parquet('{path.as_posix()}/*.parquet')")


def engine_for(config, con: duckdb.DuckDBPyConnection, scratch: Path | None = None) -> Engine:
    """The engine an engagement asks for (`engine:` in engagement.yaml).

    duckdb: the warehouse connection itself. spark: a session from `spark:` (master, conf); its
    warehouse tables are the Hive database `spark.database` when set, else the DuckDB warehouse's
    tables copied to Parquet under `scratch` and registered as temp views.
    """
    if config.engine == "duckdb":
        return DuckDBEngine(con)
    settings = config.spark
    spark = spark_session(settings.master, shuffle_partitions=settings.shuffle_partitions, conf=settings.conf)
    if settings.database:
        return SparkEngine(spark, database=settings.database)
    register_duckdb_tables(spark, con, scratch)
    return SparkEngine(spark)
