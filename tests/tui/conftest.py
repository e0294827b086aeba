"""TUI test helpers: build the real app on a fake source and wait for frames to land."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable

import pytest

from tests.fakes import FakeSource
from tests.tui import scene
from iolens.tui.app import TopApp

FROZEN = 0.0


def frozen_clock() -> float:
    return FROZEN


def make_app(intervals=None, hold_open: bool = True, **kw) -> TopApp:
    """A TopApp on a FakeSource of the scene; verdicts every frame, frozen clock."""
    src = FakeSource(scene.intervals() if intervals is None else intervals,
                     hold_open=hold_open)
    kw.setdefault("verdict_every", 1)
    kw.setdefault("verdict_share", None)  # every frame, however slow the machine
    kw.setdefault("poll_s", 0.02)
    return TopApp(src, clock=frozen_clock, **kw)


async def wait_for(pilot, cond: Callable[[], bool], tries: int = 1000) -> None:
    """Let the app run until `cond()` holds (not a timing assertion: it only bounds a hang)."""
    for _ in range(tries):
        if cond():
            await pilot.pause()
            return
        await pilot.pause(0.01)
    raise AssertionError("condition never became true")


def settled(app: TopApp, n: int) -> Callable[[], bool]:
    """All `n` intervals shown and the verdicts computed on the newest frame."""
    def ok() -> bool:
        snap = app.snapshot
        return (snap is not None and snap.intervals_seen == n and app.frames > 0
                and app.verdict_seq == snap.seq)
    return ok


@pytest.fixture(autouse=True)
def _no_cursor_blink(monkeypatch):
    from textual.widgets import Input
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None, raising=False)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run `async def` tests (Pilot) on a fresh event loop; no async plugin needed."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{n: pyfuncitem.funcargs[n] for n in names}))
    return True
