//! A single-threaded smoltcp 0.14 poll-loop server for scripts/bench.sh.
//!
//! It opens the TUN device by name (default utcp0, medium IP) and answers for
//! 10.77.0.2/24, like utcp. Modes:
//!
//!   sink PORT [POOL]        read and discard; prints "PEER N bytes" per connection;
//!                           POOL listening sockets (default 4)
//!   source PORT BYTES       send BYTES to each connection, then close
//!   echo PORT [POOL]        echo every byte back; POOL listening sockets (default 64)
//!
//! smoltcp needs one socket per connection, so each mode keeps a pool of
//! sockets listening on the port and puts a socket back to LISTEN once its
//! connection is closed. Buffers: 256 KiB receive + 256 KiB send for sink and
//! source (pool of 4), 4 KiB + 4 KiB for echo (so 10,000 sockets fit).
//! smoltcp's own defaults otherwise (Nagle on, 10 ms delayed ACK).
//!
//! The loop: `iface.poll`, one pass of the application over the sockets, then
//! sleep in `smoltcp::phy::wait` on the TUN fd for `iface.poll_delay` (at
//! most 1 s). It runs until killed.

use std::io::Write;
use std::os::unix::io::AsRawFd;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{wait as phy_wait, Medium, TunTapInterface};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

enum Mode {
    Sink,
    Source(u64),
    Echo,
}

struct Slot {
    handle: SocketHandle,
    /// sink: bytes received; source: bytes still to send.
    count: u64,
    /// The connection was seen established (reset on re-listen).
    active: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: smoltcp-server [--dev NAME] sink PORT [POOL] | source PORT BYTES | echo PORT [POOL]"
    );
    std::process::exit(2)
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut dev = String::from("utcp0");
    if args.len() >= 2 && args[0] == "--dev" {
        dev = args[1].clone();
        args.drain(..2);
    }
    let num = |i: usize| -> u64 {
        args.get(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| usage())
    };
    let (mode, port, pool, buf) = match args.first().map(String::as_str) {
        Some("sink") => {
            let pool = if args.len() > 2 { num(2) as usize } else { 4 };
            (Mode::Sink, num(1) as u16, pool, 256 * 1024)
        }
        Some("source") => (Mode::Source(num(2)), num(1) as u16, 4, 256 * 1024),
        Some("echo") => {
            let pool = if args.len() > 2 { num(2) as usize } else { 64 };
            (Mode::Echo, num(1) as u16, pool, 4 * 1024)
        }
        _ => usage(),
    };

    let mut device = TunTapInterface::new(&dev, Medium::Ip).unwrap_or_else(|e| {
        eprintln!("smoltcp-server: cannot open TUN device {dev}: {e}");
        std::process::exit(1)
    });
    let fd = device.as_raw_fd();
    // SAFETY: TUNSETOFFLOAD on our own TUN fd, feature bits by value.
    if unsafe { libc::ioctl(fd, libc::TUNSETOFFLOAD, 0 as libc::c_ulong) } < 0 {
        eprintln!(
            "smoltcp-server: TUNSETOFFLOAD(0) on {dev}: {}",
            std::io::Error::last_os_error()
        );
        std::process::exit(1)
    }
    let mut config = Config::new(HardwareAddress::Ip);
    config.random_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut iface = Interface::new(config, &mut device, Instant::now());
    iface.update_ip_addrs(|addrs| {
        addrs
            .push(IpCidr::new(IpAddress::v4(10, 77, 0, 2), 24))
            .unwrap();
    });

    let mut sockets = SocketSet::new(Vec::with_capacity(pool));
    let mut slots = Vec::with_capacity(pool);
    for _ in 0..pool {
        let rx = tcp::SocketBuffer::new(vec![0u8; buf]);
        let tx = tcp::SocketBuffer::new(vec![0u8; buf]);
        let mut sock = tcp::Socket::new(rx, tx);
        sock.listen(port).expect("listen");
        let handle = sockets.add(sock);
        slots.push(Slot {
            handle,
            count: 0,
            active: false,
        });
    }
    eprintln!("smoltcp-server: listening on 10.77.0.2:{port} ({pool} sockets, {buf} B buffers)");

    let zeros = vec![0u8; 64 * 1024];
    let mut scratch = vec![0u8; 64 * 1024];
    let stdout = std::io::stdout();
    loop {
        let now = Instant::now();
        iface.poll(now, &mut device, &mut sockets);
        for slot in slots.iter_mut() {
            let sock = sockets.get_mut::<tcp::Socket>(slot.handle);
            if !sock.is_open() {
                // Closed (or TIME-WAIT): back to LISTEN for the next client.
                sock.listen(port).expect("listen");
                slot.active = false;
                slot.count = 0;
                continue;
            }
            if !slot.active {
                // LISTEN and SYN-RECEIVED can neither send nor receive.
                if !(sock.may_send() || sock.may_recv()) {
                    continue;
                }
                slot.active = true;
                if let Mode::Source(n) = mode {
                    slot.count = n;
                }
            }
            match mode {
                Mode::Sink => {
                    while sock.can_recv() {
                        match sock.recv_slice(&mut scratch) {
                            Ok(n) if n > 0 => slot.count += n as u64,
                            _ => break,
                        }
                    }
                    if !sock.may_recv() && sock.recv_queue() == 0 && sock.may_send() {
                        if let Some(peer) = sock.remote_endpoint() {
                            let _ = writeln!(stdout.lock(), "{peer} {} bytes", slot.count);
                        }
                        sock.close();
                    }
                }
                Mode::Source(_) => {
                    while slot.count > 0 && sock.can_send() {
                        let k = slot.count.min(zeros.len() as u64) as usize;
                        match sock.send_slice(&zeros[..k]) {
                            Ok(n) if n > 0 => slot.count -= n as u64,
                            _ => break,
                        }
                    }
                    // Discard anything the client sends.
                    while sock.can_recv() {
                        if sock.recv_slice(&mut scratch).map_or(true, |n| n == 0) {
                            break;
                        }
                    }
                    if slot.count == 0 && sock.may_send() {
                        sock.close();
                    }
                }
                Mode::Echo => {
                    while sock.can_recv() && sock.can_send() {
                        let room = sock.send_capacity() - sock.send_queue();
                        let k = room.min(scratch.len());
                        let n = match sock.recv_slice(&mut scratch[..k]) {
                            Ok(n) if n > 0 => n,
                            _ => break,
                        };
                        let sent = sock.send_slice(&scratch[..n]).unwrap_or(0);
                        debug_assert_eq!(sent, n);
                    }
                    if !sock.may_recv() && sock.recv_queue() == 0 && sock.may_send() {
                        sock.close();
                    }
                }
            }
        }
        let delay = iface
            .poll_delay(now, &sockets)
            .unwrap_or(Duration::from_millis(1000))
            .min(Duration::from_millis(1000));
        if delay > Duration::ZERO {
            if let Err(e) = phy_wait(fd, Some(delay)) {
                eprintln!("smoltcp-server: wait: {e}");
                std::process::exit(1);
            }
        }
    }
}
