"""GPU utilisation sampler (NVML through nvidia-ml-py): the optional probe "gpu".

Per interval and per NVIDIA device it writes one device-wide row to the `gpu` table (`pid`
null) and one row per process using the device (`pid` = host pid, the same as `procs.pid`,
so a join gives the process's role and rank: "the GPU of rank 3 sat idle 40% of the time").

Values (see collector/schema.py GPU):
- `util` / `mem_util`: device-wide, the mean of the driver's utilisation samples taken since
  the previous drain (`nvmlDeviceGetSamples`), else the driver's current reading
  (`nvmlDeviceGetUtilizationRates`); per process, the mean SM / memory-controller share of
  that process's samples in the interval (`nvmlDeviceGetProcessUtilization`), 0 when the
  process had no sample (it did not run a kernel), null when the driver cannot tell.
- `mem_used_bytes`: device memory in use (device row) or held by the process.

No bcc here: this probe only calls NVML. On a host without an NVIDIA GPU, driver or the
nvidia-ml-py package, start() raises "no NVIDIA GPU/NVML on this host (...)", and the capture
records that in capture.json `probes_skipped["gpu"]` and nothing else.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

NO_GPU = "no NVIDIA GPU/NVML on this host"


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


class GpuProbe:
    """Samples NVML on the collector thread at each drain (no thread of its own)."""

    name = "gpu"
    tables = ("gpu",)

    def __init__(self, opts: Any = None, nvml: Any = None) -> None:
        self.opts = opts
        self._nvml = nvml          # a module with the pynvml API (tests pass a fake)
        self._devices: list[tuple[int, Any, str | None]] = []   # (index, handle, uuid)
        self._last_us: dict[int, int] = {}      # device index -> last device sample time
        self._last_proc_us: dict[int, int] = {}  # device index -> last process sample time
        self._started = False

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        nv = self._nvml
        if nv is None:
            try:
                import pynvml as nv  # nvidia-ml-py (pip install 'iolens[gpu]')
            except ImportError:
                raise RuntimeError(f"{NO_GPU} (nvidia-ml-py not installed)") from None
            self._nvml = nv
        try:
            nv.nvmlInit()
        except Exception as exc:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded...
            raise RuntimeError(f"{NO_GPU} ({_text(exc) or type(exc).__name__})") from None
        self._started = True
        try:
            count = nv.nvmlDeviceGetCount()
            for i in range(count):
                h = nv.nvmlDeviceGetHandleByIndex(i)
                try:
                    uuid = _text(nv.nvmlDeviceGetUUID(h))
                except Exception:  # noqa: BLE001
                    uuid = None
                self._devices.append((i, h, uuid))
        except Exception as exc:  # noqa: BLE001
            self.close()
            raise RuntimeError(f"{NO_GPU} ({_text(exc)})") from None
        if not self._devices:
            self.close()
            raise RuntimeError(f"{NO_GPU} (NVML sees 0 devices)")
        now_us = time.time_ns() // 1000
        for i, _, _ in self._devices:  # samples from before the capture are not ours
            self._last_us[i] = self._last_proc_us[i] = now_us

    def poll(self) -> None:
        """Nothing to consume between drains: NVML keeps its own sample buffer."""

    def close(self) -> None:
        if self._started:
            self._started = False
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001
                pass

    # --- per interval --------------------------------------------------------------------------
    def _nvml_error(self, exc: BaseException, *names: str) -> bool:
        """Whether `exc` is an NVMLError with one of the named NVML_ERROR_* codes."""
        nv = self._nvml
        code = getattr(exc, "value", None)
        return any(code == getattr(nv, n, object()) for n in names)

    def _device_util(self, idx: int, h: Any) -> tuple[float | None, float | None]:
        nv = self._nvml
        out: list[float | None] = []
        newest = self._last_us[idx]
        for kind in ("NVML_GPU_UTILIZATION_SAMPLES", "NVML_MEMORY_UTILIZATION_SAMPLES"):
            try:
                vtype, samples = nv.nvmlDeviceGetSamples(h, getattr(nv, kind),
                                                         self._last_us[idx])
                vals = [(s.timeStamp, _sample_value(s, vtype)) for s in samples
                        if s.timeStamp > self._last_us[idx]]
            except Exception:  # noqa: BLE001 - not supported / no samples yet
                vals = []
            if vals:
                newest = max(newest, max(t for t, _ in vals))
                out.append(sum(v for _, v in vals) / len(vals) / 100.0)
            else:
                out.append(None)
        self._last_us[idx] = newest
        if out[0] is None or out[1] is None:
            try:
                rates = nv.nvmlDeviceGetUtilizationRates(h)
                out = [out[0] if out[0] is not None else rates.gpu / 100.0,
                       out[1] if out[1] is not None else rates.memory / 100.0]
            except Exception:  # noqa: BLE001
                pass
        return out[0], out[1]

    def _process_util(self, idx: int, h: Any) -> dict[int, tuple[float, float]] | None:
        """pid -> (mean SM share, mean memory share) in the interval; None: not supported."""
        nv = self._nvml
        try:
            samples = nv.nvmlDeviceGetProcessUtilization(h, self._last_proc_us[idx])
        except Exception as exc:  # noqa: BLE001
            if self._nvml_error(exc, "NVML_ERROR_NOT_FOUND"):
                return {}  # no process ran a kernel since the last look
            return None
        acc: dict[int, list[float]] = {}
        newest = self._last_proc_us[idx]
        for s in samples:
            if s.timeStamp <= self._last_proc_us[idx]:
                continue
            newest = max(newest, s.timeStamp)
            a = acc.setdefault(int(s.pid), [0.0, 0.0, 0])
            a[0] += s.smUtil
            a[1] += s.memUtil
            a[2] += 1
        self._last_proc_us[idx] = newest
        return {pid: (a[0] / a[2] / 100.0, a[1] / a[2] / 100.0) for pid, a in acc.items()}

    def _processes(self, h: Any) -> dict[int, int | None]:
        """pid -> device memory it holds (None: the driver does not say)."""
        nv = self._nvml
        out: dict[int, int | None] = {}
        for fn in ("nvmlDeviceGetComputeRunningProcesses",
                   "nvmlDeviceGetGraphicsRunningProcesses"):
            try:
                procs = getattr(nv, fn)(h)
            except Exception:  # noqa: BLE001
                continue
            for p in procs:
                mem = getattr(p, "usedGpuMemory", None)
                prev = out.get(int(p.pid))
                out[int(p.pid)] = mem if prev is None else prev + (mem or 0)
        return out

    def sample(self, ts_ns: int, interval_s: float, host: str) -> dict[str, list]:
        """One interval's rows as column lists (device rows first, then its processes)."""
        nv = self._nvml
        cols: dict[str, list] = {k: [] for k in ("ts", "interval_s", "host", "device", "uuid",
                                                 "pid", "util", "mem_util", "mem_used_bytes")}

        def row(idx, uuid, pid, util, mem_util, mem):
            for k, v in zip(cols, (ts_ns, interval_s, host, idx, uuid, pid, util, mem_util,
                                   mem), strict=True):
                cols[k].append(v)

        for idx, h, uuid in self._devices:
            util, mem_util = self._device_util(idx, h)
            try:
                used = int(nv.nvmlDeviceGetMemoryInfo(h).used)
            except Exception:  # noqa: BLE001
                used = None
            row(idx, uuid, None, util, mem_util, used)
            procs = self._processes(h)
            putil = self._process_util(idx, h)
            for pid in sorted(set(procs) | set(putil or {})):
                if putil is None:
                    pu = pm = None
                else:
                    pu, pm = putil.get(pid, (0.0, 0.0))
                row(idx, uuid, pid, pu, pm, procs.get(pid))
        return cols

    def drain(self, ctx: Any) -> dict[str, pa.Table]:
        from iolens.collector import schema as S

        cols = self.sample(ctx.start_ns, ctx.interval_s, ctx.host)
        cols["ts"] = pa.array(cols["ts"], pa.int64()).cast(S.TS)
        return {"gpu": S.to_table("gpu", cols)}


#: nvmlValueType_t -> field of the nvmlValue_t union
_VALUE_FIELDS = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")


def _sample_value(s: Any, vtype: int) -> float:
    """An nvmlSample_t's value (utilisation samples are unsigned ints, in percent)."""
    v = s.sampleValue
    if isinstance(v, (int, float)):
        return float(v)
    field = _VALUE_FIELDS[vtype] if 0 <= vtype < len(_VALUE_FIELDS) else "uiVal"
    return float(getattr(v, field))


def idle_by_process(gpu: pa.Table, procs: pa.Table | None = None) -> list[dict[str, Any]]:
    """The join analysis needs: for each process seen on a GPU, how idle its device was.

    `gpu` rows with a pid say which device a process used in an interval; the device row of
    that interval (pid null) says how busy the device was. `procs` (latest row per pid) adds
    role and rank. Returns one dict per (pid, device): intervals, seconds, util (time-weighted
    mean device utilisation), idle_share (1 - util), proc_util (the process's own share),
    role, rank, comm; sorted by idle_share, most idle first.
    """
    rows = gpu.to_pylist()
    dev = {(r["ts"], r["host"], r["device"]): r for r in rows if r["pid"] is None}
    info: dict[int, dict[str, Any]] = {}
    if procs is not None and procs.num_rows:
        for r in sorted(procs.select(["ts", "pid", "comm", "role", "rank"]).to_pylist(),
                        key=lambda r: r["ts"]):
            cur = info.setdefault(r["pid"], {"comm": None, "role": None, "rank": None})
            for k in ("comm", "role", "rank"):  # latest non-null observation wins
                if r[k] is not None:
                    cur[k] = r[k]
    acc: dict[tuple[int, int], list[float]] = {}
    for r in rows:
        if r["pid"] is None:
            continue
        d = dev.get((r["ts"], r["host"], r["device"]))
        if d is None or d["util"] is None:
            continue
        a = acc.setdefault((r["pid"], r["device"]), [0, 0.0, 0.0, 0.0, 0.0])
        a[0] += 1
        a[1] += r["interval_s"]
        a[2] += d["util"] * r["interval_s"]
        if r["util"] is not None:
            a[3] += r["util"] * r["interval_s"]
            a[4] += r["interval_s"]
    out = []
    for (pid, device), (n, secs, busy, pbusy, psecs) in acc.items():
        util = busy / secs if secs else 0.0
        p = info.get(pid, {})
        out.append({"pid": pid, "device": device, "intervals": n, "seconds": secs,
                    "util": util, "idle_share": 1.0 - util,
                    "proc_util": pbusy / psecs if psecs else None,
                    "role": p.get("role"), "rank": p.get("rank"), "comm": p.get("comm")})
    out.sort(key=lambda r: (-r["idle_share"], r["pid"], r["device"]))
    return out
