//! utcp as a packetdrill shared object.
//!
//! packetdrill (`--so_filename=libutcp_packetdrill.so --so_flags=...`)
//! dlopen()s this library, calls [`packetdrill_interface_init`] and then
//! drives the stack through the function pointers it filled in: socket calls
//! from the script, `netdev_send`/`netdev_receive` for the packets, and
//! `usleep`/`gettimeofday` for the clock. See `docs/packetdrill.md`.
//!
//! Every `extern "C"` function here checks its pointers, catches panics and
//! reports failures as -1 with `errno` set as Linux would.

pub mod adapter;
pub mod ffi;
pub mod flags;

use std::ffi::CStr;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::panic::{catch_unwind, AssertUnwindSafe};

use libc::{
    c_char, c_int, c_longlong, c_uint, c_ulong, c_void, epoll_event, iovec, loff_t, msghdr, nfds_t,
    pollfd, size_t, sockaddr, sockaddr_in, socklen_t, ssize_t, timeval, useconds_t,
};

use adapter::{Adapter, Errno, Res};
use ffi::PacketdrillInterface;
use flags::Flags;

extern "C" {
    fn utcp_pd_fcntl(userdata: *mut c_void, fd: c_int, cmd: c_int, ...) -> c_int;
    fn utcp_pd_ioctl(userdata: *mut c_void, fd: c_int, request: c_ulong, ...) -> c_int;
}

fn set_errno(e: Errno) {
    // SAFETY: __errno_location returns this thread's errno, always valid.
    unsafe { *libc::__errno_location() = e };
}

/// Runs `f` with panics caught; a panic becomes `fail` with EIO.
fn guard<T>(fail: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            set_errno(libc::EIO);
            fail
        }
    }
}

/// The adapter behind `userdata`, or EINVAL for NULL (a failed init).
///
/// # Safety
/// `ud` is NULL or the pointer [`packetdrill_interface_init`] stored.
unsafe fn adapter<'a>(ud: *mut c_void) -> Res<&'a Adapter> {
    // SAFETY: per the contract, a non-NULL `ud` is a live Box<Adapter>.
    unsafe { (ud as *const Adapter).as_ref() }.ok_or(libc::EINVAL)
}

/// Runs a socket call: catches panics, turns `Err(errno)` into -1 + errno.
fn call<T: From<i8>>(ud: *mut c_void, f: impl FnOnce(&Adapter) -> Res<T>) -> T {
    guard(T::from(-1), || {
        // SAFETY: packetdrill passes back the userdata we gave it.
        let r = unsafe { adapter(ud) }.and_then(f);
        match r {
            Ok(v) => v,
            Err(e) => {
                set_errno(e);
                T::from(-1)
            }
        }
    })
}

/// A kernel call's result: `-1` becomes `Err(errno)`.
fn kernel<T: PartialEq + From<i8>>(r: T) -> Res<T> {
    if r == T::from(-1) {
        Err(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    } else {
        Ok(r)
    }
}

fn to_ssize(n: usize) -> ssize_t {
    ssize_t::try_from(n).unwrap_or(ssize_t::MAX)
}

/// Reads a `struct sockaddr_in` from the caller.
///
/// # Safety
/// `addr` is NULL or points to `len` readable bytes.
unsafe fn read_sockaddr(addr: *const sockaddr, len: socklen_t) -> Res<SocketAddrV4> {
    if addr.is_null() {
        return Err(libc::EFAULT);
    }
    if (len as usize) < std::mem::size_of::<sockaddr_in>() {
        return Err(libc::EINVAL);
    }
    // SAFETY: at least sizeof(sockaddr_in) bytes are readable; read_unaligned
    // copes with any alignment.
    let sin = unsafe { std::ptr::read_unaligned(addr as *const sockaddr_in) };
    if c_int::from(sin.sin_family) != libc::AF_INET {
        return Err(libc::EAFNOSUPPORT);
    }
    Ok(SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
        u16::from_be(sin.sin_port),
    ))
}

/// Writes `a` to the caller's (addr, addrlen) as accept(2) does: truncated
/// to `*addrlen`, which becomes the full size. Both NULL is fine.
///
/// # Safety
/// `addr` is NULL or has `*addrlen` writable bytes; `addrlen` is NULL or valid.
unsafe fn write_sockaddr(a: SocketAddrV4, addr: *mut sockaddr, addrlen: *mut socklen_t) -> Res<()> {
    if addr.is_null() {
        return Ok(());
    }
    if addrlen.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: addrlen is non-NULL and valid per the contract.
    let room = unsafe { *addrlen } as usize;
    // SAFETY: sockaddr_in is plain old data; all-zero is a valid value.
    let mut sin: sockaddr_in = unsafe { std::mem::zeroed() };
    sin.sin_family = libc::AF_INET as libc::sa_family_t;
    sin.sin_port = a.port().to_be();
    sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
    let size = std::mem::size_of::<sockaddr_in>();
    // SAFETY: copy min(room, size) bytes into the caller's buffer.
    unsafe {
        std::ptr::copy_nonoverlapping(
            &sin as *const sockaddr_in as *const u8,
            addr as *mut u8,
            room.min(size),
        );
        *addrlen = size as socklen_t;
    }
    Ok(())
}

/// The caller's buffer as a slice (EFAULT for NULL with a non-zero length).
///
/// # Safety
/// `buf` is NULL or valid for `len` bytes.
unsafe fn slice_mut<'a>(buf: *mut c_void, len: size_t) -> Res<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if buf.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: non-NULL and valid for len bytes per the contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, len) })
}

/// Like [`slice_mut`], read-only.
///
/// # Safety
/// `buf` is NULL or valid for `len` bytes.
unsafe fn slice<'a>(buf: *const c_void, len: size_t) -> Res<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if buf.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: non-NULL and valid for len bytes per the contract.
    Ok(unsafe { std::slice::from_raw_parts(buf as *const u8, len) })
}

/// The iovec array as (pointer, length) pairs, checked.
///
/// # Safety
/// `iov` is NULL or valid for `cnt` entries.
unsafe fn iovecs<'a>(iov: *const iovec, cnt: c_int) -> Res<&'a [iovec]> {
    if !(0..=libc::UIO_MAXIOV).contains(&cnt) {
        return Err(libc::EINVAL);
    }
    if cnt == 0 {
        return Ok(&[]);
    }
    if iov.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: non-NULL and valid for cnt entries per the contract.
    let v = unsafe { std::slice::from_raw_parts(iov, cnt as usize) };
    if v.iter().any(|e| e.iov_base.is_null() && e.iov_len > 0) {
        return Err(libc::EFAULT);
    }
    Ok(v)
}

fn readv_impl(a: &Adapter, fd: c_int, iov: &[iovec], flags: c_int) -> Res<ssize_t> {
    let total: usize = iov.iter().map(|e| e.iov_len).sum();
    let mut tmp = vec![0u8; total.min(1 << 24)];
    let n = a.recv(fd, &mut tmp, flags)?;
    let mut off = 0;
    for e in iov {
        if off >= n {
            break;
        }
        let k = e.iov_len.min(n - off);
        // SAFETY: iov entries were checked non-NULL; each has iov_len bytes.
        unsafe { std::ptr::copy_nonoverlapping(tmp[off..].as_ptr(), e.iov_base as *mut u8, k) };
        off += k;
    }
    Ok(to_ssize(n))
}

fn writev_impl(a: &Adapter, fd: c_int, iov: &[iovec], flags: c_int) -> Res<ssize_t> {
    let mut tmp = Vec::new();
    for e in iov {
        // SAFETY: checked by iovecs(): non-NULL with iov_len readable bytes.
        tmp.extend_from_slice(unsafe { slice(e.iov_base, e.iov_len) }?);
    }
    a.send(fd, &tmp, flags).map(to_ssize)
}

// ----------------------------------------------------------------------
// The entry points
// ----------------------------------------------------------------------

unsafe extern "C" fn pd_free(ud: *mut c_void) {
    guard((), || {
        if !ud.is_null() {
            // SAFETY: `ud` is the Box<Adapter> init leaked; packetdrill frees it once.
            let a = unsafe { Box::from_raw(ud as *mut Adapter) };
            a.forget_fds();
            drop(a);
        }
    })
}

unsafe extern "C" fn pd_socket(ud: *mut c_void, domain: c_int, ty: c_int, proto: c_int) -> c_int {
    call(ud, |a| a.socket(domain, ty, proto))
}

unsafe extern "C" fn pd_bind(
    ud: *mut c_void,
    fd: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> c_int {
    call(ud, |a| {
        // SAFETY: the caller's sockaddr, checked for NULL and length.
        let sa = unsafe { read_sockaddr(addr, len) }?;
        a.bind(fd, sa).map(|()| 0)
    })
}

unsafe extern "C" fn pd_listen(ud: *mut c_void, fd: c_int, backlog: c_int) -> c_int {
    call(ud, |a| a.listen(fd, backlog).map(|()| 0))
}

unsafe extern "C" fn pd_accept(
    ud: *mut c_void,
    fd: c_int,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
) -> c_int {
    call(ud, |a| {
        if !addr.is_null() && addrlen.is_null() {
            return Err(libc::EFAULT);
        }
        let (new, peer) = a.accept(fd)?;
        // SAFETY: the caller's buffers, NULL-checked inside.
        unsafe { write_sockaddr(peer, addr, addrlen) }?;
        Ok(new)
    })
}

unsafe extern "C" fn pd_connect(
    ud: *mut c_void,
    fd: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> c_int {
    call(ud, |a| {
        // SAFETY: the caller's sockaddr, checked for NULL and length.
        let sa = unsafe { read_sockaddr(addr, len) }?;
        a.connect(fd, sa).map(|()| 0)
    })
}

unsafe extern "C" fn pd_read(ud: *mut c_void, fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    call(ud, |a| {
        if a.is_pipe(fd) {
            // A pipe: the kernel's read(2).
            // SAFETY: the caller's buffer of n bytes, as read(2) takes it.
            return kernel(unsafe { libc::read(fd, buf, n) });
        }
        // SAFETY: the caller's buffer of n bytes.
        let b = unsafe { slice_mut(buf, n) }?;
        a.recv(fd, b, 0).map(to_ssize)
    })
}

unsafe extern "C" fn pd_readv(
    ud: *mut c_void,
    fd: c_int,
    iov: *const iovec,
    cnt: c_int,
) -> ssize_t {
    call(ud, |a| {
        if a.is_pipe(fd) {
            // SAFETY: the caller's iovec array, as readv(2) takes it.
            return kernel(unsafe { libc::readv(fd, iov, cnt) });
        }
        // SAFETY: the caller's iovec array of cnt entries.
        let v = unsafe { iovecs(iov, cnt) }?;
        readv_impl(a, fd, v, 0)
    })
}

unsafe extern "C" fn pd_recv(
    ud: *mut c_void,
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
) -> ssize_t {
    call(ud, |a| {
        // SAFETY: the caller's buffer of n bytes.
        let b = unsafe { slice_mut(buf, n) }?;
        a.recv(fd, b, flags).map(to_ssize)
    })
}

unsafe extern "C" fn pd_recvfrom(
    ud: *mut c_void,
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    src: *mut sockaddr,
    srclen: *mut socklen_t,
) -> ssize_t {
    call(ud, |a| {
        // SAFETY: the caller's buffer of n bytes.
        let b = unsafe { slice_mut(buf, n) }?;
        let got = a.recv(fd, b, flags)?;
        if !srclen.is_null() {
            // SAFETY: non-NULL; for a connected TCP socket Linux leaves the
            // address untouched and reports length 0.
            unsafe { *srclen = 0 };
        }
        let _ = src;
        Ok(to_ssize(got))
    })
}

unsafe extern "C" fn pd_recvmsg(
    ud: *mut c_void,
    fd: c_int,
    msg: *mut msghdr,
    flags: c_int,
) -> ssize_t {
    call(ud, |a| {
        // SAFETY: the caller's msghdr, NULL-checked.
        let m = unsafe { msg.as_mut() }.ok_or(libc::EFAULT)?;
        let cnt = c_int::try_from(m.msg_iovlen).map_err(|_| libc::EMSGSIZE)?;
        // SAFETY: the msghdr's iovec array.
        let v = unsafe { iovecs(m.msg_iov, cnt) }?;
        let n = readv_impl(a, fd, v, flags)?;
        m.msg_namelen = 0;
        m.msg_controllen = 0;
        m.msg_flags = 0;
        Ok(n)
    })
}

unsafe extern "C" fn pd_write(
    ud: *mut c_void,
    fd: c_int,
    buf: *const c_void,
    n: size_t,
) -> ssize_t {
    call(ud, |a| {
        if a.is_pipe(fd) {
            // SAFETY: the caller's buffer of n bytes, as write(2) takes it.
            return kernel(unsafe { libc::write(fd, buf, n) });
        }
        // SAFETY: the caller's buffer of n bytes.
        let b = unsafe { slice(buf, n) }?;
        a.send(fd, b, 0).map(to_ssize)
    })
}

unsafe extern "C" fn pd_writev(
    ud: *mut c_void,
    fd: c_int,
    iov: *const iovec,
    cnt: c_int,
) -> ssize_t {
    call(ud, |a| {
        if a.is_pipe(fd) {
            // SAFETY: the caller's iovec array, as writev(2) takes it.
            return kernel(unsafe { libc::writev(fd, iov, cnt) });
        }
        // SAFETY: the caller's iovec array of cnt entries.
        let v = unsafe { iovecs(iov, cnt) }?;
        writev_impl(a, fd, v, 0)
    })
}

unsafe extern "C" fn pd_send(
    ud: *mut c_void,
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
) -> ssize_t {
    call(ud, |a| {
        // SAFETY: the caller's buffer of n bytes.
        let b = unsafe { slice(buf, n) }?;
        a.send(fd, b, flags).map(to_ssize)
    })
}

unsafe extern "C" fn pd_sendto(
    ud: *mut c_void,
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    dest: *const sockaddr,
    destlen: socklen_t,
) -> ssize_t {
    call(ud, |a| {
        // SAFETY: the caller's buffer of n bytes.
        let b = unsafe { slice(buf, n) }?;
        if !dest.is_null() || destlen != 0 {
            // Linux ignores the address on a connected TCP socket, but
            // checks it on one that is not (EPIPE/ENOTCONN either way).
            // SAFETY: the caller's sockaddr, checked for NULL and length.
            unsafe { read_sockaddr(dest, destlen) }?;
        }
        a.send(fd, b, flags).map(to_ssize)
    })
}

unsafe extern "C" fn pd_sendmsg(
    ud: *mut c_void,
    fd: c_int,
    msg: *const msghdr,
    flags: c_int,
) -> ssize_t {
    call(ud, |a| {
        // SAFETY: the caller's msghdr, NULL-checked.
        let m = unsafe { msg.as_ref() }.ok_or(libc::EFAULT)?;
        let cnt = c_int::try_from(m.msg_iovlen).map_err(|_| libc::EMSGSIZE)?;
        // SAFETY: the msghdr's iovec array.
        let v = unsafe { iovecs(m.msg_iov, cnt) }?;
        writev_impl(a, fd, v, flags)
    })
}

/// Fixed-arity half of the variadic fcntl (called by the C shim).
///
/// # Safety
/// `ud` is the userdata [`packetdrill_interface_init`] stored (or NULL).
#[no_mangle]
pub unsafe extern "C" fn utcp_pd_fcntl_impl(
    ud: *mut c_void,
    fd: c_int,
    cmd: c_int,
    arg: c_ulong,
) -> c_int {
    call(ud, |a| {
        if a.is_pipe(fd) {
            // SAFETY: fcntl(2) with an integer argument (the shim passes 0
            // for the commands that take none); no pointer commands reach
            // here from packetdrill.
            return kernel(unsafe { libc::fcntl(fd, cmd, arg) });
        }
        a.fcntl(fd, cmd, arg)
    })
}

/// Fixed-arity half of the variadic ioctl (called by the C shim).
///
/// # Safety
/// `ud` is the userdata [`packetdrill_interface_init`] stored (or NULL);
/// `arg` is NULL or points to an `int`.
#[no_mangle]
pub unsafe extern "C" fn utcp_pd_ioctl_impl(
    ud: *mut c_void,
    fd: c_int,
    request: c_ulong,
    arg: *mut c_void,
) -> c_int {
    call(ud, |a| {
        let p = arg as *mut c_int;
        if p.is_null() {
            return Err(libc::EFAULT);
        }
        let value = match request {
            // SAFETY: FIONBIO's argument is a readable int.
            libc::FIONBIO => unsafe { p.read_unaligned() },
            _ => 0,
        };
        let answer = a.ioctl(fd, request, value)?;
        if request != libc::FIONBIO {
            // SAFETY: FIONREAD/SIOCOUTQ's argument is a writable int.
            unsafe { p.write_unaligned(answer) };
        }
        Ok(0)
    })
}

unsafe extern "C" fn pd_close(ud: *mut c_void, fd: c_int) -> c_int {
    call(ud, |a| a.close(fd).map(|()| 0))
}

unsafe extern "C" fn pd_shutdown(ud: *mut c_void, fd: c_int, how: c_int) -> c_int {
    call(ud, |a| a.shutdown(fd, how).map(|()| 0))
}

unsafe extern "C" fn pd_getsockopt(
    ud: *mut c_void,
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    call(ud, |a| {
        if val.is_null() || len.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: len is non-NULL.
        let room = unsafe { *len } as usize;
        let bytes = a.getsockopt(fd, level, name)?;
        let n = room.min(bytes.len());
        // SAFETY: val has `room` writable bytes; we write at most that.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), val as *mut u8, n);
            *len = n as socklen_t;
        }
        Ok(0)
    })
}

unsafe extern "C" fn pd_setsockopt(
    ud: *mut c_void,
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    call(ud, |a| {
        if val.is_null() {
            return Err(libc::EFAULT);
        }
        // Every option utcp knows is at most a struct linger (8 bytes).
        let n = (len as usize).min(std::mem::size_of::<libc::linger>());
        // SAFETY: val has `len` readable bytes; we read at most that.
        let v = unsafe { slice(val, n) }?;
        a.setsockopt(fd, level, name, v).map(|()| 0)
    })
}

unsafe extern "C" fn pd_poll(
    ud: *mut c_void,
    fds: *mut pollfd,
    nfds: nfds_t,
    timeout: c_int,
) -> c_int {
    call(ud, |a| {
        if nfds > libc::RLIMIT_NOFILE as nfds_t * 65536 {
            return Err(libc::EINVAL);
        }
        let v: &mut [pollfd] = if nfds == 0 {
            &mut []
        } else if fds.is_null() {
            return Err(libc::EFAULT);
        } else {
            // SAFETY: non-NULL and valid for nfds entries per poll(2).
            unsafe { std::slice::from_raw_parts_mut(fds, nfds as usize) }
        };
        a.poll(v, timeout)
    })
}

unsafe extern "C" fn pd_netdev_send(ud: *mut c_void, buf: *const c_void, n: size_t) -> c_int {
    call(ud, |a| {
        // SAFETY: packetdrill's packet of n bytes.
        let b = unsafe { slice(buf, n) }?;
        a.netdev_send(b);
        Ok(0)
    })
}

unsafe extern "C" fn pd_netdev_receive(
    ud: *mut c_void,
    buf: *mut c_void,
    count: *mut size_t,
    time_usecs: *mut c_longlong,
) -> c_int {
    call(ud, |a| {
        if count.is_null() || time_usecs.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: count is non-NULL.
        let room = unsafe { *count };
        // SAFETY: packetdrill's buffer of `room` bytes.
        let b = unsafe { slice_mut(buf, room) }?;
        match a.netdev_receive() {
            Some((p, t)) => {
                let n = p.len().min(b.len());
                b[..n].copy_from_slice(&p[..n]);
                // SAFETY: both non-NULL.
                unsafe {
                    *count = n;
                    *time_usecs = c_longlong::try_from(t).unwrap_or(c_longlong::MAX);
                }
            }
            None => {
                // Nothing can come any more: an empty packet makes packetdrill
                // fail at once (-1 would make it retry forever).
                // SAFETY: both non-NULL.
                unsafe {
                    *count = 0;
                    *time_usecs = 0;
                }
            }
        }
        Ok(0)
    })
}

unsafe extern "C" fn pd_usleep(ud: *mut c_void, usec: useconds_t) -> c_int {
    call(ud, |a| {
        a.usleep(u64::from(usec));
        Ok(0)
    })
}

unsafe extern "C" fn pd_gettimeofday(ud: *mut c_void, tv: *mut timeval, _tz: *mut c_void) -> c_int {
    call(ud, |a| {
        // SAFETY: the caller's timeval, NULL-checked.
        let tv = unsafe { tv.as_mut() }.ok_or(libc::EFAULT)?;
        let us = a.gettimeofday();
        tv.tv_sec = (us / 1_000_000) as libc::time_t;
        tv.tv_usec = (us % 1_000_000) as libc::suseconds_t;
        Ok(0)
    })
}

unsafe extern "C" fn pd_epoll_create(ud: *mut c_void, size: c_int) -> c_int {
    call(ud, |a| a.epoll_create(size))
}

unsafe extern "C" fn pd_epoll_ctl(
    ud: *mut c_void,
    epfd: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut epoll_event,
) -> c_int {
    call(ud, |a| {
        // SAFETY: the caller's epoll_event or NULL (fine for EPOLL_CTL_DEL);
        // the struct is packed on x86-64, so read it unaligned.
        let ev = unsafe { ev.as_ref().map(|_| std::ptr::read_unaligned(ev)) };
        let ev = ev.map(|e| (e.events, e.u64));
        a.epoll_ctl(epfd, op, fd, ev).map(|()| 0)
    })
}

unsafe extern "C" fn pd_epoll_wait(
    ud: *mut c_void,
    epfd: c_int,
    events: *mut epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    call(ud, |a| {
        if events.is_null() && max > 0 {
            return Err(libc::EFAULT);
        }
        let ready = a.epoll_wait(epfd, max, timeout)?;
        for (i, (ev, data)) in ready.iter().enumerate() {
            let e = epoll_event {
                events: *ev,
                u64: *data,
            };
            // SAFETY: `events` has room for `max` entries and i < max.
            unsafe { std::ptr::write_unaligned(events.add(i), e) };
        }
        Ok(c_int::try_from(ready.len()).unwrap_or(c_int::MAX))
    })
}

/// pipe(2): a real kernel pipe (O_CLOEXEC). read, readv, write, writev,
/// fcntl and poll on its ends go to the kernel; close closes them.
unsafe extern "C" fn pd_pipe(ud: *mut c_void, fds: *mut c_int) -> c_int {
    call(ud, |a| {
        if fds.is_null() {
            return Err(libc::EFAULT);
        }
        let p = a.pipe()?;
        // SAFETY: fds points to two ints, as pipe(2) takes it.
        unsafe { std::ptr::copy_nonoverlapping(p.as_ptr(), fds, 2) };
        Ok(0)
    })
}

unsafe extern "C" fn pd_splice(
    ud: *mut c_void,
    _fd_in: c_int,
    _off_in: *mut loff_t,
    _fd_out: c_int,
    _off_out: *mut loff_t,
    _len: size_t,
    _flags: c_uint,
) -> c_int {
    // Not implemented: splice between a pipe and a utcp socket would need
    // the adapter to copy through a buffer.
    call(ud, |_| Err(libc::ENOSYS))
}

/// Fills `ifc` with utcp's implementation of every call.
fn fill(ifc: &mut PacketdrillInterface, ud: *mut c_void) {
    *ifc = PacketdrillInterface {
        userdata: ud,
        free: Some(pd_free),
        socket: Some(pd_socket),
        bind: Some(pd_bind),
        listen: Some(pd_listen),
        accept: Some(pd_accept),
        connect: Some(pd_connect),
        read: Some(pd_read),
        readv: Some(pd_readv),
        recv: Some(pd_recv),
        recvfrom: Some(pd_recvfrom),
        recvmsg: Some(pd_recvmsg),
        write: Some(pd_write),
        writev: Some(pd_writev),
        send: Some(pd_send),
        sendto: Some(pd_sendto),
        sendmsg: Some(pd_sendmsg),
        fcntl: Some(utcp_pd_fcntl),
        ioctl: Some(utcp_pd_ioctl),
        close: Some(pd_close),
        shutdown: Some(pd_shutdown),
        getsockopt: Some(pd_getsockopt),
        setsockopt: Some(pd_setsockopt),
        poll: Some(pd_poll),
        netdev_send: Some(pd_netdev_send),
        netdev_receive: Some(pd_netdev_receive),
        usleep: Some(pd_usleep),
        gettimeofday: Some(pd_gettimeofday),
        epoll_create: Some(pd_epoll_create),
        epoll_ctl: Some(pd_epoll_ctl),
        epoll_wait: Some(pd_epoll_wait),
        pipe: Some(pd_pipe),
        splice: Some(pd_splice),
    };
}

/// packetdrill's entry point: parses `flags` (`--so_flags`, may be NULL) and
/// fills `ifc`. On bad flags it prints why on stderr and leaves `userdata`
/// NULL, so every call fails with EINVAL.
///
/// # Safety
/// `flags` is NULL or a NUL-terminated string; `ifc` is NULL or points to a
/// writable `struct packetdrill_interface`.
#[no_mangle]
pub unsafe extern "C" fn packetdrill_interface_init(
    flags: *const c_char,
    ifc: *mut PacketdrillInterface,
) {
    guard((), || {
        // SAFETY: NULL-checked; packetdrill owns the struct.
        let Some(ifc) = (unsafe { ifc.as_mut() }) else {
            return;
        };
        let text = if flags.is_null() {
            None
        } else {
            // SAFETY: a NUL-terminated string per the contract.
            Some(
                unsafe { CStr::from_ptr(flags) }
                    .to_string_lossy()
                    .into_owned(),
            )
        };
        let ud = match Flags::parse(text.as_deref()) {
            Ok(f) => Box::into_raw(Box::new(Adapter::new(f))) as *mut c_void,
            Err(e) => {
                eprintln!("utcp-packetdrill: bad --so_flags: {e}");
                std::ptr::null_mut()
            }
        };
        fill(ifc, ud);
    })
}
