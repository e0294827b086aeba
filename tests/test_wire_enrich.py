"""Pure tier: wire decoding, op mapping, fd/peer enrichment, launch gate (no kernel)."""

from __future__ import annotations

import ctypes as ct
import socket
import struct

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from iolens.collector.enrich import Resolver, decode_sockaddr, read_proc_net
from iolens.collector.iotable import _trimmed_lists
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
    assert wire.EVENT_HDR_SIZE == 120
    assert wire.EventHeader.addr.offset == 72 and wire.EventHeader.comm.offset == 100
    assert wire.AGG_KEY.itemsize == 24 and wire.AGG_VAL.itemsize == 296
    assert wire.NEWFILE.itemsize == 40 + wire.NEWPATH_MAX


@given(st.binary(min_size=1, max_size=4095).filter(lambda b: b"\0" not in b))
def test_decode_event_path_binary_safe(path):
    ev = wire.decode_event(_event(type=1, sys=wire.SYS_ID["openat"], tgid=7, fd=3, id=9,
                                  comm=b"python", path=path))
    assert (ev.type, ev.sys, ev.tgid, ev.fd, ev.id, ev.comm, ev.path) == \
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


U = wire.ID_UNIQUE


def test_resolver_long_path_opens_reused_fd_and_close(tmp_path):
    """Opens that come as events (paths too long to hash): unique ids, cwd joins, retire."""
    r = Resolver(proc_root=str(tmp_path), boot_offset_ns=0)
    (tmp_path / "50").mkdir()
    (tmp_path / "50" / "cwd").symlink_to("/data/run")
    ev = lambda **kw: wire.decode_event(_event(tgid=50, tid=50, comm=b"py", **kw))  # noqa: E731
    r.on_event(ev(type=1, sys=wire.SYS_ID["openat"], fd=3, fd2=-100, id=U | 1, path=b"a/../b.bin"))
    r.on_event(ev(type=1, sys=wire.SYS_ID["openat"], fd=3, fd2=-100, id=U | 2, path=b"/abs/c.bin"))
    assert r.resource(50, -1, U | 1) == ("file", "/data/run/b.bin")
    assert r.resource(50, -1, U | 2) == ("file", "/abs/c.bin")
    r.after_drain()
    r.after_drain()  # replaced two drains ago: forgotten
    assert U | 1 not in r.uids and U | 2 in r.uids


def _newfiles(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    recs = np.zeros(len(rows), dtype=wire.NEWFILE)
    for i, r in enumerate(rows):
        path = r["path"] + b"\0stale-bytes"  # the kernel buffer holds older bytes past the NUL
        recs[i]["path"] = path
        recs[i]["len"] = len(r["path"])
        for k in ("ts", "seed", "dir", "tgid", "dirfd", "base"):
            recs[i][k] = r.get(k, 0)
    return recs, np.array([r["id"] for r in rows], dtype=np.uint64)


def test_learn_files_paths_dirs_and_bases(tmp_path):
    """New files arrive in batches: absolute, relative to cwd, relative to a dirfd learnt
    earlier in the same batch (time order, not batch order)."""
    r = Resolver(proc_root=str(tmp_path), boot_offset_ns=0)
    (tmp_path / "60").mkdir()
    (tmp_path / "60" / "cwd").symlink_to("/work")
    recs, ids = _newfiles([
        {"id": 12, "ts": 3, "path": b"img1.bin", "base": 2, "seed": 11, "dir": 11, "tgid": 60,
         "dirfd": 4},
        {"id": 10, "ts": 1, "path": b"/data/train/a.bin", "dir": 100, "tgid": 60},
        {"id": 11, "ts": 2, "path": b"/data/train/c7", "dir": 100, "tgid": 60},
        {"id": 13, "ts": 4, "path": b"sub/x.bin", "base": 1, "seed": 99, "dir": 101,
         "tgid": 60, "dirfd": -100},
    ])
    assert r.learn_files(recs, ids) == 4
    assert r.resource(60, -1, 10) == ("file", "/data/train/a.bin")
    assert r.resource(60, -1, 12) == ("file", "/data/train/c7/img1.bin")
    assert r.resource(60, -1, 13) == ("file", "/work/sub/x.bin")
    assert r.dirs[100] == "/data/train" and r.dirs[11] == "/data/train/c7"
    assert r.dirs[101] == "/work/sub"
    assert r.learn_files(*_newfiles([{"id": 10, "path": b"/data/train/a.bin", "dir": 100,
                                      "tgid": 61}])) == 0  # already known


def test_chdir_event_gives_cwd_of_later_relative_files(tmp_path):
    r = Resolver(proc_root=str(tmp_path), boot_offset_ns=0)
    (tmp_path / "70").mkdir()
    (tmp_path / "70" / "cwd").symlink_to("/home/u")
    ev = lambda **kw: wire.decode_event(_event(tgid=70, tid=70, comm=b"py", **kw))  # noqa: E731
    r.on_event(ev(type=13, sys=wire.SYS_ID["chdir"], fd=-100, id=U | 5, arg=0, path=b"data"))
    recs, ids = _newfiles([{"id": 20, "path": b"f.bin", "base": 1, "seed": U | 5,
                            "dir": U | 5, "tgid": 70, "dirfd": -100}])
    r.learn_files(recs, ids)
    assert r.resource(70, -1, 20) == ("file", "/home/u/data/f.bin")


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
    assert ct.sizeof(wire.EventHeader) == 120
