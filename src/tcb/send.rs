//! The send sequence space (RFC 9293 section 3.3.1) and the send buffer.
//!
//! ```text
//!      1         2          3          4
//! ----------|----------|----------|----------
//!        SND.UNA    SND.NXT    SND.UNA
//!                             +SND.WND
//! 1 - acknowledged        2 - sent, not yet acknowledged
//! 3 - may be sent         4 - not yet allowed
//! ```
//!
//! The buffer holds the bytes from SND.UNA on: first those sent and not yet
//! acknowledged, then those not sent yet. SND.MAX, the highest sequence
//! number ever sent, is kept apart from SND.NXT, which rewinds to SND.UNA on
//! a retransmission timeout.

use std::collections::VecDeque;

use crate::seq::SeqNum;

/// The variables of RFC 9293 section 3.3.1 for sending, and the send buffer.
#[derive(Debug)]
pub(super) struct SendSpace {
    /// ISS: our initial send sequence number.
    pub(super) iss: SeqNum,
    /// SND.UNA: the oldest unacknowledged sequence number.
    pub(super) una: SeqNum,
    /// SND.NXT: the next sequence number to send.
    pub(super) nxt: SeqNum,
    /// The highest sequence number ever sent (SND.NXT before a rewind).
    pub(super) max: SeqNum,
    /// SND.WND: the peer's window in bytes, already scaled.
    pub(super) wnd: u32,
    /// The largest window the peer ever offered (sender SWS avoidance).
    pub(super) max_wnd: u32,
    /// SND.WL1: the sequence number of the segment of the last window update.
    pub(super) wl1: SeqNum,
    /// SND.WL2: the acknowledgment number of the segment of the last window update.
    pub(super) wl2: SeqNum,
    /// The bytes from SND.UNA on: sent-but-unacknowledged, then unsent.
    pub(super) buf: VecDeque<u8>,
    /// The application closed its sending side: a FIN follows the data.
    pub(super) fin_queued: bool,
    /// The sequence number our FIN occupies, once sent.
    pub(super) fin_seq: Option<SeqNum>,
    /// SND.MSS: the largest segment we send (before our options).
    pub(super) mss: u32,
    /// The shift applied to the peer's window field (RFC 7323 section 2.3).
    pub(super) wscale: u8,
    /// End of the last segment sent shorter than the MSS (Minshall's Nagle).
    pub(super) last_small_end: Option<SeqNum>,
    /// Nagle's algorithm (RFC 896) is on.
    pub(super) nagle: bool,
    /// Zero-window probes sent since the window last opened (persist back-off).
    pub(super) persist_backoff: u32,
}

impl SendSpace {
    pub(super) fn new(iss: SeqNum, mss: u32, nagle: bool) -> Self {
        SendSpace {
            iss,
            una: iss,
            nxt: iss,
            max: iss,
            wnd: 0,
            max_wnd: 0,
            wl1: SeqNum(0),
            wl2: SeqNum(0),
            buf: VecDeque::new(),
            fin_queued: false,
            fin_seq: None,
            mss,
            wscale: 0,
            last_small_end: None,
            nagle,
            persist_backoff: 0,
        }
    }

    /// Bytes sent and not yet acknowledged (SND.MAX - SND.UNA).
    pub(super) fn flight(&self) -> usize {
        self.max - self.una
    }

    /// True while something we sent is unacknowledged.
    pub(super) fn has_flight(&self) -> bool {
        self.max.gt(self.una)
    }

    /// True once our FIN was sent and acknowledged.
    pub(super) fn fin_acked(&self) -> bool {
        self.fin_seq.is_some_and(|f| self.una.gt(f))
    }

    /// Records the peer's window from a segment (RFC 9293 section 3.10.7.4,
    /// fifth step: the SND.WL1/SND.WL2 rule is checked by the caller).
    pub(super) fn update_window(&mut self, window: u32, seq: SeqNum, ack: SeqNum) {
        self.wnd = window;
        self.max_wnd = self.max_wnd.max(window);
        self.wl1 = seq;
        self.wl2 = ack;
    }

    /// True if a segment with `seq` and `ack` may update the window: it is
    /// newer than the one that last did (RFC 9293 section 3.10.7.4).
    pub(super) fn window_update_allowed(&self, seq: SeqNum, ack: SeqNum) -> bool {
        self.wl1.lt(seq) || (self.wl1 == seq && self.wl2.le(ack))
    }

    /// Frees `n` acknowledged bytes from the front of the buffer; returns how many it held.
    pub(super) fn release(&mut self, n: usize) -> usize {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
        n
    }

    /// True while a segment shorter than the MSS is unacknowledged.
    pub(super) fn small_segment_unacked(&self) -> bool {
        self.last_small_end.is_some_and(|end| end.gt(self.una))
    }

    /// The `len` bytes starting `off` bytes after SND.UNA, as the two
    /// slices (either possibly empty) the ring buffer holds them in; the
    /// first comes first. A range beyond the buffer is cut at its end.
    pub(super) fn slices(&self, off: usize, len: usize) -> (&[u8], &[u8]) {
        debug_assert!(off.saturating_add(len) <= self.buf.len());
        let (a, b) = self.buf.as_slices();
        let end = off.saturating_add(len);
        let skip = a.len();
        (
            clamped(a, off, end),
            clamped(b, off.saturating_sub(skip), end.saturating_sub(skip)),
        )
    }
}

/// `s[from..to]`, both ends cut at `s.len()`.
fn clamped(s: &[u8], from: usize, to: usize) -> &[u8] {
    s.get(from.min(s.len())..to.min(s.len()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_any_range_of_a_wrapped_buffer() {
        let mut snd = SendSpace::new(SeqNum(1), 1460, true);
        snd.buf = VecDeque::with_capacity(8);
        snd.buf.extend(0..6u8);
        snd.buf.drain(..4);
        snd.buf.extend(6..12u8);
        let (a, b) = snd.buf.as_slices();
        assert!(!a.is_empty() && !b.is_empty(), "the buffer wraps");
        let all: Vec<u8> = snd.buf.iter().copied().collect();
        for off in 0..=all.len() {
            for len in 0..=all.len() - off {
                let (first, second) = snd.slices(off, len);
                assert_eq!(
                    [first, second].concat(),
                    &all[off..off + len],
                    "{off}+{len}"
                );
                assert!(first.len() <= a.len() && second.len() <= b.len());
            }
        }
    }
}
