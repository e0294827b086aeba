"""Healthy control of the DataLoader-IPC scenarios (issue 19): packed batches (8 tensors)
and a trainer that computes 40 ms per batch, so the loader keeps well ahead.
Expected: nothing high, no ipc-overhead, no worker-startup.
"""

from __future__ import annotations

from common import main, write_truth
from loader_ipc import loader_truth, run_loader


def run() -> None:
    got = run_loader(packed=True, compute_ms=40.0)
    write_truth("ipc_healthy", loader_truth(
        got, "none: 8 tensors per batch, 40 ms of compute per batch",
        trainer_is_culprit=False))


if __name__ == "__main__":
    main(lambda: None, run)
