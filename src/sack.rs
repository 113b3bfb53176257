//! The sender's SACK scoreboard (RFC 2018, RFC 6675).
//!
//! When the peer reports SACK blocks, the sender remembers which ranges
//! above SND.UNA have arrived. Loss recovery then resends only the holes
//! between them, several per round trip, instead of NewReno's one hole per
//! round trip; and a retransmission after a timeout skips what the peer
//! already holds.

use crate::seq::SeqNum;

/// SACKed ranges above SND.UNA, sorted, disjoint and not touching.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scoreboard {
    ranges: Vec<(SeqNum, SeqNum)>,
}

/// At most this many ranges are kept; the peer sends at most 4 blocks per
/// ACK, and holes beyond this many are recovered by the timer.
const MAX_RANGES: usize = 64;

impl Scoreboard {
    /// An empty scoreboard.
    pub fn new() -> Self {
        Scoreboard::default()
    }

    /// Records the peer's SACK blocks. Blocks outside `(snd_una, snd_max]`
    /// are ignored (RFC 2018 section 4 lets a receiver send stale ones; a
    /// D-SACK below SND.UNA carries no new information for us). Returns true
    /// if something new was learned.
    pub fn update(
        &mut self,
        snd_una: SeqNum,
        snd_max: SeqNum,
        blocks: &[(SeqNum, SeqNum)],
    ) -> bool {
        let mut learned = false;
        for &(left, right) in blocks {
            let left = left.max(snd_una);
            let right = right.min(snd_max);
            if !left.lt(right) {
                continue;
            }
            learned |= self.insert(left, right);
        }
        learned
    }

    fn insert(&mut self, mut left: SeqNum, mut right: SeqNum) -> bool {
        let before = self.sacked_bytes();
        // Merge with every range that overlaps or touches [left, right).
        let mut i = 0;
        while i < self.ranges.len() {
            let (l, r) = self.ranges[i];
            if l.le(right) && left.le(r) {
                left = left.min(l);
                right = right.max(r);
                self.ranges.remove(i);
            } else {
                i += 1;
            }
        }
        let at = self
            .ranges
            .iter()
            .position(|&(l, _)| right.lt(l))
            .unwrap_or(self.ranges.len());
        self.ranges.insert(at, (left, right));
        if self.ranges.len() > MAX_RANGES {
            self.ranges.pop();
        }
        self.sacked_bytes() != before
    }

    /// SND.UNA moved: forget everything below it.
    pub fn advance(&mut self, snd_una: SeqNum) {
        self.ranges.retain(|&(_, r)| r.gt(snd_una));
        if let Some(first) = self.ranges.first_mut() {
            first.0 = first.0.max(snd_una);
        }
    }

    /// Forgets everything (the peer may renege, RFC 2018 section 8).
    pub fn clear(&mut self) {
        self.ranges.clear();
    }

    /// True when nothing is SACKed.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Total bytes SACKed.
    pub fn sacked_bytes(&self) -> usize {
        self.ranges.iter().map(|&(l, r)| r - l).sum()
    }

    /// The highest SACKed sequence number (the right edge of the last range).
    pub fn highest(&self) -> Option<SeqNum> {
        self.ranges.last().map(|&(_, r)| r)
    }

    /// If `seq` lies in a SACKed range, that range's right edge.
    pub fn sacked_until(&self, seq: SeqNum) -> Option<SeqNum> {
        self.ranges
            .iter()
            .find(|&&(l, r)| seq.in_range(l, r))
            .map(|&(_, r)| r)
    }

    /// The first SACKed sequence number at or after `seq`, if any.
    pub fn next_sacked(&self, seq: SeqNum) -> Option<SeqNum> {
        self.ranges
            .iter()
            .find(|&&(_, r)| seq.lt(r))
            .map(|&(l, _)| l.max(seq))
    }

    /// Bytes SACKed within `[from, to)`.
    pub fn sacked_between(&self, from: SeqNum, to: SeqNum) -> usize {
        self.ranges
            .iter()
            .map(|&(l, r)| {
                let l = l.max(from);
                let r = r.min(to);
                if l.lt(r) {
                    r - l
                } else {
                    0
                }
            })
            .sum()
    }

    /// The first hole at or after `from` that lies below the highest SACKed
    /// byte (RFC 6675's "lost" candidates): its start and length.
    pub fn next_hole(&self, from: SeqNum) -> Option<(SeqNum, usize)> {
        let mut at = from;
        for &(l, r) in &self.ranges {
            if at.lt(l) {
                return Some((at, l - at));
            }
            at = at.max(r);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> SeqNum {
        SeqNum(n)
    }

    #[test]
    fn merges_and_orders_blocks_rfc2018() {
        let mut sb = Scoreboard::new();
        assert!(sb.update(s(100), s(1000), &[(s(300), s(400))]));
        assert!(sb.update(s(100), s(1000), &[(s(600), s(700)), (s(400), s(500))]));
        assert_eq!(sb.ranges, vec![(s(300), s(500)), (s(600), s(700))]);
        assert_eq!(sb.sacked_bytes(), 300);
        // Old news teaches nothing.
        assert!(!sb.update(s(100), s(1000), &[(s(300), s(500))]));
        // Blocks below SND.UNA or beyond SND.MAX are clipped.
        assert!(!sb.update(s(100), s(1000), &[(s(0), s(100))]));
        sb.update(s(100), s(1000), &[(s(900), s(2000))]);
        assert_eq!(sb.highest(), Some(s(1000)));
    }

    #[test]
    fn holes_are_found_below_the_highest_sack_rfc6675() {
        let mut sb = Scoreboard::new();
        sb.update(s(100), s(1000), &[(s(300), s(400)), (s(600), s(700))]);
        assert_eq!(sb.next_hole(s(100)), Some((s(100), 200)));
        assert_eq!(sb.next_hole(s(300)), Some((s(400), 200)));
        assert_eq!(sb.next_hole(s(650)), None);
        assert_eq!(sb.sacked_until(s(350)), Some(s(400)));
        assert_eq!(sb.sacked_until(s(450)), None);
        assert_eq!(sb.next_sacked(s(450)), Some(s(600)));
        assert_eq!(sb.sacked_between(s(350), s(650)), 100);
        sb.advance(s(350));
        assert_eq!(sb.ranges, vec![(s(350), s(400)), (s(600), s(700))]);
        sb.advance(s(700));
        assert!(sb.is_empty());
    }

    #[test]
    fn works_across_the_wrap() {
        let una = SeqNum(u32::MAX - 1000);
        let max = una + 5000u32;
        let mut sb = Scoreboard::new();
        sb.update(una, max, &[(una + 1500u32, una + 2500u32)]);
        assert_eq!(sb.next_hole(una), Some((una, 1500)));
        assert_eq!(sb.sacked_bytes(), 1000);
        sb.advance(una + 2000u32);
        assert_eq!(sb.sacked_bytes(), 500);
    }

    /// RFC 2018 section 3 (blocks are contiguous, isolated ranges): ranges
    /// that touch merge, and one block bridging several swallows them all.
    #[test]
    fn touching_and_bridging_blocks_merge_rfc2018_3() {
        let mut sb = Scoreboard::new();
        sb.update(s(0), s(1000), &[(s(300), s(400))]);
        assert!(sb.update(s(0), s(1000), &[(s(400), s(500))]));
        assert_eq!(sb.ranges, vec![(s(300), s(500))]);
        assert!(sb.update(s(0), s(1000), &[(s(200), s(300))]));
        assert_eq!(sb.ranges, vec![(s(200), s(500))]);
        sb.update(
            s(0),
            s(1000),
            &[(s(600), s(650)), (s(700), s(750)), (s(50), s(100))],
        );
        assert_eq!(sb.ranges.len(), 4);
        assert!(sb.update(s(0), s(1000), &[(s(90), s(720))]));
        assert_eq!(sb.ranges, vec![(s(50), s(750))]);
        assert_eq!(sb.sacked_bytes(), 700);
        // A block inside a known range teaches nothing.
        assert!(!sb.update(s(0), s(1000), &[(s(100), s(200))]));
    }

    /// RFC 2018 section 4 / RFC 6675 section 5: only `(SND.UNA, SND.MAX]`
    /// counts: blocks are clipped to it, and empty or inverted ones dropped.
    #[test]
    fn blocks_clipped_to_the_send_window_rfc6675_5() {
        let mut sb = Scoreboard::new();
        assert!(sb.update(s(100), s(1000), &[(s(50), s(150))]));
        assert!(sb.update(s(100), s(1000), &[(s(900), s(1100))]));
        assert_eq!(sb.ranges, vec![(s(100), s(150)), (s(900), s(1000))]);
        assert!(!sb.update(
            s(100),
            s(1000),
            &[
                (s(1000), s(1200)),
                (s(10), s(100)),
                (s(600), s(500)),
                (s(700), s(700))
            ]
        ));
        assert_eq!(sb.sacked_bytes(), 150);
        sb.clear();
        assert!(sb.is_empty());
        assert_eq!(sb.highest(), None);
        assert_eq!(sb.next_hole(s(100)), None);
    }

    /// RFC 6675 section 4 (NextSeg) edge cases: a hole search starting inside
    /// a SACKed range, or at its right edge, or above everything.
    #[test]
    fn lookups_at_range_edges_rfc6675_4() {
        let mut sb = Scoreboard::new();
        sb.update(s(0), s(1000), &[(s(200), s(300)), (s(500), s(600))]);
        assert_eq!(sb.next_hole(s(250)), Some((s(300), 200)));
        assert_eq!(sb.next_hole(s(300)), Some((s(300), 200)));
        assert_eq!(sb.next_hole(s(450)), Some((s(450), 50)));
        assert_eq!(sb.next_hole(s(600)), None);
        assert_eq!(sb.next_hole(s(900)), None);
        assert_eq!(sb.sacked_until(s(200)), Some(s(300)));
        assert_eq!(sb.sacked_until(s(299)), Some(s(300)));
        assert_eq!(sb.sacked_until(s(300)), None);
        assert_eq!(sb.next_sacked(s(250)), Some(s(250)));
        assert_eq!(sb.next_sacked(s(300)), Some(s(500)));
        assert_eq!(sb.next_sacked(s(600)), None);
        assert_eq!(sb.sacked_between(s(0), s(1000)), 200);
        assert_eq!(sb.sacked_between(s(300), s(500)), 0);
        assert_eq!(sb.sacked_between(s(250), s(550)), 100);
        assert_eq!(sb.sacked_between(s(550), s(250)), 0);
        sb.advance(s(250));
        assert_eq!(sb.ranges, vec![(s(250), s(300)), (s(500), s(600))]);
        sb.advance(s(300));
        assert_eq!(sb.ranges, vec![(s(500), s(600))]);
    }

    /// RFC 9293 section 3.4 (sequence numbers compare modulo 2^32): ranges
    /// that straddle zero merge, order and answer lookups correctly.
    #[test]
    fn ranges_straddling_zero() {
        let una = SeqNum(u32::MAX - 999);
        let max = una + 10_000u32;
        let mut sb = Scoreboard::new();
        // [una+500, una+1500) crosses zero; [una+3000, una+3500) is above it.
        sb.update(
            una,
            max,
            &[
                (una + 3000u32, una + 3500u32),
                (una + 500u32, una + 1500u32),
            ],
        );
        assert_eq!(
            sb.ranges,
            vec![
                (una + 500u32, una + 1500u32),
                (una + 3000u32, una + 3500u32)
            ]
        );
        assert_eq!(sb.highest(), Some(una + 3500u32));
        assert_eq!(sb.next_hole(una), Some((una, 500)));
        assert_eq!(sb.next_hole(SeqNum(0)), Some((una + 1500u32, 1500)));
        assert_eq!(sb.sacked_until(SeqNum(5)), Some(una + 1500u32));
        assert_eq!(sb.next_sacked(una), Some(una + 500u32));
        assert_eq!(sb.next_sacked(SeqNum(600)), Some(una + 3000u32));
        assert_eq!(sb.sacked_between(una, SeqNum(0)), 500);
        assert_eq!(sb.sacked_between(SeqNum(0), max), 1000);
        // A block bridging across zero merges both.
        assert!(sb.update(una, max, &[(SeqNum(100), una + 3100u32)]));
        assert_eq!(sb.ranges, vec![(una + 500u32, una + 3500u32)]);
        sb.advance(SeqNum(1000));
        assert_eq!(sb.ranges, vec![(SeqNum(1000), una + 3500u32)]);
        assert_eq!(sb.sacked_bytes(), 1500);
        // The wrapped clip: a block from below SND.UNA is cut at it.
        let mut sb = Scoreboard::new();
        sb.update(una, max, &[(una + (u32::MAX - 99), una + 100u32)]);
        assert_eq!(sb.ranges, vec![(una, una + 100u32)]);
    }

    /// The bound on kept ranges: at most MAX_RANGES, the highest dropped
    /// first (those holes are left to the retransmission timer).
    #[test]
    fn at_most_max_ranges_are_kept() {
        let mut sb = Scoreboard::new();
        let una = s(0);
        let max = s(1_000_000);
        for i in 0..(MAX_RANGES as u32 + 6) {
            sb.update(una, max, &[(s(100 * i + 50), s(100 * i + 60))]);
            assert!(sb.ranges.len() <= MAX_RANGES);
        }
        assert_eq!(sb.ranges.len(), MAX_RANGES);
        let top = 100 * (MAX_RANGES as u32 - 1) + 60;
        assert_eq!(sb.highest(), Some(s(top)));
        // A new range below the others is kept; the highest goes.
        sb.update(una, max, &[(s(10), s(20))]);
        assert_eq!(sb.ranges.len(), MAX_RANGES);
        assert_eq!(sb.ranges[0], (s(10), s(20)));
        assert_eq!(sb.highest(), Some(s(top - 100)));
        // Ranges stay sorted and disjoint.
        for w in sb.ranges.windows(2) {
            assert!(w[0].1.lt(w[1].0));
        }
    }
}
