"""Synthetic workloads, one per rule category, as capture tables of the real schema.

Each builder returns ``(tables, expect)`` where `expect` holds the golden values the tests
check, computed here from the builder's own arguments (that is their origin):
``category``, ``pid``, ``impact_s`` (and ``resource`` when the culprit names one).
All workloads span `N` intervals of 1 s starting at factories.T0.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from iolens.collector import schema as S

from tests import factories as F

N = 10
Tables = dict[str, pa.Table]


def _ivs(rows_per_interval: list[dict], n: int = N) -> list[dict]:
    """The same rows repeated in each of n intervals."""
    return [{**r, "ts": F.T0 + i * 10**9} for i in range(n) for r in rows_per_interval]


def _tables(rows: list[dict], procs: list[dict], n: int = N) -> Tables:
    io = F.io_table(rows)
    health = F.health_table([F.health_row(F.T0 + i * 10**9) for i in range(n)])
    return {"io": io, "procs": F.proc_table(procs), "health": health}


def _proc(pid: int, comm: str = "python", role: str | None = None, ppid: int = 1,
          rank: int | None = None) -> dict:
    return {"pid": pid, "ppid": ppid, "comm": comm, "role": role, "rank": rank,
            "cmdline": f"{comm} train.py"}


def small_io() -> tuple[Tables, dict[str, Any]]:
    # 2000 reads of 512 B at 100 µs per interval -> 0.2 s/interval, 2.0 s in all
    rows = _ivs([F.io_row(pid=100, op="read", resource="/data/log.bin", count=2000,
                          nbytes=2000 * 512, lat_ns=100_000)])
    return _tables(rows, [_proc(100, role="trainer")]), {
        "category": "small-io", "pid": 100, "impact_s": 2.0, "resource": "/data/log.bin"}


def metadata_heavy() -> tuple[Tables, dict[str, Any]]:
    # 50 files per interval, each opened 20 times at 300 µs (0.3 s/interval = 3.0 s) and read
    # with 20 ops of 4 KiB at 10 µs (0.01 s/interval)
    rows = []
    for f in range(50):
        rows += [F.io_row(pid=100, op="open", resource=f"/data/img/{f}.jpg", count=20, nbytes=0,
                          lat_ns=300_000),
                 F.io_row(pid=100, op="read", resource=f"/data/img/{f}.jpg", count=20,
                          nbytes=20 * 4096, lat_ns=10_000)]
    return _tables(_ivs(rows), [_proc(100, role="trainer")]), {
        "category": "metadata-heavy", "pid": 100, "impact_s": 3.0, "resource": "/data/img/"}


def sync_stall() -> tuple[Tables, dict[str, Any]]:
    # per interval: 64 writes of 1 MiB at 1 ms, one fsync of 400 ms -> fsync 4.0 s in all
    rows = _ivs([F.io_row(pid=200, op="write", resource="/ckpt/model.pt", count=64,
                          nbytes=64 << 20, lat_ns=1_000_000, file_class="checkpoint"),
                 F.io_row(pid=200, op="fsync", resource="/ckpt/model.pt", count=1, nbytes=0,
                          lat_ns=400_000_000, file_class="checkpoint")])
    return _tables(rows, [_proc(200, role="checkpoint-writer")]), {
        "category": "sync-stall", "pid": 200, "impact_s": 4.0, "resource": "/ckpt/model.pt"}


def random_access() -> tuple[Tables, dict[str, Any]]:
    # 5000 preads of 4 KiB at 50 µs per interval, 4000 of them random: 0.25 s/interval,
    # impact = 2.5 s × 0.8 = 2.0 s
    rows = _ivs([F.io_row(pid=300, op="read", resource="/data/big.bin", count=5000,
                          nbytes=5000 * 4096, lat_ns=50_000, random_ops=4000,
                          syscall="pread64")])
    return _tables(rows, [_proc(300, role="trainer")]), {
        "category": "random-access", "pid": 300, "impact_s": 2.0, "resource": "/data/big.bin"}


def slow_device() -> tuple[Tables, dict[str, Any]]:
    # 10 sequential reads of 1 MiB at 50 ms per interval: 0.5 s/interval = 5.0 s,
    # 10 MiB per 0.5 s blocked = 20.97 MB/s
    rows = _ivs([F.io_row(pid=400, op="read", resource="/mnt/slow/shard0.tar", count=10,
                          nbytes=10 << 20, lat_ns=50_000_000)])
    return _tables(rows, [_proc(400, role="trainer")]), {
        "category": "slow-device", "pid": 400, "impact_s": 5.0,
        "resource": "/mnt/slow/shard0.tar", "mb_per_s_blocked": round((10 << 20) / 0.5 / 1e6, 2)}


def network_latency() -> tuple[Tables, dict[str, Any]]:
    # 100 sends of 200 B at 5 ms per interval to one peer: 0.5 s/interval = 5.0 s
    rows = _ivs([F.io_row(pid=500, op="send", resource="tcp:10.0.0.2:8000", count=100,
                          nbytes=100 * 200, lat_ns=5_000_000)])
    return _tables(rows, [_proc(500, role="inference-server")]), {
        "category": "network-latency", "pid": 500, "impact_s": 5.0,
        "resource": "tcp:10.0.0.2:8000"}


def network_bandwidth() -> tuple[Tables, dict[str, Any]]:
    # two peers get 100 MiB each per interval in 1 MiB messages: fast peer in 0.05 s, slow
    # peer in 0.6 s -> slow peer 6.0 s blocked, 174.8 MB/s while blocked
    rows = _ivs([F.io_row(pid=510, op="recv", resource="tcp:10.0.0.3:29500", count=100,
                          nbytes=100 << 20, lat_ns=500_000),
                 F.io_row(pid=510, op="recv", resource="tcp:10.0.0.4:29500", count=100,
                          nbytes=100 << 20, lat_ns=6_000_000)])
    return _tables(rows, [_proc(510, role="rank", rank=0)]), {
        "category": "network-bandwidth", "pid": 510, "impact_s": 6.0,
        "resource": "tcp:10.0.0.4:29500"}


def imbalance() -> tuple[Tables, dict[str, Any]]:
    # 4 ranks read 1 MiB at 10 ms per op: ranks 0-2 10 per interval (0.1 s/interval), rank 3
    # was given 6x the data, 60 per interval (0.6 s/interval) -> max 6.0 s, median 1.0 s,
    # impact = 6.0 - 1.0 = 5.0 s. (Same data, more time per byte is a slow path instead.)
    rows, procs = [], []
    for r in range(4):
        n = 60 if r == 3 else 10
        rows.append(F.io_row(pid=700 + r, op="read", resource=f"/data/shard{r}", count=n,
                             nbytes=n << 20, lat_ns=10_000_000))
        procs.append(_proc(700 + r, role="rank", rank=r))
    return _tables(_ivs(rows), procs), {"category": "imbalance", "pid": 703, "impact_s": 5.0,
                                        "resource": "/data/shard3"}


def data_starvation() -> tuple[Tables, dict[str, Any]]:
    # trainer 600 waits 0.7 s/interval reading the pipe from its 2 workers (7.0 s in all);
    # workers 601/602 read 64 KiB samples at 2 ms (0.2 s/interval each)
    rows = [F.io_row(pid=600, op="read", kind="pipe", resource="pipe:[1234]", count=50,
                     nbytes=50 * 1024, lat_ns=14_000_000)]
    for w in (601, 602):
        rows.append(F.io_row(pid=w, op="read", resource=f"/data/train/{w}.npy", count=100,
                             nbytes=100 << 16, lat_ns=2_000_000))
    procs = [_proc(600, role="trainer"), _proc(601, "pt_data_worker", "dataloader", 600),
             _proc(602, "pt_data_worker", "dataloader", 600)]
    return _tables(_ivs(rows), procs), {"category": "data-starvation", "pid": 600,
                                        "impact_s": 7.0}


def healthy() -> tuple[Tables, dict[str, Any]]:
    # compute-bound trainer: 20 reads of 1 MiB at 1 ms per interval (2% blocked)
    rows = _ivs([F.io_row(pid=800, op="read", resource="/data/shard.tar", count=20,
                          nbytes=20 << 20, lat_ns=1_000_000)])
    return _tables(rows, [_proc(800, role="trainer")]), {"category": None}


def with_table(tables: Tables, name: str, cols: dict[str, list]) -> Tables:
    """Add a table of the real schema (optional probe tables: block, pagecache, faults, tcp;
    or events), missing columns null; `ts` values are ints (ns)."""
    cols = dict(cols)
    n = len(next(iter(cols.values())))
    cols.setdefault("interval_s", [1.0] * n)
    if "ts" in cols:
        cols["ts"] = pa.array(cols["ts"], pa.int64()).cast(S.TS)
    return {**tables, name: S.to_table(name, cols)}


BUILDERS = {"small-io": small_io, "metadata-heavy": metadata_heavy, "sync-stall": sync_stall,
            "random-access": random_access, "slow-device": slow_device,
            "network-latency": network_latency, "network-bandwidth": network_bandwidth,
            "imbalance": imbalance, "data-starvation": data_starvation}
