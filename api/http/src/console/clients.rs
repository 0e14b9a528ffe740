//! A tenant's OAuth clients: `/admin/tenants/{t}/clients` (list, paged;
//! register, the secret shown once) and `/admin/tenants/{t}/clients/{id}`
//! (edit the registration; rotate the secret, the new one shown once).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::calls::{self, Failure, answer, list as items_of, seg, text};
use super::page;
use super::session::{ConsoleForm, SignedIn};
use super::templates::{ClientForm, ClientPage, ClientRow, ClientsPage, Nav, SecretPage, notice};
use super::tenants::{PAGE, problem};
use crate::admin::{accounts, clients as api};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    after: Option<String>,
    done: Option<String>,
}

fn clients_path(tenant: &str) -> String {
    format!("/admin/tenants/{}/clients", seg(tenant))
}

/// The form's fields as the registration's JSON (lists split on lines or
/// spaces; empty optional fields left out).
fn registration(form: &ConsoleForm) -> Value {
    let lines = |name: &str| -> Vec<String> {
        form.text(name)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    let words = |name: &str| -> Vec<String> {
        form.text(name)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let mut body = json!({
        "redirect_uris": lines("redirect_uris"),
        "post_logout_redirect_uris": lines("post_logout_redirect_uris"),
        "grant_types": words("grant_types"),
        "token_endpoint_auth_method": form.text("token_endpoint_auth_method"),
        "scopes": words("scopes"),
        "require_consent": form.field("require_consent") == Some("true"),
    });
    if let Some(name) = form
        .field("client_name")
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        body["client_name"] = json!(name);
    }
    body
}

/// The form as it was posted, to show again with an error.
fn form_again(form: &ConsoleForm) -> ClientForm {
    ClientForm {
        client_id: form.text("client_id").trim().to_string(),
        client_name: form.text("client_name").to_string(),
        redirect_uris: form.text("redirect_uris").to_string(),
        post_logout_redirect_uris: form.text("post_logout_redirect_uris").to_string(),
        grant_types: form.text("grant_types").to_string(),
        method: form.text("token_endpoint_auth_method").to_string(),
        scopes: form.text("scopes").to_string(),
        require_consent: form.field("require_consent") == Some("true"),
    }
}

/// A stored client as the form shows it.
fn form_of(c: &Value) -> ClientForm {
    ClientForm {
        client_id: text(c, "client_id"),
        client_name: text(c, "client_name"),
        redirect_uris: items_of(c, "redirect_uris").join("\n"),
        post_logout_redirect_uris: items_of(c, "post_logout_redirect_uris").join("\n"),
        grant_types: items_of(c, "grant_types").join(" "),
        method: text(c, "token_endpoint_auth_method"),
        scopes: items_of(c, "scopes").join(" "),
        require_consent: c["require_consent"].as_bool().unwrap_or(false),
    }
}

async fn clients_page(
    state: &AppState,
    op: &SignedIn,
    tenant: &str,
    after: Option<&str>,
    done: Option<&str>,
    failed: Option<(Failure, ClientForm)>,
) -> Response {
    let listed = async {
        let query = calls::body(json!({"limit": PAGE, "after": after}))?;
        answer(
            api::list(
                op.caller(),
                State(state.clone()),
                ApiPath(tenant.to_string()),
                ApiQuery(query),
            )
            .await,
        )
        .await
    }
    .await;
    let page = match listed {
        Ok(p) => p,
        Err(f) => return problem(f),
    };
    let items = page["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| ClientRow {
                    id: text(c, "client_id"),
                    seg: seg(&text(c, "client_id")),
                    name: text(c, "client_name"),
                    method: text(c, "token_endpoint_auth_method"),
                    grants: items_of(c, "grant_types").join(" "),
                })
                .collect()
        })
        .unwrap_or_default();
    let next = page["next"]
        .as_str()
        .map(|n| format!("{}?after={}", clients_path(tenant), seg(n)));
    let (status, error, form) = match failed {
        Some((f, form)) => (f.status, Some(f.message), form),
        None => (
            StatusCode::OK,
            None,
            ClientForm {
                grant_types: "authorization_code refresh_token".into(),
                method: "client_secret_basic".into(),
                scopes: "openid profile email".into(),
                ..ClientForm::default()
            },
        ),
    };
    page::render(
        status,
        &ClientsPage {
            nav: Nav::new(op, Some(tenant), "clients"),
            tenant_seg: seg(tenant),
            items,
            next,
            error,
            notice: notice(done),
            form,
        },
        &[],
    )
}

/// `GET /admin/tenants/{t}/clients`.
pub async fn list(
    op: SignedIn,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    clients_page(
        &state,
        &op,
        &tenant,
        q.after.as_deref(),
        q.done.as_deref(),
        None,
    )
    .await
}

fn secret_page(op: &SignedIn, tenant: &str, client: &Value, what: &'static str) -> Response {
    let id = text(client, "client_id");
    page::render(
        StatusCode::OK,
        &SecretPage {
            nav: Nav::new(op, Some(tenant), "clients"),
            tenant_seg: seg(tenant),
            seg: seg(&id),
            client_id: id,
            secret: text(client, "client_secret"),
            what,
        },
        &[],
    )
}

/// `POST /admin/tenants/{t}/clients`: the registration; a client with a
/// secret gets a page showing it once (never a redirect that could carry
/// it).
pub async fn create(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    form: ConsoleForm,
) -> Response {
    let mut body = registration(&form);
    if let Some(id) = form
        .field("client_id")
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        body["client_id"] = json!(id);
    }
    let outcome = match calls::json(body) {
        Ok(json) => {
            answer(
                accounts::create_client(
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
        Ok(created) if created.get("client_secret").is_some() => {
            secret_page(&form.signed, &tenant, &created, "registered")
        }
        Ok(created) => page::redirect(&format!(
            "{}/{}?done=client-saved",
            clients_path(&tenant),
            seg(&text(&created, "client_id"))
        )),
        Err(f) => {
            let again = form_again(&form);
            clients_page(&state, &form.signed, &tenant, None, None, Some((f, again))).await
        }
    }
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    done: Option<String>,
}

async fn client_page(
    state: &AppState,
    op: &SignedIn,
    tenant: &str,
    id: &str,
    done: Option<&str>,
    failed: Option<(Failure, Option<ClientForm>)>,
) -> Response {
    let client = match answer(
        api::get(
            op.caller(),
            State(state.clone()),
            ApiPath((tenant.to_string(), id.to_string())),
        )
        .await,
    )
    .await
    {
        Ok(c) => c,
        Err(f) => return problem(f),
    };
    let has_secret = client["has_secret"].as_bool().unwrap_or(false);
    let (status, error, form) = match failed {
        Some((f, Some(mut form))) => {
            form.client_id = id.to_string();
            (f.status, Some(f.message), form)
        }
        Some((f, None)) => (f.status, Some(f.message), form_of(&client)),
        None => (StatusCode::OK, None, form_of(&client)),
    };
    page::render(
        status,
        &ClientPage {
            nav: Nav::new(op, Some(tenant), "clients"),
            tenant_seg: seg(tenant),
            seg: seg(id),
            has_secret,
            form,
            error,
            notice: notice(done),
        },
        &[],
    )
}

/// `GET /admin/tenants/{t}/clients/{id}`.
pub async fn show(
    op: SignedIn,
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    Query(q): Query<ShowQuery>,
) -> Response {
    client_page(&state, &op, &tenant, &id, q.done.as_deref(), None).await
}

/// `POST /admin/tenants/{t}/clients/{id}`: the registration's new fields.
pub async fn edit(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    form: ConsoleForm,
) -> Response {
    let outcome = match calls::json(registration(&form)) {
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
    match outcome {
        Ok(_) => page::redirect(&format!(
            "{}/{}?done=client-saved",
            clients_path(&tenant),
            seg(&id)
        )),
        Err(f) => {
            let again = form_again(&form);
            let failed = Some((f, Some(again)));
            client_page(&state, &form.signed, &tenant, &id, None, failed).await
        }
    }
}

/// `POST /admin/tenants/{t}/clients/{id}/secret`: a new secret, shown once;
/// the old one is refused on every node when this answers.
pub async fn rotate(
    State(state): State<AppState>,
    Path((tenant, id)): Path<(String, String)>,
    form: ConsoleForm,
) -> Response {
    let outcome = answer(
        api::rotate_secret(
            form.signed.caller(),
            State(state.clone()),
            ApiPath((tenant.clone(), id.clone())),
            HeaderMap::new(),
            Bytes::new(),
        )
        .await,
    )
    .await;
    match outcome {
        Ok(rotated) => secret_page(&form.signed, &tenant, &rotated, "secret rotated"),
        Err(f) => {
            let failed = Some((f, None));
            client_page(&state, &form.signed, &tenant, &id, None, failed).await
        }
    }
}
