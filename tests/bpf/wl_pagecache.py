"""Workload for test_pagecache: cold mmap of a known file, cold read(), a fresh write.

argv: WORKDIR TRUTH_JSON.
 - weights.bin (MMAP_MB): written, fsynced, evicted (POSIX_FADV_DONTNEED), then mmapped and
   every page touched: the page faults must bring in the whole file.
 - data.bin (READ_MB): written, fsynced, evicted, then read() sequentially.
 - out.bin (WRITE_MB): a new file written (pages created and dirtied), fsynced.
 - shards.bin (SHARDS_MB): evicted, mmapped, each quarter touched by its own thread.
"""
import json
import mmap
import os
import sys
import threading
import time

work, truth = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
MMAP_MB, READ_MB, WRITE_MB, SHARDS_MB, THREADS = 64, 16, 8, 32, 4
MB = 1 << 20
PAGE = mmap.PAGESIZE


def make(path, mb):
    chunk = os.urandom(MB)
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)


weights, data, out, shards = (os.path.join(work, n)
                               for n in ("weights.bin", "data.bin", "out.bin", "shards.bin"))
make(weights, MMAP_MB)
make(data, READ_MB)
make(shards, SHARDS_MB)

fd = os.open(weights, os.O_RDONLY)
m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
total = 0
t0 = time.monotonic_ns()
for off in range(0, MMAP_MB * MB, PAGE):
    total += m[off]
touch_ns = time.monotonic_ns() - t0
m.close()
os.close(fd)

fd = os.open(data, os.O_RDONLY)
while os.read(fd, 256 * 1024):
    pass
os.close(fd)

fd = os.open(shards, os.O_RDONLY)
sm = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
part = SHARDS_MB * MB // THREADS


def touch(lo):
    acc = 0
    for off in range(lo, lo + part, PAGE):
        acc += sm[off]


threads = [threading.Thread(target=touch, args=(i * part,)) for i in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
sm.close()
os.close(fd)

chunk = b"w" * MB
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for _ in range(WRITE_MB):
    os.write(fd, chunk)
os.fsync(fd)
os.close(fd)

json.dump({"pid": os.getpid(), "weights": os.path.realpath(weights), "data": os.path.realpath(data),
           "out": os.path.realpath(out), "mmap_bytes": MMAP_MB * MB, "read_bytes": READ_MB * MB,
           "write_bytes": WRITE_MB * MB, "page": PAGE, "touch_ns": touch_ns,
           "shards": os.path.realpath(shards), "shards_bytes": SHARDS_MB * MB}, open(truth, "w"))
