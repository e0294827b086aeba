"""Ranks of a distributed job recognised by behaviour, for captures whose processes carry no
RANK in their environment (the collector's role rules, collector/classify.py, see that first).

In: the `resources` and `tcp_conns` reductions and the process info being built. Out: role
"rank" (and a rank number from launcher arguments when they give one) set in place.

A job's ranks: processes that connect to one common endpoint (the rendezvous store, e.g.
MASTER_ADDR:MASTER_PORT) and to each other (the mesh or ring of a collective library). Clients
of one server share an endpoint too, but do not connect to each other.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa

#: launcher arguments that carry the rank: --rank 3, --rank=3, --local-rank 1, --local_rank=1
RANK_ARG = re.compile(r"--(?:global[-_])?rank[= ](\d+)\b")
LOCAL_RANK_ARG = re.compile(r"--local[-_]rank[= ](\d+)\b")
#: roles a mesh member keeps (a DataLoader worker of a rank talks to it, not as a rank)
_KEEP = ("dataloader", "inference-server", "checkpoint-writer")


def rank_pids(procs: dict[int, dict[str, Any]]) -> set[int]:
    """The processes whose role is rank (from the environment or recognised here)."""
    return {p for p, i in procs.items() if i.get("role") == "rank"}


def rank_from_args(cmdline: str | None) -> int | None:
    """The rank a launcher passed on the command line, if any."""
    m = RANK_ARG.search(cmdline or "") or LOCAL_RANK_ARG.search(cmdline or "")
    return int(m.group(1)) if m else None


def mesh_members(resources: pa.Table | None, conns: pa.Table | None) -> set[int]:
    """Pids that share a connected-to endpoint and connect to one another."""
    if resources is None or conns is None or resources.num_rows == 0 or conns.num_rows == 0:
        return set()
    owner = {c["local"]: c["pid"] for c in conns.select(["pid", "local"]).to_pylist()
             if c["pid"] is not None and c["local"]}
    dials: dict[int, set[str]] = {}
    for r in resources.select(["pid", "op", "resource"]).to_pylist():
        if r["op"] == "connect" and (r["resource"] or "").startswith("tcp:"):
            dials.setdefault(r["pid"], set()).add(r["resource"][4:])
    fans: dict[str, set[int]] = {}
    for pid, eps in dials.items():
        for ep in eps:
            fans.setdefault(ep, set()).add(pid)
    out: set[int] = set()
    for ep, pids in fans.items():
        if len(pids) < 2:
            continue
        group = set(pids) | ({owner[ep]} if ep in owner else set())
        # a mesh: some member dials another member's endpoint (not the common one)
        linked = {p for p in group for e in dials.get(p, ()) if e != ep and owner.get(e) in group}
        linked |= {owner[e] for p in group for e in dials.get(p, ())
                   if e != ep and owner.get(e) in group}
        if len(linked) >= 2:
            out |= group
    return out


def recognise(info: dict[int, dict[str, Any]], resources: pa.Table | None,
              conns: pa.Table | None) -> None:
    """Mark mesh members (and processes with a rank argument) as ranks, in place."""
    members = mesh_members(resources, conns)
    args = {pid: rank_from_args(d.get("cmdline")) for pid, d in info.items()}
    if sum(a is not None for a in args.values()) < 2:
        args = {}  # one process with a --rank argument is not a job of ranks (LoRA rank...)
    for pid, d in info.items():
        arg = args.get(pid)
        if d.get("role") in _KEEP:
            continue
        if pid in members or (arg is not None and d.get("role") in (None, "trainer", "rank")):
            d["role"] = "rank"
            if d.get("rank") is None:
                d["rank"] = arg
