"""Drained aggregation keys -> the `io` table of one interval, without per-key Python work
beyond one dictionary lookup per distinct id.

In: the keys and per-key totals of `SyscallProbe.drain()` (numpy structured arrays of
`wire.AGG_KEY` / `wire.AGG_VAL`), the `Resolver` (ids -> paths and peers, processes), the
`FileClassifier`. Out: a `pa.Table` of schema `io`, one row per (process, thread, syscall,
grain, resource). Keys that name the same thing are merged (a file opened through two bases,
unresolved fds of one number); rows of grain `dir` have the directory path with a trailing
'/' as resource, rows of grain `proc` none.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from iolens.collector import schema as S
from iolens.collector.enrich import AT_FDCWD, Resolver
from iolens.probes import wire
from iolens.probes._optional import trimmed_lists as _trimmed_lists

_SYS_NAMES = np.array(["other"] + [wire.SYS_NAME[i] for i in range(1, len(wire.SYSCALLS) + 1)],
                      dtype=object)
_KIND_CODE = {k: i for i, k in enumerate(S.KINDS)}
_SUMS = ("count", "bytes", "errors", "lat_sum", "random_ops")


@dataclass
class IoRows:
    """The io table of an interval and what it says about coverage."""

    table: pa.Table
    ops: int              # operations in the rows (all grains)
    unresolved_ops: int   # ops in rows whose file or peer has no name


def resolve_keys(keys: np.ndarray, resolver: Resolver) -> tuple[np.ndarray, list]:
    """Per key, an index into a list of (kind, resource): one lookup per distinct id."""
    n = len(keys)
    ids, grain = keys["id"], keys["grain"]
    ridx = np.empty(n, dtype=np.int64)
    out: list[tuple[str, str | None]] = []
    index: dict[tuple[str, str | None], int] = {}

    def put(res: tuple[str, str | None]) -> int:
        i = index.get(res)
        if i is None:
            i = index[res] = len(out)
            out.append(res)
        return i

    by_file = (grain == 0) & (ids != 0)
    if by_file.any():
        uniq, inv = np.unique(ids[by_file], return_inverse=True)
        res_of, files = resolver._id_res, resolver.files
        got = []
        for u in uniq.tolist():  # one dict lookup per distinct id; path ids are the bulk
            path = files.get(u)
            got.append(put(("device" if path.startswith("/dev/") else "file", path))
                       if path is not None else put(res_of(u)))
        ridx[by_file] = np.array(got, dtype=np.int64)[inv]
    by_dir = grain == 1
    if by_dir.any():
        uniq, inv = np.unique(ids[by_dir], return_inverse=True)
        dirs = resolver.dirs
        names = [dirs.get(u) for u in uniq.tolist()]
        ridx[by_dir] = np.array(
            [put(("file", (d.rstrip("/") + "/") if d else None)) for d in names],
            dtype=np.int64)[inv]
    by_proc = grain == 2
    if by_proc.any():
        ridx[by_proc] = put(("other", None))
    by_fd = (grain == 0) & (ids == 0)
    if by_fd.any():  # fds from before the capture, failed opens, path-based stats
        tg, fds = keys["tgid"][by_fd].tolist(), keys["fd"][by_fd].tolist()
        ridx[by_fd] = [put(resolver.resource(p, f, 0)) for p, f in zip(tg, fds)]
    return ridx, out


def _groups(cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(first key of each group, group of each key) for keys equal in every column.
    A lexsort of the columns, then boundaries where any column changes (far faster than
    np.unique over rows)."""
    order = np.lexsort(cols[::-1])
    n = len(order)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for c in cols:
        sc = c[order]
        change[1:] |= sc[1:] != sc[:-1]
    gid_sorted = np.cumsum(change) - 1
    inv = np.empty(n, dtype=np.int64)
    inv[order] = gid_sorted
    return order[change], inv

def _reduce(tot: np.ndarray, inv: np.ndarray, m: int) -> dict[str, np.ndarray]:
    """Per-group sums (max for lat_max) of the per-key totals, via sort + reduceat."""
    order = np.argsort(inv, kind="stable")
    g = inv[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    out = {f: np.add.reduceat(tot[f][order].astype(np.int64), starts) for f in _SUMS}
    out["lat_max"] = np.maximum.reduceat(tot["lat_max"][order].astype(np.int64), starts)
    out["lat_hist"] = np.add.reduceat(tot["lat_hist"][order].astype(np.int64), starts, axis=0)
    out["size_hist"] = np.add.reduceat(tot["size_hist"][order].astype(np.int64), starts, axis=0)
    assert len(starts) == m
    return out


def _note_closes(keys: np.ndarray, resolver: Resolver) -> None:
    """Drained close ops of connections (closes of traced fds send no event by default)."""
    sel = (keys["sys"] == wire.SYS_ID["close"]) & ((keys["id"] & np.uint64(wire.ID_UNIQUE)) != 0)
    if sel.any():
        now = time.monotonic_ns()
        for p, f, u in zip(keys["tgid"][sel].tolist(), keys["fd"][sel].tolist(),
                           keys["id"][sel].tolist()):
            resolver.note_close(p, f, u, now)


def build(keys: np.ndarray, tot: np.ndarray, start_ns: int, interval_s: float, host: str,
          resolver: Resolver, classifier, redactor=None) -> IoRows:
    """The io rows of one interval (see the module docstring)."""
    n = len(keys)
    if n == 0:
        return IoRows(S.empty_table("io"), 0, 0)
    _note_closes(keys, resolver)
    ridx, res_list = resolve_keys(keys, resolver)
    unresolved = np.array([r[1] is None for r in res_list], dtype=bool)
    # unresolved fds stay apart by number (they may be different things); AT_FDCWD rows
    # (stat by name) are per process
    fdcol = np.where(unresolved[ridx] & (keys["grain"] == 0), keys["fd"].astype(np.int64), -1)
    first, inv = _groups([keys["tgid"], keys["tid"], keys["sys"], keys["grain"], ridx, fdcol])
    m = len(first)
    if m == n:  # nothing to merge (the usual case): keep the kernel's totals as they are
        order = np.argsort(inv, kind="stable")
        first = order
        sums = {f: tot[f][order].astype(np.int64) for f in _SUMS}
        sums["lat_max"] = tot["lat_max"][order].astype(np.int64)
        sums["lat_hist"] = tot["lat_hist"][order].astype(np.int64)
        sums["size_hist"] = tot["size_hist"][order].astype(np.int64)
    else:
        sums = _reduce(tot, inv, m)
    rk = keys[first]
    rix = ridx[first]
    kinds_l = [r[0] for r in res_list]
    kinds = [kinds_l[i] for i in rix.tolist()]
    resources = [res_list[i][1] for i in rix.tolist()]
    sysnames = _SYS_NAMES[np.minimum(rk["sys"], len(_SYS_NAMES) - 1)]
    ops = _ops(rk["sys"], kinds)
    pids = rk["tgid"].astype(np.int64)
    procs = resolver.procs
    infos = {p: procs.get(p) or resolver.proc_info(p) for p in set(pids.tolist())}
    classes = _classes(classifier, resources, ops, kinds)
    _note_file_ops(procs, pids, classes, ops, sums["count"])
    if redactor is not None:
        resources = [redactor.path(r) for r in resources]
    grains = np.array(S.GRAINS, dtype=object)[np.minimum(rk["grain"], 2)]
    tid = rk["tid"].astype(np.int32)
    fd = rk["fd"].astype(np.int32)
    pid_list = pids.tolist()
    cols = {
        "ts": pa.array(np.full(m, start_ns, dtype=np.int64)).cast(S.TS),
        "interval_s": np.full(m, interval_s),
        "host": pa.array([host], pa.string()).take(pa.array(np.zeros(m, dtype=np.int32))),
        "pid": pids.astype(np.int32),
        "tid": pa.array(tid, mask=(tid == 0)),
        "comm": [infos[p].comm for p in pid_list], "op": ops, "kind": kinds,
        "resource": resources,
        "count": sums["count"], "bytes": sums["bytes"], "errors": sums["errors"],
        "lat_sum_ns": sums["lat_sum"], "lat_max_ns": sums["lat_max"],
        "lat_hist": _trimmed_lists(sums["lat_hist"]),
        "syscall": sysnames, "fd": pa.array(fd, mask=(fd < 0) & (fd != AT_FDCWD)),
        "size_hist": _trimmed_lists(sums["size_hist"]),
        "random_ops": sums["random_ops"],
        "file_class": classes,
        "cgroup_id": [infos[p].cgroup_id for p in pid_list],
        "grain": grains,
    }
    table = S.to_table("io", cols)
    res_none = np.array([r is None for r in resources], dtype=bool)
    unres_ops = int(sums["count"][res_none & (grains == "file") & (fd != AT_FDCWD)
                                  & (np.array(kinds, dtype=object) != "other")].sum())
    return IoRows(table, int(sums["count"].sum()), unres_ops)


def _ops(sys_ids: np.ndarray, kinds: list[str]) -> list[str]:
    """The contract's op per row: one op_for call per distinct (syscall, kind)."""
    codes = sys_ids.astype(np.int64) * 8 + np.array([_KIND_CODE.get(k, 4) for k in kinds],
                                                    dtype=np.int64)
    uniq, inv = np.unique(codes, return_inverse=True)
    names = [wire.op_for(_SYS_NAMES[min(c // 8, len(_SYS_NAMES) - 1)], S.KINDS[c % 8])
             for c in uniq.tolist()]
    return [names[i] for i in inv.reshape(-1).tolist()]


def _classes(classifier, resources: list, ops: list[str], kinds: list[str]) -> list:
    """file_class per row, classifying each distinct (resource, op, kind) once."""
    index: dict[tuple, int] = {}
    inv = []
    for t in zip(resources, ops, kinds):
        i = index.get(t)
        if i is None:
            i = index[t] = len(index)
        inv.append(i)
    uniq = list(index)
    got = classifier.classify([u[0] for u in uniq], [u[1] for u in uniq], [u[2] for u in uniq])
    return [got[i] for i in inv]


def _note_file_ops(procs, pids: np.ndarray, classes: list, ops: list[str],
                   counts: np.ndarray) -> None:
    """Per process, the file classes it read or wrote (role evidence), summed first."""
    from iolens.collector.classify import note_file_ops

    acc: dict[tuple, int] = {}
    for p, c, o, n in zip(pids.tolist(), classes, ops, counts.tolist()):
        if c is not None and n > 0:
            acc[(p, c, o)] = acc.get((p, c, o), 0) + n
    if acc:
        ks = list(acc)
        note_file_ops(procs, [k[0] for k in ks], [k[1] for k in ks], [k[2] for k in ks],
                      [acc[k] for k in ks])
