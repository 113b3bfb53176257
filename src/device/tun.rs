//! A Linux TUN device (IFF_TUN | IFF_NO_PI): through the `tun-tap` crate,
//! or, with offload ([`TunOptions::offload`]), through our own few ioctls
//! (`TUNSETIFF` with `IFF_VNET_HDR`, `TUNSETOFFLOAD`): tun-tap cannot pass
//! these flags, and the ioctls are ten lines, so no other crate is needed
//! (tun-rs can, but brings async runtimes and a dozen platforms we do not
//! use). See [`super::vnet`] for what offload changes. A multi-queue
//! device (`IFF_MULTI_QUEUE`, [`TunDevice::open_queues`]) is attached the
//! same way, once per queue: tun-tap cannot pass that flag either.
//!
//! The device is usually created beforehand by `scripts/setup-tun.sh`
//! (persistent, with the kernel-side address configured); opening it here
//! attaches to it by name. Opening a name that does not exist creates a
//! transient device that vanishes when we close it, which is rarely what you
//! want, so [`TunDevice::open`] refuses that unless told otherwise.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::vnet::{VnetHeader, VNET_HDR_LEN};
use super::{Device, Received};
use crate::gso::{self, TxOffload};

/// How to open a [`TunDevice`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TunOptions {
    /// Open with `IFF_VNET_HDR` and enable checksum offload and TSO
    /// (`TUN_F_CSUM | TUN_F_TSO4`): the kernel may hand over packets with a
    /// partial checksum and IPv4/TCP super-packets of up to 64 KB.
    pub offload: bool,
    /// Attach as one queue of a multi-queue device (`IFF_MULTI_QUEUE`;
    /// `scripts/setup-tun.sh --multi-queue`). [`TunDevice::open_queues`]
    /// sets it.
    pub multi_queue: bool,
}

/// The most queues [`TunDevice::open_queues`] attaches (the kernel allows
/// 256; more than there are CPUs buys nothing).
pub const MAX_QUEUES: usize = 64;

enum Handle {
    /// A plain device, through tun-tap.
    Plain(tun_tap::Iface),
    /// Our own fd: an offload device (virtio-net headers) and/or one queue
    /// of a multi-queue device.
    Own {
        fd: OwnedFd,
        /// Every packet carries a virtio-net header.
        vnet: bool,
    },
}

/// A TUN device carrying raw IPv4 packets.
pub struct TunDevice {
    handle: Handle,
    name: String,
    mtu: usize,
}

impl std::fmt::Debug for TunDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunDevice")
            .field("name", &self.name)
            .field("mtu", &self.mtu)
            .field("offload", &self.offload())
            .finish()
    }
}

impl TunDevice {
    /// Attaches to the existing TUN device `name` (see `scripts/setup-tun.sh`).
    pub fn open(name: &str) -> io::Result<TunDevice> {
        TunDevice::open_with(name, TunOptions::default())
    }

    /// Attaches to the existing TUN device `name` with `opts`.
    pub fn open_with(name: &str, opts: TunOptions) -> io::Result<TunDevice> {
        if name.is_empty() || name.len() > 15 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid interface name {name:?} (1 to 15 characters)"),
            ));
        }
        if !std::path::Path::new("/dev/net/tun").exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "/dev/net/tun is missing: load the tun module (modprobe tun)",
            ));
        }
        let mtu = interface_mtu(name).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "no network interface {name:?} here ({e}); create it with \
                     scripts/setup-tun.sh --dev {name} (and run utcp in the same namespace)"
                ),
            )
        })?;
        let attach_error = |e: io::Error| {
            let hint = if e.kind() == io::ErrorKind::PermissionDenied {
                " (needs root or CAP_NET_ADMIN)"
            } else {
                " (is it a TUN device, and is another process attached to it?)"
            };
            io::Error::new(
                e.kind(),
                format!("cannot attach to TUN device {name}: {e}{hint}"),
            )
        };
        let handle = if opts.offload || opts.multi_queue {
            let fd = open_own(name, opts).map_err(|e| attach_error_own(name, e, opts))?;
            if !opts.offload {
                // As below: a plain reader switches earlier offloads off.
                set_offload(fd.as_raw_fd(), 0)?;
            }
            Handle::Own {
                fd,
                vnet: opts.offload,
            }
        } else {
            let iface = tun_tap::Iface::without_packet_info(name, tun_tap::Mode::Tun)
                .map_err(attach_error)?;
            iface.set_non_blocking()?;
            // A persistent device keeps the offloads of an earlier offload
            // user; a plain reader would never see the kernel's
            // super-packets (the kernel drops them), so switch them off.
            set_offload(iface.as_raw_fd(), 0)?;
            Handle::Plain(iface)
        };
        wait_until_running(name);
        Ok(TunDevice {
            handle,
            name: name.to_string(),
            mtu,
        })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True if opened with offload (virtio-net headers, TSO, checksum offload).
    pub fn offload(&self) -> bool {
        matches!(self.handle, Handle::Own { vnet: true, .. })
    }

    /// Attaches `queues` queues (1 to [`MAX_QUEUES`]) of the multi-queue
    /// TUN device `name`, each a device of its own: the kernel steers every
    /// flow to one queue (by a hash of its addresses and ports, and to the
    /// queue that last sent a packet of the flow). Run one stack per queue
    /// ([`crate::socket::Shards::tun`]).
    pub fn open_queues(name: &str, opts: TunOptions, queues: usize) -> io::Result<Vec<TunDevice>> {
        if queues == 0 || queues > MAX_QUEUES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot attach {queues} queues: 1 to {MAX_QUEUES}"),
            ));
        }
        let opts = TunOptions {
            multi_queue: true,
            ..opts
        };
        (0..queues)
            .map(|_| TunDevice::open_with(name, opts))
            .collect()
    }
}

/// The error of attaching our own fd, with a hint for the usual mistake:
/// the kernel refuses (EINVAL) a multi-queue attach to a single-queue device
/// and the other way round.
fn attach_error_own(name: &str, e: io::Error, opts: TunOptions) -> io::Error {
    if e.raw_os_error() != Some(libc::EINVAL) {
        return e;
    }
    let hint = if opts.multi_queue {
        "was it created without multi_queue? (scripts/setup-tun.sh --multi-queue)"
    } else {
        "was it created with multi_queue? (then use --queues N)"
    };
    io::Error::new(e.kind(), format!("{name}: {e}; {hint}"))
}

/// Opens /dev/net/tun non-blocking and attaches it to `name` with
/// `IFF_TUN | IFF_NO_PI`, plus `IFF_VNET_HDR` with offload (then enables
/// checksum offload and TSO for IPv4) and `IFF_MULTI_QUEUE` for a queue of a
/// multi-queue device.
fn open_own(name: &str, opts: TunOptions) -> io::Result<OwnedFd> {
    // SAFETY: open(2) of a constant NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c"/dev/net/tun".as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    let mut flags = libc::IFF_TUN | libc::IFF_NO_PI;
    if opts.offload {
        flags |= libc::IFF_VNET_HDR;
    }
    if opts.multi_queue {
        flags |= libc::IFF_MULTI_QUEUE;
    }
    req.ifr_ifru.ifru_flags = flags as libc::c_short;
    // SAFETY: TUNSETIFF reads our ifreq.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if opts.offload {
        set_offload(fd.as_raw_fd(), libc::TUN_F_CSUM | libc::TUN_F_TSO4)?;
    }
    Ok(fd)
}

/// TUNSETOFFLOAD: the offloads the kernel may use towards this device.
fn set_offload(fd: RawFd, features: libc::c_uint) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes the feature bits by value.
    if unsafe { libc::ioctl(fd, libc::TUNSETOFFLOAD, features as libc::c_ulong) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Drop for TunDevice {
    fn drop(&mut self) {
        // Leave a persistent device as we found it: no offloads, so the
        // next (plain) user gets plain packets.
        if let Handle::Own { fd, vnet: true } = &self.handle {
            if let Err(e) = set_offload(fd.as_raw_fd(), 0) {
                log::debug!("could not switch the offloads of {} off: {e}", self.name);
            }
        }
    }
}

/// Attaching gives the device its carrier, but the kernel's link watcher
/// may take up to a second to notice (it rate-limits its events); until it
/// does, the device drops what the kernel sends us -- such as the SYN-ACK to
/// our first SYN. So wait (bounded) for IFF_RUNNING when the device is up.
fn wait_until_running(name: &str) {
    for _ in 0..150 {
        match interface_flags(name) {
            Ok(flags) if flags & libc::IFF_UP as u32 == 0 => {
                log::warn!("{name} is down: bring it up (scripts/setup-tun.sh does)");
                return;
            }
            Ok(flags) if flags & libc::IFF_RUNNING as u32 != 0 => {
                // The queue is activated right after the flag changes.
                std::thread::sleep(std::time::Duration::from_millis(2));
                return;
            }
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(e) => {
                log::debug!("cannot read the flags of {name}: {e}");
                return;
            }
        }
    }
    log::warn!("{name} did not report a carrier within 1.5 s; continuing");
}

/// Runs an interface ioctl (SIOCGIFMTU, SIOCGIFFLAGS) on a throwaway socket.
fn interface_ioctl(name: &str, request: libc::c_ulong) -> io::Result<libc::ifreq> {
    // SAFETY: plain socket(2); the fd is closed below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: these requests read ifr_name and write ifr_ifru of our ifreq.
    let rc = unsafe { libc::ioctl(sock, request, &mut req) };
    let err = io::Error::last_os_error();
    // SAFETY: sock is our own fd.
    unsafe { libc::close(sock) };
    if rc < 0 {
        return Err(err);
    }
    Ok(req)
}

/// An interface's flags (IFF_UP, IFF_RUNNING, ...).
fn interface_flags(name: &str) -> io::Result<u32> {
    let req = interface_ioctl(name, libc::SIOCGIFFLAGS)?;
    // SAFETY: SIOCGIFFLAGS succeeded, so the flags member is the one written.
    Ok(unsafe { req.ifr_ifru.ifru_flags } as u16 as u32)
}

/// Reads an interface's MTU with the SIOCGIFMTU ioctl (in our network namespace).
fn interface_mtu(name: &str) -> io::Result<usize> {
    let req = interface_ioctl(name, libc::SIOCGIFMTU)?;
    // SAFETY: SIOCGIFMTU succeeded, so the mtu member is the one written.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    Ok(usize::try_from(mtu).unwrap_or(1500).clamp(68, 65535))
}

/// read(2) into `buf`.
fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: reading at most buf.len() bytes into buf.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// write(2) of one packet.
fn write_fd(fd: RawFd, packet: &[u8]) -> io::Result<()> {
    // SAFETY: the kernel reads packet.len() bytes from packet.
    let n = unsafe { libc::write(fd, packet.as_ptr().cast(), packet.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// writev(2) of a virtio-net header and a packet, as one packet.
fn write_vnet(fd: RawFd, hdr: &[u8; VNET_HDR_LEN], packet: &[u8]) -> io::Result<()> {
    write_pieces(fd, &[hdr, packet])
}

/// One packet from several buffers, in one `writev` (a TUN device takes a
/// write as one packet, however many pieces it has).
fn write_pieces(fd: RawFd, pieces: &[&[u8]]) -> io::Result<()> {
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; 4];
    let mut n = 0;
    for p in pieces.iter().filter(|p| !p.is_empty()).take(iov.len()) {
        iov[n] = libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: p.len(),
        };
        n += 1;
    }
    // SAFETY: n valid iovecs over live buffers the kernel only reads.
    let rc = unsafe { libc::writev(fd, iov.as_ptr(), n as libc::c_int) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Device for TunDevice {
    fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        match &self.handle {
            Handle::Plain(iface) => iface.recv(buf).map(|len| Received {
                start: 0,
                len,
                vnet: None,
            }),
            Handle::Own { fd, vnet: false } => read_fd(fd.as_raw_fd(), buf).map(|len| Received {
                start: 0,
                len,
                vnet: None,
            }),
            Handle::Own { fd, vnet: true } => {
                let n = read_fd(fd.as_raw_fd(), buf)?;
                // A read shorter than the header (the kernel never does
                // that) gives an empty packet, dropped as truncated.
                let hdr = VnetHeader::parse(&buf[..n]).unwrap_or_default();
                Ok(Received {
                    start: VNET_HDR_LEN.min(n),
                    len: n.saturating_sub(VNET_HDR_LEN),
                    vnet: Some(hdr),
                })
            }
        }
    }

    fn send(&self, packet: &[u8]) -> io::Result<()> {
        match &self.handle {
            Handle::Plain(iface) => iface.send(packet).map(|_| ()),
            Handle::Own { fd, vnet: false } => write_fd(fd.as_raw_fd(), packet),
            // No offload for this packet: an all-zero header.
            Handle::Own { fd, vnet: true } => {
                write_vnet(fd.as_raw_fd(), &[0u8; VNET_HDR_LEN], packet)
            }
        }
    }

    fn tx_offload(&self) -> bool {
        self.offload()
    }

    fn send_offload(&self, packet: &[u8], offload: TxOffload) -> io::Result<()> {
        let Handle::Own { fd, vnet: true } = &self.handle else {
            return gso::finish_and_send(packet, offload, &mut Vec::new(), |p| self.send(p));
        };
        match VnetHeader::for_tx(packet, offload) {
            Some(hdr) => write_vnet(fd.as_raw_fd(), &hdr.to_bytes(), packet),
            None => gso::finish_and_send(packet, offload, &mut Vec::new(), |p| self.send(p)),
        }
    }

    fn send_vectored(
        &self,
        head: &[u8],
        payload: [&[u8]; 2],
        offload: TxOffload,
    ) -> io::Result<()> {
        // With a payload, `head` holds exactly the headers that precede it.
        let vectored = match &self.handle {
            Handle::Own { fd, vnet: true } if payload.iter().any(|p| !p.is_empty()) => {
                VnetHeader::for_tx_headers(head.len(), offload).map(|h| (fd, h))
            }
            _ => None,
        };
        match vectored {
            Some((fd, hdr)) => write_pieces(
                fd.as_raw_fd(),
                &[&hdr.to_bytes(), head, payload[0], payload[1]],
            ),
            None => super::send_joined(self, head, payload, offload),
        }
    }

    fn fd(&self) -> RawFd {
        match &self.handle {
            Handle::Plain(iface) => iface.as_raw_fd(),
            Handle::Own { fd, .. } => fd.as_raw_fd(),
        }
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn max_packet(&self) -> usize {
        if self.offload() {
            65535
        } else {
            self.mtu
        }
    }
}
