"""Rule thresholds: defaults from `thresholds.toml` beside this module, user overrides.

In: an optional dict or TOML file of overrides. Out: a plain dict name -> number.
Unknown keys and non-numbers are refused (`ThresholdError`, one line) so a typo never silently
leaves a default in force.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None  # type: ignore[assignment]

DEFAULTS_FILE = Path(__file__).with_name("thresholds.toml")


class ThresholdError(ValueError):
    """A thresholds file or override is invalid; the message is one line."""


def _parse(text: str, where: str) -> dict[str, Any]:
    if tomllib is None:
        raise ThresholdError("reading TOML needs Python 3.11 (tomllib)")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ThresholdError(f"{where}: not valid TOML: {exc}") from None
    return data.get("thresholds", data)


_DEFAULTS: dict[str, float] | None = None


def defaults() -> dict[str, float]:
    """The shipped defaults (a fresh copy)."""
    global _DEFAULTS
    if _DEFAULTS is None:
        _DEFAULTS = {k: float(v) for k, v in
                     _parse(DEFAULTS_FILE.read_text(), str(DEFAULTS_FILE)).items()}
    return dict(_DEFAULTS)


def merge(overrides: dict[str, Any] | None, where: str = "thresholds") -> dict[str, float]:
    """Defaults updated with `overrides`; raises ThresholdError on unknown keys or bad values."""
    out = defaults()
    for key, value in (overrides or {}).items():
        if key not in out:
            raise ThresholdError(f"{where}: unknown threshold {key!r} "
                                 f"(known: {', '.join(sorted(out))})")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ThresholdError(f"{where}: threshold {key!r} must be a number, got {value!r}")
        out[key] = float(value)
    return out


def load(path: str | os.PathLike[str]) -> dict[str, float]:
    """Defaults overridden by the TOML file at `path`."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ThresholdError(f"cannot read config {p}: {exc.strerror or exc}") from None
    return merge(_parse(text, str(p)), str(p))
