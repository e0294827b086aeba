"""Write-ahead segments: each interval durable when written, Parquet built at rotation (issue 16).

While a segment is open, each table's rows go to `<table dir>/part-NNNNNN.arrows`, an Arrow IPC
stream (one record batch per interval, appended), and after every interval one line is
appended to the segment's commit log `<base>/part-NNNNNN.commit`: the byte length of every
table's stream and the running counters at that moment, with a CRC-32 of the line. At rotation
and at a clean close each stream is compacted into `part-NNNNNN.parquet` (written as `.tmp`,
fsynced, renamed), then the streams and the commit log are deleted.

After a crash, the last commit line whose lengths every stream still reaches is the state to
recover: every table is read up to its committed length (whole record batches only), so an
interval is recovered in all its tables or in none, and a half-written batch, a torn tail or a
line cut in the middle are never taken for data. A table whose `part-NNNNNN.parquet` exists is
already compacted (a kill between rename and delete) and its stream is ignored, so nothing is
ever counted twice.

Why this layout (measured in docs/reliability.md, benchmarks/crash_cost.py): IPC appends cost
about a sixth of the Parquet encoding per interval, and compacting a whole segment at once into
64k-row row groups is cheaper per row than one row group per interval (and 12 % smaller), so
the total stays within a few percent of the writer before; one Parquet file per interval
instead would multiply the file count by the rotation length and either stay that way or pay
the encoding again at a merge.

The writer holds an exclusive `flock` on its commit log while the segment is open, so a reader
can tell a live segment (read a snapshot, touch nothing) from a dead writer's leftovers
(compact them).
"""

from __future__ import annotations

import fcntl
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

WAL_SUFFIX = ".arrows"
COMMIT_SUFFIX = ".commit"
#: rows per Parquet row group when a segment is compacted: large enough to compress well and
#: keep the footer small, small enough that the time-sliced histogram sample (about 100k rows
#: per slice) can skip most of a big capture by row-group statistics
ROW_GROUP_ROWS = 65536
#: what `--fsync` accepts: when the write-ahead data is forced to stable storage
FSYNC_POLICIES = ("interval", "rotate", "never")
LOG_VERSION = 1


def open_private(path: Path, mode: str = "wb") -> BinaryIO:
    """Create `path` 0600, refusing to follow a symlink or reuse an existing file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    return os.fdopen(fd, mode)


def open_native(path: Path) -> Any:
    """Create `path` like `open_private`, as an Arrow output file: Arrow's C++ code then writes
    the streams and Parquet files itself, not through a Python file object per buffer (a few
    percent of the writer's CPU). Reopened through /proc/self/fd, so it is the very file just
    created, never a path looked up again."""
    fh = open_private(path)
    proc = f"/proc/self/fd/{fh.fileno()}"
    if not os.path.exists(proc):  # no /proc: the Python file object works too
        return fh
    try:
        return pa.OSFile(proc, "wb")
    finally:
        fh.close()


def fsync_dir(path: Path) -> None:
    """Make a file's creation, rename or removal in `path` durable (the entry lives there)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parquet_path(wal: Path) -> Path:
    """The Parquet file a write-ahead stream becomes: part-N.arrows -> part-N.parquet."""
    return wal.with_name(wal.name[: -len(WAL_SUFFIX)] + ".parquet")


# --- writing ------------------------------------------------------------------------------

class TableLog:
    """The write-ahead stream of one table in the open segment."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.fh = open_native(path)
        # uncompressed: lz4 or zstd IPC buffers cost more CPU than the bytes they save
        self.writer = pa.ipc.new_stream(self.fh, schema)
        self.rows = 0
        self.dirty = True  # the schema message

    def append(self, table: pa.Table) -> None:
        """Buffer one interval's rows (reach the file at `flush`)."""
        self.writer.write_table(table)
        self.rows += table.num_rows
        self.dirty = True

    def flush(self) -> int:
        """Hand what was appended to the kernel (it then survives a kill of this process);
        returns the stream's length."""
        self.fh.flush()
        return self.fh.tell()

    def sync(self) -> None:
        """Force the stream to stable storage (it then survives a power loss); a no-op when
        nothing was appended since the last time."""
        if self.dirty:
            os.fdatasync(self.fh.fileno())
            self.dirty = False

    def finish(self) -> None:
        """End the stream cleanly (end-of-stream marker) and close the file."""
        self.writer.close()
        self.fh.flush()
        self.fh.close()

    def abort(self) -> None:
        """Stop using the file (after a write error); whatever was committed stays there."""
        try:
            self.fh.close()
        except OSError:
            pass


class CommitLog:
    """A segment's commit log: a header line, then one line per interval (see module doc).

    Held under an exclusive flock while open, so readers see it is live.
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.fh = open_private(path)
        fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.fh.write(_line({"v": LOG_VERSION, **header}))
        self.fh.flush()

    def commit(self, record: dict[str, Any], sync: bool) -> None:
        """Append one interval's record (or the final {"compacted": true} of a rotation);
        with `sync`, durable before this returns."""
        self.fh.write(_line(record))
        self.fh.flush()
        if sync:
            os.fdatasync(self.fh.fileno())

    def close(self) -> None:
        try:
            self.fh.close()  # releases the lock
        except OSError:
            pass


def _line(obj: dict[str, Any]) -> bytes:
    body = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return f"{zlib.crc32(body.encode()):08x} {body}\n".encode()


def _parse_line(raw: bytes) -> dict[str, Any] | None:
    """One commit line, or None when it is cut, torn or corrupt."""
    if not raw.endswith(b"\n") or len(raw) < 10 or raw[8:9] != b" ":
        return None
    body = raw[9:-1]
    try:
        if int(raw[:8], 16) != zlib.crc32(body):
            return None
        obj = json.loads(body)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


# --- reading and recovering ----------------------------------------------------------------

@dataclass
class Snapshot:
    """What can be recovered of one segment: the last commit every stream still reaches.

    `tables`: table -> (stream path, committed length) for the tables not yet compacted;
    `done`: tables whose Parquet file already exists; `record`: the commit line (counters);
    `header`: the log's first line (segment number, metadata file name).
    """

    commit: Path
    header: dict[str, Any]
    record: dict[str, Any] | None
    tables: dict[str, tuple[Path, int]]
    done: list[str]
    streams: list[Path]       # every stream the log names (to delete after compaction)
    compacted: bool = False   # the writer itself finished the compaction (then was killed)

    @property
    def intervals(self) -> int:
        """Intervals in this segment that are recovered."""
        return int(self.record.get("n", 0)) if self.record else 0


def read_commits(path: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Header and the valid records of a commit log, up to the first bad line."""
    with open(path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    parsed = []
    for raw in lines:
        obj = _parse_line(raw)
        if obj is None:
            break
        parsed.append(obj)
    if not parsed or parsed[0].get("v") != LOG_VERSION:
        return None, []
    return parsed[0], parsed[1:]


def snapshot(commit: Path) -> Snapshot | None:
    """The recoverable state of the segment whose commit log is `commit` (None: unreadable)."""
    header, records = read_commits(commit)
    if header is None:
        return None
    base = commit.parent
    named = {base / rel for r in records for rel, _ in r.get("wal", {}).values()}
    # a stream created just before a kill is in no commit line yet: found by its name
    stem = commit.name[: -len(COMMIT_SUFFIX)]
    streams = sorted(named | set(base.rglob(stem + WAL_SUFFIX)))
    compacted = any(r.get("compacted") for r in records)
    for rec in reversed([r for r in records if "wal" in r]):
        wal = {t: (base / rel, int(size)) for t, (rel, size) in rec["wal"].items()}
        done = [t for t, (p, _) in wal.items() if parquet_path(p).is_file()]
        todo = {t: v for t, v in wal.items() if t not in done}
        if all(_length(p) >= size for p, size in todo.values()):
            return Snapshot(commit, header, rec, todo, done, streams, compacted)
    return Snapshot(commit, header, None, {}, [], streams, compacted)


def _length(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return -1


def read_stream(path: Path, length: int | None = None) -> pa.Table | None:
    """The whole record batches within the first `length` bytes of a stream (all of it when
    None); None when not even the schema is there."""
    with pa.memory_map(str(path)) as src:
        buf = src.read_buffer(length if length is not None else src.size())
    try:
        reader = pa.ipc.open_stream(pa.BufferReader(buf))
    except (OSError, pa.ArrowException):
        return None
    batches = []
    while True:
        try:
            batches.append(reader.read_next_batch())
        except StopIteration:
            break
        except (OSError, pa.ArrowException):  # a cut batch: everything before it is whole
            break
    return pa.Table.from_batches(batches, schema=reader.schema)


def write_parquet(table: pa.Table, dest: Path, compression: str, sync: bool) -> int:
    """Write `table` to `dest` atomically (`.tmp`, fsync, rename); returns the file's size."""
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        os.unlink(tmp)  # left by a kill during an earlier compaction of this segment
    except FileNotFoundError:
        pass
    try:
        with open_native(tmp) as fh:
            with pq.ParquetWriter(fh, table.schema, compression=compression,
                                  use_dictionary=True, write_statistics=_stat_columns(table),
                                  ) as w:
                w.write_table(table, row_group_size=ROW_GROUP_ROWS)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
            size = fh.tell()
    except BaseException:
        _unlink(tmp)  # a half file helps nobody; the stream it came from is still there
        raise
    os.rename(tmp, dest)
    return size


def _stat_columns(table: pa.Table) -> list[str]:
    """Columns that get min/max statistics: all but lists, whose element ranges no query can
    filter on (dropping those saves about 4 % of the encoding CPU, same file size)."""
    return [f.name for f in table.schema
            if not (pa.types.is_list(f.type) or pa.types.is_large_list(f.type))]


def compact(stream: Path, length: int | None, compression: str, sync: bool,
            dest: Path | None = None) -> tuple[int, int]:
    """Turn a table's stream (up to `length`) into its Parquet file (or `dest`).
    Returns (rows, bytes); (0, 0) and no file when the stream holds no rows."""
    table = read_stream(stream, length)
    if table is None or table.num_rows == 0:
        return 0, 0
    return table.num_rows, write_parquet(table, dest or parquet_path(stream), compression, sync)


def is_live(commit: Path) -> bool:
    """True when a writer still holds this segment open (its flock)."""
    try:
        fd = os.open(commit, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops our own lock, if we got it
    return False


def remove_segment(snap: Snapshot, sync: bool) -> None:
    """Delete a compacted segment's streams, then its commit log (last: it is what marks
    the segment as unfinished)."""
    dirs = {snap.commit.parent}
    for p in snap.streams:
        _unlink(p)
        _unlink(parquet_path(p).with_name(parquet_path(p).name + ".tmp"))
        dirs.add(p.parent)
    _unlink(snap.commit)
    if sync:
        for d in dirs:
            try:
                fsync_dir(d)
            except OSError:
                pass


def _unlink(p: Path) -> None:
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass
