"""Test doubles: a Source fed from a list of intervals (no kernel, no files)."""

from __future__ import annotations

import time

from iolens.collector.capture import CaptureMeta
from iolens.collector.sources import Interval


class FakeSource:
    """Yields the given intervals, one per `next_interval` call (optionally paced)."""

    def __init__(self, intervals: list[Interval], meta: CaptureMeta | None = None,
                 delay: float = 0.0, hold_open: bool = False) -> None:
        self.intervals = list(intervals)
        self.meta = meta or CaptureMeta(iolens_version="test", host="testhost",
                                        probes_attached=["syscalls"],
                                        probes_skipped={"block": "test: hook unavailable"})
        self.delay = delay
        self.hold_open = hold_open  # stay unfinished after the last interval (like live)
        self._i = 0
        self.closed = False

    def next_interval(self, timeout: float) -> Interval | None:
        if self._i >= len(self.intervals):
            time.sleep(min(timeout, 0.01))
            return None
        if self.delay:
            time.sleep(self.delay)
        iv = self.intervals[self._i]
        self._i += 1
        return iv

    @property
    def finished(self) -> bool:
        return self.closed or (not self.hold_open and self._i >= len(self.intervals))

    def close(self) -> None:
        self.closed = True
