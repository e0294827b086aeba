"""Screens over the dashboard: the help list of keys and the drill-down of one row.

In: the app's KEYS table (help) or a `Snapshot` and the selected row's identity (drill).
The drill screen re-derives its small tables from each new snapshot the app hands it.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Static

from iolens.tui import views
from iolens.tui.model import ProcInfo, Snapshot, file_table, peer_table, process_table
from iolens.tui.widgets.panels import LatencyHistogram, histogram_text
from iolens.tui.widgets.tables import HotTable

KEY_NAMES = {"question_mark": "?", "slash": "/", "space": "Space", "plus": "+", "minus": "-",
             "left": "←", "right": "→", "home": "Home", "end": "End", "enter": "Enter",
             "escape": "Esc"}


def help_text(keys: list[tuple[str, str, str, bool]]) -> Text:
    """Two columns, key and what it does, for every key plus cursor and mouse use."""
    rows = [(KEY_NAMES.get(k, k), desc) for k, _a, desc, _s in keys]
    rows += [("↑ ↓ PgUp PgDn", "Move the row cursor"),
             ("Esc", "Drill-down: back to the dashboard"),
             ("mouse", "Click a tab; click a header to sort; click a row twice to drill")]
    width = max(len(k) for k, _ in rows) + 2
    t = Text()
    for i, (key, desc) in enumerate(rows):
        t.append(("\n" if i else "") + f"{key:<{width}}", style="bold cyan")
        t.append(desc)
    return t


class HelpScreen(ModalScreen[None]):
    """Every key of the dashboard (generated from the app's KEYS list) plus the mouse."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, keys: list[tuple[str, str, str, bool]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text("iolens top — keys", style="bold"), id="help-title")
            yield Static(help_text(self.keys), id="help-keys")
            yield Static(Text("Esc, q or ? closes this help", style="dim"))

    def action_dismiss(self, result: Any = None) -> None:  # type: ignore[override]
        self.dismiss(None)


class DrillScreen(Screen[None]):
    """One process (its files, peers and a latency histogram) or one file/peer (its
    processes and histogram). Escape goes back."""

    BINDINGS = [Binding("escape", "back", "Back"), Binding("q", "app.quit", "Quit")]

    def __init__(self, kind: str, key: Any, snap: Snapshot) -> None:
        super().__init__()
        self.kind = kind   # pid | file | peer
        self.key = key
        self.snap = snap
        self._hist_rows: dict[str, pa.Table] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="drill-title")
        with Horizontal(id="drill-body"):
            with Vertical(id="drill-tables"):
                if self.kind == "pid":
                    yield HotTable(views.FILES, id="drill-files")
                    yield HotTable(views.PEERS, id="drill-peers")
                else:
                    yield HotTable(views.PROCESSES, id="drill-procs")
            yield LatencyHistogram(id="drill-hist")
        yield Footer()

    def on_mount(self) -> None:
        self._layout()
        self.show(self.snap)
        first = self.query(HotTable).first()
        first.focus()

    def show(self, snap: Snapshot) -> None:
        """Re-derive this screen's tables from a new frame."""
        self.snap = snap
        io = snap.recent_io
        w = snap.rate_window_s
        if self.kind == "pid":
            mine = io.filter(pc.equal(io.column("pid"), pa.scalar(self.key, pa.int32())))
            info = snap.procs.get(self.key, ProcInfo(self.key))
            comm = info.comm or (mine.column("comm")[0].as_py() if mine.num_rows else "?")
            label = f" [{info.label}]" if info.label else ""
            cmd = f" — {info.cmdline}" if info.cmdline else ""
            self._title(f"pid {self.key} {comm}{label}{cmd}")
            self._fill("drill-files", file_table(mine, w, snap.file_group))
            self._fill("drill-peers", peer_table(mine, w))
        else:
            mine = io.filter(pc.and_(pc.equal(io.column("kind"),
                                              "file" if self.kind == "file" else "socket"),
                                     pc.equal(io.column("resource"), str(self.key))))
            self._title(f"{self.kind} {self.key}")
            t = process_table(mine, w)
            self._fill("drill-procs", t)
        self._update_hist()

    def _layout(self) -> None:
        # Narrow terminals stack the histogram under the tables instead of beside them.
        self.query_one("#drill-body").set_class(self.app.size.width < 120, "narrow")

    def on_resize(self) -> None:
        self._layout()

    def _title(self, text: str) -> None:
        self.query_one("#drill-title", Static).update(
            Text.assemble((" drill-down ", "bold reverse"), " ", (text, "bold"),
                          ("   Esc: back", "dim")))

    def _fill(self, wid: str, t: pa.Table) -> None:
        tbl = self.query_one(f"#{wid}", HotTable)
        self._hist_rows[wid] = t
        if tbl.view.name == "processes":
            t = t.append_column("name", t.column("comm"))
            rows, _ = views.table_rows(t.append_column("key", pc.cast(t.column("pid"),
                                                                      pa.string())),
                                       tbl.view, tbl.sort_col, tbl.descending)
        else:
            rows, _ = views.table_rows(t, tbl.view, tbl.sort_col, tbl.descending)
        tbl.show_rows(rows)

    def _update_hist(self) -> None:
        tbl = self.focused if isinstance(self.focused, HotTable) else None
        tbl = tbl or self.query(HotTable).first()
        row = tbl.selected()
        hist_w = self.query_one("#drill-hist", LatencyHistogram)
        if row is None:
            hist_w.update(histogram_text([], title="latency"))
            return
        t = self._hist_rows.get(str(tbl.id))
        if tbl.view.name == "processes":
            hist = views.hist_of(t, "pid", int(row["pid"])) if t is not None else []
        else:
            hist = views.hist_of(t, "key", row["key"]) if t is not None else []
        width = max(10, (hist_w.size.width or 40) - 22)
        hist_w.update(histogram_text(hist, width, f"latency of {row['_key']}"))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._update_hist()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()

    def on_descendant_focus(self, event: Any) -> None:
        self._update_hist()

    def on_hot_table_sort_requested(self, event: HotTable.SortRequested) -> None:
        event.stop()
        event.table.set_sort(event.column)
        self.show(self.snap)

    def action_back(self) -> None:
        self.dismiss(None)
