//! The congestion trace file (`utcp --trace FILE`,
//! [`RuntimeOptions::trace`](super::RuntimeOptions::trace)): the stack's
//! [`TraceSample`]s as JSON lines, one [`TraceRecord`] per line, times in
//! microseconds since the Unix epoch (the clock pcap timestamps use, so a
//! trace lines up with a capture taken at the same time; `utcp plot
//! --trace` draws both).
//!
//! The runtime takes the samples after each batch of work (where it takes
//! the stack's events) and writes them through a buffer flushed at the end
//! of that batch, so the file is whole up to the last batch whenever the
//! process stops. A write error stops the trace (logged once), never the
//! stack.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::stack::{Stack, TraceSample};
use crate::time::Instant;

/// One line of a trace file: a [`TraceSample`] for JSON.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TraceRecord {
    /// When, in microseconds since the Unix epoch.
    pub t_us: u64,
    /// Our end of the connection (`10.0.0.2:5000`).
    pub local: String,
    /// The peer's end.
    pub remote: String,
    /// The RFC 9293 state (`ESTABLISHED`).
    pub state: String,
    /// Congestion window in bytes.
    pub cwnd: u32,
    /// Slow start threshold in bytes; null until the first loss sets it.
    pub ssthresh: Option<u32>,
    /// Bytes sent and not yet acknowledged.
    pub flight: u32,
    /// Smoothed RTT in microseconds; null before the first RTT sample.
    pub srtt_us: Option<u64>,
    /// The retransmission timeout in microseconds, back-off included.
    pub rto_us: u64,
    /// In fast recovery.
    pub in_recovery: bool,
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl TraceRecord {
    /// The record of `s`, which happened at `wall_us` (microseconds since
    /// the Unix epoch).
    pub fn new(s: &TraceSample, wall_us: u64) -> TraceRecord {
        TraceRecord {
            t_us: wall_us,
            local: s.local.to_string(),
            remote: s.remote.to_string(),
            state: s.state.to_string(),
            cwnd: s.cwnd,
            ssthresh: (s.ssthresh != u32::MAX).then_some(s.ssthresh),
            flight: s.flight,
            srtt_us: s.srtt.map(micros),
            rto_us: micros(s.rto),
            in_recovery: s.in_recovery,
        }
    }
}

/// An open trace file, shared by every shard writing to it.
pub struct TraceFile {
    writer: Mutex<Option<BufWriter<File>>>,
}

impl std::fmt::Debug for TraceFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceFile").finish_non_exhaustive()
    }
}

impl TraceFile {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> io::Result<Arc<TraceFile>> {
        let file = File::create(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        log::info!("writing the congestion trace to {}", path.display());
        Ok(Arc::new(TraceFile {
            writer: Mutex::new(Some(BufWriter::new(file))),
        }))
    }

    /// Takes every sample the stack holds and writes it; `now` is the
    /// stack's clock at this moment, to turn its instants into wall time.
    pub(super) fn drain(&self, stack: &mut Stack, now: Instant) {
        let Some(first) = stack.poll_trace() else {
            return;
        };
        let wall_now = micros(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        );
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut result = Ok(());
        let mut next = Some(first);
        while let Some(s) = next {
            if let Some(w) = guard.as_mut().filter(|_| result.is_ok()) {
                let ago = now.saturating_duration_since(s.at);
                let record = TraceRecord::new(&s, wall_now.saturating_sub(micros(ago)));
                result = serde_json::to_writer(&mut *w, &record)
                    .map_err(io::Error::from)
                    .and_then(|()| w.write_all(b"\n"));
            }
            next = stack.poll_trace();
        }
        if let Some(w) = guard.as_mut() {
            if let Err(e) = result.and_then(|()| w.flush()) {
                log::warn!("congestion trace stopped: {e}");
                *guard = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;
    use std::time::Duration;

    #[test]
    fn a_record_has_microseconds_and_no_ssthresh_before_a_loss() {
        let mut s = TraceSample {
            at: Instant::from_millis(5),
            local: "10.0.0.2:80".parse().unwrap(),
            remote: "10.0.0.1:4000".parse().unwrap(),
            state: State::Established,
            cwnd: 14_480,
            ssthresh: u32::MAX,
            flight: 2_896,
            srtt: Some(Duration::from_micros(1_250)),
            rto: Duration::from_millis(200),
            in_recovery: false,
        };
        let line = serde_json::to_string(&TraceRecord::new(&s, 42)).unwrap();
        assert_eq!(
            line,
            r#"{"t_us":42,"local":"10.0.0.2:80","remote":"10.0.0.1:4000","state":"ESTABLISHED","cwnd":14480,"ssthresh":null,"flight":2896,"srtt_us":1250,"rto_us":200000,"in_recovery":false}"#
        );
        s.ssthresh = 10_136;
        s.srtt = None;
        let back: TraceRecord =
            serde_json::from_str(&serde_json::to_string(&TraceRecord::new(&s, 7)).unwrap())
                .unwrap();
        assert_eq!((back.ssthresh, back.srtt_us), (Some(10_136), None));
        assert_eq!(back, TraceRecord::new(&s, 7));
    }
}
