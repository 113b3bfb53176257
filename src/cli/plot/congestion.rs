//! The second panel of `utcp plot --trace FILE`: the sender's congestion
//! state from the stack's own trace (`utcp --trace`, one
//! [`TraceRecord`](utcp::socket::TraceRecord) per line): cwnd, ssthresh
//! (once a loss set it), the bytes in flight, fast-recovery periods shaded,
//! and SRTT on the right-hand axis.

use std::io::{self, BufRead};
use std::net::SocketAddrV4;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use utcp::socket::TraceRecord;

use super::{plot_err, steps};

/// One sample, on the chart's time axis (seconds since the connection's
/// first packet).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    t: f64,
    cwnd: u64,
    ssthresh: Option<u64>,
    flight: u64,
    srtt_ms: Option<f64>,
    in_recovery: bool,
}

/// The trace of the connection drawn.
#[derive(Debug)]
pub struct Congestion {
    /// The end that recorded it (the stack's own address and port).
    pub local: String,
    /// Its samples, in time order.
    pub samples: Vec<Sample>,
}

/// Reads `path` and keeps the samples of connection `conn` (either
/// orientation), with times relative to `t0` (seconds since the Unix
/// epoch).
pub fn load(path: &Path, conn: (SocketAddrV4, SocketAddrV4), t0: f64) -> io::Result<Congestion> {
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(named)?;
    let (a, b) = (conn.0.to_string(), conn.1.to_string());
    let mut local = None;
    let mut samples = Vec::new();
    for (i, line) in io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(named)?;
        if line.trim().is_empty() {
            continue;
        }
        let r: TraceRecord = serde_json::from_str(&line).map_err(|e| {
            let msg = format!("{} line {}: {e}", path.display(), i + 1);
            io::Error::new(io::ErrorKind::InvalidData, msg)
        })?;
        if !((r.local == a && r.remote == b) || (r.local == b && r.remote == a)) {
            continue;
        }
        local.get_or_insert_with(|| r.local.clone());
        samples.push(Sample {
            t: (r.t_us as f64 / 1e6 - t0).max(0.0),
            cwnd: u64::from(r.cwnd),
            ssthresh: r.ssthresh.map(u64::from),
            flight: u64::from(r.flight),
            srtt_ms: r.srtt_us.map(|us| us as f64 / 1e3),
            in_recovery: r.in_recovery,
        });
    }
    let Some(local) = local else {
        let msg = format!("{}: no sample of {a} - {b}", path.display());
        return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
    };
    samples.sort_by(|x, y| x.t.total_cmp(&y.t));
    Ok(Congestion { local, samples })
}

impl Congestion {
    /// The time of the last sample.
    pub fn end(&self) -> f64 {
        self.samples.last().map_or(0.0, |s| s.t)
    }

    /// The fast-recovery periods, as (start, end).
    fn recoveries(&self) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        let mut start = None;
        for s in &self.samples {
            match (start, s.in_recovery) {
                (None, true) => start = Some(s.t),
                (Some(t), false) => {
                    out.push((t, s.t));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(t) = start {
            out.push((t, self.end()));
        }
        out
    }

    fn series(&self, f: impl Fn(&Sample) -> Option<u64>) -> Vec<(f64, u64)> {
        self.samples
            .iter()
            .filter_map(|s| Some((s.t, f(s)?)))
            .collect()
    }

    /// The panel's lines, as (time, value) points.
    fn lines(&self) -> Lines {
        Lines {
            cwnd: self.series(|s| Some(s.cwnd)),
            ssthresh: self.series(|s| s.ssthresh),
            flight: self.series(|s| Some(s.flight)),
            srtt: self
                .samples
                .iter()
                .filter_map(|s| Some((s.t, s.srtt_ms?)))
                .collect(),
        }
    }
}

/// What [`draw`] draws: bytes over time, and SRTT in ms.
struct Lines {
    cwnd: Vec<(f64, u64)>,
    ssthresh: Vec<(f64, u64)>,
    flight: Vec<(f64, u64)>,
    srtt: Vec<(f64, f64)>,
}

/// Draws the panel on `area`, time axis 0..`x_max` as the chart above.
pub fn draw(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    c: &Congestion,
    x_max: f64,
) -> io::Result<()> {
    let Lines {
        cwnd,
        ssthresh,
        flight,
        srtt,
    } = c.lines();
    let y_max = cwnd
        .iter()
        .chain(&ssthresh)
        .chain(&flight)
        .map(|p| p.1)
        .max()
        .unwrap_or(1)
        .max(1);
    let srtt_max = srtt.iter().map(|p| p.1).fold(0.1, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("congestion state of {} (the stack's trace)", c.local),
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .right_y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0u64..y_max + y_max / 20)
        .map_err(plot_err)?
        .set_secondary_coord(0f64..x_max, 0f64..srtt_max * 1.1);
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("bytes")
        .draw()
        .map_err(plot_err)?;
    chart
        .configure_secondary_axes()
        .y_desc("SRTT (ms)")
        .draw()
        .map_err(plot_err)?;
    let shade = RGBColor(255, 200, 200);
    let top = y_max + y_max / 20;
    chart
        .draw_series(
            c.recoveries()
                .into_iter()
                .map(|(a, b)| Rectangle::new([(a, 0), (b, top)], shade.filled())),
        )
        .map_err(plot_err)?
        .label("fast recovery")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], shade.filled()));
    let gray = RGBColor(150, 150, 150);
    let teal = RGBColor(0, 130, 130);
    let lines = [
        ("in flight", flight, gray),
        ("cwnd", cwnd, BLUE),
        ("ssthresh", ssthresh, RED),
    ];
    for (name, points, colour) in lines {
        chart
            .draw_series(LineSeries::new(steps(&points), colour.stroke_width(2)))
            .map_err(plot_err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart
        .draw_secondary_series(LineSeries::new(srtt, teal))
        .map_err(plot_err)?
        .label("SRTT")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], teal));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)
}
