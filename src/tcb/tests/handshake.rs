//! Opening a connection: the passive open (LISTEN -> SYN-RECEIVED ->
//! ESTABLISHED), the active open from SYN-SENT and the simultaneous open
//! (RFC 9293 sections 3.5, 3.10.7.2 and 3.10.7.3), with SYN and SYN-ACK
//! retransmission.

use super::*;

// ----------------------------------------------------------------------
// Passive open: LISTEN -> SYN-RECEIVED -> ESTABLISHED
// ----------------------------------------------------------------------

/// RFC 9293 section 3.10.7.2 (LISTEN, third check) and Figure 6: a SYN is
/// answered with <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> carrying our MSS
/// (section 3.7.1), and the final ACK moves SYN-RECEIVED to ESTABLISHED.
#[test]
fn three_way_handshake_passive() {
    let syn = peer_syn(PEER_ISS);
    let mut tcb = Tcb::accept(&syn, SeqNum(ISS), config());
    assert_eq!(tcb.state(), State::SynReceived);
    assert_eq!(out(&mut tcb, T0), vec![our_syn_ack(ISS, PEER_ISS)]);
    // RFC 6298 (5.1): the SYN-ACK arms the retransmission timer (initial RTO 1 s).
    assert_eq!(tcb.poll_timeout(), Some(at(1000)));

    let v = seg_in(
        &mut tcb,
        at(10),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1, &[]),
    );
    assert_eq!(v, Verdict::Done);
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(out(&mut tcb, at(10)), vec![]);
    assert_eq!(tcb.snd_una(), SeqNum(ISS + 1));
    assert_eq!(tcb.rcv_nxt(), SeqNum(PEER_ISS + 1));
    assert_eq!(tcb.peer_window(), u32::from(PEER_WIN));
    // RFC 6298 (5.2): everything acked, the timer is off.
    assert_eq!(tcb.poll_timeout(), None);
    // RFC 6298 (2.2): the handshake gave the first RTT sample.
    assert_eq!(tcb.rtt().srtt(), Some(Duration::from_millis(10)));
}

/// RFC 9293 section 3.10.7.4 (fifth check, SYN-RECEIVED): an ACK outside
/// SND.UNA < SEG.ACK =< SND.NXT is answered with a reset.
#[test]
fn syn_received_bad_ack() {
    let mut tcb = syn_received();
    for bad in [ISS, ISS + 2, ISS + 1000, ISS - 1000] {
        let v = seg_in(&mut tcb, at(10), &from_peer(ACK, PEER_ISS + 1, bad, &[]));
        assert_eq!(v, Verdict::SendReset, "ack {bad}");
        assert_eq!(tcb.state(), State::SynReceived);
    }
    assert_eq!(out(&mut tcb, at(10)), vec![]);
}

/// RFC 9293 section 3.10.7.4 (second check, SYN-RECEIVED): a RST at RCV.NXT
/// ends the embryonic connection.
#[test]
fn syn_received_rst() {
    let mut tcb = syn_received();
    let v = seg_in(&mut tcb, at(10), &from_peer(RST, PEER_ISS + 1, 0, &[]));
    assert_eq!(v, Verdict::Done);
    assert_eq!(tcb.state(), State::Closed);
    assert_eq!(out(&mut tcb, at(10)), vec![]);
    assert_eq!(tcb.poll_timeout(), None);
}

/// RFC 9293 section 3.10.7.4 (fourth check) and Figure 9's recovery from a
/// lost SYN-ACK: the peer's retransmitted SYN gets the same SYN-ACK again.
#[test]
fn syn_received_duplicate_syn() {
    let mut tcb = syn_received();
    let v = seg_in(&mut tcb, at(500), &peer_syn(PEER_ISS));
    assert_eq!(v, Verdict::Done);
    assert_eq!(tcb.state(), State::SynReceived);
    assert_eq!(out(&mut tcb, at(500)), vec![our_syn_ack(ISS, PEER_ISS)]);
    // The handshake still completes.
    seg_in(
        &mut tcb,
        at(600),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1, &[]),
    );
    assert_eq!(tcb.state(), State::Established);
}

/// RFC 6298 (5.4)-(5.6) for the SYN-ACK: resent on RTO, the timer doubled;
/// RFC 6298 section 3 (Karn): no RTT sample from the retransmitted SYN-ACK.
#[test]
fn syn_received_syn_ack_retransmitted_on_rto() {
    let mut tcb = syn_received();
    assert_eq!(tcb.poll_timeout(), Some(at(1000)));
    tcb.handle_timeout(at(999));
    assert_eq!(out(&mut tcb, at(999)), vec![]);
    tcb.handle_timeout(at(1000));
    assert_eq!(out(&mut tcb, at(1000)), vec![our_syn_ack(ISS, PEER_ISS)]);
    assert_eq!(tcb.poll_timeout(), Some(at(3000)));
    assert_eq!(tcb.stats().retransmits_timeout, 1);

    seg_in(
        &mut tcb,
        at(1100),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1, &[]),
    );
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(tcb.rtt().srtt(), None);
}

/// RFC 9293 section 3.10.7.4: the handshake-completing ACK may carry data,
/// which is delivered (seventh step) once ESTABLISHED.
#[test]
fn syn_received_ack_with_data() {
    let mut tcb = syn_received();
    let payload = data(100);
    seg_in(
        &mut tcb,
        at(10),
        &from_peer(ACK | PSH, PEER_ISS + 1, ISS + 1, &payload),
    );
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(
        out(&mut tcb, at(10)),
        vec![ack(ISS + 1, PEER_ISS + 101, WIN - 100)]
    );
    assert_eq!(read_all(&mut tcb), payload);
}

/// RFC 9293 section 3.10.4 (CLOSE in SYN-RECEIVED) with section 3.8.1: a
/// close() before the handshake completed must not stop the SYN-ACK from
/// being retransmitted when it is lost; the FIN follows once established.
#[test]
fn syn_received_close_then_syn_ack_lost() {
    let mut tcb = syn_received();
    tcb.close();
    // The SYN-ACK was lost: the RTO must resend it (a SYN-ACK, not a FIN at ISS).
    let t = tcb.poll_timeout().expect("the SYN-ACK timer runs");
    tcb.handle_timeout(t);
    assert_eq!(out(&mut tcb, t), vec![our_syn_ack(ISS, PEER_ISS)]);
    // So does the peer's retransmitted SYN (section 3.10.7.4, fourth check).
    seg_in(&mut tcb, t, &peer_syn(PEER_ISS));
    assert_eq!(out(&mut tcb, t), vec![our_syn_ack(ISS, PEER_ISS)]);
    // The peer completes the handshake; our FIN goes out after it.
    let t = t + Duration::from_millis(10);
    seg_in(&mut tcb, t, &from_peer(ACK, PEER_ISS + 1, ISS + 1, &[]));
    assert_eq!(tcb.state(), State::FinWait1);
    assert_eq!(
        out(&mut tcb, t),
        vec![seg(FIN | ACK, ISS + 1, PEER_ISS + 1, WIN, &[])]
    );
    seg_in(&mut tcb, t, &from_peer(ACK, PEER_ISS + 1, ISS + 2, &[]));
    assert_eq!(tcb.state(), State::FinWait2);
}

// ----------------------------------------------------------------------
// Active open: SYN-SENT
// ----------------------------------------------------------------------

/// RFC 9293 section 3.10.1 (OPEN): connect sends <SEQ=ISS><CTL=SYN> with the
/// MSS (section 3.7.1) and window scale (RFC 7323 section 2.2) options, the
/// window unscaled, and arms the retransmission timer (RFC 6298 (2.1), 1 s).
#[test]
fn syn_sent_emits_syn() {
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), config());
    assert_eq!(tcb.state(), State::SynSent);
    assert_eq!(tcb.poll_timeout(), None);
    let syn = Seg {
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(0),
            ..TcpOptions::default()
        },
        ..seg(SYN, ISS, 0, WIN, &[])
    };
    assert_eq!(out(&mut tcb, T0), vec![syn]);
    assert_eq!(tcb.poll_timeout(), Some(at(1000)));
    assert_eq!(tcb.snd_nxt(), SeqNum(ISS + 1));
    // Nothing can be sent before the handshake is done.
    assert_eq!(
        tcb.send(b"early")
            .map_err(io::Error::from)
            .unwrap_err()
            .kind(),
        io::ErrorKind::WouldBlock
    );
}

/// RFC 9293 section 3.10.7.3 (SYN-SENT, fourth check) and Figure 6: an
/// acceptable SYN-ACK moves to ESTABLISHED and is answered with
/// <SEQ=ISS+1><ACK=RCV.NXT><CTL=ACK>.
#[test]
fn three_way_handshake_active() {
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), config());
    out(&mut tcb, T0);
    let syn_ack = TcpSegment {
        options: mss_only(1200),
        window: 30_000,
        ..from_peer(SYN | ACK, PEER_ISS, ISS + 1, &[])
    };
    assert_eq!(seg_in(&mut tcb, at(30), &syn_ack), Verdict::Done);
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(out(&mut tcb, at(30)), vec![ack(ISS + 1, PEER_ISS + 1, WIN)]);
    assert_eq!(tcb.send_mss(), 1200);
    assert_eq!(tcb.peer_window(), 30_000);
    // The peer did not offer window scaling, so neither side scales.
    assert_eq!(tcb.window_scales(), (0, 0));
    assert_eq!(tcb.poll_timeout(), None);
    assert_eq!(tcb.rtt().srtt(), Some(Duration::from_millis(30)));
}

/// RFC 9293 section 3.10.7.3 (SYN-SENT, second check): a RST with an
/// acceptable ACK means "connection refused".
#[test]
fn syn_sent_rst_ack() {
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), config());
    out(&mut tcb, T0);
    let v = seg_in(&mut tcb, at(1), &from_peer(RST | ACK, 0, ISS + 1, &[]));
    assert_eq!(v, Verdict::Done);
    assert_eq!(tcb.state(), State::Closed);
    assert_eq!(
        tcb.error().map(crate::socket::io_kind),
        Some(io::ErrorKind::ConnectionRefused)
    );
    assert_eq!(tcb.poll_timeout(), None);
    assert_eq!(out(&mut tcb, at(1)), vec![]);
    assert_eq!(
        tcb.send(b"x").map_err(io::Error::from).unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
}

/// RFC 9293 section 3.10.7.3 (SYN-SENT, second check): a RST without ACK is dropped.
#[test]
fn syn_sent_rst_without_ack() {
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), config());
    out(&mut tcb, T0);
    let v = seg_in(&mut tcb, at(1), &from_peer(RST, 0, 0, &[]));
    assert_eq!(v, Verdict::Done);
    assert_eq!(tcb.state(), State::SynSent);
    assert_eq!(out(&mut tcb, at(1)), vec![]);
}

/// RFC 9293 section 3.10.7.3 (SYN-SENT, first check): SEG.ACK =< ISS or
/// SEG.ACK > SND.NXT is answered with a reset, unless the segment is itself
/// a RST, which is dropped.
#[test]
fn syn_sent_bad_ack() {
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), config());
    out(&mut tcb, T0);
    for bad in [ISS, ISS - 1, ISS + 2] {
        let v = seg_in(&mut tcb, at(1), &from_peer(SYN | ACK, PEER_ISS, bad, &[]));
        assert_eq!(v, Verdict::SendReset, "ack {bad}");
        assert_eq!(tcb.state(), State::SynSent);
        let v = seg_in(&mut tcb, at(1), &from_peer(RST | ACK, PEER_ISS, bad, &[]));
        assert_eq!(v, Verdict::Done, "RST with ack {bad}");
        assert_eq!(tcb.state(), State::SynSent);
    }
    assert_eq!(out(&mut tcb, at(1)), vec![]);
}

/// RFC 9293 section 3.10.7.3 (SYN-SENT, fourth check) and Figure 8: a bare
/// SYN is a simultaneous open: SYN-RECEIVED, send <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>;
/// the peer's SYN-ACK then completes it (Figure 8 line 6: no further segment).
#[test]
fn simultaneous_open() {
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), config());
    out(&mut tcb, T0);
    let syn = TcpSegment {
        options: mss_only(1460),
        ..from_peer(SYN, PEER_ISS, 0, &[])
    };
    assert_eq!(seg_in(&mut tcb, at(5), &syn), Verdict::Done);
    assert_eq!(tcb.state(), State::SynReceived);
    // Our MSS again; no window scale, since the peer's SYN did not offer it.
    assert_eq!(out(&mut tcb, at(5)), vec![our_syn_ack(ISS, PEER_ISS)]);
    let syn_ack = TcpSegment {
        options: mss_only(1460),
        ..from_peer(SYN | ACK, PEER_ISS, ISS + 1, &[])
    };
    assert_eq!(seg_in(&mut tcb, at(10), &syn_ack), Verdict::Done);
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(out(&mut tcb, at(10)), vec![]);
    assert_eq!(tcb.snd_una(), SeqNum(ISS + 1));
    assert_eq!(tcb.rcv_nxt(), SeqNum(PEER_ISS + 1));
    assert_eq!(tcb.poll_timeout(), None);
}

/// RFC 7323 section 2.2: "The window field in a segment where the SYN bit is
/// set MUST NOT be scaled" -- also the SYN-ACK that completes a simultaneous open.
#[test]
fn simultaneous_open_syn_ack_window_not_scaled() {
    let cfg = TcpConfig {
        recv_buffer: 512 * 1024,
        ..config()
    };
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), cfg);
    out(&mut tcb, T0);
    let opts = TcpOptions {
        mss: Some(1460),
        window_scale: Some(3),
        ..TcpOptions::default()
    };
    let syn = TcpSegment {
        options: opts,
        window: 20_000,
        ..from_peer(SYN, PEER_ISS, 0, &[])
    };
    seg_in(&mut tcb, at(5), &syn);
    assert_eq!(tcb.state(), State::SynReceived);
    out(&mut tcb, at(5));
    let syn_ack = TcpSegment {
        options: opts,
        window: 20_000,
        ..from_peer(SYN | ACK, PEER_ISS, ISS + 1, &[])
    };
    seg_in(&mut tcb, at(10), &syn_ack);
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(tcb.window_scales(), (4, 3));
    assert_eq!(tcb.peer_window(), 20_000);
    // Sender SWS avoidance and RFC 5961 section 5.2 use the largest window seen.
    assert_eq!(tcb.max_peer_window(), 20_000);
    // The next, non-SYN segment is scaled.
    seg_in(
        &mut tcb,
        at(20),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 20_000),
    );
    assert_eq!(tcb.peer_window(), 160_000);
}

/// RFC 6298 (5.5) and RFC 9293 section 3.8.1: the SYN is retransmitted with
/// exponential back-off (1 s, 2 s, 4 s, ...) and connect gives up with
/// TimedOut after `max_syn_retries` retransmissions (RFC 1122 4.2.3.5).
#[test]
fn syn_sent_retransmit_backoff_then_timeout() {
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), config());
    let syn = out(&mut tcb, T0);
    assert_eq!(syn.len(), 1);
    let mut deadline = 1000;
    let mut interval = 1000;
    for retry in 1..=5 {
        assert_eq!(tcb.poll_timeout(), Some(at(deadline)), "retry {retry}");
        tcb.handle_timeout(at(deadline - 1));
        assert_eq!(out(&mut tcb, at(deadline - 1)), vec![]);
        tcb.handle_timeout(at(deadline));
        assert_eq!(out(&mut tcb, at(deadline)), syn, "retry {retry}");
        interval *= 2;
        deadline += interval;
    }
    assert_eq!(deadline, 63_000);
    assert_eq!(tcb.poll_timeout(), Some(at(deadline)));
    tcb.handle_timeout(at(deadline));
    assert_eq!(tcb.state(), State::Closed);
    assert_eq!(
        tcb.error().map(crate::socket::io_kind),
        Some(io::ErrorKind::TimedOut)
    );
    assert_eq!(out(&mut tcb, at(deadline)), vec![]);
    assert_eq!(tcb.poll_timeout(), None);
}

/// RFC 6298 section 3 (Karn): a SYN-ACK answering a retransmitted SYN gives no RTT sample.
#[test]
fn syn_sent_no_rtt_sample_after_retransmission() {
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), config());
    out(&mut tcb, T0);
    tcb.handle_timeout(at(1000));
    assert_eq!(out(&mut tcb, at(1000)).len(), 1);
    seg_in(
        &mut tcb,
        at(1010),
        &from_peer(SYN | ACK, PEER_ISS, ISS + 1, &[]),
    );
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(tcb.rtt().srtt(), None);
}

/// RFC 9293 section 3.10.7.3 (SYN-SENT, fourth check): text on the SYN-ACK
/// is kept and acknowledged with the handshake's ACK, not dropped for the
/// peer to retransmit; a FIN on it moves us straight to CLOSE-WAIT.
#[test]
fn syn_sent_syn_ack_with_data_and_fin() {
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), config());
    out(&mut tcb, T0);
    let syn_ack = TcpSegment {
        options: mss_only(1460),
        ..from_peer(SYN | ACK, PEER_ISS, ISS + 1, b"hello")
    };
    seg_in(&mut tcb, at(1), &syn_ack);
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![ack(ISS + 1, PEER_ISS + 6, WIN - 5)]
    );
    assert_eq!(read_all(&mut tcb), b"hello");

    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), config());
    out(&mut tcb, T0);
    let syn_ack_fin = TcpSegment {
        options: mss_only(1460),
        ..from_peer(SYN | ACK | FIN, PEER_ISS, ISS + 1, b"bye")
    };
    seg_in(&mut tcb, at(1), &syn_ack_fin);
    assert_eq!(tcb.state(), State::CloseWait);
    assert_eq!(
        out(&mut tcb, at(1)),
        // The FIN took one sequence number of the window we offered, and
        // the right edge never moves left: 3 bytes + FIN.
        vec![ack(ISS + 1, PEER_ISS + 5, WIN - 4)]
    );
    assert_eq!(read_all(&mut tcb), b"bye");
}
