#!/usr/bin/env bash
# Hosting-provider scale on one machine (issue 13): N TLS IMAP sessions on N distinct accounts,
# each in IDLE on a 10-message INBOX, against one yubin process (`yubin-bench imap-scale`, see
# crates/bench/src/imap_scale.rs for the four phases: hold, deliver, leave, storm).
#
# It builds release binaries, imports N + WARMUP accounts with `yubin user import` (a Dovecot
# passwd-file with SHA512-CRYPT hashes, as a provider migrating from Dovecot has them; timed),
# fills every INBOX with MSGS messages through the store, starts yubin with the implicit-TLS
# IMAP and plain SMTP listeners on loopback, and runs the bench. Sessions come from SOURCES
# addresses in 127.1.0.0/16, since one source address has only ~28k ephemeral ports.
#
# System limits: every session is a descriptor in yubin and one in the bench, so both need
# `ulimit -n` above N (the script raises the soft limit to the hard one). A hard limit below
# N + 100 caps N: the script says so and lowers N. For 100,000 sessions raise the hard limit
# (LimitNOFILE= in systemd, /etc/security/limits.conf, or `prlimit`) and net.core.somaxconn.
# Where it cannot be raised (a container without CAP_SYS_RESOURCE), run the bench in a guest
# with its own kernel, the data prepared here at native speed (docs/scale.md has the figures):
#   N=100000 SCHEME=SSHA512 PREPARE_ONLY=1 FIRST_LOGINS=1 WORK=/var/tmp/prep benches/imap_scale.sh
#   VM_DISK_FROM=/var/tmp/prep VM_ENV="N=100000 SKIP_BUILD=1 WORK=/var/tmp PREPARED=1" \
#     benches/in_vm.sh bash benches/imap_scale.sh
#
# Usage: benches/imap_scale.sh
# Environment (defaults in brackets):
#   N [10000] sessions  WARMUP [100]  MSGS [10]  SOURCES [256]  DELIVERIES [1000]
#   SETTLE_MS [15000] (wait before each memory reading: the server gives memory back once the
#     connections fall to half their peak and again 11 s later)
#   PARALLEL [64] (sessions opening at once in the hold phase)  STORM [1] (0 skips it)
#   STORM_N [0] (sessions of the storm: the last STORM_N of the hold phase; 0: all N)
#   CACHE_SIZE [N + WARMUP + 1000] ([auth] cache_size; 0 turns the credential cache off)
#   CACHE_TTL [3600] ([auth] cache_ttl_secs)
#   EXPIRED_READING [0] (1: a last memory reading CACHE_TTL + 75 s after the hold phase, when
#     the credential cache has purged what the hold phase put in it)
#   SCHEME [SHA512-CRYPT] (the imported hashes' scheme: SHA512-CRYPT, or SSHA512 where the CPU
#     is slow, e.g. an emulated guest; the session's memory does not depend on it)
#   WORK [a new /var/tmp/yubin-imap-scale.*] (the bench's directory)
#   PREPARE_ONLY [0] (1: import and fill WORK, then stop and keep it)
#   PREPARED [0] (1: WORK holds what PREPARE_ONLY made: skip the import and the fill)
#   FIRST_LOGINS [0] (1: before the bench, or before PREPARE_ONLY stops, log every account in
#     once over IMAPS and out: a migrated account's first login derives and stores its SCRAM
#     credentials, which an emulated CPU makes slow; the hold phase then measures later logins)
#   REHASH [false] ([auth] rehash_imported: true makes each first login re-hash to argon2id)
#   STOP_SIGNAL [TERM] (KILL: a heap profiler's leaks are then what was held at the end)
#   AUTH_EXTRA [] (more [auth] keys, e.g. "login_guard = false")
#   LIMITS_EXTRA [] (more [limits] keys: on an emulated CPU, where opening 100,000 sessions
#     takes longer than IMAP's 30-minute autologout, e.g. "imap_idle_timeout_secs = 7200")
#   TIMEOUT [120] (the bench's seconds per read or write; a storm's handshakes queue behind
#     [limits] tls_handshakes_in_progress, so a slow CPU needs more, with the server's
#     tls_handshake_timeout_secs in LIMITS_EXTRA)
#   WRAP [] (run the server under it, e.g. "heaptrack -o FILE")
#   IMAPS_PORT [26993]  SMTP_PORT [26025]  SKIP_BUILD [0]  KEEP [0]  YUBIN_LOG [warn]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-10000}
WARMUP=${WARMUP:-100}
MSGS=${MSGS:-10}
SOURCES=${SOURCES:-256}
DELIVERIES=${DELIVERIES:-1000}
PARALLEL=${PARALLEL:-64}
STORM=${STORM:-1}
REHASH=${REHASH:-false}
IMAPS_PORT=${IMAPS_PORT:-26993}
SMTP_PORT=${SMTP_PORT:-26025}
SKIP_BUILD=${SKIP_BUILD:-0}
KEEP=${KEEP:-0}
YUBIN_LOG=${YUBIN_LOG:-warn}
PASS=bench-password-1

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
hard=$(ulimit -Hn)
if [ "${PREPARE_ONLY:-0}" != 1 ] && [ "$hard" != unlimited ] && [ $((N + WARMUP + 200)) -gt "$hard" ]; then
  N=$((hard - WARMUP - 200))
  log "the open-file hard limit is $hard: N lowered to $N (raise the hard limit for more)"
fi

if [ "$SKIP_BUILD" != 1 ]; then
  (cd "$ROOT" && cargo build --release -p yubin -p yubin-bench)
fi
YUBIN=$ROOT/target/release/yubin
BENCH=$ROOT/target/release/yubin-bench
PREPARE_ONLY=${PREPARE_ONLY:-0}
PREPARED=${PREPARED:-0}
CACHE_TTL=${CACHE_TTL:-3600}
SCHEME=${SCHEME:-SHA512-CRYPT}
if [ -n "${WORK:-}" ]; then
  mkdir -p "$WORK"
  KEEP=1 # a directory the caller named is theirs to remove
else
  WORK=$(mktemp -d /var/tmp/yubin-imap-scale.XXXXXX)
fi
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    # HARD_STOP=1: SIGKILL, so a heap profiler's "leaked" is what the server held at the end.
    kill "-${STOP_SIGNAL:-TERM}" "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$KEEP" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
source "$ROOT/benches/lib.sh"

# Only the two listeners the bench uses. Every session comes from loopback, so the per-address
# limits are lifted; the credential cache holds every account, so the storm's logins hit it.
bench_config "$WORK/yubin.toml" "$WORK/data" "smtp=127.0.0.1:$SMTP_PORT" "imaps=127.0.0.1:$IMAPS_PORT"
cat >>"$WORK/yubin.toml" <<CONF

[limits]
max_connections = 200000
max_connections_per_ip = 200000
connection_rate_per_ip = 0
smtp_message_rate_per_ip = 0
${LIMITS_EXTRA:-}

[inbound_auth]
# The checks of arriving mail are measured by benches/smtp.sh; here only the fan-out counts.
enabled = false

[auth]
rehash_imported = $REHASH
cache_size = ${CACHE_SIZE:-$((N + WARMUP + 1000))}
cache_ttl_secs = $CACHE_TTL
${AUTH_EXTRA:-}
CONF

TOTAL=$((N + WARMUP))
if [ "$PREPARED" = 1 ]; then
  IMPORT_S=$(cat "$WORK/import_s")
  log "using the $TOTAL accounts and their INBOXes prepared in $WORK (import took $IMPORT_S s)"
else
  log "importing $TOTAL accounts (Dovecot passwd-file, $SCHEME)"
  case $SCHEME in
    SHA512-CRYPT)
      HASH=$(python3 -c "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_SHA512)))" "$PASS" 2>/dev/null \
        || openssl passwd -6 "$PASS") ;;
    SSHA512)
      HASH=$(python3 -c "import base64,hashlib,os,sys; s=os.urandom(8); print(base64.b64encode(hashlib.sha512(sys.argv[1].encode()+s).digest()+s).decode())" "$PASS") ;;
    *) echo "SCHEME: SHA512-CRYPT or SSHA512" >&2; exit 2 ;;
  esac
  python3 - "$WORK/users" "$TOTAL" "{$SCHEME}$HASH" <<'PY'
import sys
path, n, h = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    for i in range(1, n + 1):
        f.write(f"idle{i}@bench.test:{h}:::::\n")
PY
  start=$(date +%s.%N)
  "$YUBIN" -c "$WORK/yubin.toml" user import "$WORK/users" --format dovecot-passwd --create-domains >&2
  IMPORT_S=$(python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
  echo "$IMPORT_S" >"$WORK/import_s"
  log "import took $IMPORT_S s"

  log "filling every INBOX with $MSGS messages (through the store)"
  python3 /work/shared/tools/gen_mbox.py "$WORK/messages.mbox" 50 >/dev/null 2>&1 \
    || python3 "$ROOT/../shared/tools/gen_mbox.py" "$WORK/messages.mbox" 50 >/dev/null
  "$BENCH" imap-fill --data-dir "$WORK/data" --user 'idle{n}@bench.test' --users "$TOTAL" \
    --messages "$MSGS" --mbox "$WORK/messages.mbox" >&2
  rm -f "$WORK/users" "$WORK/messages.mbox"
fi

start_server() {
  log "starting yubin (IMAPS 127.0.0.1:$IMAPS_PORT, SMTP 127.0.0.1:$SMTP_PORT)"
  # WRAP: a command the server runs under (e.g. "heaptrack -o /tmp/ht"); its pid is looked up.
  RUST_LOG=$YUBIN_LOG ${WRAP:-} "$YUBIN" serve --config "$WORK/yubin.toml" >>"$WORK/yubin.log" 2>&1 &
  SERVER_PID=$!
  wait_port "$IMAPS_PORT" && wait_port "$SMTP_PORT" || { tail -30 "$WORK/yubin.log" >&2; exit 1; }
  [ -z "${WRAP:-}" ] || SERVER_PID=$(pgrep -n -f "$YUBIN serve --config $WORK/yubin.toml")
}

if [ "${FIRST_LOGINS:-0}" = 1 ]; then
  WRAP="" start_server
  log "logging each of the $TOTAL accounts in once (their SCRAM credentials are derived)"
  start=$(date +%s.%N)
  python3 - "$IMAPS_PORT" "$TOTAL" "$PASS" <<'PY'
import imaplib, multiprocessing, ssl, sys
port, total, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
def first_login(i):
    imap = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=120)
    imap.login(f"idle{i}@bench.test", password)
    imap.logout()
with multiprocessing.Pool(8) as pool:
    for _ in pool.imap_unordered(first_login, range(1, total + 1), chunksize=64):
        pass
PY
  log "first logins took $(python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)") s"
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
fi
if [ "$PREPARE_ONLY" = 1 ]; then
  log "prepared $WORK (run with WORK=<its copy> PREPARED=1)"
  exit 0
fi

start_server

storm=(--storm-sessions "${STORM_N:-0}")
[ "$STORM" = 1 ] || storm=(--no-storm)
[ "${EXPIRED_READING:-0}" != 1 ] || storm+=(--expired-reading-s $((CACHE_TTL + 75)))
"$BENCH" imap-scale --imap "127.0.0.1:$IMAPS_PORT" --smtp "127.0.0.1:$SMTP_PORT" \
  --user 'idle{n}@bench.test' --sessions "$N" --warmup "$WARMUP" --password "$PASS" \
  --pid "$SERVER_PID" --sources "$SOURCES" --parallel "$PARALLEL" --deliveries "$DELIVERIES" \
  --settle-ms "${SETTLE_MS:-15000}" --timeout "${TIMEOUT:-120}" \
  "${storm[@]}" | tee "$WORK/out"
server_alive
echo "user import of $TOTAL accounts: $IMPORT_S s"
grep -c ' ERROR ' "$WORK/yubin.log" | sed 's/^/server ERROR lines: /' || true
