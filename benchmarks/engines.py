#!/usr/bin/env python3
"""DuckDB vs Spark for `iolens analyze` on the same generated fleet tree (issue 8).

    .venv/bin/python benchmarks/engines.py                          # 1M and 4M io rows
    .venv/bin/python benchmarks/engines.py --rows 1000000 --repeats 5 --master 'local[2]'
    .venv/bin/python benchmarks/engines.py --rows 20000000 --engines spark --master spark://h:7077

For each size, a hive tree is generated with tests/analysis/fleet.py (4 hosts, one straggler,
written by the real CaptureWriter) and analysed by `analyze_path(..., engine=E)` exactly as
`iolens analyze ROOT --engine E` does (no HTML timeline). Times are wall seconds of the whole
analysis (open the tree, every reduction, every rule, report); the Spark session is started
once before the repeats and its start-up is reported apart (a CLI run pays it once more).
rows/s = io rows / analysis seconds: min and median over the repeats, printed side by side;
raw numbers to benchmarks/results/engines.json. Both engines' findings are checked equal.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import mn_md, rel, rmtree, save, table, tmpdir  # noqa: E402
from iolens.analysis.analyze import analyze_path  # noqa: E402

from tests.analysis import fleet  # noqa: E402


def _key(report) -> list[tuple]:
    return [(f.code, f.category, f.severity, f.culprit.get("resource"), round(f.impact_s, 3))
            for f in report.findings]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 4_000_000])
    p.add_argument("--hosts", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--engines", nargs="+", default=["duckdb", "spark"],
                   choices=["duckdb", "spark"])
    p.add_argument("--master", default="local[2]")
    p.add_argument("--keep", metavar="DIR", help="generate under DIR and keep the trees")
    a = p.parse_args(argv)

    startup = None
    if "spark" in a.engines:
        from iolens.analysis.engine_spark import SparkEngine
        t = time.monotonic()
        SparkEngine(a.master)  # JVM + session; later engines reuse it (getOrCreate)
        startup = time.monotonic() - t
        print(f"spark session start-up ({a.master}): {startup:.1f} s", flush=True)

    runs = []
    for rows in a.rows:
        base = Path(a.keep) if a.keep else tmpdir("iolens-engines-")
        root = base / f"fleet-{rows}"
        rmtree(root)
        t = time.monotonic()
        f = fleet.generate(root, hosts=a.hosts, rows=rows, straggler=a.hosts // 2)
        gen_s = time.monotonic() - t
        size = sum(x.stat().st_size for x in root.rglob("*.parquet"))
        print(f"{f.io_rows:,} io rows, {a.hosts} hosts, {size / 1e6:.0f} MB Parquet "
              f"(generated in {gen_s:.1f} s)", flush=True)
        keys, entry = {}, {"rows": f.io_rows, "hosts": a.hosts, "parquet_bytes": size,
                           "engines": {}}
        for eng in a.engines:
            times = []
            for i in range(a.repeats):
                t = time.monotonic()
                rep = analyze_path(root, plots=False, engine=eng, master=a.master)
                times.append(time.monotonic() - t)
                keys[eng] = _key(rep)
                print(f"  {eng:6s} run {i + 1}: {times[-1]:.2f} s "
                      f"(load {os.getloadavg()[0]:.1f})", flush=True)
            entry["engines"][eng] = {"seconds": times}
        same = len({repr(v) for v in keys.values()}) <= 1
        entry["same_findings"] = same
        if not same:
            print("  WARNING: the engines' findings differ", keys, flush=True)
        runs.append(entry)
        if not a.keep:
            rmtree(base)

    hdr = ["io rows"] + [f"{e} s (min/med)" for e in a.engines] + \
        [f"{e} rows/s (min-time/med)" for e in a.engines]
    lines = []
    for r in runs:
        cells = [f"{r['rows']:,}"]
        rates = []
        for e in a.engines:
            lo, md = mn_md(r["engines"][e]["seconds"])
            cells.append(f"{lo:.2f} / {md:.2f}")
            rates.append(f"{r['rows'] / lo:,.0f} / {r['rows'] / md:,.0f}")
        lines.append(cells + rates)
    print()
    print(table(hdr, lines))
    if startup is not None:
        print(f"\nSpark session start-up (once per CLI run, not in the times above): "
              f"{startup:.1f} s; master {a.master}")
    out = save("engines", {"master": a.master, "repeats": a.repeats,
                           "spark_startup_s": startup, "runs": runs,
                           "loadavg_end": os.getloadavg()})
    print(f"raw numbers: {rel(out)}")
    return 0 if all(r["same_findings"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
