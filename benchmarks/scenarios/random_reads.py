"""Random 4 KiB preads over a large file (no readahead, cold cache), like an index-shuffled
dataset read record by record. Expected: random-access, culprit resource: the file."""

from __future__ import annotations

import os
import random

from common import data_dir, evict, main, until, write_file

D = data_dir("random_reads")
SIZE = 512 << 20


def prepare() -> None:
    write_file(D / "records.bin", SIZE)


def run() -> None:
    path = D / "records.bin"
    evict(path)
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    rng = random.Random(1)
    pages = SIZE // 4096
    for _ in until():
        for _ in range(256):
            os.pread(fd, 4096, rng.randrange(pages) * 4096)
    os.close(fd)


if __name__ == "__main__":
    main(prepare, run)
