//! Paid inference end to end on the real thing: regtest bitcoind, ldk-node nodes (client → coordinator →
//! miner), the real MiniLM and SmolLM2 models, hold invoices settled only on delivery.

mod common;

use std::time::Duration;

use boltensor_client::{ClientError, PaymentOutcome};
use boltensor_protocol::l402;
use boltensor_testenv::TestEnvError;
use common::{broken_model_server, external_chat, working_model_server, PaidNet};
use serde_json::{json, Value};

fn embed_body(text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"model": "all-minilm-l6-v2", "input": text})).expect("json")
}

fn chat_body(model: &str, prompt: &str, max_tokens: u32) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
    }))
    .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paid_embedding_and_chat_settle_on_delivery() -> Result<(), TestEnvError> {
    PaidNet::start(vec![], |_| {})
        .await?
        .run(async |pn| {
            let client = pn.client(|_| {});
            let (c0, m0) = pn.balances();

            let mut paid = client
                .post("/v1/embeddings", embed_body("Bitcoin is money."))
                .await
                .expect("embedding request");
            assert_eq!(paid.response.status(), 200);
            let price_header: u64 = paid.response.headers()[l402::PRICE_HEADER]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("number");
            assert_eq!(price_header, paid.price_msat);
            let outcome = paid.outcome().await;
            let body: Value = paid.response.json().await.expect("json");
            assert_eq!(
                body["data"][0]["embedding"].as_array().map(Vec::len),
                Some(384)
            );
            let tokens = body["usage"]["prompt_tokens"].as_u64().expect("usage");
            assert_eq!(
                paid.price_msat,
                10_000 + 1_000 * tokens,
                "per request + per token"
            );
            let Some(PaymentOutcome::Settled {
                fee_msat: fee1,
                preimage,
            }) = outcome
            else {
                panic!("the embedding payment settled: {outcome:?}");
            };
            assert_eq!(preimage.len(), 64);
            let embed_price = paid.price_msat;

            let mut paid = client
                .post(
                    "/v1/chat/completions",
                    chat_body("smollm2-135m-instruct", "What is the capital of France?", 8),
                )
                .await
                .expect("chat request");
            assert_eq!(paid.response.status(), 200);
            let credit: u64 = paid.response.headers()[l402::NEW_CREDIT_MSAT_HEADER]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("number");
            let outcome = paid.outcome().await;
            let body: Value = paid.response.json().await.expect("json");
            let text = body["choices"][0]["message"]["content"]
                .as_str()
                .expect("text");
            assert!(text.contains("Paris"), "{text}");
            let used = body["usage"]["completion_tokens"].as_u64().expect("usage");
            assert_eq!(
                credit,
                (8 - used) * 1_000,
                "the unused reservation comes back as credit"
            );
            let Some(PaymentOutcome::Settled { fee_msat: fee2, .. }) = outcome else {
                panic!("the chat payment settled: {outcome:?}");
            };
            let chat_price = paid.price_msat;

            // Balances: the client paid price + routing fee, the miner got exactly the price.
            let total = embed_price + chat_price;
            pn.wait_balances((c0 - (total + fee1 + fee2) / 1000, m0 + total / 1000))
                .await?;
            let spend = client.spend();
            assert_eq!(spend.paid_requests, 2);
            assert_eq!(spend.spent_msat, total);
            assert_eq!(spend.fees_msat, fee1 + fee2);
            assert_eq!(spend.credit_msat, credit);
            let metrics = reqwest::get(format!("{}/metrics", pn.miner_url))
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text");
            assert!(
                metrics.contains("boltensor_miner_requests{state=\"Settled\"} 2"),
                "{metrics}"
            );

            // The credit note lowers the next price at that miner.
            let mut paid = client
                .post(
                    "/v1/chat/completions",
                    chat_body("smollm2-135m-instruct", "What is the capital of France?", 8),
                )
                .await
                .expect("second chat");
            assert_eq!(paid.response.status(), 200);
            assert_eq!(paid.price_msat, chat_price - credit, "credit redeemed");
            assert!(matches!(
                paid.outcome().await,
                Some(PaymentOutcome::Settled { .. })
            ));
            Ok(())
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_model_fails_the_payment_back() -> Result<(), TestEnvError> {
    let broken = broken_model_server(Some(Duration::from_millis(200))).await;
    PaidNet::start(vec![external_chat("broken-chat", &broken)], |_| {})
        .await?
        .run(async |pn| {
            let client = pn.client(|_| {});
            let before = pn.balances();

            let mut paid = client
                .post("/v1/chat/completions", chat_body("broken-chat", "hello", 8))
                .await
                .expect("request");
            assert_eq!(paid.response.status(), 500);
            assert!(paid.price_msat > 0, "it was paid for");
            let outcome = paid.outcome().await;
            assert!(
                matches!(outcome, Some(PaymentOutcome::Refunded { .. })),
                "{outcome:?}"
            );
            let body: Value = paid.response.json().await.expect("json");
            let msg = body["error"]["message"].as_str().unwrap_or_default();
            assert!(msg.contains("failed back"), "{msg}");
            pn.wait_balances(before).await?;
            assert_eq!(client.spend().refunded, 1);
            Ok(())
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_model_slower_than_the_hold_timeout_fails_the_payment_back() -> Result<(), TestEnvError> {
    let hanging = broken_model_server(None).await;
    PaidNet::start(vec![external_chat("hanging-chat", &hanging)], |cfg| {
        cfg.hold_timeout = Duration::from_secs(2);
    })
    .await?
    .run(async |pn| {
        let client = pn.client(|_| {});
        let before = pn.balances();
        let mut paid = client
            .post(
                "/v1/chat/completions",
                chat_body("hanging-chat", "hello", 8),
            )
            .await
            .expect("request");
        assert_eq!(paid.response.status(), 504);
        assert!(matches!(
            paid.outcome().await,
            Some(PaymentOutcome::Refunded { .. })
        ));
        pn.wait_balances(before).await?;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_clear_errors_and_move_no_funds() -> Result<(), TestEnvError> {
    PaidNet::start(vec![], |cfg| {
        cfg.payment_wait = Duration::from_secs(1);
        cfg.max_body_bytes = 64 * 1024;
    })
    .await?
    .run(async |pn| {
        // (every request below goes by hand or through clients with special limits)
        let before = pn.balances();
        let http = reqwest::Client::new();
        let url = |p: &str| format!("{}{p}", pn.miner_url);
        let post = |path: &str, body: Vec<u8>| http.post(url(path)).body(body).send();

        // Malformed JSON: 400.
        let r = post("/v1/embeddings", b"{not json".to_vec())
            .await
            .expect("http");
        assert_eq!(r.status(), 400);
        let e: Value = r.json().await.expect("json");
        assert_eq!(e["error"]["type"], "invalid_request_error");
        // Unknown model: 404.
        let r = post("/v1/chat/completions", chat_body("gpt-9", "hi", 4))
            .await
            .expect("http");
        assert_eq!(r.status(), 404);
        // Oversized input: 413 (too many tokens), and a body over the limit: 413.
        let long = "bitcoin ".repeat(400);
        let r = post("/v1/embeddings", embed_body(&long))
            .await
            .expect("http");
        assert_eq!(r.status(), 413);
        let huge = embed_body(&"x".repeat(100_000));
        let r = post("/v1/embeddings", huge).await.expect("http");
        assert_eq!(r.status(), 413);
        // max_tokens above the miner's limit: 400.
        let r = post(
            "/v1/chat/completions",
            chat_body("smollm2-135m-instruct", "hi", 100_000),
        )
        .await
        .expect("http");
        assert_eq!(r.status(), 400);

        // An OpenAI SDK's bearer key is no payment: a 402 challenge, not an error.
        let r = http
            .post(url("/v1/embeddings"))
            .header("authorization", "Bearer sk-anything")
            .body(embed_body("hello"))
            .send()
            .await
            .expect("http");
        assert_eq!(r.status(), 402);

        // A challenge, then a tampered token: 401.
        let body = embed_body("hello");
        let r = post("/v1/embeddings", body.clone()).await.expect("http");
        assert_eq!(r.status(), 402);
        let challenge =
            l402::Challenge::parse(r.headers()["www-authenticate"].to_str().expect("ascii"))
                .expect("L402 challenge");
        let mut tampered = challenge.token.clone().into_bytes();
        let i = tampered.len() / 2;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        let with_auth = |token: &str, body: Vec<u8>| {
            http.post(url("/v1/embeddings"))
                .header("authorization", format!("L402 {token}"))
                .body(body)
                .send()
        };
        let r = with_auth(&tampered, body.clone()).await.expect("http");
        assert_eq!(r.status(), 401);
        // The right token on a different request: 400.
        let r = with_auth(&challenge.token, embed_body("other"))
            .await
            .expect("http");
        assert_eq!(r.status(), 400);
        // The right token, but nothing paid: 402, and the token stays usable.
        let r = with_auth(&challenge.token, body.clone())
            .await
            .expect("http");
        assert_eq!(r.status(), 402);

        // Price above the client's maximum: refused before paying.
        let stingy = pn.client(|c| c.max_price_msat = 1_000);
        match stingy.post("/v1/embeddings", embed_body("hello")).await {
            Err(ClientError::PriceTooHigh { .. }) => {}
            other => panic!("expected PriceTooHigh, got {other:?}"),
        }
        // Budget: refused before paying.
        let broke = pn.client(|c| c.budget_msat = 5_000);
        match broke.post("/v1/embeddings", embed_body("hello")).await {
            Err(ClientError::BudgetExceeded { .. }) => {}
            other => panic!("expected BudgetExceeded, got {other:?}"),
        }
        // No funds moved.
        assert_eq!(pn.balances(), before);

        // Paid by hand: challenge, pay, serve; then the token replayed: 409; with its preimage, the stored
        // result again.
        let body = embed_body("replay me");
        let r = post("/v1/embeddings", body.clone()).await.expect("http");
        let challenge =
            l402::Challenge::parse(r.headers()["www-authenticate"].to_str().expect("ascii"))
                .expect("L402 challenge");
        let invoice = boltensor_ln::parse_invoice(&challenge.invoice).expect("invoice");
        let pending = pn.client_node.send(&invoice).expect("send");
        let r = with_auth(&challenge.token, body.clone())
            .await
            .expect("http");
        assert_eq!(r.status(), 200);
        let first: Value = r.json().await.expect("json");
        let sent = pending
            .outcome(Duration::from_secs(30))
            .await
            .expect("settled");
        let preimage = hex::encode(sent.preimage.expect("preimage").0);
        let r = with_auth(&challenge.token, body.clone())
            .await
            .expect("http");
        assert_eq!(r.status(), 409, "a token is good for one request");
        let r = with_auth(&format!("{}:{preimage}", challenge.token), body.clone())
            .await
            .expect("http");
        assert_eq!(r.status(), 200);
        let again: Value = r.json().await.expect("json");
        assert_eq!(again, first, "the settled result is kept for re-fetch");
        let r = with_auth(&format!("{}:{}", challenge.token, "00".repeat(32)), body)
            .await
            .expect("http");
        assert_eq!(r.status(), 401, "a wrong preimage gets nothing");
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_invoices_and_mismatched_amounts_move_no_funds() -> Result<(), TestEnvError> {
    PaidNet::start(vec![], |cfg| cfg.invoice_expiry_secs = 2)
        .await?
        .run(async |pn| {
            let before = pn.balances();
            let http = reqwest::Client::new();
            let url = format!("{}/v1/embeddings", pn.miner_url);
            let body = embed_body("late payer");

            // An invoice that expired before it was paid: the payment does not go through, and the
            // token is refused.
            let r = http
                .post(&url)
                .body(body.clone())
                .send()
                .await
                .expect("http");
            assert_eq!(r.status(), 402);
            let challenge =
                l402::Challenge::parse(r.headers()["www-authenticate"].to_str().expect("ascii"))
                    .expect("challenge");
            let invoice = boltensor_ln::parse_invoice(&challenge.invoice).expect("invoice");
            boltensor_testenv::wait_for(
                "the invoice to expire",
                Duration::from_secs(10),
                || async { Ok(invoice.is_expired().then_some(())) },
            )
            .await?;
            match pn.client_node.send(&invoice) {
                Err(_) => {}
                Ok(pending) => {
                    let outcome = pending.outcome(Duration::from_secs(30)).await;
                    assert!(
                        outcome.is_err(),
                        "an expired invoice must not settle: {outcome:?}"
                    );
                }
            }
            let r = http
                .post(&url)
                .header("authorization", format!("L402 {}", challenge.token))
                .body(body)
                .send()
                .await
                .expect("http");
            assert_eq!(r.status(), 401, "expired token");
            pn.wait_balances(before).await?;

            // A "miner" whose token claims one price and whose invoice asks another: the client
            // refuses before paying.
            let invoice = pn
                .miner_node
                .invoice(50_000, "mismatch", 600)
                .expect("invoice");
            let token = l402::PaymentClaims {
                payment_hash: boltensor_ln::bitcoin::hashes::Hash::to_byte_array(
                    *invoice.payment_hash(),
                ),
                price_msat: 5_000,
                expires_at: u64::MAX,
                miner: pn.miner_node.node_id().serialize(),
                request_digest: [0; 32],
                credit_id: [0; 16],
                credit_msat: 0,
            }
            .sign(&[1; 32]);
            let header = l402::Challenge {
                token,
                invoice: invoice.to_string(),
            }
            .header_value();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let fake = format!("http://{}", listener.local_addr().expect("addr"));
            let app = axum::Router::new().route(
                "/v1/embeddings",
                axum::routing::post(move || {
                    let header = header.clone();
                    async move {
                        (
                            axum::http::StatusCode::PAYMENT_REQUIRED,
                            [("www-authenticate", header)],
                            "pay me",
                        )
                    }
                }),
            );
            let server = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            let client = boltensor_client::PayingClient::new(
                boltensor_client::ClientConfig::new(vec![fake]),
                std::sync::Arc::clone(&pn.client_node),
            );
            match client.post("/v1/embeddings", embed_body("x")).await {
                Err(ClientError::BadChallenge { reason, .. }) => {
                    assert!(reason.contains("disagree"), "{reason}")
                }
                other => panic!("expected BadChallenge, got {other:?}"),
            }
            server.abort();
            assert_eq!(pn.balances(), before, "no funds moved");
            Ok(())
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_external_openai_server_backend_serves_paid_requests() -> Result<(), TestEnvError> {
    let server = working_model_server().await;
    PaidNet::start(vec![external_chat("big-model", &server)], |_| {})
        .await?
        .run(async |pn| {
            let client = pn.client(|_| {});
            let mut paid = client
                .post("/v1/chat/completions", chat_body("big-model", "hello", 8))
                .await
                .expect("request");
            assert_eq!(paid.response.status(), 200);
            assert!(matches!(
                paid.outcome().await,
                Some(PaymentOutcome::Settled { .. })
            ));
            let body: Value = paid.response.json().await.expect("json");
            assert_eq!(
                body["choices"][0]["message"]["content"],
                "Hello from the big model."
            );
            assert_eq!(
                body["model"], "big-model",
                "the miner's id, not the server's"
            );
            assert_eq!(body["usage"]["completion_tokens"], 6);
            Ok(())
        })
        .await
}

/// A coordinator stand-in serving `GET /v1/miners`: for `model`, these `(api, node id, score)` miners; for
/// any other model, none.
async fn miners_stand_in(model: &'static str, miners: Vec<(String, String, f64)>) -> String {
    use axum::extract::Query;
    use std::collections::HashMap;
    let listed: Vec<Value> = miners
        .iter()
        .enumerate()
        .map(|(uid, (api, node_id, score))| {
            json!({"uid": uid, "node_id": node_id, "api": api, "models": [model],
                   "incentive": (score * 65535.0) as u64, "consensus": 0, "score": score})
        })
        .collect();
    let app = axum::Router::new().route(
        "/v1/miners",
        axum::routing::get(move |Query(q): Query<HashMap<String, String>>| {
            let listed = listed.clone();
            async move {
                let miners = if q.get("model").map(String::as_str) == Some(model) {
                    listed
                } else {
                    vec![]
                };
                axum::Json(json!({"epoch": 1, "miners": miners}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_go_where_the_directory_points_and_skip_a_dead_miner() -> Result<(), TestEnvError>
{
    PaidNet::start(vec![], |_| {})
        .await?
        .run(async |pn| {
            let dead = "http://127.0.0.1:1".to_owned();
            // The dead miner has all the score (and no floor): it is always drawn first while healthy.
            let coordinator = miners_stand_in(
                "all-minilm-l6-v2",
                vec![
                    (dead.clone(), "02".repeat(33), 1.0),
                    (
                        pn.miner_url.clone(),
                        pn.miner_node.node_id().to_string(),
                        0.0,
                    ),
                ],
            )
            .await;
            let client = pn.client(|c| {
                c.miners = vec![]; // no static fallback: every route comes from the directory
                c.directory = boltensor_client::DirectoryConfig {
                    coordinators: vec![coordinator],
                    score_floor: 0.0,
                    seed: Some(1),
                    ..Default::default()
                };
            });
            let mut paid = client
                .post("/v1/embeddings", embed_body("routed"))
                .await
                .expect("the live miner serves after the dead one fails");
            assert_eq!(paid.miner, pn.miner_url);
            assert!(matches!(
                paid.outcome().await,
                Some(PaymentOutcome::Settled { .. })
            ));
            let dir = client.directory().expect("a directory");
            assert!(dir.is_backed_off(&dead));
            let paid = client
                .post("/v1/embeddings", embed_body("routed again"))
                .await
                .expect("second request");
            assert_eq!(paid.miner, pn.miner_url);
            let spend = client.spend();
            assert_eq!(spend.requests_by_miner.get(&dead), Some(&1), "{spend:?}");
            assert_eq!(spend.requests_by_miner.get(&pn.miner_url), Some(&2));
            // The body's model selects the directory query: nobody serves this one.
            let err = client
                .post("/v1/chat/completions", chat_body("no-such-model", "hi", 4))
                .await
                .expect_err("no miner for that model");
            assert!(matches!(err, ClientError::NoMiners), "{err}");
            Ok(())
        })
        .await
}

/// A miner whose queue is full answers 429 before any invoice (issue 21, admission control): the client
/// pays nothing there and asks the next miner; with no other miner it reports `Busy` with the miner's
/// `Retry-After` (the proxy turns it into a 429 an OpenAI SDK retries).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_miner_is_passed_over_without_paying() -> Result<(), TestEnvError> {
    PaidNet::start(vec![], |_| {})
        .await?
        .run(async |pn| {
            let busy = {
                let app = axum::Router::new().fallback(|| async {
                    (
                        axum::http::StatusCode::TOO_MANY_REQUESTS,
                        [(axum::http::header::RETRY_AFTER, "2")],
                        axum::Json(
                            json!({"error": {"message": "queue full", "type": "model_busy"}}),
                        ),
                    )
                });
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let url = format!("http://{}", listener.local_addr().expect("addr"));
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                });
                url
            };
            let client = pn.client(|c| c.miners = vec![busy.clone(), pn.miner_url.clone()]);
            let mut paid = client
                .post("/v1/embeddings", embed_body("busy first"))
                .await
                .expect("the next miner answers");
            let outcome = paid.outcome().await;
            assert!(
                matches!(outcome, Some(PaymentOutcome::Settled { .. })),
                "{outcome:?}"
            );
            let s = client.spend();
            println!(
                "busy miner first: answered by {} ({}), paid {} time(s), requests by miner {:?}",
                paid.miner,
                paid.response.status(),
                s.paid_requests,
                s.requests_by_miner
            );
            assert_eq!(paid.miner, pn.miner_url);
            assert_eq!(paid.response.status(), 200);
            assert_eq!(s.paid_requests, 1);
            assert_eq!(s.requests_by_miner.get(&busy), Some(&1));

            let only_busy = pn.client(|c| c.miners = vec![busy.clone()]);
            match only_busy
                .post("/v1/embeddings", embed_body("busy only"))
                .await
            {
                Err(ClientError::Busy {
                    retry_after_secs, ..
                }) => assert_eq!(retry_after_secs, 2),
                other => panic!("expected Busy, got {:?}", other.map(|p| p.miner)),
            }
            assert_eq!(only_busy.spend().paid_requests, 0);
            Ok(())
        })
        .await
}
