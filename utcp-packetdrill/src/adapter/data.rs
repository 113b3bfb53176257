//! Data: recv (and read) and send (and write).

use libc::c_int;
use utcp::error::Error;

use super::sock::Kind;
use super::{errno_of_error, Adapter, Res};

impl Adapter {
    /// recv(2) (and read): MSG_DONTWAIT and MSG_PEEK (the data stays
    /// queued) are honoured.
    pub fn recv(&self, fd: c_int, buf: &mut [u8], flags: c_int) -> Res<usize> {
        let peek = flags & libc::MSG_PEEK != 0;
        self.blocking(fd, flags & libc::MSG_DONTWAIT != 0, |g| {
            let sock = g.socks.get_mut(&fd).ok_or(libc::EBADF)?;
            let Kind::Conn { id } = sock.kind else {
                return Err(libc::ENOTCONN);
            };
            let tcb = g.stack.tcb_mut(id).ok_or(libc::ENOTCONN)?;
            if buf.is_empty() {
                return Ok(0);
            }
            if peek && tcb.recv_queued() > 0 {
                return Ok(tcb.peek(buf));
            }
            // With nothing queued, recv() consumes nothing: it tells EOF,
            // error and would-block apart for a peek too.
            match tcb.recv(if peek { &mut [] } else { buf }) {
                Ok(n) => Ok(n),
                Err(Error::WouldBlock) => Err(libc::EAGAIN),
                Err(_) if sock.error_reported => Ok(0),
                Err(e) => {
                    sock.error_reported = true;
                    Err(errno_of_error(e))
                }
            }
        })
    }

    /// send(2) (and write): a blocking socket sends everything, a
    /// non-blocking one what fits.
    pub fn send(&self, fd: c_int, data: &[u8], flags: c_int) -> Res<usize> {
        let dontwait = flags & libc::MSG_DONTWAIT != 0;
        let mut done = 0usize;
        let r = self.blocking(fd, dontwait, |g| {
            let sock = g.socks.get_mut(&fd).ok_or(libc::EBADF)?;
            let nonblock = sock.nonblock || dontwait;
            let Kind::Conn { id } = sock.kind else {
                return Err(libc::EPIPE);
            };
            let tcb = g.stack.tcb_mut(id).ok_or(libc::EPIPE)?;
            loop {
                match tcb.send(&data[done..]) {
                    Ok(n) => {
                        done += n;
                        if done == data.len() || n == 0 {
                            return Ok(done);
                        }
                        if nonblock {
                            return Ok(done);
                        }
                    }
                    Err(Error::WouldBlock) => {
                        return if done > 0 && nonblock {
                            Ok(done)
                        } else {
                            Err(libc::EAGAIN)
                        };
                    }
                    Err(_) if done > 0 => return Ok(done),
                    Err(e) => {
                        let errno = match e {
                            Error::NotConnected | Error::SendShutdown => libc::EPIPE,
                            _ if sock.error_reported => libc::EPIPE,
                            e => errno_of_error(e),
                        };
                        sock.error_reported = true;
                        return Err(errno);
                    }
                }
            }
        });
        match r {
            Err(libc::EAGAIN) if done > 0 => Ok(done),
            r => r,
        }
    }
}
