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
}
