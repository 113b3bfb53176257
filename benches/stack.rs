//! Micro-benchmarks of the stack's per-wake-up and per-SYN costs against the
//! number of connections it holds: `cargo bench --bench stack`.
//!
//! Prints nanoseconds per call (median and fastest of several runs); asserts
//! nothing about time. Without `--bench` on the command line (as when
//! `cargo test --benches` runs it) every case runs once with 1,000
//! connections, as a smoke test. `UTCP_BENCH_N=1000,10000` picks the sizes.
//!
//! Cases, each with N connections in a fresh [`Stack`]:
//! - a driver wake-up with nothing to do (`poll_timeout`, `handle_timeout`,
//!   `poll_transmit`), N established idle connections (no timer armed);
//! - the same wake-up with N half-open connections on a listener (each with
//!   its SYN-ACK retransmission timer armed, none due);
//! - one SYN to that listener, whose backlog (N) is full: the half-open
//!   accounting the stack does before it drops the SYN.
//!
//! The connections are made through the public sans-IO API only: active
//! opens answered by crafted SYN-ACKs (`connect`, `poll_transmit_conn`,
//! `handle_packet`), and SYNs from distinct peers for the half-open ones.

mod common;

use common::{bench, full_run};

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddrV4};

use utcp::stack::{Stack, StackConfig};
use utcp::testing::{encode, segment, Seg};
use utcp::time::Instant;
use utcp::wire::TcpFlags;

const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const NOW: Instant = Instant::ZERO;

/// The `i`-th distinct peer address (11.0.0.0/8: never ours, never special).
fn peer(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x0b00_0001 + i as u32)
}

fn new_stack() -> Stack {
    let mut cfg = StackConfig::new(US);
    cfg.seed = Some(1);
    Stack::new(cfg)
}

/// A stack with `n` established, idle connections (active opens).
fn established(n: usize) -> Stack {
    let mut s = new_stack();
    let mut buf = vec![0u8; 65_535];
    for i in 0..n {
        let remote = SocketAddrV4::new(peer(i), 80);
        let id = s.connect(NOW, remote).expect("connect");
        let mut syn = None;
        s.poll_transmit_conn(NOW, id, &mut buf, |p| syn = Some(Seg::parse(p)));
        let syn = syn.expect("a SYN");
        let synack = segment(
            remote,
            syn.src,
            TcpFlags::SYN | TcpFlags::ACK,
            5000,
            syn.seq.wrapping_add(1),
            &[],
        );
        s.handle_packet(NOW, &encode(&synack));
        s.poll_transmit_conn(NOW, id, &mut buf, |_| {});
    }
    s
}

/// A stack listening on port 80 with backlog `n`, holding `n` half-open
/// connections (SYN received, SYN-ACK sent).
fn half_open(n: usize) -> Stack {
    let mut s = new_stack();
    s.listen(80, n).expect("listen");
    let mut buf = vec![0u8; 65_535];
    for i in 0..n {
        let syn = segment(
            SocketAddrV4::new(peer(i), 40_000),
            SocketAddrV4::new(US, 80),
            TcpFlags::SYN,
            1000,
            0,
            &[],
        );
        s.handle_packet(NOW, &encode(&syn));
        if i % 64 == 63 {
            s.poll_transmit(NOW, &mut buf, |_| {});
        }
    }
    s.poll_transmit(NOW, &mut buf, |_| {});
    assert_eq!(s.connection_count(), n);
    s
}

/// One driver wake-up: the deadline, the timers due, the output.
fn wake_up(s: &mut Stack, now: Instant, buf: &mut [u8]) {
    black_box(s.poll_timeout());
    s.handle_timeout(now);
    let mut sent = 0usize;
    s.poll_transmit(now, buf, |_| sent += 1);
    black_box(sent);
}

fn main() {
    let full = full_run();
    let sizes: Vec<usize> = match std::env::var("UTCP_BENCH_N") {
        Ok(v) => v.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) if full => vec![1_000, 10_000, 100_000],
        Err(_) => vec![1_000],
    };
    let mut buf = vec![0u8; 65_535];
    for &n in &sizes {
        let mut s = established(n);
        assert_eq!(s.connection_count(), n);
        assert_eq!(s.poll_timeout(), None, "idle connections arm no timer");
        bench(
            &format!("wake-up, nothing due, {n} established idle"),
            full,
            || wake_up(&mut s, NOW, &mut buf),
        );
        drop(s);

        let mut s = half_open(n);
        let first = s.poll_timeout().expect("SYN-ACK timers armed");
        assert!(first > NOW);
        bench(
            &format!("wake-up, nothing due, {n} half-open"),
            full,
            || wake_up(&mut s, NOW, &mut buf),
        );
        let cookies_before = s.stats().syn_cookies_sent;
        // Answered with a cookie SYN-ACK (the SYN queue is full) and
        // forgotten, so one packet serves every call.
        let syn = encode(&segment(
            SocketAddrV4::new(Ipv4Addr::new(12, 0, 0, 1), 1024),
            SocketAddrV4::new(US, 80),
            TcpFlags::SYN,
            1000,
            0,
            &[],
        ));
        bench(
            &format!("SYN to a full listener (cookie SYN-ACK out), {n} half-open"),
            full,
            || {
                s.handle_packet(NOW, black_box(&syn));
                s.poll_transmit(NOW, &mut buf, |p| {
                    black_box(p);
                });
            },
        );
        assert!(s.stats().syn_cookies_sent > cookies_before);
        assert_eq!(s.connection_count(), n, "no state for the cookies");
    }
}
