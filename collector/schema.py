"""The one schema of an iolens capture, shared by collector, TUI and analysis.

A capture is a directory::

    DIR/capture.json          metadata (see `CaptureMeta` in collector/capture.py)
    DIR/<table>/part-NNNNNN.parquet   one folder per table below; files are complete when
                                      renamed from `*.parquet.tmp`

Every table stores raw per-interval *deltas* (never rates); rates and percentiles are derived
on read by `iolens.analysis.metrics`. Each field carries its unit in field metadata
(`unit`), and each file carries `iolens.schema_version` and `iolens.table` in its key-value
metadata. Readers refuse an unknown major version with a clear message.

Strings that come from the kernel (paths, comms, command lines) may hold any bytes. They are
stored as UTF-8 text, reversibly escaped by `escape_bytes`: a backslash becomes ``\\\\`` and
each byte that is not part of valid UTF-8 becomes ``\\xNN``; newlines, tabs and quotes are kept
as they are. `unescape_str` gives the original bytes back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pyarrow as pa

SCHEMA_VERSION = 1
META_VERSION_KEY = b"iolens.schema_version"
META_TABLE_KEY = b"iolens.table"

#: latency histogram buckets: bucket i counts latencies in [2^i, 2^(i+1)) ns; the last bucket
#: also holds everything above. Stored lists may be shorter (trailing zero buckets trimmed).
LAT_BUCKETS = 36
#: size histogram buckets: bucket i counts data ops moving [2^i, 2^(i+1)) bytes (bucket 0 also
#: holds 0-byte ops); the last bucket also holds everything above (>= 8 MiB).
SIZE_BUCKETS = 24

#: `io.op` values (exact words of the contract).
OPS = ("read", "write", "open", "close", "fsync", "stat", "mmap", "send", "recv", "connect",
       "accept", "other", "poll")
#: `io.kind` values.
KINDS = ("file", "socket", "pipe", "device", "other")

TS = pa.timestamp("ns", tz="UTC")


def _f(name: str, typ: pa.DataType, unit: str | None = None, nullable: bool = True,
       doc: str = "") -> pa.Field:
    """A field with its unit and description in the field metadata."""
    meta = {}
    if unit:
        meta["unit"] = unit
    if doc:
        meta["doc"] = doc
    return pa.field(name, typ, nullable=nullable, metadata=meta or None)


IO = pa.schema([
    _f("ts", TS, "ns", False, "interval start, wall clock"),
    _f("interval_s", pa.float64(), "s", False, "interval length"),
    _f("host", pa.string(), None, False, "hostname"),
    _f("pid", pa.int32(), None, False, "host pid (thread group id)"),
    _f("tid", pa.int32(), None, True, "thread id, null when aggregated per process"),
    _f("comm", pa.string(), None, True, "process name"),
    _f("op", pa.string(), None, False,
       "one of OPS; poll = time a thread waited for readiness in poll/select/epoll_wait"),
    _f("kind", pa.string(), None, False, "file, socket, pipe, device, other"),
    _f("resource", pa.string(), None, True,
       "absolute path; tcp:IP:PORT / udp:IP:PORT / unix:PATH peer for sockets"),
    _f("count", pa.int64(), "ops", False, "operations completed"),
    _f("bytes", pa.int64(), "bytes", False, "bytes transferred by successful ops"),
    _f("errors", pa.int64(), "ops", False, "failed operations"),
    _f("lat_sum_ns", pa.int64(), "ns", False, "summed latency"),
    _f("lat_max_ns", pa.int64(), "ns", False, "max latency"),
    _f("lat_hist", pa.list_(pa.int64()), "ops", False, "log2 latency histogram, bucket i = [2^i, 2^(i+1)) ns"),
    # --- beyond the contract ---
    _f("syscall", pa.string(), None, False, "the syscall that did the op (read, pread64, sendto...)"),
    _f("fd", pa.int32(), None, True, "file descriptor number (last seen)"),
    _f("size_hist", pa.list_(pa.int64()), "ops", True,
       "log2 histogram of bytes per data op, bucket i = [2^i, 2^(i+1)) bytes"),
    _f("random_ops", pa.int64(), "ops", True,
       "positional ops (pread/pwrite...) whose offset was not the previous op's end"),
    _f("file_class", pa.string(), None, True, "dataset, checkpoint, weights, log, other"),
    _f("cgroup_id", pa.int64(), None, True, "cgroup v2 id of the process"),
    _f("grain", pa.string(), None, True,
       "what the row aggregates: file (one file or connection), dir (ops of files in the "
       "directory `resource` ends with '/' that had no room for rows of their own), proc (ops "
       "of the process with no room even for their directory); null in older captures = file"),
])

#: `io.grain` values
GRAINS = ("file", "dir", "proc")

PROCS = pa.schema([
    _f("ts", TS, "ns", False, "when this observation was made"),
    _f("host", pa.string(), None, False),
    _f("pid", pa.int32(), None, False, "host pid"),
    _f("ppid", pa.int32(), None, True),
    _f("comm", pa.string(), None, True),
    _f("cmdline", pa.string(), None, True, "arguments joined by spaces (each escaped)"),
    _f("exe", pa.string(), None, True),
    _f("start_time", TS, "ns", True, "process start, wall clock"),
    _f("exit_time", TS, "ns", True, "process exit, when seen"),
    _f("cgroup", pa.string(), None, True, "cgroup path (v2 if set, else the first v1 one)"),
    _f("cgroup_id", pa.int64(), None, True),
    _f("container_id", pa.string(), None, True, "docker/containerd/podman id or pod uid"),
    _f("ns_pid", pa.int32(), None, True, "pid inside its pid namespace"),
    _f("role", pa.string(), None, True, "trainer, dataloader, rank, inference-server, ..."),
    _f("rank", pa.int32(), None, True, "distributed RANK from the environment"),
])

EVENTS = pa.schema([
    _f("ts", TS, "ns", False, "event time, wall clock"),
    _f("host", pa.string(), None, False),
    _f("pid", pa.int32(), None, False),
    _f("tid", pa.int32(), None, True),
    _f("comm", pa.string(), None, True),
    _f("type", pa.string(), None, False,
       "open, close, socket, connect, accept, fork, exec, exit, slow, lost"),
    _f("op", pa.string(), None, True, "io op for slow events"),
    _f("syscall", pa.string(), None, True),
    _f("kind", pa.string(), None, True),
    _f("resource", pa.string(), None, True, "path or peer"),
    _f("fd", pa.int32(), None, True),
    _f("ret", pa.int64(), None, True, "syscall return value (negative errno on error)"),
    _f("lat_ns", pa.int64(), "ns", True, "duration for slow events"),
    _f("bytes", pa.int64(), "bytes", True),
    _f("detail", pa.string(), None, True, "ppid for fork, filename for exec, ..."),
])

HEALTH = pa.schema([
    _f("ts", TS, "ns", False, "interval start"),
    _f("interval_s", pa.float64(), "s", False),
    _f("host", pa.string(), None, False),
    _f("io_rows", pa.int64(), "rows", False),
    _f("event_rows", pa.int64(), "rows", False),
    _f("lost_events", pa.int64(), "events", False, "ring-buffer reserve failures"),
    _f("agg_overflow", pa.int64(), "ops", False, "ops not counted because a kernel map was full"),
    _f("fd_overflow", pa.int64(), "fds", False, "opens not tracked because the fd map was full"),
    _f("target_overflow", pa.int64(), "processes", True,
       "descendants not followed because the target map was full"),
    _f("drain_ms", pa.float64(), "ms", False, "time to read and clear the kernel maps"),
    _f("collector_cpu_s", pa.float64(), "s", False, "CPU time iolens used in the interval"),
    _f("collector_rss_bytes", pa.int64(), "bytes", False),
    _f("keys", pa.int64(), "keys", False, "aggregation keys drained"),
    _f("ops", pa.int64(), "ops", True, "operations counted in the interval (all grains)"),
    _f("folded_dir", pa.int64(), "ops", True,
       "ops counted in a directory row because the file-grain map was full"),
    _f("folded_proc", pa.int64(), "ops", True,
       "ops counted in a per-process row because there was no room for their directory"),
    _f("new_files", pa.int64(), "files", True, "files whose path arrived in the interval"),
    _f("newfile_lost", pa.int64(), "files", True,
       "new files whose path could not be handed over (their rows have no resource)"),
    _f("events", pa.int64(), "events", True, "ring-buffer events handled in the interval"),
    _f("event_backlog", pa.int64(), "cycles", True,
       "poll cycles that stopped at the per-cycle event budget (events left for later)"),
    _f("unresolved_ops", pa.int64(), "ops", True,
       "ops in rows whose file or peer could not be named"),
])

CPU = pa.schema([
    _f("ts", TS, "ns", False, "interval start"),
    _f("interval_s", pa.float64(), "s", False),
    _f("host", pa.string(), None, False),
    _f("pid", pa.int32(), None, False, "host pid (thread group id)"),
    _f("tid", pa.int32(), None, False, "thread id"),
    _f("comm", pa.string(), None, True, "thread name"),
    _f("cpu_ns", pa.int64(), "ns", False, "time on a CPU in the interval (schedstat)"),
    _f("runq_ns", pa.int64(), "ns", True,
       "time runnable but waiting for a CPU in the interval (CPU contention)"),
    _f("slices", pa.int64(), "timeslices", True, "times the thread was scheduled in"),
])

# --- tables of the optional probes (block layer, page cache, mmap faults, TCP, GPU) ----------
# Rows exist only when the probe attached; capture.json's probes_skipped says why otherwise.

BLOCK = pa.schema([
    _f("ts", TS, "ns", False, "interval start"),
    _f("interval_s", pa.float64(), "s", False),
    _f("host", pa.string(), None, False),
    _f("device", pa.string(), None, False, "device name, e.g. vda (or MAJ:MIN if unknown)"),
    _f("dev", pa.string(), None, True, "MAJOR:MINOR"),
    _f("op", pa.string(), None, False, "read, write, flush, discard, other"),
    _f("count", pa.int64(), "requests", False, "requests completed"),
    _f("bytes", pa.int64(), "bytes", False),
    _f("errors", pa.int64(), "requests", True),
    _f("lat_sum_ns", pa.int64(), "ns", False, "issue -> completion, summed"),
    _f("lat_max_ns", pa.int64(), "ns", False),
    _f("lat_hist", pa.list_(pa.int64()), "requests", False, "log2 ns, as io.lat_hist"),
    _f("size_hist", pa.list_(pa.int64()), "requests", True, "log2 bytes, as io.size_hist"),
    _f("seq_count", pa.int64(), "requests", True, "requests starting where the previous ended"),
    _f("max_inflight", pa.int64(), "requests", True, "queue depth: most requests in flight"),
])

PAGECACHE = pa.schema([
    _f("ts", TS, "ns", False, "interval start"),
    _f("interval_s", pa.float64(), "s", False),
    _f("host", pa.string(), None, False),
    _f("pid", pa.int32(), None, False, "process whose access added the pages"),
    _f("comm", pa.string(), None, True),
    _f("resource", pa.string(), None, True, "absolute path (null: inode not resolved)"),
    _f("dev", pa.string(), None, True, "MAJOR:MINOR of the file's filesystem"),
    _f("ino", pa.int64(), None, True, "inode number"),
    _f("pages_added", pa.int64(), "pages", False, "read-side page-cache misses that inserted a page (pages created by writes excluded)"),
    _f("readahead_pages", pa.int64(), "pages", True),
    _f("dirtied_pages", pa.int64(), "pages", True,
       "pages dirtied (re-dirtying a cached large folio counts 1: the tracepoint has no size)"),
    _f("throttle_ns", pa.int64(), "ns", True, "time paused in balance_dirty_pages"),
    _f("size_bytes", pa.int64(), "bytes", True, "file size when known"),
    _f("page_bytes", pa.int64(), "bytes", True, "page size (usually 4096)"),
])

FAULTS = pa.schema([
    _f("ts", TS, "ns", False, "interval start"),
    _f("interval_s", pa.float64(), "s", False),
    _f("host", pa.string(), None, False),
    _f("pid", pa.int32(), None, False),
    _f("comm", pa.string(), None, True),
    _f("resource", pa.string(), None, True, "absolute path of the mapped file"),
    _f("faults", pa.int64(), "faults", False, "page faults on the file mapping that did I/O"),
    _f("pages", pa.int64(), "pages", True, "pages brought into the page cache by the faults"),
    _f("bytes", pa.int64(), "bytes", False, "bytes brought in by the faults"),
    _f("lat_sum_ns", pa.int64(), "ns", True, "time spent in those faults (null: unknown)"),
])

TCP = pa.schema([
    _f("ts", TS, "ns", False, "interval start"),
    _f("interval_s", pa.float64(), "s", False),
    _f("host", pa.string(), None, False),
    _f("pid", pa.int32(), None, True, "owning process when known"),
    _f("comm", pa.string(), None, True),
    _f("resource", pa.string(), None, False, "peer: tcp:IP:PORT"),
    _f("local", pa.string(), None, True, "local IP:PORT"),
    _f("retransmits", pa.int64(), "segments", False),
    _f("rcvq_full", pa.int64(), "events", True, "receive queue full / drops"),
    _f("segs_out", pa.int64(), "segments", True, "segments sent (null: no cheap hook on 6.x)"),
    _f("rtt_us", pa.float64(), "us", True, "smoothed RTT (mean of samples)"),
    _f("connects", pa.int64(), "connections", True, "connections established"),
    _f("closes", pa.int64(), "connections", True, "connections closed"),
    _f("conn_ns_sum", pa.int64(), "ns", True, "lifetime of connections closed"),
    _f("bytes_sent", pa.int64(), "bytes", True, "socket-layer send lengths"),
    _f("bytes_received", pa.int64(), "bytes", True, "socket-layer receive lengths"),
])

GPU = pa.schema([
    _f("ts", TS, "ns", False, "sample time (interval start)"),
    _f("interval_s", pa.float64(), "s", False),
    _f("host", pa.string(), None, False),
    _f("device", pa.int32(), None, False, "NVML device index"),
    _f("uuid", pa.string(), None, True),
    _f("pid", pa.int32(), None, True, "process using the device (null: device-wide row)"),
    _f("util", pa.float64(), "fraction", True, "GPU utilisation 0..1"),
    _f("mem_util", pa.float64(), "fraction", True),
    _f("mem_used_bytes", pa.int64(), "bytes", True),
])

#: per interval, per traced process: open file descriptors and their limit (collector/fdstats.py)
FDS = pa.schema([
    _f("ts", TS, "ns", False, "interval start"),
    _f("interval_s", pa.float64(), "s", False),
    _f("host", pa.string(), None, False),
    _f("pid", pa.int32(), None, False),
    _f("comm", pa.string(), None, True),
    _f("open_fds", pa.int64(), "fds", False, "entries of /proc/PID/fd at the interval's end"),
    _f("fd_limit", pa.int64(), "fds", True,
       "soft RLIMIT_NOFILE from /proc/PID/limits (read once per process; null: unlimited "
       "or unreadable)"),
])

#: every table of a capture, by folder name.
TABLES: dict[str, pa.Schema] = {
    "io": IO,
    "procs": PROCS,
    "events": EVENTS,
    "health": HEALTH,
    "block": BLOCK,
    "pagecache": PAGECACHE,
    "faults": FAULTS,
    "tcp": TCP,
    "gpu": GPU,
    "cpu": CPU,
    "fds": FDS,
}


class SchemaError(ValueError):
    """A file is not an iolens table of a version this build understands."""


def with_file_metadata(schema: pa.Schema, table: str) -> pa.Schema:
    """Return `schema` carrying the iolens version and table name in its metadata."""
    meta = dict(schema.metadata or {})
    meta[META_VERSION_KEY] = str(SCHEMA_VERSION).encode()
    meta[META_TABLE_KEY] = table.encode()
    return schema.with_metadata(meta)


def check_file_schema(schema: pa.Schema, where: str) -> str:
    """Validate a Parquet file's schema metadata; return its table name.

    Raises SchemaError naming `where` when the file is foreign or of an unknown version.
    """
    meta = schema.metadata or {}
    if META_VERSION_KEY not in meta:
        raise SchemaError(f"{where}: not an iolens capture file (no {META_VERSION_KEY.decode()})")
    try:
        version = int(meta[META_VERSION_KEY].decode())
    except ValueError as exc:
        raise SchemaError(f"{where}: unreadable schema version {meta[META_VERSION_KEY]!r}") from exc
    if version != SCHEMA_VERSION:
        raise SchemaError(f"{where}: schema version {version}, this iolens reads version "
                          f"{SCHEMA_VERSION}")
    return meta.get(META_TABLE_KEY, b"").decode()


def empty_table(name: str) -> pa.Table:
    """An empty table of the named schema."""
    return TABLES[name].empty_table()


def to_table(name: str, columns: Mapping[str, object]) -> pa.Table:
    """Build a table of schema `name` from column lists/arrays; missing columns become nulls.

    Raises on a type mismatch rather than writing a file other tools cannot rely on.
    """
    schema = TABLES[name]
    n = None
    for v in columns.values():
        n = len(v)  # type: ignore[arg-type]
        break
    n = n or 0
    arrays = []
    for field in schema:
        if field.name in columns:
            arrays.append(pa.array(columns[field.name], type=field.type))
        else:
            arrays.append(pa.nulls(n, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


# --- reversible escaping of kernel bytes -------------------------------------------------------

def escape_bytes(raw: bytes) -> str:
    """Bytes from the kernel -> text: valid UTF-8 kept, ``\\`` doubled, other bytes ``\\xNN``."""
    try:  # fast path: the common case is valid UTF-8 without a backslash
        text = raw.decode("utf-8")
        if "\\" not in text:
            return text
    except UnicodeDecodeError:
        pass
    out: list[str] = []
    text = raw.decode("utf-8", errors="surrogateescape")
    for ch in text:
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0xDC80 <= o <= 0xDCFF:
            out.append(f"\\x{o - 0xDC00:02x}")
        else:
            out.append(ch)
    return "".join(out)


_UNESCAPE = re.compile(r"\\\\|\\x([0-9a-f]{2})")


def unescape_str(text: str) -> bytes:
    """Inverse of `escape_bytes`."""
    out = bytearray()
    pos = 0
    for m in _UNESCAPE.finditer(text):
        out += text[pos:m.start()].encode("utf-8")
        out += b"\\" if m.group(1) is None else bytes([int(m.group(1), 16)])
        pos = m.end()
    out += text[pos:].encode("utf-8")
    return bytes(out)


def markdown() -> str:
    """The schema as Markdown tables (docs/schema.md is generated from this)."""
    out = [f"Schema version {SCHEMA_VERSION}.\n"]
    for name, schema in TABLES.items():
        out.append(f"### `{name}`\n\n| column | type | unit | nullable | meaning |\n|---|---|---|---|---|")
        for f in schema:
            meta = f.metadata or {}
            unit = meta.get(b"unit", b"").decode()
            doc = meta.get(b"doc", b"").decode().replace("|", "\\|")
            out.append(f"| `{f.name}` | {f.type} | {unit} | {'yes' if f.nullable else 'no'} | {doc} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown())
