//! The adapter proper: a socket table, a clock and an output queue around a
//! [`utcp::stack::Stack`], with the socket calls' Linux semantics.
//!
//! Everything here works on Rust types and returns `Result<_, Errno>`; the
//! `extern "C"` layer in `lib.rs` checks pointers and sets `errno`.
//!
//! Threads: packetdrill calls the socket functions from a system-call thread
//! and the netdev/clock functions from its main thread. One mutex guards the
//! whole state. A blocking call that cannot proceed sleeps on a condition
//! variable; whatever may unblock it (a packet in, a timer, another call)
//! notifies. The main thread then waits until every woken sleeper has looked
//! at the new state ([`Adapter::settle`]) before it goes on, so that, for
//! example, a blocked `write` has queued its next segment before packetdrill
//! asks `netdev_receive` for it.
//!
//! The pieces, by concept: `sock` (the socket table's entries),
//! `setup` (socket, bind, listen, accept, connect), `data` (recv,
//! send), `close` (close, shutdown), `options` (getsockopt,
//! setsockopt, fcntl, ioctl), `poll` and `epoll` (readiness), `pipe`,
//! `netdev` (packets in and out), `clock` (the fake or real clock and
//! the timers), `wait` (blocking calls and waking them) and `errno`
//! (the core's errors as Linux errnos).

mod clock;
mod close;
mod data;
mod epoll;
mod errno;
mod netdev;
mod options;
mod pipe;
mod poll;
mod setup;
mod sock;
mod wait;

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libc::c_int;
use utcp::stack::Stack;

use crate::flags::{ClockMode, Flags};

use clock::Clock;
use epoll::Epoll;
pub use errno::{errno_of, errno_of_ended, errno_of_error};
use sock::Sock;

/// An `errno` value.
pub type Errno = c_int;
/// The result of a socket call: a value or an `errno`.
pub type Res<T> = Result<T, Errno>;

/// Start of the fake clock, in µs since the Unix epoch (2023-11-14).
const FAKE_EPOCH_US: u64 = 1_700_000_000_000_000;
/// How long the main thread waits, in real time, for woken sleepers.
const SETTLE_LIMIT: Duration = Duration::from_secs(2);
/// First port handed out by bind(port 0) and listen() without bind (Linux's
/// default ip_local_port_range starts here).
const EPHEMERAL_FIRST: u16 = 32768;
/// Upper bound on timer rounds in one clock jump (a stuck timer must not hang us).
const MAX_TIMER_ROUNDS: usize = 100_000;

#[derive(Debug)]
struct Inner {
    flags: Flags,
    stack: Stack,
    clock: Clock,
    /// The value of `now_us()` at which the stack's clock read STACK_START_US.
    base_us: u64,
    /// Packets out of the stack with their send time, oldest first.
    out: VecDeque<(Vec<u8>, u64)>,
    buf: Vec<u8>,
    socks: HashMap<c_int, Sock>,
    epolls: HashMap<c_int, Epoll>,
    /// Kernel pipes made by pipe(); read, write, fcntl and poll on them go to
    /// the kernel. Closed by close() or when the adapter is freed.
    pipes: HashMap<c_int, OwnedFd>,
    next_port: u16,
    /// Threads asleep in [`Adapter::block`].
    sleepers: usize,
    /// Sleepers that were notified and have not yet looked at the state.
    pending_wake: usize,
    /// Sleepers with a deadline (poll with a timeout).
    timed_sleepers: usize,
    /// Time of the last netdev_send or usleep (see IDLE_LIMIT_US).
    last_input_us: u64,
}

/// The adapter: one stack, its sockets and its clock. Shared by packetdrill's
/// threads through the `userdata` pointer.
#[derive(Debug)]
pub struct Adapter {
    inner: Mutex<Inner>,
    /// Signalled whenever the state changed in a way a blocked call may care about.
    changed: Condvar,
    /// Signalled when the last woken sleeper has looked at the state.
    settled: Condvar,
    mode: ClockMode,
}

type Guard<'a> = MutexGuard<'a, Inner>;

impl Adapter {
    /// An adapter with the given configuration.
    pub fn new(flags: Flags) -> Adapter {
        let (clock, base_us) = match flags.clock {
            ClockMode::Fake => (
                Clock::Fake {
                    now_us: FAKE_EPOCH_US,
                },
                FAKE_EPOCH_US,
            ),
            ClockMode::Real => {
                let base_us = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(FAKE_EPOCH_US, |d| {
                        u64::try_from(d.as_micros()).unwrap_or(FAKE_EPOCH_US)
                    });
                (
                    Clock::Real {
                        start: std::time::Instant::now(),
                        base_us,
                    },
                    base_us,
                )
            }
        };
        let cfg = flags.stack_config();
        let mtu = cfg.mtu;
        Adapter {
            mode: flags.clock,
            inner: Mutex::new(Inner {
                stack: Stack::new(cfg),
                clock,
                base_us,
                out: VecDeque::new(),
                buf: vec![0; mtu.max(1500)],
                socks: HashMap::new(),
                epolls: HashMap::new(),
                pipes: HashMap::new(),
                next_port: EPHEMERAL_FIRST,
                sleepers: 0,
                pending_wake: 0,
                timed_sleepers: 0,
                last_input_us: base_us,
                flags,
            }),
            changed: Condvar::new(),
            settled: Condvar::new(),
        }
    }

    fn lock(&self) -> Guard<'_> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stack's address.
    pub fn addr(&self) -> Ipv4Addr {
        self.lock().stack.addr()
    }

    /// The reserved fd of socket `fd` is still open (for tests).
    pub fn has_socket(&self, fd: c_int) -> bool {
        self.lock()
            .socks
            .get(&fd)
            .is_some_and(|s| s.fd.as_raw_fd() == fd)
    }
}
