"""`iolens export` glue: add_arguments/run, exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from iolens.analysis.export.cli import main
from iolens.collector import schema as S
from tests.export import synth


def test_exports_both_formats(tmp_path, capsys):
    cap = synth.capture(tmp_path)
    trace, out = tmp_path / "t.json", tmp_path / "csv"
    assert main([str(cap.path), "--perfetto", str(trace), "--csv", str(out)]) == 0
    assert json.loads(trace.read_text())["traceEvents"]
    assert (out / "io.csv").is_file()
    printed = capsys.readouterr().out
    assert f"{len(S.TABLES)} CSV files" in printed and "trace events" in printed


@pytest.mark.parametrize("argv,code,message", [
    (["{cap}"], 2, "nothing to export"),
    (["{tmp}/missing", "--csv", "{tmp}/o"], 1, "no such capture"),
    (["{tmp}", "--csv", "{tmp}/o"], 1, "not an iolens capture"),
])
def test_bad_input_is_one_line_on_stderr(tmp_path, capsys, argv, code, message):
    cap = synth.capture(tmp_path)
    args = [a.format(cap=cap.path, tmp=tmp_path / "empty") for a in argv]
    (tmp_path / "empty").mkdir()
    assert main(args) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("iolens export: error:")


def test_existing_trace_is_kept_unless_forced(tmp_path, capsys):
    cap = synth.capture(tmp_path)
    trace = tmp_path / "t.json"
    trace.write_text("{}")
    assert main([str(cap.path), "--perfetto", str(trace)]) == 1
    assert "already exists" in capsys.readouterr().err and trace.read_text() == "{}"
    assert main([str(cap.path), "--perfetto", str(trace), "--force", "--no-findings"]) == 0
    assert json.loads(trace.read_text())["traceEvents"]


def test_failing_rules_cost_only_the_findings(tmp_path, capsys, monkeypatch):
    import iolens.analysis.rules as rules

    def broken(*a, **k):
        raise KeyError("lat_p99")

    monkeypatch.setattr(rules, "run_rules", broken)
    cap = synth.capture(tmp_path)
    assert main([str(cap.path), "--perfetto", str(tmp_path / "t.json")]) == 0
    assert "warning: analysis failed" in capsys.readouterr().err


def test_no_traceback_from_a_real_process(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "iolens.analysis.export.cli",
                           str(tmp_path / "nope"), "--csv", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
