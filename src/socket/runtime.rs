//! The runtime around the core: the shared state behind one lock, the
//! condition variable application threads sleep on, and [`NetStack`].

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use log::{debug, error};

use super::trace::TraceFile;
use crate::device::impair::{Direction, ImpairStats, Impairer, Impairment};
use crate::device::pcap::{Capture, CapturePoint, PcapDevice};
use crate::device::tun::{TunDevice, TunOptions};
use crate::device::vnet::VNET_HDR_LEN;
use crate::device::Device;
use crate::gso::{self, TxOffload};
use crate::stack::{ConnId, Stack, StackConfig, StackStats};
use crate::state::State;
use crate::time::Instant;

use super::driver::{drive, fallback, Driver, Leader, WakeOn, TX_PER_RX};
use super::poll::PollTable;
use super::wake::{source_of, Source, Waiters};

/// How long dropping the last handle of a [`NetStack`] waits for connections
/// to finish closing (our FINs acknowledged) before stopping the driver.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(3);

/// The largest IPv4 packet, and so the largest super-segment a device
/// takes.
const MAX_SUPER_PACKET: usize = 65_535;

pub(super) struct Core {
    pub(super) stack: Stack,
    /// Where the stack writes packets: one MTU, or a super-segment's
    /// 64 KB when the device offloads.
    pub(super) out: Vec<u8>,
    /// Where packets are finished in software for the impairer.
    pub(super) tx_scratch: Vec<u8>,
    /// When the driver plans to wake next (None: only on I/O).
    pub(super) driver_deadline: Option<Instant>,
    /// The device failed; every call reports this.
    pub(super) dead: Option<String>,
    /// Deliberate packet loss/duplication/delay, if configured.
    pub(super) impair: Option<Impairer>,
    /// The capture at [`CapturePoint::Stack`] when an impairer sits
    /// between it and the device (else the device records).
    pub(super) capture: Option<Arc<Capture>>,
    /// Threads blocked on one connection or listener.
    pub(super) waiters: Waiters,
    /// Threads in [`NetStack::wait_idle`] or the linger wait.
    pub(super) idle_waiters: usize,
    /// Every `Poll`: registrations and ready-sets.
    pub(super) polls: PollTable,
    /// Where the driving thread reads packets into.
    pub(super) rx: Vec<u8>,
    /// Inline mode: the thread driving now, if any.
    pub(super) leader: Option<Leader>,
    /// Packets sent since the device was last read (inline mode reads
    /// after [`TX_PER_RX`] of them).
    pub(super) sent_unread: usize,
    /// When the device was last served (the fallback thread's clock).
    pub(super) last_served: std::time::Instant,
    /// Threads blocked in [`Shared::park`] while another one drives.
    pub(super) followers: usize,
    /// The driving thread is serving a batch (under this lock): it reads
    /// the next deadline itself before it sleeps again, so nobody needs to
    /// poke it.
    pub(super) serving: bool,
}

impl Core {
    /// Tells an inline leader that `src` (registered with `poll`) had
    /// something happen: it may end the leader's wait.
    pub(super) fn tell_leader(&mut self, src: Source, poll: Option<u64>) {
        if let Some(l) = &mut self.leader {
            l.note(src, poll);
        }
    }

    /// The earliest moment the driver must act: a TCP timer or a held packet.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        let held = self.impair.as_ref().and_then(Impairer::poll_timeout);
        [self.stack.poll_timeout(), held]
            .into_iter()
            .flatten()
            .min()
    }
}

pub(super) struct Shared {
    pub(super) core: Mutex<Core>,
    /// Where the idle and linger waits sleep.
    pub(super) cond: Condvar,
    /// Where the fallback thread sleeps between its looks.
    pub(super) fallback_cond: Condvar,
    pub(super) wake: OwnedFd,
    pub(super) device: Box<dyn Device>,
    pub(super) epoch: std::time::Instant,
    /// Where the congestion trace goes (`RuntimeOptions::trace`).
    pub(super) trace: Option<Arc<TraceFile>>,
    pub(super) stop: AtomicBool,
    /// [`Driver::Inline`]: application threads drive, no driver thread.
    pub(super) inline: bool,
}

impl Shared {
    pub(super) fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock poisons it; the state is still usable.
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn wake_driver(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a valid u64 to our eventfd.
        unsafe {
            libc::write(
                self.wake.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            );
        }
    }

    /// Transmits what every connection has ready and wakes the driver if
    /// its deadline moved earlier.
    pub(super) fn flush(&self, core: &mut Core) {
        self.flush_some(core, None);
    }

    /// Like [`flush`](Self::flush) after an application call on connection
    /// `id`: only that connection's output (and queued resets) is sent.
    pub(super) fn flush_conn(&self, core: &mut Core, id: ConnId) {
        self.flush_some(core, Some(id));
    }

    /// The stack's packets to the device, each in pieces: on an offload
    /// device a data segment's payload comes straight from the send buffer
    /// and the device writes it with the headers in one `writev`
    /// ([`Device::send_vectored`]); otherwise the first piece is the whole
    /// packet. The impairer works on finished packets of the wire, so with
    /// one the pieces are joined and finished here (the stack wrote them,
    /// so they are well formed).
    fn transmit(&self, core: &mut Core, id: Option<ConnId>, now: Instant) {
        let Core {
            stack,
            out,
            impair,
            capture,
            sent_unread,
            tx_scratch,
            ..
        } = core;
        let emit = |head: &[u8], payload: [&[u8]; 2], offload: TxOffload| {
            *sent_unread += 1;
            let Some(imp) = impair.as_mut() else {
                return self.send_vectored(head, payload, offload);
            };
            let joined;
            let pkt = if payload.iter().all(|p| p.is_empty()) {
                head
            } else {
                joined = [head, payload[0], payload[1]].concat();
                &joined
            };
            let r = gso::finish(pkt, offload, tx_scratch, |p| {
                if let Some(c) = capture {
                    c.record(p);
                }
                imp.handle_packet(now, Direction::Out, p, |q| self.send(q))
            });
            if let Err(e) = r {
                debug!("cannot finish an outgoing packet: {e}");
            }
        };
        match id {
            Some(id) => stack.poll_transmit_conn_vectored(now, id, out, emit),
            None => stack.poll_transmit_vectored(now, out, emit),
        }
    }

    pub(super) fn flush_some(&self, core: &mut Core, id: Option<ConnId>) {
        let now = self.now();
        self.transmit(core, id, now);
        self.dispatch(core);
        if core.serving {
            // The driving thread reads the deadline before it sleeps again.
            return;
        }
        if self.will_lead(core) {
            // Inline mode and nobody sleeps in ppoll (the next leader reads
            // the deadline). An application busy writing reads what came
            // in meanwhile, before the device's queue overflows.
            if core.sent_unread >= TX_PER_RX {
                self.drive_now(core);
            }
            return;
        }
        let next = core.next_deadline();
        if let Some(next) = next {
            if core.driver_deadline.is_none_or(|d| next < d) {
                core.driver_deadline = Some(next);
                self.wake_driver();
            }
        }
    }

    pub(super) fn send(&self, pkt: &[u8]) {
        if let Err(e) = self.device.send(pkt) {
            debug!("device send failed: {e}");
        }
    }

    /// Writes a packet in pieces, which the device finishes (a partial
    /// checksum, a super-segment; [`crate::gso`]).
    fn send_vectored(&self, head: &[u8], payload: [&[u8]; 2], offload: TxOffload) {
        if let Err(e) = self.device.send_vectored(head, payload, offload) {
            debug!("device send failed: {e}");
        }
    }

    /// Drains the stack's events and wakes the threads blocked on the
    /// sources they concern, and the idle waiters (whose connections may
    /// change state without an event: orphans report none). An inline
    /// leader whose wait is over while it sleeps in ppoll is poked.
    pub(super) fn dispatch(&self, core: &mut Core) {
        let mut any = false;
        while let Some(ev) = core.stack.poll_event() {
            self.note_source(core, source_of(&ev));
            any = true;
        }
        if let Some(trace) = &self.trace {
            trace.drain(&mut core.stack, self.now());
        }
        if core.idle_waiters > 0 {
            self.cond.notify_all();
        }
        if any {
            self.poke_leader(core);
        }
    }

    /// Something happened to `src` outside the stack's events (a
    /// `shutdown` from another thread): wake whoever waits on it.
    pub(super) fn wake_source(&self, core: &mut Core, src: Source) {
        self.note_source(core, src);
        self.poke_leader(core);
    }

    /// Wakes the threads blocked on `src`, makes it a candidate of its
    /// poll, and tells an inline leader.
    fn note_source(&self, core: &mut Core, src: Source) {
        core.waiters.wake(src);
        let poll = core.polls.mark(src);
        core.tell_leader(src, poll);
    }

    /// Wakes the inline leader from its ppoll if its wait is over and it
    /// is another thread. A thread serving a batch is the leader itself
    /// (or there is none), so it never needs to look up who it is.
    pub(super) fn poke_leader(&self, core: &Core) {
        if !core.serving && core.leader.as_ref().is_some_and(Leader::woken_elsewhere) {
            self.wake_driver();
        }
    }

    /// Waits until an event of `src` (or the device's death), until
    /// `deadline` if given. Returns the guard and whether the deadline passed.
    pub(super) fn wait_on<'a>(
        &'a self,
        mut guard: MutexGuard<'a, Core>,
        src: Source,
        deadline: Option<std::time::Instant>,
    ) -> (MutexGuard<'a, Core>, bool) {
        let cond = guard.waiters.enter(src);
        let (mut guard, timed_out) = self.park(guard, &cond, WakeOn::Source(src), deadline);
        guard.waiters.leave(src);
        (guard, timed_out)
    }

    /// Waits for any change that may make the stack idle (see [`busy`]),
    /// until `deadline`. Returns the guard and whether the deadline passed.
    pub(super) fn wait_idle_change<'a>(
        &'a self,
        mut guard: MutexGuard<'a, Core>,
        deadline: std::time::Instant,
    ) -> (MutexGuard<'a, Core>, bool) {
        guard.idle_waiters += 1;
        let (mut guard, timed_out) = self.park(guard, &self.cond, WakeOn::Any, Some(deadline));
        guard.idle_waiters -= 1;
        (guard, timed_out)
    }

    /// The device failed: every later call reports `msg`; wake everybody.
    pub(super) fn fail_locked(&self, core: &mut Core, msg: String) {
        core.dead = Some(msg);
        core.waiters.wake_all();
        core.polls.wake_all();
        self.cond.notify_all();
    }
}

/// Waits on `cond`, until `deadline` if given. Returns the guard and
/// whether the deadline passed.
pub(super) fn timed_wait<'a>(
    cond: &Condvar,
    guard: MutexGuard<'a, Core>,
    deadline: Option<std::time::Instant>,
) -> (MutexGuard<'a, Core>, bool) {
    match deadline {
        None => (cond.wait(guard).unwrap_or_else(|e| e.into_inner()), false),
        Some(d) => {
            let left = d.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return (guard, true);
            }
            let (g, _) = cond
                .wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner());
            (g, std::time::Instant::now() >= d)
        }
    }
}

pub(super) fn dead_error(msg: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        format!("network device failed: {msg}"),
    )
}

/// Options of the runtime around the core.
#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// Deliberate impairment of the device's packets, in and out.
    pub impairment: Option<Impairment>,
    /// How long dropping the last handle waits for closing connections.
    pub linger: Duration,
    /// Who drives the device: a driver thread (the default) or the
    /// application's threads while they wait ([`Driver`]).
    pub driver: Driver,
    /// [`NetStack::tun_with_options`] opens the TUN device with offload
    /// (virtio-net headers, checksum offload, TSO; see `device::vnet`).
    pub offload: bool,
    /// Record every packet in and out into this capture file (`utcp
    /// --pcap FILE`; see `device::pcap`). Shards may share one.
    pub capture: Option<Arc<Capture>>,
    /// Where the capture records, with an impairment: what the stack saw
    /// (the default) or what the device carried (`--pcap-at`).
    pub capture_at: CapturePoint,
    /// Write the stack's congestion trace into this file (`utcp --trace
    /// FILE`; see [`TraceFile`]); turns [`StackConfig::trace`] on. Shards
    /// may share one.
    pub trace: Option<Arc<TraceFile>>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            impairment: None,
            linger: DEFAULT_LINGER,
            driver: Driver::Thread,
            offload: false,
            capture: None,
            capture_at: CapturePoint::Stack,
            trace: None,
        }
    }
}

/// Where a capture records: (on the device, in the runtime around the
/// impairer). Without an impairer the stack's packets are the device's, so
/// the device wrapper records either way.
fn place_capture(
    capture: Option<Arc<Capture>>,
    at: CapturePoint,
    impaired: bool,
) -> (Option<Arc<Capture>>, Option<Arc<Capture>>) {
    match capture {
        Some(c) if !impaired || at == CapturePoint::Device => (Some(c), None),
        c => (None, c),
    }
}

/// Owns the driver thread; dropped when the last user handle goes.
pub(super) struct Runtime {
    pub(super) shared: Arc<Shared>,
    pub(super) thread: Mutex<Option<JoinHandle<()>>>,
    pub(super) linger: Duration,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Give closing connections a moment to get their FINs acknowledged.
        let deadline = std::time::Instant::now() + self.linger;
        let mut core = self.shared.lock();
        while core.dead.is_none() && busy(&core.stack) {
            let (g, timed_out) = self.shared.wait_idle_change(core, deadline);
            core = g;
            if timed_out {
                debug!("linger time over with connections still closing");
                break;
            }
        }
        drop(core);
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake_driver();
        self.shared.fallback_cond.notify_all();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            if h.join().is_err() {
                error!("the driver thread panicked");
            }
        }
    }
}

/// True while some connection still has a handshake or a close in progress.
fn busy(stack: &Stack) -> bool {
    stack.connection_states().any(|s| {
        !matches!(
            s,
            State::Closed | State::TimeWait | State::Listen | State::FinWait2
        )
    })
}

/// A running utcp stack: a device, the TCP core and its driver thread.
///
/// Cheap to clone (all clones share one stack). The driver stops when the
/// last `NetStack`, [`TcpListener`](crate::socket::TcpListener) and [`TcpStream`](crate::socket::TcpStream) of it is dropped, after
/// waiting up to [`DEFAULT_LINGER`] for connections that are still closing.
#[derive(Clone)]
pub struct NetStack {
    pub(super) rt: Arc<Runtime>,
}

impl std::fmt::Debug for NetStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetStack")
            .field("addr", &self.rt.shared.lock().stack.addr())
            .finish()
    }
}

impl NetStack {
    /// Attaches to the TUN device `name` and answers for `cfg.addr` on it.
    /// The MSS follows the device's MTU.
    pub fn tun(name: &str, mut cfg: StackConfig) -> io::Result<NetStack> {
        let dev = TunDevice::open(name)?;
        cfg.mtu = dev.mtu();
        NetStack::new(dev, cfg)
    }

    /// Like [`tun`](Self::tun), with runtime options (impairment, linger).
    pub fn tun_with_options(
        name: &str,
        mut cfg: StackConfig,
        opts: RuntimeOptions,
    ) -> io::Result<NetStack> {
        let dev = TunDevice::open_with(
            name,
            TunOptions {
                offload: opts.offload,
                ..TunOptions::default()
            },
        )?;
        cfg.mtu = dev.mtu();
        NetStack::with_options(dev, cfg, opts)
    }

    /// Runs a stack over any [`Device`].
    pub fn new(device: impl Device, cfg: StackConfig) -> io::Result<NetStack> {
        NetStack::with_options(device, cfg, RuntimeOptions::default())
    }

    /// Runs a stack over any [`Device`], with runtime options.
    pub fn with_options(
        device: impl Device,
        mut cfg: StackConfig,
        opts: RuntimeOptions,
    ) -> io::Result<NetStack> {
        cfg.mtu = cfg.mtu.min(device.mtu());
        cfg.trace |= opts.trace.is_some();
        // SAFETY: eventfd(2) with valid flags; we own the returned fd.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let wake = unsafe { OwnedFd::from_raw_fd(fd) };
        if device.tx_offload() {
            // The device completes checksums and cuts super-segments.
            cfg.tcp.checksum_offload = true;
            if cfg.tcp.max_super_segment == 0 {
                cfg.tcp.max_super_segment = MAX_SUPER_PACKET;
            }
        }
        let out_len = if cfg.tcp.max_super_segment > cfg.mtu {
            MAX_SUPER_PACKET
        } else {
            cfg.mtu.max(1500)
        };
        let out = vec![0u8; out_len];
        let rx = vec![0u8; device.max_packet().max(cfg.mtu) + VNET_HDR_LEN];
        let impair = opts.impairment.filter(|i| !i.is_noop()).map(Impairer::new);
        let (device_capture, stack_capture) =
            place_capture(opts.capture, opts.capture_at, impair.is_some());
        let shared = Arc::new(Shared {
            core: Mutex::new(Core {
                stack: Stack::new(cfg),
                out,
                tx_scratch: Vec::new(),
                driver_deadline: None,
                dead: None,
                impair,
                capture: stack_capture,
                waiters: Waiters::default(),
                idle_waiters: 0,
                polls: PollTable::default(),
                rx,
                leader: None,
                followers: 0,
                serving: false,
                sent_unread: 0,
                last_served: std::time::Instant::now(),
            }),
            cond: Condvar::new(),
            fallback_cond: Condvar::new(),
            wake,
            device: match device_capture {
                Some(c) => Box::new(PcapDevice::new(device, c)),
                None => Box::new(device),
            },
            epoch: std::time::Instant::now(),
            trace: opts.trace,
            stop: AtomicBool::new(false),
            inline: opts.driver == Driver::Inline,
        });
        let driver_shared = shared.clone();
        let thread = match opts.driver {
            Driver::Inline => std::thread::Builder::new()
                .name("utcp-fallback".into())
                .spawn(move || fallback(&driver_shared))?,
            Driver::Thread => std::thread::Builder::new()
                .name("utcp-driver".into())
                .spawn(move || drive(&driver_shared))?,
        };
        Ok(NetStack {
            rt: Arc::new(Runtime {
                shared,
                thread: Mutex::new(Some(thread)),
                linger: opts.linger,
            }),
        })
    }

    /// The address the stack answers for.
    pub fn addr(&self) -> std::net::Ipv4Addr {
        self.rt.shared.lock().stack.addr()
    }

    /// A snapshot of the stack-wide counters.
    pub fn stats(&self) -> StackStats {
        self.rt.shared.lock().stack.stats().clone()
    }

    /// What the impairment option did so far (None without impairment).
    pub fn impair_stats(&self) -> Option<ImpairStats> {
        self.rt
            .shared
            .lock()
            .impair
            .as_ref()
            .map(|i| i.stats().clone())
    }

    /// Waits until no connection has a handshake or close in progress, or
    /// `timeout` passes. Returns true if the stack became idle.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let shared = &self.rt.shared;
        let deadline = std::time::Instant::now() + timeout;
        let mut core = shared.lock();
        loop {
            if !busy(&core.stack) {
                return true;
            }
            let (g, timed_out) = shared.wait_idle_change(core, deadline);
            core = g;
            if timed_out {
                return !busy(&core.stack);
            }
        }
    }
}
