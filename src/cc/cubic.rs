//! CUBIC congestion control (RFC 9438).
//!
//! After a congestion event the window follows a cubic function of the
//! time since the growth epoch began, W_cubic(t) = C*(t - K)^3 + W_max
//! (RFC 9438 section 4.2): concave up to the window of the last loss
//! (W_max), a plateau around it, convex beyond it. A Reno-friendly estimate
//! W_est (section 4.3) keeps it at least as fast as Reno where Reno would do
//! better (small bandwidth-delay products). Loss cuts by beta_cubic = 0.7
//! (section 4.6) with fast convergence (section 4.7); a timeout falls back to
//! one segment and restarts the epoch (section 4.8). Slow start is RFC
//! 5681's, or optionally HyStart++ (RFC 9406) for the initial one.
//!
//! RFC 9438 counts windows in segments and time in seconds; here windows
//! are bytes (segments times MSS) and the cubic is evaluated in f64 with
//! every result checked for NaN or infinity and clamped before it becomes a
//! `u32` window.

use super::hystart::HyStart;
use super::{initial_window, rescale_window, Algorithm, Controller};
use crate::time::Instant;
use std::time::Duration;

/// C, in segments per second cubed (RFC 9438 section 4.1.1).
const C: f64 = 0.4;
/// beta_cubic as the fraction 7/10 (RFC 9438 section 4.1.1), for exact
/// integer ssthresh arithmetic.
const BETA_NUM: u64 = 7;
/// Denominator of beta_cubic.
const BETA_DEN: u64 = 10;
/// beta_cubic = 0.7 (RFC 9438 section 4.1.1).
const BETA: f64 = 0.7;
/// alpha_cubic = 3 * (1 - beta_cubic) / (1 + beta_cubic), the Reno-friendly
/// additive increase in segments per RTT (RFC 9438 section 4.3).
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);
/// The cwnd target after one RTT is at most 1.5 * cwnd (RFC 9438 section 4.2).
const MAX_TARGET_GROWTH: f64 = 1.5;
/// The longest time between two ACKs that counts towards t when no RTT is
/// known yet: the initial RTO of RFC 6298 section 2.1.
const GAP_CAP_WITHOUT_RTT: Duration = Duration::from_secs(1);
/// The least time between two ACKs that always counts towards t.
const GAP_CAP_FLOOR: Duration = Duration::from_millis(10);

/// One congestion avoidance stage ("epoch") of the cubic function.
#[derive(Clone, Copy, Debug)]
struct Epoch {
    /// t_epoch: when the stage began, moved later by the periods that do not
    /// count (application-limited, idle; RFC 9438 section 5.8).
    start: Instant,
    /// K in seconds (RFC 9438 section 4.2).
    k: f64,
    /// W_est in bytes (RFC 9438 section 4.3).
    w_est: f64,
}

/// CUBIC congestion state (RFC 9438), windows in bytes.
#[derive(Clone, Debug)]
pub struct Cubic {
    mss: u32,
    /// Congestion window (cwnd).
    cwnd: u32,
    /// Slow start threshold (ssthresh).
    ssthresh: u32,
    /// W_max in bytes; `None` while undefined (no loss yet, or since a
    /// timeout), in which case the next epoch uses its starting window.
    w_max: Option<f64>,
    /// cwnd_prior in bytes: cwnd before the last congestion event.
    cwnd_prior: f64,
    /// The current congestion avoidance stage; `None` until its first ACK.
    epoch: Option<Epoch>,
    /// Fractional bytes of growth not yet added to cwnd.
    cwnd_frac: f64,
    /// Smoothed RTT of the samples seen (RFC 6298 section 2, gain 1/8).
    srtt: Option<Duration>,
    /// When the previous ACK arrived.
    last_ack: Option<Instant>,
    /// Fast convergence (RFC 9438 section 4.7) on or off.
    fast_convergence: bool,
    /// HyStart++ for the initial slow start, if enabled.
    hystart: Option<HyStart>,
}

impl Cubic {
    /// Initial state for segments of `mss` payload bytes: IW =
    /// `initial_window_segments` MSS, or with 0 the RFC 6928 section 2 window
    /// min(10*MSS, max(2*MSS, 14600)); ssthresh arbitrarily high (RFC 5681
    /// section 3.1); fast convergence on (RFC 9438 section 4.7 SHOULD);
    /// HyStart++ off.
    pub fn new(mss: u32, initial_window_segments: u32) -> Self {
        let mss = mss.max(1);
        Cubic {
            mss,
            cwnd: initial_window(mss, initial_window_segments).max(mss),
            ssthresh: u32::MAX,
            w_max: None,
            cwnd_prior: 0.0,
            epoch: None,
            cwnd_frac: 0.0,
            srtt: None,
            last_ack: None,
            fast_convergence: true,
            hystart: None,
        }
    }

    /// Turns HyStart++ (RFC 9406) on or off for the initial slow start.
    /// With it on, slow start grows by min(acked, 8*MSS) per ACK (RFC 9406
    /// section 4.2, L = 8 for a sender that does not pace) and may end before
    /// any loss, on a rise of the RTT. Call before the first ACK.
    #[must_use]
    pub fn with_hystart(mut self, enabled: bool) -> Self {
        self.hystart = enabled.then(HyStart::new);
        self
    }

    /// Turns fast convergence (RFC 9438 section 4.7) on (the default) or off.
    #[must_use]
    pub fn with_fast_convergence(mut self, enabled: bool) -> Self {
        self.fast_convergence = enabled;
        self
    }

    /// W_max in bytes, if defined: the window CUBIC expects the path to hold.
    pub fn w_max(&self) -> Option<u32> {
        self.w_max.map(to_window)
    }

    /// ssthresh = max(flight * beta_cubic, 2*MSS) (RFC 9438 section 4.6).
    ///
    /// RFC 9438 allows cwnd or the flight size here. We take the flight
    /// size, as RFC 5681 section 3.1 (4) does: an application-limited
    /// sender's unused cwnd is no evidence that the path holds it, and with
    /// the flight size the RFC's extra rule for the cwnd variant (keep cwnd
    /// from growing beyond what is in flight) is not needed for the cut.
    fn reduced(&self, flight: u32) -> u32 {
        let cut = u64::from(flight) * BETA_NUM / BETA_DEN;
        u32::try_from(cut)
            .unwrap_or(u32::MAX)
            .max(self.mss.saturating_mul(2))
    }

    /// Feeds one RTT sample into the smoothed RTT (RFC 6298 section 2.3,
    /// alpha = 1/8), which RFC 9438 section 4.2 uses for the target.
    fn sample_rtt(&mut self, r: Duration) {
        self.srtt = Some(match self.srtt {
            None => r,
            Some(s) => {
                let s_us = s.as_micros();
                let r_us = r.as_micros();
                let us = (s_us.saturating_mul(7).saturating_add(r_us)) / 8;
                Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
            }
        });
    }

    /// Moves the epoch start later by the part of the time since the last
    /// ACK that must not count towards t (RFC 9438 section 5.8): all of it
    /// if the sender is not cwnd-limited; beyond two smoothed RTTs (an idle
    /// period the ACK clock did not see) if it is.
    fn advance_clock(&mut self, now: Instant, cwnd_limited: bool) {
        let gap = self
            .last_ack
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last));
        let counted = if cwnd_limited {
            let cap = self
                .srtt
                .map_or(GAP_CAP_WITHOUT_RTT, |s| s.saturating_mul(2))
                .max(GAP_CAP_FLOOR);
            gap.min(cap)
        } else {
            Duration::ZERO
        };
        if let Some(epoch) = self.epoch.as_mut() {
            epoch.start += gap.saturating_sub(counted);
        }
        // Time going backwards counts as no time: keep the latest instant.
        self.last_ack = Some(self.last_ack.map_or(now, |last| last.max(now)));
    }

    /// Slow start: cwnd += min(acked, MSS) (RFC 5681 section 3.1 (3.2)), or
    /// HyStart++'s growth in the initial slow start (RFC 9406 section 4.2).
    fn slow_start(&mut self, acked: u32, flight: u32, rtt: Option<Duration>, grow: bool) {
        let initial = self.ssthresh == u32::MAX;
        match self.hystart.as_mut() {
            Some(hs) if initial && hs.active() => {
                let step = hs.on_ack(acked, flight, self.mss, rtt);
                if grow {
                    self.cwnd = self.cwnd.saturating_add(step.increase);
                }
                if step.enter_avoidance {
                    // RFC 9406 section 4.2: ssthresh = cwnd. RFC 9438
                    // section 4.10: cwnd_prior = cwnd, and W_max is left
                    // undefined so the epoch starts with K = 0.
                    self.ssthresh = self.cwnd;
                    self.cwnd_prior = f64::from(self.cwnd);
                    self.w_max = None;
                    self.epoch = None;
                }
            }
            _ if grow => self.cwnd = self.cwnd.saturating_add(acked.min(self.mss)),
            _ => {}
        }
    }

    /// Begins a congestion avoidance stage at `now` with the current cwnd
    /// as cwnd_epoch (RFC 9438 section 4.2).
    fn start_epoch(&mut self, now: Instant) -> Epoch {
        let cwnd_epoch = f64::from(self.cwnd);
        let w_max = match self.w_max {
            Some(w) if w > cwnd_epoch => w,
            // W_max undefined (first stage after a timeout, section 4.8, or
            // after a slow start that ended without loss, section 4.10) or
            // already reached: W_max = cwnd_epoch and K = 0 (section 4.2).
            _ => cwnd_epoch,
        };
        self.w_max = Some(w_max);
        self.cwnd_frac = 0.0;
        let epoch = Epoch {
            start: now,
            k: cubic_k(w_max, cwnd_epoch, f64::from(self.mss)),
            // Section 4.3: W_est = cwnd_epoch at the start of the stage.
            w_est: cwnd_epoch,
        };
        self.epoch = Some(epoch);
        epoch
    }

    /// W_cubic(t) in bytes (RFC 9438 section 4.2, Figure 1), t in seconds.
    fn w_cubic(&self, epoch: &Epoch, t: f64) -> f64 {
        let w_max = self.w_max.unwrap_or(f64::from(self.cwnd));
        let d = t - epoch.k;
        C * f64::from(self.mss) * d * d * d + w_max
    }

    /// Congestion avoidance growth for one ACK of `acked` bytes (RFC 9438
    /// sections 4.2 to 4.5).
    fn congestion_avoidance(&mut self, now: Instant, acked: u32) {
        let mut epoch = match self.epoch {
            Some(epoch) => epoch,
            None => self.start_epoch(now),
        };
        let cwnd = f64::from(self.cwnd);
        let mss = f64::from(self.mss);
        // Nothing legitimately acknowledges more than a window at a time;
        // bounding it keeps a stretch ACK from overshooting the target.
        let acked = f64::from(acked.min(self.cwnd));
        // Section 4.3: W_est += alpha * segments_acked / cwnd, with alpha = 1
        // once W_est has reached cwnd_prior.
        let alpha = if epoch.w_est >= self.cwnd_prior {
            1.0
        } else {
            ALPHA
        };
        epoch.w_est = finite_or(epoch.w_est + alpha * mss * acked / cwnd, epoch.w_est);
        self.epoch = Some(epoch);

        let t = now.saturating_duration_since(epoch.start).as_secs_f64();
        let new_cwnd = if self.w_cubic(&epoch, t) < epoch.w_est {
            // Reno-friendly region (section 4.3): cwnd = W_est.
            epoch.w_est.max(cwnd)
        } else {
            // Concave (section 4.4) or convex (section 4.5) region: target =
            // W_cubic(t + RTT) clamped to [cwnd, 1.5*cwnd] (section 4.2),
            // cwnd += (target - cwnd) / cwnd per ACK, counted in bytes.
            let rtt = self.srtt.map_or(0.0, |r| r.as_secs_f64());
            let target = clamp_target(self.w_cubic(&epoch, t + rtt), cwnd);
            self.cwnd_frac += (target - cwnd) * acked / cwnd;
            let whole = finite_or(self.cwnd_frac.floor(), 0.0).max(0.0);
            self.cwnd_frac = finite_or(self.cwnd_frac - whole, 0.0).clamp(0.0, 1.0);
            (cwnd + whole).min(target)
        };
        self.cwnd = to_window(new_cwnd).max(self.cwnd).max(self.mss);
    }
}

/// K = cubic_root((W_max - cwnd_epoch) / C) in seconds, windows in bytes of
/// `mss` (RFC 9438 section 4.2, Figure 2); 0 if W_max <= cwnd_epoch.
fn cubic_k(w_max: f64, cwnd_epoch: f64, mss: f64) -> f64 {
    let deficit_segments = (w_max - cwnd_epoch) / mss;
    if deficit_segments.is_finite() && deficit_segments > 0.0 {
        finite_or((deficit_segments / C).cbrt(), 0.0)
    } else {
        0.0
    }
}

/// RFC 9438 section 4.2: target = W_cubic(t + RTT), at least cwnd and at
/// most 1.5 * cwnd. NaN counts as no growth.
fn clamp_target(w: f64, cwnd: f64) -> f64 {
    if w.is_nan() {
        cwnd
    } else {
        w.clamp(cwnd, cwnd * MAX_TARGET_GROWTH)
    }
}

/// `x` if it is a finite number, else `fallback`.
fn finite_or(x: f64, fallback: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        fallback
    }
}

/// A window in bytes from f64: truncated, NaN as 0, saturating at u32::MAX.
fn to_window(x: f64) -> u32 {
    // `as` from f64 saturates and maps NaN to 0 (Rust reference, "numeric cast").
    x as u32
}

impl Controller for Cubic {
    fn algorithm(&self) -> Algorithm {
        Algorithm::Cubic
    }

    fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn set_mss(&mut self, mss: u32) {
        let mss = mss.max(1);
        // Keep every window in segments: scale the f64 windows with the MSS.
        let scale = f64::from(mss) / f64::from(self.mss);
        self.w_max = self.w_max.map(|w| finite_or(w * scale, w));
        self.cwnd_prior = finite_or(self.cwnd_prior * scale, self.cwnd_prior);
        if let Some(epoch) = self.epoch.as_mut() {
            epoch.w_est = finite_or(epoch.w_est * scale, epoch.w_est);
        }
        self.cwnd = rescale_window(self.cwnd, self.mss, mss);
        self.mss = mss;
    }

    fn on_ack(&mut self, now: Instant, acked: u32, flight: u32, rtt: Option<Duration>) {
        if let Some(r) = rtt {
            self.sample_rtt(r);
        }
        let in_slow_start = self.cwnd < self.ssthresh;
        // RFC 9438 section 5.8: no growth while application- (or receiver-)
        // limited. In slow start as Linux does: at least half the window in
        // use; in congestion avoidance: no room for another full segment.
        let flight64 = u64::from(flight);
        let cwnd_limited = if in_slow_start {
            2 * flight64 >= u64::from(self.cwnd)
        } else {
            flight64 + u64::from(self.mss) > u64::from(self.cwnd)
        };
        self.advance_clock(now, cwnd_limited && !in_slow_start);
        if in_slow_start {
            self.slow_start(acked, flight, rtt, cwnd_limited);
        } else if cwnd_limited && acked > 0 {
            self.congestion_avoidance(now, acked);
        }
    }

    fn on_congestion_event(&mut self, _now: Instant, flight: u32) {
        let cwnd = f64::from(self.cwnd);
        // RFC 9438 section 4.7, fast convergence: a loss below the previous
        // W_max means the share of this flow shrinks; release more.
        self.w_max = Some(match self.w_max {
            Some(w_max) if self.fast_convergence && cwnd < w_max => cwnd * (1.0 + BETA) / 2.0,
            _ => cwnd,
        });
        // RFC 9438 section 4.6: cwnd_prior = cwnd, cwnd = ssthresh.
        self.cwnd_prior = cwnd;
        self.ssthresh = self.reduced(flight);
        self.cwnd = self.ssthresh.max(self.mss);
        // The next epoch begins with the first ACK after recovery.
        self.epoch = None;
        self.cwnd_frac = 0.0;
        if let Some(hs) = self.hystart.as_mut() {
            hs.stop();
        }
    }

    fn on_timeout(&mut self, _now: Instant, flight: u32) {
        // RFC 9438 section 4.8: ssthresh as in section 4.6, cwnd as RFC 5681
        // (one segment), and the first congestion avoidance stage after it
        // uses K = 0 and W_max = its starting window.
        self.cwnd_prior = f64::from(self.cwnd);
        self.ssthresh = self.reduced(flight);
        self.cwnd = self.mss;
        self.w_max = None;
        self.epoch = None;
        self.cwnd_frac = 0.0;
        if let Some(hs) = self.hystart.as_mut() {
            hs.stop();
        }
    }

    fn set_cwnd(&mut self, cwnd: u32) {
        self.cwnd = cwnd.max(self.mss);
    }

    fn on_recovery_end(&mut self, _now: Instant) {
        // RFC 6582 section 3.2 step 3: cwnd = ssthresh. The epoch (RFC 9438
        // section 4.2) starts with the next ACK.
        self.cwnd = self.ssthresh.max(self.mss);
        self.epoch = None;
        self.cwnd_frac = 0.0;
    }

    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;
    const RTT: Duration = Duration::from_millis(100);

    fn seg(n: u32) -> u32 {
        n * MSS
    }

    /// A CUBIC flow that has just lost at `w_max` segments with all of them
    /// in flight and finished recovery at time `now`.
    fn after_loss_at(w_max: u32, now: Instant) -> Cubic {
        let mut c = Cubic::new(MSS, 10);
        c.set_cwnd(seg(w_max));
        c.on_congestion_event(now, seg(w_max));
        c.on_recovery_end(now);
        c
    }

    /// One ACK per RTT for the whole (cwnd-limited) window, `rounds` times;
    /// returns cwnd after each.
    fn ack_per_rtt(c: &mut Cubic, now: &mut Instant, rtt: Duration, rounds: usize) -> Vec<u32> {
        let mut trace = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            *now += rtt;
            let w = c.cwnd();
            c.on_ack(*now, w, w, Some(rtt));
            trace.push(c.cwnd());
        }
        trace
    }

    fn growth(trace: &[u32]) -> u32 {
        trace[trace.len() - 1] - trace[0]
    }

    #[test]
    fn k_is_cube_root_of_deficit_over_c_rfc9438_4_2() {
        let mut now = Instant::from_millis(1000);
        let mut c = after_loss_at(100, now);
        ack_per_rtt(&mut c, &mut now, RTT, 1);
        let epoch = c.epoch.expect("epoch started");
        // W_max = 100, cwnd_epoch = 70: K = cbrt(30 / 0.4) = cbrt(75) s.
        assert!((epoch.k - 75f64.cbrt()).abs() < 1e-9, "K = {}", epoch.k);
        assert!((epoch.k - 4.2172).abs() < 1e-4);
        assert_eq!(epoch.start, now, "t is measured from the first ACK");
        assert_eq!(cubic_k(100.0, 100.0, 1.0), 0.0);
        assert_eq!(cubic_k(50.0, 100.0, 1.0), 0.0);
        assert_eq!(cubic_k(f64::NAN, 1.0, 1.0), 0.0);
    }

    #[test]
    fn congestion_event_cuts_to_beta_of_flight_and_remembers_w_max_rfc9438_4_6() {
        let mut c = Cubic::new(MSS, 10);
        c.set_cwnd(seg(100));
        c.on_congestion_event(Instant::ZERO, seg(100));
        assert_eq!(c.ssthresh(), seg(70));
        assert_eq!(c.cwnd(), seg(70));
        assert_eq!(c.w_max(), Some(seg(100)));
        // The cut follows the flight size; W_max is still the cwnd before it.
        let mut c = Cubic::new(MSS, 10);
        c.set_cwnd(seg(100));
        c.on_congestion_event(Instant::ZERO, seg(50));
        assert_eq!(c.cwnd(), seg(35));
        assert_eq!(c.w_max(), Some(seg(100)));
        // Never below 2 MSS.
        c.on_congestion_event(Instant::ZERO, MSS);
        assert_eq!((c.cwnd(), c.ssthresh()), (seg(2), seg(2)));
    }

    #[test]
    fn growth_is_concave_below_w_max_and_convex_above_rfc9438_4_4_4_5() {
        let mut now = Instant::ZERO;
        let mut c = after_loss_at(1000, now);
        // K = cbrt(300 / 0.4) = 9.09 s = about 91 RTTs.
        let trace = ack_per_rtt(&mut c, &mut now, RTT, 200);
        assert!(trace.windows(2).all(|w| w[0] <= w[1]), "never shrinks");
        // Concave: fast at first, slowing towards W_max.
        let early = growth(&trace[0..11]);
        let late = growth(&trace[75..86]);
        assert!(early > 3 * late, "early {early} late {late}");
        assert!(trace[85] < seg(1000));
        // Convex: slow around W_max, then faster and faster.
        let plateau = growth(&trace[90..101]);
        let beyond = growth(&trace[150..161]);
        assert!(plateau < seg(2), "plateau {plateau}");
        assert!(
            beyond > 10 * plateau.max(MSS),
            "plateau {plateau} beyond {beyond}"
        );
        // It still obeys the cubic: W_cubic(t + RTT) at t = 160 RTTs.
        // The ACK at t = 160 RTTs aims at W_cubic(16.1 s), in segments.
        let d = 16.1 - (300f64 / 0.4).cbrt();
        let w = 1000.0 + 0.4 * d * d * d;
        let got = f64::from(trace[160]) / 1000.0;
        assert!((got - w).abs() < 1.0, "{got} vs {w}");
    }

    #[test]
    fn cwnd_reaches_w_max_at_k_rfc9438_4_2() {
        let mut now = Instant::ZERO;
        let mut c = after_loss_at(1000, now);
        let trace = ack_per_rtt(&mut c, &mut now, RTT, 100);
        let k = c.epoch.expect("epoch").k;
        // The ACK at t = K - RTT sets cwnd to W_cubic(K) = W_max.
        let at_k = trace[(k / 0.1).round() as usize - 1];
        let err = (f64::from(at_k) - 1_000_000.0).abs() / 1_000_000.0;
        assert!(err < 0.005, "cwnd {at_k} at K");
    }

    #[test]
    fn reno_friendly_region_dominates_at_small_rtt_rfc9438_4_3() {
        let rtt = Duration::from_millis(1);
        let mut now = Instant::ZERO;
        let mut c = after_loss_at(20, now);
        // W_cubic(0) = cwnd_epoch = 14 segments; W_est = 14 + alpha.
        let trace = ack_per_rtt(&mut c, &mut now, rtt, 1);
        assert_eq!(trace[0], seg(14) + (ALPHA * 1000.0) as u32);
        // 20 RTTs = 20 ms later W_cubic has hardly moved (K = 2.47 s), but
        // Reno's estimate passed W_max: alpha, then 1 segment per RTT once
        // W_est >= cwnd_prior.
        let trace = ack_per_rtt(&mut c, &mut now, rtt, 19);
        let epoch = c.epoch.expect("epoch");
        let t = now.saturating_duration_since(epoch.start).as_secs_f64();
        assert!(c.w_cubic(&epoch, t) < f64::from(seg(15)));
        assert!(c.cwnd() > seg(25), "cwnd {}", c.cwnd());
        assert!(c.cwnd() <= seg(14 + 20), "no faster than Reno");
        assert_eq!(c.cwnd(), epoch.w_est as u32);
        let tail = &trace[10..];
        let per_rtt = growth(tail) / (tail.len() as u32 - 1);
        assert!((990..=1010).contains(&per_rtt), "{per_rtt} bytes per RTT");
    }

    #[test]
    fn fast_convergence_lowers_w_max_on_loss_below_it_rfc9438_4_7() {
        let mut c = after_loss_at(100, Instant::ZERO);
        c.set_cwnd(seg(90));
        c.on_congestion_event(Instant::ZERO, seg(90));
        assert_eq!(c.w_max(), Some(seg(90) * 85 / 100)); // 90 * (1 + 0.7) / 2
        assert_eq!(c.cwnd(), seg(63));
        // A loss above the previous W_max just records it.
        c.set_cwnd(seg(120));
        c.on_congestion_event(Instant::ZERO, seg(120));
        assert_eq!(c.w_max(), Some(seg(120)));
        // Without fast convergence W_max is the cwnd before the cut.
        let mut c = Cubic::new(MSS, 100).with_fast_convergence(false);
        c.on_congestion_event(Instant::ZERO, seg(100));
        c.set_cwnd(seg(90));
        c.on_congestion_event(Instant::ZERO, seg(90));
        assert_eq!(c.w_max(), Some(seg(90)));
    }

    #[test]
    fn timeout_resets_to_one_mss_and_restarts_epoch_with_k_zero_rfc9438_4_8() {
        let mut now = Instant::ZERO;
        let mut c = after_loss_at(100, now);
        ack_per_rtt(&mut c, &mut now, RTT, 5);
        assert!(c.epoch.is_some());
        let flight = c.cwnd();
        c.on_timeout(now, flight);
        assert_eq!(c.cwnd(), MSS);
        assert_eq!(c.ssthresh(), (u64::from(flight) * 7 / 10) as u32);
        assert!(c.epoch.is_none());
        assert_eq!(c.w_max(), None);
        // Slow start (RFC 5681) up to ssthresh, one segment per ACK.
        let mut acks = 0;
        while c.cwnd() < c.ssthresh() {
            now += Duration::from_millis(1);
            let w = c.cwnd();
            c.on_ack(now, MSS, w, Some(RTT));
            acks += 1;
        }
        assert!(c.epoch.is_none());
        assert_eq!(acks, (c.ssthresh() - MSS).div_ceil(MSS));
        // The first stage after the timeout: K = 0, W_max = cwnd_epoch.
        let cwnd_epoch = c.cwnd();
        now += RTT;
        c.on_ack(now, cwnd_epoch, cwnd_epoch, Some(RTT));
        let epoch = c.epoch.expect("epoch");
        assert_eq!(epoch.k, 0.0);
        assert_eq!(epoch.start, now);
        assert_eq!(c.w_max(), Some(cwnd_epoch));
    }

    #[test]
    fn application_limited_time_does_not_count_rfc9438_5_8() {
        let mut now = Instant::ZERO;
        let mut limited = after_loss_at(1000, now);
        let mut busy = limited.clone();
        let mut now_busy = now;
        ack_per_rtt(&mut limited, &mut now, RTT, 10);
        ack_per_rtt(&mut busy, &mut now_busy, RTT, 10);
        let before = limited.cwnd();
        // 10 s of ACKs while the application sends only half a window.
        for _ in 0..100 {
            now += RTT;
            limited.on_ack(now, seg(100), before / 2, Some(RTT));
        }
        assert_eq!(limited.cwnd(), before);
        // Then the window fills again: growth resumes where it paused.
        ack_per_rtt(&mut limited, &mut now, RTT, 10);
        ack_per_rtt(&mut busy, &mut now_busy, RTT, 10);
        assert_eq!(limited.cwnd(), busy.cwnd());
        // An idle gap of a minute between two full-window ACKs counts as
        // at most two RTTs.
        let w = busy.cwnd();
        now_busy += Duration::from_secs(60);
        busy.on_ack(now_busy, w, w, Some(RTT));
        assert!(busy.cwnd() < w + w / 10, "{w} -> {}", busy.cwnd());
    }

    #[test]
    fn set_mss_keeps_windows_in_segments() {
        let mut c = Cubic::new(536, 0);
        assert_eq!(c.cwnd(), 5360);
        c.set_mss(1460);
        assert_eq!(c.cwnd(), 14600);
        c.on_congestion_event(Instant::ZERO, 14600);
        c.set_mss(730);
        assert_eq!(c.w_max(), Some(7300));
        c.set_mss(0);
        assert!(c.cwnd() >= 1);
    }

    #[test]
    fn hystart_ends_initial_slow_start_on_rtt_rise_rfc9406() {
        let mut c = Cubic::new(MSS, 10).with_hystart(true);
        let mut now = Instant::ZERO;
        let mut rtt = Duration::from_millis(20);
        // Rounds of a full window; the queue adds 4 ms per round once the
        // window passes 100 segments.
        for _ in 0..20 {
            let w = c.cwnd();
            let acks = w / MSS;
            for i in 0..acks {
                now += rtt / acks;
                c.on_ack(now, MSS, w - i * MSS, Some(rtt));
            }
            if c.cwnd() > seg(100) {
                rtt += Duration::from_millis(4);
            }
            if c.ssthresh() != u32::MAX {
                break;
            }
        }
        assert_ne!(c.ssthresh(), u32::MAX, "HyStart++ left slow start");
        assert!(c.cwnd() >= c.ssthresh());
        assert!(c.cwnd() < seg(400), "exited early: {}", c.cwnd());
        // Off by default: the same path keeps doubling.
        assert!(Cubic::new(MSS, 10).hystart.is_none());
    }

    #[test]
    fn hostile_inputs_never_panic_and_keep_sane_windows() {
        let mut c = Cubic::new(1, 0).with_hystart(true);
        assert_eq!(c.cwnd(), 10);
        let mut now = Instant::from_millis(5000);
        // Huge ACKs, zero RTT, time going backwards, u32 saturation.
        for i in 0..200u32 {
            let back = i % 3 == 0;
            now = if back {
                Instant::from_micros(now.total_micros().saturating_sub(7000))
            } else {
                now + Duration::from_millis(3)
            };
            let rtt = [None, Some(Duration::ZERO), Some(Duration::MAX)][(i % 3) as usize];
            c.on_ack(now, u32::MAX, u32::MAX, rtt);
            assert!(c.cwnd() >= 1);
            if i == 50 {
                c.on_congestion_event(now, u32::MAX);
                assert_eq!(c.ssthresh(), (u64::from(u32::MAX) * 7 / 10) as u32);
            }
            if i == 120 {
                c.set_cwnd(u32::MAX);
            }
        }
        assert_eq!(c.cwnd(), u32::MAX);
        c.on_timeout(Instant::ZERO, 0);
        assert_eq!((c.cwnd(), c.ssthresh()), (1, 2));
        c.on_ack(Instant::ZERO, 0, 0, None);
        c.set_mss(u32::MAX);
        c.on_ack(
            Instant::from_micros(u64::MAX),
            u32::MAX,
            u32::MAX,
            Some(Duration::MAX),
        );
        c.on_congestion_event(Instant::from_micros(u64::MAX), u32::MAX);
        c.on_recovery_end(Instant::ZERO);
        c.on_ack(Instant::from_micros(u64::MAX), u32::MAX, u32::MAX, None);
        assert_eq!(c.cwnd(), u32::MAX);
        // A congestion avoidance epoch a whole u64 of microseconds long.
        let mut c = after_loss_at(100, Instant::ZERO);
        c.on_ack(Instant::ZERO, seg(70), seg(70), None);
        let before = c.cwnd();
        c.on_ack(
            Instant::from_micros(u64::MAX),
            before,
            before,
            Some(Duration::MAX),
        );
        // At most the 1.5 * cwnd target bound of RFC 9438 section 4.2.
        assert_eq!(c.cwnd(), before + before / 2, "{c:?}");
    }
}
