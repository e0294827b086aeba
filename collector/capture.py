"""Writing and reading a capture directory (the on-disk contract of `collector.schema`).

Writer: `CaptureWriter(dir, meta).write_interval(interval)` appends each table's rows to the
current segment file `DIR/<table>/part-NNNNNN.parquet.tmp`; a segment is closed and renamed
to `.parquet` on rotation (by time or size) and at `close()`. So a file without `.tmp` is
always complete, and a `kill -9` loses at most the open segment. `capture.json` is rewritten
atomically (write + rename) at start, at each rotation and at close; `complete` is true only
after a clean close, so a reader can tell a capture that ended abruptly.

Files are created 0600 in a 0700 directory, never through a symlink (O_NOFOLLOW | O_EXCL).

Reader: `read_capture(dir)` returns the tables as pyarrow Tables plus the metadata and a list
of files it skipped (corrupt, truncated, foreign, wrong version) with the reason for each.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from iolens.collector import schema as S

META_FILE = "capture.json"


class CaptureError(Exception):
    """A capture cannot be written or read; the message is one line for the user."""


@dataclass
class CaptureMeta:
    """What `capture.json` holds. Counters are updated as the capture runs."""

    schema_version: int = S.SCHEMA_VERSION
    iolens_version: str = ""
    host: str = field(default_factory=socket.gethostname)
    kernel: str = field(default_factory=lambda: os.uname().release)
    started: str = ""                 # ISO-8601 UTC
    ended: str | None = None
    complete: bool = False            # true only after a clean close
    command: list[str] | None = None  # the traced command, if any
    target_pids: list[int] = field(default_factory=list)
    mode: str = "system"              # system | pids | command | cgroup
    interval_s: float = 1.0
    probes_attached: list[str] = field(default_factory=list)
    probes_skipped: dict[str, str] = field(default_factory=dict)  # name -> reason
    options: dict[str, Any] = field(default_factory=dict)
    intervals: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    lost_events: int = 0
    agg_overflow: int = 0
    collector_cpu_s: float = 0.0
    exit_code: int | None = None
    clock: list[dict[str, float]] = field(default_factory=list)  # realtime/monotonic pairs
    redacted: bool = False
    errors: list[str] = field(default_factory=list)
    #: what the capture saw of what happened (see `note_coverage`); absent in older captures
    coverage: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaptureMeta:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def note_coverage(self, ops: int, uncounted: int, lost_events: int, newfile_lost: int,
                      unresolved_ops: int, interval_s: float, target_s: float) -> None:
        """Add one interval to the coverage totals: ops counted and not counted (kernel map
        full), events lost, new files whose path was lost, ops whose file/peer has no name,
        and intervals stretched more than 20% beyond their target length."""
        c = self.coverage
        for k, v in (("ops", ops), ("uncounted_ops", uncounted), ("lost_events", lost_events),
                     ("newfile_lost", newfile_lost), ("unresolved_ops", unresolved_ops)):
            c[k] = c.get(k, 0) + int(v)
        c["intervals"] = c.get("intervals", 0) + 1
        if interval_s > 1.2 * target_s:
            c["stretched_intervals"] = c.get("stretched_intervals", 0) + 1
        c["max_interval_s"] = max(c.get("max_interval_s", 0.0), round(interval_s, 3))


def _open_private(path: Path, mode: str = "wb"):
    """Create `path` 0600, refusing to follow a symlink or reuse an existing file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    return os.fdopen(fd, mode)


def prepare_dir(path: Path, must_be_new: bool = True) -> None:
    """Create the capture directory 0700; refuse one that exists (if `must_be_new`), a
    symlink, or one owned by another user. Raises CaptureError."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise CaptureError(f"output directory's parent does not exist: {parent}") from None
        if not os.access(parent, os.W_OK | os.X_OK):
            raise CaptureError(f"output directory not writable: {parent}") from None
        try:
            os.mkdir(path, 0o700)
        except OSError as exc:
            raise CaptureError(f"cannot create {path}: {exc.strerror}") from None
        return
    if stat.S_ISLNK(st.st_mode):
        raise CaptureError(f"refusing to write into a symlink: {path}")
    if not stat.S_ISDIR(st.st_mode):
        raise CaptureError(f"output path exists and is not a directory: {path}")
    if st.st_uid != os.geteuid():
        raise CaptureError(f"refusing a capture directory owned by uid {st.st_uid}: {path}")
    if must_be_new and any(path.iterdir()):
        raise CaptureError(f"capture directory already exists and is not empty: {path} "
                           "(choose a new -o, nothing was overwritten)")
    os.chmod(path, 0o700)


def _make_private_dirs(root: Path, parts: tuple[str, ...]) -> None:
    """Create root/parts... 0700, one level at a time, refusing a symlink or a directory of
    another user planted on the way (mkdir(exist_ok=True) would follow a symlinked dir)."""
    d = root
    for part in parts:
        d = d / part
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(d)
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise CaptureError(f"refusing to write through {d}: not a plain directory "
                               "(symlink or file planted in the capture directory)")
        if st.st_uid != os.geteuid():
            raise CaptureError(f"refusing to write into {d}: owned by uid {st.st_uid}")


def write_meta(dirpath: Path, meta: CaptureMeta, name: str = META_FILE) -> None:
    """Atomically replace DIR/<name> (capture.json)."""
    tmp = dirpath / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    with _open_private(tmp, "w") as f:
        json.dump(asdict(meta), f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, dirpath / name)


class _Segment:
    """One open Parquet file of one table."""

    def __init__(self, path: Path, schema: pa.Schema, compression: str) -> None:
        self.final = path
        self.tmp = path.with_name(path.name + ".tmp")
        self.fh = _open_private(self.tmp)
        self.writer = pq.ParquetWriter(self.fh, schema, compression=compression,
                                       use_dictionary=True, write_statistics=True)
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        try:
            self.writer.close()
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
        except BaseException:
            self.abort()
            raise
        os.rename(self.tmp, self.final)

    def abort(self) -> None:
        """Give up on this segment (disk full, I/O error): leave it as `.tmp`, which readers
        ignore, and make sure nothing retries writing its footer later (the ParquetWriter's
        finaliser would, and print a traceback)."""
        self.writer.is_open = False
        try:
            self.fh.close()
        except OSError:
            pass


class CaptureWriter:
    """Appends intervals to a capture directory with rotation.

    Args:
        path: capture directory (created 0700; must not exist or be empty).
        meta: initial metadata; the writer updates its counters.
        rotate_s: close segments after this many seconds of wall time.
        rotate_bytes: ... or once the open io segment's file passes this size.
        layout: "flat" (DIR/<table>/part-N.parquet) or "hive"
            (DIR/host=<h>/date=<YYYY-MM-DD>/<table>/part-N.parquet).
    """

    def __init__(self, path: str | os.PathLike[str], meta: CaptureMeta, *, rotate_s: float = 30.0,
                 rotate_bytes: int = 256 << 20, compression: str = "zstd",
                 must_be_new: bool = True, layout: str = "flat") -> None:
        self.dir = Path(path)
        self.meta = meta
        self.rotate_s = rotate_s
        self.rotate_bytes = rotate_bytes
        self.compression = compression
        self.layout = layout
        prepare_dir(self.dir, must_be_new=must_be_new)
        self._segments: dict[str, _Segment] = {}
        self._dirs_ok: set[Path] = set()
        self._seq = self._next_seq()
        self._opened_at = time.monotonic()
        self.bytes_written = 0
        self.closed = False
        self.failed: BaseException | None = None  # set once a write failed; nothing more is tried
        self._meta_dir, self._meta_name = self._meta_location()
        self.write_meta()

    def _meta_location(self) -> tuple[Path, str]:
        """flat: DIR/capture.json. hive: ROOT/host=H/capture-<start>-<pid>.json, one per run,
        so that restarts and many hosts never overwrite each other's metadata."""
        if self.layout != "hive":
            return self.dir, META_FILE
        d = self.dir / f"host={self.meta.host}"
        _make_private_dirs(self.dir, d.relative_to(self.dir).parts)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return d, f"capture-{stamp}-{os.getpid()}.json"

    def write_meta(self) -> None:
        """Rewrite this run's metadata file atomically."""
        write_meta(self._meta_dir, self.meta, self._meta_name)

    def _next_seq(self) -> int:
        """Continue numbering after existing parts (a daemon restart never overwrites)."""
        best = -1
        base = self.dir / f"host={self.meta.host}" if self.layout == "hive" else self.dir
        for p in base.rglob("part-*.parquet*") if base.is_dir() else ():
            try:
                best = max(best, int(p.name.split("-")[1].split(".")[0]))
            except (IndexError, ValueError):
                continue
        return best + 1

    def _table_dir(self, table: str, ts_ns: int | None) -> Path:
        if self.layout == "hive":
            day = time.strftime("%Y-%m-%d", time.gmtime((ts_ns or time.time_ns()) / 1e9))
            d = self.dir / f"host={self.meta.host}" / f"date={day}" / table
        else:
            d = self.dir / table
        if d not in self._dirs_ok:
            _make_private_dirs(self.dir, d.relative_to(self.dir).parts)
            self._dirs_ok.add(d)
        return d

    def write_tables(self, tables: dict[str, pa.Table], ts_ns: int | None = None) -> None:
        """Append one interval's tables (any subset of schema.TABLES); rotate when due."""
        if self.closed:
            raise CaptureError("capture already closed")
        if self.failed is not None:
            raise CaptureError(f"capture writing stopped after an error: {self.failed}")
        try:
            self._write_tables(tables, ts_ns)
        except BaseException as exc:
            self._fail(exc)
            raise

    def _fail(self, exc: BaseException) -> None:
        """A write failed: keep every complete file, abandon the open segments (.tmp)."""
        self.failed = exc
        for seg in self._segments.values():
            seg.abort()
        self._segments.clear()

    def _write_tables(self, tables: dict[str, pa.Table], ts_ns: int | None) -> None:
        for name, table in tables.items():
            if table is None or table.num_rows == 0:
                continue
            seg = self._segments.get(name)
            if seg is None:
                schema = S.with_file_metadata(S.TABLES[name], name)
                path = self._table_dir(name, ts_ns) / f"part-{self._seq:06d}.parquet"
                seg = self._segments[name] = _Segment(path, schema, self.compression)
            seg.write(table.cast(S.TABLES[name]) if table.schema != S.TABLES[name] else table)
            self.meta.rows[name] = self.meta.rows.get(name, 0) + table.num_rows
        if self._due():
            self.rotate()

    def _due(self) -> bool:
        if time.monotonic() - self._opened_at >= self.rotate_s:
            return True
        seg = self._segments.get("io")
        return seg is not None and seg.fh.tell() >= self.rotate_bytes

    def rotate(self) -> None:
        """Close every open segment (renaming it complete) and rewrite capture.json."""
        had = bool(self._segments)
        while self._segments:
            seg = self._segments.pop(next(iter(self._segments)))
            seg.close()
            try:
                self.bytes_written += seg.final.stat().st_size
            except OSError:
                pass
        if had:
            self._seq += 1
        self._opened_at = time.monotonic()
        self.write_meta()

    def open_bytes(self) -> int:
        """Bytes in segments not yet closed (for status lines)."""
        return sum(s.fh.tell() for s in self._segments.values())

    def close(self, complete: bool = True) -> None:
        """Flush and close everything; mark the capture complete."""
        if self.closed:
            return
        self.closed = True
        self.meta.complete = complete and self.failed is None
        self.meta.ended = self.meta.ended or _iso_now()
        if self.failed is not None:  # keep the last good capture.json if this one cannot be written
            try:
                self.write_meta()
            except OSError:
                pass
            return
        try:
            self.rotate()
        except BaseException as exc:
            self._fail(exc)
            raise


def _iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"


iso_now = _iso_now


# --- reading ------------------------------------------------------------------------------

@dataclass
class Capture:
    """A capture read into memory (or a tree of captures)."""

    path: Path
    meta: CaptureMeta | None
    metas: list[CaptureMeta]
    tables: dict[str, pa.Table]
    skipped: list[tuple[str, str]]    # (file, reason)
    unfinished: list[str]             # .tmp segments left by an abrupt end

    @property
    def ended_abruptly(self) -> bool:
        return any(not m.complete for m in self.metas) or bool(self.unfinished)


def table_files(root: Path, table: str) -> list[Path]:
    """Complete Parquet files of `table` under a capture dir or a hive tree of captures."""
    return sorted(p for p in root.rglob(f"{table}/part-*.parquet") if p.is_file())


def read_table_file(path: Path, table: str) -> pa.Table:
    """Read one file, validating its schema metadata; raises SchemaError or OSError."""
    pf = pq.ParquetFile(path)
    name = S.check_file_schema(pf.schema_arrow, str(path))
    if name and name != table:
        raise S.SchemaError(f"{path}: holds table {name!r}, expected {table!r}")
    t = pf.read()
    # Columns added in later minor versions are filled with nulls; unknown ones dropped.
    return _conform(t, S.TABLES[table])


def _conform(t: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = []
    for f in schema:
        if f.name in t.column_names:
            cols.append(t.column(f.name).cast(f.type))
        else:
            cols.append(pa.nulls(t.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def read_capture(path: str | os.PathLike[str], tables: list[str] | None = None) -> Capture:
    """Read a capture directory (or a tree holding several). Unreadable files are skipped
    and listed with the reason; raises CaptureError when nothing usable is there."""
    root = Path(path)
    if not root.exists():
        raise CaptureError(f"no such capture: {root}")
    if not root.is_dir():
        raise CaptureError(f"not a capture directory: {root}")
    if not os.access(root, os.R_OK | os.X_OK):  # else rglob finds nothing: "not a capture"
        raise CaptureError(f"permission denied: {root} (a capture is private to its recorder)")
    metas, skipped = [], []
    for mp in sorted(root.rglob("capture*.json")):
        try:
            metas.append(CaptureMeta.from_dict(json.loads(mp.read_text())))
        except (OSError, ValueError, TypeError) as exc:
            skipped.append((str(mp), f"unreadable metadata: {exc}"))
    out: dict[str, pa.Table] = {}
    any_file = False
    for name in tables or list(S.TABLES):
        parts = []
        for fp in table_files(root, name):
            any_file = True
            try:
                parts.append(read_table_file(fp, name))
            except (S.SchemaError, OSError, pa.ArrowException) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if str(fp) not in reason:
                    reason = f"{fp}: {reason}"
                skipped.append((str(fp), reason))
        out[name] = pa.concat_tables(parts) if parts else S.empty_table(name)
    unfinished = [str(p) for p in root.rglob("part-*.parquet.tmp")]
    if not metas and not any_file:
        raise CaptureError(f"not an iolens capture (no {META_FILE}, no table files): {root}")
    if any_file and all(out[n].num_rows == 0 for n in out) and skipped and \
            len(skipped) >= sum(len(table_files(root, n)) for n in out):
        raise CaptureError(f"no readable data in {root}: " + skipped[0][1])
    return Capture(root, metas[0] if metas else None, metas, out, skipped, unfinished)
