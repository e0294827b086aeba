"""Bottleneck rules: pure functions over capture tables -> findings.

API (used by `iolens analyze` and the TUI's verdict panel alike):
    run_rules(tables, meta=None, thresholds=None) -> list[Finding]   (sorted by impact_s)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

CATEGORIES = ("small-io", "metadata-heavy", "sync-stall", "random-access", "slow-device",
              "cache-miss", "mmap-fault-io", "network-latency", "network-bandwidth",
              "network-loss", "imbalance", "data-starvation")


@dataclass(frozen=True)
class Finding:
    """One attributed bottleneck (the JSON contract of `iolens analyze --json`)."""

    code: str
    category: str
    severity: str  # high | warn | info
    title: str
    culprit: dict[str, Any] = field(default_factory=dict)  # pid, comm, role, resource
    impact_s: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)
    recommendation: str = ""


def run_rules(tables: dict[str, pa.Table], meta: Any = None,
              thresholds: dict[str, Any] | None = None) -> list[Finding]:
    """Evaluate every rule on `tables` (name -> pyarrow Table of collector.schema)."""
    return []  # filled in by the analysis work (issue 5)
