//! Data transfer in ESTABLISHED: in-order delivery, out-of-order segments held
//! until the gap fills (RFC 9293 section 3.10.7.4, seventh step), and sequence
//! numbers across 2^32 (section 3.4).

use super::*;

// ----------------------------------------------------------------------
// Receiving
// ----------------------------------------------------------------------

/// RFC 9293 section 3.10.7.4 (seventh step): in-order data is delivered and
/// acked with <SEQ=SND.NXT><ACK=RCV.NXT>; the window is the free buffer.
#[test]
fn established_recv_in_order() {
    let mut tcb = established();
    let a = data(300);
    seg_in(
        &mut tcb,
        at(1),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1, &a[..100]),
    );
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![ack(ISS + 1, PEER_ISS + 101, WIN - 100)]
    );
    seg_in(
        &mut tcb,
        at(2),
        &from_peer(ACK | PSH, PEER_ISS + 101, ISS + 1, &a[100..]),
    );
    assert_eq!(
        out(&mut tcb, at(2)),
        vec![ack(ISS + 1, PEER_ISS + 301, WIN - 300)]
    );
    assert_eq!(tcb.recv_queued(), 300);
    assert_eq!(read_all(&mut tcb), a);
    assert_eq!(tcb.stats().bytes_in, 300);
}

/// RFC 9293 section 3.10.7.4 (seventh step) and RFC 5681 section 4.2: an
/// out-of-order segment is held and triggers an immediate duplicate ACK;
/// filling the gap brings one cumulative ACK covering everything. Run with
/// delayed ACKs on, since these ACKs must not be delayed.
#[test]
fn established_out_of_order_then_gap_filled() {
    let cfg = TcpConfig {
        ack_delay: Some(Duration::from_millis(40)),
        ..config()
    };
    let mut tcb = established_cfg(cfg);
    let a = data(300);
    let base = PEER_ISS + 1;
    seg_in(
        &mut tcb,
        at(1),
        &from_peer(ACK, base + 100, ISS + 1, &a[100..200]),
    );
    assert_eq!(out(&mut tcb, at(1)), vec![ack(ISS + 1, base, WIN)]);
    seg_in(
        &mut tcb,
        at(2),
        &from_peer(ACK, base + 200, ISS + 1, &a[200..]),
    );
    assert_eq!(out(&mut tcb, at(2)), vec![ack(ISS + 1, base, WIN)]);
    assert_eq!(tcb.recv_queued(), 0);
    assert_eq!(tcb.stats().out_of_order, 2);

    seg_in(&mut tcb, at(3), &from_peer(ACK, base, ISS + 1, &a[..100]));
    assert_eq!(
        out(&mut tcb, at(3)),
        vec![ack(ISS + 1, base + 300, WIN - 300)]
    );
    assert_eq!(read_all(&mut tcb), a);
}

/// RFC 9293 section 3.10.7.4: a FIN that arrives before missing data is
/// processed only once the gap is filled.
#[test]
fn established_out_of_order_fin() {
    let mut tcb = established();
    let a = data(200);
    let base = PEER_ISS + 1;
    seg_in(
        &mut tcb,
        at(1),
        &from_peer(FIN | ACK, base + 100, ISS + 1, &a[100..]),
    );
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(out(&mut tcb, at(1)), vec![ack(ISS + 1, base, WIN)]);
    seg_in(&mut tcb, at(2), &from_peer(ACK, base, ISS + 1, &a[..100]));
    assert_eq!(tcb.state(), State::CloseWait);
    // The FIN takes one sequence number of the window: the right edge stays
    // where it was (RFC 1122 4.2.3.3), hence WIN - 201.
    assert_eq!(
        out(&mut tcb, at(2)),
        vec![ack(ISS + 1, base + 201, WIN - 201)]
    );
    assert_eq!(read_all(&mut tcb), a);
    let mut buf = [0u8; 8];
    assert_eq!(tcb.recv(&mut buf).unwrap(), 0);
}

// ----------------------------------------------------------------------
// Sequence numbers across 2^32
// ----------------------------------------------------------------------

/// RFC 9293 section 3.4: sequence arithmetic is modulo 2^32; our data
/// crosses the wrap and is acked across it.
#[test]
fn sequence_numbers_wrap_send() {
    let iss = u32::MAX - 10;
    let mut tcb = established_with(&peer_syn(PEER_ISS), iss, config());
    let a = data(2000);
    tcb.send(&a).unwrap();
    // The second segment starts past the wrap (Minshall's Nagle lets the
    // 540-byte tail of one write go at once: no small segment is in flight).
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![
            seg(ACK, u32::MAX - 9, PEER_ISS + 1, WIN, &a[..1460]),
            seg(ACK | PSH, 1450, PEER_ISS + 1, WIN, &a[1460..])
        ]
    );
    // A partial ACK that crosses the wrap.
    seg_in(&mut tcb, at(2), &from_peer(ACK, PEER_ISS + 1, 1450, &[]));
    assert_eq!(tcb.snd_una(), SeqNum(1450));
    assert_eq!(tcb.send_queued(), 540);
    assert_eq!(out(&mut tcb, at(2)), vec![]);
    seg_in(&mut tcb, at(3), &from_peer(ACK, PEER_ISS + 1, 1990, &[]));
    assert!(tcb.all_acked());
    assert_eq!(tcb.poll_timeout(), None);
    // And the FIN, too.
    tcb.close();
    assert_eq!(
        out(&mut tcb, at(4)),
        vec![seg(FIN | ACK, 1990, PEER_ISS + 1, WIN, &[])]
    );
    seg_in(&mut tcb, at(5), &from_peer(ACK, PEER_ISS + 1, 1991, &[]));
    assert_eq!(tcb.state(), State::FinWait2);
}

/// RFC 9293 section 3.4: the peer's data crosses the wrap, in order and out of order.
#[test]
fn sequence_numbers_wrap_recv() {
    let peer_iss = u32::MAX - 10;
    let mut tcb = established_with(&peer_syn(peer_iss), ISS, config());
    assert_eq!(tcb.rcv_nxt(), SeqNum(u32::MAX - 9));
    let a = data(300);
    // Bytes 100.. (seq 90..) first: out of order, across the wrap.
    seg_in(&mut tcb, at(1), &from_peer(ACK, 90, ISS + 1, &a[100..]));
    assert_eq!(out(&mut tcb, at(1)), vec![ack(ISS + 1, u32::MAX - 9, WIN)]);
    seg_in(
        &mut tcb,
        at(2),
        &from_peer(ACK, u32::MAX - 9, ISS + 1, &a[..100]),
    );
    assert_eq!(out(&mut tcb, at(2)), vec![ack(ISS + 1, 290, WIN - 300)]);
    assert_eq!(read_all(&mut tcb), a);
    seg_in(&mut tcb, at(3), &from_peer(FIN | ACK, 290, ISS + 1, &[]));
    assert_eq!(tcb.state(), State::CloseWait);
    assert_eq!(out(&mut tcb, at(3)), vec![ack(ISS + 1, 291, WIN)]);
}
