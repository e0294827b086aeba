"""SVG snapshots of the dashboard at fixed sizes on deterministic data with a frozen clock.

Regenerate after a deliberate change with
`.venv/bin/python -m pytest tests/tui/test_snapshots.py --snapshot-update` and look at the
SVGs in tests/tui/__snapshots__/ before committing them.
"""

from __future__ import annotations

import pytest

from tests.fakes import FakeSource
from tests.tui import scene
from tests.tui.conftest import frozen_clock, make_app, settled, wait_for
from iolens.analysis import rules as rules_mod
from iolens.analysis.rules import Finding
from iolens.collector.sources import ReplaySource
from iolens.tui.app import TopApp
from tests.tui.test_replay import CAPTURE


def _finding(tables, meta=None, thresholds=None):
    return [Finding(code="F01", category="small-io", severity="high",
                    title="dataloader worker 3: 100% of reads < 16 KiB on /data/imagenet",
                    culprit={"pid": scene.SLOW_WORKER, "comm": "pt_data_worker",
                             "resource": scene.HOT_FILE}),
            Finding(code="F07", category="sync-stall", severity="warn",
                    title="trainer: fsync of /ckpt/step_1000.pt blocked 150 ms",
                    culprit={"pid": scene.TRAINER, "comm": "python"})]


@pytest.fixture(autouse=True)
def _rules(monkeypatch):
    monkeypatch.setattr(rules_mod, "run_rules", _finding)


def _ready(n: int = 10, *keys: str):
    async def run_before(pilot) -> None:
        await wait_for(pilot, settled(pilot.app, n))
        if keys:
            await pilot.press(*keys)
            await pilot.pause()
    return run_before


def test_dashboard_80x24(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=_ready())


def test_dashboard_160x48(snap_compare):
    assert snap_compare(make_app(), terminal_size=(160, 48), run_before=_ready())


def test_files_by_directory_80x24(snap_compare):
    app = make_app()

    async def run_before(pilot) -> None:
        await wait_for(pilot, settled(app, 10))
        await pilot.press("g")
        await wait_for(pilot, lambda: app.snapshot.file_group == "dir"
                       and app.verdict_seq == app.snapshot.seq)
        await pilot.press("2")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_drill_down_80x24(snap_compare):
    app = make_app(scene.intervals(6))

    async def run_before(pilot) -> None:
        await wait_for(pilot, settled(app, 6))
        rows = [r["pid"] for r in app.table("processes").shown_rows]
        app.table("processes").move_cursor(row=rows.index(scene.TRAINER))
        await pilot.press("enter")
        await pilot.pause()
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_help_80x24(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24),
                        run_before=_ready(10, "question_mark"))


def test_replay_of_committed_capture_80x24(snap_compare):
    app = TopApp(ReplaySource(str(CAPTURE), speed=0.0), clock=frozen_clock, verdict_every=1,
                 verdict_share=None, poll_s=0.02)

    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.finished
                       and app.verdict_seq == app.snapshot.seq)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


class _Compiling(FakeSource):
    status = "compiling probes…"


def test_compiling_probes_before_data_80x24(snap_compare):
    app = TopApp(_Compiling([], hold_open=True), clock=frozen_clock, poll_s=0.02)

    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: app.status == "compiling probes…")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
