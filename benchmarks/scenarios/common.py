"""Shared helpers of the labeled scenarios: data directory, cache eviction, run-for loops.

Each scenario is a standalone script: ``python SCENARIO.py --prepare`` creates its data (run
by the suite before recording, so data creation is not part of the capture) and
``python SCENARIO.py`` runs the workload for about DURATION seconds.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

DATA = Path(os.environ.get("IOLENS_SCENARIO_DATA", "/var/tmp/iolens-scenarios"))
DURATION = float(os.environ.get("IOLENS_SCENARIO_SECONDS", "15"))


def data_dir(name: str) -> Path:
    d = DATA / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def evict(path: Path) -> None:
    """Drop a file's pages from the page cache (only this file: other users keep theirs)."""
    fd = os.open(path, os.O_RDONLY)  # pages must be clean: prepare() ends with os.sync()
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def write_file(path: Path, size: int, chunk: int = 1 << 20) -> None:
    """A file of `size` pseudo-random bytes (not sparse, not compressible)."""
    if path.exists() and path.stat().st_size == size:
        return
    block = os.urandom(chunk)
    with open(path, "wb") as f:
        for _ in range(size // chunk):
            f.write(block)
        f.write(block[: size % chunk])


def until(seconds: float = DURATION):
    """Yield loop counts until `seconds` have passed."""
    end, i = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        yield i
        i += 1


def main(prepare, run) -> None:
    """`--prepare` runs prepare(); otherwise run()."""
    if "--prepare" in sys.argv[1:]:
        prepare()
        os.sync()  # written data clean, so evict() can drop it during the run
    else:
        run()


def truth_path(name: str) -> Path:
    """Where the workload writes its truth: $IOLENS_SCENARIO_TRUTH (set by the suite), else
    the scenario's data directory."""
    p = os.environ.get("IOLENS_SCENARIO_TRUTH")
    return Path(p) if p else data_dir(name) / "truth.json"


def write_truth(name: str, truth: dict) -> None:
    """The workload's own account of what it injected and who the culprit is, measured by the
    workload (its timing of waits, /proc and cgroup counters, ss/tc), never by iolens.
    `truth["culprit"]` holds what a right finding must name: pid, and ip/rank where the
    culprit is a network participant; `truth["others"]` the other participants."""
    import json

    path = truth_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(truth, indent=1, default=str) + "\n")


def cpu_spin(seconds: float) -> None:
    """Burn `seconds` of this thread's CPU time (not wall time: under contention it takes
    longer, as real compute would)."""
    t0 = time.thread_time()
    x = 0
    while time.thread_time() - t0 < seconds:
        for i in range(2000):
            x += i * i
