"""pgpilot test harness: real PostgreSQL 15 clusters and a pgpilot process for tests.

    from harness.cluster import Cluster
    from harness.pgpilot import Pgpilot

    with Cluster(num_standbys=2) as c, Pgpilot(c) as p:
        c.primary.psql("CREATE TABLE t (id int)")
        p.psql("SELECT 1")

Everything is bounded in time and cleans up after itself (processes and temp dirs), even
when the test process is killed (a small reaper process watches it).
"""

from harness.cluster import Cluster, Node  # noqa: F401
from harness.errors import HarnessError, PsqlError, SanitizerError  # noqa: F401
from harness.pgpilot import FREE_PORT, Pgpilot  # noqa: F401
from harness.ports import free_port  # noqa: F401
