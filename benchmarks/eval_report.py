#!/usr/bin/env python3
"""Render the generated parts of docs/evaluation.md, and its figures, from benchmark results.

    .venv/bin/python benchmarks/eval_report.py                      # docs/eval/results -> doc
    .venv/bin/python benchmarks/eval_report.py --check              # exit 1 if the doc is stale
    .venv/bin/python benchmarks/eval_report.py --results DIR --out FILE --figures DIR

In: the JSON files that `benchmarks/evaluate.py` collected (one per benchmark script, plus
evaluate.json with the command, date and load of each step). Out: Markdown tables spliced into
the document between `<!-- eval:NAME -->` and `<!-- /eval:NAME -->` (the prose around them is
written by hand and never touched), and SVG + PNG figures. Every number in a generated block is
read from a results file; nothing here measures anything. --check renders into memory and
compares (the test tier runs it, so the document cannot drift from its results).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = ROOT / "docs" / "eval" / "results"
DOC = ROOT / "docs" / "evaluation.md"
FIGURES = ROOT / "docs" / "eval" / "figures"
MARK = re.compile(r"(<!-- eval:([a-z_]+) -->\n)(.*?)(<!-- /eval:\2 -->)", re.S)


class Results:
    """The results directory: one parsed JSON per benchmark (None when absent)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.index = self.get("evaluate") or {"steps": {}}

    def get(self, name: str) -> Any:
        p = self.root / f"{name}.json"
        return json.loads(p.read_text()) if p.exists() else None

    def provenance(self, name: str, data: dict | None = None) -> str:
        """One line: the command that produced `name`, when, and the load at its start."""
        step = self.index["steps"].get(name, {})
        m = (data or {}).get("machine", {}) if isinstance(data, dict) else {}
        date = step.get("date") or m.get("date", "?")
        cmd = step.get("command", f"(see benchmarks/{name}.py)")
        extra = f", load average {load_text(step)}" if step else ""
        status = step.get("status", "ok")
        warn = "" if status == "ok" else f" **(last run: {status}; figures from an earlier run)**"
        return f"*Command:* `{cmd}` · *started:* {date}{extra}{warn}\n\n"


# --- formatting ---------------------------------------------------------------------------
def load_text(step: dict) -> str:
    """1-minute load average at the start and end of a step (older runs kept only the end)."""
    a, b = step.get("loadavg_start"), step.get("loadavg_end")
    if a and b:
        return f"{a[0]:.1f} → {b[0]:.1f}"
    return f"{b[0]:.1f} at its end" if b else (f"{a[0]:.1f}" if a else "?")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    line = lambda r: "| " + " | ".join(str(c) for c in r) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("---" for _ in headers) + "|",
                      *map(line, rows)]) + "\n"


def ns(x: float | None) -> str:
    return "–" if x is None else f"{x:,.0f}"


def signed(x: float | None, unit: str = "") -> str:
    return "–" if x is None else f"{x:+,.0f}{unit}"


def pct(x: float | None) -> str:
    return "–" if x is None else f"{x:+.1f} %"


def missing(name: str) -> str:
    return (f"*Not measured yet: no `docs/eval/results/{name}.json`. "
            f"Run `make evaluate` (or `benchmarks/evaluate.py --only {name}`).*\n")


# --- sections -----------------------------------------------------------------------------
def s_machine(r: Results) -> str:
    m = r.index.get("machine") or {}
    rows = [["Date of the run", m.get("date", "?")],
            ["Machine", f"{m.get('cpus', '?')} vCPU {m.get('cpu', '')}, "
                        f"{m.get('mem_bytes', 0) / 2**30:.1f} GiB RAM"],
            ["OS / kernel", f"{m.get('os', '?')}, Linux {m.get('kernel', '?')}"],
            ["Python", m.get("python", "?")],
            ["Load average at start", ", ".join(f"{x:.1f}" for x in m.get("loadavg_start", []))]]
    out = table(["", ""], rows)
    steps = r.index.get("steps", {})
    if steps:
        out += "\n" + table(["step", "command", "started", "load average", "wall s", "status"], [
            [n, f"`{s['command']}`", s.get("date", "?"), load_text(s),
             f"{s['wall_s']:.0f}", s["status"]] for n, s in steps.items()])
    return out


def s_exactness(r: Results) -> str:
    d = r.get("exactness")
    if not d:
        return missing("exactness")
    run = d["runs"][0]
    rows = []
    for c in run["checks"]:
        res = re.sub(r":\d+$", ":PORT", c["resource"])
        rows.append([c["process"], c["op"], f"`{res}`", " / ".join(f"{x:,}" for x in c["expected"]),
                     " / ".join(f"{x:,}" for x in c["captured"]), "yes" if c["exact"] else "**no**"])
    summ = ", ".join(f"{x['exact']}/{x['total']}" for x in d["runs"])
    return (r.provenance("exactness", d)
            + table(["process", "op", "resource", "truth: count / bytes / errors", "capture",
                     "exact"], rows)
            + f"\nExact checks in each of the {len(d['runs'])} repeats: {summ}; workers' parent "
              f"pid right in the procs table: "
              f"{', '.join('yes' if x['ppid_ok'] else 'no' for x in d['runs'])}.\n")


OVH_COLS = [("pread4k", "pread 4 KiB"), ("pread64k", "pread 64 KiB"), ("tcp", "TCP send/recv 64 B"),
            ("getppid", "getppid (not traced)")]
OVH_MODES = [("untraced", "untraced"), ("floor", "empty BPF programs (floor)"),
             ("iolens", "**iolens default**"), ("iolens-nolat", "iolens --no-latency"),
             ("iolens-sys", "iolens, syscall probe only"), ("syscount", "bcc syscount"),
             ("perf-trace", "perf trace -s"), ("strace", "strace -f -c")]


def _ovh_rows(summary: dict, modes: list[tuple[str, str]], ratio_to: str | None) -> list[list[str]]:
    rows = []
    for mode, label in modes:
        if mode not in summary:
            continue
        row = [label]
        for col, _ in OVH_COLS:
            c = summary[mode].get(col)
            if c is None:
                row.append("–")
                continue
            cell = f"{ns(c['min'])} / {ns(c['median'])}"
            if mode != "untraced":
                cell += f" ({signed(c.get('added_ns'))})"
            if ratio_to == "floor" and c.get("x_floor") is not None and col != "getppid":
                cell += f" {c['x_floor']:.2f}×"
            row.append(cell)
        rows.append(row)
    return rows


def strace_ratio(wall: dict, col: str) -> float | None:
    """How many times what iolens adds per syscall strace -f adds (wall clock), or None."""
    a = wall.get("strace", {}).get(col, {}).get("added_ns")
    b = wall.get("iolens", {}).get(col, {}).get("added_ns")
    return a / b if a and b and b > 0 else None


def s_overhead(r: Results) -> str:
    d = r.get("overhead")
    if not d:
        return missing("overhead")
    s = d["summary"]
    inproc = [m for m in OVH_MODES if m[0] not in ("strace", "perf-trace")]
    out = r.provenance("overhead", d)
    out += ("**(a) In the traced thread** (thread CPU time of the fastest tenth of each loop, "
            f"min / median over {d['rounds']} rounds; ns per syscall, in brackets the median's ns added "
            "over untraced, then that added cost as a multiple of the floor's):\n\n")
    out += table(["mode", *[c[1] for c in OVH_COLS]], _ovh_rows(s["cpu_best"], inproc, "floor"))
    cb = s["cpu_best"]
    if "floor" in cb:
        parts = []
        for mode, label in (("iolens", "default"), ("iolens-nolat", "--no-latency"),
                            ("iolens-sys", "syscall probe only")):
            if mode in cb:
                parts.append(f"{label} {signed(cb[mode]['pread4k']['median'] - cb['floor']['pread4k']['median'])} ns")
        out += ("\nWhat iolens adds beyond the floor (its own work, in-thread median minus the "
                f"floor's), per 4 KiB pread: {', '.join(parts)}.\n")
    out += ("\n**(b) Wall clock** (mean of the whole loop, min / median over the rounds), the only fair "
            "figure for tracers that work in another process (strace, perf):\n\n")
    out += table(["mode", *[c[1] for c in OVH_COLS]], _ovh_rows(s["wall"], OVH_MODES, None))
    ratios = [f"{label} {x:,.0f}×" for col, label in OVH_COLS[:3]
              if (x := strace_ratio(s["wall"], col)) is not None]
    if ratios:
        out += f"\nstrace -f adds, per syscall, this many times what iolens adds: {', '.join(ratios)}.\n"
    return out


def s_bpf_profile(r: Results) -> str:
    d = r.get("bpf_profile")
    if not d:
        return missing("bpf_profile")
    labels = {"default": "default (latency on)", "nolat": "--no-latency (exit only)",
              "hash_start": "start time in a hash map", "nolat_enter_exit": "no latency, enter+exit"}
    rows = []
    for v, s in d["summary"].items():
        def med(k: str, s: dict = s) -> float | None:
            x = s.get(k)
            return None if x is None or x["median"] == 0 else x["median"]
        rows.append([labels.get(v, v)] + [ns(med(f"sys_{p}_{sc}")) for sc in
                                          ("pread64", "sendto", "recvfrom") for p in ("enter", "exit")]
                    + [ns(sum(x for x in (med("sys_enter_pread64"), med("sys_exit_pread64")) if x))])
    return (r.provenance("bpf_profile", d)
            + table(["build", "pread64 enter", "pread64 exit", "sendto enter", "sendto exit",
                     "recvfrom enter", "recvfrom exit", "pread64 total"], rows)
            + f"\nns per program run (kernel `bpf_stats`: run_time_ns / run_cnt), median over "
              f"{d['rounds']} rounds; – = no program on that hook in that build.\n")


def s_probe_cost(r: Results) -> str:
    d = r.get("probe_cost")
    if not d:
        return missing("probe_cost")
    rows = [[x["probe"], x["workload"], x["unit"], f"{x['events']:,}",
             ns(x["untraced_ns_per_event"]), ns(x["traced_ns_per_event"]),
             signed(x["added_ns_per_event"]), pct(x["slowdown_pct"]), ns(x["bpf_ns_per_event"])]
            for x in d["results"]]
    return (r.provenance("probe_cost", d)
            + table(["probe", "workload", "event", "events", "untraced ns/event",
                     "traced ns/event", "added ns/event", "wall", "in-BPF ns/event"], rows)
            + f"\nMedians over {d['rounds']} interleaved rounds; in-BPF time from the kernel's "
              "per-program counters (excludes the tracepoint dispatch).\n")


def s_startup(r: Results) -> str:
    d = r.get("startup")
    if not d:
        return missing("startup")
    names = {"status": "first status (\"compiling probes…\")",
             "attached": "syscall probe compiled, loaded, attached",
             "first": "first interval with the command's I/O (first data frame)"}
    rows = [[names[k], f"{v['min']:.2f}", f"{v['median']:.2f}"]
            for k, v in d["summary"].items() if v]
    return r.provenance("startup", d) + table(["phase (seconds from start)", "min", "median"], rows) \
        + f"\n{d['repeats']} sequential repeats.\n"


def s_workloads(r: Results) -> str:
    d = r.get("workloads")
    if not d:
        return missing("workloads")
    what = d.get("what", {})
    rows = []
    for name, s in d["summary"].items():
        rows.append([name, what.get(name, ""), f"{statistics.median(s['untraced_s']):.2f}",
                     pct(s["traced"]["slowdown_pct_median"]), pct(s["traced"]["slowdown_pct_min"]),
                     pct(s["traced_sys"]["slowdown_pct_median"])])
    out = r.provenance("workloads", d) + table(
        ["workload", "what", "untraced s", "iolens default (median)", "(min-based)",
         "syscall probe only (median)"], rows)
    for name, why in {**d.get("skipped", {}), **d.get("errors", {})}.items():
        out += f"\n{name}: not measured ({why})"
    return out + (f"\nSlowdown = median traced / median untraced − 1 over {d['rounds']} "
                  "interleaved rounds of a fixed amount of work (min-based: min / min − 1).\n")


def s_capacity(r: Results) -> str:
    d = r.get("capacity")
    if not d:
        return missing("capacity")
    t = d.get("tables", {})
    out = r.provenance("capacity", d)
    for key, title in (("rate", "Aggregated data: calls made vs counted"),
                       ("events", "Per-event stream (ring buffer) under a paced open+close storm")):
        if key in t:
            out += f"\n**{title}**\n\n{t[key]}\n"
    steps = d.get("events", {}).get("steps", [])
    paced = [x for x in steps if x["target_opens_s"]]
    if paced:
        first_loss = next((x for x in paced if x["lost"]), None)
        clean = paced[:paced.index(first_loss)] if first_loss else paced
        out += ("\nPer-event stream: " + (f"no loss up to {max(x['events_s'] for x in clean) / 1e3:,.0f}k "
                "events/s (paced steps)" if clean else "loss from the first step")
                + (f"; first loss at the {first_loss['target_opens_s'] / 1e3:,.0f}k opens/s step "
                   f"({first_loss['events_s'] / 1e3:,.0f}k events/s achieved)" if first_loss else "")
                + ". Losses are counted in the capture's health table, never silent.\n")
    levels = d.get("keys", {}).get("levels", [])
    if levels:
        out += "\n**Collector cost vs active keys (1 s interval)**\n\n" + table(
            ["active keys", "keys drained / interval (median)", "collector CPU, % of one core",
             "RSS max", "drain ms", "agg_overflow"],
            [[f"{x['keys_target']:,}", f"{statistics.median(x['keys']):,.0f}",
              f"{x['cpu_pct_median']:.1f} (max {x['cpu_pct_max']:.1f})", f"{x['rss_mb_max']:.0f} MB",
              f"{x['drain_ms_median']:.1f} (max {x['drain_ms_max']:.1f})", x["agg_overflow"]]
             for x in levels])
        out += ("\nMedians over the steady intervals (after every fd is open, before the storm "
                "ends), from the capture's own health table.\n")
    return out


def s_storage(r: Results) -> str:
    w, sc = r.get("writer_speed"), r.get("scenarios")
    if not w and not sc:
        return missing("writer_speed")
    out, rows = "", []
    if w:
        out += r.provenance("writer_speed", w)
        rows.append(["synthetic, realistic rows (`writer_speed.py`)", f"{w['rows']:,}",
                     f"{w['bytes_per_row']:.1f}", f"{w['rows_per_s_median']:,.0f}"])
    for x in (sc or {}).get("rows", []):
        if x.get("io_rows"):
            rows.append([f"real capture: scenario {x['scenario']} (E8)", f"{x['io_rows']:,}",
                         f"{x['io_bytes'] / x['io_rows']:.1f}", "–"])
    return out + table(["io rows", "rows", "bytes per row on disk", "rows/s written (median)"],
                       rows) + ("\nIn the small captures (a few hundred rows in a 15 s run) the "
                                "fixed cost of each Parquet file (footer, schema, metadata) "
                                "dominates; it is amortised as a capture grows.\n" if sc else "")


def s_analysis(r: Results) -> str:
    a, e = r.get("analyze_speed"), r.get("engines")
    out = ""
    if a:
        ia, pa_ = a["iolens"], a["pandas"]
        ratio = (ia["rows"] / ia["wall_s"]) / (pa_["rows"] / pa_["wall_s"])
        out += r.provenance("analyze_speed", a) + table(
            ["engine", "io rows", "wall s", "CPU s", "rows/s", "rows per CPU-s"],
            [["`iolens analyze` (DuckDB)", f"{ia['rows']:,}", f"{ia['wall_s']:.2f}",
              f"{ia['cpu_s']:.2f}", f"{ia['rows'] / ia['wall_s']:,.0f}",
              f"{ia['rows'] / ia['cpu_s']:,.0f}"],
             ["pandas, same reductions", f"{pa_['rows']:,}", f"{pa_['wall_s']:.2f}",
              f"{pa_['cpu_s']:.2f}", f"{pa_['rows'] / pa_['wall_s']:,.0f}",
              f"{pa_['rows'] / pa_['cpu_s']:,.0f}"]])
        out += (f"\niolens analyses {ratio:.1f}× as many rows per second as pandas "
                f"({a['parquet_bytes'] / 1e6:,.0f} MB of Parquet, {a['findings']} findings).\n")
    else:
        out += missing("analyze_speed")
    if e:
        rows = []
        for run in e["runs"]:
            dk = run["engines"].get("duckdb", {}).get("seconds")
            sp = run["engines"].get("spark", {}).get("seconds")
            rows.append([f"{run['rows']:,}", f"{run['hosts']}",
                         f"{statistics.median(dk):.2f}" if dk else "–",
                         f"{statistics.median(sp):.2f}" if sp else "–",
                         f"{statistics.median(sp) / statistics.median(dk):.0f}×" if dk and sp else "–",
                         "yes" if run.get("same_findings") else "**no**"])
        out += "\n" + r.provenance("engines", e) + table(
            ["io rows", "hosts", "DuckDB s (median)", "Spark s (median)", "Spark / DuckDB",
             "same findings"], rows)
        out += (f"\nSpark `{e['master']}`, session start-up "
                f"{e['spark_startup_s']:.1f} s not included; {e['repeats']} repeats.\n")
    return out


def s_tui(r: Results) -> str:
    d = r.get("tui_update")
    if not d:
        return missing("tui_update")
    names = {"derive": "worker thread: window + snapshot", "apply": "UI thread: tables + header",
             "e2e": "interval handed over → frame on screen"}
    rows = [[names.get(k, k), f"{v['first']:.0f}", f"{v['min']:.0f}", f"{v['median']:.0f}",
             f"{v['max']:.0f}"] for k, v in d["summary"].items()]
    return (r.provenance("tui_update", d)
            + table(["phase (ms)", "first", "min", "median", "max"], rows)
            + f"\n{d['rows']:,} io rows per interval, terminal {d['size']}, rules "
              f"{'on' if d['rules'] else 'off'}, {d['repeats']} intervals.\n")


def _accuracy(rows: list[dict]) -> dict[str, Any]:
    """Right / category right / culprit right over the rows with a bottleneck, and the healthy
    controls without a high finding."""
    judged = [x for x in rows if x.get("category_ok") is not None]
    healthy = [x for x in rows if x.get("category_ok") is None]
    return {"right": sum(bool(x["ok"]) for x in rows), "total": len(rows),
            "judged": len(judged), "category": sum(bool(x["category_ok"]) for x in judged),
            "culprit": sum(bool(x["culprit_ok"]) for x in judged),
            "healthy": len(healthy), "healthy_ok": sum(bool(x["ok"]) for x in healthy)}


def _acc_line(name: str, a: dict[str, Any]) -> str:
    return (f"| {name} | {a['right']}/{a['total']} | {a['category']}/{a['judged']} | "
            f"{a['culprit']}/{a['judged']} | {a['healthy_ok']}/{a['healthy']} |\n")


FIRST_RUN = ROOT / "benchmarks" / "results" / "scenarios_first_run.json"


def s_scenarios(r: Results) -> str:
    d = r.get("scenarios")
    if not d:
        return missing("scenarios")
    rows = []
    for x in d["rows"]:
        top = x.get("top") or {}
        cul = top.get("culprit") or {}
        res = str(cul.get("resource") or "")
        got = (f"{top['category']} ({top['severity']}, {top['impact_s']:.1f} s) "
               f"{cul.get('comm') or ''} `{Path(res).name if '/' in res else res}`"
               if top else x["got"])
        yn = {None: "-", True: "yes", False: "**no**"}
        rows.append([x["scenario"], x.get("injected", ""), x.get("expected", ""), got,
                     yn[x.get("category_ok")], yn[x.get("culprit_ok")],
                     "right" if x["ok"] else "**wrong**"])
    text = (r.provenance("scenarios", d)
            + table(["scenario", "injected bottleneck", "expected", "top finding (severity, "
                     "impact) culprit", "category", "culprit", "judged"], rows)
            + f"\n**{d['right']}/{d['total']} right** ({d['seconds']:.0f} s per workload).\n")
    if FIRST_RUN.exists():
        first = json.loads(FIRST_RUN.read_text())
        names = {x["scenario"] for x in first["rows"]}
        now = [x for x in d["rows"] if x["scenario"] in names]
        text += ("\nThe independent scenarios (written from a description of each kind of "
                 "bottleneck, not tuned against), run once before any rule was changed "
                 "(benchmarks/results/scenarios_first_run.json) and now:\n\n"
                 "| run | right | category right | culprit right | healthy without a high "
                 "finding |\n|---|---|---|---|---|\n"
                 + _acc_line("first run, before the rules were rebuilt", _accuracy(first["rows"]))
                 + _acc_line("this run", _accuracy(now))
                 + _acc_line("this run, every scenario", _accuracy(d["rows"])))
    return text


# --- replica ------------------------------------------------------------------------------
REPLICA_METRICS = {"bytes": "bytes", "data_ops": "data ops (> 1 byte)",
                   "mean_request": "mean request B", "request_hist": "request sizes (log2)",
                   "seq_share": "sequential share", "opens": "opens",
                   "opens_per_s": "opens/s (active span)", "fsyncs": "fsyncs",
                   "lat_hist": "latency (log2)", "lat_p50_us": "latency p50 µs"}


def _rv(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _score_text(score: float | None, kind: str) -> str:
    """A fidelity score: a ratio to 3 decimals, or a signed difference in points."""
    if score is None:
        return "–"
    return f"{score:.3f}" if kind == "ratio" else f"{score:+.1f} pt"


def s_replica(r: Results) -> str:
    d = r.get("replica")
    if not d:
        return missing("replica")
    rows, tops = [], []
    for name, w in d["summary"].items():
        for metric, label in REPLICA_METRICS.items():
            m = w["metrics"].get(metric)
            if not m or not m["original"]:
                continue
            score = _score_text(m["score_median"], m["kind"])
            tol = (f"±{m['tolerance'] * 100:.0f} %" if m["kind"] == "ratio"
                   else f"±{m['tolerance']:.0f} pt")
            within = (f"{m['ok_rounds']}/{m['rounds']}" if m["rounds"] else "–")
            if m["rounds"] and m["ok_rounds"] < m["rounds"]:
                within = f"**{within}**"
            row = [name, label, _rv(m["original"][-1]), _rv(m["replica"][-1]), score, tol,
                   within]
            if d.get("rerun"):
                row += [_score_text(m.get("rerun_score_median"), m["kind"]),
                        f"{m['rerun_ok_rounds']}/{m['rerun_rounds']}" if m.get("rerun_rounds")
                        else "–"]
            rows.append(row)
        tops.append([name, w["kind"], f"`{w['file_class']}`",
                     ", ".join(w["top_original"]), ", ".join(w["top_replica"]),
                     f"{w['top_match_rounds']}/{w['rounds']}",
                     f"{w.get('top_in_replica_rounds', '–')}/{w['rounds']}"])
    return (r.provenance("replica", d)
            + table(["workload", "kind", "data class", "top finding: original",
                     "replica (fio)", "same top", "original's top among replica's findings"],
                    tops)
            + "\n" + table(["workload", "metric (data class)", "original", "replica",
                            "replica/original (median)", "tolerance", "rounds within"]
                           + (["rerun/original (median)", "rerun rounds within"]
                              if d.get("rerun") else []), rows)
            + f"\n{d['rounds']} interleaved round(s), {d['seconds']:.0f} s per workload; "
              "original and replica values are the last round's."
            + (" *Rerun*: the workload recorded once more after its replica, scored against "
               "its first recording like the replica: how close the job comes to itself."
               if d.get("rerun") else "") + "\n")


# --- targets ------------------------------------------------------------------------------
def _sf_rows(summary: dict) -> list[list[str]]:
    rows = []
    for v, x in summary.items():
        row = [v, str(x["runs"]), f"{x['files_per_s_median']:,.0f}",
               f"{x['ratio']:.3f}" if x.get("ratio") else "-"]
        if "uncounted_ops" in x:
            lo, hi = x["interval_s_range"]
            row += [f"{x['uncounted_ops']:,}", f"{lo:.2f}–{hi:.2f}", str(x["intervals_off_20pct"]),
                    f"{100 * x['collector_cpu_share_median']:.0f} % / "
                    f"{100 * x['collector_cpu_share_max']:.0f} %",
                    f"{x['collector_rss_max_mb']:.0f}", "yes" if x["exact"] else "**no**",
                    f"{100 * x['folded_share']:.0f} %"]
        else:
            row += ["–"] * 7
        rows.append(row)
    return rows


_SF_HEAD = ["variant", "runs", "files/s (median)", "ratio to untraced", "ops not counted",
            "interval s", "intervals off > 20 %", "collector CPU (median / max)",
            "RSS max MB", "exact", "ops in dir/proc rows"]


def s_smallfiles(r: Results) -> str:
    d = r.get("smallfiles")
    if not d:
        return missing("smallfiles")
    out = r.provenance("smallfiles", d)
    out += (f"Steady state: {d['files']:,} files of 1–8 KiB in 200 directories, 2 forked "
            f"workers, {d['seconds']:g} s per run, {d['rounds']} interleaved rounds "
            "(order rotating).\n\n")
    out += table(_SF_HEAD, _sf_rows(d["steady_summary"]))
    if d.get("epoch_summary"):
        n = d["epoch_files"]
        out += (f"\n\nFirst epoch, Python loader: {n:,} distinct files, each read once (every "
                "open is of a file new to the tracer).\n\n")
        out += table(_SF_HEAD, _sf_rows(d["epoch_summary"]))
        out += (f"\n\nFirst epoch, C loader (`storm files`, 2 processes, {n:,} files): the "
                "highest new-file rate this machine makes. Exactness here is the bytes read "
                "from the file set (the C loader keeps no per-directory counts).\n\n")
        srows = []
        for v, xs in d["storm"].items():
            if not xs:
                continue
            fps = statistics.median(x["files_per_s"] for x in xs)
            row = [v, str(len(xs)), f"{fps:,.0f}"]
            if v == "iolens":
                row += [f"{sum(x['new_files'] for x in xs) // len(xs):,}",
                        str(sum(x["newfile_lost"] for x in xs)),
                        str(sum(x["uncounted_ops"] for x in xs)),
                        f"{min(x['interval_s_min'] for x in xs):.2f}–"
                        f"{max(x['interval_s_max'] for x in xs):.2f}",
                        "yes" if all(x["read_bytes_capture"] == x["bytes"] for x in xs)
                        else "**no**"]
            else:
                row += ["–"] * 5
            srows.append(row)
        out += table(["variant", "runs", "files/s (median)", "new files per run",
                      "new files lost", "ops not counted", "interval s", "bytes exact"], srows)
    return out + "\n"


def targets(r: Results) -> list[tuple[str, str, bool | str | None]]:
    """(target, measured, met) for each target the project set itself (issue 6 and others)."""
    out: list[tuple[str, str, bool | str | None]] = []
    o = r.get("overhead")
    if o:
        cb, w = o["summary"]["cpu_best"], o["summary"]["wall"]
        fl = cb.get("floor", {}).get("pread4k", {})
        for mode, target, limit in (
                ("iolens", "default probe ≤ 1.5× the empty-program floor (4 KiB pread, in-thread)",
                 1.5),
                ("iolens-nolat", "cheapest mode (--no-latency) at or below the floor", 1.0)):
            c = cb.get(mode, {}).get("pread4k", {})
            if c.get("x_floor") is None:
                continue
            text = f"{c['x_floor']:.2f}× (iolens {signed(c['added_ns'])} ns, floor " \
                   f"{signed(fl['added_ns'])} ns over untraced)"
            if fl["added_ns"] < 30:  # the ratio's denominator is within the run's noise
                text += "; the floor's cost is within noise in this run, so the ratio is not " \
                        "meaningful: see the ns beyond the floor in E2"
            out.append((target, text, c["x_floor"] <= limit))
        if (x := strace_ratio(w, "pread4k")) is not None:
            out.append(("≥ 10× cheaper than strace -f (wall, 4 KiB pread)", f"{x:,.0f}×", x >= 10))
        if "syscount" in cb and "iolens" in cb:
            a, b = cb["syscount"]["pread4k"]["added_ns"], cb["iolens"]["pread4k"]["added_ns"]
            out.append(("cheaper than bcc syscount (in-thread, 4 KiB pread)",
                        f"iolens {b:+.0f} ns vs syscount {a:+.0f} ns", b <= a))
    wl = r.get("workloads")
    if wl:
        worst = max(wl["summary"].items(), key=lambda kv: kv[1]["traced"]["slowdown_pct_median"])
        out.append(("≤ 2 % wall-time slowdown on each realistic workload",
                    f"worst {worst[0]} {worst[1]['traced']['slowdown_pct_median']:+.1f} % "
                    "(median)", worst[1]["traced"]["slowdown_pct_median"] <= 2.0))
    c = r.get("capacity")
    if c and "rate" in c:
        rate = c["rate"]["max_zero_loss_rate"]
        untr = max(x["untraced_rate"] for x in c["rate"]["runs"])
        out.append(("0 loss in aggregated data at ≥ 3M syscalls/s",
                    f"0 lost at {rate / 1e6:.2f}M/s traced (the machine's untraced maximum: "
                    f"{untr / 1e6:.2f}M/s)", None if untr < 3e6 else rate >= 3e6))
    if c and "keys" in c:
        lv = next((x for x in c["keys"]["levels"] if x["keys_target"] == 10000), None)
        if lv:
            out.append(("collector ≤ 2 % of one core at 10k keys, 1 s interval",
                        f"{lv['cpu_pct_median']:.1f} %", lv["cpu_pct_median"] <= 2.0))
            out.append(("collector ≤ 200 MB RSS at 10k keys", f"{lv['rss_mb_max']:.0f} MB",
                        lv["rss_mb_max"] <= 200))

    w, sc = r.get("writer_speed"), r.get("scenarios")
    if w:
        text, ok = f"{w['bytes_per_row']:.1f} B on synthetic rows", w["bytes_per_row"] <= 16
        big = max((x for x in (sc or {}).get("rows", []) if x.get("io_rows")),
                  key=lambda x: x["io_rows"], default=None)
        if big:
            b = big["io_bytes"] / big["io_rows"]
            text += f"; {b:.1f} B on the largest real capture ({big['scenario']}, " \
                    f"{big['io_rows']:,} rows)"
            ok = ok if (b <= 16) == ok else "partly"
        out.append(("≤ 16 bytes per aggregated row on disk", text, ok))
    a = r.get("analyze_speed")
    if a:
        ia, pa_ = a["iolens"], a["pandas"]
        rate = ia["rows"] / ia["wall_s"]
        out.append(("analysis ≥ 5M rows/s", f"{rate / 1e6:.1f}M rows/s on {ia['rows'] / 1e6:.0f}M rows",
                    rate >= 5e6))
        ratio = rate / (pa_["rows"] / pa_["wall_s"])
        out.append(("analysis ≥ 5× pandas", f"{ratio:.1f}×", ratio >= 5))
    t = r.get("tui_update")
    if t:
        e2e = t["summary"]["e2e"]["median"]
        out.append(("TUI refreshes once a second at 20k rows without visible lag",
                    f"{e2e:.0f} ms interval-to-screen (median)", e2e < 1000))
    s = r.get("startup")
    if s and s["summary"].get("first"):
        f = s["summary"]["first"]["median"]
        out.append(("TUI first frame ≤ 2 s including BPF compile",
                    f"{f:.1f} s to first data (\"compiling probes…\" at "
                    f"{s['summary']['status']['median']:.2f} s)", f <= 2.0))
    sf = r.get("smallfiles")
    if sf:
        ss = sf["steady_summary"]
        io, sc_ = ss.get("iolens", {}), ss.get("syscount", {})
        if io.get("ratio") is not None:
            extra = f" (syscount {sc_['ratio']:.2f}×)" if sc_.get("ratio") else ""
            out.append(("small-file loader: iolens default ≥ 0.95× untraced throughput",
                        f"{io['ratio']:.2f}×{extra}", io["ratio"] >= 0.95))
            out.append(("small-file loader: 0 ops not counted, exact per file set and directory",
                        f"{io['uncounted_ops']} not counted; exact: "
                        f"{'yes' if io['exact'] else 'no'}",
                        io["uncounted_ops"] == 0 and io["exact"]))
            lo, hi = io["interval_s_range"]
            out.append(("small-file loader: every interval within 20 % of 1 s",
                        f"{lo:.2f}–{hi:.2f} s", io["intervals_off_20pct"] == 0))
            cpu, rss = io["collector_cpu_share_median"], io["collector_rss_max_mb"]
            out.append(("small-file loader: collector ≤ 25 % of a core and ≤ 300 MB RSS",
                        f"{100 * cpu:.0f} % (median; max {100 * io['collector_cpu_share_max']:.0f} %),"
                        f" {rss:.0f} MB", cpu <= 0.25 and rss <= 300 or
                        ("partly" if cpu <= 0.25 or rss <= 300 else False)))
        st = sf.get("storm", {}).get("iolens")
        if st:
            fps = statistics.median(x["files_per_s"] for x in st)
            lost = sum(x["newfile_lost"] for x in st)
            out.append(("new files absorbed at ≥ 200,000 new files/s",
                        f"{fps:,.0f} new files/s (the C loader's maximum here), {lost} lost",
                        lost == 0 and fps >= 200000 or (None if lost == 0 else False)))
    sc = r.get("scenarios")
    if sc:
        out.append(("labeled scenarios: top finding right", f"{sc['right']}/{sc['total']}",
                    sc["right"] == sc["total"]))
        a = _accuracy(sc["rows"])
        cat, cul = a["category"] / max(a["judged"], 1), a["culprit"] / max(a["judged"], 1)
        out.append(("labeled scenarios: ≥ 90% category and culprit, no high on healthy "
                    "controls", f"category {cat:.0%}, culprit {cul:.0%}, healthy "
                    f"{a['healthy_ok']}/{a['healthy']}",
                    cat >= 0.9 and cul >= 0.9 and a["healthy_ok"] == a["healthy"]))
    ex = r.get("exactness")
    if ex:
        ok = all(x["exact"] == x["total"] for x in ex["runs"])
        out.append(("known workload: every count and byte exact",
                    ", ".join(f"{x['exact']}/{x['total']}" for x in ex["runs"]), ok))
    return out


def s_targets(r: Results) -> str:
    label = {True: "met", False: "**not met**", None: "n/a on this machine",
             "partly": "partly met"}
    rows = [[t, m, label[ok]] for t, m, ok in targets(r)]
    return table(["target", "measured", ""], rows) if rows else missing("overhead")


SECTIONS: dict[str, Callable[[Results], str]] = {
    "machine": s_machine, "exactness": s_exactness, "overhead": s_overhead,
    "bpf_profile": s_bpf_profile, "probe_cost": s_probe_cost, "startup": s_startup,
    "workloads": s_workloads, "capacity": s_capacity, "storage": s_storage,
    "scenarios": s_scenarios, "analysis": s_analysis, "tui": s_tui, "targets": s_targets,
    "smallfiles": s_smallfiles, "replica": s_replica,
}


# --- figures ------------------------------------------------------------------------------
def figures(r: Results, out: Path) -> list[Path]:
    """Write the figures that have data; returns their paths (SVG and PNG of each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "iolens", "font.size": 9, "figure.dpi": 110})
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(fig, name: str) -> None:
        fig.tight_layout()
        for ext in ("svg", "png"):
            p = out / f"{name}.{ext}"
            fig.savefig(p, metadata={"Date": None} if ext == "svg" else {"Software": None})
            written.append(p)
        plt.close(fig)

    o = r.get("overhead")
    if o:
        w = o["summary"]["wall"]
        modes = [(m, lbl.strip("*")) for m, lbl in OVH_MODES if m in w and m != "untraced"]
        fig, ax = plt.subplots(figsize=(8.5, 3.4))
        width = 0.8 / max(1, len(modes))
        for i, (m, lbl) in enumerate(modes):
            ys = [max(1.0, w[m][c].get("added_ns") or 1.0) for c, _ in OVH_COLS[:3]]
            ax.bar([j + i * width for j in range(3)], ys, width, label=lbl)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(3)], [c[1] for c in OVH_COLS[:3]])
        ax.set_yscale("log")
        ax.set_ylabel("ns added per syscall (wall, median)")
        ax.set_title("What each tracer adds per traced syscall (log scale; ≤ 0 drawn at 1)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        save(fig, "overhead")
    wl = r.get("workloads")
    if wl:
        names = list(wl["summary"])
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        for i, (key, lbl) in enumerate((("traced", "iolens default"),
                                        ("traced_sys", "syscall probe only"))):
            ax.bar([j + i * 0.4 for j in range(len(names))],
                   [wl["summary"][n][key]["slowdown_pct_median"] for n in names], 0.4, label=lbl)
        ax.axhline(2, color="grey", ls="--", lw=0.8)
        ax.set_xticks([j + 0.2 for j in range(len(names))], names, rotation=15)
        ax.set_ylabel("wall-time slowdown % (median)")
        ax.set_title("Slowdown of AI workloads under iolens (dashed: the 2 % target)")
        ax.legend(fontsize=8)
        save(fig, "workloads")
    c = r.get("capacity")
    if c and "keys" in c:
        lv = c["keys"]["levels"]
        fig, ax1 = plt.subplots(figsize=(6.5, 3.2))
        xs = [x["keys_target"] for x in lv]
        ax1.plot(xs, [x["drain_ms_median"] for x in lv], "o-", label="drain ms per interval")
        ax1.plot(xs, [x["cpu_pct_median"] for x in lv], "s-", label="collector CPU % of a core")
        ax1.set_xscale("log")
        ax1.set_yscale("log")
        ax1.set_xlabel("active aggregation keys")
        ax2 = ax1.twinx()
        ax2.plot(xs, [x["rss_mb_max"] for x in lv], "^--", color="grey", label="RSS MB (right)")
        ax2.set_ylabel("RSS MB")
        h1, l1 = ax1.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax1.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
        ax1.set_title("Collector cost vs active keys (1 s interval)")
        save(fig, "capacity")
    e = r.get("engines")
    if e:
        fig, ax = plt.subplots(figsize=(6.5, 3.2))
        for eng in ("duckdb", "spark"):
            pts = [(run["rows"], run["rows"] / statistics.median(run["engines"][eng]["seconds"]))
                   for run in e["runs"] if run["engines"].get(eng, {}).get("seconds")]
            if pts:
                ax.plot(*zip(*pts, strict=True), "o-", label=f"{eng} ({e['master']})" if eng == "spark" else eng)
        a = r.get("analyze_speed")
        if a:
            ax.plot([a["iolens"]["rows"]], [a["iolens"]["rows"] / a["iolens"]["wall_s"]], "D",
                    label="duckdb, analyze_speed capture")
            ax.plot([a["pandas"]["rows"]], [a["pandas"]["rows"] / a["pandas"]["wall_s"]], "x",
                    label="pandas, same reductions")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("io rows in the capture")
        ax.set_ylabel("rows analysed per second")
        ax.set_title("Analysis throughput")
        ax.legend(fontsize=8)
        save(fig, "analysis")
    return written


# --- document -----------------------------------------------------------------------------
def render(doc: str, r: Results) -> str:
    """`doc` with every generated block replaced by its fresh rendering."""
    names = [m.group(2) for m in MARK.finditer(doc)]
    unknown = set(names) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"eval_report: unknown block(s) in the document: {', '.join(sorted(unknown))}")
    return MARK.sub(lambda m: m.group(1) + SECTIONS[m.group(2)](r) + m.group(4), doc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--doc", default=str(DOC), help="document to update in place")
    ap.add_argument("--out", help="write the rendered document here instead of in place")
    ap.add_argument("--figures", default=str(FIGURES))
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if the document differs from a fresh rendering (no writes)")
    a = ap.parse_args(argv)
    r = Results(Path(a.results))
    doc_path = Path(a.doc)
    text = doc_path.read_text()
    new = render(text, r)
    if a.check:
        if new != text:
            print(f"eval_report: {doc_path} is stale: run `benchmarks/eval_report.py`", file=sys.stderr)
            return 1
        return 0
    Path(a.out or doc_path).write_text(new)
    figs = figures(r, Path(a.figures))
    print(f"rendered {len(MARK.findall(new))} blocks into {a.out or doc_path}; "
          f"{len(figs)} figure files in {a.figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
