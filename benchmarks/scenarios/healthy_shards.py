"""Healthy control: DataLoader over a few large shards while compute dominates.

Each step does a large matmul (~0.1-0.2 s on 2 cores); the worker reads 1 MiB samples
sequentially from 4 shards of 32 MiB. Expected: no high-severity finding (not I/O-bound).
"""

from __future__ import annotations

import torch
from common import data_dir, main, until, write_file
from torch.utils.data import DataLoader, Dataset

D = data_dir("healthy_shards")
SHARDS, SHARD = 4, 32 << 20
SAMPLE = 1 << 20


class Shards(Dataset):
    def __len__(self) -> int:
        return SHARDS * (SHARD // SAMPLE)

    def __getitem__(self, i: int) -> torch.Tensor:
        shard, off = divmod(i, SHARD // SAMPLE)
        with open(D / f"shard{shard}.bin", "rb") as f:
            f.seek(off * SAMPLE)
            raw = f.read(SAMPLE)
        return torch.frombuffer(bytearray(raw), dtype=torch.uint8)[:4096].float()


def prepare() -> None:
    for s in range(SHARDS):
        write_file(D / f"shard{s}.bin", SHARD)


def run() -> None:
    torch.set_num_threads(1)
    w = torch.randn(1024, 1024)
    loader = DataLoader(Shards(), batch_size=4, num_workers=1)
    it = iter(loader)
    for _ in until():
        try:
            x = next(it)
        except StopIteration:
            it = iter(loader)
            x = next(it)
        h = x[:, :1024] @ w
        for _ in range(40):  # compute dominates the step
            h = torch.tanh(h @ w)


if __name__ == "__main__":
    main(prepare, run)
