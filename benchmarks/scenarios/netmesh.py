"""A small multi-host network in namespaces for the multi-rank scenarios (not a scenario).

`Mesh` makes one network namespace per participant and a hub namespace with a bridge; each
participant has its own benchmark-range address (198.18.SUBNET.i+1, RFC 2544, only inside
these namespaces). Faults on one participant's link:

- rate limit: a tbf qdisc on both ends of its veth (its egress and its ingress);
- latency: a userspace delay line. netem is not built into this kernel, so the participant's
  hub-side veth is not bridged: a relay process in the hub reads every frame from it and from
  a second veth into the bridge (AF_PACKET with virtio-net headers, so GSO frames and pending
  checksums pass through unchanged) and writes each one out on the other side DELAY ms later.
  The kernel's TCP RTT of every connection touching that participant grows by 2 x DELAY.

`run_ranks` starts torch.distributed gloo ranks, one per namespace, each doing CPU compute
then an all_reduce per step, and collects what each rank measured itself (compute time,
time waiting in all_reduce, os.times() CPU) plus mid-run `ss -ti` and `tc -s` snapshots.
"""

from __future__ import annotations

import heapq
import json
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import DURATION, cpu_spin

PORT = 29600


def sh(*cmd: str, check: bool = True) -> str:
    return subprocess.run(cmd, check=check, capture_output=True, text=True).stdout


class Mesh:
    def __init__(self, tag: str, n: int, subnet: int, delay_ms: dict[int, float] | None = None,
                 rate: dict[int, str] | None = None):
        self.tag, self.n = tag, n
        self.ns = [f"iolens-{tag}{i}" for i in range(n)]
        self.hub = f"iolens-{tag}h"
        self.ip = [f"198.18.{subnet}.{i + 1}" for i in range(n)]
        self.ifname = [f"iolm{i}" for i in range(n)]
        self.delay_ms = delay_ms or {}
        self.rate = rate or {}
        self.relays: list[subprocess.Popen] = []

    def setup(self) -> None:
        self.teardown()
        for ns in (*self.ns, self.hub):
            sh("ip", "netns", "add", ns)
        h = ("ip", "-n", self.hub)
        sh(*h, "link", "add", "br0", "type", "bridge")
        sh(*h, "link", "set", "br0", "up")
        for i, ns in enumerate(self.ns):
            sh("ip", "link", "add", f"iolm{i}", "netns", ns, "type", "veth", "peer", "name",
               f"iolh{i}", "netns", self.hub)
            sh("ip", "-n", ns, "addr", "add", f"{self.ip[i]}/24", "dev", f"iolm{i}")
            sh("ip", "-n", ns, "link", "set", f"iolm{i}", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            if i in self.delay_ms:  # delay line: iolh{i} <-relay-> iold{i} ~ iolb{i} in br0
                sh(*h, "link", "add", f"iold{i}", "type", "veth", "peer", "name", f"iolb{i}")
                sh(*h, "link", "set", f"iolb{i}", "master", "br0", "up")
                for dev in (f"iolh{i}", f"iold{i}"):
                    sh(*h, "link", "set", dev, "promisc", "on", "up")
                self.relays.append(subprocess.Popen(
                    ["ip", "netns", "exec", self.hub, sys.executable, __file__, "--relay",
                     f"iolh{i}", f"iold{i}", str(self.delay_ms[i])]))
            else:
                sh(*h, "link", "set", f"iolh{i}", "master", "br0", "up")
            if i in self.rate:  # both directions of its link
                for ns_, dev in ((ns, f"iolm{i}"), (self.hub, f"iolh{i}")):
                    sh("ip", "netns", "exec", ns_, "tc", "qdisc", "add", "dev", dev, "root",
                       "tbf", "rate", self.rate[i], "burst", "64kb", "latency", "100ms")
        for i in range(1, self.n):  # the path works (and the relay is up) before ranks start
            self.ping(0, i)

    def ping(self, a: int, b: int) -> float:
        """RTT in ms from participant a to b, waiting for the path (no ping binary here: a
        TCP connect to a closed port of b, refused after one round trip, from a's namespace)."""
        probe = ("import socket,sys,time\n"
                 "s=socket.socket(); s.settimeout(1); t=time.monotonic()\n"
                 "e=s.connect_ex((sys.argv[1], 9)); print(e, (time.monotonic()-t)*1e3)")
        for _ in range(30):
            out = sh("ip", "netns", "exec", self.ns[a], sys.executable, "-c", probe,
                     self.ip[b], check=False).split()
            if out and out[0] == "111":  # ECONNREFUSED: b answered
                return round(float(out[1]), 3)
            time.sleep(0.1)
        raise RuntimeError(f"no path from {self.ip[a]} to {self.ip[b]}")

    def teardown(self) -> None:
        for p in self.relays:
            p.terminate()
        for p in self.relays:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        self.relays = []
        for ns in (*self.ns, self.hub):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def snapshot(self) -> dict:
        """Independent view of the links: per-connection `ss -ti` (rtt, retransmits,
        delivery rate) in every rank namespace, and qdisc stats where a tbf was put."""
        conns = []
        for i, ns in enumerate(self.ns):
            out = sh("ip", "netns", "exec", ns, "ss", "-tinH", check=False)
            for head, info in zip(*[iter(_ss_records(out))] * 2, strict=False):
                f = head.split()
                if len(f) < 5 or not f[3].startswith("198.18."):
                    continue
                rtt = re.search(r"\brtt:([\d.]+)/", info)
                retr = re.search(r"\bretrans:\d+/(\d+)", info)
                rate = re.search(r"delivery_rate (\S+)", info)
                conns.append({"rank": i, "local": f[3], "peer": f[4],
                              "rtt_ms": float(rtt.group(1)) if rtt else None,
                              "retrans": int(retr.group(1)) if retr else 0,
                              "delivery_rate": rate.group(1) if rate else None})
        qdisc = {}
        for i in self.rate:
            for ns_, dev in ((self.ns[i], f"iolm{i}"), (self.hub, f"iolh{i}")):
                qdisc[f"{ns_}/{dev}"] = sh("ip", "netns", "exec", ns_, "tc", "-s", "qdisc",
                                           "show", "dev", dev, check=False).strip()
        return {"connections": conns, "qdisc": qdisc}


def _ss_records(out: str) -> list[str]:
    """`ss -tinH` prints each socket as a header line then an indented info line."""
    lines = [ln for ln in out.splitlines() if ln.strip()]
    recs, cur = [], None
    for ln in lines:
        if not ln[0].isspace():
            if cur is not None:
                recs += [cur, ""]
            cur = ln
        elif cur is not None:
            recs += [cur, ln]
            cur = None
    if cur is not None:
        recs += [cur, ""]
    return recs


def rtt_by_pair(snap: dict) -> dict[str, float]:
    """Largest kernel RTT (ms) seen on the connections between each pair of participants."""
    out: dict[str, float] = {}
    for c in snap["connections"]:
        if c["rtt_ms"] is None:
            continue
        k = " - ".join(sorted((c["local"].rsplit(":", 1)[0], c["peer"].rsplit(":", 1)[0])))
        out[k] = max(out.get(k, 0.0), c["rtt_ms"])
    return dict(sorted(out.items()))


# --- delay line -----------------------------------------------------------------------------
def relay(a: str, b: str, delay_ms: float) -> None:
    """Forward frames between interfaces a and b, each DELAY ms late (runs until killed)."""
    delay = delay_ms / 1e3
    socks = {}
    for dev in (a, b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        s.setsockopt(263, 15, 1)  # SOL_PACKET, PACKET_VNET_HDR: GSO/csum metadata passes
        s.bind((dev, 0))
        s.setblocking(False)
        socks[dev] = s
    other = {socks[a]: socks[b], socks[b]: socks[a]}
    queue: list[tuple[float, int, socket.socket, bytes]] = []
    seq = 0
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 1.0
        ready, _, _ = select.select(list(other), [], [], timeout)
        now = time.monotonic()
        for s in ready:
            while True:
                try:
                    data, addr = s.recvfrom(70000)
                except BlockingIOError:
                    break
                if addr[2] == socket.PACKET_OUTGOING:  # our own writes, seen again
                    continue
                heapq.heappush(queue, (now + delay, seq, other[s], data))
                seq += 1
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, data = heapq.heappop(queue)
            try:
                out.send(data)
            except OSError:
                pass


# --- gloo ranks -----------------------------------------------------------------------------
def rank_main(rank: int, world: int, master: str, ifname: str, compute_ms: float, elems: int,
              out: str) -> None:
    """One rank: per step `compute_ms` of CPU, then all_reduce of `elems` floats. Steps stop
    together: the last element carries 'I still have time' and the ranks stop when any
    rank's time is up."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR=master, MASTER_PORT=str(PORT), GLOO_SOCKET_IFNAME=ifname)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    t = torch.ones(elems)
    dist.barrier()
    t0, compute_s, comm_s, steps = time.monotonic(), 0.0, 0.0, 0
    cpu0 = os.times()
    end = t0 + DURATION
    while True:
        c0 = time.monotonic()
        cpu_spin(compute_ms / 1e3)
        c1 = time.monotonic()
        t[-1] = 1.0 if c1 < end else 0.0
        dist.all_reduce(t)
        c2 = time.monotonic()
        compute_s += c1 - c0
        comm_s += c2 - c1
        steps += 1
        if t[-1].item() < world - 0.5:
            break
        t.div_(world)
    wall = time.monotonic() - t0
    cpu1 = os.times()
    dist.barrier()
    dist.destroy_process_group()
    Path(out).write_text(json.dumps({
        "rank": rank, "pid": os.getpid(), "steps": steps, "wall_s": round(wall, 3),
        "compute_ms_per_step": compute_ms, "compute_wall_s": round(compute_s, 3),
        "allreduce_wait_s": round(comm_s, 3), "allreduce_wait_share": round(comm_s / wall, 3),
        "cpu_s": round((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system), 3)}))


def run_ranks(mesh: Mesh, compute_ms: list[float], elems: int) -> dict:
    """Set up the mesh, run one gloo rank per namespace, tear down; returns what the ranks
    measured (by rank) and a mid-run snapshot of the links."""
    tmp = Path(tempfile.mkdtemp(prefix="iolens-ranks-"))
    procs = []
    try:
        mesh.setup()
        rtt_ping = {f"{mesh.ip[a]} -> {mesh.ip[b]}": mesh.ping(a, b)
                    for a in range(mesh.n) for b in range(a + 1, mesh.n)}
        for r in range(mesh.n):
            env = {**os.environ, "RANK": str(r), "LOCAL_RANK": "0",
                   "WORLD_SIZE": str(mesh.n), "MASTER_ADDR": mesh.ip[0],
                   "MASTER_PORT": str(PORT)}
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", mesh.ns[r], sys.executable, __file__, "--rank",
                 str(r), str(mesh.n), mesh.ip[0], mesh.ifname[r], str(compute_ms[r]),
                 str(elems), str(tmp / f"rank{r}.json")], env=env))
        snap: dict = {}
        # mid-run: the ranks start their steps ~2-3 s after launch (torch import, rendezvous)
        timer = threading.Timer(min(2 + DURATION / 2, DURATION), lambda: snap.update(
            mesh.snapshot()))
        timer.start()
        codes = [p.wait(timeout=DURATION + 180) for p in procs]
        timer.cancel()
        if any(codes):
            raise SystemExit(f"ranks failed: {codes}")
        ranks = [json.loads((tmp / f"rank{r}.json").read_text()) for r in range(mesh.n)]
        for r in ranks:
            r["ip"] = mesh.ip[r["rank"]]
        return {"ranks": ranks, "ping_ms": rtt_ping, "links": snap,
                "link_pids": [p.pid for p in mesh.relays],  # the delay line: not a culprit
                "rtt_ms_by_pair": rtt_by_pair(snap) if snap else {}}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        mesh.teardown()
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


def participant(ranks: list[dict], i: int) -> dict:
    """The culprit/other entry of one rank for the truth file."""
    r = ranks[i]
    return {"pid": r["pid"], "ip": r["ip"], "rank": r["rank"]}


def culprit_and_others(ranks: list[dict], slow: int) -> dict:
    """The truth file's `culprit` (rank `slow`) and `others` (every other rank) entries."""
    return {"culprit": participant(ranks, slow),
            "others": [participant(ranks, i) for i in range(len(ranks)) if i != slow]}


if __name__ == "__main__":
    if sys.argv[1] == "--relay":
        relay(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    elif sys.argv[1] == "--rank":
        a = sys.argv[2:]
        rank_main(int(a[0]), int(a[1]), a[2], a[3], float(a[4]), int(a[5]), a[6])
