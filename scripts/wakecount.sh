#!/usr/bin/env bash
# Counts the futex calls of a command and of the processes it starts, by
# what made them (Linux perf, the syscalls:sys_enter_futex tracepoint with
# call stacks; Go binaries keep frame pointers), and prints them per round
# trip: wakep (the runtime waking a thread for an idle P, after a goroutine
# was readied or created, by the first frame outside the runtime), stopm
# (a thread going to sleep), and the sysmon's sleeps and wake-ups.
#
#   scripts/wakecount.sh CALLS COMMAND [ARGS...]
#
# CALLS is the number of round trips the command makes in all (timed and
# warm-up), to divide by. Examples (docs/BENCHMARKS.md):
#
#   scripts/wakecount.sh 21000 /tmp/pingpong -mode handoff -n 20000
#   scripts/wakecount.sh 21000 $OUT/bin/arsenal -w remotertt -n 20000   # a binary built by ../shared/bench/peers/run.sh
set -euo pipefail
calls=$1
shift
data=$(mktemp)
trap 'rm -f "$data"' EXIT
perf record -q -e syscalls:sys_enter_futex -g -o "$data" -- "$@"
perf script -i "$data" 2>/dev/null | python3 -c '
import sys, re, collections
calls = float(sys.argv[1])
c = collections.Counter()
frames, op = [], None
skip = {"runtime.futex.abi0", "runtime.futex", "runtime.notewakeup", "runtime.notesleep",
        "runtime.systemstack.abi0", "runtime.futexwakeup", "runtime.futexsleep"}
def flush():
    if op is None:
        return
    rt = [f for f in frames if f.startswith("runtime.") and f not in skip]
    user = [f for f in frames if not f.startswith(("runtime.", "internal/", "syscall."))]
    kind = rt[0] if rt else "?"
    if kind == "runtime.startm":
        c["wakep by " + (user[0] if user else "the runtime")] += 1
    elif kind == "runtime.stopm":
        c["stopm"] += 1
    elif kind == "runtime.entersyscallWakeSysmon":
        c["sysmon woken"] += 1
    elif kind == "runtime.notetsleep_internal":
        c["sysmon sleeps"] += 1
    else:
        c[op + " other"] += 1
    c["futex, all"] += 1
for line in sys.stdin:
    if "syscalls:sys_enter_futex" in line:
        flush()
        m = re.search(r"op: 0x([0-9a-f]+)", line)
        op = "wake" if int(m.group(1), 16) & 0x7f == 1 else "wait"
        frames = []
        continue
    parts = line.split(None, 1)
    if len(parts) == 2:
        frames.append(parts[1].split("+")[0].split(" (")[0])
flush()
for k, v in c.most_common():
    print("%6.2f per round trip  %s" % (v / calls, k))
' "$calls"
