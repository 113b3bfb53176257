//! Targeted wake-ups: a thread that blocks on a connection or a listener
//! sleeps on that source's own condition variable, and the runtime wakes it
//! only when the stack reports an event for that source
//! ([`Stack::poll_event`](crate::stack::Stack::poll_event)). All these
//! condition variables pair with the one core mutex.

use std::sync::{Arc, Condvar};
use std::task::Waker;

use rustc_hash::FxHashMap;

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
    slots: FxHashMap<Source, (Arc<Condvar>, usize)>,
    /// Per source: the tasks of an async API ([`crate::tokio`]) waiting on
    /// it, woken (and forgotten) at its next event.
    wakers: FxHashMap<Source, Vec<Waker>>,
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

    #[cfg(feature = "tokio")]
    /// Registers a task to wake at the next event of `src` (once: a task
    /// already registered is not added twice).
    pub(super) fn park_waker(&mut self, src: Source, waker: &Waker) {
        let list = self.wakers.entry(src).or_default();
        if !list.iter().any(|w| w.will_wake(waker)) {
            list.push(waker.clone());
        }
    }

    /// Wakes the threads blocked on `src` and the tasks waiting on it.
    pub(super) fn wake(&mut self, src: Source) {
        if let Some((cond, _)) = self.slots.get(&src) {
            cond.notify_all();
        }
        if let Some(list) = self.wakers.remove(&src) {
            list.into_iter().for_each(Waker::wake);
        }
    }

    /// Wakes every blocked thread and task (the device died).
    pub(super) fn wake_all(&mut self) {
        for (cond, _) in self.slots.values() {
            cond.notify_all();
        }
        for (_, list) in self.wakers.drain() {
            list.into_iter().for_each(Waker::wake);
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
