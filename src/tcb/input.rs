//! Segment arrival, step by step as RFC 9293 section 3.10.7 orders it:
//! SYN-SENT (3.10.7.3), then for every synchronized state (3.10.7.4) the
//! sequence check, the RST bit, the SYN bit, the ACK field, the segment
//! text and the FIN bit, each in its own function.

use log::{debug, trace};

use super::timer::Timer;
use super::{ConnEvent, Tcb, TcpError, Verdict};
use crate::seq::SeqNum;
use crate::state::State;
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpSegment};

/// What is left of a segment after trimming it to the window: the part the
/// later steps look at.
#[derive(Clone, Copy, Debug)]
pub(super) struct Arrival<'a> {
    pub(super) seq: SeqNum,
    pub(super) flags: TcpFlags,
    pub(super) payload: &'a [u8],
}

impl Arrival<'_> {
    fn has(&self, flag: TcpFlags) -> bool {
        self.flags.contains(flag)
    }

    fn clear(&mut self, flag: TcpFlags) {
        self.flags.remove(flag);
    }

    /// SEG.LEN: the payload plus one for each of SYN and FIN.
    fn len(&self) -> usize {
        self.payload.len()
            + usize::from(self.has(TcpFlags::SYN))
            + usize::from(self.has(TcpFlags::FIN))
    }
}

impl Tcb {
    /// Processes one segment addressed to this connection (RFC 9293
    /// section 3.10.7). The verdict tells the stack whether to answer it with
    /// a reset; everything else the connection wants to send comes out of
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn handle_segment(&mut self, now: Instant, seg: &TcpSegment<'_>) -> Verdict {
        self.stats.segs_in += 1;
        trace!(
            "{} <- {}: {:?} seq={} ack={} win={} len={} in {}",
            self.local,
            self.remote,
            seg.flags,
            seg.seq,
            seg.ack,
            seg.window,
            seg.payload.len(),
            self.state
        );
        let verdict = match self.state {
            State::Closed | State::Listen => Verdict::SendReset,
            State::SynSent => self.on_segment_syn_sent(now, seg),
            _ => self.on_segment_synchronized(now, seg),
        };
        self.heard_from_peer(now);
        verdict
    }

    /// RFC 9293 section 3.10.7.3: SYN-SENT.
    fn on_segment_syn_sent(&mut self, now: Instant, seg: &TcpSegment<'_>) -> Verdict {
        let has_ack = seg.flags.contains(TcpFlags::ACK);
        // First, check the ACK bit.
        if has_ack && (seg.ack.le(self.snd.iss) || seg.ack.gt(self.snd.max)) {
            if seg.flags.contains(TcpFlags::RST) {
                return Verdict::Done;
            }
            return Verdict::SendReset;
        }
        // Second, the RST bit.
        if seg.flags.contains(TcpFlags::RST) {
            if has_ack {
                debug!(
                    "{} -> {}: connection refused (RST)",
                    self.local, self.remote
                );
                self.enter_closed(Some(TcpError::Refused));
            }
            return Verdict::Done;
        }
        // Fourth, the SYN bit.
        if !seg.flags.contains(TcpFlags::SYN) {
            return Verdict::Done;
        }
        self.rcv.on_syn(seg.seq);
        // The window our SYN offered (unscaled) now starts at RCV.NXT.
        self.rcv.adv = self.rcv.nxt + usize::from(self.rcv.last_adv_field);
        self.apply_syn_options(seg);
        // The window in a SYN is never scaled (RFC 7323 section 2.2).
        let window = u32::from(seg.window);
        if has_ack {
            self.ack_new_data(now, seg.ack, seg.options.timestamp.map(|t| t.1));
            self.snd.update_window(window, seg.seq, seg.ack);
            self.set_state(State::Established);
            self.pending.ack = true;
            self.syn_ack_text(now, seg);
        } else {
            // Simultaneous open (RFC 9293 Figure 8): send SYN,ACK with our ISS again.
            self.snd.update_window(window, seg.seq, self.snd.iss);
            self.snd.nxt = self.snd.iss;
            self.rec.rtt_probe = None;
            self.set_state(State::SynReceived);
        }
        Verdict::Done
    }

    /// RFC 9293 3.10.7.3: text or a FIN on the SYN-ACK is processed as in
    /// ESTABLISHED (trimmed to the window we offered).
    fn syn_ack_text(&mut self, now: Instant, seg: &TcpSegment<'_>) {
        let room = self.rcv.wnd();
        let payload = &seg.payload[..seg.payload.len().min(room)];
        if !payload.is_empty() {
            self.process_text(now, self.rcv.nxt, payload);
        }
        if seg.flags.contains(TcpFlags::FIN) && payload.len() == seg.payload.len() {
            self.process_fin(now);
        }
    }

    /// RFC 9293 section 3.10.7.4: every state after SYN-SENT.
    fn on_segment_synchronized(&mut self, now: Instant, seg: &TcpSegment<'_>) -> Verdict {
        let mut s = Arrival {
            seq: seg.seq,
            flags: seg.flags,
            payload: seg.payload,
        };
        if self.state == State::SynReceived && !self.syn_received_syn(&mut s) {
            return Verdict::Done;
        }
        if self.timestamp_missing(seg) {
            self.stats.unacceptable += 1;
            return Verdict::Done;
        }
        if self.paws_rejects(seg, s.has(TcpFlags::RST)) {
            self.stats.unacceptable += 1;
            self.pending.ack = true;
            return Verdict::Done;
        }
        if !self.check_sequence(now, &mut s) {
            return Verdict::Done;
        }
        self.update_ts_recent(seg);
        self.trim_to_window(&mut s);
        if s.has(TcpFlags::RST) {
            return self.check_rst(seg.seq);
        }
        if s.has(TcpFlags::SYN) {
            // Fourth: a SYN in a synchronized state gets a challenge ACK (RFC 5961 section 4.2).
            debug!(
                "{} -> {}: SYN in {}, challenge ACK",
                self.local, self.remote, self.state
            );
            self.challenge_ack();
            return Verdict::Done;
        }
        if !s.has(TcpFlags::ACK) {
            return Verdict::Done;
        }
        if let Some(verdict) = self.check_ack(now, seg, &s) {
            return verdict;
        }
        // Seventh: the segment text.
        if !s.payload.is_empty() {
            self.process_text(now, s.seq, s.payload);
        }
        // Eighth: the FIN bit.
        if s.has(TcpFlags::FIN) {
            self.check_fin(now, s.seq + s.payload.len());
        }
        Verdict::Done
    }

    /// SYN-RECEIVED: a retransmitted SYN means our SYN-ACK was lost; a
    /// SYN-ACK with the peer's ISS is the simultaneous-open answer (RFC 9293
    /// Figure 8), whose SYN is then ignored. False when the segment is done.
    fn syn_received_syn(&mut self, s: &mut Arrival<'_>) -> bool {
        if !s.has(TcpFlags::SYN) || s.seq != self.rcv.irs {
            return true;
        }
        if !s.has(TcpFlags::ACK) {
            if !s.has(TcpFlags::RST) {
                debug!(
                    "{} -> {}: duplicate SYN, resending SYN-ACK",
                    self.local, self.remote
                );
                self.snd.nxt = self.snd.iss;
            }
            return false;
        }
        s.seq += 1u32;
        s.clear(TcpFlags::SYN);
        true
    }

    /// First: is the sequence number acceptable (RFC 9293 section 3.10.7.4,
    /// the four cases of SEG.LEN and RCV.WND)? False when the segment is done.
    fn check_sequence(&mut self, now: Instant, s: &mut Arrival<'_>) -> bool {
        let seg_len = s.len();
        let wnd = self.rcv.wnd();
        let (nxt, end) = (self.rcv.nxt, self.rcv.nxt + wnd);
        let acceptable = match (seg_len, wnd) {
            (0, 0) => s.seq == nxt,
            (0, _) => s.seq.in_range(nxt, end),
            (_, 0) => false,
            (_, _) => s.seq.in_range(nxt, end) || (s.seq + (seg_len - 1)).in_range(nxt, end),
        };
        if acceptable {
            return true;
        }
        // With a zero window, valid ACKs and RSTs are still processed.
        if wnd == 0 && s.seq == nxt {
            // Keep only the control information, and answer the text we
            // cannot take with an ACK -- it may be a zero-window probe
            // (RFC 9293 sections 3.8.6.1 and 3.10.7.4, first check).
            s.payload = &[];
            s.clear(TcpFlags::FIN);
            self.pending.ack = true;
            return true;
        }
        self.stats.unacceptable += 1;
        if s.has(TcpFlags::RST) {
            return false;
        }
        trace!(
            "{} -> {}: unacceptable segment seq={} len={} (rcv_nxt={} wnd={})",
            self.local,
            self.remote,
            s.seq,
            seg_len,
            nxt,
            wnd
        );
        if self.state == State::TimeWait && s.has(TcpFlags::FIN) {
            // A retransmitted FIN: our last ACK was lost. Ack again and
            // restart the 2*MSL timer (RFC 9293 section 3.10.7.4, eighth step).
            self.timers.set(Timer::TimeWait, now + 2 * self.cfg.msl);
        }
        self.ack_unacceptable(now, s);
        false
    }

    /// RFC 9293 section 3.10.7.4: an unacceptable segment (or one that
    /// acknowledges data not yet sent) is answered with an ACK; one without
    /// data or SYN at most once per
    /// [`OOW_ACK_INTERVAL`](super::OOW_ACK_INTERVAL), as Linux does.
    fn ack_unacceptable(&mut self, now: Instant, s: &Arrival<'_>) {
        let dataless = s.payload.is_empty() && !s.has(TcpFlags::SYN) && !s.has(TcpFlags::FIN);
        if dataless {
            let recent = self
                .oow_ack_at
                .is_some_and(|t| now.saturating_duration_since(t) < super::OOW_ACK_INTERVAL);
            if recent {
                self.stats.oow_acks_limited += 1;
                trace!(
                    "{} -> {}: out-of-window ACK not answered (rate limit)",
                    self.local,
                    self.remote
                );
                return;
            }
            self.oow_ack_at = Some(now);
        }
        self.pending.ack = true;
    }

    /// Trims what we already have (before RCV.NXT) and what does not fit in
    /// the window (RFC 9293 section 3.10.7.4, first check).
    fn trim_to_window(&self, s: &mut Arrival<'_>) {
        if s.seq.lt(self.rcv.nxt) {
            let mut dup = self.rcv.nxt - s.seq;
            if s.has(TcpFlags::SYN) {
                s.clear(TcpFlags::SYN);
                dup -= 1;
            }
            s.payload = &s.payload[dup.min(s.payload.len())..];
            s.seq = self.rcv.nxt;
        }
        let room = self.rcv.wnd().saturating_sub(s.seq - self.rcv.nxt);
        if s.payload.len() > room {
            s.payload = &s.payload[..room];
            s.clear(TcpFlags::FIN);
        }
    }

    /// Second: the RST bit (RFC 9293 section 3.10.7.4 and RFC 5961 section
    /// 3.2): only a RST exactly at RCV.NXT resets; one elsewhere in the
    /// window draws a challenge ACK.
    fn check_rst(&mut self, seq: SeqNum) -> Verdict {
        if seq != self.rcv.nxt {
            debug!(
                "{} -> {}: RST not at RCV.NXT, challenge ACK",
                self.local, self.remote
            );
            self.challenge_ack();
            return Verdict::Done;
        }
        match self.state {
            State::SynReceived => {
                // From a passive open this ends the embryonic connection (the
                // stack forgets it); from a simultaneous open, connect fails.
                debug!("{} -> {}: RST in SYN-RECEIVED", self.local, self.remote);
                self.enter_closed(Some(TcpError::Refused));
            }
            State::TimeWait if self.cfg.rfc1337 => {
                // RFC 1337 (TIME-WAIT assassination hazards): keep waiting.
                debug!(
                    "{} -> {}: RST in TIME-WAIT ignored (RFC 1337)",
                    self.local, self.remote
                );
                return Verdict::Done;
            }
            State::Closing | State::LastAck | State::TimeWait => self.enter_closed(None),
            _ => {
                debug!(
                    "{} -> {}: connection reset by peer",
                    self.local, self.remote
                );
                self.enter_closed(Some(TcpError::Reset));
            }
        }
        self.snd.buf.clear();
        Verdict::Done
    }

    /// Fifth: the ACK field. In SYN-RECEIVED an acceptable ACK completes the
    /// handshake, an unacceptable one draws a RST; then the ACK is processed
    /// as in ESTABLISHED. `Some` when the segment must not go further.
    fn check_ack(
        &mut self,
        now: Instant,
        seg: &TcpSegment<'_>,
        s: &Arrival<'_>,
    ) -> Option<Verdict> {
        if self.state == State::SynReceived {
            if !(seg.ack.gt(self.snd.una) && seg.ack.le(self.snd.max)) {
                return Some(Verdict::SendReset);
            }
            self.set_state(State::Established);
            self.snd.update_window(self.seg_window(seg), s.seq, seg.ack);
            // A close() may have queued a FIN already.
            if self.snd.fin_queued {
                self.set_state(State::FinWait1);
            }
        }
        let verdict = self.process_ack(now, s.seq, seg, s);
        if verdict.is_none() && self.state == State::Closed {
            return Some(Verdict::Done);
        }
        verdict
    }

    /// The peer's window in bytes. The window of a SYN segment (such as the
    /// SYN-ACK that completes a simultaneous open) is never scaled (RFC 7323
    /// section 2.2).
    fn seg_window(&self, seg: &TcpSegment<'_>) -> u32 {
        if seg.flags.contains(TcpFlags::SYN) {
            u32::from(seg.window)
        } else {
            u32::from(seg.window) << self.snd.wscale
        }
    }

    /// RFC 9293 section 3.10.7.4, fifth step, for ESTABLISHED and later.
    /// Returns `Some` when the segment must not be processed further.
    fn process_ack(
        &mut self,
        now: Instant,
        seq: SeqNum,
        seg: &TcpSegment<'_>,
        s: &Arrival<'_>,
    ) -> Option<Verdict> {
        let ack = seg.ack;
        if ack.gt(self.snd.max) {
            // Acks something not yet sent: ACK and drop (RFC 9293 3.10.7.4).
            trace!(
                "{} -> {}: ACK {} beyond SND.MAX",
                self.local,
                self.remote,
                ack
            );
            // Rate-limited like the answers to out-of-window segments: a
            // peer desynchronized by an injected segment ACKs data we never
            // sent, and our ACK is out of its window (an ACK loop).
            self.ack_unacceptable(now, s);
            return Some(Verdict::Done);
        }
        // RFC 5961 section 5.2: an ACK too far in the past is rejected with a challenge ACK.
        let max_window = self.snd.max_wnd.max(65535) as usize;
        if ack.lt(self.snd.una) && (self.snd.una - ack) > max_window {
            self.challenge_ack();
            return Some(Verdict::Done);
        }
        let window = self.seg_window(seg);
        let sack = seg.options.sack.as_slice();
        let sack_news = self.opts.sack
            && !sack.is_empty()
            && self
                .rec
                .scoreboard
                .update(ack.max(self.snd.una), self.snd.max, sack);
        if ack.gt(self.snd.una) {
            self.ack_new_data(now, ack, seg.options.timestamp.map(|t| t.1));
        } else if self.is_duplicate_ack(ack, window, s, sack_news, !sack.is_empty()) {
            self.on_duplicate_ack(now, ack);
        }
        let probe_answered = self.rec.tlp_outstanding && ack == self.snd.una;
        self.detect_loss_by_sack(now, probe_answered);
        // Update the send window (RFC 9293 3.10.7.4: SND.WL1/SND.WL2 rule).
        if self.snd.window_update_allowed(seq, ack) {
            if window != self.snd.wnd {
                trace!("{} -> {}: peer window {}", self.local, self.remote, window);
            }
            self.snd.update_window(window, seq, ack);
            if window > 0 {
                self.timers.stop(Timer::Persist);
                self.snd.persist_backoff = 0;
            }
        }
        self.after_fin_acked(now)
    }

    /// A duplicate ACK (RFC 5681 section 2): no data, no FIN, SND.UNA again
    /// while data is outstanding, and the same window. With SACK, RFC 6675
    /// section 2 counts an ACK that brings new SACK information even if the
    /// window moved (as a receiver that autotunes it does) -- and not a copy
    /// of an ACK the network duplicated, nor a D-SACK.
    fn is_duplicate_ack(
        &self,
        ack: SeqNum,
        window: u32,
        s: &Arrival<'_>,
        sack_news: bool,
        has_sack: bool,
    ) -> bool {
        let same = if self.opts.sack && has_sack {
            sack_news
        } else {
            window == self.snd.wnd
        };
        ack == self.snd.una
            && s.payload.is_empty()
            && !s.has(TcpFlags::FIN)
            && same
            && self.snd.has_flight()
    }

    /// Our FIN was acknowledged: FIN-WAIT-1 -> FIN-WAIT-2, CLOSING ->
    /// TIME-WAIT, LAST-ACK -> CLOSED (RFC 9293 section 3.10.7.4, fifth step).
    fn after_fin_acked(&mut self, now: Instant) -> Option<Verdict> {
        if !self.snd.fin_acked() {
            return None;
        }
        match self.state {
            State::FinWait1 => {
                self.set_state(State::FinWait2);
                self.fin_wait_2_since = Some(now);
                self.arm_orphan_fin_wait_2();
            }
            State::Closing => self.enter_time_wait(now),
            State::LastAck => {
                self.enter_closed(None);
                return Some(Verdict::Done);
            }
            _ => {}
        }
        None
    }

    /// SND.UNA advances to `ack`: free acknowledged data, take an RTT sample,
    /// restart or stop the retransmission timer, grow cwnd.
    pub(super) fn ack_new_data(&mut self, now: Instant, ack: SeqNum, tsecr: Option<u32>) {
        let flight_before = self.snd.flight() as u32;
        let mut acked = ack - self.snd.una;
        // The SYN occupies one sequence number but no buffer space.
        if self.snd.una == self.snd.iss && acked > 0 {
            acked -= 1;
        }
        let freed = self.snd.release(acked);
        if freed > 0 && self.send_room() >= self.writable_threshold() {
            self.events.raise(ConnEvent::Writable);
        }
        self.check_spurious(ack, tsecr);
        self.snd.una = ack;
        // The user timeout counts again from here for what is left.
        self.unacked_since = self.snd.has_flight().then_some(now);
        if self.snd.nxt.lt(ack) {
            self.snd.nxt = ack;
        }
        self.rec.scoreboard.advance(ack);
        self.rec.tlp_outstanding = false;
        let rtt = self.sample_rtt(now, ack, tsecr);
        // The RTO estimator takes one sample per RTT; the controller gets
        // one from every timestamp echo (HyStart++ needs several per round,
        // RFC 9406 section 4.2).
        let rtt = rtt.or_else(|| self.echo_rtt(now, tsecr));
        self.rec.retries = 0;
        self.on_new_ack(now, ack, freed as u32, flight_before, rtt);
        // RFC 6298 (5.2)/(5.3): stop the timer when all is acked, else restart it.
        if self.snd.has_flight() {
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
            self.arm_tlp(now);
        } else {
            self.timers.stop(Timer::Retransmit);
            self.timers.stop(Timer::TailLossProbe);
        }
    }

    /// Seventh step: queue in-order data, hold out-of-order data.
    pub(super) fn process_text(&mut self, now: Instant, seq: SeqNum, payload: &[u8]) {
        if !matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) {
            return;
        }
        if seq != self.rcv.nxt {
            self.stats.out_of_order += 1;
            self.rcv.hold_out_of_order(seq, payload);
            // RFC 5681 section 4.2: an out-of-order segment is acked at once (a duplicate ACK).
            self.pending.ack = true;
            self.pending.dup_acks_owed = self.pending.dup_acks_owed.saturating_add(1).min(64);
            return;
        }
        // Progress: earlier out-of-order segments need no duplicate ACKs any more.
        self.pending.dup_acks_owed = 0;
        let had_gap = !self.rcv.reassembly.is_empty();
        let n = self.rcv.deliver(payload) + self.rcv.drain_reassembly();
        self.stats.bytes_in += n as u64;
        if !self.rcv.read_shutdown {
            self.events.raise(ConnEvent::Readable);
        }
        if let Some(fin) = self.rcv.fin_pending {
            if fin == self.rcv.nxt {
                self.rcv.fin_pending = None;
                self.process_fin(now);
            }
        }
        if had_gap {
            // RFC 5681 section 4.2: ACK at once when a gap is (partly) filled.
            self.pending.ack = true;
        } else {
            self.schedule_ack(now);
        }
    }

    /// Delayed ACK (RFC 1122 4.2.3.2, RFC 5681 section 4.2): ack at least every
    /// second full-sized segment, and within the delay otherwise.
    fn schedule_ack(&mut self, now: Instant) {
        match self.cfg.ack_delay {
            Some(delay) if self.rcv.unacked_bytes < 2 * self.cfg.mss as usize => {
                self.timers.set_if_stopped(Timer::DelayedAck, now + delay);
            }
            _ => self.pending.ack = true,
        }
    }

    /// Eighth step: a FIN at `fin_at` is processed once everything before it
    /// arrived; until then it waits.
    fn check_fin(&mut self, now: Instant, fin_at: SeqNum) {
        if fin_at == self.rcv.nxt {
            self.process_fin(now);
        } else if fin_at.gt(self.rcv.nxt) {
            self.rcv.fin_pending = Some(fin_at);
        }
    }

    /// Eighth step: the peer's FIN, in order.
    ///
    /// In ESTABLISHED the ACK of the FIN is delayed like an ACK of data
    /// (RFC 1122 4.2.3.2; Linux does the same on entering CLOSE-WAIT): an
    /// application that answers the FIN with its own close sends one FIN+ACK
    /// instead of a pure ACK and then a FIN. Everywhere else our FIN is out
    /// already and nothing can ride along, so the ACK goes at once.
    pub(super) fn process_fin(&mut self, now: Instant) {
        self.rcv.nxt += 1u32;
        self.rcv.fin_received = true;
        self.events.raise(ConnEvent::Readable);
        debug!("{} -> {}: FIN received", self.local, self.remote);
        if self.state == State::Established {
            self.schedule_ack(now);
        } else {
            self.pending.ack = true;
        }
        match self.state {
            State::SynReceived | State::Established => self.set_state(State::CloseWait),
            State::FinWait1 if self.snd.fin_acked() => self.enter_time_wait(now),
            State::FinWait1 => self.set_state(State::Closing),
            State::FinWait2 => self.enter_time_wait(now),
            State::TimeWait => self.timers.set(Timer::TimeWait, now + 2 * self.cfg.msl),
            _ => {}
        }
    }

    pub(super) fn enter_time_wait(&mut self, now: Instant) {
        self.set_state(State::TimeWait);
        self.timers.stop(Timer::Retransmit);
        self.timers.stop(Timer::Persist);
        self.timers.set(Timer::TimeWait, now + 2 * self.cfg.msl);
    }
}
