"""Headless daemon: `iolens record --daemon --config /etc/iolens/iolens.toml`.

Records the whole system (or a cgroup) forever into a hive-partitioned tree shared by many
hosts, `ROOT/host=<h>/date=<d>/<table>/part-N.parquet`, with rotation, retention by age and
total size (only this host's files are ever deleted), a small JSON status file rewritten every
interval, and a clean restart after a crash: a new run first compacts the segment the dead run
left open (its write-ahead streams, committed up to the last interval) into Parquet files and
counts it in that run's metadata, then continues the part numbering and writes its own
`capture-<start>-<pid>.json`, never touching earlier complete files.

The config is TOML; every key is optional except `root`:

    root = "/shared/iolens"          # capture tree (NFS, object-store mount...)
    interval_s = 1.0
    rotate_s = 60.0                  # seconds per Parquet segment (a crash loses one interval)
    fsync = "rotate"                 # interval | rotate | never (see docs/reliability.md)
    retention_hours = 72.0           # delete this host's segments older than this
    max_total_gb = 50.0              # ... and the oldest ones beyond this much for this host
    status_file = "/run/iolens/status.json"
    metrics = ":9464"                # optional Prometheus endpoint
    cgroup = "/sys/fs/cgroup/unified/kubepods"   # optional: only this cgroup
    slow_ms = 10.0
    disable = ["gpu"]                # optional probes not to load
    redact = false
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from iolens.collector.wal import FSYNC_POLICIES


class ConfigError(ValueError):
    """A config file that cannot be used; one line for the user."""


@dataclass
class DaemonConfig:
    root: str
    interval_s: float = 1.0
    rotate_s: float = 60.0
    retention_hours: float = 72.0
    max_total_gb: float = 50.0
    status_file: str = "/run/iolens/status.json"
    metrics: str | None = None
    cgroup: str | None = None
    slow_ms: float = 10.0
    disable: list[str] = field(default_factory=list)
    redact: bool = False
    fsync: str = "rotate"


def load_config(path: str) -> DaemonConfig:
    """Parse and validate a daemon config; raises ConfigError naming the file and key."""
    try:
        raw = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    known = {f.name: f for f in fields(DaemonConfig)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s): {', '.join(unknown)}")
    if "root" not in raw:
        raise ConfigError(f"{path}: `root` (the capture tree) is required")
    for key in ("interval_s", "rotate_s", "retention_hours", "max_total_gb", "slow_ms"):
        if key in raw:
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ConfigError(f"{path}: {key} must be a positive number, got {v!r}")
            raw[key] = float(v)
    for key in ("root", "status_file", "metrics", "cgroup", "fsync"):
        if key in raw and not isinstance(raw[key], str):
            raise ConfigError(f"{path}: {key} must be a string")
    if raw.get("fsync", "rotate") not in FSYNC_POLICIES:
        raise ConfigError(f"{path}: fsync must be one of {', '.join(FSYNC_POLICIES)}, "
                          f"got {raw['fsync']!r}")
    if "disable" in raw and not (isinstance(raw["disable"], list)
                                 and all(isinstance(x, str) for x in raw["disable"])):
        raise ConfigError(f"{path}: disable must be a list of probe names")
    return DaemonConfig(**raw)


# --- retention ------------------------------------------------------------------------------

def plan_retention(files: list[tuple[str, float, int]], now: float, max_age_s: float,
                   max_bytes: int) -> list[str]:
    """Which complete segment files to delete: older than `max_age_s`, then the oldest until
    the rest fits in `max_bytes`. In: (path, mtime, size) of one host's files. Pure."""
    keep: list[tuple[str, float, int]] = []
    drop: list[str] = []
    for f in sorted(files, key=lambda f: f[1]):
        (drop.append(f[0]) if now - f[1] > max_age_s else keep.append(f))
    total = sum(f[2] for f in keep)
    for path, _mtime, size in keep:  # oldest first
        if total <= max_bytes:
            break
        drop.append(path)
        total -= size
    return drop


def host_files(root: Path, host: str) -> list[tuple[str, float, int]]:
    """Complete segments of this host under a hive tree (never another host's, never .tmp)."""
    out = []
    base = root / f"host={host}"
    for p in base.rglob("part-*.parquet"):
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((str(p), st.st_mtime, st.st_size))
    return out


def apply_retention(root: Path, host: str, max_age_s: float, max_bytes: int,
                    now: float | None = None) -> list[str]:
    """Delete what `plan_retention` says, then empty date/table directories. Returns paths."""
    doomed = plan_retention(host_files(root, host), now or time.time(), max_age_s, max_bytes)
    for p in doomed:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
    base = root / f"host={host}"
    for d in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        try:
            d.rmdir()  # only succeeds when empty
        except OSError:
            pass
    return doomed


# --- status file ----------------------------------------------------------------------------

def write_status(path: str, status: dict) -> None:
    """Atomically replace the status file (readable by monitoring: 0644, no secrets)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(status, f, indent=1, sort_keys=True)
    os.chmod(tmp, 0o644)
    os.replace(tmp, p)


def config_summary(cfg: DaemonConfig) -> dict:
    return asdict(cfg)
