//! Two utcp stacks over the simulated link: handshake, data, close.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use utcp::sim::SimNet;
use utcp::stack::StackConfig;
use utcp::state::State;

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn net() -> SimNet {
    let mut ca = StackConfig::new(A);
    ca.seed = Some(1);
    let mut cb = StackConfig::new(B);
    cb.seed = Some(2);
    SimNet::new(ca, cb, Duration::from_millis(10))
}

#[test]
fn handshake_data_and_close() {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut n = net();
    n.b.listen(80, 8).unwrap();
    let now = n.now();
    let c = n.a.connect(now, SocketAddrV4::new(B, 80)).unwrap();
    assert!(
        n.run_until(Duration::from_secs(5), |n| n.a.tcb(c).unwrap().state()
            == State::Established)
    );
    let mut s = None;
    assert!(n.run_until(Duration::from_secs(5), |n| {
        s = n.b.accept(80);
        s.is_some()
    }));
    let s = s.unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let ok = n.run_until(Duration::from_secs(60), |n| {
        if sent < data.len() {
            if let Ok(k) = n.a.tcb_mut(c).unwrap().send(&data[sent..]) {
                sent += k;
            }
        }
        let mut buf = [0u8; 4096];
        while let Ok(k) = n.b.tcb_mut(s).unwrap().recv(&mut buf) {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
        got.len() == data.len()
    });
    assert!(ok, "got {} of {}", got.len(), data.len());
    assert_eq!(got, data);
    n.a.tcb_mut(c).unwrap().close();
    assert!(
        n.run_until(Duration::from_secs(5), |n| n.b.tcb(s).unwrap().state()
            == State::CloseWait)
    );
    let mut buf = [0u8; 16];
    assert_eq!(n.b.tcb_mut(s).unwrap().recv(&mut buf).unwrap(), 0);
    n.b.tcb_mut(s).unwrap().close();
    assert!(
        n.run_until(Duration::from_secs(5), |n| n.b.tcb(s).unwrap().state()
            == State::Closed)
    );
    assert_eq!(n.a.tcb(c).unwrap().state(), State::TimeWait);
    assert!(
        n.run_until(Duration::from_secs(5), |n| n.a.tcb(c).unwrap().state()
            == State::Closed)
    );
}
