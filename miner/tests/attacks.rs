//! Attacks on a miner, performed the way an attacker would, against a real miner on the real daemons
//! (regtest bitcoind, the miner's and the attacker's ldk-node nodes, a channel between them, the real
//! models, HTTP): rows 7, 8 and 11 of docs/security.md. Each prints what the attack achieves.

mod common;

use std::time::{Duration, Instant};

use boltensor_miner::Price;
use boltensor_testenv::wait_for;
use common::{challenge, pay_and_use, post, AttackNet, Result, CHAT, EMB};
use serde_json::json;

const CHAT_PATH: &str = "/v1/chat/completions";
const EMB_PATH: &str = "/v1/embeddings";

/// Row 7: one credit note, redeemed in two challenges; the first is paid and used, the second is sent
/// unpaid so the miner fails it back. Before the defence, that fail-back returned the note to unspent
/// and it paid for chat after chat. Now the note is refused once spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_credit_note_pays_for_one_request_only() -> Result {
    let price = Price {
        per_request_msat: 1_000,
        per_token_msat: 1_000,
    };
    let n = AttackNet::start(&[CHAT], price, |cfg| {
        cfg.payment_wait = Duration::from_secs(2);
    })
    .await?;
    let url = n.url.clone();
    // A reservation of 96 tokens for an answer of a few: most of it comes back as a credit note.
    let body = json!({"model": CHAT, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 96});

    // An honest first chat gives the attacker a note.
    let c0 = challenge(&url, CHAT_PATH, &body, None).await?;
    let (a0, _) = pay_and_use(&n.attacker, &url, CHAT_PATH, &body, &c0).await?;
    assert_eq!(a0.status, 200, "{}", a0.text);
    let note = a0
        .header(boltensor_protocol::l402::NEW_CREDIT_HEADER)
        .ok_or("no credit note")?;
    let note_msat: u64 = a0
        .header(boltensor_protocol::l402::NEW_CREDIT_MSAT_HEADER)
        .ok_or("no credit value")?
        .parse()?;
    println!(
        "honest chat: {} msat; credit note back: {note_msat} msat",
        c0.price_msat
    );

    // The attack: two challenges naming the same note.
    let a = challenge(&url, CHAT_PATH, &body, Some(&note)).await?;
    let b = challenge(&url, CHAT_PATH, &body, Some(&note)).await?;
    assert!(a.credit_applied_msat > 0 && b.credit_applied_msat > 0);
    let (ra, _) = pay_and_use(&n.attacker, &url, CHAT_PATH, &body, &a).await?;
    assert_eq!(ra.status, 200, "{}", ra.text);
    // The second, unpaid: the note is spent, the miner fails it back.
    let rb = post(
        &url,
        CHAT_PATH,
        &body,
        Some(&format!("L402 {}", b.token)),
        None,
    )
    .await?;
    assert_eq!(rb.status, 409, "{}", rb.text);

    // Now try the note again, as often as it lets us.
    let mut reuse_prices = Vec::new();
    for round in 0..3 {
        let c = challenge(&url, CHAT_PATH, &body, Some(&note)).await?;
        reuse_prices.push((c.price_msat, c.credit_applied_msat));
        if c.credit_applied_msat == 0 {
            break;
        }
        // Reusable: spend it once more and free it again with a second, unpaid challenge.
        let again = challenge(&url, CHAT_PATH, &body, Some(&note)).await?;
        let (r, _) = pay_and_use(&n.attacker, &url, CHAT_PATH, &body, &c).await?;
        assert_eq!(r.status, 200, "round {round}: {}", r.text);
        let _ = post(
            &url,
            CHAT_PATH,
            &body,
            Some(&format!("L402 {}", again.token)),
            None,
        )
        .await?;
    }
    println!(
        "attacker per chat: full price {} msat; first (legitimate) redemption {} msat; each attempt to reuse the spent note: {:?} (price msat, credit applied msat)",
        a.gross_msat, a.price_msat, reuse_prices
    );
    let (reuse_price, reuse_credit) = reuse_prices[0];
    assert_eq!(
        reuse_credit, 0,
        "a spent credit note was applied again: chat at {reuse_price} msat instead of {}",
        a.gross_msat
    );
    assert_eq!(reuse_price, a.gross_msat);
    // And the miner's own record: the note is spent by the request that paid with it.
    let id = boltensor_protocol::l402::CreditNote::decode_unverified(&note)?.id;
    let rec = n.miner.store().credit(&id)?.ok_or("note record")?;
    assert_eq!(rec.spent_by, Some(a.payment_hash));
    n.stop().await;
    Ok(())
}

/// Row 8: challenges that are never paid, their tokens sent again and again. Before the defence, each
/// retry started a full generation that was never cancelled (the token went back to `AwaitingPayment`):
/// dozens of unpaid generations per challenge, queued ahead of paid work. Now the model starts at most
/// once per challenge before payment, stops within a token of the payment deadline, and at most
/// `max_unpaid_runs` unpaid runs compute at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unpaid_challenges_get_one_cancelled_run_each() -> Result {
    let price = Price {
        per_request_msat: 1_000,
        per_token_msat: 100,
    };
    let wait = Duration::from_millis(1500);
    let n = AttackNet::start(&[CHAT], price, |cfg| {
        cfg.payment_wait = wait;
        cfg.max_unpaid_runs = 2;
    })
    .await?;
    let url = n.url.clone();
    let body = |i: usize| json!({"model": CHAT, "messages": [{"role": "user", "content": format!("Count from {i} to 500, one number per line.")}], "max_tokens": 400});
    let idle = |n: &AttackNet| {
        let m = n.miner.clone();
        async move {
            wait_for("unpaid runs to end", Duration::from_secs(120), || {
                let s = m.compute_stats();
                async move { Ok((s.in_flight == 0).then_some(())) }
            })
            .await
        }
    };

    // One challenge, its token retried without paying.
    let retries = 5;
    let c = challenge(&url, CHAT_PATH, &body(1), None).await?;
    let started = Instant::now();
    for _ in 0..retries {
        let r = post(
            &url,
            CHAT_PATH,
            &body(1),
            Some(&format!("L402 {}", c.token)),
            None,
        )
        .await?;
        assert_eq!(r.status, 402, "{}", r.text);
    }
    idle(&n).await?;
    let s = n.miner.compute_stats();
    println!(
        "one unpaid challenge, token sent {retries} times over {:.1}s: {} model run(s), {:.2} unpaid model-seconds, {} tokens, {} cancelled (payment wait {:?})",
        started.elapsed().as_secs_f64(),
        s.early_runs,
        s.unpaid_seconds,
        s.unpaid_tokens,
        s.cancelled,
        wait
    );
    assert_eq!(
        s.early_runs, 1,
        "the model ran more than once for one unpaid challenge"
    );
    assert_eq!(s.cancelled, 1, "the unpaid run was not cancelled");
    // Cancelled at the deadline, checked between tokens: a few tokens at most, not the 400 asked for
    // (the model time also holds the prompt's forward pass, long on a loaded debug build).
    assert!(
        s.unpaid_tokens < 400,
        "the unpaid run generated {} tokens",
        s.unpaid_tokens
    );

    // Many challenges at once: at most `max_unpaid_runs` unpaid runs compute together.
    let many = 6;
    let mut cs = Vec::new();
    for i in 0..many {
        cs.push(challenge(&url, CHAT_PATH, &body(10 + i), None).await?);
    }
    let before = n.miner.compute_stats();
    let sends = cs.iter().enumerate().map(|(i, c)| {
        let url = url.clone();
        let b = body(10 + i);
        let auth = format!("L402 {}", c.token);
        async move { post(&url, CHAT_PATH, &b, Some(&auth), None).await }
    });
    for r in futures_util::future::join_all(sends).await {
        assert_eq!(r?.status, 402);
    }
    idle(&n).await?;
    let after = n.miner.compute_stats();
    let runs = after.early_runs - before.early_runs;
    let secs = after.unpaid_seconds - before.unpaid_seconds;
    println!(
        "{many} unpaid challenges at once: {runs} early run(s), at most {} computing at once, {:.2} unpaid model-seconds in all ({:.2} per challenge)",
        after.max_in_flight,
        secs,
        secs / many as f64
    );
    assert!(
        after.max_in_flight <= 2,
        "more unpaid runs at once than the cap"
    );
    assert!(runs <= many as u64);

    // Paid work does not wait behind unpaid work: two unpaid runs hold and queue for the model while a
    // paid request comes in.
    let mut unpaid = Vec::new();
    for i in 0..2 {
        let b = body(100 + i);
        let c = challenge(&url, CHAT_PATH, &b, None).await?;
        let url = url.clone();
        unpaid.push(tokio::spawn(async move {
            post(
                &url,
                CHAT_PATH,
                &b,
                Some(&format!("L402 {}", c.token)),
                None,
            )
            .await
        }));
    }
    let paid_body = json!({"model": CHAT, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8});
    let pc = challenge(&url, CHAT_PATH, &paid_body, None).await?;
    let t = Instant::now();
    let (pr, _) = pay_and_use(&n.attacker, &url, CHAT_PATH, &paid_body, &pc).await?;
    assert_eq!(pr.status, 200, "{}", pr.text);
    let paid_latency = t.elapsed();
    for u in unpaid {
        assert_eq!(u.await??.status, 402);
    }
    idle(&n).await?;
    println!(
        "a paid request while unpaid runs held the model: answered in {:.2}s",
        paid_latency.as_secs_f64()
    );
    n.stop().await;
    Ok(())
}

/// Row 11: unauthenticated challenges, each a store record and an invoice. Before the defence they were
/// never pruned, and the sweep (twice a second) and the public `/metrics` read every record ever made.
/// Now an expired unpaid challenge leaves nothing behind, and neither the sweep nor `/metrics` reads the
/// history.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_unpaid_challenges_are_pruned_and_metrics_do_not_scan_history() -> Result {
    let price = Price {
        per_request_msat: 1_000,
        per_token_msat: 10,
    };
    let n = AttackNet::start(&[EMB], price, |cfg| {
        cfg.invoice_expiry_secs = 15;
    })
    .await?;
    let url = n.url.clone();
    let payments_before = n.miner_node.payment_count();
    let count = 200;
    for i in 0..count {
        let body = json!({"model": EMB, "input": format!("unpaid challenge {i}")});
        challenge(&url, EMB_PATH, &body, None).await?;
    }
    let store = n.miner.store();
    println!(
        "{count} unpaid challenges: {} store records, {} node payments",
        store.len()?,
        n.miner_node.payment_count() - payments_before
    );
    assert_eq!(store.len()?, count);
    let t = Instant::now();
    wait_for(
        "expired challenges to be pruned",
        Duration::from_secs(60),
        || async { Ok((store.len().unwrap_or(u64::MAX) == 0).then_some(())) },
    )
    .await?;
    let left = n.miner_node.payment_count() - payments_before;
    println!(
        "after expiry (+{:.1}s): {} store records, {left} node payments",
        t.elapsed().as_secs_f64(),
        store.len()?
    );
    assert_eq!(left, 0, "the node still keeps the expired invoices");
    assert!(store.counts()?.is_empty(), "{:?}", store.counts()?);

    // A long history of finished requests (kept for the audit) must not make `/metrics` or the sweep
    // cost more: they read counters and the index of open requests.
    let http = reqwest::Client::new();
    let metrics = || async {
        let t = Instant::now();
        let reads = store.records_read();
        let text = http
            .get(format!("{url}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        Ok::<_, common::Error>((t.elapsed(), store.records_read() - reads, text))
    };
    let (t_empty, reads_empty, _) = metrics().await?;
    let history = 2_000u64;
    for i in 0..history {
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&i.to_be_bytes());
        store.insert(&boltensor_miner::store::RequestRecord {
            payment_hash: hash,
            preimage: [0; 32],
            price_msat: 1_000,
            gross_price_msat: 1_000,
            expires_at: 0,
            model: EMB.into(),
            status: boltensor_miner::store::Status::Settled,
            result: Some(b"{}".to_vec()),
            result_content_type: None,
            credit_id: None,
            new_credit: None,
            error: None,
            created_at: 0,
            early_run: false,
            paid_first: false,
            handed_to_token: false,
        })?;
    }
    let (t_full, reads_full, text) = metrics().await?;
    assert!(text.contains(&format!(
        "boltensor_miner_requests{{state=\"Settled\"}} {history}"
    )));
    // Three sweeps (one every 500 ms): how many records they read.
    let reads = store.records_read();
    let sweeps = n.miner.sweeps();
    wait_for("three sweeps", Duration::from_secs(10), || async {
        Ok((n.miner.sweeps() >= sweeps + 3).then_some(()))
    })
    .await?;
    let sweep_reads = store.records_read() - reads;
    println!(
        "/metrics with no history: {:?}, {reads_empty} records read; with {history} settled records: {:?}, {reads_full} records read; three sweeps read {sweep_reads} records",
        t_empty, t_full
    );
    assert_eq!(reads_full, 0, "/metrics read the history");
    assert_eq!(sweep_reads, 0, "the sweep read the history");
    n.stop().await;
    Ok(())
}

/// Admission control (issue 21): with the chat model's queue full (`max_queue` = 1, one paid chat
/// running), a new request is turned away with 429 and `Retry-After` before any invoice or record
/// exists — nothing to pay, nothing to wait out in a queue — and admitted again once the queue drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_turns_requests_away_before_any_invoice() -> Result {
    let price = Price {
        per_request_msat: 1_000,
        per_token_msat: 10,
    };
    let n = AttackNet::start(&[CHAT], price, |cfg| {
        cfg.max_queue = 1;
        cfg.payment_wait = Duration::from_secs(5);
    })
    .await?;
    let url = n.url.clone();
    let body = |i: usize| json!({"model": CHAT, "messages": [{"role": "user", "content": format!("Count from {i} to 300, one number per line.")}], "max_tokens": 120});
    let queued = |n: &AttackNet| n.miner.admission().get(CHAT).map_or(0, |a| a.0);
    let records =
        |n: &AttackNet| -> u64 { n.miner.store().counts().unwrap_or_default().values().sum() };

    // A token sent without paying waits for its payment but takes no place in the queue: otherwise
    // anyone could keep a model "busy" for free.
    let c0 = challenge(&url, CHAT_PATH, &body(0), None).await?;
    let unpaid = {
        let (url, b, token) = (url.clone(), body(0), c0.token.clone());
        tokio::spawn(async move {
            post(&url, CHAT_PATH, &b, Some(&format!("L402 {token}")), None).await
        })
    };
    wait_for(
        "the unpaid token to be in use",
        Duration::from_secs(10),
        || {
            let serving = n
                .miner
                .store()
                .get(&c0.payment_hash)
                .ok()
                .flatten()
                .is_some_and(|r| r.status == boltensor_miner::store::Status::Serving);
            async move { Ok(serving.then_some(())) }
        },
    )
    .await?;
    let queued_unpaid = queued(&n);
    let beside_unpaid = post(&url, CHAT_PATH, &body(9), None, None).await?;
    assert_eq!(unpaid.await??.status, 402, "the unpaid token is not served");

    // One paid chat in the queue.
    let c1 = challenge(&url, CHAT_PATH, &body(1), None).await?;
    let first = {
        let (payer, url, b) = (n.attacker.clone(), url.clone(), body(1));
        tokio::spawn(async move { pay_and_use(&payer, &url, CHAT_PATH, &b, &c1).await })
    };
    wait_for(
        "the paid chat to be admitted",
        Duration::from_secs(30),
        || {
            let q = queued(&n);
            async move { Ok((q == 1).then_some(())) }
        },
    )
    .await?;
    let before = records(&n);
    let busy = post(&url, CHAT_PATH, &body(2), None, None).await?;
    let after = records(&n);
    let (answer, _) = first.await??;
    assert_eq!(answer.status, 200, "{}", answer.text);
    wait_for("the queue to drain", Duration::from_secs(30), || {
        let q = queued(&n);
        async move { Ok((q == 0).then_some(())) }
    })
    .await?;
    let again = post(&url, CHAT_PATH, &body(3), None, None).await?;
    let refused = n.miner.admission().get(CHAT).map_or(0, |a| a.1);
    println!(
        "admission: an unpaid token waiting → queue {queued_unpaid}, a new request → {}; queue full (1 of 1) → {} \
         Retry-After {:?}, invoice in the answer: {}, records {before} → {after}; queue drained → {}; turned away \
         so far: {refused}",
        beside_unpaid.status,
        busy.status,
        busy.header("retry-after"),
        busy.body.get("invoice").is_some(),
        again.status,
    );
    assert_eq!(
        queued_unpaid, 0,
        "an unpaid token took a place in the queue"
    );
    assert_eq!(beside_unpaid.status, 402, "{}", beside_unpaid.text);
    assert_eq!(busy.status, 429, "{}", busy.text);
    assert_eq!(busy.header("retry-after").as_deref(), Some("1"));
    assert!(busy.body.get("invoice").is_none() && busy.header("www-authenticate").is_none());
    assert_eq!(after, before, "a turned-away request left a record");
    assert_eq!(again.status, 402, "{}", again.text);
    assert_eq!(refused, 1);
    n.stop().await;
    Ok(())
}
