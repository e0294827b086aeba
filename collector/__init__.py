"""iolens.collector."""
