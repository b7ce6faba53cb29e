//! The coordinator's public HTTP API.
//!
//! | route | what |
//! |---|---|
//! | `GET /v1/status` | member, session, epoch, parameters |
//! | `GET /v1/federation` | the public federation config (members' keys and addresses) |
//! | `POST /v1/items` | submit a consensus item (registration, weights, …): 202 (also when an identical item is already queued), 409 if one is already in effect, 400 with the reason, 429 when the sender's key or IP has too many items waiting, 503 when the mempool is full |
//! | `POST /v1/weights` | submit a validator's signed weights (same as an item of type `weights`) |
//! | `GET /v1/sessions/{n}` | a signed session (peers catch up from it) |
//! | `GET /v1/epochs/{n}`, `/v1/epochs/latest` | a signed epoch result with every input |
//! | `GET /v1/miners?model=` | miners ranked by the last signed epoch's incentive (only those whose bond counts, when `miner_bond_min_sat` asks for one) |
//! | `GET /v1/registry` | every registrant with its stake |
//! | `GET /v1/payouts` | epoch payouts owed (`epoch:key`, or `epoch:member:key` for a member's share of a fee-funded pool → msat) and receipted (→ payment hash); each member's pool books (`members`) |
//! | `POST /v1/admin/vote` | this member votes for a parameter change (bearer token from `admin.token`) |
//! | `GET /v1/admin/ledger` | this member's Lightning payments, for the ledger audit (bearer token; only with a node) |
//! | `GET /metrics` | Prometheus text |
//! | `GET /` | the dashboard (live over `GET /v1/stream`, server-sent events, at most a few per client IP and in all: 429 / 503 beyond; `GET /v1/dashboard` one snapshot) |

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use boltensor_protocol::weights::SignedWeights;
use boltensor_protocol::Role;
use serde::Deserialize;
use serde_json::json;

use crate::engine::{Engine, SubmitError, Submitted};
use crate::items::{ConsensusItem, ParamVote, MAX_ITEM_BYTES};

/// Shared by the handlers.
#[derive(Debug)]
pub struct ApiState {
    /// The engine.
    pub engine: Arc<Engine>,
    /// The admin bearer token.
    pub admin_token: String,
    submitted: AtomicU64,
    refused: AtomicU64,
    /// Open dashboard streams.
    pub streams: crate::dashboard::StreamSlots,
    /// This member's bitcoind: when registration is priced, a registration's bond proof is checked
    /// against it before the item is queued (none: this member queues claims unchecked, as a member
    /// without bitcoind attests nothing).
    pub rpc: Option<boltensor_contracts::BitcoindRpc>,
    /// What the hosting process adds to the dashboard ([`crate::Options::dashboard_annex`]).
    pub annex: Option<crate::dashboard::DashboardAnnex>,
}

/// The router.
pub fn router(
    engine: Arc<Engine>,
    admin_token: String,
    rpc: Option<boltensor_contracts::BitcoindRpc>,
    annex: Option<crate::dashboard::DashboardAnnex>,
) -> Router {
    let state = Arc::new(ApiState {
        engine,
        admin_token,
        submitted: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        streams: crate::dashboard::StreamSlots::default(),
        rpc,
        annex,
    });
    let router = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/federation", get(federation))
        .route("/v1/items", post(submit_item))
        .route("/v1/weights", post(submit_weights))
        .route("/v1/sessions/{n}", get(session))
        .route("/v1/epochs/{n}", get(epoch))
        .route("/v1/miners", get(miners))
        .route("/.well-known/l402.json", get(l402_directory))
        .route("/v1/registry", get(registry))
        .route("/v1/payouts", get(payouts))
        .route("/v1/admin/vote", post(vote))
        .route("/metrics", get(metrics))
        .route("/", get(crate::dashboard::page))
        .route("/dashboard", get(crate::dashboard::page))
        .route("/v1/dashboard", get(crate::dashboard::snapshot_json))
        .route("/v1/stream", get(crate::dashboard::stream))
        .with_state(state);
    boltensor_http::harden(router, &limits())
}

/// The API's HTTP limits: bodies up to one consensus item, 30 s per request (every handler reads local
/// state), the default per-IP rate limit.
pub fn limits() -> boltensor_http::Limits {
    boltensor_http::Limits {
        max_body_bytes: MAX_ITEM_BYTES,
        request_timeout: std::time::Duration::from_secs(30),
        ..boltensor_http::Limits::default()
    }
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": { "message": msg.into() } }))).into_response()
}

async fn status(State(s): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    let st = s.engine.state();
    let cfg = s.engine.config();
    let last = s.engine.store().latest_epoch().ok().flatten();
    Json(json!({
        "federation": hex::encode(cfg.federation.id()),
        "member": cfg.index,
        "members": cfg.federation.n(),
        "threshold": cfg.federation.threshold(),
        "session": st.session,
        "epoch": st.epoch,
        "last_signed_epoch": last.map(|e| e.result.inputs.epoch),
        "params": st.params,
        "pending_params": st.pending_params,
        "registered": st.uids.iter().flatten().count(),
    }))
}

async fn federation(State(s): State<Arc<ApiState>>) -> Json<crate::FederationConfig> {
    Json(s.engine.config().federation.clone())
}

/// The client's IP from the connection (an IPv4-mapped IPv6 address as IPv4); `None` when the router
/// is served without peer addresses.
pub fn client_ip(ext: &Extensions) -> Option<IpAddr> {
    let ip = ext.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    })
}

/// A JSON error with `Retry-After`.
pub(crate) fn retry_later(status: StatusCode, msg: impl Into<String>, secs: u64) -> Response {
    let mut resp = error(status, msg);
    resp.headers_mut()
        .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

fn accept(s: &ApiState, item: ConsensusItem, from: Option<IpAddr>) -> Response {
    let kind = item.kind();
    match s.engine.submit(item, from) {
        Ok(how) => {
            s.submitted.fetch_add(1, Ordering::Relaxed);
            (
                StatusCode::ACCEPTED,
                Json(json!({
                    "status": "queued",
                    "type": kind,
                    "duplicate": how == Submitted::AlreadyQueued,
                })),
            )
                .into_response()
        }
        Err(e) => {
            s.refused.fetch_add(1, Ordering::Relaxed);
            match e {
                // 409: well-formed, but it conflicts with the registry (a bond, node id or URL another
                // registrant holds) or is older than what the registry has seen of its key (a replay).
                SubmitError::Invalid(reason)
                    if reason.starts_with("conflict:") || reason.starts_with("stale ") =>
                {
                    error(StatusCode::CONFLICT, format!("{kind} refused: {reason}"))
                }
                SubmitError::Invalid(reason) => {
                    error(StatusCode::BAD_REQUEST, format!("{kind} refused: {reason}"))
                }
                e @ SubmitError::Duplicate(_) => error(StatusCode::CONFLICT, e.to_string()),
                e @ SubmitError::SenderBusy(_) => {
                    retry_later(StatusCode::TOO_MANY_REQUESTS, e.to_string(), 2)
                }
                e @ SubmitError::Full(_) => {
                    retry_later(StatusCode::SERVICE_UNAVAILABLE, e.to_string(), 5)
                }
            }
        }
    }
}

fn body_error(e: BytesRejection) -> Response {
    error(e.status(), e.body_text())
}

async fn submit_item(
    State(s): State<Arc<ApiState>>,
    ext: Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    match ConsensusItem::decode(&body) {
        Ok(
            ConsensusItem::Attest(_)
            | ConsensusItem::Vote(_)
            | ConsensusItem::Receipt(_)
            | ConsensusItem::Fees(_)
            | ConsensusItem::SlashSignature(_),
        ) => error(
            StatusCode::FORBIDDEN,
            "attestations, votes, receipts, fee reports and slash signatures come from members only",
        ),
        Ok(item) => {
            if let Err(refusal) = check_bond_on_chain(&s, &item).await {
                s.refused.fetch_add(1, Ordering::Relaxed);
                return refusal;
            }
            accept(&s, item, client_ip(&ext))
        }
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            format!("not a consensus item: {e}"),
        ),
    }
}

/// A registration's bond proof against this member's bitcoind, before the item is queued, when
/// registration is priced (`miner_bond_min_sat` > 0, ADR 0012): a proof that names an output which does
/// not exist (or is not that bond, or holds another amount) costs nothing to sign, and would take a
/// registry slot until members attest it. The output may still be in the mempool (an honest registrant
/// registers right after funding): only confirmations may be missing. Everything the state checks
/// (signatures, sequence, conflicts) is checked first, so a forged, replayed or conflicting item costs
/// no RPC; its refusal comes from the engine with the reason.
async fn check_bond_on_chain(s: &ApiState, item: &ConsensusItem) -> Result<(), Response> {
    use boltensor_contracts::chain::VerifyError;
    use boltensor_contracts::{BondProof, ProofError};
    let (Some(rpc), ConsensusItem::Register(r)) = (&s.rpc, item) else {
        return Ok(());
    };
    let Some(Ok(proof)) = r.bond.as_deref().map(BondProof::from_hex) else {
        return Ok(());
    };
    let index = s.engine.config().index;
    let Some(params) = s.engine.with_state(|st| {
        (st.params.miner_bond_min_sat > 0 && st.check(item, index).is_ok())
            .then(|| st.params.clone())
    }) else {
        return Ok(());
    };
    let keys = s.engine.config().federation.keys();
    let Some(policy) = crate::chain::bond_policy(keys, &params) else {
        return Ok(());
    };
    match rpc.verify_bond_proof(&proof, &policy).await {
        Ok(_) | Err(VerifyError::Proof(ProofError::NotConfirmed { .. })) => Ok(()),
        Err(VerifyError::Proof(e)) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("register refused: this member's bitcoind refuses the bond: {e}"),
        )),
        Err(VerifyError::Chain(e)) => Err(retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("register: cannot check the bond against this member's bitcoind now: {e}"),
            5,
        )),
    }
}

async fn submit_weights(
    State(s): State<Arc<ApiState>>,
    ext: Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    match serde_json::from_slice::<SignedWeights>(&body) {
        Ok(sw) => accept(&s, ConsensusItem::Weights(sw), client_ip(&ext)),
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            format!("not a signed weight vector: {e}"),
        ),
    }
}

async fn session(State(s): State<Arc<ApiState>>, Path(n): Path<u64>) -> Response {
    match s.engine.store().session(n) {
        Ok(Some(signed)) => Json(signed).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            format!("session {n} is not finished"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn epoch(State(s): State<Arc<ApiState>>, Path(n): Path<String>) -> Response {
    let found = if n == "latest" {
        s.engine.store().latest_epoch()
    } else {
        match n.parse::<u64>() {
            Ok(n) => s.engine.store().epoch(n),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "an epoch is a number or \"latest\"",
                )
            }
        }
    };
    match found {
        Ok(Some(e)) => Json(e).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no signed epoch {n} yet")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct MinerQuery {
    model: Option<String>,
}

/// `GET /.well-known/l402.json` on a coordinator: where an L402 agent finds every registered miner — its
/// API, the node its invoices must pay, its own discovery manifest (`<api>/.well-known/l402.json`, with
/// prices), its models and score — the listing of `GET /v1/miners`, best first. Not a manifest itself:
/// a coordinator sells nothing.
async fn l402_directory(State(s): State<Arc<ApiState>>) -> Response {
    let (epoch, listed) = miner_listing(&s, None);
    let providers: Vec<serde_json::Value> = listed
        .iter()
        .filter_map(|m| {
            let api = m["api"].as_str()?.trim_end_matches('/');
            Some(json!({
                "uri": api,
                "node_pubkey": m["node_id"],
                "manifest": format!("{api}/.well-known/l402.json"),
                "models": m["models"],
                "score": m["score"],
            }))
        })
        .collect();
    (
        [(axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        Json(json!({
            "version": "1.0",
            "directory": "boltensor federation: registered miners, best first",
            "epoch": epoch,
            "providers": providers,
        })),
    )
        .into_response()
}

async fn miners(State(s): State<Arc<ApiState>>, Query(q): Query<MinerQuery>) -> Response {
    let (epoch, out) = miner_listing(&s, q.model.as_deref());
    Json(json!({ "epoch": epoch, "miners": out })).into_response()
}

/// The registered miners whose bond counts (serving `model`, if given), best score first, and the epoch
/// the scores are from.
fn miner_listing(s: &ApiState, model: Option<&str>) -> (Option<u64>, Vec<serde_json::Value>) {
    let st = s.engine.state();
    let f = st.max_faulty();
    let last = s.engine.store().latest_epoch().ok().flatten();
    let mut out: Vec<_> = st
        .uids
        .iter()
        .enumerate()
        .filter_map(|(uid, n)| n.as_ref().map(|n| (uid, n)))
        .filter(|(_, n)| n.registration.role == Role::Miner)
        // Clients and validators see a miner once its bond counts (when the federation asks for one).
        .filter(|(_, n)| crate::state::bonded_enough(&st.params, n.stake_sat(f)))
        .filter(|(_, n)| model.is_none_or(|m| n.registration.models.iter().any(|x| x == m)))
        .map(|(uid, n)| {
            let sc = last
                .as_ref()
                .and_then(|e| e.result.scores_of(uid, &n.registration.key))
                .unwrap_or_default();
            let (incentive, consensus) = (sc.incentive, sc.consensus);
            json!({
                "uid": uid,
                "node_id": n.registration.node_id,
                "api": n.registration.api,
                "models": n.registration.models,
                "incentive": incentive,
                "consensus": consensus,
                "score": incentive as f64 / u16::MAX as f64,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b["incentive"]
            .as_u64()
            .cmp(&a["incentive"].as_u64())
            .then(a["uid"].as_u64().cmp(&b["uid"].as_u64()))
    });
    (last.map(|e| e.result.inputs.epoch), out)
}

async fn registry(State(s): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    let st = s.engine.state();
    let f = st.max_faulty();
    let list: Vec<_> = st
        .uids
        .iter()
        .enumerate()
        .filter_map(|(uid, n)| {
            n.as_ref().map(|n| {
                json!({
                    "uid": uid,
                    "role": n.registration.role,
                    "key": n.registration.key,
                    "node_id": n.registration.node_id,
                    "api": n.registration.api,
                    "models": n.registration.models,
                    "bond": n.bond,
                    "attested": n.attested_ok.len(),
                    "attested_gone": n.attested_gone.len(),
                    "stake_sat": n.stake_sat(f),
                    "slashed": n.slashed,
                    "registered_epoch": n.registered_epoch,
                })
            })
        })
        .collect();
    let slashes: serde_json::Map<String, serde_json::Value> = st
        .slashes
        .iter()
        .map(|(o, j)| {
            (
                o.clone(),
                json!({ "key": j.key, "signatures": j.signatures.len(), "needed": st.threshold() }),
            )
        })
        .collect();
    Json(json!({ "epoch": st.epoch, "registry": list, "slashes": slashes }))
}

async fn payouts(State(s): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    let st = s.engine.state();
    Json(json!({
        "owed_msat": st.owed,
        "receipts": st.receipts,
        "pool_fee_share_ppm": st.params.pool_fee_share_ppm,
        "members": member_books(&st),
    }))
}

/// Each member's books of a fee-funded pool (ADR 0015), by member index, as `GET /v1/payouts` and the
/// dashboard show them (the fields of `boltensor_audit::MemberBooks`, less what the node earned).
pub fn member_books(st: &crate::state::State) -> Vec<serde_json::Value> {
    (0..st.members)
        .map(|i| {
            let b = st.pool_books.get(&i).cloned().unwrap_or_default();
            let r = b.report.unwrap_or_default();
            json!({
                "member": i,
                "reported_msat": r.fee_msat,
                "forwards": r.forwards,
                "accounted_msat": b.accounted_msat,
                "pool_msat": b.pool_msat,
                "owed_msat": b.owed_msat,
                "paid_msat": b.paid_msat,
            })
        })
        .collect()
}

/// Admin endpoints: `Authorization: Bearer <contents of admin.token>`, compared in constant time; an
/// empty token (none configured) refuses everyone. `Some(401 response)` when refused.
fn refuse_unless_admin(headers: &HeaderMap, token: &str) -> Option<Response> {
    let authorised = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| !token.is_empty() && same_secret(t.trim(), token));
    (!authorised).then(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "admin endpoint: send Authorization: Bearer <contents of admin.token>",
        )
    })
}

async fn vote(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Some(refused) = refuse_unless_admin(&headers, &s.admin_token) {
        return refused;
    }
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_error(e),
    };
    let v: ParamVote = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("not a vote: {e}")),
    };
    let st = s.engine.state();
    let base = st.pending_params.as_ref().unwrap_or(&st.params);
    if let Err(e) = base.with(&v.name, v.value) {
        return error(StatusCode::BAD_REQUEST, e);
    }
    s.engine.propose(ConsensusItem::Vote(v));
    (StatusCode::ACCEPTED, Json(json!({ "status": "queued" }))).into_response()
}

/// Compares a presented secret with ours in time independent of where they differ.
fn same_secret(presented: &str, ours: &str) -> bool {
    let (a, b) = (presented.as_bytes(), ours.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn metrics(State(s): State<Arc<ApiState>>) -> impl IntoResponse {
    let st = s.engine.state();
    let links = s.engine.link_stats().snapshot();
    let pool = s.engine.mempool_stats();
    let body = format!(
        "# TYPE boltensor_coordinator_session gauge\nboltensor_coordinator_session {}\n\
         # TYPE boltensor_coordinator_epoch gauge\nboltensor_coordinator_epoch {}\n\
         # TYPE boltensor_coordinator_registered gauge\nboltensor_coordinator_registered {}\n\
         # TYPE boltensor_coordinator_items_submitted_total counter\nboltensor_coordinator_items_submitted_total {}\n\
         # TYPE boltensor_coordinator_items_refused_total counter\nboltensor_coordinator_items_refused_total {}\n\
         # TYPE boltensor_coordinator_p2p_handshakes_total counter\n\
         boltensor_coordinator_p2p_handshakes_total{{result=\"ok\"}} {}\n\
         boltensor_coordinator_p2p_handshakes_total{{result=\"refused\"}} {}\n\
         # TYPE boltensor_coordinator_p2p_frames_total counter\n\
         boltensor_coordinator_p2p_frames_total{{result=\"ok\"}} {}\n\
         boltensor_coordinator_p2p_frames_total{{result=\"refused\"}} {}\n\
         # TYPE boltensor_coordinator_mempool_items gauge\nboltensor_coordinator_mempool_items {}\n\
         # TYPE boltensor_coordinator_mempool_high_water gauge\nboltensor_coordinator_mempool_high_water {}\n\
         # TYPE boltensor_coordinator_items_duplicate_total counter\nboltensor_coordinator_items_duplicate_total {}\n\
         # TYPE boltensor_coordinator_items_ordered_total counter\n\
         boltensor_coordinator_items_ordered_total{{result=\"accepted\"}} {}\n\
         boltensor_coordinator_items_ordered_total{{result=\"rejected\"}} {}\n\
         # TYPE boltensor_coordinator_dashboard_streams gauge\nboltensor_coordinator_dashboard_streams {}\n",
        st.session,
        st.epoch,
        st.uids.iter().flatten().count(),
        s.submitted.load(Ordering::Relaxed),
        s.refused.load(Ordering::Relaxed),
        links.0,
        links.1,
        links.2,
        links.3,
        pool.pending,
        pool.high_water,
        pool.duplicates,
        pool.ordered_accepted,
        pool.ordered_rejected,
        s.streams.open(),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
}

/// `GET /v1/admin/ledger`, served when the member runs a Lightning node: the node's payments (the epoch
/// payouts it sent, the payments it routed to itself) and its forward totals (the fees it earned routing)
/// for the ledger audit (`boltensor-audit`). Read-only, behind the admin bearer token.
pub fn ledger_router(ln: Arc<boltensor_ln::LnNode>, admin_token: String) -> Router {
    let router = Router::new()
        .route("/v1/admin/ledger", get(ledger))
        .with_state(Arc::new(LedgerState { ln, admin_token }));
    boltensor_http::harden(router, &limits())
}

struct LedgerState {
    ln: Arc<boltensor_ln::LnNode>,
    admin_token: String,
}

async fn ledger(State(s): State<Arc<LedgerState>>, headers: HeaderMap) -> Response {
    if let Some(refused) = refuse_unless_admin(&headers, &s.admin_token) {
        return refused;
    }
    Json(json!({
        "node_id": s.ln.node_id().to_string(),
        "payments": s.ln.payments(),
        "forwarded": s.ln.forwarded(),
    }))
    .into_response()
}
