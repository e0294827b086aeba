"""Real BPF, as root: documented `iolens record` options, each checked against a workload's
own count of its calls (as tests/bpf/test_capture_exact.py does for the defaults).

Two recordings (compiling the probes is most of the time):
- `--no-latency --rotate-mb 0.001 -i 0.2 --disable block --
  sh -c 'exact_io.py; sleep 1.5; exit 3'` (the sleep's own start-up I/O comes intervals later):
  counts and bytes per process and file stay exact without latency; the io table is split
  into several complete files by size, losing nothing; `block` is absent and recorded as
  disabled; `record` exits with the command's code 3.
- `--per-thread --layout hive -- threads_io.py`: every thread's ops are under its own tid,
  exactly, in a host=/date= tree.
And exit code 69 when the probes cannot load (BCC's loader made to refuse, in a subprocess).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.bpf
WORKLOADS = Path(__file__).resolve().parents[1] / "workloads"
IOLENS = [sys.executable, "-m", "iolens.collector.cli"]
ROTATE_MB = 0.001  # ~1 KiB: any interval's io rows pass it, so each one closes a file


def _record(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*IOLENS, "record", "-q", *args], capture_output=True, text=True,
                          timeout=240)


def _read(files: list[Path]) -> pa.Table:
    """Complete Parquet files read one by one with plain pyarrow."""
    assert files, "no files"
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")


def _totals(io: pa.Table, **match) -> tuple[int, int]:
    mask = None
    for col, want in match.items():
        m = pc.equal(io[col], want)
        mask = m if mask is None else pc.and_(mask, m)
    t = io.filter(mask)
    return pc.sum(t["count"]).as_py() or 0, pc.sum(t["bytes"]).as_py() or 0


# --- --no-latency, --rotate-mb, --disable, the command's exit code ------------------------------

@pytest.fixture(scope="module")
def no_latency(tmp_path_factory):
    base = tmp_path_factory.mktemp("nolat")
    cap, truth = base / "cap", base / "truth.json"
    proc = _record("-o", str(cap), "-i", "0.2", "--no-latency", "--rotate-mb", str(ROTATE_MB),
                   "--disable", "block", "--",
                   "sh", "-c", '"$0" "$@"; sleep 1.5; exit 3', sys.executable,
                   str(WORKLOADS / "exact_io.py"), str(base / "work"), str(truth))
    return proc, cap, json.loads(truth.read_text())


def test_record_exits_with_the_commands_code(no_latency):
    proc, cap, _ = no_latency
    assert proc.returncode == 3, proc.stderr
    meta = json.loads((cap / "capture.json").read_text())
    assert meta["exit_code"] == 3 and meta["complete"] is True


def test_no_latency_counts_and_bytes_exact(no_latency):
    _, cap, truth = no_latency
    io = _read(sorted(cap.glob("io/part-*.parquet")))
    for path, ops in truth["files"].items():
        for op, (count, nbytes) in ops.items():
            assert _totals(io, pid=truth["main"], op=op, resource=path) == (count, nbytes), \
                (path, op)
    for w in truth["workers"]:
        assert _totals(io, pid=w["pid"], op="read", resource=w["file"]) == tuple(w["read"])
    # no latency was measured, and none is made up
    assert pc.sum(io["lat_sum_ns"]).as_py() == 0 and pc.max(io["lat_max_ns"]).as_py() == 0


def test_rotate_mb_splits_the_io_table_into_whole_files_losing_nothing(no_latency):
    _, cap, truth = no_latency
    parts = sorted(cap.glob("io/part-*.parquet"))
    health = _read(sorted(cap.glob("health/part-*.parquet")))
    # shorter than the default --rotate (30 s): every split is --rotate-mb's
    assert pc.sum(health["interval_s"]).as_py() < 30
    assert len(parts) >= 2
    tables = [pq.read_table(p) for p in parts]
    seen: set[int] = set()
    for t in tables:  # an interval's rows are never split across files
        ts = set(t["ts"].cast(pa.int64()).to_pylist())
        assert not ts & seen
        seen |= ts
    for p in parts[:-1]:  # each file but the last was closed for passing the size
        assert p.stat().st_size >= ROTATE_MB * 2**20, p
    meta = json.loads((cap / "capture.json").read_text())
    assert sum(t.num_rows for t in tables) == meta["rows"]["io"]


def test_disabled_probe_is_absent_and_recorded_as_disabled(no_latency):
    _, cap, _ = no_latency
    meta = json.loads((cap / "capture.json").read_text())
    assert meta["probes_skipped"]["block"] == "disabled by option"
    assert "block" not in meta["probes_attached"] and "syscalls" in meta["probes_attached"]
    assert not list(cap.glob("block/*.parquet"))


# --- --per-thread, --layout hive --------------------------------------------------------------

@pytest.fixture(scope="module")
def per_thread_hive(tmp_path_factory):
    base = tmp_path_factory.mktemp("thr")
    root, truth = base / "tree", base / "truth.json"
    proc = _record("-o", str(root), "--per-thread", "--layout", "hive", "--",
                   sys.executable, str(WORKLOADS / "threads_io.py"), str(base / "work"),
                   str(truth))
    assert proc.returncode == 0, proc.stderr
    return root, json.loads(truth.read_text())


def test_layout_hive_from_the_command_line(per_thread_hive):
    root, _ = per_thread_hive
    metas = list(root.glob("host=*/capture-*.json"))
    assert len(metas) == 1
    meta = json.loads(metas[0].read_text())
    host_dir = metas[0].parent
    assert host_dir.name == f"host={meta['host']}" and meta["complete"] is True
    io_files = list(root.rglob("io/part-*.parquet"))
    assert io_files and not list(root.glob("io"))  # nothing in the flat layout
    for f in io_files:
        rel = f.relative_to(host_dir).parts
        assert len(rel) == 3 and re.fullmatch(r"date=\d{4}-\d{2}-\d{2}", rel[0]), rel
        assert rel[1] == "io"
    assert "block" in meta["probes_attached"], meta["probes_skipped"]  # not disabled here


def test_per_thread_counts_each_thread_exactly(per_thread_hive):
    root, truth = per_thread_hive
    io = _read(sorted(root.rglob("io/part-*.parquet")))
    pid = truth["pid"]
    assert len({t["tid"] for t in truth["threads"]}) == len(truth["threads"]) == 4
    for t in truth["threads"]:
        for op in ("write", "read"):
            assert _totals(io, pid=pid, tid=t["tid"], op=op, resource=t["path"]) == \
                tuple(t[op]), (t, op)
        # no other thread is credited with this file
        rows = io.filter(pc.equal(io["resource"], t["path"]))
        assert set(rows["tid"].to_pylist()) == {t["tid"]}, t["path"]


# --- exit code 69 -------------------------------------------------------------------------------

# `iolens record` with BCC's loader refusing every program, as a kernel that cannot load them
# would (the error text is BCC's own).
REFUSING = textwrap.dedent("""
    import sys
    import bcc

    class Refused(bcc.BPF):
        def __init__(self, *args, **kwargs):
            raise Exception("Failed to load BPF program b'sys_enter_read': Operation not permitted")

    bcc.BPF = Refused
    from iolens.collector.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_probes_that_cannot_load_exit_69_and_the_command_never_starts(tmp_path):
    cap, marker = tmp_path / "cap", tmp_path / "ran"
    proc = subprocess.run([sys.executable, "-c", REFUSING, "record", "-q", "-o", str(cap), "--",
                           "touch", str(marker)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert proc.returncode == 69, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "probes failed to load" in lines[0] and "Traceback" not in proc.stderr, lines
    assert not marker.exists()  # the command waits for the probes; it was never started
    assert json.loads((cap / "capture.json").read_text())["complete"] is False
