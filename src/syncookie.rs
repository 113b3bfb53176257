//! SYN cookies (RFC 4987 section 3.6): a listener whose SYN queue is full
//! answers a SYN without keeping any state, with a SYN-ACK whose sequence
//! number encodes what it must remember; the peer's ACK hands it back.
//!
//! The encoding is the one Linux uses (`net/ipv4/syncookies.c`):
//!
//! ```text
//! ISN = H1(4-tuple) + peer ISN + (count << 24)
//!     + ((H2(4-tuple, count) + mss_index) mod 2^24)
//! ```
//!
//! where `count` is a clock ticking once a minute, H1 and H2 are SipHash-2-4
//! keyed with two secrets of the stack, and `mss_index` picks the peer's MSS
//! from a table of four ([`MSS_TABLE`]). On the returning ACK (`ack - 1` is
//! the cookie, `seq - 1` the peer's ISN) subtracting H1 and the peer's ISN
//! leaves the count in the top 8 bits: a cookie older than [`MAX_AGE`]
//! minutes is refused, and the low 24 bits less H2 must give an index below
//! 4, which a blind guess hits with probability 2^-22 per packet.
//!
//! The sequence number has no room for the other SYN options. When the peer
//! sent timestamps, its window scale and SACK-permitted go into the low 6
//! bits of our TSval, which the peer echoes ([`CookieOptions`]); without
//! timestamps the connection goes without window scaling and SACK, as on
//! Linux.

use std::net::SocketAddrV4;

use siphasher::sip::SipHasher24;

use crate::seq::SeqNum;
use crate::time::Instant;

/// The MSS values a cookie can carry (Linux's `msstab` for IPv4): the
/// largest one not above the peer's MSS is used (536 for smaller ones, the
/// size every host must accept, RFC 9293 section 3.7.1).
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

/// A cookie is accepted for this many minutes after the minute it was made
/// in (Linux's `MAX_SYNCOOKIE_AGE`).
pub const MAX_AGE: u32 = 2;

/// The cookie clock ticks once a minute.
const TICK_MS: u64 = 60_000;

/// Low bits of TSval that carry [`CookieOptions`] (Linux's `TSBITS`).
const TS_BITS: u32 = 6;
const TS_MASK: u32 = (1 << TS_BITS) - 1;
/// The window-scale field; all ones means "no window scaling".
const TS_WSCALE_MASK: u32 = 0xf;
const TS_SACK: u32 = 1 << 4;

/// Makes and checks SYN cookies with the stack's two secret keys.
#[derive(Clone)]
pub struct SynCookies {
    h1: SipHasher24,
    h2: SipHasher24,
}

/// The SYN options that travel in the timestamp of a cookie SYN-ACK.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CookieOptions {
    /// The peer's window scale shift (0-14), if both sides scale.
    pub wscale: Option<u8>,
    /// Both sides sent SACK-permitted.
    pub sack: bool,
}

impl SynCookies {
    /// Cookies keyed with `secret` (draw it from a good random source).
    pub fn new(secret: [u8; 32]) -> Self {
        let mut k1 = [0u8; 16];
        let mut k2 = [0u8; 16];
        k1.copy_from_slice(&secret[..16]);
        k2.copy_from_slice(&secret[16..]);
        SynCookies {
            h1: SipHasher24::new_with_key(&k1),
            h2: SipHasher24::new_with_key(&k2),
        }
    }

    /// The index in [`MSS_TABLE`] for a peer that announced `mss`.
    pub fn mss_index(mss: u16) -> u32 {
        MSS_TABLE.iter().rposition(|&m| m <= mss).unwrap_or(0) as u32
    }

    /// The cookie: our ISN for a SYN from `remote` (its ISN `peer_isn`) to
    /// `local`, carrying `mss_index`.
    pub fn make(
        &self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_isn: SeqNum,
        mss_index: u32,
    ) -> SeqNum {
        let t = tuple(local, remote);
        let count = counter(now);
        let low = self.hash2(&t, count).wrapping_add(mss_index) & 0xff_ffff;
        SeqNum(
            self.hash1(&t)
                .wrapping_add(peer_isn.0)
                .wrapping_add(count << 24)
                .wrapping_add(low),
        )
    }

    /// The MSS a returning cookie carries, or `None` if it is not one of
    /// ours or too old. `peer_isn` is the ACK's sequence number less one,
    /// `cookie` its acknowledgment number less one.
    pub fn check(
        &self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        peer_isn: SeqNum,
        cookie: SeqNum,
    ) -> Option<u16> {
        let t = tuple(local, remote);
        let count = counter(now);
        let rest = cookie
            .0
            .wrapping_sub(self.hash1(&t))
            .wrapping_sub(peer_isn.0);
        let age = count.wrapping_sub(rest >> 24) & 0xff;
        if age > MAX_AGE {
            return None;
        }
        let made = count.wrapping_sub(age);
        let index = rest.wrapping_sub(self.hash2(&t, made)) & 0xff_ffff;
        MSS_TABLE.get(index as usize).copied()
    }

    fn hash1(&self, t: &[u8; 12]) -> u32 {
        self.h1.hash(t) as u32
    }

    fn hash2(&self, t: &[u8; 12], count: u32) -> u32 {
        let mut m = [0u8; 16];
        m[..12].copy_from_slice(t);
        m[12..].copy_from_slice(&count.to_be_bytes());
        self.h2.hash(&m) as u32
    }
}

/// Shows no key material.
impl std::fmt::Debug for SynCookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SynCookies").finish_non_exhaustive()
    }
}

impl CookieOptions {
    /// The TSval of a cookie SYN-ACK: `tsval` with its low 6 bits replaced
    /// by these options, stepped back one tick of 64 if that would move it
    /// forward, so our timestamps never go backwards afterwards.
    pub fn encode(self, tsval: u32) -> u32 {
        let bits = self.wscale.map_or(TS_WSCALE_MASK, |w| u32::from(w.min(14)))
            | if self.sack { TS_SACK } else { 0 };
        let ts = (tsval & !TS_MASK) | bits;
        if ts.wrapping_sub(tsval) as i32 > 0 {
            ts.wrapping_sub(1 << TS_BITS)
        } else {
            ts
        }
    }

    /// The options in a TSecr that echoes a cookie SYN-ACK's TSval.
    pub fn decode(tsecr: u32) -> Self {
        let w = tsecr & TS_WSCALE_MASK;
        CookieOptions {
            wscale: (w != TS_WSCALE_MASK).then(|| (w as u8).min(14)),
            sack: tsecr & TS_SACK != 0,
        }
    }
}

/// The minute counter.
fn counter(now: Instant) -> u32 {
    (now.total_millis() / TICK_MS) as u32
}

/// The 4-tuple in network byte order.
fn tuple(local: SocketAddrV4, remote: SocketAddrV4) -> [u8; 12] {
    let mut t = [0u8; 12];
    t[0..4].copy_from_slice(&local.ip().octets());
    t[4..6].copy_from_slice(&local.port().to_be_bytes());
    t[6..10].copy_from_slice(&remote.ip().octets());
    t[10..12].copy_from_slice(&remote.port().to_be_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    const L: &str = "10.0.0.2:80";
    const R: &str = "10.0.0.1:40000";

    fn at_min(m: u64) -> Instant {
        Instant::from_millis(m * TICK_MS + 1234)
    }

    #[test]
    fn every_mss_index_survives_the_round_trip_rfc4987_3_6() {
        let c = SynCookies::new([3; 32]);
        for (i, &mss) in MSS_TABLE.iter().enumerate() {
            let isn = SeqNum(0xffff_fff0u32.wrapping_add(i as u32 * 977));
            let cookie = c.make(at_min(5), a(L), a(R), isn, i as u32);
            assert_eq!(c.check(at_min(5), a(L), a(R), isn, cookie), Some(mss));
            assert_eq!(c.check(at_min(7), a(L), a(R), isn, cookie), Some(mss));
        }
    }

    #[test]
    fn a_cookie_is_bound_to_its_tuple_its_peer_isn_its_key_and_its_age() {
        let c = SynCookies::new([3; 32]);
        let isn = SeqNum(1000);
        let cookie = c.make(at_min(5), a(L), a(R), isn, 3);
        assert_eq!(
            c.check(at_min(5), a(L), a("10.0.0.1:40001"), isn, cookie),
            None
        );
        assert_eq!(
            c.check(at_min(5), a("10.0.0.2:81"), a(R), isn, cookie),
            None
        );
        // The peer's ISN and the cookie enter by addition, so an offset of
        // up to 3 only moves the MSS index (the peer saw the cookie anyway);
        // anything else fails.
        assert_eq!(c.check(at_min(5), a(L), a(R), SeqNum(1100), cookie), None);
        assert_eq!(c.check(at_min(5), a(L), a(R), isn, cookie + 1u32), None);
        assert_eq!(
            c.check(at_min(5), a(L), a(R), isn, cookie + 0x100_0000u32),
            None
        );
        let other = SynCookies::new([4; 32]);
        assert_eq!(other.check(at_min(5), a(L), a(R), isn, cookie), None);
        assert_eq!(c.check(at_min(8), a(L), a(R), isn, cookie), None, "too old");
        assert_eq!(
            c.check(at_min(4), a(L), a(R), isn, cookie),
            None,
            "from the future"
        );
    }

    #[test]
    fn random_guesses_almost_never_pass() {
        let c = SynCookies::new([9; 32]);
        let mut hits = 0;
        for i in 0..200_000u32 {
            let guess = SeqNum(i.wrapping_mul(2_654_435_761));
            if c.check(at_min(5), a(L), a(R), SeqNum(i), guess).is_some() {
                hits += 1;
            }
        }
        // 3 counts x 4 indexes in 2^32: expect about 0.002 hits.
        assert!(hits <= 1, "{hits} random cookies accepted");
    }

    #[test]
    fn mss_index_takes_the_largest_entry_not_above_the_peers_mss() {
        assert_eq!(SynCookies::mss_index(100), 0);
        assert_eq!(SynCookies::mss_index(536), 0);
        assert_eq!(SynCookies::mss_index(1299), 0);
        assert_eq!(SynCookies::mss_index(1300), 1);
        assert_eq!(SynCookies::mss_index(1459), 2);
        assert_eq!(SynCookies::mss_index(1460), 3);
        assert_eq!(SynCookies::mss_index(65495), 3);
    }

    #[test]
    fn options_travel_in_the_low_bits_of_tsval_which_never_moves_forward() {
        for wscale in [None, Some(0), Some(7), Some(14)] {
            for sack in [false, true] {
                let o = CookieOptions { wscale, sack };
                for tsval in [0u32, 5, 63, 64, 1_000_000, u32::MAX] {
                    let ts = o.encode(tsval);
                    assert_eq!(CookieOptions::decode(ts), o);
                    let back = tsval.wrapping_sub(ts) as i32;
                    assert!((0..64).contains(&back), "{tsval} -> {ts}");
                }
            }
        }
    }
}
