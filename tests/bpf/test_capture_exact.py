"""Real BPF, as root: `iolens record -- CMD` on a workload with known I/O gives exact counts
(and, for the causal rules, exact per-thread waits in poll/epoll_wait/select and the CPU time
of a spinning thread).

The capture is read with plain pyarrow (no iolens import in the checks), as other tools would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

pytestmark = pytest.mark.bpf
WORKLOAD = Path(__file__).resolve().parent.parent / "workloads" / "exact_io.py"
IOLENS = [sys.executable, "-m", "iolens.collector.cli"]


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    base = tmp_path_factory.mktemp("exact")
    out, truth = base / "cap", base / "truth.json"
    proc = subprocess.run([*IOLENS, "record", "-q", "-o", str(out), "--",
                           sys.executable, str(WORKLOAD), str(base / "work"), str(truth)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    io = ds.dataset(str(out / "io"), format="parquet").to_table()
    return out, io, json.loads(truth.read_text())


def totals(io, pid: int, op: str, resource: str | None) -> tuple[int, int, int]:
    mask = pc.and_(pc.equal(io["pid"], pid), pc.equal(io["op"], op))
    if resource is not None:
        mask = pc.and_(mask, pc.equal(io["resource"], resource))
    t = io.filter(mask)
    return (pc.sum(t["count"]).as_py() or 0, pc.sum(t["bytes"]).as_py() or 0,
            pc.sum(t["errors"]).as_py() or 0)


def test_main_process_files_exact(capture):
    _, io, truth = capture
    pid = truth["main"]
    for path, ops in truth["files"].items():
        for op, (count, nbytes) in ops.items():
            assert totals(io, pid, op, path)[:2] == (count, nbytes), (path, op)


def test_failed_read_is_an_error_not_bytes(capture):
    _, io, truth = capture
    t = io.filter(pc.and_(pc.equal(io["pid"], truth["main"]), pc.equal(io["fd"], 999)))
    assert pc.sum(t["errors"]).as_py() == truth["bad_fd_errors"]
    assert pc.sum(t["bytes"]).as_py() == 0
    assert set(t["op"].to_pylist()) == {"read"}


def test_socket_io_counted_as_network_against_peer(capture):
    _, io, truth = capture
    for side in ("client", "server"):
        s = truth["net"][side]
        for op in ("send", "recv"):
            count, nbytes, errors = totals(io, s["pid"], op, s["peer"])
            assert (count, nbytes, errors) == (s[op][0], s[op][1], 0), (side, op)
        rows = io.filter(pc.and_(pc.equal(io["pid"], s["pid"]),
                                 pc.equal(io["resource"], s["peer"])))
        assert set(rows["kind"].to_pylist()) == {"socket"}
        assert not set(rows["op"].to_pylist()) & {"read", "write"}
        # read()/write() on the socket are send/recv too, whichever syscall made them
        assert {"read", "write", "sendto", "recvfrom"} <= set(rows["syscall"].to_pylist())


def test_workers_attributed_to_their_own_pid_and_parent(capture):
    out, io, truth = capture
    procs = ds.dataset(str(out / "procs"), format="parquet").to_table()
    for w in truth["workers"]:
        assert totals(io, w["pid"], "read", w["file"])[:2] == tuple(w["read"])
        # nobody else read that file (the parent created it: writes, lseek, fstat)
        others = io.filter(pc.and_(pc.equal(io["resource"], w["file"]),
                                   pc.not_equal(io["pid"], w["pid"])))
        assert "read" not in set(others["op"].to_pylist())
        ppids = procs.filter(pc.equal(procs["pid"], w["pid"]))["ppid"].to_pylist()
        assert truth["main"] in ppids


def test_capture_metadata_and_layout(capture):
    out, io, truth = capture
    meta = json.loads((out / "capture.json").read_text())
    assert meta["complete"] is True and meta["exit_code"] == 0
    assert meta["schema_version"] == 1 and "syscalls" in meta["probes_attached"]
    assert not list(out.rglob("*.tmp"))
    schema_meta = ds.dataset(str(out / "io"), format="parquet").schema.metadata
    assert schema_meta[b"iolens.schema_version"] == b"1"
    assert io.schema.field("lat_hist").type.value_type.bit_width == 64


# --- issue 15: waits for readiness and CPU time, the inputs of the causal rules ----------------

def test_poll_waits_per_thread_exact(capture):
    _, io, truth = capture
    w = truth["waits"]
    polls = io.filter(pc.equal(io["op"], "poll")).to_pylist()
    by_sys: dict[str, list[dict]] = {}
    for r in polls:
        if r["tid"] == w["main"]:
            by_sys.setdefault(r["syscall"], []).append(r)
    count = {s: sum(r["count"] for r in rs) for s, rs in by_sys.items()}
    assert count.get("poll") == 6 and count.get("epoll_wait") == 4
    assert count.get("pselect6", 0) + count.get("select", 0) == 3
    waited = {s: sum(r["lat_sum_ns"] for r in rs) / 1e9 for s, rs in by_sys.items()}
    assert waited["poll"] >= 0.29 and waited["epoll_wait"] >= 0.19
    # poll watched one fd: the socket is named
    assert {r["kind"] for r in by_sys["poll"]} == {"socket"}
    assert all(r["resource"].startswith("unix:") for r in by_sys["poll"])


def test_cpu_time_per_thread(capture):
    out, _, truth = capture
    w = truth["waits"]
    cpu = ds.dataset(str(out / "cpu"), format="parquet").to_table()
    per: dict[int, float] = {}
    for r in cpu.to_pylist():
        per[r["tid"]] = per.get(r["tid"], 0) + r["cpu_ns"] / 1e9
    assert per.get(w["spinner"], 0) >= 0.7
    assert per.get(w["main"], 0) < 0.5
