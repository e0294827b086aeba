"""Pure tier: wire decoding, op mapping, fd/peer enrichment, launch gate (no kernel)."""

from __future__ import annotations

import ctypes as ct
import socket
import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from iolens.collector.enrich import Resolver, decode_sockaddr, read_proc_net
from iolens.collector.live import _trimmed_lists
from iolens.probes import wire


def _event(**kw) -> bytes:
    h = wire.EventHeader()
    path = kw.pop("path", b"")
    for k, v in kw.items():
        setattr(h, k, v)
    h.path_len = len(path) + 1 if path else 0
    return bytes(h) + path + (b"\0" if path else b"")


def test_event_header_layout_matches_events_h():
    # offsets as laid out by the C compiler for struct event (events.h)
    assert wire.EVENT_HDR_SIZE == 112
    assert wire.EventHeader.addr.offset == 68 and wire.EventHeader.comm.offset == 96
    assert wire.AGG_KEY.itemsize == 20 and wire.AGG_VAL.itemsize == 296


@given(st.binary(min_size=1, max_size=4095).filter(lambda b: b"\0" not in b))
def test_decode_event_path_binary_safe(path):
    ev = wire.decode_event(_event(type=1, sys=wire.SYS_ID["openat"], tgid=7, fd=3, gen=9,
                                  comm=b"python", path=path))
    assert (ev.type, ev.sys, ev.tgid, ev.fd, ev.gen, ev.comm, ev.path) == \
        ("open", "openat", 7, 3, 9, b"python", path)


@given(st.binary(max_size=200))
def test_decode_event_never_crashes_on_garbage(buf):
    try:
        wire.decode_event(buf)
    except ValueError:
        assert len(buf) < wire.EVENT_HDR_SIZE


def test_ops_on_sockets_are_send_recv_whatever_the_syscall():
    assert wire.op_for("read", "socket") == "recv" and wire.op_for("write", "socket") == "send"
    assert wire.op_for("read", "file") == "read" and wire.op_for("pwritev2", "file") == "write"
    assert wire.op_for("recvmsg", "socket") == "recv" and wire.op_for("fdatasync", "file") == "fsync"
    assert wire.op_for("lseek", "file") == "other" and wire.op_for("statx", "file") == "stat"


def test_trimmed_lists_drop_trailing_zero_buckets():
    h = np.zeros((3, 6), dtype=np.uint32)
    h[0, 2] = 4
    h[2, 5] = 1
    assert _trimmed_lists(h).to_pylist() == [[0, 0, 4], [], [0, 0, 0, 0, 0, 1]]


def test_decode_sockaddr_v4_v6_unix():
    v4 = struct.pack("<H", socket.AF_INET) + struct.pack(">H", 8080) + socket.inet_aton("127.0.0.1")
    assert decode_sockaddr(v4 + b"\0" * 8) == "tcp:127.0.0.1:8080"
    v6 = struct.pack("<H", socket.AF_INET6) + struct.pack(">H", 443) + b"\0" * 4 + \
        socket.inet_pton(socket.AF_INET6, "::1") + b"\0" * 4
    assert decode_sockaddr(v6) == "tcp:[::1]:443"
    un = struct.pack("<H", socket.AF_UNIX) + b"/run/x.sock\0"
    assert decode_sockaddr(un) == "unix:/run/x.sock"


def test_resolver_relative_open_reused_fd_and_close(tmp_path):
    r = Resolver(proc_root=str(tmp_path), boot_offset_ns=0)
    (tmp_path / "50").mkdir()
    (tmp_path / "50" / "cwd").symlink_to("/data/run")
    ev = lambda **kw: wire.decode_event(_event(tgid=50, tid=50, comm=b"py", **kw))  # noqa: E731
    r.on_event(ev(type=1, sys=wire.SYS_ID["openat"], fd=3, fd2=-100, gen=1, path=b"a/../b.bin"))
    r.on_event(ev(type=2, sys=wire.SYS_ID["close"], fd=3, gen=1))
    r.on_event(ev(type=1, sys=wire.SYS_ID["openat"], fd=3, fd2=-100, gen=2, path=b"/abs/c.bin"))
    assert r.resource(50, 3, 1) == ("file", "/data/run/b.bin")
    assert r.resource(50, 3, 2) == ("file", "/abs/c.bin")
    r.after_drain()
    r.after_drain()  # closed two drains ago: forgotten
    assert (50, 3, 1) not in r.by_gen and (50, 3, 2) in r.by_gen


def test_proc_net_parsing(tmp_path):
    net = tmp_path / "net"
    net.mkdir()
    hdr = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    row = "   0: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 4242 1\n"
    lst = "   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1\n"
    (net / "tcp").write_text(hdr + row + lst)
    m = read_proc_net(str(tmp_path))
    assert m[4242] == "tcp:127.0.0.1:50000" and m[77] == "tcp-listen:0.0.0.0:22"


def test_launch_gate_holds_command_until_followed(tmp_path):
    import threading

    from iolens.collector.launch import launch_after

    marker = tmp_path / "ran"

    class Slow:
        ready = threading.Event()
        error = None
        followed: list[int] = []

        def follow(self, pid, timeout=10.0):
            import time
            time.sleep(0.3)
            assert not marker.exists()  # the command has not started yet
            self.followed.append(pid)
            return True

    Slow.ready.set()
    c = Slow()
    child = launch_after(["sh", "-c", f"touch {marker}"], c)
    assert child.wait(10) == 0 and marker.exists() and c.followed == [child.pid]
    assert ct.sizeof(wire.EventHeader) == 112
