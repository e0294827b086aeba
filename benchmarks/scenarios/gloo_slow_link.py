"""Two gloo ranks (torch.distributed) in network namespaces; one link is rate-limited.

Needs root and iproute2. Namespaces iolens-r0 / iolens-r1 are joined by a veth pair; a tbf
qdisc caps rank 1's egress at 40 Mbit/s while rank 0's side is unlimited. The ranks all-reduce
a 2 MiB tensor in a loop. Expected: network-bandwidth, culprit resource: the slow peer.
"""

from __future__ import annotations

import os
import subprocess
import sys

from common import DURATION, main

NS = ("iolens-r0", "iolens-r1")
# Benchmark-range addresses (RFC 2544), only inside the two namespaces this script creates.
ADDR = ("198.18.77.1", "198.18.77.2")
PORT = 29577


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def setup() -> None:
    teardown()
    for ns in NS:
        sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", "iol-v0", "netns", NS[0], "type", "veth", "peer", "name", "iol-v1",
       "netns", NS[1])
    for i, ns in enumerate(NS):
        sh("ip", "-n", ns, "addr", "add", f"{ADDR[i]}/24", "dev", f"iol-v{i}")
        sh("ip", "-n", ns, "link", "set", f"iol-v{i}", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    # the slow link: rank 1 sends at most 40 Mbit/s
    sh("ip", "netns", "exec", NS[1], "tc", "qdisc", "add", "dev", "iol-v1", "root", "tbf",
       "rate", "40mbit", "burst", "64kb", "latency", "100ms")


def teardown() -> None:
    for ns in NS:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def rank_main(rank: int) -> None:
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR=ADDR[0], MASTER_PORT=str(PORT), RANK=str(rank),
                      WORLD_SIZE="2", GLOO_SOCKET_IFNAME=f"iol-v{rank}")
    dist.init_process_group("gloo", rank=rank, world_size=2)
    t = torch.ones(512 * 1024)  # 2 MiB
    import time
    end = time.monotonic() + DURATION
    while time.monotonic() < end:
        dist.all_reduce(t)
        t.div_(2)
    dist.barrier()
    dist.destroy_process_group()


def run() -> None:
    setup()
    try:
        env = {**os.environ, "RANK": "0"}
        procs = []
        for r in range(2):
            env = {**os.environ, "RANK": str(r), "WORLD_SIZE": "2"}
            procs.append(subprocess.Popen(["ip", "netns", "exec", NS[r], sys.executable,
                                           __file__, "--rank", str(r)], env=env))
        codes = [p.wait(timeout=DURATION + 120) for p in procs]
        if any(codes):
            raise SystemExit(f"ranks failed: {codes}")
    finally:
        teardown()


if __name__ == "__main__":
    if "--rank" in sys.argv:
        rank_main(int(sys.argv[sys.argv.index("--rank") + 1]))
    else:
        main(lambda: None, run)
