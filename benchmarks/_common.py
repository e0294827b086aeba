"""Helpers shared by the benchmark scripts (not part of the iolens package).

Build `storm.c` with gcc into a temporary directory, run iolens as the user would (the
console script of the venv), min/median statistics, plain-text tables, results JSON.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("IOLENS_BENCH_RESULTS", ROOT / "benchmarks" / "results"))
VENV_BIN = Path(sys.executable).parent
IOLENS = str(VENV_BIN / "iolens") if (VENV_BIN / "iolens").exists() else "iolens"


def build_storm(tmp: Path) -> str:
    """Compile benchmarks/storm.c into `tmp`; return the binary's path."""
    out = tmp / "storm"
    subprocess.run(["gcc", "-O2", "-Wall", "-pthread", "-o", str(out),
                    str(ROOT / "benchmarks" / "storm.c")], check=True)
    return str(out)


def tmpdir(prefix: str) -> Path:
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def rmtree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)


def mn_md(xs: list[float]) -> tuple[float, float]:
    xs = [x for x in xs if x is not None]
    if not xs:
        return float("nan"), float("nan")
    return min(xs), statistics.median(xs)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (also readable in a terminal)."""
    w = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (x + 2) for x in w) + "|",
                      *map(line, rows)])


def machine() -> dict:
    """Where the numbers were taken."""
    cpu = ""
    try:
        for ln in open("/proc/cpuinfo"):
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        mem = int(open("/proc/meminfo").readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        osr = dict(ln.rstrip().split("=", 1) for ln in open("/etc/os-release") if "=" in ln)
        os_name = osr.get("PRETTY_NAME", "").strip('"')
    except OSError:
        os_name = ""
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "kernel": platform.release(),
            "os": os_name, "cpu": cpu, "cpus": os.cpu_count(), "mem_bytes": mem,
            "python": platform.python_version(), "loadavg_start": os.getloadavg()}


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    p = RESULTS / f"{name}.json"
    data = {"machine": machine(), **data}
    p.write_text(json.dumps(data, indent=1, default=str) + "\n")
    return p


def io_size(cap: Path) -> tuple[int, int]:
    """(bytes on disk, rows) of a capture's io table, flat or hive layout."""
    import pyarrow.parquet as pq

    files = list(cap.rglob("io/*.parquet"))
    return sum(f.stat().st_size for f in files), sum(pq.ParquetFile(f).metadata.num_rows
                                                     for f in files)


def need_root() -> None:
    if os.geteuid() != 0:
        sys.exit("benchmarks load BPF programs: run as root")


def rel(p: Path) -> str:
    """`p` relative to the repository when it is inside it."""
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)
