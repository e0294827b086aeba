"""What a user asks the collector for (record, top live, daemon): one validated dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RecordOptions:
    """Collector options. Every value that reaches BPF is an int validated here or a map
    entry; no string from the user is ever pasted into C text.

    Attributes:
        pids: trace these processes and their descendants (empty = see `command`/system).
        command: start this command (argv) stopped, attach, then let it run.
        cgroup: trace only processes in this cgroup v2 directory.
        interval_s: aggregation interval.
        per_thread: aggregate per thread (tid) instead of per process.
        slow_ms: ops slower than this also go to the per-event stream (`events`, type slow).
        max_keys: file-grain keys of the in-kernel aggregation map per interval; ops of
            files beyond it are folded into directory (then process) keys.
        probes: probe names to enable (None = all that load); `disable` removes some.
        latency: measure per-op latency (False = cheapest mode: exit-only counting).
        redact: hash paths and command-line arguments in the capture.
        print_bpf: print the final BPF programs and exit.
        all_events: keep every successful open and close in the `events` table too.
        role_map: TOML file of extra role / file-class rules (see docs/roles.md).
    """

    pids: list[int] = field(default_factory=list)
    command: list[str] | None = None
    cgroup: str | None = None
    interval_s: float = 1.0
    per_thread: bool = False
    slow_ms: float = 10.0
    max_keys: int = 16384
    probes: list[str] | None = None
    disable: list[str] = field(default_factory=list)
    latency: bool = True
    redact: bool = False
    print_bpf: bool = False
    all_events: bool = False  # keep every open/close in the events table (default: failed opens)
    role_map: str | None = None
