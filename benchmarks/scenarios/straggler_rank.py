"""Three gloo ranks over healthy links; one rank computes five times longer per step.

Needs root, iproute2 and torch. Each rank has its own network namespace and address
(198.18.78.0/24) on a bridge; nothing is done to the links. Per step every rank burns
CPU (30 ms; rank 1: 150 ms) and all_reduces a 1 MiB tensor, so ranks 0 and 2 wait in the
all_reduce for rank 1. Truth (measured by the ranks): compute and all_reduce wait per rank,
os.times() CPU, kernel RTTs from `ss -ti`. Expected: imbalance (straggler) naming rank 1's
process, and no high network finding (the links are fine).
"""

from __future__ import annotations

from common import main, write_truth
from netmesh import Mesh, culprit_and_others, run_ranks

SLOW = 1
COMPUTE_MS = [30.0, 150.0, 30.0]


def run() -> None:
    got = run_ranks(Mesh("st", 3, 78), COMPUTE_MS, 256 * 1024)
    ranks = got["ranks"]
    waits = [r["allreduce_wait_s"] for r in ranks]
    write_truth("straggler_rank", {
        "injected": f"rank {SLOW} computes {COMPUTE_MS[SLOW]:.0f} ms per step, the others "
                    f"{COMPUTE_MS[0]:.0f} ms; links untouched",
        **culprit_and_others(ranks, SLOW),
        "checks": {"straggler_waits_least": waits[SLOW] == min(waits),
                   "straggler_most_cpu": max(ranks, key=lambda r: r["cpu_s"])["rank"] == SLOW},
        **got})


if __name__ == "__main__":
    main(lambda: None, run)
