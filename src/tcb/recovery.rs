//! Loss detection and recovery: the retransmission timeout (RFC 6298),
//! duplicate ACKs and fast retransmit (RFC 5681), the SACK scoreboard and
//! pipe (RFC 6675), lost retransmissions, tail loss probes (RFC 8985
//! section 7), Karn's rule and RTT samples (RFC 6298, RFC 7323 section 4),
//! and the Eifel undo of spurious retransmissions (RFC 3522, RFC 4015).
//!
//! The congestion controller only does window arithmetic; this module
//! decides *when* something was lost and what to resend.

use std::time::Duration;

use log::{debug, trace};

use super::timer::Timer;
use super::{Tcb, TcpError};
use crate::cc::Controller;
use crate::sack::Scoreboard;
use crate::seq::SeqNum;
use crate::state::State;
use crate::time::Instant;

/// The duplicate ACK that triggers fast retransmit (RFC 5681 section 3.2).
const DUP_THRESH: u32 = 3;

/// The state before a loss response, kept to undo it if the retransmission
/// turns out to have been unnecessary (the Eifel algorithm, RFC 3522).
#[derive(Clone, Debug)]
pub(super) struct Undo {
    /// The segment that was retransmitted.
    seq: SeqNum,
    /// Our TSval when it was retransmitted.
    tsval: u32,
    /// The congestion controller as it was before the reduction.
    cc: Box<dyn Controller>,
}

/// What an ACK of new data means for fast recovery (RFC 6582 section 3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RecoveryAck {
    /// Not in recovery.
    Outside,
    /// A partial ACK: the next hole is lost too.
    Partial,
    /// The ACK covers "recover": recovery is over.
    Full,
}

/// Everything loss recovery remembers between segments.
#[derive(Debug)]
pub(super) struct Recovery {
    /// What the peer reported holding above SND.UNA (RFC 6675).
    pub(super) scoreboard: Scoreboard,
    /// In SACK recovery: holes below this were already retransmitted (HighRxt).
    pub(super) high_rxt: SeqNum,
    /// When SND.UNA was last retransmitted in recovery (to spot a lost retransmission).
    pub(super) una_rxt: Option<(SeqNum, Instant)>,
    /// What to restore if the last loss episode proves spurious (RFC 3522).
    pub(super) undo: Option<Undo>,
    /// The tail loss probe timer fired: the next transmission is a probe.
    pub(super) tlp_pending: bool,
    /// A probe is out and unanswered: no second one until new data is acked.
    pub(super) tlp_outstanding: bool,
    /// RTT measurement in progress: (sequence number to be acked, when sent).
    pub(super) rtt_probe: Option<(SeqNum, Instant)>,
    /// Karn's rule blocks RTT samples since a retransmission; a timestamp echo may unblock.
    pub(super) karn_blocked: bool,
    /// Our TSval when that retransmission happened: only echoes of it or later time anything.
    pub(super) karn_tsval: u32,
    /// Consecutive retransmission timeouts (reset by an ACK of new data).
    pub(super) retries: u32,
    /// Consecutive duplicate ACKs (RFC 5681 section 3.2).
    pub(super) dup_acks: u32,
    /// In fast recovery: the highest sequence number sent when it began
    /// (RFC 6582's "recover").
    pub(super) recover: Option<SeqNum>,
    /// After a retransmission timeout: SND.MAX when it fired. No fast
    /// recovery until SND.UNA reaches it (RFC 6582 section 3.2 step 1,
    /// RFC 6675 section 5.1): the timeout already cut the window, and the
    /// SACKs and duplicate ACKs for what was in flight before it are no
    /// news of a second congestion event.
    pub(super) rto_recover: Option<SeqNum>,
}

impl Recovery {
    pub(super) fn new(iss: SeqNum) -> Self {
        Recovery {
            scoreboard: Scoreboard::new(),
            high_rxt: iss,
            una_rxt: None,
            undo: None,
            tlp_pending: false,
            tlp_outstanding: false,
            rtt_probe: None,
            karn_blocked: false,
            karn_tsval: 0,
            retries: 0,
            dup_acks: 0,
            recover: None,
            rto_recover: None,
        }
    }

    /// True during fast recovery (RFC 6582, RFC 6675).
    pub(super) fn in_recovery(&self) -> bool {
        self.recover.is_some()
    }

    /// True while what was in flight when the retransmission timer last
    /// fired is not all acknowledged (`una` is SND.UNA): no fast recovery
    /// then.
    fn after_timeout(&self, una: SeqNum) -> bool {
        self.rto_recover.is_some_and(|point| una.lt(point))
    }
}

impl Tcb {
    /// The retransmission timer expired (RFC 6298 section 5.4-5.6, RFC 5681 section 3.1).
    pub(super) fn on_rto(&mut self, now: Instant) {
        let limit = match self.state {
            State::SynSent | State::SynReceived => self.cfg.max_syn_retries,
            _ => self.cfg.max_retries,
        };
        if !self.snd.has_flight() {
            return; // acked in the meantime
        }
        if self.snd.wnd == 0 && !self.snd.buf.is_empty() {
            // The peer shrank its window to zero with data in flight. That is
            // no loss: probe the window instead of timing the connection out
            // (RFC 1122 4.2.2.16); the output arms the persist timer.
            self.snd.nxt = self.snd.una;
            self.pending.probe = true;
            return;
        }
        if self.user_timeout_passed(now) {
            self.enter_closed(Some(TcpError::TimedOut));
            return;
        }
        let by_user_timeout = self.cfg.user_timeout.is_some() && self.state.is_synchronized();
        if self.rec.retries >= limit && !by_user_timeout {
            debug!(
                "{} -> {}: giving up after {} retransmissions",
                self.local, self.remote, self.rec.retries
            );
            self.enter_closed(Some(TcpError::TimedOut));
            return;
        }
        self.rec.retries += 1;
        self.stats.retransmits_timeout += 1;
        self.rtt.on_timeout();
        let flight = self.snd.flight() as u32;
        self.remember_for_undo(now);
        self.cc.on_timeout(now, flight);
        self.rec.dup_acks = 0;
        self.rec.recover = None;
        self.rec.rto_recover = Some(self.snd.max);
        // Karn's rule: no RTT sample from anything sent before the timeout.
        // After a timeout the echo threshold moves up to now: if only our
        // ACK was lost, the peer answers this copy as a duplicate, echoing
        // the earlier copy's timestamp, which would time the timeout itself.
        self.karn_block(now);
        self.rec.karn_tsval = self.tsval(now);
        self.timers.stop(Timer::TailLossProbe);
        self.rec.tlp_pending = false;
        debug!(
            "{} -> {}: retransmission timeout #{} in {}, resending from {} (rto now {:?})",
            self.local,
            self.remote,
            self.rec.retries,
            self.state,
            self.snd.una,
            self.rtt.rto()
        );
        // Go back to SND.UNA; the output resends as the (now one-segment) window allows.
        self.snd.nxt = self.snd.una;
        self.timers.set(Timer::Retransmit, now + self.rtt.rto());
    }

    /// The tail loss probe timer expired (RFC 8985 section 7.3).
    pub(super) fn on_tlp_timeout(&mut self, now: Instant) {
        if self.rec.tlp_outstanding || !self.snd.has_flight() {
            return;
        }
        if !self.rec.in_recovery() {
            self.rec.tlp_pending = true;
            return;
        }
        // In recovery with too little in flight for SACKs to show that a
        // retransmission was lost: probe with SND.UNA's segment now rather
        // than wait for the RTO.
        self.rec.tlp_outstanding = true;
        self.stats.tail_loss_probes += 1;
        self.pending.retransmit_una = true;
        // RFC 8985 section 7.3: re-arm the RTO after the probe.
        if self.timers.get(Timer::Retransmit).is_some_and(|t| t > now) {
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
        }
    }

    /// A duplicate ACK for SND.UNA (RFC 5681 section 2): count it, and on the
    /// third retransmit SND.UNA (RFC 5681 section 3.2) unless what a timeout
    /// resent is still unacknowledged (RFC 6582 section 3.2 step 1, "recover"
    /// after a timeout); during recovery each
    /// further one inflates cwnd by an MSS (RFC 6582 section 3.2 step 4) and,
    /// with SACK, may show that a retransmission was lost as well.
    pub(super) fn on_duplicate_ack(&mut self, now: Instant, ack: SeqNum) {
        self.stats.dup_acks += 1;
        self.rec.dup_acks = self.rec.dup_acks.saturating_add(1);
        if self.rec.in_recovery() {
            let mss = self.payload_mss() as u32;
            self.cc.set_cwnd(self.cc.cwnd().saturating_add(mss));
            if self.opts.sack {
                self.detect_lost_retransmission(now);
            }
            return;
        }
        if self.rec.dup_acks == DUP_THRESH && !self.rec.after_timeout(self.snd.una) {
            self.rec.undo = self.undo_point(now);
            debug!(
                "{} -> {}: third duplicate ACK for {}, fast retransmit",
                self.local, self.remote, ack
            );
            self.enter_recovery(now);
            self.start_fast_retransmit(now);
        }
    }

    /// Loss detected (third duplicate ACK, or enough SACKed data above
    /// SND.UNA, RFC 6675 section 5): the controller cuts ssthresh, cwnd =
    /// ssthresh + 3*SMSS (RFC 5681 section 3.2 step 4), and recovery lasts
    /// until SND.MAX is acknowledged (RFC 6582 "recover").
    fn enter_recovery(&mut self, now: Instant) {
        let flight = self.snd.flight() as u32;
        let mss = self.payload_mss() as u32;
        self.cc.on_congestion_event(now, flight);
        self.cc.set_cwnd(self.cc.ssthresh().saturating_add(3 * mss));
        self.rec.recover = Some(self.snd.max);
    }

    /// Later segments keep arriving but SND.UNA's retransmission does not:
    /// after twice the RTT it was lost as well (the idea of RACK, RFC 8985
    /// section 6.2); resend it instead of waiting for the retransmission timer.
    fn detect_lost_retransmission(&mut self, now: Instant) {
        let (Some((seq, at)), Some(srtt)) = (self.rec.una_rxt, self.rtt.srtt()) else {
            return;
        };
        let wait = (2 * srtt).max(Duration::from_millis(2));
        if seq == self.snd.una && now.saturating_duration_since(at) > wait {
            debug!(
                "{} -> {}: retransmission of {} lost too, resending",
                self.local, self.remote, seq
            );
            self.stats.lost_retransmits += 1;
            self.pending.retransmit_una = true;
        }
    }

    /// RFC 6675 section 5 (IsLost(SND.UNA)): more than 2 segments SACKed
    /// above SND.UNA mean it is lost, even if duplicate ACKs went missing.
    /// After a tail loss probe, an answer that still leaves SND.UNA behind
    /// SACKed data shows the loss too (RFC 8985 section 7.4: the probe was
    /// sent last, so what came before it and is missing is lost).
    pub(super) fn detect_loss_by_sack(&mut self, now: Instant, probe_answered: bool) {
        let sb = &self.rec.scoreboard;
        let lost = sb.sacked_bytes() > 2 * self.payload_mss() || (probe_answered && !sb.is_empty());
        if !self.opts.sack
            || self.rec.in_recovery()
            || self.rec.after_timeout(self.snd.una)
            || !self.snd.has_flight()
            || !lost
        {
            return;
        }
        debug!(
            "{} -> {}: SACKs show {} lost, fast retransmit",
            self.local, self.remote, self.snd.una
        );
        self.remember_for_undo(now);
        self.enter_recovery(now);
        self.start_fast_retransmit(now);
    }

    /// Loss detected at SND.UNA: retransmit it now (RFC 5681 section 3.2 step 2).
    fn start_fast_retransmit(&mut self, now: Instant) {
        self.stats.fast_retransmits += 1;
        self.pending.retransmit_una = true;
        self.rec.high_rxt = self.snd.una;
        self.karn_block(now);
        self.timers.stop(Timer::TailLossProbe);
    }

    /// An ACK of `acked` new bytes up to `ack`: outside recovery the
    /// controller grows cwnd; inside, a full ACK ends recovery and a partial
    /// one deflates cwnd and retransmits the next hole (RFC 6582 section
    /// 3.2 step 3; with SACK the hole loop of the output does it, RFC 6675).
    pub(super) fn on_new_ack(
        &mut self,
        now: Instant,
        ack: SeqNum,
        acked: u32,
        flight: u32,
        rtt: Option<Duration>,
    ) {
        self.rec.dup_acks = 0;
        // HighRxt follows SND.UNA up, so that "below HighRxt" always means
        // "retransmitted" and never an old mark that wrapped around.
        if self.rec.high_rxt.lt(self.snd.una) {
            self.rec.high_rxt = self.snd.una;
        }
        if !self.rec.after_timeout(self.snd.una) {
            // Everything sent before the timeout is acknowledged.
            self.rec.rto_recover = None;
        }
        match self.classify_ack(ack) {
            RecoveryAck::Outside => self.cc.on_ack(now, acked, flight, rtt),
            RecoveryAck::Full => {
                trace!("{} -> {}: fast recovery done", self.local, self.remote);
                self.rec.recover = None;
                self.cc.on_recovery_end(now);
            }
            RecoveryAck::Partial => {
                // Deflate by the amount acked, add back one MSS if at least
                // one MSS was acked (RFC 6582 section 3.2 step 3).
                let mss = self.payload_mss() as u32;
                let mut cwnd = self.cc.cwnd().saturating_sub(acked);
                if acked >= mss {
                    cwnd = cwnd.saturating_add(mss);
                }
                self.cc.set_cwnd(cwnd.max(mss));
                self.after_partial_ack(ack);
            }
        }
    }

    fn classify_ack(&self, ack: SeqNum) -> RecoveryAck {
        match self.rec.recover {
            None => RecoveryAck::Outside,
            Some(recover) if ack.ge(recover) => RecoveryAck::Full,
            Some(_) => RecoveryAck::Partial,
        }
    }

    /// A partial ACK: the segment at the new SND.UNA was lost too.
    fn after_partial_ack(&mut self, ack: SeqNum) {
        if self.opts.sack {
            // on_new_ack already moved HighRxt up to SND.UNA.
            if self.rec.scoreboard.next_hole(self.rec.high_rxt).is_none()
                && self.snd.has_flight()
                && self.rec.high_rxt == self.snd.una
            {
                // No SACK information beyond SND.UNA: NewReno's guess.
                self.stats.partial_ack_retransmits += 1;
                self.pending.retransmit_una = true;
            }
        } else if self.snd.has_flight() {
            debug!(
                "{} -> {}: partial ACK {} in recovery, retransmitting next hole",
                self.local, self.remote, ack
            );
            self.stats.partial_ack_retransmits += 1;
            self.pending.retransmit_una = true;
        }
    }

    /// The state a loss response starting now would undo to (timestamps only:
    /// without them a spurious retransmission cannot be told apart).
    ///
    /// None either if SND.UNA's segment was already retransmitted (it lies
    /// below HighRxt, a hole resent in an earlier episode): Eifel can only
    /// judge a segment's first retransmission (RFC 3522 section 2). An ACK
    /// for the earlier copy echoes a timestamp older than now and would make
    /// this episode, a real loss of the original, look spurious.
    fn undo_point(&self, now: Instant) -> Option<Undo> {
        let resent = self.snd.una.lt(self.rec.high_rxt);
        (self.opts.ts && !resent).then(|| Undo {
            seq: self.snd.una,
            tsval: self.tsval(now),
            cc: self.cc.clone_box(),
        })
    }

    fn remember_for_undo(&mut self, now: Instant) {
        // A second loss in the same episode keeps the first undo point.
        if self.rec.undo.is_none() {
            self.rec.undo = self.undo_point(now);
        }
    }

    /// RFC 3522 (Eifel detection): the first ACK covering the retransmitted
    /// segment echoes a timestamp older than the retransmission, so it was the
    /// original that arrived. Restore cwnd and ssthresh (RFC 4015's response).
    pub(super) fn check_spurious(&mut self, ack: SeqNum, tsecr: Option<u32>) {
        if !self.rec.undo.as_ref().is_some_and(|u| ack.gt(u.seq)) {
            return;
        }
        let Some(undo) = self.rec.undo.take() else {
            return;
        };
        let Some(tsecr) = tsecr.filter(|&t| t != 0) else {
            return;
        };
        if (tsecr.wrapping_sub(undo.tsval) as i32) < 0 {
            debug!(
                "{} -> {}: retransmission of {} was spurious, undoing the cwnd cut",
                self.local, self.remote, undo.seq
            );
            self.stats.spurious_retransmits += 1;
            // RFC 4015: back to the window and threshold from before the
            // cut, and out of recovery.
            self.cc = undo.cc;
            self.rec.recover = None;
            self.rec.rto_recover = None;
            self.rec.dup_acks = 0;
            self.pending.retransmit_una = false;
            self.rec.tlp_outstanding = false;
            if self.snd.nxt.lt(self.snd.max) {
                // After a spurious timeout the original flight got through.
                self.snd.nxt = self.snd.max;
            }
        }
    }

    /// Karn's rule from now on: no sample from the segment being timed, and
    /// timestamp echoes count only if at least as new as the first
    /// retransmission of this episode (older ones may come from segments that
    /// waited behind the hole, or from duplicates a spurious retransmission
    /// caused, and would time those, not the path).
    pub(super) fn karn_block(&mut self, now: Instant) {
        self.rec.rtt_probe = None;
        if !self.rec.karn_blocked {
            self.rec.karn_blocked = true;
            self.rec.karn_tsval = self.tsval(now);
        }
    }

    /// The RTT a timestamp echo on an ACK of new data measures (RFC 7323
    /// section 4), for the congestion controller, which wants one per ACK;
    /// [`sample_rtt`](Self::sample_rtt) feeds the RTO estimator. None
    /// without timestamps, for a zero echo, or while Karn's rule blocks
    /// samples (an echo fresh enough to count has already ended the block
    /// in `sample_rtt`).
    pub(super) fn echo_rtt(&self, now: Instant, tsecr: Option<u32>) -> Option<Duration> {
        let tsecr = tsecr.filter(|&t| t != 0 && self.opts.ts && !self.rec.karn_blocked)?;
        let ms = self.tsval(now).wrapping_sub(tsecr) as i32;
        u64::try_from(ms).ok().map(Duration::from_millis)
    }

    /// RTT samples from an ACK of new data (RFC 6298 (2.2/2.3) with Karn's
    /// rule; RFC 7323 section 4.1 for the timestamp echo). Returns the
    /// sample this ACK gave, if any.
    pub(super) fn sample_rtt(
        &mut self,
        now: Instant,
        ack: SeqNum,
        tsecr: Option<u32>,
    ) -> Option<Duration> {
        let mut sample = None;
        if let (true, true, Some(tsecr)) = (self.rec.karn_blocked, self.opts.ts, tsecr) {
            // The echoed timestamp times even a retransmission, so it ends
            // the Karn blackout and the back-off. An echo older than the
            // retransmission may come from a segment that waited behind a
            // hole: it would time the hole, not the path.
            let ms = self.tsval(now).wrapping_sub(tsecr) as i32;
            let fresh = tsecr.wrapping_sub(self.rec.karn_tsval) as i32 >= 0;
            if tsecr != 0 && ms >= 0 && fresh {
                trace!(
                    "{} -> {}: rtt sample {ms}ms from the timestamp echo",
                    self.local,
                    self.remote
                );
                let rtt = Duration::from_millis(ms as u64);
                self.rtt.sample(rtt);
                self.rec.karn_blocked = false;
                sample = Some(rtt);
            }
        }
        let Some((probe, sent)) = self.rec.rtt_probe else {
            return sample;
        };
        if ack.ge(probe) {
            let rtt = now - sent;
            self.rtt.sample(rtt);
            self.rec.karn_blocked = false;
            self.rec.rtt_probe = None;
            trace!(
                "{} -> {}: rtt sample {:?}, srtt {:?}, rto {:?}",
                self.local,
                self.remote,
                rtt,
                self.rtt.srtt(),
                self.rtt.rto()
            );
            sample = Some(rtt);
        }
        sample
    }

    /// RFC 6675's pipe: bytes we believe are still in the network. Without
    /// SACK information that is everything unacknowledged; with it, what was
    /// sent above the highest SACKed byte plus the holes retransmitted in
    /// recovery (holes below the highest SACK are counted as lost).
    pub(super) fn pipe(&self) -> usize {
        let flight = self.snd.flight();
        let sb = &self.rec.scoreboard;
        let Some(highest) = sb.highest() else {
            return flight;
        };
        if !self.rec.in_recovery() {
            return flight.saturating_sub(sb.sacked_bytes());
        }
        let above = self.snd.max - highest;
        let rxt_end = self.rec.high_rxt.max(self.snd.una).min(highest);
        let resent =
            (rxt_end - self.snd.una).saturating_sub(sb.sacked_between(self.snd.una, rxt_end));
        above + resent
    }

    /// Arms the tail loss probe timer (RFC 8985 section 7.2): PTO = 2*SRTT,
    /// plus a delayed-ACK allowance when one segment is in flight, and only
    /// if that comes before the retransmission timer.
    pub(super) fn arm_tlp(&mut self, now: Instant) {
        let Some(srtt) = self.rtt.srtt() else { return };
        if !self.cfg.tail_loss_probe
            || self.rec.tlp_outstanding
            || !self.state.can_send()
            || !self.snd.has_flight()
            || self.snd.nxt != self.snd.max
            || self.snd.fin_seq.is_some()
        {
            self.timers.stop(Timer::TailLossProbe);
            return;
        }
        let mut pto = (2 * srtt).max(Duration::from_millis(2));
        if self.snd.flight() <= self.payload_mss() {
            let delack = self.cfg.ack_delay.unwrap_or(Duration::ZERO);
            pto += delack.max(Duration::from_millis(10));
        }
        let at = now + pto;
        match self.timers.get(Timer::Retransmit) {
            Some(rto) if rto <= at => self.timers.stop(Timer::TailLossProbe),
            _ => self.timers.set(Timer::TailLossProbe, at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::TcpConfig;
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    const MSS: u32 = 1000;

    /// A connection with timestamps in use (payload MSS 1000), 40 segments
    /// sent from 1000 (SND.UNA) with a cwnd of 40 segments; recovery state
    /// and windows are set directly.
    fn sender() -> Tcb {
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 1);
        let b = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 2);
        let mut tcb = Tcb::connect(a, b, SeqNum(999), TcpConfig::default());
        tcb.state = State::Established;
        tcb.opts.ts = true;
        tcb.snd.mss = (MSS + 12) as _;
        tcb.snd.una = SeqNum(1000);
        tcb.snd.nxt = SeqNum(1000 + 40 * MSS);
        tcb.snd.max = tcb.snd.nxt;
        tcb.rec.high_rxt = tcb.snd.una;
        tcb.cc.set_mss(MSS);
        tcb.cc.set_cwnd(40 * MSS);
        tcb
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn eifel_undoes_a_cut_when_the_original_arrived_rfc3522() {
        let mut tcb = sender();
        let una = tcb.snd.una;
        // Loss detected at 100 ms, SND.UNA resent then; the ACK that covers
        // it echoes the original's timestamp (sent at 50 ms).
        tcb.remember_for_undo(ms(100));
        tcb.enter_recovery(ms(100));
        assert!(tcb.cc.cwnd() < 40 * MSS);
        tcb.check_spurious(una + MSS, Some(tcb.tsval(ms(50))));
        assert_eq!(tcb.stats.spurious_retransmits, 1);
        assert_eq!(tcb.cc.cwnd(), 40 * MSS);
        assert!(!tcb.rec.in_recovery());
    }

    #[test]
    fn no_eifel_undo_for_a_segment_already_retransmitted_rfc3522() {
        let mut tcb = sender();
        let una = tcb.snd.una;
        // An earlier episode resent the holes up to una + 5 segments at 50
        // ms (HighRxt); its full ACK left SND.UNA on one of them, and new
        // SACKs at 100 ms show it lost again: a new congestion event (the
        // original was sent after the previous cut).
        tcb.rec.high_rxt = una + 5 * MSS;
        tcb.remember_for_undo(ms(100));
        tcb.enter_recovery(ms(100));
        let cut = tcb.cc.cwnd();
        assert!(cut < 40 * MSS);
        // The ACK that covers it echoes the 50 ms retransmission: older than
        // this episode, but it proves nothing about the original.
        tcb.check_spurious(una + MSS, Some(tcb.tsval(ms(50))));
        assert_eq!(tcb.stats.spurious_retransmits, 0);
        assert_eq!(tcb.cc.cwnd(), cut);
        assert!(tcb.rec.in_recovery());
    }

    #[test]
    fn no_fast_recovery_for_what_was_in_flight_before_a_timeout_rfc6582_3_2() {
        let mut tcb = sender();
        tcb.opts.sack = true;
        let una = tcb.snd.una;
        tcb.on_rto(ms(500));
        assert_eq!(tcb.cc.cwnd(), MSS);
        // The first resent segment is acked; SACKs for ten segments sent
        // before the timeout show the next one missing.
        tcb.snd.una = una + MSS;
        tcb.on_new_ack(ms(520), tcb.snd.una, MSS, 40 * MSS, None);
        let (una1, max) = (tcb.snd.una, tcb.snd.max);
        tcb.rec
            .scoreboard
            .update(una1, max, &[(una + 5 * MSS, una + 15 * MSS)]);
        tcb.detect_loss_by_sack(ms(520), false);
        for _ in 0..3 {
            tcb.on_duplicate_ack(ms(521), una1);
        }
        // Still the timeout's slow start from one segment: no second cut,
        // and no cwnd of ssthresh + 3*MSS from a flight sent before it.
        assert!(!tcb.rec.in_recovery());
        assert_eq!(tcb.cc.cwnd(), 2 * MSS);
        assert_eq!(tcb.stats.fast_retransmits, 0);
        // Once everything sent before the timeout is acked, a loss among
        // the data sent since is a new congestion event.
        tcb.snd.max = una + 60 * MSS;
        tcb.snd.nxt = tcb.snd.max;
        tcb.snd.una = una + 40 * MSS;
        tcb.rec.scoreboard.advance(tcb.snd.una);
        tcb.on_new_ack(ms(600), tcb.snd.una, 39 * MSS, 59 * MSS, None);
        assert_eq!(tcb.rec.rto_recover, None);
        let (una2, max) = (tcb.snd.una, tcb.snd.max);
        tcb.rec
            .scoreboard
            .update(una2, max, &[(una + 45 * MSS, una + 50 * MSS)]);
        tcb.detect_loss_by_sack(ms(600), false);
        assert!(tcb.rec.in_recovery());
        assert_eq!(tcb.stats.fast_retransmits, 1);
    }

    /// A controller that records the RTT samples it is given.
    #[derive(Clone, Debug)]
    struct Recorder {
        inner: Box<dyn Controller>,
        rtts: std::sync::Arc<std::sync::Mutex<Vec<Option<Duration>>>>,
    }

    impl Controller for Recorder {
        fn algorithm(&self) -> crate::cc::Algorithm {
            self.inner.algorithm()
        }
        fn cwnd(&self) -> u32 {
            self.inner.cwnd()
        }
        fn ssthresh(&self) -> u32 {
            self.inner.ssthresh()
        }
        fn set_mss(&mut self, mss: u32) {
            self.inner.set_mss(mss);
        }
        fn on_ack(&mut self, now: Instant, acked: u32, flight: u32, rtt: Option<Duration>) {
            self.rtts.lock().unwrap().push(rtt);
            self.inner.on_ack(now, acked, flight, rtt);
        }
        fn on_congestion_event(&mut self, now: Instant, flight: u32) {
            self.inner.on_congestion_event(now, flight);
        }
        fn on_timeout(&mut self, now: Instant, flight: u32) {
            self.inner.on_timeout(now, flight);
        }
        fn set_cwnd(&mut self, cwnd: u32) {
            self.inner.set_cwnd(cwnd);
        }
        fn on_recovery_end(&mut self, now: Instant) {
            self.inner.on_recovery_end(now);
        }
        fn clone_box(&self) -> Box<dyn Controller> {
            Box::new(self.clone())
        }
    }

    #[test]
    fn controller_gets_an_rtt_sample_from_every_timestamp_echo_rfc9406_4_2() {
        let mut tcb = sender();
        let rtts = std::sync::Arc::default();
        tcb.cc = Box::new(Recorder {
            inner: tcb.cc.clone(),
            rtts: std::sync::Arc::clone(&rtts),
        });
        // One segment is being timed for the RTO estimator (sent at 0 ms).
        tcb.rec.rtt_probe = Some((tcb.snd.una + MSS, ms(0)));
        // Four ACKs, each echoing a segment sent 20 + i ms before it.
        for i in 0..4u64 {
            let ack = tcb.snd.una + MSS;
            let now = ms(30 + 10 * i);
            let echo = tcb.tsval(ms(10 + 9 * i));
            tcb.ack_new_data(now, ack, Some(echo));
        }
        let got = rtts.lock().unwrap().clone();
        let d = Duration::from_millis;
        // The first is the timed segment's (RFC 6298), the rest the echoes'.
        assert_eq!(got, [Some(d(30)), Some(d(21)), Some(d(22)), Some(d(23))]);
        // Nothing while Karn's rule blocks samples (an echo older than
        // the retransmission), nor without a timestamp.
        tcb.karn_block(ms(100));
        let ack = tcb.snd.una + MSS;
        tcb.ack_new_data(ms(110), ack, Some(tcb.tsval(ms(90))));
        tcb.opts.ts = false;
        let ack = tcb.snd.una + MSS;
        tcb.ack_new_data(ms(120), ack, Some(tcb.tsval(ms(100))));
        assert_eq!(rtts.lock().unwrap()[4..], [None, None]);
    }

    #[test]
    fn high_rxt_follows_snd_una_up() {
        let mut tcb = sender();
        let una = tcb.snd.una;
        tcb.snd.una = una + 10 * MSS;
        tcb.on_new_ack(ms(10), tcb.snd.una, 10 * MSS, 40 * MSS, None);
        assert_eq!(tcb.rec.high_rxt, tcb.snd.una);
        // So SND.UNA's segment does not count as resent.
        assert!(tcb.undo_point(ms(10)).is_some());
    }
}
