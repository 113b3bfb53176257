//! Looking at a running stack from outside: [`NetStack::connections`], a
//! snapshot of every connection (the data of `utcp`'s `ss`-style table),
//! and [`WeakNetStack`], a handle that does not keep the stack alive.

use std::net::SocketAddrV4;
use std::sync::{Arc, Weak};

use super::runtime::{NetStack, Runtime};
use crate::tcb::ConnInfo;

/// One connection of a [`NetStack::connections`] snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// Our address and port (for an any-IP connection: what the peer dialled).
    pub local: SocketAddrV4,
    /// The peer's address and port.
    pub peer: SocketAddrV4,
    /// State, queues, SRTT, RTO, cwnd, retransmissions and every counter.
    pub info: ConnInfo,
}

impl NetStack {
    /// A snapshot of every connection the stack holds now, in any state
    /// (listeners are not connections and are not included), ordered by
    /// local then peer address. Takes the stack's lock once.
    pub fn connections(&self) -> Vec<Connection> {
        let core = self.rt.shared.lock();
        let mut all: Vec<Connection> = core
            .stack
            .connections()
            .map(|tcb| Connection {
                local: tcb.local(),
                peer: tcb.remote(),
                info: tcb.info(),
            })
            .collect();
        drop(core);
        all.sort_by_key(|c| (c.local, c.peer));
        all
    }

    /// A handle that does not keep the stack running (see [`WeakNetStack`]).
    pub fn downgrade(&self) -> WeakNetStack {
        WeakNetStack {
            rt: Arc::downgrade(&self.rt),
        }
    }
}

/// A [`NetStack`] handle that does not count as a user: when the last
/// `NetStack`, listener and stream go, the stack stops (after its linger)
/// even if weak handles remain. For observers, such as a thread that
/// prints the connection table on request.
#[derive(Clone, Debug)]
pub struct WeakNetStack {
    rt: Weak<Runtime>,
}

impl WeakNetStack {
    /// The stack, if it still runs.
    pub fn upgrade(&self) -> Option<NetStack> {
        self.rt.upgrade().map(|rt| NetStack { rt })
    }
}
