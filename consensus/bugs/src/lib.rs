//! The one switch of rsp's deliberate bugs (`RSP_INJECT_BUGS`), which the
//! Jepsen checkers are proven against: the consensus bugs (`stale-reads`,
//! `ack-before-commit`, `skip-log-sync`) and the OAuth one
//! (`double-redeem-codes`) are each checked through [`armed`].
//!
//! A bug acts only when this crate is built with its `enabled` feature,
//! which `rsp-consensus/bug-injection` and `rsp-identity/bug-injection`
//! turn on, and only the test builds of the chaos and Jepsen suites ask
//! for. In any other build [`armed`] is a constant `false`, whatever flag
//! it is given, and the compiler removes the bug's code path: the release
//! binary carries no switch.

/// Whether this build can inject bugs at all.
pub const AVAILABLE: bool = cfg!(feature = "enabled");

/// Whether a bug whose flag is `flag` acts: never in a build without the
/// `enabled` feature.
#[inline(always)]
pub const fn armed(flag: bool) -> bool {
    AVAILABLE && flag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "enabled"))]
    #[test]
    fn a_build_without_the_feature_arms_no_bug() {
        const { assert!(!AVAILABLE) };
        // Even a flag set by hand (as a memory corruption or a future
        // constructor might) arms nothing.
        assert!(!armed(true));
        assert!(!armed(false));
    }

    #[cfg(feature = "enabled")]
    #[test]
    fn a_test_build_arms_exactly_the_flags_that_are_set() {
        assert!(armed(true));
        assert!(!armed(false));
    }
}
