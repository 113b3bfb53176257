//! A simulated link between two stacks, on a fake clock.
//!
//! Two [`Stack`]s exchange packets through an in-memory link with a fixed
//! one-way latency and, optionally, a rate ([`SimNet::set_bandwidth`]). Time is simulated: [`SimNet::step`] jumps straight to the
//! next event (a packet arriving or a timer firing), so a test can run minutes
//! of retransmission back-off in microseconds, deterministically. A filter
//! closure sees every packet and may drop it, which is how tests lose the
//! exact segment they want to lose. With [`SimNet::set_trace`] on, every
//! packet put on the link (or dropped) is also kept in [`SimNet::trace`], so a
//! test can check what went over the wire.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use crate::stack::{Stack, StackConfig};
use crate::time::Instant;

/// Which way a packet travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dir {
    /// From stack `a` to stack `b`.
    AtoB,
    /// From stack `b` to stack `a`.
    BtoA,
}

/// What the filter decides for a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Deliver it after the link latency.
    Deliver,
    /// Lose it.
    Drop,
}

type Filter = Box<dyn FnMut(Dir, &[u8]) -> Fate>;
/// One packet seen on the link, kept when tracing is on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traced {
    /// When the sending stack emitted it.
    pub sent: Instant,
    /// Which way it went.
    pub dir: Dir,
    /// What the filter decided.
    pub fate: Fate,
    /// The raw IPv4 packet.
    pub bytes: Vec<u8>,
}

/// A packet on the link: (arrival time, tie-breaker, direction, bytes).
type InFlight = Reverse<(Instant, u64, Dir, Vec<u8>)>;

/// Two stacks joined by a simulated link.
pub struct SimNet {
    /// The first stack.
    pub a: Stack,
    /// The second stack.
    pub b: Stack,
    now: Instant,
    latency: Duration,
    next_id: u64,
    in_flight: BinaryHeap<InFlight>,
    filter: Filter,
    buf: Vec<u8>,
    /// Packets delivered so far, per direction.
    pub delivered: [u64; 2],
    /// Packets the filter dropped, per direction.
    pub dropped: [u64; 2],
    /// Link rate in bytes per second; `None` sends in zero time.
    bandwidth: Option<u64>,
    /// Per direction, when the link finishes sending what it already holds.
    busy_until: [Instant; 2],
    /// Every packet emitted since tracing was turned on, in order.
    pub trace: Vec<Traced>,
    tracing: bool,
}

impl SimNet {
    /// Two stacks with the given configurations and one-way `latency`.
    pub fn new(a: StackConfig, b: StackConfig, latency: Duration) -> Self {
        let mtu = a.mtu.max(b.mtu);
        SimNet {
            a: Stack::new(a),
            b: Stack::new(b),
            now: Instant::ZERO,
            latency,
            next_id: 0,
            in_flight: BinaryHeap::new(),
            filter: Box::new(|_, _| Fate::Deliver),
            buf: vec![0; mtu],
            delivered: [0; 2],
            dropped: [0; 2],
            trace: Vec::new(),
            tracing: false,
            bandwidth: None,
            busy_until: [Instant::ZERO; 2],
        }
    }

    /// Gives each direction of the link a rate of `bytes_per_sec` (`None`,
    /// the default, sends in zero time). Packets then leave one after the
    /// other, each taking `len / rate` to serialise before its latency
    /// starts, so a burst arrives spread out instead of all at one instant,
    /// as on a real link. A packet the filter drops still used its slot (it
    /// was lost on the wire). Queues are unbounded: the link never drops
    /// by itself.
    pub fn set_bandwidth(&mut self, bytes_per_sec: Option<u64>) {
        self.bandwidth = bytes_per_sec.filter(|&r| r > 0);
    }

    /// Turns recording of every packet into [`SimNet::trace`] on or off.
    pub fn set_trace(&mut self, on: bool) {
        self.tracing = on;
    }

    /// Installs a filter that decides the fate of every packet from now on.
    pub fn set_filter(&mut self, f: impl FnMut(Dir, &[u8]) -> Fate + 'static) {
        self.filter = Box::new(f);
    }

    /// The simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Collects what both stacks want to send and puts it on the link.
    pub fn flush(&mut self) {
        let now = self.now;
        let mut out: Vec<(Dir, Vec<u8>)> = Vec::new();
        self.a
            .dispatch(now, &mut self.buf, |p| out.push((Dir::AtoB, p.to_vec())));
        self.b
            .dispatch(now, &mut self.buf, |p| out.push((Dir::BtoA, p.to_vec())));
        for (dir, pkt) in out {
            let idx = dir as usize;
            let sent = match self.bandwidth {
                Some(rate) => {
                    let start = self.busy_until[idx].max(now);
                    let micros = (pkt.len() as u64 * 1_000_000).div_ceil(rate);
                    self.busy_until[idx] = start + Duration::from_micros(micros);
                    self.busy_until[idx]
                }
                None => now,
            };
            let fate = (self.filter)(dir, &pkt);
            if self.tracing {
                self.trace.push(Traced {
                    sent: now,
                    dir,
                    fate,
                    bytes: pkt.clone(),
                });
            }
            if fate == Fate::Drop {
                self.dropped[idx] += 1;
                continue;
            }
            self.next_id += 1;
            self.in_flight
                .push(Reverse((sent + self.latency, self.next_id, dir, pkt)));
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
        while let Some(Reverse((t, ..))) = self.in_flight.peek() {
            if *t > self.now {
                break;
            }
            let Some(Reverse((_, _, dir, pkt))) = self.in_flight.pop() else {
                break;
            };
            self.delivered[dir as usize] += 1;
            match dir {
                Dir::AtoB => self.b.handle_packet(self.now, &pkt),
                Dir::BtoA => self.a.handle_packet(self.now, &pkt),
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
        let next_packet = self.in_flight.peek().map(|Reverse((t, ..))| *t);
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
