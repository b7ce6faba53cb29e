//! The web dashboard: one static page (embedded in the binary) fed by a server-sent-events stream of
//! snapshots — the federation, the registry with scores and earnings, payouts, slashes, and the last
//! epoch's consensus against each validator's weights.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{Extensions, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use boltensor_protocol::Role;
use serde_json::{json, Value};

use crate::api::ApiState;
use crate::engine::Engine;

const PAGE: &str = include_str!("dashboard.html");

/// `GET /`: the page.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `GET /v1/dashboard`: one snapshot.
pub async fn snapshot_json(State(s): State<Arc<ApiState>>) -> axum::Json<Value> {
    axum::Json(annexed(snapshot(&s.engine), s.annex.as_ref()))
}

/// Figures the process hosting a member adds to its dashboard's validators table: a JSON array of
/// objects, each merged into the validator row with the same `node_id`. The devnet adds each validator's
/// own books (income, challenge spend, net), which no coordinator can see: a validator's spend is
/// between it and the miners it pays.
#[derive(Clone)]
pub struct DashboardAnnex(pub Arc<dyn Fn() -> Value + Send + Sync>);

impl std::fmt::Debug for DashboardAnnex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DashboardAnnex")
    }
}

/// `snapshot` with the annex's fields merged into the validator rows (rows it does not name are left
/// as they are; the annex cannot replace the federation's own fields).
pub fn annexed(mut snapshot: Value, annex: Option<&DashboardAnnex>) -> Value {
    let Some(annex) = annex else {
        return snapshot;
    };
    let extra = (annex.0)();
    let Some(extra) = extra.as_array() else {
        return snapshot;
    };
    if let Some(rows) = snapshot["validators"].as_array_mut() {
        for row in rows {
            let Some(add) = extra
                .iter()
                .find(|e| e["node_id"] == row["node_id"])
                .and_then(Value::as_object)
            else {
                continue;
            };
            if let Some(row) = row.as_object_mut() {
                for (k, v) in add {
                    row.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
    }
    snapshot
}

/// Dashboard streams one client IP may hold open (429 beyond).
pub const MAX_STREAMS_PER_IP: usize = 8;
/// Dashboard streams open at once, all clients together (503 beyond).
pub const MAX_STREAMS: usize = 64;

/// Streams open in all, and per client IP.
type Slots = Arc<Mutex<(usize, HashMap<Option<IpAddr>, usize>)>>;

/// The open dashboard streams, in all and per client IP.
#[derive(Debug, Default)]
pub struct StreamSlots {
    inner: Slots,
}

impl StreamSlots {
    /// Streams open now.
    pub fn open(&self) -> usize {
        self.inner.lock().expect("not poisoned").0
    }

    /// A slot for a stream from `ip`, held until the stream ends; the refusal to send otherwise.
    fn take(&self, ip: Option<IpAddr>) -> Result<StreamSlot, Box<Response>> {
        let mut g = self.inner.lock().expect("not poisoned");
        let mine = g.1.get(&ip).copied().unwrap_or(0);
        if mine >= MAX_STREAMS_PER_IP {
            return Err(Box::new(crate::api::retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                format!("this client has {MAX_STREAMS_PER_IP} dashboard streams open already"),
                10,
            )));
        }
        if g.0 >= MAX_STREAMS {
            return Err(Box::new(crate::api::retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{MAX_STREAMS} dashboard streams are open; poll GET /v1/dashboard or retry later"),
                10,
            )));
        }
        g.0 += 1;
        *g.1.entry(ip).or_default() += 1;
        Ok(StreamSlot {
            slots: self.inner.clone(),
            ip,
        })
    }
}

/// One open stream's slot, given back when the stream is dropped (the client went away).
#[derive(Debug)]
struct StreamSlot {
    slots: Slots,
    ip: Option<IpAddr>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut g = self.slots.lock().expect("not poisoned");
        g.0 -= 1;
        if let Some(c) = g.1.get_mut(&self.ip) {
            *c -= 1;
            if *c == 0 {
                g.1.remove(&self.ip);
            }
        }
    }
}

/// `GET /v1/stream`: a snapshot now, after every finished session, and every 5 s; at most
/// [`MAX_STREAMS_PER_IP`] per client and [`MAX_STREAMS`] in all.
pub async fn stream(State(s): State<Arc<ApiState>>, ext: Extensions) -> Response {
    let slot = match s.streams.take(crate::api::client_ip(&ext)) {
        Ok(slot) => slot,
        Err(refused) => return *refused,
    };
    let engine = s.engine.clone();
    let annex = s.annex.clone();
    let events = engine.subscribe();
    let stream = futures_util::stream::unfold(
        (engine, annex, events, true, slot),
        |(engine, annex, mut events, first, slot)| async move {
            if !first {
                let _ = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
            }
            let data = annexed(snapshot(&engine), annex.as_ref()).to_string();
            Some((
                Ok::<_, Infallible>(SseEvent::default().data(data)),
                (engine, annex, events, false, slot),
            ))
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// What the dashboard shows.
pub fn snapshot(engine: &Engine) -> Value {
    let st = engine.state();
    let cfg = engine.config();
    let store = engine.store();
    let last = store.latest_epoch().ok().flatten();
    let last_session = st
        .session
        .checked_sub(1)
        .and_then(|s| store.session(s).ok().flatten());
    let members: Vec<Value> = cfg
        .federation
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({
                "index": i,
                "api": format!("http://{}", m.api),
                "key": m.key.to_string(),
                "signed_last_session": last_session.as_ref().is_some_and(|s| s.signatures.contains_key(&i)),
                "me": i == cfg.index,
            })
        })
        .collect();
    let f = st.max_faulty();
    let mut miners = Vec::new();
    let mut validators = Vec::new();
    for (uid, n) in st.uids.iter().enumerate() {
        let Some(n) = n else { continue };
        let sc = last
            .as_ref()
            .and_then(|e| e.result.scores_of(uid, &n.registration.key))
            .unwrap_or_default();
        let key = n.registration.key.to_string();
        let row = json!({
            "uid": uid,
            "key": key,
            "node_id": n.registration.node_id,
            "api": n.registration.api,
            "models": n.registration.models,
            "stake_sat": n.stake_sat(f),
            "bond_sat": n.bond.as_ref().map(|b| b.amount_sat),
            "slashed": n.slashed,
            "incentive": sc.incentive,
            "consensus": sc.consensus,
            "dividends": sc.dividends,
            "trust": sc.trust,
            "paid_msat": st.paid_msat.get(&key).copied().unwrap_or(0),
            "owed_msat": st.owed.iter().filter(|(s, _)| s.ends_with(&key)).map(|(_, m)| m).sum::<u64>(),
        });
        match n.registration.role {
            Role::Miner => miners.push(row),
            _ => validators.push(row),
        }
    }
    // The picture: each validator's weights (normalised) against the consensus, over the miners.
    let matrix = last.as_ref().map(|e| {
        let r = &e.result;
        let miner_uids: Vec<u16> = r
            .inputs
            .neurons
            .iter()
            .flatten()
            .filter(|n| n.role == Role::Miner)
            .map(|n| n.uid)
            .collect();
        let rows: Vec<Value> = r
            .inputs
            .weights
            .iter()
            .map(|w| {
                let by_uid: Vec<f64> = miner_uids
                    .iter()
                    .map(|m| {
                        let node = r.inputs.neurons[*m as usize]
                            .as_ref()
                            .map(|n| n.node_id.clone())
                            .unwrap_or_default();
                        f64::from(*w.signed.vector.weights.get(&node).unwrap_or(&0))
                    })
                    .collect();
                let max = by_uid.iter().cloned().fold(0.0, f64::max).max(1.0);
                json!({ "uid": w.uid, "weights": by_uid.iter().map(|x| x / max).collect::<Vec<_>>() })
            })
            .collect();
        let consensus: Vec<f64> = miner_uids
            .iter()
            .map(|m| f64::from(r.output.consensus[*m as usize]) / 65535.0)
            .collect();
        json!({ "miners": miner_uids, "validators": rows, "consensus": consensus })
    });
    let receipted: u64 = st.paid_msat.values().sum();
    json!({
        "federation": hex::encode(cfg.federation.id()),
        "member": cfg.index,
        "threshold": cfg.federation.threshold(),
        "members": members,
        "session": st.session,
        "epoch": st.epoch,
        "params": st.params,
        "last_epoch": last.as_ref().map(|e| json!({
            "epoch": e.result.inputs.epoch,
            "signatures": e.signatures.len(),
            "payouts": e.result.payouts.len(),
            "pool_msat": e.result.payouts.iter().map(|p| p.msat).sum::<u64>(),
            "payer": e.result.payer,
            "fees_msat": e.result.inputs.fees_msat.iter().sum::<u64>(),
            "weights": e.result.inputs.weights.len(),
        })),
        "miners": miners,
        "validators": validators,
        "payouts": { "receipted_msat": receipted, "receipts": st.receipts.len(), "owed": st.owed.len() },
        "pool": { "fee_share_ppm": st.params.pool_fee_share_ppm, "members": crate::api::member_books(&st) },
        "slashes": st.slashes.iter().map(|(o, j)| json!({"outpoint": o, "signatures": j.signatures.len()})).collect::<Vec<_>>(),
        "equivocations": st.equivocations.len(),
        "matrix": matrix,
    })
}
