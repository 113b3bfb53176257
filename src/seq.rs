//! Sequence numbers: 32-bit counters compared modulo 2^32 (RFC 9293 section 3.4).
//!
//! TCP sequence space wraps around, so `a < b` means "b is less than 2^31
//! bytes ahead of a", not the integer comparison. [`SeqNum`] implements that
//! comparison; it deliberately does *not* implement `Ord`, because the
//! relation is not transitive over the whole space.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

/// A TCP sequence number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// The signed distance from `other` to `self` (positive when `self` is ahead).
    pub fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// `self < other` in sequence space.
    pub fn lt(self, other: SeqNum) -> bool {
        self.diff(other) < 0
    }

    /// `self <= other` in sequence space.
    pub fn le(self, other: SeqNum) -> bool {
        self.diff(other) <= 0
    }

    /// `self > other` in sequence space.
    pub fn gt(self, other: SeqNum) -> bool {
        self.diff(other) > 0
    }

    /// `self >= other` in sequence space.
    pub fn ge(self, other: SeqNum) -> bool {
        self.diff(other) >= 0
    }

    /// `lo <= self < hi` in sequence space.
    pub fn in_range(self, lo: SeqNum, hi: SeqNum) -> bool {
        lo.le(self) && self.lt(hi)
    }

    /// The later of two sequence numbers.
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self.ge(other) {
            self
        } else {
            other
        }
    }

    /// The earlier of two sequence numbers.
    pub fn min(self, other: SeqNum) -> SeqNum {
        if self.le(other) {
            self
        } else {
            other
        }
    }
}

impl Add<u32> for SeqNum {
    type Output = SeqNum;
    fn add(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }
}

impl Add<usize> for SeqNum {
    type Output = SeqNum;
    fn add(self, n: usize) -> SeqNum {
        // Only the low 32 bits matter in sequence space.
        SeqNum(self.0.wrapping_add(n as u32))
    }
}

impl AddAssign<u32> for SeqNum {
    fn add_assign(&mut self, n: u32) {
        self.0 = self.0.wrapping_add(n);
    }
}

impl AddAssign<usize> for SeqNum {
    fn add_assign(&mut self, n: usize) {
        self.0 = self.0.wrapping_add(n as u32);
    }
}

/// `seq - n` is the sequence number `n` octets before `seq`, wrapping
/// modulo 2^32 (RFC 9293 section 3.4), so `snd_una - 1` is SND.UNA-1.
impl Sub<u32> for SeqNum {
    type Output = SeqNum;
    fn sub(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(n))
    }
}

/// `seq -= n` moves `seq` back `n` octets, wrapping modulo 2^32.
impl SubAssign<u32> for SeqNum {
    fn sub_assign(&mut self, n: u32) {
        self.0 = self.0.wrapping_sub(n);
    }
}

/// `a - b` is the number of bytes from `b` forward to `a`; callers must know
/// that `a >= b` in sequence space (a negative distance is clamped to zero).
impl Sub<SeqNum> for SeqNum {
    type Output = usize;
    fn sub(self, rhs: SeqNum) -> usize {
        let d = self.diff(rhs);
        if d < 0 {
            0
        } else {
            d as usize
        }
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_across_the_wrap() {
        let a = SeqNum(u32::MAX - 10);
        let b = a + 20u32; // wrapped to 9
        assert_eq!(b.0, 9);
        assert!(a.lt(b));
        assert!(b.gt(a));
        assert!(!b.lt(a));
        assert_eq!(b - a, 20);
        assert_eq!(b.diff(a), 20);
        assert_eq!(a.diff(b), -20);
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
    }

    #[test]
    fn in_range_is_half_open_and_wraps() {
        let lo = SeqNum(u32::MAX - 1);
        let hi = lo + 4u32;
        assert!(lo.in_range(lo, hi));
        assert!(SeqNum(0).in_range(lo, hi));
        assert!(SeqNum(1).in_range(lo, hi));
        assert!(!hi.in_range(lo, hi));
        assert!(!SeqNum(u32::MAX - 2).in_range(lo, hi));
        // An empty range contains nothing.
        assert!(!lo.in_range(lo, lo));
    }

    #[test]
    fn subtracting_octets_wraps_at_zero() {
        assert_eq!(SeqNum(10) - 1u32, SeqNum(9));
        assert_eq!(SeqNum(0) - 1, SeqNum(u32::MAX));
        assert_eq!(SeqNum(5) - 10, SeqNum(u32::MAX - 4));
        assert_eq!(SeqNum(7) - 0, SeqNum(7));
        assert_eq!(SeqNum(0) - u32::MAX, SeqNum(1));
        // Subtracting undoes adding, across the wrap.
        let s = SeqNum(u32::MAX - 2);
        assert_eq!((s + 100u32) - 100, s);
        assert!((SeqNum(0) - 1).lt(SeqNum(0)));
        // A keep-alive probe's SND.NXT-1 (RFC 9293 section 3.8.4).
        let snd_nxt = SeqNum(0);
        assert_eq!(snd_nxt - 1, SeqNum(0xffff_ffff));
        // The SeqNum - SeqNum distance is still there.
        assert_eq!(SeqNum(3) - SeqNum(0), 3usize);

        let mut x = SeqNum(2);
        x -= 3;
        assert_eq!(x, SeqNum(u32::MAX));
        x -= u32::MAX;
        assert_eq!(x, SeqNum(0));
        x += 1u32;
        x -= 1;
        assert_eq!(x, SeqNum(0));
    }

    #[test]
    fn negative_distance_clamps_to_zero() {
        assert_eq!(SeqNum(5) - SeqNum(10), 0);
        assert!(SeqNum(5).le(SeqNum(5)) && SeqNum(5).ge(SeqNum(5)));
    }
}
