#!/usr/bin/env bash
# Import throughput (issue 10): generates a Maildir++ of N messages (INBOX and two folders,
# bodies of 1-8 KB, flags and keywords as Dovecot writes them, mtimes as internal dates),
# then times `yubin import maildir` into a fresh embedded store and a second, resumed run
# (which must add nothing). Prints messages/s.
#
# Usage: benches/import.sh [N]          (default 100000)
# Env:   YUBIN [target/release/yubin]   KEEP=1 keeps the work directory
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
YUBIN=${YUBIN:-target/release/yubin}
[ -x "$YUBIN" ] || { echo "build first: cargo build --release -p yubin" >&2; exit 1; }
WORK=$(mktemp -d /var/tmp/yubin-import-bench.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT

python3 - "$WORK/Maildir" "$N" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(10)
folders = ["", ".Sent", ".Lists.Dev"]
for f in folders:
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(root, f, sub), exist_ok=True)
    with open(os.path.join(root, f, "dovecot-keywords"), "w") as k:
        k.write("0 $Forwarded\n1 Work\n")
words = "lorem ipsum dolor sit amet mailbox folder message report meeting budget".split()
for i in range(n):
    folder = folders[0] if i % 10 < 7 else folders[1 + i % 2]
    body = "\n".join(" ".join(rnd.choice(words) for _ in range(12)) for _ in range(rnd.randint(10, 100)))
    msg = (f"From: Sender {i % 97} <s{i % 97}@example.org>\nTo: user@bench.test\n"
           f"Subject: message {i}\nMessage-ID: <{i}.bench@example.org>\n"
           f"Date: Mon, 1 Jan 2024 00:00:00 +0000\n\n{body}\n")
    t = 1_600_000_000 + i * 60
    flags = rnd.choice(["S", "RS", "FS", "", "Sa", "Sb"])
    name = f"{t}.M{i}P1.bench,S={len(msg)}:2,{flags}"
    path = os.path.join(root, folder, "cur", name)
    with open(path, "w") as fh:
        fh.write(msg)
    os.utime(path, (t, t))
PY
echo "generated $N messages ($(du -sh "$WORK/Maildir" | cut -f1)) in $WORK/Maildir"

cat > "$WORK/yubin.toml" <<TOML
hostname = "bench.test"
data_dir = "$WORK/data"
TOML
"$YUBIN" -c "$WORK/yubin.toml" domain add bench.test >/dev/null
echo pass | "$YUBIN" -c "$WORK/yubin.toml" user add user@bench.test --password-stdin >/dev/null
sync

run() {
  local start end
  start=$(date +%s.%N)
  "$YUBIN" -c "$WORK/yubin.toml" import maildir "$WORK/Maildir" user@bench.test | tail -1
  end=$(date +%s.%N)
  python3 -c "import sys; s,e,n=map(float,sys.argv[1:]); print(f'$1: {n:.0f} messages in {e-s:.2f} s = {n/(e-s):.0f} msgs/s')" "$start" "$end" "$N"
}
run "import"
run "resumed import (adds nothing)"
