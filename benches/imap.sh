#!/usr/bin/env bash
# IMAP benchmark for yubin (and optionally Dovecot, side by side).
#
# Builds release binaries, generates realistic messages (/work/shared/tools/gen_mbox.py),
# creates users in a throw-away data directory and fills their INBOXes straight through the
# store (`yubin-bench imap-fill --data-dir`, before the server starts), then starts yubin with
# only the imap and imaps listeners on loopback and runs:
#   1. imap-select: LOGIN / SELECT / `UID FETCH 1:* (UID FLAGS)` on a BIG-message INBOX;
#   2. imap-mix:    C clients (user1..C, FILL messages each) run the command mix for DURATION s
#                   (with --dovecot: the same against Dovecot testuser1..C, alternating A B A B);
#   3. imap-idle:   IDLE TLS sessions in IDLE on a freshly restarted server: RSS per connection.
# Then stops everything it started (SIGTERM) and prints a summary table.
#
# Usage: benches/imap.sh [--dovecot]
#   --dovecot   also set up Debian's Dovecot (/work/shared/peers/dovecot-setup.sh, 127.0.0.1:10143,
#               testuser1..100 / pass), fill it over IMAP APPEND with the same messages, and
#               run the mixed load against it too. Dovecot is stopped at the end.
# Environment (defaults in brackets):
#   BIG [100000]  FILL [1000]  CLIENTS [50]  DURATION [30] (s)  ROUNDS [2]  IDLE [10000] (0 skips)
#   REPEAT [5]  MBOX_COUNT [1000]  PORT [25143]  TLS_PORT [25993]  SKIP_BUILD [0]  KEEP [0]
#   YUBIN_LOG [warn]  PEERS [/work/shared/peers]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIG=${BIG:-100000}
FILL=${FILL:-1000}
CLIENTS=${CLIENTS:-50}
SECONDS_=${DURATION:-30}
ROUNDS=${ROUNDS:-2}
IDLE=${IDLE:-10000}
REPEAT=${REPEAT:-5}
MBOX_COUNT=${MBOX_COUNT:-1000}
PORT=${PORT:-25143}
TLS_PORT=${TLS_PORT:-25993}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP=${KEEP:-0}
YUBIN_LOG=${YUBIN_LOG:-warn}
PEERS=${PEERS:-/work/shared/peers}
DOVECOT=0
DC_ADDR=127.0.0.1:10143
DC_PID_FILE=/var/tmp/peer-dovecot/run/master.pid
PASS=bench-password-1

for arg in "$@"; do
  case "$arg" in
    --dovecot) DOVECOT=1 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

log() { printf '== %s\n' "$*" >&2; }

if [ "$SKIP_BUILD" != 1 ]; then
  log "building release binaries"
  (cd "$ROOT" && cargo build --release -p yubin -p yubin-bench)
fi
YUBIN=$ROOT/target/release/yubin
BENCH=$ROOT/target/release/yubin-bench

WORK=$(mktemp -d /tmp/yubin-imap-bench.XXXXXX)
CFG=$WORK/yubin.toml
RESULTS=$WORK/results.jsonl
MBOX=$WORK/messages.mbox
SERVER_PID=""
DOVECOT_STARTED=0

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$DOVECOT_STARTED" = 1 ] && [ -f "$DC_PID_FILE" ]; then
    kill "$(cat "$DC_PID_FILE")" 2>/dev/null || true
  fi
  if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Only the IMAP listeners; every other listener is disabled with an empty list.
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
CONF

# wait_port and server_alive
source "$ROOT/benches/lib.sh"

start_server() {
  log "starting yubin on 127.0.0.1:$PORT / TLS $TLS_PORT (data in $WORK/data)"
  # 10,000 sessions need more than the usual 1,024 descriptors; yubin raises its soft
  # limit itself, this only lifts it for the shell where that is allowed.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  RUST_LOG=$YUBIN_LOG "$YUBIN" serve --config "$CFG" >>"$WORK/yubin.log" 2>&1 &
  SERVER_PID=$!
  if ! wait_port "$PORT" || ! wait_port "$TLS_PORT"; then
    echo "yubin did not start listening; log:" >&2; tail -30 "$WORK/yubin.log" >&2; exit 1
  fi
}

stop_server() {
  server_alive
  log "stopping yubin (SIGTERM)"
  kill -TERM "$SERVER_PID"
  if wait "$SERVER_PID"; then STOP="${STOP:+$STOP, }clean exit"; else STOP="${STOP:+$STOP, }exit status $?"; fi
  SERVER_PID=""
}

emit() { # LABEL: keep the JSON line of the last run
  grep '^{' "$WORK/last.out" | tail -1 | jq -c --arg server "$1" '. + {server:$server}' >>"$RESULTS"
}

log "generating $MBOX_COUNT messages"
python3 /work/shared/tools/gen_mbox.py "$MBOX" "$MBOX_COUNT" >/dev/null

log "creating users (no server running yet)"
"$YUBIN" --config "$CFG" domain add bench.test >/dev/null
add_user() { echo "$PASS" | "$YUBIN" --config "$CFG" user add "$1" --password-stdin >/dev/null; }
add_user big@bench.test
add_user idle@bench.test
for n in $(seq 1 "$CLIENTS"); do add_user "user$n@bench.test"; done

log "filling big@bench.test with $BIG messages and user1..$CLIENTS with $FILL each (through the store)"
"$BENCH" imap-fill --data-dir "$WORK/data" --user big@bench.test --messages "$BIG" --mbox "$MBOX" | tee "$WORK/last.out" >&2
emit yubin-big
"$BENCH" imap-fill --data-dir "$WORK/data" --user 'user{n}@bench.test' --users "$CLIENTS" \
  --messages "$FILL" --mbox "$MBOX" 2>/dev/null | tee "$WORK/last.out" >&2
emit yubin-users
"$BENCH" imap-fill --data-dir "$WORK/data" --user idle@bench.test --messages 10 --mbox "$MBOX" >/dev/null 2>&1

start_server

log "yubin: SELECT / UID FETCH 1:* (UID FLAGS) on $BIG messages"
server_alive
"$BENCH" imap-select --addr "127.0.0.1:$PORT" --user big@bench.test --password "$PASS" \
  --repeat "$REPEAT" | tee "$WORK/last.out" >&2
emit yubin

if [ "$DOVECOT" = 1 ]; then
  if [ "$CLIENTS" -gt 100 ]; then echo "Dovecot peer has only testuser1..100" >&2; exit 2; fi
  log "setting up the Dovecot peer"
  bash "$PEERS/dovecot-setup.sh" >&2
  DOVECOT_STARTED=1
  wait_port 10143 || { echo "dovecot is not listening on $DC_ADDR" >&2; exit 1; }
  log "filling Dovecot testuser1..$CLIENTS with $FILL messages each (IMAP APPEND)"
  "$BENCH" imap-fill --addr "$DC_ADDR" --user 'testuser{n}' --users "$CLIENTS" --password pass \
    --messages "$FILL" --mbox "$MBOX" --parallel 8 2>/dev/null | tee "$WORK/last.out" >&2
  emit dovecot-fill
fi

for round in $(seq 1 "$ROUNDS"); do
  log "round $round: yubin mixed load, $CLIENTS clients, ${SECONDS_} s"
  server_alive
  "$BENCH" imap-mix --addr "127.0.0.1:$PORT" --clients "$CLIENTS" --seconds "$SECONDS_" \
    --user-pattern 'user{n}@bench.test' --password "$PASS" --mbox "$MBOX" --label yubin \
    | tee "$WORK/last.out" >&2
  emit yubin
  if [ "$DOVECOT" = 1 ]; then
    log "round $round: Dovecot mixed load, $CLIENTS clients, ${SECONDS_} s"
    "$BENCH" imap-mix --addr "$DC_ADDR" --clients "$CLIENTS" --seconds "$SECONDS_" \
      --user-pattern 'testuser{n}' --password pass --mbox "$MBOX" --label dovecot \
      | tee "$WORK/last.out" >&2
    emit dovecot
  fi
done

if [ "$IDLE" -gt 0 ]; then
  # A fresh server: memory the load runs left in the allocator would hide the idle cost.
  stop_server
  start_server
  log "yubin: $IDLE TLS sessions in IDLE"
  "$BENCH" imap-idle --addr "127.0.0.1:$TLS_PORT" --tls --connections "$IDLE" \
    --user idle@bench.test --password "$PASS" --pid "$SERVER_PID" | tee "$WORK/last.out" >&2
  emit yubin
fi

stop_server

echo
echo "IMAP benchmark, loopback, $(nproc) cores"
jq -r 'select(.mode=="imap-select") | "SELECT of \(.messages) messages: p50 \(.select_ms.p50) ms, p99 \(.select_ms.p99) ms; "
  + "UID FETCH 1:* (UID FLAGS): median \(.fetch_flags_ms) ms = \(.fetch_msgs_per_s) msgs/s; LOGIN p50 \(.login_ms.p50) ms"' "$RESULTS"
echo
echo "Mixed load, $CLIENTS clients, ${SECONDS_} s per run (commands/s; latency command -> tagged OK):"
{
  printf 'server\tcmds/s\tok\tfailed\tp50 ms\tp99 ms\n'
  jq -r 'def f1: . * 10 | round / 10; def f2: . * 100 | round / 100;
    select(.mode=="imap-mix") | [.server, (.cmds_per_s | f1), .ok, .failed, (.p50_ms | f2), (.p99_ms | f2)] | @tsv' "$RESULTS"
} | column -t -s $'\t'
for s in yubin dovecot; do
  jq -rs --arg s "$s" '[.[] | select(.mode=="imap-mix" and .server==$s) | .cmds_per_s] | sort
    | if length > 0 then "\($s) median cmds/s: \(.[length/2|floor] * 10 | round / 10)" else empty end' "$RESULTS"
done
echo
echo "Per command (last run of each server):"
jq -r 'select(.mode=="imap-mix") | .server as $s | .per_command | to_entries[]
  | [$s, .key, .value.per_s, .value.p50, .value.p99, .value.failed] | @tsv' "$RESULTS" \
  | awk -F'\t' '{k=$1"\t"$2; last[k]=$0; if(!(k in seen)){order[++n]=k; seen[k]=1}} END{print "server\tcommand\tper s\tp50 ms\tp99 ms\tfailed"; for(i=1;i<=n;i++) print last[order[i]]}' \
  | column -t -s $'\t'
jq -r 'select(.mode=="imap-idle") | "IDLE: \(.open) TLS sessions idling (\(.still_open) answered DONE, \(.failed) failed), "
  + "VmRSS \(.rss_before_kib) -> \(.rss_after_kib) KiB = \(.bytes_per_conn) bytes per connection "
  + "(total \(.rss_after_kib / 1024 | floor) MiB)"' "$RESULTS"
echo "yubin shutdown on SIGTERM: $STOP"
echo "raw results (JSON lines):"
cat "$RESULTS"
