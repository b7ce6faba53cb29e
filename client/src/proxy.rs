//! `boltensor client proxy`: a local OpenAI-compatible endpoint that pays miners per request.
//!
//! Point any OpenAI SDK at `http://127.0.0.1:PORT/v1` (any API key): `POST /v1/embeddings` and
//! `POST /v1/chat/completions` (streamed or not) are forwarded to a miner and paid from the client's node;
//! `GET /v1/models` lists the first reachable miner's models; `GET /v1/spend` shows what was spent
//! (with requests per miner), `GET /metrics` the same as Prometheus text, and `GET /v1/directory` the
//! federation's merged miner listing when coordinators are configured (`?model=` to filter).
//! Which miner gets a request: [`crate::directory`].
//! Each paid response carries `x-boltensor-price-msat`, and when not streamed also
//! `x-boltensor-fee-msat` and `x-boltensor-preimage` (the proof of payment).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
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

/// Serves the proxy on `listener` until `shutdown` resolves, with [`limits`] (and the per-IP rate
/// limit, which needs the peer addresses [`boltensor_http::serve`] provides).
pub async fn serve(
    listener: tokio::net::TcpListener,
    client: PayingClient,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    boltensor_http::serve(listener, router(client), &limits(), shutdown).await
}

/// The proxy's router, hardened with [`limits`].
pub fn router(client: PayingClient) -> Router {
    let router = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/spend", get(spend))
        .route("/metrics", get(metrics))
        .route("/v1/directory", get(directory))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/chat/completions", post(chat))
        .with_state(client);
    boltensor_http::harden(router, &limits())
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
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let ct = resp.headers().get(reqwest::header::CONTENT_TYPE).cloned();
    let mut out = Response::new(Body::from_stream(
        resp.bytes_stream().map_err(std::io::Error::other),
    ));
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
        let status = paid.response.status();
        let bytes = match paid.response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return error(
                    StatusCode::BAD_GATEWAY,
                    "boltensor_client_error",
                    format!("miner {} dropped the answer: {e}", paid.miner),
                )
            }
        };
        if let Some(Ok(PaymentOutcome::Settled { fee_msat, preimage })) = match outcome {
            Some(h) => Some(h.await),
            None => None,
        } {
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
    let mut out = relay(paid.response).await;
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
