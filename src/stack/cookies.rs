//! SYN cookies at the listener (RFC 4987 section 3.6; the codec is
//! [`crate::syncookie`]). When a listener's backlog is taken by half-open
//! connections but its accept queue has room, a SYN is answered with a
//! cookie SYN-ACK and forgotten; an ACK that returns a valid cookie builds
//! the connection straight into the accept queue. A SYN flood therefore
//! costs no memory beyond the backlog, and real clients still get in.
//!
//! As on Linux, a cookie is only looked for in ACKs to a listener that sent
//! cookies in the last [`MAX_AGE`](crate::syncookie::MAX_AGE) minutes, so
//! a listener that was never flooded never accepts a guessed one.

use super::*;
use crate::syncookie::{CookieOptions, SynCookies, MAX_AGE};
use crate::tcb::{timestamp_clock, window_scale_for};

/// How long after its last cookie a listener still takes cookie ACKs.
const COOKIE_WINDOW_MS: u64 = (MAX_AGE as u64 + 1) * 60_000;

impl Stack {
    /// Answers `seg`, a SYN to a listener whose SYN queue is full, with a
    /// cookie SYN-ACK: the same options a TCB would send, our timestamp
    /// carrying the peer's window scale and SACK-permitted.
    pub(super) fn send_cookie(
        &mut self,
        now: Instant,
        seg: &TcpSegment<'_>,
        port: u16,
        tcp: &TcpConfig,
    ) {
        let peer_mss = seg.options.mss.unwrap_or(crate::tcb::DEFAULT_MSS);
        let index = SynCookies::mss_index(peer_mss.min(tcp.mss));
        let iss = self.cookies.make(now, seg.dst, seg.src, seg.seq, index);
        let ts = seg.options.timestamp.filter(|_| tcp.timestamps);
        let opts = CookieOptions {
            wscale: seg.options.window_scale.filter(|_| tcp.window_scaling),
            sack: seg.options.sack_permitted && tcp.sack,
        };
        let our_wscale = window_scale_for(tcp.recv_buffer);
        let syn_ack = TcpSegment {
            src: seg.dst,
            dst: seg.src,
            seq: iss,
            ack: seg.seq + 1u32,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: tcp.recv_buffer.min(65_535) as u16,
            options: TcpOptions {
                mss: Some(tcp.mss),
                window_scale: ts.and(opts.wscale).map(|_| our_wscale),
                sack_permitted: ts.is_some() && opts.sack,
                timestamp: ts.map(|(tsval, _)| (opts.encode(timestamp_clock(now, iss)), tsval)),
                ..TcpOptions::default()
            },
            payload: &[],
        };
        if let Some(l) = self.listeners.get_mut(&port) {
            l.cookie_sent = Some(now);
        }
        self.stats.syn_cookies_sent += 1;
        trace!("{} -> {}: SYN queue full, cookie SYN-ACK", seg.dst, seg.src);
        self.push_control(Control::Segment(syn_ack));
    }

    /// An ACK to a listener with no connection: if it returns one of our
    /// cookies, builds the connection and queues it for `accept`. False if
    /// it is not a cookie (the caller answers it with a RST); true if it
    /// was handled (taken, or dropped because the accept queue is full:
    /// the peer will retransmit; or data without a valid cookie, dropped
    /// rather than reset while cookies are in use: see below).
    pub(super) fn accept_cookie(&mut self, now: Instant, seg: &TcpSegment<'_>, port: u16) -> bool {
        let Some(l) = self.listeners.get(&port) else {
            return false;
        };
        let recent = l.cookie_sent.is_some_and(|t| {
            now.saturating_duration_since(t).as_millis() < COOKIE_WINDOW_MS as u128
        });
        if !self.cfg.syn_cookies || !recent || seg.flags.contains(TcpFlags::SYN) {
            return false;
        }
        let (iss, peer_isn) = (seg.ack - 1u32, seg.seq - 1u32);
        let Some(mss) = self.cookies.check(now, seg.dst, seg.src, peer_isn, iss) else {
            self.stats.syn_cookies_rejected += 1;
            if !seg.payload.is_empty() || seg.flags.contains(TcpFlags::FIN) {
                // Likely a later segment of a handshake whose cookie ACK we
                // dropped (a full accept queue): its sequence number is past
                // the peer's ISN + 1, so the check cannot pass. A RST would
                // kill a good connection; dropped, the peer retransmits its
                // first segment, whose cookie checks.
                debug!(
                    "{} -> {}: data or FIN without a valid cookie, dropped",
                    seg.dst, seg.src
                );
                return true;
            }
            debug!("{} -> {}: ACK with a bad cookie", seg.dst, seg.src);
            return false;
        };
        if l.queue.len() >= l.backlog {
            self.stats.syn_backlog_full += 1;
            debug!("accept queue of port {port} full, dropping a cookie ACK");
            return true;
        }
        let opts = seg
            .options
            .timestamp
            .map_or_else(CookieOptions::default, |(_, tsecr)| {
                CookieOptions::decode(tsecr)
            });
        let tcb = Tcb::from_cookie(now, seg, iss, mss, opts, l.tcp.clone());
        self.stats.syn_cookies_accepted += 1;
        debug!("{} -> {}: valid SYN cookie (MSS {mss})", seg.dst, seg.src);
        let id = self.insert(tcb, Owner::Embryonic(port));
        let verdict = self
            .entry_mut(id)
            .map_or(Verdict::Done, |e| e.tcb.handle_segment(now, seg));
        if verdict == Verdict::SendReset {
            self.reset_for(seg);
        }
        self.after_event(id);
        true
    }
}
