"""Real BPF, as root: a small-file loader (benchmarks/wl_smallfiles.py) under `iolens record`.

Two recordings of the same kind of load, checked against the workload's own counts with plain
pyarrow:
- light: fewer files than the file-grain map holds: every op has its file's row, exact per
  file (samples, bytes, opens, fstats, reads, closes per process) and nothing is folded;
- heavy: `--max-keys 64`, thousands of files in 40 directories read by 2 workers: ops beyond
  the file-grain map are folded into directory rows; still no op uncounted, totals exact per
  directory and for the file set, and every flip on time (no interval stretched by the
  per-file work: a generous 1.5x bound, the invariant being "no backlog", not a speed).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

pytestmark = pytest.mark.bpf
ROOT = Path(__file__).resolve().parents[2]
WL = ROOT / "benchmarks" / "wl_smallfiles.py"
IOLENS = [sys.executable, "-m", "iolens.collector.cli"]
OPS = (("open", "opens"), ("stat", "fstats"), ("read", "reads"), ("close", "closes"))


def record(base: Path, files: int, dirs: int, secs: float, *opts: str) -> tuple:
    data, cap, truth = base / "data", base / "cap", base / "truth.json"
    cmd = [sys.executable, str(WL), "--data", str(data), "--files", str(files), "--dirs",
           str(dirs), "--workers", "2", "--seconds", str(secs), "--work-us", "0",
           "--per-file", "--truth", str(truth)]
    # the file set is made before the recording: the workload's truth counts only loading
    subprocess.run([*cmd, "--prepare"], check=True, capture_output=True, timeout=300)
    proc = subprocess.run([*IOLENS, "record", "-q", "-o", str(cap), *opts, "--", *cmd],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    io = ds.dataset(str(cap / "io"), format="parquet").to_table()
    health = ds.dataset(str(cap / "health"), format="parquet").to_table()
    return io, health, json.loads(truth.read_text())


@pytest.fixture(scope="module")
def light(tmp_path_factory):
    return record(tmp_path_factory.mktemp("light"), 300, 6, 1.5)


@pytest.fixture(scope="module")
def heavy(tmp_path_factory):
    return record(tmp_path_factory.mktemp("heavy"), 4000, 40, 3.0, "--max-keys", "64")


def procs_of(truth: dict) -> list[dict]:
    return [truth["main"], *truth["workers"]]


def rows_under(io, root: str):
    return io.filter(pc.starts_with(pc.fill_null(io["resource"], ""), root + "/"))


def per_key(io, keyfn) -> dict:
    out: dict = {}
    cols = io.select(["pid", "op", "resource", "count", "bytes", "grain"]).to_pydict()
    for pid, op, res, n, b, g in zip(*cols.values()):
        k = keyfn(pid, op, res, g)
        c = out.setdefault(k, [0, 0])
        c[0] += n
        c[1] += b
    return out


def test_light_load_exact_per_file_nothing_folded(light):
    io, health, truth = light
    assert pc.sum(health["agg_overflow"]).as_py() == 0
    assert pc.sum(health["folded_dir"]).as_py() == 0 == pc.sum(health["folded_proc"]).as_py()
    assert pc.sum(health["newfile_lost"]).as_py() == 0
    sel = rows_under(io, truth["data"])
    assert set(sel["grain"].to_pylist()) == {"file"}
    got = per_key(sel, lambda pid, op, res, g: (pid, op, res))
    for p in procs_of(truth):
        assert p["per_file"], "the workload counted no file"
        for path, (samples, nbytes) in p["per_file"].items():
            assert got.get((p["pid"], "open", path), [0])[0] == samples, path
            assert got.get((p["pid"], "stat", path), [0])[0] == samples, path
            assert got.get((p["pid"], "close", path), [0])[0] == samples, path
            assert got.get((p["pid"], "read", path)) == [2 * samples, nbytes], path


def test_heavy_load_folds_into_directories_and_stays_exact(heavy):
    io, health, truth = heavy
    assert pc.sum(health["agg_overflow"]).as_py() == 0, "ops not counted"
    assert pc.sum(health["folded_dir"]).as_py() > 0, "the load did not exceed --max-keys"
    assert pc.sum(health["newfile_lost"]).as_py() == 0
    sel = rows_under(io, truth["data"])
    assert {"file", "dir"} <= set(sel["grain"].to_pylist())
    # directory rows name their directory with a trailing '/'
    dirs = sel.filter(pc.equal(sel["grain"], "dir"))["resource"].to_pylist()
    assert all(d.endswith("/") for d in dirs)

    def dir_of(pid, op, res, g):
        return pid, op, res.rstrip("/") if g == "dir" else res.rpartition("/")[0]

    got = per_key(sel, dir_of)
    for p in procs_of(truth):
        for d, (samples, nbytes) in p["per_dir"].items():
            for op, _ in OPS:
                want = 2 * samples if op == "read" else samples
                assert got.get((p["pid"], op, d), [0])[0] == want, (p["pid"], op, d)
            assert got[(p["pid"], "read", d)][1] == nbytes, (p["pid"], d)
    # the rows a file did get never hold more than the file's own ops
    files = per_key(sel.filter(pc.equal(sel["grain"], "file")),
                    lambda pid, op, res, g: (pid, op, res))
    truth_files = {(p["pid"], path): v for p in procs_of(truth)
                   for path, v in p["per_file"].items()}
    for (pid, op, path), (n, b) in files.items():
        samples, nbytes = truth_files[(pid, path)]
        assert n <= (2 * samples if op == "read" else samples) and b <= nbytes


def test_heavy_load_flips_on_time(heavy):
    _, health, _ = heavy
    lengths = health["interval_s"].to_pylist()[:-1]  # the last one ends with the command
    assert lengths and max(lengths) < 1.5, lengths
