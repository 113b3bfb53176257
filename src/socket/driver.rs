//! Who drives the device, and how.
//!
//! *Driving* is one round of: sleep in ppoll(2) on the device, the eventfd
//! and the next timer deadline; then, under the lock, feed every readable
//! packet and the expired timers to the stack and transmit what that
//! produced ([`drive_once`]). Two ways to have it done ([`Driver`]):
//!
//! - **A driver thread** ([`Driver::Thread`], the default) drives for ever.
//!   The stack makes progress whatever the application does, at the price
//!   of a thread hop (a context switch) between the driver and every woken
//!   application thread.
//! - **The application's own threads** ([`Driver::Inline`]): a thread that
//!   is about to block (in a read, a write, `accept`, `connect`,
//!   [`Poll::poll`](super::Poll::poll), the linger on drop) becomes the
//!   *leader* if nobody leads, and drives until its own wait is over; the
//!   others sleep on their condition variables as in thread mode (leader
//!   and followers). A one-thread server then does everything in its one
//!   thread, as smoltcp's poll loop does: no hop at all. So that the stack
//!   still moves while no application thread waits (a program that closed
//!   a stream and waits on something else, a listener nobody accepts on),
//!   a *fallback* thread drives when nobody has for [`FALLBACK_AFTER`],
//!   and gives the role back as soon as an application thread waits.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::{Condvar, MutexGuard};
use std::thread::ThreadId;
use std::time::Duration;

use log::{debug, error};

use crate::device::impair::Direction;
use crate::device::vnet::VnetHeader;
use crate::time::Instant;
use crate::wire;

use super::runtime::{timed_wait, Core, Shared};
use super::wake::Source;

/// Packets the driver reads before it stops to transmit (bounds latency).
const RX_BATCH: usize = 256;
/// How many times one serving reads the device again after a batch that
/// sent packets but did not fill `RX_BATCH` (see `serve_batches`).
const REREADS: usize = 2;

/// Inline mode: an application that sends this many packets without
/// waiting reads the device before it sends more (the kernel's queue to
/// the TUN holds 500 packets by default; a busy writer must not let it
/// overflow).
pub(crate) const TX_PER_RX: usize = 32;

/// Inline mode: how long the device may go unserved, with no thread
/// leading, before the fallback thread drives. It looks this often, so an
/// idle stack costs it 100 wake-ups per second and nothing else.
pub const FALLBACK_AFTER: Duration = Duration::from_millis(10);

/// Who drives the device (see the [module documentation](crate::socket)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Driver {
    /// A dedicated driver thread (the default).
    #[default]
    Thread,
    /// Whichever application thread blocks; a fallback thread when none
    /// has for [`FALLBACK_AFTER`].
    Inline,
}

impl std::str::FromStr for Driver {
    type Err = String;

    /// Parses `thread` or `inline`, ignoring ASCII case and surrounding
    /// white space.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        if name.eq_ignore_ascii_case("thread") {
            Ok(Driver::Thread)
        } else if name.eq_ignore_ascii_case("inline") {
            Ok(Driver::Inline)
        } else {
            Err(format!(
                "unknown driver {s:?}: expected \"thread\" or \"inline\""
            ))
        }
    }
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Driver::Thread => "thread",
            Driver::Inline => "inline",
        })
    }
}

/// What ends a leader's driving, besides its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WakeOn {
    /// An event of this connection or listener.
    Source(Source),
    /// A source registered with this poll became a candidate.
    Poll(u64),
    /// Any event at all (the idle and linger waits).
    Any,
    /// Nothing: the fallback thread leads until somebody else waits.
    Never,
}

/// The thread that drives in inline mode, and whether its wait is over.
#[derive(Debug)]
pub(super) struct Leader {
    thread: ThreadId,
    wake: WakeOn,
    woken: bool,
}

impl Leader {
    /// The stack reported an event of `src`, which marked poll `poll`.
    pub(super) fn note(&mut self, src: Source, poll: Option<u64>) {
        self.woken |= match self.wake {
            WakeOn::Source(s) => s == src,
            WakeOn::Poll(p) => poll == Some(p),
            WakeOn::Any => true,
            WakeOn::Never => false,
        };
    }

    /// True if the wait of the leader is over and the leader is another
    /// thread (which sleeps in ppoll and must be poked).
    pub(super) fn woken_elsewhere(&self) -> bool {
        self.woken && self.thread != std::thread::current().id()
    }

    fn new(wake: WakeOn) -> Leader {
        Leader {
            thread: std::thread::current().id(),
            wake,
            woken: false,
        }
    }
}

/// The fallback thread's loop ([`Driver::Inline`]): every
/// [`FALLBACK_AFTER`], if nobody leads and nobody has served the device
/// for that long, lead until some application thread waits (it pokes the
/// eventfd then) and hand over.
pub(super) fn fallback(shared: &Shared) {
    let mut core = shared.lock();
    while !shared.stop.load(Ordering::SeqCst) && core.dead.is_none() {
        let idle = core.last_served.elapsed();
        if core.leader.is_some() || idle < FALLBACK_AFTER {
            // A leader drives (it may sleep in ppoll for long while the
            // device is quiet): look again a full period later, not every
            // millisecond of its sleep.
            let wait = if core.leader.is_some() {
                FALLBACK_AFTER
            } else {
                FALLBACK_AFTER
                    .saturating_sub(idle)
                    .max(Duration::from_millis(1))
            };
            core = shared
                .fallback_cond
                .wait_timeout(core, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            continue;
        }
        core.leader = Some(Leader::new(WakeOn::Never));
        while core.followers == 0 && core.dead.is_none() && !shared.stop.load(Ordering::SeqCst) {
            core = drive_once(shared, core, None);
        }
        shared.resign(&mut core);
    }
    debug!("fallback driver stopped");
}

/// The driver thread's loop ([`Driver::Thread`]).
pub(super) fn drive(shared: &Shared) {
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let core = drive_once(shared, shared.lock(), None);
        if core.dead.is_some() {
            break;
        }
    }
    debug!("driver thread stopped");
}

impl Shared {
    /// Blocks the calling thread until something of `wake` happens (the
    /// runtime notifies `cond` then) or `deadline` passes; in inline mode
    /// it drives meanwhile if nobody else does. Returns the guard and
    /// whether the deadline passed. Like a condition variable, it may
    /// return early: callers re-check their condition.
    pub(super) fn park<'a>(
        &'a self,
        mut core: MutexGuard<'a, Core>,
        cond: &Condvar,
        wake: WakeOn,
        deadline: Option<std::time::Instant>,
    ) -> (MutexGuard<'a, Core>, bool) {
        if !self.will_lead(&core) {
            if core
                .leader
                .as_ref()
                .is_some_and(|l| l.wake == WakeOn::Never)
            {
                // The fallback leads: make it hand over.
                self.wake_driver();
            }
            core.followers += 1;
            let (mut core, timed_out) = timed_wait(cond, core, deadline);
            core.followers -= 1;
            return (core, timed_out);
        }
        core.leader = Some(Leader::new(wake));
        let timed_out = loop {
            let limit = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            core = drive_once(self, core, limit);
            let over = core.dead.is_some() || core.leader.as_ref().is_some_and(|l| l.woken);
            if over {
                break false;
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                break true;
            }
        };
        self.resign(&mut core);
        (core, timed_out)
    }

    /// True if a thread that parks now leads (drives) instead of sleeping.
    pub(super) fn will_lead(&self, core: &Core) -> bool {
        self.inline && core.leader.is_none()
    }

    /// Inline mode, outside any wait: if nobody leads, serve what the
    /// device holds without sleeping (the lock is held throughout, so no
    /// leader role is needed), so a poll loop that always finds something
    /// ready, or a busy writer, still reads the device.
    pub(super) fn drive_now(&self, core: &mut Core) {
        if self.will_lead(core) && core.dead.is_none() {
            serve_now(self, core);
        }
    }

    /// The leader stops driving; the followers wake so that one of them
    /// leads next (each re-checks its own wait first).
    fn resign(&self, core: &mut Core) {
        core.leader = None;
        if core.followers > 0 {
            core.waiters.wake_all();
            core.polls.wake_all();
            self.cond.notify_all();
        }
    }
}

/// One round of driving: wait for work (without the lock) at most `limit`
/// and until the next timer, then serve what came. A device error makes
/// the runtime dead (see [`Shared::fail_locked`]).
pub(super) fn drive_once<'a>(
    shared: &'a Shared,
    mut core: MutexGuard<'a, Core>,
    limit: Option<Duration>,
) -> MutexGuard<'a, Core> {
    let next = core.next_deadline();
    core.driver_deadline = next;
    let timer = next.map(|t| t.saturating_duration_since(shared.now()));
    let timeout = match (timer, limit) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if timeout != Some(Duration::ZERO) {
        drop(core);
        let waited = wait_for_work(shared, timeout);
        core = shared.lock();
        if let Err(err) = waited {
            error!("poll failed: {err}");
            shared.fail_locked(&mut core, err.to_string());
            return core;
        }
    }
    serve_now(shared, &mut core);
    core
}

/// Serves what the device holds now, without sleeping; a device error
/// makes the runtime dead.
pub(super) fn serve_now(shared: &Shared, core: &mut Core) {
    if let Some(e) = serve_batches(shared, core) {
        error!("device read failed: {e}");
        shared.fail_locked(core, e.to_string());
    }
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

/// *Drain, then dispatch*: read up to `RX_BATCH` packets into the stack,
/// release held packets, run the timers, flush; again while full batches
/// keep coming. Returns the device's error if a read failed.
fn serve_batches(shared: &Shared, core: &mut Core) -> Option<io::Error> {
    let mut rx = std::mem::take(&mut core.rx);
    core.serving = true;
    core.sent_unread = 0;
    let mut rereads = 0;
    let fatal = loop {
        let sent_before = core.sent_unread;
        let (got, fatal) = read_batch(shared, core, &mut rx);
        let now = shared.now();
        let Core {
            stack,
            impair,
            capture,
            ..
        } = &mut *core;
        if let Some(imp) = impair {
            imp.poll_release(now, |dir, p| match dir {
                Direction::In => into_stack(stack, capture, now, p),
                Direction::Out => shared.send(p),
            });
        }
        stack.handle_timeout(now);
        shared.flush(core);
        if fatal.is_some() {
            break fatal;
        }
        // A TUN write runs the kernel's receive path inside the syscall, so
        // its answer (the ACK of a SYN-ACK, the next data after an ACK) may
        // be queued already: read again before sleeping in ppoll.
        let sent = core.sent_unread > sent_before;
        if got < RX_BATCH && !(sent && rereads < REREADS) {
            break None;
        }
        rereads += usize::from(got < RX_BATCH);
    };
    core.rx = rx;
    core.serving = false;
    core.last_served = std::time::Instant::now();
    fatal
}

/// Reads packets without blocking into the stack (through the impairer when
/// one is configured), at most `RX_BATCH`; returns how many, and the
/// device's error if a read failed.
fn read_batch(shared: &Shared, core: &mut Core, rx: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut got = 0;
    while got < RX_BATCH {
        match shared.device.recv(rx) {
            Ok(r) => {
                got += 1;
                let end = (r.start + r.len).min(rx.len());
                let pkt = &mut rx[r.start.min(end)..end];
                let now = shared.now();
                receive(core, now, pkt, r.vnet);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

/// One packet from the device into the stack: an offload device's header
/// checked first ([`VnetHeader::check`]); through the impairer, which holds
/// plain packets only, with its partial checksum completed.
fn receive(core: &mut Core, now: Instant, pkt: &mut [u8], vnet: Option<VnetHeader>) {
    let Core {
        stack,
        impair,
        capture,
        ..
    } = core;
    let partial = match vnet.map_or(Ok(false), |h| h.check(pkt)) {
        Ok(p) => p,
        Err(reason) => return stack.count_drop(reason, pkt.len()),
    };
    match impair {
        Some(imp) => {
            if partial {
                // Not TCP-shaped enough to complete: the stack drops it.
                let _ = wire::complete_tcp_checksum(pkt);
            }
            imp.handle_packet(now, Direction::In, pkt, |p| {
                into_stack(stack, capture, now, p)
            })
        }
        None => stack.handle_packet_with(now, pkt, partial),
    }
}

/// A packet the impairer lets through into the stack, recorded first by a
/// capture at [`CapturePoint::Stack`](crate::device::pcap::CapturePoint).
fn into_stack(
    stack: &mut crate::stack::Stack,
    capture: &Option<std::sync::Arc<crate::device::pcap::Capture>>,
    now: Instant,
    p: &[u8],
) {
    if let Some(c) = capture {
        c.record(p);
    }
    stack.handle_packet(now, p);
}
