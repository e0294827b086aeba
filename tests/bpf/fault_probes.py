"""Optional probes that the kernel refuses, for the fault tests (loaded via record_with.py).

`MissingTracepoint` attaches to a tracepoint that does not exist; `VerifierRefused` passes a
scalar where the verifier wants a map pointer. Both must end up in `probes_skipped` with the
kernel's reason while the syscall probe records as usual.
"""

from __future__ import annotations

from pathlib import Path

PROBES_DIR = str(Path(__file__).resolve().parents[2] / "probes")


class _Refused:
    name = "refused"
    tables: tuple[str, ...] = ()
    TEXT = ""

    def __init__(self, _opts) -> None:
        self.prog = None

    def start(self) -> None:
        from iolens.probes._bcc import Program

        self.prog = Program(self.TEXT, [], PROBES_DIR)

    def poll(self) -> None:
        pass

    def drain(self, _ctx) -> dict:
        return {}

    def close(self) -> None:
        if self.prog is not None:
            self.prog.close()


class MissingTracepoint(_Refused):
    name = "test_missing_tracepoint"
    TEXT = "TRACEPOINT_PROBE(iolens_nonexistent, no_such_event) { return 0; }"


class VerifierRefused(_Refused):
    name = "test_verifier_refused"
    TEXT = """
TRACEPOINT_PROBE(sched, sched_process_fork) {
    u32 k = 0;
    void *m = (void *)(long)args->child_pid;   /* a scalar, not a map: the verifier says no */
    u32 *v = bpf_map_lookup_elem(m, &k);
    return v ? *v : 0;
}
"""
