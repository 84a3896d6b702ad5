# Shell helpers shared by the benchmark scripts (sourced; they use $SERVER_PID and $WORK).

# Waits until something accepts TCP connections on 127.0.0.1:$1 (up to 30 s); fails early if
# the server started as $SERVER_PID has exited.
wait_port() {
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    if [ -n "$SERVER_PID" ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

# Exits with the server's last log lines if it is no longer running.
server_alive() {
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "yubin exited; last log lines:" >&2; tail -20 "$WORK/yubin.log" >&2; exit 1
  fi
}

# Writes the head of a benchmark's yubin config to $1: hostname, data_dir $2, and a [listen]
# table where only the listeners given as NAME=ADDRESS arguments are on (every other listener is
# disabled with an empty list). Callers append their own tables.
bench_config() {
  local cfg=$1 data=$2 name kv addr
  shift 2
  {
    printf 'hostname = "mx.bench.test"\ndata_dir = "%s"\n\n[listen]\n' "$data"
    for name in smtp submission submissions pop3 pop3s imap imaps; do
      addr=""
      for kv in "$@"; do [ "${kv%%=*}" = "$name" ] && addr=${kv#*=}; done
      if [ -n "$addr" ]; then printf '%s = ["%s"]\n' "$name" "$addr"; else printf '%s = []\n' "$name"; fi
    done
  } >"$cfg"
}
