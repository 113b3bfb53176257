//! Congestion control as the TCB applies it: the initial window (RFC 6928)
//! and limited transmit (RFC 3042). The window arithmetic itself (slow start,
//! congestion avoidance) is unit-tested in `src/congestion.rs`.

use super::*;

// ----------------------------------------------------------------------
// Initial window
// ----------------------------------------------------------------------

/// RFC 9293 section 3.7.1 and RFC 6928: segments are at most SMSS and the
/// first flight is the initial window, min(10*MSS, max(2*MSS, 14600)).
#[test]
fn established_send_initial_window_of_mss_segments() {
    let mut tcb = established();
    let a = data(20 * 1460);
    tcb.send(&a).unwrap();
    let segs = out(&mut tcb, at(1));
    assert_eq!(segs.len(), 10);
    for (i, s) in segs.iter().enumerate() {
        let off = i * 1460;
        assert_eq!(
            *s,
            seg(
                ACK,
                ISS + 1 + off as u32,
                PEER_ISS + 1,
                WIN,
                &a[off..off + 1460]
            )
        );
    }
    // RFC 6298 (5.1): the timer runs from the first transmission.
    assert_eq!(tcb.poll_timeout(), Some(at(1) + RTO));
    // An ACK for two segments: slow start adds one MSS (RFC 5681 (3.2)),
    // which lets three more segments out.
    seg_in(
        &mut tcb,
        at(2),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1 + 2920, &[]),
    );
    assert_eq!(tcb.congestion().cwnd(), 11 * 1460);
    assert_eq!(out(&mut tcb, at(2)).len(), 3);
}

// ----------------------------------------------------------------------
// Limited transmit (RFC 3042)
// ----------------------------------------------------------------------

/// RFC 3042 section 2: the first and second duplicate ACKs each send one
/// new segment beyond cwnd (FlightSize <= cwnd + 2*SMSS); cwnd itself does
/// not change; the third starts fast retransmit.
#[test]
fn limited_transmit_rfc3042_2() {
    let mut tcb = established();
    let a = data(13 * 1460);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(10)).len(), 10);
    let cwnd = tcb.congestion().cwnd();
    let dup = from_peer(ACK, PEER_ISS + 1, ISS + 1, &[]);
    seg_in(&mut tcb, at(20), &dup);
    assert_eq!(out(&mut tcb, at(20)), vec![seg_i(&a, 10)]);
    seg_in(&mut tcb, at(21), &dup);
    assert_eq!(out(&mut tcb, at(21)), vec![seg_i(&a, 11)]);
    assert_eq!(tcb.congestion().cwnd(), cwnd);
    seg_in(&mut tcb, at(22), &dup);
    assert_eq!(out(&mut tcb, at(22)), vec![seg_i(&a, 0)]);
    assert_eq!(tcb.stats().fast_retransmits, 1);
}

/// RFC 3042 section 2: limited transmit only sends what the peer's window allows.
#[test]
fn limited_transmit_respects_peer_window_rfc3042_2() {
    let mut tcb = established();
    seg_in(
        &mut tcb,
        at(1),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 14_600),
    );
    tcb.send(&data(13 * 1460)).unwrap();
    assert_eq!(out(&mut tcb, at(10)).len(), 10);
    for t in [20, 21] {
        seg_in(
            &mut tcb,
            at(t),
            &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 14_600),
        );
        assert_eq!(out(&mut tcb, at(t)), vec![]);
    }
    assert_eq!(tcb.stats().dup_acks, 2);
}

/// RFC 3042 section 2 with RFC 6675 section 5 step (3): with SACK, limited
/// transmit is governed by cwnd - pipe; each of the first two duplicate
/// ACKs (each SACKing one segment) still lets exactly one new segment out,
/// so FlightSize never exceeds cwnd + 2*SMSS.
#[test]
fn limited_transmit_with_sack_one_segment_per_dup_ack_rfc3042_2() {
    let (mut tcb, a) = sack_flight(14, at(200));
    let cwnd = tcb.congestion().cwnd();
    seg_in(&mut tcb, at(300), &sack_ack(sg(0), &[(sg(1), sg(2))]));
    assert_eq!(out(&mut tcb, at(300)), vec![seg_i(&a, 10)]);
    seg_in(&mut tcb, at(301), &sack_ack(sg(0), &[(sg(1), sg(3))]));
    assert_eq!(out(&mut tcb, at(301)), vec![seg_i(&a, 11)]);
    assert_eq!(
        tcb.snd_nxt() - tcb.snd_una(),
        cwnd as usize + 2 * MSS as usize
    );
}
