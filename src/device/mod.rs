//! Devices: where raw IPv4 packets come from and go to.
//!
//! The runtime drives any [`Device`]: it waits for [`Device::fd`] to become
//! readable (poll(2)), drains packets with [`Device::recv`] and writes with
//! [`Device::send`]. [`tun::TunDevice`] is the real one.

use std::io;
use std::os::fd::RawFd;

use crate::gso::{self, TxOffload};

pub mod impair;
pub mod pcap;
pub mod shard;
pub mod tun;
pub mod vnet;

/// Where [`Device::recv`] put a packet in the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The packet starts here (after the device's own header, if any).
    pub start: usize,
    /// Its length.
    pub len: usize,
    /// An offload device's virtio-net header for it (see [`vnet`]).
    pub vnet: Option<vnet::VnetHeader>,
}

/// A packet device the runtime can drive.
pub trait Device: Send + Sync + 'static {
    /// Reads one packet into `buf` without blocking; `WouldBlock` when none waits.
    fn recv(&self, buf: &mut [u8]) -> io::Result<Received>;
    /// Writes one packet (checksums complete, at most [`mtu`](Self::mtu)).
    fn send(&self, packet: &[u8]) -> io::Result<()>;
    /// A file descriptor that polls readable when [`recv`](Self::recv) has a packet.
    fn fd(&self) -> RawFd;
    /// The largest packet the device carries.
    fn mtu(&self) -> usize;
    /// The largest packet [`recv`](Self::recv) may return: the MTU, or
    /// 64 KB for an offload device (super-packets). The buffer passed to
    /// `recv` must hold this plus [`vnet::VNET_HDR_LEN`].
    fn max_packet(&self) -> usize {
        self.mtu()
    }
    /// True if [`send_offload`](Self::send_offload) hands partial checksums
    /// and super-segments to hardware (or the kernel) instead of finishing
    /// them in software; the runtime then lets the stack build them.
    fn tx_offload(&self) -> bool {
        false
    }
    /// Writes one packet the stack left unfinished as `offload` says (see
    /// [`crate::gso`]). The default finishes it in software and sends every
    /// resulting packet with [`send`](Self::send).
    fn send_offload(&self, packet: &[u8], offload: TxOffload) -> io::Result<()> {
        if offload.is_none() {
            return self.send(packet);
        }
        gso::finish_and_send(packet, offload, &mut Vec::new(), |p| self.send(p))
    }

    /// Writes one packet given in pieces: `head` (the whole packet, or its
    /// IPv4 and TCP headers) followed by the two `payload` pieces (see
    /// [`Stack::poll_transmit_vectored`](crate::stack::Stack::poll_transmit_vectored)),
    /// finished as `offload` says. The default joins them and calls
    /// [`send_offload`](Self::send_offload); a device that can write from
    /// several buffers at once (the offload TUN device, with `writev`)
    /// saves that copy.
    fn send_vectored(
        &self,
        head: &[u8],
        payload: [&[u8]; 2],
        offload: TxOffload,
    ) -> io::Result<()> {
        send_joined(self, head, payload, offload)
    }
}

/// [`Device::send_vectored`] for a device that writes one buffer: the
/// pieces joined (when there is more than `head`), then
/// [`Device::send_offload`].
pub fn send_joined<D: Device + ?Sized>(
    dev: &D,
    head: &[u8],
    payload: [&[u8]; 2],
    offload: TxOffload,
) -> io::Result<()> {
    if payload.iter().all(|p| p.is_empty()) {
        return dev.send_offload(head, offload);
    }
    dev.send_offload(&[head, payload[0], payload[1]].concat(), offload)
}
