//! Silent peers: keepalive (RFC 1122 4.2.3.6, RFC 9293 section 3.8.4) and
//! the user timeout (RFC 5482 semantics, Linux's `TCP_USER_TIMEOUT`).

use super::*;

const KA: Keepalive = Keepalive {
    idle: Duration::from_secs(10),
    interval: Duration::from_secs(1),
    count: 3,
};

/// The keepalive probe: SND.UNA - 1, no data (RFC 1122 4.2.3.6).
fn probe() -> Seg {
    ack(ISS, PEER_ISS + 1, WIN)
}

fn secs(s: u64) -> Instant {
    at(s * 1000)
}

/// Off by default: an idle connection arms no timer.
#[test]
fn keepalive_is_off_by_default() {
    let tcb = established();
    assert_eq!(tcb.keepalive(), None);
    assert_eq!(tcb.poll_timeout(), None);
}

/// `idle` after the last arrival a probe goes out, then one every
/// `interval`; `count` unanswered probes end the connection with
/// `TimedOut` and a RST.
#[test]
fn unanswered_keepalive_probes_time_the_connection_out() {
    let mut tcb = established_cfg(TcpConfig {
        keepalive: Some(KA),
        ..config()
    });
    assert_eq!(tcb.poll_timeout(), Some(secs(10)));
    for i in 0..3 {
        let t = secs(10 + i);
        assert_eq!(tcb.poll_timeout(), Some(t), "probe {i}");
        tcb.handle_timeout(t);
        assert_eq!(out(&mut tcb, t), vec![probe()], "probe {i}");
    }
    tcb.handle_timeout(secs(13));
    assert_eq!(tcb.state(), State::Closed);
    assert_eq!(
        tcb.error().map(crate::socket::io_kind),
        Some(io::ErrorKind::TimedOut)
    );
    let segs = out(&mut tcb, secs(13));
    assert_eq!(segs.len(), 1);
    assert!(segs[0].flags.contains(RST));
    assert_eq!(tcb.stats().keepalive_probes, 3);
}

/// An answered probe ends the probing; the idle time starts again from the
/// answer.
#[test]
fn an_answer_resets_the_keepalive() {
    let mut tcb = established();
    tcb.set_keepalive(T0, Some(KA));
    tcb.handle_timeout(secs(10));
    assert_eq!(out(&mut tcb, secs(10)), vec![probe()]);
    let answer = at(10_500);
    seg_in(
        &mut tcb,
        answer,
        &from_peer(ACK, PEER_ISS + 1, ISS + 1, &[]),
    );
    tcb.handle_timeout(secs(11));
    assert_eq!(out(&mut tcb, secs(11)), vec![], "no probe while not idle");
    assert_eq!(tcb.poll_timeout(), Some(at(20_500)));
    tcb.set_keepalive(secs(12), None);
    assert_eq!(tcb.poll_timeout(), None, "off again");
}

/// Data in flight: the retransmission timer watches the peer, keepalive
/// sends nothing.
#[test]
fn no_keepalive_probe_while_data_is_in_flight() {
    let mut tcb = established_cfg(TcpConfig {
        keepalive: Some(KA),
        max_retries: 100,
        ..config()
    });
    tcb.send(&data(100)).unwrap();
    assert_eq!(out(&mut tcb, at(1)).len(), 1);
    let mut probes = 0;
    for _ in 0..30 {
        let Some(t) = tcb.poll_timeout() else { break };
        if t > secs(30) {
            break;
        }
        tcb.handle_timeout(t);
        probes += out(&mut tcb, t)
            .iter()
            .filter(|s| s.payload.is_empty())
            .count();
    }
    assert_eq!(probes, 0);
    assert_eq!(tcb.stats().keepalive_probes, 0);
}

/// The user timeout: data unacknowledged for 3 s ends the connection with
/// `TimedOut` at the first retransmission timeout past it, long before
/// `max_retries` (8) would.
#[test]
fn user_timeout_ends_a_connection_whose_data_stays_unacknowledged() {
    let mut tcb = established_cfg(TcpConfig {
        user_timeout: Some(Duration::from_secs(3)),
        ..config()
    });
    tcb.send(&data(100)).unwrap();
    assert_eq!(out(&mut tcb, at(1)).len(), 1);
    let mut last = at(1);
    while tcb.state() != State::Closed {
        let t = tcb.poll_timeout().expect("the retransmission timer runs");
        assert!(t < secs(10), "still open at {t:?}");
        tcb.handle_timeout(t);
        out(&mut tcb, t);
        last = t;
    }
    assert!(last >= at(3001), "not before the user timeout: {last:?}");
    assert_eq!(
        tcb.error().map(crate::socket::io_kind),
        Some(io::ErrorKind::TimedOut)
    );
    assert!(tcb.stats().retransmits_timeout < 8);
}
