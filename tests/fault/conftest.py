"""Fault suite fixtures: real PostgreSQL 15 clusters (tests/harness) and pgpilot."""

import os
import sys

_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from harness.fixtures import cluster, make_cluster, make_pgpilot, pgpilot  # noqa: E402,F401
