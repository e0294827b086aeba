"""Messages the worker threads post to the app (the only way data reaches the widgets).

`App.post_message` is thread-safe; widgets are only touched by the handlers, on the UI thread.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from iolens.tui.model import Snapshot


class SnapshotReady(Message):
    """A new frame was derived from the window (one per interval, or after a seek)."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class SourceStatus(Message):
    """What the source is doing before data arrives ("compiling probes…")."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class SourceWarning(Message):
    """Something the user should know about the data (skipped files, an abrupt end)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class SourceFailed(Message):
    """The source could not start or broke; `text` is one line for the user."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class VerdictsReady(Message):
    """The rules ran on the sliding window of frame `seq`; `error` set when they raised."""

    def __init__(self, seq: int, findings: list[Any], error: str | None = None) -> None:
        super().__init__()
        self.seq = seq
        self.findings = findings
        self.error = error
