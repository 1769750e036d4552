#!/usr/bin/env bash
# Builds an optimised pgpilot for the benchmark/profile scripts and prints its path.
#
# First choice: the `release` preset (build/release/src/pgpilot). If that build fails (e.g.
# a -Werror warning that only GCC's -O2 emits), falls back to the same preset with
# PGPILOT_WERROR=OFF in build/bench-release, so a warning never blocks a benchmark. Never
# builds or returns the debug (ASan) binary. Build output goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}

if { cmake --preset release >/dev/null && cmake --build build/release -j"$JOBS" --target pgpilot; } >&2; then
  echo "$PWD/build/release/src/pgpilot"
  exit 0
fi
echo "bench: the release preset failed to build (see above); retrying with PGPILOT_WERROR=OFF" \
     "in build/bench-release" >&2
{ cmake --preset release -B build/bench-release -DPGPILOT_WERROR=OFF >/dev/null &&
  cmake --build build/bench-release -j"$JOBS" --target pgpilot; } >&2
echo "$PWD/build/bench-release/src/pgpilot"
