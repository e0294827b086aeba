"""Pure tier (no root, no kernel): broken capture files given to `iolens analyze` and
`iolens top --replay`. Each bad file is named with its reason; the readable rest is analysed;
a capture with nothing readable is a one-line error naming a file, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from iolens.collector import schema as S
from tests import factories as F

ROOT = Path(__file__).resolve().parents[2]
IOLENS = [sys.executable, "-m", "iolens.collector.cli"]
ENV = {**os.environ, "COLUMNS": "250", "PYTHONPATH": str(ROOT)}
GOOD_COUNTS = (1, 2, 3)  # ops per good interval: the analysis must see 6 ops


def _bad_files(d: Path, good: bytes) -> dict[str, str]:
    """Write one broken file of each kind into d; returns name -> kind."""
    files = {
        "part-000101.parquet": ("truncated", good[: len(good) // 2]),
        "part-000102.parquet": ("empty", b""),
        "part-000103.parquet": ("corrupt", b"PAR1" + os.urandom(64) + b"PAR1"),
        "part-000106.parquet": ("text", b"hello, not parquet\n"),
    }
    for name, (_, data) in files.items():
        (d / name).write_bytes(data)
    pq.write_table(pa.table({"x": [1], "y": ["z"]}), d / "part-000104.parquet")
    schema = S.IO.with_metadata({S.META_VERSION_KEY: b"9", S.META_TABLE_KEY: b"io"})
    pq.write_table(F.io_table([F.io_row()]).cast(schema), d / "part-000105.parquet")
    kinds = {n: k for n, (k, _) in files.items()}
    kinds.update({"part-000104.parquet": "foreign", "part-000105.parquet": "version"})
    return kinds


@pytest.fixture
def damaged(tmp_path) -> tuple[Path, dict[str, str]]:
    ivs = [F.interval([F.io_row(count=c)], ts=F.T0 + i * 10**9) for i, c in enumerate(GOOD_COUNTS)]
    out = F.write_capture(tmp_path / "cap", ivs)
    good = next((out / "io").glob("*.parquet")).read_bytes()
    return out, _bad_files(out / "io", good)


def _analyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*IOLENS, "analyze", *args], capture_output=True, text=True,
                          timeout=300, env=ENV)


def test_analyze_names_every_bad_file_and_analyses_the_rest(damaged):
    cap, kinds = damaged
    proc = _analyze("--json", str(cap))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    text = json.dumps(doc)
    for name in kinds:
        assert name in text, (name, kinds[name])
    assert "schema version 9" in text and "not an iolens capture file" in text
    human = _analyze(str(cap))
    assert human.returncode == 0, human.stderr
    for name in kinds:
        assert f"skipped {cap}/io/{name}" in human.stdout, name
    assert "│   6 │" in human.stdout  # 1+2+3 ops, from the good files only


def test_analyze_nothing_readable_is_one_line_naming_a_file(tmp_path):
    out = tmp_path / "cap"
    (out / "io").mkdir(parents=True)
    (out / "io" / "part-000000.parquet").write_bytes(b"")
    proc = _analyze(str(out))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "part-000000.parquet" in lines[0]


def test_analyze_broken_metadata_named(damaged):
    cap, _ = damaged
    (cap / "capture.json").write_text('{"schema_version": 1, "complete": tr')
    proc = _analyze("--json", str(cap))
    assert proc.returncode == 0, proc.stderr
    assert "capture.json" in proc.stdout


@pytest.mark.parametrize("what", ["missing", "file", "empty-dir"])
def test_analyze_and_replay_not_a_capture_one_line(tmp_path, what):
    p = tmp_path / "x"
    if what == "file":
        p.write_text("hi")
    elif what == "empty-dir":
        p.mkdir()
    for cmd in (["analyze", str(p)], ["top", "--replay", str(p)]):
        r = subprocess.run([*IOLENS, *cmd], capture_output=True, text=True, timeout=120, env=ENV,
                           stdin=subprocess.DEVNULL)
        assert r.returncode != 0, cmd
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and str(p) in lines[0], (cmd, r.stderr)


# --- top --replay (the screen replaced by a recorder of what it was given) ----------------------

class _App:
    seen: list = []

    def __init__(self, source) -> None:
        self.source = source

    def run(self) -> int:
        n = 0
        while self.source.next_interval(0.01) is not None:
            n += 1
        _App.seen = [self.source, n]
        return 0


def _replay(path: Path) -> int:
    from iolens.tui import cli

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return cli.run(p.parse_args(["--replay", str(path), "--speed", "0"]), app_factory=_App)


def test_replay_skips_bad_files_naming_them_and_replays_the_rest(damaged):
    cap, kinds = damaged
    assert _replay(cap) == 0
    src, n = _App.seen
    assert n == len(GOOD_COUNTS)
    reasons = dict(src.skipped)
    for name in kinds:
        assert any(k.endswith(name) for k in reasons), name
    assert all(name_in(k, v) for k, v in reasons.items())


def name_in(path: str, reason: str) -> bool:
    return Path(path).name in reason


def test_replay_nothing_readable_one_line_naming_the_file(tmp_path, capsys):
    out = tmp_path / "cap"
    (out / "io").mkdir(parents=True)
    pq.write_table(pa.table({"x": [1]}), out / "io" / "part-000000.parquet")
    assert _replay(out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "part-000000.parquet" in err[0], err


# --- paths that look like rich markup -----------------------------------------------------------

MARKUP_PATHS = ["/data/[/]oops", "/data/[bold red]x[/bold red]", "/data/[link=file:///etc]y",
                "/data/new\nline", "/data/\\xff\\xfe"]


@pytest.fixture
def markup_capture(tmp_path) -> Path:
    rows = [F.io_row(resource=r, count=100, lat_ns=50_000_000, nbytes=1 << 20)
            for r in MARKUP_PATHS]
    return F.write_capture(tmp_path / "cap", [F.interval(rows)])


def test_markup_like_paths_in_json_exactly(markup_capture):
    proc = _analyze("--json", str(markup_capture))
    assert proc.returncode == 0, proc.stderr
    for p in MARKUP_PATHS:
        assert json.dumps(p) in proc.stdout, p  # the stored (escaped) text, unchanged


def test_markup_like_paths_do_not_break_the_text_report(markup_capture):
    proc = _analyze(str(markup_capture))
    assert proc.returncode == 0, proc.stderr
    assert "/data/[/]oops" in proc.stdout and "[bold red]x[/bold red]" in proc.stdout
