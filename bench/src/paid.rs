//! `boltensor bench paid`: one run on a real regtest network (client → coordinator → miner, ldk-node,
//! real models) measuring unpaid vs paid requests, a bare Lightning payment over the same route,
//! throughput of settled paid requests, and the time from result ready to payment settled.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use boltensor_client::{ClientConfig, PayingClient, PaymentOutcome};
use boltensor_ln::LnNode;
use boltensor_miner::backend::Backend;
use boltensor_miner::config::{default_models, default_models_dir, ModelSpec, Price};
use boltensor_miner::{Miner, MinerConfig};
use boltensor_testenv::{TestEnvError, TestNet};
use serde::Serialize;

/// What to run.
#[derive(Debug, Clone)]
pub struct PaidBenchConfig {
    /// Sequential requests per latency series.
    pub requests: usize,
    /// Sequential chat completions per series.
    pub chats: usize,
    /// `max_tokens` of each chat completion (the prompt asks for a long answer so that greedy decoding
    /// runs to it; the tokens actually generated are reported).
    pub chat_tokens: u32,
    /// Concurrent clients for the throughput run.
    pub concurrency: usize,
    /// Length of the throughput run.
    pub duration: Duration,
    /// Channels opened in parallel on each hop (HTLC slots per channel limit the throughput).
    pub channels_per_hop: usize,
}

impl Default for PaidBenchConfig {
    fn default() -> Self {
        PaidBenchConfig {
            requests: 100,
            chats: 10,
            chat_tokens: 64,
            concurrency: 32,
            duration: Duration::from_secs(10),
            channels_per_hop: 2,
        }
    }
}

/// Latency percentiles of one series, milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Series {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Series {
    fn of(mut v: Vec<Duration>) -> Self {
        v.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let pick = |q: f64| {
            if v.is_empty() {
                return 0.0;
            }
            let i = ((v.len() as f64 - 1.0) * q).round() as usize;
            ms(v[i])
        };
        Series {
            n: v.len(),
            p50_ms: pick(0.5),
            p99_ms: pick(0.99),
            mean_ms: if v.is_empty() {
                0.0
            } else {
                v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64
            },
        }
    }
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct PaidReport {
    /// Bare BOLT11 payment client → coordinator → miner (send → settled).
    pub bare_payment: Series,
    /// Embedding request to a zero-priced copy of the model (no payment).
    pub unpaid_embedding: Series,
    /// The same request paid (402 → pay → retry → settled).
    pub paid_embedding: Series,
    /// The same request paid first, as L402 agents do (402 → pay, the miner serves on the payment's
    /// arrival and claims → retry with token + preimage → the stored result).
    pub pay_first_embedding: Series,
    /// Chat completion (`chat_max_tokens`, greedy), unpaid.
    pub unpaid_chat: Series,
    /// The same, paid.
    pub paid_chat: Series,
    /// `max_tokens` of those chats.
    #[serde(default)]
    pub chat_max_tokens: u32,
    /// Completion tokens the chats generated, mean over the unpaid and paid ones (from `usage`).
    #[serde(default)]
    pub chat_completion_tokens: f64,
    /// Settled paid embedding requests per second, `concurrency` clients at once.
    pub settled_per_sec: f64,
    /// Concurrency of that run.
    pub concurrency: usize,
    /// Requests that failed in the throughput run (refused, refunded or errored).
    pub throughput_failures: usize,
    /// The first such failure.
    pub first_failure: Option<String>,
    /// Result ready (claim) → payment settled at the miner.
    pub settle: Series,
}

impl PaidReport {
    /// (paid − unpaid) / bare, at the median: what the protocol adds beyond the payment itself.
    pub fn overhead_ratio(&self) -> f64 {
        (self.paid_embedding.p50_ms - self.unpaid_embedding.p50_ms) / self.bare_payment.p50_ms
    }

    /// The same for the pay-first flow.
    pub fn pay_first_overhead_ratio(&self) -> f64 {
        (self.pay_first_embedding.p50_ms - self.unpaid_embedding.p50_ms) / self.bare_payment.p50_ms
    }

    /// A table with the goals of issue 4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let row = |out: &mut String, name: &str, s: &Series| {
            let _ = writeln!(
                out,
                "{name:<44} {:>6} {:>10.1} {:>10.1} {:>10.1}",
                s.n, s.p50_ms, s.p99_ms, s.mean_ms
            );
        };
        let _ = writeln!(
            out,
            "{:<44} {:>6} {:>10} {:>10} {:>10}",
            "series", "n", "p50 ms", "p99 ms", "mean ms"
        );
        row(
            &mut out,
            "bare Lightning payment (2 hops)",
            &self.bare_payment,
        );
        row(&mut out, "embedding, unpaid", &self.unpaid_embedding);
        row(
            &mut out,
            "embedding, paid (402, pay, retry)",
            &self.paid_embedding,
        );
        row(
            &mut out,
            "embedding, paid first (L402 agents' flow)",
            &self.pay_first_embedding,
        );
        let chat = format!(
            "chat {} tokens ({:.1} generated)",
            self.chat_max_tokens, self.chat_completion_tokens
        );
        row(&mut out, &format!("{chat}, unpaid"), &self.unpaid_chat);
        row(&mut out, &format!("{chat}, paid"), &self.paid_chat);
        row(&mut out, "result ready -> settled at miner", &self.settle);
        let _ = writeln!(
            out,
            "\nsettled paid requests/s, {} concurrent clients: {:.1} ({} failed)",
            self.concurrency, self.settled_per_sec, self.throughput_failures
        );
        if let Some(f) = &self.first_failure {
            let _ = writeln!(out, "first failure: {f}");
        }
        let goal = |ok: bool| if ok { "met" } else { "NOT met" };
        let overhead = self.overhead_ratio();
        let chat_ratio = self.paid_chat.p50_ms / self.unpaid_chat.p50_ms;
        let _ = writeln!(out, "\ngoals (issue 4), measured in this run:");
        let _ = writeln!(
            out,
            "  paid-over-unpaid overhead / bare payment (p50): {overhead:.2}x  (goal <= 1.3x: {})",
            goal(overhead <= 1.3)
        );
        let _ = writeln!(
            out,
            "  the same, paying first (p50):                   {:.2}x",
            self.pay_first_overhead_ratio()
        );
        let _ = writeln!(
            out,
            "  paid chat / unpaid chat (p50):                  {chat_ratio:.2}x  (goal <= 1.10x: {})",
            goal(chat_ratio <= 1.10)
        );
        let _ = writeln!(
            out,
            "  settled paid requests/s:                        {:.1}   (goal >= 100: {})",
            self.settled_per_sec,
            goal(self.settled_per_sec >= 100.0)
        );
        let _ = writeln!(
            out,
            "  settlement p99:                                 {:.1} ms (goal < 1000 ms: {})",
            self.settle.p99_ms,
            goal(self.settle.p99_ms < 1000.0)
        );
        out
    }
}

fn err(e: impl std::fmt::Display) -> TestEnvError {
    TestEnvError::Devnet(e.to_string())
}

/// Runs the benchmark and returns its figures.
pub async fn run(cfg: PaidBenchConfig) -> Result<PaidReport, TestEnvError> {
    let net = TestNet::start().await?;
    let client_node = Arc::new(net.node("client").await?);
    let mut coord_cfg = net.node_config("coordinator")?;
    coord_cfg.liquidity_provider = true;
    let coordinator = LnNode::start(coord_cfg).await?;
    let miner_node = Arc::new(net.node("miner").await?);
    let hops = cfg.channels_per_hop.max(1) as u64;
    net.fund(&[&client_node, &coordinator, &miner_node], hops + 1)
        .await?;
    for _ in 0..hops {
        net.open_channel(&client_node, &coordinator, 5_000_000, 0)
            .await?;
        net.open_channel(&coordinator, &miner_node, 5_000_000, 0)
            .await?;
    }

    // The shipped models, priced, plus zero-priced copies for the unpaid series.
    let dir = default_models_dir();
    let mut specs = default_models(&dir);
    let loaded = {
        let specs = specs.clone();
        tokio::task::spawn_blocking(move || boltensor_miner::load_backends(&specs))
            .await
            .map_err(err)?
            .map_err(|e| err(format!("{e} (run scripts/fetch-models.sh)")))?
    };
    let mut backends: HashMap<String, Backend> = loaded.clone();
    for spec in specs.clone() {
        let free = ModelSpec {
            id: format!("{}-free", spec.id),
            price: Price {
                per_request_msat: 0,
                per_token_msat: 0,
            },
            ..spec.clone()
        };
        backends.insert(free.id.clone(), loaded[&spec.id].clone());
        specs.push(free);
    }
    let miner = Miner::new(
        {
            // The bench measures the payment path at `concurrency` clients: admit them all (a real
            // miner turns requests beyond `max_queue` away with 429 before any invoice).
            let mut m = MinerConfig::new(specs, net.dir().join("miner-data"));
            m.max_queue = m.max_queue.max(cfg.concurrency);
            m
        },
        Arc::clone(&miner_node),
        &backends,
    )
    .map_err(err)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(err)?;
    let url = format!("http://{}", listener.local_addr().map_err(err)?);
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let served = tokio::spawn(Arc::clone(&miner).run(listener, async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    let mut ccfg = ClientConfig::new(vec![url.clone()]);
    ccfg.budget_msat = u64::MAX / 2;
    let client = PayingClient::new(ccfg, Arc::clone(&client_node));
    let http = reqwest::Client::new();
    let embed = |model: &str, i: usize| {
        serde_json::json!({"model": model, "input": format!("benchmark sentence number {i}")})
            .to_string()
            .into_bytes()
    };
    let chat_tokens = cfg.chat_tokens;
    let chat = |model: &str| {
        serde_json::json!({
            "model": model,
            "messages": [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm at sea."}],
            "max_tokens": chat_tokens,
            "temperature": 0.0,
        })
        .to_string()
        .into_bytes()
    };
    // Warm up both paths (first payment after start waits LDK's start-up delay).
    for i in 0..3 {
        one_paid(&client, "/v1/embeddings", embed("all-minilm-l6-v2", i)).await?;
    }

    tracing::info!("bare payments");
    let mut bare = Vec::new();
    for _ in 0..cfg.requests {
        let invoice = miner_node.invoice(10_000, "bench", 600)?;
        let t = Instant::now();
        client_node.pay(&invoice, Duration::from_secs(30)).await?;
        bare.push(t.elapsed());
    }
    tracing::info!("unpaid embeddings");
    let mut unpaid = Vec::new();
    for i in 0..cfg.requests {
        let t = Instant::now();
        let r = http
            .post(format!("{url}/v1/embeddings"))
            .body(embed("all-minilm-l6-v2-free", i))
            .send()
            .await
            .map_err(err)?;
        r.bytes().await.map_err(err)?;
        unpaid.push(t.elapsed());
    }
    tracing::info!("paid embeddings");
    let mut paid = Vec::new();
    for i in 0..cfg.requests {
        let t = Instant::now();
        one_paid(&client, "/v1/embeddings", embed("all-minilm-l6-v2", i)).await?;
        paid.push(t.elapsed());
    }
    tracing::info!("paid embeddings, paid first");
    let mut pay_first = Vec::new();
    for i in 0..cfg.requests {
        let body = embed("all-minilm-l6-v2", 1_000_000 + i);
        let t = Instant::now();
        one_pay_first(&http, &client_node, &url, "/v1/embeddings", body).await?;
        pay_first.push(t.elapsed());
    }
    tracing::info!("chats");
    let mut unpaid_chat = Vec::new();
    let mut paid_chat = Vec::new();
    let mut completion_tokens = Vec::new();
    for _ in 0..cfg.chats {
        let t = Instant::now();
        let r = http
            .post(format!("{url}/v1/chat/completions"))
            .body(chat("smollm2-135m-instruct-free"))
            .send()
            .await
            .map_err(err)?;
        let body = r.bytes().await.map_err(err)?;
        unpaid_chat.push(t.elapsed());
        completion_tokens.push(completion_tokens_of(&body)?);
        let t = Instant::now();
        let body = one_paid(
            &client,
            "/v1/chat/completions",
            chat("smollm2-135m-instruct"),
        )
        .await?;
        paid_chat.push(t.elapsed());
        completion_tokens.push(completion_tokens_of(&body)?);
    }

    tracing::info!(concurrency = cfg.concurrency, "throughput");
    let started = Instant::now();
    let deadline = started + cfg.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..cfg.concurrency {
        let client = client.clone();
        tasks.spawn(async move {
            let (mut ok, mut failed) = (0usize, 0usize);
            let mut first_error = None;
            let mut i = w * 1_000_000;
            while Instant::now() < deadline {
                i += 1;
                let body =
                    serde_json::json!({"model": "all-minilm-l6-v2", "input": format!("load {i}")})
                        .to_string()
                        .into_bytes();
                match one_paid(&client, "/v1/embeddings", body).await {
                    Ok(_) => ok += 1,
                    Err(e) => {
                        failed += 1;
                        first_error.get_or_insert(e.to_string());
                    }
                }
            }
            (ok, failed, first_error)
        });
    }
    let (mut ok, mut failed) = (0, 0);
    let mut failure = None;
    while let Some(r) = tasks.join_next().await {
        let (o, f, e) = r.map_err(err)?;
        ok += o;
        failed += f;
        failure = failure.or(e);
    }
    let elapsed = started.elapsed();

    let report = PaidReport {
        bare_payment: Series::of(bare),
        unpaid_embedding: Series::of(unpaid),
        paid_embedding: Series::of(paid),
        pay_first_embedding: Series::of(pay_first),
        unpaid_chat: Series::of(unpaid_chat),
        paid_chat: Series::of(paid_chat),
        chat_max_tokens: cfg.chat_tokens,
        chat_completion_tokens: completion_tokens.iter().sum::<u64>() as f64
            / completion_tokens.len().max(1) as f64,
        settled_per_sec: ok as f64 / elapsed.as_secs_f64(),
        concurrency: cfg.concurrency,
        throughput_failures: failed,
        first_failure: failure,
        settle: Series::of(miner.settle_latencies()),
    };
    let _ = stop_tx.send(true);
    let _ = served.await;
    drop(miner);
    client_node.stop().await;
    coordinator.stop().await;
    miner_node.stop().await;
    Ok(report)
}

/// One request paid first, as L402 agents do it: the 402, the invoice paid (it settles once the miner
/// served the kept request and stored the result), then the request again with token + preimage.
async fn one_pay_first(
    http: &reqwest::Client,
    node: &LnNode,
    url: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<(), TestEnvError> {
    let r = http
        .post(format!("{url}{path}"))
        .body(body.clone())
        .send()
        .await
        .map_err(err)?;
    if r.status() != reqwest::StatusCode::PAYMENT_REQUIRED {
        return Err(err(format!("expected 402, got {}", r.status())));
    }
    let challenge: serde_json::Value = r.json().await.map_err(err)?;
    let (Some(token), Some(invoice)) = (challenge["token"].as_str(), challenge["invoice"].as_str())
    else {
        return Err(err("402 without token or invoice"));
    };
    let invoice = boltensor_ln::parse_invoice(invoice).map_err(err)?;
    let sent = node.pay(&invoice, Duration::from_secs(60)).await?;
    let preimage = sent.preimage.ok_or_else(|| err("no preimage"))?;
    let r = http
        .post(format!("{url}{path}"))
        .header(
            "authorization",
            format!("L402 {token}:{}", hex::encode(preimage.0)),
        )
        .body(body)
        .send()
        .await
        .map_err(err)?;
    let status = r.status();
    r.bytes().await.map_err(err)?;
    if status.is_success() {
        Ok(())
    } else {
        Err(err(format!("the stored result: {status}")))
    }
}

/// One paid request, complete: the response read and the payment settled.
/// `usage.completion_tokens` of a chat completion's body.
fn completion_tokens_of(body: &[u8]) -> Result<u64, TestEnvError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(err)?;
    v["usage"]["completion_tokens"].as_u64().ok_or_else(|| {
        err(format!(
            "no usage.completion_tokens in {}",
            String::from_utf8_lossy(body)
        ))
    })
}

async fn one_paid(
    client: &PayingClient,
    path: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, TestEnvError> {
    let mut paid = client.post(path, body).await.map_err(err)?;
    let status = paid.response.status();
    let outcome = paid.outcome().await;
    let body = paid.response.bytes().await.map_err(err)?;
    match outcome {
        Some(PaymentOutcome::Settled { .. }) if status.is_success() => Ok(body.to_vec()),
        other => Err(err(format!("{status}: {other:?}"))),
    }
}
