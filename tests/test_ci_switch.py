"""The CI switch of tests/conftest.py: under IOLENS_REQUIRE_ALL=1 (or IOLENS_REQUIRE_BPF=1)
every kind of skip is a failure; without it the same tests skip.

Runs pytest in a subprocess on a scratch directory whose conftest is this suite's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SKIPPING = {
    "test_kinds.py": """
import sys
import pytest

def test_plain_skip():
    pytest.skip("no chromium")

@pytest.mark.skipif(True, reason="a tool is missing")
def test_skipif():
    pass

@pytest.mark.root
@pytest.mark.skipif(True, reason="stands in for a normal user")
def test_root_tier():
    pass

@pytest.mark.xfail(strict=True)
def test_xfail_is_not_a_skip():
    assert False

def test_passes():
    pass
""",
    "test_module_skip.py": """
import pytest
pytest.importorskip("iolens_no_such_module_xyz")

def test_never_collected():
    pass
""",
}


def _run(tmp_path: Path, **env: str) -> dict[str, int]:
    """Outcome counts of a pytest run over the scratch tests."""
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F401,F403\n")
    for name, text in SKIPPING.items():
        (tmp_path / name).write_text(text)
    clean = {k: v for k, v in os.environ.items()
             if k not in ("IOLENS_REQUIRE_BPF", "IOLENS_REQUIRE_ALL", "PYTEST_ADDOPTS")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider",
                           "-p", "no:randomly", "--continue-on-collection-errors", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**clean, "PYTHONPATH": str(ROOT), **env})
    summary = proc.stdout.strip().splitlines()[-1]
    return {k.rstrip("s"): int(n) for n, k in re.findall(r"(\d+) (\w+)", summary)}


def test_without_the_switch_skips_are_skips(tmp_path):
    assert _run(tmp_path) == {"passed": 1, "skipped": 4, "xfailed": 1}  # 3 tests + the module


@pytest.mark.parametrize("switch", ["IOLENS_REQUIRE_ALL", "IOLENS_REQUIRE_BPF"])
def test_under_the_switch_every_skip_fails(tmp_path, switch):
    # each skip fails: in the call (pytest.skip), at set-up (skipif marks: reported as
    # errors), at collection (the module); the xfail and the pass are kept as they are
    assert _run(tmp_path, **{switch: "1"}) == {"failed": 1, "error": 3, "passed": 1,
                                               "xfailed": 1}
