//! Congestion control: slow start, congestion avoidance, fast retransmit and
//! NewReno fast recovery (RFC 5681, RFC 6582), initial window per RFC 6928.
//!
//! The connection reports events (new data acknowledged, a duplicate ACK, a
//! retransmission timeout); this module answers with the congestion window
//! and tells the connection when to retransmit.

use crate::seq::SeqNum;

/// What the connection must do after a duplicate ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DupAckAction {
    /// Nothing yet (first or second duplicate, or already recovering).
    None,
    /// Third duplicate ACK: retransmit the segment at SND.UNA now (RFC 5681 section 3.2 step 2).
    FastRetransmit,
}

/// What the connection must do after an ACK of new data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckAction {
    /// Nothing special.
    None,
    /// A partial ACK during fast recovery: retransmit the next hole at the
    /// new SND.UNA (RFC 6582 section 3.2 step 3).
    RetransmitNextHole,
    /// The ACK covered `recover`: fast recovery is over.
    RecoveryDone,
}

/// Congestion state of one connection, in bytes.
#[derive(Clone, Debug)]
pub struct Congestion {
    mss: u32,
    /// Congestion window (cwnd).
    cwnd: u32,
    /// Slow start threshold (ssthresh).
    ssthresh: u32,
    /// Consecutive duplicate ACKs seen.
    dup_acks: u32,
    /// In fast recovery, the highest sequence number sent when it began (RFC 6582 "recover").
    recover: Option<SeqNum>,
    /// Bytes acknowledged during congestion avoidance not yet turned into cwnd growth.
    ca_acked: u32,
}

impl Congestion {
    /// Initial state for a sender whose segments carry `mss` bytes:
    /// IW = min(10*MSS, max(2*MSS, 14600)) (RFC 6928 section 2), ssthresh arbitrarily high.
    pub fn new(mss: u32, initial_window_segments: u32) -> Self {
        let mss = mss.max(1);
        let iw = if initial_window_segments == 0 {
            (10 * mss).min((2 * mss).max(14600))
        } else {
            initial_window_segments.saturating_mul(mss)
        };
        Congestion {
            mss,
            cwnd: iw,
            ssthresh: u32::MAX,
            dup_acks: 0,
            recover: None,
            ca_acked: 0,
        }
    }

    /// Changes the segment size (e.g. once the peer's MSS is known); keeps the window in segments.
    pub fn set_mss(&mut self, mss: u32) {
        let mss = mss.max(1);
        let segments = (self.cwnd / self.mss).max(1);
        self.mss = mss;
        self.cwnd = segments.saturating_mul(mss);
    }

    /// The congestion window in bytes.
    pub fn cwnd(&self) -> u32 {
        self.cwnd
    }

    /// The slow start threshold in bytes.
    pub fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    /// Consecutive duplicate ACKs seen so far.
    pub fn dup_acks(&self) -> u32 {
        self.dup_acks
    }

    /// True during NewReno fast recovery.
    pub fn in_recovery(&self) -> bool {
        self.recover.is_some()
    }

    /// New data was acknowledged: `acked` bytes, with `flight` bytes outstanding before the ACK.
    pub fn on_ack(&mut self, ack: SeqNum, acked: u32) -> AckAction {
        self.dup_acks = 0;
        if let Some(recover) = self.recover {
            if ack.ge(recover) {
                // Full ACK: RFC 6582 section 3.2 step 3, "full acknowledgment":
                // deflate the window to ssthresh.
                self.recover = None;
                self.cwnd = self.ssthresh.max(self.mss);
                return AckAction::RecoveryDone;
            }
            // Partial ACK: deflate by the amount acked, add back one MSS
            // if at least one MSS was acked (RFC 6582 section 3.2 step 3).
            self.cwnd = self.cwnd.saturating_sub(acked);
            if acked >= self.mss {
                self.cwnd = self.cwnd.saturating_add(self.mss);
            }
            self.cwnd = self.cwnd.max(self.mss);
            return AckAction::RetransmitNextHole;
        }
        if self.cwnd < self.ssthresh {
            // Slow start, RFC 5681 section 3.1 (3.2): cwnd += min(N, SMSS).
            self.cwnd = self.cwnd.saturating_add(acked.min(self.mss));
        } else {
            // Congestion avoidance, RFC 5681 section 3.1 (3.3): about one MSS per RTT,
            // counted in bytes acked (appropriate byte counting, RFC 3465).
            self.ca_acked = self.ca_acked.saturating_add(acked);
            if self.ca_acked >= self.cwnd {
                self.ca_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(self.mss);
            }
        }
        AckAction::None
    }

    /// A duplicate ACK arrived (RFC 5681 section 3.2) while `flight` bytes
    /// are outstanding and `snd_max` is the highest sequence number sent.
    pub fn on_dup_ack(&mut self, flight: u32, snd_max: SeqNum) -> DupAckAction {
        self.dup_acks = self.dup_acks.saturating_add(1);
        if self.recover.is_some() {
            // Fast recovery: each further duplicate inflates cwnd by one MSS (step 4).
            self.cwnd = self.cwnd.saturating_add(self.mss);
            return DupAckAction::None;
        }
        if self.dup_acks == 3 {
            self.enter_recovery(flight, snd_max);
            return DupAckAction::FastRetransmit;
        }
        DupAckAction::None
    }

    /// Loss detected (third duplicate ACK, or enough SACKed data above
    /// SND.UNA, RFC 6675 section 5): RFC 5681 (4): ssthresh = max(FlightSize
    /// / 2, 2*SMSS), cwnd = ssthresh + 3*SMSS; recovery lasts until `snd_max`
    /// is acknowledged (RFC 6582 "recover").
    pub fn enter_recovery(&mut self, flight: u32, snd_max: SeqNum) {
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.ssthresh.saturating_add(3 * self.mss);
        self.recover = Some(snd_max);
    }

    /// The last loss response was spurious (RFC 4015): go back to the
    /// window and threshold from before it, and leave recovery.
    pub fn undo(&mut self, cwnd: u32, ssthresh: u32) {
        self.cwnd = cwnd.max(self.mss);
        self.ssthresh = ssthresh;
        self.recover = None;
        self.dup_acks = 0;
        self.ca_acked = 0;
    }

    /// The retransmission timer expired (RFC 5681 section 3.1 (4)):
    /// ssthresh = max(FlightSize / 2, 2*SMSS), cwnd = 1 MSS, leave recovery.
    pub fn on_timeout(&mut self, flight: u32) {
        self.ssthresh = (flight / 2).max(2 * self.mss);
        self.cwnd = self.mss;
        self.dup_acks = 0;
        self.recover = None;
        self.ca_acked = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_window_is_ten_segments_rfc6928() {
        let c = Congestion::new(1460, 0);
        assert_eq!(c.cwnd(), 14600);
        let c = Congestion::new(536, 0);
        assert_eq!(c.cwnd(), 5360);
        let c = Congestion::new(1000, 4);
        assert_eq!(c.cwnd(), 4000);
    }

    #[test]
    fn slow_start_grows_one_mss_per_ack_rfc5681_3_1() {
        let mut c = Congestion::new(1000, 2);
        assert_eq!(c.on_ack(SeqNum(1000), 1000), AckAction::None);
        assert_eq!(c.cwnd(), 3000);
        // An ACK of 5 segments still only adds one MSS (RFC 5681 (3.2)).
        c.on_ack(SeqNum(6000), 5000);
        assert_eq!(c.cwnd(), 4000);
    }

    #[test]
    fn third_dup_ack_enters_fast_recovery_rfc5681_3_2() {
        let mut c = Congestion::new(1000, 10);
        assert_eq!(c.on_dup_ack(10_000, SeqNum(10_000)), DupAckAction::None);
        assert_eq!(c.on_dup_ack(10_000, SeqNum(10_000)), DupAckAction::None);
        assert_eq!(
            c.on_dup_ack(10_000, SeqNum(10_000)),
            DupAckAction::FastRetransmit
        );
        assert_eq!(c.ssthresh(), 5000);
        assert_eq!(c.cwnd(), 8000);
        assert!(c.in_recovery());
        // Fourth duplicate inflates.
        assert_eq!(c.on_dup_ack(10_000, SeqNum(10_000)), DupAckAction::None);
        assert_eq!(c.cwnd(), 9000);
        // Partial ACK: NewReno retransmits the next hole.
        assert_eq!(c.on_ack(SeqNum(3000), 3000), AckAction::RetransmitNextHole);
        assert!(c.in_recovery());
        // Full ACK ends recovery with cwnd = ssthresh.
        assert_eq!(c.on_ack(SeqNum(10_000), 7000), AckAction::RecoveryDone);
        assert_eq!(c.cwnd(), 5000);
        assert!(!c.in_recovery());
    }

    #[test]
    fn congestion_avoidance_adds_one_mss_per_window() {
        let mut c = Congestion::new(1000, 10);
        c.on_timeout(8000); // ssthresh 4000, cwnd 1000
        assert_eq!(c.cwnd(), 1000);
        assert_eq!(c.ssthresh(), 4000);
        for i in 0..3 {
            c.on_ack(SeqNum(i * 1000), 1000);
        }
        assert_eq!(c.cwnd(), 4000);
        // Now in congestion avoidance: needs a full cwnd of ACKs for +1 MSS.
        for i in 0..3 {
            c.on_ack(SeqNum(i * 1000), 1000);
            assert_eq!(c.cwnd(), 4000);
        }
        c.on_ack(SeqNum(9000), 1000);
        assert_eq!(c.cwnd(), 5000);
    }
}
