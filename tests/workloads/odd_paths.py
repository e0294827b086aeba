"""Reliability workload: files whose names hold newlines, tabs, quotes, backslashes, bytes that
are not UTF-8, and a path of about 4,000 bytes. Each gets its own number of bytes written.

    odd_paths.py WORKDIR TRUTH_JSON [ARGS...]     (ARGS are ignored: injection-looking argv)

TRUTH_JSON: {"pid": P, "files": [{"path_hex": ..., "bytes": N}, ...]}
"""

import json
import os
import sys
import time

work = os.fsencode(sys.argv[1])
os.makedirs(work)
names = [b"new\nline", b"tab\there", b"quote'\"s", b"back\\slash\\x41", b"bad\xff\xfe.bin",
         b"utf8-\xc3\xbc\xe2\x82\xac", b" lead and trail ", b"%s%n$(id)`id`"]
long_dir = work + b"".join(b"/" + b"d%02d" % i + b"x" * 196 for i in range(19))
os.makedirs(long_dir)
paths = [work + b"/" + n for n in names] + [long_dir + b"/" + b"L" * 90 + b".dat"]
truth = {"pid": os.getpid(), "files": []}
for i, p in enumerate(paths):
    n = 100 + i
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, b"o" * n)
    os.close(fd)
    truth["files"].append({"path_hex": p.hex(), "bytes": n})
assert max(len(p) for p in paths) >= 3900, max(len(p) for p in paths)
with open(sys.argv[2], "w") as f:
    json.dump(truth, f)
time.sleep(1.5)  # a process gone before the collector reads /proc has no cmdline
