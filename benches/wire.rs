//! Micro-benchmarks of the wire codec: `cargo bench --bench wire`.
//!
//! Prints nanoseconds per operation (median and fastest of several runs);
//! asserts nothing about time. Without `--bench` on the command line (as
//! when `cargo test --benches` runs it) every case runs once, as a smoke test.

mod common;

use common::{bench, full_run};

use std::hint::black_box;
use std::net::SocketAddrV4;

use utcp::seq::SeqNum;
use utcp::wire::{self, TcpFlags, TcpOptions, TcpSegment};

/// The Internet checksum as `wire` computed it before it summed wider words:
/// big-endian 16-bit words into a `u64`, folded at the end (RFC 1071). Kept
/// here as the baseline.
fn checksum_16bit(data: &[u8]) -> u16 {
    let mut acc = 0u64;
    let mut words = data.chunks_exact(2);
    for word in &mut words {
        if let [hi, lo] = word {
            acc += u64::from(u16::from_be_bytes([*hi, *lo]));
        }
    }
    if let [last] = words.remainder() {
        acc += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

fn main() {
    let full = full_run();

    // Payload bytes that are not all alike, so no sum is trivially zero.
    let payload: Vec<u8> = (0..1460u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let data = &payload[..];
    let seg = TcpSegment {
        src: SocketAddrV4::new([10, 0, 0, 1].into(), 40_000),
        dst: SocketAddrV4::new([10, 0, 0, 2].into(), 80),
        seq: SeqNum(0x0102_0304),
        ack: SeqNum(0xa0b0_c0d0),
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 0xfaf0,
        options: TcpOptions::default(),
        payload: data,
    };
    let mut packet = vec![0u8; 1500];
    let n = wire::emit_tcp(&mut packet, &seg, &[]);
    assert_eq!(
        n,
        Some(1500),
        "a 1460-byte segment makes a 1500-byte packet"
    );
    assert!(wire::parse(&packet).is_ok());
    // 1480 bytes: the TCP segment of that packet (header and payload).
    let segment = &packet[20..];
    assert_eq!(
        checksum_16bit(segment),
        wire::internet_checksum(segment),
        "baseline and wire agree"
    );

    bench("checksum 1480 B, 16-bit words (old)", full, || {
        black_box(checksum_16bit(black_box(segment)));
    });
    bench("checksum 1480 B, wire::internet_checksum", full, || {
        black_box(wire::internet_checksum(black_box(segment)));
    });
    bench("checksum 1480 B at odd address, new", full, || {
        black_box(wire::internet_checksum(black_box(&packet[19..1499])));
    });
    bench("wire::parse, 1500-byte TCP packet", full, || {
        let _ = black_box(wire::parse(black_box(&packet)));
    });
    let mut out = vec![0u8; 1500];
    bench("wire::emit_tcp, 1460-byte segment", full, || {
        let n = wire::emit_tcp(black_box(&mut out), black_box(&seg), &[]);
        black_box(n);
    });
}
