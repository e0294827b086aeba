"""`iolens export CAPTURE [--perfetto FILE] [--csv DIR]`: the CLI glue of the exports.

The lead's collector/cli.py calls `add_arguments(parser)` on the `export` subparser and
`run(args)` for the exit code: 0 done, 1 export failed, 2 bad usage. Errors are one line
on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from iolens.analysis.export import ExportError
from iolens.collector.capture import Capture, CaptureError, read_capture


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the export options to `parser`."""
    parser.add_argument("capture", metavar="CAPTURE", help="capture directory (iolens record -o)")
    parser.add_argument("--perfetto", metavar="FILE",
                        help="write a Chrome trace-event JSON timeline (open it in "
                             "https://ui.perfetto.dev or chrome://tracing)")
    parser.add_argument("--csv", metavar="DIR", help="write one CSV per table into DIR")
    parser.add_argument("--no-findings", action="store_true",
                        help="do not run the analysis rules for the timeline's findings")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing --perfetto FILE")


def run(args: argparse.Namespace) -> int:
    """Do the requested exports; returns the exit code."""
    if not args.perfetto and not args.csv:
        return _fail("nothing to export: give --perfetto FILE and/or --csv DIR", 2)
    try:
        capture = read_capture(args.capture)
    except CaptureError as exc:
        return _fail(str(exc))
    _warn_partial(capture)
    try:
        if args.csv:
            from iolens.analysis.export.csv import export_csv
            files = export_csv(capture, args.csv)
            rows = sum(t.num_rows for t in capture.tables.values())
            print(f"wrote {len(files)} CSV files ({rows} rows) to {args.csv}")
        if args.perfetto:
            from iolens.analysis.export.perfetto import export_perfetto
            findings = [] if args.no_findings else _findings(capture)
            n = export_perfetto(capture, args.perfetto, findings=findings,
                                overwrite=bool(getattr(args, "force", False)))
            print(f"wrote {n} trace events to {args.perfetto} "
                  "(open in https://ui.perfetto.dev or chrome://tracing)")
    except ExportError as exc:
        return _fail(str(exc))
    return 0


def _findings(capture: Capture) -> list[Any]:
    """The analysis rules' findings; a failing rule must not cost the user the timeline."""
    from iolens.analysis.rules import run_rules
    try:
        return list(run_rules(capture.tables, capture.meta))
    except Exception as exc:  # noqa: BLE001 - any rule bug: warn, export without findings
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"iolens export: warning: analysis failed ({type(exc).__name__}: {first}); "
              "timeline written without findings", file=sys.stderr)
        return []


def _warn_partial(capture: Capture) -> None:
    if capture.skipped:
        print(f"iolens export: warning: skipped {len(capture.skipped)} unreadable file(s), "
              f"first: {capture.skipped[0][1]}", file=sys.stderr)
    if capture.ended_abruptly:
        print("iolens export: warning: the capture ended abruptly; exporting what was saved",
              file=sys.stderr)


def _fail(message: str, code: int = 1) -> int:
    print(f"iolens export: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m iolens.analysis.export.cli`) until cli.py wires it."""
    parser = argparse.ArgumentParser(prog="iolens export",
                                     description="Export a capture to Perfetto or CSV.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
