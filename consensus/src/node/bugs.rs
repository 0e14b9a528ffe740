//! [`InjectedBugs`]: known consensus bugs a node can be told to have, so
//! that the Jepsen checkers can be shown to catch them. `ack-before-commit`
//! acts in the write path (`writes`), `stale-reads` in the read path
//! (`reads`), `skip-log-sync` in the log store's sync thread.
//!
//! Only a build with the cargo feature `bug-injection` (the test builds of
//! the chaos and Jepsen suites) can turn one on: without it there is no
//! way to set a bug, and every check below goes through [`rsp_bugs::armed`],
//! a constant `false` the compiler removes, so the release binary carries
//! no such switch (proven by `cargo test -p rsp-bugs`).

use super::Consensus;

/// Known consensus bugs a node can be told to have (`RSP_INJECT_BUGS`, read
/// by `rsp serve`). All off in normal operation, and always off in a build
/// without the `bug-injection` feature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InjectedBugs {
    stale_reads: bool,
    ack_before_commit: bool,
    skip_log_sync: bool,
}

impl InjectedBugs {
    /// The names of the bugs this crate can inject.
    pub const NAMES: [&'static str; 3] = ["stale-reads", "ack-before-commit", "skip-log-sync"];

    /// Whether this build can inject bugs at all.
    pub const AVAILABLE: bool = rsp_bugs::AVAILABLE;

    /// Turn on the bug named `name`; `false` when it is not one of
    /// [`Self::NAMES`].
    #[cfg(feature = "bug-injection")]
    pub fn enable(&mut self, name: &str) -> bool {
        match name {
            "stale-reads" => self.stale_reads = true,
            "ack-before-commit" => self.ack_before_commit = true,
            "skip-log-sync" => self.skip_log_sync = true,
            _ => return false,
        }
        true
    }

    /// Linearizable reads answered from local state without a read index.
    pub fn stale_reads(&self) -> bool {
        rsp_bugs::armed(self.stale_reads)
    }

    /// Writes answered as soon as they are proposed, before they commit.
    pub fn ack_before_commit(&self) -> bool {
        rsp_bugs::armed(self.ack_before_commit)
    }

    /// The log is never flushed or synced.
    pub fn skip_log_sync(&self) -> bool {
        rsp_bugs::armed(self.skip_log_sync)
    }

    pub fn any(&self) -> bool {
        self.stale_reads() || self.ack_before_commit() || self.skip_log_sync()
    }
}

impl Consensus {
    /// The deliberate bugs this node runs with (none in normal operation).
    pub fn injected_bugs(&self) -> InjectedBugs {
        self.inner.config.bugs
    }
}

#[cfg(all(test, feature = "bug-injection"))]
mod tests {
    use super::*;

    #[test]
    fn a_test_build_turns_on_exactly_the_named_bugs() {
        let mut bugs = InjectedBugs::default();
        assert!(!bugs.any());
        assert!(bugs.enable("stale-reads"));
        assert!(!bugs.enable("eat-data"));
        assert!(bugs.stale_reads() && !bugs.ack_before_commit() && !bugs.skip_log_sync());
    }
}
