"""Real BPF, as root: the two inputs the causal rules need (issue 15), checked exactly.

A workload with a known shape runs under `iolens record`:
- its main thread waits in poll (one socket, 6 x 50 ms), epoll_wait (4 x 50 ms) and select
  (3 x 50 ms), and nothing answers: the io table must hold op "poll" rows per thread with those
  exact counts, the socket named for poll, and at least the slept time;
- a second thread spins on a CPU for 0.8 s: the cpu table must give that thread >= 0.7 s on a
  CPU and the waiting thread far less (the spinner stays alive past an interval's end:
  the CPU a thread used after the last read before its exit is not seen).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

pytestmark = pytest.mark.bpf
IOLENS = [sys.executable, "-m", "iolens.collector.cli"]

WORKLOAD = textwrap.dedent("""
    import json, select, socket, sys, threading, time
    a, b = socket.socketpair()
    done = threading.Event()
    def spin():
        t = time.thread_time()
        while time.thread_time() - t < 0.8:
            pass
        out["spinner"] = threading.get_native_id()
        done.wait()  # alive until read: /proc cannot tell an exited thread's last CPU
    out = {"main": threading.get_native_id()}
    th = threading.Thread(target=spin)
    th.start()
    p = select.poll()
    p.register(a, select.POLLIN)
    for _ in range(6):
        p.poll(50)
    ep = select.epoll()
    ep.register(a.fileno(), select.EPOLLIN)
    for _ in range(4):
        ep.poll(0.05)
    for _ in range(3):
        select.select([a], [], [], 0.05)
    time.sleep(1.5)  # > one interval: the spinner's time is read while it lives
    done.set()
    th.join()
    json.dump(out, open(sys.argv[1], "w"))
""")


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    base = tmp_path_factory.mktemp("waits")
    wl, truth, cap = base / "wl.py", base / "truth.json", base / "cap"
    wl.write_text(WORKLOAD)
    proc = subprocess.run([*IOLENS, "record", "-q", "-o", str(cap), "--", sys.executable,
                           str(wl), str(truth)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json
    return cap, json.loads(truth.read_text())


def test_poll_waits_per_thread_exact(capture):
    cap, truth = capture
    io = ds.dataset(str(cap / "io"), format="parquet").to_table()
    polls = io.filter(pc.equal(io.column("op"), "poll")).to_pylist()
    mine = [r for r in polls if r["tid"] == truth["main"]]
    by_sys: dict[str, list[dict]] = {}
    for r in mine:
        by_sys.setdefault(r["syscall"], []).append(r)
    count = {s: sum(r["count"] for r in rs) for s, rs in by_sys.items()}
    assert count.get("poll") == 6 and count.get("epoll_wait") == 4
    assert count.get("pselect6", 0) + count.get("select", 0) == 3
    waited = {s: sum(r["lat_sum_ns"] for r in rs) / 1e9 for s, rs in by_sys.items()}
    assert waited["poll"] >= 0.29 and waited["epoll_wait"] >= 0.19
    # poll watched one fd: the socket is named; waits are never I/O kinds of their own
    assert {r["kind"] for r in by_sys["poll"]} == {"socket"}
    assert all(r["resource"].startswith("unix:") for r in by_sys["poll"])


def test_cpu_time_per_thread(capture):
    cap, truth = capture
    cpu = ds.dataset(str(cap / "cpu"), format="parquet").to_table()
    per = {}
    for r in cpu.to_pylist():
        per[r["tid"]] = per.get(r["tid"], 0) + r["cpu_ns"] / 1e9
    assert per.get(truth["spinner"], 0) >= 0.7
    assert per.get(truth["main"], 0) < 0.5
