//! A transparent TCP relay (cargo feature `forward`, on by default): every
//! connection that enters the TUN device is accepted by an any-IP listener
//! ([`StackConfig::any_ip`](crate::stack::StackConfig::any_ip)) and carried
//! to its original destination through a kernel socket, directly or through
//! a SOCKS5 proxy (RFC 1928, RFC 1929). This is what `utcp forward` runs;
//! docs/forward.md explains the topology that keeps the kernel-side sockets
//! from being routed back into the TUN device.
//!
//! Per connection: the kernel-side connect happens after the TUN-side
//! handshake (the client sees its connect succeed, then a RST if the
//! destination cannot be reached); bytes are pumped both ways through one
//! bounded buffer per direction, so a slow side stalls its sender through
//! the TCP windows instead of growing memory; a FIN is passed on as
//! `shutdown(Write)`, a RST as a RST (`SO_LINGER` 0 on the kernel side,
//! [`TcpStream::abort`](crate::tokio::TcpStream::abort) on ours). One info
//! log line per relay says how it ended and how many bytes went each way.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use utcp::forward::{ForwardConfig, Forwarder};
//! use utcp::socket::NetStack;
//! use utcp::stack::StackConfig;
//!
//! let mut cfg = StackConfig::new("10.77.0.2".parse().unwrap());
//! cfg.any_ip = true;
//! let net = NetStack::tun("utcp0", cfg)?;
//! let listener = utcp::tokio::TcpListener::bind_any(&net).await?;
//! let forwarder = Forwarder::new(ForwardConfig::default());
//! forwarder.serve(listener).await
//! # }
//! ```

mod outbound;
mod relay;
pub mod socks5;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use outbound::{set_reset_on_close, Outbound};
pub use relay::Outcome;
pub use socks5::{Credentials, Socks5};

use ::tokio::sync::Notify;

use crate::tokio::{TcpListener, TcpStream};

/// The relay's settings.
#[derive(Clone, Debug)]
pub struct ForwardConfig {
    /// How outgoing connections are made (SOCKS5, `SO_MARK`, timeout).
    pub outbound: Outbound,
    /// Bytes of buffer per direction per relay (so a relay holds
    /// `2 * buffer` of its own, besides the two sockets' buffers).
    pub buffer: usize,
    /// Relays at once; a connection beyond it is reset at once.
    pub max_relays: u64,
}

impl Default for ForwardConfig {
    /// Direct connections, a 10 s connect timeout, 32 KiB per direction,
    /// at most 10,000 relays.
    fn default() -> Self {
        ForwardConfig {
            outbound: Outbound {
                connect_timeout: Duration::from_secs(10),
                ..Outbound::default()
            },
            buffer: 32 * 1024,
            max_relays: 10_000,
        }
    }
}

/// Counters of a [`Forwarder`] (a snapshot: [`Forwarder::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForwardStats {
    /// Connections accepted from the TUN device.
    pub accepted: u64,
    /// Relays open now.
    pub active: u64,
    /// Relays that ended with both FINs passed on.
    pub closed: u64,
    /// Relays the client reset (the reset was passed on).
    pub reset_by_client: u64,
    /// Relays the destination reset (the reset was passed on).
    pub reset_by_server: u64,
    /// Outgoing connections that failed (the client was reset).
    pub connect_failed: u64,
    /// Connections reset because they looped back into the TUN device.
    pub loops: u64,
    /// Connections reset for being over [`ForwardConfig::max_relays`].
    pub refused: u64,
    /// Bytes relayed from clients to destinations.
    pub bytes_up: u64,
    /// Bytes relayed from destinations to clients.
    pub bytes_down: u64,
}

impl fmt::Display for ForwardStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} accepted, {} active, {} closed, {} reset by client, {} reset by server, \
             {} connect failed, {} loops, {} refused, {} bytes up, {} bytes down",
            self.accepted,
            self.active,
            self.closed,
            self.reset_by_client,
            self.reset_by_server,
            self.connect_failed,
            self.loops,
            self.refused,
            self.bytes_up,
            self.bytes_down
        )
    }
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    active: AtomicU64,
    closed: AtomicU64,
    reset_by_client: AtomicU64,
    reset_by_server: AtomicU64,
    connect_failed: AtomicU64,
    loops: AtomicU64,
    refused: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

/// What reveals a loop: a connection from the TUN device whose peer is
/// the local address of one of our own outgoing sockets was routed back
/// into the device. Outgoing sockets are bound before they connect, so
/// their port is known (`pending`) while the connect runs; a client with a
/// pending port waits for that connect to finish, then compares the whole
/// address. So the check holds whichever comes first, and a loop ends at
/// its first turn.
#[derive(Default)]
struct Loops {
    /// Ports of outgoing sockets still connecting (with a count: a port may
    /// be bound on several local addresses).
    pending: HashMap<u16, usize>,
    /// Local addresses of connected outgoing sockets.
    outgoing: HashSet<SocketAddr>,
}

/// The relay: accepts from an any-IP listener, one tokio task per
/// connection. Cheap to clone (the counters are shared).
#[derive(Clone)]
pub struct Forwarder {
    cfg: Arc<ForwardConfig>,
    counters: Arc<Counters>,
    loops: Arc<Mutex<Loops>>,
    /// Signalled when a pending port resolves.
    resolved: Arc<Notify>,
}

impl fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forwarder")
            .field("cfg", &self.cfg)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Forwarder {
    /// A relay with these settings.
    pub fn new(cfg: ForwardConfig) -> Forwarder {
        Forwarder {
            cfg: Arc::new(cfg),
            counters: Arc::default(),
            loops: Arc::default(),
            resolved: Arc::default(),
        }
    }

    /// Accepts connections for ever (until accepting fails), relaying each
    /// in a task of its own. Must run inside a tokio runtime.
    pub async fn serve(&self, listener: TcpListener) -> io::Result<()> {
        loop {
            let (stream, _) = listener.accept().await?;
            let me = self.clone();
            ::tokio::spawn(async move { me.relay(stream).await });
        }
    }

    /// Relays one accepted connection to its original destination (its
    /// `local_addr()`), and returns how it ended.
    pub async fn relay(&self, stream: TcpStream) -> Outcome {
        let c = &self.counters;
        c.accepted.fetch_add(1, Ordering::Relaxed);
        let (Ok(client), Ok(SocketAddr::V4(dst))) = (stream.peer_addr(), stream.local_addr())
        else {
            // Reset before we could look at it: nothing to relay.
            let _ = stream.abort();
            return self.end(Outcome::ResetByClient);
        };
        let active = c.active.fetch_add(1, Ordering::Relaxed) + 1;
        let started = Instant::now();
        let (up, down) = (AtomicU64::new(0), AtomicU64::new(0));
        let outcome = if active > self.cfg.max_relays {
            let _ = stream.abort();
            Outcome::Refused
        } else {
            let bytes = relay::Counters {
                up: &up,
                down: &down,
            };
            self.relay_to(&stream, client, dst, bytes).await
        };
        c.active.fetch_sub(1, Ordering::Relaxed);
        let (up, down) = (up.into_inner(), down.into_inner());
        c.bytes_up.fetch_add(up, Ordering::Relaxed);
        c.bytes_down.fetch_add(down, Ordering::Relaxed);
        log::info!(
            "relay {client} -> {dst}: {outcome}; {up} bytes up, {down} bytes down, {:?}",
            started.elapsed()
        );
        self.end(outcome)
    }

    /// Connects out (refusing loops) and runs the relay.
    async fn relay_to(
        &self,
        stream: &TcpStream,
        client: SocketAddr,
        dst: SocketAddrV4,
        bytes: relay::Counters<'_>,
    ) -> Outcome {
        if self.is_own(client).await {
            log::warn!(
                "relay {client} -> {dst}: our own outgoing connection came back into the TUN \
                 device; route outgoing connections elsewhere (docs/forward.md)"
            );
            let _ = stream.abort();
            return Outcome::Loop;
        }
        let out = match self.connect(dst).await {
            Ok(out) => out,
            Err(e) => {
                log::info!("relay {client} -> {dst}: connect: {e}");
                let _ = stream.abort();
                return Outcome::ConnectFailed;
            }
        };
        let local = out.local_addr().ok();
        let outcome = relay::run(stream, out, self.cfg.buffer, bytes).await;
        if let Some(local) = local {
            self.lock_loops().outgoing.remove(&local);
        }
        outcome
    }

    /// Connects out, the socket's port pending in the loop check meanwhile.
    async fn connect(&self, dst: SocketAddrV4) -> io::Result<::tokio::net::TcpStream> {
        let ob = &self.cfg.outbound;
        let sock = ob.socket(ob.target(dst))?;
        let port = sock.local_addr()?.port();
        *self.lock_loops().pending.entry(port).or_default() += 1;
        let out = ob.connect(sock, dst).await;
        {
            let mut l = self.lock_loops();
            if let Some(n) = l.pending.get_mut(&port) {
                *n -= 1;
                if *n == 0 {
                    l.pending.remove(&port);
                }
            }
            if let Ok(local) = out.as_ref().map(|s| s.local_addr()) {
                l.outgoing.extend(local);
            }
        }
        self.resolved.notify_waiters();
        out
    }

    /// Whether `client` is one of our own outgoing sockets; waits (at most
    /// the connect timeout) while an outgoing socket with its port connects.
    async fn is_own(&self, client: SocketAddr) -> bool {
        let deadline = Instant::now() + self.cfg.outbound.connect_timeout;
        loop {
            let resolved = self.resolved.notified();
            {
                let l = self.lock_loops();
                if l.outgoing.contains(&client) {
                    return true;
                }
                if !l.pending.contains_key(&client.port()) {
                    return false;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if ::tokio::time::timeout(left, resolved).await.is_err() {
                return false;
            }
        }
    }

    fn lock_loops(&self) -> std::sync::MutexGuard<'_, Loops> {
        // The sets stay consistent even if a holder panicked.
        self.loops.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts how a relay ended.
    fn end(&self, outcome: Outcome) -> Outcome {
        let c = &self.counters;
        let counter = match outcome {
            Outcome::Closed => &c.closed,
            Outcome::ResetByClient => &c.reset_by_client,
            Outcome::ResetByServer => &c.reset_by_server,
            Outcome::ConnectFailed => &c.connect_failed,
            Outcome::Loop => &c.loops,
            Outcome::Refused => &c.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        outcome
    }

    /// The counters now.
    pub fn stats(&self) -> ForwardStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ForwardStats {
            accepted: get(&c.accepted),
            active: get(&c.active),
            closed: get(&c.closed),
            reset_by_client: get(&c.reset_by_client),
            reset_by_server: get(&c.reset_by_server),
            connect_failed: get(&c.connect_failed),
            loops: get(&c.loops),
            refused: get(&c.refused),
            bytes_up: get(&c.bytes_up),
            bytes_down: get(&c.bytes_down),
        }
    }
}
