"""Rules on committed real captures (tests/analysis/data/README.md says how they were recorded
and where each golden value comes from)."""

from __future__ import annotations

from pathlib import Path

import pytest
from iolens.analysis.analyze import analyze_path

DATA = Path(__file__).parent / "data"


def test_blkio_throttle_is_slow_device_at_the_throttle_rate():
    r = analyze_path(DATA / "blkio_throttle")
    top = r.findings[0]
    assert (top.category, top.severity) == ("slow-device", "high")
    assert top.culprit["resource"].endswith("/blkio_throttle/shard.bin")
    # blkio.throttle.read_bps_device = 8,000,000 B/s
    assert top.evidence["mb_per_s_blocked"] == pytest.approx(8.0, rel=0.15)
    assert r.verdict.io_bound


def test_gloo_slow_link_is_network_bandwidth_on_the_slow_peer():
    r = analyze_path(DATA / "gloo_slow_link")
    top = r.findings[0]
    # judged from the tcp table: RTT 16 ms under load vs 0.03 ms on the other connections,
    # with a full window in flight -> bandwidth. Two ranks share the one slow connection, so
    # which side's path holds the tbf cannot be seen: the finding names the link between them
    assert (top.category, top.code) == ("network-bandwidth", "NET-LINK-BW")
    assert top.culprit["role"] == "rank"
    assert top.culprit["resource"].startswith("tcp:10.77.0.")
    assert "10.77.0.1 <-> 10.77.0.2" in top.title
    assert top.evidence["single_participant"] is False
    assert top.evidence["rtt_ms"] > 100 * top.evidence["rtt_healthy_ms"]
    assert r.verdict.io_bound
