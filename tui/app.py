"""`TopApp`: the `iolens top` dashboard over any `Source` (live, replay, fake).

Data flow::

    source thread worker ── next_interval() ──> Window.add() ──> Snapshot ── post_message ──┐
    (the only caller of the source; applies seek/step/pause commands from a queue)          │
                                                                                            v
    UI thread: on_snapshot_ready -> tables, health bar; every few frames -> verdict worker
    verdict thread worker: run_rules(window tables, meta) ── post_message(VerdictsReady) ──> panel

The app never knows whether the source is live: replay controls are offered when the source
has `seek`/`step` (ReplaySource), and a `status` attribute ("compiling probes…") is shown
until the first interval arrives. Widgets are touched only by message handlers.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static, TabbedContent, TabPane

from iolens.analysis import rules as rules_mod
from iolens.collector.capture import CaptureMeta
from iolens.collector.sources import Source
from iolens.tui import views
from iolens.tui.messages import (SnapshotReady, SourceFailed, SourceStatus, SourceWarning,
                                 VerdictsReady)
from iolens.tui.model import FILE_GROUPS, Snapshot, ViewOptions, Window, block_reason
from iolens.tui.screens import DrillScreen, HelpScreen
from iolens.tui.widgets.panels import (HealthBar, VerdictPanel, finding_text, health_text)
from iolens.tui.widgets.tables import HotTable

SourceLike = Source | Callable[[], Source]


def _coverage_line(snap: Snapshot | None) -> str:
    """What the capture missed over the window ('' when nothing): ops not counted, intervals
    that ran long, ops without a name (see analysis/coverage.py)."""
    if snap is None or not snap.intervals_seen:
        return ""
    from iolens.analysis import coverage
    from iolens.analysis.thresholds import merge

    io = snap.window.get("io")
    ops = int(pc.sum(io.column("count")).as_py() or 0) if io is not None else 0
    cov = coverage.of_window(snap.window.get("health"), ops,
                             snap.meta.interval_s or snap.interval_s, merge(None))
    return coverage.headline(cov)
CATCH_UP = 30  # intervals folded into one frame at most

#: every key of the main screen: (key, action, description, shown in footer). The help
#: screen is generated from this list, so it cannot miss one.
KEYS: list[tuple[str, str, str, bool]] = [
    ("q", "quit", "Quit (restores the terminal)", True),
    ("question_mark", "help", "Help: this list of keys", True),
    ("space", "pause", "Pause / resume (replay: stops the clock)", True),
    ("n", "step", "Replay: step one interval", False),
    ("left", "seek(-10)", "Replay: back 10 intervals", False),
    ("right", "seek(10)", "Replay: forward 10 intervals", False),
    ("home", "seek_to(0)", "Replay: first interval", False),
    ("end", "seek_to(-1)", "Replay: last interval", False),
    ("plus", "speed(2.0)", "Replay: twice as fast", False),
    ("minus", "speed(0.5)", "Replay: half as fast", False),
    ("slash", "filter", "Filter rows by text (path, comm, pid, endpoint)", True),
    ("escape", "clear_filter", "Clear the filter", False),
    ("s", "sort(1)", "Sort by the next column", True),
    ("S", "sort(-1)", "Sort by the previous column", False),
    ("r", "reverse", "Reverse the sort order", False),
    ("g", "group", "Files: group by path / directory / file class", True),
    ("t", "tree", "Processes: tree / flat list", False),
    ("1", "tab('processes')", "Show processes", False),
    ("2", "tab('files')", "Show files", False),
    ("3", "tab('peers')", "Show peers", False),
    ("4", "tab('devices')", "Show devices", False),
    ("enter", "drill", "Drill down into the selected process (Escape: back)", True),
]
#: keys a focused DataTable would otherwise take first
PRIORITY = {"left", "right", "home", "end", "space", "enter"}
#: footer labels short enough for 80 columns
SHORT = {"quit": "Quit", "help": "Help", "pause": "Pause", "filter": "Filter",
         "sort(1)": "Sort", "group": "Group", "drill": "Drill"}


class MainScreen(Screen):
    """The dashboard screen: health bar, tabs of hot tables, filter box, verdicts."""

    def compose(self) -> ComposeResult:
        yield HealthBar(id="health")
        with TabbedContent(id="tabs", initial="processes"):
            with TabPane("Processes", id="processes"):
                yield HotTable(views.PROCESSES, id="table-processes")
            with TabPane("Files", id="files"):
                yield HotTable(views.FILES, id="table-files")
            with TabPane("Peers", id="peers"):
                yield HotTable(views.PEERS, id="table-peers")
            with TabPane("Devices", id="devices"):
                with Vertical():
                    yield Static("", id="devices-empty")
                    yield HotTable(views.DEVICES, id="table-devices")
        yield Input(placeholder="filter: path, comm, pid, endpoint (Enter: keep, Esc: clear)",
                    id="filter")
        yield VerdictPanel(id="verdicts")
        yield Footer()

    def on_mount(self) -> None:
        self.app.setup()  # type: ignore[attr-defined]

    def on_resize(self) -> None:
        # Tall terminals give the verdict panel more lines.
        self.query_one("#verdicts").styles.height = 5 if self.size.height < 40 else 9


class TopApp(App[int]):
    """The live/replay dashboard.

    Args:
        source: a Source, or a callable that builds one (called on the worker thread so a
            slow start, e.g. compiling BPF, never blocks the first frame).
        window: intervals kept for verdicts and sparklines.
        window_rows: io rows kept for verdicts (older intervals go first; bounds memory).
        rate_intervals: intervals the table rates are computed over (1 = like top).
        verdict_every: run the rules at most every this many frames.
        verdict_share: keep the rules (which share the CPU and the GIL with the UI) under
            this fraction of wall time by spacing runs out when they are slow; None = off.
        clock: monotonic clock, injectable so snapshots are reproducible.
    """

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses live elsewhere
    TITLE = "iolens top"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding(k, a, SHORT.get(a, d), show=s, priority=k in PRIORITY)
                for k, a, d, s in KEYS]

    def __init__(self, source: SourceLike, *, window: int = 60, window_rows: int = 400_000,
                 rate_intervals: int = 1,
                 verdict_every: int = 5, verdict_share: float | None = 0.25,
                 clock: Callable[[], float] = time.monotonic,
                 poll_s: float = 0.2) -> None:
        super().__init__()
        self._source_arg = source
        self.source: Source | None = None if callable(source) and not hasattr(
            source, "next_interval") else source  # type: ignore[assignment]
        self.window_size = window
        self.window_rows = window_rows
        self.rate_intervals = rate_intervals
        self.verdict_every = max(1, verdict_every)
        self.verdict_share = verdict_share
        self.verdict_ms = 0.0        # duration of the last rules run
        self._verdict_next_frame = 0
        self.clock = clock
        self.poll_s = poll_s
        self.started = clock()
        self.snapshot: Snapshot | None = None    # newest frame
        self.displayed: Snapshot | None = None   # frame the tables show (older when paused)
        # A factory builds the live source on the worker thread; LiveSource's constructor
        # waits for the probes to compile before starting a command.
        self.status = "starting: compiling probes…"
        self.failed: str | None = None
        self.frozen = False          # live pause: keep showing the last frame
        self.replay = bool(self.source is not None and hasattr(self.source, "seek"))
        self.filter_text = ""
        self.tree_mode = True
        self.view_opts = ViewOptions()
        self.frames = 0              # snapshots applied (tests wait on this)
        self.first_frame_s: float | None = None  # clock time from start to the first data
        self.verdict_runs = 0
        self.findings: list[Any] = []
        self.warnings: list[str] = []
        self.timings: list[tuple[float, float]] = []   # (derive_ms, apply_ms) per frame
        self._commands: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._latest_seq = 0
        self._verdict_busy = False
        self._verdict_pending: Snapshot | None = None
        self.verdict_seq = 0         # frame the shown verdicts were computed on
        self._verdict_error: str | None = None
        self.main = MainScreen(id="main")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Only quit and help work over the drill and help screens; other keys go to them.
        if self.screen is not self.main and action not in ("quit", "help"):
            return False
        # While typing a filter, Space, Enter and the arrows belong to the input box.
        if isinstance(self.focused, Input) and action in ("pause", "seek", "seek_to", "drill"):
            return False
        return True

    def get_default_screen(self) -> Screen:
        return self.main

    def setup(self) -> None:
        """Called once the main screen is mounted: first render, timers, the worker."""
        self.main.query_one("#verdicts", VerdictPanel).border_title = "Verdicts"
        self._render_health()
        self._render_verdicts()
        self._render_tables()
        self.set_interval(0.5, self._tick)
        self._pump()

    def table(self, name: str | None = None) -> HotTable:
        """The hot table of tab `name` (default: the active tab)."""
        name = name or self.main.query_one("#tabs", TabbedContent).active or "processes"
        return self.main.query_one(f"#table-{name}", HotTable)

    # --- the source worker (the only thread that calls the source) ---------------------------

    @work(thread=True, exclusive=True, group="source", exit_on_error=False)
    def _pump(self) -> None:
        try:
            if self.source is None:
                self.source = self._source_arg()  # type: ignore[operator]
                self.replay = hasattr(self.source, "seek")
        except Exception as exc:  # noqa: BLE001 - shown to the user as one line
            self.post_message(SourceFailed(_one_line(exc)))
            return
        src = self.source
        for text in _source_warnings(src):
            self.post_message(SourceWarning(text))
        model = Window(getattr(src, "meta", None) or CaptureMeta(), self.window_size,
                       self.rate_intervals, self.window_rows)
        seq, last_status, ended = 0, None, False
        while not self._stop.is_set():
            dirty = self._apply_commands(src, model)
            try:
                iv = src.next_interval(self.poll_s)
            except Exception as exc:  # noqa: BLE001
                self.post_message(SourceFailed(_one_line(exc)))
                return
            t0 = time.perf_counter()
            if iv is not None:
                _take(src, model, iv)
            finished = bool(src.finished)
            if finished and not ended and model.seen == 0:
                err = _source_error(src)
                if err:  # e.g. the probes failed to load: say why, once
                    self.post_message(SourceFailed(err))
                    return
            if iv is not None or dirty or (finished and not ended):
                ended = finished
                seq += 1
                snap = model.snapshot(seq, self.view_opts, **self._source_state(src, finished))
                snap.extra["derive_ms"] = (time.perf_counter() - t0) * 1e3
                self._latest_seq = seq
                self.post_message(SnapshotReady(snap))
            elif model.seen == 0:
                status = getattr(src, "status", None)
                if status and status != last_status:
                    last_status = status
                    self.post_message(SourceStatus(str(status)))

    def _source_state(self, src: Any, finished: bool) -> dict[str, Any]:
        if not self.replay:
            return {"finished": finished}
        return {"position": tuple(src.position), "speed": float(src.speed or 0.0),
                "paused": bool(src.paused), "finished": finished}

    def _apply_commands(self, src: Any, model: Window) -> bool:
        """Run queued UI commands on this thread; True when the frame must be re-derived."""
        dirty = False
        while True:
            try:
                cmd, arg = self._commands.get_nowait()
            except queue.Empty:
                return dirty
            dirty = True
            if cmd == "pause" and self.replay:
                src.paused = arg
            elif cmd == "speed" and self.replay:
                src.speed = min(max((src.speed or 1.0) * arg, 0.125), 64.0)
            elif cmd == "step" and self.replay:
                src.paused = True
                iv = src.step()
                if iv is not None:
                    model.add(iv)
            elif cmd == "seek" and self.replay:
                self._seek(src, model, arg)

    def _seek(self, src: Any, model: Window, index: int) -> None:
        """Jump to interval `index` and rebuild the window from the intervals before it."""
        total = src.position[1]
        index = max(0, min(total, index if index >= 0 else total))
        model.reset()
        for i in range(max(0, index - self.window_size), index):
            model.add(src.interval_at(i))
        src.seek(index)

    # --- messages from the workers ----------------------------------------------------------

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        snap = message.snapshot
        if snap.seq < self._latest_seq:  # a newer frame is queued: skip this one
            return
        t0 = time.perf_counter()
        self.snapshot = snap
        if not self.frozen:
            self.displayed = snap
            with self.batch_update():
                self._render_tables()
                if isinstance(self.screen, DrillScreen):
                    self.screen.show(snap)
        self._render_health()
        self._render_verdicts()
        self.frames += 1
        if self.first_frame_s is None and snap.intervals_seen:
            self.first_frame_s = self.clock() - self.started
        self.timings.append((float(snap.extra.get("derive_ms", 0.0)),
                             (time.perf_counter() - t0) * 1e3))
        if snap.intervals_seen and (self.frames >= self._verdict_next_frame or snap.finished):
            self._run_verdicts(snap)

    def on_source_status(self, message: SourceStatus) -> None:
        self.status = message.text
        self._render_health()

    def on_source_warning(self, message: SourceWarning) -> None:
        self.warnings.append(message.text)
        self.notify(message.text, title="capture", severity="warning", timeout=15)

    def on_source_failed(self, message: SourceFailed) -> None:
        self.failed = message.text
        self.status = f"error: {message.text}"
        self._render_health()
        self.notify(message.text, title="collector failed", severity="error", timeout=30)

    def _run_verdicts(self, snap: Snapshot) -> None:
        if self._verdict_busy:  # one run at a time; the newest waiting window runs next
            self._verdict_pending = snap
            return
        self._verdict_busy = True
        self._verdict_pending = None
        gap = self.verdict_every
        if self.verdict_share and snap.interval_s > 0:  # slow rules run less often
            gap = max(gap, math.ceil(self.verdict_ms / 1e3 / self.verdict_share
                                     / snap.interval_s))
        self._verdict_next_frame = self.frames + gap
        self._verdicts(snap)

    @work(thread=True, group="verdicts", exit_on_error=False)
    def _verdicts(self, snap: Snapshot) -> None:
        t0 = time.perf_counter()
        try:
            found = list(rules_mod.run_rules(snap.window, snap.meta))
            error = None
        except Exception as exc:  # noqa: BLE001 - a broken rule must not kill the dashboard
            found, error = [], _one_line(exc)
        self.verdict_ms = (time.perf_counter() - t0) * 1e3
        self.post_message(VerdictsReady(snap.seq, found, error))

    def on_verdicts_ready(self, message: VerdictsReady) -> None:
        self._verdict_busy = False
        self.verdict_runs += 1
        self.verdict_seq = message.seq
        self.findings = message.findings
        self._verdict_error = message.error
        self._render_verdicts()
        if self._verdict_pending is not None:
            self._run_verdicts(self._verdict_pending)

    # --- rendering ----------------------------------------------------------------------------

    def _sort_line(self) -> str:
        tab = self.main.query_one("#tabs", TabbedContent).active or "processes"
        tbl = self.table(tab)
        label = next((c.label for c in tbl.view.cols if c.key == tbl.sort_col), tbl.sort_col)
        parts = [f"sort {label} {'↓' if tbl.descending else '↑'}"]
        if self.filter_text:
            parts.append(f"filter '{self.filter_text}'")
        if tab == "files":
            parts.append(f"by {self.view_opts.file_group}")
        if tab == "processes":
            parts.append("tree" if self.tree_mode else "flat")
        shown, total = getattr(tbl, "counts", (0, 0))
        parts.append(f"{shown} of {total} rows" if shown < total else f"{total} rows")
        if self.snapshot is not None:
            parts.append(f"MB/s over {self.snapshot.rate_window_s:g}s")
        return " " + " · ".join(parts)

    def _render_health(self) -> None:
        status = self.status
        if self.snapshot is None and not self.failed:
            status = f"{status} ({self.clock() - self.started:.0f}s)"
        self.main.query_one("#health", HealthBar).update(
            health_text(self.snapshot, status, self.frozen, self._sort_line()))

    def _render_verdicts(self) -> None:
        snap = self.snapshot
        window_s = snap.window_s if snap else 0.0
        have = bool(snap and snap.intervals_seen) and self.verdict_runs > 0
        self.main.query_one("#verdicts", VerdictPanel).update(
            finding_text(self.findings, self._verdict_error, window_s, have,
                         _coverage_line(snap)))

    def _render_tables(self) -> None:
        """Fill the visible tab's table (hidden tabs are filled when they are shown)."""
        snap = self.displayed
        name = self.main.query_one("#tabs", TabbedContent).active or "processes"
        tbl = self.table(name)
        if snap is None:
            tbl.counts = (0, 0)
            tbl.show_rows([])
        elif name == "processes":
            rows, total = views.process_rows(snap, tbl.sort_col, tbl.descending,
                                             self.filter_text, self.tree_mode)
            tbl.counts = (sum(1 for r in rows if not r.get("_ancestor")), total)
            tbl.show_rows(rows)
        else:
            t = {"files": snap.files, "peers": snap.peers, "devices": snap.devices}[name]
            rows, total = ([], 0) if t is None else views.table_rows(
                t, tbl.view, tbl.sort_col, tbl.descending, self.filter_text)
            tbl.counts = (len(rows), total)
            tbl.show_rows(rows)
        if name == "devices":
            self._render_devices_empty(snap)

    def _render_devices_empty(self, snap: Snapshot | None) -> None:
        empty = self.main.query_one("#devices-empty", Static)
        tbl = self.table("devices")
        missing = snap is None or snap.devices is None
        empty.display = missing
        tbl.display = not missing
        if missing:
            meta = snap.meta if snap else getattr(self.source, "meta", None) or CaptureMeta()
            empty.update(f"no block-layer data: {block_reason(meta)}")

    def _refresh_view(self) -> None:
        """Re-render after a view change (sort, filter, tab), even when paused."""
        self._render_tables()
        self._render_health()

    def _tick(self) -> None:
        if self.snapshot is None:
            self._render_health()

    # --- actions ------------------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(KEYS))

    def action_pause(self) -> None:
        if self.replay:
            paused = not (self.snapshot.paused if self.snapshot else False)
            self._commands.put(("pause", paused))
        else:
            self.frozen = not self.frozen
            if not self.frozen:
                self.displayed = self.snapshot
                self._refresh_view()
            self._render_health()

    def action_step(self) -> None:
        if self.replay:
            self._commands.put(("step", None))
        else:
            self.notify("step works in replay (--replay DIR)", timeout=3)

    def action_seek(self, delta: int) -> None:
        if not self.replay:  # live: the arrows scroll a wide table sideways
            if delta > 0:
                self.table().action_scroll_right()
            else:
                self.table().action_scroll_left()
            return
        pos = self.snapshot.position[0] if self.snapshot and self.snapshot.position else 0
        self._commands.put(("seek", max(0, pos + delta)))

    def action_seek_to(self, index: int) -> None:
        if self.replay:
            self._commands.put(("seek", index))
        elif index == 0:
            self.table().action_scroll_top()
        else:
            self.table().action_scroll_bottom()

    def action_speed(self, factor: float) -> None:
        if self.replay:
            self._commands.put(("speed", factor))

    def action_filter(self) -> None:
        box = self.main.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.main.query_one("#filter", Input)
        box.value = ""
        box.remove_class("shown")
        self.filter_text = ""
        self.table().focus()
        self._refresh_view()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._refresh_view()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        if not self.filter_text:
            self.main.query_one("#filter", Input).remove_class("shown")
        self.table().focus()

    def action_sort(self, step: int) -> None:
        self.table().cycle_sort(step)
        self._refresh_view()

    def action_reverse(self) -> None:
        tbl = self.table()
        tbl.set_sort(tbl.sort_col, not tbl.descending)
        self._refresh_view()

    @on(HotTable.SortRequested)
    def _sort_clicked(self, event: HotTable.SortRequested) -> None:
        event.table.set_sort(event.column)
        self._refresh_view()

    def action_group(self) -> None:
        i = FILE_GROUPS.index(self.view_opts.file_group)
        self.view_opts = ViewOptions(file_group=FILE_GROUPS[(i + 1) % len(FILE_GROUPS)])
        self.main.query_one("#tabs", TabbedContent).active = "files"
        self._commands.put(("refresh", None))  # the worker re-derives the file table
        self._render_health()

    def action_tree(self) -> None:
        self.tree_mode = not self.tree_mode
        self._refresh_view()

    def action_tab(self, name: str) -> None:
        self.main.query_one("#tabs", TabbedContent).active = name
        self.table(name).focus()
        self._render_health()

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        self._render_tables()
        self._render_health()

    def action_drill(self) -> None:
        tbl = self.table()
        row = tbl.selected()
        if row is None or self.displayed is None:
            return
        kind = {"processes": "pid", "files": "file", "peers": "peer"}.get(tbl.view.name)
        if kind is None:
            return
        key = int(row["pid"]) if kind == "pid" else row["key"]
        self.push_screen(DrillScreen(kind, key, self.displayed))

    @on(HotTable.RowSelected)
    def _row_clicked(self, event: HotTable.RowSelected) -> None:
        if event.data_table.screen is self.main:
            self.action_drill()

    async def action_quit(self) -> None:
        self._stop.set()
        self.exit(0)

    def on_unmount(self) -> None:
        self._stop.set()


def _take(src: Source, model: Window, iv: Any) -> None:
    """Add `iv`, then any intervals already waiting: a slow frame or a fast replay catches
    up in one frame instead of deriving one frame per interval."""
    model.add(iv)
    for _ in range(CATCH_UP):
        more = src.next_interval(0.0)
        if more is None:
            return
        model.add(more)


def _source_warnings(src: Any) -> list[str]:
    """One line per problem a replayed capture had: skipped files, an abrupt end."""
    out = []
    skipped = list(getattr(src, "skipped", None) or [])
    if skipped:
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        out.append(f"skipped {len(skipped)} unreadable file(s): {skipped[0][1]}{more}")
    capture = getattr(src, "capture", None)
    if capture is not None and getattr(capture, "ended_abruptly", False):
        n = getattr(capture, "recovered_intervals", 0)
        out.append("this capture ended abruptly: its last unfinished segment is not shown"
                   if getattr(capture, "unfinished", None) else
                   f"this capture ended abruptly: {n} interval(s) of its unfinished segment "
                   "recovered, at most the interval in progress is missing")
    return out


def _source_error(src: Any) -> str | None:
    """A live source's collector error, if it stopped on one (adapter: LiveSource keeps it
    on its `collector`)."""
    err = getattr(src, "error", None) or getattr(getattr(src, "collector", None), "error", None)
    return _one_line(err) if err else None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
