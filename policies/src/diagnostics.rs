//! Cedar's diagnostics as plain data: every parse, validation, schema,
//! entity and evaluation error Cedar reports becomes a [`Diagnostic`] that
//! the API returns as JSON (message, the policy it concerns, Cedar's help
//! text and the source ranges it points at).

use serde::Serialize;

/// One problem Cedar found, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub message: String,
    /// The policy or template the problem is in, when Cedar names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// Cedar's suggestion, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Byte ranges in the submitted text (policies) that the problem is at.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_ranges: Vec<SourceRange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRange {
    pub start: usize,
    pub end: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with only a message (for problems found outside Cedar).
    pub fn message(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            policy_id: None,
            help: None,
            source_ranges: Vec::new(),
        }
    }

    /// From any of Cedar's errors (they are all `miette` diagnostics). The
    /// message includes the error's causes, so nested schema and entity
    /// errors are not reduced to their outer summary.
    pub fn from_cedar(d: &dyn miette::Diagnostic) -> Self {
        let mut message = d.to_string();
        let mut source = std::error::Error::source(d);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        let source_ranges = d
            .labels()
            .map(|labels| {
                labels
                    .map(|l| SourceRange {
                        start: l.offset(),
                        end: l.offset() + l.len(),
                        label: l.label().map(str::to_string),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Diagnostic {
            message,
            policy_id: None,
            help: d.help().map(|h| h.to_string()),
            source_ranges,
        }
    }

    pub fn with_policy(mut self, id: impl Into<String>) -> Self {
        self.policy_id = Some(id.into());
        self
    }
}

/// Every error of a `ParseErrors` (Cedar's `Display` shows only the first).
pub fn parse_errors(e: &cedar_policy::ParseErrors) -> Vec<Diagnostic> {
    e.iter().map(|p| Diagnostic::from_cedar(p)).collect()
}
