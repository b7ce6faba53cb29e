//! `boltensor bond …`: the bond life cycle on a real bitcoind, over the contracts library
//! (docs/contracts.md): keygen, wallet, create, show, prove, verify, withdraw, slash.
//!
//! Files: secret keys are 64 hex characters in a file only its owner can read (0600); the federation
//! file is `{"threshold": k, "keys": ["<x-only hex>", …]}`; `bond create` writes a bond file (JSON) that
//! `show`, `prove` and `withdraw` read. Slash PSBTs travel between federation members as base64 files.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context as _};
use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{Keypair, PublicKey, SecretKey, XOnlyPublicKey, SECP256K1};
use bitcoin::{Address, Amount, FeeRate, Network, OutPoint};
use boltensor_contracts::{
    finalize_psbt, sign_psbt, slash_psbt, withdraw_psbt, BitcoindRpc, Bond, BondClaims, BondPath,
    BondPolicy, BondProof, Federation, FederationFile, KeyWallet, RpcAuth, Treasury, Utxo,
    VerifyError,
};
use boltensor_protocol::Role;
use clap::{Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

/// The bond commands.
#[derive(Debug, Subcommand)]
pub enum BondCommand {
    /// Write a new secret key file (0600) for a bond owner or a federation member; print its public key
    /// and the key's funding address.
    Keygen(KeygenArgs),
    /// The owner key's funding address and the coins bitcoind sees there (send coins here before
    /// `bond create`).
    Wallet(WalletArgs),
    /// Fund a bond from the owner key's wallet, broadcast it and write the bond file.
    Create(CreateArgs),
    /// Show a bond: its descriptor, scripts, address, the treasury, and its state on chain.
    Show(ShowArgs),
    /// Sign a bond proof (offline) binding the bond to a role, a Lightning node id and a registration key.
    Prove(ProveArgs),
    /// Verify a bond proof against the chain: signature, script, amount, unspent, age. Exit code 1 if
    /// refused.
    Verify(VerifyArgs),
    /// Take the bond back after its timelock T (the owner's path); refuses before T with how many blocks
    /// are left.
    Withdraw(WithdrawArgs),
    /// Federation: spend a bond to the treasury. Sign with --sign-with (repeatable); with fewer than k
    /// signatures, save the PSBT with --psbt-out for the next member, who continues with --psbt-in.
    Slash(SlashArgs),
}

/// How to reach bitcoind.
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// Bitcoin network: regtest (the devnet), signet, testnet, testnet4 or bitcoin (mainnet).
    #[arg(long, default_value = "regtest", value_parser = parse_network)]
    pub(crate) network: Network,
    /// bitcoind JSON-RPC URL [default: http://127.0.0.1:<the network's RPC port>].
    #[arg(long)]
    pub(crate) rpc_url: Option<String>,
    /// bitcoind RPC user (with --rpc-pass).
    #[arg(long, env = "BOLTENSOR_BITCOIND_RPC_USER", default_value = "boltensor")]
    pub(crate) rpc_user: String,
    /// bitcoind RPC password.
    #[arg(long, env = "BOLTENSOR_BITCOIND_RPC_PASSWORD", hide_env_values = true)]
    pub(crate) rpc_pass: Option<String>,
    /// bitcoind's cookie file instead of user and password [default, without --rpc-pass:
    /// ~/.bitcoin/<network dir>/.cookie].
    #[arg(long)]
    pub(crate) rpc_cookie: Option<PathBuf>,
}

/// The network only (for commands that need no bitcoind).
#[derive(Debug, Args)]
pub struct NetworkArg {
    /// Bitcoin network: regtest (the devnet), signet, testnet, testnet4 or bitcoin (mainnet).
    #[arg(long, default_value = "regtest", value_parser = parse_network)]
    network: Network,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (created with mode 0600; an existing file is never overwritten).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    network: NetworkArg,
}

#[derive(Debug, Args)]
pub struct WalletArgs {
    /// The owner's secret key file.
    #[arg(long)]
    owner_key: PathBuf,
    /// Print only the funding address (no bitcoind needed).
    #[arg(long)]
    address_only: bool,
    #[command(flatten)]
    chain: ChainArgs,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The owner's secret key file: it funds the bond and can withdraw it after T.
    #[arg(long)]
    owner_key: PathBuf,
    /// The federation file that can slash the bond: {"threshold": k, "keys": ["<x-only hex>", …]}.
    #[arg(long)]
    federation: PathBuf,
    /// The bond's amount in satoshis.
    #[arg(long)]
    amount: u64,
    /// The relative timelock T in blocks (1..=65535): the owner can withdraw once the bond is T deep.
    #[arg(long, default_value_t = 1008)]
    timelock: u16,
    /// Fee rate in sat/vB.
    #[arg(long, default_value_t = 2)]
    fee_rate: u64,
    /// Where to write the bond file (JSON).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    chain: ChainArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The bond file written by `bond create`.
    #[arg(long)]
    bond: PathBuf,
    /// Only the bond's terms (no bitcoind needed).
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    chain: ChainArgs,
}

/// The role a bond backs.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Coordinator,
    Miner,
    Validator,
    Client,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Coordinator => Role::Coordinator,
            RoleArg::Miner => Role::Miner,
            RoleArg::Validator => Role::Validator,
            RoleArg::Client => Role::Client,
        }
    }
}

#[derive(Debug, Args)]
pub struct ProveArgs {
    /// The bond file written by `bond create`.
    #[arg(long)]
    bond: PathBuf,
    /// The owner's secret key file (signs the proof).
    #[arg(long)]
    owner_key: PathBuf,
    /// The role the bond backs.
    #[arg(long, value_enum)]
    role: RoleArg,
    /// The role's Lightning node id (33-byte compressed public key, hex).
    #[arg(long)]
    node_id: String,
    /// The role's registration key (x-only public key, hex): the key slashing evidence names.
    #[arg(long)]
    registration_key: String,
    /// Print the proof's fields as JSON (with the hex under "proof") instead of the bare hex.
    #[arg(long)]
    json: bool,
}

/// When a bond counts (the federation's policy; every verifier must use the same numbers).
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Shortest timelock T accepted.
    #[arg(long, default_value_t = 144)]
    min_timelock: u16,
    /// A bond stops counting this many blocks before it can be withdrawn.
    #[arg(long, default_value_t = 12)]
    margin: u16,
    /// Confirmations before a bond counts.
    #[arg(long, default_value_t = 1)]
    min_confirmations: u32,
    /// Smallest bond accepted, in satoshis.
    #[arg(long, default_value_t = 0)]
    min_amount: u64,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The proof: hex, or @FILE holding the hex (or the JSON `bond prove --json` prints).
    #[arg(long)]
    proof: String,
    /// The federation file the bond must be slashable by.
    #[arg(long)]
    federation: PathBuf,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Print the verdict as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    chain: ChainArgs,
}

#[derive(Debug, Args)]
pub struct WithdrawArgs {
    /// The bond file written by `bond create`.
    #[arg(long)]
    bond: PathBuf,
    /// The owner's secret key file.
    #[arg(long)]
    owner_key: PathBuf,
    /// Where to pay the bond back [default: the owner key's funding address].
    #[arg(long)]
    to: Option<String>,
    /// Fee rate in sat/vB.
    #[arg(long, default_value_t = 2)]
    fee_rate: u64,
    #[command(flatten)]
    chain: ChainArgs,
}

#[derive(Debug, Args)]
pub struct SlashArgs {
    /// The federation file (the PSBT must pay this federation's treasury).
    #[arg(long)]
    federation: PathBuf,
    /// The bond to slash, as a bond file …
    #[arg(long, conflicts_with = "proof")]
    bond: Option<PathBuf>,
    /// … or as the bond proof its owner published (hex or @FILE).
    #[arg(long)]
    proof: Option<String>,
    /// Continue from a PSBT (base64 file) another member signed, instead of building a new one.
    #[arg(long)]
    psbt_in: Option<PathBuf>,
    /// A federation member's secret key file to sign with (repeatable).
    #[arg(long = "sign-with")]
    sign_with: Vec<PathBuf>,
    /// Write the (partly) signed PSBT here, base64, for the next member.
    #[arg(long)]
    psbt_out: Option<PathBuf>,
    /// Fee rate in sat/vB (when building the PSBT).
    #[arg(long, default_value_t = 2)]
    fee_rate: u64,
    #[command(flatten)]
    chain: ChainArgs,
}

/// The bond file `bond create` writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BondFile {
    network: Network,
    outpoint: OutPoint,
    amount_sat: u64,
    timelock: u16,
    owner: XOnlyPublicKey,
    federation: FederationFile,
    address: String,
    descriptor: String,
}

impl BondFile {
    fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading bond file {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a bond file (the JSON `bond create --out` writes)",
                path.display()
            )
        })
    }

    fn bond(&self) -> anyhow::Result<Bond> {
        let fed = Federation::new(self.federation.keys.clone(), self.federation.threshold)?;
        Ok(Bond::new(self.owner, fed, self.timelock)?)
    }

    fn check_network(&self, network: Network) -> anyhow::Result<()> {
        if self.network != network {
            bail!(
                "the bond file is for {}, but --network is {network}",
                self.network
            );
        }
        Ok(())
    }
}

pub(crate) fn parse_network(s: &str) -> Result<Network, String> {
    match s {
        "mainnet" | "main" => Ok(Network::Bitcoin),
        other => Network::from_str(other).map_err(|_| {
            format!("unknown network {other:?}: regtest, signet, testnet, testnet4 or bitcoin")
        }),
    }
}

impl ChainArgs {
    /// The RPC URL (the network's default port on localhost unless given).
    pub(crate) fn url(&self) -> String {
        self.rpc_url.clone().unwrap_or_else(|| {
            format!(
                "http://127.0.0.1:{}",
                boltensor_contracts::chain::default_rpc_port(self.network)
            )
        })
    }

    /// The RPC credentials: the cookie, the password, or the network's default cookie file.
    pub(crate) fn auth(&self) -> anyhow::Result<RpcAuth> {
        Ok(match (&self.rpc_cookie, &self.rpc_pass) {
            (Some(cookie), _) => RpcAuth::Cookie(cookie.clone()),
            (None, Some(password)) => RpcAuth::UserPass {
                user: self.rpc_user.clone(),
                password: password.clone(),
            },
            (None, None) => {
                let cookie = default_cookie(self.network);
                if !cookie.exists() {
                    bail!(
                        "no bitcoind credentials: pass --rpc-user/--rpc-pass or --rpc-cookie (no cookie at {})",
                        cookie.display()
                    );
                }
                RpcAuth::Cookie(cookie)
            }
        })
    }

    pub(crate) async fn connect(&self) -> anyhow::Result<BitcoindRpc> {
        let (url, auth) = (self.url(), self.auth()?);
        let rpc = BitcoindRpc::new(url, auth);
        rpc.check_network(self.network).await?;
        Ok(rpc)
    }
}

fn default_cookie(network: Network) -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let sub = match network {
        Network::Bitcoin => "",
        Network::Testnet => "testnet3",
        Network::Testnet4 => "testnet4",
        Network::Signet => "signet",
        _ => "regtest",
    };
    home.join(".bitcoin").join(sub).join(".cookie")
}

/// Reads a secret key file: 64 hex characters, readable by its owner only.
fn read_key(path: &Path) -> anyhow::Result<Keypair> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).with_context(|| format!("reading key file {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "key file {} is readable by others (mode {mode:o}): run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading key file {}", path.display()))?;
    let bytes = hex::decode(text.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .with_context(|| {
            format!(
                "key file {} does not hold a secret key (64 hex characters)",
                path.display()
            )
        })?;
    let sk = SecretKey::from_slice(&bytes)
        .with_context(|| format!("key file {} holds an invalid secret key", path.display()))?;
    Ok(Keypair::from_secret_key(SECP256K1, &sk))
}

fn random_secret_key() -> anyhow::Result<SecretKey> {
    use std::io::Read as _;
    let mut urandom = std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?;
    loop {
        let mut bytes = [0u8; 32];
        urandom
            .read_exact(&mut bytes)
            .context("reading /dev/urandom")?;
        // Fails only for 0 or a value ≥ the group order (probability ~2^-128): draw again.
        if let Ok(sk) = SecretKey::from_slice(&bytes) {
            return Ok(sk);
        }
    }
}

fn write_key(path: &Path, key: &SecretKey) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            format!(
                "creating {} (an existing file is never overwritten)",
                path.display()
            )
        })?;
    writeln!(f, "{}", hex::encode(key.secret_bytes()))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn read_federation(path: &Path) -> anyhow::Result<Federation> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading federation file {}", path.display()))?;
    Federation::from_json(&text).with_context(|| format!("federation file {}", path.display()))
}

/// A proof given as hex, `@FILE` with hex, or `@FILE` with `bond prove --json` output.
fn read_proof(arg: &str) -> anyhow::Result<BondProof> {
    let text = match arg.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading proof file {path}"))?
        }
        None => arg.to_owned(),
    };
    let text = text.trim();
    let hex = if text.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(text).context("proof JSON")?;
        v["proof"]
            .as_str()
            .context("proof JSON has no \"proof\" field")?
            .to_owned()
    } else {
        text.to_owned()
    };
    BondProof::from_hex(&hex).context("not a bond proof (the hex `bond prove` prints)")
}

fn parse_address(s: &str, network: Network) -> anyhow::Result<Address> {
    let unchecked =
        Address::from_str(s.trim()).with_context(|| format!("{s:?} is not a bitcoin address"))?;
    unchecked
        .require_network(network)
        .with_context(|| format!("{s} is not a {network} address"))
}

fn fee_rate(sat_vb: u64) -> anyhow::Result<FeeRate> {
    FeeRate::from_sat_per_vb(sat_vb)
        .filter(|_| sat_vb >= 1)
        .with_context(|| format!("fee rate {sat_vb} sat/vB is out of range"))
}

/// Runs a bond command.
pub async fn run(cmd: BondCommand) -> anyhow::Result<()> {
    match cmd {
        BondCommand::Keygen(a) => keygen(a),
        BondCommand::Wallet(a) => wallet(a).await,
        BondCommand::Create(a) => create(a).await,
        BondCommand::Show(a) => show(a).await,
        BondCommand::Prove(a) => prove(a),
        BondCommand::Verify(a) => verify(a).await,
        BondCommand::Withdraw(a) => withdraw(a).await,
        BondCommand::Slash(a) => slash(a).await,
    }
}

fn keygen(a: KeygenArgs) -> anyhow::Result<()> {
    let sk = random_secret_key()?;
    write_key(&a.out, &sk)?;
    let kp = Keypair::from_secret_key(SECP256K1, &sk);
    let wallet = KeyWallet::new(kp, a.network.network);
    println!("secret key written to {} (mode 0600)", a.out.display());
    println!("public key: {}", kp.x_only_public_key().0);
    println!(
        "funding address ({}): {}",
        a.network.network,
        wallet.address()
    );
    Ok(())
}

async fn wallet(a: WalletArgs) -> anyhow::Result<()> {
    let key = read_key(&a.owner_key)?;
    let wallet = KeyWallet::new(key, a.chain.network);
    if a.address_only {
        println!("{}", wallet.address());
        return Ok(());
    }
    let rpc = a.chain.connect().await?;
    eprintln!("scanning bitcoind's UTXO set for {} …", wallet.address());
    let utxos = wallet.utxos(&rpc).await?;
    let total: Amount = utxos.iter().map(|u| u.txout.value).sum();
    println!("address: {}", wallet.address());
    println!(
        "spendable: {} sat in {} output(s)",
        total.to_sat(),
        utxos.len()
    );
    for u in utxos {
        println!("  {} {} sat", u.outpoint, u.txout.value.to_sat());
    }
    Ok(())
}

async fn create(a: CreateArgs) -> anyhow::Result<()> {
    let key = read_key(&a.owner_key)?;
    let fed = read_federation(&a.federation)?;
    let owner = key.x_only_public_key().0;
    let bond = Bond::new(owner, fed.clone(), a.timelock)?;
    let network = a.chain.network;
    if a.out.exists() {
        bail!(
            "{} exists: choose another --out (a bond file is never overwritten)",
            a.out.display()
        );
    }
    let rpc = a.chain.connect().await?;
    let wallet = KeyWallet::new(key, network);
    eprintln!(
        "funding a {}-sat bond from {} …",
        a.amount,
        wallet.address()
    );
    let utxos = wallet.utxos(&rpc).await?;
    let funding = wallet.build(
        &utxos,
        bond.script_pubkey(),
        Amount::from_sat(a.amount),
        fee_rate(a.fee_rate)?,
    )?;
    let file = BondFile {
        network,
        outpoint: funding.outpoint,
        amount_sat: a.amount,
        timelock: a.timelock,
        owner,
        federation: fed.to_file(),
        address: bond.address(network).to_string(),
        descriptor: bond.descriptor().to_string(),
    };
    // The bond file first: a bond broadcast without it would be hard to find again.
    std::fs::write(&a.out, serde_json::to_string_pretty(&file)? + "\n")
        .with_context(|| format!("writing {}", a.out.display()))?;
    if let Err(e) = rpc.broadcast(&funding.tx).await {
        let _ = std::fs::remove_file(&a.out);
        return Err(e).context("bitcoind refused the funding transaction");
    }
    println!("bond {} broadcast", funding.outpoint);
    println!("  txid:    {}", funding.outpoint.txid);
    println!("  address: {}", file.address);
    println!(
        "  amount:  {} sat, fee {} sat",
        a.amount,
        funding.fee.to_sat()
    );
    println!("  T:       {} blocks after it confirms", a.timelock);
    println!("bond file written to {}", a.out.display());
    println!(
        "next: once it confirms, `boltensor bond prove --bond {}`",
        a.out.display()
    );
    Ok(())
}

async fn show(a: ShowArgs) -> anyhow::Result<()> {
    let file = BondFile::load(&a.bond)?;
    let bond = file.bond()?;
    let treasury = Treasury::new(bond.federation().clone())?;
    println!("bond:       {}", file.outpoint);
    println!("amount:     {} sat", file.amount_sat);
    println!("owner:      {}", file.owner);
    println!("timelock:   T = {} blocks", file.timelock);
    println!(
        "federation: {}-of-{}",
        bond.federation().threshold(),
        bond.federation().len()
    );
    println!("descriptor: {}", bond.descriptor());
    println!("address:    {}", bond.address(file.network));
    println!(
        "withdraw leaf:   {}",
        bond.leaf_script(BondPath::Withdraw).to_asm_string()
    );
    println!(
        "federation leaf: {} B ({}-byte witness to slash)",
        bond.leaf_script(BondPath::Federation).len(),
        bond.witness_size(BondPath::Federation)
    );
    println!("treasury:   {}", treasury.address(file.network));
    if a.offline {
        return Ok(());
    }
    file.check_network(a.chain.network)?;
    let rpc = a.chain.connect().await?;
    let tip = rpc.block_count().await?;
    match rpc.tx_out(&file.outpoint).await? {
        None => {
            let state = match rpc.tx_confirmations(&file.outpoint.txid).await? {
                Some(_) => "spent (withdrawn or slashed)",
                None => "unknown to bitcoind: never broadcast, or spent and pruned from its view",
            };
            println!("on chain:   {state} (tip {tip})");
        }
        Some((txout, c)) => {
            if txout.script_pubkey != bond.script_pubkey() {
                bail!(
                    "{} pays to {}, not to this bond's script: wrong bond file?",
                    file.outpoint,
                    txout.script_pubkey
                );
            }
            let t = u32::from(file.timelock);
            let when = if c == 0 {
                format!("unconfirmed; withdrawable {t} blocks after it confirms")
            } else if c >= t {
                "withdrawable now".to_owned()
            } else {
                format!("withdrawable in {} blocks", t - c)
            };
            println!(
                "on chain:   unspent, {} sat, {c} confirmation(s) at tip {tip}; {when}",
                txout.value.to_sat()
            );
        }
    }
    Ok(())
}

fn prove(a: ProveArgs) -> anyhow::Result<()> {
    let file = BondFile::load(&a.bond)?;
    let key = read_key(&a.owner_key)?;
    let node_id = PublicKey::from_str(a.node_id.trim()).with_context(|| {
        format!(
            "--node-id {:?} is not a compressed public key (66 hex characters)",
            a.node_id
        )
    })?;
    let registration_key =
        XOnlyPublicKey::from_str(a.registration_key.trim()).with_context(|| {
            format!(
                "--registration-key {:?} is not an x-only public key (64 hex characters)",
                a.registration_key
            )
        })?;
    let claims = BondClaims {
        outpoint: file.outpoint,
        amount: Amount::from_sat(file.amount_sat),
        timelock: file.timelock,
        owner: file.owner,
        role: a.role.into(),
        node_id,
        registration_key,
    };
    let proof = claims.sign(&key)?;
    if a.json {
        let v = serde_json::json!({
            "outpoint": proof.claims.outpoint.to_string(),
            "amount_sat": file.amount_sat,
            "timelock": file.timelock,
            "owner": file.owner.to_string(),
            "role": proof.claims.role.as_str(),
            "node_id": node_id.to_string(),
            "registration_key": registration_key.to_string(),
            "proof": proof.to_hex(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{}", proof.to_hex());
    }
    Ok(())
}

async fn verify(a: VerifyArgs) -> anyhow::Result<()> {
    let proof = read_proof(&a.proof)?;
    let fed = read_federation(&a.federation)?;
    let p = &a.policy;
    let policy = BondPolicy::new(
        fed,
        p.min_timelock,
        p.margin,
        p.min_confirmations,
        Amount::from_sat(p.min_amount),
    )?;
    let rpc = a.chain.connect().await?;
    let c = &proof.claims;
    match rpc.verify_bond_proof(&proof, &policy).await {
        Ok(v) => {
            let left = v.counts_until_confirmations - v.confirmations;
            if a.json {
                let j = serde_json::json!({
                    "verdict": "ok",
                    "outpoint": c.outpoint.to_string(),
                    "stake_sat": v.stake.to_sat(),
                    "confirmations": v.confirmations,
                    "counts_until_confirmations": v.counts_until_confirmations,
                    "role": c.role.as_str(),
                    "node_id": c.node_id.to_string(),
                    "registration_key": c.registration_key.to_string(),
                });
                println!("{j}");
            } else {
                println!(
                    "OK: bond {} backs {} node {} (registration key {})",
                    c.outpoint,
                    c.role.as_str(),
                    c.node_id,
                    c.registration_key
                );
                println!(
                    "  stake {} sat, {} confirmation(s); counts for {left} more block(s) (until {} confirmations), re-check before then",
                    v.stake.to_sat(),
                    v.confirmations,
                    v.counts_until_confirmations
                );
            }
            Ok(())
        }
        Err(VerifyError::Chain(e)) => Err(e).context("cannot verify: bitcoind"),
        Err(VerifyError::Proof(e)) => {
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({"verdict": "refused", "outpoint": c.outpoint.to_string(), "reason": e.to_string()})
                );
            }
            bail!("REFUSED: bond proof for {}: {e}", c.outpoint)
        }
    }
}

/// The bond's UTXO now, or a clear error if it is gone.
async fn bond_utxo(rpc: &BitcoindRpc, outpoint: OutPoint) -> anyhow::Result<(Utxo, u32)> {
    match rpc.tx_out(&outpoint).await? {
        Some((txout, c)) => Ok((Utxo { outpoint, txout }, c)),
        None => bail!(
            "no unspent output at {outpoint}: already withdrawn or slashed, never confirmed into bitcoind's view, or a wrong outpoint"
        ),
    }
}

async fn withdraw(a: WithdrawArgs) -> anyhow::Result<()> {
    let file = BondFile::load(&a.bond)?;
    file.check_network(a.chain.network)?;
    let key = read_key(&a.owner_key)?;
    if key.x_only_public_key().0 != file.owner {
        bail!(
            "{} is not the bond's owner key ({})",
            a.owner_key.display(),
            file.owner
        );
    }
    let network = a.chain.network;
    let to = match &a.to {
        Some(s) => parse_address(s, network)?,
        None => KeyWallet::new(key, network).address(),
    };
    let bond = file.bond()?;
    let rpc = a.chain.connect().await?;
    let (utxo, c) = bond_utxo(&rpc, file.outpoint).await?;
    let t = u32::from(file.timelock);
    if c < t {
        bail!(
            "timelock not reached: {} more blocks (the bond has {c} confirmation(s), T = {t})",
            t - c
        );
    }
    let mut psbt = withdraw_psbt(&bond, &utxo, to.script_pubkey(), fee_rate(a.fee_rate)?)?;
    sign_psbt(&mut psbt, &[key])?;
    let tx = finalize_psbt(psbt)?;
    let txid = rpc
        .broadcast(&tx)
        .await
        .context("bitcoind refused the withdrawal")?;
    println!(
        "withdrawal {txid} broadcast: {} sat to {to} (fee {} sat)",
        tx.output[0].value.to_sat(),
        (utxo.txout.value - tx.output[0].value).to_sat()
    );
    Ok(())
}

async fn slash(a: SlashArgs) -> anyhow::Result<()> {
    let fed = read_federation(&a.federation)?;
    let treasury = Treasury::new(fed.clone())?;
    let keys = a
        .sign_with
        .iter()
        .map(|p| read_key(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (k, p) in keys.iter().zip(&a.sign_with) {
        if !fed.contains(&k.x_only_public_key().0) {
            bail!(
                "{} ({}) is not a member of this federation",
                p.display(),
                k.x_only_public_key().0
            );
        }
    }
    let rpc = a.chain.connect().await?;
    let mut psbt = match &a.psbt_in {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading PSBT {}", path.display()))?;
            let psbt = Psbt::from_str(text.trim())
                .with_context(|| format!("{} is not a base64 PSBT", path.display()))?;
            let tx = &psbt.unsigned_tx;
            if tx.output.len() != 1 || tx.output[0].script_pubkey != treasury.script_pubkey() {
                bail!(
                    "the PSBT in {} does not pay everything to this federation's treasury {}: refusing to sign it",
                    path.display(),
                    treasury.address(a.chain.network)
                );
            }
            psbt
        }
        None => {
            let (bond, outpoint) = match (&a.bond, &a.proof) {
                (Some(path), _) => {
                    let file = BondFile::load(path)?;
                    file.check_network(a.chain.network)?;
                    (
                        Bond::new(file.owner, fed.clone(), file.timelock)?,
                        file.outpoint,
                    )
                }
                (None, Some(p)) => {
                    let proof = read_proof(p)?;
                    let c = proof.claims;
                    (Bond::new(c.owner, fed.clone(), c.timelock)?, c.outpoint)
                }
                (None, None) => bail!("which bond? pass --bond, --proof or --psbt-in"),
            };
            let (utxo, _) = bond_utxo(&rpc, outpoint).await?;
            slash_psbt(&bond, &utxo, &treasury, fee_rate(a.fee_rate)?)
                .context("building the slash PSBT")?
        }
    };
    let added = sign_psbt(&mut psbt, &keys)?;
    let have = psbt.inputs.first().map_or(0, |i| i.tap_script_sigs.len());
    let k = fed.threshold();
    eprintln!("added {added} signature(s); {have} of {k} needed");
    if let Some(out) = &a.psbt_out {
        std::fs::write(out, psbt.to_string() + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!("PSBT written to {}", out.display());
    }
    if have < k {
        match &a.psbt_out {
            Some(out) => {
                println!(
                    "{have} of {k} signatures: pass {} to another member: boltensor bond slash --federation … --psbt-in {} --sign-with <their key>",
                    out.display(),
                    out.display()
                );
                return Ok(());
            }
            None => bail!(
                "only {have} of {k} signatures and no --psbt-out to save them for the next member"
            ),
        }
    }
    let tx = finalize_psbt(psbt)?;
    let txid = rpc
        .broadcast(&tx)
        .await
        .context("bitcoind refused the slash")?;
    println!(
        "slash {txid} broadcast: {} sat to the treasury {} (witness {} B)",
        tx.output[0].value.to_sat(),
        treasury.address(a.chain.network),
        tx.input[0].witness.size()
    );
    Ok(())
}
