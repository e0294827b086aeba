"""The NVML sampler (probes/gpu.py) against a fake NVML module: rows, the pid join, no-GPU."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace as NS

import pyarrow as pa
import pytest

from iolens.collector import schema as S
from iolens.probes import gpu as G

NOW_US = 10**18  # far in the future: every fake sample is "new" unless said otherwise


class NVMLError(Exception):
    def __init__(self, value):
        super().__init__(f"nvml error {value}")
        self.value = value


def fake_nvml(devices, init_error=None):
    """A module with the slice of the pynvml API the probe uses.

    devices: list of dicts: uuid, util_samples [(ts_us, pct)], mem_samples, rates (gpu, mem),
    used, procs {pid: mem}, proc_samples [(pid, ts_us, sm, mem)] or "unsupported"/"none".
    """
    m = types.ModuleType("fake_pynvml")
    m.NVMLError = NVMLError
    m.NVML_ERROR_NOT_FOUND, m.NVML_ERROR_NOT_SUPPORTED = 6, 3
    m.NVML_GPU_UTILIZATION_SAMPLES, m.NVML_MEMORY_UTILIZATION_SAMPLES = 1, 2
    m.calls = []

    def init():
        m.calls.append("init")
        if init_error:
            raise init_error

    m.nvmlInit = init
    m.nvmlShutdown = lambda: m.calls.append("shutdown")
    m.nvmlDeviceGetCount = lambda: len(devices)
    m.nvmlDeviceGetHandleByIndex = lambda i: devices[i]
    m.nvmlDeviceGetUUID = lambda h: h["uuid"].encode()

    def samples(h, kind, since):
        key = "util_samples" if kind == 1 else "mem_samples"
        if h.get(key) is None:
            raise NVMLError(m.NVML_ERROR_NOT_SUPPORTED)
        vals = [NS(timeStamp=t, sampleValue=NS(uiVal=v, dVal=-1.0)) for t, v in h[key]]
        return 1, [s for s in vals if s.timeStamp > since]

    m.nvmlDeviceGetSamples = samples
    m.nvmlDeviceGetUtilizationRates = lambda h: NS(gpu=h["rates"][0], memory=h["rates"][1])
    m.nvmlDeviceGetMemoryInfo = lambda h: NS(used=h["used"], total=80 << 30)
    m.nvmlDeviceGetComputeRunningProcesses = lambda h: [
        NS(pid=p, usedGpuMemory=mem) for p, mem in h["procs"].items()]
    m.nvmlDeviceGetGraphicsRunningProcesses = lambda h: []

    def putil(h, since):
        ps = h["proc_samples"]
        if ps == "unsupported":
            raise NVMLError(m.NVML_ERROR_NOT_SUPPORTED)
        got = [NS(pid=p, timeStamp=t, smUtil=sm, memUtil=mu, encUtil=0, decUtil=0)
               for p, t, sm, mu in ps if t > since]
        if not got:
            raise NVMLError(m.NVML_ERROR_NOT_FOUND)
        return got

    m.nvmlDeviceGetProcessUtilization = putil
    return m


def device(uuid="GPU-0", **kw):
    d = {"uuid": uuid, "util_samples": [], "mem_samples": [], "rates": (0, 0), "used": 0,
         "procs": {}, "proc_samples": []}
    d.update(kw)
    return d


def started(devices):
    nv = fake_nvml(devices)
    p = G.GpuProbe(None, nvml=nv)
    p.start()
    return p, nv


def drain(p, ts=1_000_000_000, interval=1.0):
    ctx = NS(start_ns=ts, end_ns=ts + int(interval * 1e9), interval_s=interval, host="h")
    t = p.drain(ctx)["gpu"]
    assert t.schema.equals(S.GPU, check_metadata=False)
    return t.to_pylist()


def test_device_and_process_rows():
    d0 = device("GPU-a", util_samples=[(NOW_US + 1, 100), (NOW_US + 2, 50)],
                mem_samples=[(NOW_US + 1, 20), (NOW_US + 2, 40)], used=5 << 30,
                procs={4242: 3 << 30, 4243: 1 << 30},
                proc_samples=[(4242, NOW_US + 1, 80, 10), (4242, NOW_US + 2, 40, 30)])
    p, nv = started([d0])
    rows = drain(p)
    dev = [r for r in rows if r["pid"] is None]
    assert len(dev) == 1 and dev[0]["uuid"] == "GPU-a" and dev[0]["device"] == 0
    assert dev[0]["util"] == pytest.approx(0.75) and dev[0]["mem_util"] == pytest.approx(0.3)
    assert dev[0]["mem_used_bytes"] == 5 << 30 and dev[0]["host"] == "h"
    by_pid = {r["pid"]: r for r in rows if r["pid"] is not None}
    assert by_pid[4242]["util"] == pytest.approx(0.6) and by_pid[4242]["mem_util"] == \
        pytest.approx(0.2) and by_pid[4242]["mem_used_bytes"] == 3 << 30
    # on the device but no sample in the interval: it ran no kernel -> 0, not unknown
    assert by_pid[4243]["util"] == 0.0 and by_pid[4243]["mem_used_bytes"] == 1 << 30
    # the next interval only sees newer samples; none -> the driver's current reading
    d0["util_samples"].append((NOW_US + 5, 10))
    d0["rates"] = (7, 9)
    d0["procs"] = {}
    rows = drain(p, ts=2_000_000_000)
    assert len(rows) == 1 and rows[0]["util"] == pytest.approx(0.10)
    assert rows[0]["mem_util"] == pytest.approx(0.09)
    p.close()
    p.close()
    assert nv.calls == ["init", "shutdown"]


def test_unsupported_sampling_falls_back_and_process_util_unknown():
    d0 = device(util_samples=None, mem_samples=None, rates=(33, 5), procs={7: None},
                proc_samples="unsupported")
    d1 = device("GPU-1", rates=(0, 0))
    p, _ = started([d0, d1])
    rows = drain(p)
    assert [(r["device"], r["pid"]) for r in rows] == [(0, None), (0, 7), (1, None)]
    assert rows[0]["util"] == pytest.approx(0.33) and rows[0]["mem_util"] == pytest.approx(0.05)
    assert rows[1]["util"] is None and rows[1]["mem_used_bytes"] is None
    assert rows[2]["util"] == 0.0


def test_no_gpu_start_raises_the_recorded_reason(monkeypatch):
    nv = fake_nvml([], init_error=NVMLError(9))
    with pytest.raises(RuntimeError, match=f"^{G.NO_GPU}"):
        G.GpuProbe(None, nvml=nv).start()
    nv = fake_nvml([])
    with pytest.raises(RuntimeError, match="0 devices"):
        G.GpuProbe(None, nvml=nv).start()
    assert nv.calls == ["init", "shutdown"]
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    with pytest.raises(RuntimeError, match="nvidia-ml-py not installed"):
        G.GpuProbe(None).start()


def test_collector_records_no_gpu_as_skipped_and_writes_no_table(monkeypatch):
    from iolens.collector.live import Collector
    from iolens.collector.options import RecordOptions
    from iolens.probes import registry

    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr(registry, "EXTRA_PROBES", ["iolens.probes.gpu:GpuProbe"])
    c = Collector(RecordOptions(), [])
    c._start_extra()
    assert c.extra == [] and "gpu" not in c.meta.probes_attached
    assert c.meta.probes_skipped["gpu"].startswith(G.NO_GPU)


def test_join_with_procs_gives_idle_share_of_a_ranks_gpu():
    """'The GPU of rank 3 sat idle 40% of the time': gpu rows joined to procs by host pid."""
    gpu_rows = []
    utils = [1.0, 0.0, 1.0, 0.4, 0.6]  # device 1 (rank 3's): mean 0.6 -> idle 40%
    for i, u in enumerate(utils):
        ts = (i + 1) * 10**9
        for devidx, util, pid in ((0, 0.95, 500), (1, u, 503)):
            gpu_rows.append({"ts": ts, "interval_s": 1.0, "host": "h", "device": devidx,
                             "uuid": f"GPU-{devidx}", "pid": None, "util": util,
                             "mem_util": 0.1, "mem_used_bytes": 1})
            gpu_rows.append({"ts": ts, "interval_s": 1.0, "host": "h", "device": devidx,
                             "uuid": f"GPU-{devidx}", "pid": pid, "util": util / 2,
                             "mem_util": 0.0, "mem_used_bytes": 1})
    cols = {k: [r[k] for r in gpu_rows] for k in gpu_rows[0]}
    cols["ts"] = pa.array(cols["ts"], pa.int64()).cast(S.TS)
    gpu = S.to_table("gpu", cols)
    procs = S.to_table("procs", {
        "ts": pa.array([1, 2, 3], pa.int64()).cast(S.TS), "host": ["h"] * 3,
        "pid": [500, 503, 503], "comm": ["python", "python", "python"],
        "role": ["rank", None, "rank"], "rank": [0, 3, 3]})
    out = G.idle_by_process(gpu, procs)
    assert [(r["pid"], r["device"], r["rank"], r["role"]) for r in out] == [
        (503, 1, 3, "rank"), (500, 0, 0, "rank")]
    assert out[0]["idle_share"] == pytest.approx(0.4) and out[0]["intervals"] == 5
    assert out[0]["proc_util"] == pytest.approx(0.3)
    assert out[1]["idle_share"] == pytest.approx(0.05)
