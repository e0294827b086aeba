"""Render a `WorkloadModel` as a fio job file (fio >= 3.x; checked with fio 3.33).

One job section per (file class, role) group. Every file the replica touches is created by
fio under the target directory given by the user (in a folder per job; writers' files
directly under it, since iologs create no folders), with synthetic names
``<class>-<role>.<job>.<file>.<ext>`` whose extension keeps the collector's file class
(``.rec`` is dataset data, ``.pt`` a checkpoint when written and weights when read, ``.log``
a log, ``.dat`` other). Original paths appear only as a summary in comments.

Mapping (see replica_derive for how each figure is measured):

- processes -> ``numjobs`` (blocking syscalls: ``iodepth=1`` each);
- files, opens -> ``nrfiles``, ``filesize``, ``loops``, ``openfiles=1`` with
  ``file_service_type=sequential`` (one file open at a time, read or written through);
- request sizes -> ``bssplit`` (reads,writes); read/write mix -> ``rw`` + ``rwmixread``;
- sequential share -> ``ioengine=sync`` (read()/write(), never counted random) when the
  original made no random positional op, else ``ioengine=psync`` with ``rw=rand*`` and
  ``percentage_random``; a random group on a file of known size reads at random over that
  size (``norandommap``, ``io_size``);
- fsync -> ``fsync_on_close`` (one per open) or ``fsync=N`` (every N writes);
- mmap reads -> ``ioengine=mmap``;
- page cache -> ``invalidate=1`` (cold start) unless the original's read misses cover
  less than half of the distinct data it touched (or nothing is known: cold), else
  ``invalidate=0`` with the job marked `cached at start` (its folder is read once before
  the run); fio drops a file at every open, so re-read files whose re-reads hit the cache
  get a second section (``wait_for``) for the passes after the first;
- pacing -> ``thinktime`` (µs) after each open's worth of requests (``thinktime_blocks``);
- CPU time outside the I/O -> a ``cpuio`` section (`cpu_section`).

Writers (jobs that only write) are replayed from an fio iolog (``read_iolog``, format v2)
instead, for two behaviours of fio 3.33 measured here: with a bssplit whose sizes span
orders of magnitude (a checkpoint: 64 B headers and 4 MiB tensors in one file) fio fills the
end of each file with the small sizes once the large ones no longer fit, adding thousands
of small writes per file; and with ``fsync_on_close`` over several files or loops it opens
and fsyncs each file once more between them. The iolog is synthesised from
the model (the exact number of requests of each size per open, in a seeded shuffled
order; sequential offsets, or random ones in the random share; fsync as in the original),
never copied from the capture. Readers use bssplit, except readers that open a large file
again for each slice they read (`reads_slices`: a DataLoader reading a sample of a shard per
open): an iolog over files of the original's number and size, laid out by a section of
their own (``create_only``) that the iolog sections wait for.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from iolens.analysis.replica_derive import JobModel, OpStats, WorkloadModel

#: writers are replayed from a synthesised iolog unless it would hold more requests than this
IOLOG_MAX_OPS = 500_000

#: file name extension per class: the collector classifies the replica's files alike
EXT = {"dataset": "rec", "checkpoint": "pt", "weights": "safetensors", "log": "log",
       "other": "dat"}


def bssplit(op: OpStats) -> str:
    """fio bssplit for one direction: ``size/pct:...``, integer percentages summing to 100
    (largest remainders), buckets below half a percent dropped."""
    sizes = op.sizes()
    if not sizes:
        return ""
    raw = [(s, p * 100) for s, p in sizes]
    floor = [(s, int(math.floor(p))) for s, p in raw]
    left = 100 - sum(p for _, p in floor)
    order = sorted(range(len(raw)), key=lambda i: raw[i][1] - floor[i][1], reverse=True)
    pct = [p for _, p in floor]
    for i in order[:left]:
        pct[i] += 1
    parts = [(s, p) for (s, _), p in zip(raw, pct, strict=True) if p > 0]
    return ":".join(f"{s}/{p}" for s, p in parts)


@dataclass
class FioJobFile:
    """A rendered job file and the iolog files it names (file name -> content)."""

    text: str
    iologs: dict[str, str] = field(default_factory=dict)
    #: folders (under the target) whose files must be in the page cache when the run starts
    warm: list[str] = field(default_factory=list)


def starts_cached(job: JobModel, max_bytes: int = 8 << 30) -> bool:
    """Did the original find this group's data in the page cache from the start? Yes when
    its reads missed the cache for less than half of the distinct data they touched (a cold
    start misses all of it once); unknown: no. A group that moved no data is replayed
    cached, so that its stand-in 1-byte reads cost no disk reads."""
    if job.data_ops == 0:
        return True
    if job.miss_share is None or job.read.ops == 0:
        return False
    return job.miss_share * job.read.bytes < 0.5 * job.distinct_bytes(max_bytes)


def uses_iolog(job: JobModel) -> bool:
    """Replay this job from a synthesised iolog (see the module docstring)? Writers only:
    a reader's files must exist first, which the job file's bssplit layout provides."""
    return job.read.ops == 0 and 0 < job.write.ops <= IOLOG_MAX_OPS


def _exact_counts(op: OpStats, total: int) -> list[tuple[int, int]]:
    """(size, count) with counts summing to `total`, proportional to the histogram."""
    sizes = op.sizes()
    raw = [p * total for _, p in sizes]
    cnt = [int(math.floor(r)) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - cnt[i], reverse=True)
    for i in order[:total - sum(cnt)]:
        cnt[i] += 1
    return [(s, c) for (s, _), c in zip(sizes, cnt, strict=True) if c > 0]


def _open_requests(job: JobModel, op: OpStats, proc: int, seed: int
                   ) -> tuple[int, list[int], random.Random]:
    """For an iolog of process `proc`: (its opens, the request sizes of one open of
    direction `op`, in exact proportion to its histogram, and the seeded generator the
    orders and random offsets come from)."""
    opens = max(1, round(job.passes / job.procs))
    per_open = max(1, round(op.ops / (opens * job.procs)))
    sizes = [s for s, c in _exact_counts(op, per_open) for _ in range(c)]
    return opens, sizes, random.Random(seed * 1000 + proc)


def _placed(sizes: list[int], start: int, span: int, random_share: float,
            rng: random.Random) -> Iterator[tuple[int, int]]:
    """(offset, size) of one open's requests in a seeded shuffled order: each right after
    the one before, from `start`, or, in the random share, at a page-aligned random offset
    below `span`."""
    order = sizes[:]
    rng.shuffle(order)
    off = start
    for sz in order:
        if random_share and rng.random() < random_share:
            pos = rng.randrange(0, max(1, span - sz + 1)) // 4096 * 4096
        else:
            pos = off
        yield pos, sz
        off = pos + sz


def iolog(job: JobModel, target: str, proc: int, seed: int = 1) -> str:
    """The iolog (v2) of process `proc` of a write job: per open of the original, open one
    of its share of the original's files (in turn), the writes (sizes in exact proportion,
    seeded shuffle), fsyncs at the original cadence, close.

    A file opened again is written over in place: the original may have re-written it anew
    (a checkpoint saved with O_TRUNC), but an iolog cannot truncate, and the alternatives
    measured further from it (benchmarks/replica_variants.py, docs/design.md §4.13): a new
    file per open, or appending past the earlier writes, allocates new blocks (3-9× the
    original's time here), and a section per open that deletes its file pays fio's job
    start-up per open (5×). Written in place over cached pages, writes are faster than the
    original's into new pages (small ones 6.7 µs against 20 µs): said in the job file."""
    opens, sizes, rng = _open_requests(job, job.write, proc, seed)
    nfiles = max(1, min(opens, round(job.files / job.procs)))
    ext = EXT.get(job.file_class, "dat")
    every = 0 if job.fsync_per_open or not job.fsyncs else max(1, round(job.writes_per_fsync))
    extent = sum(sizes)
    out = ["fio version 2 iolog"]
    done = 0
    for k in range(opens):
        i = k % nfiles  # the original's files in turn, as often as it opened them
        path = f"{target}/{job.name}.{proc}.{i}.{ext}"  # iologs create no folders
        if k < nfiles:
            out.append(f"{path} add")
        out.append(f"{path} open")
        for pos, sz in _placed(sizes, 0, extent, job.random_share, rng):
            out.append(f"{path} write {pos} {sz}")
            done += 1
            if every and done % every == 0:
                out.append(f"{path} sync 0 0")
        if job.fsync_per_open:
            out.append(f"{path} sync 0 0")
        out.append(f"{path} close")
    return "\n".join(out) + "\n"


def reads_slices(job: JobModel, max_bytes: int = 8 << 30) -> bool:
    """Does this reader open its files again for each slice it reads (a DataLoader reading
    one sample of a large shard per open)? Then it is replayed from an iolog over files of
    the original's number and size, an open per slice: fio's bssplit jobs read a file
    through once opened, and one small file per open would spread the reads over far more
    page-cache memory than the original touched. Only for groups that found their data
    cached (a cold start would need the first pass dropped, and fio drops at every open)."""
    return (job.read.ops > 0 and job.write.ops == 0 and not job.mmap_reads
            and not job.random_over_file and job.file_size > 0 and job.passes > job.files
            and 2 * job.read.bytes <= job.file_size * job.passes
            and job.read.ops <= IOLOG_MAX_OPS
            and job.files * job.file_size <= max_bytes and starts_cached(job, max_bytes))


def slice_files(job: JobModel) -> int:
    """Files of the original's size each process of a slice reader reads."""
    return max(1, round(job.files / job.procs))


def reader_iolog(job: JobModel, target: str, proc: int, seed: int = 1) -> str:
    """The iolog (v2) of process `proc` of a slice reader (`reads_slices`): per open of the
    original, open one of the process's files and read the next slice of it (one open's
    worth of requests, sizes in exact proportion, seeded shuffle; at random offsets in the
    random share), close; the files in turn, each read through slice by slice."""
    opens, sizes, rng = _open_requests(job, job.read, proc, seed)
    nfiles = slice_files(job)
    extent = sum(sizes)
    slices = max(1, job.file_size // max(1, extent))
    ext = EXT.get(job.file_class, "dat")
    out = ["fio version 2 iolog"]
    added: set[str] = set()
    for k in range(opens):
        i, sl = (k // slices) % nfiles, k % slices
        path = f"{target}/{job.name}/{job.name}.{proc * nfiles + i}.{ext}"
        if path not in added:
            out.append(f"{path} add")
            added.add(path)
        out.append(f"{path} open")
        for pos, sz in _placed(sizes, sl * extent, job.file_size, job.random_share, rng):
            out.append(f"{path} read {pos} {sz}")
        out.append(f"{path} close")
    return "\n".join(out) + "\n"


def slice_layout_section(job: JobModel, target: str) -> list[str]:
    """A section that only lays out a slice reader's files (fio ``create_only``), which its
    per-process iolog sections wait for."""
    ext = EXT.get(job.file_class, "dat")
    return [f"[{job.name}-layout]", f"directory={target}",
            f"filename_format={job.name}/{job.name}.$filenum.{ext}",
            f"nrfiles={slice_files(job) * job.procs}", f"filesize={job.file_size}",
            "rw=read", "create_only=1",
            "; lays out the files only: the reads are the iolog sections below"]


def _rw(job: JobModel) -> tuple[str, list[str]]:
    """fio rw= and the options that go with it."""
    rnd = round(100 * job.random_share)
    reads, writes = job.read.ops > 0, job.write.ops > 0
    base = "rw" if reads and writes else ("write" if writes else "read")
    opts = []
    if reads and writes:
        opts.append(f"rwmixread={round(100 * job.read_share)}")
    if rnd > 0:
        base = "rand" + base
        if rnd < 100:
            opts.append(f"percentage_random={rnd}")
    return base, opts


def job_section(job: JobModel, index: int, target: str, max_bytes: int = 8 << 30,
                iolog_path: str | None = None) -> list[str]:
    """The lines of one job section (comments included); with `iolog_path` the section
    replays that iolog (one section per process: the caller names `job.name`-pN)."""
    nfiles, loops, size = job.layout(max_bytes)
    name = job.name
    ext = EXT.get(job.file_class, "dat")
    rw, rw_opts = _rw(job)
    metadata_only = job.data_ops == 0
    lines = [f"; --- {job.file_class} files, role {job.role}: {job.procs} process(es), "
             f"{job.files} distinct file(s) opened {job.opens} time(s)",
             f";     reads {job.read.ops} ({job.read.bytes} B), writes {job.write.ops} "
             f"({job.write.bytes} B), random share {job.random_share:.1%}, "
             f"fsyncs {job.fsyncs}, stats {job.stats}, mmaps {job.mmaps}",
             f";     active {job.span_s:.1f} s, blocked in I/O {job.busy_s:.2f} s per process; "
             f"peak {job.peak_bytes_s / 2**20:.1f} MiB/s, mean {job.mean_bytes_s / 2**20:.1f} "
             "MiB/s"]
    if job.original_dir:
        lines.append(f";     original files under {job.original_dir}")
    if starts_cached(job, max_bytes):
        lines.append(f";     cached at start: read {target}/{name}/* once before the run")
    if metadata_only:
        lines.append(";     no data moved: replayed as opens with one 1-byte read each "
                     "(counted with end-of-file reads, not as data ops)")
    if iolog_path is not None:
        proc = index
        lines += [f"[{name}-p{proc}]", f"read_iolog={iolog_path}",
                  f"ioengine={'psync' if job.random_share > 0 else 'sync'}", "iodepth=1"]
        if job.write.ops:
            # fio's default invalidate=1 drops the file's pages at every open, so each
            # partial-page write of a re-written file would read its page back first
            lines += ["invalidate=0",
                      "; the iolog holds the opens, writes (sizes, offsets), fsyncs and closes;",
                      "; a file opened again is written over in place (an iolog cannot "
                      "truncate): small writes to its cached pages are faster than to new ones"]
        else:
            lines += [f"wait_for={name}-layout", "invalidate=0",
                      f"; the iolog holds the opens, the reads of one slice each and the "
                      f"closes, over {slice_files(job)} file(s) of {job.file_size} B"]
        if job.think_s > 0:
            lines += [f"thinktime={max(1, round(job.think_s * 1e6))}",
                      f"thinktime_blocks={max(1, round(job.ops_per_open))}"]
        return lines
    lines += [f"[{name}]", f"directory={target}",
              f"filename_format={name}/{name}.$jobnum.$filenum.{ext}",
              f"numjobs={job.procs}", f"nrfiles={nfiles}", "openfiles=1",
              "file_service_type=sequential", "iodepth=1"]
    random_big = job.random_over_file
    if metadata_only:
        lines += ["filesize=1", "bs=1", "rw=read", "ioengine=sync"]
    else:
        lines.append(f"filesize={job.file_size if random_big else size}")
        if random_big:
            lines += [f"io_size={size * nfiles}", "norandommap=1"]
        lines.append(f"rw={rw}")
        lines += rw_opts
        split = ",".join([bssplit(job.read) or "4096/100", bssplit(job.write) or "4096/100"])
        lines.append(f"bssplit={split}")
        engine = "mmap" if job.mmap_reads else ("psync" if job.random_share > 0 else "sync")
        lines.append(f"ioengine={engine}")
    if job.fsyncs:
        if job.fsync_per_open:
            lines.append("fsync_on_close=1")
        else:
            lines.append(f"fsync={max(1, round(job.writes_per_fsync))}")
    if job.think_s > 0:
        blocks = max(1, round(job.ops_per_open)) if not metadata_only else 1
        lines += [f"thinktime={max(1, round(job.think_s * 1e6))}",
                  f"thinktime_blocks={blocks}"]
    miss = job.miss_share
    if loops > 1 and miss is not None and miss < 0.75:
        # re-reads that hit the cache: fio's invalidate= acts at every open, so the first
        # pass (cold when the original's misses cover about one pass) and the re-reads
        # (cached) are two sections over the same files, the second waiting for the first
        first = 0 if starts_cached(job, max_bytes) else 1
        second = [ln.replace(f"[{name}]", f"[{name}-reread]") for ln in lines
                  if not ln.startswith(";")]
        lines += [f"invalidate={first}", "",
                  f"; re-reads of the same files ({loops - 1} more pass(es), cached)",
                  *second, f"wait_for={name}", f"loops={loops - 1}", "invalidate=0"]
    else:
        if loops > 1:
            lines.append(f"loops={loops}")
        lines.append(f"invalidate={0 if starts_cached(job, max_bytes) else 1}")
    return lines


def render_fio(model: WorkloadModel, target: str, source: str = "",
               max_bytes: int = 8 << 30, log_prefix: str = "replica") -> FioJobFile:
    """The fio job file of `model`, every file under `target` (an absolute directory).
    iolog files are named ``<log_prefix>.<job>-p<N>.iolog`` (give the job file's own path
    without its extension: the job file names them by that path)."""
    head = [f"; fio job file written by `iolens replay-config` from the capture {source}",
            f"; target directory (create it first): {target}",
            "; prepare the files, then run (record it with `iolens record -o DIR -- fio FILE`):",
            ";   fio --create_only=1 THIS_FILE && fio THIS_FILE",
            "; jobs marked `cached at start` found their data in the page cache: read their",
            "; folder once after preparing (e.g. cat DIR/* > /dev/null), before the run",
            f"; original: {model.wall_s:.1f} s of capture, {len(model.jobs)} group(s) of file "
            f"I/O (classes {', '.join(model.classes)})",
            "; not reproduced:"]
    head += [f";   - {n}" for n in model.not_reproduced]
    if model.left_out:
        head.append(";   - groups left out (no data and no opens): " + ", ".join(
            f"{c} ({n} ops)" for c, n in sorted(model.left_out.items())))
    # no directory= in [global]: fio 3.33 crashes replaying an iolog of absolute paths
    # with a directory set, so each bssplit job names it
    # iomem=mmap: with fio's default malloc'd buffer, cached 1 MiB reads took 167 µs (p50)
    # here against 102 µs into an mmap'd one (benchmarks/replica_variants.py)
    head += ["", "[global]", "thread=0", "group_reporting=0", "iomem=mmap", ""]
    body: list[str] = []
    logs: dict[str, str] = {}
    warm: list[str] = []
    for job in model.jobs:
        if uses_iolog(job) or reads_slices(job, max_bytes):
            reader = job.write.ops == 0
            for p in range(job.procs):
                path = f"{log_prefix}.{job.name}-p{p}.iolog"
                logs[path] = reader_iolog(job, target, p) if reader else iolog(job, target, p)
                section = job_section(job, p, target, max_bytes, iolog_path=path)
                if reader and p == 0:  # the layout goes after the group's comments
                    at = next(i for i, ln in enumerate(section) if ln.startswith("["))
                    section[at:at] = slice_layout_section(job, target) + [""]
                body += section + [""]
            if reader:
                warm.append(job.name)
        else:
            body += job_section(job, 0, target, max_bytes) + [""]
            if starts_cached(job, max_bytes):
                warm.append(job.name)
    body += cpu_section(model)
    return FioJobFile("\n".join(head + body), logs, warm)


#: CPU load below this many CPUs' worth is not replayed
MIN_CPU_LOAD = 0.05


def cpu_section(model: WorkloadModel) -> list[str]:
    """A fio ``cpuio`` section burning the CPU time the job spent outside its replayed
    I/O (`WorkloadModel.cpu_s`): enough processes at an equal share of a CPU each, for the
    original's wall time. Without it the replica's I/O has the CPUs to itself, and on a
    machine the job kept busy its syscalls (and its pacing) come out faster."""
    load = model.cpu_load
    if model.cpu_s is None or load < MIN_CPU_LOAD:
        return []
    n = max(1, math.ceil(load - 1e-9))
    return [f"; --- CPU: the traced threads ran {model.cpu_s:.1f} CPU-s outside the replayed "
            f"I/O in {model.wall_s:.1f} s ({load:.2f} CPUs: compute, data decoding, the "
            "interpreter);",
            ";     burnt alongside the I/O so that it competes for the CPU as the original's did",
            "[cpu-load]", "ioengine=cpuio", f"cpuload={max(1, min(100, round(100 * load / n)))}",
            f"numjobs={n}", "time_based=1", f"runtime={max(1, math.ceil(model.wall_s))}s", ""]

