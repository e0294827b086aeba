"""DataLoader IPC, unpacked (issue 19): every field of every sample is its own tensor.

2 workers build detection-like samples in memory (7 small tensors each, sizes varying per
sample) and return each batch of 16 as a list of lists: 112 tensors, so 112 shared-memory
segments per batch, each created under /dev/shm by the worker and its fd passed to the
trainer over a unix socket. The trainer spends 20 ms of CPU per batch. Truth: the workload's
own objects per batch, batches/s, time in next(it). Expected: ipc-overhead on the trainer.
"""

from __future__ import annotations

from common import main, write_truth
from loader_ipc import loader_truth, run_loader


def run() -> None:
    got = run_loader(packed=False)
    write_truth("ipc_unpacked", loader_truth(
        got, "112 tensors (7 fields x 16 samples) per batch, each its own shm segment",
        trainer_is_culprit=True))


if __name__ == "__main__":
    main(lambda: None, run)
