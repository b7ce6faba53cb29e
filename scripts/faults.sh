#!/usr/bin/env bash
# Runs every fault-injection test (tests named fault_* in */tests/faults*.rs) on the real regtest network and
# prints the fault table of docs/reliability.md: fault, runs passed, recovered, time to recover, msat lost (and for
# a reorg, the payouts signed with a reorged-out bond's stake before every member dropped it, per run).
#
#   scripts/faults.sh              run each fault test once, print the table
#   scripts/faults.sh --runs N     run each fault test N times (passes out of N in the table)
#   scripts/faults.sh --docs FILE  also replace the table between the FAULT-TABLE markers in FILE
#   scripts/faults.sh --marker M   with --docs: between the M markers instead (<!-- M --> … <!-- /M -->)
#   scripts/faults.sh --only NAME  only the fault tests whose name contains NAME (with --docs, only their rows
#                                  of the table are replaced; the others stay as the last full run left them)
#
# Each test ends with the ledger audit (crate boltensor-audit) and appends its row to $BOLTENSOR_FAULT_REPORT;
# a run that fails records no row, or a row that says it did not recover.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/boltensor/target}"
docs=""
runs=1
only=""
marker="FAULT-TABLE"
while [ $# -gt 0 ]; do
  case "$1" in
    --docs) docs="${2:?--docs needs a file}"; shift 2 ;;
    --runs) runs="${2:?--runs needs a number}"; shift 2 ;;
    --only) only="${2:?--only needs a name}"; shift 2 ;;
    --marker) marker="${2:?--marker needs a name}"; shift 2 ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
case "$runs" in ''|*[!0-9]*|0) echo "--runs needs a positive number, got '$runs'" >&2; exit 2 ;; esac
BITCOIND_EXE="${BITCOIND_EXE:-$(scripts/build-bitcoind.sh)}"
export BITCOIND_EXE
report=$(mktemp)
results=$(mktemp)
trap 'rm -f "$report" "$results"' EXIT
export BOLTENSOR_FAULT_REPORT="$report"

status=0
for f in */tests/faults*.rs; do
  test=$(basename "$f" .rs)
  names=$(cargo test -q --workspace --test "$test" -- --list 2>/dev/null | sed -n 's/^\(fault_[a-z0-9_]*\): test$/\1/p')
  if [ -z "$names" ]; then echo "[faults] $f: no fault_ tests listed (does it build?)" >&2; status=1; fi
  for name in $names; do
    case "$name" in *"$only"*) ;; *) continue ;; esac
    for run in $(seq 1 "$runs"); do
      echo "[faults] --test $test $name (run $run of $runs)" >&2
      t0=$(date +%s)
      if cargo test -q --workspace --test "$test" -- --exact "$name" --nocapture >&2; then ok=1; else ok=0; status=1; fi
      echo "$f::$name $ok $(( $(date +%s) - t0 ))" >>"$results"
      echo "[faults] $name run $run: $([ $ok = 1 ] && echo passed || echo FAILED) in $(( $(date +%s) - t0 )) s" >&2
    done
  done
done

python3 - "$report" "$results" "$runs" "$docs" "$marker" "$only" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
results = [l.split() for l in open(sys.argv[2]) if l.strip()]
runs, docs = int(sys.argv[3]), sys.argv[4]
tests = []
for name, _, _ in results:
    if name not in tests:
        tests.append(name)
out = ["| fault | runs passed | recovered | time to recover | msat lost | test |", "|---|---|---|---|---|---|"]
failed = False
total_lost = 0
for t in tests:
    passed = sum(1 for n, ok, _ in results if n == t and ok == "1")
    rs = [r for r in rows if r["test"] == t]
    fault = rs[0]["fault"] if rs else t.split("::")[-1]
    recovered = bool(rs) and all(r["recovered"] for r in rs)
    lost = sum(r["lost_msat"] for r in rs)
    total_lost += lost
    secs = sorted(r["recover_secs"] for r in rs)
    if not secs:
        time = "—"
    elif len(secs) == 1:
        time = "%.1f s" % secs[0]
    else:
        time = "%.1f s (%.1f–%.1f)" % (secs[len(secs) // 2], secs[0], secs[-1])
    failed |= passed < runs or not recovered or lost > 0
    # A test in which no Lightning money moved cannot lose any: its "0" would prove nothing.
    money = any(r.get("money_moved", True) for r in rs)
    shown = str(lost) if money or lost else "n/a (no Lightning payment in this test)"
    # A reorg test: epochs signed (payouts owed) with the stake of a bond gone from the chain, per run.
    stale = [r["stale_stake"] for r in rs if r.get("stale_stake") is not None]
    if stale:
        shown += "; paid with a reorged-out bond's stake before every member dropped it: " + ", ".join(
            "%d payout%s (%d msat)" % (x["payouts"], "" if x["payouts"] == 1 else "s", x["msat"]) for x in stale)
    out.append("| %s | %d/%d | %s | %s | %s | `%s` |" % (
        fault, passed, runs, "yes" if recovered else "**NO**", time, shown, t))
table = "\n".join(out)
print(table)
print("\n%d faults, %d runs each: %d runs passed of %d, %d msat lost in total" % (
    len(tests), runs, sum(1 for _, ok, _ in results if ok == "1"), len(results), total_lost))
if docs:
    text = open(docs).read()
    start, end = "<!-- %s -->" % sys.argv[5], "<!-- /%s -->" % sys.argv[5]
    a, b = text.index(start) + len(start), text.index(end)
    if sys.argv[6]:
        # --only: replace this run's rows in the committed table (matched by the test column), keep the rest.
        new = {line.rsplit("|", 2)[-2].strip(): line for line in out[2:]}
        kept = []
        for line in text[a:b].strip().splitlines():
            key = line.rsplit("|", 2)[-2].strip() if line.startswith("|") else None
            kept.append(new.pop(key, line) if key else line)
        kept.extend(new.values())
        table = "\n".join(kept)
    open(docs, "w").write(text[:a] + "\n" + table + "\n" + text[b:])
    print("updated " + docs)
if failed:
    sys.exit(1)
PY
exit "$status"
