"""collector/fdstats.py: open fds and the soft fd limit per process (the `fds` table)."""

from __future__ import annotations

import os
import resource

from iolens.collector import fdstats
from iolens.collector import schema as S


def _fake_proc(root, pid: int, fds: int, limit: str) -> None:
    d = root / str(pid) / "fd"
    d.mkdir(parents=True)
    for i in range(fds):
        (d / str(i)).touch()
    (root / str(pid) / "limits").write_text(
        "Limit                     Soft Limit           Hard Limit           Units\n"
        "Max cpu time              unlimited            unlimited            seconds\n"
        f"Max open files            {limit}                 4096                 files\n")


def test_fake_proc_rows_and_cached_limits(tmp_path):
    _fake_proc(tmp_path, 10, 5, "1024")
    _fake_proc(tmp_path, 11, 2, "unlimited")
    st = fdstats.FdStats(str(tmp_path))
    t = st.table({10: None, 11: None, 12: None}, 7, 1.0, "h")  # 12: gone, no row
    assert t.schema == S.FDS
    assert t.to_pydict()["open_fds"] == [5, 2] and t.to_pydict()["fd_limit"] == [1024, None]
    (tmp_path / "10" / "limits").write_text("Max open files 9 9 files\n")
    assert st.limit(10) == 1024  # cached: read once per process
    st.sample([11])  # 10 no longer traced: its cached limit is forgotten
    assert st.limit(10) == 9


def test_real_process_matches_proc_and_getrlimit():
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = fdstats.count_fds(os.getpid())
    assert n is not None and abs(n - len(os.listdir("/proc/self/fd"))) <= 1
    assert fdstats.read_limit(os.getpid()) == (None if soft == resource.RLIM_INFINITY else soft)
    assert fdstats.count_fds(2**22 + 1) is None and fdstats.read_limit(2**22 + 1) is None
