//! Readiness for one-thread servers: [`Poll`], [`Events`], [`Token`],
//! [`Interest`], in the spirit of mio's.
//!
//! **Level-triggered.** [`Poll::poll`] reports every registered source that
//! is ready *now*: a stream stays readable until a read would say
//! `WouldBlock`, so a handler may read part of what is there and hear about
//! the rest on the next poll. (mio is edge-triggered; level is simpler and
//! less surprising for a first version.) Register `WRITABLE` only while you
//! have something to write: a stream with room is writable on every poll.
//!
//! **No scanning.** Each `Poll` keeps a ready-set of candidate sources. The
//! runtime adds a source when the stack reports an event for it
//! ([`Stack::poll_event`](crate::stack::Stack::poll_event), drained after
//! every flush) or when it is (re)registered; `poll` re-checks only the
//! candidates, reports those that are ready and keeps them, and drops the
//! others until their next event. A poll's cost follows the number of ready
//! sources, not of registered ones.

use std::collections::VecDeque;
use std::io;
use std::ops::BitOr;
use std::sync::{Arc, Condvar};
use std::time::Duration;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::stack::{ConnId, Stack};
use crate::state::State;

use super::driver::WakeOn;
use super::listener::TcpListener;
use super::runtime::{dead_error, Core, Runtime};
use super::stream::TcpStream;
use super::wake::Source;
use super::NetStack;

/// Names a registered source in the [`Event`]s of a [`Poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(pub usize);

/// What a registration waits for: [`READABLE`](Self::READABLE),
/// [`WRITABLE`](Self::WRITABLE) or both (`READABLE | WRITABLE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest(u8);

impl Interest {
    /// Data, EOF or an error to read; for a listener, a connection to accept.
    pub const READABLE: Interest = Interest(1);
    /// Room in the send buffer.
    pub const WRITABLE: Interest = Interest(2);

    /// True if this includes [`READABLE`](Self::READABLE).
    pub fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }

    /// True if this includes [`WRITABLE`](Self::WRITABLE).
    pub fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        Interest(self.0 | rhs.0)
    }
}

/// One ready source, from [`Poll::poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    token: Token,
    readable: bool,
    writable: bool,
    hup: bool,
}

impl Event {
    /// The token the source was registered with.
    pub fn token(&self) -> Token {
        self.token
    }

    /// A read (or accept) would not say `WouldBlock` (asked for `READABLE`).
    pub fn is_readable(&self) -> bool {
        self.readable
    }

    /// A write would not say `WouldBlock` (asked for `WRITABLE`).
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The connection reached CLOSED (both sides done, reset or timed out)
    /// or is gone; reported whatever the interest.
    pub fn is_hup(&self) -> bool {
        self.hup
    }
}

/// The events one [`Poll::poll`] returns, at most its capacity.
#[derive(Clone, Debug)]
pub struct Events {
    list: Vec<Event>,
    cap: usize,
}

impl Events {
    /// Room for `cap` events per poll (at least one).
    pub fn with_capacity(cap: usize) -> Events {
        let cap = cap.max(1);
        Events {
            list: Vec::with_capacity(cap),
            cap,
        }
    }

    /// The events of the last poll.
    pub fn iter(&self) -> std::slice::Iter<'_, Event> {
        self.list.iter()
    }

    /// How many events the last poll returned.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True if the last poll returned none (it timed out).
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The most events one poll returns.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Forgets the events.
    pub fn clear(&mut self) {
        self.list.clear();
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = std::slice::Iter<'a, Event>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

mod sealed {
    use super::Source;

    /// Which runtime and which source a pollable object is.
    pub struct Handle {
        pub(in crate::socket) rt: usize,
        pub(in crate::socket) src: Source,
    }

    pub trait Sealed {
        fn handle(&self) -> Handle;
    }
}

/// What a [`Poll`] can watch: [`TcpStream`] and [`TcpListener`].
pub trait Pollable: sealed::Sealed {}

impl sealed::Sealed for TcpStream {
    fn handle(&self) -> sealed::Handle {
        sealed::Handle {
            rt: Arc::as_ptr(self.runtime()) as usize,
            src: Source::Conn(self.conn_id()),
        }
    }
}
impl Pollable for TcpStream {}

impl sealed::Sealed for TcpListener {
    fn handle(&self) -> sealed::Handle {
        sealed::Handle {
            rt: Arc::as_ptr(&self.rt) as usize,
            src: Source::Port(self.port),
        }
    }
}
impl Pollable for TcpListener {}

#[derive(Debug)]
struct Reg {
    poll: u64,
    token: Token,
    interest: Interest,
}

#[derive(Debug, Default)]
struct PollState {
    /// Candidates, in the order they became ready.
    ready: VecDeque<Source>,
    /// The same, as a set (each source is queued once).
    queued: FxHashSet<Source>,
    cond: Arc<Condvar>,
    /// Threads sleeping on `cond` (a notify without sleepers is a wasted
    /// futex syscall).
    sleepers: usize,
}

impl PollState {
    fn push(&mut self, src: Source) {
        if self.queued.insert(src) {
            self.ready.push_back(src);
        }
        if self.sleepers > 0 {
            self.cond.notify_all();
        }
    }

    fn remove(&mut self, src: Source) {
        if self.queued.remove(&src) {
            self.ready.retain(|s| *s != src);
        }
    }
}

/// Every [`Poll`] of a runtime, their registrations and ready-sets.
#[derive(Debug, Default)]
pub(super) struct PollTable {
    next_id: u64,
    regs: FxHashMap<Source, Reg>,
    polls: FxHashMap<u64, PollState>,
    /// Connections taken from a listener's accept queue to learn it was
    /// readable; `TcpListener::accept` hands them out first.
    stash: FxHashMap<u16, VecDeque<ConnId>>,
}

impl PollTable {
    /// The stack reported an event for `src`: make it a candidate.
    /// Returns the poll it is registered with, if any.
    pub(super) fn mark(&mut self, src: Source) -> Option<u64> {
        let reg = self.regs.get(&src)?;
        self.polls.get_mut(&reg.poll)?.push(src);
        Some(reg.poll)
    }

    /// `src` is gone (its last handle dropped): forget its registration.
    pub(super) fn forget(&mut self, src: Source) {
        if let Some(reg) = self.regs.remove(&src) {
            if let Some(p) = self.polls.get_mut(&reg.poll) {
                p.remove(src);
            }
        }
    }

    /// Wakes every polling thread (the device died).
    pub(super) fn wake_all(&self) {
        for p in self.polls.values() {
            p.cond.notify_all();
        }
    }

    /// One more (+1) or one fewer (-1) thread sleeps on poll `id`.
    fn sleepers(&mut self, id: u64, delta: isize) {
        if let Some(p) = self.polls.get_mut(&id) {
            p.sleepers = p.sleepers.saturating_add_signed(delta);
        }
    }

    /// A connection stashed for `port` by a readiness check.
    pub(super) fn take_stashed(&mut self, port: u16) -> Option<ConnId> {
        self.stash.get_mut(&port)?.pop_front()
    }

    /// Every connection stashed for `port` (its listener goes away).
    pub(super) fn drain_stash(&mut self, port: u16) -> VecDeque<ConnId> {
        self.stash.remove(&port).unwrap_or_default()
    }

    fn register(&mut self, poll: u64, src: Source, token: Token, interest: Interest) {
        self.regs.insert(
            src,
            Reg {
                poll,
                token,
                interest,
            },
        );
        // Level-triggered: whatever is ready already shows on the next poll.
        self.mark(src);
    }

    fn registered_with(&self, src: Source) -> Option<u64> {
        self.regs.get(&src).map(|r| r.poll)
    }
}

/// How ready a source is now.
#[derive(Clone, Copy, Debug, Default)]
struct Readiness {
    readable: bool,
    writable: bool,
    hup: bool,
}

fn readiness(
    stack: &mut Stack,
    stash: &mut FxHashMap<u16, VecDeque<ConnId>>,
    src: Source,
) -> Readiness {
    match src {
        Source::Conn(id) => match stack.tcb(id) {
            None => Readiness {
                readable: true,
                writable: true,
                hup: true,
            },
            Some(t) => Readiness {
                readable: t.can_recv(),
                writable: t.can_send(),
                hup: t.state() == State::Closed,
            },
        },
        Source::Port(port) => {
            let queue = stash.entry(port).or_default();
            if queue.is_empty() {
                if let Some(id) = stack.accept(port) {
                    queue.push_back(id);
                }
            }
            Readiness {
                readable: !queue.is_empty(),
                ..Readiness::default()
            }
        }
    }
}

/// Re-checks the candidates of poll `id`, fills `events` with the ready ones
/// (they stay candidates) and drops the others.
fn collect(core: &mut Core, id: u64, events: &mut Events) {
    let Core { stack, polls, .. } = core;
    let PollTable {
        regs, polls, stash, ..
    } = polls;
    let Some(state) = polls.get_mut(&id) else {
        return;
    };
    for _ in 0..state.ready.len() {
        if events.list.len() >= events.cap {
            break;
        }
        let Some(src) = state.ready.pop_front() else {
            break;
        };
        let Some(reg) = regs.get(&src) else {
            state.queued.remove(&src);
            continue;
        };
        let r = readiness(stack, stash, src);
        let ev = Event {
            token: reg.token,
            readable: r.readable && reg.interest.is_readable(),
            writable: r.writable && reg.interest.is_writable(),
            hup: r.hup,
        };
        if ev.readable || ev.writable || ev.hup {
            events.list.push(ev);
            state.ready.push_back(src);
        } else {
            state.queued.remove(&src);
        }
    }
}

/// Waits for readiness of many streams and listeners in one thread.
///
/// Level-triggered (see the [module documentation](crate::socket)). A source is
/// registered with at most one `Poll` at a time; dropping a stream's last
/// handle or a listener deregisters it.
pub struct Poll {
    rt: Arc<Runtime>,
    id: u64,
}

impl std::fmt::Debug for Poll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poll").field("id", &self.id).finish()
    }
}

impl Poll {
    /// A poll for the streams and listeners of `net`.
    pub fn new(net: &NetStack) -> io::Result<Poll> {
        let mut core = net.rt.shared.lock();
        let table = &mut core.polls;
        table.next_id += 1;
        let id = table.next_id;
        table.polls.insert(id, PollState::default());
        drop(core);
        Ok(Poll {
            rt: net.rt.clone(),
            id,
        })
    }

    fn source(&self, source: &impl Pollable) -> io::Result<Source> {
        let h = source.handle();
        if h.rt != Arc::as_ptr(&self.rt) as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the source belongs to another NetStack",
            ));
        }
        Ok(h.src)
    }

    /// Watches `source` for `interest`; its events carry `token`.
    /// `AlreadyExists` if it is registered already.
    pub fn register(
        &self,
        source: &impl Pollable,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let src = self.source(source)?;
        let mut core = self.rt.shared.lock();
        if core.polls.registered_with(src).is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the source is registered already",
            ));
        }
        core.polls.register(self.id, src, token, interest);
        self.candidate_added(&mut core, src);
        Ok(())
    }

    /// Changes the token and interest of a registered `source`.
    /// `NotFound` if it is not registered with this poll.
    pub fn reregister(
        &self,
        source: &impl Pollable,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let src = self.source(source)?;
        let mut core = self.rt.shared.lock();
        if core.polls.registered_with(src) != Some(self.id) {
            return Err(not_registered());
        }
        core.polls.register(self.id, src, token, interest);
        self.candidate_added(&mut core, src);
        Ok(())
    }

    /// A (re)registration made `src` a candidate: an inline leader
    /// polling this poll in another thread must look.
    fn candidate_added(&self, core: &mut Core, src: Source) {
        core.tell_leader(src, Some(self.id));
        self.rt.shared.poke_leader(core);
    }

    /// Stops watching `source`. `NotFound` if it is not registered with
    /// this poll.
    pub fn deregister(&self, source: &impl Pollable) -> io::Result<()> {
        let src = self.source(source)?;
        let mut core = self.rt.shared.lock();
        if core.polls.registered_with(src) != Some(self.id) {
            return Err(not_registered());
        }
        core.polls.forget(src);
        Ok(())
    }

    /// Waits until some registered source is ready or `timeout` passes
    /// (`None`: no limit; zero: just look) and puts the ready ones in
    /// `events` (empty on timeout). `BrokenPipe` if the device failed.
    pub fn poll(&mut self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        events.list.clear();
        let shared = &self.rt.shared;
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let mut core = shared.lock();
        let mut parked = false;
        loop {
            if let Some(msg) = &core.dead {
                return Err(dead_error(msg));
            }
            collect(&mut core, self.id, events);
            if !events.list.is_empty() {
                if !parked {
                    // Inline mode: read the device even when something is
                    // always ready (what arrives shows on the next poll).
                    shared.drive_now(&mut core);
                }
                return Ok(());
            }
            let Some(cond) = core.polls.polls.get(&self.id).map(|p| p.cond.clone()) else {
                return Ok(());
            };
            // A leader drives instead of sleeping on `cond`.
            let sleeps = !shared.will_lead(&core);
            if sleeps {
                core.polls.sleepers(self.id, 1);
            }
            let (g, timed_out) = shared.park(core, &cond, WakeOn::Poll(self.id), deadline);
            core = g;
            if sleeps {
                core.polls.sleepers(self.id, -1);
            }
            parked = true;
            if timed_out {
                collect(&mut core, self.id, events);
                return Ok(());
            }
        }
    }
}

fn not_registered() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        "the source is not registered with this poll",
    )
}

impl Drop for Poll {
    fn drop(&mut self) {
        let mut core = self.rt.shared.lock();
        let table = &mut core.polls;
        table.polls.remove(&self.id);
        table.regs.retain(|_, r| r.poll != self.id);
    }
}
