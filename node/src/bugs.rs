//! `RSP_INJECT_BUGS`: the deliberate bugs a node can be told to have, so
//! that the Jepsen checkers can be shown to catch them, split between the
//! crates that act on them (consensus: `stale-reads`, `ack-before-commit`,
//! `skip-log-sync`; identity: `double-redeem-codes`).
//!
//! Only a build with the cargo feature `bug-injection` (what the chaos and
//! Jepsen test builds use) accepts a bug; any other build refuses a
//! non-empty list at start-up.

use rsp_identity::oauth::InjectedOAuthBugs;

/// The bugs of one node, for the layers that act on them.
#[derive(Debug, Clone, Copy, Default)]
pub struct InjectedBugs {
    pub consensus: rsp_consensus::InjectedBugs,
    pub oauth: InjectedOAuthBugs,
}

impl InjectedBugs {
    /// Parse a comma-separated list of bug names (empty: none).
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut bugs = InjectedBugs::default();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !bugs.enable(name) {
                return Err(if cfg!(feature = "bug-injection") {
                    format!("unknown bug `{name}`; known: {}", known().join(", "))
                } else {
                    "this build of rsp has no bug injection (a test-only feature: build with `--features bug-injection`)".to_string()
                });
            }
        }
        Ok(bugs)
    }

    #[cfg(feature = "bug-injection")]
    fn enable(&mut self, name: &str) -> bool {
        self.consensus.enable(name) || self.oauth.enable(name)
    }

    #[cfg(not(feature = "bug-injection"))]
    fn enable(&mut self, _name: &str) -> bool {
        false
    }

    pub fn any(&self) -> bool {
        self.consensus.any() || self.oauth.any()
    }
}

fn known() -> Vec<&'static str> {
    let mut names = rsp_consensus::InjectedBugs::NAMES.to_vec();
    names.extend(InjectedOAuthBugs::NAMES);
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_list_means_no_bugs_and_an_unknown_name_is_refused() {
        assert!(!InjectedBugs::parse("").expect("empty").any());
        assert!(!InjectedBugs::parse(" , ").expect("blank").any());
        assert!(InjectedBugs::parse("eat-data").is_err());
    }

    #[cfg(feature = "bug-injection")]
    #[test]
    fn a_test_build_sends_each_bug_to_its_layer() {
        let bugs = InjectedBugs::parse("stale-reads, double-redeem-codes").expect("known");
        assert!(bugs.consensus.stale_reads() && bugs.oauth.double_redeem_codes());
        assert!(!bugs.consensus.skip_log_sync());
    }

    #[cfg(not(feature = "bug-injection"))]
    #[test]
    fn a_build_without_the_feature_refuses_every_bug() {
        for name in known() {
            let e = InjectedBugs::parse(name).expect_err(name);
            assert!(e.contains("no bug injection"), "{e}");
        }
    }
}
