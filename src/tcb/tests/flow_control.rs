//! Flow control (RFC 9293 section 3.8.6): the peer's window limits what we
//! send, a zero window is probed (persist timer), and our own window follows the
//! free receive buffer, with window updates.

use super::*;

/// RFC 9293 section 3.8.6 and RFC 5681 section 3.1: we never send beyond
/// SND.UNA+SND.WND; more goes out as the peer's ACKs open the window.
#[test]
fn established_send_respects_peer_window() {
    let mut tcb = established();
    seg_in(
        &mut tcb,
        T0,
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 1000),
    );
    assert_eq!(tcb.peer_window(), 1000);
    let a = data(2500);
    assert_eq!(tcb.send(&a).unwrap(), 2500);
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![seg(ACK, ISS + 1, PEER_ISS + 1, WIN, &a[..1000])]
    );
    // The window is full: nothing more.
    assert_eq!(out(&mut tcb, at(2)), vec![]);
    seg_in(
        &mut tcb,
        at(3),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1001, 1000),
    );
    assert_eq!(
        out(&mut tcb, at(3)),
        vec![seg(ACK, ISS + 1001, PEER_ISS + 1, WIN, &a[1000..2000])]
    );
    seg_in(
        &mut tcb,
        at(4),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 2001, 1000),
    );
    assert_eq!(
        out(&mut tcb, at(4)),
        vec![seg(ACK | PSH, ISS + 2001, PEER_ISS + 1, WIN, &a[2000..])]
    );
    seg_in(
        &mut tcb,
        at(5),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 2501, 1000),
    );
    assert!(tcb.all_acked());
    assert_eq!(tcb.poll_timeout(), None);
}

/// RFC 9293 section 3.8.6.1 and RFC 1122 4.2.2.17: with a zero window from
/// the peer, data waits; after an RTO the persist timer sends a probe
/// (backing off exponentially); when the window opens, data flows.
#[test]
fn zero_window_probe() {
    let mut tcb = established();
    seg_in(
        &mut tcb,
        at(1),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 0),
    );
    assert_eq!(tcb.peer_window(), 0);
    let a = data(100);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(1000)), vec![]);
    assert_eq!(tcb.poll_timeout(), Some(at(1000) + RTO));
    tcb.handle_timeout(at(1000) + RTO);
    // The probe: an old sequence number (SND.UNA - 1) that must be answered.
    assert_eq!(out(&mut tcb, at(1200)), vec![ack(ISS, PEER_ISS + 1, WIN)]);
    assert_eq!(tcb.stats().zero_window_probes, 1);
    // The next probe backs off.
    assert_eq!(tcb.poll_timeout(), Some(at(1200) + 2 * RTO));
    // The peer answers with the window still closed; the next probe follows.
    seg_in(
        &mut tcb,
        at(1210),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 0),
    );
    assert_eq!(out(&mut tcb, at(1210)), vec![]);
    tcb.handle_timeout(at(1600));
    assert_eq!(out(&mut tcb, at(1600)), vec![ack(ISS, PEER_ISS + 1, WIN)]);
    assert_eq!(tcb.stats().zero_window_probes, 2);

    // The window opens: the data goes out, the persist timer is off.
    seg_in(
        &mut tcb,
        at(1610),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 1000),
    );
    assert_eq!(
        out(&mut tcb, at(1610)),
        vec![seg(ACK | PSH, ISS + 1, PEER_ISS + 1, WIN, &a)]
    );
    assert_eq!(tcb.poll_timeout(), Some(at(1610) + RTO));
}

/// RFC 9293 section 3.8.6 and RFC 1122 4.2.3.3: our window is the free
/// receive buffer; it shrinks to zero when the application does not read,
/// and a window update is sent once reading frees at least
/// min(RCV.BUFF/2, MSS) -- not for every crumb.
#[test]
fn our_window_shrinks_to_zero_then_update() {
    let cfg = TcpConfig {
        recv_buffer: 2000,
        ..config()
    };
    let mut tcb = established_cfg(cfg);
    let a = data(2000);
    seg_in(
        &mut tcb,
        at(1),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1, &a[..1000]),
    );
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![ack(ISS + 1, PEER_ISS + 1001, 1000)]
    );
    seg_in(
        &mut tcb,
        at(2),
        &from_peer(ACK, PEER_ISS + 1001, ISS + 1, &a[1000..]),
    );
    assert_eq!(out(&mut tcb, at(2)), vec![ack(ISS + 1, PEER_ISS + 2001, 0)]);

    let mut buf = [0u8; 500];
    assert_eq!(tcb.recv(&mut buf).unwrap(), 500);
    assert_eq!(out(&mut tcb, at(3)), vec![]);
    assert_eq!(tcb.recv(&mut buf).unwrap(), 500);
    assert_eq!(
        out(&mut tcb, at(4)),
        vec![ack(ISS + 1, PEER_ISS + 2001, 1000)]
    );
    let mut rest = [0u8; 2000];
    assert_eq!(tcb.recv(&mut rest).unwrap(), 1000);
    assert_eq!(
        out(&mut tcb, at(5)),
        vec![ack(ISS + 1, PEER_ISS + 2001, 2000)]
    );
}

/// RFC 9293 section 3.8.6.1: "The receiving TCP endpoint ... MUST ... send
/// an acknowledgment" to a zero-window probe. A probe carrying one byte at
/// RCV.NXT into our zero window is not acceptable: drop the data, send an ACK
/// with the current window (section 3.10.7.4, first check).
#[test]
fn zero_window_probe_from_peer_is_acked() {
    let cfg = TcpConfig {
        recv_buffer: 1000,
        ..config()
    };
    let mut tcb = established_cfg(cfg);
    let a = data(1001);
    seg_in(
        &mut tcb,
        at(1),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1, &a[..1000]),
    );
    assert_eq!(out(&mut tcb, at(1)), vec![ack(ISS + 1, PEER_ISS + 1001, 0)]);
    seg_in(
        &mut tcb,
        at(500),
        &from_peer(ACK, PEER_ISS + 1001, ISS + 1, &a[1000..]),
    );
    assert_eq!(
        out(&mut tcb, at(500)),
        vec![ack(ISS + 1, PEER_ISS + 1001, 0)]
    );
    assert_eq!(tcb.recv_queued(), 1000);
}

/// RFC 9293 section 3.10.7.4: with a zero receive window, an ACK at RCV.NXT
/// is still processed (it may ack our data and update the send window).
#[test]
fn zero_receive_window_still_processes_acks() {
    let cfg = TcpConfig {
        recv_buffer: 1000,
        ..config()
    };
    let mut tcb = established_cfg(cfg);
    tcb.send(&data(100)).unwrap();
    out(&mut tcb, at(1));
    seg_in(
        &mut tcb,
        at(2),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1, &data(1000)),
    );
    out(&mut tcb, at(2));
    seg_in(
        &mut tcb,
        at(3),
        &from_peer(ACK, PEER_ISS + 1001, ISS + 101, &[]),
    );
    assert!(tcb.all_acked());
}

/// RFC 1122 4.2.2.16 (and RFC 9293 section 3.8.6.1): a sender "MUST be
/// robust against window shrinking"; it "SHOULD NOT time out the connection"
/// because data beyond the right edge is not acknowledged, and "if the window
/// shrinks to zero, the TCP MUST probe it in the standard way". Here the peer
/// acks one of two segments with a zero window and then answers every probe.
#[test]
fn window_shrunk_to_zero_with_data_in_flight_is_probed() {
    let mut tcb = established();
    let a = data(2920);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(1)).len(), 2);
    seg_in(
        &mut tcb,
        at(2),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1461, 0),
    );
    assert_eq!(out(&mut tcb, at(2)), vec![]);
    // Nothing new may be sent into the zero window (old data MAY be resent).
    let no_new_data = |segs: &[Seg]| {
        for s in segs {
            let end = s.seq.wrapping_add(s.payload.len() as u32);
            assert!(SeqNum(end).le(SeqNum(ISS + 2921)), "{s:?}");
        }
    };
    for i in 0..20 {
        let t = tcb
            .poll_timeout()
            .expect("a timer runs while data is unacknowledged");
        tcb.handle_timeout(t);
        // Each expiry sends a zero-window probe.
        assert_eq!(out(&mut tcb, t), vec![ack(ISS + 1460, PEER_ISS + 1, WIN)]);
        assert_eq!(tcb.stats().zero_window_probes, i + 1);
        // The peer is alive: it answers with its (still zero) window.
        seg_in(
            &mut tcb,
            t,
            &from_peer_win(ACK, PEER_ISS + 1, ISS + 1461, 0),
        );
        no_new_data(&out(&mut tcb, t));
    }
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(tcb.error().map(crate::socket::io_kind), None);
    // The window opens: the unacknowledged segment goes out again.
    let t = tcb.poll_timeout().unwrap();
    seg_in(
        &mut tcb,
        t,
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1461, 5000),
    );
    assert_eq!(
        out(&mut tcb, t),
        vec![seg(ACK | PSH, ISS + 1461, PEER_ISS + 1, WIN, &a[1460..])]
    );
}

/// A writer blocked on a full send buffer is woken once half of it is free
/// (the runtime then refills half a buffer per wake-up), not for every ACK
/// that frees a segment; `can_send` still says "any room". (Linux's
/// `sk_stream_write_space` has the same shape with a third.)
#[test]
fn writable_is_raised_once_half_the_send_buffer_is_free() {
    let mut tcb = established_cfg(TcpConfig {
        send_buffer: 8000,
        ..config()
    });
    while tcb.poll_event().is_some() {}
    let a = data(9000);
    assert_eq!(tcb.send(&a).unwrap(), 8000);
    assert!(!tcb.can_send());
    let sent: usize = out(&mut tcb, at(1)).iter().map(|s| s.payload.len()).sum();
    assert_eq!(sent, 8000, "the peer's window takes the whole buffer");
    // 3000 bytes acknowledged: room, but less than half the buffer.
    seg_in(
        &mut tcb,
        at(2),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1 + 3000, &[]),
    );
    assert!(tcb.can_send());
    assert_eq!(tcb.poll_event(), None);
    // 4000 acknowledged: half the buffer is free.
    seg_in(
        &mut tcb,
        at(3),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1 + 4000, &[]),
    );
    assert_eq!(tcb.poll_event(), Some(ConnEvent::Writable));
    assert_eq!(tcb.poll_event(), None);
}
