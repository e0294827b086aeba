"""Perfetto / Chrome trace-event export on a synthetic capture (real Parquet files)."""

from __future__ import annotations

import json
import math

import pytest

from iolens.analysis.export import ExportError
from iolens.analysis.export.perfetto import SUMMARY_PID, export_perfetto
from iolens.analysis.rules import Finding, run_rules
from tests import factories as F
from tests.export import synth

PHASES = {"X", "C", "i", "M"}


def _load(path) -> dict:
    """Parse strictly: NaN/Infinity are not JSON and trace viewers reject them."""
    def no_constants(name):
        raise ValueError(f"non-JSON constant {name}")
    return json.loads(path.read_text(), parse_constant=no_constants)


def _check_trace_event_format(doc: dict) -> None:
    """Structure every trace-event consumer relies on."""
    assert doc["displayTimeUnit"] == "ms"
    assert isinstance(doc["traceEvents"], list) and doc["traceEvents"]
    for e in doc["traceEvents"]:
        assert e["ph"] in PHASES
        assert isinstance(e["name"], str) and e["name"]
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        assert isinstance(e["ts"], (int, float)) and math.isfinite(e["ts"]) and e["ts"] >= 0
        if e["ph"] == "X":
            assert isinstance(e["dur"], (int, float)) and e["dur"] >= 0
        if e["ph"] == "C":
            assert e["args"] and all(isinstance(v, (int, float)) for v in e["args"].values())
        if e["ph"] == "i":
            assert e["s"] in ("g", "p", "t")


@pytest.fixture
def trace(tmp_path):
    cap = synth.capture(tmp_path)
    out = tmp_path / "trace.json"
    n = export_perfetto(cap, out, findings=[])
    doc = _load(out)
    assert n == len(doc["traceEvents"])
    return doc


def test_output_is_valid_trace_event_json(trace):
    _check_trace_event_format(trace)
    assert trace["otherData"]["origin_ns"] == F.T0


def test_slow_fsync_is_a_slice_on_its_thread_with_its_duration(trace):
    fsyncs = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["name"] == "fsync"]
    assert len(fsyncs) == 1
    s = fsyncs[0]
    assert (s["pid"], s["tid"]) == (synth.PID, synth.TID)
    # The event's ts is the completion time; the slice starts lat_ns earlier.
    start_us = (synth.FSYNC_END_NS - synth.FSYNC_LAT_NS - F.T0) / 1e3
    assert s["ts"] == pytest.approx(start_us, abs=1e-3)
    assert s["dur"] == pytest.approx(synth.FSYNC_LAT_NS / 1e3, abs=1e-3)
    assert s["args"] == {"op": "fsync", "syscall": "fsync", "kind": "file",
                         "resource": synth.CKPT, "fd": 7, "ret": 0}


def test_only_slow_events_become_slices(trace):
    slices = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    assert sorted(e["name"] for e in slices) == ["fsync", "write"]
    write = next(e for e in slices if e["name"] == "write")
    assert write["args"]["bytes"] == 16 << 20


def test_process_and_thread_tracks_are_named(trace):
    meta = {(e["name"], e["pid"], e["tid"]): e["args"]
            for e in trace["traceEvents"] if e["ph"] == "M"}
    assert meta[("process_name", synth.PID, 0)]["name"] == f"python [trainer rank 0] ({synth.PID})"
    assert meta[("process_name", synth.LOADER, 0)]["name"].startswith("pt_data_worker [dataloader")
    assert meta[("thread_name", synth.PID, synth.TID)]["name"] == f"ckpt-writer ({synth.TID})"
    assert meta[("process_name", SUMMARY_PID, 0)]["name"] == "iolens capture"


def _counter(trace, pid, name):
    return [(e["ts"], e["args"]) for e in trace["traceEvents"]
            if e["ph"] == "C" and e["pid"] == pid and e["name"] == name]


def test_per_process_counters_follow_the_intervals(trace):
    loader = _counter(trace, synth.LOADER, "bytes/s")
    # 64 MiB read in interval 0, nothing moved in 1 and 2 (a stat only), closed at the end.
    assert loader[0] == (0, {"read": 64 << 20, "write": 0, "net": 0})
    assert loader[1] == (1e6, {"read": 0, "write": 0, "net": 0})
    trainer_wait = _counter(trace, synth.PID, "I/O wait")
    # interval 1: 16 writes × 20 ms + one 250 ms fsync = 0.57 s of a 1 s interval.
    assert dict(trainer_wait)[1e6]["fraction"] == pytest.approx(0.57)
    assert trainer_wait[-1] == (2e6, {"fraction": 0})  # idle in interval 2


def test_capture_wide_counters_include_lost_events(trace):
    lost = _counter(trace, SUMMARY_PID, "lost events")
    assert lost == [(0, {"count": 0}), (1e6, {"count": 3}), (2e6, {"count": 0})]
    total = dict(_counter(trace, SUMMARY_PID, "bytes/s"))
    assert total[1e6] == {"read": 0, "write": 256 << 20, "net": 0}
    assert total[0]["net"] == 10 << 10


def test_findings_become_instant_events(tmp_path):
    cap = synth.capture(tmp_path)
    findings = [
        Finding(code="SYNC001", category="sync-stall", severity="high",
                title="fsync stalls the trainer", culprit={"pid": synth.PID, "comm": "python"},
                impact_s=0.25, evidence={"start_ns": synth.FSYNC_END_NS, "p99": float("nan")},
                recommendation="checkpoint asynchronously"),
        Finding(code="NET001", category="network-latency", severity="warn", title="slow peer"),
    ]
    out = tmp_path / "t.json"
    export_perfetto(cap, out, findings=findings)
    doc = _load(out)
    _check_trace_event_format(doc)
    inst = {e["args"]["code"]: e for e in doc["traceEvents"] if e["ph"] == "i"}
    sync = inst["SYNC001"]
    assert (sync["s"], sync["pid"]) == ("p", synth.PID)
    assert sync["name"] == "high: fsync stalls the trainer"
    assert sync["ts"] == pytest.approx((synth.FSYNC_END_NS - F.T0) / 1e3)
    assert sync["args"]["evidence"]["p99"] is None
    assert (inst["NET001"]["s"], inst["NET001"]["pid"]) == ("g", SUMMARY_PID)


def test_findings_default_to_the_rules(tmp_path):
    cap = synth.capture(tmp_path)
    ruled = run_rules(cap.tables, cap.meta)
    assert ruled, "the synthetic capture must trigger some rules for this test to mean much"
    out = tmp_path / "t.json"
    export_perfetto(cap, out)  # findings=None runs run_rules
    doc = _load(out)
    _check_trace_event_format(doc)
    # the rules really ran: one instant event per finding they give, on its culprit
    inst = sorted((e["args"]["code"], e["pid"], e["name"]) for e in doc["traceEvents"]
                  if e["ph"] == "i")
    assert inst == sorted((f.code, f.culprit["pid"], f"{f.severity}: {f.title}") for f in ruled)


def test_refuses_to_overwrite(tmp_path):
    cap = synth.capture(tmp_path)
    out = tmp_path / "t.json"
    out.write_text("keep me")
    with pytest.raises(ExportError, match="already exists") as err:
        export_perfetto(cap, out, findings=[])
    assert "\n" not in str(err.value)
    assert out.read_text() == "keep me"
    export_perfetto(cap, out, findings=[], overwrite=True)
    _check_trace_event_format(_load(out))


def test_capture_without_events_still_gives_counters(tmp_path):
    ivs = [F.interval([F.io_row(pid=7, op="write", nbytes=1000)])]
    out = tmp_path / "t.json"
    export_perfetto(synth.capture(tmp_path, ivs), out, findings=[])
    doc = _load(out)
    _check_trace_event_format(doc)
    assert not [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert _counter(doc, 7, "bytes/s")[0] == (0, {"read": 0, "write": 1000, "net": 0})


def test_finding_without_a_time_sits_where_its_culprit_starts(tmp_path):
    ivs = [F.interval([F.io_row(pid=7, op="read")], ts=F.T0),
           F.interval([F.io_row(pid=8, op="read")], ts=F.T0 + 10**9)]
    findings = [Finding(code=f"X{pid}", category="small-io", severity="warn", title="t",
                        culprit={"pid": pid}) for pid in (7, 8)]
    out = tmp_path / "t.json"
    export_perfetto(synth.capture(tmp_path, ivs), out, findings=findings)
    inst = [e for e in _load(out)["traceEvents"] if e["ph"] == "i"]
    assert sorted((e["pid"], e["ts"]) for e in inst) == [(7, 0), (8, 1e6)]


def test_gpu_disk_and_tcp_tables_become_capture_counters(tmp_path):
    ivs = synth.intervals()[:2]
    common = dict(interval_s=1.0, host=F.HOST)
    ivs[0].tables["gpu"] = synth.table_rows("gpu", [
        dict(ts=F.T0, device=0, util=0.9, mem_util=0.5, **common),
        dict(ts=F.T0, device=0, pid=synth.PID, util=0.9, **common)])
    ivs[1].tables["gpu"] = synth.table_rows("gpu", [
        dict(ts=F.T0 + 10**9, device=0, util=0.25, mem_util=0.5, **common)])
    ivs[1].tables["block"] = synth.table_rows("block", [
        dict(ts=F.T0 + 10**9, device="vda", op="write", count=4, bytes=8 << 20,
             lat_sum_ns=1, lat_max_ns=1, lat_hist=[1], **common),
        dict(ts=F.T0 + 10**9, device="vda", op="flush", count=1, bytes=0,
             lat_sum_ns=1, lat_max_ns=1, lat_hist=[1], **common)])
    ivs[1].tables["tcp"] = synth.table_rows("tcp", [
        dict(ts=F.T0 + 10**9, resource="tcp:10.0.0.2:29500", retransmits=2, **common),
        dict(ts=F.T0 + 10**9, resource="tcp:10.0.0.3:29500", retransmits=1, **common)])
    out = tmp_path / "t.json"
    export_perfetto(synth.capture(tmp_path, ivs), out, findings=[])
    doc = _load(out)
    _check_trace_event_format(doc)
    assert _counter(doc, SUMMARY_PID, "GPU 0") == [
        (0, {"util": 0.9, "mem_util": 0.5}), (1e6, {"util": 0.25, "mem_util": 0.5}),
        (2e6, {"util": 0, "mem_util": 0})]
    assert _counter(doc, SUMMARY_PID, "disk vda bytes/s") == [
        (0, {"read": 0, "write": 0}), (1e6, {"read": 0, "write": 8 << 20}),
        (2e6, {"read": 0, "write": 0})]
    assert _counter(doc, SUMMARY_PID, "TCP retransmits") == [
        (0, {"count": 0}), (1e6, {"count": 3}), (2e6, {"count": 0})]
