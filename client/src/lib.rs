//! The client side of a paid request: [`PayingClient`] does the 402 → pay → retry dance against miners,
//! within a price limit and a budget, and [`proxy`] puts it behind a local OpenAI-compatible endpoint so
//! any OpenAI SDK works unmodified.
//!
//! # Layout
//! - [`PayingClient`], [`ClientConfig`], [`Spend`], [`ClientError`]: the library.
//! - [`directory`]: [`MinerDirectory`], which picks a miner per request from the coordinator federation's
//!   `GET /v1/miners` by score (the static miner list is the fallback).
//! - [`proxy`]: `router(client)` for `boltensor client proxy`.
//!
//! The client's guarantee comes from the hold invoice: its payment settles only when the miner claims it,
//! which the miner does only with the result in hand; otherwise it is failed back and the funds return.

pub mod directory;
pub mod mcp;
pub mod proxy;

pub use directory::{DirectoryConfig, DirectoryError, MinerDirectory};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boltensor_ln::{parse_invoice, LnError, LnNode};
use boltensor_protocol::l402::{self, Challenge, PaymentClaims};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

/// What the client may spend and where it sends requests.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// Miner base URLs, e.g. `http://127.0.0.1:8081` (tried in turn). With coordinators configured in
    /// [`ClientConfig::directory`], the fallback when none of them answers.
    pub miners: Vec<String>,
    /// Where to look miners up by model and score (no coordinators: only [`ClientConfig::miners`]).
    pub directory: DirectoryConfig,
    /// Refuse any single request priced above this.
    pub max_price_msat: u64,
    /// Refuse requests once this much has been spent or reserved in total.
    pub budget_msat: u64,
    /// How long to wait for a payment to settle or fail after the miner answered.
    pub payment_timeout: Duration,
    /// HTTP timeout per request to a miner (generation included).
    pub request_timeout: Duration,
}

impl ClientConfig {
    /// Defaults: 100 sat per request at most, 10,000 sat in total.
    pub fn new(miners: Vec<String>) -> Self {
        ClientConfig {
            miners,
            directory: DirectoryConfig::default(),
            max_price_msat: 100_000,
            budget_msat: 10_000_000,
            payment_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(180),
        }
    }
}

/// Why a request was not made or not paid. No variant leaves funds in doubt: either nothing was paid,
/// or the payment's outcome is tracked in [`Spend`].
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No miner configured.
    #[error("no miner configured")]
    NoMiners,
    /// The miner could not be reached or its answer read.
    #[error("miner {miner} unreachable: {reason}")]
    Unreachable {
        /// The miner URL.
        miner: String,
        /// Why.
        reason: String,
    },
    /// The miner turned the request away before any invoice (429: its model's queue is full, or this
    /// client sends too fast): nothing was paid; another miner may be asked.
    #[error("miner {miner} is busy: {reason}; nothing was paid")]
    Busy {
        /// The miner URL.
        miner: String,
        /// Seconds the miner asked to wait (its `Retry-After`).
        retry_after_secs: u64,
        /// What it said.
        reason: String,
    },
    /// The 402 did not carry a usable L402 challenge.
    #[error("miner {miner} sent a bad payment challenge: {reason}")]
    BadChallenge {
        /// The miner URL.
        miner: String,
        /// Why.
        reason: String,
    },
    /// The price is above the per-request maximum: nothing was paid.
    #[error("price {price_msat} msat is above the maximum of {max_msat} msat per request; nothing was paid")]
    PriceTooHigh {
        /// Asked.
        price_msat: u64,
        /// Allowed.
        max_msat: u64,
    },
    /// The budget would be exceeded: nothing was paid.
    #[error("price {price_msat} msat exceeds the remaining budget of {remaining_msat} msat; nothing was paid")]
    BudgetExceeded {
        /// Asked.
        price_msat: u64,
        /// Left.
        remaining_msat: u64,
    },
    /// The invoice does not pay the miner that was chosen (its payee is another node than the token's
    /// miner or the miner's registered node id): nothing was paid.
    #[error(
        "miner {miner} handed out an invoice paying node {payee}, not {expected}; nothing was paid"
    )]
    WrongPayee {
        /// The miner URL.
        miner: String,
        /// The node the invoice pays.
        payee: String,
        /// The node it had to pay (the registered node id, or the token's miner).
        expected: String,
    },
    /// The payment could not be sent (no route, say): nothing was paid.
    #[error("could not pay the invoice: {0}")]
    Payment(#[from] LnError),
    /// Paid, but the miner's answer was lost and could not be fetched again yet; the payment is
    /// tracked in [`Spend`] (it settles with the stored result, or the miner fails it back). Not retried
    /// at another miner, which would pay twice.
    #[error("paid miner {miner} (payment {payment_hash}) but its answer was lost: {reason}; not paying another miner")]
    AnswerLost {
        /// The miner URL.
        miner: String,
        /// The payment, hex.
        payment_hash: String,
        /// Why.
        reason: String,
    },
}

/// How a paid request's payment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    /// Settled: the miner delivered and claimed. The preimage is the proof.
    Settled {
        /// Routing fees on top of the price.
        fee_msat: u64,
        /// Proof of payment, hex.
        preimage: String,
    },
    /// Failed back: the funds are with the client again.
    Refunded {
        /// Why.
        reason: String,
    },
    /// Neither within the timeout (still held at the miner; it will settle or fail back later).
    Pending,
}

/// What the client has spent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    /// Requests sent (paid or not).
    pub requests: u64,
    /// Requests whose payment settled.
    pub paid_requests: u64,
    /// Sum of settled prices.
    pub spent_msat: u64,
    /// Sum of routing fees on settled payments.
    pub fees_msat: u64,
    /// Payments failed back (refunded in full).
    pub refunded: u64,
    /// Payments in flight.
    pub in_flight_msat: u64,
    /// The budget.
    pub budget_msat: u64,
    /// Credit notes held, msat (unused parts of generation reservations, redeemable at their miner).
    pub credit_msat: u64,
    /// Settled prices per miner.
    pub by_miner: BTreeMap<String, u64>,
    /// Requests sent per miner (paid or not, answered or not).
    #[serde(default)]
    pub requests_by_miner: BTreeMap<String, u64>,
}

struct Inner {
    cfg: ClientConfig,
    node: Arc<LnNode>,
    http: reqwest::Client,
    spend: Mutex<Spend>,
    /// Credit note token and value per miner.
    credits: Mutex<HashMap<String, (String, u64)>>,
    next: Mutex<usize>,
    directory: Option<MinerDirectory>,
}

/// Pays miners per request from its own Lightning node.
#[derive(Clone)]
pub struct PayingClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PayingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayingClient")
            .field("miners", &self.inner.cfg.miners)
            .finish_non_exhaustive()
    }
}

/// A miner's answer to a request, with its payment.
#[derive(Debug)]
pub struct Paid {
    /// The miner that answered.
    pub miner: String,
    /// Its HTTP response (status, headers, body — possibly a stream).
    pub response: reqwest::Response,
    /// The price paid (0 when the request needed no payment or was refused before paying).
    pub price_msat: u64,
    /// Payment hash, hex, when paid.
    pub payment_hash: Option<String>,
    /// The L402 token paid for, when paid (with the preimage it fetches the stored result again:
    /// [`PayingClient::refetch`]).
    pub token: Option<String>,
    outcome: Option<tokio::task::JoinHandle<PaymentOutcome>>,
}

impl Paid {
    /// Waits for the payment's outcome (immediately `None` if nothing was paid).
    pub async fn outcome(&mut self) -> Option<PaymentOutcome> {
        let handle = self.outcome.take()?;
        Some(handle.await.unwrap_or(PaymentOutcome::Pending))
    }

    /// Takes the outcome handle, to await it elsewhere (a streamed body, say).
    pub fn take_outcome(&mut self) -> Option<tokio::task::JoinHandle<PaymentOutcome>> {
        self.outcome.take()
    }
}

/// Puts a credit note back when its request ends without redeeming it (the miner left it unspent).
struct CreditGuard {
    inner: Arc<Inner>,
    miner: String,
    note: Option<(String, u64)>,
}

impl Drop for CreditGuard {
    fn drop(&mut self) {
        if let Some(note) = self.note.take() {
            lock(&self.inner.credits)
                .entry(self.miner.clone())
                .or_insert(note);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PayingClient {
    /// A client paying from `node`.
    pub fn new(cfg: ClientConfig, node: Arc<LnNode>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            // A miner that does not accept the connection is failed over (and backed off) quickly.
            .connect_timeout(cfg.request_timeout.min(Duration::from_secs(10)))
            .build()
            .unwrap_or_default();
        let spend = Spend {
            budget_msat: cfg.budget_msat,
            ..Spend::default()
        };
        let directory = (!cfg.directory.coordinators.is_empty())
            .then(|| MinerDirectory::new(cfg.directory.clone()));
        PayingClient {
            inner: Arc::new(Inner {
                cfg,
                node,
                http,
                spend: Mutex::new(spend),
                credits: Mutex::new(HashMap::new()),
                next: Mutex::new(0),
                directory,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    /// The miner directory, when coordinators are configured.
    pub fn directory(&self) -> Option<&MinerDirectory> {
        self.inner.directory.as_ref()
    }

    /// What has been spent so far.
    pub fn spend(&self) -> Spend {
        let mut s = lock(&self.inner.spend).clone();
        s.credit_msat = lock(&self.inner.credits).values().map(|c| c.1).sum();
        s
    }

    /// Sends a GET to the first miner that answers (free endpoints: `/v1/models`, `/v1/quote`).
    pub async fn get(&self, path: &str) -> Result<(String, reqwest::Response), ClientError> {
        let mut last = ClientError::NoMiners;
        for miner in self.order(None).await {
            match self.inner.http.get(format!("{miner}{path}")).send().await {
                Ok(resp) => {
                    self.report(&miner, true);
                    return Ok((miner, resp));
                }
                Err(e) => {
                    self.report(&miner, false);
                    last = ClientError::Unreachable {
                        miner,
                        reason: e.to_string(),
                    }
                }
            }
        }
        Err(last)
    }

    /// The miners a request for `model` tries, in order: from the directory (weighted by the
    /// federation's score, recently failed miners last) when coordinators are configured and answer,
    /// then the static list; without a directory, the static list in turn (round robin).
    pub async fn order(&self, model: Option<&str>) -> Vec<String> {
        self.targets(model)
            .await
            .into_iter()
            .map(|(u, _)| u)
            .collect()
    }

    /// [`PayingClient::order`] with each miner's registered node id (hex) where the directory lists
    /// it: a request to that miner pays only an invoice whose payee is that node.
    pub async fn targets(&self, model: Option<&str>) -> Vec<(String, Option<String>)> {
        match &self.inner.directory {
            Some(dir) => dir.candidate_targets(model, &self.inner.cfg.miners).await,
            None => self.round_robin().into_iter().map(|u| (u, None)).collect(),
        }
    }

    fn report(&self, miner: &str, ok: bool) {
        if let Some(dir) = &self.inner.directory {
            if ok {
                dir.report_success(miner);
            } else {
                dir.report_failure(miner);
            }
        }
    }

    fn round_robin(&self) -> Vec<String> {
        let miners = &self.inner.cfg.miners;
        if miners.is_empty() {
            return Vec::new();
        }
        let start = {
            let mut next = lock(&self.inner.next);
            let s = *next % miners.len();
            *next = next.wrapping_add(1);
            s
        };
        (0..miners.len())
            .map(|i| miners[(start + i) % miners.len()].clone())
            .collect()
    }

    /// POSTs `body` to `path` at a miner (chosen by [`PayingClient::order`] for the body's `"model"`; the
    /// next one if it is unreachable), paying its 402 challenge within the limits, and returns the
    /// miner's answer to the paid request. A miner that is unreachable, sends a bad challenge or answers
    /// 5xx is backed off in the directory.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> Result<Paid, ClientError> {
        lock(&self.inner.spend).requests += 1;
        let model = if self.inner.directory.is_some() {
            request_model(&body)
        } else {
            None
        };
        let mut last = ClientError::NoMiners;
        for (miner, node_id) in self.targets(model.as_deref()).await {
            match self
                .post_to_node(&miner, node_id.as_deref(), path, body.clone())
                .await
            {
                // Nothing paid (or paid and failed back): the next miner may be asked.
                Err(e @ (ClientError::Unreachable { .. } | ClientError::WrongPayee { .. })) => {
                    self.report(&miner, false);
                    last = e
                }
                Err(e @ ClientError::BadChallenge { .. }) => {
                    self.report(&miner, false);
                    return Err(e);
                }
                // Turned away before any invoice: a healthy miner with a full queue; ask the next.
                Err(e @ ClientError::Busy { .. }) => last = e,
                Ok(paid) => {
                    self.report(&miner, !paid.response.status().is_server_error());
                    return Ok(paid);
                }
                other => return other,
            }
        }
        Err(last)
    }

    /// Like [`PayingClient::post`], at one miner (given by URL only: its invoice must pay the node its
    /// token names).
    pub async fn post_to(
        &self,
        miner: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Paid, ClientError> {
        self.post_to_node(miner, None, path, body).await
    }

    /// Like [`PayingClient::post_to`], at a miner whose node id (hex) is known (registered with the
    /// federation): its invoice must pay exactly that node, or nothing is paid
    /// ([`ClientError::WrongPayee`]).
    ///
    /// If the answer to the paid request is lost (the connection drops), the payment's outcome is
    /// awaited: settled — the result is fetched again from the same miner with token + preimage;
    /// failed back — [`ClientError::Unreachable`] (nothing spent; another miner may be asked);
    /// neither — [`ClientError::AnswerLost`] (never another miner: that would pay twice).
    pub async fn post_to_node(
        &self,
        miner: &str,
        node_id: Option<&str>,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Paid, ClientError> {
        self.post_to_node_capped(miner, node_id, path, body, u64::MAX)
            .await
    }

    /// [`PayingClient::post_to_node`], paying at most `cap_msat` for this one request (beside the
    /// configured `max_price_msat`): a dearer 402 is answered with [`ClientError::PriceTooHigh`] and
    /// nothing is paid. A validator caps each challenge by what its spend policy has left.
    pub async fn post_to_node_capped(
        &self,
        miner: &str,
        node_id: Option<&str>,
        path: &str,
        body: Vec<u8>,
        cap_msat: u64,
    ) -> Result<Paid, ClientError> {
        let inner = &self.inner;
        *lock(&inner.spend)
            .requests_by_miner
            .entry(miner.to_owned())
            .or_insert(0) += 1;
        let url = format!("{miner}{path}");
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            miner: miner.to_owned(),
            reason: e.to_string(),
        };
        // A credit note goes with one request at a time: take it out while that request is open.
        let mut credit_guard = CreditGuard {
            inner: Arc::clone(&self.inner),
            miner: miner.to_owned(),
            note: lock(&inner.credits).remove(miner),
        };
        let mut first = inner
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.clone());
        if let Some((token, _)) = &credit_guard.note {
            first = first.header(l402::CREDIT_HEADER, token);
        }
        let resp = first.send().await.map_err(unreachable)?;
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry_after_secs = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(1);
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            return Err(ClientError::Busy {
                miner: miner.to_owned(),
                retry_after_secs,
                reason: body["error"]["message"]
                    .as_str()
                    .unwrap_or("429 Too Many Requests")
                    .to_owned(),
            });
        }
        if resp.status() != StatusCode::PAYMENT_REQUIRED {
            return Ok(Paid {
                miner: miner.to_owned(),
                response: resp,
                price_msat: 0,
                payment_hash: None,
                token: None,
                outcome: None,
            });
        }
        let bad = |reason: String| ClientError::BadChallenge {
            miner: miner.to_owned(),
            reason,
        };
        let header = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| bad("402 without WWW-Authenticate".into()))?;
        let challenge = Challenge::parse(header).map_err(|e| bad(e.to_string()))?;
        let invoice = parse_invoice(&challenge.invoice).map_err(|e| bad(e.to_string()))?;
        let claims =
            PaymentClaims::decode_unverified(&challenge.token).map_err(|e| bad(e.to_string()))?;
        let price = invoice
            .amount_milli_satoshis()
            .ok_or_else(|| bad("invoice without an amount".into()))?;
        use boltensor_ln::bitcoin::hashes::Hash as _;
        if claims.payment_hash != invoice.payment_hash().to_byte_array()
            || claims.price_msat != price
        {
            return Err(bad("token and invoice disagree on hash or price".into()));
        }
        // The invoice must pay the miner the token names and, when it is known, the node the miner
        // registered: otherwise whoever handed out the 402 (a registration naming someone else's URL,
        // a man in the middle) would be paid for another's work.
        let payee = hex::encode(invoice.get_payee_pub_key().serialize());
        let token_miner = hex::encode(claims.miner);
        let expected = node_id.map(str::to_ascii_lowercase);
        for want in [Some(token_miner), expected].into_iter().flatten() {
            if payee != want {
                tracing::warn!(%miner, %payee, expected = %want, "invoice pays another node; refused");
                return Err(ClientError::WrongPayee {
                    miner: miner.to_owned(),
                    payee,
                    expected: want,
                });
            }
        }
        let max_msat = inner.cfg.max_price_msat.min(cap_msat);
        if price > max_msat {
            return Err(ClientError::PriceTooHigh {
                price_msat: price,
                max_msat,
            });
        }
        if claims.credit_msat == 0 {
            // The miner refused the note (spent or expired), or there was none: forget it.
            credit_guard.note = None;
        }
        // Built before paying, so that nothing after the payment can fail for want of it.
        let auth = HeaderValue::from_str(&format!("L402 {}", challenge.token))
            .map_err(|e| bad(e.to_string()))?;
        {
            let mut s = lock(&inner.spend);
            let committed = s.spent_msat + s.in_flight_msat;
            if committed + price > inner.cfg.budget_msat {
                return Err(ClientError::BudgetExceeded {
                    price_msat: price,
                    remaining_msat: inner.cfg.budget_msat.saturating_sub(committed),
                });
            }
            s.in_flight_msat += price;
        }
        let pending = match inner.node.send(&invoice) {
            Ok(p) => p,
            Err(e) => {
                lock(&inner.spend).in_flight_msat -= price;
                return Err(e.into());
            }
        };
        let hash = hex::encode(claims.payment_hash);
        tracing::debug!(%miner, payment_hash = %hash, price_msat = price, "paying");
        // Track the outcome in the background: it settles when the miner claims (with the result in
        // hand) or fails back.
        let outcome = {
            let inner = Arc::clone(&self.inner);
            let miner = miner.to_owned();
            let timeout = inner.cfg.payment_timeout;
            tokio::spawn(async move {
                let result = pending.outcome(timeout).await;
                let mut s = lock(&inner.spend);
                match result {
                    Ok(sent) => {
                        s.in_flight_msat -= price;
                        s.paid_requests += 1;
                        s.spent_msat += price;
                        s.fees_msat += sent.fee_paid_msat;
                        *s.by_miner.entry(miner).or_insert(0) += price;
                        PaymentOutcome::Settled {
                            fee_msat: sent.fee_paid_msat,
                            preimage: sent.preimage.map(|p| hex::encode(p.0)).unwrap_or_default(),
                        }
                    }
                    Err(LnError::Timeout { .. }) => PaymentOutcome::Pending,
                    Err(e) => {
                        s.in_flight_msat -= price;
                        s.refunded += 1;
                        PaymentOutcome::Refunded {
                            reason: e.to_string(),
                        }
                    }
                }
            })
        };
        let resp = inner
            .http
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, auth)
            .body(body.clone())
            .send()
            .await;
        // No answer to keep: the answer was lost after paying (wait a little for the payment: a miner
        // that died holding it fails it back when it restarts, maybe much later, and the outcome task goes
        // on tracking it), or the miner answered 409 because the payment reached it first and it ran the
        // request it kept with the challenge (pay-first L402), claiming once the result is stored (wait for
        // it). Either way, settled means the result is stored at that miner: fetch it again there with
        // token + preimage rather than pay another miner for the same request.
        let resp = match resp {
            Ok(r) if r.status() == StatusCode::CONFLICT => Err((
                inner.cfg.request_timeout,
                "409: the miner served this request when its payment arrived".to_owned(),
            )),
            Ok(r) => Ok(r),
            Err(e) => Err((
                inner.cfg.request_timeout.min(Duration::from_secs(10)),
                e.to_string(),
            )),
        };
        let resp = match resp {
            Ok(r) => r,
            Err((wait, reason)) => {
                let mut outcome = outcome;
                let outcome = match tokio::time::timeout(wait, &mut outcome).await {
                    Ok(done) => done.unwrap_or(PaymentOutcome::Pending),
                    Err(_) => PaymentOutcome::Pending,
                };
                if matches!(outcome, PaymentOutcome::Settled { .. }) {
                    // The credit note went with the settled request.
                    credit_guard.note = None;
                }
                return self
                    .recover(
                        miner,
                        path,
                        body,
                        &challenge.token,
                        &hash,
                        price,
                        outcome,
                        reason,
                    )
                    .await;
            }
        };
        if resp.status().is_success() {
            // Redeemed (or not needed): the miner's new note, if any, replaces it.
            credit_guard.note = None;
            self.update_credit(miner, resp.headers());
        }
        Ok(Paid {
            miner: miner.to_owned(),
            response: resp,
            price_msat: price,
            payment_hash: Some(hash),
            token: Some(challenge.token),
            outcome: Some(outcome),
        })
    }

    /// After a paid request's answer was lost: the stored result when the payment settled, else an
    /// error that says whether another miner may be asked.
    #[allow(clippy::too_many_arguments)]
    async fn recover(
        &self,
        miner: &str,
        path: &str,
        body: Vec<u8>,
        token: &str,
        hash: &str,
        price: u64,
        outcome: PaymentOutcome,
        error: String,
    ) -> Result<Paid, ClientError> {
        let lost = |reason: String| ClientError::AnswerLost {
            miner: miner.to_owned(),
            payment_hash: hash.to_owned(),
            reason,
        };
        let preimage = match &outcome {
            PaymentOutcome::Refunded { .. } => {
                return Err(ClientError::Unreachable {
                    miner: miner.to_owned(),
                    reason: format!("{error} (the payment was failed back)"),
                })
            }
            PaymentOutcome::Pending => {
                return Err(lost(format!("{error}; the payment is still pending")))
            }
            PaymentOutcome::Settled { preimage, .. } => preimage.clone(),
        };
        tracing::info!(%miner, payment_hash = %hash, error = %error, "answer lost after payment; fetching it again");
        let deadline =
            std::time::Instant::now() + self.inner.cfg.request_timeout.min(Duration::from_secs(30));
        let mut last;
        loop {
            match self
                .refetch(miner, path, body.clone(), token, &preimage)
                .await
            {
                Ok(resp) if resp.status().is_success() => {
                    self.update_credit(miner, resp.headers());
                    return Ok(Paid {
                        miner: miner.to_owned(),
                        response: resp,
                        price_msat: price,
                        payment_hash: Some(hash.to_owned()),
                        token: Some(token.to_owned()),
                        outcome: Some(tokio::spawn(std::future::ready(outcome))),
                    });
                }
                Ok(resp) => last = format!("re-fetch answered {}", resp.status()),
                Err(e) => last = e.to_string(),
            }
            if std::time::Instant::now() >= deadline {
                return Err(lost(last));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Fetches the stored result of a settled request again from `miner`: the same request with
    /// `Authorization: L402 <token>:<preimage>` (after a lost answer).
    pub async fn refetch(
        &self,
        miner: &str,
        path: &str,
        body: Vec<u8>,
        token: &str,
        preimage: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let auth = HeaderValue::from_str(&format!("L402 {token}:{preimage}")).map_err(|e| {
            ClientError::BadChallenge {
                miner: miner.to_owned(),
                reason: e.to_string(),
            }
        })?;
        self.inner
            .http
            .post(format!("{miner}{path}"))
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, auth)
            .body(body)
            .send()
            .await
            .map_err(|e| ClientError::Unreachable {
                miner: miner.to_owned(),
                reason: e.to_string(),
            })
    }

    /// The body of a streamed (server-sent events) paid answer from `miner`, passed through as it comes.
    /// The credit note a miner can only send at the end of a stream (an SSE comment line,
    /// [`l402::parse_stream_credit_line`]) is kept for the next request to that miner, as the
    /// `x-boltensor-new-credit` header of an answer that is not streamed is.
    pub fn sse_body(
        &self,
        miner: &str,
        resp: reqwest::Response,
    ) -> impl futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Send + 'static {
        use futures_util::StreamExt;
        // SSE lines here are short; a longer one is no credit line and is not kept whole.
        const MAX_LINE: usize = 4096;
        let client = self.clone();
        let miner = miner.to_owned();
        let mut line: Vec<u8> = Vec::new();
        resp.bytes_stream().map(move |chunk| {
            if let Ok(bytes) = &chunk {
                for &b in bytes.iter() {
                    if b != b'\n' {
                        if line.len() < MAX_LINE {
                            line.push(b);
                        }
                        continue;
                    }
                    let credit = std::str::from_utf8(&line)
                        .ok()
                        .and_then(|l| l402::parse_stream_credit_line(l.trim_end_matches('\r')));
                    if let Some((note, msat)) = credit {
                        lock(&client.inner.credits).insert(miner.clone(), (note.to_owned(), msat));
                    }
                    line.clear();
                }
            }
            chunk
        })
    }

    fn update_credit(&self, miner: &str, headers: &HeaderMap) {
        let mut credits = lock(&self.inner.credits);
        let new = headers
            .get(l402::NEW_CREDIT_HEADER)
            .and_then(|v| v.to_str().ok());
        let msat = headers
            .get(l402::NEW_CREDIT_MSAT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(token), Some(msat)) = (new, msat) {
            credits.insert(miner.to_owned(), (token.to_owned(), msat));
        }
    }
}

/// The `"model"` field of an OpenAI request body, if any.
fn request_model(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ModelOnly {
        model: Option<String>,
    }
    serde_json::from_slice::<ModelOnly>(body).ok()?.model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_is_read_from_the_body() {
        assert_eq!(
            request_model(br#"{"model":"all-minilm-l6-v2","input":["x"]}"#).as_deref(),
            Some("all-minilm-l6-v2")
        );
        assert_eq!(request_model(br#"{"input":"x"}"#), None);
        assert_eq!(request_model(b"not json"), None);
    }
}
