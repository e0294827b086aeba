"""Coverage before conclusions (pure tier): a capture that missed a large share of what
happened says so first, and never gets a confident "not I/O-bound"."""

from __future__ import annotations

import pyarrow as pa
import pytest
from iolens.analysis import coverage
from iolens.analysis.engine import DuckDBEngine
from iolens.analysis.queries import Reduced
from iolens.analysis.rules import evaluate
from iolens.analysis.thresholds import merge
from iolens.collector import schema as S

from tests import factories as F
from tests.analysis import synth


def verdict_of(tables: dict, meta=None):
    eng = DuckDBEngine.from_tables(tables)
    try:
        return evaluate(Reduced(eng, meta), merge(None))[0]
    finally:
        eng.close()


def with_health(tables: dict, **cols) -> dict:
    """`tables` with its health rows' columns replaced (one value per interval)."""
    h = tables["health"]
    for name, values in cols.items():
        i = h.schema.get_field_index(name)
        h = h.set_column(i, h.schema.field(i), pa.array(values, h.schema.field(i).type))
    return {**tables, "health": h}


def ops_of(tables: dict) -> int:
    return sum(tables["io"].column("count").to_pylist())


def test_complete_capture_keeps_the_plain_verdict():
    tables, _ = synth.healthy()
    v = verdict_of(tables)
    assert v.io_bound is False and v.summary.startswith("not I/O-bound")
    j = v.to_json()
    assert j["capture_complete"] is True and j["coverage"]["uncounted_share"] == 0


def test_uncounted_ops_make_the_verdict_incomplete_not_a_confident_no():
    tables, _ = synth.healthy()
    n = synth.N
    # twice as many ops were not counted as were counted (kernel map full)
    lost = [2 * ops_of(tables) // n] * n
    v = verdict_of(with_health(tables, agg_overflow=lost))
    assert v.io_bound is None
    assert v.summary.startswith("INCOMPLETE CAPTURE: 67% of operations were not counted")
    assert "not I/O-bound" not in v.summary
    j = v.to_json()
    assert j["capture_complete"] is False and j["io_bound"] is None
    assert j["coverage"]["ops_uncounted"] == sum(lost)
    assert j["coverage"]["uncounted_share"] == pytest.approx(2 / 3, abs=1e-3)


def test_an_io_bound_run_stays_io_bound_with_the_warning_first():
    tables, _ = synth.BUILDERS["sync-stall"]()
    n = synth.N
    v = verdict_of(with_health(tables, agg_overflow=[ops_of(tables) // n] * n))
    # what was seen already shows it: the verdict stays, the warning comes first
    assert v.io_bound is True
    assert v.summary.startswith("INCOMPLETE CAPTURE: 50% of operations were not counted")
    assert ". I/O-bound: processes spend" in v.summary


def test_stretched_intervals_are_a_coverage_problem():
    tables, _ = synth.healthy()
    n = synth.N
    lengths = [1.0] * (n - 3) + [2.5, 3.0, 1.6]
    v = verdict_of(with_health(tables, interval_s=lengths))
    cov = v.coverage
    assert cov.stretched_intervals == 3 and cov.max_interval_s == 3.0
    assert not cov.complete and "3 of 10 intervals ran long" in v.summary


def test_folded_rows_are_exact_not_missing():
    rows = synth._ivs([
        F.io_row(pid=800, op="read", resource="/data/a.bin", count=10, nbytes=10 << 10),
        F.io_row(pid=800, op="read", resource="/data/", count=30, nbytes=30 << 10)])
    tables = synth._tables(rows, [synth._proc(800, role="trainer")])
    grain = pa.array(["file", "dir"] * synth.N, pa.string())
    io = tables["io"]
    tables["io"] = io.set_column(io.schema.get_field_index("grain"), S.IO.field("grain"), grain)
    v = verdict_of(tables)
    assert v.coverage.complete
    assert v.coverage.folded_share == pytest.approx(0.75)


def test_window_coverage_for_the_live_panel():
    h = F.health_table([F.health_row(F.T0 + i * 10**9) for i in range(4)])
    assert coverage.headline(coverage.of_window(h, 1000, 1.0, merge(None))) == ""
    i = h.schema.get_field_index("agg_overflow")
    h2 = h.set_column(i, h.schema.field(i), pa.array([0, 0, 500, 0], pa.int64()))
    line = coverage.headline(coverage.of_window(h2, 1000, 1.0, merge(None)))
    assert line.startswith("INCOMPLETE CAPTURE: 33% of operations were not counted")
