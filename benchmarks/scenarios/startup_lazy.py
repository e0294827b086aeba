"""Worker start-up, lazy dataset (issue 19): the same 1.2M samples and 4 spawned workers as
startup_pathlist, but the dataset holds only a root and a count (paths computed on demand).
Expected: no worker-startup finding beyond info (nothing high).
"""

from __future__ import annotations

from common import DURATION, main, write_truth
from loader_ipc import loader_truth, startup_loader


def run() -> None:
    got = startup_loader(lazy=True, n=1_200_000, workers=4, seconds=DURATION)
    write_truth("startup_lazy", loader_truth(
        got, "none: lazy dataset (root + count), 4 spawned workers",
        trainer_is_culprit=False))


if __name__ == "__main__":
    main(lambda: None, run)
