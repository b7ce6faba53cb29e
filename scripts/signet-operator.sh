#!/usr/bin/env bash
# Follows docs/operators.md step by step on a private signet (issue 19): Bitcoin Core with
# `-signet -signetchallenge=51` (OP_TRUE: anyone can make blocks, so this script mines them itself), then every
# role the way the guide runs it — separate processes and data dirs, the guide's commands and flags:
#
#   §1 bitcoind (the guide's bitcoin.conf)     §2–3 each node's address (`node info`), funded by coinbases
#   four coordinators from `coordinator init --network signet` (member 0 with its Lightning node)
#   §6 a miner (`miner run`, bond + registration) and a validator (`validator run`, bond)
#   §4 channels with `node open-channel`, each role's daemon stopped first, as §4 says
#   a client (`client proxy`) paying for embeddings, until a signed epoch pays a payout.
#
# It stops at the first step that does not do what the guide says, with that step's log.
#
#   scripts/signet-operator.sh            run it (about 5 minutes on 2 cores, most of it mining)
#   scripts/signet-operator.sh --keep     leave the work dir (its path is printed) for inspection
#   BOLTENSOR_BIN=path/to/boltensor scripts/signet-operator.sh   use that binary instead of building one
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/boltensor/target}"
keep=0
case "${1:-}" in
  --keep) keep=1 ;;
  "") ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac

BITCOIND_EXE="${BITCOIND_EXE:-$(scripts/build-bitcoind.sh)}"
CLI="$(dirname "$BITCOIND_EXE")/bitcoin-cli"
[ -x "$CLI" ] || { echo "[signet] no bitcoin-cli beside $BITCOIND_EXE" >&2; exit 1; }
# The binary under test: $BOLTENSOR_BIN (e.g. a release build), else a debug build of this checkout.
BT="${BOLTENSOR_BIN:-}"
if [ -z "$BT" ]; then
  echo "[signet] building boltensor (debug)" >&2
  cargo build -q -p boltensor
  BT="$CARGO_TARGET_DIR/debug/boltensor"
fi
scripts/fetch-models.sh >/dev/null

W=$(mktemp -d /tmp/boltensor-signet.XXXXXX)
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$CLI" -datadir="$W/bitcoind" stop >/dev/null 2>&1 || true
  sleep 1
  if [ "$keep" = 1 ] || [ "$rc" != 0 ]; then echo "[signet] work dir kept: $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT

step() { echo "[signet] $*" >&2; }
fail() { echo "[signet] FAILED: $1" >&2; [ -n "${2:-}" ] && [ -f "$2" ] && tail -n 40 "$2" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_until SECONDS DESCRIPTION LOG COMMAND...: polls COMMAND every second until it succeeds.
wait_until() {
  local secs=$1 what=$2 log=$3; shift 3
  local end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || fail "$what (waited $secs s)" "$log"
    sleep 1
  done
}
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }

RPC_PORT=$(free_port)
RPC_PASS=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
chain=(--network signet --bitcoind-rpc "127.0.0.1:$RPC_PORT" --bitcoind-rpc-user boltensor --bitcoind-rpc-password "$RPC_PASS")
coord_chain=(--network signet --rpc-url "http://127.0.0.1:$RPC_PORT" --rpc-user boltensor --rpc-pass "$RPC_PASS")

# §1 bitcoind: the guide's signet bitcoin.conf, with the private signet's challenge.
step "§1 bitcoind on a private signet (signetchallenge=51)"
mkdir -p "$W/bitcoind"
cat >"$W/bitcoind/bitcoin.conf" <<EOF
signet=1
server=1
txindex=1
listen=0
[signet]
signetchallenge=51
rpcport=$RPC_PORT
rpcbind=127.0.0.1
rpcallowip=127.0.0.1
rpcuser=boltensor
rpcpassword=$RPC_PASS
EOF
"$BITCOIND_EXE" -datadir="$W/bitcoind" >"$W/bitcoind.log" 2>&1 &
pids+=($!)
cli() { "$CLI" -datadir="$W/bitcoind" "$@"; }
wait_until 60 "bitcoind's RPC" "$W/bitcoind.log" cli getblockchaininfo
# Signet's minimum difficulty still takes tries: the default maxtries (10^6) often finds no block here.
mine() { cli generatetoaddress "$1" "$2" 1000000000 >/dev/null; }
# Blocks nobody needs the coins of: to an OP_TRUE output script.
mine_away() { cli generatetodescriptor "$1" "raw(51)" 1000000000 >/dev/null; }
mine_away 1 # out of initial block download (the genesis block is from 2020)

# §2–3 the nodes and their addresses.
node_info() { "$BT" node info --data-dir "$1" "${chain[@]}" --json 2>>"$W/node-info.log"; }
step "§2 node info for member 0 (its node in fed/member-0/ln), the miner, the validator and the client"
"$BT" coordinator init --members 4 --network signet --dir "$W/fed" --base-port "$(( $(free_port) / 2 * 2 ))" \
  >"$W/init.log" 2>&1 || fail "coordinator init" "$W/init.log"
declare -A addr id
for role in fed/member-0 miner validator client; do
  info=$(node_info "$W/$role") || fail "node info $role" "$W/node-info.log"
  addr[$role]=$(echo "$info" | json 'd["address"]')
  id[$role]=$(echo "$info" | json 'd["node_id"]')
done
step "§3 funding: a coinbase to each node, then 100 blocks to maturity (about two minutes)"
for role in fed/member-0 miner validator client; do mine 1 "${addr[$role]}"; done
mine_away 100
for role in fed/member-0 miner validator client; do
  wait_until 120 "$role's coinbase to be spendable" "$W/node-info.log" \
    sh -c "\"$BT\" node info --data-dir \"$W/$role\" ${chain[*]} --json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)[\"spendable_onchain_sats\"] > 0 else 1)'"
done

# The federation: four members, member 0 with its Lightning node (it routes clients to miners and pays).
api() { python3 -c 'import json,sys; print("http://" + json.load(open(sys.argv[1]))["members"][int(sys.argv[2])]["api"])' "$W/fed/member-0/federation.json" "$1"; }
LN0=$(free_port)
start_member() {
  local i=$1; shift
  "$BT" coordinator run --dir "$W/fed/member-$i" "${coord_chain[@]}" "$@" >>"$W/member-$i.log" 2>&1 &
  pids+=($!)
  eval "member_pid_$i=$!"
}
step "coordinators: four \`coordinator run\` processes (member 0 with --ln-listen)"
start_member 0 --ln-listen "127.0.0.1:$LN0"
for i in 1 2 3; do start_member "$i"; done
for i in 0 1 2 3; do wait_until 120 "member $i's API" "$W/member-$i.log" curl -sf "$(api "$i")/v1/status"; done
coords=(--coordinator "$(api 0)" --coordinator "$(api 1)" --coordinator "$(api 2)" --coordinator "$(api 3)")

# Blocks keep coming, as on a real signet (bonds need 6 confirmations, channels 6).
( while true; do mine_away 1 || true; sleep 5; done ) &
pids+=($!)

# §6 the miner: bond + registration from `miner run`, the coordinator as its trusted peer.
LNM=$(free_port); HTTPM=$(free_port)
step "§6 miner run (bond 100000 sat, registered with all four members)"
"$BT" miner run --data-dir "$W/miner" "${chain[@]}" --trusted-peer "${id[fed/member-0]}" \
  --ln-listen "127.0.0.1:$LNM" --listen "127.0.0.1:$HTTPM" --model all-minilm-l6-v2 "${coords[@]}" \
  --public-url "http://127.0.0.1:$HTTPM" --bond-sat 100000 >"$W/miner.log" 2>&1 &
pids+=($!)
wait_until 300 "the federation to list the miner (bond counted)" "$W/miner.log" \
  sh -c "curl -sf $(api 1)/v1/miners | grep -q ${id[miner]}"

# §6 the validator, then §4: its channel to member 0 (its daemon stopped first).
LNV=$(free_port); HTTPV=$(free_port)
start_validator() {
  "$BT" validator run --data-dir "$W/validator" "${chain[@]}" --trusted-peer "${id[fed/member-0]}" \
    --ln-listen "127.0.0.1:$LNV" "${coords[@]}" --bond-sat 1000000 --listen "127.0.0.1:$HTTPV" \
    --round-secs 5 --epoch-secs 10 >>"$W/validator.log" 2>&1 &
  validator_pid=$!
  pids+=($validator_pid)
}
step "§6 validator run (bond 1000000 sat)"
start_validator
wait_until 300 "the validator's bond to count as stake" "$W/validator.log" \
  sh -c "curl -sf $(api 1)/v1/registry | python3 -c 'import json,sys; sys.exit(0 if any(n[\"role\"]==\"validator\" and n.get(\"stake_sat\",0)>0 for n in json.load(sys.stdin)[\"registry\"]) else 1)'"

step "§4 member 0 stopped; its channels to the miner and the validator with \`node open-channel\`"
kill "$member_pid_0"; wait "$member_pid_0" 2>/dev/null || true
for role in miner validator; do
  port=$([ "$role" = miner ] && echo "$LNM" || echo "$LNV")
  "$BT" node open-channel --data-dir "$W/fed/member-0" "${chain[@]}" --ln-listen "127.0.0.1:$LN0" \
    --peer "${id[$role]}@127.0.0.1:$port" --sats 1000000 >>"$W/open-channel.log" 2>&1 \
    || fail "member 0 → $role channel" "$W/open-channel.log"
done
start_member 0 --ln-listen "127.0.0.1:$LN0"
wait_until 120 "member 0's API again" "$W/member-0.log" curl -sf "$(api 0)/v1/status"

step "§4 validator stopped; its channel to member 0; validator started again"
kill "$validator_pid"; wait "$validator_pid" 2>/dev/null || true
"$BT" node open-channel --data-dir "$W/validator" "${chain[@]}" --ln-listen "127.0.0.1:$LNV" \
  --peer "${id[fed/member-0]}@127.0.0.1:$LN0" --sats 500000 >>"$W/open-channel.log" 2>&1 \
  || fail "validator → member 0 channel" "$W/open-channel.log"
start_validator

step "§4 the client's channel to member 0, then \`client proxy\`"
LNC=$(free_port); PX=$(free_port)
"$BT" node open-channel --data-dir "$W/client" "${chain[@]}" --ln-listen "127.0.0.1:$LNC" \
  --peer "${id[fed/member-0]}@127.0.0.1:$LN0" --sats 500000 >>"$W/open-channel.log" 2>&1 \
  || fail "client → member 0 channel" "$W/open-channel.log"
"$BT" client proxy --data-dir "$W/client" "${chain[@]}" --ln-listen "127.0.0.1:$LNC" \
  --listen "127.0.0.1:$PX" "${coords[@]}" >"$W/client.log" 2>&1 &
pids+=($!)
wait_until 120 "the proxy's key" "$W/client.log" test -s "$W/client/proxy.key"
auth="Authorization: Bearer $(cat "$W/client/proxy.key")"
wait_until 120 "the proxy" "$W/client.log" curl -sf -H "$auth" "http://127.0.0.1:$PX/v1/models"

step "paid embeddings through the proxy (each a Lightning payment client → member 0 → miner)"
paid=0
end=$(( $(date +%s) + 300 ))
while [ "$paid" -lt 5 ]; do
  [ "$(date +%s)" -lt "$end" ] || fail "5 paid embeddings within 300 s ($paid)" "$W/client.log"
  if curl -sf -H "$auth" -H 'content-type: application/json' "http://127.0.0.1:$PX/v1/embeddings" \
      -d "{\"model\":\"all-minilm-l6-v2\",\"input\":\"signet request $paid\"}" | grep -q '"embedding"'; then
    paid=$((paid + 1))
  else
    sleep 2
  fi
done

step "a signed epoch with a payout, and its receipt (the fee-funded pool: half of member 0's routing fees)"
wait_until 600 "a payout receipt at member 0" "$W/member-0.log" \
  sh -c "curl -sf $(api 0)/v1/payouts | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)[\"receipts\"] else 1)'"
# The epoch of the first receipt (receipts are keyed "epoch:payer:payee"), recomputed from another member.
paid_epoch=$(curl -sf "$(api 0)/v1/payouts" | python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)["receipts"])[0].split(":")[0])')
"$BT" epoch verify --from "$(api 2)" --epoch "$paid_epoch" >"$W/verify.log" 2>&1 || fail "epoch verify" "$W/verify.log"
head -n 2 "$W/verify.log" | sed 's/^/[signet] epoch verify: /' >&2
step "done in $SECONDS s: $(curl -sf "$(api 0)/v1/payouts" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["receipts"]), "payout receipt(s) at member 0")')"
