"""The same analysis on Spark (issue 8): a generated fleet tree gives identical findings with
DuckDB and with Spark in local mode, and the injected straggler host is found.

The tree (tests/analysis/fleet.py, written by the real CaptureWriter in hive layout): 4 hosts,
1,200,000 io rows over 240 one-second intervals in two date= partitions, node02's reads 4x
slower and its clock unsynchronised. 1.2M rows is above HIST_EXACT_ROWS, so the sampled
histogram path is compared too. About 60-80 s on a loaded 2-core machine, most of it Spark
(JVM start ~20 s, then ~20 scans of the tree in local[2]).

pyspark and Java are required in CI (under the CI switch of tests/conftest.py the skip is a
failure) and optional elsewhere (skipped).
"""

from __future__ import annotations

import math
from dataclasses import asdict

import pytest
from iolens.analysis.analyze import analyze_path

from tests.analysis import fleet
from tests.analysis.spark import need_spark

ROWS = 1_200_000
HOSTS = 4
STRAGGLER = 2


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return fleet.generate(tmp_path_factory.mktemp("fleet") / "tree", hosts=HOSTS, rows=ROWS,
                          straggler=STRAGGLER)


@pytest.fixture(scope="module")
def duck(tree):
    return analyze_path(tree.root, plots=False)


def _close(a, b, where: str) -> None:
    """Equal, floats within a relative 1e-9 (sums may be added in another order)."""
    if isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None, where
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), f"{where}: {a} != {b}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: {a} != {b}"
        for k in a:
            _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: {a} != {b}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_duckdb_finds_the_straggler(tree, duck):
    assert tree.io_rows >= 1_000_000
    hosts = [tree.hosts[i] for i in range(HOSTS)]
    assert sorted({p.parent.parent.name for p in tree.root.rglob("io/part-*.parquet")}) == \
        ["date=2025-11-24", "date=2025-11-25"]
    by_code = {f.code: f for f in duck.findings}
    assert "FLEET-STRAGGLER" in by_code and "FLEET-SLOWHOST" in by_code, by_code.keys()
    for code, cat in (("FLEET-STRAGGLER", "imbalance"), ("FLEET-SLOWHOST", "slow-device")):
        f = by_code[code]
        assert f.category == cat
        assert f.culprit["resource"] == f"host:{tree.straggler}"
        assert f.culprit["host"] == f.evidence["host"] == tree.straggler
        assert f.severity in ("high", "warn")
    assert by_code["FLEET-STRAGGLER"].evidence["ranks"] == [STRAGGLER]
    assert by_code["FLEET-SLOWHOST"].evidence["ratio"] == pytest.approx(4.0, rel=0.05)
    # only one straggler: no other host is named
    named = {f.culprit["resource"] for f in duck.findings if f.code.startswith("FLEET-")}
    assert named == {f"host:{tree.straggler}"}
    # on a fleet tree every culprit says its host (pids are distinct here)
    assert all(f.culprit["host"] == tree.straggler for f in duck.findings), duck.findings
    clock = duck.health["clock"]
    assert sorted(clock["hosts"]) == hosts
    assert clock["hosts"][tree.straggler]["synced"] is False
    assert clock["warning"] and tree.straggler in clock["warning"]
    assert clock["warning"] in duck.health["notes"]


def test_spark_gives_identical_findings(tree, duck):
    need_spark()
    spark = analyze_path(tree.root, plots=False, engine="spark", master="local[2]")
    d, s = duck.to_json(), spark.to_json()
    assert [(f["code"], f["category"], f["severity"], f["culprit"]) for f in s["findings"]] == \
        [(f["code"], f["category"], f["severity"], f["culprit"]) for f in d["findings"]]
    for a, b in zip(duck.findings, spark.findings, strict=True):
        _close(asdict(a), asdict(b), a.code)
    _close(d["verdict"], s["verdict"], "verdict")
    _close(d["totals"], s["totals"], "totals")
    _close(d["top"], s["top"], "top")
    _close(d["health"], s["health"], "health")
    assert any(f.code == "FLEET-STRAGGLER" and f.culprit["resource"] == f"host:{tree.straggler}"
               for f in spark.findings)


def test_cli_fleet_json_default_engine(tree, capsys):
    import json

    from iolens.analysis.cli import main
    assert main([str(tree.root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    codes = {f["code"]: f for f in out["findings"]}
    assert codes["FLEET-STRAGGLER"]["culprit"]["resource"] == f"host:{tree.straggler}"
    assert out["health"]["clock"]["warning"]


def test_cli_spark_without_pyspark_is_one_line(tree, capsys, monkeypatch):
    import sys

    from iolens.analysis.cli import main
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark -> ImportError
    assert main([str(tree.root), "--engine", "spark"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pyspark" in err[0] and "Traceback" not in err[0], err


def test_cli_unknown_engine_is_usage_error(tree):
    from iolens.analysis.cli import main
    with pytest.raises(SystemExit) as exc:
        main([str(tree.root), "--engine", "postgres"])
    assert exc.value.code == 2


def test_clock_single_host_and_synced_fleet():
    from iolens.analysis.summary import clock_summary
    from iolens.collector.capture import CaptureMeta

    def meta(host, synced, err_us):
        return CaptureMeta(host=host, clock=fleet.clock_samples(0, 120, synced, err_us))
    one = clock_summary([meta("a", False, 900_000.0)], 100.0)
    assert one["warning"] is None  # one host: nothing to align
    ok = clock_summary([meta("a", True, 20_000.0), meta("b", True, 30_000.0)], 100.0)
    assert ok["warning"] is None and ok["max_disagreement_ms"] == 50.0
    far = clock_summary([meta("a", True, 20_000.0), meta("b", True, 90_000.0)], 100.0)
    assert far["max_disagreement_ms"] == 110.0 and "110 ms" in far["warning"]
    assert "b" in far["warning"] and "not NTP-synchronised" not in far["warning"]


def test_fleet_rules_silent_on_one_host(tmp_path):
    f = fleet.generate(tmp_path / "one", hosts=1, rows=20_000, straggler=0, intervals=60)
    r = analyze_path(f.root, plots=False)
    assert not [x for x in r.findings if x.code.startswith("FLEET-")]
    assert r.health["clock"]["warning"] is None


def test_fleet_rules_silent_without_a_straggler(tmp_path):
    f = fleet.generate(tmp_path / "even", hosts=3, rows=60_000, straggler=-1, intervals=60)
    r = analyze_path(f.root, plots=False)
    assert not [x for x in r.findings if x.code.startswith("FLEET-")], r.findings
    assert r.health["clock"]["warning"] is None


def test_pids_shared_by_hosts_are_reported(tmp_path):
    f = fleet.generate(tmp_path / "same", hosts=2, rows=20_000, straggler=1, intervals=60,
                       distinct_pids=False)
    h = analyze_path(f.root, plots=False).health
    assert h["hosts"] == 2 and h["shared_pids"] == 9  # trainer + 8 workers on both hosts
    assert any("occur on more than one" in n for n in h["notes"])
