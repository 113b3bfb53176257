//! Parsing of packetdrill's `--so_flags` string into the stack's knobs.
//!
//! The string is a list of `key=value` items separated by commas or spaces,
//! e.g. `ip=192.168.0.1,mss=1460,sack=off,ts=off,delack=off`. Every key is
//! optional; see [`Flags`] for the keys and their defaults.

use std::net::Ipv4Addr;
use std::time::Duration;

use utcp::cc::Algorithm;
use utcp::stack::StackConfig;
use utcp::tcb::TcpConfig;

/// Which clock the adapter shows packetdrill (and runs the stack on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockMode {
    /// A simulated clock: every `gettimeofday` advances it by 1 µs, `usleep`
    /// jumps it forward (running every timer deadline on the way), and
    /// `netdev_receive` jumps to the next timer when nothing is queued.
    /// Runs are fast and deterministic.
    Fake,
    /// The real wall clock; `usleep` really sleeps.
    Real,
}

/// The adapter's configuration, parsed from `--so_flags`.
#[derive(Clone, Debug)]
pub struct Flags {
    /// `ip=` (alias `local_ip=`): the stack's address; must match
    /// packetdrill's `--local_ip`. Default 192.168.0.1.
    pub addr: Ipv4Addr,
    /// `mss=`: the MSS we announce (the stack's MTU is this plus 40). Default 1460.
    pub mss: u16,
    /// `iw=` (alias `initial_window=`): initial congestion window in
    /// segments, 0 for RFC 6928's formula. Default 10.
    pub initial_window: u32,
    /// `wscale=on|off`: offer window scaling. Default on.
    pub window_scaling: bool,
    /// `rcvbuf=`: receive buffer in bytes (the largest window; also picks
    /// our window-scale shift). Default 65535.
    pub recv_buffer: usize,
    /// `sndbuf=`: send buffer in bytes. Default 262144.
    pub send_buffer: usize,
    /// `delack=on|off`, or `delack_ms=N`: delayed ACKs. Default off.
    pub ack_delay: Option<Duration>,
    /// `min_rto_ms=`: lower bound of the RTO. Default 200.
    pub min_rto: Duration,
    /// `initial_rto_ms=`: RTO before any RTT sample. Default 1000.
    pub initial_rto: Duration,
    /// `max_rto_ms=`: upper bound of the RTO. Default 60000.
    pub max_rto: Duration,
    /// `sack=on|off`: offer SACK-permitted. Default off.
    pub sack: bool,
    /// `ts=on|off`: offer timestamps. Default off.
    pub timestamps: bool,
    /// `tlp=on|off`: tail loss probes. Default off.
    pub tail_loss_probe: bool,
    /// `nagle=on|off`: Nagle's algorithm for new sockets. Default on.
    pub nagle: bool,
    /// `retries=`: retransmissions before a connection times out. Default 8.
    pub max_retries: u32,
    /// `syn_retries=`: SYN retransmissions before connect times out. Default 5.
    pub max_syn_retries: u32,
    /// `msl_ms=`: maximum segment lifetime (TIME-WAIT is twice it). Default 1000.
    pub msl: Duration,
    /// `seed=`: seed for ISNs and ports (deterministic runs). Default 1.
    pub seed: u64,
    /// `clock=fake|real`. Default fake.
    pub clock: ClockMode,
    /// `cc=newreno|cubic`: the congestion controller. Default newreno.
    pub congestion: Algorithm,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            addr: Ipv4Addr::new(192, 168, 0, 1),
            mss: 1460,
            initial_window: 10,
            window_scaling: true,
            recv_buffer: 65535,
            send_buffer: 256 * 1024,
            ack_delay: None,
            min_rto: Duration::from_millis(200),
            initial_rto: Duration::from_secs(1),
            max_rto: Duration::from_secs(60),
            sack: false,
            timestamps: false,
            tail_loss_probe: false,
            nagle: true,
            max_retries: 8,
            max_syn_retries: 5,
            msl: Duration::from_secs(1),
            seed: 1,
            clock: ClockMode::Fake,
            congestion: Algorithm::NewReno,
        }
    }
}

fn on_off(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "on" | "1" | "true" | "yes" => Ok(true),
        "off" | "0" | "false" | "no" => Ok(false),
        _ => Err(format!("{key}: expected on or off, got {v:?}")),
    }
}

fn number<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{key}: expected a number, got {v:?}"))
}

impl Flags {
    /// Parses a `--so_flags` string; `None` or empty gives the defaults.
    pub fn parse(s: Option<&str>) -> Result<Flags, String> {
        let mut f = Flags::default();
        let Some(s) = s else { return Ok(f) };
        for item in s.split([',', ' ', '\t']).filter(|i| !i.is_empty()) {
            let (key, v) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?}: expected key=value"))?;
            match key {
                "ip" | "local_ip" => {
                    f.addr = v
                        .parse()
                        .map_err(|_| format!("{key}: not an IPv4 address: {v:?}"))?
                }
                "mss" => {
                    f.mss = number(key, v)?;
                    if f.mss < 64 {
                        return Err(format!("mss: {} is below 64", f.mss));
                    }
                }
                "iw" | "initial_window" => f.initial_window = number(key, v)?,
                "wscale" => f.window_scaling = on_off(key, v)?,
                "rcvbuf" => f.recv_buffer = number(key, v)?,
                "sndbuf" => f.send_buffer = number(key, v)?,
                "delack" => {
                    f.ack_delay = on_off(key, v)?.then_some(Duration::from_millis(40));
                }
                "delack_ms" => f.ack_delay = Some(Duration::from_millis(number(key, v)?)),
                "min_rto_ms" | "min_rto" => f.min_rto = Duration::from_millis(number(key, v)?),
                "initial_rto_ms" => f.initial_rto = Duration::from_millis(number(key, v)?),
                "max_rto_ms" => f.max_rto = Duration::from_millis(number(key, v)?),
                "sack" => f.sack = on_off(key, v)?,
                "ts" | "timestamps" => f.timestamps = on_off(key, v)?,
                "tlp" => f.tail_loss_probe = on_off(key, v)?,
                "nagle" => f.nagle = on_off(key, v)?,
                "retries" => f.max_retries = number(key, v)?,
                "syn_retries" => f.max_syn_retries = number(key, v)?,
                "msl_ms" => f.msl = Duration::from_millis(number(key, v)?),
                "seed" => f.seed = number(key, v)?,
                "cc" => f.congestion = v.parse().map_err(|e| format!("cc: {e}"))?,
                "clock" => {
                    f.clock = match v {
                        "fake" => ClockMode::Fake,
                        "real" => ClockMode::Real,
                        _ => return Err(format!("clock: expected fake or real, got {v:?}")),
                    }
                }
                _ => return Err(format!("unknown flag {key:?}")),
            }
        }
        Ok(f)
    }

    /// The stack configuration these flags describe.
    pub fn stack_config(&self) -> StackConfig {
        let mut cfg = StackConfig::new(self.addr);
        cfg.mtu = usize::from(self.mss) + 40;
        cfg.seed = Some(self.seed);
        let mut tcp = TcpConfig {
            mss: self.mss,
            recv_buffer: self.recv_buffer,
            send_buffer: self.send_buffer,
            window_scaling: self.window_scaling,
            max_retries: self.max_retries,
            max_syn_retries: self.max_syn_retries,
            msl: self.msl,
            ack_delay: self.ack_delay,
            initial_window: self.initial_window,
            nagle: self.nagle,
            timestamps: self.timestamps,
            sack: self.sack,
            tail_loss_probe: self.tail_loss_probe,
            congestion: self.congestion,
            ..TcpConfig::default()
        };
        tcp.rtt.min_rto = self.min_rto;
        tcp.rtt.initial_rto = self.initial_rto;
        tcp.rtt.max_rto = self.max_rto;
        cfg.tcp = tcp;
        cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let f = Flags::parse(None).unwrap();
        assert_eq!(f.addr, Ipv4Addr::new(192, 168, 0, 1));
        let f = Flags::parse(Some(
            "ip=10.0.0.2, mss=1000,sack=on delack_ms=10,clock=real",
        ))
        .unwrap();
        assert_eq!(f.addr, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(f.mss, 1000);
        assert!(f.sack);
        assert_eq!(f.ack_delay, Some(Duration::from_millis(10)));
        assert_eq!(f.clock, ClockMode::Real);
        assert_eq!(f.stack_config().mtu, 1040);
        assert_eq!(f.stack_config().tcp.congestion, Algorithm::NewReno);
        let f = Flags::parse(Some("cc=cubic")).unwrap();
        assert_eq!(f.stack_config().tcp.congestion, Algorithm::Cubic);
    }

    #[test]
    fn errors() {
        assert!(Flags::parse(Some("bogus=1")).is_err());
        assert!(Flags::parse(Some("mss")).is_err());
        assert!(Flags::parse(Some("sack=maybe")).is_err());
        assert!(Flags::parse(Some("ip=300.1.1.1")).is_err());
        assert!(Flags::parse(Some("cc=vegas")).is_err());
    }
}
