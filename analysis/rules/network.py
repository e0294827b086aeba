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
from iolens.analysis import waitgraph
from iolens.analysis.ranks import rank_pids
from iolens.analysis.rules import Finding
from iolens.analysis.rules._common import Ctx, field_in, rnd, sum_by, top_rows, total

NET_OPS = ("send", "recv", "connect")


def _peers(ctx: Ctx) -> pa.Table:
    """Per (pid, peer) totals over IP sockets (unix sockets and pipes are local IPC), with
    the peer's active span in seconds and its receives' would-block (failed) count."""
    r = ctx.resources(pc.equal(pc.field("kind"), "socket") & field_in("op", NET_OPS))
    if r.num_rows == 0:
        return r
    r = r.filter(pc.invert(pc.starts_with(r.column("resource"), "unix:")))
    r = r.filter(pc.not_equal(r.column("resource"), ""))
    if r.num_rows == 0:
        return r
    # a peer on this host is a process, not a link: its waits are credited to that process
    # (rules/causal.py); peers of a collective are judged from their connections (network_link)
    graph = waitgraph.build(ctx)
    measured = ctx.reduced.get("tcp") is not None
    ranks = rank_pids(ctx.procs) if measured else set()
    local = graph.local_pairs()
    drop = pa.array([(p, res) in local or p in ranks for p, res in
                     zip(r.column("pid").to_pylist(), r.column("resource").to_pylist(),
                         strict=True)], pa.bool_())
    r = r.filter(pc.invert(drop))
    if r.num_rows == 0:
        return r
    recv_err = pc.if_else(pc.equal(r.column("op"), "recv"), r.column("errors"), 0)
    recv_n = pc.if_else(pc.equal(r.column("op"), "recv"), r.column("count"), 0)
    r = r.append_column("recv_errors", recv_err).append_column("recv_count", recv_n)
    out = sum_by(r, ["pid", "resource"], ["count", "bytes", "errors", "lat_sum_ns",
                                          "recv_errors", "recv_count"])
    span = r.group_by(["pid", "resource"]).aggregate(
        [("first_ts", "min"), ("last_ts", "max"), ("interval_s", "max")])
    span_s = pc.add(pc.divide(pc.cast(pc.subtract(pc.cast(span.column("last_ts_max"), pa.int64()),
                                                  pc.cast(span.column("first_ts_min"), pa.int64())),
                                      pa.float64()), 1e9),
                    span.column("interval_s_max"))
    span = pa.table({"pid": span.column("pid"), "resource": span.column("resource"),
                     "span_s": span_s})
    return out.join(span, ["pid", "resource"])


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
    for r, mbps in zip(rows, rates, strict=True):
        _, avg_ms, avg_b = _rate(r)
        nb = _nonblocking(ctx, r)
        if nb is not None:  # non-blocking sockets: blocked-time rates mean nothing
            if ctx.reduced.get("tcp") is None:
                out.append(nb)  # no TCP probe: a guess, said as one (network_link otherwise)
            continue
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
            recommendation=_BW_REC))
    return _dedupe_peer(out)


def _nonblocking(ctx: Ctx, r: dict) -> Finding | None:
    """A peer read through non-blocking sockets (gloo, NCCL's socket transport, asyncio):
    the wait happens in epoll, not in recv, so judge by the peer's throughput over its
    active span, and require that receives often found no data (the link trickles).
    Impact: the span minus the time the same bytes take at net_bw_mbps."""
    th = ctx.th
    tries = r["recv_count"] + r["recv_errors"]
    share = r["recv_errors"] / tries if tries else 0.0
    mbps = r["bytes"] / max(r["span_s"], 1e-9) / 1e6
    if share < th["net_wouldblock_share"] or mbps >= th["net_bw_mbps"]:
        return None
    impact = r["span_s"] - r["bytes"] / (th["net_bw_mbps"] * 1e6)
    # without the connection's RTT and retransmits this cannot tell a slow link from a slow
    # peer (a straggler makes every receive find no data too): never more than a note
    return Finding(
        code="NET-BW-NB", category="network-bandwidth", severity="info",
        title=f"{mbps:,.1f} MB/s from {r['resource']} over {r['span_s']:.0f} s "
              f"({share:.0%} of receives found no data)",
        culprit=ctx.culprit(r["pid"], r["resource"]), impact_s=max(impact, 0.0),
        evidence={"mb_per_s": rnd(mbps, 2), "span_s": rnd(r["span_s"]),
                  "bytes": int(r["bytes"]), "would_block_share": rnd(share),
                  "recvs": int(r["recv_count"]), "note": "non-blocking sockets and no TCP "
                  "statistics for this connection: a slow link and a slow peer look the "
                  f"same here; impact is relative to a {th['net_bw_mbps']:.0f} MB/s link"},
        recommendation=_BW_REC)


_BW_REC = ("This link is the bottleneck: check its rate limits (tc qdisc, NIC speed, cloud "
           "bandwidth caps), compress or shrink what is sent (gradient compression, bf16), "
           "or overlap communication with compute (bucketed all-reduce).")


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
            # no segment count recorded: estimate it from bytes sent at one MSS per segment
            segs = max(r["segs_out"] or 0, int((r.get("bytes_sent") or 0) / 1448), 1)
            if (r["retransmits"] or 0) < th["net_loss_share"] * segs:
                continue
            share = (r["retransmits"] or 0) / segs
            out.append(_loss(ctx, r["pid"], r["resource"], share,
                             {"retransmits": int(r["retransmits"]), "segments": int(segs),
                              "segments_estimated": not r["segs_out"]}))
        return _dedupe_peer(out)
    return []  # failed socket ops alone are not loss (EAGAIN is normal on non-blocking ones)


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


def _pairs(ctx: Ctx) -> list[dict]:
    """Each TCP connection between two hosts (or network namespaces) once, from whichever
    ends the tcp table saw: endpoints, mean RTT (ms), retransmits, segments, bytes, active s.
    Connections to the same host (loopback, own address) are left out: no link there."""
    conns = ctx.reduced.get("tcp_conns")
    if conns is None or conns.num_rows == 0:
        return []
    pairs: dict[tuple[str, str], dict] = {}
    for c in conns.to_pylist():
        local, peer = c["local"], c["resource"][4:]
        if not local or c["rtt_us"] is None:
            continue
        lip, pip_ = waitgraph.split_endpoint(local)[0], waitgraph.split_endpoint(peer)[0]
        if lip == pip_ or waitgraph.is_loopback(pip_):
            continue
        key = tuple(sorted((local, peer)))
        d = pairs.setdefault(key, {"ends": key, "rtts": [], "retransmits": 0, "segs": 0,
                                   "bytes": 0, "active_s": 0.0, "pids": {}})
        d["rtts"].append(c["rtt_us"] / 1e3)
        d["retransmits"] += c["retransmits"] or 0
        moved = (c["bytes_sent"] or 0) + (c["bytes_received"] or 0)
        d["segs"] += max(c["segs_out"] or 0, int((c["bytes_sent"] or 0) / 1448))
        d["bytes"] = max(d["bytes"], moved)
        d["active_s"] = max(d["active_s"], c["active_s"] or 0.0)
        if c["pid"] is not None:
            d["pids"][local] = c["pid"]
    for d in pairs.values():
        d["rtt_ms"] = sum(d["rtts"]) / len(d["rtts"])
    return list(pairs.values())


def _bad(pairs: list[dict], th: dict[str, float]) -> list[dict]:
    """Connections whose RTT is high in absolute terms and against the best connection, or
    that lose segments."""
    if not pairs:
        return []
    best = min(p["rtt_ms"] for p in pairs)
    out = []
    for p in pairs:
        loss = p["retransmits"] / max(p["segs"], 1)
        slow = p["rtt_ms"] >= th["net_rtt_high_ms"] and \
            (len(pairs) == 1 or p["rtt_ms"] >= th["net_rtt_ratio"] * best)
        if slow or (loss >= th["net_loss_share"] and p["retransmits"] >= 10):
            out.append({**p, "loss": loss, "rtt_best_ms": best})
    return out


def _common_ip(bad: list[dict]) -> tuple[str, bool]:
    """The address on the most bad connections, and whether it is the only one with that many
    (False: one bad connection between two participants, whose ends look alike: the link
    between them is slow, and which side's path is to blame cannot be seen from here)."""
    seen: dict[str, int] = {}
    for p in bad:
        for ip in {waitgraph.split_endpoint(e)[0] for e in p["ends"]}:
            seen[ip] = seen.get(ip, 0) + 1
    ranked = sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))
    return ranked[0][0], len(ranked) == 1 or ranked[1][1] < ranked[0][1]


def network_link(ctx: Ctx) -> list[Finding]:
    """One finding per participant whose connections are slow or lossy (the common endpoint
    of the bad connections), classified from what the connections show:
    loss (retransmits), bandwidth (enough bytes in flight per round trip to fill a window:
    queueing behind a rate limit inflates the RTT), else latency (small exchanges, each paying
    the RTT). Impact: the off-CPU time of the processes on those connections beyond what the
    healthy ones show (or the connections' active time when CPU time was not recorded)."""
    th = ctx.th
    pairs = _pairs(ctx)
    bad = _bad(pairs, th)
    if not bad:
        return []
    ip, single = _common_ip(bad)
    mine = [p for p in bad if any(waitgraph.split_endpoint(e)[0] == ip for e in p["ends"])]
    other = sorted({waitgraph.split_endpoint(e)[0] for p in mine for e in p["ends"]} - {ip})
    who = f"participant {ip}" if single else f"the link {ip} <-> {', '.join(other)}"
    good = [p for p in pairs if p not in bad]
    loss = max(p["loss"] for p in mine)
    inflight = max(p["bytes"] / max(p["active_s"], 1e-9) * p["rtt_ms"] / 1e3 for p in mine)
    rtt = max(p["rtt_ms"] for p in mine)
    owner = next((pid for p in mine for ep, pid in p["pids"].items()
                  if waitgraph.split_endpoint(ep)[0] == ip), None)
    if loss >= th["net_loss_share"] and rtt < th["net_rtt_high_ms"]:
        cat, code, what = "network-loss", "NET-LINK-LOSS", f"{loss:.1%} of segments retransmitted"
        rec = ("Packets are lost on this participant's path: check NIC/switch errors, MTU "
               "mismatches and congestion (ethtool -S, tc -s qdisc).")
    elif inflight >= th["net_bdp_bytes"]:
        cat, code = "network-bandwidth", "NET-LINK-BW"
        what = f"RTT {rtt:.1f} ms under load ({inflight / 1024:.0f} KiB in flight per round trip)"
        rec = ("This participant's link is saturated (queueing inflates its RTT): check its "
               "rate limits (tc qdisc, NIC speed, cloud bandwidth caps), send less (bf16, "
               "gradient compression), or overlap communication with compute.")
    else:
        cat, code = "network-latency", "NET-LINK-LAT"
        what = f"RTT {rtt:.1f} ms vs {bad[0]['rtt_best_ms']:.2f} ms on the best connection"
        rec = ("Round trips to this participant are slow while little data moves: move it "
               "closer (same rack/zone), check for a slow hop or a delaying middlebox, and "
               "exchange fewer, larger messages (bucket all-reduces).")
    pids = sorted({pid for p in mine for pid in p["pids"].values()})
    impact = _link_impact(ctx, pids, mine)
    return [Finding(
        code=code, category=cat, severity="",
        title=f"{who}: {what} on {len(mine)} connection(s)",
        culprit=ctx.culprit(owner, f"tcp:{ip}:*",
                            role=ctx.procs.get(owner, {}).get("role") if owner else None),
        impact_s=impact,
        evidence={"ip": ip, "bad_connections": len(mine), "healthy_connections": len(good),
                  "rtt_ms": rnd(rtt), "rtt_healthy_ms": rnd(min((p["rtt_ms"] for p in good),
                                                               default=float("nan"))),
                  "retransmit_share": rnd(loss, 4), "inflight_bytes": int(inflight),
                  "rank": ctx.procs.get(owner, {}).get("rank") if owner else None,
                  "single_participant": single,
                  "pids": pids},
        recommendation=rec)]


def _link_impact(ctx: Ctx, pids: list[int], mine: list[dict]) -> float:
    """Seconds the processes on the bad connections spent off-CPU (waiting), the least of
    them (every participant of a collective waits for the slow link); without CPU time, the
    bad connections' active span."""
    cpu = waitgraph.build(ctx).cpu
    if cpu and pids:
        return max(0.0, min(ctx.pid_wall(p) - cpu.get(p, 0.0) for p in pids))
    return max(p["active_s"] for p in mine)


RULES = (network_latency, network_bandwidth, network_loss, network_link)
