"""Page-cache and mmap-fault probe (pagecache.bpf.c) -> the `pagecache` and `faults` tables.

Per interval and (pid, file): pages inserted into the page cache by reads/readahead/faults
(cache misses that process caused), readahead pages, folios dirtied, dirty-throttle time, and
the page faults on a mapping of the file that did I/O (pages, bytes, time).

Files are keyed in the kernel by (s_dev, i_ino) from tracepoint args. `InodePaths` maps them
to absolute paths without reading kernel structs: first by stat()ing the paths the syscall
layer already knows (opens, mmaps: resolver fd tables), then by scanning /proc/PID/maps and
/proc/PID/fd of the process. Kernel dev_t is MAJOR<<20|MINOR; st_dev is makedev-encoded.

Filtering: the kernel side sees every process (but iolens itself); with --pid/-- CMD only the
pids the syscall probe knows (resolver.procs: the targets and their descendants) get rows.
"""

from __future__ import annotations

import os

import numpy as np
from iolens.collector import schema as S
from iolens.probes._optional import (
    HERE,
    Flipper,
    ProbeUnavailable,
    int_flag,
    kdev_str,
    kdev_to_st_dev,
    missing_hooks,
    render,
    require,
    sum_fields,
    tracepoint_fields,
    ts_column,
)

SOURCE = HERE / "pagecache.bpf.c"
COUNTERS = ("agg_full", "state_fail")
KEY = np.dtype([("tgid", "<u4"), ("dev", "<u4"), ("ino", "<u8")])
VAL = np.dtype([(n, "<u8") for n in ("pages_added", "ra_pages", "write_pages", "dirtied",
                                     "throttle_ns", "fault_pages", "faults", "fault_ns")])
PAGE = os.sysconf("SC_PAGE_SIZE")
#: optional hooks of plan(): flag -> what a capture lacks without it
HOOKS = {
    "sched": "sched:sched_switch/sched_wakeup missing: fault time is fault entry to retry only "
             "(no D-state sleep)",
    "sync_ra": "readahead:page_cache_sync_ra missing: synchronous readahead not counted apart",
    "async_ra": "readahead:page_cache_async_ra missing: asynchronous readahead not counted apart",
    "ra_order": "readahead:page_cache_ra_order missing: large-folio readahead not counted apart",
    "dirty": "writeback:writeback_dirty_folio missing: pagecache.dirtied stays 0",
    "bdp": "writeback:balance_dirty_pages missing: dirty-throttling time not measured",
}
MAX_KEYS = 16384


def plan(self_tgid: int, task_storage: bool = True) -> list[str]:
    add = require("filemap", "mm_filemap_add_to_page_cache", ("i_ino", "s_dev", "index"))
    require("filemap", "mm_filemap_fault", ("i_ino", "s_dev", "index"))
    require("filemap", "mm_filemap_map_pages", ("i_ino", "s_dev", "index", "last_index"))
    flags = [int_flag("SELF_TGID", self_tgid, 0, 2**22), int_flag("MAX_KEYS", MAX_KEYS, 64, 2**20),
             int_flag("USE_TASK_STORAGE", int(task_storage), 0, 1),
             int_flag("HAVE_ORDER", int("order" in add), 0, 1)]
    sched = (tracepoint_fields("sched", "sched_switch") or set(),
             tracepoint_fields("sched", "sched_wakeup") or set())
    if {"prev_pid", "prev_state"} <= sched[0] and "pid" in sched[1]:
        flags.append("-DHAVE_sched=1")
    ino_dev = ("i_ino", "s_dev")
    for flag, cat, ev, fields in (("sync_ra", "readahead", "page_cache_sync_ra", ino_dev),
                                  ("async_ra", "readahead", "page_cache_async_ra", ino_dev),
                                  ("ra_order", "readahead", "page_cache_ra_order", ino_dev),
                                  ("dirty", "writeback", "writeback_dirty_folio", ("ino", "index")),
                                  ("bdp", "writeback", "balance_dirty_pages", ("pause",))):
        have = tracepoint_fields(cat, ev)
        if have is not None and all(f in have for f in fields):
            flags.append(f"-DHAVE_{flag}=1")
    return flags


class InodePaths:
    """(kernel dev, ino) -> absolute path, learnt lazily and cached."""

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        self.known: dict[tuple[int, int], str] = {}   # (st_dev, ino) -> path
        self.stated: set[str] = set()
        self.by_ino: dict[int, set[int]] = {}         # ino -> st_devs seen (dev-less lookups)
        self.misses: dict[tuple[int, int, int], int] = {}
        self._learnt = False            # resolver paths stat'ed during this drain
        self._scanned: set[int] = set()  # pids whose /proc was scanned during this drain

    def new_drain(self) -> None:
        """Each source is consulted at most once per drain, whatever the number of misses."""
        self._learnt = False
        self._scanned.clear()

    def _learn(self, path: str, st: os.stat_result) -> None:
        self.known.setdefault((st.st_dev, st.st_ino), path)
        self.by_ino.setdefault(st.st_ino, set()).add(st.st_dev)

    def learn_paths(self, paths) -> None:
        for p in paths:
            if not p or not p.startswith("/") or p in self.stated:
                continue
            self.stated.add(p)
            try:
                self._learn(p, os.stat(p))
            except (OSError, ValueError):
                pass

    def _scan_proc(self, pid: int) -> None:
        try:
            for line in open(f"{self.proc}/{pid}/maps"):
                parts = line.split(maxsplit=5)
                if len(parts) < 6 or not parts[5].startswith("/"):
                    continue
                ma, mi = (int(x, 16) for x in parts[3].split(":"))
                path = parts[5].rstrip("\n")
                if path.endswith(" (deleted)"):
                    path = path[: -len(" (deleted)")]
                key = (os.makedev(ma, mi), int(parts[4]))
                self.known.setdefault(key, path)
                self.by_ino.setdefault(key[1], set()).add(key[0])
        except (OSError, ValueError):
            pass
        try:
            fds = os.listdir(f"{self.proc}/{pid}/fd")
        except OSError:
            return
        for fd in fds:
            try:
                target = os.readlink(f"{self.proc}/{pid}/fd/{fd}")
                if target.startswith("/"):
                    self._learn(target, os.stat(f"{self.proc}/{pid}/fd/{fd}"))
            except OSError:
                continue

    def lookup(self, pid: int, st_dev: int | None, ino: int,
               resolver=None) -> tuple[str | None, int | None]:
        """(path, st_dev) of a file; st_dev None means 'unknown device' (match ino only)."""
        hit = self._get(st_dev, ino)
        if hit[0] is None and resolver is not None and not self._learnt:
            self._learnt = True
            self.learn_paths(resolver_paths(resolver))
            hit = self._get(st_dev, ino)
        miss = (pid, st_dev or 0, ino)
        if len(self.misses) > 100_000:
            self.misses.clear()
        if hit[0] is None and pid not in self._scanned and self.misses.get(miss, 0) < 3:
            self.misses[miss] = self.misses.get(miss, 0) + 1
            self._scanned.add(pid)
            self._scan_proc(pid)
            hit = self._get(st_dev, ino)
        return hit

    def _get(self, st_dev: int | None, ino: int) -> tuple[str | None, int | None]:
        if st_dev is not None:
            return self.known.get((st_dev, ino)), st_dev
        devs = self.by_ino.get(ino, ())
        if len(devs) == 1:
            d = next(iter(devs))
            return self.known.get((d, ino)), d
        return None, None


def resolver_paths(resolver) -> list[str]:
    return resolver.file_paths() if hasattr(resolver, "file_paths") else []


def st_dev_to_kdev(st_dev: int) -> int:
    return (os.major(st_dev) << 20) | os.minor(st_dev)


class PageCacheProbe:
    name = "pagecache"
    tables = ("pagecache", "faults")

    def __init__(self, opts=None) -> None:
        self.opts = opts
        self.pid_mode = bool(opts is not None and (opts.pids or opts.command or opts.cgroup))
        self.prog = None
        self.cflags: list[str] | None = None
        self.paths = InodePaths()
        self.counters = dict.fromkeys(COUNTERS, 0)

    def missing_hooks(self) -> dict[str, str]:
        """Optional hooks this build of the probe lacks (after start): hook -> what is lost."""
        return missing_hooks(self.cflags, HOOKS) if self.cflags is not None else {}

    def render(self) -> str:
        try:
            return render(self.cflags or plan(os.getpid()), SOURCE)
        except ProbeUnavailable as exc:
            return f"// {self.name}: not loadable here: {exc}\n"

    def start(self) -> None:
        from iolens.probes._bcc import ProbeLoadError, Program

        self.cflags = plan(os.getpid())
        try:
            self.prog = Program(SOURCE.read_text(), self.cflags, str(HERE))
        except ProbeLoadError:
            self.cflags = plan(os.getpid(), task_storage=False)  # no task storage: LRU hash
            try:
                self.prog = Program(SOURCE.read_text(), self.cflags, str(HERE))
            except ProbeLoadError as exc:
                raise ProbeUnavailable(f"pagecache probe refused: {exc}") from None
        self.flip = Flipper(self.prog, "agg", KEY, VAL, MAX_KEYS)

    def poll(self) -> None:
        pass

    # --- drain ----------------------------------------------------------------------------
    def _rows(self, ctx) -> dict[tuple[int, int, int], dict[str, int]]:
        keys, vals = self.flip.take()
        sums = self.prog.percpu_array_sums("counters", len(COUNTERS))
        self.counters = dict(zip(COUNTERS, sums, strict=True))
        tot = sum_fields(vals)
        resolver = ctx.resolver
        procs = getattr(resolver, "procs", {}) if resolver is not None else {}
        rows: dict[tuple[int, int, int], dict[str, int]] = {}
        for i in range(len(keys)):
            k = (int(keys["tgid"][i]), int(keys["dev"][i]), int(keys["ino"][i]))
            if self.pid_mode and k[0] not in procs:
                continue
            rows[k] = {n: int(tot[n][i]) for n in VAL.names}
        # dirtied folios whose fs device the kernel side could not borrow (dev 0): merge
        self.paths.new_drain()
        devs_of: dict[tuple[int, int], list[int]] = {}
        for t, d, i in rows:
            if d:
                devs_of.setdefault((t, i), []).append(d)
        for k in [k for k in rows if k[1] == 0 and k[2] != 0]:
            same = devs_of.get((k[0], k[2]), [])
            dev = same[0] if len(same) == 1 else None
            if dev is None:
                _, st_dev = self.paths.lookup(k[0], None, k[2], resolver)
                dev = st_dev_to_kdev(st_dev) if st_dev is not None else None
            if dev is not None:
                r = rows.pop(k)
                dst = rows.setdefault((k[0], dev, k[2]), dict.fromkeys(VAL.names, 0))
                for n in VAL.names:
                    dst[n] += r[n]
        return rows

    def drain(self, ctx) -> dict:
        rows = self._rows(ctx)
        resolver = ctx.resolver
        pc: dict[str, list] = {n: [] for n in (
            "pid", "comm", "resource", "dev", "ino", "pages_added", "readahead_pages",
            "dirtied_pages", "throttle_ns", "size_bytes")}
        fl: dict[str, list] = {n: [] for n in (
            "pid", "comm", "resource", "faults", "pages", "bytes", "lat_sum_ns")}
        for (tgid, dev, ino), r in rows.items():
            path, size = None, None
            if ino:
                st_dev = kdev_to_st_dev(dev) if dev else None
                path, _ = self.paths.lookup(tgid, st_dev, ino, resolver)
                if path is not None:
                    try:
                        size = os.stat(path).st_size
                    except OSError:
                        size = None
            comm = None
            if resolver is not None:
                info = resolver.procs.get(tgid) or resolver.proc_info(tgid)
                comm = info.comm
            read_added = max(r["pages_added"] - r["write_pages"], 0)
            if read_added or r["ra_pages"] or r["dirtied"] or r["throttle_ns"]:
                pc["pid"].append(tgid)
                pc["comm"].append(comm)
                pc["resource"].append(path)
                pc["dev"].append(kdev_str(dev) if dev else None)
                pc["ino"].append(ino or None)
                pc["pages_added"].append(read_added)
                pc["readahead_pages"].append(r["ra_pages"])
                pc["dirtied_pages"].append(r["dirtied"])
                pc["throttle_ns"].append(r["throttle_ns"])
                pc["size_bytes"].append(size)
            if r["faults"] or r["fault_pages"]:
                fl["pid"].append(tgid)
                fl["comm"].append(comm)
                fl["resource"].append(path)
                fl["faults"].append(r["faults"])
                fl["pages"].append(r["fault_pages"])
                fl["bytes"].append(r["fault_pages"] * PAGE)
                fl["lat_sum_ns"].append(r["fault_ns"])
        out = {}
        for name, cols, extra in (("pagecache", pc, {"page_bytes": PAGE}), ("faults", fl, {})):
            n = len(cols["pid"])
            if n == 0:
                out[name] = S.empty_table(name)
                continue
            cols = dict(cols)
            cols.update({k: [v] * n for k, v in extra.items()})
            cols.update({"ts": ts_column(ctx.start_ns, n), "interval_s": [ctx.interval_s] * n,
                         "host": [ctx.host] * n})
            out[name] = S.to_table(name, cols)
        return out

    def close(self) -> None:
        if self.prog is not None:
            self.prog.close()
            self.prog = None


__all__ = ["PageCacheProbe", "InodePaths"]
