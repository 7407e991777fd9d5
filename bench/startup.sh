#!/usr/bin/env bash
# Registrations per second through the admin API with 64 clients, then
# start-up time and memory with that many instances registered.
#
#   bench/startup.sh [N]        (default 100000)
#
# Needs Go, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
TOKEN=bench-token
T=$(mktemp -d /tmp/disco-startup.XXXXXX)
PID=
trap '{ [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; } || true' EXIT

go build -o "$T/disco" ./cmd/disco
go build -o "$T/regload" ./bench/regload
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
AP=$(port) DP=$(port)

start() {
  local t0=$(date +%s.%N)
  "$T/disco" serve --dns-addr "127.0.0.1:$DP" --admin-addr "127.0.0.1:$AP" --data-dir "$T/data" \
    --admin-token "$TOKEN" --log-level warn >>"$T/log" 2>&1 &
  PID=$!
  for _ in $(seq 1200); do
    curl -fs "http://127.0.0.1:$AP/readyz" >/dev/null 2>&1 && break
    sleep 0.05
  done
  UP=$(python3 -c "print(round($(date +%s.%N) - $t0, 2))")
}

start
echo "registering $N instances (64 clients, 10 per service)..." >&2
reg=$("$T/regload" -admin "http://127.0.0.1:$AP" -token "$TOKEN" -count "$N" -c 64)
kill "$PID"; wait "$PID" 2>/dev/null || true
start
sleep 1
rss=$(awk '/^VmRSS/{printf "%.0f", $2/1024}' "/proc/$PID/status")
size=$(du -sm "$T/data" | cut -f1)
cat <<EOF
| instances | registrations/s (64 clients, HTTP, fsync'd) | start-up to /readyz | RSS after start | data dir |
| --- | --- | --- | --- | --- |
| $N | $(sed -n 's/.*per_second=\([0-9]*\).*/\1/p' <<<"$reg") | ${UP} s | ${rss} MB | ${size} MB |
EOF
