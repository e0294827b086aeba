"""Real BPF, as root: nothing gets in (issue 7).

- no user string reaches the BPF C text: every option is tried with injection-looking values;
- captures are 0600 files in a 0700 directory; planted symlinks are never followed; a capture
  directory of another user, an existing one, a symlink are refused and left as they were;
- `analyze` / `top --replay` work without root, `record` / `top` live refuse clearly;
- `--redact` end to end: paths and arguments hashed, depth/extension kept, peers kept;
- odd bytes in paths (newline, tab, quotes, backslash, non-UTF-8, ~4,000 bytes) are recorded
  exactly, reversibly escaped as docs/schema.md says.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from iolens.collector.schema import unescape_str
from tests.bpf._rel import (ENV, IOLENS, ROOT, complete_parts, meta, one_line_error, read_table,
                            wait_for, workload)

pytestmark = pytest.mark.bpf
MARK = "IOLENSINJECT"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _record(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([*IOLENS, "record", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV, cwd=ROOT)


# --- injection ----------------------------------------------------------------------------------

def test_print_bpf_holds_only_validated_integer_flags_and_the_source_file(tmp_path):
    evil = f'{MARK}"); }} int x(void) {{ bpf_trace_printk("pwned"); /*'
    cg = tmp_path / f"{MARK}\";#define"
    cg.mkdir()
    proc = _record("--print-bpf", "--disable", evil, "--cgroup", str(cg), "--slow-ms", "0.5",
                   "--max-keys", "100", "--per-thread", "--no-latency", "--",
                   "/bin/echo", evil, "-D" + MARK + "=1")
    assert proc.returncode == 0, proc.stderr
    assert MARK not in proc.stdout
    flags = [ln for ln in proc.stdout.splitlines() if ln.startswith("// cflag ")]
    flag_re = re.compile(r"// cflag -D[A-Za-z][A-Za-z0-9_]*=-?\d+")
    assert flags and all(flag_re.fullmatch(f) for f in flags), flags
    source = (ROOT / "probes" / "syscalls.bpf.c").read_text()
    assert source in proc.stdout  # the C text is the file, unchanged
    assert "// cflag -DSLOW_NS=500000" in flags and "// cflag -DMAX_KEYS=100" in flags


@pytest.mark.parametrize("args", [
    ["-p", "1); evil(", "-d", "1"],
    ["-p", "-1", "-d", "1"],
    ["-p", "0", "-d", "1"],
    ["-p", str(2**31), "-d", "1"],
    ["-d", "1; rm -rf /"],
    ["-d", "nan"],
    ["-d", "inf"],
    ["-d", "-5"],
    ["-d", "1", "-i", "1e-9"],
    ["-d", "1", "-i", "nan"],
    ["-d", "1", "--slow-ms", "1 -DX=1"],
    ["-d", "1", "--slow-ms", "inf"],
    ["-d", "1", "--slow-ms", "-1"],
    ["-d", "1", "--max-keys", "64) + (1"],
    ["-d", "1", "--max-keys", "99999999999"],
    ["-d", "1", "--max-keys", "1"],
    ["-d", "1", "--rotate", "0"],
    ["-d", "1", "--rotate-mb", "nan"],
    ["-d", "1", "--cgroup", f'/sys/fs/cgroup/{MARK}"; #include </etc/shadow>'],
    ["-d", "1", "--layout", "../../etc"],
], ids=lambda a: " ".join(a)[:40])
def test_bad_or_injecting_option_values_refused_before_anything(tmp_path, args):
    out = tmp_path / "cap"
    proc = _record("-q", "-o", str(out), *args, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert one_line_error(proc.stderr).startswith("iolens record:")
    assert not out.exists()  # nothing created, nothing compiled


# --- files, directories, symlinks, owners -------------------------------------------------------

def test_capture_private_and_planted_symlinks_never_followed(tmp_path):
    cap, victim = tmp_path / "cap", tmp_path / "victim"
    victim.write_text("precious")
    rec = subprocess.Popen([*IOLENS, "record", "-q", "-o", str(cap), "-i", "0.2", "--rotate", "0.5",
                            "--", *workload("busy_io.py", tmp_path / "work", 12)],
                           stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        wait_for(lambda: len(complete_parts(cap, "io")) >= 1, 120, "first rotation", rec)
        assert stat.S_IMODE(cap.stat().st_mode) == 0o700
        for p in cap.rglob("*"):
            want = 0o700 if p.is_dir() else 0o600
            assert stat.S_IMODE(p.lstat().st_mode) == want, p
        # an attacker with write access to the directory plants the next segments' names
        # (write-ahead streams, commit logs and compaction files)
        for n in range(0, 200):
            for name in (f"io/part-{n:06d}.arrows", f"io/part-{n:06d}.parquet.tmp",
                         f"part-{n:06d}.commit"):
                try:
                    os.symlink(victim, cap / name)
                except FileExistsError:
                    pass
        _, err = rec.communicate(timeout=120)
    finally:
        if rec.poll() is None:
            rec.kill()
    assert rec.returncode == 74, err
    line = one_line_error(err)
    assert "stopped writing" in line and "intact" in line
    assert victim.read_text() == "precious"
    assert not [p for p in cap.rglob("*.parquet") if p.is_symlink()]
    assert read_table(cap, "io").num_rows > 0  # what was written before is whole


def test_symlinked_table_directory_is_refused(tmp_path):
    # a symlink planted where a table directory will be created: writes never go through it
    from iolens.collector.capture import CaptureError, CaptureMeta, CaptureWriter
    from tests import factories as F

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    w = CaptureWriter(tmp_path / "cap", CaptureMeta())
    os.symlink(elsewhere, tmp_path / "cap" / "io")
    with pytest.raises(CaptureError, match="not a plain directory"):
        w.write_tables(F.interval([F.io_row()]).tables)
    assert not list(elsewhere.iterdir())


@pytest.mark.parametrize("case", ["exists", "symlink", "other-owner", "unwritable", "no-parent"])
def test_output_directory_refused_one_line_nothing_touched(tmp_path, case):
    out = tmp_path / "cap"
    if case == "exists":
        out.mkdir()
        (out / "capture.json").write_text("keep me")
    elif case == "symlink":
        (tmp_path / "real").mkdir()
        out.symlink_to(tmp_path / "real")
    elif case == "other-owner":
        out.mkdir(mode=0o755)
        os.chown(out, 65534, 65534)
    elif case == "unwritable":
        ro = tmp_path / "ro"
        ro.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], check=True)
        out = ro / "cap"
    else:
        out = tmp_path / "missing" / "cap"
    try:
        proc = _record("-q", "-o", str(out), "-d", "1", timeout=60)
    finally:
        if case == "unwritable":
            subprocess.run(["umount", "-l", str(tmp_path / "ro")], check=False)
    assert proc.returncode == 2, proc.stderr
    line = one_line_error(proc.stderr)
    assert line.startswith("iolens record:") and str(out.parent.name) in line
    if case == "exists":
        assert (out / "capture.json").read_text() == "keep me"
        assert [p.name for p in out.iterdir()] == ["capture.json"]
    elif case == "symlink":
        assert not list((tmp_path / "real").iterdir())
    elif case == "other-owner":
        assert out.stat().st_uid == 65534 and not list(out.iterdir())


# --- privileges ----------------------------------------------------------------------------------

@pytest.fixture
def public_tmp():
    """A directory user nobody can reach (pytest's tmp_path lives under a 0700 directory)."""
    d = Path(tempfile.mkdtemp(prefix="iolens-nobody-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_analyze_and_replay_need_no_root_record_and_live_top_refuse(public_tmp):
    tmp_path = public_tmp
    cap = tmp_path / "cap"
    shutil.copytree(ROOT / "tests" / "data" / "small_capture", cap)
    for p in [cap, *cap.rglob("*")]:
        os.chown(p, 65534, 65534)
    env = {**ENV, "HOME": str(tmp_path), "COLUMNS": "200"}
    ana = subprocess.run([*NOBODY, *IOLENS, "analyze", "--json", str(cap)], capture_output=True,
                         text=True, timeout=300, env=env, cwd="/")
    assert ana.returncode == 0, ana.stderr
    assert json.loads(ana.stdout)
    replay = ("import sys, argparse\n"
              "from iolens.tui import cli\n"
              "p = argparse.ArgumentParser(); cli.add_arguments(p)\n"
              "a = p.parse_args(['--replay', sys.argv[1], '--speed', '0'])\n"
              "class App:\n"
              "    def __init__(self, src): self.source = src\n"
              "    def run(self):\n"
              "        n = 0\n"
              "        while self.source.next_interval(0.01) is not None: n += 1\n"
              "        print('intervals', n); return 0\n"
              "sys.exit(cli.run(a, app_factory=App))\n")
    rep = subprocess.run([*NOBODY, sys.executable, "-c", replay, str(cap)], capture_output=True,
                         text=True, timeout=120, env=env, cwd="/")
    assert rep.returncode == 0, rep.stderr
    assert int(rep.stdout.split()[-1]) > 0
    # a capture of root's stays private: a plain "permission denied", not a misleading message
    mine = tmp_path / "private"
    shutil.copytree(ROOT / "tests" / "data" / "small_capture", mine)
    mine.chmod(0o700)
    for cmd in (["analyze", str(mine)], ["top", "--replay", str(mine)]):
        r = subprocess.run([*NOBODY, *IOLENS, *cmd], capture_output=True, text=True, timeout=120,
                           env=env, cwd="/", stdin=subprocess.DEVNULL)
        assert r.returncode != 0
        assert "permission denied" in one_line_error(r.stderr).lower()
    # live tracing refuses, before any screen opens
    for cmd, code in ((["record", "-o", str(tmp_path / "x"), "-d", "1"], 77),
                      (["top", "--", "true"], 77)):
        r = subprocess.run([*NOBODY, *IOLENS, *cmd], capture_output=True, text=True, timeout=60,
                           env=env, cwd="/", stdin=subprocess.DEVNULL)
        assert r.returncode != 0 and (code is None or r.returncode == code), r.stderr
        assert "cannot trace" in one_line_error(r.stderr)


# --- --redact ------------------------------------------------------------------------------------

def _strings(t: pa.Table) -> list[str]:
    out = []
    for name in t.column_names:
        col = t.column(name)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            out += [v for v in col.to_pylist() if v]
    return out


def test_redact_hashes_paths_and_arguments_keeps_shape_and_peers(tmp_path):
    cap, truth_path = tmp_path / "cap", tmp_path / "truth.json"
    work = tmp_path / "secretwork"
    proc = _record("-q", "--redact", "-o", str(cap), "--",
                   *workload("redact_io.py", work, truth_path, "--token=secret-arg"))
    assert proc.returncode == 0, proc.stderr
    truth = json.loads(truth_path.read_text())
    tables = {t.name: read_table(cap, t.name) for t in cap.iterdir() if t.is_dir()}
    everything = [s for t in tables.values() for s in _strings(t)]
    everything.append((cap / "capture.json").read_text())
    leaks = [s for s in everything if "secret" in s]
    assert not leaks, leaks[:5]
    m = meta(cap)
    assert m["redacted"] is True
    assert m["command"][0] == os.path.basename(sys.executable)
    assert all(a.startswith("h:") for a in m["command"][1:])
    io = tables["io"]
    mine = io.filter(pc.equal(io["pid"], truth["pid"]))
    files = {r for r in mine.filter(pc.equal(mine["kind"], "file"))["resource"].to_pylist() if r}
    depth = truth["path"].count("/")
    shaped = [r for r in files if r.count("/") == depth and r.endswith(".bin")]
    assert shaped, files
    assert all(part.startswith("h:") for part in shaped[0].split("/")[1:])
    # the write and the read of that file are still there, under its hashed name
    rows = mine.filter(pc.equal(mine["resource"], shaped[0]))
    sums = {op: pc.sum(rows.filter(pc.equal(rows["op"], op))["bytes"]).as_py()
            for op in ("write", "read")}
    assert sums == {"write": 1000, "read": 1000}, sums
    # peers are what network findings are about: kept
    peers = set(mine.filter(pc.equal(mine["kind"], "socket"))["resource"].to_pylist())
    assert f"tcp:127.0.0.1:{truth['port']}" in peers
    procs = tables["procs"]
    cmd = procs.filter(pc.equal(procs["pid"], truth["pid"]))["cmdline"].to_pylist()
    assert cmd and all(" h:" in c for c in cmd if c)


# --- odd bytes in paths -------------------------------------------------------------------------

def test_odd_and_long_paths_recorded_exactly(tmp_path):
    cap, truth_path = tmp_path / "cap", tmp_path / "truth.json"
    evil_args = ['"); } #include </etc/shadow>', "$(id)", "\\x41\n\t"]
    proc = _record("-q", "-o", str(cap), "--",
                   *workload("odd_paths.py", tmp_path / "odd", truth_path, *evil_args))
    assert proc.returncode == 0, proc.stderr
    truth = json.loads(truth_path.read_text())
    io = read_table(cap, "io")
    w = io.filter(pc.and_(pc.equal(io["pid"], truth["pid"]), pc.equal(io["op"], "write")))
    got: dict[bytes, int] = {}
    for res, b in zip(w["resource"].to_pylist(), w["bytes"].to_pylist(), strict=True):
        if res:
            raw = unescape_str(res)
            got[raw] = got.get(raw, 0) + b
    for f in truth["files"]:
        path = bytes.fromhex(f["path_hex"])
        assert got.get(path) == f["bytes"], (path[:80], sorted(got)[:3])
    # stored text is valid UTF-8 and a plain-text reader sees the newline/tab/quotes as they are
    assert any("\n" in r for r in w["resource"].to_pylist() if r)
    assert any("\\xff\\xfe" in r for r in w["resource"].to_pylist() if r)
    assert max(len(r) for r in w["resource"].to_pylist() if r) >= 3900
    procs = read_table(cap, "procs")
    cmd = procs.filter(pc.equal(procs["pid"], truth["pid"]))["cmdline"].to_pylist()
    assert any('"); } #include </etc/shadow>' in c for c in cmd if c), cmd
