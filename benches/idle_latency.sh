#!/usr/bin/env bash
# IDLE notification latency for yubin: the time from the SMTP 250 that acknowledges a delivery
# to the `* N EXISTS` an IMAP session in IDLE reads for it (`yubin-bench idle-latency`; see
# crates/bench/src/idle_latency.rs for how EXISTS lines are matched to deliveries).
#
# By default it builds release binaries, starts one yubin (embedded store, throw-away data
# directory) with plain SMTP and IMAP listeners on loopback, creates USERS accounts through the
# store (user1..USERS@bench.test), and runs the benchmark once per value of LOADS: SESSIONS
# accounts sit in IDLE, MESSAGES measured deliveries go to them at RATE per second, and L load
# senders deliver continuously to the other accounts (USERS - SESSIONS of them) meanwhile.
# That is the single-node baseline (delivery node == IDLE node).
#
# Against existing endpoints (several yubin nodes on one PostgreSQL): set SMTP_ADDR and
# IMAP_ADDRS (comma-separated; sessions are spread over them round robin, and the report has
# a line per IMAP node). No server is started then; the accounts USER_PATTERN ({n} = 1..USERS)
# with password PASS must exist there. E.g. deliver through node A, IDLE on node B:
#   SMTP_ADDR=10.0.0.1:25 IMAP_ADDRS=10.0.0.2:143 benches/idle_latency.sh
#
# Usage: benches/idle_latency.sh
# Environment (defaults in brackets):
#   LOADS ["0 8"] (load senders per run)  MESSAGES [600]  RATE [20] (measured deliveries/s)
#   USERS [100]  SESSIONS [50]  SIZE [4096]  MISS_MS [5000]  LOAD_TO [others] (or "same":
#   the load goes to the measured accounts too)  TLS [0] (1: IMAP over implicit TLS)
#   SMTP_ADDR, IMAP_ADDRS (existing endpoints; both or neither)  USER_PATTERN
#   ['user{n}@bench.test']  PASS [bench-password-1]
#   own server only: SMTP_PORT [25325]  IMAP_PORT [25326]  IMAPS_PORT [25327]
#   SKIP_BUILD [0]  PROFILE [release] (debug: try the script out)  KEEP [0]  YUBIN_LOG [warn]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOADS=${LOADS:-"0 8"}
MESSAGES=${MESSAGES:-600}
RATE=${RATE:-20}
USERS=${USERS:-100}
SESSIONS=${SESSIONS:-50}
SIZE=${SIZE:-4096}
MISS_MS=${MISS_MS:-5000}
LOAD_TO=${LOAD_TO:-others}
TLS=${TLS:-0}
SMTP_ADDR=${SMTP_ADDR:-}
IMAP_ADDRS=${IMAP_ADDRS:-}
USER_PATTERN=${USER_PATTERN:-'user{n}@bench.test'}
PASS=${PASS:-bench-password-1}
SMTP_PORT=${SMTP_PORT:-25325}
IMAP_PORT=${IMAP_PORT:-25326}
IMAPS_PORT=${IMAPS_PORT:-25327}
SKIP_BUILD=${SKIP_BUILD:-0}
PROFILE=${PROFILE:-release}
KEEP=${KEEP:-0}
YUBIN_LOG=${YUBIN_LOG:-warn}

for arg in "$@"; do
  case "$arg" in
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done
if { [ -n "$SMTP_ADDR" ] && [ -z "$IMAP_ADDRS" ]; } || { [ -z "$SMTP_ADDR" ] && [ -n "$IMAP_ADDRS" ]; }; then
  echo "set both SMTP_ADDR and IMAP_ADDRS, or neither" >&2; exit 2
fi
OWN_SERVER=1
if [ -n "$SMTP_ADDR" ]; then OWN_SERVER=0; fi

log() { printf '== %s\n' "$*" >&2; }

if [ "$SKIP_BUILD" != 1 ]; then
  log "building $PROFILE binaries"
  if [ "$PROFILE" = debug ]; then build=(); else build=(--profile "$PROFILE"); fi
  pkgs=(-p yubin-bench)
  if [ "$OWN_SERVER" = 1 ]; then pkgs+=(-p yubin); fi
  (cd "$ROOT" && cargo build "${build[@]}" "${pkgs[@]}")
fi
YUBIN=$ROOT/target/$PROFILE/yubin
BENCH=$ROOT/target/$PROFILE/yubin-bench

WORK=$(mktemp -d /tmp/yubin-idle-latency.XXXXXX)
CFG=$WORK/yubin.toml
RESULTS=$WORK/results.jsonl
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port and server_alive
source "$ROOT/benches/lib.sh"

if [ "$OWN_SERVER" = 1 ]; then
  # SMTP (port 25 style: no auth) and IMAP only; every other listener is disabled.
  bench_config "$CFG" "$WORK/data" "smtp=127.0.0.1:$SMTP_PORT" "imap=127.0.0.1:$IMAP_PORT" \
    "imaps=127.0.0.1:$IMAPS_PORT"
  cat >>"$CFG" <<CONF

[limits]
max_connections_per_ip = 100000
max_connections = 100000
CONF
  log "creating $USERS accounts through the store (no server running yet)"
  "$BENCH" imap-users --data-dir "$WORK/data" --user "$USER_PATTERN" --users "$USERS" \
    --password "$PASS" >/dev/null
  log "starting yubin: SMTP 127.0.0.1:$SMTP_PORT, IMAP $IMAP_PORT / TLS $IMAPS_PORT (data in $WORK/data)"
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  RUST_LOG=$YUBIN_LOG "$YUBIN" serve --config "$CFG" >>"$WORK/yubin.log" 2>&1 &
  SERVER_PID=$!
  for p in "$SMTP_PORT" "$IMAP_PORT" "$IMAPS_PORT"; do
    if ! wait_port "$p"; then
      echo "yubin did not start listening; log:" >&2; tail -30 "$WORK/yubin.log" >&2; exit 1
    fi
  done
  SMTP_ADDR=127.0.0.1:$SMTP_PORT
  if [ "$TLS" = 1 ]; then IMAP_ADDRS=127.0.0.1:$IMAPS_PORT; else IMAP_ADDRS=127.0.0.1:$IMAP_PORT; fi
fi

tls_arg=()
if [ "$TLS" = 1 ]; then tls_arg=(--tls); fi
for load in $LOADS; do
  if [ "$OWN_SERVER" = 1 ]; then server_alive; fi
  log "run: $MESSAGES deliveries at $RATE/s via $SMTP_ADDR, $SESSIONS IDLE sessions on $IMAP_ADDRS, load $load (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  load_to=()
  if [ "$load" -gt 0 ]; then load_to=(--load-to "$LOAD_TO"); fi
  "$BENCH" idle-latency --json --smtp "$SMTP_ADDR" --imap "$IMAP_ADDRS" "${tls_arg[@]}" \
    --user "$USER_PATTERN" --users "$USERS" --password "$PASS" --sessions "$SESSIONS" \
    --messages "$MESSAGES" --rate "$RATE" --load "$load" "${load_to[@]}" --size "$SIZE" \
    --miss-ms "$MISS_MS" >"$WORK/last.json"
  jq -c --arg la "$(cut -d' ' -f1-3 /proc/loadavg)" '. + {loadavg:$la}' "$WORK/last.json" >>"$RESULTS"
done

STOP=""
if [ "$OWN_SERVER" = 1 ]; then
  server_alive
  log "stopping yubin (SIGTERM)"
  kill -TERM "$SERVER_PID"
  if wait "$SERVER_PID"; then STOP="clean exit"; else STOP="exit status $?"; fi
  SERVER_PID=""
fi

echo
echo "IDLE notification latency: SMTP 250 -> '* N EXISTS' read in IDLE; $MESSAGES deliveries at $RATE/s per run,"
echo "$SESSIONS sessions, ${SIZE}-byte messages; SMTP $SMTP_ADDR, IMAP $IMAP_ADDRS (tls: $TLS); $(nproc) cores"
{
  printf 'load\tseen\tmissed\tearly\tp50 ms\tp90 ms\tp99 ms\tmax ms\t"."->EXISTS p99\tload msg/s\tload failed\tloadavg after\n'
  jq -r 'def f2: if . == null then "-" else . * 100 | round / 100 end;
    [.load, .count, .missed, .early, (.latency_ms.p50 | f2), (.latency_ms.p90 | f2),
     (.latency_ms.p99 | f2), (.latency_ms.max | f2), (.from_dot_ms.p99 | f2),
     (if .load > 0 then .load_msgs_per_s else "-" end), .load_failed, .loadavg] | @tsv' "$RESULTS"
} | column -t -s $'\t'
jq -r 'select((.per_imap | length) > 1) | "load \(.load): " + ([.per_imap[]
  | "\(.imap) seen \(.count) missed \(.missed) p50 \(.latency_ms.p50 // "-") p99 \(.latency_ms.p99 // "-") ms"] | join("; "))' "$RESULTS"
jq -r 'select(.smtp_failed > 0 or .sessions_lost > 0) | "load \(.load): SMTP failures \(.smtp_failures), sessions lost \(.sessions_lost)"' "$RESULTS"
echo "target (issue 8): p99 < 100 ms under load"
if [ -n "$STOP" ]; then echo "yubin shutdown on SIGTERM: $STOP"; fi
echo "raw results (JSON lines):"
cat "$RESULTS"
