//! Writes the checked-in seed corpus, `fuzz/corpus/<target>/seed-*`: a few valid inputs per target, so
//! the fuzzer starts from real shapes. Deterministic; run it again after a format change:
//!   cargo run --manifest-path fuzz/Cargo.toml --features seedgen --bin gen_seeds

use std::path::{Path, PathBuf};

use boltensor_contracts::{Evidence, SignedResponse};
use boltensor_coordinator::items::{
    Attestation, Deregistration, FeeReport, ParamVote, PayoutReceipt, SlashSignature,
};
use boltensor_coordinator::store::{AcceptedItem, SignedSession};
use boltensor_coordinator::ConsensusItem;
use boltensor_fuzz::{
    bond_proof, federation, keypair, node_id, registration, sample_epoch, weights, L402_KEY,
};
use boltensor_protocol::l402::{request_digest, Challenge, CreditNote, PaymentClaims};
use boltensor_protocol::Role;
use serde_json::json;

struct Corpus {
    root: PathBuf,
}

impl Corpus {
    fn put(&self, target: &str, name: &str, bytes: impl AsRef<[u8]>) {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed file");
    }

    /// Deterministic pseudo-random bytes (for the targets that take `arbitrary` structured input).
    fn blobs(&self, target: &str, count: usize, len: usize) {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ target.len() as u64;
        for i in 0..count {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect();
            self.put(target, &format!("blob-{i}"), bytes);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let c = Corpus { root };

    // l402
    let claims = PaymentClaims {
        payment_hash: [1; 32],
        price_msat: 21_000,
        expires_at: 1_900_000_000,
        miner: node_id(0).serialize(),
        request_digest: request_digest(
            "POST",
            "/v1/embeddings",
            b"{\"model\":\"m\",\"input\":\"hi\"}",
        ),
        credit_id: [0; 16],
        credit_msat: 0,
    };
    let token = claims.sign(&L402_KEY);
    let note = CreditNote {
        id: [3; 16],
        amount_msat: 5_000,
        expires_at: 1_900_000_000,
        miner: node_id(0).serialize(),
    }
    .sign(&L402_KEY);
    let challenge = Challenge {
        token: token.clone(),
        invoice: "lnbcrt210n1pjfuzzpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqf".into(),
    };
    c.put("l402", "challenge", challenge.header_value());
    c.put(
        "l402",
        "challenge-lsat",
        format!("LSAT token=\"{token}\", invoice=\"lnbc1\""),
    );
    c.put("l402", "authorization", format!("L402 {token}"));
    c.put(
        "l402",
        "authorization-preimage",
        format!("L402 {token}:{}", hex::encode([9u8; 32])),
    );
    c.put(
        "l402",
        "payment-credential",
        boltensor_protocol::payment_auth::credential(&token, &[9u8; 32]),
    );
    c.put("l402", "token", &token);
    c.put("l402", "credit-note", &note);

    // weights, epoch_inputs: structured (arbitrary) input.
    c.blobs("weights", 4, 256);
    c.blobs("epoch_inputs", 4, 512);

    // openai
    c.put(
        "openai",
        "embeddings",
        r#"{"model":"all-MiniLM-L6-v2","input":["a","b"],"encoding_format":"base64","user":"u"}"#,
    );
    c.put(
        "openai",
        "chat",
        r#"{"model":"smollm2","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_tokens":16,"temperature":0.7,"top_p":0.9,"seed":1,"stream":true,"stream_options":{"include_usage":true},"n":1}"#,
    );
    c.put(
        "openai",
        "embeddings-response",
        r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-1.25e-3]},{"object":"embedding","index":1,"embedding":"AACAPw=="}],"model":"m","usage":{"prompt_tokens":3,"total_tokens":3}}"#,
    );
    c.put(
        "openai",
        "chat-response",
        r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#,
    );
    c.put(
        "openai",
        "chat-chunk",
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"he"},"finish_reason":null}]}"#,
    );
    c.put(
        "openai",
        "error",
        r#"{"error":{"message":"pay first","type":"payment_required","param":null,"code":"payment_required"}}"#,
    );

    // bond_proof
    let proof = bond_proof(3, Role::Validator, 400_000);
    c.put("bond_proof", "validator", proof.encode());
    c.put(
        "bond_proof",
        "miner",
        bond_proof(1, Role::Miner, 50_000).encode(),
    );
    c.put("bond_proof", "hex", proof.to_hex());

    // evidence
    let equivocation = Evidence::equivocation(weights(2, 5, &[0, 1], 1), weights(2, 5, &[0, 1], 2));
    c.put("evidence", "equivocation", equivocation.encode());
    let refuted = SignedResponse::sign(&keypair(0), [4; 32], "all-MiniLM-L6-v2", [5; 32])
        .expect("short model name");
    c.put(
        "evidence",
        "refuted",
        Evidence::RefutedResponse(refuted).encode(),
    );

    // epoch
    let signed = sample_epoch();
    c.put(
        "epoch",
        "signed-epoch",
        serde_json::to_vec(&signed).expect("json"),
    );
    let items: Vec<AcceptedItem> = [
        ConsensusItem::Register(registration(7, Role::Miner, None)),
        ConsensusItem::Weights(weights(2, 0, &[0, 1, 7], 3)),
    ]
    .into_iter()
    .enumerate()
    .map(|(peer, item)| AcceptedItem { peer, item })
    .collect();
    let session = SignedSession {
        session: 4,
        items,
        epoch_digest: Some(hex::encode(signed.result.digest())),
        signatures: signed.signatures.clone(),
    };
    c.put(
        "epoch",
        "signed-session",
        serde_json::to_vec(&session).expect("json"),
    );

    // consensus_items: peer byte + item JSON.
    let (fed, _) = federation();
    let bonded = bond_proof(8, Role::Validator, 300_000);
    let items = [
        (
            "register-miner",
            0u8,
            ConsensusItem::Register(registration(8, Role::Miner, None)),
        ),
        (
            "register-validator",
            1,
            ConsensusItem::Register(registration(8, Role::Validator, Some(&bonded))),
        ),
        (
            "deregister",
            0,
            ConsensusItem::Deregister(Deregistration::with_sequence(&keypair(0), fed.id(), 2)),
        ),
        (
            "weights",
            2,
            ConsensusItem::Weights(weights(2, 0, &[0, 1], 9)),
        ),
        (
            "attest",
            3,
            ConsensusItem::Attest(Attestation {
                key: keypair(1).x_only_public_key().0,
                outpoint: bond_proof(1, Role::Miner, 50_000)
                    .claims
                    .outpoint
                    .to_string(),
                ok: true,
            }),
        ),
        (
            "vote",
            1,
            ConsensusItem::Vote(ParamVote {
                name: "kappa".into(),
                value: 30_000,
            }),
        ),
        (
            "receipt",
            0,
            ConsensusItem::Receipt(PayoutReceipt {
                epoch: 0,
                key: keypair(0).x_only_public_key().0,
                msat: 1_000,
                payment: hex::encode([6u8; 32]),
                payer: None,
            }),
        ),
        (
            "fees",
            1,
            ConsensusItem::Fees(FeeReport {
                fee_msat: 12_000,
                forwards: 12,
            }),
        ),
        (
            "slash-signature",
            2,
            ConsensusItem::SlashSignature(SlashSignature {
                outpoint: bond_proof(3, Role::Validator, 400_000)
                    .claims
                    .outpoint
                    .to_string(),
                signature: hex::encode([7u8; 64]),
            }),
        ),
    ];
    for (name, peer, item) in &items {
        let mut bytes = vec![*peer];
        bytes.extend(item.encode());
        c.put("consensus_items", name, bytes);
    }

    // p2p_frame: hello (index, ephemeral key, signature), then frames sealed under the fuzz target's key
    // (session + payload): a unit batch, SCALE-shaped bytes.
    let mut stream = Vec::new();
    stream.extend(1u32.to_be_bytes());
    stream.extend([0x02; 33]);
    stream.extend([0x11; 64]);
    let batch = serde_json::to_vec(
        &items
            .iter()
            .map(|(_, _, i)| {
                serde_json::from_slice::<serde_json::Value>(&i.encode()).expect("json")
            })
            .collect::<Vec<_>>(),
    )
    .expect("json");
    let mut sealer = boltensor_coordinator::net::Sealer::with_key([7; 32]);
    for payload in [batch.as_slice(), &[0, 0, 4, 1, 2, 3, 4], &[1, 0, 0, 0]] {
        stream.extend(sealer.seal(&boltensor_coordinator::net::frame_body(3, payload)));
    }
    c.put("p2p_frame", "stream", &stream);

    // config: 0 + federation.json, 1 + identity.json, 2 + secret.key.
    let mut bytes = vec![0u8];
    bytes.extend(serde_json::to_vec_pretty(&fed).expect("json"));
    c.put("config", "federation", bytes);
    c.put("config", "identity", b"\x01{\"index\": 2}");
    let mut bytes = vec![2u8];
    bytes.extend(hex::encode(keypair(0).secret_bytes()).as_bytes());
    bytes.push(b'\n');
    c.put("config", "secret-key", bytes);

    // directory: three coordinators' answers.
    let miner = |i: u64, score: f64, api: &str| {
        json!({"uid": i, "node_id": node_id(i).to_string(), "api": api, "models": ["m"],
               "incentive": (score * 65535.0) as u64, "consensus": 100, "score": score})
    };
    let answers = json!([
        {"epoch": 3, "miners": [miner(0, 0.75, "http://a:1"), miner(1, 0.25, "http://b:1/")]},
        {"epoch": 3, "miners": [miner(0, 0.5, "http://a:1"), miner(1, 0.5, "http://b:1")]},
        {"epoch": null, "miners": [miner(0, 1.0, "http://evil:1")]}
    ]);
    c.put(
        "directory",
        "three-answers",
        serde_json::to_vec(&answers).expect("json"),
    );

    println!("seeds written under {}", c.root.display());
}
