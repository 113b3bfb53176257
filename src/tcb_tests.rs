//! State-transition tests for the TCB: a segment in, the state and the segment out.
//!
//! Each test drives one [`Tcb`] through a short script: segments from the peer
//! go in through [`seg_in`], and everything the TCB then wants to transmit is
//! collected by [`out`] and compared field by field. Time is an explicit
//! [`Instant`]; nothing sleeps. Each test names the RFC rule it checks.

use super::*;

use std::net::Ipv4Addr;

use crate::testing::{self, data, Seg};
use crate::wire::{TcpFlags, TcpOptions, TcpSegment};

// ----------------------------------------------------------------------
// Harness
// ----------------------------------------------------------------------

const LOCAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);
const REMOTE: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5000);

/// Our initial send sequence number.
const ISS: u32 = 10_000;
/// The peer's initial sequence number.
const PEER_ISS: u32 = 50_000;
/// Our receive buffer in the test config: below 64 KiB, so our window
/// scale shift is 0 and window fields read as plain byte counts.
const RCV_BUF: usize = 60_000;
/// Our window field while the receive buffer is empty.
const WIN: u16 = RCV_BUF as u16;
/// The window the peer advertises unless a test says otherwise.
const PEER_WIN: u16 = 65_535;
/// The RTO once the handshake gave an RTT sample of 0: the 200 ms floor.
const RTO: Duration = Duration::from_millis(200);

const SYN: TcpFlags = TcpFlags::SYN;
const ACK: TcpFlags = TcpFlags::ACK;
const FIN: TcpFlags = TcpFlags::FIN;
const RST: TcpFlags = TcpFlags::RST;
const PSH: TcpFlags = TcpFlags::PSH;

const T0: Instant = Instant::ZERO;

/// `n` milliseconds after `T0`.
fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// The test config: immediate ACKs (delayed ACK is tested on its own) and a
/// receive buffer whose window fits the 16-bit field unscaled.
fn config() -> TcpConfig {
    TcpConfig {
        recv_buffer: RCV_BUF,
        ack_delay: None,
        // The option tests below turn these on; elsewhere segments stay bare.
        timestamps: false,
        sack: false,
        tail_loss_probe: false,
        ..TcpConfig::default()
    }
}

/// The segment we expect from us: no options.
fn seg(flags: TcpFlags, seq: u32, ack: u32, window: u16, payload: &[u8]) -> Seg {
    Seg {
        src: LOCAL,
        dst: REMOTE,
        seq,
        ack,
        flags,
        window,
        options: TcpOptions::default(),
        payload: payload.to_vec(),
    }
}

/// A bare ACK we expect.
fn ack(seq: u32, ack: u32, window: u16) -> Seg {
    seg(ACK, seq, ack, window, &[])
}

/// Everything `tcb` sends at `now` ([`testing::tcb_output`]: `dispatch` until
/// it returns `None`, each packet parsed back with `wire::parse`, so checksums
/// and lengths are checked too), all from `LOCAL` to `REMOTE`.
fn out(tcb: &mut Tcb, now: Instant) -> Vec<Seg> {
    let segs = testing::tcb_output(tcb, now);
    for s in &segs {
        assert_eq!((s.src, s.dst), (LOCAL, REMOTE), "addresses of {s:?}");
    }
    segs
}

/// A segment from the peer.
fn from_peer(flags: TcpFlags, seq: u32, ack: u32, payload: &[u8]) -> TcpSegment<'_> {
    TcpSegment {
        window: PEER_WIN,
        ..testing::segment(REMOTE, LOCAL, flags, seq, ack, payload)
    }
}

/// A segment from the peer with a given window field.
fn from_peer_win(flags: TcpFlags, seq: u32, ack: u32, window: u16) -> TcpSegment<'static> {
    TcpSegment {
        window,
        ..from_peer(flags, seq, ack, &[])
    }
}

/// Feeds one segment to `tcb` at `now`.
fn seg_in(tcb: &mut Tcb, now: Instant, s: &TcpSegment<'_>) -> Verdict {
    tcb.on_segment(now, s)
}

fn mss_only(mss: u16) -> TcpOptions {
    TcpOptions {
        mss: Some(mss),
        ..TcpOptions::default()
    }
}

/// The peer's SYN, with an MSS option of 1460 and no window scale.
fn peer_syn(seq: u32) -> TcpSegment<'static> {
    TcpSegment {
        options: mss_only(1460),
        ..from_peer(SYN, seq, 0, &[])
    }
}

/// The SYN-ACK we send from SYN-RECEIVED with the test config.
fn our_syn_ack(iss: u32, peer_iss: u32) -> Seg {
    Seg {
        options: mss_only(1460),
        ..seg(SYN | ACK, iss, peer_iss.wrapping_add(1), WIN, &[])
    }
}

/// LISTEN -> SYN-RECEIVED on `syn`, the SYN-ACK already taken out.
fn syn_received_with(syn: &TcpSegment<'_>, iss: u32, cfg: TcpConfig) -> Tcb {
    let mut tcb = Tcb::accept(syn, SeqNum(iss), cfg);
    assert_eq!(tcb.state(), State::SynReceived);
    let segs = out(&mut tcb, T0);
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].flags, SYN | ACK);
    tcb
}

fn syn_received() -> Tcb {
    syn_received_with(&peer_syn(PEER_ISS), ISS, config())
}

/// A passive open completed at `T0`: SND.NXT = iss+1, RCV.NXT = peer_iss+1.
fn established_with(syn: &TcpSegment<'_>, iss: u32, cfg: TcpConfig) -> Tcb {
    let peer_iss = syn.seq.0;
    let mut tcb = syn_received_with(syn, iss, cfg);
    let v = seg_in(
        &mut tcb,
        T0,
        &from_peer(ACK, peer_iss.wrapping_add(1), iss.wrapping_add(1), &[]),
    );
    assert_eq!(v, Verdict::Done);
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(out(&mut tcb, T0), vec![]);
    tcb
}

fn established_cfg(cfg: TcpConfig) -> Tcb {
    established_with(&peer_syn(PEER_ISS), ISS, cfg)
}

fn established() -> Tcb {
    established_cfg(config())
}

/// An active open completed at `T0`.
fn established_active() -> Tcb {
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), config());
    assert_eq!(out(&mut tcb, T0).len(), 1);
    let syn_ack = TcpSegment {
        options: mss_only(1460),
        ..from_peer(SYN | ACK, PEER_ISS, ISS + 1, &[])
    };
    assert_eq!(seg_in(&mut tcb, T0, &syn_ack), Verdict::Done);
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(out(&mut tcb, T0), vec![ack(ISS + 1, PEER_ISS + 1, WIN)]);
    tcb
}

/// ESTABLISHED, then close(): our FIN (seq ISS+1) is out.
fn fin_wait_1() -> Tcb {
    let mut tcb = established();
    tcb.close();
    assert_eq!(tcb.state(), State::FinWait1);
    assert_eq!(
        out(&mut tcb, T0),
        vec![seg(FIN | ACK, ISS + 1, PEER_ISS + 1, WIN, &[])]
    );
    tcb
}

/// FIN-WAIT-1, then the peer acked our FIN.
fn fin_wait_2() -> Tcb {
    let mut tcb = fin_wait_1();
    seg_in(&mut tcb, T0, &from_peer(ACK, PEER_ISS + 1, ISS + 2, &[]));
    assert_eq!(tcb.state(), State::FinWait2);
    assert_eq!(out(&mut tcb, T0), vec![]);
    tcb
}

/// FIN-WAIT-1, then the peer's FIN crossed ours (simultaneous close).
fn closing() -> Tcb {
    let mut tcb = fin_wait_1();
    seg_in(
        &mut tcb,
        T0,
        &from_peer(FIN | ACK, PEER_ISS + 1, ISS + 1, &[]),
    );
    assert_eq!(tcb.state(), State::Closing);
    assert_eq!(out(&mut tcb, T0), vec![ack(ISS + 2, PEER_ISS + 2, WIN)]);
    tcb
}

/// FIN-WAIT-2, then the peer's FIN, acked: TIME-WAIT entered at `T0`.
fn time_wait() -> Tcb {
    let mut tcb = fin_wait_2();
    seg_in(
        &mut tcb,
        T0,
        &from_peer(FIN | ACK, PEER_ISS + 1, ISS + 2, &[]),
    );
    assert_eq!(tcb.state(), State::TimeWait);
    assert_eq!(out(&mut tcb, T0), vec![ack(ISS + 2, PEER_ISS + 2, WIN)]);
    tcb
}

/// ESTABLISHED, then the peer's FIN, acked.
fn close_wait() -> Tcb {
    let mut tcb = established();
    seg_in(
        &mut tcb,
        T0,
        &from_peer(FIN | ACK, PEER_ISS + 1, ISS + 1, &[]),
    );
    assert_eq!(tcb.state(), State::CloseWait);
    assert_eq!(out(&mut tcb, T0), vec![ack(ISS + 1, PEER_ISS + 2, WIN)]);
    tcb
}

/// CLOSE-WAIT, then close(): our FIN (seq ISS+1) is out.
fn last_ack() -> Tcb {
    let mut tcb = close_wait();
    tcb.close();
    assert_eq!(tcb.state(), State::LastAck);
    assert_eq!(
        out(&mut tcb, T0),
        vec![seg(FIN | ACK, ISS + 1, PEER_ISS + 2, WIN, &[])]
    );
    tcb
}

/// Reads everything the application can read now.
fn read_all(tcb: &mut Tcb) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = tcb.recv(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

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
    assert_eq!(tcb.poll_at(), Some(at(1000)));

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
    assert_eq!(tcb.poll_at(), None);
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
    assert_eq!(tcb.poll_at(), None);
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
    assert_eq!(tcb.poll_at(), Some(at(1000)));
    tcb.on_timeout(at(999));
    assert_eq!(out(&mut tcb, at(999)), vec![]);
    tcb.on_timeout(at(1000));
    assert_eq!(out(&mut tcb, at(1000)), vec![our_syn_ack(ISS, PEER_ISS)]);
    assert_eq!(tcb.poll_at(), Some(at(3000)));
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
    let t = tcb.poll_at().expect("the SYN-ACK timer runs");
    tcb.on_timeout(t);
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
    assert_eq!(tcb.poll_at(), None);
    let syn = Seg {
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(0),
            ..TcpOptions::default()
        },
        ..seg(SYN, ISS, 0, WIN, &[])
    };
    assert_eq!(out(&mut tcb, T0), vec![syn]);
    assert_eq!(tcb.poll_at(), Some(at(1000)));
    assert_eq!(tcb.snd_nxt(), SeqNum(ISS + 1));
    // Nothing can be sent before the handshake is done.
    assert_eq!(
        tcb.send(b"early").unwrap_err().kind(),
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
    assert_eq!(tcb.poll_at(), None);
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
    assert_eq!(tcb.error(), Some(io::ErrorKind::ConnectionRefused));
    assert_eq!(tcb.poll_at(), None);
    assert_eq!(out(&mut tcb, at(1)), vec![]);
    assert_eq!(
        tcb.send(b"x").unwrap_err().kind(),
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
    assert_eq!(tcb.poll_at(), None);
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
    assert_eq!(tcb.max_snd_wnd, 20_000);
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
        assert_eq!(tcb.poll_at(), Some(at(deadline)), "retry {retry}");
        tcb.on_timeout(at(deadline - 1));
        assert_eq!(out(&mut tcb, at(deadline - 1)), vec![]);
        tcb.on_timeout(at(deadline));
        assert_eq!(out(&mut tcb, at(deadline)), syn, "retry {retry}");
        interval *= 2;
        deadline += interval;
    }
    assert_eq!(deadline, 63_000);
    assert_eq!(tcb.poll_at(), Some(at(deadline)));
    tcb.on_timeout(at(deadline));
    assert_eq!(tcb.state(), State::Closed);
    assert_eq!(tcb.error(), Some(io::ErrorKind::TimedOut));
    assert_eq!(out(&mut tcb, at(deadline)), vec![]);
    assert_eq!(tcb.poll_at(), None);
}

/// RFC 6298 section 3 (Karn): a SYN-ACK answering a retransmitted SYN gives no RTT sample.
#[test]
fn syn_sent_no_rtt_sample_after_retransmission() {
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), config());
    out(&mut tcb, T0);
    tcb.on_timeout(at(1000));
    assert_eq!(out(&mut tcb, at(1000)).len(), 1);
    seg_in(
        &mut tcb,
        at(1010),
        &from_peer(SYN | ACK, PEER_ISS, ISS + 1, &[]),
    );
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(tcb.rtt().srtt(), None);
}

// ----------------------------------------------------------------------
// Data: receiving
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

// ----------------------------------------------------------------------
// Data: sending
// ----------------------------------------------------------------------

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
    assert_eq!(tcb.poll_at(), None);
}

/// RFC 9293 section 3.7.1 and RFC 6928: segments are at most SMSS and the
/// first flight is the initial window, min(10*MSS, max(2*MSS, 14600)).
#[test]
fn established_send_initial_window_of_mss_segments() {
    let mut tcb = established();
    let a = data(20 * 1460);
    tcb.send(&a).unwrap();
    let segs = out(&mut tcb, at(1));
    assert_eq!(segs.len(), 10);
    for (i, s) in segs.iter().enumerate() {
        let off = i * 1460;
        assert_eq!(
            *s,
            seg(
                ACK,
                ISS + 1 + off as u32,
                PEER_ISS + 1,
                WIN,
                &a[off..off + 1460]
            )
        );
    }
    // RFC 6298 (5.1): the timer runs from the first transmission.
    assert_eq!(tcb.poll_at(), Some(at(1) + RTO));
    // An ACK for two segments: slow start adds one MSS (RFC 5681 (3.2)),
    // which lets three more segments out.
    seg_in(
        &mut tcb,
        at(2),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1 + 2920, &[]),
    );
    assert_eq!(tcb.congestion().cwnd(), 11 * 1460);
    assert_eq!(out(&mut tcb, at(2)).len(), 3);
}

// ----------------------------------------------------------------------
// Retransmission
// ----------------------------------------------------------------------

/// RFC 6298 (5.4)-(5.6): on RTO resend from SND.UNA and double the RTO;
/// RFC 6298 section 3 (Karn): the ACK of a retransmission is no RTT sample,
/// so the backed-off RTO stays (5.7) until a clean sample arrives.
#[test]
fn established_rto_retransmit() {
    let mut tcb = established();
    assert_eq!(tcb.rtt().rto(), RTO);
    let srtt = tcb.rtt().srtt();
    let a = data(100);
    tcb.send(&a).unwrap();
    let first = out(&mut tcb, at(1000));
    assert_eq!(first, vec![seg(ACK | PSH, ISS + 1, PEER_ISS + 1, WIN, &a)]);
    assert_eq!(tcb.poll_at(), Some(at(1200)));
    tcb.on_timeout(at(1199));
    assert_eq!(out(&mut tcb, at(1199)), vec![]);
    tcb.on_timeout(at(1200));
    assert_eq!(out(&mut tcb, at(1200)), first);
    assert_eq!(tcb.stats().retransmits_timeout, 1);
    assert_eq!(tcb.poll_at(), Some(at(1600)));
    // RFC 5681 (4): cwnd is one segment after a timeout.
    assert_eq!(tcb.congestion().cwnd(), 1460);

    seg_in(
        &mut tcb,
        at(1250),
        &from_peer(ACK, PEER_ISS + 1, ISS + 101, &[]),
    );
    assert!(tcb.all_acked());
    assert_eq!(tcb.poll_at(), None);
    assert_eq!(tcb.rtt().srtt(), srtt);
    assert_eq!(tcb.rtt().rto(), 2 * RTO);

    // New data, acked after 50 ms: a valid sample recomputes the RTO.
    tcb.send(&a).unwrap();
    out(&mut tcb, at(2000));
    seg_in(
        &mut tcb,
        at(2050),
        &from_peer(ACK, PEER_ISS + 1, ISS + 201, &[]),
    );
    assert_ne!(tcb.rtt().srtt(), srtt);
    assert_eq!(tcb.rtt().backoff(), 0);
}

/// RFC 6298 (5.4): after an RTO only the oldest segment is resent at once
/// (cwnd = 1 MSS, RFC 5681 (4)); its ACK lets the next one out.
#[test]
fn established_rto_resends_from_snd_una() {
    let mut tcb = established();
    let a = data(3 * 1460);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(10)).len(), 3);
    // The first segment was acked, the other two were lost.
    seg_in(
        &mut tcb,
        at(15),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1461, &[]),
    );
    let t = tcb.poll_at().unwrap();
    assert_eq!(t, at(15) + RTO);
    tcb.on_timeout(t);
    assert_eq!(
        out(&mut tcb, t),
        vec![seg(ACK, ISS + 1461, PEER_ISS + 1, WIN, &a[1460..2920])]
    );
    seg_in(&mut tcb, t, &from_peer(ACK, PEER_ISS + 1, ISS + 2921, &[]));
    assert_eq!(
        out(&mut tcb, t),
        vec![seg(ACK | PSH, ISS + 2921, PEER_ISS + 1, WIN, &a[2920..])]
    );
}

/// RFC 5681 section 3.2: the third duplicate ACK (not the second) triggers
/// exactly one retransmission of the segment at SND.UNA; later duplicates
/// only inflate cwnd.
#[test]
fn fast_retransmit_on_third_dup_ack() {
    let mut tcb = established();
    let a = data(5 * 1460);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(10)).len(), 5);
    // Segment 1 arrives, segment 2 is lost, 3..5 cause duplicate ACKs.
    let una = ISS + 1 + 1460;
    seg_in(&mut tcb, at(20), &from_peer(ACK, PEER_ISS + 1, una, &[]));
    assert_eq!(out(&mut tcb, at(20)), vec![]);
    for dup in 1..=2 {
        seg_in(
            &mut tcb,
            at(20 + dup),
            &from_peer(ACK, PEER_ISS + 1, una, &[]),
        );
        assert_eq!(out(&mut tcb, at(20 + dup)), vec![], "dup ack {dup}");
    }
    assert_eq!(tcb.stats().fast_retransmits, 0);
    seg_in(&mut tcb, at(23), &from_peer(ACK, PEER_ISS + 1, una, &[]));
    assert_eq!(
        out(&mut tcb, at(23)),
        vec![seg(ACK, una, PEER_ISS + 1, WIN, &a[1460..2920])]
    );
    assert_eq!(tcb.stats().fast_retransmits, 1);
    assert_eq!(tcb.stats().dup_acks, 3);
    // RFC 5681 (4): ssthresh = FlightSize/2, cwnd = ssthresh + 3*SMSS.
    assert_eq!(tcb.congestion().ssthresh(), 2 * 1460);
    assert_eq!(tcb.congestion().cwnd(), 5 * 1460);
    seg_in(&mut tcb, at(24), &from_peer(ACK, PEER_ISS + 1, una, &[]));
    assert_eq!(out(&mut tcb, at(24)), vec![]);
    assert_eq!(tcb.stats().fast_retransmits, 1);
    assert_eq!(tcb.stats().retransmits_timeout, 0);
}

/// RFC 5681 section 2 (definition of a duplicate ACK, condition e): an ACK
/// that changes the window is a window update, not a duplicate.
#[test]
fn window_update_is_not_a_dup_ack() {
    let mut tcb = established();
    tcb.send(&data(5 * 1460)).unwrap();
    out(&mut tcb, at(10));
    for (i, w) in [60_000u16, 50_000, 40_000].into_iter().enumerate() {
        seg_in(
            &mut tcb,
            at(20 + i as u64),
            &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, w),
        );
    }
    assert_eq!(tcb.stats().dup_acks, 0);
    assert_eq!(tcb.stats().fast_retransmits, 0);
    assert_eq!(out(&mut tcb, at(30)), vec![]);
}

/// RFC 6582 section 3.2 step 3: a partial ACK in fast recovery retransmits
/// the next hole at once; the full ACK ends recovery with cwnd = ssthresh.
#[test]
fn newreno_partial_ack_retransmits_next_hole() {
    let mut tcb = established();
    let a = data(5 * 1460);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(10)).len(), 5);
    // Segments 1 and 3 are lost.
    for i in 0..3 {
        seg_in(
            &mut tcb,
            at(20 + i),
            &from_peer(ACK, PEER_ISS + 1, ISS + 1, &[]),
        );
    }
    assert_eq!(
        out(&mut tcb, at(22)),
        vec![seg(ACK, ISS + 1, PEER_ISS + 1, WIN, &a[..1460])]
    );
    assert!(tcb.congestion().in_recovery());
    // The retransmission fills hole 1; the ACK stops at hole 3: partial.
    seg_in(
        &mut tcb,
        at(30),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1 + 2920, &[]),
    );
    assert_eq!(
        out(&mut tcb, at(30)),
        vec![seg(ACK, ISS + 1 + 2920, PEER_ISS + 1, WIN, &a[2920..4380])]
    );
    assert_eq!(tcb.stats().partial_ack_retransmits, 1);
    assert_eq!(tcb.stats().fast_retransmits, 1);
    // Full ACK.
    seg_in(
        &mut tcb,
        at(40),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1 + 7300, &[]),
    );
    assert!(!tcb.congestion().in_recovery());
    assert_eq!(tcb.congestion().cwnd(), tcb.congestion().ssthresh());
    assert!(tcb.all_acked());
    assert_eq!(out(&mut tcb, at(40)), vec![]);
}

/// RFC 1122 4.2.3.5 (R2) and RFC 9293 section 3.8.3: after `max_retries`
/// retransmissions the connection is aborted with TimedOut; every RTO doubles.
#[test]
fn established_rto_gives_up_after_max_retries() {
    let cfg = TcpConfig {
        max_retries: 3,
        ..config()
    };
    let mut tcb = established_cfg(cfg);
    let a = data(10);
    tcb.send(&a).unwrap();
    let first = out(&mut tcb, at(100));
    let mut t = at(100);
    let mut rto = RTO;
    for retry in 1..=3 {
        assert_eq!(tcb.poll_at(), Some(t + rto), "retry {retry}");
        t += rto;
        tcb.on_timeout(t);
        assert_eq!(out(&mut tcb, t), first, "retry {retry}");
        rto *= 2;
    }
    assert_eq!(tcb.poll_at(), Some(t + rto));
    t += rto;
    tcb.on_timeout(t);
    assert_eq!(tcb.state(), State::Closed);
    assert_eq!(tcb.error(), Some(io::ErrorKind::TimedOut));
    assert_eq!(out(&mut tcb, t), vec![]);
    assert_eq!(tcb.poll_at(), None);
    let mut buf = [0u8; 4];
    assert_eq!(
        tcb.recv(&mut buf).unwrap_err().kind(),
        io::ErrorKind::TimedOut
    );
}

// ----------------------------------------------------------------------
// Closing
// ----------------------------------------------------------------------

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
        tcb.send(b"more").unwrap_err().kind(),
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
    assert_eq!(tcb.poll_at(), None);

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
    assert_eq!(tcb.poll_at(), Some(msl2));
    tcb.on_timeout(Instant::from_micros(msl2.total_micros() - 1));
    assert_eq!(tcb.state(), State::TimeWait);
    tcb.on_timeout(msl2);
    assert_eq!(tcb.state(), State::Closed);
    assert_eq!(tcb.error(), None);
    assert_eq!(tcb.poll_at(), None);
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
    assert_eq!(tcb.poll_at(), None);
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
    assert_eq!(tcb.poll_at(), Some(at(2100)));
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
    assert_eq!(tcb.poll_at(), Some(at(2006)));
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
    assert_eq!(tcb.poll_at(), Some(at(2005)));
}

/// RFC 6298 (5.4) applied to the FIN (RFC 9293 section 3.8.1): an unacked FIN
/// is retransmitted on RTO.
#[test]
fn fin_wait_1_fin_retransmitted_on_rto() {
    let mut tcb = fin_wait_1();
    assert_eq!(tcb.poll_at(), Some(T0 + RTO));
    tcb.on_timeout(T0 + RTO);
    assert_eq!(
        out(&mut tcb, T0 + RTO),
        vec![seg(FIN | ACK, ISS + 1, PEER_ISS + 1, WIN, &[])]
    );
    assert_eq!(tcb.poll_at(), Some(T0 + 3 * RTO));
    assert_eq!(tcb.state(), State::FinWait1);
}

/// RFC 9293 section 3.10.7.4 (eighth step, TIME-WAIT): a retransmitted FIN is
/// acked again and restarts the 2*MSL timeout.
#[test]
fn time_wait_fin_retransmitted() {
    let mut tcb = time_wait();
    assert_eq!(tcb.poll_at(), Some(at(2000)));
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
    assert_eq!(tcb.poll_at(), Some(at(3500)));
    tcb.on_timeout(at(2000));
    assert_eq!(tcb.state(), State::TimeWait);
    tcb.on_timeout(at(3500));
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
    assert_eq!(tcb.poll_at(), Some(at(20) + RTO));
    seg_in(
        &mut tcb,
        at(30),
        &from_peer(ACK, PEER_ISS + 2, ISS + 2, &[]),
    );
    assert_eq!(tcb.state(), State::Closed);
    assert_eq!(tcb.error(), None);
    assert_eq!(tcb.poll_at(), None);
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
    tcb.on_timeout(T0 + RTO);
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
    assert_eq!(tcb.error(), None);
}

// ----------------------------------------------------------------------
// Resets
// ----------------------------------------------------------------------

/// RFC 9293 section 3.10.7.4 (second check): a RST at RCV.NXT in
/// ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2 or CLOSE-WAIT closes the connection
/// with "connection reset"; in CLOSING, LAST-ACK and TIME-WAIT it just closes.
fn assert_rst_closes(mut tcb: Tcb, rcv_nxt: u32, error: Option<io::ErrorKind>) {
    let state = tcb.state();
    assert_eq!(tcb.rcv_nxt(), SeqNum(rcv_nxt), "{state}");
    let v = seg_in(&mut tcb, at(50), &from_peer(RST, rcv_nxt, 0, &[]));
    assert_eq!(v, Verdict::Done, "{state}");
    assert_eq!(tcb.state(), State::Closed, "{state}");
    assert_eq!(tcb.error(), error, "{state}");
    assert_eq!(out(&mut tcb, at(50)), vec![], "{state}");
    assert_eq!(tcb.poll_at(), None, "{state}");
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
        tcb.recv(&mut buf).unwrap_err().kind(),
        io::ErrorKind::ConnectionReset
    );
    assert_eq!(
        tcb.send(b"x").unwrap_err().kind(),
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

/// RFC 9293 section 3.10.7.4 (second check), TIME-WAIT: CLOSED, no error.
#[test]
fn time_wait_rst() {
    assert_rst_closes(time_wait(), PEER_ISS + 2, None);
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
    assert_eq!(tcb.error(), None);
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
    assert!(tcb.has_output());
    assert_eq!(out(&mut tcb, at(2)), vec![seg(RST, ISS + 101, 0, 0, &[])]);
    assert_eq!(tcb.poll_at(), None);
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
    assert_eq!(tcb.poll_at(), None);
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

// ----------------------------------------------------------------------
// Acceptability (RFC 9293 section 3.10.7.4, first check)
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
// Flow control
// ----------------------------------------------------------------------

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
    assert_eq!(tcb.poll_at(), Some(at(1000) + RTO));
    tcb.on_timeout(at(1000) + RTO);
    // The probe: an old sequence number (SND.UNA - 1) that must be answered.
    assert_eq!(out(&mut tcb, at(1200)), vec![ack(ISS, PEER_ISS + 1, WIN)]);
    assert_eq!(tcb.stats().zero_window_probes, 1);
    // The next probe backs off.
    assert_eq!(tcb.poll_at(), Some(at(1200) + 2 * RTO));
    // The peer answers with the window still closed; the next probe follows.
    seg_in(
        &mut tcb,
        at(1210),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 0),
    );
    assert_eq!(out(&mut tcb, at(1210)), vec![]);
    tcb.on_timeout(at(1600));
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
    assert_eq!(tcb.poll_at(), Some(at(1610) + RTO));
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
            .poll_at()
            .expect("a timer runs while data is unacknowledged");
        tcb.on_timeout(t);
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
    assert_eq!(tcb.error(), None);
    // The window opens: the unacknowledged segment goes out again.
    let t = tcb.poll_at().unwrap();
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

// ----------------------------------------------------------------------
// Options: MSS and window scale
// ----------------------------------------------------------------------

/// RFC 9293 section 3.7.1: we send segments of at most min(peer MSS, our MSS).
#[test]
fn peer_mss_honoured() {
    let syn = TcpSegment {
        options: mss_only(1000),
        ..from_peer(SYN, PEER_ISS, 0, &[])
    };
    let mut tcb = established_with(&syn, ISS, config());
    assert_eq!(tcb.send_mss(), 1000);
    let a = data(3000);
    tcb.send(&a).unwrap();
    let segs = out(&mut tcb, at(1));
    assert_eq!(
        segs,
        vec![
            seg(ACK, ISS + 1, PEER_ISS + 1, WIN, &a[..1000]),
            seg(ACK, ISS + 1001, PEER_ISS + 1, WIN, &a[1000..2000]),
            seg(ACK | PSH, ISS + 2001, PEER_ISS + 1, WIN, &a[2000..]),
        ]
    );
}

/// RFC 9293 section 3.7.1: our own MSS caps the send size even when the peer's is larger.
#[test]
fn our_mss_caps_peer_mss() {
    let syn = TcpSegment {
        options: mss_only(9000),
        ..from_peer(SYN, PEER_ISS, 0, &[])
    };
    let cfg = TcpConfig {
        mss: 1200,
        ..config()
    };
    let mut tcb = Tcb::accept(&syn, SeqNum(ISS), cfg);
    let syn_ack = out(&mut tcb, T0);
    assert_eq!(syn_ack[0].options.mss, Some(1200));
    assert_eq!(tcb.send_mss(), 1200);
}

/// RFC 9293 section 3.7.1 (MUST-15): without an MSS option, assume 536.
#[test]
fn no_mss_option_means_536() {
    let syn = from_peer(SYN, PEER_ISS, 0, &[]);
    let mut tcb = established_with(&syn, ISS, config());
    assert_eq!(tcb.send_mss(), u32::from(DEFAULT_MSS));
    let a = data(1072);
    tcb.send(&a).unwrap();
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![
            seg(ACK, ISS + 1, PEER_ISS + 1, WIN, &a[..536]),
            seg(ACK | PSH, ISS + 537, PEER_ISS + 1, WIN, &a[536..]),
        ]
    );
}

/// RFC 7323 sections 2.2 and 2.3: both sides offered window scaling, so it
/// is on: our SYN-ACK carries our shift and an unscaled window; later window
/// fields are shifted both ways.
#[test]
fn window_scaling_negotiated() {
    let syn = TcpSegment {
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            ..TcpOptions::default()
        },
        ..from_peer(SYN, PEER_ISS, 0, &[])
    };
    let cfg = TcpConfig {
        recv_buffer: 512 * 1024,
        ..config()
    };
    let mut tcb = Tcb::accept(&syn, SeqNum(ISS), cfg);
    let syn_ack = Seg {
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(4),
            ..TcpOptions::default()
        },
        ..seg(SYN | ACK, ISS, PEER_ISS + 1, 65_535, &[])
    };
    assert_eq!(out(&mut tcb, T0), vec![syn_ack]);
    assert_eq!(tcb.window_scales(), (4, 7));
    // The SYN's own window was not scaled.
    assert_eq!(tcb.peer_window(), u32::from(PEER_WIN));

    seg_in(
        &mut tcb,
        at(1),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 100),
    );
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(tcb.peer_window(), 100 << 7);
    let a = data(1000);
    seg_in(
        &mut tcb,
        at(2),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 100),
    );
    seg_in(&mut tcb, at(2), &from_peer(ACK, PEER_ISS + 1, ISS + 1, &a));
    // (512 KiB - 1000) >> 4.
    let field = ((512 * 1024 - 1000) >> 4) as u16;
    assert_eq!(field, 32_705);
    assert_eq!(
        out(&mut tcb, at(2)),
        vec![ack(ISS + 1, PEER_ISS + 1001, field)]
    );
}

/// RFC 7323 section 2.2: the peer's SYN had no window scale option, so
/// scaling is off and our SYN-ACK must not carry the option; our window
/// field is then capped at 65535.
#[test]
fn window_scaling_off_when_peer_lacks_it() {
    let cfg = TcpConfig {
        recv_buffer: 512 * 1024,
        ..config()
    };
    let mut tcb = Tcb::accept(&peer_syn(PEER_ISS), SeqNum(ISS), cfg);
    let syn_ack = Seg {
        options: mss_only(1460),
        ..seg(SYN | ACK, ISS, PEER_ISS + 1, 65_535, &[])
    };
    assert_eq!(out(&mut tcb, T0), vec![syn_ack]);
    assert_eq!(tcb.window_scales(), (0, 0));
    seg_in(
        &mut tcb,
        at(1),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 100),
    );
    assert_eq!(tcb.peer_window(), 100);
    seg_in(
        &mut tcb,
        at(2),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1, &data(1000)),
    );
    assert_eq!(
        out(&mut tcb, at(2)),
        vec![ack(ISS + 1, PEER_ISS + 1001, 65_535)]
    );
}

/// RFC 7323 section 2.2 (active side): we offer scaling in our SYN; a SYN-ACK
/// without the option turns it off for both directions.
#[test]
fn window_scaling_active_peer_declines() {
    let cfg = TcpConfig {
        recv_buffer: 512 * 1024,
        ..config()
    };
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), cfg);
    let syn = out(&mut tcb, T0);
    assert_eq!(syn[0].options.window_scale, Some(4));
    assert_eq!(syn[0].window, 65_535);
    let syn_ack = TcpSegment {
        options: mss_only(1460),
        window: 1000,
        ..from_peer(SYN | ACK, PEER_ISS, ISS + 1, &[])
    };
    seg_in(&mut tcb, at(1), &syn_ack);
    assert_eq!(tcb.window_scales(), (0, 0));
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![ack(ISS + 1, PEER_ISS + 1, 65_535)]
    );
    seg_in(
        &mut tcb,
        at(2),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 1000),
    );
    assert_eq!(tcb.peer_window(), 1000);
}

/// RFC 7323 section 2.2 (active side): the SYN-ACK's window is not scaled,
/// later ones are.
#[test]
fn window_scaling_active_accepted() {
    let cfg = TcpConfig {
        recv_buffer: 512 * 1024,
        ..config()
    };
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), cfg);
    out(&mut tcb, T0);
    let syn_ack = TcpSegment {
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(2),
            ..TcpOptions::default()
        },
        window: 1000,
        ..from_peer(SYN | ACK, PEER_ISS, ISS + 1, &[])
    };
    seg_in(&mut tcb, at(1), &syn_ack);
    assert_eq!(tcb.window_scales(), (4, 2));
    assert_eq!(tcb.peer_window(), 1000);
    // Our ACK's window is scaled: 512 KiB >> 4.
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![ack(ISS + 1, PEER_ISS + 1, 32_768)]
    );
    seg_in(
        &mut tcb,
        at(2),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 1000),
    );
    assert_eq!(tcb.peer_window(), 4000);
}

/// RFC 7323 section 2.3: a shift above 14 is used as 14.
#[test]
fn window_scale_above_14_clamped() {
    let syn = TcpSegment {
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(20),
            ..TcpOptions::default()
        },
        ..from_peer(SYN, PEER_ISS, 0, &[])
    };
    let tcb = Tcb::accept(&syn, SeqNum(ISS), config());
    assert_eq!(tcb.window_scales().1, 14);
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
    assert_eq!(tcb.poll_at(), None);
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

// ----------------------------------------------------------------------
// Nagle and delayed ACK
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
    assert_eq!(tcb.poll_at(), Some(at(140)));
    tcb.on_timeout(at(139));
    assert_eq!(out(&mut tcb, at(139)), vec![]);
    tcb.on_timeout(at(140));
    assert_eq!(
        out(&mut tcb, at(140)),
        vec![ack(ISS + 1, PEER_ISS + 101, WIN - 100)]
    );
    assert_eq!(tcb.poll_at(), None);
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
    assert_eq!(tcb.poll_at(), None);
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
    assert_eq!(tcb.poll_at(), Some(at(110) + RTO));
}

/// RFC 9293 section 3.10.7.4 (eighth step): a FIN is acked at once even with
/// delayed ACKs on.
#[test]
fn delayed_ack_fin_acked_at_once() {
    let mut tcb = established_cfg(delayed_ack_config());
    seg_in(
        &mut tcb,
        at(100),
        &from_peer(FIN | ACK, PEER_ISS + 1, ISS + 1, &data(10)),
    );
    assert_eq!(
        out(&mut tcb, at(100)),
        vec![ack(ISS + 1, PEER_ISS + 12, WIN - 11)]
    );
}

// ----------------------------------------------------------------------
// Options: timestamps (RFC 7323) and SACK (RFC 2018) -- harness
// ----------------------------------------------------------------------

/// The peer's TSval on its SYN in the option tests.
const PEER_TS: u32 = 7_000;
/// Full-sized payload without options.
const MSS: u32 = 1460;

/// The test config with the option features chosen.
fn opts_cfg(timestamps: bool, sack: bool, tail_loss_probe: bool) -> TcpConfig {
    TcpConfig {
        timestamps,
        sack,
        tail_loss_probe,
        ..config()
    }
}

/// The test config with SACK and an RTO floor of 1 s (RFC 6298 (2.4)), so
/// that SACK recovery plays out long before the retransmission timer.
fn sack_cfg() -> TcpConfig {
    TcpConfig {
        rtt: RttConfig {
            min_rto: Duration::from_secs(1),
            ..RttConfig::default()
        },
        ..opts_cfg(false, true, false)
    }
}

/// The peer's SYN (ISN `PEER_ISS`, MSS 1460), with TSval `ts` and
/// SACK-permitted as given.
fn peer_syn_opts(ts: Option<u32>, sack_permitted: bool) -> TcpSegment<'static> {
    TcpSegment {
        options: TcpOptions {
            mss: Some(1460),
            sack_permitted,
            timestamp: ts.map(|v| (v, 0)),
            ..TcpOptions::default()
        },
        ..from_peer(SYN, PEER_ISS, 0, &[])
    }
}

/// `s` carrying the timestamps option (TSval, TSecr).
fn with_ts(s: TcpSegment<'_>, tsval: u32, tsecr: u32) -> TcpSegment<'_> {
    let mut s = s;
    s.options.timestamp = Some((tsval, tsecr));
    s
}

/// `s` carrying SACK blocks `[left, right)`, given as absolute sequence numbers.
fn with_sack<'a>(s: TcpSegment<'a>, blocks: &[(u32, u32)]) -> TcpSegment<'a> {
    let mut s = s;
    for &(l, r) in blocks {
        assert!(s.options.sack.push(SeqNum(l), SeqNum(r)));
    }
    s
}

/// A pure ACK from the peer acknowledging `ack`, with SACK blocks.
fn sack_ack(ack: u32, blocks: &[(u32, u32)]) -> TcpSegment<'static> {
    with_sack(from_peer(ACK, PEER_ISS + 1, ack, &[]), blocks)
}

/// Our TSval at `now`: milliseconds plus the per-connection offset (the ISS).
fn our_ts(now: Instant) -> u32 {
    (now.total_millis() as u32).wrapping_add(ISS)
}

/// Start of our `i`-th full-sized data segment (no timestamps).
fn sg(i: u32) -> u32 {
    ISS + 1 + i * MSS
}

/// The SACK blocks of a segment we sent, as absolute numbers.
fn sacks(s: &Seg) -> Vec<(u32, u32)> {
    s.options
        .sack
        .as_slice()
        .iter()
        .map(|&(l, r)| (l.0, r.0))
        .collect()
}

/// A passive open from `syn`: our SYN-ACK leaves at `T0`, the peer's ACK
/// (with a timestamp if the SYN had one) arrives `rtt_ms` later, so SRTT =
/// `rtt_ms` and RTTVAR = `rtt_ms` / 2 (RFC 6298 (2.2)).
fn established_rtt(syn: &TcpSegment<'_>, cfg: TcpConfig, rtt_ms: u64) -> Tcb {
    let mut tcb = syn_received_with(syn, ISS, cfg);
    let mut a = from_peer(ACK, PEER_ISS + 1, ISS + 1, &[]);
    if let Some((tsval, _)) = syn.options.timestamp {
        a = with_ts(a, tsval + 1, our_ts(T0));
    }
    seg_in(&mut tcb, at(rtt_ms), &a);
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(out(&mut tcb, at(rtt_ms)), vec![]);
    assert_eq!(tcb.rtt().srtt(), Some(Duration::from_millis(rtt_ms)));
    tcb
}

/// SACK negotiated (no timestamps), SRTT 100 ms, RTO 1 s: established at at(100).
fn sack_established() -> Tcb {
    established_rtt(&peer_syn_opts(None, true), sack_cfg(), 100)
}

/// Timestamps negotiated (no SACK); SYN-ACK at `T0`, ACK at `T0`.
fn ts_established() -> Tcb {
    established_rtt(
        &peer_syn_opts(Some(PEER_TS), false),
        opts_cfg(true, false, false),
        0,
    )
}

// ----------------------------------------------------------------------
// Timestamps (RFC 7323)
// ----------------------------------------------------------------------

/// RFC 7323 section 3.2: our SYN carries TSopt with TSval from our clock
/// (ms plus a per-connection offset, section 5.4) and TSecr 0; once the
/// SYN-ACK carried TSopt too, every segment carries TSval and echoes the
/// peer's TSval as TSecr.
#[test]
fn ts_active_open_syn_and_later_segments_rfc7323_3_2() {
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), opts_cfg(true, false, false));
    let syn = out(&mut tcb, at(7));
    assert_eq!(syn.len(), 1);
    assert_eq!(syn[0].flags, SYN);
    assert_eq!(syn[0].options.timestamp, Some((ISS + 7, 0)));
    assert!(!syn[0].options.sack_permitted);
    let syn_ack = with_ts(
        TcpSegment {
            options: mss_only(1460),
            ..from_peer(SYN | ACK, PEER_ISS, ISS + 1, &[])
        },
        5000,
        ISS + 7,
    );
    seg_in(&mut tcb, at(30), &syn_ack);
    assert_eq!(tcb.state(), State::Established);
    let expect_ts = |now: Instant, echo: u32| TcpOptions {
        timestamp: Some((our_ts(now), echo)),
        ..TcpOptions::default()
    };
    assert_eq!(
        out(&mut tcb, at(30)),
        vec![Seg {
            options: expect_ts(at(30), 5000),
            ..ack(ISS + 1, PEER_ISS + 1, WIN)
        }]
    );
    tcb.send(b"hi").unwrap();
    assert_eq!(
        out(&mut tcb, at(45)),
        vec![Seg {
            options: expect_ts(at(45), 5000),
            ..seg(ACK | PSH, ISS + 1, PEER_ISS + 1, WIN, b"hi")
        }]
    );
}

/// RFC 7323 section 3.2: a SYN with TSopt is answered by a SYN-ACK with
/// TSopt whose TSecr echoes the SYN's TSval; later segments echo TS.Recent.
#[test]
fn ts_passive_open_syn_ack_echoes_rfc7323_3_2() {
    let syn = peer_syn_opts(Some(PEER_TS), false);
    let mut tcb = Tcb::accept(&syn, SeqNum(ISS), opts_cfg(true, false, false));
    assert_eq!(
        out(&mut tcb, at(3)),
        vec![Seg {
            options: TcpOptions {
                mss: Some(1460),
                timestamp: Some((our_ts(at(3)), PEER_TS)),
                ..TcpOptions::default()
            },
            ..seg(SYN | ACK, ISS, PEER_ISS + 1, WIN, &[])
        }]
    );
    seg_in(
        &mut tcb,
        at(10),
        &with_ts(
            from_peer(ACK, PEER_ISS + 1, ISS + 1, &[]),
            PEER_TS + 10,
            our_ts(at(3)),
        ),
    );
    assert_eq!(tcb.state(), State::Established);
    tcb.send(b"x").unwrap();
    let segs = out(&mut tcb, at(20));
    assert_eq!(segs.len(), 1);
    assert_eq!(
        segs[0].options.timestamp,
        Some((our_ts(at(20)), PEER_TS + 10))
    );
}

/// RFC 7323 section 3.2: if the SYN had no TSopt, the SYN-ACK has none and
/// no later segment carries one; data segments use the whole MSS.
#[test]
fn ts_not_offered_by_peer_rfc7323_3_2() {
    let mut tcb = established_with(&peer_syn(PEER_ISS), ISS, opts_cfg(true, false, false));
    let a = data(2 * 1460);
    tcb.send(&a).unwrap();
    let segs = out(&mut tcb, at(5));
    assert_eq!(
        segs,
        vec![
            seg(ACK, ISS + 1, PEER_ISS + 1, WIN, &a[..1460]),
            seg(ACK | PSH, ISS + 1461, PEER_ISS + 1, WIN, &a[1460..]),
        ]
    );
    seg_in(
        &mut tcb,
        at(6),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1, b"q"),
    );
    assert_eq!(
        out(&mut tcb, at(6)),
        vec![ack(ISS + 2921, PEER_ISS + 2, WIN - 1)]
    );
    // And the SYN-ACK itself carried none.
    let mut tcb = Tcb::accept(
        &peer_syn(PEER_ISS),
        SeqNum(ISS),
        opts_cfg(true, false, false),
    );
    assert_eq!(out(&mut tcb, T0), vec![our_syn_ack(ISS, PEER_ISS)]);
}

/// RFC 7323 section 4.3: TS.Recent takes SEG.TSval only from a segment with
/// SEG.SEQ <= Last.ACK.sent and SEG.TSval >= TS.Recent, so an out-of-order
/// segment or an older TSval does not move it; and every ACK echoes TS.Recent.
#[test]
fn ts_recent_update_rules_rfc7323_4_3() {
    let mut tcb = ts_established();
    let p = PEER_ISS + 1;
    let echo = |segs: &[Seg]| {
        assert_eq!(segs.len(), 1, "{segs:?}");
        segs[0].options.timestamp.map(|t| t.1)
    };
    // In order at Last.ACK.sent: taken.
    seg_in(
        &mut tcb,
        at(10),
        &with_ts(from_peer(ACK, p, ISS + 1, &data(100)), 8000, ISS),
    );
    assert_eq!(echo(&out(&mut tcb, at(10))), Some(8000));
    // Out of order (SEG.SEQ > Last.ACK.sent): a newer TSval is not taken.
    seg_in(
        &mut tcb,
        at(11),
        &with_ts(from_peer(ACK, p + 300, ISS + 1, &data(100)), 9000, ISS),
    );
    let dup = out(&mut tcb, at(11));
    assert_eq!(dup[0].ack, p + 100);
    assert_eq!(echo(&dup), Some(8000));
    // In order but an older TSval: not taken either -- PAWS (RFC 7323
    // section 5.3, R1) drops the whole segment as an old duplicate and
    // answers with an ACK.
    seg_in(
        &mut tcb,
        at(12),
        &with_ts(from_peer(ACK, p + 100, ISS + 1, &data(100)), 7500, ISS),
    );
    let a = out(&mut tcb, at(12));
    assert_eq!(a[0].ack, p + 100);
    assert_eq!(echo(&a), Some(8000));
    assert_eq!(tcb.recv_queued(), 100);
    // The same bytes with a current TSval: accepted, and the TSval taken.
    seg_in(
        &mut tcb,
        at(12),
        &with_ts(from_peer(ACK, p + 100, ISS + 1, &data(100)), 8500, ISS),
    );
    let a = out(&mut tcb, at(12));
    assert_eq!(a[0].ack, p + 200);
    assert_eq!(echo(&a), Some(8500));
    // The segment that fills the hole starts at Last.ACK.sent: taken.
    seg_in(
        &mut tcb,
        at(13),
        &with_ts(from_peer(ACK, p + 200, ISS + 1, &data(100)), 9500, ISS),
    );
    let a = out(&mut tcb, at(13));
    assert_eq!(a[0].ack, p + 400);
    assert_eq!(echo(&a), Some(9500));
}

/// RFC 7323 section 4.3 (with delayed ACKs): of two segments acked by one
/// ACK, the TSval of the earlier one is echoed, since the later one starts
/// beyond Last.ACK.sent.
#[test]
fn ts_recent_delayed_ack_echoes_earliest_rfc7323_4_3() {
    let cfg = TcpConfig {
        ack_delay: Some(Duration::from_millis(40)),
        ..opts_cfg(true, false, false)
    };
    let mut tcb = established_rtt(&peer_syn_opts(Some(PEER_TS), false), cfg, 0);
    let p = PEER_ISS + 1;
    seg_in(
        &mut tcb,
        at(10),
        &with_ts(from_peer(ACK, p, ISS + 1, &data(100)), 8000, ISS),
    );
    seg_in(
        &mut tcb,
        at(11),
        &with_ts(from_peer(ACK, p + 100, ISS + 1, &data(100)), 8001, ISS),
    );
    assert_eq!(out(&mut tcb, at(11)), vec![]);
    tcb.on_timeout(at(50));
    let segs = out(&mut tcb, at(50));
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].ack, p + 200);
    assert_eq!(segs[0].options.timestamp, Some((our_ts(at(50)), 8000)));
}

/// RFC 7323 section 3.2 / RFC 6691: the 12 option bytes of TSopt come out of
/// the MSS, so full data segments carry MSS - 12 = 1448 bytes.
#[test]
fn ts_data_segments_carry_mss_minus_12_rfc7323_3_2() {
    let mut tcb = ts_established();
    let a = data(3 * 1448 + 500);
    tcb.send(&a).unwrap();
    tcb.set_nagle(false);
    let segs = out(&mut tcb, at(1));
    let lens: Vec<usize> = segs.iter().map(|s| s.payload.len()).collect();
    assert_eq!(lens, vec![1448, 1448, 1448, 500]);
    let mut next = ISS + 1;
    for s in &segs {
        assert_eq!(s.seq, next);
        assert!(s.options.timestamp.is_some());
        // 20 bytes of IP, 20 + 12 of TCP: the packet fits a 1500-byte MTU.
        assert!(20 + 32 + s.payload.len() <= 1500);
        next += s.payload.len() as u32;
    }
    assert_eq!(
        segs.iter()
            .flat_map(|s| s.payload.clone())
            .collect::<Vec<_>>(),
        a
    );
}

/// RFC 7323 section 4.1 with Karn's rule (RFC 6298 section 3): after a
/// timeout, an ACK whose TSecr echoes the original transmission (older
/// than the retransmission) gives no RTT sample and keeps the back-off.
#[test]
fn ts_karn_old_echo_gives_no_sample_rfc7323_4_1() {
    let mut tcb = ts_established();
    let srtt = tcb.rtt().srtt();
    tcb.send(&data(100)).unwrap();
    let first = out(&mut tcb, at(1000));
    assert_eq!(first[0].options.timestamp.unwrap().0, our_ts(at(1000)));
    tcb.on_timeout(at(1200));
    let rxt = out(&mut tcb, at(1200));
    assert_eq!(rxt.len(), 1);
    assert_eq!(rxt[0].options.timestamp.unwrap().0, our_ts(at(1200)));
    assert_eq!(tcb.rtt().backoff(), 1);
    // The original arrived late; its ACK echoes the original's TSval.
    seg_in(
        &mut tcb,
        at(1250),
        &with_ts(
            from_peer(ACK, PEER_ISS + 1, ISS + 101, &[]),
            PEER_TS + 5,
            our_ts(at(1000)),
        ),
    );
    assert!(tcb.all_acked());
    assert_eq!(tcb.rtt().srtt(), srtt);
    assert_eq!(tcb.rtt().backoff(), 1);
    assert_eq!(tcb.rtt().rto(), 2 * RTO);
}

/// RFC 7323 section 4.1: an echo of the retransmission's own TSval times it
/// unambiguously: a sample (here 50 ms) that ends the back-off.
#[test]
fn ts_karn_fresh_echo_gives_sample_rfc7323_4_1() {
    let mut tcb = ts_established();
    tcb.send(&data(100)).unwrap();
    out(&mut tcb, at(1000));
    tcb.on_timeout(at(1200));
    assert_eq!(out(&mut tcb, at(1200)).len(), 1);
    seg_in(
        &mut tcb,
        at(1250),
        &with_ts(
            from_peer(ACK, PEER_ISS + 1, ISS + 101, &[]),
            PEER_TS + 5,
            our_ts(at(1200)),
        ),
    );
    assert_eq!(tcb.rtt().backoff(), 0);
    // SRTT was 0 (the handshake): 7/8 * 0 + 1/8 * 50 ms.
    assert_eq!(tcb.rtt().srtt(), Some(Duration::from_micros(6250)));
}

// ----------------------------------------------------------------------
// SACK, receiver side (RFC 2018)
// ----------------------------------------------------------------------

/// RFC 2018 section 2: SACK-permitted goes on our SYN when configured, and
/// on the SYN-ACK only if the peer's SYN offered it.
#[test]
fn sack_permitted_negotiation_rfc2018_2() {
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), opts_cfg(false, true, false));
    let syn = out(&mut tcb, T0);
    assert!(syn[0].options.sack_permitted);
    let synack = |offer: bool, cfg: TcpConfig| {
        let mut tcb = Tcb::accept(&peer_syn_opts(None, offer), SeqNum(ISS), cfg);
        let segs = out(&mut tcb, T0);
        assert_eq!(segs.len(), 1);
        segs[0].options.sack_permitted
    };
    assert!(synack(true, opts_cfg(false, true, false)));
    assert!(!synack(false, opts_cfg(false, true, false)));
    assert!(!synack(true, opts_cfg(false, false, false)));
    // With timestamps too, both fit.
    let mut tcb = Tcb::accept(
        &peer_syn_opts(Some(PEER_TS), true),
        SeqNum(ISS),
        opts_cfg(true, true, false),
    );
    let segs = out(&mut tcb, T0);
    assert!(segs[0].options.sack_permitted);
    assert_eq!(segs[0].options.timestamp, Some((ISS, PEER_TS)));
}

/// RFC 2018 section 4: out-of-order segments are answered with duplicate
/// ACKs carrying SACK blocks; the first block holds the segment that
/// triggered the ACK; once the holes are filled, no blocks.
#[test]
fn sack_blocks_most_recent_first_rfc2018_4() {
    let mut tcb = established_with(
        &peer_syn_opts(None, true),
        ISS,
        opts_cfg(false, true, false),
    );
    let p = PEER_ISS + 1;
    let feed = |tcb: &mut Tcb, off: u32, t: u64| {
        seg_in(tcb, at(t), &from_peer(ACK, p + off, ISS + 1, &data(100)));
        let segs = out(tcb, at(t));
        assert_eq!(segs.len(), 1, "{segs:?}");
        segs[0].clone()
    };
    let a = feed(&mut tcb, 100, 1);
    assert_eq!((a.ack, a.window), (p, WIN));
    assert_eq!(sacks(&a), vec![(p + 100, p + 200)]);
    let a = feed(&mut tcb, 500, 2);
    assert_eq!(sacks(&a), vec![(p + 500, p + 600), (p + 100, p + 200)]);
    let a = feed(&mut tcb, 300, 3);
    assert_eq!(sacks(&a)[0], (p + 300, p + 400));
    assert_eq!(sacks(&a).len(), 3);
    // A segment joining two blocks: the merged block comes first.
    let a = feed(&mut tcb, 200, 4);
    assert_eq!(sacks(&a), vec![(p + 100, p + 400), (p + 500, p + 600)]);
    assert_eq!(a.ack, p);
    // Filling the first hole: cumulative ACK, the rest still SACKed.
    let a = feed(&mut tcb, 0, 5);
    assert_eq!((a.ack, a.window), (p + 400, WIN - 400));
    assert_eq!(sacks(&a), vec![(p + 500, p + 600)]);
    // Filling the last hole: no SACK option at all.
    let a = feed(&mut tcb, 400, 6);
    assert_eq!(a, ack(ISS + 1, p + 600, WIN - 600));
}

/// RFC 2018 section 3: at most 4 blocks fit the option space, 3 alongside
/// timestamps; the first is always the latest segment's (section 4).
#[test]
fn sack_block_count_limits_rfc2018_3() {
    for ts in [false, true] {
        let syn = peer_syn_opts(ts.then_some(PEER_TS), true);
        let mut tcb = established_rtt(&syn, opts_cfg(ts, true, false), 0);
        let p = PEER_ISS + 1;
        let mut last = Vec::new();
        for k in 1..=6u32 {
            let mut s = from_peer(ACK, p + 100 * k, ISS + 1, &[]);
            let d = data(50);
            s.payload = &d;
            if ts {
                s = with_ts(s, PEER_TS + k, ISS);
            }
            seg_in(&mut tcb, at(u64::from(k)), &s);
            last = out(&mut tcb, at(u64::from(k)));
            assert_eq!(last.len(), 1);
            let b = sacks(&last[0]);
            assert_eq!(b[0], (p + 100 * k, p + 100 * k + 50), "ts={ts} k={k}");
            assert_eq!(
                b.len(),
                (k as usize).min(if ts { 3 } else { 4 }),
                "ts={ts} k={k}"
            );
        }
        assert_eq!(last[0].options.timestamp.is_some(), ts);
    }
}

/// RFC 2018 section 4: "the SACK option SHOULD be filled out by repeating
/// the most recently reported SACK blocks", so that each block is reported
/// in at least three successive ACKs even with more blocks than fit.
#[test]
fn sack_blocks_repeat_most_recent_rfc2018_4() {
    for ts in [false, true] {
        let syn = peer_syn_opts(ts.then_some(PEER_TS), true);
        let mut tcb = established_rtt(&syn, opts_cfg(ts, true, false), 0);
        let p = PEER_ISS + 1;
        let mut reports: Vec<Vec<(u32, u32)>> = Vec::new();
        for k in 1..=6u32 {
            let d = data(50);
            let mut s = from_peer(ACK, p + 100 * k, ISS + 1, &d);
            if ts {
                s = with_ts(s, PEER_TS + k, ISS);
            }
            seg_in(&mut tcb, at(u64::from(k)), &s);
            let segs = out(&mut tcb, at(u64::from(k)));
            reports.push(sacks(&segs[0]));
        }
        // Blocks 1..=4 (each reported first once) appear in the two ACKs
        // after their own too (three with timestamps: blocks 1..=4 need
        // reports k, k+1, k+2 <= 6).
        for k in 1..=4u32 {
            let block = (p + 100 * k, p + 100 * k + 50);
            for r in (k - 1)..(k + 2) {
                assert!(
                    reports[r as usize].contains(&block),
                    "ts={ts}: block {k} missing from ACK {} {:?}",
                    r + 1,
                    reports[r as usize]
                );
            }
        }
    }
}

/// RFC 5681 section 4.2 and section 2 (duplicate ACK definition): each
/// out-of-order segment gets its own duplicate ACK even when several are
/// processed before dispatch, and they repeat the same window field.
#[test]
fn sack_one_dup_ack_per_out_of_order_segment_rfc5681_4_2() {
    let mut tcb = established_with(
        &peer_syn_opts(None, true),
        ISS,
        opts_cfg(false, true, false),
    );
    let p = PEER_ISS + 1;
    seg_in(&mut tcb, at(1), &from_peer(ACK, p, ISS + 1, &data(2000)));
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![ack(ISS + 1, p + 2000, WIN - 2000)]
    );
    for k in 0..3u32 {
        seg_in(
            &mut tcb,
            at(2),
            &from_peer(ACK, p + 3000 + 200 * k, ISS + 1, &data(100)),
        );
    }
    // The application reads in between: the window could grow, but the
    // duplicates must not look like window updates.
    assert_eq!(read_all(&mut tcb).len(), 2000);
    let segs = out(&mut tcb, at(2));
    assert_eq!(segs.len(), 4, "{segs:?}");
    for s in &segs[..3] {
        assert_eq!((s.seq, s.ack, s.window), (ISS + 1, p + 2000, WIN - 2000));
        assert_eq!(sacks(s)[0], (p + 3400, p + 3500));
        assert_eq!(sacks(s).len(), 3);
    }
    // Then the window update the read earned (RFC 1122 4.2.3.3), which the
    // duplicates could not carry.
    assert_eq!((segs[3].ack, segs[3].window), (p + 2000, WIN));
}

// ----------------------------------------------------------------------
// SACK, sender side (RFC 6675)
// ----------------------------------------------------------------------

/// Sends `n` full segments at `now` from a fresh SACK connection and
/// checks they all left.
fn sack_flight(n: u32, now: Instant) -> (Tcb, Vec<u8>) {
    let mut tcb = sack_established();
    let a = data((n * MSS) as usize);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, now).len(), n.min(10) as usize);
    (tcb, a)
}

/// Our segment `i` of `a`, sent again.
fn seg_i(a: &[u8], i: u32) -> Seg {
    let off = (i * MSS) as usize;
    let end = (off + MSS as usize).min(a.len());
    let flags = if end == a.len() { ACK | PSH } else { ACK };
    seg(flags, sg(i), PEER_ISS + 1, WIN, &a[off..end])
}

/// RFC 6675 section 5 step (2) (IsLost(HighACK + 1)): more than
/// 2 * SMSS SACKed above SND.UNA starts loss recovery even before the
/// third duplicate ACK; exactly 2 segments' worth does not.
#[test]
fn sack_recovery_on_sacked_bytes_rfc6675_5() {
    let (mut tcb, a) = sack_flight(10, at(200));
    seg_in(&mut tcb, at(300), &sack_ack(sg(0), &[(sg(1), sg(3))]));
    assert!(!tcb.congestion().in_recovery());
    assert_eq!(out(&mut tcb, at(300)), vec![]);
    seg_in(&mut tcb, at(301), &sack_ack(sg(0), &[(sg(1), sg(4))]));
    assert_eq!(tcb.stats().dup_acks, 2);
    assert!(tcb.congestion().in_recovery());
    assert_eq!(tcb.stats().fast_retransmits, 1);
    assert_eq!(tcb.congestion().ssthresh(), 5 * MSS);
    // Only the lost segment: the pipe (6 above the SACKs + 1 resent) is full.
    assert_eq!(out(&mut tcb, at(301)), vec![seg_i(&a, 0)]);
    // Full ACK: recovery ends with cwnd = ssthresh (RFC 6675 section 5, RFC 6582).
    seg_in(&mut tcb, at(400), &sack_ack(sg(10), &[]));
    assert!(!tcb.congestion().in_recovery());
    assert_eq!(tcb.congestion().cwnd(), 5 * MSS);
    assert!(tcb.all_acked());
}

/// RFC 6675 section 5 (NextSeg rule 1, and the pipe): several holes are
/// resent within one round trip as SACKs drain the pipe -- not one per RTT
/// as NewReno would -- and a partial ACK does not resend a hole again.
#[test]
fn sack_recovery_resends_several_holes_per_rtt_rfc6675_5() {
    // Segments 0, 2 and 4 are lost.
    let (mut tcb, a) = sack_flight(10, at(200));
    seg_in(&mut tcb, at(300), &sack_ack(sg(0), &[(sg(1), sg(2))]));
    seg_in(
        &mut tcb,
        at(301),
        &sack_ack(sg(0), &[(sg(3), sg(4)), (sg(1), sg(2))]),
    );
    assert_eq!(out(&mut tcb, at(301)), vec![]);
    let blocks = |upto: u32| [(sg(5), sg(upto)), (sg(3), sg(4)), (sg(1), sg(2))];
    seg_in(&mut tcb, at(302), &sack_ack(sg(0), &blocks(6)));
    assert_eq!(tcb.stats().fast_retransmits, 1);
    assert_eq!(out(&mut tcb, at(302)), vec![seg_i(&a, 0)]);
    seg_in(&mut tcb, at(303), &sack_ack(sg(0), &blocks(7)));
    assert_eq!(out(&mut tcb, at(303)), vec![seg_i(&a, 2)]);
    seg_in(&mut tcb, at(304), &sack_ack(sg(0), &blocks(8)));
    assert_eq!(out(&mut tcb, at(304)), vec![seg_i(&a, 4)]);
    assert_eq!(tcb.stats().sack_retransmits, 2);
    for t in [305, 306] {
        seg_in(&mut tcb, at(t), &sack_ack(sg(0), &blocks(t as u32 - 296)));
        assert_eq!(out(&mut tcb, at(t)), vec![], "nothing is left to resend");
    }
    // The first retransmission arrives: a partial ACK; 2 and 4 are on their way.
    seg_in(
        &mut tcb,
        at(400),
        &sack_ack(sg(2), &[(sg(3), sg(4)), (sg(5), sg(10))]),
    );
    assert_eq!(out(&mut tcb, at(400)), vec![]);
    assert_eq!(tcb.stats().partial_ack_retransmits, 0);
    seg_in(&mut tcb, at(401), &sack_ack(sg(10), &[]));
    assert!(!tcb.congestion().in_recovery());
    assert_eq!(tcb.congestion().cwnd(), tcb.congestion().ssthresh());
    assert_eq!(tcb.stats().retransmits_timeout, 0);
}

/// RFC 6675 section 5 (NextSeg: only octets not SACKed): a hole that gets
/// SACKed before its turn (reordering) is never resent.
#[test]
fn sack_recovery_skips_sacked_holes_rfc6675_5() {
    // Segments 0, 2 and 4 missing; 2 turns up late.
    let (mut tcb, a) = sack_flight(10, at(200));
    seg_in(&mut tcb, at(300), &sack_ack(sg(0), &[(sg(1), sg(2))]));
    seg_in(
        &mut tcb,
        at(301),
        &sack_ack(sg(0), &[(sg(3), sg(4)), (sg(1), sg(2))]),
    );
    seg_in(
        &mut tcb,
        at(302),
        &sack_ack(sg(0), &[(sg(5), sg(6)), (sg(3), sg(4)), (sg(1), sg(2))]),
    );
    let mut sent = out(&mut tcb, at(302));
    seg_in(
        &mut tcb,
        at(303),
        &sack_ack(sg(0), &[(sg(1), sg(4)), (sg(5), sg(7))]),
    );
    sent.extend(out(&mut tcb, at(303)));
    for t in 304..=306 {
        seg_in(
            &mut tcb,
            at(t),
            &sack_ack(sg(0), &[(sg(1), sg(4)), (sg(5), sg(t as u32 - 296))]),
        );
        sent.extend(out(&mut tcb, at(t)));
    }
    assert_eq!(sent, vec![seg_i(&a, 0), seg_i(&a, 4)]);
}

/// RFC 6675 section 5.1 and RFC 2018 section 8: after a timeout the
/// go-back retransmission (one segment per cwnd, RFC 5681 (4)) skips the
/// ranges the peer SACKed.
#[test]
fn sack_rto_go_back_skips_sacked_rfc6675_5_1() {
    let (mut tcb, a) = sack_flight(5, at(200));
    seg_in(&mut tcb, at(300), &sack_ack(sg(0), &[(sg(1), sg(2))]));
    seg_in(
        &mut tcb,
        at(301),
        &sack_ack(sg(0), &[(sg(3), sg(4)), (sg(1), sg(2))]),
    );
    assert!(!tcb.congestion().in_recovery());
    assert_eq!(out(&mut tcb, at(301)), vec![]);
    assert_eq!(tcb.poll_at(), Some(at(1200)));
    tcb.on_timeout(at(1200));
    let mut sent = out(&mut tcb, at(1200));
    assert_eq!(sent, vec![seg_i(&a, 0)]);
    // The peer now holds 0..2 and 3.
    seg_in(&mut tcb, at(1300), &sack_ack(sg(2), &[(sg(3), sg(4))]));
    sent = out(&mut tcb, at(1300));
    seg_in(&mut tcb, at(1400), &sack_ack(sg(4), &[]));
    sent.extend(out(&mut tcb, at(1400)));
    assert_eq!(sent, vec![seg_i(&a, 2), seg_i(&a, 4)]);
    seg_in(&mut tcb, at(1500), &sack_ack(sg(5), &[]));
    assert!(tcb.all_acked());
}

/// RFC 6675 section 2 (duplicate ACK with SACK): an ACK that brings new
/// SACK information counts as a duplicate even if its window changed;
/// without SACK news it is a window update (RFC 5681 section 2).
#[test]
fn sack_news_counts_as_dup_ack_despite_window_rfc6675_2() {
    let (mut tcb, _) = sack_flight(6, at(200));
    let mut s = sack_ack(sg(0), &[(sg(1), sg(2))]);
    s.window = 60_000;
    seg_in(&mut tcb, at(300), &s);
    assert_eq!(tcb.stats().dup_acks, 1);
    let mut s = sack_ack(sg(0), &[(sg(1), sg(2))]);
    s.window = 50_000;
    seg_in(&mut tcb, at(301), &s);
    assert_eq!(tcb.stats().dup_acks, 1, "old SACK news and a new window");
    let mut s = sack_ack(sg(0), &[(sg(3), sg(4)), (sg(1), sg(2))]);
    s.window = 40_000;
    seg_in(&mut tcb, at(302), &s);
    assert_eq!(tcb.stats().dup_acks, 2);
    assert_eq!(tcb.peer_window(), 40_000);
}

/// RFC 6675 section 5 and RFC 8985 section 6.2 (lost retransmissions): in
/// recovery, when later segments keep being SACKed more than 2*SRTT after
/// SND.UNA was resent, that retransmission was lost as well: resend it.
#[test]
fn sack_lost_retransmission_resent_rfc6675_5() {
    // 14 segments, 10 sent (IW); segment 0 lost.
    let (mut tcb, a) = sack_flight(14, at(100));
    seg_in(&mut tcb, at(200), &sack_ack(sg(0), &[(sg(1), sg(4))]));
    assert_eq!(out(&mut tcb, at(200)), vec![seg_i(&a, 0)]);
    // The rest of the window arrives: the pipe drains, new data may go.
    seg_in(&mut tcb, at(210), &sack_ack(sg(0), &[(sg(1), sg(10))]));
    let new = out(&mut tcb, at(210));
    assert_eq!(new, (10..14).map(|i| seg_i(&a, i)).collect::<Vec<_>>());
    // Less than 2*SRTT (200 ms) after the retransmission: keep waiting.
    seg_in(&mut tcb, at(350), &sack_ack(sg(0), &[(sg(1), sg(11))]));
    assert_eq!(out(&mut tcb, at(350)), vec![]);
    assert_eq!(tcb.stats().lost_retransmits, 0);
    assert!(tcb.poll_at().unwrap() > at(420));
    // More than 2*SRTT after it, later data is SACKed but not SND.UNA.
    seg_in(&mut tcb, at(420), &sack_ack(sg(0), &[(sg(1), sg(12))]));
    assert_eq!(tcb.stats().lost_retransmits, 1);
    assert_eq!(out(&mut tcb, at(420)), vec![seg_i(&a, 0)]);
    seg_in(&mut tcb, at(520), &sack_ack(sg(14), &[]));
    assert!(!tcb.congestion().in_recovery());
    assert_eq!(tcb.congestion().cwnd(), tcb.congestion().ssthresh());
    assert_eq!(tcb.stats().retransmits_timeout, 0);
    assert!(tcb.all_acked());
}

// ----------------------------------------------------------------------
// Limited transmit (RFC 3042)
// ----------------------------------------------------------------------

/// RFC 3042 section 2: the first and second duplicate ACKs each send one
/// new segment beyond cwnd (FlightSize <= cwnd + 2*SMSS); cwnd itself does
/// not change; the third starts fast retransmit.
#[test]
fn limited_transmit_rfc3042_2() {
    let mut tcb = established();
    let a = data(13 * 1460);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(10)).len(), 10);
    let cwnd = tcb.congestion().cwnd();
    let dup = from_peer(ACK, PEER_ISS + 1, ISS + 1, &[]);
    seg_in(&mut tcb, at(20), &dup);
    assert_eq!(out(&mut tcb, at(20)), vec![seg_i(&a, 10)]);
    seg_in(&mut tcb, at(21), &dup);
    assert_eq!(out(&mut tcb, at(21)), vec![seg_i(&a, 11)]);
    assert_eq!(tcb.congestion().cwnd(), cwnd);
    seg_in(&mut tcb, at(22), &dup);
    assert_eq!(out(&mut tcb, at(22)), vec![seg_i(&a, 0)]);
    assert_eq!(tcb.stats().fast_retransmits, 1);
}

/// RFC 3042 section 2: limited transmit only sends what the peer's window allows.
#[test]
fn limited_transmit_respects_peer_window_rfc3042_2() {
    let mut tcb = established();
    seg_in(
        &mut tcb,
        at(1),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 14_600),
    );
    tcb.send(&data(13 * 1460)).unwrap();
    assert_eq!(out(&mut tcb, at(10)).len(), 10);
    for t in [20, 21] {
        seg_in(
            &mut tcb,
            at(t),
            &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 14_600),
        );
        assert_eq!(out(&mut tcb, at(t)), vec![]);
    }
    assert_eq!(tcb.stats().dup_acks, 2);
}

/// RFC 3042 section 2 with RFC 6675 section 5 step (3): with SACK, limited
/// transmit is governed by cwnd - pipe; each of the first two duplicate
/// ACKs (each SACKing one segment) still lets exactly one new segment out,
/// so FlightSize never exceeds cwnd + 2*SMSS.
#[test]
fn limited_transmit_with_sack_one_segment_per_dup_ack_rfc3042_2() {
    let (mut tcb, a) = sack_flight(14, at(200));
    let cwnd = tcb.congestion().cwnd();
    seg_in(&mut tcb, at(300), &sack_ack(sg(0), &[(sg(1), sg(2))]));
    assert_eq!(out(&mut tcb, at(300)), vec![seg_i(&a, 10)]);
    seg_in(&mut tcb, at(301), &sack_ack(sg(0), &[(sg(1), sg(3))]));
    assert_eq!(out(&mut tcb, at(301)), vec![seg_i(&a, 11)]);
    assert_eq!(
        tcb.snd_nxt() - tcb.snd_una(),
        cwnd as usize + 2 * MSS as usize
    );
}

// ----------------------------------------------------------------------
// Tail loss probe (RFC 8985 section 7)
// ----------------------------------------------------------------------

/// SACK and TLP on, SRTT 100 ms, RTO 300 ms; established at at(100).
fn tlp_established() -> Tcb {
    let tcb = established_rtt(&peer_syn_opts(None, true), opts_cfg(false, true, true), 100);
    assert_eq!(tcb.rtt().rto(), Duration::from_millis(300));
    tcb
}

/// RFC 8985 sections 7.2 and 7.3: with no ACK, a probe goes out after
/// PTO = 2*SRTT; with no new data to send it is the last segment again.
/// Section 7.3: after the probe the RTO timer is re-armed (from now), and
/// it still fires if the probe draws no answer.
#[test]
fn tlp_resends_last_segment_rfc8985_7_3() {
    let mut tcb = tlp_established();
    let a = data(3 * 1460);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(1000)).len(), 3);
    assert_eq!(tcb.poll_at(), Some(at(1200)));
    tcb.on_timeout(at(1200));
    assert_eq!(out(&mut tcb, at(1200)), vec![seg_i(&a, 2)]);
    assert_eq!(tcb.stats().tail_loss_probes, 1);
    assert_eq!(tcb.stats().retransmits_timeout, 0);
    let rto = tcb.rtt().rto();
    assert_eq!(tcb.poll_at(), Some(at(1200) + rto));
    tcb.on_timeout(at(1200) + rto);
    assert_eq!(out(&mut tcb, at(1200) + rto), vec![seg_i(&a, 0)]);
    assert_eq!(tcb.stats().retransmits_timeout, 1);
    assert_eq!(tcb.stats().tail_loss_probes, 1);
}

/// RFC 8985 section 7.3: the probe is new data when there is some and the
/// peer's window allows (even beyond cwnd); only one probe until an ACK of
/// new data; then the PTO is armed again.
#[test]
fn tlp_sends_new_data_once_rfc8985_7_3() {
    let mut tcb = tlp_established();
    let a = data(12 * 1460);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(1000)).len(), 10);
    assert_eq!(tcb.poll_at(), Some(at(1200)));
    tcb.on_timeout(at(1200));
    assert_eq!(out(&mut tcb, at(1200)), vec![seg_i(&a, 10)]);
    assert_eq!(tcb.stats().tail_loss_probes, 1);
    // No second probe before the RTO.
    let next = tcb.poll_at().unwrap();
    assert!(next > at(1200));
    let before = Instant::from_micros(next.total_micros() - 1000);
    tcb.on_timeout(before);
    assert_eq!(out(&mut tcb, before), vec![]);
    assert_eq!(tcb.stats().tail_loss_probes, 1);
    // New data acked (also an RTT sample of 250 ms for segment 0): the
    // rest goes, and the PTO is armed again at 2*SRTT.
    seg_in(&mut tcb, at(1250), &sack_ack(sg(5), &[]));
    let srtt = tcb.rtt().srtt().unwrap();
    assert_eq!(srtt, Duration::from_micros(118_750));
    assert_eq!(out(&mut tcb, at(1250)), vec![seg_i(&a, 11)]);
    assert_eq!(tcb.poll_at(), Some(at(1250) + 2 * srtt));
}

/// RFC 8985 section 7.2: with one segment in flight the PTO adds a
/// delayed-ACK allowance (here at least 10 ms, or the configured ack delay).
#[test]
fn tlp_single_segment_waits_for_delayed_ack_rfc8985_7_2() {
    let mut tcb = tlp_established();
    tcb.send(&data(100)).unwrap();
    out(&mut tcb, at(1000));
    assert_eq!(tcb.poll_at(), Some(at(1210)));
    let cfg = TcpConfig {
        ack_delay: Some(Duration::from_millis(40)),
        ..opts_cfg(false, true, true)
    };
    let mut tcb = established_rtt(&peer_syn_opts(None, true), cfg, 100);
    tcb.send(&data(100)).unwrap();
    out(&mut tcb, at(1000));
    assert_eq!(tcb.poll_at(), Some(at(1240)));
}

/// RFC 8985 section 7.3 (in recovery, TLP retransmits): when SACKs cannot
/// show that the retransmission of SND.UNA was lost, the probe resends it.
#[test]
fn tlp_in_recovery_resends_snd_una_rfc8985_7_3() {
    let mut tcb = tlp_established();
    let a = data(10 * 1460);
    tcb.send(&a).unwrap();
    assert_eq!(out(&mut tcb, at(1000)).len(), 10);
    seg_in(&mut tcb, at(1050), &sack_ack(sg(0), &[(sg(1), sg(4))]));
    assert_eq!(out(&mut tcb, at(1050)), vec![seg_i(&a, 0)]);
    seg_in(&mut tcb, at(1060), &sack_ack(sg(0), &[(sg(1), sg(10))]));
    assert_eq!(out(&mut tcb, at(1060)), vec![]);
    let pto = tcb.poll_at().unwrap();
    assert!(pto < at(1300), "the probe comes before the RTO");
    tcb.on_timeout(pto);
    assert_eq!(out(&mut tcb, pto), vec![seg_i(&a, 0)]);
    assert_eq!(tcb.stats().tail_loss_probes, 1);
    assert_eq!(tcb.stats().retransmits_timeout, 0);
    // Section 7.3: the RTO is re-armed from the probe.
    assert_eq!(tcb.poll_at(), Some(pto + tcb.rtt().rto()));
}

/// RFC 8985 section 7.2 (TLP is for data; this stack does not probe a FIN):
/// once our FIN is out only the RTO remains.
#[test]
fn tlp_not_armed_with_fin_out_rfc8985_7_2() {
    let mut tcb = tlp_established();
    let a = data(3 * 1460);
    tcb.send(&a).unwrap();
    tcb.close();
    let segs = out(&mut tcb, at(1000));
    assert_eq!(segs.len(), 3);
    assert!(segs[2].flags.contains(FIN));
    assert_eq!(tcb.poll_at(), Some(at(1300)));
    tcb.on_timeout(at(1300));
    assert_eq!(out(&mut tcb, at(1300)), vec![seg_i(&a, 0)]);
    assert_eq!(tcb.stats().tail_loss_probes, 0);
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

/// After our own close, a send is `BrokenPipe` (EPIPE) in every later
/// state, also once TIME-WAIT is over and the connection is CLOSED; only an
/// error such as a reset would be reported instead.
#[test]
fn send_after_close_stays_broken_pipe() {
    let mut tcb = time_wait();
    assert_eq!(
        tcb.send(b"x").unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );
    let end = T0 + 2 * config().msl;
    tcb.on_timeout(end);
    assert_eq!(tcb.state(), State::Closed);
    assert_eq!(
        tcb.send(b"x").unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );

    let mut tcb = established();
    seg_in(&mut tcb, at(1), &from_peer(RST, PEER_ISS + 1, 0, &[]));
    assert_eq!(
        tcb.send(b"x").unwrap_err().kind(),
        io::ErrorKind::ConnectionReset
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
