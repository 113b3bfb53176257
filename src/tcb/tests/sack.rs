//! Selective acknowledgment: the receiver's SACK blocks (RFC 2018) and the
//! sender's SACK-based loss recovery (RFC 6675).

use super::*;

// ----------------------------------------------------------------------
// Receiver side (RFC 2018)
// ----------------------------------------------------------------------

/// RFC 2018 section 2: SACK-permitted goes on our SYN when configured, and
/// on the SYN-ACK only if the peer's SYN offered it.
#[test]
fn sack_permitted_negotiation_rfc2018_2() {
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), opts_cfg(false, true, false));
    let syn = out(&mut tcb, T0);
    assert!(syn[0].options.sack_permitted);
    let synack = |offer: bool, cfg: TcpConfig| {
        let mut tcb = Tcb::accept(&peer_syn_opts(None, offer), SeqNum(ISS), cfg);
        let segs = out(&mut tcb, T0);
        assert_eq!(segs.len(), 1);
        segs[0].options.sack_permitted
    };
    assert!(synack(true, opts_cfg(false, true, false)));
    assert!(!synack(false, opts_cfg(false, true, false)));
    assert!(!synack(true, opts_cfg(false, false, false)));
    // With timestamps too, both fit.
    let mut tcb = Tcb::accept(
        &peer_syn_opts(Some(PEER_TS), true),
        SeqNum(ISS),
        opts_cfg(true, true, false),
    );
    let segs = out(&mut tcb, T0);
    assert!(segs[0].options.sack_permitted);
    assert_eq!(segs[0].options.timestamp, Some((ISS, PEER_TS)));
}

/// RFC 2018 section 4: out-of-order segments are answered with duplicate
/// ACKs carrying SACK blocks; the first block holds the segment that
/// triggered the ACK; once the holes are filled, no blocks.
#[test]
fn sack_blocks_most_recent_first_rfc2018_4() {
    let mut tcb = established_with(
        &peer_syn_opts(None, true),
        ISS,
        opts_cfg(false, true, false),
    );
    let p = PEER_ISS + 1;
    let feed = |tcb: &mut Tcb, off: u32, t: u64| {
        seg_in(tcb, at(t), &from_peer(ACK, p + off, ISS + 1, &data(100)));
        let segs = out(tcb, at(t));
        assert_eq!(segs.len(), 1, "{segs:?}");
        segs[0].clone()
    };
    let a = feed(&mut tcb, 100, 1);
    assert_eq!((a.ack, a.window), (p, WIN));
    assert_eq!(sacks(&a), vec![(p + 100, p + 200)]);
    let a = feed(&mut tcb, 500, 2);
    assert_eq!(sacks(&a), vec![(p + 500, p + 600), (p + 100, p + 200)]);
    let a = feed(&mut tcb, 300, 3);
    assert_eq!(sacks(&a)[0], (p + 300, p + 400));
    assert_eq!(sacks(&a).len(), 3);
    // A segment joining two blocks: the merged block comes first.
    let a = feed(&mut tcb, 200, 4);
    assert_eq!(sacks(&a), vec![(p + 100, p + 400), (p + 500, p + 600)]);
    assert_eq!(a.ack, p);
    // Filling the first hole: cumulative ACK, the rest still SACKed.
    let a = feed(&mut tcb, 0, 5);
    assert_eq!((a.ack, a.window), (p + 400, WIN - 400));
    assert_eq!(sacks(&a), vec![(p + 500, p + 600)]);
    // Filling the last hole: no SACK option at all.
    let a = feed(&mut tcb, 400, 6);
    assert_eq!(a, ack(ISS + 1, p + 600, WIN - 600));
}

/// RFC 2018 section 3: at most 4 blocks fit the option space, 3 alongside
/// timestamps; the first is always the latest segment's (section 4).
#[test]
fn sack_block_count_limits_rfc2018_3() {
    for ts in [false, true] {
        let syn = peer_syn_opts(ts.then_some(PEER_TS), true);
        let mut tcb = established_rtt(&syn, opts_cfg(ts, true, false), 0);
        let p = PEER_ISS + 1;
        let mut last = Vec::new();
        for k in 1..=6u32 {
            let mut s = from_peer(ACK, p + 100 * k, ISS + 1, &[]);
            let d = data(50);
            s.payload = &d;
            if ts {
                s = with_ts(s, PEER_TS + k, ISS);
            }
            seg_in(&mut tcb, at(u64::from(k)), &s);
            last = out(&mut tcb, at(u64::from(k)));
            assert_eq!(last.len(), 1);
            let b = sacks(&last[0]);
            assert_eq!(b[0], (p + 100 * k, p + 100 * k + 50), "ts={ts} k={k}");
            assert_eq!(
                b.len(),
                (k as usize).min(if ts { 3 } else { 4 }),
                "ts={ts} k={k}"
            );
        }
        assert_eq!(last[0].options.timestamp.is_some(), ts);
    }
}

/// RFC 2018 section 4: "the SACK option SHOULD be filled out by repeating
/// the most recently reported SACK blocks", so that each block is reported
/// in at least three successive ACKs even with more blocks than fit.
#[test]
fn sack_blocks_repeat_most_recent_rfc2018_4() {
    for ts in [false, true] {
        let syn = peer_syn_opts(ts.then_some(PEER_TS), true);
        let mut tcb = established_rtt(&syn, opts_cfg(ts, true, false), 0);
        let p = PEER_ISS + 1;
        let mut reports: Vec<Vec<(u32, u32)>> = Vec::new();
        for k in 1..=6u32 {
            let d = data(50);
            let mut s = from_peer(ACK, p + 100 * k, ISS + 1, &d);
            if ts {
                s = with_ts(s, PEER_TS + k, ISS);
            }
            seg_in(&mut tcb, at(u64::from(k)), &s);
            let segs = out(&mut tcb, at(u64::from(k)));
            reports.push(sacks(&segs[0]));
        }
        // Blocks 1..=4 (each reported first once) appear in the two ACKs
        // after their own too (three with timestamps: blocks 1..=4 need
        // reports k, k+1, k+2 <= 6).
        for k in 1..=4u32 {
            let block = (p + 100 * k, p + 100 * k + 50);
            for r in (k - 1)..(k + 2) {
                assert!(
                    reports[r as usize].contains(&block),
                    "ts={ts}: block {k} missing from ACK {} {:?}",
                    r + 1,
                    reports[r as usize]
                );
            }
        }
    }
}

/// RFC 5681 section 4.2 and section 2 (duplicate ACK definition): each
/// out-of-order segment gets its own duplicate ACK even when several are
/// processed before dispatch, and they repeat the same window field.
#[test]
fn sack_one_dup_ack_per_out_of_order_segment_rfc5681_4_2() {
    let mut tcb = established_with(
        &peer_syn_opts(None, true),
        ISS,
        opts_cfg(false, true, false),
    );
    let p = PEER_ISS + 1;
    seg_in(&mut tcb, at(1), &from_peer(ACK, p, ISS + 1, &data(2000)));
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![ack(ISS + 1, p + 2000, WIN - 2000)]
    );
    for k in 0..3u32 {
        seg_in(
            &mut tcb,
            at(2),
            &from_peer(ACK, p + 3000 + 200 * k, ISS + 1, &data(100)),
        );
    }
    // The application reads in between: the window could grow, but the
    // duplicates must not look like window updates.
    assert_eq!(read_all(&mut tcb).len(), 2000);
    let segs = out(&mut tcb, at(2));
    assert_eq!(segs.len(), 4, "{segs:?}");
    for s in &segs[..3] {
        assert_eq!((s.seq, s.ack, s.window), (ISS + 1, p + 2000, WIN - 2000));
        assert_eq!(sacks(s)[0], (p + 3400, p + 3500));
        assert_eq!(sacks(s).len(), 3);
    }
    // Then the window update the read earned (RFC 1122 4.2.3.3), which the
    // duplicates could not carry.
    assert_eq!((segs[3].ack, segs[3].window), (p + 2000, WIN));
}

// ----------------------------------------------------------------------
// Sender side (RFC 6675)
// ----------------------------------------------------------------------

/// RFC 6675 section 5 step (2) (IsLost(HighACK + 1)): more than
/// 2 * SMSS SACKed above SND.UNA starts loss recovery even before the
/// third duplicate ACK; exactly 2 segments' worth does not.
#[test]
fn sack_recovery_on_sacked_bytes_rfc6675_5() {
    let (mut tcb, a) = sack_flight(10, at(200));
    seg_in(&mut tcb, at(300), &sack_ack(sg(0), &[(sg(1), sg(3))]));
    assert!(!tcb.in_recovery());
    assert_eq!(out(&mut tcb, at(300)), vec![]);
    seg_in(&mut tcb, at(301), &sack_ack(sg(0), &[(sg(1), sg(4))]));
    assert_eq!(tcb.stats().dup_acks, 2);
    assert!(tcb.in_recovery());
    assert_eq!(tcb.stats().fast_retransmits, 1);
    assert_eq!(tcb.congestion().ssthresh(), 5 * MSS);
    // Only the lost segment: the pipe (6 above the SACKs + 1 resent) is full.
    assert_eq!(out(&mut tcb, at(301)), vec![seg_i(&a, 0)]);
    // Full ACK: recovery ends with cwnd = ssthresh (RFC 6675 section 5, RFC 6582).
    seg_in(&mut tcb, at(400), &sack_ack(sg(10), &[]));
    assert!(!tcb.in_recovery());
    assert_eq!(tcb.congestion().cwnd(), 5 * MSS);
    assert!(tcb.all_acked());
}

/// RFC 6675 section 5 (NextSeg rule 1, and the pipe): several holes are
/// resent within one round trip as SACKs drain the pipe -- not one per RTT
/// as NewReno would -- and a partial ACK does not resend a hole again.
#[test]
fn sack_recovery_resends_several_holes_per_rtt_rfc6675_5() {
    // Segments 0, 2 and 4 are lost.
    let (mut tcb, a) = sack_flight(10, at(200));
    seg_in(&mut tcb, at(300), &sack_ack(sg(0), &[(sg(1), sg(2))]));
    seg_in(
        &mut tcb,
        at(301),
        &sack_ack(sg(0), &[(sg(3), sg(4)), (sg(1), sg(2))]),
    );
    assert_eq!(out(&mut tcb, at(301)), vec![]);
    let blocks = |upto: u32| [(sg(5), sg(upto)), (sg(3), sg(4)), (sg(1), sg(2))];
    seg_in(&mut tcb, at(302), &sack_ack(sg(0), &blocks(6)));
    assert_eq!(tcb.stats().fast_retransmits, 1);
    assert_eq!(out(&mut tcb, at(302)), vec![seg_i(&a, 0)]);
    seg_in(&mut tcb, at(303), &sack_ack(sg(0), &blocks(7)));
    assert_eq!(out(&mut tcb, at(303)), vec![seg_i(&a, 2)]);
    seg_in(&mut tcb, at(304), &sack_ack(sg(0), &blocks(8)));
    assert_eq!(out(&mut tcb, at(304)), vec![seg_i(&a, 4)]);
    assert_eq!(tcb.stats().sack_retransmits, 2);
    for t in [305, 306] {
        seg_in(&mut tcb, at(t), &sack_ack(sg(0), &blocks(t as u32 - 296)));
        assert_eq!(out(&mut tcb, at(t)), vec![], "nothing is left to resend");
    }
    // The first retransmission arrives: a partial ACK; 2 and 4 are on their way.
    seg_in(
        &mut tcb,
        at(400),
        &sack_ack(sg(2), &[(sg(3), sg(4)), (sg(5), sg(10))]),
    );
    assert_eq!(out(&mut tcb, at(400)), vec![]);
    assert_eq!(tcb.stats().partial_ack_retransmits, 0);
    seg_in(&mut tcb, at(401), &sack_ack(sg(10), &[]));
    assert!(!tcb.in_recovery());
    assert_eq!(tcb.congestion().cwnd(), tcb.congestion().ssthresh());
    assert_eq!(tcb.stats().retransmits_timeout, 0);
}

/// RFC 6675 section 5 (NextSeg: only octets not SACKed): a hole that gets
/// SACKed before its turn (reordering) is never resent.
#[test]
fn sack_recovery_skips_sacked_holes_rfc6675_5() {
    // Segments 0, 2 and 4 missing; 2 turns up late.
    let (mut tcb, a) = sack_flight(10, at(200));
    seg_in(&mut tcb, at(300), &sack_ack(sg(0), &[(sg(1), sg(2))]));
    seg_in(
        &mut tcb,
        at(301),
        &sack_ack(sg(0), &[(sg(3), sg(4)), (sg(1), sg(2))]),
    );
    seg_in(
        &mut tcb,
        at(302),
        &sack_ack(sg(0), &[(sg(5), sg(6)), (sg(3), sg(4)), (sg(1), sg(2))]),
    );
    let mut sent = out(&mut tcb, at(302));
    seg_in(
        &mut tcb,
        at(303),
        &sack_ack(sg(0), &[(sg(1), sg(4)), (sg(5), sg(7))]),
    );
    sent.extend(out(&mut tcb, at(303)));
    for t in 304..=306 {
        seg_in(
            &mut tcb,
            at(t),
            &sack_ack(sg(0), &[(sg(1), sg(4)), (sg(5), sg(t as u32 - 296))]),
        );
        sent.extend(out(&mut tcb, at(t)));
    }
    assert_eq!(sent, vec![seg_i(&a, 0), seg_i(&a, 4)]);
}

/// RFC 6675 section 5.1 and RFC 2018 section 8: after a timeout the
/// go-back retransmission (one segment per cwnd, RFC 5681 (4)) skips the
/// ranges the peer SACKed.
#[test]
fn sack_rto_go_back_skips_sacked_rfc6675_5_1() {
    let (mut tcb, a) = sack_flight(5, at(200));
    seg_in(&mut tcb, at(300), &sack_ack(sg(0), &[(sg(1), sg(2))]));
    seg_in(
        &mut tcb,
        at(301),
        &sack_ack(sg(0), &[(sg(3), sg(4)), (sg(1), sg(2))]),
    );
    assert!(!tcb.in_recovery());
    assert_eq!(out(&mut tcb, at(301)), vec![]);
    assert_eq!(tcb.poll_timeout(), Some(at(1200)));
    tcb.handle_timeout(at(1200));
    let mut sent = out(&mut tcb, at(1200));
    assert_eq!(sent, vec![seg_i(&a, 0)]);
    // The peer now holds 0..2 and 3.
    seg_in(&mut tcb, at(1300), &sack_ack(sg(2), &[(sg(3), sg(4))]));
    sent = out(&mut tcb, at(1300));
    seg_in(&mut tcb, at(1400), &sack_ack(sg(4), &[]));
    sent.extend(out(&mut tcb, at(1400)));
    assert_eq!(sent, vec![seg_i(&a, 2), seg_i(&a, 4)]);
    seg_in(&mut tcb, at(1500), &sack_ack(sg(5), &[]));
    assert!(tcb.all_acked());
}

/// RFC 6675 section 2 (duplicate ACK with SACK): an ACK that brings new
/// SACK information counts as a duplicate even if its window changed;
/// without SACK news it is a window update (RFC 5681 section 2).
#[test]
fn sack_news_counts_as_dup_ack_despite_window_rfc6675_2() {
    let (mut tcb, _) = sack_flight(6, at(200));
    let mut s = sack_ack(sg(0), &[(sg(1), sg(2))]);
    s.window = 60_000;
    seg_in(&mut tcb, at(300), &s);
    assert_eq!(tcb.stats().dup_acks, 1);
    let mut s = sack_ack(sg(0), &[(sg(1), sg(2))]);
    s.window = 50_000;
    seg_in(&mut tcb, at(301), &s);
    assert_eq!(tcb.stats().dup_acks, 1, "old SACK news and a new window");
    let mut s = sack_ack(sg(0), &[(sg(3), sg(4)), (sg(1), sg(2))]);
    s.window = 40_000;
    seg_in(&mut tcb, at(302), &s);
    assert_eq!(tcb.stats().dup_acks, 2);
    assert_eq!(tcb.peer_window(), 40_000);
}

/// RFC 6675 section 5 and RFC 8985 section 6.2 (lost retransmissions): in
/// recovery, when later segments keep being SACKed more than 2*SRTT after
/// SND.UNA was resent, that retransmission was lost as well: resend it.
#[test]
fn sack_lost_retransmission_resent_rfc6675_5() {
    // 14 segments, 10 sent (IW); segment 0 lost.
    let (mut tcb, a) = sack_flight(14, at(100));
    seg_in(&mut tcb, at(200), &sack_ack(sg(0), &[(sg(1), sg(4))]));
    assert_eq!(out(&mut tcb, at(200)), vec![seg_i(&a, 0)]);
    // The rest of the window arrives: the pipe drains, new data may go.
    seg_in(&mut tcb, at(210), &sack_ack(sg(0), &[(sg(1), sg(10))]));
    let new = out(&mut tcb, at(210));
    assert_eq!(new, (10..14).map(|i| seg_i(&a, i)).collect::<Vec<_>>());
    // Less than 2*SRTT (200 ms) after the retransmission: keep waiting.
    seg_in(&mut tcb, at(350), &sack_ack(sg(0), &[(sg(1), sg(11))]));
    assert_eq!(out(&mut tcb, at(350)), vec![]);
    assert_eq!(tcb.stats().lost_retransmits, 0);
    assert!(tcb.poll_timeout().unwrap() > at(420));
    // More than 2*SRTT after it, later data is SACKed but not SND.UNA.
    seg_in(&mut tcb, at(420), &sack_ack(sg(0), &[(sg(1), sg(12))]));
    assert_eq!(tcb.stats().lost_retransmits, 1);
    assert_eq!(out(&mut tcb, at(420)), vec![seg_i(&a, 0)]);
    seg_in(&mut tcb, at(520), &sack_ack(sg(14), &[]));
    assert!(!tcb.in_recovery());
    assert_eq!(tcb.congestion().cwnd(), tcb.congestion().ssthresh());
    assert_eq!(tcb.stats().retransmits_timeout, 0);
    assert!(tcb.all_acked());
}
