"""Prometheus exporter: a real HTTP server scraped by a real client, parsed by
prometheus_client's parsers, compared with the rows of a real Parquet capture."""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from iolens.analysis.export import ExportError
from iolens.analysis.export.prometheus import LE_SECONDS, MetricsExporter, parse_address
from iolens.collector.capture import CaptureMeta
from iolens.collector.schema import LAT_BUCKETS
from iolens.collector.sources import ReplaySource
from tests import factories as F
from tests.export import synth


def scrape(url: str, accept: str | None = None) -> str:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        return resp.read().decode()


def samples(text: str) -> dict[str, list]:
    """sample name -> [(labels, value)] from the Prometheus text format."""
    out: dict[str, list] = defaultdict(list)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name].append((s.labels, s.value))
    return out


def by(rows: list, *keys: str) -> dict:
    """Sum sample values by the given labels."""
    acc: dict = defaultdict(float)
    for labels, value in rows:
        acc[tuple(labels[k] for k in keys)] += value
    return dict(acc)


@pytest.fixture


def exporter():
    exp = MetricsExporter(":0")
    exp.start()
    yield exp
    exp.close()


@pytest.mark.parametrize("text,expected", [
    (":9464", ("127.0.0.1", 9464)), ("9464", ("127.0.0.1", 9464)), ("", ("127.0.0.1", 9464)),
    ("0.0.0.0:9100", ("0.0.0.0", 9100)), ("localhost:0", ("localhost", 0)),
    ("[::1]:9464", ("::1", 9464)), ("10.1.2.3", ("10.1.2.3", 9464)),
])


def test_parse_address(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", [":http", "1.2.3.4:70000", "::1:9464", "[::1", "a:b:c"])


def test_parse_address_rejects_nonsense(text):
    with pytest.raises(ValueError, match="invalid metrics address"):
        parse_address(text)


def test_port_zero_picks_a_free_loopback_port(exporter):
    assert exporter.host == "127.0.0.1" and exporter.port > 0
    assert scrape(exporter.url)  # serves before any interval


def test_busy_port_is_a_one_line_error(exporter):
    other = MetricsExporter(f"127.0.0.1:{exporter.port}")
    with pytest.raises(ExportError, match="cannot serve metrics") as err:
        other.start()
    assert "\n" not in str(err.value)


def _expected_io(io: pa.Table) -> dict:
    """(comm, op, resource) -> [ops, bytes, errors, lat_sum_ns, hist...] straight from rows."""
    out: dict = {}
    hists = io.column("lat_hist").to_pylist()
    for i, row in enumerate(io.select(["comm", "op", "resource", "count", "bytes", "errors",
                                       "lat_sum_ns"]).to_pylist()):
        h = np.zeros(LAT_BUCKETS)
        h[: len(hists[i])] = hists[i]
        vec = np.concatenate([[row["count"], row["bytes"], row["errors"], row["lat_sum_ns"]], h])
        key = (row["comm"], row["op"], row["resource"])
        out[key] = out.get(key, 0) + vec
    return out


def test_scrape_equals_the_parquet_capture_interval_by_interval(tmp_path, exporter):
    cap = synth.capture(tmp_path)
    source = ReplaySource(str(cap.path), capture=cap)
    io = cap.tables["io"]
    io_ts = io.column("ts").cast(pa.int64())
    lost = 0
    for n, iv in enumerate(source, start=1):
        exporter.update(iv, source.meta)
        got = samples(scrape(exporter.url))
        seen = io.filter(pc.less_equal(io_ts, iv.start_ns))  # every interval up to this one
        want = _expected_io(seen)
        keys = ("comm", "op", "resource")
        assert by(got["iolens_io_ops_total"], *keys) == {k: v[0] for k, v in want.items()}
        assert by(got["iolens_io_bytes_total"], *keys) == {k: v[1] for k, v in want.items()}
        assert by(got["iolens_io_errors_total"], *keys) == {k: v[2] for k, v in want.items()}
        busy = by(got["iolens_io_time_seconds_total"], *keys)
        assert busy == pytest.approx({k: v[3] / 1e9 for k, v in want.items()})
        # Histograms carry no file path; (comm, op) is unique in this capture.
        sums = by(got["iolens_io_latency_seconds_sum"], "comm", "op")
        assert sums == pytest.approx({k[:2]: v[3] / 1e9 for k, v in want.items()})
        buckets = defaultdict(dict)
        for labels, value in got["iolens_io_latency_seconds_bucket"]:
            buckets[(labels["comm"], labels["op"])][labels["le"]] = value
        for key, vec in want.items():
            cum = np.cumsum(vec[4:])
            key = key[:2]
            assert [buckets[key][repr(le)] for le in LE_SECONDS] == list(cum[:-1])
            assert buckets[key]["+Inf"] == cum[-1]
        # The latest interval's I/O wait per process = its summed latency / 1 s.
        this = iv.table("io")
        wait = by(got["iolens_io_wait_fraction"], "comm")
        for comm in set(this.column("comm").to_pylist()):
            rows = this.filter(pc.equal(this.column("comm"), comm))
            assert wait[(comm,)] == pytest.approx(pc.sum(rows.column("lat_sum_ns")).as_py() / 1e9)
        lost += iv.health["lost_events"]
        assert got["iolens_lost_events_total"] == [({}, lost)]
        assert got["iolens_intervals_total"] == [({}, n)]
    assert n == 3


def test_labels_carry_role_rank_file_class_and_health(exporter):
    iv = synth.intervals()[0]
    meta = CaptureMeta(host="h1", mode="command", probes_attached=["syscalls"],
                       probes_skipped={"block": "no tracepoint"})
    exporter.update(iv, meta)
    got = samples(scrape(exporter.url))
    read = [lab for lab, _ in got["iolens_io_bytes_total"] if lab["op"] == "read"][0]
    assert read == {"comm": "pt_data_worker", "role": "dataloader", "rank": "0",
                    "op": "read", "kind": "file", "file_class": "dataset",
                    "resource": "/data/shard-0"}
    hist = {lab["op"]: lab for lab, _ in got["iolens_io_latency_seconds_count"]}
    assert hist["recv"]["peer"] == "tcp:10.0.0.2:29500" and "resource" not in hist["recv"]
    assert hist["read"]["peer"] == "" and hist["read"]["file_class"] == "dataset"
    assert got["iolens_probe_skipped"] == [({"probe": "block"}, 1.0)]
    assert by(got["iolens_probes"], "state") == {("attached",): 1, ("skipped",): 1}
    assert got["iolens_info"][0][0]["host"] == "h1"
    assert got["iolens_drain_seconds"] == [({}, 0.5 / 1e3)]
    assert got["iolens_collector_cpu_seconds_total"] == [({}, 0.01)]
    assert got["iolens_interval_seconds"] == [({}, 1.0)]


def test_top_n_folds_the_rest_into_other_and_keeps_totals(tmp_path):
    # Five files; latency decides the rank: /f4 is slowest, /f0 fastest.
    rows = [F.io_row(op="read", resource=f"/f{i}", nbytes=1000 * (i + 1), lat_ns=1000 * 4 ** i)
            for i in range(5)]
    rows += [F.io_row(pid=200 + i, comm=f"w{i}", op="write", resource="/log", lat_ns=10 + i)
             for i in range(4)]
    exp = MetricsExporter(":0", top_n=2)
    exp.start()
    try:
        exp.update(F.interval(rows), CaptureMeta())
        got = samples(scrape(exp.url))
    finally:
        exp.close()
    per_res = by(got["iolens_io_bytes_total"], "resource")
    assert set(per_res) == {("/f4",), ("/f3",), ("other",)}
    assert per_res[("other",)] == 1000 + 2000 + 3000 + 4096 * 4  # /f0-/f2 and /log
    assert sum(per_res.values()) == sum(r["bytes"] for r in rows)
    comms = {lab["comm"] for lab, _ in got["iolens_io_ops_total"]}
    assert comms == {"python", "w3", "other"}
    assert got["iolens_folded_resources"] == [({}, 4.0)]
    assert got["iolens_folded_processes"] == [({}, 3.0)]


def test_openmetrics_when_asked(exporter):
    exporter.update(synth.intervals()[0], CaptureMeta())
    text = scrape(exporter.url, accept="application/openmetrics-text; version=1.0.0")
    assert text.rstrip().endswith("# EOF")
    fams = {f.name: f for f in openmetrics_families(text)}
    assert fams["iolens_io_latency_seconds"].type == "histogram"
    assert fams["iolens_io_bytes"].type == "counter"


def test_scrapes_during_updates_see_whole_intervals(exporter):
    """update() from a collector thread while scraping: every scrape is one consistent state."""
    iv = F.interval([F.io_row(op="read", count=3, nbytes=300, resource="/a"),
                     F.io_row(op="write", count=5, nbytes=500, resource="/b")])
    meta = CaptureMeta()
    done = threading.Event()

    def feed():
        for _ in range(30):
            exporter.update(iv, meta)
        done.set()

    t = threading.Thread(target=feed)
    t.start()
    checked = 0
    while not done.is_set() or checked == 0:
        got = samples(scrape(exporter.url))
        n = got["iolens_intervals_total"][0][1]
        ops = by(got["iolens_io_ops_total"], "resource")
        assert ops.get(("/a",), 0) == 3 * n and ops.get(("/b",), 0) == 5 * n
        hist_count = by(got["iolens_io_latency_seconds_count"], "op")
        assert hist_count.get(("read",), 0) == 3 * n
        checked += 1
    t.join()
    assert samples(scrape(exporter.url))["iolens_intervals_total"][0][1] == 30


def test_stale_series_are_dropped():
    exp = MetricsExporter(":0", retain_intervals=2)
    meta = CaptureMeta()
    exp.update(F.interval([F.io_row(resource="/old")]), meta)
    for i in range(2):
        exp.update(F.interval([F.io_row(resource="/new")], ts=F.T0 + (i + 1) * 10**9), meta)
    assert {k[-1] for k in exp.snapshot().series if k[0] == "c"} == {"/new"}


def test_close_frees_the_port():
    exp = MetricsExporter(":0")
    exp.start()
    port = exp.port
    exp.close()
    exp.close()  # idempotent
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_a_bad_interval_is_counted_not_raised(exporter):
    """update() runs on the collector thread: a malformed interval must not stop recording."""
    bad = synth.intervals()[0]
    bad.tables["io"] = bad.tables["io"].drop_columns(["lat_hist"])
    exporter.update(bad, CaptureMeta())
    exporter.update(synth.intervals()[0], CaptureMeta())
    got = samples(scrape(exporter.url))
    assert got["iolens_export_errors_total"] == [({}, 1.0)]
    assert got["iolens_intervals_total"] == [({}, 1.0)]
    assert "lat_hist" in exporter.last_error


def test_bad_address_is_an_export_error_before_anything_starts():
    with pytest.raises(ExportError, match="invalid metrics address"):
        MetricsExporter("a:b:c")


def test_block_tcp_and_gpu_tables_become_metrics(exporter):
    iv = synth.intervals()[0]
    common = dict(ts=F.T0, interval_s=1.0, host=F.HOST)
    iv.tables["block"] = synth.table_rows("block", [
        dict(device="vda", op="write", count=4, bytes=8 << 20, lat_sum_ns=2_000_000,
             lat_max_ns=1, lat_hist=[1], **common),
        dict(device="vda", op="write", count=1, bytes=4096, lat_sum_ns=1_000_000,
             lat_max_ns=1, lat_hist=[1], **common)])
    iv.tables["tcp"] = synth.table_rows("tcp", [
        dict(resource="tcp:10.0.0.2:29500", retransmits=2, **common),
        dict(resource="tcp:10.0.0.3:29500", retransmits=1, **common)])
    iv.tables["gpu"] = synth.table_rows("gpu", [dict(device=0, util=0.25, mem_util=0.5, **common),
                                     dict(device=0, pid=synth.PID, util=0.2, **common)])
    exporter.update(iv, CaptureMeta())
    exporter.update(iv, CaptureMeta())
    got = samples(scrape(exporter.url))
    labels = {"device": "vda", "op": "write"}
    assert got["iolens_block_ops_total"] == [(labels, 10.0)]
    assert got["iolens_block_bytes_total"] == [(labels, 2.0 * ((8 << 20) + 4096))]
    assert got["iolens_block_time_seconds_total"] == [(labels, pytest.approx(0.006))]
    assert by(got["iolens_tcp_retransmits_total"], "peer") == {
        ("tcp:10.0.0.2:29500",): 4.0, ("tcp:10.0.0.3:29500",): 2.0}
    assert got["iolens_gpu_utilization"] == [({"device": "0"}, 0.25)]
    assert got["iolens_gpu_memory_utilization"] == [({"device": "0"}, 0.5)]
