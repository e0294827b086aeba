"""DataLoader IPC, packed (issue 19): the same samples as ipc_unpacked, each field
concatenated over the batch in the worker's collate_fn plus one tensor of lengths: 8 tensors
per batch instead of 112. Expected: no ipc-overhead finding (nothing high).
Truth: objects per batch and batches/s (the packed throughput that ipc_unpacked's impact
estimate is compared with).
"""

from __future__ import annotations

from common import main, write_truth
from loader_ipc import loader_truth, run_loader


def run() -> None:
    got = run_loader(packed=True)
    write_truth("ipc_packed", loader_truth(
        got, "none: 8 tensors per batch (7 packed fields + lengths)",
        trainer_is_culprit=False))


if __name__ == "__main__":
    main(lambda: None, run)
