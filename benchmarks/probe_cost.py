#!/usr/bin/env python3
"""What does each optional probe (block, pagecache, tcp) cost? Untraced vs traced, side by side.

    sudo .venv/bin/python benchmarks/probe_cost.py              # all probes, 5 rounds
    sudo .venv/bin/python benchmarks/probe_cost.py --rounds 3 --probes pagecache

Each workload runs in a child process (the probes trace every process but iolens itself) and
times its own loop; this process loads one probe at a time (the real probe class, the same
program `iolens record` attaches) or none. Modes are interleaved across rounds; each cell is
the median of the rounds. The added cost per kernel event is
(traced - untraced) / events, where events is what the workload provokes on purpose:

  block      O_DIRECT 4 KiB preads on a 64 MiB file               1 block request per read
  pagecache  cold mmap touch / cold read() / fresh write of 64 MiB  1 page inserted or dirtied
             anonymous page faults (128 MiB)                        not hooked: control
             pipe ping-pong between two processes                   2 sched_switch + 2 wakeups
  tcp        loopback 64 B ping-pong                              1 send + 1 recv per message,
                                                                  about 2 segments each way
             loopback bulk 256 MiB                                per 64 KiB chunk sent

Wall-clock numbers on a shared VM are noisy: treat deltas within a few % as zero. The exact
part is measured in the kernel: with BPF run-time statistics enabled (BPF_ENABLE_STATS, held
only while this script runs) each program's run_cnt/run_time_ns is read from the fdinfo of
its fd, giving ns per program run and runs per workload event. Add about 50-100 ns per
tracepoint hit for the dispatch itself (docs/probes.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r'''
import json, mmap, os, socket, sys, threading, time
kind, path = sys.argv[1], sys.argv[2]
MB = 1 << 20
def out(seconds, events): print(json.dumps({"s": seconds, "events": events}))
if kind == "direct_read":
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, 4096); n = 4000; size = os.fstat(fd).st_size // 4096
    import random; r = random.Random(1); offs = [r.randrange(size) * 4096 for _ in range(n)]
    t = time.perf_counter()
    for o in offs: os.preadv(fd, [buf], o)
    out(time.perf_counter() - t, n)
elif kind in ("mmap_cold", "read_cold"):
    fd = os.open(path, os.O_RDONLY); size = os.fstat(fd).st_size
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    t = time.perf_counter()
    if kind == "mmap_cold":
        m = mmap.mmap(fd, 0, prot=mmap.PROT_READ); s = 0
        for off in range(0, size, 4096): s += m[off]
    else:
        while os.read(fd, MB): pass
    out(time.perf_counter() - t, size // 4096)
elif kind == "write_new":
    chunk = b"w" * MB; n = 64
    t = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for _ in range(n): os.write(fd, chunk)
    dt = time.perf_counter() - t
    os.close(fd); os.unlink(path)
    out(dt, n * MB // 4096)
elif kind == "pipe_pingpong":
    r1, w1 = os.pipe(); r2, w2 = os.pipe(); n = 20000
    if os.fork() == 0:
        for _ in range(n): os.read(r1, 1); os.write(w2, b"y")
        os._exit(0)
    t = time.perf_counter()
    for _ in range(n): os.write(w1, b"x"); os.read(r2, 1)
    dt = time.perf_counter() - t; os.wait(); out(dt, n)
elif kind == "anon_faults":
    n = 128 * MB
    t = time.perf_counter()
    m = mmap.mmap(-1, n)
    for off in range(0, n, 4096): m[off] = 1
    out(time.perf_counter() - t, n // 4096)
elif kind in ("tcp_pingpong", "tcp_bulk"):
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
    def serve():
        c, _ = srv.accept()
        if kind == "tcp_pingpong":
            while True:
                d = c.recv(64)
                if not d: break
                c.sendall(d)
        else:
            while c.recv(1 << 20): pass
        c.close()
    th = threading.Thread(target=serve); th.start()
    cl = socket.create_connection(srv.getsockname())
    cl.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if kind == "tcp_pingpong":
        n = 20000; msg = b"x" * 64
        t = time.perf_counter()
        for _ in range(n): cl.sendall(msg); cl.recv(64)
    else:
        n = 4096; chunk = b"b" * 65536
        t = time.perf_counter()
        for _ in range(n): cl.sendall(chunk)
    dt = time.perf_counter() - t
    cl.close(); th.join(); out(dt, n)
'''

WORKLOADS = {
    "block": [("direct_read", "block requests")],
    "pagecache": [("mmap_cold", "pages faulted in"), ("read_cold", "pages read"),
                  ("write_new", "pages dirtied"), ("anon_faults", "anon faults (unhooked)"),
                  ("pipe_pingpong", "round trips (2 switches)")],
    "tcp": [("tcp_pingpong", "messages"), ("tcp_bulk", "64 KiB sends")],
}
PROBES = {"block": "iolens.probes.block:BlockProbe",
          "pagecache": "iolens.probes.pagecache:PageCacheProbe",
          "tcp": "iolens.probes.tcp:TcpProbe"}


class BpfStats:
    """BPF run-time statistics for the programs this process holds (fdinfo of prog fds)."""

    def __init__(self) -> None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        attr = (ctypes.c_uint8 * 128)()            # union bpf_attr; enable_stats.type = 0
        self.fd = libc.syscall(321, 32, attr, 128)  # SYS_bpf, BPF_ENABLE_STATS (x86_64)
        self.ok = self.fd >= 0

    @staticmethod
    def _names() -> dict[int, str]:
        try:
            out = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True,
                                 text=True, check=True).stdout
            return {p["id"]: p.get("name", "?") for p in json.loads(out)}
        except (OSError, subprocess.CalledProcessError, ValueError):
            return {}

    def snapshot(self) -> dict[str, tuple[int, int]]:
        progs: dict[int, tuple[int, int]] = {}
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:bpf-prog":
                    continue
                info = dict(line.split(":", 1) for line in
                            open(f"/proc/self/fdinfo/{fd}").read().splitlines() if ":" in line)
                progs[int(info["prog_id"])] = (int(info.get("run_cnt", 0)),
                                               int(info.get("run_time_ns", 0)))
            except (OSError, ValueError, KeyError):
                continue
        names = self._names()
        return {names.get(i, str(i)): v for i, v in progs.items()}

    def close(self) -> None:
        if self.ok:
            os.close(self.fd)


def run_child(kind: str, path: str) -> dict:
    res = subprocess.run([sys.executable, "-c", CHILD, kind, path], capture_output=True,
                         text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def make_file(path: str, mb: int) -> None:
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--probes", nargs="*", default=list(PROBES))
    ap.add_argument("--dir", default=str(ROOT / "benchmarks"),
                    help="directory on a real disk for the data files")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    from iolens.probes.registry import load_class

    stats = BpfStats()
    if not stats.ok:
        print("BPF run-time statistics unavailable: only wall-clock deltas", file=sys.stderr)
    work = tempfile.mkdtemp(prefix=".probe-cost-", dir=args.dir)
    data = os.path.join(work, "data.bin")
    make_file(data, 64)
    results = []
    try:
        for probe_name in args.probes:
            for kind, unit in WORKLOADS[probe_name]:
                path = os.path.join(work, "new.bin") if kind == "write_new" else data
                times = {"untraced": [], "traced": []}
                events = 0
                runs: dict[str, list[int]] = {}
                for r in range(args.rounds):
                    order = ("untraced", "traced") if r % 2 == 0 else ("traced", "untraced")
                    for mode in order:
                        probe = None
                        if mode == "traced":
                            probe = load_class(PROBES[probe_name])(None)
                            probe.start()
                        try:
                            before = stats.snapshot() if probe is not None else {}
                            out = run_child(kind, path)
                            if probe is not None:
                                for name, (cnt, ns) in stats.snapshot().items():
                                    c0, n0 = before.get(name, (0, 0))
                                    acc = runs.setdefault(name, [0, 0])
                                    acc[0] += cnt - c0
                                    acc[1] += ns - n0
                        finally:
                            if probe is not None:
                                probe.close()
                        times[mode].append(out["s"])
                        events = out["events"]
                base = statistics.median(times["untraced"])
                traced = statistics.median(times["traced"])
                row = {"probe": probe_name, "workload": kind, "events": events, "unit": unit,
                       "untraced_s": base, "traced_s": traced,
                       "untraced_ns_per_event": base / events * 1e9,
                       "traced_ns_per_event": traced / events * 1e9,
                       "added_ns_per_event": (traced - base) / events * 1e9,
                       "slowdown_pct": (traced / base - 1) * 100,
                       "min_untraced_s": min(times["untraced"]),
                       "min_traced_s": min(times["traced"])}
                row["programs"] = {
                    name: {"runs_per_event": cnt / (events * args.rounds),
                           "ns_per_run": ns / cnt if cnt else 0.0}
                    for name, (cnt, ns) in sorted(runs.items()) if cnt}
                bpf_ns = sum(ns for _, ns in runs.values())
                row["bpf_ns_per_event"] = bpf_ns / (events * args.rounds)
                results.append(row)
                print(f"{probe_name:9} {kind:13} {events:>8} {unit:22} "
                      f"untraced {row['untraced_ns_per_event']:9.0f} ns  traced "
                      f"{row['traced_ns_per_event']:9.0f} ns  "
                      f"added {row['added_ns_per_event']:+7.0f} ns/event "
                      f"({row['slowdown_pct']:+5.1f} %)  "
                      f"in-BPF {row['bpf_ns_per_event']:6.0f} ns/event",
                      flush=True)
                for name, p in row["programs"].items():
                    print(f"{'':24}{name:18} {p['runs_per_event']:8.3f} runs/event "
                          f"{p['ns_per_run']:7.0f} ns/run", flush=True)
    finally:
        stats.close()
        subprocess.run(["rm", "-rf", work], check=False)
    if args.json:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import _common as C

        Path(args.json).write_text(json.dumps({"machine": C.machine(), "rounds": args.rounds,
                                               "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
