"""`HotTable`: a DataTable showing one `View`'s rows, keeping the cursor across refreshes.

In: row dicts from `iolens.tui.views` (already filtered, sorted and limited). Columns adapt
to the terminal width (narrow set below 120 columns). Clicking a header posts
`HotTable.SortRequested`; the app owns the sort state.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from iolens.tui import format as fmt
from iolens.tui.views import Col, View

WIDE_AT = 120


class HotTable(DataTable):
    """A sortable hot table (processes, files, peers, devices)."""

    class SortRequested(Message):
        def __init__(self, table: HotTable, column: str) -> None:
            super().__init__()
            self.table = table
            self.column = column

    def __init__(self, view: View, **kw: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)
        self.view = view
        self.sort_col = view.sort
        self.descending = True
        self._wide: bool | None = None
        self._widths: dict[str, int] = {}
        self._cols: list[Col] = []
        self.shown_rows: list[dict] = []

    def _ensure_columns(self) -> None:
        layout = self._layout()
        if layout == (self._wide, self._widths) and self.columns:
            self._relabel()
            return
        self._wide, self._widths = layout
        self.clear(columns=True)
        self._cols = self.view.columns(self._wide)
        for c in self._cols:
            self.add_column(self._label(c), width=self._widths[c.key], key=c.key)

    def _layout(self) -> tuple[bool, dict[str, int]]:
        """The column set and widths for the space this table has: the wide set when it
        fits (each cell is padded by 2, plus a scrollbar), and any width left over goes to
        the first text column (process name, path, endpoint)."""
        avail = self.size.width or self.app.size.width
        wide_need = sum((c.wide or c.width) + 2 for c in self.view.columns(True)) + 2
        wide = avail >= max(wide_need, WIDE_AT)
        cols = self.view.columns(wide)
        widths = {c.key: (c.wide or c.width) if wide else c.width for c in cols}
        spare = avail - (sum(w + 2 for w in widths.values()) + 2)
        text = next((c.key for c in cols if not c.numeric and c.key != "spark"), None)
        if text is not None and spare > 0:
            widths[text] += spare
        return wide, widths

    def on_resize(self) -> None:
        if self._wide is not None and self._layout() != (self._wide, self._widths):
            self.show_rows(self.shown_rows)

    def _label(self, c: Col) -> Text:
        mark = (" ↓" if self.descending else " ↑") if c.key == self.sort_col else ""
        return Text(c.label + mark, style="bold", justify="right" if c.numeric else "left")

    def _relabel(self) -> None:
        for c in self._cols:
            col = self.columns.get(c.key)  # type: ignore[call-overload]
            if col is not None:
                col.label = self._label(c)
        self._require_update_dimensions = True
        self.refresh()

    def _cell(self, c: Col, row: dict) -> Text:
        width = self._widths.get(c.key, c.width)
        v = row.get(c.key)
        if c.key == "spark":
            return Text(fmt.sparkline(v if v is not None else [], width), style="green")
        text = c.fmt(v)
        if c.key == "name" and len(text) > width and row.get("name_short"):
            text = row["name_short"]
        if not c.numeric:
            text = fmt.left_trim(text, width) if c.key == "key" else text[:width]
        return Text(text, justify="right" if c.numeric else "left")

    def show_rows(self, rows: list[dict]) -> None:
        """Replace the rows, keeping the highlighted row (by key) where it still exists."""
        self._ensure_columns()
        keep = None
        if self.row_count and 0 <= self.cursor_row < len(self.shown_rows):
            keep = self.shown_rows[self.cursor_row]["_key"]
        scroll_y = self.scroll_y
        self.clear()
        self.add_rows([[self._cell(c, r) for c in self._cols] for r in rows])
        self.shown_rows = rows
        idx = None
        if keep is not None:
            idx = next((i for i, r in enumerate(rows) if r["_key"] == keep), None)
        if idx is None:  # first frame: start on the first row with data, not an ancestor
            idx = next((i for i, r in enumerate(rows) if not r.get("_ancestor")), 0)
        if rows:
            self.move_cursor(row=idx, animate=False, scroll=False)
        self.scroll_to(y=scroll_y, animate=False)

    def selected(self) -> dict | None:
        """The row dict under the cursor, if any."""
        if not self.shown_rows or not (0 <= self.cursor_row < len(self.shown_rows)):
            return None
        return self.shown_rows[self.cursor_row]

    def set_sort(self, column: str, descending: bool | None = None) -> None:
        if column == self.sort_col and descending is None:
            self.descending = not self.descending
        else:
            self.sort_col = column
            self.descending = True if descending is None else descending

    def cycle_sort(self, step: int = 1) -> None:
        keys = [c.key for c in self.view.columns(bool(self._wide))]
        i = keys.index(self.sort_col) if self.sort_col in keys else 0
        self.set_sort(keys[(i + step) % len(keys)], descending=self.descending)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.post_message(self.SortRequested(self, str(event.column_key.value)))
