#!/usr/bin/env bash
# Bulk account import (issue 13): writes a Dovecot passwd-file of N users over 10 domains,
# their hashes from `doveadm pw` when installed (SHA512-CRYPT, BLF-CRYPT, PBKDF2, SSHA512 in
# turn; else a fixed SHA512-CRYPT vector), then times `yubin user import --create-domains`
# into a fresh embedded store, and a second run (which must add nothing). Prints accounts/s.
#
# Usage: benches/user_import.sh [N]     (default 100000)
# Env:   YUBIN [target/release/yubin]   KEEP=1 keeps the work directory
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
YUBIN=${YUBIN:-target/release/yubin}
[ -x "$YUBIN" ] || { echo "build first: cargo build --release -p yubin" >&2; exit 1; }
WORK=$(mktemp -d /var/tmp/yubin-user-import-bench.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT

HASHES=()
if command -v doveadm >/dev/null; then
  for s in SHA512-CRYPT BLF-CRYPT PBKDF2 SSHA512; do HASHES+=("$(doveadm pw -s "$s" -p "bench $s")"); done
else
  HASHES+=('{SHA512-CRYPT}$6$lhocrD7hgdmnnmXP$ee0WN7P4R0hsqqoFMRWD4Zuf1VcdLSt.wWHuniSy/ISs03lcN76.b5VdAPJpq.LvtqD4Br5f5.4nljzqXBEYt.')
fi
python3 - "$WORK/users" "$N" "${HASHES[@]}" <<'PY'
import sys
path, n, hashes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
with open(path, "w") as f:
    for i in range(n):
        f.write(f"user{i}@bulk{i % 10}.example:{hashes[i % len(hashes)]}:1000:1000::/home/vmail::\n")
PY
printf 'data_dir = "%s/data"\nhostname = "bench.example"\n' "$WORK" > "$WORK/yubin.toml"
for run in first second; do
  start=$(date +%s.%N)
  out=$("$YUBIN" -c "$WORK/yubin.toml" user import "$WORK/users" --create-domains)
  end=$(date +%s.%N)
  echo "$run run: $out"
  python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'  {s:.1f} s wall, {int(sys.argv[3])/s:,.0f} lines/s')" "$start" "$end" "$N"
done
