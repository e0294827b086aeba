"""Fidelity of a replica: the same per-class reductions on two captures, side by side.

`class_metrics(tables)` measures, per file class, what `replica_derive` models (the same
grouping, system files and runtime scratch files left out, via `file_io` and `job_model`):
bytes, data ops (moving more than 1 byte), mean request size, the request-size histogram,
the sequential share, opens, opens per second of the class's active span, fsyncs, and the
latency histogram of data ops (merged with `metrics.hist_matrix`, quantiles with
`metrics.hist_quantiles`, as the analysis does).

`fidelity(original, replica)` gives one row per class and metric: both values, the ratio
replica/original for amounts, the difference in percentage points for shares and
histograms (the largest difference over log2 buckets), and whether it is within tolerance
(amounts +-10 %, counts of opens and fsyncs up to 10 also within +-1, and opens/s not
judged with 10 opens or fewer; request sizes and sequential share +-5 points, latency
histogram +-10 points). `top_category(path)` is the category of the analysis's first finding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from iolens.analysis.metrics import hist_matrix, hist_quantiles
from iolens.analysis.replica_derive import ALL_CLASSES, file_io, job_model, tiny_ops
from iolens.collector.schema import LAT_BUCKETS

#: metric -> (kind, tolerance): "ratio" metrics pass within 1 +- tol, "points" within +-tol
METRICS: dict[str, tuple[str, float]] = {
    "bytes": ("ratio", 0.10), "data_ops": ("ratio", 0.10), "mean_request": ("ratio", 0.10),
    "request_hist": ("points", 5.0), "seq_share": ("points", 5.0), "opens": ("ratio", 0.10),
    "opens_per_s": ("ratio", 0.10), "fsyncs": ("ratio", 0.10),
    "lat_hist": ("points", 10.0), "lat_p50_us": ("ratio", 0.10),
}


#: counts this small pass within +-1 (one open more or less is not a +-10 % matter)
SMALL_COUNTS = ("opens", "fsyncs")
SMALL_COUNT_MAX = 10


@dataclass(frozen=True)
class Row:
    """One compared metric of one file class."""

    file_class: str
    metric: str
    original: Any
    replica: Any
    score: float | None      # ratio replica/original, or difference in points
    kind: str                # "ratio" or "points"
    ok: bool | None          # None: nothing to compare (both zero)


def _shares(hist: np.ndarray) -> np.ndarray:
    n = hist.sum()
    return hist / n if n else hist.astype(np.float64)


def class_metrics(tables: Mapping[str, pa.Table],
                  classes: tuple[str, ...] = ALL_CLASSES) -> dict[str, dict[str, Any]]:
    """file class -> metric -> value (histograms as lists of per-bucket shares)."""
    io = tables.get("io")
    if io is None or io.num_rows == 0:
        return {}
    t = file_io(io, classes)
    out: dict[str, dict[str, Any]] = {}
    for cls in sorted(set(t.column("file_class").to_pylist())):
        rows = t.filter(pc.equal(t.column("file_class"), cls))
        job = job_model(rows, cls, "all")
        if job.data_ops == 0 and job.opens == 0:  # stats of inherited fds only: not replayed
            continue
        size = np.asarray(job.read.size_hist, np.int64) + np.asarray(job.write.size_hist, np.int64)
        data = rows.filter(pc.is_in(rows.column("op"), pa.array(["read", "write"])))
        lat = data_latency(data)
        p50 = float(hist_quantiles(lat[None, :], 0.5)[0]) if lat.sum() else float("nan")
        out[cls] = {
            "bytes": job.data_bytes, "data_ops": job.data_ops,
            "mean_request": job.data_bytes / job.data_ops if job.data_ops else 0.0,
            "request_hist": _shares(size).tolist(),
            "seq_share": 1.0 - job.random_share if job.data_ops else None,
            "opens": job.opens, "opens_per_s": job.opens / job.span_s if job.span_s else 0.0,
            "fsyncs": job.fsyncs, "lat_hist": _shares(lat).tolist(),
            "lat_p50_us": p50 / 1e3 if p50 == p50 else None,
            "span_s": job.span_s, "stats": job.stats, "tiny_ops": job.read.tiny_ops
            + job.write.tiny_ops,
        }
    return out


def data_latency(data: pa.Table) -> np.ndarray:
    """Merged log2 latency histogram of the ops of `data` (read/write rows) that moved more
    than 1 byte. A row's lat_hist also counts its ops of 0 or 1 byte (size_hist bucket 0,
    mostly reads at end of file), which no replay tool issues; they return without copying
    anything, so each row's that many ops are taken from its fastest latency buckets."""
    if data.num_rows == 0:
        return np.zeros(LAT_BUCKETS, np.int64)
    lat = hist_matrix(data.column("lat_hist"), LAT_BUCKETS)
    cum = np.cumsum(lat, axis=1)
    # what is left in each bucket once each row's tiny ops (fastest first) are removed
    left = np.clip(cum - tiny_ops(data)[:, None], 0, None)
    kept = np.diff(left, axis=1, prepend=0)
    return kept.sum(axis=0)


def _score(metric: str, a: Any, b: Any) -> tuple[float | None, bool | None]:
    kind, tol = METRICS[metric]
    if kind == "points":
        if a is None or b is None:
            return None, None if a is None and b is None else False
        if isinstance(a, list):
            n = max(len(a), len(b))
            x = np.zeros(n)
            y = np.zeros(n)
            x[:len(a)] = a
            y[:len(b)] = b
            if x.sum() == 0 and y.sum() == 0:
                return None, None
            d = float(np.abs(x - y).max() * 100)
        else:
            d = float((b - a) * 100)
        return round(d, 2), abs(d) <= tol
    a = a or 0
    b = b or 0
    if a == 0 and b == 0:
        return None, None
    if a == 0:
        return None, False
    r = b / a
    small = metric in SMALL_COUNTS and max(a, b) <= SMALL_COUNT_MAX and abs(b - a) <= 1
    return round(r, 4), abs(r - 1) <= tol or small


def fidelity(original: Mapping[str, Mapping[str, Any]],
             replica: Mapping[str, Mapping[str, Any]]) -> list[Row]:
    """Rows for every class of the original and every metric of METRICS."""
    rows = []
    for cls, om in original.items():
        rm = replica.get(cls, {})
        few = max(om.get("opens") or 0, rm.get("opens") or 0) <= SMALL_COUNT_MAX
        for metric, (kind, _) in METRICS.items():
            a, b = om.get(metric), rm.get(metric)
            score, ok = _score(metric, a, b)
            if metric == "opens_per_s" and few:
                ok = None  # a rate of a handful of opens: not judged
            rows.append(Row(cls, metric, _show(a), _show(b), score, kind, ok))
    return rows


def _show(v: Any) -> Any:
    """Histograms are shown by their mode bucket's share; numbers rounded."""
    if isinstance(v, list):
        if not v or max(v) == 0:
            return None
        i = int(np.argmax(v))
        return f"2^{i}: {v[i]:.0%}"
    if isinstance(v, float):
        return round(v, 4)
    return v


def findings(path: str) -> list[tuple[str, str]]:
    """(category, code) of every finding of `iolens analyze`, by impact."""
    from iolens.analysis.analyze import analyze_path

    return [(f.category, f.code) for f in analyze_path(path, plots=False).findings]


def top_category(path: str) -> tuple[str, str | None]:
    """(category of the first finding, its code) of `iolens analyze`; ("none", None)."""
    got = findings(path)
    return got[0] if got else ("none", None)


def rows_json(rows: list[Row]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
