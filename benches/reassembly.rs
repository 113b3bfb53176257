//! Micro-benchmark of out-of-order reassembly: `cargo bench --bench reassembly`.
//!
//! The crumb attack of issue 10: 1-byte segments at every other offset of a
//! 512 KiB receive window, then the same window in 1448-byte segments in
//! reverse order (the worst order for an ordinary loss burst: each one is
//! prepended to the block that follows it). Prints the
//! cost per segment and how much the queue holds; asserts nothing about
//! time. Without `--bench` it runs one small round as a smoke test.

use std::time::Instant as Wall;

use utcp::reassembly::ReassemblyQueue;
use utcp::seq::SeqNum;

const WINDOW: usize = 512 * 1024;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let crumbs = if bench { WINDOW / 2 } else { 1000 };
    let rcv_nxt = SeqNum(1_000);
    let mut q = ReassemblyQueue::new(WINDOW);
    let t = Wall::now();
    let mut stored = 0;
    for i in 0..crumbs {
        stored += q.insert(rcv_nxt, rcv_nxt + (1 + 2 * i), b"x");
    }
    let per = t.elapsed().as_secs_f64() * 1e6 / crumbs as f64;
    let blocks = q.blocks().count();
    println!(
        "crumbs: {crumbs} one-byte segments at every other offset: {per:.3} µs each; \
         {stored} bytes held in {blocks} blocks (at most {})",
        q.max_blocks()
    );
    let segs = if bench { WINDOW / 1448 } else { 50 };
    let mut q = ReassemblyQueue::new(WINDOW);
    let data = vec![7u8; 1448];
    let t = Wall::now();
    for i in (1..segs).rev() {
        q.insert(rcv_nxt, rcv_nxt + i * 1448, &data);
    }
    let per = t.elapsed().as_secs_f64() * 1e6 / segs as f64;
    println!(
        "reverse: {segs} 1448-byte segments in reverse order: {per:.3} µs each; {} bytes held",
        q.held_bytes()
    );
}
