//! The devnet's coordinator federation: its members' config dirs (kept in the data dir, so `up` again
//! resumes with the same keys and ledgers), the regtest parameters, miners' registrations, and what
//! `devnet status` shows of it.
//!
//! Layout: `<data_dir>/federation/member-<i>/` holds member i's `federation.json`, `identity.json`,
//! `secret.key`, `admin.token` and its redb ledger, exactly as `boltensor coordinator run --dir`
//! expects. The federation has at least [`MIN_MEMBERS`] members (Byzantine-tolerant consensus needs
//! n ≥ 3f + 1 with f ≥ 1): with fewer Lightning hubs (`--coordinators`) than that, member i pays its
//! epochs from hub `i mod hubs`'s node, so two members share one node's wallet.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bitcoin::secp256k1::{Keypair, SecretKey, SECP256K1};
use boltensor_contracts::{BitcoindRpc, RpcAuth};
use boltensor_coordinator::config::{ConsensusTiming, Member};
use boltensor_coordinator::items::{ConsensusItem, Registration};
use boltensor_coordinator::params::Params;
use boltensor_coordinator::{CoordinatorConfig, FederationConfig};
use boltensor_protocol::Role;
use boltensor_testenv::{ensure_port_free, free_port, TestEnvError};
use serde::{Deserialize, Serialize};

/// The smallest federation the devnet runs.
pub const MIN_MEMBERS: usize = 4;

/// The devnet's consensus speed: 8 rounds of 60 ms per session (the coordinators' default).
pub const TIMING: ConsensusTiming = ConsensusTiming {
    rounds_per_session: 8,
    round_delay_ms: 60,
};

/// What one session takes on loopback with [`TIMING`], rounds plus signing the outcome; converts
/// `--epoch-secs` into sessions. `boltensor bench federation` (release, 2 cores): 0.83–0.85 s per session
/// with 4 and 7 members; at the earlier 20 × 100 ms timing the full devnet ran 3.4 s against the bench's
/// 3.3 s, so the devnet's load is allowed a few per cent more here. An estimate: epochs last about, not
/// exactly, what was asked.
pub const SESSION_ESTIMATE: Duration = Duration::from_millis(900);

/// The bond each validator posts, times its number (validator-2 bonds twice as much as validator-1),
/// so the stake-weighted consensus is visible.
pub const VALIDATOR_BOND_SAT: u64 = 100_000;

/// The bond each miner posts to register: the devnet's `miner_bond_min_sat` (ADR 0012), so a miner is
/// listed, weighed and paid only once its bond counts.
pub const MINER_BOND_SAT: u64 = 50_000;

/// Sessions per epoch for an epoch of about `epoch` (at least one).
pub fn epoch_sessions(epoch: Duration) -> u64 {
    (epoch.as_millis() / SESSION_ESTIMATE.as_millis())
        .max(1)
        .try_into()
        .unwrap_or(u64::MAX)
}

/// The devnet's share of forwarding fees paid out as the epoch pool, ppm.
pub const POOL_FEE_SHARE_PPM: u64 = 500_000;

/// The federation's parameters on the devnet: epochs of about `epoch`, bonds that count after one
/// confirmation and until 20 blocks before a T of at least 200 (the validators bond with T = 1208, the
/// validator crate's default, so a bond counts for 1187 timer blocks: ~10 h at the default 30 s), a
/// minimum bond of 50,000 sat, miners registering with a bond of [`MINER_BOND_SAT`], weights committed
/// and revealed an epoch later (ADR 0014) and a pool of half the forwarding fees the coordinators'
/// nodes earned in the epoch (ADR 0015).
pub fn params(epoch: Duration) -> Params {
    Params {
        epoch_sessions: epoch_sessions(epoch),
        bond_min_timelock: 200,
        bond_margin: 20,
        bond_min_confirmations: 1,
        bond_min_sat: 50_000,
        epoch_pool_msat: 100_000,
        immunity_epochs: 2,
        miner_bond_min_sat: MINER_BOND_SAT,
        // Validators commit their weights and reveal them an epoch later, as subtensor's subnets do.
        commit_reveal: 1,
        // The pool is what the network earned: half of every member's forwarding fees of the epoch,
        // paid out by that member (`epoch_pool_msat` is then unused).
        pool_fee_share_ppm: POOL_FEE_SHARE_PPM,
        ..Params::default()
    }
}

/// Member `i`'s directory.
pub fn member_dir(data_dir: &Path, i: usize) -> PathBuf {
    data_dir.join("federation").join(format!("member-{i}"))
}

fn config_err(e: impl std::fmt::Display) -> TestEnvError {
    TestEnvError::Devnet(format!("federation config: {e}"))
}

/// The members' configs: read from their dirs if the federation exists (its ports checked free), else
/// a new federation of `members` members on free loopback ports with fresh random keys, written there.
pub fn load_or_create(
    data_dir: &Path,
    members: usize,
    epoch: Duration,
) -> Result<Vec<CoordinatorConfig>, TestEnvError> {
    if member_dir(data_dir, 0).join("federation.json").exists() {
        let configs: Vec<CoordinatorConfig> = (0..)
            .map(|i| member_dir(data_dir, i))
            .take_while(|d| d.join("federation.json").exists())
            .map(|d| CoordinatorConfig::load(&d).map_err(config_err))
            .collect::<Result<_, _>>()?;
        let federation = &configs[0].federation;
        if configs.len() != federation.n() {
            return Err(TestEnvError::Devnet(format!(
                "{} holds {} member dirs for a federation of {}; `boltensor devnet down --wipe` starts afresh",
                data_dir.join("federation").display(),
                configs.len(),
                federation.n()
            )));
        }
        let want = epoch_sessions(epoch);
        if federation.params.epoch_sessions != want {
            tracing::warn!(
                stored = federation.params.epoch_sessions,
                asked = want,
                "the federation keeps its stored epoch length (a running federation changes it by a vote of its members)"
            );
        }
        for (i, m) in federation.members.iter().enumerate() {
            ensure_port_free(m.p2p.port(), &format!("peer port of federation member {i}"))?;
            ensure_port_free(m.api.port(), &format!("API port of federation member {i}"))?;
        }
        return Ok(configs);
    }
    let port = || free_port().map_err(TestEnvError::io("finding a free port"));
    // Keys derived from a fresh random seed (not kept: each member keeps its own secret.key).
    let seed = format!(
        "{}{}",
        boltensor_testenv::random_hex(),
        boltensor_testenv::random_hex()
    );
    let mut keypairs = Vec::new();
    let mut list = Vec::new();
    for i in 0..members {
        let kp = boltensor_coordinator::config::derive_keypair(seed.as_bytes(), i);
        list.push(Member {
            key: kp.x_only_public_key().0,
            p2p: ([127, 0, 0, 1], port()?).into(),
            api: ([127, 0, 0, 1], port()?).into(),
        });
        keypairs.push(kp);
    }
    let federation = FederationConfig {
        name: "boltensor-devnet".into(),
        members: list,
        timing: TIMING,
        params: params(epoch),
    };
    federation.validate().map_err(config_err)?;
    let mut configs = Vec::new();
    for (i, kp) in keypairs.into_iter().enumerate() {
        let dir = member_dir(data_dir, i);
        boltensor_coordinator::config::write_member_dir(&dir, &federation, i, &kp)
            .map_err(config_err)?;
        configs.push(CoordinatorConfig {
            federation: federation.clone(),
            index: i,
            keypair: kp,
            data_dir: dir,
        });
    }
    Ok(configs)
}

/// The devnet bitcoind's RPC, as the coordinators and validators use it.
pub fn rpc(port: u16, user: &str, password: &str) -> BitcoindRpc {
    BitcoindRpc::new(
        format!("http://127.0.0.1:{port}"),
        RpcAuth::UserPass {
            user: user.to_owned(),
            password: password.to_owned(),
        },
    )
}

/// A member's public API base URL.
pub fn api_url(federation: &FederationConfig, i: usize) -> String {
    format!("http://{}", federation.members[i].api)
}

/// A miner's registration key, kept in `dir/registration.key` (0600), created on first use.
pub fn miner_keypair(dir: &Path) -> Result<Keypair, TestEnvError> {
    std::fs::create_dir_all(dir)
        .map_err(TestEnvError::io(format!("creating {}", dir.display())))?;
    let secret = boltensor_miner::load_or_create_secret(&dir.join("registration.key"))
        .map_err(|e| TestEnvError::Devnet(format!("miner registration key: {e}")))?;
    let sk = SecretKey::from_slice(&secret)
        .map_err(|e| TestEnvError::Devnet(format!("miner registration key: {e}")))?;
    Ok(Keypair::from_secret_key(SECP256K1, &sk))
}

/// A miner's registration for `federation`, with its bond proof when the federation asks for one
/// (`miner_bond_min_sat`), signed by its registration key and, through `sign_node`
/// (`LnNode::sign_message`), by its Lightning node.
pub fn miner_registration(
    keypair: &Keypair,
    node_id: String,
    sign_node: impl FnOnce(&[u8]) -> String,
    federation: [u8; 32],
    api: String,
    models: Vec<String>,
    bond: Option<&boltensor_contracts::BondProof>,
) -> ConsensusItem {
    let mut r = Registration::new(
        Role::Miner,
        keypair.x_only_public_key().0,
        node_id,
        federation,
    );
    r.api = Some(api);
    r.models = models;
    r.bond = bond.map(boltensor_contracts::BondProof::to_hex);
    ConsensusItem::Register(r.sign_node(sign_node).sign(keypair))
}

/// The federation id (what registrations name) from the first of `urls` whose `GET /v1/status`
/// answers within `timeout`.
pub async fn federation_id(urls: &[String], timeout: Duration) -> Result<[u8; 32], TestEnvError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default();
    let started = std::time::Instant::now();
    loop {
        let mut errors = Vec::new();
        for u in urls {
            let got = async {
                let v: serde_json::Value = http
                    .get(format!("{u}/v1/status"))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                v["federation"]
                    .as_str()
                    .and_then(|h| hex::decode(h).ok())
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| format!("no federation id in {v}"))
            }
            .await;
            match got {
                Ok(id) => return Ok(id),
                Err(e) => errors.push(format!("{u}: {e}")),
            }
        }
        if started.elapsed() >= timeout {
            return Err(TestEnvError::Devnet(format!(
                "no coordinator told its federation id: {}",
                errors.join("; ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Posts `item` to every member's `POST /v1/items` until at least one queued it (or `timeout`); any
/// honest member that queued it gets it ordered. Returns how many queued it.
pub async fn submit(
    urls: &[String],
    item: &ConsensusItem,
    timeout: Duration,
) -> Result<usize, TestEnvError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default();
    let started = std::time::Instant::now();
    loop {
        let answers = futures_join(urls.iter().map(|u| {
            let req = http.post(format!("{u}/v1/items")).json(item);
            async move {
                match req.send().await {
                    Ok(r) if r.status().as_u16() == 202 => Ok(()),
                    Ok(r) => {
                        let status = r.status();
                        Err(format!(
                            "{u}: {status} {}",
                            r.text().await.unwrap_or_default()
                        ))
                    }
                    Err(e) => Err(format!("{u}: {e}")),
                }
            }
        }))
        .await;
        let queued = answers.iter().filter(|a| a.is_ok()).count();
        if queued > 0 {
            return Ok(queued);
        }
        let errors: Vec<String> = answers.into_iter().filter_map(Result::err).collect();
        if started.elapsed() >= timeout {
            return Err(TestEnvError::Devnet(format!(
                "no coordinator queued the {} item: {}",
                item.kind(),
                errors.join("; ")
            )));
        }
        tracing::debug!(errors = ?errors, "item not queued yet; retrying");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Awaits every future (the devnet has a handful of members: no need for a join-all crate).
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut out = Vec::new();
    for f in futs {
        out.push(f.await);
    }
    out
}

/// The federation in a status report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FederationReport {
    /// Its name.
    pub name: String,
    /// Its id (hex).
    pub id: String,
    /// Signatures that make a result final.
    pub threshold: usize,
    /// Sessions per epoch at genesis.
    pub epoch_sessions: u64,
    /// Every member.
    pub members: Vec<MemberReport>,
    /// The highest session a member runs.
    pub session: Option<u64>,
    /// The epoch being collected (as the most advanced member says).
    pub epoch: Option<u64>,
    /// The last epoch whose result is signed.
    pub last_signed_epoch: Option<u64>,
    /// Registered miners and validators.
    pub registered: Option<u64>,
    /// Epoch payouts owed and not yet receipted.
    pub payouts_owed: usize,
    /// Their total.
    pub payouts_owed_msat: u64,
    /// Epoch payouts made and receipted in consensus.
    pub payouts_receipted: usize,
}

/// One member in a [`FederationReport`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MemberReport {
    /// Its index.
    pub index: usize,
    /// Its public API.
    pub api_url: String,
    /// The Lightning hub whose node pays its epochs.
    pub hub: String,
    /// What its `/v1/status` says.
    pub status: Option<MemberStatus>,
    /// Why it did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The part of a member's `GET /v1/status` the devnet shows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MemberStatus {
    /// The session it runs.
    pub session: u64,
    /// The epoch it collects.
    pub epoch: u64,
    /// Its last signed epoch.
    pub last_signed_epoch: Option<u64>,
    /// Its registry size.
    pub registered: u64,
}

/// Asks every member for its status and the first answering one for its payouts.
pub async fn report(federation: &FederationConfig, hubs: &[String]) -> FederationReport {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default();
    let mut members = Vec::new();
    for i in 0..federation.n() {
        let url = api_url(federation, i);
        let status = async {
            http.get(format!("{url}/v1/status"))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .error_for_status()
                .map_err(|e| e.to_string())?
                .json::<MemberStatus>()
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        let (status, error) = match status {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e)),
        };
        members.push(MemberReport {
            index: i,
            api_url: url,
            hub: hubs.get(i % hubs.len().max(1)).cloned().unwrap_or_default(),
            status,
            error,
        });
    }
    let best = members
        .iter()
        .filter_map(|m| m.status.as_ref())
        .max_by_key(|s| s.session);
    let mut report = FederationReport {
        name: federation.name.clone(),
        id: hex::encode(federation.id()),
        threshold: federation.threshold(),
        epoch_sessions: federation.params.epoch_sessions,
        session: best.map(|s| s.session),
        epoch: best.map(|s| s.epoch),
        last_signed_epoch: members
            .iter()
            .filter_map(|m| m.status.as_ref()?.last_signed_epoch)
            .max(),
        registered: best.map(|s| s.registered),
        members: Vec::new(),
        ..FederationReport::default()
    };
    if let Some(m) = members.iter().find(|m| m.status.is_some()) {
        #[derive(Deserialize)]
        struct Payouts {
            owed_msat: std::collections::BTreeMap<String, u64>,
            receipts: std::collections::BTreeMap<String, serde_json::Value>,
        }
        let got = async {
            http.get(format!("{}/v1/payouts", m.api_url))
                .send()
                .await
                .ok()?
                .json::<Payouts>()
                .await
                .ok()
        }
        .await;
        if let Some(p) = got {
            report.payouts_owed = p.owed_msat.len();
            report.payouts_owed_msat = p.owed_msat.values().sum();
            report.payouts_receipted = p.receipts.len();
        }
    }
    report.members = members;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devnet_parameters_are_valid_and_epochs_last_about_what_was_asked() {
        for secs in [1, 8, 45, 600] {
            let p = params(Duration::from_secs(secs));
            p.validate().expect("valid devnet parameters");
            let estimate = SESSION_ESTIMATE.as_secs_f64() * p.epoch_sessions as f64;
            assert!(
                p.epoch_sessions == 1
                    || (estimate - secs as f64).abs() <= SESSION_ESTIMATE.as_secs_f64(),
                "{secs} s → {} sessions",
                p.epoch_sessions
            );
        }
        assert_eq!(
            epoch_sessions(Duration::from_secs(45)),
            45_000 / SESSION_ESTIMATE.as_millis() as u64
        );
        // The devnet runs the coordinators' default timing, which SESSION_ESTIMATE was measured with.
        assert_eq!(TIMING, ConsensusTiming::default());
        // The validators' default bond timelock is above the minimum, and counts long before T − margin.
        let p = params(Duration::from_secs(45));
        assert!(p.bond_min_timelock + 1008 - p.bond_margin > 1000);
    }

    #[test]
    fn a_new_federation_is_written_and_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let made =
            load_or_create(dir.path(), MIN_MEMBERS, Duration::from_secs(45)).expect("created");
        assert_eq!(made.len(), 4);
        made[0].federation.validate().expect("valid");
        let again = load_or_create(dir.path(), MIN_MEMBERS, Duration::from_secs(10)).expect("read");
        assert_eq!(
            again[0].federation, made[0].federation,
            "same keys, ports, and stored epoch length"
        );
        assert_eq!(
            again[3].keypair.secret_bytes(),
            made[3].keypair.secret_bytes()
        );
    }
}
