"""One replica round trip with the real probes: record a small workload, `iolens
replay-config --fio`, lay the files out (`fio --create_only=1`, not recorded), record fio
running the job file, and compare the two captures per file class with the reductions of
replica_compare (bpf tier, root, fio; a few seconds of recording each).

The workload (written below) knows its answers: a reader opens 40 files of 64 KiB under a
dataset directory and reads each in 16 KiB requests (plus the end-of-file read, which no
replay tool issues and the comparison counts apart), with a short pause per file; a
checkpoint writer writes 3 times 8 x 256 KiB to one `.pt` file, fsyncing each time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest
from iolens.analysis.replica_compare import class_metrics, fidelity
from iolens.collector.capture import read_capture

pytestmark = pytest.mark.bpf
IOLENS = [sys.executable, "-m", "iolens.collector.cli"]

WORKLOAD = textwrap.dedent("""
    import os, sys, time
    root = sys.argv[1]
    data = os.path.join(root, "data", "train")
    for i in range(40):
        with open(os.path.join(data, f"shard-{i:03d}.rec"), "rb", buffering=0) as f:
            while f.read(16384):
                pass
        time.sleep(0.02)
    for step in range(3):
        with open(os.path.join(root, "ckpt", "model.pt"), "wb", buffering=0) as f:
            for _ in range(8):
                f.write(b"x" * 262144)
            os.fsync(f.fileno())
        time.sleep(0.05)
""")


def _run(*argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    if not shutil.which("fio"):
        pytest.skip("fio not installed (apt-get install fio; .ci/setup.sh installs it)")
    base = tmp_path_factory.mktemp("replica")
    (base / "data" / "train").mkdir(parents=True)
    (base / "ckpt").mkdir()
    for i in range(40):
        (base / "data" / "train" / f"shard-{i:03d}.rec").write_bytes(bytes(65536))
    script = base / "work.py"
    script.write_text(WORKLOAD)
    orig, rep, target, job = base / "orig", base / "rep", base / "target", base / "job.fio"
    r = _run(*IOLENS, "record", "-q", "-o", str(orig), "--", sys.executable, str(script),
             str(base))
    assert r.returncode == 0, r.stderr
    r = _run(*IOLENS, "replay-config", str(orig), "--target", str(target), "--fio", str(job))
    assert r.returncode == 0, r.stderr
    target.mkdir()
    r = _run("fio", "--create_only=1", str(job))
    assert r.returncode == 0, r.stderr
    r = _run(*IOLENS, "record", "-q", "-o", str(rep), "--", "fio", str(job))
    assert r.returncode == 0, r.stderr
    om, rm = class_metrics(read_capture(orig).tables), class_metrics(read_capture(rep).tables)
    return om, rm, {(x.file_class, x.metric): x for x in fidelity(om, rm)}, job, target


def test_original_capture_has_the_known_answers(round_trip):
    om, _, _, _, _ = round_trip
    d, c = om["dataset"], om["checkpoint"]
    assert (d["opens"], d["data_ops"], d["bytes"]) == (40, 40 * 4, 40 * 65536)
    assert d["tiny_ops"] == 40                      # one end-of-file read per file
    assert (c["opens"], c["fsyncs"], c["data_ops"], c["bytes"]) == (3, 3, 24, 24 * 262144)


def test_replica_matches_per_class(round_trip):
    _, rm, rows, _, _ = round_trip
    for cls in ("dataset", "checkpoint"):
        for metric in ("bytes", "data_ops", "mean_request", "request_hist", "seq_share",
                       "opens", "fsyncs"):
            row = rows[(cls, metric)]
            assert row.ok in (True, None), (cls, metric, row)
    assert rm["checkpoint"]["fsyncs"] == 3 and rm["dataset"]["opens"] == 40


def test_replica_files_stay_under_the_target(round_trip):
    _, _, _, job, target = round_trip
    made = [p for p in target.rglob("*") if p.is_file()]
    assert made and all(p.name.startswith(("dataset-", "checkpoint-")) for p in made)
    assert "shard-" not in "".join(p.name for p in made)  # synthetic names only
