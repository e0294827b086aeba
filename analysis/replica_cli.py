"""`iolens replay-config CAPTURE --target DIR [--fio FILE] [--dlio FILE]`: a runnable replica.

The lead's collector/cli.py calls `add_arguments(parser)` and `run(args)` for the exit code:
0 written, 1 capture missing or unreadable or without file I/O to replay, 2 bad usage,
3 internal error. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

EPILOG = """examples:
  iolens replay-config run1 --target /mnt/newfs/replica --fio run1.fio
  mkdir -p /mnt/newfs/replica && fio --create_only=1 run1.fio && fio run1.fio
  iolens replay-config run1 --target /mnt/newfs/replica --dlio run1.yaml
  sudo iolens record -o replica1 -- fio run1.fio    # then compare the two captures"""

#: characters fio gives a meaning in file names (':' separates files, '$' expands)
_BAD_TARGET = re.compile(r"[:$%\n\r\x00;]")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("capture", metavar="CAPTURE", help="capture directory (iolens record -o)")
    parser.add_argument("--target", metavar="DIR", required=True,
                        help="directory every replica file goes under (absolute path)")
    parser.add_argument("--fio", metavar="FILE", help="write a fio job file (and its iologs "
                        "beside it, FILE without .fio + .<job>.iolog)")
    parser.add_argument("--dlio", metavar="FILE", help="write a DLIO workload config (YAML)")
    parser.add_argument("--classes", metavar="LIST",
                        help="file classes to replay, comma-separated (default: all of "
                             "dataset,checkpoint,weights,log,other)")
    parser.add_argument("--max-layout-gib", type=float, default=8.0, metavar="GIB",
                        help="most data a re-read group may lay out as distinct files "
                             "before its files are re-read in loops instead (default 8)")
    parser.add_argument("--force", action="store_true", help="replace existing output files")
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def run(args: argparse.Namespace) -> int:
    from iolens.analysis.cli import one_line_errors

    return one_line_errors(_run, args, _fail)


def check_target(text: str) -> str:
    """The target as a normalised absolute path; ValueError when unusable."""
    if not text or _BAD_TARGET.search(text):
        raise ValueError(f"--target must be a plain directory path (no : $ % ; or newlines): "
                         f"{text!r}")
    if not os.path.isabs(text):
        raise ValueError(f"--target must be an absolute path: {text!r}")
    norm = os.path.normpath(text)
    if norm == "/" or norm.count("/") < 2 and norm in ("/proc", "/sys", "/dev", "/etc",
                                                         "/usr", "/bin", "/boot", "/lib"):
        raise ValueError(f"--target must be a directory of its own, not {norm}")
    return norm


def _run(args: argparse.Namespace) -> int:
    from iolens.analysis.replica_derive import ALL_CLASSES, DeriveError, derive
    from iolens.analysis.replica_dlio import DlioError, render_dlio
    from iolens.analysis.replica_fio import render_fio
    from iolens.collector.capture import CaptureError, read_capture

    if not args.fio and not args.dlio:
        return _fail("nothing to write: give --fio FILE and/or --dlio FILE", 2)
    try:
        target = check_target(args.target)
    except ValueError as exc:
        return _fail(str(exc), 2)
    classes = tuple(c.strip() for c in args.classes.split(",")) if args.classes else ALL_CLASSES
    if not classes or set(classes) - set(ALL_CLASSES):
        return _fail(f"--classes: choose from {','.join(ALL_CLASSES)}", 2)
    if args.max_layout_gib <= 0:
        return _fail("--max-layout-gib must be positive", 2)
    outs = [Path(p) for p in (args.fio, args.dlio) if p]
    for p in outs:
        if p.exists() and not args.force:
            return _fail(f"{p} exists (use --force to replace it)", 2)
        if not p.parent.is_dir():
            return _fail(f"no such directory for {p}", 2)
    try:
        capture = read_capture(args.capture, tables=["io", "procs", "pagecache", "faults", "cpu"])
    except CaptureError as exc:
        return _fail(str(exc))
    try:
        model = derive(capture.tables, classes)
    except DeriveError as exc:
        return _fail(f"{args.capture}: {exc}")
    if args.fio:
        fio = Path(args.fio)
        prefix = str(fio.resolve().with_suffix(""))
        job = render_fio(model, target, str(args.capture),
                         max_bytes=int(args.max_layout_gib * 2**30), log_prefix=prefix)
        fio.write_text(job.text + "\n")
        for path, text in job.iologs.items():
            Path(path).write_text(text)
        extra = f" and {len(job.iologs)} iolog(s)" if job.iologs else ""
        print(f"wrote {fio}{extra}: {len(model.jobs)} job(s) under {target}; run: "
              f"mkdir -p {target} && fio --create_only=1 {fio} && fio {fio}")
    if args.dlio:
        try:
            text = render_dlio(model, target, str(args.capture))
        except DlioError as exc:
            return _fail(str(exc))
        Path(args.dlio).write_text(text)
        print(f"wrote {args.dlio} (DLIO workload config; data under {target})")
    return 0


def _fail(message: str, code: int = 1) -> int:
    print(f"iolens replay-config: error: {message}", file=sys.stderr)
    return code
