//! Resets: a RST received in each synchronized state (RFC 9293 section
//! 3.10.7.4, second check), RST acceptability and challenge ACKs (RFC 5961
//! section 3.2), and ABORT (RFC 9293 section 3.10.5).

use super::*;

/// RFC 9293 section 3.10.7.4 (second check): a RST at RCV.NXT in
/// ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2 or CLOSE-WAIT closes the connection
/// with "connection reset"; in CLOSING, LAST-ACK and TIME-WAIT it just closes.
fn assert_rst_closes(mut tcb: Tcb, rcv_nxt: u32, error: Option<io::ErrorKind>) {
    let state = tcb.state();
    assert_eq!(tcb.rcv_nxt(), SeqNum(rcv_nxt), "{state}");
    let v = seg_in(&mut tcb, at(50), &from_peer(RST, rcv_nxt, 0, &[]));
    assert_eq!(v, Verdict::Done, "{state}");
    assert_eq!(tcb.state(), State::Closed, "{state}");
    assert_eq!(tcb.error().map(crate::socket::io_kind), error, "{state}");
    assert_eq!(out(&mut tcb, at(50)), vec![], "{state}");
    assert_eq!(tcb.poll_timeout(), None, "{state}");
}

/// RFC 9293 section 3.10.7.4 (second check), ESTABLISHED: CLOSED, "connection reset".
#[test]
fn established_rst() {
    let mut tcb = established();
    tcb.send(&data(100)).unwrap();
    out(&mut tcb, at(1));
    assert_rst_closes(tcb, PEER_ISS + 1, Some(io::ErrorKind::ConnectionReset));
}

/// RFC 9293 section 3.10.7.4 (second check), ESTABLISHED: "all outstanding RECEIVEs and SEND should receive \"reset\" responses".
#[test]
fn established_rst_fails_reads_and_writes() {
    let mut tcb = established();
    seg_in(&mut tcb, at(1), &from_peer(RST, PEER_ISS + 1, 0, &[]));
    let mut buf = [0u8; 4];
    assert_eq!(
        tcb.recv(&mut buf)
            .map_err(io::Error::from)
            .unwrap_err()
            .kind(),
        io::ErrorKind::ConnectionReset
    );
    assert_eq!(
        tcb.send(b"x").map_err(io::Error::from).unwrap_err().kind(),
        io::ErrorKind::ConnectionReset
    );
}

/// RFC 9293 section 3.10.7.4 (second check), FIN-WAIT-1: CLOSED, "connection reset".
#[test]
fn fin_wait_1_rst() {
    assert_rst_closes(
        fin_wait_1(),
        PEER_ISS + 1,
        Some(io::ErrorKind::ConnectionReset),
    );
}

/// RFC 9293 section 3.10.7.4 (second check), FIN-WAIT-2: CLOSED, "connection reset".
#[test]
fn fin_wait_2_rst() {
    assert_rst_closes(
        fin_wait_2(),
        PEER_ISS + 1,
        Some(io::ErrorKind::ConnectionReset),
    );
}

/// RFC 9293 section 3.10.7.4 (second check), CLOSE-WAIT: CLOSED, "connection reset".
#[test]
fn close_wait_rst() {
    assert_rst_closes(
        close_wait(),
        PEER_ISS + 2,
        Some(io::ErrorKind::ConnectionReset),
    );
}

/// RFC 9293 section 3.10.7.4 (second check), CLOSING: CLOSED, no error.
#[test]
fn closing_rst() {
    assert_rst_closes(closing(), PEER_ISS + 2, None);
}

/// RFC 9293 section 3.10.7.4 (second check), LAST-ACK: CLOSED, no error.
#[test]
fn last_ack_rst() {
    assert_rst_closes(last_ack(), PEER_ISS + 2, None);
}

/// RFC 9293 section 3.10.7.4 (second check), TIME-WAIT, with RFC 1337's
/// protection off (`TcpConfig::rfc1337`, as Linux by default): CLOSED, no
/// error.
#[test]
fn time_wait_rst_without_rfc1337() {
    let mut tcb = time_wait();
    tcb.cfg.rfc1337 = false;
    assert_rst_closes(tcb, PEER_ISS + 2, None);
}

/// RFC 1337 (the default): a RST in TIME-WAIT is ignored; TIME-WAIT runs
/// its 2*MSL, and a retransmitted FIN is still acknowledged.
#[test]
fn time_wait_ignores_rst_rfc1337() {
    let mut tcb = time_wait();
    let deadline = tcb.poll_timeout();
    let v = seg_in(&mut tcb, at(50), &from_peer(RST, PEER_ISS + 2, 0, &[]));
    assert_eq!(v, Verdict::Done);
    assert_eq!(tcb.state(), State::TimeWait);
    assert_eq!(out(&mut tcb, at(50)), vec![]);
    assert_eq!(tcb.poll_timeout(), deadline, "the 2*MSL timer is untouched");
    seg_in(
        &mut tcb,
        at(60),
        &from_peer(FIN | ACK, PEER_ISS + 1, ISS + 2, &[]),
    );
    assert_eq!(out(&mut tcb, at(60)), vec![ack(ISS + 2, PEER_ISS + 2, WIN)]);
}

/// RFC 5961 section 3.2: a RST inside the window but not at RCV.NXT gets a
/// challenge ACK and changes nothing.
#[test]
fn established_rst_in_window_challenge_ack() {
    let mut tcb = established();
    let v = seg_in(&mut tcb, at(1), &from_peer(RST, PEER_ISS + 1000, 0, &[]));
    assert_eq!(v, Verdict::Done);
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(out(&mut tcb, at(1)), vec![ack(ISS + 1, PEER_ISS + 1, WIN)]);
    assert_eq!(tcb.error().map(crate::socket::io_kind), None);
}

/// RFC 9293 section 3.10.7.4 (first check) and RFC 5961 section 3.2: a RST
/// outside the window is silently dropped.
#[test]
fn established_rst_out_of_window_ignored() {
    let mut tcb = established();
    for seq in [
        PEER_ISS,
        PEER_ISS + 1 + RCV_BUF as u32,
        PEER_ISS + 1_000_000,
    ] {
        let v = seg_in(&mut tcb, at(1), &from_peer(RST, seq, 0, &[]));
        assert_eq!(v, Verdict::Done);
        assert_eq!(tcb.state(), State::Established, "seq {seq}");
        assert_eq!(out(&mut tcb, at(1)), vec![], "seq {seq}");
    }
}

/// RFC 9293 section 3.10.5 (ABORT in ESTABLISHED): send <SEQ=SND.NXT><CTL=RST>,
/// drop queued data, go to CLOSED.
#[test]
fn established_abort() {
    let mut tcb = established();
    tcb.send(&data(100)).unwrap();
    out(&mut tcb, at(1));
    tcb.send(&data(50)).unwrap();
    tcb.abort();
    assert_eq!(tcb.state(), State::Closed);
    assert!(tcb.reset_pending());
    assert_eq!(out(&mut tcb, at(2)), vec![seg(RST, ISS + 101, 0, 0, &[])]);
    assert_eq!(tcb.poll_timeout(), None);
    assert_eq!(tcb.send_queued(), 0);
    assert_eq!(out(&mut tcb, at(3)), vec![]);
}

/// RFC 9293 section 3.10.5 (ABORT in SYN-SENT): no RST, the peer knows nothing.
#[test]
fn syn_sent_abort() {
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), config());
    out(&mut tcb, T0);
    tcb.abort();
    assert_eq!(tcb.state(), State::Closed);
    assert_eq!(out(&mut tcb, at(1)), vec![]);
    assert_eq!(tcb.poll_timeout(), None);
}

/// RFC 9293 section 3.10.5 (ABORT in TIME-WAIT): "respond with ok and delete
/// the TCB" -- no RST.
#[test]
fn time_wait_abort() {
    let mut tcb = time_wait();
    tcb.abort();
    assert_eq!(tcb.state(), State::Closed);
    assert_eq!(out(&mut tcb, at(1)), vec![]);
}
