//! Two utcp stacks over the simulated link: handshake, data, close.

mod sim_util;

use std::net::SocketAddrV4;
use std::time::Duration;

use utcp::sim::SimNet;
use utcp::stack::ConnId;
use utcp::stack::Event;
use utcp::state::State;
use utcp::tcb::{ConnEvent, TcpError};
use utcp::testing::{init_logger, pattern, tcp_segment};

use sim_util::{establish, net, History, Side, Stream, A, B};

#[test]
fn handshake_data_and_close() {
    init_logger();
    let mut n = net();
    n.b.listen(80, 8).unwrap();
    let now = n.now();
    let c = n.a.connect(now, SocketAddrV4::new(B, 80)).unwrap();
    assert!(
        n.run_until(Duration::from_secs(5), |n| n.a.tcb(c).unwrap().state()
            == State::Established)
    );
    let mut s = None;
    assert!(n.run_until(Duration::from_secs(5), |n| {
        s = n.b.accept(80);
        s.is_some()
    }));
    let s = s.unwrap();
    let data = pattern(200_000, 0);
    let mut sent = 0;
    let mut got = Vec::new();
    let ok = n.run_until(Duration::from_secs(60), |n| {
        if sent < data.len() {
            if let Ok(k) = n.a.tcb_mut(c).unwrap().send(&data[sent..]) {
                sent += k;
            }
        }
        let mut buf = [0u8; 4096];
        while let Ok(k) = n.b.tcb_mut(s).unwrap().recv(&mut buf) {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
        got.len() == data.len()
    });
    assert!(ok, "got {} of {}", got.len(), data.len());
    assert_eq!(got, data);
    n.a.tcb_mut(c).unwrap().close();
    assert!(
        n.run_until(Duration::from_secs(5), |n| n.b.tcb(s).unwrap().state()
            == State::CloseWait)
    );
    let mut buf = [0u8; 16];
    assert_eq!(n.b.tcb_mut(s).unwrap().recv(&mut buf).unwrap(), 0);
    n.b.tcb_mut(s).unwrap().close();
    assert!(
        n.run_until(Duration::from_secs(5), |n| n.b.tcb(s).unwrap().state()
            == State::Closed)
    );
    assert_eq!(n.a.tcb(c).unwrap().state(), State::TimeWait);
    assert!(
        n.run_until(Duration::from_secs(5), |n| n.a.tcb(c).unwrap().state()
            == State::Closed)
    );
}

#[test]
fn three_way_handshake() {
    init_logger();
    let mut n = net();
    n.set_trace(true);
    let (c, s) = establish(&mut n);
    assert_eq!(n.a.tcb(c).unwrap().state(), State::Established);
    assert_eq!(n.b.tcb(s).unwrap().state(), State::Established);
    // SYN, SYN-ACK, ACK and nothing else; one round trip and a half.
    let flags: Vec<_> = n
        .trace
        .iter()
        .map(|t| (t.dir, tcp_segment(&t.bytes).unwrap().flags))
        .collect();
    use utcp::sim::Dir::*;
    use utcp::wire::TcpFlags as F;
    assert_eq!(
        flags,
        vec![(AtoB, F::SYN), (BtoA, F::SYN | F::ACK), (AtoB, F::ACK)]
    );
    assert_eq!(n.now(), utcp::time::Instant::from_millis(30));
    // Each side knows the other's ISN.
    assert_eq!(
        n.a.tcb(c).unwrap().rcv_nxt(),
        n.b.tcb(s).unwrap().iss() + 1u32
    );
    assert_eq!(
        n.b.tcb(s).unwrap().rcv_nxt(),
        n.a.tcb(c).unwrap().iss() + 1u32
    );
    assert_eq!(n.b.accept(80), None, "exactly one connection to accept");
}

#[test]
fn data_both_ways_at_once() {
    init_logger();
    let mut n = net();
    let (c, s) = establish(&mut n);
    let mut ab = Stream::new(Side::A, c, s, pattern(200_000, 1));
    let mut ba = Stream::new(Side::B, s, c, pattern(200_000, 2));
    let ok = n.run_until(Duration::from_secs(60), |n| {
        ab.pump(n);
        ba.pump(n);
        ab.done() && ba.done()
    });
    assert!(
        ok,
        "a->b {} of 200000, b->a {} of 200000",
        ab.got.len(),
        ba.got.len()
    );
    ab.check();
    ba.check();
    assert!(n.run_until(Duration::from_secs(1), |n| {
        n.a.tcb(c).unwrap().all_acked() && n.b.tcb(s).unwrap().all_acked()
    }));
    for t in [n.a.tcb(c).unwrap(), n.b.tcb(s).unwrap()] {
        assert_eq!(t.stats().retransmits_timeout, 0);
        assert_eq!(t.stats().fast_retransmits, 0);
    }
}

/// `closer` closes first, the other side closes once it read the EOF.
/// Returns the state histories of (closer, other).
fn orderly_close(n: &mut SimNet, closer: Side, ids: (ConnId, ConnId)) -> (History, History) {
    let (c, s) = ids;
    let (mine, theirs) = match closer {
        Side::A => (c, s),
        Side::B => (s, c),
    };
    let other = match closer {
        Side::A => Side::B,
        Side::B => Side::A,
    };
    let mut data = Stream::new(closer, mine, theirs, pattern(10_000, 3)).closing();
    let (mut hc, mut ho) = (History::default(), History::default());
    let mut other_closed = false;
    let ok = n.run_until(Duration::from_secs(30), |n| {
        hc.record(sim_util::state(n, closer, mine));
        ho.record(sim_util::state(n, other, theirs));
        data.pump(n);
        // Close only once the closer sits in FIN-WAIT-2, so that the ACK of
        // its FIN and our FIN travel separately (a four-way close).
        if data.eof && !other_closed && sim_util::state(n, closer, mine) == State::FinWait2 {
            sim_util::stack(n, other).tcb_mut(theirs).unwrap().close();
            other_closed = true;
        }
        hc.record(sim_util::state(n, closer, mine));
        ho.record(sim_util::state(n, other, theirs));
        sim_util::state(n, closer, mine) == State::Closed
            && sim_util::state(n, other, theirs) == State::Closed
    });
    assert!(ok, "close did not finish: {hc:?} / {ho:?}");
    data.check();
    (hc, ho)
}

fn assert_four_way_close(hc: &History, ho: &History) {
    use State::*;
    assert!(
        hc.passed_through(&[Established, FinWait1, FinWait2, TimeWait, Closed]),
        "active closer: {hc:?}"
    );
    assert!(
        ho.passed_through(&[Established, CloseWait, LastAck, Closed]),
        "passive closer: {ho:?}"
    );
    assert!(!hc.0.contains(&Closing) && !ho.0.contains(&TimeWait));
}

#[test]
fn active_close_from_a() {
    init_logger();
    let mut n = net();
    let ids = establish(&mut n);
    let (hc, ho) = orderly_close(&mut n, Side::A, ids);
    assert_four_way_close(&hc, &ho);
    assert_eq!(n.a.tcb(ids.0).unwrap().error(), None);
    assert_eq!(n.b.tcb(ids.1).unwrap().error(), None);
}

#[test]
fn active_close_from_b() {
    init_logger();
    let mut n = net();
    let ids = establish(&mut n);
    let (hc, ho) = orderly_close(&mut n, Side::B, ids);
    assert_four_way_close(&hc, &ho);
    assert_eq!(n.a.tcb(ids.0).unwrap().error(), None);
    assert_eq!(n.b.tcb(ids.1).unwrap().error(), None);
}

#[test]
fn simultaneous_open() {
    init_logger();
    let mut n = net();
    let now = n.now();
    let c =
        n.a.connect_from(now, 5000, SocketAddrV4::new(B, 6000))
            .unwrap();
    let s =
        n.b.connect_from(now, 6000, SocketAddrV4::new(A, 5000))
            .unwrap();
    let (mut ha, mut hb) = (History::default(), History::default());
    let ok = n.run_until(Duration::from_secs(10), |n| {
        ha.record(n.a.tcb(c).unwrap().state());
        hb.record(n.b.tcb(s).unwrap().state());
        ha.0.last() == Some(&State::Established) && hb.0.last() == Some(&State::Established)
    });
    assert!(ok, "a: {ha:?}, b: {hb:?}");
    // RFC 9293 Figure 8: SYN-SENT -> SYN-RECEIVED -> ESTABLISHED on both sides.
    use State::*;
    assert_eq!(ha.0, vec![SynSent, SynReceived, Established]);
    assert_eq!(hb.0, vec![SynSent, SynReceived, Established]);
    assert_eq!(n.b.stats().resets_sent + n.a.stats().resets_sent, 0);
    // And the connection carries data both ways.
    let mut ab = Stream::new(Side::A, c, s, pattern(50_000, 4));
    let mut ba = Stream::new(Side::B, s, c, pattern(50_000, 5));
    assert!(n.run_until(Duration::from_secs(30), |n| {
        ab.pump(n);
        ba.pump(n);
        ab.done() && ba.done()
    }));
    ab.check();
    ba.check();
}

#[test]
fn simultaneous_close() {
    init_logger();
    let mut n = net();
    let (c, s) = establish(&mut n);
    n.a.tcb_mut(c).unwrap().close();
    n.b.tcb_mut(s).unwrap().close();
    let (mut ha, mut hb) = (History::default(), History::default());
    let ok = n.run_until(Duration::from_secs(30), |n| {
        ha.record(n.a.tcb(c).unwrap().state());
        hb.record(n.b.tcb(s).unwrap().state());
        ha.0.last() == Some(&State::Closed) && hb.0.last() == Some(&State::Closed)
    });
    assert!(ok, "a: {ha:?}, b: {hb:?}");
    // RFC 9293 Figure 13: FIN-WAIT-1 -> CLOSING -> TIME-WAIT -> CLOSED on both sides.
    use State::*;
    assert_eq!(ha.0, vec![FinWait1, Closing, TimeWait, Closed]);
    assert_eq!(hb.0, vec![FinWait1, Closing, TimeWait, Closed]);
    let mut buf = [0u8; 8];
    assert_eq!(n.a.tcb_mut(c).unwrap().recv(&mut buf).unwrap(), 0);
    assert_eq!(n.b.tcb_mut(s).unwrap().recv(&mut buf).unwrap(), 0);
}

#[test]
fn half_close_peer_keeps_sending() {
    init_logger();
    let mut n = net();
    let (c, s) = establish(&mut n);
    n.a.tcb_mut(c).unwrap().close();
    // B sees A's FIN first ...
    assert!(n.run_until(Duration::from_secs(5), |n| {
        n.b.tcb(s).unwrap().state() == State::CloseWait
            && n.a.tcb(c).unwrap().state() == State::FinWait2
    }));
    let mut buf = [0u8; 8];
    assert_eq!(n.b.tcb_mut(s).unwrap().recv(&mut buf).unwrap(), 0);
    assert!(
        n.a.tcb_mut(c).unwrap().send(b"x").is_err(),
        "A's write side is shut"
    );
    // ... and keeps sending 100 KB, then closes.
    let mut ba = Stream::new(Side::B, s, c, pattern(100_000, 6)).closing();
    let ok = n.run_until(Duration::from_secs(30), |n| {
        ba.pump(n);
        ba.done()
    });
    assert!(ok, "a got {} of 100000, eof {}", ba.got.len(), ba.eof);
    ba.check();
    assert!(n.run_until(Duration::from_secs(5), |n| {
        n.b.tcb(s).unwrap().state() == State::Closed
            && n.a.tcb(c).unwrap().state() == State::TimeWait
    }));
}

/// Every event both stacks report while `until` runs (at most 5 s of simulated time).
fn run_collecting(
    n: &mut SimNet,
    mut until: impl FnMut(&mut SimNet) -> bool,
) -> (Vec<Event>, Vec<Event>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    let done = n.run_until(Duration::from_secs(5), |n| {
        ea.extend(std::iter::from_fn(|| n.a.poll_event()));
        eb.extend(std::iter::from_fn(|| n.b.poll_event()));
        until(n)
    });
    assert!(
        done,
        "condition not reached; events so far: {ea:?} / {eb:?}"
    );
    ea.extend(std::iter::from_fn(|| n.a.poll_event()));
    eb.extend(std::iter::from_fn(|| n.b.poll_event()));
    (ea, eb)
}

/// `Stack::poll_event` tells the embedder what happened, so no runtime has
/// to re-derive it from `state()`: accepted, established, readable
/// (coalesced), writable, closed with its reason.
#[test]
fn events_tell_the_story_of_a_connection() {
    let mut n = net();
    n.b.listen(80, 8).unwrap();
    let now = n.now();
    let c = n.a.connect(now, SocketAddrV4::new(B, 80)).unwrap();
    let (ea, eb) = run_collecting(&mut n, |n| n.b.accept(80).is_some());
    let conn = |conn, event| Event::Conn { conn, event };
    assert_eq!(
        ea,
        vec![
            conn(c, ConnEvent::Established),
            conn(c, ConnEvent::Writable)
        ]
    );
    let Some(&Event::Accepted { port: 80, conn: s }) = eb.first() else {
        panic!("first event of the listener: {eb:?}");
    };
    assert_eq!(
        eb[1..],
        [
            conn(s, ConnEvent::Established),
            conn(s, ConnEvent::Writable)
        ]
    );

    // 20 segments arrive while nobody asks: one Readable for the reader,
    // one Writable for the sender.
    let data = vec![7u8; 20 * 1000];
    assert_eq!(n.a.tcb_mut(c).unwrap().send(&data).unwrap(), data.len());
    let acked = n.run_until(Duration::from_secs(5), |n| n.a.tcb(c).unwrap().all_acked());
    assert!(acked);
    let (ea, eb) = run_collecting(&mut n, |_| true);
    assert_eq!(ea, vec![conn(c, ConnEvent::Writable)]);
    assert_eq!(eb, vec![conn(s, ConnEvent::Readable)]);

    // The listener's side aborts: the other side reads the reset.
    n.b.tcb_mut(s).unwrap().abort();
    n.flush();
    let (ea, eb) = run_collecting(&mut n, |n| n.a.tcb(c).unwrap().state() == State::Closed);
    assert_eq!(
        ea,
        vec![
            conn(c, ConnEvent::Readable),
            conn(c, ConnEvent::Closed(Some(TcpError::Reset)))
        ]
    );
    assert_eq!(
        eb,
        vec![
            conn(s, ConnEvent::Readable),
            conn(s, ConnEvent::Closed(None))
        ]
    );
    assert_eq!((n.a.poll_event(), n.b.poll_event()), (None, None));
}
