"""Reliability workload: steady file I/O with many distinct files, until told to stop.

    busy_io.py WORKDIR SECONDS [DONE_FILE]

Writes 4 KiB to WORKDIR/f<i % 500> about 500 times a second (open, write, close), so every
interval has io rows and events. Stops after SECONDS (or on SIGTERM/SIGINT/SIGHUP), then
writes DONE_FILE (outside the capture) with the number of writes: proof it was not harmed.
"""

import json
import os
import signal
import sys
import time

work, seconds = sys.argv[1], float(sys.argv[2])
done = sys.argv[3] if len(sys.argv) > 3 else None
os.makedirs(work, exist_ok=True)
stop = False


def on_signal(_s, _f):
    global stop
    stop = True


for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, on_signal)
if done:  # the pid, so a test can attach with -p
    with open(done + ".pid", "w") as f:
        f.write(str(os.getpid()))
buf = b"x" * 4096
n = 0
end = time.monotonic() + seconds
while not stop and time.monotonic() < end:
    fd = os.open(os.path.join(work, f"f{n % 500}"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, buf)
    os.close(fd)
    n += 1
    time.sleep(0.002)
if done:
    with open(done, "w") as f:
        json.dump({"pid": os.getpid(), "writes": n}, f)
