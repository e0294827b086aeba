"""The DataLoader's own IPC cost (issue 19): per-object shared memory, fd passing, start-up.

A PyTorch-style DataLoader moves every tensor a worker returns through its own shared-memory
segment: the worker creates a file under /dev/shm, maps it, and hands its fd to the trainer
over a unix socket (the trainer connects, the worker's sharer thread accepts and sends the fd
with sendmsg); batches are announced on a result pipe, indices go out on per-worker pipes.
The cost is per object, not per byte. Recognised by behaviour, never by version strings:

- workers: processes that create segments under /dev/shm/ (opens there; POSIX semaphores
  ``sem.*`` excluded) whose parent (procs.ppid, else a fork event) also maps segments or
  connects to unix sockets; that parent is the trainer;
- objects: the trainer's unix-socket connects (fd passing) plus its opens under /dev/shm
  (the ``file_system`` sharing strategy opens segments by name); batches: the trainer's
  result-queue messages = min(pipe reads / 2, pipe writes) (a message is a 4-byte header and
  a body; each consumed batch sends one index message);
- trainer IPC time: its syscall time on unix sockets, segments and per-process (``fold``)
  socket rows; plus its work inside each fd-passing handshake (authentication, pickling),
  which is when the workers' sharer threads sit blocked in reads on those sockets (their
  unix-socket receive time); plus its per-object work between two fd receives (mapping,
  rebuilding the tensor), estimated as the workers' median ``accept`` wait (their sharer
  thread waits exactly that long between two objects of a batch) times the objects beyond
  one per batch.

In: the ``ipc``, ``forks``, ``shm_first``, ``ops_hist`` and ``fds`` reductions
(analysis/queries.py). Out: `ipc-overhead`, `worker-startup` and `fd-exhaustion` findings.
`loaders(reduced)` is the pure reduction the rules and the TUI share.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from iolens.analysis.queries import Reduced, _ns
from iolens.analysis.rules import Finding
from iolens.analysis.rules._common import Ctx, hist_of, quantile_ms, rnd

IPC_CHANS = ("unix", "shm", "fold")
#: the culprit resource of a loader that passes fds (the `ipc` reduction keeps no peer names)
FD_PASSING = "unix: (fd passing) + /dev/shm/"


@dataclass(frozen=True)
class Startup:
    """One worker's start: fork to its first segment mapped (its first batch handed over)."""

    pid: int
    startup_s: float | None  # None: no batch seen from it in the capture
    shipped_bytes: int       # bytes it read from pipes before its first batch


@dataclass
class Loader:
    """One trainer and its loader workers, reduced over the capture (or a window)."""

    trainer: int
    workers: list[int]
    batches: float
    objects: int
    bytes_per_object: float
    trainer_wall_s: float
    trainer_ipc_s: float         # traced syscall time in IPC
    trainer_gap_s: float         # estimated per-object work between fd receives
    trainer_handshake_s: float   # estimated trainer work inside each fd-passing handshake
    trainer_wait_s: float        # reads of the result queue (waiting for data)
    trainer_ipc_ops: int
    workers_ipc_s: float         # workers' IPC syscall time (accept waits excluded)
    workers_ipc_ops: int
    workers_wall_s: float
    accept_median_ms: float | None
    top_resource: str | None
    startups: list[Startup] = field(default_factory=list)

    @property
    def objects_per_batch(self) -> float:
        return self.objects / self.batches if self.batches else 0.0

    @property
    def ipc_s(self) -> float:
        """The trainer's time in IPC: traced syscalls plus the estimated per-object work."""
        return min(self.trainer_ipc_s + self.trainer_gap_s + self.trainer_handshake_s,
                   self.trainer_wall_s)

    @property
    def ipc_share(self) -> float:
        return self.ipc_s / self.trainer_wall_s if self.trainer_wall_s else 0.0

    def evidence(self) -> dict[str, Any]:
        """The per-batch figures every IPC finding carries."""
        b = max(self.batches, 1e-9)
        other = max(0.0, self.trainer_wall_s - self.ipc_s - self.trainer_wait_s)
        return {
            "workers": len(self.workers), "batches": rnd(self.batches, 1),
            "objects": int(self.objects), "objects_per_batch": rnd(self.objects_per_batch, 1),
            "bytes_per_object": int(self.bytes_per_object),
            "trainer_ipc_s": rnd(self.ipc_s), "trainer_ipc_share": rnd(self.ipc_share),
            "trainer_ipc_syscall_s": rnd(self.trainer_ipc_s),
            "trainer_per_object_work_s": rnd(self.trainer_gap_s),
            "trainer_handshake_work_s": rnd(self.trainer_handshake_s),
            "trainer_wait_s": rnd(self.trainer_wait_s), "trainer_other_s": rnd(other),
            "trainer_wall_s": rnd(self.trainer_wall_s),
            "ipc_ms_per_batch_trainer": rnd(1e3 * self.ipc_s / b),
            "ipc_syscalls_per_batch_trainer": rnd(self.trainer_ipc_ops / b, 1),
            "ipc_ms_per_batch_workers": rnd(1e3 * self.workers_ipc_s / b),
            "ipc_syscalls_per_batch_workers": rnd(self.workers_ipc_ops / b, 1),
            "workers_ipc_share": rnd(self.workers_ipc_s / max(self.workers_wall_s, 1e-9)),
            "accept_median_ms": None if self.accept_median_ms is None
            else rnd(self.accept_median_ms, 4),
        }


def _rows(t: pa.Table | None) -> list[dict[str, Any]]:
    return t.to_pylist() if t is not None and t.num_rows else []


def _sum(rows: list[dict], **match: Any) -> tuple[int, int, int]:
    """(count, bytes, lat_sum_ns) of the rows whose fields equal `match` (tuples: any of)."""
    n = b = t = 0
    for r in rows:
        if all(r[k] in v if isinstance(v, tuple) else r[k] == v for k, v in match.items()):
            n += int(r["count"] or 0)
            b += int(r["bytes"] or 0)
            t += int(r["lat_sum_ns"] or 0)
    return n, b, t


def _children(reduced: Reduced, info: dict[int, dict[str, Any]]) -> dict[int, int]:
    """child pid -> parent pid, from procs.ppid and, where missing, fork events."""
    parent = {p: i["ppid"] for p, i in info.items() if i.get("ppid") is not None}
    for r in _rows(reduced.get("forks")):
        d = str(r.get("detail") or "")
        if d.startswith("child="):
            try:
                parent.setdefault(int(d[6:]), int(r["pid"]))
            except ValueError:
                continue
    return parent


def _fork_times(reduced: Reduced) -> dict[int, int]:
    """child pid -> fork time (ns)."""
    out: dict[int, int] = {}
    for r in _rows(reduced.get("forks")):
        d = str(r.get("detail") or "")
        if d.startswith("child="):
            try:
                child = int(d[6:])
            except ValueError:
                continue
            ts = _ns(r["ts"])
            if ts is not None:
                out[child] = min(out.get(child, ts), ts)
    return out


def _startups(reduced: Reduced, workers: list[int], by_pid: dict[int, list[dict]]
              ) -> list[Startup]:
    """Fork -> first segment mapped, per worker, with the pipe bytes it read before."""
    forks = _fork_times(reduced)
    first = {int(r["pid"]): _ns(r["first_shm_ts"]) for r in _rows(reduced.get("shm_first"))}
    out = []
    for w in workers:
        if w not in forks:
            continue
        f = first.get(w)
        shipped = sum(int(r["bytes"] or 0) for r in by_pid.get(w, [])
                      if r["chan"] == "pipe" and r["op"] == "read"
                      and (f is None or (_ns(r["ts"]) or 0) < f))
        out.append(Startup(w, None if f is None else max(0.0, (f - forks[w]) / 1e9), shipped))
    return out


def loaders(reduced: Reduced, wall_of: Any = None,
            parents: dict[int, int] | None = None) -> list[Loader]:
    """Every trainer with loader workers found in the capture, with its IPC figures.

    `wall_of(pid) -> seconds` gives a process's wall time (default: the procs span); the
    trainer's time is the span of its loader traffic within it; `parents` (pid -> ppid)
    adds what the caller knows of the process tree (the TUI's folded procs)."""
    ipc = _rows(reduced.get("ipc"))
    if not ipc:
        return []
    info = reduced.procs_info()
    wall = wall_of or (lambda p: max(info.get(p, {}).get("wall_s") or reduced.wall_s, 1e-3))
    by_pid: dict[int, list[dict]] = {}
    for r in ipc:
        by_pid.setdefault(int(r["pid"]), []).append(r)
    makers = {p for p, rows in by_pid.items() if _sum(rows, chan="shm", op="open")[0] > 0}
    parent = _children(reduced, info) | (parents or {})
    groups: dict[int, list[int]] = {}
    for w in sorted(makers):
        t = parent.get(w)
        if t is None or t not in by_pid or t == w:
            continue
        trows = by_pid[t]
        receives = _sum(trows, chan="shm", op=("mmap", "open"))[0] + \
            _sum(trows, chan=("unix", "fold"), op="connect")[0]
        if receives:
            groups.setdefault(t, []).append(w)
    out = []
    hist = reduced.get("ops_hist")
    for t, workers in sorted(groups.items()):
        trows = by_pid[t]
        wrows = [r for w in workers for r in by_pid.get(w, [])]
        objects = _sum(trows, chan=("unix", "fold"), op="connect")[0] + \
            _sum(trows, chan="shm", op="open")[0]
        reads, writes = (_sum(trows, chan="pipe", op=o)[0] for o in ("read", "write"))
        batches = min(reads / 2, writes) if writes else reads / 2
        if batches < 1 or objects == 0:
            continue
        maps, mbytes, _ = _sum(trows, chan="shm", op="mmap")
        if not maps:
            maps, mbytes, _ = _sum(wrows, chan="shm", op="mmap")
        n_ipc, _, t_ipc = _sum(trows, chan=IPC_CHANS)
        _, _, t_wait = _sum(trows, chan="pipe", op="read")
        wn, _, wt = _sum([r for r in wrows if r["op"] != "accept"], chan=IPC_CHANS)
        med = None
        if hist is not None and hist.num_rows:
            h = hist_of(hist.filter(pc.field("pid").isin(workers) &
                                    (pc.field("op") == "accept")))
            med = quantile_ms(h, 0.5) if h.sum() else None
        per_batch = objects / batches
        gap = max(0.0, objects - batches) * med / 1e3 \
            if med is not None and not np.isnan(med) and per_batch >= 3 else 0.0
        fd_passing = any(r["chan"] == "unix" for r in trows)
        out.append(Loader(
            trainer=t, workers=sorted(workers), batches=batches, objects=objects,
            bytes_per_object=mbytes / maps if maps else 0.0,
            trainer_wall_s=min(wall(t), _span_s(trows) or wall(t)),
            trainer_ipc_s=t_ipc / 1e9, trainer_gap_s=gap,
            trainer_handshake_s=_sum(wrows, chan="unix", op="recv")[2] / 1e9,
            trainer_wait_s=t_wait / 1e9,
            trainer_ipc_ops=n_ipc, workers_ipc_s=wt / 1e9, workers_ipc_ops=wn,
            workers_wall_s=sum(wall(w) for w in workers), accept_median_ms=med,
            top_resource=FD_PASSING if fd_passing else "/dev/shm/",
            startups=_startups(reduced, sorted(workers), by_pid)))
    return out


def _span_s(rows: list[dict]) -> float:
    """Seconds from the first to the end of the last interval with the trainer's loader IPC
    (its time as a loader's consumer: imports and set-up before are not part of it)."""
    ts = [(_ns(r["ts"]) or 0, float(r["interval_s"] or 0)) for r in rows
          if r["chan"] in IPC_CHANS + ("pipe",)]
    if not ts:
        return 0.0
    return (max(t + iv * 1e9 for t, iv in ts) - min(t for t, _ in ts)) / 1e9


def ipc_overhead(ctx: Ctx) -> list[Finding]:
    """Many small objects per batch: the trainer spends a large share of its time receiving
    them (fd passing, mapping, unpickling), or the workers do creating and sending them."""
    th, out = ctx.th, []
    for ld in loaders(ctx.reduced, ctx.pid_wall):
        opb = ld.objects_per_batch
        w_share = ld.workers_ipc_s / max(ld.workers_wall_s, 1e-9)
        if opb < th["ipc_objects_per_batch"] or \
                max(ld.ipc_share, w_share) < th["ipc_time_share"]:
            continue
        # packing into one object per batch leaves 1/opb of the per-object cost
        impact = ld.ipc_s * (1.0 - 1.0 / opb)
        wall = ld.trainer_wall_s
        ev = ld.evidence() | {
            "predicted_speedup": rnd(wall / max(wall - impact, 1e-9)),
            "workers_ipc_share": rnd(w_share)}
        out.append(Finding(
            code="IPC-OVERHEAD", category="ipc-overhead", severity="",
            title=f"{opb:.0f} shared-memory objects per batch: the trainer spends "
                  f"{ld.ipc_share:.0%} of its time receiving them "
                  f"({1e3 * ld.ipc_s / ld.batches:.1f} ms per batch)",
            culprit=ctx.culprit(ld.trainer, ld.top_resource,
                                role=ctx.procs.get(ld.trainer, {}).get("role") or "trainer"),
            impact_s=impact, evidence=ev,
            recommendation=(
                f"Each tensor a worker returns is its own /dev/shm segment and fd passed over "
                f"a unix socket ({opb:.0f} per batch, {ld.bytes_per_object / 1024:.1f} KiB "
                f"each): pack the sample's fields into fewer, larger tensors in collate_fn "
                f"(concatenate variable-length fields with an offsets tensor), use larger "
                f"batches, and return plain numbers as one tensor; pin_memory=True adds a "
                f"copy per object in the trainer, so pack before pinning.")))
    return out


def worker_startup(ctx: Ctx) -> list[Finding]:
    """A loader whose first batch comes long after its first worker's fork while a large
    payload was shipped to each worker (a dataset object pickled into spawned workers): the
    median bytes a worker read from pipes before its first batch >= worker_startup_bytes."""
    th, out = ctx.th, []
    forks = _fork_times(ctx.reduced)
    for ld in loaders(ctx.reduced, ctx.pid_wall):
        done = [s.startup_s for s in ld.startups if s.startup_s is not None]
        if not done:
            continue
        med = statistics.median(done)
        shipped = [s.shipped_bytes for s in ld.startups]
        per_worker = int(statistics.median(shipped)) if shipped else 0
        # the loader starts every worker before it hands out the first index, so what the
        # trainer waits is the first worker's fork -> the first batch (a later worker's own
        # fork -> first batch is shorter: it was started last)
        t0 = min(forks[s.pid] for s in ld.startups)
        first = min(forks[s.pid] + s.startup_s * 1e9 for s in ld.startups
                    if s.startup_s is not None)
        impact = (first - t0) / 1e9
        # slow start-up without a shipped dataset is imports and machine load (spawned
        # workers import torch again): not this rule's diagnosis
        if impact < th["worker_startup_s"] or per_worker < th["worker_startup_bytes"]:
            continue
        # the trainer's own time writing the start-up payloads into the workers' pipes
        ship_ns = sum(int(r["lat_sum_ns"] or 0) for r in _rows(ctx.reduced.get("ipc"))
                      if int(r["pid"]) == ld.trainer and r["chan"] == "pipe"
                      and r["op"] == "write" and (_ns(r["ts"]) or 0) < first)
        out.append(Finding(
            code="IPC-STARTUP", category="worker-startup", severity="",
            title=f"the loader's first batch came {impact:.1f} s after its first worker was "
                  f"forked; {per_worker / 1e6:.1f} MB shipped to each of "
                  f"{len(ld.startups)} workers",
            culprit=ctx.culprit(ld.trainer, None,
                                role=ctx.procs.get(ld.trainer, {}).get("role") or "trainer"),
            impact_s=impact,
            evidence={"workers": len(ld.startups), "workers_started": len(done),
                      "startup_median_s": rnd(med), "startup_max_s": rnd(max(done)),
                      "first_batch_delay_s": rnd(impact),
                      "trainer_ship_s": rnd(ship_ns / 1e9),
                      "shipped_bytes_per_worker": per_worker,
                      "shipped_bytes_total": int(sum(shipped)),
                      "startups": [{"pid": s.pid, "startup_s": None if s.startup_s is None
                                    else rnd(s.startup_s), "shipped_bytes": s.shipped_bytes}
                                   for s in ld.startups]},
            recommendation=(
                "The dataset object is pickled into every worker at start: keep only what "
                "is needed to find samples (a root and a count, or a memory-mapped index "
                "file opened lazily in the worker) instead of a large in-memory list; use "
                "persistent_workers=True so workers start once, not every epoch, and prefer "
                "the fork start method where it is safe.")))
    return out


def fd_exhaustion(ctx: Ctx) -> list[Finding]:
    """A process whose open fds reach a large share of its soft RLIMIT_NOFILE (the
    file_descriptor sharing strategy keeps one fd per shared tensor alive)."""
    th, out = ctx.th, []
    for r in _rows(ctx.reduced.get("fds")):
        limit = r.get("fd_limit")
        if not limit:
            continue
        share = r["max_fds"] / limit
        if share < th["fd_limit_share"]:
            continue
        span = ((_ns(r["last_ts"]) or 0) - (_ns(r["first_ts"]) or 0)) / 1e9
        growth = (r["last_fds"] - r["first_fds"]) / span if span > 0 else 0.0
        left = (limit - r["last_fds"]) / growth if growth > 0 else None
        pid = int(r["pid"])
        out.append(Finding(
            code="IPC-FDS", category="fd-exhaustion",
            severity="high" if share >= th["fd_limit_high_share"] else "warn",
            title=f"pid {pid} holds {r['max_fds']} open fds, {share:.0%} of its limit "
                  f"{limit}" + (f"; at {growth:.0f}/s it reaches it in {left:.0f} s"
                                if left is not None else ""),
            culprit=ctx.culprit(pid, None, comm=r.get("comm")),
            # a crash risk, not a time cost: the process's wall time weighted by how close
            # it came to the limit, so that a near-exhaustion ranks near the top
            impact_s=ctx.pid_wall(pid) * min(share, 1.0),
            evidence={"max_fds": int(r["max_fds"]), "first_fds": int(r["first_fds"]),
                      "last_fds": int(r["last_fds"]), "fd_limit": int(limit),
                      "share": rnd(share), "growth_per_s": rnd(growth),
                      "seconds_to_limit": None if left is None else rnd(left),
                      "samples": int(r["samples"])},
            recommendation=("Each tensor shared with the file_descriptor strategy keeps an fd "
                            "open while it lives: pack tensors into fewer objects, release "
                            "batches sooner, raise the soft limit (ulimit -n), or use "
                            "torch.multiprocessing.set_sharing_strategy('file_system').")))
    return out


RULES = (ipc_overhead, worker_startup, fd_exhaustion)
