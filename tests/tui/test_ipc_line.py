"""The DataLoader's IPC as its own line under the trainer in the process tree (issue 19):
Pilot on a FakeSource of the synthetic loader of tests/analysis/synth_ipc.py."""

from __future__ import annotations

from tests import factories as F
from tests.analysis import synth_ipc
from tests.tui.conftest import make_app, settled, wait_for
from iolens.tui.app import TopApp


def _intervals(per_batch: int, n: int = 3) -> list:
    return [F.interval(synth_ipc.interval_rows(k, 10, per_batch),
                       synth_ipc.procs() if k == 0 else None, ts=F.T0 + k * 10**9)
            for k in range(n)]


def _rows(app: TopApp) -> list[dict]:
    return app.table("processes").shown_rows


async def test_ipc_line_under_the_trainer():
    app = make_app(_intervals(64))
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, settled(app, 3))
        rows = _rows(app)
        keys = [r["_key"] for r in rows]
        at = keys.index(str(synth_ipc.TRAINER))
        line = rows[at + 1]
        assert line["_key"] == f"ipc:{synth_ipc.TRAINER}"
        # 10 batches x 64 objects in the 1 s rate window; 64 per batch
        assert line["ops_s"] == 640
        assert "640 obj/s" in line["name"] and "64/batch" in line["name"]
        assert app.snapshot.ipc[synth_ipc.TRAINER]["ipc_share"] > 0.1
        # the line is not a process: not counted, and only one such line
        assert sum(1 for k in keys if k.startswith("ipc:")) == 1
        await pilot.press("enter")  # drilling on it must not fail
        await pilot.press("escape")


async def test_no_ipc_line_without_loader_traffic():
    from tests.tui import scene

    app = make_app(scene.intervals(3))
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, settled(app, 3))
        assert not [r for r in _rows(app) if r["_key"].startswith("ipc:")]
        assert app.snapshot.ipc == {}
