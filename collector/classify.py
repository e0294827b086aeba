"""File classes and process roles: the one place where these rules live.

`file_class(resource, op, kind)` -> dataset | checkpoint | weights | log | other | None
`assign_roles(procs, changed)` fills `ProcInfo.role` / `.rank` from what /proc shows.

Rules (documented in docs/schema.md; a user file given with --role-map may extend them):
- checkpoint: written files named *.pt, *.pth, *.ckpt, *.safetensors, *.bin, or under a
  directory whose name starts with "checkpoint"/"ckpt";
- weights: the same model-file names when read;
- log: *.log, *.out, *.err, tensorboard event files;
- dataset: other regular files that are read (refined by analysis: many reads under a common
  root or a shard pattern);
- roles: `rank` when RANK/LOCAL_RANK/WORLD_SIZE (or OMPI/SLURM ranks) are in the environment;
  `dataloader` for a python child of a python parent (torch DataLoader workers are forked);
  `trainer` for a python process with dataloader children; `inference-server` for a process
  that accepted connections; else None.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_MODEL = re.compile(r"\.(pt|pth|ckpt|safetensors|bin|h5|onnx|pkl|npz|gguf)$", re.I)
_CKPT_DIR = re.compile(r"/(checkpoint|ckpt)[^/]*/", re.I)
_LOG = re.compile(r"(\.(log|out|err)$|events\.out\.tfevents)", re.I)


def file_class(resource: str | None, op: str, kind: str) -> str | None:
    """Class of a file resource for one op (None for non-files)."""
    if kind != "file" or not resource:
        return None
    if _LOG.search(resource):
        return "log"
    model = bool(_MODEL.search(resource)) or bool(_CKPT_DIR.search(resource))
    if model:
        return "checkpoint" if op in ("write", "fsync") else "weights"
    if resource.startswith(("/proc/", "/sys/", "/dev/", "/usr/lib", "/lib", "/etc/")) or \
            "/site-packages/" in resource or resource.endswith((".py", ".pyc", ".so")):
        return "other"
    if op == "read":
        return "dataset"
    return "other"


def _is_python(info: Any) -> bool:
    text = f"{info.comm or ''} {info.exe or ''} {(info.cmdline or '').split(' ')[0]}"
    return "python" in text or "pt_data_worker" in text or "pt_main_thread" in text


def assign_roles(procs: Mapping[int, Any], changed: Iterable[Any]) -> None:
    """Set role/rank on the changed ProcInfos (and their parents) from env and the tree."""
    for info in list(changed):
        env = info.env or {}
        rank = env.get("RANK") or env.get("OMPI_COMM_WORLD_RANK") or env.get("SLURM_PROCID")
        if rank is not None and rank.isdigit():
            info.rank = int(rank)
        parent = procs.get(info.ppid) if info.ppid else None
        if parent is not None and _is_python(info) and _is_python(parent) and \
                (info.comm or "").startswith(("pt_data_worker", "python")) and \
                info.comm != "pt_main_thread" and info.rank is None:
            info.role = info.role or "dataloader"
            if parent.role in (None, "dataloader"):
                parent.role = "rank" if parent.rank is not None else "trainer"
                parent.dirty = True
        elif info.rank is not None and info.role in (None, "trainer"):
            info.role = "rank"
