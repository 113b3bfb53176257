//! Tests of utcp's blocking socket API (`NetStack`, `TcpListener`,
//! `TcpStream`) against the Linux kernel's TCP over a TUN device. Every test
//! runs in its own network namespace (see `tests/common/mod.rs`); the utcp
//! stack and all kernel-side `std::net` sockets are created on threads that
//! entered that namespace. Needs root and /dev/net/tun; run with
//! `scripts/test.sh` or `cargo test --release --test api` as root.

mod common;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use utcp::socket::{Events, Interest, NetStack, Poll, TcpListener, TcpStream, Token};
use utcp::state::State;
use utcp::testing::{assert_same_bytes, pattern_fill, random_bytes};

/// Upper bound for one test's body.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Read/write timeout of kernel-side sockets.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound for joining helper threads.
const JOIN_TIMEOUT: Duration = Duration::from_secs(15);

fn kernel_addr(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(KERNEL_IP.parse().unwrap(), port))
}

fn utcp_addr(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(UTCP_IP.parse().unwrap(), port))
}

/// A kernel listener on 10.77.0.1:`port`. Call only inside the namespace.
fn kernel_listener(ctx: &NsCtx, port: u16) -> std::net::TcpListener {
    assert_in_netns(ctx.name());
    std::net::TcpListener::bind(kernel_addr(port))
        .unwrap_or_else(|e| panic!("kernel bind {port}: {e}"))
}

/// Accepts one connection on a kernel listener, bounded by `timeout`; the
/// accepted socket gets read/write timeouts.
fn kernel_accept(l: &std::net::TcpListener, timeout: Duration) -> std::net::TcpStream {
    l.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                return s;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "kernel accept: nobody connected within {timeout:?}"
                );
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("kernel accept: {e}"),
        }
    }
}

/// A kernel client connected to utcp's `port`, with read/write timeouts.
fn kernel_connect(ctx: &NsCtx, port: u16) -> std::net::TcpStream {
    assert_in_netns(ctx.name());
    let s = std::net::TcpStream::connect_timeout(&utcp_addr(port), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("kernel connect to utcp port {port}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// utcp connects to the kernel's `port`, bounded.
fn utcp_connect(net: &NetStack, port: u16) -> TcpStream {
    TcpStream::connect_timeout(net, kernel_addr(port), Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("utcp connect to kernel port {port}: {e}"))
}

/// Writes `len` bytes of the pattern stream `seed`.
fn write_pattern(mut w: impl Write, seed: u64, len: usize) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut off = 0;
    while off < len {
        let n = buf.len().min(len - off);
        pattern_fill(seed, off as u64, &mut buf[..n]);
        w.write_all(&buf[..n])?;
        off += n;
    }
    Ok(())
}

/// Reads exactly `len` bytes and checks them against the pattern stream
/// `seed`.
fn read_pattern(mut r: impl Read, seed: u64, len: usize) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut want = vec![0u8; 64 * 1024];
    let mut off = 0;
    while off < len {
        let n = buf.len().min(len - off);
        let got = r.read(&mut buf[..n])?;
        if got == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                format!("EOF after {off} of {len} bytes"),
            ));
        }
        pattern_fill(seed, off as u64, &mut want[..got]);
        if buf[..got] != want[..got] {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                format!("data differs in the {got} bytes at offset {off}"),
            ));
        }
        off += got;
    }
    Ok(())
}

/// Reads to EOF, bounded by the socket's own timeouts.
fn read_to_end(mut r: impl Read) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(v)
}

fn kind_of<T: std::fmt::Debug>(r: io::Result<T>) -> ErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.kind(),
    }
}

// ---------------------------------------------------------------------------
// connect
// ---------------------------------------------------------------------------

#[test]
fn connect_refused_is_connection_refused() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, _| {
        // Nothing listens on port 9 of the kernel: it answers our SYN with RST.
        let t = Instant::now();
        let r = TcpStream::connect_timeout(&net, kernel_addr(9), Duration::from_secs(5));
        assert_eq!(kind_of(r), ErrorKind::ConnectionRefused);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "refusal took {:?}",
            t.elapsed()
        );
        // Also without a timeout.
        let r = TcpStream::connect(&net, kernel_addr(9));
        assert_eq!(kind_of(r), ErrorKind::ConnectionRefused);
    });
}

/// `TcpStream::abort` resets the connection: the kernel peer's read
/// fails with `ConnectionReset`, and the stream's own calls fail after it.
#[test]
fn abort_resets_the_connection() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let kernel = kernel_listener(&ctx, 5000);
        let mut s = TcpStream::connect(&net, kernel_addr(5000)).unwrap();
        let (mut k, _) = kernel.accept().unwrap();
        k.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.write_all(b"queued before the reset").unwrap();
        let mut buf = [0u8; 23];
        k.read_exact(&mut buf).unwrap();
        s.abort().unwrap();
        let mut rest = [0u8; 16];
        let r = k.read(&mut rest);
        assert_eq!(kind_of(r), ErrorKind::ConnectionReset);
        assert!(s.write_all(b"x").is_err(), "the stream is dead");
        assert_eq!(kind_of(s.abort()), ErrorKind::NotConnected);
    });
}

#[test]
fn connect_to_ipv6_is_invalid_input() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, _| {
        let v6: SocketAddr = "[fd00::1]:80".parse().unwrap();
        assert_eq!(
            kind_of(TcpStream::connect(&net, v6)),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind_of(TcpStream::connect_timeout(&net, v6, Duration::from_secs(1))),
            ErrorKind::InvalidInput
        );
        // An IPv4-mapped IPv6 address is still not an IPv4 address.
        let mapped: SocketAddr = "[::ffff:10.77.0.1]:80".parse().unwrap();
        assert_eq!(
            kind_of(TcpStream::connect(&net, mapped)),
            ErrorKind::InvalidInput
        );
        assert_eq!(net.stats().packets_out, 0, "nothing may be sent");
    });
}

#[test]
fn connect_to_own_address_is_invalid_input() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, _| {
        let bad = [
            (Ipv4Addr::new(10, 77, 0, 2), 80, "our own address"),
            (Ipv4Addr::UNSPECIFIED, 80, "0.0.0.0"),
            (Ipv4Addr::BROADCAST, 80, "limited broadcast"),
            (Ipv4Addr::new(224, 0, 0, 1), 80, "multicast"),
            (Ipv4Addr::new(10, 77, 0, 1), 0, "port 0"),
        ];
        for (ip, port, what) in bad {
            let r = TcpStream::connect_timeout(
                &net,
                SocketAddrV4::new(ip, port),
                Duration::from_secs(1),
            );
            match r {
                Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}"),
                Ok(s) => panic!("{what}: connect succeeded: {s:?}"),
            }
        }
        // A zero connect timeout is refused like std does.
        let r = TcpStream::connect_timeout(&net, kernel_addr(80), Duration::ZERO);
        assert_eq!(kind_of(r), ErrorKind::InvalidInput);
        assert_eq!(net.stats().packets_out, 0, "nothing may be sent");
    });
}

#[test]
fn connect_timeout_to_silent_peer_times_out() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, _| {
        // 10.77.0.99 is in the TUN subnet but nobody has it: the kernel
        // (forwarding off in a fresh namespace) drops our SYNs silently.
        let silent = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 99), 80);
        let t = Instant::now();
        let r = TcpStream::connect_timeout(&net, silent, Duration::from_secs(1));
        let took = t.elapsed();
        assert_eq!(kind_of(r), ErrorKind::TimedOut);
        assert!(
            took >= Duration::from_millis(950) && took < Duration::from_secs(3),
            "connect_timeout(1 s) returned after {took:?}"
        );
        // The aborted attempt does not linger as a busy connection.
        assert!(net.wait_idle(Duration::from_secs(2)), "stack stayed busy");
    });
}

#[test]
fn connect_to_silent_peer_gives_up_after_syn_retries() {
    let ns = Netns::new();
    let tweak = |cfg: &mut utcp::stack::StackConfig| {
        cfg.tcp.max_syn_retries = 1;
        cfg.tcp.rtt.initial_rto = Duration::from_millis(300);
    };
    ns.with_utcp_config(TEST_TIMEOUT, tweak, |net, _| {
        let silent = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 99), 80);
        let t = Instant::now();
        let r = TcpStream::connect(&net, silent);
        let took = t.elapsed();
        assert_eq!(kind_of(r), ErrorKind::TimedOut);
        // SYN, one retransmission after 300 ms, give up after 600 ms more.
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_secs(5),
            "connect gave up after {took:?}"
        );
    });
}

// ---------------------------------------------------------------------------
// listen / accept
// ---------------------------------------------------------------------------

#[test]
fn bind_twice_is_addr_in_use() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let l = TcpListener::bind(&net, 5000).unwrap();
        assert_eq!(l.local_addr().unwrap(), utcp_addr(5000));
        assert_eq!(kind_of(TcpListener::bind(&net, 5000)), ErrorKind::AddrInUse);
        assert_eq!(
            kind_of(TcpListener::bind_with_backlog(&net, 5000, 4)),
            ErrorKind::AddrInUse
        );
        // Another port is fine; port 0 (no ephemeral listeners) is not.
        let other = TcpListener::bind(&net, 5001).unwrap();
        assert_eq!(kind_of(TcpListener::bind(&net, 0)), ErrorKind::InvalidInput);
        drop(l);
        drop(other);
        // The port is free again, and a kernel client can connect to it.
        let l = TcpListener::bind(&net, 5000).unwrap();
        let ctx2 = ctx.clone();
        let client = ctx.spawn(move || {
            let mut s = kernel_connect(&ctx2, 5000);
            s.write_all(b"x").unwrap();
        });
        let (mut s, _) = l.accept().unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"x");
        join_bounded(client, JOIN_TIMEOUT, "kernel client");
        drop(l);
        // Once the listener is gone, the kernel's SYN to that port is refused.
        let ctx3 = ctx.clone();
        let refused = ctx.spawn(move || {
            assert_in_netns(ctx3.name());
            std::net::TcpStream::connect_timeout(&utcp_addr(5000), Duration::from_secs(5))
                .map(|_| ())
                .map_err(|e| e.kind())
        });
        assert_eq!(
            join_bounded(refused, JOIN_TIMEOUT, "kernel connect"),
            Err(ErrorKind::ConnectionRefused)
        );
    });
}

#[test]
fn echo_roundtrip_with_kernel_client() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let l = TcpListener::bind(&net, 7000).unwrap();
        let ctx2 = ctx.clone();
        let client = ctx.spawn(move || {
            let mut s = kernel_connect(&ctx2, 7000);
            let local = s.local_addr().unwrap();
            assert_eq!(s.peer_addr().unwrap(), utcp_addr(7000));
            let data = random_bytes(200_000, 1);
            let mut r = s.try_clone().unwrap();
            let reader = thread::spawn(move || read_to_end(&mut r));
            s.write_all(&data).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let back = join_bounded(reader, JOIN_TIMEOUT, "kernel reader").unwrap();
            assert_same_bytes("echo", &data, &back);
            local
        });
        let (mut s, peer) = l.accept().unwrap();
        assert_eq!(s.local_addr().unwrap(), utcp_addr(7000));
        assert_eq!(s.peer_addr().unwrap(), peer);
        assert_eq!(s.state().unwrap(), State::Established);
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut buf = vec![0u8; 8192];
        let mut total = 0;
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).unwrap();
            total += n;
        }
        assert_eq!(total, 200_000);
        // EOF stays EOF.
        assert_eq!(s.read(&mut buf).unwrap(), 0);
        drop(s);
        let kernel_local = join_bounded(client, JOIN_TIMEOUT, "kernel client");
        assert_eq!(
            peer, kernel_local,
            "accept must return the kernel's address"
        );
        assert_eq!(peer.ip().to_string(), KERNEL_IP);
    });
}

#[test]
fn incoming_yields_several_connections() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let l = TcpListener::bind(&net, 7001).unwrap();
        let clients: Vec<_> = (0..3u8)
            .map(|i| {
                let ctx2 = ctx.clone();
                ctx.spawn(move || {
                    let mut s = kernel_connect(&ctx2, 7001);
                    s.write_all(&[i]).unwrap();
                    let mut b = [0u8; 2];
                    s.read_exact(&mut b).unwrap();
                    assert_eq!(b, [i, i.wrapping_mul(7)]);
                    s.local_addr().unwrap()
                })
            })
            .collect();
        let mut peers = Vec::new();
        for s in l.incoming().take(3) {
            let mut s = s.unwrap();
            s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            s.write_all(&[b[0], b[0].wrapping_mul(7)]).unwrap();
            peers.push(s.peer_addr().unwrap());
        }
        let mut locals: Vec<SocketAddr> = clients
            .into_iter()
            .map(|c| join_bounded(c, JOIN_TIMEOUT, "kernel client"))
            .collect();
        peers.sort();
        locals.sort();
        assert_eq!(peers, locals, "one accepted stream per kernel client");
    });
}

#[test]
fn dropping_listener_resets_unaccepted_connections() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let l = TcpListener::bind(&net, 7002).unwrap();
        let ctx2 = ctx.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let client = ctx.spawn(move || {
            let mut s = kernel_connect(&ctx2, 7002);
            tx.send(()).unwrap();
            let mut b = [0u8; 16];
            s.read(&mut b).map_err(|e| e.kind())
        });
        rx.recv_timeout(JOIN_TIMEOUT).expect("kernel connected");
        // Let the handshake's last ACK reach the stack (queued for accept).
        thread::sleep(Duration::from_millis(200));
        drop(l);
        let r = join_bounded(client, JOIN_TIMEOUT, "kernel client");
        assert_eq!(r, Err(ErrorKind::ConnectionReset));
    });
}

#[test]
fn full_backlog_defers_connections_until_accept() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let l = TcpListener::bind_with_backlog(&net, 7003, 1).unwrap();
        let clients: Vec<_> = (0..3u8)
            .map(|i| {
                let ctx2 = ctx.clone();
                ctx.spawn(move || {
                    let mut s = kernel_connect(&ctx2, 7003);
                    s.write_all(&[i]).unwrap();
                    let mut b = [0u8; 1];
                    s.read_exact(&mut b).unwrap();
                    assert_eq!(b[0], i + 100);
                })
            })
            .collect();
        // One connection fits the queue; the other SYNs are dropped (the
        // kernel retransmits them), not reset.
        let deadline = Instant::now() + Duration::from_secs(5);
        while net.stats().syn_backlog_full == 0 {
            assert!(Instant::now() < deadline, "{:?}", net.stats());
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(net.stats().resets_sent, 0, "{:?}", net.stats());
        let mut streams = Vec::new();
        for _ in 0..3 {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            s.write_all(&[b[0] + 100]).unwrap();
            streams.push(s);
        }
        for c in clients {
            join_bounded(c, JOIN_TIMEOUT, "kernel client");
        }
    });
}

// ---------------------------------------------------------------------------
// Streams: data, threads, timeouts
// ---------------------------------------------------------------------------

#[test]
fn read_and_write_from_two_threads_via_try_clone() {
    const LEN: usize = 5 * 1024 * 1024;
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let kl = kernel_listener(&ctx, 8000);
        let kernel = ctx.spawn(move || {
            let s = kernel_accept(&kl, JOIN_TIMEOUT);
            let w = s.try_clone().unwrap();
            // Kernel sends its own 5 MB while checking utcp's 5 MB.
            let writer = thread::spawn(move || write_pattern(&w, 20, LEN));
            read_pattern(&s, 10, LEN).expect("kernel got utcp's stream");
            join_bounded(writer, JOIN_TIMEOUT, "kernel writer").unwrap();
            // utcp closes after both directions are done.
            assert_eq!(read_to_end(&s).unwrap(), b"");
        });
        let s = utcp_connect(&net, 8000);
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let w = s.try_clone().unwrap();
        assert_eq!(w.local_addr().unwrap(), s.local_addr().unwrap());
        let writer = thread::spawn(move || {
            write_pattern(&w, 10, LEN).unwrap();
            w // keep the clone alive until the reader is done too
        });
        read_pattern(&s, 20, LEN).expect("utcp got the kernel's stream");
        let w = join_bounded(writer, JOIN_TIMEOUT, "utcp writer");
        // Dropping one handle leaves the connection open.
        drop(s);
        assert_eq!(w.state().unwrap(), State::Established);
        (&w).write_all(b"").unwrap();
        drop(w);
        join_bounded(kernel, JOIN_TIMEOUT, "kernel side");
    });
}

#[test]
fn read_and_write_via_shared_reference() {
    const LEN: usize = 1024 * 1024;
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let kl = kernel_listener(&ctx, 8001);
        let kernel = ctx.spawn(move || {
            // An echo server.
            let mut s = kernel_accept(&kl, JOIN_TIMEOUT);
            let mut buf = vec![0u8; 65536];
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).unwrap();
            }
        });
        let stream = utcp_connect(&net, 8001);
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        // Plain use of the `&TcpStream` impls.
        let mut r = &stream;
        let mut w = &stream;
        w.write_all(b"ping").unwrap();
        w.flush().unwrap();
        let mut b = [0u8; 4];
        r.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ping");
        // Two threads sharing one `&TcpStream` (no clone).
        thread::scope(|sc| {
            let s = &stream;
            let writer = sc.spawn(move || write_pattern(s, 30, LEN));
            read_pattern(s, 30, LEN).expect("echoed stream");
            writer.join().unwrap().unwrap();
        });
        stream.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&stream).unwrap(), b"");
        drop(stream);
        join_bounded(kernel, JOIN_TIMEOUT, "kernel echo");
    });
}

#[test]
fn read_timeout_returns_would_block() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let kl = kernel_listener(&ctx, 8002);
        let kernel = ctx.spawn(move || {
            let mut s = kernel_accept(&kl, JOIN_TIMEOUT);
            // Stay silent until utcp closes.
            read_to_end(&mut s).unwrap()
        });
        let mut s = utcp_connect(&net, 8002);
        assert_eq!(s.read_timeout().unwrap(), None);
        assert_eq!(
            kind_of(s.set_read_timeout(Some(Duration::ZERO))),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind_of(s.set_write_timeout(Some(Duration::ZERO))),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            s.read_timeout().unwrap(),
            None,
            "a refused value is not set"
        );
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_millis(200)));
        for _ in 0..2 {
            let t = Instant::now();
            let mut b = [0u8; 16];
            let r = s.read(&mut b);
            let took = t.elapsed();
            assert_eq!(kind_of(r), ErrorKind::WouldBlock);
            assert!(
                took >= Duration::from_millis(190) && took < Duration::from_secs(2),
                "read with a 200 ms timeout returned after {took:?}"
            );
        }
        // The connection is still usable after a timeout.
        assert_eq!(s.state().unwrap(), State::Established);
        s.write_all(b"still here").unwrap();
        s.set_read_timeout(None).unwrap();
        assert_eq!(s.read_timeout().unwrap(), None);
        drop(s);
        let got = join_bounded(kernel, JOIN_TIMEOUT, "kernel side");
        assert_eq!(got, b"still here");
    });
}

#[test]
fn write_timeout_returns_would_block() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let kl = kernel_listener(&ctx, 8003);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let kernel = ctx.spawn(move || {
            let s = kernel_accept(&kl, JOIN_TIMEOUT);
            // Do not read until told to: utcp's send buffer and the kernel's
            // receive window fill up.
            rx.recv_timeout(JOIN_TIMEOUT).expect("go signal");
            let mut n = 0usize;
            let mut buf = vec![0u8; 65536];
            loop {
                match (&s).read(&mut buf) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) => panic!("kernel read: {e}"),
                }
            }
            n
        });
        let mut s = utcp_connect(&net, 8003);
        s.set_write_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        assert_eq!(s.write_timeout().unwrap(), Some(Duration::from_millis(300)));
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0usize;
        let err = loop {
            let t = Instant::now();
            match s.write(&chunk) {
                Ok(n) => sent += n,
                Err(e) => {
                    let took = t.elapsed();
                    assert!(
                        took >= Duration::from_millis(290) && took < Duration::from_secs(3),
                        "write with a 300 ms timeout returned after {took:?}"
                    );
                    break e;
                }
            }
            assert!(sent < 256 << 20, "256 MB written without blocking");
        };
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
        assert!(sent >= 512 * 1024, "blocked after only {sent} bytes");
        tx.send(()).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s.write_all(b"tail").unwrap();
        sent += 4;
        drop(s);
        let got = join_bounded(kernel, JOIN_TIMEOUT, "kernel side");
        assert_eq!(got, sent, "the kernel got everything written");
    });
}

#[test]
fn nodelay_roundtrip() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let kl = kernel_listener(&ctx, 8004);
        let kernel = ctx.spawn(move || {
            // Answers every 2-byte request (which utcp writes as two 1-byte
            // writes: the pattern Nagle delays) with its sum.
            let mut s = kernel_accept(&kl, JOIN_TIMEOUT);
            let mut b = [0u8; 2];
            let mut n = 0;
            while s.read_exact(&mut b).is_ok() {
                s.write_all(&[b[0].wrapping_add(b[1])]).unwrap();
                n += 1;
            }
            n
        });
        let mut s = utcp_connect(&net, 8004);
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        assert!(!s.nodelay().unwrap(), "Nagle is on by default");
        s.set_nodelay(true).unwrap();
        assert!(s.nodelay().unwrap());
        let ping = |s: &mut TcpStream, rounds: u8| {
            let t = Instant::now();
            for i in 0..rounds {
                s.write_all(&[i]).unwrap();
                s.write_all(&[1]).unwrap();
                let mut b = [0u8; 1];
                s.read_exact(&mut b).unwrap();
                assert_eq!(b[0], i.wrapping_add(1));
            }
            t.elapsed()
        };
        let fast = ping(&mut s, 100);
        s.set_nodelay(false).unwrap();
        assert!(!s.nodelay().unwrap());
        let slow = ping(&mut s, 10);
        eprintln!("100 rounds with nodelay: {fast:?}; 10 rounds with Nagle: {slow:?}");
        assert!(
            fast < Duration::from_secs(2),
            "100 write-write-read rounds with TCP_NODELAY took {fast:?}"
        );
        drop(s);
        assert_eq!(join_bounded(kernel, JOIN_TIMEOUT, "kernel side"), 110);
    });
}

#[test]
fn info_and_stats_report_the_transfer() {
    const LEN: usize = 1024 * 1024;
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let kl = kernel_listener(&ctx, 8005);
        let kernel = ctx.spawn(move || {
            let mut s = kernel_accept(&kl, JOIN_TIMEOUT);
            read_pattern(&mut s, 40, LEN).unwrap();
            s.write_all(b"done").unwrap();
            read_to_end(&mut s).unwrap()
        });
        let mut s = utcp_connect(&net, 8005);
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        write_pattern(&mut s, 40, LEN).unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"done");
        let info = s.info().unwrap();
        eprintln!("{info}");
        assert_eq!(info.state, State::Established);
        assert!(info.stats.bytes_out >= LEN as u64, "{info:?}");
        assert_eq!(info.stats.bytes_in, 4, "{info:?}");
        assert!(info.stats.segs_out as usize >= LEN / 1460, "{info:?}");
        assert!(info.stats.segs_in > 0, "{info:?}");
        assert!(info.srtt.is_some() && info.rttvar.is_some(), "{info:?}");
        assert!(info.srtt.unwrap() < Duration::from_secs(1), "{info:?}");
        assert!(info.rto >= Duration::from_millis(200), "{info:?}");
        assert!(
            info.window_scales.0 > 0 && info.window_scales.1 > 0,
            "window scaling with Linux: {info:?}"
        );
        assert!(info.timestamps, "timestamps with Linux: {info:?}");
        assert!(info.sack, "SACK with Linux: {info:?}");
        assert!(info.mss > 1000 && info.mss <= 1460, "{info:?}");
        assert!(info.cwnd > 0 && info.peer_window > 0, "{info:?}");
        assert_eq!(info.recv_queued, 0, "{info:?}");
        let stats = s.stats().unwrap();
        assert!(stats.bytes_out >= info.stats.bytes_out);
        assert_eq!(stats.bytes_in, 4);
        let ns_stats = net.stats();
        assert!(ns_stats.packets_out >= stats.segs_out, "{ns_stats:?}");
        assert!(ns_stats.packets_in >= stats.segs_in, "{ns_stats:?}");
        assert!(ns_stats.connections >= 1, "{ns_stats:?}");
        drop(s);
        assert_eq!(join_bounded(kernel, JOIN_TIMEOUT, "kernel side"), b"");
    });
}

// ---------------------------------------------------------------------------
// Closing
// ---------------------------------------------------------------------------

#[test]
fn shutdown_write_sends_fin_and_later_write_is_broken_pipe() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let kl = kernel_listener(&ctx, 8006);
        let kernel = ctx.spawn(move || {
            let mut s = kernel_accept(&kl, JOIN_TIMEOUT);
            // Everything up to utcp's FIN, then EOF.
            let got = read_to_end(&mut s).unwrap();
            // Half-close: the kernel can still send.
            s.write_all(b"response after your FIN").unwrap();
            got
        });
        let mut s = utcp_connect(&net, 8006);
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.write_all(b"request").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert!(
            matches!(s.state().unwrap(), State::FinWait1 | State::FinWait2),
            "{:?}",
            s.state()
        );
        assert_eq!(kind_of(s.write(b"more")), ErrorKind::BrokenPipe);
        // Shutting down the same side again is harmless.
        s.shutdown(Shutdown::Write).unwrap();
        let got = join_bounded(kernel, JOIN_TIMEOUT, "kernel side");
        assert_eq!(got, b"request", "the kernel read our data, then EOF");
        let back = read_to_end(&mut s).unwrap();
        assert_eq!(back, b"response after your FIN");
        assert_eq!(kind_of(s.write(b"more")), ErrorKind::BrokenPipe);
    });
}

#[test]
fn shutdown_read_wakes_blocked_reader() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let kl = kernel_listener(&ctx, 8007);
        let kernel = ctx.spawn(move || {
            let mut s = kernel_accept(&kl, JOIN_TIMEOUT);
            read_to_end(&mut s).unwrap()
        });
        let s = utcp_connect(&net, 8007);
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let r = s.try_clone().unwrap();
        let reader = thread::spawn(move || {
            let t = Instant::now();
            let mut b = [0u8; 16];
            ((&r).read(&mut b), t.elapsed())
        });
        thread::sleep(Duration::from_millis(200));
        s.shutdown(Shutdown::Read).unwrap();
        let (res, took) = join_bounded(reader, JOIN_TIMEOUT, "blocked reader");
        assert_eq!(res.unwrap(), 0, "a read-shut-down stream reads EOF");
        assert!(took < Duration::from_secs(5), "reader woke after {took:?}");
        // Writing still works after shutdown(Read).
        (&s).write_all(b"write side open").unwrap();
        drop(s);
        assert_eq!(
            join_bounded(kernel, JOIN_TIMEOUT, "kernel side"),
            b"write side open"
        );
    });
}

#[test]
fn shutdown_both_reads_eof_and_write_is_broken_pipe() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let kl = kernel_listener(&ctx, 8012);
        let kernel = ctx.spawn(move || {
            let mut s = kernel_accept(&kl, JOIN_TIMEOUT);
            read_to_end(&mut s).unwrap()
        });
        let mut s = utcp_connect(&net, 8012);
        s.write_all(b"before").unwrap();
        s.shutdown(Shutdown::Both).unwrap();
        let mut b = [0u8; 8];
        assert_eq!(s.read(&mut b).unwrap(), 0);
        assert_eq!(kind_of(s.write(b"after")), ErrorKind::BrokenPipe);
        assert_eq!(join_bounded(kernel, JOIN_TIMEOUT, "kernel side"), b"before");
    });
}

#[test]
fn peer_reset_gives_connection_reset() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let kl = kernel_listener(&ctx, 8008);
        let kernel = ctx.spawn(move || {
            let mut s = kernel_accept(&kl, JOIN_TIMEOUT);
            let mut b = [0u8; 5];
            s.read_exact(&mut b).unwrap();
            set_linger_zero(s.as_raw_fd());
            drop(s); // sends RST
        });
        let mut s = utcp_connect(&net, 8008);
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        s.write_all(b"hello").unwrap();
        join_bounded(kernel, JOIN_TIMEOUT, "kernel side");
        // A reader blocked (or arriving) after the RST sees ConnectionReset.
        let mut b = [0u8; 16];
        let t = Instant::now();
        let err = match s.read(&mut b) {
            Ok(0) => panic!("read EOF instead of a reset"),
            Ok(n) => panic!("read {n} bytes from a reset connection"),
            Err(e) => e,
        };
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
        assert!(t.elapsed() < Duration::from_secs(5));
        // Writes fail the same way (bounded: the first might still queue).
        let mut write_err = None;
        for _ in 0..100 {
            match s.write(b"x") {
                Ok(n) => {
                    assert_eq!(n, 1);
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    write_err = Some(e);
                    break;
                }
            }
        }
        let e = write_err.expect("writes kept succeeding after a reset");
        assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
        assert_eq!(s.state().unwrap(), State::Closed);
        assert_eq!(
            kind_of(s.shutdown(Shutdown::Write)),
            ErrorKind::NotConnected
        );
    });
}

#[test]
fn peer_reset_wakes_blocked_writer() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let kl = kernel_listener(&ctx, 8009);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let kernel = ctx.spawn(move || {
            let s = kernel_accept(&kl, JOIN_TIMEOUT);
            // Never read; reset once utcp's writer is blocked.
            rx.recv_timeout(JOIN_TIMEOUT).expect("go signal");
            set_linger_zero(s.as_raw_fd());
            drop(s);
        });
        let s = utcp_connect(&net, 8009);
        let w = s.try_clone().unwrap();
        let writer = thread::spawn(move || {
            let chunk = vec![1u8; 64 * 1024];
            let mut sent = 0usize;
            loop {
                match (&w).write(&chunk) {
                    Ok(n) => sent += n,
                    Err(e) => return (e.kind(), sent),
                }
                if sent > 256 << 20 {
                    return (ErrorKind::Other, sent);
                }
            }
        });
        // Wait until the writer is stuck (send buffer full).
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = usize::MAX;
        loop {
            thread::sleep(Duration::from_millis(300));
            let q = s.info().unwrap().send_queued;
            if q == last && q > 0 {
                break;
            }
            last = q;
            assert!(Instant::now() < deadline, "writer never blocked");
        }
        tx.send(()).unwrap();
        let (kind, sent) = join_bounded(writer, JOIN_TIMEOUT, "blocked writer");
        assert_eq!(kind, ErrorKind::ConnectionReset, "after {sent} bytes");
        join_bounded(kernel, JOIN_TIMEOUT, "kernel side");
    });
}

#[test]
fn drop_closes_gracefully() {
    const LEN: usize = 2 * 1024 * 1024;
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let kl = kernel_listener(&ctx, 8010);
        let kernel = ctx.spawn(move || {
            let mut s = kernel_accept(&kl, JOIN_TIMEOUT);
            read_pattern(&mut s, 50, LEN)?;
            // Then EOF, not a reset.
            let mut b = [0u8; 1];
            s.read(&mut b)
        });
        let mut s = utcp_connect(&net, 8010);
        write_pattern(&mut s, 50, LEN).unwrap();
        // Much of the data is still queued when the last handle goes; so is
        // the stack itself: dropping it lingers until our FIN is acked.
        drop(s);
        let t = Instant::now();
        drop(net);
        let took = t.elapsed();
        assert!(
            took < Duration::from_millis(3500),
            "NetStack drop took {took:?}"
        );
        let r = join_bounded(kernel, JOIN_TIMEOUT, "kernel side");
        assert_eq!(r.map_err(|e| e.kind()), Ok(0), "EOF after all data");
    });
}

#[test]
fn zero_length_write_returns_zero() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let kl = kernel_listener(&ctx, 8011);
        let kernel = ctx.spawn(move || {
            let mut s = kernel_accept(&kl, JOIN_TIMEOUT);
            read_to_end(&mut s).unwrap()
        });
        let mut s = utcp_connect(&net, 8011);
        assert_eq!(s.write(b"").unwrap(), 0);
        s.write_all(b"a").unwrap();
        assert_eq!(s.write(b"").unwrap(), 0);
        drop(s);
        assert_eq!(join_bounded(kernel, JOIN_TIMEOUT, "kernel side"), b"a");
    });
}

// ---------------------------------------------------------------------------
// runtime: targeted wake-ups, non-blocking mode, readiness
// ---------------------------------------------------------------------------

#[test]
fn reader_blocked_on_one_connection_sleeps_through_traffic_on_another() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let l = TcpListener::bind(&net, 8100).unwrap();
        let ctx2 = ctx.clone();
        let kernel = ctx.spawn(move || {
            let mut a = kernel_connect(&ctx2, 8100);
            let b = kernel_connect(&ctx2, 8100);
            write_pattern(&b, 3, 2_000_000).unwrap();
            b.shutdown(Shutdown::Write).unwrap();
            // Let utcp finish reading B before A says anything.
            let mut x = [0u8; 1];
            assert_eq!((&b).read(&mut x).unwrap(), 0);
            a.write_all(b"A").unwrap();
            read_to_end(&mut a).unwrap()
        });
        let (a, _) = l.accept().unwrap();
        let (b, _) = l.accept().unwrap();
        a.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        b.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let a2 = a.try_clone().unwrap();
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 16];
            let n = (&a2).read(&mut buf).unwrap();
            (buf[..n].to_vec(), a2.debug_wakeups())
        });
        thread::sleep(Duration::from_millis(100));
        read_pattern(&b, 3, 2_000_000).unwrap();
        let during_b = a.debug_wakeups();
        drop(b);
        let (got, wakeups) = join_bounded(reader, JOIN_TIMEOUT, "reader of A");
        assert_eq!(got, b"A");
        assert_eq!(during_b, 0, "traffic on B woke A's reader {during_b} times");
        assert!(
            (1..=3).contains(&wakeups),
            "A's reader woke {wakeups} times"
        );
        drop(a);
        assert!(join_bounded(kernel, JOIN_TIMEOUT, "kernel").is_empty());
    });
}

/// Retries `op` while it says `WouldBlock`, sleeping 1 ms, up to `IO_TIMEOUT`.
fn retry<T>(what: &str, mut op: impl FnMut() -> io::Result<T>) -> T {
    let deadline = Instant::now() + IO_TIMEOUT;
    loop {
        match op() {
            Ok(v) => return v,
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

#[test]
fn nonblocking_listener_and_stream_return_would_block() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let l = TcpListener::bind(&net, 8101).unwrap();
        l.set_nonblocking(true).unwrap();
        let t = Instant::now();
        assert_eq!(kind_of(l.accept()), ErrorKind::WouldBlock);
        assert!(t.elapsed() < Duration::from_millis(500));
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let ctx2 = ctx.clone();
        let kernel = ctx.spawn(move || {
            let mut s = kernel_connect(&ctx2, 8101);
            go_rx.recv().unwrap();
            s.write_all(b"hello").unwrap();
            // Do not read until told: utcp's writes fill the windows.
            go_rx.recv().unwrap();
            read_to_end(&mut s).unwrap().len()
        });
        let (s, _) = retry("accept", || l.accept());
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        let t = Instant::now();
        assert_eq!(kind_of((&s).read(&mut buf)), ErrorKind::WouldBlock);
        assert!(t.elapsed() < Duration::from_millis(500));
        go_tx.send(()).unwrap();
        let n = retry("read", || (&s).read(&mut buf));
        assert_eq!(&buf[..n], b"hello");
        // Write until the send buffer and the kernel's window are full.
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0usize;
        let t = Instant::now();
        loop {
            match (&s).write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
            assert!(t.elapsed() < IO_TIMEOUT, "write never said WouldBlock");
        }
        assert!(sent > 0);
        go_tx.send(()).unwrap();
        // Blocking again: the rest goes out as the kernel reads.
        s.set_nonblocking(false).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        (&s).write_all(&chunk).unwrap();
        drop(s);
        let got = join_bounded(kernel, JOIN_TIMEOUT, "kernel");
        assert_eq!(got, sent + chunk.len());
    });
}

/// One connection of the Poll-driven echo server below.
struct EchoConn {
    stream: TcpStream,
    pending: Vec<u8>,
    eof: bool,
}

/// Reads what is there, writes back what fits; true when the connection is
/// done (EOF read, everything echoed, FIN sent).
fn echo_ready(poll: &Poll, token: Token, c: &mut EchoConn) -> bool {
    let mut buf = [0u8; 16 * 1024];
    while !c.eof {
        match (&c.stream).read(&mut buf) {
            Ok(0) => c.eof = true,
            Ok(n) => c.pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("echo read: {e}"),
        }
    }
    while !c.pending.is_empty() {
        match (&c.stream).write(&c.pending) {
            Ok(n) => {
                c.pending.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("echo write: {e}"),
        }
    }
    if c.eof && c.pending.is_empty() {
        c.stream.shutdown(Shutdown::Write).unwrap();
        return true;
    }
    let interest = if c.pending.is_empty() {
        Interest::READABLE
    } else {
        Interest::READABLE | Interest::WRITABLE
    };
    poll.reregister(&c.stream, token, interest).unwrap();
    false
}

#[test]
fn one_thread_serves_100_connections_through_poll() {
    const CONNS: usize = 100;
    const LEN: usize = 20_000;
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let l = TcpListener::bind(&net, 8102).unwrap();
        l.set_nonblocking(true).unwrap();
        let mut poll = Poll::new(&net).unwrap();
        poll.register(&l, Token(0), Interest::READABLE).unwrap();
        let ctx2 = ctx.clone();
        let kernel = ctx.spawn(move || {
            let socks: Vec<_> = (0..CONNS).map(|_| kernel_connect(&ctx2, 8102)).collect();
            for (i, s) in socks.iter().enumerate() {
                write_pattern(s, i as u64, LEN).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
            }
            for (i, s) in socks.iter().enumerate() {
                read_pattern(s, i as u64, LEN).unwrap();
                let mut x = [0u8; 1];
                assert_eq!((&*s).read(&mut x).unwrap(), 0, "connection {i}: no EOF");
            }
        });
        let mut events = Events::with_capacity(64);
        let mut conns: std::collections::HashMap<usize, EchoConn> = Default::default();
        let (mut next, mut done) = (1, 0);
        let deadline = Instant::now() + IO_TIMEOUT;
        while done < CONNS {
            assert!(Instant::now() < deadline, "only {done} connections done");
            poll.poll(&mut events, Some(Duration::from_secs(1)))
                .unwrap();
            for ev in &events {
                if ev.token() == Token(0) {
                    assert!(ev.is_readable());
                    while let Some((s, _)) = match l.accept() {
                        Ok(v) => Some(v),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
                        Err(e) => panic!("accept: {e}"),
                    } {
                        s.set_nonblocking(true).unwrap();
                        poll.register(&s, Token(next), Interest::READABLE).unwrap();
                        let c = EchoConn {
                            stream: s,
                            pending: Vec::new(),
                            eof: false,
                        };
                        conns.insert(next, c);
                        next += 1;
                    }
                } else if let Some(c) = conns.get_mut(&ev.token().0) {
                    if echo_ready(&poll, ev.token(), c) {
                        conns.remove(&ev.token().0);
                        done += 1;
                    }
                }
            }
        }
        assert_eq!(next, CONNS + 1);
        join_bounded(kernel, JOIN_TIMEOUT, "kernel clients");
    });
}

#[test]
fn poll_times_out_and_reports_hup_after_reset() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let l = TcpListener::bind(&net, 8103).unwrap();
        let mut poll = Poll::new(&net).unwrap();
        let mut events = Events::with_capacity(8);
        let t = Instant::now();
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        assert!(events.is_empty());
        assert!(t.elapsed() >= Duration::from_millis(100));
        poll.register(&l, Token(1), Interest::READABLE).unwrap();
        assert_eq!(
            kind_of(poll.register(&l, Token(1), Interest::READABLE)),
            ErrorKind::AlreadyExists
        );
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let ctx2 = ctx.clone();
        let kernel = ctx.spawn(move || {
            let s = kernel_connect(&ctx2, 8103);
            rx.recv().unwrap();
            set_linger_zero(s.as_raw_fd());
            drop(s); // RST
        });
        poll.poll(&mut events, Some(IO_TIMEOUT)).unwrap();
        let ev: Vec<_> = events.iter().copied().collect();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].token(), Token(1));
        assert!(ev[0].is_readable() && !ev[0].is_hup());
        let (s, _) = l.accept().unwrap();
        poll.register(&s, Token(2), Interest::READABLE | Interest::WRITABLE)
            .unwrap();
        poll.poll(&mut events, Some(IO_TIMEOUT)).unwrap();
        let ev: Vec<_> = events.iter().copied().collect();
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(ev[0].token() == Token(2) && ev[0].is_writable() && !ev[0].is_readable());
        poll.reregister(&s, Token(2), Interest::READABLE).unwrap();
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        assert!(events.is_empty(), "nothing to read yet");
        tx.send(()).unwrap();
        poll.poll(&mut events, Some(IO_TIMEOUT)).unwrap();
        let ev: Vec<_> = events.iter().copied().collect();
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(ev[0].is_readable() && ev[0].is_hup(), "{ev:?}");
        let mut b = [0u8; 8];
        assert_eq!(kind_of((&s).read(&mut b)), ErrorKind::ConnectionReset);
        poll.deregister(&s).unwrap();
        assert_eq!(kind_of(poll.deregister(&s)), ErrorKind::NotFound);
        join_bounded(kernel, JOIN_TIMEOUT, "kernel");
    });
}

/// `TcpStream::connect_nonblocking` returns during the handshake; a Poll
/// reports it writable once established, and hung up with the reason on a
/// refused port.
#[test]
fn nonblocking_connect_completes_through_poll() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let kl = kernel_listener(&ctx, 8104);
        let kernel = ctx.spawn(move || {
            let mut s = kernel_accept(&kl, JOIN_TIMEOUT);
            read_to_end(&mut s).unwrap()
        });
        let s = TcpStream::connect_nonblocking(&net, kernel_addr(8104)).unwrap();
        let mut b = [0u8; 8];
        assert_eq!(kind_of((&s).read(&mut b)), ErrorKind::WouldBlock);
        let mut poll = Poll::new(&net).unwrap();
        let mut events = Events::with_capacity(8);
        poll.register(&s, Token(1), Interest::WRITABLE).unwrap();
        poll.poll(&mut events, Some(IO_TIMEOUT)).unwrap();
        let ev: Vec<_> = events.iter().copied().collect();
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(ev[0].is_writable() && !ev[0].is_hup(), "{ev:?}");
        assert_eq!(s.state().unwrap(), State::Established);
        (&s).write_all(b"after poll").unwrap();
        drop(s);
        assert_eq!(join_bounded(kernel, JOIN_TIMEOUT, "kernel"), b"after poll");

        // Nobody listens on 8105: the kernel answers the SYN with a RST.
        let r = TcpStream::connect_nonblocking(&net, kernel_addr(8105)).unwrap();
        poll.register(&r, Token(2), Interest::WRITABLE).unwrap();
        poll.poll(&mut events, Some(IO_TIMEOUT)).unwrap();
        let ev: Vec<_> = events.iter().copied().collect();
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert!(ev[0].token() == Token(2) && ev[0].is_hup(), "{ev:?}");
        assert_eq!(kind_of((&r).read(&mut b)), ErrorKind::ConnectionRefused);
    });
}

/// Threads of process `pid` (from /proc).
fn thread_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Opens `n` kernel connections to utcp's `port` at once (inside the
/// namespace), sends each `len` bytes of its pattern, and while all are open
/// records how many threads the utcp process `pid` has.
fn many_kernel_clients(
    ctx: &NsCtx,
    port: u16,
    n: usize,
    len: usize,
    pid: u32,
) -> (Vec<std::net::TcpStream>, usize) {
    let socks: Vec<_> = (0..n).map(|_| kernel_connect(ctx, port)).collect();
    for (i, s) in socks.iter().enumerate() {
        write_pattern(s, i as u64, len).unwrap();
    }
    let threads = thread_count(pid);
    for s in &socks {
        s.shutdown(Shutdown::Write).unwrap();
    }
    (socks, threads)
}

#[test]
fn cli_echo_and_sink_serve_many_connections_from_one_thread() {
    const N: usize = 20;
    const LEN: usize = 30_000;
    let ns = Netns::new();
    let mut sink = ns.spawn_utcp_listening(
        "utcp sink",
        &["--stats", "sink", "--port", "9"],
        std::process::Stdio::null(),
        Capture::Pipe,
    );
    let pid = sink.pid();
    let (socks, threads) = run_in_netns(&ns, {
        let ctx = ns.ctx();
        move || many_kernel_clients(&ctx, 9, N, LEN, pid)
    });
    // The CLI drives inline by default: the main thread, the fallback
    // driver and the idle SIGUSR1 watcher (src/cli/ss.rs), however many
    // connections.
    assert_eq!(
        threads,
        3,
        "utcp sink runs {threads} threads\n{}",
        sink.log()
    );
    let deadline = Instant::now() + IO_TIMEOUT;
    while sink.stdout_string().lines().count() < N {
        assert!(Instant::now() < deadline, "sink output:\n{}", sink.log());
        thread::sleep(Duration::from_millis(20));
    }
    for s in &socks {
        let line = format!("{} {LEN} bytes", s.local_addr().unwrap());
        assert!(
            sink.stdout_string().contains(&line),
            "no {line:?}\n{}",
            sink.log()
        );
    }
    let stats = sink.stderr_string().matches("utcp: stats").count();
    assert_eq!(stats, N, "--stats lines\n{}", sink.log());
    drop(socks);
    sink.kill();

    let mut echo = ns.spawn_utcp_listening(
        "utcp echo",
        &["--driver", "thread", "echo", "--port", "7"],
        std::process::Stdio::null(),
        Capture::Pipe,
    );
    let pid = echo.pid();
    let threads = run_in_netns(&ns, {
        let ctx = ns.ctx();
        move || {
            let (socks, threads) = many_kernel_clients(&ctx, 7, N, LEN, pid);
            for (i, s) in socks.iter().enumerate() {
                read_pattern(s, i as u64, LEN).unwrap();
                assert!(read_to_end(s).unwrap().is_empty(), "no EOF on {i}");
            }
            threads
        }
    });
    // With a driver thread: the main thread, the driver and the SIGUSR1
    // watcher.
    assert_eq!(
        threads,
        3,
        "utcp echo runs {threads} threads\n{}",
        echo.log()
    );
    assert!(echo.is_running(), "{}", echo.log());
    echo.kill();
}

/// `utcp source --bytes N` (one thread, through Poll) sends every client N
/// zero bytes and then its FIN, and closes once the client's FIN came.
#[test]
fn cli_source_sends_each_connection_its_bytes_then_eof() {
    const N: usize = 10;
    const LEN: usize = 300_000;
    let ns = Netns::new();
    let mut source = ns.spawn_utcp_listening(
        "utcp source",
        &["source", "--port", "19", "--bytes", &LEN.to_string()],
        std::process::Stdio::null(),
        Capture::Pipe,
    );
    run_in_netns(&ns, {
        let ctx = ns.ctx();
        move || {
            let socks: Vec<_> = (0..N).map(|_| kernel_connect(&ctx, 19)).collect();
            for (i, s) in socks.iter().enumerate() {
                let got = read_to_end(s).unwrap();
                assert_eq!(got.len(), LEN, "bytes on connection {i}");
                assert!(got.iter().all(|&b| b == 0), "non-zero byte on {i}");
            }
        }
    });
    assert!(source.is_running(), "{}", source.log());
    source.kill();
}

/// Keepalive against the kernel: the kernel answers the probes, so the
/// connection lives; once nftables drops everything the kernel sends, the
/// unanswered probes end it and a blocked `read` returns `TimedOut`.
#[test]
fn keepalive_ends_a_connection_to_a_silent_peer() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, ctx| {
        let l = kernel_listener(&ctx, 7100);
        let mut s = TcpStream::connect(&net, kernel_addr(7100)).expect("connect");
        let _k = kernel_accept(&l, IO_TIMEOUT);
        let ka = utcp::tcb::Keepalive {
            idle: Duration::from_millis(500),
            interval: Duration::from_millis(300),
            count: 3,
        };
        assert_eq!(
            s.set_keepalive(Some(utcp::tcb::Keepalive { count: 0, ..ka }))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
        s.set_keepalive(Some(ka)).expect("keepalive on");
        assert_eq!(s.keepalive().unwrap(), Some(ka));
        thread::sleep(Duration::from_millis(2000));
        assert_eq!(s.state().unwrap(), State::Established, "the kernel answers");
        let answered = s.stats().unwrap().keepalive_probes;
        assert!(answered >= 2, "probes went out: {answered}");
        // The kernel goes silent.
        let mut nft = std::process::Command::new("ip")
            .args(["netns", "exec", ctx.name(), "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("nft");
        nft.stdin
            .take()
            .unwrap()
            .write_all(
                b"table inet utcptest {\n  chain to_utcp {\n    type filter hook output priority 0; policy accept;\n    oifname \"utcp0\" counter drop\n  }\n}\n",
            )
            .unwrap();
        assert!(nft.wait().unwrap().success(), "nft rule");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let t0 = Instant::now();
        let mut buf = [0u8; 16];
        let e = s.read(&mut buf).expect_err("the peer is gone");
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(5), "ended after {took:?}");
        eprintln!("keepalive: {answered} probes answered; silent peer given up after {took:?}");
    });
}
