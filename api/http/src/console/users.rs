//! A tenant's users: `/admin/tenants/{t}/users` (search by username prefix,
//! paged; create with a password) and `/admin/tenants/{t}/users/{id}`
//! (disable or enable, set a password, list and remove second factors,
//! list and end sessions).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::calls::{self, Failure, answer, seg, text, time_ms};
use super::page;
use super::session::{ConsoleForm, SignedIn};
use super::templates::{FactorRow, Nav, SessionRow, UserPage, UserRow, UsersPage, notice};
use super::tenants::{PAGE, problem};
use crate::admin::{accounts, factors, sessions, users as api};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    search: Option<String>,
    after: Option<String>,
    done: Option<String>,
}

fn users_path(tenant: &str) -> String {
    format!("/admin/tenants/{}/users", seg(tenant))
}

fn user_path(tenant: &str, user: &str) -> String {
    format!("{}/{}", users_path(tenant), seg(user))
}

async fn page_of(
    state: &AppState,
    op: &SignedIn,
    tenant: &str,
    search: &str,
    after: Option<&str>,
) -> Result<(Vec<UserRow>, Option<String>), Failure> {
    let mut query = json!({"limit": PAGE, "after": after});
    if !search.is_empty() {
        query["search"] = json!(search);
    }
    let page = answer(
        api::list(
            op.caller(),
            State(state.clone()),
            ApiPath(tenant.to_string()),
            ApiQuery(calls::body(query)?),
        )
        .await,
    )
    .await?;
    let items = page["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|u| UserRow {
                    seg: seg(&text(u, "id")),
                    username: text(u, "username"),
                    email: text(u, "email"),
                    disabled: u["disabled"].as_bool().unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
    let next = page["next"].as_str().map(|n| {
        let mut link = format!("{}?after={}", users_path(tenant), seg(n));
        if !search.is_empty() {
            link.push_str(&format!("&search={}", seg(search)));
        }
        link
    });
    Ok((items, next))
}

struct Shown<'a> {
    search: &'a str,
    after: Option<&'a str>,
    done: Option<&'a str>,
    failed: Option<Failure>,
    username: &'a str,
    email: &'a str,
}

async fn users_page(state: &AppState, op: &SignedIn, tenant: &str, shown: Shown<'_>) -> Response {
    let (items, next, error, status) =
        match page_of(state, op, tenant, shown.search, shown.after).await {
            Ok((items, next)) => match shown.failed {
                Some(f) => (items, next, Some(f.message), f.status),
                None => (items, next, None, StatusCode::OK),
            },
            Err(f) if f.status == StatusCode::NOT_FOUND => return problem(f),
            Err(f) => (Vec::new(), None, Some(f.message), f.status),
        };
    page::render(
        status,
        &UsersPage {
            nav: Nav::new(op, Some(tenant), "users"),
            tenant_seg: seg(tenant),
            search: shown.search.to_string(),
            items,
            next,
            error,
            notice: notice(shown.done),
            form_username: shown.username.to_string(),
            form_email: shown.email.to_string(),
        },
        &[],
    )
}

/// `GET /admin/tenants/{t}/users`.
pub async fn list(
    op: SignedIn,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let search = q.search.as_deref().map(str::trim).unwrap_or("");
    let shown = Shown {
        search,
        after: q.after.as_deref(),
        done: q.done.as_deref(),
        failed: None,
        username: "",
        email: "",
    };
    users_page(&state, &op, &tenant, shown).await
}

/// `POST /admin/tenants/{t}/users`: `username`, `password`, `email`.
pub async fn create(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    form: ConsoleForm,
) -> Response {
    let username = form.text("username").trim();
    let mut body = json!({"username": username, "password": form.text("password")});
    if let Some(email) = form.field("email").map(str::trim).filter(|e| !e.is_empty()) {
        body["email"] = json!(email);
    }
    let outcome = match calls::json(body) {
        Ok(json) => {
            answer(
                accounts::create_user(
                    form.signed.caller(),
                    State(state.clone()),
                    ApiPath(tenant.clone()),
                    json,
                )
                .await,
            )
            .await
        }
        Err(f) => Err(f),
    };
    match outcome {
        Ok(created) => page::redirect(&format!(
            "{}?done=user-created",
            user_path(&tenant, &text(&created, "id"))
        )),
        Err(f) => {
            let shown = Shown {
                search: "",
                after: None,
                done: None,
                failed: Some(f),
                username,
                email: form.text("email"),
            };
            users_page(&state, &form.signed, &tenant, shown).await
        }
    }
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    done: Option<String>,
}

fn factor_rows(list: &Value) -> Vec<FactorRow> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    let kind = text(f, "type");
                    let detail = if kind == "totp" {
                        format!("{} digits every {} s", text(f, "digits"), text(f, "period"))
                    } else {
                        format!("{} ({})", text(f, "name"), text(f, "kind_detail"))
                    };
                    FactorRow {
                        seg: seg(&text(f, "id")),
                        kind,
                        detail,
                        created: time_ms(f["created_at_ms"].as_u64().unwrap_or(0)),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn session_rows(list: &Value) -> Vec<SessionRow> {
    let ms = |s: &Value, k: &str| time_ms(s[k].as_u64().unwrap_or(0));
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|s| SessionRow {
                    id: text(s, "id"),
                    created: ms(s, "created_ms"),
                    last_seen: ms(s, "last_seen_ms"),
                    expires: ms(s, "expires_at_ms"),
                    amr: text(s, "amr"),
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn user_page(
    state: &AppState,
    op: &SignedIn,
    tenant: &str,
    id: &str,
    done: Option<&str>,
    failed: Option<Failure>,
) -> Response {
    let path = || ApiPath((tenant.to_string(), id.to_string()));
    let user = match answer(api::get(op.caller(), State(state.clone()), path()).await).await {
        Ok(u) => u,
        Err(f) => return problem(f),
    };
    let factors = answer(factors::list(op.caller(), State(state.clone()), path()).await).await;
    let sessions = answer(sessions::list(op.caller(), State(state.clone()), path()).await).await;
    let status = failed.as_ref().map_or(StatusCode::OK, |f| f.status);
    page::render(
        status,
        &UserPage {
            nav: Nav::new(op, Some(tenant), "users"),
            tenant_seg: seg(tenant),
            id: id.to_string(),
            seg: seg(id),
            username: text(&user, "username"),
            email: text(&user, "email"),
            disabled: user["disabled"].as_bool().unwrap_or(false),
            created: time_ms(user["created_at_ms"].as_u64().unwrap_or(0)),
            attributes: user["attributes"].to_string(),
            factors: factors.as_ref().map(factor_rows).unwrap_or_default(),
            factors_error: factors.err().map(|f| f.message),
            sessions: sessions.as_ref().map(session_rows).unwrap_or_default(),
            sessions_error: sessions.err().map(|f| f.message),
            error: failed.map(|f| f.message),
            notice: notice(done),
        },
        &[],
    )
}

/// `GET /admin/tenants/{t}/users/{id}`.
pub async fn show(
    op: SignedIn,
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    Query(q): Query<ShowQuery>,
) -> Response {
    user_page(&state, &op, &tenant, &id, q.done.as_deref(), None).await
}

/// After a write: back to the user's page with `done`, or the page with
/// the failure.
async fn finish(
    state: &AppState,
    form: &ConsoleForm,
    tenant: &str,
    id: &str,
    outcome: Result<Value, Failure>,
    done: &str,
) -> Response {
    match outcome {
        Ok(_) => page::redirect(&format!("{}?done={done}", user_path(tenant, id))),
        Err(f) => user_page(state, &form.signed, tenant, id, None, Some(f)).await,
    }
}

/// `POST .../users/{id}/disabled`: `disabled` `true` or `false`. The
/// admin API's change: disabling ends the user's sessions and refresh
/// tokens on every node before it answers.
pub async fn set_disabled(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    form: ConsoleForm,
) -> Response {
    let disabled = form.field("disabled") == Some("true");
    let outcome = match calls::json(json!({"disabled": disabled})) {
        Ok(json) => {
            answer(
                api::patch(
                    form.signed.caller(),
                    State(state.clone()),
                    ApiPath((tenant.clone(), id.clone())),
                    HeaderMap::new(),
                    json,
                )
                .await,
            )
            .await
        }
        Err(f) => Err(f),
    };
    let done = if disabled {
        "user-disabled"
    } else {
        "user-enabled"
    };
    finish(&state, &form, &tenant, &id, outcome, done).await
}

/// `POST .../users/{id}/password`: `password`.
pub async fn set_password(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    form: ConsoleForm,
) -> Response {
    let outcome = match calls::json(json!({"password": form.text("password")})) {
        Ok(json) => {
            answer(
                api::set_password(
                    form.signed.caller(),
                    State(state.clone()),
                    ApiPath((tenant.clone(), id.clone())),
                    HeaderMap::new(),
                    json,
                )
                .await,
            )
            .await
        }
        Err(f) => Err(f),
    };
    finish(&state, &form, &tenant, &id, outcome, "password-set").await
}

/// `POST .../users/{id}/factors/{factor}/delete`.
pub async fn delete_factor(
    State(state): State<AppState>,
    Path((tenant, id, factor)): Path<(String, String, String)>,
    form: ConsoleForm,
) -> Response {
    let outcome = answer(
        factors::delete(
            form.signed.caller(),
            State(state.clone()),
            ApiPath((tenant.clone(), id.clone(), factor)),
        )
        .await,
    )
    .await;
    finish(&state, &form, &tenant, &id, outcome, "factor-deleted").await
}

/// `POST .../users/{id}/sessions/revoke`: one session (`sid`, its public
/// handle), or all of the user's when none is named.
pub async fn revoke_sessions(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    form: ConsoleForm,
) -> Response {
    let outcome = match form.field("sid") {
        Some(sid) => {
            answer(
                sessions::revoke(
                    form.signed.caller(),
                    State(state.clone()),
                    ApiPath((tenant.clone(), sid.to_string())),
                )
                .await,
            )
            .await
        }
        None => {
            answer(
                sessions::revoke_user(
                    form.signed.caller(),
                    State(state.clone()),
                    ApiPath((tenant.clone(), id.clone())),
                )
                .await,
            )
            .await
        }
    };
    finish(&state, &form, &tenant, &id, outcome, "sessions-revoked").await
}
