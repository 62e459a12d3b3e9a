#!/usr/bin/env bash
# Scale benchmark (issue #9): mosquitto with the brokertls plugin and N `files` certificate
# profiles (each its own source files and deploy paths; listener 1 serves profile p1), on
# 127.0.0.1. For each N, RUNS times (default 3; the table shows medians):
#  1. first start: mosquitto launched with nothing deployed yet (the plugin deploys N
#     certificates) until a mutual-TLS connect + CONNECT/CONNACK succeeds;
#     restart: the same once the files are deployed,
#  2. RSS (VmRSS) after 10 s idle, 3. idle CPU (% of one core) over those 10 s, no clients,
#  4. getStatus: wall time of `brokertls-ctl status` (a Paho client: connect, request, answer),
#  5. one changed certificate served: p1's source key+cert rewritten (atomic renames), delay to
#     the first handshake on the listener serving it (median of 3 rotations, mqtt_load rotate),
#  6. SIGHUP reload: time until a connect begun after the signal is answered, and the connects
#     of one continuous client from the signal to 1 s after that (mqtt_load reload; each connect
#     gives up after 5 s without an answer and counts as failed).
# Plus plain mosquitto (same listener, no plugin) for 1-3 as the baseline, and the targets of
# issue #9 with pass/miss. Broker logs are timestamped (ms) as they are written; KEEP_LOGS=DIR
# keeps them (DIR/N-RUN-{first,restart}.log) to see which phase is slow.
# Usage: [RUNS=3] [BUDGET=600] [START_TIMEOUT=600] [KEEP_LOGS=DIR] tests/bench/scale_bench.sh [N...]
# (default N: 1 1000 10000). An N whose first run takes over BUDGET seconds gets one run; a
# broker that does not answer within START_TIMEOUT seconds is reported as such.
# SKIP_BUILD=1 uses build/ as it is (built with -DBROKERTLS_BENCH=ON).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1 1000 10000)
runs=${RUNS:-3}
if [ -z "${SKIP_BUILD:-}" ]; then
    "$root/scripts/build" "$root/build" -DBROKERTLS_BENCH=ON --target brokertls_mosquitto \
        --target brokertls-ca --target brokertls-ctl --target mqtt_load
fi
ca="$root/build/ca-tools/brokertls-ca"
ctl="$root/build/ca-tools/brokertls-ctl"
load="$root/build/tests/bench/mqtt_load"
plugin="$root/build/broker-adapters/mosquitto/brokertls_mosquitto.so"
mosquitto=/usr/sbin/mosquitto
start_timeout=${START_TIMEOUT:-600} # seconds; every wait below is bounded
budget=${BUDGET:-600} # no further runs of an N whose first run took longer (seconds)
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$work"

free_port() {
    for p in $(shuf -i 20000-45000 -n 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
    done
    echo "no free port" >&2
    exit 1
}
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # comm is "(mosquitto)": no spaces
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

client=(ca/root.crt certs/bench.chain.pem certs/bench.key)
max_n=$(printf '%s\n' "${sizes[@]}" | sort -n | tail -1)
"$ca" init --dir ca >/dev/null
"$ca" crl --dir ca >/dev/null
"$ca" issue client bench admin --dir ca --out certs >/dev/null
mkdir -p src logs
t=$(now)
"$load" servers ca src "$max_n" >/dev/null
echo "issued $max_n server certificates in $(elapsed "$t" "$(now)") s (mqtt_load servers)"

config() { # N: brokertls.json with N files profiles p1..pN
    {
        echo '{"certificate_profiles": {'
        for i in $(seq 1 "$1"); do
            [ "$i" = 1 ] || echo ','
            printf '"p%d": {"source": "files", "files": {"key": "src/srv-%d.key", "cert": "src/srv-%d.chain.pem"}, "names": ["localhost", "127.0.0.1"], "deploy": {"cert": "live/p%d.crt", "key": "live/p%d.key"}}' \
                "$i" "$i" "$i" "$i" "$i"
        done
        echo '},'
        echo '"security_profiles": {"devices": {"trust_anchors": ["ca/root.crt"], "crls": ["ca/crl.pem"]}},'
        echo '"control": {"allow": ["admin"]}}'
    } >brokertls.json
}
mosquitto_conf() { # PORT plugin|plain
    cat <<CONF
user root
log_dest stdout
log_timestamp false
log_type error
log_type warning
log_type notice
log_type information
connection_messages false
set_tcp_nodelay true
per_listener_settings true
listener $1 127.0.0.1
cafile $work/ca/root.crt
require_certificate true
CONF
    if [ "$2" = plugin ]; then
        cat <<CONF
certfile $work/live/p1.crt
keyfile $work/live/p1.key
plugin $plugin
plugin_opt_config_file $work/brokertls.json
plugin_opt_security_profile devices
CONF
    else
        printf 'certfile %s\nkeyfile %s\nallow_anonymous true\n' "$work/src/srv-1.chain.pem" "$work/src/srv-1.key"
    fi
}

# start_broker plugin|plain LOG: sets $broker (pid), $port, $start_s (launch to a TLS
# connect + CONNACK answered). The log gets each line prefixed with the time it was written.
start_broker() {
    port=$(free_port)
    mosquitto_conf "$port" "$1" >mosquitto.conf
    rm -f log.fifo && mkfifo log.fifo
    : >"$2"
    # perl opens the FIFO itself, so it is running before mosquitto writes its first line.
    perl -MTime::HiRes=time -ne 'BEGIN { $| = 1 } printf "%.3f %s", time, $_' log.fifo >>"$2" &
    pids+=($!)
    # One client process tries to connect every 5 ms from before the launch (starting a
    # process per try would add its own start-up to the figure).
    "$load" wait "$port" "${client[@]}" "$start_timeout" >answered &
    local waiter=$!
    pids+=("$waiter")
    for _ in $(seq 1 1000); do grep -q trying answered && break; sleep 0.01; done
    local t0
    t0=$(now)
    echo "$t0 (launch)" >>"$2"
    stdbuf -oL "$mosquitto" -c mosquitto.conf >log.fifo 2>&1 &
    broker=$!
    pids+=("$broker")
    while kill -0 "$waiter" 2>/dev/null; do
        if ! kill -0 "$broker" 2>/dev/null; then
            echo "mosquitto exited during start-up:" >&2
            tail -20 "$2" >&2
            exit 1
        fi
        sleep 0.05
    done
    if ! wait "$waiter"; then
        echo "mosquitto did not answer within $start_timeout s" >&2
        stop_broker
        return 1
    fi
    start_s=$(elapsed "$t0" "$(awk '/^answered/ { print $2 }' answered)")
}
stop_broker() {
    kill -TERM "$broker" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$broker" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$broker" 2>/dev/null || true
    wait "$broker" 2>/dev/null || true
}
# idle: sets $cpu_pct (one core, over 10 s without clients) and $rss (MB, at the end)
idle() {
    local t0 c0
    t0=$(now)
    c0=$(cpu_ticks "$broker")
    sleep 10
    cpu_pct=$(awk -v c="$(($(cpu_ticks "$broker") - c0))" -v hz="$(getconf CLK_TCK)" \
        -v s="$(elapsed "$t0" "$(now)")" 'BEGIN { printf "%.1f", 100 * c / hz / s }')
    rss=$(rss_mb "$broker")
}
keep_log() { if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$1" "$KEEP_LOGS/$2"; fi; }

echo "== plain mosquitto (no plugin), one listener, $runs runs"
p_start=() p_rss=() p_cpu=()
for r in $(seq 1 "$runs"); do
    start_broker plain logs/plain.log
    idle
    p_start+=("$start_s") p_rss+=("$rss") p_cpu+=("$cpu_pct")
    stop_broker
done
plain_start=$(median "${p_start[@]}") plain_rss=$(median "${p_rss[@]}") plain_cpu=$(median "${p_cpu[@]}")
echo "start ${p_start[*]} s; RSS ${p_rss[*]} MB; idle CPU ${p_cpu[*]} %"

rows=()
for n in "${sizes[@]}"; do
    config "$n"
    echo "== $n certificate profiles, $runs runs"
    first=() restart=() mem=() cpu=() status=() served=() reload=() conns=() failed=() p50=() p99=() pmax=()
    done_runs=0
    for r in $(seq 1 "$runs"); do
        run_t0=$(now)
        # Set aside, not deleted: this machine's root filesystem is ext4 without a journal, where
        # allocating an inode skips, one inode-table read each, every inode freed in the last
        # minutes; 20,000 files deleted right before a start doubled it (10,000 profiles: 9.6 s
        # instead of 4.8, 6.7 s of system time). The work directory goes at the end.
        mkdir -p retired
        for d in live state; do [ ! -e "$d" ] || mv "$d" "retired/$d-$n-$r"; done
        mkdir live
        if ! start_broker plugin "logs/$n-$r-first.log"; then
            keep_log "logs/$n-$r-first.log" "$n-$r-first.log"
            break
        fi
        first+=("$start_s")
        idle
        mem+=("$rss") cpu+=("$cpu_pct")
        for _ in 1 2 3; do
            t=$(now)
            if ! timeout 60 "$ctl" --port "$port" --ca ca/root.crt --cert certs/admin.chain.pem \
                --key certs/admin.key status >/dev/null; then
                echo "brokertls-ctl status failed" >&2
                exit 1
            fi
            status+=("$(elapsed "$t" "$(now)")")
        done
        out=$(timeout 900 "$load" rotate "$port" "${client[@]}" ca src/srv-1.chain.pem src/srv-1.key 3 240) || true
        echo "  rotate: $out"
        served+=("$(echo "$out" | awk '{ for (i = 1; i < NF; ++i) if ($i == "median") print $(i + 1) }')")
        out=$(timeout 400 "$load" reload "$port" "${client[@]}" "$broker") || true
        echo "  SIGHUP: $out"
        read -r reload_ms c f a b m < <(echo "$out" | awk '{ print $2, $4, $6, $9, $11, $13 }')
        if [ "$reload_ms" = timeout ] || [ -z "$reload_ms" ]; then # not answered within 300 s
            reload_ms=300000 a=300000 b=300000 m=300000
        fi
        reload+=("$(awk -v v="$reload_ms" 'BEGIN { printf "%.2f", v / 1000 }')")
        conns+=("$c") failed+=("$f") p50+=("$a") p99+=("$b") pmax+=("$m")
        stop_broker
        keep_log "logs/$n-$r-first.log" "$n-$r-first.log"
        start_broker plugin "logs/$n-$r-restart.log" || start_s="> $start_timeout"
        restart+=("$start_s")
        stop_broker
        keep_log "logs/$n-$r-restart.log" "$n-$r-restart.log"
        done_runs=$r
        echo "  run $r: first start ${first[-1]} s, restart ${restart[-1]} s, RSS ${mem[-1]} MB, idle CPU ${cpu[-1]} %, status ${status[@]: -3} s"
        if [ "$r" -lt "$runs" ] && [ "$(elapsed "$run_t0" "$(now)" | cut -d. -f1)" -gt "$budget" ]; then
            echo "  run $r took over $budget s (BUDGET): no further runs for N=$n"
            break
        fi
    done
    if [ "$done_runs" = 0 ]; then
        rows+=("$n|0|> $start_timeout|||||||||||")
        continue
    fi
    rows+=("$n|$done_runs|$(median "${first[@]}")|$(median "${restart[@]}")|$(median "${mem[@]}")|$(median "${cpu[@]}")|$(median "${status[@]}")|$(median "${served[@]}")|$(median "${reload[@]}")|$(median "${conns[@]}")|$(median "${failed[@]}")|$(median "${p50[@]}")|$(median "${p99[@]}")|$(median "${pmax[@]}")")
done

# verdict VALUE LIMIT: "pass" when VALUE <= LIMIT
verdict() { awk -v v="$1" -v l="$2" 'BEGIN { print (v ~ /^[0-9.]+$/ && v + 0 <= l + 0) ? "pass" : "MISS" }'; }
echo
echo "== results ($(nproc) cores, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); medians)"
echo "| N profiles | runs | first start | restart | RSS | idle CPU | getStatus | changed cert served | SIGHUP reload | connects during reload / failed | latency p50 / p99 / max |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
echo "| plain mosquitto | $runs | $plain_start s | | $plain_rss MB | $plain_cpu % | | | | | |"
for row in "${rows[@]}"; do
    IFS='|' read -r n nr fs rs m c st sv rl cn fl a b mx <<<"$row"
    if [ "$nr" = 0 ]; then
        echo "| $n | 0 | did not answer within $start_timeout s | | | | | | | | |"
        continue
    fi
    echo "| $n | $nr | $fs s | $rs s | $m MB | $c % | $st s | $sv ms | $rl s | $cn / $fl | $a / $b / $mx ms |"
done
echo
echo "targets (issue #9, for 10,000 profiles; checked for every N):"
for row in "${rows[@]}"; do
    IFS='|' read -r n nr fs rs m c st sv rl cn fl a b mx <<<"$row"
    if [ "$nr" = 0 ]; then
        echo "N=$n: start <= 5 s: did not answer within $start_timeout s MISS; nothing else measured"
        continue
    fi
    echo "N=$n: start <= 5 s: first $fs $(verdict "$fs" 5), restart $rs $(verdict "$rs" 5);" \
        "RSS <= 150 MB: $m $(verdict "$m" 150); idle CPU <= 1 %: $c $(verdict "$c" 1);" \
        "getStatus <= 1 s: $st $(verdict "$st" 1); served <= 200 ms: $sv $(verdict "$sv" 200);" \
        "reload blocks <= 50 ms: $rl s $(verdict "$rl" 0.05); failed = 0: $fl $(verdict "$fl" 0);" \
        "p99 <= 50 ms: $b $(verdict "$b" 50)"
done
IFS='|' read -r n _ _ _ m c _ <<<"${rows[0]}"
awk -v n="$n" -v s="$(echo "${rows[0]}" | cut -d'|' -f3)" -v ps="$plain_start" -v m="$m" -v pm="$plain_rss" \
    -v c="$c" -v pc="$plain_cpu" 'BEGIN {
        printf "ratio plugin (N=%s) / plain mosquitto: start %.1fx, RSS %.2fx, idle CPU %s\n", n, s / ps,
            m / pm, pc > 0 ? sprintf("%.1fx", c / pc) : sprintf("%s %% vs %s %%", c, pc) }'
