#!/usr/bin/env python3
"""Capture exactness: a workload that counts its own I/O, recorded by `iolens record`, and every
count and byte of its truth compared with the capture, side by side.

    sudo .venv/bin/python benchmarks/exactness.py [--repeats 3]

The workload is tests/workloads/exact_io.py (the same one the real-BPF test tier asserts on):
the main process reads a 1,000,003-byte file in 4,099-byte chunks to EOF, writes 524,287 bytes
in 8,191-byte chunks and fsyncs, does one readv and one preadv, one read on a bad fd, exchanges
100,003 bytes each way with a forked TCP peer on loopback (send/recv and plain write/read on the
socket), and forks three workers that each read their own file. It writes what it did to a
truth file. The capture's io table is read with plain pyarrow and summed per (pid, op,
resource). A check is exact when count, bytes and errors all equal the truth.

Output: one table (expected vs captured per check) per repeat; the JSON holds every repeat.
Raw numbers: benchmarks/results/exactness.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common as C  # noqa: E402

WORKLOAD = C.ROOT / "tests" / "workloads" / "exact_io.py"


def record(base: Path) -> tuple[Path, dict]:
    """Record the workload under `iolens record`; return (capture dir, truth)."""
    out, truth = base / "cap", base / "truth.json"
    subprocess.run([C.IOLENS, "record", "-q", "-o", str(out), "--", sys.executable,
                    str(WORKLOAD), str(base / "work"), str(truth)], check=True, timeout=300)
    return out, json.loads(truth.read_text())


def sums(io, pid: int, op: str, resource: str | None = None, fd: int | None = None) -> list[int]:
    """[count, bytes, errors] of the io rows of one pid and op (and resource or fd)."""
    mask = pc.and_(pc.equal(io["pid"], pid), pc.equal(io["op"], op))
    if resource is not None:
        mask = pc.and_(mask, pc.equal(io["resource"], resource))
    if fd is not None:
        mask = pc.and_(mask, pc.equal(io["fd"], fd))
    t = io.filter(mask)
    return [pc.sum(t[c]).as_py() or 0 for c in ("count", "bytes", "errors")]


def checks(io, truth: dict) -> list[dict]:
    """One row per fact of the truth: what, expected [count, bytes, errors], captured."""
    rows = []
    main = truth["main"]

    def add(who: str, pid: int, op: str, resource: str | None, expected: list[int],
            fd: int | None = None) -> None:
        got = sums(io, pid, op, resource, fd)
        rows.append({"process": who, "op": op,
                     "resource": Path(resource).name if resource and "/" in resource
                     else (resource or f"fd {fd}"),
                     "expected": expected, "captured": got, "exact": got == expected})

    for path, ops in truth["files"].items():
        for op, (count, nbytes) in ops.items():
            add("main", main, op, path, [count, nbytes, 0])
    add("main", main, "read", None, [truth["bad_fd_errors"], 0, truth["bad_fd_errors"]], fd=999)
    for side in ("client", "server"):
        s = truth["net"][side]
        for op in ("send", "recv"):
            add(f"tcp {side}", s["pid"], op, s["peer"], [s[op][0], s[op][1], 0])
    for i, w in enumerate(truth["workers"]):
        add(f"worker {i + 1}", w["pid"], "read", w["file"], [w["read"][0], w["read"][1], 0])
    return rows


def ppid_ok(cap: Path, truth: dict) -> bool:
    """Every worker's ppid in the procs table is the main process."""
    procs = ds.dataset(str(cap / "procs"), format="parquet").to_table()
    return all(truth["main"] in procs.filter(pc.equal(procs["pid"], w["pid"]))["ppid"].to_pylist()
               for w in truth["workers"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    C.need_root()
    runs = []
    for r in range(a.repeats):
        base = C.tmpdir("iolens-exact-")
        try:
            cap, truth = record(base)
            io = ds.dataset(str(cap / "io"), format="parquet").to_table()
            meta = json.loads((cap / "capture.json").read_text())
            rows = checks(io, truth)
            runs.append({"checks": rows, "exact": sum(x["exact"] for x in rows),
                         "total": len(rows), "ppid_ok": ppid_ok(cap, truth),
                         "lost_events": meta.get("lost_events"),
                         "complete": meta.get("complete")})
        finally:
            C.rmtree(base)
        print(f"repeat {r + 1}: {runs[-1]['exact']}/{runs[-1]['total']} checks exact, "
              f"workers' ppid right: {runs[-1]['ppid_ok']}")
        print(C.table(["process", "op", "resource", "expected (count, bytes, errors)",
                       "captured", "exact"],
                      [[x["process"], x["op"], x["resource"], str(tuple(x["expected"])),
                        str(tuple(x["captured"])), "yes" if x["exact"] else "NO"]
                       for x in rows]))
    p = C.save("exactness", {"repeats": a.repeats, "runs": runs})
    print(f"raw: {C.rel(p)}")
    return 0 if all(r["exact"] == r["total"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
