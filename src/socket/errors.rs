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

/// The core's errors as `std::io` errors: the kinds `std::net` uses for the
/// same situations, with the core's message.
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e {
            Error::WouldBlock => io::ErrorKind::WouldBlock,
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
