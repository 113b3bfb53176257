//! [`TcpStream`]: one connection, blocking reads and writes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::Error;
use crate::stack::ConnId;
use crate::state::State;
use crate::tcb::{ConnInfo, ConnStats};

use super::errors::io_kind;
use super::errors::would_block;
use super::runtime::{dead_error, Runtime};
use super::wake::Source;
use super::NetStack;

struct StreamInner {
    rt: Arc<Runtime>,
    id: ConnId,
    read_timeout: Mutex<Option<Duration>>,
    write_timeout: Mutex<Option<Duration>>,
    /// How often a thread blocked in `read` or `write` woke up (tests).
    wakeups: AtomicU64,
    /// `read` and `write` return `WouldBlock` instead of waiting.
    nonblocking: AtomicBool,
}

impl Drop for StreamInner {
    fn drop(&mut self) {
        let shared = &self.rt.shared;
        let mut core = shared.lock();
        core.stack.release(self.id);
        core.polls.forget(Source::Conn(self.id));
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
    pub(super) fn from_id(rt: Arc<Runtime>, id: ConnId) -> TcpStream {
        TcpStream {
            inner: Arc::new(StreamInner {
                rt,
                id,
                read_timeout: Mutex::new(None),
                write_timeout: Mutex::new(None),
                wakeups: AtomicU64::new(0),
                nonblocking: AtomicBool::new(false),
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

    /// Starts a connection to `addr` and returns at once, like mio's
    /// `TcpStream::connect`: a non-blocking stream whose handshake is under
    /// way. Register it with a [`Poll`](super::Poll) for `WRITABLE`: it is
    /// writable once established; if the handshake fails the poll reports
    /// it as hung up, and a read returns the reason (`ConnectionRefused`,
    /// `TimedOut`). Reads and writes say `WouldBlock` until then.
    pub fn connect_nonblocking(
        net: &NetStack,
        addr: impl Into<SocketAddr>,
    ) -> io::Result<TcpStream> {
        let (stream, core) = TcpStream::start_connect(net, addr.into())?;
        drop(core);
        stream.set_nonblocking(true)?;
        Ok(stream)
    }

    /// Sends the SYN: the stream (it owns the connection from now on) and
    /// the still-locked core.
    fn start_connect(
        net: &NetStack,
        addr: SocketAddr,
    ) -> io::Result<(TcpStream, std::sync::MutexGuard<'_, super::runtime::Core>)> {
        let SocketAddr::V4(remote) = addr else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{addr} is not an IPv4 address; utcp speaks IPv4 only"),
            ));
        };
        let shared = &net.rt.shared;
        let mut core = shared.lock();
        if let Some(msg) = &core.dead {
            return Err(dead_error(msg));
        }
        let now = shared.now();
        let id = core.stack.connect(now, remote)?;
        shared.flush_conn(&mut core, id);
        Ok((TcpStream::from_id(net.rt.clone(), id), core))
    }

    fn connect_inner(
        net: &NetStack,
        addr: SocketAddr,
        timeout: Option<Duration>,
    ) -> io::Result<TcpStream> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let shared = &net.rt.shared;
        let (stream, mut core) = TcpStream::start_connect(net, addr)?;
        let id = stream.inner.id;
        let remote = addr;
        // Every return below drops `core` first: dropping `stream` while the
        // core is still locked would deadlock in `StreamInner::drop`.
        loop {
            let Some(tcb) = core.stack.tcb(id) else {
                drop(core);
                return Err(not_connected());
            };
            if let Some(outcome) = connect_outcome(tcb) {
                drop(core);
                return outcome.map(|()| stream);
            }
            if let Some(msg) = &core.dead {
                let err = dead_error(msg);
                drop(core);
                return Err(err);
            }
            let (g, timed_out) = shared.wait_on(core, Source::Conn(id), deadline);
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

    /// How many times a thread blocked in `read` or `write` on this
    /// connection woke up (a counter for the runtime's tests).
    #[doc(hidden)]
    pub fn debug_wakeups(&self) -> u64 {
        self.inner.wakeups.load(Ordering::Relaxed)
    }

    pub(super) fn runtime(&self) -> &Arc<Runtime> {
        &self.inner.rt
    }

    pub(super) fn conn_id(&self) -> ConnId {
        self.inner.id
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
        // A reader or writer of this connection in another thread must see it.
        shared.wake_source(&mut core, Source::Conn(self.inner.id));
        Ok(())
    }

    /// Resets the connection (RFC 9293 section 3.10.5, ABORT): a RST goes
    /// to the peer, queued data in both directions is discarded, and later
    /// calls on this stream fail. What `SO_LINGER` with a zero timeout and
    /// `close` do on a kernel socket; a relay uses it to pass a reset on.
    /// `NotConnected` if the connection is already gone.
    pub fn abort(&self) -> io::Result<()> {
        let shared = &self.inner.rt.shared;
        let mut core = shared.lock();
        let tcb = core
            .stack
            .tcb_mut(self.inner.id)
            .ok_or_else(not_connected)?;
        if tcb.state() == State::Closed {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection is already closed",
            ));
        }
        tcb.abort();
        shared.flush_conn(&mut core, self.inner.id);
        shared.wake_source(&mut core, Source::Conn(self.inner.id));
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

    /// Turns keepalive on with `keepalive`'s idle time, interval and probe
    /// count, or off with `None` (the default): a peer that stays silent
    /// through all probes ends the connection with `TimedOut` (see
    /// [`crate::tcb::Keepalive`]). A zero idle time or interval, or a zero
    /// count, is `InvalidInput`.
    pub fn set_keepalive(&self, keepalive: Option<crate::tcb::Keepalive>) -> io::Result<()> {
        if let Some(ka) = keepalive {
            if ka.idle.is_zero() || ka.interval.is_zero() || ka.count == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "keepalive idle time, interval and count must not be zero",
                ));
            }
        }
        self.change_timers(|t, now| t.set_keepalive(now, keepalive))
    }

    /// The keepalive settings, if on.
    pub fn keepalive(&self) -> io::Result<Option<crate::tcb::Keepalive>> {
        self.with_tcb(|t| t.keepalive())
    }

    /// Sets the user timeout (RFC 5482, Linux's `TCP_USER_TIMEOUT`): sent
    /// data unacknowledged for this long ends the connection with
    /// `TimedOut`; `None` (the default) leaves it to the retransmission
    /// count. Zero is `InvalidInput`.
    pub fn set_user_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the user timeout must not be zero (use None to turn it off)",
            ));
        }
        self.change_timers(|t, _| t.set_user_timeout(timeout))
    }

    /// The user timeout, if set.
    pub fn user_timeout(&self) -> io::Result<Option<Duration>> {
        self.with_tcb(|t| t.user_timeout())
    }

    /// Applies `f` to the connection and lets the driver know its timers
    /// may have moved.
    fn change_timers(
        &self,
        f: impl FnOnce(&mut crate::tcb::Tcb, crate::time::Instant),
    ) -> io::Result<()> {
        let shared = &self.inner.rt.shared;
        let now = shared.now();
        let mut core = shared.lock();
        let tcb = core
            .stack
            .tcb_mut(self.inner.id)
            .ok_or_else(not_connected)?;
        f(tcb, now);
        shared.flush_conn(&mut core, self.inner.id);
        Ok(())
    }

    /// In non-blocking mode (true) `read` and `write` return `WouldBlock`
    /// instead of waiting (for all handles of the connection).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
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
            if let Some(done) = self.try_op(&mut core, &mut op) {
                return done;
            }
            if self.inner.nonblocking.load(Ordering::Relaxed) {
                return Err(would_block());
            }
            let (g, timed_out) = shared.wait_on(core, Source::Conn(self.inner.id), deadline);
            self.inner.wakeups.fetch_add(1, Ordering::Relaxed);
            core = g;
            if timed_out {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{what} timed out"),
                ));
            }
        }
    }

    #[cfg(feature = "tokio")]
    /// Runs `op` once for an async API: `Pending` (with the task
    /// registered for the connection's next event) where a blocking call
    /// would wait. Whatever `op` produced is transmitted.
    pub(crate) fn poll_op<T>(
        &self,
        cx: &mut std::task::Context<'_>,
        op: impl FnOnce(&mut crate::tcb::Tcb) -> Result<T, Error>,
    ) -> std::task::Poll<io::Result<T>> {
        let mut core = self.inner.rt.shared.lock();
        match self.try_op(&mut core, op) {
            Some(done) => std::task::Poll::Ready(done),
            None => {
                core.waiters
                    .park_waker(Source::Conn(self.inner.id), cx.waker());
                std::task::Poll::Pending
            }
        }
    }

    /// Runs `op` once under the core lock: `None` if it would block (and
    /// the device is alive), else its outcome; what it produced is
    /// transmitted. The blocking calls and the async API both go through it.
    fn try_op<T>(
        &self,
        core: &mut super::runtime::Core,
        op: impl FnOnce(&mut crate::tcb::Tcb) -> Result<T, Error>,
    ) -> Option<io::Result<T>> {
        let Some(tcb) = core.stack.tcb_mut(self.inner.id) else {
            return Some(Err(not_connected()));
        };
        match op(tcb) {
            Ok(v) => {
                // A write queued data; a read may have reopened the window.
                self.inner.rt.shared.flush_conn(core, self.inner.id);
                Some(Ok(v))
            }
            Err(Error::WouldBlock) => core.dead.as_ref().map(|msg| Err(dead_error(msg))),
            Err(e) => Some(Err(e.into())),
        }
    }

    #[cfg(feature = "tokio")]
    /// Starts an active open for an async API ([`poll_connected`](Self::poll_connected)
    /// completes it).
    pub(crate) fn connect_started(net: &NetStack, addr: SocketAddr) -> io::Result<TcpStream> {
        let (stream, core) = TcpStream::start_connect(net, addr)?;
        drop(core);
        Ok(stream)
    }

    #[cfg(feature = "tokio")]
    /// `Ready(Ok)` once the handshake completed, `Ready(Err)` if it failed
    /// (refused, timed out), else `Pending` with the task registered.
    pub(crate) fn poll_connected(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        use std::task::Poll;
        let mut core = self.inner.rt.shared.lock();
        let Some(tcb) = core.stack.tcb(self.inner.id) else {
            return Poll::Ready(Err(not_connected()));
        };
        if let Some(outcome) = connect_outcome(tcb) {
            return Poll::Ready(outcome);
        }
        if let Some(msg) = &core.dead {
            return Poll::Ready(Err(dead_error(msg)));
        }
        core.waiters
            .park_waker(Source::Conn(self.inner.id), cx.waker());
        Poll::Pending
    }

    fn read_impl(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.blocking(&self.inner.read_timeout, "read", |tcb| tcb.recv(buf))
    }

    fn write_impl(&self, data: &[u8]) -> io::Result<usize> {
        self.blocking(&self.inner.write_timeout, "write", |tcb| tcb.send(data))
    }
}

/// How an active open stands: `None` during the handshake, `Some(Ok)` once
/// synchronized, `Some(Err)` if it ended (refused, timed out, aborted).
fn connect_outcome(tcb: &crate::tcb::Tcb) -> Option<io::Result<()>> {
    match tcb.state() {
        State::SynSent | State::SynReceived => None,
        State::Closed => {
            let (kind, why) = match tcb.error() {
                Some(e) => (io_kind(e), e.to_string()),
                None => (
                    io::ErrorKind::ConnectionAborted,
                    "connection aborted".into(),
                ),
            };
            let remote = tcb.remote();
            Some(Err(io::Error::new(
                kind,
                format!("connect to {remote}: {why}"),
            )))
        }
        _ => Some(Ok(())),
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
