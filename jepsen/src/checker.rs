//! Checkers: they read a history and decide whether it is valid.
//!
//! - [`linear`]: the generic linearizability search (Wing–Gong / Lowe with
//!   Porcupine's memoization) over a [`linear::Model`];
//! - [`register`]: the register model and the per-key check of the
//!   `register` workload;
//! - [`set`]: lost, stale and phantom elements of the `set` workload;
//! - [`codes`]: each authorization code redeemed at most once;
//! - [`refresh`]: no refresh token rotated twice, none accepted after reuse
//!   was detected;
//! - [`sessions`]: no session accepted after its revoke was acknowledged;
//! - [`lockout`]: checked login attempts per user within the bound;
//! - [`create_use`]: nothing "not found" after its creation was
//!   acknowledged.
//!
//! Every checker answers a [`CheckResult`] with a three-way [`Validity`]:
//! `unknown` is an honest answer when a budget ran out or the history
//! lacks what the checker needs.

pub mod codes;
pub mod create_use;
pub mod linear;
pub mod lockout;
pub mod refresh;
pub mod register;
pub mod sessions;
pub mod set;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validity {
    Valid,
    Invalid,
    Unknown,
}

impl Validity {
    /// The process exit code: 0 valid, 1 anomalies, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 2,
        }
    }

    /// Invalid wins over unknown, unknown over valid.
    pub fn merge(self, other: Validity) -> Validity {
        use Validity::*;
        match (self, other) {
            (Invalid, _) | (_, Invalid) => Invalid,
            (Unknown, _) | (_, Unknown) => Unknown,
            _ => Valid,
        }
    }
}

/// What one checker concluded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    pub checker: String,
    pub valid: Validity,
    /// One line for people.
    pub summary: String,
    /// Checker-specific figures and examples.
    pub details: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_wins_then_unknown() {
        use Validity::*;
        assert_eq!(Valid.merge(Unknown), Unknown);
        assert_eq!(Unknown.merge(Invalid), Invalid);
        assert_eq!(Valid.merge(Valid), Valid);
        assert_eq!(Invalid.exit_code(), 1);
    }
}
