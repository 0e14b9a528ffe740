//! SAML 2.0 is not in this build. Rather than a bare 404 (which reads as a
//! typo in the URL) or a page that pretends, every SAML endpoint of the
//! contract answers 501 `not_implemented` in the admin API's error format:
//! `{issuer}/saml/...` (metadata, single sign-on, logout) and
//! `POST /admin/v1/tenants/{t}/saml/service-providers` (behind the admin
//! authorization layer like every admin route).

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::any;

use crate::authz::caller::AdminCaller;
use crate::error::ApiError;
use crate::state::AppState;

const NOT_YET: &str = "SAML 2.0 is not available in this build yet; \
     OpenID Connect is, at the same issuer";

fn not_implemented() -> ApiError {
    ApiError::new(StatusCode::NOT_IMPLEMENTED, "not_implemented", NOT_YET)
}

/// `{issuer}/saml/{*rest}`, any method.
async fn tenant_endpoint(Path((_tenant, _rest)): Path<(String, String)>) -> ApiError {
    not_implemented()
}

/// `POST /admin/v1/tenants/{t}/saml/service-providers`.
pub async fn register_service_provider(
    _admin: AdminCaller,
    Path(_tenant): Path<String>,
) -> ApiError {
    not_implemented()
}

pub fn router() -> Router<AppState> {
    Router::new().route("/t/{tenant}/saml/{*rest}", any(tenant_endpoint))
}
