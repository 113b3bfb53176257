//! The connection's timers: one [`Timer`] enum and one table of deadlines.
//!
//! Nothing here runs by itself. The table only remembers when each timer is
//! due; the stack asks for the earliest deadline
//! ([`Tcb::poll_timeout`](super::Tcb::poll_timeout)) and calls
//! [`Tcb::handle_timeout`](super::Tcb::handle_timeout) once it has passed.
//! In the spirit of quinn-proto's `connection/timer.rs`.

use crate::time::Instant;

/// The timers of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The retransmission timer (RFC 6298).
    Retransmit,
    /// The tail loss probe timer (RFC 8985 section 7.2).
    TailLossProbe,
    /// The persist timer that probes a zero window (RFC 9293 section 3.8.6.1).
    Persist,
    /// The delayed-ACK timer (RFC 1122 4.2.3.2, RFC 5681 section 4.2).
    DelayedAck,
    /// 2*MSL in TIME-WAIT (RFC 9293 section 3.4.2).
    TimeWait,
    /// How long an orphaned connection may wait in FIN-WAIT-2 for the
    /// peer's FIN ([`TcpConfig::orphan_fin_wait_2`](super::TcpConfig::orphan_fin_wait_2)).
    FinWait2,
    /// Keepalive (RFC 1122 4.2.3.6): the idle time before a probe, then the
    /// time between probes ([`TcpConfig::keepalive`](super::TcpConfig::keepalive)).
    Keepalive,
}

impl Timer {
    /// Every timer, in the order [`Tcb::handle_timeout`](super::Tcb::handle_timeout) serves them.
    pub const ALL: [Timer; 7] = [
        Timer::TimeWait,
        Timer::FinWait2,
        Timer::Keepalive,
        Timer::DelayedAck,
        Timer::Persist,
        Timer::TailLossProbe,
        Timer::Retransmit,
    ];

    fn index(self) -> usize {
        match self {
            Timer::TimeWait => 0,
            Timer::DelayedAck => 1,
            Timer::Persist => 2,
            Timer::TailLossProbe => 3,
            Timer::Retransmit => 4,
            Timer::FinWait2 => 5,
            Timer::Keepalive => 6,
        }
    }
}

/// One optional deadline per [`Timer`].
#[derive(Clone, Debug, Default)]
pub struct TimerTable {
    deadlines: [Option<Instant>; 7],
}

impl TimerTable {
    /// Arms `timer` to fire at `at` (replacing an earlier deadline).
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    /// Arms `timer` at `at` unless it is armed already.
    pub fn set_if_stopped(&mut self, timer: Timer, at: Instant) {
        let slot = &mut self.deadlines[timer.index()];
        if slot.is_none() {
            *slot = Some(at);
        }
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    /// Disarms every timer.
    pub fn stop_all(&mut self) {
        self.deadlines = [None; 7];
    }

    /// When `timer` fires, if it is armed.
    pub fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// True while `timer` is armed.
    pub fn is_armed(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    /// True when `timer` is armed and due at `now`.
    pub fn is_expired(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|t| t <= now)
    }

    /// Disarms `timer` and returns true if it was due at `now`.
    pub fn take_expired(&mut self, timer: Timer, now: Instant) -> bool {
        let due = self.is_expired(timer, now);
        if due {
            self.stop(timer);
        }
        due
    }

    /// The earliest armed deadline.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_timeout_is_the_earliest_armed_deadline() {
        let mut t = TimerTable::default();
        assert_eq!(t.next_timeout(), None);
        t.set(Timer::Retransmit, Instant::from_millis(200));
        t.set(Timer::DelayedAck, Instant::from_millis(40));
        assert_eq!(t.next_timeout(), Some(Instant::from_millis(40)));
        t.stop(Timer::DelayedAck);
        assert_eq!(t.next_timeout(), Some(Instant::from_millis(200)));
        t.stop_all();
        assert_eq!(t.next_timeout(), None);
    }

    #[test]
    fn take_expired_disarms_only_due_timers() {
        let mut t = TimerTable::default();
        t.set(Timer::Persist, Instant::from_millis(10));
        assert!(!t.take_expired(Timer::Persist, Instant::from_millis(9)));
        assert!(t.is_armed(Timer::Persist));
        assert!(t.take_expired(Timer::Persist, Instant::from_millis(10)));
        assert!(!t.is_armed(Timer::Persist));
        t.set_if_stopped(Timer::Persist, Instant::from_millis(5));
        t.set_if_stopped(Timer::Persist, Instant::from_millis(50));
        assert_eq!(t.get(Timer::Persist), Some(Instant::from_millis(5)));
    }
}
