"""The bundled demo workload (`iolens record --demo`, `make demo`): an AI-like job in miniature.

Standard library only, about 8-12 s on 2 cores (at least 5 one-second intervals), all files
in a temporary directory:
- a "dataset" of 2,000 small files read by 2 forked "DataLoader workers" that send batches
  to the "trainer" over pipes (small-io, data starvation);
- a "weights" file loaded through mmap (page-fault I/O);
- a "checkpoint" written with fsync every epoch (sync stall);
- a loopback TCP "parameter server" exchange (network);
- a little compute between batches.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import socket
import tempfile
import threading
import time

N_FILES = 2000
FILE_SIZE = 3000
EPOCHS = 7


def make_dataset(root: str) -> list[str]:
    paths = []
    os.makedirs(f"{root}/dataset", exist_ok=True)
    blob = os.urandom(FILE_SIZE)
    for i in range(N_FILES):
        p = f"{root}/dataset/sample_{i:05d}.bin"
        with open(p, "wb") as f:
            f.write(blob)
        paths.append(p)
    return paths


def worker(paths: list[str], wfd: int) -> None:
    for p in paths:
        with open(p, "rb") as f:
            # cold, as a dataset larger than memory would be: every sample from the disk
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            data = f.read()
        os.write(wfd, hashlib.md5(data).digest())
    os.close(wfd)
    os._exit(0)


def server(sock: socket.socket) -> None:
    conn, _ = sock.accept()
    with conn:
        while True:
            msg = conn.recv(65536)
            if not msg:
                return
            conn.sendall(msg)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="iolens-demo-") as root:
        paths = make_dataset(root)
        weights = f"{root}/model.safetensors"
        with open(weights, "wb") as f:
            f.write(os.urandom(8 << 20))
        with open(weights, "rb") as f, mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as m:
            total = sum(m[i] for i in range(0, len(m), 4096))
        lsock = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=server, args=(lsock,), daemon=True).start()
        ps = socket.create_connection(lsock.getsockname())
        for epoch in range(EPOCHS):
            pipes = []
            for w in range(2):
                r, wfd = os.pipe()
                if os.fork() == 0:
                    os.close(r)
                    worker(paths[w::2], wfd)
                os.close(wfd)
                pipes.append(r)
            for r in pipes:
                while chunk := os.read(r, 4096):
                    total += sum(chunk[:4])  # "compute"
                os.close(r)
                os.wait()
            payload = os.urandom(256 << 10)
            ps.sendall(payload)
            got = 0
            while got < len(payload):
                got += len(ps.recv(65536))
            with open(f"{root}/checkpoint_epoch{epoch}.pt", "wb") as f:
                f.write(os.urandom(4 << 20))
                f.flush()
                os.fsync(f.fileno())
            time.sleep(0.2)
        ps.close()
        print(f"demo done: {N_FILES} samples x {EPOCHS} epochs, checksum {total % 997}")


if __name__ == "__main__":
    main()
