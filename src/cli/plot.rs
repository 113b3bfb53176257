//! `utcp plot FILE.pcap -o plot.svg`: the tcptrace-style time-sequence
//! chart of one connection from a capture (`utcp --pcap`, tcpdump, ...):
//! the data segments the sender sent (sequence number over time, a
//! vertical stroke per segment), retransmissions in red, the receiver's
//! ACK line, its receive-window line and its SACK blocks. With `--trace
//! FILE` (written by `utcp --trace` during the same run) a second panel
//! under it shows what only the sender knows: its cwnd, ssthresh, bytes in
//! flight and SRTT over the same time axis. Drawn with `plotters` (SVG).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use utcp::wire::{self, Packet, TcpFlags, TcpSegment};

mod congestion;

/// The command's options (see `utcp plot --help`).
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The capture (pcap, raw IPv4 as `utcp --pcap` writes).
    file: PathBuf,
    /// The connection, as A:P-B:P (either order); default: the one that
    /// carried the most data.
    #[arg(long, value_name = "4-TUPLE")]
    conn: Option<String>,
    /// Where to write the SVG.
    #[arg(short, long, default_value = "plot.svg")]
    output: PathBuf,
    /// The stack's congestion trace of the same run (`utcp --trace FILE`):
    /// adds a panel with cwnd, ssthresh, bytes in flight and SRTT.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
}

/// One connection's packets, as (seconds since the capture's first packet, segment);
/// the chart's time zero is the connection's first packet.
type Packets<'a> = Vec<(f64, TcpSegment<'a>)>;

/// What is drawn, in bytes relative to the sender's initial sequence number.
#[derive(Default)]
struct Trace {
    /// (time, first byte, end) of each data segment; the flag: retransmitted.
    data: Vec<(f64, u64, u64, bool)>,
    acks: Vec<(f64, u64)>,
    windows: Vec<(f64, u64)>,
    sacks: Vec<(f64, u64, u64)>,
}

/// Runs `utcp plot`.
pub fn run(args: &Args) -> io::Result<()> {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", args.file.display())))?;
    let (records, first) = read_pcap(&bytes)?;
    let segments: Vec<(f64, TcpSegment<'_>)> = records
        .iter()
        .filter_map(|(t, p)| match wire::parse_with(p, true) {
            Ok(Packet::Tcp(seg)) => Some((*t, seg)),
            _ => None,
        })
        .collect();
    let (a, b) = pick(&segments, args.conn.as_deref())?;
    let conn: Packets<'_> = segments
        .into_iter()
        .filter(|(_, s)| (s.src, s.dst) == (a, b) || (s.src, s.dst) == (b, a))
        .collect();
    let (sender, receiver) = direction(&conn, a, b);
    // The chart's time zero, in seconds since the Unix epoch.
    let t0 = first + conn.first().map_or(0.0, |(t, _)| *t);
    let trace = trace(&conn, sender);
    let cc = match &args.trace {
        Some(path) => Some(congestion::load(path, (a, b), t0)?),
        None => None,
    };
    draw(
        &trace,
        cc.as_ref(),
        &args.output,
        &format!("{sender} -> {receiver}"),
    )?;
    let retx = trace.data.iter().filter(|d| d.3).count();
    let samples = cc.map_or(String::new(), |c| {
        format!(", {} trace samples of {}", c.samples.len(), c.local)
    });
    eprintln!(
        "utcp plot: {sender} -> {receiver}: {} data segments ({retx} retransmissions), {} ACKs, {} SACK blocks{samples} -> {}",
        trace.data.len(),
        trace.acks.len(),
        trace.sacks.len(),
        args.output.display()
    );
    Ok(())
}

/// A capture's packets, each with its time in seconds since the first one.
type Records = Vec<(f64, Vec<u8>)>;

/// The packets, and the first one's time in seconds since the Unix epoch.
fn read_pcap(bytes: &[u8]) -> io::Result<(Records, f64)> {
    let bad = |e: pcap_file::PcapError| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
    let mut r = pcap_file::pcap::PcapReader::new(bytes).map_err(bad)?;
    let mut out = Vec::new();
    let mut first = None;
    while let Some(p) = r.next_packet() {
        let p = p.map_err(bad)?;
        let t0 = *first.get_or_insert(p.timestamp);
        out.push((
            p.timestamp.saturating_sub(t0).as_secs_f64(),
            p.data.into_owned(),
        ));
    }
    Ok((out, first.unwrap_or_default().as_secs_f64()))
}

/// The connection to draw: `--conn`, or the pair with the most payload.
fn pick(
    segs: &[(f64, TcpSegment<'_>)],
    conn: Option<&str>,
) -> io::Result<(SocketAddrV4, SocketAddrV4)> {
    if let Some(c) = conn {
        let parsed = c
            .split_once('-')
            .and_then(|(x, y)| Some((x.parse().ok()?, y.parse().ok()?)));
        return parsed.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("--conn {c:?}: expected A:P-B:P"),
            )
        });
    }
    let mut bytes: HashMap<(SocketAddrV4, SocketAddrV4), usize> = HashMap::new();
    for (_, s) in segs {
        let key = if s.src < s.dst {
            (s.src, s.dst)
        } else {
            (s.dst, s.src)
        };
        *bytes.entry(key).or_default() += s.payload.len() + 1;
    }
    bytes
        .into_iter()
        .max_by_key(|&(k, n)| (n, k))
        .map(|(k, _)| k)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no TCP segment in the capture"))
}

/// (sender, receiver): the side that sent more payload sends.
fn direction(conn: &Packets<'_>, a: SocketAddrV4, b: SocketAddrV4) -> (SocketAddrV4, SocketAddrV4) {
    let from_a: usize = conn
        .iter()
        .filter(|(_, s)| s.src == a)
        .map(|(_, s)| s.payload.len())
        .sum();
    let from_b: usize = conn
        .iter()
        .filter(|(_, s)| s.src == b)
        .map(|(_, s)| s.payload.len())
        .sum();
    if from_a >= from_b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Sequence numbers relative to the sender's ISN (its SYN, or its first
/// segment), unwrapped over at most 4 GiB.
fn trace(conn: &Packets<'_>, sender: SocketAddrV4) -> Trace {
    let isn = conn
        .iter()
        .find(|(_, s)| s.src == sender && s.flags.contains(TcpFlags::SYN))
        .or_else(|| conn.iter().find(|(_, s)| s.src == sender))
        .map_or(0, |(_, s)| s.seq.0);
    let rel = |v: u32| u64::from(v.wrapping_sub(isn));
    // RFC 7323: windows are scaled only when both SYNs carried the option.
    let syn_scale = |from_sender: bool| {
        conn.iter()
            .find(|(_, s)| (s.src == sender) == from_sender && s.flags.contains(TcpFlags::SYN))
            .and_then(|(_, s)| s.options.window_scale)
    };
    let shift = match (syn_scale(true), syn_scale(false)) {
        (Some(_), Some(r)) => u32::from(r.min(14)),
        _ => 0,
    };
    let mut t = Trace::default();
    let mut sent_max = 0u64;
    // Time zero: the connection's first packet.
    let t0 = conn.first().map_or(0.0, |(t, _)| *t);
    for (time, s) in conn {
        let time = &(time - t0);
        if s.src == sender {
            if s.payload.is_empty() {
                continue;
            }
            let lo = rel(s.seq.0);
            let hi = lo + s.payload.len() as u64;
            t.data.push((*time, lo, hi, lo < sent_max));
            sent_max = sent_max.max(hi);
        } else if s.flags.contains(TcpFlags::ACK) {
            let ack = rel(s.ack.0);
            t.acks.push((*time, ack));
            // RFC 7323 section 2.2: a SYN's window is never scaled.
            let scale = if s.flags.contains(TcpFlags::SYN) {
                0
            } else {
                shift
            };
            let window = u64::from(s.window) << scale;
            t.windows.push((*time, ack + window));
            for &(l, r) in s.options.sack.as_slice() {
                t.sacks.push((*time, rel(l.0), rel(r.0)));
            }
        }
    }
    t
}

/// A step line through `points`: each value holds until the next one
/// (an ACK or a window edge stays where it is until the next ACK moves it).
fn steps(points: &[(f64, u64)]) -> Vec<(f64, u64)> {
    let mut out = Vec::with_capacity(points.len() * 2);
    for (i, &(t, v)) in points.iter().enumerate() {
        if i > 0 {
            out.push((t, points[i - 1].1));
        }
        out.push((t, v));
    }
    out
}

fn plot_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("drawing the plot: {e}"))
}

/// Draws the time-sequence chart and, with a trace, the congestion panel
/// under it, on one time axis.
fn draw(
    t: &Trace,
    cc: Option<&congestion::Congestion>,
    path: &Path,
    title: &str,
) -> io::Result<()> {
    let height = if cc.is_some() { 1150 } else { 700 };
    let root = SVGBackend::new(path, (1200, height)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let x_max = t
        .data
        .iter()
        .map(|d| d.0)
        .chain(t.acks.iter().map(|a| a.0))
        .chain(cc.map(congestion::Congestion::end))
        .fold(1e-3, f64::max)
        * 1.02;
    match cc {
        Some(cc) => {
            let (upper, lower) = root.split_vertically(700);
            draw_sequence(&upper, t, title, x_max)?;
            congestion::draw(&lower, cc, x_max)?;
        }
        None => draw_sequence(&root, t, title, x_max)?,
    }
    root.present().map_err(plot_err)
}

/// The time-sequence chart: data in blue, retransmissions in red, ACKs
/// green, the window line orange, SACK blocks purple.
fn draw_sequence(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    t: &Trace,
    title: &str,
    x_max: f64,
) -> io::Result<()> {
    let y_max = t
        .data
        .iter()
        .map(|d| d.2)
        .chain(t.windows.iter().map(|w| w.1))
        .max()
        .unwrap_or(1)
        .max(1);
    let mut chart = ChartBuilder::on(root)
        .caption(format!("time-sequence: {title}"), ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..x_max, 0u64..y_max + y_max / 50)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("sequence offset (bytes)")
        .draw()
        .map_err(plot_err)?;
    let purple = RGBColor(128, 0, 160);
    let orange = RGBColor(230, 140, 0);
    let stroke = |retx: bool| t.data.iter().filter(move |d| d.3 == retx);
    chart
        .draw_series(
            stroke(false).map(|&(x, lo, hi, _)| PathElement::new(vec![(x, lo), (x, hi)], BLUE)),
        )
        .map_err(plot_err)?
        .label("data")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(
            stroke(true).map(|&(x, lo, hi, _)| {
                PathElement::new(vec![(x, lo), (x, hi)], RED.stroke_width(2))
            }),
        )
        .map_err(plot_err)?
        .label("retransmission")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .draw_series(LineSeries::new(steps(&t.acks), GREEN))
        .map_err(plot_err)?
        .label("ack")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
    chart
        .draw_series(LineSeries::new(steps(&t.windows), orange))
        .map_err(plot_err)?
        .label("receive window")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], orange));
    chart
        .draw_series(
            t.sacks
                .iter()
                .map(|&(x, l, r)| PathElement::new(vec![(x, l), (x, r)], purple)),
        )
        .map_err(plot_err)?
        .label("SACK")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], purple));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)
}
