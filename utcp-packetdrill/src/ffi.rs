//! The C ABI packetdrill expects of a shared object: `struct
//! packetdrill_interface` from packetdrill's `packetdrill.h`, declared field
//! for field in the same order (every field is pointer-sized, so the struct
//! is 33 pointers with no padding).

use libc::{
    c_int, c_longlong, c_uint, c_ulong, c_void, epoll_event, iovec, loff_t, msghdr, nfds_t, pollfd,
    size_t, sockaddr, socklen_t, ssize_t, timeval, useconds_t,
};

/// `void (*free)(void *userdata)`.
pub type FreeFn = unsafe extern "C" fn(*mut c_void);
/// `int (*socket)(void *, int domain, int type, int protocol)`.
pub type SocketFn = unsafe extern "C" fn(*mut c_void, c_int, c_int, c_int) -> c_int;
/// `int (*bind)(void *, int, const struct sockaddr *, socklen_t)`, also `connect`.
pub type BindFn = unsafe extern "C" fn(*mut c_void, c_int, *const sockaddr, socklen_t) -> c_int;
/// `int (*listen)(void *, int, int)`, also `shutdown`.
pub type IntIntFn = unsafe extern "C" fn(*mut c_void, c_int, c_int) -> c_int;
/// `int (*accept)(void *, int, struct sockaddr *, socklen_t *)`.
pub type AcceptFn =
    unsafe extern "C" fn(*mut c_void, c_int, *mut sockaddr, *mut socklen_t) -> c_int;
/// `ssize_t (*read)(void *, int, void *, size_t)`.
pub type ReadFn = unsafe extern "C" fn(*mut c_void, c_int, *mut c_void, size_t) -> ssize_t;
/// `ssize_t (*readv)(void *, int, const struct iovec *, int)`, also `writev`.
pub type IovFn = unsafe extern "C" fn(*mut c_void, c_int, *const iovec, c_int) -> ssize_t;
/// `ssize_t (*recv)(void *, int, void *, size_t, int)`.
pub type RecvFn = unsafe extern "C" fn(*mut c_void, c_int, *mut c_void, size_t, c_int) -> ssize_t;
/// `ssize_t (*recvfrom)(void *, int, void *, size_t, int, struct sockaddr *, socklen_t *)`.
pub type RecvfromFn = unsafe extern "C" fn(
    *mut c_void,
    c_int,
    *mut c_void,
    size_t,
    c_int,
    *mut sockaddr,
    *mut socklen_t,
) -> ssize_t;
/// `ssize_t (*recvmsg)(void *, int, struct msghdr *, int)`.
pub type RecvmsgFn = unsafe extern "C" fn(*mut c_void, c_int, *mut msghdr, c_int) -> ssize_t;
/// `ssize_t (*write)(void *, int, const void *, size_t)`.
pub type WriteFn = unsafe extern "C" fn(*mut c_void, c_int, *const c_void, size_t) -> ssize_t;
/// `ssize_t (*send)(void *, int, const void *, size_t, int)`.
pub type SendFn = unsafe extern "C" fn(*mut c_void, c_int, *const c_void, size_t, c_int) -> ssize_t;
/// `ssize_t (*sendto)(void *, int, const void *, size_t, int, const struct sockaddr *, socklen_t)`.
pub type SendtoFn = unsafe extern "C" fn(
    *mut c_void,
    c_int,
    *const c_void,
    size_t,
    c_int,
    *const sockaddr,
    socklen_t,
) -> ssize_t;
/// `ssize_t (*sendmsg)(void *, int, const struct msghdr *, int)`.
pub type SendmsgFn = unsafe extern "C" fn(*mut c_void, c_int, *const msghdr, c_int) -> ssize_t;
/// `int (*fcntl)(void *, int fd, int cmd, ...)`.
pub type FcntlFn = unsafe extern "C" fn(*mut c_void, c_int, c_int, ...) -> c_int;
/// `int (*ioctl)(void *, int fd, unsigned long request, ...)`.
pub type IoctlFn = unsafe extern "C" fn(*mut c_void, c_int, c_ulong, ...) -> c_int;
/// `int (*close)(void *, int)`.
pub type CloseFn = unsafe extern "C" fn(*mut c_void, c_int) -> c_int;
/// `int (*getsockopt)(void *, int, int level, int optname, void *, socklen_t *)`.
pub type GetsockoptFn =
    unsafe extern "C" fn(*mut c_void, c_int, c_int, c_int, *mut c_void, *mut socklen_t) -> c_int;
/// `int (*setsockopt)(void *, int, int level, int optname, const void *, socklen_t)`.
pub type SetsockoptFn =
    unsafe extern "C" fn(*mut c_void, c_int, c_int, c_int, *const c_void, socklen_t) -> c_int;
/// `int (*poll)(void *, struct pollfd *, nfds_t, int timeout)`.
pub type PollFn = unsafe extern "C" fn(*mut c_void, *mut pollfd, nfds_t, c_int) -> c_int;
/// `int (*netdev_send)(void *, const void *buf, size_t count)`.
pub type NetdevSendFn = unsafe extern "C" fn(*mut c_void, *const c_void, size_t) -> c_int;
/// `int (*netdev_receive)(void *, void *buf, size_t *count, long long *time_usecs)`.
pub type NetdevReceiveFn =
    unsafe extern "C" fn(*mut c_void, *mut c_void, *mut size_t, *mut c_longlong) -> c_int;
/// `int (*usleep)(void *, useconds_t)`.
pub type UsleepFn = unsafe extern "C" fn(*mut c_void, useconds_t) -> c_int;
/// `int (*gettimeofday)(void *, struct timeval *, struct timezone *)`.
pub type GettimeofdayFn = unsafe extern "C" fn(*mut c_void, *mut timeval, *mut c_void) -> c_int;
/// `int (*epoll_create)(void *, int size)`.
pub type EpollCreateFn = unsafe extern "C" fn(*mut c_void, c_int) -> c_int;
/// `int (*epoll_ctl)(void *, int epfd, int op, int fd, struct epoll_event *)`.
pub type EpollCtlFn =
    unsafe extern "C" fn(*mut c_void, c_int, c_int, c_int, *mut epoll_event) -> c_int;
/// `int (*epoll_wait)(void *, int epfd, struct epoll_event *, int maxevents, int timeout)`.
pub type EpollWaitFn =
    unsafe extern "C" fn(*mut c_void, c_int, *mut epoll_event, c_int, c_int) -> c_int;
/// `int (*pipe)(void *, int pipefd[2])`.
pub type PipeFn = unsafe extern "C" fn(*mut c_void, *mut c_int) -> c_int;
/// `int (*splice)(void *, int, loff_t *, int, loff_t *, size_t, unsigned int)`.
pub type SpliceFn = unsafe extern "C" fn(
    *mut c_void,
    c_int,
    *mut loff_t,
    c_int,
    *mut loff_t,
    size_t,
    c_uint,
) -> c_int;

/// `struct packetdrill_interface`, in the header's field order.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PacketdrillInterface {
    /// Passed back as the first argument of every call.
    pub userdata: *mut c_void,
    /// Frees `userdata`.
    pub free: Option<FreeFn>,
    /// socket(2).
    pub socket: Option<SocketFn>,
    /// bind(2).
    pub bind: Option<BindFn>,
    /// listen(2).
    pub listen: Option<IntIntFn>,
    /// accept(2).
    pub accept: Option<AcceptFn>,
    /// connect(2).
    pub connect: Option<BindFn>,
    /// read(2).
    pub read: Option<ReadFn>,
    /// readv(2).
    pub readv: Option<IovFn>,
    /// recv(2).
    pub recv: Option<RecvFn>,
    /// recvfrom(2).
    pub recvfrom: Option<RecvfromFn>,
    /// recvmsg(2).
    pub recvmsg: Option<RecvmsgFn>,
    /// write(2).
    pub write: Option<WriteFn>,
    /// writev(2).
    pub writev: Option<IovFn>,
    /// send(2).
    pub send: Option<SendFn>,
    /// sendto(2).
    pub sendto: Option<SendtoFn>,
    /// sendmsg(2).
    pub sendmsg: Option<SendmsgFn>,
    /// fcntl(2), variadic.
    pub fcntl: Option<FcntlFn>,
    /// ioctl(2), variadic.
    pub ioctl: Option<IoctlFn>,
    /// close(2).
    pub close: Option<CloseFn>,
    /// shutdown(2).
    pub shutdown: Option<IntIntFn>,
    /// getsockopt(2).
    pub getsockopt: Option<GetsockoptFn>,
    /// setsockopt(2).
    pub setsockopt: Option<SetsockoptFn>,
    /// poll(2).
    pub poll: Option<PollFn>,
    /// A packet from packetdrill into the stack: 0 or -1.
    pub netdev_send: Option<NetdevSendFn>,
    /// The next packet out of the stack, with its send time in µs.
    pub netdev_receive: Option<NetdevReceiveFn>,
    /// usleep(3) on the adapter's clock.
    pub usleep: Option<UsleepFn>,
    /// gettimeofday(2) on the adapter's clock.
    pub gettimeofday: Option<GettimeofdayFn>,
    /// epoll_create(2).
    pub epoll_create: Option<EpollCreateFn>,
    /// epoll_ctl(2).
    pub epoll_ctl: Option<EpollCtlFn>,
    /// epoll_wait(2).
    pub epoll_wait: Option<EpollWaitFn>,
    /// pipe(2).
    pub pipe: Option<PipeFn>,
    /// splice(2).
    pub splice: Option<SpliceFn>,
}

/// `void packetdrill_interface_init(const char *flags, struct packetdrill_interface *)`.
pub type InitFn = unsafe extern "C" fn(*const libc::c_char, *mut PacketdrillInterface);

/// Number of fields (all pointer-sized) of [`PacketdrillInterface`].
pub const FIELDS: usize = 33;

const _: () =
    assert!(std::mem::size_of::<PacketdrillInterface>() == FIELDS * std::mem::size_of::<usize>());
const _: () = assert!(
    std::mem::offset_of!(PacketdrillInterface, netdev_send) == 24 * std::mem::size_of::<usize>()
);
const _: () = assert!(
    std::mem::offset_of!(PacketdrillInterface, splice) == 32 * std::mem::size_of::<usize>()
);

impl PacketdrillInterface {
    /// An interface with every pointer NULL (what packetdrill hands us).
    pub fn zeroed() -> Self {
        PacketdrillInterface {
            userdata: std::ptr::null_mut(),
            free: None,
            socket: None,
            bind: None,
            listen: None,
            accept: None,
            connect: None,
            read: None,
            readv: None,
            recv: None,
            recvfrom: None,
            recvmsg: None,
            write: None,
            writev: None,
            send: None,
            sendto: None,
            sendmsg: None,
            fcntl: None,
            ioctl: None,
            close: None,
            shutdown: None,
            getsockopt: None,
            setsockopt: None,
            poll: None,
            netdev_send: None,
            netdev_receive: None,
            usleep: None,
            gettimeofday: None,
            epoll_create: None,
            epoll_ctl: None,
            epoll_wait: None,
            pipe: None,
            splice: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    /// Offsets on x86-64 as printed by a C program compiled against
    /// packetdrill's packetdrill.h (offsetof of every field, sizeof 264).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn layout_matches_packetdrill_h() {
        let p = PacketdrillInterface::zeroed();
        let _ = p;
        let offsets = [
            (offset_of!(PacketdrillInterface, userdata), 0),
            (offset_of!(PacketdrillInterface, free), 8),
            (offset_of!(PacketdrillInterface, socket), 16),
            (offset_of!(PacketdrillInterface, bind), 24),
            (offset_of!(PacketdrillInterface, listen), 32),
            (offset_of!(PacketdrillInterface, accept), 40),
            (offset_of!(PacketdrillInterface, connect), 48),
            (offset_of!(PacketdrillInterface, read), 56),
            (offset_of!(PacketdrillInterface, readv), 64),
            (offset_of!(PacketdrillInterface, recv), 72),
            (offset_of!(PacketdrillInterface, recvfrom), 80),
            (offset_of!(PacketdrillInterface, recvmsg), 88),
            (offset_of!(PacketdrillInterface, write), 96),
            (offset_of!(PacketdrillInterface, writev), 104),
            (offset_of!(PacketdrillInterface, send), 112),
            (offset_of!(PacketdrillInterface, sendto), 120),
            (offset_of!(PacketdrillInterface, sendmsg), 128),
            (offset_of!(PacketdrillInterface, fcntl), 136),
            (offset_of!(PacketdrillInterface, ioctl), 144),
            (offset_of!(PacketdrillInterface, close), 152),
            (offset_of!(PacketdrillInterface, shutdown), 160),
            (offset_of!(PacketdrillInterface, getsockopt), 168),
            (offset_of!(PacketdrillInterface, setsockopt), 176),
            (offset_of!(PacketdrillInterface, poll), 184),
            (offset_of!(PacketdrillInterface, netdev_send), 192),
            (offset_of!(PacketdrillInterface, netdev_receive), 200),
            (offset_of!(PacketdrillInterface, usleep), 208),
            (offset_of!(PacketdrillInterface, gettimeofday), 216),
            (offset_of!(PacketdrillInterface, epoll_create), 224),
            (offset_of!(PacketdrillInterface, epoll_ctl), 232),
            (offset_of!(PacketdrillInterface, epoll_wait), 240),
            (offset_of!(PacketdrillInterface, pipe), 248),
            (offset_of!(PacketdrillInterface, splice), 256),
        ];
        for (i, (got, want)) in offsets.iter().enumerate() {
            assert_eq!(got, want, "field #{i}");
        }
        assert_eq!(std::mem::size_of::<PacketdrillInterface>(), 264);
    }
}
