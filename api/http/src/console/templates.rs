//! The console's askama templates (`api/http/templates/console/`,
//! HTML-escaped by default; nothing here is marked safe) and the rows they
//! show. Every signed-in page carries a [`Nav`]: the sign-out form's
//! anti-forgery token and the tenant being looked at.

use askama::Template;

use super::session::{Principal, SignedIn};

/// The header of a signed-in page.
pub struct Nav {
    /// The session's anti-forgery token (every form carries it).
    pub csrf: String,
    /// Whether the operator is signed in (the tenant list and the cluster
    /// are theirs only).
    pub operator: bool,
    /// Who is signed in, in words.
    pub who: String,
    /// The tenant the page is about, if any.
    pub tenant: Option<String>,
    /// That tenant's id as a path segment.
    pub tenant_seg: String,
    /// `tenants`, `overview`, `users`, `clients`, `policies` or `cluster`.
    pub section: &'static str,
}

impl Nav {
    pub fn new(signed: &SignedIn, tenant: Option<&str>, section: &'static str) -> Nav {
        Nav {
            csrf: signed.csrf.clone(),
            operator: signed.is_operator(),
            who: match &signed.principal {
                Principal::Operator => "operator".to_string(),
                Principal::TenantAdmin {
                    tenant, username, ..
                } => format!("{username} (administrator of {tenant})"),
            },
            tenant: tenant.map(str::to_string),
            tenant_seg: tenant.map(super::calls::seg).unwrap_or_default(),
            section,
        }
    }
}

/// A fixed message after a successful change (`?done=`): never text from
/// the request.
pub fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "tenant-created" => "Tenant created.",
        "tenant-renamed" => "Display name saved.",
        "tenant-deleted" => "Tenant deleted.",
        "user-created" => "User created.",
        "user-disabled" => "User disabled; their sessions and refresh tokens ended on every node.",
        "user-enabled" => "User enabled.",
        "password-set" => "Password set.",
        "factor-deleted" => "Factor removed.",
        "sessions-revoked" => "Sessions ended.",
        "client-saved" => "Client saved.",
        "policies-saved" => "Policies saved; they govern decisions on every node.",
        _ => return None,
    })
}

#[derive(Template)]
#[template(path = "console/login.html")]
pub struct LoginPage {
    pub csrf: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/problem.html")]
pub struct ProblemPage {
    pub status: u16,
    pub message: String,
}

pub struct TenantRow {
    pub id: String,
    pub seg: String,
    pub display_name: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "console/tenants.html")]
pub struct TenantsPage {
    pub nav: Nav,
    pub items: Vec<TenantRow>,
    /// The next page's link, if there is one.
    pub next: Option<String>,
    pub error: Option<String>,
    pub notice: Option<&'static str>,
    pub form_id: String,
    pub form_name: String,
}

#[derive(Template)]
#[template(path = "console/tenant.html")]
pub struct TenantPage {
    pub nav: Nav,
    pub id: String,
    pub seg: String,
    pub display_name: String,
    pub created: String,
    pub error: Option<String>,
    pub notice: Option<&'static str>,
}

pub struct UserRow {
    pub seg: String,
    pub username: String,
    pub email: String,
    pub disabled: bool,
}

#[derive(Template)]
#[template(path = "console/users.html")]
pub struct UsersPage {
    pub nav: Nav,
    pub tenant_seg: String,
    pub search: String,
    pub items: Vec<UserRow>,
    pub next: Option<String>,
    pub error: Option<String>,
    pub notice: Option<&'static str>,
    pub form_username: String,
    pub form_email: String,
}

pub struct FactorRow {
    pub seg: String,
    pub kind: String,
    pub detail: String,
    pub created: String,
}

pub struct SessionRow {
    pub id: String,
    pub created: String,
    pub last_seen: String,
    pub expires: String,
    pub amr: String,
}

#[derive(Template)]
#[template(path = "console/user.html")]
pub struct UserPage {
    pub nav: Nav,
    pub tenant_seg: String,
    pub id: String,
    pub seg: String,
    pub username: String,
    pub email: String,
    pub disabled: bool,
    pub created: String,
    pub attributes: String,
    pub factors: Vec<FactorRow>,
    pub factors_error: Option<String>,
    pub sessions: Vec<SessionRow>,
    pub sessions_error: Option<String>,
    pub error: Option<String>,
    pub notice: Option<&'static str>,
}

/// A client registration's fields, as a form shows them.
#[derive(Default)]
pub struct ClientForm {
    pub client_id: String,
    pub client_name: String,
    /// One per line.
    pub redirect_uris: String,
    /// One per line.
    pub post_logout_redirect_uris: String,
    /// Space-separated.
    pub grant_types: String,
    pub method: String,
    /// Space-separated.
    pub scopes: String,
    pub require_consent: bool,
}

/// The token endpoint authentication methods a client form offers.
pub const AUTH_METHODS: [&str; 4] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];

impl ClientForm {
    /// The authentication methods, with whether each is this form's.
    pub fn methods(&self) -> Vec<(&'static str, bool)> {
        AUTH_METHODS
            .iter()
            .map(|m| (*m, *m == self.method))
            .collect()
    }
}

pub struct ClientRow {
    pub id: String,
    pub seg: String,
    pub name: String,
    pub method: String,
    pub grants: String,
}

#[derive(Template)]
#[template(path = "console/clients.html")]
pub struct ClientsPage {
    pub nav: Nav,
    pub tenant_seg: String,
    pub items: Vec<ClientRow>,
    pub next: Option<String>,
    pub error: Option<String>,
    pub notice: Option<&'static str>,
    pub form: ClientForm,
}

#[derive(Template)]
#[template(path = "console/client.html")]
pub struct ClientPage {
    pub nav: Nav,
    pub tenant_seg: String,
    pub seg: String,
    pub has_secret: bool,
    pub form: ClientForm,
    pub error: Option<String>,
    pub notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "console/secret.html")]
pub struct SecretPage {
    pub nav: Nav,
    pub tenant_seg: String,
    pub client_id: String,
    pub seg: String,
    pub secret: String,
    /// `registered` or `rotated`.
    pub what: &'static str,
}

#[derive(Template)]
#[template(path = "console/policies.html")]
pub struct PoliciesPage {
    pub nav: Nav,
    pub tenant_seg: String,
    pub version: u64,
    pub author: String,
    pub time: String,
    pub policies: String,
    pub schema: String,
    pub diagnostics: Vec<super::calls::DiagnosticLine>,
    pub error: Option<String>,
    pub notice: Option<&'static str>,
}

pub struct MemberRow {
    pub id: u64,
    pub peer_addr: String,
    pub http_addr: String,
    pub zone: String,
    pub region: String,
    pub role: String,
    /// How far the leader knows it has replicated, on the leader.
    pub matched: String,
}

#[derive(Template)]
#[template(path = "console/cluster.html")]
pub struct ClusterPage {
    pub nav: Nav,
    pub leader: String,
    pub term: u64,
    pub this_node: u64,
    pub last_applied: String,
    pub last_log_index: String,
    pub snapshot_index: String,
    pub ready: bool,
    pub readiness: String,
    pub degraded: Vec<String>,
    pub is_leader: bool,
    pub members: Vec<MemberRow>,
}
