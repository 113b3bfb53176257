//! Real interop tests: the utcp binary against the Linux kernel's TCP/IP over a
//! TUN device, each test inside its own network namespace (see
//! `tests/common/mod.rs`). Needs root, /dev/net/tun, iproute2, iputils-ping and
//! netcat-openbsd; run with `scripts/test.sh`.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use utcp::testing::random_bytes;

const TEN_MIB: usize = 10 * 1024 * 1024;

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

#[test]
fn ping_gets_echo_reply() {
    let ns = Netns::new();
    let server = ns.spawn_utcp_listening("utcp server", &["server"], Stdio::null(), Capture::Pipe);
    let ping = ns.run(
        "ping",
        "ping",
        &["-c", "3", "-W", "2", UTCP_IP],
        b"",
        SHORT_TIMEOUT,
    );
    assert!(
        ping.status.success(),
        "ping {UTCP_IP} failed ({}):\n{}\n{}\n{}",
        ping.status,
        ping.stdout_string(),
        ping.stderr,
        server.log()
    );
}

#[test]
fn kernel_nc_sends_seed_message_to_utcp_server() {
    seed_message_to_utcp_server(&Netns::new(), &[]);
}

/// `utcp [GLOBAL...] client` (the seed client) against a kernel `nc -l` on
/// `port`: the client's result, and nc (still to be waited for).
fn utcp_client_to_kernel_nc(ns: &Netns, port: u16, global: &[&str]) -> (RunResult, Proc) {
    let mut nc_cmd = ns.command("nc");
    nc_cmd.args(["-l", KERNEL_IP, &port.to_string()]);
    let nc = ns.spawn("nc -l", nc_cmd, Stdio::null(), Capture::Pipe);
    ns.wait_for_kernel_listen(port, Duration::from_secs(10));
    let target = format!("{KERNEL_IP}:{port}");
    let mut args = global.to_vec();
    args.extend(["client", &target]);
    let client = ns.run_cmd("utcp client", ns.utcp_command(&args), b"", SHORT_TIMEOUT);
    (client, nc)
}

#[test]
fn utcp_client_sends_seed_message_to_kernel_nc() {
    let ns = Netns::new();
    let (client, mut nc) = utcp_client_to_kernel_nc(&ns, 4399, &[]);
    assert!(
        client.status.success(),
        "utcp client exited with {}: {}\nnc: {}",
        client.status,
        client.stderr,
        nc.log()
    );
    let status = nc.wait_or_panic(Duration::from_secs(10));
    assert!(status.success(), "nc -l exited with {status}\n{}", nc.log());
    assert_eq!(
        nc.stdout_string(),
        SEED_MESSAGE,
        "kernel nc received something else\nutcp client stderr: {}",
        client.stderr
    );
}

#[test]
fn ten_megabytes_kernel_to_utcp() {
    let ns = Netns::new();
    let data = random_bytes(TEN_MIB, 0x5eed_0001);
    // nc -N into `utcp listen` (whose stdin is /dev/null, so utcp half-closes
    // its own side at once): byte-exact, both exit 0.
    kernel_to_utcp(&ns, "10 MiB", &data, 5001, &[]);
}

#[test]
fn ten_megabytes_utcp_to_kernel() {
    let ns = Netns::new();
    let data = random_bytes(TEN_MIB, 0x5eed_0002);
    // `utcp connect` into nc -l: byte-exact, both exit 0.
    utcp_to_kernel(&ns, "10 MiB", &data, 5002, &[]);
}

/// `utcp echo` on port 7, listening.
fn spawn_echo(ns: &Netns) -> Proc {
    ns.spawn_utcp_listening(
        "utcp echo",
        &["echo", "--port", "7"],
        Stdio::null(),
        Capture::Pipe,
    )
}

#[test]
fn kernel_closes_first() {
    let ns = Netns::new();
    let mut echo = spawn_echo(&ns);
    let server = addr(UTCP_IP, 7);

    let result = run_in_netns(&ns, move || -> Result<(), String> {
        let msg = b"kernel closes first: ping through utcp echo\n".repeat(20);
        let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(10))
            .map_err(|e| format!("connect {server}: {e}"))?;
        s.set_read_timeout(Some(SHORT_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(SHORT_TIMEOUT)).unwrap();
        s.write_all(&msg).map_err(|e| format!("write: {e}"))?;
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back)
            .map_err(|e| format!("read echo: {e}"))?;
        if back != msg {
            return Err("echo differs from what was sent".into());
        }
        // Kernel closes first: FIN from us, then utcp must answer with its FIN
        // (read returns EOF) instead of more data or a reset.
        s.shutdown(Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))?;
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)
            .map_err(|e| format!("waiting for utcp's FIN: {e}"))?;
        if !rest.is_empty() {
            return Err(format!("unexpected {} bytes after the echo", rest.len()));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\n{}", echo.log());
    }

    // The kernel was the active closer and got utcp's FIN: its socket must be
    // in TIME-WAIT (or gone), never stuck in FIN-WAIT or ESTABLISHED.
    let peer = format!("{UTCP_IP}:7");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stuck: Vec<SockInfo> = ns
            .kernel_tcp_sockets()
            .into_iter()
            .filter(|s| s.peer == peer && s.state != "TIME-WAIT")
            .collect();
        if stuck.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            panic!(
                "kernel socket did not finish closing: {stuck:?}\n{}",
                echo.log()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }

    // utcp's side finished too: the echo server is alive and serves a new
    // connection.
    assert!(echo.is_running(), "utcp echo exited\n{}", echo.log());
    let again = run_in_netns(&ns, move || -> Result<Vec<u8>, String> {
        let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(10))
            .map_err(|e| format!("second connect: {e}"))?;
        s.set_read_timeout(Some(SHORT_TIMEOUT)).unwrap();
        s.write_all(b"again").map_err(|e| e.to_string())?;
        s.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
        let mut v = Vec::new();
        s.read_to_end(&mut v).map_err(|e| e.to_string())?;
        Ok(v)
    });
    match again {
        Ok(v) => assert_eq!(v, b"again", "second echo differs\n{}", echo.log()),
        Err(e) => panic!("{e}\n{}", echo.log()),
    }
}

#[test]
fn utcp_closes_first() {
    let ns = Netns::new();
    let port = 6000;
    let listener = run_in_netns(&ns, move || TcpListener::bind(addr(KERNEL_IP, port)))
        .expect("bind kernel listener in the namespace");
    listener.set_nonblocking(true).unwrap();

    let message = "utcp closes first";
    let target = format!("{KERNEL_IP}:{port}");
    let mut client = ns.spawn_utcp(
        "utcp client",
        &["client", &target, "--message", message],
        Stdio::null(),
        Capture::Pipe,
    );

    // Accept (bounded).
    let deadline = Instant::now() + SHORT_TIMEOUT;
    let (mut conn, peer) = loop {
        match listener.accept() {
            Ok(c) => break c,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if let Some(status) = client.try_status() {
                    panic!(
                        "utcp client exited ({status}) without connecting\n{}",
                        client.log()
                    );
                }
                if Instant::now() >= deadline {
                    panic!("utcp client never connected\n{}", client.log());
                }
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}\n{}", client.log()),
        }
    };
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(SHORT_TIMEOUT)).unwrap();

    // utcp writes and closes first: we read the message, then EOF.
    let mut got = Vec::new();
    if let Err(e) = conn.read_to_end(&mut got) {
        panic!("reading from utcp client: {e}\n{}", client.log());
    }
    assert_eq!(
        String::from_utf8_lossy(&got),
        message,
        "kernel received something else\n{}",
        client.log()
    );
    // The kernel is now the passive closer.
    let peer_s = peer.to_string();
    let states: Vec<String> = ns
        .kernel_tcp_sockets()
        .into_iter()
        .filter(|s| s.peer == peer_s)
        .map(|s| s.state)
        .collect();
    assert_eq!(
        states,
        vec!["CLOSE-WAIT".to_string()],
        "kernel socket should be in CLOSE-WAIT after utcp's FIN\n{}",
        client.log()
    );
    drop(conn); // our FIN

    let status = client.wait_or_panic(SHORT_TIMEOUT);
    assert!(
        status.success(),
        "utcp client exited with {status}\n{}",
        client.log()
    );

    // utcp must have ACKed our FIN: no kernel socket left in LAST-ACK.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<SockInfo> = ns
            .kernel_tcp_sockets()
            .into_iter()
            .filter(|s| s.peer == peer_s)
            .collect();
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            panic!(
                "kernel socket did not finish closing (utcp never ACKed its FIN?): {left:?}\n{}",
                client.log()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn connect_to_closed_port_is_refused() {
    let ns = Netns::new();
    let target = format!("{KERNEL_IP}:5999");
    let client = ns.run_cmd(
        "utcp client",
        ns.utcp_command(&["client", &target]),
        b"",
        SHORT_TIMEOUT,
    );
    assert!(
        !client.status.success(),
        "utcp client to a closed port should fail, got {}\nstderr: {}",
        client.status,
        client.stderr
    );
    assert!(
        client.stderr.to_lowercase().contains("refused"),
        "stderr should say the connection was refused: {}",
        client.stderr
    );
}

#[test]
fn fifty_concurrent_echo_connections() {
    concurrent_echo(&Netns::new(), 50, 16 * 1024, &[]);
}

/// Sends `count` SYNs to utcp's echo port through a raw socket in the
/// namespace, in bursts of 100 every 5 ms, from spoofed sources
/// 10.77.0.100-249 (addresses nobody holds: the kernel drops the SYN-ACKs,
/// it does not forward) with random ports and ISNs. Returns how many the
/// kernel took.
fn syn_flood(count: usize, port: u16) -> usize {
    use std::net::{Ipv4Addr, SocketAddrV4};
    use utcp::testing::{encode, segment};
    use utcp::wire::{TcpFlags, TcpOptions, TcpSegment};
    // SAFETY: plain socket(2); the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
    let dst: Ipv4Addr = UTCP_IP.parse().unwrap();
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(dst).to_be(),
        },
        sin_zero: [0; 8],
    };
    let mut x = 0x2545_f491_u64;
    let mut sent = 0;
    for i in 0..count {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let src = SocketAddrV4::new(
            Ipv4Addr::new(10, 77, 0, 100 + (x % 150) as u8),
            1024 + (x >> 16) as u16 % 60000,
        );
        let syn = TcpSegment {
            options: TcpOptions {
                mss: Some(1460),
                timestamp: Some(((x >> 32) as u32, 0)),
                sack_permitted: true,
                window_scale: Some(7),
                ..TcpOptions::default()
            },
            ..segment(
                src,
                SocketAddrV4::new(dst, port),
                TcpFlags::SYN,
                x as u32,
                0,
                &[],
            )
        };
        let pkt = encode(&syn);
        // SAFETY: pkt and sin outlive the call; lengths are theirs.
        let n = unsafe {
            libc::sendto(
                fd,
                pkt.as_ptr().cast(),
                pkt.len(),
                0,
                (&sin as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if n > 0 {
            sent += 1;
        }
        if i % 100 == 99 {
            thread::sleep(Duration::from_millis(5));
        }
    }
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    sent
}

/// One echo exchange from the kernel, bounded: true if it connected and
/// the bytes came back.
fn echo_once(port: u16, msg: &[u8]) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr(UTCP_IP, port), Duration::from_secs(10))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(msg).map_err(|e| format!("write: {e}"))?;
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).map_err(|e| format!("read: {e}"))?;
    if back == msg {
        Ok(())
    } else {
        Err("wrong bytes".into())
    }
}

/// RFC 4987: during a flood of 100,000 SYNs from spoofed sources, a real
/// kernel client still connects to utcp's echo server (through a SYN
/// cookie: the backlog is full of the flood's half-open connections), and
/// again after it; the server's memory stays bounded.
#[test]
fn kernel_client_connects_during_and_after_a_syn_flood() {
    let ns = Netns::new();
    let mut cmd = ns.utcp_command(&["echo", "--port", "7"]);
    cmd.env("RUST_LOG", "utcp::stack=debug,info");
    let server = ns.spawn("utcp echo", cmd, Stdio::null(), Capture::Null);
    server
        .wait_for_stderr(LISTENING, READY_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let flood = ns.spawn_thread(|| {
        let t0 = Instant::now();
        (syn_flood(100_000, 7), t0.elapsed())
    });
    thread::sleep(Duration::from_millis(500));
    let during = ns.spawn_thread(|| {
        let t0 = Instant::now();
        (echo_once(7, b"Hi, I am a client"), t0.elapsed())
    });
    let (result, took) = join_bounded(during, BULK_TIMEOUT, "client during the flood");
    let flood_running = !flood.is_finished();
    let (sent, flood_took) = join_bounded(flood, BULK_TIMEOUT, "the flood");
    assert_eq!(sent, 100_000, "the raw socket took every SYN");
    result.unwrap_or_else(|e| panic!("client during the flood: {e}\n{}", server.log()));
    assert!(
        flood_running,
        "the client ({took:?}) finished only after the flood ({flood_took:?})"
    );
    let log = server.log();
    assert!(log.contains("valid SYN cookie"), "no cookie used:\n{log}");
    run_in_netns(&ns, || echo_once(7, b"and after it"))
        .unwrap_or_else(|e| panic!("client after the flood: {e}"));
    let rss = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .expect("the server's RSS");
    assert!(
        rss < 64 * 1024,
        "the server holds {rss} KiB after the flood"
    );
}

/// `utcp --pcap FILE echo`: tshark (Debian's package) reads the capture and
/// finds the handshake, the data both ways and both FINs.
#[test]
fn pcap_capture_opens_in_tshark_with_handshake_data_and_close() {
    let ns = Netns::new();
    let pcap = TempFile::new("capture.pcap");
    let path = pcap.path().to_string_lossy().into_owned();
    let mut echo = ns.spawn_utcp_listening(
        "utcp echo",
        &["--pcap", &path, "echo", "--port", "7"],
        Stdio::null(),
        Capture::Pipe,
    );
    let r = ns.run(
        "nc",
        "nc",
        &["-N", UTCP_IP, "7"],
        b"hello, tshark\n",
        SHORT_TIMEOUT,
    );
    assert_eq!(r.stdout_string(), "hello, tshark\n", "{}", echo.log());
    echo.kill();
    let count = |filter: &str| tshark_count(&path, filter);
    let syn = format!("tcp.flags.syn == 1 && tcp.flags.ack == 0 && ip.dst == {UTCP_IP}");
    let syn_ack = format!("tcp.flags.syn == 1 && tcp.flags.ack == 1 && ip.src == {UTCP_IP}");
    assert_eq!(count(&syn), 1, "the kernel's SYN");
    assert_eq!(count(&syn_ack), 1, "utcp's SYN-ACK");
    assert_eq!(
        count("tcp contains \"hello, tshark\""),
        2,
        "the data, both ways"
    );
    assert_eq!(
        count(&format!("tcp.flags.fin == 1 && ip.src == {UTCP_IP}")),
        1
    );
    assert_eq!(
        count(&format!("tcp.flags.fin == 1 && ip.dst == {UTCP_IP}")),
        1
    );
}

/// `--pcap-at` with `--impair drop=100%`: every packet is lost between
/// the device and the stack, so the two capture points see opposite
/// halves. At the stack (the default) the capture holds utcp's SYNs and
/// none of the kernel's pings; at the device, the pings and no SYN.
#[test]
fn pcap_at_stack_or_device_decides_which_side_of_the_impairment_is_recorded() {
    let ns = Netns::new();
    for at in ["stack", "device"] {
        let pcap = TempFile::new("at.pcap");
        let path = pcap.path().to_string_lossy().into_owned();
        let target = format!("{KERNEL_IP}:4397");
        let args = [
            "--pcap",
            &path,
            "--pcap-at",
            at,
            "--impair",
            "drop=100%",
            "client",
            &target,
        ];
        let mut client = ns.spawn(
            "utcp client",
            ns.utcp_command(&args),
            Stdio::null(),
            Capture::Pipe,
        );
        // Until utcp has the device open (pings before that go nowhere).
        thread::sleep(Duration::from_millis(300));
        let ping = ns.run(
            "ping",
            "ping",
            &["-c", "3", "-i", "0.2", "-W", "1", UTCP_IP],
            b"",
            SHORT_TIMEOUT,
        );
        assert!(!ping.status.success(), "every ping is dropped");
        client.kill();
        let count = |filter: &str| tshark_count(&path, filter);
        let syns = count(&format!("tcp.flags.syn == 1 && ip.src == {UTCP_IP}"));
        let pings = count(&format!("icmp.type == 8 && ip.dst == {UTCP_IP}"));
        if at == "stack" {
            assert!(syns >= 1, "the stack sent its SYN: {syns}");
            assert_eq!(pings, 0, "the stack never saw a ping");
        } else {
            assert_eq!(syns, 0, "no SYN left the device");
            // All 3 unless utcp was slower to start than the sleep above.
            assert!(
                (1..=3).contains(&pings),
                "the device carried the pings: {pings}"
            );
        }
    }
}

/// `utcp --stats=json client`: one JSON object for the connection (its
/// counters, durations in microseconds) and one for the stack at exit.
#[test]
fn stats_json_prints_the_connection_and_the_stack() {
    let ns = Netns::new();
    let target = format!("{KERNEL_IP}:4398");
    let (client, mut nc) = utcp_client_to_kernel_nc(&ns, 4398, &["--stats=json"]);
    assert!(client.status.success(), "{}", client.stderr);
    nc.wait_or_panic(Duration::from_secs(10));
    let records: Vec<serde_json::Value> = client
        .stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(records.len(), 2, "{}", client.stderr);
    let conn = &records[0];
    assert_eq!(conn["event"], "connection");
    assert_eq!(conn["peer"], target.as_str());
    assert_eq!(conn["bytes_out"], SEED_MESSAGE.len() as u64);
    assert!(conn["srtt_us"].as_u64().is_some_and(|us| us > 0), "{conn}");
    assert!(
        conn["rto_us"].as_u64().is_some_and(|us| us >= 200_000),
        "{conn}"
    );
    assert!(conn["state"].is_string() && conn["cwnd"].is_u64(), "{conn}");
    let stack = &records[1];
    assert_eq!(stack["event"], "stack");
    assert!(
        stack["stats"]["packets_in"]
            .as_u64()
            .is_some_and(|n| n >= 3),
        "{stack}"
    );
    assert!(stack["stats"]["not_for_us"].is_u64(), "{stack}");
}

/// `kill -USR1` on a running `utcp echo` prints the connection table
/// (`ss -tni`-shaped) on stderr: the open connection with its state,
/// addresses and internals.
#[test]
fn sigusr1_prints_the_connection_table() {
    let ns = Netns::new();
    let mut echo = spawn_echo(&ns);
    let server = addr(UTCP_IP, 7);
    let pid = echo.pid();
    // The client keeps the connection open until the table is read.
    let (stream, table) = run_in_netns(&ns, move || {
        let mut s = TcpStream::connect_timeout(&server, SHORT_TIMEOUT).unwrap();
        s.set_read_timeout(Some(SHORT_TIMEOUT)).unwrap();
        s.write_all(b"ping").unwrap();
        let mut back = [0u8; 4];
        s.read_exact(&mut back).unwrap();
        // SAFETY: kill on the PID of a child the test started.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGUSR1) };
        let me = s.local_addr().unwrap();
        (s, me)
    });
    let line = format!("{UTCP_IP}:7");
    let deadline = Instant::now() + SHORT_TIMEOUT;
    while !echo.stderr_string().contains("bytes_received:") && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let log = echo.stderr_string();
    let row = log
        .lines()
        .find(|l| l.contains(&line) && l.contains(&table.to_string()))
        .unwrap_or_else(|| panic!("no row for {table} in\n{log}"));
    assert!(row.starts_with("ESTABLISHED"), "{row}");
    assert!(log.contains("bytes_received:4"), "{log}");
    assert!(echo.is_running(), "SIGUSR1 must not kill utcp");
    drop(stream);
}

/// `utcp connect` draws its progress (bytes, rate, elapsed) on stderr when
/// it is a terminal (here a pty from `script`, util-linux), and prints
/// nothing of it when stderr is a pipe.
#[test]
fn connect_shows_progress_on_a_terminal_only() {
    let ns = Netns::new();
    let data = random_bytes(3 << 20, 9);
    let input = TempFile::with_contents("progress-in", &data);
    for tty in [true, false] {
        let mut nc_cmd = ns.command("nc");
        nc_cmd.args(["-l", KERNEL_IP, "5055"]);
        let mut nc = ns.spawn("nc -l", nc_cmd, Stdio::null(), Capture::Null);
        ns.wait_for_kernel_listen(5055, Duration::from_secs(10));
        let connect = format!(
            "{} connect {KERNEL_IP}:5055 < {}",
            utcp_bin(),
            input.path().display()
        );
        let cmd = if tty {
            let mut c = ns.command("script");
            c.args(["-qec", &connect, "/dev/null"]);
            c
        } else {
            let mut c = ns.command("sh");
            c.args(["-c", &connect]);
            c
        };
        let r = ns.run_cmd("utcp connect", cmd, b"", SHORT_TIMEOUT);
        assert!(r.status.success(), "{}", r.stderr);
        nc.wait_or_panic(Duration::from_secs(10));
        // Under script, stderr reaches us through the pty, on stdout.
        let all = format!("{}{}", r.stdout_string(), r.stderr);
        if tty {
            assert!(
                all.contains("sent 3.00 MiB"),
                "no final progress line in {all:?}"
            );
            assert!(all.contains("/s), received 0 B"), "{all:?}");
        } else {
            assert!(
                !all.contains("sent "),
                "progress without a terminal: {all:?}"
            );
        }
    }
}

/// `utcp plot` on captures of a kernel -> `utcp sink` transfer: clean, no
/// retransmission in the chart; with 3% of the incoming packets dropped
/// (before the stack, so not in its capture), the kernel's retransmissions appear as
/// such, in red, and utcp's SACK blocks are drawn.
#[test]
fn plot_draws_the_time_sequence_chart_with_retransmissions() {
    let ns = Netns::new();
    let data = random_bytes(2 << 20, 11);
    for (impair, lossy) in [(None, false), (Some("drop=3%,seed=5"), true)] {
        let pcap = TempFile::new("plot.pcap");
        let svg = TempFile::new("plot.svg");
        let path = pcap.path().to_string_lossy().into_owned();
        let mut args = vec!["--pcap", path.as_str()];
        if let Some(spec) = impair {
            args.extend(["--impair", spec]);
        }
        args.extend(["sink", "--port", "9"]);
        let mut sink = ns.spawn_utcp_listening("utcp sink", &args, Stdio::null(), Capture::Pipe);
        let r = ns.run("nc", "nc", &["-N", UTCP_IP, "9"], &data, BULK_TIMEOUT);
        assert!(r.status.success(), "nc: {}\n{}", r.stderr, sink.log());
        sink.kill();
        let out = svg.path().to_string_lossy().into_owned();
        let mut plot = Command::new(utcp_bin());
        plot.args(["plot", &path, "-o", &out]);
        let (status, _, err) = run_bounded(plot, SHORT_TIMEOUT);
        assert!(status.success(), "utcp plot: {err}");
        let summary = err
            .lines()
            .find(|l| l.starts_with("utcp plot:"))
            .unwrap_or("");
        assert!(summary.contains("10.77.0.1:"), "{err}");
        let retx: usize = summary
            .split(" (")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no retransmission count in {summary:?}"));
        let chart = std::fs::read_to_string(svg.path()).unwrap();
        // The SVG's texts: what comes before each </text>.
        let texts: Vec<&str> = chart
            .split("</text>")
            .filter_map(|p| p.rsplit('>').next())
            .map(str::trim)
            .collect();
        for series in ["data", "retransmission", "ack", "receive window", "SACK"] {
            assert!(texts.contains(&series), "no {series:?} legend in {texts:?}");
        }
        // Red strokes are the retransmissions (the legend has one).
        let red = chart.matches("stroke=\"#FF0000\"").count();
        if lossy {
            assert!(retx > 0, "{summary}");
            assert!(red > 1, "{red} red strokes for {retx} retransmissions");
            assert!(!summary.contains(" 0 SACK blocks"), "{summary}");
        } else {
            assert_eq!(retx, 0, "{summary}");
            assert_eq!(red, 1, "only the legend is red in a clean transfer");
        }
    }
}

/// `utcp --trace` while utcp sends 2 MiB to a kernel client with 3% of the
/// packets dropped both ways: the trace holds the connection's samples
/// (slow start, losses that set ssthresh, fast recovery), and `utcp plot
/// --trace` draws them as a second panel: cwnd, ssthresh, bytes in flight,
/// SRTT, recovery periods shaded.
#[test]
fn plot_trace_panel_shows_cwnd_ssthresh_and_recovery() {
    let ns = Netns::new();
    let pcap = TempFile::new("cc.pcap");
    let trace = TempFile::new("cc.jsonl");
    let svg = TempFile::new("cc.svg");
    let [pcap_path, trace_path, svg_path] =
        [&pcap, &trace, &svg].map(|f| f.path().to_string_lossy().into_owned());
    let len = (2usize << 20).to_string();
    let args = [
        "--pcap",
        &pcap_path,
        "--trace",
        &trace_path,
        "--impair",
        "drop=3%,seed=7",
        "source",
        "--port",
        "19",
        "--bytes",
        &len,
    ];
    let mut source = ns.spawn_utcp_listening("utcp source", &args, Stdio::null(), Capture::Pipe);
    let r = ns.run("nc", "nc", &["-d", UTCP_IP, "19"], b"", BULK_TIMEOUT);
    assert!(r.status.success(), "nc: {}\n{}", r.stderr, source.log());
    assert_eq!(r.stdout.len(), 2 << 20, "{}", source.log());
    source.kill();
    let records: Vec<utcp::socket::TraceRecord> = std::fs::read_to_string(trace.path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let local = format!("{UTCP_IP}:19");
    assert!(records.iter().all(|r| r.local == local), "{records:?}");
    assert!(
        records.iter().any(|r| r.in_recovery),
        "no recovery in {} samples",
        records.len()
    );
    assert!(records.iter().any(|r| r.ssthresh.is_some()));
    assert!(
        records.iter().any(|r| r.cwnd > 20 * 1448),
        "cwnd never grew"
    );
    assert!(records.windows(2).all(|w| w[0].t_us <= w[1].t_us));
    let mut plot = Command::new(utcp_bin());
    plot.args(["plot", &pcap_path, "--trace", &trace_path, "-o", &svg_path]);
    let (status, _, err) = run_bounded(plot, SHORT_TIMEOUT);
    assert!(status.success(), "utcp plot: {err}");
    assert!(err.contains(&format!("trace samples of {local}")), "{err}");
    let chart = std::fs::read_to_string(svg.path()).unwrap();
    let texts: Vec<&str> = chart
        .split("</text>")
        .filter_map(|p| p.rsplit('>').next())
        .map(str::trim)
        .collect();
    for series in [
        "data",
        "ack",
        "cwnd",
        "ssthresh",
        "in flight",
        "SRTT",
        "fast recovery",
    ] {
        assert!(texts.contains(&series), "no {series:?} legend in {texts:?}");
    }
    // The shaded recovery periods: the legend's swatch and at least one.
    let shaded = chart.matches("fill=\"#FFC8C8\"").count();
    assert!(shaded > 1, "{shaded} shaded rectangles");
}
