"""`iolens record` with extra optional probes: record_with.py SPEC[,SPEC...] RECORD-ARGS...

SPEC is "module:Class" (see probes/registry.py). Used by the fault tests to make the kernel
refuse a probe inside a real recording.
"""

import sys

from iolens.probes import registry

registry.EXTRA_PROBES.extend(s for s in sys.argv[1].split(",") if s)
from iolens.collector.cli import main  # noqa: E402

sys.exit(main(sys.argv[2:]))
