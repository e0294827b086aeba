"""Daemon: config validation, retention plan, the unit file's command line (pure tier)."""

from __future__ import annotations

import configparser
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iolens.collector.daemon import ConfigError, apply_retention, load_config, plan_retention

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "collector" / "deploy"


def test_retention_by_age_then_by_size():
    now = 1_000_000.0
    files = [("old", now - 7200, 10), ("a", now - 300, 40), ("b", now - 200, 40),
             ("c", now - 100, 40)]
    assert plan_retention(files, now, max_age_s=3600, max_bytes=1000) == ["old"]
    # 120 bytes left after age; cap 90 -> drop the oldest one only
    assert plan_retention(files, now, max_age_s=3600, max_bytes=90) == ["old", "a"]
    assert plan_retention([], now, 1, 1) == []


def test_apply_retention_touches_only_this_host_and_complete_files(tmp_path):
    mine = tmp_path / "host=a" / "date=2026-01-01" / "io"
    theirs = tmp_path / "host=b" / "date=2026-01-01" / "io"
    mine.mkdir(parents=True)
    theirs.mkdir(parents=True)
    old = time.time() - 10 * 86400
    for d in (mine, theirs):
        for name in ("part-000000.parquet", "part-000001.parquet.tmp"):
            (d / name).write_bytes(b"x" * 10)
            os.utime(d / name, (old, old))
    gone = apply_retention(tmp_path, "a", max_age_s=86400, max_bytes=10**9)
    assert gone == [str(mine / "part-000000.parquet")]
    assert (mine / "part-000001.parquet.tmp").exists()  # an interrupted run's evidence stays
    assert (theirs / "part-000000.parquet").exists()


@pytest.mark.parametrize("text,msg", [
    ("interval_s = 1\n", "`root`"),
    ('root = "/x"\nbogus = 1\n', "unknown key"),
    ('root = "/x"\nrotate_s = -5\n', "rotate_s must be a positive number"),
    ('root = "/x"\ndisable = "gpu"\n', "disable must be a list"),
    ('root = "/x"\nfsync = "always"\n', "fsync must be one of interval, rotate, never"),
    ('root = "/x"\nfsync = 1\n', "fsync must be a string"),
    ("root = \n", "not valid TOML"),
])
def test_bad_configs_are_one_line_errors(tmp_path, text, msg):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=msg):
        load_config(str(p))


def test_shipped_config_is_valid():
    cfg = load_config(str(DEPLOY / "iolens.toml"))
    assert cfg.root and cfg.rotate_s > 0 and cfg.metrics == ":9464"


def test_unit_file_command_lines_run(tmp_path):
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(DEPLOY / "iolens.service")
    svc = unit["Service"]
    assert svc["Restart"] == "always" and svc["KillSignal"] == "SIGTERM"
    cfg = tmp_path / "iolens.toml"
    cfg.write_text(f'root = "{tmp_path}/tree"\nstatus_file = "{tmp_path}/status.json"\n')
    for key in ("ExecStartPre", "ExecStart"):
        argv = shlex.split(svc[key])
        assert argv[0].endswith("/bin/iolens") and argv[1:3] == ["record", "--daemon"]
        assert argv[argv.index("--config") + 1] == "/etc/iolens/iolens.toml"
    # the pre-start check, with this checkout's iolens and a real config
    argv = shlex.split(svc["ExecStartPre"])
    argv[argv.index("--config") + 1] = str(cfg)
    proc = subprocess.run([sys.executable, "-m", "iolens.collector.cli", *argv[1:]],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f'"root": "{tmp_path}/tree"' in proc.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("nope = 1\n")
    argv[argv.index("--config") + 1] = str(bad)
    proc = subprocess.run([sys.executable, "-m", "iolens.collector.cli", *argv[1:]],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
