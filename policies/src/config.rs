//! [`PolicyConfig`]: the timing and evaluation settings of the policy store
//! and of every holder of snapshots.

use std::time::Duration;

/// Timing and evaluation settings. The defaults are the product's.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// How long a write waits for every member to confirm it applied it.
    pub confirm_timeout: Duration,
    /// How long after the start of its last linearizable barrier a node may
    /// decide from its applied state (and how long a write whose commit a
    /// member did not confirm waits before answering).
    pub local_bound: Duration,
    /// Evaluate only the policies that can apply to a request (the index);
    /// off evaluates the whole set, for comparison.
    pub sliced: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            confirm_timeout: Duration::from_secs(1),
            local_bound: Duration::from_millis(1500),
            sliced: true,
        }
    }
}
