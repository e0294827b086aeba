"""A capture -> one CSV file per table, for spreadsheets.

`export_csv(capture, out_dir)` writes `OUT/<table>.csv` for every table of the capture
(io, procs, events, health, and any table a probe registered), with a header row and the
schema's columns in order. Conversions, all column-wise:

- list columns (lat_hist, size_hist) become one space-separated string ("0 0 3 1");
- timestamps are written as ISO-8601 UTC with nanoseconds;
- text that a spreadsheet would run as a formula (starting with = + - @, tab or CR) gets a
  leading apostrophe, the usual guard against CSV formula injection (process names and
  paths come from the traced workload).

Files are created 0600 (a capture holds paths and command lines) and never overwrite an
existing file: if any target exists, nothing is written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from iolens.analysis.export import ExportError
from iolens.collector.capture import Capture

_FORMULA_START = r"^[=+\-@\t\r]"


def export_csv(capture: Capture, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write one CSV per table of `capture` into `out_dir` (created if missing).

    Returns the files written. Raises ExportError (one line) if `out_dir` is not a
    directory, a target file already exists, or writing fails.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory")
    targets = {name: out / f"{name}.csv" for name in capture.tables}
    existing = [str(p) for p in targets.values() if p.exists() or p.is_symlink()]
    if existing:
        raise ExportError(f"{existing[0]} already exists (nothing was overwritten; choose "
                          "another --csv directory)")
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {out}: {exc.strerror or exc}") from None
    written = []
    for name, table in capture.tables.items():
        _write(targets[name], spreadsheet_table(table))
        written.append(targets[name])
    return written


def spreadsheet_table(table: pa.Table) -> pa.Table:
    """`table` with list columns joined by spaces and formula-like text guarded."""
    cols, fields = [], []
    for f, col in zip(table.schema, table.columns):
        if pa.types.is_list(f.type) or pa.types.is_large_list(f.type):
            col = pc.binary_join(col.cast(pa.list_(pa.string())), " ")
        elif pa.types.is_string(f.type) and len(col):
            risky = pc.fill_null(pc.match_substring_regex(col, _FORMULA_START), False)
            col = pc.if_else(risky, pc.binary_join_element_wise("'", col, ""), col)
        cols.append(col)
        fields.append(pa.field(f.name, col.type))
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def _write(path: Path, table: pa.Table) -> None:
    """Create `path` 0600 (never through a symlink, never over a file) and write CSV."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            pacsv.write_csv(table, fh)
    except FileExistsError:
        raise ExportError(f"{path} already exists (nothing was overwritten)") from None
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
