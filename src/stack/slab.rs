//! Bookkeeping of the [`Stack`]'s connections: the slab of slots, owners
//! (and the listeners' half-open sets), the timer index, the changed list,
//! reaping.

use super::*;

impl Stack {
    /// Changes `id`'s owner, keeping the listeners' half-open counters.
    pub(super) fn set_owner(&mut self, id: ConnId, owner: Owner) {
        let Some(e) = self.entry_mut(id) else { return };
        let old = std::mem::replace(&mut e.owner, owner);
        if old == owner {
            return;
        }
        if old == Owner::Orphan {
            self.orphan_count -= 1;
        }
        if owner == Owner::Orphan {
            self.orphan_count += 1;
        }
        if let Owner::Embryonic(port) = old {
            if let Some(l) = self.listeners.get_mut(&port) {
                l.embryonic.remove(&id);
            }
        }
        if let Owner::Embryonic(port) = owner {
            if let Some(l) = self.listeners.get_mut(&port) {
                l.embryonic.insert(id);
            }
        }
    }

    /// The stack changed `id`'s TCB: re-index its deadline and put it on the
    /// changed list.
    pub(super) fn touch(&mut self, id: ConnId) {
        let Some(e) = self.entry_mut(id) else { return };
        if !std::mem::replace(&mut e.changed, true) {
            self.changed.push(id);
        }
        self.refresh(id);
    }

    /// Pushes `id`'s deadline into the timer index if it differs from the
    /// one indexed (invariants 1 and 2 of [`Timers`]); the entry it replaces,
    /// if any, goes stale.
    pub(super) fn refresh(&mut self, id: ConnId) {
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return;
        };
        if slot.generation != id.generation {
            return;
        }
        let Some(e) = slot.entry.as_mut() else { return };
        let now = e.tcb.poll_timeout();
        if now == e.deadline {
            return;
        }
        e.deadline = now;
        slot.timer_stamp = slot.timer_stamp.wrapping_add(1);
        if let Some(t) = now {
            self.timers
                .heap
                .push(Reverse((t, id.index, slot.timer_stamp)));
        }
    }

    /// Re-indexes the connection [`tcb_mut`](Self::tcb_mut) handed out, if
    /// any: first thing in every `&mut self` entry point.
    pub(super) fn sync_touched(&mut self) {
        if let Some(id) = self.touched.take() {
            self.refresh(id);
            self.settle();
        }
    }

    /// Restores invariant 3 of [`Timers`] (and bounds the heap): last thing
    /// in every `&mut self` entry point that may have staled entries.
    pub(super) fn settle(&mut self) {
        self.timers.settle(&self.slots, self.tuples.len());
    }

    // ------------------------------------------------------------------
    // Slab plumbing
    // ------------------------------------------------------------------

    pub(super) fn insert(&mut self, tcb: Tcb, owner: Owner) -> ConnId {
        let key = (tcb.local(), tcb.remote());
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.entry = Some(Entry {
            tcb,
            owner: Owner::App,
            accepted: false,
            in_event_queue: false,
            deadline: None,
            changed: false,
        });
        let id = ConnId {
            index,
            generation: slot.generation,
        };
        self.tuples.insert(key, id);
        self.stats.connections += 1;
        self.set_owner(id, owner);
        self.touch(id);
        id
    }

    pub(super) fn entry(&self, id: ConnId) -> Option<&Entry> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_ref()
    }

    pub(super) fn entry_mut(&mut self, id: ConnId) -> Option<&mut Entry> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_mut()
    }

    /// Every live connection's id (the tests' full scans, and
    /// [`Stack::connections`]: a snapshot on request, never per packet).
    pub(super) fn iter_ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.entry.as_ref().map(|_| ConnId {
                index: i as u32,
                generation: s.generation,
            })
        })
    }

    /// Forgets a CLOSED connection nobody holds any more.
    pub(super) fn reap(&mut self, id: ConnId) {
        let Some(e) = self.entry(id) else { return };
        if e.tcb.state() != State::Closed || e.tcb.reset_pending() {
            return;
        }
        if matches!(e.owner, Owner::App | Owner::Queued(_)) {
            return;
        }
        // Leaves the half-open count of its listener, if embryonic.
        self.set_owner(id, Owner::Orphan);
        let Some(e) = self.entry(id) else { return };
        let key = (e.tcb.local(), e.tcb.remote());
        trace!("forgetting connection {} -> {}", key.0, key.1);
        if self.tuples.get(&key) == Some(&id) {
            self.tuples.remove(&key);
        }
        self.trace_forget(&key);
        // It was an orphan (just above); now it is gone.
        self.orphan_count -= 1;
        let slot = &mut self.slots[id.index as usize];
        slot.entry = None;
        slot.generation = slot.generation.wrapping_add(1);
        // Its timer-index entry, if any, goes stale (invariant 2).
        slot.timer_stamp = slot.timer_stamp.wrapping_add(1);
        self.free.push(id.index);
    }
}
