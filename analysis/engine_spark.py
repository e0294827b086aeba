"""Apache Spark implementation of the analysis `Engine` (issue 8: fleet-scale captures).

The rules and their SQL (analysis/queries.py) are the same ones DuckDB runs; only the engine's
few members differ: list indexing (`try_element_at`, 1-based, NULL past the end even in ANSI
mode), sampling (the same ten time slices as DuckDB, so both read the same rows), and how
tables are registered (Parquet files as temporary views). Results come back as small pyarrow Tables.

`pyspark` is an optional dependency (`pip install 'iolens[spark]'`); Java 17+ must be on PATH.
`master` is any Spark master URL: `local[2]` on one machine, `spark://host:7077`, `yarn`, ...
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pyarrow as pa

from iolens.analysis.engine import _undecimal, valid_files
from iolens.collector import schema as S

# pyspark 4 warns on pandas >= 3 although the engine never converts through pandas
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                        category=FutureWarning)

#: the driver JVM's logging: errors only (no start-up chatter on the user's terminal)
LOG4J2 = Path(__file__).with_name("spark-log4j2.properties")


class SparkEngine:
    """Spark SQL over a capture's Parquet files (read in place by the executors)."""

    def __init__(self, master: str = "local[2]", app: str = "iolens-analyze") -> None:
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise RuntimeError("the spark engine needs pyspark: pip install 'iolens[spark]'") \
                from exc
        os.environ.setdefault("PYSPARK_PYTHON", os.environ.get("PYSPARK_PYTHON", "python3"))
        builder = (SparkSession.builder.master(master).appName(app)
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.session.timeZone", "UTC")
                   .config("spark.sql.shuffle.partitions", "8")
                   .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                   # Spark cannot read Parquet TIMESTAMP(NANOS): read as int64 ns, and the
                   # views below turn them back into (microsecond) timestamps.
                   .config("spark.sql.legacy.parquet.nanosAsLong", "true"))
        if LOG4J2.is_file() and not os.environ.get("IOLENS_SPARK_VERBOSE"):
            builder = builder.config("spark.driver.extraJavaOptions",
                                     f"-Dlog4j2.configurationFile=file:{LOG4J2}")
        if master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            # one machine: keep the driver on loopback. On a cluster the executors must reach
            # the driver, so its address is left to Spark (or spark.driver.host by the user).
            builder = (builder.config("spark.driver.bindAddress", "127.0.0.1")
                       .config("spark.driver.host", "127.0.0.1"))
        self.spark = builder.getOrCreate()
        # a failed task is reported to the user as one line (iolens analyze); the JVM's own
        # stack traces of it would only bury that line
        self.spark.sparkContext.setLogLevel("FATAL")
        self._columns: dict[str, list[str]] = {}
        self._rows: dict[str, int] = {}

    @classmethod
    def from_capture(cls, root: str | os.PathLike[str], skip: set[str] | None = None,
                     master: str = "local[2]") -> tuple[SparkEngine, list[tuple[str, str]]]:
        """Register every readable table file under `root` (a capture or a hive tree)."""
        eng = cls(master)
        files, rows, skipped = valid_files(Path(root), skip)
        eng._rows.update(rows)
        for name, good in files.items():
            # recursiveFileLookup turns partition discovery off: hive directories
            # (host=, date=) must not become extra columns clashing with the files' own
            # `host` column (a basePath would only cover one directory of a fleet tree).
            df = (eng.spark.read.option("mergeSchema", "true")
                  .option("recursiveFileLookup", "true")
                  .parquet(*good))
            df = df.selectExpr(*[_ts_expr(c, S.TABLES[name]) for c in df.columns])
            df.createOrReplaceTempView(name)
            eng._columns[name] = list(df.columns)
        return eng, skipped

    def has(self, table: str) -> bool:
        return table in self._columns

    def columns(self, table: str) -> list[str]:
        return self._columns.get(table, [])

    def query(self, sql: str) -> pa.Table:
        df = self.spark.sql(sql)
        t = df.toArrow() if hasattr(df, "toArrow") else pa.Table.from_pandas(df.toPandas())
        return _undecimal(_utc(t))

    def list_item(self, column: str, index: int) -> str:
        return f"try_element_at({column}, {index + 1})"

    def sample(self, table: str, percent: float) -> str:
        # The same ten time slices as DuckDBEngine.sample (not TABLESAMPLE, which is random):
        # both engines then read the very same rows, so sampled histograms agree exactly.
        row = self.spark.sql(f"SELECT unix_micros(MIN(ts)), unix_micros(MAX(ts)) FROM {table}"
                             ).collect()[0]
        if row[0] is None or row[1] <= row[0]:
            return table
        lo, hi = row[0] * 1000, row[1] * 1000  # ns, as DuckDB computes them
        span, n = hi - lo, 10
        width = span * percent / 100 / n

        def at(ns: float) -> str:  # DuckDB: to_timestamp(seconds formatted to 6 decimals)
            return f"timestamp_micros({round(float(f'{ns / 1e9:.6f}') * 1e6)})"
        ranges = " OR ".join(
            f"(ts >= {at(lo + i * span / n)} AND ts < {at(lo + i * span / n + width)})"
            for i in range(n))
        return f"(SELECT * FROM {table} WHERE {ranges}) AS sampled"

    def row_count(self, table: str) -> int:
        return self._rows.get(table, 0)

    def close(self) -> None:
        for name in list(self._columns):
            self.spark.catalog.dropTempView(name)
        self._columns.clear()

    def __enter__(self) -> SparkEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ts_expr(col: str, schema: pa.Schema) -> str:
    """SELECT expression for a column: ns-since-epoch int64 back to a timestamp."""
    if col in schema.names and pa.types.is_timestamp(schema.field(col).type):
        return f"timestamp_micros({col} div 1000) AS {col}"
    return f"`{col}`"


def _utc(t: pa.Table) -> pa.Table:
    """Spark returns microsecond timestamps in the session zone; make them nanosecond UTC
    like DuckDB's (the rules cast timestamps to int64 and read them as ns)."""
    for i, f in enumerate(t.schema):
        if pa.types.is_timestamp(f.type) and (f.type.tz not in (None, "UTC")
                                              or f.type.unit != "ns"):
            t = t.set_column(i, f.name, t.column(i).cast(pa.timestamp("ns", "UTC")))
    return t
