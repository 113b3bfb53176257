//! The receive sequence space (RFC 9293 section 3.3.1), the receive buffer
//! and the reassembly queue for out-of-order data.
//!
//! ```text
//!      1          2          3
//! ----------|----------|----------
//!        RCV.NXT    RCV.NXT
//!                  +RCV.WND
//! 1 - old sequence numbers that have been acknowledged
//! 2 - sequence numbers allowed for new reception
//! 3 - future sequence numbers that are not yet allowed
//! ```

use std::collections::VecDeque;

use crate::reassembly::ReassemblyQueue;
use crate::seq::SeqNum;
use crate::wire;

/// The variables of RFC 9293 section 3.3.1 for receiving, and the buffers.
#[derive(Debug)]
pub(super) struct RecvSpace {
    /// IRS: the peer's initial sequence number.
    pub(super) irs: SeqNum,
    /// RCV.NXT: the next sequence number expected.
    pub(super) nxt: SeqNum,
    /// The right edge of the window we last advertised (never moves left).
    pub(super) adv: SeqNum,
    /// The shift we apply to our window field (RFC 7323 section 2.3).
    pub(super) wscale: u8,
    /// The window field we sent last, and RCV.NXT at that time.
    pub(super) last_adv_field: u16,
    pub(super) last_adv_nxt: SeqNum,
    /// In-order bytes the application has not read yet.
    pub(super) buf: VecDeque<u8>,
    /// RCV.BUFF: the capacity of `buf`, the largest window we advertise.
    pub(super) cap: usize,
    /// Out-of-order bytes above RCV.NXT.
    pub(super) reassembly: ReassemblyQueue,
    /// A FIN that arrived out of order, at this sequence number.
    pub(super) fin_pending: Option<SeqNum>,
    /// The peer's FIN was received in order: reads return EOF after the data.
    pub(super) fin_received: bool,
    /// The application shut down its reading side: data is discarded.
    pub(super) read_shutdown: bool,
    /// Bytes received in order since we last sent an ACK.
    pub(super) unacked_bytes: usize,
    /// Starts of the latest out-of-order segments, most recent first: their
    /// blocks are reported first, in that order (RFC 2018 section 4).
    pub(super) last_ooo: Vec<SeqNum>,
}

impl RecvSpace {
    pub(super) fn new(cap: usize, wscale: u8) -> Self {
        RecvSpace {
            irs: SeqNum(0),
            nxt: SeqNum(0),
            adv: SeqNum(0),
            wscale,
            last_adv_field: 0,
            last_adv_nxt: SeqNum(0),
            buf: VecDeque::new(),
            cap,
            reassembly: ReassemblyQueue::new(cap),
            fin_pending: None,
            fin_received: false,
            read_shutdown: false,
            unacked_bytes: 0,
            last_ooo: Vec::new(),
        }
    }

    /// The peer's SYN at `irs` arrived: RCV.NXT is the byte after it.
    pub(super) fn on_syn(&mut self, irs: SeqNum) {
        self.irs = irs;
        self.nxt = irs + 1u32;
    }

    /// RCV.WND: the window the peer may currently fill.
    pub(super) fn wnd(&self) -> usize {
        self.adv - self.nxt
    }

    /// Free space in the receive buffer.
    pub(super) fn free(&self) -> usize {
        self.cap.saturating_sub(self.buf.len())
    }

    /// The smallest window growth worth announcing: receiver SWS avoidance
    /// (RFC 1122 4.2.3.3), min(RCV.BUFF / 2, MSS).
    pub(super) fn sws_threshold(&self, mss: u16) -> usize {
        (self.cap / 2).min(usize::from(mss))
    }

    /// Appends in-order `data` and moves RCV.NXT over it; returns its length.
    pub(super) fn deliver(&mut self, data: &[u8]) -> usize {
        append_received(&mut self.buf, self.cap, self.read_shutdown, data);
        self.account(data.len())
    }

    /// Moves what waited behind a gap, now in order, into the receive buffer.
    pub(super) fn drain_reassembly(&mut self) -> usize {
        let (buf, cap, discard) = (&mut self.buf, self.cap, self.read_shutdown);
        let n = self
            .reassembly
            .drain_ready(self.nxt, |chunk| append_received(buf, cap, discard, chunk));
        self.account(n)
    }

    /// Holds an out-of-order segment and remembers it for the SACK blocks.
    pub(super) fn hold_out_of_order(&mut self, seq: SeqNum, data: &[u8]) {
        self.reassembly.insert(self.nxt, seq, data);
        self.last_ooo.insert(0, seq);
        self.last_ooo.truncate(wire::SackBlocks::MAX);
    }

    fn account(&mut self, n: usize) -> usize {
        self.nxt += n;
        self.unacked_bytes += n;
        n
    }

    /// Reads up to `out.len()` bytes from the receive buffer.
    pub(super) fn read(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.buf.len());
        let (a, b) = self.buf.as_slices();
        let from_a = n.min(a.len());
        out[..from_a].copy_from_slice(&a[..from_a]);
        out[from_a..n].copy_from_slice(&b[..n - from_a]);
        self.buf.drain(..n);
        n
    }

    /// Copies up to `out.len()` bytes without consuming them (MSG_PEEK).
    pub(super) fn peek(&self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.buf.len());
        for (dst, src) in out.iter_mut().zip(self.buf.iter()) {
            *dst = *src;
        }
        n
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
