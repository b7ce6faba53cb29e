//! Bad input over HTTP: malformed, oversized, mistyped and random bodies and paths get a clear 4xx from a
//! running member — never a 5xx — and consensus goes on.

mod common;

use boltensor_testenv::hostile::Rng;
use common::{Net, Result};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_input_gets_a_server_error() -> Result {
    let net = Net::start().await?;
    let api = net.api(0);
    let http = &net.http;
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{\"type\":\"register\"}".to_vec(),
        b"{\"type\":\"weights\",\"vector\":{\"epoch\":-1}}".to_vec(),
        json!({"type": "register", "role": "miner", "key": "zz", "node_id": "00", "signature": ""})
            .to_string()
            .into_bytes(),
        json!({"vector": {"epoch": 0, "validator": "00", "weights": {"a": 70000}}, "signature": "00"})
            .to_string()
            .into_bytes(),
        json!({"type": "attest", "key": "00", "outpoint": "x", "ok": true})
            .to_string()
            .into_bytes(),
        vec![b'{'; 200_000],
        vec![b'a'; 2 * 1024 * 1024],
    ];
    for _ in 0..60 {
        let n = rng.below(600);
        bodies.push(rng.bytes(n));
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for body in &bodies {
        for path in ["/v1/items", "/v1/weights", "/v1/admin/vote"] {
            let sent = http
                .post(format!("{api}{path}"))
                .header("content-type", "application/json")
                .header("authorization", "Bearer wrong")
                .body(body.clone())
                .send()
                .await;
            let status = match sent {
                Ok(resp) => resp.status().as_u16(),
                // Past the body limit the server answers 413 and closes the connection while the client
                // is still writing: the client may see the closed pipe instead of the answer.
                Err(e)
                    if body.len() > boltensor_coordinator::items::MAX_ITEM_BYTES
                        && e.is_request() =>
                {
                    413
                }
                Err(e) => return Err(e.into()),
            };
            *statuses.entry(status).or_default() += 1;
            assert!(
                (400..500).contains(&status),
                "{path} answered {status} to a body of {} bytes",
                body.len()
            );
        }
    }
    for path in [
        "/v1/epochs/abc",
        "/v1/epochs/18446744073709551615",
        "/v1/sessions/-1",
        "/v1/sessions/99999999",
        "/v1/miners?model=%00%ff",
        "/v1/nothing",
    ] {
        let status = http
            .get(format!("{api}{path}"))
            .send()
            .await?
            .status()
            .as_u16();
        *statuses.entry(status).or_default() += 1;
        assert!((200..500).contains(&status), "{path} answered {status}");
    }
    println!("statuses: {statuses:?}");
    // A fee report is a member's own word on its node's income: an outsider's is refused (it would make
    // the member owe a pool it never earned), and the books show nothing.
    let fees = json!({"type": "fees", "fee_msat": 1_000_000_000u64, "forwards": 1});
    let resp = http
        .post(format!("{api}/v1/items"))
        .json(&fees)
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 403);
    let books: serde_json::Value = http
        .get(format!("{api}/v1/payouts"))
        .send()
        .await?
        .json()
        .await?;
    assert!(
        books["members"]
            .as_array()
            .is_some_and(|m| m.len() == 4 && m.iter().all(|b| b["reported_msat"] == 0)),
        "{books}"
    );
    // Consensus went on.
    let before = net.status(0).await?["session"].as_u64().unwrap_or(0);
    boltensor_testenv::wait_for(
        "another session",
        std::time::Duration::from_secs(30),
        || async {
            Ok(net
                .status(0)
                .await
                .ok()
                .filter(|s| s["session"].as_u64().unwrap_or(0) > before))
        },
    )
    .await?;
    for m in net.members.iter().flatten() {
        m.stop();
    }
    Ok(())
}
