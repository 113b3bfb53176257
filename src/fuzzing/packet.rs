//! Segments aimed at a live connection, built from 32 bytes of choices
//! (a mutate record): what lets fuzz input reach a TCB's paths rather than
//! stop at the parser or at the stack's reset for unknown 4-tuples.

use std::net::SocketAddrV4;

use crate::seq::SeqNum;
use crate::tcb::Tcb;
use crate::testing::{pattern, segment};
use crate::wire::{self, TcpFlags, TcpOptions};

/// Bytes of a mutate record.
pub(super) const MUTATION_LEN: usize = 32;
/// The largest payload a mutated segment carries (it must fit an IPv4
/// packet with the largest headers).
const MAX_PAYLOAD: usize = 65_400;

/// A connection as its peer sees it: where a segment goes and the numbers
/// the connection expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Aim {
    /// The connection's own address: the segment's destination.
    pub(super) local: SocketAddrV4,
    /// Its peer's address: the segment's source.
    pub(super) remote: SocketAddrV4,
    /// RCV.NXT: the sequence number it expects next.
    pub(super) rcv_nxt: u32,
    /// SND.UNA: its oldest unacknowledged sequence number.
    pub(super) snd_una: u32,
    /// SND.NXT: its next sequence number to send.
    pub(super) snd_nxt: u32,
    /// The peer's last TSval it saw (what it echoes), if known.
    pub(super) ts_recent: u32,
    /// Its own last TSval, if known.
    pub(super) ts_val: u32,
}

impl Aim {
    /// The numbers of `tcb`, without timestamps (a TCB does not show them).
    pub(super) fn of(tcb: &Tcb) -> Aim {
        Aim {
            local: tcb.local(),
            remote: tcb.remote(),
            rcv_nxt: tcb.rcv_nxt().0,
            snd_una: tcb.snd_una().0,
            snd_nxt: tcb.snd_nxt().0,
            ts_recent: 0,
            ts_val: 0,
        }
    }
}

/// `base[mode & 3]`, moved by the signed `off` shifted left by
/// `(mode >> 2) % 17` when the top bit of `mode` is set.
fn pick(mode: u8, off: u16, base: [u32; 4]) -> u32 {
    let b = base[usize::from(mode & 3)];
    if mode & 0x80 == 0 {
        return b;
    }
    let delta = i64::from(off as i16) << (((mode >> 2) & 0x1f) % 17);
    b.wrapping_add(delta as u32)
}

/// The segment `m` describes, aimed at `aim`, as an IPv4 packet; `None` if
/// it would not fit one.
///
/// `m`: 0 which connection (chosen by the caller) and payload salt; 1 the
/// flags; 2 and 3-4 the sequence number (base RCV.NXT, RCV.NXT - 1, raw, or
/// RCV.NXT + window; offset); 5 and 6-7 the acknowledgment (SND.NXT,
/// SND.UNA, raw, or half-way; offset); 8-9 the window; 10 the options
/// (bits: MSS 11-12, window scale 13, SACK-permitted, timestamps offset
/// by 14-15 and 16-17, up to 4 SACK blocks from 18-25 around SND.UNA, and
/// a byte flip at 28-29 with 30 after encoding); 26-27 the payload length
/// (under an MSS, or up to 64 KB if the top bit is set).
pub(super) fn mutated(aim: &Aim, m: &[u8; MUTATION_LEN]) -> Option<Vec<u8>> {
    let word = |i: usize| u16::from_be_bytes([m[i], m[i + 1]]);
    let raw = |i: usize, j: usize| u32::from_be_bytes([m[i], m[i + 1], m[j], m[j + 1]]);
    let seq = pick(
        m[2],
        word(3),
        [
            aim.rcv_nxt,
            aim.rcv_nxt.wrapping_sub(1),
            raw(3, 28),
            aim.rcv_nxt.wrapping_add(u32::from(word(8))),
        ],
    );
    let flight = aim.snd_nxt.wrapping_sub(aim.snd_una);
    let ack = pick(
        m[5],
        word(6),
        [
            aim.snd_nxt,
            aim.snd_una,
            raw(6, 30),
            aim.snd_una.wrapping_add(flight / 2),
        ],
    );
    let len = if m[26] & 0x80 != 0 {
        (usize::from(word(26) & 0x7fff) * 2).min(MAX_PAYLOAD)
    } else {
        usize::from(word(26)) % 1461
    };
    let payload = pattern(len, u32::from(m[0]));
    let mut seg = segment(aim.remote, aim.local, TcpFlags(m[1]), seq, ack, &payload);
    seg.window = word(8);
    seg.options = options(aim, m);
    let mut buf = vec![0u8; seg.header_len() + payload.len()];
    let n = wire::emit_tcp(&mut buf, &seg, &[])?;
    buf.truncate(n);
    if m[10] & 0x80 != 0 && n > 0 {
        let at = usize::from(word(28)) % n;
        buf[at] ^= m[30] | 1;
    }
    Some(buf)
}

/// The options of a mutated segment (see [`mutated`]).
fn options(aim: &Aim, m: &[u8; MUTATION_LEN]) -> TcpOptions {
    let signed = |i: usize| i16::from_be_bytes([m[i], m[i + 1]]) as i32 as u32;
    let bits = m[10];
    let mut o = TcpOptions {
        mss: (bits & 0x01 != 0).then(|| u16::from_be_bytes([m[11], m[12]])),
        window_scale: (bits & 0x02 != 0).then_some(m[13]),
        sack_permitted: bits & 0x04 != 0,
        timestamp: (bits & 0x08 != 0).then(|| {
            (
                aim.ts_recent.wrapping_add(signed(14)),
                aim.ts_val.wrapping_sub(signed(16)),
            )
        }),
        ..TcpOptions::default()
    };
    for i in 0..usize::from((bits >> 4) & 7).min(4) {
        let left = aim
            .snd_una
            .wrapping_add(u32::from(m[18 + 2 * i]) * 256)
            .wrapping_sub(1024);
        let right = left.wrapping_add((i32::from(m[19 + 2 * i] as i8) * 128) as u32);
        o.sack.push(SeqNum(left), SeqNum(right));
    }
    o
}
