//! Out-of-order segment reassembly.
//!
//! INTERFACE STUB — to be implemented (see the doc comments for the contract).

use crate::seq::SeqNum;

/// Holds data that arrived ahead of `RCV.NXT` until the gap before it is filled.
#[derive(Clone, Debug, Default)]
pub struct ReassemblyQueue {
    max_bytes: usize,
}

impl ReassemblyQueue {
    /// An empty queue that will hold at most `max_bytes` bytes.
    pub fn new(max_bytes: usize) -> Self {
        ReassemblyQueue { max_bytes }
    }

    /// Stores `data` that starts at `seq` (ahead of `rcv_nxt`).
    pub fn insert(&mut self, _rcv_nxt: SeqNum, _seq: SeqNum, _data: &[u8]) -> usize {
        let _ = self.max_bytes;
        0
    }

    /// Hands `sink` every held byte that is now contiguous with `rcv_nxt`.
    pub fn drain_ready(&mut self, _rcv_nxt: SeqNum, _sink: impl FnMut(&[u8])) -> usize {
        0
    }

    /// Bytes currently held.
    pub fn held_bytes(&self) -> usize {
        0
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        true
    }

    /// Forgets everything held.
    pub fn clear(&mut self) {}
}
