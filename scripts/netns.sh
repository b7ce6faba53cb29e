#!/usr/bin/env bash
# Runs the federation over the emulated network (boltensor/tests/network.rs: four `coordinator run` processes
# in their own network namespaces, 50 ms ± 10 ms and 1 % loss on every link, then one member cut off, a 2 | 2
# split, a flapping link and the payer cut off mid-payout; member 0 pays its epochs over Lightning to payees on
# the hub and routes a client's paid requests to a miner there) and prints docs/reliability.md's network
# table. Needs root (ip netns, TUN).
#
#   scripts/netns.sh                 each fault lasts 60 s; print the table
#   scripts/netns.sh --secs N        each fault lasts N s (the test's default in ./dev test is 15)
#   scripts/netns.sh --docs FILE     also replace the table between the NETNS-TABLE markers in FILE
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/boltensor/target}"
secs=60
docs=""
while [ $# -gt 0 ]; do
  case "$1" in
    --secs) secs="${2:?--secs needs a number}"; shift 2 ;;
    --docs) docs="${2:?--docs needs a file}"; shift 2 ;;
    *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
case "$secs" in ''|*[!0-9]*|0) echo "--secs needs a positive number, got '$secs'" >&2; exit 2 ;; esac
BITCOIND_EXE="${BITCOIND_EXE:-$(scripts/build-bitcoind.sh)}"
export BITCOIND_EXE
report=$(mktemp)
trap 'rm -f "$report"' EXIT
echo "[netns] faults of $secs s each; cargo test -p boltensor --test network" >&2
BOLTENSOR_NETNS_REPORT="$report" BOLTENSOR_NETNS_FAULT_SECS="$secs" \
  cargo test -q -p boltensor --test network -- --nocapture >&2

python3 - "$report" "$docs" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
docs = sys.argv[2]
out = [
    "| scenario (links: %s) | fault lasted | epochs signed during it | healed → every member past it | payouts receipted during it | paid requests answered / failed during it | conflicting signed results | payouts made twice / msat lost | packets delivered / lost / cut |" % rows[0]["link"],
    "|---|---|---|---|---|---|---|---|---|",
]
cell = lambda t: t.replace("|", "\\|")  # a scenario's "2 | 2" must not end its table cell
for r in rows:
    rec = "—" if r["recover_secs"] == 0 else "%.1f s" % r["recover_secs"]
    p = r["packets"]
    out.append("| %s | %.0f s | %d | %s | %d | %d / %d | %d of %d epochs | %d / %d | %d / %d / %d |" % (
        cell(r["scenario"]), r["fault_secs"], r["epochs_during"], rec, r["payouts"], r["requests"][0], r["requests"][1],
        r["conflicts"], r["epochs_checked"],
        r["paid_twice"], r["lost_msat"], p[0], p[1], p[2]))
table = "\n".join(out)
print(table)
if docs:
    text = open(docs).read()
    start, end = "<!-- NETNS-TABLE -->", "<!-- /NETNS-TABLE -->"
    if start not in text or end not in text:
        sys.exit("%s has no %s … %s markers" % (docs, start, end))
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    open(docs, "w").write(head + start + "\n" + table + "\n" + end + tail)
    print("[netns] table written to %s" % docs, file=sys.stderr)
PY
