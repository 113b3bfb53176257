//! What a connection counts and reports: [`ConnStats`] and the [`ConnInfo`]
//! snapshot (what Linux reports as `tcp_info`).

use std::time::Duration;

use crate::state::State;

/// Counters of one connection, for tests, logs and curious users.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
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
    /// Keepalive probes sent (RFC 1122 4.2.3.6).
    pub keepalive_probes: u64,
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
    /// ACKs not sent for unacceptable segments without data: at most one
    /// per [`OOW_ACK_INTERVAL`](super::OOW_ACK_INTERVAL), which breaks ACK
    /// loops between two ends that each find the other's ACKs out of window.
    pub oow_acks_limited: u64,
    /// Challenge ACKs owed (RFC 5961), before the stack's rate limit.
    pub challenge_acks: u64,
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

/// [`ConnInfo`] as a flat record for JSON: the counters inline, durations
/// in microseconds (`srtt_us`, `rttvar_us`, `rto_us`; null before the first
/// RTT sample), the state by its RFC 9293 name.
#[derive(serde::Serialize)]
struct InfoRecord<'a> {
    state: String,
    #[serde(flatten)]
    stats: &'a ConnStats,
    srtt_us: Option<u64>,
    rttvar_us: Option<u64>,
    rto_us: u64,
    cwnd: u32,
    ssthresh: u32,
    peer_window: u32,
    mss: u32,
    window_scale_ours: u8,
    window_scale_peer: u8,
    timestamps: bool,
    sack: bool,
    send_queued: usize,
    recv_queued: usize,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl serde::Serialize for ConnInfo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        InfoRecord {
            state: self.state.to_string(),
            stats: &self.stats,
            srtt_us: self.srtt.map(micros),
            rttvar_us: self.rttvar.map(micros),
            rto_us: micros(self.rto),
            cwnd: self.cwnd,
            ssthresh: self.ssthresh,
            peer_window: self.peer_window,
            mss: self.mss,
            window_scale_ours: self.window_scales.0,
            window_scale_peer: self.window_scales.1,
            timestamps: self.timestamps,
            sack: self.sack,
            send_queued: self.send_queued,
            recv_queued: self.recv_queued,
        }
        .serialize(s)
    }
}
