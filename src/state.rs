//! The eleven connection states of RFC 9293 section 3.3.2.

use std::fmt;

/// A TCP connection state (RFC 9293 section 3.3.2, Figure 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// No connection state at all.
    Closed,
    /// Waiting for a connection request from any remote TCP peer.
    Listen,
    /// Sent a SYN, waiting for a matching SYN.
    SynSent,
    /// Received and sent a SYN, waiting for the ACK of ours.
    SynReceived,
    /// An open connection: data flows both ways.
    Established,
    /// We closed (sent FIN), waiting for its ACK or the peer's FIN.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's FIN.
    FinWait2,
    /// Both sides sent FIN at once; waiting for the ACK of ours.
    Closing,
    /// Both FINs done; waiting 2*MSL so late segments die out.
    TimeWait,
    /// The peer closed; waiting for our application to close.
    CloseWait,
    /// The peer closed first and so did we; waiting for the ACK of our FIN.
    LastAck,
}

impl State {
    /// True once the handshake completed (RFC 9293's "synchronized" states).
    pub fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }

    /// True in the states where our application may still send data.
    pub fn can_send(self) -> bool {
        matches!(self, State::Established | State::CloseWait)
    }

    /// True in the states where the peer may still send us data.
    pub fn can_receive(self) -> bool {
        matches!(
            self,
            State::SynReceived | State::Established | State::FinWait1 | State::FinWait2
        )
    }

    /// The RFC's name for the state, e.g. `FIN-WAIT-1`.
    pub fn rfc_name(self) -> &'static str {
        match self {
            State::Closed => "CLOSED",
            State::Listen => "LISTEN",
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::Closing => "CLOSING",
            State::TimeWait => "TIME-WAIT",
            State::CloseWait => "CLOSE-WAIT",
            State::LastAck => "LAST-ACK",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rfc_name())
    }
}
