#!/usr/bin/env python3
"""What does tracing waits in poll/epoll_wait cost an event loop that spins? Untraced vs under
`iolens record`, side by side, interleaved rounds.

    sudo .venv/bin/python benchmarks/poll_cost.py --rounds 3 --calls 200000

The child times its own loop of non-blocking poll(0) and epoll_wait(0) calls on a socketpair
(the worst case: every call returns at once, so the two tracepoints are all the extra work),
and prints ns per call. Median over rounds; the added cost per call is traced - untraced.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, select, socket, sys, time
n = int(sys.argv[1])
a, b = socket.socketpair()
p = select.poll(); p.register(a, select.POLLIN)
ep = select.epoll(); ep.register(a.fileno(), select.EPOLLIN)
out = {}
for name, call in (("poll", lambda: p.poll(0)), ("epoll_wait", lambda: ep.poll(0))):
    t = time.perf_counter()
    for _ in range(n):
        call()
    out[name] = (time.perf_counter() - t) / n * 1e9
print(json.dumps(out))
"""
ROOT = Path(__file__).resolve().parent.parent


def once(traced: bool, calls: int, tmp: Path) -> dict:
    cmd = [sys.executable, "-c", CHILD, str(calls)]
    if traced:
        cap = tempfile.mkdtemp(dir=tmp)
        cmd = [sys.executable, "-m", "iolens.collector.cli", "record", "-q", "-o",
               f"{cap}/cap", "--", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=200000)
    a = ap.parse_args()
    res: dict[str, dict[str, list[float]]] = {"untraced": {}, "traced": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.rounds):
            for mode in ("untraced", "traced"):
                for k, v in once(mode == "traced", a.calls, Path(tmp)).items():
                    res[mode].setdefault(k, []).append(v)
    print(f"{'call':<12} {'untraced ns':>12} {'traced ns':>10} {'added ns':>9}")
    for k in res["untraced"]:
        u, t = statistics.median(res["untraced"][k]), statistics.median(res["traced"][k])
        print(f"{k:<12} {u:>12.0f} {t:>10.0f} {t - u:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
