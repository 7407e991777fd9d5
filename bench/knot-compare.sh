#!/usr/bin/env bash
# disco and Knot DNS side by side on the same names, in the same run.
#
# Each server is pinned to CPU 0 (Knot with one UDP worker), dnsperf to
# CPU 1; a query file of 45% A, 45% SRV and 10% NXDOMAIN over N services x 3
# instances; rounds alternate Knot, disco, Knot, disco... and the medians are
# compared. The same, alternating, for a flood of distinct random names
# that exist at neither server (half A under service.D, half SRV; NXDOMAIN
# at both) and for the mixed load over TCP (dnsperf -m tcp -c 8); then
# disco's RSS before and after FLOOD_SECONDS of the flood. Then disco
# alone: with 100,000 registered instances, while the registry takes 1,000
# writes per second, and unpinned on both cores (SKIP_SCALE=1 leaves these
# out).
#
#   bench/knot-compare.sh              (make bench)
#   ROUNDS=5 RUN_SECONDS=20 bench/knot-compare.sh
#   SKIP_SCALE=1 bench/knot-compare.sh (Knot comparisons only)
#
# Needs dnsperf and knot (Debian packages; installed when missing and run as
# root), taskset, python3 and Go. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
RUN_SECONDS=${RUN_SECONDS:-10}
N=${N:-1000}
FLOOD_NAMES=${FLOOD_NAMES:-1000000}
FLOOD_SECONDS=${FLOOD_SECONDS:-30}
SKIP_SCALE=${SKIP_SCALE:-}
D=disco.internal.
TOKEN=bench-token

need() { # need COMMAND PACKAGE
  command -v "$1" >/dev/null && return
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -q "$2" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "$2" >/dev/null; }
  fi
  command -v "$1" >/dev/null || { echo "bench: $1 missing (apt-get install $2)" >&2; exit 1; }
}
need dnsperf dnsperf
need knotd knot
need taskset util-linux
need python3 python3

T=$(mktemp -d /tmp/disco-bench.XXXXXX)
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
go build -o "$T/nullapi" ./bench/nullapi
bench/fixture.sh zone "$N" "$D" >"$T/disco.internal.zone"
bench/fixture.sh queries "$N" "$D" >"$T/queries.txt"
bench/fixture.sh instances "$N" "$D" >"$T/instances.txt"
bench/fixture.sh flood "$FLOOD_NAMES" "$D" >"$T/flood.txt"

# Knot, one UDP worker, pinned to CPU 0.
KP=$(free_port)
mkdir -p "$T/knot/run" "$T/knot/db"
cat >"$T/knot/knot.conf" <<K
server:
    rundir: "$T/knot/run"
    listen: 127.0.0.1@$KP
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$T/knot/db"
log:
  - target: stderr
    any: error
template:
  - id: default
    storage: "$T"
    journal-content: none
    zonefile-sync: -1
zone:
  - domain: $D
    file: "$T/disco.internal.zone"
K
taskset -c 0 knotd -c "$T/knot/knot.conf" >"$T/knot.log" 2>&1 &
KNOT=$!
PIDS+=("$KNOT")

# start_disco CPUS: disco serve pinned to CPUS ("" for unpinned).
start_disco() {
  DP=$(free_port) AP=$(free_port)
  local pin=()
  [ -n "$1" ] && pin=(taskset -c "$1")
  "${pin[@]}" "$T/disco" serve --dns-addr "127.0.0.1:$DP" --admin-addr "127.0.0.1:$AP" \
    --data-dir "$T/data" --admin-token "$TOKEN" --log-level warn >>"$T/disco.log" 2>&1 &
  DISCO=$!
  PIDS+=("$DISCO")
  for _ in $(seq 200); do curl -fs "http://127.0.0.1:$AP/readyz" >/dev/null 2>&1 && return; sleep 0.1; done
  echo "bench: disco did not start" >&2; tail -5 "$T/disco.log" >&2; exit 1
}
stop_disco() { kill "$DISCO"; wait "$DISCO" 2>/dev/null || true; }

start_disco 0
"$T/regload" -admin "http://127.0.0.1:$AP" -token "$TOKEN" -file "$T/instances.txt" -c 16 >&2
for port in "$KP" "$DP"; do
  dig @127.0.0.1 -p "$port" +short +time=1 +tries=3 "web-$((N - 1)).service.$D" A | grep -q '^10\.' ||
    { echo "bench: server on port $port does not answer" >&2; exit 1; }
  # The flood's names exist at neither server.
  for q in "$(sed -n 1p "$T/flood.txt")" "$(sed -n 2p "$T/flood.txt")"; do
    # shellcheck disable=SC2086 # "name type"
    dig @127.0.0.1 -p "$port" +time=1 +tries=3 $q | grep -q 'status: NXDOMAIN' ||
      { echo "bench: server on port $port does not answer $q with NXDOMAIN" >&2; exit 1; }
  done
done

HZ=$(getconf CLK_TCK)
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12+$13}'; }
rss_mb() { awk '/^VmRSS/{printf "%.0f", $2/1024}' "/proc/$1/status"; }

# load PID PORT [DNSPERF_CPUS] [DNSPERF_ARGS...] -> "qps us_per_query"
# with the queries of $QF (default: the mixed load) for $SECONDS_ (default
# RUN_SECONDS).
load() {
  local pid=$1 port=$2 cpus=${3:-1} t0 t1 out
  shift 3 || shift $#
  t0=$(ticks "$pid")
  out=$(taskset -c "$cpus" dnsperf -s 127.0.0.1 -p "$port" -d "${QF:-$T/queries.txt}" -l "${SECONDS_:-$RUN_SECONDS}" -q 100 "$@" 2>&1)
  t1=$(ticks "$pid")
  awk -v t=$((t1 - t0)) -v hz="$HZ" '/Queries per second:/{q=$4} /Queries completed:/{n=$3}
    END{printf "%.0f %.2f\n", q, (n > 0 ? t / hz * 1e6 / n : 0)}' <<<"$out"
}

# latency PORT -> "p50_ms p99_ms" at 5,000 queries per second
latency() {
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$T/queries.txt" -l 5 -Q 5000 -v 2>/dev/null |
    awk '/^> /{print $NF * 1000}' | sort -g |
    awk '{v[NR]=$1} END{printf "%.3f %.3f\n", v[int(NR*0.5)], v[int(NR*0.99)]}'
}

median() { sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }

echo "alternating rounds, ${RUN_SECONDS}s each..." >&2
: >"$T/runs"
for r in $(seq "$ROUNDS"); do
  read -r kq ku < <(load "$KNOT" "$KP" 1)
  read -r dq du < <(load "$DISCO" "$DP" 1)
  echo "round $r: knot qps=$kq us/q=$ku  disco qps=$dq us/q=$du" >&2
  echo "$kq $ku $dq $du" >>"$T/runs"
done
read -r kp50 kp99 < <(latency "$KP")
read -r dp50 dp99 < <(latency "$DP")
KQ=$(awk '{print $1}' "$T/runs" | median) KU=$(awk '{print $2}' "$T/runs" | median)
DQ=$(awk '{print $3}' "$T/runs" | median) DU=$(awk '{print $4}' "$T/runs" | median)
QR=$(awk '{print $3/$1}' "$T/runs" | median) CR=$(awk '{print $4/$2}' "$T/runs" | median)
KRSS=$(rss_mb "$KNOT") DRSS=$(rss_mb "$DISCO")

# alternate NAME [DNSPERF_ARGS...] -> rounds of Knot and disco, one line
# "kq ku dq du" each, into $T/NAME; QF as for load.
alternate() {
  local name=$1 kq ku dq du
  shift
  : >"$T/$name"
  for r in $(seq "$ROUNDS"); do
    read -r kq ku < <(load "$KNOT" "$KP" 1 "$@")
    read -r dq du < <(load "$DISCO" "$DP" 1 "$@")
    echo "$name round $r: knot qps=$kq us/q=$ku  disco qps=$dq us/q=$du" >&2
    echo "$kq $ku $dq $du" >>"$T/$name"
  done
}
# col FILE N -> the median of column N; ratio FILE A B -> of column A / B
col() { awk -v c="$2" '{print $c}' "$1" | median; }
ratio() { awk -v a="$2" -v b="$3" '{print $a/$b}' "$1" | median | awk '{printf "%.2f", $1}'; }

# disco's memory under the flood: RSS after the mixed load, and after
# FLOOD_SECONDS of the flood.
FRSS0=$(rss_mb "$DISCO")
read -r fq fu < <(QF=$T/flood.txt SECONDS_=$FLOOD_SECONDS load "$DISCO" "$DP" 1)
FRSS1=$(rss_mb "$DISCO")
echo "flood of ${FLOOD_SECONDS}s: qps=$fq us/q=$fu RSS ${FRSS0} -> ${FRSS1} MB" >&2
echo "flood of random names, alternating..." >&2
QF=$T/flood.txt alternate flood
echo "TCP, 8 connections, alternating..." >&2
alternate tcp -m tcp -c 8

# table_knot -> the rows comparing with Knot
table_knot() {
  cat <<ROWS
| load | Knot QPS | disco QPS | Knot CPU/query | disco CPU/query | disco/Knot CPU per query |
| --- | --- | --- | --- | --- | --- |
| mixed (UDP) | $KQ | $DQ | ${KU} us | ${DU} us | $(printf "%.2f" "$CR") |
| flood of random names (UDP, NXDOMAIN) | $(col "$T/flood" 1) | $(col "$T/flood" 3) | $(col "$T/flood" 2) us | $(col "$T/flood" 4) us | $(ratio "$T/flood" 4 2) |
| mixed over TCP (8 connections) | $(col "$T/tcp" 1) | $(col "$T/tcp" 3) | $(col "$T/tcp" 2) us | $(col "$T/tcp" 4) us | $(ratio "$T/tcp" 4 2) |

disco RSS before and after ${FLOOD_SECONDS}s of the flood ($fq queries per second, ${FLOOD_NAMES} distinct names): ${FRSS0} MB -> ${FRSS1} MB ($((FRSS1 - FRSS0)) MB)
ROWS
}

if [ -n "$SKIP_SCALE" ]; then
  cat <<TABLE

disco vs Knot DNS $(knotd --version 2>/dev/null | head -1 | awk '{print $NF}'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(date -u +%Y-%m-%d), load average $(cut -d' ' -f1-3 /proc/loadavg)
median of $ROUNDS rounds of ${RUN_SECONDS}s, Knot and disco alternating; servers on CPU 0 (Knot: 1 UDP worker, 1 TCP worker), dnsperf on CPU 1 (-q 100); $N services x 3 instances

$(table_knot)
TABLE
  exit 0
fi

# With 100,000 registered instances.
echo "registering 97,000 more instances..." >&2
"$T/regload" -admin "http://127.0.0.1:$AP" -token "$TOKEN" -count 97000 -c 64 >&2
# medians COMMAND... -> "median_qps median_us" of ROUNDS runs of a load
# function printing "qps us".
medians() {
  local f=$T/medians
  : >"$f"
  for _ in $(seq "$ROUNDS"); do "$@" >>"$f"; done
  echo "$(awk '{print $1}' "$f" | median) $(awk '{print $2}' "$f" | median)"
}
read -r bq bu < <(medians load "$DISCO" "$DP" 1)
read -r bp50 bp99 < <(latency "$DP")
BRSS=$(rss_mb "$DISCO")

# While the registry takes 1,000 writes per second (bench/regload on CPU 1
# beside dnsperf: with two cores it has to share one). Control: the same
# write load sent to bench/nullapi, an HTTP server on CPU 0 that does
# nothing, so what the load itself costs the DNS figures (the generator
# taking dnsperf's core, loopback TCP) shows apart from disco's write path.
NP=$(free_port)
taskset -c 0 "$T/nullapi" -addr "127.0.0.1:$NP" >>"$T/disco.log" 2>&1 &
PIDS+=("$!")
# churn URL -> "qps us_per_query writes_per_second" with writes going to URL
churn() {
  taskset -c 1 "$T/regload" -admin "$1" -token "$TOKEN" -rate 1000 -duration "$((RUN_SECONDS + 2))s" -c 16 >"$T/churn.out" 2>&1 &
  local gen=$! q u
  sleep 1
  read -r q u < <(load "$DISCO" "$DP" 1)
  wait "$gen" || { echo "bench: write load failed: $(head -3 "$T/churn.out")" >&2; exit 1; }
  echo "$q $u $(sed -n 's/.*per_second=\([0-9]*\).*/\1/p' "$T/churn.out")"
}
echo "write load: to disco and to a null HTTP server, alternating..." >&2
: >"$T/churn-runs"
for r in $(seq "$ROUNDS"); do
  read -r wq wu ww < <(churn "http://127.0.0.1:$AP")
  read -r nq nu nw < <(churn "http://127.0.0.1:$NP")
  echo "round $r: writes to disco qps=$wq us/q=$wu writes/s=$ww  to null qps=$nq" >&2
  echo "$wq $wu $ww $nq" >>"$T/churn-runs"
done
WQ=$(awk '{print $1}' "$T/churn-runs" | median) WU=$(awk '{print $2}' "$T/churn-runs" | median)
WW=$(awk '{print $3}' "$T/churn-runs" | median) NQ=$(awk '{print $4}' "$T/churn-runs" | median)
WR=$(awk '{print $1/$4}' "$T/churn-runs" | median)
# latency_writing URL -> "p50_ms p99_ms" at 5k qps while writes go to URL
latency_writing() {
  taskset -c 1 "$T/regload" -admin "$1" -token "$TOKEN" -rate 1000 -duration 8s -c 16 >"$T/churn.out" 2>&1 &
  local gen=$!
  sleep 1
  latency "$DP"
  wait "$gen" || true
}
read -r wp50 wp99 < <(latency_writing "http://127.0.0.1:$AP")
read -r np50 np99 < <(latency_writing "http://127.0.0.1:$NP")

# Unpinned: disco on both cores (one SO_REUSEPORT socket each), dnsperf on
# both cores too.
stop_disco
start_disco ""
read -r uq uu < <(medians load "$DISCO" "$DP" 0-1 -c 4 -T 2)

cat <<TABLE

disco vs Knot DNS $(knotd --version 2>/dev/null | head -1 | awk '{print $NF}'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(date -u +%Y-%m-%d)
median of $ROUNDS rounds of ${RUN_SECONDS}s (Knot and disco alternating, writes to disco and to the null server alternating); servers on CPU 0, dnsperf on CPU 1; $N services x 3 instances

| server | QPS | CPU per query | p50 at 5k qps | p99 at 5k qps | RSS |
| --- | --- | --- | --- | --- | --- |
| Knot DNS (1 UDP worker) | $KQ | ${KU} us | ${kp50} ms | ${kp99} ms | ${KRSS} MB |
| disco | $DQ | ${DU} us | ${dp50} ms | ${dp99} ms | ${DRSS} MB |
| disco / Knot | $QR | $CR | $(awk -v a="$dp50" -v b="$kp50" 'BEGIN{printf "%.2f", a/b}') | $(awk -v a="$dp99" -v b="$kp99" 'BEGIN{printf "%.2f", a/b}') | |
| disco, 100,000 instances | $bq | ${bu} us | ${bp50} ms | ${bp99} ms | ${BRSS} MB |
| disco, 100,000 instances, ${WW:-?} registry writes/s | $WQ | ${WU} us | ${wp50} ms | ${wp99} ms | |
| same write load into a null HTTP server (control) | $NQ | | ${np50} ms | ${np99} ms | |
| disco unpinned, 2 cores (dnsperf -T 2) | $uq | ${uu} us | | | |

$(table_knot)

QPS with writes / QPS without (100,000 instances): $(awk -v a="$WQ" -v b="$bq" 'BEGIN{printf "%.2f", a/b}')
QPS with the writes going to disco / with the same writes going to the null server: $WR
TABLE
