//! Wire codec: raw IPv4 packets in, typed segments out, and back.
//!
//! [`parse`] takes one raw IPv4 packet (as read from a TUN device opened with
//! `IFF_NO_PI`), validates it completely (lengths, checksums, options,
//! addresses) and returns either a [`Packet`] borrowing from the input or the
//! [`DropReason`] it was rejected for. It never panics, whatever the input.
//!
//! [`emit_tcp`] and [`emit_icmp_echo_reply`] build complete IPv4 packets into
//! a caller-supplied buffer, returning `None` (rather than panicking) when the
//! buffer is too small.
//!
//! The byte handling is written by hand: the formats are small and fixed, and
//! doing it directly keeps every length check visible in one place.

use crate::seq::SeqNum;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Length of an IPv4 header without options (we never emit IP options).
pub const IPV4_HEADER_LEN: usize = 20;
/// Length of a TCP header without options.
pub const TCP_HEADER_LEN: usize = 20;

/// Length of an ICMP echo header (type, code, checksum, identifier, sequence).
const ICMP_ECHO_HEADER_LEN: usize = 8;
/// Largest possible IPv4 packet (the total length field is 16 bits).
const IPV4_MAX_LEN: usize = 0xffff;
/// Time to live of every packet we emit.
const DEFAULT_TTL: u8 = 64;
/// IPv4 protocol number of ICMP.
const PROTO_ICMP: u8 = 1;
/// IPv4 protocol number of TCP.
const PROTO_TCP: u8 = 6;
/// IPv4 "don't fragment" flag (in the flags/fragment-offset word).
const IP_FLAG_DF: u16 = 0x4000;
/// IPv4 "more fragments" flag (in the flags/fragment-offset word).
const IP_FLAG_MF: u16 = 0x2000;
/// Mask of the fragment offset in the flags/fragment-offset word.
const IP_FRAG_OFFSET_MASK: u16 = 0x1fff;
/// ICMP type of an echo reply.
const ICMP_ECHO_REPLY: u8 = 0;
/// ICMP type of an echo request.
const ICMP_ECHO_REQUEST: u8 = 8;
/// Largest window scale shift allowed by RFC 7323 section 2.3.
const MAX_WINDOW_SCALE: u8 = 14;

/// TCP option kinds.
const OPT_EOL: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;
const OPT_WSCALE: u8 = 3;
const OPT_SACK_PERMITTED: u8 = 4;
const OPT_SACK: u8 = 5;
const OPT_TIMESTAMP: u8 = 8;

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

    /// The bits above, as a mask; [`parse`] drops the others (ECE, CWR),
    /// since this stack does not negotiate ECN (RFC 3168 section 6.1.1).
    const KNOWN: u8 = 0x3f;

    /// True when every bit of `other` is set in `self`.
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with every bit of `other` cleared, e.g.
    /// `(TcpFlags::SYN | TcpFlags::ACK).without(TcpFlags::SYN)` is `ACK`.
    /// Usable in constants.
    pub const fn without(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & !other.0)
    }

    /// Sets every bit of `other` in `self`.
    pub const fn insert(&mut self, other: TcpFlags) {
        self.0 |= other.0;
    }

    /// Clears every bit of `other` in `self`.
    pub const fn remove(&mut self, other: TcpFlags) {
        self.0 &= !other.0;
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
    ///
    /// [`parse`] clamps received values above 14 to 14, as RFC 7323
    /// section 2.3 requires.
    pub window_scale: Option<u8>,
    /// SACK permitted (kind 4).
    pub sack_permitted: bool,
    /// Timestamps (kind 8): (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
    /// SACK blocks (kind 5, RFC 2018).
    pub sack: SackBlocks,
}

/// Up to four SACK blocks, each a half-open range `[left, right)` of
/// sequence numbers the receiver holds beyond its cumulative ACK (RFC 2018).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SackBlocks {
    blocks: [(SeqNum, SeqNum); 4],
    len: u8,
}

impl SackBlocks {
    /// The most blocks one option can carry (without timestamps).
    pub const MAX: usize = 4;

    /// Appends a block; returns false (and ignores it) when full.
    pub fn push(&mut self, left: SeqNum, right: SeqNum) -> bool {
        match self.blocks.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = (left, right);
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// The blocks, in the order they were sent.
    pub fn as_slice(&self) -> &[(SeqNum, SeqNum)] {
        &self.blocks[..usize::from(self.len).min(Self::MAX)]
    }

    /// True when there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps only the first `n` blocks.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n.min(Self::MAX) as u8);
    }
}

/// A TCP segment, borrowing its payload: what [`parse`] returns and what
/// [`emit_tcp`] writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// Sender's address and port.
    pub src: SocketAddrV4,
    /// Receiver's address and port.
    pub dst: SocketAddrV4,
    /// Sequence number of the first octet (or of the SYN).
    pub seq: SeqNum,
    /// Acknowledgment number (meaningful only with ACK set; [`emit_tcp`]
    /// writes zero without it).
    pub ack: SeqNum,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window field as on the wire (not scaled).
    pub window: u16,
    /// Options: those parsed, or those to emit.
    pub options: TcpOptions,
    /// The data (for [`emit_tcp`], its first part).
    pub payload: &'a [u8],
}

impl TcpSegment<'_> {
    /// Length of the IPv4 + TCP headers (options included) [`emit_tcp`]
    /// writes for this segment: everything before the payload.
    pub fn header_len(&self) -> usize {
        IPV4_HEADER_LEN + tcp_header_len(&self.options)
    }

    /// The sequence space the segment occupies (RFC 9293 SEG.LEN): the
    /// payload length, plus one for SYN, plus one for FIN.
    pub fn seg_len(&self) -> u32 {
        // A payload never exceeds 65535 bytes, so this cannot overflow.
        let mut len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        if self.flags.contains(TcpFlags::SYN) {
            len = len.saturating_add(1);
        }
        if self.flags.contains(TcpFlags::FIN) {
            len = len.saturating_add(1);
        }
        len
    }
}

/// Why a packet was dropped by [`parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than its headers claim: less than 20 bytes, less than the IP
    /// header length, or less than the IP total length.
    Truncated,
    /// IP version is not 4.
    NotIpv4,
    /// IPv4 header is malformed: IHL below 5, or total length below the
    /// header length.
    BadIpHeader,
    /// IPv4 header checksum is wrong.
    BadIpChecksum,
    /// A fragment (MF set or non-zero fragment offset); we do not reassemble.
    Fragment,
    /// IP protocol is neither TCP nor ICMP.
    UnsupportedProtocol,
    /// Source or destination address is broadcast, multicast or unspecified.
    BadAddress,
    /// TCP header is malformed: shorter than 20 bytes, or a data offset below
    /// 5 or beyond the end of the segment.
    BadTcpHeader,
    /// TCP checksum is wrong.
    BadTcpChecksum,
    /// TCP option list is malformed (bad length byte, runs past the end of
    /// the header, or a known option with the wrong length).
    BadTcpOptions,
    /// TCP source or destination port is 0.
    BadPort,
    /// ICMP message is shorter than its 8-byte header.
    BadIcmp,
    /// ICMP checksum is wrong.
    BadIcmpChecksum,
    /// ICMP message is valid but not an echo request (type 8 code 0).
    IcmpNotEchoRequest,
    /// The virtio-net header of an offload device is malformed or does not
    /// match its packet (see `device::vnet`).
    BadVnetHeader,
}

impl DropReason {
    /// Every variant, e.g. for registering counters.
    pub const ALL: [DropReason; 15] = [
        DropReason::Truncated,
        DropReason::NotIpv4,
        DropReason::BadIpHeader,
        DropReason::BadIpChecksum,
        DropReason::Fragment,
        DropReason::UnsupportedProtocol,
        DropReason::BadAddress,
        DropReason::BadTcpHeader,
        DropReason::BadTcpChecksum,
        DropReason::BadTcpOptions,
        DropReason::BadPort,
        DropReason::BadIcmp,
        DropReason::BadIcmpChecksum,
        DropReason::IcmpNotEchoRequest,
        DropReason::BadVnetHeader,
    ];

    /// A short snake_case label, for counters and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::NotIpv4 => "not_ipv4",
            DropReason::BadIpHeader => "bad_ip_header",
            DropReason::BadIpChecksum => "bad_ip_checksum",
            DropReason::Fragment => "fragment",
            DropReason::UnsupportedProtocol => "unsupported_protocol",
            DropReason::BadAddress => "bad_address",
            DropReason::BadTcpHeader => "bad_tcp_header",
            DropReason::BadTcpChecksum => "bad_tcp_checksum",
            DropReason::BadTcpOptions => "bad_tcp_options",
            DropReason::BadPort => "bad_port",
            DropReason::BadIcmp => "bad_icmp",
            DropReason::BadIcmpChecksum => "bad_icmp_checksum",
            DropReason::IcmpNotEchoRequest => "icmp_not_echo_request",
            DropReason::BadVnetHeader => "bad_vnet_header",
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

// ---------------------------------------------------------------------------
// Checksums and byte helpers
// ---------------------------------------------------------------------------

/// Bytes summed per block by [`sum_words`] before the block's sum is folded
/// into the running sum. Even, so only the last block can have an odd byte.
const SUM_BLOCK: usize = 1 << 16;

/// Adds `data` to a running Internet checksum sum (RFC 1071): `acc` plus the
/// one's-complement sum of `data` as big-endian 16-bit words, an odd trailing
/// byte padded with a zero. Any length and alignment.
///
/// Only `fold(acc)` of the result is meaningful, and it is exactly what a
/// 16-bit-at-a-time loop gives; the wide loop just gets there faster
/// (RFC 1071 section 2):
/// - (C) parallel summation: a 32-bit word `hi * 2^16 + lo` is congruent to
///   `hi + lo` modulo `2^16 - 1`, so summing 32-bit halves of 64-bit words
///   into a `u64` and folding the carries back at the end gives the same
///   16-bit one's-complement sum;
/// - (B) byte order independence: summing the words little-endian (plain
///   loads, which the compiler vectorises) gives the byte-swapped sum, so the
///   folded block sum is swapped back once.
///
/// A block's sum is zero only when all its bytes are, and otherwise folds to
/// a non-zero value; so the "two zeros" of one's complement (0x0000, 0xffff)
/// come out as they do with the 16-bit loop. Each block of [`SUM_BLOCK`]
/// bytes adds at most `0xffff` to `acc`, and the block's own sum stays below
/// `2^46`, so nothing can overflow.
fn sum_words(mut acc: u64, data: &[u8]) -> u64 {
    for block in data.chunks(SUM_BLOCK) {
        acc += u64::from(fold(sum_block_le(block)).swap_bytes());
    }
    acc
}

/// The sum of `block` (at most [`SUM_BLOCK`] bytes) as little-endian 32-bit
/// words, then a 16-bit word and a last byte for the tail; not yet folded.
fn sum_block_le(block: &[u8]) -> u64 {
    let mut sum = 0u64;
    let mut words = block.chunks_exact(8);
    for word in &mut words {
        if let [a, b, c, d, e, f, g, h] = word {
            sum += u64::from(u32::from_le_bytes([*a, *b, *c, *d]));
            sum += u64::from(u32::from_le_bytes([*e, *f, *g, *h]));
        }
    }
    let mut rest = words.remainder();
    if let [a, b, c, d, tail @ ..] = rest {
        sum += u64::from(u32::from_le_bytes([*a, *b, *c, *d]));
        rest = tail;
    }
    if let [a, b, tail @ ..] = rest {
        sum += u64::from(u16::from_le_bytes([*a, *b]));
        rest = tail;
    }
    // An odd last byte is the high byte of a big-endian word padded with a
    // zero, i.e. the low byte of the little-endian one.
    if let [last] = rest {
        sum += u64::from(*last);
    }
    sum
}

/// The Internet checksum of `data` (RFC 1071): the one's complement of the
/// one's-complement sum of its big-endian 16-bit words, an odd trailing byte
/// padded with a zero. Writing it into a zeroed checksum field makes the
/// whole sum to all-ones. Any length and alignment; never panics.
pub fn internet_checksum(data: &[u8]) -> u16 {
    !fold(sum_words(0, data))
}

/// Folds a running sum into 16 bits with end-around carry.
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // The loop leaves `acc <= 0xffff`.
    acc as u16
}

/// The sum of the TCP/UDP pseudo-header for IPv4 (RFC 9293 section 3.1).
fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u64 {
    let mut acc = sum_words(0, &src.octets());
    acc = sum_words(acc, &dst.octets());
    acc += u64::from(protocol);
    acc + u64::from(len)
}

/// Writes the full TCP checksum of the IPv4/TCP `packet` into its field
/// (whatever the field held, e.g. an offload device's partial sum), so the
/// packet verifies like any other. None if it is not a well-formed enough
/// IPv4/TCP packet to find the field.
pub fn complete_tcp_checksum(packet: &mut [u8]) -> Option<()> {
    let ihl = usize::from(*packet.first()? & 0x0f) * 4;
    let total = usize::from(be16(packet, 2)?);
    if *packet.get(9)? != PROTO_TCP || ihl < IPV4_HEADER_LEN || total < ihl + TCP_HEADER_LEN {
        return None;
    }
    let src = addr_at(packet, 12)?;
    let dst = addr_at(packet, 16)?;
    let seg = packet.get_mut(ihl..total)?;
    seg[16] = 0;
    seg[17] = 0;
    let len = u16::try_from(seg.len()).ok()?;
    let sum = !fold(sum_words(pseudo_header_sum(src, dst, PROTO_TCP, len), seg));
    seg[16..18].copy_from_slice(&sum.to_be_bytes());
    Some(())
}

/// True when `data` (which includes its checksum field) sums to all-ones.
fn checksum_ok(acc: u64) -> bool {
    fold(acc) == 0xffff
}

/// The big-endian `u16` at `at`, if the slice is long enough.
fn be16(data: &[u8], at: usize) -> Option<u16> {
    match data.get(at..at.checked_add(2)?)? {
        [a, b] => Some(u16::from_be_bytes([*a, *b])),
        _ => None,
    }
}

/// The big-endian `u32` at `at`, if the slice is long enough.
fn be32(data: &[u8], at: usize) -> Option<u32> {
    match data.get(at..at.checked_add(4)?)? {
        [a, b, c, d] => Some(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// The IPv4 address at `at`, if the slice is long enough.
fn addr_at(data: &[u8], at: usize) -> Option<Ipv4Addr> {
    be32(data, at).map(Ipv4Addr::from)
}

/// True for addresses no unicast conversation may use as source or
/// destination: limited broadcast, multicast (224.0.0.0/4) and 0.0.0.0.
fn is_non_unicast(addr: Ipv4Addr) -> bool {
    addr.is_broadcast() || addr.is_multicast() || addr.is_unspecified()
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Parses and validates one raw IPv4 packet.
///
/// The packet must start with the IPv4 header (TUN with `IFF_NO_PI`). Bytes
/// beyond the IPv4 total length are ignored. IP options are accepted and
/// skipped. Fragments are dropped. TCP segments and ICMP echo requests are
/// returned; everything else is dropped with a [`DropReason`].
///
/// Both TCP and ICMP packets whose source or destination is broadcast,
/// multicast or 0.0.0.0 are dropped with [`DropReason::BadAddress`] (RFC 9293
/// MUST-57 for TCP; for ICMP so that we never answer a broadcast ping).
/// Directed (subnet) broadcasts cannot be recognised here.
///
/// Never panics.
pub fn parse(packet: &[u8]) -> Result<Packet<'_>, DropReason> {
    parse_with(packet, false)
}

/// [`parse`], except that with `tcp_csum_partial` the TCP checksum is not
/// verified: an offload device said the kernel left it partial (it made
/// the packet in memory; see `device::vnet`). Everything else is checked.
pub fn parse_with(packet: &[u8], tcp_csum_partial: bool) -> Result<Packet<'_>, DropReason> {
    let first = *packet.first().ok_or(DropReason::Truncated)?;
    if first >> 4 != 4 {
        return Err(DropReason::NotIpv4);
    }
    if packet.len() < IPV4_HEADER_LEN {
        return Err(DropReason::Truncated);
    }
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < IPV4_HEADER_LEN {
        return Err(DropReason::BadIpHeader);
    }
    if packet.len() < header_len {
        return Err(DropReason::Truncated);
    }
    let total_len = usize::from(be16(packet, 2).ok_or(DropReason::Truncated)?);
    if total_len < header_len {
        return Err(DropReason::BadIpHeader);
    }
    // Ignore any trailing bytes (e.g. link-layer padding) beyond total_len.
    let packet = packet.get(..total_len).ok_or(DropReason::Truncated)?;
    let header = packet.get(..header_len).ok_or(DropReason::Truncated)?;
    if !checksum_ok(sum_words(0, header)) {
        return Err(DropReason::BadIpChecksum);
    }
    let frag = be16(header, 6).ok_or(DropReason::Truncated)?;
    if frag & IP_FLAG_MF != 0 || frag & IP_FRAG_OFFSET_MASK != 0 {
        return Err(DropReason::Fragment);
    }
    let protocol = *header.get(9).ok_or(DropReason::Truncated)?;
    let src = addr_at(header, 12).ok_or(DropReason::Truncated)?;
    let dst = addr_at(header, 16).ok_or(DropReason::Truncated)?;
    let body = packet.get(header_len..).ok_or(DropReason::Truncated)?;
    match protocol {
        PROTO_TCP => parse_tcp(src, dst, body, !tcp_csum_partial).map(Packet::Tcp),
        PROTO_ICMP => parse_icmp(src, dst, body),
        _ => Err(DropReason::UnsupportedProtocol),
    }
}

/// Validates the TCP segment `seg` (everything after the IPv4 header, up to
/// the IPv4 total length).
fn parse_tcp(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    seg: &[u8],
    verify: bool,
) -> Result<TcpSegment<'_>, DropReason> {
    if is_non_unicast(src) || is_non_unicast(dst) {
        return Err(DropReason::BadAddress);
    }
    if seg.len() < TCP_HEADER_LEN {
        return Err(DropReason::BadTcpHeader);
    }
    let offset_byte = *seg.get(12).ok_or(DropReason::BadTcpHeader)?;
    let header_len = usize::from(offset_byte >> 4) * 4;
    if header_len < TCP_HEADER_LEN || header_len > seg.len() {
        return Err(DropReason::BadTcpHeader);
    }
    // The segment fits in an IPv4 packet, so its length fits in 16 bits.
    let seg_len = u16::try_from(seg.len()).map_err(|_| DropReason::BadTcpHeader)?;
    if verify
        && !checksum_ok(sum_words(
            pseudo_header_sum(src, dst, PROTO_TCP, seg_len),
            seg,
        ))
    {
        return Err(DropReason::BadTcpChecksum);
    }
    let field16 = |at| be16(seg, at).ok_or(DropReason::BadTcpHeader);
    let field32 = |at| be32(seg, at).ok_or(DropReason::BadTcpHeader);
    let src_port = field16(0)?;
    let dst_port = field16(2)?;
    if src_port == 0 || dst_port == 0 {
        return Err(DropReason::BadPort);
    }
    let seq = field32(4)?;
    let ack = field32(8)?;
    let flags = *seg.get(13).ok_or(DropReason::BadTcpHeader)?;
    let window = field16(14)?;
    let options = seg
        .get(TCP_HEADER_LEN..header_len)
        .ok_or(DropReason::BadTcpHeader)?;
    let options = parse_options(options)?;
    let payload = seg.get(header_len..).ok_or(DropReason::BadTcpHeader)?;
    Ok(TcpSegment {
        src: SocketAddrV4::new(src, src_port),
        dst: SocketAddrV4::new(dst, dst_port),
        seq: SeqNum(seq),
        ack: SeqNum(ack),
        flags: TcpFlags(flags & TcpFlags::KNOWN),
        window,
        options,
        payload,
    })
}

/// Parses a TCP option list (the bytes between the fixed header and the
/// data). Later occurrences of an option override earlier ones.
fn parse_options(mut opts: &[u8]) -> Result<TcpOptions, DropReason> {
    let mut out = TcpOptions::default();
    loop {
        match opts {
            [] | [OPT_EOL, ..] => return Ok(out),
            [OPT_NOP, rest @ ..] => opts = rest,
            [kind, len, ..] => {
                let len = usize::from(*len);
                if len < 2 {
                    return Err(DropReason::BadTcpOptions);
                }
                let option = opts.get(..len).ok_or(DropReason::BadTcpOptions)?;
                let rest = opts.get(len..).ok_or(DropReason::BadTcpOptions)?;
                match (*kind, option) {
                    (OPT_MSS, [_, _, hi, lo]) => out.mss = Some(u16::from_be_bytes([*hi, *lo])),
                    (OPT_WSCALE, [_, _, shift]) => {
                        out.window_scale = Some((*shift).min(MAX_WINDOW_SCALE))
                    }
                    (OPT_SACK_PERMITTED, [_, _]) => out.sack_permitted = true,
                    (OPT_SACK, [_, _, blocks @ ..])
                        if !blocks.is_empty() && blocks.len() % 8 == 0 =>
                    {
                        out.sack = SackBlocks::default();
                        for b in blocks.chunks_exact(8) {
                            let left = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                            let right = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                            out.sack.push(SeqNum(left), SeqNum(right));
                        }
                    }
                    (OPT_TIMESTAMP, [_, _, v0, v1, v2, v3, e0, e1, e2, e3]) => {
                        out.timestamp = Some((
                            u32::from_be_bytes([*v0, *v1, *v2, *v3]),
                            u32::from_be_bytes([*e0, *e1, *e2, *e3]),
                        ))
                    }
                    // A known option with the wrong length.
                    (OPT_MSS | OPT_WSCALE | OPT_SACK_PERMITTED | OPT_SACK | OPT_TIMESTAMP, _) => {
                        return Err(DropReason::BadTcpOptions)
                    }
                    // Unknown: skip.
                    _ => {}
                }
                opts = rest;
            }
            // A kind byte with no room for its length byte.
            [_] => return Err(DropReason::BadTcpOptions),
        }
    }
}

/// Validates the ICMP message `msg` (everything after the IPv4 header, up to
/// the IPv4 total length); accepts only echo requests.
fn parse_icmp(src: Ipv4Addr, dst: Ipv4Addr, msg: &[u8]) -> Result<Packet<'_>, DropReason> {
    if is_non_unicast(src) || is_non_unicast(dst) {
        return Err(DropReason::BadAddress);
    }
    if msg.len() < ICMP_ECHO_HEADER_LEN {
        return Err(DropReason::BadIcmp);
    }
    if !checksum_ok(sum_words(0, msg)) {
        return Err(DropReason::BadIcmpChecksum);
    }
    match msg {
        [ICMP_ECHO_REQUEST, 0, _, _, i0, i1, s0, s1, payload @ ..] => Ok(Packet::IcmpEchoRequest {
            src,
            dst,
            ident: u16::from_be_bytes([*i0, *i1]),
            seq: u16::from_be_bytes([*s0, *s1]),
            payload,
        }),
        _ => Err(DropReason::IcmpNotEchoRequest),
    }
}

// ---------------------------------------------------------------------------
// Emitting
// ---------------------------------------------------------------------------

/// Largest TCP option area (the data offset field allows 60-byte headers).
const MAX_OPTIONS_LEN: usize = 40;

/// Writes the option area for `options` into `out`, returning its length
/// (always a multiple of 4).
///
/// Layout (Linux's order), each element present only when the option is:
/// MSS (4 bytes), then either SACK-permitted + timestamps combined (12), NOP
/// NOP + SACK-permitted (4), or NOP NOP + timestamps (12), then NOP + window
/// scale (4); SACK blocks last (NOP NOP + 2 + 8 per block). At most 40 bytes.
fn write_options(options: &TcpOptions, out: &mut [u8; MAX_OPTIONS_LEN]) -> usize {
    let mut len = 0;
    // Appends `bytes`; the layout below never exceeds 20 bytes, so the
    // bounds check can only fail if that invariant is broken.
    let mut push = |bytes: &[u8]| {
        if let Some(dst) = out.get_mut(len..len + bytes.len()) {
            dst.copy_from_slice(bytes);
            len += bytes.len();
        }
    };
    if let Some(mss) = options.mss {
        let [hi, lo] = mss.to_be_bytes();
        push(&[OPT_MSS, 4, hi, lo]);
    }
    // The order Linux uses, so byte-exact tools (packetdrill) see the same
    // SYNs: MSS, SACK-permitted + timestamps, window scale.
    match (options.sack_permitted, options.timestamp) {
        (true, Some(_)) => push(&[OPT_SACK_PERMITTED, 2]),
        (true, None) => push(&[OPT_NOP, OPT_NOP, OPT_SACK_PERMITTED, 2]),
        (false, Some(_)) => push(&[OPT_NOP, OPT_NOP]),
        (false, None) => {}
    }
    if let Some((tsval, tsecr)) = options.timestamp {
        push(&[OPT_TIMESTAMP, 10]);
        push(&tsval.to_be_bytes());
        push(&tsecr.to_be_bytes());
    }
    if let Some(shift) = options.window_scale {
        push(&[OPT_NOP, OPT_WSCALE, 3, shift]);
    }
    if !options.sack.is_empty() {
        // With timestamps (12 bytes) only three blocks fit in 40 bytes.
        let room = if options.timestamp.is_some() { 3 } else { 4 };
        let blocks = &options.sack.as_slice()[..options.sack.as_slice().len().min(room)];
        push(&[OPT_NOP, OPT_NOP, OPT_SACK, (2 + 8 * blocks.len()) as u8]);
        for (left, right) in blocks {
            push(&left.0.to_be_bytes());
            push(&right.0.to_be_bytes());
        }
    }
    // The layout above is already aligned; pad defensively all the same.
    while len % 4 != 0 {
        match out.get_mut(len) {
            Some(byte) => *byte = OPT_EOL,
            None => break,
        }
        len += 1;
    }
    len
}

/// Length of the TCP header (20 + padded options) that [`emit_tcp`] writes
/// for `options`.
pub fn tcp_header_len(options: &TcpOptions) -> usize {
    TCP_HEADER_LEN + write_options(options, &mut [0; MAX_OPTIONS_LEN])
}

/// Builds a 20-byte IPv4 header (no options, identification 0, TTL 64).
fn ipv4_header(
    total_len: u16,
    dont_fragment: bool,
    protocol: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> [u8; IPV4_HEADER_LEN] {
    let mut h = [0u8; IPV4_HEADER_LEN];
    h[0] = 0x45; // version 4, IHL 5
    h[1] = 0; // DSCP/ECN
    h[2..4].copy_from_slice(&total_len.to_be_bytes());
    // Identification 0 (RFC 6864 allows it for atomic datagrams).
    let frag = if dont_fragment { IP_FLAG_DF } else { 0 };
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = DEFAULT_TTL;
    h[9] = protocol;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let checksum = !fold(sum_words(0, &h));
    h[10..12].copy_from_slice(&checksum.to_be_bytes());
    h
}

/// Writes `seg` as an IPv4+TCP packet into `buf`, its payload being
/// `seg.payload` followed by `more`.
///
/// The packet is IPv4 (no options, DF set, TTL 64) + TCP with the options of
/// `seg.options` (see [`tcp_header_len`]). Taking the payload in two parts
/// lets a ring buffer's two halves go out without first copying them
/// together; most callers pass an empty `more`. Returns the total packet
/// length, or `None` (without writing to `buf`) if `buf` is too small or the
/// packet would exceed 65535 bytes.
pub fn emit_tcp(buf: &mut [u8], seg: &TcpSegment<'_>, more: &[u8]) -> Option<usize> {
    emit_tcp_with(buf, seg, more, false)
}

/// [`emit_tcp`], but with `partial_checksum` the TCP checksum field holds
/// only the pseudo-header sum over the whole TCP length (not complemented),
/// which is what a device that offloads the checksum completes (Linux's
/// `CHECKSUM_PARTIAL`, virtio's `NEEDS_CSUM`; see [`crate::gso`]). The
/// payload is then not summed at all.
pub fn emit_tcp_with(
    buf: &mut [u8],
    seg: &TcpSegment<'_>,
    more: &[u8],
    partial_checksum: bool,
) -> Option<usize> {
    emit_tcp_inner(buf, seg, more, 0, partial_checksum)
}

/// The IPv4 and TCP headers of a segment whose `payload_len` bytes of
/// payload the caller sends from elsewhere (a vectored write straight from
/// the send buffer): lengths count the payload, the checksum is partial
/// (as [`emit_tcp_with`] with `partial_checksum`), so the payload is never
/// read. `seg.payload` must be empty. Returns the headers' length (what
/// was written to `buf`), or `None` as [`emit_tcp`].
pub fn emit_tcp_headers(buf: &mut [u8], seg: &TcpSegment<'_>, payload_len: usize) -> Option<usize> {
    if !seg.payload.is_empty() {
        return None;
    }
    emit_tcp_inner(buf, seg, &[], payload_len, true)
}

/// [`emit_tcp_with`], with `absent` more bytes of payload counted in the
/// lengths but not written (only with a partial checksum, which does not
/// cover them). Returns how many bytes were written.
fn emit_tcp_inner(
    buf: &mut [u8],
    seg: &TcpSegment<'_>,
    more: &[u8],
    absent: usize,
    partial_checksum: bool,
) -> Option<usize> {
    if absent > 0 && !partial_checksum {
        return None;
    }
    let mut options = [0u8; MAX_OPTIONS_LEN];
    let options_len = write_options(&seg.options, &mut options);
    let options = options.get(..options_len)?;
    let tcp_header_len = TCP_HEADER_LEN + options_len;
    let payload_len = seg
        .payload
        .len()
        .checked_add(more.len())?
        .checked_add(absent)?;
    let tcp_len = tcp_header_len.checked_add(payload_len)?;
    let total_len = IPV4_HEADER_LEN.checked_add(tcp_len)?;
    if total_len > IPV4_MAX_LEN {
        return None;
    }
    // Both fit in 16 bits now (tcp_len < total_len).
    let total_len16 = u16::try_from(total_len).ok()?;
    let tcp_len16 = u16::try_from(tcp_len).ok()?;
    let written = total_len - absent;
    // The last check: from here on `buf` is written and nothing fails.
    let out = buf.get_mut(..written)?;
    let (ip, tcp) = out.split_at_mut(IPV4_HEADER_LEN);
    let (src, dst) = (*seg.src.ip(), *seg.dst.ip());

    ip.copy_from_slice(&ipv4_header(total_len16, true, PROTO_TCP, src, dst));

    let ack = if seg.flags.contains(TcpFlags::ACK) {
        seg.ack.0
    } else {
        0
    };
    let mut fixed = [0u8; TCP_HEADER_LEN];
    fixed[0..2].copy_from_slice(&seg.src.port().to_be_bytes());
    fixed[2..4].copy_from_slice(&seg.dst.port().to_be_bytes());
    fixed[4..8].copy_from_slice(&seg.seq.0.to_be_bytes());
    fixed[8..12].copy_from_slice(&ack.to_be_bytes());
    // Data offset in 32-bit words; at most 15 since options_len <= 40.
    fixed[12] = ((tcp_header_len / 4) as u8) << 4;
    fixed[13] = seg.flags.0;
    fixed[14..16].copy_from_slice(&seg.window.to_be_bytes());
    // Checksum (16..18) is filled in below; urgent pointer (18..20) is 0.
    let (header_fixed, rest) = tcp.split_at_mut(TCP_HEADER_LEN);
    let (header_options, payload) = rest.split_at_mut(options_len);
    let (first, second) = payload.split_at_mut(seg.payload.len());
    header_fixed.copy_from_slice(&fixed);
    header_options.copy_from_slice(options);
    first.copy_from_slice(seg.payload);
    second.copy_from_slice(more);

    let acc = pseudo_header_sum(src, dst, PROTO_TCP, tcp_len16);
    let checksum = if partial_checksum {
        fold(acc)
    } else {
        // Summed as written, in one pass: `seg.payload` may have an odd length.
        !fold(sum_words(acc, tcp))
    };
    if let Some(field) = tcp.get_mut(16..18) {
        field.copy_from_slice(&checksum.to_be_bytes());
    }
    Some(written)
}

/// Writes an ICMP echo reply into `buf`.
///
/// IPv4 (no options, DF set, TTL 64, protocol 1) + ICMP type 0 code 0 with
/// `ident`, `seq` and `payload`. Returns the total packet length, or `None`
/// if `buf` is too small or the packet would exceed 65535 bytes.
pub fn emit_icmp_echo_reply(
    buf: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    seq: u16,
    payload: &[u8],
) -> Option<usize> {
    let icmp_len = ICMP_ECHO_HEADER_LEN.checked_add(payload.len())?;
    let total_len = IPV4_HEADER_LEN.checked_add(icmp_len)?;
    if total_len > IPV4_MAX_LEN {
        return None;
    }
    let out = buf.get_mut(..total_len)?;
    let (ip, icmp) = out.split_at_mut(IPV4_HEADER_LEN);
    ip.copy_from_slice(&ipv4_header(
        u16::try_from(total_len).ok()?,
        true,
        PROTO_ICMP,
        src,
        dst,
    ));
    let (header, data) = icmp.split_at_mut(ICMP_ECHO_HEADER_LEN);
    let mut fixed = [0u8; ICMP_ECHO_HEADER_LEN];
    fixed[0] = ICMP_ECHO_REPLY;
    fixed[1] = 0;
    fixed[4..6].copy_from_slice(&ident.to_be_bytes());
    fixed[6..8].copy_from_slice(&seq.to_be_bytes());
    header.copy_from_slice(&fixed);
    data.copy_from_slice(payload);
    let checksum = !fold(sum_words(0, icmp));
    icmp.get_mut(2..4)?.copy_from_slice(&checksum.to_be_bytes());
    Some(total_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// A segment from A:40000 to B:80 with no payload.
    fn segment(flags: TcpFlags, options: TcpOptions) -> TcpSegment<'static> {
        TcpSegment {
            src: SocketAddrV4::new(A, 40000),
            dst: SocketAddrV4::new(B, 80),
            seq: SeqNum(0x0102_0304),
            ack: SeqNum(0xa0b0_c0d0),
            flags,
            window: 0xfaf0,
            options,
            payload: &[],
        }
    }

    fn all_options() -> TcpOptions {
        TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamp: Some((0xdead_beef, 0x0bad_f00d)),
            sack: Default::default(),
        }
    }

    /// Emits `seg` (with `payload` in place of its own) and returns the
    /// packet bytes.
    fn emit(seg: &TcpSegment<'_>, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 2000];
        let seg = TcpSegment { payload, ..*seg };
        let n = emit_tcp(&mut buf, &seg, &[]).expect("buffer large enough");
        buf.truncate(n);
        buf
    }

    fn tcp(packet: &[u8]) -> TcpSegment<'_> {
        match parse(packet) {
            Ok(Packet::Tcp(seg)) => seg,
            other => panic!("expected TCP, got {other:?}"),
        }
    }

    /// Recomputes the IPv4 header checksum (honouring IHL) and, for TCP or
    /// ICMP, the transport checksum (honouring total length), so a test can
    /// corrupt one field without tripping a checksum check first.
    fn refresh_checksums(p: &mut [u8]) {
        if p.len() < 20 {
            return;
        }
        let ihl = usize::from(p[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([p[2], p[3]])).min(p.len());
        if ihl >= 20 && ihl <= p.len() {
            p[10] = 0;
            p[11] = 0;
            let c = !fold(sum_words(0, &p[..ihl]));
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        if ihl < 20 || total < ihl {
            return;
        }
        let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
        let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
        let body_len = total - ihl;
        match p[9] {
            PROTO_TCP if body_len >= 20 => {
                p[ihl + 16] = 0;
                p[ihl + 17] = 0;
                let acc = pseudo_header_sum(src, dst, PROTO_TCP, body_len as u16);
                let c = !fold(sum_words(acc, &p[ihl..total]));
                p[ihl + 16..ihl + 18].copy_from_slice(&c.to_be_bytes());
            }
            PROTO_ICMP if body_len >= 8 => {
                p[ihl + 2] = 0;
                p[ihl + 3] = 0;
                let c = !fold(sum_words(0, &p[ihl..total]));
                p[ihl + 2..ihl + 4].copy_from_slice(&c.to_be_bytes());
            }
            _ => {}
        }
    }

    /// A valid ICMP echo request from B to A.
    fn echo_request(ident: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
        // Build a reply with our emitter, then turn it into a request.
        let mut buf = vec![0u8; 2000];
        let n = emit_icmp_echo_reply(&mut buf, B, A, ident, seq, payload).unwrap();
        buf.truncate(n);
        buf[20] = ICMP_ECHO_REQUEST;
        refresh_checksums(&mut buf);
        buf
    }

    /// A SYN whose option area is exactly `options` (length must be a
    /// multiple of 4), with valid checksums.
    fn syn_with_raw_options(options: &[u8]) -> Vec<u8> {
        assert_eq!(options.len() % 4, 0);
        let mut p = emit(&segment(TcpFlags::SYN, TcpOptions::default()), b"");
        p.extend_from_slice(options);
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[32] = (((20 + options.len()) / 4) << 4) as u8;
        refresh_checksums(&mut p);
        p
    }

    // ----- round trips ----------------------------------------------------

    #[test]
    fn roundtrip_plain_ack() {
        let r = segment(TcpFlags::ACK, TcpOptions::default());
        let p = emit(&r, b"");
        assert_eq!(p.len(), 40);
        assert_eq!(r.header_len(), 40);
        let seg = tcp(&p);
        assert_eq!(seg.src, r.src);
        assert_eq!(seg.dst, r.dst);
        assert_eq!(seg.seq, r.seq);
        assert_eq!(seg.ack, r.ack);
        assert_eq!(seg.flags, TcpFlags::ACK);
        assert_eq!(seg.window, r.window);
        assert_eq!(seg.options, TcpOptions::default());
        assert!(seg.payload.is_empty());
        assert_eq!(seg.seg_len(), 0);
    }

    #[test]
    fn roundtrip_syn_with_all_options() {
        let r = segment(TcpFlags::SYN, all_options());
        let p = emit(&r, b"");
        // MSS 4 + SACK-permitted,TS 12 + NOP,WS 4.
        assert_eq!(tcp_header_len(&r.options), 40);
        assert_eq!(p.len(), 60);
        let seg = tcp(&p);
        assert_eq!(seg.flags, TcpFlags::SYN);
        assert_eq!(seg.options, all_options());
        assert_eq!(seg.ack, SeqNum(0), "ack must be zero without ACK flag");
        assert_eq!(seg.seg_len(), 1);
        // Exact option bytes.
        assert_eq!(
            &p[40..60],
            &[
                2, 4, 0x05, 0xb4, // MSS 1460
                4, 2, 8, 10, // SACK-permitted, TS (Linux's order)
                0xde, 0xad, 0xbe, 0xef, 0x0b, 0xad, 0xf0, 0x0d, 1, 3, 3, 7, // NOP, WS 7
            ]
        );
    }

    #[test]
    fn roundtrip_every_option_combination() {
        for bits in 0..16u8 {
            let options = TcpOptions {
                mss: (bits & 1 != 0).then_some(536),
                window_scale: (bits & 2 != 0).then_some(14),
                sack_permitted: bits & 4 != 0,
                timestamp: (bits & 8 != 0).then_some((1, u32::MAX)),
                sack: Default::default(),
            };
            let r = segment(TcpFlags::SYN | TcpFlags::ACK, options);
            let hlen = tcp_header_len(&options);
            assert_eq!(hlen % 4, 0);
            assert!((20..=60).contains(&hlen));
            assert_eq!(r.header_len(), 20 + hlen);
            let p = emit(&r, b"xy");
            assert_eq!(p.len(), 20 + hlen + 2);
            assert_eq!(usize::from(p[32] >> 4) * 4, hlen);
            let seg = tcp(&p);
            assert_eq!(seg.options, options, "combination {bits:#06b}");
            assert_eq!(seg.payload, b"xy");
            assert_eq!(seg.ack, r.ack);
        }
    }

    #[test]
    fn roundtrip_data_segment() {
        let payload: Vec<u8> = (0..=255u8).cycle().take(1001).collect(); // odd length
        let options = TcpOptions {
            timestamp: Some((7, 8)),
            ..TcpOptions::default()
        };
        let r = segment(TcpFlags::PSH | TcpFlags::ACK | TcpFlags::FIN, options);
        let p = emit(&r, &payload);
        assert_eq!(p.len(), r.header_len() + payload.len());
        let seg = tcp(&p);
        assert_eq!(seg.payload, &payload[..]);
        assert_eq!(seg.flags, TcpFlags::PSH | TcpFlags::ACK | TcpFlags::FIN);
        assert_eq!(seg.options.timestamp, Some((7, 8)));
        assert_eq!(seg.seg_len(), 1002);
    }

    #[test]
    fn emitted_ip_header_fields() {
        let r = segment(TcpFlags::ACK, TcpOptions::default());
        let p = emit(&r, b"hello");
        assert_eq!(p[0], 0x45);
        assert_eq!(p[1], 0);
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), 45);
        assert_eq!(&p[4..6], &[0, 0], "identification");
        assert_eq!(&p[6..8], &[0x40, 0], "DF set, offset 0");
        assert_eq!(p[8], 64);
        assert_eq!(p[9], 6);
        assert_eq!(&p[12..16], &A.octets());
        assert_eq!(&p[16..20], &B.octets());
        assert_eq!(&p[38..40], &[0, 0], "urgent pointer");
        assert_eq!(p[33], 0x10, "flags byte");
    }

    #[test]
    fn payload_then_more_in_order_and_checksummed() {
        // Odd, even and empty parts, so the second part starts at either
        // byte of a checksum word.
        let parts: [(&[u8], &[u8]); 6] = [
            (b"", b""),
            (b"abc", b""),
            (b"", b"defg"),
            (b"abc", b"defg"),
            (b"x", b"yz0123456789"),
            (b"0123456789", b"q"),
        ];
        for (options, (payload, more)) in [TcpOptions::default(), all_options()]
            .into_iter()
            .flat_map(|o| parts.map(|p| (o, p)))
        {
            let seg = TcpSegment {
                payload,
                ..segment(TcpFlags::ACK | TcpFlags::PSH, options)
            };
            let mut buf = [0xa5u8; 300];
            let n = emit_tcp(&mut buf, &seg, more).unwrap();
            assert_eq!(n, seg.header_len() + payload.len() + more.len());
            assert!(buf[n..].iter().all(|&b| b == 0xa5), "nothing past the end");
            // parse verifies both checksums.
            let back = tcp(&buf[..n]);
            assert_eq!(
                back.payload,
                [payload, more].concat(),
                "{payload:?} {more:?}"
            );
            assert_eq!(back.options, options);
            assert_eq!(back.seq, seg.seq);
            // The same bytes as one slice.
            let joined = [payload, more].concat();
            assert_eq!(&buf[..n], &emit(&seg, &joined)[..]);
            // And etherparse agrees on the checksum.
            let (iph, rest) = etherparse::Ipv4Header::from_slice(&buf[..n]).unwrap();
            let (tcph, data) = etherparse::TcpHeader::from_slice(rest).unwrap();
            assert_eq!(data, &joined[..]);
            assert_eq!(
                tcph.checksum,
                tcph.calc_checksum_ipv4_raw(iph.source, iph.destination, data)
                    .unwrap()
            );
        }
    }

    #[test]
    fn emit_failure_returns_none_and_leaves_buf_unchanged() {
        let r = segment(TcpFlags::SYN, all_options());
        let data = [7u8; 10];
        let need = r.header_len() + data.len();
        for (payload, more) in [
            (&data[..], &[][..]),
            (&data[..4], &data[4..]),
            (&[][..], &data[..]),
        ] {
            let seg = TcpSegment { payload, ..r };
            for size in 0..need {
                let mut buf = vec![0x5au8; size];
                assert_eq!(emit_tcp(&mut buf, &seg, more), None, "size {size}");
                assert!(buf.iter().all(|&b| b == 0x5a), "buf written on failure");
            }
            let mut buf = vec![0u8; need];
            assert_eq!(emit_tcp(&mut buf, &seg, more), Some(need));
        }
        // Larger than an IPv4 packet can be, even with a huge buffer.
        let mut big = vec![0x5au8; 70_000];
        let max_payload = 65_535 - r.header_len();
        let huge = vec![0x33u8; 65_535];
        for (payload, more) in [
            (&huge[..], &[][..]),
            (&[][..], &huge[..]),
            (&huge[..max_payload], &huge[..1]),
            (&huge[..1], &huge[..max_payload]),
            (&huge[..], &huge[..]),
        ] {
            let seg = TcpSegment { payload, ..r };
            assert_eq!(emit_tcp(&mut big, &seg, more), None);
            assert!(big.iter().all(|&b| b == 0x5a), "buf written on failure");
        }
        // Exactly the maximum fits, however it is split.
        for split in [0, 1, max_payload / 2, max_payload] {
            let seg = TcpSegment {
                payload: &huge[..split],
                ..r
            };
            let more = &huge[split..max_payload];
            assert_eq!(emit_tcp(&mut big, &seg, more), Some(65_535));
            let back = tcp(&big[..65_535]);
            assert_eq!(back.payload.len(), max_payload);
        }

        let payload = [1u8; 10];
        for size in 0..38 {
            let mut buf = vec![0u8; size];
            assert_eq!(emit_icmp_echo_reply(&mut buf, A, B, 1, 2, &payload), None);
        }
        let mut buf = [0u8; 38];
        assert_eq!(
            emit_icmp_echo_reply(&mut buf, A, B, 1, 2, &payload),
            Some(38)
        );
        let huge = vec![0u8; 65_535];
        assert_eq!(emit_icmp_echo_reply(&mut big, A, B, 1, 2, &huge), None);
    }

    // ----- independent checks ----------------------------------------------

    /// The straightforward RFC 1071 loop the wide [`sum_words`] replaced:
    /// big-endian 16-bit words, an odd last byte padded with a zero.
    fn reference_sum16(mut acc: u64, data: &[u8]) -> u64 {
        let mut words = data.chunks_exact(2);
        for word in &mut words {
            acc += u64::from(u16::from_be_bytes([word[0], word[1]]));
        }
        if let [last] = words.remainder() {
            acc += u64::from(u16::from_be_bytes([*last, 0]));
        }
        acc
    }

    #[test]
    fn wide_sum_matches_16_bit_reference_rfc1071() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1071);
        let mut buf = vec![0u8; 2100];
        for i in 0..4000 {
            rng.fill(&mut buf[..]);
            // Every length 0..2000 (at a random alignment), then random ones.
            let (len, offset) = if i < 2000 {
                (i, rng.random_range(0..8))
            } else {
                (rng.random_range(0..2000), rng.random_range(0..100))
            };
            let data = &buf[offset..offset + len];
            let acc = if i % 3 == 0 {
                0
            } else {
                rng.random_range(0..1u64 << 20)
            };
            assert_eq!(
                fold(sum_words(acc, data)),
                fold(reference_sum16(acc, data)),
                "len {len} offset {offset} acc {acc}"
            );
            // etherparse sums native-endian too and returns the checksum in
            // native byte order, ready for `to_ne_bytes`.
            let theirs = etherparse::checksum::Sum16BitWords::new()
                .add_slice(data)
                .ones_complement();
            assert_eq!(
                internet_checksum(data).to_be_bytes(),
                theirs.to_ne_bytes(),
                "len {len} offset {offset}"
            );
        }
    }

    #[test]
    fn wide_sum_edge_cases() {
        // All zeros sum to 0x0000, all ones to 0xffff (never the other zero).
        for len in 0..40 {
            for byte in [0x00u8, 0xff, 0x80, 0x01] {
                let data = vec![byte; len];
                assert_eq!(
                    fold(sum_words(0, &data)),
                    fold(reference_sum16(0, &data)),
                    "{len} x {byte:#04x}"
                );
            }
        }
        assert_eq!(fold(sum_words(0, &[0; 17])), 0);
        assert_eq!(fold(sum_words(0, &[0xff; 16])), 0xffff);
        // Lengths around and beyond a block (and the largest IPv4 packet).
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        for len in [
            SUM_BLOCK - 1,
            SUM_BLOCK,
            SUM_BLOCK + 1,
            IPV4_MAX_LEN,
            3 * SUM_BLOCK + 7,
        ] {
            let mut data = vec![0u8; len];
            rng.fill(&mut data[..]);
            assert_eq!(
                fold(sum_words(5, &data)),
                fold(reference_sum16(5, &data)),
                "len {len}"
            );
            data.fill(0xff);
            assert_eq!(fold(sum_words(0, &data)), fold(reference_sum16(0, &data)));
        }
    }

    #[test]
    fn golden_ipv4_header_checksum() {
        // The well-known example header (checksum 0xb861).
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(!fold(sum_words(0, &header)), 0xb861);
        let mut with = header;
        with[10..12].copy_from_slice(&[0xb8, 0x61]);
        assert!(checksum_ok(sum_words(0, &with)));
        // Our emitted header for the same fields.
        let ours = ipv4_header(
            0x73,
            true,
            0x11,
            Ipv4Addr::new(192, 168, 0, 1),
            Ipv4Addr::new(192, 168, 0, 199),
        );
        assert_eq!(ours, with);
    }

    #[test]
    fn golden_tcp_syn_bytes() {
        // A SYN from 192.168.1.2:54321 to 93.184.216.34:80, built by hand.
        let mut p: Vec<u8> = vec![
            0x45, 0x00, 0x00, 0x2c, // v4 ihl5, tos, total 44
            0x00, 0x00, 0x40, 0x00, // id 0, DF
            0x40, 0x06, 0x00, 0x00, // ttl 64, tcp, csum
            192, 168, 1, 2, // src
            93, 184, 216, 34, // dst
            0xd4, 0x31, 0x00, 0x50, // ports 54321 -> 80
            0x00, 0x00, 0x00, 0x01, // seq 1
            0x00, 0x00, 0x00, 0x00, // ack 0
            0x60, 0x02, 0xff, 0xff, // doff 6, SYN, window 65535
            0x00, 0x00, 0x00, 0x00, // csum, urg
            0x02, 0x04, 0x05, 0xb4, // MSS 1460
        ];
        // Checksums by etherparse, independently of our code.
        let (iph, _) = etherparse::Ipv4Header::from_slice(&p).unwrap();
        let ip_csum = iph.calc_header_checksum();
        let (tcph, payload) = etherparse::TcpHeader::from_slice(&p[20..]).unwrap();
        let tcp_csum = tcph
            .calc_checksum_ipv4_raw([192, 168, 1, 2], [93, 184, 216, 34], payload)
            .unwrap();
        p[10..12].copy_from_slice(&ip_csum.to_be_bytes());
        p[36..38].copy_from_slice(&tcp_csum.to_be_bytes());

        let r = TcpSegment {
            src: "192.168.1.2:54321".parse().unwrap(),
            dst: "93.184.216.34:80".parse().unwrap(),
            seq: SeqNum(1),
            ack: SeqNum(12345), // not written: no ACK flag
            flags: TcpFlags::SYN,
            window: 65535,
            options: TcpOptions {
                mss: Some(1460),
                ..TcpOptions::default()
            },
            payload: &[],
        };
        assert_eq!(emit(&r, b""), p);
        let seg = tcp(&p);
        assert_eq!(seg.options.mss, Some(1460));
        assert_eq!(seg.src, r.src);
    }

    #[test]
    fn checksums_agree_with_etherparse() {
        for (flags, options, payload) in [
            (TcpFlags::SYN, all_options(), &b""[..]),
            (TcpFlags::ACK, TcpOptions::default(), &b"a"[..]),
            (
                TcpFlags::ACK | TcpFlags::PSH,
                all_options(),
                &b"odd-length!"[..],
            ),
            (TcpFlags::RST, TcpOptions::default(), &[0xffu8; 64][..]),
        ] {
            let p = emit(&segment(flags, options), payload);
            let (iph, rest) = etherparse::Ipv4Header::from_slice(&p).unwrap();
            assert_eq!(iph.header_checksum, iph.calc_header_checksum());
            assert!(iph.dont_fragment);
            assert_eq!(iph.time_to_live, 64);
            let (tcph, data) = etherparse::TcpHeader::from_slice(rest).unwrap();
            assert_eq!(data, payload);
            assert_eq!(
                tcph.checksum,
                tcph.calc_checksum_ipv4_raw(iph.source, iph.destination, data)
                    .unwrap()
            );
            assert_eq!(tcph.syn, flags.contains(TcpFlags::SYN));
            assert_eq!(tcph.psh, flags.contains(TcpFlags::PSH));
            // etherparse decodes the options the same way.
            let mut mss = None;
            let mut ws = None;
            let mut sack = false;
            let mut ts = None;
            for o in tcph.options_iterator() {
                match o.unwrap() {
                    etherparse::TcpOptionElement::MaximumSegmentSize(v) => mss = Some(v),
                    etherparse::TcpOptionElement::WindowScale(v) => ws = Some(v),
                    etherparse::TcpOptionElement::SelectiveAcknowledgementPermitted => sack = true,
                    etherparse::TcpOptionElement::Timestamp(a, b) => ts = Some((a, b)),
                    _ => {}
                }
            }
            assert_eq!(
                TcpOptions {
                    mss,
                    window_scale: ws,
                    sack_permitted: sack,
                    timestamp: ts,
                    sack: Default::default(),
                },
                options
            );
        }

        let mut buf = [0u8; 100];
        let n = emit_icmp_echo_reply(&mut buf, A, B, 0x1234, 0x5678, b"ping!").unwrap();
        let icmp = etherparse::Icmpv4Slice::from_slice(&buf[20..n]).unwrap();
        let expected = etherparse::Icmpv4Header::with_checksum(icmp.icmp_type(), icmp.payload());
        assert_eq!(icmp.checksum(), expected.checksum);
    }

    // ----- damage -------------------------------------------------------------

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let syn = emit(&segment(TcpFlags::SYN, all_options()), b"data!");
        let ping = echo_request(7, 9, b"abc");
        for original in [syn, ping] {
            assert!(parse(&original).is_ok());
            for i in 0..original.len() {
                for bit in 0..8 {
                    let mut p = original.clone();
                    p[i] ^= 1 << bit;
                    assert!(parse(&p).is_err(), "flip of byte {i} bit {bit} accepted");
                }
                let mut p = original.clone();
                p[i] ^= 0xff;
                assert!(parse(&p).is_err(), "inversion of byte {i} accepted");
            }
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        let syn = emit(&segment(TcpFlags::SYN, all_options()), b"data!");
        let ping = echo_request(7, 9, b"abc");
        for original in [syn, ping] {
            for len in 0..original.len() {
                let r = parse(&original[..len]);
                assert!(r.is_err(), "truncation to {len} accepted");
                if len > 0 {
                    assert_eq!(r, Err(DropReason::Truncated), "length {len}");
                }
            }
        }
        assert_eq!(parse(&[]), Err(DropReason::Truncated));
    }

    #[test]
    fn trailing_bytes_beyond_total_length_are_ignored() {
        let mut p = emit(&segment(TcpFlags::ACK, TcpOptions::default()), b"abc");
        p.extend_from_slice(&[0xee; 17]);
        let seg = tcp(&p);
        assert_eq!(seg.payload, b"abc");
        let mut ping = echo_request(1, 2, b"xyz");
        ping.extend_from_slice(&[0; 6]);
        assert!(matches!(
            parse(&ping),
            Ok(Packet::IcmpEchoRequest {
                payload: b"xyz",
                ..
            })
        ));
    }

    #[test]
    fn not_ipv4() {
        let mut p = emit(&segment(TcpFlags::ACK, TcpOptions::default()), b"");
        p[0] = 0x65;
        assert_eq!(parse(&p), Err(DropReason::NotIpv4));
        assert_eq!(parse(&[0x60]), Err(DropReason::NotIpv4));
        assert_eq!(parse(&[0x00; 40]), Err(DropReason::NotIpv4));
    }

    #[test]
    fn bad_ihl() {
        let base = emit(&segment(TcpFlags::ACK, TcpOptions::default()), b"");
        for ihl in 0..5u8 {
            let mut p = base.clone();
            p[0] = 0x40 | ihl;
            assert_eq!(parse(&p), Err(DropReason::BadIpHeader), "ihl {ihl}");
        }
        // IHL 15 (60 bytes) on a 40-byte packet with total length 40.
        let mut p = base.clone();
        p[0] = 0x4f;
        assert_eq!(parse(&p), Err(DropReason::Truncated));
        // IHL 15 on a long enough buffer, but total length below it.
        let mut p = base.clone();
        p[0] = 0x4f;
        p.resize(80, 0);
        refresh_checksums(&mut p);
        assert_eq!(parse(&p), Err(DropReason::BadIpHeader));
    }

    #[test]
    fn ip_options_are_skipped() {
        let base = emit(&segment(TcpFlags::ACK, TcpOptions::default()), b"hi");
        // Insert 4 bytes of IP options (NOP NOP NOP EOL).
        let mut p = base[..20].to_vec();
        p.extend_from_slice(&[1, 1, 1, 0]);
        p.extend_from_slice(&base[20..]);
        p[0] = 0x46;
        let total = p.len() as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        refresh_checksums(&mut p);
        let seg = tcp(&p);
        assert_eq!(seg.payload, b"hi");
        assert_eq!(seg.src, SocketAddrV4::new(A, 40000));
    }

    #[test]
    fn bad_total_length() {
        let base = emit(&segment(TcpFlags::ACK, TcpOptions::default()), b"abc");
        // Larger than the buffer.
        let mut p = base.clone();
        p[2..4].copy_from_slice(&(base.len() as u16 + 1).to_be_bytes());
        refresh_checksums(&mut p);
        assert_eq!(parse(&p), Err(DropReason::Truncated));
        let mut p = base.clone();
        p[2..4].copy_from_slice(&u16::MAX.to_be_bytes());
        refresh_checksums(&mut p);
        assert_eq!(parse(&p), Err(DropReason::Truncated));
        // Smaller than the IP header.
        let mut p = base.clone();
        p[2..4].copy_from_slice(&19u16.to_be_bytes());
        refresh_checksums(&mut p);
        assert_eq!(parse(&p), Err(DropReason::BadIpHeader));
        // Leaves too little room for the TCP header.
        let mut p = base.clone();
        p[2..4].copy_from_slice(&39u16.to_be_bytes());
        refresh_checksums(&mut p);
        assert_eq!(parse(&p), Err(DropReason::BadTcpHeader));
        // Shorter, cutting the payload: valid once checksums match.
        let mut p = base.clone();
        p[2..4].copy_from_slice(&41u16.to_be_bytes());
        refresh_checksums(&mut p);
        assert_eq!(tcp(&p).payload, b"a");
    }

    #[test]
    fn bad_checksums() {
        let base = emit(&segment(TcpFlags::ACK, TcpOptions::default()), b"abc");
        let mut p = base.clone();
        p[10] ^= 0x01;
        assert_eq!(parse(&p), Err(DropReason::BadIpChecksum));
        let mut p = base.clone();
        p[36] ^= 0x80;
        assert_eq!(parse(&p), Err(DropReason::BadTcpChecksum));
        let mut p = base.clone();
        p[42] ^= 0x04; // payload byte
        assert_eq!(parse(&p), Err(DropReason::BadTcpChecksum));
        // Changing an address breaks the pseudo-header sum even with a
        // fixed IP checksum.
        let mut p = base.clone();
        p[15] = 9;
        let c = {
            p[10] = 0;
            p[11] = 0;
            !fold(sum_words(0, &p[..20]))
        };
        p[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse(&p), Err(DropReason::BadTcpChecksum));
        // One's complement has two zeros: a checksum field of 0x0000 and one
        // of 0xffff must both verify when the rest sums to all-ones. Move the
        // checksum value into the (otherwise zero) urgent pointer so the sum
        // is unchanged, then try both representations of zero.
        let mut p = base.clone();
        let stored = [p[36], p[37]];
        p[38..40].copy_from_slice(&stored);
        p[36..38].copy_from_slice(&[0, 0]);
        assert!(parse(&p).is_ok(), "checksum field 0x0000");
        p[36..38].copy_from_slice(&[0xff, 0xff]);
        assert!(parse(&p).is_ok(), "checksum field 0xffff");
    }

    #[test]
    fn fragments_are_dropped() {
        let base = emit(&segment(TcpFlags::ACK, TcpOptions::default()), b"abc");
        for frag in [0x2000u16, 0x0001, 0x1fff, 0x6000, 0x4001, 0x2001] {
            let mut p = base.clone();
            p[6..8].copy_from_slice(&frag.to_be_bytes());
            refresh_checksums(&mut p);
            assert_eq!(
                parse(&p),
                Err(DropReason::Fragment),
                "frag word {frag:#06x}"
            );
        }
        // DF alone, or nothing, is fine.
        for frag in [0x0000u16, 0x4000] {
            let mut p = base.clone();
            p[6..8].copy_from_slice(&frag.to_be_bytes());
            refresh_checksums(&mut p);
            assert!(parse(&p).is_ok());
        }
        let mut ping = echo_request(1, 1, b"");
        ping[6] = 0x20;
        refresh_checksums(&mut ping);
        assert_eq!(parse(&ping), Err(DropReason::Fragment));
    }

    #[test]
    fn unsupported_protocol() {
        for proto in [17u8, 0, 2, 41, 58, 255] {
            let mut p = emit(&segment(TcpFlags::ACK, TcpOptions::default()), b"abc");
            p[9] = proto;
            refresh_checksums(&mut p);
            assert_eq!(parse(&p), Err(DropReason::UnsupportedProtocol));
        }
    }

    #[test]
    fn bad_data_offset() {
        let base = emit(&segment(TcpFlags::ACK, TcpOptions::default()), b"abcd");
        for doff in 0..5u8 {
            let mut p = base.clone();
            p[32] = doff << 4;
            refresh_checksums(&mut p);
            assert_eq!(parse(&p), Err(DropReason::BadTcpHeader), "doff {doff}");
        }
        // 24 bytes of TCP payload: doff 6 fits, doff 7 does not.
        let mut p = base.clone();
        p[32] = 7 << 4;
        refresh_checksums(&mut p);
        assert_eq!(parse(&p), Err(DropReason::BadTcpHeader));
        let mut p = base.clone();
        p[32] = 6 << 4;
        refresh_checksums(&mut p);
        // "abcd" is now an unknown option of kind 'a' (97) length 'b' (98):
        // runs past the end.
        assert_eq!(parse(&p), Err(DropReason::BadTcpOptions));
    }

    #[test]
    fn reserved_and_ecn_bits_are_ignored() {
        let mut p = emit(&segment(TcpFlags::ACK, TcpOptions::default()), b"");
        p[32] |= 0x0f; // reserved + NS
        p[33] |= 0xc0; // CWR, ECE
        refresh_checksums(&mut p);
        let seg = tcp(&p);
        assert_eq!(seg.flags, TcpFlags::ACK);
    }

    #[test]
    fn options_parsing() {
        let ok = |opts: &[u8]| tcp(&syn_with_raw_options(opts)).options;
        let bad = |opts: &[u8]| parse(&syn_with_raw_options(opts)).map(|_| ());

        assert_eq!(ok(&[1, 1, 1, 1]), TcpOptions::default());
        assert_eq!(ok(&[0, 0, 0, 0]), TcpOptions::default());
        // Unaligned but valid: MSS at offset 1.
        assert_eq!(ok(&[1, 2, 4, 0x02, 0x18, 0, 0, 0]).mss, Some(536));
        // EOL stops parsing: garbage after it is not looked at.
        assert_eq!(ok(&[2, 4, 1, 0, 0, 0xff, 0x00, 0x01]).mss, Some(256));
        // Unknown options are skipped by their length.
        assert_eq!(
            ok(&[30, 6, 9, 9, 9, 9, 4, 2]),
            TcpOptions {
                sack_permitted: true,
                ..TcpOptions::default()
            }
        );
        // SACK blocks (kind 5) are skipped too.
        assert_eq!(ok(&[1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2]).mss, None);
        // Window scale above 14 is clamped (RFC 7323).
        assert_eq!(ok(&[3, 3, 15, 0]).window_scale, Some(14));
        assert_eq!(ok(&[3, 3, 255, 0]).window_scale, Some(14));
        assert_eq!(ok(&[3, 3, 0, 0]).window_scale, Some(0));
        // Last one wins.
        assert_eq!(ok(&[2, 4, 0, 1, 2, 4, 0, 2]).mss, Some(2));

        let e: Result<(), DropReason> = Err(DropReason::BadTcpOptions);
        assert_eq!(bad(&[30, 0, 0, 0]), e, "length 0");
        assert_eq!(bad(&[30, 1, 0, 0]), e, "length 1");
        assert_eq!(bad(&[30, 5, 0, 0]), e, "runs past the end");
        assert_eq!(bad(&[1, 1, 1, 30]), e, "kind without length");
        assert_eq!(bad(&[1, 1, 8, 10]), e, "timestamp past the end");
        assert_eq!(bad(&[2, 3, 0, 0]), e, "MSS length 3");
        assert_eq!(bad(&[2, 5, 0, 0, 0, 0, 0, 0]), e, "MSS length 5");
        assert_eq!(bad(&[3, 4, 0, 0]), e, "WS length 4");
        assert_eq!(bad(&[4, 3, 0, 0]), e, "SACK-permitted length 3");
        assert_eq!(bad(&[8, 8, 0, 0, 0, 0, 0, 0]), e, "TS length 8");
    }

    #[test]
    fn port_zero_is_dropped() {
        for (sp, dp) in [(0u16, 80u16), (40000, 0), (0, 0)] {
            let mut r = segment(TcpFlags::SYN, TcpOptions::default());
            r.src.set_port(sp);
            r.dst.set_port(dp);
            assert_eq!(parse(&emit(&r, b"")), Err(DropReason::BadPort));
        }
    }

    #[test]
    fn non_unicast_addresses_are_dropped() {
        let bad = [
            Ipv4Addr::BROADCAST,
            Ipv4Addr::new(224, 0, 0, 1),
            Ipv4Addr::new(239, 255, 255, 250),
            Ipv4Addr::UNSPECIFIED,
        ];
        for addr in bad {
            let mut r = segment(TcpFlags::SYN, TcpOptions::default());
            r.dst.set_ip(addr);
            assert_eq!(
                parse(&emit(&r, b"")),
                Err(DropReason::BadAddress),
                "dst {addr}"
            );
            let mut r = segment(TcpFlags::SYN, TcpOptions::default());
            r.src.set_ip(addr);
            assert_eq!(
                parse(&emit(&r, b"")),
                Err(DropReason::BadAddress),
                "src {addr}"
            );

            let mut ping = echo_request(1, 1, b"");
            ping[16..20].copy_from_slice(&addr.octets());
            refresh_checksums(&mut ping);
            assert_eq!(parse(&ping), Err(DropReason::BadAddress), "ping to {addr}");
        }
        // Ordinary unicast, including loopback and the edge of 224/4.
        for addr in [
            Ipv4Addr::new(127, 0, 0, 1),
            Ipv4Addr::new(223, 255, 255, 255),
        ] {
            let mut r = segment(TcpFlags::SYN, TcpOptions::default());
            r.dst.set_ip(addr);
            assert!(parse(&emit(&r, b"")).is_ok());
        }
    }

    // ----- ICMP ----------------------------------------------------------------

    #[test]
    fn icmp_echo_request_and_reply() {
        let req = echo_request(0xbeef, 42, b"0123456789");
        let parsed = parse(&req).unwrap();
        let Packet::IcmpEchoRequest {
            src,
            dst,
            ident,
            seq,
            payload,
        } = parsed
        else {
            panic!("expected echo request, got {parsed:?}");
        };
        assert_eq!(
            (src, dst, ident, seq, payload),
            (B, A, 0xbeef, 42, &b"0123456789"[..])
        );

        let mut buf = [0u8; 100];
        let n = emit_icmp_echo_reply(&mut buf, dst, src, ident, seq, payload).unwrap();
        let reply = &buf[..n];
        assert_eq!(n, 20 + 8 + 10);
        assert_eq!(reply[0], 0x45);
        assert_eq!(u16::from_be_bytes([reply[2], reply[3]]) as usize, n);
        assert_eq!(reply[8], 64);
        assert_eq!(reply[9], 1);
        assert_eq!(&reply[12..16], &A.octets());
        assert_eq!(&reply[16..20], &B.octets());
        assert!(checksum_ok(sum_words(0, &reply[..20])));
        assert_eq!(&reply[20..22], &[0, 0], "type 0 code 0");
        assert_eq!(&reply[24..26], &0xbeefu16.to_be_bytes());
        assert_eq!(&reply[26..28], &42u16.to_be_bytes());
        assert_eq!(&reply[28..], b"0123456789");
        assert!(checksum_ok(sum_words(0, &reply[20..])));
        // A reply is valid ICMP but not a request.
        assert_eq!(parse(reply), Err(DropReason::IcmpNotEchoRequest));

        // Odd-length and empty payloads.
        for data in [&b""[..], b"x", b"xyz"] {
            let n = emit_icmp_echo_reply(&mut buf, A, B, 1, 2, data).unwrap();
            assert!(checksum_ok(sum_words(0, &buf[20..n])));
            let mut req = buf[..n].to_vec();
            req[20] = 8;
            refresh_checksums(&mut req);
            assert!(matches!(
                parse(&req),
                Ok(Packet::IcmpEchoRequest { payload, .. }) if payload == data
            ));
        }
    }

    #[test]
    fn icmp_errors() {
        let base = echo_request(1, 2, b"abcd");
        let mut p = base.clone();
        p[22] ^= 1;
        assert_eq!(parse(&p), Err(DropReason::BadIcmpChecksum));
        let mut p = base.clone();
        p[30] ^= 1;
        assert_eq!(parse(&p), Err(DropReason::BadIcmpChecksum));
        // Non-zero code.
        let mut p = base.clone();
        p[21] = 1;
        refresh_checksums(&mut p);
        assert_eq!(parse(&p), Err(DropReason::IcmpNotEchoRequest));
        // Other types (destination unreachable, time exceeded, ...).
        for ty in [3u8, 5, 11, 13, 0] {
            let mut p = base.clone();
            p[20] = ty;
            refresh_checksums(&mut p);
            assert_eq!(parse(&p), Err(DropReason::IcmpNotEchoRequest), "type {ty}");
        }
        // Shorter than the 8-byte header.
        for len in 20..28u16 {
            let mut p = base[..usize::from(len)].to_vec();
            p[2..4].copy_from_slice(&len.to_be_bytes());
            refresh_checksums(&mut p);
            assert_eq!(parse(&p), Err(DropReason::BadIcmp), "total length {len}");
        }
    }

    // ----- misc ------------------------------------------------------------------

    #[test]
    fn seg_len_counts_syn_and_fin() {
        let packet = emit(&segment(TcpFlags::ACK, TcpOptions::default()), b"abc");
        let mut seg = tcp(&packet);
        assert_eq!(seg.seg_len(), 3);
        seg.flags = TcpFlags::SYN;
        assert_eq!(seg.seg_len(), 4);
        seg.flags = TcpFlags::SYN | TcpFlags::FIN;
        assert_eq!(seg.seg_len(), 5);
        seg.flags = TcpFlags::FIN | TcpFlags::ACK;
        seg.payload = b"";
        assert_eq!(seg.seg_len(), 1);
        seg.flags = TcpFlags::RST;
        assert_eq!(seg.seg_len(), 0);
    }

    #[test]
    fn flags_insert_remove_without() {
        const SYN_ACK: TcpFlags = TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0);
        const JUST_ACK: TcpFlags = SYN_ACK.without(TcpFlags::SYN);
        assert_eq!(JUST_ACK, TcpFlags::ACK);
        assert_eq!(SYN_ACK.without(TcpFlags::FIN), SYN_ACK, "absent bit");
        assert_eq!(SYN_ACK.without(SYN_ACK), TcpFlags::default());
        assert_eq!(
            (SYN_ACK | TcpFlags::FIN).without(TcpFlags::SYN | TcpFlags::FIN),
            TcpFlags::ACK
        );

        let mut f = TcpFlags::default();
        f.insert(TcpFlags::FIN);
        f.insert(TcpFlags::ACK | TcpFlags::PSH);
        f.insert(TcpFlags::ACK); // already set
        assert_eq!(f, TcpFlags::FIN | TcpFlags::ACK | TcpFlags::PSH);
        f.remove(TcpFlags::FIN);
        assert_eq!(f, TcpFlags::ACK | TcpFlags::PSH);
        f.remove(TcpFlags::RST); // not set
        assert_eq!(f, TcpFlags::ACK | TcpFlags::PSH);
        f.remove(TcpFlags::ACK | TcpFlags::PSH);
        assert_eq!(f, TcpFlags::default());
        assert_eq!(format!("{f:?}"), "-");
    }

    #[test]
    fn drop_reason_labels() {
        let mut seen = std::collections::HashSet::new();
        for r in DropReason::ALL {
            let s = r.as_str();
            assert!(!s.is_empty());
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{s}"
            );
            assert!(seen.insert(s), "duplicate label {s}");
            assert_eq!(r.to_string(), s);
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut ok = 0;
        for i in 0..10_000 {
            let len = rng.random_range(0..120usize);
            let mut p: Vec<u8> = (0..len).map(|_| rng.random::<u8>()).collect();
            // Make half of them look like IPv4 so deeper code is reached.
            if i % 2 == 0 && !p.is_empty() {
                p[0] = 0x45;
            }
            if parse(&p).is_ok() {
                ok += 1;
            }
        }
        // Random bytes essentially never carry two valid checksums.
        assert!(ok < 5, "{ok} random packets accepted");
    }

    #[test]
    fn random_mutations_with_fixed_checksums_never_panic() {
        // Mutate valid packets and then repair the checksums, so the
        // length, offset and option handling sees hostile values.
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let bases = [
            emit(&segment(TcpFlags::SYN, all_options()), b"payload"),
            emit(&segment(TcpFlags::ACK, TcpOptions::default()), b""),
            echo_request(3, 4, b"ping data"),
        ];
        let mut outcomes = std::collections::HashSet::new();
        for i in 0..10_000 {
            let mut p = bases[i % bases.len()].clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..p.len());
                p[at] = rng.random::<u8>();
            }
            if rng.random::<bool>() {
                let keep = rng.random_range(0..=p.len());
                p.truncate(keep);
            }
            refresh_checksums(&mut p);
            let result = parse(&p);
            if let Ok(Packet::Tcp(seg)) = &result {
                // Whatever was accepted is self-consistent.
                assert!(seg.payload.len() <= p.len());
                assert_ne!(seg.src.port(), 0);
                assert_ne!(seg.dst.port(), 0);
                assert!(seg.options.window_scale.is_none_or(|s| s <= 14));
            }
            outcomes.insert(result.map(|_| ()));
        }
        assert!(outcomes.contains(&Ok(())));
        assert!(outcomes.len() > 5, "mutations reached only {outcomes:?}");
    }

    /// An offload device's partial checksum: `parse` drops the packet,
    /// `parse_with(.., true)` skips only the TCP checksum (a bad IP
    /// checksum is still caught), and `complete_tcp_checksum` makes it a
    /// packet `parse` accepts.
    #[test]
    fn partial_tcp_checksum_is_skipped_only_when_told_and_can_be_completed() {
        let seg = TcpSegment {
            payload: b"super-packet payload",
            ..segment(TcpFlags::ACK, TcpOptions::default())
        };
        let mut p = emit(&seg, seg.payload);
        // What the kernel leaves in the field: some partial sum.
        p[20 + 16] ^= 0x5a;
        assert_eq!(parse(&p).err(), Some(DropReason::BadTcpChecksum));
        match parse_with(&p, true) {
            Ok(Packet::Tcp(t)) => assert_eq!(t.payload, seg.payload),
            other => panic!("expected TCP, got {other:?}"),
        }
        let mut bad_ip = p.clone();
        bad_ip[10] ^= 1;
        assert_eq!(
            parse_with(&bad_ip, true).err(),
            Some(DropReason::BadIpChecksum)
        );
        assert_eq!(complete_tcp_checksum(&mut p), Some(()));
        assert_eq!(tcp(&p).payload, seg.payload);
        assert_eq!(complete_tcp_checksum(&mut [0x45u8; 10]), None);
    }

    /// `emit_tcp_headers` with the payload appended is `emit_tcp_with`'s
    /// packet with a partial checksum; without partial checksum, or with a
    /// payload in `seg`, it refuses.
    #[test]
    fn headers_and_payload_make_the_partial_checksum_packet() {
        let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        let mut seg = segment(TcpFlags::ACK | TcpFlags::PSH, TcpOptions::default());
        let mut whole = [0u8; 4000];
        let (a, b) = payload.split_at(1234);
        seg.payload = a;
        let n = emit_tcp_with(&mut whole, &seg, b, true).unwrap();
        seg.payload = &[];
        let mut head = [0u8; 100];
        let h = emit_tcp_headers(&mut head, &seg, payload.len()).unwrap();
        assert_eq!(h, IPV4_HEADER_LEN + TCP_HEADER_LEN);
        assert_eq!([&head[..h], &payload[..]].concat(), &whole[..n]);
        seg.payload = a;
        assert_eq!(emit_tcp_headers(&mut head, &seg, 10), None);
    }
}
