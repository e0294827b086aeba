"""Pure tier: property-based tests (hypothesis) of every decoder and of the schema round trip.

Not repeated here (already in tests/test_schema_capture.py and tests/test_wire_enrich.py):
escape_bytes round trip on bytes, decode_event on paths and on garbage, io-table round trip.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from dataclasses import asdict

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iolens.collector import schema as S
from iolens.collector.capture import CaptureMeta, CaptureWriter, read_capture
from iolens.collector.enrich import Resolver, _hex_addr, decode_sockaddr
from iolens.collector.procinfo import parse_cgroup_path, parse_proc_cgroup
from iolens.collector.redact import Redactor
from iolens.probes import wire

# loaded CI machines: no per-example deadline, fewer examples for the slow (file) ones
SLOW = settings(deadline=None, max_examples=30,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FAST = settings(deadline=None, max_examples=200)


# --- schema round trip: every table, every column type ------------------------------------------

def _values(f: pa.Field) -> st.SearchStrategy:
    t = f.type
    if pa.types.is_timestamp(t):
        s = st.integers(0, 2**62)
    elif pa.types.is_int32(t):
        s = st.integers(-(2**31), 2**31 - 1)
    elif pa.types.is_int64(t):
        s = st.integers(-(2**63), 2**63 - 1)
    elif pa.types.is_integer(t):
        bits = t.bit_width
        s = st.integers(0, 2**bits - 1) if not pa.types.is_signed_integer(t) else \
            st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    elif pa.types.is_floating(t):
        s = st.floats(allow_nan=False, width=t.bit_width)
    elif pa.types.is_boolean(t):
        s = st.booleans()
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        s = st.text(max_size=40)  # any Unicode scalar: newlines, quotes, emoji, NUL
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        s = st.lists(st.integers(0, 2**62), max_size=S.LAT_BUCKETS)
    else:  # a type this test does not know yet: the schema grew; teach the test
        pytest.fail(f"no strategy for {f.name}: {t}")
    return st.one_of(st.none(), s) if f.nullable else s


@st.composite
def _table(draw, name: str) -> pa.Table:
    schema = S.TABLES[name]
    n = draw(st.integers(1, 6))
    cols = {f.name: draw(st.lists(_values(f), min_size=n, max_size=n)) for f in schema}
    return pa.table({k: pa.array(v, schema.field(k).type) for k, v in cols.items()}, schema=schema)


@pytest.mark.parametrize("name", sorted(S.TABLES))
def test_every_table_round_trips_through_writer_rotation_and_reader(tmp_path_factory, name):
    @SLOW
    @given(st.lists(_table(name), min_size=1, max_size=3), st.booleans())
    def check(parts, rotate_each):
        d = tmp_path_factory.mktemp("rt") / "cap"
        w = CaptureWriter(d, CaptureMeta(), rotate_s=0 if rotate_each else 1e9)
        for t in parts:
            w.write_tables({name: t})
        w.close()
        back = read_capture(d, tables=[name])
        assert not back.skipped and not back.unfinished
        want = pa.concat_tables(parts)
        assert back.tables[name].to_pylist() == want.to_pylist()
        assert back.meta.complete and back.meta.rows[name] == want.num_rows

    check()


@FAST
@given(st.text(max_size=20), st.dictionaries(st.text(max_size=10), st.text(max_size=30)))
def test_capture_meta_round_trips_and_ignores_unknown_keys(host, skipped):
    m = CaptureMeta(host=host, probes_skipped=skipped, command=[host, "--x"], errors=[host])
    d = json.loads(json.dumps(asdict(m)))
    d["a_field_from_the_future"] = {"x": 1}
    assert CaptureMeta.from_dict(d) == m


# --- socket addresses ------------------------------------------------------------------------

@FAST
@given(st.binary(max_size=130), st.sampled_from(["tcp", "udp"]))
def test_decode_sockaddr_never_raises_on_any_bytes(raw, proto):
    out = decode_sockaddr(raw, proto)
    assert out is None or isinstance(out, str)
    if out is not None:
        out.encode("utf-8")


@FAST
@given(st.ip_addresses(), st.integers(0, 65535))
def test_decode_sockaddr_ipv4_and_ipv6_round_trip(ip, port):
    if ip.version == 4:
        raw = struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + ip.packed + b"\0" * 8
        assert decode_sockaddr(raw) == f"tcp:{ip}:{port}"
    else:
        raw = (struct.pack("<H", socket.AF_INET6) + struct.pack(">H", port) + b"\0" * 4 +
               ip.packed + b"\0" * 4)
        got = decode_sockaddr(raw, "udp")
        if ip.ipv4_mapped:
            assert got == f"udp:{ip.ipv4_mapped}:{port}"
        else:
            assert got == f"udp:[{ip}]:{port}"


@FAST
@given(st.binary(min_size=1, max_size=107).filter(lambda b: b"\0" not in b))
def test_decode_sockaddr_unix_path_reversible(path):
    raw = struct.pack("<H", socket.AF_UNIX) + path + b"\0"
    got = decode_sockaddr(raw)
    assert got.startswith("unix:") and S.unescape_str(got[5:]) == path


@FAST
@given(st.ip_addresses(v=4), st.integers(0, 65535))
def test_proc_net_hex_address_round_trip(ip, port):
    text = f"{ip.packed[::-1].hex().upper()}:{port:04X}"  # how /proc/net/tcp writes it
    assert _hex_addr(text) == (str(ip), port)


# --- cgroup text -------------------------------------------------------------------------------

@FAST
@given(st.text(max_size=300))
def test_cgroup_parsers_never_raise(text):
    v2, v1, ident = parse_proc_cgroup(text)
    assert v2 is None or isinstance(v2, str)
    parse_cgroup_path(text)


# --- redaction ---------------------------------------------------------------------------------

_component = st.text(st.characters(blacklist_characters="/\0"), min_size=1, max_size=20)


@FAST
@given(st.lists(_component, min_size=1, max_size=8), st.binary(min_size=16, max_size=16))
def test_redacted_path_keeps_depth_and_short_extension_and_hides_every_part(parts, key):
    r = Redactor(key)
    path = "/" + "/".join(parts)
    red = r.path(path)
    out = red.split("/")[1:]
    assert len(out) == len(parts)
    for orig, h in zip(parts, out, strict=True):
        assert h.startswith("h:") and h != orig
        stem, dot, ext = orig.rpartition(".")
        if dot and stem and len(ext) <= 12:
            assert h.endswith("." + ext)
    assert r.path(path) == red                          # stable within a capture
    assert Redactor(bytes(16) if key != bytes(16) else b"\1" * 16).path(path) != red


@FAST
@given(st.sampled_from(["tcp:10.0.0.1:29500", "udp:[::1]:53", "unix:@anonymous", "pipe", ""]))
def test_redaction_keeps_peers_and_non_paths(res):
    assert Redactor().path(res) == res


@FAST
@given(st.lists(st.text(max_size=20), min_size=1, max_size=6))
def test_redacted_argv_keeps_program_name_and_count(argv):
    r = Redactor()
    out = r.argv(argv)
    assert len(out) == len(argv) and out[0] == os.path.basename(argv[0])
    assert all(a.startswith("h:") for a in out[1:])


def test_redacted_table_hashes_resource_column_only():
    t = pa.table({"resource": ["/data/x.bin", "tcp:1.2.3.4:5", None], "comm": ["a", "b", "c"]})
    out = Redactor(b"k" * 16).table(t)
    got = out["resource"].to_pylist()
    assert got[0].startswith("/h:") and got[0].endswith(".bin")
    assert got[1:] == t["resource"].to_pylist()[1:]
    assert out["comm"] == t["comm"] and out.schema == t.schema


# --- fd resolution through dup ------------------------------------------------------------------

def _ev(**kw) -> bytes:
    h = wire.EventHeader()
    path = kw.pop("path", b"")
    for k, v in kw.items():
        setattr(h, k, v)
    h.path_len = len(path) + 1 if path else 0
    return bytes(h) + path + (b"\0" if path else b"")


@FAST
@given(st.integers(3, 1000), st.integers(0, 1000), st.integers(1, 2**48))
def test_dup_then_close_of_the_original_keeps_the_file(oldfd, newfd, seq):
    """An evented fd (unique id) duplicated, then the original closed: the copy still names
    the file after the retire delay."""
    if oldfd == newfd:
        return
    uid = wire.ID_UNIQUE | seq
    r = Resolver(proc_root="/nonexistent", boot_offset_ns=0)
    ev = lambda **kw: wire.decode_event(_ev(tgid=77, tid=77, comm=b"dd", **kw))  # noqa: E731
    r.on_event(ev(type=1, sys=wire.SYS_ID["openat"], fd=oldfd, fd2=-100, id=uid, path=b"/d/f"))
    r.on_event(ev(type=6, sys=wire.SYS_ID["dup2"], fd=newfd, fd2=oldfd, id=uid))
    r.on_event(ev(type=2, sys=wire.SYS_ID["close"], fd=oldfd, id=uid))
    r.after_drain()
    r.after_drain()
    assert r.resource(77, newfd, uid) == ("file", "/d/f")


# --- /proc/net tables and per-CPU histograms ---------------------------------------------------

_hexish = st.text("0123456789ABCDEFabcdef:xZ ", max_size=40)


@SLOW
@given(st.lists(st.lists(_hexish, min_size=0, max_size=14).map(" ".join), max_size=8))
def test_read_proc_net_never_raises_on_damaged_lines(tmp_path_factory, lines):
    from iolens.collector.enrich import read_proc_net

    root = tmp_path_factory.mktemp("proc")
    (root / "net").mkdir()
    hdr = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
           "  timeout inode\n")
    for name in ("tcp", "tcp6", "udp", "udp6"):
        (root / "net" / name).write_text(hdr + "\n".join(lines) + "\n")
    out = read_proc_net(str(root))
    assert all(isinstance(k, int) and isinstance(v, str) for k, v in out.items())


@FAST
@given(st.lists(st.lists(st.integers(0, 2**40), min_size=S.LAT_BUCKETS, max_size=S.LAT_BUCKETS),
                min_size=1, max_size=20))
def test_trimmed_histograms_pad_back_to_the_kernel_rows(rows):
    import numpy as np

    from iolens.collector.iotable import _trimmed_lists

    hist = np.array(rows, dtype=np.uint64)
    got = _trimmed_lists(hist).to_pylist()
    for orig, t in zip(rows, got, strict=True):
        assert t + [0] * (len(orig) - len(t)) == orig
        assert not t or t[-1] != 0
