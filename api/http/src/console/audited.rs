//! The audit record of the console's changes: a form the console posts is
//! one admin API call ([`super::access::api_route`]), recorded as the API
//! records it ([`crate::admin::audit`], with `"via": "console"`), once the
//! page is answered. A page that answers under 400 (a redirect to the
//! result, or the page showing a new secret) is a success; a refusal shown
//! on the page is a failure. Pages that only show are not recorded, nor
//! are forms posted without a valid session (nothing was done).

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use rsp_identity::audit::Outcome;

use super::access::{Needs, api_route};
use super::session::SignedIn;
use crate::admin::audit;
use crate::authz::admin_access::owned;
use crate::state::AppState;

/// The layer's function, on every console route.
pub async fn record(
    State(state): State<AppState>,
    matched: MatchedPath,
    params: RawPathParams,
    method: Method,
    request: Request,
    next: Next,
) -> Response {
    let Needs::Api(api_method, api) = api_route(&method, matched.as_str()) else {
        return next.run(request).await;
    };
    if method != Method::POST || api.is_empty() || !audit::recorded(&api_method) {
        return next.run(request).await;
    }
    let signed = SignedIn::from_headers(&state, request.headers())
        .ok()
        .flatten();
    let ip = crate::miss_limit::peer_ip(request.extensions());
    let response = next.run(request).await;
    let Some(signed) = signed else {
        return response;
    };
    let principal = signed.caller().principal;
    let outcome = match response.status().as_u16() < 400 {
        true => Outcome::Success,
        false => Outcome::Failure,
    };
    let call = audit::Call {
        principal: &principal,
        method: &api_method,
        route: api,
        params: owned(&params),
        ip,
        via: Some("console"),
    };
    audit::record_call(&state, call, outcome, response).await
}
