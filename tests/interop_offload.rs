//! The utcp binary with `--offload` (virtio-net headers, checksum offload,
//! TSO on the TUN device; see `src/device/vnet.rs`) against the kernel's
//! TCP, each test in its own network namespace. The kernel then hands utcp
//! 64 KB super-packets with partial checksums; these tests check that what
//! arrives is byte-exact, also when nftables drops whole super-packets.
//! Needs root and /dev/net/tun; run with `scripts/test.sh`.

mod common;

use common::*;
use utcp::testing::random_bytes;

const OFFLOAD: &[&str] = &["--offload"];
const THIRTY_TWO_MIB: usize = 32 * 1024 * 1024;
const FIVE_MB: usize = 5_000_000;

#[test]
fn offload_seed_message_to_utcp_server() {
    seed_message_to_utcp_server(&Netns::new(), OFFLOAD);
}

#[test]
fn offload_thirty_two_mebibytes_each_way() {
    let ns = Netns::new();
    let data = random_bytes(THIRTY_TWO_MIB, 0x0ff1_0001);
    let k2u = kernel_to_utcp(
        &ns,
        "--offload 32 MiB",
        &data,
        5201,
        &["--offload", "--stats"],
    );
    let data = random_bytes(THIRTY_TWO_MIB, 0x0ff1_0002);
    let written_before = ns.device_counter("rx_packets");
    let u2k = utcp_to_kernel(&ns, "--offload 32 MiB", &data, 5202, OFFLOAD);
    let written = ns.device_counter("rx_packets") - written_before;
    eprintln!(
        "--offload 32 MiB: kernel->utcp {:.2} s, utcp->kernel {:.2} s",
        k2u.elapsed.as_secs_f64(),
        u2k.elapsed.as_secs_f64()
    );
    // Super-packets arrived: far fewer segments than 32 MiB / MSS.
    let segs_in = stat_field(&k2u.utcp_stderr, "segs in/out ");
    eprintln!("--offload 32 MiB: utcp received {segs_in} segments");
    assert!(
        segs_in < (THIRTY_TWO_MIB / 1448) as u64 / 4,
        "with TSO the kernel should send super-packets; utcp got {segs_in} segments\n{}",
        k2u.utcp_stderr
    );
    // And utcp wrote super-segments: far fewer writes than segments.
    eprintln!("--offload 32 MiB: utcp wrote {written} packets to the TUN");
    assert!(
        written < (THIRTY_TWO_MIB / 1448) as u64 / 4,
        "with TSO utcp should write super-segments; it wrote {written} packets\n{}",
        u2k.utcp_stderr
    );
}

#[test]
fn offload_hundred_concurrent_echo_connections() {
    concurrent_echo(&Netns::new(), 100, 16 * 1024, OFFLOAD);
}

/// nftables drops 5% of the packets through the device each way: with TSO
/// on, a dropped packet kernel->utcp is a whole super-packet of up to 64 KB.
#[test]
fn offload_five_megabytes_each_way_at_5_percent_kernel_loss() {
    let ns = Netns::new();
    ns.nft_apply(NFT_LOSS_RULES);
    let data = random_bytes(FIVE_MB, 0x0ff1_0003);
    kernel_to_utcp(&ns, "--offload, nft 5% loss", &data, 5203, OFFLOAD);
    let data = random_bytes(FIVE_MB, 0x0ff1_0004);
    utcp_to_kernel(&ns, "--offload, nft 5% loss", &data, 5204, OFFLOAD);
    let counters = ns.nft_counters("inet", "utcptest");
    assert!(
        counters.iter().all(|c| c.packets > 0),
        "the nftables rules dropped nothing in some direction: {counters:?}"
    );
}

/// The first number after `key` in a `--stats` line.
fn stat_field(stderr: &str, key: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("utcp: stats"))
        .unwrap_or_else(|| panic!("no --stats line in:\n{stderr}"));
    let rest = &line[line
        .find(key)
        .unwrap_or_else(|| panic!("no {key:?} in {line}"))
        + key.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {key:?} in {line}"))
}
