#!/usr/bin/env bash
# Broker benchmarks (issue #3), in one run on 127.0.0.1:
#  1. connection rate: N (default 2000) mTLS connect + CONNACK + disconnect (a full handshake
#     each, tests/bench/mqtt_load.cpp) against mosquitto with the brokertls plugin and against the
#     same mosquitto with plain `cafile` + `require_certificate`, from 1 connector (sequential)
#     and from 4 and 16 parallel connectors (each its own client certificate and client id);
#     prints both rates and the ratio per run (target >= 0.98, issue #9).
#  2. hot reload under load: while one client connects continuously, the server certificate (a
#     `files` certificate profile) is rotated R (default 100) times; prints handshakes attempted
#     and failed, and the delay from new certificate on disk to the first handshake serving it
#     (target: 0 failed, delay <= 1 s).
# Usage: tests/bench/broker_bench.sh [N] [R]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-2000}
rotations=${2:-100}
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
pids+=($!)
mosquitto -c plain.conf >/dev/null 2>&1 &
pids+=($!)
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
    echo "== connection rate: $n mTLS connections from $p connector(s) (full handshake, CONNECT/CONNACK/DISCONNECT)"
    plain=$("$load" rate "$plain_port" "${args[@]}")
    with=$("$load" rate "$plugin_port" "${args[@]}")
    echo "plain mosquitto (cafile + require_certificate): $plain"
    echo "mosquitto + brokertls plugin:                  $with"
    awk -v a="$(echo "$with" | awk '{print $NF}')" -v b="$(echo "$plain" | awk '{print $NF}')" -v p="$p" \
        'BEGIN { printf "ratio (plugin / plain), %d connector(s): %.3f   target >= 0.98\n", p, a / b }'
done

echo "== hot reload under load: $rotations server certificate rotations while a client connects continuously"
"$load" rotate "$plugin_port" "${client[@]}" ca src/server.chain.pem src/server.key "$rotations"
echo "target: 0 failed, delay <= 1000 ms"
