//! The built-in admin policy set: what the operator and tenant admins may do.

use rsp_policies::{AdminAction, AdminAuthorizer, AdminPrincipal, AdminResource};

fn acme_admin() -> AdminPrincipal {
    AdminPrincipal::TenantAdmin {
        tenant: "acme".into(),
        subject: "ops-client".into(),
    }
}

fn tenant(t: &str) -> AdminResource {
    AdminResource::Tenant(t.into())
}

#[test]
fn the_builtin_policies_validate_against_their_schema() {
    AdminAuthorizer::new().expect("the built-in admin policies compile and validate");
}

#[test]
fn the_operator_may_do_everything() {
    let a = AdminAuthorizer::new().expect("builds");
    for (action, resource) in [
        (AdminAction::WritePolicies, tenant("acme")),
        (AdminAction::DeleteTenant, tenant("acme")),
        (AdminAction::CreateTenant, AdminResource::Cluster),
        (AdminAction::ManageNodes, AdminResource::Cluster),
    ] {
        let (allowed, reasons) = a
            .is_allowed(&AdminPrincipal::Operator, action, &resource)
            .expect("decides");
        assert!(allowed, "{action:?}");
        assert_eq!(reasons, vec!["operator-all".to_string()]);
    }
}

#[test]
fn a_tenant_admin_manages_its_own_tenant() {
    let a = AdminAuthorizer::new().expect("builds");
    for action in [
        AdminAction::ReadPolicies,
        AdminAction::WritePolicies,
        AdminAction::WriteEntities,
        AdminAction::ManageAccounts,
    ] {
        let (allowed, _) = a
            .is_allowed(&acme_admin(), action, &tenant("acme"))
            .expect("decides");
        assert!(allowed, "{action:?}");
    }
}

#[test]
fn a_tenant_admin_cannot_touch_another_tenant() {
    let a = AdminAuthorizer::new().expect("builds");
    for action in [AdminAction::ReadPolicies, AdminAction::WritePolicies] {
        let (allowed, _) = a
            .is_allowed(&acme_admin(), action, &tenant("globex"))
            .expect("decides");
        assert!(!allowed, "{action:?} on another tenant");
    }
}

#[test]
fn a_tenant_admin_cannot_manage_the_cluster_or_delete_its_tenant() {
    let a = AdminAuthorizer::new().expect("builds");
    for (action, resource) in [
        (AdminAction::DeleteTenant, tenant("acme")),
        (AdminAction::CreateTenant, AdminResource::Cluster),
        (AdminAction::ManageNodes, AdminResource::Cluster),
        (AdminAction::RawKeyValue, AdminResource::Cluster),
    ] {
        let (allowed, _) = a
            .is_allowed(&acme_admin(), action, &resource)
            .expect("decides");
        assert!(!allowed, "{action:?}");
    }
}

/// The tenant-scoped actions (the `ManageTenant` group); the rest are
/// cluster actions.
const TENANT_ACTIONS: [AdminAction; 6] = [
    AdminAction::ReadTenant,
    AdminAction::ReadPolicies,
    AdminAction::WritePolicies,
    AdminAction::WriteEntities,
    AdminAction::ManageAccounts,
    AdminAction::ManageClients,
];

#[test]
fn every_action_is_decided_the_operator_may_all_a_tenant_admin_only_its_tenants() {
    let a = AdminAuthorizer::new().expect("builds");
    for action in AdminAction::ALL {
        let resources = if TENANT_ACTIONS.contains(&action) {
            vec![tenant("acme"), tenant("globex")]
        } else if action == AdminAction::DeleteTenant {
            vec![tenant("acme")]
        } else {
            vec![AdminResource::Cluster]
        };
        for resource in resources {
            let (operator, _) = a
                .is_allowed(&AdminPrincipal::Operator, action, &resource)
                .expect("decides");
            assert!(operator, "operator: {action:?} on {resource:?}");
            let (admin, reasons) = a
                .is_allowed(&acme_admin(), action, &resource)
                .expect("decides");
            let want = TENANT_ACTIONS.contains(&action) && resource == tenant("acme");
            assert_eq!(admin, want, "acme admin: {action:?} on {resource:?}");
            if want {
                assert_eq!(reasons, vec!["tenant-admin-own-tenant".to_string()]);
            }
        }
    }
}

#[test]
fn unclassified_routes_are_for_the_operator_only_even_on_the_admins_own_tenant() {
    let a = AdminAuthorizer::new().expect("builds");
    let (allowed, reasons) = a
        .is_allowed(
            &acme_admin(),
            AdminAction::Unclassified,
            &AdminResource::Cluster,
        )
        .expect("decides");
    assert!(!allowed);
    assert_eq!(reasons, vec!["tenant-admin-never-cluster".to_string()]);
}
