#!/usr/bin/env bash
# Broker benchmarks (issue #3), in one run on 127.0.0.1, for Debian's Mosquitto 2.0 and the
# vendored upstream 2.1 (scripts/build-mosquitto), one version after the other; plugin and plain
# are always the same version:
#  1. connection rate: N (default 2000) mTLS connect + CONNACK + disconnect (a full handshake
#     each, tests/bench/mqtt_load.cpp) against mosquitto with the brokertls plugin and against the
#     same mosquitto with plain `cafile` + `require_certificate`, from 1 connector (sequential)
#     and from 4 and 16 parallel connectors (each its own client certificate and client id);
#     prints both rates per run (REPS runs, alternating) and the median ratio (target >= 0.98,
#     issue #9), and the broker's CPU per connection.
#  2. hot reload under load: while one client connects continuously, the server certificate (a
#     `files` certificate profile) is rotated R (default 100) times; prints handshakes attempted
#     and failed, and the delay from new certificate on disk to the first handshake serving it
#     (target: 0 failed, delay <= 1 s).
# Each version in its own configuration form: 2.0 per listener (per_listener_settings,
# plugin_opt_security_profile), 2.1 as recommended (brokertls once as global_plugin, its
# "listeners" mapping the port to the security profile; listener_allow_anonymous for plain).
# Ends with a summary per version.
# Usage: [REPS=3] [MOSQUITTO=2.0|2.1|both] tests/bench/broker_bench.sh [N] [R]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-2000}
rotations=${2:-100}
reps=${REPS:-3} # alternating plain/plugin runs per connector count; the ratio is their median
case "${MOSQUITTO:-both}" in
2.0 | 2.1) versions=("$MOSQUITTO") ;;
both) versions=(2.0 2.1) ;;
*) echo "MOSQUITTO: 2.0, 2.1 or both, not '$MOSQUITTO'" >&2 && exit 2 ;;
esac
build_args=(-DBROKERTLS_BENCH=ON)
if [[ " ${versions[*]} " == *" 2.1 "* ]]; then
    prefix21=$("$root/scripts/build-mosquitto" "$root/build")
    build_args+=(-DBROKERTLS_MOSQUITTO21="$prefix21")
fi
"$root/scripts/build" "$root/build" "${build_args[@]}"
ca="$root/build/ca-tools/brokertls-ca"
load="$root/build/tests/bench/mqtt_load"
plugins="$root/build/broker-adapters/mosquitto"
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
client=(ca/root.crt certs/bench.chain.pem certs/bench.key)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# conf NAME HEAD PORT CERT KEY TAIL: a broker configuration with one mTLS listener; HEAD before
# it, TAIL in it.
conf() {
    printf 'user root\nset_tcp_nodelay true\nlog_dest file %s\nlog_type error\nlog_type warning\n%s\n' \
        "$work/$1.log" "$2"
    printf 'listener %s 127.0.0.1\ncertfile %s\nkeyfile %s\ncafile %s\nrequire_certificate true\n%s\n' \
        "$3" "$4" "$5" "$work/ca/root.crt" "$6"
}
summary=()

# bench VERSION: both brokers of that version, every measurement, then both stopped.
bench() {
    local v=$1 broker plugin_head plugin_tail plain_head plain_tail
    local plugin_port plain_port plugin_pid plain_pid
    plugin_port=$(free_port)
    plain_port=$(free_port)
    # All that differs between the versions: the broker and where its security options go.
    case "$v" in
    2.0)
        broker=/usr/sbin/mosquitto
        plugin_head="per_listener_settings true" plain_head="per_listener_settings true"
        plugin_tail="plugin $plugins/brokertls_mosquitto.so
plugin_opt_config_file $work/brokertls.json
plugin_opt_security_profile devices"
        plain_tail="allow_anonymous true"
        ;;
    2.1)
        broker=$prefix21/sbin/mosquitto
        plugin_head="global_plugin $plugins/brokertls_mosquitto21.so
plugin_opt_config_file $work/brokertls.json" plain_head=""
        plugin_tail="" plain_tail="listener_allow_anonymous true"
        ;;
    esac
    # 2.0 ignores "listeners" (a notice, not logged here).
    cat >brokertls.json <<JSON
{
  "certificate_profiles": {"broker": {"source": "files", "files": {"key": "src/server.key", "cert": "src/server.chain.pem"},
    "names": ["localhost", "127.0.0.1"], "deploy": {"cert": "live/broker.crt", "key": "live/broker.key"}}},
  "security_profiles": {"devices": {"trust_anchors": ["ca/root.crt"], "crls": ["ca/crl.pem"]}},
  "listeners": {"$plugin_port": "devices"}
}
JSON
    conf "plugin-$v" "$plugin_head" "$plugin_port" "$work/live/broker.crt" "$work/live/broker.key" \
        "$plugin_tail" >"plugin-$v.conf"
    conf "plain-$v" "$plain_head" "$plain_port" "$work/src/server.chain.pem" "$work/src/server.key" \
        "$plain_tail" >"plain-$v.conf"
    "$broker" -c "plugin-$v.conf" >/dev/null 2>&1 &
    plugin_pid=$!
    pids+=($!)
    "$broker" -c "plain-$v.conf" >/dev/null 2>&1 &
    plain_pid=$!
    pids+=($!)
    wait_port "$plugin_port"
    wait_port "$plain_port"

    echo "======== Mosquitto $v ($("$broker" -h 2>/dev/null | head -1)): plugin vs plain, both $v"
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
    "$load" rate "$plain_port" "${client[@]}" 200 >/dev/null # warm-up
    "$load" rate "$plugin_port" "${client[@]}" 200 >/dev/null
    local p args rep plain with ratios medians=() plain_ticks plugin_ticks t0 t1
    for p in 1 4 16; do
        if [ "$p" = 1 ]; then
            args=("${client[@]}" "$n")
        else
            args=(ca/root.crt 'certs/bench-{}.chain.pem' 'certs/bench-{}.key' "$n" "$p" 'bench-{}')
        fi
        echo "== $v connection rate: $n mTLS connections from $p connector(s) (full handshake, CONNECT/CONNACK/DISCONNECT), $reps alternating runs each"
        ratios=()
        plain_ticks=0 plugin_ticks=0
        for rep in $(seq 1 "$reps"); do
            t0=$(cpu_ticks "$plain_pid") t1=$(cpu_ticks "$plugin_pid")
            # Alternating, so a drift of the shared machine's load falls on both alike.
            plain=$("$load" rate "$plain_port" "${args[@]}")
            with=$("$load" rate "$plugin_port" "${args[@]}")
            plain_ticks=$((plain_ticks + $(cpu_ticks "$plain_pid") - t0))
            plugin_ticks=$((plugin_ticks + $(cpu_ticks "$plugin_pid") - t1))
            echo "  run $rep: plain mosquitto $v (cafile + require_certificate): $plain"
            echo "  run $rep: mosquitto $v + brokertls plugin:                  $with"
            ratios+=("$(awk -v a="$(echo "$with" | awk '{ print $NF }')" -v b="$(echo "$plain" | awk '{ print $NF }')" 'BEGIN { printf "%.3f", a / b }')")
        done
        medians+=("$(median "${ratios[@]}")")
        echo "$v ratio (plugin / plain), $p connector(s): median ${medians[-1]} of ${ratios[*]}   target >= 0.98"
        # The broker's own CPU per connection (user + system, every thread): what the plugin adds,
        # without the clients' share of the two cores.
        awk -v a="$plugin_ticks" -v b="$plain_ticks" -v n="$((n * reps))" -v p="$p" -v v="$v" -v hz="$(getconf CLK_TCK)" 'BEGIN {
            printf "%s broker CPU per connection, %d connector(s): plain %.0f us, plugin %.0f us (%.3fx)\n", v, p, 1e6 * b / hz / n, 1e6 * a / hz / n, a / b }'
    done

    echo "== $v hot reload under load: $rotations server certificate rotations while a client connects continuously"
    local reload
    reload=$("$load" rotate "$plugin_port" "${client[@]}" ca src/server.chain.pem src/server.key "$rotations")
    echo "$reload"
    echo "target: 0 failed, delay <= 1000 ms"
    summary+=("Mosquitto $v: ratio plugin/plain (median) 1 / 4 / 16 connectors: ${medians[0]} / ${medians[1]} / ${medians[2]};  reload: $reload")

    kill "$plugin_pid" "$plain_pid"
    wait "$plugin_pid" "$plain_pid" 2>/dev/null || true
    pids=()
}

for v in "${versions[@]}"; do bench "$v"; done
echo "======== summary (targets: ratio >= 0.98; reload 0 failed, delay <= 1000 ms)"
printf '%s\n' "${summary[@]}"
