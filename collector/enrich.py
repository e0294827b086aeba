"""Enrichment: kernel ids -> what a person reads (paths, peers, process names and roles).

In: decoded ring-buffer events (`wire.RawEvent`), batches of new files' paths
(`wire.NEWFILE` records) and drained aggregation keys.
Out: per id (see probes/events.h `agg_key`) a (kind, resource); per directory id its path; per
pid a `ProcInfo` (comm, cmdline, cgroup...).

A path-opened file's id is a hash of its path computed in the kernel; its path string arrives
once, the first time the id is seen (joined with the process cwd or the dirfd's path when
relative). Sockets, pipes and paths too long to hash get a unique id and an event each. fds
opened before the capture started (id 0) are resolved from /proc/PID/fd, then from the
parent's table (inherited fds of a child that already exited). Sockets get their peer from
connect/accept addresses, else from /proc/net by socket inode. No kernel struct is read.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iolens.collector.schema import escape_bytes
from iolens.probes.wire import ID_UNIQUE, RawEvent

AT_FDCWD = -100
SHORT_CONN_NS = 5 * 10**9  # an accepted connection closed within this is "short" (servers)
Res = tuple[str, str | None]  # (kind, resource)


@dataclass
class ProcInfo:
    pid: int
    ppid: int | None = None
    comm: str | None = None
    cmdline: str | None = None
    exe: str | None = None
    start_ns: int | None = None
    exit_ns: int | None = None
    cgroup: str | None = None
    cgroup_id: int | None = None
    container_id: str | None = None
    ns_pid: int | None = None
    role: str | None = None
    rank: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    dirty: bool = True
    # --- evidence for classify.assign_roles (not stored as columns) ---
    fork_copy: bool | None = None    # True: forked during the capture and has not exec'd
    accepts: int = 0                 # connections accepted
    short_conns: int = 0             # accepted connections closed within SHORT_CONN_NS
    peers: set[str] = field(default_factory=set)   # connect() destinations (first 32)
    listens: set[str] = field(default_factory=set)  # tcp-listen:IP:PORT it accepted on
    file_ops: dict[str, int] = field(default_factory=dict)  # file class -> data ops
    torch: bool | None = None        # libtorch mapped (looked up lazily by classify)
    roles_stale: bool = False        # evidence changed: look at the role again


def _norm(path: bytes) -> bytes:
    """normpath only when needed (it is the slowest step of an open event)."""
    if b"/." in path or b"//" in path or path.endswith(b"/"):
        return os.path.normpath(path)
    return path


def _plain_absolute(recs: np.ndarray) -> tuple[np.ndarray, list[str]] | None:
    """The records whose path is absolute, valid UTF-8 and already normal (no '/.', '//',
    trailing '/' or backslash), and those paths as str, decoded in C: (mask, paths). None
    when there are none, or when the batch's text is not all UTF-8 (the slow path copes).
    """
    # the kernel clears its buffer before each path, so numpy's 'S' strings (trailing NULs
    # dropped) are exactly the paths; pyarrow converts them in C
    arr = pa.array(recs["path"], type=pa.binary())
    try:
        text = arr.cast(pa.string())
    except pa.ArrowInvalid:
        return None
    bad = pc.or_(pc.or_(pc.match_substring(text, "/."), pc.match_substring(text, "//")),
                 pc.or_(pc.ends_with(text, "/"), pc.match_substring(text, "\\")))
    # stale bytes after a NUL (a buffer not cleared): left to the slow path, which cuts at len
    bad = pc.or_(bad, pc.match_substring(text, "\x00"))
    ok = pc.and_(pc.and_(pc.starts_with(text, "/"), pc.invert(bad)),
                 pc.equal(pa.array(recs["base"]), 0))
    mask = ok.to_numpy(zero_copy_only=False)
    if not mask.any():
        return None
    return mask, text.filter(ok).to_pylist()


def decode_sockaddr(raw: bytes, proto: str = "tcp") -> str | None:
    """sockaddr bytes -> 'tcp:IP:PORT' / 'tcp:[v6]:PORT' / 'unix:PATH'; None if unknown."""
    if len(raw) < 2:
        return None
    family = struct.unpack_from("<H", raw)[0]
    if family == socket.AF_INET and len(raw) >= 8:
        port = struct.unpack_from(">H", raw, 2)[0]
        return f"{proto}:{socket.inet_ntop(socket.AF_INET, raw[4:8])}:{port}"
    if family == socket.AF_INET6 and len(raw) >= 24:
        port = struct.unpack_from(">H", raw, 2)[0]
        ip = ipaddress.IPv6Address(raw[8:24])
        host = str(ip.ipv4_mapped) if ip.ipv4_mapped else str(ip)
        return f"{proto}:{host}:{port}" if ip.ipv4_mapped else f"{proto}:[{host}]:{port}"
    if family == socket.AF_UNIX:
        path = raw[2:].split(b"\0", 1)[0]
        return "unix:" + (escape_bytes(path) if path else "@anonymous")
    return None


def _hex_addr(text: str) -> tuple[str, int]:
    """/proc/net/tcp 'HEXIP:HEXPORT' -> (ip, port)."""
    ip_hex, port_hex = text.split(":")
    raw = bytes.fromhex(ip_hex)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:
        words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
        v6 = ipaddress.IPv6Address(words)
        ip = str(v6.ipv4_mapped) if v6.ipv4_mapped else f"[{v6}]"
    return ip, int(port_hex, 16)


def read_proc_net(root: str = "/proc") -> dict[int, str]:
    """Socket inode -> resource string from /proc/net/{tcp,tcp6,udp,udp6,unix}."""
    out: dict[int, str] = {}
    for proto, fname in (("tcp", "tcp"), ("tcp", "tcp6"), ("udp", "udp"), ("udp", "udp6")):
        try:
            lines = open(f"{root}/net/{fname}").read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 10:
                continue
            try:
                lip, lport = _hex_addr(parts[1])
                rip, rport = _hex_addr(parts[2])
            except ValueError:
                continue
            inode = int(parts[9])
            if parts[3] == "0A" or rport == 0:  # LISTEN or unconnected
                out[inode] = f"{proto}-listen:{lip}:{lport}"
            else:
                out[inode] = f"{proto}:{rip}:{rport}"
    try:
        for line in open(f"{root}/net/unix").read().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 7:
                path = parts[7] if len(parts) > 7 else ""
                out[int(parts[6])] = "unix:" + (path or "@anonymous")
    except OSError:
        pass
    return out


def classify_link(target: str) -> Res:
    """A /proc/PID/fd link target -> (kind, resource) without socket lookup."""
    if target.startswith("/dev/"):
        return "device", target
    if target.startswith("/"):
        return "file", target
    if target.startswith("pipe:"):
        return "pipe", target
    if target.startswith("socket:"):
        return "socket", None
    return "other", target


class Resolver:
    """Keeps the id tables, fd tables and process cache of the traced processes."""

    def __init__(self, proc_root: str = "/proc", boot_offset_ns: int | None = None) -> None:
        self.proc = proc_root
        self.files: dict[int, str] = {}              # path-hash id -> absolute path (per capture)
        self.dirs: dict[int, str] = {}               # directory id -> directory path
        self.uids: dict[int, Res] = {}               # unique id -> socket / pipe / long path
        self.owner: dict[int, tuple[int, int]] = {}  # unique id -> (tgid, fd) that made it
        self.cur: dict[tuple[int, int], int] = {}     # (tgid, fd) -> unique id (evented fds)
        self.fd0: dict[tuple[int, int], Res] = {}     # id-0 fds resolved from /proc
        self.cwds: dict[int, str] = {}               # cwd id (after a traced chdir) -> path
        self.procs: dict[int, ProcInfo] = {}
        self._retire: list[int] = []
        self._retiring: list[int] = []
        self._net: dict[int, str] | None = None
        self._cwd: dict[int, str] = {}
        self._accepted: dict[int, int] = {}  # accepted connection's id -> accept ts
        self._forked: dict[int, int] = {}  # child pid -> parent, fork seen after it had gone
        self.boot_offset_ns = boot_offset_ns if boot_offset_ns is not None else clock_offset_ns()

    # --- events ------------------------------------------------------------------------
    def wall_ns(self, mono_ns: int) -> int:
        return mono_ns + self.boot_offset_ns

    def on_event(self, ev: RawEvent) -> tuple[str, str | None]:
        """Update tables from one event; return its (kind, resource) for the events table."""
        t = ev.type
        info = self.proc_info(ev.tgid)
        if ev.comm and t not in ("fork",) and ev.tid == ev.tgid:
            comm = escape_bytes(ev.comm)  # the process name is its main thread's name
            if comm != info.comm:         # prctl(PR_SET_NAME), e.g. torch's pt_data_worker
                info.comm = comm
                info.dirty = True
        if t == "open":
            if ev.ret < 0:
                return "file", self._join(ev.tgid, ev.fd2, ev.path)
            # a path too long to hash (unique id), or a new file the batch channel had no
            # room for (path hash id; arg = its base's id, arg2 = its directory's id)
            path = self._join(ev.tgid, ev.fd2, ev.path, seed=ev.arg)
            res = ("device" if path.startswith("/dev/") else "file"), path
            if ev.id & ID_UNIQUE:
                self._set(ev.tgid, ev.fd, ev.id, res)
            elif ev.id:
                self._learn(ev.id, ev.arg2, path, ev.path)
            return res
        if t == "close":
            res = self.resource(ev.tgid, ev.fd, ev.id)
            self.note_close(ev.tgid, ev.fd, ev.id, ev.ts)
            self.cur.pop((ev.tgid, ev.fd), None)
            self.fd0.pop((ev.tgid, ev.fd), None)
            if ev.id & ID_UNIQUE:
                self._retire.append(ev.id)
            return res
        if t == "socket":
            family, stype = ev.arg2 >> 16, ev.arg2 & 0xF
            if ev.sys == "socketpair":
                res = ("socket", "unix:socketpair")
                self._set(ev.tgid, ev.fd, ev.id, res)
                self._set(ev.tgid, ev.fd2, ev.arg, res)
                return res
            proto = "udp" if stype == socket.SOCK_DGRAM else "tcp"
            if family == socket.AF_UNIX:
                proto = "unix"
            res = ("socket", f"{proto}:?")
            self._set(ev.tgid, ev.fd, ev.id, res)
            return res
        if t in ("connect", "accept"):
            # the socket's own entry (connect), or the listening socket's (accept: arg2)
            old = self.uids.get(ev.id if t == "connect" else ev.arg2)
            proto = "udp" if old and old[1] and old[1].startswith("udp") else "tcp"
            peer = decode_sockaddr(ev.addr, proto) or self._proc_socket(ev.tgid, ev.fd)
            res = ("socket", peer)
            if t == "connect" and ev.ret not in (0, -115):  # -EINPROGRESS: still connecting
                return res
            self._set(ev.tgid, ev.fd, ev.id, res)
            if t == "accept":
                info.accepts += 1
                info.roles_stale = True
                if len(self._accepted) > 100_000:
                    self._accepted.clear()
                self._accepted[ev.id] = ev.ts
                if info.accepts <= 16:  # which port it serves (a rendezvous store, a server)
                    lres = self._link_res(ev.tgid, ev.fd2)[1]
                    if lres and lres.startswith("tcp-listen:"):
                        info.listens.add(lres)
            elif peer and len(info.peers) < 32 and peer not in info.peers:
                info.peers.add(peer)
                info.roles_stale = True
            return res
        if t == "dup":
            src = self.resource(ev.tgid, ev.fd2, ev.id)
            self.fd0.pop((ev.tgid, ev.fd), None)
            if ev.id & ID_UNIQUE:
                self.cur[(ev.tgid, ev.fd)] = ev.id   # the new fd names the same thing
            else:
                self.cur.pop((ev.tgid, ev.fd), None)
                if not ev.id:
                    self.fd0[(ev.tgid, ev.fd)] = src
            return src
        if t == "pipe":
            res = ("pipe", self._link_res(ev.tgid, ev.fd)[1] or "pipe")
            self._set(ev.tgid, ev.fd, ev.id, res)
            self._set(ev.tgid, ev.fd2, ev.arg, res)
            return res
        if t == "chdir":
            if ev.sys == "fchdir":
                path = self.resource(ev.tgid, ev.fd, ev.arg2)[1]
            else:
                path = self._join(ev.tgid, AT_FDCWD, ev.path, seed=ev.arg)
            path = path or self._cwd_of(ev.tgid)
            if path:
                self.cwds[ev.id] = path
                self._cwd[ev.tgid] = path
            return "file", path
        if t == "fork":
            cpid = int(ev.arg)
            if cpid not in self.procs:
                if self._is_thread_of(ev.tgid, cpid):
                    return "other", None  # a new thread of the same process, not a process
                if not os.path.exists(f"{self.proc}/{cpid}"):
                    # Gone and reaped already: a thread that ended (threads reap themselves)
                    # or a very short process. Only its own events, if any, make it a process.
                    if len(self._forked) > 10_000:
                        self._forked.clear()
                    self._forked[cpid] = ev.tgid
                    return "other", None
            child = self.proc_info(cpid)
            self._adopt(child, ev.tgid)
            return "other", None
        if t == "exec":
            info.fork_copy, info.torch, info.cmdline = False, None, None
            info.exe = escape_bytes(ev.path)
            self._refresh(info)
            return "other", info.exe
        if t == "exit":
            info.exit_ns = self.wall_ns(ev.ts)
            info.dirty = True
            return "other", None
        if t in ("slow", "mmap"):
            return self.resource(ev.tgid, ev.fd, ev.id)
        return "other", None

    # --- new files (batch) ---------------------------------------------------------------
    def learn_files(self, recs: np.ndarray, ids: np.ndarray) -> int:
        """Take a batch of `wire.NEWFILE` records (ids: their keys): each id's path and its
        directory's. Returns how many were new. Absolute paths that are plain UTF-8 and need
        no normalising (nearly all) are decoded in one vectorised pass; the others one by
        one, in time order, so a dirfd opened earlier in the batch is known when a path
        relative to it comes."""
        if len(recs) == 0:
            return 0
        files, dirs = self.files, self.dirs
        before = len(files)
        fast = _plain_absolute(recs)
        if fast is not None:
            mask, paths = fast
            fids = ids[mask].tolist()
            files.update(zip(fids, paths))
            dmask = recs["dir"][mask]
            uniq, first = np.unique(dmask, return_index=True)
            for d, i in zip(uniq.tolist(), first.tolist()):
                if d not in dirs:
                    dirs[d] = paths[i].rpartition("/")[0] or "/"
            recs, ids = recs[~mask], ids[~mask]
        order = np.argsort(recs["ts"], kind="stable")
        recs, ids = recs[order], ids[order]
        for fid, d, raw, n, base, tgid, seed, dirfd in zip(
                ids.tolist(), recs["dir"].tolist(), recs["path"].tolist(), recs["len"].tolist(),
                recs["base"].tolist(), recs["tgid"].tolist(), recs["seed"].tolist(),
                recs["dirfd"].tolist()):
            raw = raw[:n]  # the kernel's buffer holds older bytes past the path's NUL
            if base == 0:
                path = escape_bytes(_norm(raw))
            else:
                path = self._join(tgid, dirfd, raw, seed=seed)
            files[fid] = path
            if d not in dirs:
                dirs[d] = self._dir_of(path)
        return len(files) - before

    def _learn(self, fid: int, dir_id: int, path: str, raw: bytes) -> None:
        self.files[fid] = path
        if dir_id and dir_id not in self.dirs:
            self.dirs[dir_id] = self._dir_of(path)

    @staticmethod
    def _dir_of(path: str) -> str:
        """The directory a path's directory id stands for (a relative name without '/'
        stands in its base: the same as the path's dirname)."""
        return path.rpartition("/")[0] or "/"

    def _adopt(self, child: ProcInfo, parent_pid: int) -> None:
        """A child forked during the capture: a copy of its parent until it execs."""
        parent = self.proc_info(parent_pid)
        child.ppid = parent_pid
        child.comm = child.comm or parent.comm
        child.fork_copy = True
        if child.start_ns is None:  # /proc unreadable: it started as its parent's copy
            for k in ("cmdline", "exe", "cgroup", "cgroup_id", "container_id", "env"):
                setattr(child, k, getattr(parent, k))

    def _is_thread_of(self, tgid: int, tid: int) -> bool:
        """sched_process_fork also fires for new threads: tell them apart while they live."""
        return tid != tgid and os.path.exists(f"{self.proc}/{tgid}/task/{tid}")

    def _set(self, tgid: int, fd: int, uid: int, res: Res) -> None:
        """An evented fd (socket, pipe, long path) got unique id `uid`."""
        if uid:
            old = self.cur.get((tgid, fd))
            if old and old != uid:
                # The kernel reports closes of tracked fds only when asked (--all-events);
                # a new id on the same fd number means the old one was closed: retire it
                # once the ops it did have been drained.
                self._retire.append(old)
            self.uids[uid] = res
            self.owner[uid] = (tgid, fd)
            self.cur[(tgid, fd)] = uid
            self.fd0.pop((tgid, fd), None)
        else:  # the kernel's fd map was full: remember by number only
            self.fd0[(tgid, fd)] = res

    def _join(self, tgid: int, dirfd: int, raw: bytes, seed: int = 0) -> str:
        """Absolute path of an open's filename (relative to cwd or to dirfd). `seed`: the
        kernel's id of the base (a cwd id after a traced chdir, or the dirfd's id)."""
        if raw.startswith(b"/"):
            return escape_bytes(_norm(raw))
        if dirfd == AT_FDCWD:
            base = self.cwds.get(seed) if seed else None
            base = base or self._cwd_of(tgid)
        else:
            base = self._id_res(seed)[1] if seed else None
            base = base or self.resource(tgid, dirfd, self.cur.get((tgid, dirfd), 0))[1]
        if not base:
            return escape_bytes(raw)
        if not raw:
            return base
        joined = base + "/" + escape_bytes(raw)  # escaping adds neither "/" nor "."
        return os.path.normpath(joined) if _norm(raw) is not raw or raw.startswith(b".") \
            else joined

    def _cwd_of(self, tgid: int) -> str | None:
        try:
            self._cwd[tgid] = escape_bytes(os.readlink(f"{self.proc}/{tgid}/cwd".encode()))
        except OSError:
            pass
        return self._cwd.get(tgid)

    def note_close(self, tgid: int, fd: int, uid: int, mono_ns: int) -> None:
        """An fd was closed (a close event, or a drained close op: closes of fds opened under
        tracing send no event by default): count accepted connections that were short."""
        t0 = self._accepted.pop(uid, None) if uid else None
        if t0 is not None and mono_ns - t0 <= SHORT_CONN_NS:
            info = self.proc_info(tgid)
            info.short_conns += 1
            info.roles_stale = True

    # --- lookups at drain time -----------------------------------------------------------
    def _id_res(self, fid: int) -> Res:
        """(kind, resource) of a nonzero id, ("other", None) when unknown."""
        if fid & ID_UNIQUE:
            return self.uids.get(fid) or ("other", None)
        path = self.files.get(fid)
        if path is None:
            return "file", None  # a path hash whose path never arrived (counted as lost)
        return ("device" if path.startswith("/dev/") else "file"), path

    def resource(self, tgid: int, fd: int, fid: int) -> Res:
        """(kind, resource) of an aggregation key (file grain) or an event's fd."""
        if fd == AT_FDCWD and not fid:
            return "file", None  # path-based metadata ops (stat by name): per process
        if fid:
            res = self._id_res(fid)
            if fid & ID_UNIQUE and res[1] is not None and res[1].endswith(":?"):
                # a socket never connected or accepted through a traced call (a listening
                # socket: bind/listen are not traced): ask /proc/net once it is known
                owner, ofd = self.owner.get(fid, (tgid, fd))
                found = self._link_res(owner, ofd if fd < 0 else fd)
                if found[0] == "socket" and found[1] and not found[1].startswith("socket:"):
                    res = self.uids[fid] = found
            return res
        res = self.fd0.get((tgid, fd))
        if res is None:
            info = self.procs.get(tgid)
            res = None
            if info is not None and info.ppid and info.fork_copy is not None:
                # forked under tracing: an fd it never opened was inherited, and the parent's
                # table says what it is; /proc would show what the number holds *now* (a
                # worker reuses the number of an inherited pipe it closed for its data files)
                res = self._current_res(info.ppid, fd)
            if res is None:
                res = self._link_res(tgid, fd)
                if res == ("other", None) and info is not None and info.ppid:
                    res = self._current_res(info.ppid, fd) or res  # gone: ask the parent
            self.fd0[(tgid, fd)] = res
        return res

    def _current_res(self, tgid: int, fd: int) -> Res | None:
        uid = self.cur.get((tgid, fd))
        if uid:
            return self.uids.get(uid)
        return self.fd0.get((tgid, fd))

    def _link_res(self, tgid: int, fd: int) -> Res:
        try:
            target = os.readlink(f"{self.proc}/{tgid}/fd/{fd}".encode())
        except OSError:
            return "other", None
        kind, res = classify_link(escape_bytes(target))
        if kind == "socket":
            res = self._socket_by_inode(escape_bytes(target))
        return kind, res

    def _proc_socket(self, tgid: int, fd: int) -> str | None:
        return self._link_res(tgid, fd)[1]

    def _socket_by_inode(self, target: str) -> str | None:
        try:
            inode = int(target[target.index("[") + 1:target.index("]")])
        except ValueError:
            return None
        if self._net is None or inode not in self._net:
            self._net = read_proc_net(self.proc)
        return self._net.get(inode, f"socket:[{inode}]")

    def after_drain(self) -> None:
        """Forget unique ids closed two drains ago (their last ops have been drained by now).
        Path ids are kept for the whole capture: the kernel sends each path only once."""
        live = set(self.cur.values()) if self._retiring else ()
        for uid in self._retiring:
            if uid not in live:
                self.uids.pop(uid, None)
                self.owner.pop(uid, None)
        self._retiring, self._retire = self._retire, []
        self._net = None

    def file_paths(self) -> list[str]:
        """Every file path known (path ids, long paths, fds from /proc)."""
        out = list(self.files.values())
        for table in (self.uids, self.fd0):
            out.extend(res for kind, res in list(table.values()) if kind == "file" and res)
        return out

    def socket_owners(self) -> list[tuple[int, Res]]:
        """(tgid, (kind, resource)) of every socket known by id or from /proc."""
        out = [(self.owner.get(uid, (0, -1))[0], res) for uid, res in list(self.uids.items())]
        out.extend((k[0], res) for k, res in list(self.fd0.items()))
        return out

    # --- processes ---------------------------------------------------------------------
    def proc_info(self, pid: int) -> ProcInfo:
        info = self.procs.get(pid)
        if info is None:
            info = self.procs[pid] = ProcInfo(pid)
            self._refresh(info)
            parent = self._forked.pop(pid, None)
            if parent is not None:  # its fork was seen after it had gone from /proc
                self._adopt(info, parent)
        return info

    def _refresh(self, info: ProcInfo) -> None:
        """Read what /proc still shows of a process (it may be gone already)."""
        base = f"{self.proc}/{info.pid}"
        info.dirty = True
        try:
            stat = open(f"{base}/stat", "rb").read()
            rest = stat[stat.rindex(b")") + 2:].split()
            info.comm = escape_bytes(stat[stat.index(b"(") + 1:stat.rindex(b")")])
            info.ppid = int(rest[1])
            info.start_ns = self._start_wall_ns(int(rest[19]))
        except (OSError, ValueError, IndexError):
            return
        try:
            raw = open(f"{base}/cmdline", "rb").read().rstrip(b"\0")
            info.cmdline = " ".join(escape_bytes(a) for a in raw.split(b"\0")) if raw else None
        except OSError:
            pass
        try:
            info.exe = escape_bytes(os.readlink(f"{base}/exe".encode()))
        except OSError:
            pass
        from iolens.collector.procinfo import read_cgroup, read_env, read_nspid

        info.cgroup, info.cgroup_id, info.container_id = read_cgroup(base)
        info.ns_pid = read_nspid(base)
        info.env = read_env(base)

    _CLK_TCK = os.sysconf("SC_CLK_TCK")

    def _start_wall_ns(self, ticks: int) -> int:
        return self.boot_offset_ns + int(ticks * 1e9 / self._CLK_TCK)

    def forget_exited(self, older_than_ns: int) -> list[int]:
        """Drop processes that exited before `older_than_ns` (wall); return their pids."""
        gone = [p for p, i in self.procs.items() if i.exit_ns and i.exit_ns < older_than_ns
                and not i.dirty]
        for p in gone:
            del self.procs[p]
            self._cwd.pop(p, None)
        if gone:
            dead = set(gone)
            for d in (self.cur, self.fd0):
                for k in [k for k in d if k[0] in dead]:
                    del d[k]
            for uid in [u for u, p in self.owner.items() if p[0] in dead]:
                self.uids.pop(uid, None)
                self.owner.pop(uid, None)
                self._accepted.pop(uid, None)
        return gone


def clock_offset_ns() -> int:
    """CLOCK_REALTIME - CLOCK_MONOTONIC (bpf_ktime_get_ns is monotonic), best of 3 reads."""
    best = None
    for _ in range(3):
        a = time.monotonic_ns()
        r = time.time_ns()
        b = time.monotonic_ns()
        if best is None or b - a < best[0]:
            best = (b - a, r - (a + b) // 2)
    return best[1]
