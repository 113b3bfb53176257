//! A SYN flood against a listener over the simulated link (RFC 4987): with
//! SYN cookies memory stays bounded and a real client connects during and
//! after the flood; without them the flood locks the client out.

mod sim_util;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use utcp::sim::{Dir, Fate, SimNet};
use utcp::stack::ConnId;
use utcp::state::State;
use utcp::testing::{encode, init_logger, segment};
use utcp::wire::{TcpFlags, TcpOptions, TcpSegment};

use sim_util::{configs, A, B, LATENCY, PORT};

const BACKLOG: usize = 64;
const FLOOD: usize = 100_000;
/// Flood SYNs per simulated millisecond (100,000 SYNs/s).
const PER_MS: usize = 100;

/// A SYN as a flooding host sends it: a random source in 172.16/12 (not a
/// stack of the net, so nobody answers the SYN-ACK), a random port and
/// ISN, the options Linux puts in a SYN.
fn flood_syn(rng: &mut rand::rngs::StdRng) -> Vec<u8> {
    let src = SocketAddrV4::new(
        Ipv4Addr::from(0xac10_0000 | rng.random_range(0..0x10_0000u32)),
        rng.random_range(1024..=u16::MAX),
    );
    let opts = TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamp: Some((rng.random(), 0)),
        ..TcpOptions::default()
    };
    let syn = TcpSegment {
        options: opts,
        ..segment(
            src,
            SocketAddrV4::new(B, PORT),
            TcpFlags::SYN,
            rng.random(),
            0,
            &[],
        )
    };
    encode(&syn)
}

/// What a flood left: the most connections `b` held at once, whether the
/// real client got in (and its connection on both sides).
struct Outcome {
    max_held: usize,
    client: Option<(ConnId, ConnId)>,
}

/// Floods `b` with `FLOOD` SYNs at `PER_MS` per millisecond while `a`, a
/// real client, connects halfway through and sends a message; the SYN-ACKs
/// to the flooding addresses are dropped on the link.
fn flood(cookies: bool) -> (SimNet, Outcome) {
    init_logger();
    let (ca, mut cb) = configs();
    cb.syn_cookies = cookies;
    let mut n = SimNet::new(ca, cb, LATENCY);
    n.set_filter(|dir, pkt| {
        if dir == Dir::BtoA && pkt.get(16..20) != Some(&A.octets()[..]) {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    n.b.listen(PORT, BACKLOG).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut out = Outcome {
        max_held: 0,
        client: None,
    };
    let mut c = None;
    let mut s = None;
    let mut said = false;
    for i in 0..FLOOD / PER_MS {
        for _ in 0..PER_MS {
            let now = n.now();
            n.b.handle_packet(now, &flood_syn(&mut rng));
        }
        if i == FLOOD / PER_MS / 2 {
            let now = n.now();
            c = Some(n.a.connect(now, SocketAddrV4::new(B, PORT)).unwrap());
        }
        n.run_for(Duration::from_millis(1));
        if let Some(tcb) = c.and_then(|c| n.a.tcb_mut(c)) {
            if tcb.state() == State::Established && !said {
                said = tcb.send(b"Hi, I am a client").is_ok();
            }
        }
        out.max_held = out.max_held.max(n.b.connection_count());
        if s.is_none() {
            s = n.b.accept(PORT);
        }
    }
    if let (Some(c), Some(s)) = (c, s) {
        out.client = Some((c, s));
    }
    (n, out)
}

fn read_all(n: &mut SimNet, s: ConnId) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let k = n.b.tcb_mut(s).unwrap().recv(&mut buf).unwrap_or(0);
    buf[..k].to_vec()
}

#[test]
fn syn_flood_with_cookies_keeps_memory_bounded_and_lets_a_real_client_in() {
    let (mut n, out) = flood(true);
    let stats = n.b.stats().clone();
    assert!(
        out.max_held <= BACKLOG + 1,
        "held {} connections during the flood (backlog {BACKLOG})",
        out.max_held
    );
    assert!(
        stats.syn_cookies_sent >= (FLOOD - BACKLOG) as u64,
        "{stats:?}"
    );
    assert_eq!(stats.syn_cookies_accepted, 1, "the client's ACK: {stats:?}");
    let (c, s) = out.client.expect("the real client got in during the flood");
    assert_eq!(n.a.tcb(c).unwrap().state(), State::Established);
    assert_eq!(read_all(&mut n, s), b"Hi, I am a client");
    // The cookie carried the client's options (it sent timestamps, so
    // window scaling and SACK travelled in our TSval).
    let info = n.b.tcb(s).unwrap().info();
    assert!(info.timestamps && info.sack, "{info:?}");
    assert_eq!(
        info.window_scales.1,
        n.a.tcb(c).unwrap().info().window_scales.0
    );
    assert_eq!(info.mss, 1460);

    // Data both ways on the cookie connection.
    n.b.tcb_mut(s).unwrap().send(&[7u8; 100_000]).unwrap();
    let mut got = 0;
    assert!(n.run_until(Duration::from_secs(10), |n| {
        let mut buf = [0u8; 8192];
        while let Ok(k) = n.a.tcb_mut(c).unwrap().recv(&mut buf) {
            if k == 0 {
                break;
            }
            got += k;
        }
        got == 100_000
    }));

    // After the flood the half-open connections give up and a new client
    // gets in the ordinary way, without a cookie.
    n.run_for(Duration::from_secs(200));
    assert_eq!(
        n.b.connection_count(),
        1,
        "only the client's connection left"
    );
    let sent = n.b.stats().syn_cookies_sent;
    let now = n.now();
    let c2 = n.a.connect(now, SocketAddrV4::new(B, PORT)).unwrap();
    assert!(n.run_until(Duration::from_secs(5), |n| n.b.accept(PORT).is_some()));
    assert_eq!(n.a.tcb(c2).unwrap().state(), State::Established);
    assert_eq!(n.b.stats().syn_cookies_sent, sent, "no cookie needed");
}

#[test]
fn syn_flood_without_cookies_locks_the_real_client_out() {
    let (n, out) = flood(false);
    assert!(out.max_held <= BACKLOG, "held {}", out.max_held);
    assert!(out.client.is_none(), "the client got in: {:?}", n.b.stats());
    assert!(n.b.stats().syn_backlog_full >= (FLOOD - BACKLOG) as u64);
    assert_eq!(n.b.stats().syn_cookies_sent, 0);
}
