"""Self-contained HTML report: findings, timelines, latency histograms, heatmap, top tables.

In: a `Report` (and optionally a baseline `Comparison`). Out: one HTML file with inline SVG
plots drawn by matplotlib (Agg backend) and inline CSS: no scripts, no network to view it.
"""

from __future__ import annotations

import html
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
from iolens.analysis.report import human_bytes  # noqa: E402

CSS = """body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:1.5em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:left;font-size:.9em}.high{color:#b00;font-weight:bold}.warn{color:#a60}
.info{color:#068}.verdict{font-size:1.2em;padding:.5em;border-left:6px solid #888}
.bound{border-color:#b00}.free{border-color:#080}.incomplete{border-color:#c80;background:#fff6e0}figure{margin:1em 0}svg{max-width:100%;
height:auto}"""
TOP_PIDS = 8


def _svg(fig: plt.Figure) -> str:
    """A figure as an inline <svg> element (XML prolog stripped)."""
    buf = io.StringIO()
    # no date/creator metadata: the same capture gives the same file
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _pivot(tl: pa.Table, key: str, value: str, keep: list) -> tuple[np.ndarray, list, np.ndarray]:
    """(sorted interval starts in s, keys, matrix[key, interval]) of `value` per second."""
    ts = np.asarray(pc.cast(tl.column("ts"), pa.int64()))
    starts, first = np.unique(ts, return_index=True)
    length = np.asarray(tl.column("interval_s"), dtype=float)[first]
    col = tl.column(key).to_pylist()
    m = np.zeros((len(keep), len(starts)))
    ti = np.searchsorted(starts, ts)
    idx = {k: i for i, k in enumerate(keep)}
    ki = np.array([idx.get(k, -1) for k in col])
    ok = ki >= 0
    np.add.at(m, (ki[ok], ti[ok]), np.asarray(tl.column(value), dtype=float)[ok])
    m /= np.where(length > 0, length, 1.0)
    return (starts - starts.min()) / 1e9 if len(starts) else starts, keep, m


def _top_keys(tl: pa.Table, key: str, n: int) -> list:
    g = tl.group_by(key).aggregate([("lat_sum_ns", "sum"), ("bytes", "sum")])
    g = g.sort_by([("lat_sum_ns_sum", "descending"), ("bytes_sum", "descending")])
    return g.column(key).to_pylist()[:n]


def timeline_svg(tl: pa.Table, key: str, label: Any) -> str:
    """Throughput (MB/s) and I/O wait (seconds blocked per second) per `key` over time."""
    keys = _top_keys(tl, key, TOP_PIDS)
    x, _, mb = _pivot(tl, key, "bytes", keys)
    _, _, wait = _pivot(tl, key, "lat_sum_ns", keys)
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    for i, k in enumerate(keys):
        a1.plot(x, mb[i] / 1e6, label=label(k), lw=1.2)
        a2.plot(x, wait[i] / 1e9, label=label(k), lw=1.2)
    a1.set_ylabel("MB/s")
    a2.set_ylabel("s blocked per s")
    a2.set_xlabel("seconds since start")
    a1.legend(fontsize=7, loc="upper right", ncol=2)
    return _svg(fig)


def heatmap_svg(tl: pa.Table, label: Any) -> str:
    """Time × process heatmap of seconds blocked per second (1 = one thread always waiting)."""
    keys = _top_keys(tl, "pid", 20)
    x, _, wait = _pivot(tl, "pid", "lat_sum_ns", keys)
    fig, ax = plt.subplots(figsize=(10, 0.35 * len(keys) + 1.5))
    im = ax.imshow(wait / 1e9, aspect="auto", cmap="magma_r", interpolation="nearest",
                   extent=(0, float(x.max()) + 1 if len(x) else 1, len(keys), 0))
    ax.set_yticks(np.arange(len(keys)) + 0.5, [label(k) for k in keys], fontsize=7)
    ax.set_xlabel("seconds since start")
    fig.colorbar(im, ax=ax, label="s blocked per s")
    return _svg(fig)


def hist_svg(hists: dict[str, list[int]]) -> str:
    """Latency histograms per op (log2 buckets)."""
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for op, h in sorted(hists.items()):
        h = np.asarray(h, dtype=float)
        ax.step(np.arange(len(h)), h, where="mid", label=op)
    ticks = np.arange(0, 36, 3)
    ax.set_xticks(ticks, [_ns_label(2 ** int(t)) for t in ticks], fontsize=7)
    ax.set_yscale("symlog")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("latency (bucket start)")
    ax.set_ylabel("ops")
    ax.legend(fontsize=7, ncol=4)
    return _svg(fig)


def _ns_label(ns: int) -> str:
    for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= div:
            return f"{ns / div:.0f}{unit}"
    return f"{ns}ns"


def _table(rows: list[dict], cols: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(
        f"<td>{html.escape(human_bytes(r[c]) if c == 'bytes' else str(r.get(c, '')))}</td>"
        for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _findings_html(findings: list) -> str:
    if not findings:
        return "<p>No bottleneck findings.</p>"
    rows = []
    for f in findings:
        who = ", ".join(f"{k}={v}" for k, v in f.culprit.items() if v is not None)
        ev = html.escape("; ".join(f"{k}={v}" for k, v in f.evidence.items()
                                   if not isinstance(v, (list, dict))))
        rows.append(f"<tr><td class='{f.severity}'>{f.severity}</td>"
                    f"<td>{html.escape(f.category)}</td><td>{html.escape(f.title)}</td>"
                    f"<td>{html.escape(who)}</td><td>{f.impact_s:.2f}</td><td>{ev}</td>"
                    f"<td>{html.escape(f.recommendation)}</td></tr>")
    head = "".join(f"<th>{c}</th>" for c in ("severity", "category", "finding", "culprit",
                                               "impact s", "evidence", "recommendation"))
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _verdict_class(v: Any) -> str:
    """CSS class of the verdict line: bound, free, or incomplete (a capture too incomplete to
    tell, never shown as the all-clear)."""
    return "incomplete" if v.io_bound is None else "bound" if v.io_bound else "free"


def build_html(report: Any, comparison: Any = None) -> str:
    """The whole report as one HTML string."""
    v = report.verdict
    procs = {r["pid"]: r for r in report.top.get("processes", [])}
    label = lambda pid: f"{pid} {procs.get(pid, {}).get('comm') or ''}"  # noqa: E731
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>iolens analyze "
             f"{html.escape(report.capture)}</title><style>{CSS}</style></head><body>",
             f"<h1>iolens analyze: {html.escape(report.capture)}</h1>",
             f"<p class='verdict {_verdict_class(v)}'>"
             f"{html.escape(v.summary)}</p>",
             "<h2>Findings</h2>", _findings_html(report.findings)]
    if comparison is not None:
        parts += ["<h2>Compared with the baseline</h2>",
                  f"<p>{html.escape(comparison.summary)}</p>",
                  _table(comparison.metrics, ["metric", "baseline", "current", "change"])]
    tl = report.timeline
    if tl is not None and tl.num_rows:
        parts += ["<h2>Timeline per process</h2>",
                  f"<figure id='timeline-process'>{timeline_svg(tl, 'pid', label)}</figure>",
                  "<h2>Timeline per file class</h2>",
                  f"<figure id='timeline-class'>"
                  f"{timeline_svg(tl, 'file_class', lambda k: k or '(none)')}</figure>",
                  "<h2>I/O wait: time × process</h2>",
                  f"<figure id='heatmap'>{heatmap_svg(tl, label)}</figure>"]
    if report.hists:
        parts += ["<h2>Latency histograms</h2>",
                  f"<figure id='latency'>{hist_svg(report.hists)}</figure>"]
    top = report.top
    parts += ["<h2>Top processes</h2>",
              _table(top.get("processes", []), ["pid", "comm", "role", "ops", "bytes",
                                                "blocked_s", "blocked_share"]),
              "<h2>Top files</h2>", _table(top.get("files", []),
                                           ["resource", "ops", "bytes", "blocked_s"]),
              "<h2>Top peers</h2>", _table(top.get("peers", []),
                                           ["resource", "ops", "bytes", "blocked_s"]),
              "<h2>Capture health</h2>", _health_html(report.health), "</body></html>"]
    return "\n".join(parts)


def _health_html(h: dict[str, Any]) -> str:
    items = [f"intervals: {h['intervals']}", f"lost events: {h['lost_events']:,}",
             f"uncounted ops: {h['agg_overflow']:,}"]
    items += [f"skipped: {s['reason']}" for s in h.get("skipped", [])]
    items += list(h.get("notes", []))
    return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def write_html(report: Any, path: str, comparison: Any = None) -> None:
    """Write the report to `path` (raises OSError)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(build_html(report, comparison))
