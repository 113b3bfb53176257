//! The tunables of a connection: [`TcpConfig`].

use std::time::Duration;

use crate::cc::Algorithm;
use crate::rtt::RttConfig;

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
    /// The congestion controller (RFC 5681/6582 NewReno, or RFC 9438 CUBIC).
    pub congestion: Algorithm,
    /// HyStart++ (RFC 9406) for the initial slow start: leave it on a rise
    /// of the RTT, before the first loss. Only CUBIC implements it (NewReno
    /// ignores the flag). Off by default.
    pub hystart: bool,
    /// Leave the TCP checksum to the device: packets carry a partial
    /// checksum ([`crate::gso`]). Off by default; the runtime turns it on
    /// for a device that offloads (`Device::tx_offload`).
    pub checksum_offload: bool,
    /// The largest payload of one super-segment, which the device cuts into
    /// MSS-sized segments (TSO, [`crate::gso`]); one MSS or less (the
    /// default, 0) sends plain segments only. The runtime sets it for a
    /// device that offloads.
    pub max_super_segment: usize,
    /// RFC 1337: a RST that arrives in TIME-WAIT is ignored instead of
    /// ending TIME-WAIT early ("TIME-WAIT assassination", which lets an old
    /// duplicate of the closed connection reach a new incarnation). On by
    /// default; Linux's default (`net.ipv4.tcp_rfc1337` = 0) lets the RST in.
    pub rfc1337: bool,
    /// How long a connection the application let go of (an orphan) waits
    /// in FIN-WAIT-2 for the peer's FIN before it is reset; `None` waits
    /// for ever. Linux's `net.ipv4.tcp_fin_timeout` is the same 60 s. A
    /// half-closed connection the application still holds waits for ever.
    pub orphan_fin_wait_2: Option<Duration>,
    /// Zero-window probes an orphan sends without the window opening before
    /// it is reset (Linux: `tcp_orphan_retries`, 8 when left at 0); a
    /// connection the application holds probes for ever.
    pub orphan_probes: u32,
    /// Keepalive (RFC 9293 section 3.8.4, RFC 1122 4.2.3.6): probe a peer
    /// that sent nothing for a while, and give up (`TimedOut`, with a RST)
    /// when it does not answer. Off (`None`) by default, as in every stack.
    pub keepalive: Option<Keepalive>,
    /// RFC 5482's user timeout, as Linux's `TCP_USER_TIMEOUT`: the longest
    /// that sent data may stay unacknowledged before the connection ends
    /// with `TimedOut`. It replaces `max_retries` once the connection is
    /// synchronized, and is checked each time the retransmission timer
    /// fires, so the connection ends at the first timeout at or after it.
    /// `None` (the default): `max_retries` decides.
    pub user_timeout: Option<Duration>,
}

/// When keepalive probes go out ([`TcpConfig::keepalive`]); the defaults are
/// Linux's (`tcp_keepalive_time`, `_intvl`, `_probes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// How long the connection may be idle (nothing received) before the
    /// first probe. RFC 1122 4.2.3.6: no less than two hours by default.
    pub idle: Duration,
    /// Between unanswered probes.
    pub interval: Duration,
    /// Unanswered probes before the connection is given up.
    pub count: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            idle: Duration::from_secs(7200),
            interval: Duration::from_secs(75),
            count: 9,
        }
    }
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
            congestion: Algorithm::default(),
            hystart: false,
            checksum_offload: false,
            max_super_segment: 0,
            rfc1337: true,
            orphan_fin_wait_2: Some(Duration::from_secs(60)),
            orphan_probes: 8,
            keepalive: None,
            user_timeout: None,
        }
    }
}
