"""Drained keys -> io rows (pure tier): grains, merges and what stays apart."""

from __future__ import annotations

import numpy as np
from iolens.collector.classify import FileClassifier
from iolens.collector.enrich import ProcInfo, Resolver
from iolens.collector.iotable import build
from iolens.probes import wire

U = wire.ID_UNIQUE


def keys_and_totals(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    keys = np.zeros(len(rows), dtype=wire.AGG_KEY)
    tot = np.zeros(len(rows), dtype=wire.AGG_VAL)
    for i, r in enumerate(rows):
        for k in ("id", "tgid", "tid", "fd", "sys", "grain"):
            keys[i][k] = r.get(k, 0)
        tot[i]["count"] = r["count"]
        tot[i]["bytes"] = r.get("bytes", 0)
        tot[i]["lat_sum"] = r.get("lat", 0)
        tot[i]["lat_max"] = r.get("lat", 0)
        tot[i]["lat_hist"][3] = r["count"]
    return keys, tot


def resolver() -> Resolver:
    r = Resolver(proc_root="/nonexistent", boot_offset_ns=0)
    r.procs[10] = ProcInfo(10, comm="python")
    r.files.update({1: "/data/a.bin", 2: "/data/a.bin", 3: "/dev/nvme0n1"})
    r.dirs[50] = "/data/train"
    r.uids[U | 7] = ("socket", "tcp:127.0.0.1:29500")
    r.fd0[(10, 9)] = ("other", None)
    return r


def test_grains_merges_and_what_stays_apart():
    read, sendto = wire.SYS_ID["read"], wire.SYS_ID["sendto"]
    keys, tot = keys_and_totals([
        # one file reached through two bases (two ids): one row
        {"id": 1, "tgid": 10, "fd": -1, "sys": read, "count": 3, "bytes": 300, "lat": 5},
        {"id": 2, "tgid": 10, "fd": -1, "sys": read, "count": 2, "bytes": 200, "lat": 9},
        {"id": 3, "tgid": 10, "fd": -1, "sys": read, "count": 1, "bytes": 4096},
        {"id": U | 7, "tgid": 10, "fd": -1, "sys": sendto, "count": 4, "bytes": 64},
        # folded: a directory row and a process row
        {"id": 50, "tgid": 10, "fd": -1, "sys": read, "grain": 1, "count": 7, "bytes": 70},
        {"id": 0, "tgid": 10, "fd": -1, "sys": read, "grain": 2, "count": 5, "bytes": 50},
        # two unresolved fds of one process stay apart by number
        {"id": 0, "tgid": 10, "fd": 9, "sys": read, "count": 1},
        {"id": 0, "tgid": 10, "fd": 11, "sys": read, "count": 1},
    ])
    r = resolver()
    r.fd0[(10, 11)] = ("other", None)
    got = build(keys, tot, 0, 1.0, "h", r, FileClassifier())
    rows = got.table.to_pylist()
    by = {(x["grain"], x["resource"], x["fd"]): x for x in rows}
    a = by[("file", "/data/a.bin", None)]
    assert (a["count"], a["bytes"], a["lat_sum_ns"], a["lat_max_ns"]) == (5, 500, 14, 9)
    assert a["lat_hist"] == [0, 0, 0, 5] and a["op"] == "read" and a["kind"] == "file"
    assert by[("file", "/dev/nvme0n1", None)]["kind"] == "device"
    sock = by[("file", "tcp:127.0.0.1:29500", None)]
    assert (sock["op"], sock["kind"]) == ("send", "socket")
    d = by[("dir", "/data/train/", None)]
    assert (d["count"], d["bytes"], d["op"]) == (7, 70, "read")
    p = by[("proc", None, None)]
    assert (p["count"], p["kind"]) == (5, "other")
    assert {x["fd"] for x in rows if x["resource"] is None and x["grain"] == "file"} == {9, 11}
    assert got.ops == 24
    # unnamed ops: the two unresolved fds' (kind other) are not counted as lost names; a
    # path id whose path never arrived is
    assert got.unresolved_ops == 0
    keys2, tot2 = keys_and_totals([{"id": 99, "tgid": 10, "fd": -1, "sys": read, "count": 6}])
    assert build(keys2, tot2, 0, 1.0, "h", r, FileClassifier()).unresolved_ops == 6
