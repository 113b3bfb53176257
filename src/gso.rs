//! Offload on the way out: what a device finishes for the stack, and the
//! same work in software for a device (or a simulated link, or the
//! impairment layer) that cannot.
//!
//! A connection configured for it ([`TcpConfig::checksum_offload`],
//! [`TcpConfig::max_super_segment`]) writes packets that are not finished:
//! - a *partial checksum*: the TCP checksum field holds only the
//!   pseudo-header sum (RFC 9293 section 3.1) over the whole TCP length, and
//!   the device sums the header and payload into it;
//! - a *super-segment*: one IPv4/TCP header and up to 64 KB of contiguous
//!   payload, which the device cuts into segments of
//!   [`TxOffload::segment_size`] bytes (TCP segmentation offload, TSO). Every
//!   segment gets the same headers with the sequence number advanced and the
//!   lengths and checksums made right; FIN and PSH stay only on the last one,
//!   as Linux's `tcp_gso_segment` does. The stack builds a super-segment only
//!   from whole MSS-sized pieces (plus the tail of the data where a plain
//!   segment would have gone too) that the congestion window, the peer's
//!   window and Nagle all allow, so the segments on the wire are the ones the
//!   stack would have sent one by one.
//!
//! [`TxOffload`] travels with each packet from [`Stack::poll_transmit_with`]
//! to the device, which turns it into a virtio-net header
//! ([`crate::device::vnet`]); [`finish`] does the device's work in software.
//!
//! [`TcpConfig::checksum_offload`]: crate::tcb::TcpConfig::checksum_offload
//! [`TcpConfig::max_super_segment`]: crate::tcb::TcpConfig::max_super_segment
//! [`Stack::poll_transmit_with`]: crate::stack::Stack::poll_transmit_with

use crate::wire::{self, TcpFlags, IPV4_HEADER_LEN, TCP_HEADER_LEN};

/// What the device still has to do to a packet the stack wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxOffload {
    /// The TCP checksum holds only the pseudo-header sum: complete it.
    pub partial_checksum: bool,
    /// A super-segment: cut its payload into segments of this many bytes.
    pub segment_size: Option<u16>,
}

impl TxOffload {
    /// Nothing to do: a finished packet.
    pub const NONE: TxOffload = TxOffload {
        partial_checksum: false,
        segment_size: None,
    };

    /// True when the packet is finished as it is.
    pub fn is_none(&self) -> bool {
        *self == TxOffload::NONE
    }
}

/// Why [`finish`] could not finish a packet (only a packet the stack did
/// not write this way can fail).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishError {
    /// Not an IPv4/TCP packet with consistent lengths.
    Malformed,
    /// A segment size of zero.
    ZeroSegmentSize,
}

impl std::fmt::Display for FinishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FinishError::Malformed => "not an IPv4/TCP packet with consistent lengths",
            FinishError::ZeroSegmentSize => "a super-segment with a segment size of zero",
        })
    }
}

impl std::error::Error for FinishError {}

impl From<FinishError> for std::io::Error {
    fn from(e: FinishError) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    }
}

/// Does in software what the device would do for `offload`: completes the
/// checksum and cuts a super-segment into segments, handing every finished
/// packet to `emit` in order. A packet without offload is handed on as it
/// is. The work happens in `scratch` (reused between calls; it grows to one
/// segment), so `packet` is not changed.
pub fn finish(
    packet: &[u8],
    offload: TxOffload,
    scratch: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]),
) -> Result<(), FinishError> {
    let Some(size) = offload.segment_size else {
        if offload.partial_checksum {
            scratch.clear();
            scratch.extend_from_slice(packet);
            wire::complete_tcp_checksum(scratch).ok_or(FinishError::Malformed)?;
            emit(scratch);
        } else {
            emit(packet);
        }
        return Ok(());
    };
    let size = usize::from(size);
    if size == 0 {
        return Err(FinishError::ZeroSegmentSize);
    }
    let hdr = headers_len(packet).ok_or(FinishError::Malformed)?;
    let payload = &packet[hdr..];
    let seq = u32::from_be_bytes([
        packet[IPV4_HEADER_LEN + 4],
        packet[IPV4_HEADER_LEN + 5],
        packet[IPV4_HEADER_LEN + 6],
        packet[IPV4_HEADER_LEN + 7],
    ]);
    let count = payload.len().div_ceil(size).max(1);
    for i in 0..count {
        let chunk = payload.get(i * size..((i + 1) * size).min(payload.len()));
        let chunk = chunk.ok_or(FinishError::Malformed)?;
        scratch.clear();
        scratch.extend_from_slice(&packet[..hdr]);
        scratch.extend_from_slice(chunk);
        let last = i + 1 == count;
        let offset = u32::try_from(i * size).map_err(|_| FinishError::Malformed)?;
        patch_segment(scratch, seq.wrapping_add(offset), last)?;
        emit(scratch);
    }
    Ok(())
}

/// [`finish`]es `packet` and sends every resulting packet with `send`,
/// stopping at the first error: a device's fallback when it cannot offload.
pub fn finish_and_send(
    packet: &[u8],
    offload: TxOffload,
    scratch: &mut Vec<u8>,
    mut send: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut result = Ok(());
    finish(packet, offload, scratch, |p| {
        if result.is_ok() {
            result = send(p);
        }
    })?;
    result
}

/// The length of the IPv4 and TCP headers of a packet the stack wrote (no
/// IPv4 options), checked against its lengths; `None` for anything else.
pub fn headers_len(packet: &[u8]) -> Option<usize> {
    let ihl = usize::from(*packet.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*packet.get(2)?, *packet.get(3)?]));
    if *packet.first()? >> 4 != 4 || ihl != IPV4_HEADER_LEN || *packet.get(9)? != 6 {
        return None;
    }
    let thl = usize::from(*packet.get(ihl + 12)? >> 4) * 4;
    if thl < TCP_HEADER_LEN || total != packet.len() || ihl + thl > total {
        return None;
    }
    Some(ihl + thl)
}

/// Makes one cut piece a packet of its own: the IPv4 total length and
/// checksum, the sequence number, FIN and PSH only on the last piece, and
/// the full TCP checksum.
fn patch_segment(seg: &mut [u8], seq: u32, last: bool) -> Result<(), FinishError> {
    let total = u16::try_from(seg.len()).map_err(|_| FinishError::Malformed)?;
    seg[2..4].copy_from_slice(&total.to_be_bytes());
    seg[10..12].copy_from_slice(&[0, 0]);
    let ip_sum = wire::internet_checksum(&seg[..IPV4_HEADER_LEN]);
    seg[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    let tcp = &mut seg[IPV4_HEADER_LEN..];
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    if !last {
        tcp[13] &= !(TcpFlags::FIN.0 | TcpFlags::PSH.0);
    }
    wire::complete_tcp_checksum(seg).ok_or(FinishError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seq::SeqNum;
    use crate::wire::{parse, Packet, TcpOptions, TcpSegment};
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn segment(payload: &[u8], flags: TcpFlags) -> TcpSegment<'_> {
        TcpSegment {
            src: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80),
            dst: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000),
            seq: SeqNum(0xffff_f000),
            ack: SeqNum(7),
            flags,
            window: 1000,
            options: TcpOptions {
                timestamp: Some((1, 2)),
                ..TcpOptions::default()
            },
            payload,
        }
    }

    /// A partial checksum is the pseudo-header sum; completing it gives the
    /// same packet as writing the full checksum.
    #[test]
    fn completed_partial_checksum_equals_full_checksum() {
        let data: Vec<u8> = (0..1001u32).map(|i| (i * 7) as u8).collect();
        let seg = segment(&data, TcpFlags::ACK | TcpFlags::PSH);
        let mut full = vec![0u8; 2000];
        let n = wire::emit_tcp(&mut full, &seg, &[]).unwrap();
        let mut partial = vec![0u8; 2000];
        let m = wire::emit_tcp_with(&mut partial, &seg, &[], true).unwrap();
        assert_eq!(n, m);
        assert_ne!(full[36..38], partial[36..38], "the field holds another sum");
        let offload = TxOffload {
            partial_checksum: true,
            segment_size: None,
        };
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        finish(&partial[..m], offload, &mut scratch, |p| {
            out.push(p.to_vec())
        })
        .unwrap();
        assert_eq!(out, vec![full[..n].to_vec()]);
    }

    /// A super-segment cut like Linux's `tcp_gso_segment`: every piece
    /// parses (checksums right), carries its slice of the payload at the
    /// right (wrapping) sequence number, FIN and PSH only on the last.
    #[test]
    fn super_segment_is_cut_into_valid_segments() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let flags = TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN;
        let seg = segment(&data, flags);
        let mut buf = vec![0u8; 11_000];
        let n = wire::emit_tcp_with(&mut buf, &seg, &[], true).unwrap();
        let offload = TxOffload {
            partial_checksum: true,
            segment_size: Some(1448),
        };
        let mut pieces = Vec::new();
        finish(&buf[..n], offload, &mut Vec::new(), |p| {
            pieces.push(p.to_vec())
        })
        .unwrap();
        assert_eq!(pieces.len(), 7);
        let mut joined = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            let Ok(Packet::Tcp(s)) = parse(p) else {
                panic!("piece {i} does not parse");
            };
            assert_eq!(s.seq, seg.seq + (i * 1448) as u32);
            assert_eq!(s.options.timestamp, Some((1, 2)));
            let last = i == pieces.len() - 1;
            assert_eq!(s.payload.len(), if last { 10_000 - 6 * 1448 } else { 1448 });
            assert_eq!(s.flags.contains(TcpFlags::FIN), last);
            assert_eq!(s.flags.contains(TcpFlags::PSH), last);
            assert!(s.flags.contains(TcpFlags::ACK));
            joined.extend_from_slice(s.payload);
        }
        assert_eq!(joined, data);
    }

    #[test]
    fn malformed_packets_are_refused_not_panicked_on() {
        let cut = TxOffload {
            partial_checksum: true,
            segment_size: Some(100),
        };
        let mut scratch = Vec::new();
        for len in [0usize, 1, 19, 20, 39, 40, 60] {
            let mut p = vec![0u8; len];
            if len > 0 {
                p[0] = 0x45;
            }
            let r = finish(&p, cut, &mut scratch, |_| panic!("emitted"));
            assert_eq!(r, Err(FinishError::Malformed), "len {len}");
        }
        let zero = TxOffload {
            segment_size: Some(0),
            ..cut
        };
        let r = finish(&[0u8; 40], zero, &mut scratch, |_| {});
        assert_eq!(r, Err(FinishError::ZeroSegmentSize));
    }
}
