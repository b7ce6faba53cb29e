//! The validator's HTTP API (`boltensor validator run --listen ADDR`), read-only:
//!
//! | route | what |
//! |---|---|
//! | `GET /metrics` | Prometheus text: challenges sent, paid, failed and their latency by kind; sats spent, fees, refunds; weight vectors signed, submitted, failed submissions, submit latency; each miner's score; the node's balances |
//! | `GET /v1/scores` | JSON: the validator's key, each miner's score and record, the last signed epoch, the metrics |
//!
//! Bind it to localhost or behind your monitoring's network: it tells anyone who asks how this validator
//! scores.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::{ChallengeMetrics, LatencySummary, Validator};

/// No route takes a body; a request with a larger one than this is refused (413) unread.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

/// The API router.
pub fn router(validator: Arc<Validator>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/scores", get(scores))
        .layer(middleware::from_fn(limit_body))
        .with_state(validator)
}

/// Reads at most [`MAX_BODY_BYTES`] of any request body (axum's `DefaultBodyLimit` only binds
/// extractors, and no route here has one).
async fn limit_body(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Err(_) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"error": {"message": format!("request body over {MAX_BODY_BYTES} bytes"), "type": "request_too_large"}})),
        )
            .into_response(),
    }
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn summary(out: &mut String, name: &str, labels: &str, s: &LatencySummary) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (q, v) in [("0.5", s.p50), ("0.9", s.p90), ("0.99", s.p99)] {
        let _ = writeln!(out, "{name}{{{labels}{sep}quantile=\"{q}\"}} {v}");
    }
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_count{braces} {}", s.count);
}

/// The metrics as Prometheus text (exposition format 0.0.4).
pub fn render_metrics(v: &Validator) -> String {
    let m = v.metrics();
    let mut out = String::new();
    let kinds: [(&str, &ChallengeMetrics); 2] = [("embedding", &m.embedding), ("chat", &m.chat)];
    for (name, help, get) in [
        (
            "boltensor_validator_challenges_total",
            "Challenges attempted.",
            (|c: &ChallengeMetrics| c.sent) as fn(&ChallengeMetrics) -> u64,
        ),
        (
            "boltensor_validator_challenges_paid_total",
            "Challenges whose payment settled.",
            |c| c.paid,
        ),
        (
            "boltensor_validator_challenges_failed_total",
            "Challenges not answered, not paid or refunded.",
            |c| c.failed,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (kind, c) in kinds {
            let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {}", get(c));
        }
    }
    let name = "boltensor_validator_challenge_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Request to checked answer, recent answered challenges.\n# TYPE {name} summary"
    );
    for (kind, c) in kinds {
        summary(&mut out, name, &format!("kind=\"{kind}\""), &c.latency);
    }
    for (name, help, kind, value) in [
        (
            "boltensor_validator_spent_msat_total",
            "Prices of settled challenges.",
            "counter",
            m.spent_msat,
        ),
        (
            "boltensor_validator_fees_msat_total",
            "Routing fees of settled challenges.",
            "counter",
            m.fees_msat,
        ),
        (
            "boltensor_validator_backed_off_total",
            "Challenges not sent because the miner was backed off after failed or refuted ones (counted as failed, unpaid).",
            "counter",
            m.backed_off,
        ),
        (
            "boltensor_validator_over_cap_total",
            "Challenges not sent because the miner's spend cap for the epoch was reached.",
            "counter",
            m.over_cap,
        ),
        (
            "boltensor_validator_over_budget_total",
            "Challenges not sent because the spend policy's allowance (what the validator earned) was used up.",
            "counter",
            m.over_budget,
        ),
        (
            "boltensor_validator_refunded_total",
            "Challenge payments failed back by the miner.",
            "counter",
            m.refunded,
        ),
        (
            "boltensor_validator_epochs_signed_total",
            "Weight vectors signed (one per epoch).",
            "counter",
            m.epochs_signed,
        ),
        (
            "boltensor_validator_epochs_submitted_total",
            "Weight vectors delivered to the federation (resubmissions included).",
            "counter",
            m.epochs_submitted,
        ),
        (
            "boltensor_validator_submit_failures_total",
            "Deliveries of a weight vector that failed.",
            "counter",
            m.submit_failures,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    if let Some(b) = &m.books {
        for (name, help, value) in [
            (
                "boltensor_validator_income_msat",
                "Dividends received by the validator's node (keysend payments).",
                b.income_msat,
            ),
            (
                "boltensor_validator_node_spent_msat",
                "Everything the validator's node paid out (in flight and routing fees included).",
                b.spent_msat,
            ),
            (
                "boltensor_validator_allowance_msat",
                "What the spend policy allows in total: max(bootstrap, share × income).",
                b.allowance_msat,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
    }
    if let Some(epoch) = m.last_submitted_epoch {
        let name = "boltensor_validator_last_submitted_epoch";
        let _ = writeln!(
            out,
            "# HELP {name} The last epoch whose vector was delivered.\n# TYPE {name} gauge\n{name} {epoch}"
        );
    }
    let name = "boltensor_validator_submit_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time to deliver a vector to the federation, recent deliveries.\n# TYPE {name} summary"
    );
    summary(&mut out, name, "", &m.submit_latency);

    let name = "boltensor_validator_miner_score";
    let _ = writeln!(
        out,
        "# HELP {name} This validator's current score of each miner (docs/scoring.md).\n# TYPE {name} gauge"
    );
    let records = v.records();
    for (key, score) in v.scores() {
        let id = v.node_id_of(&key).unwrap_or_default();
        let url = records.get(&key).map(|r| r.url.as_str()).unwrap_or(&key);
        let _ = writeln!(
            out,
            "{name}{{miner=\"{}\",node_id=\"{}\"}} {score}",
            label(url),
            label(&id)
        );
    }
    let b = v.node().balances();
    for (name, value) in [
        ("boltensor_lightning_balance_sats", b.lightning_sats),
        ("boltensor_onchain_balance_sats", b.onchain_sats),
    ] {
        let _ = writeln!(out, "# TYPE {name} gauge\n{name} {value}");
    }
    out
}

async fn metrics(State(v): State<Arc<Validator>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render_metrics(&v),
    )
        .into_response()
}

async fn scores(State(v): State<Arc<Validator>>) -> Response {
    let records = v.records();
    let miners: Vec<_> = v
        .scores()
        .into_iter()
        .map(|(key, score)| {
            let record = records.get(&key);
            json!({
                "miner": record.map(|r| r.url.clone()).unwrap_or_else(|| key.clone()),
                "node_id": v.node_id_of(&key),
                "score": score,
                "record": record,
            })
        })
        .collect();
    let last_signed = match v.last_signed() {
        Ok(last) => last.map(|s| s.vector.epoch),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the last signed epoch");
            None
        }
    };
    Json(json!({
        "validator": v.key(),
        "node_id": v.node().node_id().to_string(),
        "miners": miners,
        "last_signed_epoch": last_signed,
        "metrics": v.metrics(),
    }))
    .into_response()
}
