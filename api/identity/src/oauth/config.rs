//! Lifetimes and timing of the OAuth protocol objects.

use std::time::Duration;

/// Lifetimes and timing of the protocol objects. The defaults are the
/// product's; tests shorten some of them.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// Authorization codes (RFC 6749 recommends at most 10 minutes).
    pub code_ttl: Duration,
    /// Access and ID tokens.
    pub access_ttl: Duration,
    /// Refresh tokens and their family, renewed on every rotation (the
    /// idle lifetime).
    pub refresh_ttl: Duration,
    /// How long a refresh family may be renewed from the grant that opened
    /// it, for clients that set no `refresh_token_absolute_lifetime_secs`.
    pub refresh_absolute_lifetime: Duration,
    /// Device authorization requests (RFC 8628 `expires_in`).
    pub device_ttl: Duration,
    /// Minimum polling interval of the device flow.
    pub device_interval: Duration,
    /// Pushed authorization requests (RFC 9126 `expires_in`).
    pub par_ttl: Duration,
    /// How long a revocation waits for every node to have applied it.
    pub revocation_wait: Duration,
    /// Longest lifetime (`exp - now`) accepted for a `private_key_jwt`
    /// client assertion.
    pub max_assertion_lifetime: Duration,
    /// Deliberate bugs for checker tests; none unless the build has the
    /// `bug-injection` feature and the node was told to.
    pub bugs: InjectedOAuthBugs,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            code_ttl: Duration::from_secs(60),
            access_ttl: Duration::from_secs(600),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_absolute_lifetime: Duration::from_secs(30 * 24 * 3600),
            device_ttl: Duration::from_secs(600),
            device_interval: Duration::from_secs(5),
            par_ttl: Duration::from_secs(60),
            revocation_wait: Duration::from_secs(1),
            // Some client libraries (authlib) sign assertions for an hour.
            max_assertion_lifetime: Duration::from_secs(3600),
            bugs: InjectedOAuthBugs::default(),
        }
    }
}

/// Known OAuth bugs a node can be told to have (`RSP_INJECT_BUGS`), so the
/// Jepsen `codes` checker can be shown to catch them. Only a build with the
/// cargo feature `bug-injection` can turn one on; without it every check is
/// a constant `false`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InjectedOAuthBugs {
    double_redeem_codes: bool,
}

impl InjectedOAuthBugs {
    /// The names of the bugs this crate can inject.
    pub const NAMES: [&'static str; 1] = ["double-redeem-codes"];

    /// Turn on the bug named `name`; `false` when it is not one of
    /// [`Self::NAMES`].
    #[cfg(feature = "bug-injection")]
    pub fn enable(&mut self, name: &str) -> bool {
        match name {
            "double-redeem-codes" => self.double_redeem_codes = true,
            _ => return false,
        }
        true
    }

    /// Authorization codes may be redeemed more than once: no single-use
    /// check and no compare on the code record.
    pub fn double_redeem_codes(&self) -> bool {
        rsp_bugs::armed(self.double_redeem_codes)
    }

    pub fn any(&self) -> bool {
        self.double_redeem_codes()
    }
}

#[cfg(all(test, feature = "bug-injection"))]
mod tests {
    use super::*;

    #[test]
    fn a_test_build_turns_on_the_named_bug_only() {
        let mut bugs = InjectedOAuthBugs::default();
        assert!(!bugs.enable("stale-reads"));
        assert!(!bugs.any());
        assert!(bugs.enable("double-redeem-codes"));
        assert!(bugs.double_redeem_codes());
    }
}
