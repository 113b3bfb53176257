//! The errno Linux reports for each error of the core.

use std::io;

use utcp::error::{Error, TcpError};

use super::Errno;

/// The errno Linux returns where the core reports `e`.
pub fn errno_of_error(e: Error) -> Errno {
    match e {
        Error::WouldBlock => libc::EAGAIN,
        Error::NotConnected => libc::ENOTCONN,
        Error::SendShutdown => libc::EPIPE,
        Error::Ended(why) => errno_of_ended(why),
        Error::PortInUse(_) | Error::TupleInUse(..) | Error::NoEphemeralPort => libc::EADDRINUSE,
        Error::PortZero | Error::BadRemote(_) | Error::NotAnyIp => libc::EINVAL,
    }
}

/// The errno of a connection that a reset or a timeout ended.
pub fn errno_of_ended(e: TcpError) -> Errno {
    match e {
        TcpError::Refused => libc::ECONNREFUSED,
        TcpError::Reset => libc::ECONNRESET,
        TcpError::TimedOut => libc::ETIMEDOUT,
    }
}

/// Maps an error from the core to the errno Linux would report.
pub fn errno_of(kind: io::ErrorKind) -> Errno {
    use io::ErrorKind as K;
    match kind {
        K::WouldBlock => libc::EAGAIN,
        K::ConnectionRefused => libc::ECONNREFUSED,
        K::ConnectionReset => libc::ECONNRESET,
        K::ConnectionAborted => libc::ECONNABORTED,
        K::TimedOut => libc::ETIMEDOUT,
        K::BrokenPipe => libc::EPIPE,
        K::NotConnected => libc::ENOTCONN,
        K::AddrInUse => libc::EADDRINUSE,
        K::AddrNotAvailable => libc::EADDRNOTAVAIL,
        K::InvalidInput => libc::EINVAL,
        K::PermissionDenied => libc::EACCES,
        _ => libc::EIO,
    }
}
