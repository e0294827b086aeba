"""iolens.analysis.export: Perfetto, CSV and Prometheus exports.

- `prometheus.MetricsExporter`: live OpenMetrics/Prometheus endpoint fed once per interval.
- `perfetto.export_perfetto`: a capture -> Chrome trace-event JSON (Perfetto UI, chrome://tracing).
- `csv.export_csv`: a capture -> one CSV per table.
- `cli`: `iolens export CAPTURE --perfetto FILE --csv DIR`.

Every export raises `ExportError` (one line for the user) for problems the user can fix.
"""

from __future__ import annotations


class ExportError(Exception):
    """An export cannot be done; the message is one line for the user."""
