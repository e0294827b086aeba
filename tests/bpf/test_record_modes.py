"""Real BPF: `record -p PID` follows a running process and its later children;
`record -d S` (whole system) sees other processes but never iolens itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

pytestmark = pytest.mark.bpf
IOLENS = [sys.executable, "-m", "iolens.collector.cli"]

# Waits for a go-file, then reads its data file 7 times and has a child read it 11 times.
WORKLOAD = r"""
import os, sys, time
go, data = sys.argv[1], sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.05)
def reads(n):
    for _ in range(n):
        with open(data, "rb") as f:
            f.read()
reads(7)
pid = os.fork()
if pid == 0:
    reads(11)
    print(os.getpid(), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
time.sleep(0.3)
"""


def _read_rows(out, path):
    io = ds.dataset(str(out / "io"), format="parquet").to_table()
    return io.filter(pc.and_(pc.equal(io["resource"], path), pc.equal(io["op"], "read")))


def test_attach_to_running_pid_follows_descendants(tmp_path):
    data, go = tmp_path / "data.bin", tmp_path / "go"
    data.write_bytes(os.urandom(5003))
    work = subprocess.Popen([sys.executable, "-c", WORKLOAD, str(go), str(data)],
                            stdout=subprocess.PIPE, text=True)
    out = tmp_path / "cap"
    rec = subprocess.Popen([*IOLENS, "record", "-q", "-o", str(out), "-p", str(work.pid),
                            "-d", "30"], stderr=subprocess.PIPE, text=True)
    try:
        _wait_attached(out)
        go.touch()
        child = int(work.stdout.readline())
        work.wait(30)
        time.sleep(1.5)
    finally:
        rec.terminate()
        rec.wait(30)
    assert rec.returncode == 0, rec.stderr.read()
    rows = _read_rows(out, str(data))
    by_pid = {p: 0 for p in (work.pid, child)}
    for p, c in zip(rows["pid"].to_pylist(), rows["count"].to_pylist()):
        by_pid[p] = by_pid.get(p, 0) + c
    # each open+read() to EOF is 2 reads (data, then the 0-byte EOF read)
    assert by_pid[work.pid] == 7 * 2 and by_pid[child] == 11 * 2
    assert set(by_pid) == {work.pid, child}


def test_whole_system_sees_others_but_not_itself(tmp_path):
    data, go = tmp_path / "data.bin", tmp_path / "go"
    data.write_bytes(os.urandom(4099))
    out = tmp_path / "cap"
    rec = subprocess.Popen([*IOLENS, "record", "-q", "-o", str(out), "-d", "30"],
                           stderr=subprocess.PIPE, text=True)
    try:
        _wait_attached(out)
        go.touch()
        work = subprocess.run([sys.executable, "-c", WORKLOAD, str(go), str(data)],
                              capture_output=True, timeout=60)
        assert work.returncode == 0
        time.sleep(1.5)
    finally:
        rec.send_signal(2)
        rec.wait(30)
    assert rec.returncode == 0, rec.stderr.read()
    rows = _read_rows(out, str(data))
    assert sum(rows["count"].to_pylist()) == 18 * 2
    io = ds.dataset(str(out / "io"), format="parquet").to_table()
    assert rec.pid not in set(io["pid"].to_pylist())
    meta = json.loads((out / "capture.json").read_text())
    assert meta["mode"] == "system" and meta["complete"]


def _wait_attached(out, timeout=60.0):
    """The capture's first health row exists once the probes run (an interval was drained)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (out / "capture.json").exists():
            meta = json.loads((out / "capture.json").read_text())
            if "syscalls" in meta.get("probes_attached", []):
                return
        time.sleep(0.1)
    raise AssertionError("probes did not attach in time")
