//! Connection setup: socket, bind, listen, accept and connect, with the
//! ports, the accept queue and the per-connection TCP settings they need.

use std::collections::VecDeque;
use std::net::SocketAddrV4;

use libc::c_int;
use utcp::error::Error;
use utcp::state::State;
use utcp::tcb::TcpConfig;

use super::sock::{Kind, Sock};
use super::{errno_of_ended, errno_of_error, Adapter, Inner, Res, EPHEMERAL_FIRST};

impl Inner {
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
    pub(super) fn pull_accepts(&mut self, fd: c_int) {
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
        tcp.keepalive = sock.keep.keepalive();
        tcp.user_timeout = sock.keep.user_timeout();
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

impl Adapter {
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
                sock.keep,
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
                s.keep,
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
}
