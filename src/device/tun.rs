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
        wait_until_running(name);
        Ok(TunDevice { iface, mtu })
    }

    /// The interface name.
    pub fn name(&self) -> &str {
        self.iface.name()
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
