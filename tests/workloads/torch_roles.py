"""A miniature AI job with real PyTorch (CPU) whose every process has a known role.

    python torch_roles.py BASE TRUTH_JSON          (the launcher; the test records this)

BASE must hold data/shard-*.bin and weights/pretrained.safetensors (made by the test, before
recording). The launcher starts and waits for:
- an inference server (`serve`): accepts 8 short connections from the launcher (client);
- a trainer (`train`): a DataLoader with 2 worker processes over data/shard-*.bin, reads the
  weights, logs to logs/train.log, saves checkpoints/last.ckpt itself and has a forked helper
  process torch.save checkpoints/checkpoint-1/model.pt;
- two distributed ranks (`rank`) with RANK/WORLD_SIZE/MASTER_ADDR=127.0.0.1 in their
  environment (as torchrun sets them), doing a gloo all_reduce over loopback.
Each part writes its pids to BASE/truth-*.json; the launcher merges them into TRUTH_JSON.
"""

from __future__ import annotations

import glob
import json
import os
import socket
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)


def dump(path: str, obj) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f)
    os.rename(path + ".tmp", path)


def serve(base: str) -> None:
    s = socket.create_server(("127.0.0.1", 0))
    dump(f"{base}/port.json", {"port": s.getsockname()[1]})
    for _ in range(8):
        c, _ = s.accept()
        c.recv(64)
        c.sendall(b"ok")
        c.close()
    dump(f"{base}/truth-serve.json", {"server": os.getpid()})


def train(base: str) -> None:
    import multiprocessing as mp

    import torch
    from torch.utils.data import DataLoader, Dataset

    class Shards(Dataset):
        def __init__(self) -> None:
            self.paths = sorted(glob.glob(f"{base}/data/shard-*.bin"))

        def __len__(self) -> int:
            return len(self.paths)

        def __getitem__(self, i):
            with open(self.paths[i], "rb") as f:
                data = f.read()
            time.sleep(0.01)
            return torch.tensor([len(data), os.getpid()])

    os.makedirs(f"{base}/logs", exist_ok=True)
    with open(f"{base}/weights/pretrained.safetensors", "rb") as f:
        weights = f.read()
    model = torch.nn.Linear(16, 4)
    workers: set[int] = set()
    with open(f"{base}/logs/train.log", "w") as log:
        for step, batch in enumerate(DataLoader(Shards(), batch_size=4, num_workers=2)):
            workers.update(int(p) for p in batch[:, 1])
            log.write(f"step {step} bytes {int(batch[:, 0].sum())} weights {len(weights)}\n")
    os.makedirs(f"{base}/checkpoints/checkpoint-1", exist_ok=True)
    torch.save(model.state_dict(), f"{base}/checkpoints/last.ckpt")
    helper = mp.get_context("fork").Process(
        target=torch.save, args=(model.state_dict(), f"{base}/checkpoints/checkpoint-1/model.pt"))
    helper.start()
    helper.join()
    assert helper.exitcode == 0
    dump(f"{base}/truth-train.json", {"trainer": os.getpid(), "workers": sorted(workers),
                                      "ckpt_writer": helper.pid})


def rank(base: str) -> None:
    import torch
    import torch.distributed as dist

    r = int(os.environ["RANK"])
    dist.init_process_group("gloo", init_method="env://")
    t = torch.ones(4) * (r + 1)
    dist.all_reduce(t)
    dist.barrier()
    dist.destroy_process_group()
    dump(f"{base}/truth-rank{r}.json", {"pid": os.getpid(), "rank": r, "sum": float(t[0])})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launcher(base: str, truth: str) -> None:
    py = sys.executable
    server = subprocess.Popen([py, HERE, "serve", base])
    trainer = subprocess.Popen([py, HERE, "train", base])
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()),
               WORLD_SIZE="2", GLOO_SOCKET_IFNAME="lo")
    ranks = [subprocess.Popen([py, HERE, "rank", base],
                              env=dict(env, RANK=str(r), LOCAL_RANK=str(r))) for r in (0, 1)]
    deadline = time.time() + 60
    while not os.path.exists(f"{base}/port.json"):
        if time.time() > deadline or server.poll() is not None:
            raise SystemExit("server did not start")
        time.sleep(0.02)
    port = json.load(open(f"{base}/port.json"))["port"]
    for i in range(8):
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(f"req {i}".encode())
            assert c.recv(64) == b"ok"
    for p in (server, trainer, *ranks):
        if p.wait(timeout=120) != 0:
            raise SystemExit(f"{p.args[2]} failed: {p.returncode}")
    out = {"launcher": os.getpid()}
    for part in glob.glob(f"{base}/truth-*.json"):
        out.update(json.load(open(part)) if "rank" not in part else
                   {os.path.basename(part)[6:-5]: json.load(open(part))})
    dump(truth, out)


if __name__ == "__main__":
    if sys.argv[1] in ("serve", "train", "rank"):
        {"serve": serve, "train": train, "rank": rank}[sys.argv[1]](sys.argv[2])
    else:
        launcher(sys.argv[1], sys.argv[2])
