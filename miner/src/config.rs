//! Miner configuration: models, prices, limits.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, External, MiniLm, ModelError, ModelKind, SmolLm};

/// Prices in millisatoshis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    /// Charged for every request (always paid over Lightning, never from credit).
    pub per_request_msat: u64,
    /// Per token: input tokens for embeddings; prompt + reserved `max_tokens` for chat.
    pub per_token_msat: u64,
}

/// Where a model comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSource {
    /// A BERT sentence-embedding model directory (config.json, tokenizer.json, model.safetensors).
    MiniLm {
        /// The directory.
        dir: PathBuf,
    },
    /// A llama-architecture GGUF chat model (tokenizer inside).
    Gguf {
        /// The file.
        path: PathBuf,
        /// Serve it re-quantised to Q4_0 instead of Q8_0: the same model, coarser and cheaper (a test
        /// miner's cheat, for validators to catch).
        #[serde(default)]
        coarse: bool,
    },
    /// An external OpenAI-compatible server.
    External {
        /// e.g. `http://127.0.0.1:8080`.
        base_url: String,
        /// The server's name for the model.
        remote_model: String,
        /// What it does.
        model_kind: ModelKind,
        /// Bearer token, if the server wants one.
        api_key: Option<String>,
    },
}

/// One model the miner serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// The id clients use (`model` in requests).
    pub id: String,
    /// Where it comes from.
    pub source: ModelSource,
    /// Its price.
    pub price: Price,
    /// Largest input accepted, in tokens (larger gets 413).
    pub max_input_tokens: u32,
    /// Largest `max_tokens` accepted (chat).
    pub max_output_tokens: u32,
    /// `max_tokens` when the request gives none (chat).
    pub default_max_tokens: u32,
}

impl ModelSpec {
    /// Loads the model.
    pub fn load(&self) -> Result<Backend, ModelError> {
        Ok(match &self.source {
            ModelSource::MiniLm { dir } => Backend::MiniLm(Arc::new(MiniLm::load(dir)?)),
            ModelSource::Gguf { path, coarse } => {
                Backend::SmolLm(Arc::new(SmolLm::load(path, *coarse)?))
            }
            ModelSource::External {
                base_url,
                remote_model,
                model_kind,
                api_key,
            } => {
                let ext = Arc::new(External::new(
                    base_url,
                    remote_model,
                    api_key.clone(),
                    Duration::from_secs(120),
                ));
                match model_kind {
                    ModelKind::Embedding => Backend::ExternalEmbedding(ext),
                    ModelKind::Chat => Backend::ExternalChat(ext),
                }
            }
        })
    }
}

/// The models that ship with Boltensor (fetched by `scripts/fetch-models.sh` into `models_dir`).
pub fn default_models(models_dir: &Path) -> Vec<ModelSpec> {
    vec![
        ModelSpec {
            id: "all-minilm-l6-v2".into(),
            source: ModelSource::MiniLm {
                dir: models_dir.join("all-minilm-l6-v2"),
            },
            price: Price {
                per_request_msat: 1_000,
                per_token_msat: 10,
            },
            max_input_tokens: 256,
            max_output_tokens: 0,
            default_max_tokens: 0,
        },
        ModelSpec {
            id: "smollm2-135m-instruct".into(),
            source: ModelSource::Gguf {
                path: models_dir
                    .join("smollm2-135m-instruct")
                    .join("SmolLM2-135M-Instruct.Q4_1.gguf"),
                coarse: false,
            },
            price: Price {
                per_request_msat: 1_000,
                per_token_msat: 100,
            },
            max_input_tokens: 1024,
            max_output_tokens: 512,
            default_max_tokens: 64,
        },
    ]
}

/// The default models directory: `$BOLTENSOR_CACHE/models` or `~/.cache/boltensor/models`.
pub fn default_models_dir() -> PathBuf {
    let cache = std::env::var_os("BOLTENSOR_CACHE").map_or_else(
        || {
            std::env::var_os("HOME")
                .map_or_else(|| PathBuf::from("."), PathBuf::from)
                .join(".cache")
                .join("boltensor")
        },
        PathBuf::from,
    );
    cache.join("models")
}

/// Everything a miner needs besides its Lightning node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinerConfig {
    /// The models served.
    pub models: Vec<ModelSpec>,
    /// Store and L402 key live here.
    pub data_dir: PathBuf,
    /// Hold invoices and tokens expire after this many seconds.
    pub invoice_expiry_secs: u32,
    /// How long a paid request waits for its HTLC to arrive.
    pub payment_wait: Duration,
    /// Longest a payment is held: the model must finish within it, and a payment whose request does not
    /// come back within it is failed back. Kept far inside LDK's claim deadline.
    pub hold_timeout: Duration,
    /// Largest request body, bytes (larger gets 413).
    pub max_body_bytes: usize,
    /// Credit notes expire after this many seconds.
    pub credit_ttl_secs: u64,
    /// Longest a request may take until its response starts (504 beyond). Keep it above
    /// `payment_wait + hold_timeout`, which bound a paid request; a paid request cut off by it is
    /// failed back like one whose client went away.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Duration,
    /// Per-client-IP request rate limit (429 beyond).
    #[serde(default)]
    pub rate_limit: boltensor_http::RateLimit,
    /// Deliberate misbehaviour, for tests and the devnet only (validators must catch it).
    #[serde(default)]
    pub misbehaviour: Option<Misbehaviour>,
    /// Most model runs started before their payment is held (the early start) at once; beyond it, a
    /// request's model starts once its payment is held. Unpaid runs give way to paid ones.
    #[serde(default = "default_max_unpaid_runs")]
    pub max_unpaid_runs: usize,
    /// Most paid requests admitted per model at once (payment held: waiting for the model, or running):
    /// beyond it a new request gets 429 with `Retry-After` before any invoice is issued, so a paid request
    /// does not wait out its hold in a queue and nothing is charged for being turned away. Tokens sent
    /// without paying do not count (they could fill the queue for free).
    #[serde(default = "default_max_queue")]
    pub max_queue: usize,
    /// Largest request body kept with its challenge for pay-first L402 clients (bLIP-26 as every L402
    /// agent does it: pay the invoice, then come back with `L402 <token>:<preimage>`): when a payment
    /// for the challenge is held and no request is being served for it, the kept request runs, its result
    /// is stored, and only then is the payment claimed. A larger request is answered only in the
    /// concurrent flow (token first, payment alongside). 0 keeps nothing.
    #[serde(default = "default_pay_first_max_body")]
    pub pay_first_max_body_bytes: usize,
    /// Most bytes of kept requests held at once (in memory; a kept request goes when its challenge is
    /// served, failed or expires): beyond it, new challenges keep nothing until older ones go. Bounds
    /// what unpaid challenges can make the miner hold, whatever their rate.
    #[serde(default = "default_pay_first_max_kept")]
    pub pay_first_max_kept_bytes: usize,
}

fn default_pay_first_max_body() -> usize {
    64 * 1024
}

fn default_pay_first_max_kept() -> usize {
    64 * 1024 * 1024
}

fn default_max_unpaid_runs() -> usize {
    2
}

fn default_max_queue() -> usize {
    8
}

/// Ways a test miner cheats or fails, for validators to catch (tests and the devnet only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Misbehaviour {
    /// Answers embeddings with random unit vectors.
    RandomEmbeddings,
    /// Sleeps this long before answering.
    Slow(Duration),
    /// Fails every third paid request (the payment is failed back).
    DropEveryThird,
}

impl MinerConfig {
    /// Defaults around `models` and `data_dir`.
    pub fn new(models: Vec<ModelSpec>, data_dir: impl Into<PathBuf>) -> Self {
        MinerConfig {
            models,
            data_dir: data_dir.into(),
            invoice_expiry_secs: 600,
            payment_wait: Duration::from_secs(15),
            hold_timeout: Duration::from_secs(60),
            max_body_bytes: 256 * 1024,
            credit_ttl_secs: 24 * 3600,
            request_timeout: default_request_timeout(),
            rate_limit: boltensor_http::RateLimit::default(),
            misbehaviour: None,
            max_unpaid_runs: default_max_unpaid_runs(),
            max_queue: default_max_queue(),
            pay_first_max_body_bytes: default_pay_first_max_body(),
            pay_first_max_kept_bytes: default_pay_first_max_kept(),
        }
    }

    /// The HTTP limits the API is served with.
    pub fn http_limits(&self) -> boltensor_http::Limits {
        boltensor_http::Limits {
            max_body_bytes: self.max_body_bytes,
            request_timeout: self.request_timeout,
            rate: self.rate_limit,
            ..boltensor_http::Limits::default()
        }
    }
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(300)
}
