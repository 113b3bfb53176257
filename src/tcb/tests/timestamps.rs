//! The timestamps option (RFC 7323): negotiation, TS.Recent, RTT measurement
//! and Karn's rule with timestamps.

use super::*;

/// RFC 7323 section 3.2: our SYN carries TSopt with TSval from our clock
/// (ms plus a per-connection offset, section 5.4) and TSecr 0; once the
/// SYN-ACK carried TSopt too, every segment carries TSval and echoes the
/// peer's TSval as TSecr.
#[test]
fn ts_active_open_syn_and_later_segments_rfc7323_3_2() {
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), opts_cfg(true, false, false));
    let syn = out(&mut tcb, at(7));
    assert_eq!(syn.len(), 1);
    assert_eq!(syn[0].flags, SYN);
    assert_eq!(syn[0].options.timestamp, Some((ISS + 7, 0)));
    assert!(!syn[0].options.sack_permitted);
    let syn_ack = with_ts(
        TcpSegment {
            options: mss_only(1460),
            ..from_peer(SYN | ACK, PEER_ISS, ISS + 1, &[])
        },
        5000,
        ISS + 7,
    );
    seg_in(&mut tcb, at(30), &syn_ack);
    assert_eq!(tcb.state(), State::Established);
    let expect_ts = |now: Instant, echo: u32| TcpOptions {
        timestamp: Some((our_ts(now), echo)),
        ..TcpOptions::default()
    };
    assert_eq!(
        out(&mut tcb, at(30)),
        vec![Seg {
            options: expect_ts(at(30), 5000),
            ..ack(ISS + 1, PEER_ISS + 1, WIN)
        }]
    );
    tcb.send(b"hi").unwrap();
    assert_eq!(
        out(&mut tcb, at(45)),
        vec![Seg {
            options: expect_ts(at(45), 5000),
            ..seg(ACK | PSH, ISS + 1, PEER_ISS + 1, WIN, b"hi")
        }]
    );
}

/// RFC 7323 section 3.2: a SYN with TSopt is answered by a SYN-ACK with
/// TSopt whose TSecr echoes the SYN's TSval; later segments echo TS.Recent.
#[test]
fn ts_passive_open_syn_ack_echoes_rfc7323_3_2() {
    let syn = peer_syn_opts(Some(PEER_TS), false);
    let mut tcb = Tcb::accept(&syn, SeqNum(ISS), opts_cfg(true, false, false));
    assert_eq!(
        out(&mut tcb, at(3)),
        vec![Seg {
            options: TcpOptions {
                mss: Some(1460),
                timestamp: Some((our_ts(at(3)), PEER_TS)),
                ..TcpOptions::default()
            },
            ..seg(SYN | ACK, ISS, PEER_ISS + 1, WIN, &[])
        }]
    );
    seg_in(
        &mut tcb,
        at(10),
        &with_ts(
            from_peer(ACK, PEER_ISS + 1, ISS + 1, &[]),
            PEER_TS + 10,
            our_ts(at(3)),
        ),
    );
    assert_eq!(tcb.state(), State::Established);
    tcb.send(b"x").unwrap();
    let segs = out(&mut tcb, at(20));
    assert_eq!(segs.len(), 1);
    assert_eq!(
        segs[0].options.timestamp,
        Some((our_ts(at(20)), PEER_TS + 10))
    );
}

/// RFC 7323 section 3.2: if the SYN had no TSopt, the SYN-ACK has none and
/// no later segment carries one; data segments use the whole MSS.
#[test]
fn ts_not_offered_by_peer_rfc7323_3_2() {
    let mut tcb = established_with(&peer_syn(PEER_ISS), ISS, opts_cfg(true, false, false));
    let a = data(2 * 1460);
    tcb.send(&a).unwrap();
    let segs = out(&mut tcb, at(5));
    assert_eq!(
        segs,
        vec![
            seg(ACK, ISS + 1, PEER_ISS + 1, WIN, &a[..1460]),
            seg(ACK | PSH, ISS + 1461, PEER_ISS + 1, WIN, &a[1460..]),
        ]
    );
    seg_in(
        &mut tcb,
        at(6),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1, b"q"),
    );
    assert_eq!(
        out(&mut tcb, at(6)),
        vec![ack(ISS + 2921, PEER_ISS + 2, WIN - 1)]
    );
    // And the SYN-ACK itself carried none.
    let mut tcb = Tcb::accept(
        &peer_syn(PEER_ISS),
        SeqNum(ISS),
        opts_cfg(true, false, false),
    );
    assert_eq!(out(&mut tcb, T0), vec![our_syn_ack(ISS, PEER_ISS)]);
}

/// RFC 7323 section 4.3: TS.Recent takes SEG.TSval only from a segment with
/// SEG.SEQ <= Last.ACK.sent and SEG.TSval >= TS.Recent, so an out-of-order
/// segment or an older TSval does not move it; and every ACK echoes TS.Recent.
#[test]
fn ts_recent_update_rules_rfc7323_4_3() {
    let mut tcb = ts_established();
    let p = PEER_ISS + 1;
    let echo = |segs: &[Seg]| {
        assert_eq!(segs.len(), 1, "{segs:?}");
        segs[0].options.timestamp.map(|t| t.1)
    };
    // In order at Last.ACK.sent: taken.
    seg_in(
        &mut tcb,
        at(10),
        &with_ts(from_peer(ACK, p, ISS + 1, &data(100)), 8000, ISS),
    );
    assert_eq!(echo(&out(&mut tcb, at(10))), Some(8000));
    // Out of order (SEG.SEQ > Last.ACK.sent): a newer TSval is not taken.
    seg_in(
        &mut tcb,
        at(11),
        &with_ts(from_peer(ACK, p + 300, ISS + 1, &data(100)), 9000, ISS),
    );
    let dup = out(&mut tcb, at(11));
    assert_eq!(dup[0].ack, p + 100);
    assert_eq!(echo(&dup), Some(8000));
    // In order but an older TSval: not taken either -- PAWS (RFC 7323
    // section 5.3, R1) drops the whole segment as an old duplicate and
    // answers with an ACK.
    seg_in(
        &mut tcb,
        at(12),
        &with_ts(from_peer(ACK, p + 100, ISS + 1, &data(100)), 7500, ISS),
    );
    let a = out(&mut tcb, at(12));
    assert_eq!(a[0].ack, p + 100);
    assert_eq!(echo(&a), Some(8000));
    assert_eq!(tcb.recv_queued(), 100);
    // The same bytes with a current TSval: accepted, and the TSval taken.
    seg_in(
        &mut tcb,
        at(12),
        &with_ts(from_peer(ACK, p + 100, ISS + 1, &data(100)), 8500, ISS),
    );
    let a = out(&mut tcb, at(12));
    assert_eq!(a[0].ack, p + 200);
    assert_eq!(echo(&a), Some(8500));
    // The segment that fills the hole starts at Last.ACK.sent: taken.
    seg_in(
        &mut tcb,
        at(13),
        &with_ts(from_peer(ACK, p + 200, ISS + 1, &data(100)), 9500, ISS),
    );
    let a = out(&mut tcb, at(13));
    assert_eq!(a[0].ack, p + 400);
    assert_eq!(echo(&a), Some(9500));
}

/// RFC 7323 section 4.3 (with delayed ACKs): of two segments acked by one
/// ACK, the TSval of the earlier one is echoed, since the later one starts
/// beyond Last.ACK.sent.
#[test]
fn ts_recent_delayed_ack_echoes_earliest_rfc7323_4_3() {
    let cfg = TcpConfig {
        ack_delay: Some(Duration::from_millis(40)),
        ..opts_cfg(true, false, false)
    };
    let mut tcb = established_rtt(&peer_syn_opts(Some(PEER_TS), false), cfg, 0);
    let p = PEER_ISS + 1;
    seg_in(
        &mut tcb,
        at(10),
        &with_ts(from_peer(ACK, p, ISS + 1, &data(100)), 8000, ISS),
    );
    seg_in(
        &mut tcb,
        at(11),
        &with_ts(from_peer(ACK, p + 100, ISS + 1, &data(100)), 8001, ISS),
    );
    assert_eq!(out(&mut tcb, at(11)), vec![]);
    tcb.handle_timeout(at(50));
    let segs = out(&mut tcb, at(50));
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].ack, p + 200);
    assert_eq!(segs[0].options.timestamp, Some((our_ts(at(50)), 8000)));
}

/// RFC 7323 section 3.2 / RFC 6691: the 12 option bytes of TSopt come out of
/// the MSS, so full data segments carry MSS - 12 = 1448 bytes.
#[test]
fn ts_data_segments_carry_mss_minus_12_rfc7323_3_2() {
    let mut tcb = ts_established();
    let a = data(3 * 1448 + 500);
    tcb.send(&a).unwrap();
    tcb.set_nagle(false);
    let segs = out(&mut tcb, at(1));
    let lens: Vec<usize> = segs.iter().map(|s| s.payload.len()).collect();
    assert_eq!(lens, vec![1448, 1448, 1448, 500]);
    let mut next = ISS + 1;
    for s in &segs {
        assert_eq!(s.seq, next);
        assert!(s.options.timestamp.is_some());
        // 20 bytes of IP, 20 + 12 of TCP: the packet fits a 1500-byte MTU.
        assert!(20 + 32 + s.payload.len() <= 1500);
        next += s.payload.len() as u32;
    }
    assert_eq!(
        segs.iter()
            .flat_map(|s| s.payload.clone())
            .collect::<Vec<_>>(),
        a
    );
}

/// RFC 7323 section 4.1 with Karn's rule (RFC 6298 section 3): after a
/// timeout, an ACK whose TSecr echoes the original transmission (older
/// than the retransmission) gives no RTT sample and keeps the back-off.
#[test]
fn ts_karn_old_echo_gives_no_sample_rfc7323_4_1() {
    let mut tcb = ts_established();
    let srtt = tcb.rtt().srtt();
    tcb.send(&data(100)).unwrap();
    let first = out(&mut tcb, at(1000));
    assert_eq!(first[0].options.timestamp.unwrap().0, our_ts(at(1000)));
    tcb.handle_timeout(at(1200));
    let rxt = out(&mut tcb, at(1200));
    assert_eq!(rxt.len(), 1);
    assert_eq!(rxt[0].options.timestamp.unwrap().0, our_ts(at(1200)));
    assert_eq!(tcb.rtt().backoff(), 1);
    // The original arrived late; its ACK echoes the original's TSval.
    seg_in(
        &mut tcb,
        at(1250),
        &with_ts(
            from_peer(ACK, PEER_ISS + 1, ISS + 101, &[]),
            PEER_TS + 5,
            our_ts(at(1000)),
        ),
    );
    assert!(tcb.all_acked());
    assert_eq!(tcb.rtt().srtt(), srtt);
    assert_eq!(tcb.rtt().backoff(), 1);
    assert_eq!(tcb.rtt().rto(), 2 * RTO);
}

/// RFC 7323 section 4.1: an echo of the retransmission's own TSval times it
/// unambiguously: a sample (here 50 ms) that ends the back-off.
#[test]
fn ts_karn_fresh_echo_gives_sample_rfc7323_4_1() {
    let mut tcb = ts_established();
    tcb.send(&data(100)).unwrap();
    out(&mut tcb, at(1000));
    tcb.handle_timeout(at(1200));
    assert_eq!(out(&mut tcb, at(1200)).len(), 1);
    seg_in(
        &mut tcb,
        at(1250),
        &with_ts(
            from_peer(ACK, PEER_ISS + 1, ISS + 101, &[]),
            PEER_TS + 5,
            our_ts(at(1200)),
        ),
    );
    assert_eq!(tcb.rtt().backoff(), 0);
    // SRTT was 0 (the handshake): 7/8 * 0 + 1/8 * 50 ms.
    assert_eq!(tcb.rtt().srtt(), Some(Duration::from_micros(6250)));
}

/// RFC 7323 section 3.2: once timestamps are negotiated, a segment without
/// TSopt is dropped silently (no data taken, no ACK); a RST without one is
/// still processed.
#[test]
fn ts_segment_without_timestamp_dropped_rfc7323_3_2() {
    let mut tcb = ts_established();
    let before = tcb.rcv_nxt();
    let v = seg_in(
        &mut tcb,
        at(20),
        &from_peer(ACK | PSH, PEER_ISS + 1, ISS + 1, b"no ts"),
    );
    assert_eq!(v, Verdict::Done);
    assert_eq!(tcb.rcv_nxt(), before, "the data was not taken");
    assert_eq!(out(&mut tcb, at(20)), vec![], "dropped silently");
    seg_in(&mut tcb, at(30), &from_peer(RST, PEER_ISS + 1, 0, &[]));
    assert_eq!(tcb.state(), State::Closed, "a RST needs no timestamp");
}
