#!/usr/bin/env bash
# Broker benchmarks (issue #3), in one run on 127.0.0.1:
#  1. connection rate: N (default 2000) mTLS connect + CONNACK + disconnect (a full handshake
#     each, tests/bench/mqtt_load.cpp) against mosquitto with the brokertls plugin and against the
#     same mosquitto with plain `cafile` + `require_certificate`, from 1 connector (sequential)
#     and from 4 and 16 parallel connectors (each its own client certificate and client id);
#     prints both rates per run (REPS runs, alternating) and the median ratio (target >= 0.98,
#     issue #9).
#  2. hot reload under load: while one client connects continuously, the server certificate (a
#     `files` certificate profile) is rotated R (default 100) times; prints handshakes attempted
#     and failed, and the delay from new certificate on disk to the first handshake serving it
#     (target: 0 failed, delay <= 1 s).
# Usage: [REPS=3] tests/bench/broker_bench.sh [N] [R]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-2000}
rotations=${2:-100}
reps=${REPS:-3} # alternating plain/plugin runs per connector count; the ratio is their median
"$root/scripts/build" "$root/build" -DBROKERTLS_BENCH=ON
ca="$root/build/ca-tools/brokertls-ca"
load="$root/build/tests/bench/mqtt_load"
plugin="$root/build/broker-adapters/mosquitto/brokertls_mosquitto.so"
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"

free_port() {
    for p in $(shuf -i 20000-45000 -n 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
    done
    exit 1
}
wait_port() {
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "broker on port $1 did not start" >&2
    exit 1
}

"$ca" init --dir ca >/dev/null
"$ca" crl --dir ca >/dev/null
"$ca" issue server localhost 127.0.0.1 --dir ca --out src --file-name server >/dev/null
"$ca" issue client bench --dir ca --out certs >/dev/null
for i in $(seq 0 15); do "$ca" issue client "bench-$i" --dir ca --out certs >/dev/null; done
mkdir -p live
cat >brokertls.json <<JSON
{
  "certificate_profiles": {"broker": {"source": "files", "files": {"key": "src/server.key", "cert": "src/server.chain.pem"},
    "names": ["localhost", "127.0.0.1"], "deploy": {"cert": "live/broker.crt", "key": "live/broker.key"}}},
  "security_profiles": {"devices": {"trust_anchors": ["ca/root.crt"], "crls": ["ca/crl.pem"]}}
}
JSON
plugin_port=$(free_port)
plain_port=$(free_port)
common="user root
set_tcp_nodelay true
log_dest file $work/%s.log
log_type error
log_type warning"
cat >plugin.conf <<CONF
$(printf "$common" plugin)
per_listener_settings true
listener $plugin_port 127.0.0.1
certfile $work/live/broker.crt
keyfile $work/live/broker.key
cafile $work/ca/root.crt
require_certificate true
plugin $plugin
plugin_opt_config_file $work/brokertls.json
plugin_opt_security_profile devices
CONF
cat >plain.conf <<CONF
$(printf "$common" plain)
per_listener_settings true
listener $plain_port 127.0.0.1
certfile $work/src/server.chain.pem
keyfile $work/src/server.key
cafile $work/ca/root.crt
require_certificate true
allow_anonymous true
CONF
mosquitto -c plugin.conf >/dev/null 2>&1 &
plugin_pid=$!
pids+=($!)
mosquitto -c plain.conf >/dev/null 2>&1 &
plain_pid=$!
pids+=($!)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
wait_port "$plugin_port"
wait_port "$plain_port"

client=(ca/root.crt certs/bench.chain.pem certs/bench.key)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
"$load" rate "$plain_port" "${client[@]}" 200 >/dev/null # warm-up
"$load" rate "$plugin_port" "${client[@]}" 200 >/dev/null
for p in 1 4 16; do
    if [ "$p" = 1 ]; then
        args=("${client[@]}" "$n")
    else
        args=(ca/root.crt 'certs/bench-{}.chain.pem' 'certs/bench-{}.key' "$n" "$p" 'bench-{}')
    fi
    echo "== connection rate: $n mTLS connections from $p connector(s) (full handshake, CONNECT/CONNACK/DISCONNECT), $reps alternating runs each"
    ratios=()
    plain_ticks=0 plugin_ticks=0
    for rep in $(seq 1 "$reps"); do
        t0=$(cpu_ticks "$plain_pid") t1=$(cpu_ticks "$plugin_pid")
        # Alternating, so a drift of the shared machine's load falls on both alike.
        plain=$("$load" rate "$plain_port" "${args[@]}")
        with=$("$load" rate "$plugin_port" "${args[@]}")
        plain_ticks=$((plain_ticks + $(cpu_ticks "$plain_pid") - t0))
        plugin_ticks=$((plugin_ticks + $(cpu_ticks "$plugin_pid") - t1))
        echo "  run $rep: plain mosquitto (cafile + require_certificate): $plain"
        echo "  run $rep: mosquitto + brokertls plugin:                  $with"
        ratios+=("$(awk -v a="$(echo "$with" | awk '{ print $NF }')" -v b="$(echo "$plain" | awk '{ print $NF }')" 'BEGIN { printf "%.3f", a / b }')")
    done
    echo "ratio (plugin / plain), $p connector(s): median $(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }') of ${ratios[*]}   target >= 0.98"
    # The broker's own CPU per connection (user + system, every thread): what the plugin adds,
    # without the clients' share of the two cores.
    awk -v a="$plugin_ticks" -v b="$plain_ticks" -v n="$((n * reps))" -v p="$p" -v hz="$(getconf CLK_TCK)" 'BEGIN {
        printf "broker CPU per connection, %d connector(s): plain %.0f us, plugin %.0f us (%.3fx)\n", p, 1e6 * b / hz / n, 1e6 * a / hz / n, a / b }'
done

echo "== hot reload under load: $rotations server certificate rotations while a client connects continuously"
"$load" rotate "$plugin_port" "${client[@]}" ca src/server.chain.pem src/server.key "$rotations"
echo "target: 0 failed, delay <= 1000 ms"
