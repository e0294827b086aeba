"""The HTML report in a real headless Chromium (Debian's `chromium`, installed by
.ci/setup.sh): it renders with no console errors, its plots are in the DOM, and the plot
area of a screenshot holds coloured (non-blank) pixels."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from iolens.analysis import cli

from tests.analysis import synth
from tests.analysis.test_cli import write

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed "
                                "(apt-get install chromium; .ci/setup.sh does)")


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--no-first-run",
           f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def console_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln]


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("html")
    cap = write(tmp, "run", synth.data_starvation()[0])
    out = tmp / "report.html"
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    assert cli.run(p.parse_args([str(cap), "--html", str(out), "--json"])) == 0
    return out


def test_harness_sees_console_errors(tmp_path):
    # control: the check below would catch a page that logs an error
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefined_fn();</script></body></html>")
    r = chromium(tmp_path, "--dump-dom", bad.as_uri())
    assert any("undefined_fn" in ln for ln in console_lines(r.stderr))


def test_renders_without_console_errors_and_plots_in_dom(report_html, tmp_path):
    r = chromium(tmp_path, "--dump-dom", report_html.as_uri())
    assert r.returncode == 0
    assert console_lines(r.stderr) == []
    dom = r.stdout
    for fig in ("timeline-process", "timeline-class", "heatmap", "latency"):
        assert f'id="{fig}"' in dom
    assert dom.count("<svg") >= 4


def test_screenshot_shows_plots(report_html, tmp_path):
    from PIL import Image

    shot = tmp_path / "shot.png"
    r = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,4000",
                 "--hide-scrollbars", report_html.as_uri())
    assert shot.exists(), r.stderr[-500:]
    px = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    # plot lines and the heatmap are saturated colours; text and tables are grey/black/white
    saturated = (px.max(axis=2) - px.min(axis=2)) > 80
    rows = np.nonzero(saturated.sum(axis=1) > 20)[0]
    assert saturated.sum() > 5000
    # colour appears over a tall region (several stacked figures), not one line of text
    assert rows.max() - rows.min() > 1000
