"""Two identical shard readers on the same device; one is in a blkio cgroup throttled to
8 MB/s.

Needs root and /sys/fs/cgroup/blkio. Two processes read their own 128 MiB shard (same disk,
cold: evicted from the page cache before each pass) in 1 MiB chunks, each chunk followed by
10 ms of CPU ("decode"). Reader 1 first moves itself into a fresh cgroup with
`blkio.throttle.read_bps_device` = 8 MB/s for that disk. Truth (measured by the readers and
the kernel): bytes and time in read per reader, /proc/PID/io read_bytes, and the cgroup's
blkio.throttle.io_service_bytes. Expected: slow-device naming the throttled reader's process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from blkio_throttle import disk_of
from common import DURATION, cpu_spin, data_dir, evict, main, write_file, write_truth

NAME = "throttled_reader"
D = data_dir(NAME)
SIZE, CHUNK, BPS = 128 << 20, 1 << 20, 8 * 1000 * 1000
CG = Path("/sys/fs/cgroup/blkio/iolens-throttled-reader")
THROTTLED = 1


def shard(i: int) -> Path:
    return D / f"shard{i}.bin"


def prepare() -> None:
    for i in range(2):
        write_file(shard(i), SIZE)


def _read_bytes() -> int:
    for ln in open("/proc/self/io"):
        if ln.startswith("read_bytes:"):
            return int(ln.split()[1])
    return 0


def reader(i: int, throttled: bool, out: str) -> None:
    path = shard(i)
    if throttled:
        (CG / "cgroup.procs").write_text(str(os.getpid()))
    evict(path)
    rb0, nbytes, read_s, t0 = _read_bytes(), 0, 0.0, time.monotonic()
    with open(path, "rb", buffering=0) as f:
        while time.monotonic() - t0 < DURATION:
            r0 = time.monotonic()
            b = f.read(CHUNK)
            read_s += time.monotonic() - r0
            if not b:
                f.seek(0)
                evict(path)
                continue
            nbytes += len(b)
            cpu_spin(0.010)
    wall = time.monotonic() - t0
    Path(out).write_text(json.dumps({
        "pid": os.getpid(), "shard": str(path), "throttled": throttled, "bytes": nbytes,
        "read_s": round(read_s, 3), "wall_s": round(wall, 3),
        "mb_per_s": round(nbytes / wall / 1e6, 2),
        "read_ms_per_mib": round(read_s * 1e3 / max(nbytes / CHUNK, 1), 2),
        "proc_io_read_bytes": _read_bytes() - rb0}))


def run() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="iolens-tr-"))
    procs = []
    CG.mkdir(exist_ok=True)
    try:
        (CG / "blkio.throttle.read_bps_device").write_text(f"{disk_of(shard(0))} {BPS}\n")
        for i in range(2):
            procs.append(subprocess.Popen([sys.executable, __file__, "--reader", str(i),
                                           "1" if i == THROTTLED else "0",
                                           str(tmp / f"r{i}.json")]))
        if any(p.wait(timeout=DURATION + 60) for p in procs):
            raise SystemExit("a reader failed")
        rd = [json.loads((tmp / f"r{i}.json").read_text()) for i in range(2)]
        service = (CG / "blkio.throttle.io_service_bytes").read_text().split("\n")
        write_truth(NAME, {
            "injected": f"blkio.throttle.read_bps_device {BPS} B/s on reader {THROTTLED}",
            "culprit": {"pid": rd[THROTTLED]["pid"], "role": "throttled reader"},
            "others": [{"pid": rd[1 - THROTTLED]["pid"], "role": "reader"}],
            "readers": rd,
            "cgroup_io_service_bytes": [ln for ln in service if "Read" in ln],
            "checks": {"slowdown_per_byte": round(rd[THROTTLED]["read_ms_per_mib"] / max(
                rd[1 - THROTTLED]["read_ms_per_mib"], 1e-3), 1)}})
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        try:
            CG.rmdir()
        except OSError:
            pass
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    if "--reader" in sys.argv:
        a = sys.argv[sys.argv.index("--reader") + 1:]
        reader(int(a[0]), a[1] == "1", a[2])
    else:
        main(prepare, run)
