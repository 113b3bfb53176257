//! Loss recovery without SACK: the retransmission timer (RFC 6298), fast
//! retransmit and NewReno (RFC 5681, RFC 6582), giving up after the maximum
//! number of retransmissions, and the tail loss probe (RFC 8985 section 7).
//! SACK-based recovery (RFC 6675) is in `sack.rs`.

use super::*;

// ----------------------------------------------------------------------
// Retransmission timer, fast retransmit, NewReno
// ----------------------------------------------------------------------

/// RFC 6298 (5.4)-(5.6): on RTO resend from SND.UNA and double the RTO;
/// RFC 6298 section 3 (Karn): the ACK of a retransmission is no RTT sample,
/// so the backed-off RTO stays (5.7) until a clean sample arrives.
#[test]
fn established_rto_retransmit() {
    let mut tcb = established();
    assert_eq!(tcb.rtt().rto(), RTO);
    let srtt = tcb.rtt().srtt();
    let a = data(100);
    tcb.send(&a).unwrap();
    let first = out(&mut tcb, at(1000));
    assert_eq!(first, vec![seg(ACK | PSH, ISS + 1, PEER_ISS + 1, WIN, &a)]);
    assert_eq!(tcb.poll_timeout(), Some(at(1200)));
    tcb.handle_timeout(at(1199));
    assert_eq!(out(&mut tcb, at(1199)), vec![]);
    tcb.handle_timeout(at(1200));
    assert_eq!(out(&mut tcb, at(1200)), first);
    assert_eq!(tcb.stats().retransmits_timeout, 1);
    assert_eq!(tcb.poll_timeout(), Some(at(1600)));
    // RFC 5681 (4): cwnd is one segment after a timeout.
    assert_eq!(tcb.congestion().cwnd(), 1460);

    seg_in(
        &mut tcb,
        at(1250),
        &from_peer(ACK, PEER_ISS + 1, ISS + 101, &[]),
    );
    assert!(tcb.all_acked());
    assert_eq!(tcb.poll_timeout(), None);
    assert_eq!(tcb.rtt().srtt(), srtt);
    assert_eq!(tcb.rtt().rto(), 2 * RTO);

    // New data, acked after 50 ms: a valid sample recomputes the RTO.
    tcb.send(&a).unwrap();
    out(&mut tcb, at(2000));
    seg_in(
        &mut tcb,
        at(2050),
        &from_peer(ACK, PEER_ISS + 1, ISS + 201, &[]),
    );
    assert_ne!(tcb.rtt().srtt(), srtt);
    assert_eq!(tcb.rtt().backoff(), 0);
}

/// RFC 6298 (5.4): after an RTO only the oldest segment is resent at once
/// (cwnd = 1 MSS, RFC 5681 (4)); its ACK lets the next one out.
#[test]
fn established_rto_resends_from_snd_una() {
    let mut tcb = established();
    let a = data(3 * 1460);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(10)).len(), 3);
    // The first segment was acked, the other two were lost.
    seg_in(
        &mut tcb,
        at(15),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1461, &[]),
    );
    let t = tcb.poll_timeout().unwrap();
    assert_eq!(t, at(15) + RTO);
    tcb.handle_timeout(t);
    assert_eq!(
        out(&mut tcb, t),
        vec![seg(ACK, ISS + 1461, PEER_ISS + 1, WIN, &a[1460..2920])]
    );
    seg_in(&mut tcb, t, &from_peer(ACK, PEER_ISS + 1, ISS + 2921, &[]));
    assert_eq!(
        out(&mut tcb, t),
        vec![seg(ACK | PSH, ISS + 2921, PEER_ISS + 1, WIN, &a[2920..])]
    );
}

/// RFC 5681 section 3.2: the third duplicate ACK (not the second) triggers
/// exactly one retransmission of the segment at SND.UNA; later duplicates
/// only inflate cwnd.
#[test]
fn fast_retransmit_on_third_dup_ack() {
    let mut tcb = established();
    let a = data(5 * 1460);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(10)).len(), 5);
    // Segment 1 arrives, segment 2 is lost, 3..5 cause duplicate ACKs.
    let una = ISS + 1 + 1460;
    seg_in(&mut tcb, at(20), &from_peer(ACK, PEER_ISS + 1, una, &[]));
    assert_eq!(out(&mut tcb, at(20)), vec![]);
    for dup in 1..=2 {
        seg_in(
            &mut tcb,
            at(20 + dup),
            &from_peer(ACK, PEER_ISS + 1, una, &[]),
        );
        assert_eq!(out(&mut tcb, at(20 + dup)), vec![], "dup ack {dup}");
    }
    assert_eq!(tcb.stats().fast_retransmits, 0);
    seg_in(&mut tcb, at(23), &from_peer(ACK, PEER_ISS + 1, una, &[]));
    assert_eq!(
        out(&mut tcb, at(23)),
        vec![seg(ACK, una, PEER_ISS + 1, WIN, &a[1460..2920])]
    );
    assert_eq!(tcb.stats().fast_retransmits, 1);
    assert_eq!(tcb.stats().dup_acks, 3);
    // RFC 5681 (4): ssthresh = FlightSize/2, cwnd = ssthresh + 3*SMSS.
    assert_eq!(tcb.congestion().ssthresh(), 2 * 1460);
    assert_eq!(tcb.congestion().cwnd(), 5 * 1460);
    seg_in(&mut tcb, at(24), &from_peer(ACK, PEER_ISS + 1, una, &[]));
    assert_eq!(out(&mut tcb, at(24)), vec![]);
    assert_eq!(tcb.stats().fast_retransmits, 1);
    assert_eq!(tcb.stats().retransmits_timeout, 0);
}

/// RFC 9438 section 4.6 through the connection: with CUBIC the third
/// duplicate ACK cuts ssthresh to 0.7 * FlightSize (here 4 segments are
/// outstanding once the first is acked), and fast recovery inflates cwnd
/// by 3*SMSS as with NewReno.
#[test]
fn cubic_fast_retransmit_cuts_to_seven_tenths() {
    let mut tcb = established_cfg(TcpConfig {
        congestion: crate::cc::Algorithm::Cubic,
        ..config()
    });
    let a = data(5 * 1460);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(10)).len(), 5);
    let una = ISS + 1 + 1460;
    for t in 20..=23 {
        seg_in(&mut tcb, at(t), &from_peer(ACK, PEER_ISS + 1, una, &[]));
    }
    assert_eq!(
        out(&mut tcb, at(23)),
        vec![seg(ACK, una, PEER_ISS + 1, WIN, &a[1460..2920])]
    );
    assert_eq!(tcb.stats().fast_retransmits, 1);
    assert_eq!(tcb.congestion().algorithm(), crate::cc::Algorithm::Cubic);
    assert_eq!(tcb.congestion().ssthresh(), 4 * 1460 * 7 / 10);
    assert_eq!(tcb.congestion().cwnd(), 4 * 1460 * 7 / 10 + 3 * 1460);
}

/// RFC 5681 section 2 (definition of a duplicate ACK, condition e): an ACK
/// that changes the window is a window update, not a duplicate.
#[test]
fn window_update_is_not_a_dup_ack() {
    let mut tcb = established();
    tcb.send(&data(5 * 1460)).unwrap();
    out(&mut tcb, at(10));
    for (i, w) in [60_000u16, 50_000, 40_000].into_iter().enumerate() {
        seg_in(
            &mut tcb,
            at(20 + i as u64),
            &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, w),
        );
    }
    assert_eq!(tcb.stats().dup_acks, 0);
    assert_eq!(tcb.stats().fast_retransmits, 0);
    assert_eq!(out(&mut tcb, at(30)), vec![]);
}

/// RFC 6582 section 3.2 step 3: a partial ACK in fast recovery retransmits
/// the next hole at once; the full ACK ends recovery with cwnd = ssthresh.
#[test]
fn newreno_partial_ack_retransmits_next_hole() {
    let mut tcb = established();
    let a = data(5 * 1460);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(10)).len(), 5);
    // Segments 1 and 3 are lost.
    for i in 0..3 {
        seg_in(
            &mut tcb,
            at(20 + i),
            &from_peer(ACK, PEER_ISS + 1, ISS + 1, &[]),
        );
    }
    assert_eq!(
        out(&mut tcb, at(22)),
        vec![seg(ACK, ISS + 1, PEER_ISS + 1, WIN, &a[..1460])]
    );
    assert!(tcb.in_recovery());
    // The retransmission fills hole 1; the ACK stops at hole 3: partial.
    seg_in(
        &mut tcb,
        at(30),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1 + 2920, &[]),
    );
    assert_eq!(
        out(&mut tcb, at(30)),
        vec![seg(ACK, ISS + 1 + 2920, PEER_ISS + 1, WIN, &a[2920..4380])]
    );
    assert_eq!(tcb.stats().partial_ack_retransmits, 1);
    assert_eq!(tcb.stats().fast_retransmits, 1);
    // Full ACK.
    seg_in(
        &mut tcb,
        at(40),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1 + 7300, &[]),
    );
    assert!(!tcb.in_recovery());
    assert_eq!(tcb.congestion().cwnd(), tcb.congestion().ssthresh());
    assert!(tcb.all_acked());
    assert_eq!(out(&mut tcb, at(40)), vec![]);
}

/// RFC 1122 4.2.3.5 (R2) and RFC 9293 section 3.8.3: after `max_retries`
/// retransmissions the connection is aborted with TimedOut; every RTO doubles.
#[test]
fn established_rto_gives_up_after_max_retries() {
    let cfg = TcpConfig {
        max_retries: 3,
        ..config()
    };
    let mut tcb = established_cfg(cfg);
    let a = data(10);
    tcb.send(&a).unwrap();
    let first = out(&mut tcb, at(100));
    let mut t = at(100);
    let mut rto = RTO;
    for retry in 1..=3 {
        assert_eq!(tcb.poll_timeout(), Some(t + rto), "retry {retry}");
        t += rto;
        tcb.handle_timeout(t);
        assert_eq!(out(&mut tcb, t), first, "retry {retry}");
        rto *= 2;
    }
    assert_eq!(tcb.poll_timeout(), Some(t + rto));
    t += rto;
    tcb.handle_timeout(t);
    assert_eq!(tcb.state(), State::Closed);
    assert_eq!(
        tcb.error().map(crate::socket::io_kind),
        Some(io::ErrorKind::TimedOut)
    );
    assert_eq!(out(&mut tcb, t), vec![]);
    assert_eq!(tcb.poll_timeout(), None);
    let mut buf = [0u8; 4];
    assert_eq!(
        tcb.recv(&mut buf)
            .map_err(io::Error::from)
            .unwrap_err()
            .kind(),
        io::ErrorKind::TimedOut
    );
}

// ----------------------------------------------------------------------
// Tail loss probe (RFC 8985 section 7)
// ----------------------------------------------------------------------

/// SACK and TLP on, SRTT 100 ms, RTO 300 ms; established at at(100).
fn tlp_established() -> Tcb {
    let tcb = established_rtt(&peer_syn_opts(None, true), opts_cfg(false, true, true), 100);
    assert_eq!(tcb.rtt().rto(), Duration::from_millis(300));
    tcb
}

/// RFC 8985 sections 7.2 and 7.3: with no ACK, a probe goes out after
/// PTO = 2*SRTT; with no new data to send it is the last segment again.
/// Section 7.3: after the probe the RTO timer is re-armed (from now), and
/// it still fires if the probe draws no answer.
#[test]
fn tlp_resends_last_segment_rfc8985_7_3() {
    let mut tcb = tlp_established();
    let a = data(3 * 1460);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(1000)).len(), 3);
    assert_eq!(tcb.poll_timeout(), Some(at(1200)));
    tcb.handle_timeout(at(1200));
    assert_eq!(out(&mut tcb, at(1200)), vec![seg_i(&a, 2)]);
    assert_eq!(tcb.stats().tail_loss_probes, 1);
    assert_eq!(tcb.stats().retransmits_timeout, 0);
    let rto = tcb.rtt().rto();
    assert_eq!(tcb.poll_timeout(), Some(at(1200) + rto));
    tcb.handle_timeout(at(1200) + rto);
    assert_eq!(out(&mut tcb, at(1200) + rto), vec![seg_i(&a, 0)]);
    assert_eq!(tcb.stats().retransmits_timeout, 1);
    assert_eq!(tcb.stats().tail_loss_probes, 1);
}

/// RFC 8985 section 7.3: the probe is new data when there is some and the
/// peer's window allows (even beyond cwnd); only one probe until an ACK of
/// new data; then the PTO is armed again.
#[test]
fn tlp_sends_new_data_once_rfc8985_7_3() {
    let mut tcb = tlp_established();
    let a = data(12 * 1460);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(1000)).len(), 10);
    assert_eq!(tcb.poll_timeout(), Some(at(1200)));
    tcb.handle_timeout(at(1200));
    assert_eq!(out(&mut tcb, at(1200)), vec![seg_i(&a, 10)]);
    assert_eq!(tcb.stats().tail_loss_probes, 1);
    // No second probe before the RTO.
    let next = tcb.poll_timeout().unwrap();
    assert!(next > at(1200));
    let before = Instant::from_micros(next.total_micros() - 1000);
    tcb.handle_timeout(before);
    assert_eq!(out(&mut tcb, before), vec![]);
    assert_eq!(tcb.stats().tail_loss_probes, 1);
    // New data acked (also an RTT sample of 250 ms for segment 0): the
    // rest goes, and the PTO is armed again at 2*SRTT.
    seg_in(&mut tcb, at(1250), &sack_ack(sg(5), &[]));
    let srtt = tcb.rtt().srtt().unwrap();
    assert_eq!(srtt, Duration::from_micros(118_750));
    assert_eq!(out(&mut tcb, at(1250)), vec![seg_i(&a, 11)]);
    assert_eq!(tcb.poll_timeout(), Some(at(1250) + 2 * srtt));
}

/// RFC 8985 section 7.2: with one segment in flight the PTO adds a
/// delayed-ACK allowance (here at least 10 ms, or the configured ack delay).
#[test]
fn tlp_single_segment_waits_for_delayed_ack_rfc8985_7_2() {
    let mut tcb = tlp_established();
    tcb.send(&data(100)).unwrap();
    out(&mut tcb, at(1000));
    assert_eq!(tcb.poll_timeout(), Some(at(1210)));
    let cfg = TcpConfig {
        ack_delay: Some(Duration::from_millis(40)),
        ..opts_cfg(false, true, true)
    };
    let mut tcb = established_rtt(&peer_syn_opts(None, true), cfg, 100);
    tcb.send(&data(100)).unwrap();
    out(&mut tcb, at(1000));
    assert_eq!(tcb.poll_timeout(), Some(at(1240)));
}

/// RFC 8985 section 7.3 (in recovery, TLP retransmits): when SACKs cannot
/// show that the retransmission of SND.UNA was lost, the probe resends it.
#[test]
fn tlp_in_recovery_resends_snd_una_rfc8985_7_3() {
    let mut tcb = tlp_established();
    let a = data(10 * 1460);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(1000)).len(), 10);
    seg_in(&mut tcb, at(1050), &sack_ack(sg(0), &[(sg(1), sg(4))]));
    assert_eq!(out(&mut tcb, at(1050)), vec![seg_i(&a, 0)]);
    seg_in(&mut tcb, at(1060), &sack_ack(sg(0), &[(sg(1), sg(10))]));
    assert_eq!(out(&mut tcb, at(1060)), vec![]);
    let pto = tcb.poll_timeout().unwrap();
    assert!(pto < at(1300), "the probe comes before the RTO");
    tcb.handle_timeout(pto);
    assert_eq!(out(&mut tcb, pto), vec![seg_i(&a, 0)]);
    assert_eq!(tcb.stats().tail_loss_probes, 1);
    assert_eq!(tcb.stats().retransmits_timeout, 0);
    // Section 7.3: the RTO is re-armed from the probe.
    assert_eq!(tcb.poll_timeout(), Some(pto + tcb.rtt().rto()));
}

/// RFC 8985 section 7.2 (TLP is for data; this stack does not probe a FIN):
/// once our FIN is out only the RTO remains.
#[test]
fn tlp_not_armed_with_fin_out_rfc8985_7_2() {
    let mut tcb = tlp_established();
    let a = data(3 * 1460);
    tcb.send(&a).unwrap();
    tcb.close();
    let segs = out(&mut tcb, at(1000));
    assert_eq!(segs.len(), 3);
    assert!(segs[2].flags.contains(FIN));
    assert_eq!(tcb.poll_timeout(), Some(at(1300)));
    tcb.handle_timeout(at(1300));
    assert_eq!(out(&mut tcb, at(1300)), vec![seg_i(&a, 0)]);
    assert_eq!(tcb.stats().tail_loss_probes, 0);
}
