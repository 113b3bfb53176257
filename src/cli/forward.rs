//! `utcp forward`: the relay of [`utcp::forward`] on a tokio runtime, over
//! one stack or every shard, until SIGINT or SIGTERM; then the counters.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use utcp::forward::{Credentials, ForwardConfig, Forwarder, Socks5};
use utcp::socket::NetStack;

/// The command's options (see `utcp forward --help`).
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Relay through this SOCKS5 proxy (RFC 1928) instead of connecting
    /// directly, e.g. 10.98.0.2:1080.
    #[arg(long, value_name = "HOST:PORT")]
    socks5: Option<SocketAddr>,
    /// Username and password for the proxy (RFC 1929), as USER:PASS.
    /// Prefer the environment variable: arguments are visible to other
    /// users of the machine.
    #[arg(
        long,
        value_name = "USER:PASS",
        env = "UTCP_SOCKS5_AUTH",
        hide_env_values = true
    )]
    socks5_auth: Option<String>,
    /// Set SO_MARK on every outgoing socket, for policy routing that keeps
    /// them out of the TUN device (ip rule add fwmark M table T).
    #[arg(long, value_name = "M")]
    mark: Option<u32>,
    /// Give up an outgoing connect after this long (seconds); the client
    /// is then reset.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    connect_timeout: u64,
    /// Relays at once; connections beyond are reset.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    max_relays: u64,
}

impl Args {
    /// The relay's settings from the options.
    pub fn config(&self) -> io::Result<ForwardConfig> {
        let mut cfg = ForwardConfig::default();
        cfg.outbound.mark = self.mark;
        cfg.outbound.connect_timeout = Duration::from_secs(self.connect_timeout.max(1));
        cfg.max_relays = self.max_relays;
        let credentials = match &self.socks5_auth {
            None => None,
            Some(auth) => {
                let (user, pass) = auth.split_once(':').ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "--socks5-auth takes USER:PASS")
                })?;
                Some(Credentials::new(user, pass)?)
            }
        };
        cfg.outbound.socks5 = match (self.socks5, credentials) {
            (Some(proxy), credentials) => Some(Socks5 { proxy, credentials }),
            (None, Some(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "--socks5-auth needs --socks5",
                ))
            }
            (None, None) => None,
        };
        Ok(cfg)
    }
}

/// Relays every connection of every stack until SIGINT or SIGTERM, then
/// prints the counters.
pub fn run(stacks: &[NetStack], cfg: ForwardConfig, dev: &str) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("forward")
        .build()?;
    let forwarder = Forwarder::new(cfg.clone());
    let result = runtime.block_on(async {
        let mut serving = tokio::task::JoinSet::new();
        for net in stacks {
            let listener = utcp::tokio::TcpListener::bind_any(net).await?;
            let f = forwarder.clone();
            serving.spawn(async move { f.serve(listener).await });
        }
        let via = match &cfg.outbound.socks5 {
            Some(p) => format!("through the SOCKS5 proxy {}", p.proxy),
            None => "directly".to_owned(),
        };
        eprintln!("utcp: forwarding every TCP connection on {dev} {via}");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
            Some(r) = serving.join_next() => match r {
                Ok(r) => r,
                Err(e) => Err(io::Error::other(format!("a relay task failed: {e}"))),
            },
        }
    });
    eprintln!("utcp: forward: {}", forwarder.stats());
    // Relays still running are dropped with the runtime.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}
