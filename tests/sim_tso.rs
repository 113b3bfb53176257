//! TCP segmentation offload over the simulated link: a stack configured
//! for super-segments (`TcpConfig::max_super_segment`, partial checksums)
//! talks to a plain one. The link either cuts each super-segment as a NIC
//! does (`Segmentation::Split`) or carries it whole, as a TUN carries it
//! into the kernel (`Segmentation::Whole`). Each test checks byte-exact
//! delivery and what the super-segments may and may not be: within the
//! congestion window and the peer's window, retransmissions one MSS at a
//! time, a lost super-segment recovered.

mod sim_util;

use std::time::Duration;

use utcp::sim::{Dir, Fate, Segmentation, SimNet, Traced};
use utcp::testing::{init_logger, pattern, tcp_segment};

use sim_util::{configs, establish, Side, Stream, LATENCY};

/// The payload of a full-sized segment: MSS 1460 less 12 bytes of timestamps.
const MSS: usize = 1448;

/// A pair where `a` sends super-segments of up to 64 KB; `b` is plain and
/// receives into `recv_buffer` bytes.
fn tso_net(segmentation: Segmentation, recv_buffer: usize) -> SimNet {
    let (mut ca, mut cb) = configs();
    ca.tcp.checksum_offload = true;
    ca.tcp.max_super_segment = 65_535;
    cb.tcp.recv_buffer = recv_buffer;
    let mut n = SimNet::new(ca, cb, LATENCY);
    n.set_segmentation(segmentation);
    n.set_trace(true);
    n
}

/// Sends `len` bytes from `a` to `b` and closes; asserts byte-exact delivery.
fn transfer(n: &mut SimNet, len: usize) {
    let (c, s) = establish(n);
    let mut stream = Stream::new(Side::A, c, s, pattern(len, 9)).closing();
    let ok = n.run_until(Duration::from_secs(600), |n| {
        stream.pump(n);
        stream.done()
    });
    assert!(ok, "got {} of {len} bytes", stream.got.len());
    stream.check();
}

/// The payload length and sequence number of each data packet `a` sent.
fn data_from_a(trace: &[Traced]) -> Vec<(u32, usize)> {
    trace
        .iter()
        .filter(|t| t.dir == Dir::AtoB)
        .filter_map(|t| tcp_segment(&t.bytes))
        .filter(|s| !s.payload.is_empty())
        .map(|s| (s.seq.0, s.payload.len()))
        .collect()
}

#[test]
fn split_super_segments_arrive_byte_exact_as_mss_packets() {
    init_logger();
    let mut n = tso_net(Segmentation::Split, 512 * 1024);
    transfer(&mut n, 4 << 20);
    let data = data_from_a(&n.trace);
    assert!(
        data.iter().all(|&(_, len)| len <= MSS),
        "a piece over one MSS"
    );
    // Every piece was checksummed right: the receiver dropped none.
    assert!(n.b.stats().dropped.is_empty(), "{:?}", n.b.stats().dropped);
    // Far fewer packets left the stack than segments reached the wire.
    let packets = n.a.stats().packets_out as usize;
    assert!(
        packets * 4 < data.len(),
        "{packets} packets out for {} data segments: no super-segments",
        data.len()
    );
}

#[test]
fn whole_super_segments_are_cut_at_mss_and_fit_the_windows() {
    init_logger();
    let window = 24 * 1024;
    let mut n = tso_net(Segmentation::Whole, window);
    transfer(&mut n, 2 << 20);
    let data = data_from_a(&n.trace);
    let supers: Vec<usize> = data.iter().map(|&(_, l)| l).filter(|&l| l > MSS).collect();
    assert!(supers.len() > 20, "only {} super-segments", supers.len());
    for &(_, len) in &data {
        assert!(
            len <= window,
            "a {len}-byte segment beyond the {window}-byte window"
        );
    }
    // All but the very last segment of the data are whole MSS pieces, as
    // they would have been one by one.
    for &(_, len) in &data[..data.len() - 1] {
        assert_eq!(len % MSS, 0, "a {len}-byte super-segment with a small tail");
    }
    assert!(n.b.stats().dropped.is_empty(), "{:?}", n.b.stats().dropped);
}

#[test]
fn the_first_flight_stays_within_the_initial_window() {
    init_logger();
    let mut n = tso_net(Segmentation::Whole, 512 * 1024);
    transfer(&mut n, 256 * 1024);
    let first = n
        .trace
        .iter()
        .find(|t| {
            t.dir == Dir::AtoB && tcp_segment(&t.bytes).is_some_and(|s| !s.payload.is_empty())
        })
        .map(|t| t.sent)
        .expect("data was sent");
    let flight: usize = n
        .trace
        .iter()
        .filter(|t| t.dir == Dir::AtoB && t.sent == first)
        .filter_map(|t| tcp_segment(&t.bytes))
        .map(|s| s.payload.len())
        .sum();
    // RFC 6928: min(10 * MSS, max(2 * MSS, 14,600 bytes)).
    let iw = (10 * MSS).min((2 * MSS).max(14_600));
    assert!(
        flight > MSS,
        "the first flight ({flight} bytes) was not a super-segment"
    );
    assert!(
        flight <= iw,
        "first flight of {flight} bytes beyond the initial window {iw}"
    );
}

/// Loses the super-segments `a` sends whose (1-based) ordinal is in `lost`.
fn lose_super_segments(n: &mut SimNet, lost: &'static [u32]) {
    let mut supers = 0;
    n.set_filter(move |dir, pkt| {
        if dir == Dir::AtoB && tcp_segment(pkt).is_some_and(|s| s.payload.len() > MSS) {
            supers += 1;
            if lost.contains(&supers) {
                return Fate::Drop;
            }
        }
        Fate::Deliver
    });
}

/// Asserts that every retransmission in the trace (data that starts below
/// the highest sequence number sent so far) is at most one MSS, and that
/// there was one.
fn retransmissions_are_mss_sized(trace: &[Traced]) {
    let mut high: Option<u32> = None;
    let mut retransmitted = 0;
    for (seq, len) in data_from_a(trace) {
        let end = seq.wrapping_add(len as u32);
        if high.is_some_and(|h| (seq.wrapping_sub(h) as i32) < 0) {
            retransmitted += 1;
            assert!(len <= MSS, "a {len}-byte retransmission");
        }
        if high.is_none_or(|h| (end.wrapping_sub(h) as i32) > 0) {
            high = Some(end);
        }
    }
    assert!(retransmitted > 0, "nothing was retransmitted");
}

#[test]
fn a_lost_super_segment_is_recovered_one_mss_at_a_time() {
    init_logger();
    let mut n = tso_net(Segmentation::Whole, 512 * 1024);
    lose_super_segments(&mut n, &[4, 12]);
    transfer(&mut n, 2 << 20);
    assert_eq!(n.dropped[Dir::AtoB as usize], 2);
    retransmissions_are_mss_sized(&n.trace);
}

#[test]
fn a_lost_burst_without_sack_goes_back_n_one_mss_at_a_time() {
    init_logger();
    let (mut ca, mut cb) = configs();
    ca.tcp.checksum_offload = true;
    ca.tcp.max_super_segment = 65_535;
    ca.tcp.sack = false;
    cb.tcp.sack = false;
    let mut n = SimNet::new(ca, cb, LATENCY);
    n.set_segmentation(Segmentation::Whole);
    n.set_trace(true);
    // A burst: the 3rd super-segment and everything up to the 9th, so
    // recovery ends in a timeout and goes back N in slow start.
    lose_super_segments(&mut n, &[3, 4, 5, 6, 7, 8, 9]);
    transfer(&mut n, 1 << 20);
    assert!(n.a.stats().packets_out > 0);
    retransmissions_are_mss_sized(&n.trace);
}

#[test]
fn random_loss_of_cut_pieces_is_recovered() {
    init_logger();
    let mut n = tso_net(Segmentation::Split, 512 * 1024);
    let mut link = n.link(Dir::AtoB).clone();
    link.loss = 0.02;
    n.set_link_dir(Dir::AtoB, link);
    n.set_seed(7);
    transfer(&mut n, 2 << 20);
    assert!(n.link_stats(Dir::AtoB).dropped_loss > 0, "no loss happened");
    assert!(n.a.stats().packets_out > 0);
}
