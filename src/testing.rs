//! Test support shared by every test of utcp: the unit tests in `src/`, the
//! integration tests in `tests/` and utcp-packetdrill's tests.
//!
//! Compiled only for `cfg(test)` or with the `testing` cargo feature (the
//! integration tests and utcp-packetdrill enable it through a dev-dependency),
//! so it is never part of a normal build. Nothing here does I/O beyond
//! logging: network namespaces and TUN devices are the business of
//! `tests/common`.
//!
//! What is here:
//! - [`init_logger`]: env_logger for tests, filtered by `RUST_LOG`;
//! - byte generators: [`data`], [`pattern`], [`random_bytes`], [`pattern_fill`],
//!   and [`assert_same_bytes`] to compare long byte strings readably;
//! - segments in: [`segment`] builds a [`TcpSegment`] (what a peer sends),
//!   [`encode`] turns it into an IPv4 packet with valid checksums;
//! - segments out: [`Seg`] is a transmitted segment parsed back and owning its
//!   payload, [`tcp_segment`] parses without copying, and [`tcb_output`] /
//!   [`stack_output`] collect everything a [`Tcb`] or a [`Stack`] transmits.

use std::fmt;
use std::net::SocketAddrV4;

use rand::{Rng, SeedableRng};

use crate::seq::SeqNum;
use crate::stack::Stack;
use crate::tcb::Tcb;
use crate::time::Instant;
use crate::wire::{self, Packet, TcpFlags, TcpOptions, TcpSegment};

// ----------------------------------------------------------------------
// Logging
// ----------------------------------------------------------------------

/// Sends `log` output to the test harness (captured per test, shown for
/// failing tests), filtered by `RUST_LOG` (e.g. `RUST_LOG=utcp=trace`);
/// silent when `RUST_LOG` is unset. Safe to call from every test: only the
/// first call in a process installs the logger.
pub fn init_logger() {
    let _ = env_logger::builder().is_test(true).try_init();
}

// ----------------------------------------------------------------------
// Byte generators
// ----------------------------------------------------------------------

/// `n` bytes of recognisable data: byte `i` is `i % 251` (a prime, so the
/// pattern does not line up with segment or buffer sizes).
pub fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// `len` bytes of a deterministic pattern that differs per `salt`: byte `i`
/// is `(7 * i + salt) % 251`. Use different salts for the two directions of
/// a connection so that a mix-up shows.
pub fn pattern(len: usize, salt: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(7).wrapping_add(salt) % 251) as u8)
        .collect()
}

/// `len` pseudo-random bytes from `StdRng` seeded with `seed`: the same
/// seed gives the same bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut buf = vec![0u8; len];
    rng.fill(&mut buf[..]);
    buf
}

/// Fills `buf` with the bytes at `offset..offset + buf.len()` of an endless
/// pseudo-random stream determined by `seed`. Random access: the result does
/// not depend on how a stream is cut into chunks, so a sender and a verifier
/// can both generate it on the fly (no big files or buffers).
pub fn pattern_fill(seed: u64, offset: u64, buf: &mut [u8]) {
    fn word(seed: u64, index: u64) -> [u8; 8] {
        // splitmix64 of (seed, index).
        let mut z = seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).to_le_bytes()
    }
    let mut pos = offset;
    let mut i = 0;
    while i < buf.len() {
        let w = word(seed, pos / 8);
        let start = (pos % 8) as usize;
        let n = (8 - start).min(buf.len() - i);
        buf[i..i + n].copy_from_slice(&w[start..start + n]);
        i += n;
        pos += n as u64;
    }
}

/// Asserts two byte strings are equal without dumping megabytes on failure:
/// the message gives both lengths and the first differing offset.
#[track_caller]
pub fn assert_same_bytes(what: &str, expected: &[u8], got: &[u8]) {
    if expected == got {
        return;
    }
    let first_diff = expected
        .iter()
        .zip(got.iter())
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(got.len()));
    panic!(
        "{what}: data differs: expected {} bytes, got {} bytes, first difference at offset {first_diff}",
        expected.len(),
        got.len()
    );
}

// ----------------------------------------------------------------------
// Segments in
// ----------------------------------------------------------------------

/// A segment from `src` to `dst` as a peer would send it: window 65535, no
/// options. Change the other fields with struct update syntax
/// (`TcpSegment { window: 0, ..segment(...) }`).
pub fn segment(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    flags: TcpFlags,
    seq: u32,
    ack: u32,
    payload: &[u8],
) -> TcpSegment<'_> {
    TcpSegment {
        src,
        dst,
        seq: SeqNum(seq),
        ack: SeqNum(ack),
        flags,
        window: 65_535,
        options: TcpOptions::default(),
        payload,
    }
}

/// `seg` as an IPv4 packet, written by [`wire::emit_tcp`] (so checksums and
/// lengths are valid), for entry points that take raw packets
/// (`Stack::handle_packet`, a device).
pub fn encode(seg: &TcpSegment<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; seg.header_len() + seg.payload.len()];
    let n = wire::emit_tcp(&mut buf, seg, &[]).expect("the segment fits an IPv4 packet");
    buf.truncate(n);
    buf
}

// ----------------------------------------------------------------------
// Segments out
// ----------------------------------------------------------------------

/// A transmitted TCP segment parsed back from the wire, owning its payload,
/// with plain `u32` sequence numbers so that expected values are short to
/// write. Compares field by field; its `Debug` is compact (the payload shows
/// as its length and byte sum) so that failed comparisons stay readable.
#[derive(Clone, PartialEq, Eq)]
pub struct Seg {
    /// Sender's address and port.
    pub src: SocketAddrV4,
    /// Receiver's address and port.
    pub dst: SocketAddrV4,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (zero on the wire unless ACK is set).
    pub ack: u32,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window field as on the wire (not scaled).
    pub window: u16,
    /// Parsed options.
    pub options: TcpOptions,
    /// The data.
    pub payload: Vec<u8>,
}

impl Seg {
    /// Parses a raw IPv4 packet (checksums and lengths included); panics,
    /// naming the reason, if it is not a valid TCP segment.
    #[track_caller]
    pub fn parse(packet: &[u8]) -> Seg {
        match wire::parse(packet) {
            Ok(Packet::Tcp(s)) => Seg::from(&s),
            other => panic!("not a valid TCP segment: {other:?}"),
        }
    }
}

impl From<&TcpSegment<'_>> for Seg {
    fn from(s: &TcpSegment<'_>) -> Seg {
        Seg {
            src: s.src,
            dst: s.dst,
            seq: s.seq.0,
            ack: s.ack.0,
            flags: s.flags,
            window: s.window,
            options: s.options,
            payload: s.payload.to_vec(),
        }
    }
}

impl fmt::Debug for Seg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sum: u64 = self.payload.iter().map(|&b| u64::from(b)).sum();
        write!(
            f,
            "<{:?} {}>{} seq={} ack={} win={} len={} sum={}",
            self.flags,
            self.src,
            self.dst,
            self.seq,
            self.ack,
            self.window,
            self.payload.len(),
            sum
        )?;
        if self.options != TcpOptions::default() {
            write!(f, " {:?}", self.options)?;
        }
        f.write_str(">")
    }
}

/// The TCP segment in a raw IPv4 packet, borrowing its payload; `None` if
/// the packet is not a valid TCP segment (ICMP, corrupted, truncated).
pub fn tcp_segment(packet: &[u8]) -> Option<TcpSegment<'_>> {
    match wire::parse(packet) {
        Ok(Packet::Tcp(s)) => Some(s),
        _ => None,
    }
}

/// Everything `tcb` transmits at `now`: [`Tcb::dispatch`] until it returns
/// `None`, each packet parsed back with [`Seg::parse`]. Panics if a packet is
/// not valid TCP or if `dispatch` never stops.
#[track_caller]
pub fn tcb_output(tcb: &mut Tcb, now: Instant) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut buf = vec![0u8; 65_535];
    while let Some(n) = tcb.poll_transmit(now, &mut buf) {
        segs.push(Seg::parse(&buf[..n]));
        assert!(segs.len() < 1000, "dispatch never returns None");
    }
    segs
}

/// Every packet `stack` transmits at `now` ([`Stack::dispatch`]), raw: they
/// may be ICMP as well as TCP. Parse them with [`Seg::parse`] or
/// [`tcp_segment`].
pub fn stack_output(stack: &mut Stack, now: Instant) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 65_535];
    let mut out = Vec::new();
    stack.poll_transmit(now, &mut buf, |p| out.push(p.to_vec()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_parse_round_trips() {
        let src = "10.0.0.1:1000".parse().unwrap();
        let dst = "10.0.0.2:80".parse().unwrap();
        let mut s = segment(src, dst, TcpFlags::ACK | TcpFlags::PSH, 7, 9, b"hello");
        s.options.mss = Some(1200);
        let back = Seg::parse(&encode(&s));
        assert_eq!(back, Seg::from(&s));
        assert_eq!(tcp_segment(&encode(&s)), Some(s));
        assert_eq!(tcp_segment(&[0x45, 0, 0]), None);
    }

    #[test]
    fn pattern_fill_is_random_access() {
        let mut whole = [0u8; 64];
        pattern_fill(3, 0, &mut whole);
        let mut part = [0u8; 13];
        pattern_fill(3, 21, &mut part);
        assert_eq!(part, whole[21..34]);
        assert_ne!(random_bytes(32, 1), random_bytes(32, 2));
        assert_eq!(data(300)[251], 0);
        assert_eq!(pattern(2, 5), [5, 12]);
    }
}
