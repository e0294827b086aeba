"""Real BPF: the C structs of events.h, as compiled by BCC, match probes/wire.py."""

from __future__ import annotations

import ctypes as ct

import pytest

from iolens.probes import wire
from iolens.probes.syscalls import HERE

pytestmark = pytest.mark.bpf


def test_events_h_matches_python_mirror():
    from iolens.probes._bcc import Program

    text = ('#include "events.h"\n'
            "BPF_HASH(k, struct agg_key, struct agg_val, 1);\n"
            "BPF_HASH(e, u32, struct event, 1);\n"
            "BPF_HASH(n, u64, struct newfile, 1);\n"
            "TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return 0; }\n")
    prog = Program(text, [], str(HERE))
    try:
        key, val = prog.bpf[b"k"].Key, prog.bpf[b"k"].Leaf
        ev = prog.bpf[b"e"].Leaf
        assert ct.sizeof(key) == wire.AGG_KEY.itemsize
        assert ct.sizeof(val) == wire.AGG_VAL.itemsize
        for name in wire.AGG_KEY.names:
            assert getattr(key, name).offset == wire.AGG_KEY.fields[name][1], name
        nf = prog.bpf[b"n"].Leaf
        assert ct.sizeof(nf) == wire.NEWFILE.itemsize
        for name in wire.NEWFILE.names:
            assert getattr(nf, name).offset == wire.NEWFILE.fields[name][1], name
        for name in wire.AGG_VAL.names:
            assert getattr(val, name).offset == wire.AGG_VAL.fields[name][1], name
        for name, *_ in wire.EventHeader._fields_:
            assert getattr(ev, name).offset == getattr(wire.EventHeader, name).offset, name
        assert ev.path.offset == wire.EVENT_HDR_SIZE
    finally:
        prog.close()
