//! Silent peers: keepalive probes (RFC 9293 section 3.8.4, RFC 1122
//! 4.2.3.6) and the user timeout (RFC 5482 semantics, as Linux's
//! `TCP_USER_TIMEOUT`).
//!
//! Keepalive is off unless configured ([`TcpConfig::keepalive`]). Once the
//! connection is synchronized, the keepalive timer runs; when it fires
//! after `idle` with nothing received (and nothing of ours in flight,
//! which the retransmission timer watches instead), a probe goes out at
//! SND.UNA - 1 without data, which the peer must acknowledge. `count`
//! unanswered probes, `interval` apart, end the connection with `TimedOut`
//! and a RST. Any segment from the peer ends the probing.
//!
//! [`TcpConfig::keepalive`]: super::TcpConfig::keepalive

use std::time::Duration;

use log::debug;

use super::timer::Timer;
use super::{Keepalive, Tcb, TcpError};
use crate::state::State;
use crate::time::Instant;

impl Tcb {
    /// Turns keepalive on (with its timing) or off, from `now` on.
    pub fn set_keepalive(&mut self, now: Instant, keepalive: Option<Keepalive>) {
        self.cfg.keepalive = keepalive;
        self.keepalive_probes_out = 0;
        self.timers.stop(Timer::Keepalive);
        self.last_rx = self.last_rx.max(now);
        self.arm_keepalive();
    }

    /// The keepalive settings, if on.
    pub fn keepalive(&self) -> Option<Keepalive> {
        self.cfg.keepalive
    }

    /// Sets the user timeout ([`TcpConfig::user_timeout`](super::TcpConfig::user_timeout)).
    pub fn set_user_timeout(&mut self, timeout: Option<Duration>) {
        self.cfg.user_timeout = timeout;
    }

    /// The user timeout, if set.
    pub fn user_timeout(&self) -> Option<Duration> {
        self.cfg.user_timeout
    }

    /// A segment from the peer arrived: the idle time starts again and
    /// unanswered probes are forgotten.
    pub(super) fn heard_from_peer(&mut self, now: Instant) {
        self.last_rx = now;
        self.keepalive_probes_out = 0;
        self.arm_keepalive();
    }

    /// Arms the keepalive timer `idle` after the last arrival, if keepalive
    /// is on, the connection is open and the timer is not running.
    fn arm_keepalive(&mut self) {
        let Some(ka) = self.cfg.keepalive else { return };
        let open = matches!(self.state, State::Established | State::CloseWait);
        if open && !self.timers.is_armed(Timer::Keepalive) {
            self.timers.set(Timer::Keepalive, self.last_rx + ka.idle);
        }
    }

    /// The keepalive timer fired (RFC 1122 4.2.3.6).
    pub(super) fn on_keepalive_timeout(&mut self, now: Instant) {
        let Some(ka) = self.cfg.keepalive else { return };
        if !matches!(self.state, State::Established | State::CloseWait) {
            return;
        }
        if self.snd.has_flight() || !self.snd.buf.is_empty() {
            // Our data is out: the retransmission timer watches the peer.
            self.timers.set(Timer::Keepalive, now + ka.idle);
            return;
        }
        let idle_until = self.last_rx + ka.idle;
        if self.keepalive_probes_out == 0 && now < idle_until {
            // Something arrived since the timer was armed.
            self.timers.set(Timer::Keepalive, idle_until);
            return;
        }
        if self.keepalive_probes_out >= ka.count {
            debug!(
                "{} -> {}: {} keepalive probes unanswered: the peer is gone",
                self.local, self.remote, self.keepalive_probes_out
            );
            self.abort_with(TcpError::TimedOut);
            return;
        }
        self.keepalive_probes_out += 1;
        self.pending.keepalive = true;
        self.timers.set(Timer::Keepalive, now + ka.interval);
    }

    /// True when data has waited longer than the user timeout for its ACK.
    pub(super) fn user_timeout_passed(&self, now: Instant) -> bool {
        let (Some(limit), Some(since)) = (self.cfg.user_timeout, self.unacked_since) else {
            return false;
        };
        let passed = now.saturating_duration_since(since) >= limit;
        if passed {
            debug!(
                "{} -> {}: data unacknowledged for the user timeout ({limit:?})",
                self.local, self.remote
            );
        }
        passed
    }
}
