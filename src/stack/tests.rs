//! The bookkeeping that spares a wake-up the walk over every connection,
//! checked against that walk: random traffic and application calls
//! between two stacks over a lossy, reordering link, and after every
//! step the timer index, the changed list and the half-open counters
//! must say what a scan of the slab says.

use super::*;
use crate::sim::{LinkConfig, SimNet};
use std::time::Duration;

impl Stack {
    /// Asserts the invariants of [`Timers`], the changed list and the
    /// half-open counters against a scan of every slot.
    fn check_bookkeeping(&self) {
        let mut live: HashMap<u32, Instant> = HashMap::new();
        for &Reverse((t, index, stamp)) in self.timers.heap.iter() {
            if Timers::is_live(&self.slots, index, stamp) {
                assert!(live.insert(index, t).is_none(), "two live entries");
            }
        }
        if let Some(&Reverse((_, index, stamp))) = self.timers.heap.peek() {
            assert!(Timers::is_live(&self.slots, index, stamp), "stale top");
        }
        for id in self.iter_ids() {
            let e = self.entry(id).unwrap();
            if self.touched != Some(id) {
                assert_eq!(e.deadline, e.tcb.poll_timeout(), "deadline of {id:?}");
            } else {
                assert_eq!(e.deadline, None, "the touched one is not indexed");
            }
            assert_eq!(live.get(&id.index).copied(), e.deadline, "entry of {id:?}");
            assert_eq!(e.changed, self.changed.contains(&id), "changed {id:?}");
        }
        let brute = self
            .slots
            .iter()
            .filter_map(|s| s.entry.as_ref())
            .filter_map(|e| e.tcb.poll_timeout())
            .min();
        assert_eq!(self.poll_timeout(), brute);
        for (&port, l) in &self.listeners {
            let scan: FxHashSet<ConnId> = self
                .iter_ids()
                .filter(|&id| self.entry(id).unwrap().owner == Owner::Embryonic(port))
                .collect();
            assert_eq!(l.embryonic, scan, "half-open set of port {port}");
            let orphans = self
                .iter_ids()
                .filter(|&id| self.entry(id).unwrap().owner == Owner::Orphan)
                .count();
            assert_eq!(self.orphan_count, orphans, "orphan count");
            for &id in &l.queue {
                assert_eq!(self.entry(id).map(|e| e.owner), Some(Owner::Queued(port)));
            }
        }
    }

    /// What the walk over every slot would still find after
    /// `poll_transmit`: it must find nothing to send, nothing to reap
    /// and no event to queue.
    fn check_nothing_left(&mut self, now: Instant) {
        let count = self.connection_count();
        let events = self.event_queue.len();
        let mut buf = vec![0u8; 65_535];
        let mut sent = 0;
        for index in 0..self.slots.len() {
            self.dispatch_slot(
                now,
                index,
                &mut buf,
                output::Mode::Finish,
                &mut |_, _, _| sent += 1,
            );
        }
        assert_eq!(sent, 0, "output left behind by poll_transmit");
        assert_eq!(self.connection_count(), count, "reap left behind");
        assert_eq!(self.event_queue.len(), events, "events left behind");
        self.settle();
    }
}

#[test]
fn bookkeeping_matches_a_full_scan_under_random_traffic() {
    for seed in 0..6u64 {
        let mut a = StackConfig::new(Ipv4Addr::new(10, 0, 0, 1));
        a.seed = Some(seed);
        let mut b = StackConfig::new(Ipv4Addr::new(10, 0, 0, 2));
        b.seed = Some(seed + 100);
        let mut n = SimNet::new(a, b, Duration::from_millis(5));
        n.set_seed(seed);
        n.set_link(LinkConfig {
            loss: 0.1,
            reorder: 0.1,
            reorder_delay: Duration::from_millis(7),
            duplicate: 0.05,
            ..LinkConfig::new(Duration::from_millis(5))
        });
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for port in [80, 81] {
            n.b.listen(port, 3).unwrap();
        }
        let mut mine: Vec<ConnId> = Vec::new();
        let mut theirs: Vec<ConnId> = Vec::new();
        let mut buf = [0u8; 3000];
        for _ in 0..3000 {
            match rng.random_range(0..12) {
                0 | 1 => {
                    let port = [80, 81, 82][rng.random_range(0..3)];
                    let remote = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), port);
                    if let Ok(id) = n.a.connect(n.now(), remote) {
                        mine.push(id);
                    }
                }
                2 => {
                    while let Some(id) = n.b.accept(80 + rng.random_range(0..2)) {
                        theirs.push(id);
                    }
                }
                3..=8 if !(mine.is_empty() && theirs.is_empty()) => {
                    let pick = rng.random_range(0..mine.len() + theirs.len());
                    let (s, list, i) = if pick < mine.len() {
                        (&mut n.a, &mut mine, pick)
                    } else {
                        (&mut n.b, &mut theirs, pick - mine.len())
                    };
                    let id = list[i];
                    let op = rng.random_range(0..10);
                    if op == 9 {
                        s.release(id);
                        list.swap_remove(i);
                    } else if let Some(t) = s.tcb_mut(id) {
                        match op {
                            0..=3 => {
                                let len = rng.random_range(1..3000);
                                let _ = t.send(&buf[..len]);
                            }
                            4..=6 => {
                                let _ = t.recv(&mut buf);
                            }
                            7 => t.close(),
                            _ => t.abort(),
                        }
                        // Checked with the `&mut Tcb` just given back.
                        s.check_bookkeeping();
                    }
                }
                _ => {
                    if !n.step() {
                        continue;
                    }
                    let now = n.now();
                    n.a.check_nothing_left(now);
                    n.b.check_nothing_left(now);
                }
            }
            while n.a.poll_event().is_some() {}
            while n.b.poll_event().is_some() {}
            n.a.check_bookkeeping();
            n.b.check_bookkeeping();
        }
        // Everything is let go and the timers run out: nothing is left.
        for id in mine.drain(..) {
            n.a.release(id);
        }
        for id in theirs.drain(..) {
            n.b.release(id);
        }
        n.b.unlisten(80);
        n.b.unlisten(81);
        let mut steps = 0;
        while n.step() {
            steps += 1;
            assert!(steps < 100_000, "never settles");
            n.a.check_bookkeeping();
            n.b.check_bookkeeping();
        }
        let left: Vec<State> =
            n.a.connection_states()
                .chain(n.b.connection_states())
                .collect();
        // An orphan in FIN-WAIT-2 whose peer's FIN or RST was lost waits
        // forever: the TCB has no FIN-WAIT-2 timer (the walk over every
        // slot, `check_nothing_left`, would not reap it either).
        assert!(
            left.iter().all(|&s| s == State::FinWait2),
            "seed {seed}: left {left:?}"
        );
        assert!(n.a.timers.heap.len() <= 1024);
    }
}
