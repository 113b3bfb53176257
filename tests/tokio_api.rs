//! The tokio API (`utcp::tokio`, feature `tokio`) against the kernel's TCP
//! over a TUN device in a namespace of the test's own (root, TUN; run by
//! scripts/test.sh with `--features tokio`). Kernel-side peers are tokio's
//! own sockets, on the same multi-threaded runtime as utcp's tasks.

mod common;

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::testing::random_bytes;

const TEST_TIMEOUT: Duration = Duration::from_secs(120);
const CONNS: usize = 1000;
const PER_CONN: usize = 4096;

fn utcp_addr(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(UTCP_IP.parse().unwrap(), port))
}

fn kernel_addr(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(KERNEL_IP.parse().unwrap(), port))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// An echo task per connection until the peer's FIN.
async fn echo(mut s: utcp::tokio::TcpStream) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 8192];
    let mut total = 0;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            s.shutdown().await?;
            return Ok(total);
        }
        s.write_all(&buf[..n]).await?;
        total += n as u64;
    }
}

/// The done-when: 1,000 concurrent kernel connections echoed
/// byte-exact by utcp::tokio tasks on a 2-thread runtime (no thread per
/// connection). The burst of SYNs overflows the backlog (128), so SYN
/// cookies and the kernel's retransmissions are in play too.
#[test]
fn tokio_echo_serves_a_thousand_concurrent_kernel_connections() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, _ctx| {
        runtime().block_on(async move {
            let listener = utcp::tokio::TcpListener::bind(&net, 7).await.unwrap();
            assert_eq!(listener.local_addr().unwrap(), utcp_addr(7));
            let server = tokio::spawn(async move {
                let mut tasks = Vec::new();
                for _ in 0..CONNS {
                    let (s, peer) = listener.accept().await.unwrap();
                    assert_eq!(s.peer_addr().unwrap(), peer);
                    tasks.push(tokio::spawn(echo(s)));
                }
                let mut echoed = 0;
                for t in tasks {
                    echoed += t.await.unwrap().unwrap();
                }
                echoed
            });
            let data = Arc::new(random_bytes(CONNS * PER_CONN, 42));
            let mut clients = Vec::new();
            for i in 0..CONNS {
                let data = data.clone();
                clients.push(tokio::spawn(async move {
                    let mine = &data[i * PER_CONN..(i + 1) * PER_CONN];
                    let mut s = tokio::net::TcpStream::connect(utcp_addr(7)).await?;
                    s.write_all(mine).await?;
                    s.shutdown().await?;
                    let mut back = Vec::new();
                    s.read_to_end(&mut back).await?;
                    Ok::<bool, std::io::Error>(back == mine)
                }));
            }
            let timeout = Duration::from_secs(90);
            for (i, c) in clients.into_iter().enumerate() {
                let same = tokio::time::timeout(timeout, c)
                    .await
                    .unwrap_or_else(|_| panic!("client {i} timed out"))
                    .unwrap()
                    .unwrap_or_else(|e| panic!("client {i}: {e}"));
                assert!(same, "client {i} got different bytes back");
            }
            let echoed = tokio::time::timeout(timeout, server)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(echoed, (CONNS * PER_CONN) as u64);
        });
    });
}

/// `utcp::tokio::TcpStream::connect` to a kernel listener: data both ways,
/// `shutdown` sends the FIN the kernel reads as EOF; a closed port is
/// `ConnectionRefused`.
#[test]
fn tokio_connect_talks_to_a_kernel_server_and_reports_refusal() {
    let ns = Netns::new();
    ns.with_utcp(TEST_TIMEOUT, |net, _ctx| {
        runtime().block_on(async move {
            let kernel = tokio::net::TcpListener::bind(kernel_addr(5000))
                .await
                .unwrap();
            let server = tokio::spawn(async move {
                let (mut s, _) = kernel.accept().await.unwrap();
                let mut got = Vec::new();
                s.read_to_end(&mut got).await.unwrap();
                s.write_all(&got).await.unwrap();
                got.len()
            });
            let mut s = utcp::tokio::TcpStream::connect(&net, kernel_addr(5000))
                .await
                .unwrap();
            assert_eq!(s.peer_addr().unwrap(), kernel_addr(5000));
            assert_eq!(s.local_addr().unwrap().ip(), utcp_addr(0).ip());
            let data = random_bytes(1 << 20, 5);
            s.write_all(&data).await.unwrap();
            s.shutdown().await.unwrap();
            let mut back = Vec::new();
            s.read_to_end(&mut back).await.unwrap();
            assert_eq!(server.await.unwrap(), data.len());
            assert!(back == data, "the echo differs");

            let err = utcp::tokio::TcpStream::connect(&net, kernel_addr(5001))
                .await
                .expect_err("nobody listens on 5001");
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
        });
    });
}

/// Any-IP mode over the TUN: with 198.18.0.0/16 routed into the device,
/// kernel clients dial several addresses and ports; the tokio any-IP
/// listener accepts them all and each stream's `local_addr()` is what its
/// client dialled (the server sends it back). The accept filter refuses
/// port 25 with a RST (`ConnectionRefused` for the kernel client), and a
/// ping to a routed address is answered.
#[test]
fn tokio_any_ip_listener_learns_the_original_destination() {
    let ns = Netns::new();
    let mut route = ns.command("ip");
    route.args(["route", "add", "198.18.0.0/16", "dev", DEV]);
    let (status, _, err) = run_bounded(route, Duration::from_secs(10));
    assert!(status.success(), "ip route add: {err}");
    let targets: Vec<SocketAddr> = [
        "198.18.0.1:80",
        "198.18.7.7:8080",
        "198.18.200.1:443",
        "10.77.0.2:22",
    ]
    .iter()
    .map(|a| a.parse().unwrap())
    .collect();
    let tweak = |cfg: &mut utcp::stack::StackConfig| {
        cfg.any_ip = true;
        cfg.accept_filter = Some(utcp::stack::AcceptFilter::new(|dialled, _| {
            dialled.port() != 25
        }));
    };
    let ping = ns.command("ping");
    ns.with_utcp_config(TEST_TIMEOUT, tweak, move |net, _ctx| {
        runtime().block_on(async move {
            let listener = utcp::tokio::TcpListener::bind_any(&net).await.unwrap();
            let n = targets.len();
            let server = tokio::spawn(async move {
                for _ in 0..n {
                    let (mut s, _) = listener.accept().await.unwrap();
                    let dialled = s.local_addr().unwrap().to_string();
                    s.write_all(dialled.as_bytes()).await.unwrap();
                    s.shutdown().await.unwrap();
                }
                listener
            });
            for t in &targets {
                let mut s = tokio::net::TcpStream::connect(t).await.unwrap();
                let mut got = String::new();
                s.read_to_string(&mut got).await.unwrap();
                assert_eq!(got, t.to_string(), "the stream's local address");
            }
            // Still listening: the refusal below is the filter's.
            let _listener = server.await.unwrap();
            let refused = tokio::net::TcpStream::connect("198.18.0.1:25").await;
            let err = refused.expect_err("port 25 is filtered");
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
            assert_eq!(net.stats().syns_filtered, 1);
        });
    });
    let mut ping = ping;
    ping.args(["-c", "1", "-W", "2", "198.18.3.3"]);
    // The stack is gone with the closure: start another for the ping.
    ns.with_utcp_config(TEST_TIMEOUT, tweak, move |_net, _ctx| {
        let (status, out, err) = run_bounded(ping, Duration::from_secs(10));
        assert!(status.success(), "ping 198.18.3.3: {out}{err}");
    });
}
