//! The relay's kernel-side sockets: connecting (directly, with an optional
//! `SO_MARK`, or through SOCKS5) and resetting.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::Duration;

use ::tokio::net::{TcpSocket, TcpStream};

use super::socks5::{self, Socks5};

/// How outgoing connections are made.
#[derive(Clone, Debug, Default)]
pub struct Outbound {
    /// Through this SOCKS5 proxy instead of directly.
    pub socks5: Option<Socks5>,
    /// `SO_MARK` for every outgoing socket (needs CAP_NET_ADMIN), so
    /// policy routing (`ip rule add fwmark M table T`) can keep them from
    /// being routed back into the TUN device.
    pub mark: Option<u32>,
    /// Bound on the connect, SOCKS5 handshake included.
    pub connect_timeout: Duration,
}

impl Outbound {
    /// The address the outgoing socket connects to: the proxy's or `dst`.
    pub fn target(&self, dst: SocketAddrV4) -> SocketAddr {
        match &self.socks5 {
            Some(p) => p.proxy,
            None => SocketAddr::V4(dst),
        }
    }

    /// A socket for an outgoing connection to `target`, bound to an
    /// ephemeral port already (so the relay knows the port before the
    /// connect: see the loop check in `Forwarder`), with the mark set.
    pub fn socket(&self, target: SocketAddr) -> io::Result<TcpSocket> {
        let (sock, any) = match target {
            SocketAddr::V4(_) => (TcpSocket::new_v4()?, SocketAddr::from(([0u8; 4], 0))),
            SocketAddr::V6(_) => (TcpSocket::new_v6()?, SocketAddr::from(([0u16; 8], 0))),
        };
        if let Some(mark) = self.mark {
            set_int_opt(&sock, libc::SO_MARK, mark as libc::c_int, "SO_MARK")?;
        }
        sock.set_nodelay(true)?;
        sock.bind(any)?;
        Ok(sock)
    }

    /// Connects `sock` (from [`Outbound::socket`]) to `dst`, the original
    /// destination: directly, or to the proxy and through it.
    pub async fn connect(&self, sock: TcpSocket, dst: SocketAddrV4) -> io::Result<TcpStream> {
        let attempt = async {
            let mut s = sock.connect(self.target(dst)).await?;
            if let Some(p) = &self.socks5 {
                socks5::handshake(&mut s, p.credentials.as_ref(), dst).await?;
            }
            Ok(s)
        };
        match ::tokio::time::timeout(self.connect_timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {:?}", self.connect_timeout),
            )),
        }
    }
}

/// Makes a socket's close send a RST (`SO_LINGER` with a zero timeout:
/// the kernel discards what is queued and resets, without blocking).
pub fn set_reset_on_close(s: &impl AsRawFd) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is open for the lifetime of `s`; the option value is
    // a valid `linger` of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    check(rc, "SO_LINGER")
}

fn set_int_opt(s: &TcpSocket, opt: libc::c_int, v: libc::c_int, name: &str) -> io::Result<()> {
    // SAFETY: the fd is open for the lifetime of `s`; the value is a c_int.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    check(rc, name)
}

fn check(rc: libc::c_int, name: &str) -> io::Result<()> {
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    Err(io::Error::new(e.kind(), format!("setsockopt {name}: {e}")))
}
