//! Packet capture (`utcp --pcap FILE`): every packet in and out, written to a pcap file that tshark and Wireshark
//! open (link type RAW: each record is an IPv4 packet).
//!
//! Where the capture sits ([`CapturePoint`]) matters only with
//! `--impair`, which works between the device and the stack:
//! [`CapturePoint::Stack`] (the default) records what the stack took in
//! (after the impairment on the way in) and what it sent (before the
//! impairment on the way out), so a packet the impairment drops on its way
//! out is in the capture and its retransmission follows, and one it drops
//! on its way in is not; [`CapturePoint::Device`] records what the TUN
//! device carries, as `tcpdump -i DEV` on the kernel side would (the other
//! way round). Without impairment both are the same. With offload,
//! super-packets are recorded as they cross (up to 64 KB, with the partial
//! checksum the kernel completes), as a capture on the device would show
//! them too. Each packet is written at once, so the file is whole whenever
//! the process stops; a write error stops the capture (logged once), never
//! the stack. The file format is `pcap-file`'s writer: a well-kept crate,
//! rather than one more hand-written codec.

use std::fs::File;
use std::io;
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;

use super::{Device, Received};
use crate::gso::TxOffload;

/// The most bytes of one packet recorded (the pcap snap length): the
/// largest IPv4 packet, so nothing is ever cut.
pub const SNAPLEN: u32 = 65_535;

/// Which packets a capture records, when `--impair` sits between the
/// device and the stack (see the [module documentation](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CapturePoint {
    /// What the stack took in and sent: after the impairment on the way
    /// in, before it on the way out.
    #[default]
    Stack,
    /// What the TUN device carried: before the impairment on the way in,
    /// after it on the way out.
    Device,
}

/// An open capture file, shared by every device (shard) writing to it.
pub struct Capture {
    writer: Mutex<Option<PcapWriter<File>>>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture").finish_non_exhaustive()
    }
}

impl Capture {
    /// Creates (or truncates) `path` and writes the pcap header.
    pub fn create(path: &Path) -> io::Result<Arc<Capture>> {
        let file = File::create(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let header = PcapHeader {
            datalink: DataLink::RAW,
            snaplen: SNAPLEN,
            ..PcapHeader::default()
        };
        // Unbuffered: each record reaches the file at once (two writes).
        let writer = PcapWriter::with_header(file, header)
            .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
        log::info!("capturing every packet to {}", path.display());
        Ok(Arc::new(Capture {
            writer: Mutex::new(Some(writer)),
        }))
    }

    /// Records one packet, now.
    pub fn record(&self, packet: &[u8]) {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let kept = &packet[..packet.len().min(SNAPLEN as usize)];
        let orig_len = u32::try_from(packet.len()).unwrap_or(u32::MAX);
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let Some(w) = guard.as_mut() else {
            return;
        };
        let written = w
            .write_packet(&PcapPacket::new(ts, orig_len, kept))
            .map_err(|e| io::Error::other(e.to_string()));
        if let Err(e) = written {
            log::warn!("packet capture stopped: {e}");
            *guard = None;
        }
    }
}

/// A device that records every packet it carries into a [`Capture`].
pub struct PcapDevice<D> {
    inner: D,
    capture: Arc<Capture>,
}

impl<D: Device> PcapDevice<D> {
    /// Wraps `inner`.
    pub fn new(inner: D, capture: Arc<Capture>) -> PcapDevice<D> {
        PcapDevice { inner, capture }
    }
}

impl<D: Device> Device for PcapDevice<D> {
    fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let got = self.inner.recv(buf)?;
        if let Some(p) = buf.get(got.start..got.start + got.len) {
            self.capture.record(p);
        }
        Ok(got)
    }

    fn send(&self, packet: &[u8]) -> io::Result<()> {
        self.inner.send(packet)?;
        self.capture.record(packet);
        Ok(())
    }

    fn fd(&self) -> RawFd {
        self.inner.fd()
    }

    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    fn max_packet(&self) -> usize {
        self.inner.max_packet()
    }

    fn tx_offload(&self) -> bool {
        self.inner.tx_offload()
    }

    fn send_offload(&self, packet: &[u8], offload: TxOffload) -> io::Result<()> {
        if !self.inner.tx_offload() {
            // The inner device finishes it in software and sends every
            // piece with its own send: record the pieces as they go out.
            if offload.is_none() {
                return self.send(packet);
            }
            return crate::gso::finish_and_send(packet, offload, &mut Vec::new(), |p| self.send(p));
        }
        self.inner.send_offload(packet, offload)?;
        self.capture.record(packet);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_reads_back_with_raw_link_type_and_the_packets() {
        let dir = std::env::temp_dir().join(format!("utcp-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.pcap");
        let cap = Capture::create(&path).unwrap();
        cap.record(&[0x45, 0, 0, 20, 1, 2, 3, 4]);
        // The largest IPv4 packet (a super-packet can be that big).
        cap.record(&vec![7u8; 65_535]);
        let data = std::fs::read(&path).unwrap();
        let mut r = pcap_file::pcap::PcapReader::new(&data[..]).unwrap();
        assert_eq!(r.header().datalink, DataLink::RAW);
        let first = r.next_packet().unwrap().unwrap();
        assert_eq!(&first.data[..], &[0x45, 0, 0, 20, 1, 2, 3, 4]);
        let second = r.next_packet().unwrap().unwrap();
        assert_eq!(second.orig_len, 65_535);
        assert_eq!(&second.data[..], &vec![7u8; 65_535][..]);
        assert!(r.next_packet().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
