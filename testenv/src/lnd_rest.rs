//! A stand-in for LND's REST payment call over an ldk-node node, so that third-party L402 clients that
//! pay through LND (PyPI `l402-requests`' `LndWallet`, say) pay from a regtest node: in tests, and as the
//! devnet's "agent wallet" over a client's node.
//!
//! Only `POST /v2/router/send` (Router `SendPaymentV2`): `{"payment_request": "<bolt11>",
//! "timeout_seconds": n, ...}` in, newline-delimited JSON out, the last line
//! `{"result": {"status": "SUCCEEDED", "payment_preimage": "<base64>", ...}}` or `"FAILED"` with a
//! `failure_reason`, as LND answers. It listens on loopback only. With a macaroon ([`router`]'s
//! `macaroon`), a request must carry it in `Grpc-Metadata-macaroon` (compared in constant time) or is
//! refused with 401, as LND refuses a bad macaroon; the devnet uses the client proxy's key, so one secret
//! guards one node's funds. [`serve`] (tests) checks none.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::IntoResponse as _;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use boltensor_ln::{parse_invoice, LnNode};
use serde_json::{json, Value};

use crate::TestEnvError;

/// A running stand-in: its base URL (`http://127.0.0.1:PORT`) and the server task (aborted on drop).
#[derive(Debug)]
pub struct LndRest {
    /// Base URL, for the client's LND host setting.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LndRest {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `POST /v2/router/send` paying from `node`, on a free loopback port, with no macaroon check.
pub async fn serve(node: Arc<LnNode>) -> Result<LndRest, TestEnvError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| TestEnvError::Devnet(format!("LND REST stand-in: bind: {e}")))?;
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| TestEnvError::Devnet(e.to_string()))?
    );
    let app = router(node, None);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(LndRest { url, task })
}

/// The stand-in's routes, paying from `node`; with `macaroon`, only for requests that carry it.
pub fn router(node: Arc<LnNode>, macaroon: Option<String>) -> Router {
    Router::new()
        .route("/v2/router/send", post(send))
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let macaroon = macaroon.clone();
                async move {
                    if let Some(want) = macaroon {
                        let got = req
                            .headers()
                            .get("grpc-metadata-macaroon")
                            .map(|v| v.as_bytes())
                            .unwrap_or_default();
                        if !same(got, want.as_bytes()) {
                            return (
                                axum::http::StatusCode::UNAUTHORIZED,
                                Json(json!({"code": 2, "message": "verification failed: the macaroon is missing or wrong"})),
                            )
                                .into_response();
                        }
                    }
                    next.run(req).await
                }
            },
        ))
        .with_state(node)
}

/// Equal, in time that depends on the lengths only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn send(State(node): State<Arc<LnNode>>, Json(req): Json<Value>) -> String {
    let failed = |reason: String| {
        tracing::info!(%reason, "LND REST stand-in: payment failed");
        format!(
            "{}\n",
            json!({"result": {"status": "FAILED", "failure_reason": reason}})
        )
    };
    let Some(bolt11) = req["payment_request"].as_str() else {
        return failed("no payment_request".into());
    };
    let invoice = match parse_invoice(bolt11) {
        Ok(i) => i,
        Err(e) => return failed(format!("FAILURE_REASON_INCORRECT_PAYMENT_DETAILS: {e}")),
    };
    let timeout = Duration::from_secs(req["timeout_seconds"].as_u64().unwrap_or(60).max(1));
    match node.pay(&invoice, timeout).await {
        Ok(sent) => {
            let preimage = sent.preimage.map(|p| p.0).unwrap_or_default();
            format!(
                "{}\n",
                json!({"result": {
                    "status": "SUCCEEDED",
                    "payment_hash": hex::encode(sent.payment_hash.0),
                    "payment_preimage": base64::engine::general_purpose::STANDARD.encode(preimage),
                    "fee_msat": sent.fee_paid_msat.to_string(),
                    "value_msat": invoice.amount_milli_satoshis().unwrap_or(0).to_string(),
                }})
            )
        }
        Err(e) => failed(format!("FAILURE_REASON_ERROR: {e}")),
    }
}
