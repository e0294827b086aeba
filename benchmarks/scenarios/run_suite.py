#!/usr/bin/env python3
"""The labeled scenario suite: record each workload with `iolens record`, analyse it with
`iolens analyze --json`, and check the top finding against the injected bottleneck.

    sudo .venv/bin/python benchmarks/scenarios/run_suite.py            # all scenarios
    sudo .venv/bin/python benchmarks/scenarios/run_suite.py tiny_files random_reads
    ... --seconds 10 --keep /tmp/suite --markdown

Prints: scenario, expected, got (top finding: category and culprit), right/wrong.
A scenario is right when its top finding's category is one of the expected ones and its
culprit matches; the healthy control is right when nothing is high. Needs root (BPF) and
torch (`pip install -e '.[scenarios]'`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import _common as C  # noqa: E402


@dataclass(frozen=True)
class Scenario:
    name: str
    expected: tuple[str, ...]            # acceptable top categories; () = healthy control
    culprit: dict[str, str] = field(default_factory=dict)  # key -> substring it must hold
    fast: bool = False                   # run in CI (bpf tier)
    injected: str = ""                   # the bottleneck put in on purpose (for the tables)


SCENARIOS = (
    Scenario("tiny_files", ("metadata-heavy", "small-io"), {"resource": "tiny_files"},
             fast=True, injected="DataLoader reads one 2 KiB file per sample, cold cache"),
    Scenario("healthy_shards", (), injected="none: DataLoader over 32 MiB shards, compute-bound"),
    Scenario("checkpoint_fsync", ("sync-stall",), {"resource": "ckpt.pt"}, fast=True,
             injected="torch.save + fsync of 48 MiB every training step"),
    Scenario("random_reads", ("random-access",), {"resource": "records.bin"}, fast=True,
             injected="4 KiB preads at random offsets of a 512 MiB file, cold"),
    Scenario("blkio_throttle", ("slow-device",), {"resource": "shard.bin"},
             injected="sequential reads in a cgroup throttled to 8 MB/s"),
    Scenario("gloo_slow_link", ("network-bandwidth",), {"resource": "tcp:198.18.77."},
             injected="2 gloo ranks in netns, rank 1 behind a 40 Mbit/s tbf"),
    Scenario("inference_server", ("small-io",), {"resource": "features.bin"},
             injected="inference server: 64 unbuffered 256 B reads per request"),
    Scenario("mmap_load", ("mmap-fault-io",), {"resource": "model.safetensors"},
             injected="cold mmap of a 512 MiB weights file, every page touched"),
)


def iolens() -> list[str]:
    exe = Path(sys.executable).with_name("iolens")
    return [str(exe)] if exe.exists() else [shutil.which("iolens") or "iolens"]


def record(s: Scenario, out: Path, seconds: float) -> float:
    """Prepare the scenario's data (not recorded), then record its run; returns run seconds."""
    script = str(HERE / f"{s.name}.py")
    env = {**os.environ, "IOLENS_SCENARIO_SECONDS": str(seconds)}
    subprocess.run([sys.executable, script, "--prepare"], check=True, env=env, cwd=HERE)
    t0 = time.monotonic()
    subprocess.run([*iolens(), "record", "-q", "-o", str(out), "--", sys.executable, script],
                   check=True, env=env, cwd=HERE)
    return time.monotonic() - t0


def analyze(cap: Path) -> dict:
    r = subprocess.run([*iolens(), "analyze", str(cap), "--json"], capture_output=True,
                       text=True, check=True)
    return json.loads(r.stdout)


def judge(s: Scenario, report: dict) -> tuple[bool, str]:
    """(right, what was found) for one scenario's analysis."""
    findings = report["findings"]
    if not s.expected:
        high = [f for f in findings if f["severity"] == "high"]
        got = ", ".join(f"{f['category']}({f['severity']})" for f in findings[:2]) or "nothing"
        return not high, f"{got}; high: {len(high)}"
    if not findings:
        return False, "nothing"
    top = findings[0]
    c = top["culprit"]
    got = f"{top['category']} ({top['severity']}, {top['impact_s']:.1f} s) " \
          f"pid={c.get('pid')} {c.get('comm')} {c.get('role') or ''} {c.get('resource') or ''}"
    ok = top["category"] in s.expected and all(
        sub in str(c.get(k) or "") for k, sub in s.culprit.items())
    return ok, got


def run_one(s: Scenario, root: Path, seconds: float, reanalyze: bool = False) -> dict:
    cap = root / s.name
    try:
        if reanalyze:  # judge an earlier recording again (after a rule change)
            dur = 0.0
        else:
            shutil.rmtree(cap, ignore_errors=True)
            dur = record(s, cap, seconds)
        report = analyze(cap)
        ok, got = judge(s, report)
        size = capture_size(cap)
        top = report["findings"][0] if report["findings"] else None
    except subprocess.CalledProcessError as exc:
        err = (exc.stderr or "").strip().splitlines()[-1:] if isinstance(exc.stderr, str) else []
        return {"scenario": s.name, "ok": False, "got": f"failed: {exc.cmd[-1]} "
                f"rc={exc.returncode} {' '.join(err)}", "seconds": 0.0,
                "expected": expected_text(s), "injected": s.injected, "top": None}
    return {"scenario": s.name, "ok": ok, "got": got, "seconds": dur,
            "expected": expected_text(s), "injected": s.injected, **size,
            "top": None if top is None else {k: top.get(k) for k in (
                "code", "category", "severity", "impact_s", "culprit", "evidence")}}


def capture_size(cap: Path) -> dict:
    """io rows and their bytes on disk, and the whole capture's bytes (storage cost)."""
    io_bytes, io_rows = C.io_size(cap)
    return {"io_rows": io_rows, "io_bytes": io_bytes,
            "capture_bytes": sum(f.stat().st_size for f in cap.rglob("*") if f.is_file())}


def expected_text(s: Scenario) -> str:
    if not s.expected:
        return "nothing high (healthy)"
    return " or ".join(s.expected) + "".join(f"; {k}~{v}" for k, v in s.culprit.items())


def print_table(rows: list[dict], markdown: bool) -> None:
    by = {s.name: s for s in SCENARIOS}
    if markdown:
        print("| scenario | expected | got (top finding) | right |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r['scenario']} | {expected_text(by[r['scenario']])} | {r['got']} | "
                  f"{'right' if r['ok'] else 'WRONG'} |")
    else:
        for r in rows:
            print(f"{r['scenario']:<18} {expected_text(by[r['scenario']]):<45} "
                  f"{'right' if r['ok'] else 'WRONG':<6} {r['seconds']:5.1f}s  {r['got']}")
    right = sum(r["ok"] for r in rows)
    print(f"\n{right}/{len(rows)} right")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="scenarios to run (default: all)")
    ap.add_argument("--seconds", type=float, default=15.0, help="run time of each workload")
    ap.add_argument("--keep", metavar="DIR", help="keep the captures here")
    ap.add_argument("--fast", action="store_true", help="only the fast (CI) scenarios")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--json", metavar="FILE", help="also write the results here")
    ap.add_argument("--reanalyze", action="store_true",
                    help="do not record: analyse the captures kept in --keep DIR again")
    args = ap.parse_args()
    if args.reanalyze and not args.keep:
        ap.error("--reanalyze needs --keep DIR")
    if os.geteuid() != 0 and not args.reanalyze:
        print("run_suite: needs root (iolens record loads BPF programs)", file=sys.stderr)
        return 77
    chosen = [s for s in SCENARIOS if (not args.names or s.name in args.names)
              and (not args.fast or s.fast)]
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="iolens-suite-"))
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in chosen:
        rows.append(run_one(s, root, args.seconds, args.reanalyze))
        print(f"  {s.name}: {'right' if rows[-1]['ok'] else 'WRONG'}  {rows[-1]['got']}",
              file=sys.stderr, flush=True)
    print_table(rows, args.markdown)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"machine": C.machine(), "seconds": args.seconds, "rows": rows,
             "right": sum(r["ok"] for r in rows), "total": len(rows)},
            indent=1, default=str) + "\n")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
