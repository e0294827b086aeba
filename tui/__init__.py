"""iolens.tui."""
