"""Workload for the dirty-throttling test: buffered writes of MB MiB to PATH, then fsync.

argv: PATH MB TRUTH_JSON.
"""
import json
import os
import sys
import time

path, mb, truth = sys.argv[1], int(sys.argv[2]), sys.argv[3]
chunk = b"t" * (1 << 20)
t0 = time.monotonic_ns()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for _ in range(mb):
    os.write(fd, chunk)
write_ns = time.monotonic_ns() - t0
os.fsync(fd)
os.close(fd)
json.dump({"pid": os.getpid(), "path": os.path.realpath(path), "write_ns": write_ns,
           "bytes": mb << 20}, open(truth, "w"))
