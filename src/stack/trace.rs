//! The congestion trace ([`StackConfig::trace`]): one [`TraceSample`] each
//! time a segment or a timer changes what a connection's sender is doing
//! (its state, cwnd, ssthresh, the bytes in flight, SRTT, RTO, whether it
//! is in recovery). What a capture cannot show, since it lives only inside
//! the sender; `utcp --trace FILE` writes it and `utcp plot --trace` draws
//! it under the time-sequence chart.
//!
//! The core only records: samples wait in a bounded queue until the
//! runtime takes them with [`Stack::poll_trace`]; past
//! [`TRACE_QUEUE_MAX`] the newest are dropped and counted
//! ([`Stack::trace_dropped`]), so a runtime that never asks costs bounded
//! memory.

use super::*;
use std::time::Duration;

/// At most this many samples wait for [`Stack::poll_trace`].
pub const TRACE_QUEUE_MAX: usize = 1 << 16;

/// What a connection's sender was doing at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceSample {
    /// When the segment or timer that caused it was handled.
    pub at: Instant,
    /// Our end of the connection.
    pub local: SocketAddrV4,
    /// The peer's end.
    pub remote: SocketAddrV4,
    /// The RFC 9293 state.
    pub state: State,
    /// Congestion window in bytes.
    pub cwnd: u32,
    /// Slow start threshold in bytes (`u32::MAX` until the first loss).
    pub ssthresh: u32,
    /// Bytes sent and not yet acknowledged (SND.NXT - SND.UNA).
    pub flight: u32,
    /// Smoothed RTT (RFC 6298), once measured.
    pub srtt: Option<Duration>,
    /// The retransmission timeout, back-off included.
    pub rto: Duration,
    /// In fast recovery (RFC 6582, RFC 6675).
    pub in_recovery: bool,
}

/// The parts of a sample whose change makes a new one.
type Key = (State, u32, u32, u32, Option<Duration>, Duration, bool);

impl TraceSample {
    /// Read straight from the TCB (not through [`Tcb::info`], which
    /// clones every counter): this runs after every segment when tracing.
    fn of(at: Instant, tcb: &Tcb) -> TraceSample {
        let cc = tcb.congestion();
        TraceSample {
            at,
            local: tcb.local(),
            remote: tcb.remote(),
            state: tcb.state(),
            cwnd: cc.cwnd(),
            ssthresh: cc.ssthresh(),
            flight: u32::try_from(tcb.snd_nxt().diff(tcb.snd_una())).unwrap_or(0),
            srtt: tcb.rtt().srtt(),
            rto: tcb.rtt().rto(),
            in_recovery: tcb.in_recovery(),
        }
    }

    fn key(&self) -> Key {
        (
            self.state,
            self.cwnd,
            self.ssthresh,
            self.flight,
            self.srtt,
            self.rto,
            self.in_recovery,
        )
    }
}

/// The trace's state inside the stack.
#[derive(Debug, Default)]
pub(super) struct Tracer {
    /// Each live connection's last sample, by 4-tuple (forgotten with it).
    last: HashMap<(SocketAddrV4, SocketAddrV4), Key>,
    queue: VecDeque<TraceSample>,
    dropped: u64,
}

impl Stack {
    /// Records a sample of connection `id` if anything in it changed since
    /// its last one. Called after each segment and timer it handles.
    pub(super) fn trace_conn(&mut self, now: Instant, id: ConnId) {
        if self.tracer.is_none() {
            return;
        }
        let Some(e) = self.entry(id) else { return };
        let sample = TraceSample::of(now, &e.tcb);
        let Some(tracer) = self.tracer.as_mut() else {
            return;
        };
        let key = sample.key();
        let tuple = (sample.local, sample.remote);
        if tracer.last.get(&tuple) == Some(&key) {
            return;
        }
        tracer.last.insert(tuple, key);
        if tracer.queue.len() >= TRACE_QUEUE_MAX {
            tracer.dropped += 1;
            return;
        }
        tracer.queue.push_back(sample);
    }

    /// A connection is forgotten: so is its last sample.
    pub(super) fn trace_forget(&mut self, tuple: &(SocketAddrV4, SocketAddrV4)) {
        if let Some(tracer) = self.tracer.as_mut() {
            tracer.last.remove(tuple);
        }
    }

    /// The oldest sample not yet taken, with [`StackConfig::trace`] on.
    pub fn poll_trace(&mut self) -> Option<TraceSample> {
        self.tracer.as_mut()?.queue.pop_front()
    }

    /// Samples dropped because nobody took them ([`TRACE_QUEUE_MAX`]).
    pub fn trace_dropped(&self) -> u64 {
        self.tracer.as_ref().map_or(0, |t| t.dropped)
    }
}
