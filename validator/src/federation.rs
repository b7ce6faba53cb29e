//! The validator's side of the coordinator federation: learn the epoch and the miners, fund and prove a
//! bond, register, and deliver each epoch's signed weight vector.
//!
//! The federation tolerates f Byzantine members out of n ≥ 3f + 1, so the validator never trusts one
//! member: [`FederationClient`] knows several coordinator URLs (configure more than f), asks them all,
//! and submits every item to every one of them — a crashed member or one that drops the item cannot
//! keep it out, because any honest member that queued it gets it ordered. Answers are read so:
//!
//! - the epoch is the median of the epochs the members report (a lone liar cannot move it outside the
//!   honest members' range; a member that lags by a session is harmless);
//! - the miners are merged as the client's directory merges them (`boltensor_client::directory::merge`):
//!   a miner counts only if a strict majority of the answering members list it, with the API URL a
//!   strict majority reports — so a lying member can neither add a miner, nor move one's URL, nor
//!   swap its node id, and one hiding a miner does not hide it from the others' majority;
//! - a submission is delivered once any member answers 202 (queued) or says it already has that exact
//!   vector ("duplicate"). Resubmitting the same signed vector is always safe; a different vector for
//!   the same epoch is equivocation and is never produced (the validator stores what it signed).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bitcoin::secp256k1::{Keypair, PublicKey};
use bitcoin::{Amount, Network, OutPoint, Txid};
use boltensor_contracts::{BitcoindRpc, Bond, BondClaims, BondProof, Federation};
use boltensor_coordinator::items::{ConsensusItem, Registration};
use boltensor_coordinator::store::SignedEpoch;
use boltensor_coordinator::FederationConfig;
use boltensor_ln::LnNode;
use boltensor_protocol::weights::SignedWeights;
use boltensor_protocol::Role;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why talking to the federation failed.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// No coordinator URL is configured.
    #[error("no coordinator configured")]
    NoCoordinators,
    /// No member answered (each URL with its error).
    #[error("no coordinator answered: {}", fmt_pairs(.0))]
    Unreachable(Vec<(String, String)>),
    /// Every member that answered refused (each URL with its reason).
    #[error("every coordinator refused: {}", fmt_pairs(.0))]
    Refused(Vec<(String, String)>),
    /// The federation already collects a later epoch than the vector's: sign the new epoch instead.
    #[error("the federation collects epoch {collecting}; the vector is for epoch {signed}")]
    EpochPassed {
        /// The vector's epoch.
        signed: u64,
        /// The epoch the members collect.
        collecting: u64,
    },
    /// A member holds a different vector from this validator for this epoch (never retried).
    #[error("equivocation reported by {url}: {message}")]
    Equivocation {
        /// The member.
        url: String,
        /// Its message.
        message: String,
    },
    /// Not delivered before the deadline; the last error.
    #[error("not delivered within {waited:?}: {last}")]
    Timeout {
        /// How long it tried.
        waited: Duration,
        /// The last failure.
        last: Box<FederationError>,
    },
    /// Funding or proving the bond failed.
    #[error("bond: {0}")]
    Bond(String),
    /// The validator could not sign (its store failed).
    #[error("signing: {0}")]
    Sign(String),
}

fn fmt_pairs(v: &[(String, String)]) -> String {
    v.iter()
        .map(|(u, e)| format!("{u}: {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A member's `GET /v1/status` (the fields the validator uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederationStatus {
    /// The federation id (hex).
    pub federation: String,
    /// The member's index.
    pub member: usize,
    /// Members in the federation.
    pub members: usize,
    /// Signatures that make an outcome final (n − f).
    pub threshold: usize,
    /// The session being run.
    pub session: u64,
    /// The epoch whose weights are being collected.
    pub epoch: u64,
    /// The parameters in force.
    #[serde(default)]
    pub params: serde_json::Value,
}

impl FederationStatus {
    /// Whether validators commit their weights in one epoch and reveal them in the next.
    pub fn commit_reveal(&self) -> bool {
        self.params["commit_reveal"].as_u64().unwrap_or(0) != 0
    }

    /// The faulty members tolerated: n − threshold.
    pub fn max_faulty(&self) -> usize {
        self.members.saturating_sub(self.threshold)
    }
}

/// A registered miner as `GET /v1/miners` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredMiner {
    /// Its Lightning node id (hex): what weights are keyed by.
    pub node_id: String,
    /// Its OpenAI-compatible API base URL.
    #[serde(default)]
    pub api: Option<String>,
    /// Its models.
    #[serde(default)]
    pub models: Vec<String>,
    /// Its incentive in the last signed epoch (u16 scale).
    #[serde(default)]
    pub incentive: u64,
}

/// A registrant as `GET /v1/registry` lists it (the fields the validator uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registrant {
    /// Its uid.
    pub uid: u16,
    /// Miner or validator.
    pub role: Role,
    /// Its registration key (x-only hex).
    pub key: String,
    /// Its Lightning node id (hex).
    pub node_id: String,
    /// Bonded stake counted (more than f members attested the bond on their bitcoind).
    #[serde(default)]
    pub stake_sat: u64,
    /// Members that attested the bond unspent.
    #[serde(default)]
    pub attested: usize,
}

/// What one member answered to a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "answer", content = "detail")]
pub enum Answer {
    /// 202: queued for ordering.
    Accepted,
    /// It already has this exact item.
    Duplicate,
    /// 4xx/5xx with the member's reason.
    Refused(String),
    /// No answer.
    Unreachable(String),
}

/// Every member's answer to one submission.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Delivery {
    /// By URL.
    pub answers: BTreeMap<String, Answer>,
}

impl Delivery {
    /// Whether at least one member queued it or already has it.
    pub fn delivered(&self) -> bool {
        self.answers
            .values()
            .any(|a| matches!(a, Answer::Accepted | Answer::Duplicate))
    }

    /// Members that queued it or already had it.
    pub fn holders(&self) -> usize {
        self.answers
            .values()
            .filter(|a| matches!(a, Answer::Accepted | Answer::Duplicate))
            .count()
    }

    fn refused(&self) -> Vec<(String, String)> {
        self.answers
            .iter()
            .filter_map(|(u, a)| match a {
                Answer::Refused(m) => Some((u.clone(), m.clone())),
                _ => None,
            })
            .collect()
    }

    fn unreachable(&self) -> Vec<(String, String)> {
        self.answers
            .iter()
            .filter_map(|(u, a)| match a {
                Answer::Unreachable(m) => Some((u.clone(), m.clone())),
                _ => None,
            })
            .collect()
    }

    /// The error when nobody holds it.
    fn failure(&self) -> FederationError {
        let refused = self.refused();
        if refused.is_empty() {
            FederationError::Unreachable(self.unreachable())
        } else {
            FederationError::Refused(refused)
        }
    }
}

/// A client of the coordinator federation's public API, over every coordinator URL it knows.
#[derive(Debug, Clone)]
pub struct FederationClient {
    urls: Vec<String>,
    http: reqwest::Client,
    retry_every: Duration,
}

impl FederationClient {
    /// A client of these coordinators (base URLs such as `http://127.0.0.1:8080`).
    pub fn new(urls: Vec<String>) -> Self {
        FederationClient {
            urls: urls
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .connect_timeout(Duration::from_secs(3))
                .build()
                .unwrap_or_default(),
            retry_every: Duration::from_millis(500),
        }
    }

    /// The coordinator URLs.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// How long to wait between delivery attempts (default 500 ms).
    pub fn with_retry_every(mut self, every: Duration) -> Self {
        self.retry_every = every;
        self
    }

    async fn get_one(&self, url: &str, path: &str) -> Result<Value, String> {
        let resp = self
            .http
            .get(format!("{url}{path}"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(error_message(status.as_u16(), &body));
        }
        Ok(body)
    }

    /// `GET path` on every member; the answers that parsed, and the errors.
    async fn get_all<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Vec<(String, T)>, FederationError> {
        if self.urls.is_empty() {
            return Err(FederationError::NoCoordinators);
        }
        let answers = futures_util::future::join_all(self.urls.iter().map(|u| async move {
            let got = self
                .get_one(u, path)
                .await
                .and_then(|v| serde_json::from_value::<T>(v).map_err(|e| e.to_string()));
            (u.clone(), got)
        }))
        .await;
        let mut ok = Vec::new();
        let mut errors = Vec::new();
        for (u, got) in answers {
            match got {
                Ok(v) => ok.push((u, v)),
                Err(e) => errors.push((u, e)),
            }
        }
        if ok.is_empty() {
            return Err(FederationError::Unreachable(errors));
        }
        for (u, e) in &errors {
            tracing::debug!(coordinator = %u, path, error = %e, "no answer");
        }
        Ok(ok)
    }

    /// Every answering member's status.
    pub async fn statuses(&self) -> Result<Vec<(String, FederationStatus)>, FederationError> {
        self.get_all("/v1/status").await
    }

    /// The federation's status as the median member reports it (its epoch is the epoch being collected).
    pub async fn status(&self) -> Result<FederationStatus, FederationError> {
        let mut all: Vec<FederationStatus> =
            self.statuses().await?.into_iter().map(|(_, s)| s).collect();
        all.sort_by_key(|s| (s.epoch, s.session));
        let median = all.swap_remove((all.len() - 1) / 2);
        if self.urls.len() <= median.max_faulty() {
            tracing::warn!(
                coordinators = self.urls.len(),
                f = median.max_faulty(),
                "configure more than f coordinators, or one faulty member can drop the validator's weights"
            );
        }
        Ok(median)
    }

    /// The federation id the median member reports (what registrations name).
    pub async fn federation_id(&self) -> Result<[u8; 32], FederationError> {
        let id = self.status().await?.federation;
        hex::decode(&id)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                FederationError::Refused(vec![("*".into(), format!("federation id {id:?}"))])
            })
    }

    /// The epoch being collected (median of the members' answers).
    pub async fn epoch(&self) -> Result<u64, FederationError> {
        Ok(self.status().await?.epoch)
    }

    /// The federation's public config (members' keys, parameters) from the first member that answers
    /// with a valid one. Check its id against [`FederationStatus::federation`] of the others if in doubt.
    pub async fn federation(&self) -> Result<FederationConfig, FederationError> {
        let all = self.get_all::<FederationConfig>("/v1/federation").await?;
        all.into_iter()
            .map(|(_, f)| f)
            .find(|f| f.validate().is_ok())
            .ok_or_else(|| FederationError::Refused(vec![("*".into(), "invalid config".into())]))
    }

    /// The registered miners, merged over the answering members by majority (the client directory's
    /// [`boltensor_client::directory::merge`]): listed by more than half of them, with the URL more
    /// than half report, incentive their lower median.
    pub async fn miners(&self) -> Result<Vec<RegisteredMiner>, FederationError> {
        let answers: Vec<boltensor_client::directory::Listing> = self
            .get_all("/v1/miners")
            .await?
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        let merged = boltensor_client::directory::merge(&answers);
        Ok(merged
            .miners
            .into_iter()
            .map(|m| RegisteredMiner {
                node_id: m.node_id,
                api: Some(m.api),
                models: m.models,
                incentive: (m.score * 65535.0).round() as u64,
            })
            .collect())
    }

    /// The registry as the first answering member sees it.
    pub async fn registry(&self) -> Result<Vec<Registrant>, FederationError> {
        #[derive(Deserialize)]
        struct List {
            registry: Vec<Registrant>,
        }
        let all = self.get_all::<List>("/v1/registry").await?;
        Ok(all
            .into_iter()
            .next()
            .map(|(_, l)| l.registry)
            .unwrap_or_default())
    }

    /// Epoch `epoch`'s signed result from the first member that has one that verifies against
    /// `federation` (recomputed, signed by a threshold of members); `None` while no member has it.
    pub async fn signed_epoch(
        &self,
        epoch: u64,
        federation: &FederationConfig,
    ) -> Result<Option<SignedEpoch>, FederationError> {
        let mut errors = Vec::new();
        for url in &self.urls {
            match self.get_one(url, &format!("/v1/epochs/{epoch}")).await {
                Ok(v) => match serde_json::from_value::<SignedEpoch>(v) {
                    Ok(e) => match boltensor_coordinator::verify_epoch(&e, federation) {
                        Ok(_) if e.result.inputs.epoch == epoch => return Ok(Some(e)),
                        Ok(_) => errors.push((url.clone(), "another epoch".to_owned())),
                        Err(err) => errors.push((url.clone(), err.to_string())),
                    },
                    Err(e) => errors.push((url.clone(), e.to_string())),
                },
                Err(e) => errors.push((url.clone(), e)),
            }
        }
        for (u, e) in &errors {
            tracing::debug!(coordinator = %u, epoch, error = %e, "no verified epoch result");
        }
        Ok(None)
    }

    /// Whether `signed` is among the inputs of its epoch's verified result (`None`: not signed yet).
    pub async fn included(
        &self,
        signed: &SignedWeights,
        federation: &FederationConfig,
    ) -> Result<Option<bool>, FederationError> {
        Ok(self
            .signed_epoch(signed.vector.epoch, federation)
            .await?
            .map(|e| {
                e.result
                    .inputs
                    .weights
                    .iter()
                    .any(|w| w.epoch == signed.vector.epoch && &w.signed == signed)
            }))
    }

    /// Posts `body` to `path` on every member at once.
    async fn post_all(&self, path: &str, body: &Value) -> Result<Delivery, FederationError> {
        if self.urls.is_empty() {
            return Err(FederationError::NoCoordinators);
        }
        let answers = futures_util::future::join_all(self.urls.iter().map(|u| async move {
            let answer = match self.http.post(format!("{u}{path}")).json(body).send().await {
                Err(e) => Answer::Unreachable(e.to_string()),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    let message = error_message(status, &body);
                    if status == 202 {
                        Answer::Accepted
                    } else if message.contains("duplicate") {
                        Answer::Duplicate
                    } else {
                        Answer::Refused(message)
                    }
                }
            };
            (u.clone(), answer)
        }))
        .await;
        Ok(Delivery {
            answers: answers.into_iter().collect(),
        })
    }

    /// Submits a signed registration to every member (once). Delivered when any member queued it;
    /// [`FederationClient::wait_registered`] waits until it is ordered.
    pub async fn register(&self, registration: &Registration) -> Result<Delivery, FederationError> {
        let item = serde_json::to_value(ConsensusItem::Register(registration.clone()))
            .expect("items serialise");
        let d = self.post_all("/v1/items", &item).await?;
        if d.delivered() {
            Ok(d)
        } else {
            Err(d.failure())
        }
    }

    /// Submits any consensus item (a weights commit or reveal, say) to every coordinator.
    pub async fn submit_item(&self, item: &ConsensusItem) -> Result<Delivery, FederationError> {
        let body = serde_json::to_value(item).expect("items serialise");
        let d = self.post_all("/v1/items", &body).await?;
        if d.delivered() {
            Ok(d)
        } else {
            Err(d.failure())
        }
    }

    /// Waits until the registry lists `key` (x-only hex), with stake if `with_stake`.
    pub async fn wait_registered(
        &self,
        key: &str,
        with_stake: bool,
        timeout: Duration,
    ) -> Result<Registrant, FederationError> {
        let started = Instant::now();
        loop {
            let last = match self.registry().await {
                Ok(list) => match list.into_iter().find(|r| r.key == key) {
                    Some(r) if !with_stake || r.stake_sat > 0 => return Ok(r),
                    Some(r) => FederationError::Refused(vec![(
                        "*".into(),
                        format!(
                            "registered, bond attested by {} members, no stake yet",
                            r.attested
                        ),
                    )]),
                    None => {
                        FederationError::Refused(vec![("*".into(), "not registered yet".into())])
                    }
                },
                Err(e) => e,
            };
            if started.elapsed() >= timeout {
                return Err(FederationError::Timeout {
                    waited: started.elapsed(),
                    last: Box::new(last),
                });
            }
            tokio::time::sleep(self.retry_every).await;
        }
    }

    /// Submits one signed vector to every member, once. Delivered if any member queued it or already
    /// has it; [`FederationError::EpochPassed`] if the members that answered collect a later epoch;
    /// [`FederationError::Equivocation`] if one holds a different vector for this epoch.
    pub async fn submit_weights(
        &self,
        signed: &SignedWeights,
    ) -> Result<Delivery, FederationError> {
        let body = serde_json::to_value(signed).expect("weights serialise");
        let d = self.post_all("/v1/weights", &body).await?;
        let epoch = signed.vector.epoch;
        for (url, a) in &d.answers {
            match a {
                Answer::Refused(m) if m.contains("equivocation") => {
                    return Err(FederationError::Equivocation {
                        url: url.clone(),
                        message: m.clone(),
                    })
                }
                Answer::Accepted | Answer::Duplicate => {
                    tracing::debug!(coordinator = %url, epoch, answer = ?a, "weights delivered")
                }
                Answer::Refused(m) | Answer::Unreachable(m) => {
                    tracing::debug!(coordinator = %url, epoch, error = %m, "weights not delivered")
                }
            }
        }
        if d.delivered() {
            return Ok(d);
        }
        // Every member that answered refused: if they already collect a later epoch, say so.
        let later: Vec<u64> = d
            .refused()
            .iter()
            .filter_map(|(_, m)| collecting_epoch(m))
            .filter(|c| *c > epoch)
            .collect();
        if let Some(collecting) = later.into_iter().min() {
            return Err(FederationError::EpochPassed {
                signed: epoch,
                collecting,
            });
        }
        Err(d.failure())
    }

    /// Delivers this epoch's weights: reads the epoch being collected, asks `sign` for that epoch's
    /// signed vector (it must return the same vector when asked twice for one epoch, as
    /// [`crate::Validator::close_epoch`] does), submits it to every member, and retries until one member
    /// holds it — on a new epoch if the federation moves on meanwhile. Gives up after `timeout`.
    pub async fn submit_epoch<E: std::fmt::Display>(
        &self,
        mut sign: impl FnMut(u64) -> Result<SignedWeights, E>,
        timeout: Duration,
    ) -> Result<(SignedWeights, Delivery), FederationError> {
        let started = Instant::now();
        loop {
            let last = match self.epoch().await {
                Err(e) => e,
                Ok(epoch) => {
                    let signed = sign(epoch).map_err(|e| FederationError::Sign(e.to_string()));
                    match signed {
                        Err(e) => return Err(e),
                        Ok(signed) => match self.submit_weights(&signed).await {
                            Ok(d) => {
                                tracing::info!(
                                    epoch,
                                    holders = d.holders(),
                                    coordinators = self.urls.len(),
                                    "weights delivered to the federation"
                                );
                                return Ok((signed, d));
                            }
                            Err(e @ FederationError::Equivocation { .. }) => return Err(e),
                            Err(e @ FederationError::EpochPassed { .. }) => {
                                tracing::info!(error = %e, "epoch moved on; signing the new one");
                                e
                            }
                            Err(e) => e,
                        },
                    }
                }
            };
            if started.elapsed() >= timeout {
                return Err(FederationError::Timeout {
                    waited: started.elapsed(),
                    last: Box::new(last),
                });
            }
            tracing::debug!(error = %last, "weights not delivered yet; retrying");
            tokio::time::sleep(self.retry_every).await;
        }
    }
}

fn error_message(status: u16, body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP {status}: {body}"))
}

/// The epoch in a coordinator's "… collecting epoch N" refusal.
fn collecting_epoch(message: &str) -> Option<u64> {
    let rest = &message[message.find("collecting epoch ")? + "collecting epoch ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// A bond on chain: its terms and where it is.
#[derive(Debug, Clone)]
pub struct FundedBond {
    /// Its script terms (owner, federation, T).
    pub bond: Bond,
    /// The bond output.
    pub outpoint: OutPoint,
    /// Its value.
    pub amount: Amount,
}

impl FundedBond {
    /// The owner's proof binding the bond to a registrant of `role`: its Lightning node id and its
    /// registration key (which slashing evidence names). `owner` must be the bond's owner key.
    pub fn prove(
        &self,
        owner: &Keypair,
        role: Role,
        node_id: PublicKey,
        registration: &Keypair,
    ) -> Result<BondProof, FederationError> {
        BondClaims {
            outpoint: self.outpoint,
            amount: self.amount,
            timelock: self.bond.timelock(),
            owner: self.bond.owner(),
            role,
            node_id,
            registration_key: registration.x_only_public_key().0,
        }
        .sign(owner)
        .map_err(|e| FederationError::Bond(e.to_string()))
    }
}

/// The bond timelock to use: the federation's minimum plus a margin of a week of blocks (the stake stops
/// counting `bond_margin` blocks before T), capped at the largest relative timelock.
pub fn default_timelock(federation: &FederationConfig) -> u16 {
    federation.params.bond_min_timelock.saturating_add(1008)
}

/// Funds a bond of `amount` owned by `owner` and slashable by the federation's Byzantine threshold
/// (n − f of its members) from `node`'s on-chain wallet, and finds the bond output through `rpc` (the
/// validator's own bitcoind; the funding transaction is looked up in its mempool). `timelock` must be
/// at least the federation's `bond_min_timelock` ([`default_timelock`] is).
pub async fn fund_bond(
    node: &LnNode,
    rpc: &BitcoindRpc,
    owner: &Keypair,
    federation: &FederationConfig,
    amount: Amount,
    timelock: u16,
    network: Network,
) -> Result<FundedBond, FederationError> {
    let bond_err = |e: &dyn std::fmt::Display| FederationError::Bond(e.to_string());
    if timelock < federation.params.bond_min_timelock {
        return Err(FederationError::Bond(format!(
            "timelock {timelock} is below the federation's minimum {}",
            federation.params.bond_min_timelock
        )));
    }
    if amount.to_sat() < federation.params.bond_min_sat {
        return Err(FederationError::Bond(format!(
            "{amount} is below the federation's minimum bond of {} sat",
            federation.params.bond_min_sat
        )));
    }
    let fed = Federation::byzantine(federation.keys()).map_err(|e| bond_err(&e))?;
    let bond = Bond::new(owner.x_only_public_key().0, fed, timelock).map_err(|e| bond_err(&e))?;
    let txid = node
        .send_to_address(&bond.address(network), amount.to_sat())
        .map_err(|e| bond_err(&e))?;
    tracing::info!(%txid, amount_sat = amount.to_sat(), timelock, "bond funded from the node's wallet");
    let outpoint = find_output(rpc, txid, &bond, Duration::from_secs(60)).await?;
    Ok(FundedBond {
        bond,
        outpoint,
        amount,
    })
}

/// The output of `txid` that pays `bond`, once `rpc` sees the transaction.
async fn find_output(
    rpc: &BitcoindRpc,
    txid: Txid,
    bond: &Bond,
    timeout: Duration,
) -> Result<OutPoint, FederationError> {
    let spk = bond.script_pubkey();
    let started = Instant::now();
    let chain_err = |e: boltensor_contracts::ChainError| FederationError::Bond(e.to_string());
    loop {
        // Only once bitcoind knows the transaction are its outputs read: read while it arrives, the bond
        // output could be missed and another one seen (it happened: "no output paying the bond").
        if rpc
            .tx_confirmations(&txid)
            .await
            .map_err(chain_err)?
            .is_some()
        {
            for vout in 0..8 {
                let op = OutPoint { txid, vout };
                if let Some((out, _)) = rpc.tx_out(&op).await.map_err(chain_err)? {
                    if out.script_pubkey == spk {
                        return Ok(op);
                    }
                }
            }
            return Err(FederationError::Bond(format!(
                "transaction {txid} has no output paying the bond"
            )));
        }
        if started.elapsed() >= timeout {
            return Err(FederationError::Bond(format!(
                "bitcoind did not see the funding transaction {txid} within {timeout:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A validator's signed registration for `federation`: its weights key, its Lightning node (which signs
/// it too, proving the node id), and its bond proof.
pub fn registration(
    keypair: &Keypair,
    node: &LnNode,
    federation: [u8; 32],
    bond: Option<&BondProof>,
) -> Registration {
    let mut r = Registration::new(
        Role::Validator,
        keypair.x_only_public_key().0,
        node.node_id().to_string(),
        federation,
    );
    r.bond = bond.map(BondProof::to_hex);
    r.sign_node(|m| node.sign_message(m)).sign(keypair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_collecting_epoch_from_a_refusal() {
        assert_eq!(
            collecting_epoch("weights refused: weights for epoch 3, collecting epoch 5"),
            Some(5)
        );
        assert_eq!(collecting_epoch("weights refused: bad signature"), None);
    }

    #[test]
    fn delivery_counts_holders() {
        let mut d = Delivery::default();
        d.answers
            .insert("a".into(), Answer::Unreachable("down".into()));
        assert!(!d.delivered());
        assert!(matches!(d.failure(), FederationError::Unreachable(_)));
        d.answers.insert("b".into(), Answer::Refused("no".into()));
        assert!(matches!(d.failure(), FederationError::Refused(_)));
        d.answers.insert("c".into(), Answer::Duplicate);
        assert!(d.delivered());
        assert_eq!(d.holders(), 1);
    }
}
