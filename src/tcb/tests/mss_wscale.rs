//! The options of the handshake that size segments and windows: MSS
//! (RFC 9293 section 3.7.1) and window scale (RFC 7323 section 2).

use super::*;

/// RFC 9293 section 3.7.1: we send segments of at most min(peer MSS, our MSS).
#[test]
fn peer_mss_honoured() {
    let syn = TcpSegment {
        options: mss_only(1000),
        ..from_peer(SYN, PEER_ISS, 0, &[])
    };
    let mut tcb = established_with(&syn, ISS, config());
    assert_eq!(tcb.send_mss(), 1000);
    let a = data(3000);
    tcb.send(&a).unwrap();
    let segs = out(&mut tcb, at(1));
    assert_eq!(
        segs,
        vec![
            seg(ACK, ISS + 1, PEER_ISS + 1, WIN, &a[..1000]),
            seg(ACK, ISS + 1001, PEER_ISS + 1, WIN, &a[1000..2000]),
            seg(ACK | PSH, ISS + 2001, PEER_ISS + 1, WIN, &a[2000..]),
        ]
    );
}

/// RFC 9293 section 3.7.1: our own MSS caps the send size even when the peer's is larger.
#[test]
fn our_mss_caps_peer_mss() {
    let syn = TcpSegment {
        options: mss_only(9000),
        ..from_peer(SYN, PEER_ISS, 0, &[])
    };
    let cfg = TcpConfig {
        mss: 1200,
        ..config()
    };
    let mut tcb = Tcb::accept(&syn, SeqNum(ISS), cfg);
    let syn_ack = out(&mut tcb, T0);
    assert_eq!(syn_ack[0].options.mss, Some(1200));
    assert_eq!(tcb.send_mss(), 1200);
}

/// RFC 9293 section 3.7.1 (MUST-15): without an MSS option, assume 536.
#[test]
fn no_mss_option_means_536() {
    let syn = from_peer(SYN, PEER_ISS, 0, &[]);
    let mut tcb = established_with(&syn, ISS, config());
    assert_eq!(tcb.send_mss(), u32::from(DEFAULT_MSS));
    let a = data(1072);
    tcb.send(&a).unwrap();
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![
            seg(ACK, ISS + 1, PEER_ISS + 1, WIN, &a[..536]),
            seg(ACK | PSH, ISS + 537, PEER_ISS + 1, WIN, &a[536..]),
        ]
    );
}

/// RFC 7323 sections 2.2 and 2.3: both sides offered window scaling, so it
/// is on: our SYN-ACK carries our shift and an unscaled window; later window
/// fields are shifted both ways.
#[test]
fn window_scaling_negotiated() {
    let syn = TcpSegment {
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            ..TcpOptions::default()
        },
        ..from_peer(SYN, PEER_ISS, 0, &[])
    };
    let cfg = TcpConfig {
        recv_buffer: 512 * 1024,
        ..config()
    };
    let mut tcb = Tcb::accept(&syn, SeqNum(ISS), cfg);
    let syn_ack = Seg {
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(4),
            ..TcpOptions::default()
        },
        ..seg(SYN | ACK, ISS, PEER_ISS + 1, 65_535, &[])
    };
    assert_eq!(out(&mut tcb, T0), vec![syn_ack]);
    assert_eq!(tcb.window_scales(), (4, 7));
    // The SYN's own window was not scaled.
    assert_eq!(tcb.peer_window(), u32::from(PEER_WIN));

    seg_in(
        &mut tcb,
        at(1),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 100),
    );
    assert_eq!(tcb.state(), State::Established);
    assert_eq!(tcb.peer_window(), 100 << 7);
    let a = data(1000);
    seg_in(
        &mut tcb,
        at(2),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 100),
    );
    seg_in(&mut tcb, at(2), &from_peer(ACK, PEER_ISS + 1, ISS + 1, &a));
    // (512 KiB - 1000) >> 4.
    let field = ((512 * 1024 - 1000) >> 4) as u16;
    assert_eq!(field, 32_705);
    assert_eq!(
        out(&mut tcb, at(2)),
        vec![ack(ISS + 1, PEER_ISS + 1001, field)]
    );
}

/// RFC 7323 section 2.2: the peer's SYN had no window scale option, so
/// scaling is off and our SYN-ACK must not carry the option; our window
/// field is then capped at 65535.
#[test]
fn window_scaling_off_when_peer_lacks_it() {
    let cfg = TcpConfig {
        recv_buffer: 512 * 1024,
        ..config()
    };
    let mut tcb = Tcb::accept(&peer_syn(PEER_ISS), SeqNum(ISS), cfg);
    let syn_ack = Seg {
        options: mss_only(1460),
        ..seg(SYN | ACK, ISS, PEER_ISS + 1, 65_535, &[])
    };
    assert_eq!(out(&mut tcb, T0), vec![syn_ack]);
    assert_eq!(tcb.window_scales(), (0, 0));
    seg_in(
        &mut tcb,
        at(1),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 100),
    );
    assert_eq!(tcb.peer_window(), 100);
    seg_in(
        &mut tcb,
        at(2),
        &from_peer(ACK, PEER_ISS + 1, ISS + 1, &data(1000)),
    );
    assert_eq!(
        out(&mut tcb, at(2)),
        vec![ack(ISS + 1, PEER_ISS + 1001, 65_535)]
    );
}

/// RFC 7323 section 2.2 (active side): we offer scaling in our SYN; a SYN-ACK
/// without the option turns it off for both directions.
#[test]
fn window_scaling_active_peer_declines() {
    let cfg = TcpConfig {
        recv_buffer: 512 * 1024,
        ..config()
    };
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), cfg);
    let syn = out(&mut tcb, T0);
    assert_eq!(syn[0].options.window_scale, Some(4));
    assert_eq!(syn[0].window, 65_535);
    let syn_ack = TcpSegment {
        options: mss_only(1460),
        window: 1000,
        ..from_peer(SYN | ACK, PEER_ISS, ISS + 1, &[])
    };
    seg_in(&mut tcb, at(1), &syn_ack);
    assert_eq!(tcb.window_scales(), (0, 0));
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![ack(ISS + 1, PEER_ISS + 1, 65_535)]
    );
    seg_in(
        &mut tcb,
        at(2),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 1000),
    );
    assert_eq!(tcb.peer_window(), 1000);
}

/// RFC 7323 section 2.2 (active side): the SYN-ACK's window is not scaled,
/// later ones are.
#[test]
fn window_scaling_active_accepted() {
    let cfg = TcpConfig {
        recv_buffer: 512 * 1024,
        ..config()
    };
    let mut tcb = Tcb::connect(LOCAL, REMOTE, SeqNum(ISS), cfg);
    out(&mut tcb, T0);
    let syn_ack = TcpSegment {
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(2),
            ..TcpOptions::default()
        },
        window: 1000,
        ..from_peer(SYN | ACK, PEER_ISS, ISS + 1, &[])
    };
    seg_in(&mut tcb, at(1), &syn_ack);
    assert_eq!(tcb.window_scales(), (4, 2));
    assert_eq!(tcb.peer_window(), 1000);
    // Our ACK's window is scaled: 512 KiB >> 4.
    assert_eq!(
        out(&mut tcb, at(1)),
        vec![ack(ISS + 1, PEER_ISS + 1, 32_768)]
    );
    seg_in(
        &mut tcb,
        at(2),
        &from_peer_win(ACK, PEER_ISS + 1, ISS + 1, 1000),
    );
    assert_eq!(tcb.peer_window(), 4000);
}

/// RFC 7323 section 2.3: a shift above 14 is used as 14.
#[test]
fn window_scale_above_14_clamped() {
    let syn = TcpSegment {
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(20),
            ..TcpOptions::default()
        },
        ..from_peer(SYN, PEER_ISS, 0, &[])
    };
    let tcb = Tcb::accept(&syn, SeqNum(ISS), config());
    assert_eq!(tcb.window_scales().1, 14);
}
