"""A workload with known I/O, for exactness tests: it counts its own calls and writes the truth.

usage: python exact_io.py WORKDIR TRUTH.json

Main process: reads file A (N bytes, prime) in k-byte chunks to EOF (the 0-byte read counts),
writes M bytes to file B in chunks then fsyncs, one readv and one preadv on file C, one read on
a bad fd (error), and exchanges K bytes each way with a forked TCP peer on loopback using
send/recv and plain write/read on the socket. Three forked workers each read their own file.
Then the main thread waits for readiness on a silent socket (6 poll, 4 epoll_wait, 3 select,
50 ms each) while a second thread spins on a CPU for 0.8 s (and stays alive past an
interval's end, so its CPU time is read). Every count is recorded here as the truth the
capture must match.
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
import threading
import time

N, K_CHUNK = 1_000_003, 4099
M, M_CHUNK = 524_287, 8191
NET_K, NET_CHUNK = 100_003, 997
WORKER_SIZES = (10_007, 20_011, 30_011)
WORKER_CHUNK = 1009


def write_file(path: str, size: int) -> None:
    with open(path, "wb") as f:
        f.write(os.urandom(size))


def read_all(path: str, chunk: int) -> tuple[int, int]:
    fd = os.open(path, os.O_RDONLY)
    calls = nbytes = 0
    while True:
        data = os.read(fd, chunk)
        calls += 1
        nbytes += len(data)
        if not data:
            break
    os.close(fd)
    return calls, nbytes


def send_all(sock: socket.socket, total: int, use_write: bool) -> int:
    """Send `total` bytes in NET_CHUNK pieces; return the number of calls."""
    sent = calls = 0
    payload = b"x" * NET_CHUNK
    while sent < total:
        piece = payload[: min(NET_CHUNK, total - sent)]
        n = os.write(sock.fileno(), piece) if use_write else sock.send(piece)
        calls += 1
        sent += n
    return calls


def recv_exact(sock: socket.socket, total: int, use_read: bool) -> int:
    got = calls = 0
    while got < total:
        want = min(65536, total - got)
        data = os.read(sock.fileno(), want) if use_read else sock.recv(want)
        calls += 1
        if not data:
            raise RuntimeError("peer closed early")
        got += len(data)
    return calls


def peer(lsock: socket.socket, wfd: int) -> None:
    conn, _ = lsock.accept()
    r1 = recv_exact(conn, NET_K, use_read=False)       # client's send()
    r2 = recv_exact(conn, NET_K, use_read=True)        # client's write()
    s1 = send_all(conn, NET_K, use_write=False)
    s2 = send_all(conn, NET_K, use_write=True)
    conn.close()
    os.write(wfd, json.dumps({"recv": r1 + r2, "send": s1 + s2}).encode())
    os._exit(0)


def main() -> None:
    work, truth_path = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    a, b, c = (os.path.join(work, n) for n in ("a.bin", "b.bin", "c.bin"))
    write_file(a, N)
    write_file(c, 4096)
    wfiles = [os.path.join(work, f"w{i}.bin") for i in range(3)]
    for p, size in zip(wfiles, WORKER_SIZES):
        write_file(p, size)
    truth: dict = {"main": os.getpid(), "files": {}, "workers": []}

    reads, nbytes = read_all(a, K_CHUNK)
    truth["files"][a] = {"read": [reads, nbytes]}

    fd = os.open(b, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    writes = written = 0
    while written < M:
        written += os.write(fd, b"y" * min(M_CHUNK, M - written))
        writes += 1
    os.fsync(fd)
    os.close(fd)
    truth["files"][b] = {"write": [writes, written], "fsync": [1, 0]}

    fd = os.open(c, os.O_RDONLY)
    n1 = os.readv(fd, [bytearray(509)])
    n2 = os.preadv(fd, [bytearray(1021), bytearray(1031)], 7)
    os.close(fd)
    truth["files"][c] = {"read": [2, n1 + n2]}

    try:
        os.read(999, 10)
    except OSError:
        pass
    truth["bad_fd_errors"] = 1

    lsock = socket.create_server(("127.0.0.1", 0))
    port = lsock.getsockname()[1]
    r, w = os.pipe()
    peer_pid = os.fork()
    if peer_pid == 0:
        os.close(r)
        peer(lsock, w)
    os.close(w)
    lsock.close()
    cli = socket.create_connection(("127.0.0.1", port))
    s1 = send_all(cli, NET_K, use_write=False)
    s2 = send_all(cli, NET_K, use_write=True)
    r1 = recv_exact(cli, NET_K, use_read=False)
    r2 = recv_exact(cli, NET_K, use_read=True)
    client_port = cli.getsockname()[1]
    cli.close()
    peer_truth = json.loads(os.read(r, 4096))
    os.close(r)
    os.waitpid(peer_pid, 0)
    truth["net"] = {
        "client": {"pid": os.getpid(), "peer": f"tcp:127.0.0.1:{port}",
                   "send": [s1 + s2, 2 * NET_K], "recv": [r1 + r2, 2 * NET_K]},
        "server": {"pid": peer_pid, "peer": f"tcp:127.0.0.1:{client_port}",
                   "send": [peer_truth["send"], 2 * NET_K],
                   "recv": [peer_truth["recv"], 2 * NET_K]},
    }

    for p in wfiles:
        pid = os.fork()
        if pid == 0:
            calls, got = read_all(p, WORKER_CHUNK)
            with open(os.path.join(work, f"{os.getpid()}.truth"), "w") as f:
                json.dump({"pid": os.getpid(), "file": p, "read": [calls, got]}, f)
            os._exit(0)
        os.waitpid(pid, 0)
        with open(os.path.join(work, f"{pid}.truth")) as f:
            truth["workers"].append(json.load(f))
    truth["waits"] = waits_and_spin()
    with open(truth_path, "w") as f:
        json.dump(truth, f)


def waits_and_spin() -> dict:
    """Waits in poll/epoll_wait/select on a socket nobody writes, beside a spinning thread."""
    a, _b = socket.socketpair()
    done, out = threading.Event(), {"main": threading.get_native_id()}

    def spin() -> None:
        t = time.thread_time()
        while time.thread_time() - t < 0.8:
            pass
        out["spinner"] = threading.get_native_id()
        done.wait()  # alive until read: /proc cannot tell an exited thread's last CPU

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
    out["counts"] = {"poll": 6, "epoll_wait": 4, "select": 3}
    return out


if __name__ == "__main__":
    main()
