"""Clock facts recorded in every capture, so timelines of many hosts can be aligned.

Each sample: wall clock and monotonic clock read together (the monotonic clock is what BPF
timestamps use), plus what the kernel's NTP discipline says about the wall clock
(adjtimex: estimated offset, maximum error, synchronised or not). Analysis compares hosts'
samples (and their NTP error bounds) and warns when they may disagree by more than a threshold.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time

_STA_UNSYNC = 0x0040
_TIME_ERROR = 5


class _Timex(ctypes.Structure):
    # struct timex (x86-64 / aarch64 layout): the fields read here come first.
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long),
                ("status", ctypes.c_int), ("constant", ctypes.c_long),
                ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long),
                ("tick", ctypes.c_long), ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long),
                ("shift", ctypes.c_int), ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long),
                ("calcnt", ctypes.c_long), ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long),
                ("tai", ctypes.c_int), ("_pad", ctypes.c_int * 11)]


def ntp_state() -> dict[str, float | bool | None]:
    """{'ntp_synced', 'ntp_maxerror_us', 'ntp_esterror_us'} from adjtimex (read-only)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))  # modes = 0: read only
    except (OSError, AttributeError):
        return {"ntp_synced": None, "ntp_maxerror_us": None, "ntp_esterror_us": None}
    synced = state != _TIME_ERROR and not (tx.status & _STA_UNSYNC)
    return {"ntp_synced": bool(synced), "ntp_maxerror_us": float(tx.maxerror),
            "ntp_esterror_us": float(tx.esterror)}


def sample() -> dict[str, float | bool | None]:
    """One clock sample: realtime/monotonic pair (read back to back) and NTP state."""
    m0 = time.monotonic_ns()
    r = time.time_ns()
    m1 = time.monotonic_ns()
    return {"realtime_ns": r, "monotonic_ns": (m0 + m1) // 2, "read_ns": m1 - m0, **ntp_state()}
