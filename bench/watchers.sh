#!/usr/bin/env bash
# What blocking queries cost: parks W waiters on GET /v1/services/{service}
# (each on its own connection) against a real disco server, then makes one
# change; reports the server's memory per waiter, its CPU while they wait,
# and the wake-up latency and CPU of the change. Two runs: every waiter on
# the service that changes (a wake-up storm), and the waiters spread over
# 1,000 services (only the changed one's wake).
#
#   bench/watchers.sh [W]        (default 10000)
#
# Needs Go, curl and python3, and a file descriptor limit above W.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-10000}
TOKEN=bench-token
T=$(mktemp -d /tmp/disco-watchers.XXXXXX)
PID=
trap '{ [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; } || true' EXIT
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt $((W + 100)) ] || { echo "file descriptor limit $(ulimit -n) is too low for $W waiters" >&2; exit 1; }

go build -o "$T/disco" ./cmd/disco
go build -o "$T/watchers" ./bench/watchers
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

for services in 1 1000; do
  AP=$(port) DP=$(port)
  rm -rf "$T/data"
  "$T/disco" serve --dns-addr "127.0.0.1:$DP" --admin-addr "127.0.0.1:$AP" --data-dir "$T/data" \
    --admin-token "$TOKEN" --log-level warn >>"$T/log" 2>&1 &
  PID=$!
  for _ in $(seq 200); do curl -fs "http://127.0.0.1:$AP/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
  echo "== $W waiters over $services service(s)"
  "$T/watchers" -admin "http://127.0.0.1:$AP" -token "$TOKEN" -waiters "$W" -services "$services"
  kill "$PID"; wait "$PID" 2>/dev/null || true
  PID=
done
