//! Progress of `utcp connect` and `utcp listen` on stderr: bytes each way,
//! rate and elapsed time, redrawn four times a second, only when stderr is
//! a terminal (silent otherwise, so scripts and pipes see nothing). Drawn by
//! `indicatif`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

/// Byte counters the copy loops add to, and the drawing thread.
pub struct Progress {
    counts: Arc<Counts>,
    drawer: Option<JoinHandle<()>>,
}

/// Bytes sent and received so far.
#[derive(Default)]
pub struct Counts {
    /// Bytes written to the connection.
    pub sent: AtomicU64,
    /// Bytes read from the connection.
    pub received: AtomicU64,
    done: AtomicBool,
}

impl Progress {
    /// Starts drawing if stderr is a terminal.
    pub fn start() -> Progress {
        let counts = Arc::new(Counts::default());
        let drawer = if std::io::stderr().is_terminal() {
            let c = counts.clone();
            std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || draw(&c))
                .ok()
        } else {
            None
        };
        Progress { counts, drawer }
    }

    /// The counters, for the copy loops.
    pub fn counts(&self) -> Arc<Counts> {
        self.counts.clone()
    }
}

impl Drop for Progress {
    /// Draws the final line and stops.
    fn drop(&mut self) {
        self.counts.done.store(true, Ordering::Relaxed);
        if let Some(d) = self.drawer.take() {
            let _ = d.join();
        }
    }
}

fn line(c: &Counts, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let (sent, received) = (
        c.sent.load(Ordering::Relaxed),
        c.received.load(Ordering::Relaxed),
    );
    format!(
        "sent {} ({}/s), received {} ({}/s)",
        HumanBytes(sent),
        HumanBytes((sent as f64 / secs) as u64),
        HumanBytes(received),
        HumanBytes((received as f64 / secs) as u64)
    )
}

fn draw(c: &Counts) {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
        bar.set_style(style);
    }
    let start = Instant::now();
    while !c.done.load(Ordering::Relaxed) {
        bar.set_message(line(c, start.elapsed()));
        bar.tick();
        std::thread::sleep(Duration::from_millis(250));
    }
    bar.finish_with_message(line(c, start.elapsed()));
}
