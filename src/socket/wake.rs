//! Targeted wake-ups: a thread that blocks on a connection or a listener
//! sleeps on that source's own condition variable, and the runtime wakes it
//! only when the stack reports an event for that source
//! ([`Stack::poll_event`](crate::stack::Stack::poll_event)). All these
//! condition variables pair with the one core mutex.

use std::collections::HashMap;
use std::sync::{Arc, Condvar};

use crate::stack::{ConnId, Event};

/// What a thread can wait on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Source {
    /// A connection: data, room, state changes.
    Conn(ConnId),
    /// A listener's port: a connection completed its handshake.
    Port(u16),
}

/// The condition variables of the sources some thread is blocked on.
#[derive(Debug, Default)]
pub(super) struct Waiters {
    /// Per source: its condition variable and how many threads sleep on it.
    slots: HashMap<Source, (Arc<Condvar>, usize)>,
}

impl Waiters {
    /// Registers one more sleeper on `src`; returns the condvar to wait on.
    pub(super) fn enter(&mut self, src: Source) -> Arc<Condvar> {
        let slot = self
            .slots
            .entry(src)
            .or_insert_with(|| (Arc::new(Condvar::new()), 0));
        slot.1 += 1;
        slot.0.clone()
    }

    /// The sleeper registered by [`enter`](Self::enter) woke up.
    pub(super) fn leave(&mut self, src: Source) {
        if let Some(slot) = self.slots.get_mut(&src) {
            slot.1 -= 1;
            if slot.1 == 0 {
                self.slots.remove(&src);
            }
        }
    }

    /// Wakes the threads blocked on `src`, if any.
    pub(super) fn wake(&self, src: Source) {
        if let Some((cond, _)) = self.slots.get(&src) {
            cond.notify_all();
        }
    }

    /// Wakes every blocked thread (the device died).
    pub(super) fn wake_all(&self) {
        for (cond, _) in self.slots.values() {
            cond.notify_all();
        }
    }
}

/// The source an event of the stack is about.
pub(super) fn source_of(ev: &Event) -> Source {
    match *ev {
        Event::Accepted { port, .. } => Source::Port(port),
        Event::Conn { conn, .. } => Source::Conn(conn),
    }
}
