//! HTTP serving shared by the daemons' APIs (miner, client proxy, coordinator).
//!
//! - [`harden`] wraps a router: a request body limit (413), a per-request timeout (504), a per-client-IP
//!   token-bucket rate limit (429 with `Retry-After`), and every error response that is not JSON yet
//!   (axum's own rejections, unknown paths, wrong methods) rewritten as an OpenAI-shaped JSON error
//!   `{"error": {"message", "type", "code", "param"}}`.
//! - [`serve`] runs a router on a listener like `axum::serve`, but with the peer address in every request
//!   (`ConnectInfo<SocketAddr>`, which the rate limit keys on) and a timeout for reading request headers
//!   (a client that opens connections and trickles headers is cut off).
//!
//! A router served some other way (plain `axum::serve`) keeps the body limit, timeout and JSON errors;
//! without a peer address its requests are not rate-limited.
//!
//! # Layout
//! - [`Limits`], [`RateLimit`]: the configuration, with generous defaults.
//! - [`harden`]: the middleware stack. [`serve`]: the accept loop.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::{Deserialize, Serialize};

/// A per-client-IP token bucket: `per_second` requests a second on average, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimit {
    /// Sustained requests per second per IP; 0 turns the limit off.
    pub per_second: u32,
    /// Requests an idle IP may send at once.
    pub burst: u32,
    /// Loopback clients (the devnet, tests, a local reverse proxy) are not limited.
    pub exempt_loopback: bool,
}

impl Default for RateLimit {
    /// 50 requests a second, bursts of 100, loopback exempt.
    fn default() -> Self {
        RateLimit {
            per_second: 50,
            burst: 100,
            exempt_loopback: true,
        }
    }
}

/// What [`harden`] and [`serve`] enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest request body, bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Longest a request may take until its response starts (504 beyond). A streamed body is not
    /// counted: the daemon bounds that itself.
    pub request_timeout: Duration,
    /// Longest a connection may take to send a request's headers (the connection is closed beyond).
    pub header_read_timeout: Duration,
    /// The per-IP rate limit.
    pub rate: RateLimit,
}

impl Default for Limits {
    /// 256 KiB bodies, 120 s per request, 30 s to send headers, [`RateLimit::default`].
    fn default() -> Self {
        Limits {
            max_body_bytes: 256 * 1024,
            request_timeout: Duration::from_secs(120),
            header_read_timeout: Duration::from_secs(30),
            rate: RateLimit::default(),
        }
    }
}

/// The OpenAI-shaped error type name for a status.
fn kind_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "payment_required",
        403 => "permission_error",
        404 => "not_found_error",
        405 => "method_not_allowed",
        408 | 504 => "timeout",
        409 => "conflict_error",
        413 => "request_too_large",
        415 => "unsupported_media_type",
        429 => "rate_limit_exceeded",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

/// An OpenAI-shaped JSON error response.
pub fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    let kind = kind_of(status);
    (
        status,
        axum::Json(serde_json::json!({
            "error": {"message": message.into(), "type": kind, "code": kind, "param": null}
        })),
    )
        .into_response()
}

/// Wraps `router` in the limits (see the crate docs). The router's own error responses that are
/// already JSON pass unchanged.
pub fn harden(router: Router, limits: &Limits) -> Router {
    let buckets = Arc::new(Buckets::new(limits.rate));
    let max_body = limits.max_body_bytes;
    let timeout = limits.request_timeout;
    router
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            content_length_check(max_body, req, next)
        }))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            time_limit(timeout, req, next)
        }))
        .layer(middleware::from_fn_with_state(buckets, rate_limit))
        .layer(middleware::from_fn(json_errors))
}

/// The largest over-limit body (declared length) read and discarded before its 413, so that a client
/// still writing it reads the 413 instead of a broken pipe: 4 × the limit, at least 8 MiB. Larger declared
/// bodies are refused unread and the connection is closed (the client may then see the broken pipe).
pub fn drain_cap(max_body: usize) -> usize {
    max_body.saturating_mul(4).max(8 << 20)
}

/// 413 for a body whose declared length is over the limit, without keeping any of it: up to
/// [`drain_cap`] it is read and dropped first (within the request timeout), beyond that not read at all.
async fn content_length_check(max: usize, req: Request, next: Next) -> Response {
    use axum::body::HttpBody as _;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        if declared.is_some_and(|n| n <= drain_cap(max) as u64) {
            let mut body = req.into_body();
            while let Some(frame) =
                std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
            {
                if frame.is_err() {
                    break;
                }
            }
        }
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {max} bytes"),
        );
    }
    next.run(req).await
}

/// A 413 leaves the rest of the body unread on the connection: tell the client it closes, so the
/// connection is not reused for its next request (which would fail as an incomplete message).
fn close_after_413(mut resp: Response) -> Response {
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

async fn time_limit(timeout: Duration, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(
                path,
                timeout_secs = timeout.as_secs_f64(),
                "request timed out"
            );
            json_error(
                StatusCode::GATEWAY_TIMEOUT,
                format!("the request took longer than {} s", timeout.as_secs_f64()),
            )
        }
    }
}

/// Largest error body read to turn into a JSON message.
const MAX_ERROR_TEXT: usize = 16 * 1024;

/// Rewrites non-JSON error responses (axum's rejections are plain text; 404 and 405 are empty) as JSON
/// errors with the same status and headers.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = close_after_413(next.run(req).await);
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MAX_ERROR_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if !text.is_empty() {
        text
    } else {
        match status {
            StatusCode::NOT_FOUND => "no such path".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED => {
                "method not allowed on this path (the Allow header lists the ones that are)"
                    .to_owned()
            }
            s => s.canonical_reason().unwrap_or("error").to_owned(),
        }
    };
    let mut out = json_error(status, message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// Most IPs tracked before idle ones are forgotten.
const MAX_TRACKED_IPS: usize = 10_000;

#[derive(Debug)]
struct Buckets {
    cfg: RateLimit,
    map: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl Buckets {
    fn new(cfg: RateLimit) -> Self {
        Buckets {
            cfg,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `ip`, or says how long until one is available.
    fn take(&self, ip: IpAddr) -> Result<(), Duration> {
        let rate = f64::from(self.cfg.per_second);
        let burst = f64::from(self.cfg.burst.max(1));
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED_IPS && !map.contains_key(&ip) {
            // Forget the IPs whose bucket has refilled: they are where a new one would start.
            map.retain(|_, (tokens, at)| *tokens + at.elapsed().as_secs_f64() * rate < burst);
        }
        let (tokens, at) = map.entry(ip).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

/// The client's IP, an IPv4-mapped IPv6 address as IPv4.
fn client_ip(req: &Request) -> Option<IpAddr> {
    let addr = req.extensions().get::<ConnectInfo<SocketAddr>>()?.0;
    Some(match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    })
}

async fn rate_limit(State(buckets): State<Arc<Buckets>>, req: Request, next: Next) -> Response {
    let cfg = buckets.cfg;
    let Some(ip) = client_ip(&req).filter(|_| cfg.per_second > 0) else {
        return next.run(req).await;
    };
    if cfg.exempt_loopback && ip.is_loopback() {
        return next.run(req).await;
    }
    match buckets.take(ip) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            tracing::debug!(%ip, retry_after_secs = secs, "rate limited");
            let mut resp = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "rate limit: {} requests a second (bursts of {}) per client; retry after {secs} s",
                    cfg.per_second, cfg.burst
                ),
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            resp
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits for open requests to finish
/// (like `axum::serve(..).with_graceful_shutdown(..)`). Every request carries its peer address as
/// `ConnectInfo<SocketAddr>`; a connection that takes longer than `limits.header_read_timeout` to
/// send a request's headers is closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt as _;

    // HTTP/1.1 only (what every client here speaks; the offline dependency set has no HTTP/2).
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: give other connections a moment to close.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req.map(Body::new))
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};

    fn app(limits: &Limits) -> Router {
        let slow = || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        };
        harden(
            Router::new()
                .route("/ok", get(|| async { "ok" }))
                .route("/echo", post(|b: axum::body::Bytes| async move { b }))
                .route("/slow", get(slow)),
            limits,
        )
    }

    async fn start(limits: Limits) -> (String, tokio::sync::oneshot::Sender<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = serve(listener, app(&limits), &limits, async move {
                let _ = rx.await;
            })
            .await;
        });
        (url, tx)
    }

    async fn json(resp: reqwest::Response) -> serde_json::Value {
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(ct.starts_with("application/json"), "content-type {ct}");
        resp.json().await.expect("a JSON body")
    }

    #[tokio::test]
    async fn limits_answer_with_json_errors() {
        let limits = Limits {
            max_body_bytes: 1000,
            request_timeout: Duration::from_millis(300),
            header_read_timeout: Duration::from_secs(5),
            rate: RateLimit {
                per_second: 1,
                burst: 1000,
                exempt_loopback: false,
            },
        };
        let (url, stop) = start(limits).await;
        let http = reqwest::Client::new();
        let ok = http.get(format!("{url}/ok")).send().await.expect("send");
        assert_eq!(ok.status(), 200);
        // Over the limit, declared or streamed (no content-length).
        let big = http
            .post(format!("{url}/echo"))
            .body(vec![b'x'; 5000])
            .send()
            .await
            .expect("send");
        assert_eq!(big.status(), 413);
        assert!(json(big).await["error"]["message"].is_string());
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            (0..3).map(|_| Ok(vec![b'x'; 800])).collect();
        let streamed = http
            .post(format!("{url}/echo"))
            .body(reqwest::Body::wrap_stream(tokio_stream::iter(chunks)))
            .send()
            .await
            .expect("send");
        assert_eq!(streamed.status(), 413);
        assert_eq!(json(streamed).await["error"]["type"], "request_too_large");
        // The same client's next request (on a fresh connection: the 413's was closed) goes through.
        let small = http
            .post(format!("{url}/echo"))
            .body("hello")
            .send()
            .await
            .expect("send after a 413");
        assert_eq!(small.text().await.expect("text"), "hello");
        for i in 0..20 {
            let big = http
                .post(format!("{url}/echo"))
                .body(vec![b'x'; 5000])
                .send()
                .await
                .expect("send");
            assert_eq!(big.status(), 413);
            assert_eq!(big.headers()["connection"], "close");
            let small = http
                .post(format!("{url}/echo"))
                .body("hello")
                .send()
                .await
                .unwrap_or_else(|e| panic!("request {i} after a 413: {e:?}"));
            assert_eq!(small.status(), 200);
        }
        // A declared body far over the limit (but within the drain cap), bigger than what the server
        // reads ahead: the client, still writing it, reads the 413 rather than a reset connection.
        for i in 0..10 {
            let big = http
                .post(format!("{url}/echo"))
                .body(vec![b'x'; 2 * 1024 * 1024])
                .send()
                .await
                .unwrap_or_else(|e| panic!("a 2 MiB body, try {i}: no answer: {e:?}"));
            assert_eq!(big.status(), 413);
        }
        // Unknown path, wrong method, timeout: JSON errors.
        let missing = http.get(format!("{url}/nope")).send().await.expect("send");
        assert_eq!(missing.status(), 404);
        assert_eq!(json(missing).await["error"]["type"], "not_found_error");
        let wrong = http.put(format!("{url}/ok")).send().await.expect("send");
        assert_eq!(wrong.status(), 405);
        assert!(wrong.headers().contains_key("allow"));
        let wrong = json(wrong).await;
        assert!(
            wrong["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("not allowed")),
            "{wrong}"
        );
        let slow = http.get(format!("{url}/slow")).send().await.expect("send");
        assert_eq!(slow.status(), 504);
        assert_eq!(json(slow).await["error"]["type"], "timeout");
        let _ = stop.send(());
    }

    #[tokio::test]
    async fn rate_limit_per_ip_with_retry_after() {
        let limits = Limits {
            rate: RateLimit {
                per_second: 1,
                burst: 3,
                exempt_loopback: false,
            },
            ..Limits::default()
        };
        let (url, stop) = start(limits).await;
        let http = reqwest::Client::new();
        let mut statuses = Vec::new();
        let mut retry_after = None;
        for _ in 0..6 {
            let resp = http.get(format!("{url}/ok")).send().await.expect("send");
            statuses.push(resp.status().as_u16());
            if resp.status() == 429 {
                retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                assert_eq!(json(resp).await["error"]["type"], "rate_limit_exceeded");
            }
        }
        assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
        assert!(statuses[3..].contains(&429), "{statuses:?}");
        assert_eq!(retry_after, Some(1));
        let _ = stop.send(());

        // Loopback exempt: never limited.
        let limits = Limits {
            rate: RateLimit {
                per_second: 1,
                burst: 1,
                exempt_loopback: true,
            },
            ..Limits::default()
        };
        let (url, stop) = start(limits).await;
        for _ in 0..10 {
            let resp = http.get(format!("{url}/ok")).send().await.expect("send");
            assert_eq!(resp.status(), 200);
        }
        let _ = stop.send(());
    }

    #[tokio::test]
    async fn slow_headers_are_cut_off() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let limits = Limits {
            header_read_timeout: Duration::from_millis(500),
            ..Limits::default()
        };
        let (url, stop) = start(limits).await;
        let addr = url.trim_start_matches("http://");
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        conn.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        // The rest of the headers never come: the server closes the connection (possibly after a
        // 408) within its header read timeout, well before this read's own deadline.
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "the connection was still open after 20 s");
        let _ = stop.send(());
    }

    #[tokio::test]
    async fn hardened_routers_merge() {
        use tower::ServiceExt as _;
        let limits = Limits::default();
        let a = harden(Router::new().route("/a", get(|| async { "a" })), &limits);
        let b = harden(Router::new().route("/b", get(|| async { "b" })), &limits);
        let app = a.merge(b);
        for (path, want) in [("/a", 200), ("/b", 200), ("/c", 404)] {
            let req = Request::builder()
                .uri(path)
                .body(Body::empty())
                .expect("request");
            let resp = app.clone().oneshot(req).await.expect("infallible");
            assert_eq!(resp.status().as_u16(), want, "{path}");
        }
    }

    #[test]
    fn bucket_refills_at_the_rate() {
        let b = Buckets::new(RateLimit {
            per_second: 10,
            burst: 2,
            exempt_loopback: false,
        });
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!(b.take(ip).is_ok());
        assert!(b.take(ip).is_ok());
        let wait = b.take(ip).expect_err("empty");
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        assert!(b.take(other).is_ok(), "buckets are per IP");
    }
}
