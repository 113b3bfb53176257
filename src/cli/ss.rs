//! The live connection table: `kill -USR1 <pid>` makes a running `utcp`
//! print every connection of its stacks on stderr, in the shape of
//! `ss -tni` (a header line, then per connection a line with state, queues
//! and addresses and an indented line of TCP internals: window scales
//! (the peer's, ours), RTO and RTT/RTTVAR in ms, MSS, cwnd and ssthresh in
//! segments, bytes and segments each way, retransmissions of every kind,
//! the peer's window in bytes, SACK and timestamps when negotiated).

use std::fmt::Write as _;
use std::io;
use std::time::Duration;

use utcp::socket::{Connection, WeakNetStack};

/// Blocks SIGUSR1 in the calling thread and so in every thread it starts
/// later: call first thing in `main`, before any thread exists. The signal
/// then waits for [`watch`]'s `sigwait` instead of killing the process.
pub fn block_sigusr1() -> io::Result<()> {
    let set = sigusr1_set();
    // SAFETY: set is an initialised sigset_t; a null old-set is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

fn sigusr1_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set; SIGUSR1 is valid.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        set
    }
}

/// Starts the thread that prints the table of `stacks` on every SIGUSR1.
/// It holds weak handles only, so the stacks still stop when the command
/// is done with them.
pub fn watch(stacks: Vec<WeakNetStack>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("utcp-ss".into())
        .spawn(move || {
            let set = sigusr1_set();
            loop {
                let mut sig: libc::c_int = 0;
                // SAFETY: set is initialised, sig is a valid out pointer.
                if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                    return;
                }
                let conns: Vec<Connection> = stacks
                    .iter()
                    .filter_map(WeakNetStack::upgrade)
                    .flat_map(|net| net.connections())
                    .collect();
                eprint!("{}", table(&conns));
            }
        })?;
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// The table, `ss -tni`-shaped.
pub fn table(conns: &[Connection]) -> String {
    let mut out = format!(
        "{:<12} {:>8} {:>8} {:<22} {:<22}\n",
        "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port"
    );
    for c in conns {
        let i = &c.info;
        let s = &i.stats;
        let retrans = s.retransmits_timeout
            + s.fast_retransmits
            + s.partial_ack_retransmits
            + s.sack_retransmits
            + s.tail_loss_probes
            + s.lost_retransmits;
        let rtt = match (i.srtt, i.rttvar) {
            (Some(srtt), Some(var)) => format!(" rtt:{}/{}", ms(srtt), ms(var)),
            _ => String::new(),
        };
        // In segments, as ss prints them: cwnd counts payload bytes, which
        // timestamps make 12 fewer than the MSS per segment, so round.
        let mss = i.mss.max(1);
        let segments = |bytes: u32| bytes.saturating_add(mss / 2) / mss;
        let ssthresh = if i.ssthresh == u32::MAX {
            String::new()
        } else {
            format!(" ssthresh:{}", segments(i.ssthresh))
        };
        let _ = writeln!(
            out,
            "{:<12} {:>8} {:>8} {:<22} {:<22}",
            i.state.to_string(),
            i.recv_queued,
            i.send_queued,
            c.local.to_string(),
            c.peer.to_string()
        );
        let _ = writeln!(
            out,
            "\t wscale:{},{} rto:{}{rtt} mss:{} cwnd:{}{ssthresh} bytes_sent:{} \
             bytes_received:{} segs_out:{} segs_in:{} retrans:{retrans} rwnd:{}{}{}",
            i.window_scales.1,
            i.window_scales.0,
            ms(i.rto),
            i.mss,
            segments(i.cwnd),
            s.bytes_out,
            s.bytes_in,
            s.segs_out,
            s.segs_in,
            i.peer_window,
            if i.sack { " sack" } else { "" },
            if i.timestamps { " ts" } else { "" },
        );
    }
    out
}
