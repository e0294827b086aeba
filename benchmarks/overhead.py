#!/usr/bin/env python3
"""Syscall storm: what each tracer adds per syscall, side by side, in one run.

    sudo .venv/bin/python benchmarks/overhead.py [--rounds 5] [--modes untraced,floor,...]

The workload is benchmarks/storm.c (`storm bench`): 4 KiB cached pread, 64 KiB cached pread,
loopback TCP send+recv of 64 B (per syscall), and getppid, which iolens does not trace (it
shows the global cost of any syscall tracepoint: TIF_SYSCALL_TRACEPOINT forces the slow path
on every syscall of every process). Each mode runs the storm once per round; the order of the
modes rotates every round (interleaved), and each cell is min / median over the rounds.

Modes:
  untraced         nothing attached by us (other users of the machine may trace things)
  floor            empty BPF programs (return 0) on sys_enter_X and sys_exit_X of every syscall
                   iolens attaches: the physical floor of tracepoint tracing on this kernel.
                   Loaded here with bcc (benchmarks are outside the package; only this script
                   imports bcc directly through iolens.probes._bcc.Program).
  iolens           `iolens record -q -o DIR -- storm ...` (default options)
  iolens-nolat     the same with --no-latency (the cheapest mode)
  iolens-sys       default options, but only the syscall probe: the optional probes (block,
                   pagecache, tcp, gpu) disabled with --disable (splits the cost between them)
  strace           `strace -f -c -o FILE storm ...` (smaller loop counts: it is ~100x slower)
  syscount         bcc's `syscount -p PID` (raw_syscalls tracepoints), attached to a waiting storm
  perf-trace       `perf trace -s -o FILE -- storm ...` (when perf runs here)

Output: a table of ns per syscall (min / median), ns added over untraced (median - median), and
the ratio of that added cost to the floor's; raw samples in benchmarks/results/overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _common as C  # noqa: E402

COLS = ["pread4k", "pread64k", "tcp", "getppid"]
LABEL = {"pread4k": "pread 4 KiB", "pread64k": "pread 64 KiB", "tcp": "TCP send/recv 64 B",
         "getppid": "getppid (not traced by iolens)"}
ALL_MODES = ["untraced", "floor", "iolens", "iolens-nolat", "iolens-sys", "strace", "syscount",
             "perf-trace"]
OPTIONAL_PROBES = ["block", "pagecache", "tcp", "gpu"]
SCALE = {"strace": 0.05, "perf-trace": 0.1}
SYSCOUNT = shutil.which("syscount-bpfcc") or "/usr/sbin/syscount-bpfcc"


def floor_text() -> tuple[str, list[str]]:
    """Empty enter/exit programs on every syscall tracepoint that iolens attaches."""
    from iolens.probes import syscalls

    p = syscalls.plan(filter_mode=1, self_tgid=os.getpid(), slow_ns=10**7, max_keys=1024,
                      per_thread=False)
    # no kernel headers (slow to compile); rwf_t is the one type the tracepoint structs need
    text = "typedef int rwf_t;\n" + "".join(f"TRACEPOINT_PROBE(syscalls, sys_enter_{s}) {{ return 0; }}\n"
                   f"TRACEPOINT_PROBE(syscalls, sys_exit_{s}) {{ return 0; }}\n"
                   for s in p.syscalls)
    return text, p.syscalls


def parse_storm(out: str) -> dict:
    for ln in reversed(out.splitlines()):
        ln = ln.strip()
        if ln.startswith("{"):
            return json.loads(ln)
    raise RuntimeError(f"no storm result in output: {out[-500:]!r}")


class Runner:
    def __init__(self, storm: str, work: Path, scale: float) -> None:
        self.storm, self.work, self.scale = storm, work, scale
        self.n = 0

    def args(self, mode: str, wait: bool = False) -> list[str]:
        s = self.scale * SCALE.get(mode, 1.0)
        return [self.storm, "bench", "-s", f"{s:g}", *(["-w"] if wait else []), str(self.work)]

    def out(self, name: str) -> Path:
        self.n += 1
        return self.work / f"{name}-{self.n}"

    def run(self, mode: str) -> dict:
        return getattr(self, "m_" + mode.replace("-", "_"))(mode)

    def m_untraced(self, mode: str) -> dict:
        return parse_storm(subprocess.run(self.args(mode), capture_output=True, text=True,
                                          check=True).stdout)

    def m_floor(self, mode: str) -> dict:
        from iolens.probes._bcc import Program
        from iolens.probes.syscalls import HERE

        text, _ = floor_text()
        prog = Program(text, [], str(HERE))
        try:
            return self.m_untraced(mode)
        finally:
            prog.close()

    def _iolens(self, mode: str, extra: list[str]) -> dict:
        cap = self.out("cap")
        r = subprocess.run([C.IOLENS, "record", "-q", "-o", str(cap), *extra, "--",
                            *self.args(mode)], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"iolens record failed ({r.returncode}): {r.stderr[-800:]}")
        res = parse_storm(r.stdout)
        C.rmtree(cap)
        return res

    def m_iolens(self, mode: str) -> dict:
        return self._iolens(mode, [])

    def m_iolens_nolat(self, mode: str) -> dict:
        return self._iolens(mode, ["--no-latency"])

    def m_iolens_sys(self, mode: str) -> dict:
        return self._iolens(mode, [x for p in OPTIONAL_PROBES for x in ("--disable", p)])

    def m_strace(self, mode: str) -> dict:
        o = self.out("strace")
        r = subprocess.run(["strace", "-f", "-c", "-o", str(o), *self.args(mode)],
                           capture_output=True, text=True, check=True)
        return parse_storm(r.stdout)

    def m_perf_trace(self, mode: str) -> dict:
        o = self.out("perf")
        r = subprocess.run(["perf", "trace", "-s", "-o", str(o), "--", *self.args(mode)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"perf trace failed: {r.stderr[-400:]}")
        return parse_storm(r.stdout)

    def m_syscount(self, mode: str) -> dict:
        st = subprocess.Popen(self.args(mode, wait=True), stdout=subprocess.PIPE, text=True)
        line = st.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"storm did not get ready: {line!r}")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        sc = subprocess.Popen([SYSCOUNT, "-p", str(st.pid)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env)
        try:
            t0 = time.monotonic()
            while True:
                ln = sc.stdout.readline()
                if not ln:
                    raise RuntimeError("syscount exited before tracing")
                if ln.startswith("Tracing"):
                    break
                if time.monotonic() - t0 > 120:
                    raise RuntimeError("syscount did not start")
            st.send_signal(signal.SIGUSR1)
            res = parse_storm(st.stdout.read())
            st.wait()
        finally:
            if st.poll() is None:
                st.kill()
            sc.send_signal(signal.SIGINT)
            try:
                sc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                sc.kill()
        return res


def available(mode: str) -> str | None:
    """None when the mode can run here, else why not."""
    if mode == "strace" and not shutil.which("strace"):
        return "strace not installed"
    if mode == "syscount" and not os.path.exists(SYSCOUNT):
        return "syscount-bpfcc not installed (package bpfcc-tools)"
    if mode == "perf-trace":
        if not shutil.which("perf"):
            return "perf not installed (package linux-perf)"
        r = subprocess.run(["perf", "trace", "-s", "-o", "/dev/null", "--", "true"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return "perf trace does not run here: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    return None


METRICS = {
    "cpu_best": "thread CPU time per syscall of the fastest tenth of each loop (the least "
                "disturbed by other processes; the figure the targets are judged on for the "
                "BPF modes)",
    "cpu": "thread CPU time per syscall (BPF work runs in the caller's context, so it is "
           "included; a separate tracer process's work, strace's or perf's, is not)",
    "wall": "wall-clock time per syscall (includes everything, also time lost to other "
            "processes on this shared machine)",
    "best": "fastest tenth of each loop, wall clock",
}


def report(samples: dict[str, list[dict]], modes: list[str], metric: str) -> tuple[str, dict]:
    stats: dict = {}
    for m in modes:
        stats[m] = {c: C.mn_md([s[c][metric] for s in samples[m]]) for c in COLS}
    base = stats.get("untraced")
    floor = stats.get("floor")
    rows = []
    summary: dict = {}
    for m in modes:
        row = [m]
        summary[m] = {}
        for c in COLS:
            mn, md = stats[m][c]
            cell = f"{mn:.0f} / {md:.0f}"
            if base and m != "untraced":
                add = md - base[c][1]
                add_min = mn - base[c][0]
                summary[m][c] = {"min": mn, "median": md, "added_ns": add, "added_ns_min": add_min}
                cell += f" (+{add:.0f})" if add >= 0 else f" ({add:.0f})"
                if floor and m != "floor":
                    fadd = floor[c][1] - base[c][1]
                    if fadd > 0 and c != "getppid":
                        summary[m][c]["x_floor"] = add / fadd
                        cell += f" {add / fadd:.2f}x"
            else:
                summary[m][c] = {"min": mn, "median": md}
            row.append(cell)
        row.append(str(len(samples[m])))
        rows.append(row)
    hdr = ["mode"] + [LABEL[c] for c in COLS] + ["n"]
    return C.table(hdr, rows), summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the storm's loop counts")
    ap.add_argument("--modes", default=",".join(ALL_MODES))
    ap.add_argument("--name", default="overhead", help="results file name (benchmarks/results/NAME.json)")
    a = ap.parse_args(argv)
    C.need_root()
    work = C.tmpdir("iolens-storm-")
    storm = C.build_storm(work)
    modes, skipped = [], {}
    for m in a.modes.split(","):
        why = available(m)
        if why:
            skipped[m] = why
            print(f"skip {m}: {why}", file=sys.stderr)
        else:
            modes.append(m)
    runner = Runner(storm, work, a.scale)
    samples: dict[str, list[dict]] = {m: [] for m in modes}
    errors: dict[str, list[str]] = {}
    t0 = time.monotonic()
    try:
        for r in range(a.rounds):
            order = modes[r % len(modes):] + modes[:r % len(modes)]
            for m in order:
                try:
                    samples[m].append(runner.run(m))
                except Exception as exc:  # noqa: BLE001 - a broken tracer must not stop the run
                    errors.setdefault(m, []).append(str(exc)[-300:])
                    print(f"round {r} {m}: {exc}", file=sys.stderr)
            print(f"round {r + 1}/{a.rounds} done ({time.monotonic() - t0:.0f} s)", file=sys.stderr)
    finally:
        C.rmtree(work)
    modes = [m for m in modes if samples[m]]
    tables, summary = {}, {}
    for metric, what in METRICS.items():
        tables[metric], summary[metric] = report(samples, modes, metric)
        print(f"\n{metric}: {what}\nns per syscall, min / median over {a.rounds} rounds "
              "(median added over untraced) ratio of the added cost to the floor's")
        print(tables[metric])
    _, floor_sys = floor_text()
    p = C.save(a.name, {"rounds": a.rounds, "scale": a.scale, "loop_scale": SCALE,
                        "floor_tracepoints": floor_sys, "skipped": skipped, "errors": errors,
                        "samples": samples, "summary": summary, "tables": tables,
                        "wall_s": time.monotonic() - t0})
    print(f"raw numbers: {C.rel(p)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
