//! `rsp admin saml sps ...`: a tenant's registered SAML service providers,
//! by fields or by the SP's own metadata.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::call::insert;
use super::call::{Call, Paging, tenant_path};
use super::exit::CliResult;
use super::http::Api;
use super::inputs::{read_object, read_text};
use super::tenancy::TenantArg;

#[derive(Subcommand, Debug)]
pub enum Saml {
    /// Registered service providers
    #[command(name = "sps", visible_alias = "service-providers")]
    Sps {
        #[command(subcommand)]
        verb: Sps,
    },
}

/// A registration: its fields, or the SP's metadata, or a JSON file of
/// any registration fields (docs/saml.md); the flags win over the file.
#[derive(Args, Debug)]
pub struct Registration {
    /// The SP's own EntityDescriptor XML (`-`: stdin)
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    #[arg(long)]
    display_name: Option<String>,
    /// Where assertions are posted
    #[arg(long)]
    acs_url: Option<String>,
    #[arg(long)]
    slo_url: Option<String>,
    /// The SP's signing certificate (PEM)
    #[arg(long, value_name = "FILE")]
    certificate_file: Option<PathBuf>,
    /// persistent (default), email, transient, unspecified, or a URI
    #[arg(long)]
    name_id_format: Option<String>,
    /// A JSON object of registration fields (`-`: stdin)
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
}

impl Registration {
    fn body(self, entity_id: Option<String>) -> CliResult<Value> {
        let mut body = match &self.file {
            Some(file) => Value::Object(read_object(file)?),
            None => json!({}),
        };
        insert(&mut body, "entity_id", entity_id);
        if let Some(file) = self.metadata_file {
            body["metadata_xml"] = read_text(&file)?.into();
        }
        insert(&mut body, "display_name", self.display_name);
        insert(&mut body, "acs_url", self.acs_url);
        insert(&mut body, "slo_url", self.slo_url);
        if let Some(file) = self.certificate_file {
            body["certificate_pem"] = read_text(&file)?.into();
        }
        insert(&mut body, "name_id_format", self.name_id_format);
        Ok(body)
    }
}

#[derive(Subcommand, Debug)]
pub enum Sps {
    /// Register an SP by its fields or its metadata
    Create {
        #[command(flatten)]
        tenant: TenantArg,
        /// Read from the metadata when absent
        #[arg(long)]
        entity_id: Option<String>,
        #[command(flatten)]
        registration: Registration,
    },
    /// Show one SP
    Get {
        #[command(flatten)]
        tenant: TenantArg,
        entity_id: String,
    },
    /// List SPs
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        paging: Paging,
    },
    /// Replace an SP's registration with the one given
    Update {
        #[command(flatten)]
        tenant: TenantArg,
        entity_id: String,
        #[command(flatten)]
        registration: Registration,
    },
    /// Delete an SP
    Delete {
        #[command(flatten)]
        tenant: TenantArg,
        entity_id: String,
    },
}

/// `/admin/v1/tenants/{t}/saml/service-providers`.
fn sps(tenant: &TenantArg) -> Vec<&str> {
    tenant_path(&tenant.tenant, &["saml", "service-providers"])
}

const SP_COLUMNS: &[&str] = &["entity_id", "display_name", "name_id_format", "acs"];

impl Saml {
    pub fn run(self, api: &Api) -> CliResult<()> {
        let Saml::Sps { verb } = self;
        let call = match verb {
            Sps::Create {
                tenant,
                entity_id,
                registration,
            } => Call::post(&sps(&tenant), Some(registration.body(entity_id)?)),
            Sps::Get { tenant, entity_id } => {
                let mut path = sps(&tenant);
                path.push(&entity_id);
                Call::get(&path)
            }
            Sps::List { tenant, paging } => Call::get(&sps(&tenant)).paged(SP_COLUMNS, paging),
            Sps::Update {
                tenant,
                entity_id,
                registration,
            } => {
                let body = registration.body(Some(entity_id.clone()))?;
                let mut path = sps(&tenant);
                path.push(&entity_id);
                Call::put(&path, body)
            }
            Sps::Delete { tenant, entity_id } => {
                let mut path = sps(&tenant);
                path.push(&entity_id);
                Call::delete(&path, format!("deleted service provider {entity_id}"))
            }
        };
        api.show(call)
    }
}
