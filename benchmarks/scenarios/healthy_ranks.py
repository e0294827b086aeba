"""Healthy control: three gloo ranks with equal compute over healthy links.

Needs root, iproute2 and torch. Same mesh as straggler_rank (own namespaces, 198.18.81.0/24,
a bridge), no fault: every rank burns 40 ms of CPU per step and all_reduces a 1 MiB tensor.
Truth: what each rank measured (compute, all_reduce wait, CPU), kernel RTTs. Expected:
nothing high.
"""

from __future__ import annotations

from common import main, write_truth
from netmesh import Mesh, participant, run_ranks

COMPUTE_MS = [40.0, 40.0, 40.0]


def run() -> None:
    got = run_ranks(Mesh("hr", 3, 81), COMPUTE_MS, 256 * 1024)
    write_truth("healthy_ranks", {
        "injected": "none: equal compute, healthy links", "culprit": None,
        "others": [participant(got["ranks"], i) for i in range(3)], **got})


if __name__ == "__main__":
    main(lambda: None, run)
