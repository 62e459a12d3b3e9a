#!/usr/bin/env bash
# brokertls-gateway benchmark (issue #12), in one run on 127.0.0.1: N (default 2000) mTLS
# connect + CONNACK + disconnect (a full handshake each, tests/bench/mqtt_load.cpp) from 1 and
# 16 parallel connectors (each its own client certificate and client id), the same client
# certificates and CA (with its CRL) for three setups:
#   direct:  Debian's mosquitto 2.0 terminating TLS itself (cafile, crlfile,
#            require_certificate, use_identity_as_username);
#   gateway: brokertls-gateway (connect_rewrite, a security profile with that CA) in front of
#            plain Debian mosquitto 2.0 on loopback;
#   haproxy: haproxy `mode tcp` (ssl, ca-file, crl-file, verify required, send-proxy-v2-ssl-cn)
#            in front of the vendored mosquitto 2.1 with `enable_proxy_protocol 2`.
# Prints one line per setup and connector count, then the ratios gateway/haproxy and
# gateway/direct (issue target: gateway handshakes/s >= haproxy's), and the gateway's RSS per
# idle connection with IDLE (default 2000) connections held.
# Needs haproxy (scripts/install-deps) and the vendored 2.1 (scripts/build-mosquitto).
# Usage: [IDLE=K] [BROKERTLS_MOSQUITTO21=PREFIX] tests/bench/gateway_bench.sh [N]
# (PREFIX: an installed Mosquitto 2.1 to use instead of building the vendored one here)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-2000}
command -v haproxy >/dev/null || { echo "haproxy is not installed (scripts/install-deps)" >&2 && exit 2; }
prefix21=${BROKERTLS_MOSQUITTO21:-$("$root/scripts/build-mosquitto" "$root/build")}
"$root/scripts/build" "$root/build" --target brokertls-ca --target brokertls-gateway --target mqtt_load \
    -DBROKERTLS_BENCH=ON -DBROKERTLS_MOSQUITTO21="$prefix21"
ca="$root/build/ca-tools/brokertls-ca"
load="$root/build/tests/bench/mqtt_load"
gateway="$root/build/broker-adapters/gateway/brokertls-gateway"
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"

direct_port="" plain_port="" gateway_port="" idle_port="" proxied_port="" haproxy_port=""
# free_port VAR: a port nobody listens on and not handed out before (the brokers bind later).
taken=" "
free_port() {
    for p in $(shuf -i 20000-45000 -n 100); do
        [[ "$taken" == *" $p "* ]] && continue
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        taken+="$p "
        printf -v "$1" '%s' "$p"
        return 0
    done
    exit 1
}
wait_port() {
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "$2 on port $1 did not start; its log:" >&2
    cat "$work/$2.log" >&2 || true
    exit 1
}
# start NAME COMMAND...: in the background, its output in NAME.log, stopped on exit.
start() {
    local name=$1
    shift
    "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
}

"$ca" init --dir ca >/dev/null
"$ca" crl --dir ca >/dev/null
"$ca" issue server localhost 127.0.0.1 --dir ca --out src --file-name server >/dev/null
"$ca" issue client bench --dir ca --out certs >/dev/null
for i in $(seq 0 15); do "$ca" issue client "bench-$i" --dir ca --out certs >/dev/null; done
cat src/server.chain.pem src/server.key >server.pem # haproxy's crt: chain and key in one file
# broker_head NAME: a broker configuration's first lines, its log in NAME.log.
broker_head() {
    printf 'user root\nset_tcp_nodelay true\nlog_dest file %s\nlog_type error\nlog_type warning\n' \
        "$work/$1.log"
}

# (a) direct: mosquitto 2.0 with TLS itself.
free_port direct_port
cat >direct.conf <<CONF
$(broker_head direct)
listener $direct_port 127.0.0.1
certfile $work/src/server.chain.pem
keyfile $work/src/server.key
cafile $work/ca/root.crt
crlfile $work/ca/crl.pem
require_certificate true
use_identity_as_username true
allow_anonymous true
CONF
start direct /usr/sbin/mosquitto -c direct.conf

# (b) gateway: brokertls-gateway (connect_rewrite) → plain mosquitto 2.0.
free_port plain_port
free_port gateway_port
free_port idle_port
cat >plain.conf <<CONF
$(broker_head plain)
listener $plain_port 127.0.0.1
allow_anonymous true
CONF
start plain /usr/sbin/mosquitto -c plain.conf
cat >brokertls.json <<JSON
{
  "certificate_profiles": {"broker": {"source": "files", "files": {"key": "src/server.key", "cert": "src/server.chain.pem"},
    "names": ["localhost", "127.0.0.1"], "deploy": {"cert": "live/broker.crt", "key": "live/broker.key"}}},
  "security_profiles": {"devices": {"trust_anchors": ["ca/root.crt"], "crls": ["ca/crl.pem"]}},
  "gateway": {"listeners": [{"name": "mqtt", "listen": "127.0.0.1:$gateway_port", "certificates": ["broker"],
    "security_profile": "devices", "upstream": "127.0.0.1:$plain_port", "identity": "connect_rewrite"},
    {"name": "idle", "listen": "127.0.0.1:$idle_port", "certificates": ["broker"], "security_profile": "devices",
    "upstream": "127.0.0.1:$plain_port", "client_id_must_match": false}],
    "limits": {"max_connections": 100000, "per_address": 100000}}
}
JSON
mkdir -p live
start gateway "$gateway" --config brokertls.json
gateway_pid=${pids[-1]}

# (c) haproxy → mosquitto 2.1 reading the PROXY v2 header (the gateway tests' 2.1 settings).
free_port proxied_port
free_port haproxy_port
cat >proxied.conf <<CONF
$(broker_head proxied)
listener $proxied_port 127.0.0.1
enable_proxy_protocol 2
proxy_protocol_v2_require_tls true
use_identity_as_username true
require_certificate true
allow_anonymous true
CONF
start proxied "$prefix21/sbin/mosquitto" -c proxied.conf
cat >haproxy.cfg <<CONF
global
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend mqtts
    bind 127.0.0.1:$haproxy_port ssl crt $work/server.pem ca-file $work/ca/root.crt crl-file $work/ca/crl.pem verify required
    default_backend mosquitto
backend mosquitto
    server m 127.0.0.1:$proxied_port send-proxy-v2-ssl-cn
CONF
start haproxy haproxy -db -f haproxy.cfg

for s in direct:$direct_port plain:$plain_port gateway:$gateway_port gateway:$idle_port proxied:$proxied_port haproxy:$haproxy_port; do
    wait_port "${s#*:}" "${s%%:*}"
done

declare -A port=([direct]=$direct_port [gateway]=$gateway_port [haproxy]=$haproxy_port)
declare -A rate
echo "brokertls-gateway benchmark: $n mTLS connections (full handshake, CONNECT/CONNACK/DISCONNECT) per line"
echo "direct = mosquitto $(/usr/sbin/mosquitto -h 2>/dev/null | head -1 | awk '{ print $3 }') with TLS; gateway = brokertls-gateway -> mosquitto 2.0 plain;" \
    "haproxy = $(haproxy -v | head -1 | awk '{ print $3 }') -> mosquitto $("$prefix21/sbin/mosquitto" -h 2>/dev/null | head -1 | awk '{ print $3 }') (PROXY v2)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
for s in direct gateway haproxy; do # warm-up, and a check that every setup admits the clients
    out=$("$load" rate "${port[$s]}" ca/root.crt certs/bench.chain.pem certs/bench.key 100)
    if [ "$(echo "$out" | awk '{ print $4 }')" != 0 ]; then
        echo "$s refuses the benchmark's clients: $out; logs:" >&2
        tail -n 20 "$work"/*.log >&2
        exit 1
    fi
done
printf '%-8s %10s %14s %8s\n' setup connectors connections/s failures
for p in 1 16; do
    if [ "$p" = 1 ]; then
        args=(ca/root.crt certs/bench.chain.pem certs/bench.key "$n")
    else
        args=(ca/root.crt 'certs/bench-{}.chain.pem' 'certs/bench-{}.key' "$n" "$p" 'bench-{}')
    fi
    for s in direct gateway haproxy; do
        out=$("$load" rate "${port[$s]}" "${args[@]}")
        rate[$s$p]=$(echo "$out" | awk '{ print $8 }')
        printf '%-8s %10s %14s %8s\n' "$s" "$p" "${rate[$s$p]}" "$(echo "$out" | awk '{ print $4 }')"
    done
done
for p in 1 16; do
    awk -v g="${rate[gateway$p]}" -v h="${rate[haproxy$p]}" -v d="${rate[direct$p]}" -v p="$p" 'BEGIN {
        printf "%2d connector(s): gateway/haproxy %.3f (target >= 1.0), gateway/direct %.3f\n", p, g / h, g / d }'
done

# The gateway's memory per idle connection: IDLE connections from one certificate (its second
# listener lets their client ids differ from the identity), held while its RSS is read.
idle=${IDLE:-2000}
echo "gateway RSS with $idle idle mTLS connections held: $("$load" idle "$idle_port" ca/root.crt certs/bench.chain.pem certs/bench.key "$idle" "$gateway_pid")"
