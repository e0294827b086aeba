"""Cross-host rules (analysis/rules/fleet.py) on small in-memory fleets with golden numbers
derived from the builders' arguments (see each test's comment)."""

from __future__ import annotations

import pytest
from iolens.analysis.rules import run_rules

from tests import factories as F
from tests.analysis import synth


def _fleet(per_host_lat_ns: dict[str, int], count: int = 10, nbytes: int = 10 << 20):
    """One reader process per host (pid 100 + i), `count` reads of 1 MiB per interval, each
    read taking per_host_lat_ns[host], for synth.N intervals of 1 s."""
    rows, procs = [], []
    for i, (host, lat) in enumerate(per_host_lat_ns.items()):
        rows += synth._ivs([F.io_row(pid=100 + i, op="read", resource="/data/shard.tar",
                                     count=count, nbytes=nbytes, lat_ns=lat, host=host)])
        procs.append({**synth._proc(100 + i, role="rank", rank=i), "host": host})
    return synth._tables(rows, procs)


def test_straggler_host_golden_impact():
    # per interval blocked: a 10 x 10 ms = 0.1 s, b 0.12 s, c 0.4 s; over 10 s: 1.0, 1.2, 4.0 s.
    # c vs the median of a and b (1.1 s): ratio 3.6 >= 1.5, excess 2.9 s >= 15% of 10 s.
    found = run_rules(_fleet({"a": 10_000_000, "b": 12_000_000, "c": 40_000_000}))
    f = next(x for x in found if x.code == "FLEET-STRAGGLER")
    assert f.category == "imbalance" and f.culprit["resource"] == "host:c"
    assert f.culprit["pid"] == 102 and f.evidence["ranks"] == [2]
    assert f.impact_s == pytest.approx(2.9)
    assert f.evidence["peer_median_s"] == pytest.approx(1.1)
    # storage per byte: c 4 x slower than the median of a, b (1.1 x) -> ratio 40/11
    s = next(x for x in found if x.code == "FLEET-SLOWHOST")
    assert s.culprit["resource"] == "host:c" and s.evidence["source"] == "file"
    assert s.evidence["ratio"] == pytest.approx(40 / 11, rel=1e-3)
    # time saved at the peers' median speed: 4.0 s - 100 MiB x (1.1 s / 100 MiB) = 2.9 s
    assert s.impact_s == pytest.approx(2.9)


def test_even_hosts_and_one_host_give_no_fleet_finding():
    even = run_rules(_fleet({"a": 10_000_000, "b": 11_000_000, "c": 12_000_000}))
    assert not [x for x in even if x.code.startswith("FLEET-")]
    one = run_rules(_fleet({"a": 40_000_000}))
    assert not [x for x in one if x.code.startswith("FLEET-")]


def test_slow_host_from_the_block_table():
    # file I/O below slow_min_bytes (1 MiB per host in all), so the block table decides:
    # a: 100 requests in 1 s (10 ms each), b: 100 in 5 s (50 ms) -> ratio 5;
    # impact = 5 s - 100 x 10 ms = 4 s (one process on b)
    tables = _fleet({"a": 1_000_000, "b": 1_000_000}, count=1, nbytes=100_000)
    tables = synth.with_table(tables, "block", {
        "ts": [F.T0, F.T0], "host": ["a", "b"], "device": ["nvme0n1", "nvme0n1"],
        "op": ["read", "read"], "count": [100, 100], "bytes": [100 << 20, 100 << 20],
        "lat_sum_ns": [1_000_000_000, 5_000_000_000], "lat_max_ns": [20_000_000, 90_000_000],
        "lat_hist": [[0] * 23 + [100], [0] * 25 + [100]]})
    f = next(x for x in run_rules(tables) if x.code == "FLEET-SLOWHOST")
    assert f.category == "slow-device" and f.culprit["resource"] == "host:b"
    assert f.evidence["source"] == "block" and f.evidence["ratio"] == pytest.approx(5.0)
    assert f.impact_s == pytest.approx(4.0)
