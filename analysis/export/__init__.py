"""iolens.analysis.export: Perfetto, CSV and Prometheus exports."""
