"""Block-layer probe (block.bpf.c): per interval, device and op -> the `block` table.

Hooks block:block_rq_issue / block_rq_complete / block_rq_requeue. Rows are device-level:
block events run in kworker/IRQ context, so they are never attributed to a process (the
syscall layer does that). A row's `max_inflight` is the deepest device queue (requests issued
and not yet completed, all ops) seen when a request of that row was issued.
"""

from __future__ import annotations

import numpy as np
from iolens.collector import schema as S
from iolens.probes._optional import (
    HERE,
    Flipper,
    ProbeUnavailable,
    int_flag,
    kdev_str,
    render,
    require,
    sum_fields,
    trimmed_lists,
    ts_column,
)

SOURCE = HERE / "block.bpf.c"
OPS = {1: "read", 2: "write", 3: "flush", 4: "discard", 5: "other"}
COUNTERS = ("inflight_full", "agg_full", "unmatched")
AGG_KEY = np.dtype([("dev", "<u4"), ("op", "<u4")])
AGG_VAL = np.dtype([("count", "<u8"), ("bytes", "<u8"), ("errors", "<u8"), ("lat_sum", "<u8"),
                    ("lat_max", "<u8"), ("seq", "<u8"), ("max_inflight", "<u8"),
                    ("lat_hist", "<u4", (S.LAT_BUCKETS,)), ("size_hist", "<u4", (S.SIZE_BUCKETS,))])


def device_name(kdev: int, sysfs: str = "/sys") -> str:
    """`vda` from /sys/dev/block/MAJ:MIN/uevent DEVNAME; MAJ:MIN when unknown."""
    try:
        for line in open(f"{sysfs}/dev/block/{kdev_str(kdev)}/uevent"):
            if line.startswith("DEVNAME="):
                return line.strip().split("=", 1)[1]
    except OSError:
        pass
    return kdev_str(kdev)


def plan(max_keys: int = 1024) -> list[str]:
    require("block", "block_rq_complete", ("dev", "sector", "nr_sector", "error", "rwbs"))
    have = require("block", "block_rq_issue", ("dev", "sector", "nr_sector", "rwbs"))
    require("block", "block_rq_requeue", ("dev", "sector"))
    return [int_flag("MAX_KEYS", max_keys, 16, 65536),
            int_flag("HAVE_RQ_BYTES", int("bytes" in have), 0, 1)]


class BlockProbe:
    name = "block"
    tables = ("block",)

    def __init__(self, opts=None) -> None:
        self.opts = opts
        self.prog = None
        self.cflags: list[str] | None = None
        self._names: dict[int, str] = {}
        self.counters = dict.fromkeys(COUNTERS, 0)

    def render(self) -> str:
        try:
            return render(self.cflags or plan(), SOURCE)
        except ProbeUnavailable as exc:
            return f"// {self.name}: not loadable here: {exc}\n"

    def start(self) -> None:
        from iolens.probes._bcc import Program

        self.cflags = plan()
        try:
            self.prog = Program(SOURCE.read_text(), self.cflags, str(HERE))
        except Exception as exc:
            raise ProbeUnavailable(f"block probe refused: {exc}") from None
        self.flip = Flipper(self.prog, "agg", AGG_KEY, AGG_VAL, 1024)

    def poll(self) -> None:
        pass

    def _name(self, kdev: int) -> str:
        name = self._names.get(kdev)
        if name is None:
            name = self._names[kdev] = device_name(kdev)
        return name

    def drain(self, ctx) -> dict:
        keys, vals = self.flip.take()
        sums = self.prog.percpu_array_sums("counters", len(COUNTERS))
        self.counters = dict(zip(COUNTERS, sums, strict=True))
        n = len(keys)
        if n == 0:
            return {"block": S.empty_table("block")}
        t = sum_fields(vals, max_fields=("lat_max", "max_inflight"))
        devs = [int(d) for d in keys["dev"]]
        cols = {
            "ts": ts_column(ctx.start_ns, n), "interval_s": np.full(n, ctx.interval_s),
            "host": [ctx.host] * n,
            "device": [self._name(d) for d in devs], "dev": [kdev_str(d) for d in devs],
            "op": [OPS.get(int(o), "other") for o in keys["op"]],
            "count": t["count"].astype(np.int64), "bytes": t["bytes"].astype(np.int64),
            "errors": t["errors"].astype(np.int64),
            "lat_sum_ns": t["lat_sum"].astype(np.int64),
            "lat_max_ns": t["lat_max"].astype(np.int64),
            "lat_hist": trimmed_lists(t["lat_hist"]), "size_hist": trimmed_lists(t["size_hist"]),
            "seq_count": t["seq"].astype(np.int64),
            "max_inflight": t["max_inflight"].astype(np.int64),
        }
        return {"block": S.to_table("block", cols)}

    def close(self) -> None:
        if self.prog is not None:
            self.prog.close()
            self.prog = None


__all__ = ["BlockProbe", "device_name"]
