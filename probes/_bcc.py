"""The only module that imports `bcc` (Debian's python3-bpfcc, never PyPI's `bcc`).

In: BPF C text, integer -D flags. Out: a `Program` with the few operations iolens needs:
batched read-and-delete of hashes (shared or per-CPU) into numpy, ring-buffer consumption, small map
updates, counters, cleanup. BCC's own messages are translated into actionable ones.
"""

from __future__ import annotations

import ctypes as ct
import errno
import os
import warnings
from collections.abc import Callable

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", SyntaxWarning)  # bcc/__init__.py on Python >= 3.12
    from bcc import BPF  # noqa: E402
    from bcc.libbcc import lib  # noqa: E402
    from bcc.utils import get_possible_cpus  # noqa: E402


class ProbeLoadError(RuntimeError):
    """The kernel or compiler refused a program; the message says why in one line."""


def _translate(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    if "super-user" in msg and os.geteuid() == 0:
        # BCC says this for any EPERM; as root it means lockdown/container policy.
        return "the kernel refused this program type (lockdown or container policy)"
    if "kernel headers" in msg.lower() or "chdir(/lib/modules" in msg:
        return "kernel headers missing: run .ci/setup.sh (links headers under /lib/modules)"
    return msg


def possible_cpus() -> int:
    return len(get_possible_cpus())


class Program:
    """A compiled and attached BCC program."""

    def __init__(self, text: str, cflags: list[str], include_dir: str) -> None:
        flags = [f"-I{include_dir}", *cflags]
        try:
            self.bpf = BPF(text=text.encode(), cflags=flags)
        except Exception as exc:  # BCC raises bare Exception for compile/load/attach
            raise ProbeLoadError(_translate(exc)) from None
        self.ncpu = possible_cpus()
        self._rb_open = False

    # --- maps ------------------------------------------------------------------------------
    def map_fd(self, name: str) -> int:
        return self.bpf[name.encode()].map_fd

    def array_set_u32(self, name: str, idx: int, value: int) -> None:
        t = self.bpf[name.encode()]
        t[ct.c_int(idx)] = ct.c_uint32(value)

    def hash_put_u32_u8(self, name: str, key: int) -> bool:
        """targets-style set membership; False when the map is full."""
        t = self.bpf[name.encode()]
        try:
            t[t.Key(key)] = t.Leaf(1)
            return True
        except Exception:  # noqa: BLE001 - bcc raises Exception on E2BIG/ENOMEM
            return False

    def hash_put_u64_u8(self, name: str, key: int) -> bool:
        t = self.bpf[name.encode()]
        try:
            t[t.Key(key)] = t.Leaf(1)
            return True
        except Exception:  # noqa: BLE001
            return False

    def fd_forget(self, name: str, tgid: int, fds: list[int]) -> None:
        """Delete (tgid, fd) keys of the fd-generation map (process exited)."""
        t = self.bpf[name.encode()]
        for fd in fds:
            k = t.Key()
            k.tgid, k.fd = tgid, fd
            try:
                del t[k]
            except KeyError:
                pass

    def percpu_array_sums(self, name: str, n: int) -> list[int]:
        t = self.bpf[name.encode()]
        return [int(sum(t[ct.c_int(i)])) for i in range(n)]

    def take_percpu_hash(self, name: str, key_dtype: np.dtype, val_dtype: np.dtype,
                         capacity: int) -> tuple[np.ndarray, np.ndarray]:
        """Read and delete every entry of a per-CPU hash in batches.

        Returns (keys[n], values[n, ncpu]) as numpy structured arrays. Per-CPU values are
        laid out by the kernel as ncpu consecutive records rounded up to 8 bytes.
        """
        return self._take(name, key_dtype, val_dtype, capacity, self.ncpu)

    def take_hash(self, name: str, key_dtype: np.dtype, val_dtype: np.dtype,
                  capacity: int) -> tuple[np.ndarray, np.ndarray]:
        """Read and delete every entry of a (shared) hash: (keys[n], values[n, 1])."""
        return self._take(name, key_dtype, val_dtype, capacity, 1)

    def _take(self, name: str, key_dtype: np.dtype, val_dtype: np.dtype, capacity: int,
              ncpu: int) -> tuple[np.ndarray, np.ndarray]:
        fd = self.map_fd(name)
        vsize = (val_dtype.itemsize + 7) & ~7 if ncpu > 1 else val_dtype.itemsize
        keys = np.empty(capacity, dtype=key_dtype)
        vals = np.empty(capacity * ncpu * vsize, dtype=np.uint8)
        in_batch, out_batch = ct.c_uint32(0), ct.c_uint32(0)
        total, first = 0, True
        while total < capacity:
            cnt = ct.c_uint32(capacity - total)
            res = lib.bpf_lookup_and_delete_batch(
                fd, None if first else ct.byref(in_batch), ct.byref(out_batch),
                keys.ctypes.data + total * key_dtype.itemsize,
                vals.ctypes.data + total * ncpu * vsize, ct.byref(cnt))
            err = ct.get_errno()
            total += cnt.value
            if res != 0:
                if err == errno.ENOENT:
                    break
                if err == errno.ENOSPC and cnt.value == 0:
                    raise ProbeLoadError(f"batch read of {name} failed: bucket larger than buffer")
                raise ProbeLoadError(f"batch read of {name} failed: {os.strerror(err)}")
            in_batch.value = out_batch.value
            first = False
        keys = keys[:total]
        raw = vals[: total * ncpu * vsize].reshape(total, ncpu, vsize)
        if vsize != val_dtype.itemsize:
            raw = np.ascontiguousarray(raw[:, :, : val_dtype.itemsize])
        return keys, raw.view(val_dtype).reshape(total, ncpu)

    def map_len(self, name: str) -> int:
        return len(list(self.bpf[name.encode()].keys()))

    # --- ring buffer -----------------------------------------------------------------------
    def open_ring_buffer(self, name: str, callback: Callable[[bytes], bool | None]) -> None:
        """Deliver each record's bytes to `callback` during `consume()`. A callback that
        returns True stops this consume after its record (libbpf stops on a negative return
        and keeps the rest for the next call)."""

        def _cb(_ctx, data, size):  # called from ring_buffer_consume, in this thread
            return -1 if callback(ct.string_at(data, size)) else 0

        self.bpf[name.encode()].open_ring_buffer(_cb)
        self._rb_open = True

    def consume(self) -> None:
        if self._rb_open:
            self.bpf.ring_buffer_consume()

    def close(self) -> None:
        # `if self.bpf:` would be False (BPF.__len__ counts tables): compare to None.
        if getattr(self, "bpf", None) is not None:
            _detach_tracepoints(self.bpf)
            self.bpf.cleanup()
            self.bpf = None


def _detach_tracepoints(bpf: BPF) -> None:
    """Detach every tracepoint from several threads at once. The kernel waits for an RCU grace
    period after each perf tracepoint event it releases (perf_trace_event_unreg), under a
    lock, so one by one took 8.2 s for the syscall probe's 113 tracepoints; threads overlap
    the rest of the work: 3.9 s (`benchmarks/detach_cost.py --rounds 2`, 2 vCPUs). What fails
    here is left to cleanup(), which retries."""
    from concurrent.futures import ThreadPoolExecutor

    tps = list(getattr(bpf, "tracepoint_fds", {}) or {})
    if len(tps) < 2:
        return

    def one(tp: bytes) -> None:
        try:
            bpf.detach_tracepoint(tp)
        except Exception:  # noqa: BLE001 - cleanup() below tries again and reports
            pass

    with ThreadPoolExecutor(max_workers=min(64, len(tps)),
                            thread_name_prefix="iolens-detach") as ex:
        list(ex.map(one, tps))


def try_load(text: str, cflags: list[str] | None = None) -> str | None:
    """Compile+load+attach a tiny program; None if it works, else the reason (doctor)."""
    try:
        b = BPF(text=text.encode(), cflags=cflags or [])
        b.cleanup()
        return None
    except Exception as exc:  # noqa: BLE001
        return _translate(exc)


def pin_sched_cls(text: str, func: str, path: str, cflags: list[str] | None = None) -> None:
    """Compile `text`, load `func` as a tc classifier (SCHED_CLS) and pin it at `path`.

    `path` must be on a bpffs mount; `tc filter ... bpf da object-pinned PATH` then attaches
    it (used by tests to inject packet loss inside a network namespace they created). The
    pinned program outlives this process until the pin is removed and tc detaches it.
    """
    try:
        b = BPF(text=text.encode(), cflags=cflags or [])
        fn = b.load_func(func.encode(), BPF.SCHED_CLS)
    except Exception as exc:  # noqa: BLE001
        raise ProbeLoadError(_translate(exc)) from None
    if lib.bpf_obj_pin(fn.fd, path.encode()) != 0:
        err = ct.get_errno()
        b.cleanup()
        raise ProbeLoadError(f"cannot pin {func} at {path}: {os.strerror(err)}")
    b.cleanup()
