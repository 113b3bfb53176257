//! Fuzz harnesses: the entry points of the cargo-fuzz targets in `fuzz/`
//! and of the CI smoke test `tests/fuzz_smoke.rs` (see `docs/fuzzing.md`).
//!
//! Compiled only with the `testing` cargo feature. Each entry point takes
//! arbitrary bytes and must never panic *because of them*: the harness
//! never unwraps fuzz data, and every API error is ignored. A panic is
//! therefore a bug of the stack, or one of the invariants checked here
//! failing:
//!
//! - [`stack_packet`]: one [`Stack`](crate::stack::Stack) holding
//!   listeners and connections in most states of RFC 9293 section 3.3.2,
//!   fed raw packets, packets *mutated* from segments aimed at its live
//!   connections (so that the input reaches the TCB, not only the parser),
//!   clock jumps, transmit drains and application calls;
//! - [`two_stacks`]: two stacks over a [`SimNet`](crate::sim::SimNet),
//!   driven by a program of application calls, clock advances, link
//!   impairments and injected packets, with the delivered bytes checked
//!   against those sent;
//! - [`smoke`]: deterministic pseudo-random inputs, raw and structured,
//!   for either entry point (what CI runs).
//!
//! # The input format
//!
//! Both entry points read the input as the same sequence of records (at
//! most 256 are used): a tag byte whose low seven bits, modulo the number
//! of kinds, choose the kind of record and whose top bit chooses a side
//! (stack `a` or `b` of the pair; [`stack_packet`] has one stack and ignores
//! it), then the record's fields, read as zeros past the end of the input.
//! The kinds: a raw packet (a 16-bit length, then the bytes), a mutated
//! segment (32 bytes of choices: which connection, flags, sequence and
//! acknowledgment numbers relative to the plausible ones, window, options,
//! payload length, an optional byte flip), a clock advance, a jump to the
//! next deadline, a drain of the output and events, listen, unlisten,
//! connect, accept, send, receive, another application call (close, read
//! shutdown, abort, release, Nagle, keepalive, user timeout, peek), and a
//! link configuration ([`two_stacks`] only). One format for both means that
//! the structured inputs of [`smoke`] are meaningful to either.
//!
//! # Invariants checked
//!
//! Besides "no panic": every packet handed to a stack is counted exactly
//! once (`StackStats::packets_in`); the stack holds no more connections
//! than the input could have created, and its tuple map agrees with its
//! slab; no connection has SND.UNA beyond SND.NXT or buffers beyond their
//! configured size; every packet a stack emits passes its own parser; a
//! driver loop over [`Stack::handle_timeout`](crate::stack::Stack::handle_timeout)
//! ends (no deadline stays due); and in [`two_stacks`], unless the input
//! injected packets, every byte received is the byte sent at that offset,
//! and once the link is repaired every byte sent on a connection still
//! established at both ends arrives.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::state::State;

mod input;
mod packet;
mod pair;
mod single;

/// What the harnesses reached on this thread since it started (or since
/// [`reset_coverage`]): the smoke test asserts on it so that it cannot pass
/// without the inputs getting past the parser.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Inputs run (calls of [`stack_packet`] or [`two_stacks`]).
    pub inputs: u64,
    /// Records decoded and carried out.
    pub ops: u64,
    /// Packets the harness itself handed to a stack (raw or mutated).
    pub packets: u64,
    /// Mutated segments aimed at a live connection that reached its TCB
    /// (its `ConnStats::segs_in` grew); in [`two_stacks`] also the segments
    /// the application's connections received over the link.
    pub tcb_segments: u64,
    /// Of the mutated segments in `tcb_segments`, those the TCB did not
    /// count as unacceptable (they got past RFC 9293's acceptability test).
    pub accepted_segments: u64,
    /// [`two_stacks`]: received bytes compared with the bytes sent.
    pub bytes_checked: u64,
    /// [`two_stacks`]: connections whose whole stream was seen delivered
    /// at the end of a run.
    pub streams_checked: u64,
    /// [`two_stacks`]: runs whose link delivered so many packets (200,000)
    /// that the simulation was stopped: an ACK storm between two ends that
    /// disagree on the sequence numbers, after injected packets.
    pub floods: u64,
}

thread_local! {
    static COVERAGE: Cell<Coverage> = Cell::new(Coverage::default());
}

/// This thread's [`Coverage`].
pub fn coverage() -> Coverage {
    COVERAGE.with(Cell::get)
}

/// Sets this thread's [`Coverage`] back to zero.
pub fn reset_coverage() {
    COVERAGE.with(|c| c.set(Coverage::default()));
}

/// Adds to this thread's coverage.
fn bump(f: impl FnOnce(&mut Coverage)) {
    COVERAGE.with(|c| {
        let mut v = c.get();
        f(&mut v);
        c.set(v);
    });
}

/// Fuzz entry point: one stack with listeners and live connections in many
/// states, fed the records of `data` (see the module documentation).
///
/// The stack is `10.0.0.2`; its connections are built deterministically
/// by driving a peer stack (`10.0.0.1`) over a `SimNet`, then by feeding
/// it SYNs by hand (one SYN-RECEIVED on a listener, and a listener with
/// backlog 1 whose full SYN queue answers a second SYN with a cookie).
/// Panics only if the stack panics or an invariant fails.
pub fn stack_packet(data: &[u8]) {
    single::run(data);
}

/// The states of the connections [`stack_packet`] starts from, in slot
/// order (for tests: they show which states the fuzzer starts in).
pub fn stack_packet_base_states() -> Vec<State> {
    single::base_states()
}

/// Fuzz entry point: two stacks over a simulated link, driven by the
/// program in `data` (see the module documentation). At most 256 records
/// and 20 minutes of simulated time, plus a final settling phase on a
/// repaired link. Panics only if a stack panics or an invariant fails.
pub fn two_stacks(data: &[u8]) {
    pair::run(data);
}

/// The records of `data` as the entry points read them, one per line
/// (`Debug` form, at most 256 records): for triaging a crash.
pub fn describe(data: &[u8]) -> String {
    let mut r = input::Reader::new(data);
    let mut out = String::new();
    for _ in 0..input::MAX_OPS {
        let Some(op) = input::decode(&mut r) else {
            break;
        };
        out.push_str(&format!("{op:?}\n"));
    }
    out
}

/// One structured program as [`smoke`] makes them, from `seed`: for
/// seeding a fuzzer's corpus.
pub fn structured_input(seed: u64) -> Vec<u8> {
    input::random_program(&mut StdRng::seed_from_u64(seed))
}

/// Feeds `runs` deterministic pseudo-random inputs, drawn from a
/// `StdRng` seeded with `seed`, to `f` (one of the entry points above):
/// every even-numbered one is random bytes of length 0 to 2047, every odd
/// one a random structured program (valid records with plausible fields,
/// after a prologue that opens connections).
///
/// If `f` panics, the input is first written to
/// `<temp dir>/utcp-fuzz-<seed>-<run>` (its path printed on stderr) so
/// that it can be replayed or added to `fuzz/regressions/`, then the panic
/// goes on.
pub fn smoke(seed: u64, runs: usize, f: fn(&[u8])) {
    let mut rng = StdRng::seed_from_u64(seed);
    for run in 0..runs {
        let data = if run % 2 == 0 {
            let len = rng.random_range(0..2048);
            let mut v = vec![0u8; len];
            rng.fill(&mut v[..]);
            v
        } else {
            input::random_program(&mut rng)
        };
        if let Err(e) = panic::catch_unwind(AssertUnwindSafe(|| f(&data))) {
            let path = std::env::temp_dir().join(format!("utcp-fuzz-{seed}-{run}"));
            match std::fs::write(&path, &data) {
                Ok(()) => eprintln!("smoke: run {run} panicked; input in {}", path.display()),
                Err(err) => eprintln!("smoke: run {run} panicked; could not save it: {err}"),
            }
            panic::resume_unwind(e);
        }
    }
}
