//! Attacks on the paying client, performed as an attacker would, against the real daemons (regtest
//! bitcoind, ldk-node nodes client → coordinator → miner, the real models) — issue 20:
//!
//! - row 3: a server posing as a miner hands out a 402 whose invoice pays the attacker's node; the
//!   client refuses and pays nothing;
//! - row 9: a web page (cross-site `text/plain` POST, foreign `Origin`, DNS rebinding `Host`, no key)
//!   makes the local proxy pay; all refused, nothing paid;
//! - row 14: the connection drops after the client paid; the client fetches the paid result again from
//!   the same miner instead of paying the next one; a streamed chat's credit note reaches the client (at
//!   the end of the stream) and a re-fetch returns the note with the result.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use boltensor_client::{ClientError, DirectoryConfig, PaymentOutcome};
use boltensor_ln::LnNode;
use boltensor_protocol::l402::{self, Challenge, PaymentClaims};
use boltensor_testenv::{wait_for, TestEnvError};
use common::PaidNet;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn embed_body(text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"model": "all-minilm-l6-v2", "input": text})).expect("json")
}

fn err(e: impl std::fmt::Display) -> TestEnvError {
    TestEnvError::Devnet(e.to_string())
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// A server posing as a miner: its 402 carries an invoice of the attacker's node (settling at once),
/// under a token that names `token_miner`; a paid request gets a fake answer.
#[derive(Clone)]
struct Impostor {
    attacker: Arc<LnNode>,
    token_miner: [u8; 33],
    challenges: Arc<AtomicUsize>,
}

async fn impostor(
    State(s): State<Impostor>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if headers.contains_key("authorization") {
        return axum::Json(json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.0]}]}))
            .into_response();
    }
    s.challenges.fetch_add(1, Ordering::SeqCst);
    let price = 20_000;
    let invoice = s
        .attacker
        .invoice(price, "embedding", 600)
        .expect("invoice");
    use boltensor_ln::bitcoin::hashes::Hash as _;
    let token = PaymentClaims {
        payment_hash: invoice.payment_hash().to_byte_array(),
        price_msat: price,
        expires_at: 4_000_000_000,
        miner: s.token_miner,
        request_digest: l402::request_digest("POST", "/v1/embeddings", &body),
        credit_id: [0; 16],
        credit_msat: 0,
    }
    .sign(&[7; 32]);
    let challenge = Challenge {
        token,
        invoice: invoice.to_string(),
    };
    (
        StatusCode::PAYMENT_REQUIRED,
        [("www-authenticate", challenge.header_value())],
        "pay",
    )
        .into_response()
}

/// A coordinator stand-in listing one miner: `node_id` at `api`.
async fn directory_stand_in(node_id: String, api: String) -> String {
    let app = axum::Router::new().route(
        "/v1/miners",
        axum::routing::get(move || {
            let (node_id, api) = (node_id.clone(), api.clone());
            async move {
                axum::Json(json!({"epoch": 1, "miners": [{"uid": 0, "node_id": node_id, "api": api,
                    "models": ["all-minilm-l6-v2"], "incentive": 65535, "consensus": 65535, "score": 1.0}]}))
            }
        }),
    );
    serve(app).await
}

/// Row 3: the invoice must pay the miner the client chose.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invoice_paying_another_node_is_refused_and_nothing_is_paid() -> Result<(), TestEnvError>
{
    PaidNet::start(vec![], |_| {})
        .await?
        .run(async |pn| {
            // The attacker's own node, reachable over the coordinator.
            let attacker = Arc::new(pn.net.node("attacker").await?);
            pn.net.fund(&[&attacker], 1).await?;
            pn.net
                .open_channel(&pn.coordinator, &attacker, 1_000_000, 0)
                .await?;
            // Funding the attacker mined 100 blocks: every node on the paying path sees them first.
            pn.sync_all()?;
            let victim = pn.miner_node.node_id();
            let challenges = Arc::new(AtomicUsize::new(0));
            let posing = |token_miner: [u8; 33]| {
                axum::Router::new()
                    .route("/v1/embeddings", axum::routing::post(impostor))
                    .with_state(Impostor {
                        attacker: Arc::clone(&attacker),
                        token_miner,
                        challenges: Arc::clone(&challenges),
                    })
            };
            let before = pn.balances();
            // (Its on-chain funding counts as received: compare with what it had.)
            let attacker_before = attacker.received_msat();

            // (a) The client picked the victim from the federation's directory, but the URL it was given
            // answers with the attacker's token and invoice.
            let lying_url = serve(posing(attacker.node_id().serialize())).await;
            let coordinator = directory_stand_in(victim.to_string(), lying_url.clone()).await;
            let client = pn.client(|c| {
                c.miners = vec![];
                c.directory = DirectoryConfig {
                    coordinators: vec![coordinator],
                    ..Default::default()
                };
            });
            let e = client
                .post("/v1/embeddings", embed_body("pay the victim"))
                .await
                .expect_err("an invoice paying the attacker is refused");
            println!("(a) directory miner {victim} at {lying_url}: {e}");
            assert!(
                matches!(&e, ClientError::WrongPayee { expected, .. } if *expected == victim.to_string()),
                "{e}"
            );
            // (b) A miner given by URL only: the token names the victim, the invoice pays the attacker.
            let copied_url = serve(posing(victim.serialize())).await;
            let client2 = pn.client(|c| c.miners = vec![copied_url.clone()]);
            let e2 = client2
                .post("/v1/embeddings", embed_body("pay the victim"))
                .await
                .expect_err("an invoice paying someone else than the token's miner is refused");
            println!("(b) URL-only miner at {copied_url}: {e2}");
            assert!(matches!(e2, ClientError::WrongPayee { .. }), "{e2}");

            assert_eq!(challenges.load(Ordering::SeqCst), 2, "both were asked");
            for c in [&client, &client2] {
                let s = c.spend();
                assert_eq!(
                    (s.paid_requests, s.spent_msat, s.in_flight_msat),
                    (0, 0, 0),
                    "nothing paid: {s:?}"
                );
            }
            let received = attacker.received_msat() - attacker_before;
            println!(
                "invoice to another node: 2 challenges, attacker received {received} msat, client paid {} msat",
                client.spend().spent_msat + client2.spend().spent_msat
            );
            assert_eq!(received, 0, "the attacker received nothing");
            assert_eq!(pn.balances(), before, "the client's balance did not move");

            // The honest miner, listed under its own node id, is still paid.
            let coordinator = directory_stand_in(victim.to_string(), pn.miner_url.clone()).await;
            let honest = pn.client(|c| {
                c.miners = vec![];
                c.directory = DirectoryConfig::new(vec![coordinator]);
            });
            let mut paid = honest
                .post("/v1/embeddings", embed_body("honest"))
                .await
                .expect("the real miner is paid");
            assert!(matches!(
                paid.outcome().await,
                Some(PaymentOutcome::Settled { .. })
            ));
            attacker.stop().await;
            Ok(())
        })
        .await
}

/// A proxy with its key file, on a free port.
async fn keyed_proxy(
    pn: &PaidNet,
    client: boltensor_client::PayingClient,
) -> (String, String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (auth, file) =
        boltensor_client::proxy::ProxyAuth::load_or_create(&pn.net.dir().join("proxy"), addr)
            .expect("key");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&file)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the key file is private");
    let key = std::fs::read_to_string(&file).expect("key");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(boltensor_client::proxy::serve(
        listener,
        client,
        auth,
        async move {
            let _ = rx.await;
        },
    ));
    (format!("http://{addr}"), key, tx)
}

/// What an attack sends (its headers) and the status it must get.
type Attack<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16);

/// Row 9: what a web page can send the local proxy is refused before anything is paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_web_page_cannot_make_the_proxy_pay() -> Result<(), TestEnvError> {
    PaidNet::start(vec![], |_| {})
        .await?
        .run(async |pn| {
            let client = pn.client(|_| {});
            let (url, key, _stop) = keyed_proxy(pn, client.clone()).await;
            let port = url.rsplit(':').next().expect("port").to_owned();
            let before = pn.balances();
            let http = reqwest::Client::new();
            let body = String::from_utf8(embed_body("spend the user's sats")).expect("utf8");
            let bearer = format!("Bearer {key}");
            let rebound = format!("attacker.example:{port}");
            let attacks: Vec<Attack> = vec![
                (
                    "cross-site text/plain POST (what a page's fetch/form sends without preflight)",
                    vec![
                        ("content-type", "text/plain"),
                        ("origin", "http://attacker.example"),
                    ],
                    403,
                ),
                (
                    "foreign Origin, even with the key and JSON",
                    vec![
                        ("content-type", "application/json"),
                        ("origin", "http://attacker.example"),
                        ("authorization", &bearer),
                    ],
                    403,
                ),
                (
                    "another local origin (a page on another port)",
                    vec![
                        ("content-type", "application/json"),
                        ("origin", "http://127.0.0.1:3000"),
                        ("authorization", &bearer),
                    ],
                    403,
                ),
                (
                    "DNS rebinding: the attacker's name in Host",
                    vec![
                        ("content-type", "application/json"),
                        ("host", &rebound),
                        ("authorization", &bearer),
                    ],
                    403,
                ),
                ("no key", vec![("content-type", "application/json")], 401),
                (
                    "a wrong key",
                    vec![
                        ("content-type", "application/json"),
                        ("authorization", "Bearer sk-guess"),
                    ],
                    401,
                ),
                (
                    "text/plain with the key",
                    vec![("content-type", "text/plain"), ("authorization", &bearer)],
                    415,
                ),
            ];
            for (what, headers, want) in &attacks {
                let mut req = http.post(format!("{url}/v1/embeddings")).body(body.clone());
                for (k, v) in headers {
                    req = req.header(*k, *v);
                }
                let resp = req.send().await.map_err(err)?;
                let status = resp.status().as_u16();
                let v: Value = resp.json().await.map_err(err)?;
                println!("{what}: {status} {}", v["error"]["message"]);
                assert_eq!(status, *want, "{what}: {v}");
            }
            // Reading the spend is refused as well without the key.
            let resp = http
                .get(format!("{url}/v1/spend"))
                .send()
                .await
                .map_err(err)?;
            assert_eq!(resp.status(), 401);

            let s = client.spend();
            assert_eq!(
                (s.requests, s.paid_requests, s.spent_msat),
                (0, 0, 0),
                "{s:?}"
            );
            assert_eq!(pn.balances(), before, "no payment");
            println!(
                "{} web-page attacks: all refused, 0 msat paid",
                attacks.len()
            );

            // The key holder (an OpenAI SDK with the key as its api_key) is served and pays.
            let resp = http
                .post(format!("{url}/v1/embeddings"))
                .header("content-type", "application/json")
                .header("authorization", &bearer)
                .body(body)
                .send()
                .await
                .map_err(err)?;
            assert_eq!(resp.status(), 200);
            assert!(resp.headers().contains_key("x-boltensor-preimage"));
            assert_eq!(client.spend().paid_requests, 1);
            Ok(())
        })
        .await
}

/// A TCP proxy in front of `miner` that forwards each request (one per connection) and its answer, but
/// for the first `cuts` paid requests (`Authorization: L402 <token>` without a preimage) reads the
/// miner's whole answer and closes the client's connection without sending a byte of it.
async fn cutting_proxy(miner: String, cuts: usize) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let miner_addr = miner.trim_start_matches("http://").to_owned();
    let cut = Arc::new(AtomicUsize::new(0));
    let cut2 = Arc::clone(&cut);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let miner_addr = miner_addr.clone();
            let cut = Arc::clone(&cut2);
            tokio::spawn(async move {
                // The request: head, then Content-Length bytes of body.
                let mut buf = Vec::new();
                let head_end = loop {
                    let mut chunk = [0u8; 8192];
                    let n = match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let mut chunk = [0u8; 8192];
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let paid_first_try = head.lines().any(|l| {
                    l.strip_prefix("authorization: l402 ")
                        .is_some_and(|t| !t.contains(':'))
                });
                // One request per connection: ask the miner to close after answering.
                let first_line_end = buf.windows(2).position(|w| w == b"\r\n").expect("line") + 2;
                let mut forward = buf[..first_line_end].to_vec();
                forward.extend_from_slice(b"connection: close\r\n");
                forward.extend_from_slice(&buf[first_line_end..]);
                let Ok(mut up) = tokio::net::TcpStream::connect(&miner_addr).await else {
                    return;
                };
                if up.write_all(&forward).await.is_err() {
                    return;
                }
                let mut answer = Vec::new();
                let _ = up.read_to_end(&mut answer).await;
                if paid_first_try && cut.fetch_add(1, Ordering::SeqCst) < cuts {
                    // The miner answered (and settled); the client never sees it.
                    drop(conn);
                    return;
                }
                let _ = conn.write_all(&answer).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    (url, cut)
}

/// Row 14: a dropped answer after payment is fetched again, not paid twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_lost_after_payment_is_fetched_again_not_paid_twice() -> Result<(), TestEnvError>
{
    PaidNet::start(vec![], |_| {})
        .await?
        .run(async |pn| {
            let (cutting, cut) = cutting_proxy(pn.miner_url.clone(), 1).await;
            // The same miner twice: behind the cutting link, and directly (the next one to try).
            let client = pn.client(|c| c.miners = vec![cutting.clone(), pn.miner_url.clone()]);
            let (c0, m0) = pn.balances();
            let mut paid = client
                .post("/v1/embeddings", embed_body("a lost answer"))
                .await
                .map_err(err)?;
            assert!(cut.load(Ordering::SeqCst) >= 1, "the paid answer was cut off");
            let s = client.spend();
            println!(
                "answer cut after payment: answered by {}; requests by miner {:?}",
                paid.miner, s.requests_by_miner
            );
            assert_eq!(paid.miner, cutting, "answered by the miner that was paid");
            assert_eq!(paid.response.status(), 200);
            let outcome = paid.outcome().await;
            let Some(PaymentOutcome::Settled { fee_msat, .. }) = outcome else {
                panic!("settled: {outcome:?}");
            };
            let price = paid.price_msat;
            let v: Value = paid.response.json().await.map_err(err)?;
            assert_eq!(v["data"][0]["embedding"].as_array().map(Vec::len), Some(384));
            let s = client.spend();
            println!(
                "answer cut after payment: paid {} time(s), {} msat + {} msat fee; requests by miner {:?}",
                s.paid_requests, s.spent_msat, s.fees_msat, s.requests_by_miner
            );
            assert_eq!(s.paid_requests, 1, "paid once: {s:?}");
            assert_eq!(s.spent_msat, price);
            assert_eq!(
                s.requests_by_miner.get(&pn.miner_url),
                None,
                "the next miner was not asked"
            );
            pn.wait_balances((c0 - (price + fee_msat) / 1000, m0 + price / 1000))
                .await?;
            wait_for("one settled request at the miner", Duration::from_secs(10), || async {
                let m = reqwest::get(format!("{}/metrics", pn.miner_url))
                    .await
                    .map_err(err)?
                    .text()
                    .await
                    .map_err(err)?;
                Ok(m.contains("boltensor_miner_requests{state=\"Settled\"} 1").then_some(()))
            })
            .await?;
            Ok(())
        })
        .await
}

fn chat_body(stream: bool) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "model": "smollm2-135m-instruct",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "max_tokens": 8,
        "stream": stream,
        "stream_options": {"include_usage": true},
    }))
    .expect("json")
}

/// Row 14, the miner's side: a streamed chat's credit note (the unused part of its reservation) comes at
/// the end of the stream, as an SSE comment line the OpenAI SDKs skip, and the client keeps it for its
/// next request; a re-fetch of a paid result (token + preimage) returns the note with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_streamed_chat_and_a_refetch_carry_the_credit_note() -> Result<(), TestEnvError> {
    use futures_util::StreamExt;
    PaidNet::start(vec![], |_| {})
        .await?
        .run(async |pn| {
            let client = pn.client(|_| {});
            let mut paid = client
                .post("/v1/chat/completions", chat_body(true))
                .await
                .map_err(err)?;
            assert_eq!(paid.response.status(), 200);
            let chat_price = paid.price_msat;
            let outcome = paid.outcome().await;
            assert!(matches!(outcome, Some(PaymentOutcome::Settled { .. })), "{outcome:?}");
            let miner = paid.miner.clone();
            let mut body = Box::pin(client.sse_body(&miner, paid.response));
            let mut text = Vec::new();
            while let Some(chunk) = body.next().await {
                text.extend_from_slice(&chunk.map_err(err)?);
            }
            let text = String::from_utf8(text).map_err(err)?;
            let usage: Value = text
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|c| c["usage"].is_object())
                .map(|c| c["usage"].clone())
                .ok_or_else(|| err("no usage chunk"))?;
            let used = usage["completion_tokens"].as_u64().ok_or_else(|| err("usage"))?;
            let credit = client.spend().credit_msat;
            println!(
                "streamed chat: price {chat_price} msat, {used} of 8 tokens used; credit kept by the client: {credit} msat; \
                 the stream's credit line: {:?}",
                text.lines().find(|l| l.starts_with(": ")).map(|l| &l[..l.len().min(40)])
            );
            assert!(text.trim_end().ends_with("data: [DONE]"));
            assert_eq!(credit, (8 - used) * 1_000, "the unused reservation comes back as credit");
            assert!(credit > 0, "a short answer leaves credit");

            // The note lowers the next price at that miner (not streamed: its header carries the next note).
            let mut paid = client
                .post("/v1/chat/completions", chat_body(false))
                .await
                .map_err(err)?;
            assert_eq!(paid.response.status(), 200);
            assert_eq!(paid.price_msat, chat_price - credit, "the streamed chat's credit redeemed");
            let Some(PaymentOutcome::Settled { preimage, .. }) = paid.outcome().await else {
                panic!("settled");
            };
            let note = paid.response.headers()[l402::NEW_CREDIT_HEADER].clone();
            let msat = paid.response.headers()[l402::NEW_CREDIT_MSAT_HEADER].clone();
            let token = paid.token.clone().ok_or_else(|| err("token"))?;

            // A client that lost that answer fetches it again, with its credit note.
            let again = client
                .refetch(&miner, "/v1/chat/completions", chat_body(false), &token, &preimage)
                .await
                .map_err(err)?;
            assert_eq!(again.status(), 200);
            println!(
                "re-fetch: credit note {} msat (first answer: {})",
                again.headers().get(l402::NEW_CREDIT_MSAT_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("none"),
                msat.to_str().unwrap_or_default()
            );
            assert_eq!(again.headers().get(l402::NEW_CREDIT_HEADER), Some(&note));
            assert_eq!(again.headers().get(l402::NEW_CREDIT_MSAT_HEADER), Some(&msat));
            Ok(())
        })
        .await
}
