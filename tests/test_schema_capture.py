"""Pure tier: schema, escaping, capture writer/reader, replay source (no kernel)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from iolens.collector import schema as S
from iolens.collector.capture import CaptureError, CaptureMeta, CaptureWriter, read_capture
from iolens.collector.sources import ReplaySource
from tests import factories as F


@given(st.binary(max_size=300))
def test_escape_round_trip_any_bytes(raw):
    text = S.escape_bytes(raw)
    assert S.unescape_str(text) == raw
    text.encode("utf-8")  # always valid UTF-8


def test_escape_keeps_readable_text():
    raw = "a\tb\nc 'q' \"d\" ü/€".encode()
    assert S.escape_bytes(raw) == raw.decode()
    assert S.escape_bytes(b"x\xffy\\z") == "x\\xffy\\\\z"


@given(st.lists(st.tuples(st.integers(1, 2**31 - 1), st.integers(0, 2**40),
                          st.lists(st.integers(0, 2**40), max_size=S.LAT_BUCKETS)),
                min_size=1, max_size=20))
def test_io_table_round_trip_through_parquet(tmp_path_factory, rows):
    d = tmp_path_factory.mktemp("rt")
    cols = {f.name: [] for f in S.IO}
    for pid, nbytes, hist in rows:
        r = F.io_row(pid=pid, nbytes=nbytes)
        r["lat_hist"] = hist
        for k in cols:
            cols[k].append(r.get(k))
    cols["ts"] = pa.array(cols["ts"], pa.int64()).cast(S.TS)
    t = S.to_table("io", cols)
    w = CaptureWriter(d / "c", CaptureMeta())
    w.write_tables({"io": t})
    w.close()
    back = read_capture(d / "c").tables["io"]
    assert back.to_pylist() == t.to_pylist()


def test_files_private_and_complete_after_close(tmp_path):
    out = F.write_capture(tmp_path / "cap", [F.interval([F.io_row()])])
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert not list(out.rglob("*.tmp"))
    meta = json.loads((out / "capture.json").read_text())
    assert meta["complete"] is True
    md = pq.ParquetFile(next(out.glob("io/*.parquet"))).schema_arrow.metadata
    assert md[b"iolens.schema_version"] == b"1" and md[b"iolens.table"] == b"io"
    assert pq.ParquetFile(next(out.glob("io/*.parquet"))).schema_arrow.field("bytes").metadata[b"unit"] == b"bytes"


@pytest.mark.root  # chown to another uid
def test_writer_refuses_existing_nonempty_dir_symlink_and_foreign_owner(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    with pytest.raises(CaptureError, match="already exists"):
        CaptureWriter(tmp_path / "full", CaptureMeta())
    assert (tmp_path / "full" / "x").read_text() == "keep"
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(CaptureError, match="symlink"):
        CaptureWriter(tmp_path / "link", CaptureMeta())
    (tmp_path / "other").mkdir()
    os.chown(tmp_path / "other", 12345, 12345)
    with pytest.raises(CaptureError, match="owned by uid 12345"):
        CaptureWriter(tmp_path / "other", CaptureMeta())


def test_planted_symlink_in_table_dir_is_not_followed(tmp_path):
    w = CaptureWriter(tmp_path / "cap", CaptureMeta())
    (tmp_path / "cap" / "io").mkdir()
    victim = tmp_path / "victim"
    victim.write_text("secret")
    os.symlink(victim, tmp_path / "cap" / "io" / "part-000000.arrows")
    with pytest.raises(OSError):
        w.write_tables(F.interval([F.io_row()]).tables)
    assert victim.read_text() == "secret"


def test_planted_symlink_at_compaction_file_is_removed_not_followed(tmp_path):
    w = CaptureWriter(tmp_path / "cap", CaptureMeta())
    w.write_tables(F.interval([F.io_row()]).tables)
    victim = tmp_path / "victim"
    victim.write_text("secret")
    os.symlink(victim, tmp_path / "cap" / "io" / "part-000000.parquet.tmp")
    w.close()
    assert victim.read_text() == "secret"
    assert read_capture(tmp_path / "cap").tables["io"].num_rows == 1


def test_rotation_makes_complete_files_and_abrupt_end_is_detected(tmp_path):
    w = CaptureWriter(tmp_path / "cap", CaptureMeta(), rotate_s=0)
    for i in range(3):
        w.write_tables(F.interval([F.io_row()], ts=F.T0 + i * 10**9).tables)
    assert len(list((tmp_path / "cap" / "io").glob("*.parquet"))) == 3
    # an open segment left behind (as after kill -9): its committed interval is recovered,
    # and the abrupt end reported with the count
    w.rotate_s = 1e9
    w.write_tables(F.interval([F.io_row()], ts=F.T0 + 9 * 10**9).tables)
    F.crash(w)
    cap = read_capture(tmp_path / "cap")
    assert cap.tables["io"].num_rows == 4
    assert cap.ended_abruptly and cap.recovered_intervals == 1 and not cap.unfinished


def test_reader_skips_corrupt_and_foreign_files_naming_them(tmp_path):
    out = F.write_capture(tmp_path / "cap", [F.interval([F.io_row()])])
    (out / "io" / "part-000007.parquet").write_bytes(b"PAR1 not really")
    pq.write_table(pa.table({"x": [1]}), out / "io" / "part-000008.parquet")
    cap = read_capture(out)
    assert cap.tables["io"].num_rows == 1
    reasons = dict(cap.skipped)
    assert any("part-000007" in k for k in reasons)
    assert any("not an iolens capture file" in v for v in reasons.values())


def test_reader_errors_on_missing_empty_and_wrong_version(tmp_path):
    with pytest.raises(CaptureError, match="no such capture"):
        read_capture(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CaptureError, match="not an iolens capture"):
        read_capture(tmp_path / "empty")
    out = tmp_path / "v9"
    (out / "io").mkdir(parents=True)
    schema = S.IO.with_metadata({S.META_VERSION_KEY: b"9", S.META_TABLE_KEY: b"io"})
    pq.write_table(F.io_table([F.io_row()]).cast(schema), out / "io" / "part-000000.parquet")
    with pytest.raises(CaptureError, match="schema version 9"):
        read_capture(out)


def test_replay_source_yields_intervals_in_order_with_seek(tmp_path):
    ivs = [F.interval([F.io_row(count=i + 1)], ts=F.T0 + i * 10**9) for i in range(4)]
    src = ReplaySource(str(F.write_capture(tmp_path / "cap", ivs)))
    got = [src.next_interval(0.1) for _ in range(4)]
    assert [iv.start_ns for iv in got] == [F.T0 + i * 10**9 for i in range(4)]
    assert got[2].table("io")["count"].to_pylist() == [3]
    assert src.finished
    src.seek(1)
    assert src.step().table("io")["count"].to_pylist() == [2]


def test_schema_doc_is_current():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "schema.md").read_text()
    assert S.markdown().strip() in doc
