//! Segment acceptability (RFC 9293 section 3.10.7.4, first and fifth checks):
//! segments outside the window, trimming to the window, old duplicates, ACKs of
//! unsent or too old data, and challenge ACKs (RFC 5961).

use super::*;

// ----------------------------------------------------------------------
// Sequence and acknowledgment checks
// ----------------------------------------------------------------------

/// RFC 9293 section 3.10.7.4 (first check): a segment wholly outside the
/// window is answered with <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and dropped.
#[test]
fn established_seq_out_of_window() {
    let mut tcb = established();
    let a = data(100);
    let beyond = PEER_ISS + 1 + RCV_BUF as u32;
    seg_in(&mut tcb, at(1), &from_peer(ACK, beyond, ISS + 1, &a));
    assert_eq!(out(&mut tcb, at(1)), vec![ack(ISS + 1, PEER_ISS + 1, WIN)]);
    assert_eq!(tcb.recv_queued(), 0);
    assert_eq!(tcb.stats().unacceptable, 1);
    assert_eq!(tcb.stats().out_of_order, 0);
}

/// Unacceptable segments without data are answered at most once per
/// `OOW_ACK_INTERVAL` (500 ms, Linux's `tcp_invalid_ratelimit`), which ends
/// ACK loops between two ends that find each other's ACKs out of window;
/// data segments outside the window are always answered.
#[test]
fn out_of_window_acks_are_answered_at_most_twice_a_second() {
    let mut tcb = established();
    let beyond = PEER_ISS + 1 + RCV_BUF as u32;
    let want = vec![ack(ISS + 1, PEER_ISS + 1, WIN)];
    seg_in(&mut tcb, at(1), &from_peer(ACK, beyond, ISS + 1, &[]));
    assert_eq!(out(&mut tcb, at(1)), want);
    for t in [2, 100, 500] {
        seg_in(&mut tcb, at(t), &from_peer(ACK, beyond, ISS + 1, &[]));
        assert_eq!(out(&mut tcb, at(t)), vec![], "at {t} ms");
    }
    assert_eq!(tcb.stats().oow_acks_limited, 3);
    // Out-of-window data is still answered at once.
    seg_in(
        &mut tcb,
        at(502),
        &from_peer(ACK, beyond, ISS + 1, &data(10)),
    );
    assert_eq!(out(&mut tcb, at(502)), want);
    // And a pure ACK again once 500 ms have passed since the last answer.
    seg_in(&mut tcb, at(600), &from_peer(ACK, beyond, ISS + 1, &[]));
    assert_eq!(out(&mut tcb, at(600)), want);
    assert_eq!(tcb.stats().oow_acks_limited, 3);
}

/// RFC 5961 section 4.2 (and RFC 9293 section 3.10.7.4, fourth check): a SYN
/// in a synchronized state gets a challenge ACK; the connection survives.
#[test]
fn established_syn_challenge_ack() {
    let mut tcb = established();
    for seq in [PEER_ISS + 1, PEER_ISS + 500, PEER_ISS + 1_000_000] {
        let v = seg_in(&mut tcb, at(1), &peer_syn(seq));
        assert_eq!(v, Verdict::Done, "seq {seq}");
        assert_eq!(tcb.state(), State::Established, "seq {seq}");
        assert_eq!(
            out(&mut tcb, at(1)),
            vec![ack(ISS + 1, PEER_ISS + 1, WIN)],
            "seq {seq}"
        );
    }
}

/// RFC 9293 section 3.10.7.4 (first check) with Figure 9-style recovery: the
/// peer retransmits its SYN-ACK because our ACK was lost; it is re-acked.
#[test]
fn established_duplicate_syn_ack_reacked() {
    let mut tcb = established_active();
    let v = seg_in(
        &mut tcb,
        at(1000),
        &from_peer(SYN | ACK, PEER_ISS, ISS + 1, &[]),
    );
    assert_eq!(v, Verdict::Done);
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(
        out(&mut tcb, at(1000)),
        vec![ack(ISS + 1, PEER_ISS + 1, WIN)]
    );
}

/// RFC 9293 section 3.10.7.4 (fifth check): an ACK of something not yet sent
/// (SEG.ACK > SND.NXT) is answered with an ACK and the segment dropped.
#[test]
fn established_ack_of_unsent_data() {
    let mut tcb = established();
    let a = data(100);
    seg_in(
        &mut tcb,
        at(1),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1000, &a),
    );
    assert_eq!(out(&mut tcb, at(1)), vec![ack(ISS + 1, PEER_ISS + 1, WIN)]);
    assert_eq!(tcb.recv_queued(), 0);
    assert_eq!(tcb.rcv_nxt(), SeqNum(PEER_ISS + 1));
    assert_eq!(tcb.snd_una(), SeqNum(ISS + 1));
}

/// RFC 9293 section 3.10.7.4 (fifth check): a segment without ACK is dropped.
#[test]
fn established_segment_without_ack_dropped() {
    let mut tcb = established();
    seg_in(&mut tcb, at(1), &from_peer(PSH, PEER_ISS + 1, 0, &data(10)));
    assert_eq!(tcb.recv_queued(), 0);
    assert_eq!(out(&mut tcb, at(1)), vec![]);
}

/// RFC 5961 section 5.2: an ACK older than SND.UNA - MAX.SND.WND gets a
/// challenge ACK and the segment is dropped.
#[test]
fn established_ack_too_old_challenge_ack() {
    let mut tcb = established();
    let a = data(10);
    seg_in(
        &mut tcb,
        at(1),
        &from_peer(ACK, PEER_ISS + 1, ISS.wrapping_sub(100_000), &a),
    );
    assert_eq!(out(&mut tcb, at(1)), vec![ack(ISS + 1, PEER_ISS + 1, WIN)]);
    assert_eq!(tcb.recv_queued(), 0);
}

// ----------------------------------------------------------------------
// Trimming data to the window
// ----------------------------------------------------------------------

/// RFC 9293 section 3.10.7.4 (first check, then "trim to the window"): data
/// beyond RCV.NXT+RCV.WND is cut off; the rest is accepted and acked.
#[test]
fn established_data_beyond_window_trimmed() {
    let cfg = TcpConfig {
        recv_buffer: 1000,
        ..config()
    };
    let mut tcb = established_cfg(cfg);
    let a = data(1400);
    seg_in(&mut tcb, at(1), &from_peer(ACK, PEER_ISS + 1, ISS + 1, &a));
    assert_eq!(out(&mut tcb, at(1)), vec![ack(ISS + 1, PEER_ISS + 1001, 0)]);
    assert_eq!(read_all(&mut tcb), a[..1000]);
}

/// RFC 9293 section 3.10.7.4 (first check): an old duplicate (all before
/// RCV.NXT) is not acceptable: re-ACK, deliver nothing twice.
#[test]
fn established_old_duplicate_data_reacked() {
    let mut tcb = established();
    let a = data(100);
    seg_in(&mut tcb, at(1), &from_peer(ACK, PEER_ISS + 1, ISS + 1, &a));
    out(&mut tcb, at(1));
    seg_in(&mut tcb, at(2), &from_peer(ACK, PEER_ISS + 1, ISS + 1, &a));
    assert_eq!(
        out(&mut tcb, at(2)),
        vec![ack(ISS + 1, PEER_ISS + 101, WIN - 100)]
    );
    assert_eq!(tcb.stats().unacceptable, 1);
    assert_eq!(read_all(&mut tcb), a);
}

/// RFC 9293 section 3.10.7.4: a segment overlapping RCV.NXT is trimmed at
/// the left edge and only its new part delivered.
#[test]
fn established_partial_overlap_trimmed() {
    let mut tcb = established();
    let a = data(200);
    seg_in(
        &mut tcb,
        at(1),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1, &a[..100]),
    );
    out(&mut tcb, at(1));
    seg_in(
        &mut tcb,
        at(2),
        &from_peer(ACK, PEER_ISS + 51, ISS + 1, &a[50..]),
    );
    assert_eq!(
        out(&mut tcb, at(2)),
        vec![ack(ISS + 1, PEER_ISS + 201, WIN - 200)]
    );
    assert_eq!(read_all(&mut tcb), a);
}
