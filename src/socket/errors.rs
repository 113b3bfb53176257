//! The core's errors mapped to `std::io` errors.

use std::io;

use crate::error::{Error, TcpError};

/// The `std::io` kind of the reason a connection ended.
pub fn io_kind(e: TcpError) -> io::ErrorKind {
    match e {
        TcpError::Refused => io::ErrorKind::ConnectionRefused,
        TcpError::Reset => io::ErrorKind::ConnectionReset,
        TcpError::TimedOut => io::ErrorKind::TimedOut,
    }
}

/// What a non-blocking call returns instead of waiting: the bare kind (it
/// prints "operation would block", as the core's message does), which
/// unlike `io::Error::new` allocates nothing: a poll loop meets it on most
/// calls.
pub(super) fn would_block() -> io::Error {
    io::Error::from(io::ErrorKind::WouldBlock)
}

/// The core's errors as `std::io` errors: the kinds `std::net` uses for the
/// same situations, with the core's message (`WouldBlock` as
/// the bare kind, which allocates nothing).
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e {
            Error::WouldBlock => return would_block(),
            Error::NotConnected => io::ErrorKind::NotConnected,
            Error::SendShutdown => io::ErrorKind::BrokenPipe,
            Error::Ended(why) => io_kind(why),
            Error::PortInUse(_) | Error::TupleInUse(..) | Error::NoEphemeralPort => {
                io::ErrorKind::AddrInUse
            }
            Error::PortZero | Error::BadRemote(_) | Error::NotAnyIp => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

impl From<TcpError> for io::Error {
    fn from(e: TcpError) -> io::Error {
        Error::Ended(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn would_block_is_the_bare_kind_with_the_same_message() {
        let e = io::Error::from(Error::WouldBlock);
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(e.to_string(), Error::WouldBlock.to_string());
        // The bare kind carries no payload (so no allocation).
        assert!(e.get_ref().is_none());
        let e = would_block();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(e.get_ref().is_none());
        // The others keep the core's error as their payload.
        let e = io::Error::from(Error::NotConnected);
        assert_eq!(e.kind(), io::ErrorKind::NotConnected);
        assert!(e.get_ref().is_some());
    }
}
