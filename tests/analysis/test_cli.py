"""`iolens analyze` end to end on real capture directories written by the real CaptureWriter
(replay tier, no kernel): JSON contract, errors for bad input, partly corrupt captures,
baseline comparison, threshold files."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pyarrow as pa
import pytest
from iolens.analysis import cli
from iolens.collector.sources import Interval

from tests import factories as F
from tests.analysis import synth


def write(tmp: Path, name: str, tables: dict[str, pa.Table], complete: bool = True) -> Path:
    """Write synthetic tables as a capture, one interval per distinct io ts."""
    ivs = []
    io = tables["io"]
    ts_all = sorted(set(io.column("ts").cast(pa.int64()).to_pylist()))
    for i, ts in enumerate(ts_all):
        part = {"io": io.filter(pa.compute.equal(io.column("ts").cast(pa.int64()), ts))}
        if i == 0:
            part.update({k: v for k, v in tables.items() if k in ("procs", "events")})
        h = tables.get("health")
        if h is not None:
            part["health"] = h.filter(pa.compute.equal(h.column("ts").cast(pa.int64()), ts))
        ivs.append(Interval(ts, ts + 10**9, part))
    return F.write_capture(tmp / name, ivs, complete=complete)


def analyze(*argv: str) -> int:
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return cli.run(p.parse_args(list(argv)))


def run_json(capsys, *argv: str) -> dict:
    assert analyze(*argv, "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_json_contract(tmp_path, capsys):
    cap = write(tmp_path, "run", synth.sync_stall()[0])
    out = run_json(capsys, str(cap))
    assert out["schema"] == 2
    assert set(out["verdict"]) >= {"io_bound", "io_time_fraction", "summary"}
    assert 0.0 <= out["verdict"]["io_time_fraction"] <= 1.0
    top = out["findings"][0]
    assert set(top) == {"code", "category", "severity", "title", "culprit", "impact_s",
                        "evidence", "recommendation"}
    assert top["category"] == "sync-stall"
    assert top["culprit"] == {"pid": 200, "comm": "python", "role": "checkpoint-writer",
                              "resource": "/ckpt/model.pt"}
    assert top["impact_s"] == pytest.approx(4.0)  # 10 fsyncs of 400 ms (synth.sync_stall)
    assert out["totals"]["write_bytes"] == 10 * (64 << 20)
    assert out["top"]["files"][0]["resource"] == "/ckpt/model.pt"


def test_terminal_report(tmp_path, capsys):
    cap = write(tmp_path, "run", synth.metadata_heavy()[0])
    assert analyze(str(cap)) == 0
    text = capsys.readouterr().out
    assert "metadata-heavy" in text and "top processes" in text and "capture health" in text


@pytest.mark.parametrize("make, msg", [
    (lambda d: d / "missing", "no such capture"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "not an iolens capture"),
    (lambda d: [(d / "f").write_text("x"), d / "f"][1], "not a capture directory"),
])
def test_bad_capture_one_line_error(tmp_path, capsys, make, msg):
    assert analyze(str(make(tmp_path))) != 0
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err


def test_all_files_corrupt_is_an_error_naming_the_file(tmp_path, capsys):
    cap = write(tmp_path, "run", synth.small_io()[0])
    for p in cap.rglob("*.parquet"):
        p.write_bytes(b"garbage" * 10)
    assert analyze(str(cap)) == 1
    err = capsys.readouterr().err
    assert "io/part-" in err and err.count("\n") == 1


def test_partly_corrupt_capture_analyses_the_rest(tmp_path, capsys):
    cap = write(tmp_path, "run", synth.small_io()[0])
    # a second capture segment that is damaged (a foreign file in io/)
    (cap / "io" / "part-000099.parquet").write_bytes(b"PAR1 not really")
    out = run_json(capsys, str(cap))
    assert out["findings"][0]["category"] == "small-io"
    assert [s["file"] for s in out["health"]["skipped"]] == [str(cap / "io/part-000099.parquet")]


def test_damaged_pages_are_found_and_skipped(tmp_path, capsys):
    cap = write(tmp_path, "run", synth.small_io()[0])
    good = next((cap / "io").glob("part-*.parquet"))
    raw = bytearray(good.read_bytes())
    bad = cap / "io" / "part-000050.parquet"
    raw[20:400] = b"\xff" * 380  # data pages damaged, footer intact
    bad.write_bytes(bytes(raw))
    out = run_json(capsys, str(cap))
    assert str(bad) in [s["file"] for s in out["health"]["skipped"]]


def test_abrupt_end_is_reported(tmp_path, capsys):
    cap = write(tmp_path, "run", synth.small_io()[0], complete=False)
    out = run_json(capsys, str(cap))
    assert out["health"]["ended_abruptly"] is True
    assert any("abruptly" in n for n in out["health"]["notes"])


def test_baseline_comparison(tmp_path, capsys):
    slow = write(tmp_path, "slow", synth.sync_stall()[0])
    fast = write(tmp_path, "fast", synth.healthy()[0])
    out = run_json(capsys, str(fast), "--baseline", str(slow))
    b = out["baseline"]
    assert [g["category"] for g in b["gone"]] == ["sync-stall"]
    assert "verdict" in b["summary"]
    assert analyze(str(fast), "--baseline", str(slow)) == 0
    assert "what changed" in capsys.readouterr().out


def test_config_overrides_and_rejects(tmp_path, capsys):
    cap = write(tmp_path, "run", synth.sync_stall()[0])
    cfg = tmp_path / "th.toml"
    cfg.write_text("[thresholds]\nsync_time_fraction = 0.9\n")
    out = run_json(capsys, str(cap), "--config", str(cfg))
    assert all(f["category"] != "sync-stall" for f in out["findings"])
    cfg.write_text("sync_time_fractoin = 0.9\n")
    assert analyze(str(cap), "--config", str(cfg)) == 2
    assert "unknown threshold 'sync_time_fractoin'" in capsys.readouterr().err
    cfg.write_text("not toml [")
    assert analyze(str(cap), "--config", str(cfg)) == 2


def test_html_is_self_contained(tmp_path, capsys):
    cap = write(tmp_path, "run", synth.data_starvation()[0])
    html = tmp_path / "r.html"
    assert analyze(str(cap), "--html", str(html), "--json") == 0
    text = html.read_text()
    assert text.count("<svg") >= 4
    # nothing is fetched: no src/href to the network (xmlns URIs are names, not fetches)
    assert not re.search(r"""(src|href)\s*=\s*["']https?:""", text)
    assert "<script" not in text and "data-starvation" in text
