"""The record/replay seam: a `Source` yields `Interval`s; consumers never know which source.

- `LiveSource` (collector/live.py) runs the probes on one collector thread.
- `ReplaySource` (here) yields the intervals of a recorded capture, optionally paced.
- tests use `tests/fakes.py:FakeSource`.

An `Interval` holds one interval's rows of every table (pyarrow Tables of the schemas in
`collector.schema`), keyed by table name, and its bounds in wall-clock ns.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.compute as pc

from iolens.collector import schema as S
from iolens.collector.capture import Capture, CaptureMeta, read_capture


@dataclass(frozen=True)
class Interval:
    """One interval of data.

    Attributes:
        start_ns / end_ns: wall-clock bounds (ns since the epoch, UTC).
        tables: table name -> rows of that interval (missing tables mean no rows).
        health: the `health` row as a dict (lost_events, drain_ms, collector_cpu_s, ...).
    """

    start_ns: int
    end_ns: int
    tables: dict[str, pa.Table] = field(default_factory=dict)
    health: dict[str, float] = field(default_factory=dict)

    def table(self, name: str) -> pa.Table:
        """Rows of `name`, or an empty table of its schema."""
        t = self.tables.get(name)
        return t if t is not None else S.empty_table(name)

    @property
    def interval_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


@runtime_checkable
class Source(Protocol):
    """Where intervals come from."""

    meta: CaptureMeta

    def next_interval(self, timeout: float) -> Interval | None:
        """The next interval, or None if none is ready within `timeout` seconds."""

    @property
    def finished(self) -> bool:
        """True once no more intervals will come."""

    def close(self) -> None:
        """Stop and release everything (idempotent)."""


class ReplaySource:
    """Yields a recorded capture interval by interval.

    Args:
        path: capture directory.
        speed: 0 = as fast as asked; otherwise intervals are released at `speed`× real time.
    Supports `pause`, `step` and `seek` for the TUI. Skipped files are listed in `skipped`.
    """

    def __init__(self, path: str, speed: float = 0.0, capture: Capture | None = None) -> None:
        self.capture = capture or read_capture(path)
        self.meta = self.capture.meta or CaptureMeta()
        self.skipped = self.capture.skipped
        self.speed = speed
        self.paused = False
        self._starts = self._interval_starts()
        self._pos = 0
        self._last_release = 0.0
        self._closed = False

    def _interval_starts(self) -> list[int]:
        starts: set[int] = set()
        for name in ("health", "io"):
            t = self.capture.tables.get(name)
            if t is not None and t.num_rows:
                starts.update(v.value for v in pc.unique(t.column("ts")))
        return sorted(starts)

    @property
    def position(self) -> tuple[int, int]:
        """(intervals already yielded, total intervals)."""
        return self._pos, len(self._starts)

    def seek(self, index: int) -> None:
        """Jump so the next interval yielded is number `index` (clamped)."""
        self._pos = max(0, min(index, len(self._starts)))

    def interval_at(self, index: int) -> Interval:
        """The interval number `index` of the capture."""
        start = self._starts[index]
        end = self._starts[index + 1] if index + 1 < len(self._starts) else None
        tables: dict[str, pa.Table] = {}
        health: dict[str, float] = {}
        for name, t in self.capture.tables.items():
            if t.num_rows == 0:
                continue
            ts = t.column("ts").cast(pa.int64())
            if name in ("io", "health"):
                mask = pc.equal(ts, start)
            else:  # events and process observations fall inside the interval's bounds
                mask = pc.greater_equal(ts, start)
                if end is not None:
                    mask = pc.and_(mask, pc.less(ts, end))
            sub = t.filter(mask)
            if sub.num_rows:
                tables[name] = sub
        h = tables.get("health")
        if h is not None and h.num_rows:
            health = {k: v[0] for k, v in h.slice(0, 1).to_pydict().items() if k != "ts"}
        length = health.get("interval_s") or self._interval_len(tables)
        return Interval(start, start + int(float(length) * 1e9), tables, health)

    def _interval_len(self, tables: dict[str, pa.Table]) -> float:
        io = tables.get("io")
        if io is not None and io.num_rows:
            return float(io.column("interval_s")[0].as_py())
        return self.meta.interval_s

    def __iter__(self) -> Iterator[Interval]:
        while self._pos < len(self._starts):
            yield self.interval_at(self._pos)
            self._pos += 1

    def step(self) -> Interval | None:
        """The next interval regardless of pause and pacing."""
        if self._pos >= len(self._starts):
            return None
        iv = self.interval_at(self._pos)
        self._pos += 1
        return iv

    def next_interval(self, timeout: float) -> Interval | None:
        if self.paused or self._pos >= len(self._starts):
            time.sleep(min(timeout, 0.05))
            return None
        if self.speed > 0:
            due = self._last_release + self.meta.interval_s / self.speed
            wait = due - time.monotonic()
            if wait > timeout:
                time.sleep(timeout)
                return None
            if wait > 0:
                time.sleep(wait)
            self._last_release = time.monotonic()
        return self.step()

    @property
    def finished(self) -> bool:
        return self._closed or self._pos >= len(self._starts)

    def close(self) -> None:
        self._closed = True
