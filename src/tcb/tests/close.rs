//! Closing: the four-way close from either side, simultaneous close, half-close,
//! FIN retransmission and TIME-WAIT (RFC 9293 sections 3.6 and 3.10.7.4), and
//! `send` after our own close.

use super::*;

/// RFC 9293 section 3.6 and Figure 12: ESTABLISHED -close-> FIN-WAIT-1 (FIN
/// after the queued data) -ACK-> FIN-WAIT-2 -FIN-> TIME-WAIT (ACK sent)
/// -2*MSL-> CLOSED, exactly at 2*MSL and not before.
#[test]
fn four_way_close_active() {
    let mut tcb = established();
    let a = data(2000);
    tcb.send(&a).unwrap();
    tcb.close();
    assert_eq!(tcb.state(), State::FinWait1);
    assert_eq!(
        out(&mut tcb, at(10)),
        vec![
            seg(ACK, ISS + 1, PEER_ISS + 1, WIN, &a[..1460]),
            seg(ACK | PSH | FIN, ISS + 1461, PEER_ISS + 1, WIN, &a[1460..]),
        ]
    );
    assert_eq!(
        tcb.send(b"more")
            .map_err(io::Error::from)
            .unwrap_err()
            .kind(),
        io::ErrorKind::BrokenPipe
    );
    // The ACK of the data but not the FIN keeps FIN-WAIT-1.
    seg_in(
        &mut tcb,
        at(20),
        &from_peer(ACK, PEER_ISS + 1, ISS + 2001, &[]),
    );
    assert_eq!(tcb.state(), State::FinWait1);
    seg_in(
        &mut tcb,
        at(21),
        &from_peer(ACK, PEER_ISS + 1, ISS + 2002, &[]),
    );
    assert_eq!(tcb.state(), State::FinWait2);
    assert!(tcb.fin_acked());
    assert_eq!(out(&mut tcb, at(21)), vec![]);
    assert_eq!(tcb.poll_timeout(), None);

    seg_in(
        &mut tcb,
        at(30),
        &from_peer(FIN | ACK, PEER_ISS + 1, ISS + 2002, &[]),
    );
    assert_eq!(tcb.state(), State::TimeWait);
    assert_eq!(
        out(&mut tcb, at(30)),
        vec![ack(ISS + 2002, PEER_ISS + 2, WIN)]
    );
    let msl2 = at(30) + 2 * config().msl;
    assert_eq!(tcb.poll_timeout(), Some(msl2));
    tcb.handle_timeout(Instant::from_micros(msl2.total_micros() - 1));
    assert_eq!(tcb.state(), State::TimeWait);
    tcb.handle_timeout(msl2);
    assert_eq!(tcb.state(), State::Closed);
    assert_eq!(tcb.error().map(crate::socket::io_kind), None);
    assert_eq!(tcb.poll_timeout(), None);
    assert_eq!(out(&mut tcb, msl2), vec![]);
}

/// RFC 9293 section 3.10.7.4 (fifth step, FIN-WAIT-1): the ACK of our FIN
/// moves to FIN-WAIT-2.
#[test]
fn fin_wait_1_ack() {
    let mut tcb = fin_wait_1();
    seg_in(&mut tcb, at(1), &from_peer(ACK, PEER_ISS + 1, ISS + 2, &[]));
    assert_eq!(tcb.state(), State::FinWait2);
    assert_eq!(out(&mut tcb, at(1)), vec![]);
    assert_eq!(tcb.poll_timeout(), None);
}

/// RFC 9293 section 3.10.7.4 (eighth step, FIN-WAIT-2): the peer's FIN is
/// acked and starts the 2*MSL timer.
#[test]
fn fin_wait_2_fin() {
    let mut tcb = fin_wait_2();
    seg_in(
        &mut tcb,
        at(100),
        &from_peer(FIN | ACK, PEER_ISS + 1, ISS + 2, &[]),
    );
    assert_eq!(tcb.state(), State::TimeWait);
    assert_eq!(
        out(&mut tcb, at(100)),
        vec![ack(ISS + 2, PEER_ISS + 2, WIN)]
    );
    assert_eq!(tcb.poll_timeout(), Some(at(2100)));
    let mut buf = [0u8; 4];
    assert_eq!(tcb.recv(&mut buf).unwrap(), 0);
}

/// RFC 9293 section 3.6 (half-close): in FIN-WAIT-2 we still receive data.
#[test]
fn fin_wait_2_recv_data() {
    let mut tcb = fin_wait_2();
    let a = data(100);
    seg_in(
        &mut tcb,
        at(1),
        &from_peer(ACK | PSH, PEER_ISS + 1, ISS + 2, &a),
    );
    assert_eq!(tcb.state(), State::FinWait2);
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![ack(ISS + 2, PEER_ISS + 101, WIN - 100)]
    );
    assert_eq!(read_all(&mut tcb), a);
}

/// RFC 9293 section 3.6 (half-close): in FIN-WAIT-1 we still receive data.
#[test]
fn fin_wait_1_recv_data() {
    let mut tcb = fin_wait_1();
    let a = data(100);
    seg_in(&mut tcb, at(1), &from_peer(ACK, PEER_ISS + 1, ISS + 1, &a));
    assert_eq!(tcb.state(), State::FinWait1);
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![ack(ISS + 2, PEER_ISS + 101, WIN - 100)]
    );
    assert_eq!(read_all(&mut tcb), a);
}

/// RFC 9293 section 3.6 and Figure 13 (simultaneous close): FIN-WAIT-1 plus
/// the peer's FIN (not acking ours) -> CLOSING, ACK sent; then the ACK of our
/// FIN -> TIME-WAIT.
#[test]
fn fin_wait_1_fin_then_closing_ack() {
    let mut tcb = fin_wait_1();
    seg_in(
        &mut tcb,
        at(5),
        &from_peer(FIN | ACK, PEER_ISS + 1, ISS + 1, &[]),
    );
    assert_eq!(tcb.state(), State::Closing);
    assert_eq!(out(&mut tcb, at(5)), vec![ack(ISS + 2, PEER_ISS + 2, WIN)]);
    seg_in(&mut tcb, at(6), &from_peer(ACK, PEER_ISS + 2, ISS + 2, &[]));
    assert_eq!(tcb.state(), State::TimeWait);
    assert_eq!(out(&mut tcb, at(6)), vec![]);
    assert_eq!(tcb.poll_timeout(), Some(at(2006)));
}

/// RFC 9293 section 3.10.7.4 (eighth step, FIN-WAIT-1): a FIN that also acks
/// our FIN goes straight to TIME-WAIT.
#[test]
fn fin_wait_1_fin_ack() {
    let mut tcb = fin_wait_1();
    seg_in(
        &mut tcb,
        at(5),
        &from_peer(FIN | ACK, PEER_ISS + 1, ISS + 2, &[]),
    );
    assert_eq!(tcb.state(), State::TimeWait);
    assert_eq!(out(&mut tcb, at(5)), vec![ack(ISS + 2, PEER_ISS + 2, WIN)]);
    assert_eq!(tcb.poll_timeout(), Some(at(2005)));
}

/// RFC 6298 (5.4) applied to the FIN (RFC 9293 section 3.8.1): an unacked FIN
/// is retransmitted on RTO.
#[test]
fn fin_wait_1_fin_retransmitted_on_rto() {
    let mut tcb = fin_wait_1();
    assert_eq!(tcb.poll_timeout(), Some(T0 + RTO));
    tcb.handle_timeout(T0 + RTO);
    assert_eq!(
        out(&mut tcb, T0 + RTO),
        vec![seg(FIN | ACK, ISS + 1, PEER_ISS + 1, WIN, &[])]
    );
    assert_eq!(tcb.poll_timeout(), Some(T0 + 3 * RTO));
    assert_eq!(tcb.state(), State::FinWait1);
}

/// RFC 9293 section 3.10.7.4 (eighth step, TIME-WAIT): a retransmitted FIN is
/// acked again and restarts the 2*MSL timeout.
#[test]
fn time_wait_fin_retransmitted() {
    let mut tcb = time_wait();
    assert_eq!(tcb.poll_timeout(), Some(at(2000)));
    seg_in(
        &mut tcb,
        at(1500),
        &from_peer(FIN | ACK, PEER_ISS + 1, ISS + 2, &[]),
    );
    assert_eq!(tcb.state(), State::TimeWait);
    assert_eq!(
        out(&mut tcb, at(1500)),
        vec![ack(ISS + 2, PEER_ISS + 2, WIN)]
    );
    assert_eq!(tcb.poll_timeout(), Some(at(3500)));
    tcb.handle_timeout(at(2000));
    assert_eq!(tcb.state(), State::TimeWait);
    tcb.handle_timeout(at(3500));
    assert_eq!(tcb.state(), State::Closed);
}

/// RFC 9293 section 3.6 and Figure 12 (passive side): FIN -> CLOSE-WAIT (ACK
/// sent, reads return end of stream) -close-> LAST-ACK (FIN sent) -ACK-> CLOSED.
#[test]
fn four_way_close_passive() {
    let mut tcb = established();
    seg_in(
        &mut tcb,
        at(10),
        &from_peer(FIN | ACK, PEER_ISS + 1, ISS + 1, &[]),
    );
    assert_eq!(tcb.state(), State::CloseWait);
    assert_eq!(out(&mut tcb, at(10)), vec![ack(ISS + 1, PEER_ISS + 2, WIN)]);
    let mut buf = [0u8; 16];
    assert_eq!(tcb.recv(&mut buf).unwrap(), 0);

    tcb.close();
    assert_eq!(tcb.state(), State::LastAck);
    assert_eq!(
        out(&mut tcb, at(20)),
        vec![seg(FIN | ACK, ISS + 1, PEER_ISS + 2, WIN, &[])]
    );
    assert_eq!(tcb.poll_timeout(), Some(at(20) + RTO));
    seg_in(
        &mut tcb,
        at(30),
        &from_peer(ACK, PEER_ISS + 2, ISS + 2, &[]),
    );
    assert_eq!(tcb.state(), State::Closed);
    assert_eq!(tcb.error().map(crate::socket::io_kind), None);
    assert_eq!(tcb.poll_timeout(), None);
    assert_eq!(out(&mut tcb, at(30)), vec![]);
}

/// RFC 9293 section 3.6 (half-close): in CLOSE-WAIT we can still send.
#[test]
fn close_wait_send_data() {
    let mut tcb = close_wait();
    let a = data(100);
    assert_eq!(tcb.send(&a).unwrap(), 100);
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![seg(ACK | PSH, ISS + 1, PEER_ISS + 2, WIN, &a)]
    );
    seg_in(
        &mut tcb,
        at(2),
        &from_peer(ACK, PEER_ISS + 2, ISS + 101, &[]),
    );
    assert!(tcb.all_acked());
    assert_eq!(tcb.state(), State::CloseWait);
}

/// RFC 6298 (5.4) for the FIN in LAST-ACK.
#[test]
fn last_ack_fin_retransmitted_on_rto() {
    let mut tcb = last_ack();
    tcb.handle_timeout(T0 + RTO);
    assert_eq!(
        out(&mut tcb, T0 + RTO),
        vec![seg(FIN | ACK, ISS + 1, PEER_ISS + 2, WIN, &[])]
    );
    assert_eq!(tcb.state(), State::LastAck);
}

/// RFC 9293 section 3.10.7.4 (fifth step, LAST-ACK): only the ACK of our FIN closes.
#[test]
fn last_ack_ack() {
    let mut tcb = last_ack();
    // An ACK below our FIN (a duplicate) changes nothing.
    seg_in(&mut tcb, at(1), &from_peer(ACK, PEER_ISS + 2, ISS + 1, &[]));
    assert_eq!(tcb.state(), State::LastAck);
    seg_in(&mut tcb, at(2), &from_peer(ACK, PEER_ISS + 2, ISS + 2, &[]));
    assert_eq!(tcb.state(), State::Closed);
    assert_eq!(tcb.error().map(crate::socket::io_kind), None);
}

/// After our own close, a send is `BrokenPipe` (EPIPE) in every later
/// state, also once TIME-WAIT is over and the connection is CLOSED; only an
/// error such as a reset would be reported instead.
#[test]
fn send_after_close_stays_broken_pipe() {
    let mut tcb = time_wait();
    assert_eq!(
        tcb.send(b"x").map_err(io::Error::from).unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );
    let end = T0 + 2 * config().msl;
    tcb.handle_timeout(end);
    assert_eq!(tcb.state(), State::Closed);
    assert_eq!(
        tcb.send(b"x").map_err(io::Error::from).unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );

    let mut tcb = established();
    seg_in(&mut tcb, at(1), &from_peer(RST, PEER_ISS + 1, 0, &[]));
    assert_eq!(
        tcb.send(b"x").map_err(io::Error::from).unwrap_err().kind(),
        io::ErrorKind::ConnectionReset
    );
}

// ----------------------------------------------------------------------
// Orphans: connections the application let go of
// ----------------------------------------------------------------------

/// An orphan in FIN-WAIT-2 whose peer never sends its FIN is reset
/// `orphan_fin_wait_2` (60 s) after FIN-WAIT-2 began, as Linux does after
/// `tcp_fin_timeout`; without the limit it would wait for ever.
#[test]
fn orphan_fin_wait_2_times_out() {
    let mut tcb = fin_wait_2();
    assert_eq!(
        tcb.poll_timeout(),
        None,
        "held by the application: no limit"
    );
    tcb.set_orphaned();
    let limit = T0 + Duration::from_secs(60);
    assert_eq!(tcb.poll_timeout(), Some(limit));
    tcb.handle_timeout(Instant::from_micros(limit.total_micros() - 1));
    assert_eq!(tcb.state(), State::FinWait2);
    tcb.handle_timeout(limit);
    assert_eq!(tcb.state(), State::Closed);
    let segs = out(&mut tcb, limit);
    assert_eq!(segs.len(), 1);
    assert!(
        segs[0].flags.contains(RST),
        "the peer is told: {:?}",
        segs[0]
    );
}

/// Let go of long after FIN-WAIT-2 began, the orphan's time is already up.
#[test]
fn orphan_released_late_in_fin_wait_2_goes_at_once() {
    let mut tcb = fin_wait_2();
    let now = T0 + Duration::from_secs(100);
    tcb.set_orphaned();
    assert!(tcb.poll_timeout().is_some_and(|t| t <= now));
    tcb.handle_timeout(now);
    assert_eq!(tcb.state(), State::Closed);
}

/// Runs `tcb`'s timers for at most `rounds` deadlines; returns how many
/// segments it sent and whether one was a RST.
fn run_timers(tcb: &mut Tcb, rounds: usize) -> (usize, bool) {
    let (mut sent, mut rst) = (0, false);
    for _ in 0..rounds {
        let Some(t) = tcb.poll_timeout() else { break };
        tcb.handle_timeout(t);
        for s in out(tcb, t) {
            sent += 1;
            rst |= s.flags.contains(RST);
        }
    }
    (sent, rst)
}

/// An orphan behind a zero window gives up after `orphan_probes` (8)
/// unanswered-by-a-window probes and is reset; a connection the application
/// holds keeps probing.
#[test]
fn orphan_behind_a_zero_window_gives_up_after_its_probes() {
    for orphan in [true, false] {
        let mut tcb = established();
        seg_in(&mut tcb, T0, &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 0));
        tcb.send(&data(1000)).unwrap();
        assert_eq!(out(&mut tcb, at(1)), vec![], "the window is shut");
        tcb.close();
        if orphan {
            tcb.set_orphaned();
        }
        let (sent, rst) = run_timers(&mut tcb, 40);
        if orphan {
            assert_eq!(tcb.state(), State::Closed);
            assert!(rst, "reset at the end");
            assert_eq!(sent, 8 + 1, "8 probes, then the RST");
        } else {
            assert_eq!(tcb.state(), State::FinWait1, "still probing");
            assert!(!rst);
            assert_eq!(sent, 40);
        }
    }
}
