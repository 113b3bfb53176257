//! [`crate::fuzzing::stack_packet`]: one stack with live connections in
//! many states, fed the records of an input.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use super::input::{decode, tcp_config, Op, Reader, MAX_OPS, PORTS};
use super::packet::{mutated, Aim, MUTATION_LEN};
use super::{bump, Coverage};
use crate::sim::SimNet;
use crate::stack::{ConnId, Stack, StackConfig};
use crate::state::State;
use crate::tcb::{Keepalive, Tcb, TcpConfig};
use crate::testing::{encode, pattern, segment};
use crate::time::Instant;
use crate::wire::{self, DropReason, Packet, TcpFlags, TcpOptions};

/// The stack under test.
const TARGET: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The stack that helps build its connections.
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// A host the fuzzed stack only ever hears from by hand-fed packets.
const STRANGER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);
/// No buffer of any configuration the harnesses use is larger.
pub(super) const MAX_BUFFER: usize = 512 * 1024;
/// At most this many 4-tuples seen in the output are remembered.
const MAX_SEEN: usize = 64;
/// At most this many connections are tracked as handles.
pub(super) const MAX_HANDLES: usize = 64;

/// The fuzzed stack and what the harness knows about it.
struct Single {
    stack: Stack,
    now: Instant,
    /// The connections the application holds (or held), by id.
    handles: Vec<ConnId>,
    /// The last segment the stack sent on each 4-tuple, as an aim for the
    /// reply (covers half-open and cookie connections, which have no id).
    seen: Vec<Aim>,
    buf: Vec<u8>,
    /// Packets handed to the stack since the base was built.
    fed: u64,
    /// At most how many connections the input may have created.
    opened: u64,
    /// `packets_in` and the connection count of the base.
    base_packets_in: u64,
    base_conns: usize,
    ops: u64,
}

/// See [`crate::fuzzing::stack_packet`].
pub(super) fn run(data: &[u8]) {
    let mut s = base();
    let mut r = Reader::new(data);
    for _ in 0..MAX_OPS {
        let Some(op) = decode(&mut r) else { break };
        s.apply(op);
    }
    s.finish();
    let (ops, fed) = (s.ops, s.fed);
    bump(|c: &mut Coverage| {
        c.inputs += 1;
        c.ops += ops;
        c.packets += fed;
    });
}

/// See [`crate::fuzzing::stack_packet_base_states`].
pub(super) fn base_states() -> Vec<State> {
    base().stack.connection_states().collect()
}

fn config(addr: Ipv4Addr, seed: u64) -> StackConfig {
    let mut c = StackConfig::new(addr);
    c.seed = Some(seed);
    c
}

/// The base every input starts from (`Stack` is not `Clone`, so it is
/// built anew each time; deterministic, about 0.1 ms).
fn base() -> Single {
    let mut n = SimNet::new(config(PEER, 1), config(TARGET, 2), Duration::from_millis(1));
    let _ = n.b.listen(PORTS[0], 16);
    let _ = n.b.listen(PORTS[1], 1);
    let _ = n.a.listen(PORTS[2], 16);
    let pairs: Vec<(ConnId, ConnId)> = (0..8).filter_map(|_| inbound(&mut n)).collect();
    let small = tcp_config(n.b.tcp_config(), 0x01);
    let active = outbound(&mut n, small);
    choreograph(&mut n, &pairs, active);
    let now = n.now();
    let stack = std::mem::replace(&mut n.b, Stack::new(config(TARGET, 3)));
    let handles = pairs.iter().map(|p| p.1).chain(active.map(|p| p.1));
    let mut s = Single {
        stack,
        now,
        handles: handles.collect(),
        seen: Vec::new(),
        buf: vec![0u8; 65_535],
        fed: 0,
        opened: 0,
        base_packets_in: 0,
        base_conns: 0,
        ops: 0,
    };
    s.half_open();
    s.drain();
    s.base_packets_in = s.stack.stats().packets_in;
    s.base_conns = s.stack.connection_count();
    s
}

/// The peer connects to the fuzzed stack's first port: (peer's, fuzzed's).
fn inbound(n: &mut SimNet) -> Option<(ConnId, ConnId)> {
    let now = n.now();
    let p = n.a.connect(now, SocketAddrV4::new(TARGET, PORTS[0])).ok()?;
    n.run_for(Duration::from_millis(5));
    Some((p, n.b.accept(PORTS[0])?))
}

/// The fuzzed stack connects to the peer with settings `tcp`.
fn outbound(n: &mut SimNet, tcp: TcpConfig) -> Option<(ConnId, ConnId)> {
    let now = n.now();
    let remote = SocketAddrV4::new(PEER, PORTS[2]);
    let t = n.b.connect_with(now, remote, None, tcp).ok()?;
    n.run_for(Duration::from_millis(5));
    Some((n.a.accept(PORTS[2])?, t))
}

/// Runs `f` on connection `id` of `stack`, if both exist.
fn with(stack: &mut Stack, id: Option<ConnId>, f: impl FnOnce(&mut Tcb)) {
    if let Some(t) = id.and_then(|id| stack.tcb_mut(id)) {
        f(t);
    }
}

/// Moves the connections to their states (by index into `pairs`): 0
/// ESTABLISHED, 1 ESTABLISHED with data both ways (unread, in flight), 2
/// FIN-WAIT-1 with data, 3 an orphan in FIN-WAIT-2, 4 CLOSE-WAIT, 5
/// LAST-ACK, 6 TIME-WAIT, 7 an orphan in FIN-WAIT-1 with data; `active`
/// ESTABLISHED with its small receive window full. What happens last is
/// never delivered: those segments are the base's first output.
fn choreograph(n: &mut SimNet, pairs: &[(ConnId, ConnId)], active: Option<(ConnId, ConnId)>) {
    let peer = |i: usize| pairs.get(i).map(|p| p.0);
    let ours = |i: usize| pairs.get(i).map(|p| p.1);
    let send = |len: usize| {
        move |t: &mut Tcb| {
            let _ = t.send(&pattern(len, 1));
        }
    };
    with(&mut n.a, peer(1), send(6000));
    with(&mut n.a, active.map(|p| p.0), send(6000));
    with(&mut n.b, ours(3), Tcb::close);
    with(&mut n.b, ours(6), Tcb::close);
    with(&mut n.a, peer(4), Tcb::close);
    with(&mut n.a, peer(5), Tcb::close);
    n.run_for(Duration::from_millis(100));
    with(&mut n.a, peer(6), Tcb::close);
    n.run_for(Duration::from_millis(100));
    if let Some(id) = ours(3) {
        n.b.release(id);
    }
    with(&mut n.b, ours(1), send(40_000));
    with(&mut n.b, ours(2), send(3000));
    with(&mut n.b, ours(2), Tcb::close);
    with(&mut n.b, ours(5), Tcb::close);
    with(&mut n.b, ours(7), send(2000));
    if let Some(id) = ours(7) {
        n.b.release(id);
    }
}

impl Single {
    /// A SYN-SENT connection, a SYN-RECEIVED one (a SYN with every option
    /// on the first listener) and, on the listener with backlog 1, one
    /// half-open connection and a second SYN answered with a cookie.
    fn half_open(&mut self) {
        let tcp = self.stack.tcp_config().clone();
        let remote = SocketAddrV4::new(PEER, 91);
        if let Ok(id) = self.stack.connect_with(self.now, remote, None, tcp) {
            self.handles.push(id);
        }
        let options = TcpOptions {
            mss: Some(1400),
            window_scale: Some(7),
            sack_permitted: true,
            timestamp: Some((1000, 0)),
            ..TcpOptions::default()
        };
        let syns = [
            (40_000, PORTS[0], options),
            (41_000, PORTS[1], TcpOptions::default()),
        ];
        for (sport, dport, options) in syns.into_iter().chain([(41_001, PORTS[1], options)]) {
            let src = SocketAddrV4::new(STRANGER, sport);
            let dst = SocketAddrV4::new(TARGET, dport);
            let mut syn = segment(src, dst, TcpFlags::SYN, 7_000_000, 0, &[]);
            syn.options = options;
            self.stack.handle_packet(self.now, &encode(&syn));
        }
    }

    fn apply(&mut self, op: Op<'_>) {
        self.ops += 1;
        let port = |p: u8| PORTS[usize::from(p) % PORTS.len()];
        match op {
            Op::Raw { bytes, .. } => self.feed(bytes),
            Op::Mutate { m, .. } => self.mutate(&m),
            Op::Advance { exp, mant } => {
                self.now += Duration::from_micros(Op::micros(exp, mant));
                self.stack.handle_timeout(self.now);
            }
            Op::Deadline => {
                if let Some(t) = self.stack.poll_timeout() {
                    self.now = self.now.max(t);
                    self.stack.handle_timeout(self.now);
                }
            }
            Op::Drain => self.drain(),
            Op::Listen {
                port: p,
                backlog,
                cfg,
                ..
            } => {
                let tcp = tcp_config(self.stack.tcp_config(), cfg);
                let _ = self
                    .stack
                    .listen_with(port(p), usize::from(backlog % 8), tcp);
            }
            Op::Unlisten { port: p, .. } => self.stack.unlisten(port(p)),
            Op::Connect {
                port: p,
                local,
                cfg,
                ..
            } => {
                let tcp = tcp_config(self.stack.tcp_config(), cfg);
                let local = local_port(local);
                let remote = SocketAddrV4::new(PEER, port(p));
                self.opened += 1;
                if let Ok(id) = self.stack.connect_with(self.now, remote, local, tcp) {
                    self.add(id);
                }
            }
            Op::Accept { port: p, .. } => {
                if let Some(id) = self.stack.accept(port(p)) {
                    self.add(id);
                }
            }
            Op::Send { conn, len, .. } => {
                let data = pattern(usize::from(len) % 20_000, 2);
                self.on_conn(conn, |t| {
                    let _ = t.send(&data);
                });
            }
            Op::Recv { conn, len, .. } => {
                let mut buf = vec![0u8; usize::from(len) % 20_000 + 1];
                self.on_conn(conn, |t| {
                    let _ = t.recv(&mut buf);
                });
            }
            Op::Call { conn, call, .. } => {
                if let Some(&id) = self
                    .handles
                    .get(usize::from(conn) % self.handles.len().max(1))
                {
                    app_call(&mut self.stack, self.now, id, call);
                }
            }
            Op::Link { .. } => {}
        }
    }

    fn add(&mut self, id: ConnId) {
        if self.handles.len() < MAX_HANDLES {
            self.handles.push(id);
        }
    }

    fn on_conn(&mut self, conn: u8, f: impl FnOnce(&mut Tcb)) {
        let id = self
            .handles
            .get(usize::from(conn) % self.handles.len().max(1));
        with(&mut self.stack, id.copied(), f);
    }

    fn feed(&mut self, packet: &[u8]) {
        self.stack.handle_packet(self.now, packet);
        self.fed += 1;
        // A SYN to a listener or a cookie's ACK: at most one connection.
        self.opened += 1;
    }

    /// Every connection a mutated segment can aim at: the handles (with the
    /// timestamps last seen on their 4-tuple), then the other 4-tuples
    /// seen in the output.
    fn aims(&self) -> Vec<(Option<ConnId>, Aim)> {
        let same = |a: &Aim, b: &Aim| a.local == b.local && a.remote == b.remote;
        let mut v: Vec<(Option<ConnId>, Aim)> = Vec::new();
        for &id in &self.handles {
            if let Some(t) = self.stack.tcb(id) {
                let mut aim = Aim::of(t);
                if let Some(s) = self.seen.iter().find(|s| same(s, &aim)) {
                    aim.ts_recent = s.ts_recent;
                    aim.ts_val = s.ts_val;
                }
                v.push((Some(id), aim));
            }
        }
        for s in &self.seen {
            if !v.iter().any(|(_, a)| same(a, s)) {
                v.push((None, *s));
            }
        }
        v
    }

    /// A mutate record; counts whether the segment reached the TCB.
    fn mutate(&mut self, m: &[u8; MUTATION_LEN]) {
        let aims = self.aims();
        let Some(&(id, aim)) = aims.get(usize::from(m[0]) % aims.len().max(1)) else {
            return;
        };
        let Some(packet) = mutated(&aim, m) else {
            return;
        };
        let counters = |s: &Self| {
            let t = s.stack.tcb(id?)?;
            Some((t.stats().segs_in, t.stats().unacceptable))
        };
        let before = counters(self);
        self.feed(&packet);
        if let (Some((segs, bad)), Some((segs2, bad2))) = (before, counters(self)) {
            if segs2 > segs {
                bump(|c| {
                    c.tcb_segments += 1;
                    c.accepted_segments += u64::from(bad2 == bad);
                });
            }
        }
    }

    /// Transmits everything (checking each packet) and takes the events.
    fn drain(&mut self) {
        let addr = self.stack.addr();
        let seen = &mut self.seen;
        self.stack
            .poll_transmit(self.now, &mut self.buf, |p| observe(seen, addr, p));
        while self.stack.poll_event().is_some() {}
    }

    /// The end of an input: output, timers, then the invariants.
    fn finish(&mut self) {
        self.drain();
        let (now, addr) = (self.now, self.stack.addr());
        let (buf, seen) = (&mut self.buf, &mut self.seen);
        settle_timers(&mut self.stack, now, |s| {
            s.poll_transmit(now, buf, |p| observe(seen, addr, p));
        });
        let stats = self.stack.stats();
        assert_eq!(
            stats.packets_in,
            self.base_packets_in + self.fed,
            "every packet handed to the stack is counted once"
        );
        check_stack(&self.stack, self.base_conns as u64 + self.opened);
        for &id in &self.handles {
            if let Some(t) = self.stack.tcb(id) {
                check_tcb(t);
            }
        }
    }
}

/// `local % 5`: 0 an ephemeral port, else one of [`PORTS`].
pub(super) fn local_port(local: u8) -> Option<u16> {
    match usize::from(local % 5) {
        0 => None,
        i => Some(PORTS[i - 1]),
    }
}

/// Checks a packet the stack emitted and remembers its 4-tuple's numbers.
fn observe(seen: &mut Vec<Aim>, addr: Ipv4Addr, p: &[u8]) {
    let seg = match wire::parse(p) {
        Ok(Packet::Tcp(seg)) => seg,
        // An echo reply.
        Err(DropReason::IcmpNotEchoRequest) => return,
        other => panic!("the stack emitted a packet its own parser rejects: {other:?}"),
    };
    assert_eq!(*seg.src.ip(), addr, "the stack sent from another address");
    let (ts_val, ts_recent) = seg.options.timestamp.unwrap_or((0, 0));
    let aim = Aim {
        local: seg.src,
        remote: seg.dst,
        rcv_nxt: seg.ack.0,
        snd_una: seg.seq.0,
        snd_nxt: (seg.seq + seg.seg_len()).0,
        ts_recent,
        ts_val,
    };
    if let Some(s) = seen
        .iter_mut()
        .find(|s| s.local == aim.local && s.remote == aim.remote)
    {
        *s = aim;
    } else if seen.len() < MAX_SEEN {
        seen.push(aim);
    } else {
        let i = usize::from(seg.dst.port()) % MAX_SEEN;
        seen[i] = aim;
    }
}

/// What a driver does when the deadline passes, until none is due at
/// `now`: handle the timeout, transmit. A deadline still due after 64
/// rounds would make a driver spin.
pub(super) fn settle_timers(stack: &mut Stack, now: Instant, mut transmit: impl FnMut(&mut Stack)) {
    for _ in 0..64 {
        match stack.poll_timeout() {
            Some(t) if t <= now => {
                stack.handle_timeout(now);
                transmit(stack);
            }
            _ => return,
        }
    }
    panic!(
        "a deadline stays due: {:?} at {now:?} after 64 rounds of handle_timeout",
        stack.poll_timeout()
    );
}

/// The stack-wide invariants: at most `bound` connections, and as many in
/// the slab as in the 4-tuple map.
pub(super) fn check_stack(stack: &Stack, bound: u64) {
    let count = stack.connection_count();
    assert!(
        count as u64 <= bound,
        "{count} connections, but the input could create at most {bound}"
    );
    assert_eq!(
        stack.connection_states().count(),
        count,
        "the slab and the 4-tuple map disagree"
    );
}

/// The per-connection invariants.
pub(super) fn check_tcb(t: &Tcb) {
    assert!(
        t.snd_una().le(t.snd_nxt()),
        "{} -> {} in {:?}: SND.UNA {} beyond SND.NXT {}",
        t.local(),
        t.remote(),
        t.state(),
        t.snd_una(),
        t.snd_nxt()
    );
    assert!(t.recv_queued() <= MAX_BUFFER, "receive buffer overflows");
    assert!(t.send_queued() <= MAX_BUFFER, "send buffer overflows");
}

/// An application call on `id`, `call % 8`: close, read shutdown, abort,
/// release, Nagle toggled, a short keepalive, a user timeout, a peek.
/// Returns true if the application let go of the connection.
pub(super) fn app_call(stack: &mut Stack, now: Instant, id: ConnId, call: u8) -> bool {
    if call % 8 == 3 {
        stack.release(id);
        return true;
    }
    let Some(t) = stack.tcb_mut(id) else {
        return false;
    };
    match call % 8 {
        0 => t.close(),
        1 => t.shutdown_read(),
        2 => t.abort(),
        4 => t.set_nagle(!t.nagle()),
        5 => {
            let k = Keepalive {
                idle: Duration::from_secs(5),
                interval: Duration::from_secs(2),
                count: 3,
            };
            t.set_keepalive(now, Some(k));
        }
        6 => t.set_user_timeout(Some(Duration::from_secs(3))),
        _ => {
            let _ = t.peek(&mut [0u8; 64]);
        }
    }
    false
}
