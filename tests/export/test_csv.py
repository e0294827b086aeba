"""CSV export: one file per table, read back with the csv module."""

from __future__ import annotations

import csv
import os
import stat

import pyarrow.compute as pc
import pytest

from iolens.analysis.export import ExportError
from iolens.analysis.export.csv import export_csv
from iolens.collector import schema as S
from tests import factories as F
from tests.export import synth


def _read(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_one_csv_per_table_with_every_row_and_column(tmp_path):
    cap = synth.capture(tmp_path)
    files = export_csv(cap, tmp_path / "out")
    assert sorted(p.name for p in files) == sorted(f"{t}.csv" for t in S.TABLES)
    for name, table in cap.tables.items():
        rows = _read(tmp_path / "out" / f"{name}.csv")
        assert len(rows) == table.num_rows
        with open(tmp_path / "out" / f"{name}.csv", newline="") as fh:
            assert next(csv.reader(fh)) == table.column_names
        assert stat.S_IMODE(os.stat(tmp_path / "out" / f"{name}.csv").st_mode) == 0o600


def test_lists_become_space_separated_and_numbers_stay_numbers(tmp_path):
    cap = synth.capture(tmp_path)
    export_csv(cap, tmp_path / "out")
    rows = _read(tmp_path / "out" / "io.csv")
    fsync = next(r for r in rows if r["op"] == "fsync")
    hist = [int(x) for x in fsync["lat_hist"].split(" ")]
    io = cap.tables["io"]
    assert hist == io.filter(pc.equal(io.column("op"), "fsync")).column("lat_hist")[0].as_py()
    assert hist[synth.FSYNC_LAT_NS.bit_length() - 1] == 1
    assert int(fsync["lat_sum_ns"]) == synth.FSYNC_LAT_NS
    assert fsync["resource"] == synth.CKPT
    assert fsync["ts"].startswith("2025-11-24")  # ISO wall clock of factories.T0


def test_formula_like_text_is_guarded(tmp_path):
    ivs = [F.interval([F.io_row(comm="=HYPERLINK(\"x\")", resource="/data/+plus"),
                       F.io_row(comm="plain", resource="-rf", op="write")])]
    export_csv(synth.capture(tmp_path, ivs), tmp_path / "out")
    rows = _read(tmp_path / "out" / "io.csv")
    assert {r["comm"] for r in rows} == {"'=HYPERLINK(\"x\")", "plain"}
    assert {r["resource"] for r in rows} == {"/data/+plus", "'-rf"}


def test_refuses_to_overwrite_and_writes_nothing(tmp_path):
    cap = synth.capture(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "events.csv").write_text("mine")
    with pytest.raises(ExportError, match="events.csv already exists") as err:
        export_csv(cap, out)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in out.iterdir()) == ["events.csv"]
    assert (out / "events.csv").read_text() == "mine"


def test_out_dir_that_is_a_file_is_an_error(tmp_path):
    cap = synth.capture(tmp_path)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ExportError, match="not a directory"):
        export_csv(cap, tmp_path / "f")
