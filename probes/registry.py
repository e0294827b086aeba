"""The probes a live capture tries to load, beyond the syscall probe.

Each entry is "module:Class". A class is built as `Class(opts)` and must provide:

    name: str                                   # shown in capture.json attached/skipped
    tables: tuple[str, ...]                     # collector.schema table names it fills
    start() -> None                             # compile + attach; raise to be skipped
    poll() -> None                              # consume its ring buffer (may do nothing)
    drain(ctx: DrainContext) -> dict[str, pa.Table]   # this interval's rows
    close() -> None

All of it runs on the collector thread. A probe whose start() raises is recorded in
`probes_skipped` with the one-line reason and the capture goes on without it ("degrade,
don't die"). `--disable NAME` skips one by name.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

EXTRA_PROBES: list[str] = [
    "iolens.probes.block:BlockProbe",          # block table (device view)
    "iolens.probes.pagecache:PageCacheProbe",  # pagecache + faults tables (per pid, file)
    "iolens.probes.tcp:TcpProbe",              # tcp table (per connection, pid from peers)
    "iolens.probes.gpu:GpuProbe",              # gpu table (NVML; skipped without a GPU)
]


@dataclass
class DrainContext:
    """What a probe's drain gets: the interval and the collector's enrichment state."""

    start_ns: int
    end_ns: int
    interval_s: float
    host: str
    resolver: Any          # collector.enrich.Resolver (paths, peers, processes)
    boot_offset_ns: int    # add to bpf_ktime_get_ns() values to get wall-clock ns


def load_class(spec: str) -> type:
    module, _, cls = spec.partition(":")
    return getattr(importlib.import_module(module), cls)
