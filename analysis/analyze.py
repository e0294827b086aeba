"""`iolens analyze` as a library: capture directory in, `Report` out (JSON contract below).

    report = analyze_path("run1")            # raises AnalyzeError (one line) on bad input
    report.to_json()  -> {"schema": 2, "verdict": {...}, "findings": [...], "totals": {...},
                          "top": {...}, "health": {...}}

The capture's Parquet files are queried in place through the engine (analysis/engine.py), so
a capture far larger than memory is fine. Unreadable files are left out and listed in
`health.skipped`; a capture with nothing readable is an error.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from iolens.analysis.engine import DuckDBEngine, Engine
from iolens.analysis.queries import Reduced
from iolens.analysis.rules import Finding, evaluate
from iolens.analysis.summary import health_summary, top_tables, totals
from iolens.analysis.thresholds import merge
from iolens.collector import schema as S
from iolens.collector.capture import META_FILE, CaptureMeta, table_files, unfinished_files
from iolens.collector.capture import read_metas as capture_metas

JSON_SCHEMA = 2  # 2: categories ipc-overhead, worker-startup, fd-exhaustion (issue 19)

#: query engines `iolens analyze --engine` accepts (duckdb: embedded, the default)
ENGINES = ("duckdb", "spark")
DEFAULT_MASTER = "local[2]"


class AnalyzeError(Exception):
    """The capture cannot be analysed; the message is one line for the user."""


class EngineUnavailable(AnalyzeError):
    """The chosen engine cannot start (pyspark not installed, no Java); one line."""


def make_engine(kind: str, root: str | os.PathLike[str], skip: set[str] | None = None,
                master: str = DEFAULT_MASTER) -> tuple[Engine, list[tuple[str, str]]]:
    """The engine factory: an Engine over the capture (or fleet tree) at `root`, plus the
    files it left out. The same rules and SQL (analysis/queries.py) run on either engine."""
    if kind == "duckdb":
        return DuckDBEngine.from_capture(root, skip)
    if kind != "spark":
        raise EngineUnavailable(f"unknown engine {kind!r} (choose from {', '.join(ENGINES)})")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise EngineUnavailable("the spark engine needs pyspark: pip install 'iolens[spark]'"
                                ) from None
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise EngineUnavailable("the spark engine needs Java 17+ (java on PATH or JAVA_HOME)")
    from iolens.analysis.engine_spark import SparkEngine
    try:
        return SparkEngine.from_capture(root, skip, master=master)
    except Exception as exc:  # noqa: BLE001 - JVM/gateway failures: one line for the user
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise EngineUnavailable(f"spark engine failed (master {master}): {msg}") from None


def engine_errors(kind: str) -> tuple[type[BaseException], ...]:
    """Exceptions a query of this engine raises on damaged data (caught, files re-checked)."""
    if kind == "spark":
        errs: list[type[BaseException]] = []
        try:
            from pyspark.errors import PySparkException
            errs.append(PySparkException)
        except ImportError:
            pass
        try:
            from py4j.protocol import Py4JJavaError
            errs.append(Py4JJavaError)
        except ImportError:
            pass
        return tuple(errs) or (duckdb.Error,)
    return (duckdb.Error,)


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
    """capture.json of the capture (or of each capture in a tree), and unreadable ones. An
    unfinished segment left by a crash is recovered first and counted (collector.capture)."""
    return capture_metas(root)


def open_capture(path: str | os.PathLike[str], engine: str = "duckdb",
                 master: str = DEFAULT_MASTER) -> tuple[Engine, list[CaptureMeta],
                                                        list[tuple[str, str]], list[str]]:
    """Engine over a capture directory (or a fleet's hive tree), its metadata, skipped files
    and unfinished segments. `engine`: one of ENGINES; `master`: Spark's master URL.

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
    eng, bad = make_engine(engine, root, master=master)
    skipped += bad
    if not eng.has("io"):
        eng.close()
        why = next((r for f, r in skipped if "/io/" in f), None)
        where = why or f"{root}/io: no data files"
        raise AnalyzeError(f"no readable I/O data in capture: {where}")
    unfinished = unfinished_files(root)
    return eng, metas, skipped, unfinished


def find_corrupt(root: Path, known: set[str]) -> list[tuple[str, str]]:
    """Files whose pages are damaged although their footer reads fine (full read, slow: only
    used after a query failed)."""
    bad = []
    for t in S.TABLES:  # every table of the schema, optional ones included
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
                 plots: bool = True, engine: str = "duckdb",
                 master: str = DEFAULT_MASTER) -> Report:
    """Analyse a capture directory (or a fleet tree); see the module docstring.

    `plots=False` skips the per-interval timeline (only the HTML report draws it): one scan
    of io less. `engine`: "duckdb" (embedded, default) or "spark" (pyspark, `master` URL).
    """
    th = thresholds or merge(None)
    errors = engine_errors(engine)
    eng, metas, skipped, unfinished = open_capture(path, engine, master)
    try:
        return _analyze(eng, str(path), metas, skipped, unfinished, th, top_n, plots)
    except errors as exc:
        first = str(exc).splitlines()[0]
    finally:
        eng.close()
    # A damaged page somewhere: find the bad files, leave them out, try once more.
    root = Path(path)
    bad = find_corrupt(root, {f for f, _ in skipped})
    if not bad:
        raise AnalyzeError(f"cannot read capture {path}: {first}")
    eng, _ = make_engine(engine, root, skip={f for f, _ in skipped + bad}, master=master)
    try:
        if not eng.has("io"):
            raise AnalyzeError(f"no readable I/O data in capture: {bad[0][1]}")
        return _analyze(eng, str(path), metas, skipped + bad, unfinished, th, top_n, plots)
    except errors as exc:
        raise AnalyzeError(f"cannot read capture {path}: {str(exc).splitlines()[0]}") from None
    finally:
        eng.close()


def _analyze(eng: Engine, path: str, metas: list[CaptureMeta],
             skipped: list[tuple[str, str]], unfinished: list[str], th: dict[str, float],
             top_n: int, plots: bool = True) -> Report:
    reduced = Reduced(eng, metas[0] if metas else None)
    verdict, findings = evaluate(reduced, th)
    return Report(capture=path, verdict=verdict, findings=findings, totals=totals(reduced),
                  top=top_tables(reduced, top_n),
                  health=health_summary(reduced, metas, skipped, unfinished, th), thresholds=th,
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
