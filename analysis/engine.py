"""The query-engine boundary of `iolens analyze`: SQL in, small pyarrow Tables out.

Rules never talk to DuckDB directly. Each data reduction is a plain SQL ``SELECT ... GROUP BY``
(see `analysis/queries.py`) that DuckDB and Spark SQL both accept; the only dialect difference
the queries need, reading element i of a histogram list, goes through `Engine.list_item`.
A Spark engine (issue 8) implements the same three members and nothing else changes.

In: a capture directory (Parquet files, read in place, never all loaded into memory) or a dict
of in-memory pyarrow Tables (the TUI's sliding window). Out: `pa.Table` per query.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from iolens.collector import schema as S
from iolens.collector.capture import open_for_read, table_files


class Engine(Protocol):
    """What the rules need from a query engine."""

    def has(self, table: str) -> bool:
        """True when `table` is present with at least one row (or file)."""

    def columns(self, table: str) -> list[str]:
        """Column names of `table` ([] when absent)."""

    def query(self, sql: str) -> pa.Table:
        """Run one SELECT; return its (small) result."""

    def list_item(self, column: str, index: int) -> str:
        """SQL for element `index` (0-based) of a list column, NULL when past its end."""

    def sample(self, table: str, percent: float) -> str:
        """A FROM item reading about `percent` % of `table` (Spark: TABLESAMPLE (p PERCENT))."""

    def row_count(self, table: str) -> int:
        """Rows of `table` (cheap: from file metadata), 0 when absent."""


class DuckDBEngine:
    """DuckDB in-process engine over Arrow tables or Parquet files.

    Use `from_tables` or `from_capture`; `close()` (or a `with` block) frees the connection.
    """

    def __init__(self, threads: int | None = None) -> None:
        self.con = duckdb.connect(config={"threads": threads or max(1, os.cpu_count() or 1)})
        self.con.sql("SET enable_progress_bar = false")  # never draw on the user's terminal
        self._columns: dict[str, list[str]] = {}
        self._keep: list[pa.Table] = []  # registered Arrow tables must outlive the queries
        self._rows: dict[str, int] = {}

    @classmethod
    def from_tables(cls, tables: dict[str, pa.Table],
                    reuse: DuckDBEngine | None = None) -> DuckDBEngine:
        """An engine over in-memory tables (name -> pyarrow Table); empty tables are skipped.

        `reuse`: an engine from an earlier call whose connection is recycled (its tables are
        replaced); opening a DuckDB connection costs more than analysing a small window.
        """
        eng = reuse if reuse is not None else cls(threads=1)  # small windows: 1 thread
        eng.release()
        for name, table in tables.items():
            if table is None or table.num_rows == 0:
                continue
            eng.con.register(name, table)
            eng._keep.append(table)
            eng._columns[name] = list(table.column_names)
            eng._rows[name] = table.num_rows
        return eng

    @classmethod
    def from_capture(cls, root: str | os.PathLike[str],
                     skip: set[str] | None = None) -> tuple[DuckDBEngine, list[tuple[str, str]]]:
        """An engine over every readable Parquet file of a capture (or a tree of captures).

        Files are validated by their schema metadata only (cheap); foreign or unreadable ones
        are left out and returned as (file, reason), the way `read_capture` reports them.
        `skip` names files already known to be bad.
        """
        eng = cls()
        files, rows, skipped = valid_files(Path(root), skip)
        eng._rows.update(rows)
        for name, good in files.items():
            quoted = ", ".join("'" + f.replace("'", "''") + "'" for f in good)
            # union_by_name: files written by an older minor version may lack a column.
            eng.con.sql(f"CREATE VIEW {name} AS SELECT * FROM "
                        f"read_parquet([{quoted}], union_by_name=true)")
            eng._columns[name] = [c[0] for c in eng.con.sql(f"DESCRIBE {name}").fetchall()]
        return eng, skipped

    def has(self, table: str) -> bool:
        return table in self._columns

    def columns(self, table: str) -> list[str]:
        return self._columns.get(table, [])

    def query(self, sql: str) -> pa.Table:
        return _undecimal(self.con.sql(sql).to_arrow_table())

    def list_item(self, column: str, index: int) -> str:
        # DuckDB lists are 1-based; an index past the end gives NULL, which SUM ignores.
        return f"{column}[{index + 1}]"

    def sample(self, table: str, percent: float) -> str:
        # Ten evenly spaced time slices covering `percent` of the capture. Files are written
        # in time order, so row-group statistics on ts let the reader skip everything else:
        # unlike TABLESAMPLE, the list columns of skipped rows are never decoded.
        lo, hi = self.con.sql(f"SELECT epoch_ns(MIN(ts)), epoch_ns(MAX(ts)) FROM {table}"
                              ).fetchall()[0]
        if lo is None or hi <= lo:
            return table
        span, n = hi - lo, 10
        width = span * percent / 100 / n
        ranges = " OR ".join(
            f"(ts >= to_timestamp({(lo + i * span / n) / 1e9:.6f}) AND "
            f"ts < to_timestamp({(lo + i * span / n + width) / 1e9:.6f}))" for i in range(n))
        return f"(SELECT * FROM {table} WHERE {ranges}) AS sampled"

    def row_count(self, table: str) -> int:
        return self._rows.get(table, 0)

    def release(self) -> None:
        """Drop the registered tables (keep the connection for reuse)."""
        for name in list(self._columns):
            self.con.unregister(name)
        self._columns.clear()
        self._keep.clear()
        self._rows.clear()

    def close(self) -> None:
        self.con.close()
        self._keep.clear()

    def __enter__(self) -> DuckDBEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def valid_files(root: Path, skip: set[str] | None = None
                ) -> tuple[dict[str, list[str]], dict[str, int], list[tuple[str, str]]]:
    """Every table's readable Parquet files under `root` (one capture or a hive tree).

    Validated by their schema metadata only (cheap). Returns (table -> files, table -> rows,
    [(file, reason)] left out): foreign, unreadable or misplaced files, the way
    `read_capture` reports them. `skip` names files already known to be bad. Both engines
    register exactly these files.
    """
    files: dict[str, list[str]] = {}
    rows: dict[str, int] = {}
    skipped: list[tuple[str, str]] = []
    open_for_read(root)  # a crashed writer's unfinished segment becomes readable Parquet
    for name in _table_names(root):
        for fp in table_files(root, name):
            if skip and str(fp) in skip:
                continue
            try:
                md = pq.read_metadata(fp)
                got = S.check_file_schema(md.schema.to_arrow_schema(), str(fp))
                if got and got != name:
                    raise S.SchemaError(f"{fp}: holds table {got!r}, expected {name!r}")
            except (S.SchemaError, OSError, pa.ArrowException) as exc:
                why = (str(exc).splitlines() or [type(exc).__name__])[0]
                skipped.append((str(fp), why if str(fp) in why else f"{fp}: {why}"))
                continue
            files.setdefault(name, []).append(str(fp))
            rows[name] = rows.get(name, 0) + md.num_rows
    return files, rows, skipped


def _undecimal(t: pa.Table) -> pa.Table:
    """DuckDB sums BIGINTs into HUGEINT (Arrow decimal128); rules want plain int64."""
    for i, f in enumerate(t.schema):
        if pa.types.is_decimal(f.type):
            typ = pa.int64() if f.type.scale == 0 else pa.float64()
            t = t.set_column(i, f.name, t.column(i).cast(typ))
    return t


def _table_names(root: Path) -> list[str]:
    """Known tables plus the optional ones other probes add (block, pagecache, ...)."""
    names = list(S.TABLES)
    for extra in ("block", "pagecache", "faults", "tcp", "gpu"):
        if extra not in names:
            names.append(extra)
    return names
