//! What happened to a connection that its application may want to know:
//! [`ConnEvent`], coalesced in a small set until the embedder takes them
//! with [`Tcb::poll_event`](super::Tcb::poll_event).

use super::TcpError;

/// One thing that happened to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnEvent {
    /// The handshake completed (RFC 9293: the connection is synchronized).
    Established,
    /// Data, the peer's FIN or an error can be read now.
    Readable,
    /// Room opened in the send buffer (or the connection can send at all now).
    Writable,
    /// The connection reached CLOSED; with the reason if a reset or a
    /// timeout ended it.
    Closed(Option<TcpError>),
}

/// Events raised and not yet taken, at most one of each kind: a pending
/// `Readable` stays one event however many segments arrive.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Events {
    established: bool,
    readable: bool,
    writable: bool,
    closed: Option<Option<TcpError>>,
}

impl Events {
    /// Records `ev` (a second one of a kind merges into the first).
    pub(super) fn raise(&mut self, ev: ConnEvent) {
        match ev {
            ConnEvent::Established => self.established = true,
            ConnEvent::Readable => self.readable = true,
            ConnEvent::Writable => self.writable = true,
            ConnEvent::Closed(why) => self.closed = Some(why),
        }
    }

    /// True while an event waits.
    pub(super) fn any(&self) -> bool {
        self.established || self.readable || self.writable || self.closed.is_some()
    }

    /// Takes the next event, in the order established, readable, writable, closed.
    pub(super) fn take(&mut self) -> Option<ConnEvent> {
        if std::mem::take(&mut self.established) {
            return Some(ConnEvent::Established);
        }
        if std::mem::take(&mut self.readable) {
            return Some(ConnEvent::Readable);
        }
        if std::mem::take(&mut self.writable) {
            return Some(ConnEvent::Writable);
        }
        self.closed.take().map(ConnEvent::Closed)
    }
}
