//! Interop tests under packet loss: the utcp binary against the Linux kernel's
//! TCP over a TUN device, with packets lost, duplicated and reordered on
//! purpose, and a slow reader. Needs root, /dev/net/tun, iproute2,
//! netcat-openbsd and nftables; run with `scripts/test.sh --test interop_loss`
//! or `cargo test --release --test interop_loss -- --nocapture` as root.
//!
//! Network rule: every test creates its own network namespace
//! (`utcpt-<pid>-<n>`, see `tests/common/mod.rs`) holding the TUN device
//! (kernel side 10.77.0.1/24, utcp answers for 10.77.0.2). Every command runs
//! under `ip netns exec NS ...`, and kernel-side sockets are only opened from
//! threads that entered the namespace with setns. Nothing is ever sent toward
//! 10.77.0.x from the root namespace. Processes are killed by PID and the
//! namespace is deleted by drop guards, also when a test fails; every wait is
//! bounded.
//!
//! How the loss is injected:
//! - kernel side: an nftables table `inet utcptest` inside the namespace drops
//!   5% of the TCP packets crossing the TUN device in each direction (hook
//!   `input` for packets from utcp, hook `output` for packets to utcp), with
//!   counters that prove it happened. The device's `gso_max_segs` is set to 1
//!   first: otherwise the output hook sees GSO super-packets (up to 64 KiB)
//!   and "5% of packets" would be 5% of bursts of ~17 segments.
//! - utcp side: utcp's own `--impair` option, which drops, duplicates, delays
//!   and reorders packets in and out at its device; utcp prints what it did on
//!   stderr at exit, and the tests check that line.
//!
//! Transfer times are printed (eprintln!, see them with --nocapture) but not
//! asserted: only correctness and generous upper bounds are.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use utcp::testing::{pattern_fill, random_bytes};

const TWENTY_MB: usize = 20_000_000;
const FIVE_MB: usize = 5_000_000;

/// (packets dropped from utcp, packets dropped to utcp) so far.
fn nft_drops(ns: &Netns) -> (u64, u64) {
    let counters = ns.nft_counters("inet", "utcptest");
    let get = |chain: &str| {
        counters
            .iter()
            .find(|c| c.chain == chain)
            .map(|c| c.packets)
            .unwrap_or_else(|| panic!("no counter in chain {chain}: {counters:?}"))
    };
    (get("from_utcp"), get("to_utcp"))
}

#[test]
fn twenty_megabytes_each_way_at_5_percent_kernel_loss() {
    let ns = Netns::new();
    ns.set_gso_max_segs(1);
    ns.nft_apply(NFT_LOSS_RULES);
    assert_eq!(
        nft_drops(&ns),
        (0, 0),
        "the loss rules should start with zero counters"
    );

    let data = random_bytes(TWENTY_MB, 0x1055_0001);
    let k2u = kernel_to_utcp(&ns, "nft 5% loss", &data, 5101, &[]);
    let after_k2u = nft_drops(&ns);
    eprintln!(
        "nft 5% loss: kernel->utcp dropped {} packets from utcp (ACKs), {} to utcp (data)",
        after_k2u.0, after_k2u.1
    );
    assert!(
        after_k2u.0 > 0 && after_k2u.1 > 0,
        "the nftables rules dropped nothing in some direction during kernel->utcp: {after_k2u:?}\n{}",
        k2u.utcp_stderr
    );

    let data = random_bytes(TWENTY_MB, 0x1055_0002);
    let u2k = utcp_to_kernel(&ns, "nft 5% loss", &data, 5102, &[]);
    let after_u2k = nft_drops(&ns);
    let delta = (after_u2k.0 - after_k2u.0, after_u2k.1 - after_k2u.1);
    eprintln!(
        "nft 5% loss: utcp->kernel dropped {} packets from utcp (data), {} to utcp (ACKs)",
        delta.0, delta.1
    );
    assert!(
        delta.0 > 0 && delta.1 > 0,
        "the nftables rules dropped nothing in some direction during utcp->kernel: {delta:?}\n{}",
        u2k.utcp_stderr
    );
    eprintln!(
        "nft 5% loss: kernel->utcp {:.2} s, utcp->kernel {:.2} s",
        k2u.elapsed.as_secs_f64(),
        u2k.elapsed.as_secs_f64()
    );
}

/// nftables rules dropping `pct`% of the TCP packets through the TUN device
/// in each direction (as [`NFT_LOSS_RULES`] does for 5%).
fn nft_loss_rules(pct: u32) -> String {
    NFT_LOSS_RULES.replace("< 5 counter", &format!("< {pct} counter"))
}

/// 5 MB each way byte-exact through the kernel with `utcp --cc ALG` under
/// `pct`% nftables loss in both directions; prints the times (the table in
/// docs/reliability.md comes from these lines).
fn congestion_control_under_kernel_loss(alg: &str, pct: u32, port: u16) {
    let ns = Netns::new();
    ns.set_gso_max_segs(1);
    ns.nft_apply(&nft_loss_rules(pct));
    let what = format!("--cc {alg}, nft {pct}% loss");
    let opts = ["--cc", alg, "--stats"];
    let data = random_bytes(FIVE_MB, 0xCC00_0000 + u64::from(port));
    let k2u = kernel_to_utcp(&ns, &what, &data, port, &opts);
    let u2k = utcp_to_kernel(&ns, &what, &data, port + 1, &opts);
    let drops = nft_drops(&ns);
    assert!(
        drops.0 > 0 && drops.1 > 0,
        "{what}: the nftables rules dropped nothing in some direction: {drops:?}"
    );
    eprintln!(
        "{what}: kernel->utcp {:.2} s, utcp->kernel {:.2} s, dropped {drops:?}",
        k2u.elapsed.as_secs_f64(),
        u2k.elapsed.as_secs_f64()
    );
    for line in u2k.utcp_stderr.lines().filter(|l| l.contains("stats")) {
        eprintln!("{what}: utcp->kernel sender {line}");
    }
}

#[test]
fn cubic_five_megabytes_each_way_at_5_percent_kernel_loss() {
    congestion_control_under_kernel_loss("cubic", 5, 5401);
}

#[test]
fn cubic_five_megabytes_each_way_at_10_percent_kernel_loss() {
    congestion_control_under_kernel_loss("cubic", 10, 5403);
}

#[test]
fn newreno_five_megabytes_each_way_at_5_percent_kernel_loss() {
    congestion_control_under_kernel_loss("newreno", 5, 5407);
}

#[test]
fn newreno_five_megabytes_each_way_at_10_percent_kernel_loss() {
    congestion_control_under_kernel_loss("newreno", 10, 5405);
}

/// utcp's impairment summary from a transfer, or a failure with its stderr.
fn summary(what: &str, t: &Transfer) -> ImpairSummary {
    parse_impair_summary(&t.utcp_stderr).unwrap_or_else(|| {
        panic!(
            "{what}: utcp printed no impairment summary line:\n{}",
            t.utcp_stderr
        )
    })
}

#[test]
fn twenty_megabytes_each_way_with_utcp_impairment() {
    let ns = Netns::new();
    let data = random_bytes(TWENTY_MB, 0x1055_0011);
    let k2u = kernel_to_utcp(
        &ns,
        "utcp drop=5%",
        &data,
        5201,
        &["--impair", "drop=5%,seed=11"],
    );
    let s = summary("kernel->utcp", &k2u);
    eprintln!("utcp drop=5%: kernel->utcp impairment {s:?}");
    assert!(
        s.dropped[0] > 0 && s.dropped[1] > 0,
        "kernel->utcp: utcp should have dropped packets in and out: {s:?}"
    );

    let data = random_bytes(TWENTY_MB, 0x1055_0012);
    let u2k = utcp_to_kernel(
        &ns,
        "utcp drop=5%",
        &data,
        5202,
        &["--impair", "drop=5%,seed=12"],
    );
    let s = summary("utcp->kernel", &u2k);
    eprintln!("utcp drop=5%: utcp->kernel impairment {s:?}");
    assert!(
        s.dropped[0] > 0 && s.dropped[1] > 0,
        "utcp->kernel: utcp should have dropped packets in and out: {s:?}"
    );
    eprintln!(
        "utcp drop=5%: kernel->utcp {:.2} s, utcp->kernel {:.2} s",
        k2u.elapsed.as_secs_f64(),
        u2k.elapsed.as_secs_f64()
    );
}

#[test]
fn impairment_reorder_and_duplicate() {
    const SPEC_K2U: &str = "reorder=5%,dup=5%,delay=1ms,jitter=1ms,seed=21";
    const SPEC_U2K: &str = "reorder=5%,dup=5%,delay=1ms,jitter=1ms,seed=22";
    let ns = Netns::new();
    let data = random_bytes(FIVE_MB, 0x1055_0021);
    let k2u = kernel_to_utcp(&ns, "reorder+dup", &data, 5301, &["--impair", SPEC_K2U]);
    let s = summary("kernel->utcp", &k2u);
    eprintln!("reorder+dup: kernel->utcp impairment {s:?}");
    assert!(
        s.duplicated.iter().all(|&n| n > 0) && s.reordered.iter().all(|&n| n > 0),
        "kernel->utcp: utcp should have duplicated and reordered packets in and out: {s:?}"
    );
    assert_eq!(s.dropped, [0, 0], "no drops were asked for: {s:?}");

    let data = random_bytes(FIVE_MB, 0x1055_0022);
    let u2k = utcp_to_kernel(&ns, "reorder+dup", &data, 5302, &["--impair", SPEC_U2K]);
    let s = summary("utcp->kernel", &u2k);
    eprintln!("reorder+dup: utcp->kernel impairment {s:?}");
    assert!(
        s.duplicated.iter().all(|&n| n > 0) && s.reordered.iter().all(|&n| n > 0),
        "utcp->kernel: utcp should have duplicated and reordered packets in and out: {s:?}"
    );
    assert_eq!(s.dropped, [0, 0], "no drops were asked for: {s:?}");
}

#[test]
fn slow_reader_fifty_megabytes_bounded_memory() {
    const TOTAL: u64 = 50_000_000;
    const SEED: u64 = 0x1055_0031;
    const PORT: u16 = 5401;
    /// utcp's buffers are 512 KiB each way per connection; 40 MB would mean
    /// it buffers most of the 50 MB instead of holding the sender back.
    const RSS_BOUND_KIB: u64 = 40 * 1024;
    const CHUNK: usize = 64 * 1024;
    const PAUSE: Duration = Duration::from_millis(2);
    const LIMIT: Duration = Duration::from_secs(120);

    let ns = Netns::new();
    let port_s = PORT.to_string();
    let cmd = ns.utcp_command(&["listen", "--port", &port_s]);
    // stdin /dev/null: utcp half-closes its sending side at once.
    let (mut utcp, mut stdout) = ns.spawn_with_stdout_pipe("utcp listen", cmd, Stdio::null());
    if let Err(e) = utcp.wait_for_stderr(LISTENING, READY_TIMEOUT) {
        panic!("utcp listen never became ready: {e}\n{}", utcp.log());
    }
    // `ip netns exec` execs utcp, so the child's PID is utcp's own.
    let pid = utcp.pid();
    assert_eq!(
        proc_comm(pid).as_deref(),
        Some("utcp"),
        "pid {pid} should be the utcp process"
    );
    // Non-blocking reads so the reading loop stays bounded in time.
    let fd = stdout.as_raw_fd();
    // SAFETY: fcntl on a pipe fd we own, with valid commands and flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        assert!(flags >= 0, "fcntl(F_GETFL) failed");
        assert_eq!(
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK),
            0,
            "fcntl(F_SETFL) failed"
        );
    }

    // The kernel side: a std::net stream in the namespace writing the
    // generated bytes as fast as utcp's window lets it.
    let server: SocketAddr = format!("{UTCP_IP}:{PORT}").parse().unwrap();
    let writer = ns.spawn_thread(move || -> Result<Duration, String> {
        let start = Instant::now();
        let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(10))
            .map_err(|e| format!("connect {server}: {e}"))?;
        s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut buf = vec![0u8; CHUNK];
        let mut sent = 0u64;
        while sent < TOTAL {
            let n = (TOTAL - sent).min(CHUNK as u64) as usize;
            pattern_fill(SEED, sent, &mut buf[..n]);
            s.write_all(&buf[..n])
                .map_err(|e| format!("write at offset {sent}: {e}"))?;
            sent += n as u64;
        }
        s.shutdown(Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))?;
        let elapsed = start.elapsed();
        // utcp sent its FIN right away (its stdin is /dev/null) and nothing else.
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)
            .map_err(|e| format!("waiting for utcp's FIN: {e}"))?;
        if !rest.is_empty() {
            return Err(format!("utcp sent {} unexpected bytes", rest.len()));
        }
        Ok(elapsed)
    });

    let start = Instant::now();
    let deadline = start + LIMIT;
    let mut buf = vec![0u8; CHUNK];
    let mut expected = vec![0u8; CHUNK];
    let mut got = 0u64;
    let mut reads = 0u64;
    let mut rss_samples = Vec::new();
    let mut next_sample = start;
    let mut ss_samples = 0;
    let mut rwnd_limited_seen = None;
    let mut next_ss = start + Duration::from_millis(300);
    // Bounded: every iteration either reads data, sleeps, or hits the deadline.
    loop {
        let now = Instant::now();
        if now >= deadline {
            panic!(
                "slow reader: only {got} of {TOTAL} bytes after {LIMIT:?}\n{}",
                utcp.log()
            );
        }
        if now >= next_sample {
            if let Some(kib) = vm_rss_kib(pid) {
                rss_samples.push(kib);
            }
            next_sample = now + Duration::from_millis(100);
        }
        if now >= next_ss && ss_samples < 20 {
            // Optional observation: is the kernel sender limited by utcp's window?
            ss_samples += 1;
            next_ss = now + Duration::from_millis(500);
            let mut cmd = ns.command("ss");
            cmd.args(["-tin", "dst", UTCP_IP]);
            let (_, out, _) = run_bounded(cmd, Duration::from_secs(10));
            if let Some(w) = out
                .split_whitespace()
                .find(|w| w.starts_with("rwnd_limited:"))
            {
                rwnd_limited_seen = Some(w.to_string());
            }
        }
        match stdout.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                reads += 1;
                if got + n as u64 > TOTAL {
                    panic!(
                        "slow reader: utcp delivered more than {TOTAL} bytes\n{}",
                        utcp.log()
                    );
                }
                pattern_fill(SEED, got, &mut expected[..n]);
                if buf[..n] != expected[..n] {
                    let at = buf[..n]
                        .iter()
                        .zip(&expected[..n])
                        .position(|(a, b)| a != b)
                        .unwrap_or(0);
                    panic!(
                        "slow reader: data differs at offset {}\n{}",
                        got + at as u64,
                        utcp.log()
                    );
                }
                got += n as u64;
                thread::sleep(PAUSE);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(Duration::from_millis(1)),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("slow reader: reading utcp's stdout: {e}\n{}", utcp.log()),
        }
    }
    let read_elapsed = start.elapsed();

    let status = utcp.wait_or_panic(Duration::from_secs(20));
    let sender = join_bounded(writer, Duration::from_secs(70), "kernel writer thread");
    let max_rss = rss_samples.iter().copied().max().unwrap_or(0);
    eprintln!(
        "slow reader: {got} bytes in {:.2} s ({:.1} MB/s, {reads} reads), kernel writer done after {:?}",
        read_elapsed.as_secs_f64(),
        mb_per_s(got as usize, read_elapsed),
        sender.as_ref().map(|d| format!("{:.2} s", d.as_secs_f64())),
    );
    eprintln!(
        "slow reader: utcp VmRSS max {max_rss} KiB over {} samples (first {:?}, last {:?}); \
         kernel ss rwnd_limited: {}",
        rss_samples.len(),
        rss_samples.first(),
        rss_samples.last(),
        rwnd_limited_seen.as_deref().unwrap_or("not seen")
    );
    assert_eq!(got, TOTAL, "slow reader: byte count\n{}", utcp.log());
    assert!(
        status.success(),
        "utcp listen exited with {status}\n{}",
        utcp.log()
    );
    if let Err(e) = sender {
        panic!("kernel writer: {e}\n{}", utcp.log());
    }
    assert!(
        rss_samples.len() >= 3,
        "slow reader: only {} RSS samples of utcp were taken",
        rss_samples.len()
    );
    assert!(
        max_rss < RSS_BOUND_KIB,
        "utcp's RSS reached {max_rss} KiB (bound {RSS_BOUND_KIB} KiB) with a slow reader: \
         it buffers instead of closing its window; samples {rss_samples:?}"
    );
}
