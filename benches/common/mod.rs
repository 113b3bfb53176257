//! The timing loop the micro-benchmarks share. Prints only; asserts nothing
//! about time.

use std::time::Instant;

/// Runs per case; the median is reported.
const RUNS: usize = 11;
/// Wall time each run aims at, so that the clock's resolution does not matter.
const RUN_NANOS: u128 = 20_000_000;

/// True when `--bench` is on the command line (`cargo bench`); otherwise
/// (`cargo test --benches`) every case runs once, as a smoke test.
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Times `op` and prints `name`, the median and the fastest ns per call.
pub fn bench(name: &str, full: bool, mut op: impl FnMut()) {
    if !full {
        op();
        println!("{name:<52} ran once (pass --bench to time)");
        return;
    }
    // Calibrate: double the batch until one batch takes about RUN_NANOS.
    let mut batch: u64 = 1;
    loop {
        let start = Instant::now();
        for _ in 0..batch {
            op();
        }
        if start.elapsed().as_nanos() >= RUN_NANOS / 4 || batch >= 1 << 30 {
            break;
        }
        batch *= 2;
    }
    batch *= 4;
    let mut per_op: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                op();
            }
            start.elapsed().as_nanos() as f64 / batch as f64
        })
        .collect();
    per_op.sort_by(f64::total_cmp);
    let median = per_op[RUNS / 2];
    let fastest = per_op[0];
    println!("{name:<52} {median:>12.1} ns/call (median of {RUNS}; fastest {fastest:.1})");
}
