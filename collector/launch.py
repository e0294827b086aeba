"""Start a command so that it is traced from its first instruction.

The command runs under `bash -c 'read -r _ <&R; exec R<&-; exec "$@"'` (R: the gate pipe): the shell blocks on a pipe until
the collector thread has put its pid into the kernel's target map, then execs the command
(same pid), so every syscall of the command and of its descendants is seen. Its stdin, stdout
and stderr are the user's, untouched.
"""

from __future__ import annotations

import os
import subprocess
from typing import Protocol


class _Follows(Protocol):
    def follow(self, pid: int, timeout: float = ...) -> bool: ...


def _shell() -> str:
    return "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"


class LaunchError(RuntimeError):
    pass


def launch_after(command: list[str], collector: _Follows, ready_timeout: float = 120.0,
                 output=None) -> subprocess.Popen:
    """Spawn `command` held at a gate, make `collector` follow it, then open the gate.

    `output`: a file for the command's stdout and stderr (a full-screen UI owns the terminal);
    None leaves the user's terminal to the command.
    """
    ready = getattr(collector, "ready", None)
    if ready is not None and not ready.wait(ready_timeout):
        raise LaunchError("probes did not start in time")
    if getattr(collector, "error", None) is not None:
        raise LaunchError(str(collector.error))
    r, w = os.pipe()
    try:
        # bash (not dash) accepts any fd number in redirections.
        child = subprocess.Popen([_shell(), "-c", f'read -r _ <&{r}; exec {r}<&-; exec "$@"',
                                  "iolens-launch", *command], pass_fds=[r], close_fds=True,
                                 **({"stdin": subprocess.DEVNULL, "stdout": output,
                                     "stderr": output} if output is not None else {}))
    except OSError as exc:
        os.close(r)
        os.close(w)
        raise LaunchError(f"cannot start {command[0]}: {exc.strerror}") from None
    os.close(r)
    try:
        collector.follow(child.pid)
        os.write(w, b"go\n")
    finally:
        os.close(w)
    return child
