#!/usr/bin/env python3
"""An ImageFolder-style small-file loader: the load of benchmarks/smallfiles.py and of the
real-BPF test tests/bpf/test_smallfiles.py.

    python benchmarks/wl_smallfiles.py --data DIR --files 20000 --dirs 200 --workers 2 \
        --seconds 10 [--work-us 3] [--epochs 1] --truth OUT.json

The file set (files of 1-8 KiB spread over `--dirs` directories, sizes from a fixed seed) is
made once under DIR and reused. Then `--workers` forked workers each take a shuffled share of
the files and, per sample, do what a Dataset's `__getitem__` does for a small image:
open, fstat, read (size + 1), read (EOF), close, plus a few microseconds of per-sample work.
They go on for `--seconds` (or `--epochs` full passes, whichever ends first).

Truth, written by the workload itself to `--truth`: per process (the main one's warm-up pass,
which reads every file once, and each worker), per directory, the number of files opened and
bytes read, and the syscall counts (opens, fstats, reads, closes), plus the throughput
(files/s of the workers over the timed window, set-up excluded). The last line on stdout
is the same JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time


def make_files(data: str, files: int, dirs: int, seed: int = 7) -> list[tuple[str, int]]:
    """Create (or reuse) the file set; return [(path, size)] in creation order."""
    rng = random.Random(seed)
    out = []
    marker = os.path.join(data, f".complete-{files}-{dirs}-{seed}")
    have = os.path.exists(marker)
    for i in range(files):
        d = os.path.join(data, f"class{i % dirs:04d}")
        p = os.path.join(d, f"img{i:07d}.bin")
        size = rng.randint(1024, 8192)
        if not have:
            if i < dirs:
                os.makedirs(d, exist_ok=True)
            with open(p, "wb") as f:
                f.write(rng.randbytes(size))
        out.append((p, size))
    if not have:
        open(marker, "w").close()
    return out


#: per file [samples, bytes] of this process, when --per-file asks (small loads: tests)
PER_FILE: dict[str, list[int]] | None = None


def load_one(path: str, per_dir: dict[str, list[int]]) -> int:
    """One sample as a Dataset's __getitem__ reads a small image: open, fstat, read
    (size + 1), read (EOF), close. Counts it into per_dir; returns the bytes read."""
    fd = os.open(path, os.O_RDONLY)
    st = os.fstat(fd)
    data = os.read(fd, st.st_size + 1)
    os.read(fd, 1)
    os.close(fd)
    acc = per_dir.setdefault(os.path.dirname(path), [0, 0])
    acc[0] += 1
    acc[1] += len(data)
    if PER_FILE is not None:
        f = PER_FILE.setdefault(path, [0, 0])
        f[0] += 1
        f[1] += len(data)
    return len(data)


def counts(per_dir: dict[str, list[int]], secs: float) -> dict:
    """A process's truth: per directory [files, bytes], and its syscall counts."""
    files = sum(v[0] for v in per_dir.values())
    out = {"pid": os.getpid(), "files": files, "bytes": sum(v[1] for v in per_dir.values()),
           "opens": files, "fstats": files, "reads": 2 * files, "closes": files,
           "per_dir": per_dir, "secs": secs}
    if PER_FILE is not None:
        out["per_file"] = dict(PER_FILE)
        PER_FILE.clear()
    return out


def warm(items: list[tuple[str, int]]) -> dict:
    """Read every file once (the main process) so the page cache holds the set: a warm,
    CPU-bound loader. Returns the main process's truth."""
    per_dir: dict[str, list[int]] = {}
    t0 = time.monotonic()
    for p, _ in items:
        load_one(p, per_dir)
    return counts(per_dir, time.monotonic() - t0)


def worker(items: list[tuple[str, int]], deadline: float, epochs: int, work_us: float,
           seed: int) -> dict:
    """Load samples until the deadline; return the worker's own counts."""
    rng = random.Random(seed)
    per_dir: dict[str, list[int]] = {}
    spin = int(work_us * 20)  # ~50 ns per iteration of the loop below
    order = list(range(len(items)))
    t0 = time.monotonic()
    done = False
    for _ in range(epochs):
        rng.shuffle(order)
        for n, i in enumerate(order):
            if n % 64 == 0 and time.monotonic() >= deadline:
                done = True
                break
            load_one(items[i][0], per_dir)
            x = 0
            for k in range(spin):  # per-sample work (decode, augment) in miniature
                x += k
        if done:
            break
    return counts(per_dir, time.monotonic() - t0)


def run(args: argparse.Namespace) -> dict:
    items = make_files(args.data, args.files, args.dirs)
    main_truth = warm(items) if not args.no_warm else counts({}, 0.0)
    shares = [items[w::args.workers] for w in range(args.workers)]
    go_r, go_w = os.pipe()
    pids, outs = [], []
    for w in range(args.workers):
        r, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # worker: wait for the start signal, load, report, exit
            os.close(r)
            os.read(go_r, 8)
            deadline = time.monotonic() + args.seconds
            res = worker(shares[w], deadline, args.epochs, args.work_us, seed=100 + w)
            with os.fdopen(wfd, "w") as f:
                json.dump(res, f)
            os._exit(0)
        os.close(wfd)
        pids.append(pid)
        outs.append(r)
    time.sleep(0.2)  # workers are at the gate
    t0 = time.monotonic()
    os.write(go_w, b"g" * 8 * args.workers)
    results = []
    for r in outs:
        with os.fdopen(r) as f:
            results.append(json.load(f))
    secs = time.monotonic() - t0
    for pid in pids:
        os.waitpid(pid, 0)
    total_files = sum(r["files"] for r in results)
    truth = {"workers": results, "main": main_truth, "files": total_files,
             "bytes": sum(r["bytes"] for r in results), "secs": secs,
             "files_per_s": total_files / max(1e-9, max(r["secs"] for r in results)),
             "data": os.path.abspath(args.data), "file_set": len(items), "dirs": args.dirs}
    return truth


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--dirs", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--epochs", type=int, default=10**9)
    ap.add_argument("--work-us", type=float, default=3.0)
    ap.add_argument("--truth")
    ap.add_argument("--prepare", action="store_true", help="only make the file set")
    ap.add_argument("--per-file", action="store_true",
                    help="also count per file in the truth (small loads)")
    ap.add_argument("--no-warm", action="store_true",
                    help="no warm-up pass (first epoch: every file is new to the tracer)")
    args = ap.parse_args()
    if args.prepare:
        make_files(args.data, args.files, args.dirs)
        return 0
    global PER_FILE
    PER_FILE = {} if args.per_file else None
    truth = run(args)
    if args.truth:
        with open(args.truth, "w") as f:
            json.dump(truth, f)
    summary = {k: v for k, v in truth.items() if k not in ("workers", "main")}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
