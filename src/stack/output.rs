//! Packets out of the [`Stack`]: resets and echo replies first, then what
//! the changed connections have to send.

use super::*;
use crate::tcb::Emitted;

/// How packets leave [`Stack::transmit`]: finished here (checksums
/// complete), left for the device to finish, or also in pieces (payload
/// straight from the send buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    Finish,
    Partial,
    Vectored,
}

impl Stack {
    /// Produces every packet that is ready to go, writing each into `buf` and
    /// handing it to `emit`. `buf` must hold a whole packet (the MTU).
    ///
    /// Only the connections on the changed list are visited (in slot order,
    /// as when every slot was walked): nothing else can have output, since a
    /// TCB's output changes only through a segment, a timer, an application
    /// call or an earlier `poll_transmit` that stopped at its cap.
    ///
    /// Every packet is finished (checksums complete). With
    /// [`TcpConfig::max_super_segment`](crate::tcb::TcpConfig::max_super_segment)
    /// set a packet may be a super-segment larger than the MTU, and `buf`
    /// must hold 64 KB; [`poll_transmit_with`](Self::poll_transmit_with)
    /// says which packets are.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8], mut emit: impl FnMut(&[u8])) {
        self.transmit(now, buf, Mode::Finish, &mut |p, _, _| emit(p));
    }

    /// Like [`poll_transmit`](Self::poll_transmit), but the packets are left
    /// for the device to finish as their [`TxOffload`] says (a partial
    /// checksum, a super-segment to cut; see [`crate::gso`]).
    pub fn poll_transmit_with(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        mut emit: impl FnMut(&[u8], TxOffload),
    ) {
        self.transmit(now, buf, Mode::Partial, &mut |p, _, o| emit(p, o));
    }

    /// Like [`poll_transmit_with`](Self::poll_transmit_with), for a device
    /// that writes from several buffers: `emit` gets each packet as its
    /// start (in `buf`) and up to two more pieces of payload straight from
    /// the connection's send buffer (see [`Tcb::poll_transmit_vectored`]);
    /// the packet is their concatenation.
    pub fn poll_transmit_vectored(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        mut emit: impl FnMut(&[u8], [&[u8]; 2], TxOffload),
    ) {
        self.transmit(now, buf, Mode::Vectored, &mut emit);
    }

    /// [`poll_transmit`](Self::poll_transmit) (`finish`: checksums
    /// completed here) or [`poll_transmit_with`](Self::poll_transmit_with).
    pub(super) fn transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        mode: Mode,
        emit: &mut impl FnMut(&[u8], [&[u8]; 2], TxOffload),
    ) {
        self.sync_touched();
        self.dispatch_control(buf, emit);
        let mut ids = std::mem::replace(&mut self.changed, std::mem::take(&mut self.scratch_ids));
        ids.sort_unstable_by_key(|id| id.index);
        for &id in &ids {
            let Some(e) = self.entry_mut(id) else {
                continue;
            };
            e.changed = false;
            if self.dispatch_slot(now, id.index as usize, buf, mode, emit) {
                // Stopped at the cap: more to send next time.
                if let Some(e) = self.entry_mut(id) {
                    if !std::mem::replace(&mut e.changed, true) {
                        self.changed.push(id);
                    }
                }
            }
        }
        ids.clear();
        self.scratch_ids = ids;
        self.settle();
    }

    /// Like [`poll_transmit`](Self::poll_transmit), but of the connections only `id`:
    /// what an application call on one connection produced, without a walk
    /// over every other connection (the driver's next batch sends theirs).
    pub fn poll_transmit_conn(
        &mut self,
        now: Instant,
        id: ConnId,
        buf: &mut [u8],
        mut emit: impl FnMut(&[u8]),
    ) {
        self.transmit_conn(now, id, buf, Mode::Finish, &mut |p, _, _| emit(p));
    }

    /// [`poll_transmit_conn`](Self::poll_transmit_conn), with the packets
    /// left for the device to finish, as in
    /// [`poll_transmit_with`](Self::poll_transmit_with).
    pub fn poll_transmit_conn_with(
        &mut self,
        now: Instant,
        id: ConnId,
        buf: &mut [u8],
        mut emit: impl FnMut(&[u8], TxOffload),
    ) {
        self.transmit_conn(now, id, buf, Mode::Partial, &mut |p, _, o| emit(p, o));
    }

    /// [`poll_transmit_conn`](Self::poll_transmit_conn), with the packets
    /// handed out in pieces, as in
    /// [`poll_transmit_vectored`](Self::poll_transmit_vectored).
    pub fn poll_transmit_conn_vectored(
        &mut self,
        now: Instant,
        id: ConnId,
        buf: &mut [u8],
        mut emit: impl FnMut(&[u8], [&[u8]; 2], TxOffload),
    ) {
        self.transmit_conn(now, id, buf, Mode::Vectored, &mut emit);
    }

    pub(super) fn transmit_conn(
        &mut self,
        now: Instant,
        id: ConnId,
        buf: &mut [u8],
        mode: Mode,
        emit: &mut impl FnMut(&[u8], [&[u8]; 2], TxOffload),
    ) {
        self.sync_touched();
        self.dispatch_control(buf, emit);
        if self.entry(id).is_some() {
            // It stays on the changed list, if it is there: the next
            // `poll_transmit` finds nothing more to send and lets it go.
            self.dispatch_slot(now, id.index as usize, buf, mode, emit);
        }
        self.settle();
    }

    /// Sends the queued resets, cookie SYN-ACKs and echo replies.
    pub(super) fn dispatch_control(
        &mut self,
        buf: &mut [u8],
        emit: &mut impl FnMut(&[u8], [&[u8]; 2], TxOffload),
    ) {
        while let Some(c) = self.control.pop_front() {
            let n = match &c {
                Control::Segment(seg) => wire::emit_tcp(buf, seg, &[]),
                Control::EchoReply {
                    src,
                    dst,
                    ident,
                    seq,
                    payload,
                } => {
                    self.stats.echo_replies += 1;
                    wire::emit_icmp_echo_reply(buf, *src, *dst, *ident, *seq, payload)
                }
            };
            if let Some(n) = n {
                self.stats.packets_out += 1;
                emit(&buf[..n], [&[], &[]], TxOffload::NONE);
            }
        }
    }

    /// Sends what the connection in slot `index` has ready, re-indexes its
    /// deadline (sending arms timers), then forgets it if it is closed and
    /// released. True if it stopped at its cap with more to send.
    pub(super) fn dispatch_slot(
        &mut self,
        now: Instant,
        index: usize,
        buf: &mut [u8],
        mode: Mode,
        emit: &mut impl FnMut(&[u8], [&[u8]; 2], TxOffload),
    ) -> bool {
        let slot = &mut self.slots[index];
        let id = ConnId {
            index: index as u32,
            generation: slot.generation,
        };
        let Some(e) = slot.entry.as_mut() else {
            return false;
        };
        // Bounded: a TCB emits at most its window's worth, but keep a cap anyway.
        let mut capped = true;
        for _ in 0..4096 {
            let out = if mode == Mode::Vectored {
                e.tcb.poll_transmit_vectored(now, buf)
            } else {
                e.tcb
                    .poll_transmit_with(now, buf)
                    .map(|(len, offload)| Emitted {
                        len,
                        offload,
                        payload: (0, 0),
                    })
            };
            let Some(Emitted {
                len: n,
                mut offload,
                payload: (off, len),
            }) = out
            else {
                capped = false;
                break;
            };
            if mode == Mode::Finish && offload.partial_checksum {
                // The TCB wrote this packet itself: it is well formed.
                let _ = wire::complete_tcp_checksum(&mut buf[..n]);
                offload.partial_checksum = false;
            }
            self.stats.packets_out += 1;
            let (a, b) = e.tcb.send_slices(off, len);
            emit(&buf[..n], [a, b], offload);
        }
        self.refresh(id);
        self.note_events(id);
        self.reap(id);
        capped
    }
}
