"""End-to-end checks of the exports on real captures made by `iolens record` (root + BPF).

- a known slow fsync (on a loop-device filesystem), timed inside the workload, appears in
  the Perfetto export as one slice on the workload's thread whose duration lies inside the
  workload's own bracket; the CSV export of the same capture parses to every row;
- `iolens record --metrics ADDR` serves values equal to what the Parquet capture holds for
  the same intervals.

These need the real collector (`iolens record`, its `--metrics` option and the `export`
subcommand wired in collector/cli.py). They are `bpf`-tier tests: skipped without root/BPF,
required in CI (IOLENS_REQUIRE_BPF=1).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from iolens.collector.capture import read_capture
from tests.bpf.loopdev import loop_fs

pytestmark = pytest.mark.bpf

# Write 64 MiB, then time one fsync of it from inside the workload (the reference value).
FSYNC_WORKLOAD = textwrap.dedent("""
    import json, os, sys, threading, time
    path, result = sys.argv[1], sys.argv[2]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block = os.urandom(1 << 20)
    for _ in range(64):
        os.write(fd, block)
    t0 = time.monotonic_ns()
    os.fsync(fd)
    t1 = time.monotonic_ns()
    os.close(fd)
    with open(result, "w") as f:
        json.dump({"pid": os.getpid(), "tid": threading.get_native_id(),
                   "fsync_ns": t1 - t0}, f)
""")

# Write 8 MiB and fsync, then stay alive until the test says so (so the test scrapes the
# endpoint while the collector still runs, without guessing durations).
METRICS_WORKLOAD = textwrap.dedent("""
    import os, sys, time
    path, go = sys.argv[1], sys.argv[2]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for _ in range(8):
        os.write(fd, b"x" * (1 << 20))
    os.fsync(fd)
    os.close(fd)
    deadline = time.monotonic() + 120
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.05)
""")


def _iolens() -> list[str]:
    """The installed console script next to this interpreter (or on PATH)."""
    exe = Path(sys.executable).parent / "iolens"
    found = str(exe) if exe.exists() else shutil.which("iolens")
    assert found, "the iolens console script is not installed (pip install -e .)"
    return [found]


def _run(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run(_iolens() + args, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"iolens {' '.join(args[:2])} failed: {proc.stderr[-2000:]}"
    return proc


# The fsync is made slow on purpose, not hoped slow: 64 MiB of dirty pages on an ext4 loop
# device must be written through a block device before fsync returns (on a tmpfs /tmp it
# would be a no-op). SLOW_MS is the --slow-ms threshold: an op slower than it is a slice.
SLOW_MS = 0.1


def test_slow_fsync_is_a_slice_on_its_thread_with_its_duration(tmp_path):
    """The workload's own clock brackets the fsync syscall, so BPF's enter-to-exit latency
    lies inside it (same CLOCK_MONOTONIC); how close the two are is measured by
    benchmarks/fault_timings.py, not asserted here."""
    result, cap = tmp_path / "result.json", tmp_path / "cap"
    with loop_fs(size_mb=256) as (mnt, _):
        data = Path(mnt) / "data.bin"
        _run(["record", "-o", str(cap), "--slow-ms", str(SLOW_MS), "--",
              sys.executable, "-c", FSYNC_WORKLOAD, str(data), str(result)])
    ref = json.loads(result.read_text())
    assert ref["fsync_ns"] > SLOW_MS * 1e6, f"64 MiB fsynced in {ref['fsync_ns']} ns?"
    trace = tmp_path / "trace.json"
    _run(["export", str(cap), "--perfetto", str(trace), "--csv", str(tmp_path / "csv")])
    doc = json.loads(trace.read_text())
    assert doc["displayTimeUnit"] == "ms"
    slices = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["name"] == "fsync"
              and e["args"].get("resource") == str(data)]
    assert len(slices) == 1, f"expected one fsync slice on {data}, got {slices}"
    s = slices[0]
    assert (s["pid"], s["tid"]) == (ref["pid"], ref["tid"])
    # µs; slower than the threshold (why it is a slice), inside the workload's own bracket
    assert SLOW_MS * 1e3 < s["dur"] <= ref["fsync_ns"] / 1e3 + 1e-3
    names = {(e["pid"], e["tid"]) for e in doc["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_name"}
    assert (ref["pid"], ref["tid"]) in names
    _assert_csv_holds_every_row(read_capture(cap), tmp_path / "csv")


def _assert_csv_holds_every_row(captured, csv_dir: Path) -> None:
    """Each table's CSV parses (quoted cells may hold newlines) to exactly its rows: the same
    header, the same row count, and every integer column with the same total."""
    for name, table in captured.tables.items():
        with open(csv_dir / f"{name}.csv", newline="") as f:
            header, *rows = list(csv.reader(f))
        assert header == table.column_names, name
        assert len(rows) == table.num_rows, name
        for i, field in enumerate(table.schema):
            if pa.types.is_integer(field.type):
                parsed = sum(int(r[i]) for r in rows if r[i] != "")
                assert parsed == (pc.sum(table.column(i)).as_py() or 0), (name, field.name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(url: str) -> dict[str, list] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return None
    out: dict[str, list] = defaultdict(list)
    for fam in text_string_to_metric_families(text):
        for smp in fam.samples:
            out[smp.name].append((smp.labels, smp.value))
    return out


def _total(samples: dict[str, list], name: str, **match: str) -> float:
    return sum(v for labels, v in samples.get(name, [])
               if all(labels.get(k) == want for k, want in match.items()))


TOP_N = 20  # MetricsExporter's default: resources per interval that keep their own label


def test_metrics_endpoint_equals_the_capture(tmp_path):
    data, go, cap = tmp_path / "data.bin", tmp_path / "go", tmp_path / "cap"
    port = _free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    rec = subprocess.Popen(_iolens() + ["record", "-o", str(cap), "--metrics",
                                        f"127.0.0.1:{port}", "--",
                                        sys.executable, "-I", "-S", "-c", METRICS_WORKLOAD,
                                        str(data),
                                        str(go)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Poll until the interval holding the workload's writes has been exported.
        got = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and rec.poll() is None:
            got = _scrape(url)
            if got and _total(got, "iolens_io_bytes_total", op="write") >= 8 << 20:
                break
            time.sleep(0.2)
        assert rec.poll() is None, f"record exited early: {rec.communicate()[1][-2000:]}"
        assert got and _total(got, "iolens_io_bytes_total", op="write") >= 8 << 20
    finally:
        go.touch()
    _, err = rec.communicate(timeout=120)
    assert rec.returncode == 0, err[-2000:]

    # The scrape covered the capture's first k intervals: compare with those rows.
    k = int(got["iolens_intervals_total"][0][1])
    captured = read_capture(cap)
    health, io = captured.tables["health"], captured.tables["io"]
    starts = np.unique(np.asarray(health.column("ts").cast(pa.int64())))[:k]
    assert len(starts) == k
    first = io.filter(pc.is_in(io.column("ts").cast(pa.int64()), pa.array(starts)))
    for metric, column in (("iolens_io_ops_total", "count"), ("iolens_io_bytes_total", "bytes"),
                           ("iolens_io_errors_total", "errors")):
        assert _total(got, metric) == (pc.sum(first.column(column)).as_py() or 0), metric
    mine = first.filter(pc.equal(first.column("resource"), str(data)))
    written = pc.sum(mine.filter(pc.equal(mine.column("op"), "write")).column("bytes")).as_py()
    assert written == 8 << 20
    # A light workload (python -I -S: few files) stays within the exporter's top_n resources
    # per interval, so no resource is folded into "other" and each one's bytes are exact.
    for start in starts:
        at = first.filter(pc.equal(first.column("ts").cast(pa.int64()), start))
        assert len(set(at.column("resource").to_pylist())) <= TOP_N, "workload too busy"
    assert _total(got, "iolens_io_bytes_total", resource="other") == 0
    for res in set(first.column("resource").to_pylist()):
        col = first.column("resource")
        mine_res = first.filter(pc.is_null(col) if res is None else pc.equal(col, res))
        assert _total(got, "iolens_io_bytes_total", resource=res or "") == \
            (pc.sum(mine_res.column("bytes")).as_py() or 0), res
    assert _total(got, "iolens_io_bytes_total", resource=str(data), op="write") == written
    lat_sum = pc.sum(first.column("lat_sum_ns")).as_py() / 1e9
    assert _total(got, "iolens_io_time_seconds_total") == pytest.approx(lat_sum, rel=1e-9)
    assert _total(got, "iolens_io_latency_seconds_sum") == pytest.approx(lat_sum, rel=1e-9)
    hist_count = _total(got, "iolens_io_latency_seconds_count")
    lat_rows = first.filter(pc.greater(first.column("lat_sum_ns"), 0))
    assert hist_count == pc.sum(pc.list_flatten(lat_rows.column("lat_hist"))).as_py()
    lost = pc.sum(health.filter(pc.is_in(health.column("ts").cast(pa.int64()),
                                         pa.array(starts))).column("lost_events")).as_py()
    assert _total(got, "iolens_lost_events_total") == lost
    assert os.path.exists(cap / "capture.json")
