//! Packets into the [`Stack`]: validation, demultiplexing by 4-tuple,
//! listeners (SYNs), resets for segments nobody wants (RFC 9293 section
//! 3.10.7.1), ICMP echo, and the events a segment leaves behind.

use super::*;

impl Stack {
    /// Processes one raw IPv4 packet from the device.
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        self.handle_packet_with(now, packet, false);
    }

    /// [`handle_packet`](Self::handle_packet) for a packet from an offload
    /// device: with `tcp_csum_partial` its TCP checksum is partial and not
    /// verified ([`wire::parse_with`]); it may be a super-packet of up to
    /// 64 KB, which enters its connection as one segment.
    pub fn handle_packet_with(&mut self, now: Instant, packet: &[u8], tcp_csum_partial: bool) {
        self.sync_touched();
        self.handle_packet_inner(now, packet, tcp_csum_partial);
        self.settle();
    }

    /// A packet the runtime dropped before it reached the stack (a bad
    /// virtio-net header): counted with the others.
    pub fn count_drop(&mut self, reason: wire::DropReason, len: usize) {
        self.stats.packets_in += 1;
        *self.stats.dropped.entry(reason.as_str()).or_insert(0) += 1;
        debug!("dropped a {len}-byte packet: {reason}");
    }

    pub(super) fn handle_packet_inner(
        &mut self,
        now: Instant,
        packet: &[u8],
        tcp_csum_partial: bool,
    ) {
        let parsed = match wire::parse_with(packet, tcp_csum_partial) {
            Ok(p) => p,
            Err(reason) => {
                self.count_drop(reason, packet.len());
                return;
            }
        };
        self.stats.packets_in += 1;
        match parsed {
            Packet::IcmpEchoRequest {
                src,
                dst,
                ident,
                seq,
                payload,
            } => {
                if !self.is_ours(dst) {
                    self.stats.not_for_us += 1;
                    return;
                }
                trace!("echo request from {src} seq {seq}");
                self.push_control(Control::EchoReply {
                    src: dst,
                    dst: src,
                    ident,
                    seq,
                    payload: payload.to_vec(),
                });
            }
            Packet::Tcp(seg) => {
                if !self.is_ours(*seg.dst.ip()) {
                    self.stats.not_for_us += 1;
                    return;
                }
                self.stats.tcp_in += 1;
                self.handle_segment(now, &seg);
            }
        }
    }

    pub(super) fn handle_segment(&mut self, now: Instant, seg: &TcpSegment<'_>) {
        if let Some(&id) = self.tuples.get(&(seg.dst, seg.src)) {
            let Some(e) = self.entry_mut(id) else { return };
            let verdict = e.tcb.handle_segment(now, seg);
            let challenge = e.tcb.challenge_pending();
            if challenge && !self.spend_challenge(now) {
                if let Some(e) = self.entry_mut(id) {
                    e.tcb.cancel_challenge();
                }
            }
            if verdict == Verdict::SendReset {
                self.reset_for(seg);
            }
            self.trace_conn(now, id);
            self.after_event(id);
            return;
        }
        if let Some(port) = self.listener_for(seg) {
            self.handle_listen(now, seg, port);
            return;
        }
        // RFC 9293 section 3.10.7.1: CLOSED. Answer anything but a RST with a RST.
        trace!("segment for {} from {}: no connection", seg.dst, seg.src);
        self.reset_for(seg);
    }

    /// Whether packets to `dst` are the stack's: its address, or any in
    /// any-IP mode ([`StackConfig::any_ip`]).
    fn is_ours(&self, dst: Ipv4Addr) -> bool {
        self.cfg.any_ip || dst == self.cfg.addr
    }

    /// The listener a segment without a connection goes to: the one on its
    /// port if the segment is for our address (or any address in any-IP
    /// mode), else the any-IP listener ([`ANY_PORT`]).
    fn listener_for(&self, seg: &TcpSegment<'_>) -> Option<u16> {
        let port = seg.dst.port();
        let dialled_us = *seg.dst.ip() == self.cfg.addr || self.cfg.any_ip;
        if port != ANY_PORT && dialled_us && self.listeners.contains_key(&port) {
            return Some(port);
        }
        (self.cfg.any_ip && self.listeners.contains_key(&ANY_PORT)).then_some(ANY_PORT)
    }

    /// RFC 5961 section 7: takes one challenge ACK from this second's
    /// stack-wide budget; false when it is spent (counted).
    fn spend_challenge(&mut self, now: Instant) -> bool {
        let limit = self.cfg.challenge_ack_limit;
        if limit == 0 {
            return true;
        }
        let b = &mut self.challenges;
        if b.since
            .is_none_or(|t| now.saturating_duration_since(t) >= std::time::Duration::from_secs(1))
        {
            b.since = Some(now);
            b.left = limit / 2 + self.rng.random_range(0..limit.max(1));
        }
        if b.left == 0 {
            self.stats.challenge_acks_limited += 1;
            trace!("challenge ACK budget spent for this second");
            return false;
        }
        b.left -= 1;
        true
    }

    /// RFC 9293 section 3.10.7.2: a segment for a listening port. A full
    /// SYN queue answers with SYN cookies (`cookies.rs`); a full accept
    /// queue drops the SYN, like Linux: the peer will retry.
    pub(super) fn handle_listen(&mut self, now: Instant, seg: &TcpSegment<'_>, port: u16) {
        if seg.flags.contains(TcpFlags::RST) {
            return;
        }
        if seg.flags.contains(TcpFlags::ACK) {
            if !self.accept_cookie(now, seg, port) {
                self.reset_for(seg);
            }
            return;
        }
        if !seg.flags.contains(TcpFlags::SYN) {
            return;
        }
        if port == ANY_PORT && !self.filter_allows(seg) {
            self.reset_for(seg);
            return;
        }
        let Some(l) = self.listeners.get(&port) else {
            return;
        };
        let (queued, embryonic) = (l.queue.len(), l.embryonic.len());
        if queued + embryonic >= l.backlog {
            if queued < l.backlog && self.cfg.syn_cookies {
                let tcp = l.tcp.clone();
                self.send_cookie(now, seg, port, &tcp);
                return;
            }
            self.stats.syn_backlog_full += 1;
            debug!("backlog of port {port} full, dropping SYN from {}", seg.src);
            return;
        }
        let tcp = l.tcp.clone();
        let iss = self.isn.isn(now, seg.dst, seg.src);
        let tcb = Tcb::accept(seg, iss, tcp);
        debug!("{} -> {}: SYN received on a listener", seg.dst, seg.src);
        self.insert(tcb, Owner::Embryonic(port));
    }

    /// [`StackConfig::accept_filter`] on a SYN to the any-IP listener
    /// (counted when it refuses).
    fn filter_allows(&mut self, seg: &TcpSegment<'_>) -> bool {
        let ok = self
            .cfg
            .accept_filter
            .as_ref()
            .is_none_or(|f| f.allows(seg.dst, seg.src));
        if !ok {
            self.stats.syns_filtered += 1;
            debug!(
                "{} -> {}: SYN refused by the accept filter",
                seg.dst, seg.src
            );
        }
        ok
    }

    /// Queues the reset RFC 9293 section 3.10.7.1 prescribes for `seg`.
    pub(super) fn reset_for(&mut self, seg: &TcpSegment<'_>) {
        if seg.flags.contains(TcpFlags::RST) {
            return;
        }
        let rst = if seg.flags.contains(TcpFlags::ACK) {
            TcpSegment {
                src: seg.dst,
                dst: seg.src,
                seq: seg.ack,
                ack: SeqNum(0),
                flags: TcpFlags::RST,
                window: 0,
                options: TcpOptions::default(),
                payload: &[],
            }
        } else {
            TcpSegment {
                src: seg.dst,
                dst: seg.src,
                seq: SeqNum(0),
                ack: seg.seq + seg.seg_len(),
                flags: TcpFlags::RST | TcpFlags::ACK,
                window: 0,
                options: TcpOptions::default(),
                payload: &[],
            }
        };
        debug!("{} -> {}: sending RST", seg.dst, seg.src);
        self.stats.resets_sent += 1;
        self.push_control(Control::Segment(rst));
    }

    pub(super) fn push_control(&mut self, c: Control) {
        if self.control.len() < CONTROL_QUEUE_MAX {
            self.control.push_back(c);
        }
    }

    /// Moves connections between owners after they changed state.
    pub(super) fn after_event(&mut self, id: ConnId) {
        let Some(e) = self.entry_mut(id) else { return };
        if let Owner::Embryonic(port) = e.owner {
            if e.tcb.state().is_synchronized() {
                e.accepted = true;
                self.set_owner(id, Owner::Queued(port));
                if let Some(l) = self.listeners.get_mut(&port) {
                    l.queue.push_back(id);
                }
            }
        }
        self.drop_if_closed_in_queue(id);
        self.touch(id);
        self.note_events(id);
        self.reap(id);
    }

    /// A connection that ends (a RST, a timeout) while it waits in an
    /// accept queue leaves it at once, so it holds no slot of the backlog
    /// and `accept` never hands out a dead connection.
    fn drop_if_closed_in_queue(&mut self, id: ConnId) {
        let Some(e) = self.entry(id) else { return };
        let Owner::Queued(port) = e.owner else { return };
        if e.tcb.state() != State::Closed {
            return;
        }
        debug!(
            "{} -> {}: closed in the accept queue of port {port}; slot freed",
            e.tcb.local(),
            e.tcb.remote()
        );
        if let Some(l) = self.listeners.get_mut(&port) {
            l.queue.retain(|&q| q != id);
        }
        self.stats.closed_before_accept += 1;
        self.set_owner(id, Owner::Orphan);
    }

    /// Puts `id` in the event queue if it has events to report. Nobody is
    /// told about connections the application let go or that are still in
    /// a listener's handshake: their events are dropped.
    pub(super) fn note_events(&mut self, id: ConnId) {
        let Some(e) = self.entry_mut(id) else { return };
        if matches!(e.owner, Owner::Orphan | Owner::Dying | Owner::Embryonic(_)) {
            while e.tcb.poll_event().is_some() {}
            return;
        }
        if e.in_event_queue || !(e.accepted || e.tcb.has_events()) {
            return;
        }
        e.in_event_queue = true;
        self.event_queue.push_back(id);
    }

    /// The next thing that happened: a connection accepted on a listener,
    /// or an event of a connection ([`ConnEvent`]: established, readable,
    /// writable, closed with its reason). Events of one connection are
    /// coalesced (one `Readable` however many segments arrived) and come in
    /// the order their connections first had one. Call it after
    /// [`handle_packet`](Self::handle_packet),
    /// [`handle_timeout`](Self::handle_timeout) or
    /// [`poll_transmit`](Self::poll_transmit) until it returns `None`; the
    /// queue holds each connection at most once, so it stays bounded if
    /// nobody asks.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.sync_touched();
        while let Some(&conn) = self.event_queue.front() {
            if let Some(e) = self.entry_mut(conn) {
                if std::mem::take(&mut e.accepted) {
                    if let Owner::Queued(port) = e.owner {
                        return Some(Event::Accepted { port, conn });
                    }
                }
                if let Some(event) = e.tcb.poll_event() {
                    return Some(Event::Conn { conn, event });
                }
                e.in_event_queue = false;
            }
            self.event_queue.pop_front();
        }
        None
    }
}
