"""Pilot tests of the real app on a FakeSource: sorting, filtering, drill-down, pause, help,
quit, verdicts, the status line and failures. Each waits for frames, never for time."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests import factories as F
from tests.fakes import FakeSource
from tests.tui import scene
from tests.tui.conftest import frozen_clock, make_app, settled, wait_for
from iolens.analysis import rules as rules_mod
from iolens.analysis.rules import Finding
from iolens.tui.app import KEYS, TopApp
from iolens.tui.screens import DrillScreen, HelpScreen

SIZE = (100, 30)


def pids(app: TopApp) -> list[int]:
    return [r["pid"] for r in app.table("processes").shown_rows]


def keys_of(app: TopApp, tab: str) -> list[str]:
    return [r["_key"] for r in app.table(tab).shown_rows]


async def test_processes_tree_sorted_by_io_share():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, settled(app, 10))
        # tree: bash > python trainer > workers, the slow worker (50% io) first
        assert pids(app)[:3] == [4000, scene.TRAINER, scene.SLOW_WORKER]
        await pilot.press("t")  # flat list
        assert pids(app)[0] == scene.SLOW_WORKER


async def test_sort_keys_and_header_click():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, settled(app, 10))
        await pilot.press("t", "2")
        files = app.table("files")
        assert files.sort_col == "io_frac"
        assert keys_of(app, "files")[0] == scene.HOT_FILE
        await pilot.press("s")           # next column: P99 (the last at this width)
        assert files.sort_col == "lat_p99_ns"
        await pilot.press("s")           # wraps to the first: FILE
        assert files.sort_col == "key"
        await pilot.press("S")           # previous
        assert files.sort_col == "lat_p99_ns"
        await pilot.press("r")           # reverse: ascending
        assert files.descending is False
        assert keys_of(app, "files")[0] == "/logs/train.log"   # fastest p99 first
        # clicking the FILE header sorts by path (descending first, click again: ascending)
        await pilot.click("#table-files", offset=(3, 0))
        assert files.sort_col == "key" and files.descending is True
        assert keys_of(app, "files")[0] == "/logs/train.log"
        await pilot.click("#table-files", offset=(3, 0))
        assert keys_of(app, "files")[0] == "/data/imagenet/train/shard-00.tar"


async def test_filter_by_text_and_clear():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, settled(app, 10))
        await pilot.press("2", "slash", *"shard-03")
        assert keys_of(app, "files") == [scene.HOT_FILE]
        await pilot.press("enter")       # keep the filter, back to the table
        assert app.filter_text == "shard-03"
        assert isinstance(app.focused, type(app.table("files")))
        await pilot.press("3")           # the filter applies to peers too: none match
        assert keys_of(app, "peers") == []
        await pilot.press("escape")
        assert app.filter_text == "" and keys_of(app, "peers") == [scene.PEER]
        # Space and the arrows edit the filter text; they do not pause or seek
        await pilot.press("slash", *"train", "left", "space", "enter")
        assert app.filter_text == "trai n" and not app.frozen


async def test_drill_down_enter_and_escape():
    app = make_app(scene.intervals(6))   # interval 5 holds the checkpoint write
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, settled(app, 6))
        table = app.table("processes")
        table.move_cursor(row=pids(app).index(scene.TRAINER))
        await pilot.press("enter")
        assert isinstance(app.screen, DrillScreen) and app.screen.key == scene.TRAINER
        files = app.screen.query_one("#drill-files")
        assert [r["_key"] for r in files.shown_rows][0] == scene.CKPT
        peers = app.screen.query_one("#drill-peers")
        assert [r["_key"] for r in peers.shown_rows] == [scene.PEER]
        hist = str(app.screen.query_one("#drill-hist").render())
        assert "latency of /ckpt/step_1000.pt" in hist and "(100%)" not in hist
        await pilot.press("escape")
        assert app.screen is app.main


async def test_drill_down_on_a_file_lists_its_processes():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, settled(app, 10))
        await pilot.press("2", "enter")
        assert isinstance(app.screen, DrillScreen) and app.screen.key == scene.HOT_FILE
        procs = app.screen.query_one("#drill-procs")
        assert [r["pid"] for r in procs.shown_rows] == [scene.SLOW_WORKER]
        await pilot.press("escape")
        assert app.screen is app.main


async def test_pause_freezes_the_tables_while_data_keeps_coming():
    src = FakeSource(scene.intervals(3), hold_open=True)
    app = TopApp(src, clock=frozen_clock, verdict_every=1, verdict_share=None,
                 poll_s=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, settled(app, 3))
        await pilot.press("space")
        assert app.frozen
        before = app.table("processes").shown_rows
        src.intervals.append(F.interval([F.io_row(pid=9999, comm="newcomer")],
                                        ts=F.T0 + 3 * 10**9))
        await wait_for(pilot, lambda: app.snapshot.intervals_seen == 4)
        assert app.table("processes").shown_rows == before
        assert "paused" in str(app.main.query_one("#health").render())
        await pilot.press("space")
        assert 9999 in pids(app)


async def test_help_lists_every_key_and_closes():
    app = make_app()
    async with app.run_test(size=(100, 60)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-keys").render())
        for _key, _action, desc, _shown in KEYS:
            assert desc in text
        await pilot.press("escape")
        assert app.screen is app.main


async def test_quit_exits_cleanly():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, settled(app, 10))
        await pilot.press("q")
    assert app.return_code == 0
    assert app._stop.is_set()


async def test_verdict_panel_shows_findings(monkeypatch):
    seen = {}

    def fake_rules(tables, meta=None, thresholds=None):
        seen["rows"] = tables["io"].num_rows
        return [Finding(code="F01", category="small-io", severity="high",
                        title="dataloader worker 3: 94% of reads < 16 KiB on /data/imagenet",
                        culprit={"pid": 4253, "comm": "pt_data_worker",
                                 "resource": "/data/imagenet"})]

    monkeypatch.setattr(rules_mod, "run_rules", fake_rules)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, settled(app, 10))
        text = str(app.main.query_one("#verdicts").render())
        assert "HIGH" in text and "small-io" in text and "94% of reads" in text
        assert "pid 4253 pt_data_worker /data/imagenet" in text
        assert seen["rows"] == sum(iv.tables["io"].num_rows for iv in scene.intervals(10))


async def test_a_failing_rule_is_reported_not_fatal(monkeypatch):
    def broken(tables, meta=None, thresholds=None):
        raise ValueError("threshold missing\nmore")

    monkeypatch.setattr(rules_mod, "run_rules", broken)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, settled(app, 10))
        assert "rules failed: threshold missing" in str(app.main.query_one("#verdicts").render())
        assert pids(app)


class _Compiling(FakeSource):
    status = "compiling probes…"


async def test_status_before_first_interval_and_empty_devices():
    app = TopApp(_Compiling([], hold_open=True), clock=frozen_clock, poll_s=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.status == "compiling probes…")
        assert "compiling probes…" in str(app.main.query_one("#health").render())
        await pilot.press("4")
        empty = str(app.main.query_one("#devices-empty").render())
        assert empty == "no block-layer data: block: test: hook unavailable"


async def test_a_source_that_cannot_start_is_one_line_not_a_crash():
    def factory():
        raise PermissionError("need root to load BPF programs\n(traceback...)")

    app = TopApp(factory, clock=frozen_clock, poll_s=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.failed is not None)
        assert app.failed == "need root to load BPF programs"
        assert "need root" in str(app.main.query_one("#health").render())


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
async def test_columns_adapt_to_width(size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, settled(app, 10))
        cols = [str(k.value) for k in app.table("processes").columns]
        assert ("ops_s" in cols) == (size[0] >= 120)
        assert "io_frac" in cols and "spark" in cols


def _with_block_and_tcp(iv):
    """The scene's interval plus a `block` and a `tcp` table of the real schema."""
    from iolens.collector import schema as S
    from iolens.collector.sources import Interval
    ts = pa.array([iv.start_ns] * 2, pa.int64()).cast(S.TS)
    block = S.to_table("block", {
        "ts": ts, "interval_s": [1.0] * 2, "host": ["h"] * 2, "device": ["nvme0n1"] * 2,
        "op": ["read", "write"], "count": [100, 10], "bytes": [100 << 20, 1 << 20],
        "lat_sum_ns": [100 * 200_000, 10 * 50_000], "lat_max_ns": [900_000, 60_000],
        "lat_hist": [[0] * 17 + [100], [0] * 15 + [10]]})
    tcp = S.to_table("tcp", {
        "ts": ts[:1], "interval_s": [1.0], "host": ["h"], "resource": [scene.PEER],
        "retransmits": [7], "rtt_us": [250.0]})
    return Interval(iv.start_ns, iv.end_ns, {**iv.tables, "block": block, "tcp": tcp},
                    iv.health)


async def test_devices_and_peer_retransmits_when_those_tables_exist():
    app = make_app([_with_block_and_tcp(iv) for iv in scene.intervals(3)])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, settled(app, 3))
        await pilot.press("3")
        (peer,) = app.table("peers").shown_rows
        assert peer["_key"] == scene.PEER and peer["retrans"] == 7
        await pilot.press("4")
        (dev,) = app.table("devices").shown_rows
        assert dev["_key"] == "nvme0n1" and dev["read_bs"] == 100 << 20
        assert not app.main.query_one("#devices-empty").display
