//! `utcp`: the command-line face of the stack. See `utcp --help`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use clap::{Parser, Subcommand};
use utcp::cc::Algorithm;
use utcp::device::impair::Impairment;
use utcp::socket::{
    Events, Interest, NetStack, Poll, RuntimeOptions, TcpListener, TcpStream, Token,
};
use utcp::stack::StackConfig;

/// A user-space TCP/IPv4 stack over a Linux TUN device.
///
/// utcp attaches to an existing TUN device (create it with
/// scripts/setup-tun.sh) and answers for --addr on it: the kernel on the
/// other side of the device talks to utcp as to any other host. Run it in the
/// network namespace that holds the device, as root.
///
/// Set RUST_LOG=debug to watch every connection's state transitions and
/// retransmissions; RUST_LOG=trace shows every segment.
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
    /// cause, SRTT/RTO, cwnd...) to stderr when it ends.
    #[arg(long, global = true)]
    stats: bool,

    /// Congestion control for every connection: newreno (RFC 5681, RFC 6582)
    /// or cubic (RFC 9438).
    #[arg(long = "cc", global = true, value_name = "ALGORITHM", default_value_t = Algorithm::default())]
    congestion: Algorithm,

    /// HyStart++ (RFC 9406) for CUBIC's slow start: leave it on a rising
    /// RTT instead of on the first loss. Off by default.
    #[arg(long, global = true)]
    hystart: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
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
}

fn main() -> ExitCode {
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
    let opts = RuntimeOptions {
        impairment: cli.impair.clone(),
        ..RuntimeOptions::default()
    };
    if let Some(imp) = &cli.impair {
        log::info!("impairing {} in both directions: {imp}", cli.dev);
    }
    let mut cfg = StackConfig::new(cli.addr);
    cfg.tcp.congestion = cli.congestion;
    cfg.tcp.hystart = cli.hystart;
    log::debug!("congestion control: {}", cli.congestion);
    let net = NetStack::tun_with_options(&cli.dev, cfg, opts)?;
    PRINT_STATS.store(cli.stats, std::sync::atomic::Ordering::Relaxed);
    let result = run_command(&net, cli.command);
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
    result
}

static PRINT_STATS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// With --stats, prints what the connection went through.
fn report(stream: &TcpStream) {
    if PRINT_STATS.load(std::sync::atomic::Ordering::Relaxed) {
        if let (Ok(peer), Ok(info)) = (stream.peer_addr(), stream.info()) {
            eprintln!("utcp: stats {peer}: {info}");
        }
    }
}

fn run_command(net: &NetStack, command: Command) -> io::Result<()> {
    let net = net.clone();
    match command {
        Command::Server { port } => serve(&net, port, seed_connection),
        Command::Echo { port } => serve_polled(&net, port, Mode::Echo),
        Command::Sink { port } => serve_polled(&net, port, Mode::Sink),
        Command::Client { target, message } => client(&net, target, &message),
        Command::Connect { target } => {
            let stream = TcpStream::connect(&net, target)?;
            pipe_stdio(stream)
        }
        Command::Listen { port } => {
            let listener = bind(&net, port)?;
            let (stream, peer) = listener.accept()?;
            eprintln!("utcp: connection from {peer}");
            drop(listener);
            pipe_stdio(stream)
        }
    }
}

fn bind(net: &NetStack, port: u16) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(net, port)?;
    eprintln!("utcp: listening on {}", listener.local_addr()?);
    Ok(listener)
}

/// Accepts forever, one thread per connection, like the seed's goroutines.
fn serve(net: &NetStack, port: u16, handler: fn(TcpStream) -> io::Result<()>) -> io::Result<()> {
    let listener = bind(net, port)?;
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

/// What a [`serve_polled`] server does with its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Every byte comes back; a half-close is answered once all is echoed.
    Echo,
    /// Reads everything, prints "<peer> <N> bytes" at EOF.
    Sink,
}

/// The listener's token; connections get 1, 2, ...
const LISTENER: Token = Token(0);

/// One connection of a [`serve_polled`] server.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Echo: read and not yet written back.
    pending: Vec<u8>,
    /// The peer's FIN was read.
    eof: bool,
    /// Sink: bytes read.
    total: u64,
}

/// Serves every connection from one thread through `Poll`, with
/// non-blocking streams (no thread per connection).
fn serve_polled(net: &NetStack, port: u16, mode: Mode) -> io::Result<()> {
    let listener = bind(net, port)?;
    listener.set_nonblocking(true)?;
    let mut poll = Poll::new(net)?;
    poll.register(&listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut next = 1;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        poll.poll(&mut events, None)?;
        for ev in &events {
            if ev.token() == LISTENER {
                accept_ready(&listener, &poll, &mut conns, &mut next)?;
                continue;
            }
            let Some(c) = conns.get_mut(&ev.token().0) else {
                continue;
            };
            match c.serve(mode, &poll, ev.token(), &mut buf) {
                Ok(false) => {}
                Ok(true) => {
                    if let Some(c) = conns.remove(&ev.token().0) {
                        c.finish(mode)?;
                    }
                }
                Err(e) => {
                    eprintln!("utcp: connection from {}: {e}", c.peer);
                    conns.remove(&ev.token().0);
                }
            }
        }
    }
}

/// Accepts every connection that is ready and registers it.
fn accept_ready(
    listener: &TcpListener,
    poll: &Poll,
    conns: &mut HashMap<usize, Conn>,
    next: &mut usize,
) -> io::Result<()> {
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(v) => v,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        log::info!("connection from {peer}");
        stream.set_nonblocking(true)?;
        poll.register(&stream, Token(*next), Interest::READABLE)?;
        let c = Conn {
            stream,
            peer,
            pending: Vec::new(),
            eof: false,
            total: 0,
        };
        conns.insert(*next, c);
        *next += 1;
    }
}

impl Conn {
    /// Does what can be done without blocking; true when the connection is
    /// done (echo: everything echoed and our FIN sent; sink: EOF).
    fn serve(&mut self, mode: Mode, poll: &Poll, token: Token, buf: &mut [u8]) -> io::Result<bool> {
        // A budget, so one busy connection does not starve the others; the
        // poll is level-triggered and reports what is left next time.
        for _ in 0..64 {
            if !self.pending.is_empty() {
                match (&self.stream).write(&self.pending) {
                    Ok(n) => {
                        self.pending.drain(..n);
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            if self.eof {
                break;
            }
            match (&self.stream).read(buf) {
                Ok(0) => self.eof = true,
                Ok(n) if mode == Mode::Echo => self.pending.extend_from_slice(&buf[..n]),
                Ok(n) => self.total += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if self.eof && self.pending.is_empty() {
            if mode == Mode::Echo {
                self.stream.shutdown(Shutdown::Write)?;
            }
            return Ok(true);
        }
        // Reading waits while echoed bytes wait for room (backpressure).
        let interest = if self.pending.is_empty() {
            Interest::READABLE
        } else {
            Interest::WRITABLE
        };
        poll.reregister(&self.stream, token, interest)?;
        Ok(false)
    }

    /// The connection is done: --stats, and the sink's line.
    fn finish(self, mode: Mode) -> io::Result<()> {
        report(&self.stream);
        if mode == Mode::Sink {
            let mut out = io::stdout().lock();
            writeln!(out, "{} {} bytes", self.peer, self.total)?;
            out.flush()?;
        }
        Ok(())
    }
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

/// stdin -> connection (half-close on EOF), connection -> stdout, until both are done.
fn pipe_stdio(stream: TcpStream) -> io::Result<()> {
    let writer = stream.try_clone()?;
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
    }
    stdout.flush()?;
    let r = match upload.join() {
        Ok(r) => r,
        Err(_) => Err(io::Error::other("stdin thread panicked")),
    };
    report(&stream);
    r
}
