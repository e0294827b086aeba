"""Training loop that checkpoints every step with torch.save + fsync (synchronously).

Expected: sync-stall, culprit resource: the checkpoint file.
"""

from __future__ import annotations

import os

import torch
from common import data_dir, main, until

D = data_dir("checkpoint_fsync")


def prepare() -> None:
    pass


def run() -> None:
    torch.set_num_threads(1)
    model = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024) for _ in range(12)])  # ~48 MiB
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(16, 1024)
    path = D / "ckpt.pt"
    for _ in until():
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
        with open(path, "wb") as f:
            torch.save(model.state_dict(), f)
            f.flush()
            os.fsync(f.fileno())  # the stall: every step waits for the disk


if __name__ == "__main__":
    main(prepare, run)
