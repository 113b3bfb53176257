//! The clock packetdrill sees and the stack runs on (fake or real), the
//! stack's timers, and the clock calls of packetdrill's main thread
//! (gettimeofday, usleep).

use std::time::Duration;

use utcp::time::Instant;

use super::{Adapter, Inner, MAX_TIMER_ROUNDS};
use crate::flags::ClockMode;

/// The stack's clock reads this much at the adapter's start.
const STACK_START_US: u64 = 1_000_000;

#[derive(Debug)]
pub(super) enum Clock {
    Fake {
        now_us: u64,
    },
    Real {
        start: std::time::Instant,
        base_us: u64,
    },
}

impl Inner {
    pub(super) fn now_us(&self) -> u64 {
        match &self.clock {
            Clock::Fake { now_us } => *now_us,
            Clock::Real { start, base_us } => {
                base_us + u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX / 2)
            }
        }
    }

    pub(super) fn stack_time(&self, us: u64) -> Instant {
        Instant::from_micros(us.saturating_sub(self.base_us) + STACK_START_US)
    }

    pub(super) fn wall_time(&self, t: Instant) -> u64 {
        (t.total_micros() + self.base_us).saturating_sub(STACK_START_US)
    }

    pub(super) fn stack_now(&self) -> Instant {
        self.stack_time(self.now_us())
    }

    /// Runs the timers due by now; true if any ran.
    pub(super) fn run_timers(&mut self) -> bool {
        let now = self.stack_now();
        if self.stack.poll_timeout().is_some_and(|d| d <= now) {
            self.stack.handle_timeout(now);
            self.flush();
            true
        } else {
            false
        }
    }
}

impl Adapter {
    /// gettimeofday: the current time in µs since the epoch. The fake clock
    /// advances 1 µs per call.
    pub fn gettimeofday(&self) -> u64 {
        let mut g = self.lock();
        if let Clock::Fake { now_us } = &mut g.clock {
            *now_us += 1;
        }
        let ran = g.run_timers();
        if ran || g.timed_sleepers > 0 {
            self.notify(&mut g);
            g = self.settle(g);
        }
        g.now_us()
    }

    /// usleep: the fake clock jumps `usec` ahead, stopping at every timer
    /// deadline on the way; the real clock sleeps.
    pub fn usleep(&self, usec: u64) {
        let mut g = self.lock();
        let target = g.now_us().saturating_add(usec);
        g.last_input_us = target;
        match self.mode {
            ClockMode::Fake => {
                for _ in 0..MAX_TIMER_ROUNDS {
                    let Some(d) = g.stack.poll_timeout().map(|t| g.wall_time(t)) else {
                        break;
                    };
                    if d > target {
                        break;
                    }
                    if let Clock::Fake { now_us } = &mut g.clock {
                        *now_us = (*now_us).max(d);
                    }
                    g.run_timers();
                    self.notify(&mut g);
                    g = self.settle(g);
                    if g.stack.poll_timeout().map(|t| g.wall_time(t)) == Some(d) && d <= g.now_us()
                    {
                        // A timer that does not move on: step past it.
                        if let Clock::Fake { now_us } = &mut g.clock {
                            *now_us += 1;
                        }
                    }
                }
                if let Clock::Fake { now_us } = &mut g.clock {
                    *now_us = (*now_us).max(target);
                }
                g.run_timers();
                self.notify(&mut g);
                drop(self.settle(g));
            }
            ClockMode::Real => {
                drop(g);
                loop {
                    let mut g = self.lock();
                    let now = g.now_us();
                    if now >= target {
                        break;
                    }
                    if g.run_timers() {
                        self.notify(&mut g);
                    }
                    drop(g);
                    std::thread::sleep(Duration::from_micros((target - now).min(5_000)));
                }
            }
        }
    }
}
