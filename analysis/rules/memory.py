"""Page-cache rules: cache-miss (re-reading data that should be cached) and mmap-fault-io.

In: `Ctx`; uses the optional `pagecache` and `faults` tables when recorded (columns in
analysis/queries.py), else weaker evidence from `io` + `events` that says so.
Out: Findings.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from iolens.analysis.rules import Finding
from iolens.analysis.rules._common import (
    FILE_KINDS,
    Ctx,
    field_in,
    rnd,
    sum_by,
    top_rows,
    total,
)

PAGE = 4096
DATA_CLASSES = ("weights", "dataset", "checkpoint")
_CACHE_REC = ("Keep the data cached: give the job enough memory (cgroup memory.max / "
              "page cache), avoid O_DIRECT or fadvise(DONTNEED) on data read every epoch, "
              "or cache decoded samples in RAM / on local disk after the first epoch.")


def cache_miss(ctx: Ctx) -> list[Finding]:
    """Files read again and again from the device instead of the page cache."""
    pcache = ctx.reduced.get("pagecache")
    reads = ctx.resources(field_in("kind", FILE_KINDS) & pc.equal(pc.field("op"), "read"))
    if reads.num_rows == 0:
        return []
    per = sum_by(reads, ["pid", "resource"], ["count", "bytes", "lat_sum_ns"])
    if pcache is not None:
        return _with_pagecache(ctx, per, pcache)
    return _from_reopens(ctx, per)


def _with_pagecache(ctx: Ctx, per: pa.Table, pcache: pa.Table) -> list[Finding]:
    j = _pid64(per).join(_pid64(pcache.select(["pid", "resource", "miss_bytes",
                                                "size_bytes"])),
                 ["pid", "resource"], join_type="inner")
    if j.num_rows == 0:
        return []
    miss = pc.cast(j.column("miss_bytes"), pa.float64())
    size = pc.cast(pc.fill_null(j.column("size_bytes"), 0), pa.float64())
    # re-read: more bytes read than the file holds; a miss share that high means they came
    # from the device each time.
    reread = pc.and_(pc.greater(size, 0),
                     pc.greater_equal(pc.cast(j.column("bytes"), pa.float64()),
                                      pc.multiply(size, 1.5)))
    share = pc.divide(miss, pc.max_element_wise(pc.cast(j.column("bytes"), pa.float64()), 1.0))
    hit = j.filter(pc.and_(reread, pc.greater_equal(share, ctx.th["cache_miss_share"])))
    return _finding(ctx, hit, total(hit, "miss_bytes"), "pagecache")


def _from_reopens(ctx: Ctx, per: pa.Table) -> list[Finding]:
    opens = ctx.reduced.get("opens")
    if opens is None:
        return []
    j = _pid64(per).join(_pid64(opens.select(["pid", "resource", "opens"])), ["pid", "resource"],
                 join_type="inner")
    if j.num_rows == 0:
        return []
    lat_s = pc.divide(pc.cast(j.column("lat_sum_ns"), pa.float64()), 1e9)
    mbps = pc.divide(pc.divide(pc.cast(j.column("bytes"), pa.float64()), 1e6),
                     pc.max_element_wise(lat_s, 1e-9))
    # Re-opened and read at device speed (< slow_read_mbps × 4: far below page-cache copies).
    hit = j.filter(pc.and_(pc.greater_equal(j.column("opens"), ctx.th["cache_reread_opens"]),
                           pc.less(mbps, ctx.th["slow_read_mbps"] * 4)))
    return _finding(ctx, hit, None, ctx.reduced.missing_reason("pagecache"))


def _pid64(t: pa.Table) -> pa.Table:
    """Join keys must agree in type (captures hold int32 pids, other tables may not)."""
    i = t.schema.get_field_index("pid")
    return t.set_column(i, "pid", pc.cast(t.column("pid"), pa.int64()))


def _finding(ctx: Ctx, hit: pa.Table, miss_bytes: float | None, source: str) -> list[Finding]:
    if hit.num_rows == 0:
        return []
    lat = total(hit, "lat_sum_ns")
    top = top_rows(hit, "lat_sum_ns", 1)[0]
    conc = len(set(hit.column("pid").to_pylist()))
    ev = {"files": hit.num_rows, "bytes_read": int(total(hit, "bytes")),
          "time_s": rnd(lat / 1e9), "processes": conc,
          "top_files": [r["resource"] for r in top_rows(hit, "lat_sum_ns", 5)]}
    if miss_bytes is not None:
        ev["miss_bytes"] = int(miss_bytes)
    else:
        ev["inferred_from"] = f"re-opens and read speed ({source})"
    return [Finding(code="IO-CACHEMISS", category="cache-miss", severity="",
                    title=f"{hit.num_rows} file(s) re-read from the device, not the page cache",
                    culprit=ctx.culprit(int(top["pid"]), top["resource"]),
                    impact_s=lat / 1e9 / max(conc, 1), evidence=ev,
                    recommendation=_CACHE_REC)]


def mmap_fault_io(ctx: Ctx) -> list[Finding]:
    """Time in page faults that read mmap'd files (model weights loaded by mmap)."""
    faults = ctx.reduced.get("faults")
    if faults is None:
        return _mmap_without_faults(ctx)
    per = sum_by(faults, ["pid"], ["faults", "bytes", "lat_sum_ns", "timed_rows"])
    out = []
    for row in per.to_pylist():
        t = row["lat_sum_ns"] / 1e9
        if not row["timed_rows"]:
            out.append(_untimed(ctx, row))
            continue
        if t < ctx.th["fault_time_fraction"] * ctx.pid_wall(row["pid"]):
            continue
        files = top_rows(faults.filter(pc.equal(faults.column("pid"), row["pid"])),
                         "lat_sum_ns", 3)
        out.append(Finding(
            code="IO-MMAPFAULT", category="mmap-fault-io", severity="",
            title=f"{t:.1f} s in {int(row['faults']):,} page faults reading mmap'd files",
            culprit=ctx.culprit(row["pid"], files[0]["resource"] if files else None),
            impact_s=t, evidence={"faults": int(row["faults"]), "bytes": int(row["bytes"]),
                                  "time_s": rnd(t),
                                  "top_files": [f["resource"] for f in files]},
            recommendation=_MMAP_REC))
    return out


_MMAP_REC = ("Pre-fault the mapping (MAP_POPULATE / madvise(MADV_WILLNEED)), read the weights "
             "with large sequential reads instead of faulting them page by page, or keep them "
             "on faster storage / in the page cache.")


def _untimed(ctx: Ctx, row: dict) -> Finding:
    """Faults that did I/O, but their duration was not recorded: no impact claimed."""
    return Finding(code="IO-MMAPFAULT-UNTIMED", category="mmap-fault-io", severity="info",
                   title=f"{int(row['faults']):,} page faults read {row['bytes'] / 1e6:,.1f} MB "
                         "of mmap'd files (duration not recorded)",
                   culprit=ctx.culprit(row["pid"]), impact_s=0.0,
                   evidence={"faults": int(row["faults"]), "bytes": int(row["bytes"])},
                   recommendation=_MMAP_REC)


def _mmap_without_faults(ctx: Ctx) -> list[Finding]:
    """No fault data: name the mmap'd files (info, no impact claimed) and say why."""
    # shared libraries are mmap'd by every process: only data/model files count here
    data = field_in("file_class", DATA_CLASSES)
    m = ctx.ops(field_in("kind", FILE_KINDS) & pc.equal(pc.field("op"), "mmap") & data)
    if m.num_rows == 0:
        return []
    r = ctx.resources(field_in("kind", FILE_KINDS) & pc.equal(pc.field("op"), "mmap") & data)
    files = [x["resource"] for x in top_rows(r, "count", 3)] if r.num_rows else []
    pid = int(top_rows(m, "count", 1)[0]["pid"])
    attached = getattr(ctx.reduced.meta, "probes_attached", None) or []
    if "pagecache" in attached:
        # the probe that records faults was there and saw none that did I/O: the mapped
        # files were served from the page cache, which is no finding at all
        return []
    return [Finding(code="IO-MMAP-NODATA", category="mmap-fault-io", severity="info",
                    title="files are mmap'd; fault I/O not measured",
                    culprit=ctx.culprit(pid, files[0] if files else None), impact_s=0.0,
                    evidence={"mmaps": int(total(m, "count")), "files": files,
                              "faults": ctx.reduced.missing_reason("faults")},
                    recommendation=_MMAP_REC)]


RULES = (cache_miss, mmap_fault_io)
