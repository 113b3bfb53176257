//! One relayed connection: the TUN-side stream and its kernel-side socket,
//! bytes pumped both ways through one bounded buffer per direction, FINs
//! and RSTs passed on.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ::tokio::net::TcpStream as KernelStream;

use super::outbound::set_reset_on_close;
use crate::tokio::TcpStream;

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Both sides sent their FIN; both were passed on.
    Closed,
    /// The TUN-side client reset (or vanished): the destination got a RST.
    ResetByClient,
    /// The destination reset (or vanished): the client got a RST.
    ResetByServer,
    /// The outgoing connection failed: the client got a RST.
    ConnectFailed,
    /// The connection loops back into the TUN device: reset.
    Loop,
    /// Over the relay limit: the client got a RST.
    Refused,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Closed => "closed",
            Outcome::ResetByClient => "reset by the client, reset passed on",
            Outcome::ResetByServer => "reset by the server, reset passed on",
            Outcome::ConnectFailed => "connect failed, client reset",
            Outcome::Loop => "loops back into the TUN device, reset",
            Outcome::Refused => "over the relay limit, client reset",
        })
    }
}

/// Byte counters of one relay, shared with the relay-wide totals.
pub struct Counters<'a> {
    /// Client to destination.
    pub up: &'a AtomicU64,
    /// Destination to client.
    pub down: &'a AtomicU64,
}

/// Which side of a pump failed.
enum Broken {
    /// Reading from the source failed (it reset).
    Source(io::Error),
    /// Writing to the sink failed (it reset or is gone).
    Sink(io::Error),
}

/// Copies `from` to `to` until `from`'s FIN, then shuts `to`'s write side
/// (a FIN from one side becomes a FIN to the other).
async fn pump<R, W>(from: &mut R, to: &mut W, buf: &mut [u8], n: &AtomicU64) -> Result<(), Broken>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let k = from.read(buf).await.map_err(Broken::Source)?;
        if k == 0 {
            return to.shutdown().await.map_err(Broken::Sink);
        }
        to.write_all(&buf[..k]).await.map_err(Broken::Sink)?;
        n.fetch_add(k as u64, Ordering::Relaxed);
    }
}

/// Relays `tun` and `out` until both directions ended or one side reset;
/// passes a reset on to the other side.
pub async fn run(tun: &TcpStream, out: KernelStream, buf: usize, c: Counters<'_>) -> Outcome {
    let mut out = out;
    let verdict = {
        let (mut out_r, mut out_w) = out.split();
        let (mut tun_r, mut tun_w) = (tun, tun);
        let mut up_buf = vec![0u8; buf];
        let mut down_buf = vec![0u8; buf];
        let up = pump(&mut tun_r, &mut out_w, &mut up_buf, c.up);
        let down = pump(&mut out_r, &mut tun_w, &mut down_buf, c.down);
        both(up, down).await
    };
    match verdict {
        Ok(()) => Outcome::Closed,
        Err(Side::Client(e)) => {
            log::debug!("relay: client side: {e}; resetting the destination");
            if let Err(e) = set_reset_on_close(&out) {
                log::warn!("relay: cannot reset the destination: {e}");
            }
            Outcome::ResetByClient
        }
        Err(Side::Server(e)) => {
            log::debug!("relay: destination side: {e}; resetting the client");
            let _ = tun.abort();
            Outcome::ResetByServer
        }
    }
}

/// The side that broke a relay.
enum Side {
    Client(io::Error),
    Server(io::Error),
}

/// Runs both pumps to completion, or until one breaks (the other is then
/// dropped: its side is reset by the caller or closed by the drop).
async fn both(
    up: impl std::future::Future<Output = Result<(), Broken>>,
    down: impl std::future::Future<Output = Result<(), Broken>>,
) -> Result<(), Side> {
    ::tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        ::tokio::select! {
            r = &mut up, if !up_done => match r {
                Ok(()) => up_done = true,
                // Reading the client failed: it reset.
                Err(Broken::Source(e)) => return Err(Side::Client(e)),
                Err(Broken::Sink(e)) => return Err(Side::Server(e)),
            },
            r = &mut down, if !down_done => match r {
                Ok(()) => down_done = true,
                Err(Broken::Source(e)) => return Err(Side::Server(e)),
                Err(Broken::Sink(e)) => return Err(Side::Client(e)),
            },
        }
    }
    Ok(())
}
