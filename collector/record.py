"""`iolens record`: trace a command, some pids or the whole system into a capture directory.

Flow: validate input (one-line errors) -> open the capture (0700, must be new) -> start the
collector thread (compile + attach) -> launch the command at a gate or wait for the duration
-> on exit / duration / SIGINT / SIGTERM / SIGHUP: drain the last partial interval, close
every file, mark the capture complete.

Exit codes: the command's own exit code with `-- CMD`; otherwise 0 after a clean stop (also
when stopped by SIGINT/SIGTERM/SIGHUP: the capture is complete); 2 bad input; 69
(EX_UNAVAILABLE) probes could not load; 74 (EX_IOERR) the capture could not be written
(every interval committed before stays readable); 77 (EX_NOPERM) not privileged.

A SIGKILL (OOM killer, node drain) needs no handler: each interval is committed to a
write-ahead segment when written (collector/wal.py), and the next reader or daemon start
compacts what the killed run left.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from iolens.collector.capture import CaptureError, CaptureWriter
from iolens.collector.live import Collector, CollectorThread
from iolens.collector.options import RecordOptions

EX_USAGE, EX_UNAVAILABLE, EX_IOERR, EX_NOPERM = 2, 69, 74, 77


class UsageError(Exception):
    """Bad input: message is one line; exit code 2."""


@dataclass
class RecordArgs:
    out: str
    opts: RecordOptions
    duration: float | None = None
    rotate_s: float = 30.0
    rotate_mb: float = 256.0
    metrics: str | None = None
    layout: str = "flat"
    quiet: bool = False
    fsync: str = "rotate"         # collector.wal.FSYNC_POLICIES
    daemon: object | None = None  # collector.daemon.DaemonConfig when running as a daemon


def validate(a: RecordArgs) -> None:
    """Raise UsageError for input that cannot work (before anything is created)."""
    o = a.opts
    for name, v in (("duration", a.duration), ("interval", o.interval_s),
                    ("--slow-ms", o.slow_ms), ("--rotate", a.rotate_s),
                    ("--rotate-mb", a.rotate_mb)):
        if v is not None and not math.isfinite(v):
            raise UsageError(f"{name} must be a finite number, got {v:g}")
    if a.rotate_s <= 0 or a.rotate_mb <= 0:
        raise UsageError("--rotate and --rotate-mb must be positive")
    if a.duration is not None and a.duration <= 0:
        raise UsageError(f"duration must be positive, got {a.duration:g}")
    if not 0.05 <= o.interval_s <= 3600:
        raise UsageError(f"interval must be between 0.05 and 3600 s, got {o.interval_s:g}")
    if o.slow_ms < 0:
        raise UsageError(f"--slow-ms must be >= 0, got {o.slow_ms:g}")
    if not 64 <= o.max_keys <= 4_000_000:
        raise UsageError(f"--max-keys must be in [64, 4000000], got {o.max_keys}")
    for pid in o.pids:
        if pid <= 0 or not os.path.isdir(f"/proc/{pid}"):
            raise UsageError(f"no such process: {pid}")
    if o.command:
        exe = o.command[0]
        if shutil.which(exe) is None:
            raise UsageError(f"command not found: {exe}")
    if o.cgroup and not os.path.isdir(o.cgroup):
        raise UsageError(f"no such cgroup directory: {o.cgroup}")
    if o.pids and o.command:
        raise UsageError("give either -p PID or -- CMD, not both")


def _privileged() -> str | None:
    from iolens.probes.preflight import check_bcc, check_root

    for c in (check_root(), check_bcc()):
        if not c.ok:
            return f"{c.detail} ({c.fix})" if c.fix else c.detail
    return None


class _Status:
    """The live status line on stderr (rich when stderr is a terminal)."""

    def __init__(self, writer: CaptureWriter, collector: Collector, quiet: bool) -> None:
        self.w, self.c = writer, collector
        self.t0 = time.monotonic()
        self.live = None
        if not quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.live import Live

            self.live = Live("", console=Console(stderr=True), refresh_per_second=4,
                             transient=False)
            self.live.start()

    def line(self) -> str:
        c = self.c
        size = (self.w.bytes_written + self.w.open_bytes()) / 1e6
        return (f"iolens {c.status} | {time.monotonic() - self.t0:6.1f}s | intervals {c.intervals}"
                f" | rows {c.rows} | {size:.2f} MB | lost {c.lost}")

    def tick(self) -> None:
        if self.live is not None:
            self.live.update(self.line())

    def close(self) -> None:
        if self.live is not None:
            self.live.update(self.line())
            self.live.stop()


def run_record(a: RecordArgs) -> int:
    """Run a recording to completion; return the exit code (see module doc)."""
    validate(a)
    why = _privileged()
    if why:
        print(f"iolens record: cannot trace: {why}", file=sys.stderr)
        return EX_NOPERM
    from iolens.collector.live import make_meta

    meta = make_meta(a.opts)
    exporter = _start_metrics(a.metrics)  # before the writer: a bad address leaves no dir
    redactor = None
    if a.opts.redact and meta.command:  # capture.json must not hold the plain command either
        from iolens.collector.redact import Redactor

        redactor = Redactor()
        meta.command = redactor.argv(meta.command)
    try:
        writer = CaptureWriter(a.out, meta, rotate_s=a.rotate_s,
                               rotate_bytes=int(a.rotate_mb * 2**20), layout=a.layout,
                               must_be_new=a.daemon is None, fsync=a.fsync,
                               background=True)  # a rotation never delays the next interval
    except CaptureError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot write capture {a.out}: {exc.strerror}") from None
    sink_error: list[BaseException] = []
    collector = Collector(a.opts, [], meta)
    if redactor is not None and getattr(collector, "_redactor", None) is not None:
        collector._redactor.key = redactor.key  # same hashes in procs.cmdline and capture.json

    def write(iv) -> None:
        if sink_error:
            return
        try:
            writer.write_tables(iv.tables, iv.start_ns)
        except Exception as exc:  # noqa: BLE001 - disk full, I/O error, planted symlink, bad rows:
            # keep what is written, stop writing
            sink_error.append(exc)
            collector.stop()

    collector.sinks = [write] + ([lambda iv: exporter.update(iv, meta)] if exporter else [])
    if a.daemon is not None:
        collector.sinks.append(_daemon_sink(a.daemon, writer, collector, sink_error))
    stop = threading.Event()
    signalled: list[int] = []

    def on_signal(signum, _frame) -> None:
        signalled.append(signum)
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    thread = CollectorThread(collector)
    thread.start()
    status = _Status(writer, collector, a.quiet)
    child = None
    code = 0
    try:
        while not collector.ready.wait(0.2):  # show "compiling probes…" meanwhile
            status.tick()
        if collector.error is not None:
            print(f"iolens record: probes failed to load: {collector.error}", file=sys.stderr)
            code = EX_UNAVAILABLE
            return code
        try:  # probes attached: say so now, not at the first rotation
            writer.write_meta()
        except (OSError, RuntimeError):  # RuntimeError: the collector changed meta meanwhile
            pass
        if a.opts.command:
            from iolens.collector.launch import LaunchError, launch_after

            try:
                child = launch_after(a.opts.command, collector)
            except LaunchError as exc:
                print(f"iolens record: {exc}", file=sys.stderr)
                code = EX_UNAVAILABLE
                return code
        code = _wait(a, child, stop, collector, status, signalled)
        if sink_error:
            print(f"iolens record: stopped writing {a.out}: {sink_error[0]}; earlier files are"
                  " intact", file=sys.stderr)
            if child is not None and child.poll() is None:
                child.wait()  # the traced command is not harmed: let it finish
            code = EX_IOERR
    finally:
        collector.stop()
        thread.join(timeout=30)
        status.close()
        if child is not None and child.poll() is not None:
            meta.exit_code = child.returncode
        overflow = _overflow_notes(getattr(collector, "_counters", {}))
        meta.errors += [n for n in overflow if n not in meta.errors]
        try:
            writer.close(complete=not sink_error and collector.error is None)
        except (OSError, CaptureError) as exc:
            if not sink_error:
                print(f"iolens record: could not finish {a.out}: {exc}", file=sys.stderr)
            code = code or EX_IOERR
        if exporter is not None:
            exporter.close()
        for s, h in old.items():
            signal.signal(s, h)
    if collector.error is not None and not sink_error:
        print(f"iolens record: collector failed: {collector.error}", file=sys.stderr)
        return code or EX_UNAVAILABLE
    if not a.quiet:
        over = (f", aggregation overflow {meta.agg_overflow} ops not counted"
                if meta.agg_overflow else "")
        over += "".join(f", {n}" for n in overflow)
        print(f"iolens: wrote {a.out} ({collector.intervals} intervals, {collector.rows} io rows,"
              f" lost events {collector.lost}{over})", file=sys.stderr)
    return code


def _overflow_notes(counters: dict[str, int]) -> list[str]:
    """Kernel-map overflows that have no column of their own, for capture.json `errors` and
    the last line (aggregation overflow and lost events have their own counters)."""
    notes = []
    if counters.get("fd_overflow"):
        notes.append(f"fd map full: {counters['fd_overflow']} opened fds not tracked "
                     "(resolved from /proc by fd number)")
    if counters.get("target_overflow"):
        notes.append(f"target map full: {counters['target_overflow']} descendant processes "
                     "not followed")
    return notes


def _wait(a: RecordArgs, child, stop: threading.Event, collector: Collector, status: _Status,
          signalled: list[int]) -> int:
    """Block until the command exits, the duration passes, or a signal arrives."""
    deadline = time.monotonic() + a.duration if a.duration else None
    forwarded = False
    while True:
        if child is not None:
            rc = child.poll()
            if rc is not None:
                return rc if rc >= 0 else 128 - rc
        if stop.is_set():
            if child is None:
                return 0
            if not forwarded:  # pass the stop on to the command, then wait for it
                sig = signalled[-1] if signalled else signal.SIGTERM
                if sig != signal.SIGINT:  # Ctrl-C already reached the command's group
                    child.send_signal(sig)
                forwarded = True
        if deadline is not None and time.monotonic() >= deadline:
            if child is not None and child.poll() is None:
                child.terminate()
                continue
            return 0
        if collector.stopped.is_set():
            return child.wait() if child is not None else 0
        status.tick()
        time.sleep(0.1)


def _daemon_sink(cfg, writer: CaptureWriter, collector: Collector, errors: list):
    """Per interval: the status file; every minute: retention of this host's old segments."""
    from iolens.collector.daemon import apply_retention, write_status

    last_retention = [0.0]
    started = time.time()

    def sink(iv) -> None:
        now = time.time()
        if now - last_retention[0] >= 60:
            last_retention[0] = now
            try:
                apply_retention(Path(cfg.root), writer.meta.host, cfg.retention_hours * 3600,
                                int(cfg.max_total_gb * 2**30), now)
            except OSError as exc:
                writer.meta.errors.append(f"retention: {exc}")
        status = {"state": "writing" if not errors else "error", "pid": os.getpid(),
                  "host": writer.meta.host, "root": cfg.root, "started": started,
                  "last_interval_end": iv.end_ns / 1e9, "intervals": collector.intervals,
                  "io_rows": collector.rows, "lost_events": collector.lost,
                  "bytes_written": writer.bytes_written,
                  "probes_attached": writer.meta.probes_attached,
                  "probes_skipped": writer.meta.probes_skipped,
                  "errors": [str(e) for e in errors] + writer.meta.errors[-5:]}
        try:
            write_status(cfg.status_file, status)
        except OSError:
            pass  # monitoring must never stop the recording

    return sink


def _start_metrics(addr: str | None):
    if not addr:
        return None
    try:
        from iolens.analysis.export import ExportError
        from iolens.analysis.export.prometheus import MetricsExporter
    except ImportError as exc:
        raise UsageError(f"--metrics unavailable: {exc}") from None
    try:
        exp = MetricsExporter(addr)
        exp.start()
    except ExportError as exc:
        raise UsageError(f"--metrics {addr}: {exc}") from None
    return exp


def default_out_dir() -> str:
    return str(Path.cwd() / time.strftime("iolens-%Y%m%d-%H%M%S"))
