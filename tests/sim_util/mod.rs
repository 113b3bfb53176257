//! Helpers shared by the `sim_*` tests: a seeded pair of stacks, opening a
//! connection, pumping a byte stream and recording state histories. The
//! helpers that are not about the simulated pair (logging, byte patterns,
//! parsing packets) are in `utcp::testing`.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use utcp::sim::{Dir, SimNet};
use utcp::stack::{ConnId, Stack, StackConfig};
use utcp::state::State;
use utcp::testing::{assert_same_bytes, tcp_segment};
use utcp::wire::TcpFlags;

pub const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const PORT: u16 = 80;
pub const LATENCY: Duration = Duration::from_millis(10);

/// Seeded configurations for `a` and `b`.
pub fn configs() -> (StackConfig, StackConfig) {
    let mut ca = StackConfig::new(A);
    ca.seed = Some(1);
    let mut cb = StackConfig::new(B);
    cb.seed = Some(2);
    (ca, cb)
}

/// Two seeded stacks, 10 ms apart.
pub fn net() -> SimNet {
    let (ca, cb) = configs();
    SimNet::new(ca, cb, LATENCY)
}

/// Which stack of the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

pub fn stack(n: &mut SimNet, side: Side) -> &mut Stack {
    match side {
        Side::A => &mut n.a,
        Side::B => &mut n.b,
    }
}

pub fn state(n: &SimNet, side: Side, id: ConnId) -> State {
    let s = match side {
        Side::A => &n.a,
        Side::B => &n.b,
    };
    s.tcb(id).expect("connection still held").state()
}

/// `b` listens on [`PORT`], `a` connects; returns (a's, b's) connection,
/// both ESTABLISHED.
pub fn establish(n: &mut SimNet) -> (ConnId, ConnId) {
    n.b.listen(PORT, 8).unwrap();
    let now = n.now();
    let c = n.a.connect(now, SocketAddrV4::new(B, PORT)).unwrap();
    let mut s = None;
    let ok = n.run_until(Duration::from_secs(60), |n| {
        if s.is_none() {
            s = n.b.accept(PORT);
        }
        s.is_some() && n.a.tcb(c).unwrap().state() == State::Established
    });
    assert!(ok, "handshake did not complete");
    (c, s.unwrap())
}

/// One direction of a byte stream between the two stacks.
pub struct Stream {
    pub from: Side,
    pub tx: ConnId,
    pub rx: ConnId,
    pub data: Vec<u8>,
    pub sent: usize,
    pub got: Vec<u8>,
    /// The receiver saw end of stream (`recv` returned `Ok(0)`).
    pub eof: bool,
    /// Close the sender once all data is queued.
    pub close_when_sent: bool,
    pub closed: bool,
}

impl Stream {
    pub fn new(from: Side, tx: ConnId, rx: ConnId, data: Vec<u8>) -> Self {
        Stream {
            from,
            tx,
            rx,
            data,
            sent: 0,
            got: Vec::new(),
            eof: false,
            close_when_sent: false,
            closed: false,
        }
    }

    pub fn closing(mut self) -> Self {
        self.close_when_sent = true;
        self
    }

    fn to(&self) -> Side {
        match self.from {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    /// Queues what fits, closes if asked, reads what arrived.
    pub fn pump(&mut self, n: &mut SimNet) {
        let tcb = stack(n, self.from).tcb_mut(self.tx).unwrap();
        while self.sent < self.data.len() {
            match tcb.send(&self.data[self.sent..]) {
                Ok(k) => self.sent += k,
                Err(utcp::error::Error::WouldBlock) => break,
                Err(e) => panic!("send failed: {e}"),
            }
        }
        if self.close_when_sent && self.sent == self.data.len() && !self.closed {
            tcb.close();
            self.closed = true;
        }
        let to = self.to();
        let tcb = stack(n, to).tcb_mut(self.rx).unwrap();
        let mut buf = [0u8; 8192];
        loop {
            match tcb.recv(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => self.got.extend_from_slice(&buf[..k]),
                Err(utcp::error::Error::WouldBlock) => break,
                Err(e) => panic!("recv failed: {e}"),
            }
        }
    }

    /// All data arrived (and, if closing, the end of stream too).
    pub fn done(&self) -> bool {
        self.got.len() == self.data.len() && (!self.close_when_sent || self.eof)
    }

    /// Asserts byte-exact delivery.
    pub fn check(&self) {
        assert_same_bytes("stream", &self.data, &self.got);
    }
}

/// The states a connection went through, sampled after every step.
#[derive(Debug, Default)]
pub struct History(pub Vec<State>);

impl History {
    pub fn record(&mut self, s: State) {
        if self.0.last() != Some(&s) {
            self.0.push(s);
        }
    }

    /// True if `states` appear in this order (not necessarily adjacent).
    pub fn passed_through(&self, states: &[State]) -> bool {
        let mut it = self.0.iter();
        states.iter().all(|s| it.any(|h| h == s))
    }
}

/// True for a segment carrying data.
pub fn is_data(pkt: &[u8]) -> bool {
    tcp_segment(pkt).is_some_and(|s| !s.payload.is_empty())
}

pub fn has(pkt: &[u8], flags: TcpFlags) -> bool {
    tcp_segment(pkt).is_some_and(|s| s.flags.contains(flags))
}

/// Direction a stack sends in.
pub fn dir_from(side: Side) -> Dir {
    match side {
        Side::A => Dir::AtoB,
        Side::B => Dir::BtoA,
    }
}
