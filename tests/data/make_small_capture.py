"""Regenerate tests/data/small_capture/ (committed; used by the TUI replay test).

    .venv/bin/python tests/data/make_small_capture.py   # refuses to overwrite: rm -r it first
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests import factories as F  # noqa: E402
from tests.tui import scene  # noqa: E402

if __name__ == "__main__":
    out = ROOT / "tests" / "data" / "small_capture"
    F.write_capture(out, scene.intervals(10), command=["python", "train.py"], mode="command",
                    probes_skipped={"block": "block_rq tracepoints unavailable (test data)"})
    print(out)
