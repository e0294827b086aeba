"""End-to-end checks of the exports on real captures made by `iolens record` (root + BPF).

- a known slow fsync, timed inside the workload, appears in the Perfetto export as a slice
  on the workload's thread with that duration (±1 ms);
- `iolens record --metrics ADDR` serves values equal to what the Parquet capture holds for
  the same intervals.

These need the real collector (`iolens record`, its `--metrics` option and the `export`
subcommand wired in collector/cli.py). They are `bpf`-tier tests: skipped without root/BPF,
required in CI (IOLENS_REQUIRE_BPF=1).
"""

from __future__ import annotations

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


def test_slow_fsync_is_a_slice_on_its_thread_with_its_duration(tmp_path):
    data, result, cap = tmp_path / "data.bin", tmp_path / "result.json", tmp_path / "cap"
    _run(["record", "-o", str(cap), "--slow-ms", "1", "--",
          sys.executable, "-c", FSYNC_WORKLOAD, str(data), str(result)])
    ref = json.loads(result.read_text())
    if ref["fsync_ns"] < 3_000_000:
        pytest.skip(f"fsync took {ref['fsync_ns'] / 1e6:.2f} ms here (tmpfs?): not slow")
    trace = tmp_path / "trace.json"
    _run(["export", str(cap), "--perfetto", str(trace), "--csv", str(tmp_path / "csv")])
    doc = json.loads(trace.read_text())
    assert doc["displayTimeUnit"] == "ms"
    slices = [e for e in doc["traceEvents"] if e["ph"] == "X" and e["name"] == "fsync"
              and e["args"].get("resource") == str(data)]
    assert len(slices) == 1, f"expected one fsync slice on {data}, got {slices}"
    s = slices[0]
    assert (s["pid"], s["tid"]) == (ref["pid"], ref["tid"])
    assert abs(s["dur"] - ref["fsync_ns"] / 1e3) <= 1000  # µs: ±1 ms
    names = {(e["pid"], e["tid"]) for e in doc["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_name"}
    assert (ref["pid"], ref["tid"]) in names
    # The CSV export of the same capture holds every row.
    captured = read_capture(cap)
    for name, table in captured.tables.items():
        lines = (tmp_path / "csv" / f"{name}.csv").read_text().count("\n")
        assert lines >= table.num_rows + 1  # header; quoted cells may hold newlines


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


def test_metrics_endpoint_equals_the_capture(tmp_path):
    data, go, cap = tmp_path / "data.bin", tmp_path / "go", tmp_path / "cap"
    port = _free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    rec = subprocess.Popen(_iolens() + ["record", "-o", str(cap), "--metrics",
                                        f"127.0.0.1:{port}", "--",
                                        sys.executable, "-c", METRICS_WORKLOAD, str(data),
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
    shown = _total(got, "iolens_io_bytes_total", resource=str(data), op="write")
    if shown == 0:  # more than top_n busier files: it was counted under resource="other"
        assert _total(got, "iolens_io_bytes_total", resource="other", op="write") >= written
    else:
        assert shown == written
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
