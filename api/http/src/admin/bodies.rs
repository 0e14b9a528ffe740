//! Every admin request body, by route, and one entry that runs outside
//! bytes through what the route's handler does with them before it needs
//! any state: the decoding (the handler's own extractor, [`ApiJson`], or
//! the key rotation's parser) and the checks that follow it, which are the
//! handler's and the service's own functions (a service checks a new
//! user, client, seed or key schedule before its first read or write, and
//! calls the same function). Policy writes are compiled as for a tenant
//! with nothing else stored, links beside a stand-in template.
//!
//! It serves the `admin_json` fuzz target (`tests/src/fuzz.rs`) and is not
//! used when serving. Two things keep it in step with the router:
//! - [`AdminBody::route`] and [`AdminBody::check`] match every variant, so
//!   a new body kind says where it is served and how it is checked;
//! - `admin_bodies::every_admin_route_that_reads_a_body_is_an_admin_body`
//!   (`api/http/tests/it`) sends every routed method of every route in
//!   [`super::routes`] a malformed JSON body and then no body: a route
//!   that answers the two differently reads its body, and the set of those
//!   routes must be exactly the routes of [`AdminBody::ALL`].

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use rsp_identity::keys::KeySettings;
use rsp_identity::mfa_policy::MfaPolicy;
use serde::de::DeserializeOwned;
use serde_json::Value;

use rsp_identity::saml::providers::Registration;

use super::{accounts, clients, cluster, factors, keys, kv, policies, saml, tenants, users};
use crate::authz::error::AuthzResult;
use crate::error::ApiResult;
use crate::extract::{ApiJson, BodyRejection};

/// A link's template is one of the tenant's stored policies; links are
/// compiled beside this one instead.
const STAND_IN_TEMPLATE: &str =
    r#"@id("t") permit(principal == ?principal, action, resource in ?resource);"#;

/// The path's client id a client change is checked against.
const STAND_IN_CLIENT_ID: &str = "web";

/// The path's entity id a replaced SAML registration is checked against.
const STAND_IN_ENTITY_ID: &str = "https://sp.example/saml";

/// An admin route that takes a body.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminBody {
    CreateTenant,
    CreateUser,
    PatchUser,
    CreateClient,
    ImportFactor,
    RotateKeys,
    KeySettings,
    MfaPolicy,
    Policies,
    PolicyLink,
    Entities,
    AddNode,
    KvPut,
    KvTxn,
    SamlProvider,
    SamlProviderReplace,
    RotateKek,
    PatchTenant,
    SetPassword,
    PatchClient,
    RotateSecret,
}

impl AdminBody {
    pub const ALL: [AdminBody; 21] = [
        AdminBody::CreateTenant,
        AdminBody::CreateUser,
        AdminBody::PatchUser,
        AdminBody::CreateClient,
        AdminBody::ImportFactor,
        AdminBody::RotateKeys,
        AdminBody::KeySettings,
        AdminBody::MfaPolicy,
        AdminBody::Policies,
        AdminBody::PolicyLink,
        AdminBody::Entities,
        AdminBody::AddNode,
        AdminBody::KvPut,
        AdminBody::KvTxn,
        AdminBody::SamlProvider,
        AdminBody::SamlProviderReplace,
        AdminBody::RotateKek,
        AdminBody::PatchTenant,
        AdminBody::SetPassword,
        AdminBody::PatchClient,
        AdminBody::RotateSecret,
    ];

    /// The method and route pattern (as added in [`super::routes`]) whose
    /// handler takes this body.
    pub fn route(self) -> (&'static str, &'static str) {
        match self {
            AdminBody::CreateTenant => ("POST", "/admin/v1/tenants"),
            AdminBody::CreateUser => ("POST", "/admin/v1/tenants/{tenant}/users"),
            AdminBody::PatchUser => ("PATCH", "/admin/v1/tenants/{tenant}/users/{user}"),
            AdminBody::CreateClient => ("POST", "/admin/v1/tenants/{tenant}/clients"),
            AdminBody::ImportFactor => ("POST", "/admin/v1/tenants/{tenant}/users/{user}/factors"),
            AdminBody::RotateKeys => ("POST", "/admin/v1/tenants/{tenant}/keys/rotate"),
            AdminBody::KeySettings => ("PUT", "/admin/v1/tenants/{tenant}/keys/settings"),
            AdminBody::MfaPolicy => ("PUT", "/admin/v1/tenants/{tenant}/mfa-policy"),
            AdminBody::Policies => ("PUT", "/admin/v1/tenants/{tenant}/policies"),
            AdminBody::PolicyLink => ("PUT", "/admin/v1/tenants/{tenant}/policies/links/{id}"),
            AdminBody::Entities => ("PUT", "/admin/v1/tenants/{tenant}/entities"),
            AdminBody::AddNode => ("POST", "/admin/v1/cluster/nodes"),
            AdminBody::KvPut => ("PUT", "/admin/v1/kv/{key}"),
            AdminBody::KvTxn => ("POST", "/admin/v1/kv/txn"),
            AdminBody::SamlProvider => {
                ("POST", "/admin/v1/tenants/{tenant}/saml/service-providers")
            }
            AdminBody::SamlProviderReplace => (
                "PUT",
                "/admin/v1/tenants/{tenant}/saml/service-providers/{entity_id}",
            ),
            AdminBody::RotateKek => ("POST", "/admin/v1/cluster/kek/rotate"),
            AdminBody::PatchTenant => ("PATCH", "/admin/v1/tenants/{tenant}"),
            AdminBody::SetPassword => ("PUT", "/admin/v1/tenants/{tenant}/users/{user}/password"),
            AdminBody::PatchClient => ("PATCH", "/admin/v1/tenants/{tenant}/clients/{client}"),
            AdminBody::RotateSecret => {
                ("POST", "/admin/v1/tenants/{tenant}/clients/{client}/secret")
            }
        }
    }

    /// `body` as this route's handler takes it (sent as
    /// `application/json`): decoded, then checked as far as it can be
    /// without state. A refusal is the status of the response the handler
    /// would give.
    pub fn check(self, body: &[u8]) -> Result<(), StatusCode> {
        match self {
            AdminBody::CreateTenant => admin(body, |b: tenants::CreateTenant| b.check()),
            AdminBody::CreateUser => {
                admin(body, |b: accounts::CreateUser| Ok(b.into_new().check()?))
            }
            AdminBody::PatchUser => {
                admin(body, |b: users::PatchUser| Ok(b.into_update().check()?))
            }
            AdminBody::CreateClient => admin(body, |b: accounts::CreateClient| {
                b.into_new().check()?;
                Ok(())
            }),
            AdminBody::ImportFactor => admin(body, |b: factors::NewFactor| b.check()),
            AdminBody::RotateKeys => keys::RotateRequest::parse(body).map(drop).map_err(answered),
            AdminBody::KeySettings => admin(body, |b: KeySettings| Ok(b.validate()?)),
            AdminBody::MfaPolicy => admin(body, |_: MfaPolicy| Ok(())),
            AdminBody::Policies => authz(body, |b: policies::PutPolicies| b.compile_alone()),
            // The link's id is the path's, checked apart from the body.
            AdminBody::PolicyLink => authz(body, |b: policies::PutLink| {
                b.compile_beside("link", STAND_IN_TEMPLATE)
            }),
            AdminBody::Entities => {
                authz(body, |b: Vec<Value>| policies::compile_entities_alone(&b))
            }
            AdminBody::AddNode => admin(body, |b: cluster::AddNode| b.into_member().map(drop)),
            AdminBody::KvPut => admin(body, |_: kv::PutBody| Ok(())),
            AdminBody::KvTxn => admin(body, |b: kv::TxnIn| b.into_txn().map(drop)),
            AdminBody::SamlProvider => admin(body, |b: Registration| {
                b.into_provider(0).map(drop).map_err(Into::into)
            }),
            // The path's entity id is checked apart; the body is checked
            // against a stand-in.
            AdminBody::SamlProviderReplace => admin(body, |b: Registration| {
                saml::replacement(b, STAND_IN_ENTITY_ID, 0).map(drop)
            }),
            AdminBody::RotateKek => cluster::RotateKek::parse(body).map(drop).map_err(answered),
            AdminBody::PatchTenant => admin(body, |b: tenants::PatchTenant| b.check()),
            AdminBody::SetPassword => admin(body, |b: users::SetPassword| b.check()),
            // The path's client id is checked apart: a stand-in here.
            AdminBody::PatchClient => admin(body, |b: clients::PatchClient| {
                b.into_patch(STAND_IN_CLIENT_ID).map(drop)
            }),
            AdminBody::RotateSecret => clients::RotateSecret::parse(body)
                .map(drop)
                .map_err(answered),
        }
    }
}

/// A body of the admin API proper, refused as [`crate::error::ApiError`].
fn admin<T: DeserializeOwned>(
    body: &[u8],
    check: impl FnOnce(T) -> ApiResult<()>,
) -> Result<(), StatusCode> {
    decoded(body, check)
}

/// A body of the policy endpoints, refused as [`crate::authz::error::AuthzError`] (with Cedar's
/// diagnostics).
fn authz<T: DeserializeOwned>(
    body: &[u8],
    check: impl FnOnce(T) -> AuthzResult<()>,
) -> Result<(), StatusCode> {
    decoded(body, check)
}

/// Decode `body` with [`ApiJson`] in the handler's error format `E`, then
/// run `check` on it.
fn decoded<T, E>(body: &[u8], check: impl FnOnce(T) -> Result<(), E>) -> Result<(), StatusCode>
where
    T: DeserializeOwned,
    E: From<BodyRejection> + IntoResponse,
{
    let mut request = Request::new(Body::from(body.to_vec()));
    request.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // A body already in memory: the extractor is ready on its first poll.
    futures::executor::block_on(ApiJson::<T, E>::from_request(request, &()))
        .and_then(|ApiJson(value, _)| check(value))
        .map_err(answered)
}

/// The status of the response a refusal becomes.
fn answered(refusal: impl IntoResponse) -> StatusCode {
    refusal.into_response().status()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body each route accepts.
    fn accepted(kind: AdminBody) -> &'static str {
        match kind {
            AdminBody::CreateTenant => r#"{"id": "acme", "display_name": "Acme"}"#,
            AdminBody::CreateUser => {
                r#"{"username": "alice", "password": "correct horse", "email": "a@example.com"}"#
            }
            AdminBody::PatchUser => {
                r#"{"email": "b@example.com", "attributes": {"rsp_admin": true}}"#
            }
            AdminBody::CreateClient => {
                r#"{"client_id": "web", "grant_types": ["authorization_code"],
                    "redirect_uris": ["https://app.example/cb"],
                    "token_endpoint_auth_method": "client_secret_basic"}"#
            }
            AdminBody::ImportFactor => r#"{"type": "totp", "secret": "JBSWY3DPEHPK3PXPJBSWY3DP"}"#,
            AdminBody::RotateKeys => r#"{"alg": "ES256", "immediate": true}"#,
            AdminBody::KeySettings => {
                r#"{"rotation_days": 90, "publish_hours": 24, "retire_days": 7}"#
            }
            AdminBody::MfaPolicy => r#"{"mode": "required"}"#,
            AdminBody::Policies => r#"{"policies": "permit(principal, action, resource);"}"#,
            AdminBody::PolicyLink => {
                r#"{"template": "t", "values": {"?principal": "User::\"a\"", "?resource": "Doc::\"d\""}}"#
            }
            AdminBody::Entities => {
                r#"[{"uid": {"type": "User", "id": "alice"}, "attrs": {}, "parents": []}]"#
            }
            AdminBody::AddNode => r#"{"id": 2, "peer_addr": "10.0.0.2:7001"}"#,
            AdminBody::KvPut => r#"{"value": "v", "ttl_ms": 1000}"#,
            AdminBody::KvTxn => {
                r#"{"compare": [{"key": "k", "target": "version", "value": 0}],
                    "success": [{"op": "put", "key": "k", "value": "v"}]}"#
            }
            AdminBody::SamlProvider | AdminBody::SamlProviderReplace => {
                r#"{"entity_id": "https://sp.example/saml",
                    "acs_url": "https://sp.example/saml/acs"}"#
            }
            AdminBody::RotateKek => r#"{"wait_secs": 5}"#,
            AdminBody::PatchTenant => r#"{"display_name": "Acme Corp"}"#,
            AdminBody::SetPassword => r#"{"password": "a new long password"}"#,
            AdminBody::PatchClient => {
                r#"{"client_id": "web", "redirect_uris": ["https://app.example/cb2"]}"#
            }
            AdminBody::RotateSecret => r#"{"grace_period_secs": 3600}"#,
        }
    }

    /// A body that decodes but that the checks after decoding refuse, with
    /// the status the handler answers; `None` where nothing follows the
    /// decoding.
    fn refused_after_decoding(kind: AdminBody) -> Option<(&'static str, StatusCode)> {
        let bad = StatusCode::BAD_REQUEST;
        match kind {
            AdminBody::CreateTenant => Some((r#"{"id": "Not A Tenant"}"#, bad)),
            AdminBody::CreateUser => Some((r#"{"username": "bob", "password": "short"}"#, bad)),
            AdminBody::PatchUser => Some((r#"{"email": "not an address"}"#, bad)),
            AdminBody::CreateClient => Some((
                r#"{"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}"#,
                bad,
            )),
            AdminBody::ImportFactor => Some((r#"{"type": "totp", "secret": "not base32!"}"#, bad)),
            AdminBody::RotateKeys => Some((r#"{"alg": "HS256"}"#, bad)),
            AdminBody::KeySettings => Some((
                r#"{"rotation_days": 1, "publish_hours": 24, "retire_days": 7}"#,
                bad,
            )),
            AdminBody::MfaPolicy | AdminBody::KvPut => None,
            AdminBody::Policies => Some((r#"{"policies": "permit(principal"}"#, bad)),
            AdminBody::PolicyLink => {
                Some((r#"{"template": "t", "values": {"?x": "User::\"a\""}}"#, bad))
            }
            AdminBody::Entities => Some((r#"[{"uid": 1}]"#, bad)),
            AdminBody::AddNode => Some((r#"{"id": 0, "peer_addr": "10.0.0.2:7001"}"#, bad)),
            AdminBody::KvTxn => Some((
                r#"{"compare": [{"key": "k", "target": "size", "value": 1}]}"#,
                bad,
            )),
            AdminBody::SamlProvider => Some((
                r#"{"entity_id": "https://sp.example/saml", "acs_url": "ftp://sp.example/acs"}"#,
                bad,
            )),
            AdminBody::SamlProviderReplace => Some((
                r#"{"entity_id": "https://other.example/saml", "acs_url": "https://other.example/acs"}"#,
                bad,
            )),
            AdminBody::RotateKek => Some((r#"{"kek": "too short"}"#, bad)),
            AdminBody::PatchTenant => {
                Some((r#"{"settings": {"access_token_lifetime_secs": 59}}"#, bad))
            }
            AdminBody::SetPassword => Some((r#"{"password": "short"}"#, bad)),
            AdminBody::PatchClient => Some((r#"{"client_id": "another"}"#, bad)),
            AdminBody::RotateSecret => Some((r#"{"grace_period_secs": 99999999}"#, bad)),
        }
    }

    fn status(kind: AdminBody, body: &str) -> Option<StatusCode> {
        kind.check(body.as_bytes()).err()
    }

    #[test]
    fn each_route_accepts_a_valid_body_and_refuses_a_truncated_one() {
        for kind in AdminBody::ALL {
            let body = accepted(kind);
            assert_eq!(status(kind, body), None, "{kind:?} refused {body}");
            let cut = &body[..body.len() - 2];
            assert_eq!(
                status(kind, cut),
                Some(StatusCode::BAD_REQUEST),
                "{kind:?} on {cut}"
            );
        }
    }

    #[test]
    fn the_checks_after_decoding_run() {
        for kind in AdminBody::ALL {
            if let Some((body, expected)) = refused_after_decoding(kind) {
                assert_eq!(status(kind, body), Some(expected), "{kind:?} on {body}");
            }
        }
    }

    #[test]
    fn a_body_of_the_wrong_shape_is_refused_as_the_extractor_refuses_it() {
        // axum's 422 for a body that parses but is not the type.
        assert_eq!(
            status(AdminBody::CreateTenant, r#"{"id": 7}"#),
            Some(StatusCode::UNPROCESSABLE_ENTITY)
        );
        // The policy endpoints answer 400 with a diagnostic instead.
        assert_eq!(
            status(AdminBody::Policies, r#"{"policies": 7}"#),
            Some(StatusCode::BAD_REQUEST)
        );
        // A rotation may have no body at all.
        assert_eq!(status(AdminBody::RotateKeys, " \n"), None);
    }

    #[test]
    fn every_body_route_is_an_admin_route() {
        let routes = super::super::routes();
        for kind in AdminBody::ALL {
            let (_, pattern) = kind.route();
            assert!(routes.paths().contains(&pattern), "{kind:?}: {pattern}");
        }
    }
}
