"""iolens: eBPF observability of storage and network I/O for AI/ML workloads.

The installable namespace. `iolens.probes`, `iolens.collector`, `iolens.tui` and
`iolens.analysis` map to the repository's top-level folders of the same names.
"""

__version__ = "0.1.0"
