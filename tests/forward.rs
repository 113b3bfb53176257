//! `utcp forward` in its real topology (tests/common: [`ForwardTopology`]):
//! kernel clients in the app namespace dial kernel servers' real addresses;
//! utcp, holding the TUN device from the relay namespace, accepts each
//! connection (any-IP) and relays it through kernel sockets (root, TUN; run
//! by scripts/test.sh). Servers and clients are std::net sockets on threads
//! that entered their namespace.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::*;
use utcp::testing::{assert_same_bytes, random_bytes};

const IO_TIMEOUT: Duration = Duration::from_secs(30);

fn addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

/// A kernel echo server at `at` in `ns` for `conns` connections, each on a
/// thread: echoes until the client's FIN, then half-closes. Returns the
/// bytes echoed per connection.
fn echo_server(ns: &Netns, at: SocketAddr, conns: usize) -> JoinHandle<Vec<u64>> {
    let listener = run_in_netns(ns, move || TcpListener::bind(at).unwrap());
    thread::spawn(move || {
        let workers: Vec<_> = (0..conns)
            .map(|_| {
                let (mut s, _) = listener.accept().unwrap();
                thread::spawn(move || {
                    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                    let mut w = s.try_clone().unwrap();
                    let n = io::copy(&mut s, &mut w).unwrap();
                    w.shutdown(Shutdown::Write).unwrap();
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    })
}

/// From the app namespace: sends `data` to `to` (then FIN) while reading
/// the echo; returns what came back.
fn echo_client(app: &Netns, to: SocketAddr, data: Vec<u8>) -> JoinHandle<Vec<u8>> {
    app.spawn_thread(move || {
        let s = TcpStream::connect_timeout(&to, IO_TIMEOUT).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut w = s.try_clone().unwrap();
        let writer = thread::spawn(move || {
            w.write_all(&data).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        (&s).read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        got
    })
}

/// The counters line of a stopped `utcp forward`, as (name, value) pairs.
fn counter(log: &str, name: &str) -> u64 {
    let line = log
        .lines()
        .find(|l| l.starts_with("utcp: forward: "))
        .unwrap_or_else(|| panic!("no counters line in\n{log}"));
    line.split(", ")
        .find_map(|part| {
            let part = part.trim_start_matches("utcp: forward: ");
            part.strip_suffix(name)?.trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no {name:?} in {line}"))
}

/// Several addresses and ports, then 100 concurrent connections spread
/// over them, each byte-exact both ways; the relay logs one line per relay
/// and counts them at exit.
#[test]
fn forward_relays_many_addresses_and_ports_byte_exact_both_ways() {
    let mut t = ForwardTopology::new(&[]);
    let targets: Vec<SocketAddr> = vec![
        addr(SERVER_IPS[0], 8001),
        addr(SERVER_IPS[1], 443),
        addr(SERVER_IPS[2], 9002),
        addr("10.98.0.2", 22),
    ];
    const PER_TARGET: usize = 26;
    let servers: Vec<_> = targets
        .iter()
        .map(|&a| echo_server(&t.servers, a, PER_TARGET))
        .collect();
    let clients: Vec<_> = (0..targets.len() * PER_TARGET)
        .map(|i| {
            let data = random_bytes(1000 + 997 * i, i as u64);
            (
                data.clone(),
                echo_client(&t.app, targets[i % targets.len()], data),
            )
        })
        .collect();
    for (i, (sent, c)) in clients.into_iter().enumerate() {
        let got = join_bounded(c, BULK_TIMEOUT, "echo client");
        assert_same_bytes(&format!("connection {i}"), &sent, &got);
    }
    for s in servers {
        let echoed = join_bounded(s, BULK_TIMEOUT, "echo server");
        assert_eq!(echoed.len(), PER_TARGET);
    }
    let log = t.stop();
    let n = (targets.len() * PER_TARGET) as u64;
    assert_eq!(counter(&log, "accepted"), n, "{log}");
    assert_eq!(counter(&log, "closed"), n, "{log}");
    assert_eq!(counter(&log, "active"), 0, "{log}");
    let relay_lines = log
        .lines()
        .filter(|l| l.contains("relay 10.77.0.1:"))
        .count();
    assert_eq!(relay_lines as u64, n, "one info line per relay:\n{log}");
    assert!(log.contains("-> 10.98.2.7:9002: closed"), "{log}");
}

/// 32 MiB each way at once through one relay, byte-exact.
#[test]
fn forward_carries_32_mib_each_way() {
    let mut t = ForwardTopology::new(&[]);
    let to = addr(SERVER_IPS[0], 5001);
    let server = echo_server(&t.servers, to, 1);
    let data = random_bytes(32 << 20, 7);
    let got = join_bounded(
        echo_client(&t.app, to, data.clone()),
        BULK_TIMEOUT,
        "client",
    );
    assert_same_bytes("32 MiB echoed through the relay", &data, &got);
    assert_eq!(join_bounded(server, BULK_TIMEOUT, "server"), vec![32 << 20]);
    let log = t.stop();
    assert_eq!(counter(&log, "bytes up"), 32 << 20, "{log}");
    assert_eq!(counter(&log, "bytes down"), 32 << 20, "{log}");
}

/// A port nobody listens on: the relay's connect is refused and the
/// client, whose handshake with utcp succeeded, reads a reset.
#[test]
fn forward_resets_the_client_when_the_destination_refuses() {
    let mut t = ForwardTopology::new(&[]);
    let to = addr(SERVER_IPS[1], 8999);
    let err = run_in_netns(&t.app, move || {
        let mut s = TcpStream::connect_timeout(&to, IO_TIMEOUT).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut buf = [0u8; 16];
        s.read(&mut buf).expect_err("the relay resets")
    });
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    let log = t.stop();
    assert_eq!(counter(&log, "connect failed"), 1, "{log}");
    assert!(log.contains("Connection refused"), "{log}");
}

/// A server that half-closes first (sends a greeting and its FIN, then
/// keeps reading): the client sees EOF after the greeting, and what it
/// sends afterwards still reaches the server.
#[test]
fn forward_passes_a_servers_half_close_on() {
    let mut t = ForwardTopology::new(&[]);
    let to = addr(SERVER_IPS[2], 2525);
    let listener = run_in_netns(&t.servers, move || TcpListener::bind(to).unwrap());
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.write_all(b"220 greeting, then FIN\r\n").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    let late = random_bytes(300_000, 3);
    let sent = late.clone();
    let greeting = run_in_netns(&t.app, move || {
        let mut s = TcpStream::connect_timeout(&to, IO_TIMEOUT).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut greeting = Vec::new();
        s.read_to_end(&mut greeting).unwrap();
        s.write_all(&sent).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        greeting
    });
    assert_eq!(greeting, b"220 greeting, then FIN\r\n");
    let got = join_bounded(server, BULK_TIMEOUT, "server");
    assert_same_bytes("sent after the server's FIN", &late, &got);
    assert_eq!(counter(&t.stop(), "closed"), 1);
}

/// Closes `s` with a RST (SO_LINGER 0).
fn reset(s: TcpStream) {
    utcp::forward::set_reset_on_close(&s).expect("SO_LINGER");
}

/// A RST from either side reaches the other as a RST.
#[test]
fn forward_passes_resets_on_both_ways() {
    let mut t = ForwardTopology::new(&[]);
    let to = addr(SERVER_IPS[0], 7001);
    let listener = run_in_netns(&t.servers, move || TcpListener::bind(to).unwrap());
    let server = thread::spawn(move || {
        // First connection: the server resets it once the client spoke.
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        reset(s);
        // Second: the client resets; the server's read sees it.
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.write_all(b"hello").unwrap();
        let mut sink = Vec::new();
        s.read_to_end(&mut sink)
            .expect_err("the client's reset is passed on")
    });
    let server_reset = run_in_netns(&t.app, move || {
        let mut s = TcpStream::connect_timeout(&to, IO_TIMEOUT).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.write_all(b"ping!").unwrap();
        let mut sink = Vec::new();
        let e = s
            .read_to_end(&mut sink)
            .expect_err("the server's reset is passed on");
        let mut s = TcpStream::connect_timeout(&to, IO_TIMEOUT).unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        reset(s);
        e
    });
    assert_eq!(
        server_reset.kind(),
        io::ErrorKind::ConnectionReset,
        "{server_reset}"
    );
    let client_reset = join_bounded(server, BULK_TIMEOUT, "server");
    assert_eq!(
        client_reset.kind(),
        io::ErrorKind::ConnectionReset,
        "{client_reset}"
    );
    let log = t.stop();
    assert_eq!(counter(&log, "reset by server"), 1, "{log}");
    assert_eq!(counter(&log, "reset by client"), 1, "{log}");
}

/// microsocks (Debian's package, an independent SOCKS5 server) in the
/// servers namespace, without and with username/password: the relay goes
/// through it (the server sees the proxy's address, not the relay's);
/// wrong or missing credentials get the client reset.
#[test]
fn forward_through_a_socks5_proxy_with_and_without_authentication() {
    let cases: [(bool, Option<&str>, Result<(), &str>); 4] = [
        (false, None, Ok(())),
        (true, Some("utcp:s3cret"), Ok(())),
        (true, Some("utcp:wrong"), Err("rejected user \"utcp\"")),
        (true, None, Err("accepts none of our methods")),
    ];
    for (proxy_auth, auth, expect) in cases {
        let mut args = vec!["--socks5", "10.98.0.2:1080"];
        args.extend(auth.iter().flat_map(|a| ["--socks5-auth", a]));
        let mut t = ForwardTopology::new(&args);
        let mut cmd = t.servers.command("microsocks");
        cmd.args(["-i", "10.98.0.2", "-p", "1080"]);
        if proxy_auth {
            cmd.args(["-u", "utcp", "-P", "s3cret"]);
        }
        let _proxy = t
            .servers
            .spawn("microsocks", cmd, Stdio::null(), Capture::Null);
        t.servers.wait_for_kernel_listen(1080, READY_TIMEOUT);
        let to = addr(SERVER_IPS[1], 8080);
        let listener = run_in_netns(&t.servers, move || TcpListener::bind(to).unwrap());
        let server = thread::spawn(move || {
            let (mut s, peer) = listener.accept().unwrap();
            s.write_all(peer.ip().to_string().as_bytes()).unwrap();
        });
        let got = run_in_netns(&t.app, move || {
            let mut s = TcpStream::connect_timeout(&to, IO_TIMEOUT).unwrap();
            s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            let mut got = String::new();
            s.read_to_string(&mut got).map(|_| got)
        });
        let log = t.stop();
        match expect {
            Ok(()) => {
                let peer = got.unwrap_or_else(|e| panic!("through the proxy: {e}\n{log}"));
                assert_ne!(peer, "10.98.0.1", "the server saw the relay, not the proxy");
                join_bounded(server, SHORT_TIMEOUT, "server");
                assert_eq!(counter(&log, "closed"), 1, "{log}");
            }
            Err(why) => {
                let e = got.expect_err("the proxy refuses");
                assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
                assert!(log.contains(why), "{why:?} not in\n{log}");
                assert_eq!(counter(&log, "connect failed"), 1, "{log}");
            }
        }
    }
}

/// `--max-relays 1`: while one relay is open, the next client is reset
/// (and counted as refused); the first is unharmed.
#[test]
fn forward_resets_connections_over_the_relay_limit() {
    let mut t = ForwardTopology::new(&["--max-relays", "1"]);
    let to = addr(SERVER_IPS[0], 6001);
    let server = echo_server(&t.servers, to, 1);
    let (first, second) = run_in_netns(&t.app, move || {
        let mut a = TcpStream::connect_timeout(&to, IO_TIMEOUT).unwrap();
        a.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        a.write_all(b"one").unwrap();
        let mut buf = [0u8; 3];
        // Echoed: the first relay is up.
        a.read_exact(&mut buf).unwrap();
        let mut b = TcpStream::connect_timeout(&to, IO_TIMEOUT).unwrap();
        b.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let second = b.read(&mut [0u8; 4]);
        a.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        a.read_to_end(&mut rest).unwrap();
        (buf, second)
    });
    assert_eq!(&first, b"one");
    let e = second.expect_err("over the limit");
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
    assert_eq!(join_bounded(server, SHORT_TIMEOUT, "server"), vec![3]);
    let log = t.stop();
    assert_eq!(counter(&log, "refused"), 1, "{log}");
    assert_eq!(counter(&log, "closed"), 1, "{log}");
}

/// A misrouted relay (TUN device and relay in one namespace, the
/// destinations routed into the device, no mark): the relay's own
/// connection comes back in; it is recognised at its first turn and reset
/// instead of looping. With `--mark` and a policy rule the same setup
/// works.
#[test]
fn forward_refuses_a_loop_and_marks_its_way_out_of_one() {
    for mark in [false, true] {
        let ns = Netns::bare("loop");
        ns.ip(&["tuntap", "add", "dev", DEV, "mode", "tun"]);
        ns.ip(&[
            "link", "add", "fwd-r", "type", "veth", "peer", "name", "fwd-s",
        ]);
        let servers = Netns::bare("srv");
        ns.ip(&["link", "set", "fwd-s", "netns", servers.name()]);
        ns.ip(&["addr", "add", "10.98.0.1/24", "dev", "fwd-r"]);
        ns.ip(&["link", "set", "fwd-r", "up"]);
        servers.ip(&["addr", "add", "10.98.0.2/24", "dev", "fwd-s"]);
        servers.ip(&["link", "set", "fwd-s", "up"]);
        servers.ip(&["addr", "add", "10.98.1.1/32", "dev", "lo"]);
        let mut args = vec!["--dev", DEV, "forward"];
        if mark {
            args.extend(["--mark", "7"]);
            ns.ip(&["rule", "add", "fwmark", "7", "table", "70"]);
            ns.ip(&[
                "route",
                "add",
                "10.98.1.0/24",
                "via",
                "10.98.0.2",
                "table",
                "70",
            ]);
        }
        let mut forward = ns.spawn_utcp("forward", &args, Stdio::null(), Capture::Pipe);
        forward.wait_for_stderr(FORWARDING, READY_TIMEOUT).unwrap();
        ns.ip(&["addr", "add", &format!("{KERNEL_IP}/24"), "dev", DEV]);
        ns.ip(&["link", "set", DEV, "up"]);
        ns.ip(&["route", "add", "10.98.1.0/24", "dev", DEV]);
        let to = addr("10.98.1.1", 8001);
        let server = echo_server(&servers, to, 1);
        let client = ns.spawn_thread(move || {
            let s = TcpStream::connect_timeout(&to, IO_TIMEOUT)?;
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            (&s).write_all(b"hello")?;
            s.shutdown(Shutdown::Write)?;
            let mut got = Vec::new();
            (&s).read_to_end(&mut got).map(|_| got)
        });
        let got = join_bounded(client, SHORT_TIMEOUT, "client");
        // SAFETY: kill on the PID of a child we started and have not reaped.
        unsafe { libc::kill(forward.pid() as libc::pid_t, libc::SIGTERM) };
        forward.wait_or_panic(SHORT_TIMEOUT);
        let log = forward.stderr_string();
        if mark {
            assert_eq!(got.unwrap_or_else(|e| panic!("{e}\n{log}")), b"hello");
            assert_eq!(join_bounded(server, SHORT_TIMEOUT, "server"), vec![5]);
            assert_eq!(counter(&log, "loops"), 0, "{log}");
        } else {
            let e = got.expect_err("a loop is reset");
            assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
            assert_eq!(counter(&log, "loops"), 1, "{log}");
            // The client's relay and the one looped turn, nothing more.
            assert_eq!(counter(&log, "accepted"), 2, "{log}");
        }
    }
}

/// `utcp forward --help` names the topology docs (no root needed for the
/// command, but the test binary is root-only anyway).
#[test]
fn forward_help_points_at_the_routing_docs() {
    let out = Command::new(utcp_bin())
        .args(["forward", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("docs/forward.md"), "{help}");
    assert!(help.contains("--socks5"), "{help}");
}
