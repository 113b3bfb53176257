//! Out-of-order segment reassembly.
//!
//! RFC 9293 section 3.10.7.4 ("Seventh, process the segment text") lets a
//! receiver keep segments that arrive ahead of `RCV.NXT` and deliver them
//! once the gap before them is filled (RFC 9293 section 3.4 and 3.10.7.4:
//! segments in the window but not at `RCV.NXT` "would normally be held for
//! later processing"). [`ReassemblyQueue`] holds those bytes.
//!
//! Representation: a B-tree map of blocks, each keyed by its start
//! (unwrapped to 64 bits) and holding its bytes in a `VecDeque`, kept
//! sorted in sequence space, pairwise disjoint and non-adjacent (touching
//! blocks are merged, around the largest of them, so that data prepended
//! to a block costs its own length). Positions are compared as
//! offsets from the `rcv_nxt` passed to each call, computed with
//! wrap-aware `SeqNum::diff`, so everything works across the 2^32 wrap as
//! long as the caller's `rcv_nxt` only moves forward.

use std::collections::{BTreeMap, VecDeque};

use crate::seq::SeqNum;

/// Blocks a queue may hold per byte of its bound (at least
/// [`MIN_BLOCKS`]): 1/256, so that a peer sending crumbs (1-byte segments
/// with gaps between them) makes the queue hold at most about a third more
/// than the window in bookkeeping (some 80 bytes per block: its map entry
/// and its allocation), while ordinary losses (one hole per lost segment of
/// at least 536 bytes) never come near it.
const BYTES_PER_BLOCK: usize = 256;

/// The fewest blocks any queue may hold.
const MIN_BLOCKS: usize = 64;

/// Holds data that arrived ahead of `RCV.NXT` until the gap before it is filled.
///
/// Invariants: at most `max_bytes` bytes and `max_blocks` blocks are held;
/// blocks are sorted, disjoint and never adjacent (adjacent or overlapping
/// data is merged). Each insert costs O(log n) plus the blocks it merges.
#[derive(Clone, Debug, Default)]
pub struct ReassemblyQueue {
    max_bytes: usize,
    max_blocks: usize,
    /// Blocks by their start, unwrapped to 64 bits (see `nxt_ext`).
    blocks: BTreeMap<u64, VecDeque<u8>>,
    held: usize,
    /// The `rcv_nxt` of the last call, and its unwrapped value: a position
    /// `seq` unwraps to `nxt_ext + seq.diff(nxt)`. Starts at 2^40, so that
    /// a caller moving backwards stays positive.
    nxt: SeqNum,
    nxt_ext: u64,
}

impl ReassemblyQueue {
    /// An empty queue that will hold at most `max_bytes` bytes.
    ///
    /// `max_bytes` is also the span of sequence space accepted beyond
    /// `rcv_nxt` (the receive window, RFC 9293 section 3.4). It is capped at
    /// 2^31 - 1 for that purpose, the largest span over which sequence
    /// numbers still compare correctly (RFC 9293 section 3.4; RFC 7323
    /// section 2.3 limits real windows to 2^30).
    pub fn new(max_bytes: usize) -> Self {
        ReassemblyQueue {
            max_bytes,
            max_blocks: (max_bytes / BYTES_PER_BLOCK).max(MIN_BLOCKS),
            blocks: BTreeMap::new(),
            held: 0,
            nxt: SeqNum(0),
            nxt_ext: 1 << 40,
        }
    }

    /// The memory bound given to [`new`](Self::new).
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The most blocks held at once.
    pub fn max_blocks(&self) -> usize {
        self.max_blocks
    }

    /// The accepted span beyond `rcv_nxt`, as an offset.
    fn window(&self) -> u64 {
        self.max_bytes.min(i32::MAX as usize) as u64
    }

    /// Moves the unwrapping base to `rcv_nxt` and drops held bytes outside
    /// `[rcv_nxt, rcv_nxt + window)`. Bytes before `rcv_nxt` are already
    /// delivered (RFC 9293 section 3.10.7.4); bytes at or beyond the window
    /// could only be there if the caller moved `rcv_nxt` backwards, and are
    /// dropped (highest sequence numbers first) so the bound keeps holding.
    /// O(log n) per block dropped, plus a scan only after a backwards move.
    fn sync(&mut self, rcv_nxt: SeqNum) {
        let d = i64::from(rcv_nxt.diff(self.nxt));
        self.nxt = rcv_nxt;
        self.nxt_ext = self.nxt_ext.saturating_add_signed(d);
        let nxt = self.nxt_ext;
        while let Some(e) = self.blocks.first_entry() {
            let start = *e.key();
            let end = start + e.get().len() as u64;
            if start >= nxt {
                break;
            }
            let mut data = e.remove();
            self.held -= data.len();
            if end > nxt {
                data.drain(..(nxt - start) as usize);
                self.held += data.len();
                self.blocks.insert(nxt, data);
                break;
            }
        }
        if d < 0 {
            self.trim_right();
        }
    }

    /// Drops what lies at or beyond the window's right edge.
    fn trim_right(&mut self) {
        let edge = self.nxt_ext + self.window();
        let beyond: Vec<u64> = self.blocks.range(edge..).map(|(&k, _)| k).collect();
        for k in beyond {
            if let Some(d) = self.blocks.remove(&k) {
                self.held -= d.len();
            }
        }
        if let Some((&k, d)) = self.blocks.iter_mut().next_back() {
            let end = k + d.len() as u64;
            if end > edge {
                let keep = (edge - k) as usize;
                self.held -= d.len() - keep;
                d.truncate(keep);
            }
        }
    }

    /// The unwrapped position of `seq` (after [`sync`](Self::sync)).
    fn ext(&self, seq: SeqNum) -> u64 {
        self.nxt_ext
            .saturating_add_signed(i64::from(seq.diff(self.nxt)))
    }

    /// Stores `data` that starts at `seq` (ahead of `rcv_nxt`).
    ///
    /// Returns the number of bytes of `data` newly stored. Rules:
    ///
    /// * Bytes before `rcv_nxt` were already delivered and are ignored
    ///   (RFC 9293 section 3.10.7.4: trim to the window's left edge).
    /// * Only bytes in `[rcv_nxt, rcv_nxt + max_bytes)` are kept — the
    ///   receive window (RFC 9293 section 3.10.7.4: trim to the window's
    ///   right edge). Since held bytes are distinct sequence numbers inside
    ///   that span, at most `max_bytes` bytes are ever held; what does not
    ///   fit (the highest sequence numbers) is dropped.
    /// * Bytes already held are kept as they are; only the uncovered parts
    ///   of `data` are stored (first copy wins).
    /// * Overlapping and adjacent ranges are merged into one block.
    /// * A segment that would make a new block beyond `max_blocks` is
    ///   dropped (a crumb flood; the sender retransmits real data).
    ///
    /// Held bytes that lie before `rcv_nxt` (the caller delivered them some
    /// other way) are discarded as a side effect.
    pub fn insert(&mut self, rcv_nxt: SeqNum, seq: SeqNum, data: &[u8]) -> usize {
        self.sync(rcv_nxt);
        let seg_start = self.ext(seq);
        let seg_end = seg_start.saturating_add(data.len() as u64);
        let s = seg_start.max(self.nxt_ext);
        let e = seg_end.min(self.nxt_ext + self.window());
        if s >= e {
            return 0;
        }
        // seg_start <= s < e <= seg_end
        let seg = &data[(s - seg_start) as usize..(e - seg_start) as usize];
        // The blocks that overlap or touch [s, e): one starting before s
        // that reaches it, and those starting in [s, e].
        let before = self
            .blocks
            .range(..s)
            .next_back()
            .filter(|(&k, d)| k + d.len() as u64 >= s)
            .map(|(&k, _)| k);
        let keys: Vec<u64> = before
            .into_iter()
            .chain(self.blocks.range(s..=e).map(|(&k, _)| k))
            .collect();
        if keys.is_empty() {
            if self.blocks.len() >= self.max_blocks {
                return 0;
            }
            self.blocks.insert(s, VecDeque::from(seg.to_vec()));
            self.held += seg.len();
            return seg.len();
        }
        let merged_start = keys[0].min(s);
        let mut pieces: Vec<Piece<'_>> = Vec::with_capacity(2 * keys.len() + 1);
        let mut cursor = merged_start;
        let mut new_bytes = 0;
        for k in keys {
            let b = self.blocks.remove(&k).unwrap_or_default();
            if k > cursor {
                // A gap before this block, inside [s, e).
                let gap = &seg[(cursor - s) as usize..(k - s) as usize];
                new_bytes += gap.len();
                pieces.push(Piece::Gap(gap));
            }
            cursor = k + b.len() as u64;
            pieces.push(Piece::Block(b));
        }
        if e > cursor {
            let tail = &seg[(cursor - s) as usize..];
            new_bytes += tail.len();
            pieces.push(Piece::Gap(tail));
        }
        self.blocks.insert(merged_start, join(pieces));
        self.held += new_bytes;
        new_bytes
    }

    /// Hands `sink` every held byte that is now contiguous with `rcv_nxt`.
    ///
    /// Blocks that end at or before `rcv_nxt` are discarded (already
    /// delivered). If a block starts at or before `rcv_nxt`, its bytes from
    /// `rcv_nxt` onwards are passed to `sink` and removed. Returns the number
    /// of bytes handed over; the caller advances `RCV.NXT` by that amount
    /// (RFC 9293 section 3.10.7.4).
    pub fn drain_ready(&mut self, rcv_nxt: SeqNum, mut sink: impl FnMut(&[u8])) -> usize {
        self.sync(rcv_nxt);
        // Blocks never touch, so at most the first one is ready.
        let Some(e) = self.blocks.first_entry() else {
            return 0;
        };
        if *e.key() != self.nxt_ext {
            return 0;
        }
        let ready = e.remove();
        self.held -= ready.len();
        let (a, b) = ready.as_slices();
        sink(a);
        if !b.is_empty() {
            sink(b);
        }
        ready.len()
    }

    /// Bytes currently held.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Forgets everything held.
    pub fn clear(&mut self) {
        self.blocks.clear();
        self.held = 0;
    }

    /// The held ranges `[start, end)` in sequence order, disjoint and
    /// non-adjacent — the shape of SACK blocks (RFC 2018 section 3).
    pub fn blocks(&self) -> impl Iterator<Item = (SeqNum, SeqNum)> + '_ {
        self.blocks.iter().map(|(&k, d)| {
            // Blocks start at or after the last `nxt` (see `sync`).
            let start = self.nxt + (k.wrapping_sub(self.nxt_ext) as u32 as usize);
            (start, start + d.len())
        })
    }
}

/// Part of a merge, in sequence order: new bytes of the segment, or a block
/// already held.
enum Piece<'a> {
    Gap(&'a [u8]),
    Block(VecDeque<u8>),
}

/// Joins the pieces of a merge into one block around the largest block
/// held, so only the smaller pieces are copied: pieces before it are pushed
/// on its front, those after it on its back. A segment that lands just
/// before a large block (segments arriving in reverse order) therefore
/// costs its own length, not the block's; and since a byte is only copied
/// into a block at least as large as its own, each byte is copied
/// O(log n) times in all.
fn join(mut pieces: Vec<Piece<'_>>) -> VecDeque<u8> {
    let largest = pieces
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            Piece::Block(b) => Some((b.len(), i)),
            Piece::Gap(_) => None,
        })
        .max()
        .map_or(0, |(_, i)| i);
    let after = pieces.split_off(largest + 1);
    let mut base = match pieces.pop() {
        Some(Piece::Block(b)) => b,
        Some(Piece::Gap(g)) => VecDeque::from(g.to_vec()),
        None => VecDeque::new(),
    };
    let front: usize = pieces.iter().map(Piece::len).sum();
    let back: usize = after.iter().map(Piece::len).sum();
    base.reserve(front + back);
    for p in pieces.iter().rev() {
        match p {
            Piece::Gap(g) => g.iter().rev().for_each(|&x| base.push_front(x)),
            Piece::Block(b) => b.iter().rev().for_each(|&x| base.push_front(x)),
        }
    }
    for p in after {
        match p {
            Piece::Gap(g) => base.extend(g.iter().copied()),
            Piece::Block(mut b) => base.append(&mut b),
        }
    }
    base
}

impl Piece<'_> {
    fn len(&self) -> usize {
        match self {
            Piece::Gap(g) => g.len(),
            Piece::Block(b) => b.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::random_bytes;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    fn blocks(q: &ReassemblyQueue) -> Vec<(u32, u32)> {
        q.blocks().map(|(s, e)| (s.0, e.0)).collect()
    }

    /// Drains everything ready at `rcv_nxt` into a Vec.
    fn drain(q: &mut ReassemblyQueue, rcv_nxt: SeqNum) -> Vec<u8> {
        let mut out = Vec::new();
        let n = q.drain_ready(rcv_nxt, |b| out.extend_from_slice(b));
        assert_eq!(n, out.len());
        out
    }

    /// Checks the structural invariants: held count, bound, sorted,
    /// disjoint, non-adjacent.
    fn check(q: &ReassemblyQueue, rcv_nxt: SeqNum) {
        let bs: Vec<_> = q.blocks().collect();
        let total: usize = bs.iter().map(|&(s, e)| e - s).sum();
        assert_eq!(total, q.held_bytes());
        assert!(q.held_bytes() <= q.max_bytes());
        assert_eq!(q.is_empty(), bs.is_empty());
        for &(s, e) in &bs {
            assert!(s.lt(e), "empty block");
            assert!(s.ge(rcv_nxt) || e.gt(rcv_nxt));
        }
        for w in bs.windows(2) {
            assert!(w[0].1.lt(w[1].0), "blocks not sorted/merged: {bs:?}");
        }
    }

    /// A receiver as the connection will drive it: in-order data (possibly
    /// starting before RCV.NXT) is delivered directly and then the queue is
    /// drained; anything ahead of RCV.NXT goes into the queue. Chunks that
    /// were dropped (memory bound) are retransmitted in later rounds.
    fn simulate(isn: u32, data: &[u8], chunks: &[(usize, usize)], max: usize) -> Vec<u8> {
        let isn = SeqNum(isn);
        let end = isn + data.len();
        let mut q = ReassemblyQueue::new(max);
        let mut rcv_nxt = isn;
        let mut out = Vec::new();
        for _round in 0..1000 {
            for &(off, len) in chunks {
                let seq = isn + off;
                let seg_end = seq + len;
                let payload = &data[off..off + len];
                if seq.le(rcv_nxt) && seg_end.gt(rcv_nxt) {
                    let skip = rcv_nxt - seq;
                    out.extend_from_slice(&payload[skip..]);
                    rcv_nxt += payload.len() - skip;
                    let ready = drain(&mut q, rcv_nxt);
                    rcv_nxt += ready.len();
                    out.extend_from_slice(&ready);
                } else {
                    let n = q.insert(rcv_nxt, seq, payload);
                    assert!(n <= len);
                }
                check(&q, rcv_nxt);
            }
            if rcv_nxt == end {
                break;
            }
        }
        assert_eq!(rcv_nxt, end);
        assert!(q.is_empty());
        out
    }

    /// Splits `0..n` into consecutive chunks of random size in `1..=max_len`.
    fn partition(rng: &mut impl Rng, n: usize, max_len: usize) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        let mut off = 0;
        while off < n {
            let len = rng.random_range(1..=max_len).min(n - off);
            v.push((off, len));
            off += len;
        }
        v
    }

    const ISNS: [u32; 4] = [0, 1000, u32::MAX - 100, u32::MAX];

    // RFC 9293 section 3.10.7.4: a segment ahead of RCV.NXT is held and
    // delivered once RCV.NXT reaches it.
    #[test]
    fn single_block_then_delivered() {
        for isn in ISNS {
            let r = SeqNum(isn);
            let mut q = ReassemblyQueue::new(1000);
            assert!(q.is_empty());
            assert_eq!(q.insert(r, r + 10u32, b"hello"), 5);
            assert_eq!(q.held_bytes(), 5);
            assert_eq!(blocks(&q), vec![((r + 10u32).0, (r + 15u32).0)]);
            // Nothing is ready while the gap is open.
            assert!(drain(&mut q, r).is_empty());
            assert_eq!(q.held_bytes(), 5);
            // Data exactly at RCV.NXT is also accepted and drained.
            let mut q2 = ReassemblyQueue::new(1000);
            assert_eq!(q2.insert(r, r, b"abc"), 3);
            assert_eq!(drain(&mut q2, r), b"abc");
            assert!(q2.is_empty());
            // Once RCV.NXT reaches the block it is handed over.
            assert_eq!(drain(&mut q, r + 10u32), b"hello");
            assert!(q.is_empty());
            assert_eq!(q.held_bytes(), 0);
        }
    }

    // RFC 9293 section 3.10.7.4: filling the gap makes the held data
    // contiguous; adjacent blocks are merged.
    #[test]
    fn gap_filled_later() {
        for isn in ISNS {
            let r = SeqNum(isn);
            let mut q = ReassemblyQueue::new(1000);
            assert_eq!(q.insert(r, r + 10u32, b"KLMNO"), 5);
            assert_eq!(q.insert(r, r + 20u32, b"UVW"), 3);
            assert_eq!(blocks(&q).len(), 2);
            // Fill 15..20: merges both blocks into one.
            assert_eq!(q.insert(r, r + 15u32, b"PQRST"), 5);
            assert_eq!(blocks(&q), vec![((r + 10u32).0, (r + 23u32).0)]);
            // Fill 0..10 (caller would deliver it directly; here via queue).
            assert_eq!(q.insert(r, r, b"ABCDEFGHIJ"), 10);
            assert_eq!(blocks(&q).len(), 1);
            assert_eq!(drain(&mut q, r), b"ABCDEFGHIJKLMNOPQRSTUVW");
            assert!(q.is_empty());
        }
    }

    // RFC 9293 section 3.10.7.4: drain_ready skips bytes before RCV.NXT and
    // discards blocks that end at or before it.
    #[test]
    fn drain_skips_already_delivered() {
        for isn in ISNS {
            let r = SeqNum(isn);
            let mut q = ReassemblyQueue::new(1000);
            q.insert(r, r + 5u32, b"56789");
            q.insert(r, r + 20u32, b"klmno");
            q.insert(r, r + 30u32, b"uvw");
            // The caller got 0..8 by other means: 8..10 are ready.
            assert_eq!(drain(&mut q, r + 8u32), b"89");
            assert_eq!(q.held_bytes(), 8);
            // The caller got up to 25: the block ending at 25 is discarded,
            // nothing delivered because 25..30 is missing.
            assert!(drain(&mut q, r + 25u32).is_empty());
            assert_eq!(blocks(&q), vec![((r + 30u32).0, (r + 33u32).0)]);
            assert_eq!(q.held_bytes(), 3);
            // Block ending exactly at RCV.NXT is discarded as well.
            assert!(drain(&mut q, r + 33u32).is_empty());
            assert!(q.is_empty());
        }
    }

    // RFC 9293 section 3.10.7.4 (trim to the left window edge): data before
    // RCV.NXT is not stored; a straddling segment keeps only its new part.
    #[test]
    fn data_before_rcv_nxt() {
        for isn in ISNS {
            let r = SeqNum(isn);
            let mut q = ReassemblyQueue::new(100);
            let behind = SeqNum(isn.wrapping_sub(10));
            assert_eq!(q.insert(r, behind, b"0123456789"), 0);
            assert_eq!(q.insert(r, behind, b""), 0);
            assert_eq!(q.insert(r, r + 5u32, b""), 0);
            assert!(q.is_empty());
            // Straddles RCV.NXT: only the 4 bytes from RCV.NXT on are kept.
            assert_eq!(q.insert(r, behind, b"0123456789abcd"), 4);
            assert_eq!(blocks(&q), vec![(r.0, (r + 4u32).0)]);
            assert_eq!(drain(&mut q, r), b"abcd");
            // Far behind (half the sequence space away) is ignored too.
            assert_eq!(q.insert(r, SeqNum(isn.wrapping_sub(1 << 31)), b"xyz"), 0);
            assert!(q.is_empty());
        }
    }

    // RFC 9293 section 3.10.7.4 (held bytes already delivered): if the
    // caller advanced RCV.NXT past held data, a later insert drops it.
    #[test]
    fn insert_prunes_delivered_blocks() {
        let r = SeqNum(u32::MAX - 3);
        let mut q = ReassemblyQueue::new(100);
        q.insert(r, r + 2u32, b"abcdef"); // 2..8
        let r2 = r + 5u32;
        assert_eq!(q.insert(r2, r2 + 10u32, b"zz"), 2);
        assert_eq!(
            blocks(&q),
            vec![(r2.0, (r2 + 3u32).0), ((r2 + 10u32).0, (r2 + 12u32).0)]
        );
        assert_eq!(q.held_bytes(), 5);
        assert_eq!(drain(&mut q, r2), b"def");
    }

    // RFC 9293 section 3.10.7.4 / RFC 793 section 3.9: retransmitted
    // (duplicate) data is not stored twice, and the first copy is kept.
    #[test]
    fn duplicates_and_overlaps() {
        for isn in ISNS {
            let r = SeqNum(isn);
            let mut q = ReassemblyQueue::new(1000);
            assert_eq!(q.insert(r, r + 10u32, b"klmno"), 5); // 10..15
            assert_eq!(q.insert(r, r + 10u32, b"XXXXX"), 0); // exact dup
            assert_eq!(q.insert(r, r + 11u32, b"XX"), 0); // inside
                                                          // Partial overlap on the left: only 8..10 is new.
            assert_eq!(q.insert(r, r + 8u32, b"ijXXX"), 2);
            // Partial overlap on the right: only 15..17 is new.
            assert_eq!(q.insert(r, r + 13u32, b"XXpq"), 2);
            assert_eq!(blocks(&q), vec![((r + 8u32).0, (r + 17u32).0)]);
            // Two more blocks: 20..22 and 25..27.
            assert_eq!(q.insert(r, r + 20u32, b"uv"), 2);
            assert_eq!(q.insert(r, r + 25u32, b"z{"), 2);
            assert_eq!(blocks(&q).len(), 3);
            // One segment covering all three blocks and the gaps between
            // them, extending on both sides: 5..30.
            let cover: Vec<u8> = (5u8..30).map(|i| b'a' + i).collect();
            let mut wrong = cover.clone();
            for (k, b) in wrong.iter_mut().enumerate() {
                let off = k + 5;
                if (8..17).contains(&off) || (20..22).contains(&off) || (25..27).contains(&off) {
                    *b = b'X'; // must be ignored: the held copy wins
                }
            }
            let new = 25 - 9 - 2 - 2;
            assert_eq!(q.insert(r, r + 5u32, &wrong), new);
            assert_eq!(blocks(&q), vec![((r + 5u32).0, (r + 30u32).0)]);
            assert_eq!(q.held_bytes(), 25);
            assert_eq!(drain(&mut q, r + 5u32), cover);
        }
    }

    // RFC 9293 section 3.10.7.4 (trim to the right window edge) and the
    // memory bound: never more than max_bytes held; excess is dropped.
    #[test]
    fn memory_bound() {
        for isn in ISNS {
            let r = SeqNum(isn);
            let mut q = ReassemblyQueue::new(100);
            // Beyond the window entirely.
            assert_eq!(q.insert(r, r + 100u32, b"x"), 0);
            assert_eq!(q.insert(r, r + 5000u32, &[1; 50]), 0);
            // Straddles the right edge: only 90..100 kept.
            assert_eq!(q.insert(r, r + 90u32, &[2; 30]), 10);
            assert_eq!(blocks(&q), vec![((r + 90u32).0, (r + 100u32).0)]);
            // A huge segment fills the rest, but no more than max_bytes.
            assert_eq!(q.insert(r, r + 1u32, &[3; 500]), 89);
            assert_eq!(q.held_bytes(), 99);
            assert_eq!(q.insert(r, r, &[4; 1000]), 1);
            assert_eq!(q.held_bytes(), 100);
            check(&q, r);
            // Full: nothing more fits.
            assert_eq!(q.insert(r, r + 50u32, &[5; 10]), 0);
            let out = drain(&mut q, r);
            assert_eq!(out.len(), 100);
            assert_eq!(out[0], 4);
            assert!(out[1..90].iter().all(|&b| b == 3));
            assert!(out[90..].iter().all(|&b| b == 2));
            // After delivery the window has moved on.
            let r2 = r + 100u32;
            assert_eq!(q.insert(r2, r2 + 99u32, b"ab"), 1);
            assert_eq!(q.held_bytes(), 1);
        }
        // A zero bound holds nothing.
        let mut q = ReassemblyQueue::new(0);
        assert_eq!(q.insert(SeqNum(0), SeqNum(0), b"abc"), 0);
        assert_eq!(q.insert(SeqNum(0), SeqNum(1), b"abc"), 0);
        assert!(q.is_empty());
    }

    // RFC 9293 section 3.4: the bound also holds if the caller (wrongly)
    // moves RCV.NXT backwards; the highest sequence numbers are dropped.
    #[test]
    fn memory_bound_with_backwards_rcv_nxt() {
        let r = SeqNum(u32::MAX - 20);
        let mut q = ReassemblyQueue::new(50);
        assert_eq!(q.insert(r, r + 30u32, &[1; 20]), 20); // 30..50
        let back = SeqNum(r.0.wrapping_sub(10));
        // Window is now [r-10, r+40): bytes 40..50 are out and dropped.
        assert_eq!(q.insert(back, back, &[2; 100]), 40);
        check(&q, back);
        assert_eq!(q.held_bytes(), 50);
        assert_eq!(drain(&mut q, back).len(), 50);
        assert!(q.is_empty());
        // Way off (rcv_nxt moved by ~2^31): nothing panics, bound holds.
        let mut q = ReassemblyQueue::new(usize::MAX);
        assert_eq!(q.insert(SeqNum(0), SeqNum(10), &[7; 64]), 64);
        let far = SeqNum(1u32 << 31);
        assert_eq!(q.insert(far, far + 5u32, &[8; 4]), 4);
        check(&q, far);
        let _ = drain(&mut q, SeqNum((1u32 << 31) + 60));
        check(&q, SeqNum((1u32 << 31) + 60));
    }

    // RFC 9293 section 3.10.7.4: clear() forgets everything.
    #[test]
    fn clear_forgets() {
        let r = SeqNum(7);
        let mut q = ReassemblyQueue::new(100);
        q.insert(r, r + 3u32, b"abc");
        q.insert(r, r + 10u32, b"def");
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.held_bytes(), 0);
        assert_eq!(blocks(&q), vec![]);
        assert!(drain(&mut q, r + 3u32).is_empty());
        let d = ReassemblyQueue::default();
        assert!(d.is_empty());
        assert_eq!(d.max_bytes(), 0);
    }

    // RFC 9293 section 3.10.7.4: any arrival order of 1-byte segments
    // reassembles to the original stream, also across the 2^32 wrap.
    #[test]
    fn shuffled_one_byte_segments() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let data = random_bytes(600, 7);
        for isn in ISNS.into_iter().chain([u32::MAX - 300]) {
            for _ in 0..5 {
                let mut chunks: Vec<_> = (0..data.len()).map(|i| (i, 1)).collect();
                chunks.shuffle(&mut rng);
                assert_eq!(simulate(isn, &data, &chunks, data.len()), data);
            }
        }
    }

    // RFC 9293 section 3.10.7.4: variable-size segments in random order,
    // with random duplicates and overlapping retransmissions mixed in.
    #[test]
    fn shuffled_variable_segments_with_overlaps() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let data = random_bytes(5000, 7);
        for isn in ISNS.into_iter().chain([u32::MAX - 2500]) {
            for _ in 0..10 {
                let mut chunks = partition(&mut rng, data.len(), 300);
                // Overlapping extra segments at random places.
                for _ in 0..rng.random_range(0..20) {
                    let off = rng.random_range(0..data.len());
                    let len = rng.random_range(1..=600).min(data.len() - off);
                    chunks.push((off, len));
                }
                // Exact duplicates.
                for _ in 0..rng.random_range(0..5) {
                    let c = chunks[rng.random_range(0..chunks.len())];
                    chunks.push(c);
                }
                chunks.shuffle(&mut rng);
                assert_eq!(simulate(isn, &data, &chunks, data.len()), data);
            }
        }
    }

    // RFC 9293 section 3.10.7.4 with a memory bound smaller than the
    // stream: excess is dropped and must be retransmitted, yet the result
    // is byte-exact and the bound is never exceeded (checked per step).
    #[test]
    fn shuffled_segments_under_memory_pressure() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let data = random_bytes(3000, 7);
        for isn in ISNS.into_iter().chain([u32::MAX - 1500]) {
            for max in [1, 64, 500, 1499] {
                let mut chunks = partition(&mut rng, data.len(), 200);
                chunks.shuffle(&mut rng);
                assert_eq!(simulate(isn, &data, &chunks, max), data);
            }
        }
    }

    // RFC 9293 section 3.4: random inserts and drains, compared against a
    // byte-map model, starting just below 2^32 so the wrap is crossed.
    #[test]
    fn random_against_model() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let data = random_bytes(4000, 7);
        let isn = SeqNum(u32::MAX - 1000);
        let max = 700;
        let mut q = ReassemblyQueue::new(max);
        let mut model: Vec<Option<u8>> = vec![None; data.len()];
        let mut nxt = 0usize; // offset of RCV.NXT in `data`
        for _ in 0..5000 {
            if nxt == data.len() {
                break;
            }
            let off = rng.random_range(nxt.saturating_sub(50)..data.len());
            let len = rng.random_range(0..=150).min(data.len() - off);
            let n = q.insert(isn + nxt, isn + off, &data[off..off + len]);
            let mut expect = 0;
            for k in off.max(nxt)..(off + len).min(nxt + max) {
                if model[k].is_none() {
                    model[k] = Some(data[k]);
                    expect += 1;
                }
            }
            assert_eq!(n, expect);
            check(&q, isn + nxt);
            // Model blocks must match the queue's blocks.
            let mut mb = Vec::new();
            let mut k = nxt;
            while k < data.len() {
                if model[k].is_some() {
                    let s = k;
                    while k < data.len() && model[k].is_some() {
                        k += 1;
                    }
                    mb.push(((isn + s).0, (isn + k).0));
                } else {
                    k += 1;
                }
            }
            assert_eq!(blocks(&q), mb);
            if rng.random_range(0..4) == 0 {
                let out = drain(&mut q, isn + nxt);
                for &b in &out {
                    assert_eq!(Some(b), model[nxt]);
                    nxt += 1;
                }
                assert!(nxt == data.len() || model[nxt].is_none());
            }
        }
    }

    // Crumbs (issue 10): 1-byte segments at every other offset of a 512 KiB
    // window. The queue keeps at most max_blocks of them (the rest are
    // dropped), a real segment bridging them still merges, and what the
    // connection delivers stays byte-exact.
    #[test]
    fn crumbs_are_bounded_by_the_block_limit() {
        let r = SeqNum(u32::MAX - 1000);
        let mut q = ReassemblyQueue::new(512 * 1024);
        let max = q.max_blocks();
        assert_eq!(max, 2048);
        let stored: usize = (0..100_000usize)
            .map(|i| q.insert(r, r + (1 + 2 * i), b"c"))
            .sum();
        assert_eq!(stored, max, "one byte per block, up to the limit");
        assert_eq!(q.blocks().count(), max);
        check(&q, r);
        // A segment over the first 100 crumbs (touching the 101st) merges
        // them into one block; the crumbs' bytes are kept (first copy wins).
        assert_eq!(q.insert(r, r + 1u32, &[9u8; 200]), 100);
        assert_eq!(q.blocks().count(), max - 100);
        assert_eq!(q.insert(r, r, b"a"), 1);
        let out = drain(&mut q, r);
        assert_eq!(out.len(), 202);
        assert_eq!(out[0], b'a');
        let crumb_or_nine = |i: usize| if i % 2 == 0 { b'c' } else { 9 };
        assert!(out[1..]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == crumb_or_nine(i)));
        check(&q, r + 202u32);
    }

    /// A merge is built around its largest block wherever that block is
    /// (first, middle, last, the new segment bridging several blocks), and
    /// the bytes still come out in sequence order; segments in reverse
    /// order prepend to one growing block.
    #[test]
    fn merges_around_the_largest_block_keep_sequence_order() {
        let r = SeqNum(u32::MAX - 5000);
        let data = random_bytes(20_000, 3);
        for big in 0..3 {
            let mut q = ReassemblyQueue::new(1 << 20);
            // Three blocks at 1000, 5000 and 9000, block `big` 3000 long.
            for (i, &at) in [1000usize, 5000, 9000].iter().enumerate() {
                let len = if i == big { 3000 } else { 100 };
                q.insert(r, r + at, &data[at..at + len]);
            }
            // One segment covering [500, 12000) bridges them all.
            q.insert(r, r + 500u32, &data[500..12_000]);
            assert_eq!(q.blocks().count(), 1);
            q.insert(r, r + 1u32, &data[1..500]);
            assert_eq!(drain(&mut q, r + 1u32), &data[1..12_000], "largest {big}");
        }
        let mut q = ReassemblyQueue::new(1 << 20);
        for i in (1..200usize).rev() {
            q.insert(r, r + i * 100, &data[i * 100..i * 100 + 100]);
            assert_eq!(q.blocks().count(), 1);
        }
        assert_eq!(drain(&mut q, r + 100u32), &data[100..20_000]);
    }

    // RFC 2018 section 3: blocks() reports disjoint [start, end) ranges in
    // order, including ranges that wrap through zero.
    #[test]
    fn blocks_across_wrap() {
        let r = SeqNum(u32::MAX - 5);
        let mut q = ReassemblyQueue::new(100);
        q.insert(r, r + 20u32, b"cc"); // wraps: 14..16
        q.insert(r, r + 2u32, b"aaaaaa"); // u32::MAX-3 ..= 2
        q.insert(r, r + 10u32, b"b"); // 4..5
        assert_eq!(blocks(&q), vec![(u32::MAX - 3, 2), (4, 5), (14, 16)]);
        assert_eq!(q.held_bytes(), 9);
        // Bridging 2..4 merges the first two blocks across the wrap; the
        // byte at 1 is already held and the first copy is kept.
        assert_eq!(q.insert(r, SeqNum(1), b"Xbc"), 2);
        assert_eq!(blocks(&q), vec![(u32::MAX - 3, 5), (14, 16)]);
        assert_eq!(q.held_bytes(), 11);
        assert_eq!(drain(&mut q, r + 2u32), b"aaaaaabcb");
        assert_eq!(blocks(&q), vec![(14, 16)]);
    }
}
