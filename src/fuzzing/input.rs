//! The record format both harnesses read (module documentation of
//! [`crate::fuzzing`]), its encoder, and the random programs of
//! [`crate::fuzzing::smoke`].

use std::net::{Ipv4Addr, SocketAddrV4};

use rand::rngs::StdRng;
use rand::Rng;

use super::packet::MUTATION_LEN;
use crate::cc::Algorithm;
use crate::tcb::TcpConfig;
use crate::testing::segment;
use crate::wire::{self, TcpFlags, TcpOptions};

/// At most this many records of an input are carried out.
pub(super) const MAX_OPS: usize = 256;
/// The ports listen, connect and accept records choose from.
pub(super) const PORTS: [u16; 4] = [80, 81, 90, 4399];
/// A raw packet record carries at most this many bytes.
const MAX_RAW: u16 = 2048;
/// Bytes of a link record.
pub(super) const LINK_LEN: usize = 12;

/// Reads an input front to back; past its end every byte reads as zero.
pub(super) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    pub(super) fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    pub(super) fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub(super) fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        for b in &mut a {
            *b = self.u8();
        }
        a
    }

    /// The next `n` bytes, or fewer at the end of the input.
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        self.data.get(start..end).unwrap_or(&[])
    }
}

/// Which stack of the pair a record is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    A,
    B,
}

/// One record. Fields stay raw bytes; the harnesses interpret them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Op<'a> {
    /// A packet handed to the stack as is.
    Raw {
        side: Side,
        bytes: &'a [u8],
    },
    /// A segment aimed at a connection (see `packet::mutated`).
    Mutate {
        side: Side,
        m: [u8; MUTATION_LEN],
    },
    /// The clock moves on by `mant << (exp % 20)` microseconds.
    Advance {
        exp: u8,
        mant: u16,
    },
    /// The clock moves to the next deadline, which is handled.
    Deadline,
    /// Output transmitted, events taken.
    Drain,
    Listen {
        side: Side,
        port: u8,
        backlog: u8,
        cfg: u8,
    },
    Unlisten {
        side: Side,
        port: u8,
    },
    /// `local % 5`: 0 an ephemeral port, else `PORTS[local % 5 - 1]`.
    Connect {
        side: Side,
        port: u8,
        local: u8,
        cfg: u8,
    },
    Accept {
        side: Side,
        port: u8,
    },
    Send {
        side: Side,
        conn: u8,
        len: u16,
    },
    Recv {
        side: Side,
        conn: u8,
        len: u16,
    },
    /// Another application call on a connection, `call % 8`.
    Call {
        side: Side,
        conn: u8,
        call: u8,
    },
    /// A link configuration (`dir % 3`: both, a to b, b to a).
    Link {
        dir: u8,
        cfg: [u8; LINK_LEN],
    },
}

/// How many kinds of record there are.
const KINDS: u8 = 13;

impl Op<'_> {
    pub(super) fn micros(exp: u8, mant: u16) -> u64 {
        u64::from(mant) << (exp % 20)
    }
}

/// The next record, or `None` at the end of the input.
pub(super) fn decode<'a>(r: &mut Reader<'a>) -> Option<Op<'a>> {
    if r.is_empty() {
        return None;
    }
    let tag = r.u8();
    let side = if tag & 0x80 == 0 { Side::A } else { Side::B };
    Some(match (tag & 0x7f) % KINDS {
        0 => {
            let len = r.u16() % (MAX_RAW + 1);
            Op::Raw {
                side,
                bytes: r.bytes(usize::from(len)),
            }
        }
        1 => Op::Mutate { side, m: r.array() },
        2 => Op::Advance {
            exp: r.u8(),
            mant: r.u16(),
        },
        3 => Op::Deadline,
        4 => Op::Drain,
        5 => Op::Listen {
            side,
            port: r.u8(),
            backlog: r.u8(),
            cfg: r.u8(),
        },
        6 => Op::Unlisten { side, port: r.u8() },
        7 => Op::Connect {
            side,
            port: r.u8(),
            local: r.u8(),
            cfg: r.u8(),
        },
        8 => Op::Accept { side, port: r.u8() },
        9 => Op::Send {
            side,
            conn: r.u8(),
            len: r.u16(),
        },
        10 => Op::Recv {
            side,
            conn: r.u8(),
            len: r.u16(),
        },
        11 => Op::Call {
            side,
            conn: r.u8(),
            call: r.u8(),
        },
        _ => Op::Link {
            dir: r.u8(),
            cfg: r.array(),
        },
    })
}

/// Appends `op` as [`decode`] reads it back.
pub(super) fn encode(op: &Op<'_>, out: &mut Vec<u8>) {
    let tag = |kind: u8, side: Side| kind | if side == Side::B { 0x80 } else { 0 };
    match op {
        Op::Raw { side, bytes } => {
            let len = bytes.len().min(usize::from(MAX_RAW));
            out.push(tag(0, *side));
            out.extend_from_slice(&(len as u16).to_be_bytes());
            out.extend_from_slice(&bytes[..len]);
        }
        Op::Mutate { side, m } => {
            out.push(tag(1, *side));
            out.extend_from_slice(m);
        }
        Op::Advance { exp, mant } => {
            out.extend_from_slice(&[2, *exp]);
            out.extend_from_slice(&mant.to_be_bytes());
        }
        Op::Deadline => out.push(3),
        Op::Drain => out.push(4),
        Op::Listen {
            side,
            port,
            backlog,
            cfg,
        } => out.extend_from_slice(&[tag(5, *side), *port, *backlog, *cfg]),
        Op::Unlisten { side, port } => out.extend_from_slice(&[tag(6, *side), *port]),
        Op::Connect {
            side,
            port,
            local,
            cfg,
        } => out.extend_from_slice(&[tag(7, *side), *port, *local, *cfg]),
        Op::Accept { side, port } => out.extend_from_slice(&[tag(8, *side), *port]),
        Op::Send { side, conn, len } | Op::Recv { side, conn, len } => {
            let kind = if matches!(op, Op::Send { .. }) { 9 } else { 10 };
            out.extend_from_slice(&[tag(kind, *side), *conn]);
            out.extend_from_slice(&len.to_be_bytes());
        }
        Op::Call { side, conn, call } => out.extend_from_slice(&[tag(11, *side), *conn, *call]),
        Op::Link { dir, cfg } => {
            out.extend_from_slice(&[12, *dir]);
            out.extend_from_slice(cfg);
        }
    }
}

/// The settings a listen or connect record's `cfg` byte chooses, each bit
/// one departure from `base`: small buffers (zero windows come quickly),
/// no SACK, no timestamps, no window scaling, NewReno, no delayed ACK, no
/// Nagle nor tail loss probe, and TSO with checksum offload, HyStart++ and
/// RFC 1337 off.
pub(super) fn tcp_config(base: &TcpConfig, bits: u8) -> TcpConfig {
    let mut c = base.clone();
    if bits & 0x01 != 0 {
        c.recv_buffer = 4096;
        c.send_buffer = 8192;
    }
    c.sack &= bits & 0x02 == 0;
    c.timestamps &= bits & 0x04 == 0;
    c.window_scaling &= bits & 0x08 == 0;
    if bits & 0x10 != 0 {
        c.congestion = Algorithm::NewReno;
    }
    if bits & 0x20 != 0 {
        c.ack_delay = None;
    }
    if bits & 0x40 != 0 {
        c.nagle = false;
        c.tail_loss_probe = false;
    }
    if bits & 0x80 != 0 {
        c.max_super_segment = 8 * usize::from(c.mss);
        c.checksum_offload = true;
        c.hystart = true;
        c.rfc1337 = false;
    }
    c
}

/// A random structured program: a prologue that listens, connects and
/// accepts on both sides, then up to 160 random records with plausible
/// fields; half the programs inject no packet (so that `two_stacks` checks
/// the bytes delivered).
pub(super) fn random_program(rng: &mut StdRng) -> Vec<u8> {
    let mut out = Vec::new();
    let cfg: u8 = rng.random();
    let prologue = [
        Op::Listen {
            side: Side::B,
            port: 0,
            backlog: 8,
            cfg,
        },
        Op::Listen {
            side: Side::A,
            port: 2,
            backlog: 1,
            cfg: rng.random(),
        },
        Op::Connect {
            side: Side::A,
            port: 0,
            local: 0,
            cfg: rng.random(),
        },
        Op::Connect {
            side: Side::B,
            port: 2,
            local: 0,
            cfg,
        },
        Op::Advance { exp: 10, mant: 30 },
        Op::Accept {
            side: Side::B,
            port: 0,
        },
        Op::Accept {
            side: Side::A,
            port: 2,
        },
    ];
    for op in &prologue {
        encode(op, &mut out);
    }
    let clean = rng.random_bool(0.5);
    for _ in 0..rng.random_range(8..160) {
        random_op(rng, &mut out, clean);
    }
    out
}

/// Appends one random record, the kinds weighted towards segments, time
/// and data; no packets if `clean`.
fn random_op(rng: &mut StdRng, out: &mut Vec<u8>, clean: bool) {
    let side = if rng.random() { Side::A } else { Side::B };
    let conn: u8 = rng.random();
    let raw;
    let op = match rng.random_range(if clean { 35 } else { 0 }..100u32) {
        0..=29 => Op::Mutate {
            side,
            m: random_mutation(rng),
        },
        30..=34 => {
            raw = random_packet(rng);
            Op::Raw { side, bytes: &raw }
        }
        35..=46 => Op::Advance {
            exp: rng.random_range(0..16),
            mant: rng.random(),
        },
        47..=53 => Op::Deadline,
        54..=60 => Op::Drain,
        61..=70 => Op::Send {
            side,
            conn,
            len: rng.random_range(0..20_000),
        },
        71..=78 => Op::Recv {
            side,
            conn,
            len: rng.random(),
        },
        79..=83 => Op::Call {
            side,
            conn,
            call: rng.random(),
        },
        84..=87 => Op::Connect {
            side,
            port: rng.random(),
            local: rng.random(),
            cfg: rng.random(),
        },
        88..=91 => Op::Accept {
            side,
            port: rng.random(),
        },
        92..=93 => Op::Listen {
            side,
            port: rng.random(),
            backlog: rng.random_range(0..4),
            cfg: rng.random(),
        },
        94 => Op::Unlisten {
            side,
            port: rng.random(),
        },
        _ => Op::Link {
            dir: rng.random(),
            cfg: random_link(rng),
        },
    };
    encode(&op, out);
}

/// Mutation bytes (see `packet::mutated`) biased towards the plausible:
/// common flag sets, exact sequence and acknowledgment numbers more often
/// than not, short payloads, few options.
fn random_mutation(rng: &mut StdRng) -> [u8; MUTATION_LEN] {
    const FLAGS: [TcpFlags; 8] = [
        TcpFlags::ACK,
        TcpFlags(TcpFlags::ACK.0 | TcpFlags::PSH.0),
        TcpFlags::SYN,
        TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0),
        TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0),
        TcpFlags::RST,
        TcpFlags(TcpFlags::RST.0 | TcpFlags::ACK.0),
        TcpFlags::FIN,
    ];
    let mut m = [0u8; MUTATION_LEN];
    rng.fill(&mut m[..]);
    if rng.random_bool(0.9) {
        m[1] = FLAGS[rng.random_range(0..FLAGS.len())].0;
    }
    for i in [2, 5] {
        if rng.random_bool(0.6) {
            m[i] &= 0x7f;
        }
    }
    m[10] &= if rng.random_bool(0.7) { 0x08 } else { 0x7f };
    if rng.random_bool(0.05) {
        m[10] |= 0x80;
    }
    if rng.random_bool(0.8) {
        m[26] = rng.random_range(0..6);
    }
    m
}

/// A valid TCP packet to one of the two addresses and a usual port, with
/// a few bytes then flipped at random (or none).
fn random_packet(rng: &mut StdRng) -> Vec<u8> {
    let host = |rng: &mut StdRng| Ipv4Addr::new(10, 0, 0, rng.random_range(1..=3));
    let port = |rng: &mut StdRng| {
        if rng.random() {
            PORTS[rng.random_range(0..PORTS.len())]
        } else {
            rng.random_range(49152..=u16::MAX)
        }
    };
    let src = SocketAddrV4::new(host(rng), port(rng));
    let dst = SocketAddrV4::new(host(rng), port(rng));
    let payload = vec![0x5a; rng.random_range(0..64)];
    let mut seg = segment(
        src,
        dst,
        TcpFlags(rng.random()),
        rng.random(),
        rng.random(),
        &payload,
    );
    seg.window = rng.random();
    seg.options = TcpOptions {
        mss: rng.random_bool(0.3).then(|| rng.random()),
        window_scale: rng.random_bool(0.2).then(|| rng.random_range(0..20)),
        sack_permitted: rng.random_bool(0.2),
        timestamp: rng.random_bool(0.3).then(|| rng.random()),
        ..TcpOptions::default()
    };
    let mut buf = vec![0u8; seg.header_len() + payload.len()];
    let n = wire::emit_tcp(&mut buf, &seg, &[]).unwrap_or(0);
    buf.truncate(n);
    for _ in 0..rng.random_range(0..4u32) {
        if !buf.is_empty() {
            let i = rng.random_range(0..buf.len());
            buf[i] ^= rng.random::<u8>();
        }
    }
    buf
}

/// Link bytes (see `pair::link_config`) that keep most links usable:
/// zero probabilities more often than not.
fn random_link(rng: &mut StdRng) -> [u8; LINK_LEN] {
    let mut l = [0u8; LINK_LEN];
    rng.fill(&mut l[..]);
    for i in [2, 3, 5, 6] {
        if rng.random_bool(0.6) {
            l[i] = 0;
        } else {
            l[i] %= 64;
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn encode_decode_round_trip() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..50 {
            let program = random_program(&mut rng);
            let mut r = Reader::new(&program);
            let mut again = Vec::new();
            while let Some(op) = decode(&mut r) {
                encode(&op, &mut again);
            }
            assert_eq!(again, program);
        }
    }
}
