"""`iolens analyze` as a library: capture directory in, `Report` out (JSON contract below).

    report = analyze_path("run1")            # raises AnalyzeError (one line) on bad input
    report.to_json()  -> {"schema": 1, "verdict": {...}, "findings": [...], "totals": {...},
                          "top": {...}, "health": {...}}

The capture's Parquet files are queried in place through the engine (analysis/engine.py), so
a capture far larger than memory is fine. Unreadable files are left out and listed in
`health.skipped`; a capture with nothing readable is an error.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from iolens.analysis.engine import DuckDBEngine
from iolens.analysis.queries import Reduced
from iolens.analysis.rules import Finding, evaluate
from iolens.analysis.summary import health_summary, top_tables, totals
from iolens.analysis.thresholds import merge
from iolens.collector.capture import META_FILE, CaptureMeta, table_files

JSON_SCHEMA = 1


class AnalyzeError(Exception):
    """The capture cannot be analysed; the message is one line for the user."""


@dataclass
class Report:
    """Everything `iolens analyze` says about one capture."""

    capture: str
    verdict: Any
    findings: list[Finding]
    totals: dict[str, Any]
    top: dict[str, list[dict[str, Any]]]
    health: dict[str, Any]
    thresholds: dict[str, float] = field(default_factory=dict)
    timeline: pa.Table | None = None   # for plots (not in JSON)
    hists: dict[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return clean({"schema": JSON_SCHEMA, "capture": self.capture,
                      "verdict": self.verdict.to_json(),
                      "findings": [asdict(f) for f in self.findings],
                      "totals": self.totals, "top": self.top, "health": self.health})


def clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python, tuples -> lists."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def read_metas(root: Path) -> tuple[list[CaptureMeta], list[tuple[str, str]]]:
    """capture.json of the capture (or of each capture in a tree), and unreadable ones."""
    metas, bad = [], []
    for mp in sorted(root.rglob(META_FILE)):
        try:
            metas.append(CaptureMeta.from_dict(json.loads(mp.read_text())))
        except (OSError, ValueError, TypeError) as exc:
            bad.append((str(mp), f"unreadable metadata: {str(exc).splitlines()[0]}"))
    return metas, bad


def open_capture(path: str | os.PathLike[str]) -> tuple[DuckDBEngine, list[CaptureMeta],
                                                         list[tuple[str, str]], list[str]]:
    """Engine over a capture directory, its metadata, skipped files and unfinished segments.

    Raises AnalyzeError for a missing path, a non-capture or a capture with no readable data.
    """
    root = Path(path)
    if not root.exists():
        raise AnalyzeError(f"no such capture: {root}")
    if not root.is_dir():
        raise AnalyzeError(f"not a capture directory: {root}")
    if not os.access(root, os.R_OK | os.X_OK):  # else rglob finds nothing: "not a capture"
        raise AnalyzeError(f"permission denied: {root} (a capture is private to its recorder)")
    metas, skipped = read_metas(root)
    files = [f for t in ("io", "procs", "events", "health") for f in table_files(root, t)]
    if not metas and not files:
        raise AnalyzeError(f"not an iolens capture (no {META_FILE}, no table files): {root}")
    eng, bad = DuckDBEngine.from_capture(root)
    skipped += bad
    if not eng.has("io"):
        eng.close()
        why = next((r for f, r in skipped if "/io/" in f), None)
        where = why or f"{root}/io: no data files"
        raise AnalyzeError(f"no readable I/O data in capture: {where}")
    unfinished = [str(p) for p in root.rglob("part-*.parquet.tmp")]
    return eng, metas, skipped, unfinished


def find_corrupt(root: Path, known: set[str]) -> list[tuple[str, str]]:
    """Files whose pages are damaged although their footer reads fine (full read, slow: only
    used after a query failed)."""
    bad = []
    for t in ("io", "procs", "events", "health", "block", "pagecache", "faults", "tcp", "gpu"):
        for fp in table_files(root, t):
            if str(fp) in known:
                continue
            try:
                pq.read_table(fp)
            except (OSError, pa.ArrowException) as exc:
                bad.append((str(fp), f"{fp}: {str(exc).splitlines()[0]}"))
    return bad


def analyze_path(path: str | os.PathLike[str],
                 thresholds: dict[str, float] | None = None, top_n: int = 10,
                 plots: bool = True) -> Report:
    """Analyse a capture directory; see the module docstring.

    `plots=False` skips the per-interval timeline (only the HTML report draws it): one scan
    of io less.
    """
    th = thresholds or merge(None)
    eng, metas, skipped, unfinished = open_capture(path)
    try:
        return _analyze(eng, str(path), metas, skipped, unfinished, th, top_n, plots)
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
    finally:
        eng.close()
    # A damaged page somewhere: find the bad files, leave them out, try once more.
    root = Path(path)
    bad = find_corrupt(root, {f for f, _ in skipped})
    if not bad:
        raise AnalyzeError(f"cannot read capture {path}: {first}")
    eng, _ = DuckDBEngine.from_capture(root, skip={f for f, _ in skipped + bad})
    try:
        if not eng.has("io"):
            raise AnalyzeError(f"no readable I/O data in capture: {bad[0][1]}")
        return _analyze(eng, str(path), metas, skipped + bad, unfinished, th, top_n, plots)
    except duckdb.Error as exc:
        raise AnalyzeError(f"cannot read capture {path}: {str(exc).splitlines()[0]}") from None
    finally:
        eng.close()


def _analyze(eng: DuckDBEngine, path: str, metas: list[CaptureMeta],
             skipped: list[tuple[str, str]], unfinished: list[str], th: dict[str, float],
             top_n: int, plots: bool = True) -> Report:
    reduced = Reduced(eng, metas[0] if metas else None)
    verdict, findings = evaluate(reduced, th)
    return Report(capture=path, verdict=verdict, findings=findings, totals=totals(reduced),
                  top=top_tables(reduced, top_n),
                  health=health_summary(reduced, metas, skipped, unfinished), thresholds=th,
                  timeline=reduced.get("timeline") if plots else None,
                  hists=_hists(reduced) if plots else {})


def _hists(reduced: Reduced) -> dict[str, list[int]]:
    """Merged latency histograms per op (for the HTML report's histogram plot)."""
    from iolens.analysis.rules._common import hist_of
    ops = reduced.get("ops_hist")
    if ops is None or ops.num_rows == 0:
        return {}
    scale = 100.0 / (reduced.hist_sample_pct or 100.0)
    out: dict[str, list[int]] = {}
    for op in sorted(set(ops.column("op").to_pylist())):
        h = hist_of(ops.filter(pc.equal(ops.column("op"), op)))
        if h.sum() > 0:
            out[op] = [int(round(x * scale)) for x in h]
    return out
