"""Network rules: network-latency, network-bandwidth, network-loss.

In: `Ctx` (`resources` reduction of socket send/recv/connect per process and peer; optional
`tcp` table for retransmits). Out: Findings whose culprit resource is the peer.

A peer is judged on the time its process spent blocked talking to it:
- bandwidth: large messages moving at < net_bw_mbps while blocked, or a peer far slower than
  the process's other peers;
- latency: small messages each taking > net_p50_ms on average.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from iolens.analysis.rules import Finding
from iolens.analysis.rules._common import Ctx, field_in, rnd, sum_by, top_rows, total

NET_OPS = ("send", "recv", "connect")


def _peers(ctx: Ctx) -> pa.Table:
    """Per (pid, peer) totals over IP sockets (unix sockets and pipes are local IPC)."""
    r = ctx.resources(pc.equal(pc.field("kind"), "socket") & field_in("op", NET_OPS))
    if r.num_rows == 0:
        return r
    r = r.filter(pc.invert(pc.starts_with(r.column("resource"), "unix:")))
    r = r.filter(pc.not_equal(r.column("resource"), ""))
    return sum_by(r, ["pid", "resource"], ["count", "bytes", "errors", "lat_sum_ns"])


def _rate(row: dict) -> tuple[float, float, float]:
    """(MB/s while blocked, average ms per op, average bytes per op) of a peer row."""
    lat_s = row["lat_sum_ns"] / 1e9
    n = max(row["count"], 1)
    return row["bytes"] / max(lat_s, 1e-9) / 1e6, row["lat_sum_ns"] / n / 1e6, row["bytes"] / n


def network_bandwidth(ctx: Ctx) -> list[Finding]:
    th, out = ctx.th, []
    peers = _peers(ctx)
    rows = [r for r in peers.to_pylist() if r["bytes"] >= th["net_min_bytes"]]
    rates = [_rate(r)[0] for r in rows]
    median = sorted(rates)[len(rates) // 2] if rates else 0.0
    for r, mbps in zip(rows, rates):
        _, avg_ms, avg_b = _rate(r)
        slow_abs = avg_b >= th["net_large_msg_bytes"] and mbps < th["net_bw_mbps"]
        slow_rel = len(rows) >= 2 and mbps < 0.5 * median and r["lat_sum_ns"] > 0
        if not (slow_abs or slow_rel):
            continue
        out.append(Finding(
            code="NET-BW", category="network-bandwidth", severity="",
            title=f"{mbps:,.1f} MB/s to {r['resource']} while blocked",
            culprit=ctx.culprit(r["pid"], r["resource"]), impact_s=r["lat_sum_ns"] / 1e9,
            evidence={"mb_per_s_blocked": rnd(mbps, 2), "median_peer_mb_per_s": rnd(median, 2),
                      "bytes": int(r["bytes"]), "ops": int(r["count"]),
                      "avg_bytes": rnd(avg_b, 1), "time_s": rnd(r["lat_sum_ns"] / 1e9)},
            recommendation=("This link is the bottleneck: check its rate limits (tc qdisc, "
                            "NIC speed, cloud bandwidth caps), compress or shrink what is "
                            "sent (gradient compression, bf16), or overlap communication "
                            "with compute (bucketed all-reduce).")))
    return _dedupe_peer(out)


def network_latency(ctx: Ctx) -> list[Finding]:
    th, out = ctx.th, []
    for r in _peers(ctx).to_pylist():
        _, avg_ms, avg_b = _rate(r)
        if avg_b >= th["net_large_msg_bytes"] or avg_ms <= th["net_p50_ms"]:
            continue
        out.append(Finding(
            code="NET-LAT", category="network-latency", severity="",
            title=f"{avg_ms:.1f} ms per small message to {r['resource']}",
            culprit=ctx.culprit(r["pid"], r["resource"]), impact_s=r["lat_sum_ns"] / 1e9,
            evidence={"avg_ms": rnd(avg_ms), "ops": int(r["count"]), "avg_bytes": rnd(avg_b, 1),
                      "time_s": rnd(r["lat_sum_ns"] / 1e9)},
            recommendation=("Round trips dominate: batch small requests, keep connections "
                            "open, pipeline requests, or move the peer closer (same zone/rack).")))
    return _dedupe_peer(out)


def network_loss(ctx: Ctx) -> list[Finding]:
    th = ctx.th
    tcp = ctx.reduced.get("tcp")
    if tcp is not None and tcp.num_rows:
        out = []
        for r in tcp.to_pylist():
            segs = max(r["segs_out"] or 0, 1)
            if (r["retransmits"] or 0) < th["net_loss_share"] * segs:
                continue
            share = (r["retransmits"] or 0) / segs
            out.append(_loss(ctx, r["pid"], r["resource"], share,
                             {"retransmits": int(r["retransmits"]), "segs_out": int(segs)}))
        return _dedupe_peer(out)
    peers = _peers(ctx)
    out = []
    for r in peers.to_pylist():
        n = r["count"] + r["errors"]
        if r["errors"] < 10 or r["errors"] < th["net_loss_share"] * max(n, 1):
            continue
        out.append(_loss(ctx, r["pid"], r["resource"], r["errors"] / max(n, 1),
                         {"failed_ops": int(r["errors"]), "ops": int(n),
                          "retransmits": ctx.reduced.missing_reason("tcp")}))
    return out


def _loss(ctx: Ctx, pid: int | None, peer: str, share: float, ev: dict) -> Finding:
    r = ctx.resources(pc.equal(pc.field("resource"), peer))
    if pid is None and r.num_rows:  # tcp rows may lack the owner: take who talked most
        pid = int(top_rows(r, "lat_sum_ns", 1)[0]["pid"])
    if pid is not None and r.num_rows:
        r = r.filter(pc.equal(r.column("pid"), pid))
    lat = total(r, "lat_sum_ns")
    return Finding(code="NET-LOSS", category="network-loss", severity="",
                   title=f"{share:.1%} lost/failed on {peer}",
                   culprit=ctx.culprit(pid, peer), impact_s=lat / 1e9 * min(1.0, share * 10),
                   evidence={"share": rnd(share, 4), **ev, "time_s": rnd(lat / 1e9)},
                   recommendation=("Packets are lost or connections fail on this path: check "
                                   "NIC/switch errors, MTU mismatches and congestion "
                                   "(tc -s qdisc, ethtool -S)."))


def _dedupe_peer(found: list[Finding]) -> list[Finding]:
    """One finding per peer (the process that waited most on it)."""
    best: dict[str, Finding] = {}
    for f in found:
        k = f.culprit.get("resource") or ""
        if k not in best or f.impact_s > best[k].impact_s:
            best[k] = f
    return list(best.values())


RULES = (network_latency, network_bandwidth, network_loss)
