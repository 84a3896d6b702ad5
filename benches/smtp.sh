#!/usr/bin/env bash
# SMTP delivery benchmark for yubin (and optionally Postfix, side by side).
#
# Builds release binaries, starts a throw-away yubin with only an SMTP listener on loopback,
# creates user1@bench.test, then delivers 10 KB messages over a new connection per message at
# several concurrency levels with `yubin-bench smtp`, measures memory per idle connection with
# `yubin-bench idle`, stops the server with SIGTERM and prints a summary table.
# yubin answers 250 after DATA only once the message is fsync'd, so 250s/s = msgs stored/s.
#
# Usage: benches/smtp.sh [--postfix]
#   --postfix   also set up Debian's Postfix (/work/shared/peers/postfix-setup.sh) on
#               127.0.0.1:10025 and load both servers with Postfix's smtp-source, alternating
#               (yubin, Postfix, yubin, Postfix ...); yubin is loaded with yubin-bench as well
#               (latency percentiles). Postfix throughput is end to end: until every message
#               is a file in the Maildir.
# Environment (defaults in brackets):
#   CONCURRENCY ["1 10 50"]  MESSAGES ["2000 5000 10000"] (paired with CONCURRENCY)
#   SIZE [10240]  IDLE [1000] (0 skips the idle test)  ROUNDS [1]  PORT [25250]
#   SKIP_BUILD [0]  KEEP [0] (keep the temp dir)  YUBIN_LOG [info] (RUST_LOG for the server)
#   FSYNCS [0]: 1 counts fsync/fdatasync calls per message with strace at C=1 (yubin, and
#               Postfix with --postfix: every Postfix process, forks followed)
#   PEERS [/work/shared/peers]
#   CHECKS [0]: 1 turns on the checks of arriving mail ([inbound_auth]: SPF, DKIM, DMARC, ARC,
#               iprev) and DKIM-signs every message (with a key made by `openssl genpkey`,
#               DKIM_ALG below); DNS comes from a loopback server (tests/dns_server.py, dnspython)
#               publishing the sender's SPF, DMARC (p=reject) and DKIM records and the
#               client's PTR. 0 turns the checks off.
#   SIGNED [=CHECKS]: 1 DKIM-signs every message even with CHECKS=0, so that checks on and
#               off are compared on the same messages (the client's signing costs CPU too).
#   DKIM_ALG [rsa]: the signing algorithm: rsa (RSA-2048, rsa-sha256: what nearly every
#               sender signs with) or ed25519 (RFC 8463; its verification costs ~5x RSA's).
#   SOURCE [0]: 1 loads yubin with Postfix's smtp-source as well (as --postfix does) without
#               setting Postfix up. With SIGNED=1, smtp-source sends a signed message from a
#               file (`yubin-bench smtp --write-message`, `smtp-source -F`) to both servers.
#   QUOTA [0]: 1 gives every account a quota ([quota] storage = "1T", messages = 10^9, never
#               reached): each delivery resolves and checks both limits and the warning levels
#               in its transaction. The usage counters are kept either way.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONCURRENCY=${CONCURRENCY:-"1 10 50"}
MESSAGES=${MESSAGES:-"2000 5000 10000"}
SIZE=${SIZE:-10240}
IDLE=${IDLE:-1000}
ROUNDS=${ROUNDS:-1}
PORT=${PORT:-25250}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP=${KEEP:-0}
YUBIN_LOG=${YUBIN_LOG:-info}
PEERS=${PEERS:-/work/shared/peers}
CHECKS=${CHECKS:-0}
FSYNCS=${FSYNCS:-0}
SIGNED=${SIGNED:-$CHECKS}
QUOTA=${QUOTA:-0}
DKIM_ALG=${DKIM_ALG:-rsa}
SOURCE=${SOURCE:-0}
POSTFIX=0
PF_ADDR=127.0.0.1:10025
PF_NEW=/var/tmp/peer-postfix/maildir/bench.test/user1/new
TO=user1@bench.test
FROM=a@x.test

for arg in "$@"; do
  case "$arg" in
    --postfix) POSTFIX=1 ;;
    -h|--help) sed -n '2,38p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

read -r -a CS <<<"$CONCURRENCY"
read -r -a NS <<<"$MESSAGES"
if [ "${#CS[@]}" -ne "${#NS[@]}" ]; then
  echo "CONCURRENCY and MESSAGES must list the same number of values" >&2; exit 2
fi

log() { printf '== %s\n' "$*" >&2; }

if [ "$SKIP_BUILD" != 1 ]; then
  log "building release binaries"
  (cd "$ROOT" && cargo build --release -p yubin -p yubin-bench)
fi
YUBIN=$ROOT/target/release/yubin
BENCH=$ROOT/target/release/yubin-bench

WORK=$(mktemp -d /tmp/yubin-bench.XXXXXX)
CFG=$WORK/yubin.toml
RESULTS=$WORK/results.jsonl
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$POSTFIX" = 1 ] && command -v postfix >/dev/null; then
    postfix stop >/dev/null 2>&1 || true
  fi
  if [ -n "${DNS_PID:-}" ]; then kill -TERM "$DNS_PID" 2>/dev/null || true; fi
  if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Only the SMTP listener; every other listener is disabled with an empty list.
cat >"$CFG" <<EOF
hostname = "mx.bench.test"
data_dir = "$WORK/data"

[listen]
smtp = ["127.0.0.1:$PORT"]
submission = []
submissions = []
pop3 = []
pop3s = []
imap = []
imaps = []

[limits]
max_connections_per_ip = 100000
max_connections = 100000
EOF

if [ "$QUOTA" = 1 ]; then
  printf '[quota]\nstorage = "1T"\nmessages = 1000000000\n' >>"$CFG"
fi

DKIM_ARGS=()
if [ "$SIGNED" = 1 ] || [ "$CHECKS" = 1 ]; then
  # The sender's key (the sender is not this yubin, so the key is not in its store).
  case "$DKIM_ALG" in
    rsa) openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 -out "$WORK/s1.pem" 2>/dev/null ;;
    ed25519) openssl genpkey -algorithm ed25519 -out "$WORK/s1.pem" 2>/dev/null ;;
    *) echo "DKIM_ALG must be rsa or ed25519" >&2; exit 2 ;;
  esac
  DKIM_ARGS=(--dkim-key "$WORK/s1.pem" --dkim-selector s1)
fi
if [ "$CHECKS" = 1 ]; then
  DNS_PORT=$((PORT + 1))
  printf '[dns]\nnameservers = ["127.0.0.1:%s"]\n[inbound_auth]\nenabled = true\n' "$DNS_PORT" >>"$CFG"
  DOMAIN=${FROM#*@}
  if [ "$DKIM_ALG" = rsa ]; then
    # RFC 6376 §3.6.1: p= is the base64 SubjectPublicKeyInfo.
    DKIM_TXT="v=DKIM1; k=rsa; p=$(openssl pkey -in "$WORK/s1.pem" -pubout -outform DER | base64 -w0)"
  else
    # RFC 8463 §4.2: p= is the raw 32-byte public key.
    DKIM_TXT="v=DKIM1; k=ed25519; p=$(openssl pkey -in "$WORK/s1.pem" -pubout -outform DER | tail -c 32 | base64 -w0)"
  fi
  jq -n --arg d "$DOMAIN" --arg k "$DKIM_TXT" '{
    ($d): [["TXT", "v=spf1 ip4:127.0.0.1 -all"]],
    ("_dmarc." + $d): [["TXT", "v=DMARC1; p=reject"]],
    ("s1._domainkey." + $d): [["TXT", $k]],
    "1.0.0.127.in-addr.arpa": [["PTR", "bench.yubin.test."]],
    "bench.yubin.test": [["A", "127.0.0.1"], ["TXT", "v=spf1 ip4:127.0.0.1 -all"]]
  }' >"$WORK/dns.json"
  python3 "$ROOT/tests/dns_server.py" "$DNS_PORT" "$WORK/dns.json" >>"$WORK/dns.log" 2>&1 &
  DNS_PID=$!
else
  printf '[inbound_auth]\nenabled = false\n' >>"$CFG"
fi

# What smtp-source sends: a generated message of SIZE bytes, or with SIGNED=1 the signed
# message yubin-bench sends, from a file.
SS_MSG=(-l "$SIZE")
if [ "${#DKIM_ARGS[@]}" -gt 0 ]; then
  "$BENCH" smtp --size "$SIZE" --to "$TO" --from "$FROM" "${DKIM_ARGS[@]}" \
    --write-message "$WORK/signed.eml"
  SS_MSG=(-F "$WORK/signed.eml")
fi

# wait_port and server_alive
source "$ROOT/benches/lib.sh"

start_server() {
  log "starting yubin on 127.0.0.1:$PORT (data in $WORK/data)"
  RUST_LOG=$YUBIN_LOG "$YUBIN" serve --config "$CFG" >>"$WORK/yubin.log" 2>&1 &
  SERVER_PID=$!
  if ! wait_port "$PORT"; then
    echo "yubin did not start listening; log:" >&2; tail -30 "$WORK/yubin.log" >&2; exit 1
  fi
}

# Sends SIGTERM and waits; sets STOP to how the server ended.
stop_server() {
  server_alive
  log "stopping yubin (SIGTERM)"
  kill -TERM "$SERVER_PID"
  if wait "$SERVER_PID"; then STOP="${STOP:+$STOP, }clean exit"; else STOP="${STOP:+$STOP, }exit status $?"; fi
  SERVER_PID=""
}

start_server
"$YUBIN" --config "$CFG" domain add bench.test
echo "bench-password-1" | "$YUBIN" --config "$CFG" user add "$TO" --password-stdin

if [ "$POSTFIX" = 1 ]; then
  log "setting up the Postfix peer"
  export DEBIAN_FRONTEND=noninteractive
  if ! command -v postfix >/dev/null; then
    apt-get update -qq >/dev/null || true
  fi
  # Installing with "No configuration" leaves no main.cf, which the setup script's postmap
  # needs before it copies its own; seed it with the peer's main.cf first.
  setup_pf() {
    if command -v postfix >/dev/null && [ ! -e /etc/postfix/main.cf ]; then
      cp "$PEERS/postfix-main.cf" /etc/postfix/main.cf
    fi
    bash "$PEERS/postfix-setup.sh"
  }
  setup_pf || setup_pf || { apt-get update -qq >/dev/null; setup_pf; }
  wait_port 10025 || { echo "postfix is not listening on $PF_ADDR" >&2; exit 1; }
fi

now() { date +%s.%N; }

# The server's CPU time so far (user + system), in clock ticks (proc(5) fields 14 and 15).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }

run_yubin() { # C N
  server_alive
  log "yubin: C=$1 N=$2"
  local t0 t1
  t0=$(cpu_ticks)
  "$BENCH" smtp --addr "127.0.0.1:$PORT" --messages "$2" --concurrency "$1" --size "$SIZE" \
    --to "$TO" --from "$FROM" --pid "$SERVER_PID" "${DKIM_ARGS[@]}" | tee "$WORK/last.out" >&2
  t1=$(cpu_ticks)
  # Server CPU per message: unlike msg/s, it hardly depends on what else the machine runs.
  grep '^{' "$WORK/last.out" | tail -1 |
    jq -c --argjson ticks "$((t1 - t0))" --argjson hz "$(getconf CLK_TCK)" \
      '. + {server:"yubin", cpu_us_per_msg:($ticks / $hz * 1000000 / .messages | round)}' >>"$RESULTS"
}

# Runs "$@" with strace counting fsync and fdatasync calls of the processes $PIDS (forks
# followed); appends {"server", "fsyncs", "messages"} to the results.
count_fsyncs() { # SERVER N PIDS... -- command...
  local server=$1 n=$2; shift 2
  local pids=()
  while [ "$1" != "--" ]; do pids+=(-p "$1"); shift; done
  shift
  strace -f -qq -c -e trace=fsync,fdatasync "${pids[@]}" -o "$WORK/strace.$server" &
  local spid=$!
  sleep 1
  "$@" >/dev/null
  sleep 0.5
  kill -INT "$spid"; wait "$spid" 2>/dev/null || true
  local calls
  calls=$(awk '$NF=="fsync" || $NF=="fdatasync" {s += $4} END {print s+0}' "$WORK/strace.$server")
  jq -nc --arg s "$server" --argjson f "$calls" --argjson n "$n" \
    '{mode:"fsyncs", server:$s, fsyncs:$f, messages:$n, per_msg:($f/$n)}' | tee -a "$RESULTS" >&2
}

# yubin loaded with Postfix's smtp-source, as Postfix is (250 after DATA = stored and fsync'd,
# so the time smtp-source takes is the time to store every message).
run_yubin_ss() { # C N
  server_alive
  log "yubin (smtp-source): C=$1 N=$2"
  local t0 t1 c0 c1
  c0=$(cpu_ticks); t0=$(now)
  smtp-source -m "$2" -s "$1" "${SS_MSG[@]}" -f "$FROM" -t "$TO" "127.0.0.1:$PORT"
  t1=$(now); c1=$(cpu_ticks)
  jq -nc --argjson c "$1" --argjson n "$2" --argjson size "$SIZE" --argjson t0 "$t0" \
    --argjson t1 "$t1" --argjson ticks "$((c1 - c0))" --argjson hz "$(getconf CLK_TCK)" \
    '{server:"yubin", mode:"smtp-source", concurrency:$c, messages:$n, size:$size, ok:$n,
      failed:0, elapsed_s:($t1-$t0), msgs_per_s:($n/($t1-$t0)),
      cpu_us_per_msg:($ticks / $hz * 1000000 / $n | round)}' | tee -a "$RESULTS" >&2
}

count_new() { find "$PF_NEW" -maxdepth 1 -type f 2>/dev/null | wc -l; }

run_postfix() { # C N
  log "postfix: C=$1 N=$2"
  mkdir -p "$PF_NEW"
  # Postfix's virtual delivery runs as the maildir root's owner (pfvmail): a mailbox directory
  # made here by root would refuse its deliveries.
  chown -R --reference="${PF_NEW%/bench.test/*}" "${PF_NEW%/user1/new}"
  find "$PF_NEW" -maxdepth 1 -type f -delete
  local t0 t1 t2 n
  t0=$(now)
  smtp-source -m "$2" -s "$1" "${SS_MSG[@]}" -f "$FROM" -t "$TO" "$PF_ADDR"
  t1=$(now)
  # 250 from Postfix means "queued"; count Maildir files until every message is delivered.
  local deadline=$(( $(date +%s) + 600 ))
  while n=$(count_new); [ "$n" -lt "$2" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.05; done
  t2=$(now)
  jq -nc --argjson c "$1" --argjson n "$2" --argjson size "$SIZE" --argjson got "$n" \
    --argjson t0 "$t0" --argjson t1 "$t1" --argjson t2 "$t2" \
    '{server:"postfix", mode:"smtp-source", concurrency:$c, messages:$n, size:$size,
      ok:$got, failed:($n-$got), accept_s:($t1-$t0), elapsed_s:($t2-$t0),
      accept_msgs_per_s:($n/($t1-$t0)), msgs_per_s:($got/($t2-$t0))}' | tee -a "$RESULTS" >&2
}

run_idle() { # LABEL
  server_alive
  log "yubin: $IDLE idle connections ($1)"
  "$BENCH" idle --addr "127.0.0.1:$PORT" --connections "$IDLE" --pid "$SERVER_PID" \
    | tee "$WORK/last.out" >&2
  grep '^{' "$WORK/last.out" | tail -1 | jq -c --arg when "$1" '. + {server:"yubin", when:$when}' >>"$RESULTS"
}

# Idle memory on a fresh server, before any load: freed buffers the allocator keeps after a
# load can be reused by idle connections and hide their cost, so measure both ways. Then
# restart, so the load runs' RSS figures do not include what the idle test left behind.
if [ "$IDLE" -gt 0 ]; then
  run_idle "fresh server"
  stop_server
  start_server
fi

for round in $(seq 1 "$ROUNDS"); do
  for i in "${!CS[@]}"; do
    if [ "$ROUNDS" -gt 1 ]; then log "round $round"; fi
    run_yubin "${CS[$i]}" "${NS[$i]}"
    if [ "$POSTFIX" = 1 ] || [ "$SOURCE" = 1 ]; then
      run_yubin_ss "${CS[$i]}" "${NS[$i]}"
    fi
    if [ "$POSTFIX" = 1 ]; then
      run_postfix "${CS[$i]}" "${NS[$i]}"
    fi
  done
done

if [ "$FSYNCS" = 1 ]; then
  log "counting fsyncs per message at C=1 (strace)"
  count_fsyncs yubin 200 "$SERVER_PID" -- \
    smtp-source -m 200 -s 1 -l "$SIZE" -f "$FROM" -t "$TO" "127.0.0.1:$PORT"
  if [ "$POSTFIX" = 1 ]; then
    mkdir -p "$PF_NEW"; find "$PF_NEW" -maxdepth 1 -type f -delete
    # The master and its children now; strace -f follows the processes it forks later.
    pf_master=$(awk '{print $1}' /var/spool/postfix/pid/master.pid)
    # shellcheck disable=SC2046
    count_fsyncs postfix 200 "$pf_master" $(pgrep -d ' ' -P "$pf_master") -- \
      bash -c "smtp-source -m 200 -s 1 -l $SIZE -f $FROM -t $TO $PF_ADDR &&
        while [ \$(find $PF_NEW -maxdepth 1 -type f | wc -l) -lt 200 ]; do sleep 0.05; done"
  fi
fi

if [ "$IDLE" -gt 0 ]; then run_idle "after the load runs"; fi

stop_server

echo
echo "SMTP benchmark: ${SIZE}-byte messages, new connection per message, loopback, $(nproc) cores"
echo "checks of arriving mail: $([ "$CHECKS" = 1 ] && echo "on (SPF, DKIM, DMARC, ARC, iprev)" || echo off); messages DKIM-signed: $([ "${#DKIM_ARGS[@]}" -gt 0 ] && echo "yes ($DKIM_ALG)" || echo no)"
echo "quota: $([ "$QUOTA" = 1 ] && echo "on (limits checked on every delivery)" || echo "off (no limits; usage counted)")"
echo "msg/s = 250 replies per wall-clock second (yubin: stored and fsync'd; postfix: until every"
echo "message is a Maildir file). Latency = final '.' -> 250 (yubin-bench only). RSS = max sampled.
CPU us/msg = the yubin server's user+system CPU time per message."
{
  printf 'server\tC\tN\tok\tfail\tmsg/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tRSS MiB\tCPU us/msg\n'
  jq -r 'def f1: . * 10 | round / 10; def f2: . * 100 | round / 100;
    select(.mode=="smtp" or .mode=="smtp-source")
    | [.server + " (" + (if .mode == "smtp" then "yubin-bench" else "smtp-source" end) + ")",
       .concurrency, .messages, .ok, .failed, (.msgs_per_s | f1)]
      + (if .data_end_ms then [.data_end_ms.p50, .data_end_ms.p90, .data_end_ms.p99,
           .data_end_ms.max | f2] else ["-", "-", "-", "-"] end)
      + [if .rss_max_kib then (.rss_max_kib / 1024 | f1) else "-" end]
      + [.cpu_us_per_msg // "-"]
    | @tsv' "$RESULTS"
} | column -t -s $'\t'
jq -r 'select(.server=="postfix" and .mode=="smtp-source") | "postfix C=\(.concurrency): smtp-source finished (all queued) at "
  + "\(.accept_msgs_per_s * 10 | round / 10) msg/s; all in Maildir after \(.elapsed_s * 100 | round / 100) s"' \
  "$RESULTS"
jq -r 'select(.mode=="fsyncs") | "\(.server): \(.per_msg) fsync calls per message at C=1 (\(.fsyncs) for \(.messages))"' "$RESULTS"
jq -r 'select(.mode=="smtp" and .server=="yubin") | .vm_hwm_kib' "$RESULTS" | tail -1 |
  xargs -r -I{} echo "yubin VmHWM (lifetime peak RSS): {} KiB"
jq -r 'select(.mode=="idle") | "idle (\(.when)): \(.open) connections open (\(.still_open) still open after settling), "
  + "VmRSS \(.rss_before_kib) -> \(.rss_after_kib) KiB = \(.bytes_per_conn) bytes per idle connection"' "$RESULTS"
echo "yubin shutdown on SIGTERM: $STOP; blob files in its data dir: $(find "$WORK/data" -path '*blobs*' -type f | wc -l)"
echo "raw results (JSON lines):"
cat "$RESULTS"
