"""Number formatting for table cells: short, fixed-width friendly, '-' for nothing."""

from __future__ import annotations

import math
from collections.abc import Sequence

SPARK_CHARS = " ▁▂▃▄▅▆▇█"


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def mbps(v: float | None) -> str:
    """bytes/s -> MB/s (10^6) text; '-' for zero or missing."""
    if _missing(v) or not v:
        return "-"
    mb = float(v) / 1e6
    if mb >= 100:
        return f"{mb:.0f}"
    return f"{mb:.1f}" if mb >= 0.05 else "<0.1"


def rate(v: float | None) -> str:
    """ops/s with k/M suffixes."""
    if _missing(v) or not v:
        return "-"
    v = float(v)
    if v >= 1e6:
        return f"{v / 1e6:.1f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    return f"{v:.0f}" if v >= 1 else f"{v:.1f}"


def pct(frac: float | None) -> str:
    """fraction -> percent ('-' for zero)."""
    if _missing(frac) or not frac:
        return "-"
    p = 100.0 * float(frac)
    return f"{p:.0f}" if p >= 10 else f"{p:.1f}"


def latency(ns: float | None) -> str:
    """ns -> '850ns', '12µs', '3.4ms', '1.2s'."""
    if _missing(ns) or not ns:
        return "-"
    ns = float(ns)
    for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= div:
            v = ns / div
            return f"{v:.1f}{unit}" if v < 10 else f"{v:.0f}{unit}"
    return f"{ns:.0f}ns"


def count(v: int | None) -> str:
    if _missing(v):
        return "-"
    return str(int(v))  # type: ignore[arg-type]


def duration(seconds: float) -> str:
    """seconds -> HH:MM:SS."""
    s = int(max(seconds, 0))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def interval(seconds: float) -> str:
    """An interval length for a header: 1s, 0.5s, 2.5s (never 0.806033s)."""
    return f"{seconds:.2g}s" if seconds < 10 else f"{seconds:.0f}s"


def sparkline(values: Sequence[float], width: int) -> str:
    """The last `width` values as block characters scaled to their own maximum."""
    vals = list(values)[-width:]
    vals = [0.0] * (width - len(vals)) + vals
    top = max(vals) if vals else 0.0
    if top <= 0:
        return " " * width
    n = len(SPARK_CHARS) - 1
    return "".join(SPARK_CHARS[min(n, math.ceil(v / top * n))] if v > 0 else " " for v in vals)


def left_trim(text: str, width: int) -> str:
    """Keep the end of a long path: '…/train/n01440764.JPEG'."""
    return text if len(text) <= width else "…" + text[-(width - 1):]


def lat_bucket_label(i: int) -> str:
    """Lower bound of log2 latency bucket i as text (2^i ns)."""
    return latency(float(2 ** i)) if i else "0"
