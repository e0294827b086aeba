"""File I/O rules: small-io, metadata-heavy, sync-stall, random-access, slow-device.

In: `Ctx` (reductions `ops` and `resources` of analysis/queries.py). Out: Findings, one per
group of peer processes (same role, else same comm), culprit = the process that waited most.
Impact = the group's blocked seconds / its number of processes (they wait in parallel).
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
from iolens.analysis.rules import Finding
from iolens.analysis.rules._common import (
    FILE_KINDS,
    META_OPS,
    Ctx,
    concurrency,
    field_in,
    quantile_ms,
    rnd,
    role_key,
    sum_by,
    top_rows,
    total,
)

DATA = ("read", "write")


def by_group(ctx: Ctx, t: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """Split a small reduced table into peer groups (role, else comm)."""
    if t.num_rows == 0:
        return
    pids = pc.unique(t.column("pid"))
    keys = pa.array([role_key(ctx.procs.get(p, {})) for p in pids.to_pylist()])
    # map each row's pid to its group key without a Python loop over rows
    arr = pc.take(keys, pc.index_in(t.column("pid"), value_set=pids))
    for k in sorted(set(keys.to_pylist())):
        yield k, t.filter(pc.equal(arr, k))


def lead_pid(t: pa.Table) -> int:
    """The process with the most blocked time in `t`."""
    per = sum_by(t, ["pid"], ["lat_sum_ns"])
    return int(top_rows(per, "lat_sum_ns", 1)[0]["pid"])


def top_resource(ctx: Ctx, pids: list[int], ops: tuple[str, ...],
                 kinds: tuple[str, ...] = FILE_KINDS) -> tuple[str | None, list[dict]]:
    """The resource (or, when time is spread over many files, their common directory) where
    `pids` spent the most time in `ops`; plus the top few resources as evidence."""
    r = ctx.resources(field_in("pid", pids) & field_in("op", ops) & field_in("kind", kinds)
                      & pc.not_equal(pc.field("resource"), ""))
    if r.num_rows == 0:
        return None, []
    per = sum_by(r, ["resource"], ["lat_sum_ns", "count", "bytes"])
    top = top_rows(per, "lat_sum_ns", 5)
    ev = [{"resource": x["resource"], "time_s": rnd(x["lat_sum_ns"] / 1e9),
           "ops": int(x["count"]), "bytes": int(x["bytes"])} for x in top]
    share = top[0]["lat_sum_ns"] / max(total(per, "lat_sum_ns"), 1)
    if per.num_rows > 20 and share < 0.2:
        dirs = [os.path.dirname(x) for x in per.column("resource").to_pylist()]
        d = sum_by(per.append_column("dir", pa.array(dirs)), ["dir"], ["lat_sum_ns"])
        return str(top_rows(d, "lat_sum_ns", 1)[0]["dir"]) + "/", ev
    return top[0]["resource"] or None, ev


def _pids(t: pa.Table) -> list[int]:
    return sorted(set(t.column("pid").to_pylist()))


def small_io(ctx: Ctx) -> list[Finding]:
    """Many data ops moving little each (Drishti P05/P06, DFAnalyzer small reads)."""
    th, out = ctx.th, []
    ops = ctx.ops(field_in("kind", FILE_KINDS) & field_in("op", DATA))
    for _key, g in by_group(ctx, ops):
        for op in DATA:
            t = g.filter(pc.equal(g.column("op"), op))
            n, b, lat = total(t, "count"), total(t, "bytes"), total(t, "lat_sum_ns")
            rand = total(t, "random_ops")
            if rand >= th["random_share"] * max(n, 1):
                # random ops belong to random-access: judge (and count) only the rest
                keep = (n - rand) / max(n, 1)
                n, b, lat = n - rand, b * keep, lat * keep
            if n < th["small_io_min_ops"] or b / max(n, 1) >= th["small_io_bytes"]:
                continue
            if lat / max(n, 1) / 1e6 > th["slow_avg_lat_ms"]:
                continue  # each op is slow: the device, not the size, is the problem
            pid, conc = lead_pid(t), concurrency(t)
            res, files = top_resource(ctx, _pids(t), (op,))
            out.append(Finding(
                code=f"IO-SMALL-{op.upper()}", category="small-io", severity="",
                title=f"{int(n):,} small {op}s averaging {b / max(n, 1):,.0f} B",
                culprit=ctx.culprit(pid, res), impact_s=lat / 1e9 / conc,
                evidence={"ops": int(n), "avg_bytes": rnd(b / max(n, 1), 1),
                          "time_s": rnd(lat / 1e9), "processes": conc,
                          "ops_per_s": rnd(n / max(ctx.wall_s, 1e-9), 1), "top_resources": files},
                recommendation=(f"Issue larger {op}s (buffer to >= 1 MiB), or pack many small "
                                "files into shards (tar/WebDataset, HDF5, Arrow) read "
                                "sequentially.")))
    return out


def metadata_heavy(ctx: Ctx) -> list[Finding]:
    """open/stat/close time dominating file I/O time (DFAnalyzer: share >= 0.5)."""
    th, out = ctx.th, []
    ops = ctx.ops(field_in("kind", FILE_KINDS))
    for _key, g in by_group(ctx, ops):
        meta = g.filter(field_in("op", META_OPS))
        m_lat, io_lat, m_n = total(meta, "lat_sum_ns"), total(g, "lat_sum_ns"), total(meta, "count")
        if m_n < th["metadata_min_ops"] or m_lat < th["metadata_time_share"] * max(io_lat, 1):
            continue
        conc = concurrency(meta)
        per_op = {r["op"]: int(r["count"]) for r in sum_by(meta, ["op"], ["count"]).to_pylist()}
        res, files = top_resource(ctx, _pids(meta), META_OPS)
        out.append(Finding(
            code="IO-META", category="metadata-heavy", severity="",
            title=f"{m_lat / max(io_lat, 1):.0%} of file I/O time in open/stat/close",
            culprit=ctx.culprit(lead_pid(meta), res), impact_s=m_lat / 1e9 / conc,
            evidence={"metadata_ops": per_op, "metadata_time_s": rnd(m_lat / 1e9),
                      "file_io_time_s": rnd(io_lat / 1e9),
                      "share": rnd(m_lat / max(io_lat, 1)), "processes": conc,
                      "top_resources": files},
            recommendation=("Avoid one file per sample: pack samples into a few large shards, "
                            "cache directory listings and stat results, keep files open.")))
    return out


def sync_stall(ctx: Ctx) -> list[Finding]:
    """Time blocked in fsync/fdatasync (and dirty-page throttling when recorded)."""
    th, out = ctx.th, []
    ops = ctx.ops(pc.equal(pc.field("op"), "fsync"))
    for _key, g in by_group(ctx, ops):
        lat, conc, pid = total(g, "lat_sum_ns"), concurrency(g), lead_pid(g)
        if lat / 1e9 / conc < th["sync_time_fraction"] * ctx.pid_wall(pid):
            continue
        h = ctx.hist(field_in("pid", _pids(g)) & pc.equal(pc.field("op"), "fsync"))
        written = total(ctx.ops(field_in("pid", _pids(g)) & pc.equal(pc.field("op"), "write")),
                        "bytes")
        res, files = top_resource(ctx, _pids(g), ("fsync",))
        out.append(Finding(
            code="IO-SYNC", category="sync-stall", severity="",
            title=f"{lat / 1e9:.1f} s blocked in {int(total(g, 'count')):,} fsync calls",
            culprit=ctx.culprit(pid, res), impact_s=lat / 1e9 / conc,
            evidence={"fsyncs": int(total(g, "count")), "time_s": rnd(lat / 1e9),
                      "p50_ms": rnd(quantile_ms(h, 0.5)), "p99_ms": rnd(quantile_ms(h, 0.99)),
                      "max_ms": rnd(total(g, "lat_max_ns") and
                                    float(pc.max(g.column("lat_max_ns")).as_py()) / 1e6),
                      "bytes_written": int(written), "top_resources": files},
            recommendation=("Take fsync off the critical path: write checkpoints from a "
                            "background thread/process (async checkpointing), fsync once per "
                            "file at the end rather than per write, or stage to fast local "
                            "storage and upload asynchronously.")))
    return out


def random_access(ctx: Ctx) -> list[Finding]:
    """Positional reads/writes that jump around (Drishti P11/P13: > 20% and > 1000)."""
    th, out = ctx.th, []
    r = ctx.resources(field_in("kind", FILE_KINDS) & field_in("op", DATA))
    for _key, g in by_group(ctx, r):
        rand, n = total(g, "random_ops"), total(g, "count")
        if rand < th["random_min_ops"] or rand < th["random_share"] * max(n, 1):
            continue
        share = rand / max(n, 1)
        lat, conc = total(g, "lat_sum_ns"), concurrency(g)
        top = top_rows(g, "random_ops", 1)[0]
        out.append(Finding(
            code="IO-RANDOM", category="random-access", severity="",
            title=f"{share:.0%} of {int(n):,} file ops are random",
            culprit=ctx.culprit(int(top["pid"]), top["resource"]),
            impact_s=lat * share / 1e9 / conc,
            evidence={"random_ops": int(rand), "ops": int(n), "share": rnd(share),
                      "time_s": rnd(lat / 1e9), "avg_bytes": rnd(total(g, "bytes") / max(n, 1), 1),
                      "processes": conc},
            recommendation=("Read sequentially: shuffle at the shard/index level and read "
                            "each shard front to back, or sort the offsets of a batch; use "
                            "larger records so each seek moves more data.")))
    return out


def slow_device(ctx: Ctx) -> list[Finding]:
    """Sequential file I/O that is slow per op or per byte: the storage underneath is slow
    (or throttled). Random-heavy files are left to random-access."""
    th, out = ctx.th, []
    r = ctx.resources(field_in("kind", FILE_KINDS) & field_in("op", DATA))
    if r.num_rows:
        seq = pc.less(pc.cast(r.column("random_ops"), pa.float64()),
                      pc.multiply(pc.cast(r.column("count"), pa.float64()), th["random_share"]))
        r = r.filter(seq)
    for _key, g in by_group(ctx, r):
        n, b, lat = total(g, "count"), total(g, "bytes"), total(g, "lat_sum_ns")
        if b < th["slow_min_bytes"] or lat <= 0:
            continue
        mbps, avg_ms = b / (lat / 1e9) / 1e6, lat / max(n, 1) / 1e6
        large = b / max(n, 1) >= th["small_io_bytes"]
        if not (avg_ms > th["slow_avg_lat_ms"] or (large and mbps < th["slow_read_mbps"])):
            continue
        conc, pid = concurrency(g), lead_pid(g)
        h = ctx.hist(field_in("pid", _pids(g)) & field_in("kind", FILE_KINDS)
                     & field_in("op", DATA))
        res, files = top_resource(ctx, _pids(g), DATA)
        out.append(Finding(
            code="IO-SLOWDEV", category="slow-device", severity="",
            title=f"file I/O at {mbps:,.1f} MB/s while blocked ({avg_ms:.1f} ms per op)",
            culprit=ctx.culprit(pid, res), impact_s=lat / 1e9 / conc,
            evidence={"mb_per_s_blocked": rnd(mbps, 2), "avg_ms": rnd(avg_ms),
                      "p50_ms": rnd(quantile_ms(h, 0.5)), "p99_ms": rnd(quantile_ms(h, 0.99)),
                      "bytes": int(b), "ops": int(n), "time_s": rnd(lat / 1e9),
                      "processes": conc, "top_resources": files,
                      **_block_evidence(ctx)},
            recommendation=("The storage is slow or throttled for this data: check cgroup I/O "
                            "limits (io.max / blkio.throttle), stage the data on local NVMe "
                            "or in memory, or read with more parallel workers and larger "
                            "requests.")))
    return out


def _block_evidence(ctx: Ctx) -> dict:
    """Device-level numbers when the block table exists, else why they are missing."""
    b = ctx.reduced.get("block")
    if b is None:
        return {"block_layer": ctx.reduced.missing_reason("block")}
    top = top_rows(b, "lat_sum_ns", 1)
    if not top:
        return {}
    d = top[0]
    return {"device": d["device"], "device_avg_ms": rnd(d["lat_sum_ns"] / max(d["count"], 1)
                                                        / 1e6),
            "device_mb": rnd(d["bytes"] / 1e6, 1)}


def slow_path(ctx: Ctx) -> list[Finding]:
    """One process served far slower per byte than its peers reading the same kind of data:
    its own storage path is slow (a cgroup I/O limit, another mount, a remote tier), not the
    work it was given. Judged per process on sequential file reads of >= slow_min_bytes
    averaging >= small_io_bytes, against the median of the other processes of the same file
    class."""
    th, out = ctx.th, []
    r = ctx.resources(field_in("kind", FILE_KINDS) & pc.equal(pc.field("op"), "read"))
    per: dict[tuple[str, int], list[float]] = {}
    for row in r.to_pylist():
        if row["random_ops"] >= th["random_share"] * row["count"]:
            continue
        d = per.setdefault((row["file_class"] or "other", row["pid"]), [0.0, 0.0, 0])
        d[0] += row["bytes"]
        d[1] += row["lat_sum_ns"] / 1e9
        d[2] += row["count"]
    classes: dict[str, dict[int, tuple[float, float]]] = {}
    for (cls, pid), (b, t, n) in per.items():
        # a service rate per byte means something for streaming reads; for small reads the
        # per-file work (and whether a file was cached) dominates: small-io/metadata-heavy
        if b >= th["slow_min_bytes"] and t > 0 and b / max(n, 1) >= th["small_io_bytes"]:
            classes.setdefault(cls, {})[pid] = (b, t)
    for cls, procs in classes.items():
        if len(procs) < 2:
            continue
        s_per_mib = {p: t / (b / 2**20) for p, (b, t) in procs.items()}
        slow = max(procs, key=lambda p: (s_per_mib[p], -p))
        peers = statistics.median(v for p, v in s_per_mib.items() if p != slow)
        if s_per_mib[slow] < th["slowpath_ratio"] * max(peers, 1e-9):
            continue
        b, t = procs[slow]
        excess = t - b / 2**20 * peers
        if excess < th["warn_impact_fraction"] * ctx.wall_s:
            continue
        res, files = top_resource(ctx, [slow], ("read",))
        out.append(Finding(
            code="IO-SLOWPATH", category="slow-device", severity="",
            title=f"pid {slow} reads {cls} data at {s_per_mib[slow] * 1e3:.1f} ms/MiB, "
                  f"{s_per_mib[slow] / max(peers, 1e-9):.0f}x slower than its "
                  f"{len(procs) - 1} peer(s) ({peers * 1e3:.1f} ms/MiB)",
            culprit=ctx.culprit(slow, res), impact_s=excess,
            evidence={"ms_per_mib": rnd(s_per_mib[slow] * 1e3),
                      "peers_ms_per_mib": rnd(peers * 1e3), "bytes": int(b),
                      "time_s": rnd(t), "peers": len(procs) - 1, "top_resources": files,
                      "cgroup": ctx.procs.get(slow, {}).get("cgroup"),
                      **_where_time_went(ctx, b, t)},
            recommendation=("This process's storage path is slower than its peers' for the "
                            "same data: check its cgroup I/O limits (io.max / "
                            "blkio.throttle.*), the mount or tier its files are on, and "
                            "whether it shares a device queue with a heavier reader.")))
    return out


def _where_time_went(ctx: Ctx, nbytes: float, time_s: float) -> dict:
    """Block layer split: the device's own issue->completion time for these bytes against the
    process's read time. What the device does not explain was spent before issue (queued or
    throttled above the device: cgroup limits, the I/O scheduler)."""
    b = ctx.reduced.get("block")
    if b is None or b.num_rows == 0:
        return {"block_layer": ctx.reduced.missing_reason("block")}
    reads = [x for x in b.to_pylist() if x["op"] == "read" and x["bytes"]]
    if not reads:
        return {}
    dev_s_per_byte = sum(x["lat_sum_ns"] for x in reads) / 1e9 / sum(x["bytes"] for x in reads)
    device_s = dev_s_per_byte * nbytes
    return {"device_ms_per_mib": rnd(dev_s_per_byte * 2**20 * 1e3),
            "device_share": rnd(min(device_s / max(time_s, 1e-9), 1.0)),
            "where": "device" if device_s >= 0.5 * time_s else
                     "before the device (queued or throttled: cgroup io.max / blkio, scheduler)"}


RULES = (small_io, metadata_heavy, sync_stall, random_access, slow_device, slow_path)
