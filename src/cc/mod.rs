//! Pluggable congestion controllers: NewReno (RFC 5681, RFC 3465) and CUBIC
//! (RFC 9438, with optional HyStart++ slow start, RFC 9406:
//! [`new_controller_with_hystart`](crate::cc::new_controller_with_hystart), or `TcpConfig::hystart` for a
//! connection).
//!
//! A [`Controller`](crate::cc::Controller) owns cwnd and ssthresh and does window maths only. Loss
//! *detection* stays with the connection: counting duplicate ACKs, the SACK
//! scoreboard, the retransmission timer, the RFC 6582 recovery point and
//! NewReno's window inflation during fast recovery. The connection reports
//! what it decided (new data acknowledged, a congestion event, a timeout, the
//! end of recovery) and reads the window back.
//!
//! Every method takes the time explicitly (`now`); nothing here reads a
//! clock, and no input can make a controller panic: arithmetic saturates,
//! floating point results (CUBIC's cube root) are checked and clamped, and
//! time going backwards counts as no time elapsed.
//!
//! ```
//! use utcp::cc::{new_controller, Algorithm};
//! use utcp::time::Instant;
//!
//! let alg: Algorithm = "cubic".parse().unwrap();
//! let mut cc = new_controller(alg, 1460, 0);
//! assert_eq!(cc.cwnd(), 14600); // RFC 6928 initial window
//! cc.on_congestion_event(Instant::ZERO, 100 * 1460);
//! assert_eq!(cc.cwnd(), 70 * 1460); // beta_cubic = 0.7 (RFC 9438 section 4.6)
//! ```

mod cubic;
mod hystart;
mod newreno;

pub use cubic::Cubic;
pub use newreno::NewReno;

use crate::time::Instant;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Which congestion controller a connection uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Algorithm {
    /// NewReno window arithmetic: RFC 5681 slow start and congestion
    /// avoidance with appropriate byte counting (RFC 3465), halving on loss.
    NewReno,
    /// CUBIC (RFC 9438): a cubic function of the time since the last
    /// congestion event, with a Reno-friendly floor, 0.7 on loss. The
    /// default, as in Linux: in the simulator's impairment matrix and
    /// through the kernel under nftables loss it finished as fast or faster
    /// than NewReno in every row but noise (docs/reliability.md).
    #[default]
    Cubic,
}

impl Algorithm {
    /// Every algorithm, in the order the parse error lists them.
    pub const ALL: [Algorithm; 2] = [Algorithm::NewReno, Algorithm::Cubic];
}

impl FromStr for Algorithm {
    type Err = String;

    /// Parses `newreno` (or `reno`) and `cubic`, ignoring ASCII case and
    /// surrounding white space.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        if name.eq_ignore_ascii_case("newreno") || name.eq_ignore_ascii_case("reno") {
            Ok(Algorithm::NewReno)
        } else if name.eq_ignore_ascii_case("cubic") {
            Ok(Algorithm::Cubic)
        } else {
            Err(format!(
                "unknown congestion control algorithm {s:?}: expected one of \
                 \"newreno\" (alias \"reno\") or \"cubic\""
            ))
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::NewReno => "newreno",
            Algorithm::Cubic => "cubic",
        })
    }
}

/// A congestion controller: owns cwnd and ssthresh, in bytes.
///
/// Loss *detection* (duplicate ACKs, SACK, timeouts, the recovery point,
/// NewReno's window inflation during fast recovery) is the connection's job;
/// the controller only answers how the window grows and how far it is cut.
///
/// Call order expected from the connection: [`on_ack`](Self::on_ack) for
/// each ACK of new data outside loss recovery;
/// [`on_congestion_event`](Self::on_congestion_event) once when fast
/// recovery begins, then [`set_cwnd`](Self::set_cwnd) for any inflation or
/// deflation while it lasts, and [`on_recovery_end`](Self::on_recovery_end)
/// at the full ACK; [`on_timeout`](Self::on_timeout) when the
/// retransmission timer fires.
pub trait Controller: fmt::Debug + Send {
    /// The algorithm this controller implements.
    fn algorithm(&self) -> Algorithm;

    /// The congestion window (cwnd) in bytes; never less than one MSS.
    fn cwnd(&self) -> u32;

    /// The slow start threshold (ssthresh) in bytes; `u32::MAX` until the
    /// first congestion event ("arbitrarily high", RFC 5681 section 3.1).
    fn ssthresh(&self) -> u32;

    /// The sender MSS changed (payload bytes per segment); the window is
    /// kept in segments.
    fn set_mss(&mut self, mss: u32);

    /// `acked` bytes of new data were cumulatively acknowledged outside
    /// loss recovery.
    ///
    /// `flight` is the number of bytes outstanding *before* this ACK
    /// (including the ones it acknowledges). CUBIC uses it to tell a
    /// cwnd-limited sender from an application- or receiver-limited one,
    /// whose window must not grow (RFC 9438 section 5.8), and HyStart++
    /// uses it to find the end of a round; NewReno ignores it.
    ///
    /// `rtt` is the RTT sample this ACK produced (RFC 6298 section 3, or a
    /// timestamp echo per RFC 7323 section 4), or `None` when it produced
    /// none (Karn's rule). CUBIC smooths the samples itself for its target
    /// (RFC 9438 section 4.2 asks for the smoothed RTT) and HyStart++
    /// needs the raw per-ACK samples (RFC 9406 section 4.2). Passing the
    /// connection's SRTT on every ACK instead also works, at the cost of a
    /// later HyStart++ exit.
    fn on_ack(&mut self, now: Instant, acked: u32, flight: u32, rtt: Option<Duration>);

    /// Loss detected by duplicate ACKs or SACK (entering fast recovery, RFC
    /// 5681 section 3.2, RFC 6675, RFC 9438 section 4.6): set ssthresh and
    /// cwnd = ssthresh. The connection adds NewReno's 3*MSS inflation itself
    /// (with [`set_cwnd`](Self::set_cwnd)) if it wants it. `flight` is the
    /// number of bytes outstanding when the loss was detected (FlightSize).
    fn on_congestion_event(&mut self, now: Instant, flight: u32);

    /// The retransmission timer expired (RFC 5681 section 3.1 (4), RFC 9438
    /// section 4.8): ssthresh cut, cwnd = 1 MSS (the loss window).
    fn on_timeout(&mut self, now: Instant, flight: u32);

    /// Sets cwnd directly, clamped to at least one MSS. Used by the
    /// connection during fast recovery (RFC 6582 section 3.2 inflation and
    /// deflation).
    fn set_cwnd(&mut self, cwnd: u32);

    /// Leaving fast recovery (full ACK, RFC 6582 section 3.2 step 3):
    /// cwnd = ssthresh, and the controller may restart its growth epoch.
    fn on_recovery_end(&mut self, now: Instant);

    /// A copy of the whole controller state, kept by the connection to undo
    /// a spurious cut (Eifel, RFC 3522 and RFC 4015; RFC 9438 section 4.9):
    /// the connection restores it by replacing its controller with the copy.
    fn clone_box(&self) -> Box<dyn Controller>;
}

impl Clone for Box<dyn Controller> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// A controller of the chosen algorithm for segments of `mss` payload bytes,
/// with the initial window: `initial_window_segments` == 0 means RFC 6928's
/// IW = min(10*MSS, max(2*MSS, 14600)). HyStart++ is off; see
/// [`new_controller_with_hystart`].
#[must_use]
pub fn new_controller(
    alg: Algorithm,
    mss: u32,
    initial_window_segments: u32,
) -> Box<dyn Controller> {
    new_controller_with_hystart(alg, mss, initial_window_segments, false)
}

/// Like [`new_controller`], with HyStart++ (RFC 9406) for the initial slow
/// start on or off. CUBIC implements it ([`Cubic::with_hystart`]); NewReno
/// keeps RFC 5681's slow start and ignores `hystart`.
#[must_use]
pub fn new_controller_with_hystart(
    alg: Algorithm,
    mss: u32,
    initial_window_segments: u32,
    hystart: bool,
) -> Box<dyn Controller> {
    match alg {
        Algorithm::NewReno => Box::new(NewReno::new(mss, initial_window_segments)),
        Algorithm::Cubic => {
            Box::new(Cubic::new(mss, initial_window_segments).with_hystart(hystart))
        }
    }
}

/// The initial window in bytes: `segments` MSS, or with `segments` == 0
/// IW = min(10*MSS, max(2*MSS, 14600)) (RFC 6928 section 2).
fn initial_window(mss: u32, segments: u32) -> u32 {
    if segments == 0 {
        mss.saturating_mul(10).min(mss.saturating_mul(2).max(14600))
    } else {
        segments.saturating_mul(mss)
    }
}

/// The window `cwnd`, measured in segments of `old_mss` (at least one),
/// re-expressed in segments of `new_mss` bytes.
fn rescale_window(cwnd: u32, old_mss: u32, new_mss: u32) -> u32 {
    let segments = (cwnd / old_mss.max(1)).max(1);
    segments.saturating_mul(new_mss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_parses_names_case_insensitively() {
        assert_eq!("newreno".parse(), Ok(Algorithm::NewReno));
        assert_eq!("Reno".parse(), Ok(Algorithm::NewReno));
        assert_eq!(" CUBIC ".parse(), Ok(Algorithm::Cubic));
        let err = "bbr".parse::<Algorithm>().unwrap_err();
        assert!(err.contains("\"bbr\""), "{err}");
        assert!(err.contains("newreno") && err.contains("cubic"), "{err}");
    }

    #[test]
    fn algorithm_display_round_trips() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.to_string().parse(), Ok(alg));
        }
        assert_eq!(Algorithm::default(), Algorithm::Cubic);
        assert_eq!(Algorithm::Cubic.to_string(), "cubic");
    }

    #[test]
    fn factory_builds_the_chosen_algorithm_with_rfc6928_initial_window() {
        for alg in Algorithm::ALL {
            let cc = new_controller(alg, 1460, 0);
            assert_eq!(cc.algorithm(), alg);
            assert_eq!(cc.cwnd(), 14600);
            assert_eq!(cc.ssthresh(), u32::MAX);
            assert_eq!(new_controller(alg, 536, 0).cwnd(), 5360);
            assert_eq!(new_controller(alg, 1000, 4).cwnd(), 4000);
            // Degenerate sizes saturate instead of overflowing.
            assert_eq!(new_controller(alg, u32::MAX, 0).cwnd(), u32::MAX);
            assert_eq!(new_controller(alg, 0, 0).cwnd(), 10);
        }
    }

    #[test]
    fn hystart_flag_reaches_cubic_and_new_controller_keeps_it_off() {
        // A stretch ACK of 4 segments in the initial slow start: RFC 5681
        // adds min(N, SMSS), HyStart++ min(N, L*SMSS) with L = 8 (RFC 9406
        // section 4.2).
        let grown = |mut cc: Box<dyn Controller>| {
            cc.on_ack(Instant::ZERO, 4000, cc.cwnd(), None);
            cc.cwnd()
        };
        let hs = |alg, on| new_controller_with_hystart(alg, 1000, 10, on);
        assert_eq!(grown(hs(Algorithm::Cubic, true)), 14_000);
        assert_eq!(grown(hs(Algorithm::Cubic, false)), 11_000);
        assert_eq!(grown(new_controller(Algorithm::Cubic, 1000, 10)), 11_000);
        // NewReno has no HyStart++.
        assert_eq!(grown(hs(Algorithm::NewReno, true)), 11_000);
    }

    #[test]
    fn clone_box_restores_state_for_undo_rfc4015() {
        for alg in Algorithm::ALL {
            let mut cc = new_controller(alg, 1000, 10);
            let saved = cc.clone();
            cc.on_congestion_event(Instant::ZERO, 10_000);
            assert!(cc.cwnd() < 10_000);
            cc = saved;
            assert_eq!(cc.cwnd(), 10_000);
            assert_eq!(cc.ssthresh(), u32::MAX);
        }
    }

    /// Average cwnd (in segments) of one flow alone on a path that holds
    /// `capacity` segments (BDP plus queue): each round trip it sends a full
    /// window and gets an ACK per two segments; a window above the capacity
    /// loses, which costs one round of fast recovery.
    fn average_window(alg: Algorithm, capacity: u32, rounds: u32, skip: u32) -> f64 {
        const MSS: u32 = 1000;
        let rtt = Duration::from_millis(100);
        let mut cc = new_controller(alg, MSS, 0);
        let mut now = Instant::ZERO;
        let mut sum = 0u64;
        for round in 0..rounds {
            let window = cc.cwnd();
            if window > capacity * MSS {
                cc.on_congestion_event(now, window);
                now += rtt;
                cc.on_recovery_end(now);
            } else {
                let acks = (window / (2 * MSS)).max(1);
                let step = rtt / acks;
                let mut left = window;
                for i in 0..acks {
                    now += step;
                    let acked = if i + 1 == acks { left } else { 2 * MSS };
                    left -= acked;
                    cc.on_ack(now, acked, cc.cwnd(), Some(rtt));
                }
            }
            if round >= skip {
                sum += u64::from(window);
            }
        }
        sum as f64 / f64::from(rounds - skip) / f64::from(MSS)
    }

    #[test]
    fn cubic_holds_a_larger_window_than_newreno_on_a_long_fat_path_rfc9438_1() {
        // 1000 segments of 1000 bytes per 100 ms: 80 Mbit/s. NewReno's
        // sawtooth climbs back one segment per RTT for 500 RTTs; CUBIC is
        // back near W_max after K = cbrt(300 / 0.4) = 9.1 s and stays there.
        let newreno = average_window(Algorithm::NewReno, 1000, 2000, 500);
        let cubic = average_window(Algorithm::Cubic, 1000, 2000, 500);
        assert!((700.0..800.0).contains(&newreno), "NewReno {newreno}");
        assert!(cubic > 1.15 * newreno, "CUBIC {cubic} vs NewReno {newreno}");
        assert!(cubic <= 1000.0, "CUBIC {cubic}");
        eprintln!("average cwnd: NewReno {newreno:.1}, CUBIC {cubic:.1} segments");
    }

    #[test]
    fn random_event_sequences_keep_windows_sane() {
        // A deterministic xorshift drives every entry point with extreme
        // and ordinary values, for both algorithms.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for alg in Algorithm::ALL {
            let mut cc = new_controller(alg, 1460, 0);
            let mut saved = cc.clone();
            for _ in 0..20_000 {
                let r = next();
                let value = match r % 4 {
                    0 => u32::MAX,
                    1 => 0,
                    2 => (r >> 8) as u32,
                    _ => ((r >> 8) as u32) % 100_000,
                };
                let now = Instant::from_micros((r >> 20) % 10_000_000);
                let rtt = [
                    None,
                    Some(Duration::ZERO),
                    Some(Duration::from_micros(r % 300_000)),
                ][((r >> 4) % 3) as usize];
                match (r >> 32) % 16 {
                    0 => cc.on_congestion_event(now, value),
                    1 => cc.on_timeout(now, value),
                    2 => cc.set_cwnd(value),
                    3 => cc.on_recovery_end(now),
                    4 => cc.set_mss(value),
                    5 => saved = cc.clone(),
                    6 => cc = saved.clone(),
                    _ => cc.on_ack(now, value, cc.cwnd(), rtt),
                }
                assert!(cc.cwnd() >= 1, "{cc:?}");
                assert!(cc.ssthresh() >= 1, "{cc:?}");
                assert_eq!(cc.algorithm(), alg);
            }
        }
    }
}
