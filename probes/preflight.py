"""Can this machine trace? The checks behind `iolens doctor` and the bpf test tier.

Each check returns a `Check(name, ok, detail, fix)`; `check()` gathers them into
`Capabilities`. Hook kinds are tried by loading a tiny program, never inferred from BCC's
`support_*()` helpers (they say True where the kernel then refuses the load).

Seams for tests: every filesystem location is a parameter with the real default, and
`bcc_import` can be replaced, so each failure (not root, no bcc, no headers, no tracefs)
can be simulated without changing the machine.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TRACEFS_CANDIDATES = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
SETUP_HINT = "run `sudo .ci/setup.sh` (or `make setup`) from the iolens checkout"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


@dataclass
class Capabilities:
    checks: list[Check] = field(default_factory=list)

    @property
    def can_trace(self) -> bool:
        return all(c.ok for c in self.checks if c.required)

    @property
    def problems(self) -> list[str]:
        return [f"{c.name}: {c.detail}" + (f" — fix: {c.fix}" if c.fix else "")
                for c in self.checks if c.required and not c.ok]


def tracefs_root(candidates: tuple[Path, ...] = TRACEFS_CANDIDATES) -> Path | None:
    """The mounted tracefs (or debugfs tracing dir), if any."""
    for c in candidates:
        if (c / "events").is_dir():
            return c
    return None


def check_root(euid: int | None = None) -> Check:
    euid = os.geteuid() if euid is None else euid
    if euid == 0:
        return Check("privileges", True, "running as root")
    caps = _cap_eff()
    # CAP_BPF (39) + CAP_PERFMON (38) suffice for tracing on 5.8+.
    if caps is not None and caps & (1 << 39) and caps & (1 << 38):
        return Check("privileges", True, "CAP_BPF and CAP_PERFMON present")
    return Check("privileges", False, f"not root (euid {euid}) and no CAP_BPF+CAP_PERFMON",
                 "run with sudo (capture analysis and replay need no root)")


def _cap_eff() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, ValueError):
        return None
    return None


def check_bcc(bcc_import: Callable[[str], object] = importlib.import_module) -> Check:
    try:
        mod = bcc_import("bcc")
    except ImportError as exc:
        return Check("bcc", False, f"python module bcc not importable ({exc})",
                     "apt install python3-bpfcc, then link it into the venv: " + SETUP_HINT)
    if not hasattr(mod, "BPF"):
        return Check("bcc", False, "the `bcc` module found is not BCC (PyPI's unrelated `bcc`?)",
                     "pip uninstall bcc; apt install python3-bpfcc; " + SETUP_HINT)
    return Check("bcc", True, f"BCC at {getattr(mod, '__file__', '?')}")


def check_headers(release: str | None = None, modules: Path = Path("/lib/modules")) -> Check:
    release = release or os.uname().release
    build = modules / release / "build"
    if (build / "include").is_dir():
        target = os.path.realpath(build)
        warn = "" if release in target else f" (linked to {os.path.basename(target)}: nearest headers)"
        return Check("kernel headers", True, f"{build}{warn}")
    return Check("kernel headers", False, f"no headers at {build}",
                 f"apt install linux-headers-{release}, or " + SETUP_HINT)


def check_tracefs(candidates: tuple[Path, ...] = TRACEFS_CANDIDATES) -> Check:
    root = tracefs_root(candidates)
    if root is None:
        return Check("tracefs", False, "tracefs not mounted",
                     "mount -t tracefs nodev /sys/kernel/tracing")
    return Check("tracefs", True, str(root))


def check_btf(path: Path = Path("/sys/kernel/btf/vmlinux")) -> Check:
    ok = path.exists()
    return Check("BTF", ok, str(path) if ok else "no /sys/kernel/btf/vmlinux",
                 "" if ok else "task storage needs BTF; iolens falls back to a hash map",
                 required=False)


# Tiny programs, one per hook kind, tried for real by `doctor`.
HOOK_TESTS = {
    "tracepoint": "TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { return 0; }",
    "raw_tracepoint": "RAW_TRACEPOINT_PROBE(sys_enter) { return 0; }",
    "task_storage": ("BPF_TASK_STORAGE(s, u64);\nTRACEPOINT_PROBE(syscalls, sys_enter_getppid) {"
                     " u64 *v = s.task_storage_get(bpf_get_current_task_btf(), 0,"
                     " BPF_LOCAL_STORAGE_GET_F_CREATE); if (v) *v = 1; return 0; }"),
    "ringbuf": ("BPF_RINGBUF_OUTPUT(rb, 8);\nTRACEPOINT_PROBE(syscalls, sys_enter_getppid) {"
                " u64 x = 1; rb.ringbuf_output(&x, sizeof(x), 0); return 0; }"),
    "block_tracepoints": "TRACEPOINT_PROBE(block, block_rq_issue) { return 0; }",
    "kprobe": "int kprobe__vfs_read(void *ctx) { return 0; }",
    "fentry": "KFUNC_PROBE(vfs_read) { return 0; }",
}
#: hooks iolens needs; the rest are optional and only reported.
REQUIRED_HOOKS = ("tracepoint", "ringbuf")


def check_hooks() -> list[Check]:
    """Try each hook kind (root + bcc + headers needed)."""
    from iolens.probes._bcc import try_load

    out = []
    for name, text in HOOK_TESTS.items():
        reason = try_load(text)
        required = name in REQUIRED_HOOKS
        detail = "loads" if reason is None else f"refused: {reason}"
        fix = "" if reason is None else ("iolens cannot trace without it" if required
                                         else "optional; iolens uses tracepoints instead")
        out.append(Check(f"hook {name}", reason is None, detail, fix, required=required))
    return out


def check(quick: bool = False) -> Capabilities:
    """All checks; `quick` skips trying hooks beyond a single tracepoint."""
    caps = Capabilities([check_root(), check_bcc(), check_headers(), check_tracefs(), check_btf()])
    if not caps.can_trace:
        return caps
    if quick:
        from iolens.probes._bcc import try_load

        reason = try_load(HOOK_TESTS["tracepoint"])
        caps.checks.append(Check("hook tracepoint", reason is None, reason or "loads"))
    else:
        caps.checks.extend(check_hooks())
    return caps
