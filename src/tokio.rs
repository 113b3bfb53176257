//! The async API for tokio (cargo feature `tokio`): [`TcpListener`] and
//! [`TcpStream`] shaped like `tokio::net`'s, over the same
//! [`NetStack`] (and so the same sans-IO core and
//! the same driver) as the blocking API.
//!
//! No thread per connection and no thread of tokio's is ever blocked: a
//! call that would wait registers the task's waker with the runtime for
//! that connection or listener, and the runtime wakes exactly those tasks
//! when the stack reports an event for it (the same targeted wake-ups that
//! blocking threads get, `src/socket/wake.rs`). The device is driven by the
//! stack's own driver ([`Driver`](crate::socket::Driver)), outside tokio.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use utcp::socket::NetStack;
//! use utcp::stack::StackConfig;
//!
//! let net = NetStack::tun("utcp0", StackConfig::new("10.77.0.2".parse().unwrap()))?;
//! let listener = utcp::tokio::TcpListener::bind(&net, 7).await?;
//! loop {
//!     let (mut stream, _peer) = listener.accept().await?;
//!     tokio::spawn(async move {
//!         let mut buf = [0u8; 4096];
//!         while let Ok(n) = stream.read(&mut buf).await {
//!             if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
//!                 break;
//!             }
//!         }
//!         let _ = stream.shutdown().await;
//!     });
//! }
//! # }
//! ```

use std::future::poll_fn;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::socket::{self, NetStack};

/// A listening port of a [`NetStack`], accepting asynchronously.
#[derive(Debug)]
pub struct TcpListener {
    inner: socket::TcpListener,
}

impl TcpListener {
    /// Listens on `port` of the stack's address with the default backlog
    /// ([`socket::DEFAULT_BACKLOG`]). Errors as the blocking
    /// [`socket::TcpListener::bind`] (`AddrInUse`, ...).
    pub async fn bind(net: &NetStack, port: u16) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: socket::TcpListener::bind(net, port)?,
        })
    }

    /// The any-IP listener of a stack in any-IP mode
    /// ([`socket::TcpListener::bind_any`]): connections to every address
    /// and port; each stream's `local_addr()` is the original destination.
    pub async fn bind_any(net: &NetStack) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: socket::TcpListener::bind_any(net)?,
        })
    }

    /// Waits for the next connection that completed its handshake.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = poll_fn(|cx| self.inner.poll_accept(cx)).await?;
        Ok((TcpStream { inner: stream }, peer))
    }

    /// The address and port listened on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A TCP connection of a [`NetStack`] with tokio's `AsyncRead` and
/// `AsyncWrite`. `shutdown().await` sends our FIN (the read side stays
/// open); dropping it closes the connection as the blocking
/// [`socket::TcpStream`] does.
#[derive(Debug)]
pub struct TcpStream {
    inner: socket::TcpStream,
}

impl TcpStream {
    /// Opens a connection to `addr` (IPv4 only: anything else is
    /// `InvalidInput`); fails with `ConnectionRefused` on a RST and
    /// `TimedOut` when the SYN retransmissions give up.
    pub async fn connect(net: &NetStack, addr: impl Into<SocketAddr>) -> io::Result<TcpStream> {
        let inner = socket::TcpStream::connect_started(net, addr.into())?;
        poll_fn(|cx| inner.poll_connected(cx)).await?;
        Ok(TcpStream { inner })
    }

    /// Our address and port.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The peer's address and port.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The blocking stream underneath, for its other calls (`info`,
    /// `set_nodelay`, `set_keepalive`, ...). Its blocking `read` and
    /// `write` would block the task's thread: use this type's instead.
    pub fn as_blocking(&self) -> &socket::TcpStream {
        &self.inner
    }
}

impl TcpStream {
    fn read_into(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let dst = buf.initialize_unfilled();
        match self.inner.poll_op(cx, |tcb| tcb.recv(dst)) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn write_from(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.inner.poll_op(cx, |tcb| tcb.send(data))
    }

    /// Resets the connection (a RST to the peer, queued data discarded),
    /// as [`socket::TcpStream::abort`].
    pub fn abort(&self) -> io::Result<()> {
        self.inner.abort()
    }
}

/// Implements `AsyncRead` and `AsyncWrite` for `$t` through the
/// `read_into`/`write_from` above: for the stream and, like `std::net`'s
/// `impl Read for &TcpStream`, for a shared reference to it, so that one
/// task can read and write at once (`let (mut r, mut w) = (&s, &s);`).
macro_rules! async_io {
    ($t:ty) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                self.read_into(cx, buf)
            }
        }

        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                data: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.write_from(cx, data)
            }

            /// Nothing to do: written data is queued in the stack, which
            /// sends it as the windows allow.
            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            /// Sends our FIN after the queued data (`shutdown(Write)`).
            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.inner.shutdown(Shutdown::Write))
            }
        }
    };
}

async_io!(TcpStream);
async_io!(&TcpStream);
