//! Negotiated options: window scale (RFC 7323 section 2), timestamps and
//! PAWS (RFC 7323 sections 3-5), SACK-permitted (RFC 2018), and the options
//! our segments carry.

use log::trace;

use super::{Tcb, DEFAULT_MSS};
use crate::seq::SeqNum;
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpOptions, TcpSegment};

/// What the handshake agreed on, and the timestamp state.
#[derive(Debug, Default)]
pub(super) struct Negotiated {
    /// Both sides sent the window scale option.
    pub(super) wscale: bool,
    /// Both sides sent the timestamps option (RFC 7323 section 3.2).
    pub(super) ts: bool,
    /// Both sides sent SACK-permitted (RFC 2018 section 2).
    pub(super) sack: bool,
    /// TS.Recent: the timestamp to echo (RFC 7323 section 4.3).
    pub(super) ts_recent: u32,
    /// RCV.NXT when we last sent an ACK (RFC 7323's Last.ACK.sent).
    pub(super) last_ack_sent: SeqNum,
}

/// The smallest window scale shift that lets `buffer` bytes fit the 16-bit
/// window field (RFC 7323 section 2.3: at most 14).
pub(crate) fn window_scale_for(buffer: usize) -> u8 {
    let mut shift = 0u8;
    while shift < 14 && (buffer >> shift) > 65535 {
        shift += 1;
    }
    shift
}

/// Our timestamp clock for a connection whose ISS is `iss`: milliseconds,
/// offset per connection (RFC 7323 section 5.4). The stack uses it too, for
/// SYN cookies ([`crate::syncookie`]).
pub(crate) fn timestamp_clock(now: Instant, iss: SeqNum) -> u32 {
    (now.total_millis() as u32).wrapping_add(iss.0)
}

/// True when timestamp `a` is older than `b` (mod 2^32, RFC 7323 section 5.3).
fn ts_older(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl Tcb {
    /// Takes the options of the peer's SYN or SYN-ACK: each is on only if
    /// both sides sent it (RFC 7323 sections 2.2 and 3.2, RFC 2018 section 2).
    pub(super) fn apply_syn_options(&mut self, seg: &TcpSegment<'_>) {
        match seg.options.timestamp {
            Some((tsval, _)) if self.cfg.timestamps => {
                self.opts.ts = true;
                self.opts.ts_recent = tsval;
            }
            _ => self.opts.ts = false,
        }
        self.opts.sack = self.cfg.sack && seg.options.sack_permitted;
        let peer_mss = seg.options.mss.unwrap_or(DEFAULT_MSS).max(64);
        self.snd.mss = u32::from(peer_mss.min(self.cfg.mss));
        // Congestion control counts in segments as they go out: MSS less the
        // 12 option bytes of timestamps when those are on (RFC 7323).
        self.cc.set_mss(self.payload_mss() as u32);
        match (self.cfg.window_scaling, seg.options.window_scale) {
            (true, Some(shift)) => {
                // RFC 7323 section 2.3: a shift above 14 is treated as 14.
                self.snd.wscale = shift.min(14);
                self.opts.wscale = true;
            }
            _ => {
                self.snd.wscale = 0;
                self.rcv.wscale = 0;
                self.opts.wscale = false;
            }
        }
    }

    /// RFC 7323 section 3.2: once timestamps are negotiated, a segment
    /// without the option is dropped silently -- a RST excepted (it may come
    /// from a stack that lost the connection's state).
    pub(super) fn timestamp_missing(&self, seg: &TcpSegment<'_>) -> bool {
        let missing =
            self.opts.ts && seg.options.timestamp.is_none() && !seg.flags.contains(TcpFlags::RST);
        if missing {
            trace!(
                "{} -> {}: no timestamp option after negotiating it (RFC 7323 section 3.2): dropped",
                self.local,
                self.remote
            );
        }
        missing
    }

    /// PAWS (RFC 7323 section 5.3, R1): true when the segment carries a
    /// timestamp older than TS.Recent, an old duplicate from before the
    /// sequence numbers wrapped. A RST is never rejected this way.
    pub(super) fn paws_rejects(&self, seg: &TcpSegment<'_>, is_rst: bool) -> bool {
        let Some((tsval, _)) = seg.options.timestamp.filter(|_| self.opts.ts) else {
            return false;
        };
        let old = ts_older(tsval, self.opts.ts_recent) && !is_rst;
        if old {
            trace!(
                "{} -> {}: PAWS: TSval {} older than TS.Recent {}",
                self.local,
                self.remote,
                tsval,
                self.opts.ts_recent
            );
        }
        old
    }

    /// RFC 7323 section 4.3 (2): remember the timestamp to echo, from a
    /// segment that starts at or before what we last acknowledged.
    pub(super) fn update_ts_recent(&mut self, seg: &TcpSegment<'_>) {
        if let (true, Some((tsval, _))) = (self.opts.ts, seg.options.timestamp) {
            if !ts_older(tsval, self.opts.ts_recent) && seg.seq.le(self.opts.last_ack_sent) {
                self.opts.ts_recent = tsval;
            }
        }
    }

    /// Our timestamp clock ([`timestamp_clock`]).
    pub(super) fn tsval(&self, now: Instant) -> u32 {
        timestamp_clock(now, self.snd.iss)
    }

    /// Options for our SYN or SYN-ACK: MSS always; window scale, SACK-permitted
    /// and timestamps on a SYN if configured, on a SYN-ACK only if the peer
    /// offered them (RFC 7323 sections 2.2 and 3.2, RFC 2018 section 2).
    pub(super) fn syn_options(&self, now: Instant, is_syn_ack: bool) -> TcpOptions {
        let (wscale, sack, ts) = if is_syn_ack {
            (self.opts.wscale, self.opts.sack, self.opts.ts)
        } else {
            (self.cfg.window_scaling, self.cfg.sack, self.cfg.timestamps)
        };
        let ts_ecr = if is_syn_ack { self.opts.ts_recent } else { 0 };
        TcpOptions {
            mss: Some(self.cfg.mss),
            window_scale: wscale.then_some(self.rcv.wscale),
            sack_permitted: sack,
            timestamp: ts.then(|| (self.tsval(now), ts_ecr)),
            ..TcpOptions::default()
        }
    }

    /// Options of a non-SYN segment: timestamps if negotiated, and on pure
    /// ACKs the SACK blocks of what we hold out of order (RFC 2018 section 4).
    pub(super) fn seg_options(&self, now: Instant, with_sack: bool) -> TcpOptions {
        let mut opts = TcpOptions::default();
        if self.opts.ts {
            opts.timestamp = Some((self.tsval(now), self.opts.ts_recent));
        }
        if with_sack && self.opts.sack && !self.rcv.reassembly.is_empty() {
            // The block holding the latest out-of-order segment goes first,
            // then the most recently reported ones (RFC 2018 section 4), so
            // each block is repeated in several ACKs; then the rest.
            let blocks = &self.rcv.reassembly;
            let recent = self
                .rcv
                .last_ooo
                .iter()
                .filter_map(|&s| blocks.blocks().find(|&(l, r)| s.in_range(l, r)));
            for (l, r) in recent.chain(blocks.blocks()) {
                if !opts.sack.as_slice().contains(&(l, r)) && !opts.sack.push(l, r) {
                    break;
                }
            }
        }
        opts
    }

    /// The largest payload of one segment: the send MSS less our option bytes.
    pub(super) fn payload_mss(&self) -> usize {
        let mss = self.snd.mss as usize;
        if self.opts.ts {
            mss.saturating_sub(12).max(1)
        } else {
            mss
        }
    }
}
