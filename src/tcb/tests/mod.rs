//! State-transition tests for the TCB: a segment in, the state and the segment out.
//!
//! Each test drives one [`Tcb`] through a short script: segments from the peer
//! go in through [`seg_in`], and everything the TCB then wants to transmit is
//! collected by [`out`] and compared field by field. Time is an explicit
//! [`Instant`]; nothing sleeps. Each test names the RFC rule it checks.
//!
//! This file is the Tcb-specific harness (addresses, ISNs, the test config,
//! builders for each state), built on the crate-wide helpers in
//! [`crate::testing`]; the tests live in one file per concern.

use super::*;

pub(super) use std::io;
pub(super) use std::net::Ipv4Addr;
pub(super) use std::time::Duration;

pub(super) use crate::rtt::RttConfig;

use crate::testing::{self, data, Seg};
use crate::wire::{TcpFlags, TcpOptions, TcpSegment};

mod acceptability;
mod close;
mod congestion;
mod data;
mod flow_control;
mod handshake;
mod keepalive;
mod mss_wscale;
mod nagle_delack;
mod recovery;
mod reset;
mod sack;
mod timestamps;
mod tso;

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
        // The window arithmetic these tests check is RFC 5681/6582's;
        // CUBIC's has its own tests (src/cc/cubic.rs, and one below).
        congestion: crate::cc::Algorithm::NewReno,
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
    tcb.handle_segment(now, s)
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
// Options: timestamps (RFC 7323) and SACK (RFC 2018)
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
// Flights of full-sized segments (SACK, limited transmit, TLP)
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
