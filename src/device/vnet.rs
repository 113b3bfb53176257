//! The virtio-net header a TUN device opened with `IFF_VNET_HDR` puts in
//! front of every packet (`struct virtio_net_hdr`, 10 bytes, in the host's
//! byte order as the kernel's legacy virtio default), and the rules utcp
//! applies to what the kernel hands over.
//!
//! With `TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4)` the kernel may give us:
//! - a packet whose TCP checksum it never computed (`NEEDS_CSUM`, a
//!   *partial* checksum: the field holds only the pseudo-header sum, and
//!   `csum_start`/`csum_offset` say where the sum starts and goes). The
//!   packet was made by the kernel's own stack in memory, so there is
//!   nothing to verify; utcp accepts it only if the offsets point exactly at
//!   the TCP checksum of this packet;
//! - a *super-packet* (`GSO_TCPV4`): one IPv4/TCP header and up to 64 KB of
//!   payload that the kernel would have cut into `gso_size` segments. utcp
//!   takes it in as one segment (the receive path does not care about
//!   segment sizes), with no split and no copy beyond the one read.
//!
//! Anything else (UDP or IPv6 GSO, a zero `gso_size`, offsets that do not
//! point at the TCP checksum, a super-packet without a partial checksum or
//! whose IPv4 total length disagrees with what was read) is dropped and
//! counted as `bad_vnet_header`. A packet without `NEEDS_CSUM` is verified
//! in full as on a plain device, so a wrong full checksum is still dropped.
//!
//! What we hand back: every packet we write carries a header too
//! ([`VnetHeader::for_tx`]). A finished packet has an all-zero one. A packet
//! with a partial checksum ([`crate::gso`]) has `NEEDS_CSUM` with
//! `csum_start` 20 and `csum_offset` 16, and the kernel sums the TCP header
//! and payload into the field. A super-segment also has `GSO_TCPV4`,
//! `gso_size` = the MSS and `hdr_len` = its IPv4 + TCP header length; the
//! kernel cuts it (or hands it whole to its own receive path, which takes
//! super-packets as they are: GRO in reverse). A super-segment always goes
//! with a partial checksum, as the kernel requires.

use crate::gso::{self, TxOffload};
use crate::wire::{DropReason, IPV4_HEADER_LEN};

/// Length of `struct virtio_net_hdr` (without `num_buffers`; the TUN
/// default, `TUNSETVNETHDRSZ` not used).
pub const VNET_HDR_LEN: usize = 10;

/// `flags`: the transport checksum is partial (see the module docs).
pub const F_NEEDS_CSUM: u8 = 1;
/// `flags`: the checksum was verified (we verify anyway).
pub const F_DATA_VALID: u8 = 2;
/// `gso_type`: not a super-packet.
pub const GSO_NONE: u8 = 0;
/// `gso_type`: an IPv4/TCP super-packet (TSO).
pub const GSO_TCPV4: u8 = 1;
/// `gso_type` bit: the super-packet's segments carry CWR/ECE (ECN).
pub const GSO_ECN: u8 = 0x80;

/// Where the TCP checksum sits in the TCP header.
const TCP_CSUM_OFFSET: u16 = 16;

/// One virtio-net header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHeader {
    /// `F_NEEDS_CSUM`, `F_DATA_VALID`.
    pub flags: u8,
    /// `GSO_NONE`, `GSO_TCPV4` (possibly with `GSO_ECN`), ...
    pub gso_type: u8,
    /// Length of the headers (IP + TCP) of a super-packet; a hint.
    pub hdr_len: u16,
    /// Payload bytes per segment of a super-packet.
    pub gso_size: u16,
    /// Where the partial checksum's sum starts (from the IP header).
    pub csum_start: u16,
    /// Where the checksum goes, from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHeader {
    /// Reads a header from the first [`VNET_HDR_LEN`] bytes of `buf`.
    pub fn parse(buf: &[u8]) -> Result<VnetHeader, DropReason> {
        let b = buf.get(..VNET_HDR_LEN).ok_or(DropReason::Truncated)?;
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Ok(VnetHeader {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// The header as the kernel reads it.
    pub fn to_bytes(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    /// The header for a packet the stack wrote with `offload` (see the
    /// module docs); `None` if the device cannot take it as it is (a
    /// super-segment without a partial checksum, or headers that are not the
    /// stack's own), so it must be finished in software.
    pub fn for_tx(packet: &[u8], offload: TxOffload) -> Option<VnetHeader> {
        match offload.segment_size {
            Some(_) => VnetHeader::for_tx_headers(gso::headers_len(packet)?, offload),
            None => VnetHeader::for_tx_headers(0, offload),
        }
    }

    /// [`for_tx`](Self::for_tx) for a packet whose IPv4 and TCP headers
    /// are `headers_len` bytes long (used only for a super-segment).
    pub fn for_tx_headers(headers_len: usize, offload: TxOffload) -> Option<VnetHeader> {
        let mut h = VnetHeader::default();
        if offload.partial_checksum {
            h.flags = F_NEEDS_CSUM;
            h.csum_start = IPV4_HEADER_LEN as u16;
            h.csum_offset = TCP_CSUM_OFFSET;
        }
        if let Some(size) = offload.segment_size {
            if !offload.partial_checksum || size == 0 {
                return None;
            }
            h.gso_type = GSO_TCPV4;
            h.gso_size = size;
            h.hdr_len = u16::try_from(headers_len).ok()?;
        }
        Some(h)
    }

    /// Checks the header against the IPv4 `packet` it came with (see the
    /// module docs). `Ok(true)`: the TCP checksum is partial and must not be
    /// verified; `Ok(false)`: verify everything.
    pub fn check(&self, packet: &[u8]) -> Result<bool, DropReason> {
        let bad = Err(DropReason::BadVnetHeader);
        let partial = self.flags & F_NEEDS_CSUM != 0;
        if partial {
            // Only TCP over IPv4, with the sum starting at the TCP header
            // and going into the TCP checksum field.
            let ihl = usize::from(packet.first().ok_or(DropReason::Truncated)? & 0x0f) * 4;
            let tcp = packet.get(9) == Some(&6);
            if !tcp || usize::from(self.csum_start) != ihl || self.csum_offset != TCP_CSUM_OFFSET {
                return bad;
            }
        }
        match self.gso_type & !GSO_ECN {
            GSO_NONE => Ok(partial),
            GSO_TCPV4 => {
                let total = packet
                    .get(2..4)
                    .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
                if !partial || self.gso_size == 0 || total != Some(packet.len()) {
                    return bad;
                }
                Ok(true)
            }
            _ => bad,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 20-byte IPv4 header (TCP) + 20-byte TCP header + `payload` bytes,
    /// total length right.
    fn packet(payload: usize) -> Vec<u8> {
        let len = 40 + payload;
        let mut p = vec![0u8; len];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[9] = 6;
        p[32] = 0x50;
        p
    }

    fn partial() -> VnetHeader {
        VnetHeader {
            flags: F_NEEDS_CSUM,
            csum_start: 20,
            csum_offset: 16,
            ..VnetHeader::default()
        }
    }

    fn tso(gso_size: u16) -> VnetHeader {
        VnetHeader {
            gso_type: GSO_TCPV4,
            hdr_len: 40,
            gso_size,
            ..partial()
        }
    }

    /// The headers we hand back are ones our own receive path accepts as
    /// the kernel's, for finished, partial and super-segment packets alike.
    #[test]
    fn transmit_headers_say_what_the_kernel_must_finish() {
        let p = packet(3000);
        assert_eq!(
            VnetHeader::for_tx(&p, TxOffload::NONE),
            Some(VnetHeader::default())
        );
        let csum = TxOffload {
            partial_checksum: true,
            segment_size: None,
        };
        assert_eq!(VnetHeader::for_tx(&p, csum), Some(partial()));
        let gso = TxOffload {
            segment_size: Some(1448),
            ..csum
        };
        let h = VnetHeader::for_tx(&p, gso).unwrap();
        assert_eq!(h, tso(1448));
        assert_eq!(h.check(&p), Ok(true));
        // A super-segment the kernel cannot take: finish it in software.
        let full = TxOffload {
            partial_checksum: false,
            ..gso
        };
        assert_eq!(VnetHeader::for_tx(&p, full), None);
        let zero = TxOffload {
            segment_size: Some(0),
            ..gso
        };
        assert_eq!(VnetHeader::for_tx(&p, zero), None);
        assert_eq!(VnetHeader::for_tx(&p[..50], gso), None);
    }

    #[test]
    fn header_round_trips_through_bytes() {
        let h = VnetHeader {
            flags: F_NEEDS_CSUM | F_DATA_VALID,
            gso_type: GSO_TCPV4 | GSO_ECN,
            hdr_len: 52,
            gso_size: 1448,
            csum_start: 20,
            csum_offset: 16,
        };
        assert_eq!(VnetHeader::parse(&h.to_bytes()), Ok(h));
        assert_eq!(VnetHeader::parse(&[0u8; 9]), Err(DropReason::Truncated));
        assert_eq!(VnetHeader::parse(&[0u8; 10]), Ok(VnetHeader::default()));
    }

    #[test]
    fn plain_and_partial_packets_are_accepted() {
        let p = packet(100);
        assert_eq!(VnetHeader::default().check(&p), Ok(false));
        assert_eq!(partial().check(&p), Ok(true));
        assert_eq!(tso(1448).check(&packet(60_000)), Ok(true));
        let ecn = VnetHeader {
            gso_type: GSO_TCPV4 | GSO_ECN,
            ..tso(1448)
        };
        assert_eq!(ecn.check(&packet(3000)), Ok(true));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let p = packet(3000);
        let bad = Err(DropReason::BadVnetHeader);
        // Offsets that do not point at the TCP checksum.
        for (start, off) in [(0, 16), (24, 16), (20, 6), (20, 0)] {
            let h = VnetHeader {
                csum_start: start,
                csum_offset: off,
                ..partial()
            };
            assert_eq!(h.check(&p), bad, "csum_start {start} csum_offset {off}");
        }
        // A partial checksum on something that is not TCP.
        let mut udp = p.clone();
        udp[9] = 17;
        assert_eq!(partial().check(&udp), bad);
        // GSO without a partial checksum, with a zero gso_size, of another kind.
        let full = VnetHeader {
            flags: 0,
            ..tso(1448)
        };
        assert_eq!(full.check(&p), bad);
        assert_eq!(tso(0).check(&p), bad);
        for kind in [3u8, 4, 5] {
            let h = VnetHeader {
                gso_type: kind,
                ..tso(1448)
            };
            assert_eq!(h.check(&p), bad, "gso_type {kind}");
        }
        // A super-packet longer (or shorter) than its IPv4 header says.
        let mut longer = p.clone();
        longer.extend_from_slice(&[0u8; 100]);
        assert_eq!(tso(1448).check(&longer), bad);
        assert_eq!(tso(1448).check(&p[..p.len() - 1]), bad);
        // Nothing at all.
        assert_eq!(partial().check(&[]), Err(DropReason::Truncated));
    }
}
