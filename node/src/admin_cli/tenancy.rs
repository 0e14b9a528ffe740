//! `rsp admin tenants|users ...`: the calls that manage tenants and
//! the accounts in them.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::call::{Body, Call, Paging, insert, nonempty, tenant_path};
use super::exit::{CliResult, Failure};
use super::http::Api;
use super::inputs::{key_value, object, read_object, secret_from_stdin};

/// `--tenant`, shared by every call inside a tenant.
#[derive(Args, Debug, Clone)]
pub struct TenantArg {
    /// The tenant's id
    #[arg(long, short = 't', env = "RSP_TENANT", value_name = "TENANT")]
    pub tenant: String,
}

#[derive(Subcommand, Debug)]
pub enum Tenants {
    /// Create a tenant
    Create {
        /// 1-62 of a-z 0-9 -, starting with a letter or digit
        id: String,
        #[arg(long)]
        display_name: Option<String>,
        /// The region whose nodes lead the tenant's group
        #[arg(long)]
        home_region: Option<String>,
    },
    /// Show one tenant
    Get { id: String },
    /// List tenants (paged)
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// Change a tenant's display name, home region or settings
    Update {
        id: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        home_region: Option<String>,
        /// A JSON object of settings (`-`: stdin)
        #[arg(long, value_name = "FILE")]
        settings_file: Option<PathBuf>,
        /// One setting, e.g. `access_token_lifetime_secs=300` or
        /// `max_users=null` (the default again); repeatable, applied over
        /// --settings-file
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = key_value)]
        set: Vec<(String, Value)>,
    },
    /// Delete a tenant and all of its data
    Delete {
        id: String,
        /// Do not ask for confirmation (needed when stdin is not a terminal)
        #[arg(long)]
        force: bool,
    },
}

const TENANT_COLUMNS: &[&str] = &[
    "id",
    "display_name",
    "home_region",
    "group",
    "created_at_ms",
];

impl Tenants {
    pub fn run(self, api: &Api) -> CliResult<()> {
        let call = match self {
            Tenants::Create {
                id,
                display_name,
                home_region,
            } => {
                let mut body = json!({"id": id});
                insert(&mut body, "display_name", display_name);
                insert(&mut body, "home_region", home_region);
                Call::post(&["tenants"], Some(body))
            }
            Tenants::Get { id } => Call::get(&["tenants", &id]),
            Tenants::List { paging } => Call::get(&["tenants"]).paged(TENANT_COLUMNS, paging),
            Tenants::Update {
                id,
                display_name,
                home_region,
                settings_file,
                set,
            } => {
                let mut body = json!({});
                insert(&mut body, "display_name", display_name);
                insert(&mut body, "home_region", home_region);
                let mut settings = match settings_file {
                    Some(file) => Some(read_object(&file)?),
                    None => None,
                };
                if !set.is_empty() {
                    settings.get_or_insert_default().extend(object(set));
                }
                if let Some(settings) = settings {
                    body["settings"] = Value::Object(settings);
                }
                Call::patch(&["tenants", &id], nonempty(body)?)
            }
            Tenants::Delete { id, force } => {
                if !force {
                    confirm(&id)?;
                }
                // Confirmed: the tenant goes with its data (the server
                // refuses to delete a tenant holding data without it).
                Call::delete(&["tenants", &id], format!("deleted tenant {id}"))
                    .query("force", Some(true))
            }
        };
        api.show(call)
    }
}

/// Asks on a terminal for the tenant id before deleting it.
fn confirm(id: &str) -> CliResult<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::usage(format!(
            "deleting tenant `{id}` removes all of its data: add --force"
        )));
    }
    eprint!("Deleting tenant `{id}` removes all of its data. Type its id to go on: ");
    let mut typed = String::new();
    let _ = stdin.lock().read_line(&mut typed);
    match typed.trim() == id {
        true => Ok(()),
        false => Err(Failure::usage("not confirmed; nothing was deleted")),
    }
}

#[derive(Subcommand, Debug)]
pub enum Users {
    /// Create a user; the password is read from stdin
    Create {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        username: String,
        /// Read the password from stdin (never from the command line)
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long)]
        email: Option<String>,
        /// An attribute, KEY=VALUE (VALUE as JSON when it parses); repeatable
        #[arg(long = "attribute", value_name = "KEY=VALUE", value_parser = key_value)]
        attributes: Vec<(String, Value)>,
    },
    /// Show one user (never a password hash)
    Get {
        #[command(flatten)]
        tenant: TenantArg,
        user: String,
    },
    /// List users (paged)
    List {
        #[command(flatten)]
        tenant: TenantArg,
        /// Only the user with this username
        #[arg(long)]
        username: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Change a user's email, attributes or whether they may sign in
    Update {
        #[command(flatten)]
        tenant: TenantArg,
        user: String,
        #[arg(long)]
        email: Option<String>,
        /// Replaces every attribute with those given; KEY=VALUE, repeatable
        #[arg(long = "attribute", value_name = "KEY=VALUE", value_parser = key_value)]
        attributes: Vec<(String, Value)>,
        /// Replace every attribute with this JSON object (`-`: stdin)
        #[arg(long, value_name = "FILE", conflicts_with = "attributes")]
        attributes_file: Option<PathBuf>,
        /// Stop the user signing in; their sessions and refresh tokens stop working
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
    },
    /// Delete a user with their sessions, refresh tokens and factors
    Delete {
        #[command(flatten)]
        tenant: TenantArg,
        user: String,
    },
    /// Set a user's password, read from stdin
    SetPassword {
        #[command(flatten)]
        tenant: TenantArg,
        user: String,
        /// Read the password from stdin (never from the command line)
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

const USER_COLUMNS: &[&str] = &["id", "username", "email", "disabled", "created_at_ms"];

/// A body with a password, serialized into a wiped buffer.
#[derive(serde::Serialize)]
struct WithPassword<'a> {
    #[serde(flatten)]
    fields: &'a Map<String, Value>,
    password: &'a str,
}

fn password_body(fields: &Map<String, Value>) -> CliResult<Body> {
    let password = secret_from_stdin("password")?;
    let body = WithPassword {
        fields,
        password: &password,
    };
    Body::secret(&body, password.len())
}

impl Users {
    pub fn run(self, api: &Api) -> CliResult<()> {
        let call = match self {
            Users::Create {
                tenant,
                username,
                password_stdin: _,
                email,
                attributes,
            } => {
                let mut fields = Map::new();
                fields.insert("username".into(), username.into());
                if let Some(email) = email {
                    fields.insert("email".into(), email.into());
                }
                if !attributes.is_empty() {
                    fields.insert("attributes".into(), object(attributes).into());
                }
                let body = password_body(&fields)?;
                Call::post(&tenant_path(&tenant.tenant, &["users"]), None).secret_body(body)
            }
            Users::Get { tenant, user } => {
                Call::get(&tenant_path(&tenant.tenant, &["users", &user]))
            }
            Users::List {
                tenant,
                username,
                paging,
            } => Call::get(&tenant_path(&tenant.tenant, &["users"]))
                .query("username", username)
                .paged(USER_COLUMNS, paging),
            Users::Update {
                tenant,
                user,
                email,
                attributes,
                attributes_file,
                disable,
                enable,
            } => {
                let mut body = json!({});
                insert(&mut body, "email", email);
                if !attributes.is_empty() {
                    body["attributes"] = object(attributes).into();
                }
                if let Some(file) = attributes_file {
                    body["attributes"] = read_object(&file)?.into();
                }
                if disable || enable {
                    body["disabled"] = disable.into();
                }
                Call::patch(
                    &tenant_path(&tenant.tenant, &["users", &user]),
                    nonempty(body)?,
                )
            }
            Users::Delete { tenant, user } => Call::delete(
                &tenant_path(&tenant.tenant, &["users", &user]),
                format!("deleted user {user}"),
            ),
            Users::SetPassword { tenant, user, .. } => {
                let body = password_body(&Map::new())?;
                Call::put(
                    &tenant_path(&tenant.tenant, &["users", &user, "password"]),
                    json!({}),
                )
                .secret_body(body)
                .view(super::call::View::Done(format!("password of {user} set")))
            }
        };
        api.show(call)
    }
}
