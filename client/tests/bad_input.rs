//! Bad input over HTTP against the client proxy (`boltensor client proxy`) in front of a real paid miner
//! on regtest: malformed, mistyped, oversized and random bodies, wrong content types, any
//! `Authorization` an SDK sends, unknown paths and methods each get a 4xx with a JSON error (a 200 when
//! the request is in fact valid: the proxy pays for it), never a 5xx; the proxy still pays for a valid
//! request afterwards. A miner that sends garbage challenges (invoices, tokens) gets nothing paid and
//! the caller a 502 naming the miner's fault. A miner cut off by its request timeout while holding a
//! payment fails it back: the client's balance returns in full.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use boltensor_client::{ClientConfig, PayingClient};
use boltensor_miner::Misbehaviour;
use boltensor_testenv::hostile::{self, assert_json_error, Answer, Rng};
use boltensor_testenv::TestEnvError;
use common::PaidNet;
use serde_json::{json, Value};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn to_env(e: Box<dyn std::error::Error + Send + Sync>) -> TestEnvError {
    TestEnvError::Devnet(e.to_string())
}

/// The key every request to the test proxies carries.
const KEY: &str = "bt-test-key";

/// The proxy for `client` on a free port, with [`KEY`]; stops when the returned sender is dropped.
async fn proxy(client: PayingClient) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let url = format!("http://{addr}");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(boltensor_client::proxy::serve(
        listener,
        client,
        boltensor_client::proxy::ProxyAuth::new(KEY, addr),
        async move {
            let _ = rx.await;
        },
    ));
    (url, tx)
}

/// An HTTP client that sends the proxy's key with every request.
fn keyed_http() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {KEY}").parse().expect("header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

/// Sends one request to the proxy; no answer (a dropped connection) is an error.
async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, Vec<u8>)],
    body: Vec<u8>,
) -> Result<Answer> {
    let limit = boltensor_client::proxy::limits().max_body_bytes;
    Ok(hostile::send(http, method, url, headers, body, limit).await?)
}

/// A 4xx (or, when `ok_2xx`, a 200) with a JSON error message.
fn check(what: &str, a: &Answer, ok_2xx: bool) {
    assert_json_error(what, a, ok_2xx);
}

fn emb_body() -> Value {
    json!({"model": "all-minilm-l6-v2", "input": "The quick brown fox."})
}

fn chat_body() -> Value {
    json!({"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1})
}

/// Bodies that no miner takes (or, for a few, valid ones the proxy pays for), labelled.
fn bodies(rng: &mut Rng, path: &str) -> Vec<(String, Vec<u8>, bool)> {
    let emb = path.ends_with("embeddings");
    let base = if emb { emb_body() } else { chat_body() };
    let mut out = Vec::new();
    let wrong = [
        Value::Null,
        json!(true),
        json!(-1),
        json!(1.5),
        json!(1e300),
        json!(u64::MAX),
        json!([]),
        json!({}),
        json!("a".repeat(50_000)),
    ];
    // The fields a miner needs, given wrong types or removed: never valid.
    let fields: &[&str] = if emb {
        &["model", "input"]
    } else {
        &["model", "messages", "max_tokens"]
    };
    for field in fields {
        let mut v = base.clone();
        v.as_object_mut().map(|o| o.remove(*field));
        // Without max_tokens a chat request is valid (the default applies).
        out.push((
            format!("{path} without {field}"),
            v.to_string().into_bytes(),
            *field == "max_tokens",
        ));
        for w in &wrong {
            let mut v = base.clone();
            v[*field] = w.clone();
            // An input string of 50,000 'a's is a single (unknown) token: valid.
            let valid = emb && *field == "input" && w.is_string();
            out.push((
                format!("{path} {field} = a wrong value"),
                v.to_string().into_bytes(),
                valid,
            ));
        }
    }
    let specific: Vec<(&str, Value)> = if emb {
        vec![
            ("model", json!("gpt-4")),
            ("model", json!("smollm2-135m-instruct")),
            ("input", json!([])),
            ("input", json!(vec!["a"; 65])),
            ("input", json!("word ".repeat(1000))),
            ("encoding_format", json!("hex")),
        ]
    } else {
        vec![
            ("model", json!("gpt-4")),
            ("model", json!("all-minilm-l6-v2")),
            ("messages", json!([])),
            ("messages", json!([{"role": "tool", "content": "x"}])),
            (
                "messages",
                json!([{"role": "user", "content": [{"type": "image_url"}]}]),
            ),
            ("max_tokens", json!(0)),
            ("max_tokens", json!(100_000)),
            ("max_tokens", json!(-5)),
            ("max_tokens", json!(2.5)),
            ("max_completion_tokens", json!(u32::MAX)),
            ("temperature", json!(7)),
            ("top_p", json!(-1)),
            ("n", json!(3)),
        ]
    };
    for (k, val) in specific {
        let mut v = base.clone();
        v[k] = val;
        out.push((
            format!("{path} {k} = {}", v[k]),
            v.to_string().into_bytes(),
            false,
        ));
    }
    for raw in [
        &b""[..],
        b"{",
        b"null",
        b"[]",
        b"[{\"model\": \"x\"}]",
        b"\"string\"",
        b"42",
        b"{\"model\": \"all-minilm-l6-v2\",}",
        b"\xff\xfe{}",
    ] {
        out.push((format!("{path} malformed JSON"), raw.to_vec(), false));
    }
    for _ in 0..25 {
        let n = rng.below(3000);
        out.push((format!("{path} random bytes"), rng.bytes(n), false));
    }
    out.push((
        format!("{path} 1 MiB + 1"),
        vec![b' '; 1024 * 1024 + 1],
        false,
    ));
    out.push((format!("{path} 3 MiB"), vec![b'{'; 3 * 1024 * 1024], false));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_input_gets_a_server_error() -> std::result::Result<(), TestEnvError> {
    PaidNet::start(vec![], |_| {})
        .await?
        .run(async |pn| bad_input(pn).await.map_err(to_env))
        .await
}

async fn bad_input(pn: &PaidNet) -> Result {
    let client = pn.client(|_| {});
    let (url, _stop) = proxy(client.clone()).await;
    let http = keyed_http();
    let mut rng = Rng(0x5eed_c11e_0001);
    let mut statuses = BTreeMap::<u16, usize>::new();
    let mut sent = 0usize;
    let post = reqwest::Method::POST;
    let ct = ("content-type", b"application/json".to_vec());

    for path in ["/v1/embeddings", "/v1/chat/completions"] {
        for (what, body, valid) in bodies(&mut rng, path) {
            let a = send(
                &http,
                post.clone(),
                &format!("{url}{path}"),
                std::slice::from_ref(&ct),
                body,
            )
            .await?;
            sent += 1;
            *statuses.entry(a.status).or_default() += 1;
            check(&what, &a, valid);
        }
    }
    // Another key, another scheme, or a body not declared JSON: refused before anything is paid
    // (client/tests/attacks.rs performs the cross-site attacks these stop).
    let emb = emb_body().to_string().into_bytes();
    let raw = reqwest::Client::new();
    let paid_before = client.spend().paid_requests;
    for (k, v, want) in [
        ("authorization", b"Bearer sk-anything".to_vec(), 401),
        ("authorization", b"L402 forged:00".to_vec(), 401),
        ("authorization", b"\xff\xfe".to_vec(), 401),
        ("content-type", b"text/plain".to_vec(), 415),
        (
            "content-type",
            b"multipart/form-data; boundary=x".to_vec(),
            415,
        ),
    ] {
        let mut headers = vec![(k, v)];
        if k == "content-type" {
            headers.push(("authorization", format!("Bearer {KEY}").into_bytes()));
        } else {
            headers.push(ct.clone());
        }
        let a = send(
            &raw,
            post.clone(),
            &format!("{url}/v1/embeddings"),
            &headers,
            emb.clone(),
        )
        .await?;
        sent += 1;
        *statuses.entry(a.status).or_default() += 1;
        check(&format!("header {k}"), &a, false);
        assert_eq!(a.status, want, "header {k}");
    }
    assert_eq!(
        client.spend().paid_requests,
        paid_before,
        "nothing paid for refused requests"
    );
    // Paths, methods, queries.
    for (method, path) in [
        (reqwest::Method::GET, "/v1/chat/completions"),
        (reqwest::Method::PUT, "/v1/embeddings"),
        (reqwest::Method::POST, "/v1/spend"),
        (reqwest::Method::DELETE, "/metrics"),
        (reqwest::Method::GET, "/v1/nothing"),
        (reqwest::Method::POST, "/v1/completions"),
        (reqwest::Method::GET, "/v1/directory?model=%ff%00"),
        (reqwest::Method::GET, "/v1/directory?model=a&model=b"),
    ] {
        let a = send(&http, method.clone(), &format!("{url}{path}"), &[], vec![]).await?;
        sent += 1;
        *statuses.entry(a.status).or_default() += 1;
        check(&format!("{method} {path}"), &a, false);
    }
    // Still paying: a valid chat request is served with its proof of payment.
    let resp = http
        .post(format!("{url}/v1/chat/completions"))
        .json(&chat_body())
        .send()
        .await?;
    sent += 1;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-boltensor-preimage"));
    let spend = client.spend();
    println!(
        "proxy bad input: {sent} requests, statuses {statuses:?}; paid {} for {} msat",
        spend.paid_requests, spend.spent_msat
    );

    // A miner that answers with garbage challenges: nothing is paid, the caller gets a JSON error.
    garbage_challenges(pn, &http).await
}

async fn garbage_challenges(pn: &PaidNet, http: &reqwest::Client) -> Result {
    // Two real challenges from the real miner, to mix up.
    let emb = emb_body().to_string().into_bytes();
    let mut real = Vec::new();
    for _ in 0..2 {
        let v: Value = http
            .post(format!("{}/v1/embeddings", pn.miner_url))
            .body(emb.clone())
            .send()
            .await?
            .json()
            .await?;
        real.push((
            v["token"].as_str().ok_or("token")?.to_owned(),
            v["invoice"].as_str().ok_or("invoice")?.to_owned(),
        ));
    }
    let (a, b) = (&real[0], &real[1]);
    let challenges: Vec<Option<Vec<u8>>> = vec![
        None,
        Some(b"L402 garbage".to_vec()),
        Some(b"L402 macaroon=\"x\", invoice=\"lnbcrt1garbage\"".to_vec()),
        Some(format!("L402 macaroon=\"{}\", invoice=\"x\"", a.0).into_bytes()),
        Some(format!("L402 macaroon=\"x\", invoice=\"{}\"", a.1).into_bytes()),
        // Token and invoice of two different requests.
        Some(format!("L402 macaroon=\"{}\", invoice=\"{}\"", a.0, b.1).into_bytes()),
        Some(
            format!(
                "L402 macaroon=\"{}\", invoice=\"{}\"",
                "A".repeat(6000),
                a.1
            )
            .into_bytes(),
        ),
        Some(b"L402 macaroon=\"\xff\", invoice=\"\xfe\"".to_vec()),
        // A consistent pair, but over this client's price limit: refused, 402.
        Some(format!("L402 macaroon=\"{}\", invoice=\"{}\"", a.0, a.1).into_bytes()),
    ];
    let n = challenges.len();
    let challenges = Arc::new(challenges);
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = {
        let challenges = Arc::clone(&challenges);
        let hits = Arc::clone(&hits);
        axum::Router::new().fallback(move || {
            let i = hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let c = challenges[i % challenges.len()].clone();
            async move {
                let mut resp = (StatusCode::PAYMENT_REQUIRED, "pay").into_response();
                if let Some(c) = c.and_then(|c| HeaderValue::from_bytes(&c).ok()) {
                    resp.headers_mut().insert("www-authenticate", c);
                }
                resp
            }
        })
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let fake = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mut cfg = ClientConfig::new(vec![fake]);
    cfg.max_price_msat = 1_000;
    let client = PayingClient::new(cfg, Arc::clone(&pn.client_node));
    let (url, _stop) = proxy(client.clone()).await;
    let mut statuses = BTreeMap::<u16, usize>::new();
    for i in 0..n {
        let a = send(
            http,
            reqwest::Method::POST,
            &format!("{url}/v1/embeddings"),
            &[("content-type", b"application/json".to_vec())],
            emb.clone(),
        )
        .await?;
        *statuses.entry(a.status).or_default() += 1;
        // The miner's fault: 502 (bad gateway), or 402 when its price is over the limit.
        assert!(
            a.status == 502 || a.status == 402,
            "garbage challenge {i}: {} {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        );
        let v: Value = serde_json::from_slice(&a.body)?;
        assert!(v["error"]["message"].is_string(), "{v}");
    }
    let spend = client.spend();
    assert_eq!(
        (spend.paid_requests, spend.in_flight_msat, spend.spent_msat),
        (0, 0, 0)
    );
    println!("garbage challenges: {n} requests, statuses {statuses:?}; nothing paid");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_timed_out_paid_request_is_failed_back() -> std::result::Result<(), TestEnvError> {
    PaidNet::start(vec![], |cfg| {
        cfg.request_timeout = Duration::from_secs(2);
        cfg.misbehaviour = Some(Misbehaviour::Slow(Duration::from_secs(4)));
    })
    .await?
    .run(async |pn| {
        async {
            let before = pn.balances();
            let client = pn.client(|_| {});
            let (url, _stop) = proxy(client.clone()).await;
            let resp = keyed_http()
                .post(format!("{url}/v1/embeddings"))
                .json(&emb_body())
                .send()
                .await?;
            assert_eq!(resp.status(), 504, "the miner's request timeout, relayed");
            let v: Value = resp.json().await?;
            assert_eq!(v["error"]["type"], "timeout", "{v}");
            // The payment was held when the miner's handler was cut off: failed back in full.
            pn.wait_balances(before).await?;
            boltensor_testenv::wait_for("the refund recorded", Duration::from_secs(30), || async {
                let s = client.spend();
                Ok((s.refunded == 1 && s.in_flight_msat == 0).then_some(()))
            })
            .await?;
            Result::Ok(())
        }
        .await
        .map_err(to_env)
    })
    .await
}
