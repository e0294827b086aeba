"""Helpers shared by the reliability/security BPF tests: run `iolens record` for real, wait
for it, find the BPF objects a process holds, read a capture with plain pyarrow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = ROOT / "tests" / "workloads"
IOLENS = [sys.executable, "-m", "iolens.collector.cli"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def workload(name: str, *args: object) -> list[str]:
    return [sys.executable, str(WORKLOADS / name), *map(str, args)]


def wait_for(cond, timeout: float, what: str, proc: subprocess.Popen | None = None):
    """Poll `cond()` until truthy; fail with `what` (and the process's stderr if it died)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"process exited ({proc.returncode}) before {what}: {err}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def complete_parts(cap: Path, table: str) -> list[Path]:
    return sorted(cap.glob(f"{table}/part-*.parquet"))


def read_table(cap: Path, table: str) -> pa.Table:
    """Every complete file of a table, each read on its own with plain pyarrow."""
    parts = [pq.read_table(p) for p in complete_parts(cap, table)]
    if not parts:
        return pa.table({})
    return pa.concat_tables(parts, promote_options="default")


def meta(cap: Path) -> dict:
    return json.loads((cap / "capture.json").read_text())


def bpf_objects(pid: int) -> tuple[set[int], set[int]]:
    """(prog ids, map ids) held by a process's file descriptors (from /proc/PID/fdinfo)."""
    progs, maps = set(), set()
    for fi in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            text = fi.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            k, _, v = line.partition(":")
            if k == "prog_id":
                progs.add(int(v))
            elif k == "map_id":
                maps.add(int(v))
    return progs, maps


def bpftool(*args: str) -> list[dict]:
    out = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout or "[]")


def live_prog_ids() -> set[int]:
    return {p["id"] for p in bpftool("prog", "show")}


def live_map_ids() -> set[int]:
    return {m["id"] for m in bpftool("map", "show")}


def one_line_error(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{stderr}"
    assert "Traceback" not in stderr
    return lines[0]
