//! The stack: demultiplexing by 4-tuple, listeners, ISNs, resets for
//! segments nobody wants, and ICMP echo. Sans-IO like the [`Tcb`]s it owns.
//!
//! The driver calls, in any order and as often as it likes:
//! - [`Stack::handle_packet`] for every raw IPv4 packet read from the device,
//! - [`Stack::handle_timeout`] when [`Stack::poll_timeout`]'s deadline passes,
//! - [`Stack::poll_transmit`] to collect the packets to write to the device,
//!
//! and the socket layer uses [`Stack::listen`], [`Stack::accept`],
//! [`Stack::connect`], [`Stack::tcb_mut`] and [`Stack::release`].
//!
//! # Cost follows the work, not the connection count
//!
//! A driver wake-up must not visit idle connections. Three structures make
//! every per-wake-up and per-packet path independent of how many
//! connections the stack holds:
//!
//! - **The timer index** (`Timers`, whose comment states the invariant): a
//!   min-heap of `(deadline, slot, stamp)` with lazy deletion.
//!   [`Stack::poll_timeout`] reads its top; [`Stack::handle_timeout`] pops
//!   only the due entries.
//! - **The changed list** (`Stack::changed`): the connections the stack or
//!   the application touched since the last [`Stack::poll_transmit`] (a
//!   segment arrived, a timer fired, an application call through
//!   [`Stack::tcb_mut`], an open, a release). Only they can have output,
//!   events to report, or become reapable, so `poll_transmit` visits only
//!   them.
//! - **Half-open sets**: each listener keeps the ids of its embryonic
//!   connections, so a SYN's backlog check costs O(1) whatever the number
//!   of half-open ones, and [`Stack::unlisten`] resets the listener's
//!   connections (half-open and queued) without walking the slab.
//!
//! Demultiplexing is O(1) (a hash map of 4-tuples).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

use log::{debug, trace};
use rand::{Rng, SeedableRng};

use crate::error::Error;
use crate::gso::TxOffload;
use crate::isn::IsnGenerator;
use crate::seq::SeqNum;
use crate::state::State;
use crate::tcb::{ConnEvent, Tcb, TcpConfig, Verdict};
use crate::time::Instant;
use crate::wire::{self, Packet, TcpFlags, TcpOptions, TcpSegment};

/// Configuration of a [`Stack`].
#[derive(Clone, Debug)]
pub struct StackConfig {
    /// The IPv4 address the stack answers for.
    pub addr: Ipv4Addr,
    /// The device MTU; our MSS is derived from it (MTU - 40).
    pub mtu: usize,
    /// Defaults for every connection.
    pub tcp: TcpConfig,
    /// Seed for the ISN secret and port choice; `None` draws one from the OS.
    pub seed: Option<u64>,
    /// Which share of the ephemeral ports this stack picks from, when it is
    /// one of several shards on one address (a multi-queue TUN device).
    pub shard: Shard,
}

/// One stack among `count` shards that answer for the same address (one per
/// queue of a multi-queue TUN device, [`crate::device::shard`]): shard
/// `index` picks its ephemeral ports only among those with
/// `(port - 49152) % count == index`, so the shards never pick the same
/// 4-tuple and a packet for an active open can be steered to the shard that
/// made it by its destination port alone ([`Shard::owner_of_port`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This stack's number, `0..count`.
    pub index: u16,
    /// How many shards there are (at least 1).
    pub count: u16,
}

impl Shard {
    /// The only stack on its address: every ephemeral port is its own.
    pub const SOLE: Shard = Shard { index: 0, count: 1 };

    /// The shard whose active opens use local port `port`, if it is an
    /// ephemeral port (RFC 6335 section 6: 49152-65535); `None` for the
    /// other ports (listeners are on every shard).
    pub fn owner_of_port(count: u16, port: u16) -> Option<u16> {
        (port >= EPHEMERAL_FIRST && count > 1).then(|| (port - EPHEMERAL_FIRST) % count)
    }
}

impl Default for Shard {
    fn default() -> Self {
        Shard::SOLE
    }
}

impl StackConfig {
    /// A configuration for `addr` with a 1500-byte MTU and default TCP settings.
    pub fn new(addr: Ipv4Addr) -> Self {
        StackConfig {
            addr,
            mtu: 1500,
            tcp: TcpConfig::default(),
            seed: None,
            shard: Shard::SOLE,
        }
    }
}

/// Identifies one connection inside a [`Stack`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

/// Who holds a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    /// Created by a listener, handshake not complete yet.
    Embryonic(u16),
    /// Established, waiting in the listener's accept queue.
    Queued(u16),
    /// Handed to the application.
    App,
    /// The application let go; the TCB lives on until CLOSED.
    Orphan,
}

#[derive(Debug)]
struct Entry {
    tcb: Tcb,
    owner: Owner,
    /// The handshake completed on a listener; [`Event::Accepted`] not yet taken.
    accepted: bool,
    /// The connection's id is in the stack's event queue.
    in_event_queue: bool,
    /// The deadline the timer index holds for this connection (see
    /// [`Timers`] for the invariant tying it to `tcb.poll_timeout()`).
    deadline: Option<Instant>,
    /// The connection's id is in the stack's changed list.
    changed: bool,
}

/// What happened in the stack that its embedder may want to know, from
/// [`Stack::poll_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A connection completed its handshake on the listening `port` and
    /// waits in its accept queue ([`Stack::accept`] takes it).
    Accepted {
        /// The listening port.
        port: u16,
        /// The connection.
        conn: ConnId,
    },
    /// Something happened to a connection the application holds (or that
    /// waits in an accept queue).
    Conn {
        /// The connection.
        conn: ConnId,
        /// What happened.
        event: ConnEvent,
    },
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    /// Bumped whenever the timer index gets a new entry for this slot and
    /// when the slot is emptied: only the heap entry carrying the current
    /// stamp is live, every older one is stale. Never reset, so entries of a
    /// previous occupant of the slot are stale too.
    timer_stamp: u32,
    entry: Option<Entry>,
}

/// The stack's timer index: every connection's next deadline (the earliest
/// of its own timers, `Tcb::poll_timeout`), so that a wake-up finds the due
/// connections without visiting the others.
///
/// A binary min-heap with lazy deletion rather than a hierarchical timer
/// wheel: a connection has one deadline at a time, so the index holds one
/// live entry per connection with a timer (17 levels at 100,000); a push is
/// O(log n) and, once the heap's storage has grown, allocation-free; the
/// deadlines stay exact to the microsecond, so when timers fire is exactly
/// what it was when every wake-up scanned every connection (a wheel would
/// round them to its tick, or need per-slot lists and cascading); and an idle
/// stack costs nothing per tick (a wheel must advance through empty slots).
/// The price, a stale entry per deadline change, is bounded by compaction.
///
/// # Invariant
///
/// Whenever control returns to the caller of any `Stack` method, for every
/// live connection `e` in slot `s` except the one [`Stack::tcb_mut`] last
/// handed out (`Stack::touched`):
///
/// 1. `e.deadline == e.tcb.poll_timeout()`;
/// 2. if `e.deadline == Some(t)`, the heap holds exactly one live entry for
///    `s`: `(t, s, s.timer_stamp)`; all other entries for `s` are stale
///    (their stamp is older, or the slot is empty);
/// 3. the top of the heap, if any, is live (stale tops are popped).
///
/// The touched connection has no live entry (`tcb_mut` retires it before
/// handing out the `&mut Tcb`, since the caller may move the deadline
/// either way), and [`Stack::poll_timeout`] asks its TCB directly; the
/// next `&mut self` call of the stack re-indexes it. So `poll_timeout`
/// (`&self`, as its callers need) is exact by construction: the earliest
/// live entry, or the touched TCB's own deadline.
///
/// Every path that lets a TCB change (segment, timer, transmit, open,
/// release, unlisten) ends in [`Stack::refresh`], which pushes the new
/// deadline if it differs from the indexed one, earlier or later. Stale
/// entries are dropped when they surface at the top, and the heap is
/// compacted when it exceeds twice the live connections plus 1024 entries.
#[derive(Debug, Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
}

impl Timers {
    /// True if the heap entry `(_, index, stamp)` is the live one of its slot.
    fn is_live(slots: &[Slot], index: u32, stamp: u32) -> bool {
        slots
            .get(index as usize)
            .is_some_and(|s| s.entry.is_some() && s.timer_stamp == stamp)
    }

    /// Pops stale entries off the top (invariant 3); compacts the heap if
    /// stale entries make up most of it.
    fn settle(&mut self, slots: &[Slot], live: usize) {
        while let Some(&Reverse((_, index, stamp))) = self.heap.peek() {
            if Self::is_live(slots, index, stamp) {
                break;
            }
            self.heap.pop();
        }
        if self.heap.len() > 2 * live + 1024 {
            // In place: retain rebuilds the heap without allocating.
            self.heap
                .retain(|&Reverse((_, index, stamp))| Self::is_live(slots, index, stamp));
        }
    }
}

#[derive(Debug)]
struct Listener {
    backlog: usize,
    queue: VecDeque<ConnId>,
    /// Connections of this listener still in their handshake
    /// ([`Owner::Embryonic`]), kept so that neither a SYN (the backlog
    /// check) nor [`Stack::unlisten`] need scan the slab: kept by
    /// [`Stack::set_owner`] (which [`Stack::reap`] goes through).
    embryonic: HashSet<ConnId>,
    /// Settings for the connections this listener accepts.
    tcp: TcpConfig,
}

/// Counters of the whole stack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StackStats {
    /// Packets handed to [`Stack::handle_packet`].
    pub packets_in: u64,
    /// Packets produced by [`Stack::poll_transmit`].
    pub packets_out: u64,
    /// Packets dropped by the wire codec, by reason.
    pub dropped: BTreeMap<&'static str, u64>,
    /// Packets not addressed to our IP.
    pub not_for_us: u64,
    /// TCP segments demultiplexed.
    pub tcp_in: u64,
    /// Resets we sent for segments without a connection.
    pub resets_sent: u64,
    /// SYNs dropped because the accept backlog was full.
    pub syn_backlog_full: u64,
    /// ICMP echo replies sent.
    pub echo_replies: u64,
    /// Connections created (both directions).
    pub connections: u64,
}

/// The sans-IO TCP/IPv4 stack.
#[derive(Debug)]
pub struct Stack {
    cfg: StackConfig,
    isn: IsnGenerator,
    rng: rand::rngs::StdRng,
    slots: Vec<Slot>,
    free: Vec<u32>,
    tuples: HashMap<(SocketAddrV4, SocketAddrV4), ConnId>,
    listeners: HashMap<u16, Listener>,
    /// Packets queued by the stack itself: resets and echo replies.
    control: VecDeque<Control>,
    /// Connections with events not yet taken, each at most once.
    event_queue: VecDeque<ConnId>,
    /// Every connection's next deadline (see [`Timers`]).
    timers: Timers,
    /// The connection whose `&mut Tcb` [`tcb_mut`](Self::tcb_mut) handed out
    /// last and that has not been re-indexed since (at most one: the borrow
    /// ends before the next call of the stack).
    touched: Option<ConnId>,
    /// Connections touched since they last went through
    /// [`poll_transmit`](Self::poll_transmit) (each once, flagged by
    /// `Entry::changed`): the only ones that can have output, events to
    /// report or be ready to be forgotten.
    changed: Vec<ConnId>,
    /// Scratch list of the connections due in [`handle_timeout`](Self::handle_timeout),
    /// and of `changed` while `poll_transmit` walks it (kept for its capacity).
    scratch: Vec<u32>,
    scratch_ids: Vec<ConnId>,
    stats: StackStats,
}

#[derive(Debug)]
enum Control {
    /// A RST (its payload is empty).
    Reset(TcpSegment<'static>),
    EchoReply {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ident: u16,
        seq: u16,
        payload: Vec<u8>,
    },
}

/// At most this many resets and echo replies wait for dispatch; more are dropped.
const CONTROL_QUEUE_MAX: usize = 1024;
/// First port of the ephemeral range (RFC 6335 section 6).
const EPHEMERAL_FIRST: u16 = 49152;

impl Stack {
    /// A stack with no connections and no listeners.
    pub fn new(mut cfg: StackConfig) -> Self {
        let mut rng = match cfg.seed {
            Some(seed) => rand::rngs::StdRng::seed_from_u64(seed),
            None => rand::rngs::StdRng::from_os_rng(),
        };
        let secret: [u8; 16] = rng.random();
        let mss = cfg
            .mtu
            .saturating_sub(wire::IPV4_HEADER_LEN + wire::TCP_HEADER_LEN);
        cfg.tcp.mss = u16::try_from(mss).unwrap_or(u16::MAX).max(64);
        Stack {
            isn: IsnGenerator::new(secret),
            rng,
            slots: Vec::new(),
            free: Vec::new(),
            tuples: HashMap::new(),
            listeners: HashMap::new(),
            control: VecDeque::new(),
            event_queue: VecDeque::new(),
            timers: Timers::default(),
            touched: None,
            changed: Vec::new(),
            scratch: Vec::new(),
            scratch_ids: Vec::new(),
            stats: StackStats::default(),
            cfg,
        }
    }

    /// The address the stack answers for.
    pub fn addr(&self) -> Ipv4Addr {
        self.cfg.addr
    }

    /// The configuration in force.
    pub fn config(&self) -> &StackConfig {
        &self.cfg
    }

    /// Stack-wide counters.
    pub fn stats(&self) -> &StackStats {
        &self.stats
    }

    /// The state of every connection the stack holds.
    pub fn connection_states(&self) -> impl Iterator<Item = State> + '_ {
        self.slots
            .iter()
            .filter_map(|s| s.entry.as_ref())
            .map(|e| e.tcb.state())
    }

    /// Number of connections the stack holds (any state, including TIME-WAIT).
    pub fn connection_count(&self) -> usize {
        self.tuples.len()
    }

    // ------------------------------------------------------------------
    // Socket-layer calls
    // ------------------------------------------------------------------

    /// Starts listening on `port` with an accept queue of `backlog` connections.
    pub fn listen(&mut self, port: u16, backlog: usize) -> Result<(), Error> {
        let tcp = self.cfg.tcp.clone();
        self.listen_with(port, backlog, tcp)
    }

    /// The TCP settings new connections get unless told otherwise (the MSS
    /// already follows the device MTU). Change a copy and pass it to
    /// [`listen_with`](Self::listen_with) or [`connect_with`](Self::connect_with)
    /// for per-socket options such as buffer sizes.
    pub fn tcp_config(&self) -> &TcpConfig {
        &self.cfg.tcp
    }

    /// Like [`listen`](Self::listen), with the settings accepted connections
    /// get. The MSS is capped by the device's.
    pub fn listen_with(
        &mut self,
        port: u16,
        backlog: usize,
        mut tcp: TcpConfig,
    ) -> Result<(), Error> {
        tcp.mss = tcp.mss.clamp(64, self.cfg.tcp.mss);
        if port == 0 {
            return Err(Error::PortZero);
        }
        if self.listeners.contains_key(&port) {
            return Err(Error::PortInUse(port));
        }
        debug!("listening on {}:{port}", self.cfg.addr);
        self.listeners.insert(
            port,
            Listener {
                backlog: backlog.max(1),
                queue: VecDeque::new(),
                embryonic: HashSet::new(),
                tcp,
            },
        );
        Ok(())
    }

    /// Stops listening on `port`; connections not yet accepted are reset.
    pub fn unlisten(&mut self, port: u16) {
        self.sync_touched();
        let Some(l) = self.listeners.remove(&port) else {
            return;
        };
        debug!("no longer listening on {}:{port}", self.cfg.addr);
        // Its connections: the half-open ones and the accept queue, no
        // scan of the slab.
        for id in l.embryonic.into_iter().chain(l.queue) {
            if let Some(e) = self.entry_mut(id) {
                e.tcb.abort();
                // The listener and its counter are gone already.
                e.owner = Owner::Orphan;
                self.touch(id);
            }
        }
        self.settle();
    }

    /// True if a listener is bound to `port`.
    pub fn is_listening(&self, port: u16) -> bool {
        self.listeners.contains_key(&port)
    }

    /// Takes the next established connection from `port`'s accept queue.
    pub fn accept(&mut self, port: u16) -> Option<ConnId> {
        self.sync_touched();
        let id = self.listeners.get_mut(&port)?.queue.pop_front()?;
        self.set_owner(id, Owner::App);
        Some(id)
    }

    /// Opens a connection to `remote` (active open). The returned connection
    /// is in SYN-SENT; wait for it to leave that state.
    pub fn connect(&mut self, now: Instant, remote: SocketAddrV4) -> Result<ConnId, Error> {
        let tcp = self.cfg.tcp.clone();
        self.connect_with(now, remote, None, tcp)
    }

    /// The general active open: from `local_port` (an ephemeral port if
    /// `None`) with the given settings (the MSS is capped by the device's).
    pub fn connect_with(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        local_port: Option<u16>,
        mut tcp: TcpConfig,
    ) -> Result<ConnId, Error> {
        self.sync_touched();
        Self::check_remote(self.cfg.addr, remote)?;
        tcp.mss = tcp.mss.clamp(64, self.cfg.tcp.mss);
        let port = match local_port {
            Some(0) => return Err(Error::PortZero),
            Some(port) => {
                let local = SocketAddrV4::new(self.cfg.addr, port);
                if self.tuples.contains_key(&(local, remote)) {
                    return Err(Error::TupleInUse(local, remote));
                }
                port
            }
            None => self.ephemeral_port(remote).ok_or(Error::NoEphemeralPort)?,
        };
        Ok(self.open(now, port, remote, tcp))
    }

    /// Opens a connection to `remote` from the fixed `local_port` instead of
    /// an ephemeral one (like `bind` before `connect`). This is what a
    /// simultaneous open needs (RFC 9293 section 3.5, Figure 8): both ends
    /// must know each other's port in advance.
    ///
    /// `InvalidInput` for the addresses [`connect`](Self::connect) refuses
    /// and for port 0; `AddrInUse` if this 4-tuple already has a connection.
    pub fn connect_from(
        &mut self,
        now: Instant,
        local_port: u16,
        remote: SocketAddrV4,
    ) -> Result<ConnId, Error> {
        let tcp = self.cfg.tcp.clone();
        self.connect_with(now, remote, Some(local_port), tcp)
    }

    /// Refuses destinations no connection may have.
    fn check_remote(us: Ipv4Addr, remote: SocketAddrV4) -> Result<(), Error> {
        let ip = *remote.ip();
        if remote.port() == 0
            || ip.is_unspecified()
            || ip.is_broadcast()
            || ip.is_multicast()
            || ip == us
        {
            return Err(Error::BadRemote(remote));
        }
        Ok(())
    }

    /// Creates the SYN-SENT TCB for `local_port` -> `remote`.
    fn open(
        &mut self,
        now: Instant,
        local_port: u16,
        remote: SocketAddrV4,
        tcp: TcpConfig,
    ) -> ConnId {
        let local = SocketAddrV4::new(self.cfg.addr, local_port);
        let iss = self.isn.isn(now, local, remote);
        let tcb = Tcb::connect(local, remote, iss, tcp);
        let id = self.insert(tcb, Owner::App);
        self.settle();
        id
    }

    /// A free ephemeral port towards `remote`, from a random start, among
    /// this shard's share ([`Shard`]).
    fn ephemeral_port(&mut self, remote: SocketAddrV4) -> Option<u16> {
        let Shard { index, count } = self.cfg.shard;
        let count = u32::from(count.max(1));
        let index = u32::from(index) % count;
        let all = u32::from(u16::MAX - EPHEMERAL_FIRST) + 1;
        // Ports FIRST + index + k * count for k in 0..span.
        let span = (all - index).div_ceil(count);
        let start = self.rng.random_range(0..span);
        (0..span)
            .map(|i| EPHEMERAL_FIRST + (index + ((start + i) % span) * count) as u16)
            .find(|&port| {
                !self.listeners.contains_key(&port)
                    && !self
                        .tuples
                        .contains_key(&(SocketAddrV4::new(self.cfg.addr, port), remote))
            })
    }

    /// The connection's TCB, if it still exists.
    pub fn tcb(&self, id: ConnId) -> Option<&Tcb> {
        self.entry(id).map(|e| &e.tcb)
    }

    /// The connection's TCB, mutably (for send, recv, close...).
    ///
    /// The caller may change anything, the deadline included, after this
    /// returns: the connection joins the changed list, its timer-index entry
    /// is retired and it becomes the `touched` one, whose deadline
    /// [`poll_timeout`](Self::poll_timeout) reads from the TCB itself until
    /// the next call of the stack re-indexes it (see `Timers` in the source).
    pub fn tcb_mut(&mut self, id: ConnId) -> Option<&mut Tcb> {
        self.sync_touched();
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let e = slot.entry.as_mut()?;
        if e.deadline.take().is_some() {
            slot.timer_stamp = slot.timer_stamp.wrapping_add(1);
        }
        if !std::mem::replace(&mut e.changed, true) {
            self.changed.push(id);
        }
        self.touched = Some(id);
        self.timers.settle(&self.slots, self.tuples.len());
        self.entry_mut(id).map(|e| &mut e.tcb)
    }

    /// The application let go of `id`: close it gracefully (if it still
    /// needs closing); the stack forgets it once it reaches CLOSED.
    pub fn release(&mut self, id: ConnId) {
        self.sync_touched();
        if let Some(e) = self.entry_mut(id) {
            e.tcb.close();
            self.set_owner(id, Owner::Orphan);
            self.touch(id);
        }
        self.reap(id);
        self.settle();
    }

    // ------------------------------------------------------------------
    // Bookkeeping: owners, the timer index, the changed list
    // ------------------------------------------------------------------

    /// Changes `id`'s owner, keeping the listeners' half-open counters.
    fn set_owner(&mut self, id: ConnId, owner: Owner) {
        let Some(e) = self.entry_mut(id) else { return };
        let old = std::mem::replace(&mut e.owner, owner);
        if old == owner {
            return;
        }
        if let Owner::Embryonic(port) = old {
            if let Some(l) = self.listeners.get_mut(&port) {
                l.embryonic.remove(&id);
            }
        }
        if let Owner::Embryonic(port) = owner {
            if let Some(l) = self.listeners.get_mut(&port) {
                l.embryonic.insert(id);
            }
        }
    }

    /// The stack changed `id`'s TCB: re-index its deadline and put it on the
    /// changed list.
    fn touch(&mut self, id: ConnId) {
        let Some(e) = self.entry_mut(id) else { return };
        if !std::mem::replace(&mut e.changed, true) {
            self.changed.push(id);
        }
        self.refresh(id);
    }

    /// Pushes `id`'s deadline into the timer index if it differs from the
    /// one indexed (invariants 1 and 2 of [`Timers`]); the entry it replaces,
    /// if any, goes stale.
    fn refresh(&mut self, id: ConnId) {
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return;
        };
        if slot.generation != id.generation {
            return;
        }
        let Some(e) = slot.entry.as_mut() else { return };
        let now = e.tcb.poll_timeout();
        if now == e.deadline {
            return;
        }
        e.deadline = now;
        slot.timer_stamp = slot.timer_stamp.wrapping_add(1);
        if let Some(t) = now {
            self.timers
                .heap
                .push(Reverse((t, id.index, slot.timer_stamp)));
        }
    }

    /// Re-indexes the connection [`tcb_mut`](Self::tcb_mut) handed out, if
    /// any: first thing in every `&mut self` entry point.
    fn sync_touched(&mut self) {
        if let Some(id) = self.touched.take() {
            self.refresh(id);
            self.settle();
        }
    }

    /// Restores invariant 3 of [`Timers`] (and bounds the heap): last thing
    /// in every `&mut self` entry point that may have staled entries.
    fn settle(&mut self) {
        self.timers.settle(&self.slots, self.tuples.len());
    }

    // ------------------------------------------------------------------
    // Slab plumbing
    // ------------------------------------------------------------------

    fn insert(&mut self, tcb: Tcb, owner: Owner) -> ConnId {
        let key = (tcb.local(), tcb.remote());
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.entry = Some(Entry {
            tcb,
            owner: Owner::App,
            accepted: false,
            in_event_queue: false,
            deadline: None,
            changed: false,
        });
        let id = ConnId {
            index,
            generation: slot.generation,
        };
        self.tuples.insert(key, id);
        self.stats.connections += 1;
        self.set_owner(id, owner);
        self.touch(id);
        id
    }

    fn entry(&self, id: ConnId) -> Option<&Entry> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_ref()
    }

    fn entry_mut(&mut self, id: ConnId) -> Option<&mut Entry> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_mut()
    }

    fn iter_ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.entry.as_ref().map(|_| ConnId {
                index: i as u32,
                generation: s.generation,
            })
        })
    }

    /// Forgets a CLOSED connection nobody holds any more.
    fn reap(&mut self, id: ConnId) {
        let Some(e) = self.entry(id) else { return };
        if e.tcb.state() != State::Closed || e.tcb.reset_pending() {
            return;
        }
        if matches!(e.owner, Owner::App | Owner::Queued(_)) {
            return;
        }
        // Leaves the half-open count of its listener, if embryonic.
        self.set_owner(id, Owner::Orphan);
        let Some(e) = self.entry(id) else { return };
        let key = (e.tcb.local(), e.tcb.remote());
        trace!("forgetting connection {} -> {}", key.0, key.1);
        if self.tuples.get(&key) == Some(&id) {
            self.tuples.remove(&key);
        }
        let slot = &mut self.slots[id.index as usize];
        slot.entry = None;
        slot.generation = slot.generation.wrapping_add(1);
        // Its timer-index entry, if any, goes stale (invariant 2).
        slot.timer_stamp = slot.timer_stamp.wrapping_add(1);
        self.free.push(id.index);
    }

    // ------------------------------------------------------------------
    // Input
    // ------------------------------------------------------------------

    /// Processes one raw IPv4 packet from the device.
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        self.handle_packet_with(now, packet, false);
    }

    /// [`handle_packet`](Self::handle_packet) for a packet from an offload
    /// device: with `tcp_csum_partial` its TCP checksum is partial and not
    /// verified ([`wire::parse_with`]); it may be a super-packet of up to
    /// 64 KB, which enters its connection as one segment.
    pub fn handle_packet_with(&mut self, now: Instant, packet: &[u8], tcp_csum_partial: bool) {
        self.sync_touched();
        self.handle_packet_inner(now, packet, tcp_csum_partial);
        self.settle();
    }

    /// A packet the runtime dropped before it reached the stack (a bad
    /// virtio-net header): counted with the others.
    pub fn count_drop(&mut self, reason: wire::DropReason, len: usize) {
        self.stats.packets_in += 1;
        *self.stats.dropped.entry(reason.as_str()).or_insert(0) += 1;
        debug!("dropped a {len}-byte packet: {reason}");
    }

    fn handle_packet_inner(&mut self, now: Instant, packet: &[u8], tcp_csum_partial: bool) {
        let parsed = match wire::parse_with(packet, tcp_csum_partial) {
            Ok(p) => p,
            Err(reason) => {
                self.count_drop(reason, packet.len());
                return;
            }
        };
        self.stats.packets_in += 1;
        match parsed {
            Packet::IcmpEchoRequest {
                src,
                dst,
                ident,
                seq,
                payload,
            } => {
                if dst != self.cfg.addr {
                    self.stats.not_for_us += 1;
                    return;
                }
                trace!("echo request from {src} seq {seq}");
                self.push_control(Control::EchoReply {
                    src: dst,
                    dst: src,
                    ident,
                    seq,
                    payload: payload.to_vec(),
                });
            }
            Packet::Tcp(seg) => {
                if *seg.dst.ip() != self.cfg.addr {
                    self.stats.not_for_us += 1;
                    return;
                }
                self.stats.tcp_in += 1;
                self.handle_segment(now, &seg);
            }
        }
    }

    fn handle_segment(&mut self, now: Instant, seg: &TcpSegment<'_>) {
        if let Some(&id) = self.tuples.get(&(seg.dst, seg.src)) {
            let Some(e) = self.entry_mut(id) else { return };
            let verdict = e.tcb.handle_segment(now, seg);
            if verdict == Verdict::SendReset {
                self.reset_for(seg);
            }
            self.after_event(id);
            return;
        }
        if self.listeners.contains_key(&seg.dst.port()) {
            self.handle_listen(now, seg);
            return;
        }
        // RFC 9293 section 3.10.7.1: CLOSED. Answer anything but a RST with a RST.
        trace!("segment for {} from {}: no connection", seg.dst, seg.src);
        self.reset_for(seg);
    }

    /// RFC 9293 section 3.10.7.2: a segment for a listening port.
    fn handle_listen(&mut self, now: Instant, seg: &TcpSegment<'_>) {
        if seg.flags.contains(TcpFlags::RST) {
            return;
        }
        if seg.flags.contains(TcpFlags::ACK) {
            self.reset_for(seg);
            return;
        }
        if !seg.flags.contains(TcpFlags::SYN) {
            return;
        }
        let port = seg.dst.port();
        let (backlog, queued, embryonic) = self
            .listeners
            .get(&port)
            .map_or((0, 0, 0), |l| (l.backlog, l.queue.len(), l.embryonic.len()));
        if queued + embryonic >= backlog {
            // Like Linux, drop the SYN; the peer will retry.
            self.stats.syn_backlog_full += 1;
            debug!("backlog of port {port} full, dropping SYN from {}", seg.src);
            return;
        }
        let iss = self.isn.isn(now, seg.dst, seg.src);
        let tcp = self
            .listeners
            .get(&port)
            .map_or_else(|| self.cfg.tcp.clone(), |l| l.tcp.clone());
        let tcb = Tcb::accept(seg, iss, tcp);
        debug!("{} -> {}: SYN received on a listener", seg.dst, seg.src);
        self.insert(tcb, Owner::Embryonic(port));
    }

    /// Queues the reset RFC 9293 section 3.10.7.1 prescribes for `seg`.
    fn reset_for(&mut self, seg: &TcpSegment<'_>) {
        if seg.flags.contains(TcpFlags::RST) {
            return;
        }
        let rst = if seg.flags.contains(TcpFlags::ACK) {
            TcpSegment {
                src: seg.dst,
                dst: seg.src,
                seq: seg.ack,
                ack: SeqNum(0),
                flags: TcpFlags::RST,
                window: 0,
                options: TcpOptions::default(),
                payload: &[],
            }
        } else {
            TcpSegment {
                src: seg.dst,
                dst: seg.src,
                seq: SeqNum(0),
                ack: seg.seq + seg.seg_len(),
                flags: TcpFlags::RST | TcpFlags::ACK,
                window: 0,
                options: TcpOptions::default(),
                payload: &[],
            }
        };
        debug!("{} -> {}: sending RST", seg.dst, seg.src);
        self.stats.resets_sent += 1;
        self.push_control(Control::Reset(rst));
    }

    fn push_control(&mut self, c: Control) {
        if self.control.len() < CONTROL_QUEUE_MAX {
            self.control.push_back(c);
        }
    }

    /// Moves connections between owners after they changed state.
    fn after_event(&mut self, id: ConnId) {
        let Some(e) = self.entry_mut(id) else { return };
        if let Owner::Embryonic(port) = e.owner {
            if e.tcb.state().is_synchronized() {
                e.accepted = true;
                self.set_owner(id, Owner::Queued(port));
                if let Some(l) = self.listeners.get_mut(&port) {
                    l.queue.push_back(id);
                }
            }
        }
        self.touch(id);
        self.note_events(id);
        self.reap(id);
    }

    /// Puts `id` in the event queue if it has events to report. Nobody is
    /// told about connections the application let go or that are still in
    /// a listener's handshake: their events are dropped.
    fn note_events(&mut self, id: ConnId) {
        let Some(e) = self.entry_mut(id) else { return };
        if matches!(e.owner, Owner::Orphan | Owner::Embryonic(_)) {
            while e.tcb.poll_event().is_some() {}
            return;
        }
        if e.in_event_queue || !(e.accepted || e.tcb.has_events()) {
            return;
        }
        e.in_event_queue = true;
        self.event_queue.push_back(id);
    }

    /// The next thing that happened: a connection accepted on a listener,
    /// or an event of a connection ([`ConnEvent`]: established, readable,
    /// writable, closed with its reason). Events of one connection are
    /// coalesced (one `Readable` however many segments arrived) and come in
    /// the order their connections first had one. Call it after
    /// [`handle_packet`](Self::handle_packet),
    /// [`handle_timeout`](Self::handle_timeout) or
    /// [`poll_transmit`](Self::poll_transmit) until it returns `None`; the
    /// queue holds each connection at most once, so it stays bounded if
    /// nobody asks.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.sync_touched();
        while let Some(&conn) = self.event_queue.front() {
            if let Some(e) = self.entry_mut(conn) {
                if std::mem::take(&mut e.accepted) {
                    if let Owner::Queued(port) = e.owner {
                        return Some(Event::Accepted { port, conn });
                    }
                }
                if let Some(event) = e.tcb.poll_event() {
                    return Some(Event::Conn { conn, event });
                }
                e.in_event_queue = false;
            }
            self.event_queue.pop_front();
        }
        None
    }

    // ------------------------------------------------------------------
    // Timers
    // ------------------------------------------------------------------

    /// The earliest deadline of any connection. O(1): the top of the timer
    /// index, or the deadline of the connection [`tcb_mut`](Self::tcb_mut)
    /// handed out last (see `Timers` in the source for why this is exact).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let indexed = match self.timers.heap.peek() {
            Some(&Reverse((t, index, stamp))) if Timers::is_live(&self.slots, index, stamp) => {
                Some(t)
            }
            // Invariant 3 says the top is live; should it not be, stay
            // exact the slow way rather than sleep through a deadline.
            Some(_) => self
                .timers
                .heap
                .iter()
                .filter(|Reverse((_, index, stamp))| Timers::is_live(&self.slots, *index, *stamp))
                .map(|Reverse((t, _, _))| *t)
                .min(),
            None => None,
        };
        let touched = self
            .touched
            .and_then(|id| self.tcb(id))
            .and_then(Tcb::poll_timeout);
        indexed.into_iter().chain(touched).min()
    }

    /// Runs every timer that expired at or before `now`: pops the due
    /// entries of the timer index, never visiting the other connections.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sync_touched();
        // Collect first, then run in slot order, as the walk over every
        // slot did: the order of the resets and events they produce stays.
        let mut due = std::mem::take(&mut self.scratch);
        due.clear();
        while let Some(&Reverse((t, index, stamp))) = self.timers.heap.peek() {
            if t > now {
                break;
            }
            self.timers.heap.pop();
            if !Timers::is_live(&self.slots, index, stamp) {
                continue;
            }
            // Popped: the connection has no live entry now; `touch` below
            // indexes whatever deadline running its timers leaves.
            if let Some(e) = self.slots[index as usize].entry.as_mut() {
                e.deadline = None;
            }
            due.push(index);
        }
        due.sort_unstable();
        for &index in &due {
            let slot = &mut self.slots[index as usize];
            let id = ConnId {
                index,
                generation: slot.generation,
            };
            let Some(e) = slot.entry.as_mut() else {
                continue;
            };
            if e.tcb.poll_timeout().is_some_and(|t| t <= now) {
                e.tcb.handle_timeout(now);
                self.after_event(id);
            } else {
                self.refresh(id);
            }
        }
        self.scratch = due;
        self.settle();
    }

    // ------------------------------------------------------------------
    // Output
    // ------------------------------------------------------------------

    /// Produces every packet that is ready to go, writing each into `buf` and
    /// handing it to `emit`. `buf` must hold a whole packet (the MTU).
    ///
    /// Only the connections on the changed list are visited (in slot order,
    /// as when every slot was walked): nothing else can have output, since a
    /// TCB's output changes only through a segment, a timer, an application
    /// call or an earlier `poll_transmit` that stopped at its cap.
    ///
    /// Every packet is finished (checksums complete). With
    /// [`TcpConfig::max_super_segment`](crate::tcb::TcpConfig::max_super_segment)
    /// set a packet may be a super-segment larger than the MTU, and `buf`
    /// must hold 64 KB; [`poll_transmit_with`](Self::poll_transmit_with)
    /// says which packets are.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8], mut emit: impl FnMut(&[u8])) {
        self.transmit(now, buf, true, &mut |p, _| emit(p));
    }

    /// Like [`poll_transmit`](Self::poll_transmit), but the packets are left
    /// for the device to finish as their [`TxOffload`] says (a partial
    /// checksum, a super-segment to cut; see [`crate::gso`]).
    pub fn poll_transmit_with(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        mut emit: impl FnMut(&[u8], TxOffload),
    ) {
        self.transmit(now, buf, false, &mut emit);
    }

    /// [`poll_transmit`](Self::poll_transmit) (`finish`: checksums
    /// completed here) or [`poll_transmit_with`](Self::poll_transmit_with).
    fn transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        finish: bool,
        emit: &mut impl FnMut(&[u8], TxOffload),
    ) {
        self.sync_touched();
        self.dispatch_control(buf, emit);
        let mut ids = std::mem::replace(&mut self.changed, std::mem::take(&mut self.scratch_ids));
        ids.sort_unstable_by_key(|id| id.index);
        for &id in &ids {
            let Some(e) = self.entry_mut(id) else {
                continue;
            };
            e.changed = false;
            if self.dispatch_slot(now, id.index as usize, buf, finish, emit) {
                // Stopped at the cap: more to send next time.
                if let Some(e) = self.entry_mut(id) {
                    if !std::mem::replace(&mut e.changed, true) {
                        self.changed.push(id);
                    }
                }
            }
        }
        ids.clear();
        self.scratch_ids = ids;
        self.settle();
    }

    /// Like [`poll_transmit`](Self::poll_transmit), but of the connections only `id`:
    /// what an application call on one connection produced, without a walk
    /// over every other connection (the driver's next batch sends theirs).
    pub fn poll_transmit_conn(
        &mut self,
        now: Instant,
        id: ConnId,
        buf: &mut [u8],
        mut emit: impl FnMut(&[u8]),
    ) {
        self.transmit_conn(now, id, buf, true, &mut |p, _| emit(p));
    }

    /// [`poll_transmit_conn`](Self::poll_transmit_conn), with the packets
    /// left for the device to finish, as in
    /// [`poll_transmit_with`](Self::poll_transmit_with).
    pub fn poll_transmit_conn_with(
        &mut self,
        now: Instant,
        id: ConnId,
        buf: &mut [u8],
        mut emit: impl FnMut(&[u8], TxOffload),
    ) {
        self.transmit_conn(now, id, buf, false, &mut emit);
    }

    fn transmit_conn(
        &mut self,
        now: Instant,
        id: ConnId,
        buf: &mut [u8],
        finish: bool,
        emit: &mut impl FnMut(&[u8], TxOffload),
    ) {
        self.sync_touched();
        self.dispatch_control(buf, emit);
        if self.entry(id).is_some() {
            // It stays on the changed list, if it is there: the next
            // `poll_transmit` finds nothing more to send and lets it go.
            self.dispatch_slot(now, id.index as usize, buf, finish, emit);
        }
        self.settle();
    }

    /// Sends the queued resets and echo replies.
    fn dispatch_control(&mut self, buf: &mut [u8], emit: &mut impl FnMut(&[u8], TxOffload)) {
        while let Some(c) = self.control.pop_front() {
            let n = match &c {
                Control::Reset(rst) => wire::emit_tcp(buf, rst, &[]),
                Control::EchoReply {
                    src,
                    dst,
                    ident,
                    seq,
                    payload,
                } => {
                    self.stats.echo_replies += 1;
                    wire::emit_icmp_echo_reply(buf, *src, *dst, *ident, *seq, payload)
                }
            };
            if let Some(n) = n {
                self.stats.packets_out += 1;
                emit(&buf[..n], TxOffload::NONE);
            }
        }
    }

    /// Sends what the connection in slot `index` has ready, re-indexes its
    /// deadline (sending arms timers), then forgets it if it is closed and
    /// released. True if it stopped at its cap with more to send.
    fn dispatch_slot(
        &mut self,
        now: Instant,
        index: usize,
        buf: &mut [u8],
        finish: bool,
        emit: &mut impl FnMut(&[u8], TxOffload),
    ) -> bool {
        let slot = &mut self.slots[index];
        let id = ConnId {
            index: index as u32,
            generation: slot.generation,
        };
        let Some(e) = slot.entry.as_mut() else {
            return false;
        };
        // Bounded: a TCB emits at most its window's worth, but keep a cap anyway.
        let mut capped = true;
        for _ in 0..4096 {
            let Some((n, mut offload)) = e.tcb.poll_transmit_with(now, buf) else {
                capped = false;
                break;
            };
            if finish && offload.partial_checksum {
                // The TCB wrote this packet itself: it is well formed.
                let _ = wire::complete_tcp_checksum(&mut buf[..n]);
                offload.partial_checksum = false;
            }
            self.stats.packets_out += 1;
            emit(&buf[..n], offload);
        }
        self.refresh(id);
        self.note_events(id);
        self.reap(id);
        capped
    }
}

#[cfg(test)]
mod tests {
    //! The bookkeeping that spares a wake-up the walk over every connection,
    //! checked against that walk: random traffic and application calls
    //! between two stacks over a lossy, reordering link, and after every
    //! step the timer index, the changed list and the half-open counters
    //! must say what a scan of the slab says.

    use super::*;
    use crate::sim::{LinkConfig, SimNet};
    use std::time::Duration;

    impl Stack {
        /// Asserts the invariants of [`Timers`], the changed list and the
        /// half-open counters against a scan of every slot.
        fn check_bookkeeping(&self) {
            let mut live: HashMap<u32, Instant> = HashMap::new();
            for &Reverse((t, index, stamp)) in self.timers.heap.iter() {
                if Timers::is_live(&self.slots, index, stamp) {
                    assert!(live.insert(index, t).is_none(), "two live entries");
                }
            }
            if let Some(&Reverse((_, index, stamp))) = self.timers.heap.peek() {
                assert!(Timers::is_live(&self.slots, index, stamp), "stale top");
            }
            for id in self.iter_ids() {
                let e = self.entry(id).unwrap();
                if self.touched != Some(id) {
                    assert_eq!(e.deadline, e.tcb.poll_timeout(), "deadline of {id:?}");
                } else {
                    assert_eq!(e.deadline, None, "the touched one is not indexed");
                }
                assert_eq!(live.get(&id.index).copied(), e.deadline, "entry of {id:?}");
                assert_eq!(e.changed, self.changed.contains(&id), "changed {id:?}");
            }
            let brute = self
                .slots
                .iter()
                .filter_map(|s| s.entry.as_ref())
                .filter_map(|e| e.tcb.poll_timeout())
                .min();
            assert_eq!(self.poll_timeout(), brute);
            for (&port, l) in &self.listeners {
                let scan: HashSet<ConnId> = self
                    .iter_ids()
                    .filter(|&id| self.entry(id).unwrap().owner == Owner::Embryonic(port))
                    .collect();
                assert_eq!(l.embryonic, scan, "half-open set of port {port}");
                for &id in &l.queue {
                    assert_eq!(self.entry(id).map(|e| e.owner), Some(Owner::Queued(port)));
                }
            }
        }

        /// What the walk over every slot would still find after
        /// `poll_transmit`: it must find nothing to send, nothing to reap
        /// and no event to queue.
        fn check_nothing_left(&mut self, now: Instant) {
            let count = self.connection_count();
            let events = self.event_queue.len();
            let mut buf = vec![0u8; 65_535];
            let mut sent = 0;
            for index in 0..self.slots.len() {
                self.dispatch_slot(now, index, &mut buf, true, &mut |_, _| sent += 1);
            }
            assert_eq!(sent, 0, "output left behind by poll_transmit");
            assert_eq!(self.connection_count(), count, "reap left behind");
            assert_eq!(self.event_queue.len(), events, "events left behind");
            self.settle();
        }
    }

    #[test]
    fn bookkeeping_matches_a_full_scan_under_random_traffic() {
        for seed in 0..6u64 {
            let mut a = StackConfig::new(Ipv4Addr::new(10, 0, 0, 1));
            a.seed = Some(seed);
            let mut b = StackConfig::new(Ipv4Addr::new(10, 0, 0, 2));
            b.seed = Some(seed + 100);
            let mut n = SimNet::new(a, b, Duration::from_millis(5));
            n.set_seed(seed);
            n.set_link(LinkConfig {
                loss: 0.1,
                reorder: 0.1,
                reorder_delay: Duration::from_millis(7),
                duplicate: 0.05,
                ..LinkConfig::new(Duration::from_millis(5))
            });
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            for port in [80, 81] {
                n.b.listen(port, 3).unwrap();
            }
            let mut mine: Vec<ConnId> = Vec::new();
            let mut theirs: Vec<ConnId> = Vec::new();
            let mut buf = [0u8; 3000];
            for _ in 0..3000 {
                match rng.random_range(0..12) {
                    0 | 1 => {
                        let port = [80, 81, 82][rng.random_range(0..3)];
                        let remote = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), port);
                        if let Ok(id) = n.a.connect(n.now(), remote) {
                            mine.push(id);
                        }
                    }
                    2 => {
                        while let Some(id) = n.b.accept(80 + rng.random_range(0..2)) {
                            theirs.push(id);
                        }
                    }
                    3..=8 if !(mine.is_empty() && theirs.is_empty()) => {
                        let pick = rng.random_range(0..mine.len() + theirs.len());
                        let (s, list, i) = if pick < mine.len() {
                            (&mut n.a, &mut mine, pick)
                        } else {
                            (&mut n.b, &mut theirs, pick - mine.len())
                        };
                        let id = list[i];
                        let op = rng.random_range(0..10);
                        if op == 9 {
                            s.release(id);
                            list.swap_remove(i);
                        } else if let Some(t) = s.tcb_mut(id) {
                            match op {
                                0..=3 => {
                                    let len = rng.random_range(1..3000);
                                    let _ = t.send(&buf[..len]);
                                }
                                4..=6 => {
                                    let _ = t.recv(&mut buf);
                                }
                                7 => t.close(),
                                _ => t.abort(),
                            }
                            // Checked with the `&mut Tcb` just given back.
                            s.check_bookkeeping();
                        }
                    }
                    _ => {
                        if !n.step() {
                            continue;
                        }
                        let now = n.now();
                        n.a.check_nothing_left(now);
                        n.b.check_nothing_left(now);
                    }
                }
                while n.a.poll_event().is_some() {}
                while n.b.poll_event().is_some() {}
                n.a.check_bookkeeping();
                n.b.check_bookkeeping();
            }
            // Everything is let go and the timers run out: nothing is left.
            for id in mine.drain(..) {
                n.a.release(id);
            }
            for id in theirs.drain(..) {
                n.b.release(id);
            }
            n.b.unlisten(80);
            n.b.unlisten(81);
            let mut steps = 0;
            while n.step() {
                steps += 1;
                assert!(steps < 100_000, "never settles");
                n.a.check_bookkeeping();
                n.b.check_bookkeeping();
            }
            let left: Vec<State> =
                n.a.connection_states()
                    .chain(n.b.connection_states())
                    .collect();
            // An orphan in FIN-WAIT-2 whose peer's FIN or RST was lost waits
            // forever: the TCB has no FIN-WAIT-2 timer (the walk over every
            // slot, `check_nothing_left`, would not reap it either).
            assert!(
                left.iter().all(|&s| s == State::FinWait2),
                "seed {seed}: left {left:?}"
            );
            assert!(n.a.timers.heap.len() <= 1024);
        }
    }
}
