"""Per-thread workload for `record --per-thread`: each of four threads (the main one too)
writes its own file in chunks, then reads it back to EOF, counting its own calls.

usage: python threads_io.py WORKDIR TRUTH.json

All threads are alive at once (a barrier), so each has its own thread id. TRUTH.json:
{"pid": P, "threads": [{"tid", "path", "write": [calls, bytes], "read": [calls, bytes]}]}.
"""

from __future__ import annotations

import json
import os
import sys
import threading

SIZES = ((70_001, 4093), (50_021, 1021), (30_011, 509), (20_011, 2003))  # (bytes, chunk)


def file_io(path: str, size: int, chunk: int, barrier: threading.Barrier, out: list) -> None:
    """Write `size` bytes in `chunk`s, read them back (the 0-byte EOF read counts)."""
    barrier.wait()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    writes = written = 0
    while written < size:
        written += os.write(fd, b"t" * min(chunk, size - written))
        writes += 1
    os.lseek(fd, 0, os.SEEK_SET)
    reads = nread = 0
    while data := os.read(fd, chunk):
        reads += 1
        nread += len(data)
    reads += 1
    os.close(fd)
    out.append({"tid": threading.get_native_id(), "path": path, "write": [writes, written],
                "read": [reads, nread]})
    barrier.wait()  # nobody exits (and frees its tid for reuse) before all are done


def main() -> None:
    work, truth = sys.argv[1], sys.argv[2]
    os.makedirs(work)
    barrier, out = threading.Barrier(len(SIZES)), []
    threads = [threading.Thread(target=file_io, args=(os.path.join(work, f"t{i}"), size, chunk,
                                                      barrier, out))
               for i, (size, chunk) in enumerate(SIZES[1:], start=1)]
    for t in threads:
        t.start()
    file_io(os.path.join(work, "t0"), *SIZES[0], barrier, out)
    for t in threads:
        t.join()
    with open(truth, "w") as f:
        json.dump({"pid": os.getpid(), "threads": out}, f)


if __name__ == "__main__":
    main()
