"""Real BPF, as root: the block probe records a device view of known O_DIRECT I/O.

Other processes share the disk, so totals are checked as lower bounds and internal
consistency (histogram sums equal counts) is checked exactly. Read with plain pyarrow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

pytestmark = pytest.mark.bpf
HERE = Path(__file__).resolve().parent
IOLENS = [sys.executable, "-m", "iolens.collector.cli"]


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    base = tmp_path_factory.mktemp("block")
    out, truth = base / "cap", base / "truth.json"
    # the work file must live on a real block device (not tmpfs): use the test checkout's disk
    work = HERE / f".work-block-{base.name}"
    proc = subprocess.run([*IOLENS, "record", "-q", "-o", str(out), "--", sys.executable,
                           str(HERE / "wl_block.py"), str(work), str(truth)],
                          capture_output=True, text=True, timeout=120)
    subprocess.run(["rm", "-rf", str(work)], check=False)
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((out / "capture.json").read_text())
    block = ds.dataset(str(out / "block"), format="parquet").to_table()
    return meta, block, json.loads(truth.read_text())


def test_block_probe_attached(capture):
    meta, _, _ = capture
    assert "block" in meta["probes_attached"], meta["probes_skipped"]


def test_device_totals_cover_the_workload(capture):
    _, block, truth = capture
    dev = block.filter(pc.equal(block["dev"], truth["dev"]))
    assert dev.num_rows > 0
    names = set(dev["device"].to_pylist())
    assert len(names) == 1 and ":" not in names.pop()  # a real name such as vda
    seq = 0
    for op in ("read", "write"):
        rows = dev.filter(pc.equal(dev["op"], op))
        dump = rows.drop(["lat_hist", "size_hist"]).to_pylist()
        assert (pc.sum(rows["bytes"]).as_py() or 0) >= truth["bytes"], (op, dump)
        assert (pc.sum(rows["count"]).as_py() or 0) >= truth["bytes"] // (1 << 20), (op, dump)
        assert pc.max(rows["max_inflight"]).as_py() >= 1, (op, dump)
        seq += pc.sum(rows["seq_count"]).as_py() or 0
    # the workload's 1 MiB requests are back-to-back, so some start where the previous one
    # ended (other processes' requests on the same disk may come in between)
    assert seq >= 2


def test_histograms_are_consistent(capture):
    _, block, _ = capture
    for row in block.to_pylist():
        assert sum(row["lat_hist"]) == row["count"]
        assert sum(row["size_hist"]) == row["count"]
        assert row["lat_max_ns"] <= row["lat_sum_ns"] or row["count"] == 0
        assert row["seq_count"] <= row["count"]
        if row["count"]:
            # the top non-empty latency bucket holds lat_max
            assert len(row["lat_hist"]) - 1 == min(row["lat_max_ns"].bit_length() - 1, 35)


def test_missing_tracepoint_is_a_one_line_reason(tmp_path):
    from iolens.probes._optional import ProbeUnavailable, require

    with pytest.raises(ProbeUnavailable, match="block:block_rq_issue not present"):
        require("block", "block_rq_issue", ("dev",), root=tmp_path)


@pytest.mark.parametrize("spec", ["iolens.probes.block:BlockProbe",
                                  "iolens.probes.pagecache:PageCacheProbe",
                                  "iolens.probes.tcp:TcpProbe"])
def test_probe_without_its_tracepoints_is_skipped_with_a_reason(spec, tmp_path, monkeypatch):
    """start() raises a one-line reason (the collector records it in probes_skipped)."""
    from iolens.probes import _optional
    from iolens.probes.registry import load_class

    monkeypatch.setattr(_optional, "tracefs_root", lambda: tmp_path)
    probe = load_class(spec)(None)
    with pytest.raises(_optional.ProbeUnavailable) as info:
        probe.start()
    assert "not present on this kernel" in str(info.value)
    assert "\n" not in str(info.value)
    assert "not loadable here" in probe.render()
    probe.close()


def _minimal_variants():
    import os

    from iolens.probes import block, pagecache, tcp

    me = os.getpid()
    return [
        ("block without rq bytes", block, ["-DHAVE_RQ_BYTES=0"]),
        ("pagecache, hash instead of task storage", pagecache,
         pagecache.plan(me, task_storage=False)),
        ("pagecache, required hooks only", pagecache,
         [f for f in pagecache.plan(me) if not f.startswith("-DHAVE_") or f == "-DHAVE_ORDER=1"]),
        ("tcp, required hooks only", tcp,
         [f for f in tcp.plan() if not f.startswith(("-DHAVE_", "-DRCVQ_"))]),
    ]


def test_fallback_variants_still_load():
    """Kernels lacking the optional tracepoints (or task storage) get a smaller program that
    the verifier must still accept."""
    from iolens.probes._bcc import Program

    for what, mod, flags in _minimal_variants():
        prog = Program(mod.SOURCE.read_text(), flags, str(mod.HERE))
        try:  # compiled, verified and attached: its tracepoints are open
            assert prog.bpf.num_open_tracepoints() > 0, what
        finally:
            prog.close()
