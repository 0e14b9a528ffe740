//! The crate's one error type. The API maps it to HTTP once, at its edge:
//! `Invalid` is the caller's mistake (400 with Cedar's diagnostics),
//! `NotFound` a 404, `Consensus` whatever the replicated store said, and
//! `Corrupt` our own bug (500, detail in the log).

use rsp_consensus::ConsensusError;

use crate::diagnostics::Diagnostic;

/// Stable codes for refused input (the `error` field of a 400).
pub mod codes {
    /// Policy text that does not parse or does not validate.
    pub const INVALID_POLICIES: &str = "invalid_policies";
    /// A schema that Cedar cannot read.
    pub const INVALID_SCHEMA: &str = "invalid_schema";
    /// Entities that do not parse or do not conform to the schema.
    pub const INVALID_ENTITIES: &str = "invalid_entities";
    /// A template link that names no template, misses a slot, or clashes.
    pub const INVALID_LINK: &str = "invalid_link";
    /// A decision request Cedar cannot evaluate (bad entity uid, context
    /// that does not match the schema, ...).
    pub const INVALID_REQUEST: &str = "invalid_request";
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        diagnostics: Vec<Diagnostic>,
    },
    #[error("{0}")]
    NotFound(String),
    /// Concurrent writers kept changing the policy store; try again.
    #[error("the policy store changed while this write was prepared; retry")]
    Conflict,
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
    #[error("stored policy record is unreadable: {0}")]
    Corrupt(String),
}

impl PolicyError {
    pub fn invalid(
        code: &'static str,
        message: impl Into<String>,
        diagnostics: Vec<Diagnostic>,
    ) -> Self {
        PolicyError::Invalid {
            code,
            message: message.into(),
            diagnostics,
        }
    }

    /// A refused request with one diagnostic carrying `message`.
    pub fn invalid_one(code: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        PolicyError::Invalid {
            code,
            diagnostics: vec![Diagnostic::message(message.clone())],
            message,
        }
    }

    pub fn corrupt(e: impl std::fmt::Display) -> Self {
        PolicyError::Corrupt(e.to_string())
    }
}
