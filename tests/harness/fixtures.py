"""pytest fixtures for suites that use the harness. In a conftest.py:

    from harness.fixtures import cluster, pgpilot, make_cluster, make_pgpilot  # noqa: F401

cluster       module scope: Cluster(num_standbys=2), started.
pgpilot       module scope: Pgpilot(cluster) with the defaults.
make_cluster  function scope factory: make_cluster(**Cluster kwargs) -> started Cluster
              (use it for destructive tests so the shared `cluster` stays intact).
make_pgpilot  function scope factory: make_pgpilot(cluster=None, **Pgpilot kwargs) ->
              running Pgpilot (cluster defaults to the module `cluster`).
Everything is torn down even when the test fails; a sanitizer report from pgpilot makes
the teardown raise, so the test errors.
"""

import pytest

from harness.cluster import Cluster
from harness.pgpilot import Pgpilot


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(num_standbys=2)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def pgpilot(cluster):
    p = Pgpilot(cluster)
    try:
        yield p
    finally:
        p.stop()


def _stop_all(made):
    errors = []
    for obj in reversed(made):
        try:
            obj.stop()
        except Exception as e:  # noqa: BLE001 - stop everything, then report
            errors.append(e)
    if errors:
        raise errors[0]


@pytest.fixture
def make_cluster():
    def make(**kwargs):
        c = Cluster(**kwargs)
        made.append(c)
        return c.start()

    made = []
    try:
        yield make
    finally:
        _stop_all(made)


@pytest.fixture
def make_pgpilot(request):
    def make(cluster=None, **kwargs):
        p = Pgpilot(cluster or request.getfixturevalue("cluster"), **kwargs)
        made.append(p)
        return p

    made = []
    try:
        yield make
    finally:
        _stop_all(made)
