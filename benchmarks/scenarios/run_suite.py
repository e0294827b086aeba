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

The independent scenarios (issue 15: written from a description of a kind, not tuned
against) write their own truth (who the culprit is: pid, and address/rank of a network
participant, measured by the workload) to $IOLENS_SCENARIO_TRUTH; the suite keeps it beside
the capture (DIR/NAME.truth.json) and checks the culprit against it. `--tuned` runs only the
original eight, `--independent` only the new ones; the default is all.
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
    truth: tuple[str, ...] = ()          # culprit names the truth file's culprit by: pid, ip
    no_high: tuple[str, ...] = ()        # categories that must not be high anywhere
    independent: bool = False            # issue 15: written from a description, not tuned
    absent: tuple[str, ...] = ()         # categories that must not be found at all (issue 19)
    loader: bool = False                 # issue 19: DataLoader IPC scenarios


NET = ("network-bandwidth", "network-latency", "network-loss")


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
    # independent scenarios (issue 15), first run recorded before any rule change
    Scenario("loopback_server_bound", ("sync-stall", "slow-device", "small-io"),
             truth=("pid",), no_high=NET, independent=True,
             injected="loopback client waits on a server that fsyncs 64 KiB per request "
                      "(journal disk write-throttled to 16 MB/s)"),
    Scenario("healthy_loopback", (), independent=True,
             injected="none: loopback server answers from memory, client computes"),
    Scenario("straggler_rank", ("imbalance",), truth=("pid",), no_high=NET, independent=True,
             injected="3 gloo ranks, healthy links, rank 1 computes 5x longer per step"),
    Scenario("healthy_ranks", (), independent=True,
             injected="none: 3 gloo ranks, equal compute, healthy links"),
    Scenario("latency_link", ("network-latency",), truth=("ip", "pid"), independent=True,
             injected="3 gloo ranks, rank 1's link +15 ms each way (userspace delay line)"),
    Scenario("ratelimited_peer", ("network-bandwidth",), truth=("ip", "pid"),
             independent=True, injected="3 gloo ranks, rank 2's link tbf 40 Mbit/s both ways"),
    Scenario("throttled_reader", ("slow-device",), truth=("pid",), independent=True,
             injected="2 identical shard readers, one in a blkio cgroup throttled to 8 MB/s"),
    Scenario("smallfile_loader", ("metadata-heavy", "small-io", "data-starvation"),
             {"resource": "smallfile_loader"}, independent=True,
             injected="2 workers through 200,000 files of 1-4 KiB at ~10^5 files/s (warm)"),
    # DataLoader IPC scenarios (issue 19), first run recorded before the ipc rules existed
    Scenario("ipc_unpacked", ("ipc-overhead",), truth=("pid",), loader=True,
             injected="DataLoader returns 7 fields x 16 samples = 112 tensors per batch "
                      "(one shm segment + one fd passing each), 20 ms compute per batch"),
    Scenario("ipc_packed", (), absent=("ipc-overhead",), loader=True,
             injected="none: the same samples packed into 8 tensors per batch"),
    Scenario("ipc_healthy", (), absent=("ipc-overhead", "worker-startup"), loader=True,
             injected="none: 8 tensors per batch, 40 ms compute per batch"),
    Scenario("startup_pathlist", ("worker-startup",), truth=("pid",), loader=True,
             injected="dataset object holding 1.2M paths pickled into 4 spawned workers"),
    Scenario("startup_lazy", (), absent=("worker-startup",), loader=True,
             injected="none: lazy dataset (root + count), 4 spawned workers"),
)


def iolens() -> list[str]:
    exe = Path(sys.executable).with_name("iolens")
    return [str(exe)] if exe.exists() else [shutil.which("iolens") or "iolens"]


def truth_file(root: Path, s: Scenario) -> Path:
    return root / f"{s.name}.truth.json"


def record(s: Scenario, out: Path, seconds: float) -> float:
    """Prepare the scenario's data (not recorded), then record its run; returns run seconds."""
    script = str(HERE / f"{s.name}.py")
    env = {**os.environ, "IOLENS_SCENARIO_SECONDS": str(seconds),
           "IOLENS_SCENARIO_TRUTH": str(truth_file(out.parent, s))}
    subprocess.run([sys.executable, script, "--prepare"], check=True, env=env, cwd=HERE)
    t0 = time.monotonic()
    subprocess.run([*iolens(), "record", "-q", "-o", str(out), "--", sys.executable, script],
                   check=True, env=env, cwd=HERE)
    return time.monotonic() - t0


def analyze(cap: Path) -> dict:
    r = subprocess.run([*iolens(), "analyze", str(cap), "--json"], capture_output=True,
                       text=True, check=True)
    return json.loads(r.stdout)


def judge(s: Scenario, report: dict, truth: dict | None = None) -> tuple[bool, str]:
    """(right, what was found) for one scenario's analysis."""
    ok, got, _, _ = judge_parts(s, report, truth)
    return ok, got


def judge_parts(s: Scenario, report: dict, truth: dict | None = None
                ) -> tuple[bool, str, bool | None, bool | None]:
    """(right, what was found, category right, culprit right); the last two are None for a
    healthy control."""
    findings = report["findings"]
    if not s.expected:
        high = [f for f in findings if f["severity"] == "high"]
        got = ", ".join(f"{f['category']}({f['severity']})" for f in findings[:2]) or "nothing"
        banned = [f for f in findings if f["category"] in s.absent]
        if banned:
            got += f"; also {banned[0]['category']} ({banned[0]['severity']})"
        return not high and not banned, f"{got}; high: {len(high)}", None, None
    if not findings:
        return False, "nothing", False, False
    top = findings[0]
    c = top["culprit"]
    got = f"{top['category']} ({top['severity']}, {top['impact_s']:.1f} s) " \
          f"pid={c.get('pid')} {c.get('comm')} {c.get('role') or ''} {c.get('resource') or ''}"
    cat_ok = top["category"] in s.expected
    cul_ok = all(sub in str(c.get(k) or "") for k, sub in s.culprit.items())
    if s.truth:
        cul_ok = cul_ok and names_culprit(s, c, truth)
    bad = [f for f in findings if f["severity"] == "high" and f["category"] in s.no_high]
    if bad:
        got += f"; also high {bad[0]['category']} on {bad[0]['culprit'].get('resource')}" \
               + (f" (+{len(bad) - 1} more)" if len(bad) > 1 else "")
    return cat_ok and cul_ok and not bad, got, cat_ok, cul_ok


def names_culprit(s: Scenario, c: dict, truth: dict | None) -> bool:
    """Does the finding's culprit name the workload's own culprit? By pid, or (network
    participants) by its address in the culprit resource; a finding on the culprit's pid that
    points at another participant's address names that other participant, not the culprit."""
    want = (truth or {}).get("culprit") or {}
    if not want:
        return False
    res = str(c.get("resource") or "")
    others = [o["ip"] for o in (truth or {}).get("others", []) if o.get("ip")]
    if "ip" in s.truth and want.get("ip") and f"{want['ip']}:" in res:
        return True
    if "pid" in s.truth and c.get("pid") == want.get("pid"):
        return not any(f"{ip}:" in res for ip in others)
    return False


def run_one(s: Scenario, root: Path, seconds: float, reanalyze: bool = False) -> dict:
    cap = root / s.name
    try:
        if reanalyze:  # judge an earlier recording again (after a rule change)
            dur = 0.0
        else:
            shutil.rmtree(cap, ignore_errors=True)
            truth_file(root, s).unlink(missing_ok=True)
            dur = record(s, cap, seconds)
        report = analyze(cap)
        tf = truth_file(root, s)
        truth = json.loads(tf.read_text()) if tf.exists() else None
        ok, got, cat_ok, cul_ok = judge_parts(s, report, truth)
        size = capture_size(cap)
        top = report["findings"][0] if report["findings"] else None
    except subprocess.CalledProcessError as exc:
        err = (exc.stderr or "").strip().splitlines()[-1:] if isinstance(exc.stderr, str) else []
        return {"scenario": s.name, "ok": False, "got": f"failed: {exc.cmd[-1]} "
                f"rc={exc.returncode} {' '.join(err)}", "seconds": 0.0,
                "expected": expected_text(s), "injected": s.injected, "top": None,
                "category_ok": False if s.expected else None,
                "culprit_ok": False if s.expected else None}
    return {"scenario": s.name, "ok": ok, "got": got, "seconds": dur,
            "category_ok": cat_ok, "culprit_ok": cul_ok, "truth": truth,
            "high": [{k: f.get(k) for k in ("code", "category", "impact_s", "culprit")}
                     for f in report["findings"] if f["severity"] == "high"],
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
    return " or ".join(s.expected) + "".join(f"; {k}~{v}" for k, v in s.culprit.items()) \
        + (f"; culprit = truth's {' or '.join(s.truth)}" if s.truth else "") \
        + ("; no high network-*" if s.no_high == NET else "")


def _yn(x: bool | None) -> str:
    return "-" if x is None else ("yes" if x else "**no**")


def print_table(rows: list[dict], markdown: bool) -> None:
    by = {s.name: s for s in SCENARIOS}
    if markdown:
        print("| scenario | expected | got (top finding) | category | culprit | right |\n"
              "|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['scenario']} | {expected_text(by[r['scenario']])} | {r['got']} | "
                  f"{_yn(r.get('category_ok'))} | {_yn(r.get('culprit_ok'))} | "
                  f"{'right' if r['ok'] else 'WRONG'} |")
    else:
        for r in rows:
            print(f"{r['scenario']:<22} {expected_text(by[r['scenario']]):<45} "
                  f"{'right' if r['ok'] else 'WRONG':<6} {r['seconds']:5.1f}s  {r['got']}")
    right = sum(r["ok"] for r in rows)
    judged = [r for r in rows if r.get("category_ok") is not None]
    print(f"\n{right}/{len(rows)} right", end="")
    if judged:
        print(f"; of {len(judged)} with a bottleneck: category right "
              f"{sum(bool(r['category_ok']) for r in judged)}/{len(judged)}, culprit right "
              f"{sum(bool(r['culprit_ok']) for r in judged)}/{len(judged)}", end="")
    print()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="scenarios to run (default: all)")
    ap.add_argument("--seconds", type=float, default=15.0, help="run time of each workload")
    ap.add_argument("--keep", metavar="DIR", help="keep the captures here")
    ap.add_argument("--fast", action="store_true", help="only the fast (CI) scenarios")
    ap.add_argument("--tuned", action="store_true",
                    help="only the original scenarios (the ones the rules were tuned on)")
    ap.add_argument("--independent", action="store_true",
                    help="only the independent scenarios of issue 15")
    ap.add_argument("--loader", action="store_true",
                    help="only the DataLoader IPC scenarios of issue 19")
    ap.add_argument("--list", action="store_true", help="list the chosen scenarios and exit")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--json", metavar="FILE", help="also write the results here")
    ap.add_argument("--reanalyze", action="store_true",
                    help="do not record: analyse the captures kept in --keep DIR again")
    args = ap.parse_args()
    if args.reanalyze and not args.keep:
        ap.error("--reanalyze needs --keep DIR")
    unknown = set(args.names) - {s.name for s in SCENARIOS}
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    chosen = [s for s in SCENARIOS if (not args.names or s.name in args.names)
              and (not args.fast or s.fast) and (not args.tuned or not (s.independent or s.loader))
              and (not args.independent or s.independent) and (not args.loader or s.loader)]
    if args.list:
        for s in chosen:
            print(f"{s.name:<22} {expected_text(s)}")
        return 0
    if os.geteuid() != 0 and not args.reanalyze:
        print("run_suite: needs root (iolens record loads BPF programs)", file=sys.stderr)
        return 77
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
