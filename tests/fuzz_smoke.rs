//! CI smoke of the fuzz harnesses (`utcp::fuzzing`, docs/fuzzing.md): a
//! fixed number of deterministic pseudo-random inputs through each entry
//! point, and a replay of the saved inputs in `fuzz/regressions/`.
//!
//! Each smoke asserts, from the harness's per-thread coverage counters,
//! that its inputs got past the parser into the TCBs, so that it cannot
//! pass by doing nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use utcp::fuzzing::{
    coverage, describe, reset_coverage, smoke, stack_packet, stack_packet_base_states,
    structured_input, two_stacks,
};
use utcp::state::State;

/// `n` runs in release, `n / debug_share` in a debug build (a plain `cargo
/// test`; measured 36 times slower for `stack_packet`, 15 s for 3,000
/// inputs, and about 20 times for `two_stacks`: 3 s for 1,200 programs).
fn runs(n: usize, debug_share: usize) -> usize {
    if cfg!(debug_assertions) {
        n / debug_share
    } else {
        n
    }
}

/// `stack_packet`: 60,000 inputs in release: 8.5 s on the 2-core
/// development machine when idle (0.14 ms per input: the base of 12
/// connections is built anew for each), 16 s beside `smoke_two_stacks`
/// with other work running (load average 3.5).
#[test]
fn smoke_stack_packet() {
    let n = runs(60_000, 60);
    reset_coverage();
    let start = Instant::now();
    smoke(0x5eed_0001, n, stack_packet);
    let c = coverage();
    eprintln!("stack_packet: {:?} in {:?}", c, start.elapsed());
    let n = n as u64;
    assert_eq!(c.inputs, n);
    assert!(c.packets > 4 * n, "{c:?}");
    assert!(
        c.tcb_segments > 2 * n,
        "mutated segments reached no TCB: {c:?}"
    );
    assert!(
        c.accepted_segments > n,
        "none got past the acceptability test: {c:?}"
    );
}

/// `two_stacks`: 48,000 programs in release: 6.7 s on the 2-core
/// development machine (0.14 ms per program on average; 1.4 ms before the
/// ACK rate limit, when about 1% of them flooded the link up to the
/// 200,000-packet limit; none does now). 64,000 took 15 s beside
/// `smoke_stack_packet` with other work running.
#[test]
fn smoke_two_stacks() {
    let n = runs(48_000, 40);
    reset_coverage();
    let start = Instant::now();
    smoke(0x5eed_0002, n, two_stacks);
    let c = coverage();
    eprintln!("two_stacks: {:?} in {:?}", c, start.elapsed());
    let n = n as u64;
    assert_eq!(c.inputs, n);
    assert!(c.tcb_segments > 50 * n, "{c:?}");
    // Before out-of-window ACKs were rate-limited (OOW_ACK_INTERVAL), about
    // 1% of these programs ended in an ACK storm at the packet limit.
    assert_eq!(c.floods, 0, "ACK storms: {c:?}");
    assert!(
        c.bytes_checked > 1000 * n,
        "no delivered byte was checked: {c:?}"
    );
    assert!(
        c.streams_checked > n / 10,
        "no stream was seen whole: {c:?}"
    );
}

/// The states `stack_packet` starts from: every one a live connection can
/// be in but CLOSING (which only a segment reaches).
#[test]
fn stack_packet_starts_from_many_states() {
    let states = stack_packet_base_states();
    for s in [
        State::Established,
        State::FinWait1,
        State::FinWait2,
        State::CloseWait,
        State::LastAck,
        State::TimeWait,
        State::SynSent,
        State::SynReceived,
    ] {
        assert!(states.contains(&s), "{s:?} missing from {states:?}");
    }
}

/// The saved inputs of `fuzz/regressions/<target>/`: each must run without
/// a panic; those under `<target>/open/` are bugs found and not fixed yet,
/// and must still panic (once one is fixed, this test says so: move the
/// file up out of `open/` and update `fuzz/regressions/README.md`).
#[test]
fn replay_regressions() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    if !root.is_dir() {
        return;
    }
    let mut replayed = 0;
    for (name, f) in [
        ("stack_packet", stack_packet as fn(&[u8])),
        ("two_stacks", two_stacks),
    ] {
        for path in inputs(&root.join(name)) {
            let data = fs::read(&path).expect("readable regression input");
            f(&data);
            replayed += 1;
        }
        for path in inputs(&root.join(name).join("open")) {
            let data = fs::read(&path).expect("readable regression input");
            let outcome = std::panic::catch_unwind(|| f(&data));
            assert!(
                outcome.is_err(),
                "{} no longer fails: the bug is fixed; move it out of open/ \
                 (and update fuzz/regressions/README.md)",
                path.display()
            );
            replayed += 1;
        }
    }
    assert!(replayed > 0, "fuzz/regressions/ exists but holds no input");
}

/// The regular files of `dir` (none if it does not exist), sorted.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Not run by default: writes 200 structured programs into each target's
/// corpus, `fuzz/corpus/<target>/seed-<n>`, to start a fuzzer from
/// meaningful inputs (`cargo test --release --test fuzz_smoke --
/// --ignored write_seed_corpus`).
#[test]
#[ignore]
fn write_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for target in ["stack_packet", "two_stacks"] {
        let dir = root.join(target);
        fs::create_dir_all(&dir).expect("corpus folder");
        for n in 0..200 {
            fs::write(dir.join(format!("seed-{n}")), structured_input(n)).expect("seed written");
        }
    }
}

/// Not run by default: prints the records of the input in the file named
/// by `UTCP_FUZZ_INPUT` (`UTCP_FUZZ_INPUT=fuzz/artifacts/... cargo test
/// --release --test fuzz_smoke -- --ignored --nocapture describe_input`).
#[test]
#[ignore]
fn describe_input() {
    let path = std::env::var("UTCP_FUZZ_INPUT").expect("UTCP_FUZZ_INPUT names an input file");
    let data = fs::read(&path).expect("readable input");
    println!("{}", describe(&data));
}
