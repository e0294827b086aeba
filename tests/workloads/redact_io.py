"""Reliability workload for --redact: a secret-named file and a loopback TCP exchange.

    redact_io.py WORKDIR TRUTH_JSON SECRET_ARGS...

Writes and reads WORKDIR/secretdir/secret_name.bin, sends 100 bytes to a listener on
127.0.0.1 and gets 50 back. TRUTH_JSON: {"pid", "path", "port"}.
"""

import json
import os
import socket
import sys

work, truth_path = sys.argv[1], sys.argv[2]
d = os.path.join(work, "secretdir")
os.makedirs(d)
path = os.path.join(d, "secret_name.bin")
with open(path, "wb") as f:
    f.write(b"s" * 1000)
with open(path, "rb") as f:
    f.read()
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
port = srv.getsockname()[1]
cli = socket.create_connection(("127.0.0.1", port))
conn, _ = srv.accept()
cli.sendall(b"q" * 100)
got = b""
while len(got) < 100:
    got += conn.recv(100)
conn.sendall(b"a" * 50)
got = b""
while len(got) < 50:
    got += cli.recv(50)
for s in (cli, conn, srv):
    s.close()
with open(truth_path, "w") as f:
    json.dump({"pid": os.getpid(), "path": path, "port": port}, f)
