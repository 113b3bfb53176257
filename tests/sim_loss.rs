//! Two utcp stacks over a simulated link that loses chosen packets: each
//! scenario checks the transfer survives and the counters prove which
//! mechanism (retransmission timer or fast retransmit) did the recovery.

mod sim_util;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use utcp::sim::{Dir, Fate, SimNet};
use utcp::stack::ConnId;
use utcp::state::State;
use utcp::testing::{init_logger, pattern, tcp_segment};
use utcp::wire::TcpFlags;

use sim_util::{establish, History, Side, Stream};

/// Drops the `nth` (1-based) packet going `dir` that `pick` selects, and only
/// that one. The returned cell counts the packets dropped (0 or 1).
fn drop_nth(
    n: &mut SimNet,
    dir: Dir,
    nth: u32,
    pick: impl Fn(&[u8]) -> bool + 'static,
) -> Rc<Cell<u32>> {
    let seen = Rc::new(Cell::new(0u32));
    let dropped = Rc::new(Cell::new(0u32));
    let d = dropped.clone();
    n.set_filter(move |dd, pkt| {
        if dd == dir && pick(pkt) {
            seen.set(seen.get() + 1);
            if seen.get() == nth {
                d.set(d.get() + 1);
                return Fate::Drop;
            }
        }
        Fate::Deliver
    });
    dropped
}

/// Runs `stream` (closing it when sent if asked) until done.
fn transfer(n: &mut SimNet, stream: &mut Stream, limit: Duration) {
    let ok = n.run_until(limit, |n| {
        stream.pump(n);
        stream.done()
    });
    assert!(
        ok,
        "got {} of {} bytes (eof {})",
        stream.got.len(),
        stream.data.len(),
        stream.eof
    );
    stream.check();
}

fn both_closed(n: &SimNet, c: ConnId, s: ConnId) -> bool {
    let done = |st| matches!(st, State::Closed | State::TimeWait);
    done(n.a.tcb(c).unwrap().state()) && done(n.b.tcb(s).unwrap().state())
}

/// A closes after `data`, B closes when it reads the EOF; both finish.
fn send_and_close(n: &mut SimNet, c: ConnId, s: ConnId, data: Vec<u8>, limit: Duration) {
    let mut st = Stream::new(Side::A, c, s, data).closing();
    transfer(n, &mut st, limit);
    n.b.tcb_mut(s).unwrap().close();
    assert!(
        n.run_until(limit, |n| both_closed(n, c, s)),
        "close did not finish: a {}, b {}",
        n.a.tcb(c).unwrap().state(),
        n.b.tcb(s).unwrap().state()
    );
}

fn is_data(pkt: &[u8]) -> bool {
    sim_util::is_data(pkt)
}

#[test]
fn tail_loss_recovered_by_retransmission_timer() {
    init_logger();
    // With tail loss probes off: a probe (RFC 8985) would repair this loss
    // before the timer (tests/sim_mechanisms.rs pins that case).
    let (mut ca, mut cb) = sim_util::configs();
    ca.tcp.tail_loss_probe = false;
    cb.tcp.tail_loss_probe = false;
    let mut n = SimNet::new(ca, cb, sim_util::LATENCY);
    let (c, s) = establish(&mut n);
    // Three full segments (the RFC 6928 initial window); lose the second, so
    // only one segment follows it: one duplicate ACK, never three.
    let mss = n.a.tcb(c).unwrap().send_mss() as usize;
    let dropped = drop_nth(&mut n, Dir::AtoB, 2, is_data);
    let mut st = Stream::new(Side::A, c, s, pattern(3 * mss, 7));
    transfer(&mut n, &mut st, Duration::from_secs(10));
    assert_eq!(dropped.get(), 1);
    let stats = n.a.tcb(c).unwrap().stats().clone();
    assert!(stats.retransmits_timeout >= 1, "{stats:?}");
    assert_eq!(stats.fast_retransmits, 0, "{stats:?}");
    assert!(stats.dup_acks < 3, "{stats:?}");
}

#[test]
fn mid_stream_loss_recovered_by_fast_retransmit() {
    init_logger();
    let mut n = sim_util::net();
    // 100 Mbit/s: the segments of a burst arrive one by one, each answered.
    n.set_bandwidth(Some(12_500_000));
    let (c, s) = establish(&mut n);
    let dropped = drop_nth(&mut n, Dir::AtoB, 30, is_data);
    let mut st = Stream::new(Side::A, c, s, pattern(300_000, 8));
    transfer(&mut n, &mut st, Duration::from_secs(30));
    assert_eq!(dropped.get(), 1);
    let stats = n.a.tcb(c).unwrap().stats().clone();
    assert_eq!(stats.fast_retransmits, 1, "{stats:?}");
    assert_eq!(stats.retransmits_timeout, 0, "{stats:?}");
    assert!(stats.dup_acks >= 3, "{stats:?}");
    // One hole only: NewReno never sees a partial ACK.
    assert_eq!(stats.partial_ack_retransmits, 0, "{stats:?}");
}

#[test]
fn mid_stream_loss_in_a_batch_still_fast_retransmits() {
    init_logger();
    // No link rate: a whole flight arrives at one instant and the receiver
    // handles it as one batch before dispatching, like the TUN driver does
    // with every packet readable at once. RFC 5681 section 4.2 still wants
    // one duplicate ACK per out-of-order segment, so the sender gets its
    // three duplicate ACKs.
    let mut n = sim_util::net();
    let (c, s) = establish(&mut n);
    let dropped = drop_nth(&mut n, Dir::AtoB, 30, is_data);
    let mut st = Stream::new(Side::A, c, s, pattern(300_000, 8));
    transfer(&mut n, &mut st, Duration::from_secs(30));
    assert_eq!(dropped.get(), 1);
    let stats = n.a.tcb(c).unwrap().stats().clone();
    assert_eq!(stats.fast_retransmits, 1, "{stats:?}");
    assert_eq!(stats.retransmits_timeout, 0, "{stats:?}");
    assert_eq!(stats.partial_ack_retransmits, 0, "{stats:?}");
}

fn is_syn(pkt: &[u8]) -> bool {
    tcp_segment(pkt)
        .is_some_and(|s| s.flags.contains(TcpFlags::SYN) && !s.flags.contains(TcpFlags::ACK))
}

fn is_syn_ack(pkt: &[u8]) -> bool {
    tcp_segment(pkt).is_some_and(|s| s.flags.contains(TcpFlags::SYN | TcpFlags::ACK))
}

fn is_pure_ack(pkt: &[u8]) -> bool {
    tcp_segment(pkt).is_some_and(|s| s.flags == TcpFlags::ACK && s.payload.is_empty())
}

fn is_fin(pkt: &[u8]) -> bool {
    tcp_segment(pkt).is_some_and(|s| s.flags.contains(TcpFlags::FIN))
}

/// After a handshake that needed help: data flows and the close completes.
fn still_works(n: &mut SimNet, c: ConnId, s: ConnId) {
    send_and_close(n, c, s, pattern(50_000, 9), Duration::from_secs(30));
}

#[test]
fn lost_syn_is_retransmitted() {
    init_logger();
    let mut n = sim_util::net();
    let dropped = drop_nth(&mut n, Dir::AtoB, 1, is_syn);
    let (c, s) = establish(&mut n);
    assert_eq!(dropped.get(), 1);
    // The SYN went again after the initial RTO of 1 s (RFC 6298 (2.1)).
    assert!(
        n.now() >= utcp::time::Instant::from_millis(1000),
        "{:?}",
        n.now()
    );
    assert_eq!(n.a.tcb(c).unwrap().stats().retransmits_timeout, 1);
    still_works(&mut n, c, s);
}

#[test]
fn lost_syn_ack_is_retransmitted() {
    init_logger();
    let mut n = sim_util::net();
    let dropped = drop_nth(&mut n, Dir::BtoA, 1, is_syn_ack);
    let (c, s) = establish(&mut n);
    assert_eq!(dropped.get(), 1);
    assert!(
        n.now() >= utcp::time::Instant::from_millis(1000),
        "{:?}",
        n.now()
    );
    assert_eq!(n.b.accept(sim_util::PORT), None, "one connection only");
    assert_eq!(n.b.connection_count(), 1);
    still_works(&mut n, c, s);
}

#[test]
fn lost_handshake_ack_is_recovered() {
    init_logger();
    let mut n = sim_util::net();
    let dropped = drop_nth(&mut n, Dir::AtoB, 1, is_pure_ack);
    let (c, s) = establish(&mut n);
    assert_eq!(dropped.get(), 1);
    // B resent its SYN-ACK on its timer and A answered it with an ACK.
    assert!(n.b.tcb(s).unwrap().stats().retransmits_timeout >= 1);
    assert_eq!(n.b.tcb(s).unwrap().state(), State::Established);
    still_works(&mut n, c, s);
}

#[test]
fn lost_fin_is_retransmitted() {
    init_logger();
    let mut n = sim_util::net();
    let (c, s) = establish(&mut n);
    let dropped = drop_nth(&mut n, Dir::AtoB, 1, is_fin);
    send_and_close(&mut n, c, s, pattern(20_000, 10), Duration::from_secs(30));
    assert_eq!(dropped.get(), 1);
    assert!(n.a.tcb(c).unwrap().stats().retransmits_timeout >= 1);
    assert_eq!(n.a.tcb(c).unwrap().state(), State::TimeWait);
    assert_eq!(n.b.tcb(s).unwrap().state(), State::Closed);
    assert_eq!(n.b.tcb(s).unwrap().error(), None);
}

#[test]
fn lost_ack_of_fin_is_recovered() {
    init_logger();
    let mut n = sim_util::net();
    let (c, s) = establish(&mut n);
    // Lose B's ACK of A's FIN: the first pure ACK from B once A closed.
    let armed = Rc::new(Cell::new(false));
    let lost = Rc::new(Cell::new(0));
    let (arm, l) = (armed.clone(), lost.clone());
    n.set_filter(move |dir, pkt| {
        if dir == Dir::AtoB && is_fin(pkt) {
            arm.set(true);
        }
        if dir == Dir::BtoA && arm.get() && l.get() == 0 && is_pure_ack(pkt) {
            l.set(1);
            return Fate::Drop;
        }
        Fate::Deliver
    });
    n.a.tcb_mut(c).unwrap().close();
    let mut ha = History::default();
    assert!(n.run_until(Duration::from_secs(10), |n| {
        ha.record(n.a.tcb(c).unwrap().state());
        n.b.tcb(s).unwrap().state() == State::CloseWait && ha.0.last() == Some(&State::FinWait2)
    }));
    assert_eq!(lost.get(), 1);
    // A stayed in FIN-WAIT-1 until its FIN went again on the timer.
    assert!(n.a.tcb(c).unwrap().stats().retransmits_timeout >= 1);
    n.b.tcb_mut(s).unwrap().close();
    assert!(n.run_until(Duration::from_secs(10), |n| both_closed(n, c, s)));
    assert_eq!(n.b.tcb(s).unwrap().state(), State::Closed);
}

#[test]
fn connect_to_port_without_listener_is_refused() {
    init_logger();
    let mut n = sim_util::net();
    let now = n.now();
    let c =
        n.a.connect(now, std::net::SocketAddrV4::new(sim_util::B, 81))
            .unwrap();
    assert!(
        n.run_until(Duration::from_secs(5), |n| n.a.tcb(c).unwrap().state()
            == State::Closed)
    );
    let tcb = n.a.tcb(c).unwrap();
    assert_eq!(tcb.error(), Some(utcp::tcb::TcpError::Refused));
    assert_eq!(tcb.stats().retransmits_timeout, 0);
    assert_eq!(n.b.stats().resets_sent, 1);
    assert_eq!(n.b.connection_count(), 0);
    // Refused at once: one round trip.
    assert_eq!(n.now(), utcp::time::Instant::from_millis(20));
}

#[test]
fn abort_resets_the_peer() {
    init_logger();
    let mut n = sim_util::net();
    let (c, s) = establish(&mut n);
    n.a.tcb_mut(c).unwrap().abort();
    assert_eq!(n.a.tcb(c).unwrap().state(), State::Closed);
    assert!(
        n.run_until(Duration::from_secs(5), |n| n.b.tcb(s).unwrap().state()
            == State::Closed)
    );
    let mut buf = [0u8; 16];
    let err = n.b.tcb_mut(s).unwrap().recv(&mut buf).unwrap_err();
    assert_eq!(err, utcp::error::Error::Ended(utcp::tcb::TcpError::Reset));
    assert_eq!(
        n.b.tcb(s).unwrap().error(),
        Some(utcp::tcb::TcpError::Reset)
    );
    // A reset is not answered with a reset.
    assert_eq!(n.b.stats().resets_sent, 0);
    assert_eq!(n.a.stats().resets_sent, 0);
}

#[test]
fn segment_for_forgotten_connection_is_reset() {
    init_logger();
    let mut n = sim_util::net();
    let (c, _s) = establish(&mut n);
    // B reboots: a fresh stack with the same address, knowing nothing.
    let (_, cb) = sim_util::configs();
    n.b = utcp::stack::Stack::new(cb);
    n.a.tcb_mut(c).unwrap().send(b"hello?").unwrap();
    assert!(
        n.run_until(Duration::from_secs(5), |n| n.a.tcb(c).unwrap().state()
            == State::Closed)
    );
    assert_eq!(n.b.stats().resets_sent, 1);
    assert_eq!(
        n.a.tcb(c).unwrap().error(),
        Some(utcp::tcb::TcpError::Reset)
    );
}

#[test]
fn time_wait_lasts_two_msl_then_is_forgotten() {
    init_logger();
    let msl = Duration::from_secs(3);
    let (mut ca, cb) = sim_util::configs();
    ca.tcp.msl = msl;
    let mut n = SimNet::new(ca, cb, sim_util::LATENCY);
    let (c, s) = establish(&mut n);
    n.a.tcb_mut(c).unwrap().close();
    let mut b_closed = false;
    assert!(n.run_until(Duration::from_secs(5), |n| {
        if !b_closed && n.b.tcb(s).unwrap().state() == State::CloseWait {
            n.b.tcb_mut(s).unwrap().close();
            b_closed = true;
        }
        n.a.tcb(c).unwrap().state() == State::TimeWait
    }));
    let entered = n.now();
    n.a.release(c);
    assert_eq!(n.a.connection_count(), 1);
    n.run_for(2 * msl - Duration::from_millis(1));
    assert_eq!(n.now(), entered + (2 * msl - Duration::from_millis(1)));
    assert_eq!(n.a.connection_count(), 1, "TIME-WAIT ended early");
    assert_eq!(n.a.tcb(c).unwrap().state(), State::TimeWait);
    n.run_for(Duration::from_millis(1));
    assert_eq!(n.a.connection_count(), 0, "TIME-WAIT outlived 2*MSL");
    assert!(n.a.tcb(c).is_none(), "the stack forgot the connection");
    assert!(n.a.poll_timeout().is_none());
}

#[test]
fn connection_times_out_when_peer_vanishes() {
    init_logger();
    let (mut ca, cb) = sim_util::configs();
    ca.tcp.max_retries = 5;
    // Pins RFC 6298's back-off alone: a tail loss probe (RFC 8985) would
    // go first and restart the timer, adding its PTO to the total.
    ca.tcp.tail_loss_probe = false;
    let mut n = SimNet::new(ca, cb, sim_util::LATENCY);
    let (c, _s) = establish(&mut n);
    n.set_filter(|_, _| Fate::Drop);
    let rto = n.a.tcb(c).unwrap().rtt().rto();
    n.a.tcb_mut(c).unwrap().send(&[1u8; 1000]).unwrap();
    let start = n.now();
    assert!(
        n.run_until(Duration::from_secs(600), |n| n.a.tcb(c).unwrap().state()
            == State::Closed)
    );
    let tcb = n.a.tcb(c).unwrap();
    assert_eq!(tcb.error(), Some(utcp::tcb::TcpError::TimedOut));
    assert_eq!(tcb.stats().retransmits_timeout, 5);
    // RFC 6298 (5.5): the RTO doubles each time, so giving up after five
    // retransmissions takes rto * (1 + 2 + 4 + 8 + 16 + 32).
    let took = n.now() - start;
    let expected = rto * 63;
    assert!(
        took.abs_diff(expected) <= Duration::from_millis(1),
        "took {took:?}, expected {expected:?} (rto {rto:?})"
    );
    let mut buf = [0u8; 4];
    let err = n.a.tcb_mut(c).unwrap().recv(&mut buf).unwrap_err();
    assert_eq!(
        err,
        utcp::error::Error::Ended(utcp::tcb::TcpError::TimedOut)
    );
}

/// 1 MiB from A to B over a link losing `loss` of the packets both ways,
/// then both close; all within `limit` of simulated time.
fn lossy_transfer(loss: f64, seed: u32, rate: Option<u64>, limit: Duration) {
    use rand::{Rng, SeedableRng};
    init_logger();
    let mut n = sim_util::net();
    n.set_bandwidth(rate);
    let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(seed));
    n.set_filter(move |_, _| {
        if rng.random_bool(loss) {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    let start = n.now();
    let (c, s) = establish(&mut n);
    send_and_close(&mut n, c, s, pattern(1 << 20, seed), limit);
    let took = n.now() - start;
    assert!(took <= limit, "took {took:?}");
    assert!(n.dropped[0] > 0 && n.dropped[1] > 0, "{:?}", n.dropped);
    let stats = n.a.tcb(c).unwrap().stats();
    eprintln!(
        "loss {loss} seed {seed} rate {rate:?}: {took:?}, dropped {:?}, {stats:?}",
        n.dropped
    );
}

/// 100 Mbit/s, for the runs with a link rate.
const RATE: Option<u64> = Some(12_500_000);

#[test]
fn random_loss_2_percent() {
    for seed in [1, 2, 3] {
        for rate in [None, RATE] {
            lossy_transfer(0.02, seed, rate, Duration::from_secs(15));
        }
    }
}

#[test]
fn random_loss_5_percent() {
    for seed in [1, 2, 3] {
        for rate in [None, RATE] {
            lossy_transfer(0.05, seed, rate, Duration::from_secs(30));
        }
    }
}

#[test]
fn random_loss_10_percent() {
    for seed in [1, 2, 3] {
        for rate in [None, RATE] {
            lossy_transfer(0.10, seed, rate, Duration::from_secs(60));
        }
    }
}

#[test]
fn data_both_ways_over_lossy_link_both_closing_early() {
    use rand::{Rng, SeedableRng};
    init_logger();
    // Both sides queue 500 KB and close at once, over 8% loss both ways:
    // both retransmit on timeout while data flows the other way, and each
    // side's ACKs must stay acceptable to the other (seed 3 used to end in
    // both sides timing out, their ACKs dropped as old duplicates).
    for seed in 1..=6u64 {
        for rate in [None, RATE] {
            let mut n = sim_util::net();
            n.set_bandwidth(rate);
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            n.set_filter(move |_, _| {
                if rng.random_bool(0.08) {
                    Fate::Drop
                } else {
                    Fate::Deliver
                }
            });
            let (c, s) = establish(&mut n);
            let mut ab = Stream::new(Side::A, c, s, pattern(500_000, 1)).closing();
            let mut ba = Stream::new(Side::B, s, c, pattern(500_000, 2)).closing();
            let ok = n.run_until(Duration::from_secs(60), |n| {
                ab.pump(n);
                ba.pump(n);
                ab.done() && ba.done() && both_closed(n, c, s)
            });
            assert!(
                ok,
                "seed {seed} rate {rate:?}: a->b {}, b->a {}, a {}, b {}",
                ab.got.len(),
                ba.got.len(),
                n.a.tcb(c).unwrap().state(),
                n.b.tcb(s).unwrap().state()
            );
            ab.check();
            ba.check();
        }
    }
}

#[test]
fn abort_after_a_retransmission_timeout_still_resets_the_peer() {
    init_logger();
    let mut n = sim_util::net();
    let (c, s) = establish(&mut n);
    // B's ACKs are lost, so A times out and goes back to SND.UNA.
    let block = Rc::new(Cell::new(true));
    let b2 = block.clone();
    n.set_filter(move |dir, _| {
        if dir == Dir::BtoA && b2.get() {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    // Two full segments; after the timeout only the first goes again.
    n.a.tcb_mut(c).unwrap().send(&pattern(2920, 11)).unwrap();
    assert!(n.run_until(Duration::from_secs(5), |n| {
        n.a.tcb(c).unwrap().stats().retransmits_timeout >= 1
    }));
    // Let the retransmission arrive and B's answer be lost too.
    n.run_for(sim_util::LATENCY * 2);
    block.set(false);
    n.a.tcb_mut(c).unwrap().abort();
    // RFC 9293 3.10.5 / RFC 5961 3.2: the RST itself, one way later, must
    // carry B's RCV.NXT exactly; no round trip through B's next segment.
    let start = n.now();
    assert!(
        n.run_until(sim_util::LATENCY, |n| n.b.tcb(s).unwrap().state()
            == State::Closed)
            && n.now() - start <= sim_util::LATENCY,
        "B ignored the RST: {}",
        n.b.tcb(s).unwrap().state()
    );
    assert_eq!(
        n.b.tcb(s).unwrap().error(),
        Some(utcp::tcb::TcpError::Reset)
    );
}
