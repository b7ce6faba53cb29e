//! Model backends: real models on CPU with candle, or an external OpenAI-compatible server.
//!
//! - [`MiniLm`]: all-MiniLM-L6-v2 sentence embeddings (BERT, F32 safetensors, masked mean pooling, L2 norm).
//! - [`SmolLm`]: a llama-architecture GGUF chat model (SmolLM2-135M-Instruct), greedy or sampled decoding.
//!   A Q4_1 file is re-quantised once to Q8_0 next to it (candle has no fast Q4_1 CPU kernel).
//! - [`External`]: forwards to llama.cpp / vLLM / Ollama, for operators with bigger models or a GPU.
//!
//! Inference runs on the blocking pool, one request at a time per model (batch size 1 keeps outputs
//! bit-reproducible for validators). [`EmbedBatcher`] runs concurrent embedding requests as batched
//! forward passes instead; `boltensor bench embed` measures it against one pass per text, and on this
//! project's 2-core CPU it is not faster (0.89–0.95×), so the miner does not use it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use boltensor_protocol::openai::{
    ChatMessage, ChatRequest, ChatResponse, EmbeddingInput, EmbeddingVector, EmbeddingsRequest,
    EmbeddingsResponse,
};
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use candle_transformers::models::quantized_llama::ModelWeights;
use tokenizers::Tokenizer;
use tokio::sync::mpsc;

/// Why a model could not load or answer.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model file is missing or unreadable.
    #[error("cannot read model file {path}: {reason}")]
    Load {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The model failed while running.
    #[error("inference failed: {0}")]
    Inference(String),
    /// The external server failed or answered something unusable.
    #[error("external model server: {0}")]
    External(String),
    /// The run was stopped between two tokens: its payment did not come in time, or paid work needed
    /// the model ([`RunControl`]).
    #[error("model run cancelled")]
    Cancelled,
}

const UNPAID: u8 = 0;
const PAID: u8 = 1;
const CANCELLED: u8 = 2;

/// Controls one model run started before its payment is held (the early start of docs/adr/0008), and
/// accounts for the compute it used.
///
/// An unpaid run stops at the next token once it is [cancelled](RunControl::cancel) (its payment did not
/// come by the deadline) or once paid work waits for the model (paid work never waits behind unpaid
/// work). [`RunControl::mark_paid`] and both kinds of cancellation race through one atomic state, so
/// exactly one wins: a run that was marked paid is never cancelled for being unpaid, and a handler that
/// fails to mark its run paid knows that run is dead (docs/security.md, row 8).
#[derive(Debug)]
pub struct RunControl {
    state: std::sync::atomic::AtomicU8,
    stats: Option<Arc<ComputeStats>>,
    /// The unpaid-compute permit, held while the run computes unpaid.
    permit: Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
}

impl RunControl {
    /// A run whose payment is held: never cancelled for want of payment.
    pub fn paid() -> Arc<Self> {
        Arc::new(RunControl {
            state: std::sync::atomic::AtomicU8::new(PAID),
            stats: None,
            permit: Mutex::new(None),
        })
    }

    /// A run started before its payment is held, holding one of the miner's few unpaid-compute
    /// `permit`s until it is paid or ends; its compute is added to `stats` unless it ends paid.
    pub fn unpaid(
        stats: Arc<ComputeStats>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Arc<Self> {
        stats.unpaid_run_started();
        Arc::new(RunControl {
            state: std::sync::atomic::AtomicU8::new(UNPAID),
            stats: Some(stats),
            permit: Mutex::new(Some(permit)),
        })
    }

    /// Gives the unpaid-compute permit back (once).
    fn release(&self) {
        let permit = self.permit.lock().unwrap_or_else(|p| p.into_inner()).take();
        if permit.is_some() {
            if let Some(stats) = &self.stats {
                stats
                    .in_flight
                    .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    fn cas(&self, from: u8, to: u8) -> Result<u8, u8> {
        use std::sync::atomic::Ordering::SeqCst;
        self.state.compare_exchange(from, to, SeqCst, SeqCst)
    }

    fn load(&self) -> u8 {
        self.state.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The payment is held: the run may finish. False if it was already cancelled (start a new run).
    pub fn mark_paid(&self) -> bool {
        match self.cas(UNPAID, PAID) {
            Ok(_) => {
                self.release();
                true
            }
            Err(state) => state == PAID,
        }
    }

    /// Cancels an unpaid run (no effect on a paid one); it stops at its next token.
    pub fn cancel(&self) {
        let _ = self.cas(UNPAID, CANCELLED);
    }

    /// Stops the run at its next token, paid or not (the request failed, or took too long).
    pub fn abort(&self) {
        self.state
            .store(CANCELLED, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the run is paid.
    pub fn is_paid(&self) -> bool {
        self.load() == PAID
    }

    /// Checked between tokens: whether to stop now. An unpaid run gives way to `paid_waiting` work.
    fn should_stop(&self, paid_waiting: bool) -> bool {
        match self.load() {
            PAID => false,
            CANCELLED => true,
            _ => paid_waiting && matches!(self.cas(UNPAID, CANCELLED), Ok(_) | Err(CANCELLED)),
        }
    }

    /// Accounts a finished (or stopped) run that started unpaid, and gives its permit back.
    fn account(&self, started: std::time::Instant, tokens: u64, cancelled: bool) {
        if let Some(stats) = &self.stats {
            stats.unpaid_run_ended(started.elapsed(), tokens, !self.is_paid(), cancelled);
        }
        self.release();
    }
}

impl Drop for RunControl {
    fn drop(&mut self) {
        self.release();
    }
}

/// Model compute spent on runs started before their payment was held (counters for `/metrics` and
/// the free-compute test).
#[derive(Debug, Default)]
pub struct ComputeStats {
    early_runs: std::sync::atomic::AtomicU64,
    unpaid_nanos: std::sync::atomic::AtomicU64,
    unpaid_tokens: std::sync::atomic::AtomicU64,
    cancelled: std::sync::atomic::AtomicU64,
    in_flight: std::sync::atomic::AtomicU64,
    max_in_flight: std::sync::atomic::AtomicU64,
}

/// A snapshot of [`ComputeStats`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ComputeSnapshot {
    /// Model runs started before their payment was held.
    pub early_runs: u64,
    /// Model time of those runs that ended without their payment, seconds.
    pub unpaid_seconds: f64,
    /// Tokens generated by those runs.
    pub unpaid_tokens: u64,
    /// Runs stopped before their end (no payment, or paid work needed the model).
    pub cancelled: u64,
    /// Unpaid runs computing right now.
    pub in_flight: u64,
    /// The most unpaid runs ever computing at once.
    pub max_in_flight: u64,
}

impl ComputeStats {
    /// The counters now.
    pub fn snapshot(&self) -> ComputeSnapshot {
        use std::sync::atomic::Ordering::Relaxed;
        ComputeSnapshot {
            early_runs: self.early_runs.load(Relaxed),
            unpaid_seconds: self.unpaid_nanos.load(Relaxed) as f64 / 1e9,
            unpaid_tokens: self.unpaid_tokens.load(Relaxed),
            cancelled: self.cancelled.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            max_in_flight: self.max_in_flight.load(Relaxed),
        }
    }

    fn unpaid_run_started(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.early_runs.fetch_add(1, Relaxed);
        let now = self.in_flight.fetch_add(1, Relaxed) + 1;
        self.max_in_flight.fetch_max(now, Relaxed);
    }

    fn unpaid_run_ended(&self, elapsed: Duration, tokens: u64, unpaid: bool, cancelled: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        if cancelled {
            self.cancelled.fetch_add(1, Relaxed);
        }
        if unpaid {
            self.unpaid_nanos
                .fetch_add(elapsed.as_nanos() as u64, Relaxed);
            self.unpaid_tokens.fetch_add(tokens, Relaxed);
        }
    }
}

fn load_err(path: &Path) -> impl FnOnce(String) -> ModelError + '_ {
    move |reason| ModelError::Load {
        path: path.to_path_buf(),
        reason,
    }
}

fn infer<E: std::fmt::Display>(e: E) -> ModelError {
    ModelError::Inference(e.to_string())
}

/// What a model does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// `/v1/embeddings`.
    Embedding,
    /// `/v1/chat/completions`.
    Chat,
}

/// all-MiniLM-L6-v2 on candle.
pub struct MiniLm {
    model: BertModel,
    tokenizer: Tokenizer,
    batcher: std::sync::OnceLock<EmbedBatcher>,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MiniLm")
    }
}

impl MiniLm {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| load_err(&path)(e.to_string()))
        };
        let config: BertConfig = serde_json::from_slice(&read("config.json")?)
            .map_err(|e| load_err(&dir.join("config.json"))(e.to_string()))?;
        let tok_path = dir.join("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tok_path).map_err(|e| load_err(&tok_path)(e.to_string()))?;
        // The shipped tokenizer pads every input to 128 tokens: embed exactly the input's tokens.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| load_err(&tok_path)(e.to_string()))?;
        let weights_path = dir.join("model.safetensors");
        let vb = VarBuilder::from_buffered_safetensors(
            read("model.safetensors")?,
            DType::F32,
            &Device::Cpu,
        )
        .map_err(|e| load_err(&weights_path)(e.to_string()))?;
        let model =
            BertModel::load(vb, &config).map_err(|e| load_err(&weights_path)(e.to_string()))?;
        Ok(MiniLm {
            model,
            tokenizer,
            batcher: std::sync::OnceLock::new(),
        })
    }

    /// This model's [`EmbedBatcher`], started on first use (its thread holds the model weakly and ends
    /// with it).
    pub fn batcher(self: &Arc<Self>) -> &EmbedBatcher {
        self.batcher
            .get_or_init(|| EmbedBatcher::start(Arc::downgrade(self)))
    }

    /// Tokens of `text`, special tokens included.
    pub fn count_tokens(&self, text: &str) -> Result<u32, ModelError> {
        let enc = self.tokenizer.encode(text, true).map_err(infer)?;
        Ok(enc.get_ids().len() as u32)
    }

    /// The L2-normalised mean-pooled embedding of `text` (batch size 1).
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, ModelError> {
        let enc = self.tokenizer.encode(text, true).map_err(infer)?;
        let ids = Tensor::new(enc.get_ids(), &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(infer)?;
        let types = ids.zeros_like().map_err(infer)?;
        let hidden = self.model.forward(&ids, &types, None).map_err(infer)?;
        let pooled = hidden.mean(1).and_then(|t| t.squeeze(0)).map_err(infer)?;
        let norm = pooled
            .sqr()
            .and_then(|t| t.sum_all())
            .and_then(|t| t.sqrt())
            .map_err(infer)?;
        let normed = pooled.broadcast_div(&norm).map_err(infer)?;
        normed.to_vec1::<f32>().map_err(infer)
    }

    /// [`MiniLm::embed`] of several texts in one forward pass: padded to the longest, with an attention
    /// mask, mean-pooled over each text's own tokens. The vectors agree with one-at-a-time ones to
    /// float rounding (cosine ≥ 0.99999; validators accept ≥ 0.9999), at a fraction of the cost per text
    /// when many short texts come together.
    pub fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, ModelError> {
        match texts {
            [] => return Ok(Vec::new()),
            [one] => return Ok(vec![self.embed(one)?]),
            _ => {}
        }
        let encs = texts
            .iter()
            .map(|t| self.tokenizer.encode(*t, true).map_err(infer))
            .collect::<Result<Vec<_>, _>>()?;
        // Texts of similar length go through together, so padding costs little: sorted by length, a
        // group closes when the next text is a quarter longer than its first (or it has 16 texts).
        let mut order: Vec<usize> = (0..encs.len()).collect();
        order.sort_by_key(|&i| encs[i].get_ids().len());
        let mut out = vec![Vec::new(); encs.len()];
        let mut start = 0;
        while start < order.len() {
            let first = encs[order[start]].get_ids().len();
            let mut end = start + 1;
            while end < order.len()
                && end - start < 16
                && encs[order[end]].get_ids().len() * 4 <= first * 5 + 4
            {
                end += 1;
            }
            let group: Vec<&tokenizers::Encoding> =
                order[start..end].iter().map(|&i| &encs[i]).collect();
            for (&i, v) in order[start..end].iter().zip(self.forward_padded(&group)?) {
                out[i] = v;
            }
            start = end;
        }
        Ok(out)
    }

    /// One forward pass over `encs`, padded to the longest, mean-pooled over each one's own tokens.
    fn forward_padded(&self, encs: &[&tokenizers::Encoding]) -> Result<Vec<Vec<f32>>, ModelError> {
        let width = encs.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(encs.len() * width);
        let mut mask = Vec::with_capacity(encs.len() * width);
        for e in encs {
            let n = e.get_ids().len();
            ids.extend_from_slice(e.get_ids());
            ids.extend(std::iter::repeat_n(0u32, width - n));
            mask.extend(std::iter::repeat_n(1u32, n));
            mask.extend(std::iter::repeat_n(0u32, width - n));
        }
        let shape = (encs.len(), width);
        let ids = Tensor::from_vec(ids, shape, &Device::Cpu).map_err(infer)?;
        let mask = Tensor::from_vec(mask, shape, &Device::Cpu).map_err(infer)?;
        let types = ids.zeros_like().map_err(infer)?;
        let hidden = self
            .model
            .forward(&ids, &types, Some(&mask))
            .map_err(infer)?;
        // Mean over each text's own tokens: Σ hidden × mask / Σ mask.
        let maskf = mask
            .to_dtype(DType::F32)
            .and_then(|m| m.unsqueeze(2))
            .map_err(infer)?;
        let summed = hidden
            .broadcast_mul(&maskf)
            .and_then(|t| t.sum(1))
            .map_err(infer)?;
        let counts = maskf.sum(1).map_err(infer)?;
        let pooled = summed.broadcast_div(&counts).map_err(infer)?;
        let norms = pooled
            .sqr()
            .and_then(|t| t.sum_keepdim(1))
            .and_then(|t| t.sqrt())
            .map_err(infer)?;
        pooled
            .broadcast_div(&norms)
            .and_then(|t| t.to_vec2::<f32>())
            .map_err(infer)
    }
}

/// The most texts one batched forward pass takes.
pub const MAX_EMBED_BATCH: usize = 32;

/// One embedding request waiting for a batch.
struct EmbedJob {
    texts: Vec<String>,
    ctl: Arc<RunControl>,
    reply: tokio::sync::oneshot::Sender<Result<Vec<Vec<f32>>, ModelError>>,
}

/// Runs concurrent embedding requests as batched forward passes (as text-embeddings-inference does): one
/// thread per model takes every request waiting, up to [`MAX_EMBED_BATCH`] texts, and embeds them in one
/// [`MiniLm::embed_batch`]. A request that is cancelled (unpaid, past its deadline) before its batch
/// starts is answered `Cancelled` and left out.
#[derive(Debug, Clone)]
pub struct EmbedBatcher {
    tx: std::sync::mpsc::Sender<EmbedJob>,
    /// Forward passes run and texts embedded in them.
    stats: Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
}

impl std::fmt::Debug for EmbedJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedJob")
            .field("texts", &self.texts.len())
            .finish_non_exhaustive()
    }
}

impl EmbedBatcher {
    /// Starts the batching thread for `model`; it ends when the batcher (the model owns it) is dropped.
    fn start(model: std::sync::Weak<MiniLm>) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<EmbedJob>();
        let stats = Arc::new((
            std::sync::atomic::AtomicU64::new(0),
            std::sync::atomic::AtomicU64::new(0),
        ));
        // One batching thread per core: each takes what waits (up to its share of a batch) while the
        // others compute.
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
        let per_worker = MAX_EMBED_BATCH.div_ceil(workers);
        let rx = Arc::new(Mutex::new(rx));
        for w in 0..workers {
            let (rx, model, counts) = (Arc::clone(&rx), model.clone(), Arc::clone(&stats));
            std::thread::Builder::new()
                .name(format!("embed-batcher-{w}"))
                .spawn(move || loop {
                    let (jobs, n) = {
                        let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
                        let Ok(first) = rx.recv() else { break };
                        let mut n = first.texts.len();
                        let mut jobs = vec![first];
                        while n < per_worker {
                            match rx.try_recv() {
                                Ok(job) => {
                                    n += job.texts.len();
                                    jobs.push(job);
                                }
                                Err(_) => break,
                            }
                        }
                        (jobs, n)
                    };
                    let Some(model) = model.upgrade() else { break };
                    counts.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    counts
                        .1
                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    run_batch(&model, jobs);
                })
                .expect("a thread starts");
        }
        EmbedBatcher { tx, stats }
    }

    /// Batches taken so far and the texts in them (texts / batches = the mean batch).
    pub fn stats(&self) -> (u64, u64) {
        (
            self.stats.0.load(std::sync::atomic::Ordering::Relaxed),
            self.stats.1.load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Embeds `texts` in the next batch.
    pub async fn embed(
        &self,
        texts: Vec<String>,
        ctl: Arc<RunControl>,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(EmbedJob { texts, ctl, reply })
            .map_err(|_| ModelError::Inference("the embedding batcher stopped".into()))?;
        rx.await
            .map_err(|_| ModelError::Inference("the embedding batcher stopped".into()))?
    }
}

fn run_batch(model: &MiniLm, jobs: Vec<EmbedJob>) {
    let started = std::time::Instant::now();
    let mut live = Vec::with_capacity(jobs.len());
    for job in jobs {
        if job.ctl.should_stop(false) {
            if !job.ctl.is_paid() {
                job.ctl.account(started, 0, true);
            }
            let _ = job.reply.send(Err(ModelError::Cancelled));
        } else {
            live.push(job);
        }
    }
    let texts: Vec<&str> = live
        .iter()
        .flat_map(|j| j.texts.iter().map(String::as_str))
        .collect();
    let result = model.embed_batch(&texts);
    let mut at = 0;
    for job in live {
        let n = job.texts.len();
        let out = match &result {
            Ok(vectors) => Ok(vectors[at..at + n].to_vec()),
            Err(e) => Err(ModelError::Inference(e.to_string())),
        };
        at += n;
        if !job.ctl.is_paid() {
            job.ctl.account(started, n as u64, false);
        }
        let _ = job.reply.send(out);
    }
}

/// The text generated for one chat request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatOutput {
    /// The answer.
    pub text: String,
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// `stop` (end of turn) or `length` (hit `max_tokens`).
    pub finish_reason: String,
}

/// The outcome of [`SmolLm::verify_greedy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreedyCheck {
    /// Tokens (and end of turn) that were the greedy choice, from the start, until the first that was not.
    pub matched: usize,
    /// Tokens checked (completion tokens, plus end of turn when the answer stopped).
    pub total: usize,
}

impl GreedyCheck {
    /// Fraction matched, 1.0 for an empty check.
    pub fn score(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.matched as f64 / self.total as f64
        }
    }
}

/// Generation parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenParams {
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// 0 is greedy.
    pub temperature: f64,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Sampling seed.
    pub seed: u64,
}

/// A llama-architecture GGUF chat model (SmolLM2) on candle.
pub struct SmolLm {
    weights: Mutex<ModelWeights>,
    tokenizer: Tokenizer,
    eos: Vec<u32>,
    /// Paid runs waiting for `weights`: an unpaid run holding it stops at its next token.
    paid_waiting: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for SmolLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmolLm")
    }
}

impl SmolLm {
    /// Loads a GGUF file; a Q4_1 file is first re-quantised to Q8_0 (cached beside it), or with
    /// `coarse` to Q4_0: the same model at a coarser quantisation, what a cheating miner would serve.
    pub fn load(gguf: &Path, coarse: bool) -> Result<Self, ModelError> {
        let path = if coarse {
            requantize(gguf, GgmlDType::Q4_0, "Q4_0")?
        } else {
            requantize(gguf, GgmlDType::Q8_0, "Q8_0")?
        };
        let mut file = std::fs::File::open(&path).map_err(|e| load_err(&path)(e.to_string()))?;
        let content =
            gguf_file::Content::read(&mut file).map_err(|e| load_err(&path)(e.to_string()))?;
        use candle_core::quantized::tokenizer::TokenizerFromGguf;
        let tokenizer =
            Tokenizer::from_gguf(&content).map_err(|e| load_err(&path)(e.to_string()))?;
        let weights = ModelWeights::from_gguf(content, &mut file, &Device::Cpu)
            .map_err(|e| load_err(&path)(e.to_string()))?;
        let eos = ["<|im_end|>", "<|endoftext|>"]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        Ok(SmolLm {
            weights: Mutex::new(weights),
            tokenizer,
            eos,
            paid_waiting: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// The ChatML prompt SmolLM2-Instruct was trained on.
    pub fn prompt(messages: &[(String, String)]) -> String {
        let mut p = String::new();
        if !messages.iter().any(|(r, _)| r == "system") {
            p.push_str(
                "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
            );
        }
        for (role, content) in messages {
            p.push_str(&format!("<|im_start|>{role}\n{content}<|im_end|>\n"));
        }
        p.push_str("<|im_start|>assistant\n");
        p
    }

    /// Tokens of `text`.
    pub fn count_tokens(&self, text: &str) -> Result<u32, ModelError> {
        let enc = self.tokenizer.encode(text, false).map_err(infer)?;
        Ok(enc.get_ids().len() as u32)
    }

    /// Teacher forcing: re-scores `completion` after `prompt` and checks that each of its tokens is the
    /// greedy choice, within `margin` of the best logit (logits move a little across CPUs and between
    /// whole-prompt and token-by-token feeding; the top token does not). With `stopped`, the token after
    /// the completion must be end-of-turn.
    pub fn verify_greedy(
        &self,
        prompt: &str,
        completion: &str,
        stopped: bool,
        margin: f32,
    ) -> Result<GreedyCheck, ModelError> {
        let prompt_ids = self
            .tokenizer
            .encode(prompt, false)
            .map_err(infer)?
            .get_ids()
            .to_vec();
        // Tokenise prompt and completion together: alone, the completion's first word would get the
        // tokenizer's prefix space and a different id than the model generated.
        let joint = self
            .tokenizer
            .encode(format!("{prompt}{completion}"), false)
            .map_err(infer)?
            .get_ids()
            .to_vec();
        let completion_ids = match joint.strip_prefix(prompt_ids.as_slice()) {
            Some(rest) => rest.to_vec(),
            None => self
                .tokenizer
                .encode(completion, false)
                .map_err(infer)?
                .get_ids()
                .to_vec(),
        };
        let mut weights = self.lock_weights(&RunControl::paid())?;
        weights.clear_kv_cache();
        let mut input = Tensor::new(prompt_ids.as_slice(), &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(infer)?;
        let mut pos = 0;
        let mut expected: Vec<Option<u32>> = completion_ids.iter().map(|t| Some(*t)).collect();
        if stopped {
            expected.push(None); // end of turn
        }
        let mut matched = 0;
        for want in expected.iter().copied() {
            let logits = weights
                .forward(&input, pos)
                .and_then(|l| l.squeeze(0))
                .and_then(|l| l.to_dtype(DType::F32))
                .and_then(|l| l.to_vec1::<f32>())
                .map_err(infer)?;
            pos += input.dim(D::Minus1).map_err(infer)?;
            let best = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let ok = match want {
                Some(t) => logits.get(t as usize).is_some_and(|l| *l >= best - margin),
                None => self
                    .eos
                    .iter()
                    .any(|t| logits.get(*t as usize).is_some_and(|l| *l >= best - margin)),
            };
            if !ok {
                break;
            }
            matched += 1;
            let Some(t) = want else { break };
            input = Tensor::new(&[t], &Device::Cpu)
                .and_then(|t| t.unsqueeze(0))
                .map_err(infer)?;
        }
        Ok(GreedyCheck {
            matched,
            total: expected.len(),
        })
    }

    /// Takes the model for a run. A paid run queues for it (counted in `paid_waiting`, which makes an
    /// unpaid run holding it stop at its next token). An unpaid run never queues ahead of paid work: it
    /// takes the model only when it is free and no paid run waits, polling, and stops waiting when it
    /// is cancelled; if it is paid meanwhile it queues as paid work.
    fn lock_weights(
        &self,
        ctl: &RunControl,
    ) -> Result<std::sync::MutexGuard<'_, ModelWeights>, ModelError> {
        let poisoned = || ModelError::Inference("model poisoned by an earlier panic".into());
        loop {
            if ctl.is_paid() {
                let waiting = PaidWaiting::new(&self.paid_waiting);
                let weights = self.weights.lock().map_err(|_| poisoned())?;
                drop(waiting);
                return Ok(weights);
            }
            if ctl.should_stop(false) {
                return Err(ModelError::Cancelled);
            }
            if self.paid_waiting.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                match self.weights.try_lock() {
                    Ok(weights) => return Ok(weights),
                    Err(std::sync::TryLockError::Poisoned(_)) => return Err(poisoned()),
                    Err(std::sync::TryLockError::WouldBlock) => {}
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Generates an answer to `prompt`, sending each new piece of text to `on_text` as it comes.
    pub fn generate(
        &self,
        prompt: &str,
        params: GenParams,
        on_text: impl FnMut(&str),
    ) -> Result<ChatOutput, ModelError> {
        self.generate_controlled(prompt, params, &RunControl::paid(), on_text)
    }

    /// [`SmolLm::generate`] under `ctl`: checked before every token, so a cancelled run stops within one
    /// token; a paid run makes an unpaid one holding the model give way.
    pub fn generate_controlled(
        &self,
        prompt: &str,
        params: GenParams,
        ctl: &RunControl,
        on_text: impl FnMut(&str),
    ) -> Result<ChatOutput, ModelError> {
        let started = std::time::Instant::now();
        let unpaid = !ctl.is_paid();
        let mut tokens = 0u64;
        let out = self.generate_locked(prompt, params, ctl, &mut tokens, on_text);
        if unpaid {
            ctl.account(started, tokens, matches!(out, Err(ModelError::Cancelled)));
        }
        out
    }

    fn generate_locked(
        &self,
        prompt: &str,
        params: GenParams,
        ctl: &RunControl,
        tokens: &mut u64,
        mut on_text: impl FnMut(&str),
    ) -> Result<ChatOutput, ModelError> {
        let enc = self.tokenizer.encode(prompt, false).map_err(infer)?;
        let prompt_ids = enc.get_ids().to_vec();
        let sampling = if params.temperature <= 0.0 {
            Sampling::ArgMax
        } else {
            match params.top_p {
                Some(p) if p < 1.0 => Sampling::TopP {
                    p,
                    temperature: params.temperature,
                },
                _ => Sampling::All {
                    temperature: params.temperature,
                },
            }
        };
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling);
        let mut weights = self.lock_weights(ctl)?;
        weights.clear_kv_cache();

        let mut generated: Vec<u32> = Vec::new();
        let mut sent = String::new();
        let mut finish = "length";
        let mut input = Tensor::new(prompt_ids.as_slice(), &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(infer)?;
        let mut pos = 0;
        while generated.len() < params.max_tokens as usize {
            if ctl.should_stop(self.paid_waiting.load(std::sync::atomic::Ordering::SeqCst) > 0) {
                return Err(ModelError::Cancelled);
            }
            *tokens += 1;
            let logits = weights
                .forward(&input, pos)
                .and_then(|l| l.squeeze(0))
                .and_then(|l| l.to_dtype(DType::F32))
                .map_err(infer)?;
            pos += input.dim(D::Minus1).map_err(infer)?;
            let next = sampler.sample(&logits).map_err(infer)?;
            if self.eos.contains(&next) {
                finish = "stop";
                break;
            }
            generated.push(next);
            let text = self.tokenizer.decode(&generated, true).map_err(infer)?;
            // Send only complete characters: a multi-byte character can span tokens.
            if text.len() > sent.len() && !text.ends_with('\u{FFFD}') && text.starts_with(&sent) {
                on_text(&text[sent.len()..]);
                sent = text;
            }
            input = Tensor::new(&[next], &Device::Cpu)
                .and_then(|t| t.unsqueeze(0))
                .map_err(infer)?;
        }
        let text = self.tokenizer.decode(&generated, true).map_err(infer)?;
        if text.len() > sent.len() && text.starts_with(&sent) {
            on_text(&text[sent.len()..]);
        }
        Ok(ChatOutput {
            text,
            prompt_tokens: prompt_ids.len() as u32,
            completion_tokens: generated.len() as u32,
            finish_reason: finish.to_owned(),
        })
    }
}

/// A paid run waiting for a model's lock, counted until it holds it (or gives up).
struct PaidWaiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> PaidWaiting<'a> {
    fn new(counter: &'a std::sync::atomic::AtomicUsize) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        PaidWaiting(counter)
    }
}

impl Drop for PaidWaiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Re-quantises a Q4_1 GGUF to `to` once, next to the source (`<stem>.<suffix>.gguf`), and returns the
/// file to load. Other files are returned unchanged.
pub fn requantize(src: &Path, to: GgmlDType, suffix: &str) -> Result<PathBuf, ModelError> {
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(stem) = name.strip_suffix(".Q4_1.gguf") else {
        return Ok(src.to_path_buf());
    };
    let dst = src.with_file_name(format!("{stem}.{suffix}.gguf"));
    if dst.exists() {
        return Ok(dst);
    }
    let err = load_err(src);
    let started = std::time::Instant::now();
    let mut file = std::fs::File::open(src).map_err(|e| load_err(src)(e.to_string()))?;
    let content = gguf_file::Content::read(&mut file).map_err(|e| load_err(src)(e.to_string()))?;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in &names {
        let qt = content
            .tensor(&mut file, name, &Device::Cpu)
            .map_err(|e| load_err(src)(e.to_string()))?;
        let qt = if qt.dtype() == GgmlDType::Q4_1 {
            let dense = qt
                .dequantize(&Device::Cpu)
                .map_err(|e| load_err(src)(e.to_string()))?;
            QTensor::quantize(&dense, to).map_err(|e| load_err(src)(e.to_string()))?
        } else {
            qt
        };
        tensors.push((name.as_str(), qt));
    }
    let mut metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    metadata.sort_by_key(|(k, _)| *k);
    // Unique temporary name: two loaders may race; the first rename wins and both use the result.
    let tmp = dst.with_extension(format!(
        "gguf.{}.tmp",
        hex::encode(crate::random_bytes::<8>())
    ));
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&tmp).map_err(|e| load_err(&tmp)(e.to_string()))?,
    );
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    gguf_file::write(&mut out, &metadata, &refs).map_err(|e| err(e.to_string()))?;
    drop(out);
    if let Err(e) = std::fs::rename(&tmp, &dst) {
        let _ = std::fs::remove_file(&tmp);
        if !dst.exists() {
            return Err(load_err(&dst)(e.to_string()));
        }
    }
    tracing::info!(src = %src.display(), dst = %dst.display(), elapsed_ms = started.elapsed().as_millis() as u64, "re-quantised Q4_1");
    Ok(dst)
}

/// An external OpenAI-compatible server (llama.cpp, vLLM, Ollama).
#[derive(Debug, Clone)]
pub struct External {
    base_url: String,
    model: String,
    api_key: Option<String>,
    http: reqwest::Client,
}

impl External {
    /// `base_url` like `http://127.0.0.1:8080` (with or without `/v1`), `model` the server's model name.
    pub fn new(base_url: &str, model: &str, api_key: Option<String>, timeout: Duration) -> Self {
        let base = base_url.trim_end_matches('/').trim_end_matches("/v1");
        External {
            base_url: base.to_owned(),
            model: model.to_owned(),
            api_key,
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap_or_default(),
        }
    }

    /// A token estimate (no tokenizer here): one per 4 bytes, at least 1.
    pub fn estimate_tokens(text: &str) -> u32 {
        (text.len() as u32).div_ceil(4).max(1)
    }

    async fn post<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &Req,
    ) -> Result<Resp, ModelError> {
        let mut req = self
            .http
            .post(format!("{}/v1/{path}", self.base_url))
            .json(body);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ModelError::External(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(ModelError::External(format!("HTTP {status}: {text}")));
        }
        resp.json()
            .await
            .map_err(|e| ModelError::External(format!("unreadable answer: {e}")))
    }

    /// Embeds `texts` remotely (floats).
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ModelError> {
        let req = EmbeddingsRequest {
            model: self.model.clone(),
            input: EmbeddingInput::Many(texts.to_vec()),
            encoding_format: Some("float".into()),
            user: None,
        };
        let resp: EmbeddingsResponse = self.post("embeddings", &req).await?;
        external_embeddings(resp)
    }

    /// Runs a chat completion remotely (not streamed).
    pub async fn chat(
        &self,
        messages: Vec<ChatMessage>,
        params: GenParams,
    ) -> Result<ChatOutput, ModelError> {
        let req = ChatRequest {
            model: self.model.clone(),
            messages,
            max_tokens: Some(params.max_tokens),
            max_completion_tokens: None,
            temperature: Some(params.temperature),
            top_p: params.top_p,
            seed: Some(params.seed),
            stream: Some(false),
            stream_options: None,
            n: None,
        };
        let resp: ChatResponse = self.post("chat/completions", &req).await?;
        let choice = resp
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| ModelError::External("no choices in the answer".into()))?;
        Ok(ChatOutput {
            text: choice.message.content,
            prompt_tokens: resp.usage.prompt_tokens,
            completion_tokens: resp.usage.completion_tokens.min(params.max_tokens),
            finish_reason: choice.finish_reason,
        })
    }
}

/// A loaded model behind one id.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Embeddings on candle.
    MiniLm(Arc<MiniLm>),
    /// Chat on candle.
    SmolLm(Arc<SmolLm>),
    /// Embeddings from an external server.
    ExternalEmbedding(Arc<External>),
    /// Chat from an external server.
    ExternalChat(Arc<External>),
}

impl Backend {
    /// What it does.
    pub fn kind(&self) -> ModelKind {
        match self {
            Backend::MiniLm(_) | Backend::ExternalEmbedding(_) => ModelKind::Embedding,
            Backend::SmolLm(_) | Backend::ExternalChat(_) => ModelKind::Chat,
        }
    }

    /// Tokens in `text` (an estimate for external models).
    pub fn count_tokens(&self, text: &str) -> Result<u32, ModelError> {
        match self {
            Backend::MiniLm(m) => m.count_tokens(text),
            Backend::SmolLm(m) => m.count_tokens(text),
            Backend::ExternalEmbedding(_) | Backend::ExternalChat(_) => {
                Ok(External::estimate_tokens(text))
            }
        }
    }

    /// Embeds each text (one at a time: batch size 1).
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, ModelError> {
        self.embed_controlled(texts, RunControl::paid()).await
    }

    /// [`Backend::embed`] under `ctl`, checked between texts.
    pub async fn embed_controlled(
        &self,
        texts: Vec<String>,
        ctl: Arc<RunControl>,
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        match self {
            Backend::MiniLm(m) => {
                let m = Arc::clone(m);
                tokio::task::spawn_blocking(move || {
                    let started = std::time::Instant::now();
                    let unpaid = !ctl.is_paid();
                    let mut done = 0u64;
                    let mut out = Vec::with_capacity(texts.len());
                    let mut result = Ok(());
                    for t in &texts {
                        if ctl.should_stop(false) {
                            result = Err(ModelError::Cancelled);
                            break;
                        }
                        match m.embed(t) {
                            Ok(v) => out.push(v),
                            Err(e) => {
                                result = Err(e);
                                break;
                            }
                        }
                        done += 1;
                    }
                    if unpaid {
                        ctl.account(started, done, matches!(result, Err(ModelError::Cancelled)));
                    }
                    result.map(|()| out)
                })
                .await
                .map_err(infer)?
            }
            Backend::ExternalEmbedding(e) => e.embed(&texts).await,
            _ => Err(ModelError::Inference("not an embedding model".into())),
        }
    }

    /// Generates a chat answer, streaming text pieces into `pieces` as they come.
    pub async fn chat(
        &self,
        messages: Vec<ChatMessage>,
        params: GenParams,
        pieces: mpsc::UnboundedSender<String>,
    ) -> Result<ChatOutput, ModelError> {
        self.chat_controlled(messages, params, pieces, RunControl::paid())
            .await
    }

    /// [`Backend::chat`] under `ctl`: a local model checks it before every token; an external server's
    /// request is dropped when the caller aborts the task.
    pub async fn chat_controlled(
        &self,
        messages: Vec<ChatMessage>,
        params: GenParams,
        pieces: mpsc::UnboundedSender<String>,
        ctl: Arc<RunControl>,
    ) -> Result<ChatOutput, ModelError> {
        match self {
            Backend::SmolLm(m) => {
                let m = Arc::clone(m);
                let turns: Vec<(String, String)> = messages
                    .into_iter()
                    .map(|msg| (msg.role, msg.content.text().unwrap_or_default()))
                    .collect();
                tokio::task::spawn_blocking(move || {
                    let prompt = SmolLm::prompt(&turns);
                    m.generate_controlled(&prompt, params, &ctl, |piece| {
                        let _ = pieces.send(piece.to_owned());
                    })
                })
                .await
                .map_err(infer)?
            }
            Backend::ExternalChat(e) => {
                let out = e.chat(messages, params).await?;
                let _ = pieces.send(out.text.clone());
                Ok(out)
            }
            _ => Err(ModelError::Inference("not a chat model".into())),
        }
    }
}

/// The float vectors of an external server's embeddings answer, in input order. A number outside f32's
/// range parses as infinity, which JSON cannot carry back (the miner would serve `null`, which no client
/// reads): refused, so the payment is failed back instead.
fn external_embeddings(resp: EmbeddingsResponse) -> Result<Vec<Vec<f32>>, ModelError> {
    let mut data = resp.data;
    data.sort_by_key(|d| d.index);
    data.into_iter()
        .map(|d| match d.embedding {
            EmbeddingVector::Float(v) if v.iter().all(|x| x.is_finite()) => Ok(v),
            EmbeddingVector::Float(_) => Err(ModelError::External(
                "answered an embedding value outside f32's finite range".into(),
            )),
            EmbeddingVector::Base64(_) => Err(ModelError::External(
                "answered base64 when asked for floats".into(),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_external_embedding_outside_f32_range_is_refused() {
        // Found by fuzz/openai: 1e39 parses as an f32 infinity, which serialises as `null`.
        let answer = |v: &str| -> EmbeddingsResponse {
            serde_json::from_str(&format!(
                r#"{{"object":"list","data":[{{"object":"embedding","index":0,"embedding":[{v}]}}],"model":"m","usage":{{"prompt_tokens":3,"total_tokens":3}}}}"#
            ))
            .expect("an embeddings answer")
        };
        assert!(matches!(
            external_embeddings(answer("0.5, 1e39")),
            Err(ModelError::External(_))
        ));
        assert_eq!(
            external_embeddings(answer("0.5, -3e38")).expect("finite"),
            vec![vec![0.5, -3e38]]
        );
    }
}
