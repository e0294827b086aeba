"""Workload for test_block: O_DIRECT sequential writes then reads of known size.

argv: WORKDIR TRUTH_JSON. Writes N x 1 MiB O_DIRECT, fsyncs, reads them back O_DIRECT.
"""
import json
import mmap
import os
import sys

work, truth = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
path = os.path.join(work, "direct.bin")
N, CH = 16, 1 << 20
buf = mmap.mmap(-1, CH)
buf.write(os.urandom(CH))
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
for i in range(N):
    os.pwrite(fd, buf, i * CH)
os.fsync(fd)
for i in range(N):
    os.preadv(fd, [buf], i * CH)
os.close(fd)
st = os.stat(path)
json.dump({"bytes": N * CH, "dev": f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"},
          open(truth, "w"))
os.unlink(path)
