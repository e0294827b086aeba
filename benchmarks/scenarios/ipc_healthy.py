"""Healthy control of the DataLoader-IPC scenarios (issue 19): packed batches (8 tensors)
and a trainer that computes 40 ms per batch, so the loader keeps well ahead.
Expected: nothing high, no ipc-overhead, no worker-startup.
"""

from __future__ import annotations

from common import main, write_truth
from loader_ipc import run_loader


def run() -> None:
    got = run_loader(packed=True, compute_ms=40.0)
    write_truth("ipc_healthy", {
        "injected": "none: 8 tensors per batch, 40 ms of compute per batch",
        "culprit": None, "others": [{"pid": got["trainer_pid"], "role": "trainer"}] +
        [{"pid": p, "role": "dataloader"} for p in got["worker_pids"]], **got})


if __name__ == "__main__":
    main(lambda: None, run)
