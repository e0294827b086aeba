#!/usr/bin/env python3
"""The fio mechanisms behind `iolens replay-config`'s choices, measured side by side.

    sudo .venv/bin/python benchmarks/replica_variants.py --rounds 2

Two measurements on the disk under --work (docs/design.md §4.13 quotes them):

- **buffer**: cached 1 MiB reads (a shard reader's sample per request, 3.5 ms of think
  time between them) over four 32 MiB files, as the job files lay a slice reader out, or
  over 2048 files of 1 MiB, one per read, by fio with its default ``iomem=malloc`` buffer
  and with ``iomem=mmap``, the option the job files set. Median completion latency per
  round, from fio's JSON output.
- **rewrite**: a checkpoint saved to the same path every step (48 writes of 1 MiB and two
  small ones, fsync, close) as the original job does it, with ``open(O_TRUNC)`` (Python),
  and the ways an fio iolog can stand in for it: writing over the file in place with
  ``invalidate=0`` (what the job files do) or fio's default ``invalidate=1``, a new file per
  step, appending each step past the last, and one section per step that deletes its file
  when done (``unlink=1``). Per variant: the median latency of the small writes and of the
  1 MiB writes (fio's per-request latency log), and the wall time of all the steps.

Variants run interleaved, round after round. Results: $IOLENS_BENCH_RESULTS/replica_variants.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common as C  # noqa: E402

MIB = 1 << 20
BIG = 48                 # 1 MiB writes per checkpoint
SMALL = (128, 4096)      # the small writes of each checkpoint (header, metadata)
REWRITES = ("in place", "in place, invalidate=1", "new file per step", "append",
            "section per step, unlink=1")


def fio_json(job: Path) -> dict:
    """fio's JSON output of a job file (lines before the JSON, e.g. engine notes, dropped)."""
    out = subprocess.run(["fio", "--output-format=json", str(job)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out[out.index("{"):])


# --- buffer ------------------------------------------------------------------------------
#: layouts of the same reads: the shard reader's four 32 MiB files, or one 1 MiB file per
#: read (how the replica laid it out before slice readers had an iolog of their own)
LAYOUTS = {"4 files of 32 MiB": ("shard", 4, "32m", 4), "2048 files of 1 MiB": ("one", 2048,
                                                                               "1m", 1)}


def buffer_round(work: Path, layout: str, mem: str) -> float:
    """Median µs of cached 1 MiB reads over `layout` with fio's `iomem=mem`."""
    prefix, n, size, loops = LAYOUTS[layout]
    job = work / f"buffer-{prefix}-{mem}.fio"
    job.write_text("\n".join([
        "[reads]", f"directory={work}", f"filename_format={prefix}.$filenum", f"nrfiles={n}",
        f"filesize={size}", "bs=1m", "rw=read", "ioengine=sync", "invalidate=0",
        f"loops={loops}", "thinktime=3500", "thinktime_blocks=1", f"iomem={mem}", ""]))
    got = fio_json(job)["jobs"][0]["read"]["clat_ns"]["percentile"]["50.000000"]
    return got / 1e3


def buffer(work: Path, rounds: int) -> dict:
    for prefix, n, size, _ in LAYOUTS.values():
        subprocess.run(["fio", "--name=layout", f"--directory={work}",
                        f"--filename_format={prefix}.$filenum", f"--nrfiles={n}",
                        f"--filesize={size}", "--rw=read", "--create_only=1"], check=True,
                       stdout=subprocess.DEVNULL)
        for f in work.glob(f"{prefix}.*"):  # cached from the start, as the job files' are
            f.read_bytes()
    cases = [(lay, mem) for lay in LAYOUTS for mem in ("malloc", "mmap")]
    got: dict[tuple[str, str], list[float]] = {c: [] for c in cases}
    for _ in range(rounds):
        for c in cases:
            got[c].append(buffer_round(work, *c))
    return {f"{lay}, iomem={mem}": {"p50_us": v, "median_us": statistics.median(v)}
            for (lay, mem), v in got.items()}


# --- rewrite -----------------------------------------------------------------------------
def _step_writes() -> list[tuple[int, int]]:
    """(offset, size) of one checkpoint: the small writes first, then the tensors."""
    out, off = [], 0
    for sz in (*SMALL, *[MIB] * BIG):
        out.append((off, sz))
        off += sz
    return out


def truncate_run(work: Path, steps: int) -> tuple[list[int], list[int], float]:
    """The original's way: (small-write ns, 1 MiB-write ns, wall s)."""
    path, buf = work / "ckpt.pt", os.urandom(MIB)
    small, big = [], []
    t0 = time.monotonic()
    for _ in range(steps):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for _, sz in _step_writes():
            t = time.perf_counter_ns()
            os.write(fd, buf[:sz])
            (small if sz < MIB else big).append(time.perf_counter_ns() - t)
        os.fsync(fd)
        os.close(fd)
    return small, big, time.monotonic() - t0


def _iolog(path: Path, files: list[str], cycles: list[tuple[str, int]]) -> None:
    """An fio v2 iolog: `cycles` of (file, base offset), each one checkpoint."""
    lines = ["fio version 2 iolog", *(f"{f} add" for f in dict.fromkeys(files))]
    for f, base in cycles:
        lines.append(f"{f} open")
        lines += [f"{f} write {base + off} {sz}" for off, sz in _step_writes()]
        lines += [f"{f} sync 0 0", f"{f} close"]
    path.write_text("\n".join(lines) + "\n")


def fio_run(work: Path, variant: str, steps: int) -> tuple[list[int], list[int], float]:
    """One fio stand-in for the checkpoint loop: (small-write ns, 1 MiB-write ns, wall s),
    from fio's per-request latency log."""
    extent = sum(SMALL) + BIG * MIB
    sections = []
    name = lambda k: str(work / f"ckpt.{k}.pt")  # noqa: E731
    if variant == "section per step, unlink=1":
        for k in range(steps):
            _iolog(work / f"log.{k}", [name(0)], [(name(0), 0)])
            sections.append([f"[s{k}]", f"read_iolog={work / f'log.{k}'}", "unlink=1",
                             *([f"wait_for=s{k - 1}"] if k else [])])
    else:
        cycles = {"in place": [(name(0), 0)] * steps,
                  "in place, invalidate=1": [(name(0), 0)] * steps,
                  "new file per step": [(name(k), 0) for k in range(steps)],
                  "append": [(name(0), k * -(-extent // 4096) * 4096) for k in range(steps)],
                  }[variant]
        _iolog(work / "log", [f for f, _ in cycles], cycles)
        sections.append(["[s0]", f"read_iolog={work / 'log'}"])
    inval = "1" if variant == "in place, invalidate=1" else "0"
    job = work / "rewrite.fio"
    job.write_text("\n".join(["[global]", "ioengine=sync", f"invalidate={inval}",
                              f"write_lat_log={work / 'lat'}", "log_avg_msec=0", "",
                              *("\n".join(s) + "\n" for s in sections)]))
    t0 = time.monotonic()
    subprocess.run(["fio", str(job)], check=True, stdout=subprocess.DEVNULL, cwd=work)
    wall = time.monotonic() - t0
    small, big = [], []
    for log in work.glob("lat_clat.*.log"):
        for line in log.read_text().splitlines():
            _, ns, ddir, bs = (int(x) for x in line.split(",")[:4])
            if ddir == 1:
                (small if bs < MIB else big).append(ns)
        log.unlink()
    for f in work.glob("lat_*.log"):
        f.unlink()
    return small, big, wall


def rewrite(work: Path, rounds: int, steps: int) -> dict:
    variants = ("O_TRUNC (the original)", *REWRITES)
    got: dict[str, dict[str, list[float]]] = {v: {"small_us": [], "big_us": [], "wall_s": []}
                                              for v in variants}
    for _ in range(rounds):
        for v in variants:
            for f in work.glob("ckpt*"):
                f.unlink()
            os.sync()
            small, big, wall = truncate_run(work, steps) if v == variants[0] \
                else fio_run(work, v, steps)
            got[v]["small_us"].append(statistics.median(small) / 1e3)
            got[v]["big_us"].append(statistics.median(big) / 1e3)
            got[v]["wall_s"].append(wall)
    return {v: {k: {"rounds": x, "median": statistics.median(x)} for k, x in m.items()}
            for v, m in got.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=75,
                    help="checkpoints per rewrite run (the checkpoint_fsync scenario saves "
                         "about 75)")
    ap.add_argument("--work", default="/var/tmp/iolens-replica-variants",
                    help="a folder on the disk to measure (emptied first and after)")
    a = ap.parse_args(argv)
    C.need_root()
    work = Path(a.work)
    C.rmtree(work)
    work.mkdir(parents=True)
    try:
        buf = buffer(work, a.rounds)
        rw = rewrite(work, a.rounds, a.steps)
    finally:
        C.rmtree(work)
    print("cached 1 MiB reads by fio, median µs per round")
    print(C.table(["layout, buffer", "rounds", "median"],
                  [[m, " ".join(f"{x:.0f}" for x in v["p50_us"]), f"{v['median_us']:.0f}"]
                   for m, v in buf.items()]))
    base = rw["O_TRUNC (the original)"]["wall_s"]["median"]
    print(f"\ncheckpoint re-written every step ({a.steps} steps of {BIG} x 1 MiB + "
          f"{len(SMALL)} small writes, fsync), medians over {a.rounds} rounds")
    print(C.table(["variant", "small write µs", "1 MiB write µs", "wall s", "wall / original"],
                  [[v, f"{m['small_us']['median']:.1f}", f"{m['big_us']['median']:.0f}",
                    f"{m['wall_s']['median']:.2f}", f"{m['wall_s']['median'] / base:.2f}"]
                   for v, m in rw.items()]))
    C.save("replica_variants", {"rounds": a.rounds, "steps": a.steps, "buffer": buf,
                                "rewrite": rw})
    return 0


if __name__ == "__main__":
    sys.exit(main())
