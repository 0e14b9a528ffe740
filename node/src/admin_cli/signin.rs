//! `rsp admin factors|sessions|mfa-policy|keys ...`: what stands behind a
//! sign-in: second factors, browser sessions, the MFA policy, signing keys.

use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::{Value, json};

use super::call::insert;
use super::call::{Body, Call, View, tenant_path};
use super::exit::CliResult;
use super::http::Api;
use super::inputs::secret_from_stdin;
use super::tenancy::TenantArg;

#[derive(Subcommand, Debug)]
pub enum Factors {
    /// List a user's second factors (never a secret)
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        user: String,
    },
    /// Import a TOTP seed (base32, read from stdin), e.g. from another IdP
    Import {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        user: String,
        /// Read the base32 seed from stdin (never from the command line)
        #[arg(long, required = true)]
        secret_stdin: bool,
        #[arg(long)]
        digits: Option<u8>,
        /// Seconds per code
        #[arg(long)]
        period: Option<u64>,
    },
    /// Delete one factor
    Delete {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        user: String,
        factor_id: String,
    },
    /// Delete every factor and recovery code of a user
    Reset {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        user: String,
    },
}

#[derive(Serialize)]
struct TotpImport<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    secret: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    digits: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<u64>,
}

impl Factors {
    pub fn run(self, api: &Api) -> CliResult<()> {
        let call = match self {
            Factors::List { tenant, user } => {
                Call::get(&tenant_path(&tenant.tenant, &["users", &user, "factors"])).list(
                    None,
                    &["id", "type", "name", "created_at_ms", "last_used_ms"],
                )
            }
            Factors::Import {
                tenant,
                user,
                digits,
                period,
                ..
            } => {
                let secret = secret_from_stdin("TOTP seed")?;
                let import = TotpImport {
                    kind: "totp",
                    secret: secret.trim(),
                    digits,
                    period,
                };
                let body = Body::secret(&import, secret.len())?;
                Call::post(
                    &tenant_path(&tenant.tenant, &["users", &user, "factors"]),
                    None,
                )
                .secret_body(body)
            }
            Factors::Delete {
                tenant,
                user,
                factor_id,
            } => Call::delete(
                &tenant_path(&tenant.tenant, &["users", &user, "factors", &factor_id]),
                format!("deleted factor {factor_id}"),
            ),
            Factors::Reset { tenant, user } => Call::delete(
                &tenant_path(&tenant.tenant, &["users", &user, "factors"]),
                format!("reset the factors of {user}"),
            ),
        };
        api.show(call)
    }
}

#[derive(Subcommand, Debug)]
pub enum Sessions {
    /// List a user's live browser sessions
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        user: String,
    },
    /// End one session (by its public id, the `sid` of ID tokens)
    Revoke {
        #[command(flatten)]
        tenant: TenantArg,
        session_id: String,
    },
    /// Sign a user out everywhere
    RevokeAll {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        user: String,
    },
}

impl Sessions {
    pub fn run(self, api: &Api) -> CliResult<()> {
        let call = match self {
            Sessions::List { tenant, user } => {
                Call::get(&tenant_path(&tenant.tenant, &["users", &user, "sessions"])).list(
                    None,
                    &[
                        "id",
                        "created_ms",
                        "last_seen_ms",
                        "expires_at_ms",
                        "amr",
                        "acr",
                    ],
                )
            }
            Sessions::Revoke { tenant, session_id } => {
                let path = tenant_path(&tenant.tenant, &["sessions", &session_id]);
                Call::delete(&path, format!("revoked session {session_id}")).view(View::Object)
            }
            Sessions::RevokeAll { tenant, user } => {
                let path = tenant_path(&tenant.tenant, &["users", &user, "sessions"]);
                Call::delete(&path, format!("signed {user} out")).view(View::Object)
            }
        };
        api.show(call)
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MfaMode {
    Optional,
    Required,
    Cedar,
}

#[derive(Subcommand, Debug)]
pub enum MfaPolicy {
    /// Show the tenant's MFA policy
    Get {
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Set the tenant's MFA policy
    Set {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long, value_enum)]
        mode: MfaMode,
    },
}

impl MfaPolicy {
    pub fn run(self, api: &Api) -> CliResult<()> {
        let call = match self {
            MfaPolicy::Get { tenant } => Call::get(&tenant_path(&tenant.tenant, &["mfa-policy"])),
            MfaPolicy::Set { tenant, mode } => {
                let mode = mode.to_possible_value().map(|v| v.get_name().to_owned());
                Call::put(
                    &tenant_path(&tenant.tenant, &["mfa-policy"]),
                    json!({ "mode": mode }),
                )
            }
        };
        api.show(call)
    }
}

#[derive(Subcommand, Debug)]
pub enum Keys {
    /// List the tenant's signing keys (never a private part)
    List {
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Publish new signing keys (every algorithm unless --alg)
    Rotate {
        #[command(flatten)]
        tenant: TenantArg,
        /// ES256, RS256 or EdDSA
        #[arg(long)]
        alg: Option<String>,
        /// Sign with the new key at once (for a key that may have leaked)
        #[arg(long)]
        immediate: bool,
    },
    /// Show the rotation schedule, or change the parts given
    Settings {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        rotation_days: Option<u64>,
        #[arg(long)]
        publish_hours: Option<u64>,
        #[arg(long)]
        retire_days: Option<u64>,
    },
}

impl Keys {
    pub fn run(self, api: &Api) -> CliResult<()> {
        let call = match self {
            Keys::List { tenant } => Call::get(&tenant_path(&tenant.tenant, &["keys"])).list(
                Some("items"),
                &["kid", "alg", "status", "activates_at_ms", "retires_at_ms"],
            ),
            Keys::Rotate {
                tenant,
                alg,
                immediate,
            } => {
                let mut body = json!({ "immediate": immediate });
                insert(&mut body, "alg", alg);
                Call::post(
                    &tenant_path(&tenant.tenant, &["keys", "rotate"]),
                    Some(body),
                )
            }
            Keys::Settings {
                tenant,
                rotation_days,
                publish_hours,
                retire_days,
            } => {
                let path = tenant_path(&tenant.tenant, &["keys", "settings"]);
                let changes = [
                    ("rotation_days", rotation_days),
                    ("publish_hours", publish_hours),
                    ("retire_days", retire_days),
                ];
                if changes.iter().all(|(_, v)| v.is_none()) {
                    return api.show(Call::get(&path));
                }
                // A PUT resets omitted fields to their defaults: change only
                // the fields given, on top of the current settings.
                let mut body = api.send(&Call::get(&path), &[])?.body.unwrap_or(json!({}));
                if !body.is_object() {
                    body = json!({});
                }
                for (key, value) in changes {
                    if let Some(v) = value {
                        body[key] = Value::from(v);
                    }
                }
                Call::put(&path, body)
            }
        };
        api.show(call)
    }
}
