"""iolens.tui.widgets."""
