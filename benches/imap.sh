#!/usr/bin/env bash
# IMAP benchmark for yubin, side by side with Debian's Dovecot (the /work/shared/peers setup).
# Builds release binaries, creates a throw-away data directory, runs on loopback, stops
# everything it started (SIGTERM) and prints a summary. Two modes:
#
# 1. imaptest mode — when IMAPTEST points at Dovecot's imaptest binary (the third-party judge):
#    imaptest stress (its state-tracking random clients) against yubin and the Dovecot peer in
#    one run, alternating A B A B: for each round, each point (clients × profile) runs yubin then
#    Dovecot for DURATION s. Points: IT_CLIENTS (10 50) × IT_PROFILES ("default": imaptest's
#    default settings, clients log in and out as phones do; "logout=0": sessions stay logged
#    in). IT_USERS users (yubin user1..N@bench.test, created through the store; Dovecot
#    testuser1..N), the MBOX_COUNT-message mbox from gen_mbox.py as imaptest's APPEND source,
#    plain IMAP. yubin gets the peer's allowances (max_connections_per_ip high). Reported per
#    server and point (medians over rounds): commands/s (the sum of imaptest's "Totals:" row /
#    seconds), yubin/Dovecot ratio, state errors (imaptest "Error:" lines) per run, CPU seconds
#    per 1,000 commands (yubin: its process's utime+stime from /proc before/after; Dovecot: the
#    master and all its processes, reaped children included), and imaptest's LOGIN average.
#    The Dovecot peer is reused when it already listens on 127.0.0.1:10143 (else set up, and
#    stopped at the end). imaptest works in a mailbox of its own (box=bench-PID, created for
#    every user on both servers first and deleted from the peer at the end), so what other
#    runs left in the peer's INBOX (other mboxes) cannot count as errors. Validate with
#    DURATION=5 ROUNDS=1 IT_CLIENTS=10.
#
# 2. own-mix mode (no IMAPTEST): yubin-bench's load against yubin (and Dovecot with --dovecot):
#    a. imap-select: LOGIN / SELECT / `UID FETCH 1:* (UID FLAGS)` on a BIG-message INBOX;
#    b. imap-mix:    C clients (user1..C, FILL messages in INBOX and FILL/4 in Archive each)
#                    run the command mix for DURATION s, alternating A B A B with --dovecot.
#                    The mix (crates/bench/src/imap_mix.rs) is what clients send most: FETCH
#                    ENVELOPE, BODY.PEEK[HEADER.FIELDS (...)], BODYSTRUCTURE, partial sections
#                    (BODY.PEEK[1]<0.2048>), whole bodies, flag resyncs, STORE, SEARCH (flags,
#                    dates, a header), APPEND, IDLE, and SELECT of the other mailbox (INBOX ↔
#                    Archive; never a re-SELECT of the selected one);
#    c. imap-idle:   IDLE TLS sessions, each its own account (idle1..IDLE@bench.test, created
#                    through the store, IDLE_MSGS messages each), in IDLE on a freshly restarted
#                    server: RSS per connection.
#
# Usage: benches/imap.sh [--dovecot]
#   --dovecot   own-mix mode: also set up Debian's Dovecot (/work/shared/peers/dovecot-setup.sh,
#               127.0.0.1:10143, testuser1..100 / pass), fill it over IMAP APPEND with the same
#               messages, and run the mixed load against it too. Dovecot is stopped at the end.
# Environment (defaults in brackets):
#   both modes: DURATION [30] (s per run)  ROUNDS [2]  PORT [25143]  TLS_PORT [25993]
#               SKIP_BUILD [0]  PROFILE [release] (debug: the debug binaries, for trying the
#               script out)  KEEP [0]  YUBIN_LOG [warn]  PEERS [/work/shared/peers]
#   imaptest:   IMAPTEST (path to the imaptest binary)  IT_CLIENTS ["10 50"]
#               IT_PROFILES ["default logout=0"]  IT_USERS [100]  MBOX_COUNT [200]
#   own mix:    BIG [100000]  FILL [1000]  CLIENTS [50]  IDLE [10000] (0 skips)  IDLE_MSGS [10]
#               REPEAT [5]  MBOX_COUNT [1000]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMAPTEST=${IMAPTEST:-}
BIG=${BIG:-100000}
FILL=${FILL:-1000}
CLIENTS=${CLIENTS:-50}
SECONDS_=${DURATION:-30}
ROUNDS=${ROUNDS:-2}
IDLE=${IDLE:-10000}
IDLE_MSGS=${IDLE_MSGS:-10}
REPEAT=${REPEAT:-5}
IT_CLIENTS=${IT_CLIENTS:-10 50}
IT_PROFILES=${IT_PROFILES:-default logout=0}
IT_USERS=${IT_USERS:-100}
IT_BOX=bench-$$
if [ -n "$IMAPTEST" ]; then MBOX_COUNT=${MBOX_COUNT:-200}; else MBOX_COUNT=${MBOX_COUNT:-1000}; fi
PORT=${PORT:-25143}
TLS_PORT=${TLS_PORT:-25993}
SKIP_BUILD=${SKIP_BUILD:-0}
PROFILE=${PROFILE:-release}
KEEP=${KEEP:-0}
YUBIN_LOG=${YUBIN_LOG:-warn}
PEERS=${PEERS:-/work/shared/peers}
DOVECOT=0
DC_PORT=10143
DC_ADDR=127.0.0.1:$DC_PORT
DC_PID_FILE=/var/tmp/peer-dovecot/run/master.pid
PASS=bench-password-1

for arg in "$@"; do
  case "$arg" in
    --dovecot) DOVECOT=1 ;;
    -h|--help) sed -n '2,45p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$IMAPTEST" ] && [ ! -x "$IMAPTEST" ]; then
  echo "IMAPTEST=$IMAPTEST is not an executable" >&2; exit 2
fi

log() { printf '== %s\n' "$*" >&2; }

if [ "$SKIP_BUILD" != 1 ]; then
  log "building $PROFILE binaries"
  if [ "$PROFILE" = debug ]; then build=(); else build=(--profile "$PROFILE"); fi
  (cd "$ROOT" && cargo build "${build[@]}" -p yubin -p yubin-bench)
fi
YUBIN=$ROOT/target/$PROFILE/yubin
BENCH=$ROOT/target/$PROFILE/yubin-bench

WORK=$(mktemp -d /tmp/yubin-imap-bench.XXXXXX)
CFG=$WORK/yubin.toml
RESULTS=$WORK/results.jsonl
MBOX=$WORK/messages.mbox
SERVER_PID=""
DOVECOT_STARTED=0
DC_BOXES=0

cleanup() {
  if [ "$DC_BOXES" = 1 ]; then
    python3 "$ROOT/benches/imaptest.py" mailbox delete "$DC_PORT" 'testuser%d' "$IT_USERS" pass "$IT_BOX" \
      || echo "could not delete mailbox $IT_BOX from the Dovecot peer" >&2
  fi
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

# Only the IMAP listeners; every other listener is disabled with an empty list. The peer
# allows 1,000 connections per user and IP; yubin gets no lower a limit.
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

# The Dovecot peer: reused when already listening (someone else's run), else set up here and
# stopped at the end.
dovecot_up() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$DC_PORT") 2>/dev/null && [ -f "$DC_PID_FILE" ] \
      && kill -0 "$(cat "$DC_PID_FILE")" 2>/dev/null; then
    log "reusing the Dovecot peer already running on $DC_ADDR (pid $(cat "$DC_PID_FILE"))"
    return
  fi
  log "setting up the Dovecot peer"
  bash "$PEERS/dovecot-setup.sh" >&2
  DOVECOT_STARTED=1
  wait_port "$DC_PORT" || { echo "dovecot is not listening on $DC_ADDR" >&2; exit 1; }
}

log "generating $MBOX_COUNT messages"
python3 /work/shared/tools/gen_mbox.py "$MBOX" "$MBOX_COUNT" >/dev/null

# ---------------------------------------------------------------------------------------------
# imaptest mode
# ---------------------------------------------------------------------------------------------
imaptest_run() { # SERVER CLIENTS PROFILE ROUND
  local server=$1 clients=$2 profile=$3 round=$4 port user pass pid extra out before after
  if [ "$server" = yubin ]; then
    server_alive
    port=$PORT; user='user%d@bench.test'; pass=$PASS; pid=$SERVER_PID
  else
    port=$DC_PORT; user='testuser%d'; pass=pass; pid=$(cat "$DC_PID_FILE")
  fi
  extra=(box="$IT_BOX")
  [ "$profile" != default ] && extra+=("$profile")
  out=$WORK/imaptest-$server-c$clients-${profile//=/}-r$round.out
  log "round $round: $server, imaptest c$clients $profile, ${SECONDS_} s"
  before=$(python3 "$ROOT/benches/imaptest.py" cpu "$pid")
  timeout $((SECONDS_ + 120)) "$IMAPTEST" host=127.0.0.1 port="$port" user="$user" users="$IT_USERS" \
    pass="$pass" mbox="$MBOX" clients="$clients" secs="$SECONDS_" "${extra[@]}" >"$out" 2>&1 || true
  after=$(python3 "$ROOT/benches/imaptest.py" cpu "$pid")
  python3 "$ROOT/benches/imaptest.py" parse "$out" | jq -c \
    --arg server "$server" --arg profile "$profile" --argjson clients "$clients" \
    --argjson round "$round" --argjson secs "$SECONDS_" --argjson cpu "$(awk "BEGIN{printf \"%.2f\", $after - $before}")" \
    '{mode:"imaptest", server:$server, clients:$clients, profile:$profile, round:$round, secs:$secs}
     + . + {cmds_per_s: (.commands / $secs * 10 | round / 10), cpu_s: $cpu,
            cpu_s_per_1000: (if .commands > 0 then ($cpu * 1000 / .commands * 1000 | round / 1000) else null end)}' \
    | tee -a "$RESULTS" | jq -r '"   \(.commands) commands, \(.cmds_per_s)/s, \(.errors) errors, CPU \(.cpu_s) s"' >&2
}

if [ -n "$IMAPTEST" ]; then
  log "creating user1..$IT_USERS@bench.test through the store"
  "$BENCH" imap-users --data-dir "$WORK/data" --user 'user{n}@bench.test' --users "$IT_USERS" \
    --password "$PASS" | tee "$WORK/last.out" >&2
  start_server
  dovecot_up
  log "creating mailbox $IT_BOX for each user on both servers"
  python3 "$ROOT/benches/imaptest.py" mailbox create "$PORT" 'user%d@bench.test' "$IT_USERS" "$PASS" "$IT_BOX"
  DC_BOXES=1
  python3 "$ROOT/benches/imaptest.py" mailbox create "$DC_PORT" 'testuser%d' "$IT_USERS" pass "$IT_BOX"
  for round in $(seq 1 "$ROUNDS"); do
    for profile in $IT_PROFILES; do
      for clients in $IT_CLIENTS; do
        imaptest_run yubin "$clients" "$profile" "$round"
        imaptest_run dovecot "$clients" "$profile" "$round"
      done
    done
  done
  stop_server
  echo
  echo "imaptest stress, yubin vs Dovecot, loopback, $(nproc) cores, ${SECONDS_} s per run, $ROUNDS round(s), $IT_USERS users, $MBOX_COUNT-message mbox"
  python3 "$ROOT/benches/imaptest.py" summary "$RESULTS"
  echo "yubin shutdown on SIGTERM: $STOP"
  echo "imaptest outputs: $WORK/imaptest-*.out (KEEP=1 keeps them)"
  echo "raw results (JSON lines):"
  cat "$RESULTS"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# own-mix mode
# ---------------------------------------------------------------------------------------------
log "creating users through the store (no server running yet)"
"$BENCH" imap-users --data-dir "$WORK/data" --user big@bench.test --password "$PASS" >/dev/null
"$BENCH" imap-users --data-dir "$WORK/data" --user 'user{n}@bench.test' --users "$CLIENTS" \
  --password "$PASS" >/dev/null
if [ "$IDLE" -gt 0 ]; then
  "$BENCH" imap-users --data-dir "$WORK/data" --user 'idle{n}@bench.test' --users "$IDLE" \
    --password "$PASS" | tee "$WORK/last.out" >&2
fi

log "filling big@bench.test with $BIG messages and user1..$CLIENTS with $FILL each (through the store)"
"$BENCH" imap-fill --data-dir "$WORK/data" --user big@bench.test --messages "$BIG" --mbox "$MBOX" | tee "$WORK/last.out" >&2
emit yubin-big
"$BENCH" imap-fill --data-dir "$WORK/data" --user 'user{n}@bench.test' --users "$CLIENTS" \
  --messages "$FILL" --mbox "$MBOX" 2>/dev/null | tee "$WORK/last.out" >&2
emit yubin-users
"$BENCH" imap-fill --data-dir "$WORK/data" --user 'user{n}@bench.test' --users "$CLIENTS" \
  --mailbox Archive --messages $((FILL / 4 + 1)) --mbox "$MBOX" >/dev/null 2>&1
if [ "$IDLE" -gt 0 ] && [ "$IDLE_MSGS" -gt 0 ]; then
  log "filling idle1..$IDLE with $IDLE_MSGS messages each (through the store)"
  "$BENCH" imap-fill --data-dir "$WORK/data" --user 'idle{n}@bench.test' --users "$IDLE" \
    --messages "$IDLE_MSGS" --mbox "$MBOX" 2>/dev/null | tee "$WORK/last.out" >&2
fi

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
  wait_port "$DC_PORT" || { echo "dovecot is not listening on $DC_ADDR" >&2; exit 1; }
  log "filling Dovecot testuser1..$CLIENTS with $FILL messages each, and Archive (IMAP APPEND)"
  "$BENCH" imap-fill --addr "$DC_ADDR" --user 'testuser{n}' --users "$CLIENTS" --password pass \
    --messages "$FILL" --mbox "$MBOX" --parallel 8 2>/dev/null | tee "$WORK/last.out" >&2
  emit dovecot-fill
  "$BENCH" imap-fill --addr "$DC_ADDR" --user 'testuser{n}' --users "$CLIENTS" --password pass \
    --mailbox Archive --messages $((FILL / 4 + 1)) --mbox "$MBOX" --parallel 8 >/dev/null 2>&1
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
  log "yubin: $IDLE TLS sessions in IDLE, one account each"
  "$BENCH" imap-idle --addr "127.0.0.1:$TLS_PORT" --tls --connections "$IDLE" \
    --user 'idle{n}@bench.test' --users "$IDLE" --password "$PASS" --pid "$SERVER_PID" \
    | tee "$WORK/last.out" >&2
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
jq -r 'select(.mode=="imap-idle") | "IDLE: \(.open) TLS sessions idling over \(.accounts) accounts (\(.still_open) answered DONE, \(.failed) failed), "
  + "VmRSS \(.rss_before_kib) -> \(.rss_after_kib) KiB = \(.bytes_per_conn) bytes per connection "
  + "(total \(.rss_after_kib / 1024 | floor) MiB)"' "$RESULTS"
echo "yubin shutdown on SIGTERM: $STOP"
echo "raw results (JSON lines):"
cat "$RESULTS"
