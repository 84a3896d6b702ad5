#!/usr/bin/env bash
# Retention benchmark: one pass over MESSAGES old messages in a Trash while CLIENTS IMAP
# sessions run yubin-bench's command mix (crates/bench/src/imap_mix.rs) — the issue asks for a
# pass over 1,000,000 messages with session latency p99 ≤ 50 ms.
#
# 1. Users through the store: old@bench.test with MESSAGES messages in Trash, user1..CLIENTS
#    with FILL messages in INBOX and FILL/4 in Archive (bodies cycled from a gen_mbox.py mbox;
#    the blob store keeps one copy of each distinct body, so the expunges are metadata work —
#    rows, expunge log, change log, quota — plus a few blob files).
# 2. Baseline: the server with nothing due, the mix for DURATION s → latency p50/p99.
# 3. The pass: the server restarted with its retention clock 31 days ahead
#    (YUBIN_RETENTION_CLOCK_OFFSET), so the whole Trash is due at the first pass (1 s after
#    start); the mix runs for DURATION s alongside it. The pass time is from the server start
#    to its `event=retention_expunged` line for old@bench.test.
#
# Usage: benches/retention.sh
# Environment (defaults in brackets): MESSAGES [1000000]  CLIENTS [10]  FILL [200]
#   DURATION [30] (s of mixed load per run)  BATCH [200] (messages per store transaction)
#   PAUSE_MS [20] (pause between batches)  PROFILE [release]  SKIP_BUILD [0]
#   PORT [26143]  TLS_PORT [26993]  MBOX_COUNT [500]  KEEP [0]  YUBIN_LOG [info]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
MESSAGES=${MESSAGES:-1000000}
CLIENTS=${CLIENTS:-10}
FILL=${FILL:-200}
SECONDS_=${DURATION:-30}
BATCH=${BATCH:-200}
PAUSE_MS=${PAUSE_MS:-20}
PROFILE=${PROFILE:-release}
SKIP_BUILD=${SKIP_BUILD:-0}
PORT=${PORT:-26143}
TLS_PORT=${TLS_PORT:-26993}
MBOX_COUNT=${MBOX_COUNT:-500}
KEEP=${KEEP:-0}
YUBIN_LOG=${YUBIN_LOG:-info}
PASS=bench-password-1

log() { printf '== %s\n' "$*" >&2; }

if [ "$SKIP_BUILD" != 1 ]; then
  log "building $PROFILE binaries"
  if [ "$PROFILE" = debug ]; then build=(); else build=(--profile "$PROFILE"); fi
  (cd "$ROOT" && cargo build "${build[@]}" -p yubin -p yubin-bench)
fi
YUBIN=$ROOT/target/$PROFILE/yubin
BENCH=$ROOT/target/$PROFILE/yubin-bench

WORK=$(mktemp -d /tmp/yubin-retention-bench.XXXXXX)
CFG=$WORK/yubin.toml
MBOX=$WORK/messages.mbox
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

cat >"$CFG" <<CONF
hostname = "mx.bench.test"
data_dir = "$WORK/data"

[listen]
smtp = []
submission = []
submissions = []
pop3 = []
pop3s = []
imap = ["127.0.0.1:$PORT"]
imaps = ["127.0.0.1:$TLS_PORT"]

[limits]
max_connections_per_ip = 100000
max_connections = 100000

[retention]
interval_secs = 3600
batch_size = $BATCH
batch_pause_ms = $PAUSE_MS
CONF

# wait_port and server_alive
source "$ROOT/benches/lib.sh"

start_server() { # OFFSET_SECONDS
  : >"$WORK/yubin.log"
  # The pass's end is read from its info-level event, whatever YUBIN_LOG says.
  YUBIN_RETENTION_CLOCK_OFFSET=$1 RUST_LOG="$YUBIN_LOG,yubin::retention=info" "$YUBIN" serve --config "$CFG" \
    >>"$WORK/yubin.log" 2>&1 &
  SERVER_PID=$!
  wait_port "$PORT" || { echo "yubin did not start; log:" >&2; tail -30 "$WORK/yubin.log" >&2; exit 1; }
}

stop_server() {
  server_alive
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true
  SERVER_PID=""
}

mix() { # LABEL
  "$BENCH" imap-mix --addr "127.0.0.1:$PORT" --clients "$CLIENTS" --seconds "$SECONDS_" \
    --user-pattern 'user{n}@bench.test' --password "$PASS" --mbox "$MBOX" --label "$1" \
    >"$WORK/$1.out" 2>&1
  grep '^{' "$WORK/$1.out" | tail -1
}

log "generating $MBOX_COUNT messages"
python3 /work/shared/tools/gen_mbox.py "$MBOX" "$MBOX_COUNT" >/dev/null

log "creating users and filling old@bench.test's Trash with $MESSAGES messages (through the store)"
"$BENCH" imap-users --data-dir "$WORK/data" --user old@bench.test --password "$PASS" >/dev/null
"$BENCH" imap-users --data-dir "$WORK/data" --user 'user{n}@bench.test' --users "$CLIENTS" \
  --password "$PASS" >/dev/null
fill_start=$(date +%s.%N)
"$BENCH" imap-fill --data-dir "$WORK/data" --user old@bench.test --mailbox Trash \
  --messages "$MESSAGES" --mbox "$MBOX" >"$WORK/fill.out" 2>&1
fill_s=$(echo "$(date +%s.%N) - $fill_start" | bc)
"$BENCH" imap-fill --data-dir "$WORK/data" --user 'user{n}@bench.test' --users "$CLIENTS" \
  --messages "$FILL" --mbox "$MBOX" >/dev/null 2>&1
"$BENCH" imap-fill --data-dir "$WORK/data" --user 'user{n}@bench.test' --users "$CLIENTS" \
  --mailbox Archive --messages $((FILL / 4 + 1)) --mbox "$MBOX" >/dev/null 2>&1

log "baseline: $CLIENTS clients, ${SECONDS_} s, nothing due"
start_server 0
BASE=$(mix baseline)
stop_server

log "retention pass over $MESSAGES messages, $CLIENTS clients running the mix for ${SECONDS_} s"
t0=$(date +%s.%N)
start_server $((31 * 86400))
# A watcher notes when the pass's log line appears (the pass starts 1 s after the server).
( while ! grep -q 'retention_expunged.*account=old@bench.test' "$WORK/yubin.log"; do
    sleep 0.1
  done
  date +%s.%N >"$WORK/pass_end" ) &
WATCHER=$!
DURING=$(mix during)
# Wait for the pass to end (it may outlast the load).
while kill -0 "$WATCHER" 2>/dev/null; do
  server_alive
  sleep 0.2
done
pass_s=$(echo "$(cat "$WORK/pass_end") - $t0 - 1" | bc)
removed=$(grep -o 'retention_expunged.*account=old@bench.test' "$WORK/yubin.log" | head -1)
stop_server

p() { echo "$1" | jq -r "$2"; }
echo
echo "retention pass: $MESSAGES messages in Trash, batches of $BATCH, ${PAUSE_MS} ms pause"
echo "  fill (through the store): ${fill_s} s"
echo "  pass: ${pass_s} s (≈ $(echo "$MESSAGES / $pass_s" | bc) messages/s) — $removed"
printf '  %-10s %10s %10s %10s\n' "sessions" "cmds/s" "p50 ms" "p99 ms"
for row in "baseline|$BASE" "during|$DURING"; do
  label=${row%%|*}; json=${row#*|}
  printf '  %-10s %10s %10s %10s\n' "$label" "$(p "$json" '.cmds_per_s|floor')" \
    "$(p "$json" '.p50_ms*100|floor/100')" "$(p "$json" '.p99_ms*100|floor/100')"
done
if [ "$(echo "$pass_s > $SECONDS_" | bc)" = 1 ]; then
  echo "  (the pass outlasted the ${SECONDS_} s of load: the 'during' row is entirely inside it)"
else
  echo "  (the pass ended before the load: the 'during' row includes $(echo "$SECONDS_ - $pass_s" | bc) s after it)"
fi
