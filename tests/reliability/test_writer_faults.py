"""Pure tier: the capture writer when the disk fails under it, and record's input checks.

The real thing (a full tmpfs under a real recording) is tests/bpf/test_faults.py; here the
failure is injected at the file object so every step can be checked without root.
"""

from __future__ import annotations

import errno
import gc
import json
import math

import pyarrow.parquet as pq
import pytest

from iolens.collector import capture as C
from iolens.collector import wal as W
from iolens.collector.options import RecordOptions
from iolens.collector.record import RecordArgs, UsageError, validate
from tests import factories as F


class _FullDisk:
    """A file object that fails with ENOSPC once `budget` bytes have been written."""

    budget = 0

    def __init__(self, raw) -> None:
        self.raw = raw

    def write(self, b) -> int:
        if _FullDisk.budget - len(b) < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        _FullDisk.budget -= len(b)
        return self.raw.write(b)

    def __getattr__(self, name):
        return getattr(self.raw, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.raw.close()


@pytest.fixture
def full_disk(monkeypatch):
    real = W.open_private

    def opener(path, mode="wb"):
        f = real(path, mode)
        return _FullDisk(f) if "b" in mode else f

    monkeypatch.setattr(W, "open_private", opener)
    monkeypatch.setattr(W, "open_native", opener)  # the streams' and Parquet files' opener
    return _FullDisk


def test_disk_full_keeps_complete_files_abandons_open_ones_quietly(tmp_path, full_disk, capsys):
    full_disk.budget = 10**9
    w = C.CaptureWriter(tmp_path / "cap", C.CaptureMeta(), rotate_s=0)
    for i in range(3):  # three complete segments
        w.meta.intervals += 1
        w.write_tables(F.interval([F.io_row(count=i + 1)], ts=F.T0 + i * 10**9).tables)
    full_disk.budget = 100  # the next segment cannot be written
    w.rotate_s = 1e9
    with pytest.raises(OSError) as exc:
        for i in range(3, 50):
            w.write_tables(F.interval([F.io_row(count=i + 1)], ts=F.T0 + i * 10**9).tables)
    assert exc.value.errno == errno.ENOSPC
    with pytest.raises(C.CaptureError, match="stopped after an error"):
        w.write_tables(F.interval([F.io_row()]).tables)
    w.close(complete=True)  # never raises once failed; never claims completeness
    gc.collect()
    assert "Traceback" not in capsys.readouterr().err  # no ParquetWriter finaliser retrying
    done = sorted((tmp_path / "cap" / "io").glob("*.parquet"))
    assert len(done) == 3
    assert [pq.read_table(p)["count"].to_pylist() for p in done] == [[1], [2], [3]]
    meta = json.loads((tmp_path / "cap" / "capture.json").read_text())
    assert meta["complete"] is False and meta["intervals"] == 3
    cap = C.read_capture(tmp_path / "cap")
    assert cap.tables["io"].num_rows == 3 and cap.ended_abruptly


def test_disk_full_during_compaction_loses_no_committed_interval(tmp_path, full_disk):
    full_disk.budget = 10**9
    w = C.CaptureWriter(tmp_path / "cap", C.CaptureMeta(), rotate_s=1e9)
    for i in range(3):
        w.meta.intervals += 1
        w.write_tables(F.interval([F.io_row(count=i + 1)], ts=F.T0 + i * 10**9).tables)
    full_disk.budget = 0  # the Parquet file cannot be written
    with pytest.raises(OSError):
        w.close()
    cap_dir = tmp_path / "cap"
    assert not list(cap_dir.rglob("*.parquet")) and not list(cap_dir.rglob("*.parquet.tmp"))
    assert list(cap_dir.rglob("*.arrows")) and list(cap_dir.rglob("*.commit"))
    full_disk.budget = 10**9  # space again: the next reader compacts what was committed
    cap = C.read_capture(cap_dir)
    assert cap.tables["io"]["count"].to_pylist() == [1, 2, 3]
    assert cap.ended_abruptly and cap.recovered_intervals == 3 and not cap.unfinished
    assert not list(cap_dir.rglob("*.arrows")) and not list(cap_dir.rglob("*.commit"))
    assert json.loads((cap_dir / "capture.json").read_text())["recovered_intervals"] == 3


def test_disk_full_while_recovering_leaves_the_segment_for_later(tmp_path, full_disk):
    full_disk.budget = 10**9
    w = C.CaptureWriter(tmp_path / "cap", C.CaptureMeta(), rotate_s=1e9)
    w.write_tables(F.interval([F.io_row(count=7)]).tables)
    F.crash(w)
    full_disk.budget = 0  # neither the capture's disk nor the temporary one has room
    rec = C.recover_capture(tmp_path / "cap")
    assert rec.notes and not rec.files
    assert list((tmp_path / "cap").rglob("*.arrows"))  # nothing deleted
    full_disk.budget = 10**9
    assert C.read_capture(tmp_path / "cap").tables["io"]["count"].to_pylist() == [7]


@pytest.mark.parametrize("change,msg", [
    (dict(duration=-5), "duration must be positive"),
    (dict(duration=0), "duration must be positive"),
    (dict(duration=math.nan), "finite"),
    (dict(duration=math.inf), "finite"),
    (dict(rotate_s=0), "--rotate"),
    (dict(rotate_mb=math.nan), "finite"),
    (dict(interval_s=0.001), "interval must be between"),
    (dict(interval_s=math.nan), "finite"),
    (dict(slow_ms=-1), "--slow-ms"),
    (dict(slow_ms=math.inf), "finite"),
    (dict(max_keys=10), "--max-keys"),
    (dict(pids=[0]), "no such process"),
    (dict(pids=[-3]), "no such process"),
    (dict(pids=[2**22 + 12345]), "no such process"),
    (dict(command=["/no/such/program-xyz"]), "command not found"),
    (dict(cgroup="/no/such/cgroup"), "no such cgroup"),
])
def test_record_input_checks_one_line(change, msg):
    opt_keys = {"interval_s", "slow_ms", "max_keys", "pids", "command", "cgroup"}
    opts = RecordOptions(**{k: v for k, v in change.items() if k in opt_keys})
    a = RecordArgs(out="/nonexistent/x", opts=opts,
                   **{k: v for k, v in change.items() if k not in opt_keys})
    with pytest.raises(UsageError, match=msg) as exc:
        validate(a)
    assert "\n" not in str(exc.value)


def test_kernel_map_overflows_without_a_column_are_reported_not_silent():
    from iolens.collector.record import _overflow_notes

    assert _overflow_notes({"fd_overflow": 0, "target_overflow": 0, "lost_events": 5}) == []
    notes = _overflow_notes({"fd_overflow": 3, "target_overflow": 2})
    assert any("fd map full: 3" in n for n in notes)
    assert any("target map full: 2" in n for n in notes)
