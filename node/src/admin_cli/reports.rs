//! `rsp admin audit|usage|openapi`: what happened in a tenant, how much it
//! was used, and the API's own description.

use clap::Subcommand;

use super::call::{Call, Paging, tenant_path};
use super::exit::CliResult;
use super::http::Api;
use super::tenancy::TenantArg;

#[derive(Subcommand, Debug)]
pub enum Audit {
    /// List a tenant's audit events, newest first (paged)
    List {
        #[command(flatten)]
        tenant: TenantArg,
        /// Only events of this type (user.created, login.failed, ...)
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
}

impl Audit {
    pub fn run(self, api: &Api) -> CliResult<()> {
        let Audit::List {
            tenant,
            kind,
            paging,
        } = self;
        let call = Call::get(&tenant_path(&tenant.tenant, &["audit"]))
            .query("type", kind)
            .paged(&["time", "type", "actor", "outcome", "id"], paging);
        api.show(call)
    }
}

/// `rsp admin usage`: a tenant's daily activity.
pub fn usage(
    api: &Api,
    tenant: &TenantArg,
    from: Option<String>,
    to: Option<String>,
) -> CliResult<()> {
    let call = Call::get(&tenant_path(&tenant.tenant, &["usage"]))
        .query("from", from)
        .query("to", to)
        .list(
            Some("days"),
            &[
                "date",
                "active_users",
                "logins",
                "tokens_issued",
                "authz_decisions",
            ],
        );
    api.show(call)
}

/// `rsp admin openapi`: the OpenAPI document of the admin routes.
pub fn openapi(api: &Api) -> CliResult<()> {
    let Some(body) = api.send(&Call::get(&["openapi.json"]), &[])?.body else {
        return Ok(());
    };
    super::http::print(&format!("{}\n", super::output::json(&body)));
    Ok(())
}
