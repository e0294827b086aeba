"""What changed between two captures: `iolens analyze run2 --baseline run1`.

In: two `Report`s (current, baseline). Out: `Comparison` — headline metrics side by side with
relative change, findings that are new, gone, or whose impact changed by more than 25%
(matched by code + category + culprit comm/role/resource, since pids differ between runs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

CHANGED = 0.25

_METRICS = (
    ("wall_s", lambda r: r.totals.get("wall_s", 0.0)),
    ("io_time_fraction", lambda r: r.verdict.io_time_fraction),
    ("read_bytes", lambda r: r.totals.get("read_bytes", 0)),
    ("write_bytes", lambda r: r.totals.get("write_bytes", 0)),
    ("net_bytes", lambda r: r.totals.get("send_bytes", 0) + r.totals.get("recv_bytes", 0)),
    ("ops", lambda r: r.totals.get("ops", 0)),
    ("blocked_s", lambda r: sum((r.totals.get("blocked_s_by_kind") or {}).values())),
)


@dataclass
class Comparison:
    summary: str
    metrics: list[dict[str, Any]] = field(default_factory=list)
    new: list[dict[str, Any]] = field(default_factory=list)
    gone: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _key(f: Any) -> tuple:
    c = f.culprit
    return (f.code, f.category, c.get("comm"), c.get("role"), c.get("resource"))


def _change(base: float, cur: float) -> float | None:
    return None if not base else (cur - base) / abs(base)


def compare(current: Any, baseline: Any) -> Comparison:
    """Compare two reports (see module docstring)."""
    metrics = []
    for name, get in _METRICS:
        b, c = float(get(baseline)), float(get(current))
        metrics.append({"metric": name, "baseline": round(b, 4), "current": round(c, 4),
                        "change": None if _change(b, c) is None else round(_change(b, c), 4)})
    base = {_key(f): f for f in baseline.findings}
    cur = {_key(f): f for f in current.findings}
    brief = lambda f: {"code": f.code, "category": f.category, "title": f.title,  # noqa: E731
                       "severity": f.severity, "impact_s": f.impact_s, "culprit": f.culprit}
    new = [brief(f) for k, f in cur.items() if k not in base]
    gone = [brief(f) for k, f in base.items() if k not in cur]
    changed = []
    for k in cur.keys() & base.keys():
        ch = _change(base[k].impact_s, cur[k].impact_s)
        if ch is not None and abs(ch) > CHANGED:
            changed.append({**brief(cur[k]), "impact_s_baseline": base[k].impact_s,
                            "change": round(ch, 4)})
    wall = metrics[0]
    verdict = ("verdict changed: " + ("now I/O-bound" if current.verdict.io_bound else
                                      "no longer I/O-bound")
               if current.verdict.io_bound != baseline.verdict.io_bound else
               "verdict unchanged")
    summary = (f"wall {wall['baseline']:.1f} s -> {wall['current']:.1f} s; {verdict}; "
               f"{len(new)} new, {len(gone)} gone, {len(changed)} changed finding(s)")
    return Comparison(summary, metrics, new, gone,
                      sorted(changed, key=lambda x: -abs(x["change"])))
