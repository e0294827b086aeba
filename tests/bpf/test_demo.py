"""Real BPF, as root: `make demo` (README's first command) records the bundled demo workload
with `iolens record --demo` and analyses it.

Checked: the capture holds the demo's processes (its trainer and the DataLoader-like workers
it forks each epoch) and exactly the dataset and checkpoint I/O the demo is written to do
(sizes from collector/demo.py itself); the analysis gives findings, each a code of the rule
table in analysis/README.md, and `make demo` printed that analysis. Which finding comes first
is left to the demo's author (it is expected to change), not fixed here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from iolens.analysis.rules import CATEGORIES
from iolens.collector import demo

pytestmark = pytest.mark.bpf
ROOT = Path(__file__).resolve().parents[2]


def _rule_codes() -> set[str]:
    """Codes of the rule table in analysis/README.md ("IO-SMALL-READ/WRITE" is two codes; a
    cell may list more, separated by "/", "," or words in parentheses)."""
    codes: set[str] = set()
    for line in (ROOT / "analysis" / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) < 4 or cells[1] not in CATEGORIES:
            continue
        for code in re.findall(r"[A-Z]+(?:-[A-Z]+)+(?:/[A-Z]+)*", cells[2]):
            head, *alts = code.split("/")
            codes.add(head)
            codes.update(head.rsplit("-", 1)[0] + "-" + alt for alt in alts)
    return codes


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """`make demo` with this venv into a scratch DEMO_DIR: (stdout, capture dir)."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("make demo sets up a venv: run the tests from one (make test does)")
    cap = tmp_path_factory.mktemp("demo") / "cap"
    proc = subprocess.run(["make", "-s", "demo", f"VENV={sys.prefix}", f"DEMO_DIR={cap}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=280,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout, cap


def _table(cap: Path, name: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted(cap.glob(f"{name}/part-*.parquet"))],
                            promote_options="default")


def test_demo_records_its_processes_and_exactly_its_io(made):
    _, cap = made
    meta = json.loads((cap / "capture.json").read_text())
    assert meta["complete"] is True and meta["exit_code"] == 0 and meta["intervals"] > 0
    assert meta["command"][-2:] == ["-m", "iolens.collector.demo"]
    procs, io = _table(cap, "procs"), _table(cap, "io")
    pids = set(procs["pid"].to_pylist())
    roots = {r["pid"] for r in procs.to_pylist() if r["ppid"] not in pids}  # record's child
    assert len(roots) == 1, procs.to_pylist()
    trainer = roots.pop()
    workers = {r["pid"] for r in procs.to_pylist() if r["ppid"] == trainer}
    assert len(workers) == 2 * demo.EPOCHS  # two workers forked per epoch
    # each worker reads its half of the dataset once: whole files, every byte
    reads = io.filter(pc.and_(pc.equal(io["op"], "read"),
                              pc.match_substring(io["resource"], "/dataset/")))
    for w in workers:
        got = pc.sum(reads.filter(pc.equal(reads["pid"], w))["bytes"]).as_py()
        assert got == demo.N_FILES // 2 * demo.FILE_SIZE, w
    assert set(reads["pid"].to_pylist()) == workers
    # the trainer's checkpoint: one file of 4 MiB and one fsync per epoch
    ck = io.filter(pc.and_(pc.equal(io["pid"], trainer),
                           pc.match_substring(io["resource"], "/checkpoint_epoch")))
    for op, want in (("write", demo.EPOCHS * (4 << 20)), ("fsync", demo.EPOCHS)):
        rows = ck.filter(pc.equal(ck["op"], op))
        assert pc.sum(rows["bytes" if op == "write" else "count"]).as_py() == want, op


def test_demo_analysis_gives_findings_from_the_rule_table(made):
    stdout, cap = made
    proc = subprocess.run([sys.executable, "-m", "iolens.collector.cli", "analyze", "--json",
                           str(cap)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    findings = json.loads(proc.stdout)["findings"]
    assert findings
    known = _rule_codes()
    for f in findings:
        assert f["code"] in known, (f["code"], sorted(known))
        assert f["category"] in CATEGORIES
        assert f["category"] in stdout  # `make demo` printed this analysis
