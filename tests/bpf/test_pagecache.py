"""Real BPF, as root: page-cache misses, readahead, dirtied pages and mmap page-fault I/O.

`iolens record -- python wl_pagecache.py` on files of known size, each evicted from the page
cache first. The capture is read with plain pyarrow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

pytestmark = pytest.mark.bpf
HERE = Path(__file__).resolve().parent
IOLENS = [sys.executable, "-m", "iolens.collector.cli"]


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    base = tmp_path_factory.mktemp("pagecache")
    out, truth = base / "cap", base / "truth.json"
    work = HERE / f".work-pagecache-{base.name}"  # on a disk (tmpfs has no page-cache misses)
    proc = subprocess.run([*IOLENS, "record", "-q", "-o", str(out), "--", sys.executable,
                           str(HERE / "wl_pagecache.py"), str(work), str(truth)],
                          capture_output=True, text=True, timeout=180)
    subprocess.run(["rm", "-rf", str(work)], check=False)
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((out / "capture.json").read_text())
    tables = {t: ds.dataset(str(out / t), format="parquet").to_table()
              for t in ("pagecache", "faults", "procs")}
    return meta, tables, json.loads(truth.read_text())


def _sum(table, pid, path, col):
    t = table.filter(pc.and_(pc.equal(table["pid"], pid), pc.equal(table["resource"], path)))
    return pc.sum(t[col]).as_py() or 0


def test_probe_attached(capture):
    meta, _, _ = capture
    assert "pagecache" in meta["probes_attached"], meta["probes_skipped"]


def test_mmap_faults_bring_in_the_whole_file(capture):
    _, t, truth = capture
    faults = t["faults"]
    got = _sum(faults, truth["pid"], truth["weights"], "bytes")
    assert abs(got - truth["mmap_bytes"]) <= 0.01 * truth["mmap_bytes"], got
    assert _sum(faults, truth["pid"], truth["weights"], "pages") * truth["page"] == got
    assert _sum(faults, truth["pid"], truth["weights"], "faults") >= 1
    # time in faults: positive, and within the single-threaded touch loop that took them
    assert 0 < _sum(faults, truth["pid"], truth["weights"], "lat_sum_ns") <= truth["touch_ns"]
    # read() misses are not faults
    assert _sum(faults, truth["pid"], truth["data"], "bytes") == 0


def test_mmap_faults_of_several_threads_add_up(capture):
    _, t, truth = capture
    got = _sum(t["faults"], truth["pid"], truth["shards"], "bytes")
    assert abs(got - truth["shards_bytes"]) <= 0.01 * truth["shards_bytes"], got


def test_read_misses_and_readahead(capture):
    _, t, truth = capture
    pcache = t["pagecache"]
    pages = truth["read_bytes"] // truth["page"]
    added = _sum(pcache, truth["pid"], truth["data"], "pages_added")
    assert abs(added - pages) <= 0.01 * pages, added
    assert _sum(pcache, truth["pid"], truth["data"], "readahead_pages") >= pages // 2
    mpages = truth["mmap_bytes"] // truth["page"]
    added = _sum(pcache, truth["pid"], truth["weights"], "pages_added")
    assert abs(added - mpages) <= 0.01 * mpages, added


def test_write_dirties_pages_without_counting_misses(capture):
    _, t, truth = capture
    pcache = t["pagecache"]
    pages = truth["write_bytes"] // truth["page"]
    dirtied = _sum(pcache, truth["pid"], truth["out"], "dirtied_pages")
    assert abs(dirtied - pages) <= 0.01 * pages, dirtied
    assert _sum(pcache, truth["pid"], truth["out"], "pages_added") <= 0.01 * pages
    rows = pcache.filter(pc.equal(pcache["resource"], truth["out"]))
    assert set(rows["dev"].to_pylist()) == {rows["dev"][0].as_py()} and rows["ino"][0].as_py() > 0
    assert rows["size_bytes"][0].as_py() == truth["write_bytes"]


def test_only_traced_processes_have_rows(capture):
    _, t, _ = capture
    traced = set(t["procs"]["pid"].to_pylist())
    for name in ("pagecache", "faults"):
        assert set(t[name]["pid"].to_pylist()) <= traced, name


@pytest.fixture(scope="module")
def throttled(tmp_path_factory):
    """A writer on a loop-device filesystem whose bdi allows 1 MiB of dirty data."""
    from tests.bpf.loopdev import throttled_fs

    base = tmp_path_factory.mktemp("throttle")
    out, truth = base / "cap", base / "truth.json"
    with throttled_fs() as (mnt, majmin):
        proc = subprocess.run([*IOLENS, "record", "-q", "-o", str(out), "--", sys.executable,
                               str(HERE / "wl_throttle.py"), f"{mnt}/ckpt.bin", "48", str(truth)],
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    tables = {t: ds.dataset(str(out / t), format="parquet").to_table()
              for t in ("pagecache", "block")}
    return tables, json.loads(truth.read_text()), majmin


def test_dirty_throttling_is_charged_to_the_writer_and_file(throttled):
    t, truth, majmin = throttled
    pcache = t["pagecache"]
    rows = pcache.filter(pc.and_(pc.equal(pcache["pid"], truth["pid"]),
                                 pc.equal(pcache["resource"], truth["path"])))
    assert rows.num_rows > 0, pcache.to_pylist()
    assert set(rows["dev"].to_pylist()) == {majmin}
    throttle = pc.sum(rows["throttle_ns"]).as_py()
    assert 0 < throttle <= truth["write_ns"], (throttle, truth["write_ns"])
    pages = truth["bytes"] // 4096
    assert abs(pc.sum(rows["dirtied_pages"]).as_py() - pages) <= 0.01 * pages


def test_loop_device_has_its_own_block_rows(throttled):
    t, truth, majmin = throttled
    block = t["block"]
    rows = block.filter(pc.and_(pc.equal(block["dev"], majmin), pc.equal(block["op"], "write")))
    assert set(rows["device"].to_pylist()) == {f"loop{majmin.split(':')[1]}"}
    assert pc.sum(rows["bytes"]).as_py() >= truth["bytes"]


def test_inode_paths_from_proc_maps_and_fds(tmp_path):
    """(kernel dev, ino) -> path through /proc/PID/maps and /proc/PID/fd, no resolver."""
    import mmap
    import os

    from iolens.probes._optional import kdev_to_st_dev
    from iolens.probes.pagecache import InodePaths, st_dev_to_kdev

    mapped, opened = tmp_path / "mapped.bin", tmp_path / "opened.bin"
    mapped.write_bytes(b"m" * 8192)
    opened.write_bytes(b"o")
    with open(mapped, "rb") as f, open(opened, "rb"):
        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        try:
            paths = InodePaths()
            for p in (mapped, opened):
                st = os.stat(p)
                kdev = st_dev_to_kdev(st.st_dev)
                assert kdev_to_st_dev(kdev) == st.st_dev
                assert paths.lookup(os.getpid(), st.st_dev, st.st_ino)[0] == str(p)
                # dev-less lookup (dirtied folios name the bdi, not the filesystem)
                assert paths.lookup(os.getpid(), None, st.st_ino) == (str(p), st.st_dev)
        finally:
            m.close()
