"""From a capture to a workload model: what a replica of the job's file I/O must do.

Pure functions over the capture tables (``io``, ``procs``, optional ``faults``): no engine,
no files. `derive(tables)` groups the file I/O of the replayed classes by (file class,
process role) and returns a `WorkloadModel` with one `JobModel` per group:

- files: distinct files of the group; the extent each open covers (bytes moved per open),
  and how often files were re-opened (passes over them);
- request sizes: the merged log2 ``size_hist`` of reads and writes (ops of 0 or 1 byte, i.e.
  end-of-file reads, are counted apart: no replay tool can issue them), with one size per
  bucket scaled so that ops x size gives the bytes moved;
- mix: read/write ops, the share of positional ops at a new offset (``random_ops``: the
  capture's own definition of a random op);
- concurrency: processes (threads with --per-thread captures) doing the group's data ops,
  time-averaged over their lifetimes (``procs.start_time``/``exit_time``) so that workers
  re-created each epoch count once; every traced op is a blocking syscall, so each of them
  has one request in flight;
- metadata: opens, stats, closes; durability: fsyncs per write and per open; mmaps and
  the bytes page faults brought in when the ``faults`` table has them;
- CPU: the traced threads' CPU time outside the replayed syscalls (``cpu`` table), which
  the replica burns alongside its I/O (fio ``cpuio``) so that it competes for the CPU as
  the original's did;
- pacing: the group's active span and the time it spent blocked in its syscalls, per
  process: the rest is compute (or waiting) between bursts of I/O, replayed as think time
  between bursts of one open's worth of requests; the per-interval byte rate (peak, mean,
  active intervals) goes with it.

Merged histograms and rates come from `metrics.hist_matrix` (the decoding the analysis
uses); roles are the latest non-null ``procs.role`` of each pid, else its comm.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from iolens.analysis.metrics import hist_matrix
from iolens.collector.classify import _path_kind  # the classifier's own path test
from iolens.collector.schema import SIZE_BUCKETS

#: file classes of the capture; files of class "other" under system paths (the interpreter's
#: imports, shared libraries, /proc...) are never replayed: they are not the job's data
ALL_CLASSES = ("dataset", "checkpoint", "weights", "log", "other")
DEFAULT_CLASSES = ALL_CLASSES
DATA_OPS = ("read", "write")
#: "other" files moving less than this are the runtime's scratch files, not the job's data
OTHER_MIN_BYTES = 64 << 10
#: below this much think time per burst, pacing is left out (the job was I/O-bound)
MIN_THINK_S = 50e-6


class DeriveError(ValueError):
    """The capture holds nothing a replica could be derived from."""


@dataclass(frozen=True)
class OpStats:
    """Data ops of one direction (read or write) of a group."""

    ops: int = 0                 # ops that moved more than 1 byte (the replayable ones)
    tiny_ops: int = 0            # ops of 0 or 1 byte: end-of-file reads, mostly
    bytes: int = 0
    random_ops: int = 0
    size_hist: tuple[int, ...] = (0,) * SIZE_BUCKETS

    @property
    def mean_size(self) -> float:
        return self.bytes / self.ops if self.ops else 0.0

    def sizes(self) -> list[tuple[int, float]]:
        """(request size in bytes, share of ops) per non-empty bucket >= 1: each bucket's
        lower bound 2^i scaled by one factor in [1, 2) so that the sizes times the ops give
        the bytes moved (the histogram alone only bounds each op within a factor of 2)."""
        h = np.asarray(self.size_hist[1:], dtype=np.float64)
        lows = np.power(2.0, np.arange(1, SIZE_BUCKETS))
        n = h.sum()
        if n <= 0:
            return []
        base = float((h * lows).sum())
        scale = min(max(self.bytes / base, 1.0), 1.999) if base > 0 else 1.0
        return [(int(round(lo * scale)), float(c / n)) for lo, c in zip(lows, h, strict=True)
                if c > 0]


@dataclass(frozen=True)
class JobModel:
    """The I/O of one (file class, role) group of the original job."""

    file_class: str
    role: str
    procs: int                   # concurrent processes (x threads) doing the data ops
    files: int                   # distinct files touched
    opens: int
    stats: int
    closes: int
    fsyncs: int
    mmaps: int
    read: OpStats
    write: OpStats
    span_s: float                # first to last active interval of the group
    busy_s: float                # time blocked in the group's syscalls, per process
    active_intervals: int
    peak_bytes_s: float
    mean_bytes_s: float          # over the active span
    fault_bytes: int = 0         # bytes page faults brought in (mmap'd files of the group)
    miss_share: float | None = None  # share of read bytes that missed the page cache
    file_size: int = 0           # largest known size of the group's files (pagecache)
    original_dir: str = ""       # common directory of the original files (comments only)

    @property
    def name(self) -> str:
        return f"{self.file_class}-{_slug(self.role)}"

    @property
    def data_ops(self) -> int:
        return self.read.ops + self.write.ops

    @property
    def data_bytes(self) -> int:
        return self.read.bytes + self.write.bytes

    @property
    def random_share(self) -> float:
        """Share of data ops at a new offset (0 when the group used read()/write() only)."""
        return (self.read.random_ops + self.write.random_ops) / self.data_ops \
            if self.data_ops else 0.0

    @property
    def read_share(self) -> float:
        return self.read.ops / self.data_ops if self.data_ops else 1.0

    @property
    def passes(self) -> int:
        """Opens the replica makes: the original's (files opened before the capture started
        count once each)."""
        return max(self.opens, self.files, 1)

    def layout(self, max_bytes: int = 8 << 30) -> tuple[int, int, int]:
        """(files per process, loops, file size) of the replica.

        Re-opened files (passes > files) are replayed as `loops` passes over the original's
        number of distinct files, as long as each process has at least 10 of them: fio
        opens each file once more at the end of a loop (and fsyncs it again with
        fsync_on_close), one extra open per loop. With fewer files per process (a
        checkpoint re-written in place) each open becomes a file of its own written once,
        unless that lays out more than `max_bytes`. The file size is the bytes moved per open.
        Random readers of files of known size (`random_over_file`) keep the original's files
        and the bytes read from each (at random over the whole size: fio `io_size`).
        """
        if self.random_over_file:  # random reads over whole files: the original's files
            nfiles, loops = max(1, round(self.files / self.procs)), 1
            return nfiles, loops, max(1, int(round(self.data_bytes / (nfiles * self.procs))))
        per_proc_files = min(self.files, self.passes) / self.procs
        if self.passes <= self.files or (per_proc_files < 10
                                         and self.data_bytes <= max_bytes):
            nfiles, loops = max(1, round(self.passes / self.procs)), 1
        else:
            loops = max(1, round(self.passes / max(1, min(self.files, self.passes))))
            nfiles = max(1, round(self.passes / (self.procs * loops)))
        size = self.data_bytes / (nfiles * self.procs * loops)
        sizes = [s for s, _ in self.read.sizes() + self.write.sizes()]
        if sizes and size >= min(sizes):  # whole requests: no short request at each file end
            size = round(size / min(sizes)) * min(sizes)
        return nfiles, loops, max(1, int(round(size)))

    @property
    def random_over_file(self) -> bool:
        """Mostly random reads over files of known size (pagecache): replayed over the
        whole size, as often as the original read it."""
        return self.random_share > 0.5 and self.write.ops == 0 and self.file_size > 0

    def distinct_bytes(self, max_bytes: int = 8 << 30) -> float:
        """Bytes of distinct data the reads touch: what a cold start must bring in (random
        reads cover 1 - e^-k of a file read k times its size over)."""
        nfiles, loops, size = self.layout(max_bytes)
        if self.random_over_file:
            k = size / self.file_size
            return nfiles * self.procs * self.file_size * (1 - math.exp(-k))
        return self.read.bytes / loops

    @property
    def writes_per_fsync(self) -> float:
        return self.write.ops / self.fsyncs if self.fsyncs else 0.0

    @property
    def fsync_per_open(self) -> bool:
        """One fsync per open file (a checkpoint's write, fsync, close)."""
        return self.fsyncs > 0 and abs(self.fsyncs - self.passes) <= max(1, 0.1 * self.passes)

    @property
    def ops_per_open(self) -> float:
        return self.data_ops / self.passes

    @property
    def think_s(self) -> float:
        """Think time after each burst (one open's worth of requests) per process: the
        active span not spent blocked in I/O, spread over the process's bursts."""
        bursts = max(1, self.passes / self.procs)
        t = max(0.0, self.span_s - self.busy_s) / bursts
        return t if t >= MIN_THINK_S else 0.0

    @property
    def mmap_reads(self) -> bool:
        """The group read mapped files (page faults brought more than read() did: `read`
        then holds the faults, see job_model)."""
        return self.mmaps > 0 and self.fault_bytes > 0 and self.fault_bytes >= self.read.bytes


@dataclass(frozen=True)
class WorkloadModel:
    """Everything a replica needs, and what it cannot reproduce."""

    jobs: tuple[JobModel, ...]
    wall_s: float
    interval_s: float
    classes: tuple[str, ...]
    not_reproduced: tuple[str, ...] = field(default_factory=tuple)
    left_out: Mapping[str, int] = field(default_factory=dict)  # class -> ops not replayed
    #: CPU seconds the traced threads ran outside the replayed groups' syscalls (compute,
    #: decoding, the interpreter): None without a cpu table
    cpu_s: float | None = None

    @property
    def cpu_load(self) -> float:
        """CPUs' worth of that CPU time over the capture (1.0: one CPU busy throughout)."""
        return (self.cpu_s or 0.0) / self.wall_s if self.wall_s > 0 else 0.0


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", (text or "proc").lower()).strip("-")
    return s[:32] or "proc"


def roles(procs: pa.Table | None) -> dict[int, str]:
    """pid -> latest non-null role (procs observations are deltas of attributes)."""
    out: dict[int, str] = {}
    if procs is None or procs.num_rows == 0 or "role" not in procs.column_names:
        return out
    t = procs.select(["ts", "pid", "role"]).filter(pc.is_valid(procs.column("role")))
    for row in t.sort_by("ts").to_pylist():
        out[row["pid"]] = row["role"]
    return out


def is_system(path: str | None) -> bool:
    """A path the collector's classifier calls a system or code file (imports, libraries,
    /proc, /dev...): the same test as its file classes (collector.classify)."""
    return bool(path) and _path_kind(path) == "system"


def file_io(io: pa.Table, classes: Sequence[str] = ALL_CLASSES) -> pa.Table:
    """The io rows a replica replays: file I/O of `classes` (null classes are "other").

    Rows folded per directory (grain ``dir``: the resource ends with '/') take the class of
    the directory's own file rows (by ops), so a dataset whose files overflowed
    ``--max-keys`` stays a dataset. System and code files (and directories whose files are
    such) are left out, and so are "other" files that read or wrote less than OTHER_MIN_BYTES
    (directories opened for listing, the runtime's scratch and lock files).
    """
    t = io.filter(pc.equal(io.column("kind"), "file"))
    if t.num_rows == 0:
        return t
    res = [r or "" for r in t.column("resource").to_pylist()]
    cls = [c or "other" for c in t.column("file_class").to_pylist()]
    counts = t.column("count").to_pylist()
    votes: dict[str, dict[str, int]] = {}
    label = []
    for r, c, n in zip(res, cls, counts, strict=True):
        if r.endswith("/"):
            label.append(None)
            continue
        lab = "system" if is_system(r) else c
        label.append(lab)
        d = votes.setdefault(r.rsplit("/", 1)[0] + "/", {})
        d[lab] = d.get(lab, 0) + n
    for i, r in enumerate(res):
        if label[i] is None:
            v = votes.get(r)
            label[i] = max(v, key=v.get) if v else ("system" if is_system(r) else cls[i])
    t = t.set_column(t.schema.get_field_index("file_class"), "file_class",
                     pa.array(label, pa.string()))
    t = t.filter(pc.is_in(t.column("file_class"), pa.array(list(classes))))
    other = pc.equal(t.column("file_class"), "other")
    if pc.any(other).as_py():
        moved = t.filter(pc.and_(other, pc.is_in(t.column("op"), pa.array(list(DATA_OPS))))
                         ).group_by("resource").aggregate([("bytes", "sum")])
        keep = {r for r, b in zip(moved.column("resource").to_pylist(),
                                  moved.column("bytes_sum").to_pylist(), strict=True)
                if b >= OTHER_MIN_BYTES}
        t = t.filter(pc.or_(pc.invert(other),
                            pc.is_in(t.column("resource"), pa.array(list(keep), pa.string()))))
    return t


def tiny_ops(t: pa.Table, sizes: np.ndarray | None = None) -> np.ndarray:
    """Per data-op row of `t`: its ops of 0 or 1 byte (end-of-file reads, mostly), i.e.
    size_hist bucket 0, and every op of a row without a size histogram. `sizes`: the rows'
    size histograms when the caller has them (`metrics.hist_matrix`)."""
    if sizes is None:
        sizes = hist_matrix(t.column("size_hist"), SIZE_BUCKETS)
    count = np.asarray(pc.fill_null(t.column("count"), 0), dtype=np.int64)
    return sizes[:, 0] + np.maximum(0, count - sizes.sum(axis=1))


def _op_stats(t: pa.Table, op: str) -> OpStats:
    sub = t.filter(pc.equal(t.column("op"), op))
    if sub.num_rows == 0:
        return OpStats()
    rows = hist_matrix(sub.column("size_hist"), SIZE_BUCKETS)
    hist = rows.sum(axis=0)
    count = int(pc.sum(sub.column("count")).as_py() or 0)
    tiny = int(tiny_ops(sub, rows).sum())
    rnd = int(pc.sum(pc.fill_null(sub.column("random_ops"), 0)).as_py() or 0)
    hist[0] = 0
    return OpStats(ops=count - tiny, tiny_ops=tiny,
                   bytes=int(pc.sum(sub.column("bytes")).as_py() or 0),
                   random_ops=min(rnd, count - tiny), size_hist=tuple(int(x) for x in hist))


def _count(t: pa.Table, op: str) -> int:
    return int(pc.sum(t.filter(pc.equal(t.column("op"), op)).column("count")).as_py() or 0)


def _span(t: pa.Table) -> tuple[float, int, float, float]:
    """(active span s, active intervals, peak and mean bytes/s) of a group's rows.

    The span runs from the first active interval's start to the last one's end, less the
    part of those two intervals the group was idle in, estimated from their op counts
    against the median of the intervals between (at least three active intervals): a
    group active for 8.2 s may touch 10 intervals, and whole edge intervals would count
    up to 2 s too many in its rates and think time."""
    if t.num_rows == 0:
        return 0.0, 0, 0.0, 0.0
    per = t.group_by("ts").aggregate([("bytes", "sum"), ("interval_s", "max"),
                                      ("count", "sum")]).sort_by("ts")
    ts = np.asarray(pc.cast(per.column("ts"), pa.int64()), dtype=np.int64)
    iv = np.asarray(per.column("interval_s_max"), dtype=np.float64)
    b = np.asarray(per.column("bytes_sum"), dtype=np.float64)
    n = np.asarray(per.column("count_sum"), dtype=np.float64)
    span = float((ts + iv * 1e9).max() - ts.min()) / 1e9
    if len(ts) >= 3 and (typical := float(np.median(n[1:-1]))) > 0:
        idle = [(1 - min(1.0, n[i] / typical)) * iv[i] for i in (0, -1)]
        span = float(max(span - sum(idle), float(iv[1:-1].sum())))
    rate = b / np.maximum(iv, 1e-9)
    return span, len(ts), float(rate.max()), float(b.sum() / span) if span > 0 else 0.0


def _concurrency(t: pa.Table, life: Mapping[int, tuple[int | None, int | None]] | None = None
                 ) -> int:
    """Concurrent processes (threads, in --per-thread captures) doing the group's data ops.

    With the processes' lifetimes (`life`: pid -> (start, exit) ns from the procs table)
    it is the time-averaged number alive over the group's active span: DataLoader workers
    re-created each epoch follow one another, so one worker at a time counts 1 however many
    of them one interval saw. Without them (or per thread) it is the median number active
    per interval."""
    data = t.filter(pc.is_in(t.column("op"), pa.array(list(DATA_OPS))))
    src = data if data.num_rows else t
    per_thread = src.column("tid").null_count != src.num_rows
    pids = set(src.column("pid").to_pylist())
    if life and not per_thread and pids <= set(life):
        ts = np.asarray(pc.cast(src.column("ts"), pa.int64()), dtype=np.int64)
        iv = np.asarray(src.column("interval_s"), dtype=np.float64)
        lo, hi = int(ts.min()), int((ts + iv * 1e9).max())  # ts: interval start
        alive = sum(max(0, min(e or hi, hi) - max(b or lo, lo)) for b, e in
                    (life[p] for p in pids))
        if hi > lo:
            return max(1, int(round(alive / (hi - lo))))
    who = ["pid", "tid"] if per_thread else ["pid"]
    per = src.select(["ts", *who]).group_by(["ts", *who]).aggregate([])
    n = per.group_by("ts").aggregate([("ts", "count")]).column("ts_count")
    return max(1, int(round(float(np.median(np.asarray(n))))))


def lifetimes(procs: pa.Table | None) -> dict[int, tuple[int | None, int | None]]:
    """pid -> (start, exit) wall-clock ns from the procs table (None where not seen)."""
    if procs is None or procs.num_rows == 0 or "start_time" not in procs.column_names:
        return {}
    t = procs.select(["pid", "start_time", "exit_time"])
    t = t.group_by("pid").aggregate([("start_time", "min"), ("exit_time", "max")])
    conv = [pc.cast(t.column(c), pa.int64()).to_pylist()
            for c in ("start_time_min", "exit_time_max")]
    return {p: (b, e) for p, b, e in zip(t.column("pid").to_pylist(), *conv, strict=True)}


def _common_dir(paths: Sequence[str]) -> str:
    dirs = sorted({p.rsplit("/", 1)[0] or "/" for p in paths if p and p.startswith("/")})
    if not dirs:
        return ""
    try:
        return os.path.commonpath(dirs)
    except ValueError:
        return ""


def job_model(t: pa.Table, file_class: str, role: str, faults: tuple[int, int] = (0, 0),
              cache: Mapping[str, tuple[int, int]] | None = None,
              life: Mapping[int, tuple[int | None, int | None]] | None = None) -> JobModel:
    """The model of one group's io rows (all of one file class and role); `faults`:
    (page faults that did I/O, their bytes) on the group's mapped files; `life`: process
    lifetimes (`lifetimes`) for the concurrency. A group that read
    its files through mmap more than with read() is modelled as reading the fault bytes in
    requests of the mean fault size (fio's mmap engine replays that)."""
    span, active, peak, mean = _span(t)
    procs = _concurrency(t, life)
    res = [r for r in pc.unique(t.column("resource")).to_pylist() if r]
    files = len([r for r in res if not r.endswith("/")])
    busy = float(pc.sum(t.column("lat_sum_ns")).as_py() or 0) / 1e9 / procs
    read = _op_stats(t, "read")
    nfault, fbytes = faults
    if _count(t, "mmap") and fbytes > read.bytes and nfault:
        size = fbytes // nfault
        hist = [0] * SIZE_BUCKETS
        hist[min(max(size.bit_length() - 1, 1), SIZE_BUCKETS - 1)] = nfault
        read = OpStats(ops=nfault, bytes=fbytes, size_hist=tuple(hist))
    miss, size = None, 0
    if cache is not None:
        known = [cache[r] for r in res if r in cache]
        size = max((k[1] for k in known), default=0)
        if read.bytes:
            miss = min(1.0, sum(k[0] for k in known) / read.bytes)
    return JobModel(miss_share=miss, file_size=size,
                    file_class=file_class, role=role, procs=procs, files=max(files, 1),
                    opens=_count(t, "open"), stats=_count(t, "stat"),
                    closes=_count(t, "close"), fsyncs=_count(t, "fsync"),
                    mmaps=_count(t, "mmap"), read=read,
                    write=_op_stats(t, "write"), span_s=span, busy_s=busy,
                    active_intervals=active, peak_bytes_s=peak, mean_bytes_s=mean,
                    fault_bytes=fbytes, original_dir=_common_dir(res))


def derive(tables: Mapping[str, pa.Table], classes: Sequence[str] = DEFAULT_CLASSES,
           min_ops: int = 1) -> WorkloadModel:
    """The workload model of a capture's tables (see the module docstring).

    Groups with fewer than `min_ops` operations are left out (counted in `left_out`).
    Raises DeriveError when no file I/O of the given classes is in the capture.
    """
    io = tables.get("io")
    if io is None or io.num_rows == 0:
        raise DeriveError("the capture has no io rows")
    bad = set(classes) - set(ALL_CLASSES)
    if bad:
        raise DeriveError(f"unknown file class {', '.join(sorted(bad))} "
                          f"(classes: {', '.join(ALL_CLASSES)})")
    wall, interval = _wall(io)
    fio = file_io(io, classes)
    if fio.num_rows == 0:
        raise DeriveError(f"no file I/O of class {', '.join(classes)} in the capture")
    role_of = roles(tables.get("procs"))
    comm = dict(zip(fio.column("pid").to_pylist(), fio.column("comm").to_pylist(),
                    strict=True))
    pids = fio.column("pid").to_pylist()
    role_col = [role_of.get(p) or comm.get(p) or "proc" for p in pids]
    fio = fio.append_column("_role", pa.array(role_col, pa.string()))
    faults = _fault_bytes(tables.get("faults"))
    cache = _cache(tables.get("pagecache"))
    life = lifetimes(tables.get("procs"))
    jobs, left = [], {}
    groups = fio.select(["file_class", "_role", "count"]).group_by(
        ["file_class", "_role"]).aggregate([("count", "sum")]).sort_by(
        [("file_class", "ascending"), ("_role", "ascending")])
    for cls, role, n in zip(*(groups.column(c).to_pylist()
                              for c in ("file_class", "_role", "count_sum")), strict=True):
        if n < min_ops:
            left[cls] = left.get(cls, 0) + n
            continue
        sel = pc.and_(pc.equal(fio.column("file_class"), cls), pc.equal(fio.column("_role"), role))
        t = fio.filter(sel)
        mine = [faults[r] for r in set(t.column("resource").to_pylist()) if r in faults]
        job = job_model(t, cls, role, (sum(f[0] for f in mine), sum(f[1] for f in mine)),
                        cache, life)
        if job.data_ops == 0 and job.opens == 0:  # stats of inherited fds (stdout...) only
            left[cls] = left.get(cls, 0) + n
            continue
        jobs.append(job)
    if not jobs:
        raise DeriveError("every group of file I/O is below --min-ops")
    return WorkloadModel(jobs=tuple(jobs), wall_s=wall, interval_s=interval,
                         classes=tuple(classes), not_reproduced=_not_reproduced(io, tables, jobs),
                         left_out=left, cpu_s=_cpu_outside_io(tables.get("cpu"), jobs))


def _cpu_outside_io(cpu: pa.Table | None, jobs: Sequence[JobModel]) -> float | None:
    """CPU seconds of the traced threads (the ``cpu`` table) less the time the replayed
    groups spent in their syscalls, which the replica's own syscalls stand for: the
    compute and data decoding the replica must burn for its I/O to compete for the CPU as
    the original's did. (Time blocked off the CPU in a syscall is subtracted as well, so
    this errs low.) None without a cpu table."""
    if cpu is None or cpu.num_rows == 0:
        return None
    total = float(pc.sum(cpu.column("cpu_ns")).as_py() or 0) / 1e9
    return max(0.0, total - sum(j.busy_s * j.procs for j in jobs))


def _wall(io: pa.Table) -> tuple[float, float]:
    per = io.select(["ts", "interval_s"]).group_by("ts").aggregate([("interval_s", "max")])
    iv = np.asarray(per.column("interval_s_max"), dtype=np.float64)
    return float(iv.sum()), float(np.median(iv)) if len(iv) else 1.0


def _cache(pagecache: pa.Table | None) -> dict[str, tuple[int, int]] | None:
    """resource -> (bytes that missed the page cache on reads, at most the file's size when
    known; largest known size); None
    when the capture has no page-cache data."""
    if pagecache is None or pagecache.num_rows == 0:
        return None
    miss = pc.multiply(pagecache.column("pages_added"),
                       pc.fill_null(pagecache.column("page_bytes"), 4096))
    t = pa.table({"resource": pagecache.column("resource"), "miss": miss,
                  "size": pc.fill_null(pagecache.column("size_bytes"), 0)})
    g = t.group_by("resource").aggregate([("miss", "sum"), ("size", "max")])
    # a page is 4 KiB: a 2 KiB file read cold misses one page, not 4 KiB of its data
    return {r: (min(int(m or 0), int(z)) if z else int(m or 0), int(z or 0)) for r, m, z in zip(
        g.column("resource").to_pylist(), g.column("miss_sum").to_pylist(),
        g.column("size_max").to_pylist(), strict=True) if r}


def _fault_bytes(faults: pa.Table | None) -> dict[str, tuple[int, int]]:
    """resource -> (page faults that did I/O, bytes they brought in)."""
    if faults is None or faults.num_rows == 0:
        return {}
    g = faults.group_by("resource").aggregate([("faults", "sum"), ("bytes", "sum")])
    return {r: (int(n or 0), int(b or 0)) for r, n, b in zip(
        g.column("resource").to_pylist(), g.column("faults_sum").to_pylist(),
        g.column("bytes_sum").to_pylist(), strict=True) if r}


def _not_reproduced(io: pa.Table, tables: Mapping[str, pa.Table],
                    jobs: Sequence[JobModel]) -> tuple[str, ...]:
    """What the replica leaves out, in words, with the original's figures."""
    out = []
    net = io.filter(pc.is_in(io.column("op"), pa.array(["send", "recv"])))
    if net.num_rows:
        b = int(pc.sum(net.column("bytes")).as_py() or 0)
        out.append(f"network I/O ({b / 2**20:.1f} MiB sent/received over sockets): not "
                   "replayed (fio runs file I/O only)")
    pcache = tables.get("pagecache")
    if pcache is not None and pcache.num_rows:
        out.append("page-cache state: approximated per job by fio's invalidate= (files "
                   "dropped from the cache when most of the original's read bytes missed it, "
                   "else left cached after preparation); hits within a run are fio's own")
    else:
        out.append("page-cache state: unknown (no pagecache table): the replica starts cold "
                   "(fio invalidate=1)")
    out.append("GPU compute and host<->GPU copies: replayed only as think time between "
               "bursts of I/O")
    if tables.get("cpu") is None or tables["cpu"].num_rows == 0:
        out.append("CPU load: unknown (no cpu table): the replica's I/O does not compete "
                   "for the CPU with the job's compute")
    tiny = sum(j.read.tiny_ops + j.write.tiny_ops for j in jobs)
    if tiny:
        out.append(f"{tiny} data ops of 0 or 1 byte (end-of-file reads): no replay tool "
                   "issues them")
    stats = sum(j.stats for j in jobs)
    if stats:
        out.append(f"{stats} stat calls: fio stats each of its files a few times at start-up "
                   "instead of at the original's pace")
    if any(j.mmap_reads for j in jobs):
        out.append("mmap'd reads are replayed with fio's mmap engine (page-fault I/O, "
                   "not the original's access order inside the mapping)")
    return tuple(out)
