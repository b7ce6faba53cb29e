#!/usr/bin/env bash
# Regenerates docs/data/contracts.json: the sizes of the contract transactions measured on a real regtest
# bitcoind by contracts/tests/regtest.rs and contracts/tests/chain_rpc.rs (the tables of docs/contracts.md
# quote it; the compare crate reads it).
#
#   scripts/contracts-measured.sh             run the tests, write docs/data/contracts.json
#   scripts/contracts-measured.sh --out FILE  write FILE instead
#
# The tests record each measured transaction as $BOLTENSOR_MEASURED_OUT/contracts.d/<name>.json (one file
# each: they run in parallel threads and two test binaries); this script merges them, sorted by key, into
# {"source": "scripts/contracts-measured.sh", "transactions": {"<name>": {"vsize_vb", "weight_wu",
# "witness_bytes", "test"}}} and refuses a result missing a required name.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/boltensor/target}"
out="docs/data/contracts.json"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="${2:?--out needs a file}"; shift 2 ;;
    *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
  esac
done
BITCOIND_EXE="${BITCOIND_EXE:-$(scripts/build-bitcoind.sh)}"
export BITCOIND_EXE
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export BOLTENSOR_MEASURED_OUT="$tmp"

cargo test -q -p boltensor-contracts --test regtest --test chain_rpc >&2

# Must match REQUIRED in contracts/tests/measured_data.rs.
required="bond_funding bond_funding_ldk_node bond_withdrawal_owner bond_slash_3of4 bond_cooperative_exit_3of4 treasury_payout_4of5_1in"
shopt -s nullglob
files=("$tmp"/contracts.d/*.json)
[ ${#files[@]} -gt 0 ] || { echo "[contracts-measured] the tests recorded nothing in $tmp/contracts.d" >&2; exit 1; }
for name in $required; do
  [ -f "$tmp/contracts.d/$name.json" ] || { echo "[contracts-measured] no measurement named $name" >&2; exit 1; }
done

merged="$tmp/contracts.json"
if command -v jq >/dev/null; then
  for f in "${files[@]}"; do
    jq --arg name "$(basename "$f" .json)" '{($name): .}' "$f"
  done | jq -S -s '{source: "scripts/contracts-measured.sh", transactions: add}' >"$merged"
else
  python3 - "$merged" "${files[@]}" <<'PY'
import json, os, sys
tx = {os.path.basename(f)[:-len(".json")]: json.load(open(f)) for f in sys.argv[2:]}
doc = {"source": "scripts/contracts-measured.sh", "transactions": tx}
with open(sys.argv[1], "w") as o:
    json.dump(doc, o, indent=2, sort_keys=True)
    o.write("\n")
PY
fi
mkdir -p "$(dirname "$out")"
cp "$merged" "$out"
echo "[contracts-measured] wrote $out (${#files[@]} transactions)" >&2
