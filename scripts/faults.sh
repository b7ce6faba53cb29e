#!/usr/bin/env bash
# Runs every fault-injection test (tests named fault_* in */tests/faults*.rs) on the real regtest network and
# prints the fault table of docs/reliability.md: fault, recovered, time to recover, msat lost.
#
#   scripts/faults.sh              run them all, print the table
#   scripts/faults.sh --docs FILE  also replace the table between the FAULT-TABLE markers in FILE
#
# Each test ends with the ledger audit (crate boltensor-audit) and appends its row to $BOLTENSOR_FAULT_REPORT.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/boltensor/target}"
docs=""
if [ "${1:-}" = "--docs" ]; then docs="${2:?--docs needs a file}"; fi
BITCOIND_EXE="${BITCOIND_EXE:-$(scripts/build-bitcoind.sh)}"
export BITCOIND_EXE
report=$(mktemp)
trap 'rm -f "$report"' EXIT
export BOLTENSOR_FAULT_REPORT="$report"

status=0
for f in */tests/faults*.rs; do
  pkg_dir=${f%%/*}
  pkg=$(sed -n 's/^name = "\(.*\)"/\1/p' "$pkg_dir/Cargo.toml" | head -1)
  test=$(basename "$f" .rs)
  echo "[faults] $pkg --test $test" >&2
  cargo test -q -p "$pkg" --test "$test" -- --test-threads 1 fault_ >&2 || status=$?
done

python3 - "$report" "$docs" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
out = ["| fault | recovered | time to recover | msat lost | test |", "|---|---|---|---|---|"]
for r in rows:
    out.append("| %s | %s | %.1f s | %d | `%s` |" % (
        r["fault"], "yes" if r["recovered"] else "**NO**", r["recover_secs"], r["lost_msat"], r["test"]))
table = "\n".join(out)
print(table)
lost = sum(r["lost_msat"] for r in rows)
print("\n%d faults, %d recovered, %d msat lost in total" % (len(rows), sum(r["recovered"] for r in rows), lost))
if sys.argv[2]:
    path = sys.argv[2]
    text = open(path).read()
    start, end = "<!-- FAULT-TABLE -->", "<!-- /FAULT-TABLE -->"
    a, b = text.index(start) + len(start), text.index(end)
    open(path, "w").write(text[:a] + "\n" + table + "\n" + text[b:])
    print("updated " + path)
if lost or not all(r["recovered"] for r in rows):
    sys.exit(1)
PY
exit "$status"
