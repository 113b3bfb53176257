//! Wire codec: raw IPv4 packets in, typed segments out, and back.
//!
//! INTERFACE STUB — to be implemented (see the doc comments for the contract).

use crate::seq::SeqNum;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Length of an IPv4 header without options (we never emit IP options).
pub const IPV4_HEADER_LEN: usize = 20;
/// Length of a TCP header without options.
pub const TCP_HEADER_LEN: usize = 20;

/// The TCP control bits we use.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);

    /// True when every bit of `other` is set in `self`.
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = [
            (TcpFlags::SYN, "SYN"),
            (TcpFlags::FIN, "FIN"),
            (TcpFlags::RST, "RST"),
            (TcpFlags::PSH, "PSH"),
            (TcpFlags::ACK, "ACK"),
            (TcpFlags::URG, "URG"),
        ];
        let mut first = true;
        for (flag, name) in names {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

impl std::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

/// TCP options we understand. Unknown options are skipped when parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2), only meaningful on SYN segments.
    pub mss: Option<u16>,
    /// Window scale shift count (kind 3), only meaningful on SYN segments.
    pub window_scale: Option<u8>,
    /// SACK permitted (kind 4).
    pub sack_permitted: bool,
    /// Timestamps (kind 8): (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
}

/// A parsed and validated TCP segment, borrowing its payload from the packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// Sender's address and port.
    pub src: SocketAddrV4,
    /// Receiver's address and port.
    pub dst: SocketAddrV4,
    /// Sequence number of the first octet (or of the SYN).
    pub seq: SeqNum,
    /// Acknowledgment number (meaningful only with ACK set).
    pub ack: SeqNum,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window field as on the wire (not yet scaled).
    pub window: u16,
    /// Parsed options.
    pub options: TcpOptions,
    /// The data.
    pub payload: &'a [u8],
}

/// Why a packet was dropped by [`parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than its headers claim.
    Truncated,
}

/// What a raw IPv4 packet turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A TCP segment.
    Tcp(TcpSegment<'a>),
    /// An ICMP echo request.
    IcmpEchoRequest {
        /// Who pinged.
        src: Ipv4Addr,
        /// Whom they pinged.
        dst: Ipv4Addr,
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq: u16,
        /// Echo data.
        payload: &'a [u8],
    },
}

/// Parses and validates one raw IPv4 packet.
pub fn parse(_packet: &[u8]) -> Result<Packet<'_>, DropReason> {
    Err(DropReason::Truncated)
}

/// Everything needed to build a TCP segment's headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpRepr {
    /// Our address and port.
    pub src: SocketAddrV4,
    /// Peer's address and port.
    pub dst: SocketAddrV4,
    /// Sequence number.
    pub seq: SeqNum,
    /// Acknowledgment number (written only if ACK is in `flags`; else zero).
    pub ack: SeqNum,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window field, already scaled down.
    pub window: u16,
    /// Options to emit.
    pub options: TcpOptions,
}

/// Writes an IPv4+TCP packet into `buf`; `fill` writes the payload.
pub fn emit_tcp(
    _buf: &mut [u8],
    _repr: &TcpRepr,
    _payload_len: usize,
    _fill: impl FnOnce(&mut [u8]),
) -> Option<usize> {
    None
}

/// Writes an ICMP echo reply into `buf`.
pub fn emit_icmp_echo_reply(
    _buf: &mut [u8],
    _src: Ipv4Addr,
    _dst: Ipv4Addr,
    _ident: u16,
    _seq: u16,
    _payload: &[u8],
) -> Option<usize> {
    None
}
