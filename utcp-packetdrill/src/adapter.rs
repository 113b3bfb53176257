//! The adapter proper: a socket table, a clock and an output queue around a
//! [`utcp::stack::Stack`], with the socket calls' Linux semantics.
//!
//! Everything here works on Rust types and returns `Result<_, Errno>`; the
//! `extern "C"` layer in `lib.rs` checks pointers and sets `errno`.
//!
//! Threads: packetdrill calls the socket functions from a system-call thread
//! and the netdev/clock functions from its main thread. One mutex guards the
//! whole state. A blocking call that cannot proceed sleeps on a condition
//! variable; whatever may unblock it (a packet in, a timer, another call)
//! notifies. The main thread then waits until every woken sleeper has looked
//! at the new state ([`Adapter::settle`]) before it goes on, so that, for
//! example, a blocked `write` has queued its next segment before packetdrill
//! asks `netdev_receive` for it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libc::c_int;
use utcp::error::{Error, TcpError};
use utcp::stack::{ConnId, Stack};
use utcp::state::State;
use utcp::tcb::TcpConfig;
use utcp::time::Instant;

use crate::flags::{ClockMode, Flags};

/// An `errno` value.
pub type Errno = c_int;
/// The result of a socket call: a value or an `errno`.
pub type Res<T> = Result<T, Errno>;

/// Start of the fake clock, in µs since the Unix epoch (2023-11-14).
const FAKE_EPOCH_US: u64 = 1_700_000_000_000_000;
/// The stack's clock reads this much at the adapter's start.
const STACK_START_US: u64 = 1_000_000;
/// How long the main thread waits, in real time, for woken sleepers.
const SETTLE_LIMIT: Duration = Duration::from_secs(2);
/// First port handed out by bind(port 0) and listen() without bind (Linux's
/// default ip_local_port_range starts here).
const EPHEMERAL_FIRST: u16 = 32768;
/// Upper bound on timer rounds in one clock jump (a stuck timer must not hang us).
const MAX_TIMER_ROUNDS: usize = 100_000;
/// netdev_receive does not jump the fake clock further than this past the
/// last packet in or usleep: a script that waits for a packet the stack
/// never sends (while, say, zero-window probes go on for ever) then fails
/// instead of hanging.
const IDLE_LIMIT_US: u64 = 300_000_000;

/// The errno Linux returns where the core reports `e`.
pub fn errno_of_error(e: Error) -> Errno {
    match e {
        Error::WouldBlock => libc::EAGAIN,
        Error::NotConnected => libc::ENOTCONN,
        Error::SendShutdown => libc::EPIPE,
        Error::Ended(why) => errno_of_ended(why),
        Error::PortInUse(_) | Error::TupleInUse(..) | Error::NoEphemeralPort => libc::EADDRINUSE,
        Error::PortZero | Error::BadRemote(_) => libc::EINVAL,
    }
}

/// The errno of a connection that a reset or a timeout ended.
pub fn errno_of_ended(e: TcpError) -> Errno {
    match e {
        TcpError::Refused => libc::ECONNREFUSED,
        TcpError::Reset => libc::ECONNRESET,
        TcpError::TimedOut => libc::ETIMEDOUT,
    }
}

/// Maps an error from the core to the errno Linux would report.
pub fn errno_of(kind: io::ErrorKind) -> Errno {
    use io::ErrorKind as K;
    match kind {
        K::WouldBlock => libc::EAGAIN,
        K::ConnectionRefused => libc::ECONNREFUSED,
        K::ConnectionReset => libc::ECONNRESET,
        K::ConnectionAborted => libc::ECONNABORTED,
        K::TimedOut => libc::ETIMEDOUT,
        K::BrokenPipe => libc::EPIPE,
        K::NotConnected => libc::ENOTCONN,
        K::AddrInUse => libc::EADDRINUSE,
        K::AddrNotAvailable => libc::EADDRNOTAVAIL,
        K::InvalidInput => libc::EINVAL,
        K::PermissionDenied => libc::EACCES,
        _ => libc::EIO,
    }
}

/// What a socket is.
#[derive(Debug)]
enum Kind {
    /// Created, maybe bound; neither listening nor connected.
    Fresh,
    /// Listening on `port`; `ready` holds connections taken from the stack's
    /// accept queue (by poll or accept) and not yet handed out.
    Listener { port: u16, ready: VecDeque<ConnId> },
    /// A connection (active or accepted).
    Conn { id: ConnId },
}

#[derive(Debug)]
struct Sock {
    /// The kernel fd reserved for this socket (an eventfd): its number is
    /// the socket's number.
    fd: OwnedFd,
    kind: Kind,
    nonblock: bool,
    reuseaddr: bool,
    nodelay: bool,
    /// SO_RCVBUF as read back (Linux doubles the value set).
    rcvbuf: c_int,
    /// SO_SNDBUF as read back (doubled too).
    sndbuf: c_int,
    /// SO_RCVBUF as set before listen/connect: the receive buffer (and so
    /// the largest window and our window-scale shift).
    rcvbuf_req: Option<usize>,
    /// SO_SNDBUF as set before listen/connect: the send buffer.
    sndbuf_req: Option<usize>,
    /// TCP_MAXSEG as set (user MSS): caps the MSS we announce and send.
    maxseg: Option<u16>,
    /// SO_LINGER: `Some(seconds)` when on.
    linger: Option<c_int>,
    /// Local port from bind() or autobind.
    port: Option<u16>,
    /// A connect() is under way and no connect() call has seen it finish yet.
    connecting: bool,
    /// The connection's error was already reported once (by a call or
    /// SO_ERROR); afterwards reads see EOF and writes EPIPE, as on Linux.
    error_reported: bool,
}

/// One fd in an epoll instance's interest list.
#[derive(Debug)]
struct Interest {
    /// The EPOLL* bits asked for, EPOLLET and EPOLLONESHOT included.
    events: u32,
    /// `epoll_event.data`, handed back as it came.
    data: u64,
    /// EPOLLONESHOT: reported once, now off until EPOLL_CTL_MOD.
    disarmed: bool,
    /// EPOLLET: the bits last seen ready, and the receive/send queue
    /// lengths then (new data or freed room is a new edge, as on Linux).
    last: u32,
    queues: (usize, usize),
}

/// An epoll instance: a reserved kernel fd (an eventfd, like sockets) and
/// its interest list, in fd order.
#[derive(Debug)]
struct Epoll {
    fd: OwnedFd,
    interest: BTreeMap<c_int, Interest>,
}

#[derive(Debug)]
enum Clock {
    Fake {
        now_us: u64,
    },
    Real {
        start: std::time::Instant,
        base_us: u64,
    },
}

#[derive(Debug)]
struct Inner {
    flags: Flags,
    stack: Stack,
    clock: Clock,
    /// The value of `now_us()` at which the stack's clock read STACK_START_US.
    base_us: u64,
    /// Packets out of the stack with their send time, oldest first.
    out: VecDeque<(Vec<u8>, u64)>,
    buf: Vec<u8>,
    socks: HashMap<c_int, Sock>,
    epolls: HashMap<c_int, Epoll>,
    /// Kernel pipes made by pipe(); read, write, fcntl and poll on them go to
    /// the kernel. Closed by close() or when the adapter is freed.
    pipes: HashMap<c_int, OwnedFd>,
    next_port: u16,
    /// Threads asleep in [`Adapter::block`].
    sleepers: usize,
    /// Sleepers that were notified and have not yet looked at the state.
    pending_wake: usize,
    /// Sleepers with a deadline (poll with a timeout).
    timed_sleepers: usize,
    /// Time of the last netdev_send or usleep (see IDLE_LIMIT_US).
    last_input_us: u64,
}

impl Inner {
    fn now_us(&self) -> u64 {
        match &self.clock {
            Clock::Fake { now_us } => *now_us,
            Clock::Real { start, base_us } => {
                base_us + u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX / 2)
            }
        }
    }

    fn stack_time(&self, us: u64) -> Instant {
        Instant::from_micros(us.saturating_sub(self.base_us) + STACK_START_US)
    }

    fn wall_time(&self, t: Instant) -> u64 {
        (t.total_micros() + self.base_us).saturating_sub(STACK_START_US)
    }

    fn stack_now(&self) -> Instant {
        self.stack_time(self.now_us())
    }

    /// Moves every packet the stack has ready into the output queue.
    fn flush(&mut self) {
        let now_us = self.now_us();
        let now = self.stack_time(now_us);
        let Inner {
            stack, buf, out, ..
        } = self;
        stack.poll_transmit(now, buf, |p| out.push_back((p.to_vec(), now_us)));
    }

    /// Runs the timers due by now; true if any ran.
    fn run_timers(&mut self) -> bool {
        let now = self.stack_now();
        if self.stack.poll_timeout().is_some_and(|d| d <= now) {
            self.stack.handle_timeout(now);
            self.flush();
            true
        } else {
            false
        }
    }

    fn sock(&mut self, fd: c_int) -> Res<&mut Sock> {
        self.socks.get_mut(&fd).ok_or(libc::EBADF)
    }

    fn port_in_use(&self, port: u16, reuse: bool) -> bool {
        self.stack.is_listening(port)
            || self.socks.values().any(|s| {
                s.port == Some(port)
                    && !(reuse && s.reuseaddr && !matches!(s.kind, Kind::Listener { .. }))
            })
    }

    fn ephemeral_port(&mut self) -> Res<u16> {
        let span = 65536 - u32::from(EPHEMERAL_FIRST);
        for _ in 0..span {
            let port = self.next_port;
            self.next_port = if port == u16::MAX {
                EPHEMERAL_FIRST
            } else {
                port + 1
            };
            if !self.port_in_use(port, false) {
                return Ok(port);
            }
        }
        Err(libc::EADDRINUSE)
    }

    /// Moves established connections from the stack's accept queue of the
    /// listener `fd` into its `ready` queue.
    fn pull_accepts(&mut self, fd: c_int) {
        let Some(Sock {
            kind: Kind::Listener { port, .. },
            ..
        }) = self.socks.get(&fd)
        else {
            return;
        };
        let port = *port;
        let mut got = Vec::new();
        while let Some(id) = self.stack.accept(port) {
            got.push(id);
        }
        if let Some(Sock {
            kind: Kind::Listener { ready, .. },
            ..
        }) = self.socks.get_mut(&fd)
        {
            ready.extend(got);
        }
    }

    /// A fresh kernel fd (an eventfd) whose number names a socket or an
    /// epoll instance, so packetdrill can close(2) it.
    fn reserve_fd() -> Res<OwnedFd> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a fresh fd we own.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EMFILE));
        }
        // SAFETY: `raw` was just returned by eventfd and nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    }

    fn new_sock(&mut self, kind: Kind, nonblock: bool) -> Res<c_int> {
        let fd = Self::reserve_fd()?;
        let raw = fd.as_raw_fd();
        let rcvbuf = c_int::try_from(self.flags.recv_buffer).unwrap_or(c_int::MAX);
        let sndbuf = c_int::try_from(self.flags.send_buffer).unwrap_or(c_int::MAX);
        self.socks.insert(
            raw,
            Sock {
                fd,
                kind,
                nonblock,
                reuseaddr: false,
                nodelay: !self.flags.nagle,
                rcvbuf,
                sndbuf,
                rcvbuf_req: None,
                sndbuf_req: None,
                maxseg: None,
                linger: None,
                port: None,
                connecting: false,
                error_reported: false,
            },
        );
        Ok(raw)
    }

    /// The TCP settings for a connection of `fd`: the stack's defaults with
    /// the socket's SO_RCVBUF, SO_SNDBUF, TCP_MAXSEG and TCP_NODELAY.
    fn sock_config(&self, fd: c_int) -> Res<TcpConfig> {
        let sock = self.socks.get(&fd).ok_or(libc::EBADF)?;
        let mut tcp = self.stack.tcp_config().clone();
        if let Some(n) = sock.rcvbuf_req {
            tcp.recv_buffer = n;
        }
        if let Some(n) = sock.sndbuf_req {
            tcp.send_buffer = n;
        }
        if let Some(m) = sock.maxseg {
            tcp.mss = tcp.mss.min(m);
        }
        tcp.nagle = !sock.nodelay;
        Ok(tcp)
    }

    /// The state of `fd`'s connection after a connect(): EAGAIN while the
    /// handshake runs, then 0 or the error.
    fn connect_result(&mut self, fd: c_int) -> Res<()> {
        let sock = self.socks.get_mut(&fd).ok_or(libc::EBADF)?;
        let Kind::Conn { id } = sock.kind else {
            return Err(libc::EBADF);
        };
        let Some(tcb) = self.stack.tcb(id) else {
            sock.connecting = false;
            return Err(libc::ECONNREFUSED);
        };
        match tcb.state() {
            State::SynSent | State::SynReceived => Err(libc::EAGAIN),
            State::Closed => {
                sock.connecting = false;
                sock.error_reported = true;
                Err(tcb.error().map_or(libc::ECONNREFUSED, errno_of_ended))
            }
            _ => {
                sock.connecting = false;
                Ok(())
            }
        }
    }
}

/// The adapter: one stack, its sockets and its clock. Shared by packetdrill's
/// threads through the `userdata` pointer.
#[derive(Debug)]
pub struct Adapter {
    inner: Mutex<Inner>,
    /// Signalled whenever the state changed in a way a blocked call may care about.
    changed: Condvar,
    /// Signalled when the last woken sleeper has looked at the state.
    settled: Condvar,
    mode: ClockMode,
}

type Guard<'a> = MutexGuard<'a, Inner>;

impl Adapter {
    /// An adapter with the given configuration.
    pub fn new(flags: Flags) -> Adapter {
        let (clock, base_us) = match flags.clock {
            ClockMode::Fake => (
                Clock::Fake {
                    now_us: FAKE_EPOCH_US,
                },
                FAKE_EPOCH_US,
            ),
            ClockMode::Real => {
                let base_us = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(FAKE_EPOCH_US, |d| {
                        u64::try_from(d.as_micros()).unwrap_or(FAKE_EPOCH_US)
                    });
                (
                    Clock::Real {
                        start: std::time::Instant::now(),
                        base_us,
                    },
                    base_us,
                )
            }
        };
        let cfg = flags.stack_config();
        let mtu = cfg.mtu;
        Adapter {
            mode: flags.clock,
            inner: Mutex::new(Inner {
                stack: Stack::new(cfg),
                clock,
                base_us,
                out: VecDeque::new(),
                buf: vec![0; mtu.max(1500)],
                socks: HashMap::new(),
                epolls: HashMap::new(),
                pipes: HashMap::new(),
                next_port: EPHEMERAL_FIRST,
                sleepers: 0,
                pending_wake: 0,
                timed_sleepers: 0,
                last_input_us: base_us,
                flags,
            }),
            changed: Condvar::new(),
            settled: Condvar::new(),
        }
    }

    fn lock(&self) -> Guard<'_> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every blocked call so it re-examines the state.
    fn notify(&self, g: &mut Guard<'_>) {
        g.pending_wake = g.sleepers;
        self.changed.notify_all();
    }

    /// Waits (bounded, in real time) until every woken sleeper has run.
    fn settle<'a>(&self, mut g: Guard<'a>) -> Guard<'a> {
        let start = std::time::Instant::now();
        while g.pending_wake > 0 {
            let Some(left) = SETTLE_LIMIT.checked_sub(start.elapsed()) else {
                g.pending_wake = 0;
                break;
            };
            g = self
                .settled
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        g
    }

    /// Sleeps until notified (fake clock) or until something may have
    /// changed (real clock: the next timer or deadline).
    fn block<'a>(&self, mut g: Guard<'a>, deadline_us: Option<u64>) -> Guard<'a> {
        g.sleepers += 1;
        if deadline_us.is_some() {
            g.timed_sleepers += 1;
        }
        g = match self.mode {
            ClockMode::Fake => self.changed.wait(g).unwrap_or_else(|e| e.into_inner()),
            ClockMode::Real => {
                let now = g.now_us();
                let timer = g.stack.poll_timeout().map(|t| g.wall_time(t));
                let until = [timer, deadline_us]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(now + 20_000)
                    .min(now + 20_000);
                let wait = Duration::from_micros(until.saturating_sub(now).max(100));
                self.changed
                    .wait_timeout(g, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
        g.sleepers -= 1;
        if deadline_us.is_some() {
            g.timed_sleepers -= 1;
        }
        if g.pending_wake > 0 {
            g.pending_wake -= 1;
            if g.pending_wake == 0 {
                self.settled.notify_all();
            }
        }
        if self.mode == ClockMode::Real && g.run_timers() {
            self.notify(&mut g);
        }
        g
    }

    /// Runs `op` until it stops returning EAGAIN, sleeping in between, unless
    /// the socket is non-blocking (or `nonblock` is forced).
    fn blocking<T>(
        &self,
        fd: c_int,
        force_nonblock: bool,
        mut op: impl FnMut(&mut Inner) -> Res<T>,
    ) -> Res<T> {
        let mut g = self.lock();
        loop {
            let r = op(&mut g);
            g.flush();
            self.notify(&mut g);
            match r {
                Err(libc::EAGAIN) => {
                    if force_nonblock || g.sock(fd)?.nonblock {
                        return Err(libc::EAGAIN);
                    }
                    g = self.block(g, None);
                }
                r => return r,
            }
        }
    }

    // ------------------------------------------------------------------
    // Clock and netdev (packetdrill's main thread)
    // ------------------------------------------------------------------

    /// gettimeofday: the current time in µs since the epoch. The fake clock
    /// advances 1 µs per call.
    pub fn gettimeofday(&self) -> u64 {
        let mut g = self.lock();
        if let Clock::Fake { now_us } = &mut g.clock {
            *now_us += 1;
        }
        let ran = g.run_timers();
        if ran || g.timed_sleepers > 0 {
            self.notify(&mut g);
            g = self.settle(g);
        }
        g.now_us()
    }

    /// usleep: the fake clock jumps `usec` ahead, stopping at every timer
    /// deadline on the way; the real clock sleeps.
    pub fn usleep(&self, usec: u64) {
        let mut g = self.lock();
        let target = g.now_us().saturating_add(usec);
        g.last_input_us = target;
        match self.mode {
            ClockMode::Fake => {
                for _ in 0..MAX_TIMER_ROUNDS {
                    let Some(d) = g.stack.poll_timeout().map(|t| g.wall_time(t)) else {
                        break;
                    };
                    if d > target {
                        break;
                    }
                    if let Clock::Fake { now_us } = &mut g.clock {
                        *now_us = (*now_us).max(d);
                    }
                    g.run_timers();
                    self.notify(&mut g);
                    g = self.settle(g);
                    if g.stack.poll_timeout().map(|t| g.wall_time(t)) == Some(d) && d <= g.now_us()
                    {
                        // A timer that does not move on: step past it.
                        if let Clock::Fake { now_us } = &mut g.clock {
                            *now_us += 1;
                        }
                    }
                }
                if let Clock::Fake { now_us } = &mut g.clock {
                    *now_us = (*now_us).max(target);
                }
                g.run_timers();
                self.notify(&mut g);
                drop(self.settle(g));
            }
            ClockMode::Real => {
                drop(g);
                loop {
                    let mut g = self.lock();
                    let now = g.now_us();
                    if now >= target {
                        break;
                    }
                    if g.run_timers() {
                        self.notify(&mut g);
                    }
                    drop(g);
                    std::thread::sleep(Duration::from_micros((target - now).min(5_000)));
                }
            }
        }
    }

    /// netdev_send: a packet from packetdrill into the stack.
    pub fn netdev_send(&self, packet: &[u8]) {
        let mut g = self.lock();
        let now = g.stack_now();
        g.last_input_us = g.now_us();
        g.stack.handle_packet(now, packet);
        g.flush();
        self.notify(&mut g);
        drop(self.settle(g));
    }

    /// netdev_receive: the next packet out of the stack and its send time.
    /// With nothing queued, the fake clock jumps to the next timer; `None`
    /// when no packet can come any more.
    pub fn netdev_receive(&self) -> Option<(Vec<u8>, u64)> {
        let mut g = self.lock();
        let real_start = std::time::Instant::now();
        for _ in 0..MAX_TIMER_ROUNDS {
            if let Some(p) = g.out.pop_front() {
                return Some(p);
            }
            g = self.settle(g);
            if !g.out.is_empty() {
                continue;
            }
            match self.mode {
                ClockMode::Fake => {
                    let d = g.stack.poll_timeout().map(|t| g.wall_time(t))?;
                    if d > g.last_input_us.saturating_add(IDLE_LIMIT_US) {
                        return None;
                    }
                    if let Clock::Fake { now_us } = &mut g.clock {
                        *now_us = (*now_us).max(d);
                    }
                    if !g.run_timers() {
                        if let Clock::Fake { now_us } = &mut g.clock {
                            *now_us += 1;
                        }
                    }
                    self.notify(&mut g);
                }
                ClockMode::Real => {
                    if g.run_timers() {
                        self.notify(&mut g);
                        continue;
                    }
                    let now = g.now_us();
                    let next = g.stack.poll_timeout().map(|t| g.wall_time(t));
                    if next.is_none() && real_start.elapsed() > SETTLE_LIMIT {
                        return None;
                    }
                    let wait = next.map_or(10_000, |d| d.saturating_sub(now).clamp(50, 10_000));
                    g = self
                        .changed
                        .wait_timeout(g, Duration::from_micros(wait))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        None
    }

    // ------------------------------------------------------------------
    // Socket calls
    // ------------------------------------------------------------------

    /// socket(2): only AF_INET, SOCK_STREAM, protocol 0 or IPPROTO_TCP.
    pub fn socket(&self, domain: c_int, ty: c_int, protocol: c_int) -> Res<c_int> {
        if domain != libc::AF_INET {
            return Err(libc::EAFNOSUPPORT);
        }
        let base = ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
        if base != libc::SOCK_STREAM {
            return Err(libc::ESOCKTNOSUPPORT);
        }
        if protocol != 0 && protocol != libc::IPPROTO_TCP {
            return Err(libc::EPROTONOSUPPORT);
        }
        self.lock()
            .new_sock(Kind::Fresh, ty & libc::SOCK_NONBLOCK != 0)
    }

    /// bind(2) to `addr` (the stack's address or 0.0.0.0; port 0 picks one).
    pub fn bind(&self, fd: c_int, addr: SocketAddrV4) -> Res<()> {
        let mut g = self.lock();
        let ours = g.stack.addr();
        let sock = g.sock(fd)?;
        if sock.port.is_some() || !matches!(sock.kind, Kind::Fresh) {
            return Err(libc::EINVAL);
        }
        let reuse = sock.reuseaddr;
        if !addr.ip().is_unspecified() && *addr.ip() != ours {
            return Err(libc::EADDRNOTAVAIL);
        }
        let port = match addr.port() {
            0 => g.ephemeral_port()?,
            p if g.port_in_use(p, reuse) => return Err(libc::EADDRINUSE),
            p => p,
        };
        g.sock(fd)?.port = Some(port);
        Ok(())
    }

    /// listen(2); an unbound socket gets an ephemeral port.
    pub fn listen(&self, fd: c_int, backlog: c_int) -> Res<()> {
        let mut g = self.lock();
        let sock = g.sock(fd)?;
        match sock.kind {
            Kind::Listener { .. } => return Ok(()),
            Kind::Conn { .. } => return Err(libc::EINVAL),
            Kind::Fresh => {}
        }
        let port = match sock.port {
            Some(p) => p,
            None => g.ephemeral_port()?,
        };
        // Linux lets backlog + 1 connections wait in the accept queue.
        let backlog = usize::try_from(backlog.clamp(0, 4096)).unwrap_or(0) + 1;
        let tcp = g.sock_config(fd)?;
        g.stack
            .listen_with(port, backlog, tcp)
            .map_err(errno_of_error)?;
        let sock = g.sock(fd)?;
        sock.port = Some(port);
        sock.kind = Kind::Listener {
            port,
            ready: VecDeque::new(),
        };
        Ok(())
    }

    /// accept(2): the new socket's number and the peer's address.
    pub fn accept(&self, fd: c_int) -> Res<(c_int, SocketAddrV4)> {
        self.blocking(fd, false, |g| {
            let sock = g.sock(fd)?;
            if !matches!(sock.kind, Kind::Listener { .. }) {
                return Err(libc::EINVAL);
            }
            g.pull_accepts(fd);
            let sock = g.sock(fd)?;
            let (port, nodelay) = (sock.port, sock.nodelay);
            let inherited = (
                sock.rcvbuf,
                sock.sndbuf,
                sock.rcvbuf_req,
                sock.sndbuf_req,
                sock.maxseg,
                sock.linger,
            );
            let Kind::Listener { ready, .. } = &mut sock.kind else {
                return Err(libc::EINVAL);
            };
            let Some(id) = ready.pop_front() else {
                return Err(libc::EAGAIN);
            };
            let remote = match g.stack.tcb_mut(id) {
                Some(tcb) => {
                    if nodelay {
                        tcb.set_nagle(false);
                    }
                    tcb.remote()
                }
                None => return Err(libc::ECONNABORTED),
            };
            let new = g.new_sock(Kind::Conn { id }, false)?;
            let s = g.sock(new)?;
            s.port = port;
            s.nodelay = nodelay;
            (
                s.rcvbuf,
                s.sndbuf,
                s.rcvbuf_req,
                s.sndbuf_req,
                s.maxseg,
                s.linger,
            ) = inherited;
            Ok((new, remote))
        })
    }

    /// connect(2) to `remote`. EINPROGRESS for a non-blocking socket.
    pub fn connect(&self, fd: c_int, remote: SocketAddrV4) -> Res<()> {
        let mut g = self.lock();
        let sock = g.sock(fd)?;
        let nonblock = sock.nonblock;
        match sock.kind {
            Kind::Listener { .. } => return Err(libc::EISCONN),
            Kind::Conn { .. } if !sock.connecting => return Err(libc::EISCONN),
            Kind::Conn { .. } => {
                drop(g);
                return match self.blocking(fd, false, |g| g.connect_result(fd)) {
                    Err(libc::EAGAIN) if nonblock => Err(libc::EALREADY),
                    r => r,
                };
            }
            Kind::Fresh => {}
        }
        let (port, nodelay) = (sock.port, sock.nodelay);
        let now = g.stack_now();
        let tcp = g.sock_config(fd)?;
        let id = g
            .stack
            .connect_with(now, remote, port, tcp)
            .map_err(|e| match e {
                Error::PortInUse(_) | Error::TupleInUse(..) | Error::NoEphemeralPort => {
                    libc::EADDRNOTAVAIL
                }
                Error::PortZero | Error::BadRemote(_) => libc::ENETUNREACH,
                e => errno_of_error(e),
            })?;
        if let Some(tcb) = g.stack.tcb_mut(id) {
            if nodelay {
                tcb.set_nagle(false);
            }
            let local = tcb.local().port();
            let sock = g.sock(fd)?;
            sock.port = Some(local);
        }
        let sock = g.sock(fd)?;
        sock.kind = Kind::Conn { id };
        sock.connecting = true;
        g.flush();
        self.notify(&mut g);
        drop(g);
        if nonblock {
            return Err(libc::EINPROGRESS);
        }
        self.blocking(fd, false, |g| g.connect_result(fd))
    }

    /// recv(2) (and read): MSG_DONTWAIT and MSG_PEEK (the data stays
    /// queued) are honoured.
    pub fn recv(&self, fd: c_int, buf: &mut [u8], flags: c_int) -> Res<usize> {
        let peek = flags & libc::MSG_PEEK != 0;
        self.blocking(fd, flags & libc::MSG_DONTWAIT != 0, |g| {
            let sock = g.socks.get_mut(&fd).ok_or(libc::EBADF)?;
            let Kind::Conn { id } = sock.kind else {
                return Err(libc::ENOTCONN);
            };
            let tcb = g.stack.tcb_mut(id).ok_or(libc::ENOTCONN)?;
            if buf.is_empty() {
                return Ok(0);
            }
            if peek && tcb.recv_queued() > 0 {
                return Ok(tcb.peek(buf));
            }
            // With nothing queued, recv() consumes nothing: it tells EOF,
            // error and would-block apart for a peek too.
            match tcb.recv(if peek { &mut [] } else { buf }) {
                Ok(n) => Ok(n),
                Err(Error::WouldBlock) => Err(libc::EAGAIN),
                Err(_) if sock.error_reported => Ok(0),
                Err(e) => {
                    sock.error_reported = true;
                    Err(errno_of_error(e))
                }
            }
        })
    }

    /// send(2) (and write): a blocking socket sends everything, a
    /// non-blocking one what fits.
    pub fn send(&self, fd: c_int, data: &[u8], flags: c_int) -> Res<usize> {
        let dontwait = flags & libc::MSG_DONTWAIT != 0;
        let mut done = 0usize;
        let r = self.blocking(fd, dontwait, |g| {
            let sock = g.socks.get_mut(&fd).ok_or(libc::EBADF)?;
            let nonblock = sock.nonblock || dontwait;
            let Kind::Conn { id } = sock.kind else {
                return Err(libc::EPIPE);
            };
            let tcb = g.stack.tcb_mut(id).ok_or(libc::EPIPE)?;
            loop {
                match tcb.send(&data[done..]) {
                    Ok(n) => {
                        done += n;
                        if done == data.len() || n == 0 {
                            return Ok(done);
                        }
                        if nonblock {
                            return Ok(done);
                        }
                    }
                    Err(Error::WouldBlock) => {
                        return if done > 0 && nonblock {
                            Ok(done)
                        } else {
                            Err(libc::EAGAIN)
                        };
                    }
                    Err(_) if done > 0 => return Ok(done),
                    Err(e) => {
                        let errno = match e {
                            Error::NotConnected | Error::SendShutdown => libc::EPIPE,
                            _ if sock.error_reported => libc::EPIPE,
                            e => errno_of_error(e),
                        };
                        sock.error_reported = true;
                        return Err(errno);
                    }
                }
            }
        });
        match r {
            Err(libc::EAGAIN) if done > 0 => Ok(done),
            r => r,
        }
    }

    /// close(2). A connection closed with unread data is reset (RFC 2525
    /// section 2.17, as Linux does), and so is one with SO_LINGER on and a
    /// zero timeout (Linux's abortive close); otherwise it closes
    /// gracefully (a non-zero linger time does not make close wait).
    pub fn close(&self, fd: c_int) -> Res<()> {
        let mut g = self.lock();
        if let Some(ep) = g.epolls.remove(&fd) {
            drop(ep.fd);
            return Ok(());
        }
        if let Some(pipe) = g.pipes.remove(&fd) {
            drop(pipe);
            return Ok(());
        }
        let sock = g.socks.remove(&fd).ok_or(libc::EBADF)?;
        for ep in g.epolls.values_mut() {
            ep.interest.remove(&fd);
        }
        match sock.kind {
            Kind::Fresh => {}
            Kind::Listener { port, ready } => {
                for id in ready {
                    if let Some(tcb) = g.stack.tcb_mut(id) {
                        tcb.abort();
                    }
                    g.stack.release(id);
                }
                g.stack.unlisten(port);
            }
            Kind::Conn { id } => {
                if let Some(tcb) = g.stack.tcb_mut(id) {
                    if tcb.recv_queued() > 0 || sock.linger == Some(0) {
                        tcb.abort();
                    }
                }
                g.stack.release(id);
            }
        }
        drop(sock.fd);
        g.flush();
        self.notify(&mut g);
        Ok(())
    }

    /// shutdown(2).
    pub fn shutdown(&self, fd: c_int, how: c_int) -> Res<()> {
        if !(0..=2).contains(&how) {
            return Err(libc::EINVAL);
        }
        let mut g = self.lock();
        let sock = g.sock(fd)?;
        match &sock.kind {
            Kind::Fresh => return Err(libc::ENOTCONN),
            Kind::Listener { .. } => {
                // Like Linux: SHUT_RD (or RDWR) on a listener stops it.
                if how != libc::SHUT_WR {
                    drop(g);
                    return self.unlisten(fd);
                }
                return Ok(());
            }
            Kind::Conn { id } => {
                let id = *id;
                let tcb = g.stack.tcb_mut(id).ok_or(libc::ENOTCONN)?;
                if tcb.state() == State::Closed {
                    return Err(libc::ENOTCONN);
                }
                if how != libc::SHUT_WR {
                    tcb.shutdown_read();
                }
                if how != libc::SHUT_RD {
                    tcb.close();
                }
            }
        }
        g.flush();
        self.notify(&mut g);
        Ok(())
    }

    fn unlisten(&self, fd: c_int) -> Res<()> {
        let mut g = self.lock();
        let sock = g.sock(fd)?;
        let kind = std::mem::replace(&mut sock.kind, Kind::Fresh);
        if let Kind::Listener { port, ready } = kind {
            for id in ready {
                if let Some(tcb) = g.stack.tcb_mut(id) {
                    tcb.abort();
                }
                g.stack.release(id);
            }
            g.stack.unlisten(port);
        }
        g.flush();
        self.notify(&mut g);
        Ok(())
    }

    /// getsockopt(2): the option's value as Linux lays it out (an `int`,
    /// or a `struct linger` for SO_LINGER); the caller truncates it.
    pub fn getsockopt(&self, fd: c_int, level: c_int, name: c_int) -> Res<Vec<u8>> {
        let mut g = self.lock();
        let Inner { socks, stack, .. } = &mut *g;
        let sock = socks.get_mut(&fd).ok_or(libc::EBADF)?;
        let conn = match sock.kind {
            Kind::Conn { id } => stack.tcb(id),
            _ => None,
        };
        let int = |v: c_int| Ok(v.to_ne_bytes().to_vec());
        match (level, name) {
            (libc::SOL_SOCKET, libc::SO_ERROR) => match conn.and_then(|t| t.error()) {
                Some(why) if !sock.error_reported => {
                    sock.error_reported = true;
                    int(errno_of_ended(why))
                }
                _ => int(0),
            },
            (libc::SOL_SOCKET, libc::SO_TYPE) => int(libc::SOCK_STREAM),
            (libc::SOL_SOCKET, libc::SO_DOMAIN) => int(libc::AF_INET),
            (libc::SOL_SOCKET, libc::SO_PROTOCOL) => int(libc::IPPROTO_TCP),
            (libc::SOL_SOCKET, libc::SO_REUSEADDR) => int(c_int::from(sock.reuseaddr)),
            (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => int(0),
            (libc::SOL_SOCKET, libc::SO_ACCEPTCONN) => {
                int(c_int::from(matches!(sock.kind, Kind::Listener { .. })))
            }
            (libc::SOL_SOCKET, libc::SO_RCVBUF) => int(sock.rcvbuf),
            (libc::SOL_SOCKET, libc::SO_SNDBUF) => int(sock.sndbuf),
            (libc::SOL_SOCKET, libc::SO_LINGER) => {
                let (on, secs): (c_int, c_int) = sock.linger.map_or((0, 0), |t| (1, t));
                let mut v = on.to_ne_bytes().to_vec();
                v.extend_from_slice(&secs.to_ne_bytes());
                Ok(v)
            }
            (libc::IPPROTO_TCP, libc::TCP_NODELAY) => int(c_int::from(sock.nodelay)),
            // Linux: the send MSS once connected; before, the user MSS if
            // one was set, else the default 536 (TCP_MSS_DEFAULT).
            (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => match conn {
                Some(t) if t.state().is_synchronized() => {
                    int(c_int::try_from(t.send_mss()).unwrap_or(c_int::MAX))
                }
                _ => int(sock.maxseg.map_or(536, c_int::from)),
            },
            _ => Err(libc::ENOPROTOOPT),
        }
    }

    /// setsockopt(2) with the caller's option bytes. SO_RCVBUF, SO_SNDBUF
    /// and TCP_MAXSEG take effect for connections made after they are set
    /// (set them before listen() or connect()); later they are only read
    /// back. SO_RCVBUF/SO_SNDBUF read back doubled, as on Linux.
    pub fn setsockopt(&self, fd: c_int, level: c_int, name: c_int, optval: &[u8]) -> Res<()> {
        if optval.len() < std::mem::size_of::<c_int>() {
            return Err(libc::EINVAL);
        }
        let value = c_int::from_ne_bytes([optval[0], optval[1], optval[2], optval[3]]);
        let mut g = self.lock();
        let Inner { socks, stack, .. } = &mut *g;
        let sock = socks.get_mut(&fd).ok_or(libc::EBADF)?;
        let unconnected = !matches!(sock.kind, Kind::Conn { .. });
        match (level, name) {
            (libc::SOL_SOCKET, libc::SO_REUSEADDR) => sock.reuseaddr = value != 0,
            (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => {}
            (libc::SOL_SOCKET, libc::SO_RCVBUF) => {
                let v = value.max(1152);
                sock.rcvbuf = v.saturating_mul(2);
                if unconnected {
                    sock.rcvbuf_req = usize::try_from(v).ok();
                }
            }
            (libc::SOL_SOCKET, libc::SO_SNDBUF) => {
                let v = value.max(2304);
                sock.sndbuf = v.saturating_mul(2);
                if unconnected {
                    sock.sndbuf_req = usize::try_from(v).ok();
                }
            }
            (libc::SOL_SOCKET, libc::SO_LINGER) => {
                let Some(l) = optval.get(4..8) else {
                    return Err(libc::EINVAL);
                };
                let secs = c_int::from_ne_bytes([l[0], l[1], l[2], l[3]]);
                sock.linger = (value != 0).then_some(secs.max(0));
            }
            (libc::IPPROTO_TCP, libc::TCP_NODELAY) => {
                sock.nodelay = value != 0;
                if let Kind::Conn { id } = sock.kind {
                    if let Some(tcb) = stack.tcb_mut(id) {
                        tcb.set_nagle(value == 0);
                    }
                }
            }
            (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => {
                if !(88..=32767).contains(&value) {
                    return Err(libc::EINVAL);
                }
                sock.maxseg = u16::try_from(value).ok();
            }
            _ => return Err(libc::ENOPROTOOPT),
        }
        g.flush();
        self.notify(&mut g);
        Ok(())
    }

    /// fcntl(2): F_GETFL/F_SETFL (O_NONBLOCK), F_GETFD/F_SETFD.
    pub fn fcntl(&self, fd: c_int, cmd: c_int, arg: libc::c_ulong) -> Res<c_int> {
        let mut g = self.lock();
        let sock = g.sock(fd)?;
        match cmd {
            libc::F_GETFL => Ok(libc::O_RDWR | if sock.nonblock { libc::O_NONBLOCK } else { 0 }),
            libc::F_SETFL => {
                // The flag bits are an int; higher bits of the argument are padding.
                sock.nonblock = (arg as c_int) & libc::O_NONBLOCK != 0;
                Ok(0)
            }
            libc::F_GETFD => Ok(libc::FD_CLOEXEC),
            libc::F_SETFD => Ok(0),
            _ => Err(libc::EINVAL),
        }
    }

    /// ioctl(2) requests with an int argument: FIONREAD/SIOCINQ, SIOCOUTQ
    /// (answers) and FIONBIO (takes `value`). Returns the answer.
    pub fn ioctl(&self, fd: c_int, request: libc::c_ulong, value: c_int) -> Res<c_int> {
        let mut g = self.lock();
        let Inner { socks, stack, .. } = &mut *g;
        let sock = socks.get_mut(&fd).ok_or(libc::EBADF)?;
        let conn = match sock.kind {
            Kind::Conn { id } => stack.tcb(id),
            _ => None,
        };
        let listening = matches!(sock.kind, Kind::Listener { .. });
        let clamp = |n: usize| c_int::try_from(n).unwrap_or(c_int::MAX);
        match request {
            libc::FIONREAD if listening => Err(libc::EINVAL),
            libc::FIONREAD => Ok(conn.map_or(0, |t| clamp(t.recv_queued()))),
            libc::TIOCOUTQ if listening => Err(libc::EINVAL),
            libc::TIOCOUTQ => Ok(conn.map_or(0, |t| clamp(t.send_queued()))),
            libc::FIONBIO => {
                sock.nonblock = value != 0;
                Ok(value)
            }
            _ => Err(libc::ENOTTY),
        }
    }

    fn revents(g: &mut Inner, fd: c_int, events: i16) -> i16 {
        if fd < 0 {
            return 0;
        }
        if !g.socks.contains_key(&fd) {
            if !g.pipes.contains_key(&fd) {
                return libc::POLLNVAL;
            }
            // A pipe: ask the kernel, without waiting.
            let mut p = libc::pollfd {
                fd,
                events,
                revents: 0,
            };
            // SAFETY: one valid pollfd; a zero timeout does not block.
            let r = unsafe { libc::poll(&mut p, 1, 0) };
            return if r < 0 { libc::POLLNVAL } else { p.revents };
        }
        g.pull_accepts(fd);
        let Inner { socks, stack, .. } = g;
        let Some(sock) = socks.get(&fd) else {
            return libc::POLLNVAL;
        };
        let m = match &sock.kind {
            Kind::Fresh => libc::POLLOUT | libc::POLLWRNORM | libc::POLLHUP,
            Kind::Listener { ready, .. } => {
                if ready.is_empty() {
                    0
                } else {
                    libc::POLLIN | libc::POLLRDNORM
                }
            }
            Kind::Conn { id } => match stack.tcb(*id) {
                None => libc::POLLHUP,
                Some(t) => {
                    let mut m = 0;
                    if t.can_recv() {
                        m |= libc::POLLIN | libc::POLLRDNORM;
                    }
                    let st = t.state();
                    if st.is_synchronized() && t.can_send() {
                        m |= libc::POLLOUT | libc::POLLWRNORM;
                    }
                    // The peer's FIN (or the end of the connection) shuts
                    // our receiving side: POLLRDHUP, as Linux's tcp_poll.
                    if matches!(
                        st,
                        State::CloseWait
                            | State::LastAck
                            | State::Closing
                            | State::TimeWait
                            | State::Closed
                    ) {
                        m |= libc::POLLRDHUP;
                    }
                    if st == State::Closed {
                        m |= libc::POLLHUP;
                        if t.error().is_some() && !sock.error_reported {
                            m |= libc::POLLERR;
                        }
                    }
                    m
                }
            },
        };
        m & (events | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL)
    }

    /// pipe(2): a kernel pipe (O_CLOEXEC), read end first.
    pub fn pipe(&self) -> Res<[c_int; 2]> {
        let mut fds: [c_int; 2] = [-1; 2];
        // SAFETY: fds has room for the two ints pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EMFILE));
        }
        let mut g = self.lock();
        for fd in fds {
            // SAFETY: pipe2 just returned these fds and nothing else owns them.
            g.pipes.insert(fd, unsafe { OwnedFd::from_raw_fd(fd) });
        }
        Ok(fds)
    }

    /// True if `fd` is one of the pipes [`Adapter::pipe`] made: the caller
    /// passes read, write and fcntl on it to the kernel.
    pub fn is_pipe(&self, fd: c_int) -> bool {
        self.lock().pipes.contains_key(&fd)
    }

    /// poll(2) over `fds`; a negative timeout waits forever. Returns how many
    /// entries have events.
    pub fn poll(&self, fds: &mut [libc::pollfd], timeout_ms: c_int) -> Res<c_int> {
        let mut g = self.lock();
        let deadline =
            (timeout_ms > 0).then(|| g.now_us() + u64::try_from(timeout_ms).unwrap_or(0) * 1000);
        loop {
            let mut n = 0;
            for p in fds.iter_mut() {
                p.revents = Self::revents(&mut g, p.fd, p.events);
                if p.revents != 0 {
                    n += 1;
                }
            }
            if n > 0 || timeout_ms == 0 || deadline.is_some_and(|d| g.now_us() >= d) {
                return Ok(n);
            }
            g = self.block(g, deadline);
        }
    }

    /// Forgets every socket without closing its reserved fd: packetdrill
    /// close()s the fds a script leaves open itself, before it frees us, so
    /// closing them again could hit an fd number that was reused meanwhile.
    pub fn forget_fds(&self) {
        let mut g = self.lock();
        for (_, s) in g.socks.drain() {
            let _ = s.fd.into_raw_fd();
        }
        for (_, e) in g.epolls.drain() {
            let _ = e.fd.into_raw_fd();
        }
    }

    // ------------------------------------------------------------------
    // epoll
    // ------------------------------------------------------------------

    /// epoll_create(2): a new epoll instance (EINVAL for a size below 1).
    pub fn epoll_create(&self, size: c_int) -> Res<c_int> {
        if size <= 0 {
            return Err(libc::EINVAL);
        }
        let fd = Inner::reserve_fd()?;
        let raw = fd.as_raw_fd();
        self.lock().epolls.insert(
            raw,
            Epoll {
                fd,
                interest: BTreeMap::new(),
            },
        );
        Ok(raw)
    }

    /// epoll_ctl(2) on one of our sockets; `ev` is (events, data), needed
    /// for ADD and MOD.
    pub fn epoll_ctl(&self, epfd: c_int, op: c_int, fd: c_int, ev: Option<(u32, u64)>) -> Res<()> {
        let mut g = self.lock();
        if !g.epolls.contains_key(&epfd) {
            return Err(if g.socks.contains_key(&epfd) {
                libc::EINVAL
            } else {
                libc::EBADF
            });
        }
        if fd == epfd {
            return Err(libc::EINVAL);
        }
        if !g.socks.contains_key(&fd) {
            // Nested epoll instances are not supported.
            return Err(if g.epolls.contains_key(&fd) {
                libc::EPERM
            } else {
                libc::EBADF
            });
        }
        let ep = g.epolls.get_mut(&epfd).ok_or(libc::EBADF)?;
        match op {
            libc::EPOLL_CTL_ADD | libc::EPOLL_CTL_MOD => {
                let (events, data) = ev.ok_or(libc::EFAULT)?;
                let entry = Interest {
                    events,
                    data,
                    disarmed: false,
                    last: 0,
                    queues: (0, usize::MAX),
                };
                let exists = ep.interest.contains_key(&fd);
                match (op == libc::EPOLL_CTL_ADD, exists) {
                    (true, true) => return Err(libc::EEXIST),
                    (false, false) => return Err(libc::ENOENT),
                    _ => {}
                }
                ep.interest.insert(fd, entry);
            }
            libc::EPOLL_CTL_DEL => {
                ep.interest.remove(&fd).ok_or(libc::ENOENT)?;
            }
            _ => return Err(libc::EINVAL),
        }
        self.notify(&mut g);
        Ok(())
    }

    /// The ready events of `epfd`'s interest list, at most `max`, as
    /// (events, data); updates edge-triggered and one-shot entries.
    fn epoll_ready(g: &mut Inner, epfd: c_int, max: usize) -> Res<Vec<(u32, u64)>> {
        let fds: Vec<c_int> = g
            .epolls
            .get(&epfd)
            .ok_or(libc::EBADF)?
            .interest
            .keys()
            .copied()
            .collect();
        let mut out = Vec::new();
        for fd in fds {
            if out.len() >= max {
                break;
            }
            // Every poll bit has the same value as its EPOLL* twin on Linux.
            let all = libc::POLLIN
                | libc::POLLPRI
                | libc::POLLOUT
                | libc::POLLRDNORM
                | libc::POLLWRNORM
                | libc::POLLRDHUP;
            let mask = Self::revents(g, fd, all) as u16 as u32;
            let queues = match g.socks.get(&fd).map(|s| &s.kind) {
                Some(Kind::Conn { id }) => g
                    .stack
                    .tcb(*id)
                    .map_or((0, 0), |t| (t.recv_queued(), t.send_queued())),
                _ => (0, 0),
            };
            let Some(e) = g
                .epolls
                .get_mut(&epfd)
                .and_then(|ep| ep.interest.get_mut(&fd))
            else {
                continue;
            };
            if e.disarmed {
                continue;
            }
            let ready = mask & (e.events | libc::EPOLLERR as u32 | libc::EPOLLHUP as u32);
            let report = if e.events & libc::EPOLLET as u32 != 0 {
                let new_bits = ready & !e.last != 0;
                let new_data = ready & libc::EPOLLIN as u32 != 0 && queues.0 > e.queues.0;
                let new_room = ready & libc::EPOLLOUT as u32 != 0 && queues.1 < e.queues.1;
                e.last = ready;
                e.queues = queues;
                new_bits || new_data || new_room
            } else {
                ready != 0
            };
            if report && ready != 0 {
                if e.events & libc::EPOLLONESHOT as u32 != 0 {
                    e.disarmed = true;
                }
                out.push((ready, e.data));
            }
        }
        Ok(out)
    }

    /// epoll_wait(2): level-triggered by default, EPOLLET and EPOLLONESHOT
    /// honoured; a negative timeout waits forever.
    pub fn epoll_wait(&self, epfd: c_int, max: c_int, timeout_ms: c_int) -> Res<Vec<(u32, u64)>> {
        if max <= 0 {
            return Err(libc::EINVAL);
        }
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        let mut g = self.lock();
        if !g.epolls.contains_key(&epfd) {
            return Err(if g.socks.contains_key(&epfd) {
                libc::EINVAL
            } else {
                libc::EBADF
            });
        }
        let deadline =
            (timeout_ms > 0).then(|| g.now_us() + u64::try_from(timeout_ms).unwrap_or(0) * 1000);
        loop {
            let ready = Self::epoll_ready(&mut g, epfd, max)?;
            if !ready.is_empty() || timeout_ms == 0 || deadline.is_some_and(|d| g.now_us() >= d) {
                return Ok(ready);
            }
            g = self.block(g, deadline);
        }
    }

    /// The stack's address.
    pub fn addr(&self) -> Ipv4Addr {
        self.lock().stack.addr()
    }

    /// The reserved fd of socket `fd` is still open (for tests).
    pub fn has_socket(&self, fd: c_int) -> bool {
        self.lock()
            .socks
            .get(&fd)
            .is_some_and(|s| s.fd.as_raw_fd() == fd)
    }
}
