"""`iolens analyze`: wiring for the lead's collector/cli.py (add_arguments + run).

    iolens analyze run1                      rich terminal report
    iolens analyze run1 --json               JSON contract on stdout
    iolens analyze run1 --html report.html   one self-contained HTML file with plots
    iolens analyze run2 --baseline run1      what changed between two captures
    iolens analyze run1 --config my.toml     override thresholds
    iolens analyze FLEET --engine spark --master spark://head:7077   a fleet tree on Spark

Bad input: one line on stderr, exit 2 (usage/config) or 1 (capture unreadable); no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

EPILOG = """examples:
  iolens analyze run1
  iolens analyze run1 --json > findings.json
  iolens analyze run1 --html report.html
  iolens analyze run2 --baseline run1
  iolens analyze run1 --config my-thresholds.toml   (keys: see analysis/thresholds.toml)
  iolens analyze /fleet                     a hive tree of many hosts and days (DuckDB)
  iolens analyze /fleet --engine spark --master 'local[8]'   same rules on Apache Spark"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("capture", metavar="CAPTURE", help="capture directory (iolens record -o)")
    parser.add_argument("--json", action="store_true", help="print the JSON report on stdout")
    parser.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    parser.add_argument("--baseline", metavar="DIR", help="compare with an earlier capture")
    parser.add_argument("--config", metavar="FILE.toml", help="threshold overrides (TOML)")
    parser.add_argument("--top", metavar="N", type=int, default=10,
                        help="rows in the top tables (default 10)")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                        help="query engine: duckdb (embedded, default) or spark (pyspark + "
                             "Java 17, for captures too big for one machine)")
    parser.add_argument("--master", metavar="URL", default="local[2]",
                        help="Spark master URL with --engine spark (default local[2]; "
                             "spark://host:7077, yarn, k8s://...)")
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def run(args: argparse.Namespace) -> int:
    """Run the analysis; exit code 0 on success."""
    return one_line_errors(_run, args, _fail)


def one_line_errors(body: Callable[[argparse.Namespace], int], args: argparse.Namespace,
                    fail: Callable[[str, int], int]) -> int:
    """`body(args)`, with Ctrl-C as exit 130 and any bug as one line and exit 3 (never a
    traceback); `fail(message, code)` prints the command's own error line."""
    try:
        return body(args)
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except Exception as exc:  # noqa: BLE001 - the user gets one line, never a traceback
        where = exc.__traceback__
        while where is not None and where.tb_next is not None:
            where = where.tb_next
        loc = f" ({where.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{where.tb_lineno})" \
            if where is not None else ""
        return fail(f"internal error{loc}: {type(exc).__name__}: "
                    f"{(str(exc).splitlines() or [''])[0]} (please report it)", 3)


def _run(args: argparse.Namespace) -> int:
    from iolens.analysis.analyze import AnalyzeError, analyze_path
    from iolens.analysis.thresholds import ThresholdError, load, merge

    try:
        th = load(args.config) if args.config else merge(None)
    except ThresholdError as exc:
        return _fail(str(exc), 2)
    if args.top < 1:
        return _fail("--top must be at least 1", 2)
    engine = getattr(args, "engine", "duckdb")
    master = getattr(args, "master", "local[2]")
    try:
        report = analyze_path(args.capture, th, args.top, plots=bool(args.html),
                              engine=engine, master=master)
        base = analyze_path(args.baseline, th, args.top, plots=False, engine=engine,
                            master=master) if args.baseline else None
    except AnalyzeError as exc:
        return _fail(str(exc), 1)
    cmp = None
    if base is not None:
        from iolens.analysis.baseline import compare
        cmp = compare(report, base)
    if args.html:
        rc = _write_html(report, cmp, args.html)
        if rc:
            return rc
    if args.json:
        out = report.to_json()
        if cmp is not None:
            out["baseline"] = {"capture": args.baseline, **cmp.to_json()}
        json.dump(out, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    _print(report, cmp, args)
    return 0


def _write_html(report, cmp, path: str) -> int:
    from iolens.analysis.html import write_html
    try:
        write_html(report, path, cmp)
    except OSError as exc:
        return _fail(f"cannot write {path}: {exc.strerror or exc}", 1)
    return 0


def _print(report, cmp, args: argparse.Namespace) -> None:
    from iolens.analysis.report import render, render_comparison
    from rich.console import Console
    console = Console()
    render(report, console, args.top)
    if cmp is not None:
        render_comparison(cmp, console)
    if args.html:
        console.print(f"HTML report written to {args.html}")


def _fail(msg: str, code: int) -> int:
    print(f"iolens analyze: error: {msg}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (python -m iolens.analysis.cli) until collector/cli.py wires it."""
    p = argparse.ArgumentParser(prog="iolens analyze", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
