"""The live collector: probes -> per-interval tables, on one thread.

`Collector` owns the probes and the `Resolver`; every call into BCC happens on the thread
that runs `Collector.run()` (requests from other threads, such as "follow this pid", go
through a queue). Each interval it flips and drains the kernel maps, consumes the ring buffer,
enriches, and hands an `Interval` to its sinks (capture writer, metrics exporter, TUI queue).

`LiveSource` adapts it to the `Source` protocol for the TUI.
"""

from __future__ import annotations

import os
import queue
import resource
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from iolens import __version__
from iolens.collector import schema as S
from iolens.collector.capture import CaptureMeta, CaptureWriter, iso_now
from iolens.collector.clock import sample as clock_sample
from iolens.collector.enrich import Resolver
from iolens.collector.options import RecordOptions
from iolens.collector.sources import Interval
from iolens.probes import syscalls, wire

Sink = Callable[[Interval], None]
POLL_S = 0.1  # ring-buffer consume cadence (no wakeups are requested by the probes)
#: ring-buffer events handled per poll cycle at most: a burst (a fork storm, thousands of
#: failed opens) waits in the ring buffer rather than delaying the next flip; the cycles that
#: stop at the budget are counted in health.event_backlog
EVENT_BUDGET = 20_000
#: cuts waiting for the collector thread at most (then the flipper waits: a late flip, but
#: nothing dropped and memory bounded)
CUT_QUEUE = 30
SWITCH_S = 0.001
FAST_FIRST_S = 0.3  # length of the first interval when a dashboard asks for a fast start
FAST_MAX_S = 1.5  # ...and at most this long of such short intervals before the optional probes


def _trim_heap() -> None:
    """Give the compiler's freed memory back to the system (~40 MB after loading the
    probes, measured by benchmarks/capacity.py's RSS breakdown)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _rss_bytes() -> int:
    try:
        return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def make_meta(opts: RecordOptions) -> CaptureMeta:
    mode = "command" if opts.command else "pids" if opts.pids else \
        "cgroup" if opts.cgroup else "system"
    return CaptureMeta(iolens_version=__version__, started=iso_now(), command=opts.command,
                       target_pids=list(opts.pids), mode=mode, interval_s=opts.interval_s,
                       redacted=opts.redact,
                       options={"per_thread": opts.per_thread, "slow_ms": opts.slow_ms,
                                "max_keys": opts.max_keys, "latency": opts.latency})


def build_plan(opts: RecordOptions) -> syscalls.Plan:
    filter_mode = 1 if (opts.pids or opts.command) else 2 if opts.cgroup else 0
    return syscalls.plan(filter_mode=filter_mode, self_tgid=os.getpid(),
                         slow_ns=int(opts.slow_ms * 1e6), max_keys=opts.max_keys,
                         per_thread=opts.per_thread, latency=opts.latency,
                         all_closes=opts.all_events)


class Collector:
    """Runs the probes and produces intervals. Construct anywhere; run on one thread."""

    def __init__(self, opts: RecordOptions, sinks: list[Sink], meta: CaptureMeta | None = None):
        self.opts = opts
        self.sinks = sinks
        self.meta = meta or make_meta(opts)
        self.host = socket.gethostname()
        self.status = "compiling probes…"
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self.error: BaseException | None = None
        self.intervals = 0
        self.rows = 0
        self.lost = 0
        self._stop = threading.Event()
        self._requests: queue.Queue[tuple[str, int, threading.Event]] = queue.Queue()
        self._events: list[dict] = []
        self._exited: list[int] = []
        self._n_events = 0      # events handled this interval
        self._backlog = 0       # poll cycles that stopped at EVENT_BUDGET this interval
        self._new_files = 0     # files whose path arrived this interval
        self._budget_left = EVENT_BUDGET
        self._counters = dict.fromkeys(wire.COUNTERS, 0)
        self.resolver = Resolver()
        from iolens.collector.fdstats import FdStats
        from iolens.collector.taskstats import TaskStats

        # per-interval /proc samplers of the traced processes: CPU time, open fds
        self.taskstats = TaskStats(time.time_ns())
        self.fdstats = FdStats()
        from iolens.collector.classify import FileClassifier, load_rules

        self.rules = load_rules(opts.role_map)  # --role-map (RoleMapError if unusable)
        self.classifier = FileClassifier(self.rules)
        self.probe: syscalls.SyscallProbe | None = None
        self.extra: list = []
        #: dashboard mode: attach the syscall probe, deliver a short first interval, then
        #: load the optional probes (which then miss that first moment)
        self.fast_start = False
        self._last_io_rows = 0
        self._redactor = None
        if opts.redact:
            from iolens.collector.redact import Redactor

            self._redactor = Redactor()

    # --- requests from other threads -------------------------------------------------------
    def follow(self, pid: int, timeout: float = 10.0) -> bool:
        """Ask the collector thread to trace `pid` (and descendants); wait until done."""
        done = threading.Event()
        self._requests.put(("pid", pid, done))
        return done.wait(timeout)

    def stop(self) -> None:
        self._stop.set()

    # --- the thread ----------------------------------------------------------------------
    def run(self) -> None:
        """Compile, attach, then loop until stop(); always drains a final partial interval."""
        try:
            self._start()
            self.ready.set()
            self._loop()
        except BaseException as exc:  # noqa: BLE001 - reported to the owner thread
            self.error = exc
            self.status = f"error: {exc}"
        finally:
            self.ready.set()
            for p in self.extra:
                p.close()
            if self.probe is not None:
                self.probe.close()
            self.stopped.set()

    def _start(self) -> None:
        plan = build_plan(self.opts)
        self.meta.probes_skipped.update({f"syscalls:{k}": v for k, v in plan.missing.items()})
        self.probe = syscalls.SyscallProbe(plan, self._on_raw_event)
        self.probe.start()
        self.meta.probes_attached.append("syscalls")
        if not self.probe.task_storage:
            self.meta.probes_skipped["task_storage"] = (
                f"task-storage build failed ({self.probe.fallback_reason}); using a hash map")
        for pid in self.opts.pids:
            self.probe.add_target(pid)
        if self.opts.cgroup:
            self.probe.add_cgroup(os.stat(self.opts.cgroup).st_ino)
        if not self.fast_start:
            self._start_extra()
        self._apply_requests()
        self.meta.clock.append(clock_sample())
        _trim_heap()
        self.status = "tracing"

    def _start_extra(self) -> None:
        """Load every optional probe, one after the other (BCC's compiler is not thread-safe:
        compiling two programs at once crashed the process); a refused one is recorded as
        skipped, with the reason."""
        from iolens.probes.registry import EXTRA_PROBES, load_class

        wanted = set(self.opts.probes) if self.opts.probes is not None else None
        for spec in EXTRA_PROBES:
            try:
                probe = load_class(spec)(self.opts)
            except Exception as exc:  # noqa: BLE001 - a broken optional probe must not stop us
                self.meta.probes_skipped[spec] = f"cannot build: {exc}"
                continue
            if probe.name in self.opts.disable or (wanted is not None and probe.name not in wanted):
                self.meta.probes_skipped[probe.name] = "disabled by option"
                continue
            self.status = f"compiling probes… ({probe.name})"
            try:
                probe.start()
            except Exception as exc:  # noqa: BLE001
                reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                self.meta.probes_skipped[probe.name] = reason
                probe.close()
                continue
            self.extra.append(probe)
            self.meta.probes_attached.append(probe.name)
            # hooks the probe was built without: the capture says what it could not see
            for hook, why in getattr(probe, "missing_hooks", dict)().items():
                self.meta.probes_skipped[f"{probe.name}:{hook}"] = why

    def _drop_probe(self, probe, exc: BaseException) -> None:
        """An optional probe failed while running: detach it, say so in the capture."""
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        self.meta.errors.append(f"probe {probe.name} stopped: {reason}")
        self.meta.probes_skipped[probe.name] = f"failed while running: {reason}"
        if probe.name in self.meta.probes_attached:
            self.meta.probes_attached.remove(probe.name)
        self.extra.remove(probe)
        try:
            probe.close()
        except Exception:  # noqa: BLE001
            pass

    def _apply_requests(self) -> None:
        while True:
            try:
                kind, value, done = self._requests.get_nowait()
            except queue.Empty:
                return
            if kind == "pid" and self.probe is not None:
                self.probe.add_target(value)
            done.set()

    def _loop(self) -> None:
        """Process the cuts the flipper makes, and poll between them, until its last cut.

        The flipper thread (`_Flipper`) flips and drains the syscall probe's maps on time,
        whatever this thread is doing (decoding a burst of events, enriching a large
        interval, compiling the optional probes): interval boundaries never wait for
        processing. This thread turns each cut into tables, in order."""
        cuts: queue.Queue[_Cut | None] = queue.Queue(maxsize=CUT_QUEUE)
        # The flipper needs the GIL only for moments, but with the default 5 ms switch
        # interval it waited up to seconds behind this thread's busy intervals on a loaded
        # 2-vCPU machine (flips 0.4-1.3 s late); 1 ms kept them within tens of ms.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_S))
        flipper = _Flipper(self, cuts)
        self._cpu0 = _cpu_s()
        flipper.start()
        extra_started = not self.fast_start
        try:
            while True:
                try:
                    cut = cuts.get(timeout=POLL_S)
                except queue.Empty:
                    self._poll_all()
                    continue
                if cut is None:
                    break
                self._emit(cut)
                if not extra_started and (flipper.fast_done.is_set() or self._stop.is_set()):
                    # dashboard mode: the first rows are on screen; now the optional probes
                    self._start_extra()
                    _trim_heap()
                    self.status = "tracing"
                    extra_started = True
        finally:
            self._stop.set()
            while flipper.is_alive():  # after an error: let a flipper blocked on a full queue end
                try:
                    cuts.get(timeout=0.1)
                except queue.Empty:
                    pass

    def _poll_all(self) -> None:
        self._apply_requests()
        self._poll_syscalls()
        for p in list(self.extra):
            try:
                p.poll()
            except Exception as exc:  # noqa: BLE001
                self._drop_probe(p, exc)

    # --- per interval --------------------------------------------------------------------
    def _poll_syscalls(self) -> None:
        """One poll cycle of the syscall probe: new files' paths (a batch), then at most
        EVENT_BUDGET ring-buffer events."""
        self._learn_files()
        self._budget_left = EVENT_BUDGET
        self.probe.poll()
        if self._budget_left <= 0:
            self._backlog += 1

    def _learn_files(self) -> None:
        recs, ids = self.probe.new_files()
        self._new_files += self.resolver.learn_files(recs, ids)

    def _on_raw_event(self, buf: bytes) -> bool:
        """Handle one ring-buffer record; True asks the consumer to stop (budget spent)."""
        self._budget_left -= 1
        self._n_events += 1
        self._handle_event(buf)
        return self._budget_left <= 0

    def _handle_event(self, buf: bytes) -> None:
        ev = wire.decode_event(buf)
        kind, res = self.resolver.on_event(ev)
        # Successful opens and closes are the bulk of events (a DataLoader opens thousands of
        # files a second); the io table already counts them per path, so the events table
        # keeps only failed opens unless --all-events asks for every one.
        if ev.type in ("dup", "chdir") or (not self.opts.all_events and (
                ev.type == "close" or (ev.type == "open" and ev.ret >= 0))):
            return
        if ev.type == "exit":
            self._exited.append(ev.tgid)
        info = self.resolver.procs.get(ev.tgid)
        self._events.append({
            "ts": self.resolver.wall_ns(ev.ts), "pid": ev.tgid, "tid": ev.tid,
            "comm": info.comm if info else None, "type": ev.type,
            "op": wire.op_for(ev.sys, kind) if ev.type == "slow" else None,
            "syscall": ev.sys or None, "kind": kind, "resource": res, "fd": ev.fd,
            "ret": ev.ret, "lat_ns": ev.lat or None,
            "bytes": (ev.ret if ev.type == "slow" and ev.ret > 0 else
                      ev.arg2 if ev.type == "mmap" else None),
            "detail": _detail(ev),
        })

    def _emit(self, cut: _Cut) -> None:
        """One cut -> the interval's tables, handed to the sinks."""
        keys, totals, drain_ms = cut.keys, cut.totals, cut.drain_ms
        start_ns, end_ns, cpu0 = cut.start_ns, cut.end_ns, self._cpu0
        # paths and events that precede the drained ops are needed first (bounded: a backlog
        # of events leaves some rows unnamed rather than stretching the interval)
        self._apply_requests()
        self._poll_syscalls()
        interval_s = (end_ns - start_ns) / 1e9
        from iolens.collector import iotable

        built = iotable.build(keys, totals, start_ns, interval_s, self.host, self.resolver,
                              self.classifier, self._redactor)
        io = built.table
        events = self._events_table()
        tables = {"io": io, "events": events}
        if self.extra:
            from iolens.probes.registry import DrainContext

            ctx = DrainContext(start_ns, end_ns, interval_s, self.host, self.resolver,
                               self.resolver.boot_offset_ns)
            for p in list(self.extra):
                try:
                    p.poll()
                    got = p.drain(ctx)
                    for name, t in got.items():  # a probe's rows must fit the schema
                        got[name] = t.cast(S.TABLES[name]) if t.schema != S.TABLES[name] else t
                        got[name] = self._redactor.table(got[name]) if self._redactor else got[name]
                    tables.update(got)
                except Exception as exc:  # noqa: BLE001 - one broken probe must not stop the rest
                    self._drop_probe(p, exc)
        procs = self._procs_table(end_ns)
        tables["procs"] = procs
        for name, sampler in (("cpu", self.taskstats), ("fds", self.fdstats)):
            tables[name] = sampler.table(self.resolver.procs, start_ns, interval_s, self.host)
        counters = self.probe.counters()
        delta = {k: counters[k] - self._counters.get(k, 0) for k in counters}
        self._counters = counters
        cpu1 = _cpu_s()
        health = {
            "ts": start_ns, "interval_s": interval_s, "host": self.host,
            "io_rows": io.num_rows, "event_rows": events.num_rows,
            "lost_events": delta["lost_events"], "agg_overflow": delta["agg_overflow"],
            "fd_overflow": delta["fd_overflow"], "target_overflow": delta["target_overflow"],
            "drain_ms": drain_ms,
            "collector_cpu_s": cpu1 - cpu0, "collector_rss_bytes": _rss_bytes(),
            "keys": int(len(keys)), "ops": built.ops,
            "folded_dir": delta["folded_dir"], "folded_proc": delta["folded_proc"],
            "new_files": self._new_files, "newfile_lost": delta["newfile_lost"],
            "events": self._n_events, "event_backlog": self._backlog,
            "unresolved_ops": built.unresolved_ops,
        }
        self._new_files = self._n_events = self._backlog = 0
        self._last_io_rows = io.num_rows
        htable = S.to_table("health", {k: [v] for k, v in health.items()})
        self.resolver.after_drain()
        self._forget_exited(end_ns)
        self.intervals += 1
        if self.intervals % 60 == 0:  # clock drift and NTP state over long captures
            self.meta.clock.append(clock_sample())
        self.rows += io.num_rows
        self.lost += delta["lost_events"]
        self.meta.intervals = self.intervals
        self.meta.lost_events += delta["lost_events"]
        self.meta.agg_overflow += delta["agg_overflow"]
        self.meta.note_coverage(built.ops, delta["agg_overflow"], delta["lost_events"],
                                delta["newfile_lost"], built.unresolved_ops, interval_s,
                                self.opts.interval_s)
        self.meta.collector_cpu_s += cpu1 - cpu0
        h = dict(health)
        h.pop("ts")
        h["flip_late_ms"] = cut.late_ms
        tables["health"] = htable
        iv = Interval(start_ns, end_ns, tables, h)
        for sink in self.sinks:
            sink(iv)
        self._cpu0 = cpu1

    def _events_table(self) -> pa.Table:
        rows, self._events = self._events, []
        if not rows:
            return S.empty_table("events")
        if self._redactor is not None:
            for r in rows:
                r["resource"] = self._redactor.path(r["resource"])
                if r["type"] == "exec":
                    r["detail"] = self._redactor.path(r["detail"])
        cols = {k: [r[k] for r in rows] for k in rows[0]}
        cols["ts"] = pa.array(cols["ts"], pa.int64()).cast(S.TS)
        cols["host"] = [self.host] * len(rows)
        return S.to_table("events", cols)

    def _procs_table(self, now_ns: int) -> pa.Table:
        from iolens.collector.classify import assign_roles

        stale = [i for i in self.resolver.procs.values() if i.dirty or i.roles_stale]
        if not stale:
            return S.empty_table("procs")
        assign_roles(self.resolver.procs, stale, self.rules)  # marks role changes dirty
        dirty = [i for i in self.resolver.procs.values() if i.dirty]
        if not dirty:
            return S.empty_table("procs")
        for i in dirty:
            i.dirty = False
        red = self._redactor
        cols = {
            "ts": pa.array([now_ns] * len(dirty), pa.int64()).cast(S.TS),
            "host": [self.host] * len(dirty),
            "pid": [i.pid for i in dirty], "ppid": [i.ppid for i in dirty],
            "comm": [i.comm for i in dirty],
            "cmdline": [red.cmdline(i.cmdline) if red else i.cmdline for i in dirty],
            "exe": [red.path(i.exe) if red else i.exe for i in dirty],
            "start_time": pa.array([i.start_ns for i in dirty], pa.int64()).cast(S.TS),
            "exit_time": pa.array([i.exit_ns for i in dirty], pa.int64()).cast(S.TS),
            "cgroup": [i.cgroup for i in dirty], "cgroup_id": [i.cgroup_id for i in dirty],
            "container_id": [i.container_id for i in dirty],
            "ns_pid": [i.ns_pid for i in dirty], "role": [i.role for i in dirty],
            "rank": [i.rank for i in dirty],
        }
        return S.to_table("procs", cols)

    def _forget_exited(self, now_ns: int) -> None:
        """Release kernel fd-map entries of exited processes, then their caches."""
        exited, self._exited = self._exited, []
        for pid in exited:
            fds = [fd for (p, fd) in self.resolver.cur if p == pid]
            if fds:
                self.probe.forget_fds(pid, fds)
        # Keep an exited process's info for a minute: late rows may still name it.
        self.resolver.forget_exited(now_ns - 60 * 10**9)


def _detail(ev: wire.RawEvent) -> str | None:
    if ev.type == "fork":
        return f"child={ev.arg}"
    if ev.type == "exec":
        return S.escape_bytes(ev.path)
    if ev.type == "mmap":
        return f"addr=0x{ev.arg:x} len={ev.arg2} off={ev.ret}"
    if ev.type == "accept":
        return f"listen_fd={ev.fd2}"
    return None


@dataclass
class _Cut:
    """One flip of the syscall probe's maps: the drained keys of [start_ns, end_ns)."""

    start_ns: int
    end_ns: int
    keys: np.ndarray
    totals: np.ndarray
    drain_ms: float
    late_ms: float  # how long after its due time the flip happened


class _Flipper(threading.Thread):
    """Flips and drains the syscall probe's maps every interval, on time.

    It touches only the probe's maps (a control-array write and batch read-and-delete, both
    plain bpf() calls on map fds) and "follow this pid" requests (a map update), so it never
    waits for the collector thread. Dashboard mode (`fast_start`) first makes short cuts until
    the collector has seen rows or FAST_MAX_S passes (`fast_done`). At stop it makes a final
    cut, then puts None.
    """

    def __init__(self, collector: Collector, out: queue.Queue) -> None:
        super().__init__(name="iolens-flipper", daemon=True)
        self.c = collector
        self.out = out
        self.fast_done = threading.Event()
        if not collector.fast_start:
            self.fast_done.set()

    def _period(self, t0: float) -> float:
        iv = self.c.opts.interval_s
        if self.fast_done.is_set():
            return iv
        if self.c._last_io_rows or time.monotonic() - t0 >= FAST_MAX_S:
            self.fast_done.set()
            return iv
        return min(FAST_FIRST_S, iv)

    def run(self) -> None:
        c = self.c
        start_ns = time.time_ns()
        t0 = time.monotonic()
        due = t0 + self._period(t0)
        try:
            while not c._stop.is_set():
                c._apply_requests()
                if c._stop.wait(min(0.02, max(0.0, due - time.monotonic()))):
                    break
                now = time.monotonic()
                if now < due:
                    continue
                start_ns = self._cut(start_ns, (now - due) * 1e3)
                due += self._period(t0)
                if due < time.monotonic():  # fell behind (suspend, a full queue)
                    due = time.monotonic() + self._period(t0)
            c._apply_requests()
            self._cut(start_ns, 0.0)
        except BaseException as exc:  # noqa: BLE001 - reported like the collector's own
            c.error = c.error or exc
        finally:
            self.out.put(None)

    def _cut(self, start_ns: int, late_ms: float) -> int:
        keys, totals, drain_ms = self.c.probe.drain()
        end_ns = time.time_ns()
        self.out.put(_Cut(start_ns, end_ns, keys, totals, drain_ms, late_ms))
        return end_ns


class CollectorThread(threading.Thread):
    """Runs a Collector on its own thread (the only thread that touches BCC)."""

    def __init__(self, collector: Collector) -> None:
        super().__init__(name="iolens-collector", daemon=True)
        self.collector = collector

    def run(self) -> None:
        self.collector.run()


class LiveSource:
    """`Source` over a live collector (optionally also writing a capture).

    Construction returns at once: probes compile on the collector thread (`status` says
    "compiling probes…" meanwhile) and a command given in `opts.command` is started, held at
    a gate, by a helper thread as soon as they are attached. When that command exits, the
    last partial interval is delivered and the source finishes.
    """

    def __init__(self, opts: RecordOptions, record_dir: str | None = None,
                 extra_sinks: list[Sink] | None = None) -> None:
        self._q: queue.Queue[Interval] = queue.Queue(maxsize=600)
        self.writer: CaptureWriter | None = None
        self.collector = Collector(opts, [])
        self.collector.fast_start = True
        self.meta = self.collector.meta
        self.launch_error: str | None = None
        self.command_log: str | None = None
        sinks: list[Sink] = []
        if record_dir:
            self.writer = CaptureWriter(record_dir, self.meta, background=True)
            sinks.append(lambda iv: self.writer.write_tables(iv.tables, iv.start_ns))
        sinks.extend(extra_sinks or [])
        sinks.append(self._enqueue)
        self.collector.sinks = sinks
        self.thread = CollectorThread(self.collector)
        self.thread.start()
        self._child = None
        self._closed = False
        if opts.command:
            threading.Thread(target=self._launch, args=(opts.command,), daemon=True,
                             name="iolens-launch").start()

    def _launch(self, command: list[str]) -> None:
        from iolens.collector.launch import LaunchError, launch_after

        import tempfile

        # The command's output would draw over the full-screen UI: it goes to a log file.
        log = tempfile.NamedTemporaryFile(prefix="iolens-top-cmd-", suffix=".log", delete=False)
        self.command_log = log.name
        try:
            self._child = launch_after(command, self.collector, output=log)
        except LaunchError as exc:
            self.launch_error = str(exc)
            self.collector.stop()
            return
        self._child.wait()
        self.collector.stop()  # the final partial interval follows, then `finished`

    @property
    def status(self) -> str:
        if self.launch_error:
            return f"error: {self.launch_error}"
        if self._child is not None and self._child.poll() is not None:
            return f"command exited ({self._child.returncode}); output in {self.command_log}"
        return self.collector.status

    @property
    def error(self) -> str | None:
        """Why the source stopped early (probes refused, command not started), else None."""
        if self.launch_error:
            return self.launch_error
        return str(self.collector.error) if self.collector.error is not None else None

    def _enqueue(self, iv: Interval) -> None:
        try:
            self._q.put_nowait(iv)
        except queue.Full:  # a consumer that stopped reading must not block the collector
            pass

    def next_interval(self, timeout: float) -> Interval | None:
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return None

    @property
    def finished(self) -> bool:
        return self.collector.stopped.is_set() and self._q.empty()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._child is not None and self._child.poll() is None:
            self._child.terminate()
        self.collector.stop()
        self.thread.join(timeout=30)
        if self.writer is not None:
            self.writer.close(complete=self.collector.error is None)
