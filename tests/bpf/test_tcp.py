"""Real BPF, as root: TCP retransmits are attributed to the right peer and process.

The test builds two namespaces joined by a lossy and a clean veth pair (netloss.py), runs a
sink server in B, and records `ip netns exec A python wl_tcp_client.py`, which sends the same
amount to both paths. Read with plain pyarrow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from tests.bpf.netloss import lossy_netns

pytestmark = pytest.mark.bpf
HERE = Path(__file__).resolve().parent
IOLENS = [sys.executable, "-m", "iolens.collector.cli"]
PORT, NBYTES, LOSS_PCT = 5599, 4 << 20, 10


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    base = tmp_path_factory.mktemp("tcp")
    out, truth = base / "cap", base / "truth.json"
    with lossy_netns(LOSS_PCT) as (ns_a, ns_b):
        server = subprocess.Popen(["ip", "netns", "exec", ns_b, sys.executable,
                                   str(HERE / "wl_tcp_server.py"), str(PORT)],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout.readline().strip() == "ready"
            proc = subprocess.run([*IOLENS, "record", "-q", "-o", str(out), "--",
                                   "ip", "netns", "exec", ns_a, sys.executable,
                                   str(HERE / "wl_tcp_client.py"), str(PORT), str(NBYTES),
                                   str(truth)], capture_output=True, text=True, timeout=120)
        finally:
            server.kill()
            server.wait()
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((out / "capture.json").read_text())
    tcp = ds.dataset(str(out / "tcp"), format="parquet").to_table()
    return meta, tcp, json.loads(truth.read_text())


def _rows(tcp, peer):
    return tcp.filter(pc.equal(tcp["resource"], peer))


def _sum(t, col):
    return pc.sum(t[col]).as_py() or 0


def test_tcp_probe_attached(capture):
    meta, _, _ = capture
    assert "tcp" in meta["probes_attached"], meta["probes_skipped"]


def test_retransmits_on_the_lossy_peer_only(capture):
    _, tcp, truth = capture
    lossy = _rows(tcp, truth["peers"]["lossy"]["peer"])
    clean = _rows(tcp, truth["peers"]["clean"]["peer"])
    assert _sum(lossy, "retransmits") >= 3, lossy.to_pylist()
    assert _sum(clean, "retransmits") * 3 <= _sum(lossy, "retransmits")
    assert set(lossy["local"].to_pylist()) == {truth["peers"]["lossy"]["local"]}


def test_rows_attributed_to_the_client_process(capture):
    _, tcp, truth = capture
    for side in ("lossy", "clean"):
        rows = _rows(tcp, truth["peers"][side]["peer"])
        assert rows.num_rows > 0
        assert set(rows["pid"].to_pylist()) == {truth["pid"]}, side


def test_lifecycle_and_bytes(capture):
    _, tcp, truth = capture
    for side in ("lossy", "clean"):
        rows = _rows(tcp, truth["peers"][side]["peer"])
        assert _sum(rows, "connects") == 1 and _sum(rows, "closes") == 1, side
        assert _sum(rows, "conn_ns_sum") > 0
        assert _sum(rows, "bytes_sent") == truth["peers"][side]["sent"]
        assert _sum(rows, "bytes_received") == 2
        assert pc.max(rows["rtt_us"]).as_py() > 0


def test_address_text_matches_the_syscall_layer():
    import numpy as np
    from iolens.collector.enrich import decode_sockaddr
    from iolens.probes.tcp import addr_text

    v4 = np.zeros(16, np.uint8)
    v4[:4] = [198, 18, 1, 2]
    assert addr_text(2, v4, 5599) == "tcp:198.18.1.2:5599"
    mapped = np.array([0] * 10 + [255, 255, 10, 0, 0, 1], np.uint8)
    assert addr_text(10, mapped, 80) == "tcp:10.0.0.1:80"
    v6 = np.array([0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [1], np.uint8)
    assert addr_text(10, v6, 443) == "tcp:[2001:db8::1]:443"
    # the same text the syscall layer gives a connect() to that address
    raw = (10).to_bytes(2, "little") + (443).to_bytes(2, "big") + b"\0" * 4 + bytes(v6) + b"\0" * 4
    assert decode_sockaddr(raw) == "tcp:[2001:db8::1]:443"
