//! Round-trip time estimation and the retransmission timeout (RFC 6298).
//!
//! [`RttEstimator`] keeps the smoothed round-trip time (SRTT) and the RTT
//! variation (RTTVAR) of one connection and derives the retransmission
//! timeout (RTO) from them, including the exponential back-off applied when
//! the retransmission timer expires.
//!
//! All internal arithmetic is done on whole microseconds held in `u64`
//! (intermediate products in `u128`), saturating instead of overflowing, so
//! arbitrarily large inputs (up to `Duration::MAX`) and arbitrarily many
//! timeouts never panic. Sub-microsecond parts of samples are truncated.

use std::time::Duration;

/// Clock granularity `G` used in the RTO formula (RFC 6298 (2.2)/(2.3)): 1 ms.
const CLOCK_GRANULARITY_US: u64 = 1_000;

/// The constant `K` of RFC 6298 section 2: RTO = SRTT + max(G, K*RTTVAR).
const K: u128 = 4;

/// Bounds and starting point for the retransmission timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RttConfig {
    /// RTO before any RTT sample (RFC 6298 (2.1): 1 s).
    pub initial_rto: Duration,
    /// Lower bound on the RTO (RFC 6298 (2.4) says 1 s; Linux uses 200 ms).
    pub min_rto: Duration,
    /// Upper bound on the RTO, also for back-off (RFC 6298 (2.5): at least 60 s).
    pub max_rto: Duration,
}

impl Default for RttConfig {
    fn default() -> Self {
        RttConfig {
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
        }
    }
}

/// SRTT / RTTVAR / RTO state of one connection.
///
/// Before the first sample the RTO is `initial_rto` (RFC 6298 (2.1)). Each
/// sample updates SRTT and RTTVAR (RFC 6298 (2.2)/(2.3)) and recomputes the
/// base RTO; every expiry of the retransmission timer doubles it
/// (RFC 6298 (5.5)) until the next sample. The result is always clamped to
/// `[min_rto, max_rto]` (RFC 6298 (2.4)/(2.5)); should a configuration have
/// `min_rto > max_rto`, `max_rto` wins.
#[derive(Clone, Debug)]
pub struct RttEstimator {
    cfg: RttConfig,
    /// SRTT in microseconds; `None` until the first sample.
    srtt_us: Option<u64>,
    /// RTTVAR in microseconds; `None` until the first sample.
    rttvar_us: Option<u64>,
    /// RTO before back-off (not yet clamped), in microseconds.
    base_rto_us: u64,
    /// Number of doublings since the last sample.
    backoff: u32,
}

/// Whole microseconds in `d`, saturating at `u64::MAX`.
fn to_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `v` saturated into `u64`.
fn sat_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

impl RttEstimator {
    /// A fresh estimator: no samples yet, RTO = `initial_rto` clamped to
    /// `[min_rto, max_rto]` (RFC 6298 (2.1), (2.4), (2.5)).
    pub fn new(cfg: RttConfig) -> Self {
        RttEstimator {
            cfg,
            srtt_us: None,
            rttvar_us: None,
            base_rto_us: to_us(cfg.initial_rto),
            backoff: 0,
        }
    }

    /// The configuration this estimator was built with.
    pub fn config(&self) -> RttConfig {
        self.cfg
    }

    /// Feeds one RTT measurement `rtt` (RFC 6298 (2.2)/(2.3)); clears any back-off.
    ///
    /// * First sample, RFC 6298 (2.2): SRTT = R, RTTVAR = R/2.
    /// * Later samples, RFC 6298 (2.3), in this order:
    ///   RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|, then SRTT = 7/8 SRTT + 1/8 R
    ///   (the RTTVAR update uses the *old* SRTT).
    /// * In both cases RTO = SRTT + max(G, 4 * RTTVAR) with G = 1 ms, then
    ///   clamped to `[min_rto, max_rto]` (RFC 6298 (2.4)/(2.5)).
    ///
    /// A new sample also resets the back-off: after backing off, RFC 6298
    /// (5.7) and the note following it let the RTO be recomputed from the
    /// next measurement, so [`backoff`](Self::backoff) returns 0 afterwards.
    ///
    /// Karn's algorithm (RFC 6298 section 3) is the caller's job: do not call
    /// this for segments that were retransmitted, since their RTT is
    /// ambiguous.
    pub fn sample(&mut self, rtt: Duration) {
        let r = to_us(rtt);
        let (srtt, rttvar) = match (self.srtt_us, self.rttvar_us) {
            (Some(srtt), Some(rttvar)) => {
                let delta = srtt.abs_diff(r);
                // (3*RTTVAR + delta) / 4 and (7*SRTT + R) / 8 never exceed the
                // larger operand, so they fit in u64; u128 avoids overflow in
                // the products.
                let rttvar = sat_u64((3 * u128::from(rttvar) + u128::from(delta)) / 4);
                let srtt = sat_u64((7 * u128::from(srtt) + u128::from(r)) / 8);
                (srtt, rttvar)
            }
            _ => (r, r / 2),
        };
        self.srtt_us = Some(srtt);
        self.rttvar_us = Some(rttvar);
        let var_term = (K * u128::from(rttvar)).max(u128::from(CLOCK_GRANULARITY_US));
        self.base_rto_us = sat_u64(u128::from(srtt) + var_term);
        self.backoff = 0;
    }

    /// The current RTO, back-off applied, clamped to `[min_rto, max_rto]`.
    ///
    /// This is the base RTO (from `initial_rto` or the last sample), clamped
    /// to `[min_rto, max_rto]` (RFC 6298 (2.4)/(2.5)), then doubled once per
    /// timeout since the last sample (RFC 6298 (5.5)), never beyond
    /// `max_rto` (RFC 6298 (2.5)).
    pub fn rto(&self) -> Duration {
        let base = self.clamp(Duration::from_micros(self.base_rto_us));
        let base_us = to_us(base);
        let backed_off = if self.backoff >= 64 {
            if base_us == 0 {
                0
            } else {
                u64::MAX
            }
        } else {
            sat_u64(u128::from(base_us) << self.backoff)
        };
        let rto = if self.backoff == 0 {
            // Keep sub-microsecond precision of a configured bound.
            base
        } else {
            Duration::from_micros(backed_off)
        };
        self.clamp(rto)
    }

    /// The retransmission timer expired: double the RTO (RFC 6298 (5.5)).
    ///
    /// The doubled value is capped at `max_rto` (RFC 6298 (2.5)) when read
    /// through [`rto`](Self::rto). The back-off counter saturates at
    /// `u32::MAX`, so any number of calls is safe.
    pub fn on_timeout(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// How many times the RTO has been doubled since the last sample
    /// (RFC 6298 (5.5)); saturating.
    pub fn backoff(&self) -> u32 {
        self.backoff
    }

    /// Smoothed RTT (RFC 6298 section 2), once there is a sample.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt_us.map(Duration::from_micros)
    }

    /// RTT variation (RFC 6298 section 2), once there is a sample.
    pub fn rttvar(&self) -> Option<Duration> {
        self.rttvar_us.map(Duration::from_micros)
    }

    /// `d` clamped to `[min_rto, max_rto]`; `max_rto` wins if the bounds cross
    /// (never panics, unlike `Ord::clamp`).
    fn clamp(&self, d: Duration) -> Duration {
        d.max(self.cfg.min_rto).min(self.cfg.max_rto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// Bounds wide enough not to interfere with the formula tests.
    fn wide() -> RttConfig {
        RttConfig {
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::ZERO,
            max_rto: Duration::from_secs(3600),
        }
    }

    // RFC 6298 (2.1): before any measurement, RTO = initial RTO (1 s).
    #[test]
    fn initial_rto_before_samples() {
        let e = RttEstimator::new(RttConfig::default());
        assert_eq!(e.rto(), Duration::from_secs(1));
        assert_eq!(e.srtt(), None);
        assert_eq!(e.rttvar(), None);
        assert_eq!(e.backoff(), 0);
    }

    // RFC 6298 (2.1) with (2.4)/(2.5): the initial RTO is clamped too.
    #[test]
    fn initial_rto_is_clamped() {
        let cfg = RttConfig {
            initial_rto: ms(10),
            min_rto: ms(200),
            max_rto: Duration::from_secs(60),
        };
        assert_eq!(RttEstimator::new(cfg).rto(), ms(200));
        let cfg = RttConfig {
            initial_rto: Duration::from_secs(100),
            min_rto: ms(200),
            max_rto: Duration::from_secs(60),
        };
        assert_eq!(RttEstimator::new(cfg).rto(), Duration::from_secs(60));
    }

    // RFC 6298 (2.2): SRTT = R, RTTVAR = R/2, RTO = SRTT + max(G, 4*RTTVAR).
    #[test]
    fn first_sample() {
        let mut e = RttEstimator::new(wide());
        e.sample(ms(100));
        assert_eq!(e.srtt(), Some(ms(100)));
        assert_eq!(e.rttvar(), Some(ms(50)));
        assert_eq!(e.rto(), ms(300));
    }

    // RFC 6298 (2.3): RTTVAR is updated with the old SRTT, then SRTT.
    #[test]
    fn subsequent_sample_exact_values_and_order() {
        let mut e = RttEstimator::new(wide());
        e.sample(ms(100));
        e.sample(ms(200));
        // RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 62.5 ms
        assert_eq!(e.rttvar(), Some(us(62_500)));
        // SRTT = 7/8 * 100 + 1/8 * 200 = 112.5 ms
        assert_eq!(e.srtt(), Some(us(112_500)));
        // RTO = 112.5 + 4 * 62.5 = 362.5 ms
        assert_eq!(e.rto(), us(362_500));
        // Had SRTT been updated first, RTTVAR would be 59.375 ms instead.
        assert_ne!(e.rttvar(), Some(us(59_375)));

        // A third, smaller sample: RTTVAR = 3/4*62.5 + 1/4*|112.5-50| = 62.5,
        // SRTT = 7/8*112.5 + 1/8*50 = 104.6875 ms.
        e.sample(ms(50));
        assert_eq!(e.rttvar(), Some(us(62_500)));
        assert_eq!(e.srtt(), Some(Duration::from_nanos(104_687_000)));
        assert_eq!(e.rto(), Duration::from_nanos(354_687_000));
    }

    // RFC 6298 (2.3): the clock granularity G = 1 ms is the floor of the
    // variance term when RTTVAR has decayed to (nearly) zero.
    #[test]
    fn clock_granularity_floor() {
        let mut e = RttEstimator::new(wide());
        for _ in 0..200 {
            e.sample(ms(10));
        }
        assert_eq!(e.srtt(), Some(ms(10)));
        assert_eq!(e.rttvar(), Some(Duration::ZERO));
        assert_eq!(e.rto(), ms(11));
        // A zero RTT still yields RTO = G.
        let mut e = RttEstimator::new(wide());
        e.sample(Duration::ZERO);
        assert_eq!(e.rto(), ms(1));
    }

    // RFC 6298 (2.4): RTO below the minimum is rounded up to min_rto.
    #[test]
    fn min_clamp() {
        let mut e = RttEstimator::new(RttConfig::default());
        e.sample(ms(1));
        assert_eq!(e.srtt(), Some(ms(1)));
        assert_eq!(e.rto(), ms(200));
    }

    // RFC 6298 (2.5): a maximum value may be placed on the RTO.
    #[test]
    fn max_clamp() {
        let mut e = RttEstimator::new(RttConfig::default());
        e.sample(Duration::from_secs(50));
        // 50 + 4 * 25 = 150 s > 60 s
        assert_eq!(e.rto(), Duration::from_secs(60));
        assert_eq!(e.srtt(), Some(Duration::from_secs(50)));
    }

    // RFC 6298 (5.5): each timeout doubles the RTO; (2.5) caps it.
    #[test]
    fn backoff_doubling_sequence_capped() {
        let mut e = RttEstimator::new(RttConfig::default());
        let mut seen = vec![e.rto().as_secs()];
        for _ in 0..10 {
            e.on_timeout();
            seen.push(e.rto().as_secs());
        }
        assert_eq!(seen, vec![1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60]);
        assert_eq!(e.backoff(), 10);
    }

    // RFC 6298 (5.5) after a sample: doubling starts from the computed RTO.
    #[test]
    fn backoff_from_sampled_rto() {
        let mut e = RttEstimator::new(wide());
        e.sample(ms(100)); // RTO 300 ms
        e.on_timeout();
        assert_eq!(e.rto(), ms(600));
        e.on_timeout();
        assert_eq!(e.rto(), ms(1200));
        // The clamped base is what gets doubled (RFC 6298 (2.4) then (5.5)).
        let mut e = RttEstimator::new(RttConfig::default());
        e.sample(ms(1)); // base 1 + 4 * 0.5 = 3 ms, clamped to 200 ms
        e.on_timeout();
        assert_eq!(e.rto(), ms(400));
    }

    // RFC 6298 (5.7) and the note after it: a new sample recomputes the RTO
    // and discards the back-off.
    #[test]
    fn backoff_reset_by_sample() {
        let mut e = RttEstimator::new(wide());
        e.on_timeout();
        e.on_timeout();
        e.on_timeout();
        assert_eq!(e.backoff(), 3);
        assert_eq!(e.rto(), Duration::from_secs(8));
        e.sample(ms(100));
        assert_eq!(e.backoff(), 0);
        assert_eq!(e.rto(), ms(300));
    }

    // RFC 6298 (2.5)/(5.5): huge samples and endless timeouts saturate at
    // max_rto without overflowing.
    #[test]
    fn no_overflow_on_extreme_inputs() {
        let cfg = RttConfig {
            initial_rto: Duration::MAX,
            min_rto: Duration::ZERO,
            max_rto: Duration::MAX,
        };
        let mut e = RttEstimator::new(cfg);
        e.sample(Duration::MAX);
        e.sample(Duration::MAX);
        e.sample(Duration::ZERO);
        e.sample(Duration::MAX);
        for _ in 0..200 {
            e.on_timeout();
            let _ = e.rto();
        }
        assert!(e.rto() >= Duration::from_micros(u64::MAX / 2));
        assert_eq!(e.backoff(), 200);

        let mut e = RttEstimator::new(RttConfig::default());
        e.sample(Duration::MAX);
        assert_eq!(e.rto(), Duration::from_secs(60));
        e.backoff = u32::MAX - 1;
        e.on_timeout();
        e.on_timeout();
        assert_eq!(e.backoff(), u32::MAX);
        assert_eq!(e.rto(), Duration::from_secs(60));
    }

    // RFC 6298 (5.5): even with a zero minimum and a zero base the back-off
    // arithmetic (including shifts of 64 and more) stays well defined.
    #[test]
    fn zero_base_backoff() {
        let cfg = RttConfig {
            initial_rto: Duration::ZERO,
            min_rto: Duration::ZERO,
            max_rto: Duration::from_secs(60),
        };
        let mut e = RttEstimator::new(cfg);
        for _ in 0..100 {
            e.on_timeout();
        }
        assert_eq!(e.rto(), Duration::ZERO);
    }

    // RFC 6298 (2.4)/(2.5): crossed bounds do not panic; max_rto wins.
    #[test]
    fn crossed_bounds_do_not_panic() {
        let cfg = RttConfig {
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_secs(10),
            max_rto: Duration::from_secs(5),
        };
        let mut e = RttEstimator::new(cfg);
        assert_eq!(e.rto(), Duration::from_secs(5));
        e.sample(ms(1));
        e.on_timeout();
        assert_eq!(e.rto(), Duration::from_secs(5));
    }
}
