#!/usr/bin/env bash
# ACME benchmarks (issue #4 §5), against one real Pebble on 127.0.0.1 in one run:
#  1. time to certificate: one name, http-01, the whole cold flow (new account, order, http-01
#     validation, finalize, download) with a fresh state directory per run, for brokertls
#     (tests/bench/acme_obtain.cpp), lego and certbot; RUNS (default 5) runs each, interleaved
#     so drift hits all three alike. Each is timed from outside, process start to exit, and its
#     certificate is checked. Prints the medians and the ratios lego/brokertls, certbot/brokertls
#     (reference on this machine type: lego 6.1 s, certbot 3.4 s; target for brokertls <= 0.5 s).
#  2. FLEET (default 100) certificate profiles ordered at once by the certificate pipeline
#     (tests/bench/acme_fleet.cpp): wall time until every profile has its certificate and peak
#     RSS, with max_concurrent_orders 4 (the default) and 16. Target <= 15 s.
# Pebble runs with PEBBLE_VA_NOSLEEP=1 and its default 5% badNonce rejection; every name resolves
# to 127.0.0.1 through pebble-challtestsrv. Its HTTPS certificate comes from brokertls-ca.
# Usage: tests/bench/acme_bench.sh [RUNS] [FLEET]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
runs=${1:-5}
fleet=${2:-100}
"$root/scripts/build" "$root/build" -DBROKERTLS_BENCH=ON
ca="$root/build/ca-tools/brokertls-ca"
obtain="$root/build/tests/bench/acme_obtain"
fleet_bin="$root/build/tests/bench/acme_fleet"
for tool in pebble pebble-challtestsrv lego certbot openssl; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"

# N distinct free ports (shuf draws without repetition): all are picked before anything binds.
free_ports() {
    local n=$1 p
    for p in $(shuf -i 20000-45000 -n 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        echo "$p"
        n=$((n - 1))
        [ "$n" -gt 0 ] || return 0
    done
    exit 1
}
wait_port() {
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "$2 on port $1 did not start; its log:" >&2
    cat "$3" >&2
    exit 1
}
now() { date +%s.%N; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# The certificate a tool wrote must exist and be for the name it was asked for.
check_cert() {
    openssl x509 -in "$1" -noout -checkhost "$2" 2>/dev/null | grep -q "does match" ||
        { echo "$3 run $4: no certificate for $2 at $1" >&2; exit 1; }
}
# A failed run shows its log and ends the benchmark.
run_logged() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 || { echo "failed: $*" >&2; tail -n 40 "$log" >&2; exit 1; }
}

"$ca" init --dir ca >/dev/null
"$ca" issue server 127.0.0.1 localhost --dir ca --out tls --file-name pebble >/dev/null
read -r acme_port pebble_mgmt http_port tls_port dns_port dns_mgmt <<<"$(free_ports 6 | xargs)"
[ -n "$dns_mgmt" ] || { echo "no free ports on 127.0.0.1" >&2; exit 1; }
cat >pebble.json <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$acme_port", "managementListenAddress": "127.0.0.1:$pebble_mgmt",
  "certificate": "$work/tls/pebble.chain.pem", "privateKey": "$work/tls/pebble.key",
  "httpPort": $http_port, "tlsPort": $tls_port, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
pebble-challtestsrv -defaultIPv6 "" -defaultIPv4 127.0.0.1 -dns01 "127.0.0.1:$dns_port" -http01 "" \
    -https01 "" -tlsalpn01 "" -management "127.0.0.1:$dns_mgmt" >challtestsrv.log 2>&1 &
pids+=($!)
wait_port "$dns_mgmt" pebble-challtestsrv challtestsrv.log
PEBBLE_VA_NOSLEEP=1 pebble -config pebble.json -dnsserver "127.0.0.1:$dns_port" >pebble.log 2>&1 &
pids+=($!)
wait_port "$acme_port" pebble pebble.log
directory="https://127.0.0.1:$acme_port/dir"
bundle="$work/ca/root.crt"

echo "== time to certificate: one name, http-01, cold (new account + order + validation + finalize + download), $runs runs each"
: >ours.times
: >ours.inside
: >lego.times
: >certbot.times
for i in $(seq 1 "$runs"); do
    name="ours-$i.bench.test"
    t0=$(now)
    run_logged "ours-$i.log" "$obtain" "$directory" "$bundle" "127.0.0.1:$http_port" "ours-$i" "$name"
    t1=$(now)
    check_cert "ours-$i/cert.pem" "$name" brokertls "$i"
    echo "$t1 - $t0" | bc -l >>ours.times
    tail -n 1 "ours-$i.log" >>ours.inside

    name="lego-$i.bench.test"
    t0=$(now)
    run_logged "lego-$i.log" env LEGO_CA_CERTIFICATES="$bundle" lego --server "$directory" \
        --email bench@example.com --accept-tos --path "lego-$i" --domains "$name" \
        --http --http.port "127.0.0.1:$http_port" run
    t1=$(now)
    check_cert "lego-$i/certificates/$name.crt" "$name" lego "$i"
    echo "$t1 - $t0" | bc -l >>lego.times

    name="certbot-$i.bench.test"
    t0=$(now)
    run_logged "certbot-$i.log" env REQUESTS_CA_BUNDLE="$bundle" certbot certonly --standalone \
        --http-01-address 127.0.0.1 --http-01-port "$http_port" --config-dir "certbot-$i/config" \
        --work-dir "certbot-$i/work" --logs-dir "certbot-$i/logs" --agree-tos -m bench@example.com \
        --non-interactive --server "$directory" -d "$name"
    t1=$(now)
    check_cert "certbot-$i/config/live/$name/fullchain.pem" "$name" certbot "$i"
    echo "$t1 - $t0" | bc -l >>certbot.times
    printf 'run %d: brokertls %.3f s (%.3f s inside the process), lego %.3f s, certbot %.3f s\n' "$i" \
        "$(tail -n 1 ours.times)" "$(tail -n 1 ours.inside)" "$(tail -n 1 lego.times)" "$(tail -n 1 certbot.times)"
done
ours=$(median <ours.times)
ours_inside=$(median <ours.inside)
lego=$(median <lego.times)
certbot=$(median <certbot.times)

echo "== $fleet certificate profiles ordered at once by the certificate pipeline (one account, http-01)"
fleet_line() {
    run_logged "fleet-$1.log" "$fleet_bin" "$directory" "$bundle" "127.0.0.1:$http_port" "fleet-$1" "$fleet" "$1"
    tail -n 1 "fleet-$1.log"
}
fleet4=$(fleet_line 4)
echo "$fleet4"
fleet16=$(fleet_line 16)
echo "$fleet16"

echo
echo "== results"
printf 'time to certificate (median of %d): brokertls %.2f s, lego %.2f s, certbot %.2f s; lego/brokertls %.1fx, certbot/brokertls %.1fx\n' \
    "$runs" "$ours" "$lego" "$certbot" "$(echo "$lego / $ours" | bc -l)" "$(echo "$certbot / $ours" | bc -l)"
printf '  (brokertls inside its process: %.2f s; reference lego 6.1 s, certbot 3.4 s; target brokertls <= 0.5 s)\n' "$ours_inside"
echo "$fleet4"
echo "$fleet16"
echo "  (target <= 15 s)"
