#!/usr/bin/env python3
"""Run one labeled scenario (benchmarks/scenarios/NAME.py) for a fixed amount of work and print
how long it took, as one JSON line. Used by workloads.py (untraced and under iolens).

    python wl_driver.py NAME --prepare          create the scenario's data (not timed)
    python wl_driver.py NAME --calibrate SECS   run SECS seconds; print the iterations done
    python wl_driver.py NAME --iters N          run exactly N iterations; print the seconds
    python wl_driver.py --batch NAME:N ...      each in turn (a child process each), one JSON
                                                line {NAME: seconds, ...} (one tracer start-up
                                                serves every workload of a round)

The scenarios loop with `common.until()` for a duration; here `until` is replaced by a
generator of exactly N iterations before the scenario is imported, so the work is fixed and
the wall time is the measure. Two workloads are driven here instead:
  inference_server  the scenario's own request Handler, 4 clients x N requests each
  gloo_ranks        two gloo ranks over loopback (no netns, no rate limit: the scenario
                    gloo_slow_link's shaped link would hide any tracing cost), N all_reduce
                    of a 2 MiB tensor; the time is rank 0's loop (process start excluded)
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "scenarios"))


def fixed(n: int):
    def until(seconds: float = 0.0):
        yield from range(n)
    return until


def counting(seconds: float, box: list):
    def until(_s: float = 0.0):
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            yield i
            i += 1
            box[0] = i
    return until


def scenario(name: str, until) -> object:
    import common

    common.until = until
    return __import__(name)


# --- inference server: fixed requests -----------------------------------------------------
def inference(n: int | None, seconds: float | None) -> int:
    import inference_server as m
    import socketserver

    import torch

    torch.set_num_threads(1)
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), m.Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    done = [0] * 4
    end = time.monotonic() + seconds if seconds else None

    def client(i: int) -> None:
        with socket.create_connection(srv.server_address) as s:
            k = i
            while (n is not None and done[i] < n) or (end is not None and time.monotonic() < end):
                s.sendall(struct.pack("!Q", k))
                s.recv(4)
                k += 7
                done[i] += 1

    th = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    srv.shutdown()
    return min(done)


# --- gloo ranks over loopback -------------------------------------------------------------
def gloo_rank(rank: int, n: int, port: int) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    t = torch.ones(512 * 1024)
    dist.barrier()
    t0 = time.monotonic()
    for _ in range(n):
        dist.all_reduce(t)
        t.div_(2)
    dist.barrier()
    if rank == 0:
        print(json.dumps({"rank_secs": time.monotonic() - t0}), flush=True)
    dist.destroy_process_group()


def gloo(n: int) -> float:
    """Seconds rank 0 spent in the all_reduce loop (process start and init excluded)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable, __file__, "gloo_ranks", "--rank", str(r),
                               str(n), str(port)], stdout=subprocess.PIPE, text=True)
             for r in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit("gloo ranks failed")
    return json.loads(outs[0].strip().splitlines()[-1])["rank_secs"]


def batch(specs: list[str]) -> int:
    res = {}
    for spec in specs:
        name, n = spec.rsplit(":", 1)
        r = subprocess.run([sys.executable, __file__, name, "--iters", n], capture_output=True,
                           text=True, timeout=600)
        if r.returncode != 0:
            print(f"{name} failed: {r.stderr[-300:]}", file=sys.stderr)
            res[name] = None
            continue
        line = [ln for ln in r.stdout.splitlines() if ln.startswith("{")][-1]
        res[name] = json.loads(line)["secs"]
    print(json.dumps(res), flush=True)
    return 0


def main() -> int:
    if sys.argv[1] == "--batch":
        return batch(sys.argv[2:])
    name, mode = sys.argv[1], sys.argv[2]
    if mode == "--rank":
        gloo_rank(int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        return 0
    if mode == "--prepare":
        if name not in ("gloo_ranks",):
            mod = scenario(name, fixed(0))
            mod.prepare()
            os.sync()
        return 0
    arg = float(sys.argv[3])
    if name == "inference_server":
        import inference_server  # noqa: F401 - torch and the model load before the clock
    t0 = time.monotonic()
    secs = None
    if name == "gloo_ranks":
        iters = int(arg) if mode == "--iters" else 100
        secs = gloo(iters)
        if mode != "--iters":  # scale the count to the asked duration
            iters = max(20, int(iters * arg / max(secs, 1e-3)))
    elif name == "inference_server":
        if mode == "--iters":
            iters = inference(int(arg), None)
        else:
            iters = inference(None, arg)
    else:
        if mode == "--iters":
            iters = int(arg)
            mod = scenario(name, fixed(iters))
        else:
            box = [0]
            mod = scenario(name, counting(arg, box))
        t0 = time.monotonic()
        mod.run()
        if mode != "--iters":
            iters = box[0]
    if secs is None:
        secs = time.monotonic() - t0
    print(json.dumps({"iters": iters, "secs": secs}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
