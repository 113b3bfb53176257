//! A simulated link between two stacks, on a fake clock.
//!
//! Two [`Stack`]s exchange packets through an in-memory link. Time is
//! simulated: [`SimNet::step`] jumps straight to the next event (a packet
//! arriving or a timer firing), so a test can run minutes of retransmission
//! back-off in microseconds of real time.
//!
//! # Impairments
//!
//! Each direction of the link has its own [`LinkConfig`]
//! ([`SimNet::set_link_dir`]); [`SimNet::set_link`] gives both directions the
//! same one. A link can have a base delay with uniform jitter, a bandwidth
//! limit with a finite FIFO queue (tail drop), independent random loss,
//! Gilbert-Elliott burst loss, reordering, duplication and bit-flip
//! corruption. Every random decision comes from one seeded RNG owned by the
//! [`SimNet`] ([`SimNet::set_seed`]; seed 0 by default): the same seed, the
//! same configuration and the same application calls give the same run,
//! packet for packet.
//!
//! A packet emitted by a stack goes through these stages, in this order:
//!
//! 1. the **filter** ([`SimNet::set_filter`]) sees every packet and may drop
//!    it; this is how tests lose one chosen packet;
//! 2. the **queue**: with a bandwidth limit, a packet the filter kept (or
//!    dropped: it was "lost on the wire" and still used its slot, as before
//!    the queue existed) enters the sender's FIFO if it fits under the
//!    [`QueueLimit`], else it is tail-dropped ([`LinkStats::dropped_queue`]).
//!    It leaves the queue `len / rate` after the previous packet left;
//! 3. **loss**: independent loss with probability [`LinkConfig::loss`], then
//!    the [`GilbertElliott`] burst model if configured
//!    ([`LinkStats::dropped_loss`] counts both);
//! 4. **duplication**: with probability [`LinkConfig::duplicate`] a second
//!    copy is made ([`LinkStats::duplicated`]); the copy does not use the
//!    bottleneck again (it is made past the queue) and goes through stages
//!    5 and 6 on its own;
//! 5. **corruption**: with probability [`LinkConfig::corrupt`], 1 to
//!    [`LinkConfig::corrupt_max_bits`] distinct random bits anywhere in the
//!    packet are flipped (see the note below);
//! 6. **delay**: the copy arrives `delay + U[0, jitter]` after it left the
//!    queue, plus `reorder_delay` with probability [`LinkConfig::reorder`]
//!    ([`LinkStats::reordered`] counts those held back; later packets then
//!    overtake them). Jitter on its own also reorders packets, as netem's
//!    does, unless [`LinkConfig::jitter_keeps_order`] is set: then a packet
//!    that was not held back never arrives before the one sent before it.
//!
//! # Corruption and the Internet checksum
//!
//! The 16-bit ones'-complement checksum of IPv4 and TCP (RFC 1071) catches
//! every single-bit error, but not every 2- or 3-bit error: flipping the same
//! bit position (mod 16) in two different 16-bit words, one 0 to 1 and the
//! other 1 to 0, leaves the sum unchanged. About 1 in 32 random two-bit
//! flips is such a collision, so a long corrupted transfer would eventually
//! deliver bad bytes through any correct TCP. That is a property of the
//! checksum, not of the stack under test, so the simulator re-draws the bit
//! positions whenever its own, independent checksum verification says both
//! the IPv4 header checksum and the TCP (or ICMP) checksum would still pass
//! ([`LinkStats::corrupt_redraws`] counts the re-draws). Every corrupted
//! packet delivered is therefore one that a correct stack must reject, and a
//! test can demand that the receiving stack's [`StackStats::dropped`]
//! counters saw exactly [`LinkStats::corrupted`] packets.
//!
//! # Super-segments
//!
//! A stack configured for TSO ([`TcpConfig::max_super_segment`]) hands the
//! link packets of up to 64 KB for the device to cut ([`crate::gso`]). With
//! [`Segmentation::Split`] (the default) the link cuts them as a NIC would,
//! and every stage above applies to each MSS-sized piece; with
//! [`Segmentation::Whole`] the super-segment travels as one packet, as it does
//! through a TUN into the kernel (which loses or keeps it whole), and the
//! receiving stack takes it as one segment. Partial checksums are completed
//! either way.
//!
//! With [`SimNet::set_trace`] on, every packet a stack emits is also kept in
//! [`SimNet::trace`], with what became of it.
//!
//! [`StackStats::dropped`]: crate::stack::StackStats::dropped
//! [`TcpConfig::max_super_segment`]: crate::tcb::TcpConfig::max_super_segment

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::gso::{self, TxOffload};
use crate::stack::{Stack, StackConfig};
use crate::time::Instant;

/// Which way a packet travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dir {
    /// From stack `a` to stack `b`.
    AtoB,
    /// From stack `b` to stack `a`.
    BtoA,
}

impl Dir {
    /// Both directions, `AtoB` first.
    pub const BOTH: [Dir; 2] = [Dir::AtoB, Dir::BtoA];

    fn idx(self) -> usize {
        self as usize
    }
}

/// What the filter decides for a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Hand it on to the rest of the link (which may still lose it).
    Deliver,
    /// Lose it.
    Drop,
}

/// How the link carries a super-segment ([`SimNet::set_segmentation`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segmentation {
    /// Cut into MSS-sized packets before the link, as a NIC's TSO does.
    Split,
    /// As one packet, as through a TUN into the kernel.
    Whole,
}

/// The Gilbert-Elliott two-state burst-loss model.
///
/// The link is in a *good* or a *bad* state (it starts good). Before each
/// packet it moves from good to bad with probability `p` and from bad to
/// good with probability `r`; the packet is then lost with probability
/// `loss_good` or `loss_bad` depending on the state. The mean burst (time in
/// the bad state) lasts `1 / r` packets, and the long-run share of packets
/// sent in the bad state is `p / (p + r)`. With `loss_good = 0` and
/// `loss_bad = 1` this is the simpler Gilbert model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GilbertElliott {
    /// Probability of moving from the good to the bad state, per packet.
    pub p: f64,
    /// Probability of moving from the bad to the good state, per packet.
    pub r: f64,
    /// Loss probability in the bad state (`1 - h` in the literature).
    pub loss_bad: f64,
    /// Loss probability in the good state (`1 - k` in the literature).
    pub loss_good: f64,
    /// Longest time the link stays bad, if bounded. The chain moves per
    /// packet, so when traffic thins out (one timer retransmission per
    /// doubling RTO) a burst would otherwise stretch over seconds of
    /// simulated time; real bursts are bounded in time.
    pub max_bad: Option<std::time::Duration>,
}

impl GilbertElliott {
    /// The long-run loss rate: `(r * loss_good + p * loss_bad) / (p + r)`.
    pub fn mean_loss(&self) -> f64 {
        if self.p + self.r <= 0.0 {
            return self.loss_good;
        }
        (self.r * self.loss_good + self.p * self.loss_bad) / (self.p + self.r)
    }
}

/// How much the sender's side of a rate-limited link may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueLimit {
    /// Never drops (the queue grows without bound).
    Unlimited,
    /// At most this many packets waiting or being serialised.
    Packets(usize),
    /// At most this many bytes waiting or being serialised.
    Bytes(usize),
}

/// The behaviour of one direction of the link.
///
/// [`LinkConfig::new`] is an ideal link with the given delay; set the other
/// fields (e.g. with struct update syntax) to impair it. Probabilities are
/// in `[0, 1]`; [`SimNet::set_link`] panics on anything else.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// Fixed one-way propagation delay, after the packet left the queue.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `[0, jitter]` for every packet.
    pub jitter: Duration,
    /// If true, jitter never makes a packet overtake the one sent before it
    /// (only [`LinkConfig::reorder`] reorders). If false (the default), as
    /// with netem, jitter on its own reorders packets.
    pub jitter_keeps_order: bool,
    /// Rate of the bottleneck in bytes per second; `None` sends in zero time.
    pub bandwidth: Option<u64>,
    /// Capacity of the queue in front of the bottleneck (only with a
    /// bandwidth); when a packet does not fit it is dropped (tail drop).
    pub queue: QueueLimit,
    /// Probability that a packet is lost, independently of every other.
    pub loss: f64,
    /// Burst loss, applied after (and in addition to) [`LinkConfig::loss`].
    pub burst: Option<GilbertElliott>,
    /// Probability that a packet is held back by `reorder_delay`.
    pub reorder: f64,
    /// How long a reordered packet is held back.
    pub reorder_delay: Duration,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
    /// Probability that a packet is corrupted (bits flipped).
    pub corrupt: f64,
    /// A corrupted packet has between 1 and this many bits flipped
    /// (uniformly; at least 1, at most 3 is the default).
    pub corrupt_max_bits: u8,
}

impl LinkConfig {
    /// A perfect link: `delay` one way, infinite rate, no impairment.
    pub fn new(delay: Duration) -> Self {
        LinkConfig {
            delay,
            jitter: Duration::ZERO,
            jitter_keeps_order: false,
            bandwidth: None,
            queue: QueueLimit::Unlimited,
            loss: 0.0,
            burst: None,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            duplicate: 0.0,
            corrupt: 0.0,
            corrupt_max_bits: 3,
        }
    }

    fn validate(&self) {
        let probs = [
            ("loss", self.loss),
            ("reorder", self.reorder),
            ("duplicate", self.duplicate),
            ("corrupt", self.corrupt),
        ];
        let burst = self
            .burst
            .map_or([0.0; 4], |g| [g.p, g.r, g.loss_bad, g.loss_good]);
        for (name, p) in probs.into_iter().chain(
            ["burst.p", "burst.r", "burst.loss_bad", "burst.loss_good"]
                .into_iter()
                .zip(burst),
        ) {
            assert!(
                (0.0..=1.0).contains(&p),
                "LinkConfig::{name} = {p} is not a probability"
            );
        }
        assert!(self.corrupt_max_bits >= 1, "corrupt_max_bits must be >= 1");
    }
}

impl Default for LinkConfig {
    /// [`LinkConfig::new`] with zero delay.
    fn default() -> Self {
        LinkConfig::new(Duration::ZERO)
    }
}

/// Counters of one direction of the link.
///
/// Conservation: `sent + duplicated = delivered + dropped_filter +
/// dropped_loss + dropped_queue + (copies still in flight)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets the sending stack emitted.
    pub sent: u64,
    /// Packet copies handed to the receiving stack (duplicates and corrupted
    /// copies included).
    pub delivered: u64,
    /// Packets the filter dropped.
    pub dropped_filter: u64,
    /// Packets lost at random (independent loss and burst loss).
    pub dropped_loss: u64,
    /// Packets tail-dropped because the queue was full.
    pub dropped_queue: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Packets held back by the reorder delay.
    pub reordered: u64,
    /// Corrupted copies handed to the receiving stack (counted on delivery,
    /// so those still in flight are not included).
    pub corrupted: u64,
    /// Bit-flip patterns re-drawn because the Internet checksum could not
    /// have caught them (see the module documentation).
    pub corrupt_redraws: u64,
}

impl LinkStats {
    /// Packets dropped for any reason (filter, loss, queue).
    pub fn dropped(&self) -> u64 {
        self.dropped_filter + self.dropped_loss + self.dropped_queue
    }
}

type Filter = Box<dyn FnMut(Dir, &[u8]) -> Fate>;

/// What happened to a traced packet, beyond the filter's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Put on the link; one arrival time per copy (two if duplicated).
    Sent {
        /// When each copy reaches the other stack.
        arrivals: Vec<Instant>,
        /// Whether each copy (same order) was corrupted.
        corrupted: Vec<bool>,
    },
    /// Dropped by the filter.
    Filtered,
    /// Lost at random (independent or burst loss).
    Lost,
    /// Tail-dropped at the full queue.
    QueueFull,
}

/// One packet seen on the link, kept when tracing is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traced {
    /// When the sending stack emitted it.
    pub sent: Instant,
    /// Which way it went.
    pub dir: Dir,
    /// What the filter decided.
    pub fate: Fate,
    /// What the link did with it.
    pub outcome: Outcome,
    /// The raw IPv4 packet as emitted (before any corruption).
    pub bytes: Vec<u8>,
}

/// A packet copy on the link, ordered by arrival time then by a sequence
/// number (so copies due at the same instant arrive in the order sent).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    id: u64,
    dir: Dir,
    corrupted: bool,
    bytes: Vec<u8>,
}

/// Per-direction mutable state of the link.
#[derive(Debug)]
struct DirState {
    cfg: LinkConfig,
    stats: LinkStats,
    /// When the bottleneck finishes sending what it already holds.
    busy_until: Instant,
    /// (departure time, length) of every packet queued or being serialised.
    queue: VecDeque<(Instant, usize)>,
    /// Bytes in `queue`.
    queued_bytes: usize,
    /// Gilbert-Elliott state: true when bad.
    ge_bad: bool,
    /// When the link last turned bad.
    ge_bad_since: Instant,
    /// Latest arrival of a packet not held back (for `jitter_keeps_order`).
    last_arrival: Instant,
}

impl DirState {
    fn new(cfg: LinkConfig) -> Self {
        DirState {
            cfg,
            stats: LinkStats::default(),
            busy_until: Instant::ZERO,
            queue: VecDeque::new(),
            queued_bytes: 0,
            ge_bad: false,
            ge_bad_since: Instant::ZERO,
            last_arrival: Instant::ZERO,
        }
    }
}

/// Two stacks joined by a simulated link.
pub struct SimNet {
    /// The first stack.
    pub a: Stack,
    /// The second stack.
    pub b: Stack,
    now: Instant,
    next_id: u64,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    filter: Filter,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    segmentation: Segmentation,
    rng: StdRng,
    dirs: [DirState; 2],
    /// Packet copies delivered so far, per direction (index `Dir as usize`);
    /// the same as [`LinkStats::delivered`].
    pub delivered: [u64; 2],
    /// Packets the filter dropped, per direction; the same as
    /// [`LinkStats::dropped_filter`].
    pub dropped: [u64; 2],
    /// Every packet emitted since tracing was turned on, in order.
    pub trace: Vec<Traced>,
    tracing: bool,
}

impl DirState {
    /// The bottleneck queue (stage 2): the packet's departure time, or
    /// `None` when the queue is full. Without a bandwidth limit it leaves at once.
    fn enqueue(&mut self, now: Instant, len: usize) -> Option<Instant> {
        let Some(rate) = self.cfg.bandwidth else {
            return Some(now);
        };
        while self.queue.front().is_some_and(|&(t, _)| t <= now) {
            if let Some((_, l)) = self.queue.pop_front() {
                self.queued_bytes -= l;
            }
        }
        let fits = match self.cfg.queue {
            QueueLimit::Unlimited => true,
            QueueLimit::Packets(n) => self.queue.len() < n,
            QueueLimit::Bytes(n) => self.queued_bytes + len <= n,
        };
        if !fits {
            return None;
        }
        let start = self.busy_until.max(now);
        let micros = (len as u64 * 1_000_000).div_ceil(rate);
        self.busy_until = start + Duration::from_micros(micros);
        self.queue.push_back((self.busy_until, len));
        self.queued_bytes += len;
        Some(self.busy_until)
    }

    /// Random loss and Gilbert-Elliott bursts (stage 3).
    fn lost(&mut self, rng: &mut StdRng, now: Instant) -> bool {
        let mut lost = chance(rng, self.cfg.loss);
        if let Some(ge) = self.cfg.burst {
            let was_bad = self.ge_bad;
            self.ge_bad = if self.ge_bad {
                !chance(rng, ge.r)
            } else {
                chance(rng, ge.p)
            };
            if self.ge_bad && !was_bad {
                self.ge_bad_since = now;
            }
            if self.ge_bad && ge.max_bad.is_some_and(|m| now - self.ge_bad_since > m) {
                self.ge_bad = false;
            }
            let p = if self.ge_bad {
                ge.loss_bad
            } else {
                ge.loss_good
            };
            // Draw even when already lost, so the burst state machine
            // consumes the RNG the same way whatever `loss` decided.
            lost |= chance(rng, p);
        }
        lost
    }

    /// A copy of `pkt`, with 1 to `corrupt_max_bits` bits flipped when the
    /// corruption draw says so (stage 5); patterns the checksums cannot see
    /// are drawn again.
    fn corrupt(&mut self, rng: &mut StdRng, pkt: &[u8]) -> (Vec<u8>, bool) {
        let mut bytes = pkt.to_vec();
        let bad = chance(rng, self.cfg.corrupt) && !pkt.is_empty();
        if !bad {
            return (bytes, false);
        }
        let max_bits = usize::from(self.cfg.corrupt_max_bits).min(pkt.len() * 8);
        loop {
            bytes.copy_from_slice(pkt);
            let nbits = rng.random_range(1..=max_bits);
            let mut flipped: Vec<usize> = Vec::with_capacity(nbits);
            while flipped.len() < nbits {
                let bit = rng.random_range(0..pkt.len() * 8);
                if !flipped.contains(&bit) {
                    flipped.push(bit);
                    bytes[bit / 8] ^= 0x80 >> (bit % 8);
                }
            }
            if !checksums_pass(pkt, &bytes) {
                return (bytes, true);
            }
            self.stats.corrupt_redraws += 1;
        }
    }

    /// When a packet that left at `departure` arrives: delay, jitter and
    /// reordering (stage 6).
    fn arrival(&mut self, rng: &mut StdRng, departure: Instant) -> Instant {
        let mut at = departure + self.cfg.delay + uniform(rng, self.cfg.jitter);
        if chance(rng, self.cfg.reorder) {
            self.stats.reordered += 1;
            at += self.cfg.reorder_delay;
        } else if self.cfg.jitter_keeps_order {
            at = at.max(self.last_arrival);
            self.last_arrival = at;
        }
        at
    }
}

/// True if `bytes` still passes the IPv4 header checksum and the TCP (or
/// ICMP) checksum, computed over the layout of `orig` (the packet before
/// corruption): an independent implementation of RFC 1071, so as not to
/// trust the codec under test.
fn checksums_pass(orig: &[u8], bytes: &[u8]) -> bool {
    fn sum(mut acc: u64, data: &[u8]) -> u64 {
        for w in data.chunks(2) {
            let hi = u64::from(w[0]) << 8;
            let lo = w.get(1).map_or(0, |&b| u64::from(b));
            acc += hi | lo;
        }
        acc
    }
    fn ok(mut acc: u64) -> bool {
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc == 0xffff
    }
    if orig.len() < 20 || bytes.len() != orig.len() {
        return false;
    }
    let ihl = usize::from(orig[0] & 0x0f) * 4;
    if ihl < 20 || ihl > orig.len() {
        return false;
    }
    if !ok(sum(0, &bytes[..ihl])) {
        return false;
    }
    let body = &bytes[ihl..];
    match orig[9] {
        6 => {
            let mut acc = sum(0, &bytes[12..20]);
            acc += u64::from(bytes[9]);
            acc += body.len() as u64;
            ok(sum(acc, body))
        }
        1 => ok(sum(0, body)),
        // Anything else carries no checksum we know of beyond the header.
        _ => true,
    }
}

/// `true` with probability `p`, drawing from `rng` only when `0 < p < 1`.
fn chance(rng: &mut StdRng, p: f64) -> bool {
    if p <= 0.0 {
        false
    } else if p >= 1.0 {
        true
    } else {
        rng.random_bool(p)
    }
}

/// A uniformly random duration in `[0, max]`, at microsecond resolution.
fn uniform(rng: &mut StdRng, max: Duration) -> Duration {
    let us = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
    if us == 0 {
        Duration::ZERO
    } else {
        Duration::from_micros(rng.random_range(0..=us))
    }
}

impl SimNet {
    /// Two stacks with the given configurations and a perfect link of
    /// one-way `latency` in both directions ([`LinkConfig::new`]); RNG seed 0.
    pub fn new(a: StackConfig, b: StackConfig, latency: Duration) -> Self {
        // Room for a super-segment (TSO, `TcpConfig::max_super_segment`).
        let buf_len = a.mtu.max(b.mtu).max(65_535);
        SimNet {
            a: Stack::new(a),
            b: Stack::new(b),
            now: Instant::ZERO,
            next_id: 0,
            in_flight: BinaryHeap::new(),
            filter: Box::new(|_, _| Fate::Deliver),
            buf: vec![0; buf_len],
            scratch: Vec::new(),
            segmentation: Segmentation::Split,
            rng: StdRng::seed_from_u64(0),
            dirs: [
                DirState::new(LinkConfig::new(latency)),
                DirState::new(LinkConfig::new(latency)),
            ],
            delivered: [0; 2],
            dropped: [0; 2],
            trace: Vec::new(),
            tracing: false,
        }
    }

    /// Re-seeds the link's RNG (`StdRng::seed_from_u64`). The stacks have
    /// their own seeds ([`StackConfig::seed`]).
    pub fn set_seed(&mut self, seed: u64) {
        self.rng = StdRng::seed_from_u64(seed);
    }

    /// Gives both directions the configuration `cfg`.
    ///
    /// Panics if a probability is outside `[0, 1]` or
    /// `corrupt_max_bits` is 0.
    pub fn set_link(&mut self, cfg: LinkConfig) {
        for dir in Dir::BOTH {
            self.set_link_dir(dir, cfg.clone());
        }
    }

    /// Gives direction `dir` the configuration `cfg`, from the next packet
    /// on (packets already on the link keep their arrival times; the queue
    /// keeps what it holds). Panics like [`SimNet::set_link`].
    pub fn set_link_dir(&mut self, dir: Dir, cfg: LinkConfig) {
        cfg.validate();
        self.dirs[dir.idx()].cfg = cfg;
    }

    /// The configuration of direction `dir`.
    pub fn link(&self, dir: Dir) -> &LinkConfig {
        &self.dirs[dir.idx()].cfg
    }

    /// The counters of direction `dir`.
    pub fn link_stats(&self, dir: Dir) -> &LinkStats {
        &self.dirs[dir.idx()].stats
    }

    /// Packet copies currently on the link (both directions).
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Gives each direction of the link a rate of `bytes_per_sec` (`None`
    /// sends in zero time), keeping the rest of each direction's
    /// [`LinkConfig`]. Packets then leave one after the other, each taking
    /// `len / rate` to serialise before the delay starts, so a burst
    /// arrives spread out instead of all at one instant, as on a real link.
    /// A packet the filter drops still uses its slot (it was lost on the
    /// wire). The queue is [`QueueLimit::Unlimited`] unless set otherwise
    /// with [`SimNet::set_link`].
    pub fn set_bandwidth(&mut self, bytes_per_sec: Option<u64>) {
        for d in &mut self.dirs {
            d.cfg.bandwidth = bytes_per_sec.filter(|&r| r > 0);
        }
    }

    /// Turns recording of every packet into [`SimNet::trace`] on or off.
    pub fn set_trace(&mut self, on: bool) {
        self.tracing = on;
    }

    /// Installs a filter that decides the fate of every packet from now on.
    /// It sees every packet a stack emits, before any other impairment.
    pub fn set_filter(&mut self, f: impl FnMut(Dir, &[u8]) -> Fate + 'static) {
        self.filter = Box::new(f);
    }

    /// The simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Chooses how the link carries the super-segments of a stack
    /// configured for TSO ([`Segmentation`]; [`Segmentation::Split`] unless
    /// set).
    pub fn set_segmentation(&mut self, s: Segmentation) {
        self.segmentation = s;
    }

    /// Collects what both stacks want to send and puts it on the link.
    pub fn flush(&mut self) {
        let now = self.now;
        let mut out: Vec<(Dir, Vec<u8>, TxOffload)> = Vec::new();
        self.a.poll_transmit_with(now, &mut self.buf, |p, o| {
            out.push((Dir::AtoB, p.to_vec(), o))
        });
        self.b.poll_transmit_with(now, &mut self.buf, |p, o| {
            out.push((Dir::BtoA, p.to_vec(), o))
        });
        for (dir, pkt, mut offload) in out {
            if self.segmentation == Segmentation::Whole {
                offload.segment_size = None;
            }
            if offload.is_none() {
                self.transmit(now, dir, pkt);
                continue;
            }
            // The device's work ([`crate::gso::finish`]); the stack wrote
            // the packet, so it cannot fail.
            let mut pieces = Vec::new();
            let done = gso::finish(&pkt, offload, &mut self.scratch, |p| {
                pieces.push(p.to_vec())
            });
            debug_assert!(done.is_ok(), "the stack wrote a packet gso cannot finish");
            for piece in pieces {
                self.transmit(now, dir, piece);
            }
        }
    }

    /// Runs one emitted packet through the stages of the module docs.
    fn transmit(&mut self, now: Instant, dir: Dir, pkt: Vec<u8>) {
        let idx = dir.idx();
        self.dirs[idx].stats.sent += 1;
        let fate = (self.filter)(dir, &pkt);
        let outcome = self.impair(now, dir, fate, &pkt);
        if self.tracing {
            self.trace.push(Traced {
                sent: now,
                dir,
                fate,
                outcome,
                bytes: pkt,
            });
        }
    }

    fn impair(&mut self, now: Instant, dir: Dir, fate: Fate, pkt: &[u8]) -> Outcome {
        let idx = dir.idx();
        let d = &mut self.dirs[idx];
        // Stage 2: the queue in front of the bottleneck.
        let departure = match d.enqueue(now, pkt.len()) {
            Some(t) => t,
            None if fate == Fate::Drop => now,
            None => {
                d.stats.dropped_queue += 1;
                return Outcome::QueueFull;
            }
        };
        // Stage 1's verdict, applied after the packet used its slot.
        if fate == Fate::Drop {
            d.stats.dropped_filter += 1;
            self.dropped[idx] += 1;
            return Outcome::Filtered;
        }
        // Stage 3: loss.
        let rng = &mut self.rng;
        if d.lost(rng, now) {
            d.stats.dropped_loss += 1;
            return Outcome::Lost;
        }
        // Stage 4: duplication.
        let copies = if chance(rng, d.cfg.duplicate) {
            d.stats.duplicated += 1;
            2
        } else {
            1
        };
        let mut arrivals = Vec::with_capacity(copies);
        let mut corrupted = Vec::with_capacity(copies);
        for _ in 0..copies {
            // Stage 5: corruption; stage 6: delay, jitter, reordering.
            let (bytes, bad) = d.corrupt(rng, pkt);
            let at = d.arrival(rng, departure);
            self.next_id += 1;
            self.in_flight.push(Reverse(InFlight {
                at,
                id: self.next_id,
                dir,
                corrupted: bad,
                bytes,
            }));
            arrivals.push(at);
            corrupted.push(bad);
        }
        Outcome::Sent {
            arrivals,
            corrupted,
        }
    }

    /// Advances to the next event and processes it. Returns false when
    /// nothing at all is left to happen.
    pub fn step(&mut self) -> bool {
        self.flush();
        let Some(next) = self.next_event() else {
            return false;
        };
        self.now = self.now.max(next);
        while self.in_flight.peek().is_some_and(|p| p.0.at <= self.now) {
            let Some(Reverse(p)) = self.in_flight.pop() else {
                break;
            };
            let idx = p.dir.idx();
            self.delivered[idx] += 1;
            let stats = &mut self.dirs[idx].stats;
            stats.delivered += 1;
            if p.corrupted {
                stats.corrupted += 1;
            }
            match p.dir {
                Dir::AtoB => self.b.handle_packet(self.now, &p.bytes),
                Dir::BtoA => self.a.handle_packet(self.now, &p.bytes),
            }
        }
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.flush();
        true
    }

    /// When the next packet arrives or timer fires, if anything is pending.
    /// Call [`flush`](Self::flush) first to count packets not yet sent.
    pub fn next_event(&self) -> Option<Instant> {
        let next_packet = self.in_flight.peek().map(|p| p.0.at);
        let next_timer = [self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        [next_packet, next_timer].into_iter().flatten().min()
    }

    /// Processes every event up to and including `now() + d`, then sets the
    /// clock to exactly `now() + d` even if the link was idle.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.flush();
            match self.next_event() {
                Some(t) if t <= end => {
                    self.step();
                }
                _ => break,
            }
        }
        self.now = self.now.max(end);
    }

    /// Steps until `done` returns true or `limit` of simulated time passes.
    /// Returns whether `done` became true.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&mut SimNet) -> bool,
    ) -> bool {
        let end = self.now + limit;
        // Bounded in steps as well as in simulated time.
        for _ in 0..10_000_000u64 {
            if done(self) {
                return true;
            }
            if self.now > end || !self.step() {
                return done(self);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid TCP/IPv4 packet with correct checksums: 40 bytes of headers,
    /// then 20 bytes of 0x5a.
    fn packet() -> Vec<u8> {
        use crate::testing::{encode, segment};
        use crate::wire::{TcpFlags, TcpSegment};
        let src = "10.0.0.1:1000".parse().unwrap();
        let dst = "10.0.0.2:80".parse().unwrap();
        encode(&TcpSegment {
            window: 100,
            ..segment(src, dst, TcpFlags::ACK, 1, 2, &[0x5a; 20])
        })
    }

    #[test]
    fn checksum_verifier_agrees_on_valid_and_single_flips() {
        let p = packet();
        assert!(checksums_pass(&p, &p));
        for bit in 0..p.len() * 8 {
            let mut q = p.clone();
            q[bit / 8] ^= 0x80 >> (bit % 8);
            assert!(!checksums_pass(&p, &q), "single flip of bit {bit} passed");
        }
    }

    #[test]
    fn checksum_verifier_sees_compensating_flips() {
        // The payload bytes are 0x5a = 0101_1010 and start at byte 40, the
        // high byte of 16-bit word 20. Flipping bit 0x40 of a high byte
        // (1 -> 0) subtracts 0x4000 from the sum; bit 0x80 (0 -> 1) adds
        // 0x8000.
        let p = packet();
        let mut q = p.clone();
        q[40] ^= 0x40; // -0x4000
        q[42] ^= 0x80; // +0x8000: caught
        assert!(!checksums_pass(&p, &q));
        q[44] ^= 0x40; // -0x4000: the sum is unchanged
        assert!(checksums_pass(&p, &q), "a 3-bit collision");
        assert!(
            crate::wire::parse(&q).is_ok(),
            "and the real codec accepts it too"
        );
    }
}
