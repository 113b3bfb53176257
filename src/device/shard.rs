//! One device per stack shard on a multi-queue TUN device, and the steering
//! of packets that the kernel hands to the wrong queue.
//!
//! With `IFF_MULTI_QUEUE` ([`TunDevice::open_queues`]) the kernel picks the
//! queue of every packet it sends us: the queue that last wrote a packet of
//! the same flow (its flow table, entries expire after about 3 s of
//! silence), or else one chosen by a hash of the flow's addresses and
//! ports. Each queue feeds one [`Stack`](crate::stack::Stack) shard, and a
//! connection lives in one shard, so:
//! - a connection *accepted* by shard `i` came in on queue `i`, where its
//!   hash points; its replies keep the flow table pointing there too. Every
//!   shard listens on the same ports.
//! - a connection *opened* by shard `i` sent its SYN on queue `i`, so the
//!   flow table points there while the flow is active; after a silence the
//!   kernel falls back to the hash, which may name another queue. Shard `i`
//!   picks only the ephemeral ports that name it
//!   ([`Shard::owner_of_port`]), and the device that reads such a packet
//!   hands it to the owner's inbox instead of to its own stack.
//!
//! ICMP echo and listener traffic are answered where they arrive.
//! [`ShardDevice::fd`] is an epoll descriptor over the queue and the inbox,
//! so the runtime waits on one descriptor as with any device.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[cfg(doc)]
use super::tun::TunDevice;
use super::vnet::VnetHeader;
use super::{Device, Received};
use crate::gso::TxOffload;
use crate::stack::Shard;

/// At most this many bytes wait in one shard's inbox; more are dropped
/// (and counted), as the kernel drops at a full queue.
const INBOX_MAX_BYTES: usize = 4 << 20;

/// How many packets for other shards one [`ShardDevice::recv`] passes on
/// before it returns (the poll reports the rest).
const FORWARD_BUDGET: usize = 64;

/// Counters of the steering between shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Packets a shard read from its queue and passed to the shard that
    /// owns their connection.
    pub forwarded: u64,
    /// Packets dropped because the owner's inbox was full.
    pub inbox_full: u64,
}

/// Packets passed to one shard by the others.
struct Inbox {
    queue: Mutex<InboxQueue>,
    /// Readable while the queue is not empty.
    event: OwnedFd,
}

#[derive(Default)]
struct InboxQueue {
    packets: VecDeque<(Vec<u8>, Option<VnetHeader>)>,
    bytes: usize,
}

/// What the shards of one multi-queue device share: their inboxes.
pub struct ShardSet {
    inboxes: Vec<Inbox>,
    forwarded: AtomicU64,
    inbox_full: AtomicU64,
}

impl ShardSet {
    /// Wraps one opened queue per shard (`queues[i]` feeds shard `i`):
    /// the queues of [`TunDevice::open_queues`], or any devices.
    pub fn devices<D: Device>(queues: Vec<D>) -> io::Result<Vec<ShardDevice>> {
        let inboxes = queues
            .iter()
            .map(|_| {
                Ok(Inbox {
                    queue: Mutex::new(InboxQueue::default()),
                    event: eventfd()?,
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        let set = Arc::new(ShardSet {
            inboxes,
            forwarded: AtomicU64::new(0),
            inbox_full: AtomicU64::new(0),
        });
        let count = u16::try_from(queues.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many queues"))?;
        queues
            .into_iter()
            .enumerate()
            .map(|(i, queue)| {
                let epoll = epoll_over(&[queue.fd(), set.inboxes[i].event.as_raw_fd()])?;
                Ok(ShardDevice {
                    shard: Shard {
                        index: i as u16,
                        count,
                    },
                    queue: Box::new(queue),
                    set: set.clone(),
                    epoll,
                })
            })
            .collect()
    }

    /// What the steering did so far, over all shards.
    pub fn stats(&self) -> ShardStats {
        ShardStats {
            forwarded: self.forwarded.load(Ordering::Relaxed),
            inbox_full: self.inbox_full.load(Ordering::Relaxed),
        }
    }

    /// Queues `packet` for shard `to`; false if its inbox is full.
    fn pass(&self, to: usize, packet: &[u8], vnet: Option<VnetHeader>) -> bool {
        let inbox = &self.inboxes[to];
        let mut q = inbox.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.bytes + packet.len() > INBOX_MAX_BYTES {
            self.inbox_full.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        q.bytes += packet.len();
        q.packets.push_back((packet.to_vec(), vnet));
        // Under the lock, so the reader's drain cannot overtake it.
        signal(&inbox.event);
        self.forwarded.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The next packet in shard `index`'s inbox, copied into `buf`.
    fn take(&self, index: usize, buf: &mut [u8]) -> Option<Received> {
        let inbox = &self.inboxes[index];
        let mut q = inbox.queue.lock().unwrap_or_else(|e| e.into_inner());
        let (packet, vnet) = q.packets.pop_front()?;
        q.bytes -= packet.len();
        if q.packets.is_empty() {
            drain(&inbox.event);
        }
        let len = packet.len().min(buf.len());
        buf[..len].copy_from_slice(&packet[..len]);
        Some(Received {
            start: 0,
            len,
            vnet,
        })
    }
}

/// One queue of a multi-queue TUN device, as the device of one shard.
pub struct ShardDevice {
    shard: Shard,
    queue: Box<dyn Device>,
    set: Arc<ShardSet>,
    epoll: OwnedFd,
}

impl ShardDevice {
    /// Which shard this device feeds; give it to the shard's stack
    /// ([`StackConfig::shard`](crate::stack::StackConfig::shard)).
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// What all shards of the device share.
    pub fn set(&self) -> &Arc<ShardSet> {
        &self.set
    }
}

/// The local (destination) port of an IPv4/TCP packet from the kernel.
fn tcp_dst_port(packet: &[u8]) -> Option<u16> {
    let ihl = usize::from(packet.first()? & 0x0f) * 4;
    if packet.first()? >> 4 != 4 || *packet.get(9)? != 6 {
        return None;
    }
    let p = packet.get(ihl + 2..ihl + 4)?;
    Some(u16::from_be_bytes([p[0], p[1]]))
}

impl Device for ShardDevice {
    fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        let me = usize::from(self.shard.index);
        if let Some(r) = self.set.take(me, buf) {
            return Ok(r);
        }
        for _ in 0..FORWARD_BUDGET {
            let r = self.queue.recv(buf)?;
            let packet = &buf[r.start..r.start + r.len];
            let owner = tcp_dst_port(packet)
                .and_then(|port| Shard::owner_of_port(self.shard.count, port))
                .map(usize::from);
            match owner {
                Some(to) if to != me => {
                    log::trace!("shard {me}: packet for shard {to}'s connection passed on");
                    if !self.set.pass(to, packet, r.vnet) {
                        log::debug!("shard {me}: shard {to}'s inbox is full: packet dropped");
                    }
                }
                _ => return Ok(r),
            }
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn send(&self, packet: &[u8]) -> io::Result<()> {
        self.queue.send(packet)
    }

    fn fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    fn mtu(&self) -> usize {
        self.queue.mtu()
    }

    fn max_packet(&self) -> usize {
        self.queue.max_packet()
    }

    fn tx_offload(&self) -> bool {
        self.queue.tx_offload()
    }

    fn send_offload(&self, packet: &[u8], offload: TxOffload) -> io::Result<()> {
        self.queue.send_offload(packet, offload)
    }

    fn send_vectored(
        &self,
        head: &[u8],
        payload: [&[u8]; 2],
        offload: TxOffload,
    ) -> io::Result<()> {
        self.queue.send_vectored(head, payload, offload)
    }
}

/// A non-blocking eventfd.
fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd(2) with valid flags.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes the eventfd readable.
fn signal(event: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writing 8 bytes from a valid u64 to an eventfd.
    unsafe { libc::write(event.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// Makes the eventfd unreadable again.
fn drain(event: &OwnedFd) {
    let mut n: u64 = 0;
    // SAFETY: reading 8 bytes into a valid u64 from a non-blocking eventfd.
    unsafe { libc::read(event.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
}

/// An epoll descriptor, level-triggered, readable while any of `fds` is.
fn epoll_over(fds: &[RawFd]) -> io::Result<OwnedFd> {
    // SAFETY: epoll_create1(2) with a valid flag.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    for &fd in fds {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: adding a live descriptor with a valid event.
        if unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(ep)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queue fed by the test: packets in a list, readable while any wait.
    struct FakeQueue {
        packets: Mutex<VecDeque<Vec<u8>>>,
        event: OwnedFd,
    }

    impl FakeQueue {
        fn new(packets: Vec<Vec<u8>>) -> FakeQueue {
            let q = FakeQueue {
                packets: Mutex::new(packets.into()),
                event: eventfd().unwrap(),
            };
            signal(&q.event);
            q
        }
    }

    impl Device for FakeQueue {
        fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
            let mut q = self.packets.lock().unwrap();
            let Some(p) = q.pop_front() else {
                drain(&self.event);
                return Err(io::ErrorKind::WouldBlock.into());
            };
            buf[..p.len()].copy_from_slice(&p);
            Ok(Received {
                start: 0,
                len: p.len(),
                vnet: None,
            })
        }
        fn send(&self, _: &[u8]) -> io::Result<()> {
            Ok(())
        }
        fn fd(&self) -> RawFd {
            self.event.as_raw_fd()
        }
        fn mtu(&self) -> usize {
            1500
        }
    }

    /// A 40-byte IPv4/TCP packet to local port `port`.
    fn to_port(port: u16) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[9] = 6;
        p[22..24].copy_from_slice(&port.to_be_bytes());
        p
    }

    fn readable(fd: RawFd) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no wait.
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    }

    /// A packet for another shard's active open goes to that shard's
    /// inbox, which makes its descriptor readable; the rest stays.
    #[test]
    fn packets_for_another_shards_port_are_passed_on() {
        // Shard 1 of 2 owns the ephemeral ports 49153, 49155, ...
        let q0 = FakeQueue::new(vec![to_port(49153), to_port(4399), to_port(49152)]);
        let q1 = FakeQueue::new(vec![]);
        let devs = ShardSet::devices(vec![q0, q1]).unwrap();
        assert_eq!(devs[1].shard(), Shard { index: 1, count: 2 });
        let mut buf = vec![0u8; 1500];
        let r = devs[1].recv(&mut buf).unwrap_err();
        assert_eq!(r.kind(), io::ErrorKind::WouldBlock);
        assert!(!readable(devs[1].fd()), "nothing for shard 1 yet");
        let r = devs[0].recv(&mut buf).unwrap();
        assert_eq!(tcp_dst_port(&buf[r.start..r.start + r.len]), Some(4399));
        assert!(readable(devs[1].fd()), "shard 1 has a packet waiting");
        let r = devs[1].recv(&mut buf).unwrap();
        assert_eq!(tcp_dst_port(&buf[..r.len]), Some(49153));
        assert!(!readable(devs[1].fd()), "its inbox is empty again");
        let r = devs[0].recv(&mut buf).unwrap();
        assert_eq!(tcp_dst_port(&buf[..r.len]), Some(49152), "shard 0's own");
        assert_eq!(devs[0].set().stats().forwarded, 1);
    }

    /// A full inbox drops (and counts) instead of growing.
    #[test]
    fn a_full_inbox_drops_and_counts() {
        let n = INBOX_MAX_BYTES / 40 + 10;
        let q0 = FakeQueue::new((0..n).map(|_| to_port(49153)).collect());
        let devs = ShardSet::devices(vec![q0, FakeQueue::new(vec![])]).unwrap();
        let mut buf = vec![0u8; 1500];
        for _ in 0..n {
            let _ = devs[0].recv(&mut buf);
        }
        let st = devs[0].set().stats();
        assert_eq!(st.forwarded as usize, INBOX_MAX_BYTES / 40);
        assert_eq!(st.inbox_full, 10);
    }

    #[test]
    fn dst_port_of_tcp_only() {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[9] = 6;
        p[22..24].copy_from_slice(&50001u16.to_be_bytes());
        assert_eq!(tcp_dst_port(&p), Some(50001));
        p[9] = 1;
        assert_eq!(tcp_dst_port(&p), None, "ICMP");
        p[9] = 6;
        assert_eq!(tcp_dst_port(&p[..22]), None, "truncated");
        p[0] = 0x65;
        assert_eq!(tcp_dst_port(&p), None, "not IPv4");
        assert_eq!(tcp_dst_port(&[]), None);
    }
}
