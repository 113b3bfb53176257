//! The stack on its own, driven through `handle_packet` and `dispatch`:
//! garbage in, resets for closed ports (RFC 9293 section 3.10.7.1), ICMP
//! echo, listen backlog and argument checks.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use rand::{Rng, SeedableRng};
use utcp::error::Error;
use utcp::stack::{Stack, StackConfig};
use utcp::testing::{encode, init_logger, segment, stack_output, Seg};
use utcp::time::Instant;
use utcp::wire::{TcpFlags, TcpOptions};

const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const NOW: Instant = Instant::ZERO;

fn stack() -> Stack {
    init_logger();
    let mut cfg = StackConfig::new(US);
    cfg.seed = Some(7);
    Stack::new(cfg)
}

/// [`stack`] with SYN cookies off: SYNs past the backlog are dropped.
fn stack_without_cookies() -> Stack {
    init_logger();
    let mut cfg = StackConfig::new(US);
    cfg.seed = Some(7);
    cfg.syn_cookies = false;
    Stack::new(cfg)
}

/// Everything the stack wants to send now.
fn output(s: &mut Stack) -> Vec<Vec<u8>> {
    stack_output(s, NOW)
}

/// A TCP packet from PEER:`sport` to `dst`:`dport`.
fn tcp_to(dst: Ipv4Addr, sport: u16, dport: u16, seq: u32, ack: u32, flags: TcpFlags) -> Vec<u8> {
    let src = SocketAddrV4::new(PEER, sport);
    encode(&segment(
        src,
        SocketAddrV4::new(dst, dport),
        flags,
        seq,
        ack,
        &[],
    ))
}

fn tcp_in(sport: u16, dport: u16, seq: u32, ack: u32, flags: TcpFlags) -> Vec<u8> {
    tcp_to(US, sport, dport, seq, ack, flags)
}

/// RFC 1071 Internet checksum.
fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 header (no options) for `payload_len` bytes of `proto`.
fn ipv4(proto: u8, src: Ipv4Addr, dst: Ipv4Addr, payload_len: usize, frag: u16) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&((20 + payload_len) as u16).to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// An ICMP echo request (type 8) from PEER to `dst`, checksums correct.
fn echo_request(dst: Ipv4Addr, ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&ident.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(data);
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut pkt = ipv4(1, PEER, dst, icmp.len(), 0).to_vec();
    pkt.extend_from_slice(&icmp);
    pkt
}

fn dropped(s: &Stack, reason: &str) -> u64 {
    s.stats().dropped.get(reason).copied().unwrap_or(0)
}

fn dropped_total(s: &Stack) -> u64 {
    s.stats().dropped.values().sum()
}

#[test]
fn malformed_packets_are_dropped_and_counted() {
    let mut s = stack();
    s.listen(80, 8).unwrap();
    let syn = tcp_in(4000, 80, 1000, 0, TcpFlags::SYN);

    // Truncated: shorter than the IP header, and shorter than its total length.
    s.handle_packet(NOW, &syn[..10]);
    s.handle_packet(NOW, &syn[..syn.len() - 1]);
    assert_eq!(dropped(&s, "truncated"), 2);
    // Empty.
    s.handle_packet(NOW, &[]);
    assert_eq!(dropped(&s, "truncated"), 3);

    // Bad TCP checksum: flip a bit of the sequence number.
    let mut bad = syn.clone();
    bad[24] ^= 0x01;
    s.handle_packet(NOW, &bad);
    assert_eq!(dropped(&s, "bad_tcp_checksum"), 1);

    // Bad IP header checksum.
    let mut bad = syn.clone();
    bad[8] ^= 0x01; // TTL
    s.handle_packet(NOW, &bad);
    assert_eq!(dropped(&s, "bad_ip_checksum"), 1);

    // Not IPv4 at all (an IPv6 version nibble).
    let mut bad = syn.clone();
    bad[0] = 0x60;
    s.handle_packet(NOW, &bad);
    assert_eq!(dropped(&s, "not_ipv4"), 1);

    // Not TCP or ICMP: a UDP datagram with a valid IP header.
    let mut udp = ipv4(17, PEER, US, 8, 0).to_vec();
    udp.extend_from_slice(&[0x10, 0x00, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]);
    s.handle_packet(NOW, &udp);
    assert_eq!(dropped(&s, "unsupported_protocol"), 1);

    // Fragments: more-fragments set, and a non-zero offset.
    for frag in [0x2000u16, 0x0001] {
        let tcp = &syn[20..];
        let mut pkt = ipv4(6, PEER, US, tcp.len(), frag).to_vec();
        pkt.extend_from_slice(tcp);
        s.handle_packet(NOW, &pkt);
    }
    assert_eq!(dropped(&s, "fragment"), 2);

    // None of it created a connection or got an answer.
    assert_eq!(dropped_total(&s), 9);
    assert_eq!(s.stats().packets_in, 9);
    assert_eq!(s.stats().tcp_in, 0);
    assert_eq!(s.connection_count(), 0);
    assert!(output(&mut s).is_empty());
}

#[test]
fn fuzzed_random_bytes_never_panic() {
    let mut s = stack();
    s.listen(80, 8).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut buf = vec![0u8; 1500];
    for i in 0..20_000u64 {
        let len = rng.random_range(0..120);
        let mut pkt: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        // Half of them look like IPv4 with a plausible length, to get past
        // the first checks.
        if i % 2 == 0 && len >= 20 {
            pkt[0] = 0x45;
            pkt[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        }
        s.handle_packet(NOW, &pkt);
        s.handle_timeout(NOW);
        s.poll_transmit(NOW, &mut buf, |_| {});
    }
    let st = s.stats();
    assert_eq!(st.packets_in, 20_000);
    // Random bytes essentially never pass the checksums.
    assert_eq!(
        dropped_total(&s) + st.tcp_in + st.not_for_us + st.echo_replies,
        20_000
    );
    assert!(dropped_total(&s) >= 19_990, "{:?}", st.dropped);
}

#[test]
fn fuzzed_mutations_of_valid_packets_never_panic() {
    let mut s = stack();
    s.listen(80, 8).unwrap();
    let seeds = [
        tcp_in(4000, 80, 1000, 0, TcpFlags::SYN),
        tcp_in(4001, 80, 1000, 5, TcpFlags::ACK),
        tcp_in(4002, 81, 1000, 5, TcpFlags::ACK | TcpFlags::FIN),
        tcp_in(4003, 81, 1000, 5, TcpFlags::RST),
        echo_request(US, 1, 1, b"ping"),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xfa11);
    let mut buf = vec![0u8; 1500];
    let mut t = NOW;
    for _ in 0..20_000u32 {
        let mut pkt = seeds[rng.random_range(0..seeds.len())].clone();
        for _ in 0..rng.random_range(1..4) {
            match rng.random_range(0..3) {
                0 => {
                    let at = rng.random_range(0..pkt.len());
                    pkt[at] ^= 1 << rng.random_range(0..8);
                }
                1 => {
                    let at = rng.random_range(0..pkt.len());
                    pkt[at] = rng.random();
                }
                _ => {
                    let keep = rng.random_range(0..=pkt.len());
                    pkt.truncate(keep);
                }
            }
            if pkt.is_empty() {
                break;
            }
        }
        s.handle_packet(t, &pkt);
        t += std::time::Duration::from_millis(1);
        s.handle_timeout(t);
        s.poll_transmit(t, &mut buf, |_| {});
    }
    let st = s.stats();
    assert_eq!(st.packets_in, 20_000);
    assert_eq!(
        dropped_total(&s) + st.tcp_in + st.not_for_us + st.echo_replies,
        20_000,
        "every packet is dropped, demultiplexed, ignored or answered: {st:?}"
    );
    assert!(dropped_total(&s) > 10_000, "{:?}", st.dropped);
    // The stack is still healthy: a clean SYN gets a SYN-ACK.
    s.handle_packet(t, &tcp_in(5555, 80, 42, 0, TcpFlags::SYN));
    let out = output(&mut s);
    let synack = out
        .iter()
        .map(|p| Seg::parse(p))
        .find(|seg| seg.dst.port() == 5555)
        .expect("an answer to the SYN");
    assert_eq!(synack.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(synack.ack, 43);
}

#[test]
fn syn_to_closed_port_gets_rst_ack() {
    let mut s = stack();
    s.handle_packet(NOW, &tcp_in(4000, 81, 1000, 0, TcpFlags::SYN));
    let out = output(&mut s);
    assert_eq!(out.len(), 1);
    let rst = Seg::parse(&out[0]);
    // RFC 9293 3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    assert_eq!(rst.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(rst.seq, 0);
    assert_eq!(rst.ack, 1001);
    assert_eq!(rst.src, SocketAddrV4::new(US, 81));
    assert_eq!(rst.dst, SocketAddrV4::new(PEER, 4000));
    assert!(rst.payload.is_empty());
    assert_eq!(s.stats().resets_sent, 1);
    assert_eq!(s.connection_count(), 0);
}

#[test]
fn ack_to_closed_port_gets_rst_with_its_ack_as_seq() {
    let mut s = stack();
    s.handle_packet(
        NOW,
        &tcp_in(4000, 81, 1000, 0xdead_beef, TcpFlags::ACK | TcpFlags::PSH),
    );
    let out = output(&mut s);
    assert_eq!(out.len(), 1);
    let rst = Seg::parse(&out[0]);
    // RFC 9293 3.10.7.1: <SEQ=SEG.ACK><CTL=RST>.
    assert_eq!(rst.flags, TcpFlags::RST);
    assert_eq!(rst.seq, 0xdead_beef);
    assert_eq!(s.stats().resets_sent, 1);
}

#[test]
fn ack_to_listening_port_gets_rst() {
    // RFC 9293 3.10.7.2: in LISTEN, an ACK is answered with <SEQ=SEG.ACK><CTL=RST>.
    let mut s = stack();
    s.listen(80, 8).unwrap();
    s.handle_packet(NOW, &tcp_in(4000, 80, 1000, 77, TcpFlags::ACK));
    let out = output(&mut s);
    assert_eq!(out.len(), 1);
    let rst = Seg::parse(&out[0]);
    assert_eq!(rst.flags, TcpFlags::RST);
    assert_eq!(rst.seq, 77);
    assert_eq!(s.connection_count(), 0);
}

#[test]
fn rst_to_closed_port_gets_nothing() {
    let mut s = stack();
    s.handle_packet(NOW, &tcp_in(4000, 81, 1000, 0, TcpFlags::RST));
    s.handle_packet(
        NOW,
        &tcp_in(4000, 81, 1000, 5, TcpFlags::RST | TcpFlags::ACK),
    );
    s.listen(80, 8).unwrap();
    s.handle_packet(NOW, &tcp_in(4000, 80, 1000, 0, TcpFlags::RST));
    assert!(output(&mut s).is_empty());
    assert_eq!(s.stats().resets_sent, 0);
    assert_eq!(s.stats().tcp_in, 3);
}

#[test]
fn echo_request_gets_echo_reply() {
    let mut s = stack();
    let data = b"abcdefghijklmnopqrstuvwxyz0123456789";
    s.handle_packet(NOW, &echo_request(US, 0x1234, 7, data));
    let out = output(&mut s);
    assert_eq!(out.len(), 1);
    let p = &out[0];
    assert_eq!(p.len(), 20 + 8 + data.len());
    assert_eq!(p[0], 0x45);
    assert_eq!(p[9], 1, "ICMP");
    assert_eq!(checksum(&p[..20]), 0, "IP header checksum");
    assert_eq!(&p[12..16], &US.octets(), "from us");
    assert_eq!(&p[16..20], &PEER.octets(), "to the pinger");
    let icmp = &p[20..];
    assert_eq!(icmp[0], 0, "echo reply");
    assert_eq!(icmp[1], 0);
    assert_eq!(checksum(icmp), 0, "ICMP checksum");
    assert_eq!(&icmp[4..6], &0x1234u16.to_be_bytes());
    assert_eq!(&icmp[6..8], &7u16.to_be_bytes());
    assert_eq!(&icmp[8..], data);
    assert_eq!(s.stats().echo_replies, 1);
}

#[test]
fn packets_for_another_address_are_ignored() {
    let mut s = stack();
    s.listen(80, 8).unwrap();
    let other = Ipv4Addr::new(10, 0, 0, 99);
    s.handle_packet(NOW, &tcp_to(other, 4000, 80, 1, 0, TcpFlags::SYN));
    s.handle_packet(NOW, &tcp_to(other, 4000, 81, 1, 9, TcpFlags::ACK));
    s.handle_packet(NOW, &echo_request(other, 1, 1, b"x"));
    assert!(output(&mut s).is_empty());
    assert_eq!(s.stats().not_for_us, 3);
    assert_eq!(s.stats().resets_sent, 0);
    assert_eq!(s.stats().echo_replies, 0);
    assert_eq!(s.connection_count(), 0);
}

#[test]
fn listen_backlog_drops_extra_syns_without_cookies() {
    let mut s = stack_without_cookies();
    s.listen(80, 2).unwrap();
    for port in 4000..4003 {
        s.handle_packet(NOW, &tcp_in(port, 80, 1000, 0, TcpFlags::SYN));
    }
    let out = output(&mut s);
    let answered: Vec<u16> = out.iter().map(|p| Seg::parse(p).dst.port()).collect();
    assert_eq!(
        answered,
        vec![4000, 4001],
        "a SYN-ACK for the first two only"
    );
    for p in &out {
        assert_eq!(Seg::parse(p).flags, TcpFlags::SYN | TcpFlags::ACK);
    }
    assert_eq!(s.stats().syn_backlog_full, 1);
    assert_eq!(s.stats().resets_sent, 0, "dropped, not reset");
    assert_eq!(s.connection_count(), 2);
}

/// A SYN from PEER:`sport` with the options Linux sends.
fn syn_with_options(sport: u16, seq: u32, tsval: Option<u32>) -> Vec<u8> {
    let mut seg = segment(
        SocketAddrV4::new(PEER, sport),
        SocketAddrV4::new(US, 80),
        TcpFlags::SYN,
        seq,
        0,
        &[],
    );
    seg.options = TcpOptions {
        mss: Some(1300),
        window_scale: Some(9),
        sack_permitted: true,
        timestamp: tsval.map(|v| (v, 0)),
        ..TcpOptions::default()
    };
    encode(&seg)
}

/// The third segment of a handshake answering `syn_ack`, with `payload`.
fn ack_of(syn_ack: &Seg, seq: u32, tsval: Option<u32>, payload: &[u8]) -> Vec<u8> {
    let mut seg = segment(
        syn_ack.dst,
        syn_ack.src,
        TcpFlags::ACK,
        seq,
        syn_ack.seq.wrapping_add(1),
        payload,
    );
    seg.window = 1000;
    seg.options.timestamp = tsval.map(|v| (v, syn_ack.options.timestamp.map_or(0, |t| t.0)));
    encode(&seg)
}

/// RFC 4987 section 3.6: past a full SYN queue a SYN is answered with a
/// cookie SYN-ACK and forgotten; the returning ACK (with data) builds the
/// connection into the accept queue with the MSS, window scale and SACK
/// the cookie carried.
#[test]
fn a_full_syn_queue_answers_with_cookies_that_build_the_connection() {
    let mut s = stack();
    s.listen(80, 1).unwrap();
    s.handle_packet(NOW, &syn_with_options(4000, 1000, Some(77)));
    assert_eq!(output(&mut s).len(), 1, "an ordinary SYN-ACK");
    s.handle_packet(NOW, &syn_with_options(4001, 5000, Some(88)));
    let out = output(&mut s);
    assert_eq!(out.len(), 1);
    let cookie = Seg::parse(&out[0]);
    assert_eq!(cookie.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(cookie.ack, 5001);
    assert_eq!(cookie.options.mss, Some(s.tcp_config().mss));
    assert!(cookie.options.sack_permitted);
    assert!(cookie.options.window_scale.is_some());
    let (tsval, tsecr) = cookie.options.timestamp.expect("timestamps echoed");
    assert_eq!(tsecr, 88);
    assert_eq!(tsval & 0x3f, 9 | 0x10, "wscale 9 and SACK in the low bits");
    assert_eq!(s.connection_count(), 1, "no state kept for the cookie");
    assert_eq!(s.stats().syn_cookies_sent, 1);

    s.handle_packet(NOW, &ack_of(&cookie, 5001, Some(89), b"hello"));
    let conn = s.accept(80).expect("the cookie's connection is queued");
    assert_eq!(s.stats().syn_cookies_accepted, 1);
    let tcb = s.tcb_mut(conn).unwrap();
    assert_eq!(tcb.state(), utcp::state::State::Established);
    let info = tcb.info();
    assert_eq!(info.mss, 1300);
    assert_eq!(info.window_scales.1, 9);
    assert!(info.sack && info.timestamps);
    assert_eq!(info.peer_window, 1000 << 9);
    let mut buf = [0u8; 16];
    assert_eq!(tcb.recv(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
}

/// Without timestamps a cookie has no room for window scale or SACK: the
/// SYN-ACK offers neither and the connection goes without them (as on
/// Linux).
#[test]
fn a_cookie_without_timestamps_carries_the_mss_only() {
    let mut s = stack();
    s.listen(80, 1).unwrap();
    s.handle_packet(NOW, &syn_with_options(4000, 1000, None));
    assert_eq!(output(&mut s).len(), 1);
    s.handle_packet(NOW, &syn_with_options(4001, 5000, None));
    let cookie = Seg::parse(&output(&mut s)[0]);
    assert_eq!(cookie.options.window_scale, None);
    assert!(!cookie.options.sack_permitted);
    assert_eq!(cookie.options.timestamp, None);
    s.handle_packet(NOW, &ack_of(&cookie, 5001, None, b""));
    let conn = s.accept(80).expect("queued");
    let info = s.tcb(conn).unwrap().info();
    assert_eq!(
        (info.mss, info.window_scales, info.sack),
        (1300, (0, 0), false)
    );
}

/// An ACK with a wrong cookie is answered with a RST and counted; a
/// listener that never sent cookies does not even look (a blind guess is
/// never taken); a cookie older than two minutes is refused.
#[test]
fn bad_stale_or_unsolicited_cookies_are_refused() {
    let mut s = stack();
    s.listen(80, 1).unwrap();
    s.listen(81, 8).unwrap();
    s.handle_packet(NOW, &syn_with_options(4000, 1000, Some(1)));
    assert_eq!(output(&mut s).len(), 1);
    s.handle_packet(NOW, &syn_with_options(4001, 5000, Some(1)));
    let cookie = Seg::parse(&output(&mut s)[0]);
    let bad = Seg {
        seq: cookie.seq.wrapping_add(12345),
        ..cookie.clone()
    };
    s.handle_packet(NOW, &ack_of(&bad, 5001, Some(2), b""));
    let rst = Seg::parse(&output(&mut s)[0]);
    assert_eq!(rst.flags, TcpFlags::RST);
    assert_eq!(s.stats().syn_cookies_rejected, 1);
    assert_eq!(s.accept(80), None);

    // Port 81 sent no cookie: the same ACK is reset without a check.
    let to_81 = Seg {
        src: SocketAddrV4::new(US, 81),
        ..cookie.clone()
    };
    s.handle_packet(NOW, &ack_of(&to_81, 5001, Some(2), b""));
    assert_eq!(output(&mut s).len(), 1, "a RST");
    assert_eq!(s.stats().syn_cookies_rejected, 1, "not looked at");

    // The genuine cookie, three minutes later, is too old (while the
    // listener is still sending cookies: the queue is still full).
    let later = Instant::from_millis(3 * 60_000);
    s.handle_packet(later, &syn_with_options(4002, 7000, Some(1)));
    assert_eq!(output(&mut s).len(), 1, "a new cookie");
    s.handle_packet(later, &ack_of(&cookie, 5001, Some(2), b""));
    assert_eq!(s.stats().syn_cookies_rejected, 2);
    assert_eq!(s.stats().syn_cookies_accepted, 0);
}

/// A full accept queue still drops SYNs (no cookie: the connection would
/// have nowhere to go) and drops a cookie's ACK (the peer retransmits it).
#[test]
fn a_full_accept_queue_drops_syns_and_cookie_acks() {
    let mut s = stack();
    s.listen(80, 1).unwrap();
    s.handle_packet(NOW, &syn_with_options(4000, 1000, Some(1)));
    let first = Seg::parse(&output(&mut s)[0]);
    s.handle_packet(NOW, &syn_with_options(4001, 5000, Some(1)));
    let cookie = Seg::parse(&output(&mut s)[0]);
    s.handle_packet(NOW, &ack_of(&first, 1001, Some(2), b""));
    assert_eq!(s.stats().syn_backlog_full, 0);
    s.handle_packet(NOW, &ack_of(&cookie, 5001, Some(2), b""));
    assert!(output(&mut s).is_empty(), "dropped, not reset");
    assert_eq!(s.stats().syn_backlog_full, 1);
    // The peer, established, sends its second segment: its sequence number
    // cannot pass the cookie check, and it is dropped, not reset.
    s.handle_packet(NOW, &ack_of(&cookie, 5011, Some(2), b"0123456789"));
    assert!(output(&mut s).is_empty(), "dropped, not reset");
    assert_eq!(s.stats().syn_cookies_rejected, 1);
    s.handle_packet(NOW, &syn_with_options(4002, 9000, Some(1)));
    assert!(output(&mut s).is_empty());
    assert_eq!(s.stats().syn_backlog_full, 2);
    assert_eq!(s.stats().syn_cookies_sent, 1);
    // Once the queue has room, the retransmitted ACK gets in.
    assert!(s.accept(80).is_some());
    s.handle_packet(NOW, &ack_of(&cookie, 5001, Some(3), b""));
    assert!(s.accept(80).is_some());
    assert_eq!(s.stats().syn_cookies_accepted, 1);
}

#[test]
fn listen_twice_on_a_port_is_addr_in_use() {
    let mut s = stack();
    s.listen(80, 8).unwrap();
    assert_eq!(s.listen(80, 8).unwrap_err(), Error::PortInUse(80));
    assert_eq!(s.listen(0, 8).unwrap_err(), Error::PortZero);
    // The socket layer reports them with std's kinds.
    assert_eq!(
        io::Error::from(Error::PortInUse(80)).kind(),
        io::ErrorKind::AddrInUse
    );
    assert_eq!(
        io::Error::from(Error::PortZero).kind(),
        io::ErrorKind::InvalidInput
    );
    s.unlisten(80);
    s.listen(80, 8).unwrap();
}

#[test]
fn connect_to_invalid_address_is_invalid_input() {
    let mut s = stack();
    for bad in [
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80),
        SocketAddrV4::new(Ipv4Addr::BROADCAST, 80),
        SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 1), 80),
        SocketAddrV4::new(PEER, 0),
        SocketAddrV4::new(US, 80),
    ] {
        assert_eq!(s.connect(NOW, bad).unwrap_err(), Error::BadRemote(bad));
        let err = s.connect_from(NOW, 5000, bad).unwrap_err();
        assert_eq!(err, Error::BadRemote(bad));
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::InvalidInput);
    }
    assert_eq!(
        s.connect_from(NOW, 0, SocketAddrV4::new(PEER, 80))
            .unwrap_err(),
        Error::PortZero
    );
    assert_eq!(s.connection_count(), 0);
    assert!(output(&mut s).is_empty());
    // The same 4-tuple twice is AddrInUse.
    s.connect_from(NOW, 5000, SocketAddrV4::new(PEER, 80))
        .unwrap();
    let local = SocketAddrV4::new(US, 5000);
    let err = s
        .connect_from(NOW, 5000, SocketAddrV4::new(PEER, 80))
        .unwrap_err();
    assert_eq!(err, Error::TupleInUse(local, SocketAddrV4::new(PEER, 80)));
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::AddrInUse);
}

/// Per-socket settings: a listener's `TcpConfig` reaches the connections it
/// accepts (here a 4000-byte receive buffer and a 500-byte MSS, as
/// SO_RCVBUF/TCP_MAXSEG would set), and an MSS above the device's is capped.
#[test]
fn listener_settings_reach_accepted_connections() {
    let mut s = stack();
    let mut tcp = s.tcp_config().clone();
    tcp.recv_buffer = 4000;
    tcp.mss = 500;
    s.listen_with(80, 8, tcp).unwrap();
    s.handle_packet(NOW, &tcp_in(4000, 80, 1000, 0, TcpFlags::SYN));
    let out = output(&mut s);
    assert_eq!(out.len(), 1);
    let syn_ack = Seg::parse(&out[0]);
    assert_eq!(syn_ack.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(syn_ack.window, 4000);
    assert_eq!(syn_ack.options.mss, Some(500));

    let mut tcp = s.tcp_config().clone();
    tcp.mss = 9000;
    s.listen_with(81, 8, tcp).unwrap();
    s.handle_packet(NOW, &tcp_in(4001, 81, 1000, 0, TcpFlags::SYN));
    let out = output(&mut s);
    let syn_ack = Seg::parse(&out[0]);
    assert_eq!(syn_ack.options.mss, Some(s.tcp_config().mss));
    assert!(s.tcp_config().mss < 9000);
}

/// The half-open count of a listener (kept as a set, not a scan of the
/// connections) through a SYN flood, SYN cookies off: SYNs beyond the backlog are dropped and
/// counted; a RST, a completed handshake taken by `accept`, and SYN-ACK
/// retransmissions that give up each free their slot.
#[test]
fn syn_flood_fills_the_backlog_and_each_way_out_frees_a_slot() {
    let mut s = stack_without_cookies();
    s.listen(80, 8).unwrap();
    for port in 5000..5020 {
        s.handle_packet(NOW, &tcp_in(port, 80, 1000, 0, TcpFlags::SYN));
    }
    let out = output(&mut s);
    assert_eq!(out.len(), 8, "a SYN-ACK for each of the first eight");
    assert_eq!(s.connection_count(), 8, "8 half-open");
    assert_eq!(s.stats().syn_backlog_full, 12);
    let syn_acks: Vec<Seg> = out.iter().map(|p| Seg::parse(p)).collect();
    let answered: Vec<u16> = syn_acks.iter().map(|s| s.dst.port()).collect();
    assert_eq!(answered, (5000..5008).collect::<Vec<_>>());

    // Full: one more SYN is dropped.
    s.handle_packet(NOW, &tcp_in(6000, 80, 1000, 0, TcpFlags::SYN));
    assert_eq!(s.stats().syn_backlog_full, 13);
    assert_eq!(s.connection_count(), 8);

    // A RST (in the window) to one half-open connection frees its slot.
    s.handle_packet(NOW, &tcp_in(5003, 80, 1001, 0, TcpFlags::RST));
    assert!(output(&mut s).is_empty());
    assert_eq!(s.connection_count(), 7);
    s.handle_packet(NOW, &tcp_in(6001, 80, 1000, 0, TcpFlags::SYN));
    assert_eq!(s.connection_count(), 8, "the freed slot is taken");
    assert_eq!(output(&mut s).len(), 1);
    s.handle_packet(NOW, &tcp_in(6002, 80, 1000, 0, TcpFlags::SYN));
    assert_eq!(s.stats().syn_backlog_full, 14, "full again");

    // A completed handshake moves to the accept queue: still counted...
    let iss = syn_acks[0].seq;
    s.handle_packet(
        NOW,
        &tcp_in(5000, 80, 1001, iss.wrapping_add(1), TcpFlags::ACK),
    );
    assert!(output(&mut s).is_empty());
    s.handle_packet(NOW, &tcp_in(6003, 80, 1000, 0, TcpFlags::SYN));
    assert_eq!(s.stats().syn_backlog_full, 15, "queued counts too");
    // ...until accepted.
    let conn = s.accept(80).expect("the handshake completed");
    s.handle_packet(NOW, &tcp_in(6004, 80, 1000, 0, TcpFlags::SYN));
    assert_eq!(s.stats().syn_backlog_full, 15);
    assert_eq!(s.connection_count(), 9, "7 half-open + 1 new + 1 accepted");
    assert_eq!(output(&mut s).len(), 1);

    // The half-open ones give up once their SYN-ACK retransmissions are
    // exhausted; the timers fire through the stack's timer index.
    let mut rounds = 0;
    while s.connection_count() > 1 {
        let t = s.poll_timeout().expect("SYN-ACK timers are armed");
        s.handle_timeout(t);
        stack_output(&mut s, t);
        rounds += 1;
        assert!(rounds < 1000, "the half-open connections never gave up");
    }
    assert!(s.tcb(conn).is_some(), "the accepted one stays");
    assert_eq!(s.poll_timeout(), None, "an idle connection arms no timer");
    let full = s.stats().syn_backlog_full;
    for port in 7000..7009 {
        s.handle_packet(NOW, &tcp_in(port, 80, 1000, 0, TcpFlags::SYN));
    }
    assert_eq!(
        s.connection_count(),
        9,
        "8 half-open again + the accepted one"
    );
    assert_eq!(s.stats().syn_backlog_full, full + 1);

    // Unlisten resets them; a new listener on the port starts from zero.
    s.unlisten(80);
    assert_eq!(output(&mut s).len(), 8, "a RST for each half-open one");
    assert_eq!(s.connection_count(), 1);
    s.listen(80, 2).unwrap();
    for port in 8000..8003 {
        s.handle_packet(NOW, &tcp_in(port, 80, 1000, 0, TcpFlags::SYN));
    }
    assert_eq!(s.connection_count(), 3);
    assert_eq!(s.stats().syn_backlog_full, full + 2);
}

/// The stack's deadline follows application calls made through `tcb_mut`
/// at once, with no other call in between: an abort that cancels the
/// earliest timer uncovers the next one, and the timers still fire on time.
#[test]
fn poll_timeout_follows_application_calls_through_tcb_mut() {
    let mut s = stack();
    let t0 = Instant::from_millis(0);
    let t1 = Instant::from_millis(100);
    let a = s.connect(t0, SocketAddrV4::new(PEER, 80)).unwrap();
    assert_eq!(stack_output(&mut s, t0).len(), 1, "A's SYN");
    let rto_a = s.tcb(a).unwrap().poll_timeout().expect("A's SYN is timed");
    assert_eq!(s.poll_timeout(), Some(rto_a));
    let b = s.connect(t1, SocketAddrV4::new(PEER, 81)).unwrap();
    assert_eq!(stack_output(&mut s, t1).len(), 1, "B's SYN");
    let rto_b = s.tcb(b).unwrap().poll_timeout().expect("B's SYN is timed");
    assert!(rto_a < rto_b);
    assert_eq!(s.poll_timeout(), Some(rto_a));

    // A's timer goes away with the abort: B's is next, at once.
    s.tcb_mut(a).unwrap().abort();
    assert_eq!(s.poll_timeout(), Some(rto_b));
    // Looking at a connection through `tcb_mut` without changing it keeps
    // its deadline.
    assert!(s.tcb_mut(b).unwrap().poll_timeout().is_some());
    assert_eq!(s.poll_timeout(), Some(rto_b));
    assert!(stack_output(&mut s, t1).is_empty(), "SYN-SENT: no RST");
    assert_eq!(s.poll_timeout(), Some(rto_b));

    // Nothing is due before B's deadline; at it, B retransmits its SYN.
    s.handle_timeout(rto_a);
    assert!(stack_output(&mut s, rto_a).is_empty());
    s.handle_timeout(rto_b);
    let out = stack_output(&mut s, rto_b);
    assert_eq!(out.len(), 1);
    assert_eq!(Seg::parse(&out[0]).flags, TcpFlags::SYN);
    let next = s.poll_timeout().expect("the retransmission is timed");
    assert!(next > rto_b);
    assert_eq!(Some(next), s.tcb(b).unwrap().poll_timeout());
    s.tcb_mut(b).unwrap().abort();
    assert_eq!(s.poll_timeout(), None);
}

/// Shards of one address ([`utcp::stack::Shard`], a multi-queue TUN) pick
/// ephemeral ports only from their own share, and `owner_of_port` names the
/// shard that picked a port: the steering rule of `device::shard`.
#[test]
fn shards_pick_ephemeral_ports_from_their_own_share() {
    use utcp::stack::Shard;
    init_logger();
    for (index, count) in [(0u16, 3u16), (1, 3), (2, 3), (1, 2), (0, 1)] {
        let mut cfg = StackConfig::new(US);
        cfg.seed = Some(u64::from(index) + 11);
        cfg.shard = Shard { index, count };
        let mut s = Stack::new(cfg);
        let remote = SocketAddrV4::new(PEER, 80);
        for _ in 0..300 {
            let id = s.connect(NOW, remote).expect("a free port");
            let port = s.tcb(id).expect("the new connection").local().port();
            assert!(port >= 49152, "port {port} is ephemeral");
            if count > 1 {
                assert_eq!(
                    Shard::owner_of_port(count, port),
                    Some(index),
                    "port {port}"
                );
            }
        }
    }
    assert_eq!(
        Shard::owner_of_port(3, 4399),
        None,
        "a listener's port is every shard's"
    );
    assert_eq!(
        Shard::owner_of_port(1, 50000),
        None,
        "one shard steers nothing"
    );
}

/// A shard runs out of ports at its share: 16,384 / 4 connections to one
/// destination, then `NoEphemeralPort`.
#[test]
fn a_shard_runs_out_at_its_share_of_ports() {
    use utcp::stack::Shard;
    let mut cfg = StackConfig::new(US);
    cfg.seed = Some(5);
    cfg.shard = Shard { index: 3, count: 4 };
    let mut s = Stack::new(cfg);
    let remote = SocketAddrV4::new(PEER, 80);
    for _ in 0..4096 {
        s.connect(NOW, remote).expect("a free port");
    }
    assert!(matches!(
        s.connect(NOW, remote),
        Err(Error::NoEphemeralPort)
    ));
}

/// A connection reset by its peer while it waits in the accept queue frees
/// its backlog slot at once (and is counted); `accept` never returns it.
#[test]
fn reset_in_the_accept_queue_frees_the_slot() {
    let mut s = stack();
    s.listen(80, 1).unwrap();
    s.handle_packet(NOW, &tcp_in(5000, 80, 1000, 0, TcpFlags::SYN));
    let iss = Seg::parse(&output(&mut s)[0]).seq;
    s.handle_packet(
        NOW,
        &tcp_in(5000, 80, 1001, iss.wrapping_add(1), TcpFlags::ACK),
    );
    assert!(output(&mut s).is_empty());
    // The backlog (1) is full with the queued connection.
    s.handle_packet(NOW, &tcp_in(5001, 80, 1000, 0, TcpFlags::SYN));
    assert_eq!(s.stats().syn_backlog_full, 1);
    assert!(output(&mut s).is_empty());
    // The peer resets it before anyone accepts.
    s.handle_packet(NOW, &tcp_in(5000, 80, 1001, 0, TcpFlags::RST));
    assert!(output(&mut s).is_empty());
    assert_eq!(s.stats().closed_before_accept, 1);
    assert_eq!(s.connection_count(), 0, "forgotten");
    assert_eq!(s.accept(80), None, "accept never returns it");
    // Its slot is free: the next SYN is answered.
    s.handle_packet(NOW, &tcp_in(5002, 80, 1000, 0, TcpFlags::SYN));
    assert_eq!(output(&mut s).len(), 1, "a SYN-ACK");
    assert_eq!(s.stats().syn_backlog_full, 1);
}

/// RFC 5961 section 7: challenge ACKs are rate-limited stack-wide. 3,000
/// in-window RSTs (not at RCV.NXT) in one second draw at most 1.5 times
/// `challenge_ack_limit` (1,000) ACKs, the rest counted; the next second
/// has a fresh budget. With the limit at 0 every one is answered.
#[test]
fn challenge_acks_are_rate_limited_per_second() {
    for limit in [1000u32, 0] {
        init_logger();
        let mut cfg = StackConfig::new(US);
        cfg.seed = Some(3);
        cfg.challenge_ack_limit = limit;
        let mut s = Stack::new(cfg);
        s.listen(80, 8).unwrap();
        s.handle_packet(NOW, &tcp_in(5000, 80, 1000, 0, TcpFlags::SYN));
        let iss = Seg::parse(&output(&mut s)[0]).seq;
        s.handle_packet(NOW, &tcp_in(5000, 80, 1001, iss + 1, TcpFlags::ACK));
        assert!(output(&mut s).is_empty());
        let blind_rsts = |s: &mut Stack, at: Instant| {
            (0..3000)
                .map(|i| {
                    s.handle_packet(at, &tcp_in(5000, 80, 1101 + i, 0, TcpFlags::RST));
                    stack_output(s, at).len()
                })
                .sum::<usize>()
        };
        let acks = blind_rsts(&mut s, NOW);
        let limited = s.stats().challenge_acks_limited as usize;
        if limit == 0 {
            assert_eq!((acks, limited), (3000, 0), "no limit");
            continue;
        }
        assert!(
            (500..1500).contains(&acks),
            "{acks} challenge ACKs in one second"
        );
        assert_eq!(acks + limited, 3000);
        let later = blind_rsts(&mut s, Instant::from_millis(1000));
        assert!(
            (500..1500).contains(&later),
            "a new second, a new budget: {later}"
        );
        assert_eq!(s.connection_count(), 1, "no blind RST reset the connection");
    }
}

/// `n` connections accepted on port 80 from ports 6000.., the peer
/// announcing `window`; their ids.
fn accepted(s: &mut Stack, n: u16, window: u16) -> Vec<utcp::stack::ConnId> {
    (0..n)
        .map(|i| {
            s.handle_packet(NOW, &tcp_in(6000 + i, 80, 1000, 0, TcpFlags::SYN));
            let iss = Seg::parse(&output(s)[0]).seq;
            let mut ack = segment(
                SocketAddrV4::new(PEER, 6000 + i),
                SocketAddrV4::new(US, 80),
                TcpFlags::ACK,
                1001,
                iss.wrapping_add(1),
                &[],
            );
            ack.window = window;
            s.handle_packet(NOW, &encode(&ack));
            s.accept(80).expect("handshake done")
        })
        .collect()
}

/// Orphans are bounded in number: past `max_orphans` the oldest is reset
/// (and counted); the newest ones live on.
#[test]
fn too_many_orphans_reset_the_oldest() {
    let mut cfg = StackConfig::new(US);
    cfg.seed = Some(9);
    cfg.max_orphans = 10;
    let mut s = Stack::new(cfg);
    s.listen(80, 64).unwrap();
    let ids = accepted(&mut s, 30, 65535);
    for &id in &ids {
        // Our FIN goes out and is never acknowledged: FIN-WAIT-1 for a while.
        s.release(id);
    }
    let out = output(&mut s);
    let rsts: Vec<u16> = out
        .iter()
        .map(|p| Seg::parse(p))
        .filter(|g| g.flags.contains(TcpFlags::RST))
        .map(|g| g.dst.port())
        .collect();
    assert_eq!(s.stats().orphans_reset, 20);
    assert_eq!(rsts, (6000..6020).collect::<Vec<_>>(), "the oldest 20");
    assert_eq!(s.connection_count(), 10);
}

/// Orphans are bounded in the data they hold: orphans behind a zero window
/// with 5,000 bytes each, `max_orphan_bytes` 20,000: the oldest are reset
/// until what is left fits.
#[test]
fn orphans_holding_too_much_data_reset_the_oldest() {
    let mut cfg = StackConfig::new(US);
    cfg.seed = Some(10);
    cfg.max_orphan_bytes = 20_000;
    let mut s = Stack::new(cfg);
    s.listen(80, 128).unwrap();
    let ids = accepted(&mut s, 64, 0);
    for &id in &ids {
        let tcb = s.tcb_mut(id).expect("live");
        assert_eq!(tcb.send(&[7u8; 5000]).expect("room"), 5000);
        s.release(id);
    }
    assert_eq!(s.stats().orphans_reset, 60, "4 x 5,000 bytes fit");
    let _ = output(&mut s);
    assert_eq!(s.connection_count(), 4);
}

/// A stack in any-IP mode ([`StackConfig::any_ip`]).
fn any_ip_stack(filter: Option<utcp::stack::AcceptFilter>) -> Stack {
    init_logger();
    let mut cfg = StackConfig::new(US);
    cfg.seed = Some(7);
    cfg.any_ip = true;
    cfg.accept_filter = filter;
    Stack::new(cfg)
}

/// Any-IP mode: the any-IP listener takes a SYN to any address and port,
/// answers from the address the client dialled, and the accepted
/// connection's local address is that original destination; an ordinary
/// listener keeps its port (for every address); ICMP echo is answered for
/// any address.
#[test]
fn any_ip_listener_takes_any_destination_and_keeps_it() {
    use utcp::stack::ANY_PORT;
    let mut s = any_ip_stack(None);
    let tcp = s.tcp_config().clone();
    s.listen_any(8, tcp).unwrap();
    s.listen(80, 8).unwrap();
    let far = Ipv4Addr::new(93, 184, 216, 34);
    s.handle_packet(NOW, &tcp_to(far, 4000, 443, 1000, 0, TcpFlags::SYN));
    let syn_ack = Seg::parse(&output(&mut s)[0]);
    assert_eq!(
        syn_ack.src,
        SocketAddrV4::new(far, 443),
        "from the dialled address"
    );
    assert_eq!(syn_ack.flags, TcpFlags::SYN | TcpFlags::ACK);
    let ack = tcp_to(
        far,
        4000,
        443,
        1001,
        syn_ack.seq.wrapping_add(1),
        TcpFlags::ACK,
    );
    s.handle_packet(NOW, &ack);
    let conn = s.accept(ANY_PORT).expect("accepted by the any-IP listener");
    assert_eq!(s.tcb(conn).unwrap().local(), SocketAddrV4::new(far, 443));
    assert_eq!(s.tcb(conn).unwrap().remote(), SocketAddrV4::new(PEER, 4000));

    // Port 80 belongs to its own listener, whatever the address.
    s.handle_packet(NOW, &tcp_to(far, 4001, 80, 1000, 0, TcpFlags::SYN));
    let syn_ack = Seg::parse(&output(&mut s)[0]);
    s.handle_packet(
        NOW,
        &tcp_to(
            far,
            4001,
            80,
            1001,
            syn_ack.seq.wrapping_add(1),
            TcpFlags::ACK,
        ),
    );
    assert!(s.accept(80).is_some());
    assert_eq!(s.accept(ANY_PORT), None);

    s.handle_packet(NOW, &echo_request(Ipv4Addr::new(1, 2, 3, 4), 9, 1, b"ping"));
    let out = output(&mut s);
    assert_eq!(out.len(), 1, "an echo reply");
    assert_eq!(&out[0][12..16], &[1, 2, 3, 4], "from the pinged address");
    assert_eq!(s.stats().not_for_us, 0);
}

/// The accept filter refuses SYNs to the any-IP listener with a RST
/// (counted); without any-IP mode there is no any-IP listener, and packets
/// for other addresses are not ours.
#[test]
fn any_ip_accept_filter_refuses_with_a_reset() {
    use utcp::stack::{AcceptFilter, ANY_PORT};
    let filter = AcceptFilter::new(|dialled, _peer| dialled.port() != 25);
    let mut s = any_ip_stack(Some(filter));
    let tcp = s.tcp_config().clone();
    s.listen_any(8, tcp.clone()).unwrap();
    let far = Ipv4Addr::new(198, 18, 0, 9);
    s.handle_packet(NOW, &tcp_to(far, 4000, 25, 1000, 0, TcpFlags::SYN));
    let rst = Seg::parse(&output(&mut s)[0]);
    assert_eq!(rst.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(rst.src, SocketAddrV4::new(far, 25));
    assert_eq!(s.stats().syns_filtered, 1);
    assert_eq!(s.connection_count(), 0);
    s.handle_packet(NOW, &tcp_to(far, 4000, 587, 1000, 0, TcpFlags::SYN));
    assert_eq!(
        Seg::parse(&output(&mut s)[0]).flags,
        TcpFlags::SYN | TcpFlags::ACK
    );
    s.unlisten(ANY_PORT);
    assert!(!s.is_listening(ANY_PORT));

    let mut plain = stack();
    assert!(matches!(plain.listen_any(8, tcp), Err(Error::NotAnyIp)));
    plain.handle_packet(NOW, &tcp_to(far, 4000, 80, 1000, 0, TcpFlags::SYN));
    assert_eq!(plain.stats().not_for_us, 1);
}
