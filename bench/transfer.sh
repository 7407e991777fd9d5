#!/usr/bin/env bash
# disco as a primary: AXFR of a 100,000-instance zone, the serial and NOTIFY
# after a write (to a Knot DNS secondary), and query throughput while a
# transfer streams against the same without one.
#
# disco and Knot are pinned to CPU 0; dnsperf and the transfer client
# (bench/xfrload, which reads the zone without decoding it) to CPU 1. The
# queries that disco answers while it streams transfers are compared with
# those it answers while the same client reads the same zone from Knot on
# the same core (control): same client, same competition for CPU 0, only
# the server of the transfers differs.
#
#   bench/transfer.sh                   (make bench-transfer)
#   N=20000 ROUNDS=5 RUN_SECONDS=10 bench/transfer.sh
#
# Needs dnsperf, knot, taskset, python3 and Go. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
ROUNDS=${ROUNDS:-3}
RUN_SECONDS=${RUN_SECONDS:-10}
WRITES=${WRITES:-10}
D=disco.internal.
TOKEN=bench-token

for c in dnsperf knotd taskset python3; do
  command -v "$c" >/dev/null || { echo "bench: $c missing (apt-get install dnsperf knot util-linux python3)" >&2; exit 1; }
done
T=$(mktemp -d /tmp/disco-xfr-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket
while True:
    t=socket.socket(); t.bind(("127.0.0.1",0)); p=t.getsockname()[1]
    u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1",p)); break
    except OSError: pass
    finally: u.close(); t.close()
print(p)'
}

echo "building..." >&2
go build -o "$T/disco" ./cmd/disco
go build -o "$T/regload" ./bench/regload
go build -o "$T/xfrload" ./bench/xfrload
SECRET=$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')
printf 'key "xfr" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n' "$SECRET" >"$T/keys.conf"
KEY=hmac-sha256:xfr:$SECRET
bench/fixture.sh queries 1000 "$D" >"$T/queries.txt"
bench/fixture.sh instances 1000 "$D" >"$T/instances.txt"

DP=$(free_port) AP=$(free_port) KP=$(free_port)
# Knot, a secondary of the discovery zone on CPU 1.
mkdir -p "$T/knot"
cat >"$T/knot.conf" <<K
server:
    rundir: "$T/knot"
    listen: 127.0.0.1@$KP
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "$T/knot"
key:
  - id: xfr
    algorithm: hmac-sha256
    secret: $SECRET
remote:
  - id: disco
    address: 127.0.0.1@$DP
    key: xfr
acl:
  - id: notify
    address: 127.0.0.1
    key: xfr
    action: notify
  - id: transfer
    address: 127.0.0.1
    key: xfr
    action: transfer
template:
  - id: default
    storage: "$T/knot"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: none
zone:
  - domain: $D
    master: disco
    acl: [notify, transfer]
K

taskset -c 0 "$T/disco" serve --dns-addr "127.0.0.1:$DP" --admin-addr "127.0.0.1:$AP" --data-dir "$T/data" \
  --admin-token "$TOKEN" --log-level warn --tsig-keys "$T/keys.conf" --transfer-allow key:xfr \
  --notify "127.0.0.1:$KP" --notify-key xfr >>"$T/disco.log" 2>&1 &
DISCO=$!
PIDS+=("$DISCO")
for _ in $(seq 200); do curl -fs "http://127.0.0.1:$AP/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
echo "registering $N instances..." >&2
"$T/regload" -admin "http://127.0.0.1:$AP" -token "$TOKEN" -file "$T/instances.txt" -c 16 >&2
"$T/regload" -admin "http://127.0.0.1:$AP" -token "$TOKEN" -count "$((N - 3000))" -c 64 >&2

HZ=$(getconf CLK_TCK)
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12+$13}'; }
median() { sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }

# AXFR: wall time at the client and disco's CPU per transfer.
echo "AXFR of the zone, $ROUNDS times..." >&2
: >"$T/axfr"
for _ in $(seq "$ROUNDS"); do
  c0=$(ticks "$DISCO")
  out=$(taskset -c 1 "$T/xfrload" axfr -dns "127.0.0.1:$DP" -key "$KEY" -n 1 | tail -1)
  c1=$(ticks "$DISCO")
  echo "$out cpu_s=$(awk -v t=$((c1 - c0)) -v hz="$HZ" 'BEGIN{printf "%.2f", t/hz}')" | tee -a "$T/axfr" >&2
done
val() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$T/axfr" | median; }
AXFR_S=$(val median_s) AXFR_CPU=$(val cpu_s) AXFR_RR=$(val records) AXFR_MB=$(val mb)
RSS=$(awk '/^VmRSS/{printf "%.0f", $2/1024}' "/proc/$DISCO/status")

# The secondary takes the whole zone, then follows writes.
taskset -c 0 knotd -c "$T/knot.conf" >"$T/knot.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 600); do
  s=$(dig @127.0.0.1 -p "$KP" +short +time=1 +tries=1 "$D" SOA 2>/dev/null | awk '{print $3}')
  [ -n "$s" ] && [ "$s" = "$(dig @127.0.0.1 -p "$DP" +short "$D" SOA | awk '{print $3}')" ] && break
  sleep 0.1
done
KNOT_AXFR=$(grep -m1 'AXFR, incoming.*finished' "$T/knot.log" | sed 's/.*finished, //')
echo "knot: $KNOT_AXFR" >&2
notify_hist() {
  curl -s "http://127.0.0.1:$AP/metrics" -H "Authorization: Bearer $TOKEN" |
    awk '/^disco_notify_latency_seconds_sum/{s=$2} /^disco_notify_latency_seconds_count/{c=$2} END{print s, c}'
}
read -r ns0 nc0 < <(notify_hist)
echo "serial and NOTIFY after $WRITES writes..." >&2
LAT=$(taskset -c 1 "$T/xfrload" latency -dns "127.0.0.1:$DP" -admin "http://127.0.0.1:$AP" -token "$TOKEN" \
  -secondary "127.0.0.1:$KP" -n "$WRITES" | tee /dev/stderr | tail -1)
read -r ns1 nc1 < <(notify_hist)
NOTIFY_MS=$(awk -v s0="$ns0" -v c0="$nc0" -v s1="$ns1" -v c1="$nc1" 'BEGIN{printf "%.1f", (c1 > c0) ? (s1-s0)/(c1-c0)*1000 : 0}')

# Query throughput with and without a transfer streaming (back to back
# transfers for the whole round), alternating.
load() { # -> qps
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$DP" -d "$T/queries.txt" -l "$RUN_SECONDS" -q 100 2>&1 |
    awk '/Queries per second:/{printf "%.0f\n", $4}'
}
# with_transfers PORT -> "qps transfers": dnsperf on disco while xfrload
# transfers the zone back to back from the server at PORT.
with_transfers() {
  taskset -c 1 "$T/xfrload" axfr -dns "127.0.0.1:$1" -key "$KEY" -duration "$((RUN_SECONDS + 1))s" >"$T/during" 2>&1 &
  local x=$! q
  sleep 0.5
  q=$(load)
  wait "$x" || { echo "bench: transfers failed: $(tail -2 "$T/during")" >&2; exit 1; }
  echo "$q $(sed -n 's/.*transfers=\([0-9]*\).*/\1/p' "$T/during")"
}
echo "queries without a transfer, while transfers stream from disco, and from Knot (control): $ROUNDS rounds of ${RUN_SECONDS}s..." >&2
: >"$T/qps"
for r in $(seq "$ROUNDS"); do
  q0=$(load)
  read -r q1 n1 < <(with_transfers "$DP")
  read -r q2 n2 < <(with_transfers "$KP")
  echo "round $r: qps without $q0, transfers from disco $q1 ($n1 transfers), from Knot $q2 ($n2 transfers)" >&2
  echo "$q0 $q1 $n1 $q2 $n2" >>"$T/qps"
done
col() { awk -v c="$1" '{print $c}' "$T/qps" | median; }
Q0=$(col 1) Q1=$(col 2) NX=$(col 3) Q2=$(col 4) NK=$(col 5)
R1=$(awk '{print $2/$1}' "$T/qps" | median) R2=$(awk '{print $2/$4}' "$T/qps" | median)

cat <<TABLE

disco as a primary, $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(date -u +%Y-%m-%d); disco and Knot $(knotd --version 2>/dev/null | head -1 | awk '{print $NF}') on CPU 0, clients on CPU 1

| measure | figure |
| --- | --- |
| AXFR of $N instances ($AXFR_RR records, $AXFR_MB MB, TSIG-signed), median of $ROUNDS | ${AXFR_S} s, ${AXFR_CPU} s of disco CPU |
| disco RSS with $N instances | ${RSS} MB |
| Knot's first AXFR of the zone (its log) | $KNOT_AXFR |
| write: API answer (median of $WRITES) | $(sed -n 's/.*api_ms=\([0-9.]*\).*/\1/p' <<<"$LAT") ms |
| new serial at disco, after the API answered | $(sed -n 's/.*serial_visible_ms=\([0-9.]*\).*/\1/p' <<<"$LAT") ms (first query) |
| NOTIFY answered by the secondary, after the change (mean, disco_notify_latency_seconds) | ${NOTIFY_MS} ms |
| new serial at the secondary, after the API answered | $(sed -n 's/.*secondary_ms=\([0-9.]*\).*/\1/p' <<<"$LAT") ms |
| queries per second at disco, no transfer (median of $ROUNDS) | $Q0 |
| the same while disco streams transfers back to back ($NX per round) | $Q1 |
| the same while the client reads the zone from Knot on disco's core instead (control; $NK per round) | $Q2 |
| with disco's transfers / without | $R1 |
| with disco's transfers / with Knot's | $R2 |
TABLE
