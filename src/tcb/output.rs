//! Output: first *choose* what to send next as a small [`Plan`], then
//! [`build`](Tcb::build) it. `build` is the only code that writes bytes and
//! moves SND.NXT, SND.MAX and the timers as a consequence of sending.
//!
//! The choice follows a fixed order: a pending RST, the SYN or SYN-ACK, one
//! retransmission at SND.UNA (fast retransmit, NewReno partial ACK, a lost
//! retransmission, a probe in recovery), a SACK hole (RFC 6675), a tail loss
//! probe (RFC 8985), new data or go-back-N after a timeout, a zero-window
//! probe, and last pure ACKs (one per out-of-order segment received).

use log::{debug, trace};

use super::timer::Timer;
use super::Tcb;
use crate::gso::TxOffload;
use crate::seq::SeqNum;
use crate::state::State;
use crate::time::Instant;
use crate::wire::{self, TcpFlags, TcpOptions, TcpSegment};

/// The most payload one super-segment carries: an IPv4 packet is at most
/// 65,535 bytes, headers (20 + up to 60) included.
const MAX_SUPER_SEGMENT: usize = 65_535 - 80;

/// What the connection owes the peer, beyond what its sequence variables say.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// A RST (from [`Tcb::abort`]).
    pub(super) rst: bool,
    /// An ACK, now (not delayed).
    pub(super) ack: bool,
    /// A challenge ACK (RFC 5961 sections 3.2, 4.2, 5.2): an ACK the
    /// stack's rate limit may still cancel ([`Tcb::cancel_challenge`]).
    pub(super) challenge: bool,
    /// The application freed enough buffer to announce a larger window;
    /// kept apart from `ack` because a duplicate ACK (which must repeat the
    /// old window) does not announce it.
    pub(super) window_update: bool,
    /// Out-of-order segments not yet answered: each gets its own duplicate
    /// ACK (RFC 5681 section 4.2), even when the driver read them in one batch.
    pub(super) dup_acks_owed: u32,
    /// Retransmit the segment at SND.UNA now.
    pub(super) retransmit_una: bool,
    /// The persist timer fired: probe the peer's zero window.
    pub(super) probe: bool,
    /// The keepalive timer fired: probe an idle peer (RFC 1122 4.2.3.6).
    pub(super) keepalive: bool,
}

/// Why a data segment is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Why {
    /// New data (or our FIN), or go-back-N after a timeout.
    Data,
    /// One segment at SND.UNA: fast retransmit, NewReno, a lost retransmission.
    RetransmitUna,
    /// A hole the SACK scoreboard shows lost (RFC 6675 section 5).
    SackHole,
    /// A tail loss probe (RFC 8985 section 7.3).
    TailLossProbe,
}

/// The next segment to send, chosen but not yet written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Plan {
    /// A RST at SND.MAX (RFC 9293 section 3.10.5).
    Reset,
    /// Our SYN, or SYN-ACK in SYN-RECEIVED.
    Syn,
    /// `len` bytes from `seq` (and our FIN after them if `fin`).
    Data {
        seq: SeqNum,
        len: usize,
        fin: bool,
        why: Why,
    },
    /// A zero-window probe at SND.UNA - 1 (RFC 9293 section 3.8.6.1).
    WindowProbe,
    /// A keepalive probe: the same segment (RFC 1122 4.2.3.6).
    KeepaliveProbe,
    /// A pure ACK (possibly a duplicate, possibly a window update).
    Ack,
    /// Nothing may be sent, but a zero window holds data back: arm the
    /// persist timer (RFC 9293 section 3.8.6.1).
    ArmPersist,
}

/// One packet from [`Tcb::poll_transmit_vectored`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Emitted {
    /// Bytes written to the caller's buffer: the whole packet, or with a
    /// payload left in the send buffer, its IPv4 and TCP headers.
    pub len: usize,
    /// What the device finishes (partial checksum, TSO).
    pub offload: TxOffload,
    /// (offset from SND.UNA, length) of the payload still in the send
    /// buffer, which follows the headers on the wire; (0, 0): none.
    pub payload: (usize, usize),
}

impl Tcb {
    /// Writes the next segment this connection wants to send into `buf` (a
    /// whole IPv4 packet) and returns its length, or `None` when there is
    /// nothing to send now. Call it until it returns `None`.
    ///
    /// The packet is always finished (full checksum); with
    /// [`TcpConfig::max_super_segment`](super::TcpConfig::max_super_segment)
    /// set it may be a super-segment larger than the MTU.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let (n, offload) = self.poll_transmit_with(now, buf)?;
        if offload.partial_checksum {
            wire::complete_tcp_checksum(&mut buf[..n])?;
        }
        Some(n)
    }

    /// Like [`poll_transmit`](Self::poll_transmit), but leaves to the caller
    /// (the device) what [`TxOffload`] says: a partial checksum to complete,
    /// a super-segment to cut ([`crate::gso`]).
    pub fn poll_transmit_with(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<(usize, TxOffload)> {
        let e = self.transmit(now, buf, false)?;
        Some((e.len, e.offload))
    }

    /// Like [`poll_transmit_with`](Self::poll_transmit_with), for a device
    /// that writes a packet from several buffers (`writev`): with checksum
    /// offload on, a data segment's headers go into `buf` and its payload
    /// stays in the send buffer, as [`Emitted::payload`] says; take it with
    /// [`send_slices`](Self::send_slices) before the next call. Saves the
    /// copy of up to 64 KB per super-segment.
    pub fn poll_transmit_vectored(&mut self, now: Instant, buf: &mut [u8]) -> Option<Emitted> {
        self.transmit(now, buf, true)
    }

    /// `len` bytes of the send buffer from offset `off` (from SND.UNA), in
    /// its two halves: the payload of an [`Emitted`].
    pub fn send_slices(&self, off: usize, len: usize) -> (&[u8], &[u8]) {
        self.snd.slices(off, len)
    }

    fn transmit(&mut self, now: Instant, buf: &mut [u8], vectored: bool) -> Option<Emitted> {
        let mut plan = self.choose()?;
        if plan == Plan::ArmPersist {
            // Arming the timer writes nothing: an ACK may still be owed.
            self.build(now, buf, plan, vectored);
            plan = self.choose()?;
        }
        self.build(now, buf, plan, vectored)
    }

    /// Decides what to send next (it may drop a request that has become
    /// moot, such as a retransmission with nothing left to resend).
    fn choose(&mut self) -> Option<Plan> {
        if self.pending.rst {
            return Some(Plan::Reset);
        }
        match self.state {
            State::Closed | State::Listen => return None,
            State::SynSent | State::SynReceived if self.snd.nxt == self.snd.iss => {
                return Some(Plan::Syn)
            }
            State::SynSent => return None,
            _ => {}
        }
        let sending = matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        );
        let data = if sending {
            self.choose_retransmit_una()
                .or_else(|| self.choose_sack_hole())
                .or_else(|| self.choose_tail_loss_probe())
                .or_else(|| self.choose_data())
        } else {
            None
        };
        data.or_else(|| self.choose_control())
    }

    /// One segment at SND.UNA, stopping at the next SACKed byte.
    fn choose_retransmit_una(&mut self) -> Option<Plan> {
        if !std::mem::take(&mut self.pending.retransmit_una) {
            return None;
        }
        let mut len = self.payload_mss().min(self.snd.buf.len());
        if let Some(next) = self.rec.scoreboard.next_sacked(self.snd.una) {
            len = len.min(next - self.snd.una);
        }
        let fin = self.snd.fin_seq.is_some_and(|f| f == self.snd.una + len);
        (len > 0 || fin).then_some(Plan::Data {
            seq: self.snd.una,
            len,
            fin,
            why: Why::RetransmitUna,
        })
    }

    /// SACK recovery (RFC 6675 section 5, NextSeg rule 1): while the pipe
    /// has room, resend the holes the scoreboard shows, before new data.
    fn choose_sack_hole(&self) -> Option<Plan> {
        if !self.opts.sack || !self.rec.in_recovery() || self.pipe() >= self.cc.ssthresh() as usize
        {
            return None;
        }
        let mss = self.payload_mss();
        let sb = &self.rec.scoreboard;
        let from = self.rec.high_rxt.max(self.snd.una);
        // RFC 6675 section 4 (IsLost): a hole counts as lost only with more
        // than (DupThresh - 1) * SMSS bytes SACKed above it; a merely
        // reordered segment gets the chance to arrive.
        let (hole, hole_len) = sb.next_hole(from).filter(|&(hole, _)| {
            let highest = sb.highest().unwrap_or(hole);
            sb.sacked_between(hole, highest) > 2 * mss
        })?;
        let off = hole - self.snd.una;
        let len = hole_len
            .min(mss)
            .min(self.snd.buf.len().saturating_sub(off));
        (len > 0).then_some(Plan::Data {
            seq: hole,
            len,
            fin: false,
            why: Why::SackHole,
        })
    }

    /// Tail loss probe (RFC 8985 section 7.3): new data if we may send it,
    /// else the last segment again, to draw an ACK with SACK blocks.
    fn choose_tail_loss_probe(&mut self) -> Option<Plan> {
        if !std::mem::take(&mut self.rec.tlp_pending) {
            return None;
        }
        self.rec.tlp_outstanding = true;
        let sent = self.snd.flight();
        let queued = self.snd.buf.len();
        if self.snd.fin_seq.is_some() || sent > queued || sent == 0 {
            return None;
        }
        let mss = self.payload_mss();
        let unsent = queued - sent;
        let wnd = self.snd.wnd as usize;
        let (seq, len) = if unsent > 0 && wnd > sent {
            (self.snd.max, unsent.min(mss).min(wnd - sent))
        } else {
            let len = sent.min(mss);
            (self.snd.max - len as u32, len)
        };
        Some(Plan::Data {
            seq,
            len,
            fin: false,
            why: Why::TailLossProbe,
        })
    }

    /// New data from SND.NXT (or, after a timeout, go-back-N), as much as the
    /// peer's window, the congestion window, sender SWS avoidance and Nagle
    /// allow; with the FIN after the last byte. `ArmPersist` when a zero
    /// window holds data back.
    fn choose_data(&mut self) -> Option<Plan> {
        // After a timeout snd_nxt walks up again: skip what the peer SACKed.
        if self.snd.nxt.lt(self.snd.max) {
            if let Some(end) = self.rec.scoreboard.sacked_until(self.snd.nxt) {
                self.snd.nxt = end.min(self.snd.max);
            }
        }
        let off = self.snd.nxt - self.snd.una;
        let unsent = self.snd.buf.len().checked_sub(off)?;
        let in_flight = off;
        let mss = self.payload_mss();
        let mut len = unsent.min(self.send_allowance(in_flight));
        if self.snd.nxt.lt(self.snd.max) {
            // Retransmitting (go-back-N), one MSS at a time: stop at the
            // next SACKed range.
            len = len.min(mss);
            if let Some(next) = self.rec.scoreboard.next_sacked(self.snd.nxt) {
                len = len.min(next - self.snd.nxt);
            }
        } else {
            len = self.super_segment_len(len, unsent);
        }
        // Our FIN goes right after the last byte, unless it is already acked.
        let fin = self.snd.fin_queued && !self.snd.fin_acked() && len == unsent;
        if self.may_send(len, unsent, in_flight, fin) {
            return Some(Plan::Data {
                seq: self.snd.nxt,
                len,
                fin,
                why: Why::Data,
            });
        }
        let persist = unsent > 0
            && self.snd.wnd == 0
            && in_flight == 0
            && !self.timers.is_armed(Timer::Retransmit)
            && !self.timers.is_armed(Timer::Persist);
        persist.then_some(Plan::ArmPersist)
    }

    /// How many bytes past SND.NXT the peer's window and the congestion
    /// window let out, with `in_flight` bytes between SND.UNA and SND.NXT.
    fn send_allowance(&self, in_flight: usize) -> usize {
        let mss = self.payload_mss();
        // Limited transmit (RFC 3042): the first two duplicate ACKs each let
        // one new segment out beyond cwnd.
        let limited = if self.rec.in_recovery() {
            0
        } else {
            self.rec.dup_acks.min(2) as usize * mss
        };
        // The peer's window limits sequence space; cwnd limits what is in
        // the network: with SACK that is the pipe (RFC 6675), and in SACK
        // recovery cwnd is ssthresh, not inflated.
        let rwnd_room = (self.snd.wnd as usize).saturating_sub(in_flight);
        let (cwnd, flight) = if self.opts.sack && self.snd.nxt == self.snd.max {
            let cwnd = if self.rec.in_recovery() {
                self.cc.ssthresh()
            } else {
                self.cc.cwnd()
            };
            (cwnd as usize, self.pipe())
        } else {
            (self.cc.cwnd() as usize, in_flight)
        };
        let mut cwnd_room = cwnd.saturating_sub(flight);
        if limited > 0 {
            // RFC 3042: FlightSize may reach cwnd + 2*SMSS; the pipe already
            // excludes SACKed segments (RFC 6675 section 5 step (3)), so the
            // allowance is not added to it again.
            let allowed = (self.cc.cwnd() as usize + limited).saturating_sub(in_flight);
            cwnd_room = cwnd_room.max(allowed);
        }
        rwnd_room.min(cwnd_room)
    }

    /// How much new data goes into one segment, of the `allowed` bytes the
    /// windows let out (of `unsent` waiting): one MSS, or with TSO
    /// ([`crate::gso`]) a super-segment of whole MSS-sized segments, with the
    /// small tail of the data only where it would go out on its own right
    /// after them: it ends the data, and Nagle (in Minshall's form, see
    /// [`may_send`](Self::may_send); data is in flight by then) does not
    /// hold it.
    fn super_segment_len(&self, allowed: usize, unsent: usize) -> usize {
        let mss = self.payload_mss();
        let max = self.cfg.max_super_segment.min(MAX_SUPER_SEGMENT);
        if allowed <= mss || max < 2 * mss {
            return allowed.min(mss);
        }
        let len = allowed.min(max);
        let whole = len - len % mss;
        let tail_goes = len == unsent
            && (self.snd.fin_queued || !self.snd.nagle || !self.snd.small_segment_unacked());
        if tail_goes {
            len
        } else {
            whole
        }
    }

    /// Whether a segment of `len` bytes (of `unsent` waiting) goes out now.
    fn may_send(&self, len: usize, unsent: usize, in_flight: usize, fin: bool) -> bool {
        if len == 0 {
            // Only a FIN, if it is due.
            return fin;
        }
        if len >= self.payload_mss() || fin {
            return true;
        }
        if len < unsent {
            // Window-limited small segment: sender SWS avoidance (RFC 1122
            // 4.2.3.4): only if nothing is in flight, or it is at least half
            // the largest window ever offered.
            return in_flight == 0 || len >= (self.snd.max_wnd as usize) / 2;
        }
        // The tail of the data: Nagle holds it while data is unacknowledged
        // -- in Minshall's form (as Linux): only while an earlier *small*
        // segment is unacknowledged, so the tail of one large write is not
        // held for an RTT.
        !self.snd.nagle || in_flight == 0 || !self.snd.small_segment_unacked()
    }

    /// A zero-window probe if the persist timer fired, else a pure ACK if
    /// one is owed (RFC 5681 section 4.2: one duplicate ACK per out-of-order
    /// segment, even when a batch of them is processed at once).
    fn choose_control(&mut self) -> Option<Plan> {
        if std::mem::take(&mut self.pending.probe) && self.snd.wnd == 0 {
            return Some(Plan::WindowProbe);
        }
        if std::mem::take(&mut self.pending.keepalive) {
            return Some(Plan::KeepaliveProbe);
        }
        let p = &self.pending;
        (p.ack || p.challenge || p.dup_acks_owed > 0 || p.window_update).then_some(Plan::Ack)
    }

    /// A segment at SND.UNA - 1 without data: the peer, which has that
    /// byte already, answers with an ACK (zero-window and keepalive probes).
    fn build_probe(&mut self, now: Instant, buf: &mut [u8]) -> Option<Emitted> {
        let window = self.advertise(false);
        let opts = self.seg_options(now, false);
        let seg = self.header(
            self.snd.una + 1u32.wrapping_neg(),
            self.rcv.nxt,
            TcpFlags::ACK,
            window,
            opts,
        );
        self.write(buf, &seg, 0, 0, false)
    }

    /// Writes `plan` into `buf` and does what sending it implies.
    fn build(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        plan: Plan,
        vectored: bool,
    ) -> Option<Emitted> {
        match plan {
            Plan::Reset => {
                self.pending.rst = false;
                debug!("{} -> {}: sending RST", self.local, self.remote);
                // SND.NXT of RFC 9293 3.10.5 (snd.nxt may have rewound).
                let seg = self.header(
                    self.snd.max,
                    SeqNum(0),
                    TcpFlags::RST,
                    0,
                    TcpOptions::default(),
                );
                self.write(buf, &seg, 0, 0, false)
            }
            Plan::Syn => self.build_syn(now, buf),
            Plan::Data { seq, len, fin, why } => {
                self.build_data(now, (buf, vectored), seq, len, fin, why)
            }
            Plan::WindowProbe => {
                self.stats.zero_window_probes += 1;
                trace!("{} -> {}: zero-window probe", self.local, self.remote);
                self.build_probe(now, buf)
            }
            Plan::KeepaliveProbe => {
                self.stats.keepalive_probes += 1;
                trace!("{} -> {}: keepalive probe", self.local, self.remote);
                self.build_probe(now, buf)
            }
            Plan::Ack => {
                let window = self.advertise(false);
                let opts = self.seg_options(now, true);
                // RFC 9293's SND.NXT: ours rewinds to SND.UNA on a timeout, and
                // the peer drops an ACK whose sequence number is below RCV.NXT.
                let seg = self.header(self.snd.max, self.rcv.nxt, TcpFlags::ACK, window, opts);
                self.write(buf, &seg, 0, 0, false)
            }
            Plan::ArmPersist => {
                let backoff = 1u32 << self.snd.persist_backoff.min(6);
                let interval = (self.rtt.rto() * backoff).min(self.cfg.rtt.max_rto);
                self.timers.set(Timer::Persist, now + interval);
                None
            }
        }
    }

    /// Our SYN or SYN-ACK (RFC 9293 section 3.10.1 and 3.10.7.2).
    fn build_syn(&mut self, now: Instant, buf: &mut [u8]) -> Option<Emitted> {
        let syn_ack = self.state == State::SynReceived;
        let (flags, ack) = if syn_ack {
            (TcpFlags::SYN | TcpFlags::ACK, self.rcv.nxt)
        } else {
            (TcpFlags::SYN, SeqNum(0))
        };
        let window = self.advertise(true);
        let opts = self.syn_options(now, syn_ack);
        let seg = self.header(self.snd.iss, ack, flags, window, opts);
        self.snd.nxt = self.snd.iss + 1u32;
        self.snd.max = self.snd.max.max(self.snd.nxt);
        if self.rec.retries == 0 {
            self.rec.rtt_probe = Some((self.snd.nxt, now));
        }
        self.timers
            .set_if_stopped(Timer::Retransmit, now + self.rtt.rto());
        trace!("{} -> {}: sending {:?}", self.local, self.remote, flags);
        self.write(buf, &seg, 0, 0, false)
    }

    /// A segment carrying `len` bytes from `seq` (and our FIN if `fin`),
    /// into the buffer (with `vectored`, see `poll_transmit_vectored`).
    fn build_data(
        &mut self,
        now: Instant,
        (buf, vectored): (&mut [u8], bool),
        seq: SeqNum,
        len: usize,
        fin: bool,
        why: Why,
    ) -> Option<Emitted> {
        let off = seq - self.snd.una;
        let mut flags = TcpFlags::ACK;
        if len > 0 && off + len == self.snd.buf.len() {
            flags.insert(TcpFlags::PSH);
        }
        if fin {
            flags.insert(TcpFlags::FIN);
        }
        let window = self.advertise(false);
        let opts = self.seg_options(now, false);
        let seg = self.header(seq, self.rcv.nxt, flags, window, opts);
        let written = self.write(buf, &seg, off, len, vectored)?;
        let retransmission = match why {
            Why::RetransmitUna | Why::SackHole => true,
            Why::Data | Why::TailLossProbe => seq.lt(self.snd.max),
        };
        self.account_retransmission(now, seq, len, fin, why, retransmission);
        if self.unacked_since.is_none() {
            self.unacked_since = Some(now);
        }
        let end = seq + len + usize::from(fin);
        if len % self.payload_mss() != 0 {
            // A small segment, or a super-segment that ends in one.
            self.snd.last_small_end = Some(end.max(self.snd.last_small_end.unwrap_or(end)));
        }
        if fin {
            self.snd.fin_seq = Some(seq + len);
        }
        if seq == self.snd.nxt || (why == Why::TailLossProbe && seq == self.snd.max) {
            // A probe with new data continues from the top, not from a rewound SND.NXT.
            self.snd.nxt = end;
        }
        if end.gt(self.snd.max) {
            if self.rec.rtt_probe.is_none() && !retransmission {
                self.rec.rtt_probe = Some((end, now));
            }
            self.snd.max = end;
        }
        if why == Why::TailLossProbe {
            // RFC 8985 section 7.3: the RTO timer is re-armed from the probe,
            // so that the probe's answer can arrive before it.
            self.timers.set(Timer::Retransmit, now + self.rtt.rto());
        }
        self.timers
            .set_if_stopped(Timer::Retransmit, now + self.rtt.rto());
        self.timers.stop(Timer::Persist);
        self.arm_tlp(now);
        Some(written)
    }

    /// The bookkeeping of sending `len` bytes from `seq` again: counters,
    /// the recovery marks, and Karn's rule (RFC 6298 section 3).
    fn account_retransmission(
        &mut self,
        now: Instant,
        seq: SeqNum,
        len: usize,
        fin: bool,
        why: Why,
        retransmission: bool,
    ) {
        match why {
            Why::RetransmitUna => {
                self.rec.high_rxt = self.rec.high_rxt.max(seq + len);
                self.rec.una_rxt = Some((seq, now));
            }
            Why::SackHole => {
                self.rec.high_rxt = seq + len;
                if seq == self.snd.una {
                    self.rec.una_rxt = Some((seq, now));
                }
                self.stats.sack_retransmits += 1;
                trace!(
                    "{} -> {}: SACK recovery resends hole at {} ({} bytes)",
                    self.local,
                    self.remote,
                    seq,
                    len
                );
            }
            Why::TailLossProbe => {
                self.stats.tail_loss_probes += 1;
                trace!(
                    "{} -> {}: tail loss probe seq={} len={}",
                    self.local,
                    self.remote,
                    seq,
                    len
                );
                if retransmission {
                    self.rec.rtt_probe = None;
                }
            }
            Why::Data => {}
        }
        if retransmission {
            trace!(
                "{} -> {}: retransmitting seq={} len={}{}",
                self.local,
                self.remote,
                seq,
                len,
                if fin { " +FIN" } else { "" }
            );
            // Karn's rule: once anything is sent twice, the ACK that covers
            // the timed segment may answer the copy, so the measurement in
            // progress is void (a hole resent during recovery would otherwise
            // time the whole recovery).
            self.karn_block(now);
        }
    }

    /// The window field to advertise, and the right edge it implies.
    fn advertise(&mut self, syn: bool) -> u16 {
        // A duplicate ACK must repeat the last window exactly, or the peer
        // takes it for a window update and does not count it (RFC 5681 section 2).
        if self.pending.dup_acks_owed > 0 && self.rcv.nxt == self.rcv.last_adv_nxt && !syn {
            return self.rcv.last_adv_field;
        }
        self.pending.window_update = false;
        let free = self.rcv.free();
        let current = self.rcv.wnd();
        // Receiver SWS avoidance (RFC 1122 4.2.3.3): don't move the right edge by crumbs.
        let threshold = self.rcv.sws_threshold(self.cfg.mss);
        let mut wnd = if free >= current + threshold || free == self.rcv.cap {
            free
        } else {
            current
        };
        let shift = if syn { 0 } else { self.rcv.wscale };
        let field = (wnd >> shift).min(65535);
        wnd = field << shift;
        // Never shrink the window (RFC 9293 section 3.8.6.2.2).
        let edge = self.rcv.nxt + wnd;
        if edge.gt(self.rcv.adv) {
            self.rcv.adv = edge;
        }
        self.rcv.last_adv_nxt = self.rcv.nxt;
        self.rcv.last_adv_field = field as u16;
        field as u16
    }

    /// A segment from us to the peer, without payload ([`write`](Tcb::write)
    /// adds it).
    fn header(
        &self,
        seq: SeqNum,
        ack: SeqNum,
        flags: TcpFlags,
        window: u16,
        options: TcpOptions,
    ) -> TcpSegment<'static> {
        TcpSegment {
            src: self.local,
            dst: self.remote,
            seq,
            ack,
            flags,
            window,
            options,
            payload: &[],
        }
    }

    /// Serialises `seg` with, as payload, the `len` bytes `off` bytes after
    /// SND.UNA, and settles what an ACK in it answers.
    fn write(
        &mut self,
        buf: &mut [u8],
        seg: &TcpSegment<'_>,
        off: usize,
        len: usize,
        vectored: bool,
    ) -> Option<Emitted> {
        let partial = self.cfg.checksum_offload;
        // Vectored: the payload stays in the send buffer (the device writes
        // it from there); else it is copied after the headers.
        let vectored = vectored && partial && len > 0;
        let written = if vectored {
            wire::emit_tcp_headers(buf, seg, len)
        } else {
            let (first, second) = self.snd.slices(off, len);
            let out = TcpSegment {
                payload: first,
                ..*seg
            };
            wire::emit_tcp_with(buf, &out, second, partial)
        };
        let Some(written) = written else {
            debug!("{} -> {}: output buffer too small", self.local, self.remote);
            return None;
        };
        let mss = self.payload_mss();
        let offload = TxOffload {
            partial_checksum: partial,
            // `mss` is at most the u16 MSS option.
            segment_size: (len > mss).then_some(mss as u16),
        };
        self.stats.segs_out += len.div_ceil(mss).max(1) as u64;
        self.stats.bytes_out += len as u64;
        if seg.flags.contains(TcpFlags::ACK) {
            self.opts.last_ack_sent = seg.ack;
            self.pending.ack = false;
            self.pending.challenge = false;
            self.pending.dup_acks_owed = self.pending.dup_acks_owed.saturating_sub(1);
            self.timers.stop(Timer::DelayedAck);
            self.rcv.unacked_bytes = 0;
        }
        trace!(
            "{} -> {}: {:?} seq={} ack={} win={} len={}",
            self.local,
            self.remote,
            seg.flags,
            seg.seq,
            seg.ack,
            seg.window,
            len
        );
        Some(Emitted {
            len: written,
            offload,
            payload: if vectored { (off, len) } else { (0, 0) },
        })
    }
}
