"""iolens.analysis.rules."""
