//! The socket table's entries: what a socket is, its per-socket state, and
//! making and finding sockets.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use libc::c_int;
use utcp::stack::ConnId;

use super::{Inner, Res};

/// What a socket is.
#[derive(Debug)]
pub(super) enum Kind {
    /// Created, maybe bound; neither listening nor connected.
    Fresh,
    /// Listening on `port`; `ready` holds connections taken from the stack's
    /// accept queue (by poll or accept) and not yet handed out.
    Listener { port: u16, ready: VecDeque<ConnId> },
    /// A connection (active or accepted).
    Conn { id: ConnId },
}

#[derive(Debug)]
pub(super) struct Sock {
    /// The kernel fd reserved for this socket (an eventfd): its number is
    /// the socket's number.
    pub(super) fd: OwnedFd,
    pub(super) kind: Kind,
    pub(super) nonblock: bool,
    pub(super) reuseaddr: bool,
    pub(super) nodelay: bool,
    /// SO_RCVBUF as read back (Linux doubles the value set).
    pub(super) rcvbuf: c_int,
    /// SO_SNDBUF as read back (doubled too).
    pub(super) sndbuf: c_int,
    /// SO_RCVBUF as set before listen/connect: the receive buffer (and so
    /// the largest window and our window-scale shift).
    pub(super) rcvbuf_req: Option<usize>,
    /// SO_SNDBUF as set before listen/connect: the send buffer.
    pub(super) sndbuf_req: Option<usize>,
    /// TCP_MAXSEG as set (user MSS): caps the MSS we announce and send.
    pub(super) maxseg: Option<u16>,
    /// SO_LINGER: `Some(seconds)` when on.
    pub(super) linger: Option<c_int>,
    /// SO_KEEPALIVE, TCP_KEEPIDLE/KEEPINTVL/KEEPCNT, TCP_USER_TIMEOUT.
    pub(super) keep: KeepOpts,
    /// Local port from bind() or autobind.
    pub(super) port: Option<u16>,
    /// A connect() is under way and no connect() call has seen it finish yet.
    pub(super) connecting: bool,
    /// The connection's error was already reported once (by a call or
    /// SO_ERROR); afterwards reads see EOF and writes EPIPE, as on Linux.
    pub(super) error_reported: bool,
}

/// A socket's keepalive and user-timeout options, as Linux keeps them
/// (seconds, a count, milliseconds); accepted sockets inherit them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct KeepOpts {
    pub(super) on: bool,
    pub(super) idle: c_int,
    pub(super) interval: c_int,
    pub(super) count: c_int,
    pub(super) user_timeout_ms: c_int,
}

impl Default for KeepOpts {
    /// Linux's defaults: 7200 s, 75 s, 9 probes; no user timeout.
    fn default() -> Self {
        KeepOpts {
            on: false,
            idle: 7200,
            interval: 75,
            count: 9,
            user_timeout_ms: 0,
        }
    }
}

impl KeepOpts {
    /// The connection's keepalive, if on.
    pub(super) fn keepalive(&self) -> Option<utcp::tcb::Keepalive> {
        let secs = |s: c_int| std::time::Duration::from_secs(u64::try_from(s).unwrap_or(1));
        self.on.then(|| utcp::tcb::Keepalive {
            idle: secs(self.idle),
            interval: secs(self.interval),
            count: u32::try_from(self.count).unwrap_or(1),
        })
    }

    /// The connection's user timeout, if set.
    pub(super) fn user_timeout(&self) -> Option<std::time::Duration> {
        let ms = u64::try_from(self.user_timeout_ms).unwrap_or(0);
        (ms > 0).then(|| std::time::Duration::from_millis(ms))
    }
}

impl Inner {
    pub(super) fn sock(&mut self, fd: c_int) -> Res<&mut Sock> {
        self.socks.get_mut(&fd).ok_or(libc::EBADF)
    }

    /// A fresh kernel fd (an eventfd) whose number names a socket or an
    /// epoll instance, so packetdrill can close(2) it.
    pub(super) fn reserve_fd() -> Res<OwnedFd> {
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

    pub(super) fn new_sock(&mut self, kind: Kind, nonblock: bool) -> Res<c_int> {
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
                keep: KeepOpts::default(),
                port: None,
                connecting: false,
                error_reported: false,
            },
        );
        Ok(raw)
    }
}
