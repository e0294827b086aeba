"""The data reductions every rule shares: one SQL definition each, run once per analysis.

Each function below returns a plain ``SELECT ... GROUP BY`` that DuckDB and Spark SQL both
accept (only `Engine.list_item` differs between them). `Reduced` runs them lazily through an
`Engine` and caches the small results, so ten rules cost a handful of scans of `io`.

Optional tables (written by probes of another issue; absent tables are simply not queried).
Columns this module expects when they are present:

(the schemas are in collector/schema.py; these are the columns read here)

- ``block``: host, device, op, count, bytes, lat_sum_ns, lat_max_ns, lat_hist
- ``pagecache``: host, pid, resource, pages_added (misses that inserted a page), page_bytes,
  readahead_pages, dirtied_pages, throttle_ns (balance_dirty_pages sleep), size_bytes
- ``faults``: host, pid, resource, faults (faults that did I/O), bytes, lat_sum_ns (nullable)
- ``tcp``: host, pid (nullable), resource (peer, tcp:IP:PORT), segs_out, retransmits, rtt_us
- ``tcp`` also: local (IP:PORT), rtt_us, bytes_sent, bytes_received, interval_s (tcp_conns)
- ``cpu``: host, pid, tid, cpu_ns, runq_ns (on-CPU time, from schedstat)
- ``gpu``: not used by the rules yet
- ``fds``: host, pid, comm, open_fds, fd_limit (collector/fdstats.py; issue 19)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from iolens.analysis.engine import Engine
from iolens.collector.schema import LAT_BUCKETS

#: above this many io rows, histograms come from a sample of about this many rows
HIST_EXACT_ROWS = 1_000_000



def hist_sums(eng: Engine, column: str, n: int, prefix: str) -> str:
    """``SUM(column[i]) AS prefix{i}`` for i < n: a merged histogram as n plain columns."""
    return ", ".join(f"SUM({eng.list_item(column, i)}) AS {prefix}{i}" for i in range(n))


def ops_sql(eng: Engine) -> str:
    """Per process, op, kind and file class: totals."""
    return """
SELECT host, pid, op, kind, COALESCE(file_class, '') AS file_class,
       SUM(count) AS count, SUM(bytes) AS bytes, SUM(errors) AS errors,
       SUM(lat_sum_ns) AS lat_sum_ns, MAX(lat_max_ns) AS lat_max_ns,
       SUM(COALESCE(random_ops, 0)) AS random_ops
FROM io GROUP BY host, pid, op, kind, COALESCE(file_class, '')"""


def ops_hist_sql(eng: Engine, sample_pct: float | None = None) -> str:
    """Merged latency histograms per process, op and kind (columns h0..h35).

    Decoding list columns is the costliest part of a scan, and histograms only feed quantiles
    in evidence and plots, so above HIST_EXACT_ROWS rows they are taken from a sample.
    """
    src = eng.sample("io", sample_pct) if sample_pct else "io"
    return f"""
SELECT host, pid, op, kind, {hist_sums(eng, 'lat_hist', LAT_BUCKETS, 'h')}
FROM {src} GROUP BY host, pid, op, kind"""


def resources_sql(eng: Engine) -> str:
    """Per process, op, kind and resource (file or peer): totals, no histogram."""
    return """
SELECT host, pid, op, kind, COALESCE(resource, '') AS resource,
       MAX(COALESCE(file_class, '')) AS file_class,
       SUM(count) AS count, SUM(bytes) AS bytes, SUM(errors) AS errors,
       SUM(lat_sum_ns) AS lat_sum_ns, MAX(lat_max_ns) AS lat_max_ns,
       SUM(COALESCE(random_ops, 0)) AS random_ops,
       MIN(ts) AS first_ts, MAX(ts) AS last_ts, MAX(interval_s) AS interval_s
FROM io GROUP BY host, pid, op, kind, COALESCE(resource, '')"""


def pid_span_sql(eng: Engine) -> str:
    """When each process was seen doing I/O (bounds of its intervals)."""
    return """
SELECT host, pid, MIN(ts) AS first_ts, MAX(ts) AS last_ts, MAX(interval_s) AS interval_s,
       MAX(comm) AS comm
FROM io GROUP BY host, pid"""


def intervals_sql(eng: Engine, table: str = "io") -> str:
    """One row per interval (host, ts) with its length: the capture's wall time."""
    return f"SELECT host, ts, MAX(interval_s) AS interval_s FROM {table} GROUP BY host, ts"


def timeline_sql(eng: Engine) -> str:
    """Per interval, process, kind and file class (else the kind): counts, bytes and time
    blocked in I/O (for the plots). Idle waits are left out as in the verdict: pipes,
    accept, unix sockets."""
    return """
SELECT ts, host, pid, kind, COALESCE(file_class, kind) AS file_class,
       SUM(count) AS count, SUM(bytes) AS bytes, SUM(lat_sum_ns) AS lat_sum_ns,
       MAX(interval_s) AS interval_s
FROM io
WHERE kind <> 'pipe' AND op <> 'accept' AND op <> 'poll' AND COALESCE(resource, '') NOT LIKE 'unix:%'
GROUP BY ts, host, pid, kind, COALESCE(file_class, kind)"""


def procs_sql(eng: Engine) -> str:
    """Latest non-null observation of each process attribute (rows where it is null ignored)."""
    cols = ("ppid", "comm", "cmdline", "role", "rank", "exit_time", "start_time", "cgroup")
    picks = ", ".join(
        f"MAX_BY({c}, CASE WHEN {c} IS NULL THEN NULL ELSE ts END) AS {c}" for c in cols)
    return (f"SELECT host, pid, {picks}, MIN(ts) AS first_seen, MAX(ts) AS seen_ts "
            "FROM procs GROUP BY host, pid")


def events_sql(eng: Engine) -> str:
    """Event counts per process, type and kind (opens, forks, slow ops...)."""
    return """
SELECT host, pid, type, COALESCE(kind, '') AS kind, COUNT(*) AS n,
       COUNT(DISTINCT resource) AS resources, SUM(COALESCE(lat_ns, 0)) AS lat_ns
FROM events GROUP BY host, pid, type, COALESCE(kind, '')"""


def opens_sql(eng: Engine) -> str:
    """How often each file was opened, per process (re-reads across epochs)."""
    return """
SELECT host, pid, resource, COUNT(*) AS opens FROM events
WHERE type = 'open' AND resource IS NOT NULL GROUP BY host, pid, resource"""


#: health columns added after the first captures: summed when present, else NULL
HEALTH_LATER = ("ops", "folded_dir", "folded_proc", "new_files", "newfile_lost", "events",
                "event_backlog", "unresolved_ops")


def health_sql(eng: Engine) -> str:
    """Capture health totals (columns a capture's files lack come out NULL), and the
    interval lengths' spread (how late the flips were)."""
    have = set(eng.columns("health"))
    later = ", ".join(f"SUM({c}) AS {c}" if c in have else f"CAST(NULL AS BIGINT) AS {c}"
                      for c in HEALTH_LATER)
    return f"""
SELECT COUNT(*) AS intervals, SUM(lost_events) AS lost_events,
       SUM(agg_overflow) AS agg_overflow, SUM(fd_overflow) AS fd_overflow,
       SUM(io_rows) AS io_rows, SUM(event_rows) AS event_rows, {later},
       MAX(interval_s) AS max_interval_s, MEDIAN(interval_s) AS median_interval_s
FROM health"""


def stretched_sql(eng: Engine, target_s: float) -> str:
    """Intervals more than 20% longer than the recording's interval (late flips)."""
    return f"SELECT COUNT(*) AS n FROM health WHERE interval_s > {1.2 * float(target_s)!r}"


def grain_sql(eng: Engine) -> str:
    """Ops per io grain (captures from before grains: all 'file')."""
    g = "COALESCE(grain, 'file')" if "grain" in eng.columns("io") else "'file'"
    return f"SELECT {g} AS grain, SUM(count) AS ops FROM io GROUP BY 1"


def block_sql(eng: Engine) -> str:
    return f"""
SELECT host, device, op, SUM(count) AS count, SUM(bytes) AS bytes,
       SUM(lat_sum_ns) AS lat_sum_ns, MAX(lat_max_ns) AS lat_max_ns,
       {hist_sums(eng, 'lat_hist', LAT_BUCKETS, 'h')}
FROM block GROUP BY host, device, op"""


def pagecache_sql(eng: Engine) -> str:
    return """
SELECT host, pid, resource, SUM(pages_added) AS pages_added,
       SUM(pages_added * COALESCE(page_bytes, 4096)) AS miss_bytes,
       SUM(readahead_pages) AS readahead_pages, SUM(dirtied_pages) AS dirtied_pages,
       SUM(throttle_ns) AS throttle_ns, MAX(size_bytes) AS size_bytes
FROM pagecache GROUP BY host, pid, resource"""


def faults_sql(eng: Engine) -> str:
    return """
SELECT host, pid, resource, SUM(faults) AS faults, SUM(bytes) AS bytes,
       SUM(COALESCE(lat_sum_ns, 0)) AS lat_sum_ns, COUNT(lat_sum_ns) AS timed_rows
FROM faults GROUP BY host, pid, resource"""


def tcp_sql(eng: Engine) -> str:
    return """
SELECT host, pid, resource, SUM(segs_out) AS segs_out, SUM(retransmits) AS retransmits,
       SUM(bytes_sent) AS bytes_sent, MAX(rtt_us) AS rtt_us_max
FROM tcp GROUP BY host, pid, resource"""


def tcp_conns_sql(eng: Engine) -> str:
    """Per connection (owner, peer, local endpoint): RTT, retransmits and bytes moved, with
    the span the connection was active (the link rules and the wait-for graph read it)."""
    return """
SELECT host, pid, resource, COALESCE(local, '') AS local,
       AVG(rtt_us) AS rtt_us, MIN(rtt_us) AS rtt_us_min, MAX(rtt_us) AS rtt_us_max,
       SUM(retransmits) AS retransmits, SUM(segs_out) AS segs_out,
       SUM(COALESCE(bytes_sent, 0)) AS bytes_sent,
       SUM(COALESCE(bytes_received, 0)) AS bytes_received,
       COUNT(*) AS intervals, SUM(interval_s) AS active_s
FROM tcp GROUP BY host, pid, resource, COALESCE(local, '')"""


def cpu_sql(eng: Engine) -> str:
    """On-CPU and run-queue time per process (summed over its threads)."""
    return """
SELECT host, pid, SUM(cpu_ns) AS cpu_ns, SUM(COALESCE(runq_ns, 0)) AS runq_ns,
       COUNT(DISTINCT tid) AS threads
FROM cpu GROUP BY host, pid"""


def ops_from_resources(res: pa.Table) -> pa.Table:
    """`ops` (see ops_sql) as a roll-up of `resources`: a small post-aggregation in Arrow."""
    keys = ["host", "pid", "op", "kind", "file_class"]
    sums = ["count", "bytes", "errors", "lat_sum_ns", "random_ops"]
    g = res.group_by(keys, use_threads=False).aggregate(
        [(c, "sum") for c in sums] + [("lat_max_ns", "max")])
    names = {f"{c}_sum": c for c in sums} | {"lat_max_ns_max": "lat_max_ns"}
    return g.rename_columns([names.get(c, c) for c in g.column_names])


def canonical(t: pa.Table) -> pa.Table:
    """A GROUP BY result in a fixed row order (by its key-like columns: strings, integers,
    timestamps, left to right). Engines return groups in any order, and a rule that breaks a
    tie by the first row seen would otherwise name another culprit on Spark than on DuckDB."""
    keys = [(f.name, "ascending") for f in t.schema
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or pa.types.is_integer(f.type) or pa.types.is_timestamp(f.type)]
    return t.sort_by(keys) if keys and t.num_rows > 1 else t


# --- the DataLoader's own IPC (issue 19; analysis/rules/ipc.py) ------------------------------

#: socket-only syscalls: in a per-process (grain 'proc') row they can only be socket traffic
IPC_SOCKET_SYSCALLS = ("connect", "accept", "accept4", "recvmsg", "sendmsg", "recvfrom",
                       "sendto")
#: ops of per-process rows counted as the loader's IPC (kept apart as channel 'fold')
IPC_FOLD_OPS = ("connect", "accept", "recv", "send", "read", "write")


def ipc_sql(eng: Engine) -> str:
    """Per interval, process, IPC channel and op: count, bytes, time. Channels: ``shm``
    (files under /dev/shm/ but not POSIX semaphores: tensors' shared-memory segments, at file
    or directory grain), ``unix`` (unix-socket peers: fd passing), ``pipe`` (the loader's
    index and result queues, and start-up payloads), ``fold`` (per-process rows with no file:
    ops the kernel map had no room to name; attributed to IPC only for loader processes)."""
    grain = "COALESCE(grain, 'file')" if "grain" in eng.columns("io") else "'file'"
    sock = ", ".join(f"'{s}'" for s in IPC_SOCKET_SYSCALLS)
    fold = ", ".join(f"'{o}'" for o in IPC_FOLD_OPS)
    return f"""
SELECT host, ts, pid, chan, op, SUM(count) AS count, SUM(bytes) AS bytes,
       SUM(lat_sum_ns) AS lat_sum_ns, MAX(interval_s) AS interval_s
FROM (SELECT host, ts, pid, op, count, bytes, lat_sum_ns, interval_s,
             CASE WHEN COALESCE(resource, '') LIKE '/dev/shm/%'
                       AND COALESCE(resource, '') NOT LIKE '/dev/shm/sem.%' THEN 'shm'
                  WHEN COALESCE(resource, '') LIKE 'unix:%' THEN 'unix'
                  WHEN kind = 'pipe' THEN 'pipe'
                  WHEN {grain} = 'proc' AND (syscall IN ({sock}) OR op IN ({fold}))
                       THEN 'fold'
                  ELSE NULL END AS chan
      FROM io) t
WHERE chan IS NOT NULL
GROUP BY host, ts, pid, chan, op"""


def forks_sql(eng: Engine) -> str:
    """Fork events (parent pid, time, 'child=PID' in detail): when each worker was started."""
    return "SELECT host, pid, ts, detail FROM events WHERE type = 'fork'"


def shm_first_sql(eng: Engine) -> str:
    """Per process: its first mapping of a shared-memory segment (a loader worker's first
    batch handed over) and how many segment mappings were logged."""
    return """
SELECT host, pid, MIN(ts) AS first_shm_ts, COUNT(*) AS shm_maps FROM events
WHERE type = 'mmap' AND resource LIKE '/dev/shm/%' AND resource NOT LIKE '/dev/shm/sem.%'
GROUP BY host, pid"""


def fds_sql(eng: Engine) -> str:
    """Per process: open fds at the first and last interval, the most, and the soft limit
    (the optional ``fds`` table of collector/fdstats.py)."""
    return """
SELECT host, pid, MAX(comm) AS comm, MIN(open_fds) AS min_fds, MAX(open_fds) AS max_fds,
       MIN_BY(open_fds, ts) AS first_fds, MAX_BY(open_fds, ts) AS last_fds,
       MIN(ts) AS first_ts, MAX(ts) AS last_ts, MIN(fd_limit) AS fd_limit,
       COUNT(*) AS samples
FROM fds GROUP BY host, pid"""


#: query name -> (table it needs, SQL builder)
QUERIES = {
    "ops": ("io", ops_sql), "ops_hist": ("io", ops_hist_sql),
    "resources": ("io", resources_sql), "pid_span": ("io", pid_span_sql),
    "intervals": ("io", intervals_sql), "timeline": ("io", timeline_sql),
    "procs": ("procs", procs_sql), "events": ("events", events_sql),
    "opens": ("events", opens_sql), "health": ("health", health_sql),
    "grains": ("io", grain_sql),
    "block": ("block", block_sql), "pagecache": ("pagecache", pagecache_sql),
    "faults": ("faults", faults_sql), "tcp": ("tcp", tcp_sql),
    "tcp_conns": ("tcp", tcp_conns_sql), "cpu": ("cpu", cpu_sql),
    "ipc": ("io", ipc_sql), "forks": ("events", forks_sql),
    "shm_first": ("events", shm_first_sql), "fds": ("fds", fds_sql),
}


@dataclass
class Reduced:
    """The reductions of one capture (or window), computed on first use and cached.

    `get(name)` gives the query's pyarrow Table, or None when its table is absent.
    `meta` is the capture's CaptureMeta (or None); `probes_skipped` says why tables are absent.
    """

    engine: Engine
    meta: Any = None
    _cache: dict[str, pa.Table | None] = field(default_factory=dict)

    def get(self, name: str) -> pa.Table | None:
        if name not in self._cache:
            table, build = QUERIES[name]
            if not self.engine.has(table):
                self._cache[name] = None
            elif name == "ops":
                # same result as ops_sql, rolled up from `resources` (already computed) rather
                # than another scan of io: the scan is the expensive part on large captures
                self._cache[name] = ops_from_resources(self.get("resources"))
            elif name == "ops_hist":
                self._cache[name] = canonical(
                    self.engine.query(build(self.engine, self.hist_sample_pct)))
            else:
                self._cache[name] = canonical(self.engine.query(build(self.engine)))
        return self._cache[name]

    @property
    def hist_sample_pct(self) -> float | None:
        """Percent of io rows the histograms are taken from (None: all of them)."""
        rows = self.engine.row_count("io")
        if rows <= HIST_EXACT_ROWS:
            return None
        return max(1.0, round(100.0 * HIST_EXACT_ROWS / rows, 2))

    def missing_reason(self, table: str) -> str:
        """Why `table` has no data: the probe's skip reason from the capture metadata."""
        skipped = getattr(self.meta, "probes_skipped", None) or {}
        for probe, reason in skipped.items():
            # "PROBE:HOOK" / "syscalls:NAME" entries are parts of a probe that loaded: they do
            # not explain a table with no rows
            if ":" not in probe and (table in probe or probe in table):
                return f"no {table} data: {reason}"
        return f"no {table} data: not recorded by this capture"

    # --- derived, small --------------------------------------------------------------------

    @property
    def wall_s(self) -> float:
        """Wall time covered by the capture: sum of interval lengths (largest over hosts)."""
        if "_wall" not in self._cache:
            t = self.get("intervals")
            w = 0.0
            if t is not None and t.num_rows:
                per_host = t.group_by("host").aggregate([("interval_s", "sum")])
                w = float(pc.max(per_host.column("interval_s_sum")).as_py() or 0.0)
            self._cache["_wall"] = w  # type: ignore[assignment]
        return self._cache["_wall"]  # type: ignore[return-value]

    def procs_info(self) -> dict[int, dict[str, Any]]:
        """pid -> {comm, role, rank, ppid, cmdline, wall_s, host} (io comm when procs has
        none; host None when the pid occurs on several hosts of a fleet tree)."""
        if "_procs" in self._cache:
            return self._cache["_procs"]  # type: ignore[return-value]
        info: dict[int, dict[str, Any]] = {}
        span = self.get("pid_span")
        start, end = self.capture_bounds()
        if span is not None:
            last = pc.add(pc.cast(span.column("last_ts"), pa.int64()),
                          pc.cast(pc.round(pc.multiply(span.column("interval_s"), 1e9)),
                                  pa.int64()))
            first = pc.cast(span.column("first_ts"), pa.int64())
            for host, pid, comm, f, e in zip(span.column("host").to_pylist(),
                                             span.column("pid").to_pylist(),
                                             span.column("comm").to_pylist(),
                                             first.to_pylist(), last.to_pylist(), strict=True):
                # a pid seen on two hosts of a fleet tree: host unknown (None)
                seen = info.get(pid, {}).get("host", host)
                info[pid] = {"comm": comm, "role": None, "rank": None, "ppid": None,
                             "cmdline": None, "first_ns": f, "last_ns": e,
                             "host": host if seen == host else None}
        procs = self.get("procs")
        if procs is not None:
            for row in procs.to_pylist():  # one row per process: small
                d = info.setdefault(row["pid"], {"comm": row["comm"], "first_ns": None,
                                                 "last_ns": None, "host": row.get("host")})
                for k in ("comm", "role", "rank", "ppid", "cmdline"):
                    if row.get(k) is not None:
                        d[k] = row[k]
                _widen_span(d, row, start, end)
        from iolens.analysis import ranks

        ranks.recognise(info, self.get("resources"), self.get("tcp_conns"))
        for d in info.values():
            f = d.get("first_ns") or start
            e = d.get("last_ns") or end
            d["wall_s"] = max(0.0, (e - f) / 1e9) if f is not None and e is not None else 0.0
        self._cache["_procs"] = info  # type: ignore[assignment]
        return info

    @property
    def hosts(self) -> list[str]:
        """Hosts that did I/O in the capture (several in a fleet tree)."""
        if "_hosts" not in self._cache:
            span = self.get("pid_span")
            self._cache["_hosts"] = sorted(set(span.column("host").to_pylist())) \
                if span is not None else []  # type: ignore[assignment]
        return self._cache["_hosts"]  # type: ignore[return-value]

    def capture_bounds(self) -> tuple[int | None, int | None]:
        """(first interval start, last interval end) in ns, from the io intervals."""
        t = self.get("intervals")
        if t is None or t.num_rows == 0:
            return None, None
        ts = np.asarray(pc.cast(t.column("ts"), pa.int64()))
        iv = np.asarray(t.column("interval_s"))
        return int(ts.min()), int((ts + iv * 1e9).max())


def _widen_span(d: dict[str, Any], row: dict[str, Any], start: int | None,
                end: int | None) -> None:
    """Stretch a process's span with what procs knows (start/exit time), clipped to the
    capture: a process that computes without I/O for a while still lives that long."""
    st, ex = row.get("start_time"), row.get("exit_time")
    # no start time: the first observation (made at fork/exec) is the best lower bound
    st_ns = _ns(st) if st is not None else _ns(row.get("first_seen"))
    ex_ns = _ns(ex)
    if st_ns is not None and start is not None:
        st_ns = max(st_ns, start)
        d["first_ns"] = st_ns if st is not None or not d.get("first_ns") else \
            max(d["first_ns"], st_ns)
    last = ex_ns if ex_ns is not None else end
    if last is not None:
        if end is not None:
            last = min(last, end)
        d["last_ns"] = max(d["last_ns"], last) if d.get("last_ns") else last


def _ns(v: Any) -> int | None:
    """A timestamp from pyarrow's to_pylist (datetime or int) -> ns since the epoch."""
    if v is None:
        return None
    if isinstance(v, int):
        return v
    try:
        return int(v.timestamp() * 1e9) if not hasattr(v, "value") else int(v.value)
    except (AttributeError, OverflowError, ValueError):
        return None
