"""Python mirror of probes/events.h: numpy dtypes and ctypes structs, syscall and op names.

In: raw bytes from the kernel (aggregation map batches, ring-buffer records).
Out: numpy structured arrays / decoded `RawEvent`s. Pure: no bcc import, testable anywhere.
tests/test_wire.py compiles events.h with BCC and checks sizes and offsets agree.
"""

from __future__ import annotations

import ctypes as ct
import struct
from typing import NamedTuple

import numpy as np

LAT_BUCKETS = 36
SIZE_BUCKETS = 24
PATH_MAX = 4096
ADDR_MAX = 28

# Syscall ids in the order of `enum sys_id` (starting at 1).
SYSCALLS = (
    "read", "write", "pread64", "pwrite64", "readv", "writev",
    "preadv", "pwritev", "preadv2", "pwritev2",
    "open", "openat", "openat2", "creat", "close",
    "fsync", "fdatasync", "sync_file_range",
    "newstat", "newlstat", "newfstatat", "statx", "newfstat",
    "mmap", "sendfile64", "copy_file_range", "splice", "io_uring_enter",
    "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
    "connect", "accept", "accept4", "socket", "socketpair",
    "dup", "dup2", "dup3", "fcntl", "pipe", "pipe2", "lseek", "chdir", "fchdir",
    "poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait", "epoll_pwait2",
)
#: waits for readiness: op "poll", always counted per thread, never slow events
POLL_SYSCALLS = ("poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait",
                 "epoll_pwait2")
SYS_ID = {name: i + 1 for i, name in enumerate(SYSCALLS)}
SYS_NAME = {i + 1: name for i, name in enumerate(SYSCALLS)}

_READS = {"read", "pread64", "readv", "preadv", "preadv2"}
_WRITES = {"write", "pwrite64", "writev", "pwritev", "pwritev2", "sendfile64",
           "copy_file_range", "splice"}
_STATIC_OP = {
    "open": "open", "openat": "open", "openat2": "open", "creat": "open", "close": "close",
    "fsync": "fsync", "fdatasync": "fsync", "sync_file_range": "fsync",
    "newstat": "stat", "newlstat": "stat", "newfstatat": "stat", "statx": "stat",
    "newfstat": "stat", "mmap": "mmap",
    "sendto": "send", "sendmsg": "send", "sendmmsg": "send",
    "recvfrom": "recv", "recvmsg": "recv", "recvmmsg": "recv",
    "connect": "connect", "accept": "accept", "accept4": "accept",
    **{name: "poll" for name in POLL_SYSCALLS},
}


def op_for(syscall: str, kind: str) -> str:
    """The contract's `op` for a syscall on an fd of `kind`.

    On sockets every data-moving call is send or recv, whichever syscall made it.
    """
    if syscall in _READS:
        return "recv" if kind == "socket" else "read"
    if syscall in _WRITES:
        return "send" if kind == "socket" else "write"
    return _STATIC_OP.get(syscall, "other")


# enum ev_type
EV_TYPES = {1: "open", 2: "close", 3: "socket", 4: "connect", 5: "accept", 6: "dup",
            7: "pipe", 8: "fork", 9: "exec", 10: "exit", 11: "slow", 12: "mmap", 13: "chdir"}
COUNTERS = ("lost_events", "agg_overflow", "fd_overflow", "target_overflow", "folded_dir",
            "folded_proc", "newfile_lost")

#: ids made unique at creation (sockets, pipes, long paths) have this bit; path hashes never
ID_UNIQUE = 1 << 63
NEWPATH_MAX = 256

AGG_KEY = np.dtype([("id", "<u8"), ("tgid", "<u4"), ("tid", "<u4"), ("fd", "<i4"),
                    ("sys", "<u2"), ("grain", "u1"), ("pad", "u1")])
NEWFILE = np.dtype([("ts", "<u8"), ("seed", "<u8"), ("dir", "<u8"), ("tgid", "<u4"),
                    ("dirfd", "<i4"), ("len", "<u2"), ("base", "<u2"), ("pad", "<u4"),
                    ("path", f"S{NEWPATH_MAX}")])
AGG_VAL = np.dtype([("count", "<u8"), ("bytes", "<u8"), ("errors", "<u8"),
                    ("lat_sum", "<u8"), ("lat_max", "<u8"), ("random_ops", "<u8"),
                    ("next_off", "<u8"),
                    ("lat_hist", "<u4", (LAT_BUCKETS,)), ("size_hist", "<u4", (SIZE_BUCKETS,))])


class EventHeader(ct.Structure):
    """`struct event` without its variable-length path."""

    _fields_ = [
        ("ts", ct.c_uint64), ("lat", ct.c_uint64), ("ret", ct.c_int64),
        ("arg", ct.c_uint64), ("arg2", ct.c_uint64), ("id", ct.c_uint64),
        ("tgid", ct.c_uint32), ("tid", ct.c_uint32),
        ("fd", ct.c_int32), ("fd2", ct.c_int32),
        ("type", ct.c_uint16), ("sys", ct.c_uint16), ("path_len", ct.c_uint16),
        ("addr_len", ct.c_uint16), ("addr", ct.c_uint8 * ADDR_MAX), ("comm", ct.c_char * 16),
        ("pad", ct.c_uint32),
    ]


EVENT_HDR_SIZE = ct.sizeof(EventHeader)  # 120; the path follows
# The same layout for struct.unpack (several times faster than ctypes per event).
_HDR = struct.Struct("<QQqQQQIIiiHHHH28s16s4x")
assert _HDR.size == EVENT_HDR_SIZE


class RawEvent(NamedTuple):
    """A decoded ring-buffer record (kernel values, not yet enriched)."""

    ts: int
    type: str
    sys: str
    tgid: int
    tid: int
    fd: int
    fd2: int
    id: int
    ret: int
    lat: int
    arg: int
    arg2: int
    comm: bytes
    addr: bytes
    path: bytes


def decode_event(buf: bytes) -> RawEvent:
    """Decode one ring-buffer record (header + path_len bytes of path)."""
    if len(buf) < EVENT_HDR_SIZE:
        raise ValueError(f"short event record: {len(buf)} bytes")
    (ts, lat, ret, arg, arg2, id_, tgid, tid, fd, fd2, typ, sys, path_len, addr_len, addr,
     comm) = _HDR.unpack_from(buf)
    plen = min(path_len, len(buf) - EVENT_HDR_SIZE, PATH_MAX)
    path = bytes(buf[EVENT_HDR_SIZE:EVENT_HDR_SIZE + plen])
    nul = path.find(b"\0")
    if nul >= 0:
        path = path[:nul]
    nul = comm.find(b"\0")
    return RawEvent(ts=ts, type=EV_TYPES.get(typ, str(typ)), sys=SYS_NAME.get(sys, ""),
                    tgid=tgid, tid=tid, fd=fd, fd2=fd2, id=id_, ret=ret, lat=lat, arg=arg,
                    arg2=arg2, comm=comm[:nul] if nul >= 0 else comm,
                    addr=addr[: min(addr_len, ADDR_MAX)], path=path)
