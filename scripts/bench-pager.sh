#!/usr/bin/env bash
# Benchmarks the layer pager against its bounds (issue 4, criteria 3-5): builds build/bin/chord and
# the bandwidth probe build/bin/pager-bw (scripts/pager-bw.c), then runs scripts/bench-pager.py.
#   scripts/bench-pager.sh [-r 3] [--models FILE...] [--budgets 15 40 70] [--prefill 512]
# Prints a table per model and budget; exits 1 when a bound is missed (listed as MISSED at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
make -s build/bin/chord
mkdir -p build/bin
${CC:-cc} -O3 -march=native -std=c99 -Wall -Wextra -Werror -pedantic -pthread \
  -o build/bin/pager-bw scripts/pager-bw.c
exec python3 scripts/bench-pager.py "$@"
