"""Replay end to end on the committed capture tests/data/small_capture (see its README), and
the `iolens top` argument handling."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from tests.tui import scene
from tests.tui.conftest import frozen_clock, wait_for
from iolens.collector.sources import ReplaySource
from iolens.tui import cli
from iolens.tui.app import TopApp

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "small_capture"
SIZE = (100, 30)


def replay_app(speed: float = 0.0) -> tuple[TopApp, ReplaySource]:
    src = ReplaySource(str(CAPTURE), speed=speed)
    return TopApp(src, clock=frozen_clock, verdict_every=1, verdict_share=None,
                  poll_s=0.02), src


def at(app: TopApp, pos: int):
    return lambda: app.snapshot is not None and app.snapshot.position == (pos, 10)


async def test_replay_shows_the_hottest_file_and_process_at_the_top():
    app, _ = replay_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.finished)
        assert app.snapshot.position == (10, 10)
        await pilot.press("t")
        assert app.table("processes").shown_rows[0]["pid"] == scene.SLOW_WORKER
        await pilot.press("2")
        assert app.table("files").shown_rows[0]["_key"] == scene.HOT_FILE
        health = str(app.main.query_one("#health").render())
        assert "REPLAY 10/10" in health and "00:00:10" in health
        assert "probes 1, 1 skipped" in health


async def test_replay_warns_about_skipped_files_and_an_abrupt_end(tmp_path):
    cap = tmp_path / "cap"
    shutil.copytree(CAPTURE, cap)
    (cap / "io" / "part-000001.parquet").write_bytes(b"not parquet")
    (cap / "io" / "part-000002.parquet.tmp").write_bytes(b"cut short")
    app = TopApp(ReplaySource(str(cap), speed=0.0), clock=frozen_clock, poll_s=0.02)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: len(app.warnings) == 2)
        assert "skipped 1 unreadable file(s)" in app.warnings[0]
        assert "part-000001.parquet" in app.warnings[0]
        assert "ended abruptly" in app.warnings[1]
        await wait_for(pilot, lambda: app.snapshot is not None and app.snapshot.finished)
        assert app.snapshot.position == (10, 10)


async def test_replay_pause_step_seek_and_speed():
    app, src = replay_app(speed=0.25)                   # one interval per 4 s until paused
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None)
        await pilot.press("space")                       # pause
        await wait_for(pilot, lambda: app.snapshot.paused)
        pos = app.snapshot.position[0]
        await pilot.press("n")                           # step one
        await wait_for(pilot, at(app, pos + 1))
        await pilot.press("end")
        await wait_for(pilot, at(app, 10))
        assert app.snapshot.intervals_seen == 10         # the window was rebuilt
        await pilot.press("left")                        # back 10 intervals
        await wait_for(pilot, at(app, 0))
        await pilot.press("n", "n", "n", "n", "n", "n")  # interval 5 is the checkpoint
        await wait_for(pilot, at(app, 6))
        await pilot.press("2")
        assert scene.CKPT in [r["_key"] for r in app.table("files").shown_rows]
        await pilot.press("right", "home")
        await wait_for(pilot, at(app, 0))
        await pilot.press("plus", "plus", "plus")
        await wait_for(pilot, lambda: app.snapshot.speed == 2.0)
        assert "paused" in str(app.main.query_one("#health").render())
        assert src.paused


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="iolens top")
    cli.add_arguments(p)
    return p.parse_args(argv)


def test_arguments():
    a = parse(["-p", "1", "-p", "2", "--interval", "0.5", "--record", "r1"])
    assert a.pid == [1, 2] and a.interval == 0.5 and a.record == "r1"
    b = parse(["--", "python", "train.py", "--lr", "3"])
    assert cli._command(b) == ["python", "train.py", "--lr", "3"]
    assert parse(["--replay", "x", "--speed", "4"]).speed == 4.0


@pytest.mark.parametrize("argv,msg", [
    (["--replay", "/nonexistent/cap"], "no such capture"),
    (["--replay", str(CAPTURE), "-p", "3"], "cannot be combined"),
    (["--replay", str(CAPTURE), "--speed", "-1"], "--speed must be >= 0"),
    (["-p", "3", "--", "sleep", "1"], "not both"),
    (["--interval", "0"], "--interval must be between"),
    (["--record", str(CAPTURE)], "already exists"),
])
def test_bad_input_is_one_line_and_exit_2(argv, msg, capsys):
    assert cli.run(parse(argv)) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err


def test_run_replays_through_the_given_app_and_closes_the_source():
    made = {}

    class Stub:
        def __init__(self, source):
            made["source"] = self.source = source
            self.failed = None

        def run(self):
            return 0

    assert cli.run(parse(["--replay", str(CAPTURE)]), app_factory=Stub) == 0
    assert isinstance(made["source"], ReplaySource) and made["source"].finished


def test_live_without_the_collector_module_is_one_line(monkeypatch, capsys):
    import builtins
    real = builtins.__import__

    def fake_import(name, *a, **kw):
        if name == "iolens.collector.live":
            raise ImportError("No module named 'iolens.collector.live'")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert cli.run(parse(["-p", "1"])) == 2
    assert "live collection is unavailable" in capsys.readouterr().err


def test_the_tui_never_imports_bcc():
    import subprocess
    import sys
    code = ("import sys, iolens.tui.app, iolens.tui.cli, iolens.tui.model; "
            "sys.exit('bcc' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
