"""A loopback TCP client/server where the server is the bottleneck: it fsyncs a journal
record per request before replying.

Two processes (a launcher starts both): the server, per request, writes a 64 KiB record into
a journal file and fsyncs it, then replies with 256 KiB. The journal's disk is fast here, so
the server runs in a blkio cgroup with `blkio.throttle.write_bps_device` = 16 MB/s (a slow
journal device: each fsync takes a few ms, and the run does not flood the shared disk).
The client sends a 64 B request and waits in recv for the whole reply, nothing else.
Truth (measured by the processes): the client's time waiting for replies, the server's time
in write+fsync per request, and the server's /proc/self/io write_bytes.
Expected: the server's own I/O finding (sync-stall, or slow-device/small-io) naming the
server process, and no high network finding on 127.0.0.1.

healthy_loopback.py runs the same pair with the server answering from memory and the client
computing on each reply (no bottleneck).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from blkio_throttle import disk_of
from common import DURATION, cpu_spin, data_dir, main, write_file, write_truth

NAME = "loopback_server_bound"
D = data_dir(NAME)
JOURNAL = D / "journal.bin"
RECORD, REPLY, SLOTS = 64 << 10, 256 << 10, 64
WRITE_BPS = 16 * 1000 * 1000
CG = Path("/sys/fs/cgroup/blkio/iolens-lb-server")


def prepare() -> None:
    write_file(JOURNAL, RECORD * SLOTS)


def _io_write_bytes() -> int:
    for ln in open("/proc/self/io"):
        if ln.startswith("write_bytes:"):
            return int(ln.split()[1])
    return 0


def server(port_file: str, out: str, fsync: bool) -> None:
    """Serve one client until it closes; per request: journal write + fsync (or nothing)."""
    if fsync:  # the slow journal device
        (CG / "cgroup.procs").write_text(str(os.getpid()))
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    Path(port_file).write_text(str(lst.getsockname()[1]))
    conn, _ = lst.accept()
    reply, record = os.urandom(REPLY), os.urandom(RECORD)
    fd = os.open(JOURNAL, os.O_WRONLY) if fsync else -1
    n, io_s, busy_s, wb0 = 0, 0.0, 0.0, _io_write_bytes()
    while True:
        req = conn.recv(64)
        if not req:
            break
        t0 = time.monotonic()
        if fsync:
            os.pwrite(fd, record, (n % SLOTS) * RECORD)
            os.fsync(fd)
        t1 = time.monotonic()
        conn.sendall(reply)
        busy_s += time.monotonic() - t0
        io_s += t1 - t0
        n += 1
    if fd >= 0:
        os.close(fd)
    Path(out).write_text(json.dumps({
        "pid": os.getpid(), "requests": n, "write_fsync_s": round(io_s, 3),
        "busy_s": round(busy_s, 3), "proc_io_write_bytes": _io_write_bytes() - wb0}))


def client(port: int, out: str, compute_ms: float) -> None:
    """Request, wait for the whole reply, (optionally) compute on it; until DURATION."""
    s = socket.create_connection(("127.0.0.1", port))
    n, wait_s, t_start = 0, 0.0, time.monotonic()
    end = t_start + DURATION
    while time.monotonic() < end:
        t0 = time.monotonic()
        s.sendall(struct.pack("!Q", n).ljust(64, b"\0"))
        got = 0
        while got < REPLY:
            chunk = s.recv(REPLY - got)
            if not chunk:
                raise SystemExit("server closed")
            got += len(chunk)
        wait_s += time.monotonic() - t0
        cpu_spin(compute_ms / 1e3)
        n += 1
    wall = time.monotonic() - t_start
    s.close()
    Path(out).write_text(json.dumps({
        "pid": os.getpid(), "requests": n, "wall_s": round(wall, 3),
        "wait_for_reply_s": round(wait_s, 3), "wait_share": round(wait_s / wall, 3)}))


def run_pair(name: str, fsync: bool, compute_ms: float) -> dict:
    """Start server and client as two processes; return what each measured."""
    tmp = Path(tempfile.mkdtemp(prefix="iolens-lb-"))
    if fsync:
        CG.mkdir(exist_ok=True)
        (CG / "blkio.throttle.write_bps_device").write_text(f"{disk_of(JOURNAL)} {WRITE_BPS}\n")
    port_file, so, co = tmp / "port", tmp / "server.json", tmp / "client.json"
    srv = subprocess.Popen([sys.executable, __file__, "--server", str(port_file), str(so),
                            "1" if fsync else "0"])
    cli = None
    try:
        for _ in range(300):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.02)
        cli = subprocess.Popen([sys.executable, __file__, "--client", port_file.read_text(),
                                str(co), str(compute_ms)])
        if cli.wait(timeout=DURATION + 60) or srv.wait(timeout=30):
            raise SystemExit(f"{name}: client or server failed")
        return {"server": json.loads(so.read_text()), "client": json.loads(co.read_text())}
    finally:
        for p in (cli, srv):
            if p is not None and p.poll() is None:
                p.kill()
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
        if fsync:
            try:
                CG.rmdir()
            except OSError:
                pass


def run() -> None:
    got = run_pair(NAME, fsync=True, compute_ms=0.0)
    s, c = got["server"], got["client"]
    write_truth(NAME, {
        "injected": f"server: pwrite {RECORD >> 10} KiB + fsync per request before replying, "
                    f"journal disk write-throttled to {WRITE_BPS} B/s (blkio cgroup)",
        "culprit": {"pid": s["pid"], "role": "server"},
        "others": [{"pid": c["pid"], "role": "client"}],
        "checks": {"client_waits_most_of_its_time": c["wait_share"] > 0.5,
                   "server_io_share_of_client_wait": round(
                       s["write_fsync_s"] / max(c["wait_for_reply_s"], 1e-9), 3)},
        **got})


if __name__ == "__main__":
    if "--server" in sys.argv:
        a = sys.argv[sys.argv.index("--server") + 1:]
        server(a[0], a[1], a[2] == "1")
    elif "--client" in sys.argv:
        a = sys.argv[sys.argv.index("--client") + 1:]
        client(int(a[0]), a[1], float(a[2]))
    else:
        main(prepare, run)
