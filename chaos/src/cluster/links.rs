//! Link faults of a [`Cluster`]: partitions, isolation, bridges, latency,
//! loss, all through the proxies on the directed peer links.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow, ensure};

use super::{Cluster, Link, read};
use crate::proxy::{LinkFaults, LinkProxy};

impl Cluster {
    /// The proxy of the directed link `from -> to`.
    pub fn link(&self, from: u64, to: u64) -> Option<Arc<LinkProxy>> {
        read(&self.proxies).get(&(from, to)).cloned()
    }

    fn all_links(&self) -> Result<Vec<(Link, Arc<LinkProxy>)>> {
        ensure!(
            self.spec.proxies,
            "this cluster was started without proxies"
        );
        Ok(read(&self.proxies)
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect())
    }

    /// Sets the faults of one directed link.
    pub fn set_link(&self, from: u64, to: u64, faults: LinkFaults) -> Result<()> {
        let proxy = self
            .link(from, to)
            .ok_or_else(|| anyhow!("no proxy for link {from} -> {to}"))?;
        proxy.set_faults(faults);
        Ok(())
    }

    /// Changes every link with `f(from, to, faults)`.
    pub fn update_links(&self, mut f: impl FnMut(u64, u64, &mut LinkFaults)) -> Result<()> {
        for ((from, to), proxy) in self.all_links()? {
            proxy.update_faults(|faults| f(from, to, faults));
        }
        Ok(())
    }

    /// Links between different groups go down, links inside a group come up.
    /// A started node in no group is cut off from everyone; links of ids not
    /// started yet (spare proxies) are left alone. Other faults (latency,
    /// loss) are kept.
    pub fn partition(&self, groups: &[&[u64]]) -> Result<()> {
        let started = self.ids();
        let group_of = |id: u64| groups.iter().position(|g| g.contains(&id));
        self.update_links(|from, to, faults| {
            if started.contains(&from) && started.contains(&to) {
                faults.down = match (group_of(from), group_of(to)) {
                    (Some(a), Some(b)) => a != b,
                    _ => true,
                };
            }
        })
    }

    /// Cuts every link to and from `id`; other links are left as they are.
    pub fn isolate(&self, id: u64) -> Result<()> {
        self.update_links(|from, to, faults| {
            if from == id || to == id {
                faults.down = true;
            }
        })
    }

    /// Two sides that only `bridge` connects: links between `a` and `b` go
    /// down, every other link comes up.
    pub fn bridge(&self, a: &[u64], bridge: u64, b: &[u64]) -> Result<()> {
        self.update_links(|from, to, faults| {
            let across =
                (a.contains(&from) && b.contains(&to)) || (b.contains(&from) && a.contains(&to));
            faults.down = across && from != bridge && to != bridge;
        })
    }

    /// Every link back to healthy: up, no latency, no loss, no throttle.
    pub fn heal(&self) -> Result<()> {
        self.update_links(|_, _, faults| *faults = LinkFaults::healthy())
    }

    /// Adds `latency ± jitter` per chunk on every link.
    pub fn set_latency(&self, latency: Duration, jitter: Duration) -> Result<()> {
        self.update_links(|_, _, faults| {
            faults.latency = latency;
            faults.jitter = jitter;
        })
    }

    /// Emulated loss probability on every link (see [`LinkFaults::loss`]).
    pub fn set_loss(&self, probability: f64) -> Result<()> {
        self.update_links(|_, _, faults| faults.loss = probability)
    }
}
