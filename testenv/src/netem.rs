//! Hosts with a real network between them, on one machine: each host is a Linux network namespace with its
//! own IPv4 address, and every packet between hosts crosses a switch in this process that can delay it,
//! drop it and cut links (issue 19's harness).
//!
//! Why not `tc netem`: this machine's kernel has no `sch_netem` (nor `fq`, nftables or iptables), so the
//! delay and loss are applied in user space instead. Each namespace gets a TUN device (created here, then
//! moved into the namespace with `ip link set … netns`, which keeps our file descriptor working), and the
//! switch reads every IP packet a host sends, and after the link's delay writes it to the destination host's
//! TUN — or drops it (random loss, or a cut link). The processes under test see a real IP network: their TCP
//! retransmits what is lost and waits out the delay, exactly as between two machines.
//!
//! Host 0 is the *hub*: a TUN in this (the root) namespace at `10.a.b.1`, where the test's own daemons
//! (bitcoind behind a [`Forwarder`]) are reached. Hosts 1..=n are namespaces at `10.a.b.(i+1)`.
//! [`EmuNet::command`] starts a program inside a host. Requires root (`ip netns`, `/dev/net/tun`).
//!
//! Each packet's delay is `delay ± jitter` (uniform), never earlier than the previous packet on the same
//! link: jitter without reordering, so TCP sees varying latency, not a reordering storm.

use std::collections::{BTreeSet, BinaryHeap};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::TestEnvError;

/// A link's behaviour (every link of the network has the same one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkSpec {
    /// One-way delay.
    pub delay: Duration,
    /// Each packet's delay is `delay` ± up to this, uniformly.
    pub jitter: Duration,
    /// The probability that a packet is dropped, 0.0–1.0.
    pub loss: f64,
}

impl LinkSpec {
    /// No delay, no loss.
    pub const PERFECT: LinkSpec = LinkSpec {
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        loss: 0.0,
    };
}

/// What the switch did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SwitchStats {
    /// Packets delivered.
    pub forwarded: u64,
    /// Packets dropped by random loss.
    pub lost: u64,
    /// Packets dropped because their link was cut.
    pub cut: u64,
}

#[derive(Debug)]
struct Packet {
    due: Instant,
    seq: u64,
    to: usize,
    data: Vec<u8>,
}

impl PartialEq for Packet {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Packet {}
impl PartialOrd for Packet {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Packet {
    // BinaryHeap is a max-heap: the earliest due packet is the greatest.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

#[derive(Debug)]
struct Shared {
    spec: Mutex<LinkSpec>,
    /// Cut links, as (from, to) host pairs, both directions listed.
    cuts: Mutex<BTreeSet<(usize, usize)>>,
    queue: Mutex<BinaryHeap<Packet>>,
    wake: Condvar,
    /// The last due time per (from, to) link, so that jitter does not reorder.
    last_due: Mutex<Vec<Vec<Option<Instant>>>>,
    stop: AtomicBool,
    seq: AtomicU64,
    rng: Mutex<u64>,
    forwarded: AtomicU64,
    lost: AtomicU64,
    cut: AtomicU64,
}

impl Shared {
    fn random(&self) -> f64 {
        let mut s = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        // xorshift64*
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        (s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An emulated network of namespaces (see the module docs). Torn down on drop: the switch stops and the
/// namespaces are deleted (kill the processes in them first).
#[derive(Debug)]
pub struct EmuNet {
    name: String,
    subnet: [u8; 2],
    hosts: usize,
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// A TUN device named `name` (layer 3, no packet-information header), not configured: `ip` does that.
fn open_tun(name: &str) -> Result<tun::Device, TestEnvError> {
    let mut config = tun::Configuration::default();
    config.tun_name(name);
    config.platform_config(|p| {
        p.ensure_root_privileges(false);
    });
    tun::create(&config).map_err(|e| {
        TestEnvError::io(format!("creating TUN device {name} (root needed)"))(
            std::io::Error::other(e.to_string()),
        )
    })
}

fn ip(args: &[&str]) -> Result<(), TestEnvError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(TestEnvError::io("running ip (iproute2)"))?;
    if !out.status.success() {
        return Err(TestEnvError::io(format!("ip {}", args.join(" ")))(
            std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        ));
    }
    Ok(())
}

impl EmuNet {
    /// A hub and `hosts` namespaces, every link behaving as `spec`. The names and the subnet are derived
    /// from this process's id, so concurrent test processes do not collide.
    pub fn start(hosts: usize, spec: LinkSpec) -> Result<EmuNet, TestEnvError> {
        assert!((1..=200).contains(&hosts), "1 to 200 hosts");
        let pid = std::process::id();
        let name = format!("bte{}", pid % 100_000);
        let subnet = [200 + (pid % 50) as u8, ((pid / 50) % 250) as u8];
        let mut net = EmuNet {
            name,
            subnet,
            hosts,
            shared: Arc::new(Shared {
                spec: Mutex::new(spec),
                cuts: Mutex::new(BTreeSet::new()),
                queue: Mutex::new(BinaryHeap::new()),
                wake: Condvar::new(),
                last_due: Mutex::new(vec![vec![None; hosts + 1]; hosts + 1]),
                stop: AtomicBool::new(false),
                seq: AtomicU64::new(0),
                rng: Mutex::new(0x9e37_79b9_7f4a_7c15 ^ u64::from(pid)),
                forwarded: AtomicU64::new(0),
                lost: AtomicU64::new(0),
                cut: AtomicU64::new(0),
            }),
            threads: Vec::new(),
        };
        // Leftovers of an earlier process with the same pid suffix (killed before its drop ran).
        for i in 1..=hosts {
            let _ = ip(&["netns", "del", &net.netns(i).expect("a namespace host")]);
        }
        let mut tuns = Vec::new();
        for i in 0..=hosts {
            let dev = net.device(i);
            let tun = open_tun(&dev)?;
            let addr = format!("{}/24", net.ip(i));
            match net.netns(i) {
                None => {
                    ip(&["addr", "add", &addr, "dev", &dev])?;
                    ip(&["link", "set", &dev, "up"])?;
                }
                Some(ns) => {
                    ip(&["netns", "add", &ns])?;
                    ip(&["link", "set", &dev, "netns", &ns])?;
                    ip(&["-n", &ns, "addr", "add", &addr, "dev", &dev])?;
                    ip(&["-n", &ns, "link", "set", &dev, "up"])?;
                    ip(&["-n", &ns, "link", "set", "lo", "up"])?;
                }
            }
            tuns.push(tun);
        }
        let tuns: Vec<Arc<tun::Device>> = tuns.into_iter().map(Arc::new).collect();
        let writers = tuns.clone();
        for (from, tun) in tuns.into_iter().enumerate() {
            let shared = net.shared.clone();
            let subnet = net.subnet;
            net.threads.push(std::thread::spawn(move || {
                read_loop(from, tun, subnet, hosts, &shared)
            }));
        }
        let shared = net.shared.clone();
        net.threads
            .push(std::thread::spawn(move || deliver_loop(writers, &shared)));
        Ok(net)
    }

    fn device(&self, host: usize) -> String {
        format!("{}h{host}", self.name)
    }

    /// Host `host`'s address (0: the hub, in this namespace).
    pub fn ip(&self, host: usize) -> Ipv4Addr {
        assert!(host <= self.hosts, "no host {host}");
        Ipv4Addr::new(10, self.subnet[0], self.subnet[1], host as u8 + 1)
    }

    /// Host `host`'s namespace (`None` for the hub).
    pub fn netns(&self, host: usize) -> Option<String> {
        (host > 0).then(|| format!("{}-{host}", self.name))
    }

    /// `program` to be run inside host `host` (`ip netns exec`, which execs the program: the child's pid
    /// is the program's).
    pub fn command(&self, host: usize, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match self.netns(host) {
            None => Command::new(program),
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns]).arg(program);
                c
            }
        }
    }

    /// Every link's behaviour from now on.
    pub fn set_links(&self, spec: LinkSpec) {
        *self.shared.spec.lock().unwrap_or_else(|p| p.into_inner()) = spec;
    }

    /// Cuts (both directions of) every link between a host of `a` and a host of `b`.
    pub fn cut(&self, a: &[usize], b: &[usize]) {
        let mut cuts = self.shared.cuts.lock().unwrap_or_else(|p| p.into_inner());
        for &x in a {
            for &y in b {
                cuts.insert((x, y));
                cuts.insert((y, x));
            }
        }
    }

    /// Cuts host `host` off from every other host, the hub included.
    pub fn isolate(&self, host: usize) {
        let others: Vec<usize> = (0..=self.hosts).filter(|&h| h != host).collect();
        self.cut(&[host], &others);
    }

    /// Restores every cut link.
    pub fn heal(&self) {
        self.shared
            .cuts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub fn stats(&self) -> SwitchStats {
        SwitchStats {
            forwarded: self.shared.forwarded.load(Ordering::Relaxed),
            lost: self.shared.lost.load(Ordering::Relaxed),
            cut: self.shared.cut.load(Ordering::Relaxed),
        }
    }
}

impl Drop for EmuNet {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for i in 1..=self.hosts {
            if let Some(ns) = self.netns(i) {
                let _ = ip(&["netns", "del", &ns]);
            }
        }
    }
}

/// Reads host `from`'s packets and queues them for their destination host (or drops them).
fn read_loop(from: usize, tun: Arc<tun::Device>, subnet: [u8; 2], hosts: usize, shared: &Shared) {
    let mut buf = vec![0u8; 65_536];
    while !shared.stop.load(Ordering::SeqCst) {
        let n = match tun.recv_timeout(&mut buf, Duration::from_millis(100)) {
            Ok(n) => n,
            Err(_) => continue,
        };
        let pkt = &buf[..n];
        // IPv4 only (the namespaces have IPv4 addresses; IPv6 router solicitations and such are dropped).
        if n < 20 || pkt[0] >> 4 != 4 || pkt[16] != 10 || pkt[17..19] != subnet {
            continue;
        }
        let to = match pkt[19] {
            0 | 255 => continue,
            last => usize::from(last) - 1,
        };
        if to > hosts || to == from {
            continue;
        }
        if shared
            .cuts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(from, to))
        {
            shared.cut.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let spec = *shared.spec.lock().unwrap_or_else(|p| p.into_inner());
        if spec.loss > 0.0 && shared.random() < spec.loss {
            shared.lost.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let jitter = spec.jitter.as_secs_f64() * (2.0 * shared.random() - 1.0);
        let delay = Duration::from_secs_f64((spec.delay.as_secs_f64() + jitter).max(0.0));
        let mut due = Instant::now() + delay;
        {
            let mut last = shared.last_due.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(prev) = last[from][to] {
                due = due.max(prev);
            }
            last[from][to] = Some(due);
        }
        let seq = shared.seq.fetch_add(1, Ordering::Relaxed);
        shared
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Packet {
                due,
                seq,
                to,
                data: pkt.to_vec(),
            });
        shared.wake.notify_one();
    }
}

/// Writes each queued packet to its destination's TUN when it is due.
fn deliver_loop(tuns: Vec<Arc<tun::Device>>, shared: &Shared) {
    let mut queue = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        match queue.peek() {
            Some(p) if p.due <= now => {
                let p = queue.pop().expect("peeked");
                drop(queue);
                // A full or vanished TUN loses the packet, like a full interface queue.
                if tuns[p.to].send(&p.data).is_ok() {
                    shared.forwarded.fetch_add(1, Ordering::Relaxed);
                }
                queue = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            }
            Some(p) => {
                let wait = p.due - now;
                queue = shared
                    .wake
                    .wait_timeout(queue, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            None => {
                queue = shared
                    .wake
                    .wait_timeout(queue, Duration::from_millis(100))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
    }
}

/// A TCP forwarder: connections to `listen` (e.g. the hub's address) are relayed to `target` (e.g.
/// bitcoind's RPC on 127.0.0.1), so that hosts in namespaces reach a daemon that listens on loopback.
/// Stops when dropped.
#[derive(Debug)]
pub struct Forwarder {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    pub async fn start(listen: SocketAddr, target: SocketAddr) -> Result<Forwarder, TestEnvError> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(TestEnvError::io(format!(
                "binding the forwarder on {listen}"
            )))?;
        let addr = listener
            .local_addr()
            .map_err(TestEnvError::io("the forwarder's address"))?;
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Ok(Forwarder { addr, task })
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}
