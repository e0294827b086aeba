"""Loading model weights through mmap, cold: every page is faulted in from the disk, then
inference runs on them. Expected: mmap-fault-io (needs the faults probe), culprit resource:
the weights file."""

from __future__ import annotations

import mmap

import numpy as np
from common import data_dir, evict, main, until, write_file

D = data_dir("mmap_load")
SIZE = 512 << 20


def prepare() -> None:
    write_file(D / "model.safetensors", SIZE)


def run() -> None:
    path = D / "model.safetensors"
    for _ in until():
        evict(path)  # each "load" starts cold, as after a deploy or on a fresh node
        with open(path, "rb") as f:
            m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
            w = np.frombuffer(m, dtype=np.uint8)
            total = int(w[::4096].sum(dtype=np.int64))  # one touch per page: faults do the I/O
            del w
            m.close()
        assert total >= 0


if __name__ == "__main__":
    main(prepare, run)
