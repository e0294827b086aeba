"""A large small-file loader (issue 15's list): 2 workers read 200,000 files of 1-4 KiB in
200 directories as fast as they can (page cache warm: the per-file open/fstat/read/close is
the cost), the main process waits for them. About 10^5 files/s on 2 cores: the load at which
the capture used to drop most operations.

Injected bottleneck: one file per sample at a high rate (metadata-bound).
Expected: metadata-heavy or small-io on the workers (or the main process starved by them);
no incomplete capture. Truth: benchmarks/wl_smallfiles.py's own counts (files, opens, reads
per worker, files/s), the workers' pids as the culprits.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from common import DURATION, data_dir, main, write_truth

D = data_dir("smallfile_loader")
WL = Path(__file__).resolve().parents[1] / "wl_smallfiles.py"
ARGS = ["--data", str(D / "files"), "--files", "200000", "--dirs", "200", "--workers", "2",
        "--work-us", "0"]


def prepare() -> None:
    subprocess.run([sys.executable, str(WL), *ARGS, "--prepare"], check=True,
                   capture_output=True)


def run() -> None:
    out = D / "wl_truth.json"
    subprocess.run([sys.executable, str(WL), *ARGS, "--seconds", str(DURATION), "--truth",
                    str(out)], check=True, capture_output=True)
    t = json.loads(out.read_text())
    workers = [{"pid": w["pid"], "files": w["files"]} for w in t["workers"]] \
        if all("pid" in w for w in t["workers"]) else []
    write_truth("smallfile_loader", {
        "injected": "2 workers open/fstat/read/close 1-4 KiB files, warm cache, no work",
        "culprit": {"resource": str(D / "files")}, "workers": workers,
        "files": t["files"], "files_per_s": round(t["files_per_s"]),
        "main": t["main"].get("files") if isinstance(t["main"], dict) else None})


if __name__ == "__main__":
    main(prepare, run)
