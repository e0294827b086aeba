"""Shared pytest set-up: the `bpf` and `root` tiers and the CI switch that forbids skips.

Tests marked `bpf` need root and a kernel that loads BCC tracepoint programs; tests marked
`root` need root only (chown to another uid, setpriv). Both skip when that is not available.

The CI switch: IOLENS_REQUIRE_BPF=1 (set by .ci/run and `make test`) or IOLENS_REQUIRE_ALL=1.
Under it no test may skip: a skip of any kind (a tier's, `pytest.skip`, `skipif`,
`importorskip`, a module skipped at import) is reported as a failure naming what was missing,
so CI can never pass by hiding a test. Expected failures (`xfail`) are not skips.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REQUIRE_BPF = os.environ.get("IOLENS_REQUIRE_BPF") == "1"
REQUIRE_ALL = REQUIRE_BPF or os.environ.get("IOLENS_REQUIRE_ALL") == "1"

# Property tests: no per-example deadline (this 2-core machine is shared and noisy; speed is
# measured by benchmarks/, never by tests), and a fixed example budget.
from hypothesis import settings  # noqa: E402

settings.register_profile("iolens", deadline=None, max_examples=60)
settings.load_profile("iolens")


def pytest_configure(config):
    # registered here, not in pyproject.toml, whose hash decides when set-up reinstalls
    config.addinivalue_line("markers", "root: needs root but no BPF (files of another uid); "
                            "skipped for a normal user, never under the CI switch")


def _bpf_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    try:
        from iolens.probes import preflight
    except Exception as exc:  # noqa: BLE001
        return f"preflight import failed: {exc}"
    caps = preflight.check(quick=True)
    return None if caps.can_trace else "; ".join(caps.problems) or "cannot trace"


def pytest_collection_modifyitems(config, items):
    """Skip the `root` tier for a normal user and the `bpf` tier where BPF cannot run."""
    if os.geteuid() != 0:
        for item in items:
            if item.get_closest_marker("root"):
                item.add_marker(pytest.mark.skip(reason="needs root (another uid's files)"))
    bpf_items = [i for i in items if i.get_closest_marker("bpf")]
    if not bpf_items:
        return
    reason = _bpf_unavailable_reason()
    if reason is None:
        return
    if REQUIRE_BPF:
        raise pytest.UsageError(f"IOLENS_REQUIRE_BPF=1 but BPF is unavailable: {reason}")
    for item in bpf_items:
        item.add_marker(pytest.mark.skip(reason=f"BPF unavailable: {reason}"))


def _skip_reason(longrepr) -> str:
    """The reason text of a skip report (a (path, line, reason) tuple or a string)."""
    return longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under the CI switch a skipped test is a failed one (xfail stays what it is)."""
    outcome = yield
    rep = outcome.get_result()
    if REQUIRE_ALL and rep.skipped and not hasattr(rep, "wasxfail"):
        rep.outcome = "failed"
        rep.longrepr = (f"skipped under the CI switch (IOLENS_REQUIRE_BPF/IOLENS_REQUIRE_ALL), "
                        f"which forbids skips: {_skip_reason(rep.longrepr)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """Under the CI switch a module that skips itself at import (module-level `pytest.skip`,
    `importorskip`) fails its collection instead of vanishing from the run."""
    outcome = yield
    rep = outcome.get_result()
    if REQUIRE_ALL and rep.skipped:
        rep.outcome = "failed"
        rep.longrepr = (f"{collector.nodeid} skipped at collection under the CI switch, which "
                        f"forbids skips: {_skip_reason(rep.longrepr)}")
