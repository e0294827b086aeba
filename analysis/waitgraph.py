"""The wait-for graph: who waits on whom, and what the waited-on process did meanwhile.

In: the shared reductions (`resources`: per process and file/peer; `tcp_conns`: each TCP
connection's owner, peer and local endpoint; `cpu`: on-CPU time per process). Out: `WaitGraph`
with one `Edge` per (waiting process, resource), resolved to the process at the other end when
it is local and traced.

How the other end is found:
- TCP: the peer endpoint (IP:PORT) is the local endpoint of a connection another traced process
  owns (the tcp table records both ends). A peer is *local* (never a "link") when its IP is a
  loopback address or the waiter's own address on that connection (same host, same network
  namespace: the traffic never leaves the kernel).
- pipes: the reader waits on the process that writes the same pipe (a worker reading its
  parent's pipe waits for work, which is idle time).
- unix sockets with a path: the side that connected waits on the side that did not.

Which side waits for whom: the side that connected (a client) or reads a pipe waits for the
other's work; the side that accepted waits for the next request, which is idle time, not a
bottleneck (`side` = "server"). Processes of a distributed job are peers, not clients and
servers: their waits are judged by the straggler and link rules instead.

`root_of(pid)` follows a holder that itself mostly waits on another local process, so a
client's waiting is credited to the process whose own work (I/O or CPU) it was.
See docs/design.md, "The wait-for graph".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from iolens.analysis.ranks import rank_pids

WAIT_OPS = ("recv", "connect", "read", "poll")
_LOOPBACK = ("127.", "::1", "::ffff:127.")


def split_endpoint(ep: str) -> tuple[str, str]:
    """"tcp:1.2.3.4:80" / "1.2.3.4:80" / "tcp:[::1]:80" -> ("1.2.3.4", "80")."""
    if ep.startswith(("tcp:", "udp:")):
        ep = ep[4:]
    host, _, port = ep.rpartition(":")
    return host.strip("[]"), port


def is_loopback(ip: str) -> bool:
    return ip.startswith(_LOOPBACK) or ip == "localhost"


@dataclass(frozen=True)
class Edge:
    """One process waiting on one resource whose other end may be a local process."""

    waiter: int
    resource: str
    via: str                 # tcp | pipe | unix
    wait_s: float            # time blocked on it (recv/read/connect, plus polls on it)
    holder: int | None       # the local process at the other end, when traced
    side: str | None         # client (asked, waits for work) | server (idle) | None: unknown
    local: bool              # the other end is on this host (loopback / own address)


@dataclass
class Activity:
    """What a process did over the capture, in seconds."""

    pid: int
    wall_s: float
    io_s: float              # blocked in file/device/remote-network I/O
    cpu_s: float | None      # on a CPU (None: no cpu table in the capture)
    wait_s: float            # waiting on local processes (as a client)

    @property
    def main(self) -> str:
        """io, cpu, wait or idle: where most of the process's wall time went."""
        parts = {"io": self.io_s, "cpu": self.cpu_s or 0.0, "wait": self.wait_s}
        kind, val = max(parts.items(), key=lambda kv: kv[1])
        return kind if val >= 0.2 * self.wall_s else "idle"


@dataclass
class WaitGraph:
    edges: list[Edge] = field(default_factory=list)
    cpu: dict[int, float] | None = None     # pid -> on-CPU seconds (None: not recorded)

    def local_pairs(self) -> set[tuple[int, str]]:
        """(pid, resource) of every wait whose other end is on this host."""
        return {(e.waiter, e.resource) for e in self.edges if e.local}

    def client_edges(self) -> list[Edge]:
        """Waits of a client on a traced local process (the ones credited to the holder)."""
        return [e for e in self.edges if e.holder is not None and e.side == "client"]


def build(ctx: Any) -> WaitGraph:
    """The graph of one capture (cached on the reductions: every rule asks for it)."""
    cache = ctx.reduced._cache
    if "_waitgraph" not in cache:
        cache["_waitgraph"] = _build(ctx)
    return cache["_waitgraph"]


def _build(ctx: Any) -> WaitGraph:
    res = ctx.resources()
    if res.num_rows:  # only sockets and pipes can be waits on another process
        res = res.filter(pc.is_in(res.column("kind"), pa.array(["socket", "pipe"])))
    rows = res.to_pylist() if res.num_rows else []
    conns = ctx.reduced.get("tcp_conns")
    conns = conns.to_pylist() if conns is not None and conns.num_rows else []
    owner = {c["local"]: c["pid"] for c in conns if c["pid"] is not None and c["local"]}
    own_ip = {(c["pid"], c["resource"]): split_endpoint(c["local"])[0]
              for c in conns if c["pid"] is not None and c["local"]}
    connected = {(r["pid"], r["resource"]) for r in rows if r["op"] == "connect" and r["count"]}
    accepts = {r["pid"] for r in rows if r["op"] == "accept" and r["count"]}
    ranks = rank_pids(ctx.procs)
    parent = {p: i.get("ppid") for p, i in ctx.procs.items()}
    waits: dict[tuple[int, str], float] = {}
    kinds: dict[tuple[int, str], str] = {}
    writers: dict[str, set[int]] = {}
    for r in rows:
        key = (r["pid"], r["resource"])
        if r["kind"] == "pipe" and r["op"] == "write":
            writers.setdefault(r["resource"], set()).add(r["pid"])
        if r["op"] in WAIT_OPS and r["resource"]:
            waits[key] = waits.get(key, 0.0) + r["lat_sum_ns"] / 1e9
            kinds[key] = r["kind"]
    unix_sides: dict[str, set[int]] = {}
    for (pid, resource) in waits:
        if resource.startswith("unix:/"):
            unix_sides.setdefault(resource, set()).add(pid)
    edges = []
    for (pid, resource), wait_s in sorted(waits.items()):
        e = _edge(pid, resource, wait_s, kinds[(pid, resource)], owner, own_ip, connected,
                  accepts, ranks, writers, unix_sides, parent.get(pid))
        if e is not None:
            edges.append(e)
    return WaitGraph(edges, _cpu(ctx))


def _edge(pid: int, resource: str, wait_s: float, kind: str, owner: dict, own_ip: dict,
          connected: set, accepts: set, ranks: set, writers: dict,
          unix_sides: dict, ppid: int | None) -> Edge | None:
    side = "client" if (pid, resource) in connected else "server" if pid in accepts else None
    if pid in ranks:
        side = None  # peers of a collective: judged by the straggler/link rules
    if resource.startswith("tcp:"):
        ip, port = split_endpoint(resource)
        local = is_loopback(ip) or own_ip.get((pid, resource)) == ip
        holder = owner.get(f"{ip}:{port}")
        if holder == pid:
            holder = None
        return Edge(pid, resource, "tcp", wait_s, holder if local else None, side, local)
    if kind == "pipe":
        others = sorted(writers.get(resource, set()) - {pid})
        holder = others[0] if len(others) == 1 else None
        # a worker reading its parent's pipe waits for work (a DataLoader's index queue):
        # idle, like a server waiting for requests
        return Edge(pid, resource, "pipe", wait_s, holder,
                    "server" if holder is not None and holder == ppid else "client", True)
    if resource.startswith("unix:/"):
        others = sorted(unix_sides.get(resource, set()) - {pid})
        holder = others[0] if len(others) == 1 and side == "client" else None
        return Edge(pid, resource, "unix", wait_s, holder, side, True)
    return None


def _cpu(ctx: Any) -> dict[int, float] | None:
    t = ctx.reduced.get("cpu")
    if t is None:
        return None
    out: dict[int, float] = {}
    for pid, ns in zip(t.column("pid").to_pylist(), t.column("cpu_ns").to_pylist(),
                       strict=True):
        out[pid] = out.get(pid, 0.0) + (ns or 0) / 1e9
    return out


def activity(ctx: Any, graph: WaitGraph, pid: int, io_by_pid: dict[int, float]) -> Activity:
    """What `pid` did: blocked I/O (io_by_pid, as the verdict counts it), CPU, client waits."""
    wait = sum(e.wait_s for e in graph.edges if e.waiter == pid and e.side == "client"
               and e.holder is not None)
    cpu = graph.cpu.get(pid, 0.0) if graph.cpu is not None else None
    return Activity(pid, ctx.pid_wall(pid), io_by_pid.get(pid, 0.0), cpu, wait)


def root_of(ctx: Any, graph: WaitGraph, pid: int, io_by_pid: dict[int, float],
            depth: int = 4) -> tuple[int, Activity, list[int]]:
    """Follow `pid` while it mostly waits on another local process: (root pid, its activity,
    the chain of pids walked, `pid` first)."""
    chain = [pid]
    act = activity(ctx, graph, pid, io_by_pid)
    while act.main == "wait" and len(chain) <= depth:
        nxt = max((e for e in graph.edges if e.waiter == act.pid and e.side == "client"
                   and e.holder is not None), key=lambda e: e.wait_s, default=None)
        if nxt is None or nxt.holder in chain:
            break
        chain.append(nxt.holder)
        act = activity(ctx, graph, nxt.holder, io_by_pid)
    return chain[-1], act, chain
