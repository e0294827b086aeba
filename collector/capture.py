"""Writing and reading a capture directory (the on-disk contract of `collector.schema`).

Writer: `CaptureWriter(dir, meta).write_tables(tables, ts)` commits one interval's rows to the
open write-ahead segment (`DIR/<table>/part-NNNNNN.arrows` + `DIR/part-NNNNNN.commit`, see
collector/wal.py) before it returns, so a `kill -9` loses at most the interval in progress; on
rotation (by time or size) and at `close()` the segment is compacted into
`DIR/<table>/part-NNNNNN.parquet` (written as `.tmp`, renamed), so a `.parquet` file is always
complete. `capture.json` is rewritten atomically (write + rename) at start, at each rotation and
at close; `complete` is true only after a clean close, so a reader can tell a capture that
ended abruptly. `--fsync` decides what is also forced to disk (what a power loss costs).

Files are created 0600 in a 0700 directory, never through a symlink (O_NOFOLLOW | O_EXCL).

Recovery: `open_for_read(dir)` (called by every reader) finishes the segment a crashed writer
left: compacted in place when this user owns the capture and no writer holds it, else read into
private temporary files; capture.json gains `recovered_intervals`. A daemon's restart does the
same for its host before writing (`CaptureWriter(..., must_be_new=False)`).

Reader: `read_capture(dir)` returns the tables as pyarrow Tables plus the metadata and a list
of files it skipped (corrupt, truncated, foreign, wrong version) with the reason for each.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from iolens.collector import schema as S
from iolens.collector import wal as W

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
    recovered_intervals: int = 0      # intervals of unfinished segments saved after a crash
    recovered_segments: dict[str, int] = field(default_factory=dict)  # segment -> intervals
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


_open_private = W.open_private


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


class CaptureWriter:
    """Appends intervals to a capture directory with rotation; every interval is durable once
    `write_tables` returns (see collector/wal.py for the on-disk protocol).

    Args:
        path: capture directory (created 0700; must not exist or be empty).
        meta: initial metadata; the writer updates its counters.
        rotate_s: compact the open segment into Parquet after this many seconds of wall time.
        rotate_bytes: ... or once the open io stream passes this size.
        layout: "flat" (DIR/<table>/part-N.parquet) or "hive"
            (DIR/host=<h>/date=<YYYY-MM-DD>/<table>/part-N.parquet).
        fsync: when data is forced to stable storage. Every policy survives a kill of the
            process with at most the interval in progress lost (committed data is in the page
            cache). "rotate" (default): the Parquet files, capture.json and their directory
            entries at each rotation, as before write-ahead segments; a power loss can cost
            the open segment. "interval": also each interval's streams and commit line, so a
            power loss costs at most the interval in progress, for about 10 % more writer
            CPU and the write-ahead bytes reaching the disk (otherwise they mostly die in the
            page cache at rotation). "never": nothing (tests, throw-away captures).
        background: compact closed segments on a background thread, so a rotation never
            holds up the caller (`iolens record` and the daemon); False (the default, for
            library use and tests): `rotate` returns once the segment is in Parquet files.
    """

    def __init__(self, path: str | os.PathLike[str], meta: CaptureMeta, *, rotate_s: float = 30.0,
                 rotate_bytes: int = 256 << 20, compression: str = "zstd",
                 must_be_new: bool = True, layout: str = "flat",
                 fsync: str = "rotate", background: bool = False) -> None:
        if fsync not in W.FSYNC_POLICIES:
            raise CaptureError(f"fsync must be one of {', '.join(W.FSYNC_POLICIES)}, got {fsync!r}")
        self.dir = Path(path)
        self.meta = meta
        self.rotate_s = rotate_s
        self.rotate_bytes = rotate_bytes
        self.compression = compression
        self.layout = layout
        self.fsync = fsync
        self.background = background
        self._compactor = _Compactor(compression, fsync != "never")
        prepare_dir(self.dir, must_be_new=must_be_new)
        self._logs: dict[str, W.TableLog] = {}
        self._commit: W.CommitLog | None = None
        self._seg_intervals = 0
        self._dirs_ok: set[Path] = set()
        self.recovered: Recovery | None = None
        if not must_be_new:  # a restart after a crash: the dead run's open segment first
            self.recovered = recover_capture(self._base(), compression=compression)
        self._seq = self._next_seq()
        self._opened_at = time.monotonic()
        self.closed = False
        self.failed: BaseException | None = None  # set once a write failed; nothing more is tried
        self._meta_dir, self._meta_name = self._meta_location()
        self.write_meta()

    def _base(self) -> Path:
        """Where this writer's segments live: the capture dir, or this host's part of a tree."""
        return self.dir / f"host={self.meta.host}" if self.layout == "hive" else self.dir

    def _meta_location(self) -> tuple[Path, str]:
        """flat: DIR/capture.json. hive: ROOT/host=H/capture-<start>-<pid>.json, one per run,
        so that restarts and many hosts never overwrite each other's metadata."""
        if self.layout != "hive":
            return self.dir, META_FILE
        d = self._base()
        _make_private_dirs(self.dir, d.relative_to(self.dir).parts)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        return d, f"capture-{stamp}-{os.getpid()}.json"

    def write_meta(self) -> None:
        """Rewrite this run's metadata file atomically."""
        write_meta(self._meta_dir, self.meta, self._meta_name)

    def _next_seq(self) -> int:
        """Continue numbering after existing parts and leftovers (a restart never overwrites)."""
        best = -1
        base = self._base()
        for p in base.rglob("part-*") if base.is_dir() else ():
            try:
                best = max(best, int(p.name.split("-")[1].split(".")[0]))
            except (IndexError, ValueError):
                continue
        return best + 1

    def _table_dir(self, table: str, ts_ns: int | None) -> Path:
        if self.layout == "hive":
            day = time.strftime("%Y-%m-%d", time.gmtime((ts_ns or time.time_ns()) / 1e9))
            d = self._base() / f"date={day}" / table
        else:
            d = self.dir / table
        if d not in self._dirs_ok:
            _make_private_dirs(self.dir, d.relative_to(self.dir).parts)
            self._dirs_ok.add(d)
        return d

    def write_tables(self, tables: dict[str, pa.Table], ts_ns: int | None = None) -> None:
        """Append one interval's tables (any subset of schema.TABLES) and commit them as one
        interval; rotate when due."""
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
        """A write failed: stop writing. The open segment's committed intervals stay on disk
        (streams + commit log) for the readers and the next start to recover."""
        self.failed = exc
        for log in self._logs.values():
            log.abort()
        self._logs.clear()
        if self._commit is not None:
            self._commit.close()
            self._commit = None

    def _write_tables(self, tables: dict[str, pa.Table], ts_ns: int | None) -> None:
        self._reap()  # a compaction finished (or failed) since the last interval
        if self._commit is None:  # the log first: a stream is never without its segment's log
            name = f"part-{self._seq:06d}{W.COMMIT_SUFFIX}"
            self._commit = W.CommitLog(self._base() / name,
                                       {"seq": self._seq, "meta": self._meta_name})
            self._new_entry(self._base())
        for name, table in tables.items():
            if table is None or table.num_rows == 0:
                continue
            log = self._logs.get(name) or self._open_log(name, ts_ns)
            log.append(table.cast(S.TABLES[name]) if table.schema != S.TABLES[name] else table)
            self.meta.rows[name] = self.meta.rows.get(name, 0) + table.num_rows
        self._commit_interval()
        if self._due():
            self.rotate()

    def _open_log(self, name: str, ts_ns: int | None) -> W.TableLog:
        schema = S.with_file_metadata(S.TABLES[name], name)
        d = self._table_dir(name, ts_ns)
        log = self._logs[name] = W.TableLog(d / f"part-{self._seq:06d}{W.WAL_SUFFIX}", schema)
        self._new_entry(d)
        return log

    def _new_entry(self, d: Path) -> None:
        """A file was created in `d`: with fsync=interval its name must survive a power
        loss too, not only its contents."""
        if self.fsync == "interval":
            W.fsync_dir(d)

    def _commit_interval(self) -> None:
        """Make this interval durable: streams to the kernel (and disk), then its commit line."""
        sync = self.fsync == "interval"
        lengths = {}
        for name, log in self._logs.items():
            lengths[name] = [str(log.path.relative_to(self._base())), log.flush()]
            if sync:
                log.sync()
        self._seg_intervals += 1
        assert self._commit is not None
        self._commit.commit({"n": self._seg_intervals, "intervals": self.meta.intervals,
                             "rows": dict(self.meta.rows), "wal": lengths}, sync)

    def _due(self) -> bool:
        if time.monotonic() - self._opened_at >= self.rotate_s:
            return True
        log = self._logs.get("io")
        return log is not None and log.fh.tell() >= self.rotate_bytes

    def rotate(self) -> None:
        """Close the open segment and have it compacted into Parquet files (on the background
        thread when `background`); capture.json is rewritten. A kill anywhere is recovered."""
        if self._commit is not None:
            streams = []
            while self._logs:
                log = self._logs.pop(next(iter(self._logs)))
                log.finish()
                streams.append(log.path)
            commit, self._commit = self._commit, None
            self._seq += 1
            self._seg_intervals = 0
            self._compactor.submit(streams, commit, self.background)
        if not self._reap():
            self.write_meta()
        self._opened_at = time.monotonic()

    def _reap(self, force_meta: bool = False) -> bool:
        """Finish the segments the compactor is done with: capture.json (counting them) first,
        then delete their streams and commit logs. Raises a compaction's error. True when
        capture.json was written."""
        c = self._compactor
        if c.error is not None:
            err, c.error = c.error, None
            raise err
        done = c.finished[:]
        del c.finished[:len(done)]
        if not done and not force_meta:
            return False
        self.write_meta()  # counts the compacted intervals before their log goes
        sync = self.fsync != "never"
        for commit in done:
            snap = W.snapshot(commit.path)
            commit.close()
            if snap is not None:
                W.remove_segment(snap, sync)
        return True

    def settle(self) -> None:
        """Wait for a compaction under way and finish it (tests, benchmarks, `close`)."""
        self._compactor.wait()
        self._reap()

    @property
    def bytes_written(self) -> int:
        """Bytes of the Parquet files written so far."""
        return self._compactor.bytes

    def open_bytes(self) -> int:
        """Bytes in the open segment's streams (for status lines)."""
        return sum(log.fh.tell() for log in self._logs.values())

    def close(self, complete: bool = True) -> None:
        """Compact and close everything; mark the capture complete."""
        if self.closed:
            return
        self.closed = True
        self.meta.ended = self.meta.ended or _iso_now()
        if self.failed is not None:  # keep the last good capture.json if this one cannot be written
            self._compactor.wait()  # one under way may still finish; else it is recovered later
            try:
                self.write_meta()
            except OSError:
                pass
            return
        try:
            self.rotate()
            self._compactor.wait()
            self.meta.complete = complete  # only once every interval is in a Parquet file
            self._reap(force_meta=True)
        except BaseException as exc:
            self.meta.complete = False
            self._fail(exc)
            raise


class _Compactor:
    """Compacts closed segments, one at a time, on a background thread: encoding a whole
    segment (about 0.3 s per 30 s at 10,000 rows per interval; Arrow releases the GIL) then
    never holds up the collector's next interval. The writer's own thread still writes
    capture.json and deletes finished segments (`finished`), so metadata has one writer."""

    def __init__(self, compression: str, sync: bool) -> None:
        self.compression, self.sync = compression, sync
        self._thread: threading.Thread | None = None
        self.finished: list[W.CommitLog] = []
        self.error: BaseException | None = None
        self.bytes = 0

    def submit(self, streams: list[Path], commit: W.CommitLog, background: bool) -> None:
        """Compact `streams` then mark `commit` compacted; waits for the previous one first
        (at most one segment behind)."""
        self.wait()
        if not background:
            self._run(streams, commit)
            return
        self._thread = threading.Thread(target=self._run, args=(streams, commit),
                                        name="iolens-compact", daemon=True)
        self._thread.start()

    def _run(self, streams: list[Path], commit: W.CommitLog) -> None:
        try:
            for p in streams:
                _rows, size = W.compact(p, None, self.compression, self.sync)
                self.bytes += size
            if self.sync:
                for d in {p.parent for p in streams}:
                    W.fsync_dir(d)
            # from here a crash recovers nothing: the segment is whole in Parquet files
            commit.commit({"compacted": True}, self.sync)
            self.finished.append(commit)
        except BaseException as exc:  # noqa: BLE001 - handed to the writer's thread
            commit.close()  # the segment stays as it is, for a reader or restart to recover
            self.error = exc

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def _iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"


iso_now = _iso_now


# --- recovery -----------------------------------------------------------------------------

@dataclass
class Recovery:
    """What `recover_capture` did with the unfinished segments under a capture (or a tree).

    `patches`: metadata file -> the counters its capture.json gains from each recovered
    segment (already written there when compacted in place; applied in memory by `read_metas`
    otherwise; a kill during a background compaction leaves two segments of one run).
    `files`: table -> Parquet files written outside the capture, for readers that may not (or
    must not yet) change it. `notes`: one line per segment that could not be
    compacted in place, and why.
    """

    patches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[str, list[Path]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def intervals(self) -> int:
        return sum(p["recovered_intervals"] for ps in self.patches.values() for p in ps)


def recover_capture(root: Path, compression: str = "zstd", in_place: bool = True) -> Recovery:
    """Finish every segment a crashed writer left under `root`.

    A dead writer's segment is compacted in place (atomically, then its streams are deleted
    and capture.json counts it), when this process owns the capture and `in_place`; a live
    writer's segment, or one in a capture this process must not change, is read up to its last
    commit into private temporary Parquet files instead (`Recovery.files`). Nothing readable is
    ever deleted before its Parquet file is durable.
    """
    rec = Recovery()
    for commit in sorted(root.rglob(f"part-*{W.COMMIT_SUFFIX}")):
        if commit.is_symlink():  # planted: a writer never makes one (O_NOFOLLOW | O_EXCL)
            rec.notes.append(f"{commit}: a symlink, not a commit log; ignored")
            continue
        snap = W.snapshot(commit)
        if snap is None:
            rec.notes.append(f"{commit}: unreadable commit log, segment left as it is")
            continue
        live = W.is_live(commit)
        if not live and in_place and _owned(commit.parent):
            try:
                _recover_in_place(snap, compression, rec)
                continue
            except (OSError, pa.ArrowException) as exc:
                rec.notes.append(f"{commit}: cannot compact in place ({_why(exc)}); "
                                 "read from a temporary copy")
        try:
            _recover_to_temp(snap, root, compression, rec, live)
        except (OSError, pa.ArrowException) as exc:  # left as it is for a later reader
            rec.notes.append(f"{commit}: cannot read the unfinished segment ({_why(exc)})")
    return rec


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or (str(exc).splitlines() or [type(exc).__name__])[0]


def _owned(d: Path) -> bool:
    """May this process change the capture in `d`? Only its owner (root included: files it
    wrote into another user's capture would be unreadable to that user)."""
    try:
        return os.stat(d).st_uid == os.geteuid() and os.access(d, os.W_OK | os.X_OK)
    except OSError:
        return False


def _patch(snap: W.Snapshot) -> dict[str, Any]:
    """The counters capture.json gains from a recovered segment (idempotent: maxima, and the
    segment's own interval count, so recovering twice changes nothing)."""
    r = snap.record or {}
    return {"segment": str(snap.header.get("seq", snap.commit.name)),
            "recovered_intervals": 0 if snap.compacted else snap.intervals,
            "intervals": int(r.get("intervals", 0)), "rows": dict(r.get("rows", {}))}


def _apply_patch(meta: CaptureMeta, patch: dict[str, Any]) -> None:
    meta.intervals = max(meta.intervals, patch["intervals"])
    if patch["recovered_intervals"]:
        meta.recovered_segments[patch["segment"]] = patch["recovered_intervals"]
    meta.recovered_intervals = sum(meta.recovered_segments.values())
    for t, n in patch["rows"].items():
        meta.rows[t] = max(meta.rows.get(t, 0), int(n))


def _recover_in_place(snap: W.Snapshot, compression: str, rec: Recovery) -> None:
    """Compact a dead writer's segment into the capture, count it, then drop its log."""
    for stream, length in snap.tables.values():
        W.compact(stream, length, compression, sync=True)
    for d in {s.parent for s, _ in snap.tables.values()}:
        W.fsync_dir(d)
    patch = _patch(snap)
    meta_path = snap.commit.parent / str(snap.header.get("meta", META_FILE))
    if snap.record is not None:  # also when an earlier, killed recovery compacted it all
        try:
            meta = CaptureMeta.from_dict(json.loads(meta_path.read_text()))
        except (OSError, ValueError, TypeError):
            meta = None  # no metadata to count it in: the data itself is safe
        if meta is not None:
            _apply_patch(meta, patch)
            write_meta(meta_path.parent, meta, meta_path.name)
        rec.patches.setdefault(str(meta_path), []).append({**patch, "written": meta is not None})
    W.remove_segment(snap, sync=True)


_TEMP: list[Path] = []


def _temp_root() -> Path:
    """A private directory for read-only recoveries, removed when this process exits."""
    if not _TEMP:
        d = Path(tempfile.mkdtemp(prefix="iolens-recovered-"))
        atexit.register(shutil.rmtree, d, ignore_errors=True)
        _TEMP.append(d)
    return _TEMP[0]


def _recover_to_temp(snap: W.Snapshot, root: Path, compression: str, rec: Recovery,
                     live: bool) -> None:
    """Read a segment up to its last commit into temporary Parquet files (capture untouched)."""
    out = Path(tempfile.mkdtemp(dir=_temp_root()))
    for table, (stream, length) in snap.tables.items():
        dest = W.parquet_path(out / stream.relative_to(root))
        dest.parent.mkdir(parents=True, exist_ok=True)
        rows, _ = W.compact(stream, length, "lz4", sync=False, dest=dest)
        if rows:
            rec.files.setdefault(table, []).append(dest)
    if snap.record is not None and not live:  # a live segment is being written, not recovered
        meta_path = snap.commit.parent / str(snap.header.get("meta", META_FILE))
        rec.patches.setdefault(str(meta_path), []).append({**_patch(snap), "written": False})


_RECOVERED: dict[str, tuple[tuple, Recovery]] = {}


def open_for_read(root: Path) -> Recovery:
    """Recover `root` for reading, once per state of its commit logs (cached), and make
    `table_files` include what was read into temporary files."""
    key = str(root.resolve())
    logs = sorted(root.rglob(f"part-*{W.COMMIT_SUFFIX}"))
    state = tuple((str(p), _stat_key(p)) for p in logs)
    cached = _RECOVERED.get(key)
    if cached is not None and cached[0] == state:
        return cached[1]
    if not logs:
        rec = Recovery()
    else:
        try:
            rec = recover_capture(root)
        except OSError as exc:  # a capture that cannot be recovered is still read as it is
            rec = Recovery(notes=[f"{root}: recovery failed: {exc}"])
    state = tuple((str(p), _stat_key(p)) for p in sorted(root.rglob(f"part-*{W.COMMIT_SUFFIX}")))
    _RECOVERED[key] = (state, rec)
    return rec


def _stat_key(p: Path) -> tuple[int, int]:
    try:
        st = p.stat()
        return st.st_size, st.st_mtime_ns
    except OSError:
        return -1, -1


def read_metas(root: Path) -> tuple[list[CaptureMeta], list[tuple[str, str]]]:
    """capture.json of the capture (or capture-*.json of each run in a tree), with the counts
    of a recovered segment applied, and the unreadable ones as (file, reason)."""
    patches = open_for_read(root).patches
    metas, bad = [], []
    for mp in sorted(root.rglob("capture*.json")):
        try:
            m = CaptureMeta.from_dict(json.loads(mp.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            bad.append((str(mp), f"unreadable metadata: {(str(exc).splitlines() or [''])[0]}"))
            continue
        for patch in patches.get(str(mp), []):
            if not patch.get("written"):
                _apply_patch(m, patch)
        metas.append(m)
    return metas, bad


def unfinished_files(root: Path) -> list[str]:
    """Segments nothing can recover: `.parquet.tmp` files of captures written before
    write-ahead segments (issue 16), which have no stream beside them."""
    out = []
    for p in root.rglob("part-*.parquet.tmp"):
        stem = p.name[: -len(".parquet.tmp")]
        if not (p.with_name(stem + W.WAL_SUFFIX).exists()
                or any(p.parents[i].joinpath(stem + W.COMMIT_SUFFIX).exists()
                       for i in range(min(3, len(p.parents))))):
            out.append(str(p))
    return sorted(out)


# --- reading ------------------------------------------------------------------------------

@dataclass
class Capture:
    """A capture read into memory (or a tree of captures)."""

    path: Path
    meta: CaptureMeta | None
    metas: list[CaptureMeta]
    tables: dict[str, pa.Table]
    skipped: list[tuple[str, str]]    # (file, reason)
    unfinished: list[str]             # segments that could not be recovered (older versions)

    @property
    def ended_abruptly(self) -> bool:
        return any(not m.complete for m in self.metas) or bool(self.unfinished)

    @property
    def recovered_intervals(self) -> int:
        """Intervals saved from the unfinished segment(s) of a writer that ended abruptly."""
        return sum(m.recovered_intervals for m in self.metas)


def table_files(root: Path, table: str) -> list[Path]:
    """Complete Parquet files of `table` under a capture dir or a hive tree of captures, plus
    the ones `open_for_read` recovered outside it (a live or read-only unfinished segment)."""
    found = sorted(p for p in root.rglob(f"{table}/part-*.parquet") if p.is_file())
    cached = _RECOVERED.get(str(root.resolve()))
    extra = cached[1].files.get(table, []) if cached else []
    # a segment compacted by its writer since it was read: its own file wins (no duplicates)
    have = {p.relative_to(root) for p in found}
    return found + [p for p in extra if p.is_file() and _rel_in_temp(p) not in have]


def _rel_in_temp(p: Path) -> Path:
    """A temporary recovered file's path relative to the capture root it mirrors."""
    parts = p.relative_to(_temp_root()).parts
    return Path(*parts[1:])


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
    metas, skipped = read_metas(root)  # recovers an unfinished segment first
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
    unfinished = unfinished_files(root)
    if not metas and not any_file:
        raise CaptureError(f"not an iolens capture (no {META_FILE}, no table files): {root}")
    if any_file and all(out[n].num_rows == 0 for n in out) and skipped and \
            len(skipped) >= sum(len(table_files(root, n)) for n in out):
        raise CaptureError(f"no readable data in {root}: " + skipped[0][1])
    return Capture(root, metas[0] if metas else None, metas, out, skipped, unfinished)
