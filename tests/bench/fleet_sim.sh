#!/usr/bin/env bash
# Fleet simulation of brokertls-service's rate planner under Let's Encrypt's limits: 100,000
# devices, first rollout and a year of renewals, one registered domain or one per device, 45-day
# and 6-day certificates, on a simulated clock (tests/bench/fleet_sim.cpp says what each figure
# is). Exits non-zero if a renewal came later than a third of its lifetime left.
# Usage: tests/bench/fleet_sim.sh [fleet_sim options: --devices N --renew-at F --jitter F --days D]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
"$root/scripts/build" "$root/build" --target fleet_sim -DBROKERTLS_BENCH=ON
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
t0=$(date +%s.%N)
"$root/build/tests/bench/fleet_sim" "$@"
t1=$(date +%s.%N)
printf 'wall time: %.1f s\n' "$(echo "$t1 - $t0" | bc -l)"
