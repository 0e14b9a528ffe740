//! When a sign-in must use a second factor, the `amr` / `acr` values that
//! say what was used, and the code a TOTP form carries ([`totp_code`]).
//! The ticket the second-factor steps carry is
//! [`crate::oidc::mfa_ticket`]'s.
//!
//! A second factor is needed when the user has one enrolled (always asked
//! for), when the request asks for it (`acr_values` containing
//! [`ACR_MFA`]), or when the tenant's MFA policy
//! ([`rsp_identity::mfa_policy`]) requires it: for everyone, or for the
//! users and clients its Cedar policies name (`Action::"mfa_required"`).
//! A user who must but has no factor is led to enrolment before any
//! session starts.
//!
//! `amr` values (RFC 8176): `pwd` for the password; `otp` for a TOTP code
//! (RFC 6238 is one of the specifications RFC 8176 names for `otp`);
//! `mfa` for a recovery code. A recovery code is a one-time secret from a
//! printed list, neither a generated one-time password (`otp` would make a
//! relying party believe an authenticator app was used) nor a knowledge
//! question (`kba`); `mfa` says truthfully that a second factor was used
//! without claiming which device. A passkey is `hwk` (a hardware-bound
//! key), with `user` when the authenticator verified the user (PIN or
//! biometrics): `["hwk", "user"]` alone, `["pwd", "hwk"]` as a second
//! factor. `acr` is [`ACR_MFA`] after any second factor or a passkey,
//! [`ACR_PASSWORD`] otherwise.

use std::collections::BTreeMap;
use std::time::Instant;

use rsp_policies::DecisionRequest;
use rsp_policies::cedar_policy::Decision;
use rsp_policies::evaluate::uid;

use crate::oidc::browser_session::Browser;
use crate::oidc::login_page::Continuation;
use crate::oidc::pages::PageError;
use crate::state::AppState;
use rsp_identity::mfa_policy::{MFA_ACTION, MfaMode};

/// `acr` of a password login, and of one with a second factor.
pub const ACR_PASSWORD: &str = "urn:rsp:acr:pwd";
pub const ACR_MFA: &str = "urn:rsp:acr:mfa";

pub const AMR_PASSWORD: &str = "pwd";
pub const AMR_TOTP: &str = "otp";
/// See the module documentation for why a recovery code is `mfa`.
pub const AMR_RECOVERY_CODE: &str = "mfa";
/// A passkey or security key (hardware-bound key).
pub const AMR_PASSKEY: &str = "hwk";
/// The authenticator verified the user (PIN, fingerprint, face).
pub const AMR_USER_VERIFIED: &str = "user";

/// The factor an `amr` value stands for, as `rsp_logins_by_factor_total`
/// names it; `None` for what is not a factor of its own (`user`).
pub fn factor_of_amr(amr: &str) -> Option<&'static str> {
    match amr {
        AMR_PASSWORD => Some("password"),
        AMR_TOTP => Some("totp"),
        AMR_RECOVERY_CODE => Some("recovery_code"),
        AMR_PASSKEY => Some("passkey"),
        _ => None,
    }
}

/// The code a TOTP form's `totp` field carries, spaces (as apps group the
/// digits) removed; `""` when absent.
pub fn totp_code(fields: &BTreeMap<String, String>) -> String {
    fields
        .get("totp")
        .map(|c| c.chars().filter(|c| !c.is_whitespace()).collect())
        .unwrap_or_default()
}

/// Whether `acr_values` (space-separated, in order of preference) asks for
/// a second factor: it names [`ACR_MFA`] and does not also accept
/// [`ACR_PASSWORD`] (values this provider does not know are ignored).
pub fn acr_requests_mfa(acr_values: Option<&str>) -> bool {
    acr_values.is_some_and(|v| {
        let mut values = v.split(' ');
        values.clone().any(|a| a == ACR_MFA) && !values.any(|a| a == ACR_PASSWORD)
    })
}

/// Whether the tenant's policy (or the request's `acr_values`) requires a
/// second factor for `user_id` signing in to `client_id`.
pub async fn required(
    state: &AppState,
    tenant: &str,
    user_id: &str,
    client_id: Option<&str>,
    acr_values: Option<&str>,
) -> Result<bool, PageError> {
    if acr_requests_mfa(acr_values) {
        return Ok(true);
    }
    let policy = state.identity.mfa_policy.get(tenant).await.map_err(|e| {
        tracing::warn!(error = %e, "MFA policy unavailable");
        PageError::unavailable(
            "Sign-in is briefly unavailable. Try again in a moment.",
            None,
        )
    })?;
    match policy.mode {
        MfaMode::Optional => Ok(false),
        MfaMode::Required => Ok(true),
        MfaMode::Cedar => Ok(cedar_requires(state, tenant, user_id, client_id).await),
    }
}

/// Whether signing in to `flow` needs a second factor: [`required`] for
/// the client the flow leads to (the authorization request's, or the
/// device code's) and the request's `acr_values`.
pub async fn required_for_flow(
    state: &AppState,
    browser: &Browser,
    user_id: &str,
    flow: &Continuation,
) -> Result<bool, PageError> {
    let (client_id, acr_values) = match flow {
        Continuation::Authorize { params } => (
            params.get("client_id").cloned(),
            params.get("acr_values").map(String::as_str),
        ),
        Continuation::Device { user_code } => (
            state
                .oidc
                .device
                .lookup(&browser.tenant.id, user_code)
                .await?
                .map(|d| d.client_id),
            None,
        ),
        Continuation::Account => (None, None),
        Continuation::Saml { request } => (
            Some(request.sp.clone()),
            request.wants_mfa.then_some(ACR_MFA),
        ),
    };
    required(
        state,
        &browser.tenant.id,
        user_id,
        client_id.as_deref(),
        acr_values,
    )
    .await
}

/// Ask the tenant's Cedar policies (none: deny, nobody named); an error (a
/// schema that refuses the request, an unreadable store...) requires the
/// factor: failing closed costs an enrolment, failing open a factor.
async fn cedar_requires(
    state: &AppState,
    tenant: &str,
    user_id: &str,
    client_id: Option<&str>,
) -> bool {
    let request = (|| {
        Ok::<_, rsp_policies::PolicyError>(DecisionRequest {
            principal: uid("User", user_id, "principal")?,
            action: uid("Action", MFA_ACTION, "action")?,
            resource: uid("Client", client_id.unwrap_or(""), "resource")?,
            context: None,
            entities: Vec::new(),
        })
    })();
    let outcome = match request {
        Ok(req) => {
            state
                .authz
                .policies
                .decide(tenant, &req, Instant::now())
                .await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(o) => {
            if !o.errors.is_empty() {
                tracing::warn!(tenant, errors = ?o.errors, "MFA policy evaluation errors");
            }
            o.decision == Decision::Allow
        }
        Err(e) => {
            tracing::warn!(tenant, error = %e, "MFA policy undecidable: requiring a second factor");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_values_ask_for_mfa_only_when_they_name_it() {
        assert!(acr_requests_mfa(Some("urn:rsp:acr:mfa")));
        assert!(acr_requests_mfa(Some("urn:other urn:rsp:acr:mfa")));
        assert!(!acr_requests_mfa(Some("urn:rsp:acr:mfa urn:rsp:acr:pwd")));
        assert!(!acr_requests_mfa(Some("urn:rsp:acr:pwd")));
        assert!(!acr_requests_mfa(Some("urn:rsp:acr:mfax")));
        assert!(!acr_requests_mfa(None));
    }
}
