//! A Linux TUN device (IFF_TUN | IFF_NO_PI) through the `tun-tap` crate.
//!
//! The device is usually created beforehand by `scripts/setup-tun.sh`
//! (persistent, with the kernel-side address configured); opening it here
//! attaches to it by name. Opening a name that does not exist creates a
//! transient device that vanishes when we close it, which is rarely what you
//! want, so [`TunDevice::open`] refuses that unless told otherwise.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use super::Device;

/// A TUN device carrying raw IPv4 packets.
pub struct TunDevice {
    iface: tun_tap::Iface,
    mtu: usize,
}

impl std::fmt::Debug for TunDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunDevice")
            .field("name", &self.iface.name())
            .field("mtu", &self.mtu)
            .finish()
    }
}

impl TunDevice {
    /// Attaches to the existing TUN device `name` (see `scripts/setup-tun.sh`).
    pub fn open(name: &str) -> io::Result<TunDevice> {
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
        let iface = tun_tap::Iface::without_packet_info(name, tun_tap::Mode::Tun).map_err(|e| {
            let hint = if e.kind() == io::ErrorKind::PermissionDenied {
                " (needs root or CAP_NET_ADMIN)"
            } else {
                " (is it a TUN device, and is another process attached to it?)"
            };
            io::Error::new(
                e.kind(),
                format!("cannot attach to TUN device {name}: {e}{hint}"),
            )
        })?;
        iface.set_non_blocking()?;
        Ok(TunDevice { iface, mtu })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        self.iface.name()
    }
}

/// Reads an interface's MTU with the SIOCGIFMTU ioctl (in our network namespace).
fn interface_mtu(name: &str) -> io::Result<usize> {
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
    // SAFETY: SIOCGIFMTU reads ifr_name and writes ifr_ifru.ifru_mtu of our ifreq.
    let rc = unsafe { libc::ioctl(sock, libc::SIOCGIFMTU, &mut req) };
    let err = io::Error::last_os_error();
    // SAFETY: sock is our own fd.
    unsafe { libc::close(sock) };
    if rc < 0 {
        return Err(err);
    }
    // SAFETY: the ioctl succeeded, so the mtu member is the one written.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    Ok(usize::try_from(mtu).unwrap_or(1500).clamp(68, 65535))
}

impl Device for TunDevice {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.iface.recv(buf)
    }

    fn send(&self, packet: &[u8]) -> io::Result<()> {
        self.iface.send(packet).map(|_| ())
    }

    fn fd(&self) -> RawFd {
        self.iface.as_raw_fd()
    }

    fn mtu(&self) -> usize {
        self.mtu
    }
}
