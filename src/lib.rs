//! utcp: a user-space TCP/IPv4 stack over a Linux TUN device.

/// Pluggable congestion controllers (NewReno, CUBIC with optional HyStart++).
pub mod cc;
pub mod device;
pub mod error;
#[cfg(feature = "forward")]
pub mod forward;
// Fuzz harnesses for fuzz/ and tests/fuzz_smoke.rs (see its module doc);
// not in normal builds.
#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
pub mod gso;
pub mod isn;
pub mod reassembly;
pub mod rtt;
pub mod sack;
pub mod seq;
pub mod sim;
pub mod socket;
pub mod stack;
pub mod state;
pub mod syncookie;
pub mod tcb;
// Test helpers shared by all tests (see its module doc); not in normal builds.
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod wire;
