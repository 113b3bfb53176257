//! [`TcpListener`]: accepting connections.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::errors::would_block;
use super::runtime::{dead_error, Runtime};
use super::stream::TcpStream;
use super::wake::Source;
use super::NetStack;

/// A TCP socket server, listening for connections (like `std::net::TcpListener`).
pub struct TcpListener {
    pub(super) rt: Arc<Runtime>,
    pub(super) port: u16,
    nonblocking: AtomicBool,
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
            nonblocking: AtomicBool::new(false),
        })
    }

    /// The any-IP listener of a stack in any-IP mode
    /// ([`StackConfig::any_ip`](crate::stack::StackConfig::any_ip)): it
    /// accepts connections to every address and port the device receives
    /// (that no other listener holds), and each accepted stream's
    /// `local_addr()` is the destination the client dialled. `InvalidInput`
    /// if the stack is not in any-IP mode, `AddrInUse` if it has one already.
    pub fn bind_any(net: &NetStack) -> io::Result<TcpListener> {
        let mut core = net.rt.shared.lock();
        let tcp = core.stack.tcp_config().clone();
        core.stack.listen_any(DEFAULT_BACKLOG, tcp)?;
        Ok(TcpListener {
            rt: net.rt.clone(),
            port: crate::stack::ANY_PORT,
            nonblocking: AtomicBool::new(false),
        })
    }

    /// The address this listener is bound to (`0.0.0.0:0` for the any-IP
    /// listener).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        if self.port == crate::stack::ANY_PORT {
            return Ok(SocketAddr::V4(SocketAddrV4::new(
                std::net::Ipv4Addr::UNSPECIFIED,
                0,
            )));
        }
        let addr = self.rt.shared.lock().stack.addr();
        Ok(SocketAddr::V4(SocketAddrV4::new(addr, self.port)))
    }

    /// In non-blocking mode (true) [`accept`](Self::accept) returns
    /// `WouldBlock` instead of waiting when no connection is ready.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.nonblocking.store(nonblocking, Ordering::Relaxed);
        Ok(())
    }

    /// Waits for the next established connection (non-blocking mode:
    /// `WouldBlock` if none is ready).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let shared = &self.rt.shared;
        let mut core = shared.lock();
        loop {
            if let Some(ready) = self.take_ready(&mut core)? {
                drop(core);
                return Ok(self.stream_of(ready));
            }
            if self.nonblocking.load(Ordering::Relaxed) {
                return Err(would_block());
            }
            core = shared.wait_on(core, Source::Port(self.port), None).0;
        }
    }

    #[cfg(feature = "tokio")]
    /// [`accept`](Self::accept) for an async API: `Pending` (with the
    /// task registered for the listener's next event) while none is ready.
    pub(crate) fn poll_accept(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<(TcpStream, SocketAddr)>> {
        let mut core = self.rt.shared.lock();
        match self.take_ready(&mut core) {
            Ok(Some(ready)) => {
                drop(core);
                std::task::Poll::Ready(Ok(self.stream_of(ready)))
            }
            Ok(None) => {
                core.waiters.park_waker(Source::Port(self.port), cx.waker());
                std::task::Poll::Pending
            }
            Err(e) => std::task::Poll::Ready(Err(e)),
        }
    }

    /// The next established connection and its peer, if one is ready.
    fn take_ready(
        &self,
        core: &mut super::runtime::Core,
    ) -> io::Result<Option<(crate::stack::ConnId, SocketAddr)>> {
        if let Some(msg) = &core.dead {
            return Err(dead_error(msg));
        }
        let stashed = core.polls.take_stashed(self.port);
        let Some(id) = stashed.or_else(|| core.stack.accept(self.port)) else {
            return Ok(None);
        };
        let peer = core
            .stack
            .tcb(id)
            .map(|t| SocketAddr::V4(t.remote()))
            .ok_or_else(|| io::Error::other("accepted connection vanished"))?;
        Ok(Some((id, peer)))
    }

    fn stream_of(&self, (id, peer): (crate::stack::ConnId, SocketAddr)) -> (TcpStream, SocketAddr) {
        (TcpStream::from_id(self.rt.clone(), id), peer)
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
        core.polls.forget(Source::Port(self.port));
        // Connections a poll took from the queue are reset like the queued.
        for id in core.polls.drain_stash(self.port) {
            if let Some(t) = core.stack.tcb_mut(id) {
                t.abort();
            }
            core.stack.release(id);
        }
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
