//! Small segments and ACK timing: Nagle's algorithm (RFC 1122 4.2.3.4, in
//! Minshall's form) and delayed ACKs (RFC 1122 4.2.3.2, RFC 5681 section 4.2).

use super::*;

// ----------------------------------------------------------------------
// Nagle
// ----------------------------------------------------------------------

/// RFC 1122 4.2.3.4 (Nagle, RFC 896): a small write is held while data is
/// unacknowledged and goes out when the ACK arrives.
#[test]
fn nagle_holds_small_segment_until_ack() {
    let mut tcb = established();
    assert!(tcb.nagle());
    tcb.send(b"hello").unwrap();
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![seg(ACK | PSH, ISS + 1, PEER_ISS + 1, WIN, b"hello")]
    );
    tcb.send(b"world").unwrap();
    assert_eq!(out(&mut tcb, at(2)), vec![]);
    seg_in(
        &mut tcb,
        at(10),
        &from_peer(ACK, PEER_ISS + 1, ISS + 6, &[]),
    );
    assert_eq!(
        out(&mut tcb, at(10)),
        vec![seg(ACK | PSH, ISS + 6, PEER_ISS + 1, WIN, b"world")]
    );
}

/// RFC 1122 4.2.3.4: Nagle may be disabled; small writes then go out at once.
#[test]
fn nagle_off_sends_at_once() {
    let mut tcb = established();
    tcb.set_nagle(false);
    tcb.send(b"hello").unwrap();
    assert_eq!(out(&mut tcb, at(1)).len(), 1);
    tcb.send(b"world").unwrap();
    assert_eq!(
        out(&mut tcb, at(2)),
        vec![seg(ACK | PSH, ISS + 6, PEER_ISS + 1, WIN, b"world")]
    );
}

/// Nagle in Minshall's form (as Linux does; draft-minshall-nagle): the
/// short tail of one large write goes out at once behind full-sized
/// segments, but a second short segment waits while the first one is
/// unacknowledged.
#[test]
fn nagle_minshall_sends_the_tail_of_a_large_write() {
    let mut tcb = established();
    let a = data(2000);
    tcb.send(&a).unwrap();
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![
            seg(ACK, ISS + 1, PEER_ISS + 1, WIN, &a[..1460]),
            seg(ACK | PSH, ISS + 1461, PEER_ISS + 1, WIN, &a[1460..])
        ]
    );
    // The 540-byte segment is in flight: another small write waits.
    tcb.send(b"more").unwrap();
    assert_eq!(out(&mut tcb, at(2)), vec![]);
    // Acking the full segment is not enough; acking the small one is.
    seg_in(
        &mut tcb,
        at(3),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1461, &[]),
    );
    assert_eq!(out(&mut tcb, at(3)), vec![]);
    seg_in(
        &mut tcb,
        at(4),
        &from_peer(ACK, PEER_ISS + 1, ISS + 2001, &[]),
    );
    assert_eq!(
        out(&mut tcb, at(4)),
        vec![seg(ACK | PSH, ISS + 2001, PEER_ISS + 1, WIN, b"more")]
    );
}

// ----------------------------------------------------------------------
// Delayed ACK
// ----------------------------------------------------------------------

fn delayed_ack_config() -> TcpConfig {
    TcpConfig {
        ack_delay: Some(Duration::from_millis(40)),
        ..config()
    }
}

/// RFC 1122 4.2.3.2 and RFC 5681 section 4.2: one small in-order segment is
/// acked only when the delayed-ACK timer fires.
#[test]
fn delayed_ack_single_segment() {
    let mut tcb = established_cfg(delayed_ack_config());
    seg_in(
        &mut tcb,
        at(100),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1, &data(100)),
    );
    assert_eq!(out(&mut tcb, at(100)), vec![]);
    assert_eq!(tcb.poll_timeout(), Some(at(140)));
    tcb.handle_timeout(at(139));
    assert_eq!(out(&mut tcb, at(139)), vec![]);
    tcb.handle_timeout(at(140));
    assert_eq!(
        out(&mut tcb, at(140)),
        vec![ack(ISS + 1, PEER_ISS + 101, WIN - 100)]
    );
    assert_eq!(tcb.poll_timeout(), None);
}

/// RFC 5681 section 4.2: an ACK is sent for at least every second full-sized segment.
#[test]
fn delayed_ack_two_full_segments() {
    let mut tcb = established_cfg(delayed_ack_config());
    let a = data(2920);
    seg_in(
        &mut tcb,
        at(100),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1, &a[..1460]),
    );
    assert_eq!(out(&mut tcb, at(100)), vec![]);
    seg_in(
        &mut tcb,
        at(101),
        &from_peer(ACK, PEER_ISS + 1461, ISS + 1, &a[1460..]),
    );
    assert_eq!(
        out(&mut tcb, at(101)),
        vec![ack(ISS + 1, PEER_ISS + 2921, WIN - 2920)]
    );
    assert_eq!(tcb.poll_timeout(), None);
}

/// RFC 1122 4.2.3.2: a pending delayed ACK rides on outgoing data.
#[test]
fn delayed_ack_piggybacked_on_data() {
    let mut tcb = established_cfg(delayed_ack_config());
    seg_in(
        &mut tcb,
        at(100),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1, &data(100)),
    );
    assert_eq!(out(&mut tcb, at(100)), vec![]);
    tcb.send(b"reply").unwrap();
    assert_eq!(
        out(&mut tcb, at(110)),
        vec![seg(ACK | PSH, ISS + 1, PEER_ISS + 101, WIN - 100, b"reply")]
    );
    // The ACK was sent, so only the retransmission timer remains.
    assert_eq!(tcb.poll_timeout(), Some(at(110) + RTO));
}

/// RFC 1122 4.2.3.2 (and Linux on entering CLOSE-WAIT): the ACK of a FIN in
/// ESTABLISHED is delayed like an ACK of data, and goes when the timer fires.
#[test]
fn delayed_ack_fin_in_established_waits_for_the_timer() {
    let mut tcb = established_cfg(delayed_ack_config());
    seg_in(
        &mut tcb,
        at(100),
        &from_peer(FIN | ACK, PEER_ISS + 1, ISS + 1, &data(10)),
    );
    assert_eq!(tcb.state(), State::CloseWait);
    assert_eq!(out(&mut tcb, at(100)), vec![]);
    assert_eq!(tcb.poll_timeout(), Some(at(140)));
    tcb.handle_timeout(at(140));
    assert_eq!(
        out(&mut tcb, at(140)),
        vec![ack(ISS + 1, PEER_ISS + 12, WIN - 11)]
    );
}

/// The delayed ACK of the peer's FIN rides on our own FIN when the
/// application closes in time: one FIN+ACK instead of an ACK and a FIN.
#[test]
fn delayed_ack_of_fin_rides_on_our_fin() {
    let mut tcb = established_cfg(delayed_ack_config());
    seg_in(
        &mut tcb,
        at(100),
        &from_peer(FIN | ACK, PEER_ISS + 1, ISS + 1, &data(10)),
    );
    assert_eq!(out(&mut tcb, at(100)), vec![]);
    read_all(&mut tcb);
    tcb.close();
    assert_eq!(
        out(&mut tcb, at(101)),
        vec![seg(FIN | ACK, ISS + 1, PEER_ISS + 12, WIN, b"")]
    );
    assert_eq!(tcb.state(), State::LastAck);
}

/// Once our FIN is out nothing can ride along: the peer's FIN in FIN-WAIT-2
/// is acked at once even with delayed ACKs on.
#[test]
fn delayed_ack_fin_in_fin_wait_2_acked_at_once() {
    let mut tcb = established_cfg(delayed_ack_config());
    tcb.close();
    assert_eq!(
        out(&mut tcb, at(100)),
        vec![seg(FIN | ACK, ISS + 1, PEER_ISS + 1, WIN, b"")]
    );
    seg_in(
        &mut tcb,
        at(101),
        &from_peer(ACK, PEER_ISS + 1, ISS + 2, b""),
    );
    assert_eq!(tcb.state(), State::FinWait2);
    seg_in(
        &mut tcb,
        at(102),
        &from_peer(FIN | ACK, PEER_ISS + 1, ISS + 2, b""),
    );
    assert_eq!(tcb.state(), State::TimeWait);
    assert_eq!(
        out(&mut tcb, at(102)),
        vec![ack(ISS + 2, PEER_ISS + 2, WIN)]
    );
}
