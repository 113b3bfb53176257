//! Devices: where raw IPv4 packets come from and go to.
//!
//! The runtime drives any [`Device`]: it waits for [`Device::fd`] to become
//! readable (poll(2)), drains packets with [`Device::recv`] and writes with
//! [`Device::send`]. [`tun::TunDevice`] is the real one.

use std::io;
use std::os::fd::RawFd;

pub mod impair;
pub mod tun;

/// A packet device the runtime can drive.
pub trait Device: Send + Sync + 'static {
    /// Reads one packet into `buf` without blocking; `WouldBlock` when none waits.
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes one packet.
    fn send(&self, packet: &[u8]) -> io::Result<()>;
    /// A file descriptor that polls readable when [`recv`](Self::recv) has a packet.
    fn fd(&self) -> RawFd;
    /// The largest packet the device carries.
    fn mtu(&self) -> usize;
}
