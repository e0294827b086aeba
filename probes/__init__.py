"""iolens.probes."""
