"""Healthy control: the loopback client/server of loopback_server_bound, without a fault.

The server answers each request from memory (no file I/O); the client spends 20 ms of CPU on
each 256 KiB reply. Truth: the client's own share of time waiting for replies (small).
Expected: nothing high (in particular no network finding on 127.0.0.1).
"""

from __future__ import annotations

from common import main, write_truth
from loopback_server_bound import run_pair


def run() -> None:
    got = run_pair("healthy_loopback", fsync=False, compute_ms=20.0)
    write_truth("healthy_loopback", {
        "injected": "none: server answers from memory, client computes 20 ms per reply",
        "culprit": None, "others": [{"pid": got["server"]["pid"], "role": "server"},
                                    {"pid": got["client"]["pid"], "role": "client"}],
        "checks": {"client_wait_share": got["client"]["wait_share"]}, **got})


if __name__ == "__main__":
    main(lambda: None, run)
