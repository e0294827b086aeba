"""analysis/rules/ipc.py on synthetic captures (tests/analysis/synth_ipc.py): golden
objects per batch, IPC time and impact for ipc-overhead; start-up time and shipped bytes for
worker-startup; fd-exhaustion from the `fds` table; nothing on packed, lazy or healthy runs;
the same reduction and findings on Spark as on DuckDB."""

from __future__ import annotations

import pytest
from iolens.analysis.engine import DuckDBEngine
from iolens.analysis.queries import Reduced
from iolens.analysis.rules import CATEGORIES, run_rules
from iolens.analysis.rules.ipc import loaders

from tests.analysis import synth, synth_ipc

IPC_CATS = ("ipc-overhead", "worker-startup", "fd-exhaustion")


def _of(found, category):
    return [f for f in found if f.category == category]


def test_new_categories_are_in_the_vocabulary():
    assert set(IPC_CATS) <= set(CATEGORIES)


def test_ipc_overhead_golden():
    tables, want = synth_ipc.loader(per_batch=64)
    found = run_rules(tables)
    assert found[0].category == "ipc-overhead", found
    f = found[0]
    assert f.code == "IPC-OVERHEAD" and f.culprit["pid"] == want["pid"]
    ev = f.evidence
    assert ev["objects"] == want["objects"] and ev["batches"] == want["batches"]
    assert ev["objects_per_batch"] == want["objects_per_batch"]
    assert ev["bytes_per_object"] == want["bytes_per_object"]
    for k in ("trainer_ipc_syscall_s", "trainer_handshake_work_s",
              "trainer_per_object_work_s", "trainer_ipc_s", "trainer_wait_s"):
        assert ev[k] == pytest.approx(want[k], abs=2e-3), k
    assert f.impact_s == pytest.approx(want["impact_s"], rel=1e-3)
    assert ev["predicted_speedup"] == pytest.approx(
        want["wall_s"] / (want["wall_s"] - want["impact_s"]), rel=1e-3)
    assert "collate_fn" in f.recommendation


def test_packed_loader_gets_no_ipc_finding():
    tables, want = synth_ipc.loader(per_batch=4)
    lds = loaders(Reduced(DuckDBEngine.from_tables(tables)))
    assert len(lds) == 1 and lds[0].objects_per_batch == pytest.approx(4)
    assert not [f for f in run_rules(tables) if f.category in IPC_CATS]


def test_worker_startup_golden_and_lazy_silent():
    base, _ = synth_ipc.loader(per_batch=4)
    tables, want = synth_ipc.with_startup(base, (6.0, 7.0), 5_000_000)
    found = _of(run_rules(tables), "worker-startup")
    assert len(found) == 1
    f = found[0]
    assert f.code == "IPC-STARTUP" and f.culprit["pid"] == synth_ipc.TRAINER
    assert f.evidence["startup_median_s"] == pytest.approx(want["startup_median_s"])
    assert f.impact_s == pytest.approx(want["first_batch_delay_s"])
    assert f.evidence["shipped_bytes_per_worker"] == want["shipped_bytes_per_worker"]
    assert "lazily" in f.recommendation  # shipped >= worker_startup_bytes
    lazy, _ = synth_ipc.with_startup(base, (1.0, 1.2), 2_000)
    assert not _of(run_rules(lazy), "worker-startup")
    # slow but nothing shipped (imports under load): not this rule's diagnosis
    slow, _ = synth_ipc.with_startup(base, (9.0, 9.5), 2_000)
    assert not _of(run_rules(slow), "worker-startup")
    # shipped, but the first batch came 4.9 s after the first fork: below worker_startup_s
    quick, _ = synth_ipc.with_startup(base, (4.9, 9.0), 5_000_000)
    assert not _of(run_rules(quick), "worker-startup")
    slow, _ = synth_ipc.with_startup(base, (9.0, 9.5), 2_000)
    assert not _of(run_rules(slow), "worker-startup")


def test_fd_exhaustion_from_fds_table():
    base, _ = synth.healthy()
    counts = [100 + 100 * k for k in range(10)]  # 100 .. 1000 of 1024
    found = _of(run_rules(synth_ipc.with_fds(base, 800, counts, 1024)), "fd-exhaustion")
    assert len(found) == 1
    f = found[0]
    assert f.severity == "high" and f.culprit["pid"] == 800
    assert f.evidence["max_fds"] == 1000 and f.evidence["fd_limit"] == 1024
    assert f.evidence["growth_per_s"] == pytest.approx(100.0)
    assert f.evidence["seconds_to_limit"] == pytest.approx(0.24)
    quiet = synth_ipc.with_fds(base, 800, [50] * 10, 1024)
    assert not _of(run_rules(quiet), "fd-exhaustion")


@pytest.mark.parametrize("name", sorted(synth.BUILDERS))
def test_no_ipc_finding_on_the_other_workloads(name):
    tables, _ = synth.BUILDERS[name]()
    assert not [f for f in run_rules(tables) if f.category in IPC_CATS]
    assert not [f for f in run_rules(synth.healthy()[0]) if f.severity == "high"]


def _capture(tmp_path):
    """The loader (ipc-overhead), start-up and fds workload as a real capture directory."""
    import pyarrow.compute as pc
    from iolens.collector.sources import Interval

    from tests import factories as F

    base, _ = synth_ipc.loader(per_batch=64)
    tables, _ = synth_ipc.with_startup(base, (6.0, 7.0), 5_000_000)
    tables = synth_ipc.with_fds(tables, synth_ipc.TRAINER, [100 + 100 * k for k in range(10)],
                                1024)
    ivs = []
    for k in range(synth.N):
        lo, hi = F.T0 + k * 10**9, F.T0 + (k + 1) * 10**9
        part = {}
        for name, t in tables.items():
            ts = pc.cast(t.column("ts"), "int64")
            part[name] = t.filter(pc.and_(pc.greater_equal(ts, lo), pc.less(ts, hi)))
        ivs.append(Interval(lo, hi, part, {}))
    return F.write_capture(tmp_path / "cap", ivs)


def test_spark_gives_the_same_ipc_findings(tmp_path):
    """The ipc, forks, shm_first and fds reductions through Spark SQL: same findings, same
    loader figures as DuckDB on the same capture files."""
    from tests.analysis.spark import need_spark

    need_spark()
    from iolens.analysis.engine_spark import SparkEngine
    from iolens.analysis.rules import evaluate
    from iolens.analysis.thresholds import merge

    cap = _capture(tmp_path)
    th = merge(None)
    duck_eng, _ = DuckDBEngine.from_capture(cap)
    duck = evaluate(Reduced(duck_eng), th)[1]
    spark_eng, _ = SparkEngine.from_capture(cap, master="local[2]")
    try:
        red = Reduced(spark_eng)
        spark = evaluate(red, th)[1]
        assert [ld.evidence() for ld in loaders(red)] == \
            [ld.evidence() for ld in loaders(Reduced(duck_eng))]
    finally:
        spark_eng.close()
    key = [(f.code, f.culprit["pid"], round(f.impact_s, 6), f.evidence) for f in duck]
    assert key == [(f.code, f.culprit["pid"], round(f.impact_s, 6), f.evidence)
                   for f in spark]
    assert {"IPC-OVERHEAD", "IPC-STARTUP", "IPC-FDS"} <= {f.code for f in spark}


def test_capture_directory_end_to_end(tmp_path):
    """The same workload written by the real CaptureWriter (fds folder included) and read by
    `analyze_path`: the three findings, report schema 2."""
    from iolens.analysis.analyze import analyze_path

    rep = analyze_path(_capture(tmp_path), plots=False).to_json()
    assert rep["schema"] == 2
    assert {"IPC-OVERHEAD", "IPC-STARTUP", "IPC-FDS"} <= {f["code"] for f in rep["findings"]}
