#!/usr/bin/env bash
# Benchmark: issuance throughput of brokertls-service (local-ca issuer, POST /v1/certificates with
# the request HMAC) against `cfssl serve` (POST /api/v1/cfssl/authsign, cfssl's HMAC auth) in the
# same run: same CA key, same TLS certificate, HTTPS and HTTP/1.1 keep-alive for both, CLIENTS
# concurrent clients, each request a new CSR (tests/bench/service_load.cpp). A warm-up run of
# each, then ROUNDS (default 2) measured runs of each, alternating; the best run of each counts.
# Then IDLE (default 10,000) idle keep-alive TLS connections to a freshly started service: its
# RSS before and after, per connection.
# Targets (issue): >= 2x cfssl and >= 1,000 certificates/s; 10,000 idle connections held.
# Usage: tests/bench/service_bench.sh [REQUESTS] [CLIENTS]   (defaults 5000 and 32)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
requests=${1:-5000}
clients=${2:-32}
rounds=${ROUNDS:-2}
idle=${IDLE:-10000}
command -v cfssl >/dev/null || { echo "needs cfssl (Debian: golang-cfssl)" >&2; exit 1; }
"$root/scripts/build" "$root/build" --target service_load --target brokertls-service \
    --target brokertls-ca -DBROKERTLS_BENCH=ON
load="$root/build/tests/bench/service_load"
service="$root/build/ca-tools/brokertls-service"
ca="$root/build/ca-tools/brokertls-ca"

# Both ends hold IDLE connections.
want=$((idle + 1024))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
    echo "IDLE=$idle needs ulimit -n $want; the hard limit is $hard" >&2
    exit 1
fi
ulimit -n "$want"

work=$(mktemp -d)
pids=()
stop_pid() {
    kill "$1" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
}
cleanup() {
    for pid in "${pids[@]}"; do stop_pid "$pid"; done
    rm -rf "$work"
}
trap cleanup EXIT

# Runs COMMAND... until it succeeds, for at most 20 s and while process PID lives.
wait_until() {
    local pid=$1
    shift
    for _ in $(seq 200); do
        "$@" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# The CA, the TLS certificate both servers present, the HMAC key both accept (cfssl wants hex).
"$ca" init --dir "$work/ca" >/dev/null
"$ca" issue server localhost 127.0.0.1 --file-name service --dir "$work/ca" --out "$work/tls" \
    >/dev/null
(umask 077 && openssl rand -hex 32 >"$work/bench.key")
cat >"$work/service.json" <<EOF
{
  "threads": $(nproc),
  "listeners": {
    "api": {"listen": "127.0.0.1:0", "serve": ["v1"],
            "tls": {"cert": "tls/service.chain.pem", "key": "tls/service.key"}}
  },
  "limits": {"idle_timeout": "600s", "max_connections": $want, "max_connections_per_address": $want,
             "requests_per_minute_per_address": 0, "requests_per_minute_per_client": 0},
  "issuers": {"ca": {"type": "local-ca", "dir": "ca"}},
  "profiles": {"device": {"issuer": "ca", "kind": "client", "domains": ["*"], "lifetime": "7d"}},
  "clients": {"bench": {"key_file": "bench.key", "profiles": ["device"]}}
}
EOF
cat >"$work/cfssl.json" <<EOF
{
  "signing": {
    "default": {"auth_key": "bench", "expiry": "168h", "usages": ["digital signature", "client auth"]},
    "profiles": {
      "device": {"auth_key": "bench", "expiry": "168h", "usages": ["digital signature", "client auth"]}
    }
  },
  "auth_keys": {"bench": {"type": "standard", "key": "$(cat "$work/bench.key")"}}
}
EOF

service_pid=""
service_port=""
start_service() {
    "$service" --config "$work/service.json" 2>"$work/service.log" &
    service_pid=$!
    pids+=("$service_pid")
    if ! wait_until "$service_pid" grep -q " ready$" "$work/service.log"; then
        echo "brokertls-service did not start:" >&2
        cat "$work/service.log" >&2
        exit 1
    fi
    service_port=$(sed -n 's/.*listener api on port \([0-9]*\).*/\1/p' "$work/service.log")
}

# cfssl reads brokertls-ca's PKCS#8 PEM keys as they are. It takes a port of our choosing: a
# random one, tried until one is free.
cfssl_pid=""
cfssl_port=""
start_cfssl() {
    for _ in 1 2 3 4 5; do
        cfssl_port=$((20000 + RANDOM % 30000))
        cfssl serve -address 127.0.0.1 -port "$cfssl_port" -config "$work/cfssl.json" \
            -ca "$work/ca/root.crt" -ca-key "$work/ca/root.key" \
            -tls-cert "$work/tls/service.chain.pem" -tls-key "$work/tls/service.key" \
            2>"$work/cfssl.log" &
        cfssl_pid=$!
        pids+=("$cfssl_pid")
        if wait_until "$cfssl_pid" curl -sf --cacert "$work/ca/root.crt" -d '{}' \
            "https://127.0.0.1:$cfssl_port/api/v1/cfssl/info"; then
            return 0
        fi
        stop_pid "$cfssl_pid"
    done
    echo "cfssl serve did not start:" >&2
    cat "$work/cfssl.log" >&2
    exit 1
}

# TARGET PREFIX COUNT: one run of service_load; prints its key=value line.
run() {
    local url
    if [ "$1" = brokertls ]; then url="https://127.0.0.1:$service_port"; else url="https://127.0.0.1:$cfssl_port"; fi
    "$load" --target "$1" --url "$url" --cacert "$work/ca/root.crt" --key-file "$work/bench.key" \
        --key-id bench --profile device --requests "$3" --clients "$clients" --prefix "$2"
}
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }
# CPU time (user + system, ms) process PID has used: what a certificate costs the server,
# whatever else the machine runs.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) * 1000 / hz }' "/proc/$1/stat"; }

start_service
start_cfssl
warm=$((requests < 500 ? requests : 500))
run brokertls warm-b "$warm" >/dev/null
run cfssl warm-c "$warm" >/dev/null

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
printf '%-10s %5s %8s %8s %9s %8s %8s %8s %11s %14s\n' target round requests seconds certs/s \
    failures p50_ms p99_ms connections server_cpu_ms/cert
best_b=0
best_c=0
failed=0
for round in $(seq "$rounds"); do
    for target in brokertls cfssl; do
        if [ "$target" = brokertls ]; then pid=$service_pid; else pid=$cfssl_pid; fi
        cpu_before=$(cpu_ms "$pid")
        line=$(run "$target" "r$round-$target" "$requests") || failed=1
        cpu=$(echo "($(cpu_ms "$pid") - $cpu_before) / $requests" | bc -l)
        rate=$(field certs_per_s "$line")
        rate=${rate:-0}
        printf '%-10s %5s %8s %8s %9s %8s %8s %8s %11s %14.2f\n' "$target" "$round" \
            "$(field requests "$line")" "$(field seconds "$line")" "$rate" \
            "$(field failures "$line")" "$(field p50_ms "$line")" "$(field p99_ms "$line")" \
            "$(field connections "$line")" "$cpu"
        if [ "$target" = brokertls ]; then
            best_b=$(echo "if ($rate > $best_b) $rate else $best_b" | bc -l)
        else
            best_c=$(echo "if ($rate > $best_c) $rate else $best_c" | bc -l)
        fi
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
ratio=$(echo "$best_b / $best_c" | bc -l)
met=$(echo "$ratio >= 2 && $best_b >= 1000" | bc -l)
printf 'best: brokertls-service %.0f/s, cfssl serve %.0f/s, ratio %.2fx (targets >= 2x and >= 1000/s: %s)\n' \
    "$best_b" "$best_c" "$ratio" "$([ "$met" = 1 ] && echo met || echo NOT met)"
stop_pid "$cfssl_pid"

# Idle connections, on a fresh service so that what the throughput runs left behind does not
# hide the cost (IDLE=0: skipped).
stop_pid "$service_pid"
[ "$idle" -gt 0 ] || exit "$failed"
start_service
echo "idle: $idle TLS connections, one request each (GET, answered 404), then held"
line=$("$load" --idle "$idle" --url "https://127.0.0.1:$service_port" --cacert "$work/ca/root.crt" \
    --pid "$service_pid" --hold 5) || failed=1
echo "$line"
printf 'brokertls-service memory per idle TLS connection: %s KiB (%s of %s held, %s still answering)\n' \
    "$(field kib_per_connection "$line")" "$(field connections "$line")" "$idle" \
    "$(field 'still_answering_after_[0-9]*s' "$line")"
exit "$failed"
