"""collector/taskstats.py: per-thread CPU time deltas from schedstat (the `cpu` table), on a
fake /proc tree (pure tier; the real one is checked in tests/bpf/test_capture_exact.py)."""

from __future__ import annotations

from types import SimpleNamespace

from iolens.collector.taskstats import TaskStats

START = 1_000


def _task(root, pid: int, tid: int, cpu: int, runq: int, slices: int, comm: str = "w") -> None:
    d = root / str(pid) / "task" / str(tid)
    d.mkdir(parents=True, exist_ok=True)
    (d / "schedstat").write_text(f"{cpu} {runq} {slices}\n")
    (d / "comm").write_text(comm + "\n")


def test_old_process_is_a_baseline_new_one_counts_from_zero(tmp_path):
    # pid 10 ran before the capture: its first reading is only a baseline; pid 20 started
    # inside it: all of its CPU is the capture's
    _task(tmp_path, 10, 10, 5_000, 100, 7)
    _task(tmp_path, 20, 21, 300, 0, 2, "loader")
    ts = TaskStats(START, str(tmp_path))
    first = ts.sample([10, 20], {10: START - 1, 20: START + 1})
    assert list(zip(first["tid"], first["cpu_ns"], first["comm"], strict=True)) == \
        [(21, 300, "loader")]
    _task(tmp_path, 10, 10, 5_900, 150, 9)
    _task(tmp_path, 20, 21, 300, 0, 2)  # did not run: no row
    second = ts.sample([10, 20], {10: START - 1, 20: START + 1})
    assert (second["tid"], second["cpu_ns"], second["runq_ns"], second["slices"]) == \
        ([10], [900], [50], [2])


def test_table_skips_exited_processes_and_forgets_gone_threads(tmp_path):
    _task(tmp_path, 30, 30, 100, 0, 1)
    _task(tmp_path, 31, 31, 100, 0, 1)
    ts = TaskStats(START, str(tmp_path))
    procs = {30: SimpleNamespace(start_ns=START + 5, exit_ns=None),
             31: SimpleNamespace(start_ns=START + 5, exit_ns=START + 9)}
    t = ts.table(procs, START, 1.0, "h")
    assert t.column("pid").to_pylist() == [30] and t.column("host").to_pylist() == ["h"]
    (tmp_path / "30" / "task" / "30" / "schedstat").unlink()
    assert ts.table(procs, START, 1.0, "h").num_rows == 0
    assert ts._prev == {}
