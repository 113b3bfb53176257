//! The blocking socket API: [`NetStack`], [`TcpListener`], [`TcpStream`].
//!
//! Shaped like `std::net`. One driver thread owns the device: it sleeps in
//! poll(2) on the device fd, an eventfd and the core's next timer deadline
//! (never on a fixed tick), drains every readable packet, runs expired timers,
//! transmits, and wakes application threads through a condition variable.
//! Application threads lock the core, act on their connection and transmit
//! what that produced themselves, so a `write` reaches the wire without a
//! thread hop; they poke the eventfd only when they moved the next timer
//! deadline earlier than the driver's.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use log::{debug, error};

use crate::device::impair::{Direction, ImpairStats, Impairer, Impairment};
use crate::device::tun::TunDevice;
use crate::device::Device;
use crate::error::{Error, TcpError};
use crate::stack::{ConnId, Stack, StackConfig, StackStats};
use crate::state::State;
use crate::tcb::{ConnInfo, ConnStats};
use crate::time::Instant;

/// How long dropping the last handle of a [`NetStack`] waits for connections
/// to finish closing (our FINs acknowledged) before stopping the driver.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(3);

/// Packets the driver reads before it stops to transmit (bounds latency).
const RX_BATCH: usize = 256;

struct Core {
    stack: Stack,
    out: Vec<u8>,
    /// When the driver plans to wake next (None: only on I/O).
    driver_deadline: Option<Instant>,
    /// The device failed; every call reports this.
    dead: Option<String>,
    /// Deliberate packet loss/duplication/delay, if configured.
    impair: Option<Impairer>,
}

impl Core {
    /// The earliest moment the driver must act: a TCP timer or a held packet.
    fn next_deadline(&self) -> Option<Instant> {
        let held = self.impair.as_ref().and_then(Impairer::poll_timeout);
        [self.stack.poll_timeout(), held]
            .into_iter()
            .flatten()
            .min()
    }
}

struct Shared {
    core: Mutex<Core>,
    cond: Condvar,
    wake: OwnedFd,
    device: Box<dyn Device>,
    epoch: std::time::Instant,
    stop: AtomicBool,
}

impl Shared {
    fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock poisons it; the state is still usable.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake_driver(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a valid u64 to our eventfd.
        unsafe {
            libc::write(
                self.wake.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            );
        }
    }

    /// Transmits what every connection has ready and wakes the driver if
    /// its deadline moved earlier.
    fn flush(&self, core: &mut Core) {
        self.flush_some(core, None);
    }

    /// Like [`flush`](Self::flush) after an application call on connection
    /// `id`: only that connection's output (and queued resets) is sent.
    fn flush_conn(&self, core: &mut Core, id: ConnId) {
        self.flush_some(core, Some(id));
    }

    fn flush_some(&self, core: &mut Core, id: Option<ConnId>) {
        let now = self.now();
        let Core {
            stack, out, impair, ..
        } = core;
        let emit = |pkt: &[u8]| match impair {
            Some(imp) => imp.handle_packet(now, Direction::Out, pkt, |p| self.send(p)),
            None => self.send(pkt),
        };
        match id {
            Some(id) => stack.poll_transmit_conn(now, id, out, emit),
            None => stack.poll_transmit(now, out, emit),
        }
        let next = core.next_deadline();
        if let Some(next) = next {
            if core.driver_deadline.is_none_or(|d| next < d) {
                core.driver_deadline = Some(next);
                self.wake_driver();
            }
        }
    }

    fn send(&self, pkt: &[u8]) {
        if let Err(e) = self.device.send(pkt) {
            debug!("device send failed: {e}");
        }
    }

    /// Waits on the condition variable, until `deadline` if given.
    /// Returns the guard and whether the deadline passed.
    fn wait<'a>(
        &self,
        guard: MutexGuard<'a, Core>,
        deadline: Option<std::time::Instant>,
    ) -> (MutexGuard<'a, Core>, bool) {
        match deadline {
            None => (
                self.cond.wait(guard).unwrap_or_else(|e| e.into_inner()),
                false,
            ),
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return (guard, true);
                }
                let (g, _) = self
                    .cond
                    .wait_timeout(guard, left)
                    .unwrap_or_else(|e| e.into_inner());
                (g, std::time::Instant::now() >= d)
            }
        }
    }
}

fn dead_error(msg: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        format!("network device failed: {msg}"),
    )
}

/// Options of the runtime around the core.
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Deliberate impairment of the device's packets, in and out.
    pub impairment: Option<Impairment>,
    /// How long dropping the last handle waits for closing connections.
    pub linger: Duration,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            impairment: None,
            linger: DEFAULT_LINGER,
        }
    }
}

/// Owns the driver thread; dropped when the last user handle goes.
struct Runtime {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    linger: Duration,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Give closing connections a moment to get their FINs acknowledged.
        let deadline = std::time::Instant::now() + self.linger;
        let mut core = self.shared.lock();
        while core.dead.is_none() && busy(&core.stack) {
            let (g, timed_out) = self.shared.wait(core, Some(deadline));
            core = g;
            if timed_out {
                debug!("linger time over with connections still closing");
                break;
            }
        }
        drop(core);
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake_driver();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            if h.join().is_err() {
                error!("the driver thread panicked");
            }
        }
    }
}

/// True while some connection still has a handshake or a close in progress.
fn busy(stack: &Stack) -> bool {
    stack.connection_states().any(|s| {
        !matches!(
            s,
            State::Closed | State::TimeWait | State::Listen | State::FinWait2
        )
    })
}

/// A running utcp stack: a device, the TCP core and its driver thread.
///
/// Cheap to clone (all clones share one stack). The driver stops when the
/// last `NetStack`, [`TcpListener`] and [`TcpStream`] of it is dropped, after
/// waiting up to [`DEFAULT_LINGER`] for connections that are still closing.
#[derive(Clone)]
pub struct NetStack {
    rt: Arc<Runtime>,
}

impl std::fmt::Debug for NetStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetStack")
            .field("addr", &self.rt.shared.lock().stack.addr())
            .finish()
    }
}

impl NetStack {
    /// Attaches to the TUN device `name` and answers for `cfg.addr` on it.
    /// The MSS follows the device's MTU.
    pub fn tun(name: &str, mut cfg: StackConfig) -> io::Result<NetStack> {
        let dev = TunDevice::open(name)?;
        cfg.mtu = dev.mtu();
        NetStack::new(dev, cfg)
    }

    /// Like [`tun`](Self::tun), with runtime options (impairment, linger).
    pub fn tun_with_options(
        name: &str,
        mut cfg: StackConfig,
        opts: RuntimeOptions,
    ) -> io::Result<NetStack> {
        let dev = TunDevice::open(name)?;
        cfg.mtu = dev.mtu();
        NetStack::with_options(dev, cfg, opts)
    }

    /// Runs a stack over any [`Device`].
    pub fn new(device: impl Device, cfg: StackConfig) -> io::Result<NetStack> {
        NetStack::with_options(device, cfg, RuntimeOptions::default())
    }

    /// Runs a stack over any [`Device`], with runtime options.
    pub fn with_options(
        device: impl Device,
        mut cfg: StackConfig,
        opts: RuntimeOptions,
    ) -> io::Result<NetStack> {
        cfg.mtu = cfg.mtu.min(device.mtu());
        // SAFETY: eventfd(2) with valid flags; we own the returned fd.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let wake = unsafe { OwnedFd::from_raw_fd(fd) };
        let out = vec![0u8; cfg.mtu.max(1500)];
        let shared = Arc::new(Shared {
            core: Mutex::new(Core {
                stack: Stack::new(cfg),
                out,
                driver_deadline: None,
                dead: None,
                impair: opts.impairment.filter(|i| !i.is_noop()).map(Impairer::new),
            }),
            cond: Condvar::new(),
            wake,
            device: Box::new(device),
            epoch: std::time::Instant::now(),
            stop: AtomicBool::new(false),
        });
        let driver_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("utcp-driver".into())
            .spawn(move || drive(&driver_shared))?;
        Ok(NetStack {
            rt: Arc::new(Runtime {
                shared,
                thread: Mutex::new(Some(thread)),
                linger: opts.linger,
            }),
        })
    }

    /// The address the stack answers for.
    pub fn addr(&self) -> std::net::Ipv4Addr {
        self.rt.shared.lock().stack.addr()
    }

    /// A snapshot of the stack-wide counters.
    pub fn stats(&self) -> StackStats {
        self.rt.shared.lock().stack.stats().clone()
    }

    /// What the impairment option did so far (None without impairment).
    pub fn impair_stats(&self) -> Option<ImpairStats> {
        self.rt
            .shared
            .lock()
            .impair
            .as_ref()
            .map(|i| i.stats().clone())
    }

    /// Waits until no connection has a handshake or close in progress, or
    /// `timeout` passes. Returns true if the stack became idle.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let shared = &self.rt.shared;
        let deadline = std::time::Instant::now() + timeout;
        let mut core = shared.lock();
        loop {
            if !busy(&core.stack) {
                return true;
            }
            let (g, timed_out) = shared.wait(core, Some(deadline));
            core = g;
            if timed_out {
                return !busy(&core.stack);
            }
        }
    }
}

/// The driver thread's loop.
fn drive(shared: &Shared) {
    let mut rx = vec![0u8; 65536];
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let timeout = {
            let mut core = shared.lock();
            let next = core.next_deadline();
            core.driver_deadline = next;
            next.map(|t| t.saturating_duration_since(shared.now()))
        };
        if let Err(err) = wait_for_work(shared, timeout) {
            error!("poll failed: {err}");
            fail(shared, err.to_string());
            break;
        }
        let fatal = serve_batches(shared, &mut rx);
        shared.cond.notify_all();
        if let Some(e) = fatal {
            error!("device read failed: {e}");
            fail(shared, e.to_string());
            break;
        }
    }
    debug!("driver thread stopped");
}

/// Sleeps in `ppoll` until the device is readable, the eventfd is poked,
/// or `timeout` passes (no timeout: until one of the first two). Drains the
/// eventfd. An interrupted poll is not an error.
fn wait_for_work(shared: &Shared, timeout: Option<Duration>) -> io::Result<()> {
    let wake_fd = shared.wake.as_raw_fd();
    let mut fds = [
        libc::pollfd {
            fd: shared.device.fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake_fd,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: fds is a valid array of 2 pollfds; ts_ptr is null or points to ts.
    let rc = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, ts_ptr, std::ptr::null()) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    if fds[1].revents != 0 {
        let mut v: u64 = 0;
        // SAFETY: reading 8 bytes into a valid u64 from our nonblocking eventfd.
        unsafe {
            libc::read(wake_fd, (&mut v as *mut u64).cast(), 8);
        }
    }
    Ok(())
}

/// Under the lock, *drain, then dispatch*: read up to `RX_BATCH` packets
/// into the stack, release held packets, run the timers, flush; again while
/// full batches keep coming. Returns the device's error if a read failed.
fn serve_batches(shared: &Shared, rx: &mut [u8]) -> Option<io::Error> {
    let mut core = shared.lock();
    loop {
        let (got, fatal) = read_batch(shared, &mut core, rx);
        let now = shared.now();
        let Core { stack, impair, .. } = &mut *core;
        if let Some(imp) = impair {
            imp.poll_release(now, |dir, p| match dir {
                Direction::In => stack.handle_packet(now, p),
                Direction::Out => shared.send(p),
            });
        }
        stack.handle_timeout(now);
        shared.flush(&mut core);
        if got < RX_BATCH || fatal.is_some() {
            return fatal;
        }
    }
}

/// Reads packets without blocking into the stack (through the impairer when
/// one is configured), at most `RX_BATCH`; returns how many, and the
/// device's error if a read failed.
fn read_batch(shared: &Shared, core: &mut Core, rx: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut got = 0;
    while got < RX_BATCH {
        match shared.device.recv(rx) {
            Ok(n) => {
                got += 1;
                let now = shared.now();
                let Core { stack, impair, .. } = core;
                match impair {
                    Some(imp) => imp.handle_packet(now, Direction::In, &rx[..n], |p| {
                        stack.handle_packet(now, p)
                    }),
                    None => stack.handle_packet(now, &rx[..n]),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

fn fail(shared: &Shared, msg: String) {
    shared.lock().dead = Some(msg);
    shared.cond.notify_all();
}

// ----------------------------------------------------------------------
// TcpListener
// ----------------------------------------------------------------------

/// A TCP socket server, listening for connections (like `std::net::TcpListener`).
pub struct TcpListener {
    rt: Arc<Runtime>,
    port: u16,
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("port", &self.port)
            .finish()
    }
}

/// Accept queue length used by [`TcpListener::bind`].
pub const DEFAULT_BACKLOG: usize = 128;

impl TcpListener {
    /// Listens on `port` of the stack's address. `AddrInUse` if taken.
    pub fn bind(net: &NetStack, port: u16) -> io::Result<TcpListener> {
        TcpListener::bind_with_backlog(net, port, DEFAULT_BACKLOG)
    }

    /// Like [`bind`](Self::bind) with an explicit accept queue bound.
    pub fn bind_with_backlog(net: &NetStack, port: u16, backlog: usize) -> io::Result<TcpListener> {
        net.rt.shared.lock().stack.listen(port, backlog)?;
        Ok(TcpListener {
            rt: net.rt.clone(),
            port,
        })
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let addr = self.rt.shared.lock().stack.addr();
        Ok(SocketAddr::V4(SocketAddrV4::new(addr, self.port)))
    }

    /// Waits for the next established connection.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let shared = &self.rt.shared;
        let mut core = shared.lock();
        loop {
            if let Some(msg) = &core.dead {
                return Err(dead_error(msg));
            }
            if let Some(id) = core.stack.accept(self.port) {
                let peer = core
                    .stack
                    .tcb(id)
                    .map(|t| SocketAddr::V4(t.remote()))
                    .ok_or_else(|| io::Error::other("accepted connection vanished"))?;
                drop(core);
                return Ok((TcpStream::from_id(self.rt.clone(), id), peer));
            }
            core = shared.wait(core, None).0;
        }
    }

    /// An iterator over incoming connections (never ends by itself).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let shared = &self.rt.shared;
        let mut core = shared.lock();
        core.stack.unlisten(self.port);
        shared.flush(&mut core);
    }
}

/// Iterator returned by [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

// ----------------------------------------------------------------------
// TcpStream
// ----------------------------------------------------------------------

struct StreamInner {
    rt: Arc<Runtime>,
    id: ConnId,
    read_timeout: Mutex<Option<Duration>>,
    write_timeout: Mutex<Option<Duration>>,
}

impl Drop for StreamInner {
    fn drop(&mut self) {
        let shared = &self.rt.shared;
        let mut core = shared.lock();
        core.stack.release(self.id);
        shared.flush_conn(&mut core, self.id);
    }
}

/// A TCP connection (like `std::net::TcpStream`). Reads and writes block;
/// `&TcpStream` also implements `Read` and `Write`, and [`try_clone`]
/// gives another handle to the same connection for another thread.
/// Dropping the last handle closes the connection gracefully (FIN).
///
/// [`try_clone`]: TcpStream::try_clone
pub struct TcpStream {
    inner: Arc<StreamInner>,
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let core = self.inner.rt.shared.lock();
        let mut d = f.debug_struct("TcpStream");
        if let Some(t) = core.stack.tcb(self.inner.id) {
            d.field("local", &t.local())
                .field("peer", &t.remote())
                .field("state", &t.state());
        }
        d.finish()
    }
}

fn not_connected() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "connection is gone")
}

impl TcpStream {
    fn from_id(rt: Arc<Runtime>, id: ConnId) -> TcpStream {
        TcpStream {
            inner: Arc::new(StreamInner {
                rt,
                id,
                read_timeout: Mutex::new(None),
                write_timeout: Mutex::new(None),
            }),
        }
    }

    /// Opens a connection to `addr` (IPv4 only) and waits for the handshake.
    /// Fails with `ConnectionRefused` if the peer answers with a reset, and
    /// `TimedOut` if it never answers.
    pub fn connect(net: &NetStack, addr: impl Into<SocketAddr>) -> io::Result<TcpStream> {
        TcpStream::connect_inner(net, addr.into(), None)
    }

    /// Like [`connect`](Self::connect), giving up after `timeout`.
    pub fn connect_timeout(
        net: &NetStack,
        addr: impl Into<SocketAddr>,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot connect with a zero timeout",
            ));
        }
        TcpStream::connect_inner(net, addr.into(), Some(timeout))
    }

    fn connect_inner(
        net: &NetStack,
        addr: SocketAddr,
        timeout: Option<Duration>,
    ) -> io::Result<TcpStream> {
        let SocketAddr::V4(remote) = addr else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{addr} is not an IPv4 address; utcp speaks IPv4 only"),
            ));
        };
        let shared = &net.rt.shared;
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let mut core = shared.lock();
        if let Some(msg) = &core.dead {
            return Err(dead_error(msg));
        }
        let now = shared.now();
        let id = core.stack.connect(now, remote)?;
        shared.flush_conn(&mut core, id);
        // From here on the stream owns the id; dropping it releases the connection.
        let stream = TcpStream::from_id(net.rt.clone(), id);
        // Every return below drops `core` first: dropping `stream` while the
        // core is still locked would deadlock in `StreamInner::drop`.
        loop {
            let Some(tcb) = core.stack.tcb(id) else {
                drop(core);
                return Err(not_connected());
            };
            match tcb.state() {
                State::SynSent | State::SynReceived => {}
                State::Closed => {
                    let (kind, why) = match tcb.error() {
                        Some(e) => (io_kind(e), e.to_string()),
                        None => (
                            io::ErrorKind::ConnectionAborted,
                            "connection aborted".into(),
                        ),
                    };
                    drop(core);
                    return Err(io::Error::new(kind, format!("connect to {remote}: {why}")));
                }
                _ => {
                    drop(core);
                    return Ok(stream);
                }
            }
            if let Some(msg) = &core.dead {
                let err = dead_error(msg);
                drop(core);
                return Err(err);
            }
            let (g, timed_out) = shared.wait(core, deadline);
            core = g;
            if timed_out {
                if let Some(t) = core.stack.tcb_mut(id) {
                    t.abort();
                }
                drop(core);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect to {remote}: timed out"),
                ));
            }
        }
    }

    /// Another handle to the same connection.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: self.inner.clone(),
        })
    }

    fn with_tcb<T>(&self, f: impl FnOnce(&mut crate::tcb::Tcb) -> T) -> io::Result<T> {
        let mut core = self.inner.rt.shared.lock();
        core.stack
            .tcb_mut(self.inner.id)
            .map(f)
            .ok_or_else(not_connected)
    }

    /// Our address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.with_tcb(|t| SocketAddr::V4(t.local()))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.with_tcb(|t| SocketAddr::V4(t.remote()))
    }

    /// The RFC 9293 state of the connection.
    pub fn state(&self) -> io::Result<State> {
        self.with_tcb(|t| t.state())
    }

    /// A snapshot of the connection's counters.
    pub fn stats(&self) -> io::Result<ConnStats> {
        self.with_tcb(|t| t.stats().clone())
    }

    /// A snapshot of counters, RTT estimator, congestion and window state.
    pub fn info(&self) -> io::Result<ConnInfo> {
        self.with_tcb(|t| t.info())
    }

    /// Shuts down the reading side, the writing side (sends FIN) or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let shared = &self.inner.rt.shared;
        let mut core = shared.lock();
        let tcb = core
            .stack
            .tcb_mut(self.inner.id)
            .ok_or_else(not_connected)?;
        if matches!(tcb.state(), State::Closed | State::SynSent) {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection is not open",
            ));
        }
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            tcb.shutdown_read();
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            tcb.close();
        }
        shared.flush_conn(&mut core, self.inner.id);
        drop(core);
        shared.cond.notify_all();
        Ok(())
    }

    /// Disables (true) or enables (false) Nagle's algorithm.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.with_tcb(|t| t.set_nagle(!nodelay))
    }

    /// True if Nagle's algorithm is disabled.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.with_tcb(|t| !t.nagle())
    }

    /// Sets how long `read` may block (`None`: forever). Zero is `InvalidInput`, as in std.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        set_timeout(&self.inner.read_timeout, dur)
    }

    /// Sets how long `write` may block (`None`: forever). Zero is `InvalidInput`, as in std.
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        set_timeout(&self.inner.write_timeout, dur)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(*self
            .inner
            .read_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner()))
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(*self
            .inner
            .write_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner()))
    }

    fn deadline(slot: &Mutex<Option<Duration>>) -> Option<std::time::Instant> {
        let d = *slot.lock().unwrap_or_else(|e| e.into_inner());
        d.map(|d| std::time::Instant::now() + d)
    }

    /// Runs `op` on the connection until it stops saying `WouldBlock`,
    /// sleeping on the condition variable in between (until `timeout`, if
    /// set: then `WouldBlock` "`what` timed out", as std does on Unix).
    /// Whatever `op` produced is transmitted before returning.
    fn blocking<T>(
        &self,
        timeout: &Mutex<Option<Duration>>,
        what: &str,
        mut op: impl FnMut(&mut crate::tcb::Tcb) -> Result<T, Error>,
    ) -> io::Result<T> {
        let shared = &self.inner.rt.shared;
        let deadline = TcpStream::deadline(timeout);
        let mut core = shared.lock();
        loop {
            let tcb = core
                .stack
                .tcb_mut(self.inner.id)
                .ok_or_else(not_connected)?;
            match op(tcb) {
                Ok(v) => {
                    // A write queued data; a read may have reopened the window.
                    shared.flush_conn(&mut core, self.inner.id);
                    return Ok(v);
                }
                Err(Error::WouldBlock) => {}
                Err(e) => return Err(e.into()),
            }
            if let Some(msg) = &core.dead {
                return Err(dead_error(msg));
            }
            let (g, timed_out) = shared.wait(core, deadline);
            core = g;
            if timed_out {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{what} timed out"),
                ));
            }
        }
    }

    fn read_impl(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.blocking(&self.inner.read_timeout, "read", |tcb| tcb.recv(buf))
    }

    fn write_impl(&self, data: &[u8]) -> io::Result<usize> {
        self.blocking(&self.inner.write_timeout, "write", |tcb| tcb.send(data))
    }
}

fn set_timeout(slot: &Mutex<Option<Duration>>, dur: Option<Duration>) -> io::Result<()> {
    if dur == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    *slot.lock().unwrap_or_else(|e| e.into_inner()) = dur;
    Ok(())
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_impl(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_impl(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_impl(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_impl(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The `std::io` kind of the reason a connection ended.
pub fn io_kind(e: TcpError) -> io::ErrorKind {
    match e {
        TcpError::Refused => io::ErrorKind::ConnectionRefused,
        TcpError::Reset => io::ErrorKind::ConnectionReset,
        TcpError::TimedOut => io::ErrorKind::TimedOut,
    }
}

/// The core's errors as `std::io` errors: the kinds `std::net` uses for the
/// same situations, with the core's message.
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e {
            Error::WouldBlock => io::ErrorKind::WouldBlock,
            Error::NotConnected => io::ErrorKind::NotConnected,
            Error::SendShutdown => io::ErrorKind::BrokenPipe,
            Error::Ended(why) => io_kind(why),
            Error::PortInUse(_) | Error::TupleInUse(..) | Error::NoEphemeralPort => {
                io::ErrorKind::AddrInUse
            }
            Error::PortZero | Error::BadRemote(_) => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

impl From<TcpError> for io::Error {
    fn from(e: TcpError) -> io::Error {
        Error::Ended(e).into()
    }
}
