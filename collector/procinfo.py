"""Reading a process's cgroup, container, namespace pid and a few environment variables.

In: a /proc/PID directory path (tests pass a fake directory). Out: plain values, None when
unreadable: the process may have exited already, which is normal for short-lived workers.

Container attribution works from the cgroup path alone (nothing is asked of a runtime):

====================  ==========================================================  =========
runtime               cgroup path shapes (v1 or v2, cgroupfs or systemd driver)   id
====================  ==========================================================  =========
docker                ``/docker/<id>``, ``/system.slice/docker-<id>.scope``       64 hex
containerd (k8s)      ``.../cri-containerd-<id>.scope``, ``/kubepods/.../<id>``   64 hex
cri-o                 ``.../crio-<id>.scope`` (not ``crio-conmon-``)              64 hex
podman                ``.../libpod-<id>.scope``, ``/libpod_parent/libpod-<id>``   64 hex
kubernetes pod        ``.../pod<uid>/...``, ``kubepods-*-pod<uid_with_underscores>``  uuid
====================  ==========================================================  =========

`procs.container_id` holds the container id when there is one, else ``pod:<uid>`` for a
process of a pod without a parsable container (e.g. a pause/sandbox cgroup), else null.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

#: environment variables kept (roles, ranks, GPU binding); nothing else of the environment
#: is read, and each value is cut at 64 characters.
ENV_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK",
            "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "OMPI_COMM_WORLD_RANK",
            "PMI_RANK", "SLURM_PROCID", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")

_HEX64 = r"([0-9a-f]{64})"
#: (runtime, pattern) tried in order on each path component sequence; conmon scopes (the
#: runtime's monitor process, not the container) are excluded by the negative lookaheads.
_CONTAINER_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("containerd", re.compile(r"cri-containerd[-:]" + _HEX64)),
    ("cri-o", re.compile(r"crio-(?!conmon-)" + _HEX64)),
    ("podman", re.compile(r"libpod-(?!conmon-)" + _HEX64)),
    ("docker", re.compile(r"(?:^|/)docker[-/]" + _HEX64)),
    ("containerd", re.compile(r"(?:^|/)containerd[-/:]" + _HEX64)),
    # cgroupfs-driver kubelet: /kubepods/<qos>/pod<uid>/<id> (runtime not named in the path)
    ("kubernetes", re.compile(r"/kubepods[^/]*(?:/[^/]+)*?/pod[0-9a-f_-]{36}/" + _HEX64)),
)
_POD = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")


@dataclass(frozen=True)
class CgroupIdentity:
    """What a cgroup path says about the container a process runs in."""

    runtime: str | None = None       # docker, containerd, cri-o, podman, kubernetes
    container_id: str | None = None  # 64 hex digits
    pod_uid: str | None = None       # kubernetes pod uid (dashes)

    @property
    def label(self) -> str | None:
        """The value stored in `procs.container_id`."""
        if self.container_id:
            return self.container_id
        return f"pod:{self.pod_uid}" if self.pod_uid else None


def parse_cgroup_path(path: str) -> CgroupIdentity:
    """Container runtime, id and pod uid found in one cgroup path (all None if none)."""
    if not path:
        return CgroupIdentity()
    runtime = cid = None
    for name, pat in _CONTAINER_PATTERNS:
        m = pat.search(path)
        if m:
            runtime, cid = name, m.group(1)
            break
    pm = _POD.search(path)
    pod = pm.group(1).replace("_", "-") if pm else None
    if runtime is None and pod:
        runtime = "kubernetes"
    return CgroupIdentity(runtime, cid, pod)


def container_id(cgroup_path: str) -> str | None:
    """Container id (docker/containerd/cri-o/podman) or 'pod:<uid>' parsed from a cgroup path."""
    return parse_cgroup_path(cgroup_path).label


def parse_proc_cgroup(text: str) -> tuple[str | None, str | None, CgroupIdentity]:
    """/proc/PID/cgroup text -> (v2 path or None, first non-root v1 path or None, identity).

    The identity comes from the first line (v2 first) whose path names a container or pod.
    """
    v2 = v1 = None
    ident = CgroupIdentity()
    lines = [ln for ln in text.splitlines() if ln.count(":") >= 2]
    for ln in lines:
        hid, _, rest = ln.partition(":")
        path = rest.partition(":")[2]
        if hid == "0" and rest.startswith(":"):
            v2 = path
        elif v1 is None and path not in ("/", ""):
            v1 = path
    for ln in sorted(lines, key=lambda ln: not ln.startswith("0::")):
        cand = parse_cgroup_path(ln.split(":", 2)[2])
        if cand.label:
            ident = cand
            break
    return v2, v1, ident


_CG2_MOUNT: list[str | None] = []


def cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup or /sys/fs/cgroup/unified)."""
    try:
        for line in open(mountinfo):
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == "cgroup2":
                return left.split()[4]
    except OSError:
        pass
    return None


def _default_cg2_root() -> str | None:
    if not _CG2_MOUNT:
        _CG2_MOUNT.append(cgroup2_mount())
    return _CG2_MOUNT[0]


def read_cgroup(base: str, cg2_root: str | None = None
                ) -> tuple[str | None, int | None, str | None]:
    """(cgroup path, cgroup v2 id, container id) of /proc/PID at `base`.

    The path is the v2 one (`0::/path`); on hybrid hosts where that is the root, the first
    non-root v1 hierarchy's path is reported instead (where older runtimes put containers).
    The id is always the v2 id, as `bpf_get_current_cgroup_id()` returns it: the inode of the
    process's directory under the cgroup2 mount (`cg2_root`; found in mountinfo by default).
    """
    try:
        text = open(f"{base}/cgroup").read()
    except OSError:
        return None, None, None
    v2, v1, ident = parse_proc_cgroup(text)
    path = v2 if v2 not in (None, "/") else (v1 or v2)
    cgid = None
    root = cg2_root if cg2_root is not None else _default_cg2_root()
    if v2 is not None and root:
        try:
            cgid = os.stat(root.rstrip("/") + v2).st_ino
        except OSError:
            cgid = None
    return path, cgid, ident.label


def read_nspid(base: str) -> int | None:
    """The pid as seen inside the process's own (innermost) pid namespace: last NSpid field."""
    try:
        for line in open(f"{base}/status"):
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def read_tgid(base: str) -> int | None:
    """Tgid of /proc/ID (differs from ID when ID is a thread); None if unreadable."""
    try:
        for line in open(f"{base}/status"):
            if line.startswith("Tgid:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def read_env(base: str) -> dict[str, str]:
    """The few environment variables in ENV_KEYS (rank, launcher identity, GPU binding).

    This is the environment the process was exec'd with (what /proc shows); later changes
    made by the program itself are not visible, but children started after them are.
    """
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


def uses_torch(base: str) -> bool | None:
    """Whether PyTorch's native library is mapped into the process (None: unreadable)."""
    try:
        with open(f"{base}/maps", "rb") as f:
            for line in f:
                if b"libtorch" in line:
                    return True
    except OSError:
        return None
    return False
