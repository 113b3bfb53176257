//! NewReno window arithmetic: slow start and congestion avoidance (RFC 5681
//! section 3.1) with appropriate byte counting (RFC 3465), the initial
//! window of RFC 6928, and the halving on loss of RFC 5681. The fast
//! recovery mechanics of RFC 6582 (duplicate-ACK counting, the recovery
//! point, inflation) belong to the connection.

use super::{initial_window, rescale_window, Algorithm, Controller};
use crate::time::Instant;
use std::time::Duration;

/// NewReno congestion window state, in bytes.
#[derive(Clone, Debug)]
pub struct NewReno {
    mss: u32,
    /// Congestion window (cwnd).
    cwnd: u32,
    /// Slow start threshold (ssthresh).
    ssthresh: u32,
    /// Bytes acknowledged in congestion avoidance not yet turned into growth.
    ca_acked: u32,
}

impl NewReno {
    /// Initial state for segments of `mss` payload bytes: IW =
    /// `initial_window_segments` MSS, or with 0 the RFC 6928 section 2 window
    /// min(10*MSS, max(2*MSS, 14600)); ssthresh arbitrarily high (RFC 5681
    /// section 3.1).
    pub fn new(mss: u32, initial_window_segments: u32) -> Self {
        let mss = mss.max(1);
        NewReno {
            mss,
            cwnd: initial_window(mss, initial_window_segments).max(mss),
            ssthresh: u32::MAX,
            ca_acked: 0,
        }
    }

    /// ssthresh = max(FlightSize / 2, 2*SMSS) (RFC 5681 section 3.1 (4)).
    fn halve(&self, flight: u32) -> u32 {
        (flight / 2).max(self.mss.saturating_mul(2))
    }
}

impl Controller for NewReno {
    fn algorithm(&self) -> Algorithm {
        Algorithm::NewReno
    }

    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn set_mss(&mut self, mss: u32) {
        let mss = mss.max(1);
        self.cwnd = rescale_window(self.cwnd, self.mss, mss);
        self.mss = mss;
    }

    fn on_ack(&mut self, _now: Instant, acked: u32, _flight: u32, _rtt: Option<Duration>) {
        if self.cwnd < self.ssthresh {
            // Slow start, RFC 5681 section 3.1 (3.2): cwnd += min(N, SMSS).
            self.cwnd = self.cwnd.saturating_add(acked.min(self.mss));
        } else {
            // Congestion avoidance, RFC 5681 section 3.1 (3.3): about one MSS
            // per RTT, counted in bytes acknowledged (RFC 3465 section 2.1).
            self.ca_acked = self.ca_acked.saturating_add(acked);
            if self.ca_acked >= self.cwnd {
                self.ca_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.mss);
            }
        }
    }

    fn on_congestion_event(&mut self, _now: Instant, flight: u32) {
        // RFC 5681 section 3.2 step 2 (equation (4)); the connection adds the
        // 3*SMSS of step 3 if it inflates the window.
        self.ssthresh = self.halve(flight);
        self.cwnd = self.ssthresh;
    }

    fn on_timeout(&mut self, _now: Instant, flight: u32) {
        // RFC 5681 section 3.1 (4), and LW = 1 SMSS.
        self.ssthresh = self.halve(flight);
        self.cwnd = self.mss;
        self.ca_acked = 0;
    }

    fn set_cwnd(&mut self, cwnd: u32) {
        self.cwnd = cwnd.max(self.mss);
    }

    fn on_recovery_end(&mut self, _now: Instant) {
        // RFC 6582 section 3.2 step 3, full acknowledgment: deflate to ssthresh.
        self.cwnd = self.ssthresh.max(self.mss);
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Instant = Instant::ZERO;

    fn ack(c: &mut NewReno, acked: u32) {
        let flight = c.cwnd();
        c.on_ack(T0, acked, flight, None);
    }

    #[test]
    fn initial_window_is_ten_segments_rfc6928() {
        assert_eq!(NewReno::new(1460, 0).cwnd(), 14600);
        assert_eq!(NewReno::new(536, 0).cwnd(), 5360);
        assert_eq!(NewReno::new(1000, 4).cwnd(), 4000);
        // RFC 6928 section 2: max(2*MSS, 14600) caps large segments at 2 MSS.
        assert_eq!(NewReno::new(9000, 0).cwnd(), 18000);
    }

    #[test]
    fn slow_start_grows_one_mss_per_ack_rfc5681_3_1() {
        let mut c = NewReno::new(1000, 2);
        ack(&mut c, 1000);
        assert_eq!(c.cwnd(), 3000);
        // An ACK of 5 segments still only adds one MSS (RFC 5681 (3.2)).
        ack(&mut c, 5000);
        assert_eq!(c.cwnd(), 4000);
    }

    #[test]
    fn congestion_event_halves_flight_rfc5681_3_2() {
        let mut c = NewReno::new(1000, 10);
        c.on_congestion_event(T0, 10_000);
        assert_eq!(c.ssthresh(), 5000);
        assert_eq!(c.cwnd(), 5000);
        // The connection inflates during recovery (RFC 6582 section 3.2)...
        c.set_cwnd(c.ssthresh() + 3 * 1000);
        assert_eq!(c.cwnd(), 8000);
        c.set_cwnd(c.cwnd() + 1000);
        assert_eq!(c.cwnd(), 9000);
        // ...and the full ACK deflates to ssthresh.
        c.on_recovery_end(T0);
        assert_eq!(c.cwnd(), 5000);
        // The floor is 2*SMSS.
        c.on_congestion_event(T0, 1000);
        assert_eq!(c.ssthresh(), 2000);
        assert_eq!(c.cwnd(), 2000);
    }

    #[test]
    fn congestion_avoidance_adds_one_mss_per_window_rfc3465() {
        let mut c = NewReno::new(1000, 10);
        c.on_timeout(T0, 8000); // ssthresh 4000, cwnd 1000
        assert_eq!(c.cwnd(), 1000);
        assert_eq!(c.ssthresh(), 4000);
        for _ in 0..3 {
            ack(&mut c, 1000);
        }
        assert_eq!(c.cwnd(), 4000);
        // Now in congestion avoidance: needs a full cwnd of ACKs for +1 MSS.
        for _ in 0..3 {
            ack(&mut c, 1000);
            assert_eq!(c.cwnd(), 4000);
        }
        ack(&mut c, 1000);
        assert_eq!(c.cwnd(), 5000);
    }

    #[test]
    fn set_mss_keeps_window_in_segments() {
        let mut c = NewReno::new(536, 0);
        assert_eq!(c.cwnd(), 5360);
        c.set_mss(1460);
        assert_eq!(c.cwnd(), 14600);
        c.set_cwnd(0);
        assert_eq!(c.cwnd(), 1460);
        c.set_mss(0);
        assert_eq!(c.cwnd(), 1);
    }

    #[test]
    fn extreme_inputs_saturate_without_panic() {
        let mut c = NewReno::new(u32::MAX, 0);
        ack(&mut c, u32::MAX);
        c.on_congestion_event(T0, u32::MAX);
        assert_eq!(c.ssthresh(), u32::MAX);
        c.on_timeout(T0, 0);
        assert_eq!(c.cwnd(), u32::MAX);
        let mut c = NewReno::new(1, 1);
        c.on_timeout(T0, 0);
        assert_eq!((c.cwnd(), c.ssthresh()), (1, 2));
        for _ in 0..10 {
            ack(&mut c, u32::MAX);
        }
        assert!(c.cwnd() >= 2);
        c.set_cwnd(u32::MAX);
        ack(&mut c, u32::MAX);
        assert_eq!(c.cwnd(), u32::MAX);
    }
}
