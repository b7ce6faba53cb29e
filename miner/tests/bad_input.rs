//! Bad input over HTTP against a running miner (real ldk-node on regtest for the hold invoices, the
//! real models): malformed, mistyped, oversized and random bodies, every field of both request kinds
//! given wrong values, forged, tampered, foreign and expired L402 tokens, invalid preimages and credit
//! notes, wrong content types, unknown paths and methods. Every answer is a 4xx with a JSON error
//! message (402 with a challenge where the request is in fact valid), never a 5xx, and the miner still
//! answers a valid request afterwards. Also: the per-IP rate limit (429 with `Retry-After`), the request
//! timeout (504, the unpaid token's request failed back), and the secret files' modes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use boltensor_ln::LnNode;
use boltensor_miner::config::{default_models, default_models_dir};
use boltensor_miner::{Miner, MinerConfig, Misbehaviour};
use boltensor_protocol::l402::{self, CreditNote, PaymentClaims};
use boltensor_testenv::hostile::{assert_json_error, send, Answer, Rng};
use boltensor_testenv::TestNet;
use serde_json::{json, Value};
use tokio::sync::watch;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const EMB: &str = "all-minilm-l6-v2";
const CHAT: &str = "smollm2-135m-instruct";

/// A miner on its own task; stopped (and its payments resolved) by [`Running::stop`].
struct Running {
    miner: Arc<Miner>,
    data_dir: std::path::PathBuf,
    url: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(node: &Arc<LnNode>, cfg: MinerConfig) -> Result<Self> {
        let specs = cfg.models.clone();
        let data_dir = cfg.data_dir.clone();
        let backends = boltensor_miner::load_backends(&specs)?;
        let miner = Miner::new(cfg, Arc::clone(node), &backends)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, mut rx) = watch::channel(false);
        let task = tokio::spawn(Arc::clone(&miner).run(listener, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        Ok(Running {
            miner,
            data_dir,
            url,
            stop,
            task,
        })
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn config(net: &TestNet, name: &str) -> MinerConfig {
    let mut cfg = MinerConfig::new(default_models(&default_models_dir()), net.dir().join(name));
    // Free copies of both models (served without payment): bad input that passes validation reaches
    // the model itself.
    let paid = cfg.models.clone();
    for mut spec in paid {
        spec.id = format!("free-{}", spec.id);
        // Short generations and prompts keep the model runs cheap.
        spec.max_input_tokens = spec.max_input_tokens.min(128);
        spec.max_output_tokens = spec.max_output_tokens.min(8);
        spec.default_max_tokens = spec.default_max_tokens.min(4);
        spec.price = boltensor_miner::Price {
            per_request_msat: 0,
            per_token_msat: 0,
        };
        cfg.models.push(spec);
    }
    // A valid token without a payment waits this long for the HTLC: keep the run short.
    cfg.payment_wait = Duration::from_millis(500);
    cfg
}

/// Checks an answer to bad input: a 4xx with a JSON error message; a 402 carries a challenge.
fn check(what: &str, a: &Answer) {
    check_allowing(what, a, false)
}

/// [`check`], also allowing a 200 (for a free model, where input that is in fact valid is served).
fn check_allowing(what: &str, a: &Answer, ok_2xx: bool) {
    let v = assert_json_error(what, a, ok_2xx);
    if a.status == 402 {
        // A fresh challenge, or "no payment held for this token" (the token stays usable).
        assert_eq!(v["error"]["type"], "payment_required", "{what}");
        assert!(
            v.get("invoice").is_none()
                || a.www_authenticate
                    .as_deref()
                    .is_some_and(|h| h.starts_with("L402 ")),
            "{what}: a challenge without WWW-Authenticate"
        );
    }
}

/// Wrong values for any JSON field.
fn wrong_values(rng: &mut Rng) -> Vec<Value> {
    let mut deep = json!(1);
    for _ in 0..200 {
        deep = json!([deep]);
    }
    vec![
        Value::Null,
        json!(true),
        json!(-1),
        json!(0),
        json!(1.5),
        json!(1e300),
        json!(-1e300),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(""),
        json!("x"),
        json!("\u{0}\u{ffff}\u{10ffff}"),
        json!("a".repeat(100_000)),
        json!([]),
        json!([1, 2, 3]),
        json!({}),
        json!({"a": {"b": null}}),
        deep,
        json!(String::from_utf8_lossy(&rng.bytes(64))),
    ]
}

fn emb_body() -> Value {
    json!({"model": EMB, "input": "The quick brown fox."})
}

fn chat_body() -> Value {
    json!({"model": CHAT, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8})
}

/// The model ids of a pass: the priced models, or their free copies.
fn ids(free: bool) -> (String, String) {
    let p = if free { "free-" } else { "" };
    (format!("{p}{EMB}"), format!("{p}{CHAT}"))
}

/// Bodies of every kind of wrongness for `path`, with a label each.
fn bad_bodies(rng: &mut Rng, path: &str, free: bool) -> Vec<(String, Vec<u8>)> {
    let (emb, chat) = ids(free);
    let mut base = if path.ends_with("embeddings") {
        emb_body()
    } else {
        chat_body()
    };
    base["model"] = json!(if path.ends_with("embeddings") {
        &emb
    } else {
        &chat
    });
    if free && !path.ends_with("embeddings") {
        // One token per model run (the slow part of this test).
        base["max_tokens"] = json!(1);
    }
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut push = |label: String, v: Value| out.push((label, v.to_string().into_bytes()));
    // Every field: missing, and every wrong value.
    let fields: Vec<String> = base
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let extra_fields: &[&str] = if path.ends_with("embeddings") {
        &["encoding_format", "user", "dimensions"]
    } else {
        &[
            "max_completion_tokens",
            "temperature",
            "top_p",
            "seed",
            "stream",
            "stream_options",
            "n",
            "stop",
        ]
    };
    // Free models: only the values of the right type (most wrong types never reach a model, and
    // every accepted request is a model run).
    for field in fields.iter().filter(|_| !free) {
        let mut v = base.clone();
        v.as_object_mut().map(|o| o.remove(field));
        push(format!("{path} without {field}"), v);
    }
    for field in fields
        .iter()
        .map(String::as_str)
        .chain(extra_fields.iter().copied())
        .filter(|_| !free)
    {
        for wrong in wrong_values(rng) {
            let mut v = base.clone();
            v[field] = wrong;
            push(format!("{path} {field} = a wrong value"), v);
        }
    }
    // Values of the right type that are still wrong.
    let unknown_models = [json!("gpt-4"), json!(""), json!("x".repeat(5000))];
    for m in unknown_models {
        let mut v = base.clone();
        v["model"] = m;
        push(format!("{path} unknown model"), v);
    }
    let mut v = base.clone();
    v["model"] = json!(if path.ends_with("embeddings") {
        &chat
    } else {
        &emb
    });
    push(format!("{path} a model of the other kind"), v);
    if path.ends_with("embeddings") {
        for input in [
            json!([]),
            json!([1, 2, 3]),
            json!([[1, 2]]),
            json!(vec!["a"; 65]),
            json!("word ".repeat(2000)),
            json!([null]),
        ] {
            push(
                format!(
                    "{path} input {}",
                    &input.to_string()[..input.to_string().len().min(20)]
                ),
                {
                    let mut v = base.clone();
                    v["input"] = input;
                    v
                },
            );
        }
        for f in ["hex", "FLOAT", ""] {
            let mut v = base.clone();
            v["encoding_format"] = json!(f);
            push(format!("{path} encoding_format {f:?}"), v);
        }
    } else {
        for mt in [
            json!(0),
            json!(-1),
            json!(1.5),
            json!(9),
            json!(513),
            json!(u32::MAX),
            json!(u64::MAX),
            json!(1e20),
            json!("10"),
        ] {
            for key in ["max_tokens", "max_completion_tokens"] {
                let mut v = base.clone();
                v[key] = mt.clone();
                push(format!("{path} {key} = {mt}"), v);
            }
        }
        let messages = [
            json!([]),
            json!([{}]),
            json!([{"role": "user"}]),
            json!([{"content": "hi"}]),
            json!([{"role": "tool", "content": "hi"}]),
            json!([{"role": "function", "content": "hi"}]),
            json!([{"role": "", "content": "hi"}]),
            json!([{"role": "user", "content": null}]),
            json!([{"role": "user", "content": 5}]),
            json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]),
            json!([{"role": "user", "content": [{"text": "no type"}]}]),
            json!([{"role": "user", "content": "word ".repeat(3000)}]),
            json!(vec![json!({"role": "user", "content": "hi"}); 2000]),
        ];
        for m in messages {
            let mut v = base.clone();
            v["messages"] = m;
            push(format!("{path} bad messages"), v);
        }
        for (k, val) in [
            ("temperature", json!(-1)),
            ("temperature", json!(3)),
            ("temperature", json!(1e300)),
            ("top_p", json!(0)),
            ("top_p", json!(-0.5)),
            ("top_p", json!(2)),
            ("top_p", json!(1e-9)),
            ("temperature", json!(2)),
            ("temperature+top_p", json!(0)),
            ("temperature+top_p", json!(-1)),
            ("n", json!(0)),
            ("n", json!(2)),
            ("seed", json!(-1)),
            ("stream", json!("yes")),
            ("stream_options", json!({"include_usage": "yes"})),
        ] {
            let mut v = base.clone();
            if k == "temperature+top_p" {
                // top_p matters only when sampling.
                v["temperature"] = json!(1);
                v["top_p"] = val.clone();
            } else {
                v[k] = val.clone();
            }
            push(format!("{path} {k} = {val}"), v);
        }
    }
    if free {
        return out;
    }
    // Malformed JSON, other JSON types, random bytes.
    for raw in [
        &b""[..],
        b"{",
        b"}",
        b"null",
        b"[]",
        b"\"a string\"",
        b"42",
        b"{\"model\":",
        b"{\"model\": \"all-minilm-l6-v2\", \"input\": \"a\",}",
        b"{'model': 'x'}",
        b"\xff\xfe{}",
        b"{\"model\": \"\xff\"}",
    ] {
        out.push((format!("{path} malformed JSON"), raw.to_vec()));
    }
    let valid = base.to_string().into_bytes();
    for _ in 0..20 {
        // Truncated and bit-flipped valid bodies.
        let mut b = valid.clone();
        let i = rng.below(b.len());
        if rng.below(2) == 0 {
            b.truncate(i);
        } else {
            b[i] ^= 1 << rng.below(8);
        }
        out.push((format!("{path} mangled body"), b));
    }
    for _ in 0..30 {
        let n = rng.below(2000);
        out.push((format!("{path} random bytes"), rng.bytes(n)));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_input_gets_a_server_error() -> Result {
    let net = TestNet::start().await?;
    let node = Arc::new(net.node("miner").await?);
    let cfg = config(&net, "miner-data");
    let limit = cfg.max_body_bytes;
    let m = Running::start(&node, cfg).await?;
    let outcome = run_bad_input(&m, &node, limit).await;
    m.stop().await;
    node.stop().await;
    outcome
}

async fn run_bad_input(m: &Running, node: &Arc<LnNode>, limit: usize) -> Result {
    let http = reqwest::Client::new();
    let url = &m.url;
    let mut rng = Rng(0x5eed_0b57_0001);
    let mut statuses = BTreeMap::<u16, usize>::new();
    let mut sent = 0usize;
    let json_ct: (&str, Vec<u8>) = ("content-type", b"application/json".to_vec());
    let post = reqwest::Method::POST;

    // 1. Bodies, to the priced models and to their free copies.
    for (path, free) in [
        ("/v1/embeddings", false),
        ("/v1/chat/completions", false),
        ("/v1/embeddings", true),
        ("/v1/chat/completions", true),
    ] {
        let mut bodies = bad_bodies(&mut rng, path, free);
        bodies.push((format!("{path} just over the limit"), vec![b' '; limit + 1]));
        bodies.push((format!("{path} 2 MiB of 'a'"), vec![b'a'; 2 * 1024 * 1024]));
        bodies.push((format!("{path} 300 kB of '['"), vec![b'['; 300_000]));
        for (what, body) in bodies {
            let a = send(
                &http,
                post.clone(),
                &format!("{url}{path}"),
                std::slice::from_ref(&json_ct),
                body,
                limit,
            )
            .await?;
            sent += 1;
            *statuses.entry(a.status).or_default() += 1;
            check_allowing(&what, &a, free);
        }
    }

    // 2. Content types and headers on a valid body (the body decides: 402).
    let emb = emb_body().to_string().into_bytes();
    let chat = chat_body().to_string().into_bytes();
    for ct in [
        &b"text/plain"[..],
        b"application/x-www-form-urlencoded",
        b"multipart/form-data; boundary=x",
        b"application/json; charset=latin-1",
        b"garbage/\x80",
        b"",
    ] {
        for (path, body) in [("/v1/embeddings", &emb), ("/v1/chat/completions", &chat)] {
            let a = send(
                &http,
                post.clone(),
                &format!("{url}{path}"),
                &[("content-type", ct.to_vec())],
                body.clone(),
                limit,
            )
            .await?;
            sent += 1;
            *statuses.entry(a.status).or_default() += 1;
            check(
                &format!("content-type {:?}", String::from_utf8_lossy(ct)),
                &a,
            );
        }
    }

    // 3. L402: malformed, forged, tampered, foreign, expired tokens; bad preimages; credit notes.
    let challenge = send(
        &http,
        post.clone(),
        &format!("{url}/v1/embeddings"),
        std::slice::from_ref(&json_ct),
        emb.clone(),
        limit,
    )
    .await?;
    sent += 1;
    check("a valid request", &challenge);
    let body: Value = serde_json::from_slice(&challenge.body)?;
    let token = body["token"].as_str().ok_or("no token")?.to_owned();
    let key = std::fs::read(m.data_dir.join("l402.key"))?;
    let key: [u8; 32] = key.try_into().map_err(|_| "key length")?;
    let claims = PaymentClaims::verify(&token, &key)?;
    let digest = l402::request_digest("POST", "/v1/embeddings", &emb);
    assert_eq!(claims.request_digest, digest);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let forged = |c: PaymentClaims, k: &[u8; 32]| c.sign(k);
    let expired = forged(
        PaymentClaims {
            expires_at: now - 1,
            ..claims
        },
        &key,
    );
    let foreign = forged(
        PaymentClaims {
            miner: [2; 33],
            ..claims
        },
        &key,
    );
    let unknown = forged(
        PaymentClaims {
            payment_hash: [7; 32],
            ..claims
        },
        &key,
    );
    let wrong_key = forged(claims, &[9; 32]);
    let mut tampered = token.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered)?;
    let preimage_hex = hex::encode([3u8; 32]);
    let mut auths: Vec<Vec<u8>> = vec![
        b"L402".to_vec(),
        b"L402 ".to_vec(),
        b"L402 garbage".to_vec(),
        b"L402 a:b".to_vec(),
        b"L402 :".to_vec(),
        b"L402 ::::".to_vec(),
        b"LSAT x".to_vec(),
        b"Bearer sk-anything".to_vec(),
        b"Basic dXNlcjpwYXNz".to_vec(),
        b"L402 \xff\xfe".to_vec(),
        format!("L402 {}", "A".repeat(8000)).into_bytes(),
        format!("L402 {expired}").into_bytes(),
        format!("L402 {foreign}").into_bytes(),
        format!("L402 {unknown}").into_bytes(),
        format!("L402 {wrong_key}").into_bytes(),
        format!("L402 {tampered}").into_bytes(),
        format!("L402 {token}:").into_bytes(),
        format!("L402 {token}:zz").into_bytes(),
        format!("L402 {token}:{}", &preimage_hex[..10]).into_bytes(),
        format!("L402 {token}:{preimage_hex}").into_bytes(),
        format!("L402 {token}:{preimage_hex}00").into_bytes(),
        format!("L402 {unknown}:{preimage_hex}").into_bytes(),
    ];
    for _ in 0..20 {
        let n = rng.below(300);
        let mut raw = b"L402 ".to_vec();
        raw.extend(
            rng.bytes(n)
                .into_iter()
                .filter(|b| *b >= 0x20 && *b != 0x7f),
        );
        auths.push(raw);
    }
    for auth in &auths {
        let a = send(
            &http,
            post.clone(),
            &format!("{url}/v1/embeddings"),
            &[json_ct.clone(), ("authorization", auth.clone())],
            emb.clone(),
            limit,
        )
        .await?;
        sent += 1;
        *statuses.entry(a.status).or_default() += 1;
        check(
            &format!(
                "Authorization {:?}",
                String::from_utf8_lossy(&auth[..auth.len().min(40)])
            ),
            &a,
        );
    }
    // The token with a different body; the unpaid token (waits `payment_wait`, then 402, usable again).
    for (what, body) in [
        (
            "the token with another body",
            chat_body().to_string().into_bytes(),
        ),
        ("the unpaid token", emb.clone()),
        ("the unpaid token again", emb.clone()),
    ] {
        let path = if what.contains("another") {
            "/v1/chat/completions"
        } else {
            "/v1/embeddings"
        };
        let a = send(
            &http,
            post.clone(),
            &format!("{url}{path}"),
            &[
                json_ct.clone(),
                ("authorization", format!("L402 {token}").into_bytes()),
            ],
            body,
            limit,
        )
        .await?;
        sent += 1;
        *statuses.entry(a.status).or_default() += 1;
        check(what, &a);
    }
    let foreign_note = CreditNote {
        id: [1; 16],
        amount_msat: 1_000_000,
        expires_at: now + 600,
        miner: claims.miner,
    };
    for note in [
        b"garbage".to_vec(),
        b"".to_vec(),
        foreign_note.sign(&[9; 32]).into_bytes(),
        // Signed with the miner's key but never issued: no credit, a plain challenge.
        foreign_note.sign(&key).into_bytes(),
        CreditNote {
            expires_at: 0,
            ..foreign_note
        }
        .sign(&key)
        .into_bytes(),
    ] {
        let a = send(
            &http,
            post.clone(),
            &format!("{url}/v1/embeddings"),
            &[json_ct.clone(), (l402::CREDIT_HEADER, note)],
            emb.clone(),
            limit,
        )
        .await?;
        sent += 1;
        *statuses.entry(a.status).or_default() += 1;
        check("a credit note", &a);
        if a.status == 402 {
            let v: Value = serde_json::from_slice(&a.body)?;
            assert_eq!(
                v["credit_applied_msat"], 0,
                "an unissued note gives no credit"
            );
        }
    }

    // 4. Paths and methods.
    let long = format!("/v1/{}", "x".repeat(10_000));
    let paths: Vec<(reqwest::Method, &str)> = vec![
        (reqwest::Method::GET, "/v1/chat/completions"),
        (reqwest::Method::GET, "/v1/embeddings"),
        (reqwest::Method::POST, "/v1/models"),
        (reqwest::Method::PUT, "/v1/quote"),
        (reqwest::Method::DELETE, "/v1/chat/completions"),
        (reqwest::Method::PATCH, "/metrics"),
        (reqwest::Method::GET, "/v1/nothing"),
        (reqwest::Method::GET, "/"),
        (reqwest::Method::GET, "/v1/../../etc/passwd"),
        (reqwest::Method::GET, "/v1/chat/completions/%00"),
        (reqwest::Method::POST, "/v2/chat/completions"),
        (reqwest::Method::GET, &long),
    ];
    for (method, path) in paths {
        let a = send(
            &http,
            method.clone(),
            &format!("{url}{path}"),
            &[],
            emb.clone(),
            limit,
        )
        .await?;
        sent += 1;
        *statuses.entry(a.status).or_default() += 1;
        check(&format!("{method} {}", &path[..path.len().min(40)]), &a);
    }
    for path in [
        "/v1/models?x=%ff%00",
        "/v1/quote?model=",
        "/metrics?format=nope",
    ] {
        let a = send(
            &http,
            reqwest::Method::GET,
            &format!("{url}{path}"),
            &[],
            vec![],
            limit,
        )
        .await?;
        sent += 1;
        assert!(a.status < 500, "{path}: {}", a.status);
    }

    // 5. Still serving: a valid request gets its challenge with an invoice of this node.
    for (path, body) in [("/v1/embeddings", emb), ("/v1/chat/completions", chat)] {
        let a = send(
            &http,
            post.clone(),
            &format!("{url}{path}"),
            std::slice::from_ref(&json_ct),
            body,
            limit,
        )
        .await?;
        sent += 1;
        assert_eq!(a.status, 402, "a valid request after the bad ones");
        let v: Value = serde_json::from_slice(&a.body)?;
        let invoice: boltensor_ln::Bolt11Invoice =
            v["invoice"].as_str().ok_or("invoice")?.parse()?;
        assert_eq!(invoice.recover_payee_pub_key(), node.node_id());
    }
    let models = http.get(format!("{url}/v1/models")).send().await?;
    sent += 1;
    assert_eq!(models.status(), 200);
    println!("miner bad input: {sent} requests, statuses {statuses:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limit_timeout_and_secret_files() -> Result {
    let net = TestNet::start().await?;
    let node = Arc::new(net.node("miner").await?);
    let mut cfg = config(&net, "limited");
    cfg.rate_limit = boltensor_http::RateLimit {
        per_second: 1,
        burst: 5,
        exempt_loopback: false,
    };
    cfg.request_timeout = Duration::from_secs(1);
    cfg.misbehaviour = Some(Misbehaviour::Slow(Duration::from_secs(5)));
    let m = Running::start(&node, cfg).await?;
    let outcome = async {
        let http = reqwest::Client::new();
        // One valid request for a token, then the token (unpaid) runs into the slow misbehaviour and
        // the request timeout: 504, and its record is not left serving.
        let emb = emb_body().to_string().into_bytes();
        let challenge = http
            .post(format!("{}/v1/embeddings", m.url))
            .body(emb.clone())
            .send()
            .await?;
        assert_eq!(challenge.status(), 402);
        let v: Value = challenge.json().await?;
        let token = v["token"].as_str().ok_or("token")?.to_owned();
        let hash: [u8; 32] = hex::decode(v["payment_hash"].as_str().ok_or("hash")?)?
            .try_into()
            .map_err(|_| "hash length")?;
        let timed_out = http
            .post(format!("{}/v1/embeddings", m.url))
            .header("authorization", format!("L402 {token}"))
            .body(emb)
            .send()
            .await?;
        assert_eq!(timed_out.status(), 504);
        let v: Value = timed_out.json().await?;
        assert_eq!(v["error"]["type"], "timeout");
        let rec = m.miner.store().get(&hash)?.ok_or("record")?;
        assert_eq!(
            rec.status,
            boltensor_miner::store::Status::Serving,
            "cut off while serving (the resolver fails back a payment that arrives for it)"
        );
        // The rate limit: the burst is spent by now or within a few more requests.
        let mut statuses = Vec::new();
        let mut limited = None;
        for _ in 0..8 {
            let resp = http.get(format!("{}/v1/models", m.url)).send().await?;
            statuses.push(resp.status().as_u16());
            if resp.status() == 429 && limited.is_none() {
                let retry = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let v: Value = resp.json().await?;
                limited = Some((retry, v));
            }
        }
        let (retry, v) = limited.ok_or_else(|| format!("never limited: {statuses:?}"))?;
        assert!(retry.is_some_and(|s| s >= 1), "Retry-After {retry:?}");
        assert_eq!(v["error"]["type"], "rate_limit_exceeded");
        println!("rate limit: statuses {statuses:?}");
        // Secret files: the L402 key and the node's seed are readable by the owner only.
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: std::path::PathBuf| -> Result<u32> {
            Ok(std::fs::metadata(&p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .permissions()
                .mode()
                & 0o777)
        };
        assert_eq!(mode(m.data_dir.join("l402.key"))?, 0o600);
        let seed = net.dir().join("nodes").join("miner").join("keys_seed");
        let seed_mode = mode(seed)?;
        assert_eq!(seed_mode & 0o077, 0, "keys_seed mode {seed_mode:o}");
        Result::Ok(())
    }
    .await;
    m.stop().await;
    node.stop().await;
    outcome
}
