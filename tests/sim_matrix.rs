//! The impairment matrix: 1 MiB of random bytes over every kind of bad
//! link the simulator offers, in each direction, with three seeds.
//!
//! Every run must deliver the stream byte-exact (64-bit FNV-1a hash and
//! length compared, then the bytes), both sides must close and reach CLOSED
//! (the passive side after LAST-ACK, the active one after TIME-WAIT), the
//! stacks must be able to forget both connections, and all of it within the
//! simulated-time bound of its row. Corrupted packets must all have been
//! rejected by the receiving stack's checksum checks (its `dropped`
//! counters equal the link's `corrupted` counter).
//!
//! Run with `cargo test --release --test sim_matrix -- --nocapture` to see
//! the table: one line per run with the simulated time and the sender's
//! recovery counters.

mod sim_util;

use std::time::Duration;

use utcp::cc::Algorithm;
use utcp::sim::{Dir, GilbertElliott, LinkConfig, LinkStats, QueueLimit, SimNet};
use utcp::state::State;
use utcp::testing::{init_logger, random_bytes};

use sim_util::{establish, Side, Stream, LATENCY};

/// Bytes per transfer.
const SIZE: usize = 1 << 20;
/// Seeds of a row. The link RNG gets `seed` for transfers from A to B and
/// `seed + 1000` from B to A (with one seed for both, the two directions
/// replay the same loss pattern on the mirrored traffic, and do come out
/// identical); the stacks and the data get seeds derived from it.
const SEEDS: [u64; 3] = [1, 2, 3];
/// 100 Mbit/s.
const MBIT_100: u64 = 12_500_000;

/// One row of the matrix.
struct Row {
    name: &'static str,
    link: LinkConfig,
    /// Timestamps and SACK on (the `TcpConfig` default) or both off.
    ts_sack: bool,
    /// Bound on the simulated time from `connect` to both sides CLOSED:
    /// about three times the slowest of the six runs measured when the
    /// matrix was written (TIME-WAIT's 2 s included).
    bound: Duration,
}

fn base() -> LinkConfig {
    LinkConfig::new(LATENCY)
}

fn loss(p: f64) -> LinkConfig {
    LinkConfig { loss: p, ..base() }
}

/// 64-bit FNV-1a.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What one run measured.
struct Outcome {
    /// Simulated time from `connect` to the last byte (and EOF) read.
    data_done: Duration,
    /// Simulated time from `connect` to both connections CLOSED.
    closed: Duration,
    sender: utcp::tcb::ConnStats,
    link: [LinkStats; 2],
    /// Index into `link` of the direction the data went.
    data: usize,
}

impl Outcome {
    /// The link counters of the direction the data went.
    fn data_link(&self) -> &LinkStats {
        &self.link[self.data]
    }
}

fn link_seed(seed: u64, from: Side) -> u64 {
    match from {
        Side::A => seed,
        Side::B => seed + 1000,
    }
}

fn run(row: &Row, seed: u64, from: Side, cc: Algorithm) -> Outcome {
    init_logger();
    let (mut ca, mut cb) = sim_util::configs();
    ca.seed = Some(seed * 2 + 1);
    cb.seed = Some(seed * 2 + 2);
    for c in [&mut ca, &mut cb] {
        c.tcp.timestamps = row.ts_sack;
        c.tcp.sack = row.ts_sack;
        c.tcp.congestion = cc;
    }
    let mut n = SimNet::new(ca, cb, LATENCY);
    n.set_seed(link_seed(seed, from));
    n.set_link(row.link.clone());
    let data = random_bytes(SIZE, seed ^ 0x5eed);
    let start = n.now();
    let (c, s) = establish(&mut n);
    let (tx, rx) = match from {
        Side::A => (c, s),
        Side::B => (s, c),
    };
    let to = match from {
        Side::A => Side::B,
        Side::B => Side::A,
    };
    let mut st = Stream::new(from, tx, rx, data).closing();
    let mut rx_closed = false;
    let mut data_done = None;
    let what = format!("{} seed {seed} from {from:?}", row.name);
    let ok = n.run_until(row.bound, |n| {
        st.pump(n);
        if st.done() {
            data_done.get_or_insert(n.now() - start);
            if !rx_closed {
                sim_util::stack(n, to).tcb_mut(rx).unwrap().close();
                rx_closed = true;
            }
        }
        rx_closed
            && sim_util::state(n, Side::A, c) == State::Closed
            && sim_util::state(n, Side::B, s) == State::Closed
    });
    assert!(
        ok,
        "{what}: not done after {:?}: got {} of {} bytes (eof {}), a {}, b {}",
        n.now() - start,
        st.got.len(),
        SIZE,
        st.eof,
        sim_util::state(&n, Side::A, c),
        sim_util::state(&n, Side::B, s),
    );
    let closed = n.now() - start;
    assert!(closed <= row.bound, "{what}: took {closed:?}");
    assert_eq!(st.got.len(), st.data.len(), "{what}: length");
    assert_eq!(fnv1a(&st.got), fnv1a(&st.data), "{what}: hash");
    st.check();
    for side in [Side::A, Side::B] {
        let id = if side == Side::A { c } else { s };
        let t = sim_util::stack(&mut n, side).tcb(id).unwrap();
        assert_eq!(t.error(), None, "{what}: {side:?} ended with an error");
    }
    // Corruption: every corrupted packet delivered was rejected by the
    // receiver's codec, and nothing else was.
    for dir in Dir::BOTH {
        let receiver = match dir {
            Dir::AtoB => &n.b,
            Dir::BtoA => &n.a,
        };
        let rejected: u64 = receiver.stats().dropped.values().sum();
        let ls = n.link_stats(dir);
        assert_eq!(
            rejected,
            ls.corrupted,
            "{what} {dir:?}: stack dropped {:?}, link {ls:?}",
            receiver.stats().dropped
        );
    }
    let (a, b) = (n.link_stats(Dir::AtoB), n.link_stats(Dir::BtoA));
    assert_eq!(
        a.sent + a.duplicated + b.sent + b.duplicated,
        a.delivered + a.dropped() + b.delivered + b.dropped() + n.in_flight() as u64,
        "{what}: packets unaccounted for: {a:?} {b:?}"
    );
    let sender = sim_util::stack(&mut n, from)
        .tcb(tx)
        .unwrap()
        .stats()
        .clone();
    let link = [
        n.link_stats(Dir::AtoB).clone(),
        n.link_stats(Dir::BtoA).clone(),
    ];
    // Nothing stuck: once the application lets go, both stacks are empty.
    n.a.release(c);
    n.b.release(s);
    assert_eq!(n.a.connection_count(), 0, "{what}");
    assert_eq!(n.b.connection_count(), 0, "{what}");
    assert_eq!(n.a.poll_timeout(), None, "{what}");
    assert_eq!(n.b.poll_timeout(), None, "{what}");
    Outcome {
        data_done: data_done.unwrap(),
        closed,
        sender,
        link,
        data: sim_util::dir_from(from) as usize,
    }
}

fn print_header() {
    eprintln!(
        "| impairment | cc | ts+sack | seed | dir | data s | closed s | rto | fast | partial | dup acks | lost | q drop | dup | reord | corrupt | redrawn |"
    );
}

/// Runs `row` with every congestion controller, for every seed and both
/// directions, and prints the table.
fn run_row(row: Row) -> Vec<Outcome> {
    let mut all = Vec::new();
    for (cc, seed, from) in Algorithm::ALL
        .into_iter()
        .flat_map(|cc| SEEDS.map(|seed| (cc, seed)))
        .flat_map(|(cc, seed)| [Side::A, Side::B].map(|from| (cc, seed, from)))
    {
        {
            let o = run(&row, seed, from, cc);
            let l = |f: fn(&LinkStats) -> u64| f(&o.link[0]) + f(&o.link[1]);
            eprintln!(
                "| {} | {} | {} | {} | {} | {:.3} | {:.3} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                row.name,
                cc,
                if row.ts_sack { "on" } else { "off" },
                link_seed(seed, from),
                if from == Side::A { "A->B" } else { "B->A" },
                o.data_done.as_secs_f64(),
                o.closed.as_secs_f64(),
                o.sender.retransmits_timeout,
                o.sender.fast_retransmits,
                o.sender.partial_ack_retransmits,
                o.sender.dup_acks,
                l(|s| s.dropped_loss),
                l(|s| s.dropped_queue),
                l(|s| s.duplicated),
                l(|s| s.reordered),
                l(|s| s.corrupted),
                l(|s| s.corrupt_redraws),
            );
            all.push(o);
        }
    }
    all
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn loss_0_percent() {
    print_header();
    let all = run_row(Row {
        name: "loss 0%",
        link: base(),
        ts_sack: true,
        bound: secs(8),
    });
    for o in &all {
        assert_eq!(o.sender.retransmits_timeout, 0);
        assert_eq!(o.sender.fast_retransmits, 0);
        assert_eq!(o.link[0].dropped() + o.link[1].dropped(), 0);
    }
}

#[test]
fn loss_1_percent() {
    let all = run_row(Row {
        name: "loss 1%",
        link: loss(0.01),
        ts_sack: true,
        bound: secs(13),
    });
    assert!(all.iter().all(|o| o.data_link().dropped_loss > 0));
}

#[test]
fn loss_5_percent() {
    let all = run_row(Row {
        name: "loss 5%",
        link: loss(0.05),
        ts_sack: true,
        bound: secs(31),
    });
    assert!(all.iter().all(|o| o.data_link().dropped_loss > 0));
}

#[test]
fn loss_5_percent_without_timestamps_and_sack() {
    let all = run_row(Row {
        name: "loss 5%",
        link: loss(0.05),
        ts_sack: false,
        bound: secs(31),
    });
    assert!(all.iter().all(|o| o.data_link().dropped_loss > 0));
}

#[test]
fn loss_10_percent() {
    run_row(Row {
        name: "loss 10%",
        link: loss(0.10),
        ts_sack: true,
        bound: secs(105),
    });
}

#[test]
fn loss_20_percent() {
    run_row(Row {
        name: "loss 20%",
        link: loss(0.20),
        ts_sack: true,
        bound: secs(450),
    });
}

#[test]
fn reorder_5_percent() {
    let all = run_row(Row {
        name: "reorder 5%",
        link: LinkConfig {
            reorder: 0.05,
            reorder_delay: Duration::from_millis(5),
            ..base()
        },
        ts_sack: true,
        bound: secs(12),
    });
    for o in &all {
        assert!(o.data_link().reordered > 0);
        assert_eq!(o.link[0].dropped() + o.link[1].dropped(), 0);
    }
}

#[test]
fn duplication_5_percent() {
    let all = run_row(Row {
        name: "dup 5%",
        link: LinkConfig {
            duplicate: 0.05,
            ..base()
        },
        ts_sack: true,
        bound: secs(8),
    });
    for o in &all {
        assert!(o.data_link().duplicated > 0);
        assert_eq!(o.sender.retransmits_timeout, 0);
    }
}

#[test]
fn corruption_2_percent() {
    let all = run_row(Row {
        name: "corrupt 2%",
        link: LinkConfig {
            corrupt: 0.02,
            ..base()
        },
        ts_sack: true,
        bound: secs(18),
    });
    for o in &all {
        assert!(o.data_link().corrupted > 0);
    }
}

#[test]
fn gilbert_elliott_bursts() {
    // Bursts of 4 packets on average, all lost, about 2% of the time.
    let ge = GilbertElliott {
        p: 0.005,
        r: 0.25,
        loss_bad: 1.0,
        loss_good: 0.0,
        max_bad: Some(Duration::from_millis(50)),
    };
    let all = run_row(Row {
        name: "GE bursts",
        link: LinkConfig {
            burst: Some(ge),
            ..base()
        },
        ts_sack: true,
        bound: secs(20),
    });
    assert!(all.iter().all(|o| o.data_link().dropped_loss > 0));
}

#[test]
fn bottleneck_with_small_queue() {
    // 10 Mbit/s, 20 ms RTT (a bandwidth-delay product of 17 packets) and a
    // 16-packet queue: the only losses are tail drops that congestion
    // control causes itself.
    let all = run_row(Row {
        name: "10Mbit q16",
        link: LinkConfig {
            bandwidth: Some(MBIT_100 / 10),
            queue: QueueLimit::Packets(16),
            ..base()
        },
        ts_sack: true,
        bound: secs(9),
    });
    for o in &all {
        assert_eq!(o.link[0].dropped_loss + o.link[1].dropped_loss, 0);
    }
    assert!(all
        .iter()
        .any(|o| o.link[0].dropped_queue + o.link[1].dropped_queue > 0));
}

#[test]
fn combination() {
    // 2% loss + 2% reorder + 1% duplication + 1% corruption + 2 ms jitter,
    // 100 Mbit/s with a 64-packet queue.
    let all = run_row(Row {
        name: "combo",
        link: LinkConfig {
            loss: 0.02,
            reorder: 0.02,
            reorder_delay: Duration::from_millis(5),
            duplicate: 0.01,
            corrupt: 0.01,
            jitter: Duration::from_millis(2),
            bandwidth: Some(MBIT_100),
            queue: QueueLimit::Packets(64),
            ..base()
        },
        ts_sack: true,
        bound: secs(21),
    });
    for o in &all {
        let l = o.data_link();
        assert!(
            l.dropped_loss > 0 && l.reordered > 0 && l.duplicated > 0,
            "{l:?}"
        );
    }
}

/// Same seed, same run: packet counts and completion times identical.
#[test]
fn same_seed_same_run() {
    let row = Row {
        name: "determinism",
        link: LinkConfig {
            loss: 0.05,
            duplicate: 0.02,
            corrupt: 0.02,
            jitter: Duration::from_millis(3),
            bandwidth: Some(MBIT_100),
            queue: QueueLimit::Packets(32),
            ..base()
        },
        ts_sack: true,
        bound: secs(60),
    };
    let x = run(&row, 7, Side::A, Algorithm::NewReno);
    let y = run(&row, 7, Side::A, Algorithm::NewReno);
    assert_eq!(x.link, y.link);
    assert_eq!(x.sender, y.sender);
    assert_eq!(x.closed, y.closed);
    assert_eq!(x.data_done, y.data_done);
    // A different seed is a different run.
    let z = run(&row, 8, Side::A, Algorithm::NewReno);
    assert_ne!(x.link, z.link);
}
