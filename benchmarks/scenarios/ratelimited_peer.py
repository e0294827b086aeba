"""Three gloo ranks; one participant's link is rate-limited to 40 Mbit/s (tbf, both ways).

Needs root, iproute2 and torch. Own namespaces and addresses (198.18.80.0/24) on a bridge; a
tbf qdisc on both ends of rank 2's veth caps what it sends and receives. Every rank burns
10 ms of CPU per step and all_reduces a 1 MiB tensor. Truth: ranks' own timings, kernel RTTs
and delivery rates from `ss -ti`, and the tbf's counters (`tc -s qdisc`). Expected:
network-bandwidth naming rank 2 (its address or its process), not another peer.
"""

from __future__ import annotations

from common import main, write_truth
from netmesh import Mesh, culprit_and_others, run_ranks

SLOW, RATE = 2, "40mbit"


def run() -> None:
    got = run_ranks(Mesh("rl", 3, 80, rate={SLOW: RATE}), [10.0] * 3, 256 * 1024)
    ranks = got["ranks"]
    write_truth("ratelimited_peer", {
        "injected": f"tbf {RATE} on both ends of rank {SLOW}'s link",
        **culprit_and_others(ranks, SLOW), **got})


if __name__ == "__main__":
    main(lambda: None, run)
