//! The socket layer's calls into the [`Stack`]: listeners, active opens,
//! access to a connection and its release.

use super::*;

impl Stack {
    /// Starts listening on `port` with an accept queue of `backlog` connections.
    pub fn listen(&mut self, port: u16, backlog: usize) -> Result<(), Error> {
        let tcp = self.cfg.tcp.clone();
        self.listen_with(port, backlog, tcp)
    }

    /// The TCP settings new connections get unless told otherwise (the MSS
    /// already follows the device MTU). Change a copy and pass it to
    /// [`listen_with`](Self::listen_with) or [`connect_with`](Self::connect_with)
    /// for per-socket options such as buffer sizes.
    pub fn tcp_config(&self) -> &TcpConfig {
        &self.cfg.tcp
    }

    /// Like [`listen`](Self::listen), with the settings accepted connections
    /// get. The MSS is capped by the device's.
    pub fn listen_with(&mut self, port: u16, backlog: usize, tcp: TcpConfig) -> Result<(), Error> {
        if port == 0 {
            return Err(Error::PortZero);
        }
        self.insert_listener(port, backlog, tcp)
    }

    /// Starts the any-IP listener (the stack must be in any-IP mode,
    /// [`StackConfig::any_ip`]): it takes SYNs to every address and port
    /// that no ordinary listener holds, subject to
    /// [`StackConfig::accept_filter`]. Its connections come out of
    /// [`accept`](Self::accept) and [`Event::Accepted`] with port 0
    /// ([`ANY_PORT`]); each one's local address is the original
    /// destination. [`unlisten`](Self::unlisten)`(0)` stops it.
    pub fn listen_any(&mut self, backlog: usize, tcp: TcpConfig) -> Result<(), Error> {
        if !self.cfg.any_ip {
            return Err(Error::NotAnyIp);
        }
        self.insert_listener(ANY_PORT, backlog, tcp)
    }

    fn insert_listener(
        &mut self,
        port: u16,
        backlog: usize,
        mut tcp: TcpConfig,
    ) -> Result<(), Error> {
        tcp.mss = tcp.mss.clamp(64, self.cfg.tcp.mss);
        if self.listeners.contains_key(&port) {
            return Err(Error::PortInUse(port));
        }
        if port == ANY_PORT {
            debug!("listening on every address and port (any-IP)");
        } else {
            debug!("listening on {}:{port}", self.cfg.addr);
        }
        self.listeners.insert(
            port,
            Listener {
                backlog: backlog.max(1),
                queue: VecDeque::new(),
                embryonic: Default::default(),
                tcp,
                cookie_sent: None,
            },
        );
        Ok(())
    }

    /// Stops listening on `port`; connections not yet accepted are reset.
    pub fn unlisten(&mut self, port: u16) {
        self.sync_touched();
        let Some(l) = self.listeners.remove(&port) else {
            return;
        };
        debug!("no longer listening on {}:{port}", self.cfg.addr);
        // Its connections: the half-open ones and the accept queue, no
        // scan of the slab.
        for id in l.embryonic.into_iter().chain(l.queue) {
            if let Some(e) = self.entry_mut(id) {
                e.tcb.abort();
                // The listener and its counter are gone already.
                e.owner = Owner::Orphan;
                self.orphan_count += 1;
                self.touch(id);
            }
        }
        self.settle();
    }

    /// True if a listener is bound to `port`.
    pub fn is_listening(&self, port: u16) -> bool {
        self.listeners.contains_key(&port)
    }

    /// Takes the next established connection from `port`'s accept queue.
    pub fn accept(&mut self, port: u16) -> Option<ConnId> {
        self.sync_touched();
        let id = self.listeners.get_mut(&port)?.queue.pop_front()?;
        self.set_owner(id, Owner::App);
        Some(id)
    }

    /// Opens a connection to `remote` (active open). The returned connection
    /// is in SYN-SENT; wait for it to leave that state.
    pub fn connect(&mut self, now: Instant, remote: SocketAddrV4) -> Result<ConnId, Error> {
        let tcp = self.cfg.tcp.clone();
        self.connect_with(now, remote, None, tcp)
    }

    /// The general active open: from `local_port` (an ephemeral port if
    /// `None`) with the given settings (the MSS is capped by the device's).
    pub fn connect_with(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        local_port: Option<u16>,
        mut tcp: TcpConfig,
    ) -> Result<ConnId, Error> {
        self.sync_touched();
        Self::check_remote(self.cfg.addr, remote)?;
        tcp.mss = tcp.mss.clamp(64, self.cfg.tcp.mss);
        let port = match local_port {
            Some(0) => return Err(Error::PortZero),
            Some(port) => {
                let local = SocketAddrV4::new(self.cfg.addr, port);
                if self.tuples.contains_key(&(local, remote)) {
                    return Err(Error::TupleInUse(local, remote));
                }
                port
            }
            None => self.ephemeral_port(remote).ok_or(Error::NoEphemeralPort)?,
        };
        Ok(self.open(now, port, remote, tcp))
    }

    /// Opens a connection to `remote` from the fixed `local_port` instead of
    /// an ephemeral one (like `bind` before `connect`). This is what a
    /// simultaneous open needs (RFC 9293 section 3.5, Figure 8): both ends
    /// must know each other's port in advance.
    ///
    /// `InvalidInput` for the addresses [`connect`](Self::connect) refuses
    /// and for port 0; `AddrInUse` if this 4-tuple already has a connection.
    pub fn connect_from(
        &mut self,
        now: Instant,
        local_port: u16,
        remote: SocketAddrV4,
    ) -> Result<ConnId, Error> {
        let tcp = self.cfg.tcp.clone();
        self.connect_with(now, remote, Some(local_port), tcp)
    }

    /// Refuses destinations no connection may have.
    pub(super) fn check_remote(us: Ipv4Addr, remote: SocketAddrV4) -> Result<(), Error> {
        let ip = *remote.ip();
        if remote.port() == 0
            || ip.is_unspecified()
            || ip.is_broadcast()
            || ip.is_multicast()
            || ip == us
        {
            return Err(Error::BadRemote(remote));
        }
        Ok(())
    }

    /// Creates the SYN-SENT TCB for `local_port` -> `remote`.
    pub(super) fn open(
        &mut self,
        now: Instant,
        local_port: u16,
        remote: SocketAddrV4,
        tcp: TcpConfig,
    ) -> ConnId {
        let local = SocketAddrV4::new(self.cfg.addr, local_port);
        let iss = self.isn.isn(now, local, remote);
        let tcb = Tcb::connect(local, remote, iss, tcp);
        let id = self.insert(tcb, Owner::App);
        self.settle();
        id
    }

    /// A free ephemeral port towards `remote`, from a random start, among
    /// this shard's share ([`Shard`]).
    pub(super) fn ephemeral_port(&mut self, remote: SocketAddrV4) -> Option<u16> {
        let Shard { index, count } = self.cfg.shard;
        let count = u32::from(count.max(1));
        let index = u32::from(index) % count;
        let all = u32::from(u16::MAX - EPHEMERAL_FIRST) + 1;
        // Ports FIRST + index + k * count for k in 0..span.
        let span = (all - index).div_ceil(count);
        let start = self.rng.random_range(0..span);
        (0..span)
            .map(|i| EPHEMERAL_FIRST + (index + ((start + i) % span) * count) as u16)
            .find(|&port| {
                !self.listeners.contains_key(&port)
                    && !self
                        .tuples
                        .contains_key(&(SocketAddrV4::new(self.cfg.addr, port), remote))
            })
    }

    /// Every connection's TCB, in slot order (listeners excluded).
    pub fn connections(&self) -> impl Iterator<Item = &Tcb> + '_ {
        self.iter_ids().filter_map(|id| self.tcb(id))
    }

    /// The connection's TCB, if it still exists.
    pub fn tcb(&self, id: ConnId) -> Option<&Tcb> {
        self.entry(id).map(|e| &e.tcb)
    }

    /// The connection's TCB, mutably (for send, recv, close...).
    ///
    /// The caller may change anything, the deadline included, after this
    /// returns: the connection joins the changed list, its timer-index entry
    /// is retired and it becomes the `touched` one, whose deadline
    /// [`poll_timeout`](Self::poll_timeout) reads from the TCB itself until
    /// the next call of the stack re-indexes it (see `Timers` in the source).
    pub fn tcb_mut(&mut self, id: ConnId) -> Option<&mut Tcb> {
        self.sync_touched();
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let e = slot.entry.as_mut()?;
        if e.deadline.take().is_some() {
            slot.timer_stamp = slot.timer_stamp.wrapping_add(1);
        }
        if !std::mem::replace(&mut e.changed, true) {
            self.changed.push(id);
        }
        self.touched = Some(id);
        self.timers.settle(&self.slots, self.tuples.len());
        self.entry_mut(id).map(|e| &mut e.tcb)
    }

    /// The application let go of `id`: close it gracefully (if it still
    /// needs closing); the stack forgets it once it reaches CLOSED.
    pub fn release(&mut self, id: ConnId) {
        self.sync_touched();
        if let Some(e) = self.entry_mut(id) {
            e.tcb.close();
            e.tcb.set_orphaned();
            self.set_owner(id, Owner::Orphan);
            self.touch(id);
            self.orphans.push_back(id);
        }
        self.reap(id);
        self.bound_orphans();
        self.settle();
    }

    /// Resets the oldest orphans while there are more than
    /// `max_orphans` of them (an exact count, kept by `set_owner`), or --
    /// looked at every [`ORPHAN_BYTES_EVERY`] releases, an O(orphans) sum --
    /// they hold more than `max_orphan_bytes` in their send buffers.
    /// Amortized O(1) per release otherwise.
    fn bound_orphans(&mut self) {
        self.prune_orphans();
        self.orphan_releases = self.orphan_releases.wrapping_add(1);
        let mut bytes = 0;
        if self.orphan_releases % ORPHAN_BYTES_EVERY == 0 {
            bytes = self
                .orphans
                .iter()
                .filter_map(|&id| self.entry(id).filter(|e| e.owner == Owner::Orphan))
                .map(|e| e.tcb.send_queued())
                .sum();
        }
        while self.orphan_count > self.cfg.max_orphans || bytes > self.cfg.max_orphan_bytes {
            let Some(id) = self.orphans.pop_front() else {
                break;
            };
            let Some(e) = self.entry_mut(id).filter(|e| e.owner == Owner::Orphan) else {
                continue;
            };
            bytes = bytes.saturating_sub(e.tcb.send_queued());
            debug!(
                "{} -> {}: too many orphans (or too much data in them): reset",
                e.tcb.local(),
                e.tcb.remote()
            );
            e.tcb.abort();
            self.set_owner(id, Owner::Dying);
            self.stats.orphans_reset += 1;
            self.touch(id);
        }
    }

    /// Drops ids of connections that are no longer orphans from the front
    /// of the list, and compacts it when such ids make up most of it.
    fn prune_orphans(&mut self) {
        let live = |s: &Self, id: ConnId| s.entry(id).is_some_and(|e| e.owner == Owner::Orphan);
        while let Some(&id) = self.orphans.front() {
            if live(self, id) {
                break;
            }
            self.orphans.pop_front();
        }
        if self.orphans.len() > 2 * self.orphan_count + 64 {
            let ids = std::mem::take(&mut self.orphans);
            self.orphans = ids.into_iter().filter(|&id| live(self, id)).collect();
        }
    }
}
