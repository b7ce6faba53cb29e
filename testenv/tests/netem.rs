//! The emulated network (testenv::netem) does what it says on real sockets: a TCP connection between the
//! hub and a namespace takes one round trip of the configured delay, a cut link carries nothing, and a
//! healed one carries traffic again. Needs root (ip netns, /dev/net/tun).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use boltensor_testenv::netem::{EmuNet, LinkSpec};
use boltensor_testenv::wait_for;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A TCP server inside host 1 that answers every connection with "hi" (python3's socketserver).
fn server(net: &EmuNet, port: u16) -> Result<std::process::Child> {
    let code = format!(
        "import socketserver\n\
         class H(socketserver.BaseRequestHandler):\n    def handle(self): self.request.sendall(b'hi')\n\
         socketserver.TCPServer.allow_reuse_address = True\n\
         socketserver.ThreadingTCPServer(('{}', {port}), H).serve_forever()\n",
        net.ip(1)
    );
    Ok(net.command(1, "python3").args(["-c", &code]).spawn()?)
}

async fn hello(addr: SocketAddr) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let t0 = Instant::now();
    let mut s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    let rtt = t0.elapsed();
    let mut buf = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf))
        .await
        .ok()?
        .ok()?;
    (&buf == b"hi").then_some(rtt)
}

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn delay_cut_and_heal_on_real_sockets() -> Result {
    let net = EmuNet::start(
        1,
        LinkSpec {
            delay: Duration::from_millis(40),
            jitter: Duration::ZERO,
            loss: 0.0,
        },
    )?;
    let _srv = Kill(server(&net, 7000)?);
    let addr = SocketAddr::from((net.ip(1), 7000));
    wait_for("the server in host 1", Duration::from_secs(20), || async {
        Ok(hello(addr).await)
    })
    .await?;
    // A connect is one round trip: SYN there (40 ms), SYN-ACK back (40 ms).
    let mut rtts = Vec::new();
    for _ in 0..5 {
        rtts.push(hello(addr).await.ok_or("a hello")?);
    }
    rtts.sort();
    let median = rtts[2];
    assert!(
        median >= Duration::from_millis(80) && median < Duration::from_millis(300),
        "connect took {median:?} over a 40 ms link each way"
    );

    net.isolate(1);
    assert!(
        hello(addr).await.is_none(),
        "a cut link carried a connection"
    );
    assert!(net.stats().cut > 0);
    net.heal();
    net.set_links(LinkSpec::PERFECT);
    wait_for("the healed link", Duration::from_secs(20), || async {
        Ok(hello(addr).await)
    })
    .await?;
    let fast = hello(addr).await.ok_or("a hello")?;
    assert!(fast < median, "without delay {fast:?}, with {median:?}");
    Ok(())
}
