//! [`Shards`]: one [`NetStack`] per queue of a multi-queue TUN device.

use std::io;
use std::sync::Arc;

use crate::device::shard::{ShardSet, ShardStats};
use crate::device::tun::{TunDevice, TunOptions};
use crate::device::Device;
use crate::stack::StackConfig;

use super::runtime::{NetStack, RuntimeOptions};

/// The stacks of a multi-queue TUN device: shard `i` runs on queue `i`
/// with its own driver, connections and timers, and shares nothing with
/// the others but the address (see [`crate::device::shard`] for how the
/// kernel's packets find the shard of their connection).
///
/// A server listens on the same port on every shard (the kernel spreads
/// connections over the queues by a hash of their addresses and ports) and
/// serves each shard from its own thread; a client connects from any
/// shard. Connections stay in their shard; no lock is shared on the way of
/// a packet.
pub struct Shards {
    stacks: Vec<NetStack>,
    set: Arc<ShardSet>,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards")
            .field("count", &self.stacks.len())
            .field("steering", &self.set.stats())
            .finish()
    }
}

impl Shards {
    /// Attaches `queues` queues of the multi-queue TUN device `name`
    /// (`scripts/setup-tun.sh --multi-queue`) and runs one stack on each,
    /// all answering for `cfg.addr`, with `opts` (offload, driver,
    /// impairment) for each. `InvalidInput` for 0 or more than
    /// [`MAX_QUEUES`](crate::device::tun::MAX_QUEUES) queues.
    pub fn tun(
        name: &str,
        cfg: StackConfig,
        opts: RuntimeOptions,
        queues: usize,
    ) -> io::Result<Shards> {
        let tun_opts = TunOptions {
            offload: opts.offload,
            multi_queue: true,
        };
        let devices = ShardSet::devices(TunDevice::open_queues(name, tun_opts, queues)?)?;
        let set = devices
            .first()
            .map(|d| d.set().clone())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no queues"))?;
        let stacks = devices
            .into_iter()
            .map(|dev| {
                let mut cfg = cfg.clone();
                cfg.mtu = dev.mtu();
                cfg.shard = dev.shard();
                // Distinct seeds, so the shards do not pick the same ports
                // in the same order (they could not collide anyway).
                cfg.seed = cfg.seed.map(|s| s.wrapping_add(u64::from(cfg.shard.index)));
                NetStack::with_options(dev, cfg, opts.clone())
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Shards { stacks, set })
    }

    /// The stacks, shard 0 first.
    pub fn stacks(&self) -> &[NetStack] {
        &self.stacks
    }

    /// How many shards there are.
    pub fn len(&self) -> usize {
        self.stacks.len()
    }

    /// Always false: there is at least one shard.
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }

    /// Packets the shards passed to each other (see
    /// [`crate::device::shard`]).
    pub fn steering_stats(&self) -> ShardStats {
        self.set.stats()
    }
}
