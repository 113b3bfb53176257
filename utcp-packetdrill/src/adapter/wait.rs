//! Blocking calls and waking them: a call that cannot proceed sleeps on
//! the condition variable; whatever may unblock it notifies, and the main
//! thread settles (waits for the woken sleepers) before it goes on.

use std::time::Duration;

use libc::c_int;

use super::{Adapter, Guard, Inner, Res, SETTLE_LIMIT};
use crate::flags::ClockMode;

impl Adapter {
    /// Wakes every blocked call so it re-examines the state.
    pub(super) fn notify(&self, g: &mut Guard<'_>) {
        g.pending_wake = g.sleepers;
        self.changed.notify_all();
    }

    /// Waits (bounded, in real time) until every woken sleeper has run.
    pub(super) fn settle<'a>(&self, mut g: Guard<'a>) -> Guard<'a> {
        let start = std::time::Instant::now();
        while g.pending_wake > 0 {
            let Some(left) = SETTLE_LIMIT.checked_sub(start.elapsed()) else {
                g.pending_wake = 0;
                break;
            };
            g = self
                .settled
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        g
    }

    /// Sleeps until notified (fake clock) or until something may have
    /// changed (real clock: the next timer or deadline).
    pub(super) fn block<'a>(&self, mut g: Guard<'a>, deadline_us: Option<u64>) -> Guard<'a> {
        g.sleepers += 1;
        if deadline_us.is_some() {
            g.timed_sleepers += 1;
        }
        g = match self.mode {
            ClockMode::Fake => self.changed.wait(g).unwrap_or_else(|e| e.into_inner()),
            ClockMode::Real => {
                let now = g.now_us();
                let timer = g.stack.poll_timeout().map(|t| g.wall_time(t));
                let until = [timer, deadline_us]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(now + 20_000)
                    .min(now + 20_000);
                let wait = Duration::from_micros(until.saturating_sub(now).max(100));
                self.changed
                    .wait_timeout(g, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
        g.sleepers -= 1;
        if deadline_us.is_some() {
            g.timed_sleepers -= 1;
        }
        if g.pending_wake > 0 {
            g.pending_wake -= 1;
            if g.pending_wake == 0 {
                self.settled.notify_all();
            }
        }
        if self.mode == ClockMode::Real && g.run_timers() {
            self.notify(&mut g);
        }
        g
    }

    /// Runs `op` until it stops returning EAGAIN, sleeping in between, unless
    /// the socket is non-blocking (or `nonblock` is forced).
    pub(super) fn blocking<T>(
        &self,
        fd: c_int,
        force_nonblock: bool,
        mut op: impl FnMut(&mut Inner) -> Res<T>,
    ) -> Res<T> {
        let mut g = self.lock();
        loop {
            let r = op(&mut g);
            g.flush();
            self.notify(&mut g);
            match r {
                Err(libc::EAGAIN) => {
                    if force_nonblock || g.sock(fd)?.nonblock {
                        return Err(libc::EAGAIN);
                    }
                    g = self.block(g, None);
                }
                r => return r,
            }
        }
    }
}
