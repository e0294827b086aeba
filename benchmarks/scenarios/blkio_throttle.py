"""Sequential shard reads from a disk throttled to 8 MB/s by a cgroup v1 blkio limit.

Needs root and /sys/fs/cgroup/blkio. The process moves itself into a fresh blkio cgroup with
`blkio.throttle.read_bps_device` set for the file's disk, evicts the file from the page cache
and reads it in 1 MiB chunks. Expected: slow-device, culprit resource: the shard.
"""

from __future__ import annotations

import os
from pathlib import Path

from common import data_dir, evict, main, until, write_file

D = data_dir("blkio_throttle")
SIZE = 256 << 20
BPS = 8 * 1000 * 1000
CG = Path("/sys/fs/cgroup/blkio/iolens-scenario")


def disk_of(path: Path) -> str:
    """MAJ:MIN of the whole disk holding `path` (throttles apply to disks, not partitions)."""
    dev = os.stat(path).st_dev
    sys_dev = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    if (sys_dev / "partition").exists():
        return (sys_dev.resolve().parent / "dev").read_text().strip()
    return f"{os.major(dev)}:{os.minor(dev)}"


def prepare() -> None:
    write_file(D / "shard.bin", SIZE)


def run() -> None:
    path = D / "shard.bin"
    CG.mkdir(exist_ok=True)
    (CG / "blkio.throttle.read_bps_device").write_text(f"{disk_of(path)} {BPS}\n")
    (CG / "cgroup.procs").write_text(str(os.getpid()))
    evict(path)
    with open(path, "rb", buffering=0) as f:
        for _ in until():
            if not f.read(1 << 20):
                f.seek(0)
                evict(path)


if __name__ == "__main__":
    main(prepare, run)
