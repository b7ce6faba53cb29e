//! Peer-to-peer links between coordinators: one TCP connection per direction, authenticated by a
//! challenge the listener picks and the dialer signs with its member key (BIP-340), then
//! length-prefixed frames. Messages to a peer that is down are dropped (aleph-bft re-requests what it
//! misses); a bounded queue per peer keeps a slow peer from eating memory.
//!
//! The links authenticate who sent a frame but do not encrypt: run coordinators on a private network or
//! behind a tunnel (WireGuard, stunnel) when the links cross the internet (docs/deploy.md).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex};

use crate::keychain::{Keychain, Sig};

/// The largest frame accepted from a peer.
pub const MAX_FRAME: usize = 8 * 1024 * 1024;
const QUEUE: usize = 4096;

/// A frame from a peer: (sender index, session, payload).
pub type Inbound = (usize, u64, Vec<u8>);

/// This member's links to the others.
#[derive(Debug)]
pub struct P2p {
    index: usize,
    outgoing: Vec<Option<mpsc::Sender<Arc<Vec<u8>>>>>,
    inbox: Mutex<mpsc::Receiver<Inbound>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for P2p {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn handshake_digest(
    federation: &[u8; 32],
    from: usize,
    to: usize,
    challenge: &[u8; 32],
) -> [u8; 32] {
    let mut e = sha256::Hash::engine();
    e.input(b"boltensor/p2p-hello/v1");
    e.input(federation);
    e.input(&(from as u32).to_be_bytes());
    e.input(&(to as u32).to_be_bytes());
    e.input(challenge);
    sha256::Hash::from_engine(e).to_byte_array()
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
        let mut tasks = Vec::new();
        let kc = keychain.clone();
        let n = peers.len();
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let kc = kc.clone();
                let in_tx = in_tx.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_inbound(stream, kc, federation, n, in_tx).await {
                        tracing::debug!("p2p inbound link closed: {e}");
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
            tasks.push(tokio::spawn(dial_loop(addr, peer, kc, federation, rx)));
        }
        Ok(Arc::new(P2p {
            index,
            outgoing,
            inbox: Mutex::new(in_rx),
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

    /// Queues a frame for `peer` (dropped if the queue is full or the peer is down).
    pub fn send(&self, peer: usize, session: u64, payload: &[u8]) {
        if let Some(Some(tx)) = self.outgoing.get(peer) {
            let mut frame = Vec::with_capacity(payload.len() + 8);
            frame.extend(session.to_be_bytes());
            frame.extend(payload);
            let _ = tx.try_send(Arc::new(frame));
        }
    }

    /// Queues a frame for every other member.
    pub fn broadcast(&self, session: u64, payload: &[u8]) {
        let mut frame = Vec::with_capacity(payload.len() + 8);
        frame.extend(session.to_be_bytes());
        frame.extend(payload);
        let frame = Arc::new(frame);
        for tx in self.outgoing.iter().flatten() {
            let _ = tx.try_send(frame.clone());
        }
    }

    /// The next frame from any peer.
    pub async fn recv(&self) -> Option<Inbound> {
        self.inbox.lock().await.recv().await
    }
}

async fn serve_inbound(
    mut stream: TcpStream,
    keychain: Keychain,
    federation: [u8; 32],
    n: usize,
    inbox: mpsc::Sender<Inbound>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut challenge = [0u8; 32];
    fill_random(&mut challenge);
    stream.write_all(&challenge).await?;
    let mut hello = [0u8; 4 + 64];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut hello))
        .await
        .map_err(|_| std::io::Error::other("handshake timed out"))??;
    let (from, sig) = parse_hello(&hello);
    let digest = handshake_digest(&federation, from, keychain.own_index(), &challenge);
    if from >= n || from == keychain.own_index() || !keychain.verify_bytes(&digest, &sig, from) {
        return Err(std::io::Error::other(format!(
            "peer claiming to be member {from} failed the handshake"
        )));
    }
    loop {
        let len = stream.read_u32().await? as usize;
        if !(8..=MAX_FRAME).contains(&len) {
            return Err(std::io::Error::other(format!(
                "member {from} sent a frame of {len} bytes"
            )));
        }
        let mut buf = vec![0u8; len];
        stream.read_exact(&mut buf).await?;
        let (session, payload) = split_frame(buf).expect("at least 8 bytes: checked above");
        if inbox.send((from, session, payload)).await.is_err() {
            return Ok(());
        }
    }
}

/// The dialer's hello: the member index it claims and its signature over the handshake digest.
/// Public only for the fuzz targets (fuzz/).
#[doc(hidden)]
pub fn parse_hello(hello: &[u8; 4 + 64]) -> (usize, Sig) {
    let from = u32::from_be_bytes(hello[..4].try_into().expect("4 bytes")) as usize;
    (from, Sig(hello[4..].try_into().expect("64 bytes")))
}

/// A frame's body (after its length prefix): the session it belongs to, then the payload; `None` if it
/// is shorter than the session number. Public only for the fuzz targets (fuzz/).
#[doc(hidden)]
pub fn split_frame(mut frame: Vec<u8>) -> Option<(u64, Vec<u8>)> {
    let session = u64::from_be_bytes(frame.get(..8)?.try_into().expect("8 bytes"));
    frame.drain(..8);
    Some((session, frame))
}

async fn dial_loop(
    addr: SocketAddr,
    peer: usize,
    keychain: Keychain,
    federation: [u8; 32],
    mut rx: mpsc::Receiver<Arc<Vec<u8>>>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match connect(addr, peer, &keychain, &federation).await {
            Ok(mut stream) => {
                backoff = Duration::from_millis(100);
                tracing::debug!("p2p link to member {peer} up");
                loop {
                    let Some(frame) = rx.recv().await else {
                        return;
                    };
                    let ok = stream.write_u32(frame.len() as u32).await.is_ok()
                        && stream.write_all(&frame).await.is_ok();
                    if !ok {
                        tracing::debug!("p2p link to member {peer} down");
                        break;
                    }
                }
            }
            Err(e) => tracing::trace!("p2p dial member {peer} at {addr}: {e}"),
        }
        // While the link is down, drop what queued up: aleph-bft asks again for what it misses.
        while rx.try_recv().is_ok() {}
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn connect(
    addr: SocketAddr,
    peer: usize,
    keychain: &Keychain,
    federation: &[u8; 32],
) -> std::io::Result<TcpStream> {
    let mut stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    stream.set_nodelay(true)?;
    let mut challenge = [0u8; 32];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut challenge))
        .await
        .map_err(|_| std::io::Error::other("handshake timed out"))??;
    let me = keychain.own_index();
    let sig = keychain.sign_bytes(&handshake_digest(federation, me, peer, &challenge));
    let mut hello = Vec::with_capacity(68);
    hello.extend((me as u32).to_be_bytes());
    hello.extend(sig.0);
    stream.write_all(&hello).await?;
    Ok(stream)
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
