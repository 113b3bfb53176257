//! Initial sequence numbers (RFC 6528 section 3; RFC 9293 section 3.4.1).
//!
//! `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)`, where
//! M is a timer ticking every 4 microseconds and F a keyed hash (here SipHash,
//! keyed with a secret drawn from `rand` at start-up). Each 4-tuple therefore
//! gets its own, unpredictable sequence space that still moves forward in time,
//! so a new incarnation of a connection starts above the old one's numbers.

use std::hash::{Hash, Hasher};
use std::net::SocketAddrV4;

use crate::seq::SeqNum;
use crate::time::Instant;

/// Generates initial sequence numbers per RFC 6528.
#[derive(Clone, Debug)]
pub struct IsnGenerator {
    secret: [u8; 16],
}

impl IsnGenerator {
    /// A generator keyed with `secret` (draw it from a good random source).
    pub fn new(secret: [u8; 16]) -> Self {
        IsnGenerator { secret }
    }

    /// The ISN for a connection from `local` to `remote` at time `now`.
    pub fn isn(&self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4) -> SeqNum {
        // std's DefaultHasher is SipHash; mixing the secret in first keys it.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.secret.hash(&mut h);
        local.hash(&mut h);
        remote.hash(&mut h);
        let f = h.finish() as u32;
        let m = (now.total_micros() / 4) as u32;
        SeqNum(m.wrapping_add(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    #[test]
    fn isn_differs_per_tuple_and_secret_rfc6528() {
        let g = IsnGenerator::new([7; 16]);
        let t = Instant::from_millis(1);
        let x = g.isn(t, a("10.0.0.2:80"), a("10.0.0.1:5000"));
        let y = g.isn(t, a("10.0.0.2:80"), a("10.0.0.1:5001"));
        assert_ne!(x, y);
        let other = IsnGenerator::new([8; 16]);
        assert_ne!(x, other.isn(t, a("10.0.0.2:80"), a("10.0.0.1:5000")));
    }

    #[test]
    fn isn_advances_with_the_clock_every_4us() {
        let g = IsnGenerator::new([1; 16]);
        let (l, r) = (a("10.0.0.2:80"), a("10.0.0.1:5000"));
        let x = g.isn(Instant::from_micros(0), l, r);
        let y = g.isn(Instant::from_micros(4_000), l, r);
        assert_eq!(y.diff(x), 1000);
    }
}
