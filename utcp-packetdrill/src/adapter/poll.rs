//! Readiness: poll, and the poll bits of one fd (which epoll shares).

use libc::c_int;
use utcp::state::State;

use super::sock::Kind;
use super::{Adapter, Inner, Res};

impl Adapter {
    pub(super) fn revents(g: &mut Inner, fd: c_int, events: i16) -> i16 {
        if fd < 0 {
            return 0;
        }
        if !g.socks.contains_key(&fd) {
            if !g.pipes.contains_key(&fd) {
                return libc::POLLNVAL;
            }
            // A pipe: ask the kernel, without waiting.
            let mut p = libc::pollfd {
                fd,
                events,
                revents: 0,
            };
            // SAFETY: one valid pollfd; a zero timeout does not block.
            let r = unsafe { libc::poll(&mut p, 1, 0) };
            return if r < 0 { libc::POLLNVAL } else { p.revents };
        }
        g.pull_accepts(fd);
        let Inner { socks, stack, .. } = g;
        let Some(sock) = socks.get(&fd) else {
            return libc::POLLNVAL;
        };
        let m = match &sock.kind {
            Kind::Fresh => libc::POLLOUT | libc::POLLWRNORM | libc::POLLHUP,
            Kind::Listener { ready, .. } => {
                if ready.is_empty() {
                    0
                } else {
                    libc::POLLIN | libc::POLLRDNORM
                }
            }
            Kind::Conn { id } => match stack.tcb(*id) {
                None => libc::POLLHUP,
                Some(t) => {
                    let mut m = 0;
                    if t.can_recv() {
                        m |= libc::POLLIN | libc::POLLRDNORM;
                    }
                    let st = t.state();
                    if st.is_synchronized() && t.can_send() {
                        m |= libc::POLLOUT | libc::POLLWRNORM;
                    }
                    // The peer's FIN (or the end of the connection) shuts
                    // our receiving side: POLLRDHUP, as Linux's tcp_poll.
                    if matches!(
                        st,
                        State::CloseWait
                            | State::LastAck
                            | State::Closing
                            | State::TimeWait
                            | State::Closed
                    ) {
                        m |= libc::POLLRDHUP;
                    }
                    if st == State::Closed {
                        m |= libc::POLLHUP;
                        if t.error().is_some() && !sock.error_reported {
                            m |= libc::POLLERR;
                        }
                    }
                    m
                }
            },
        };
        m & (events | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL)
    }

    /// poll(2) over `fds`; a negative timeout waits forever. Returns how many
    /// entries have events.
    pub fn poll(&self, fds: &mut [libc::pollfd], timeout_ms: c_int) -> Res<c_int> {
        let mut g = self.lock();
        let deadline =
            (timeout_ms > 0).then(|| g.now_us() + u64::try_from(timeout_ms).unwrap_or(0) * 1000);
        loop {
            let mut n = 0;
            for p in fds.iter_mut() {
                p.revents = Self::revents(&mut g, p.fd, p.events);
                if p.revents != 0 {
                    n += 1;
                }
            }
            if n > 0 || timeout_ms == 0 || deadline.is_some_and(|d| g.now_us() >= d) {
                return Ok(n);
            }
            g = self.block(g, deadline);
        }
    }
}
