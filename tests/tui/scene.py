"""A small, deterministic ML training scene for the TUI tests (and the committed capture).

Per 1 s interval (golden numbers follow from these arguments):
- pid 4242 `python` trainer (rank 0, parent 4000 `bash`): writes /logs/train.log, sends and
  receives 50 MB/s to tcp:10.0.0.2:29500; in interval 5 it writes a 64 MiB checkpoint.
- pids 4250..4253 `pt_data_worker` dataloaders (parent 4242): each reads its own shard
  /data/imagenet/train/shard-0W.tar, 250 reads of 8 KiB. Worker 3 (4253) waits 2 ms per read
  (io 50%, the hottest process and file); the others 40 µs (io 1%).
"""

from __future__ import annotations

from tests import factories as F
from iolens.collector.sources import Interval

TRAINER = 4242
WORKERS = (4250, 4251, 4252, 4253)
SLOW_WORKER = 4253
HOT_FILE = "/data/imagenet/train/shard-03.tar"
CKPT = "/ckpt/step_1000.pt"
PEER = "tcp:10.0.0.2:29500"


def procs() -> list[dict]:
    out = [dict(pid=4000, ppid=1, comm="bash", cmdline="bash"),
           dict(pid=TRAINER, ppid=4000, comm="python", cmdline="python train.py",
                role="trainer", rank=0)]
    out += [dict(pid=p, ppid=TRAINER, comm="pt_data_worker", cmdline="python train.py",
                 role="dataloader") for p in WORKERS]
    return out


def rows(k: int) -> list[dict]:
    """The io rows of interval `k`."""
    out = []
    for i, pid in enumerate(WORKERS):
        lat = 2_000_000 if pid == SLOW_WORKER else 40_000
        out.append(F.io_row(pid=pid, comm="pt_data_worker", op="read", count=250,
                            nbytes=250 * 8192, lat_ns=lat, file_class="dataset",
                            resource=f"/data/imagenet/train/shard-0{i}.tar"))
    out.append(F.io_row(pid=TRAINER, op="write", resource="/logs/train.log", count=10,
                        nbytes=10 * 200, lat_ns=5_000, file_class="log"))
    out.append(F.io_row(pid=TRAINER, op="send", resource=PEER, count=50,
                        nbytes=50_000_000, lat_ns=300_000))
    out.append(F.io_row(pid=TRAINER, op="recv", resource=PEER, count=50,
                        nbytes=50_000_000, lat_ns=200_000))
    if k == 5:
        out.append(F.io_row(pid=TRAINER, op="write", resource=CKPT, count=64,
                            nbytes=64 << 20, lat_ns=20_000_000, file_class="checkpoint"))
        out.append(F.io_row(pid=TRAINER, op="fsync", resource=CKPT, count=1, nbytes=0,
                            lat_ns=150_000_000, file_class="checkpoint"))
    return out


def intervals(n: int = 10) -> list[Interval]:
    """`n` consecutive 1 s intervals starting at factories.T0."""
    return [F.interval(rows(k), procs() if k == 0 else None, ts=F.T0 + k * 10**9)
            for k in range(n)]
