//! The schemas in [`super::mirrors`] list exactly the fields the types
//! they describe serialize (and a registration with every documented
//! field decodes), so a field added to or removed from one of those types
//! fails here until its schema follows.

use std::collections::{BTreeMap, BTreeSet};

use rsp_consensus::{ClusterStatus, MemberStatus, ReadInfo, Role};
use rsp_identity::kek_ring::KekStatus;
use rsp_identity::keys::{KeySettings, SigningAlg, Staged};
use rsp_identity::mfa_policy::MfaPolicy;
use rsp_identity::saml::providers::Registration;
use rsp_identity::tenants::{Tenant, TenantSettings};
use rsp_policies::records::{PolicyVersion, StoredEntities, StoredLink};
use rsp_policies::{Receipt, VersionSummary};
use serde::Serialize;
use serde_json::Value;
use utoipa::OpenApi;

use super::AdminApi;

fn schemas() -> Value {
    serde_json::to_value(AdminApi::openapi()).expect("document")["components"]["schemas"].clone()
}

fn properties(schemas: &Value, name: &str) -> BTreeSet<String> {
    schemas[name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no schema {name} with properties"))
        .keys()
        .cloned()
        .collect()
}

fn fields(value: impl Serialize) -> BTreeSet<String> {
    serde_json::to_value(value)
        .expect("serializes")
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

/// Settings with every setting set.
fn every_setting() -> TenantSettings {
    let patch = serde_json::json!({
        "access_token_lifetime_secs": 300,
        "id_token_lifetime_secs": 300,
        "refresh_token_idle_lifetime_secs": 3600,
        "refresh_token_absolute_lifetime_secs": 7200,
        "session_idle_timeout_secs": 600,
        "session_absolute_lifetime_secs": 3600,
        "lockout_threshold": 3,
        "lockout_window_secs": 600,
        "lockout_duration_secs": 600,
        "password_min_length": 10,
        "password_block_common": true,
        "password_blocklist": ["acme"],
        "signing_algorithms": ["ES256"],
        "consent_required_by_default": true,
        "max_users": 10,
        "max_clients": 10,
        "audit_retention_days": 30,
    });
    let settings = TenantSettings::default()
        .patched(patch.as_object().expect("an object"))
        .expect("valid");
    assert_eq!(
        fields(&settings).len(),
        rsp_identity::tenants::settings::NAMES.len(),
        "a setting is missing from this test"
    );
    settings
}

fn same(schemas: &Value, name: &str, value: impl Serialize) {
    assert_eq!(
        properties(schemas, name),
        fields(value),
        "schema {name} (left) and the type's fields (right) differ"
    );
}

#[test]
fn mirrored_schemas_list_the_fields_their_types_serialize() {
    let s = schemas();
    same(
        &s,
        "Tenant",
        Tenant {
            id: "acme".into(),
            display_name: "Acme".into(),
            created_at_ms: 1,
            settings: TenantSettings {
                max_users: Some(1),
                ..TenantSettings::default()
            },
        },
    );
    same(&s, "TenantSettings", every_setting());
    same(&s, "KeySettings", KeySettings::default());
    same(&s, "MfaPolicy", MfaPolicy::default());
    same(
        &s,
        "Staged",
        Staged {
            kid: "k".into(),
            alg: SigningAlg::ES256,
            activates_at_ms: 1,
        },
    );
    same(
        &s,
        "KekStatus",
        KekStatus {
            generation: 1,
            current: "a".into(),
            previous: vec![],
            rotating: false,
            rotated_at_ms: None,
            resealed_at_ms: None,
            waiting_for: vec![],
            resealed: 0,
        },
    );
    let member = MemberStatus {
        id: 1,
        peer_addr: "127.0.0.1:1".into(),
        http_addr: String::new(),
        zone: "z".into(),
        region: "r".into(),
        role: Role::Leader,
    };
    same(&s, "MemberStatus", member.clone());
    same(
        &s,
        "ClusterStatus",
        ClusterStatus {
            leader: Some(1),
            term: 1,
            this_node: 1,
            last_applied: None,
            last_log_index: None,
            snapshot_index: None,
            purged_index: None,
            members: vec![member],
        },
    );
    same(
        &s,
        "ReadInfo",
        ReadInfo {
            consistency: "linearizable",
            node_id: 1,
            applied_index: 1,
            revision: 1,
            leader: Some(1),
            leader_silence_ms: None,
            behind_since_ms: None,
        },
    );
    // Optional fields set, so that they serialize.
    same(
        &s,
        "PolicyVersion",
        PolicyVersion {
            version: 2,
            policies: String::new(),
            schema: Some(Value::Null),
            author: "op".into(),
            time_ms: 1,
            restored_from: Some(1),
        },
    );
    same(
        &s,
        "Receipt",
        Receipt {
            version: 1,
            unconfirmed: vec![2],
        },
    );
    same(
        &s,
        "VersionSummary",
        VersionSummary {
            version: 1,
            author: "op".into(),
            time_ms: 1,
            restored_from: Some(1),
            current: true,
        },
    );
    same(
        &s,
        "StoredLink",
        StoredLink {
            id: "l".into(),
            template: "t".into(),
            values: BTreeMap::new(),
            author: "op".into(),
            time_ms: 1,
        },
    );
    same(
        &s,
        "StoredEntities",
        StoredEntities {
            entities: Value::Array(vec![]),
            author: "op".into(),
            time_ms: 1,
        },
    );
}

#[test]
fn a_registered_service_provider_has_the_fields_its_schema_lists() {
    let s = schemas();
    let sp = Registration {
        entity_id: Some("https://sp.example/saml".into()),
        acs_url: Some("https://sp.example/saml/acs".into()),
        ..Registration::default()
    }
    .into_provider(0)
    .expect("a valid registration");
    same(&s, "Acs", sp.acs[0].clone());
    if let Some(mapping) = sp.attributes.first() {
        same(&s, "AttributeMapping", mapping.clone());
    }
    same(&s, "ServiceProvider", sp);
}

#[test]
fn every_documented_registration_field_is_one_the_type_takes() {
    // `Registration` refuses unknown fields; null is "absent" for each.
    let every: serde_json::Map<String, Value> = properties(&schemas(), "Registration")
        .into_iter()
        .map(|name| (name, Value::Null))
        .collect();
    let decoded = serde_json::from_value::<Registration>(Value::Object(every));
    assert!(decoded.is_ok(), "{decoded:?}");
}
