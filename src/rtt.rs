//! Round-trip time estimation and the retransmission timeout (RFC 6298).
//!
//! INTERFACE STUB — to be implemented (see the doc comments for the contract).

use std::time::Duration;

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
#[derive(Clone, Debug)]
pub struct RttEstimator {
    cfg: RttConfig,
}

impl RttEstimator {
    /// A fresh estimator: no samples yet, RTO = `initial_rto`.
    pub fn new(cfg: RttConfig) -> Self {
        RttEstimator { cfg }
    }

    /// Feeds one RTT measurement (RFC 6298 (2.2)/(2.3)); clears any back-off.
    pub fn sample(&mut self, _rtt: Duration) {}

    /// The current RTO, back-off applied, clamped to `[min_rto, max_rto]`.
    pub fn rto(&self) -> Duration {
        self.cfg.initial_rto
    }

    /// The retransmission timer expired: double the RTO (RFC 6298 (5.5)).
    pub fn on_timeout(&mut self) {}

    /// How many times the RTO has been doubled since the last sample.
    pub fn backoff(&self) -> u32 {
        0
    }

    /// Smoothed RTT, once there is a sample.
    pub fn srtt(&self) -> Option<Duration> {
        None
    }

    /// RTT variation, once there is a sample.
    pub fn rttvar(&self) -> Option<Duration> {
        None
    }
}
