//! Hostile HTTP input for the daemons' bad-input tests (miner, client proxy, coordinator): a reproducible
//! generator, one request sender that reads what came back, and the check every answer to bad input must
//! pass — a 4xx with a JSON error message, never a 5xx.

/// A small deterministic generator (xorshift), so a failure reproduces from its seed.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// What came back for one request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, empty if none.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
    /// `WWW-Authenticate` (an L402 challenge), if any.
    pub www_authenticate: Option<String>,
}

/// Sends one request with raw header values. A connection the server drops before answering is an
/// error, never a status: a server must answer a body over `limit` with a 413 the client can read
/// (`boltensor_http` reads and drops an over-limit body up to its drain cap before answering).
pub async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, Vec<u8>)],
    body: Vec<u8>,
    limit: usize,
) -> Result<Answer, String> {
    let len = body.len();
    let mut req = http.request(method, url).body(body);
    for (k, v) in headers {
        let value =
            reqwest::header::HeaderValue::from_bytes(v).map_err(|e| format!("header {k}: {e}"))?;
        req = req.header(*k, value);
    }
    match req.send().await {
        Ok(resp) => {
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let status = resp.status().as_u16();
            let content_type = header("content-type").unwrap_or_default();
            let www_authenticate = header("www-authenticate");
            let body = resp
                .bytes()
                .await
                .map_err(|e| format!("{url}: reading the body: {e}"))?
                .to_vec();
            Ok(Answer {
                status,
                content_type,
                body,
                www_authenticate,
            })
        }
        Err(e) => Err(format!(
            "{url} with headers {headers:?}, {len} bytes (limit {limit}): no answer: {e:?}"
        )),
    }
}

/// Asserts an answer to bad input is a 4xx with a JSON body carrying a non-empty `error.message` (or,
/// when `ok_2xx`, a 200: the input was in fact valid). Returns the JSON body (`Null` for a 200).
pub fn assert_json_error(what: &str, a: &Answer, ok_2xx: bool) -> serde_json::Value {
    if ok_2xx && a.status == 200 {
        return serde_json::Value::Null;
    }
    assert!(
        (400..500).contains(&a.status),
        "{what}: answered {} {}",
        a.status,
        String::from_utf8_lossy(&a.body[..a.body.len().min(300)])
    );
    assert!(
        a.content_type.starts_with("application/json"),
        "{what}: {} with content-type {:?}",
        a.status,
        a.content_type
    );
    let v: serde_json::Value = serde_json::from_slice(&a.body)
        .unwrap_or_else(|e| panic!("{what}: {} with a body that is not JSON: {e}", a.status));
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {} without an error message: {v}",
        a.status
    );
    v
}
