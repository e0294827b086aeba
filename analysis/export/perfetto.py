"""A capture -> Chrome trace-event JSON, which Perfetto UI and chrome://tracing open.

What the file holds (`{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}`,
ts/dur in microseconds counted from the start of the capture; the wall-clock origin is in
`otherData.origin_ns` / `otherData.origin_utc`):

- one process track per pid and one thread track per tid, named by "M" metadata events
  (`process_name` "comm [role rank N] (pid)", `thread_name` = the thread's comm);
- slow operations (events with type "slow") as complete "X" slices on their thread:
  start = completion time - lat_ns (the event's ts is when the syscall returned),
  dur = lat_ns, name = the op, args = op, syscall, kind, resource, fd, bytes, ret;
- per-interval counters ("C"): on each process, `bytes/s` (read, write, net) and
  `I/O wait` (fraction: summed syscall latency / interval); on the "iolens capture" track
  (pid SUMMARY_PID), capture-wide `bytes/s` and `lost events`; a counter falls to 0 for
  intervals where the process did nothing;
- from the optional probes, when they recorded data, on the "iolens capture" track:
  `GPU N` (util, mem_util 0..1, averaged per interval), `disk DEV bytes/s` (read, write)
  and `TCP retransmits`;
- findings (from `iolens.analysis.rules.run_rules`) as instant "i" events: on their
  culprit process when it is in the capture, else global; at the time their evidence
  names (`ts_ns`/`start_ns`), else where the culprit's I/O starts, else at 0.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iolens.analysis.export import ExportError
from iolens.analysis.metrics import NET_DATA_OPS
from iolens.collector.capture import Capture

#: pseudo process holding capture-wide counters and global findings (above any real pid).
SUMMARY_PID = 2**31 - 2
SUMMARY_NAME = "iolens capture"


def export_perfetto(capture: Capture, out_path: str | os.PathLike[str],
                    findings: Sequence[Any] | None = None, overwrite: bool = False) -> int:
    """Write `capture` as trace-event JSON to `out_path`; returns the number of events.

    findings: `Finding`s to show as instant events; None runs the analysis rules.
    Raises ExportError when the file exists (unless `overwrite`) or cannot be written.
    """
    if findings is None:
        from iolens.analysis.rules import run_rules
        findings = run_rules(capture.tables, capture.meta)
    trace = build_trace(capture, findings)
    _write_json(Path(out_path), trace, overwrite)
    return len(trace["traceEvents"])


def build_trace(capture: Capture, findings: Sequence[Any] = ()) -> dict[str, Any]:
    """The trace-event document of `capture` (see the module docstring)."""
    tables = capture.tables
    io, events, health, procs = (tables.get(n) for n in ("io", "events", "health", "procs"))
    slow = _slow_events(events)
    origin = _origin_ns(io, health, slow)
    names = _process_names(procs, io, slow)
    body: list[dict[str, Any]] = []
    body += _slices(slow, origin)
    body += _process_counters(io, health, origin)
    body += _summary_counters(io, health, origin)
    body += _device_counters(tables, io, health, origin)
    body += _finding_events(findings, origin, names, _first_seen(io))
    body.sort(key=lambda e: e["ts"])
    head = _metadata(names, slow, body)
    other = {"origin_ns": origin, "origin_utc": _iso(origin), "source": "iolens"}
    if capture.meta is not None:
        other.update(host=capture.meta.host, command=capture.meta.command,
                     complete=capture.meta.complete)
    return {"traceEvents": head + body, "displayTimeUnit": "ms", "otherData": other}


# --- inputs ---------------------------------------------------------------------------------

def _slow_events(events: pa.Table | None) -> pa.Table | None:
    if events is None or events.num_rows == 0:
        return None
    slow = events.filter(pc.equal(events.column("type"), "slow"))
    slow = slow.filter(pc.is_valid(slow.column("lat_ns")))
    return slow if slow.num_rows else None


def _ts_ns(t: pa.Table) -> np.ndarray:
    return np.asarray(t.column("ts").cast(pa.int64()), dtype=np.int64)


def _origin_ns(io: pa.Table | None, health: pa.Table | None, slow: pa.Table | None) -> int:
    """Earliest instant in the trace: first interval start or first slow op's start."""
    starts = []
    for t in (io, health):
        if t is not None and t.num_rows:
            starts.append(int(_ts_ns(t).min()))
    if slow is not None:
        lat = np.asarray(slow.column("lat_ns").fill_null(0), dtype=np.int64)
        starts.append(int((_ts_ns(slow) - lat).min()))
    return min(starts) if starts else 0


def _us(ns: np.ndarray | int, origin: int) -> np.ndarray:
    """Wall ns -> µs since origin, rounded to the ns (3 decimals)."""
    return np.round((np.asarray(ns, dtype=np.int64) - origin) / 1e3, 3)


def _interval_grid(io: pa.Table | None, health: pa.Table | None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct interval starts (ns) and their lengths (s)."""
    parts = [t.select(["ts", "interval_s"]) for t in (health, io) if t is not None and t.num_rows]
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0)
    both = pa.concat_tables(parts).group_by("ts").aggregate([("interval_s", "max")])
    both = both.sort_by("ts")
    length = np.asarray(both.column("interval_s_max").fill_null(0), dtype=np.float64)
    return _ts_ns(both), np.where(length > 0, length, 1.0)


# --- tracks and names -----------------------------------------------------------------------

def _process_names(procs: pa.Table | None, io: pa.Table | None,
                   slow: pa.Table | None) -> dict[int, str]:
    """pid -> display name 'comm [role rank N] (pid)', latest observation winning."""
    comm: dict[int, str] = {}
    extra: dict[int, str] = {}
    for t in (slow, io):  # fallbacks first so the procs table overrides them
        if t is not None and t.num_rows:
            g = t.group_by("pid").aggregate([("comm", "max")])
            comm.update(zip(g.column("pid").to_pylist(), g.column("comm_max").to_pylist()))
    if procs is not None and procs.num_rows:
        # Latest non-null observation per pid ("last" skips nulls; needs ordered groups).
        p = procs.select(["ts", "pid", "comm", "role", "rank"]).sort_by("ts") \
            .group_by("pid", use_threads=False) \
            .aggregate([("comm", "last"), ("role", "last"), ("rank", "last")])
        for pid, c, role, rank in zip(*(p.column(n).to_pylist() for n in
                                        ("pid", "comm_last", "role_last", "rank_last"))):
            if c:
                comm[pid] = c
            tag = " ".join(x for x in (role, None if rank is None else f"rank {rank}") if x)
            if tag:
                extra[pid] = tag
    out = {}
    for pid, c in comm.items():
        tag = f" [{extra[pid]}]" if pid in extra else ""
        out[pid] = f"{c or '?'}{tag} ({pid})"
    return out


def _metadata(names: dict[int, str], slow: pa.Table | None,
              body: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """process_name / thread_name events for every pid and tid that has an event."""
    pids = {e["pid"] for e in body}
    out = [{"ph": "M", "name": "process_name", "pid": SUMMARY_PID, "tid": 0, "ts": 0,
            "args": {"name": SUMMARY_NAME}},
           {"ph": "M", "name": "process_sort_index", "pid": SUMMARY_PID, "tid": 0, "ts": 0,
            "args": {"sort_index": -1}}]
    for pid in sorted(pids - {SUMMARY_PID}):
        out.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "ts": 0,
                    "args": {"name": names.get(pid, f"pid {pid}")}})
    if slow is not None:
        tid = pc.coalesce(slow.column("tid"), slow.column("pid"))
        g = pa.table({"pid": slow.column("pid"), "tid": tid, "comm": slow.column("comm")}) \
            .group_by(["pid", "tid"]).aggregate([("comm", "max")])
        for pid, t, c in zip(*(g.column(n).to_pylist() for n in ("pid", "tid", "comm_max"))):
            out.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": t, "ts": 0,
                        "args": {"name": f"{c or '?'} ({t})"}})
    return out


# --- events ---------------------------------------------------------------------------------

def _slices(slow: pa.Table | None, origin: int) -> list[dict[str, Any]]:
    """Slow operations as complete slices on their thread (tid, else the pid's main track)."""
    if slow is None:
        return []
    lat = np.asarray(slow.column("lat_ns"), dtype=np.int64)
    start = _us(_ts_ns(slow) - lat, origin).tolist()
    dur = np.round(lat / 1e3, 3).tolist()
    tid = pc.coalesce(slow.column("tid"), slow.column("pid")).to_pylist()
    cols = {n: slow.column(n).to_pylist()
            for n in ("pid", "op", "syscall", "kind", "resource", "fd", "bytes", "ret")}
    out = []
    for i in range(slow.num_rows):
        args = {n: cols[n][i] for n in ("op", "syscall", "kind", "resource", "fd", "bytes",
                                         "ret")}
        out.append({"ph": "X", "name": cols["op"][i] or cols["syscall"][i] or "slow",
                    "cat": "slow-io", "pid": cols["pid"][i], "tid": tid[i], "ts": start[i],
                    "dur": dur[i], "args": {k: v for k, v in args.items() if v is not None}})
    return out


def _process_counters(io: pa.Table | None, health: pa.Table | None,
                      origin: int) -> list[dict[str, Any]]:
    """Per process and interval: bytes/s (read, write, net) and the I/O wait fraction."""
    grid, length = _interval_grid(io, health)
    if io is None or io.num_rows == 0 or len(grid) == 0:
        return []
    pids = np.asarray(io.column("pid"), dtype=np.int64)
    upid, prow = np.unique(pids, return_inverse=True)
    icol = _cells(grid, _ts_ns(io))
    shape = (len(upid), len(grid))
    series = {
        "read": _matrix(io, prow, icol, shape, "bytes", ("read",)),
        "write": _matrix(io, prow, icol, shape, "bytes", ("write",)),
        "net": _matrix(io, prow, icol, shape, "bytes", NET_DATA_OPS),
    }
    rates = {k: v / length for k, v in series.items()}
    wait = _matrix(io, prow, icol, shape, "lat_sum_ns", None) / (length * 1e9)
    end = int(grid[-1] + length[-1] * 1e9)
    times = _us(np.append(grid, end), origin).tolist()
    out = []
    for r, pid in enumerate(upid.tolist()):
        out += _counter_run(pid, "bytes/s", times,
                            {k: np.append(v[r], 0.0) for k, v in rates.items()})
        out += _counter_run(pid, "I/O wait", times, {"fraction": np.append(wait[r], 0.0)})
    return out


def _summary_counters(io: pa.Table | None, health: pa.Table | None,
                      origin: int) -> list[dict[str, Any]]:
    """Capture-wide bytes/s (read, write, net) and lost events per interval."""
    grid, length = _interval_grid(io, health)
    if len(grid) == 0:
        return []
    end = int(grid[-1] + length[-1] * 1e9)
    times = _us(np.append(grid, end), origin).tolist()
    out = []
    if io is not None and io.num_rows:
        icol = _cells(grid, _ts_ns(io))
        zero = np.zeros(io.num_rows, dtype=np.int64)
        rates = {k: _matrix(io, zero, icol, (1, len(grid)), "bytes", ops)[0] / length
                 for k, ops in (("read", ("read",)), ("write", ("write",)),
                                ("net", NET_DATA_OPS))}
        out += _counter_run(SUMMARY_PID, "bytes/s", times,
                            {k: np.append(v, 0.0) for k, v in rates.items()})
    if health is not None and health.num_rows:
        lost = np.zeros(len(grid))
        np.add.at(lost, _cells(grid, _ts_ns(health)),
                  np.asarray(health.column("lost_events").fill_null(0), dtype=np.float64))
        out += _counter_run(SUMMARY_PID, "lost events", times, {"count": np.append(lost, 0.0)})
    return out


def _device_counters(tables: dict[str, pa.Table], io: pa.Table | None,
                     health: pa.Table | None, origin: int) -> list[dict[str, Any]]:
    """Capture-wide tracks from the optional probes, when they recorded anything:
    `GPU N` utilisation (util, mem_util: 0..1), `disk DEV bytes/s` (read, write) and
    `TCP retransmits` (count per interval)."""
    grid, length = _interval_grid(io, health)
    if len(grid) == 0:
        return []
    times = _us(np.append(grid, int(grid[-1] + length[-1] * 1e9)), origin).tolist()
    out: list[dict[str, Any]] = []
    gpu = tables.get("gpu")
    if gpu is not None and gpu.num_rows:
        whole = gpu.filter(pc.is_null(gpu.column("pid")))  # device-wide samples
        gpu = whole if whole.num_rows else gpu
        for dev, cols in _grid_by(gpu, "device", ("util", "mem_util"), grid, mean=True):
            out += _counter_run(SUMMARY_PID, f"GPU {dev}", times,
                                {k: np.append(v, 0.0) for k, v in cols.items()})
    block = tables.get("block")
    if block is not None and block.num_rows:
        for op in ("read", "write"):
            block = block.append_column(op, pc.if_else(pc.equal(block.column("op"), op),
                                                       block.column("bytes"), 0))
        for dev, cols in _grid_by(block, "device", ("read", "write"), grid):
            out += _counter_run(SUMMARY_PID, f"disk {dev} bytes/s", times,
                                {k: np.append(v / length, 0.0) for k, v in cols.items()})
    tcp = tables.get("tcp")
    if tcp is not None and tcp.num_rows:
        tcp = tcp.append_column("_all", pa.array(np.zeros(tcp.num_rows, np.int64)))
        for _, cols in _grid_by(tcp, "_all", ("retransmits",), grid):
            out += _counter_run(SUMMARY_PID, "TCP retransmits", times,
                                {"count": np.append(cols["retransmits"], 0.0)})
    return out


def _grid_by(t: pa.Table, key: str, columns: Sequence[str], grid: np.ndarray,
             mean: bool = False) -> list[tuple[Any, dict[str, np.ndarray]]]:
    """Per distinct `key`: each column summed (or averaged) into the interval grid."""
    keys = t.column(key).to_numpy(zero_copy_only=False)
    ukeys, rows = np.unique(keys, return_inverse=True)
    cells = _cells(grid, _ts_ns(t))
    shape = (len(ukeys), len(grid))
    n = np.zeros(shape)
    np.add.at(n, (rows, cells), 1.0)
    sums = {}
    for c in columns:
        m = np.zeros(shape)
        np.add.at(m, (rows, cells), np.asarray(t.column(c).fill_null(0), dtype=np.float64))
        sums[c] = np.where(n > 0, m / np.maximum(n, 1), 0.0) if mean else m
    return [(k.item() if hasattr(k, "item") else k, {c: sums[c][i] for c in columns})
            for i, k in enumerate(ukeys)]


def _cells(grid: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Index of the interval (start in `grid`) holding each time."""
    return np.clip(np.searchsorted(grid, ts, side="right") - 1, 0, len(grid) - 1)


def _matrix(io: pa.Table, prow: np.ndarray, icol: np.ndarray, shape: tuple[int, int],
            column: str, ops: Iterable[str] | None) -> np.ndarray:
    """Sum `column` of the rows whose op is in `ops` (None: all) into a process×interval grid."""
    values = np.asarray(io.column(column).fill_null(0), dtype=np.float64)
    if ops is not None:
        values = values * np.asarray(pc.is_in(io.column("op"), pa.array(list(ops))))
    out = np.zeros(shape)
    np.add.at(out, (prow, icol), values)
    return out


def _counter_run(pid: int, name: str, times: list[float],
                 series: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """'C' events at each time where any series changes (the first sample always)."""
    mat = np.vstack(list(series.values()))
    if not mat.any():  # a track of zeros only adds noise
        return []
    changed = np.ones(mat.shape[1], dtype=bool)
    changed[1:] = (mat[:, 1:] != mat[:, :-1]).any(axis=0)
    keys = list(series)
    out = []
    for j in np.flatnonzero(changed).tolist():
        out.append({"ph": "C", "name": name, "pid": pid, "tid": 0, "ts": times[j],
                    "args": {k: _num(mat[i, j]) for i, k in enumerate(keys)}})
    return out


def _first_seen(io: pa.Table | None) -> dict[int, int]:
    """pid -> start (wall ns) of the first interval in which it did I/O."""
    if io is None or io.num_rows == 0:
        return {}
    t = pa.table({"pid": io.column("pid"), "ts": io.column("ts").cast(pa.int64())})
    g = t.group_by("pid").aggregate([("ts", "min")])
    return dict(zip(g.column("pid").to_pylist(), g.column("ts_min").to_pylist()))


def _finding_events(findings: Sequence[Any], origin: int, names: dict[int, str],
                    first_seen: dict[int, int]) -> list[dict[str, Any]]:
    """Findings as instant events: process-scoped on the culprit pid when known.

    Placed at the time the evidence names, else where the culprit's I/O starts, else at 0.
    """
    out = []
    for f in findings or ():
        culprit = dict(getattr(f, "culprit", {}) or {})
        evidence = dict(getattr(f, "evidence", {}) or {})
        pid = culprit.get("pid")
        at = _finding_time(evidence)
        if at is None and isinstance(pid, int):
            at = first_seen.get(pid)
        scoped = isinstance(pid, int) and pid in names
        out.append({
            "ph": "i", "s": "p" if scoped else "g",
            "name": f"{getattr(f, 'severity', 'info')}: {getattr(f, 'title', '')}",
            "cat": "finding", "pid": pid if scoped else SUMMARY_PID, "tid": 0,
            "ts": max(0.0, float(_us(at, origin))) if at is not None else 0.0,
            "args": _json_safe({"code": getattr(f, "code", ""),
                                "category": getattr(f, "category", ""),
                                "impact_s": getattr(f, "impact_s", 0.0), "culprit": culprit,
                                "evidence": evidence,
                                "recommendation": getattr(f, "recommendation", "")}),
        })
    return out


def _finding_time(evidence: dict[str, Any]) -> int | None:
    """A finding's wall time in ns, if its evidence names one (else the capture start)."""
    for key in ("ts_ns", "start_ns", "first_ts_ns", "ts"):
        v = evidence.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 1e15:
            return int(v)
    return None


# --- output ---------------------------------------------------------------------------------

def _num(v: float) -> float | int:
    v = float(v)
    return int(v) if v.is_integer() else round(v, 6)


def _json_safe(obj: Any) -> Any:
    """Evidence can hold numpy or pyarrow values and NaN; make it strict JSON."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + \
        f".{ns % 10**9:09d}Z"


def _write_json(path: Path, doc: dict[str, Any], overwrite: bool) -> None:
    """Write via a private temp file and rename; refuse to replace a file unless asked."""
    if path.is_dir():
        raise ExportError(f"{path} is a directory (give a file name for the trace)")
    if path.exists() and not overwrite:
        raise ExportError(f"{path} already exists (nothing was overwritten; remove it or "
                          "choose another name)")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, separators=(",", ":"), allow_nan=False)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from None
