#!/usr/bin/env bash
# Profiles pgpilot under pgbench -S and prints where its CPU time goes.
#
#   bench/profile.sh                      # perf record -g, 10 s of pgbench -S -c 32 -M simple
#   bench/profile.sh --mode prepared --duration 20
#   bench/profile.sh --tool callgrind     # valgrind fallback: pgbench -S -t 2000 -c 4
#
# Uses `perf` (Debian linux-perf; installed here when missing) if `perf record` works in this
# environment, else valgrind's callgrind. Builds the optimised binary first (bench/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
if ! command -v perf >/dev/null; then
  echo "==> installing linux-perf" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >&2 \
    || echo "profile: linux-perf not installable; will use valgrind" >&2
fi
if ! command -v perf >/dev/null && ! command -v valgrind >/dev/null; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >&2
fi

binary=$(bench/build.sh)
echo "==> profiling $binary" >&2
export PYTHONPATH="$PWD/tests${PYTHONPATH:+:$PYTHONPATH}"
exec /usr/bin/python3 bench/profile.py --binary "$binary" "$@"
