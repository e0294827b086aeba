"""Shared plumbing of the optional kernel probes (block, pagecache, tcp).

Pure Python, no bcc import: tracepoint/field checks against tracefs, validated integer -D
flags, the double-buffered drain (flip `ctl[0]`, wait, read-and-delete the idle per-CPU hash),
kernel dev_t conversion and log2-histogram list columns.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from iolens.probes.preflight import tracefs_root

HERE = Path(__file__).resolve().parent
FLIP_GRACE_S = 0.002  # longer than any in-flight BPF program run


class ProbeUnavailable(RuntimeError):
    """This kernel cannot run the probe; the message is the one-line reason."""


def tracepoint_fields(category: str, event: str, root: Path | None = None) -> set[str] | None:
    """Field names of a tracepoint from its tracefs format file; None when it does not exist."""
    root = root or tracefs_root()
    if root is None:
        return None
    try:
        text = (root / "events" / category / event / "format").read_text()
    except OSError:
        return None
    out = set()
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("field:"):
            continue
        decl = line[len("field:"):].split(";", 1)[0].strip()
        name = decl.split()[-1].split("[", 1)[0]
        if not name.startswith("common_"):
            out.add(name)
    return out


def require(category: str, event: str, fields: tuple[str, ...],
            root: Path | None = None) -> set[str]:
    """The tracepoint's fields, or ProbeUnavailable naming what is missing."""
    have = tracepoint_fields(category, event, root)
    if have is None:
        raise ProbeUnavailable(f"tracepoint {category}:{event} not present on this kernel")
    missing = [f for f in fields if f not in have]
    if missing:
        raise ProbeUnavailable(f"tracepoint {category}:{event} lacks field(s) {', '.join(missing)}")
    return have


def missing_hooks(cflags: list[str] | None, hooks: dict[str, str]) -> dict[str, str]:
    """The optional hooks a loaded probe was built without: {hook: what is lost}.

    `hooks` maps each `-DHAVE_<hook>=1` flag a probe's plan may add to a one-line consequence
    of its absence; the collector records the result in the capture's `probes_skipped` as
    `<probe>:<hook>`, so a capture says what it could not see instead of showing zeros.
    """
    have = set(cflags or [])
    return {h: why for h, why in hooks.items() if f"-DHAVE_{h}=1" not in have}


def int_flag(name: str, value: int, lo: int, hi: int) -> str:
    """A validated integer -D flag (the only way options reach C)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return f"-D{name}={int(value)}"


def render(cflags: list[str], source: Path) -> str:
    return "".join(f"// cflag {f}\n" for f in cflags) + source.read_text()


class Flipper:
    """Double-buffered per-CPU aggregation: maps NAME0/NAME1 selected by ctl[0]."""

    def __init__(self, prog, name: str, key_dtype: np.dtype, val_dtype: np.dtype,
                 capacity: int) -> None:
        self.prog, self.name = prog, name
        self.key_dtype, self.val_dtype, self.capacity = key_dtype, val_dtype, capacity
        self.active = 0

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """Flip, wait for in-flight programs, read-and-delete the idle map.

        Returns (keys, vals[n, ncpu]).
        """
        idle = self.active
        self.active ^= 1
        self.prog.array_set_u32("ctl", 0, self.active)
        time.sleep(FLIP_GRACE_S)
        return self.prog.take_percpu_hash(f"{self.name}{idle}", self.key_dtype, self.val_dtype,
                                          self.capacity)


def sum_fields(vals: np.ndarray, max_fields: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Per-CPU values [n, ncpu] -> per-key totals (sum, or max for `max_fields`)."""
    out = {}
    for name in vals.dtype.names:
        col = vals[name]
        if name in max_fields:
            out[name] = col.max(axis=1) if col.size else np.zeros(len(vals), col.dtype)
        else:
            out[name] = col.sum(axis=1, dtype=np.uint64)
    return out


def kdev_split(kdev: int) -> tuple[int, int]:
    """Kernel-internal dev_t (MAJOR<<20 | MINOR) -> (major, minor)."""
    return int(kdev) >> 20, int(kdev) & 0xFFFFF


def kdev_to_st_dev(kdev: int) -> int:
    """Kernel-internal dev_t -> user-space st_dev (glibc makedev encoding)."""
    return os.makedev(*kdev_split(kdev))


def kdev_str(kdev: int) -> str:
    ma, mi = kdev_split(kdev)
    return f"{ma}:{mi}"


def trimmed_lists(hist: np.ndarray) -> pa.Array:
    """(rows x buckets) counts -> list<int64> without trailing zero buckets."""
    n, b = hist.shape
    nz = hist != 0
    last = np.where(nz.any(axis=1), b - np.argmax(nz[:, ::-1], axis=1), 0)
    offsets = np.concatenate([[0], np.cumsum(last)]).astype(np.int32)
    mask = np.arange(b)[None, :] < last[:, None]
    values = hist[mask].astype(np.int64)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.int64()))


def ts_column(start_ns: int, n: int) -> pa.Array:
    from iolens.collector.schema import TS

    return pa.array(np.full(n, start_ns, dtype=np.int64)).cast(TS)
