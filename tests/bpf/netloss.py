"""Test helper: two network namespaces joined by two veth pairs, one of them lossy.

Only documentation/benchmark ranges are used (198.18.0.0/15), and only inside the namespaces
created here; nothing is sent outside them.

    lossy:  A:vla 198.18.1.1/24  <->  B:vlb 198.18.1.2/24   (ingress of vlb drops PCT %)
    clean:  A:vca 198.18.2.1/24  <->  B:vcb 198.18.2.2/24

Loss is a BCC SCHED_CLS program (random TC_ACT_SHOT) pinned on a private bpffs and attached
with `tc filter ... bpf da object-pinned` (netem is not built into the CI kernel).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from contextlib import contextmanager

DROP_C = r"""
int drop(struct __sk_buff *skb)
{
    if (bpf_get_prandom_u32() % 100 < DROP_PCT)
        return 2;   /* TC_ACT_SHOT */
    return 0;       /* TC_ACT_OK */
}
"""


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


@contextmanager
def lossy_netns(pct: int):
    """Yield (ns_a, ns_b); tears everything down afterwards."""
    from iolens.probes._bcc import pin_sched_cls

    tag = f"iol{os.getpid() % 100000}"
    a, b = f"{tag}a", f"{tag}b"
    fs = tempfile.mkdtemp(prefix="iolens-bpffs-")   # outside /sys: `ip netns exec` remounts /sys
    pin = os.path.join(fs, "drop")
    mounted = False
    try:
        sh("mount", "-t", "bpf", "bpf", fs)
        mounted = True
        pin_sched_cls(DROP_C, "drop", pin, [f"-DDROP_PCT={int(pct)}"])
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        for la, lb, net in (("vla", "vlb", "198.18.1"), ("vca", "vcb", "198.18.2")):
            sh("ip", "link", "add", la, "netns", a, "type", "veth", "peer", "name", lb, "netns", b)
            sh("ip", "-n", a, "addr", "add", f"{net}.1/24", "dev", la)
            sh("ip", "-n", b, "addr", "add", f"{net}.2/24", "dev", lb)
            sh("ip", "-n", a, "link", "set", la, "up")
            sh("ip", "-n", b, "link", "set", lb, "up")
        sh("ip", "-n", a, "link", "set", "lo", "up")
        sh("ip", "-n", b, "link", "set", "lo", "up")
        # drop on B's ingress, not A's egress: a drop at the sender's own qdisc is reported
        # back to TCP as local congestion (the segment is resent, not retransmitted)
        sh("tc", "-n", b, "qdisc", "add", "dev", "vlb", "clsact")
        sh("tc", "-n", b, "filter", "add", "dev", "vlb", "ingress",
           "bpf", "da", "object-pinned", pin)
        yield a, b
    finally:
        sh("ip", "netns", "del", a, check=False)
        sh("ip", "netns", "del", b, check=False)
        if os.path.exists(pin):
            os.unlink(pin)
        if mounted:
            sh("umount", fs, check=False)
        os.rmdir(fs)
