//! Device-level impairment: lose, duplicate, delay and reorder packets on
//! purpose, in and out, to see how TCP copes (or to debug a network by
//! making ours as bad as theirs).
//!
//! [`Impairer`] is sans-IO like the rest of the core: the runtime hands it
//! every packet with the current time, it answers with the packets to pass on
//! now, and holds delayed ones until [`Impairer::poll_timeout`]. Randomness comes
//! from a seeded RNG, so a run can be repeated.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::{Rng, SeedableRng};

use crate::time::Instant;

/// Which way a packet goes through the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// From the device into the stack.
    In,
    /// From the stack out to the device.
    Out,
}

/// What to do to packets, applied independently in each direction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Impairment {
    /// Probability that a packet is lost.
    pub drop: f64,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
    /// Probability that a packet is held back by `reorder_delay` so later ones overtake it.
    pub reorder: f64,
    /// How long a reordered packet is held back.
    pub reorder_delay: Duration,
    /// Fixed extra delay for every packet.
    pub delay: Duration,
    /// Random extra delay, uniform in `[0, jitter]`.
    pub jitter: Duration,
    /// RNG seed; the same seed replays the same decisions for the same traffic.
    pub seed: u64,
}

impl Impairment {
    /// True if this impairment changes nothing.
    pub fn is_noop(&self) -> bool {
        self.drop <= 0.0
            && self.duplicate <= 0.0
            && self.reorder <= 0.0
            && self.delay.is_zero()
            && self.jitter.is_zero()
    }
}

impl fmt::Display for Impairment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "drop={},dup={},reorder={},reorder-delay={}ms,delay={}ms,jitter={}ms,seed={}",
            self.drop,
            self.duplicate,
            self.reorder,
            self.reorder_delay.as_millis(),
            self.delay.as_millis(),
            self.jitter.as_millis(),
            self.seed
        )
    }
}

/// Parses `key=value` pairs separated by commas, e.g.
/// `drop=0.05,dup=0.01,reorder=0.02,delay=10ms,jitter=2ms,seed=7`.
/// Probabilities accept a fraction (`0.05`) or a percentage (`5%`).
impl FromStr for Impairment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut imp = Impairment {
            reorder_delay: Duration::from_millis(5),
            ..Impairment::default()
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got {part:?}"))?;
            match key {
                "drop" | "loss" => imp.drop = probability(value)?,
                "dup" | "duplicate" => imp.duplicate = probability(value)?,
                "reorder" => imp.reorder = probability(value)?,
                "reorder-delay" => imp.reorder_delay = duration(value)?,
                "delay" => imp.delay = duration(value)?,
                "jitter" => imp.jitter = duration(value)?,
                "seed" => {
                    imp.seed = value
                        .parse()
                        .map_err(|_| format!("seed must be an integer, got {value:?}"))?
                }
                other => {
                    return Err(format!(
                        "unknown impairment {other:?} (known: drop, dup, reorder, \
                         reorder-delay, delay, jitter, seed)"
                    ))
                }
            }
        }
        Ok(imp)
    }
}

fn probability(v: &str) -> Result<f64, String> {
    let (num, scale) = match v.strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (v, 1.0),
    };
    let p: f64 = num
        .parse()
        .map_err(|_| format!("not a probability: {v:?}"))?;
    let p = p / scale;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("probability out of range 0..1: {v:?}"));
    }
    Ok(p)
}

fn duration(v: &str) -> Result<Duration, String> {
    let bad = || format!("not a duration (use e.g. 10ms, 500us, 1s): {v:?}");
    let (num, unit) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1_000.0)
    } else if let Some(n) = v.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1_000_000.0)
    } else {
        (v, 1_000.0)
    };
    let x: f64 = num.parse().map_err(|_| bad())?;
    if !(0.0..=60_000_000.0).contains(&(x * unit)) {
        return Err(bad());
    }
    Ok(Duration::from_micros((x * unit) as u64))
}

/// Counters of what the impairer did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImpairStats {
    /// Packets lost on purpose, [in, out].
    pub dropped: [u64; 2],
    /// Extra copies sent, [in, out].
    pub duplicated: [u64; 2],
    /// Packets held back to be reordered, [in, out].
    pub reordered: [u64; 2],
}

type Held = Reverse<(Instant, u64, Direction, Vec<u8>)>;

/// Applies an [`Impairment`] to a packet stream.
pub struct Impairer {
    cfg: Impairment,
    rng: rand::rngs::StdRng,
    held: BinaryHeap<Held>,
    next_id: u64,
    stats: ImpairStats,
}

impl fmt::Debug for Impairer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Impairer")
            .field("cfg", &self.cfg)
            .field("held", &self.held.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// Packets held at most (beyond it, new delayed packets are dropped).
const HELD_MAX: usize = 16 * 1024;

impl Impairer {
    /// An impairer applying `cfg`.
    pub fn new(cfg: Impairment) -> Self {
        Impairer {
            rng: rand::rngs::StdRng::seed_from_u64(cfg.seed),
            cfg,
            held: BinaryHeap::new(),
            next_id: 0,
            stats: ImpairStats::default(),
        }
    }

    /// What the impairer did so far.
    pub fn stats(&self) -> &ImpairStats {
        &self.stats
    }

    /// Passes `pkt` through: `pass` gets every copy to deliver now; delayed
    /// copies are kept until [`poll_release`](Self::poll_release).
    pub fn handle_packet(
        &mut self,
        now: Instant,
        dir: Direction,
        pkt: &[u8],
        mut pass: impl FnMut(&[u8]),
    ) {
        let idx = dir as usize;
        if self.cfg.drop > 0.0 && self.rng.random_bool(self.cfg.drop) {
            self.stats.dropped[idx] += 1;
            return;
        }
        let copies = if self.cfg.duplicate > 0.0 && self.rng.random_bool(self.cfg.duplicate) {
            self.stats.duplicated[idx] += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = self.cfg.delay;
            if !self.cfg.jitter.is_zero() {
                let j = self
                    .rng
                    .random_range(0..=self.cfg.jitter.as_micros() as u64);
                delay += Duration::from_micros(j);
            }
            if self.cfg.reorder > 0.0 && self.rng.random_bool(self.cfg.reorder) {
                self.stats.reordered[idx] += 1;
                delay += self.cfg.reorder_delay;
            }
            if delay.is_zero() {
                pass(pkt);
            } else if self.held.len() < HELD_MAX {
                self.next_id += 1;
                self.held
                    .push(Reverse((now + delay, self.next_id, dir, pkt.to_vec())));
            } else {
                self.stats.dropped[idx] += 1;
            }
        }
    }

    /// When the next held packet is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.held.peek().map(|Reverse((t, ..))| *t)
    }

    /// Hands every held packet due at `now` to `pass`, in due order.
    pub fn poll_release(&mut self, now: Instant, mut pass: impl FnMut(Direction, &[u8])) {
        while let Some(Reverse((t, ..))) = self.held.peek() {
            if *t > now {
                break;
            }
            if let Some(Reverse((_, _, dir, pkt))) = self.held.pop() {
                pass(dir, &pkt);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_cli_syntax() {
        let imp: Impairment = "drop=5%,dup=0.01,reorder=0.02,delay=10ms,jitter=500us,seed=7"
            .parse()
            .unwrap();
        assert!((imp.drop - 0.05).abs() < 1e-9);
        assert!((imp.duplicate - 0.01).abs() < 1e-9);
        assert!((imp.reorder - 0.02).abs() < 1e-9);
        assert_eq!(imp.delay, Duration::from_millis(10));
        assert_eq!(imp.jitter, Duration::from_micros(500));
        assert_eq!(imp.seed, 7);
        assert!("drop=2".parse::<Impairment>().is_err());
        assert!("bogus=1".parse::<Impairment>().is_err());
        assert!("drop".parse::<Impairment>().is_err());
        assert!("delay=-1ms".parse::<Impairment>().is_err());
    }

    #[test]
    fn drop_rate_is_close_to_the_configured_one() {
        let mut imp = Impairer::new("drop=0.1,seed=3".parse().unwrap());
        let mut passed = 0;
        for _ in 0..10_000 {
            imp.handle_packet(Instant::ZERO, Direction::Out, b"x", |_| passed += 1);
        }
        assert!((8_500..=9_500).contains(&passed), "passed {passed}");
        assert_eq!(imp.stats().dropped[1], 10_000 - passed as u64);
    }

    #[test]
    fn delayed_and_reordered_packets_come_out_in_due_order() {
        let mut imp = Impairer::new("delay=10ms,reorder=1,reorder-delay=5ms".parse().unwrap());
        let mut now_out = 0;
        imp.handle_packet(Instant::ZERO, Direction::In, b"a", |_| now_out += 1);
        imp.handle_packet(Instant::from_millis(1), Direction::In, b"b", |_| {
            now_out += 1
        });
        assert_eq!(now_out, 0);
        assert_eq!(imp.poll_timeout(), Some(Instant::from_millis(15)));
        let mut got = Vec::new();
        imp.poll_release(Instant::from_millis(14), |_, p| got.push(p.to_vec()));
        assert!(got.is_empty());
        imp.poll_release(Instant::from_millis(16), |_, p| got.push(p.to_vec()));
        assert_eq!(got, vec![b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn duplicates_are_delivered_twice() {
        let mut imp = Impairer::new("dup=1".parse().unwrap());
        let mut n = 0;
        imp.handle_packet(Instant::ZERO, Direction::Out, b"x", |_| n += 1);
        assert_eq!(n, 2);
        assert_eq!(imp.stats().duplicated, [0, 1]);
    }
}
