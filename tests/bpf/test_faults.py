"""Real BPF, as root: faults during a capture (issue 7).

Each test runs the real `iolens record` in a subprocess and checks the capture with plain
pyarrow: kill -9 mid-capture, stop signals, output disk full, a fork/exec/pid-reuse storm with
10,000 open files, aggregation-map overflow, a sustained maximal syscall rate, and probes the
kernel refuses. See docs/reliability.md for what each promise is.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.bpf._rel import (ENV, IOLENS, ROOT, bpf_objects, bpftool, complete_parts,
                            live_map_ids, live_prog_ids, meta, read_table, wait_for, workload)

pytestmark = pytest.mark.bpf


def _sum(t, col: str) -> int:
    return pc.sum(t[col]).as_py() or 0


def _assert_every_file_complete(cap: Path) -> None:
    """Every `*.parquet` is a whole Parquet file (footer and all); only `.tmp` may be partial.
    Write-ahead leftovers (`.arrows`, `.commit`) are allowed: readers recover them."""
    for p in cap.rglob("*.parquet"):
        pq.read_table(p)  # raises on a half-written file
    for p in cap.rglob("*"):
        assert p.suffix in ("", ".parquet", ".json", ".tmp", ".arrows", ".commit"), p


def _committed(cap: Path) -> int:
    """Intervals the open segment's commit log holds right now (0 when none is open)."""
    from iolens.collector import wal as W

    n = 0
    for log in cap.glob("part-*.commit"):
        try:
            _header, records = W.read_commits(log)
        except OSError:  # compacted and removed meanwhile
            continue
        n = max([n] + [r.get("n", 0) for r in records])
    return n


# --- kill -9 ----------------------------------------------------------------------------------

def test_kill_9_loses_at_most_the_interval_in_progress_and_leaves_nothing_attached(tmp_path):
    """SIGKILL about 5 s into a 0.5 s-interval capture, before its first rotation (30 s),
    which used to lose everything: every interval committed before the kill is read by
    `iolens analyze`, which says the capture ended abruptly and how many intervals it
    recovered; nothing stays attached. Kills during rotations and compactions:
    tests/reliability/test_crash_recovery.py; the same at 26 s: benchmarks/crash_kill.py."""
    cap = tmp_path / "cap"
    rec = subprocess.Popen([*IOLENS, "record", "-q", "-o", str(cap), "-i", "0.5",
                            "--", *workload("busy_io.py", tmp_path / "work", 300)],
                           stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True)
    child = None
    try:
        wait_for(lambda: list(cap.glob("part-*.commit")), 120, "the first interval", rec)
        time.sleep(5)
        progs, maps = bpf_objects(rec.pid)
        assert progs and maps, "the collector holds no BPF programs while tracing?"
        assert progs <= live_prog_ids()
        kids = Path(f"/proc/{rec.pid}/task/{rec.pid}/children").read_text().split()
        child = int(kids[0]) if kids else None
        m0 = meta(cap)
        # compacted segments (capture.json counts them) + the open one's commit lines: a
        # lower bound of what was committed when the kill came
        committed = m0["intervals"] + _committed(cap)
        rec.send_signal(signal.SIGKILL)
        sent_ns = time.time_ns()  # the collector runs no more user code after this
        rec.wait(timeout=30)
    finally:
        if rec.poll() is None:
            rec.kill()
        if child:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert rec.returncode == -signal.SIGKILL
    # nothing left attached: the programs and maps died with the process
    deadline = time.monotonic() + 10
    while (progs & live_prog_ids() or maps & live_map_ids()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not progs & live_prog_ids(), "BPF programs outlived the collector"
    assert not maps & live_map_ids(), "BPF maps outlived the collector"
    _assert_every_file_complete(cap)

    # the analysis reads everything committed, says so, and compacts the open segment
    out = subprocess.run([*IOLENS, "analyze", "--json", str(cap)], capture_output=True,
                         text=True, timeout=300, env=ENV)
    assert out.returncode == 0, out.stderr
    health = json.loads(out.stdout)["health"]
    assert health["ended_abruptly"] and health["recovered_intervals"] == health["intervals"]
    assert any("ended abruptly" in n and "recovered" in n for n in health["notes"])
    assert not list(cap.rglob("*.arrows")) and not list(cap.rglob("*.commit"))
    _assert_every_file_complete(cap)
    m = meta(cap)
    assert m["complete"] is False and m["recovered_intervals"] == health["recovered_intervals"]
    health_rows = read_table(cap, "health")  # plain pyarrow now: all of it is Parquet
    assert health_rows.num_rows == health["intervals"] >= max(committed, 1)
    ts = health_rows["ts"].to_pylist()
    assert len(ts) == len(set(ts)), "an interval appears twice"
    assert _sum(read_table(cap, "io"), "count") > 0
    # the intervals kept follow each other in order and all ended before the kill (how much
    # time the interval in progress held is measured by benchmarks/fault_timings.py)
    starts = [t.value for t in health_rows["ts"]]
    ends = [t + round(x * 1e9) for t, x in zip(starts, health_rows["interval_s"].to_pylist())]
    order = sorted(range(len(starts)), key=starts.__getitem__)
    assert all(ends[a] <= starts[b] + 1000 for a, b in zip(order, order[1:]))  # ns rounding
    assert max(ends) <= sent_ns
    # the terminal report says so too
    out = subprocess.run([*IOLENS, "analyze", str(cap)], capture_output=True, text=True,
                         timeout=300, env={**ENV, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    assert "ended abruptly" in out.stdout + out.stderr


# --- stop signals -------------------------------------------------------------------------------

@pytest.mark.parametrize("sig,mode", [(signal.SIGTERM, "command"), (signal.SIGINT, "pid"),
                                      (signal.SIGHUP, "pid")],
                         ids=["TERM-cmd", "INT-pid", "HUP-pid"])
def test_stop_signal_flushes_closes_and_exits_0(tmp_path, sig, mode):
    cap, done = tmp_path / "cap", tmp_path / "done.json"
    target = None
    if mode == "pid":
        target = subprocess.Popen(workload("busy_io.py", tmp_path / "work", 300, done))
        wait_for(lambda: Path(str(done) + ".pid").exists(), 30, "workload start")
        args = ["-p", str(target.pid)]
    else:
        args = ["--", *workload("busy_io.py", tmp_path / "work", 300, done)]
    rec = subprocess.Popen([*IOLENS, "record", "-q", "-o", str(cap), "-i", "0.2", "--rotate", "1",
                            *args], stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        wait_for(lambda: len(complete_parts(cap, "io")) >= 1, 120, "first rotation", rec)
        rec.send_signal(sig)
        _, err = rec.communicate(timeout=60)
        assert rec.returncode == 0, err
        assert "Traceback" not in err
        if mode == "pid":  # the traced process is left alone
            assert target.poll() is None
        else:  # the command got the signal, finished cleanly; its exit code is record's
            assert json.loads(done.read_text())["writes"] > 0
    finally:
        for p in (rec, target):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
    m = meta(cap)
    assert m["complete"] is True and m["ended"]
    assert not list(cap.rglob("*.tmp"))
    _assert_every_file_complete(cap)
    health = read_table(cap, "health")
    assert health.num_rows == m["intervals"] >= 1
    pid = target.pid if target is not None else json.loads(done.read_text())["pid"]
    io = read_table(cap, "io")
    assert _sum(io.filter(pc.equal(io["pid"], pid)), "count") > 0


# --- output disk full ---------------------------------------------------------------------------

@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs, 700 KiB of it already taken."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mnt)],
                   check=True)
    try:
        (mnt / "filler").write_bytes(b"\0" * (700 << 10))
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_clear_error_earlier_files_intact_command_unharmed(tmp_path, small_fs):
    cap, done = small_fs / "cap", tmp_path / "done.json"
    proc = subprocess.run([*IOLENS, "record", "-q", "-o", str(cap), "-i", "0.2", "--rotate", "0.5",
                           "--", *workload("busy_io.py", tmp_path / "work", 25, done)],
                          capture_output=True, text=True, timeout=300, env=ENV)
    assert proc.returncode == 74, proc.stderr
    assert "Traceback" not in proc.stderr
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and "No space left on device" in err[0] and "intact" in err[0], err
    # the traced command ran its whole course, untouched (its files live elsewhere)
    truth = json.loads(done.read_text())
    assert truth["writes"] > 1000
    assert all(p.stat().st_size == 4096 for p in (tmp_path / "work").iterdir())
    # what was written before the disk filled is whole and readable
    _assert_every_file_complete(cap)
    assert complete_parts(cap, "io"), "nothing was written before the disk filled"
    io = read_table(cap, "io")
    assert _sum(io.filter(pc.equal(io["pid"], truth["pid"])), "count") > 0
    assert meta(cap)["complete"] is False


# --- fork storm, pid reuse, exec, 10,000 open files ---------------------------------------------

def test_fork_exec_pid_reuse_and_10000_open_files_attributed_exactly(tmp_path):
    cap, truth_path, gate = tmp_path / "cap", tmp_path / "truth.json", tmp_path / "gate"
    # room for a row per file (10,000 held open): attribution is under test, not folding
    rec = subprocess.Popen([*IOLENS, "record", "-q", "-o", str(cap), "--max-keys", "65536", "--",
                            *workload("fork_storm.py", tmp_path / "work", truth_path, gate)],
                           stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        # while the workload holds still at the end: kernel maps are back to a few entries
        wait_for(lambda: Path(str(gate) + ".ready").exists(), 240, "the storm to finish", rec)
        _, maps = bpf_objects(rec.pid)
        sizes = {}
        for m in maps:
            shown = bpftool("map", "show", "id", str(m))
            shown = shown[0] if isinstance(shown, list) else shown
            if shown.get("name") in ("targets", "fdid"):
                sizes[shown["name"]] = len(bpftool("map", "dump", "id", str(m)))
        gate.write_text("go")
        _, err = rec.communicate(timeout=240)
    finally:
        if rec.poll() is None:
            rec.kill()
    assert rec.returncode == 0, err
    assert set(sizes) == {"targets", "fdid"}, sizes
    # 1,000+ exited children are no longer targets, 10,000 closed fds no longer tracked
    assert sizes["targets"] <= 5, sizes
    assert sizes["fdid"] <= 100, sizes
    truth = json.loads(truth_path.read_text())
    m = meta(cap)
    assert m["lost_events"] == 0 and m["agg_overflow"] == 0, m
    health = read_table(cap, "health")
    assert _sum(health, "fd_overflow") == 0 and _sum(health, "lost_events") == 0
    assert _sum(health, "folded_dir") == 0 and _sum(health, "folded_proc") == 0

    io = read_table(cap, "io")
    writes = io.filter(pc.equal(io["op"], "write"))
    got: dict[tuple[int, str], int] = {}
    for pid, res, b in zip(writes["pid"].to_pylist(), writes["resource"].to_pylist(),
                           writes["bytes"].to_pylist(), strict=True):
        got[(pid, res)] = got.get((pid, res), 0) + b
    # every short-lived child: its own file, its own byte count, under its own pid
    for c in truth["children"]:
        assert got.get((c["pid"], c["path"])) == c["bytes"], c
    # reused pids: both lives' files are told apart, each with its own bytes
    assert truth["reused"], "the workload could not make the kernel reuse a pid"
    for a, b in truth["reused"]:
        assert a["pid"] == b["pid"] and a["path"] != b["path"] and a["bytes"] != b["bytes"]
        assert got.get((a["pid"], a["path"])) == a["bytes"]
        assert got.get((b["pid"], b["path"])) == b["bytes"]
    # exec'd children: the reads after exec are theirs
    reads = io.filter(pc.equal(io["op"], "read"))
    for c in truth["execs"]:
        t = reads.filter(pc.and_(pc.equal(reads["pid"], c["pid"]),
                                 pc.equal(reads["resource"], c["path"])))
        assert _sum(t, "bytes") == c["bytes"], c
    events = read_table(cap, "events")
    exec_pids = set(events.filter(pc.equal(events["type"], "exec"))["pid"].to_pylist())
    assert {c["pid"] for c in truth["execs"]} <= exec_pids
    # 10,000 files held open at once: each of them written twice, one byte each time
    many = {r: b for (p, r), b in got.items()
            if p == truth["main"] and r.startswith(truth["many_dir"])}
    assert len(many) == truth["many"] == 10_000
    assert set(many.values()) == {2}


def test_folding_then_overflow_counted_exact_and_reported(tmp_path):
    """--max-keys 64: the main process's 3,000 files fold into their directory's rows (exact
    totals); then 1,200 short children, each writing its own file, exhaust the directory and
    process keys too: what finds no room is counted as not counted, per interval, and said."""
    cap = tmp_path / "cap"
    code = ("import os,sys\nd=sys.argv[1]; os.makedirs(d)\n"
            "for i in range(3000):\n"
            "    fd=os.open(f'{d}/f{i}', os.O_WRONLY|os.O_CREAT, 0o600)\n"
            "    os.write(fd, b'x'); os.close(fd)\n"
            "for i in range(1200):\n"
            "    if os.fork() == 0:\n"
            "        fd=os.open(f'{d}/c{i}', os.O_WRONLY|os.O_CREAT, 0o600)\n"
            "        os.write(fd, b'y'); os.close(fd); os._exit(0)\n"
            "    os.wait()\n")
    proc = subprocess.run([*IOLENS, "record", "-o", str(cap), "--max-keys", "64", "--",
                           sys.executable, "-c", code, str(tmp_path / "many")],
                          capture_output=True, text=True, timeout=240, env=ENV)
    assert proc.returncode == 0, proc.stderr
    m = meta(cap)
    health = read_table(cap, "health")
    assert _sum(health, "folded_dir") > 0
    io = read_table(cap, "io")
    main = io.filter(pc.and_(pc.equal(io["op"], "write"),
                             pc.equal(io["pid"], pc.min(io["pid"]).as_py())))
    many = str(tmp_path / "many")
    mine = main.filter(pc.starts_with(pc.fill_null(main["resource"], ""), many))
    assert _sum(mine, "bytes") == 3000  # file rows + the directory's row: every byte
    assert m["agg_overflow"] > 0
    assert _sum(health, "agg_overflow") == m["agg_overflow"]  # per interval, none silent
    assert f"aggregation overflow {m['agg_overflow']}" in proc.stderr
    out = subprocess.run([*IOLENS, "analyze", "--json", str(cap)], capture_output=True, text=True,
                         timeout=300, env=ENV)
    assert out.returncode == 0, out.stderr
    assert "overflow" in out.stdout


# --- sustained maximal syscall rate -------------------------------------------------------------

STRESS_S = float(os.environ.get("IOLENS_STRESS_S", "20"))
DD_RECORDS = re.compile(r"^(\d+)\+(\d+) records (in|out)$", re.M)


def _dd_records(stderr: str) -> dict[str, int]:
    """dd's own count of its reads and writes ('N+M records in/out': full + partial)."""
    got = {d: int(full) + int(part) for full, part, d in DD_RECORDS.findall(stderr)}
    assert set(got) == {"in", "out"}, stderr[-2000:]
    return got


@pytest.mark.slow
def test_highest_syscall_rate_counted_exactly_loss_recorded(tmp_path):
    """`dd bs=1` (two syscalls per byte, the fastest this machine goes) for IOLENS_STRESS_S
    seconds (default 20; the issue asks for 60: IOLENS_STRESS_S=60), stopped by SIGINT, on
    which dd reports how many reads and writes it made: every one is counted, or counted as
    lost. Memory and rate are measured by benchmarks/fault_timings.py, not bounded here."""
    cap = tmp_path / "cap"
    # --foreground: timeout signals dd alone, once. Without it, it also signals its process
    # group, and dd (whose SIGINT handler is one-shot) is sometimes killed by the second
    # SIGINT before it prints its counts.
    proc = subprocess.run([*IOLENS, "record", "-q", "-o", str(cap), "--", "timeout",
                           "--foreground", "-s", "INT", str(STRESS_S), "dd", "if=/dev/zero",
                           "of=/dev/null", "bs=1"],
                          capture_output=True, text=True, timeout=STRESS_S + 240, env=ENV)
    # timeout's own code for "stopped it on time": dd ran, unharmed, until its signal
    assert proc.returncode == 124, proc.stderr[-2000:]
    truth = _dd_records(proc.stderr)
    m = meta(cap)
    assert m["complete"] is True and m["exit_code"] == 124
    health = read_table(cap, "health").sort_by("ts")
    assert health.num_rows == m["intervals"] >= 1
    for col in ("lost_events", "agg_overflow", "collector_rss_bytes"):
        assert health[col].null_count == 0, col  # every interval has its health
    assert _sum(health, "lost_events") == m["lost_events"]
    assert _sum(health, "agg_overflow") == m["agg_overflow"]
    io = read_table(cap, "io")
    dd = io.filter(pc.equal(io["comm"], "dd"))
    counted = {d: _sum(dd.filter(pc.and_(pc.equal(dd["op"], op), pc.equal(dd["resource"], res))),
                       "count")
               for d, op, res in (("in", "read", "/dev/zero"), ("out", "write", "/dev/null"))}
    # dd's two keys never fill the aggregation map; an op that found it full is counted there
    assert counted["in"] + counted["out"] + m["agg_overflow"] == truth["in"] + truth["out"], \
        (counted, truth, m["agg_overflow"])
    assert counted == truth, (counted, truth)
    assert truth["in"] > 1000  # it did run at full speed for a while


# --- probes the kernel refuses ------------------------------------------------------------------

def test_refused_probe_and_missing_tracepoint_skipped_with_reason_rest_records(tmp_path):
    cap = tmp_path / "cap"
    specs = "tests.bpf.fault_probes:MissingTracepoint,tests.bpf.fault_probes:VerifierRefused"
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "bpf" / "record_with.py"), specs,
                           "record", "-q", "-o", str(cap), "--",
                           *workload("busy_io.py", tmp_path / "work", 1)],
                          capture_output=True, text=True, timeout=240, env=ENV, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    m = meta(cap)
    skipped = m["probes_skipped"]
    assert "tracepoint" in skipped["test_missing_tracepoint"]
    assert "iolens_nonexistent:no_such_event" in skipped["test_missing_tracepoint"]
    assert skipped["test_verifier_refused"]
    assert all("\n" not in why for why in skipped.values())
    assert "syscalls" in m["probes_attached"]
    assert not {"test_missing_tracepoint", "test_verifier_refused"} & set(m["probes_attached"])
    io = read_table(cap, "io")
    assert _sum(io.filter(pc.equal(io["op"], "write")), "bytes") >= 4096 * 100
