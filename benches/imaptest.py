#!/usr/bin/env python3
"""Helpers for benches/imap.sh's imaptest mode (Dovecot's imaptest against yubin and Dovecot).

  imaptest.py cpu PID             CPU seconds (user+system) used so far by PID and every process
                                  below it, including children already reaped (their time is in
                                  the parent's cutime/cstime): for Dovecot, the master and its
                                  imap, imap-login, auth, ... processes.
  imaptest.py parse FILE          one JSON object from an imaptest output file: commands done
                                  (the sum of the "Totals:" row), per-command totals, state
                                  errors ("Error:" lines; also Fatal/Panic), average ms per
                                  command over the run (mean of imaptest's 10-second windows).
  imaptest.py summary RESULTS     the side-by-side table from the JSON lines benches/imap.sh
                                  wrote (medians over rounds; yubin/Dovecot ratios).
  imaptest.py mailbox create|delete PORT USER_FORMAT USERS PASSWORD NAME
                                  creates (or deletes) mailbox NAME for each user over IMAP on
                                  127.0.0.1:PORT (USER_FORMAT as imaptest's, with %d): each run
                                  of the benchmark works in a fresh mailbox, whatever earlier
                                  runs (with another mbox) left in the INBOX of a shared peer.
"""

import imaplib
import json
import os
import re
import statistics
import sys


def _stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces and parentheses: split after the last ")".
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    return int(fields[1]), sum(int(x) for x in fields[11:15])


def cpu_seconds(root):
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    procs = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                procs[int(p)] = _stat(p)
            except (OSError, IndexError, ValueError):
                pass  # the process ended meanwhile
    children = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            total += procs[pid][1]
            todo.extend(children.get(pid, []))
    return total / ticks_per_s


def parse(path):
    text = open(path, errors="replace").read()
    lines = text.splitlines()
    errors = sum(1 for l in lines if re.match(r"^(Error|Fatal|Panic):", l))
    names, totals = [], []
    if "Totals:" in lines:
        after = lines[lines.index("Totals:") + 1 :]
        if after:
            names = after[0].split()
        for l in after[1:]:
            if re.fullmatch(r"[ 0-9]+", l) and l.strip():
                totals = [int(x) for x in l.split()]
    per_command = dict(zip(names, totals))
    # "  12    3 ... ms/cmd avg" lines: one per 10-second window, and the rest at the end.
    windows = [
        [int(x) for x in l.split()[:-2]]
        for l in lines
        if l.endswith("ms/cmd avg") and len(l.split()) - 2 == len(names)
    ]
    avg_ms = {}
    for i, name in enumerate(names):
        values = [w[i] for w in windows if w[i] > 0]
        if values:
            avg_ms[name] = round(statistics.mean(values), 1)
    return {
        "commands": sum(totals),
        "per_command": per_command,
        "avg_ms": avg_ms,
        "errors": errors,
        "first_errors": [l for l in lines if l.startswith("Error:")][:3],
        "complete": bool(totals),
    }


def summary(path):
    runs = [json.loads(l) for l in open(path) if l.strip()]
    runs = [r for r in runs if r.get("mode") == "imaptest"]
    points = []
    for r in runs:
        key = (r["clients"], r["profile"])
        if key not in points:
            points.append(key)

    def med(values):
        return statistics.median(values) if values else float("nan")

    head = (
        f"{'point':<18} {'yubin cmd/s':>12} {'dovecot cmd/s':>14} {'ratio':>6}  "
        f"{'yubin CPU-s/1k':>14} {'dovecot CPU-s/1k':>16} {'ratio':>6}  "
        f"{'yubin LOGIN ms':>14} {'dovecot LOGIN ms':>16}  errors yubin / dovecot (per run)"
    )
    out = [head]
    for clients, profile in points:
        row = {}
        for server in ("yubin", "dovecot"):
            rs = [r for r in runs if (r["clients"], r["profile"], r["server"]) == (clients, profile, server)]
            row[server] = {
                "cps": med([r["cmds_per_s"] for r in rs]),
                "cpu": med([r["cpu_s_per_1000"] for r in rs if r["cpu_s_per_1000"] is not None]),
                "login": med([r["avg_ms"].get("Logi") for r in rs if r["avg_ms"].get("Logi") is not None]),
                "errors": [r["errors"] for r in rs],
            }
        y, d = row["yubin"], row["dovecot"]

        def ratio(a, b):
            return f"{a / b:6.2f}" if b and b == b and a == a else f"{'-':>6}"

        out.append(
            f"{'c%d %s' % (clients, profile):<18} {y['cps']:12.0f} {d['cps']:14.0f} {ratio(y['cps'], d['cps'])}  "
            f"{y['cpu']:14.3f} {d['cpu']:16.3f} {ratio(y['cpu'], d['cpu'])}  "
            f"{y['login']:14.1f} {d['login']:16.1f}  {y['errors']} / {d['errors']}"
        )
    out.append("")
    out.append("ratio = yubin / Dovecot (commands/s: higher is better for yubin; CPU: lower is).")
    out.append("CPU-s/1k = CPU seconds per 1,000 commands (yubin: its process; Dovecot: all its processes).")
    out.append("LOGIN ms = imaptest's average LOGIN latency; errors = imaptest 'Error:' lines per run.")
    print("\n".join(out))


def mailboxes(action, port, user_format, users, password, name):
    for n in range(1, users + 1):
        m = imaplib.IMAP4("127.0.0.1", port, timeout=60)
        m.login(user_format % n, password)
        if action == "create":
            m.delete(name)  # left over from an interrupted run, if any
            typ, data = m.create(name)
        else:
            typ, data = m.delete(name)
        m.logout()
        if typ != "OK":
            sys.exit(f"{action} {name} for {user_format % n} on port {port}: {typ} {data}")


def main():
    if len(sys.argv) == 8 and sys.argv[1] == "mailbox" and sys.argv[2] in ("create", "delete"):
        _, _, action, port, fmt, users, password, name = sys.argv
        mailboxes(action, int(port), fmt, int(users), password, name)
        return
    if len(sys.argv) != 3 or sys.argv[1] not in ("cpu", "parse", "summary"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cmd, arg = sys.argv[1], sys.argv[2]
    if cmd == "cpu":
        print(f"{cpu_seconds(int(arg)):.2f}")
    elif cmd == "parse":
        print(json.dumps(parse(arg)))
    else:
        summary(arg)


if __name__ == "__main__":
    main()
