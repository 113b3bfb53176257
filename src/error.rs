//! The core's typed errors. The sans-IO layers (`tcb`, `stack`) return
//! these; the socket layer turns them into `std::io::Error`s
//! (`impl From<Error> for io::Error` in `src/socket/errors.rs`).

use std::fmt;
use std::net::SocketAddrV4;

pub use crate::tcb::TcpError;

/// Why a call into the stack or a connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not now: the send buffer is full, nothing has arrived yet, or the
    /// handshake is still running. Try again after an event.
    WouldBlock,
    /// The connection is closed (by us, not by a reset or a timeout).
    NotConnected,
    /// Our sending side is shut down: data after `close` or `shutdown(Write)`.
    SendShutdown,
    /// A reset or a timeout ended the connection.
    Ended(TcpError),
    /// A listener holds this port already.
    PortInUse(u16),
    /// A connection with this 4-tuple (ours, theirs) exists already.
    TupleInUse(SocketAddrV4, SocketAddrV4),
    /// Every ephemeral port to this destination is taken.
    NoEphemeralPort,
    /// Port 0 cannot be listened on or connected from.
    PortZero,
    /// Not an address one can connect to: port 0, unspecified, broadcast,
    /// multicast, or our own address.
    BadRemote(SocketAddrV4),
    /// An any-IP listener on a stack without `StackConfig::any_ip`.
    NotAnyIp,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WouldBlock => f.write_str("operation would block"),
            Error::NotConnected => f.write_str("connection is closed"),
            Error::SendShutdown => f.write_str("the sending side of this connection is shut down"),
            Error::Ended(e) => e.fmt(f),
            Error::PortInUse(port) => write!(f, "port {port} is already in use by a listener"),
            Error::TupleInUse(local, remote) => write!(f, "{local} -> {remote} is already in use"),
            Error::NoEphemeralPort => f.write_str("no free ephemeral port for this destination"),
            Error::PortZero => f.write_str("port 0 cannot be used here"),
            Error::BadRemote(remote) => write!(f, "cannot connect to {remote}"),
            Error::NotAnyIp => {
                f.write_str("an any-IP listener needs a stack in any-IP mode (StackConfig::any_ip)")
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<TcpError> for Error {
    fn from(e: TcpError) -> Self {
        Error::Ended(e)
    }
}
