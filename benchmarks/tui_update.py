"""How long `iolens top` takes to apply one interval of 20,000 io rows (headless).

    .venv/bin/python benchmarks/tui_update.py [--rows 20000] [--repeats 15] [--size 160x48]

Feeds the real TopApp (Textual `run_test`, no terminal) one synthetic interval at a time and
waits for the frame. Prints, per phase, min / median / max over the repeats:
  derive  worker thread: Window.add + Snapshot (roll-ups of processes, files, peers, sparklines)
  apply   UI thread: filter/sort/tree + DataTable refresh of the visible tables + header
  e2e     wall time from the interval being handed over to the frame applied on screen
The first interval (warm-up: imports, first layout) is reported separately.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from iolens.collector import schema as S  # noqa: E402
from iolens.collector.capture import CaptureMeta  # noqa: E402
from iolens.collector.sources import Interval  # noqa: E402
from iolens.tui.app import TopApp  # noqa: E402

T0 = 1_764_000_000_000_000_000
OPS = np.array(["read", "write", "recv", "send", "open", "stat"])


def synthetic_interval(k: int, rows: int, pids: int = 300, seed: int = 0) -> Interval:
    """`rows` io rows: `pids` processes, ~rows*0.8 distinct files, 100 peers."""
    rng = np.random.default_rng(seed + k)
    ts = T0 + k * 10**9
    op = OPS[rng.integers(0, len(OPS), rows)]
    sock = np.isin(op, ["recv", "send"])
    files = np.char.add("/data/set/shard-", rng.integers(0, int(rows * 0.8), rows).astype(str))
    peers = np.char.add("tcp:10.0.0.", (rng.integers(0, 100, rows)).astype(str))
    count = rng.integers(1, 500, rows)
    lat = rng.integers(1_000, 5_000_000, rows)
    bucket = np.minimum(np.log2(lat).astype(int), S.LAT_BUCKETS - 1)
    hist = np.zeros((rows, 24), dtype=np.int64)
    hist[np.arange(rows), np.minimum(bucket, 23)] = count
    size_hist = np.zeros((rows, 16), dtype=np.int64)
    size_hist[np.arange(rows), rng.integers(8, 16, rows)] = count
    io = S.to_table("io", {
        "ts": pa.array(np.full(rows, ts), pa.int64()).cast(S.TS),
        "interval_s": np.ones(rows), "host": ["bench"] * rows,
        "pid": rng.integers(1000, 1000 + pids, rows).astype(np.int32),
        "comm": ["python"] * rows, "op": op, "kind": np.where(sock, "socket", "file"),
        "resource": np.where(sock, peers, files), "count": count,
        "bytes": count * rng.integers(512, 1 << 20, rows), "errors": np.zeros(rows, np.int64),
        "lat_sum_ns": lat * count, "lat_max_ns": lat * 2,
        "lat_hist": pa.FixedSizeListArray.from_arrays(hist.ravel(), 24).cast(
            pa.list_(pa.int64())),
        "syscall": op, "fd": np.full(rows, 3, np.int32),
        "size_hist": pa.FixedSizeListArray.from_arrays(size_hist.ravel(), 16).cast(
            pa.list_(pa.int64())),
        "random_ops": np.zeros(rows, np.int64), "file_class": ["dataset"] * rows,
        "cgroup_id": np.ones(rows, np.int64)})
    health = {"interval_s": 1.0, "lost_events": 0, "collector_cpu_s": 0.05}
    return Interval(ts, ts + 10**9, {"io": io}, health)


class HandOver:
    """A Source that yields exactly the intervals the benchmark hands it."""

    def __init__(self) -> None:
        self.meta = CaptureMeta(probes_attached=["syscalls"])
        self.q: queue.Queue[Interval] = queue.Queue()
        self.handed: dict[int, float] = {}

    def next_interval(self, timeout: float) -> Interval | None:
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            return None

    @property
    def finished(self) -> bool:
        return False

    def close(self) -> None:
        pass


class _Signalling(TopApp):
    """TopApp that sets an asyncio.Event after each applied frame."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.frame_done = asyncio.Event()

    def on_snapshot_ready(self, message) -> None:
        super().on_snapshot_ready(message)
        self.frame_done.set()


async def measure(rows: int, repeats: int, size: tuple[int, int],
                  rules: bool = True) -> dict[str, list[float]]:
    ivs = [synthetic_interval(k, rows) for k in range(repeats + 1)]
    src = HandOver()
    if not rules:  # isolate the TUI's own cost from the analysis rules' thread
        from iolens.analysis import rules as rules_mod
        rules_mod.run_rules = lambda tables, meta=None, thresholds=None: []
    app = _Signalling(src, poll_s=0.05, verdict_every=5)
    out: dict[str, list[float]] = {"derive": [], "apply": [], "e2e": []}
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        for iv in ivs:
            app.frame_done.clear()
            t0 = time.perf_counter()
            src.q.put(iv)
            await app.frame_done.wait()  # no polling: it would compete for the GIL
            out["e2e"].append((time.perf_counter() - t0) * 1e3)
            derive, apply = app.timings[-1]
            out["derive"].append(derive)
            out["apply"].append(apply)
        await pilot.press("q")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--size", default="160x48")
    ap.add_argument("--name", default="tui_update",
                    help="results file name under benchmarks/results (default tui_update)")
    ap.add_argument("--no-rules", action="store_true",
                    help="replace run_rules by a no-op (the verdict thread shares the CPU)")
    a = ap.parse_args()
    size = tuple(int(x) for x in a.size.split("x"))
    res = asyncio.run(measure(a.rows, a.repeats, size, not a.no_rules))  # type: ignore[arg-type]
    print(f"tui_update: {a.rows} io rows/interval, {a.repeats} intervals, terminal {a.size}, "
          f"rules {'off' if a.no_rules else 'on (every 5th frame, own thread)'}")
    print(f"{'phase':<8}{'first':>10}{'min':>10}{'median':>10}{'max':>10}   (ms)")
    for phase, vals in res.items():
        rest = vals[1:]
        print(f"{phase:<8}{vals[0]:>10.1f}{min(rest):>10.1f}{statistics.median(rest):>10.1f}"
              f"{max(rest):>10.1f}")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _common as C

    C.save(a.name, {"rows": a.rows, "repeats": a.repeats, "size": a.size, "rules": not a.no_rules,
                    "ms": res, "summary": {
                        ph: {"first": v[0], "min": min(v[1:]), "median": statistics.median(v[1:]),
                             "max": max(v[1:])} for ph, v in res.items()}})


if __name__ == "__main__":
    main()
