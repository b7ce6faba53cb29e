//! Peer-to-peer links between coordinators: one TCP connection per direction (the dialer sends, the
//! listener receives), mutually authenticated with the members' keys and encrypted frame by frame
//! (ADR 0011). Messages to a peer that is down are dropped (aleph-bft re-requests what it misses); a
//! bounded queue per peer keeps a slow peer from eating memory.
//!
//! The handshake (an ECDH key exchange signed by both members, as in SIGMA / TLS 1.3 with pinned keys):
//! 1. listener → dialer: its ephemeral secp256k1 key `eL` (33 bytes, fresh per connection);
//! 2. dialer → listener: the member index it claims (u32), its ephemeral key `eD` (33 bytes) and its
//!    member key's BIP-340 signature over the transcript (federation id, both indices, `eL`, `eD`);
//! 3. listener → dialer: its member key's signature over the same transcript (another domain tag).
//!
//! Each side checks the other's signature against the member key in the federation config before
//! anything else: the listener closes on a dialer that cannot sign as the member it claims, the dialer
//! sends nothing to a listener that cannot sign as the member it dialled. The frame key is SHA-256 over
//! the transcript and ECDH(`eD`, `eL`). Frames are then `len` (u32, big-endian) ‖ ChaCha20-Poly1305
//! ciphertext ‖ tag, the length authenticated as associated data and the nonce a per-link counter:
//! a flipped bit, a replayed, reordered, dropped or spliced frame fails authentication, and the listener
//! closes the link at the first frame that does ([`LinkStats`] counts it).
//!
//! # Layout
//! - [`P2p`]: the member's links (listener, one dialer per peer), what the engine uses.
//! - [`dial`] → [`Outbound`], [`accept`] → [`InboundLink`]: one link's handshake and frames (public so
//!   tests can play honest or Byzantine members over real TCP).
//! - [`Sealer`], [`Opener`]: the per-frame AEAD with its nonce counter.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::ecdh::SharedSecret;
use bitcoin::secp256k1::{PublicKey, SecretKey, SECP256K1};
use chacha20_poly1305::{ChaCha20Poly1305, Key, Nonce};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex};

use crate::keychain::{Keychain, Sig};

/// The largest frame body (session number + payload) accepted from a peer, before encryption.
pub const MAX_FRAME: usize = 8 * 1024 * 1024;
/// The authentication tag after each frame's ciphertext.
pub const TAG: usize = 16;
/// An ephemeral key on the wire (compressed secp256k1 point).
pub const EPHEMERAL: usize = 33;
/// The dialer's hello: claimed index, ephemeral key, signature.
pub const HELLO: usize = 4 + EPHEMERAL + 64;
/// The listener's reply: its signature.
pub const REPLY: usize = 64;
const QUEUE: usize = 4096;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A dial that gets no answer is given up after this (SYNs at 0, 1 and 3 s), so a link to a peer that was
/// unreachable comes back within seconds of the network healing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(4);
/// A link whose sent data stays unacknowledged this long is dropped (TCP_USER_TIMEOUT) and redialled:
/// without it, after a partition TCP's exponential retransmission backoff kept a link silent for up to
/// ~10 s after healing (the namespace harness, a 2 | 2 split of 15 s).
const UNACKED_TIMEOUT: Duration = Duration::from_secs(5);

/// Low latency and a bound on unacknowledged data for a peer link.
fn tune(stream: &TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    socket2::SockRef::from(stream).set_tcp_user_timeout(Some(UNACKED_TIMEOUT))
}

/// A frame from a peer: (sender index, session, payload).
pub type Inbound = (usize, u64, Vec<u8>);

/// Why a link failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The connection.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The other side did not prove the member key it claims (or the one dialled).
    #[error("handshake refused: {0}")]
    Handshake(String),
    /// A frame failed authentication (tampered, replayed, reordered, from another link) or has a length
    /// outside the limits: the link is closed.
    #[error("frame refused: {0}")]
    Frame(String),
}

/// What a member's links saw (`/metrics`; the attack tests read them).
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Handshakes completed, both directions.
    pub handshakes_ok: AtomicU64,
    /// Handshakes refused: a dialer or listener that could not sign as the member it claims or was
    /// dialled as, or a malformed hello.
    pub handshakes_refused: AtomicU64,
    /// Frames received that authenticated.
    pub frames_ok: AtomicU64,
    /// Frames that failed authentication or had a bad length (each closed its link).
    pub frames_refused: AtomicU64,
}

impl LinkStats {
    fn count(&self, e: &LinkError) {
        let c = match e {
            LinkError::Handshake(_) => &self.handshakes_refused,
            LinkError::Frame(_) => &self.frames_refused,
            LinkError::Io(_) => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// (handshakes ok, handshakes refused, frames ok, frames refused).
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.handshakes_ok.load(Ordering::Relaxed),
            self.handshakes_refused.load(Ordering::Relaxed),
            self.frames_ok.load(Ordering::Relaxed),
            self.frames_refused.load(Ordering::Relaxed),
        )
    }
}

/// This member's links to the others.
#[derive(Debug)]
pub struct P2p {
    index: usize,
    outgoing: Vec<Option<mpsc::Sender<Arc<Vec<u8>>>>>,
    inbox: Mutex<mpsc::Receiver<Inbound>>,
    stats: Arc<LinkStats>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for P2p {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl P2p {
    /// Listens on `listen` and dials every other member in `peers` (index → address).
    pub async fn start(
        listen: SocketAddr,
        peers: Vec<SocketAddr>,
        keychain: Keychain,
        federation: [u8; 32],
    ) -> std::io::Result<Arc<P2p>> {
        let index = keychain.own_index();
        let listener = bind_retrying(listen).await?;
        let (in_tx, in_rx) = mpsc::channel(QUEUE * peers.len().max(1));
        let stats = Arc::new(LinkStats::default());
        let mut tasks = Vec::new();
        let kc = keychain.clone();
        let st = stats.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((stream, addr)) = listener.accept().await else {
                    continue;
                };
                let kc = kc.clone();
                let in_tx = in_tx.clone();
                let stats = st.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_inbound(stream, kc, federation, in_tx, &stats).await {
                        stats.count(&e);
                        match e {
                            LinkError::Io(e) => {
                                tracing::debug!(%addr, "p2p inbound link closed: {e}")
                            }
                            e => tracing::warn!(%addr, "p2p inbound link closed: {e}"),
                        }
                    }
                });
            }
        }));
        let mut outgoing = Vec::new();
        for (peer, addr) in peers.iter().enumerate() {
            if peer == index {
                outgoing.push(None);
                continue;
            }
            let (tx, rx) = mpsc::channel(QUEUE);
            outgoing.push(Some(tx));
            let kc = keychain.clone();
            let addr = *addr;
            tasks.push(tokio::spawn(dial_loop(
                addr,
                peer,
                kc,
                federation,
                rx,
                stats.clone(),
            )));
        }
        Ok(Arc::new(P2p {
            index,
            outgoing,
            inbox: Mutex::new(in_rx),
            stats,
            tasks,
        }))
    }

    /// This member's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The number of members.
    pub fn members(&self) -> usize {
        self.outgoing.len()
    }

    /// What the links saw.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// Queues a frame for `peer` (dropped if the queue is full or the peer is down).
    pub fn send(&self, peer: usize, session: u64, payload: &[u8]) {
        if let Some(Some(tx)) = self.outgoing.get(peer) {
            let _ = tx.try_send(Arc::new(frame_body(session, payload)));
        }
    }

    /// Queues a frame for every other member.
    pub fn broadcast(&self, session: u64, payload: &[u8]) {
        let frame = Arc::new(frame_body(session, payload));
        for tx in self.outgoing.iter().flatten() {
            let _ = tx.try_send(frame.clone());
        }
    }

    /// The next frame from any peer.
    pub async fn recv(&self) -> Option<Inbound> {
        self.inbox.lock().await.recv().await
    }
}

/// A frame's body: the session number, then the payload.
pub fn frame_body(session: u64, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 8);
    frame.extend(session.to_be_bytes());
    frame.extend(payload);
    frame
}

async fn serve_inbound(
    stream: TcpStream,
    keychain: Keychain,
    federation: [u8; 32],
    inbox: mpsc::Sender<Inbound>,
    stats: &LinkStats,
) -> Result<(), LinkError> {
    let mut link = accept(stream, &keychain, &federation).await?;
    stats.handshakes_ok.fetch_add(1, Ordering::Relaxed);
    let from = link.from();
    tracing::debug!(member = from, "p2p link from member up");
    loop {
        let body = link.next_frame().await.map_err(|e| match e {
            LinkError::Frame(why) => LinkError::Frame(format!("from member {from}: {why}")),
            e => e,
        })?;
        stats.frames_ok.fetch_add(1, Ordering::Relaxed);
        let (session, payload) =
            split_frame(body).expect("at least 8 bytes: checked by next_frame");
        if inbox.send((from, session, payload)).await.is_err() {
            return Ok(());
        }
    }
}

/// The dialer's hello: the member index it claims, its ephemeral key and its signature over the
/// transcript. Public only for the fuzz targets (fuzz/).
#[doc(hidden)]
pub fn parse_hello(hello: &[u8; HELLO]) -> (usize, [u8; EPHEMERAL], Sig) {
    let from = u32::from_be_bytes(hello[..4].try_into().expect("4 bytes")) as usize;
    let eph = hello[4..4 + EPHEMERAL].try_into().expect("33 bytes");
    (
        from,
        eph,
        Sig(hello[4 + EPHEMERAL..].try_into().expect("64 bytes")),
    )
}

/// A frame's body (after its length prefix): the session it belongs to, then the payload; `None` if it
/// is shorter than the session number. Public only for the fuzz targets (fuzz/).
#[doc(hidden)]
pub fn split_frame(mut frame: Vec<u8>) -> Option<(u64, Vec<u8>)> {
    let session = u64::from_be_bytes(frame.get(..8)?.try_into().expect("8 bytes"));
    frame.drain(..8);
    Some((session, frame))
}

/// The handshake transcript both members sign: federation, dialer and listener index, both ephemeral keys.
fn transcript(
    federation: &[u8; 32],
    from: usize,
    to: usize,
    listener_eph: &[u8; EPHEMERAL],
    dialer_eph: &[u8; EPHEMERAL],
) -> [u8; 32] {
    let mut e = sha256::Hash::engine();
    e.input(b"boltensor/p2p-handshake/v2");
    e.input(federation);
    e.input(&(from as u32).to_be_bytes());
    e.input(&(to as u32).to_be_bytes());
    e.input(listener_eph);
    e.input(dialer_eph);
    sha256::Hash::from_engine(e).to_byte_array()
}

/// What one side signs: the transcript under its role's tag (a listener's signature is no dialer's).
fn role_digest(role: &[u8], transcript: &[u8; 32]) -> [u8; 32] {
    let mut e = sha256::Hash::engine();
    e.input(b"boltensor/p2p-");
    e.input(role);
    e.input(b"/v2");
    e.input(transcript);
    sha256::Hash::from_engine(e).to_byte_array()
}

/// The dialer → listener frame key.
fn link_key(transcript: &[u8; 32], shared: &SharedSecret) -> [u8; 32] {
    let mut e = sha256::Hash::engine();
    e.input(b"boltensor/p2p-key/dialer-to-listener/v2");
    e.input(transcript);
    e.input(&shared.secret_bytes());
    sha256::Hash::from_engine(e).to_byte_array()
}

fn ephemeral() -> (SecretKey, [u8; EPHEMERAL]) {
    loop {
        let mut raw = [0u8; 32];
        fill_random(&mut raw);
        if let Ok(sk) = SecretKey::from_slice(&raw) {
            return (sk, PublicKey::from_secret_key(SECP256K1, &sk).serialize());
        }
    }
}

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::new(n)
}

/// The sending half of a link's AEAD: each frame under the next nonce.
#[derive(Debug)]
pub struct Sealer {
    key: [u8; 32],
    counter: u64,
}

impl Sealer {
    /// A frame key for tests and fuzzing (a real link derives its key in the handshake).
    #[doc(hidden)]
    pub fn with_key(key: [u8; 32]) -> Sealer {
        Sealer { key, counter: 0 }
    }

    /// Seals `body` as the next frame: what goes on the wire (length prefix, ciphertext, tag).
    pub fn seal(&mut self, body: &[u8]) -> Vec<u8> {
        let len = ((body.len() + TAG) as u32).to_be_bytes();
        let mut out = Vec::with_capacity(4 + body.len() + TAG);
        out.extend(len);
        out.extend(body);
        let tag = ChaCha20Poly1305::new(Key::new(self.key), nonce(self.counter))
            .encrypt(&mut out[4..], Some(&len));
        out.extend(tag);
        // A link never sends 2^64 frames; the counter wrapping would reuse a nonce, so stop instead.
        self.counter = self
            .counter
            .checked_add(1)
            .expect("fewer than 2^64 frames on one link");
        out
    }
}

/// The receiving half: opens frames in order; a frame that fails is the end of the link.
#[derive(Debug)]
pub struct Opener {
    key: [u8; 32],
    counter: u64,
}

impl Opener {
    /// A frame key for tests and fuzzing (a real link derives its key in the handshake).
    #[doc(hidden)]
    pub fn with_key(key: [u8; 32]) -> Opener {
        Opener { key, counter: 0 }
    }

    /// Opens the next frame: `len` its length prefix, `sealed` the `len` bytes after it (ciphertext and
    /// tag). Returns the body.
    pub fn open(&mut self, len: [u8; 4], mut sealed: Vec<u8>) -> Result<Vec<u8>, LinkError> {
        if sealed.len() < TAG + 8 || sealed.len() != u32::from_be_bytes(len) as usize {
            return Err(LinkError::Frame(format!(
                "a frame of {} bytes",
                sealed.len()
            )));
        }
        let tag: [u8; TAG] = sealed[sealed.len() - TAG..].try_into().expect("TAG bytes");
        sealed.truncate(sealed.len() - TAG);
        ChaCha20Poly1305::new(Key::new(self.key), nonce(self.counter))
            .decrypt(&mut sealed, tag, Some(&len))
            .map_err(|_| {
                LinkError::Frame(format!(
                    "frame {} failed authentication (tampered, replayed, reordered or forged)",
                    self.counter
                ))
            })?;
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| LinkError::Frame("2^64 frames on one link".into()))?;
        Ok(sealed)
    }
}

/// A link this member dialled and authenticated: it sends frames.
#[derive(Debug)]
pub struct Outbound {
    stream: TcpStream,
    sealer: Sealer,
}

impl Outbound {
    /// Sends one frame body (session number + payload).
    pub async fn send_frame(&mut self, body: &[u8]) -> std::io::Result<()> {
        let wire = self.sealer.seal(body);
        self.stream.write_all(&wire).await
    }

    /// The raw connection and the sealer, to put bytes of one's choice on the link (tests).
    pub fn parts(&mut self) -> (&mut TcpStream, &mut Sealer) {
        (&mut self.stream, &mut self.sealer)
    }
}

/// An authenticated link from a peer: it receives frames.
#[derive(Debug)]
pub struct InboundLink {
    stream: TcpStream,
    opener: Opener,
    from: usize,
}

impl InboundLink {
    /// The member the dialer proved to be.
    pub fn from(&self) -> usize {
        self.from
    }

    /// The next frame's body (session number + payload, at least 8 bytes); an error closes the link.
    pub async fn next_frame(&mut self) -> Result<Vec<u8>, LinkError> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).await?;
        let n = u32::from_be_bytes(len) as usize;
        if !(8 + TAG..=MAX_FRAME + TAG).contains(&n) {
            return Err(LinkError::Frame(format!("a frame of {n} bytes")));
        }
        let mut sealed = vec![0u8; n];
        self.stream.read_exact(&mut sealed).await?;
        self.opener.open(len, sealed)
    }
}

async fn timed<T>(
    what: &str,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, LinkError> {
    Ok(tokio::time::timeout(HANDSHAKE_TIMEOUT, f)
        .await
        .map_err(|_| std::io::Error::other(format!("handshake timed out ({what})")))??)
}

/// The listener's side of the handshake on `stream`: proves this member's key and checks the dialer's.
pub async fn accept(
    mut stream: TcpStream,
    keychain: &Keychain,
    federation: &[u8; 32],
) -> Result<InboundLink, LinkError> {
    tune(&stream)?;
    let n = aleph_bft::Keychain::node_count(keychain).0;
    let me = keychain.own_index();
    let (secret, eph) = ephemeral();
    stream.write_all(&eph).await?;
    let mut hello = [0u8; HELLO];
    timed("hello", stream.read_exact(&mut hello)).await?;
    let (from, dialer_eph, sig) = parse_hello(&hello);
    if from >= n || from == me {
        return Err(LinkError::Handshake(format!(
            "a dialer claims member index {from}"
        )));
    }
    let t = transcript(federation, from, me, &eph, &dialer_eph);
    if !keychain.verify_bytes(&role_digest(b"dialer", &t), &sig, from) {
        return Err(LinkError::Handshake(format!(
            "a dialer claiming to be member {from} cannot sign with its key"
        )));
    }
    let point = PublicKey::from_slice(&dialer_eph).map_err(|_| {
        LinkError::Handshake(format!("member {from} sent an invalid ephemeral key"))
    })?;
    let reply = keychain.sign_bytes(&role_digest(b"listener", &t));
    stream.write_all(&reply.0).await?;
    let key = link_key(&t, &SharedSecret::new(&point, &secret));
    Ok(InboundLink {
        stream,
        opener: Opener { key, counter: 0 },
        from,
    })
}

/// Dials member `peer` at `addr` as this keychain's member: proves this member's key, checks that the
/// listener proves `peer`'s, and returns the link to send frames on.
pub async fn dial(
    addr: SocketAddr,
    peer: usize,
    keychain: &Keychain,
    federation: &[u8; 32],
) -> Result<Outbound, LinkError> {
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    tune(&stream)?;
    let mut listener_eph = [0u8; EPHEMERAL];
    timed("listener key", stream.read_exact(&mut listener_eph)).await?;
    let point = PublicKey::from_slice(&listener_eph).map_err(|_| {
        LinkError::Handshake(format!(
            "member {peer} at {addr} sent an invalid ephemeral key"
        ))
    })?;
    let me = keychain.own_index();
    let (secret, eph) = ephemeral();
    let t = transcript(federation, me, peer, &listener_eph, &eph);
    let sig = keychain.sign_bytes(&role_digest(b"dialer", &t));
    let mut hello = Vec::with_capacity(HELLO);
    hello.extend((me as u32).to_be_bytes());
    hello.extend(eph);
    hello.extend(sig.0);
    stream.write_all(&hello).await?;
    let mut reply = [0u8; REPLY];
    timed("listener signature", stream.read_exact(&mut reply))
        .await
        .map_err(|e| match e {
            // The listener hangs up on a hello it refuses.
            LinkError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                LinkError::Handshake(format!(
                    "member {peer} at {addr} refused this member's hello"
                ))
            }
            e => e,
        })?;
    if !keychain.verify_bytes(&role_digest(b"listener", &t), &Sig(reply), peer) {
        return Err(LinkError::Handshake(format!(
            "the listener at {addr} cannot sign as member {peer}"
        )));
    }
    let key = link_key(&t, &SharedSecret::new(&point, &secret));
    Ok(Outbound {
        stream,
        sealer: Sealer { key, counter: 0 },
    })
}

async fn dial_loop(
    addr: SocketAddr,
    peer: usize,
    keychain: Keychain,
    federation: [u8; 32],
    mut rx: mpsc::Receiver<Arc<Vec<u8>>>,
    stats: Arc<LinkStats>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match dial(addr, peer, &keychain, &federation).await {
            Ok(mut link) => {
                stats.handshakes_ok.fetch_add(1, Ordering::Relaxed);
                backoff = Duration::from_millis(100);
                tracing::debug!(member = peer, "p2p link to member up");
                loop {
                    let Some(frame) = rx.recv().await else {
                        return;
                    };
                    if link.send_frame(&frame).await.is_err() {
                        tracing::debug!(member = peer, "p2p link to member down");
                        break;
                    }
                }
            }
            Err(e) => {
                stats.count(&e);
                match e {
                    LinkError::Io(e) => tracing::trace!(member = peer, %addr, "p2p dial: {e}"),
                    e => tracing::warn!(member = peer, %addr, "p2p dial: {e}"),
                }
            }
        }
        // While the link is down, drop what queued up: aleph-bft asks again for what it misses.
        while rx.try_recv().is_ok() {}
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Binds `addr`; a member restarting in the same process may find its old listener not yet closed, so an
/// address in use is retried for up to 5 s.
pub async fn bind_retrying(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let mut tries = 0;
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Fills `buf` from the OS's randomness.
pub fn fill_random(buf: &mut [u8]) {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .expect("the OS provides randomness");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Sealer, Opener) {
        let mut key = [0u8; 32];
        fill_random(&mut key);
        (Sealer { key, counter: 0 }, Opener { key, counter: 0 })
    }

    fn open_wire(o: &mut Opener, wire: &[u8]) -> Result<Vec<u8>, LinkError> {
        o.open(wire[..4].try_into().expect("4"), wire[4..].to_vec())
    }

    #[test]
    fn frames_open_in_order_and_nothing_else() {
        let (mut s, mut o) = pair();
        let a = s.seal(b"session1payload-a");
        let b = s.seal(b"session1payload-b");
        assert_eq!(open_wire(&mut o, &a).expect("first"), b"session1payload-a");
        // Replaying the first frame fails (its nonce was used); so does every later frame on that link.
        assert!(open_wire(&mut o, &a).is_err());
        let (mut s, mut o) = pair();
        let a = s.seal(b"session1payload-a");
        let b2 = s.seal(b"session1payload-b");
        assert!(open_wire(&mut o, &b2).is_err(), "reordered");
        let (_, mut o2) = pair();
        assert!(open_wire(&mut o2, &a).is_err(), "another link's key");
        let _ = b;
    }

    #[test]
    fn a_flipped_bit_anywhere_fails() {
        let (mut s, _) = pair();
        let key = s.key;
        let wire = s.seal(b"0123456789abcdef-payload");
        for bit in 0..wire.len() * 8 {
            let mut w = wire.clone();
            w[bit / 8] ^= 1 << (bit % 8);
            let mut o = Opener::with_key(key);
            assert!(open_wire(&mut o, &w).is_err(), "bit {bit}");
        }
        let mut o = Opener::with_key(key);
        assert!(open_wire(&mut o, &wire).is_ok());
    }
}
