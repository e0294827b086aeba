"""cgroup / container / namespace parsing (collector/procinfo.py) on fake /proc files."""

from __future__ import annotations

import os

import pytest

from iolens.collector import procinfo as P

CID = "3f4e1c0d9b8a7f6e5d4c3b2a190817263544536271809a8b7c6d5e4f3a2b1c0d"
UID = "0e6f3c1a-2b4d-4e5f-8a9b-0c1d2e3f4a5b"

CASES = [
    # (cgroup path, runtime, container id, pod uid)
    (f"/docker/{CID}", "docker", CID, None),
    (f"/system.slice/docker-{CID}.scope", "docker", CID, None),
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID.replace('-', '_')}"
     f".slice/cri-containerd-{CID}.scope", "containerd", CID, UID),
    (f"/kubepods/besteffort/pod{UID}/{CID}", "kubernetes", CID, UID),
    (f"/kubepods/burstable/pod{UID}", "kubernetes", None, UID),
    (f"/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice/crio-{CID}.scope", "cri-o",
     CID, UID),
    (f"/machine.slice/libpod-{CID}.scope/container", "podman", CID, None),
    (f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{CID}.scope", "podman",
     CID, None),
    (f"/libpod_parent/libpod-{CID}", "podman", CID, None),
    (f"/system.slice/containerd.service/k8s.io/{CID}", None, None, None),  # not a pattern
    (f"/machine.slice/libpod-conmon-{CID}.scope", None, None, None),       # the monitor
    ("/user.slice/user-0.slice/session-3.scope", None, None, None),
    ("/", None, None, None),
]


@pytest.mark.parametrize("path,runtime,cid,pod", CASES)
def test_parse_cgroup_path(path, runtime, cid, pod):
    ident = P.parse_cgroup_path(path)
    assert (ident.runtime, ident.container_id, ident.pod_uid) == (runtime, cid, pod)
    assert P.container_id(path) == (cid or (f"pod:{pod}" if pod else None))


def fake_proc(tmp_path, cgroup: str, status: str = "", environ: bytes = b"",
              maps: str | None = None):
    base = tmp_path / "proc" / "123"
    base.mkdir(parents=True)
    (base / "cgroup").write_text(cgroup)
    (base / "status").write_text(status)
    (base / "environ").write_bytes(environ)
    if maps is not None:
        (base / "maps").write_text(maps)
    return str(base)


def test_hybrid_host_v2_root_reports_v1_path_and_root_id(tmp_path):
    unified = tmp_path / "unified"
    unified.mkdir()
    base = fake_proc(tmp_path, "9:name=systemd:/\n4:memory:/process_api/7a11\n0::/\n")
    path, cgid, cid = P.read_cgroup(base, cg2_root=str(unified))
    assert (path, cgid, cid) == ("/process_api/7a11", os.stat(unified).st_ino, None)


def test_v2_child_cgroup_path_and_id(tmp_path):
    root = tmp_path / "cg2"
    (root / "iolens_test_1").mkdir(parents=True)
    base = fake_proc(tmp_path, "4:memory:/other\n0::/iolens_test_1\n")
    path, cgid, cid = P.read_cgroup(base, cg2_root=str(root))
    assert path == "/iolens_test_1" and cgid == os.stat(root / "iolens_test_1").st_ino


def test_container_found_on_a_v1_line(tmp_path):
    base = fake_proc(tmp_path, f"4:memory:/docker/{CID}\n0::/\n")
    assert P.read_cgroup(base, cg2_root=str(tmp_path))[2] == CID


def test_unreadable_process_gives_nones(tmp_path):
    gone = str(tmp_path / "proc" / "999")
    assert P.read_cgroup(gone) == (None, None, None)
    assert P.read_nspid(gone) is None and P.read_tgid(gone) is None
    assert P.read_env(gone) == {} and P.uses_torch(gone) is None


def test_nspid_tgid_env_and_torch(tmp_path):
    base = fake_proc(tmp_path, "0::/\n", status="Name:\tx\nTgid:\t123\nNSpid:\t123\t45\t7\n",
                     environ=b"HOME=/root\0RANK=3\0WORLD_SIZE=8\0SECRET=x\0LOCAL_RANK=" +
                     b"1" * 100 + b"\0",
                     maps="7f00-7f01 r-xp 0 08:01 1 /venv/torch/lib/libtorch_cpu.so\n")
    assert P.read_nspid(base) == 7 and P.read_tgid(base) == 123
    env = P.read_env(base)
    assert env == {"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1" * 64}
    assert P.uses_torch(base) is True


def test_cgroup2_mount_from_mountinfo(tmp_path):
    mi = tmp_path / "mountinfo"
    mi.write_text("30 23 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
                  "31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw\n")
    assert P.cgroup2_mount(str(mi)) == "/sys/fs/cgroup/unified"
    mi.write_text("")
    assert P.cgroup2_mount(str(mi)) is None
