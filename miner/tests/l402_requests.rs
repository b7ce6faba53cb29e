//! A third-party L402 client, unmodified: PyPI `l402-requests` (pinned in ./dev) pays a miner on regtest
//! the standard way — pay first, then `Authorization: L402 <token>:<preimage>` — through its own LND REST
//! wallet adapter, pointed at a stand-in over the test's ldk-node node (`boltensor_testenv::lnd_rest`).
//! Once with L402 and once with the HTTP Payment scheme (draft-00, lightning `charge`), which the same 402
//! offers. What it gets equals the same requests paid by our own client's concurrent flow, and every
//! request it paid is settled at the miner with its result stored before the claim.

mod common;

use std::sync::Arc;

use boltensor_miner::store::Status;
use boltensor_miner::Price;
use common::{challenge, pay_and_use, AttackNet, Result, CHAT, EMB};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn l402_requests_pays_first_and_gets_embeddings_and_chat() -> Result {
    let have = boltensor_testenv::python_imports("l402_requests");
    assert!(
        have,
        "PyPI l402-requests is missing: `python3 -m pip install l402-requests==0.9.0` (./dev test does this)"
    );
    // Whole-sat prices: the client budgets in sats.
    let price = Price {
        per_request_msat: 2_000,
        per_token_msat: 1_000,
    };
    let n = AttackNet::start(&[EMB, CHAT], price, |_| {}).await?;
    let lnd = boltensor_testenv::lnd_rest::serve(Arc::clone(&n.attacker)).await?;

    let got = boltensor_testenv::python_json(
        boltensor_testenv::scripts::L402_REQUESTS_CHECK,
        vec![n.url.clone(), lnd.url.clone()],
    )
    .await?;
    println!(
        "l402-requests: embed {}, chat {} {:?}, second embed {}; payments {}",
        got["embed_status"],
        got["chat_status"],
        got["chat_text"],
        got["second_embed_status"],
        got["payments"]
    );
    assert_eq!(got["embed_status"], 200, "{got}");
    assert_eq!(got["chat_status"], 200, "{got}");
    assert_eq!(got["second_embed_status"], 200, "{got}");
    // The Payment scheme: the same answers, and a receipt naming the payment.
    assert_eq!(got["payment_embed_status"], 200, "{got}");
    assert_eq!(got["payment_chat_status"], 200, "{got}");
    assert_eq!(got["payment_embedding"], got["embedding"]);
    assert_eq!(got["payment_chat_text"], got["chat_text"]);
    assert_eq!(got["payment_receipt"]["status"], "success", "{got}");
    assert_eq!(got["payment_receipt"]["method"], "lightning", "{got}");
    let payments = got["payments"].as_array().ok_or("payments")?;
    assert_eq!(payments.len(), 5, "one payment per request: {got}");
    let receipted = payments[3]["preimage"].as_str().ok_or("preimage")?;
    let receipted: [u8; 32] = hex::decode(receipted)?
        .try_into()
        .map_err(|_| "preimage length")?;
    assert_eq!(
        got["payment_receipt"]["reference"],
        hex::encode(boltensor_protocol::l402::payment_hash_of(&receipted))
    );

    // Each payment: settled at the miner, served because its payment came first, result stored.
    for p in payments {
        assert_eq!(p["ok"], true, "{p}");
        let preimage: [u8; 32] = hex::decode(p["preimage"].as_str().ok_or("preimage")?)?
            .try_into()
            .map_err(|_| "preimage length")?;
        let hash = boltensor_protocol::l402::payment_hash_of(&preimage);
        let rec = n.miner.store().get(&hash)?.ok_or("the miner's record")?;
        assert_eq!(rec.status, Status::Settled, "{rec:?}");
        assert!(rec.paid_first && rec.result.is_some(), "{rec:?}");
    }

    // The same requests paid by our own client's flow (token, payment alongside): the same answers.
    let emb = json!({"model": EMB, "input": "paid first by an L402 agent"});
    let c = challenge(&n.url, "/v1/embeddings", &emb, None).await?;
    let (ours, _) = pay_and_use(&n.attacker, &n.url, "/v1/embeddings", &emb, &c).await?;
    assert_eq!(ours.status, 200, "{}", ours.text);
    assert_eq!(got["embedding"], ours.body["data"][0]["embedding"]);
    let chat = json!({"model": CHAT, "messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 8, "temperature": 0});
    let c = challenge(&n.url, "/v1/chat/completions", &chat, None).await?;
    let (ours, _) = pay_and_use(&n.attacker, &n.url, "/v1/chat/completions", &chat, &c).await?;
    assert_eq!(ours.status, 200, "{}", ours.text);
    assert_eq!(
        got["chat_text"],
        ours.body["choices"][0]["message"]["content"]
    );
    drop(lnd);
    n.stop().await;
    Ok(())
}
