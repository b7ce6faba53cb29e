//! The `boltensor bond` commands, run as the real binary against a real regtest bitcoind: keygen, fund the
//! owner key's wallet, create → confirm → prove → verify; withdraw refused before T and confirmed after;
//! a spent outpoint refused; a slash signed by two members in two rounds through a PSBT file; and the
//! errors a user meets (bad hex, wrong network, wrong password, nothing listening, unknown outpoint).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bitcoin::{Amount, OutPoint, Txid};
use boltensor_testenv::{Bitcoind, BitcoindOptions};
use serde_json::{json, Value};

const USER: &str = "bondtest";
const PASS: &str = "bondtest-pass";

struct Env {
    bitcoind: Bitcoind,
    dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut opts = BitcoindOptions::new(dir.path().join("bitcoind"));
        opts.rpc_auth = Some((USER.into(), PASS.into()));
        let bitcoind = Bitcoind::start(opts).await.context("starting bitcoind")?;
        Ok(Env { bitcoind, dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn rpc_args(&self) -> Vec<String> {
        vec![
            "--rpc-url".into(),
            format!("http://127.0.0.1:{}", self.bitcoind.rpc_port()),
            "--rpc-user".into(),
            USER.into(),
            "--rpc-pass".into(),
            PASS.into(),
        ]
    }

    /// Runs `boltensor bond <args>` (with the RPC flags when `rpc`), returning its output.
    fn bond(&self, args: &[&str], rpc: bool) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_boltensor"));
        cmd.arg("bond").args(args);
        if rpc {
            cmd.args(self.rpc_args());
        }
        cmd.env_remove("BOLTENSOR_BITCOIND_RPC_USER")
            .env_remove("BOLTENSOR_BITCOIND_RPC_PASSWORD")
            .env("RUST_LOG", "warn");
        let out = cmd.output().expect("running the boltensor binary");
        eprintln!(
            "$ boltensor bond {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str], rpc: bool) -> Result<String> {
        let out = self.bond(args, rpc);
        if !out.status.success() {
            bail!(
                "boltensor bond {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Runs a command that must fail with `needle` in its error.
    fn fails(&self, args: &[&str], rpc: bool, needle: &str) {
        let out = self.bond(args, rpc);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "bond {args:?} succeeded");
        assert!(
            err.contains(needle),
            "bond {args:?}: expected {needle:?} in {err:?}"
        );
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value> {
        Ok(self.bitcoind.rpc().call(method, params).await?)
    }

    async fn mine(&self, n: u64) -> Result<()> {
        Ok(self.bitcoind.mine(n).await?)
    }

    /// Confirmations of the unspent output, None if spent.
    async fn confirmations(&self, op: OutPoint) -> Result<Option<u64>> {
        let r = self
            .call("gettxout", json!([op.txid.to_string(), op.vout, true]))
            .await?;
        Ok((!r.is_null()).then(|| r["confirmations"].as_u64().unwrap_or(0)))
    }

    /// Waits (with a deadline) until `txid` is in bitcoind's mempool.
    async fn wait_mempool(&self, txid: Txid) -> Result<()> {
        Ok(self
            .bitcoind
            .wait_for_tx(txid, Duration::from_secs(30))
            .await?)
    }

    /// Mines until `txid` is confirmed (polling with a deadline).
    async fn confirm(&self, txid: Txid) -> Result<()> {
        self.wait_mempool(txid).await?;
        self.mine(1).await?;
        boltensor_testenv::wait_for(
            &format!("{txid} to confirm"),
            Duration::from_secs(30),
            || async move {
                let v: Value = self
                    .bitcoind
                    .rpc()
                    .call("getrawtransaction", json!([txid.to_string(), true]))
                    .await?;
                Ok((v["confirmations"].as_u64().unwrap_or(0) >= 1).then_some(()))
            },
        )
        .await?;
        Ok(())
    }
}

/// The value after `prefix` on the line that starts with it.
fn field(out: &str, prefix: &str) -> Result<String> {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned()))
        .with_context(|| format!("no {prefix:?} line in {out:?}"))
}

fn txid_after(out: &str, word: &str) -> Result<Txid> {
    let rest = out
        .split(word)
        .nth(1)
        .with_context(|| format!("no {word:?} in {out:?}"))?;
    let t = rest.split_whitespace().next().context("txid")?;
    Ok(Txid::from_str(t.trim_end_matches(':'))?)
}

fn bond_outpoint(path: &Path) -> Result<OutPoint> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    Ok(OutPoint::from_str(
        v["outpoint"].as_str().context("outpoint")?,
    )?)
}

#[tokio::test(flavor = "multi_thread")]
async fn bond_life_cycle_through_the_cli() -> Result<()> {
    let started = Instant::now();
    let env = Env::start().await?;
    const T: u16 = 10;

    // Keys: the owner, three federation members (2-of-3), a stranger.
    let mut pubkeys = Vec::new();
    for name in ["owner", "fed1", "fed2", "fed3", "stranger"] {
        let out = env.ok(&["keygen", "--out", &env.p(name)], false)?;
        pubkeys.push(field(&out, "public key:")?);
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.path("owner"))?.permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "secret key files are 0600");
    env.fails(
        &["keygen", "--out", &env.p("owner")],
        false,
        "never overwritten",
    );
    std::fs::write(
        env.path("federation.json"),
        json!({"threshold": 2, "keys": [pubkeys[1], pubkeys[2], pubkeys[3]]}).to_string(),
    )?;

    // Fund the owner key's wallet with mature coinbases.
    let addr = env
        .ok(
            &["wallet", "--owner-key", &env.p("owner"), "--address-only"],
            false,
        )?
        .trim()
        .to_owned();
    env.call("generatetoaddress", json!([2, addr])).await?;
    env.mine(100).await?;
    let wallet = env.ok(&["wallet", "--owner-key", &env.p("owner")], true)?;
    assert!(wallet.contains("in 2 output(s)"), "{wallet}");

    // Create, before and after confirming.
    let create = |out: &str, amount: &str| {
        env.ok(
            &[
                "create",
                "--owner-key",
                &env.p("owner"),
                "--federation",
                &env.p("federation.json"),
                "--amount",
                amount,
                "--timelock",
                &T.to_string(),
                "--out",
                &env.p(out),
            ],
            true,
        )
    };
    let out = create("bond1.json", "1000000")?;
    let bond1 = bond_outpoint(&env.path("bond1.json"))?;
    assert_eq!(txid_after(&out, "txid:")?, bond1.txid);
    env.confirm(bond1.txid).await?;
    assert_eq!(env.confirmations(bond1).await?, Some(1));
    let show = env.ok(&["show", "--bond", &env.p("bond1.json")], true)?;
    assert!(show.contains("1 confirmation(s)"), "{show}");
    assert!(
        show.contains(&format!("withdrawable in {} blocks", T - 1)),
        "{show}"
    );

    // Prove and verify.
    let node_id = "02".to_owned() + &pubkeys[4];
    let proof = env
        .ok(
            &[
                "prove",
                "--bond",
                &env.p("bond1.json"),
                "--owner-key",
                &env.p("owner"),
                "--role",
                "validator",
                "--node-id",
                &node_id,
                "--registration-key",
                &pubkeys[4],
            ],
            false,
        )?
        .trim()
        .to_owned();
    assert_eq!(proof.len(), 2 * boltensor_contracts::PROOF_LEN);
    let policy = [
        "--min-timelock",
        "8",
        "--margin",
        "2",
        "--min-confirmations",
        "1",
        "--min-amount",
        "100000",
    ];
    let verify = |proof: &str| {
        let mut a = vec!["verify", "--proof", proof, "--federation"];
        let fed = env.p("federation.json");
        a.push(&fed);
        a.extend(policy);
        let out = env.bond(&a, true);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = verify(&proof);
    assert!(ok, "{text}");
    assert!(
        text.contains("OK: bond") && text.contains("stake 1000000 sat"),
        "{text}"
    );

    // A tampered signature, bad hex, a wrong network, bad credentials, nothing listening.
    let mut tampered = proof.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    let (ok, text) = verify(std::str::from_utf8(&tampered)?);
    assert!(
        !ok && text.contains("REFUSED") && text.contains("signature"),
        "{text}"
    );
    let (ok, text) = verify("zz-not-hex");
    assert!(!ok && text.contains("not a bond proof"), "{text}");
    let fed = env.p("federation.json");
    let mut wrong_net = vec![
        "verify",
        "--proof",
        proof.as_str(),
        "--federation",
        fed.as_str(),
        "--network",
        "signet",
    ];
    wrong_net.extend(policy);
    env.fails(&wrong_net, true, "bitcoind is on regtest, not signet");
    let port = env.bitcoind.rpc_port().to_string();
    let url = format!("http://127.0.0.1:{port}");
    env.fails(
        &[
            "verify",
            "--proof",
            &proof,
            "--federation",
            &fed,
            "--rpc-url",
            &url,
            "--rpc-pass",
            "wrong",
        ],
        false,
        "refused the RPC credentials",
    );
    let dead = format!("http://127.0.0.1:{}", boltensor_testenv::free_port()?);
    env.fails(
        &[
            "verify",
            "--proof",
            &proof,
            "--federation",
            &fed,
            "--rpc-url",
            &dead,
            "--rpc-pass",
            "x",
        ],
        false,
        "cannot reach bitcoind",
    );
    // A cookie file (user:password) instead of flags; a missing one is named.
    std::fs::write(env.path("cookie"), format!("{USER}:{PASS}"))?;
    let cookie = env.p("cookie");
    let show = env.ok(
        &[
            "show",
            "--bond",
            &env.p("bond1.json"),
            "--rpc-url",
            &url,
            "--rpc-cookie",
            &cookie,
        ],
        false,
    )?;
    assert!(show.contains("1 confirmation(s)"), "{show}");
    env.fails(
        &[
            "show",
            "--bond",
            &env.p("bond1.json"),
            "--rpc-url",
            &url,
            "--rpc-cookie",
            &env.p("nope"),
        ],
        false,
        "cannot use RPC cookie file",
    );

    // Withdraw: refused before T with how many blocks are left, a mainnet address refused, then after T.
    let withdraw = |extra: &[&str]| {
        let b = env.p("bond1.json");
        let o = env.p("owner");
        let mut a = vec!["withdraw", "--bond", b.as_str(), "--owner-key", o.as_str()];
        a.extend(extra);
        env.bond(&a, true)
    };
    let out = withdraw(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains(&format!("timelock not reached: {} more blocks", T - 1)),
        "{err}"
    );
    let out = withdraw(&["--to", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is not a regtest address"),
        "{err}"
    );
    env.mine(u64::from(T) - 2).await?;
    let err = String::from_utf8_lossy(&withdraw(&[]).stderr).into_owned();
    assert!(err.contains("timelock not reached: 1 more blocks"), "{err}");
    env.mine(1).await?;
    let out = withdraw(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wtx = txid_after(&String::from_utf8_lossy(&out.stdout), "withdrawal")?;
    env.confirm(wtx).await?;
    assert_eq!(env.confirmations(bond1).await?, None, "the bond is spent");
    let back = env.confirmations(OutPoint { txid: wtx, vout: 0 }).await?;
    assert_eq!(back, Some(1), "the withdrawal confirmed");

    // The spent outpoint: the proof is refused, show says spent, withdraw again is refused.
    let (ok, text) = verify(&proof);
    assert!(
        !ok && text.contains("REFUSED") && text.contains("no unspent output"),
        "{text}"
    );
    let show = env.ok(&["show", "--bond", &env.p("bond1.json")], true)?;
    assert!(show.contains("spent (withdrawn or slashed)"), "{show}");
    let err = String::from_utf8_lossy(&withdraw(&[]).stderr).into_owned();
    assert!(err.contains("no unspent output"), "{err}");

    // Slash a second bond: fed1 signs and saves the PSBT, a stranger is refused, fed3 completes it.
    let out = env.bond(
        &[
            "create",
            "--owner-key",
            &env.p("owner"),
            "--federation",
            &fed,
            "--amount",
            "100000000000",
            "--timelock",
            "10",
            "--out",
            &env.p("too-big.json"),
        ],
        true,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("send coins to it first"),
        "{err}"
    );
    assert!(
        !env.path("too-big.json").exists(),
        "no bond file for a bond never made"
    );
    create("bond2.json", "500000")?;
    let bond2 = bond_outpoint(&env.path("bond2.json"))?;
    env.confirm(bond2.txid).await?;
    let proof2 = env.ok(
        &[
            "prove",
            "--bond",
            &env.p("bond2.json"),
            "--owner-key",
            &env.p("owner"),
            "--role",
            "miner",
            "--node-id",
            &node_id,
            "--registration-key",
            &pubkeys[4],
            "--json",
        ],
        false,
    )?;
    std::fs::write(env.path("proof2.json"), proof2)?;
    let psbt = env.p("slash.psbt");
    let out = env.ok(
        &[
            "slash",
            "--federation",
            &fed,
            "--proof",
            &format!("@{}", env.p("proof2.json")),
            "--sign-with",
            &env.p("fed1"),
            "--psbt-out",
            &psbt,
        ],
        true,
    )?;
    assert!(out.contains("1 of 2 signatures"), "{out}");
    assert_eq!(
        env.confirmations(bond2).await?,
        Some(1),
        "not spent with 1 of 2"
    );
    env.fails(
        &[
            "slash",
            "--federation",
            &fed,
            "--psbt-in",
            &psbt,
            "--sign-with",
            &env.p("stranger"),
        ],
        true,
        "is not a member of this federation",
    );
    let out = env.ok(
        &[
            "slash",
            "--federation",
            &fed,
            "--psbt-in",
            &psbt,
            "--sign-with",
            &env.p("fed3"),
        ],
        true,
    )?;
    let stx = txid_after(&out, "slash")?;
    env.confirm(stx).await?;
    assert_eq!(env.confirmations(bond2).await?, None, "slashed");
    let treasury: Value = env
        .call("getrawtransaction", json!([stx.to_string(), true]))
        .await?;
    let paid = Amount::from_btc(treasury["vout"][0]["value"].as_f64().context("value")?)?;
    println!(
        "MEASURED slash 2-of-3 via CLI: treasury got {} sat of 500000, vsize {}",
        paid.to_sat(),
        treasury["vsize"]
    );
    assert!(paid > Amount::from_sat(499_000));

    // A slash of an unknown outpoint: a clear error.
    let mut fake: Value = serde_json::from_str(&std::fs::read_to_string(env.path("bond2.json"))?)?;
    fake["outpoint"] = json!(format!("{}:7", bond2.txid));
    std::fs::write(env.path("fake.json"), fake.to_string())?;
    env.fails(
        &[
            "slash",
            "--federation",
            &fed,
            "--bond",
            &env.p("fake.json"),
            "--sign-with",
            &env.p("fed1"),
            "--sign-with",
            &env.p("fed2"),
        ],
        true,
        "no unspent output at",
    );
    println!(
        "MEASURED bond CLI life cycle: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
