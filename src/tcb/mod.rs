//! The transmission control block: one TCP connection's state machine.
//!
//! This is the heart of utcp and it is sans-IO: a [`Tcb`] never touches a
//! device or a clock. The stack feeds it segments ([`Tcb::handle_segment`])
//! and timer expiries ([`Tcb::handle_timeout`]), the application feeds it
//! data ([`Tcb::send`], [`Tcb::recv`], [`Tcb::close`]), and the stack asks it
//! for segments to transmit ([`Tcb::poll_transmit`]) and for its next
//! deadline ([`Tcb::poll_timeout`]).
//!
//! Names follow RFC 9293 section 3.3.1 (`snd.una`, `snd.nxt`, `rcv.nxt`,
//! ...). The folder is split by concept, each file readable in one sitting:
//!
//! | file | concept |
//! |---|---|
//! | `mod.rs` | the [`Tcb`], its constructors, accessors and application calls |
//! | `input.rs` | segment arrival, one function per RFC 9293 section 3.10.7 step |
//! | `output.rs` | choose the next segment as a plan, then build it |
//! | `send.rs`, `recv.rs` | the send and receive sequence spaces and their buffers |
//! | `options.rs` | negotiated options, timestamps, PAWS |
//! | `recovery.rs` | RTO, duplicate ACKs, SACK recovery, TLP, Karn, Eifel undo |
//! | `timer.rs` | [`Timer`] and the deadline table |
//! | `config.rs`, `stats.rs`, `error.rs` | [`TcpConfig`], [`ConnStats`]/[`ConnInfo`], [`TcpError`] |

use std::net::SocketAddrV4;

use log::debug;

use crate::cc::{self, Controller};
use crate::error::Error;
use crate::rtt::RttEstimator;
use crate::seq::SeqNum;
use crate::state::State;
use crate::syncookie::CookieOptions;
use crate::time::Instant;
use crate::wire::TcpSegment;

mod config;
mod error;
mod events;
mod input;
mod keepalive;
mod options;
mod output;
mod recovery;
mod recv;
mod send;
mod stats;
mod timer;

pub use config::{Keepalive, TcpConfig};
pub use error::TcpError;
pub use events::ConnEvent;
pub(crate) use options::{timestamp_clock, window_scale_for};
pub use output::Emitted;
pub use stats::{ConnInfo, ConnStats};
pub use timer::Timer;

use events::Events;
use options::Negotiated;
use output::Pending;
use recovery::Recovery;
use recv::RecvSpace;
use send::SendSpace;
use timer::TimerTable;

/// An unacceptable segment without data (an ACK) is answered at most once
/// per this interval (Linux's `tcp_invalid_ratelimit`, 500 ms): two ends
/// whose ACKs are each out of the other's window (both windows closed
/// after window probes) would otherwise answer each other for ever. Data
/// segments are always answered: they are not part of such a loop and
/// their sender needs the ACK.
pub const OOW_ACK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// The MSS assumed when the peer sends none (RFC 9293 section 3.7.1).
pub const DEFAULT_MSS: u16 = 536;

/// What the stack must do with a segment after the TCB processed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing more: the TCB handled it.
    Done,
    /// The segment asks the stack to answer with a reset (RFC 9293 3.10.7).
    SendReset,
}

/// One TCP connection (RFC 9293 section 3.3.1's TCB).
#[derive(Debug)]
pub struct Tcb {
    state: State,
    local: SocketAddrV4,
    remote: SocketAddrV4,
    cfg: TcpConfig,
    /// The send sequence space and buffer.
    snd: SendSpace,
    /// The receive sequence space, buffer and reassembly queue.
    rcv: RecvSpace,
    /// Options agreed in the handshake, timestamp state.
    opts: Negotiated,
    /// Every deadline of this connection.
    timers: TimerTable,
    /// The RFC 6298 estimator.
    rtt: RttEstimator,
    /// Loss detection and recovery.
    rec: Recovery,
    /// The congestion controller: cwnd and ssthresh.
    cc: Box<dyn Controller>,
    /// What the output owes the peer.
    pending: Pending,
    /// Why the connection ended, if it ended abnormally.
    error: Option<TcpError>,
    /// What happened that the application has not been told yet.
    events: Events,
    stats: ConnStats,
    /// The application let go ([`set_orphaned`](Self::set_orphaned)): the
    /// orphan limits of [`TcpConfig`] apply.
    orphaned: bool,
    /// When FIN-WAIT-2 began (the orphan timeout counts from there).
    fin_wait_2_since: Option<Instant>,
    /// When the last segment arrived (keepalive's idle time counts from it).
    last_rx: Instant,
    /// Keepalive probes sent since the peer last said something.
    keepalive_probes_out: u32,
    /// Since when SND.UNA's data waits for its ACK (the user timeout
    /// counts from it).
    unacked_since: Option<Instant>,
    /// When we last answered an unacceptable segment without data.
    oow_ack_at: Option<Instant>,
}

impl Tcb {
    fn new(local: SocketAddrV4, remote: SocketAddrV4, iss: SeqNum, cfg: TcpConfig) -> Self {
        let snd_mss = u32::from(DEFAULT_MSS.min(cfg.mss));
        let rcv_wscale = if cfg.window_scaling {
            options::window_scale_for(cfg.recv_buffer)
        } else {
            0
        };
        Tcb {
            state: State::Closed,
            local,
            remote,
            snd: SendSpace::new(iss, snd_mss, cfg.nagle),
            rcv: RecvSpace::new(cfg.recv_buffer, rcv_wscale),
            opts: Negotiated::default(),
            timers: TimerTable::default(),
            rtt: RttEstimator::new(cfg.rtt),
            rec: Recovery::new(iss),
            cc: cc::new_controller_with_hystart(
                cfg.congestion,
                snd_mss,
                cfg.initial_window,
                cfg.hystart,
            ),
            pending: Pending::default(),
            error: None,
            events: Events::default(),
            stats: ConnStats::default(),
            orphaned: false,
            fin_wait_2_since: None,
            last_rx: Instant::ZERO,
            keepalive_probes_out: 0,
            unacked_since: None,
            oow_ack_at: None,
            cfg,
        }
    }

    /// Active open (RFC 9293 section 3.10.1): a TCB in SYN-SENT whose first
    /// [`poll_transmit`](Self::poll_transmit) emits the SYN.
    pub fn connect(local: SocketAddrV4, remote: SocketAddrV4, iss: SeqNum, cfg: TcpConfig) -> Self {
        let mut tcb = Tcb::new(local, remote, iss, cfg);
        tcb.set_state(State::SynSent);
        tcb
    }

    /// Passive open: a SYN arrived for a listening port (RFC 9293 section
    /// 3.10.7.2, "third check for a SYN"). Returns a TCB in SYN-RECEIVED whose
    /// first [`poll_transmit`](Self::poll_transmit) emits the SYN-ACK.
    pub fn accept(seg: &TcpSegment<'_>, iss: SeqNum, cfg: TcpConfig) -> Self {
        let mut tcb = Tcb::new(seg.dst, seg.src, iss, cfg);
        // The listener's state, so the log reads LISTEN -> SYN-RECEIVED.
        tcb.state = State::Listen;
        tcb.rcv.on_syn(seg.seq);
        tcb.rcv.adv = tcb.rcv.nxt;
        tcb.apply_syn_options(seg);
        // The window in a SYN is never scaled (RFC 7323 section 2.2).
        tcb.snd.update_window(u32::from(seg.window), seg.seq, iss);
        tcb.set_state(State::SynReceived);
        tcb
    }

    /// Passive open from a SYN cookie (RFC 4987 section 3.6): `ack` is the
    /// third segment of a handshake whose SYN-ACK (sequence number `iss`,
    /// the cookie) the stack sent without keeping state. The TCB is rebuilt
    /// in SYN-RECEIVED as if it had sent that SYN-ACK, from the peer's MSS
    /// and the options the cookie carried; the stack then hands it `ack`,
    /// which completes the handshake as usual.
    pub fn from_cookie(
        now: Instant,
        ack: &TcpSegment<'_>,
        iss: SeqNum,
        mss: u16,
        opts: CookieOptions,
        cfg: TcpConfig,
    ) -> Self {
        // The SYN-ACK carried timestamps only if the SYN did, and then the
        // peer's ACK carries them too (RFC 7323 section 3.2).
        let ts = ack.options.timestamp.filter(|_| cfg.timestamps);
        let syn = TcpSegment {
            src: ack.src,
            dst: ack.dst,
            seq: ack.seq - 1u32,
            ack: SeqNum(0),
            flags: crate::wire::TcpFlags::SYN,
            window: 0,
            options: crate::wire::TcpOptions {
                mss: Some(mss),
                window_scale: ts.and(opts.wscale),
                sack_permitted: ts.is_some() && opts.sack,
                timestamp: ts.map(|(tsval, _)| (tsval, 0)),
                ..Default::default()
            },
            payload: &[],
        };
        let mut tcb = Tcb::accept(&syn, iss, cfg);
        tcb.snd.nxt = iss + 1u32;
        tcb.snd.max = tcb.snd.nxt;
        tcb.opts.last_ack_sent = tcb.rcv.nxt;
        // The window the SYN-ACK offered (a SYN's is never scaled).
        tcb.rcv.adv = tcb.rcv.nxt + tcb.rcv.cap.min(65_535);
        tcb.rcv.last_adv_nxt = tcb.rcv.nxt;
        // The echo of the cookie's TSval (its low bits replaced) would
        // time nothing real: no RTT sample until a later segment's echo.
        tcb.karn_block(now);
        tcb
    }

    fn set_state(&mut self, new: State) {
        if self.state == new {
            return;
        }
        debug!(
            "{} -> {}: {} -> {}",
            self.local, self.remote, self.state, new
        );
        if new.is_synchronized() && !self.state.is_synchronized() {
            self.events.raise(ConnEvent::Established);
            self.events.raise(ConnEvent::Writable);
        }
        self.state = new;
    }

    /// Takes the next thing that happened to this connection since the last
    /// call (at most one of each kind is kept). Call it after
    /// [`handle_segment`](Self::handle_segment),
    /// [`handle_timeout`](Self::handle_timeout) or an application call, until
    /// it returns `None`.
    pub fn poll_event(&mut self) -> Option<ConnEvent> {
        self.events.take()
    }

    /// True while [`poll_event`](Self::poll_event) has something to return.
    pub fn has_events(&self) -> bool {
        self.events.any()
    }

    // ------------------------------------------------------------------
    // Accessors
    // ------------------------------------------------------------------

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Our address and port.
    pub fn local(&self) -> SocketAddrV4 {
        self.local
    }

    /// The peer's address and port.
    pub fn remote(&self) -> SocketAddrV4 {
        self.remote
    }

    /// Why the connection ended, if a reset or a timeout ended it.
    pub fn error(&self) -> Option<TcpError> {
        self.error
    }

    /// Counters of this connection.
    pub fn stats(&self) -> &ConnStats {
        &self.stats
    }

    /// A snapshot of counters, estimator, congestion and window state.
    pub fn info(&self) -> ConnInfo {
        ConnInfo {
            state: self.state,
            stats: self.stats.clone(),
            srtt: self.rtt.srtt(),
            rttvar: self.rtt.rttvar(),
            rto: self.rtt.rto(),
            cwnd: self.cc.cwnd(),
            ssthresh: self.cc.ssthresh(),
            peer_window: self.snd.wnd,
            mss: self.snd.mss,
            window_scales: (self.rcv.wscale, self.snd.wscale),
            timestamps: self.opts.ts,
            sack: self.opts.sack,
            send_queued: self.snd.buf.len(),
            recv_queued: self.rcv.buf.len(),
        }
    }

    /// The RTT estimator (SRTT, RTTVAR, RTO).
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// The congestion controller (cwnd, ssthresh).
    pub fn congestion(&self) -> &dyn Controller {
        self.cc.as_ref()
    }

    /// True during fast recovery (RFC 6582, RFC 6675).
    pub fn in_recovery(&self) -> bool {
        self.rec.in_recovery()
    }

    /// The peer's current window in bytes (scaled).
    pub fn peer_window(&self) -> u32 {
        self.snd.wnd
    }

    /// The largest window the peer ever offered, in bytes.
    pub fn max_peer_window(&self) -> u32 {
        self.snd.max_wnd
    }

    /// Our initial send sequence number.
    pub fn iss(&self) -> SeqNum {
        self.snd.iss
    }

    /// SND.UNA: the oldest unacknowledged sequence number.
    pub fn snd_una(&self) -> SeqNum {
        self.snd.una
    }

    /// SND.NXT: the next sequence number to send.
    pub fn snd_nxt(&self) -> SeqNum {
        self.snd.nxt
    }

    /// RCV.NXT: the next sequence number expected.
    pub fn rcv_nxt(&self) -> SeqNum {
        self.rcv.nxt
    }

    /// The MSS we use for sending (the smaller of the peer's and ours).
    pub fn send_mss(&self) -> u32 {
        self.snd.mss
    }

    /// The window scale shifts in use: (ours for receiving, the peer's for sending).
    pub fn window_scales(&self) -> (u8, u8) {
        (self.rcv.wscale, self.snd.wscale)
    }

    /// Enables or disables Nagle's algorithm (`TCP_NODELAY` is `!nagle`).
    pub fn set_nagle(&mut self, on: bool) {
        self.snd.nagle = on;
    }

    /// True if Nagle's algorithm is on.
    pub fn nagle(&self) -> bool {
        self.snd.nagle
    }

    /// Bytes waiting in the receive buffer for the application.
    pub fn recv_queued(&self) -> usize {
        self.rcv.buf.len()
    }

    /// Bytes in the send buffer (unacknowledged plus unsent).
    pub fn send_queued(&self) -> usize {
        self.snd.buf.len()
    }

    /// True when [`recv`](Self::recv) would not return `WouldBlock`.
    pub fn can_recv(&self) -> bool {
        !self.rcv.buf.is_empty()
            || self.rcv.fin_received
            || self.rcv.read_shutdown
            || self.state == State::Closed
            || self.error.is_some()
    }

    /// Free bytes in the send buffer.
    pub(super) fn send_room(&self) -> usize {
        self.cfg.send_buffer.saturating_sub(self.snd.buf.len())
    }

    /// How much room an acknowledgment must leave before it raises
    /// [`ConnEvent::Writable`]: half the send buffer. A writer blocked on a
    /// full buffer then wakes once per half buffer instead of once per ACK
    /// (Linux's `sk_stream_write_space` waits for a third), and keeps the
    /// other half in flight while it refills. Readiness itself
    /// ([`can_send`](Self::can_send)) still means "any room".
    pub(super) fn writable_threshold(&self) -> usize {
        (self.cfg.send_buffer / 2).max(1)
    }

    /// True when [`send`](Self::send) would not return `WouldBlock`.
    pub fn can_send(&self) -> bool {
        match self.state {
            State::Established | State::CloseWait => {
                self.snd.fin_queued || self.snd.buf.len() < self.cfg.send_buffer
            }
            State::SynSent | State::SynReceived | State::Listen => false,
            _ => true,
        }
    }

    /// True while a reset is waiting to be sent by [`poll_transmit`](Self::poll_transmit).
    pub fn reset_pending(&self) -> bool {
        self.pending.rst
    }

    /// True while a challenge ACK (RFC 5961) is owed and may still be
    /// cancelled by a rate limit ([`cancel_challenge`](Self::cancel_challenge)).
    pub fn challenge_pending(&self) -> bool {
        self.pending.challenge
    }

    /// Withdraws the owed challenge ACK: the stack-wide budget of RFC 5961
    /// section 7 is spent. Other ACKs owed are not affected.
    pub fn cancel_challenge(&mut self) {
        self.pending.challenge = false;
    }

    /// Owes the peer a challenge ACK (RFC 5961 sections 3.2, 4.2, 5.2).
    fn challenge_ack(&mut self) {
        self.pending.challenge = true;
        self.stats.challenge_acks += 1;
    }

    /// The application let go of the connection (the stack calls this on
    /// release): from now on the orphan limits of [`TcpConfig`] apply
    /// (`orphan_fin_wait_2`, `orphan_probes`).
    pub fn set_orphaned(&mut self) {
        self.orphaned = true;
        self.arm_orphan_fin_wait_2();
    }

    /// An orphan in FIN-WAIT-2 waits `orphan_fin_wait_2` from the start of
    /// FIN-WAIT-2 for the peer's FIN (a half-closed connection the
    /// application still holds arms nothing).
    fn arm_orphan_fin_wait_2(&mut self) {
        if let (true, State::FinWait2, Some(since), Some(period)) = (
            self.orphaned,
            self.state,
            self.fin_wait_2_since,
            self.cfg.orphan_fin_wait_2,
        ) {
            self.timers.set(Timer::FinWait2, since + period);
        }
    }

    /// FIN-WAIT-2's timer: the orphan waited `orphan_fin_wait_2` for the
    /// peer's FIN; it is reset (as Linux does after `tcp_fin_timeout`).
    fn on_fin_wait_2_timeout(&mut self) {
        if self.state != State::FinWait2 {
            return;
        }
        let period = self.cfg.orphan_fin_wait_2.unwrap_or_default();
        debug!(
            "{} -> {}: orphan in FIN-WAIT-2 for {period:?} without the peer's FIN: reset",
            self.local, self.remote
        );
        self.abort();
    }

    /// True once our FIN was sent and acknowledged.
    pub fn fin_acked(&self) -> bool {
        self.snd.fin_acked()
    }

    /// True once all data we sent, and our FIN if any, is acknowledged.
    pub fn all_acked(&self) -> bool {
        self.snd.una == self.snd.max && self.snd.buf.is_empty()
    }

    // ------------------------------------------------------------------
    // Application calls
    // ------------------------------------------------------------------

    /// Queues `data` for sending; returns how much fit in the send buffer.
    /// `WouldBlock` when the buffer is full or the handshake is not done yet.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, Error> {
        let fin_queued = self.snd.fin_queued;
        match self.state {
            State::SynSent | State::SynReceived | State::Listen if !fin_queued => {
                return Err(Error::WouldBlock)
            }
            State::Established | State::CloseWait if !fin_queued => {}
            // A reset or timeout is reported as such; after our own close it
            // stays SendShutdown even once the connection is gone (like EPIPE).
            State::Closed if self.error.is_some() || !fin_queued => {
                return Err(self.error.map_or(Error::NotConnected, Error::Ended))
            }
            _ => return Err(Error::SendShutdown),
        }
        if data.is_empty() {
            return Ok(0);
        }
        let room = self.cfg.send_buffer.saturating_sub(self.snd.buf.len());
        if room == 0 {
            return Err(Error::WouldBlock);
        }
        let n = room.min(data.len());
        self.snd.buf.extend(&data[..n]);
        Ok(n)
    }

    /// Reads received data into `buf`. `Ok(0)` is end of stream (the peer's
    /// FIN, or our own read shutdown); `WouldBlock` when nothing is there yet.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if !self.rcv.buf.is_empty() {
            let n = self.rcv.read(buf);
            if n > 0 {
                self.maybe_window_update();
            }
            return Ok(n);
        }
        if self.rcv.fin_received || self.rcv.read_shutdown {
            return Ok(0);
        }
        if let Some(e) = self.error {
            return Err(Error::Ended(e));
        }
        match self.state {
            State::Closed | State::TimeWait | State::Closing | State::LastAck => Ok(0),
            _ => Err(Error::WouldBlock),
        }
    }

    /// Copies received data into `buf` without consuming it (MSG_PEEK).
    pub fn peek(&self, buf: &mut [u8]) -> usize {
        self.rcv.peek(buf)
    }

    /// RFC 1122 4.2.3.3 (receiver SWS avoidance): announce a reopened window
    /// only once it grew by min(RCV.BUFF / 2, MSS).
    fn maybe_window_update(&mut self) {
        if !self.state.can_receive() {
            return;
        }
        let threshold = self.rcv.sws_threshold(self.cfg.mss);
        if self.rcv.free() >= self.rcv.wnd() + threshold {
            self.pending.window_update = true;
        }
    }

    /// Closes our sending side (RFC 9293 section 3.10.4, CLOSE call): a FIN
    /// follows the queued data. Idempotent.
    pub fn close(&mut self) {
        match self.state {
            State::SynSent | State::Listen => self.set_state(State::Closed),
            State::SynReceived => {
                // RFC 9293 section 3.10.4: queue the FIN for processing after
                // entering ESTABLISHED, so the SYN-ACK can still be retransmitted.
                self.snd.fin_queued = true;
            }
            State::Established => {
                self.snd.fin_queued = true;
                self.set_state(State::FinWait1);
            }
            State::CloseWait => {
                self.snd.fin_queued = true;
                self.set_state(State::LastAck);
            }
            _ => {}
        }
    }

    /// Shuts down our reading side: buffered and future data is discarded.
    pub fn shutdown_read(&mut self) {
        self.rcv.read_shutdown = true;
        self.rcv.buf.clear();
    }

    /// Aborts the connection (RFC 9293 section 3.10.5, ABORT call): sends a
    /// RST if the peer knows about us, and goes to CLOSED.
    pub fn abort(&mut self) {
        self.abort_inner(None);
    }

    /// Aborts (with a RST, as [`abort`](Self::abort)) and reports `why` to
    /// the application.
    pub(super) fn abort_with(&mut self, why: TcpError) {
        self.abort_inner(Some(why));
    }

    fn abort_inner(&mut self, why: Option<TcpError>) {
        if matches!(
            self.state,
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
        ) {
            self.pending.rst = true;
        }
        self.snd.buf.clear();
        self.enter_closed(why);
    }

    fn enter_closed(&mut self, error: Option<TcpError>) {
        if error.is_some() && self.error.is_none() {
            self.error = error;
        }
        self.set_state(State::Closed);
        self.events.raise(ConnEvent::Readable);
        self.events.raise(ConnEvent::Closed(self.error));
        self.timers.stop_all();
        let rst = self.pending.rst;
        self.pending = Pending {
            rst,
            ..Pending::default()
        };
        self.rcv.reassembly.clear();
        debug!(
            "{} -> {}: closed{}: {}",
            self.local,
            self.remote,
            match error {
                Some(e) => format!(" with error {e:?}"),
                None => String::new(),
            },
            self.info()
        );
    }

    // ------------------------------------------------------------------
    // Timers
    // ------------------------------------------------------------------

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// Handles every timer that expired at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timers.take_expired(Timer::TimeWait, now) {
            debug!("{} -> {}: 2*MSL elapsed", self.local, self.remote);
            self.enter_closed(None);
            return;
        }
        if self.timers.take_expired(Timer::FinWait2, now) {
            self.on_fin_wait_2_timeout();
            if self.state == State::Closed {
                return;
            }
        }
        if self.timers.take_expired(Timer::Keepalive, now) {
            self.on_keepalive_timeout(now);
            if self.state == State::Closed {
                return;
            }
        }
        if self.timers.take_expired(Timer::DelayedAck, now) {
            self.pending.ack = true;
        }
        if self.timers.take_expired(Timer::Persist, now) {
            if self.orphaned && self.snd.persist_backoff >= self.cfg.orphan_probes {
                debug!(
                    "{} -> {}: orphan behind a zero window after {} probes: reset",
                    self.local, self.remote, self.snd.persist_backoff
                );
                self.abort();
                return;
            }
            self.pending.probe = true;
            self.snd.persist_backoff = self.snd.persist_backoff.saturating_add(1);
        }
        if self.timers.take_expired(Timer::TailLossProbe, now) {
            self.on_tlp_timeout(now);
        }
        if self.timers.take_expired(Timer::Retransmit, now) {
            self.on_rto(now);
        }
    }
}

#[cfg(test)]
mod tests;
