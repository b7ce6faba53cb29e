//! Federation configuration: the public part every member and auditor shares (`federation.json`) and
//! each member's private part (`identity.json` + a 0600 `secret.key`).
//!
//! `boltensor coordinator init --members N` writes the configuration of a loopback federation with
//! random member keys (keys derived from a seed only on request, and only on regtest); a real federation
//! exchanges public keys and addresses out of band and writes the same files.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::{Keypair, SecretKey, XOnlyPublicKey, SECP256K1};
use serde::{Deserialize, Serialize};

use crate::params::Params;

/// One coordinator, as the others know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its BIP-340 key (x-only, hex): signs consensus units, session outcomes and epoch results.
    pub key: XOnlyPublicKey,
    /// Where it accepts peer connections.
    pub p2p: SocketAddr,
    /// Its public HTTP API.
    pub api: SocketAddr,
}

/// How fast the consensus runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusTiming {
    /// Rounds of units per session (items are ordered in these; then the outcome is signed).
    pub rounds_per_session: u16,
    /// Delay between a member's units, in milliseconds.
    pub round_delay_ms: u64,
}

impl Default for ConsensusTiming {
    fn default() -> Self {
        ConsensusTiming {
            rounds_per_session: 8,
            round_delay_ms: 60,
        }
    }
}

/// What every member and every auditor agrees on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// A name for humans.
    pub name: String,
    /// The members; a member's index in this list is its consensus identity.
    pub members: Vec<Member>,
    /// Consensus speed.
    #[serde(default)]
    pub timing: ConsensusTiming,
    /// The parameters at genesis (changed later by votes).
    #[serde(default)]
    pub params: Params,
}

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file that does not parse.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A federation that cannot run BFT consensus.
    #[error("invalid federation: {0}")]
    Invalid(String),
}

impl FederationConfig {
    /// The number of members.
    pub fn n(&self) -> usize {
        self.members.len()
    }

    /// How many faulty members are tolerated: ⌊(n−1)/3⌋.
    pub fn max_faulty(&self) -> usize {
        (self.n().saturating_sub(1)) / 3
    }

    /// Signatures that make an outcome final: n − f.
    pub fn threshold(&self) -> usize {
        self.n() - self.max_faulty()
    }

    /// The federation id: SHA-256 over the members' keys in order ([`federation_id`]).
    pub fn id(&self) -> [u8; 32] {
        federation_id(&self.keys())
    }

    /// The members' keys in order.
    pub fn keys(&self) -> Vec<XOnlyPublicKey> {
        self.members.iter().map(|m| m.key).collect()
    }

    /// Checks that the federation can run: at least 4 members (BFT needs n ≥ 3f + 1 with f ≥ 1),
    /// distinct keys and addresses, and sane timing.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.n() < 4 {
            return Err(ConfigError::Invalid(format!(
                "{} members; Byzantine-tolerant consensus needs at least 4",
                self.n()
            )));
        }
        let mut keys: Vec<_> = self.keys();
        keys.sort();
        keys.dedup();
        if keys.len() != self.n() {
            return Err(ConfigError::Invalid("two members share a key".into()));
        }
        if self.timing.rounds_per_session < 3 || self.timing.rounds_per_session > 5000 {
            return Err(ConfigError::Invalid(
                "rounds_per_session must be within 3..=5000".into(),
            ));
        }
        self.params.validate().map_err(ConfigError::Invalid)?;
        Ok(())
    }

    /// Reads and validates `federation.json`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let cfg: FederationConfig = read_json(path)?;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// The id of the federation of members `keys` (in order): SHA-256 over
/// `"boltensor/federation/v1" ‖ keys`. Registry items, units and epoch results name it, so that what
/// is signed for one federation is worthless in another.
pub fn federation_id(keys: &[XOnlyPublicKey]) -> [u8; 32] {
    let mut e = sha256::Hash::engine();
    e.input(b"boltensor/federation/v1");
    for k in keys {
        e.input(&k.serialize());
    }
    sha256::Hash::from_engine(e).to_byte_array()
}

/// A member's own part.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Its index in `members`.
    pub index: usize,
}

/// Everything one coordinator needs to run.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// The federation.
    pub federation: FederationConfig,
    /// This member's index.
    pub index: usize,
    /// This member's key pair.
    pub keypair: Keypair,
    /// Where it keeps its ledger.
    pub data_dir: PathBuf,
}

impl CoordinatorConfig {
    /// Loads `federation.json`, `identity.json` and `secret.key` from `dir`; the ledger lives there too.
    pub fn load(dir: &Path) -> Result<Self, ConfigError> {
        let federation = FederationConfig::load(&dir.join("federation.json"))?;
        let identity: Identity = read_json(&dir.join("identity.json"))?;
        let key_path = dir.join("secret.key");
        // A key file others can read (copied with a loose umask, say) is made 0600 before use.
        boltensor_ln::secret_file::tighten_permissions(&key_path).map_err(|source| {
            ConfigError::Io {
                path: key_path.clone(),
                source,
            }
        })?;
        let hex_key = std::fs::read_to_string(&key_path).map_err(|source| ConfigError::Io {
            path: key_path.clone(),
            source,
        })?;
        let secret = SecretKey::from_slice(&hex::decode(hex_key.trim()).map_err(|e| {
            ConfigError::Parse {
                path: key_path.clone(),
                message: e.to_string(),
            }
        })?)
        .map_err(|e| ConfigError::Parse {
            path: key_path.clone(),
            message: e.to_string(),
        })?;
        let keypair = Keypair::from_secret_key(SECP256K1, &secret);
        let member = federation
            .members
            .get(identity.index)
            .ok_or_else(|| ConfigError::Invalid(format!("no member {}", identity.index)))?;
        if member.key != keypair.x_only_public_key().0 {
            return Err(ConfigError::Invalid(format!(
                "secret.key does not match member {}'s key in federation.json",
                identity.index
            )));
        }
        Ok(CoordinatorConfig {
            federation,
            index: identity.index,
            keypair,
            data_dir: dir.to_path_buf(),
        })
    }
}

/// Derives member `i`'s key from `seed` (deterministic test and devnet federations).
pub fn derive_keypair(seed: &[u8], i: usize) -> Keypair {
    let mut e = sha256::Hash::engine();
    e.input(b"boltensor/coordinator-key/v1");
    e.input(seed);
    e.input(&(i as u64).to_be_bytes());
    let secret = SecretKey::from_slice(&sha256::Hash::from_engine(e).to_byte_array())
        .expect("a SHA-256 output is a valid key with overwhelming probability");
    Keypair::from_secret_key(SECP256K1, &secret)
}

/// A key pair from the OS's randomness: the default for a federation's member keys.
pub fn random_keypair() -> Keypair {
    loop {
        let mut raw = [0u8; 32];
        crate::net::fill_random(&mut raw);
        if let Ok(secret) = SecretKey::from_slice(&raw) {
            return Keypair::from_secret_key(SECP256K1, &secret);
        }
    }
}

/// A federation of `n` members on loopback: p2p ports `base_port + 2i`, API ports `base_port + 2i + 1`;
/// keys derived from `seed` (deterministic: anyone who knows the seed holds every member key, so only
/// for regtest devnets and tests), or random ([`random_keypair`]) when `seed` is `None`.
pub fn local_federation(
    seed: Option<&[u8]>,
    n: usize,
    base_port: u16,
    timing: ConsensusTiming,
    params: Params,
) -> (FederationConfig, Vec<Keypair>) {
    let hosts = vec![IpAddr::from([127, 0, 0, 1]); n];
    federation_on_hosts(seed, &hosts, base_port, timing, params)
}

/// A federation with member `i` on `hosts[i]` (one per member; several may share a host): p2p port
/// `base_port + 2i`, API port `base_port + 2i + 1`, on that address; keys as in [`local_federation`].
/// `coordinator init --hosts` writes it for members on separate machines (or network namespaces).
pub fn federation_on_hosts(
    seed: Option<&[u8]>,
    hosts: &[IpAddr],
    base_port: u16,
    timing: ConsensusTiming,
    params: Params,
) -> (FederationConfig, Vec<Keypair>) {
    let addrs = hosts.iter().enumerate().map(|(i, &ip)| {
        let p2p = base_port + 2 * i as u16;
        (SocketAddr::new(ip, p2p), SocketAddr::new(ip, p2p + 1))
    });
    let key = |i| seed.map_or_else(random_keypair, |s| derive_keypair(s, i));
    federation("boltensor-devnet", key, addrs, timing, params)
}

/// A federation named `name` of `n` members on loopback ports from `free` (for tests and benchmarks,
/// where no contiguous block is needed: `boltensor_testenv::free_port`, which stays below the kernel's
/// ephemeral range, where a port picked by binding to 0 could be taken by an outgoing connection before
/// the member binds it — seen as `AddrInUse` in a test); keys derived from `seed` as in
/// [`local_federation`].
pub fn loopback_federation(
    name: &str,
    seed: &[u8],
    n: usize,
    timing: ConsensusTiming,
    params: Params,
    mut free: impl FnMut() -> std::io::Result<u16>,
) -> std::io::Result<(FederationConfig, Vec<Keypair>)> {
    let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
    let addrs = (0..n)
        .map(|_| Ok((loopback(free()?), loopback(free()?))))
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok(federation(
        name,
        |i| derive_keypair(seed, i),
        addrs,
        timing,
        params,
    ))
}

fn federation(
    name: &str,
    key: impl Fn(usize) -> Keypair,
    addrs: impl IntoIterator<Item = (SocketAddr, SocketAddr)>,
    timing: ConsensusTiming,
    params: Params,
) -> (FederationConfig, Vec<Keypair>) {
    let (members, keypairs) = addrs
        .into_iter()
        .enumerate()
        .map(|(i, (p2p, api))| {
            let kp = key(i);
            let member = Member {
                key: kp.x_only_public_key().0,
                p2p,
                api,
            };
            (member, kp)
        })
        .unzip();
    (
        FederationConfig {
            name: name.into(),
            members,
            timing,
            params,
        },
        keypairs,
    )
}

/// Writes member `index`'s directory: `federation.json`, `identity.json`, `secret.key` (0600).
pub fn write_member_dir(
    dir: &Path,
    federation: &FederationConfig,
    index: usize,
    keypair: &Keypair,
) -> Result<(), ConfigError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ConfigError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let fed = dir.join("federation.json");
    std::fs::write(
        &fed,
        serde_json::to_vec_pretty(federation).expect("serialisable"),
    )
    .map_err(io(&fed))?;
    let id = dir.join("identity.json");
    std::fs::write(
        &id,
        serde_json::to_vec_pretty(&Identity { index }).expect("serialisable"),
    )
    .map_err(io(&id))?;
    let key = dir.join("secret.key");
    write_secret(&key, &hex::encode(keypair.secret_bytes())).map_err(io(&key))?;
    Ok(())
}

pub(crate) fn write_secret(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    // `mode` applies only to a file this call creates: tighten one that was already there.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(content.as_bytes())?;
    f.sync_all()
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
