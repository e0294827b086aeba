"""Derivations on read, shared by the TUI and analysis: rates, percentiles, roll-ups.

Captures store raw per-interval deltas (collector.schema); everything derived lives here so
that `iolens top` and `iolens analyze` agree on every number.

In: pyarrow Tables of the `io` schema (any number of intervals). Out: small pyarrow Tables or
numpy arrays. No Python loops over rows: histograms become numpy matrices, groups use
pyarrow's hash aggregation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from iolens.collector.schema import LAT_BUCKETS, SIZE_BUCKETS

DATA_OPS = ("read", "write", "send", "recv")
FILE_DATA_OPS = ("read", "write")
NET_DATA_OPS = ("send", "recv")


def hist_matrix(col: pa.ChunkedArray | pa.Array, nbuckets: int = LAT_BUCKETS) -> np.ndarray:
    """A list<int64> column -> int64 matrix (rows × nbuckets); short/null lists zero-padded."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    n = len(col)
    out = np.zeros((n, nbuckets), dtype=np.int64)
    if n == 0:
        return out
    col = col.fill_null(pa.scalar([], type=col.type)) if col.null_count else col
    offsets = np.asarray(col.offsets, dtype=np.int64)
    values = np.asarray(col.flatten().fill_null(0), dtype=np.int64)
    lengths = np.diff(offsets)
    rows = np.repeat(np.arange(n), lengths)
    idx = np.arange(len(values)) - np.repeat(offsets[:-1] - offsets[0], lengths)
    keep = idx < nbuckets
    # Anything past the last bucket folds into it (same meaning: "and above").
    np.add.at(out, (rows[keep], idx[keep]), values[keep])
    if (~keep).any():
        np.add.at(out, (rows[~keep], np.full((~keep).sum(), nbuckets - 1)), values[~keep])
    return out


def hist_quantiles(mat: np.ndarray, q: float) -> np.ndarray:
    """Per-row quantile q (0..1) of log2 histograms, in the histogram's unit (ns or bytes).

    Within the bucket [2^i, 2^(i+1)) the value is interpolated linearly by rank; rows with no
    samples give NaN.
    """
    if mat.size == 0:
        return np.zeros(mat.shape[0])
    total = mat.sum(axis=1)
    cum = np.cumsum(mat, axis=1)
    target = np.maximum(q * total, 1e-9)
    idx = (cum < target[:, None]).sum(axis=1).clip(0, mat.shape[1] - 1)
    rows = np.arange(mat.shape[0])
    below = np.where(idx > 0, cum[rows, np.maximum(idx - 1, 0)], 0)
    inb = mat[rows, idx]
    frac = np.where(inb > 0, (target - below) / np.maximum(inb, 1), 0.5)
    lo = np.power(2.0, idx)
    val = lo + frac.clip(0, 1) * lo
    return np.where(total > 0, val, np.nan)


def hist_quantile(hist: Sequence[int], q: float) -> float:
    """Quantile q of one log2 histogram (see `hist_quantiles`)."""
    arr = np.zeros((1, max(len(hist), 1)), dtype=np.int64)
    arr[0, : len(hist)] = hist
    return float(hist_quantiles(arr, q)[0])


def window_seconds(io: pa.Table) -> float:
    """Wall time covered by the intervals present in `io` (sum over distinct intervals)."""
    if io.num_rows == 0:
        return 0.0
    t = io.select(["ts", "interval_s"]).group_by("ts").aggregate([("interval_s", "max")])
    return float(pc.sum(t.column("interval_s_max")).as_py() or 0.0)


def rollup(io: pa.Table, keys: Sequence[str], window_s: float | None = None) -> pa.Table:
    """Group `io` rows by `keys`; sum counts/bytes/errors/latency, merge histograms.

    Returns a table with the keys and: count, bytes, errors, lat_sum_ns, lat_max_ns,
    lat_p50_ns, lat_p99_ns, ops_s, bytes_s, io_frac (summed latency / window: the share of
    wall time spent inside these syscalls; above 1 when several threads wait at once),
    small_frac (share of data ops moving < 16 KiB), sorted by lat_sum_ns descending.
    """
    window_s = window_s if window_s is not None else window_seconds(io)
    if io.num_rows == 0:
        return _empty_rollup(keys)
    keyed = io.select(list(keys)).combine_chunks()
    groups = keyed.group_by(list(keys), use_threads=False).aggregate([])
    # Map each row to its group index via a join on the keys.
    gi = groups.append_column("_g", pa.array(np.arange(groups.num_rows), pa.int64()))
    rows = keyed.append_column("_r", pa.array(np.arange(keyed.num_rows), pa.int64()))
    joined = rows.join(gi, list(keys), join_type="left outer", use_threads=False,
                       coalesce_keys=True)
    order = np.asarray(joined.column("_r"))
    gidx = np.empty(keyed.num_rows, dtype=np.int64)
    gidx[order] = np.asarray(joined.column("_g"))
    n = groups.num_rows

    def gsum(name: str) -> np.ndarray:
        out = np.zeros(n, dtype=np.int64)
        np.add.at(out, gidx, np.asarray(io.column(name).fill_null(0), dtype=np.int64))
        return out

    lat_max = np.zeros(n, dtype=np.int64)
    np.maximum.at(lat_max, gidx, np.asarray(io.column("lat_max_ns").fill_null(0), np.int64))
    lat = np.zeros((n, LAT_BUCKETS), dtype=np.int64)
    np.add.at(lat, gidx, hist_matrix(io.column("lat_hist"), LAT_BUCKETS))
    size = np.zeros((n, SIZE_BUCKETS), dtype=np.int64)
    if "size_hist" in io.column_names:
        np.add.at(size, gidx, hist_matrix(io.column("size_hist"), SIZE_BUCKETS))
    count, nbytes, lat_sum = gsum("count"), gsum("bytes"), gsum("lat_sum_ns")
    sized = size.sum(axis=1)
    small = size[:, :14].sum(axis=1)  # buckets below 2^14 = 16 KiB
    w = window_s if window_s > 0 else 1.0
    out = groups.select(list(keys))
    cols = {
        "count": count, "bytes": nbytes, "errors": gsum("errors"), "lat_sum_ns": lat_sum,
        "lat_max_ns": lat_max,
        "lat_p50_ns": hist_quantiles(lat, 0.5), "lat_p99_ns": hist_quantiles(lat, 0.99),
        "ops_s": count / w, "bytes_s": nbytes / w, "io_frac": lat_sum / (w * 1e9),
        "small_frac": np.where(sized > 0, small / np.maximum(sized, 1), np.nan),
        "random_ops": gsum("random_ops") if "random_ops" in io.column_names else np.zeros(n),
    }
    for name, arr in cols.items():
        out = out.append_column(name, pa.array(arr))
    out = out.append_column("lat_hist", pa.array(list(lat), pa.list_(pa.int64())))
    return out.sort_by([("lat_sum_ns", "descending")])


def _empty_rollup(keys: Sequence[str]) -> pa.Table:
    fields = [pa.field(k, pa.string()) for k in keys]
    fields += [pa.field(n, pa.int64()) for n in ("count", "bytes", "errors", "lat_sum_ns",
                                                 "lat_max_ns")]
    fields += [pa.field(n, pa.float64()) for n in ("lat_p50_ns", "lat_p99_ns", "ops_s",
                                                   "bytes_s", "io_frac", "small_frac",
                                                   "random_ops")]
    fields.append(pa.field("lat_hist", pa.list_(pa.int64())))
    return pa.schema(fields).empty_table()


def op_bytes(io: pa.Table, keys: Sequence[str], ops: Sequence[str]) -> pa.Table:
    """Bytes and counts of the given ops per key, e.g. read MB per pid."""
    sub = io.filter(pc.is_in(io.column("op"), pa.array(list(ops))))
    if sub.num_rows == 0:
        return pa.table({**{k: pa.array([], io.schema.field(k).type) for k in keys},
                         "bytes_sum": pa.array([], pa.int64()),
                         "count_sum": pa.array([], pa.int64())})
    return sub.group_by(list(keys)).aggregate([("bytes", "sum"), ("count", "sum")])
