//! Socket options and fd flags: getsockopt, setsockopt, fcntl, ioctl.

use libc::c_int;

use super::sock::{KeepOpts, Kind};
use super::{errno_of_ended, Adapter, Inner, Res};

impl Adapter {
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
            (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => int(c_int::from(sock.keep.on)),
            (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) => int(sock.keep.idle),
            (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL) => int(sock.keep.interval),
            (libc::IPPROTO_TCP, libc::TCP_KEEPCNT) => int(sock.keep.count),
            (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT) => int(sock.keep.user_timeout_ms),
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
        let now = g.stack_now();
        let Inner { socks, stack, .. } = &mut *g;
        let sock = socks.get_mut(&fd).ok_or(libc::EBADF)?;
        let unconnected = !matches!(sock.kind, Kind::Conn { .. });
        if let Some(keep) = keep_option(sock.keep, level, name, value)? {
            sock.keep = keep;
            if let Kind::Conn { id } = sock.kind {
                if let Some(tcb) = stack.tcb_mut(id) {
                    if tcb.keepalive() != keep.keepalive() {
                        tcb.set_keepalive(now, keep.keepalive());
                    }
                    tcb.set_user_timeout(keep.user_timeout());
                }
            }
            g.flush();
            self.notify(&mut g);
            return Ok(());
        }
        match (level, name) {
            (libc::SOL_SOCKET, libc::SO_REUSEADDR) => sock.reuseaddr = value != 0,
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
}

/// The keepalive options with `value` set, if `(level, name)` is one of
/// them; EINVAL for values Linux refuses (idle and interval 1..=32767 s,
/// count 1..=127, a user timeout >= 0 ms).
fn keep_option(
    mut keep: KeepOpts,
    level: c_int,
    name: c_int,
    value: c_int,
) -> Res<Option<KeepOpts>> {
    let check = |ok: bool| if ok { Ok(value) } else { Err(libc::EINVAL) };
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => keep.on = value != 0,
        (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) => keep.idle = check((1..=32767).contains(&value))?,
        (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL) => {
            keep.interval = check((1..=32767).contains(&value))?
        }
        (libc::IPPROTO_TCP, libc::TCP_KEEPCNT) => keep.count = check((1..=127).contains(&value))?,
        (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT) => keep.user_timeout_ms = check(value >= 0)?,
        _ => return Ok(None),
    }
    Ok(Some(keep))
}
