"""Client for test_tcp (runs in namespace A): sends NBYTES to each server, waits for "ok".

argv: PORT NBYTES TRUTH_JSON. Peers: 198.18.1.2 (lossy path) and 198.18.2.2 (clean path).
"""
import json
import os
import socket
import sys

port, nbytes, truth = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
chunk = b"d" * 65536
out = {"pid": os.getpid(), "peers": {}}
for name, ip in (("lossy", "198.18.1.2"), ("clean", "198.18.2.2")):
    s = socket.create_connection((ip, port), timeout=30)
    sent = 0
    while sent < nbytes:
        s.sendall(chunk)
        sent += len(chunk)
    s.shutdown(socket.SHUT_WR)
    assert s.recv(16) == b"ok"
    out["peers"][name] = {"peer": f"tcp:{ip}:{port}", "local": "{}:{}".format(*s.getsockname()),
                          "sent": sent}
    s.close()
json.dump(out, open(truth, "w"))
