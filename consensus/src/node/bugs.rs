//! [`InjectedBugs`]: known bugs a node can be told to have, so that the
//! Jepsen checkers can be shown to catch them. `ack-before-commit` acts in
//! the write path (`writes`), `stale-reads` in the read path (`reads`).

use super::Consensus;

/// Known bugs a node can be told to have, to prove that the Jepsen checkers
/// catch them (`RSP_INJECT_BUGS`). All off in normal operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InjectedBugs {
    /// Linearizable reads answered from local state without a read index.
    pub stale_reads: bool,
    /// Writes answered as soon as they are proposed, before they commit.
    pub ack_before_commit: bool,
    /// The log is never flushed or synced.
    pub skip_log_sync: bool,
    /// Authorization codes may be redeemed more than once.
    pub double_redeem_codes: bool,
}

impl InjectedBugs {
    pub const NAMES: [&'static str; 4] = [
        "stale-reads",
        "ack-before-commit",
        "skip-log-sync",
        "double-redeem-codes",
    ];

    /// Parse a comma-separated list of bug names.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut bugs = InjectedBugs::default();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "stale-reads" => bugs.stale_reads = true,
                "ack-before-commit" => bugs.ack_before_commit = true,
                "skip-log-sync" => bugs.skip_log_sync = true,
                "double-redeem-codes" => bugs.double_redeem_codes = true,
                other => {
                    return Err(format!(
                        "unknown bug `{other}`; known: {}",
                        Self::NAMES.join(", ")
                    ));
                }
            }
        }
        Ok(bugs)
    }

    pub fn any(&self) -> bool {
        *self != InjectedBugs::default()
    }
}

impl Consensus {
    /// The deliberate bugs this node runs with (none in normal operation).
    pub fn injected_bugs(&self) -> InjectedBugs {
        self.inner.config.bugs
    }
}
