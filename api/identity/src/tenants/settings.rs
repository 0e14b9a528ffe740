//! A tenant's settings: what an administrator may change of the tenant's
//! token and session lifetimes, lockout, password policy, signing
//! algorithms, consent default and quotas (`PATCH /admin/v1/tenants/{t}`
//! `settings`).
//!
//! Every setting is optional in the record: unset means the node's
//! default (the server's configuration, which tests shorten). A patch sets
//! the keys it names, and `null` returns a key to the default. Every value
//! is checked against the bounds below, and a refusal names the field.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::keys::SigningAlg;

/// The settings of one tenant, as stored in its record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_lifetime_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_lifetime_secs: Option<u64>,
    /// A refresh token is renewed on every use and ends after this long
    /// unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_idle_lifetime_secs: Option<u64>,
    /// How long a refresh family may be renewed from the grant that opened
    /// it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_absolute_lifetime_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_idle_timeout_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_absolute_lifetime_secs: Option<u64>,
    /// Failed attempts at an account's secrets within the window that lock
    /// it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockout_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockout_window_secs: Option<u64>,
    /// How long a locked account stays locked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockout_duration_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_min_length: Option<u32>,
    /// Refuse the common passwords of the built-in list (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_block_common: Option<bool>,
    /// More passwords to refuse (compared case-insensitively), such as the
    /// company's name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub password_blocklist: Vec<String>,
    /// The algorithms the tenant signs tokens with; unset: every one the
    /// server has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_algorithms: Option<Vec<SigningAlg>>,
    /// `require_consent` of a client registered without saying (default
    /// `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_required_by_default: Option<bool>,
    /// At most this many users; unset: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_users: Option<u64>,
    /// At most this many OAuth clients; unset: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_clients: Option<u64>,
    /// Days an audit event is kept (default 90); applies to events
    /// recorded after a change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_retention_days: Option<u64>,
}

/// A refused setting: the field (`settings.<name>`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct SettingsError {
    pub field: String,
    pub reason: String,
}

fn refuse(name: &str, reason: impl Into<String>) -> SettingsError {
    SettingsError {
        field: format!("settings.{name}"),
        reason: reason.into(),
    }
}

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// Bounds of the lifetimes, in seconds.
pub const ACCESS_TOKEN_LIFETIME: (u64, u64) = (MINUTE, DAY);
pub const ID_TOKEN_LIFETIME: (u64, u64) = (MINUTE, DAY);
pub const REFRESH_IDLE_LIFETIME: (u64, u64) = (5 * MINUTE, 365 * DAY);
pub const REFRESH_ABSOLUTE_LIFETIME: (u64, u64) = (
    5 * MINUTE,
    crate::clients::MAX_REFRESH_ABSOLUTE_LIFETIME_SECS,
);
pub const SESSION_IDLE_TIMEOUT: (u64, u64) = (MINUTE, 30 * DAY);
pub const SESSION_ABSOLUTE_LIFETIME: (u64, u64) = (5 * MINUTE, 365 * DAY);
pub const LOCKOUT_THRESHOLD: (u64, u64) = (1, 100);
pub const LOCKOUT_WINDOW: (u64, u64) = (MINUTE, DAY);
pub const LOCKOUT_DURATION: (u64, u64) = (MINUTE, DAY);
/// The floor is the server's own minimum: a tenant can only ask for more.
pub const PASSWORD_MIN_LENGTH: (u64, u64) = (crate::passwords::MIN_PASSWORD_LEN as u64, 128);
pub const QUOTA: (u64, u64) = (1, 1_000_000_000);
/// Bounds of the audit retention, in days.
pub const AUDIT_RETENTION_DAYS: (u64, u64) = (1, 3650);
/// At most this many entries of at most 128 characters in
/// `password_blocklist`.
pub const MAX_BLOCKLIST: usize = 10_000;

/// Every setting's name, in the order of the record.
pub const NAMES: [&str; 17] = [
    "access_token_lifetime_secs",
    "id_token_lifetime_secs",
    "refresh_token_idle_lifetime_secs",
    "refresh_token_absolute_lifetime_secs",
    "session_idle_timeout_secs",
    "session_absolute_lifetime_secs",
    "lockout_threshold",
    "lockout_window_secs",
    "lockout_duration_secs",
    "password_min_length",
    "password_block_common",
    "password_blocklist",
    "signing_algorithms",
    "consent_required_by_default",
    "max_users",
    "max_clients",
    "audit_retention_days",
];

/// A whole number in `bounds` or `null`.
fn number(name: &str, value: &Value, (lo, hi): (u64, u64)) -> Result<Option<u64>, SettingsError> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_u64() {
            Some(v) if (lo..=hi).contains(&v) => Ok(Some(v)),
            _ => Err(refuse(
                name,
                format!("must be a whole number from {lo} to {hi} (or null for the default)"),
            )),
        },
        _ => Err(refuse(
            name,
            format!("must be a whole number from {lo} to {hi} (or null for the default)"),
        )),
    }
}

fn boolean(name: &str, value: &Value) -> Result<Option<bool>, SettingsError> {
    match value {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        _ => Err(refuse(name, "must be true, false or null")),
    }
}

fn blocklist(name: &str, value: &Value) -> Result<Vec<String>, SettingsError> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(refuse(name, "must be an array of strings (or null)")),
    };
    if items.len() > MAX_BLOCKLIST {
        return Err(refuse(
            name,
            format!("holds at most {MAX_BLOCKLIST} entries"),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item.as_str() {
            Some(s) if !s.trim().is_empty() && s.chars().count() <= 128 => {
                out.push(s.trim().to_lowercase())
            }
            _ => {
                return Err(refuse(
                    name,
                    "entries are non-empty strings of at most 128 characters",
                ));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn algorithms(name: &str, value: &Value) -> Result<Option<Vec<SigningAlg>>, SettingsError> {
    let all = SigningAlg::ALL.map(SigningAlg::name).join(", ");
    let items = match value {
        Value::Null => return Ok(None),
        Value::Array(items) if !items.is_empty() => items,
        _ => {
            return Err(refuse(
                name,
                format!("must be a non-empty array of {all} (or null for all of them)"),
            ));
        }
    };
    let mut out = Vec::new();
    for item in items {
        let alg = item
            .as_str()
            .and_then(SigningAlg::parse)
            .ok_or_else(|| refuse(name, format!("{item} is not one of {all}")))?;
        if !out.contains(&alg) {
            out.push(alg);
        }
    }
    Ok(Some(out))
}

impl TenantSettings {
    /// These settings with `patch` applied: each key it names is set, and
    /// `null` returns it to the default. Every value is checked, and so is
    /// how they go together (an absolute lifetime is not shorter than the
    /// idle one).
    pub fn patched(&self, patch: &Map<String, Value>) -> Result<TenantSettings, SettingsError> {
        let mut s = self.clone();
        for (name, value) in patch {
            let n = name.as_str();
            match n {
                "access_token_lifetime_secs" => {
                    s.access_token_lifetime_secs = number(n, value, ACCESS_TOKEN_LIFETIME)?
                }
                "id_token_lifetime_secs" => {
                    s.id_token_lifetime_secs = number(n, value, ID_TOKEN_LIFETIME)?
                }
                "refresh_token_idle_lifetime_secs" => {
                    s.refresh_token_idle_lifetime_secs = number(n, value, REFRESH_IDLE_LIFETIME)?
                }
                "refresh_token_absolute_lifetime_secs" => {
                    s.refresh_token_absolute_lifetime_secs =
                        number(n, value, REFRESH_ABSOLUTE_LIFETIME)?
                }
                "session_idle_timeout_secs" => {
                    s.session_idle_timeout_secs = number(n, value, SESSION_IDLE_TIMEOUT)?
                }
                "session_absolute_lifetime_secs" => {
                    s.session_absolute_lifetime_secs = number(n, value, SESSION_ABSOLUTE_LIFETIME)?
                }
                "lockout_threshold" => {
                    s.lockout_threshold = number(n, value, LOCKOUT_THRESHOLD)?.map(|v| v as u32)
                }
                "lockout_window_secs" => s.lockout_window_secs = number(n, value, LOCKOUT_WINDOW)?,
                "lockout_duration_secs" => {
                    s.lockout_duration_secs = number(n, value, LOCKOUT_DURATION)?
                }
                "password_min_length" => {
                    s.password_min_length = number(n, value, PASSWORD_MIN_LENGTH)?.map(|v| v as u32)
                }
                "password_block_common" => s.password_block_common = boolean(n, value)?,
                "password_blocklist" => s.password_blocklist = blocklist(n, value)?,
                "signing_algorithms" => s.signing_algorithms = algorithms(n, value)?,
                "consent_required_by_default" => s.consent_required_by_default = boolean(n, value)?,
                "max_users" => s.max_users = number(n, value, QUOTA)?,
                "max_clients" => s.max_clients = number(n, value, QUOTA)?,
                "audit_retention_days" => {
                    s.audit_retention_days = number(n, value, AUDIT_RETENTION_DAYS)?
                }
                _ => {
                    return Err(refuse(
                        n,
                        format!("is not a setting; the settings are {}", NAMES.join(", ")),
                    ));
                }
            }
        }
        for (absolute, idle, a, i) in [
            (
                "refresh_token_absolute_lifetime_secs",
                "refresh_token_idle_lifetime_secs",
                s.refresh_token_absolute_lifetime_secs,
                s.refresh_token_idle_lifetime_secs,
            ),
            (
                "session_absolute_lifetime_secs",
                "session_idle_timeout_secs",
                s.session_absolute_lifetime_secs,
                s.session_idle_timeout_secs,
            ),
        ] {
            if let (Some(a), Some(i)) = (a, i)
                && a < i
            {
                return Err(refuse(
                    absolute,
                    format!("must not be shorter than {idle} ({i})"),
                ));
            }
        }
        Ok(s)
    }

    /// The password rule of the tenant.
    pub fn password_policy(&self) -> PasswordPolicy<'_> {
        PasswordPolicy {
            min_length: self
                .password_min_length
                .map(|n| n as usize)
                .unwrap_or(crate::passwords::MIN_PASSWORD_LEN),
            block_common: self.password_block_common.unwrap_or(true),
            blocklist: &self.password_blocklist,
        }
    }

    /// Whether the tenant signs with `alg`.
    pub fn allows_alg(&self, alg: SigningAlg) -> bool {
        self.signing_algorithms
            .as_ref()
            .is_none_or(|algs| algs.contains(&alg))
    }

    /// The algorithms the tenant signs with, in the server's order.
    pub fn algorithms(&self) -> Vec<SigningAlg> {
        SigningAlg::ALL
            .into_iter()
            .filter(|a| self.allows_alg(*a))
            .collect()
    }

    /// What a client registered without an ID token algorithm gets: ES256,
    /// or the first algorithm the tenant allows.
    pub fn default_alg(&self) -> SigningAlg {
        if self.allows_alg(SigningAlg::ES256) {
            SigningAlg::ES256
        } else {
            self.algorithms()[0]
        }
    }
}

/// The common passwords refused by default: the most used ones of public
/// breach corpora, lowercase, one per line.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

fn is_common(lowercase: &str) -> bool {
    COMMON_PASSWORDS.lines().any(|line| line == lowercase)
}

/// A tenant's rule for new passwords.
#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy<'a> {
    pub min_length: usize,
    pub block_common: bool,
    pub blocklist: &'a [String],
}

impl PasswordPolicy<'_> {
    /// Check a new password; the reason is safe to show (it never repeats
    /// the password).
    pub fn check(&self, password: &str, username: Option<&str>) -> Result<(), String> {
        let len = password.chars().count();
        if len < self.min_length {
            return Err(format!(
                "passwords in this tenant are at least {} characters",
                self.min_length
            ));
        }
        let lower = password.to_lowercase();
        if self.block_common && is_common(&lower) {
            return Err("this password is one of the most common ones; choose another".into());
        }
        if self.blocklist.binary_search(&lower).is_ok() {
            return Err("this password is refused by the tenant's blocklist".into());
        }
        if username.is_some_and(|u| u.to_lowercase() == lower) {
            return Err("the password must not be the username".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_patch_sets_what_it_names_and_null_returns_to_the_default() {
        let s = TenantSettings::default()
            .patched(&patch(
                json!({"access_token_lifetime_secs": 300, "max_users": 10}),
            ))
            .unwrap();
        assert_eq!(s.access_token_lifetime_secs, Some(300));
        assert_eq!(s.max_users, Some(10));
        let s = s
            .patched(&patch(json!({"access_token_lifetime_secs": null})))
            .unwrap();
        assert_eq!(s.access_token_lifetime_secs, None);
        assert_eq!(s.max_users, Some(10));
    }

    #[test]
    fn every_name_is_a_setting_and_an_unknown_one_is_refused_by_name() {
        for name in NAMES {
            let e = TenantSettings::default()
                .patched(&patch(json!({ name: "not a value" })))
                .unwrap_err();
            assert_eq!(e.field, format!("settings.{name}"));
        }
        let e = TenantSettings::default()
            .patched(&patch(json!({"access_token_ttl": 60})))
            .unwrap_err();
        assert_eq!(e.field, "settings.access_token_ttl");
    }

    #[test]
    fn bounds_and_combinations_are_checked() {
        let base = TenantSettings::default();
        for bad in [
            json!({"access_token_lifetime_secs": 59}),
            json!({"access_token_lifetime_secs": 86401}),
            json!({"access_token_lifetime_secs": -1}),
            json!({"access_token_lifetime_secs": 1.5}),
            json!({"password_min_length": 7}),
            json!({"lockout_threshold": 0}),
            json!({"signing_algorithms": []}),
            json!({"signing_algorithms": ["HS256"]}),
            json!({"password_blocklist": [""]}),
            json!({"session_idle_timeout_secs": 7200, "session_absolute_lifetime_secs": 3600}),
        ] {
            assert!(base.patched(&patch(bad.clone())).is_err(), "{bad}");
        }
        let s = base
            .patched(&patch(json!({"signing_algorithms": ["RS256", "RS256"]})))
            .unwrap();
        assert_eq!(s.algorithms(), vec![SigningAlg::RS256]);
        assert_eq!(s.default_alg(), SigningAlg::RS256);
    }

    #[test]
    fn the_password_policy_refuses_short_common_listed_and_username_passwords() {
        let s = TenantSettings::default()
            .patched(&patch(
                json!({"password_min_length": 12, "password_blocklist": ["AcmeCorp2026!"]}),
            ))
            .unwrap();
        let p = s.password_policy();
        assert!(p.check("short-pass", None).is_err());
        assert!(p.check("acmecorp2026!", None).is_err());
        assert!(p.check("a much longer passphrase", Some("bob")).is_ok());
        assert!(p.check("bob-the-builder", Some("Bob-The-Builder")).is_err());
        let default = TenantSettings::default();
        assert!(default.password_policy().check("password", None).is_err());
        assert!(default.password_policy().check("Password1", None).is_err());
        assert!(
            default
                .password_policy()
                .check("correct horse", None)
                .is_ok()
        );
        let off = default
            .patched(&patch(json!({"password_block_common": false})))
            .unwrap();
        assert!(off.password_policy().check("password", None).is_ok());
    }

    #[test]
    fn the_stored_record_round_trips_and_defaults_take_no_room() {
        assert_eq!(
            serde_json::to_string(&TenantSettings::default()).unwrap(),
            "{}"
        );
        let s = TenantSettings::default()
            .patched(&patch(
                json!({"signing_algorithms": ["EdDSA"], "lockout_threshold": 3}),
            ))
            .unwrap();
        let back: TenantSettings =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
