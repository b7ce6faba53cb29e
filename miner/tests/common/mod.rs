//! A miner on the real daemons for the attack tests: regtest bitcoind, the miner's ldk-node node, an
//! attacker's ldk-node node with a channel to it, the miner serving real models on a free port, and the
//! attacker's side of a paid request over HTTP.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use boltensor_ln::{parse_invoice, LnNode};
use boltensor_miner::config::{default_models, default_models_dir};
use boltensor_miner::{Miner, MinerConfig, Price};
use boltensor_testenv::TestNet;
use serde_json::Value;
use tokio::sync::watch;

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T = ()> = std::result::Result<T, Error>;

pub const EMB: &str = "all-minilm-l6-v2";
pub const CHAT: &str = "smollm2-135m-instruct";

/// The network: fields drop in order (miner, nodes, then `net`, which deletes the directory).
pub struct AttackNet {
    pub miner: Arc<Miner>,
    pub url: String,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub attacker: Arc<LnNode>,
    pub miner_node: Arc<LnNode>,
    pub net: TestNet,
}

impl AttackNet {
    /// Starts the network with a miner serving `models` (ids of the default models), priced `price`,
    /// configured by `tune`. The attacker has a 1,000,000 sat channel to the miner.
    pub async fn start(
        models: &[&str],
        price: Price,
        tune: impl FnOnce(&mut MinerConfig),
    ) -> Result<Self> {
        let net = TestNet::start().await?;
        let attacker = Arc::new(net.node("attacker").await?);
        let miner_node = Arc::new(net.node("miner").await?);
        net.fund(&[&attacker], 1).await?;
        net.open_channel(&attacker, &miner_node, 1_000_000, 0)
            .await?;
        let mut specs: Vec<_> = default_models(&default_models_dir())
            .into_iter()
            .filter(|s| models.contains(&s.id.as_str()))
            .collect();
        for s in &mut specs {
            s.price = price;
        }
        let mut cfg = MinerConfig::new(specs, net.dir().join("miner-data"));
        tune(&mut cfg);
        let backends = boltensor_miner::load_backends(&cfg.models)?;
        let miner = Miner::new(cfg, Arc::clone(&miner_node), &backends)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, mut rx) = watch::channel(false);
        let task = tokio::spawn(Arc::clone(&miner).run(listener, async move {
            let _ = rx.wait_for(|s| *s).await;
        }));
        Ok(AttackNet {
            miner,
            url,
            stop,
            task: Some(task),
            attacker,
            miner_node,
            net,
        })
    }

    /// Stops the miner (resolving its held payments) and both nodes.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.attacker.stop().await;
        self.miner_node.stop().await;
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// POSTs `body` to `url` + `path` with optional `Authorization` and credit-note headers.
pub async fn post(
    url: &str,
    path: &str,
    body: &Value,
    auth: Option<&str>,
    credit: Option<&str>,
) -> Result<Answer> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let mut req = http.post(format!("{url}{path}")).json(body);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if let Some(c) = credit {
        req = req.header(boltensor_protocol::l402::CREDIT_HEADER, c);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Answer {
        status,
        headers,
        body,
        text,
    })
}

/// A 402 challenge: its token, invoice, price and the credit it applied.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub token: String,
    pub invoice: String,
    pub price_msat: u64,
    pub gross_msat: u64,
    pub credit_applied_msat: u64,
    pub payment_hash: [u8; 32],
}

/// Asks for a challenge (an unpaid request), optionally redeeming a credit note.
pub async fn challenge(
    url: &str,
    path: &str,
    body: &Value,
    credit: Option<&str>,
) -> Result<Challenge> {
    let a = post(url, path, body, None, credit).await?;
    if a.status != 402 {
        return Err(format!("expected 402, got {}: {}", a.status, a.text).into());
    }
    let b = &a.body;
    let hash_hex = b["payment_hash"].as_str().ok_or("payment_hash")?;
    Ok(Challenge {
        token: b["token"].as_str().ok_or("token")?.to_owned(),
        invoice: b["invoice"].as_str().ok_or("invoice")?.to_owned(),
        price_msat: b["price_msat"].as_u64().ok_or("price_msat")?,
        gross_msat: b["gross_price_msat"].as_u64().ok_or("gross")?,
        credit_applied_msat: b["credit_applied_msat"].as_u64().ok_or("credit")?,
        payment_hash: hex::decode(hash_hex)?
            .try_into()
            .map_err(|_| "hash length")?,
    })
}

/// Pays `c` from `payer` and sends its token: the attacker's side of one paid request. Returns the
/// answer and the preimage revealed.
pub async fn pay_and_use(
    payer: &LnNode,
    url: &str,
    path: &str,
    body: &Value,
    c: &Challenge,
) -> Result<(Answer, [u8; 32])> {
    let invoice = parse_invoice(&c.invoice)?;
    let pending = payer.send(&invoice)?;
    let answer = post(url, path, body, Some(&format!("L402 {}", c.token)), None).await?;
    let sent = pending.outcome(Duration::from_secs(60)).await?;
    let preimage = sent.preimage.ok_or("no preimage")?.0;
    Ok((answer, preimage))
}
