//! [`crate::fuzzing::two_stacks`]: two stacks over a simulated link,
//! driven by the program of an input, with the delivered bytes checked.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::OnceLock;
use std::time::Duration;

use super::bump;
use super::input::{decode, tcp_config, Op, Reader, Side, LINK_LEN, MAX_OPS, PORTS};
use super::packet::{mutated, Aim, MUTATION_LEN};
use super::single::{app_call, check_stack, check_tcb, local_port, MAX_HANDLES};
use crate::sim::{Dir, GilbertElliott, LinkConfig, QueueLimit, Segmentation, SimNet};
use crate::stack::{ConnId, Stack, StackConfig};
use crate::state::State;
use crate::testing::pattern_fill;

const ADDRS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)];
/// Simulated time the records may use, all advances together.
const TIME_BUDGET: Duration = Duration::from_secs(20 * 60);
/// Bytes the send records may queue, all together.
const SEND_BUDGET: u64 = 1 << 20;
/// Events at one instant past which the simulation is taken to spin.
const MAX_STEPS_AT_ONE_INSTANT: u32 = 100_000;
/// Seconds of simulated time the repaired link gets at the end.
const SETTLE_SECS: u32 = 300;
/// Packets the link may deliver in one run; past them the simulation
/// stops (a flood, see [`Coverage::floods`](super::Coverage::floods)).
const MAX_PACKETS: u64 = 200_000;
/// How long the link must then stay quiet, and how quiet.
const QUIET: Duration = Duration::from_secs(10);
const QUIET_PACKETS_PER_CONN: u64 = 50;

/// A connection the application holds, and its byte counts.
#[derive(Clone, Copy, Debug)]
struct Handle {
    id: ConnId,
    /// Bytes queued with `send` (byte `i` is `pattern_fill(key, i)`).
    sent: u64,
    /// Bytes read with `recv`.
    received: u64,
    /// False once reads were shut down (the stream has a gap then).
    checked: bool,
}

struct Pair {
    net: SimNet,
    handles: [Vec<Handle>; 2],
    /// Packets the harness injected into each stack.
    injected: [u64; 2],
    /// Active opens by each stack.
    connects: [u64; 2],
    /// Every 4-tuple a connect produced (unordered), and those produced
    /// twice: an old incarnation's segments may legitimately reach the
    /// new one, so their bytes are not checked.
    tuples: HashSet<(SocketAddrV4, SocketAddrV4)>,
    reused: HashSet<(SocketAddrV4, SocketAddrV4)>,
    /// Packets were injected: from then on received bytes may be anything.
    injecting: bool,
    time_left: Duration,
    send_left: u64,
    /// The link delivered [`MAX_PACKETS`]: time stands still from then on.
    flooded: bool,
    ops: u64,
}

fn idx(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

fn stack(net: &mut SimNet, side: usize) -> &mut Stack {
    if side == 0 {
        &mut net.a
    } else {
        &mut net.b
    }
}

/// The 4-tuple without its direction.
fn unordered(a: SocketAddrV4, b: SocketAddrV4) -> (SocketAddrV4, SocketAddrV4) {
    if (a.ip(), a.port()) <= (b.ip(), b.port()) {
        (a, b)
    } else {
        (b, a)
    }
}

/// The seed of the byte stream `from` sends to `to`.
fn key(from: SocketAddrV4, to: SocketAddrV4) -> u64 {
    let end = |a: SocketAddrV4| (u64::from(u32::from(*a.ip())) << 16) | u64::from(a.port());
    end(from).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ end(to)
}

/// See [`crate::fuzzing::two_stacks`].
pub(super) fn run(data: &[u8]) {
    let mut p = Pair::new();
    let mut r = Reader::new(data);
    for _ in 0..MAX_OPS {
        let Some(op) = decode(&mut r) else { break };
        p.apply(op);
    }
    p.settle();
    p.check();
    p.check_quiet();
}

impl Pair {
    fn new() -> Self {
        let config = |i: usize| {
            let mut c = StackConfig::new(ADDRS[i]);
            c.seed = Some(i as u64 + 1);
            c
        };
        let mut net = SimNet::new(config(0), config(1), Duration::from_millis(1));
        net.set_seed(3);
        Pair {
            net,
            handles: [Vec::new(), Vec::new()],
            injected: [0; 2],
            connects: [0; 2],
            tuples: HashSet::new(),
            reused: HashSet::new(),
            injecting: false,
            time_left: TIME_BUDGET,
            send_left: SEND_BUDGET,
            flooded: false,
            ops: 0,
        }
    }

    fn apply(&mut self, op: Op<'_>) {
        self.ops += 1;
        let port = |p: u8| PORTS[usize::from(p) % PORTS.len()];
        let now = self.net.now();
        match op {
            Op::Raw { side, bytes } => self.inject(idx(side), bytes),
            Op::Mutate { side, m } => self.mutate(idx(side), &m),
            Op::Advance { exp, mant } => {
                let d = Duration::from_micros(Op::micros(exp, mant)).min(self.time_left);
                self.time_left -= d;
                self.advance(d);
            }
            Op::Deadline => self.next_event(),
            Op::Drain => self.drain(),
            Op::Listen {
                side,
                port: p,
                backlog,
                cfg,
            } => {
                let s = stack(&mut self.net, idx(side));
                let tcp = tcp_config(s.tcp_config(), cfg);
                let _ = s.listen_with(port(p), usize::from(backlog % 8), tcp);
            }
            Op::Unlisten { side, port: p } => stack(&mut self.net, idx(side)).unlisten(port(p)),
            Op::Connect {
                side,
                port: p,
                local,
                cfg,
            } => self.connect(idx(side), port(p), local, cfg),
            Op::Accept { side, port: p } => {
                if let Some(id) = stack(&mut self.net, idx(side)).accept(port(p)) {
                    self.add(idx(side), id);
                }
            }
            Op::Send { side, conn, len } => self.send(idx(side), conn, len),
            Op::Recv { side, conn, len } => {
                let side = idx(side);
                let n = self.handles[side].len().max(1);
                self.recv(side, usize::from(conn) % n, usize::from(len) % 16_384 + 1);
            }
            Op::Call { side, conn, call } => self.call(idx(side), conn, call, now),
            Op::Link { dir, cfg } => self.link(dir, &cfg),
        }
    }

    fn add(&mut self, side: usize, id: ConnId) {
        if self.handles[side].len() < MAX_HANDLES {
            self.handles[side].push(Handle {
                id,
                sent: 0,
                received: 0,
                checked: true,
            });
        }
    }

    fn connect(&mut self, side: usize, port: u16, local: u8, cfg: u8) {
        let now = self.net.now();
        let remote = SocketAddrV4::new(ADDRS[1 - side], port);
        let s = stack(&mut self.net, side);
        let tcp = tcp_config(s.tcp_config(), cfg);
        self.connects[side] += 1;
        let Ok(id) = s.connect_with(now, remote, local_port(local), tcp) else {
            return;
        };
        if let Some(t) = s.tcb(id) {
            let tuple = unordered(t.local(), t.remote());
            if !self.tuples.insert(tuple) {
                self.reused.insert(tuple);
            }
        }
        self.add(side, id);
    }

    fn delivered(&self) -> u64 {
        self.net.delivered[0] + self.net.delivered[1]
    }

    /// Processes events up to `d` later, like `SimNet::run_for`, but
    /// panics if the simulation spins at one instant (a deadline that
    /// handling does not move, say) instead of hanging, and stops for good
    /// once the link delivered [`MAX_PACKETS`].
    fn advance(&mut self, d: Duration) {
        if self.flooded {
            return;
        }
        let end = self.net.now() + d;
        let mut at = self.net.now();
        let mut same = 0u32;
        loop {
            self.net.flush();
            match self.net.next_event() {
                Some(t) if t <= end => {
                    self.net.step();
                }
                _ => break,
            }
            if self.delivered() >= MAX_PACKETS {
                self.flooded = true;
                self.time_left = Duration::ZERO;
                return;
            }
            if self.net.now() == at {
                same += 1;
                assert!(
                    same < MAX_STEPS_AT_ONE_INSTANT,
                    "the simulation spins at {at:?}: {same} events without time passing"
                );
            } else {
                (at, same) = (self.net.now(), 0);
            }
        }
        let rest = end - self.net.now();
        self.net.run_for(rest);
    }

    /// A deadline record: the next event, if it is within the budget.
    fn next_event(&mut self) {
        self.net.flush();
        let now = self.net.now();
        if let Some(t) = self.net.next_event() {
            let d = t - now;
            if d <= self.time_left {
                self.time_left -= d;
                self.advance(d);
            }
        }
    }

    fn drain(&mut self) {
        self.net.flush();
        for side in 0..2 {
            while stack(&mut self.net, side).poll_event().is_some() {}
        }
    }

    fn inject(&mut self, side: usize, packet: &[u8]) {
        let now = self.net.now();
        stack(&mut self.net, side).handle_packet(now, packet);
        self.injected[side] += 1;
        self.injecting = true;
    }

    /// A mutate record: a segment aimed at one of `side`'s connections (or,
    /// with none, at one of its usual ports from a made-up one).
    fn mutate(&mut self, side: usize, m: &[u8; MUTATION_LEN]) {
        let handles = &self.handles[side];
        let id = handles
            .get(usize::from(m[0]) % handles.len().max(1))
            .map(|h| h.id);
        let s = stack(&mut self.net, side);
        let aim = match id.and_then(|id| s.tcb(id)) {
            Some(t) => Aim::of(t),
            None => Aim {
                local: SocketAddrV4::new(ADDRS[side], PORTS[usize::from(m[0]) % PORTS.len()]),
                remote: SocketAddrV4::new(ADDRS[1 - side], 49_152 + u16::from(m[0])),
                rcv_nxt: 0,
                snd_una: 0,
                snd_nxt: 0,
                ts_recent: 0,
                ts_val: 0,
            },
        };
        let Some(packet) = mutated(&aim, m) else {
            return;
        };
        let segs = |net: &mut SimNet| {
            let t = stack(net, side).tcb(id?)?;
            Some((t.stats().segs_in, t.stats().unacceptable))
        };
        let before = segs(&mut self.net);
        self.inject(side, &packet);
        if let (Some((n, bad)), Some((n2, bad2))) = (before, segs(&mut self.net)) {
            if n2 > n {
                bump(|c| {
                    c.tcb_segments += 1;
                    c.accepted_segments += u64::from(bad == bad2);
                });
            }
        }
    }

    /// A send record: up to 16 KB of the connection's stream, within the
    /// budget.
    fn send(&mut self, side: usize, conn: u8, len: u16) {
        let n = self.handles[side].len();
        let Some(h) = self.handles[side].get_mut(usize::from(conn) % n.max(1)) else {
            return;
        };
        let Some(t) = stack(&mut self.net, side).tcb_mut(h.id) else {
            return;
        };
        let len = (u64::from(len) % 16_384 + 1).min(self.send_left) as usize;
        let mut data = vec![0u8; len];
        pattern_fill(key(t.local(), t.remote()), h.sent, &mut data);
        if let Ok(k) = t.send(&data) {
            h.sent += k as u64;
            self.send_left -= k as u64;
        }
    }

    /// Reads up to `len` bytes from handle `i` of `side`, checking them
    /// against what the other end sent unless the stream cannot be
    /// trusted. Returns how many bytes came (0 also at EOF or on error).
    fn recv(&mut self, side: usize, i: usize, len: usize) -> usize {
        let Some(h) = self.handles[side].get_mut(i) else {
            return 0;
        };
        let Some(t) = stack(&mut self.net, side).tcb_mut(h.id) else {
            return 0;
        };
        let mut buf = vec![0u8; len];
        let n = match t.recv(&mut buf) {
            Ok(n) => n,
            Err(_) => return 0,
        };
        let (local, remote) = (t.local(), t.remote());
        let trusted =
            h.checked && !self.injecting && !self.reused.contains(&unordered(local, remote));
        if trusted && n > 0 {
            let mut want = vec![0u8; n];
            pattern_fill(key(remote, local), h.received, &mut want);
            crate::testing::assert_same_bytes(
                &format!("{remote} -> {local} from offset {}", h.received),
                &want,
                &buf[..n],
            );
            bump(|c| c.bytes_checked += n as u64);
        }
        h.received += n as u64;
        n
    }

    fn call(&mut self, side: usize, conn: u8, call: u8, now: crate::time::Instant) {
        let n = self.handles[side].len();
        let i = usize::from(conn) % n.max(1);
        let Some(h) = self.handles[side].get_mut(i) else {
            return;
        };
        if call % 8 == 1 {
            h.checked = false;
        }
        let id = h.id;
        if app_call(stack(&mut self.net, side), now, id, call) {
            self.handles[side].swap_remove(i);
        }
    }

    /// A link record: 0 delay, 1 jitter, 2 loss, 3 reorder (4 its delay),
    /// 5 duplication, 6 corruption (7 its bits), 8 bandwidth, 9-10 queue,
    /// 11 bits: burst loss, jitter keeps order, whole super-segments.
    fn link(&mut self, dir: u8, l: &[u8; LINK_LEN]) {
        let ms = |v: u8| Duration::from_millis(u64::from(v));
        let p = |v: u8| f64::from(v) / 512.0;
        let cfg = LinkConfig {
            jitter: if l[1] & 0x80 != 0 {
                Duration::ZERO
            } else {
                ms(l[1] % 20)
            },
            jitter_keeps_order: l[11] & 2 != 0,
            bandwidth: (l[8] != 0).then(|| u64::from(l[8]) * 10_000),
            queue: match l[9] % 3 {
                0 => QueueLimit::Unlimited,
                1 => QueueLimit::Packets(1 + usize::from(l[10])),
                _ => QueueLimit::Bytes(1500 * (1 + usize::from(l[10]))),
            },
            loss: p(l[2]),
            burst: (l[11] & 1 != 0).then_some(GilbertElliott {
                p: 0.05,
                r: 0.3,
                loss_bad: 1.0,
                loss_good: 0.0,
                max_bad: Some(Duration::from_millis(500)),
            }),
            reorder: p(l[3]),
            reorder_delay: ms(l[4] % 100),
            duplicate: p(l[5]),
            corrupt: p(l[6]),
            corrupt_max_bits: 1 + l[7] % 3,
            ..LinkConfig::new(ms(l[0] % 50))
        };
        match dir % 3 {
            0 => self.net.set_link(cfg),
            1 => self.net.set_link_dir(Dir::AtoB, cfg),
            _ => self.net.set_link_dir(Dir::BtoA, cfg),
        }
        self.net.set_segmentation(if l[11] & 4 != 0 {
            Segmentation::Whole
        } else {
            Segmentation::Split
        });
    }

    /// The pairs of handles that are the two ends of one connection whose
    /// stream can be checked: (sender side, sender index, receiver index),
    /// both ends still ESTABLISHED.
    fn checkable(&mut self) -> Vec<(usize, usize, usize)> {
        let mut v = Vec::new();
        if self.injecting {
            return v;
        }
        for side in 0..2 {
            for (i, h) in self.handles[side].iter().enumerate() {
                let Some(t) = stack(&mut self.net, side).tcb(h.id) else {
                    continue;
                };
                let (local, remote) = (t.local(), t.remote());
                if t.state() != State::Established
                    || self.reused.contains(&unordered(local, remote))
                {
                    continue;
                }
                let other = stack(&mut self.net, 1 - side);
                let peer = self.handles[1 - side].iter().position(|r| {
                    other.tcb(r.id).is_some_and(|u| {
                        u.state() == State::Established
                            && u.local() == remote
                            && u.remote() == local
                    })
                });
                if let Some(j) = peer.filter(|&j| self.handles[1 - side][j].checked) {
                    v.push((side, i, j));
                }
            }
        }
        v
    }

    /// Reads everything the handles have.
    fn read_all(&mut self) {
        for side in 0..2 {
            for i in 0..self.handles[side].len() {
                while self.recv(side, i, 65_536) > 0 {}
            }
        }
    }

    /// The end of a program: the link repaired, everything read for up to
    /// [`SETTLE_SECS`] simulated seconds, until every checkable stream is
    /// delivered whole (nothing moves after a flood).
    fn settle(&mut self) {
        self.net.set_link(LinkConfig::new(Duration::from_millis(1)));
        self.net.set_segmentation(Segmentation::Split);
        for _ in 0..SETTLE_SECS {
            self.read_all();
            let pending = self
                .checkable()
                .into_iter()
                .any(|(s, i, j)| self.handles[s][i].sent != self.handles[1 - s][j].received);
            if !pending || self.flooded {
                break;
            }
            self.advance(Duration::from_secs(1));
        }
        self.drain();
    }

    /// Two stacks that nobody disturbed go quiet once their streams are
    /// delivered: a minute for the orphans to finish, then at most
    /// [`QUIET_PACKETS_PER_CONN`] packets per connection (keepalives,
    /// window probes) in [`QUIET`]. Not checked once packets were injected
    /// or a 4-tuple reused: a connection whose ends disagree on the sequence
    /// numbers answers each ACK with an ACK (an ACK storm, as between any
    /// stacks that do not rate-limit those ACKs).
    ///
    /// `UTCP_FUZZ_NO_QUIET` in the environment turns this check off, to
    /// fuzz on past a storm that is known and not fixed yet.
    fn check_quiet(&mut self) {
        static OFF: OnceLock<bool> = OnceLock::new();
        let off = *OFF.get_or_init(|| std::env::var_os("UTCP_FUZZ_NO_QUIET").is_some());
        if off || self.injecting || !self.reused.is_empty() || self.flooded {
            return;
        }
        let start = self.delivered();
        self.advance(Duration::from_secs(60));
        assert!(
            !self.flooded,
            "a packet storm without any injected packet: {} packets in the minute after \
             the streams were delivered",
            self.delivered() - start
        );
        self.read_all();
        let before = self.delivered();
        self.advance(QUIET);
        let n = self.delivered() - before;
        let conns = (self.net.a.connection_count() + self.net.b.connection_count()) as u64;
        let bound = 200 + QUIET_PACKETS_PER_CONN * conns;
        assert!(
            !self.flooded && n <= bound,
            "a packet storm without any injected packet: {n} packets in {QUIET:?} \
             between {conns} connections (at most {bound} expected)"
        );
        self.drain();
    }

    /// The invariants, after [`settle`](Self::settle).
    fn check(&mut self) {
        let delivered = self.net.delivered;
        let mut segs = 0;
        for side in 0..2 {
            // `delivered` is per direction: index 0 is a to b.
            let into = delivered[1 - side];
            let s = stack(&mut self.net, side);
            assert_eq!(
                s.stats().packets_in,
                into + self.injected[side],
                "every packet handed to stack {side} is counted once"
            );
            check_stack(s, self.connects[side] + into + self.injected[side]);
            for h in &self.handles[side] {
                if let Some(t) = s.tcb(h.id) {
                    check_tcb(t);
                    segs += t.stats().segs_in;
                }
            }
        }
        let mut streams = 0;
        for (s, i, j) in self.checkable().into_iter().filter(|_| !self.flooded) {
            let (sent, got) = (self.handles[s][i].sent, self.handles[1 - s][j].received);
            assert_eq!(
                sent, got,
                "stack {s} sent {sent} bytes on a connection established at both ends; \
                 {got} arrived after {SETTLE_SECS} s on a repaired link"
            );
            streams += u64::from(sent > 0);
        }
        let ops = self.ops;
        let packets = self.injected[0] + self.injected[1];
        bump(|c| {
            c.inputs += 1;
            c.ops += ops;
            c.packets += packets;
            c.tcb_segments += segs;
            c.streams_checked += streams;
        });
        let flooded = self.flooded;
        bump(|c| c.floods += u64::from(flooded));
    }
}
