"""Worker start-up (issue 19): a dataset object holding 1.2M sample paths, 4 spawned
DataLoader workers: the object is pickled into each worker at start (~60 MB each).
Truth: the pickle's size, the time to the first batch. Expected: worker-startup on the
trainer, with the bytes shipped to each worker.
"""

from __future__ import annotations

from common import DURATION, main, write_truth
from loader_ipc import loader_truth, startup_loader


def run() -> None:
    got = startup_loader(lazy=False, n=1_200_000, workers=4, seconds=DURATION)
    write_truth("startup_pathlist", loader_truth(
        got, "1.2M-path list in the dataset object, pickled into 4 spawned workers",
        trainer_is_culprit=True))


if __name__ == "__main__":
    main(lambda: None, run)
