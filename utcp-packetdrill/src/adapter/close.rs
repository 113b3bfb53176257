//! Teardown: close and shutdown, and forgetting the fds at the end.

use std::os::fd::IntoRawFd;

use libc::c_int;
use utcp::state::State;

use super::sock::Kind;
use super::{Adapter, Res};

impl Adapter {
    /// close(2). A connection closed with unread data is reset (RFC 2525
    /// section 2.17, as Linux does), and so is one with SO_LINGER on and a
    /// zero timeout (Linux's abortive close); otherwise it closes
    /// gracefully (a non-zero linger time does not make close wait).
    pub fn close(&self, fd: c_int) -> Res<()> {
        let mut g = self.lock();
        if let Some(ep) = g.epolls.remove(&fd) {
            drop(ep.fd);
            return Ok(());
        }
        if let Some(pipe) = g.pipes.remove(&fd) {
            drop(pipe);
            return Ok(());
        }
        let sock = g.socks.remove(&fd).ok_or(libc::EBADF)?;
        for ep in g.epolls.values_mut() {
            ep.interest.remove(&fd);
        }
        match sock.kind {
            Kind::Fresh => {}
            Kind::Listener { port, ready } => {
                for id in ready {
                    if let Some(tcb) = g.stack.tcb_mut(id) {
                        tcb.abort();
                    }
                    g.stack.release(id);
                }
                g.stack.unlisten(port);
            }
            Kind::Conn { id } => {
                if let Some(tcb) = g.stack.tcb_mut(id) {
                    if tcb.recv_queued() > 0 || sock.linger == Some(0) {
                        tcb.abort();
                    }
                }
                g.stack.release(id);
            }
        }
        drop(sock.fd);
        g.flush();
        self.notify(&mut g);
        Ok(())
    }

    /// shutdown(2).
    pub fn shutdown(&self, fd: c_int, how: c_int) -> Res<()> {
        if !(0..=2).contains(&how) {
            return Err(libc::EINVAL);
        }
        let mut g = self.lock();
        let sock = g.sock(fd)?;
        match &sock.kind {
            Kind::Fresh => return Err(libc::ENOTCONN),
            Kind::Listener { .. } => {
                // Like Linux: SHUT_RD (or RDWR) on a listener stops it.
                if how != libc::SHUT_WR {
                    drop(g);
                    return self.unlisten(fd);
                }
                return Ok(());
            }
            Kind::Conn { id } => {
                let id = *id;
                let tcb = g.stack.tcb_mut(id).ok_or(libc::ENOTCONN)?;
                if tcb.state() == State::Closed {
                    return Err(libc::ENOTCONN);
                }
                if how != libc::SHUT_WR {
                    tcb.shutdown_read();
                }
                if how != libc::SHUT_RD {
                    tcb.close();
                }
            }
        }
        g.flush();
        self.notify(&mut g);
        Ok(())
    }

    fn unlisten(&self, fd: c_int) -> Res<()> {
        let mut g = self.lock();
        let sock = g.sock(fd)?;
        let kind = std::mem::replace(&mut sock.kind, Kind::Fresh);
        if let Kind::Listener { port, ready } = kind {
            for id in ready {
                if let Some(tcb) = g.stack.tcb_mut(id) {
                    tcb.abort();
                }
                g.stack.release(id);
            }
            g.stack.unlisten(port);
        }
        g.flush();
        self.notify(&mut g);
        Ok(())
    }

    /// Forgets every socket without closing its reserved fd: packetdrill
    /// close()s the fds a script leaves open itself, before it frees us, so
    /// closing them again could hit an fd number that was reused meanwhile.
    pub fn forget_fds(&self) {
        let mut g = self.lock();
        for (_, s) in g.socks.drain() {
            let _ = s.fd.into_raw_fd();
        }
        for (_, e) in g.epolls.drain() {
            let _ = e.fd.into_raw_fd();
        }
    }
}
