#!/usr/bin/env python3
"""Start-up: how long from `iolens top -- CMD` (or `iolens record`) starting to the first interval
with data, i.e. what the live TUI's first data frame waits for.

    sudo .venv/bin/python benchmarks/startup.py [--repeats 5]

Each repeat builds the same LiveSource the TUI builds (RecordOptions(command=...), the real
collector thread, every optional probe that loads) around a small command that reads a file in
a loop, and times, from construction:
  status    the first status text (the TUI shows it as "compiling probes…" at once)
  attached  the syscall probe compiled, loaded and attached (the command is released then)
  first     the first interval whose io table holds the command's rows (the fast-start interval
            of 0.3 s follows attachment; optional probes load after it)
Compile time is dominated by BCC's clang run over the syscall program. Repeats are sequential;
each cell is min / median. Raw numbers: benchmarks/results/startup.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import _common as C  # noqa: E402

READER = ("import time\nt=time.time()+30\n"
          "while time.time()<t:\n with open('/etc/os-release','rb') as f: f.read()\n"
          " time.sleep(0.01)\n")


def one() -> dict[str, float]:
    """Seconds from LiveSource construction to status / probes attached / first data."""
    from iolens.collector.live import LiveSource
    from iolens.collector.options import RecordOptions

    t0 = time.monotonic()
    src = LiveSource(RecordOptions(command=[sys.executable, "-c", READER]))
    out: dict[str, float] = {"status": time.monotonic() - t0}
    try:
        deadline = t0 + 120
        while time.monotonic() < deadline:
            if "attached" not in out and src.collector.meta.probes_attached:
                out["attached"] = time.monotonic() - t0
            iv = src.next_interval(0.02)
            if iv is not None and iv.table("io").num_rows:
                out["first"] = time.monotonic() - t0
                out.setdefault("attached", out["first"])
                break
            if src.error:
                raise RuntimeError(src.error)
    finally:
        src.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    C.need_root()
    runs = []
    for r in range(a.repeats):
        runs.append(one())
        print(f"repeat {r + 1}: " + "  ".join(f"{k} {v:.2f} s" for k, v in runs[-1].items()),
              flush=True)
    summary = {}
    for k in ("status", "attached", "first"):
        xs = [x[k] for x in runs if k in x]
        summary[k] = {"min": min(xs), "median": statistics.median(xs)} if xs else None
    print(C.table(["phase", "min s", "median s"],
                  [[k, f"{v['min']:.2f}", f"{v['median']:.2f}"] for k, v in summary.items() if v]))
    p = C.save("startup", {"repeats": a.repeats, "runs": runs, "summary": summary})
    print(f"raw: {C.rel(p)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
