"""Real-BPF tier: fast labeled scenarios recorded with `iolens record` (as root), analysed with
`iolens analyze --json`; the top finding must be the injected bottleneck.

checkpoint_fsync needs torch (the `scenarios` extra: pip install -e '.[scenarios]', CPU
build); it fails with that instruction when torch is missing rather than skipping silently.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios" / "run_suite.py"


def _suite():
    spec = importlib.util.spec_from_file_location("run_suite", SUITE)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["run_suite"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.bpf
@pytest.mark.parametrize("name", ["random_reads", "checkpoint_fsync"])
def test_fast_scenario_top_finding(name, tmp_path):
    if name == "checkpoint_fsync" and importlib.util.find_spec("torch") is None:
        pytest.fail("torch missing: install the scenarios extra (pip install -e '.[scenarios]', "
                    "CPU build) for the real-PyTorch scenarios")
    suite = _suite()
    scenario = next(s for s in suite.SCENARIOS if s.name == name)
    row = suite.run_one(scenario, tmp_path, seconds=6)
    assert row["ok"], row["got"]
