//! Micro-benchmark of the connection core: `cargo bench --bench tcb`.
//!
//! Two [`Tcb`]s wired back to back through the wire codec (every segment
//! is emitted, parsed and handed over, as over a device, with no loss and a
//! fake clock), moving a bulk transfer one way. It prints the cost of the
//! whole core per data segment -- both ends' `send`, `poll_transmit`,
//! `wire::parse`, `handle_segment` and `recv`, ACKs included -- and the
//! throughput that makes, so a change to the core can be judged apart from
//! the runtime and the device. Prints only; asserts nothing about time.
//! Without `--bench` (as under `cargo test --benches`) it moves 1 MiB once
//! as a smoke test.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant as Wall};

use utcp::seq::SeqNum;
use utcp::tcb::{Tcb, TcpConfig};
use utcp::time::Instant;
use utcp::wire::{self, Packet};

const A: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40_000);
const B: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80);

/// Hands every segment `from` has ready to `to`; returns how many.
fn deliver(from: &mut Tcb, to: &mut Tcb, now: Instant, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while let Some(len) = from.poll_transmit(now, buf) {
        if let Ok(Packet::Tcp(seg)) = wire::parse(&buf[..len]) {
            to.handle_segment(now, &seg);
            n += 1;
        }
    }
    n
}

/// The two ends after the handshake.
fn connected(cfg: &TcpConfig, buf: &mut [u8]) -> (Tcb, Tcb) {
    let now = Instant::ZERO;
    let mut a = Tcb::connect(A, B, SeqNum(1_000), cfg.clone());
    let len = a.poll_transmit(now, buf).expect("a SYN");
    let Ok(Packet::Tcp(syn)) = wire::parse(&buf[..len]) else {
        panic!("the SYN does not parse");
    };
    let mut b = Tcb::accept(&syn, SeqNum(9_000), cfg.clone());
    deliver(&mut b, &mut a, now, buf);
    deliver(&mut a, &mut b, now, buf);
    assert!(a.state().is_synchronized() && b.state().is_synchronized());
    (a, b)
}

/// Moves `total` bytes from A to B; returns (data segments, wall time).
fn transfer(cfg: &TcpConfig, total: usize) -> (usize, Duration) {
    let mut buf = vec![0u8; 65_536];
    let (mut a, mut b) = connected(cfg, &mut buf);
    let chunk = vec![0x5au8; 64 * 1024];
    let mut sink = vec![0u8; 256 * 1024];
    let (mut sent, mut got, mut segments) = (0, 0, 0);
    let mut now = Instant::ZERO;
    let start = Wall::now();
    // Bounded: each round moves at least one window's worth or ends.
    for _ in 0..total {
        if got >= total {
            break;
        }
        while sent < total {
            match a.send(&chunk[..chunk.len().min(total - sent)]) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        segments += deliver(&mut a, &mut b, now, &mut buf);
        while let Ok(n) = b.recv(&mut sink) {
            if n == 0 {
                break;
            }
            got += n;
        }
        deliver(&mut b, &mut a, now, &mut buf);
        now += Duration::from_micros(50);
        if b.poll_timeout().is_some_and(|t| t <= now) {
            b.handle_timeout(now);
        }
        if a.poll_timeout().is_some_and(|t| t <= now) {
            a.handle_timeout(now);
        }
    }
    assert_eq!(got, total, "the transfer did not complete");
    (segments, start.elapsed())
}

fn report(name: &str, cfg: &TcpConfig, total: usize, runs: usize) {
    let mut per_seg: Vec<(f64, f64)> = (0..runs)
        .map(|_| {
            let (segs, t) = transfer(cfg, total);
            let ns = t.as_nanos() as f64 / segs as f64;
            (ns, total as f64 / t.as_secs_f64() / 1e6)
        })
        .collect();
    per_seg.sort_by(|x, y| x.0.total_cmp(&y.0));
    let (ns, mbps) = per_seg[runs / 2];
    println!("{name:<44} {ns:>8.1} ns/segment  {mbps:>7.0} MB/s  (median of {runs})");
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (total, runs) = if full { (256 << 20, 7) } else { (1 << 20, 1) };
    let cfg = TcpConfig::default();
    report("bulk, defaults (ts, SACK, CUBIC)", &cfg, total, runs);
    let bare = TcpConfig {
        timestamps: false,
        sack: false,
        ..TcpConfig::default()
    };
    report("bulk, no timestamps, no SACK", &bare, total, runs);
}
