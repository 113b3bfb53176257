//! Why a connection ended: the core's typed errors.

use std::fmt;

/// The reason a connection ended abnormally (RFC 9293 section 3.10's
/// "connection refused", "connection reset", and a retransmission timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpError {
    /// The peer answered our SYN with a RST.
    Refused,
    /// The peer reset an open connection.
    Reset,
    /// Retransmissions went unanswered past the limit.
    TimedOut,
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TcpError::Refused => "connection refused",
            TcpError::Reset => "connection reset by peer",
            TcpError::TimedOut => "connection timed out",
        })
    }
}

impl std::error::Error for TcpError {}
