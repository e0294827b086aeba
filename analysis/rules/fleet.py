"""Cross-host rules, for a fleet tree of several hosts (issue 8): a straggler host (or rank)
and a host whose storage is slower than its peers'. Both need >= 2 hosts; on a single-host
capture they return nothing.

In: `Ctx` (the `resources` reduction, which keeps `host`; `block` when recorded; `procs` for
ranks). Out: Findings whose culprit resource is ``host:<name>`` (pid: the host's process that
waited most; the host's RANK in evidence when the processes carry one).

A host is compared with the median of the *other* hosts (with two hosts: with the other one),
so one straggler never drags the reference towards itself.

- FLEET-STRAGGLER (imbalance): a host's seconds blocked in I/O per process (as the verdict
  counts I/O) >= host_straggler_ratio x its peers' median, and the excess >=
  imbalance_time_share of the wall time. Impact = the excess: in synchronous data-parallel
  training every rank waits that long for the slow one at each step.
- FLEET-SLOWHOST (slow-device): a host's file read/write time per byte (or, when the block
  table is recorded on every host, its device latency per request) >= host_slow_ratio x its
  peers' median, on >= slow_min_bytes. Impact = the time it would have saved at the peers'
  median speed, divided among its processes (they wait in parallel).
"""

from __future__ import annotations

import statistics
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from iolens.analysis.rules import Finding
from iolens.analysis.rules._common import (
    FILE_KINDS,
    Ctx,
    blocked_io_rows,
    field_in,
    rnd,
    sum_by,
    top_rows,
)


def hosts_of(ctx: Ctx) -> list[str]:
    r = ctx.resources()
    return sorted(set(r.column("host").to_pylist())) if r.num_rows else []


def _peer_median(values: dict[str, float], host: str) -> float:
    return statistics.median(v for h, v in values.items() if h != host)


def _lead(t: pa.Table, host: str) -> int | None:
    """The process of `host` with the most blocked time in `t`."""
    t = t.filter(pc.equal(t.column("host"), host))
    top = top_rows(sum_by(t, ["pid"], ["lat_sum_ns"]), "lat_sum_ns", 1) if t.num_rows else []
    return int(top[0]["pid"]) if top else None


def _ranks(ctx: Ctx, host: str) -> list[int]:
    """RANKs of the processes seen on `host` (the trainer's, usually; its workers have none)."""
    t = ctx.resources(pc.equal(pc.field("host"), host))
    pids = set(t.column("pid").to_pylist())
    return sorted({int(i["rank"]) for p, i in ctx.procs.items()
                   if p in pids and i.get("rank") is not None})


def _culprit(ctx: Ctx, host: str, pid: int | None) -> dict[str, Any]:
    c = ctx.culprit(pid, f"host:{host}")
    c["resource"] = f"host:{host}"
    c["host"] = host
    return c


def straggler_host(ctx: Ctx) -> list[Finding]:
    """One host much more blocked in I/O (per process) than its peers."""
    th = ctx.th
    if len(hosts_of(ctx)) < 2:
        return []
    rows = blocked_io_rows(ctx)
    if rows.num_rows == 0:
        return []
    per = {r["host"]: r for r in sum_by(rows, ["host"], ["lat_sum_ns", "bytes", "count"])
           .to_pylist()}
    procs = {h: len(set(rows.filter(pc.equal(rows.column("host"), h)).column("pid")
                        .to_pylist())) for h in per}
    if len(per) < 2:
        return []
    secs = {h: per[h]["lat_sum_ns"] / 1e9 / max(procs[h], 1) for h in per}
    mbps = {h: per[h]["bytes"] / max(per[h]["lat_sum_ns"] / 1e9, 1e-9) / 1e6 for h in per}
    worst = max(sorted(per), key=lambda h: secs[h])
    med = _peer_median(secs, worst)
    excess = secs[worst] - med
    if secs[worst] < th["host_straggler_ratio"] * med or \
            excess < th["imbalance_time_share"] * ctx.wall_s:
        return []
    ranks = _ranks(ctx, worst)
    who = f"host {worst}" + (f" (rank {', '.join(map(str, ranks))})" if ranks else "")
    return [Finding(
        code="FLEET-STRAGGLER", category="imbalance", severity="",
        title=f"{who} blocked {secs[worst]:.1f} s per process in I/O vs a median "
              f"{med:.1f} s on its {len(per) - 1} peer host(s)",
        culprit=_culprit(ctx, worst, _lead(rows, worst)), impact_s=excess,
        evidence={"host": worst, "ranks": ranks, "hosts": len(per),
                  "blocked_s_per_process": rnd(secs[worst]), "peer_median_s": rnd(med),
                  "ratio": rnd(secs[worst] / max(med, 1e-9)),
                  "mb_per_s_blocked": rnd(mbps[worst], 2),
                  "peer_median_mb_per_s": rnd(_peer_median(mbps, worst), 2),
                  "per_host": [{"host": h, "blocked_s_per_process": rnd(secs[h]),
                                "processes": procs[h], "bytes": int(per[h]["bytes"]),
                                "mb_per_s_blocked": rnd(mbps[h], 2)} for h in sorted(per)]},
        recommendation=(f"One host holds the fleet back: every synchronous step waits for "
                        f"{worst}. Check its storage and network path against its peers' "
                        "(see FLEET-SLOWHOST), its cgroup I/O limits and noisy neighbours; "
                        "give it less data, or shard dynamically so fast hosts take more."))]


def slow_host_storage(ctx: Ctx) -> list[Finding]:
    """One host whose storage is much slower per byte (or per request) than its peers'."""
    th, out = ctx.th, []
    if len(hosts_of(ctx)) < 2:
        return []
    r = ctx.resources(field_in("kind", FILE_KINDS) & field_in("op", ("read", "write")))
    per = {x["host"]: x for x in sum_by(r, ["host"], ["lat_sum_ns", "bytes", "count"])
           .to_pylist() if x["bytes"] >= th["slow_min_bytes"] and x["lat_sum_ns"] > 0}
    block = _block_per_host(ctx)
    if len(per) >= 2:
        source = "file"
        cost = {h: x["lat_sum_ns"] / x["bytes"] for h, x in per.items()}  # ns per byte
    elif len(block) >= 2:
        source = "block"
        per = block
        cost = {h: x["lat_sum_ns"] / max(x["count"], 1) for h, x in per.items()}  # ns per req
    else:
        return []
    worst = max(sorted(cost), key=lambda h: cost[h])
    med = _peer_median(cost, worst)
    if med <= 0 or cost[worst] < th["host_slow_ratio"] * med:
        return []
    x = per[worst]
    saved_ns = x["lat_sum_ns"] - (x["bytes"] if source == "file" else x["count"]) * med
    host_rows = r.filter(pc.equal(r.column("host"), worst)) if r.num_rows else r
    conc = max(1, len(set(host_rows.column("pid").to_pylist()))) if host_rows.num_rows else 1
    mbps = {h: per[h]["bytes"] / max(per[h]["lat_sum_ns"] / 1e9, 1e-9) / 1e6 for h in per}
    avg_ms = {h: per[h]["lat_sum_ns"] / max(per[h]["count"], 1) / 1e6 for h in per}
    out.append(Finding(
        code="FLEET-SLOWHOST", category="slow-device", severity="",
        title=f"host {worst}'s storage is {cost[worst] / med:.1f}x slower than its peers' "
              f"({mbps[worst]:,.0f} vs {_peer_median(mbps, worst):,.0f} MB/s while blocked)",
        culprit=_culprit(ctx, worst, _lead(host_rows, worst) if host_rows.num_rows else None),
        impact_s=max(saved_ns, 0) / 1e9 / conc,
        evidence={"host": worst, "source": source, "ratio": rnd(cost[worst] / med),
                  "mb_per_s_blocked": rnd(mbps[worst], 2),
                  "peer_median_mb_per_s": rnd(_peer_median(mbps, worst), 2),
                  "avg_ms": rnd(avg_ms[worst]),
                  "peer_median_avg_ms": rnd(_peer_median(avg_ms, worst)),
                  "bytes": int(x["bytes"]), "processes": conc,
                  "per_host": [{"host": h, "mb_per_s_blocked": rnd(mbps[h], 2),
                                "avg_ms": rnd(avg_ms[h]), "bytes": int(per[h]["bytes"])}
                               for h in sorted(per)]},
        recommendation=(f"Compare {worst}'s storage with its peers': a degraded disk or "
                        "RAID member, a different (network) mount or cache setting, a cgroup "
                        "I/O limit, or a noisy neighbour. Stage its data on local NVMe or "
                        "drain it until fixed.")))
    return out


def _block_per_host(ctx: Ctx) -> dict[str, dict[str, Any]]:
    b = ctx.reduced.get("block")
    if b is None or b.num_rows == 0:
        return {}
    return {x["host"]: x for x in sum_by(b, ["host"], ["lat_sum_ns", "bytes", "count"])
            .to_pylist() if x["bytes"] >= ctx.th["slow_min_bytes"] and x["count"] > 0}


RULES = (straggler_host, slow_host_storage)
