"""Loader of the syscall probe (syscalls.bpf.c): plan, build, drain.

- `plan(opts, tracefs)` (pure): which syscalls exist on this kernel and the integer -D flags
  that carry the options. No user string ever reaches the C text.
- `SyscallProbe.start()`: compile, attach, open the ring buffer.
- `SyscallProbe.drain()`: flip the double-buffered aggregation maps and read-and-delete the
  idle pair (file grain, then the coarse one) -> numpy arrays of `wire.AGG_KEY` / `wire.AGG_VAL`.
- `SyscallProbe.new_files()`: read-and-delete the paths of files seen for the first time
  -> a numpy array of `wire.NEWFILE`, in batches (no per-open event).
- `SyscallProbe.poll()`: consume the ring buffer into the callback (raw bytes).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from iolens.probes import wire
from iolens.probes.preflight import tracefs_root

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "syscalls.bpf.c"

#: how long to wait after flipping maps before reading the idle one: longer than any
#: in-flight exit program (microseconds), so its update lands before we read.
FLIP_GRACE_S = 0.002


class OptionError(ValueError):
    """An option value that cannot be passed to the probe."""


@dataclass
class Plan:
    """What will be compiled: flags, syscalls present, syscalls missing (with reason)."""

    cflags: list[str] = field(default_factory=list)
    syscalls: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)


def _int_flag(name: str, value: int, lo: int, hi: int) -> str:
    """A validated integer -D flag (the only way options reach C)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise OptionError(f"{name} must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise OptionError(f"{name} must be in [{lo}, {hi}], got {value}")
    return f"-D{name}={int(value)}"


def plan(*, filter_mode: int, self_tgid: int, slow_ns: int, max_keys: int,
         per_thread: bool, latency: bool = True, task_storage: bool = True,
         tracefs: Path | None = None, only: list[str] | None = None,
         all_closes: bool = False, coarse_keys: int | None = None) -> Plan:
    """Choose syscalls and flags. `only` restricts to these syscall names (benchmarks)."""
    root = tracefs or tracefs_root()
    p = Plan()
    for name in wire.SYSCALLS:
        if only is not None and name not in only:
            continue
        ok = root is not None and all(
            (root / "events" / "syscalls" / f"sys_{d}_{name}").is_dir() for d in ("enter", "exit"))
        if ok:
            p.syscalls.append(name)
            p.cflags.append(f"-DHAVE_{name}=1")
        else:
            p.missing[name] = "tracepoint not present on this kernel"
    if root is not None and "group_dead" in _read(root / "events/sched/sched_process_exit/format"):
        p.cflags.append("-DHAVE_GROUP_DEAD=1")
    p.cflags += [
        _int_flag("FILTER_MODE", filter_mode, 0, 2),
        _int_flag("SELF_TGID", self_tgid, 0, 2**22),
        _int_flag("SLOW_NS", slow_ns, 0, 2**62),
        _int_flag("MAX_KEYS", max_keys, 64, 4_000_000),
        _int_flag("COARSE_KEYS", coarse_keys or coarse_for(max_keys), 1024, 1_000_000),
        _int_flag("COARSE_RESERVE", (coarse_keys or coarse_for(max_keys)) // 4, 256, 250_000),
        _int_flag("NEWFILES_MAX", NEWFILES_CAP, 1024, 4_000_000),
        _int_flag("PER_THREAD", int(per_thread), 0, 1),
        _int_flag("ALL_CLOSES", int(all_closes), 0, 1),
        _int_flag("TRACK_LATENCY", int(latency), 0, 1),
        _int_flag("USE_TASK_STORAGE", int(task_storage), 0, 1),
    ]
    return p


def coarse_for(max_keys: int) -> int:
    """Size of the coarse (directory / process grain) map for a file-grain map of max_keys."""
    return max(1024, min(65536, max_keys // 2))


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def program_text() -> str:
    return SOURCE.read_text()


def render(plan_: Plan) -> str:
    """The final program as BCC compiles it (for --print-bpf): flags then source."""
    head = "".join(f"// cflag {f}\n" for f in plan_.cflags)
    return head + program_text()


class SyscallProbe:
    """The running syscall probe. One thread only (the collector thread) may call it."""

    name = "syscalls"

    def __init__(self, plan_: Plan, on_event: Callable[[bytes], None]) -> None:
        self.plan = plan_
        self.on_event = on_event
        self.prog = None
        self.max_keys = _flag(plan_, "MAX_KEYS")
        self.coarse_keys = _flag(plan_, "COARSE_KEYS")
        self._active = 0
        self.task_storage = "-DUSE_TASK_STORAGE=1" in plan_.cflags
        self.newfiles_cap = NEWFILES_CAP
        self.fallback_reason: str | None = None

    def start(self) -> None:
        """Compile and attach; falls back to a hash start map if task storage is refused."""
        from iolens.probes._bcc import ProbeLoadError, Program

        try:
            self.prog = Program(program_text(), self.plan.cflags, str(HERE))
        except ProbeLoadError as exc:
            if not self.task_storage:
                raise
            # Say why, whatever it was: a compile error must not pass for a kernel refusal.
            self.fallback_reason = str(exc)
            # Older kernels lack BPF_TASK_STORAGE / bpf_get_current_task_btf: hash fallback.
            self.plan.cflags = [f for f in self.plan.cflags if not f.startswith("-DUSE_TASK_STORAGE")]
            self.plan.cflags.append("-DUSE_TASK_STORAGE=0")
            self.task_storage = False
            self.prog = Program(program_text(), self.plan.cflags, str(HERE))
        self.prog.open_ring_buffer("events", self.on_event)

    def add_target(self, pid: int) -> bool:
        return self.prog.hash_put_u32_u8("targets", pid)

    def add_cgroup(self, cgid: int) -> bool:
        return self.prog.hash_put_u64_u8("cgroups", cgid)

    def forget_fds(self, tgid: int, fds: list[int]) -> None:
        self.prog.fd_forget("fdid", tgid, fds)

    def poll(self) -> None:
        """Deliver pending ring-buffer records to `on_event`."""
        self.prog.consume()

    def drain(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Flip maps, read-and-delete the idle pair. Returns (keys, per-key totals, ms): the
        file-grain keys first, then the coarse ones (their `grain` says which)."""
        t0 = time.perf_counter()
        idle = self._active
        self._active ^= 1
        self.prog.array_set_u32("ctl", 0, self._active)
        time.sleep(FLIP_GRACE_S)
        keys, vals = self.prog.take_hash(f"agg{idle}", wire.AGG_KEY, wire.AGG_VAL,
                                         self.max_keys)
        ckeys, cvals = self.prog.take_hash(f"aggc{idle}", wire.AGG_KEY, wire.AGG_VAL,
                                           self.coarse_keys)
        # the idle pair is empty again: its directory keys may be made afresh, and it has room
        self.prog.array_set_u32("ctl", 1 + idle, 0)
        self.prog.array_set_u32("ctl", 3 + idle, 0)
        self.prog.array_set_u32("ctl", 5 + idle, 0)
        if len(ckeys):
            keys = np.concatenate([keys, ckeys])
            vals = np.concatenate([vals, cvals])
        return keys, vals[:, 0], (time.perf_counter() - t0) * 1e3

    def new_files(self) -> tuple[np.ndarray, np.ndarray]:
        """Paths of files opened for the first time since the last call (wire.NEWFILE rows,
        in no particular order). Safe while the probe writes: each record is read and
        deleted under the map's bucket lock."""
        keys, vals = self.prog.take_hash("newfiles", NEWFILE_ID, wire.NEWFILE,
                                         self.newfiles_cap)
        return vals[:, 0], keys["id"]

    def counters(self) -> dict[str, int]:
        """Cumulative kernel-side counters (lost events, overflows)."""
        vals = self.prog.percpu_array_sums("counters", len(wire.COUNTERS))
        return dict(zip(wire.COUNTERS, vals))

    def close(self) -> None:
        if self.prog is not None:
            self.prog.close()
            self.prog = None


def _flag(plan_: Plan, name: str) -> int:
    return int(next(f.split("=")[1] for f in plan_.cflags if f.startswith(f"-D{name}=")))


NEWFILE_ID = np.dtype([("id", "<u8")])
#: newfiles map size (the C default NEWFILES_MAX)
NEWFILES_CAP = 262144


def self_tgid() -> int:
    return os.getpid()
