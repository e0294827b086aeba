"""Real BPF: the daemon writes a hive tree, survives kill -9, and a restart resumes into new
files without touching the old ones."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iolens.collector.capture import read_capture

pytestmark = pytest.mark.bpf


def _start(cfg: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "iolens.collector.cli", "record", "--daemon",
                             "--config", str(cfg)], stderr=subprocess.PIPE, text=True)


def _wait_intervals(status: Path, n: int, after: float, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            st = json.loads(status.read_text())
            if st["intervals"] >= n and st["started"] >= after:
                return st
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise AssertionError("daemon did not report intervals in time")


def _complete(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("part-*.parquet")}


def _pending(root: Path) -> int:
    """Intervals committed in unfinished write-ahead segments under a tree (not those whose
    background compaction had finished: they are in Parquet files already)."""
    from iolens.collector import wal as W

    n = 0
    for log in root.rglob("part-*.commit"):
        _header, records = W.read_commits(log)
        if not any(r.get("compacted") for r in records):
            n += max([0] + [r.get("n", 0) for r in records])
    return n


def test_crash_and_restart_keep_old_files(tmp_path):
    root, status = tmp_path / "tree", tmp_path / "status.json"
    cfg = tmp_path / "d.toml"
    cfg.write_text(f'root = "{root}"\nstatus_file = "{status}"\nrotate_s = 1.0\n'
                   'interval_s = 0.5\ndisable = ["gpu"]\n')
    t0 = time.time()
    d1 = _start(cfg)
    try:
        st = _wait_intervals(status, 4, t0)
        assert st["state"] == "writing" and "syscalls" in st["probes_attached"]
    finally:
        d1.send_signal(signal.SIGKILL)
        d1.wait(30)
    before = _complete(root)
    assert before, "no complete segment before the crash"
    pending = _pending(root)  # intervals the killed run left in its open segment
    t1 = time.time()
    d2 = _start(cfg)
    try:
        _wait_intervals(status, 4, t1)
    finally:
        d2.send_signal(signal.SIGTERM)
        assert d2.wait(60) == 0, d2.stderr.read()
    after = _complete(root)
    assert all(after.get(p) == h for p, h in before.items()), "old files changed"
    assert set(after) - set(before), "restart wrote no new files"
    host_dirs = list(root.glob("host=*"))
    assert len(host_dirs) == 1 and list(host_dirs[0].glob("date=*/io/part-*.parquet"))
    metas = sorted(host_dirs[0].glob("capture-*.json"))
    assert len(metas) == 2
    runs = [json.loads(m.read_text()) for m in metas]
    assert [r["complete"] for r in runs].count(True) == 1
    # the restart compacted the killed run's open segment into the tree and counted it there:
    # every interval the killed run reported is readable
    killed = next(r for r in runs if not r["complete"])
    assert killed["intervals"] >= st["intervals"] and killed["recovered_intervals"] == pending
    assert not list(root.rglob("*.arrows")) and not list(root.rglob("*.commit"))
    cap = read_capture(root)
    assert cap.tables["io"].num_rows > 0 and cap.ended_abruptly  # the first run was killed
    ts = cap.tables["health"]["ts"].to_pylist()
    assert len(ts) == len(set(ts)) == sum(r["intervals"] for r in runs), "lost or duplicated"
