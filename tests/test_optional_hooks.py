"""Degrade, don't die, inside a probe: an optional hook the kernel lacks is recorded (pure tier)."""

from __future__ import annotations


def test_collector_records_hooks_a_loaded_probe_lacks(monkeypatch):
    """A probe built without an optional hook (tracepoint absent) is attached, and the capture
    names the hook and what is lost, instead of silently showing zeros."""
    from iolens.collector.live import Collector
    from iolens.collector.options import RecordOptions
    from iolens.probes import _optional, pagecache, registry

    class Stub:
        name = "pagecache"
        missing_hooks = pagecache.PageCacheProbe.missing_hooks

        def __init__(self, opts) -> None:
            self.cflags = None

        def start(self) -> None:  # as plan() would build it on a kernel without sched hooks
            self.cflags = ["-DMAX_KEYS=64", "-DHAVE_dirty=1", "-DHAVE_bdp=1", "-DHAVE_sync_ra=1",
                           "-DHAVE_async_ra=1", "-DHAVE_ra_order=1"]

    monkeypatch.setattr(registry, "EXTRA_PROBES", ["x:Stub"])
    monkeypatch.setattr(registry, "load_class", lambda spec: Stub)
    c = Collector(RecordOptions(), [])
    c._start_extra()
    assert c.meta.probes_attached[-1] == "pagecache"
    assert set(c.meta.probes_skipped) == {"pagecache:sched"}
    assert "fault time" in c.meta.probes_skipped["pagecache:sched"]
    # the helper itself: absent flags are missing, present ones are not
    assert _optional.missing_hooks(["-DHAVE_a=1"], {"a": "x", "b": "y"}) == {"b": "y"}
    assert _optional.missing_hooks(None, {"a": "x"}) == {"a": "x"}


def test_a_missing_hook_does_not_explain_a_missing_table():
    """'no pagecache data' must name the probe's own skip reason, not one of its hooks'."""
    from types import SimpleNamespace

    from iolens.analysis.queries import Reduced

    meta = SimpleNamespace(probes_skipped={"pagecache:sched": "sched hooks missing",
                                           "syscalls:io_uring_enter": "tracepoint missing"})
    r = Reduced(engine=None, meta=meta)
    assert r.missing_reason("pagecache") == "no pagecache data: not recorded by this capture"
    assert r.missing_reason("io") == "no io data: not recorded by this capture"
    meta.probes_skipped["pagecache"] = "filemap tracepoints missing"
    assert r.missing_reason("pagecache") == "no pagecache data: filemap tracepoints missing"
