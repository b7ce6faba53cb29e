"""PyPI `l402-requests` (unmodified) against a Boltensor miner, the standard L402 way: pay the invoice
first, then repeat the request with `Authorization: L402 <token>:<preimage>`. Its wallet is its own LND REST
adapter, pointed at the LND REST stand-in over a regtest ldk-node node (boltensor_testenv::lnd_rest): a
test's, or a devnet client's "agent wallet", whose macaroon is that client proxy's key.

Usage: l402_requests_check.py MINER_URL LND_REST_URL [MACAROON]   (prints one JSON object)
"""

import json
import sys

from l402_requests import BudgetController, L402Client, LndWallet

miner, lnd = sys.argv[1], sys.argv[2]
macaroon = sys.argv[3] if len(sys.argv) > 3 else "00"
client = L402Client(
    wallet=LndWallet(host=lnd, macaroon_hex=macaroon),
    budget=BudgetController(max_sats_per_request=1_000, max_sats_per_hour=10_000, max_sats_per_day=10_000),
    timeout=120.0,
)
out = {}

r = client.post(f"{miner}/v1/embeddings", json={"model": "all-minilm-l6-v2", "input": "paid first by an L402 agent"})
out["embed_status"] = r.status_code
out["embedding"] = r.json()["data"][0]["embedding"] if r.status_code == 200 else r.text

chat = {
    "model": "smollm2-135m-instruct",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "max_tokens": 8,
    "temperature": 0,
}
r = client.post(f"{miner}/v1/chat/completions", json=chat)
out["chat_status"] = r.status_code
out["chat_text"] = r.json()["choices"][0]["message"]["content"] if r.status_code == 200 else r.text

# The same path again with another body: the client sends the credential it cached for the path; that
# token paid for the first request only, so the miner answers with a new challenge, which the client pays.
r = client.post(f"{miner}/v1/embeddings", json={"model": "all-minilm-l6-v2", "input": "a second request"})
out["second_embed_status"] = r.status_code

# The HTTP Payment scheme (draft-00, lightning charge), which the same 402 also offers. The client prefers
# L402 when both are there, so this client's HTTP layer keeps only the Payment challenge of each 402.
def payment_scheme_only(response):
    offered = [v for v in response.headers.get_list("www-authenticate") if v.startswith("Payment ")]
    if offered:
        response.headers["www-authenticate"] = offered[0]


payment_client = L402Client(
    wallet=LndWallet(host=lnd, macaroon_hex=macaroon),
    budget=BudgetController(max_sats_per_request=1_000, max_sats_per_hour=10_000, max_sats_per_day=10_000),
    timeout=120.0,
    event_hooks={"response": [payment_scheme_only]},
)
r = payment_client.post(f"{miner}/v1/embeddings", json={"model": "all-minilm-l6-v2", "input": "paid first by an L402 agent"})
out["payment_embed_status"] = r.status_code
out["payment_embedding"] = r.json()["data"][0]["embedding"] if r.status_code == 200 else r.text
receipt = getattr(r, "payment_receipt", None)
out["payment_receipt"] = None if receipt is None else {"status": receipt.status, "reference": receipt.reference, "method": receipt.method}
r = payment_client.post(f"{miner}/v1/chat/completions", json=chat)
out["payment_chat_status"] = r.status_code
out["payment_chat_text"] = r.json()["choices"][0]["message"]["content"] if r.status_code == 200 else r.text

out["payments"] = [
    {"path": p.path, "sats": p.amount_sats, "ok": p.success, "preimage": p.preimage}
    for p in client.spending_log.records + payment_client.spending_log.records
]
print(json.dumps(out))
