//! The [`Stack`]'s timers: the next deadline and the due connections,
//! from the timer index (see the [module documentation](super)).

use super::*;

impl Stack {
    /// The earliest deadline of any connection. O(1): the top of the timer
    /// index, or the deadline of the connection [`tcb_mut`](Self::tcb_mut)
    /// handed out last (see `Timers` in the source for why this is exact).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let indexed = match self.timers.heap.peek() {
            Some(&Reverse((t, index, stamp))) if Timers::is_live(&self.slots, index, stamp) => {
                Some(t)
            }
            // Invariant 3 says the top is live; should it not be, stay
            // exact the slow way rather than sleep through a deadline.
            Some(_) => self
                .timers
                .heap
                .iter()
                .filter(|Reverse((_, index, stamp))| Timers::is_live(&self.slots, *index, *stamp))
                .map(|Reverse((t, _, _))| *t)
                .min(),
            None => None,
        };
        let touched = self
            .touched
            .and_then(|id| self.tcb(id))
            .and_then(Tcb::poll_timeout);
        indexed.into_iter().chain(touched).min()
    }

    /// Runs every timer that expired at or before `now`: pops the due
    /// entries of the timer index, never visiting the other connections.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sync_touched();
        // Collect first, then run in slot order, as the walk over every
        // slot did: the order of the resets and events they produce stays.
        let mut due = std::mem::take(&mut self.scratch);
        due.clear();
        while let Some(&Reverse((t, index, stamp))) = self.timers.heap.peek() {
            if t > now {
                break;
            }
            self.timers.heap.pop();
            if !Timers::is_live(&self.slots, index, stamp) {
                continue;
            }
            // Popped: the connection has no live entry now; `touch` below
            // indexes whatever deadline running its timers leaves.
            if let Some(e) = self.slots[index as usize].entry.as_mut() {
                e.deadline = None;
            }
            due.push(index);
        }
        due.sort_unstable();
        for &index in &due {
            let slot = &mut self.slots[index as usize];
            let id = ConnId {
                index,
                generation: slot.generation,
            };
            let Some(e) = slot.entry.as_mut() else {
                continue;
            };
            if e.tcb.poll_timeout().is_some_and(|t| t <= now) {
                e.tcb.handle_timeout(now);
                self.trace_conn(now, id);
                self.after_event(id);
            } else {
                self.refresh(id);
            }
        }
        self.scratch = due;
        self.settle();
    }
}
