"""Three gloo ranks; one participant's link has 15 ms of added delay each way.

Needs root, iproute2 and torch. Own namespaces and addresses (198.18.79.0/24) on a bridge.
netem is not built into this kernel, so rank 1's link goes through a userspace delay line
(netmesh.relay: AF_PACKET relay between its veth and the bridge, every frame 15 ms late, so
every connection touching rank 1 has ~30 ms more RTT). The ranks all_reduce a small tensor
(1 KiB) after 5 ms of CPU per step: latency-bound, not bandwidth-bound. Truth: ranks' own
timings, ping RTT per participant before the run, kernel RTTs from `ss -ti` mid-run.
Expected: network-latency naming rank 1 (its address or its process).
"""

from __future__ import annotations

from common import main, write_truth
from netmesh import Mesh, culprit_and_others, run_ranks

SLOW, DELAY_MS = 1, 15.0


def run() -> None:
    got = run_ranks(Mesh("lt", 3, 79, delay_ms={SLOW: DELAY_MS}), [5.0] * 3, 256)
    ranks = got["ranks"]
    write_truth("latency_link", {
        "injected": f"userspace delay line: +{DELAY_MS:.0f} ms each way on rank {SLOW}'s link",
        **culprit_and_others(ranks, SLOW), **got})


if __name__ == "__main__":
    main(lambda: None, run)
