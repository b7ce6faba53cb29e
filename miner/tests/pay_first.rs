//! Pay-first L402, the way every L402 agent pays (bLIP-26): pay the invoice first, then come back with
//! `Authorization: L402 <token>:<preimage>`. The miner keeps the request with its challenge; when the
//! payment is held and no request is being served for it, it runs the kept request, stores the result and
//! only then claims, so the payer's payment completes with the preimage and the stored result is
//! returned. A request that fails is failed back: the payer is not charged. On the real daemons (regtest
//! bitcoind, two ldk-node nodes, a channel), the real models, HTTP; and the discovery manifest.

mod common;

use std::time::Duration;

use boltensor_ln::parse_invoice;
use boltensor_miner::store::Status;
use boltensor_miner::{Misbehaviour, Price};
use boltensor_testenv::wait_for;
use common::{challenge, pay_and_use, post, AttackNet, Result, CHAT, EMB};
use serde_json::{json, Value};

const CHAT_PATH: &str = "/v1/chat/completions";
const EMB_PATH: &str = "/v1/embeddings";

/// What must be equal between two answers to one request: the embedding, or the chat's text.
fn answer_of(path: &str, body: &Value) -> Value {
    if path == EMB_PATH {
        body["data"][0]["embedding"].clone()
    } else {
        body["choices"][0]["message"]["content"].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_pays_first_gets_the_stored_result_and_a_failure_costs_nothing() -> Result {
    let price = Price {
        per_request_msat: 1_000,
        per_token_msat: 10,
    };
    // Every third paid request fails on the miner (`DropEveryThird`): the third one below.
    let n = AttackNet::start(&[EMB, CHAT], price, |cfg| {
        cfg.misbehaviour = Some(Misbehaviour::DropEveryThird);
    })
    .await?;
    let url = n.url.clone();

    // Discovery: the manifest names the node every invoice pays, and one service per model.
    let manifest: Value = reqwest::get(format!("{url}/.well-known/l402.json"))
        .await?
        .json()
        .await?;
    assert_eq!(
        manifest["provider"]["node_pubkey"],
        n.miner_node.node_id().to_string()
    );
    let services: Vec<&str> = manifest["services"]
        .as_array()
        .ok_or("services")?
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(services, [EMB, CHAT], "{manifest}");
    assert_eq!(
        manifest["services"][0]["resources"][0]["pricing"]["base_msat"],
        1_000
    );

    let pay_first = |path: &'static str, body: Value| {
        let n = &n;
        let url = url.clone();
        async move {
            let c = challenge(&url, path, &body, None).await?;
            let invoice = parse_invoice(&c.invoice)?;
            // Pay first, nothing else: the payment completes only once the miner stored the result.
            let sent = n
                .attacker
                .send(&invoice)?
                .outcome(Duration::from_secs(60))
                .await;
            Ok::<_, common::Error>((c, sent))
        }
    };

    // 1st and 2nd paid requests: an embedding paid first, then the same request in the concurrent flow.
    let emb = json!({"model": EMB, "input": "paid before it was served"});
    let (c, sent) = pay_first(EMB_PATH, emb.clone()).await?;
    let preimage = sent?.preimage.ok_or("no preimage")?.0;
    let rec = wait_for(
        "the miner's record settled",
        Duration::from_secs(30),
        || async {
            Ok(n.miner
                .store()
                .get(&c.payment_hash)
                .map_err(|e| boltensor_testenv::TestEnvError::Devnet(e.to_string()))?
                .filter(|r| r.status == Status::Settled))
        },
    )
    .await?;
    assert!(
        rec.result.is_some(),
        "the result was stored before the claim"
    );
    assert!(rec.paid_first, "served because its payment came first");
    let again = post(
        &url,
        EMB_PATH,
        &emb,
        Some(&format!("L402 {}:{}", c.token, hex::encode(preimage))),
        None,
    )
    .await?;
    assert_eq!(again.status, 200, "{}", again.text);
    let c2 = challenge(&url, EMB_PATH, &emb, None).await?;
    let (concurrent, _) = pay_and_use(&n.attacker, &url, EMB_PATH, &emb, &c2).await?;
    assert_eq!(concurrent.status, 200, "{}", concurrent.text);
    assert_eq!(
        answer_of(EMB_PATH, &again.body),
        answer_of(EMB_PATH, &concurrent.body)
    );

    // 3rd: the miner fails this one (a failing model, as far as the payer can tell) — the payment is
    // failed back and the payer's balance is what it was.
    let before = n.attacker.balances().lightning_sats;
    let (c3, sent) = pay_first(EMB_PATH, json!({"model": EMB, "input": "this one fails"})).await?;
    assert!(sent.is_err(), "a failed request's payment fails: {sent:?}");
    let rec = n.miner.store().get(&c3.payment_hash)?.ok_or("record")?;
    assert_eq!(rec.status, Status::FailedBack, "{rec:?}");
    assert!(rec.result.is_none());
    wait_for(
        "the payer's balance back",
        Duration::from_secs(30),
        || async { Ok((n.attacker.balances().lightning_sats == before).then_some(())) },
    )
    .await?;

    // 4th and 5th: a chat paid first, then in the concurrent flow; greedy, so the same text.
    let chat = json!({"model": CHAT, "messages": [{"role": "user", "content": "What is 2 + 2?"}], "max_tokens": 8, "temperature": 0});
    let (c4, sent) = pay_first(CHAT_PATH, chat.clone()).await?;
    let preimage = sent?.preimage.ok_or("no preimage")?.0;
    let paid_first = post(
        &url,
        CHAT_PATH,
        &chat,
        Some(&format!("L402 {}:{}", c4.token, hex::encode(preimage))),
        None,
    )
    .await?;
    assert_eq!(paid_first.status, 200, "{}", paid_first.text);
    let c5 = challenge(&url, CHAT_PATH, &chat, None).await?;
    let (concurrent, _) = pay_and_use(&n.attacker, &url, CHAT_PATH, &chat, &c5).await?;
    assert_eq!(concurrent.status, 200, "{}", concurrent.text);
    assert_eq!(
        answer_of(CHAT_PATH, &paid_first.body),
        answer_of(CHAT_PATH, &concurrent.body)
    );
    println!(
        "pay-first chat: {:?}; the same request paid concurrently: {:?}",
        answer_of(CHAT_PATH, &paid_first.body),
        answer_of(CHAT_PATH, &concurrent.body)
    );
    let metrics = reqwest::get(format!("{url}/metrics")).await?.text().await?;
    // Three paid first; a concurrent request whose payment happened to arrive before its token would
    // be served the same way (and answered with that run's result), so at least three.
    let pay_first_runs: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("boltensor_miner_pay_first_total "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("no pay-first counter")?;
    assert!(pay_first_runs >= 3, "{metrics}");
    // Every kept request went once served or failed.
    assert!(
        metrics.contains("boltensor_miner_pay_first_kept_bytes 0"),
        "{metrics}"
    );
    n.stop().await;
    Ok(())
}
