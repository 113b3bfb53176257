//! utcp: a user-space TCP/IPv4 stack over a Linux TUN device.

pub mod reassembly;
pub mod rtt;
pub mod seq;
pub mod time;
pub mod wire;
