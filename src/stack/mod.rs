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
//!   connections (half-open and queued) without walking the slab. Past the
//!   backlog, SYN cookies (`cookies.rs`) answer without keeping state.
//!
//! Demultiplexing is O(1) (a hash map of 4-tuples).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

use log::{debug, trace};
use rand::{Rng, SeedableRng};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::error::Error;
use crate::gso::TxOffload;
use crate::isn::IsnGenerator;
use crate::seq::SeqNum;
use crate::state::State;
use crate::syncookie::SynCookies;
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
    /// Challenge ACKs (RFC 5961) the whole stack sends per second, about:
    /// each second's budget is drawn at random between half and 1.5 times
    /// this (as Linux does, so the budget itself reveals nothing to a blind
    /// attacker; RFC 5961 section 7). 0: no limit.
    pub challenge_ack_limit: u32,
    /// At most this many orphans (connections the application let go of,
    /// still closing) and at most `max_orphan_bytes` of data queued in
    /// their send buffers; past either, the oldest orphan is reset.
    pub max_orphans: usize,
    /// See [`max_orphans`](Self::max_orphans).
    pub max_orphan_bytes: usize,
    /// Answer SYNs with SYN cookies (RFC 4987 section 3.6,
    /// [`crate::syncookie`]) when a listener's backlog is taken by
    /// half-open connections, so that a SYN flood cannot lock real clients
    /// out (Linux's default, `tcp_syncookies = 1`). Off: such SYNs are
    /// dropped.
    pub syn_cookies: bool,
    /// Any-IP mode (for tun2socks-style relays): the stack takes TCP
    /// segments and ICMP echo requests for every IPv4 address, not only
    /// [`addr`](Self::addr). Connections answer from the address the peer
    /// dialled (their local address is that original destination), and an
    /// any-IP listener ([`Stack::listen_any`]) takes SYNs to any address
    /// and port that no ordinary listener holds. Active opens still use
    /// `addr`.
    pub any_ip: bool,
    /// Decides, in any-IP mode, whether a SYN to the any-IP listener is
    /// taken; refused ones are answered with a RST. `None`: all are taken.
    pub accept_filter: Option<AcceptFilter>,
    /// Record the congestion trace ([`TraceSample`]s, taken with
    /// [`Stack::poll_trace`]; `utcp --trace FILE`). Off by default.
    pub trace: bool,
}

/// A filter on the SYNs an any-IP listener takes
/// ([`StackConfig::accept_filter`]): called with the destination the peer
/// dialled and the peer's address; `false` refuses (a RST).
#[derive(Clone)]
pub struct AcceptFilter(
    pub std::sync::Arc<dyn Fn(SocketAddrV4, SocketAddrV4) -> bool + Send + Sync>,
);

impl AcceptFilter {
    /// A filter from a closure.
    pub fn new(f: impl Fn(SocketAddrV4, SocketAddrV4) -> bool + Send + Sync + 'static) -> Self {
        AcceptFilter(std::sync::Arc::new(f))
    }

    /// Whether a SYN from `remote` to `dialled` is taken.
    pub fn allows(&self, dialled: SocketAddrV4, remote: SocketAddrV4) -> bool {
        (self.0)(dialled, remote)
    }
}

impl std::fmt::Debug for AcceptFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AcceptFilter(..)")
    }
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
            challenge_ack_limit: 1000,
            max_orphans: 4096,
            max_orphan_bytes: 64 << 20,
            syn_cookies: true,
            any_ip: false,
            accept_filter: None,
            trace: false,
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
    /// An orphan reset to bound the orphans ([`StackConfig::max_orphans`]);
    /// forgotten once its RST is out. Not counted as an orphan any more.
    Dying,
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
    embryonic: FxHashSet<ConnId>,
    /// Settings for the connections this listener accepts.
    tcp: TcpConfig,
    /// When this listener last answered with a SYN cookie.
    cookie_sent: Option<Instant>,
}

/// Counters of the whole stack (serialized by `--stats=json` as they are).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
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
    /// Connections that ended (reset by the peer, or timed out) while
    /// waiting in an accept queue: their slot was freed, `accept` never
    /// returns them.
    pub closed_before_accept: u64,
    /// Challenge ACKs not sent: over the second's budget
    /// ([`StackConfig::challenge_ack_limit`]).
    pub challenge_acks_limited: u64,
    /// Orphans reset because there were too many, or they held too much
    /// data ([`StackConfig::max_orphans`]).
    pub orphans_reset: u64,
    /// SYNs to the any-IP listener refused by
    /// [`StackConfig::accept_filter`] (answered with a RST).
    pub syns_filtered: u64,
    /// SYNs answered with a cookie SYN-ACK (the SYN queue was full).
    pub syn_cookies_sent: u64,
    /// Connections built from a valid cookie in the peer's ACK.
    pub syn_cookies_accepted: u64,
    /// ACKs to a listener that sent cookies, with no valid one (answered
    /// with a RST).
    pub syn_cookies_rejected: u64,
}

/// The sans-IO TCP/IPv4 stack.
#[derive(Debug)]
pub struct Stack {
    cfg: StackConfig,
    isn: IsnGenerator,
    cookies: SynCookies,
    rng: rand::rngs::StdRng,
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// The demux: keyed by what the peer chooses, so by the standard
    /// library's keyed SipHash (a blind peer cannot aim at one bucket).
    tuples: HashMap<(SocketAddrV4, SocketAddrV4), ConnId>,
    /// Keyed by our own ports, so by the faster FxHash.
    listeners: FxHashMap<u16, Listener>,
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
    /// Orphans, oldest first ([`Stack::release`] order); ids of connections
    /// gone since are skipped and pruned lazily.
    orphans: VecDeque<ConnId>,
    /// How many connections are [`Owner::Orphan`] now.
    orphan_count: usize,
    /// Releases so far (the orphan byte check runs every few).
    orphan_releases: u64,
    /// This second's challenge ACK budget (RFC 5961 section 7).
    challenges: ChallengeBudget,
    stats: StackStats,
    /// The congestion trace, when [`StackConfig::trace`] is on.
    tracer: Option<Tracer>,
}

/// What is left of the current second's challenge ACKs.
#[derive(Debug, Default)]
struct ChallengeBudget {
    /// When the current second began.
    since: Option<Instant>,
    left: u32,
}

#[derive(Debug)]
enum Control {
    /// A RST or a cookie SYN-ACK (no payload).
    Segment(TcpSegment<'static>),
    EchoReply {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ident: u16,
        seq: u16,
        payload: Vec<u8>,
    },
}

/// At most this many resets, cookie SYN-ACKs and echo replies wait for dispatch; more are dropped.
const CONTROL_QUEUE_MAX: usize = 1024;
/// Every this many releases the stack adds up what its orphans hold.
const ORPHAN_BYTES_EVERY: u64 = 64;
/// The port the any-IP listener ([`Stack::listen_any`]) is known by in
/// [`Stack::accept`], [`Stack::unlisten`] and [`Event::Accepted`]: port 0,
/// never a real TCP port.
pub const ANY_PORT: u16 = 0;
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
        let cookie_secret: [u8; 32] = rng.random();
        let mss = cfg
            .mtu
            .saturating_sub(wire::IPV4_HEADER_LEN + wire::TCP_HEADER_LEN);
        cfg.tcp.mss = u16::try_from(mss).unwrap_or(u16::MAX).max(64);
        Stack {
            isn: IsnGenerator::new(secret),
            cookies: SynCookies::new(cookie_secret),
            rng,
            slots: Vec::new(),
            free: Vec::new(),
            tuples: HashMap::new(),
            listeners: FxHashMap::default(),
            control: VecDeque::new(),
            event_queue: VecDeque::new(),
            timers: Timers::default(),
            touched: None,
            changed: Vec::new(),
            scratch: Vec::new(),
            scratch_ids: Vec::new(),
            challenges: ChallengeBudget::default(),
            orphans: VecDeque::new(),
            orphan_count: 0,
            orphan_releases: 0,
            stats: StackStats::default(),
            tracer: cfg.trace.then(Tracer::default),
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
}

mod api;
mod cookies;
mod input;
mod output;
mod slab;
#[cfg(test)]
mod tests;
mod timers;
mod trace;

use trace::Tracer;
pub use trace::{TraceSample, TRACE_QUEUE_MAX};
