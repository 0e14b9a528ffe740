//! Who may use the admin API, decided by Cedar with a built-in policy set.
//!
//! Principals: `Rsp::Operator::"admin-token"` (the node's admin token) and
//! `Rsp::TenantAdmin::"<tenant>/<sub>"` (an access token of a tenant with
//! scope `rsp:admin`, a user's only while the user is granted it, which
//! `rsp-api` checks; its `tenant` attribute is that tenant). Resources:
//! `Rsp::Cluster::"cluster"` and `Rsp::Tenant::"<id>"`. Actions are grouped:
//! `ManageTenant` (reading the tenant, its policies, entities, users,
//! factors, sessions and clients) and `ManageCluster` (tenants themselves,
//! nodes, the raw key-value API, and `Unclassified`: an admin route that no
//! one has classified yet, so only the operator reaches it).
//!
//! The rules: the operator may do everything; a tenant admin may do
//! `ManageTenant` actions on its own tenant only, and nothing in
//! `ManageCluster` (an explicit forbid, so a later permit cannot widen it).

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityUid, PolicySet, Request,
    RestrictedExpression, Schema,
};

use crate::error::PolicyError;

/// The built-in policies (also in docs/authorization.md).
pub const ADMIN_POLICIES: &str = r#"
@id("operator-all")
permit (principal is Rsp::Operator, action, resource);

@id("tenant-admin-own-tenant")
permit (
    principal is Rsp::TenantAdmin,
    action in Rsp::Action::"ManageTenant",
    resource is Rsp::Tenant
)
when { principal.tenant == resource };

@id("tenant-admin-never-cluster")
forbid (
    principal is Rsp::TenantAdmin,
    action in Rsp::Action::"ManageCluster",
    resource
);
"#;

/// The schema the built-in policies validate against (strict).
pub const ADMIN_SCHEMA: &str = r#"{
  "Rsp": {
    "entityTypes": {
      "Operator": {},
      "TenantAdmin": {
        "shape": {"type": "Record", "attributes": {
          "tenant": {"type": "Entity", "name": "Tenant"},
          "subject": {"type": "String"}
        }}
      },
      "Tenant": {},
      "Cluster": {}
    },
    "actions": {
      "ManageTenant": {},
      "ManageCluster": {},
      "ReadTenant": {"memberOf": [{"id": "ManageTenant"}],
        "appliesTo": {"principalTypes": ["Operator", "TenantAdmin"], "resourceTypes": ["Tenant"]}},
      "ReadPolicies": {"memberOf": [{"id": "ManageTenant"}],
        "appliesTo": {"principalTypes": ["Operator", "TenantAdmin"], "resourceTypes": ["Tenant"]}},
      "WritePolicies": {"memberOf": [{"id": "ManageTenant"}],
        "appliesTo": {"principalTypes": ["Operator", "TenantAdmin"], "resourceTypes": ["Tenant"]}},
      "WriteEntities": {"memberOf": [{"id": "ManageTenant"}],
        "appliesTo": {"principalTypes": ["Operator", "TenantAdmin"], "resourceTypes": ["Tenant"]}},
      "ManageAccounts": {"memberOf": [{"id": "ManageTenant"}],
        "appliesTo": {"principalTypes": ["Operator", "TenantAdmin"], "resourceTypes": ["Tenant"]}},
      "ManageClients": {"memberOf": [{"id": "ManageTenant"}],
        "appliesTo": {"principalTypes": ["Operator", "TenantAdmin"], "resourceTypes": ["Tenant"]}},
      "ReadCluster": {"memberOf": [{"id": "ManageCluster"}],
        "appliesTo": {"principalTypes": ["Operator", "TenantAdmin"], "resourceTypes": ["Cluster"]}},
      "Unclassified": {"memberOf": [{"id": "ManageCluster"}],
        "appliesTo": {"principalTypes": ["Operator", "TenantAdmin"], "resourceTypes": ["Cluster"]}},
      "CreateTenant": {"memberOf": [{"id": "ManageCluster"}],
        "appliesTo": {"principalTypes": ["Operator", "TenantAdmin"], "resourceTypes": ["Cluster"]}},
      "DeleteTenant": {"memberOf": [{"id": "ManageCluster"}],
        "appliesTo": {"principalTypes": ["Operator", "TenantAdmin"], "resourceTypes": ["Tenant"]}},
      "ManageNodes": {"memberOf": [{"id": "ManageCluster"}],
        "appliesTo": {"principalTypes": ["Operator", "TenantAdmin"], "resourceTypes": ["Cluster"]}},
      "RawKeyValue": {"memberOf": [{"id": "ManageCluster"}],
        "appliesTo": {"principalTypes": ["Operator", "TenantAdmin"], "resourceTypes": ["Cluster"]}}
    }
  }
}"#;

/// Who is calling the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminPrincipal {
    /// The holder of the node's admin token.
    Operator,
    /// A tenant's administrator (`subject` of an access token of `tenant`
    /// carrying scope `rsp:admin`).
    TenantAdmin { tenant: String, subject: String },
}

impl AdminPrincipal {
    /// What the audit trail (policy version authors) records.
    pub fn author(&self) -> String {
        match self {
            AdminPrincipal::Operator => "admin-token".to_string(),
            AdminPrincipal::TenantAdmin { tenant, subject } => format!("{tenant}/{subject}"),
        }
    }
}

/// What an admin call does. The first group is `ManageTenant` (resource: a
/// tenant), the second `ManageCluster`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdminAction {
    ReadTenant,
    ReadPolicies,
    WritePolicies,
    WriteEntities,
    /// Users, their factors and sessions.
    ManageAccounts,
    /// OAuth clients and SAML service providers.
    ManageClients,
    CreateTenant,
    DeleteTenant,
    ReadCluster,
    ManageNodes,
    RawKeyValue,
    /// An admin route with no classification: operator only.
    Unclassified,
}

impl AdminAction {
    pub const ALL: [AdminAction; 12] = [
        AdminAction::ReadTenant,
        AdminAction::ReadPolicies,
        AdminAction::WritePolicies,
        AdminAction::WriteEntities,
        AdminAction::ManageAccounts,
        AdminAction::ManageClients,
        AdminAction::CreateTenant,
        AdminAction::DeleteTenant,
        AdminAction::ReadCluster,
        AdminAction::ManageNodes,
        AdminAction::RawKeyValue,
        AdminAction::Unclassified,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AdminAction::ReadTenant => "ReadTenant",
            AdminAction::ManageClients => "ManageClients",
            AdminAction::ReadCluster => "ReadCluster",
            AdminAction::Unclassified => "Unclassified",
            AdminAction::ReadPolicies => "ReadPolicies",
            AdminAction::WritePolicies => "WritePolicies",
            AdminAction::WriteEntities => "WriteEntities",
            AdminAction::ManageAccounts => "ManageAccounts",
            AdminAction::CreateTenant => "CreateTenant",
            AdminAction::DeleteTenant => "DeleteTenant",
            AdminAction::ManageNodes => "ManageNodes",
            AdminAction::RawKeyValue => "RawKeyValue",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminResource {
    Cluster,
    Tenant(String),
}

/// The built-in admin policy set, compiled once.
pub struct AdminAuthorizer {
    policies: PolicySet,
    schema: Schema,
    actions: Entities,
    authorizer: Authorizer,
}

impl std::fmt::Debug for AdminAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminAuthorizer")
    }
}

fn entity_uid(type_name: &str, id: &str) -> Result<EntityUid, PolicyError> {
    crate::evaluate::uid(type_name, id, "admin")
}

impl AdminAuthorizer {
    pub fn new() -> Result<Self, PolicyError> {
        let json: serde_json::Value =
            serde_json::from_str(ADMIN_SCHEMA).map_err(PolicyError::corrupt)?;
        let schema = crate::compile::parse_schema(&json)?;
        let policies = crate::compile::parse_policies(ADMIN_POLICIES)?;
        crate::compile::validate(&policies, &schema)?;
        let actions = schema.action_entities().map_err(PolicyError::corrupt)?;
        Ok(AdminAuthorizer {
            policies,
            schema,
            actions,
            authorizer: Authorizer::new(),
        })
    }

    /// Whether `principal` may do `action` on `resource`, and the built-in
    /// policies that decided it.
    pub fn is_allowed(
        &self,
        principal: &AdminPrincipal,
        action: AdminAction,
        resource: &AdminResource,
    ) -> Result<(bool, Vec<String>), PolicyError> {
        let (principal_uid, principal_entity) = match principal {
            AdminPrincipal::Operator => {
                let uid = entity_uid("Rsp::Operator", "admin-token")?;
                (uid.clone(), Entity::with_uid(uid))
            }
            AdminPrincipal::TenantAdmin { tenant, subject } => {
                let uid = entity_uid("Rsp::TenantAdmin", &format!("{tenant}/{subject}"))?;
                let attrs = [
                    (
                        "tenant".to_string(),
                        RestrictedExpression::new_entity_uid(entity_uid("Rsp::Tenant", tenant)?),
                    ),
                    (
                        "subject".to_string(),
                        RestrictedExpression::new_string(subject.clone()),
                    ),
                ]
                .into_iter()
                .collect();
                let entity = Entity::new(uid.clone(), attrs, Default::default())
                    .map_err(PolicyError::corrupt)?;
                (uid, entity)
            }
        };
        let resource_uid = match resource {
            AdminResource::Cluster => entity_uid("Rsp::Cluster", "cluster")?,
            AdminResource::Tenant(t) => entity_uid("Rsp::Tenant", t)?,
        };
        let resource_entity = Entity::with_uid(resource_uid.clone());
        let entities = self
            .actions
            .clone()
            .add_entities([principal_entity, resource_entity], Some(&self.schema))
            .map_err(PolicyError::corrupt)?;
        let request = Request::new(
            principal_uid,
            entity_uid("Rsp::Action", action.name())?,
            resource_uid,
            Context::empty(),
            Some(&self.schema),
        )
        .map_err(|e| PolicyError::corrupt(format!("admin request: {e}")))?;
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &entities);
        let mut reasons: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| id.to_string())
            .collect();
        reasons.sort();
        Ok((response.decision() == Decision::Allow, reasons))
    }
}
