"""docs/evaluation.md is generated from docs/eval/results: the two must agree (pure tier).

The benchmarks themselves are not run here (they are measurements, `make evaluate`); this
checks that every generated block of the document is exactly what benchmarks/eval_report.py
renders from the committed results, that each block has its results, that the figures exist,
and that the links between design.md and evaluation.md resolve.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def report():
    path = ROOT / "benchmarks" / "eval_report.py"
    spec = importlib.util.spec_from_file_location("eval_report", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["eval_report"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_document_is_what_the_results_render(report):
    assert report.main(["--check"]) == 0, "run: .venv/bin/python benchmarks/eval_report.py"


def test_every_block_has_its_results(report):
    doc = (DOCS / "evaluation.md").read_text()
    names = [m.group(2) for m in report.MARK.finditer(doc)]
    assert set(names) == set(report.SECTIONS), "a section is rendered nowhere, or twice"
    assert len(names) == len(set(names))
    assert "Not measured yet" not in doc
    steps = json.loads((DOCS / "eval" / "results" / "evaluate.json").read_text())["steps"]
    assert all(s["status"] == "ok" for s in steps.values()), steps


def test_figures_are_committed(report):
    for name in ("overhead", "workloads", "capacity", "analysis"):
        for ext in ("svg", "png"):
            p = DOCS / "eval" / "figures" / f"{name}.{ext}"
            assert p.exists() and p.stat().st_size > 1000, p
        assert f"eval/figures/{name}.svg" in (DOCS / "evaluation.md").read_text()


def slugs(md: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for m in re.finditer(r"^#+ (.+)$", md, re.M):
        s = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
        out.add(s.replace(" ", "-"))
    return out


def test_links_between_design_and_evaluation_resolve():
    ev = (DOCS / "evaluation.md").read_text()
    design = (DOCS / "design.md").read_text()
    anchors = slugs(ev)
    wanted = set(re.findall(r"evaluation\.md#([\w\-]+)", design))
    assert wanted, "design.md links no evaluation section"
    assert wanted <= anchors, wanted - anchors
    for rel in re.findall(r"\]\(([\w./\-]+\.md)(?:#[\w\-]+)?\)", design + ev):
        assert (DOCS / rel).resolve().exists(), rel


def test_missing_results_are_said_not_invented(report, tmp_path):
    doc = "x\n<!-- eval:overhead -->\nold\n<!-- /eval:overhead -->\ny\n"
    out = report.render(doc, report.Results(tmp_path))
    assert "Not measured yet" in out and "old" not in out and out.startswith("x\n")
    with pytest.raises(SystemExit, match="unknown block"):
        report.render("<!-- eval:nope -->\n<!-- /eval:nope -->", report.Results(tmp_path))
