#!/usr/bin/env bash
# Benchmark: issuing N (default 1000) ECDSA P-256 client certificates
#   - with `brokertls-ca issue client --count N` (one process, one index update), and
#   - with the Amlen guide's way: a loop of `openssl genpkey` + `openssl req` + `openssl x509 -req`
# on the same machine in the same run; prints both times, the rates and the ratio.
# Targets (issue #2): ratio >= 40, brokertls-ca >= 1000 certificates/s.
# Usage: tests/bench/ca_issue_bench.sh [N] [OPENSSL_N]   (OPENSSL_N defaults to N)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-1000}
openssl_n=${2:-$n}
ca=${BROKERTLS_CA:-$root/build/ca-tools/brokertls-ca}
[ -x "$ca" ] || { echo "build first: scripts/build (missing $ca)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }

"$ca" init --dir "$work/ca" >/dev/null

# brokertls-ca: best of 3 runs into fresh output directories (the index keeps growing, as in use).
best=""
for run in 1 2 3; do
    t0=$(now)
    "$ca" issue client --count "$n" --prefix "r$run-dev-" --dir "$work/ca" --out "$work/out$run" >/dev/null
    t1=$(now)
    t=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$best" ] || (($(echo "$t < $best" | bc -l))); then best=$t; fi
done
[ "$(ls "$work/out1" | wc -l)" -eq $((3 * n)) ] || { echo "brokertls-ca wrote the wrong number of files" >&2; exit 1; }

# openssl loop, as the Amlen toy-CA guide does it (per certificate: key, CSR, signed cert).
mkdir -p "$work/ossl"
cp "$work/ca/root.crt" "$work/ossl/ca.crt"
cp "$work/ca/root.key" "$work/ossl/ca.key"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$work/ossl/ext.cnf"
t0=$(now)
for i in $(seq 1 "$openssl_n"); do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ossl/dev-$i.key" 2>/dev/null
    openssl req -new -key "$work/ossl/dev-$i.key" -subj "/CN=dev-$i" -out "$work/ossl/dev-$i.csr"
    openssl x509 -req -in "$work/ossl/dev-$i.csr" -CA "$work/ossl/ca.crt" -CAkey "$work/ossl/ca.key" -CAcreateserial \
        -days 397 -sha256 -extfile "$work/ossl/ext.cnf" -out "$work/ossl/dev-$i.crt" 2>/dev/null
done
t1=$(now)
ossl=$(echo "$t1 - $t0" | bc -l)

ours_rate=$(echo "$n / $best" | bc -l)
ossl_rate=$(echo "$openssl_n / $ossl" | bc -l)
printf 'brokertls-ca issue client --count %d: %.3f s  (%.0f certificates/s, best of 3)\n' "$n" "$best" "$ours_rate"
printf 'openssl genpkey+req+x509 loop x %d:   %.3f s  (%.1f certificates/s)\n' "$openssl_n" "$ossl" "$ossl_rate"
printf 'ratio (brokertls-ca rate / openssl loop rate): %.1fx   targets: >= 40x and >= 1000/s\n' \
    "$(echo "$ours_rate / $ossl_rate" | bc -l)"

# Index scale: grow the index to INDEX_N (default 100000) entries, then time issuing one more,
# listing, and revoking (which replays the index). Issuing appends one line, so it must not
# grow with the index.
index_n=${INDEX_N:-100000}
have=$(wc -l <"$work/ca/index.jsonl")
sample=$(head -n 1 "$work/ca/index.jsonl")
awk -v n=$((index_n - have)) -v line="$sample" 'BEGIN {
    for (i = 1; i <= n; i++) {
        l = line
        sub(/"serial":"[0-9A-F]+"/, sprintf("\"serial\":\"%032X\"", i), l)
        sub(/"name":"[^"]*"/, sprintf("\"name\":\"bulk-%d\"", i), l)
        print l
    }
}' >>"$work/ca/index.jsonl"
t0=$(now)
"$ca" issue client one-more --dir "$work/ca" --out "$work/one" >/dev/null
t1=$(now)
"$ca" list --dir "$work/ca" >/dev/null
t2=$(now)
"$ca" revoke "$work/one/one-more.crt" --dir "$work/ca" >/dev/null
t3=$(now)
printf 'index of %d entries: issue one more %.3f s, list %.3f s, revoke (+CRL) %.3f s\n' \
    "$(wc -l <"$work/ca/index.jsonl")" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$t2 - $t1" | bc -l)" "$(echo "$t3 - $t2" | bc -l)"
