#!/usr/bin/env bash
# A stand-in for the server binary that also opens the web console on the overview page in a
# headless Chromium, to measure what an open console costs:
#
#   cargo run --release --bin qstash-bench -- --server-bin benches/with-console.sh --scenario e2e
#
# The server keeps this script's pid (exec), so the bench's CPU and memory readings are the
# server's own; a watcher waits for the server's port, opens the console
# (sdk-tests/console/open-console.mjs, which needs `npm ci` there and /usr/bin/chromium) and
# closes it when the server exits. QSTASH_REAL_BIN overrides the server binary.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
real="${QSTASH_REAL_BIN:-$here/target/release/qstash}"
log="${CONSOLE_LOG:-/tmp/qstash-console-bench.log}"
pid=$$
(
  port=""
  for _ in $(seq 1 200); do
    port="$(ss -ltnpH 2>/dev/null | grep "pid=$pid," | awk '{print $4}' | sed 's/.*://' | head -1)"
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || exit 0
  exec node "$here/sdk-tests/console/open-console.mjs" "http://127.0.0.1:$port" "$pid"
) >>"$log" 2>&1 </dev/null &
exec "$real" "$@"
