"""`iolens top`: argument wiring for the lead's cli.py (add_arguments + run).

    sudo iolens top                          # whole system, live
    sudo iolens top -p 4242                  # one process tree
    sudo iolens top -- python train.py       # start and watch a command
    sudo iolens top --record run1            # watch live and record at the same time
    iolens top --replay run1 [--speed 4]     # replay a capture (no root needed)

Errors are one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

EPILOG = """examples:
  sudo iolens top                        whole system, live
  sudo iolens top -p 4242                one process tree
  sudo iolens top -- python train.py     start a command and watch it
  sudo iolens top --record run1          watch live and record the capture too
  iolens top --replay run1 --speed 4     replay a capture (Space pause, n step, arrows seek)
keys: press ? in the dashboard"""


class TopError(Exception):
    """A bad invocation; the message is one line for the user."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `iolens top` flags to `parser` (argv after `--` is `args.command`)."""
    parser.description = parser.description or "live dashboard of I/O hotspots (or a replay)"
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("-p", "--pid", type=int, action="append", default=[], metavar="PID",
                        help="trace this process and its descendants (repeatable)")
    parser.add_argument("--replay", metavar="DIR", help="replay a capture directory")
    parser.add_argument("--speed", type=float, default=1.0, metavar="F",
                        help="replay speed: F times real time, 0 = as fast as possible "
                             "(default 1)")
    parser.add_argument("--record", metavar="DIR",
                        help="also record the live capture into DIR (must not exist)")
    parser.add_argument("--interval", type=float, default=1.0, metavar="S",
                        help="aggregation interval in seconds (default 1)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="-- CMD [ARGS...]: start CMD and watch its process tree")


def _command(args: argparse.Namespace) -> list[str] | None:
    cmd = list(getattr(args, "command", None) or [])
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    return cmd or None


def validate(args: argparse.Namespace) -> None:
    """Refuse contradictory or out-of-range flags (raises TopError)."""
    cmd = _command(args)
    if args.replay:
        if args.pid or cmd or args.record:
            raise TopError("--replay shows a recorded capture; it cannot be combined with "
                           "-p, --record or a command")
        if args.speed < 0:
            raise TopError(f"--speed must be >= 0, got {args.speed:g}")
    elif args.pid and cmd:
        raise TopError("give either -p PID or a command after --, not both")
    if args.record:
        rec = Path(args.record)
        if rec.exists() and (not rec.is_dir() or any(rec.iterdir())):
            raise TopError(f"--record: {rec} already exists and is not an empty directory "
                           "(choose a new one, nothing was overwritten)")
    if any(p <= 0 for p in args.pid):
        raise TopError("-p needs a positive process id")
    if not (0.05 <= args.interval <= 3600):
        raise TopError(f"--interval must be between 0.05 and 3600 seconds, got {args.interval:g}")


def build_source(args: argparse.Namespace) -> Any:
    """A ReplaySource for --replay (read now, so a bad path fails before the screen opens),
    else a factory that builds the LiveSource on the app's worker thread."""
    if args.replay:
        from iolens.collector.capture import CaptureError
        from iolens.collector.sources import ReplaySource
        try:
            src = ReplaySource(args.replay, speed=args.speed)
        except CaptureError as exc:
            raise TopError(str(exc)) from None
        if src.position[1] == 0:
            raise TopError(f"capture has no intervals to replay: {args.replay}")
        return src
    try:  # imported lazily: live collection needs the probes (and root), replay does not
        from iolens.collector.live import LiveSource
    except ImportError as exc:
        raise TopError(f"live collection is unavailable in this build ({exc}); "
                       "use --replay DIR") from None
    from iolens.collector.options import RecordOptions
    from iolens.collector.record import _privileged  # refuse before the screen opens
    if (why := _privileged()):
        raise TopError(f"cannot trace: {why}")
    opts = RecordOptions(pids=list(args.pid), command=_command(args), interval_s=args.interval)

    def factory() -> Any:
        return LiveSource(opts, record_dir=args.record)
    return factory


def run(args: argparse.Namespace, app_factory: Callable[..., Any] | None = None) -> int:
    """Run the dashboard; returns the exit code."""
    try:
        validate(args)
        source = build_source(args)
    except TopError as exc:
        print(f"iolens top: {exc}", file=sys.stderr)
        return 77 if str(exc).startswith("cannot trace") else 2  # as `record` (EX_NOPERM)
    if app_factory is None:
        from iolens.tui.app import TopApp
        app_factory = TopApp
    app = app_factory(source)
    try:
        code = app.run()
    finally:
        src = getattr(app, "source", None)
        if src is not None:
            try:
                src.close()
            except Exception:  # noqa: BLE001 - closing must not mask the real outcome
                pass
    if getattr(app, "failed", None):
        print(f"iolens top: {app.failed}", file=sys.stderr)
        return 1
    return int(code or 0)
