"""Rules on synthetic tables (pure tier): each category fires on its workload with the golden
culprit and impact computed in tests/analysis/synth.py; a healthy run gets nothing high."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute  # noqa: F401
import pytest
from iolens.analysis.rules import CATEGORIES, Finding, run_rules
from iolens.analysis.thresholds import ThresholdError

from tests import factories as F
from tests.analysis import synth


@pytest.mark.parametrize("name", sorted(synth.BUILDERS))
def test_top_finding_is_the_injected_bottleneck(name):
    # given a workload with one injected bottleneck
    tables, expect = synth.BUILDERS[name]()
    # when the rules run on its tables
    found = run_rules(tables)
    # then the largest finding names the category, culprit and impact from the builder
    assert found, name
    top = found[0]
    assert top.category == expect["category"]
    assert top.culprit["pid"] == expect["pid"]
    assert top.impact_s == pytest.approx(expect["impact_s"], rel=1e-3)
    if "resource" in expect:
        assert top.culprit["resource"] == expect["resource"]
    assert top.severity in ("high", "warn")
    assert top.recommendation


def test_findings_follow_the_contract():
    for name, build in synth.BUILDERS.items():
        found = run_rules(build()[0])
        assert [f.impact_s for f in found] == sorted((f.impact_s for f in found), reverse=True)
        for f in found:
            assert isinstance(f, Finding)
            assert f.category in CATEGORIES, name
            assert f.severity in ("high", "warn", "info")
            assert set(f.culprit) == {"pid", "comm", "role", "resource"}


def test_healthy_compute_bound_run_gets_nothing_high():
    tables, _ = synth.healthy()
    assert not [f for f in run_rules(tables) if f.severity == "high"]


def test_compute_bound_run_never_high_even_with_a_real_pattern():
    # 2000 small reads of 512 B at 10 µs per interval: 0.02 s/interval, the process is 2%
    # blocked -> small-io may be reported, but never as high
    rows = synth._ivs([F.io_row(pid=1, op="read", resource="/d", count=2000, nbytes=2000 * 512,
                                lat_ns=10_000)])
    found = run_rules(synth._tables(rows, [synth._proc(1, role="trainer")]))
    assert all(f.severity != "high" for f in found)


def test_slow_device_evidence_golden():
    tables, expect = synth.slow_device()
    top = run_rules(tables)[0]
    assert top.evidence["mb_per_s_blocked"] == pytest.approx(expect["mb_per_s_blocked"])
    assert top.evidence["avg_ms"] == pytest.approx(50.0)
    assert "block" in top.evidence["block_layer"]


def test_threshold_override_silences_a_rule():
    tables, _ = synth.small_io()
    assert any(f.category == "small-io" for f in run_rules(tables))
    found = run_rules(tables, thresholds={"small_io_min_ops": 1e9})
    assert all(f.category != "small-io" for f in found)


def test_unknown_threshold_is_refused():
    with pytest.raises(ThresholdError, match="unknown threshold"):
        run_rules(synth.healthy()[0], thresholds={"no_such": 1})


def test_empty_tables_give_no_findings():
    assert run_rules({}) == []
    assert run_rules({"io": F.io_table([])}) == []


def test_works_without_roles_by_comm():
    # roles unknown: data-starvation still found through ppid (parent reads pipes from kids)
    tables, _ = synth.data_starvation()
    procs = tables["procs"].set_column(
        tables["procs"].schema.get_field_index("role"), "role",
        F.proc_table([{"pid": 1}]).column("role").take([0, 0, 0]))
    found = run_rules({**tables, "procs": procs})
    assert found[0].category == "data-starvation" and found[0].culprit["pid"] == 600


# --- optional tables (block/pagecache/faults/tcp), given as plain Arrow tables ------------

def test_cache_miss_from_pagecache_table():
    # pid 900 reads a 100 MiB file 3 times (300 MiB at 2 ms per 1 MiB read -> 0.6 s total) and
    # every page came from the device (pages_added = 300 MiB / 4 KiB)
    rows = synth._ivs([F.io_row(pid=900, op="read", resource="/data/ds.bin", count=30,
                                nbytes=30 << 20, lat_ns=2_000_000)])
    tables = synth._tables(rows, [synth._proc(900, role="trainer")])
    tables = synth.with_table(tables, "pagecache", {
        "ts": [F.T0], "host": ["testhost"], "pid": [900], "resource": ["/data/ds.bin"],
        "pages_added": [(300 << 20) // 4096], "readahead_pages": [0], "dirtied_pages": [0],
        "throttle_ns": [0], "size_bytes": [100 << 20]})
    found = [f for f in run_rules(tables) if f.category == "cache-miss"]
    assert found and found[0].culprit["resource"] == "/data/ds.bin"
    assert found[0].evidence["miss_bytes"] == 300 << 20
    assert found[0].impact_s == pytest.approx(0.6)  # 10 intervals × 30 reads × 2 ms


def test_cache_miss_from_reopens_without_pagecache():
    # the same file opened 3 times and read at 5 MB/s blocked: inferred, and says so
    rows = synth._ivs([F.io_row(pid=901, op="read", resource="/data/ds.bin", count=5,
                                nbytes=5 << 20, lat_ns=200_000_000)])
    tables = synth._tables(rows, [synth._proc(901, role="trainer")])
    ev = {"ts": [F.T0 + i for i in range(3)], "host": ["testhost"] * 3, "pid": [901] * 3,
          "type": ["open"] * 3, "resource": ["/data/ds.bin"] * 3, "kind": ["file"] * 3,
          "lat_ns": [None] * 3}
    tables = synth.with_table(tables, "events", ev)
    found = [f for f in run_rules(tables) if f.category == "cache-miss"]
    assert found and "inferred_from" in found[0].evidence


def test_mmap_fault_io_from_faults_table():
    # 3.0 s of fault I/O over a 10 s run of pid 950
    rows = synth._ivs([F.io_row(pid=950, op="mmap", resource="/models/w.safetensors",
                                count=1, nbytes=0, lat_ns=10_000)])
    tables = synth._tables(rows, [synth._proc(950, role="inference-server")])
    tables = synth.with_table(tables, "faults", {
        "ts": [F.T0], "host": ["testhost"], "pid": [950], "resource": ["/models/w.safetensors"],
        "faults": [20000], "bytes": [20000 * 4096], "lat_sum_ns": [3_000_000_000]})
    top = run_rules(tables)[0]
    assert (top.category, top.impact_s) == ("mmap-fault-io", pytest.approx(3.0))


def test_mmap_without_faults_table_says_no_data():
    rows = synth._ivs([F.io_row(pid=951, op="mmap", resource="/models/w.bin", count=1,
                                nbytes=0, lat_ns=10_000, file_class="weights"),
                       F.io_row(pid=951, op="mmap", resource="/lib/libc.so.6", count=1,
                                nbytes=0, lat_ns=10_000, file_class="other")])
    tables = synth._tables(rows, [synth._proc(951)])
    found = run_rules(tables, meta=type("M", (), {"probes_skipped": {"faults": "not built"}}))
    f = [x for x in found if x.category == "mmap-fault-io"][0]
    assert f.severity == "info" and "not built" in f.evidence["faults"]
    assert f.evidence["files"] == ["/models/w.bin"]  # shared libraries are not reported


def test_network_loss_from_tcp_table():
    # 5% of 10000 segments retransmitted to one peer
    rows = synth._ivs([F.io_row(pid=520, op="send", resource="tcp:10.0.0.9:29500", count=100,
                                nbytes=100 << 16, lat_ns=3_000_000)])
    tables = synth._tables(rows, [synth._proc(520, role="rank")])
    tables = synth.with_table(tables, "tcp", {
        "ts": [F.T0], "host": ["testhost"], "pid": [520], "resource": ["tcp:10.0.0.9:29500"],
        "segs_out": [10000], "retransmits": [500], "rtt_us": [900]})
    f = [x for x in run_rules(tables) if x.category == "network-loss"][0]
    assert f.evidence["share"] == pytest.approx(0.05)
    assert f.culprit["resource"] == "tcp:10.0.0.9:29500"


def test_slow_device_names_the_block_device_when_recorded():
    tables, _ = synth.slow_device()
    tables = synth.with_table(tables, "block", {
        "ts": [F.T0], "host": ["testhost"], "device": ["sda"], "op": ["read"], "count": [100],
        "bytes": [100 << 20], "lat_sum_ns": [5_000_000_000], "lat_max_ns": [60_000_000],
        "lat_hist": [[0] * 25 + [100]]})
    top = run_rules(tables)[0]
    assert top.evidence["device"] == "sda" and top.evidence["device_avg_ms"] == 50.0


def test_slow_link_seen_through_non_blocking_sockets():
    # gloo-like: recv never blocks (EAGAIN instead). Rank 0 gets 5 MB per interval from the
    # slow peer in 2000 receives, 1000 of which found no data, and sends it 5 MB: 100 MB over
    # 10 s. Impact = 10 s - 100 MB / 200 MB/s = 9.5 s (net_bw_mbps default).
    rows = synth._ivs([
        F.io_row(pid=530, op="recv", resource="tcp:10.77.0.2:4000", count=2000,
                 nbytes=5_000_000, lat_ns=2_000, errors=1000),
        F.io_row(pid=530, op="send", resource="tcp:10.77.0.2:4000", count=20,
                 nbytes=5_000_000, lat_ns=20_000)])
    tables = synth._tables(rows, [synth._proc(530, role="rank", rank=0)])
    top = run_rules(tables)[0]
    assert (top.category, top.code) == ("network-bandwidth", "NET-BW-NB")
    assert top.culprit["resource"] == "tcp:10.77.0.2:4000"
    assert top.impact_s == pytest.approx(9.5)
    assert top.evidence["would_block_share"] == pytest.approx(1000 / 3000, abs=1e-3)


def test_starvation_through_unix_sockets():
    # torch's DataLoader hands tensors over unix sockets (fd passing): the trainer's recv on
    # unix:... counts as waiting on its workers (0.7 s/interval -> 7.0 s), and the workers'
    # idle accept on their listener counts as nothing
    tables, _ = synth.data_starvation()
    io = tables["io"]
    rows = synth._ivs([
        F.io_row(pid=600, op="recv", kind="socket", resource="unix:/tmp/pymp-x/listener",
                 count=50, nbytes=50 * 64, lat_ns=14_000_000),
        F.io_row(pid=601, op="accept", kind="socket", resource="unix:?", count=5, nbytes=0,
                 lat_ns=190_000_000)])
    keep = io.filter(pa.compute.not_equal(io.column("kind"), "pipe"))
    io = pa.concat_tables([keep, F.io_table(rows)])
    found = run_rules({**tables, "io": io})
    assert found[0].category == "data-starvation" and found[0].impact_s == pytest.approx(7.0)
    assert all(f.category != "imbalance" for f in found)
