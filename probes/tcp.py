"""TCP health probe (tcp.bpf.c) -> the `tcp` table, one row per (peer, local) connection key.

Kernel side aggregates per (local IP:port, peer IP:port): retransmitted segments, connections
established/closed and the lifetime of those closed, socket-layer bytes of connections
established during the capture, RTT samples (tcp_probe) and incoming segments dropped for
lack of receive room (skb:kfree_skb with its rx_sk and drop reason), plus one host-level row
(`resource` "tcp:*") for TCP-only drop reasons on sockets established before the capture.

Attribution: retransmits run in softirq, so `pid` comes from user space: the row's peer
(`tcp:IP:PORT`) is matched with the socket resources the syscall layer saw this interval
(resolver fd tables); pid stays null when no process, or more than one (a socket shared
after fork), has that peer. With --pid/-- CMD only rows matched to traced processes are kept.
The connection's connect/accept event may still sit in the syscall ring buffer when this probe
drains: an unmatched row (pid mode, or a new connection) is retried once at the next drain and
then written with its own interval's `ts`.
"""

from __future__ import annotations

import ipaddress
import socket

import numpy as np
import pyarrow as pa
from iolens.collector import schema as S
from iolens.probes._optional import (
    HERE,
    Flipper,
    ProbeUnavailable,
    int_flag,
    missing_hooks,
    render,
    require,
    sum_fields,
    tracepoint_fields,
)

SOURCE = HERE / "tcp.bpf.c"
COUNTERS = ("agg_full", "socks_full")
KEY = np.dtype([("laddr", "u1", (16,)), ("raddr", "u1", (16,)), ("lport", "<u2"),
                ("rport", "<u2"), ("family", "<u2"), ("pad", "<u2")])
VAL = np.dtype([(n, "<u8") for n in ("retransmits", "rcvq_full", "connects", "closes", "conn_ns",
                                     "bytes_sent", "bytes_received", "rtt_sum_us", "rtt_n")])
MAX_KEYS = 8192
ANY = "tcp:*"
#: skb drop reasons that mean "no room in the receiver" (names as in the kfree_skb format)
RCVQ_GENERIC = ("SOCKET_RCVBUFF", "PROTO_MEM", "SOCKET_BACKLOG")
RCVQ_TCP = ("TCP_ZEROWINDOW", "TCP_OFO_QUEUE_PRUNE", "TCP_OFO_DROP")


def drop_reasons(root=None) -> dict[str, int]:
    """Reason name -> number from skb:kfree_skb's print fmt (the enum changes across kernels)."""
    import re

    from iolens.probes.preflight import tracefs_root

    root = root or tracefs_root()
    try:
        text = (root / "events/skb/kfree_skb/format").read_text()
    except (OSError, TypeError):
        return {}
    return {name: int(num) for num, name in re.findall(r'\{ *(\d+), *"([A-Z0-9_]+)" *\}', text)}


#: optional hooks of plan(): flag -> what a capture lacks without it
HOOKS = {
    "send_length": "sock:sock_send_length missing: tcp bytes out only from the syscall layer",
    "recv_length": "sock:sock_recv_length missing: tcp bytes in only from the syscall layer",
    "tcp_probe": "tcp:tcp_probe missing: no RTT samples",
    "kfree_skb": "skb:kfree_skb (rx_sk, reason) missing: receive-room drops not counted",
}


def plan() -> list[str]:
    addr = ("sport", "dport", "family", "saddr", "daddr", "saddr_v6", "daddr_v6")
    require("tcp", "tcp_retransmit_skb", addr)
    require("sock", "inet_sock_set_state", ("skaddr", "oldstate", "newstate", "protocol", *addr))
    flags = [int_flag("MAX_KEYS", MAX_KEYS, 64, 2**20)]
    for flag, cat, ev, fields in (
            ("send_length", "sock", "sock_send_length", ("sk", "protocol", "ret")),
            ("recv_length", "sock", "sock_recv_length", ("sk", "protocol", "ret")),
            ("tcp_probe", "tcp", "tcp_probe", ("saddr", "daddr", "sport", "dport", "family", "srtt",
                                               "skaddr"))):
        have = tracepoint_fields(cat, ev)
        if have is not None and all(f in have for f in fields):
            flags.append(f"-DHAVE_{flag}=1")
    have = tracepoint_fields("skb", "kfree_skb")
    nums = drop_reasons()
    generic = [nums[r] for r in RCVQ_GENERIC if r in nums]
    tcp_only = [nums[r] for r in RCVQ_TCP if r in nums]
    if have is not None and {"rx_sk", "reason"} <= have and (generic or tcp_only):
        flags.append("-DHAVE_kfree_skb=1")
        flags += [int_flag(f"RCVQ_G{i + 1}", n, 0, 2**31 - 1) for i, n in enumerate(generic)]
        flags += [int_flag(f"RCVQ_T{i + 1}", n, 0, 2**31 - 1) for i, n in enumerate(tcp_only)]
    return flags


def addr_text(family: int, raw: np.ndarray, port: int, proto: str = "tcp") -> str:
    """Like collector.enrich.decode_sockaddr: tcp:IP:PORT, tcp:[v6]:PORT (v4-mapped -> v4)."""
    if family == socket.AF_INET6:
        ip = ipaddress.IPv6Address(bytes(raw))
        if ip.ipv4_mapped:
            return f"{proto}:{ip.ipv4_mapped}:{port}"
        return f"{proto}:[{ip}]:{port}"
    return f"{proto}:{socket.inet_ntop(socket.AF_INET, bytes(raw[:4]))}:{port}"


def peers_by_pid(resolver) -> dict[str, set[int]]:
    """peer resource -> pids whose sockets (this interval's fd tables) have that peer."""
    out: dict[str, set[int]] = {}
    if resolver is None:
        return out
    for tgid, (kind, res) in resolver.socket_owners():
        if kind == "socket" and res and res.startswith("tcp:") and tgid:
            out.setdefault(res, set()).add(int(tgid))
    return out


class TcpProbe:
    name = "tcp"
    tables = ("tcp",)

    def __init__(self, opts=None) -> None:
        self.opts = opts
        self.pid_mode = bool(opts is not None and (opts.pids or opts.command or opts.cgroup))
        self.prog = None
        self.cflags: list[str] | None = None
        self.counters = dict.fromkeys(COUNTERS, 0)
        self._held: list = []   # rows whose peer was not matched yet (one retry)

    def missing_hooks(self) -> dict[str, str]:
        """Optional hooks this build of the probe lacks (after start): hook -> what is lost."""
        return missing_hooks(self.cflags, HOOKS) if self.cflags is not None else {}

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
            raise ProbeUnavailable(f"tcp probe refused: {exc}") from None
        self.flip = Flipper(self.prog, "agg", KEY, VAL, MAX_KEYS)

    def poll(self) -> None:
        pass

    def drain(self, ctx) -> dict:
        keys, vals = self.flip.take()
        sums = self.prog.percpu_array_sums("counters", len(COUNTERS))
        self.counters = dict(zip(COUNTERS, sums, strict=True))
        resolver = ctx.resolver
        peers = peers_by_pid(resolver)
        procs = getattr(resolver, "procs", {}) if resolver is not None else {}
        tot = sum_fields(vals) if len(keys) else {}
        new = []
        for i in range(len(keys)):
            k = keys[i]
            fam = int(k["family"])
            row = {n: int(tot[n][i]) for n in VAL.names}
            if fam == 0:
                row.update(resource=ANY, local=None)
            else:
                row.update(resource=addr_text(fam, k["raddr"], int(k["rport"])),
                           local=addr_text(fam, k["laddr"], int(k["lport"]))[len("tcp:"):])
            new.append((ctx.start_ns, ctx.interval_s, row))
        held, self._held = self._held, []
        out = []
        for age, batch in ((1, held), (0, new)):
            for start_ns, interval_s, row in batch:
                pids = peers.get(row["resource"], set())
                if self.pid_mode:
                    pids = {p for p in pids if p in procs}
                pid = next(iter(pids)) if len(pids) == 1 else None
                if not pids and row["resource"] != ANY and age == 0 and \
                        (self.pid_mode or row["connects"]):
                    # its connect/accept may still be in the syscall ring buffer: retry once
                    self._held.append((start_ns, interval_s, row))
                    continue
                if not pids and self.pid_mode:
                    continue   # not a traced process's connection (or host-level drops)
                out.append((start_ns, interval_s, pid, row))
        if not out:
            return {"tcp": S.empty_table("tcp")}
        comms = []
        for _, _, pid, _ in out:
            comms.append((resolver.procs.get(pid) or resolver.proc_info(pid)).comm
                         if pid is not None and resolver is not None else None)
        rows = [r for _, _, _, r in out]
        cols = {
            "ts": pa.array([s for s, _, _, _ in out], pa.int64()).cast(S.TS),
            "interval_s": [iv for _, iv, _, _ in out], "host": [ctx.host] * len(out),
            "pid": [p for _, _, p, _ in out], "comm": comms,
            "resource": [r["resource"] for r in rows], "local": [r["local"] for r in rows],
            "retransmits": [r["retransmits"] for r in rows],
            "rcvq_full": [r["rcvq_full"] for r in rows],
            "rtt_us": [r["rtt_sum_us"] / r["rtt_n"] if r["rtt_n"] else None for r in rows],
            "connects": [r["connects"] for r in rows], "closes": [r["closes"] for r in rows],
            "conn_ns_sum": [r["conn_ns"] for r in rows],
            "bytes_sent": [r["bytes_sent"] for r in rows],
            "bytes_received": [r["bytes_received"] for r in rows],
        }
        return {"tcp": S.to_table("tcp", cols)}

    def close(self) -> None:
        if self.prog is not None:
            self.prog.close()
            self.prog = None
