"""`iolens doctor`: correct verdict here, clear fixes when something is missing (simulated)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from iolens.probes import preflight as P


def test_not_root_without_caps_is_reported_with_fix(monkeypatch):
    monkeypatch.setattr(P, "_cap_eff", lambda: 0)
    c = P.check_root(euid=1000)
    assert not c.ok and "not root" in c.detail and "sudo" in c.fix


def test_missing_bcc_and_pypi_impostor(monkeypatch):
    def missing(name):
        raise ImportError("No module named 'bcc'")

    c = P.check_bcc(missing)
    assert not c.ok and "python3-bpfcc" in c.fix
    impostor = type(sys)("bcc")  # PyPI's unrelated `bcc` has no BPF class
    c = P.check_bcc(lambda name: impostor)
    assert not c.ok and "not BCC" in c.detail


def test_missing_headers_and_tracefs(tmp_path):
    c = P.check_headers(release="9.9.9-test", modules=tmp_path)
    assert not c.ok and "linux-headers-9.9.9-test" in c.fix
    c = P.check_tracefs((tmp_path / "tracing",))
    assert not c.ok and "mount -t tracefs" in c.fix


def test_nearest_headers_are_accepted_with_a_note(tmp_path):
    real = tmp_path / "linux-headers-6.1.0-amd64"
    (real / "include").mkdir(parents=True)
    (tmp_path / "mods" / "6.18.0").mkdir(parents=True)
    os.symlink(real, tmp_path / "mods" / "6.18.0" / "build")
    c = P.check_headers(release="6.18.0", modules=tmp_path / "mods")
    assert c.ok and "nearest headers" in c.detail


def test_cli_exit_code_when_not_traceable(monkeypatch, capsys):
    from iolens.collector import cli

    fake = P.Capabilities([P.Check("bcc", False, "python module bcc not importable", "apt install python3-bpfcc")])
    monkeypatch.setattr(P, "check", lambda quick=False: fake)
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "cannot trace" in out and "python3-bpfcc" in out


@pytest.mark.bpf
def test_doctor_verdict_on_this_machine():
    proc = subprocess.run([sys.executable, "-m", "iolens.collector.cli", "doctor"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "can trace" in proc.stdout
    # kprobes/fentry are optional: reported, not fatal
    assert "kprobe" in proc.stdout and "fentry" in proc.stdout


@pytest.mark.bpf
def test_record_refuses_without_privileges_one_line(tmp_path):
    # drop to nobody: record must refuse clearly; analyze/replay never need root
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           sys.executable, "-m", "iolens.collector.cli", "record", "-o",
                           str(tmp_path / "x"), "-d", "1"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert proc.returncode == 77, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "cannot trace" in proc.stderr
