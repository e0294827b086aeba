"""DataLoader over many tiny files (one 2 KiB file per sample), 2 workers.

Injected bottleneck: per-sample open/stat/read/close of tiny files, read cold from the disk.
Expected: metadata-heavy or small-io (the same root cause: one file per sample), culprit: the
DataLoader workers.
"""

from __future__ import annotations

import os

import torch
from common import data_dir, evict, main, until
from torch.utils.data import DataLoader, Dataset

N = 20000
D = data_dir("tiny_files")


class Tiny(Dataset):
    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int) -> torch.Tensor:
        with open(D / f"{i:06d}.bin", "rb") as f:
            raw = f.read()
        return torch.frombuffer(bytearray(raw), dtype=torch.uint8)[:1024].float()


def prepare() -> None:
    for i in range(N):
        p = D / f"{i:06d}.bin"
        if not p.exists():
            p.write_bytes(os.urandom(2048))


def run() -> None:
    for i in range(N):  # cold: every sample comes from the disk
        evict(D / f"{i:06d}.bin")
    model = torch.nn.Linear(1024, 10)
    loader = DataLoader(Tiny(), batch_size=64, shuffle=True, num_workers=2)
    it = iter(loader)
    for _ in until():
        try:
            x = next(it)
        except StopIteration:
            it = iter(loader)
            x = next(it)
        model(x).sum().backward()


if __name__ == "__main__":
    main(prepare, run)
