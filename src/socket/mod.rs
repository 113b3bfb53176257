//! The blocking socket API: [`NetStack`], [`TcpListener`], [`TcpStream`].
//!
//! Shaped like `std::net`. One driver thread owns the device: it sleeps in
//! poll(2) on the device fd, an eventfd and the core's next timer deadline
//! (never on a fixed tick), drains every readable packet, runs expired timers,
//! transmits, and wakes application threads through a condition variable.
//! Application threads lock the core, act on their connection and transmit
//! what that produced themselves, so a `write` reaches the wire without a
//! thread hop; they poke the eventfd only when they moved the next timer
//! deadline earlier than the driver's.

mod driver;
mod errors;
mod listener;
mod poll;
mod runtime;
mod shards;
mod snapshot;
mod stream;
mod trace;
mod wake;

pub use driver::{Driver, FALLBACK_AFTER};
pub use errors::io_kind;
pub use listener::{Incoming, TcpListener, DEFAULT_BACKLOG};
pub use poll::{Event, Events, Interest, Poll, Pollable, Token};
pub use runtime::{NetStack, RuntimeOptions, DEFAULT_LINGER};
pub use shards::Shards;
pub use snapshot::{Connection, WeakNetStack};
pub use stream::TcpStream;
pub use trace::{TraceFile, TraceRecord};
