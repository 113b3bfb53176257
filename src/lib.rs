//! utcp: a user-space TCP/IPv4 stack over a Linux TUN device.

/// Pluggable congestion controllers (NewReno, CUBIC with optional HyStart++).
pub mod cc;
pub mod device;
pub mod error;
pub mod isn;
pub mod reassembly;
pub mod rtt;
pub mod sack;
pub mod seq;
pub mod sim;
pub mod socket;
pub mod stack;
pub mod state;
pub mod tcb;
pub mod time;
pub mod wire;
