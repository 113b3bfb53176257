//! The packet side, on packetdrill's main thread: packets in
//! (netdev_send) and out (netdev_receive, with the output queue the stack
//! is flushed into).

use std::time::Duration;

use super::clock::Clock;
use super::{Adapter, Inner, MAX_TIMER_ROUNDS, SETTLE_LIMIT};
use crate::flags::ClockMode;

/// netdev_receive does not jump the fake clock further than this past the
/// last packet in or usleep: a script that waits for a packet the stack
/// never sends (while, say, zero-window probes go on for ever) then fails
/// instead of hanging.
const IDLE_LIMIT_US: u64 = 300_000_000;

impl Inner {
    /// Moves every packet the stack has ready into the output queue.
    pub(super) fn flush(&mut self) {
        let now_us = self.now_us();
        let now = self.stack_time(now_us);
        let Inner {
            stack, buf, out, ..
        } = self;
        stack.poll_transmit(now, buf, |p| out.push_back((p.to_vec(), now_us)));
    }
}

impl Adapter {
    /// netdev_send: a packet from packetdrill into the stack.
    pub fn netdev_send(&self, packet: &[u8]) {
        let mut g = self.lock();
        let now = g.stack_now();
        g.last_input_us = g.now_us();
        g.stack.handle_packet(now, packet);
        g.flush();
        self.notify(&mut g);
        drop(self.settle(g));
    }

    /// netdev_receive: the next packet out of the stack and its send time.
    /// With nothing queued, the fake clock jumps to the next timer; `None`
    /// when no packet can come any more.
    pub fn netdev_receive(&self) -> Option<(Vec<u8>, u64)> {
        let mut g = self.lock();
        let real_start = std::time::Instant::now();
        for _ in 0..MAX_TIMER_ROUNDS {
            if let Some(p) = g.out.pop_front() {
                return Some(p);
            }
            g = self.settle(g);
            if !g.out.is_empty() {
                continue;
            }
            match self.mode {
                ClockMode::Fake => {
                    let d = g.stack.poll_timeout().map(|t| g.wall_time(t))?;
                    if d > g.last_input_us.saturating_add(IDLE_LIMIT_US) {
                        return None;
                    }
                    if let Clock::Fake { now_us } = &mut g.clock {
                        *now_us = (*now_us).max(d);
                    }
                    if !g.run_timers() {
                        if let Clock::Fake { now_us } = &mut g.clock {
                            *now_us += 1;
                        }
                    }
                    self.notify(&mut g);
                }
                ClockMode::Real => {
                    if g.run_timers() {
                        self.notify(&mut g);
                        continue;
                    }
                    let now = g.now_us();
                    let next = g.stack.poll_timeout().map(|t| g.wall_time(t));
                    if next.is_none() && real_start.elapsed() > SETTLE_LIMIT {
                        return None;
                    }
                    let wait = next.map_or(10_000, |d| d.saturating_sub(now).clamp(50, 10_000));
                    g = self
                        .changed
                        .wait_timeout(g, Duration::from_micros(wait))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        None
    }
}
