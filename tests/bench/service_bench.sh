#!/usr/bin/env bash
# Benchmark: issuance throughput of brokertls-service (local-ca issuer, POST /v1/certificates with
# the request HMAC) against `cfssl serve` (POST /api/v1/cfssl/authsign, cfssl's HMAC auth) in the
# same run: same CA key, same TLS certificate, HTTPS and HTTP/1.1 keep-alive for both, CLIENTS
# concurrent clients, each request a new CSR (tests/bench/service_load.cpp). A warm-up run of
# each, then ROUNDS (default 2) measured runs of each, alternating; the best run of each counts.
# cfssl runs twice over: as configured by default (it keeps no record of what it signed) and
# with its certificate database (sqlite, -db-config), which is what a CA that must later revoke
# keeps; brokertls-service always records every certificate (index line and copy, as openssl ca).
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
command -v sqlite3 >/dev/null || { echo "needs sqlite3 (Debian: sqlite3)" >&2; exit 1; }
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

# cfssl's certificate database: its sqlite schema (cfssl's certdb/sqlite migration 001; Debian's
# cfssl 1.2 has no later columns).
sqlite3 "$work/certs.db" "CREATE TABLE certificates (serial_number blob NOT NULL,
  authority_key_identifier blob NOT NULL, ca_label blob, status blob NOT NULL, reason int,
  created_at timestamp, expiry timestamp, revoked_at timestamp, pem blob NOT NULL,
  PRIMARY KEY(serial_number, authority_key_identifier));
CREATE INDEX certificates_created_at ON certificates (created_at);
CREATE INDEX certificates_revoked_at ON certificates (revoked_at);
CREATE TABLE ocsp_responses (serial_number blob NOT NULL, authority_key_identifier blob NOT NULL,
  body blob NOT NULL, expiry timestamp, PRIMARY KEY(serial_number, authority_key_identifier));"
# Its best settings: write-ahead log, waiting for the lock rather than failing at once, and each
# record on disk before the answer (as brokertls-service keeps its index).
echo "{\"driver\": \"sqlite3\", \"data_source\": \"file:$work/certs.db?_journal_mode=WAL&_busy_timeout=10000&_synchronous=FULL\"}" >"$work/db.json"

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
# random one, tried until one is free. start_cfssl NAME [ARG...]: sets NAME_pid and NAME_port.
start_cfssl() {
    local name=$1 pid port
    shift
    for _ in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 30000))
        cfssl serve -address 127.0.0.1 -port "$port" -config "$work/cfssl.json" \
            -ca "$work/ca/root.crt" -ca-key "$work/ca/root.key" \
            -tls-cert "$work/tls/service.chain.pem" -tls-key "$work/tls/service.key" "$@" \
            2>"$work/$name.log" &
        pid=$!
        pids+=("$pid")
        if wait_until "$pid" curl -sf --cacert "$work/ca/root.crt" -d '{}' \
            "https://127.0.0.1:$port/api/v1/cfssl/info"; then
            printf -v "${name}_pid" %s "$pid"
            printf -v "${name}_port" %s "$port"
            return 0
        fi
        stop_pid "$pid"
    done
    echo "cfssl serve did not start:" >&2
    cat "$work/$name.log" >&2
    exit 1
}

# TARGET PREFIX COUNT: one run of service_load against brokertls, cfssl or cfssl_db; prints its
# key=value line.
run() {
    local url protocol=cfssl
    case $1 in
    brokertls) url="https://127.0.0.1:$service_port" protocol=brokertls ;;
    cfssl) url="https://127.0.0.1:$cfssl_port" ;;
    cfssl_db) url="https://127.0.0.1:$cfssl_db_port" ;;
    esac
    "$load" --target "$protocol" --url "$url" --cacert "$work/ca/root.crt" --key-file "$work/bench.key" \
        --key-id bench --profile device --requests "$3" --clients "$clients" --prefix "$2"
}
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }
# CPU time (user + system, ms) process PID has used: what a certificate costs the server,
# whatever else the machine runs.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) * 1000 / hz }' "/proc/$1/stat"; }

start_service
start_cfssl cfssl
start_cfssl cfssl_db -db-config "$work/db.json"
targets=(brokertls cfssl cfssl_db)
warm=$((requests < 500 ? requests : 500))
for target in "${targets[@]}"; do run "$target" "warm-$target" "$warm" >/dev/null; done

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
printf '%-10s %5s %8s %8s %9s %8s %8s %8s %11s %14s\n' target round requests seconds certs/s \
    failures p50_ms p99_ms connections server_cpu_ms/cert
declare -A best=([brokertls]=0 [cfssl]=0 [cfssl_db]=0)
failed=0
for round in $(seq "$rounds"); do
    for target in "${targets[@]}"; do
        case $target in
        brokertls) pid=$service_pid ;;
        cfssl) pid=$cfssl_pid ;;
        cfssl_db) pid=$cfssl_db_pid ;;
        esac
        cpu_before=$(cpu_ms "$pid")
        line=$(run "$target" "r$round-$target" "$requests") || failed=1
        cpu=$(echo "($(cpu_ms "$pid") - $cpu_before) / $requests" | bc -l)
        rate=$(field certs_per_s "$line")
        rate=${rate:-0}
        printf '%-10s %5s %8s %8s %9s %8s %8s %8s %11s %14.2f\n' "$target" "$round" \
            "$(field requests "$line")" "$(field seconds "$line")" "$rate" \
            "$(field failures "$line")" "$(field p50_ms "$line")" "$(field p99_ms "$line")" \
            "$(field connections "$line")" "$cpu"
        best[$target]=$(echo "if ($rate > ${best[$target]}) $rate else ${best[$target]}" | bc -l)
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
for peer in cfssl cfssl_db; do
    ratio=$(echo "${best[brokertls]} / ${best[$peer]}" | bc -l)
    met=$(echo "$ratio >= 2 && ${best[brokertls]} >= 1000" | bc -l)
    printf 'best: brokertls-service %.0f/s, %s %.0f/s, ratio %.2fx (targets >= 2x and >= 1000/s: %s)\n' \
        "${best[brokertls]}" "$peer" "${best[$peer]}" "$ratio" "$([ "$met" = 1 ] && echo met || echo NOT met)"
done
echo "cfssl_db recorded $(sqlite3 "$work/certs.db" 'SELECT COUNT(*) FROM certificates') certificates"
stop_pid "$cfssl_pid"
stop_pid "$cfssl_db_pid"

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
