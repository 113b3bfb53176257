//! HyStart++ (RFC 9406): leave the initial slow start when the RTT starts
//! to rise, before the queue overflows, through a few rounds of
//! Conservative Slow Start (CSS) that can still return to slow start if the
//! rise was a false alarm.
//!
//! Rounds are found without sequence numbers: a round ends when the bytes
//! acknowledged since it began cover what was outstanding when it began
//! (RFC 9406 section 4.2's `windowEnd = SND.NXT`, counted from SND.UNA).

use std::time::Duration;

/// RFC 9406 section 4.3: lower bound of the delay-increase threshold.
const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
/// RFC 9406 section 4.3: upper bound of the delay-increase threshold.
const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
/// RFC 9406 section 4.3: the threshold is lastRoundMinRTT / MIN_RTT_DIVISOR.
const MIN_RTT_DIVISOR: u32 = 8;
/// RFC 9406 section 4.3: RTT samples a round needs before it is judged.
const N_RTT_SAMPLE: u32 = 8;
/// RFC 9406 section 4.3: CSS grows this many times slower than slow start.
const CSS_GROWTH_DIVISOR: u32 = 4;
/// RFC 9406 section 4.3: rounds of CSS before congestion avoidance.
const CSS_ROUNDS: u32 = 5;
/// RFC 9406 section 4.3: L, the per-ACK growth limit in segments for a
/// sender that does not pace (this stack does not).
const L: u32 = 8;

/// Where HyStart++ is in the initial slow start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Standard slow start with delay-increase detection.
    SlowStart,
    /// Conservative Slow Start after a delay increase.
    Css {
        /// cssBaselineMinRtt: the round minimum that triggered CSS.
        baseline: Duration,
        /// Round boundaries crossed since CSS began.
        rounds: u32,
    },
    /// Finished (exited to congestion avoidance, or a loss ended slow start).
    Done,
}

/// What the slow start should do with one ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    /// Bytes to add to cwnd.
    pub(crate) increase: u32,
    /// CSS is over: set ssthresh = cwnd and enter congestion avoidance
    /// (RFC 9406 section 4.2).
    pub(crate) enter_avoidance: bool,
}

/// HyStart++ state of one connection.
#[derive(Clone, Debug)]
pub(crate) struct HyStart {
    phase: Phase,
    /// Bytes still to be acknowledged before the current round ends; `None`
    /// before the first round.
    round_left: Option<u32>,
    /// lastRoundMinRTT.
    last_round_min: Option<Duration>,
    /// currentRoundMinRTT.
    current_round_min: Option<Duration>,
    /// rttSampleCount.
    samples: u32,
    /// The current round began in CSS (and so counts toward CSS_ROUNDS).
    round_started_in_css: bool,
}

impl HyStart {
    /// A new HyStart++ for the initial slow start.
    pub(crate) fn new() -> Self {
        HyStart {
            phase: Phase::SlowStart,
            round_left: None,
            last_round_min: None,
            current_round_min: None,
            samples: 0,
            round_started_in_css: false,
        }
    }

    /// The current phase.
    #[cfg(test)]
    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// True until HyStart++ has handed over to congestion avoidance or a
    /// loss ended the initial slow start.
    pub(crate) fn active(&self) -> bool {
        self.phase != Phase::Done
    }

    /// A loss (or timeout) ends the initial slow start; HyStart++ is used
    /// only there (RFC 9406 section 4.3).
    pub(crate) fn stop(&mut self) {
        self.phase = Phase::Done;
    }

    /// One ACK in slow start: `acked` new bytes, `flight` bytes outstanding
    /// before it, `rtt` its RTT sample if any (RFC 9406 section 4.2).
    pub(crate) fn on_ack(
        &mut self,
        acked: u32,
        flight: u32,
        mss: u32,
        rtt: Option<Duration>,
    ) -> Step {
        let mut step = Step {
            increase: 0,
            enter_avoidance: false,
        };
        if !self.active() {
            return step;
        }
        // RFC 9406 section 4.2: cwnd += min(N, L*SMSS) in slow start, and
        // that divided by CSS_GROWTH_DIVISOR in CSS.
        let n = acked.min(mss.saturating_mul(L));
        step.increase = match self.phase {
            Phase::Css { .. } => n / CSS_GROWTH_DIVISOR,
            _ => n,
        };
        let left = match self.round_left {
            Some(left) => left,
            // No round in progress: one starts with this ACK, windowEnd =
            // SND.NXT, i.e. everything outstanding before it.
            None => self.start_round(flight),
        };
        if let Some(rtt) = rtt {
            self.current_round_min = Some(self.current_round_min.map_or(rtt, |m| m.min(rtt)));
            self.samples = self.samples.saturating_add(1);
        }
        self.judge_round();
        let left = left.saturating_sub(acked);
        self.round_left = Some(left);
        if left == 0 {
            step.enter_avoidance = self.end_round(flight.saturating_sub(acked));
        }
        step
    }

    /// Starts a round with `left` bytes outstanding up to windowEnd; the
    /// minimum of the round before becomes lastRoundMinRTT.
    fn start_round(&mut self, left: u32) -> u32 {
        self.last_round_min = self.current_round_min.take();
        self.samples = 0;
        self.round_started_in_css = matches!(self.phase, Phase::Css { .. });
        self.round_left = Some(left);
        left
    }

    /// windowEnd was acknowledged with `outstanding` bytes still in flight:
    /// the round is over. Returns true if CSS is complete: CSS_ROUNDS full
    /// rounds of it, then ssthresh = cwnd (RFC 9406 section 4.2).
    fn end_round(&mut self, outstanding: u32) -> bool {
        if let Phase::Css { baseline, rounds } = self.phase {
            // The round in which CSS began does not count: it was partly
            // slow start.
            let rounds = rounds.saturating_add(u32::from(self.round_started_in_css));
            if rounds >= CSS_ROUNDS {
                self.phase = Phase::Done;
                return true;
            }
            self.phase = Phase::Css { baseline, rounds };
        }
        if outstanding > 0 {
            // The next round begins now, up to the current SND.NXT.
            self.start_round(outstanding);
        } else {
            // Nothing outstanding: the next ACK, for data not yet sent, begins it.
            self.round_left = None;
        }
        false
    }

    /// The delay checks of RFC 9406 section 4.2, once the round has
    /// N_RTT_SAMPLE samples.
    fn judge_round(&mut self) {
        if self.samples < N_RTT_SAMPLE {
            return;
        }
        let Some(current) = self.current_round_min else {
            return;
        };
        match self.phase {
            Phase::SlowStart => {
                let Some(last) = self.last_round_min else {
                    return;
                };
                let thresh = (last / MIN_RTT_DIVISOR).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH);
                if current >= last.saturating_add(thresh) {
                    // Delay increase: exit slow start into CSS.
                    self.phase = Phase::Css {
                        baseline: current,
                        rounds: 0,
                    };
                }
            }
            Phase::Css { baseline, .. } if current < baseline => {
                // The delay rise was spurious: back to slow start.
                self.phase = Phase::SlowStart;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// One round of `acks` ACKs of one segment each, every one with RTT
    /// `rtt`, with `flight` = `acks` segments at its start. Returns the
    /// summed increase and whether CSS handed over to congestion avoidance.
    fn round(h: &mut HyStart, acks: u32, rtt: Duration) -> (u32, bool) {
        let mut increase = 0;
        for i in 0..acks {
            let step = h.on_ack(MSS, (acks - i) * MSS, MSS, Some(rtt));
            increase += step.increase;
            if step.enter_avoidance {
                return (increase, true);
            }
        }
        (increase, false)
    }

    #[test]
    fn flat_rtt_stays_in_slow_start_rfc9406_4_2() {
        let mut h = HyStart::new();
        for _ in 0..10 {
            let (inc, done) = round(&mut h, 16, ms(50));
            assert_eq!(inc, 16 * MSS);
            assert!(!done);
        }
        assert_eq!(h.phase(), Phase::SlowStart);
    }

    #[test]
    fn rtt_rise_enters_css_with_quarter_growth_rfc9406_4_2() {
        let mut h = HyStart::new();
        round(&mut h, 16, ms(100));
        // Threshold: max(4 ms, min(100/8, 16) ms) = 12.5 ms.
        round(&mut h, 16, ms(112));
        assert_eq!(h.phase(), Phase::SlowStart);
        round(&mut h, 16, ms(113));
        assert_eq!(h.phase(), Phase::SlowStart, "112 -> 113 ms is no rise");
        // Threshold now max(4, min(113/8, 16)) = 14.125 ms.
        let (inc, _) = round(&mut h, 16, ms(127));
        assert_eq!(h.phase(), Phase::SlowStart);
        let (inc2, _) = round(&mut h, 16, ms(128 + 15));
        assert_eq!(inc, 16 * MSS);
        assert_eq!(
            h.phase(),
            Phase::Css {
                baseline: ms(143),
                rounds: 0
            }
        );
        // 8 ACKs at slow start pace (the 8th sample triggers), then 8 at CSS pace.
        assert_eq!(inc2, 8 * MSS + 8 * MSS / CSS_GROWTH_DIVISOR);
    }

    #[test]
    fn rtt_drop_in_css_resumes_slow_start_rfc9406_4_2() {
        let mut h = HyStart::new();
        round(&mut h, 16, ms(10));
        round(&mut h, 16, ms(20)); // 10 ms + max(4 ms, 1.25 ms)
        assert!(matches!(h.phase(), Phase::Css { .. }));
        round(&mut h, 16, ms(15));
        assert_eq!(h.phase(), Phase::SlowStart);
    }

    #[test]
    fn css_rounds_end_in_congestion_avoidance_rfc9406_4_2() {
        let mut h = HyStart::new();
        round(&mut h, 16, ms(10));
        round(&mut h, 16, ms(20));
        let mut rounds = 0;
        loop {
            rounds += 1;
            let (_, done) = round(&mut h, 16, ms(20));
            if done {
                break;
            }
            assert!(rounds < 10);
        }
        assert_eq!(rounds, CSS_ROUNDS);
        assert!(!h.active());
        assert_eq!(round(&mut h, 4, ms(20)), (0, false));
    }

    #[test]
    fn few_samples_or_no_samples_never_exit_rfc9406_4_2() {
        let mut h = HyStart::new();
        // Rounds of 4 ACKs: fewer than N_RTT_SAMPLE samples each.
        for r in 0..10 {
            round(&mut h, 4, ms(10 + 10 * r));
        }
        assert_eq!(h.phase(), Phase::SlowStart);
        for _ in 0..40 {
            assert_eq!(h.on_ack(MSS, 16 * MSS, MSS, None).increase, MSS);
        }
        assert_eq!(h.phase(), Phase::SlowStart);
    }

    #[test]
    fn growth_per_ack_is_limited_to_l_segments_rfc9406_4_2() {
        let mut h = HyStart::new();
        assert_eq!(
            h.on_ack(u32::MAX, u32::MAX, MSS, Some(ms(1))).increase,
            L * MSS
        );
        assert_eq!(h.on_ack(u32::MAX, 0, u32::MAX, None).increase, u32::MAX);
        h.stop();
        assert_eq!(h.on_ack(MSS, MSS, MSS, None).increase, 0);
    }
}
