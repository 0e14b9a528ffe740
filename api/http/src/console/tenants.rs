//! `/admin/tenants` (list, paged, and create) and `/admin/tenants/{t}`
//! (display name, delete with a typed confirmation; a tenant that holds
//! data needs "delete everything in it").

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::calls::{self, Failure, answer, seg, text, time_ms};
use super::page;
use super::session::{ConsoleForm, SignedIn};
use super::templates::{Nav, TenantPage, TenantRow, TenantsPage, notice};
use crate::admin::tenants as api;
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

/// Rows per page of the console's listings.
pub const PAGE: &str = "50";

#[derive(Deserialize, Default)]
pub struct ListQuery {
    after: Option<String>,
    done: Option<String>,
}

async fn page_of(
    state: &AppState,
    op: &SignedIn,
    after: Option<&str>,
) -> Result<(Vec<TenantRow>, Option<String>), Failure> {
    let query = calls::body(json!({"limit": PAGE, "after": after}))?;
    let page = answer(
        api::list(
            op.caller(),
            axum::extract::State(state.clone()),
            ApiQuery(query),
        )
        .await,
    )
    .await?;
    let items = page["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| TenantRow {
                    id: text(t, "id"),
                    seg: seg(&text(t, "id")),
                    display_name: text(t, "display_name"),
                    created: time_ms(t["created_at_ms"].as_u64().unwrap_or(0)),
                })
                .collect()
        })
        .unwrap_or_default();
    let next = page["next"]
        .as_str()
        .map(|n| format!("/admin/tenants?after={}", seg(n)));
    Ok((items, next))
}

async fn list_page(
    state: &AppState,
    op: &SignedIn,
    after: Option<&str>,
    done: Option<&str>,
    failed: Option<(StatusCode, String)>,
    form: (&str, &str),
) -> Response {
    let (items, next, error, status) = match page_of(state, op, after).await {
        Ok((items, next)) => {
            let (status, error) = failed.map_or((StatusCode::OK, None), |(s, e)| (s, Some(e)));
            (items, next, error, status)
        }
        Err(f) => (Vec::new(), None, Some(f.message), f.status),
    };
    page::render(
        status,
        &TenantsPage {
            nav: Nav::new(op, None, "tenants"),
            items,
            next,
            error,
            notice: notice(done),
            form_id: form.0.to_string(),
            form_name: form.1.to_string(),
        },
        &[],
    )
}

/// `GET /admin/tenants`.
pub async fn list(
    op: SignedIn,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Response {
    list_page(
        &state,
        &op,
        q.after.as_deref(),
        q.done.as_deref(),
        None,
        ("", ""),
    )
    .await
}

/// `POST /admin/tenants`: `id`, `display_name`.
pub async fn create(State(state): State<AppState>, form: ConsoleForm) -> Response {
    let id = form.text("id").trim().to_string();
    let mut body = json!({"id": id});
    if let Some(name) = form
        .field("display_name")
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        body["display_name"] = json!(name);
    }
    let outcome = match calls::json(body) {
        Ok(json) => {
            answer(api::create(form.signed.caller(), State(state.clone()), json).await).await
        }
        Err(f) => Err(f),
    };
    match outcome {
        Ok(_) => page::redirect(&format!("/admin/tenants/{}?done=tenant-created", seg(&id))),
        Err(f) => {
            list_page(
                &state,
                &form.signed,
                None,
                None,
                Some((f.status, f.message)),
                (&id, form.text("display_name")),
            )
            .await
        }
    }
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    done: Option<String>,
}

async fn tenant_page(
    state: &AppState,
    op: &SignedIn,
    id: &str,
    done: Option<&str>,
    failed: Option<Failure>,
) -> Response {
    let tenant =
        match answer(api::get(op.caller(), State(state.clone()), ApiPath(id.to_string())).await)
            .await
        {
            Ok(t) => t,
            Err(f) => return problem(f),
        };
    let status = failed.as_ref().map_or(StatusCode::OK, |f| f.status);
    page::render(
        status,
        &TenantPage {
            nav: Nav::new(op, Some(id), "overview"),
            id: id.to_string(),
            seg: seg(id),
            display_name: text(&tenant, "display_name"),
            created: time_ms(tenant["created_at_ms"].as_u64().unwrap_or(0)),
            error: failed.map(|f| f.message),
            notice: notice(done),
        },
        &[],
    )
}

/// A failure (a tenant or record that does not exist, say) shown as a
/// page of its own.
pub fn problem(f: Failure) -> Response {
    use axum::response::IntoResponse;
    page::Problem::new(f.status, f.message).into_response()
}

/// `GET /admin/tenants/{t}`.
pub async fn show(
    op: SignedIn,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    tenant_page(&state, &op, &id, q.done.as_deref(), None).await
}

/// `POST /admin/tenants/{t}`: a new `display_name`.
pub async fn rename(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: ConsoleForm,
) -> Response {
    let body = json!({"display_name": form.text("display_name").trim()});
    let outcome = match calls::json(body) {
        Ok(json) => {
            answer(
                api::patch(
                    form.signed.caller(),
                    State(state.clone()),
                    ApiPath(id.clone()),
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
        Ok(_) => page::redirect(&format!("/admin/tenants/{}?done=tenant-renamed", seg(&id))),
        Err(f) => tenant_page(&state, &form.signed, &id, None, Some(f)).await,
    }
}

/// `POST /admin/tenants/{t}/delete`: `confirm` (the id, typed), `force`.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: ConsoleForm,
) -> Response {
    if form.text("confirm").trim() != id {
        let f = Failure::new(
            StatusCode::BAD_REQUEST,
            "Type the tenant's id to confirm the deletion.",
        );
        return tenant_page(&state, &form.signed, &id, None, Some(f)).await;
    }
    let force = form.field("force") == Some("true");
    let outcome = match calls::body::<api::DeleteQuery>(json!({"force": force})) {
        Ok(query) => {
            answer(
                api::delete(
                    form.signed.caller(),
                    State(state.clone()),
                    ApiPath(id.clone()),
                    HeaderMap::new(),
                    ApiQuery(query),
                )
                .await,
            )
            .await
        }
        Err(f) => Err(f),
    };
    match outcome {
        Ok(_) => page::redirect("/admin/tenants?done=tenant-deleted"),
        Err(f) => tenant_page(&state, &form.signed, &id, None, Some(f)).await,
    }
}
