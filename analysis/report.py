"""Terminal report (rich): verdict, ranked findings with evidence, top tables, capture health.

In: a `Report` (analysis/analyze.py) or a baseline `Comparison`. Out: text on a rich Console.
Rules never print; this is the only place that formats for people.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

SEV_STYLE = {"high": "bold red", "warn": "yellow", "info": "cyan"}


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f}"


def _evidence_text(ev: dict[str, Any]) -> str:
    parts = []
    for k, v in ev.items():
        if isinstance(v, list):
            names = [x.get("resource", x) if isinstance(x, dict) else x for x in v[:3]]
            parts.append(f"{k}: {', '.join(str(n) for n in names)}")
        elif isinstance(v, dict):
            parts.append(f"{k}: " + ", ".join(f"{a}={b}" for a, b in v.items()))
        else:
            parts.append(f"{k}={v}")
    return "; ".join(parts)


def render(report: Any, console: Console, top_n: int = 10) -> None:
    """Print the whole report."""
    v = report.verdict
    # incomplete capture (io_bound None): neither the all-clear green nor the red verdict
    style = "bold yellow" if v.io_bound is None else "bold red" if v.io_bound else "bold green"
    console.print(Panel(Text(v.summary, style=style),
                        title=f"iolens analyze: {report.capture}", expand=False))
    render_findings(report.findings, console)
    render_top(report.top, console, top_n)
    render_health(report.health, console)


def render_findings(findings: list, console: Console) -> None:
    if not findings:
        console.print("[green]No bottleneck findings.[/]")
        return
    for i, f in enumerate(findings, 1):
        c = f.culprit
        who = ", ".join(f"{k}={c[k]}" for k in ("pid", "comm", "role", "resource")
                        if c.get(k) is not None)
        console.print(Text.assemble((f"{i}. [{f.severity.upper()}] ", SEV_STYLE[f.severity]),
                                    (f"{f.category} ", "bold"), f"{f.title}  ",
                                    (f"~{f.impact_s:.2f} s", "bold")))
        # Capture strings (paths, comms) may look like rich markup: never interpret them.
        console.print(f"   culprit: {who}", highlight=False, markup=False)
        console.print(f"   evidence: {_evidence_text(f.evidence)}", highlight=False, markup=False)
        console.print(f"   fix: {f.recommendation}", highlight=False, markup=False)


def render_top(top: dict[str, list[dict]], console: Console, n: int) -> None:
    specs = {"processes": ("pid", "comm", "role", "ops", "bytes", "blocked_s", "blocked_share",
                           "waiting_on_peers_s"),
             "files": ("resource", "ops", "bytes", "blocked_s"),
             "peers": ("resource", "ops", "bytes", "blocked_s")}
    for name, cols in specs.items():
        rows = top.get(name) or []
        if not rows:
            continue
        t = Table(title=f"top {name} by time blocked", title_justify="left")
        for c in cols:
            t.add_column(c, justify="left" if c in ("comm", "role", "resource") else "right")
        for r in rows[:n]:
            t.add_row(*[Text(human_bytes(r[c]) if c == "bytes" else str(r.get(c, "")))
                        for c in cols])
        console.print(t)


def render_health(h: dict[str, Any], console: Console) -> None:
    line = (f"capture health: {h['intervals']} intervals, lost events {h['lost_events']:,}, "
            f"uncounted ops {h['agg_overflow']:,}")
    console.print(line, highlight=False)
    for s in h.get("skipped", []):
        console.print(f"  skipped {s['reason']}", style="yellow", highlight=False, markup=False)
    for note in h.get("notes", []):
        console.print(f"  note: {note}", style="yellow", highlight=False, markup=False)


def render_comparison(cmp: Any, console: Console) -> None:
    """Print a baseline comparison (analysis/baseline.py)."""
    console.print(Panel(Text(cmp.summary), title="what changed vs baseline", expand=False))
    t = Table(title="metrics", title_justify="left")
    for c in ("metric", "baseline", "current", "change"):
        t.add_column(c, justify="left" if c == "metric" else "right")
    for m in cmp.metrics:
        t.add_row(m["metric"], _fmt(m["baseline"]), _fmt(m["current"]), _pct(m["change"]))
    console.print(t)
    for label, items in (("new", cmp.new), ("gone", cmp.gone), ("changed", cmp.changed)):
        for f in items:
            console.print(f"  {label}: {f['category']} {f.get('title', '')} "
                          f"(impact {f.get('impact_s_baseline', '-')} -> "
                          f"{f.get('impact_s', '-')} s)", highlight=False)


def _fmt(x: Any) -> str:
    return f"{x:,.3f}" if isinstance(x, float) else str(x)


def _pct(x: Any) -> str:
    return "-" if x is None else f"{x:+.0%}"
