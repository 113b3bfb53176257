//! Readiness through epoll: epoll instances and their interest lists,
//! epoll_create, epoll_ctl and epoll_wait.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};

use libc::c_int;

use super::sock::Kind;
use super::{Adapter, Inner, Res};

/// One fd in an epoll instance's interest list.
#[derive(Debug)]
pub(super) struct Interest {
    /// The EPOLL* bits asked for, EPOLLET and EPOLLONESHOT included.
    events: u32,
    /// `epoll_event.data`, handed back as it came.
    data: u64,
    /// EPOLLONESHOT: reported once, now off until EPOLL_CTL_MOD.
    disarmed: bool,
    /// EPOLLET: the bits last seen ready, and the receive/send queue
    /// lengths then (new data or freed room is a new edge, as on Linux).
    last: u32,
    queues: (usize, usize),
}

/// An epoll instance: a reserved kernel fd (an eventfd, like sockets) and
/// its interest list, in fd order.
#[derive(Debug)]
pub(super) struct Epoll {
    pub(super) fd: OwnedFd,
    pub(super) interest: BTreeMap<c_int, Interest>,
}

impl Adapter {
    /// epoll_create(2): a new epoll instance (EINVAL for a size below 1).
    pub fn epoll_create(&self, size: c_int) -> Res<c_int> {
        if size <= 0 {
            return Err(libc::EINVAL);
        }
        let fd = Inner::reserve_fd()?;
        let raw = fd.as_raw_fd();
        self.lock().epolls.insert(
            raw,
            Epoll {
                fd,
                interest: BTreeMap::new(),
            },
        );
        Ok(raw)
    }

    /// epoll_ctl(2) on one of our sockets; `ev` is (events, data), needed
    /// for ADD and MOD.
    pub fn epoll_ctl(&self, epfd: c_int, op: c_int, fd: c_int, ev: Option<(u32, u64)>) -> Res<()> {
        let mut g = self.lock();
        if !g.epolls.contains_key(&epfd) {
            return Err(if g.socks.contains_key(&epfd) {
                libc::EINVAL
            } else {
                libc::EBADF
            });
        }
        if fd == epfd {
            return Err(libc::EINVAL);
        }
        if !g.socks.contains_key(&fd) {
            // Nested epoll instances are not supported.
            return Err(if g.epolls.contains_key(&fd) {
                libc::EPERM
            } else {
                libc::EBADF
            });
        }
        let ep = g.epolls.get_mut(&epfd).ok_or(libc::EBADF)?;
        match op {
            libc::EPOLL_CTL_ADD | libc::EPOLL_CTL_MOD => {
                let (events, data) = ev.ok_or(libc::EFAULT)?;
                let entry = Interest {
                    events,
                    data,
                    disarmed: false,
                    last: 0,
                    queues: (0, usize::MAX),
                };
                let exists = ep.interest.contains_key(&fd);
                match (op == libc::EPOLL_CTL_ADD, exists) {
                    (true, true) => return Err(libc::EEXIST),
                    (false, false) => return Err(libc::ENOENT),
                    _ => {}
                }
                ep.interest.insert(fd, entry);
            }
            libc::EPOLL_CTL_DEL => {
                ep.interest.remove(&fd).ok_or(libc::ENOENT)?;
            }
            _ => return Err(libc::EINVAL),
        }
        self.notify(&mut g);
        Ok(())
    }

    /// The ready events of `epfd`'s interest list, at most `max`, as
    /// (events, data); updates edge-triggered and one-shot entries.
    fn epoll_ready(g: &mut Inner, epfd: c_int, max: usize) -> Res<Vec<(u32, u64)>> {
        let fds: Vec<c_int> = g
            .epolls
            .get(&epfd)
            .ok_or(libc::EBADF)?
            .interest
            .keys()
            .copied()
            .collect();
        let mut out = Vec::new();
        for fd in fds {
            if out.len() >= max {
                break;
            }
            // Every poll bit has the same value as its EPOLL* twin on Linux.
            let all = libc::POLLIN
                | libc::POLLPRI
                | libc::POLLOUT
                | libc::POLLRDNORM
                | libc::POLLWRNORM
                | libc::POLLRDHUP;
            let mask = Self::revents(g, fd, all) as u16 as u32;
            let queues = match g.socks.get(&fd).map(|s| &s.kind) {
                Some(Kind::Conn { id }) => g
                    .stack
                    .tcb(*id)
                    .map_or((0, 0), |t| (t.recv_queued(), t.send_queued())),
                _ => (0, 0),
            };
            let Some(e) = g
                .epolls
                .get_mut(&epfd)
                .and_then(|ep| ep.interest.get_mut(&fd))
            else {
                continue;
            };
            if e.disarmed {
                continue;
            }
            let ready = mask & (e.events | libc::EPOLLERR as u32 | libc::EPOLLHUP as u32);
            let report = if e.events & libc::EPOLLET as u32 != 0 {
                let new_bits = ready & !e.last != 0;
                let new_data = ready & libc::EPOLLIN as u32 != 0 && queues.0 > e.queues.0;
                let new_room = ready & libc::EPOLLOUT as u32 != 0 && queues.1 < e.queues.1;
                e.last = ready;
                e.queues = queues;
                new_bits || new_data || new_room
            } else {
                ready != 0
            };
            if report && ready != 0 {
                if e.events & libc::EPOLLONESHOT as u32 != 0 {
                    e.disarmed = true;
                }
                out.push((ready, e.data));
            }
        }
        Ok(out)
    }

    /// epoll_wait(2): level-triggered by default, EPOLLET and EPOLLONESHOT
    /// honoured; a negative timeout waits forever.
    pub fn epoll_wait(&self, epfd: c_int, max: c_int, timeout_ms: c_int) -> Res<Vec<(u32, u64)>> {
        if max <= 0 {
            return Err(libc::EINVAL);
        }
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        let mut g = self.lock();
        if !g.epolls.contains_key(&epfd) {
            return Err(if g.socks.contains_key(&epfd) {
                libc::EINVAL
            } else {
                libc::EBADF
            });
        }
        let deadline =
            (timeout_ms > 0).then(|| g.now_us() + u64::try_from(timeout_ms).unwrap_or(0) * 1000);
        loop {
            let ready = Self::epoll_ready(&mut g, epfd, max)?;
            if !ready.is_empty() || timeout_ms == 0 || deadline.is_some_and(|d| g.now_us() >= d) {
                return Ok(ready);
            }
            g = self.block(g, deadline);
        }
    }
}
