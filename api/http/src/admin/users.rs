//! A tenant's users, for administrators: list, get, change, disable, set a
//! password, delete (`/admin/v1/tenants/{t}/users[/{id}]`; creation is in
//! [`super::accounts`]).
//!
//! Reads are linearizable: a user created, changed or deleted through any
//! node is seen as such. `GET` answers an `ETag`; `PATCH`, `PUT .../password`
//! and `DELETE` honour `If-Match` ([`super::preconditions`]).
//!
//! Disabling, a new password and deleting answer only once every node has
//! applied the change (or the nodes that did not confirm are fenced, as for
//! revocations): a disabled or deleted user cannot sign in, and their
//! refresh tokens are refused, on every node from then on. Disabling and
//! deleting also end the user's browser sessions and the refresh tokens
//! issued in them on every node before the answer; deleting removes their
//! factors, passkeys, recovery codes and consents too. A new password keeps
//! the sessions (as Keycloak does); an administrator who wants them ended
//! signs the user out (`DELETE .../users/{id}/sessions`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rsp_consensus::Consistency;
use rsp_consensus::kv::tenant_keyspace;
use rsp_identity::users::{USER_LISTING_PREFIX, User, UserError, username_index_prefix};
use rsp_identity::webauthn::PasskeyService;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::accounts::require_tenant;
use super::paging::{Listing, Page, PageQuery, decode, read_page};
use super::preconditions::{IfMatch, etag, with_etag};
use crate::admin::openapi::params as p;
use crate::admin::openapi::shapes::{self, ErrorBody};
use crate::authz::caller::AdminCaller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use rsp_identity::users::UserUpdate;

/// A user as administrators see it: never the password hash.
pub fn view(user: &User) -> Value {
    json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "email_verified": user.email_verified,
        "attributes": user.attributes,
        "disabled": user.disabled,
        "created_at_ms": user.created_at_ms,
    })
}

/// `?limit&after` with the filters: `username` (exact, any case) or
/// `search` (usernames starting with it, any case; listed in username
/// order).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(flatten)]
    page: PageQuery,
    username: Option<String>,
    search: Option<String>,
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/users",
    operation_id = "list_users",
    tag = "users",
    params(
        p::Tenant,
        p::Page,
        ("username" = Option<String>, Query, description = "The one user with this username (any case); takes no `search` or `after`"),
        ("search" = Option<String>, Query, description = "Users whose username starts with this (any case, 1 to 128 characters), in username order"),
    ),
    responses(
        (status = 200, description = "A page of users, in creation order", body = Page<shapes::UserView>),
        (status = 400, description = "`invalid_limit`, `invalid_cursor`, `invalid_request`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`", body = ErrorBody),
    ),
)]
pub async fn list(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<Value>>> {
    require_tenant(&state, &tenant).await?;
    let users = &state.identity.users;
    let keyspace = tenant_keyspace(&tenant);
    if let Some(username) = &query.username {
        if query.search.is_some() || query.page.after.is_some() {
            return Err(ApiError::bad_request(
                "invalid_request",
                "`username` names one user: it takes no `search` or `after`",
            ));
        }
        query.page.limit()?;
        let items = match users.find_by_username(&tenant, username).await? {
            Some(u) => vec![view(&u)],
            None => vec![],
        };
        return Ok(Json(Page { items, next: None }));
    }
    if let Some(search) = &query.search {
        if search.is_empty() || search.chars().count() > 128 {
            return Err(ApiError::bad_request(
                "invalid_request",
                "search is 1 to 128 characters",
            ));
        }
        let prefix = username_index_prefix(search);
        let listing = Listing {
            tag: "users-by-name",
            keyspace: &keyspace,
            prefix: &prefix,
        };
        // The index range was read linearizably; the records it names are
        // at least as new on this node.
        let mut ids = Vec::new();
        let page = read_page(&state.consensus, &listing, &query.page, |kv| {
            ids.push(String::from_utf8_lossy(&kv.value).into_owned());
            Ok(Some(()))
        })
        .await?;
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            match users.get(&tenant, &id, Consistency::Local).await {
                Ok(u) => items.push(view(&u)),
                Err(UserError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(Json(Page {
            items,
            next: page.next,
        }));
    }
    let listing = Listing {
        tag: "users",
        keyspace: &keyspace,
        prefix: USER_LISTING_PREFIX,
    };
    let page = read_page(&state.consensus, &listing, &query.page, |kv| {
        decode::<User>(kv).map(|u| Some(view(&u)))
    })
    .await?;
    Ok(Json(page))
}

#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant}/users/{user}",
    operation_id = "get_user",
    tag = "users",
    params(p::TenantUser),
    responses(
        (status = 200, description = "The user", body = shapes::UserView, headers(("ETag" = String, description = "The record's revision"))),
        (status = 404, description = "`tenant_not_found`, `user_not_found`", body = ErrorBody),
    ),
)]
pub async fn get(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    require_tenant(&state, &tenant).await?;
    let (user, revision) = state
        .identity
        .users
        .get_versioned(&tenant, &id, Consistency::Linearizable)
        .await?;
    Ok(with_etag(view(&user), revision))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    /// A new email is unverified.
    email: Option<String>,
    /// Replaces every attribute (`"rsp_admin": true` makes the user an
    /// administrator of the tenant).
    #[schema(value_type = Option<Object>)]
    attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// `true`: the user cannot sign in, and their sessions and refresh
    /// tokens end on every node.
    disabled: Option<bool>,
}

impl PatchUser {
    pub(crate) fn into_update(self) -> UserUpdate {
        UserUpdate {
            email: self.email,
            attributes: self.attributes,
            disabled: self.disabled,
        }
    }
}

/// End the user's sessions and their session-bound refresh tokens on every
/// node.
async fn sign_out(state: &AppState, tenant: &str, user: &str) -> ApiResult<()> {
    let runtime = state
        .tenant_runtime
        .runtime()
        .ok_or_else(|| ApiError::unavailable("sessions are not served by this node"))?;
    runtime
        .tenant(tenant)
        .await?
        .sessions()
        .revoke_all_for_user(user)
        .await?;
    state
        .oidc
        .tokens
        .revoke_user_session_families(tenant, user)
        .await
        .map_err(|e| ApiError::unavailable(e.description))?;
    Ok(())
}

#[utoipa::path(
    patch,
    path = "/admin/v1/tenants/{tenant}/users/{user}",
    operation_id = "patch_user",
    tag = "users",
    params(p::TenantUser, p::IfMatch),
    request_body = PatchUser,
    responses(
        (status = 200, description = "The user as stored", body = shapes::UserView, headers(("ETag" = String, description = "The record's revision"))),
        (status = 400, description = "`invalid_request`: a bad email or unknown field; `invalid_etag`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`, `user_not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`: repeated concurrent writes", body = ErrorBody),
        (status = 412, description = "`precondition_failed`", body = ErrorBody),
    ),
)]
pub async fn patch(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<PatchUser>,
) -> ApiResult<Response> {
    let if_match = IfMatch::from_headers(&headers)?;
    require_tenant(&state, &tenant).await?;
    let update = body.into_update();
    let disabling = update.disabled == Some(true);
    let written = state
        .identity
        .users
        .update(&tenant, &id, update, if_match.revision())
        .await?;
    if disabling {
        sign_out(&state, &tenant, &id).await?;
    }
    state.oidc.tokens.wait_everywhere(written.index).await;
    Ok(with_etag(view(&written.value), written.revision))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    #[schema(value_type = String)]
    password: Zeroizing<String>,
}

impl SetPassword {
    /// What the service checks before it hashes.
    pub(crate) fn check(&self) -> ApiResult<()> {
        rsp_identity::passwords::check_length(&self.password).map_err(UserError::from)?;
        Ok(())
    }
}

#[utoipa::path(
    put,
    path = "/admin/v1/tenants/{tenant}/users/{user}/password",
    operation_id = "set_user_password",
    tag = "users",
    params(p::TenantUser, p::IfMatch),
    request_body = SetPassword,
    responses(
        (status = 204, description = "Set; the old password is refused on every node", headers(("ETag" = String, description = "The record's revision"))),
        (status = 400, description = "`invalid_request`: a password shorter than the minimum; `invalid_etag`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`, `user_not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`", body = ErrorBody),
        (status = 412, description = "`precondition_failed`", body = ErrorBody),
    ),
)]
pub async fn set_password(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
    ApiJson(body, _): ApiJson<SetPassword>,
) -> ApiResult<Response> {
    let if_match = IfMatch::from_headers(&headers)?;
    body.check()?;
    require_tenant(&state, &tenant).await?;
    let written = state
        .identity
        .users
        .set_password(&tenant, &id, body.password, if_match.revision())
        .await?;
    state.oidc.tokens.wait_everywhere(written.index).await;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::ETAG, etag(written.revision))],
    )
        .into_response())
}

#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant}/users/{user}",
    operation_id = "delete_user",
    tag = "users",
    params(p::TenantUser, p::IfMatch),
    responses(
        (status = 204, description = "Deleted with their factors, passkeys, recovery codes and consents; their sessions and refresh tokens end on every node"),
        (status = 400, description = "`invalid_etag`", body = ErrorBody),
        (status = 404, description = "`tenant_not_found`, `user_not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`", body = ErrorBody),
        (status = 412, description = "`precondition_failed`", body = ErrorBody),
    ),
)]
pub async fn delete(
    _: AdminCaller,
    State(state): State<AppState>,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let if_match = IfMatch::from_headers(&headers)?;
    require_tenant(&state, &tenant).await?;
    let written = state
        .identity
        .users
        .delete(&tenant, &id, if_match.revision())
        .await?;
    // No sign-in can start for the user now; end what is left.
    PasskeyService::new(state.consensus.clone())
        .delete_all(&tenant, &id)
        .await?;
    sign_out(&state, &tenant, &id).await?;
    state.oidc.tokens.wait_everywhere(written.index).await;
    Ok(StatusCode::NO_CONTENT)
}
