"""Live OpenMetrics/Prometheus endpoint, fed once per interval by the collector thread.

Use::

    exporter = MetricsExporter(":9464")     # loopback unless an address is given
    exporter.start()                         # serves http://127.0.0.1:9464/metrics
    for interval in source: exporter.update(interval, meta)
    exporter.close()

The endpoint is `prometheus_client`'s own HTTP server on a private `CollectorRegistry`
(content negotiation gives OpenMetrics to clients that ask for it). Each scrape returns
cumulative counters (since the exporter started) and the latest interval's gauges.

Metrics (all names start with ``iolens_``):

I/O, labelled by the series labels below:
    io_ops_total, io_bytes_total, io_errors_total   counters
    io_time_seconds_total                           counter: summed syscall latency
I/O latency, labelled by the histogram labels below (no file paths: histograms cost ~37
samples per series, so files are grouped by file class; network peers keep their label):
    io_latency_seconds                              histogram (_bucket/_count/_sum)
Per process (labels comm, role, rank), latest interval:
    io_wait_fraction   summed syscall latency / interval length (above 1 when several
                       threads wait at once)
From the optional probes, when they ran (labels device, op / peer / device):
    block_ops_total, block_bytes_total, block_time_seconds_total    counters
    tcp_retransmits_total{peer}        counter (top_n peers by retransmits, rest `other`)
    gpu_utilization, gpu_memory_utilization                           gauges, 0..1
Collector health:
    lost_events_total, agg_overflow_total, fd_overflow_total, collector_cpu_seconds_total,
    intervals_total, export_errors_total                     counters
    drain_seconds, collector_rss_bytes, keys, interval_seconds,
    last_interval_end_timestamp_seconds                      gauges (latest interval)
    folded_resources, folded_processes    how many were aggregated as `other` last interval
    probes{state="attached"|"skipped"}    number of probes; probe_skipped{probe} = 1 each
    info{host, kernel, mode, iolens_version} = 1

Series labels:
    comm        process name (empty when unknown)
    role        trainer, dataloader, rank, ... from the procs table (empty when unknown)
    rank        distributed RANK (empty when none)
    op          one of collector.schema.OPS
    kind        file, socket, pipe, device, other
    file_class  dataset, checkpoint, weights, log, other (empty for non-files)
    resource    absolute path, or peer (tcp:IP:PORT, udp:..., unix:PATH)
Histogram labels: the same, with ``peer`` (the resource of socket operations, empty for
everything else) in place of ``resource``.

Bounded cardinality: in each interval only the `top_n` resources and the `top_n` processes
(comm, role, rank) with the most summed latency (ties: most bytes) keep their own label
value; every other resource becomes ``resource="other"`` (keeping its op, kind, file_class
and process labels) and every other process ``comm="other", role="", rank=""``. Sums over
all series therefore stay exact. A series not updated for `retain_intervals` (300) intervals is
dropped (a later return starts from 0, which `rate()` reads as a counter reset), so the
number of series stays bounded over a long run too.

Latency buckets come straight from the in-kernel log2 histogram: bucket i holds
[2^i, 2^(i+1)) ns, so its upper bound is ``le = 2^(i+1) ns`` in seconds (2e-09 ... 34.36 s);
the kernel's last bucket also counts everything above, so it only appears in ``+Inf``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from wsgiref.simple_server import make_server

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler
from prometheus_client.metrics_core import Metric

from iolens.analysis.export import ExportError
from iolens.analysis.metrics import hist_matrix, rollup
from iolens.collector.capture import CaptureMeta
from iolens.collector.schema import LAT_BUCKETS
from iolens.collector.sources import Interval

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464
OTHER = "other"
SERIES_LABELS = ("comm", "role", "rank", "op", "kind", "file_class", "resource")
HIST_LABELS = ("comm", "role", "rank", "op", "kind", "file_class", "peer")
PROC_LABELS = ("comm", "role", "rank")
#: upper bounds (seconds) of the kernel buckets 0 .. LAT_BUCKETS-2; the last one is +Inf.
LE_SECONDS = [2.0 ** (i + 1) / 1e9 for i in range(LAT_BUCKETS - 1)]
_LE_TEXT = [repr(le) for le in LE_SECONDS]
# Cumulative vectors, keyed by (family tag, *labels): "c" counters = count, bytes, errors,
# lat_sum_ns; "h" histograms = lat_sum_ns, then the LAT_BUCKETS kernel buckets.
_COUNTER, _HIST = "c", "h"
# ... and from the optional probes: "b" block (device, op) = count, bytes, lat_sum_ns;
# "t" TCP (peer) = retransmits.
_BLOCK, _TCP = "b", "t"
_HEALTH_COUNTERS = {  # health field -> metric name (without _total), help
    "lost_events": ("iolens_lost_events", "Events lost to a full ring buffer."),
    "agg_overflow": ("iolens_agg_overflow", "Operations not counted: kernel map full."),
    "fd_overflow": ("iolens_fd_overflow", "Opens not tracked: fd map full."),
    "collector_cpu_s": ("iolens_collector_cpu_seconds", "CPU time used by iolens."),
}


def parse_address(address: str | None) -> tuple[str, int]:
    """'HOST:PORT', ':PORT', 'PORT', '[V6]:PORT' or ''/None -> (host, port).

    An empty host means loopback (127.0.0.1), never all interfaces; port 0 picks a free
    port. Raises ValueError with a one-line message for anything else.
    """
    text = (address or "").strip()
    if not text:
        return DEFAULT_HOST, DEFAULT_PORT
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid metrics address {address!r} (expected [V6ADDR]:PORT)")
        port_text = rest[1:] if rest else str(DEFAULT_PORT)
    elif text.isdigit():
        host, port_text = "", text
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif ":" in text:
        raise ValueError(f"invalid metrics address {address!r} (write IPv6 as [ADDR]:PORT)")
    else:
        host, port_text = text, str(DEFAULT_PORT)
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"invalid metrics address {address!r}: port must be 0-65535")
    return host or DEFAULT_HOST, int(port_text)


@dataclass
class _Totals:
    """Everything a scrape shows; mutated only under the exporter's lock."""

    series: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict)
    last_seen: dict[tuple[str, ...], int] = field(default_factory=dict)
    wait: dict[tuple[str, ...], float] = field(default_factory=dict)
    gpu: dict[str, tuple[float, float]] = field(default_factory=dict)
    health_totals: dict[str, float] = field(default_factory=dict)
    health_last: dict[str, float] = field(default_factory=dict)
    intervals: int = 0
    interval_s: float = 0.0
    last_end_s: float = 0.0
    folded_resources: int = 0
    folded_processes: int = 0
    export_errors: int = 0
    meta: CaptureMeta | None = None


class MetricsExporter:
    """Serves iolens metrics over HTTP; `update` is cheap and thread-safe.

    Raises ExportError (one line for the user) for a bad address here, and from `start()`
    when the address cannot be bound.

    Args:
        address: see `parse_address` (default 127.0.0.1:9464).
        top_n: resources and processes per interval that keep their own label value.
        retain_intervals: drop series not updated for this many intervals.
    Attributes:
        host, port: where it listens (port is the real one once started, also for port 0).
        registry: the private CollectorRegistry (for tests or embedding).
    """

    def __init__(self, address: str = "127.0.0.1:9464", top_n: int = 20,
                 retain_intervals: int = 300) -> None:
        try:
            self.host, self.port = parse_address(address)
        except ValueError as exc:
            raise ExportError(str(exc)) from None
        if top_n < 1:
            raise ExportError("metrics top_n must be at least 1")
        self.top_n = top_n
        self.retain_intervals = retain_intervals
        self._lock = threading.Lock()         # guards self._t (scrapes vs updates)
        self._update_lock = threading.Lock()  # serialises updates (and the pid map)
        self._t = _Totals()
        self._proc_info: dict[int, tuple[str, str]] = {}  # pid -> (role, rank)
        self._server = None
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start serving /metrics in a daemon thread. Raises ExportError (one line)."""
        if self._server is not None:
            return
        try:
            self._server = _make_server(self.host, self.port, self.registry)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ExportError(f"cannot serve metrics on {self.host}:{self.port}: {reason}") \
                from None
        self.port = int(self._server.server_address[1])
        # A short poll interval so close() returns promptly (the default waits up to 0.5 s).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="iolens-metrics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> MetricsExporter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    # --- feeding ------------------------------------------------------------------------

    def update(self, interval: Interval, meta: CaptureMeta) -> None:
        """Fold one interval into the totals (called once per interval, any thread).

        Never raises: it runs on the collector thread, and a metrics problem must not stop
        a recording. A failure is counted in `iolens_export_errors_total` and kept in
        `last_error`; that interval is left out of the metrics.
        """
        with self._update_lock:
            try:
                self._remember_procs(interval.table("procs"))
                length = interval.interval_s or float(interval.health.get("interval_s") or 0) \
                    or meta.interval_s
                agg = _aggregate(interval.table("io"), self._proc_info, self.top_n, length)
                _add_optional(agg, interval, self.top_n)
            except Exception as exc:  # noqa: BLE001 - see the docstring
                self.last_error = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self._t.export_errors += 1
                return
            with self._lock:
                self._merge(agg, interval, meta, length)

    def _remember_procs(self, procs: pa.Table) -> None:
        """Keep pid -> (role, rank) from process observations (latest wins)."""
        if procs.num_rows == 0:
            return
        last = procs.select(["ts", "pid", "role", "rank"]).sort_by("ts") \
            .group_by("pid", use_threads=False).aggregate([("role", "last"), ("rank", "last")])
        for pid, role, rank in zip(*(last.column(n).to_pylist()  # one per process
                                     for n in ("pid", "role_last", "rank_last"))):
            if role is not None or rank is not None or pid not in self._proc_info:
                self._proc_info[pid] = (role or "", "" if rank is None else str(rank))
        if len(self._proc_info) > 65536:  # pids recycle; forget the oldest half
            for pid in list(self._proc_info)[:32768]:
                del self._proc_info[pid]

    def _merge(self, agg: _Aggregate, interval: Interval, meta: CaptureMeta,
               length: float) -> None:
        t = self._t
        t.intervals += 1
        for key, vec in zip(agg.keys, agg.values):
            cur = t.series.get(key)
            if cur is None:
                t.series[key] = vec.copy()
            else:
                cur += vec
            t.last_seen[key] = t.intervals
        stale = [k for k, seen in t.last_seen.items()
                 if t.intervals - seen >= self.retain_intervals]
        for k in stale:
            del t.series[k], t.last_seen[k]
        t.wait = agg.wait
        t.gpu = agg.gpu
        h = interval.health
        for name in _HEALTH_COUNTERS:
            t.health_totals[name] = t.health_totals.get(name, 0.0) + float(h.get(name) or 0)
        if h:
            t.health_last = {k: float(v) for k, v in h.items()
                             if isinstance(v, (int, float))}
        t.interval_s = length
        t.last_end_s = interval.end_ns / 1e9
        t.folded_resources = agg.folded_resources
        t.folded_processes = agg.folded_processes
        t.meta = meta

    def snapshot(self) -> _Totals:
        """A consistent copy of the totals (what one scrape shows)."""
        with self._lock:
            t = self._t
            return _Totals(series={k: v.copy() for k, v in t.series.items()},
                           wait=dict(t.wait), gpu=dict(t.gpu), health_totals=dict(t.health_totals),
                           health_last=dict(t.health_last), intervals=t.intervals,
                           interval_s=t.interval_s, last_end_s=t.last_end_s,
                           folded_resources=t.folded_resources,
                           folded_processes=t.folded_processes,
                           export_errors=t.export_errors, meta=t.meta)


def _make_server(host: str, port: int, registry: CollectorRegistry) -> ThreadingWSGIServer:
    """prometheus_client's WSGI app on its threading server, bound to (host, port).

    Like `prometheus_client.start_http_server`, but the caller runs the loop (so it can
    choose the poll interval) and IPv6 hosts get an IPv6 socket.
    """
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                flags=socket.AI_PASSIVE)[0][0]

    class _Server(ThreadingWSGIServer):
        address_family = family

    return make_server(host, port, make_wsgi_app(registry), _Server,
                       handler_class=_SilentHandler)


# --- per-interval aggregation (no locks held) -----------------------------------------------

@dataclass
class _Aggregate:
    keys: list[tuple[str, ...]]       # (family tag, *labels)
    values: list[np.ndarray]          # per key, see _COUNTER / _HIST
    wait: dict[tuple[str, ...], float]
    folded_resources: int
    folded_processes: int
    gpu: dict[str, tuple[float, float]] = field(default_factory=dict)


def _aggregate(io: pa.Table, proc_info: dict[int, tuple[str, str]], top_n: int,
               length: float) -> _Aggregate:
    """One interval's io rows -> one value vector per counter series (tag "c", labels
    SERIES_LABELS) and per histogram series (tag "h", labels HIST_LABELS)."""
    if io.num_rows == 0:
        return _Aggregate([], [], {}, 0, 0)
    t = _label_table(io, proc_info)
    t, folded_res = _fold_top(t, ["resource"], top_n)
    t, folded_proc = _fold_top(t, list(PROC_LABELS), top_n)
    per = rollup(t, SERIES_LABELS, window_s=length)
    keys = [(_COUNTER, *k) for k in zip(*(per.column(c).to_pylist() for c in SERIES_LABELS))]
    values = list(np.column_stack([np.asarray(per.column(c), dtype=np.int64)
                                   for c in ("count", "bytes", "errors", "lat_sum_ns")]))
    is_socket = pc.equal(t.column("kind"), "socket")
    peer = pc.if_else(is_socket, t.column("resource"), pa.scalar("", pa.string()))
    lat = rollup(t.append_column("peer", peer), HIST_LABELS, window_s=length)
    has_hist = np.asarray(pc.greater(pc.list_value_length(lat.column("lat_hist")), 0))
    hist = hist_matrix(lat.column("lat_hist"), LAT_BUCKETS)
    # Latency not measured (--no-latency counts only): no histogram series at all.
    keep = np.flatnonzero(has_hist & (hist.sum(axis=1) > 0))
    hkeys = list(zip(*(lat.column(c).to_pylist() for c in HIST_LABELS)))
    lat_sum = np.asarray(lat.column("lat_sum_ns"), dtype=np.int64)
    for i in keep.tolist():
        keys.append((_HIST, *hkeys[i]))
        values.append(np.concatenate([[lat_sum[i]], hist[i]]))
    procs = rollup(t, PROC_LABELS, window_s=length)
    wait = dict(zip(zip(*(procs.column(c).to_pylist() for c in PROC_LABELS)),
                    procs.column("io_frac").to_pylist()))
    return _Aggregate(keys, values, wait, folded_res, folded_proc)


def _add_optional(agg: _Aggregate, interval: Interval, top_n: int) -> None:
    """Fold the optional probes' tables (block, tcp, gpu) of one interval into `agg`."""
    block = interval.table("block")
    if block.num_rows:
        g = block.group_by(["device", "op"]).aggregate(
            [("count", "sum"), ("bytes", "sum"), ("lat_sum_ns", "sum")])
        vals = np.column_stack([np.asarray(g.column(c).fill_null(0), dtype=np.int64)
                                for c in ("count_sum", "bytes_sum", "lat_sum_ns_sum")])
        agg.keys += [(_BLOCK, d, o) for d, o in zip(g.column("device").to_pylist(),
                                                     g.column("op").to_pylist())]
        agg.values += list(vals)
    tcp = interval.table("tcp")
    if tcp.num_rows:
        t = pa.table({"resource": tcp.column("resource").fill_null(""),
                      "lat_sum_ns": tcp.column("retransmits").fill_null(0),
                      "bytes": tcp.column("segs_out").fill_null(0)})
        t, _ = _fold_top(t, ["resource"], top_n)  # peers ranked by retransmits
        g = t.group_by("resource").aggregate([("lat_sum_ns", "sum")])
        agg.keys += [(_TCP, peer) for peer in g.column("resource").to_pylist()]
        agg.values += list(np.asarray(g.column("lat_sum_ns_sum"), dtype=np.int64)[:, None])
    gpu = interval.table("gpu")
    if gpu.num_rows:
        whole = gpu.filter(pc.is_null(gpu.column("pid")))  # device-wide samples
        g = (whole if whole.num_rows else gpu).group_by("device").aggregate(
            [("util", "mean"), ("mem_util", "mean")])
        agg.gpu = {str(d): (u, m) for d, u, m in zip(*(g.column(c).to_pylist() for c in
                                                       ("device", "util_mean", "mem_util_mean")))}


def _label_table(io: pa.Table, proc_info: dict[int, tuple[str, str]]) -> pa.Table:
    """io rows -> label columns (strings, '' for unknown) plus the value columns rollup needs."""
    pids = np.asarray(io.column("pid").fill_null(0), dtype=np.int64)
    uniq, inv = np.unique(pids, return_inverse=True)
    info = [proc_info.get(int(p), ("", "")) for p in uniq]  # one lookup per process
    role = np.array([r for r, _ in info], dtype=object)[inv]
    rank = np.array([k for _, k in info], dtype=object)[inv]

    def text(name: str) -> pa.ChunkedArray:
        return io.column(name).fill_null("")

    cols = {"comm": text("comm"), "role": pa.array(role, pa.string()),
            "rank": pa.array(rank, pa.string()), "op": text("op"), "kind": text("kind"),
            "file_class": text("file_class"), "resource": text("resource")}
    for name in ("count", "bytes", "errors", "lat_sum_ns", "lat_max_ns", "lat_hist"):
        cols[name] = io.column(name)
    return pa.table(cols)


def _fold_top(t: pa.Table, keys: list[str], top_n: int) -> tuple[pa.Table, int]:
    """Keep the `top_n` key values with most summed latency (then bytes); the rest -> other.

    For a composite key the first column becomes 'other' and the others ''.
    Returns the table and how many distinct key values were folded.
    """
    if len(keys) == 1:
        key = t.column(keys[0])
    else:
        key = pc.binary_join_element_wise(*(t.column(k) for k in keys), "\x00")
    ranked = pa.table({"k": key, "lat": t.column("lat_sum_ns"), "b": t.column("bytes")}) \
        .group_by("k").aggregate([("lat", "sum"), ("b", "sum")])
    if ranked.num_rows <= top_n:
        return t, 0
    ranked = ranked.sort_by([("lat_sum", "descending"), ("b_sum", "descending"),
                             ("k", "ascending")])
    keep = pc.is_in(key, value_set=ranked.column("k").slice(0, top_n).combine_chunks())
    for i, name in enumerate(keys):
        folded = OTHER if i == 0 else ""
        col = pc.if_else(keep, t.column(name), pa.scalar(folded, pa.string()))
        t = t.set_column(t.schema.get_field_index(name), name, col)
    return t, ranked.num_rows - top_n


# --- scrape side ------------------------------------------------------------------------

class _Collector:
    """prometheus_client custom collector: builds the families from one snapshot."""

    def __init__(self, exporter: MetricsExporter) -> None:
        self.exporter = exporter

    def collect(self) -> Iterator[Metric]:
        t = self.exporter.snapshot()
        yield from _io_families(t)
        yield from _health_families(t)


def _io_families(t: _Totals) -> Iterator[Metric]:
    labels = list(SERIES_LABELS)
    ops = CounterMetricFamily("iolens_io_ops", "I/O operations completed.", labels=labels)
    nbytes = CounterMetricFamily("iolens_io_bytes", "Bytes moved by successful operations.",
                                 labels=labels)
    errors = CounterMetricFamily("iolens_io_errors", "Failed operations.", labels=labels)
    busy = CounterMetricFamily("iolens_io_time_seconds", "Time spent inside I/O syscalls "
                               "(summed latency).", labels=labels)
    lat = HistogramMetricFamily("iolens_io_latency_seconds",
                                "Syscall latency (in-kernel log2 buckets).",
                                labels=list(HIST_LABELS))
    for (tag, *key), vec in t.series.items():
        if tag in (_BLOCK, _TCP):
            continue
        if tag == _COUNTER:
            ops.add_metric(key, float(vec[0]))
            nbytes.add_metric(key, float(vec[1]))
            errors.add_metric(key, float(vec[2]))
            busy.add_metric(key, float(vec[3]) / 1e9)
            continue
        cum = np.cumsum(vec[1:]).tolist()
        buckets = [(le, float(c)) for le, c in zip(_LE_TEXT, cum[:-1])]
        buckets.append(("+Inf", float(cum[-1])))
        lat.add_metric(key, buckets, sum_value=float(vec[0]) / 1e9)
    wait = GaugeMetricFamily("iolens_io_wait_fraction",
                             "Share of the last interval spent inside I/O syscalls, per "
                             "process (summed over threads).", labels=list(PROC_LABELS))
    for key, frac in t.wait.items():
        wait.add_metric(key, float(frac))
    yield from (ops, nbytes, errors, busy, lat, wait)
    yield from _optional_families(t)


def _optional_families(t: _Totals) -> Iterator[Metric]:
    """Block devices, TCP retransmits and GPU utilisation, when those probes ran."""
    dev = ["device", "op"]
    fams = {
        "ops": CounterMetricFamily("iolens_block_ops", "Block requests completed.", labels=dev),
        "bytes": CounterMetricFamily("iolens_block_bytes", "Bytes moved by block requests.",
                                     labels=dev),
        "time": CounterMetricFamily("iolens_block_time_seconds", "Block request time, issue "
                                    "to completion, summed.", labels=dev),
    }
    retrans = CounterMetricFamily("iolens_tcp_retransmits", "TCP segments retransmitted.",
                                  labels=["peer"])
    for (tag, *key), vec in t.series.items():
        if tag == _BLOCK:
            fams["ops"].add_metric(key, float(vec[0]))
            fams["bytes"].add_metric(key, float(vec[1]))
            fams["time"].add_metric(key, float(vec[2]) / 1e9)
        elif tag == _TCP:
            retrans.add_metric(key, float(vec[0]))
    util = GaugeMetricFamily("iolens_gpu_utilization", "GPU utilisation 0..1, last interval.",
                             labels=["device"])
    mem = GaugeMetricFamily("iolens_gpu_memory_utilization", "GPU memory utilisation 0..1, "
                            "last interval.", labels=["device"])
    for device, (u, m) in t.gpu.items():
        if u is not None:
            util.add_metric([device], float(u))
        if m is not None:
            mem.add_metric([device], float(m))
    yield from (*fams.values(), retrans, util, mem)


def _health_families(t: _Totals) -> Iterator[Metric]:
    for field_name, (name, doc) in _HEALTH_COUNTERS.items():
        yield CounterMetricFamily(name, doc, value=t.health_totals.get(field_name, 0.0))
    yield CounterMetricFamily("iolens_intervals", "Intervals exported.", value=t.intervals)
    yield CounterMetricFamily("iolens_export_errors", "Intervals the exporter failed to "
                              "process (left out of the metrics).", value=t.export_errors)
    last = t.health_last
    gauges = [
        ("iolens_drain_seconds", "Time to drain the kernel maps, last interval.",
         last.get("drain_ms", 0.0) / 1e3),
        ("iolens_collector_rss_bytes", "Resident memory of the collector.",
         last.get("collector_rss_bytes", 0.0)),
        ("iolens_keys", "Aggregation keys drained, last interval.", last.get("keys", 0.0)),
        ("iolens_interval_seconds", "Length of the last interval.", t.interval_s),
        ("iolens_last_interval_end_timestamp_seconds", "Wall-clock end of the last interval.",
         t.last_end_s),
        ("iolens_folded_resources", "Resources aggregated as resource=\"other\", last "
         "interval.", t.folded_resources),
        ("iolens_folded_processes", "Processes aggregated as comm=\"other\", last interval.",
         t.folded_processes),
    ]
    for name, doc, value in gauges:
        yield GaugeMetricFamily(name, doc, value=float(value))
    meta = t.meta
    if meta is None:
        return
    probes = GaugeMetricFamily("iolens_probes", "Probes by state.", labels=["state"])
    probes.add_metric(["attached"], len(meta.probes_attached))
    probes.add_metric(["skipped"], len(meta.probes_skipped))
    yield probes
    skipped = GaugeMetricFamily("iolens_probe_skipped", "1 for each probe that did not load "
                                "(reason: `iolens doctor`).", labels=["probe"])
    for probe in sorted(meta.probes_skipped):
        skipped.add_metric([probe], 1)
    yield skipped
    info = GaugeMetricFamily("iolens_info", "Collector information.",
                             labels=["host", "kernel", "mode", "iolens_version"])
    info.add_metric([meta.host, meta.kernel, meta.mode, meta.iolens_version], 1)
    yield info
