"""Shared workload of the DataLoader-IPC scenarios (issue 19): not a scenario itself.

`run_loader(...)` runs a torch DataLoader whose workers build samples in memory (no file I/O:
the only cost under study is the loader's own IPC) and a trainer that does a fixed amount of
CPU per batch, and returns what the workload measured itself: batches, objects (tensor
storages) per batch, wall time, time the trainer spent in ``next(it)`` (waiting for data and
unpickling it: receiving every storage's fd over a unix socket and mapping it) and computing.

`startup_loader(...)` measures worker start-up: a dataset object holding a long path list
(shipped to every worker when workers are spawned) or a lazy one (a directory and a count).
"""

from __future__ import annotations

import os
import time

import torch
from common import cpu_spin, until
from torch.utils.data import DataLoader, Dataset

#: fields of one sample, like a detection model's: image, boxes, labels, masks, areas, ids,
#: crowd flags (variable-length fields are why they cannot be stacked into one tensor)
FIELDS = 7


class Detection(Dataset):
    """In-memory samples of FIELDS small tensors each; sizes vary per sample."""

    def __init__(self, n: int = 1 << 20, image: int = 3 * 32 * 32) -> None:
        self.n, self.image = n, image

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> list[torch.Tensor]:
        k = 1 + i % 5  # objects in the sample
        return [torch.full((self.image,), float(i % 7)), torch.zeros(k, 4),
                torch.arange(k), torch.zeros(k, 8, 8, dtype=torch.uint8), torch.ones(k),
                torch.full((k,), i, dtype=torch.int64), torch.zeros(k, dtype=torch.bool)]


def collate_lists(batch: list[list[torch.Tensor]]) -> list[list[torch.Tensor]]:
    """Unpacked: the batch as it comes (every field of every sample its own tensor)."""
    return batch


def collate_packed(batch: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """Packed: each field concatenated over the batch, plus one tensor of lengths."""
    fields = [torch.cat([s[f].reshape(-1) if f else s[f] for s in batch]) for f in
              range(FIELDS)]
    lengths = torch.tensor([[s[f].shape[0] for f in range(FIELDS)] for s in batch])
    return fields + [lengths]


def storages(obj: object) -> int:
    """Distinct tensor storages in a (nested) batch: the objects the loader ships."""
    seen: set[int] = set()

    def walk(o: object) -> None:
        if isinstance(o, torch.Tensor):
            seen.add(o.untyped_storage().data_ptr())
        elif isinstance(o, (list, tuple)):
            for x in o:
                walk(x)
        elif isinstance(o, dict):
            for x in o.values():
                walk(x)
    walk(obj)
    return len(seen)


def tensors(batch: list) -> int:
    """Tensors in a batch of this module's collate functions (a list, or a list of lists)."""
    return sum(len(x) if isinstance(x, list) else 1 for x in batch)


def run_loader(packed: bool, workers: int = 2, batch: int = 16, compute_ms: float = 20.0,
               seconds: float | None = None, dataset: Dataset | None = None) -> dict:
    """Run the loader for `seconds` (the scenario's duration) and return its own figures."""
    torch.set_num_threads(1)
    loader = DataLoader(dataset or Detection(), batch_size=batch, num_workers=workers,
                        collate_fn=collate_packed if packed else collate_lists,
                        persistent_workers=True, prefetch_factor=2)
    it = iter(loader)
    next(it)  # workers started and warm: start-up is not part of the throughput
    t_wait = t_comp = 0.0
    n = objs = 0
    kw = {} if seconds is None else {"seconds": seconds}
    t0 = time.monotonic()
    for _ in until(**kw):
        a = time.monotonic()
        b = next(it)
        m = time.monotonic()
        # distinct storages walked on the first batches; afterwards the tensors are counted
        # (the same figure for this loader, at a fraction of the trainer's time per object)
        objs += storages(b) if n < 5 else tensors(b)
        cpu_spin(compute_ms / 1e3)
        t_wait += m - a
        t_comp += time.monotonic() - m
        n += 1
    wall = time.monotonic() - t0
    pids = [w.pid for w in it._workers]  # type: ignore[attr-defined]
    return {"trainer_pid": os.getpid(), "worker_pids": pids, "workers": workers,
            "batch_size": batch, "batches": n, "objects": objs,
            "objects_per_batch": objs / max(n, 1), "wall_s": round(wall, 3),
            "batches_per_s": round(n / wall, 3) if wall else 0.0,
            "trainer_next_s": round(t_wait, 3), "trainer_compute_s": round(t_comp, 3),
            "trainer_next_share": round(t_wait / wall, 3) if wall else 0.0,
            "compute_ms_per_batch": compute_ms, "packed": packed}


class PathList(Dataset):
    """Holds every sample's path (a list of `n` strings): pickled into each spawned worker."""

    def __init__(self, root: str, n: int) -> None:
        self.paths = [f"{root}/class{i % 1000:04d}/img{i:08d}.jpg" for i in range(n)]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor([len(self.paths[i])])


class LazyPaths(Dataset):
    """The same samples with the path computed on demand: nothing large to ship."""

    def __init__(self, root: str, n: int) -> None:
        self.root, self.n = root, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor([len(f"{self.root}/class{i % 1000:04d}/img{i:08d}.jpg")])


def startup_loader(lazy: bool, n: int, workers: int, seconds: float,
                   compute_ms: float = 20.0) -> dict:
    """Spawned workers (the start method of macOS/Windows, and of `multiprocessing_context=
    'spawn'`): the dataset object is pickled into each. Measures the time from creating the
    iterator to the first batch, then runs steady batches (`compute_ms` of CPU each) for the
    rest of `seconds`."""
    torch.set_num_threads(1)
    t0 = time.monotonic()
    ds = LazyPaths("/data/imagenet", n) if lazy else PathList("/data/imagenet", n)
    build_s = time.monotonic() - t0
    import pickle

    shipped = len(pickle.dumps(ds, protocol=pickle.HIGHEST_PROTOCOL))
    loader = DataLoader(ds, batch_size=32, num_workers=workers, multiprocessing_context="spawn",
                        shuffle=False)
    t1 = time.monotonic()
    it = iter(loader)
    next(it)
    first_batch_s = time.monotonic() - t1
    pids = [w.pid for w in it._workers]  # type: ignore[attr-defined]
    nb = 1
    for _ in until(max(0.0, seconds - (time.monotonic() - t0))):
        try:
            next(it)
        except StopIteration:
            break
        cpu_spin(compute_ms / 1e3)  # the trainer computes: a steady run is not starved
        nb += 1
    return {"trainer_pid": os.getpid(), "worker_pids": pids, "workers": workers,
            "paths": n, "lazy": lazy, "dataset_pickle_bytes": shipped,
            "build_s": round(build_s, 3), "first_batch_s": round(first_batch_s, 3),
            "batches": nb}


def loader_truth(got: dict, injected: str, trainer_is_culprit: bool) -> dict:
    """The truth file of a loader scenario: what was injected, the culprit (the trainer, or
    None for a healthy control), the other processes with their roles, and `got`."""
    workers = [{"pid": p, "role": "dataloader"} for p in got["worker_pids"]]
    if trainer_is_culprit:
        return {"injected": injected, "culprit": {"pid": got["trainer_pid"]},
                "others": workers, **got}
    return {"injected": injected, "culprit": None,
            "others": [{"pid": got["trainer_pid"], "role": "trainer"}] + workers, **got}
