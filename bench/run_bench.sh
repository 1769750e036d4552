#!/usr/bin/env bash
# pgpilot benchmark entry point (`./run bench [args]` calls this with its args).
#
#   bench/run_bench.sh               # 20 s per run, ~6 min in all
#   bench/run_bench.sh --quick       # 5 s per run
#   bench/run_bench.sh --duration 30 --modes select-simple
#   bench/run_bench.sh failover      # bench/failover/run.py: failover vs. pgpool-II (~4 min)
#
# Builds the optimised pgpilot (bench/build.sh), then runs bench/bench.py: pgbench direct
# vs. pgpilot vs. PgBouncer vs. pgpool-II on a fresh primary + 2 standbys cluster. Prints a
# table and writes bench/results/<timestamp>.json. Needs root (or the postgres user) and the
# packages ./run deps installs (postgresql-15, pgbouncer, pgpool2). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."

for prog in /usr/lib/postgresql/15/bin/initdb /usr/bin/pgbench /usr/sbin/pgbouncer /usr/sbin/pgpool; do
  [[ -x $prog ]] || { echo "run_bench: $prog missing (run ./run deps)" >&2; exit 1; }
done

binary=$(bench/build.sh)
echo "==> benchmarking $binary" >&2
export PYTHONPATH="$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
if [[ ${1:-} == failover ]]; then
  shift
  exec /usr/bin/python3 bench/failover/run.py --binary "$binary" "$@"
fi
exec /usr/bin/python3 bench/bench.py --binary "$binary" "$@"
