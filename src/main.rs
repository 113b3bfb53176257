//! `utcp`: the command-line face of the stack. See `utcp --help`.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use clap::{Parser, Subcommand};
use utcp::cc::Algorithm;
use utcp::device::impair::Impairment;
use utcp::socket::{Driver, NetStack, RuntimeOptions, Shards, TcpListener, TcpStream};
use utcp::stack::StackConfig;

mod cli;
use cli::polled::{self, Mode};

/// A user-space TCP/IPv4 stack over a Linux TUN device.
///
/// utcp attaches to an existing TUN device (create it with
/// scripts/setup-tun.sh) and answers for --addr on it: the kernel on the
/// other side of the device talks to utcp as to any other host. Run it in the
/// network namespace that holds the device, as root.
///
/// Set RUST_LOG=debug to watch every connection's state transitions and
/// retransmissions; RUST_LOG=trace shows every segment. `kill -USR1 PID`
/// prints the table of connections (like `ss -tni`) on stderr.
#[derive(Parser, Debug)]
#[command(name = "utcp", version, about, long_about)]
struct Cli {
    /// TUN device to attach to.
    #[arg(long, default_value = "utcp0", global = true)]
    dev: String,
    /// IPv4 address utcp answers for on the device.
    #[arg(long, default_value = "10.77.0.2", global = true)]
    addr: Ipv4Addr,
    /// Impair the device on purpose, in both directions: comma-separated
    /// key=value pairs among drop, dup, reorder (probabilities: 0.05 or 5%),
    /// delay, jitter, reorder-delay (durations: 10ms, 500us, 1s) and seed.
    /// Example: --impair drop=5%,reorder=1%,delay=2ms
    #[arg(long, global = true, value_name = "SPEC")]
    impair: Option<Impairment>,
    /// Print each connection's statistics (segments, retransmissions by
    /// cause, SRTT/RTO, cwnd...) to stderr when it ends: --stats (or
    /// --stats=human) as one line of text, --stats=json as one JSON object
    /// per line (durations in microseconds), plus the stack's counters
    /// (drops included) when the command exits.
    #[arg(long, global = true, value_name = "FORMAT", num_args = 0..=1,
          default_missing_value = "human", require_equals = true)]
    stats: Option<StatsFormat>,

    /// Congestion control for every connection: newreno (RFC 5681, RFC 6582)
    /// or cubic (RFC 9438).
    #[arg(long = "cc", global = true, value_name = "ALGORITHM", default_value_t = Algorithm::default())]
    congestion: Algorithm,

    /// HyStart++ (RFC 9406) for CUBIC's slow start: leave it on a rising
    /// RTT instead of on the first loss. Off by default.
    #[arg(long, global = true)]
    hystart: bool,

    /// Who drives the device: "thread" (a driver thread) or "inline" (the
    /// command's own threads while they wait, no thread hop). Default:
    /// inline, as every command keeps returning to a wait; thread for
    /// forward, whose tokio tasks never block.
    #[arg(long, global = true, value_name = "DRIVER")]
    driver: Option<Driver>,

    /// Open the TUN device with offload: virtio-net headers, checksum
    /// offload and TSO, so the kernel may hand over 64 KB super-packets.
    #[arg(long, global = true)]
    offload: bool,

    /// Attach N queues of a multi-queue TUN device (created with
    /// scripts/setup-tun.sh --multi-queue) and run one stack shard on each,
    /// with its own thread: servers listen on every shard; clients connect
    /// from the first.
    #[arg(long, global = true, value_name = "N")]
    queues: Option<usize>,

    /// Write every packet in and out to FILE (pcap, raw IPv4; tshark and
    /// Wireshark open it). With --impair, see --pcap-at.
    #[arg(long, global = true, value_name = "FILE")]
    pcap: Option<std::path::PathBuf>,

    /// Where --pcap records when --impair sits between the device and the
    /// stack: "stack", what the stack took in (after the impairment on
    /// the way in) and sent (before it on the way out); or "device", what
    /// the TUN device carried (as tcpdump on the kernel side sees it).
    #[arg(long, global = true, value_enum, default_value_t = PcapAt::Stack, value_name = "POINT")]
    pcap_at: PcapAt,

    /// Write the stack's congestion trace to FILE: one JSON object per
    /// line each time a segment or timer changes a connection's cwnd,
    /// ssthresh, bytes in flight, SRTT, RTO or recovery state
    /// (`utcp plot --trace FILE` draws it).
    #[arg(long, global = true, value_name = "FILE")]
    trace: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug, Clone)]
enum Command {
    /// The seed demo server: a thread per connection reads up to 256 bytes
    /// and prints the client's message.
    Server {
        /// Port to listen on.
        #[arg(long, default_value_t = 4399)]
        port: u16,
    },
    /// The seed demo client: connects, sends a message, closes.
    Client {
        /// Where to connect, e.g. 10.77.0.1:4399.
        target: SocketAddrV4,
        /// What to send.
        #[arg(long, default_value = "Hi, I am a client")]
        message: String,
    },
    /// Echo server: every byte comes back; a half-close is answered once all
    /// is echoed. One thread serves every connection (readiness via Poll).
    Echo {
        /// Port to listen on.
        #[arg(long, default_value_t = 7)]
        port: u16,
    },
    /// Discard server: reads everything, prints "<peer> <N> bytes" per
    /// connection. One thread serves every connection (readiness via Poll).
    Sink {
        /// Port to listen on.
        #[arg(long, default_value_t = 9)]
        port: u16,
    },
    /// Source server (like RFC 864's character generator, with zeros):
    /// sends --bytes zero bytes to every connection (without --bytes: until
    /// the peer goes away), then its FIN; discards what the peer sends. One
    /// thread serves every connection (readiness via Poll).
    Source {
        /// Port to listen on.
        #[arg(long, default_value_t = 19)]
        port: u16,
        /// Bytes to send to each connection.
        #[arg(long)]
        bytes: Option<u64>,
    },
    /// Netcat-like client: stdin to the connection, the connection to stdout.
    Connect {
        /// Where to connect, e.g. 10.77.0.1:5000.
        target: SocketAddrV4,
    },
    /// Netcat-like server: accepts one connection, then works like `connect`.
    Listen {
        /// Port to listen on.
        #[arg(long, default_value_t = 5000)]
        port: u16,
    },
    /// Transparent TCP relay: accepts connections to any address and port
    /// on the device (any-IP) and carries each to its original destination
    /// through a kernel socket (or a SOCKS5 proxy), FINs and RSTs passed
    /// on. The kernel sockets use this namespace's routing: keep them out
    /// of the TUN device (move the device into the clients' namespace after
    /// utcp opened it, or use --mark; see docs/forward.md). Runs until
    /// SIGINT or SIGTERM, then prints its counters.
    #[cfg(feature = "forward")]
    Forward(cli::forward::Args),
    /// Draw the time-sequence chart (tcptrace-style) of one connection in
    /// a capture (`utcp --pcap FILE`): data segments over time,
    /// retransmissions in red, the ACK and receive-window lines, SACK
    /// blocks; with --trace, a panel of cwnd, ssthresh, bytes in flight
    /// and SRTT from `utcp --trace`. Needs no device.
    Plot(cli::plot::Args),
}

fn main() -> ExitCode {
    // Before any thread exists, so that every thread inherits it.
    if let Err(e) = cli::ss::block_sigusr1() {
        eprintln!("utcp: cannot block SIGUSR1 (no connection table): {e}");
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp_micros()
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("utcp: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> io::Result<()> {
    if let Command::Plot(args) = &cli.command {
        return cli::plot::run(args);
    }
    #[cfg(feature = "forward")]
    let forward = matches!(cli.command, Command::Forward(_));
    #[cfg(not(feature = "forward"))]
    let forward = false;
    let opts = RuntimeOptions {
        impairment: cli.impair.clone(),
        driver: cli.driver.unwrap_or(if forward {
            Driver::Thread
        } else {
            Driver::Inline
        }),
        offload: cli.offload,
        capture: cli
            .pcap
            .as_deref()
            .map(utcp::device::pcap::Capture::create)
            .transpose()?,
        capture_at: match cli.pcap_at {
            PcapAt::Stack => utcp::device::pcap::CapturePoint::Stack,
            PcapAt::Device => utcp::device::pcap::CapturePoint::Device,
        },
        trace: cli
            .trace
            .as_deref()
            .map(utcp::socket::TraceFile::create)
            .transpose()?,
        ..RuntimeOptions::default()
    };
    if let Some(imp) = &cli.impair {
        log::info!("impairing {} in both directions: {imp}", cli.dev);
    }
    let mut cfg = StackConfig::new(cli.addr);
    cfg.tcp.congestion = cli.congestion;
    cfg.tcp.hystart = cli.hystart;
    cfg.any_ip = forward;
    log::debug!("congestion control: {}", cli.congestion);
    let format = match cli.stats {
        None => 0,
        Some(StatsFormat::Human) => 1,
        Some(StatsFormat::Json) => 2,
    };
    PRINT_STATS.store(format, std::sync::atomic::Ordering::Relaxed);
    let Some(queues) = cli.queues else {
        let net = NetStack::tun_with_options(&cli.dev, cfg, opts)?;
        cli::ss::watch(vec![net.downgrade()])?;
        let result = match cli.command {
            #[cfg(feature = "forward")]
            Command::Forward(args) => {
                cli::forward::run(std::slice::from_ref(&net), args.config()?, &cli.dev)
            }
            command => run_command(&net, command),
        };
        print_impair_stats(&net);
        report_stack(&net, 0);
        return result;
    };
    let shards = Shards::tun(&cli.dev, cfg, opts, queues)?;
    log::info!("{} shards on {}", shards.len(), cli.dev);
    cli::ss::watch(shards.stacks().iter().map(NetStack::downgrade).collect())?;
    let result = match cli.command {
        #[cfg(feature = "forward")]
        Command::Forward(args) => cli::forward::run(shards.stacks(), args.config()?, &cli.dev),
        command => run_sharded(&shards, command),
    };
    for (i, net) in shards.stacks().iter().enumerate() {
        print_impair_stats(net);
        report_stack(net, i);
    }
    result
}

/// With --impair, what the impairment did.
fn print_impair_stats(net: &NetStack) {
    if let Some(st) = net.impair_stats() {
        eprintln!(
            "utcp: impairment: dropped {} in / {} out, duplicated {} / {}, reordered {} / {}",
            st.dropped[0],
            st.dropped[1],
            st.duplicated[0],
            st.duplicated[1],
            st.reordered[0],
            st.reordered[1]
        );
    }
}

/// Runs `command` over shards: a server on every shard, each from its own
/// thread (the first on this one); a client from the first shard.
fn run_sharded(shards: &Shards, command: Command) -> io::Result<()> {
    let stacks = shards.stacks();
    let Some(port) = server_port(&command) else {
        return match command {
            Command::Listen { port } => listen_any(stacks, port),
            _ => run_command(&stacks[0], command),
        };
    };
    // Bind everywhere first, so no shard refuses a connection while
    // another is still starting.
    let mut listeners = bind_all(stacks, port)?.into_iter();
    let first = listeners
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no shards"))?;
    for (i, (net, listener)) in (1..).zip(stacks[1..].iter().zip(listeners)) {
        let (net, command) = (net.clone(), command.clone());
        thread::Builder::new()
            .name(format!("shard-{i}"))
            .spawn(move || {
                if let Err(e) = serve_listener(&net, listener, command) {
                    eprintln!("utcp: shard {i}: {e}");
                }
            })?;
    }
    serve_listener(&stacks[0], first, command)
}

/// The port of a server command (one that serves many connections).
fn server_port(command: &Command) -> Option<u16> {
    match *command {
        Command::Server { port }
        | Command::Echo { port }
        | Command::Sink { port }
        | Command::Source { port, .. } => Some(port),
        _ => None,
    }
}

/// `listen` over shards: the first connection on any shard.
fn listen_any(stacks: &[NetStack], port: u16) -> io::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    for listener in bind_all(stacks, port)? {
        let tx = tx.clone();
        thread::Builder::new()
            .name("accept".into())
            .spawn(move || {
                // The others stay blocked in accept until the process ends.
                let _ = tx.send(listener.accept());
            })?;
    }
    drop(tx);
    let (stream, peer) = rx
        .recv()
        .map_err(|_| io::Error::other("every shard's accept ended"))??;
    eprintln!("utcp: connection from {peer}");
    pipe_stdio(stream)
}

/// `--pcap-at`: [`CapturePoint`](utcp::device::pcap::CapturePoint).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum PcapAt {
    /// After the impairment on the way in, before it on the way out.
    Stack,
    /// What the device carried.
    Device,
}

/// How `--stats` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum StatsFormat {
    /// One line of text per connection.
    Human,
    /// One JSON object per line.
    Json,
}

/// 0: no --stats; 1: human; 2: json.
static PRINT_STATS: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

fn stats_format() -> u8 {
    PRINT_STATS.load(std::sync::atomic::Ordering::Relaxed)
}

/// With --stats, prints what the connection went through.
fn report(stream: &TcpStream) {
    let (Ok(peer), Ok(local), Ok(info)) = (stream.peer_addr(), stream.local_addr(), stream.info())
    else {
        return;
    };
    match stats_format() {
        1 => eprintln!("utcp: stats {peer}: {info}"),
        2 => {
            // One flat object: where, then the ConnInfo fields.
            let mut record = serde_json::json!({
                "event": "connection",
                "local": local.to_string(),
                "peer": peer.to_string(),
            });
            if let (Some(r), Ok(serde_json::Value::Object(fields))) =
                (record.as_object_mut(), serde_json::to_value(&info))
            {
                r.extend(fields);
            }
            eprintln!("{record}");
        }
        _ => {}
    }
}

/// With --stats=json, the stack's counters (drops included) at exit.
fn report_stack(net: &NetStack, shard: usize) {
    if stats_format() == 2 {
        let record = serde_json::json!({
            "event": "stack",
            "shard": shard,
            "stats": net.stats(),
        });
        eprintln!("{record}");
    }
}

fn run_command(net: &NetStack, command: Command) -> io::Result<()> {
    if let Some(port) = server_port(&command) {
        return serve_listener(net, bind(net, port)?, command);
    }
    match command {
        Command::Client { target, message } => client(net, target, &message),
        Command::Connect { target } => {
            let stream = TcpStream::connect(net, target)?;
            pipe_stdio(stream)
        }
        Command::Listen { port } => {
            let listener = bind(net, port)?;
            let (stream, peer) = listener.accept()?;
            eprintln!("utcp: connection from {peer}");
            drop(listener);
            pipe_stdio(stream)
        }
        _ => Err(io::Error::other("not a client command")),
    }
}

/// Runs a server command on `listener`, for ever.
fn serve_listener(net: &NetStack, listener: TcpListener, command: Command) -> io::Result<()> {
    match command {
        Command::Server { .. } => serve(listener, seed_connection),
        Command::Echo { .. } => polled::serve(net, listener, Mode::Echo, report),
        Command::Sink { .. } => polled::serve(net, listener, Mode::Sink, report),
        Command::Source { bytes, .. } => polled::serve(net, listener, Mode::Source(bytes), report),
        _ => Err(io::Error::other("not a server command")),
    }
}

/// Listens on `port` on every shard, then says so once: a client that
/// saw the line finds every shard listening.
fn bind_all(stacks: &[NetStack], port: u16) -> io::Result<Vec<TcpListener>> {
    let listeners = stacks
        .iter()
        .map(|net| TcpListener::bind(net, port))
        .collect::<io::Result<Vec<_>>>()?;
    if let Some(l) = listeners.first() {
        eprintln!(
            "utcp: listening on {} ({} shards)",
            l.local_addr()?,
            listeners.len()
        );
    }
    Ok(listeners)
}

fn bind(net: &NetStack, port: u16) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(net, port)?;
    eprintln!("utcp: listening on {}", listener.local_addr()?);
    Ok(listener)
}

/// Accepts forever, one thread per connection, like the seed's goroutines.
fn serve(listener: TcpListener, handler: fn(TcpStream) -> io::Result<()>) -> io::Result<()> {
    loop {
        let (stream, peer) = listener.accept()?;
        log::info!("connection from {peer}");
        thread::Builder::new()
            .name(format!("conn-{peer}"))
            .spawn(move || {
                if let Err(e) = handler(stream) {
                    eprintln!("utcp: connection from {peer}: {e}");
                }
            })?;
    }
}

/// The seed server's handler: read up to 256 bytes, print them.
fn seed_connection(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 256];
    let mut n = 0;
    while n < buf.len() {
        let k = stream.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    report(&stream);
    let text = String::from_utf8_lossy(&buf[..n]);
    let mut out = io::stdout().lock();
    if text.ends_with('\n') {
        write!(out, "{text}")?;
    } else {
        writeln!(out, "{text}")?;
    }
    out.flush()
}

fn client(net: &NetStack, target: SocketAddrV4, message: &str) -> io::Result<()> {
    let mut stream = TcpStream::connect(net, target)?;
    stream.write_all(message.as_bytes())?;
    stream.shutdown(Shutdown::Write)?;
    // Wait (bounded) for the peer to close too, so our last ACK goes out.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    report(&stream);
    Ok(())
}

/// stdin -> connection (half-close on EOF), connection -> stdout, until
/// both are done; progress on stderr when it is a terminal.
fn pipe_stdio(stream: TcpStream) -> io::Result<()> {
    let progress = cli::progress::Progress::start();
    let counts = progress.counts();
    let writer = stream.try_clone()?;
    let up = progress.counts();
    let upload = thread::Builder::new()
        .name("stdin".into())
        .spawn(move || -> io::Result<()> {
            let mut stdin = io::stdin().lock();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = stdin.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                (&writer).write_all(&buf[..n])?;
                up.sent
                    .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            }
            writer.shutdown(Shutdown::Write)
        })?;
    let mut stdout = io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = (&stream).read(&mut buf)?;
        if n == 0 {
            break;
        }
        stdout.write_all(&buf[..n])?;
        counts
            .received
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }
    stdout.flush()?;
    let r = match upload.join() {
        Ok(r) => r,
        Err(_) => Err(io::Error::other("stdin thread panicked")),
    };
    drop(progress);
    report(&stream);
    r
}
