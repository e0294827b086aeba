"""Real BPF, as root: container attribution from a cgroup v2 child the test creates.

Everything on the test host sits in the v2 root otherwise, so the test makes
`<cgroup2>/iolens_test_<pid>/docker-<64 hex>.scope` (the shape systemd gives docker
containers), moves a shell into it before exec, and runs the workload in a new pid namespace
(`unshare --pid --fork --mount-proc`): the capture must carry the cgroup path, its v2 id (the
directory's inode), the container id parsed from the path, and the namespace pid (1) next to
the host pid. The cgroups are removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

pytestmark = pytest.mark.bpf
IOLENS = [sys.executable, "-m", "iolens.collector.cli"]
CID = "c0ffee" + "0123456789abcdef" * 3 + "0123456789"  # 64 hex digits

WORKLOAD = r"""
import json, os, sys, time
marker, truth = sys.argv[1], sys.argv[2]
with open(marker, "w") as f:
    f.write("in a container")
time.sleep(1.5)  # live long enough for the collector to read /proc
with open(truth, "w") as f:
    json.dump({"ns_pid": os.getpid(), "cgroup": open("/proc/self/cgroup").read()}, f)
"""


def cgroup2_root() -> str | None:
    for line in open("/proc/self/mountinfo"):
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            return left.split()[4]
    return None


@pytest.fixture
def container_cgroup():
    root = cgroup2_root()
    assert root, "no cgroup2 hierarchy mounted"
    parent = Path(root) / f"iolens_test_{os.getpid()}"
    leaf = parent / f"docker-{CID}.scope"
    leaf.mkdir(parents=True, exist_ok=True)
    try:
        yield root, leaf
    finally:
        for cg in (leaf, parent):
            for _ in range(50):
                try:
                    cg.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # a process still inside: move it out, then retry
                    try:
                        for pid in (cg / "cgroup.procs").read_text().split():
                            (Path(root) / "cgroup.procs").write_text(pid)
                    except OSError:
                        pass
                    time.sleep(0.1)


def test_cgroup_container_and_namespace_pid(tmp_path, container_cgroup):
    root, leaf = container_cgroup
    unshare = shutil.which("unshare")
    assert unshare, "util-linux unshare is needed"
    script = tmp_path / "wl.py"
    script.write_text(WORKLOAD)
    marker, truth, out = tmp_path / "marker.txt", tmp_path / "truth.json", tmp_path / "cap"
    inner = (f'echo $$ > {leaf}/cgroup.procs && exec {unshare} --pid --fork --mount-proc '
             f'{sys.executable} {script} {marker} {truth}')
    proc = subprocess.run([*IOLENS, "record", "-q", "-o", str(out), "--", "/bin/sh", "-c", inner],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    t = json.loads(truth.read_text())
    rel = "/" + str(leaf.relative_to(root))
    assert f"0::{rel}" in t["cgroup"] and t["ns_pid"] == 1

    io = ds.dataset(str(out / "io"), format="parquet").to_table()
    rows = io.filter(pc.equal(io["resource"], str(marker)))
    pids = set(rows["pid"].to_pylist())
    assert len(pids) == 1
    host_pid = pids.pop()
    assert host_pid != 1
    cgid = os.stat(leaf).st_ino
    assert set(rows["cgroup_id"].to_pylist()) == {cgid}

    procs = ds.dataset(str(out / "procs"), format="parquet").to_table().to_pylist()
    latest = {}
    for r in sorted(procs, key=lambda r: r["ts"]):
        latest[r["pid"]] = r
    me = latest[host_pid]
    assert (me["cgroup"], me["cgroup_id"], me["container_id"], me["ns_pid"]) == \
        (rel, cgid, CID, 1)
    # its parent (sh exec'd into unshare) is in the same container, outside the new pid ns
    parent = latest[me["ppid"]]
    assert (parent["cgroup"], parent["cgroup_id"], parent["container_id"]) == (rel, cgid, CID)
    assert parent["ns_pid"] == parent["pid"]
