//! Loads the built shared object with dlopen(), the way packetdrill does, and
//! drives it through `struct packetdrill_interface`: init, socket/bind/listen,
//! a SYN in through netdev_send, the SYN-ACK out through netdev_receive, the
//! handshake, data both ways, errno checks, a blocking accept on a second
//! thread, close, free. This keeps the C ABI from breaking silently.

use std::ffi::{c_void, CStr, CString};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::thread;

use libc::{c_int, sockaddr, sockaddr_in, socklen_t};
use utcp::testing::{encode, segment, Seg};
use utcp::wire::{TcpFlags, TcpSegment};
use utcp_packetdrill::ffi::{InitFn, PacketdrillInterface};

const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// The cdylib cargo built next to this test: target/<profile>/libutcp_packetdrill.so.
fn library_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary has a directory");
    let candidates = [
        deps.parent().map(|p| p.join("libutcp_packetdrill.so")),
        Some(deps.join("libutcp_packetdrill.so")),
    ];
    // Both may exist; the newer is the one this build made (a copy left by
    // an earlier `cargo build` may be stale).
    let newest = candidates
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let modified = std::fs::metadata(&c).and_then(|m| m.modified()).ok()?;
            Some((modified, c))
        })
        .max_by_key(|(modified, _)| *modified);
    if let Some((_, path)) = newest {
        return path;
    }
    panic!(
        "libutcp_packetdrill.so not found next to {} (expected in {}): build the workspace \
         with `cargo build --workspace` (or run `cargo test --workspace`), which builds the cdylib",
        exe.display(),
        deps.parent().unwrap_or(deps).display()
    );
}

/// A loaded and initialised shared object.
struct So {
    ifc: PacketdrillInterface,
    handle: *mut c_void,
}

// The adapter is built for packetdrill's two threads.
unsafe impl Send for So {}
unsafe impl Sync for So {}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

impl So {
    fn load(flags: &str) -> So {
        let path = CString::new(library_path().to_str().unwrap()).unwrap();
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            let err = unsafe { CStr::from_ptr(libc::dlerror()) };
            panic!("dlopen failed: {err:?}");
        }
        let sym = unsafe { libc::dlsym(handle, c"packetdrill_interface_init".as_ptr()) };
        assert!(!sym.is_null(), "packetdrill_interface_init is not exported");
        let init: InitFn = unsafe { std::mem::transmute::<*mut c_void, InitFn>(sym) };
        let mut ifc = PacketdrillInterface::zeroed();
        let flags = CString::new(flags).unwrap();
        unsafe { init(flags.as_ptr(), &mut ifc) };
        So { ifc, handle }
    }

    fn ud(&self) -> *mut c_void {
        self.ifc.userdata
    }

    fn now(&self) -> u64 {
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        let r = unsafe { self.ifc.gettimeofday.unwrap()(self.ud(), &mut tv, std::ptr::null_mut()) };
        assert_eq!(r, 0);
        tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64
    }

    fn socket(&self) -> c_int {
        unsafe {
            self.ifc.socket.unwrap()(
                self.ud(),
                libc::AF_INET,
                libc::SOCK_STREAM,
                libc::IPPROTO_TCP,
            )
        }
    }

    fn bind(&self, fd: c_int, port: u16) -> c_int {
        let sin = sin(Ipv4Addr::UNSPECIFIED, port);
        unsafe {
            self.ifc.bind.unwrap()(
                self.ud(),
                fd,
                &sin as *const sockaddr_in as *const sockaddr,
                std::mem::size_of::<sockaddr_in>() as socklen_t,
            )
        }
    }

    fn connect(&self, fd: c_int, ip: Ipv4Addr, port: u16) -> c_int {
        let sin = sin(ip, port);
        unsafe {
            self.ifc.connect.unwrap()(
                self.ud(),
                fd,
                &sin as *const sockaddr_in as *const sockaddr,
                std::mem::size_of::<sockaddr_in>() as socklen_t,
            )
        }
    }

    fn accept(&self, fd: c_int) -> (c_int, SocketAddrV4) {
        let mut sin: sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<sockaddr_in>() as socklen_t;
        let r = unsafe {
            self.ifc.accept.unwrap()(
                self.ud(),
                fd,
                &mut sin as *mut sockaddr_in as *mut sockaddr,
                &mut len,
            )
        };
        let addr = SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
            u16::from_be(sin.sin_port),
        );
        (r, addr)
    }

    fn read(&self, fd: c_int, n: usize) -> Result<Vec<u8>, c_int> {
        let mut buf = vec![0u8; n];
        let r =
            unsafe { self.ifc.read.unwrap()(self.ud(), fd, buf.as_mut_ptr() as *mut c_void, n) };
        if r < 0 {
            return Err(errno());
        }
        buf.truncate(r as usize);
        Ok(buf)
    }

    fn write(&self, fd: c_int, data: &[u8]) -> isize {
        unsafe {
            self.ifc.write.unwrap()(self.ud(), fd, data.as_ptr() as *const c_void, data.len())
        }
    }

    fn getsockopt(&self, fd: c_int, level: c_int, name: c_int) -> c_int {
        let mut v: c_int = -7;
        let mut len = 4 as socklen_t;
        let r = unsafe {
            self.ifc.getsockopt.unwrap()(
                self.ud(),
                fd,
                level,
                name,
                &mut v as *mut c_int as *mut c_void,
                &mut len,
            )
        };
        assert_eq!(
            r,
            0,
            "getsockopt({level}, {name}) failed: errno {}",
            errno()
        );
        v
    }

    /// Hands `seg` to the stack as a packet from the network (netdev_send).
    fn inject(&self, seg: &TcpSegment<'_>) {
        let p = encode(seg);
        let r = unsafe {
            self.ifc.netdev_send.unwrap()(self.ud(), p.as_ptr() as *const c_void, p.len())
        };
        assert_eq!(r, 0);
    }

    /// The next packet out of the stack (empty when none can come) and its time.
    fn sniff(&self) -> (Vec<u8>, i64) {
        let mut buf = vec![0u8; 65536];
        let mut count = buf.len();
        let mut t: libc::c_longlong = -1;
        let r = unsafe {
            self.ifc.netdev_receive.unwrap()(
                self.ud(),
                buf.as_mut_ptr() as *mut c_void,
                &mut count,
                &mut t,
            )
        };
        assert_eq!(r, 0);
        buf.truncate(count);
        (buf, t)
    }

    fn close(&self, fd: c_int) -> c_int {
        unsafe { self.ifc.close.unwrap()(self.ud(), fd) }
    }
}

impl Drop for So {
    fn drop(&mut self) {
        unsafe {
            if let Some(free) = self.ifc.free {
                free(self.ifc.userdata);
            }
            libc::dlclose(self.handle);
        }
    }
}

fn sin(ip: Ipv4Addr, port: u16) -> sockaddr_in {
    let mut s: sockaddr_in = unsafe { std::mem::zeroed() };
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_port = port.to_be();
    s.sin_addr.s_addr = u32::from(ip).to_be();
    s
}

/// A segment from REMOTE:`src_port` to LOCAL:`dst_port` (window 65535, no
/// options unless the caller adds some).
fn from_peer(
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    payload: &[u8],
) -> TcpSegment<'_> {
    segment(
        SocketAddrV4::new(REMOTE, src_port),
        SocketAddrV4::new(LOCAL, dst_port),
        flags,
        seq,
        ack,
        payload,
    )
}

const FLAGS: &str = "ip=192.168.0.1,mss=1460,wscale=off,sack=off,ts=off,delack=off";

/// Passive open, data both ways, close, as packetdrill drives it.
#[test]
fn passive_open_data_and_close() {
    let so = So::load(FLAGS);
    let t0 = so.now();
    assert!(
        so.now() > t0,
        "the fake clock advances on every gettimeofday"
    );

    let fd = so.socket();
    assert!(fd >= 0, "socket: errno {}", errno());
    // The socket number is a real kernel fd, so packetdrill can close() it.
    assert!(unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0);
    assert_eq!(so.bind(fd, 8080), 0);
    assert_eq!(unsafe { so.ifc.listen.unwrap()(so.ud(), fd, 1) }, 0);

    // SYN in, SYN-ACK out.
    let mut syn = from_peer(40000, 8080, 1000, 0, TcpFlags::SYN, &[]);
    syn.options.mss = Some(1000);
    so.inject(&syn);
    let (p, t) = so.sniff();
    let synack = Seg::parse(&p);
    assert_eq!(synack.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(synack.ack, 1001);
    assert_eq!(synack.options.mss, Some(1460));
    assert_eq!(synack.src, SocketAddrV4::new(LOCAL, 8080));
    assert_eq!(synack.dst, SocketAddrV4::new(REMOTE, 40000));
    assert!(t as u64 >= t0, "packets carry their send time");
    let iss = synack.seq;

    // ACK in; accept (non-blocking here: the connection is already queued).
    so.inject(&from_peer(40000, 8080, 1001, iss + 1, TcpFlags::ACK, &[]));
    let (cfd, peer) = so.accept(fd);
    assert!(cfd >= 0 && cfd != fd, "accept: errno {}", errno());
    assert_eq!(peer, SocketAddrV4::new(REMOTE, 40000));

    // Data in: acknowledged at once (delayed ACKs are off).
    so.inject(&from_peer(
        40000,
        8080,
        1001,
        iss + 1,
        TcpFlags::ACK | TcpFlags::PSH,
        b"hello",
    ));
    let ack = Seg::parse(&so.sniff().0);
    assert_eq!(ack.flags, TcpFlags::ACK);
    assert_eq!(ack.ack, 1006);

    let mut avail: c_int = -1;
    let r =
        unsafe { so.ifc.ioctl.unwrap()(so.ud(), cfd, libc::FIONREAD, &mut avail as *mut c_int) };
    assert_eq!((r, avail), (0, 5));
    assert_eq!(so.read(cfd, 100).unwrap(), b"hello");

    // Data out.
    assert_eq!(so.write(cfd, b"world"), 5);
    let data = Seg::parse(&so.sniff().0);
    assert_eq!(data.payload, b"world");
    assert_eq!(data.seq, iss + 1);
    so.inject(&from_peer(40000, 8080, 1006, iss + 6, TcpFlags::ACK, &[]));

    // Non-blocking read with nothing there: EAGAIN.
    let r = unsafe { so.ifc.fcntl.unwrap()(so.ud(), cfd, libc::F_SETFL, libc::O_NONBLOCK) };
    assert_eq!(r, 0);
    let fl = unsafe { so.ifc.fcntl.unwrap()(so.ud(), cfd, libc::F_GETFL) };
    assert_ne!(fl & libc::O_NONBLOCK, 0);
    assert_eq!(so.read(cfd, 10), Err(libc::EAGAIN));

    // Socket options.
    assert_eq!(so.getsockopt(cfd, libc::SOL_SOCKET, libc::SO_ERROR), 0);
    assert_eq!(
        so.getsockopt(cfd, libc::IPPROTO_TCP, libc::TCP_MAXSEG),
        1000
    );
    let one: c_int = 1;
    let r = unsafe {
        so.ifc.setsockopt.unwrap()(
            so.ud(),
            cfd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            &one as *const c_int as *const c_void,
            4,
        )
    };
    assert_eq!(r, 0);
    assert_eq!(so.getsockopt(cfd, libc::IPPROTO_TCP, libc::TCP_NODELAY), 1);

    // poll: writable, not readable.
    let mut pfd = libc::pollfd {
        fd: cfd,
        events: libc::POLLIN | libc::POLLOUT,
        revents: 0,
    };
    assert_eq!(unsafe { so.ifc.poll.unwrap()(so.ud(), &mut pfd, 1, 0) }, 1);
    assert_eq!(pfd.revents, libc::POLLOUT);

    // We close first: FIN out, the peer's FIN-ACK in, our ACK out.
    assert_eq!(so.close(cfd), 0);
    let fin = Seg::parse(&so.sniff().0);
    assert_eq!(fin.flags, TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(fin.seq, iss + 6);
    so.inject(&from_peer(
        40000,
        8080,
        1006,
        iss + 7,
        TcpFlags::FIN | TcpFlags::ACK,
        &[],
    ));
    let last = Seg::parse(&so.sniff().0);
    assert_eq!((last.flags, last.ack), (TcpFlags::ACK, 1007));

    // Nothing more can come (TIME-WAIT just expires): an empty packet, at once.
    let (p, _) = so.sniff();
    assert!(p.is_empty(), "expected no packet, got {:?}", Seg::parse(&p));

    assert_eq!(so.close(cfd), -1);
    assert_eq!(errno(), libc::EBADF);
    assert_eq!(so.close(fd), 0);
}

/// Errors with Linux's errno values.
#[test]
fn errno_values() {
    let so = So::load(FLAGS);
    assert_eq!(so.read(12345, 10), Err(libc::EBADF));
    let fd = so.socket();
    assert!(fd >= 0);
    // NULL buffer with a length: EFAULT.
    let r = unsafe { so.ifc.read.unwrap()(so.ud(), fd, std::ptr::null_mut(), 10) };
    assert_eq!((r, errno()), (-1, libc::EFAULT));
    // Not connected.
    assert_eq!(so.read(fd, 10), Err(libc::ENOTCONN));
    assert_eq!((so.write(fd, b"x"), errno()), (-1, libc::EPIPE));
    let r = unsafe { so.ifc.shutdown.unwrap()(so.ud(), fd, libc::SHUT_WR) };
    assert_eq!((r, errno()), (-1, libc::ENOTCONN));
    // Bad socket() arguments.
    let r = unsafe { so.ifc.socket.unwrap()(so.ud(), libc::AF_INET6, libc::SOCK_STREAM, 0) };
    assert_eq!((r, errno()), (-1, libc::EAFNOSUPPORT));
    // Unsupported option.
    let mut v: c_int = 0;
    let mut len = 4 as socklen_t;
    let r = unsafe {
        so.ifc.getsockopt.unwrap()(
            so.ud(),
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut v as *mut c_int as *mut c_void,
            &mut len,
        )
    };
    assert_eq!((r, errno()), (-1, libc::ENOPROTOOPT));

    // Non-blocking connect: EINPROGRESS, SYN out; RST in: ECONNREFUSED via SO_ERROR.
    let r = unsafe { so.ifc.fcntl.unwrap()(so.ud(), fd, libc::F_SETFL, libc::O_NONBLOCK) };
    assert_eq!(r, 0);
    assert_eq!(
        (so.connect(fd, REMOTE, 8080), errno()),
        (-1, libc::EINPROGRESS)
    );
    assert_eq!(
        (so.connect(fd, REMOTE, 8080), errno()),
        (-1, libc::EALREADY)
    );
    let syn = Seg::parse(&so.sniff().0);
    assert_eq!(syn.flags, TcpFlags::SYN);
    assert_eq!(syn.dst, SocketAddrV4::new(REMOTE, 8080));
    let rst = from_peer(
        8080,
        syn.src.port(),
        0,
        syn.seq + 1,
        TcpFlags::RST | TcpFlags::ACK,
        &[],
    );
    so.inject(&rst);
    assert_eq!(
        so.getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR),
        libc::ECONNREFUSED
    );
    assert_eq!(so.getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR), 0);
    assert_eq!(so.close(fd), 0);
}

/// A blocking accept sleeps on another thread until the handshake completes.
#[test]
fn blocking_accept_on_second_thread() {
    let so = So::load(FLAGS);
    let fd = so.socket();
    assert_eq!(so.bind(fd, 9090), 0);
    assert_eq!(unsafe { so.ifc.listen.unwrap()(so.ud(), fd, 1) }, 0);
    thread::scope(|s| {
        let acceptor = s.spawn(|| so.accept(fd));
        let mut syn = from_peer(40001, 9090, 5000, 0, TcpFlags::SYN, &[]);
        syn.options.mss = Some(1460);
        so.inject(&syn);
        let synack = Seg::parse(&so.sniff().0);
        assert_eq!(synack.flags, TcpFlags::SYN | TcpFlags::ACK);
        so.inject(&from_peer(
            40001,
            9090,
            5001,
            synack.seq + 1,
            TcpFlags::ACK,
            &[],
        ));
        let (cfd, peer) = acceptor.join().unwrap();
        assert!(cfd >= 0, "accept: errno {}", errno());
        assert_eq!(peer.port(), 40001);
        assert_eq!(so.close(cfd), 0);
    });
    assert_eq!(so.close(fd), 0);
}

/// Bad --so_flags: init still fills the table, every call fails with EINVAL.
#[test]
fn bad_flags_fail_calls() {
    let so = So::load("nonsense=1");
    assert!(so.ud().is_null());
    assert_eq!((so.socket(), errno()), (-1, libc::EINVAL));
}

impl So {
    fn setsockopt<T>(&self, fd: c_int, level: c_int, name: c_int, v: &T) -> c_int {
        unsafe {
            self.ifc.setsockopt.unwrap()(
                self.ud(),
                fd,
                level,
                name,
                v as *const T as *const c_void,
                std::mem::size_of::<T>() as socklen_t,
            )
        }
    }

    fn recv(&self, fd: c_int, n: usize, flags: c_int) -> Result<Vec<u8>, c_int> {
        let mut buf = vec![0u8; n];
        let r = unsafe {
            self.ifc.recv.unwrap()(self.ud(), fd, buf.as_mut_ptr() as *mut c_void, n, flags)
        };
        if r < 0 {
            return Err(errno());
        }
        buf.truncate(r as usize);
        Ok(buf)
    }

    fn epoll_ctl(&self, epfd: c_int, op: c_int, fd: c_int, events: u32) -> c_int {
        let mut ev = libc::epoll_event {
            events,
            u64: fd as u64,
        };
        unsafe { self.ifc.epoll_ctl.unwrap()(self.ud(), epfd, op, fd, &mut ev) }
    }

    /// epoll_wait with a zero timeout: (events, data) of each ready fd.
    fn epoll_wait(&self, epfd: c_int) -> Vec<(u32, u64)> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 4];
        let n = unsafe { self.ifc.epoll_wait.unwrap()(self.ud(), epfd, evs.as_mut_ptr(), 4, 0) };
        assert!(n >= 0, "epoll_wait: errno {}", errno());
        evs[..n as usize]
            .iter()
            .map(|e| (e.events, e.u64))
            .collect()
    }

    /// Passive handshake on `port` from peer port `peer`; returns (listener
    /// fd, connection fd, our ISS, the SYN-ACK).
    fn handshake(
        &self,
        port: u16,
        peer: u16,
        before_listen: impl FnOnce(c_int),
    ) -> (c_int, c_int, u32, Seg) {
        let fd = self.socket();
        before_listen(fd);
        assert_eq!(self.bind(fd, port), 0);
        assert_eq!(unsafe { self.ifc.listen.unwrap()(self.ud(), fd, 1) }, 0);
        let mut syn = from_peer(peer, port, 1000, 0, TcpFlags::SYN, &[]);
        syn.options.mss = Some(1460);
        self.inject(&syn);
        let synack = Seg::parse(&self.sniff().0);
        assert_eq!(synack.flags, TcpFlags::SYN | TcpFlags::ACK);
        let iss = synack.seq;
        self.inject(&from_peer(peer, port, 1001, iss + 1, TcpFlags::ACK, &[]));
        let (cfd, _) = self.accept(fd);
        assert!(cfd >= 0, "accept: errno {}", errno());
        (fd, cfd, iss, synack)
    }
}

/// SO_RCVBUF and TCP_MAXSEG set before listen() shape the SYN-ACK; MSG_PEEK
/// leaves data queued; SO_LINGER {1, 0} makes close() send a RST.
#[test]
fn socket_options_peek_and_linger() {
    let so = So::load(FLAGS);
    let (lfd, cfd, iss, synack) = so.handshake(7070, 40002, |fd| {
        assert_eq!(
            so.setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &4096i32),
            0
        );
        assert_eq!(
            so.setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_MAXSEG, &1000i32),
            0
        );
        assert_eq!(so.getsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF), 8192);
    });
    assert_eq!(synack.options.mss, Some(1000));
    assert_eq!(
        synack.window, 4096,
        "SO_RCVBUF before listen() sets the window"
    );
    assert_eq!(so.getsockopt(cfd, libc::SOL_SOCKET, libc::SO_RCVBUF), 8192);

    so.inject(&from_peer(
        40002,
        7070,
        1001,
        iss + 1,
        TcpFlags::ACK | TcpFlags::PSH,
        b"peekaboo",
    ));
    let ack = Seg::parse(&so.sniff().0);
    assert_eq!(ack.ack, 1009);
    assert_eq!(so.recv(cfd, 4, libc::MSG_PEEK).unwrap(), b"peek");
    assert_eq!(so.recv(cfd, 100, libc::MSG_PEEK).unwrap(), b"peekaboo");
    assert_eq!(so.read(cfd, 100).unwrap(), b"peekaboo");
    assert_eq!(
        so.recv(cfd, 100, libc::MSG_PEEK | libc::MSG_DONTWAIT),
        Err(libc::EAGAIN)
    );

    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    assert_eq!(
        so.setsockopt(cfd, libc::SOL_SOCKET, libc::SO_LINGER, &linger),
        0
    );
    assert_eq!(so.close(cfd), 0);
    let rst = Seg::parse(&so.sniff().0);
    assert!(rst.flags.contains(TcpFlags::RST), "{rst:?}");
    assert_eq!(rst.seq, iss + 1);
    assert_eq!(so.close(lfd), 0);
}

/// epoll: level-triggered readiness of a listener and a connection, EEXIST,
/// ENOENT, EPOLLRDHUP on the peer's FIN; the epoll fd is a real kernel fd.
#[test]
fn epoll_readiness() {
    let so = So::load(FLAGS);
    let epfd = unsafe { so.ifc.epoll_create.unwrap()(so.ud(), 1) };
    assert!(epfd >= 0, "epoll_create: errno {}", errno());
    assert!(unsafe { libc::fcntl(epfd, libc::F_GETFD) } >= 0);
    let (lfd, cfd, iss, _) = so.handshake(6060, 40003, |_| ());
    let (ein, eout, erdhup) = (
        libc::EPOLLIN as u32,
        libc::EPOLLOUT as u32,
        libc::EPOLLRDHUP as u32,
    );
    assert_eq!(so.epoll_ctl(epfd, libc::EPOLL_CTL_ADD, lfd, ein), 0);
    assert_eq!(so.epoll_wait(epfd), vec![]);
    assert_eq!(
        so.epoll_ctl(epfd, libc::EPOLL_CTL_ADD, cfd, ein | eout | erdhup),
        0
    );
    assert_eq!(
        (so.epoll_ctl(epfd, libc::EPOLL_CTL_ADD, cfd, ein), errno()),
        (-1, libc::EEXIST)
    );
    assert_eq!(so.epoll_wait(epfd), vec![(eout, cfd as u64)]);
    assert_eq!(
        so.epoll_wait(epfd),
        vec![(eout, cfd as u64)],
        "level-triggered"
    );
    assert_eq!(
        so.epoll_ctl(epfd, libc::EPOLL_CTL_MOD, cfd, ein | erdhup),
        0
    );
    assert_eq!(so.epoll_wait(epfd), vec![]);
    so.inject(&from_peer(
        40003,
        6060,
        1001,
        iss + 1,
        TcpFlags::ACK | TcpFlags::FIN,
        &[],
    ));
    let _ack = Seg::parse(&so.sniff().0);
    assert_eq!(so.epoll_wait(epfd), vec![(ein | erdhup, cfd as u64)]);
    assert_eq!(so.epoll_ctl(epfd, libc::EPOLL_CTL_DEL, cfd, 0), 0);
    assert_eq!(
        (so.epoll_ctl(epfd, libc::EPOLL_CTL_DEL, cfd, 0), errno()),
        (-1, libc::ENOENT)
    );
    assert_eq!(
        (so.epoll_ctl(epfd, libc::EPOLL_CTL_ADD, 99999, ein), errno()),
        (-1, libc::EBADF)
    );
    assert_eq!(so.close(epfd), 0);
    assert_eq!(so.close(cfd), 0);
    assert_eq!(so.close(lfd), 0);
}

#[test]
fn pipe_passes_through_to_the_kernel() {
    let so = So::load(FLAGS);
    let mut fds: [c_int; 2] = [-1; 2];
    let r = unsafe { so.ifc.pipe.unwrap()(so.ud(), fds.as_mut_ptr()) };
    assert_eq!(r, 0, "pipe failed: errno {}", errno());
    let [rd, wr] = fds;
    assert!(rd >= 0 && wr >= 0 && rd != wr);
    // O_CLOEXEC, through fcntl.
    let r = unsafe { so.ifc.fcntl.unwrap()(so.ud(), rd, libc::F_GETFD) };
    assert_eq!(r, libc::FD_CLOEXEC);
    // Nothing to read yet: poll says so, and a non-blocking read fails.
    let mut p = [libc::pollfd {
        fd: rd,
        events: libc::POLLIN,
        revents: 0,
    }];
    let r = unsafe { so.ifc.poll.unwrap()(so.ud(), p.as_mut_ptr(), 1, 0) };
    assert_eq!((r, p[0].revents), (0, 0));
    let r = unsafe { so.ifc.fcntl.unwrap()(so.ud(), rd, libc::F_SETFL, libc::O_NONBLOCK) };
    assert_eq!(r, 0);
    assert_eq!(so.read(rd, 10), Err(libc::EAGAIN));
    // Write then read through the interface; poll with a utcp socket too.
    assert_eq!(so.write(wr, b"hello"), 5);
    let sfd = so.socket();
    assert!(sfd >= 0);
    let mut p = [
        libc::pollfd {
            fd: rd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: sfd,
            events: libc::POLLOUT,
            revents: 0,
        },
    ];
    let r = unsafe { so.ifc.poll.unwrap()(so.ud(), p.as_mut_ptr(), 2, 0) };
    assert_eq!(r, 2);
    assert_eq!(p[0].revents, libc::POLLIN);
    assert_eq!(so.read(rd, 100), Ok(b"hello".to_vec()));
    // Closing the write end: EOF.
    assert_eq!(so.close(wr), 0);
    assert_eq!(so.read(rd, 100), Ok(vec![]));
    assert_eq!(so.close(rd), 0);
    assert_eq!(so.read(rd, 100), Err(libc::EBADF));
    assert_eq!((so.close(rd), errno()), (-1, libc::EBADF));
    // splice is not implemented.
    let r = unsafe {
        so.ifc.splice.unwrap()(
            so.ud(),
            rd,
            std::ptr::null_mut(),
            sfd,
            std::ptr::null_mut(),
            10,
            0,
        )
    };
    assert_eq!((r, errno()), (-1, libc::ENOSYS));
    assert_eq!(so.close(sfd), 0);
}
