"""What the Spark-engine tests share: skip (a failure under the CI switch, tests/conftest.py)
when pyspark or Java is missing."""

from __future__ import annotations

import os
import shutil

import pytest


def need_spark() -> None:
    why = None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        why = "pyspark not installed (pip install 'iolens[spark]')"
    if why is None and not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        why = "no Java (java on PATH or JAVA_HOME) for Spark"
    if why:
        pytest.skip(why)  # a failure under the CI switch (tests/conftest.py)
