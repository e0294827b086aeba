"""Real BPF + real PyTorch (CPU): every process of a small AI job gets its role, every file
its class, from what the kernel and /proc show (tests/workloads/torch_roles.py).

Checked with plain pyarrow on the capture; readers take the latest `procs` row per pid.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

pytestmark = pytest.mark.bpf
WORKLOAD = Path(__file__).resolve().parent.parent / "workloads" / "torch_roles.py"
IOLENS = [sys.executable, "-m", "iolens.collector.cli"]

if importlib.util.find_spec("torch") is None:  # a failure under the CI switch (conftest.py)
    pytest.skip("torch not installed (pip install -e '.[scenarios]')", allow_module_level=True)


def read(out: Path, table: str):
    return ds.dataset(str(out / table), format="parquet").to_table()


def latest(procs) -> dict[int, dict]:
    """pid -> its latest procs row (the collector re-emits a row when a role changes)."""
    out: dict[int, dict] = {}
    for r in sorted(procs.to_pylist(), key=lambda r: r["ts"]):
        out[r["pid"]] = r
    return out


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    base = tmp_path_factory.mktemp("roles")
    work = base / "work"
    (work / "data").mkdir(parents=True)
    (work / "weights").mkdir()
    for i in range(16):
        (work / "data" / f"shard-{i:05d}.bin").write_bytes(os.urandom(4096))
    (work / "weights" / "pretrained.safetensors").write_bytes(os.urandom(100_000))
    out, truth = base / "cap", base / "truth.json"
    proc = subprocess.run([*IOLENS, "record", "-q", "-o", str(out), "--",
                           sys.executable, str(WORKLOAD), str(work), str(truth)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, work, json.loads(truth.read_text())


def test_each_process_gets_its_role(capture):
    out, _, truth = capture
    procs = latest(read(out, "procs"))
    want = {truth["launcher"]: ("launcher", None), truth["server"]: ("inference-server", None),
            truth["trainer"]: ("trainer", None), truth["ckpt_writer"]: ("checkpoint-writer", None),
            truth["rank0"]["pid"]: ("rank", 0), truth["rank1"]["pid"]: ("rank", 1)}
    want.update({w: ("dataloader", None) for w in truth["workers"]})
    assert len(truth["workers"]) == 2
    got = {pid: (procs[pid]["role"], procs[pid]["rank"]) if pid in procs else None
           for pid in want}
    assert got == want


def test_dataloader_workers_are_renamed_children_of_the_trainer(capture):
    out, _, truth = capture
    procs = latest(read(out, "procs"))
    for w in truth["workers"]:
        assert procs[w]["comm"] == "pt_data_worker"
        assert procs[w]["ppid"] == truth["trainer"]
    assert procs[truth["ckpt_writer"]]["ppid"] == truth["trainer"]
    # nothing else of the job has a role (forked threads are not processes)
    known = {truth["launcher"], truth["server"], truth["trainer"], truth["ckpt_writer"],
             truth["rank0"]["pid"], truth["rank1"]["pid"], *truth["workers"]}
    extra = {p: r["role"] for p, r in procs.items() if p not in known and r["role"]}
    assert extra == {}


def test_each_file_gets_its_class(capture):
    out, work, truth = capture
    io = read(out, "io")
    want = {f"{work}/data/shard-{i:05d}.bin": "dataset" for i in range(16)}
    want.update({f"{work}/weights/pretrained.safetensors": "weights",
                 f"{work}/checkpoints/last.ckpt": "checkpoint",
                 f"{work}/checkpoints/checkpoint-1/model.pt": "checkpoint",
                 f"{work}/logs/train.log": "log",
                 f"{work}/port.json": "other"})
    for path, cls in want.items():
        rows = io.filter(pc.equal(io["resource"], path))
        assert rows.num_rows, path
        assert set(rows["file_class"].to_pylist()) == {cls}, path
    # who did that I/O: the workers read the shards, the helper wrote the checkpoint dir
    shards = io.filter(pc.and_(pc.starts_with(io["resource"], f"{work}/data/shard-"),
                               pc.equal(io["op"], "read")))
    assert set(shards["pid"].to_pylist()) == set(truth["workers"])
    ck = io.filter(pc.and_(pc.equal(io["resource"], f"{work}/checkpoints/checkpoint-1/model.pt"),
                           pc.equal(io["op"], "write")))
    assert set(ck["pid"].to_pylist()) == {truth["ckpt_writer"]}


def test_gpu_probe_attached_or_skipped_with_the_reason(capture):
    out, _, _ = capture
    meta = json.loads((out / "capture.json").read_text())
    if "gpu" in meta["probes_attached"]:
        gpu = read(out, "gpu")
        assert gpu.num_rows and gpu.filter(pc.is_null(gpu["pid"])).num_rows
    else:
        assert meta["probes_skipped"]["gpu"].startswith("no NVIDIA GPU/NVML on this host")
        assert not (out / "gpu").exists()


def test_role_map_file_overrides(tmp_path):
    """--role-map: a user rule names a role and a file class the built-ins would not."""
    work = tmp_path / "w"
    work.mkdir()
    rm = tmp_path / "roles.toml"
    rm.write_text('[[role]]\nrole = "evaluator"\ncmdline = "EVAL_MARKER"\n'
                  '[[file_class]]\nclass = "dataset"\nglob = "*/w/*.custom"\n')
    # (it lives a second: the collector reads /proc of a process some 0.1 s after its exec)
    code = (f"import time; open({str(work / 'a.custom')!r}, 'w').write('x'); "
            f"open({str(work / 'a.custom')!r}).read(); time.sleep(1)  # EVAL_MARKER")
    out = tmp_path / "cap"
    proc = subprocess.run([*IOLENS, "record", "-q", "--role-map", str(rm), "-o", str(out), "--",
                           sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    io = read(out, "io")
    rows = io.filter(pc.equal(io["resource"], str(work / "a.custom")))
    assert set(rows["file_class"].to_pylist()) == {"dataset"}
    pid = rows["pid"][0].as_py()
    assert latest(read(out, "procs"))[pid]["role"] == "evaluator"
    bad = tmp_path / "bad.toml"
    bad.write_text("[[role]]\nrole = 'x'\n")
    proc = subprocess.run([*IOLENS, "record", "-q", "--role-map", str(bad), "-o",
                           str(tmp_path / "cap2"), "--", "true"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "needs at least one of comm, cmdline, exe" in proc.stderr
    assert not (tmp_path / "cap2").exists()
