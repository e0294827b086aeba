"""Check the NVML sampler (probes/gpu.py) on a host with a real NVIDIA GPU.

    python benchmarks/gpu_check.py [--seconds 6] [--no-load]

Needs nvidia-ml-py (`pip install 'iolens[gpu]'`); a load is generated with PyTorch when a
CUDA build of torch is importable (else only idle sampling is checked). No BPF, no root.

Checks, printing one line each and exiting 1 on the first failure:
1. the probe starts and sees >= 1 device (else prints the recorded skip reason, exits 2);
2. every drain gives one device row per device, values in range, uuid set;
3. with the load: its pid appears in per-process rows of some interval, with memory held,
   and device utilisation rises above 10% in some interval;
4. `idle_by_process` joins the load's pid to a fake procs row (role/rank).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from types import SimpleNamespace

LOAD = """
import sys, time, torch
x = torch.randn(4096, 4096, device="cuda")
end = time.time() + float(sys.argv[1])
print("ready", flush=True)
while time.time() < end:
    y = x @ x
    torch.cuda.synchronize()
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--no-load", action="store_true")
    a = ap.parse_args()
    import pyarrow as pa

    from iolens.collector import schema as S
    from iolens.probes.gpu import GpuProbe, idle_by_process

    probe = GpuProbe(None)
    try:
        probe.start()
    except RuntimeError as exc:
        print(f"SKIP gpu probe did not start: {exc}")
        return 2
    ndev = len(probe._devices)
    print(f"ok   probe started: {ndev} device(s): {[u for _, _, u in probe._devices]}")
    load = None
    if not a.no_load:
        try:
            import torch

            if torch.cuda.is_available():
                load = subprocess.Popen([sys.executable, "-c", LOAD, str(a.seconds)],
                                        stdout=subprocess.PIPE, text=True)
                load.stdout.readline()
                print(f"ok   load started: pid {load.pid}")
            else:
                print("note torch has no CUDA: idle sampling only")
        except ImportError:
            print("note torch not importable: idle sampling only")
    tables = []
    t0 = time.time_ns()
    try:
        for _ in range(max(2, int(a.seconds))):
            time.sleep(1.0)
            t1 = time.time_ns()
            ctx = SimpleNamespace(start_ns=t0, end_ns=t1, interval_s=(t1 - t0) / 1e9,
                                  host=os.uname().nodename)
            t = probe.drain(ctx)["gpu"]
            t0 = t1
            tables.append(t)
            dev = [r for r in t.to_pylist() if r["pid"] is None]
            procs = [r for r in t.to_pylist() if r["pid"] is not None]
            print("     " + "; ".join(
                f"dev{r['device']} util={r['util']} mem_util={r['mem_util']} "
                f"used={r['mem_used_bytes']}" for r in dev) + f"; {len(procs)} process row(s)")
            if len(dev) != ndev:
                print(f"FAIL expected {ndev} device rows, got {len(dev)}")
                return 1
            for r in t.to_pylist():
                for k in ("util", "mem_util"):
                    if r[k] is not None and not 0.0 <= r[k] <= 1.0:
                        print(f"FAIL {k} out of range: {r}")
                        return 1
            if any(r["uuid"] is None for r in dev):
                print("FAIL device without uuid")
                return 1
    finally:
        if load is not None:
            load.wait(timeout=60)
        probe.close()
    print("ok   device rows each interval, values in range")
    gpu = pa.concat_tables(tables)
    if load is not None:
        rows = [r for r in gpu.to_pylist() if r["pid"] == load.pid]
        if not rows:
            print(f"FAIL load pid {load.pid} never in per-process rows "
                  "(containerised NVML shows other pids?)")
            return 1
        if not any((r["mem_used_bytes"] or 0) > 0 for r in rows):
            print("FAIL load pid holds no device memory in any row")
            return 1
        busiest = max((r["util"] or 0) for r in gpu.to_pylist() if r["pid"] is None)
        if busiest < 0.10:
            print(f"FAIL device utilisation never above 10% under load (max {busiest})")
            return 1
        print(f"ok   load seen: {len(rows)} process rows, max device util {busiest:.2f}, "
              f"max process util {max((r['util'] or 0) for r in rows):.2f}")
        procs = S.to_table("procs", {"ts": pa.array([0], pa.int64()).cast(S.TS),
                                     "host": ["h"], "pid": [load.pid], "role": ["rank"],
                                     "rank": [3]})
        joined = [r for r in idle_by_process(gpu, procs) if r["pid"] == load.pid]
        if not joined or joined[0]["rank"] != 3:
            print(f"FAIL join: {joined}")
            return 1
        print(f"ok   join: rank 3's GPU idle {joined[0]['idle_share']:.0%} of "
              f"{joined[0]['seconds']:.1f} s")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
