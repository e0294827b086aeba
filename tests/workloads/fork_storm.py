"""Reliability workload: 1,000 short-lived children, forced pid reuse, exec, 10,000 open files.

    fork_storm.py WORKDIR TRUTH_JSON GATE

- 1,000 children (up to 50 alive at once), each writes its own byte count to its own file;
- 20 times: a child exits, is reaped, and `/proc/sys/kernel/ns_last_pid` is set so the next
  child gets the same pid (root only); both lives write different files and byte counts;
- 20 children exec `dd` reading a file of known size;
- the main process opens 10,000 files at once, writes 1 byte to each, then 1 more byte to each
  once all are open, then closes them all.
At the end it writes TRUTH_JSON, creates GATE.ready and waits (up to 60 s) for GATE to exist,
so a test can look at the kernel maps while nothing is running.
"""

import json
import os
import resource
import sys
import time

work, truth_path, gate = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(work)
truth = {"main": os.getpid(), "children": [], "reused": [], "execs": []}


def child_writes(path: str, nbytes: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, b"c" * nbytes)
    os.close(fd)


def spawn_writer(i: int, tag: str, extra: int = 0) -> dict:
    path = os.path.join(work, f"{tag}{i}")
    nbytes = 100 + (i * 37) % 900 + extra
    pid = os.fork()
    if pid == 0:
        try:
            child_writes(path, nbytes)
        finally:
            os._exit(0)
    return {"pid": pid, "path": path, "bytes": nbytes}


# 1,000 short-lived writers, 50 at a time
running = []
for i in range(1000):
    running.append(spawn_writer(i, "c"))
    if len(running) >= 50:
        for c in running:
            os.waitpid(c["pid"], 0)
        truth["children"] += running
        running = []
for c in running:
    os.waitpid(c["pid"], 0)
truth["children"] += running

# forced pid reuse
for i in range(20):
    a = spawn_writer(i, "a")
    os.waitpid(a["pid"], 0)
    try:
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(a["pid"] - 1))
    except OSError:
        break
    b = spawn_writer(i, "b", extra=1000 + i)  # the second life: another file, more bytes
    os.waitpid(b["pid"], 0)
    if b["pid"] == a["pid"]:
        truth["reused"].append([a, b])
    else:  # someone else took the pid first: both are ordinary children
        truth["children"] += [a, b]

# exec
src = os.path.join(work, "exec-src")
with open(src, "wb") as f:
    f.write(b"e" * 5000)
devnull = os.open(os.devnull, os.O_WRONLY)
for _ in range(20):
    pid = os.fork()
    if pid == 0:
        os.dup2(devnull, 1)
        os.execv("/bin/dd", ["dd", f"if={src}", "of=/dev/null", "bs=1000", "status=none"])
    os.waitpid(pid, 0)
    truth["execs"].append({"pid": pid, "path": src, "bytes": 5000})

# 10,000 files open at once
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
many_dir = os.path.join(work, "many")
os.makedirs(many_dir)
fds = [os.open(os.path.join(many_dir, f"m{i}"), os.O_WRONLY | os.O_CREAT, 0o600)
       for i in range(10000)]
for fd in fds:
    os.write(fd, b"1")
for fd in fds:
    os.write(fd, b"2")
for fd in fds:
    os.close(fd)
truth["many"] = len(fds)
truth["many_dir"] = many_dir + "/"

with open(truth_path, "w") as f:
    json.dump(truth, f)
time.sleep(1.5)  # let the collector drain the exits before the maps are looked at
open(gate + ".ready", "w").close()
end = time.monotonic() + 60
while not os.path.exists(gate) and time.monotonic() < end:
    time.sleep(0.1)
