"""Test helper: a small ext4 filesystem on a loop device, optionally with its writeback
strictly limited.

`loop_fs`: a real block-device filesystem wherever the tests run (so an fsync of dirty data
really writes blocks, even where /tmp is a tmpfs and fsync is a no-op).
`throttled_fs`: only this loop device's bdi gets `strict_limit` and a 1 MiB `max_bytes`, so
writers to it are paused in balance_dirty_pages while the rest of the machine is untouched.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from contextlib import contextmanager


def _sh(*args: str, check: bool = True) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=check).stdout.strip()


@contextmanager
def loop_fs(size_mb: int = 256, max_dirty_bytes: int | None = None):
    """Yield (mountpoint, 'MAJ:MIN' of the loop device); unmount and detach afterwards.
    max_dirty_bytes: limit this device's dirty page cache (None: the kernel's defaults)."""
    base = tempfile.mkdtemp(prefix="iolens-loop-", dir=os.path.dirname(os.path.abspath(__file__)))
    img, mnt = os.path.join(base, "img"), os.path.join(base, "mnt")
    os.mkdir(mnt)
    dev = None
    mounted = False
    try:
        with open(img, "wb") as f:
            f.truncate(size_mb << 20)
        dev = _sh("losetup", "-f", "--show", img)
        _sh("mkfs.ext4", "-q", "-F", dev)
        _sh("mount", dev, mnt)
        mounted = True
        majmin = open(f"/sys/block/{os.path.basename(dev)}/dev").read().strip()
        if max_dirty_bytes is not None:
            _limit_dirty(majmin, max_dirty_bytes)
        yield mnt, majmin
    finally:
        if mounted:
            _sh("umount", mnt, check=False)
        if dev:
            _sh("losetup", "-d", dev, check=False)
        _sh("rm", "-rf", base, check=False)


def _limit_dirty(majmin: str, max_dirty_bytes: int) -> None:
    bdi = f"/sys/class/bdi/{majmin}"
    with open(f"{bdi}/strict_limit", "w") as f:
        f.write("1")
    with open(f"{bdi}/max_bytes", "w") as f:
        f.write(str(max_dirty_bytes))


def throttled_fs(size_mb: int = 256, max_dirty_bytes: int = 1 << 20):
    """`loop_fs` whose writers are throttled once 1 MiB of it is dirty."""
    return loop_fs(size_mb, max_dirty_bytes)
