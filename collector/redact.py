"""--redact: paths and command-line arguments replaced by stable keyed hashes.

A path keeps its depth and extension so analysis still sees "many files under one root":
`/data/imagenet/n0144/x.JPEG` -> `/h:3f2a…/h:9c01…/h:77aa…/h:0b1e….JPEG`. The key is random
per capture (not stored), so hashes cannot be reversed by dictionary attacks across captures.
Peers (`tcp:IP:PORT`) are kept: they are what network findings are about.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import pyarrow as pa

#: columns that hold paths in any table (peers like tcp:IP:PORT pass through `path` unchanged)
PATH_COLUMNS = ("resource", "exe")


class Redactor:
    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or os.urandom(16)

    def _h(self, text: str) -> str:
        return "h:" + hmac.new(self.key, text.encode("utf-8", "surrogatepass"),
                               hashlib.sha256).hexdigest()[:12]

    def path(self, p: str | None) -> str | None:
        if not p or not p.startswith("/"):
            return p
        parts = p.split("/")
        out = []
        for part in parts[1:]:
            stem, dot, ext = part.rpartition(".")
            out.append(self._h(stem) + dot + ext if dot and stem and len(ext) <= 12
                       else self._h(part))
        return "/" + "/".join(out)

    def cmdline(self, c: str | None) -> str | None:
        if not c:
            return c
        argv = c.split(" ")
        return " ".join([os.path.basename(argv[0])] + [self._h(a) for a in argv[1:]])

    def argv(self, argv: list[str] | None) -> list[str] | None:
        """A command as a list: program basename kept, every argument hashed."""
        if not argv:
            return argv
        return [os.path.basename(argv[0])] + [self._h(a) for a in argv[1:]]

    def table(self, t: pa.Table) -> pa.Table:
        """Hash the path columns of a table (used for the optional probes' tables)."""
        for name in PATH_COLUMNS:
            i = t.schema.get_field_index(name)
            if i >= 0:
                vals = [self.path(v) for v in t.column(i).to_pylist()]
                t = t.set_column(i, t.schema.field(i), pa.array(vals, t.schema.field(i).type))
        return t
