"""Pure tests of the TUI's derivations (no terminal): tui/model.py, tui/views.py, format."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tests import factories as F
from tests.tui import scene
from iolens.analysis import metrics as M
from iolens.collector import schema as S
from iolens.collector.capture import CaptureMeta
from iolens.tui import format as fmt
from iolens.tui import model as TM
from iolens.tui import views


def window(n: int = 10, **kw) -> TM.Window:
    w = TM.Window(CaptureMeta(probes_skipped={"block": "no tracepoint"}), **kw)
    for iv in scene.intervals(n):
        w.add(iv)
    return w


def test_hot_table_splits_bytes_by_op():
    # given: the scene's trainer sends and receives 50 MB per 1 s interval
    snap = window(1).snapshot(1)
    row = snap.processes.filter(pa.compute.equal(snap.processes["pid"], scene.TRAINER))
    # then: per-op rates come from the factory arguments
    assert row["send_bs"][0].as_py() == 50_000_000
    assert row["recv_bs"][0].as_py() == 50_000_000
    assert row["write_bs"][0].as_py() == 2_000          # 10 log writes of 200 B
    assert row["read_bs"][0].as_py() == 0
    assert row["comm"][0].as_py() == "python"


def test_rates_use_the_last_intervals_only():
    # the checkpoint (interval 5) is in the window but not in the last interval's rates
    w = window(10)
    snap = w.snapshot(1)
    assert scene.CKPT not in snap.files["key"].to_pylist()
    w6 = window(6)
    assert scene.CKPT in w6.snapshot(1).files["key"].to_pylist()
    assert snap.window["io"].num_rows == sum(iv.tables["io"].num_rows
                                             for iv in scene.intervals(10))


def test_file_grouping_by_dir_and_class():
    io = window(1).snapshot(1).recent_io
    by_dir = TM.file_table(io, 1.0, "dir")
    assert sorted(by_dir["key"].to_pylist()) == ["/data/imagenet/train/", "/logs/"]
    by_class = TM.file_table(io, 1.0, "class")
    assert sorted(by_class["key"].to_pylist()) == ["dataset", "log"]
    ds = by_class.filter(pa.compute.equal(by_class["key"], "dataset"))
    assert ds["read_bs"][0].as_py() == 4 * 250 * 8192


def test_peers_without_tcp_table_have_null_retrans_and_with_one_sum_it():
    io = window(1).snapshot(1).recent_io
    assert TM.peer_table(io, 1.0)["retrans"].to_pylist() == [None]
    tcp = pa.table({"resource": [scene.PEER, scene.PEER, "tcp:1.2.3.4:80"],
                    "retransmits": [2, 3, 9], "rtt_us": [100.0, 300.0, 5.0]})
    peers = TM.peer_table(io, 1.0, tcp)
    assert peers["retrans"].to_pylist() == [5] and peers["rtt_us"].to_pylist() == [200.0]


def test_device_table_adapter_and_empty_reason():
    assert TM.device_table(None, 1.0) is None
    block = S.to_table("block", {
        "ts": pa.array([F.T0] * 3, pa.int64()).cast(S.TS), "interval_s": [1.0] * 3,
        "host": ["h"] * 3, "device": ["nvme0n1", "nvme0n1", "sda"],
        "op": ["read", "write", "read"], "count": [10, 30, 5], "bytes": [40960, 4096, 0],
        "lat_sum_ns": [10 << 20, 30 << 20, 5 << 10], "lat_max_ns": [1 << 20, 1 << 20, 1 << 10],
        "lat_hist": [[0] * 20 + [10], [0] * 20 + [30], [0] * 10 + [5]]})
    dev = TM.device_table(block, 2.0)
    nv = dev.filter(pa.compute.equal(dev["key"], "nvme0n1"))
    assert nv["ops_s"][0].as_py() == 20.0
    assert nv["read_bs"][0].as_py() == 20480.0 and nv["write_bs"][0].as_py() == 2048.0
    assert TM.block_reason(CaptureMeta(probes_skipped={"block": "hook missing"})) == \
        "block: hook missing"


def test_tree_order_puts_children_under_parents_hottest_branch_first():
    info = {p["pid"]: TM.ProcInfo(p["pid"], p["ppid"], p["comm"]) for p in scene.procs()}
    order = TM.tree_order([4253, 4242, 4250], info, {4253: 5.0, 4242: 1.0, 4250: 0.1})
    assert [(p, d) for p, d, _ in order] == [(4000, 0), (4242, 1), (4253, 2), (4250, 2)]
    assert order[-1][2] is True   # the last sibling closes the branch


def test_tree_order_survives_a_parent_cycle():
    info = {1: TM.ProcInfo(1, 2), 2: TM.ProcInfo(2, 1)}
    assert sorted(p for p, _, _ in TM.tree_order([1, 2], info, {})) == [1, 2]


def test_spark_series_follows_pids_oldest_first():
    w = window(3)
    snap = w.snapshot(1)
    i = list(snap.spark_pids).index(scene.TRAINER)
    assert snap.spark.shape == (len(snap.spark_pids), TM.SPARK_LEN)
    assert list(snap.spark[i, -3:]) == [100_002_000.0] * 3
    assert not snap.spark[i, :-3].any()


def test_window_keeps_size_and_counts_lost_events():
    w = TM.Window(CaptureMeta(), size=3)
    for k in range(5):
        w.add(F.interval([F.io_row()], ts=F.T0 + k * 10**9, lost=2))
    snap = w.snapshot(1)
    assert len(w.intervals) == 3 and snap.intervals_seen == 5
    assert snap.lost_total == 10 and snap.lost_events == 2
    assert snap.elapsed_s == 5.0  # counted from the first interval ever seen


def test_select_filters_case_insensitively_and_sorts_stably():
    t = window(1).snapshot(1).files
    out = views.select(t, "read_bs", True, "SHARD", ("key",))
    assert out.num_rows == 4
    assert views.select(t, "key", False, "", ("key",))["key"][0].as_py() == \
        "/data/imagenet/train/shard-00.tar"


def test_process_rows_tree_and_labels():
    snap = window(1).snapshot(1)
    rows, total = views.process_rows(snap, "io_frac", True, tree=True)
    assert total == 5
    names = [r["name"] for r in rows]
    assert names[0] == "bash"                      # ancestor without I/O, for context
    assert names[1] == "└─python [trainer · rank 0]"
    assert rows[2]["pid"] == scene.SLOW_WORKER     # hottest child first
    flat, _ = views.process_rows(snap, "io_frac", True, tree=False)
    assert flat[0]["pid"] == scene.SLOW_WORKER


@pytest.mark.parametrize("ns,text", [(0, "-"), (850, "850ns"), (12_000, "12µs"),
                                     (3_400_000, "3.4ms"), (1.2e9, "1.2s")])
def test_latency_format(ns, text):
    assert fmt.latency(ns) == text


def test_sparkline_and_trim():
    assert fmt.sparkline([0, 1, 2, 4], 4) == " ▂▄█"
    assert fmt.sparkline([], 3) == "   "
    assert fmt.left_trim("/a/b/c/d.txt", 8) == "…c/d.txt"
    assert fmt.left_trim("/a.txt", 8) == "/a.txt"
    assert fmt.mbps(0) == "-" and fmt.mbps(2_500_000) == "2.5"
    assert fmt.pct(float("nan")) == "-" and fmt.pct(0.5) == "50"


def test_fast_hist_matrix_equals_metrics():
    col = pa.array([[1, 2], [], None, [0] * 40 + [7], [5] * 36], pa.list_(pa.int64()))
    assert (TM.hist_matrix(col, 36) == M.hist_matrix(col, 36)).all()
    same = pa.array([[1, 2, 3]] * 4 + [[9, 9, 9]], pa.list_(pa.int64()))
    assert (TM.hist_matrix(same, 2) == M.hist_matrix(same, 2)).all()


@pytest.mark.parametrize("keys,group", [(["pid"], None), (["resource"], None)])
def test_group_rollup_agrees_with_metrics_rollup(keys, group):
    # the TUI's roll-up must give the numbers `iolens analyze` gives
    io = window(6).table("io")
    mine = TM.hot_table(io, keys, 6.0).sort_by(keys[0])
    ref = M.rollup(io, keys, 6.0).sort_by(keys[0])
    for col in ("count", "bytes", "errors", "lat_sum_ns", "lat_max_ns", "ops_s", "bytes_s",
                "io_frac", "random_ops"):
        assert mine[col].to_pylist() == ref[col].to_pylist(), col
    for col in ("lat_p50_ns", "lat_p99_ns", "small_frac"):
        assert np.allclose(np.asarray(mine[col]), np.asarray(ref[col]), equal_nan=True), col
    assert [list(h) for h in mine["lat_hist"].to_pylist()] == ref["lat_hist"].to_pylist()


def test_window_drops_old_intervals_past_the_row_budget_but_keeps_sparklines():
    w = window(10, max_rows=20)   # the scene has 7 io rows per interval (9 in interval 5)
    snap = w.snapshot(1)
    assert snap.window["io"].num_rows <= 20 and len(w.intervals) == 2
    assert snap.window_s == 2.0 and snap.intervals_seen == 10
    i = list(snap.spark_pids).index(scene.TRAINER)
    assert np.count_nonzero(snap.spark[i]) == 10
