"""Real BPF (root): `iolens top -- CMD` and `iolens top -p PID` on a known workload find its
file at the top.

Drives the real app through Pilot with the same live-source factory `iolens top` builds.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from tests.tui.conftest import wait_for
from iolens.tui import cli
from iolens.tui.app import TopApp

pytestmark = pytest.mark.bpf

WORKLOAD = """
import os, sys, time
path = sys.argv[1]
end = time.monotonic() + 4.0
with open(path, "rb", buffering=0) as f:
    while time.monotonic() < end:
        f.seek(0)
        while f.read(4096):
            pass
"""


def files(app: TopApp) -> list[str]:
    """File keys of the dashboard's current frame."""
    snap = app.snapshot
    return [] if snap is None else snap.files.column("key").to_pylist()


async def test_live_top_finds_the_workload_file_at_the_top(tmp_path):
    data = tmp_path / "known-input.bin"
    data.write_bytes(os.urandom(1 << 20))
    args = argparse.Namespace(pid=[], replay=None, speed=1.0, record=None, interval=0.5,
                              command=["--", sys.executable, "-c", WORKLOAD, str(data)])
    cli.validate(args)
    app = TopApp(cli.build_source(args), verdict_every=2)
    target = str(data)


    async with app.run_test(size=(120, 30)) as pilot:
        # generous bound: compiling the probes takes 10-30 s on a loaded 2-core machine
        await wait_for(pilot, lambda: target in files(app) or app.failed is not None, tries=20000)
        assert app.failed is None
        await pilot.press("2")
        await wait_for(pilot, lambda: bool(app.table("files").shown_rows))
        assert app.table("files").shown_rows[0]["_key"] == target
        top = app.table("processes").shown_rows
        assert any(r.get("comm", "").startswith("python") for r in top)
        print(f"first frame with data after {app.first_frame_s:.2f}s")
        await pilot.press("q")
    app.source.close()



# Reads its file in a loop until told to stop (a process already running when `top` starts).
PID_WORKLOAD = """
import os, sys, time
path, stop = sys.argv[1], sys.argv[2]
end = time.monotonic() + 180
with open(path, "rb", buffering=0) as f:
    while time.monotonic() < end and not os.path.exists(stop):
        f.seek(0)
        while f.read(4096):
            pass
"""


async def test_live_top_p_follows_a_running_pid_and_only_it(tmp_path):
    data, stop = tmp_path / "pid-input.bin", tmp_path / "stop"
    data.write_bytes(os.urandom(1 << 20))
    work = subprocess.Popen([sys.executable, "-c", PID_WORKLOAD, str(data), str(stop)])
    try:
        args = argparse.Namespace(pid=[work.pid], replay=None, speed=1.0, record=None,
                                  interval=0.5, command=[])
        cli.validate(args)
        app = TopApp(cli.build_source(args), verdict_every=2)
        target = str(data)


        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(pilot, lambda: target in files(app) or app.failed is not None,
                           tries=20000)
            assert app.failed is None
            # -p traces that process (and its children) only: no other pid is shown
            assert set(app.snapshot.processes.column("pid").to_pylist()) == {work.pid}
            await pilot.press("2")
            await wait_for(pilot, lambda: bool(app.table("files").shown_rows))
            assert app.table("files").shown_rows[0]["_key"] == target
            await pilot.press("q")
        app.source.close()
    finally:
        stop.touch()
        work.wait(timeout=30)
    assert work.returncode == 0  # watched, not harmed
