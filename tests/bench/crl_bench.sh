#!/usr/bin/env bash
# CRL scale benchmark (issue #9): generates a CRL of N (default 1,000,000) entries and a changed
# one, then measures in fresh processes the snapshot as built now and as it was built before
# (tests/bench/crl_bench.cpp says what each figure is). Usage: tests/bench/crl_bench.sh [N]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-1000000}
"$root/scripts/build" "$root/build" --target crl_bench -DBROKERTLS_BENCH=ON
bench="$root/build/tests/bench/crl_bench"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
"$bench" generate "$work" "$n"
"$bench" baseline "$work"
"$bench" measure "$work"
