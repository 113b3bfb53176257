//! The transmission control block: one TCP connection's state machine.
//!
//! This is the heart of utcp and it is sans-IO: a [`Tcb`] never touches a
//! device or a clock. The stack feeds it segments ([`Tcb::on_segment`]) and
//! timer expiries ([`Tcb::on_timeout`]), the application feeds it data
//! ([`Tcb::send`], [`Tcb::recv`], [`Tcb::close`]), and the stack asks it for
//! segments to transmit ([`Tcb::dispatch`]) and for its next deadline
//! ([`Tcb::poll_at`]).
//!
//! Names follow RFC 9293 section 3.3.1 (`snd_una`, `snd_nxt`, `rcv_nxt`, ...)
//! and the segment-arrival code follows section 3.10.7 step by step.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddrV4;
use std::time::Duration;

use log::{debug, trace};

use crate::congestion::{AckAction, Congestion, DupAckAction};
use crate::reassembly::ReassemblyQueue;
use crate::rtt::{RttConfig, RttEstimator};
use crate::sack::Scoreboard;
use crate::seq::SeqNum;
use crate::state::State;
use crate::time::Instant;
use crate::wire::{self, TcpFlags, TcpOptions, TcpRepr, TcpSegment};

/// The MSS assumed when the peer sends none (RFC 9293 section 3.7.1).
pub const DEFAULT_MSS: u16 = 536;

/// Tunables of a connection. [`TcpConfig::default`] suits a 1500-byte MTU.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// The MSS we announce: the largest segment we can receive (MTU - 40).
    pub mss: u16,
    /// Receive buffer size in bytes: the largest window we advertise.
    pub recv_buffer: usize,
    /// Send buffer size in bytes: how much unacknowledged data we hold.
    pub send_buffer: usize,
    /// Offer the window scale option (RFC 7323 section 2).
    pub window_scaling: bool,
    /// Retransmission timer bounds (RFC 6298).
    pub rtt: RttConfig,
    /// Retransmissions of data or FIN before the connection is aborted with `TimedOut`.
    pub max_retries: u32,
    /// Retransmissions of a SYN before `connect` fails with `TimedOut`.
    pub max_syn_retries: u32,
    /// Maximum segment lifetime; TIME-WAIT lasts twice this (RFC 9293 section 3.4.2).
    pub msl: Duration,
    /// Delayed ACK timeout (RFC 1122 4.2.3.2, RFC 5681 4.2); `None` acks every segment.
    pub ack_delay: Option<Duration>,
    /// Initial congestion window in segments; 0 means the RFC 6928 formula.
    pub initial_window: u32,
    /// Nagle's algorithm (RFC 896, RFC 1122 4.2.3.4) for new connections.
    pub nagle: bool,
    /// Offer and use the timestamps option (RFC 7323 section 3).
    pub timestamps: bool,
    /// Offer SACK-permitted and send SACK blocks (RFC 2018); with the
    /// peer's blocks, recover holes per RFC 6675.
    pub sack: bool,
    /// Send a tail loss probe 2*SRTT after the last transmission when no
    /// ACK came (RFC 8985 section 7), instead of waiting for the RTO.
    pub tail_loss_probe: bool,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mss: 1460,
            recv_buffer: 512 * 1024,
            send_buffer: 512 * 1024,
            window_scaling: true,
            rtt: RttConfig::default(),
            max_retries: 8,
            max_syn_retries: 5,
            msl: Duration::from_secs(1),
            ack_delay: Some(Duration::from_millis(40)),
            initial_window: 0,
            nagle: true,
            timestamps: true,
            sack: true,
            tail_loss_probe: true,
        }
    }
}

/// Counters of one connection, for tests, logs and curious users.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Segments received (after validation).
    pub segs_in: u64,
    /// Segments sent.
    pub segs_out: u64,
    /// Payload bytes received in order and handed to the receive buffer.
    pub bytes_in: u64,
    /// Payload bytes sent, retransmissions included.
    pub bytes_out: u64,
    /// Retransmission timer expiries that led to a retransmission.
    pub retransmits_timeout: u64,
    /// Fast retransmits on the third duplicate ACK (RFC 5681 section 3.2).
    pub fast_retransmits: u64,
    /// NewReno retransmissions after a partial ACK (RFC 6582).
    pub partial_ack_retransmits: u64,
    /// Duplicate ACKs received.
    pub dup_acks: u64,
    /// Zero-window probes sent.
    pub zero_window_probes: u64,
    /// Holes retransmitted during SACK-based recovery (RFC 6675).
    pub sack_retransmits: u64,
    /// Tail loss probes sent (RFC 8985 section 7).
    pub tail_loss_probes: u64,
    /// Retransmissions resent because SACKs showed they were lost too.
    pub lost_retransmits: u64,
    /// Loss episodes that proved spurious (the original arrived: the ACK
    /// echoed its older timestamp, RFC 3522) and whose cwnd cut was undone.
    pub spurious_retransmits: u64,
    /// Segments that failed the acceptability test (RFC 9293 section 3.10.7.4).
    pub unacceptable: u64,
    /// Out-of-order segments queued for reassembly.
    pub out_of_order: u64,
}

/// A snapshot of a connection: its counters plus the estimator, congestion
/// and window state (what Linux reports as `tcp_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// The RFC 9293 state.
    pub state: State,
    /// The counters.
    pub stats: ConnStats,
    /// Smoothed RTT (RFC 6298), once measured.
    pub srtt: Option<Duration>,
    /// RTT variation (RFC 6298), once measured.
    pub rttvar: Option<Duration>,
    /// Current retransmission timeout, back-off included.
    pub rto: Duration,
    /// Congestion window in bytes.
    pub cwnd: u32,
    /// Slow start threshold in bytes (`u32::MAX` until the first loss).
    pub ssthresh: u32,
    /// The peer's receive window in bytes (scaled).
    pub peer_window: u32,
    /// Our send MSS (payload bytes per segment, before options).
    pub mss: u32,
    /// Window scale shifts: (ours, the peer's); (0, 0) when not negotiated.
    pub window_scales: (u8, u8),
    /// Timestamps negotiated (RFC 7323).
    pub timestamps: bool,
    /// SACK negotiated (RFC 2018).
    pub sack: bool,
    /// Bytes queued to send (unacknowledged and unsent).
    pub send_queued: usize,
    /// Bytes received and not yet read.
    pub recv_queued: usize,
}

impl std::fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.stats;
        write!(
            f,
            "{} segs in/out {}/{} bytes in/out {}/{} rto-retx {} fast-retx {} \
             newreno-retx {} sack-retx {} lost-retx {} tlp {} spurious {} dupacks {} zwp {} \
             srtt {:?} rttvar {:?} rto {:?} cwnd {} ssthresh {} peer-wnd {}",
            self.state,
            s.segs_in,
            s.segs_out,
            s.bytes_in,
            s.bytes_out,
            s.retransmits_timeout,
            s.fast_retransmits,
            s.partial_ack_retransmits,
            s.sack_retransmits,
            s.lost_retransmits,
            s.tail_loss_probes,
            s.spurious_retransmits,
            s.dup_acks,
            s.zero_window_probes,
            self.srtt,
            self.rttvar,
            self.rto,
            self.cwnd,
            self.ssthresh,
            self.peer_window
        )
    }
}

/// The state before a loss response, kept to undo it if the retransmission
/// turns out to have been unnecessary (the Eifel algorithm, RFC 3522).
#[derive(Clone, Copy, Debug)]
struct Undo {
    /// The segment that was retransmitted.
    seq: SeqNum,
    /// Our TSval when it was retransmitted.
    tsval: u32,
    /// cwnd and ssthresh before the reduction.
    cwnd: u32,
    ssthresh: u32,
}

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

    // Send sequence space (RFC 9293 section 3.3.1).
    iss: SeqNum,
    snd_una: SeqNum,
    snd_nxt: SeqNum,
    /// Highest sequence number ever sent (snd_nxt rewinds on timeout).
    snd_max: SeqNum,
    /// Peer's window in bytes, already scaled.
    snd_wnd: u32,
    /// Largest window the peer ever offered (for sender-side SWS avoidance).
    max_snd_wnd: u32,
    snd_wl1: SeqNum,
    snd_wl2: SeqNum,
    /// Data from `snd_una` on: sent-but-unacknowledged, then unsent.
    snd_buf: VecDeque<u8>,
    /// The application closed its sending side: a FIN follows the data.
    fin_queued: bool,
    /// Sequence number our FIN occupies, once sent.
    fin_seq: Option<SeqNum>,
    /// Largest segment we send.
    snd_mss: u32,
    /// Shift applied to the peer's window field.
    snd_wscale: u8,

    // Receive sequence space.
    irs: SeqNum,
    rcv_nxt: SeqNum,
    /// Right edge of the window we last advertised (never moves left).
    rcv_adv: SeqNum,
    /// Shift we apply to our window field.
    rcv_wscale: u8,
    /// The window field we sent last, and RCV.NXT at that time.
    last_adv_field: u16,
    last_adv_nxt: SeqNum,
    /// Both sides sent the window scale option.
    wscale_ok: bool,
    /// Both sides sent the timestamps option (RFC 7323 section 3.2).
    ts_ok: bool,
    /// TS.Recent: the timestamp to echo (RFC 7323 section 4.3).
    ts_recent: u32,
    /// RCV.NXT when we last sent an ACK (RFC 7323's Last.ACK.sent).
    last_ack_sent: SeqNum,
    /// Both sides sent SACK-permitted (RFC 2018 section 2).
    sack_ok: bool,
    /// Starts of the latest out-of-order segments, most recent first: their
    /// blocks are reported first, in that order (RFC 2018 section 4).
    last_ooo: Vec<SeqNum>,
    /// Karn's rule blocked RTT samples since a retransmission; a timestamp echo may unblock.
    karn_blocked: bool,
    /// Our TSval when that retransmission happened: only echoes of it or later time anything.
    karn_tsval: u32,
    rcv_buf: VecDeque<u8>,
    reassembly: ReassemblyQueue,
    /// A FIN that arrived out of order, at this sequence number.
    fin_pending: Option<SeqNum>,
    /// The peer's FIN was received in order: reads return EOF after the data.
    fin_received: bool,
    /// The application shut down its reading side: data is discarded.
    read_shutdown: bool,
    /// Bytes received in order since we last sent an ACK.
    unacked_bytes: usize,

    // Timers: each an optional deadline.
    rto_deadline: Option<Instant>,
    persist_deadline: Option<Instant>,
    persist_backoff: u32,
    ack_deadline: Option<Instant>,
    time_wait_deadline: Option<Instant>,
    retries: u32,
    rtt: RttEstimator,
    /// RTT measurement in progress: (sequence number to be acked, when sent).
    rtt_probe: Option<(SeqNum, Instant)>,
    cc: Congestion,
    /// What the peer reported holding above SND.UNA (RFC 6675).
    scoreboard: Scoreboard,
    /// In SACK recovery: holes below this were already retransmitted.
    high_rxt: SeqNum,
    /// Tail loss probe timer (RFC 8985 section 7).
    tlp_deadline: Option<Instant>,
    tlp_pending: bool,
    /// A probe is out and unanswered: no second one until new data is acked.
    tlp_outstanding: bool,
    /// End of the last segment sent shorter than the MSS (Minshall's Nagle).
    last_small_end: Option<SeqNum>,
    /// When SND.UNA was last retransmitted in recovery (to spot a lost retransmission).
    una_rxt: Option<(SeqNum, Instant)>,
    /// What to restore if the last loss episode proves spurious (RFC 3522).
    undo: Option<Undo>,

    // What dispatch must emit next.
    ack_pending: bool,
    /// The application freed enough buffer to announce a larger window; kept
    /// apart from `ack_pending` because a duplicate ACK (which must repeat
    /// the old window) does not announce it.
    window_update: bool,
    /// Out-of-order segments not yet answered: each gets its own duplicate
    /// ACK (RFC 5681 section 4.2), even when the driver read them in one batch.
    dup_acks_owed: u32,
    retransmit_one: bool,
    probe_pending: bool,
    rst_pending: bool,
    nagle: bool,

    error: Option<io::ErrorKind>,
    stats: ConnStats,
}

fn window_scale_for(buffer: usize) -> u8 {
    let mut shift = 0u8;
    while shift < 14 && (buffer >> shift) > 65535 {
        shift += 1;
    }
    shift
}

impl Tcb {
    fn new(local: SocketAddrV4, remote: SocketAddrV4, iss: SeqNum, cfg: TcpConfig) -> Self {
        let snd_mss = u32::from(DEFAULT_MSS.min(cfg.mss));
        let rcv_wscale = if cfg.window_scaling {
            window_scale_for(cfg.recv_buffer)
        } else {
            0
        };
        Tcb {
            state: State::Closed,
            local,
            remote,
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_max: iss,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: SeqNum(0),
            snd_wl2: SeqNum(0),
            snd_buf: VecDeque::new(),
            fin_queued: false,
            fin_seq: None,
            snd_mss,
            snd_wscale: 0,
            irs: SeqNum(0),
            rcv_nxt: SeqNum(0),
            rcv_adv: SeqNum(0),
            rcv_wscale,
            last_adv_field: 0,
            last_adv_nxt: SeqNum(0),
            wscale_ok: false,
            ts_ok: false,
            ts_recent: 0,
            last_ack_sent: SeqNum(0),
            sack_ok: false,
            last_ooo: Vec::new(),
            karn_blocked: false,
            karn_tsval: 0,
            rcv_buf: VecDeque::new(),
            reassembly: ReassemblyQueue::new(cfg.recv_buffer),
            fin_pending: None,
            fin_received: false,
            read_shutdown: false,
            unacked_bytes: 0,
            rto_deadline: None,
            persist_deadline: None,
            persist_backoff: 0,
            ack_deadline: None,
            time_wait_deadline: None,
            retries: 0,
            rtt: RttEstimator::new(cfg.rtt),
            rtt_probe: None,
            cc: Congestion::new(snd_mss, cfg.initial_window),
            scoreboard: Scoreboard::new(),
            high_rxt: iss,
            tlp_deadline: None,
            tlp_pending: false,
            tlp_outstanding: false,
            una_rxt: None,
            last_small_end: None,
            undo: None,
            ack_pending: false,
            window_update: false,
            dup_acks_owed: 0,
            retransmit_one: false,
            probe_pending: false,
            rst_pending: false,
            nagle: cfg.nagle,
            error: None,
            stats: ConnStats::default(),
            cfg,
        }
    }

    /// Active open (RFC 9293 section 3.10.1): a TCB in SYN-SENT whose first
    /// [`dispatch`](Self::dispatch) emits the SYN.
    pub fn connect(local: SocketAddrV4, remote: SocketAddrV4, iss: SeqNum, cfg: TcpConfig) -> Self {
        let mut tcb = Tcb::new(local, remote, iss, cfg);
        tcb.set_state(State::SynSent);
        tcb
    }

    /// Passive open: a SYN arrived for a listening port (RFC 9293 section
    /// 3.10.7.2, "third check for a SYN"). Returns a TCB in SYN-RECEIVED whose
    /// first [`dispatch`](Self::dispatch) emits the SYN-ACK.
    pub fn accept(seg: &TcpSegment<'_>, iss: SeqNum, cfg: TcpConfig) -> Self {
        let mut tcb = Tcb::new(seg.dst, seg.src, iss, cfg);
        // The listener's state, so the log reads LISTEN -> SYN-RECEIVED.
        tcb.state = State::Listen;
        tcb.irs = seg.seq;
        tcb.rcv_nxt = seg.seq + 1u32;
        tcb.rcv_adv = tcb.rcv_nxt;
        tcb.apply_syn_options(seg);
        // The window in a SYN is never scaled (RFC 7323 section 2.2).
        tcb.snd_wnd = u32::from(seg.window);
        tcb.max_snd_wnd = tcb.snd_wnd;
        tcb.snd_wl1 = seg.seq;
        tcb.snd_wl2 = iss;
        tcb.set_state(State::SynReceived);
        tcb
    }

    fn apply_syn_options(&mut self, seg: &TcpSegment<'_>) {
        // RFC 7323 section 3.2 and RFC 2018 section 2: on only if both offered.
        match seg.options.timestamp {
            Some((tsval, _)) if self.cfg.timestamps => {
                self.ts_ok = true;
                self.ts_recent = tsval;
            }
            _ => self.ts_ok = false,
        }
        self.sack_ok = self.cfg.sack && seg.options.sack_permitted;
        let peer_mss = seg.options.mss.unwrap_or(DEFAULT_MSS).max(64);
        self.snd_mss = u32::from(peer_mss.min(self.cfg.mss));
        // Congestion control counts in segments as they go out: MSS less the
        // 12 option bytes of timestamps when those are on (RFC 7323).
        self.cc.set_mss(self.payload_mss() as u32);
        // RFC 7323 section 2.2: scaling is on only if both sides sent the option.
        match (self.cfg.window_scaling, seg.options.window_scale) {
            (true, Some(shift)) => {
                // RFC 7323 section 2.3: a shift above 14 is treated as 14.
                self.snd_wscale = shift.min(14);
                self.wscale_ok = true;
            }
            _ => {
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
                self.wscale_ok = false;
            }
        }
    }

    fn set_state(&mut self, new: State) {
        if self.state != new {
            debug!(
                "{} -> {}: {} -> {}",
                self.local, self.remote, self.state, new
            );
            self.state = new;
        }
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

    /// The error that ended the connection, if one did.
    pub fn error(&self) -> Option<io::ErrorKind> {
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
            peer_window: self.snd_wnd,
            mss: self.snd_mss,
            window_scales: (self.rcv_wscale, self.snd_wscale),
            timestamps: self.ts_ok,
            sack: self.sack_ok,
            send_queued: self.snd_buf.len(),
            recv_queued: self.rcv_buf.len(),
        }
    }

    /// The RTT estimator (SRTT, RTTVAR, RTO).
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// The congestion controller (cwnd, ssthresh).
    pub fn congestion(&self) -> &Congestion {
        &self.cc
    }

    /// The peer's current window in bytes (scaled).
    pub fn peer_window(&self) -> u32 {
        self.snd_wnd
    }

    /// Our initial send sequence number.
    pub fn iss(&self) -> SeqNum {
        self.iss
    }

    /// SND.UNA: the oldest unacknowledged sequence number.
    pub fn snd_una(&self) -> SeqNum {
        self.snd_una
    }

    /// SND.NXT: the next sequence number to send.
    pub fn snd_nxt(&self) -> SeqNum {
        self.snd_nxt
    }

    /// RCV.NXT: the next sequence number expected.
    pub fn rcv_nxt(&self) -> SeqNum {
        self.rcv_nxt
    }

    /// The MSS we use for sending (the smaller of the peer's and ours).
    pub fn send_mss(&self) -> u32 {
        self.snd_mss
    }

    /// The window scale shifts in use: (ours for receiving, the peer's for sending).
    pub fn window_scales(&self) -> (u8, u8) {
        (self.rcv_wscale, self.snd_wscale)
    }

    /// Enables or disables Nagle's algorithm (`TCP_NODELAY` is `!nagle`).
    pub fn set_nagle(&mut self, on: bool) {
        self.nagle = on;
    }

    /// True if Nagle's algorithm is on.
    pub fn nagle(&self) -> bool {
        self.nagle
    }

    /// Bytes waiting in the receive buffer for the application.
    pub fn recv_queued(&self) -> usize {
        self.rcv_buf.len()
    }

    /// Bytes in the send buffer (unacknowledged plus unsent).
    pub fn send_queued(&self) -> usize {
        self.snd_buf.len()
    }

    /// True when [`recv`](Self::recv) would not return `WouldBlock`.
    pub fn can_recv(&self) -> bool {
        !self.rcv_buf.is_empty()
            || self.fin_received
            || self.read_shutdown
            || self.state == State::Closed
            || self.error.is_some()
    }

    /// True when [`send`](Self::send) would not return `WouldBlock`.
    pub fn can_send(&self) -> bool {
        match self.state {
            State::Established | State::CloseWait => {
                self.fin_queued || self.snd_buf.len() < self.cfg.send_buffer
            }
            State::SynSent | State::SynReceived | State::Listen => false,
            _ => true,
        }
    }

    /// True while a reset is waiting to be sent by [`dispatch`](Self::dispatch).
    pub fn has_output(&self) -> bool {
        self.rst_pending
    }

    /// True once our FIN was sent and acknowledged.
    pub fn fin_acked(&self) -> bool {
        self.fin_seq.is_some_and(|f| self.snd_una.gt(f))
    }

    /// True once all data we sent, and our FIN if any, is acknowledged.
    pub fn all_acked(&self) -> bool {
        self.snd_una == self.snd_max && self.snd_buf.is_empty()
    }

    // ------------------------------------------------------------------
    // Application calls
    // ------------------------------------------------------------------

    fn closed_error(&self) -> io::Error {
        match self.error {
            Some(kind) => io::Error::new(kind, error_text(kind)),
            None => io::Error::new(io::ErrorKind::NotConnected, "connection is closed"),
        }
    }

    /// Queues `data` for sending; returns how much fit in the send buffer.
    /// `WouldBlock` when the buffer is full or the handshake is not done yet.
    pub fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        let shut = || {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the sending side of this connection is shut down",
            )
        };
        match self.state {
            State::SynSent | State::SynReceived | State::Listen if !self.fin_queued => {
                return Err(io::ErrorKind::WouldBlock.into())
            }
            State::Established | State::CloseWait if !self.fin_queued => {}
            // A reset or timeout is reported as such; after our own close it
            // stays BrokenPipe even once the connection is gone (like EPIPE).
            State::Closed if self.error.is_some() || !self.fin_queued => {
                return Err(self.closed_error())
            }
            _ => return Err(shut()),
        }
        if data.is_empty() {
            return Ok(0);
        }
        let room = self.cfg.send_buffer.saturating_sub(self.snd_buf.len());
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = room.min(data.len());
        self.snd_buf.extend(&data[..n]);
        Ok(n)
    }

    /// Reads received data into `buf`. `Ok(0)` is end of stream (the peer's
    /// FIN, or our own read shutdown); `WouldBlock` when nothing is there yet.
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.rcv_buf.is_empty() {
            if buf.is_empty() {
                return Ok(0);
            }
            let n = buf.len().min(self.rcv_buf.len());
            let (a, b) = self.rcv_buf.as_slices();
            let from_a = n.min(a.len());
            buf[..from_a].copy_from_slice(&a[..from_a]);
            buf[from_a..n].copy_from_slice(&b[..n - from_a]);
            self.rcv_buf.drain(..n);
            self.maybe_window_update();
            return Ok(n);
        }
        if self.fin_received || self.read_shutdown {
            return Ok(0);
        }
        if let Some(kind) = self.error {
            return Err(io::Error::new(kind, error_text(kind)));
        }
        match self.state {
            State::Closed | State::TimeWait | State::Closing | State::LastAck => Ok(0),
            _ => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Copies received data into `buf` without consuming it (MSG_PEEK).
    pub fn peek(&self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.rcv_buf.len());
        for (dst, src) in buf.iter_mut().zip(self.rcv_buf.iter()) {
            *dst = *src;
        }
        n
    }

    /// RFC 1122 4.2.3.3 (receiver SWS avoidance): announce a reopened window
    /// only once it grew by min(RCV.BUFF / 2, MSS).
    fn maybe_window_update(&mut self) {
        if !self.state.can_receive() {
            return;
        }
        let current = self.rcv_adv - self.rcv_nxt;
        let possible = self.free_window();
        let threshold = (self.cfg.recv_buffer / 2).min(usize::from(self.cfg.mss));
        if possible >= current + threshold {
            self.window_update = true;
        }
    }

    /// Closes our sending side (RFC 9293 section 3.10.4, CLOSE call): a FIN
    /// follows the queued data. Idempotent.
    pub fn close(&mut self) {
        match self.state {
            State::SynSent | State::Listen => {
                self.set_state(State::Closed);
            }
            State::SynReceived => {
                // RFC 9293 section 3.10.4: queue the FIN for processing after
                // entering ESTABLISHED, so the SYN-ACK can still be retransmitted.
                self.fin_queued = true;
            }
            State::Established => {
                self.fin_queued = true;
                self.set_state(State::FinWait1);
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.set_state(State::LastAck);
            }
            _ => {}
        }
    }

    /// Shuts down our reading side: buffered and future data is discarded.
    pub fn shutdown_read(&mut self) {
        self.read_shutdown = true;
        self.rcv_buf.clear();
    }

    /// Aborts the connection (RFC 9293 section 3.10.5, ABORT call): sends a
    /// RST if the peer knows about us, and goes to CLOSED.
    pub fn abort(&mut self) {
        if matches!(
            self.state,
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
        ) {
            self.rst_pending = true;
        }
        self.snd_buf.clear();
        self.enter_closed(None);
    }

    fn enter_closed(&mut self, error: Option<io::ErrorKind>) {
        if error.is_some() && self.error.is_none() {
            self.error = error;
        }
        self.set_state(State::Closed);
        self.rto_deadline = None;
        self.persist_deadline = None;
        self.ack_deadline = None;
        self.time_wait_deadline = None;
        self.ack_pending = false;
        self.dup_acks_owed = 0;
        self.retransmit_one = false;
        self.probe_pending = false;
        self.reassembly.clear();
        debug!(
            "{} -> {}: closed{}: {}",
            self.local,
            self.remote,
            match error {
                Some(kind) => format!(" with error {kind:?}"),
                None => String::new(),
            },
            self.info()
        );
    }

    // ------------------------------------------------------------------
    // Timers
    // ------------------------------------------------------------------

    /// The earliest instant at which [`on_timeout`](Self::on_timeout) has work to do.
    pub fn poll_at(&self) -> Option<Instant> {
        [
            self.rto_deadline,
            self.persist_deadline,
            self.ack_deadline,
            self.time_wait_deadline,
            self.tlp_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Handles every timer that expired at or before `now`.
    pub fn on_timeout(&mut self, now: Instant) {
        if self.time_wait_deadline.is_some_and(|t| t <= now) {
            self.time_wait_deadline = None;
            debug!("{} -> {}: 2*MSL elapsed", self.local, self.remote);
            self.enter_closed(None);
            return;
        }
        if self.ack_deadline.is_some_and(|t| t <= now) {
            self.ack_deadline = None;
            self.ack_pending = true;
        }
        if self.persist_deadline.is_some_and(|t| t <= now) {
            self.persist_deadline = None;
            self.probe_pending = true;
            self.persist_backoff = self.persist_backoff.saturating_add(1);
        }
        if self.tlp_deadline.is_some_and(|t| t <= now) {
            self.tlp_deadline = None;
            if !self.tlp_outstanding && self.snd_max.gt(self.snd_una) {
                if self.cc.in_recovery() {
                    // In recovery with too little in flight for SACKs to show
                    // that a retransmission was lost: probe with SND.UNA's
                    // segment now rather than wait for the RTO.
                    self.tlp_outstanding = true;
                    self.stats.tail_loss_probes += 1;
                    self.retransmit_one = true;
                    // RFC 8985 section 7.3: re-arm the RTO after the probe.
                    if self.rto_deadline.is_some_and(|t| t > now) {
                        self.rto_deadline = Some(now + self.rtt.rto());
                    }
                } else {
                    self.tlp_pending = true;
                }
            }
        }
        if self.rto_deadline.is_some_and(|t| t <= now) {
            self.rto_deadline = None;
            self.on_rto(now);
        }
    }

    /// The retransmission timer expired (RFC 6298 section 5.4-5.6, RFC 5681 section 3.1).
    fn on_rto(&mut self, now: Instant) {
        let limit = match self.state {
            State::SynSent | State::SynReceived => self.cfg.max_syn_retries,
            _ => self.cfg.max_retries,
        };
        if self.snd_una == self.snd_max {
            // Nothing outstanding (acked in the meantime).
            return;
        }
        if self.snd_wnd == 0 && !self.snd_buf.is_empty() {
            // The peer shrank its window to zero with data in flight. That is
            // no loss: probe the window instead of timing the connection out
            // (RFC 1122 4.2.2.16); dispatch arms the persist timer.
            self.snd_nxt = self.snd_una;
            self.probe_pending = true;
            return;
        }
        if self.retries >= limit {
            debug!(
                "{} -> {}: giving up after {} retransmissions",
                self.local, self.remote, self.retries
            );
            self.enter_closed(Some(io::ErrorKind::TimedOut));
            return;
        }
        self.retries += 1;
        self.stats.retransmits_timeout += 1;
        self.rtt.on_timeout();
        let flight = (self.snd_max - self.snd_una) as u32;
        self.remember_for_undo(now);
        self.cc.on_timeout(flight);
        // Karn's rule: no RTT sample from anything sent before the timeout.
        // After a timeout the echo threshold moves up to now: if only our
        // ACK was lost, the peer answers this copy as a duplicate, echoing
        // the earlier copy's timestamp, which would time the timeout itself.
        self.karn_block(now);
        self.karn_tsval = self.tsval(now);
        self.tlp_deadline = None;
        self.tlp_pending = false;
        debug!(
            "{} -> {}: retransmission timeout #{} in {}, resending from {} (rto now {:?})",
            self.local,
            self.remote,
            self.retries,
            self.state,
            self.snd_una,
            self.rtt.rto()
        );
        // Go back to SND.UNA; dispatch resends as the (now one-segment) window allows.
        self.snd_nxt = self.snd_una;
        self.rto_deadline = Some(now + self.rtt.rto());
    }

    // ------------------------------------------------------------------
    // Segment arrival (RFC 9293 section 3.10.7)
    // ------------------------------------------------------------------

    /// Processes one segment addressed to this connection.
    pub fn on_segment(&mut self, now: Instant, seg: &TcpSegment<'_>) -> Verdict {
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
        match self.state {
            State::Closed | State::Listen => Verdict::SendReset,
            State::SynSent => self.on_segment_syn_sent(now, seg),
            _ => self.on_segment_synchronized(now, seg),
        }
    }

    /// RFC 9293 section 3.10.7.3: SYN-SENT.
    fn on_segment_syn_sent(&mut self, now: Instant, seg: &TcpSegment<'_>) -> Verdict {
        let has_ack = seg.flags.contains(TcpFlags::ACK);
        // First, check the ACK bit.
        if has_ack && (seg.ack.le(self.iss) || seg.ack.gt(self.snd_max)) {
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
                self.enter_closed(Some(io::ErrorKind::ConnectionRefused));
            }
            return Verdict::Done;
        }
        // Fourth, the SYN bit.
        if !seg.flags.contains(TcpFlags::SYN) {
            return Verdict::Done;
        }
        self.irs = seg.seq;
        self.rcv_nxt = seg.seq + 1u32;
        // The window our SYN offered (unscaled) now starts at RCV.NXT.
        self.rcv_adv = self.rcv_nxt + usize::from(self.last_adv_field);
        self.apply_syn_options(seg);
        if has_ack {
            self.ack_new_data(now, seg.ack, seg.options.timestamp.map(|t| t.1));
            self.snd_wnd = u32::from(seg.window);
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = seg.ack;
            self.set_state(State::Established);
            self.ack_pending = true;
            // RFC 9293 3.10.7.3: text or a FIN on the SYN-ACK is processed
            // as in ESTABLISHED (trimmed to the window we offered).
            let room = self.rcv_wnd();
            let payload = &seg.payload[..seg.payload.len().min(room)];
            if !payload.is_empty() {
                self.process_text(now, self.rcv_nxt, payload);
            }
            if seg.flags.contains(TcpFlags::FIN) && payload.len() == seg.payload.len() {
                self.process_fin(now);
            }
        } else {
            // Simultaneous open (RFC 9293 Figure 8): send SYN,ACK with our ISS again.
            self.snd_wnd = u32::from(seg.window);
            self.max_snd_wnd = self.snd_wnd;
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = self.iss;
            self.snd_nxt = self.iss;
            self.rtt_probe = None;
            self.set_state(State::SynReceived);
        }
        Verdict::Done
    }

    /// The peer's window in bytes. The window of a SYN segment (such as the
    /// SYN-ACK that completes a simultaneous open) is never scaled (RFC 7323
    /// section 2.2).
    fn seg_window(&self, seg: &TcpSegment<'_>) -> u32 {
        if seg.flags.contains(TcpFlags::SYN) {
            u32::from(seg.window)
        } else {
            u32::from(seg.window) << self.snd_wscale
        }
    }

    /// The window the peer may currently fill: RCV.WND.
    fn rcv_wnd(&self) -> usize {
        self.rcv_adv - self.rcv_nxt
    }

    /// Free space in the receive buffer.
    fn free_window(&self) -> usize {
        self.cfg.recv_buffer.saturating_sub(self.rcv_buf.len())
    }

    /// RFC 9293 section 3.10.7.4: every state after SYN-SENT.
    fn on_segment_synchronized(&mut self, now: Instant, seg: &TcpSegment<'_>) -> Verdict {
        let mut seq = seg.seq;
        let mut flags = seg.flags;
        let mut payload = seg.payload;

        // SYN-RECEIVED: a retransmitted SYN means our SYN-ACK was lost; a SYN-ACK
        // with the peer's ISS is the simultaneous-open answer (RFC 9293 Figure 8).
        if self.state == State::SynReceived && flags.contains(TcpFlags::SYN) && seq == self.irs {
            if !flags.contains(TcpFlags::ACK) {
                if !flags.contains(TcpFlags::RST) {
                    debug!(
                        "{} -> {}: duplicate SYN, resending SYN-ACK",
                        self.local, self.remote
                    );
                    self.snd_nxt = self.iss;
                }
                return Verdict::Done;
            }
            seq += 1u32;
            flags = TcpFlags(flags.0 & !TcpFlags::SYN.0);
        }

        // PAWS (RFC 7323 section 5.3, R1): a segment whose timestamp is older
        // than TS.Recent is an old duplicate from before the sequence numbers
        // wrapped; acknowledge and drop it (but never drop a RST this way).
        if let (true, Some((tsval, _))) = (self.ts_ok, seg.options.timestamp) {
            if (tsval.wrapping_sub(self.ts_recent) as i32) < 0 && !flags.contains(TcpFlags::RST) {
                trace!(
                    "{} -> {}: PAWS: TSval {} older than TS.Recent {}",
                    self.local,
                    self.remote,
                    tsval,
                    self.ts_recent
                );
                self.stats.unacceptable += 1;
                self.ack_pending = true;
                return Verdict::Done;
            }
        }

        // First: is the sequence number acceptable?
        let seg_len = payload.len()
            + usize::from(flags.contains(TcpFlags::SYN))
            + usize::from(flags.contains(TcpFlags::FIN));
        let wnd = self.rcv_wnd();
        let acceptable = match (seg_len, wnd) {
            (0, 0) => seq == self.rcv_nxt,
            (0, _) => seq.in_range(self.rcv_nxt, self.rcv_nxt + wnd),
            (_, 0) => false,
            (_, _) => {
                let end = self.rcv_nxt + wnd;
                seq.in_range(self.rcv_nxt, end) || (seq + (seg_len - 1)).in_range(self.rcv_nxt, end)
            }
        };
        // RFC 9293: with a zero window, valid ACKs and RSTs are still processed.
        let zero_window_ack_ok = wnd == 0 && seq == self.rcv_nxt;
        if !acceptable && !zero_window_ack_ok {
            self.stats.unacceptable += 1;
            if flags.contains(TcpFlags::RST) {
                return Verdict::Done;
            }
            trace!(
                "{} -> {}: unacceptable segment seq={} len={} (rcv_nxt={} wnd={})",
                self.local,
                self.remote,
                seq,
                seg_len,
                self.rcv_nxt,
                wnd
            );
            if self.state == State::TimeWait && flags.contains(TcpFlags::FIN) {
                // A retransmitted FIN: our last ACK was lost. Ack again and
                // restart the 2*MSL timer (RFC 9293 section 3.10.7.4, eighth step).
                self.time_wait_deadline = Some(now + 2 * self.cfg.msl);
            }
            self.ack_pending = true;
            return Verdict::Done;
        }
        if !acceptable {
            // Zero window: keep only the control information, and answer the
            // text we cannot take with an ACK -- it may be a zero-window probe
            // (RFC 9293 sections 3.8.6.1 and 3.10.7.4, first check).
            payload = &[];
            flags = TcpFlags(flags.0 & !TcpFlags::FIN.0);
            self.ack_pending = true;
        }

        // RFC 7323 section 4.3 (2): remember the timestamp to echo, from a
        // segment that starts at or before what we last acknowledged.
        if let (true, Some((tsval, _))) = (self.ts_ok, seg.options.timestamp) {
            if tsval.wrapping_sub(self.ts_recent) as i32 >= 0 && seg.seq.le(self.last_ack_sent) {
                self.ts_recent = tsval;
            }
        }

        // Trim what we already have (before RCV.NXT) ...
        if seq.lt(self.rcv_nxt) {
            let mut dup = self.rcv_nxt - seq;
            if flags.contains(TcpFlags::SYN) {
                flags = TcpFlags(flags.0 & !TcpFlags::SYN.0);
                dup -= 1;
            }
            let cut = dup.min(payload.len());
            payload = &payload[cut..];
            seq = self.rcv_nxt;
        }
        // ... and what does not fit in the window.
        let room = self.rcv_wnd().saturating_sub(seq - self.rcv_nxt);
        if payload.len() > room {
            payload = &payload[..room];
            flags = TcpFlags(flags.0 & !TcpFlags::FIN.0);
        }

        // Second: the RST bit (RFC 9293 section 3.10.7.4 and RFC 5961 section 3.2).
        if flags.contains(TcpFlags::RST) {
            if seg.seq == self.rcv_nxt {
                return self.on_reset();
            }
            // In the window but not exact: challenge ACK.
            debug!(
                "{} -> {}: RST not at RCV.NXT, challenge ACK",
                self.local, self.remote
            );
            self.ack_pending = true;
            return Verdict::Done;
        }

        // Fourth: a SYN in a synchronized state gets a challenge ACK (RFC 5961 section 4.2).
        if flags.contains(TcpFlags::SYN) {
            debug!(
                "{} -> {}: SYN in {}, challenge ACK",
                self.local, self.remote, self.state
            );
            self.ack_pending = true;
            return Verdict::Done;
        }

        // Fifth: the ACK field.
        if !flags.contains(TcpFlags::ACK) {
            return Verdict::Done;
        }
        if self.state == State::SynReceived {
            if seg.ack.gt(self.snd_una) && seg.ack.le(self.snd_max) {
                self.set_state(State::Established);
                self.snd_wnd = self.seg_window(seg);
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = seq;
                self.snd_wl2 = seg.ack;
                // A close() may have queued a FIN already.
                if self.fin_queued {
                    self.set_state(State::FinWait1);
                }
            } else {
                return Verdict::SendReset;
            }
        }
        if let Some(v) = self.process_ack(now, seq, seg, payload, flags) {
            return v;
        }
        if self.state == State::Closed {
            return Verdict::Done;
        }

        // Seventh: the segment text.
        if !payload.is_empty() {
            self.process_text(now, seq, payload);
        }

        // Eighth: the FIN bit.
        if flags.contains(TcpFlags::FIN) {
            let fin_at = seq + payload.len();
            if fin_at == self.rcv_nxt {
                self.process_fin(now);
            } else if fin_at.gt(self.rcv_nxt) {
                self.fin_pending = Some(fin_at);
            }
        }
        Verdict::Done
    }

    fn on_reset(&mut self) -> Verdict {
        match self.state {
            State::SynReceived => {
                // From a passive open this ends the embryonic connection (the
                // stack forgets it); from a simultaneous open, connect fails.
                debug!("{} -> {}: RST in SYN-RECEIVED", self.local, self.remote);
                self.enter_closed(Some(io::ErrorKind::ConnectionRefused));
            }
            State::Closing | State::LastAck | State::TimeWait => {
                self.enter_closed(None);
            }
            _ => {
                debug!(
                    "{} -> {}: connection reset by peer",
                    self.local, self.remote
                );
                self.enter_closed(Some(io::ErrorKind::ConnectionReset));
            }
        }
        self.snd_buf.clear();
        Verdict::Done
    }

    /// RFC 9293 section 3.10.7.4, fifth step, for ESTABLISHED and later.
    /// Returns `Some` when the segment must not be processed further.
    fn process_ack(
        &mut self,
        now: Instant,
        seq: SeqNum,
        seg: &TcpSegment<'_>,
        payload: &[u8],
        flags: TcpFlags,
    ) -> Option<Verdict> {
        let ack = seg.ack;
        if ack.gt(self.snd_max) {
            // Acks something not yet sent: ACK and drop (RFC 9293 3.10.7.4).
            trace!(
                "{} -> {}: ACK {} beyond SND.MAX",
                self.local,
                self.remote,
                ack
            );
            self.ack_pending = true;
            return Some(Verdict::Done);
        }
        // RFC 5961 section 5.2: an ACK too far in the past is rejected with a challenge ACK.
        let max_window = self.max_snd_wnd.max(65535) as usize;
        if ack.lt(self.snd_una) && (self.snd_una - ack) > max_window {
            self.ack_pending = true;
            return Some(Verdict::Done);
        }
        let window = self.seg_window(seg);
        let mut sack_news = false;
        if self.sack_ok && !seg.options.sack.is_empty() {
            sack_news = self.scoreboard.update(
                ack.max(self.snd_una),
                self.snd_max,
                seg.options.sack.as_slice(),
            );
        }
        if ack.gt(self.snd_una) {
            self.ack_new_data(now, ack, seg.options.timestamp.map(|t| t.1));
        } else if ack == self.snd_una
            && payload.is_empty()
            && !flags.contains(TcpFlags::FIN)
            && if self.sack_ok && !seg.options.sack.is_empty() {
                // RFC 6675 section 2: with SACK, a duplicate is an ACK that
                // brings new SACK information -- a copy of an ACK the network
                // duplicated does not, nor does a D-SACK.
                sack_news
            } else {
                window == self.snd_wnd
            }
            && self.snd_max.gt(self.snd_una)
        {
            // A duplicate ACK (RFC 5681 section 2; with SACK, RFC 6675
            // section 2 counts an ACK carrying new SACK information even if
            // the window moved, as a receiver that autotunes it does).
            self.stats.dup_acks += 1;
            let flight = (self.snd_max - self.snd_una) as u32;
            let in_recovery = self.cc.in_recovery();
            let before = self.undo_point(now);
            if self.cc.on_dup_ack(flight, self.snd_max) == DupAckAction::FastRetransmit {
                self.undo = before;
                debug!(
                    "{} -> {}: third duplicate ACK for {}, fast retransmit",
                    self.local, self.remote, ack
                );
                self.start_fast_retransmit(now);
            } else if in_recovery && self.sack_ok {
                // Later segments keep arriving but SND.UNA's retransmission
                // does not: after twice the RTT it was lost as well (the idea
                // of RACK, RFC 8985 section 6.2); resend it instead of
                // waiting for the retransmission timer.
                if let (Some((seq, at)), Some(srtt)) = (self.una_rxt, self.rtt.srtt()) {
                    let wait = (2 * srtt).max(Duration::from_millis(2));
                    if seq == self.snd_una && now.saturating_duration_since(at) > wait {
                        debug!(
                            "{} -> {}: retransmission of {} lost too, resending",
                            self.local, self.remote, seq
                        );
                        self.stats.lost_retransmits += 1;
                        self.retransmit_one = true;
                    }
                }
            }
        }
        // RFC 6675 section 5 (IsLost(SND.UNA)): more than 2 segments SACKed
        // above SND.UNA mean it is lost, even if duplicate ACKs went missing.
        // After a tail loss probe, an answer that still leaves SND.UNA
        // behind SACKed data shows the loss too (RFC 8985 section 7.4: the
        // probe was sent last, so what came before it and is missing is lost).
        let probe_answered = self.tlp_outstanding && ack == self.snd_una;
        if self.sack_ok
            && !self.cc.in_recovery()
            && self.snd_max.gt(self.snd_una)
            && (self.scoreboard.sacked_bytes() > 2 * self.payload_mss()
                || (probe_answered && !self.scoreboard.is_empty()))
        {
            debug!(
                "{} -> {}: SACKs show {} lost, fast retransmit",
                self.local, self.remote, self.snd_una
            );
            let flight = (self.snd_max - self.snd_una) as u32;
            self.remember_for_undo(now);
            self.cc.enter_recovery(flight, self.snd_max);
            self.start_fast_retransmit(now);
        }
        // Update the send window (RFC 9293 3.10.7.4: SND.WL1/SND.WL2 rule).
        if self.snd_wl1.lt(seq) || (self.snd_wl1 == seq && self.snd_wl2.le(ack)) {
            if window != self.snd_wnd {
                trace!("{} -> {}: peer window {}", self.local, self.remote, window);
            }
            self.snd_wnd = window;
            self.max_snd_wnd = self.max_snd_wnd.max(window);
            self.snd_wl1 = seq;
            self.snd_wl2 = ack;
            if window > 0 {
                self.persist_deadline = None;
                self.persist_backoff = 0;
            }
        }

        let fin_acked = self.fin_acked();
        match self.state {
            State::FinWait1 if fin_acked => self.set_state(State::FinWait2),
            State::Closing if fin_acked => self.enter_time_wait(now),
            State::LastAck if fin_acked => {
                self.enter_closed(None);
                return Some(Verdict::Done);
            }
            _ => {}
        }
        None
    }

    /// The state a loss response starting now would undo to (timestamps only:
    /// without them a spurious retransmission cannot be told apart).
    fn undo_point(&self, now: Instant) -> Option<Undo> {
        self.ts_ok.then(|| Undo {
            seq: self.snd_una,
            tsval: self.tsval(now),
            cwnd: self.cc.cwnd(),
            ssthresh: self.cc.ssthresh(),
        })
    }

    fn remember_for_undo(&mut self, now: Instant) {
        // A second loss in the same episode keeps the first undo point.
        if self.undo.is_none() {
            self.undo = self.undo_point(now);
        }
    }

    /// RFC 3522 (Eifel detection): the first ACK covering the retransmitted
    /// segment echoes a timestamp older than the retransmission, so it was the
    /// original that arrived. Restore cwnd and ssthresh (RFC 4015's response).
    fn check_spurious(&mut self, ack: SeqNum, tsecr: Option<u32>) {
        let Some(undo) = self.undo else { return };
        if !ack.gt(undo.seq) {
            return;
        }
        self.undo = None;
        let Some(tsecr) = tsecr.filter(|&t| t != 0) else {
            return;
        };
        if (tsecr.wrapping_sub(undo.tsval) as i32) < 0 {
            debug!(
                "{} -> {}: retransmission of {} was spurious, undoing the cwnd cut",
                self.local, self.remote, undo.seq
            );
            self.stats.spurious_retransmits += 1;
            self.cc.undo(undo.cwnd, undo.ssthresh);
            self.retransmit_one = false;
            self.tlp_outstanding = false;
            if self.snd_nxt.lt(self.snd_max) {
                // After a spurious timeout the original flight got through.
                self.snd_nxt = self.snd_max;
            }
        }
    }

    /// Karn's rule from now on: no sample from the segment being timed, and
    /// timestamp echoes count only if at least as new as the first
    /// retransmission of this episode (older ones may come from segments that
    /// waited behind the hole, or from duplicates a spurious retransmission
    /// caused, and would time those, not the path).
    fn karn_block(&mut self, now: Instant) {
        self.rtt_probe = None;
        if !self.karn_blocked {
            self.karn_blocked = true;
            self.karn_tsval = self.tsval(now);
        }
    }

    /// Loss detected at SND.UNA: retransmit it now (RFC 5681 section 3.2 step 2).
    fn start_fast_retransmit(&mut self, now: Instant) {
        self.stats.fast_retransmits += 1;
        self.retransmit_one = true;
        self.high_rxt = self.snd_una;
        self.rtt_probe = None;
        self.karn_block(now);
        self.tlp_deadline = None;
    }

    /// SND.UNA advances to `ack`: free acknowledged data, take an RTT sample,
    /// restart or stop the retransmission timer, grow cwnd.
    fn ack_new_data(&mut self, now: Instant, ack: SeqNum, tsecr: Option<u32>) {
        let mut acked = ack - self.snd_una;
        // The SYN occupies one sequence number but no buffer space.
        if self.snd_una == self.iss && acked > 0 {
            acked -= 1;
        }
        let from_buf = acked.min(self.snd_buf.len());
        self.snd_buf.drain(..from_buf);
        self.check_spurious(ack, tsecr);
        self.snd_una = ack;
        if self.snd_nxt.lt(ack) {
            self.snd_nxt = ack;
        }
        self.scoreboard.advance(ack);
        self.tlp_outstanding = false;
        // RFC 6298 (2.2/2.3), with Karn's rule: the probe is dropped on retransmission.
        if let (true, true, Some(tsecr)) = (self.karn_blocked, self.ts_ok, tsecr) {
            // RFC 7323 section 4.1: the echoed timestamp times even a
            // retransmission, so it ends the Karn blackout and the back-off.
            // An echo older than the retransmission may come from a segment
            // that waited behind a hole: it would time the hole, not the path.
            let ms = self.tsval(now).wrapping_sub(tsecr) as i32;
            let fresh = tsecr.wrapping_sub(self.karn_tsval) as i32 >= 0;
            if tsecr != 0 && ms >= 0 && fresh {
                trace!(
                    "{} -> {}: rtt sample {ms}ms from the timestamp echo",
                    self.local,
                    self.remote
                );
                self.rtt.sample(Duration::from_millis(ms as u64));
                self.karn_blocked = false;
            }
        }
        if let Some((probe, sent)) = self.rtt_probe {
            if ack.ge(probe) {
                self.rtt.sample(now - sent);
                self.karn_blocked = false;
                self.rtt_probe = None;
                trace!(
                    "{} -> {}: rtt sample {:?}, srtt {:?}, rto {:?}",
                    self.local,
                    self.remote,
                    now - sent,
                    self.rtt.srtt(),
                    self.rtt.rto()
                );
            }
        }
        self.retries = 0;
        match self.cc.on_ack(ack, from_buf as u32) {
            AckAction::RetransmitNextHole if self.sack_ok => {
                // The hole loop in dispatch resends what the scoreboard shows missing.
                if self.high_rxt.lt(self.snd_una) {
                    self.high_rxt = self.snd_una;
                }
                if self.scoreboard.next_hole(self.high_rxt).is_none()
                    && self.snd_una.lt(self.snd_max)
                    && self.high_rxt == self.snd_una
                {
                    // No SACK information beyond SND.UNA: NewReno's guess.
                    self.stats.partial_ack_retransmits += 1;
                    self.retransmit_one = true;
                }
            }
            AckAction::RetransmitNextHole => {
                if self.snd_una.lt(self.snd_max) {
                    debug!(
                        "{} -> {}: partial ACK {} in recovery, retransmitting next hole",
                        self.local, self.remote, ack
                    );
                    self.stats.partial_ack_retransmits += 1;
                    self.retransmit_one = true;
                }
            }
            AckAction::RecoveryDone => {
                trace!("{} -> {}: fast recovery done", self.local, self.remote);
            }
            AckAction::None => {}
        }
        // RFC 6298 (5.2)/(5.3): stop the timer when all is acked, else restart it.
        if self.snd_una == self.snd_max {
            self.rto_deadline = None;
            self.tlp_deadline = None;
        } else {
            self.rto_deadline = Some(now + self.rtt.rto());
            self.arm_tlp(now);
        }
    }

    /// Seventh step: queue in-order data, hold out-of-order data.
    fn process_text(&mut self, now: Instant, seq: SeqNum, payload: &[u8]) {
        if !matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) {
            return;
        }
        if seq == self.rcv_nxt {
            // Progress: earlier out-of-order segments need no duplicate ACKs any more.
            self.dup_acks_owed = 0;
            let had_gap = !self.reassembly.is_empty();
            self.deliver(payload);
            // What waited behind the gap goes straight into the receive buffer.
            let rcv_nxt = self.rcv_nxt;
            let (buf, cap, discard) = (&mut self.rcv_buf, self.cfg.recv_buffer, self.read_shutdown);
            let n = self
                .reassembly
                .drain_ready(rcv_nxt, |chunk| append_received(buf, cap, discard, chunk));
            self.account_received(n);
            if let Some(fin) = self.fin_pending {
                if fin == self.rcv_nxt {
                    self.fin_pending = None;
                    self.process_fin(now);
                }
            }
            if had_gap {
                // RFC 5681 section 4.2: ACK at once when a gap is (partly) filled.
                self.ack_pending = true;
            } else {
                self.schedule_ack(now);
            }
        } else {
            self.stats.out_of_order += 1;
            self.reassembly.insert(self.rcv_nxt, seq, payload);
            // RFC 5681 section 4.2: an out-of-order segment is acked at once (a duplicate ACK).
            self.ack_pending = true;
            self.dup_acks_owed = self.dup_acks_owed.saturating_add(1).min(64);
            self.last_ooo.insert(0, seq);
            self.last_ooo.truncate(wire::SackBlocks::MAX);
        }
    }

    fn deliver(&mut self, data: &[u8]) {
        append_received(
            &mut self.rcv_buf,
            self.cfg.recv_buffer,
            self.read_shutdown,
            data,
        );
        self.account_received(data.len());
    }

    /// `n` more bytes arrived in order: RCV.NXT and the counters move.
    fn account_received(&mut self, n: usize) {
        self.rcv_nxt += n;
        self.stats.bytes_in += n as u64;
        self.unacked_bytes += n;
    }

    /// Delayed ACK (RFC 1122 4.2.3.2, RFC 5681 section 4.2): ack at least every
    /// second full-sized segment, and within the delay otherwise.
    fn schedule_ack(&mut self, now: Instant) {
        match self.cfg.ack_delay {
            Some(delay) if self.unacked_bytes < 2 * self.cfg.mss as usize => {
                if self.ack_deadline.is_none() {
                    self.ack_deadline = Some(now + delay);
                }
            }
            _ => self.ack_pending = true,
        }
    }

    /// Eighth step: the peer's FIN, in order.
    fn process_fin(&mut self, now: Instant) {
        self.rcv_nxt += 1u32;
        self.fin_received = true;
        self.ack_pending = true;
        debug!("{} -> {}: FIN received", self.local, self.remote);
        match self.state {
            State::SynReceived | State::Established => self.set_state(State::CloseWait),
            State::FinWait1 => {
                if self.fin_acked() {
                    self.enter_time_wait(now);
                } else {
                    self.set_state(State::Closing);
                }
            }
            State::FinWait2 => self.enter_time_wait(now),
            State::TimeWait => self.time_wait_deadline = Some(now + 2 * self.cfg.msl),
            _ => {}
        }
    }

    fn enter_time_wait(&mut self, now: Instant) {
        self.set_state(State::TimeWait);
        self.rto_deadline = None;
        self.persist_deadline = None;
        self.time_wait_deadline = Some(now + 2 * self.cfg.msl);
    }

    // ------------------------------------------------------------------
    // Output
    // ------------------------------------------------------------------

    /// The window field to advertise, and the right edge it implies.
    fn advertise(&mut self, syn: bool) -> u16 {
        // A duplicate ACK must repeat the last window exactly, or the peer
        // takes it for a window update and does not count it (RFC 5681 section 2).
        if self.dup_acks_owed > 0 && self.rcv_nxt == self.last_adv_nxt && !syn {
            return self.last_adv_field;
        }
        self.window_update = false;
        let free = self.free_window();
        let current = self.rcv_adv - self.rcv_nxt;
        // Receiver SWS avoidance (RFC 1122 4.2.3.3): don't move the right edge by crumbs.
        let threshold = (self.cfg.recv_buffer / 2).min(usize::from(self.cfg.mss));
        let mut wnd = if free >= current + threshold || free == self.cfg.recv_buffer {
            free
        } else {
            current
        };
        let shift = if syn { 0 } else { self.rcv_wscale };
        let field = (wnd >> shift).min(65535);
        wnd = field << shift;
        // Never shrink the window (RFC 9293 section 3.8.6.2.2).
        let edge = self.rcv_nxt + wnd;
        if edge.gt(self.rcv_adv) {
            self.rcv_adv = edge;
        }
        self.last_adv_nxt = self.rcv_nxt;
        self.last_adv_field = field as u16;
        field as u16
    }

    /// Options for our SYN or SYN-ACK: MSS always; window scale, SACK-permitted
    /// and timestamps on a SYN if configured, on a SYN-ACK only if the peer
    /// offered them (RFC 7323 sections 2.2 and 3.2, RFC 2018 section 2).
    fn syn_options(&self, now: Instant, is_syn_ack: bool) -> TcpOptions {
        let (wscale, sack, ts) = if is_syn_ack {
            (self.wscale_ok, self.sack_ok, self.ts_ok)
        } else {
            (self.cfg.window_scaling, self.cfg.sack, self.cfg.timestamps)
        };
        TcpOptions {
            mss: Some(self.cfg.mss),
            window_scale: wscale.then_some(self.rcv_wscale),
            sack_permitted: sack,
            timestamp: ts.then(|| (self.tsval(now), if is_syn_ack { self.ts_recent } else { 0 })),
            ..TcpOptions::default()
        }
    }

    /// Our timestamp clock: milliseconds, offset per connection (RFC 7323 section 5.4).
    fn tsval(&self, now: Instant) -> u32 {
        (now.total_millis() as u32).wrapping_add(self.iss.0)
    }

    /// Options of a non-SYN segment: timestamps if negotiated, and on pure
    /// ACKs the SACK blocks of what we hold out of order (RFC 2018 section 4).
    fn seg_options(&self, now: Instant, with_sack: bool) -> TcpOptions {
        let mut opts = TcpOptions::default();
        if self.ts_ok {
            opts.timestamp = Some((self.tsval(now), self.ts_recent));
        }
        if with_sack && self.sack_ok && !self.reassembly.is_empty() {
            // The block holding the latest out-of-order segment goes first,
            // then the most recently reported ones (RFC 2018 section 4), so
            // each block is repeated in several ACKs; then the rest.
            let recent = self
                .last_ooo
                .iter()
                .filter_map(|&s| self.reassembly.blocks().find(|&(l, r)| s.in_range(l, r)));
            for (l, r) in recent.chain(self.reassembly.blocks()) {
                if !opts.sack.as_slice().contains(&(l, r)) && !opts.sack.push(l, r) {
                    break;
                }
            }
        }
        opts
    }

    /// Largest payload of one segment: the send MSS less our option bytes.
    fn payload_mss(&self) -> usize {
        let mss = self.snd_mss as usize;
        if self.ts_ok {
            mss.saturating_sub(12).max(1)
        } else {
            mss
        }
    }

    /// Writes the next segment this connection wants to send into `buf` (a
    /// whole IPv4 packet) and returns its length, or `None` when there is
    /// nothing to send now. Call it until it returns `None`.
    pub fn dispatch(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.rst_pending {
            self.rst_pending = false;
            let repr = TcpRepr {
                src: self.local,
                dst: self.remote,
                // SND.NXT of RFC 9293 3.10.5 (snd_nxt may have rewound).
                seq: self.snd_max,
                ack: SeqNum(0),
                flags: TcpFlags::RST,
                window: 0,
                options: TcpOptions::default(),
            };
            debug!("{} -> {}: sending RST", self.local, self.remote);
            return self.emit(buf, &repr, 0, 0);
        }
        match self.state {
            State::Closed | State::Listen => None,
            State::SynSent | State::SynReceived if self.snd_nxt == self.iss => {
                let syn_ack = self.state == State::SynReceived;
                let flags = if syn_ack {
                    TcpFlags::SYN | TcpFlags::ACK
                } else {
                    TcpFlags::SYN
                };
                let window = self.advertise(true);
                let repr = TcpRepr {
                    src: self.local,
                    dst: self.remote,
                    seq: self.iss,
                    ack: if syn_ack { self.rcv_nxt } else { SeqNum(0) },
                    flags,
                    window,
                    options: self.syn_options(now, syn_ack),
                };
                self.snd_nxt = self.iss + 1u32;
                self.snd_max = self.snd_max.max(self.snd_nxt);
                if self.retries == 0 {
                    self.rtt_probe = Some((self.snd_nxt, now));
                }
                if self.rto_deadline.is_none() {
                    self.rto_deadline = Some(now + self.rtt.rto());
                }
                trace!("{} -> {}: sending {:?}", self.local, self.remote, flags);
                self.emit(buf, &repr, 0, 0)
            }
            State::SynSent => None,
            _ => self.dispatch_synchronized(now, buf),
        }
    }

    fn dispatch_synchronized(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let mss = self.payload_mss();
        let sending_state = matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        );

        // Fast retransmit / NewReno: one segment at SND.UNA.
        if self.retransmit_one && sending_state {
            self.retransmit_one = false;
            let mut len = mss.min(self.snd_buf.len());
            if let Some(next) = self.scoreboard.next_sacked(self.snd_una) {
                len = len.min(next - self.snd_una);
            }
            let fin = self.fin_seq.is_some_and(|f| f == self.snd_una + len);
            if len > 0 || fin {
                let seq = self.snd_una;
                self.high_rxt = self.high_rxt.max(seq + len);
                self.una_rxt = Some((seq, now));
                return self.emit_data(now, buf, seq, 0, len, fin, true);
            }
        }

        // SACK recovery (RFC 6675 section 5, NextSeg rule 1): while the pipe
        // has room, resend the holes the scoreboard shows, before new data.
        if sending_state
            && self.sack_ok
            && self.cc.in_recovery()
            && self.pipe() < self.cc.ssthresh() as usize
        {
            let from = self.high_rxt.max(self.snd_una);
            // RFC 6675 section 4 (IsLost): a hole counts as lost only with
            // more than (DupThresh - 1) * SMSS bytes SACKed above it; a
            // merely reordered segment gets the chance to arrive.
            let lost = self.scoreboard.next_hole(from).filter(|&(hole, _)| {
                let highest = self.scoreboard.highest().unwrap_or(hole);
                self.scoreboard.sacked_between(hole, highest) > 2 * mss
            });
            if let Some((hole, hole_len)) = lost {
                let off = hole - self.snd_una;
                let len = hole_len
                    .min(mss)
                    .min(self.snd_buf.len().saturating_sub(off));
                if len > 0 {
                    self.high_rxt = hole + len;
                    if hole == self.snd_una {
                        self.una_rxt = Some((hole, now));
                    }
                    self.stats.sack_retransmits += 1;
                    trace!(
                        "{} -> {}: SACK recovery resends hole at {} ({} bytes)",
                        self.local,
                        self.remote,
                        hole,
                        len
                    );
                    return self.emit_data(now, buf, hole, off, len, false, true);
                }
            }
        }

        // Tail loss probe (RFC 8985 section 7.3): new data if we may send
        // it, else the last segment again, to draw an ACK with SACK blocks.
        if self.tlp_pending && sending_state {
            self.tlp_pending = false;
            self.tlp_outstanding = true;
            let sent = self.snd_max - self.snd_una;
            let unsent = self.snd_buf.len().saturating_sub(sent);
            let fin_out = self.fin_seq.is_some();
            if !fin_out && sent <= self.snd_buf.len() && sent > 0 {
                self.stats.tail_loss_probes += 1;
                let len;
                let seq;
                if unsent > 0 && (self.snd_wnd as usize) > sent {
                    len = unsent.min(mss).min(self.snd_wnd as usize - sent);
                    seq = self.snd_max;
                } else {
                    len = sent.min(mss);
                    seq = self.snd_max + (u32::MAX - len as u32 + 1);
                    self.rtt_probe = None;
                }
                trace!(
                    "{} -> {}: tail loss probe seq={} len={}",
                    self.local,
                    self.remote,
                    seq,
                    len
                );
                let off = seq - self.snd_una;
                let retransmission = seq.lt(self.snd_max);
                // RFC 8985 section 7.3: the RTO timer is re-armed from the
                // probe, so that the probe's answer can arrive before it.
                self.rto_deadline = Some(now + self.rtt.rto());
                if seq == self.snd_max {
                    // New data: continue from the top, not from a rewound snd_nxt.
                    self.snd_nxt = self.snd_max;
                }
                return self.emit_data(now, buf, seq, off, len, false, retransmission);
            }
        }

        if sending_state {
            // After a timeout snd_nxt walks up again: skip what the peer SACKed.
            if self.snd_nxt.lt(self.snd_max) {
                if let Some(end) = self.scoreboard.sacked_until(self.snd_nxt) {
                    self.snd_nxt = end.min(self.snd_max);
                }
            }
            let off = self.snd_nxt - self.snd_una;
            if off <= self.snd_buf.len() {
                let unsent = self.snd_buf.len() - off;
                let in_flight = off;
                // Limited transmit (RFC 3042): the first two duplicate ACKs
                // each let one new segment out beyond cwnd.
                let limited = if self.cc.in_recovery() {
                    0
                } else {
                    self.cc.dup_acks().min(2) as usize * mss
                };
                // The peer's window limits sequence space; cwnd limits what
                // is in the network: with SACK that is the pipe (RFC 6675),
                // and in SACK recovery cwnd is ssthresh, not inflated.
                let rwnd_room = (self.snd_wnd as usize).saturating_sub(in_flight);
                let (cwnd, flight) = if self.sack_ok && self.snd_nxt == self.snd_max {
                    let cwnd = if self.cc.in_recovery() {
                        self.cc.ssthresh() as usize
                    } else {
                        self.cc.cwnd() as usize
                    };
                    (cwnd, self.pipe())
                } else {
                    (self.cc.cwnd() as usize, in_flight)
                };
                let mut cwnd_room = cwnd.saturating_sub(flight);
                if limited > 0 {
                    // RFC 3042: FlightSize may reach cwnd + 2*SMSS; the pipe
                    // already excludes SACKed segments (RFC 6675 section 5
                    // step (3)), so the allowance is not added to it again.
                    cwnd_room = cwnd_room
                        .max((self.cc.cwnd() as usize + limited).saturating_sub(in_flight));
                }
                let usable = rwnd_room.min(cwnd_room);
                let mut len = unsent.min(usable).min(mss);
                if self.snd_nxt.lt(self.snd_max) {
                    // Retransmitting: stop at the next SACKed range.
                    if let Some(next) = self.scoreboard.next_sacked(self.snd_nxt) {
                        len = len.min(next - self.snd_nxt);
                    }
                }
                // Our FIN goes right after the last byte, unless it is already acked.
                let can_fin = self.fin_queued && !self.fin_acked();
                let fin = can_fin && len == unsent;
                let send = if len == 0 {
                    // Only a FIN, if it is due.
                    fin
                } else if len == mss || fin {
                    true
                } else if len < unsent {
                    // Window-limited small segment: sender SWS avoidance
                    // (RFC 1122 4.2.3.4): only if nothing is in flight, or
                    // it is at least half the largest window ever offered.
                    in_flight == 0 || len >= (self.max_snd_wnd as usize) / 2
                } else {
                    // The tail of the data: Nagle holds it while data is
                    // unacknowledged -- in Minshall's form (as Linux): only
                    // while an earlier *small* segment is unacknowledged, so
                    // the tail of one large write is not held for an RTT.
                    !self.nagle || in_flight == 0 || !self.small_segment_unacked()
                };
                if send {
                    let seq = self.snd_nxt;
                    let retransmission = seq.lt(self.snd_max);
                    return self.emit_data(now, buf, seq, off, len, fin, retransmission);
                }
                // Zero window with data waiting and nothing in flight: arm the persist timer.
                if unsent > 0
                    && self.snd_wnd == 0
                    && in_flight == 0
                    && self.rto_deadline.is_none()
                    && self.persist_deadline.is_none()
                {
                    let backoff = 1u32 << self.persist_backoff.min(6);
                    let interval = (self.rtt.rto() * backoff).min(self.cfg.rtt.max_rto);
                    self.persist_deadline = Some(now + interval);
                }
            }
        }

        if self.probe_pending {
            self.probe_pending = false;
            if self.snd_wnd == 0 {
                // A zero-window probe: an old sequence number the peer must answer
                // with its current window (RFC 9293 section 3.8.6.1).
                self.stats.zero_window_probes += 1;
                trace!("{} -> {}: zero-window probe", self.local, self.remote);
                let window = self.advertise(false);
                let repr = TcpRepr {
                    src: self.local,
                    dst: self.remote,
                    seq: self.snd_una + u32::MAX, // SND.UNA - 1
                    ack: self.rcv_nxt,
                    flags: TcpFlags::ACK,
                    window,
                    options: self.seg_options(now, false),
                };
                return self.emit(buf, &repr, 0, 0);
            }
        }

        // RFC 5681 section 4.2: one duplicate ACK per out-of-order segment,
        // even when a batch of them is processed before we dispatch.
        if self.ack_pending || self.dup_acks_owed > 0 || self.window_update {
            let window = self.advertise(false);
            let repr = TcpRepr {
                src: self.local,
                dst: self.remote,
                // RFC 9293's SND.NXT: ours rewinds to SND.UNA on a timeout, and
                // the peer drops an ACK whose sequence number is below RCV.NXT.
                seq: self.snd_max,
                ack: self.rcv_nxt,
                flags: TcpFlags::ACK,
                window,
                options: self.seg_options(now, true),
            };
            return self.emit(buf, &repr, 0, 0);
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_data(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        seq: SeqNum,
        off: usize,
        len: usize,
        fin: bool,
        retransmission: bool,
    ) -> Option<usize> {
        let mut flags = TcpFlags::ACK;
        if len > 0 && off + len == self.snd_buf.len() {
            flags = flags | TcpFlags::PSH;
        }
        if fin {
            flags = flags | TcpFlags::FIN;
        }
        let window = self.advertise(false);
        let repr = TcpRepr {
            src: self.local,
            dst: self.remote,
            seq,
            ack: self.rcv_nxt,
            flags,
            window,
            options: self.seg_options(now, false),
        };
        let written = self.emit(buf, &repr, off, len)?;
        if retransmission {
            trace!(
                "{} -> {}: retransmitting seq={} len={}{}",
                self.local,
                self.remote,
                seq,
                len,
                if fin { " +FIN" } else { "" }
            );
            // Karn's rule (RFC 6298 section 3): once anything is sent twice,
            // the ACK that covers the timed segment may answer the copy, so
            // the measurement in progress is void (a hole resent during
            // recovery would otherwise time the whole recovery).
            self.rtt_probe = None;
            self.karn_block(now);
        }
        let end = seq + len + usize::from(fin);
        if len > 0 && len < self.payload_mss() {
            self.last_small_end = Some(end.max(self.last_small_end.unwrap_or(end)));
        }
        if fin {
            self.fin_seq = Some(seq + len);
        }
        if seq == self.snd_nxt {
            self.snd_nxt = end;
        }
        if end.gt(self.snd_max) {
            if self.rtt_probe.is_none() && !retransmission {
                self.rtt_probe = Some((end, now));
            }
            self.snd_max = end;
        }
        if self.rto_deadline.is_none() {
            self.rto_deadline = Some(now + self.rtt.rto());
        }
        self.persist_deadline = None;
        self.arm_tlp(now);
        Some(written)
    }

    /// RFC 6675's pipe: bytes we believe are still in the network. Without
    /// SACK information that is everything unacknowledged; with it, what was
    /// sent above the highest SACKed byte plus the holes retransmitted in
    /// recovery (holes below the highest SACK are counted as lost).
    fn pipe(&self) -> usize {
        let flight = self.snd_max - self.snd_una;
        let Some(highest) = self.scoreboard.highest() else {
            return flight;
        };
        if !self.cc.in_recovery() {
            return flight.saturating_sub(self.scoreboard.sacked_bytes());
        }
        let above = self.snd_max - highest;
        let rxt_end = self.high_rxt.max(self.snd_una).min(highest);
        let resent = (rxt_end - self.snd_una)
            .saturating_sub(self.scoreboard.sacked_between(self.snd_una, rxt_end));
        above + resent
    }

    /// True while a segment shorter than the MSS is unacknowledged.
    fn small_segment_unacked(&self) -> bool {
        self.last_small_end.is_some_and(|end| end.gt(self.snd_una))
    }

    /// Arms the tail loss probe timer (RFC 8985 section 7.2): PTO = 2*SRTT,
    /// plus a delayed-ACK allowance when one segment is in flight, and only
    /// if that comes before the retransmission timer.
    fn arm_tlp(&mut self, now: Instant) {
        let Some(srtt) = self.rtt.srtt() else { return };
        if !self.cfg.tail_loss_probe
            || self.tlp_outstanding
            || !self.state.can_send()
            || self.snd_max == self.snd_una
            || self.snd_nxt != self.snd_max
            || self.fin_seq.is_some()
        {
            self.tlp_deadline = None;
            return;
        }
        let mut pto = (2 * srtt).max(Duration::from_millis(2));
        if (self.snd_max - self.snd_una) <= self.payload_mss() {
            pto += self
                .cfg
                .ack_delay
                .unwrap_or(Duration::ZERO)
                .max(Duration::from_millis(10));
        }
        let at = now + pto;
        self.tlp_deadline = match self.rto_deadline {
            Some(rto) if rto <= at => None,
            _ => Some(at),
        };
    }

    /// Serialises one segment whose payload is `snd_buf[off..off + len]`.
    fn emit(&mut self, buf: &mut [u8], repr: &TcpRepr, off: usize, len: usize) -> Option<usize> {
        let snd_buf = &self.snd_buf;
        let written = wire::emit_tcp(buf, repr, len, |out| {
            let (a, b) = snd_buf.as_slices();
            let mut copied = 0;
            if off < a.len() {
                let n = (a.len() - off).min(len);
                out[..n].copy_from_slice(&a[off..off + n]);
                copied = n;
            }
            if copied < len {
                let start = off + copied - a.len();
                out[copied..len].copy_from_slice(&b[start..start + len - copied]);
            }
        });
        let Some(written) = written else {
            debug!("{} -> {}: output buffer too small", self.local, self.remote);
            return None;
        };
        self.stats.segs_out += 1;
        self.stats.bytes_out += len as u64;
        if repr.flags.contains(TcpFlags::ACK) {
            self.last_ack_sent = repr.ack;
            self.ack_pending = false;
            self.dup_acks_owed = self.dup_acks_owed.saturating_sub(1);
            self.ack_deadline = None;
            self.unacked_bytes = 0;
        }
        trace!(
            "{} -> {}: {:?} seq={} ack={} win={} len={}",
            self.local,
            self.remote,
            repr.flags,
            repr.seq,
            repr.ack,
            repr.window,
            len
        );
        Some(written)
    }
}

/// Appends in-order data to the receive buffer, up to its capacity, unless
/// the application shut its reading side (then the data is discarded).
fn append_received(buf: &mut VecDeque<u8>, cap: usize, discard: bool, data: &[u8]) {
    if !discard {
        let room = cap.saturating_sub(buf.len());
        buf.extend(&data[..data.len().min(room)]);
    }
}

/// The message for an error kind that ended a connection.
pub(crate) fn error_text(kind: io::ErrorKind) -> &'static str {
    match kind {
        io::ErrorKind::ConnectionRefused => "connection refused",
        io::ErrorKind::ConnectionReset => "connection reset by peer",
        io::ErrorKind::TimedOut => "connection timed out",
        _ => "connection failed",
    }
}

#[cfg(test)]
#[path = "tcb_tests/mod.rs"]
mod tests;
