"""Small read-only panels: the health bar, the verdict panel and a latency histogram."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.text import Text
from textual.widgets import Static

from iolens.tui import format as fmt
from iolens.tui.model import Snapshot

SEVERITY_STYLE = {"high": "bold red", "warn": "bold yellow", "info": "bold cyan"}


def health_text(snap: Snapshot | None, status: str, paused: bool, sort_line: str) -> Text:
    """Line 1: mode, position/elapsed, interval, probes, lost events, collector CPU.
    Line 2: the view state (sort, filter, grouping, rows shown)."""
    t = Text()
    t.append(" iolens top ", style="bold reverse")
    if snap is None or (snap.intervals_seen == 0 and snap.position is None):
        t.append(f" {status or 'waiting for data…'}", style="bold yellow")
        t.append("\n" + sort_line, style="dim")
        return _one_row_each(t)
    if snap.position is not None:
        pos, total = snap.position
        state = "❚❚ paused" if (paused or snap.paused) else ("■ end" if snap.finished else "▶")
        speed = f" {snap.speed:g}×" if snap.speed else " max"
        t.append(f" REPLAY {pos}/{total} {state}{speed}", style="bold magenta")
    else:
        t.append(" LIVE", style="bold green")
        if paused:
            t.append(" ❚❚ paused", style="bold yellow")
        elif snap.finished:
            t.append(" ■ ended", style="bold")
    meta = snap.meta
    skipped = len(meta.probes_skipped or {})
    t.append(f" {fmt.duration(snap.elapsed_s)} │ {fmt.interval(_configured(snap))} intervals")
    t.append(f" │ probes {len(meta.probes_attached or [])}")
    if skipped:
        t.append(f", {skipped} skipped", style="yellow")
    lost_style = "bold red" if snap.lost_total else ""
    t.append(" │ lost ")
    t.append(f"{snap.lost_total}", style=lost_style)
    if snap.cpu_pct is not None:
        t.append(f" │ cpu {snap.cpu_pct:.1f}%")
    t.append("\n" + sort_line, style="dim")
    return _one_row_each(t)


def _one_row_each(t: Text) -> Text:
    """Each line stays one row: cut with an ellipsis rather than wrap in narrow terminals."""
    t.no_wrap = True
    t.overflow = "ellipsis"
    return t


class HealthBar(Static):
    """Two lines of capture health and view state at the top of the screen."""


def finding_text(findings: Sequence[Any], error: str | None, window_s: float,
                 have_data: bool, coverage: str = "") -> Text:
    """One line per finding: severity, category, title, culprit. `coverage`: what the
    capture missed in the window, said first (empty when it saw everything)."""
    t = Text()
    if coverage and have_data:
        t.append(coverage + "\n", style="bold yellow")
    if error:
        t.append(f"rules failed: {error}", style="red")
        return t
    if not have_data:
        t.append("verdicts appear once data arrives", style="dim")
        return t
    if not findings:
        t.append(f"no rule fires on the last {window_s:.0f}s", style="dim")
        return t
    for i, f in enumerate(findings):
        if i:
            t.append("\n")
        sev = str(getattr(f, "severity", "info"))
        t.append(f"{sev.upper():<4} ", style=SEVERITY_STYLE.get(sev, "bold"))
        t.append(f"{getattr(f, 'category', '')}: ", style="bold")
        t.append(str(getattr(f, "title", "")))
        culprit = _culprit(getattr(f, "culprit", {}) or {})
        if culprit:
            t.append(f"  ({culprit})", style="dim")
    return t


def _culprit(c: dict) -> str:
    parts = []
    if c.get("pid") is not None:
        parts.append(f"pid {c['pid']}")
    for k in ("comm", "role", "resource"):
        if c.get(k):
            parts.append(str(c[k]))
    return " ".join(parts)


class VerdictPanel(Static):
    """The analysis rules that fire on the sliding window."""


def histogram_text(hist: Sequence[int], width: int = 40, title: str = "") -> Text:
    """Horizontal bars of a log2 latency histogram, from the first to the last used bucket."""
    t = Text(title + "\n" if title else "", style="bold")
    arr = np.asarray(list(hist), dtype=np.int64)
    if arr.size == 0 or arr.sum() == 0:
        t.append("no latency samples", style="dim")
        return t
    nz = np.nonzero(arr)[0]
    lo, hi = int(nz[0]), int(nz[-1])
    top = int(arr.max())
    total = int(arr.sum())
    for i in range(lo, hi + 1):
        n = int(arr[i])
        bar = "█" * (round(n / top * width) if n else 0)
        t.append(f"{fmt.lat_bucket_label(i):>6} ", style="dim")
        t.append(f"{bar:<{width}}", style="cyan")
        t.append(f" {n} ({100 * n / total:.0f}%)\n")
    t.rstrip()
    return t


class LatencyHistogram(Static):
    """Latency histogram of the selected row."""


def _configured(snap: Snapshot) -> float:
    """The recording's interval (the newest one may be short: the first, or a late flip)."""
    meta = getattr(snap, "meta", None)
    return getattr(meta, "interval_s", None) or snap.interval_s
