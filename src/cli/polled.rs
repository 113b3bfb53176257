//! The CLI's one-thread servers (`echo`, `sink`, `source`): every
//! connection served from one thread through [`Poll`], with non-blocking
//! streams, no thread per connection.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};

use rustc_hash::FxHashMap;
use utcp::socket::{Events, Interest, NetStack, Poll, TcpListener, TcpStream, Token};

/// What a [`serve`] server does with its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every byte comes back; a half-close is answered once all is echoed.
    Echo,
    /// Reads everything, prints "<peer> <N> bytes" at EOF.
    Sink,
    /// Sends this many zero bytes (None: until the peer goes away), then
    /// its FIN; reads and discards what the peer sends, until its FIN.
    Source(Option<u64>),
}

/// The listener's token; connections get 1, 2, ...
const LISTENER: Token = Token(0);

/// Bytes moved per call.
const CHUNK: usize = 64 * 1024;

/// One connection of a [`serve`] server.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Echo: read and not yet written back.
    pending: Vec<u8>,
    /// Source: bytes still to send (None: no limit).
    left: Option<u64>,
    /// The peer's FIN was read.
    eof: bool,
    /// Sink: bytes read.
    total: u64,
}

/// Serves every connection of `listener` from this thread, for ever.
/// `on_conn` prints what a finished connection did (the CLI's `--stats`).
pub fn serve(
    net: &NetStack,
    listener: TcpListener,
    mode: Mode,
    on_conn: fn(&TcpStream),
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut poll = Poll::new(net)?;
    poll.register(&listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut conns: FxHashMap<usize, Conn> = FxHashMap::default();
    let mut next = 1;
    let mut bufs = Buffers {
        read: vec![0u8; CHUNK],
        zeros: vec![0u8; CHUNK],
    };
    loop {
        poll.poll(&mut events, None)?;
        for ev in &events {
            if ev.token() == LISTENER {
                accept_ready(&listener, &poll, mode, &mut conns, &mut next)?;
                continue;
            }
            let Some(c) = conns.get_mut(&ev.token().0) else {
                continue;
            };
            match c.serve(mode, &poll, ev.token(), &mut bufs) {
                Ok(false) => {}
                Ok(true) => {
                    if let Some(c) = conns.remove(&ev.token().0) {
                        on_conn(&c.stream);
                        c.finish(mode)?;
                    }
                }
                Err(e) => {
                    eprintln!("utcp: connection from {}: {e}", c.peer);
                    conns.remove(&ev.token().0);
                }
            }
        }
    }
}

/// Scratch space shared by every connection.
struct Buffers {
    read: Vec<u8>,
    /// What `source` sends.
    zeros: Vec<u8>,
}

/// Accepts every connection that is ready and registers it.
fn accept_ready(
    listener: &TcpListener,
    poll: &Poll,
    mode: Mode,
    conns: &mut FxHashMap<usize, Conn>,
    next: &mut usize,
) -> io::Result<()> {
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(v) => v,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        log::info!("connection from {peer}");
        stream.set_nonblocking(true)?;
        let c = Conn {
            stream,
            peer,
            pending: Vec::new(),
            left: match mode {
                Mode::Source(n) => Some(n.unwrap_or(u64::MAX)),
                _ => None,
            },
            eof: false,
            total: 0,
        };
        poll.register(&c.stream, Token(*next), c.interest())?;
        conns.insert(*next, c);
        *next += 1;
    }
}

impl Conn {
    /// Does what can be done without blocking; true when the connection is
    /// done (echo and source: everything sent, our FIN sent and the peer's
    /// read; sink: EOF).
    fn serve(
        &mut self,
        mode: Mode,
        poll: &Poll,
        token: Token,
        bufs: &mut Buffers,
    ) -> io::Result<bool> {
        // A budget, so one busy connection does not starve the others; the
        // poll is level-triggered and reports what is left next time.
        for _ in 0..64 {
            match self.write_some(&bufs.zeros)? {
                Some(true) => continue,
                Some(false) => break,
                None => {}
            }
            if self.eof {
                break;
            }
            match (&self.stream).read(&mut bufs.read) {
                Ok(0) => self.eof = true,
                Ok(n) if mode == Mode::Echo => self.pending.extend_from_slice(&bufs.read[..n]),
                Ok(n) => self.total += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if self.eof && !self.sending() {
            if mode != Mode::Sink {
                self.stream.shutdown(Shutdown::Write)?;
            }
            return Ok(true);
        }
        if self.left == Some(0) {
            // Source: all sent; our FIN goes now, the peer's is awaited.
            self.left = None;
            self.stream.shutdown(Shutdown::Write)?;
        }
        poll.reregister(&self.stream, token, self.interest())?;
        Ok(false)
    }

    /// Writes what waits (echo) or what is left to send (source). None:
    /// nothing to write; Some(true): wrote some; Some(false): no room.
    fn write_some(&mut self, zeros: &[u8]) -> io::Result<Option<bool>> {
        let chunk = match self.left {
            Some(left) if left > 0 => &zeros[..zeros.len().min(left as usize)],
            _ if !self.pending.is_empty() => &self.pending[..],
            _ => return Ok(None),
        };
        match (&self.stream).write(chunk) {
            Ok(n) => {
                match &mut self.left {
                    Some(left) => *left = left.saturating_sub(n as u64),
                    None => drop(self.pending.drain(..n)),
                }
                Ok(Some(true))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Some(false)),
            Err(e) => Err(e),
        }
    }

    /// Something is still to be written.
    fn sending(&self) -> bool {
        !self.pending.is_empty() || self.left.is_some_and(|l| l > 0)
    }

    /// Echo waits with reading while echoed bytes wait for room
    /// (backpressure); source reads (to see the peer's FIN) while it sends.
    fn interest(&self) -> Interest {
        match (self.left.is_some_and(|l| l > 0), self.pending.is_empty()) {
            (true, _) => Interest::READABLE | Interest::WRITABLE,
            (false, false) => Interest::WRITABLE,
            (false, true) => Interest::READABLE,
        }
    }

    /// The connection is done: the sink's line.
    fn finish(self, mode: Mode) -> io::Result<()> {
        if mode == Mode::Sink {
            let mut out = io::stdout().lock();
            writeln!(out, "{} {} bytes", self.peer, self.total)?;
            out.flush()?;
        }
        Ok(())
    }
}
