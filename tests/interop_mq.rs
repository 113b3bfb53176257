//! utcp on a multi-queue TUN device (`--queues 2`: one stack shard per
//! queue, see `src/device/shard.rs`) against the kernel's TCP, each test in
//! its own network namespace with a device made by
//! `scripts/setup-tun.sh --multi-queue`. The CLI tests repeat the seed demo,
//! 32 MiB each way, 100 concurrent connections and 5% nftables loss; the
//! library tests check that the kernel spreads connections over both shards
//! and that a shard's active opens still get their packets after the
//! kernel's flow table forgot which queue they belong to.
//! Needs root and /dev/net/tun; run with `scripts/test.sh`.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, SocketAddrV4};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use utcp::socket::{RuntimeOptions, Shards, TcpListener, TcpStream};
use utcp::stack::{Shard, StackConfig};
use utcp::testing::random_bytes;

const QUEUES: &[&str] = &["--queues", "2"];
const QUEUES_OFFLOAD: &[&str] = &["--queues", "2", "--offload"];
const THIRTY_TWO_MIB: usize = 32 * 1024 * 1024;
const FIVE_MB: usize = 5_000_000;

#[test]
fn queues_seed_message_to_utcp_server() {
    seed_message_to_utcp_server(&Netns::multi_queue(), QUEUES);
}

/// Echo requests are answered by whichever shard gets them.
#[test]
fn queues_ping_gets_echo_replies() {
    let ns = Netns::multi_queue();
    let _server = ns.spawn_utcp_listening(
        "utcp --queues 2 server",
        &["--queues", "2", "server"],
        Stdio::null(),
        Capture::Pipe,
    );
    let ping = ns.run(
        "ping",
        "ping",
        &["-c", "5", "-i", "0.2", "-W", "2", UTCP_IP],
        b"",
        SHORT_TIMEOUT,
    );
    assert!(
        ping.status.success(),
        "ping over 2 queues failed: {}\n{}",
        ping.stdout_string(),
        ping.stderr
    );
}

#[test]
fn queues_thirty_two_mebibytes_each_way() {
    let ns = Netns::multi_queue();
    let data = random_bytes(THIRTY_TWO_MIB, 0x0a0e_0001);
    kernel_to_utcp(&ns, "--queues 2, 32 MiB", &data, 5201, QUEUES);
    let data = random_bytes(THIRTY_TWO_MIB, 0x0a0e_0002);
    utcp_to_kernel(&ns, "--queues 2, 32 MiB", &data, 5202, QUEUES);
}

#[test]
fn queues_hundred_concurrent_echo_connections() {
    concurrent_echo(&Netns::multi_queue(), 100, 16 * 1024, QUEUES);
}

#[test]
fn queues_with_offload_hundred_concurrent_echo_connections() {
    concurrent_echo(&Netns::multi_queue(), 100, 16 * 1024, QUEUES_OFFLOAD);
}

#[test]
fn queues_five_megabytes_each_way_at_5_percent_kernel_loss() {
    let ns = Netns::multi_queue();
    ns.nft_apply(NFT_LOSS_RULES);
    let data = random_bytes(FIVE_MB, 0x0a0e_0003);
    kernel_to_utcp(&ns, "--queues 2, nft 5% loss", &data, 5203, QUEUES);
    let data = random_bytes(FIVE_MB, 0x0a0e_0004);
    utcp_to_kernel(&ns, "--queues 2, nft 5% loss", &data, 5204, QUEUES);
    let counters = ns.nft_counters("inet", "utcptest");
    assert!(
        counters.iter().all(|c| c.packets > 0),
        "the nftables rules dropped nothing in some direction: {counters:?}"
    );
}

/// Two shards on the namespace's multi-queue device, created on a thread
/// inside the namespace.
fn shards() -> Shards {
    let cfg = StackConfig::new(UTCP_IP.parse().unwrap());
    let opts = RuntimeOptions {
        driver: test_driver(),
        ..RuntimeOptions::default()
    };
    Shards::tun(DEV, cfg, opts, 2).unwrap_or_else(|e| panic!("cannot attach 2 queues: {e}"))
}

/// 40 kernel connections to a port every shard listens on: each is accepted
/// by exactly one shard, and the kernel's hash sends some to each.
#[test]
fn kernel_connections_spread_over_both_shards() {
    const CONNS: usize = 40;
    let ns = Netns::multi_queue();
    let ctx = ns.name().to_string();
    let per_shard = run_in_netns(&ns, move || {
        assert_in_netns(&ctx);
        let shards = shards();
        let counters: Vec<_> = shards
            .stacks()
            .iter()
            .map(|net| {
                let l = TcpListener::bind(net, 7000).expect("bind 7000");
                l.set_nonblocking(true).expect("nonblocking");
                l
            })
            .collect();
        let server: SocketAddr = (UTCP_IP.parse::<std::net::Ipv4Addr>().unwrap(), 7000).into();
        let mut counts = vec![0usize; counters.len()];
        for i in 0..CONNS {
            let mut s = std::net::TcpStream::connect_timeout(&server, SHORT_TIMEOUT)
                .unwrap_or_else(|e| panic!("kernel connect {i}: {e}"));
            s.write_all(&[i as u8]).expect("kernel write");
            let deadline = Instant::now() + SHORT_TIMEOUT;
            'found: loop {
                for (shard, l) in counters.iter().enumerate() {
                    match l.accept() {
                        Ok((mut c, _)) => {
                            c.set_nonblocking(false).expect("blocking");
                            c.set_read_timeout(Some(SHORT_TIMEOUT)).expect("timeout");
                            let mut b = [0u8; 1];
                            c.read_exact(&mut b).expect("utcp read");
                            assert_eq!(b[0], i as u8, "connection {i}'s byte");
                            counts[shard] += 1;
                            break 'found;
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) => panic!("accept on shard {shard}: {e}"),
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "connection {i} accepted by no shard"
                );
                thread::sleep(Duration::from_millis(1));
            }
        }
        counts
    });
    eprintln!("connections per shard: {per_shard:?}");
    assert_eq!(per_shard.iter().sum::<usize>(), CONNS);
    assert!(
        per_shard.iter().all(|&n| n > 0),
        "the kernel should spread {CONNS} flows over both queues: {per_shard:?}"
    );
}

/// Shard 1 opens 16 connections to a kernel server; they stay silent for
/// 7 s, longer than the kernel's TUN flow table keeps an entry (3 s, swept
/// every 3 s), so the kernel then picks the queue of each flow by its hash
/// alone, half of them shard 0's. The data still arrives: shard 0 passes
/// those packets to shard 1 by their destination port.
#[test]
fn active_opens_get_their_packets_after_the_flow_table_forgot_them() {
    const CONNS: usize = 16;
    let ns = Netns::multi_queue();
    let ctx = ns.name().to_string();
    let forwarded = run_in_netns(&ns, move || {
        assert_in_netns(&ctx);
        let shards = shards();
        let kernel = std::net::TcpListener::bind((KERNEL_IP, 6000)).expect("kernel bind 6000");
        let target: SocketAddrV4 = format!("{KERNEL_IP}:6000").parse().unwrap();
        let mut pairs = Vec::new();
        for i in 0..CONNS {
            let mut ours = TcpStream::connect(&shards.stacks()[1], target)
                .unwrap_or_else(|e| panic!("connect {i} from shard 1: {e}"));
            let port = ours.local_addr().expect("local addr").port();
            assert_eq!(Shard::owner_of_port(2, port), Some(1), "port {port}");
            let (mut theirs, _) = kernel.accept().expect("kernel accept");
            theirs
                .set_read_timeout(Some(SHORT_TIMEOUT))
                .expect("timeout");
            ours.write_all(b"hello").expect("utcp write");
            let mut b = [0u8; 5];
            theirs.read_exact(&mut b).expect("kernel read");
            ours.set_read_timeout(Some(SHORT_TIMEOUT)).expect("timeout");
            pairs.push((ours, theirs));
        }
        let before = shards.steering_stats().forwarded;
        thread::sleep(Duration::from_secs(7));
        for (i, (ours, theirs)) in pairs.iter_mut().enumerate() {
            theirs.write_all(&[i as u8; 100]).expect("kernel write");
            let mut b = [0u8; 100];
            ours.read_exact(&mut b)
                .unwrap_or_else(|e| panic!("connection {i}: the kernel's data never came: {e}"));
            assert_eq!(b, [i as u8; 100]);
        }
        shards.steering_stats().forwarded - before
    });
    eprintln!("packets passed from shard 0 to shard 1 after the idle time: {forwarded}");
    assert!(
        forwarded > 0,
        "with {CONNS} flows some should hash to shard 0's queue once forgotten"
    );
}
