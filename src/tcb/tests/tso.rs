//! Super-segments for TSO ([`crate::gso`]): how much new data one segment
//! carries when [`TcpConfig::max_super_segment`] lets it exceed the MSS.
//! The windows, Nagle and the FIN decide exactly as they do for MSS-sized
//! segments; only the cut is coarser.

use super::*;

/// The test config with super-segments of up to 64 KiB.
fn tso_config() -> TcpConfig {
    TcpConfig {
        max_super_segment: 65_535,
        ..config()
    }
}

/// The payload MSS of the test config (MSS option 1460, no timestamps).
const MSS: usize = 1460;

/// A window's worth of new data goes out as one super-segment: the RFC 6928
/// initial window of 10 MSS, in whole segments.
#[test]
fn initial_window_goes_out_as_one_super_segment() {
    let mut tcb = established_cfg(tso_config());
    let a = data(20_000);
    tcb.send(&a).unwrap();
    let segs = out(&mut tcb, at(1));
    assert_eq!(
        segs,
        vec![seg(ACK, ISS + 1, PEER_ISS + 1, WIN, &a[..10 * MSS])]
    );
}

/// Without `max_super_segment` the same write goes out MSS by MSS.
#[test]
fn without_tso_segments_stay_mss_sized() {
    let mut tcb = established();
    tcb.send(&data(20_000)).unwrap();
    let segs = out(&mut tcb, at(1));
    assert_eq!(segs.len(), 10);
    assert!(segs.iter().all(|s| s.payload.len() == MSS));
}

/// The short tail of one write rides in the super-segment (it would go out
/// right behind the full segments anyway: Minshall's Nagle); a second
/// small write then waits for the ACK as it would without TSO.
#[test]
fn tail_of_a_write_rides_along_and_nagle_still_holds_the_next() {
    let mut tcb = established_cfg(tso_config());
    let a = data(2000);
    tcb.send(&a).unwrap();
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![seg(ACK | PSH, ISS + 1, PEER_ISS + 1, WIN, &a)]
    );
    tcb.send(&data(100)).unwrap();
    assert_eq!(out(&mut tcb, at(2)), vec![]);
}

/// While a small segment is unacknowledged, Nagle holds the tail: the
/// super-segment carries only whole MSS-sized segments.
#[test]
fn tail_waits_behind_an_unacknowledged_small_segment() {
    let mut tcb = established_cfg(tso_config());
    tcb.send(&data(100)).unwrap();
    assert_eq!(out(&mut tcb, at(1)).len(), 1);
    let b = data(3000);
    tcb.send(&b).unwrap();
    assert_eq!(
        out(&mut tcb, at(2)),
        vec![seg(ACK, ISS + 101, PEER_ISS + 1, WIN, &b[..2 * MSS])]
    );
}

/// A FIN queued behind the data goes on the super-segment that ends it.
#[test]
fn fin_rides_on_the_last_super_segment() {
    let mut tcb = established_cfg(tso_config());
    let a = data(3000);
    tcb.send(&a).unwrap();
    tcb.close();
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![seg(ACK | PSH | FIN, ISS + 1, PEER_ISS + 1, WIN, &a)]
    );
    assert_eq!(tcb.state(), State::FinWait1);
}

/// The peer's window caps a super-segment like any other: a 5,000-byte
/// window lets out three whole segments, and the rest waits (sender SWS
/// avoidance, RFC 1122 4.2.3.4, for what does not fill a segment).
#[test]
fn peer_window_caps_the_super_segment() {
    let mut tcb = established_cfg(tso_config());
    seg_in(
        &mut tcb,
        T0,
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 5000),
    );
    let a = data(20_000);
    tcb.send(&a).unwrap();
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![seg(ACK, ISS + 1, PEER_ISS + 1, WIN, &a[..3 * MSS])]
    );
}

/// `poll_transmit_vectored` (a device with `writev`): the headers in the
/// buffer and the payload left in the send buffer make exactly the packet
/// `poll_transmit_with` writes whole, including a send buffer that wraps
/// (two slices); pure ACKs come whole.
#[test]
fn vectored_packets_are_the_whole_packets_in_pieces() {
    let cfg = TcpConfig {
        checksum_offload: true,
        ..tso_config()
    };
    let (mut whole, mut pieces) = (established_cfg(cfg.clone()), established_cfg(cfg));
    let mut buf = vec![0u8; 65_535];
    let mut vbuf = vec![0u8; 65_535];
    for (round, len) in [30_000usize, 5_000, 40_000].into_iter().enumerate() {
        let a = data(len);
        whole.send(&a).unwrap();
        pieces.send(&a).unwrap();
        let now = at(1 + round as u64);
        while let Some((n, offload)) = whole.poll_transmit_with(now, &mut buf) {
            let e = pieces
                .poll_transmit_vectored(now, &mut vbuf)
                .expect("the same packet");
            assert_eq!(e.offload, offload);
            let (x, y) = pieces.send_slices(e.payload.0, e.payload.1);
            assert_eq!(e.len + x.len() + y.len(), n);
            assert!(e.payload.1 == 0 || e.len < 60, "only headers in the buffer");
            assert_eq!([&vbuf[..e.len], x, y].concat(), &buf[..n], "round {round}");
        }
        assert!(pieces.poll_transmit_vectored(now, &mut vbuf).is_none());
        // The peer acknowledges everything but 1,000 bytes, so the next
        // write lands in a send buffer that wraps.
        let ack = (whole.snd_nxt() - 1000u32).0;
        for t in [&mut whole, &mut pieces] {
            t.handle_segment(now, &from_peer(ACK, PEER_ISS + 1, ack, &[]));
        }
    }
}
