"""Totals, top tables and capture health for the reports (small reductions in, dicts out).

In: `Reduced` (analysis/queries.py) and the capture's metadata. Out: JSON-ready dicts:
- `totals`: wall time, processes, ops/bytes per direction, seconds blocked per kind;
- `top_tables`: top processes (by time blocked in I/O, as the verdict counts it; waits on
  local peers shown apart), files and peers by time blocked;
- `health_summary`: lost events, map overflows, skipped probes and files, and what each
  means for the conclusions.
"""

from __future__ import annotations

from typing import Any

import pyarrow.compute as pc
from iolens.analysis.queries import Reduced
from iolens.analysis.rules._common import sum_by, top_rows, total


def totals(r: Reduced) -> dict[str, Any]:
    """Capture-wide totals."""
    ops = r.get("ops")
    out: dict[str, Any] = {"wall_s": round(r.wall_s, 3), "processes": len(r.procs_info())}
    if ops is None:
        return out
    for op in ("read", "write", "send", "recv"):
        t = ops.filter(pc.equal(ops.column("op"), op))
        out[f"{op}_bytes"] = int(total(t, "bytes"))
        out[f"{op}_ops"] = int(total(t, "count"))
    out["ops"] = int(total(ops, "count"))
    out["errors"] = int(total(ops, "errors"))
    by_kind = sum_by(ops, ["kind"], ["lat_sum_ns"]).to_pylist()
    out["blocked_s_by_kind"] = {k["kind"]: round(k["lat_sum_ns"] / 1e9, 3) for k in by_kind}
    return out


def top_tables(r: Reduced, n: int = 10) -> dict[str, list[dict[str, Any]]]:
    """Top processes, files and network peers by seconds blocked."""
    res = r.get("resources")
    procs = r.procs_info()
    out: dict[str, list[dict[str, Any]]] = {"processes": [], "files": [], "peers": []}
    if res is None:
        return out
    from iolens.analysis.rules._common import Ctx, blocked_io
    from iolens.analysis.rules.workload import wait_on_peers
    from iolens.analysis.thresholds import merge

    ctx = Ctx(r, merge(None))
    blocked = {x["pid"]: x["lat_sum_ns"] for x in blocked_io(ctx).to_pylist()}
    waits = {x["pid"]: x["lat_sum_ns"] for x in
             sum_by(wait_on_peers(ctx), ["pid"], ["lat_sum_ns"]).to_pylist()}
    per_pid = sum_by(res, ["pid"], ["count", "bytes"]).to_pylist()
    for row in per_pid:
        row["blocked"] = blocked.get(row["pid"], 0)
    for row in sorted(per_pid, key=lambda x: (-x["blocked"], -x["bytes"], x["pid"]))[:n]:
        p = procs.get(row["pid"], {})
        wall = ctx.pid_wall(row["pid"])
        out["processes"].append({
            "pid": row["pid"], "comm": p.get("comm"), "role": p.get("role"),
            "ops": int(row["count"]), "bytes": int(row["bytes"]),
            "blocked_s": round(row["blocked"] / 1e9, 3),
            # threads blocking at once, or a worker's span known only from its I/O, can sum
            # above its wall time: a share of wall time is at most all of it
            "blocked_share": round(min(row["blocked"] / 1e9 / wall, 1.0), 3),
            "waiting_on_peers_s": round(waits.get(row["pid"], 0) / 1e9, 3)})
    for kinds, key in ((["file", "device"], "files"), (["socket"], "peers")):
        t = res.filter(pc.is_in(res.column("kind"), pc.cast(kinds, "string")))
        t = t.filter(pc.not_equal(t.column("resource"), "")) if t.num_rows else t
        per = sum_by(t, ["resource"], ["count", "bytes", "lat_sum_ns"])
        out[key] = [{"resource": x["resource"], "ops": int(x["count"]), "bytes": int(x["bytes"]),
                     "blocked_s": round(x["lat_sum_ns"] / 1e9, 3)}
                    for x in top_rows(per, "lat_sum_ns", n)]
    return out


def health_summary(r: Reduced, metas: list, skipped: list[tuple[str, str]],
                   unfinished: list[str], th: dict[str, float] | None = None) -> dict[str, Any]:
    """Capture health and what it means for the conclusions."""
    h = r.get("health")
    row = h.to_pylist()[0] if h is not None and h.num_rows else {}
    meta = metas[0] if metas else None
    lost = int(row.get("lost_events") or 0)
    overflow = int(row.get("agg_overflow") or 0)
    out: dict[str, Any] = {
        "intervals": int(row.get("intervals") or 0), "lost_events": lost,
        "agg_overflow": overflow, "fd_overflow": int(row.get("fd_overflow") or 0),
        "probes_attached": list(getattr(meta, "probes_attached", []) or []),
        "probes_skipped": dict(getattr(meta, "probes_skipped", {}) or {}),
        "skipped": [{"file": f, "reason": why} for f, why in skipped],
        "unfinished": unfinished,
        "ended_abruptly": any(not m.complete for m in metas) or bool(unfinished),
        "recovered_intervals": sum(getattr(m, "recovered_intervals", 0) or 0 for m in metas),
    }
    if th is None:
        from iolens.analysis.thresholds import merge
        th = merge(None)
    out["clock"] = clock_summary(metas, th["clock_max_error_ms"])
    from iolens.analysis import coverage

    cov = coverage.measure(r, th)
    out["coverage"] = cov.to_json()
    out["hosts"], out["shared_pids"] = _hosts_and_shared_pids(r)
    out["notes"] = _notes(out)
    return out


def _hosts_and_shared_pids(r: Reduced) -> tuple[int, int]:
    """Hosts in the capture, and pids seen on more than one of them. Pids are host-local;
    the per-process rules key on pid alone, so such processes are merged there."""
    span = r.get("pid_span")
    if span is None or span.num_rows == 0:
        return 0, 0
    hosts = len(set(span.column("host").to_pylist()))
    if hosts < 2:
        return hosts, 0
    per = span.group_by("pid").aggregate([("host", "count_distinct")])
    return hosts, int(pc.sum(pc.greater(per.column("host_count_distinct"), 1)).as_py() or 0)


def clock_summary(metas: list, max_error_ms: float) -> dict[str, Any]:
    """Per host: is its wall clock NTP-synchronised, and how far off may it be (the kernel's
    NTP maximum error bound, worst over the capture's clock samples). Two hosts' timelines may
    disagree by up to the sum of their bounds: `max_disagreement_ms` is the worst pair.
    `warning` (also in `notes`) when that exceeds `max_error_ms` or a host is unsynchronised;
    only judged with >= 2 hosts (a single host's timeline needs no alignment)."""
    hosts: dict[str, dict[str, Any]] = {}
    for m in metas:
        h = hosts.setdefault(getattr(m, "host", "?"), {"samples": 0, "synced": None,
                                                      "maxerror_ms": None,
                                                      "esterror_ms": None})
        for c in getattr(m, "clock", None) or []:
            h["samples"] += 1
            if c.get("ntp_synced") is not None:
                h["synced"] = bool(c["ntp_synced"]) if h["synced"] is None else \
                    h["synced"] and bool(c["ntp_synced"])
            for k in ("maxerror", "esterror"):
                v = c.get(f"ntp_{k}_us")
                if v is not None:
                    h[f"{k}_ms"] = max(h[f"{k}_ms"] or 0.0, round(v / 1000, 3))
    out: dict[str, Any] = {"hosts": hosts, "max_disagreement_ms": None, "warning": None}
    if len(hosts) < 2:
        return out
    bounds = sorted((h["maxerror_ms"] for h in hosts.values() if h["maxerror_ms"] is not None),
                    reverse=True)
    if len(bounds) >= 2:
        out["max_disagreement_ms"] = round(bounds[0] + bounds[1], 3)
    unsynced = sorted(n for n, h in hosts.items() if h["synced"] is False)
    unknown = sorted(n for n, h in hosts.items() if h["synced"] is None)
    why = []
    if unsynced:
        why.append(f"not NTP-synchronised: {', '.join(unsynced)}")
    if out["max_disagreement_ms"] is not None and out["max_disagreement_ms"] > max_error_ms:
        worst = max(hosts, key=lambda n: hosts[n]["maxerror_ms"] or 0.0)
        bound = hosts[worst]["maxerror_ms"]
        why.append(f"clocks may disagree by up to {out['max_disagreement_ms']:,.0f} ms "
                   f"(> {max_error_ms:g} ms; worst {worst}, +/-{bound:,.0f} ms)")
    if unknown:
        why.append(f"no clock information from: {', '.join(unknown)}")
    if why:
        out["warning"] = ("cross-host timelines may be misaligned: " + "; ".join(why))
    return out


def _abrupt_note(h: dict[str, Any]) -> str:
    """What an abrupt end cost: with write-ahead segments (issue 16) at most the interval in
    progress; a `.parquet.tmp` of an older version's capture: its whole last segment."""
    if h["unfinished"]:
        return "the capture ended abruptly: its last segment may be missing"
    n = h.get("recovered_intervals") or 0
    saved = f"{n} interval(s) of its unfinished segment recovered; " if n else ""
    return f"the capture ended abruptly: {saved}at most the interval in progress is missing"


def _notes(h: dict[str, Any]) -> list[str]:
    notes = []
    if h["lost_events"]:
        notes.append(f"{h['lost_events']:,} events lost: per-event details (opens, slow ops) "
                     "are incomplete; totals from kernel aggregation are unaffected")
    if h["agg_overflow"]:
        notes.append(f"{h['agg_overflow']:,} ops not counted (kernel map full): times and "
                     "counts are underestimates")
    cov = h.get("coverage") or {}
    if cov.get("folded_share", 0) > 0:
        notes.append(f"{cov['folded_share']:.0%} of ops are counted per directory (rows of "
                     "grain dir) or per process, not per file: more files than --max-keys per "
                     "interval; totals stay exact")
    if cov.get("stretched_intervals"):
        notes.append(f"{cov['stretched_intervals']} interval(s) ran more than 20% long (the "
                     "collector fell behind): rates in them are averaged over the longer span")
    for probe, why in h["probes_skipped"].items():
        what = "hook or syscall" if ":" in probe else "probe"
        notes.append(f"{what} {probe} skipped ({why}): rules that need it judge on weaker "
                     "evidence or not at all")
    if h["skipped"]:
        notes.append(f"{len(h['skipped'])} unreadable file(s) left out: the analysis covers "
                     "only the rest")
    if h["ended_abruptly"]:
        notes.append(_abrupt_note(h))
    if h.get("shared_pids"):
        notes.append(f"{h['shared_pids']} pid(s) occur on more than one of the {h['hosts']} "
                     "hosts: per-process findings merge those processes (the FLEET-* findings "
                     "are per host and unaffected)")
    if (h.get("clock") or {}).get("warning"):
        notes.append(h["clock"]["warning"])
    return notes
