"""Reading a process's cgroup, namespace pid and selected environment from /proc.

In: a /proc/PID directory path. Out: plain values (None when unreadable: the process may
have exited already, which is normal for short-lived workers).
"""

from __future__ import annotations

import os
import re

#: environment variables kept (roles and ranks); nothing else of the environment is read.
ENV_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
            "TORCHELASTIC_RUN_ID", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID")

_CONTAINER_PATTERNS = (
    re.compile(r"docker[-/]([0-9a-f]{64})"),
    re.compile(r"cri-containerd[-:]([0-9a-f]{64})"),
    re.compile(r"crio[-:]([0-9a-f]{64})"),
    re.compile(r"libpod[-/]([0-9a-f]{64})"),
    re.compile(r"containerd[-/:]([0-9a-f]{64})"),
)
_POD = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")


def container_id(cgroup_path: str) -> str | None:
    """Container id (docker/containerd/cri-o/podman) or 'pod:<uid>' parsed from a cgroup path."""
    for pat in _CONTAINER_PATTERNS:
        m = pat.search(cgroup_path)
        if m:
            return m.group(1)
    m = _POD.search(cgroup_path)
    if m:
        return "pod:" + m.group(1).replace("_", "-")
    return None


def read_cgroup(base: str, unified: str = "/sys/fs/cgroup") -> tuple[str | None, int | None, str | None]:
    """(cgroup path, cgroup v2 id, container id) of /proc/PID at `base`.

    The v2 entry (`0::/path`) is preferred; on hybrid hosts where it is the root, the first
    named v1 hierarchy's path is reported (that is where container runtimes put processes).
    """
    try:
        lines = open(f"{base}/cgroup").read().splitlines()
    except OSError:
        return None, None, None
    v2 = next((ln.split(":", 2)[2] for ln in lines if ln.startswith("0::")), None)
    v1 = next((ln.split(":", 2)[2] for ln in lines if not ln.startswith("0::")
               and ln.split(":", 2)[2] not in ("/", "")), None)
    path = v2 if v2 not in (None, "/") else (v1 or v2)
    cgid = None
    if v2 is not None:
        for root in (unified + "/unified", unified):
            try:
                st = os.stat(root + v2)
                if os.path.exists(root + "/cgroup.controllers") or root.endswith("unified"):
                    cgid = st.st_ino
                    break
            except OSError:
                continue
    cid = None
    for ln in lines:
        cid = container_id(ln.split(":", 2)[-1])
        if cid:
            break
    return path, cgid, cid


def read_nspid(base: str) -> int | None:
    """The pid as seen inside the process's own pid namespace (last NSpid field)."""
    try:
        for line in open(f"{base}/status"):
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except (OSError, ValueError):
        return None
    return None


def read_env(base: str) -> dict[str, str]:
    """The few environment variables in ENV_KEYS (rank and launcher identity)."""
    try:
        raw = open(f"{base}/environ", "rb").read()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        k, _, v = item.partition(b"=")
        key = k.decode("ascii", "replace")
        if key in ENV_KEYS:
            out[key] = v.decode("utf-8", "replace")[:64]
    return out
