//! `boltensor client proxy`: a local OpenAI-compatible endpoint that pays miners per request.
//!
//! Point any OpenAI SDK at `http://127.0.0.1:PORT/v1` with the proxy's key as its API key: `POST /v1/embeddings` and
//! `POST /v1/chat/completions` (streamed or not) are forwarded to a miner and paid from the client's node;
//! `GET /v1/models` lists the first reachable miner's models; `GET /v1/spend` shows what was spent
//! (with requests per miner), `GET /metrics` the same as Prometheus text, and `GET /v1/directory` the
//! federation's merged miner listing when coordinators are configured (`?model=` to filter).
//! Which miner gets a request: [`crate::directory`].
//! Each paid response carries `x-boltensor-price-msat`, and when not streamed also
//! `x-boltensor-fee-msat` and `x-boltensor-preimage` (the proof of payment).
//!
//! The proxy spends the user's sats, so a web page must not be able to use it ([`ProxyAuth`]): every
//! request needs `Authorization: Bearer <key>` (the key is in `<data-dir>/proxy.key`, mode 0600; an
//! OpenAI SDK sends its `api_key` so), a `Host` that is a loopback name or the listen address (DNS
//! rebinding sends the attacker's name), no `Origin` or the proxy's own (a cross-site request sends the
//! page's), and a POST must say `Content-Type: application/json` (a cross-site form or `text/plain`
//! POST, which a browser sends without asking, is refused with 415).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use boltensor_protocol::l402;
use futures_util::TryStreamExt;
use serde_json::json;

use crate::{ClientError, PayingClient, PaymentOutcome};

/// The proxy's HTTP limits: 1 MiB bodies (a miner refuses what is over its own limit), 10 minutes per
/// request (the client's own timeouts bound a paid request well inside it), the default per-IP rate
/// limit with loopback exempt.
pub fn limits() -> boltensor_http::Limits {
    boltensor_http::Limits {
        max_body_bytes: 1024 * 1024,
        request_timeout: std::time::Duration::from_secs(600),
        ..boltensor_http::Limits::default()
    }
}

/// The file in the proxy's data directory holding its key.
pub const KEY_FILE: &str = "proxy.key";

/// Who may use the proxy: the holder of its key, from a loopback name (or the listen address), not from
/// another web origin.
#[derive(Clone)]
pub struct ProxyAuth {
    key: String,
    listen: SocketAddr,
}

impl std::fmt::Debug for ProxyAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyAuth")
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl ProxyAuth {
    /// This key, for a proxy listening on `listen`.
    pub fn new(key: impl Into<String>, listen: SocketAddr) -> Self {
        ProxyAuth {
            key: key.into(),
            listen,
        }
    }

    /// The key in `data_dir/proxy.key`, created (random, mode 0600) if there is none; an existing file's
    /// mode is tightened to 0600. Returns the auth and the file's path.
    pub fn load_or_create(data_dir: &Path, listen: SocketAddr) -> std::io::Result<(Self, PathBuf)> {
        use std::io::Write as _;
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let path = data_dir.join(KEY_FILE);
        std::fs::create_dir_all(data_dir)?;
        let key = match std::fs::read_to_string(&path) {
            Ok(k) if !k.trim().is_empty() => {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                k.trim().to_owned()
            }
            Ok(_) | Err(_) => {
                let _ = std::fs::remove_file(&path);
                let bytes: [u8; 32] = rand::random();
                let key = format!("bt-{}", hex::encode(bytes));
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                f.write_all(key.as_bytes())?;
                f.sync_all()?;
                key
            }
        };
        Ok((ProxyAuth::new(key, listen), path))
    }

    /// The key (what an OpenAI SDK is given as its `api_key`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether `host` (a `Host` header value or an origin's host, with or without port) names this
    /// proxy: a loopback name, or the listen IP; with a port, the listen port.
    fn names_me(&self, host: &str) -> bool {
        let (name, port) = split_host_port(host);
        if port.is_some_and(|p| p != self.listen.port()) {
            return false;
        }
        let name = name.to_ascii_lowercase();
        let listen_ip = self.listen.ip();
        matches!(name.as_str(), "localhost" | "127.0.0.1" | "::1")
            || name.ends_with(".localhost")
            || (!listen_ip.is_unspecified() && name.parse::<std::net::IpAddr>() == Ok(listen_ip))
    }

    /// Checks a request's headers: `Err` is the refusal (status, error type, message).
    fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
        let refuse = |status: StatusCode, kind: &'static str, message: &'static str| {
            Err((status, kind, message))
        };
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        if !host.is_some_and(|h| self.names_me(h)) {
            return refuse(
                StatusCode::FORBIDDEN,
                "boltensor_forbidden_host",
                "Host is not this proxy (use 127.0.0.1 or localhost with its port)",
            );
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let same = origin
                .to_str()
                .ok()
                .and_then(|o| o.strip_prefix("http://"))
                .is_some_and(|rest| self.names_me(rest.trim_end_matches('/')));
            if !same {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "boltensor_forbidden_origin",
                    "requests from another web origin are refused",
                );
            }
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !presented.is_some_and(|k| constant_time_eq(k.as_bytes(), self.key.as_bytes())) {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "missing or wrong API key: send `Authorization: Bearer <key>` with the key from the proxy's proxy.key file",
            );
        }
        if method == Method::POST {
            let json = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
            if !json {
                return refuse(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "invalid_request_error",
                    "Content-Type must be application/json",
                );
            }
        }
        Ok(())
    }
}

/// Why the proxy refused a request: status, error type, message.
type Refusal = (StatusCode, &'static str, &'static str);

fn split_host_port(host: &str) -> (&str, Option<u16>) {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        return match rest.split_once(']') {
            Some((ip, tail)) => (ip, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => match port.parse() {
            Ok(p) => (name, Some(p)),
            // Not a port: the whole thing is refused as a name.
            Err(_) => (host, Some(0)),
        },
        _ => (host, None),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authorize(State(auth): State<ProxyAuth>, req: Request, next: Next) -> Response {
    match auth.check(req.method(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err((status, kind, message)) => {
            tracing::warn!(%status, reason = message, "proxy request refused");
            error(status, kind, message.to_owned())
        }
    }
}

/// Serves the proxy on `listener` until `shutdown` resolves, with [`limits`] (and the per-IP rate
/// limit, which needs the peer addresses [`boltensor_http::serve`] provides).
pub async fn serve(
    listener: tokio::net::TcpListener,
    client: PayingClient,
    auth: ProxyAuth,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    boltensor_http::serve(listener, router(client, auth), &limits(), shutdown).await
}

/// The proxy's router: [`ProxyAuth`] on every route, hardened with [`limits`].
pub fn router(client: PayingClient, auth: ProxyAuth) -> Router {
    let router = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/spend", get(spend))
        .route("/metrics", get(metrics))
        .route("/v1/directory", get(directory))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/chat/completions", post(chat))
        .route("/mcp", post(mcp))
        .with_state(client)
        .layer(middleware::from_fn_with_state(auth, authorize));
    boltensor_http::harden(router, &limits())
}

/// `POST /mcp`: the MCP server's streamable-HTTP transport ([`crate::mcp`]), behind the proxy's key like
/// every route. Each message is answered with JSON (a notification with 202 and no body); there is no
/// server-initiated stream (`GET /mcp` is 405).
async fn mcp(State(client): State<PayingClient>, body: axum::body::Bytes) -> Response {
    let msg: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": format!("parse error: {e}")}})),
            )
                .into_response()
        }
    };
    let reply = match &msg {
        serde_json::Value::Array(batch) => {
            let mut out = Vec::new();
            for m in batch {
                out.extend(crate::mcp::handle(&client, m).await);
            }
            (!out.is_empty()).then_some(serde_json::Value::Array(out))
        }
        m => crate::mcp::handle(&client, m).await,
    };
    match reply {
        Some(reply) => Json(reply).into_response(),
        None => StatusCode::ACCEPTED.into_response(),
    }
}

fn error(status: StatusCode, kind: &str, message: String) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "type": kind, "param": null, "code": kind}})),
    )
        .into_response()
}

fn client_error(e: ClientError) -> Response {
    let status = match e {
        ClientError::PriceTooHigh { .. } | ClientError::BudgetExceeded { .. } => {
            StatusCode::PAYMENT_REQUIRED
        }
        // Every miner asked was busy: an OpenAI SDK retries a 429 after its Retry-After.
        ClientError::Busy {
            retry_after_secs, ..
        } => {
            let mut resp = error(
                StatusCode::TOO_MANY_REQUESTS,
                "boltensor_client_error",
                e.to_string(),
            );
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_secs),
            );
            return resp;
        }
        _ => StatusCode::BAD_GATEWAY,
    };
    error(status, "boltensor_client_error", e.to_string())
}

async fn models(State(client): State<PayingClient>) -> Response {
    match client.get("/v1/models").await {
        Ok((_, resp)) => relay(resp).await,
        Err(e) => client_error(e),
    }
}

async fn spend(State(client): State<PayingClient>) -> Response {
    Json(client.spend()).into_response()
}

/// Prometheus text: what this client has spent.
async fn metrics(State(client): State<PayingClient>) -> Response {
    let s = client.spend();
    let body = format!(
        "# TYPE boltensor_client_requests_total counter\nboltensor_client_requests_total {}\n\
         # TYPE boltensor_client_paid_requests_total counter\nboltensor_client_paid_requests_total {}\n\
         # TYPE boltensor_client_refunded_total counter\nboltensor_client_refunded_total {}\n\
         # TYPE boltensor_client_spent_msat_total counter\nboltensor_client_spent_msat_total {}\n\
         # TYPE boltensor_client_fees_msat_total counter\nboltensor_client_fees_msat_total {}\n\
         # TYPE boltensor_client_in_flight_msat gauge\nboltensor_client_in_flight_msat {}\n\
         # TYPE boltensor_client_credit_msat gauge\nboltensor_client_credit_msat {}\n",
        s.requests, s.paid_requests, s.refunded, s.spent_msat, s.fees_msat, s.in_flight_msat, s.credit_msat
    );
    let mut body = body;
    body.push_str("# TYPE boltensor_client_miner_requests_total counter\n");
    for (miner, n) in &s.requests_by_miner {
        body.push_str(&format!(
            "boltensor_client_miner_requests_total{{miner=\"{}\"}} {n}\n",
            miner.replace('\\', "\\\\").replace('"', "\\\"")
        ));
    }
    ([("content-type", "text/plain; version=0.0.4")], body).into_response()
}

#[derive(Debug, serde::Deserialize)]
struct DirectoryQuery {
    model: Option<String>,
}

/// The merged listing the client routes by (404 without coordinators, 502 when none answers).
async fn directory(
    State(client): State<PayingClient>,
    axum::extract::Query(q): axum::extract::Query<DirectoryQuery>,
) -> Response {
    let Some(dir) = client.directory() else {
        return error(
            StatusCode::NOT_FOUND,
            "boltensor_no_directory",
            "no coordinator configured (--coordinator)".into(),
        );
    };
    match dir.listing(q.model.as_deref()).await {
        Ok(listing) => {
            let miners: Vec<_> = listing
                .miners
                .iter()
                .map(|m| json!({"miner": m, "backed_off": dir.is_backed_off(&m.api)}))
                .collect();
            Json(json!({"epoch": listing.epoch, "answered": listing.answered, "miners": miners}))
                .into_response()
        }
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            "boltensor_directory_error",
            e.to_string(),
        ),
    }
}

async fn embeddings(State(client): State<PayingClient>, body: Bytes) -> Response {
    forward(client, "/v1/embeddings", body).await
}

async fn chat(State(client): State<PayingClient>, body: Bytes) -> Response {
    forward(client, "/v1/chat/completions", body).await
}

async fn relay(resp: reqwest::Response) -> Response {
    relay_as(resp, |r| {
        Body::from_stream(r.bytes_stream().map_err(std::io::Error::other))
    })
}

/// A streamed paid answer, relayed as it comes (the client keeps the credit note at its end).
fn relay_paid(client: &PayingClient, miner: &str, resp: reqwest::Response) -> Response {
    relay_as(resp, |r| {
        Body::from_stream(client.sse_body(miner, r).map_err(std::io::Error::other))
    })
}

fn relay_as(resp: reqwest::Response, body: impl FnOnce(reqwest::Response) -> Body) -> Response {
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let ct = resp.headers().get(reqwest::header::CONTENT_TYPE).cloned();
    let mut out = Response::new(body(resp));
    *out.status_mut() = status;
    if let Some(ct) = ct.and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
        out.headers_mut().insert("content-type", ct);
    }
    out
}

/// Forwards a request on its own task: a caller that goes away (or times out) does not cut a payment
/// short half-way; its outcome is tracked in the spend either way.
async fn forward(client: PayingClient, path: &'static str, body: Bytes) -> Response {
    // Not a JSON object: no miner would take it, so no miner is asked.
    if !matches!(
        serde_json::from_slice::<serde_json::Value>(&body),
        Ok(serde_json::Value::Object(_))
    ) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "the body must be a JSON object (an OpenAI request)".into(),
        );
    }
    match tokio::spawn(forward_now(client, path, body)).await {
        Ok(resp) => resp,
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "boltensor_client_error",
            format!("the request task failed: {e}"),
        ),
    }
}

async fn forward_now(client: PayingClient, path: &str, body: Bytes) -> Response {
    let mut paid = match client.post(path, body.to_vec()).await {
        Ok(p) => p,
        Err(e) => return client_error(e),
    };
    let streamed = paid
        .response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let copy: Vec<(String, HeaderValue)> = [
        l402::PRICE_HEADER,
        l402::PAYMENT_HASH_HEADER,
        l402::CREDIT_USED_HEADER,
        l402::NEW_CREDIT_MSAT_HEADER,
    ]
    .iter()
    .filter_map(|h| {
        let v = paid.response.headers().get(*h)?;
        Some((h.to_string(), HeaderValue::from_bytes(v.as_bytes()).ok()?))
    })
    .collect();
    let mut extra = Vec::new();
    if !streamed {
        // The miner claims before it answers, so the outcome follows within milliseconds.
        let outcome = paid.take_outcome();
        let mut status = paid.response.status();
        let miner = paid.miner.clone();
        let token = paid.token.clone();
        let read = paid.response.bytes().await;
        let outcome = match outcome {
            Some(h) => h.await.ok(),
            None => None,
        };
        let bytes = match read {
            Ok(b) => b,
            Err(e) => {
                // Paid and settled, but the answer broke off: fetch the stored result again from the
                // same miner rather than leave the user to pay again.
                let again = match (&outcome, &token) {
                    (Some(PaymentOutcome::Settled { preimage, .. }), Some(token)) => client
                        .refetch(&miner, path, body.to_vec(), token, preimage)
                        .await
                        .ok()
                        .filter(|r| r.status().is_success()),
                    _ => None,
                };
                let got = match again {
                    Some(r) => {
                        status = r.status();
                        r.bytes().await.ok()
                    }
                    None => None,
                };
                match got {
                    Some(b) => b,
                    None => {
                        return error(
                            StatusCode::BAD_GATEWAY,
                            "boltensor_client_error",
                            format!("miner {miner} dropped the answer: {e}"),
                        )
                    }
                }
            }
        };
        if let Some(PaymentOutcome::Settled { fee_msat, preimage }) = outcome {
            extra.push(("x-boltensor-fee-msat".to_owned(), fee_msat.to_string()));
            extra.push(("x-boltensor-preimage".to_owned(), preimage));
        }
        let mut out = Response::new(Body::from(bytes));
        *out.status_mut() =
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        out.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        add_headers(&mut out, copy, extra);
        return out;
    }
    // Streamed: relay as it comes; the outcome task records the spend when the miner claims.
    drop(paid.take_outcome());
    let miner = paid.miner.clone();
    let mut out = relay_paid(&client, &miner, paid.response);
    add_headers(&mut out, copy, extra);
    out
}

fn add_headers(out: &mut Response, copy: Vec<(String, HeaderValue)>, extra: Vec<(String, String)>) {
    let h = out.headers_mut();
    for (k, v) in copy {
        if let Ok(name) = axum::http::HeaderName::from_bytes(k.as_bytes()) {
            h.insert(name, v);
        }
    }
    for (k, v) in extra {
        if let (Ok(name), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            h.insert(name, v);
        }
    }
}
