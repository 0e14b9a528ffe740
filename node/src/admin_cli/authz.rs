//! `rsp admin policies|entities ...`: a tenant's Cedar policy set, its
//! versions and template links, and its entities.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Value, json};

use super::call::{Call, tenant_path};
use super::exit::CliResult;
use super::http::{Api, print};
use super::inputs::{key_text, read_json, read_text};
use super::output::Output;
use super::tenancy::TenantArg;

#[derive(Subcommand, Debug)]
pub enum Policies {
    /// Show the tenant's policy set (Cedar text; JSON with --output json)
    Get {
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Replace the policy set with a Cedar file; a bad one is refused with
    /// Cedar's diagnostics
    Put {
        #[command(flatten)]
        tenant: TenantArg,
        /// Cedar policies (`-`: stdin)
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// A Cedar JSON schema to validate them against
        #[arg(long, value_name = "FILE")]
        schema_file: Option<PathBuf>,
    },
    /// List the stored versions of the policy set
    Versions {
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Show one stored version
    Version {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(value_name = "VERSION")]
        number: u64,
    },
    /// Make an earlier version current again (as a new version)
    Restore {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(value_name = "VERSION")]
        number: u64,
    },
    /// List the template links
    Links {
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Link a template: `--value ?principal=User::"alice"`, repeatable
    Link {
        #[command(flatten)]
        tenant: TenantArg,
        link_id: String,
        #[arg(long)]
        template: String,
        #[arg(long = "value", value_name = "SLOT=ENTITY", value_parser = key_text)]
        values: Vec<(String, String)>,
    },
    /// Delete a template link
    Unlink {
        #[command(flatten)]
        tenant: TenantArg,
        link_id: String,
    },
}

impl Policies {
    pub fn run(self, api: &Api) -> CliResult<()> {
        let call = match self {
            Policies::Get { tenant } => {
                let call = Call::get(&tenant_path(&tenant.tenant, &["policies"]));
                if api.output == Output::Table {
                    // People read the Cedar text as it was written.
                    let answer = api.send(&call, &[])?;
                    let body = answer.body.unwrap_or(Value::Null);
                    match body["policies"].as_str() {
                        Some(text) if text.ends_with('\n') || text.is_empty() => print(text),
                        Some(text) => print(&format!("{text}\n")),
                        None => print(&super::output::object(&body)),
                    }
                    return Ok(());
                }
                call
            }
            Policies::Put {
                tenant,
                file,
                schema_file,
            } => {
                let text = read_text(&file)?;
                let mut body = json!({ "policies": text });
                if let Some(schema) = schema_file {
                    body["schema"] = read_json(&schema)?;
                }
                Call::put(&tenant_path(&tenant.tenant, &["policies"]), body).source(text)
            }
            Policies::Versions { tenant } => {
                Call::get(&tenant_path(&tenant.tenant, &["policies", "versions"])).list(
                    Some("versions"),
                    &["version", "current", "author", "created_at_ms"],
                )
            }
            Policies::Version { tenant, number } => Call::get(&tenant_path(
                &tenant.tenant,
                &["policies", "versions", &number.to_string()],
            )),
            Policies::Restore { tenant, number } => Call::post(
                &tenant_path(
                    &tenant.tenant,
                    &["policies", "versions", &number.to_string(), "restore"],
                ),
                None,
            ),
            Policies::Links { tenant } => {
                Call::get(&tenant_path(&tenant.tenant, &["policies", "links"]))
            }
            Policies::Link {
                tenant,
                link_id,
                template,
                values,
            } => {
                let values: serde_json::Map<String, Value> =
                    values.into_iter().map(|(k, v)| (k, v.into())).collect();
                Call::put(
                    &tenant_path(&tenant.tenant, &["policies", "links", &link_id]),
                    json!({ "template": template, "values": values }),
                )
            }
            Policies::Unlink { tenant, link_id } => Call::delete(
                &tenant_path(&tenant.tenant, &["policies", "links", &link_id]),
                format!("deleted link {link_id}"),
            ),
        };
        api.show(call)
    }
}

#[derive(Subcommand, Debug)]
pub enum Entities {
    /// Show the tenant's stored Cedar entities
    Get {
        #[command(flatten)]
        tenant: TenantArg,
    },
    /// Replace the stored entities with a JSON array of Cedar entities
    Put {
        #[command(flatten)]
        tenant: TenantArg,
        /// Cedar entity JSON (`-`: stdin)
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
}

impl Entities {
    pub fn run(self, api: &Api) -> CliResult<()> {
        let call = match self {
            Entities::Get { tenant } => Call::get(&tenant_path(&tenant.tenant, &["entities"])),
            Entities::Put { tenant, file } => Call::put(
                &tenant_path(&tenant.tenant, &["entities"]),
                read_json(&file)?,
            ),
        };
        api.show(call)
    }
}
