//! The miner's HTTP API and the paid-request state machine.
//!
//! - `GET /v1/models`, `GET /v1/quote` (price list): free.
//! - `POST /v1/embeddings`, `POST /v1/chat/completions` (`stream: true` as server-sent events): without
//!   `Authorization`, a 402 challenge; with `Authorization: L402 <token>`, served against the held payment;
//!   with `L402 <token>:<preimage>`, the stored result of a settled request is returned again.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use boltensor_ln::PaymentHash;
use boltensor_protocol::l402::{self, Challenge, CreditNote, PaymentClaims};
use boltensor_protocol::openai::{
    embedding_to_base64, AssistantMessage, ChatChoice, ChatChunk, ChatRequest, ChatResponse,
    ChunkChoice, ChunkDelta, Embedding, EmbeddingVector, EmbeddingsRequest, EmbeddingsResponse,
    ErrorBody, ErrorDetail, Model, ModelList, Usage,
};
use boltensor_protocol::payment_auth;
use serde_json::json;
use tokio::sync::mpsc;

use crate::backend::{Backend, GenParams, ModelKind, RunControl, SmolLm};
use crate::config::{Misbehaviour, ModelSpec};
use crate::store::{CreditRecord, RequestRecord, Status, StoreError};
use crate::{lock, random_bytes, unix_now, Miner};

/// Everything the API refuses, as an OpenAI-shaped JSON error with the right status.
#[derive(Debug)]
pub enum ApiError {
    /// 400: malformed JSON, bad parameters.
    BadRequest(String),
    /// 401: missing, malformed, tampered, foreign or expired token.
    Unauthorized(String),
    /// 402: pay first (a fresh challenge, or "payment not received").
    PaymentRequired(String),
    /// 404: unknown model or no stored result.
    NotFound(String),
    /// 409: token already used.
    Conflict(String),
    /// 413: body or input too large.
    TooLarge(String),
    /// 500: the model failed (the payment was failed back).
    ModelFailed(String),
    /// 503: could not settle or store (the payment was failed back where it was held).
    Unavailable(String),
    /// 504: the model took longer than the hold timeout (the payment was failed back).
    Timeout(String),
    /// 429 with `Retry-After`: the model's queue is full; no invoice was issued.
    Busy(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &str) {
        match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "invalid_request_error", m),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "authentication_error", m),
            ApiError::PaymentRequired(m) => (StatusCode::PAYMENT_REQUIRED, "payment_required", m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found_error", m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict_error", m),
            ApiError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "request_too_large", m),
            ApiError::ModelFailed(m) => (StatusCode::INTERNAL_SERVER_ERROR, "model_error", m),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
            ApiError::Timeout(m) => (StatusCode::GATEWAY_TIMEOUT, "timeout", m),
            ApiError::Busy(m) => (StatusCode::TOO_MANY_REQUESTS, "model_busy", m),
        }
    }

    fn body(&self) -> ErrorBody {
        let (_, kind, message) = self.parts();
        ErrorBody {
            error: ErrorDetail {
                message: message.to_owned(),
                kind: kind.to_owned(),
                param: None,
                code: Some(kind.to_owned()),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _, _) = self.parts();
        let mut resp = (status, Json(self.body())).into_response();
        if let ApiError::Busy(_) = self {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(BUSY_RETRY_AFTER_SECS),
            );
        }
        resp
    }
}

/// Where a 402 points L402 clients for the discovery manifest (`Link`, rel `l402-manifest`).
const DISCOVERY_LINK: &str = "</.well-known/l402.json>; rel=\"l402-manifest\"";

/// `Retry-After` of a 429 for a full model queue: a paid request takes about a second or less.
const BUSY_RETRY_AFTER_SECS: u64 = 1;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Unavailable(format!("miner store: {e}"))
    }
}

/// The API router.
///
/// Hardened by [`boltensor_http::harden`] with [`crate::MinerConfig::http_limits`]: body limit, request
/// timeout, per-IP rate limit, JSON errors for unknown paths and methods.
pub fn router(miner: Arc<Miner>) -> Router {
    let limits = miner.cfg.http_limits();
    let router = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/quote", get(quote))
        .route("/.well-known/l402.json", get(discovery))
        .route("/metrics", get(metrics))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/chat/completions", post(chat))
        .with_state(miner);
    boltensor_http::harden(router, &limits)
}

async fn models(State(m): State<Arc<Miner>>) -> Json<ModelList> {
    let mut data: Vec<Model> = m
        .models
        .keys()
        .map(|id| Model {
            id: id.clone(),
            object: "model".into(),
            created: 0,
            owned_by: format!("boltensor-miner-{}", m.node.node_id()),
        })
        .collect();
    data.sort_by(|a, b| a.id.cmp(&b.id));
    Json(ModelList {
        object: "list".into(),
        data,
    })
}

/// Prometheus text: paid requests by state, settlement latency, compute given before payment. Public,
/// so it publishes no balance, and costs the same whatever the history (counters, not scans).
async fn metrics(State(m): State<Arc<Miner>>) -> Response {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP boltensor_miner_requests Paid requests by state (docs/paid-requests.md)."
    );
    let _ = writeln!(out, "# TYPE boltensor_miner_requests gauge");
    for (status, n) in m.store.counts().unwrap_or_default() {
        let _ = writeln!(out, "boltensor_miner_requests{{state=\"{status}\"}} {n}");
    }
    let mut lat = m.settle_latencies();
    lat.sort();
    let _ = writeln!(
        out,
        "# HELP boltensor_miner_settle_seconds Result ready to payment settled, recent payments."
    );
    let _ = writeln!(out, "# TYPE boltensor_miner_settle_seconds summary");
    for q in [0.5, 0.9, 0.99] {
        let v = lat
            .get(((lat.len() as f64 - 1.0) * q).round().max(0.0) as usize)
            .map_or(0.0, |d| d.as_secs_f64());
        let _ = writeln!(
            out,
            "boltensor_miner_settle_seconds{{quantile=\"{q}\"}} {v}"
        );
    }
    let _ = writeln!(out, "boltensor_miner_settle_seconds_count {}", lat.len());
    // Compute given before payment (docs/security.md, row 8). The node's balance is not published
    // here: this endpoint is public (row 15); operators read it with `boltensor node info`.
    let c = m.compute.snapshot();
    let _ = writeln!(
        out,
        "# HELP boltensor_miner_unpaid_model_seconds_total Model time of runs started before their payment was held that ended unpaid."
    );
    let _ = writeln!(
        out,
        "# TYPE boltensor_miner_unpaid_model_seconds_total counter"
    );
    let _ = writeln!(
        out,
        "boltensor_miner_unpaid_model_seconds_total {}",
        c.unpaid_seconds
    );
    let _ = writeln!(
        out,
        "# HELP boltensor_miner_pay_first_total Requests run because their payment came first (pay-first L402).\n# TYPE boltensor_miner_pay_first_total counter\nboltensor_miner_pay_first_total {}",
        m.metrics_pay_first.load(std::sync::atomic::Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP boltensor_miner_pay_first_kept_bytes Bytes of requests kept with their challenges for pay-first clients.\n# TYPE boltensor_miner_pay_first_kept_bytes gauge\nboltensor_miner_pay_first_kept_bytes {}",
        lock(&m.kept).bytes()
    );
    let _ = writeln!(out, "# TYPE boltensor_miner_early_runs_total counter");
    let _ = writeln!(out, "boltensor_miner_early_runs_total {}", c.early_runs);
    let _ = writeln!(out, "# TYPE boltensor_miner_cancelled_runs_total counter");
    let _ = writeln!(out, "boltensor_miner_cancelled_runs_total {}", c.cancelled);
    // Admission control: each model's queue of paid requests, and requests turned away with 429.
    let admission = m.admission();
    let _ = writeln!(
        out,
        "# HELP boltensor_miner_queue Paid requests admitted per model (waiting or running)."
    );
    let _ = writeln!(out, "# TYPE boltensor_miner_queue gauge");
    for (model, (admitted, _)) in &admission {
        let _ = writeln!(out, "boltensor_miner_queue{{model=\"{model}\"}} {admitted}");
    }
    let _ = writeln!(
        out,
        "# HELP boltensor_miner_busy_total Requests answered 429 because the model's queue was full."
    );
    let _ = writeln!(out, "# TYPE boltensor_miner_busy_total counter");
    for (model, (_, refused)) in &admission {
        let _ = writeln!(
            out,
            "boltensor_miner_busy_total{{model=\"{model}\"}} {refused}"
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

async fn quote(State(m): State<Arc<Miner>>) -> Json<serde_json::Value> {
    let mut models: Vec<_> = m
        .models
        .values()
        .map(|(spec, backend)| {
            json!({
                "model": spec.id,
                "kind": backend.kind(),
                "per_request_msat": spec.price.per_request_msat,
                "per_token_msat": spec.price.per_token_msat,
                "max_input_tokens": spec.max_input_tokens,
                "max_output_tokens": spec.max_output_tokens,
                "default_max_tokens": spec.default_max_tokens,
                "pricing": "embeddings: per_request + per_token x input tokens; chat: per_request + per_token x (prompt tokens + max_tokens), the unused part returned as a credit note",
            })
        })
        .collect();
    models.sort_by_key(|v| v["model"].as_str().unwrap_or_default().to_owned());
    Json(json!({ "node_id": m.node.node_id().to_string(), "models": models }))
}

/// `GET /.well-known/l402.json`: the L402 discovery manifest (lightninglabs/L402 `discovery-spec.md`,
/// version 1.0): one service per model, priced by formula (per request, plus per token of input for
/// embeddings and of prompt plus `max_tokens` for chat), and the node every invoice pays, so a client
/// can check who it pays before it pays. There is no quote endpoint: the 402 of the request itself is
/// the authoritative price (`GET /v1/quote` lists the same figures).
async fn discovery(State(m): State<Arc<Miner>>) -> Response {
    let mut services: Vec<serde_json::Value> = m
        .models
        .values()
        .map(|(spec, backend)| {
            let (path, description, tokens) = match backend.kind() {
                ModelKind::Embedding => (
                    EMBEDDINGS,
                    "OpenAI-compatible embeddings",
                    "input_tokens",
                ),
                ModelKind::Chat => (
                    CHAT,
                    "OpenAI-compatible chat completions (the part of max_tokens not generated comes back as a credit note)",
                    "prompt_plus_max_tokens",
                ),
            };
            json!({
                "name": spec.id,
                "description": description,
                "resources": [{
                    "path": path,
                    "method": "POST",
                    "pricing": {
                        "model": "formula",
                        "base_msat": spec.price.per_request_msat,
                        "components": [{
                            "constraint": tokens,
                            "price_msat_per_unit": spec.price.per_token_msat,
                        }],
                    },
                    "constraints": {
                        tokens: {
                            "type": "integer",
                            "min": 1,
                            "max": spec.max_input_tokens + spec.max_output_tokens,
                        },
                    },
                }],
            })
        })
        .collect();
    services.sort_by_key(|v| v["name"].as_str().unwrap_or_default().to_owned());
    let manifest = json!({
        "version": "1.0",
        "provider": {
            "name": format!("boltensor miner {}", m.node.node_id()),
            "node_pubkey": m.node.node_id().to_string(),
        },
        "currencies": ["msat"],
        "payment_methods": ["bolt11"],
        "services": services,
        // Beyond the spec: how this provider settles. The invoice is a hold invoice, claimed only once the
        // result is stored; a client may pay first and come back with the preimage, or send the token
        // while its payment is on the way.
        "x-boltensor": {
            "settlement": "hold invoice, claimed after the result is stored; failed back if the model fails",
            "flows": ["pay-first: pay, then Authorization: L402 <token>:<preimage>", "concurrent: Authorization: L402 <token> while paying"],
            "pay_first_max_body_bytes": m.cfg.pay_first_max_body_bytes,
        },
    });
    ([(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], Json(manifest)).into_response()
}

/// A validated request, ready to price and run.
enum Job {
    Embed {
        req: EmbeddingsRequest,
        tokens: u32,
    },
    Chat {
        req: ChatRequest,
        prompt_tokens: u32,
        max_tokens: u32,
    },
}

const EMBEDDINGS: &str = "/v1/embeddings";
const CHAT: &str = "/v1/chat/completions";

async fn embeddings(
    State(m): State<Arc<Miner>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    m.handle(EMBEDDINGS, headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn chat(
    State(m): State<Arc<Miner>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    m.handle(CHAT, headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

impl Miner {
    fn model(&self, id: &str, kind: ModelKind) -> Result<&(ModelSpec, Backend), ApiError> {
        let entry = self.models.get(id).ok_or_else(|| {
            ApiError::NotFound(format!(
                "model {id:?} does not exist on this miner; GET /v1/models lists what it serves"
            ))
        })?;
        if entry.1.kind() != kind {
            return Err(ApiError::BadRequest(format!(
                "model {id:?} is a {:?} model",
                entry.1.kind()
            )));
        }
        Ok(entry)
    }

    /// Parses, validates and prices a request without touching money.
    fn prepare(&self, path: &str, body: &[u8]) -> Result<(Job, &ModelSpec, u64), ApiError> {
        match path {
            EMBEDDINGS => {
                let req: EmbeddingsRequest = parse_json(body)?;
                let (spec, backend) = self.model(&req.model, ModelKind::Embedding)?;
                if let Some(f) = &req.encoding_format {
                    if f != "float" && f != "base64" {
                        return Err(ApiError::BadRequest(format!(
                            "encoding_format {f:?}: use \"float\" or \"base64\""
                        )));
                    }
                }
                let texts = req.input.texts();
                if texts.is_empty() || texts.len() > 64 {
                    return Err(ApiError::BadRequest("input must hold 1 to 64 texts".into()));
                }
                let mut tokens = 0;
                for t in &texts {
                    let n = backend
                        .count_tokens(t)
                        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                    if n > spec.max_input_tokens {
                        return Err(ApiError::TooLarge(format!(
                            "an input has {n} tokens; {} accepts at most {}",
                            spec.id, spec.max_input_tokens
                        )));
                    }
                    tokens += n;
                }
                let price = spec.price.per_request_msat + spec.price.per_token_msat * tokens as u64;
                Ok((Job::Embed { req, tokens }, spec, price))
            }
            _ => {
                let req: ChatRequest = parse_json(body)?;
                let (spec, backend) = self.model(&req.model, ModelKind::Chat)?;
                if req.n.unwrap_or(1) != 1 {
                    return Err(ApiError::BadRequest("only n = 1 is supported".into()));
                }
                if req.messages.is_empty() {
                    return Err(ApiError::BadRequest("messages is empty".into()));
                }
                let mut turns = Vec::new();
                for msg in &req.messages {
                    if !matches!(
                        msg.role.as_str(),
                        "system" | "user" | "assistant" | "developer"
                    ) {
                        return Err(ApiError::BadRequest(format!(
                            "unsupported message role {:?}",
                            msg.role
                        )));
                    }
                    let text = msg.content.text().ok_or_else(|| {
                        ApiError::BadRequest("only text content is supported".into())
                    })?;
                    turns.push((msg.role.clone(), text));
                }
                if let Some(t) = req.temperature {
                    if !(0.0..=2.0).contains(&t) {
                        return Err(ApiError::BadRequest(format!(
                            "temperature {t}: use 0 (greedy) to 2"
                        )));
                    }
                }
                if let Some(p) = req.top_p {
                    if !(0.0..=1.0).contains(&p) {
                        return Err(ApiError::BadRequest(format!("top_p {p}: use 0 to 1")));
                    }
                }
                let max_tokens = req
                    .requested_max_tokens()
                    .unwrap_or(spec.default_max_tokens);
                if max_tokens == 0 || max_tokens > spec.max_output_tokens {
                    return Err(ApiError::BadRequest(format!(
                        "max_tokens must be between 1 and {} for {}",
                        spec.max_output_tokens, spec.id
                    )));
                }
                let prompt = match backend {
                    Backend::SmolLm(_) => SmolLm::prompt(&turns),
                    _ => turns
                        .iter()
                        .map(|(_, t)| t.as_str())
                        .collect::<Vec<_>>()
                        .join("\n"),
                };
                let prompt_tokens = backend
                    .count_tokens(&prompt)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                if prompt_tokens > spec.max_input_tokens {
                    return Err(ApiError::TooLarge(format!(
                        "the prompt has {prompt_tokens} tokens; {} accepts at most {}",
                        spec.id, spec.max_input_tokens
                    )));
                }
                let price = spec.price.per_request_msat
                    + spec.price.per_token_msat * (prompt_tokens + max_tokens) as u64;
                Ok((
                    Job::Chat {
                        req,
                        prompt_tokens,
                        max_tokens,
                    },
                    spec,
                    price,
                ))
            }
        }
    }

    async fn handle(
        self: &Arc<Self>,
        path: &'static str,
        headers: HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Result<Response, ApiError> {
        let body = body.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(format!(
                    "request body over {} bytes",
                    self.cfg.max_body_bytes
                ))
            } else {
                ApiError::BadRequest(e.body_text())
            }
        })?;
        let (job, spec, price) = self.prepare(path, &body)?;
        if spec.price.per_request_msat == 0 && spec.price.per_token_msat == 0 {
            return self.serve_free(job, spec).await;
        }
        let digest = l402::request_digest("POST", path, &body);
        // Another scheme (an OpenAI SDK's `Bearer` key, say) is no payment: answer with the challenge.
        let l402_auth = headers.get(header::AUTHORIZATION).filter(|v| {
            v.to_str().is_ok_and(|s| {
                s.starts_with("L402 ") || s.starts_with("LSAT ") || s.starts_with("Payment ")
            })
        });
        match l402_auth {
            None => self.challenge(&headers, spec, price, digest, path, &body),
            Some(auth) => {
                let auth = auth
                    .to_str()
                    .map_err(|_| ApiError::Unauthorized("Authorization is not text".into()))?;
                // The Payment scheme's credential names the same token (its challenge id) and always
                // carries the preimage: it is checked as `L402 <token>:<preimage>`.
                let payment_scheme = auth.starts_with("Payment ");
                let (token, preimage) = if payment_scheme {
                    payment_auth::parse_credential(auth)
                        .map(|(t, p)| (t, Some(p)))
                        .map_err(|e| ApiError::Unauthorized(e.to_string()))?
                } else {
                    l402::parse_authorization(auth)
                        .map_err(|e| ApiError::Unauthorized(e.to_string()))?
                };
                let claims = PaymentClaims::verify(&token, &self.key)
                    .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
                if claims.miner != self.node_id {
                    return Err(ApiError::Unauthorized(
                        "token was issued by another miner".into(),
                    ));
                }
                if claims.request_digest != digest {
                    if preimage.is_some() {
                        // A paid credential for another request, sent again for this one: what L402
                        // clients do that keep one credential per path (a macaroon grants the path).
                        // A token here buys one request, so this one gets its own challenge.
                        return self.challenge(&headers, spec, price, digest, path, &body);
                    }
                    return Err(ApiError::BadRequest(
                        "token was issued for a different request: repeat the exact same body"
                            .into(),
                    ));
                }
                match preimage {
                    Some(p) => {
                        let mut resp = self.refetch(&claims, p)?;
                        if payment_scheme {
                            let receipt =
                                payment_auth::receipt(&token, &claims.payment_hash, unix_now());
                            if let Ok(v) = HeaderValue::from_str(&receipt) {
                                resp.headers_mut().insert(payment_auth::RECEIPT_HEADER, v);
                            }
                        }
                        Ok(resp)
                    }
                    None => self.serve(job, spec, claims, false).await,
                }
            }
        }
    }

    /// 402 with a fresh hold invoice and token; nothing is charged yet.
    fn challenge(
        &self,
        headers: &HeaderMap,
        spec: &ModelSpec,
        gross: u64,
        digest: [u8; 32],
        path: &'static str,
        body: &[u8],
    ) -> Result<Response, ApiError> {
        // Admission: a full queue turns the request away before any invoice exists, so nothing is
        // charged and no payment waits out its hold behind the queue.
        if let Some(a) = self.admission.get(&spec.id) {
            use std::sync::atomic::Ordering::Relaxed;
            let admitted = a.admitted.load(Relaxed);
            if admitted >= self.cfg.max_queue {
                a.refused.fetch_add(1, Relaxed);
                return Err(ApiError::Busy(format!(
                    "{} has {admitted} paid requests in its queue (at most {}): nothing was charged; \
                     retry after {BUSY_RETRY_AFTER_SECS} s or ask another miner",
                    spec.id, self.cfg.max_queue
                )));
            }
        }
        // A credit note from an earlier request lowers the price, down to the per-request part.
        let mut credit: Option<([u8; 16], u64)> = None;
        if let Some(note) = headers.get(l402::CREDIT_HEADER) {
            let note = note
                .to_str()
                .ok()
                .and_then(|s| CreditNote::verify(s, &self.key).ok())
                .filter(|n| n.miner == self.node_id)
                .ok_or_else(|| ApiError::BadRequest("invalid credit note".into()))?;
            let rec = self.store.credit(&note.id)?;
            let usable = rec.is_some_and(|r| r.spent_by.is_none() && r.expires_at > unix_now());
            if usable {
                let applied = note
                    .amount_msat
                    .min(gross.saturating_sub(spec.price.per_request_msat));
                credit = Some((note.id, applied));
            }
        }
        let price = gross - credit.map_or(0, |c| c.1);
        let preimage: [u8; 32] = random_bytes();
        let hash = l402::payment_hash_of(&preimage);
        let expires_at = unix_now() + self.cfg.invoice_expiry_secs as u64;
        let invoice = self
            .node
            .hold_invoice(
                PaymentHash(hash),
                price,
                &format!("boltensor {}", spec.id),
                self.cfg.invoice_expiry_secs,
            )
            .map_err(|e| ApiError::Unavailable(format!("cannot create an invoice: {e}")))?;
        let claims = PaymentClaims {
            payment_hash: hash,
            price_msat: price,
            expires_at,
            miner: self.node_id,
            request_digest: digest,
            credit_id: credit.map_or([0; 16], |c| c.0),
            credit_msat: credit.map_or(0, |c| c.1),
        };
        self.store.insert(&RequestRecord {
            payment_hash: hash,
            preimage,
            price_msat: price,
            gross_price_msat: gross,
            expires_at,
            model: spec.id.clone(),
            status: Status::AwaitingPayment,
            result: None,
            result_content_type: None,
            credit_id: credit.map(|c| c.0),
            new_credit: None,
            error: None,
            created_at: unix_now(),
            early_run: false,
            paid_first: false,
            handed_to_token: false,
        })?;
        // Kept for a client that pays first and comes back with the preimage (`serve_kept`).
        let kept = body.len() <= self.cfg.pay_first_max_body_bytes
            && lock(&self.kept).keep(
                hash,
                crate::KeptRequest {
                    path,
                    body: body.to_vec(),
                },
                self.cfg.pay_first_max_kept_bytes,
            );
        let challenge = Challenge {
            token: claims.sign(&self.key),
            invoice: invoice.to_string(),
        };
        let payment_challenge = payment_auth::PaymentChallenge {
            id: challenge.token.clone(),
            invoice: challenge.invoice.clone(),
            payment_hash: hash,
            amount_msat: price,
            network: match invoice.network() {
                boltensor_ln::bitcoin::Network::Bitcoin => "bitcoin",
                boltensor_ln::bitcoin::Network::Signet => "signet",
                boltensor_ln::bitcoin::Network::Regtest => "regtest",
                _ => "testnet",
            }
            .to_owned(),
            expires_at,
        };
        tracing::debug!(payment_hash = %hex::encode(hash), price_msat = price, model = %spec.id, "402 challenge");
        let body = json!({
            "error": {
                "message": format!("payment required: pay the invoice ({price} msat), then repeat the request with `Authorization: L402 <token>`"),
                "type": "payment_required",
                "code": "payment_required",
                "param": null,
            },
            "price_msat": price,
            "gross_price_msat": gross,
            "credit_applied_msat": claims.credit_msat,
            "invoice": challenge.invoice,
            "token": challenge.token,
            "payment_hash": hex::encode(hash),
            "expires_at": expires_at,
            // Whether paying first works for this challenge (its request was kept).
            "pay_first": kept,
        });
        let mut resp = (StatusCode::PAYMENT_REQUIRED, Json(body)).into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&challenge.header_value())
                .map_err(|e| ApiError::Unavailable(e.to_string()))?,
        );
        // The same challenge in the HTTP Payment scheme (second, so clients reading one header get L402).
        resp.headers_mut().append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&payment_challenge.header_value())
                .map_err(|e| ApiError::Unavailable(e.to_string()))?,
        );
        resp.headers_mut()
            .insert(header::LINK, HeaderValue::from_static(DISCOVERY_LINK));
        Ok(resp)
    }

    /// Pay-first L402 (bLIP-26 as every L402 agent does it): the payment for challenge `hash` is held and
    /// no request is being served for it, so the request kept with the challenge runs now, through the
    /// same path as a request carrying the token — the result is stored, and only then is the payment
    /// claimed. The payer's payment completes with the preimage, and `Authorization: L402
    /// <token>:<preimage>` returns the stored result. A failing model fails the payment back: the payer
    /// is not charged. If the client's own request with the token comes first (the concurrent flow),
    /// that one serves: the store's single `AwaitingPayment` → `Serving` step lets one of the two
    /// through, and the other gets 409 (this task: nothing to do).
    pub(crate) async fn serve_kept(self: &Arc<Self>, hash: [u8; 32]) {
        let rec = match self.store.get(&hash) {
            Ok(Some(r)) if r.status == Status::AwaitingPayment => r,
            _ => return,
        };
        let Some(kept) = lock(&self.kept).get(&hash) else {
            return;
        };
        if rec.expires_at <= unix_now() {
            // Paid after its token expired: nothing is served for it.
            self.fail_back(&hash, "token expired", Status::Expired);
            return;
        }
        let path = kept.path;
        let (job, spec, _) = match self.prepare(path, &kept.body) {
            Ok(p) => p,
            Err(e) => {
                // It was valid when challenged (the models changed since): nothing can be served.
                let (_, _, msg) = e.parts();
                self.fail_back(&hash, msg, Status::FailedBack);
                return;
            }
        };
        let claims = PaymentClaims {
            payment_hash: hash,
            price_msat: rec.price_msat,
            expires_at: rec.expires_at,
            miner: self.node_id,
            request_digest: l402::request_digest("POST", path, &kept.body),
            credit_id: rec.credit_id.unwrap_or([0; 16]),
            credit_msat: rec.gross_price_msat.saturating_sub(rec.price_msat),
        };
        self.metrics_pay_first
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.serve(job, spec, claims, true).await {
            // A streamed chat goes on in its own task, which stores the result and claims; the stream
            // itself has no reader.
            Ok(_) => {
                tracing::info!(payment_hash = %hex::encode(hash), model = %spec.id, "pay-first request served")
            }
            Err(ApiError::Conflict(_)) => {} // the client's own request is serving it
            Err(e) => {
                tracing::warn!(payment_hash = %hex::encode(hash), error = ?e, "pay-first request not served")
            }
        }
    }

    /// The token's own request came after its payment, which already ran the kept request (pay-first):
    /// the first such request gets that run's result, as it would have in the concurrent flow, once it
    /// is stored (a failed run's error otherwise); any later one gets `None` (then 409, as a replay).
    async fn paid_first_answer(
        &self,
        claims: &PaymentClaims,
    ) -> Result<Option<Response>, ApiError> {
        let hash = claims.payment_hash;
        let first = self.store.update(&hash, |r, _| {
            let first = r.paid_first && !r.handed_to_token;
            if first {
                r.handed_to_token = true;
            }
            Ok(first)
        });
        if !matches!(first, Ok((true, _))) {
            return Ok(None);
        }
        let deadline = tokio::time::Instant::now() + self.cfg.hold_timeout;
        loop {
            let rec = self.store.get(&hash)?.ok_or(StoreError::Unknown)?;
            match (rec.status, rec.result) {
                (Status::Settling | Status::Settled, Some(result)) => {
                    let ct = rec
                        .result_content_type
                        .unwrap_or_else(|| "application/json".into());
                    let credit = rec.new_credit.and_then(|(token, msat)| {
                        CreditNote::decode_unverified(&token).ok().map(|note| {
                            (
                                CreditNote {
                                    amount_msat: msat,
                                    ..note
                                },
                                token,
                            )
                        })
                    });
                    return Ok(Some(self.paid_response(
                        StatusCode::OK,
                        &ct,
                        Body::from(result),
                        claims,
                        credit,
                    )));
                }
                (Status::FailedBack | Status::Expired, _) => {
                    return Err(ApiError::ModelFailed(format!(
                        "the request failed ({}); your payment was failed back",
                        rec.error.unwrap_or_default()
                    )))
                }
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(ApiError::Timeout(
                        "the request run when its payment arrived has not finished".into(),
                    ))
                }
                _ => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
    }

    /// The stored result of a settled request, for a client that lost the connection after paying.
    fn refetch(&self, claims: &PaymentClaims, preimage: [u8; 32]) -> Result<Response, ApiError> {
        if l402::payment_hash_of(&preimage) != claims.payment_hash {
            return Err(ApiError::Unauthorized(
                "preimage does not match the token".into(),
            ));
        }
        let rec = self
            .store
            .get(&claims.payment_hash)?
            .ok_or_else(|| ApiError::NotFound("no request for this token".into()))?;
        match (rec.status, rec.result) {
            (Status::Settled | Status::Settling, Some(result)) => {
                let ct = rec
                    .result_content_type
                    .unwrap_or_else(|| "application/json".into());
                let mut resp = (StatusCode::OK, result).into_response();
                let h = resp.headers_mut();
                if let Ok(v) = HeaderValue::from_str(&ct) {
                    h.insert(header::CONTENT_TYPE, v);
                }
                // The credit note issued with the result goes with it again (a client that lost the
                // first answer lost the note too).
                if let Some((token, msat)) = &rec.new_credit {
                    if let Ok(v) = HeaderValue::from_str(token) {
                        h.insert(l402::NEW_CREDIT_HEADER, v);
                        h.insert(l402::NEW_CREDIT_MSAT_HEADER, HeaderValue::from(*msat));
                    }
                }
                Ok(resp)
            }
            _ => Err(ApiError::NotFound(
                "no stored result for this token (it was not settled)".into(),
            )),
        }
    }

    /// Serves a paid request: mark the token used, wait for the held payment, run, settle or fail back.
    ///
    /// `paid_first`: run by [`Miner::serve_kept`] because the payment came first. The client's own request
    /// with the token, arriving while or after that run serves, gets the run's result (once), as it
    /// would have in the concurrent flow.
    async fn serve(
        self: &Arc<Self>,
        job: Job,
        spec: &ModelSpec,
        claims: PaymentClaims,
        paid_first: bool,
    ) -> Result<Response, ApiError> {
        let hash = claims.payment_hash;
        if claims.expires_at <= unix_now() {
            return Err(ApiError::Unauthorized(
                "token expired; a payment made for it is failed back".into(),
            ));
        }
        // The model may start before the payment is held (docs/adr/0008) — but only once per token,
        // and only within the small cap on unpaid compute; otherwise it starts once the payment is
        // held (docs/security.md, row 8).
        let already_held = self.node.claimable(PaymentHash(hash)).is_some();
        let mut permit = if already_held {
            None
        } else {
            Arc::clone(&self.unpaid_runs).try_acquire_owned().ok()
        };
        let mut early = false;
        // One use per token: AwaitingPayment -> Serving, atomically with spending the credit note.
        let credit_leftover = {
            let claimed = self.store.update(&hash, |r, credits| {
                if r.status != Status::AwaitingPayment {
                    return Err(StoreError::WrongState(r.status));
                }
                let mut leftover = 0;
                if let Some(id) = r.credit_id {
                    let rec: CreditRecord = credits.spend(&id, hash)?;
                    leftover = rec.amount_msat.saturating_sub(claims.credit_msat);
                }
                if permit.is_some() && !r.early_run {
                    r.early_run = true;
                    early = true;
                }
                r.status = Status::Serving;
                r.paid_first = paid_first;
                Ok(leftover)
            });
            match claimed {
                Ok((leftover, _)) => leftover,
                Err(StoreError::Unknown) => {
                    return Err(ApiError::Unauthorized("unknown token".into()))
                }
                Err(StoreError::WrongState(s)) => {
                    if !paid_first {
                        if let Some(answer) = self.paid_first_answer(&claims).await? {
                            return Ok(answer);
                        }
                    }
                    return Err(ApiError::Conflict(format!(
                        "token already used (request is {s:?}); to fetch a settled result again send `L402 <token>:<preimage>`"
                    )));
                }
                Err(StoreError::CreditUnavailable) => {
                    self.fail_back(&hash, "credit note already spent", Status::FailedBack);
                    return Err(ApiError::Conflict(
                        "the credit note was already spent; the payment is failed back".into(),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        };
        if !early {
            permit = None;
        }
        lock(&self.serving).insert(hash);
        let mut guard = ServingGuard {
            miner: Arc::clone(self),
            hash,
            admission: None,
        };

        // Start the model now, while the HTLC may still be on its way. Nothing is delivered (and the
        // payment is not claimed) until the payment is held here for the price, so a client that never
        // pays gets nothing; an honest client does not wait for its payment and the model one after
        // the other (docs/adr/0008). The early run is cancelled (within a token) when the payment does
        // not come, or when paid work needs the model.
        let model = self
            .models
            .get(&spec.id)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| ApiError::NotFound(spec.id.clone()))?;
        let timeout = self.cfg.hold_timeout;
        if let Some(Misbehaviour::Slow(delay)) = self.cfg.misbehaviour {
            tokio::time::sleep(delay).await;
        }
        let run = match permit {
            Some(permit) => Run::Started(launch(
                &model,
                timeout,
                job,
                RunControl::unpaid(Arc::clone(&self.compute), permit),
            )),
            None => Run::Pending(job),
        };
        // A client that goes away while waiting for its payment takes the unpaid run down with it.
        let cancel_unpaid = CancelUnpaid(run.control());

        // Wait for the payment to be held here, for exactly the price.
        let held = match self
            .node
            .wait_claimable(PaymentHash(hash), self.cfg.payment_wait)
            .await
        {
            Ok(held) => held,
            Err(_) => {
                run.abort();
                // Not paid (yet): the token stays usable, but the model will not start again for it
                // before its payment is held.
                let _ = self.store.update(&hash, |r, credits| {
                    if let Some(id) = r.credit_id {
                        credits.unspend(&id, r.payment_hash)?;
                    }
                    r.status = Status::AwaitingPayment;
                    Ok(())
                });
                return Err(ApiError::PaymentRequired(format!(
                    "no payment held for this token after {:?}: pay the invoice first",
                    self.cfg.payment_wait
                )));
            }
        };
        // Paid: the request now counts in its model's queue (admission control). Only held payments
        // count, so tokens sent without paying cannot fill the queue and turn paying clients away.
        if let Some(a) = self.admission.get(&spec.id) {
            a.admitted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            guard.admission = Some(Arc::clone(a));
        }
        // Paid: keep the early run if it is still alive, else (it gave way to paid work, or there was
        // none) start the model now as paid work.
        let started = match run {
            Run::Started(s) if s.control().mark_paid() => s,
            Run::Started(s) => {
                s.abort();
                launch(&model, timeout, s.into_job(), RunControl::paid())
            }
            Run::Pending(job) => launch(&model, timeout, job, RunControl::paid()),
        };
        drop(cancel_unpaid);
        let nth = self
            .served_count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.cfg.misbehaviour == Some(Misbehaviour::DropEveryThird) && nth % 3 == 2 {
            started.abort();
            return Err(self.failed(
                &hash,
                ApiError::Unavailable("dropped (test misbehaviour)".into()),
            ));
        }
        if held.amount_msat < claims.price_msat {
            started.abort();
            self.fail_back(&hash, "underpaid", Status::FailedBack);
            return Err(ApiError::PaymentRequired(format!(
                "held {} msat but the price is {} msat; the payment is failed back",
                held.amount_msat, claims.price_msat
            )));
        }

        match started {
            Started::Embed {
                run, req, tokens, ..
            } => {
                let mut vectors = match join_run(run).await {
                    Ok(v) => v,
                    Err(e) => return Err(self.failed(&hash, e)),
                };
                if self.cfg.misbehaviour == Some(Misbehaviour::RandomEmbeddings) {
                    for v in &mut vectors {
                        *v = random_unit_vector(v.len());
                    }
                }
                let resp = embeddings_response(spec, &req, tokens, vectors);
                let body = serde_json::to_vec(&resp)
                    .map_err(|e| self.failed(&hash, ApiError::Unavailable(e.to_string())))?;
                let new_credit = self.credit_for(credit_leftover);
                self.settle(&hash, body.clone(), "application/json", new_credit.clone())?;
                drop(guard);
                Ok(self.paid_response(
                    StatusCode::OK,
                    "application/json",
                    Body::from(body),
                    &claims,
                    new_credit,
                ))
            }
            Started::Chat {
                run,
                rx,
                req,
                prompt_tokens,
                max_tokens,
                ..
            } => {
                let id = format!("chatcmpl-{}", hex::encode(&hash[..12]));
                let created = unix_now();
                let per_token = spec.price.per_token_msat;
                let model_id = spec.id.clone();
                let finish = {
                    let miner = Arc::clone(self);
                    let id = id.clone();
                    let model_id = model_id.clone();
                    move |out: Result<crate::backend::ChatOutput, ApiError>| -> Result<(ChatResponse, Option<(CreditNote, String)>), ApiError> {
                        let out = match out {
                            Ok(out) => out,
                            Err(e) => return Err(miner.failed(&hash, e)),
                        };
                        let unused = per_token * (max_tokens.saturating_sub(out.completion_tokens)) as u64;
                        let resp = chat_response(id, created, model_id, prompt_tokens, out);
                        let body = serde_json::to_vec(&resp).map_err(|e| miner.failed(&hash, ApiError::Unavailable(e.to_string())))?;
                        let new_credit = miner.credit_for(unused + credit_leftover);
                        miner.settle(&hash, body, "application/json", new_credit.clone())?;
                        Ok((resp, new_credit))
                    }
                };
                if !req.is_stream() {
                    let out = join_run(run).await;
                    let (resp, new_credit) = finish(out)?;
                    drop(guard);
                    let body = serde_json::to_vec(&resp)
                        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
                    return Ok(self.paid_response(
                        StatusCode::OK,
                        "application/json",
                        Body::from(body),
                        &claims,
                        new_credit,
                    ));
                }
                // Streaming: pieces go out as they are generated; the payment is claimed when the
                // generation is complete, before the last chunk. The work runs in its own task so a client
                // that disconnects still gets its result stored (re-fetchable with token + preimage).
                let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
                let (sse_tx, sse_rx) = mpsc::unbounded_channel::<Result<Bytes, std::io::Error>>();
                let chunk = {
                    let id = id.clone();
                    let model_id = model_id.clone();
                    move |delta: ChunkDelta, finish: Option<String>, usage: Option<Usage>| {
                        let c = ChatChunk {
                            id: id.clone(),
                            object: "chat.completion.chunk".into(),
                            created,
                            model: model_id.clone(),
                            choices: if usage.is_some() {
                                vec![]
                            } else {
                                vec![ChunkChoice {
                                    index: 0,
                                    delta,
                                    finish_reason: finish,
                                }]
                            },
                            usage,
                        };
                        Bytes::from(format!(
                            "data: {}\n\n",
                            serde_json::to_string(&c).unwrap_or_default()
                        ))
                    }
                };
                tokio::spawn(async move {
                    let _guard = guard;
                    let mut rx = rx;
                    let _ = sse_tx.send(Ok(chunk(
                        ChunkDelta {
                            role: Some("assistant".into()),
                            content: Some(String::new()),
                        },
                        None,
                        None,
                    )));
                    while let Some(piece) = rx.recv().await {
                        let _ = sse_tx.send(Ok(chunk(
                            ChunkDelta {
                                role: None,
                                content: Some(piece),
                            },
                            None,
                            None,
                        )));
                    }
                    match finish(join_run(run).await) {
                        Ok((resp, credit)) => {
                            let reason = resp.choices.first().map(|c| c.finish_reason.clone());
                            let _ = sse_tx.send(Ok(chunk(ChunkDelta::default(), reason, None)));
                            if include_usage {
                                let _ = sse_tx.send(Ok(chunk(
                                    ChunkDelta::default(),
                                    None,
                                    Some(resp.usage),
                                )));
                            }
                            if let Some((note, token)) = credit {
                                let line = l402::stream_credit_line(&token, note.amount_msat);
                                let _ = sse_tx.send(Ok(Bytes::from(line)));
                            }
                            let _ = sse_tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
                        }
                        Err(e) => {
                            let body = serde_json::to_string(&e.body()).unwrap_or_default();
                            let _ = sse_tx.send(Ok(Bytes::from(format!("data: {body}\n\n"))));
                        }
                    }
                });
                let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(sse_rx);
                // Stream responses carry no credit header: the credit is known only at the end. It goes
                // as an SSE comment line before `[DONE]` (`l402::stream_credit_line`), and is stored with
                // the request and returned on re-fetch.
                Ok(self.paid_response(
                    StatusCode::OK,
                    "text/event-stream",
                    Body::from_stream(stream),
                    &claims,
                    None,
                ))
            }
        }
    }

    /// A model priced at zero (for benchmarks and private deployments): served without payment, not
    /// streamed.
    async fn serve_free(&self, job: Job, spec: &ModelSpec) -> Result<Response, ApiError> {
        let model = self
            .models
            .get(&spec.id)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| ApiError::NotFound(spec.id.clone()))?;
        let timeout = self.cfg.hold_timeout;
        let model_err = |e: crate::ModelError| ApiError::ModelFailed(e.to_string());
        let too_long = |_| ApiError::Timeout("the model took too long".into());
        let body = match job {
            Job::Embed { req, tokens } => {
                let texts = req.input.texts().into_iter().map(str::to_owned).collect();
                let vectors = tokio::time::timeout(timeout, model.embed(texts))
                    .await
                    .map_err(too_long)?
                    .map_err(model_err)?;
                serde_json::to_vec(&embeddings_response(spec, &req, tokens, vectors))
            }
            Job::Chat {
                req,
                prompt_tokens,
                max_tokens,
            } => {
                if req.is_stream() {
                    return Err(ApiError::BadRequest(
                        "streaming is served for priced models only".into(),
                    ));
                }
                let params = GenParams {
                    max_tokens,
                    temperature: req.temperature.unwrap_or(0.0),
                    top_p: req.top_p,
                    seed: req.seed.unwrap_or(299_792_458),
                };
                let (tx, _rx) = mpsc::unbounded_channel();
                let out = tokio::time::timeout(timeout, model.chat(req.messages, params, tx))
                    .await
                    .map_err(too_long)?
                    .map_err(model_err)?;
                let id = format!("chatcmpl-{}", hex::encode(random_bytes::<12>()));
                serde_json::to_vec(&chat_response(
                    id,
                    unix_now(),
                    spec.id.clone(),
                    prompt_tokens,
                    out,
                ))
            }
        }
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response())
    }

    fn credit_for(&self, amount_msat: u64) -> Option<(CreditNote, String)> {
        (amount_msat > 0).then(|| {
            let note = CreditNote {
                id: random_bytes(),
                amount_msat,
                expires_at: unix_now() + self.cfg.credit_ttl_secs,
                miner: self.node_id,
            };
            (note, note.sign(&self.key))
        })
    }

    /// Stores the result (and a new credit note), then claims the held payment.
    fn settle(
        &self,
        hash: &[u8; 32],
        body: Vec<u8>,
        content_type: &str,
        new_credit: Option<(CreditNote, String)>,
    ) -> Result<(), ApiError> {
        let stored = self.store.update(hash, |r, credits| {
            if let Some((note, token)) = &new_credit {
                credits.issue(
                    &note.id,
                    &CreditRecord {
                        amount_msat: note.amount_msat,
                        expires_at: note.expires_at,
                        spent_by: None,
                    },
                )?;
                r.new_credit = Some((token.clone(), note.amount_msat));
            }
            r.result = Some(body);
            r.result_content_type = Some(content_type.to_owned());
            r.status = Status::Settling;
            Ok(())
        });
        if let Err(e) = stored {
            return Err(self.failed(
                hash,
                ApiError::Unavailable(format!("cannot store the result: {e}")),
            ));
        }
        // Served: the kept request has done its work (the result is what a re-fetch returns).
        lock(&self.kept).remove(hash);
        let preimage = self
            .store
            .get(hash)?
            .map(|r| r.preimage)
            .ok_or(StoreError::Unknown)?;
        if let Some(pause) = test_pause_before_claim() {
            // Test-only (see the function): a fault test kills the process in this window.
            tracing::warn!(payment_hash = %hex::encode(hash), pause_ms = pause.as_millis() as u64, "test hook: result stored, pausing before the claim");
            std::thread::sleep(pause);
        }
        self.claim(hash, preimage).map_err(|e| {
            tracing::error!(payment_hash = %hex::encode(hash), error = %e, "claim failed");
            self.failed(
                hash,
                ApiError::Unavailable(format!(
                    "could not settle the payment ({e}); nothing was charged"
                )),
            )
        })
    }

    /// Fails the payment back and passes the error on.
    fn failed(&self, hash: &[u8; 32], e: ApiError) -> ApiError {
        let (_, _, msg) = e.parts();
        self.fail_back(hash, msg, Status::FailedBack);
        match e {
            ApiError::ModelFailed(m) => {
                ApiError::ModelFailed(format!("{m}; your payment was failed back"))
            }
            ApiError::Timeout(m) => ApiError::Timeout(format!("{m}; your payment was failed back")),
            ApiError::Unavailable(m) => {
                ApiError::Unavailable(format!("{m}; your payment was failed back"))
            }
            other => other,
        }
    }

    fn paid_response(
        &self,
        status: StatusCode,
        content_type: &str,
        body: Body,
        claims: &PaymentClaims,
        new_credit: Option<(CreditNote, String)>,
    ) -> Response {
        let mut resp = (status, body).into_response();
        let h = resp.headers_mut();
        let mut put = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        };
        put("content-type", content_type.to_owned());
        put(l402::PRICE_HEADER, claims.price_msat.to_string());
        put(l402::PAYMENT_HASH_HEADER, hex::encode(claims.payment_hash));
        put(l402::CREDIT_USED_HEADER, claims.credit_msat.to_string());
        if let Some((note, token)) = new_credit {
            put(l402::NEW_CREDIT_HEADER, token);
            put(l402::NEW_CREDIT_MSAT_HEADER, note.amount_msat.to_string());
        }
        resp
    }
}

fn embeddings_response(
    spec: &ModelSpec,
    req: &EmbeddingsRequest,
    tokens: u32,
    vectors: Vec<Vec<f32>>,
) -> EmbeddingsResponse {
    let base64 = req.encoding_format.as_deref() == Some("base64");
    EmbeddingsResponse {
        object: "list".into(),
        data: vectors
            .into_iter()
            .enumerate()
            .map(|(index, v)| Embedding {
                object: "embedding".into(),
                index,
                embedding: if base64 {
                    EmbeddingVector::Base64(embedding_to_base64(&v))
                } else {
                    EmbeddingVector::Float(v)
                },
            })
            .collect(),
        model: spec.id.clone(),
        usage: Usage {
            prompt_tokens: tokens,
            completion_tokens: 0,
            total_tokens: tokens,
        },
    }
}

fn chat_response(
    id: String,
    created: u64,
    model: String,
    prompt_tokens: u32,
    out: crate::backend::ChatOutput,
) -> ChatResponse {
    ChatResponse {
        id,
        object: "chat.completion".into(),
        created,
        model,
        choices: vec![ChatChoice {
            index: 0,
            message: AssistantMessage {
                role: "assistant".into(),
                content: out.text,
            },
            finish_reason: out.finish_reason,
        }],
        usage: Usage {
            prompt_tokens,
            completion_tokens: out.completion_tokens,
            total_tokens: prompt_tokens + out.completion_tokens,
        },
    }
}

/// A model run on its own task, bounded by the hold timeout.
type ModelRun<T> =
    tokio::task::JoinHandle<Result<Result<T, crate::ModelError>, tokio::time::error::Elapsed>>;

/// A model run started for a paid request, before or after its payment is held.
enum Started {
    Embed {
        run: ModelRun<Vec<Vec<f32>>>,
        req: EmbeddingsRequest,
        tokens: u32,
        ctl: Arc<RunControl>,
    },
    Chat {
        run: ModelRun<crate::backend::ChatOutput>,
        rx: mpsc::UnboundedReceiver<String>,
        req: ChatRequest,
        prompt_tokens: u32,
        max_tokens: u32,
        ctl: Arc<RunControl>,
    },
}

/// A request's model run: not started yet, or started.
enum Run {
    Pending(Job),
    Started(Started),
}

impl Run {
    fn control(&self) -> Option<Arc<RunControl>> {
        match self {
            Run::Pending(_) => None,
            Run::Started(s) => Some(Arc::clone(s.control())),
        }
    }

    fn abort(&self) {
        if let Run::Started(s) = self {
            s.abort();
        }
    }
}

/// Cancels an unpaid run when dropped (a paid one is left alone).
struct CancelUnpaid(Option<Arc<RunControl>>);

impl Drop for CancelUnpaid {
    fn drop(&mut self) {
        if let Some(ctl) = &self.0 {
            ctl.cancel();
        }
    }
}

/// Starts `job` on `model` on its own task, bounded by `timeout`, under `ctl`.
fn launch(
    model: &Backend,
    timeout: std::time::Duration,
    job: Job,
    ctl: Arc<RunControl>,
) -> Started {
    let model = model.clone();
    match job {
        Job::Embed { req, tokens } => {
            let texts = req.input.texts().into_iter().map(str::to_owned).collect();
            let c = Arc::clone(&ctl);
            let run = tokio::spawn(async move {
                let out =
                    tokio::time::timeout(timeout, model.embed_controlled(texts, Arc::clone(&c)))
                        .await;
                if out.is_err() {
                    c.abort();
                }
                out
            });
            Started::Embed {
                run,
                req,
                tokens,
                ctl,
            }
        }
        Job::Chat {
            req,
            prompt_tokens,
            max_tokens,
        } => {
            let params = GenParams {
                max_tokens,
                temperature: req.temperature.unwrap_or(0.0),
                top_p: req.top_p,
                seed: req.seed.unwrap_or(299_792_458),
            };
            let (tx, rx) = mpsc::unbounded_channel();
            let messages = req.messages.clone();
            let c = Arc::clone(&ctl);
            let run = tokio::spawn(async move {
                let out = tokio::time::timeout(
                    timeout,
                    model.chat_controlled(messages, params, tx, Arc::clone(&c)),
                )
                .await;
                if out.is_err() {
                    c.abort();
                }
                out
            });
            Started::Chat {
                run,
                rx,
                req,
                prompt_tokens,
                max_tokens,
                ctl,
            }
        }
    }
}

/// A random unit vector (test misbehaviour).
fn random_unit_vector(dim: usize) -> Vec<f32> {
    let bytes = random_bytes::<4096>();
    let v: Vec<f32> = (0..dim)
        .map(|i| f32::from(bytes[i % bytes.len()]) - 127.5)
        .collect();
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    v.into_iter().map(|x| x / norm).collect()
}

/// Waits for a model run and names how it failed.
async fn join_run<T>(run: ModelRun<T>) -> Result<T, ApiError> {
    match run.await {
        Ok(Ok(Ok(out))) => Ok(out),
        Ok(Ok(Err(e))) => Err(ApiError::ModelFailed(e.to_string())),
        Ok(Err(_)) => Err(ApiError::Timeout("the model took too long".into())),
        Err(e) => Err(ApiError::ModelFailed(format!("model task failed: {e}"))),
    }
}

impl Started {
    /// Stops the run: a local model at its next token, an external request at once.
    fn abort(&self) {
        match self {
            Started::Embed { run, ctl, .. } => {
                ctl.abort();
                run.abort()
            }
            Started::Chat { run, ctl, .. } => {
                ctl.abort();
                run.abort()
            }
        }
    }

    fn control(&self) -> &Arc<RunControl> {
        match self {
            Started::Embed { ctl, .. } | Started::Chat { ctl, .. } => ctl,
        }
    }

    /// The job this run was started for (to start it again).
    fn into_job(self) -> Job {
        match self {
            Started::Embed { req, tokens, .. } => Job::Embed { req, tokens },
            Started::Chat {
                req,
                prompt_tokens,
                max_tokens,
                ..
            } => Job::Chat {
                req,
                prompt_tokens,
                max_tokens,
            },
        }
    }
}

/// **Test-only fault injection**, compiled only with the `test-hooks` feature (test builds; never the
/// release binary). `BOLTENSOR_TEST_PAUSE_BEFORE_CLAIM_MS=<ms>` (read once per process) makes
/// [`Miner::settle`] block that long between storing a result (`Settling`) and claiming its payment, so
/// `boltensor/tests/faults_ln.rs` can kill -9 a miner in that window deterministically (recovery must then
/// claim the stored result). It blocks a runtime thread.
#[cfg(feature = "test-hooks")]
fn test_pause_before_claim() -> Option<std::time::Duration> {
    static PAUSE: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *PAUSE.get_or_init(|| {
        std::env::var("BOLTENSOR_TEST_PAUSE_BEFORE_CLAIM_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(std::time::Duration::from_millis)
    })
}

/// Without the `test-hooks` feature there is no pause, whatever the environment says.
#[cfg(not(feature = "test-hooks"))]
fn test_pause_before_claim() -> Option<std::time::Duration> {
    None
}

/// Removes a request from the in-process serving set when its handler (or stream task) ends.
struct ServingGuard {
    miner: Arc<Miner>,
    hash: [u8; 32],
    /// The model's admission counter, taken once the payment is held, until the request ends.
    admission: Option<Arc<crate::Admission>>,
}

impl Drop for ServingGuard {
    fn drop(&mut self) {
        lock(&self.miner.serving).remove(&self.hash);
        if let Some(a) = &self.admission {
            a.admitted
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
