//! `/admin/tenants/{t}/policies`: the tenant's Cedar policies (and
//! optional JSON schema) in a text area. A save Cedar refuses shows its
//! diagnostics above the text, which is kept as typed; nothing is stored.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::calls::{self, Failure, answer, seg, text, time_ms};
use super::page;
use super::session::{ConsoleForm, SignedIn};
use super::templates::{Nav, PoliciesPage, notice};
use super::tenants::problem;
use crate::admin::policies as api;
use crate::extract::ApiPath;
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    done: Option<String>,
}

/// What the text areas show instead of the stored version (after a
/// refused save).
struct Typed {
    policies: String,
    schema: String,
    failure: Failure,
}

async fn policies_page(
    state: &AppState,
    op: &SignedIn,
    tenant: &str,
    done: Option<&str>,
    typed: Option<Typed>,
) -> Response {
    let current = match answer(
        api::get_policies(
            op.caller(),
            State(state.clone()),
            ApiPath(tenant.to_string()),
        )
        .await,
    )
    .await
    {
        Ok(c) => c,
        Err(f) => return problem(f),
    };
    let stored_schema = match &current["schema"] {
        Value::Null => String::new(),
        schema => serde_json::to_string_pretty(schema).unwrap_or_default(),
    };
    let (status, policies, schema, diagnostics, error) = match typed {
        Some(mut t) => {
            for d in &mut t.failure.diagnostics {
                if let Some(offset) = d.offset {
                    d.at = calls::line_and_column(&t.policies, offset);
                }
            }
            let error = t
                .failure
                .diagnostics
                .is_empty()
                .then_some(t.failure.message);
            (
                t.failure.status,
                t.policies,
                t.schema,
                t.failure.diagnostics,
                error,
            )
        }
        None => (
            StatusCode::OK,
            text(&current, "policies"),
            stored_schema,
            Vec::new(),
            None,
        ),
    };
    page::render(
        status,
        &PoliciesPage {
            nav: Nav::new(op, Some(tenant), "policies"),
            tenant_seg: seg(tenant),
            version: current["version"].as_u64().unwrap_or(0),
            author: text(&current, "author"),
            time: time_ms(current["time_ms"].as_u64().unwrap_or(0)),
            policies,
            schema,
            diagnostics,
            error,
            notice: notice(done),
        },
        &[],
    )
}

/// `GET /admin/tenants/{t}/policies`.
pub async fn show(
    op: SignedIn,
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    policies_page(&state, &op, &tenant, q.done.as_deref(), None).await
}

/// `POST /admin/tenants/{t}/policies`: `policies` (Cedar text) and
/// `schema` (Cedar JSON schema, optional).
pub async fn save(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    form: ConsoleForm,
) -> Response {
    let policies = form.text("policies").to_string();
    let schema_text = form.text("schema").trim().to_string();
    let outcome = async {
        let mut body = json!({"policies": policies});
        if !schema_text.is_empty() {
            let schema: Value = serde_json::from_str(&schema_text).map_err(|e| {
                Failure::new(
                    StatusCode::BAD_REQUEST,
                    format!("The schema is not JSON: {e}"),
                )
            })?;
            body["schema"] = schema;
        }
        let json = calls::json(body)?;
        answer(
            api::put_policies(
                form.signed.caller(),
                State(state.clone()),
                ApiPath(tenant.clone()),
                json,
            )
            .await,
        )
        .await
    }
    .await;
    match outcome {
        Ok(_) => page::redirect(&format!(
            "/admin/tenants/{}/policies?done=policies-saved",
            seg(&tenant)
        )),
        Err(failure) => {
            let typed = Typed {
                policies,
                schema: schema_text,
                failure,
            };
            policies_page(&state, &form.signed, &tenant, None, Some(typed)).await
        }
    }
}
