//! `rsp admin clients ...`: a tenant's OAuth clients and their secrets.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::call::{Call, Paging, insert, nonempty, tenant_path};
use super::exit::CliResult;
use super::http::Api;
use super::inputs::{read_json, read_object};
use super::tenancy::TenantArg;

/// The fields of a client, for `create` and `update` (which sends only
/// those given).
#[derive(Args, Debug)]
pub struct ClientFields {
    /// authorization_code, refresh_token, client_credentials,
    /// urn:ietf:params:oauth:grant-type:device_code; repeatable
    #[arg(long = "grant-type", value_name = "GRANT")]
    grant_types: Vec<String>,
    /// client_secret_basic, client_secret_post, private_key_jwt or none
    #[arg(long = "auth-method", value_name = "METHOD")]
    auth_method: Option<String>,
    /// Repeatable
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// Repeatable
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Vec<String>,
    /// A scope the client may ask for; repeatable
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Shown on the consent page
    #[arg(long)]
    name: Option<String>,
    /// Show the consent page (`--require-consent=false` to stop)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    require_consent: Option<bool>,
    /// The client's public keys (a JWK set, for private_key_jwt)
    #[arg(long, value_name = "FILE")]
    jwks_file: Option<PathBuf>,
    /// A JSON object of any other fields (`-`: stdin); the flags above win
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
}

impl ClientFields {
    fn body(self) -> CliResult<Value> {
        let mut body = match &self.file {
            Some(file) => Value::Object(read_object(file)?),
            None => json!({}),
        };
        let lists = [
            ("grant_types", self.grant_types),
            ("redirect_uris", self.redirect_uris),
            ("post_logout_redirect_uris", self.post_logout_redirect_uris),
            ("scopes", self.scopes),
        ];
        for (key, list) in lists {
            if !list.is_empty() {
                body[key] = list.into();
            }
        }
        insert(&mut body, "token_endpoint_auth_method", self.auth_method);
        insert(&mut body, "client_name", self.name);
        insert(&mut body, "require_consent", self.require_consent);
        if let Some(file) = self.jwks_file {
            body["jwks"] = read_json(&file)?;
        }
        Ok(body)
    }
}

#[derive(Subcommand, Debug)]
pub enum Clients {
    /// Register a client; a confidential client's secret is shown once
    Create {
        #[command(flatten)]
        tenant: TenantArg,
        /// Random when absent
        #[arg(long)]
        client_id: Option<String>,
        #[command(flatten)]
        fields: ClientFields,
    },
    /// Show one client (never its secret)
    Get {
        #[command(flatten)]
        tenant: TenantArg,
        client_id: String,
    },
    /// List clients (paged)
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        paging: Paging,
    },
    /// Change the fields given
    Update {
        #[command(flatten)]
        tenant: TenantArg,
        client_id: String,
        #[command(flatten)]
        fields: ClientFields,
    },
    /// Delete a client
    Delete {
        #[command(flatten)]
        tenant: TenantArg,
        client_id: String,
    },
    /// Issue a new client secret (shown once); the old one stops working
    RotateSecret {
        #[command(flatten)]
        tenant: TenantArg,
        client_id: String,
    },
}

const CLIENT_COLUMNS: &[&str] = &[
    "client_id",
    "client_name",
    "token_endpoint_auth_method",
    "grant_types",
];

impl Clients {
    pub fn run(self, api: &Api) -> CliResult<()> {
        let call = match self {
            Clients::Create {
                tenant,
                client_id,
                fields,
            } => {
                let mut body = fields.body()?;
                insert(&mut body, "client_id", client_id);
                Call::post(&tenant_path(&tenant.tenant, &["clients"]), Some(body))
            }
            Clients::Get { tenant, client_id } => {
                Call::get(&tenant_path(&tenant.tenant, &["clients", &client_id]))
            }
            Clients::List { tenant, paging } => {
                Call::get(&tenant_path(&tenant.tenant, &["clients"])).paged(CLIENT_COLUMNS, paging)
            }
            Clients::Update {
                tenant,
                client_id,
                fields,
            } => Call::patch(
                &tenant_path(&tenant.tenant, &["clients", &client_id]),
                nonempty(fields.body()?)?,
            ),
            Clients::Delete { tenant, client_id } => Call::delete(
                &tenant_path(&tenant.tenant, &["clients", &client_id]),
                format!("deleted client {client_id}"),
            ),
            Clients::RotateSecret { tenant, client_id } => Call::post(
                &tenant_path(&tenant.tenant, &["clients", &client_id, "secret"]),
                None,
            ),
        };
        api.show(call)
    }
}
