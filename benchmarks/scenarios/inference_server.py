"""A small inference server (TCP, one thread per connection) with 4 client threads.

Per request the server looks up the request's features in a feature file with unbuffered
256-byte reads (64 per request), then runs a tiny torch model. Injected bottleneck: the tiny
reads. Expected: small-io, culprit: the server process.
"""

from __future__ import annotations

import os
import socket
import socketserver
import struct
import threading

import torch
from common import data_dir, main, until, write_file

D = data_dir("inference_server")
FEATURES = D / "features.bin"
SIZE = 64 << 20
MODEL = torch.nn.Linear(64, 8)


class Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        fd = os.open(FEATURES, os.O_RDONLY)
        try:
            while True:
                req = self.request.recv(8)
                if len(req) < 8:
                    return
                (key,) = struct.unpack("!Q", req)
                os.lseek(fd, (key * 16384) % (SIZE - 16384), os.SEEK_SET)
                feats = [os.read(fd, 256) for _ in range(64)]  # the bottleneck: tiny reads
                x = torch.tensor([f[0] for f in feats], dtype=torch.float32)
                with torch.no_grad():
                    y = MODEL(x)
                self.request.sendall(struct.pack("!f", float(y.sum())))
        finally:
            os.close(fd)


def client(port: int, stop: threading.Event, n: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        k = n
        while not stop.is_set():
            s.sendall(struct.pack("!Q", k))
            s.recv(4)
            k += 7


def prepare() -> None:
    write_file(FEATURES, SIZE)


def run() -> None:
    torch.set_num_threads(1)
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    stop = threading.Event()
    clients = [threading.Thread(target=client, args=(srv.server_address[1], stop, i))
               for i in range(4)]
    for c in clients:
        c.start()
    for _ in until():
        stop.wait(0.2)
    stop.set()
    for c in clients:
        c.join()
    srv.shutdown()


if __name__ == "__main__":
    main(prepare, run)
