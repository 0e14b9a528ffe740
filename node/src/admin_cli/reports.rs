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
        /// Only events by this actor (operator, user:<id>, anonymous)
        #[arg(long)]
        actor: Option<String>,
        /// Only `success` or `failure`
        #[arg(long)]
        outcome: Option<String>,
        /// Events at or after this RFC 3339 time or YYYY-MM-DD date
        #[arg(long)]
        from: Option<String>,
        /// Events at or before this RFC 3339 time or YYYY-MM-DD date
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// The cluster's own events: membership, the KEK, tenants created and
    /// deleted, the key-value space (paged)
    Cluster {
        /// Only events of this type, or a family (cluster.*)
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Every matching event as JSON lines on stdout, newest first (for a
    /// SIEM)
    Export {
        #[command(flatten)]
        tenant: TenantArg,
        /// Only events of this type, or a family (login.*)
        #[arg(long = "type", value_name = "TYPE")]
        kind: Option<String>,
        /// Events at or after this RFC 3339 time or YYYY-MM-DD date
        #[arg(long)]
        from: Option<String>,
        /// Events at or before this RFC 3339 time or YYYY-MM-DD date
        #[arg(long)]
        to: Option<String>,
    },
}

impl Audit {
    pub fn run(self, api: &Api) -> CliResult<()> {
        match self {
            Audit::List {
                tenant,
                kind,
                actor,
                outcome,
                from,
                to,
                paging,
            } => {
                let call = Call::get(&tenant_path(&tenant.tenant, &["audit"]))
                    .query("type", kind)
                    .query("actor", actor)
                    .query("outcome", outcome)
                    .query("from", from)
                    .query("to", to)
                    .paged(&["time", "type", "actor", "outcome", "id"], paging);
                api.show(call)
            }
            Audit::Cluster { kind, paging } => {
                let call = Call::get(&["audit"]).query("type", kind).paged(
                    &["time", "type", "actor", "outcome", "tenant", "id"],
                    paging,
                );
                api.show(call)
            }
            Audit::Export {
                tenant,
                kind,
                from,
                to,
            } => {
                let call = Call::get(&tenant_path(&tenant.tenant, &["audit", "export"]))
                    .query("type", kind)
                    .query("from", from)
                    .query("to", to);
                let answer = api.send(&call, &[])?;
                super::http::print(&answer.text);
                Ok(())
            }
        }
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
