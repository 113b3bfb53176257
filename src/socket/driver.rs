//! The driver thread: sleeps in ppoll(2) on the device, the eventfd and the
//! next timer deadline, feeds packets and timers to the stack, transmits.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::Duration;

use log::{debug, error};

use crate::device::impair::Direction;

use super::runtime::{Core, Shared};

/// Packets the driver reads before it stops to transmit (bounds latency).
const RX_BATCH: usize = 256;

/// The driver thread's loop.
pub(super) fn drive(shared: &Shared) {
    let mut rx = vec![0u8; 65536];
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let timeout = {
            let mut core = shared.lock();
            let next = core.next_deadline();
            core.driver_deadline = next;
            next.map(|t| t.saturating_duration_since(shared.now()))
        };
        if let Err(err) = wait_for_work(shared, timeout) {
            error!("poll failed: {err}");
            shared.fail(err.to_string());
            break;
        }
        let fatal = serve_batches(shared, &mut rx);
        if let Some(e) = fatal {
            error!("device read failed: {e}");
            shared.fail(e.to_string());
            break;
        }
    }
    debug!("driver thread stopped");
}

/// Sleeps in `ppoll` until the device is readable, the eventfd is poked,
/// or `timeout` passes (no timeout: until one of the first two). Drains the
/// eventfd. An interrupted poll is not an error.
fn wait_for_work(shared: &Shared, timeout: Option<Duration>) -> io::Result<()> {
    let wake_fd = shared.wake.as_raw_fd();
    let mut fds = [
        libc::pollfd {
            fd: shared.device.fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: wake_fd,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: fds is a valid array of 2 pollfds; ts_ptr is null or points to ts.
    let rc = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, ts_ptr, std::ptr::null()) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    if fds[1].revents != 0 {
        let mut v: u64 = 0;
        // SAFETY: reading 8 bytes into a valid u64 from our nonblocking eventfd.
        unsafe {
            libc::read(wake_fd, (&mut v as *mut u64).cast(), 8);
        }
    }
    Ok(())
}

/// Under the lock, *drain, then dispatch*: read up to `RX_BATCH` packets
/// into the stack, release held packets, run the timers, flush; again while
/// full batches keep coming. Returns the device's error if a read failed.
fn serve_batches(shared: &Shared, rx: &mut [u8]) -> Option<io::Error> {
    let mut core = shared.lock();
    loop {
        let (got, fatal) = read_batch(shared, &mut core, rx);
        let now = shared.now();
        let Core { stack, impair, .. } = &mut *core;
        if let Some(imp) = impair {
            imp.poll_release(now, |dir, p| match dir {
                Direction::In => stack.handle_packet(now, p),
                Direction::Out => shared.send(p),
            });
        }
        stack.handle_timeout(now);
        shared.flush(&mut core);
        if got < RX_BATCH || fatal.is_some() {
            return fatal;
        }
    }
}

/// Reads packets without blocking into the stack (through the impairer when
/// one is configured), at most `RX_BATCH`; returns how many, and the
/// device's error if a read failed.
fn read_batch(shared: &Shared, core: &mut Core, rx: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut got = 0;
    while got < RX_BATCH {
        match shared.device.recv(rx) {
            Ok(n) => {
                got += 1;
                let now = shared.now();
                let Core { stack, impair, .. } = core;
                match impair {
                    Some(imp) => imp.handle_packet(now, Direction::In, &rx[..n], |p| {
                        stack.handle_packet(now, p)
                    }),
                    None => stack.handle_packet(now, &rx[..n]),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}
