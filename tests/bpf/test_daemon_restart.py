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
    assert [json.loads(m.read_text())["complete"] for m in metas].count(True) == 1
    cap = read_capture(root)
    assert cap.tables["io"].num_rows > 0 and cap.ended_abruptly  # the first run was killed
