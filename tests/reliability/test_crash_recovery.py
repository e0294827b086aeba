"""Pure tier: crash consistency of captures (issue 16).

A writer killed at any moment (kill -9 of a real process at random times, including in the
middle of a batch and of a compaction; a crash injected at every file operation of a rotation
and of a recovery), a disk that fills during compaction (test_writer_faults.py), a final batch
or commit line cut short: afterwards every file reads, at most the interval in progress is
lost, no interval appears twice, and each interval is whole in every table.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from iolens.collector import capture as C
from iolens.collector import wal as W
from tests import factories as F

ROOT = Path(__file__).resolve().parents[2]


def _intervals(cap_dir: Path) -> list[int]:
    """Interval numbers present (from the health rows), in file order, duplicates kept."""
    cap = C.read_capture(cap_dir)
    return [(v.value - F.T0) // 10**9 for v in cap.tables["health"]["ts"]]


def _assert_consistent(cap_dir: Path, committed: int) -> C.Capture:
    """Every Parquet file whole; intervals 0..k-1 each exactly once with k in
    {committed, committed + 1} (one committed just before the kill may not have been
    reported); io rows only of those intervals, all of each."""
    for p in cap_dir.rglob("*.parquet"):
        pq.read_table(p)
    got = _intervals(cap_dir)
    assert len(got) == len(set(got)), f"duplicate intervals: {sorted(got)}"
    assert sorted(got) == list(range(len(got))), f"holes: {sorted(got)}"
    assert committed <= len(got) <= committed + 1, (committed, len(got))
    cap = C.read_capture(cap_dir)
    io_ts = pc.value_counts(cap.tables["io"]["ts"]).to_pylist()
    per = {(c["values"].value - F.T0) // 10**9: c["counts"] for c in io_ts}
    assert set(per) == set(got), "an interval is present in one table and not the other"
    assert len(set(per.values())) <= 1, f"an interval was cut: {per}"
    assert not list(cap_dir.rglob("*.commit")) and not list(cap_dir.rglob("*.arrows"))
    return cap


def _run_and_kill(cap_dir: Path, after_s: float, rows: int, rotate_s: float, fsync: str,
                  layout: str = "flat") -> int:
    """Start the writer child, SIGKILL it `after_s` after its first interval; returns how
    many intervals it had reported committed."""
    child = subprocess.Popen([sys.executable, "-m", "tests.reliability._crash_writer",
                              str(cap_dir), str(rows), str(rotate_s), fsync, layout],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        first = child.stdout.readline()
        assert first.strip() == "0", first
        time.sleep(after_s)
        child.send_signal(signal.SIGKILL)
        out = child.stdout.read()
    finally:
        child.kill()
        child.wait(10)
    return 1 + len(out.split())


def test_kill_9_at_random_moments_loses_at_most_the_interval_in_progress(tmp_path):
    rng = random.Random(16)
    for k, fsync in enumerate(("interval", "never", "interval")):
        cap_dir = tmp_path / f"cap{k}"
        # 3000 rows per interval: writes and compactions take long enough to be hit mid-way
        committed = _run_and_kill(cap_dir, rng.uniform(0.05, 0.6), 3000, 0.15, fsync)
        cap = _assert_consistent(cap_dir, committed)
        assert cap.ended_abruptly
        meta = json.loads((cap_dir / "capture.json").read_text())
        assert meta["complete"] is False
        assert meta["intervals"] >= len(_intervals(cap_dir)) - 1
    # and `iolens analyze` says so, with the count
    from iolens.analysis.analyze import analyze_path
    health = analyze_path(cap_dir, plots=False).health
    assert health["ended_abruptly"] and health["recovered_intervals"] == meta["recovered_intervals"]
    note = next(n for n in health["notes"] if "ended abruptly" in n)
    assert f"{meta['recovered_intervals']} interval(s)" in note or meta["recovered_intervals"] == 0


def _fork_crash_at(n: int, target, *, calls=("rename", "replace", "unlink")) -> bool:
    """Run `target()` in a forked child that dies (as by SIGKILL: no cleanup) at its n-th
    call of one of the file operations in `calls`. True when it got that far."""
    pid = os.fork()
    if pid == 0:
        count = [0]
        for name in calls:
            real = getattr(os, name)

            def hooked(*a, _real=real, **kw):
                count[0] += 1
                if count[0] == n:
                    os._exit(137)
                return _real(*a, **kw)
            setattr(os, name, hooked)
        try:
            target()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 137


def _writer_with_open_segment(cap_dir: Path, intervals: int,
                              background: bool = False) -> C.CaptureWriter:
    w = C.CaptureWriter(cap_dir, C.CaptureMeta(host=F.HOST), rotate_s=1e9, background=background)
    for i in range(intervals):
        ts = F.T0 + i * 10**9
        w.meta.intervals += 1
        w.write_tables(F.interval([F.io_row(pid=1), F.io_row(pid=2)], ts=ts).tables, ts)
    return w


@pytest.mark.parametrize("background", [False, True], ids=["inline", "background"])
def test_crash_at_every_step_of_a_compaction_then_recovery(tmp_path, background):
    """A kill after each rename/replace/unlink of a rotation (compaction, capture.json, log
    removal), then a kill at each step of the recovery of that: all 5 intervals, once."""
    n = 1
    while True:
        cap_dir = tmp_path / f"c{n}"
        w = _writer_with_open_segment(cap_dir, 5, background)
        hit = _fork_crash_at(n, lambda: (w.rotate(), w.settle()))
        F.crash(w)
        if not hit:
            break
        m = 1
        while _fork_crash_at(m, lambda: C.recover_capture(cap_dir)):  # crash the recovery too
            m += 1
        _assert_consistent(cap_dir, 5)
        rec = json.loads((cap_dir / "capture.json").read_text())
        assert rec["intervals"] == 5
        n += 1
    assert n > 5, "the rotation did fewer file operations than expected"


def test_truncated_final_batch_or_commit_line_costs_one_interval(tmp_path):
    for what in ("stream", "commit", "garbage"):
        for cut in (1, 7, 100):
            cap_dir = tmp_path / f"{what}{cut}"
            w = _writer_with_open_segment(cap_dir, 4)
            F.crash(w)
            if what == "stream":  # the io stream loses the end of its last batch
                p = next(cap_dir.rglob("io/*.arrows"))
                os.truncate(p, p.stat().st_size - cut)
            elif what == "commit":  # the last commit line is cut
                p = next(cap_dir.rglob("*.commit"))
                os.truncate(p, p.stat().st_size - cut)
            else:  # a torn last line: right length, wrong bytes (CRC mismatch)
                p = next(cap_dir.rglob("*.commit"))
                data = bytearray(p.read_bytes())
                data[-cut - 1] ^= 0x20
                p.write_bytes(bytes(data))
            cap = _assert_consistent(cap_dir, 3)
            assert len(_intervals(cap_dir)) == 3 and cap.recovered_intervals == 3


def test_live_segment_is_read_as_a_snapshot_and_left_alone(tmp_path):
    w = _writer_with_open_segment(tmp_path / "cap", 3)
    cap = C.read_capture(tmp_path / "cap")
    assert cap.tables["health"].num_rows == 3 and cap.recovered_intervals == 0
    assert list((tmp_path / "cap").rglob("*.arrows"))  # the writer's files are untouched
    ts = F.T0 + 3 * 10**9
    w.write_tables(F.interval([F.io_row()], ts=ts).tables, ts)
    w.close()
    assert C.read_capture(tmp_path / "cap").tables["health"].num_rows == 4


def test_capture_of_another_user_is_recovered_without_changing_it(tmp_path):
    w = _writer_with_open_segment(tmp_path / "cap", 3)
    F.crash(w)
    before = sorted(p.name for p in (tmp_path / "cap").rglob("*"))
    os.chown(tmp_path / "cap", 12345, 12345)
    try:
        cap = C.read_capture(tmp_path / "cap")
    finally:
        os.chown(tmp_path / "cap", os.geteuid(), os.getegid())
    assert cap.tables["health"].num_rows == 3 and cap.recovered_intervals == 3
    assert sorted(p.name for p in (tmp_path / "cap").rglob("*")) == before


def test_daemon_restart_compacts_the_dead_runs_segment_into_the_tree(tmp_path):
    root = tmp_path / "tree"
    committed = _run_and_kill(root, 0.3, 500, 1e9, "interval", layout="hive")
    host = root / f"host={F.HOST}"
    assert list(host.rglob("*.arrows")) and not list(host.rglob("*.parquet"))
    first_meta = next(host.glob("capture-*.json"))
    w = C.CaptureWriter(root, C.CaptureMeta(host=F.HOST), layout="hive", must_be_new=False)
    assert w.recovered is not None and w.recovered.intervals in (committed, committed + 1)
    assert not list(host.rglob("*.arrows")) and not list(host.rglob("*.commit"))
    parts = sorted(p.name for p in host.rglob("io/part-*.parquet"))
    assert parts == ["part-000000.parquet"] and w._seq == 1  # numbering continues after it
    assert json.loads(first_meta.read_text())["recovered_intervals"] == w.recovered.intervals
    w.close()
    got = _intervals(root)
    assert sorted(got) == list(range(len(got))) and len(got) in (committed, committed + 1)


def test_commit_log_lines_are_checked():
    line = W._line({"n": 1})
    assert W._parse_line(line) == {"n": 1}
    assert W._parse_line(line[:-1]) is None  # cut before its newline
    assert W._parse_line(line.replace(b'"n"', b'"m"')) is None  # CRC mismatch
    assert W._parse_line(b"\n") is None


def test_replay_and_export_read_a_crashed_capture(tmp_path):
    """`top --replay` and `export` go through the same recovery: a crashed capture owned by
    someone else is replayed and exported whole, with the abrupt end said, and not changed."""
    from iolens.analysis.export.cli import main as export_main
    from iolens.collector.sources import ReplaySource
    from iolens.tui.app import _source_warnings

    w = _writer_with_open_segment(tmp_path / "cap", 4)
    F.crash(w)
    os.chown(tmp_path / "cap", 12345, 12345)
    try:
        src = ReplaySource(str(tmp_path / "cap"))
        assert src.position == (0, 4)
        assert any("4 interval(s)" in line for line in _source_warnings(src))
        assert export_main([str(tmp_path / "cap"), "--csv", str(tmp_path / "csv")]) == 0
    finally:
        os.chown(tmp_path / "cap", os.geteuid(), os.getegid())
    assert len((tmp_path / "csv" / "health.csv").read_text().splitlines()) == 1 + 4
    assert list((tmp_path / "cap").rglob("*.arrows"))  # left as it was


def test_kill_during_a_background_compaction_recovers_both_segments(tmp_path, monkeypatch):
    """Killed while segment 0 is being compacted and segment 1 is open: both are recovered,
    and capture.json counts each once."""
    cap_dir = tmp_path / "cap"
    pid = os.fork()
    if pid == 0:
        try:
            monkeypatch.setattr(W, "compact", lambda *a, **k: time.sleep(60))  # never done
            w = _writer_with_open_segment(cap_dir, 3, background=True)
            w.rotate()  # segment 0 goes to the (stuck) compaction thread
            for i in range(3, 5):
                ts = F.T0 + i * 10**9
                w.meta.intervals += 1
                w.write_tables(F.interval([F.io_row(pid=1), F.io_row(pid=2)], ts=ts).tables, ts)
        finally:
            os._exit(137)
    os.waitpid(pid, 0)
    assert len(list(cap_dir.glob("part-*.commit"))) == 2
    _assert_consistent(cap_dir, 5)
    meta = json.loads((cap_dir / "capture.json").read_text())
    assert meta["recovered_segments"] == {"0": 3, "1": 2} and meta["recovered_intervals"] == 5
    C.recover_capture(cap_dir)  # again: nothing changes
    assert json.loads((cap_dir / "capture.json").read_text()) == meta
