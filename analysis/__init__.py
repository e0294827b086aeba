"""iolens.analysis."""
