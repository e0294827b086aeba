"""Rules that follow the wait (issue 15), on synthetic captures with golden answers computed
here from the builders' numbers: loopback waits credited to the busy server, the straggler
rank from CPU time, the slow link's common endpoint and its kind, the slow storage path, ranks
recognised by behaviour; and no high finding on the healthy versions of each."""

from __future__ import annotations

import pyarrow as pa
import pytest
from iolens.analysis.rules import run_rules

from tests import factories as F
from tests.analysis import synth

N = synth.N


def _cpu(tables, per_pid: dict[int, float]) -> dict:
    """A cpu table: each pid on a CPU `share` of every 1 s interval (one thread)."""
    pids = sorted(per_pid)
    return synth.with_table(tables, "cpu", {
        "ts": [F.T0 + i * 10**9 for i in range(N) for _ in pids],
        "host": ["testhost"] * N * len(pids), "pid": pids * N, "tid": pids * N,
        "cpu_ns": [int(per_pid[p] * 1e9) for _ in range(N) for p in pids]})


def _tcp(tables, conns: list[tuple[int | None, str, str, float, int, int]]) -> dict:
    """A tcp table: (pid, local, peer, rtt_ms, retransmits, bytes_sent per interval)."""
    rows = [(F.T0 + i * 10**9, *c) for i in range(N) for c in conns]
    return synth.with_table(tables, "tcp", {
        "ts": [r[0] for r in rows], "host": ["testhost"] * len(rows),
        "pid": [r[1] for r in rows], "local": [r[2] for r in rows],
        "resource": [f"tcp:{r[3]}" for r in rows], "rtt_us": [r[4] * 1e3 for r in rows],
        "retransmits": [r[5] for r in rows], "bytes_sent": [r[6] for r in rows],
        "bytes_received": [r[6] for r in rows]})


# --- loopback: a client waiting on a local server ----------------------------------------------

def _loopback(server_fsync_ns: int) -> dict:
    """Client 901 recv-waits 0.9 s/interval on 127.0.0.1:7000, owned by server 900, which
    fsyncs `server_fsync_ns` per interval (100 calls)."""
    rows = synth._ivs([
        F.io_row(pid=901, op="connect", resource="tcp:127.0.0.1:7000", count=1, nbytes=0,
                 lat_ns=50_000),
        F.io_row(pid=901, op="recv", resource="tcp:127.0.0.1:7000", count=100,
                 nbytes=100 << 18, lat_ns=9_000_000),
        F.io_row(pid=900, op="accept", resource="tcp:?", count=1, nbytes=0, lat_ns=1_000),
        F.io_row(pid=900, op="recv", resource="tcp:127.0.0.1:45000", count=100,
                 nbytes=100 << 10, lat_ns=1_000_000),
        F.io_row(pid=900, op="fsync", resource="/var/db/journal", count=100, nbytes=0,
                 lat_ns=server_fsync_ns // 100)])
    tables = synth._tables(rows, [synth._proc(900), synth._proc(901)])
    return _tcp(tables, [(900, "127.0.0.1:7000", "127.0.0.1:45000", 0.05, 0, 1 << 20),
                         (901, "127.0.0.1:45000", "127.0.0.1:7000", 0.05, 0, 1 << 20)])


def test_loopback_wait_is_credited_to_the_busy_server_not_a_link():
    # the server spends 0.8 s/interval in fsync (8 s); its client waited 9 s for replies
    found = run_rules(_loopback(800_000_000))
    top = found[0]
    assert (top.category, top.culprit["pid"]) == ("sync-stall", 900)
    # the client's wait (recv 9 s + connect 0.5 ms), credited here
    assert top.impact_s == pytest.approx(9.0005)
    assert top.evidence["waited_on_by"][0]["pid"] == 901
    assert not [f for f in found if f.category.startswith("network")]


def test_idle_loopback_server_gets_nothing_high():
    # a server that answers from memory, waiting for a computing client: nothing to find
    rows = synth._ivs([
        F.io_row(pid=901, op="connect", resource="tcp:127.0.0.1:7000", count=1, nbytes=0,
                 lat_ns=50_000),
        F.io_row(pid=901, op="recv", resource="tcp:127.0.0.1:7000", count=50,
                 nbytes=50 << 18, lat_ns=400_000),
        F.io_row(pid=900, op="accept", resource="tcp:?", count=1, nbytes=0, lat_ns=1_000),
        F.io_row(pid=900, op="recv", resource="tcp:127.0.0.1:45000", count=50,
                 nbytes=50 << 10, lat_ns=19_000_000)])
    tables = synth._tables(rows, [synth._proc(900), synth._proc(901)])
    tables = _tcp(tables, [(900, "127.0.0.1:7000", "127.0.0.1:45000", 0.05, 0, 1 << 20),
                           (901, "127.0.0.1:45000", "127.0.0.1:7000", 0.05, 0, 1 << 20)])
    assert not [f for f in run_rules(tables) if f.severity == "high"]


# --- ranks: straggler vs healthy -----------------------------------------------------------------

def _ranks(cpu_share: dict[int, float], rtt_ms: dict[tuple[int, int], float],
           nbytes: int = 1 << 20, retrans: int = 0) -> dict:
    """3 ranks (pids 950-952 at 10.9.0.1-3) in a mesh over non-blocking sockets, each on a
    CPU `cpu_share` of the time; rtt_ms per connection (lower pid dials the higher)."""
    rows, conns = [], []
    for (a, b), rtt in rtt_ms.items():
        ea, eb = f"10.9.0.{a - 949}:{40000 + b}", f"10.9.0.{b - 949}:29600"
        rows += [F.io_row(pid=a, op="connect", resource=f"tcp:{eb}", count=1, nbytes=0),
                 F.io_row(pid=a, op="recv", resource=f"tcp:{eb}", count=200, nbytes=nbytes,
                          lat_ns=2_000, errors=100),
                 F.io_row(pid=b, op="recv", resource=f"tcp:{ea}", count=200, nbytes=nbytes,
                          lat_ns=2_000, errors=100)]
        conns += [(a, ea, eb, rtt, retrans, nbytes), (b, eb, ea, rtt, retrans, nbytes)]
    procs = [synth._proc(950 + r, role="rank", rank=r) for r in range(3)]
    tables = synth._tables(synth._ivs(rows), procs)
    return _cpu(_tcp(tables, conns), cpu_share)


HEALTHY_RTT = {(950, 951): 0.2, (950, 952): 0.25, (951, 952): 0.2}


def test_straggler_is_the_rank_that_computes_while_the_others_wait():
    # rank 1 on a CPU 90% of the time, ranks 0 and 2 20%: impact (0.9 - 0.2) x 10 s = 7 s
    found = run_rules(_ranks({950: 0.2, 951: 0.9, 952: 0.2}, HEALTHY_RTT))
    top = found[0]
    assert (top.code, top.category, top.culprit["pid"]) == ("WL-STRAGGLER", "imbalance", 951)
    assert top.impact_s == pytest.approx(7.0)
    assert top.evidence["rank"] == 1
    assert not [f for f in found if f.category.startswith("network")]


def test_healthy_ranks_get_nothing_high():
    found = run_rules(_ranks({950: 0.6, 951: 0.65, 952: 0.6}, HEALTHY_RTT))
    assert not [f for f in found if f.severity == "high"]


def test_slow_link_names_the_common_endpoint_latency():
    # rank 1's two connections at 30 ms, the other at 0.2 ms; 64 KiB/s each way: ~4 KiB in
    # flight per round trip -> latency. Ranks on a CPU 10%: impact = 10 s x 0.9 = 9 s
    rtt = {(950, 951): 30.0, (950, 952): 0.2, (951, 952): 30.0}
    found = run_rules(_ranks({950: 0.1, 951: 0.1, 952: 0.1}, rtt, nbytes=64 << 10))
    top = found[0]
    assert (top.code, top.category) == ("NET-LINK-LAT", "network-latency")
    assert top.culprit["resource"] == "tcp:10.9.0.2:*" and top.culprit["pid"] == 951
    assert top.evidence["bad_connections"] == 2
    assert top.impact_s == pytest.approx(9.0)


def test_slow_link_bandwidth_when_the_window_is_full():
    # rank 2's connections at 35 ms moving 8 MiB/s (x2 directions): ~587 KiB in flight
    rtt = {(950, 951): 0.2, (950, 952): 35.0, (951, 952): 35.0}
    found = run_rules(_ranks({950: 0.1, 951: 0.1, 952: 0.1}, rtt, nbytes=8 << 20))
    top = found[0]
    assert (top.code, top.category) == ("NET-LINK-BW", "network-bandwidth")
    assert top.culprit["resource"] == "tcp:10.9.0.3:*" and top.culprit["pid"] == 952


def test_lossy_link():
    # every connection of rank 0 retransmits 100 of ~724 segments per interval, RTT healthy
    found = run_rules(_ranks({950: 0.1, 951: 0.1, 952: 0.1}, HEALTHY_RTT, retrans=100))
    top = [f for f in found if f.code == "NET-LINK-LOSS"][0]
    assert top.category == "network-loss"


# --- a slow storage path vs given more work ------------------------------------------------------

def test_same_data_slower_is_a_slow_path_not_imbalance():
    # 4 readers of 10 MiB per interval: 10 ms/MiB, reader 703 60 ms/MiB. Excess: 6.0 s -
    # 100 MiB x 10 ms = 5.0 s
    rows = []
    for r in range(4):
        rows.append(F.io_row(pid=700 + r, op="read", resource=f"/data/shard{r}", count=10,
                             nbytes=10 << 20, lat_ns=60_000_000 if r == 3 else 10_000_000,
                             file_class="dataset"))
    tables = synth._tables(synth._ivs(rows), [synth._proc(700 + r) for r in range(4)])
    tables = synth.with_table(tables, "block", {
        "ts": [F.T0], "host": ["testhost"], "device": ["sda"], "op": ["read"], "count": [400],
        "bytes": [400 << 20], "lat_sum_ns": [4_000_000_000], "lat_max_ns": [20_000_000],
        "lat_hist": [[0] * 23 + [400]]})
    found = run_rules(tables)
    top = found[0]
    assert (top.code, top.category, top.culprit["pid"]) == ("IO-SLOWPATH", "slow-device", 703)
    assert top.impact_s == pytest.approx(5.0)
    assert top.evidence["ms_per_mib"] == 60.0 and top.evidence["peers_ms_per_mib"] == 10.0
    assert top.evidence["device_ms_per_mib"] == 10.0  # the device itself is not the slow part
    assert top.evidence["where"].startswith("before the device")
    assert not [f for f in found if f.category == "imbalance"]


# --- ranks by behaviour ------------------------------------------------------------------------

def test_ranks_recognised_by_their_mesh_without_rank_in_the_environment():
    tables = _ranks({950: 0.2, 951: 0.9, 952: 0.2}, HEALTHY_RTT)
    procs = tables["procs"]
    plain = [synth._proc(950 + r) for r in range(3)]  # no role, no rank
    tables["procs"] = F.proc_table(plain)
    assert procs.num_rows == 3
    # all three dial the store at 10.9.0.1:29500 too
    extra = synth._ivs([F.io_row(pid=950 + r, op="connect", resource="tcp:10.9.0.1:29500",
                                 count=1, nbytes=0) for r in range(3)])
    tables["io"] = pa.concat_tables([tables["io"], F.io_table(extra)])
    top = run_rules(tables)[0]
    assert (top.code, top.culprit["pid"], top.culprit["role"]) == ("WL-STRAGGLER", 951, "rank")


def test_worker_waiting_on_its_parents_pipe_is_idle_not_a_peer_wait():
    # DataLoader index queue: worker 602 waits 0.9 s/interval reading the pipe its parent
    # (trainer 600, on a CPU 90%) writes: waiting for work, nothing to report
    rows = synth._ivs([
        F.io_row(pid=602, op="read", kind="pipe", resource="pipe:[77]", count=10, nbytes=80,
                 lat_ns=90_000_000),
        F.io_row(pid=600, op="write", kind="pipe", resource="pipe:[77]", count=10, nbytes=80,
                 lat_ns=5_000)])
    tables = synth._tables(rows, [synth._proc(600, role="trainer"),
                                  synth._proc(602, "pt_data_worker", "dataloader", 600)])
    found = run_rules(_cpu(tables, {600: 0.9, 602: 0.05}))
    assert not [f for f in found if f.code == "WAIT-PEER-CPU"]
    # the same wait on an unrelated process that computes is one
    tables = synth._tables(rows, [synth._proc(600), synth._proc(602, ppid=1)])
    found = run_rules(_cpu(tables, {600: 0.9, 602: 0.05}))
    f = [x for x in found if x.code == "WAIT-PEER-CPU"][0]
    assert (f.culprit["pid"], f.impact_s) == (600, pytest.approx(9.0))
