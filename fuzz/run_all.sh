#!/usr/bin/env bash
# Runs every cargo-fuzz target one after the other for SECS seconds each (default 90) and
# prints libFuzzer's execution count per target. New inputs go to fuzz/work/<target>/ (not
# committed); crashes to fuzz/artifacts/<target>/. Needs the nightly toolchain and
# cargo-fuzz (`cargo install cargo-fuzz`). See docs/fuzzing.md.
set -uo pipefail
cd "$(dirname "$0")"
SECS="${SECS:-90}"
TARGETS="${*:-smtp_command smtp_session imap_command imap_mime pop3_command sasl web_request}"
for t in $TARGETS; do
  mkdir -p "work/$t"
  log="work/$t.log"
  rustup run nightly cargo fuzz run -s none -a "$t" "work/$t" "corpus/$t" -- \
    -max_total_time="$SECS" -timeout=10 -max_len=262144 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' || true)
  crashes=$(ls "artifacts/$t" 2>/dev/null | wc -l)
  echo "$t: exit $rc, executions ${runs:-?} in ${SECS} s, artifacts $crashes"
done
