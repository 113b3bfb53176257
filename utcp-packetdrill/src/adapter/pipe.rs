//! Pipes: pipe() makes real kernel pipes; calls on their ends go to the
//! kernel.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use libc::c_int;

use super::{Adapter, Res};

impl Adapter {
    /// pipe(2): a kernel pipe (O_CLOEXEC), read end first.
    pub fn pipe(&self) -> Res<[c_int; 2]> {
        let mut fds: [c_int; 2] = [-1; 2];
        // SAFETY: fds has room for the two ints pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EMFILE));
        }
        let mut g = self.lock();
        for fd in fds {
            // SAFETY: pipe2 just returned these fds and nothing else owns them.
            g.pipes.insert(fd, unsafe { OwnedFd::from_raw_fd(fd) });
        }
        Ok(fds)
    }

    /// True if `fd` is one of the pipes [`Adapter::pipe`] made: the caller
    /// passes read, write and fcntl on it to the kernel.
    pub fn is_pipe(&self, fd: c_int) -> bool {
        self.lock().pipes.contains_key(&fd)
    }
}
