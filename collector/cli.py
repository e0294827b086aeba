"""The `iolens` console script: doctor, record, top, analyze, export.

Each subcommand's arguments and runner live beside its code (`add_arguments(parser)` and
`run(args) -> int`); this module only wires them. Bad input gets one line on stderr and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from iolens import __version__

EPILOG_RECORD = """examples:
  sudo iolens record -o run1 -- python train.py --epochs 1
  sudo iolens record -o run2 -p 4242 -p 4243 -d 60
  sudo iolens record -o run3 -d 30                  (whole system, minus iolens)
  sudo iolens record -o run4 --demo                 (the bundled demo workload)
"""

#: subcommands implemented in other packages: name -> (module, help)
EXTERNAL = {
    "top": ("iolens.tui.cli", "live dashboard, or replay of a capture"),
    "analyze": ("iolens.analysis.cli", "find I/O bottlenecks in a capture"),
    "export": ("iolens.analysis.export.cli", "export a capture to Perfetto / CSV"),
    "replay-config": ("iolens.analysis.replica_cli",
                      "derive a runnable I/O replica (fio job file, DLIO config) of a capture"),
}


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    return v


def _pid(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a pid: {text!r}") from None


def _role_map_file(text: str) -> str:
    from iolens.collector.classify import role_map_arg

    return role_map_arg(text)


def add_record_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", help="capture directory to create (must not exist)")
    p.add_argument("-p", "--pid", type=_pid, action="append", default=[],
                   help="trace this process and its descendants (repeatable)")
    p.add_argument("-d", "--duration", type=_positive_float, help="stop after this many seconds")
    p.add_argument("-i", "--interval", type=_positive_float, default=1.0,
                   help="aggregation interval in seconds (default 1)")
    p.add_argument("--cgroup", help="trace only processes of this cgroup v2 directory")
    p.add_argument("--per-thread", action="store_true", help="aggregate per thread, not process")
    p.add_argument("--slow-ms", type=_positive_float, default=10.0,
                   help="also log each op slower than this (default 10 ms)")
    p.add_argument("--max-keys", type=int, default=16384,
                   help="file-grain keys per interval in the kernel (default 16384); ops of "
                        "further files are counted per directory (rows of grain dir)")
    p.add_argument("--no-latency", action="store_true",
                   help="cheapest mode: count ops and bytes, no per-op latency")
    p.add_argument("--rotate", type=_positive_float, default=30.0,
                   help="compact the write-ahead segment into Parquet files every N seconds "
                        "(default 30)")
    p.add_argument("--rotate-mb", type=_positive_float, default=256.0,
                   help="... or once the open io write-ahead stream passes this size")
    p.add_argument("--fsync", choices=("interval", "rotate", "never"), default="rotate",
                   help="when data is forced to disk: each interval (a power loss then costs at "
                        "most the interval in progress; writes the write-ahead data to disk), "
                        "at each rotation (default: a kill costs at most the interval in "
                        "progress, a power loss the open segment) or never")
    p.add_argument("--layout", choices=("flat", "hive"), default="flat",
                   help="hive: ROOT/host=H/date=D/<table>/ for many hosts in one tree")
    p.add_argument("--metrics", metavar="ADDR",
                   help="serve Prometheus metrics on ADDR (e.g. :9464 = 127.0.0.1:9464)")
    p.add_argument("--all-events", action="store_true",
                   help="keep every open/close in the events table (default: failed opens only)")
    p.add_argument("--disable", action="append", default=[], metavar="PROBE",
                   help="do not load this optional probe (block, pagecache, tcp, gpu...)")
    p.add_argument("--redact", action="store_true",
                   help="hash paths and command-line arguments in the capture")
    p.add_argument("--role-map", metavar="FILE", type=_role_map_file,
                   help="TOML file of extra process-role and file-class rules (docs/roles.md)")
    p.add_argument("--demo", action="store_true", help="record the bundled demo AI workload")
    p.add_argument("--daemon", action="store_true",
                   help="run headless forever per --config (hive tree, retention, status file)")
    p.add_argument("--config", metavar="FILE", help="daemon config (TOML); see docs/deploy.md")
    p.add_argument("--check-config", action="store_true",
                   help="with --daemon: validate the config, print it, and exit")
    p.add_argument("--print-bpf", action="store_true",
                   help="print the final BPF program and its flags, then exit")
    p.add_argument("-q", "--quiet", action="store_true", help="no status line")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS... to start and trace")


def run_record(args: argparse.Namespace) -> int:
    from iolens.collector.options import RecordOptions
    from iolens.collector.record import RecordArgs, default_out_dir
    from iolens.collector.record import run_record as _run

    command = list(args.command or [])
    if command and command[0] == "--":
        command = command[1:]
    if args.demo:
        if command:
            raise _Usage("--demo and -- CMD are exclusive")
        command = [sys.executable, "-m", "iolens.collector.demo"]
    opts = RecordOptions(pids=args.pid, command=command or None, cgroup=args.cgroup,
                         interval_s=args.interval, per_thread=args.per_thread,
                         slow_ms=args.slow_ms, max_keys=args.max_keys,
                         latency=not args.no_latency, redact=args.redact,
                         disable=list(args.disable), all_events=args.all_events, role_map=args.role_map)
    if args.print_bpf:
        from iolens.collector.live import build_plan
        from iolens.probes.syscalls import render

        print(render(build_plan(opts)))
        from iolens.probes.registry import EXTRA_PROBES, load_class

        for spec in EXTRA_PROBES:  # optional probes that can show their text do so
            probe = load_class(spec)(opts)
            if hasattr(probe, "render"):
                print(f"// ---- probe {probe.name} ----")
                print(probe.render())
        return 0
    if args.daemon:
        return _run_daemon(args, opts)
    ra = RecordArgs(out=args.output or default_out_dir(), opts=opts, duration=args.duration,
                    rotate_s=args.rotate, rotate_mb=args.rotate_mb, metrics=args.metrics,
                    layout=args.layout, quiet=args.quiet, fsync=args.fsync)
    return _run(ra)


def _run_daemon(args: argparse.Namespace, opts) -> int:
    """`record --daemon --config FILE`: the config decides; command-line targets are refused."""
    import json
    from dataclasses import asdict

    from iolens.collector.daemon import ConfigError, load_config
    from iolens.collector.record import RecordArgs
    from iolens.collector.record import run_record as _run

    if not args.config:
        raise _Usage("--daemon needs --config FILE")
    if opts.command or opts.pids:
        raise _Usage("--daemon traces the whole system or the config's cgroup, not -p/-- CMD")
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        raise _Usage(str(exc)) from None
    if args.check_config:
        print(json.dumps(asdict(cfg), indent=1, sort_keys=True))
        return 0
    opts.interval_s, opts.slow_ms, opts.cgroup = cfg.interval_s, cfg.slow_ms, cfg.cgroup
    opts.disable, opts.redact = list(cfg.disable), cfg.redact
    ra = RecordArgs(out=cfg.root, opts=opts, rotate_s=cfg.rotate_s, metrics=cfg.metrics,
                    layout="hive", quiet=True, daemon=cfg, fsync=cfg.fsync)
    return _run(ra)


def run_doctor(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from iolens.probes import preflight

    caps = preflight.check(quick=args.quick)
    table = Table(title="iolens doctor", show_lines=False)
    for col in ("check", "ok", "detail", "fix"):
        table.add_column(col)
    for c in caps.checks:
        mark = "yes" if c.ok else ("NO" if c.required else "no (optional)")
        table.add_row(c.name, mark, c.detail, c.fix)
    con = Console()
    con.print(table)
    if caps.can_trace:
        con.print("verdict: this machine can trace with iolens (tracepoints + ring buffer).")
        return 0
    con.print("verdict: iolens cannot trace here: " + "; ".join(caps.problems))
    return 1


class _Usage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """Bad arguments get one line (argparse's default prints the whole usage first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="iolens", description="Where do AI/ML workloads lose time on storage and network I/O?")
    parser.add_argument("--version", action="version", version=f"iolens {__version__}")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND")
    d = sub.add_parser("doctor", help="can this machine trace? what is missing and how to fix it")
    d.add_argument("--quick", action="store_true", help="only try one tracepoint")
    d.set_defaults(func=run_doctor)
    r = sub.add_parser("record", help="trace into a Parquet capture", epilog=EPILOG_RECORD,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_record_arguments(r)
    r.set_defaults(func=run_record)
    for name, (module, helptext) in EXTERNAL.items():
        p = sub.add_parser(name, help=helptext)
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            p.set_defaults(func=lambda _a, e=exc, n=name: _missing(n, e))
            continue
        mod.add_arguments(p)
        p.set_defaults(func=mod.run)
    return parser


def _missing(name: str, exc: Exception) -> int:
    print(f"iolens {name}: not available in this build ({exc})", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    from iolens.collector.capture import CaptureError
    from iolens.collector.record import UsageError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UsageError, _Usage, CaptureError) as exc:
        print(f"iolens {args.cmd}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
