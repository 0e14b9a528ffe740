//! The service providers (SPs) a tenant's SAML IdP answers: registered by
//! fields or from the SP's own metadata, kept in the tenant's keyspace
//! (`saml_sp/<entity id, base64url>`), read locally and confirmed with a
//! quorum read before "not found".

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rsp_consensus::kv::{Compare, CompareTarget, Key, Txn, TxnOp, tenant_keyspace};
use rsp_consensus::{Consensus, Consistency};
use serde::{Deserialize, Serialize};

use super::SamlError;
use crate::crypto::{b64url, b64url_decode};
use crate::miss_gate::{MissGate, MissRefused};

pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";

/// Assertion lifetimes an SP may ask for (seconds).
const LIFETIME_RANGE: std::ops::RangeInclusive<u64> = 30..=3600;
const DEFAULT_LIFETIME_SECS: u64 = 300;
const MAX_ENTITY_ID: usize = 1024;

/// How the subject of an assertion is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NameIdFormat {
    /// Stable per user and SP, opaque, never the username (the default).
    #[default]
    Persistent,
    /// The user's email address.
    Email,
    /// New for every assertion.
    Transient,
    /// The username.
    Unspecified,
}

impl NameIdFormat {
    pub fn uri(self) -> &'static str {
        match self {
            NameIdFormat::Persistent => "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            NameIdFormat::Email => "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
            NameIdFormat::Transient => "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
            NameIdFormat::Unspecified => "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
        }
    }

    pub const ALL: [NameIdFormat; 4] = [
        NameIdFormat::Persistent,
        NameIdFormat::Email,
        NameIdFormat::Transient,
        NameIdFormat::Unspecified,
    ];

    /// From a short name (`persistent`, `email`, `transient`,
    /// `unspecified`) or a NameID format URI.
    pub fn parse(text: &str) -> Option<Self> {
        NameIdFormat::ALL.into_iter().find(|f| {
            f.uri() == text
                || matches!(
                    (f, text),
                    (NameIdFormat::Persistent, "persistent")
                        | (NameIdFormat::Email, "email" | "emailAddress")
                        | (NameIdFormat::Transient, "transient")
                        | (NameIdFormat::Unspecified, "unspecified")
                )
        })
    }
}

/// An assertion consumer service: where the SP takes the Response (by
/// HTTP-POST).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acs {
    pub index: u32,
    pub url: String,
    #[serde(default)]
    pub is_default: bool,
}

/// Which user field becomes which SAML attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeMapping {
    /// `email`, `username`, `id`, or `attributes.<name>` (a user
    /// attribute; a string, a number, a boolean or a list of them).
    pub source: String,
    /// The attribute's `Name`.
    pub name: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// The attribute's `NameFormat` (`basic` by default).
    #[serde(default)]
    pub name_format: Option<String>,
}

impl AttributeMapping {
    fn new(source: &str, name: &str) -> Self {
        AttributeMapping {
            source: source.into(),
            name: name.into(),
            friendly_name: None,
            name_format: None,
        }
    }

    fn check(&self) -> Result<(), SamlError> {
        let known = matches!(self.source.as_str(), "email" | "username" | "id")
            || self
                .source
                .strip_prefix("attributes.")
                .is_some_and(|n| !n.is_empty());
        if !known {
            return Err(SamlError::invalid(format!(
                "attributes: source `{}` is not email, username, id or attributes.<name>",
                self.source
            )));
        }
        if self.name.is_empty() || self.name.len() > 256 {
            return Err(SamlError::invalid(
                "attributes: name must be 1 to 256 characters",
            ));
        }
        Ok(())
    }
}

/// A registered service provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceProvider {
    pub entity_id: String,
    pub display_name: Option<String>,
    /// Where Responses go; at least one.
    pub acs: Vec<Acs>,
    /// Where LogoutRequests and LogoutResponses go.
    pub slo_url: Option<String>,
    /// Signing certificates (DER, base64): AuthnRequests and
    /// LogoutRequests are checked against them.
    pub certificates: Vec<String>,
    pub name_id_format: NameIdFormat,
    pub attributes: Vec<AttributeMapping>,
    pub assertion_lifetime_secs: u64,
    /// Refuse AuthnRequests without a valid signature.
    pub require_signed_requests: bool,
    /// Sign the Response as well as the Assertion.
    pub sign_response: bool,
    /// Ask the user before the first assertion (and again when the
    /// attributes released change).
    #[serde(default)]
    pub require_consent: bool,
    /// Send the assertion as an `EncryptedAssertion` to
    /// [`Self::encryption_certificate`].
    #[serde(default)]
    pub encrypt_assertions: bool,
    /// The certificate (DER, base64) whose RSA key assertions are
    /// encrypted to.
    #[serde(default)]
    pub encryption_certificate: Option<String>,
    pub created_at_ms: u64,
}

impl ServiceProvider {
    /// The ACS a request names by URL or index, or the default one. An ACS
    /// URL the SP did not register is never used.
    pub fn acs_for(&self, url: Option<&str>, index: Option<u32>) -> Result<&Acs, SamlError> {
        match (url, index) {
            (Some(url), _) => self.acs.iter().find(|a| a.url == url).ok_or_else(|| {
                SamlError::request_denied(
                    "the AssertionConsumerServiceURL is not registered for this service provider",
                )
            }),
            (None, Some(index)) => self.acs.iter().find(|a| a.index == index).ok_or_else(|| {
                SamlError::request_denied(
                    "the AssertionConsumerServiceIndex is not registered for this service provider",
                )
            }),
            (None, None) => self
                .acs
                .iter()
                .find(|a| a.is_default)
                .or_else(|| self.acs.iter().min_by_key(|a| a.index))
                .ok_or_else(|| {
                    SamlError::request_denied(
                        "the service provider has no assertion consumer service",
                    )
                }),
        }
    }

    /// The name consents to this SP are kept under, beside OAuth client
    /// ids (which never hold a `/`).
    pub fn consent_subject(&self) -> String {
        format!("saml/{}", b64url(self.entity_id.as_bytes()))
    }

    /// What a consent to this SP covers when it is sent NameIDs of
    /// `name_id_format`: that format and each attribute mapping (source
    /// and name), space-separated, so a new or changed mapping, or another
    /// format, asks again.
    pub fn consent_scope(&self, name_id_format: NameIdFormat) -> String {
        let mut items: Vec<String> = self
            .attributes
            .iter()
            .map(|a| b64url(format!("{}\n{}", a.source, a.name).as_bytes()))
            .collect();
        items.push(b64url(name_id_format.uri().as_bytes()));
        items.join(" ")
    }

    /// The SP's signing certificates, DER.
    pub fn certificates_der(&self) -> Vec<Vec<u8>> {
        self.certificates
            .iter()
            .filter_map(|c| STANDARD.decode(c).ok())
            .collect()
    }
}

/// What the admin API takes to register (or replace) an SP: fields, the
/// SP's metadata, or both (fields win over metadata).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub entity_id: Option<String>,
    pub display_name: Option<String>,
    /// One ACS (index 0, the default).
    pub acs_url: Option<String>,
    /// Several, indexed.
    pub acs: Option<Vec<Acs>>,
    pub slo_url: Option<String>,
    pub certificate_pem: Option<String>,
    pub certificates_pem: Option<Vec<String>>,
    /// The certificate assertions are encrypted to; by default the SP
    /// metadata's encryption certificate, else its first signing one.
    pub encryption_certificate_pem: Option<String>,
    /// `persistent` (default), `email`, `transient`, `unspecified`, or a
    /// NameID format URI.
    pub name_id_format: Option<String>,
    pub attributes: Option<Vec<AttributeMapping>>,
    pub assertion_lifetime_secs: Option<u64>,
    pub require_signed_requests: Option<bool>,
    pub sign_response: Option<bool>,
    pub require_consent: Option<bool>,
    pub encrypt_assertions: Option<bool>,
    /// The SP's `EntityDescriptor`.
    pub metadata_xml: Option<String>,
}

impl Registration {
    /// The service provider this registration describes, checked.
    pub fn into_provider(self, now_ms: u64) -> Result<ServiceProvider, SamlError> {
        let from_metadata = match &self.metadata_xml {
            Some(xml) => Some(super::metadata::parse_sp_metadata(xml)?),
            None => None,
        };
        let entity_id = self
            .entity_id
            .or_else(|| from_metadata.as_ref().map(|m| m.entity_id.clone()))
            .ok_or_else(|| SamlError::invalid("entity_id (or metadata_xml) is required"))?;
        if entity_id.trim().is_empty()
            || entity_id.len() > MAX_ENTITY_ID
            || entity_id.trim() != entity_id
        {
            return Err(SamlError::invalid(format!(
                "entity_id must be 1 to {MAX_ENTITY_ID} characters without surrounding spaces"
            )));
        }
        let acs = match (self.acs, self.acs_url) {
            (Some(_), Some(_)) => {
                return Err(SamlError::invalid("give acs_url or acs, not both"));
            }
            (Some(acs), None) => acs,
            (None, Some(url)) => vec![Acs {
                index: 0,
                url,
                is_default: true,
            }],
            (None, None) => from_metadata
                .as_ref()
                .map(|m| m.acs.clone())
                .unwrap_or_default(),
        };
        if acs.is_empty() {
            return Err(SamlError::invalid(
                "acs_url (or an HTTP-POST AssertionConsumerService in metadata_xml) is required",
            ));
        }
        for a in &acs {
            check_url("acs_url", &a.url)?;
        }
        let mut indexes: Vec<u32> = acs.iter().map(|a| a.index).collect();
        indexes.sort_unstable();
        indexes.dedup();
        if indexes.len() != acs.len() {
            return Err(SamlError::invalid("acs: two services share an index"));
        }
        let slo_url = self
            .slo_url
            .or_else(|| from_metadata.as_ref().and_then(|m| m.slo_url.clone()));
        if let Some(url) = &slo_url {
            check_url("slo_url", url)?;
        }
        let pems: Vec<String> = match (self.certificate_pem, self.certificates_pem) {
            (Some(one), Some(more)) => std::iter::once(one).chain(more).collect(),
            (Some(one), None) => vec![one],
            (None, Some(more)) => more,
            (None, None) => Vec::new(),
        };
        let mut certificates = Vec::new();
        for pem in &pems {
            certificates.push(STANDARD.encode(certificate_der_from_pem(pem)?));
        }
        if certificates.is_empty()
            && let Some(m) = &from_metadata
        {
            certificates = m.certificates.clone();
        }
        let name_id_format = match &self.name_id_format {
            Some(f) => NameIdFormat::parse(f).ok_or_else(|| {
                SamlError::invalid(
                    "name_id_format must be persistent, email, transient or unspecified",
                )
            })?,
            None => from_metadata
                .as_ref()
                .and_then(|m| m.name_id_format)
                .unwrap_or_default(),
        };
        let attributes = self.attributes.unwrap_or_else(|| {
            vec![
                AttributeMapping::new("email", "email"),
                AttributeMapping::new("username", "username"),
            ]
        });
        for a in &attributes {
            a.check()?;
        }
        let assertion_lifetime_secs = self
            .assertion_lifetime_secs
            .unwrap_or(DEFAULT_LIFETIME_SECS);
        if !LIFETIME_RANGE.contains(&assertion_lifetime_secs) {
            return Err(SamlError::invalid(format!(
                "assertion_lifetime_secs must be {} to {}",
                LIFETIME_RANGE.start(),
                LIFETIME_RANGE.end()
            )));
        }
        let require_signed_requests = self
            .require_signed_requests
            .or_else(|| from_metadata.as_ref().map(|m| m.authn_requests_signed))
            .unwrap_or(false);
        if require_signed_requests && certificates.is_empty() {
            return Err(SamlError::invalid(
                "require_signed_requests needs the SP's signing certificate",
            ));
        }
        let encryption_certificate = match &self.encryption_certificate_pem {
            Some(pem) => Some(STANDARD.encode(certificate_der_from_pem(pem)?)),
            None => from_metadata
                .as_ref()
                .and_then(|m| m.encryption_certificates.first().cloned())
                .or_else(|| certificates.first().cloned()),
        };
        let encrypt_assertions = self.encrypt_assertions.unwrap_or(false);
        if encrypt_assertions {
            let der = encryption_certificate
                .as_deref()
                .and_then(|c| STANDARD.decode(c).ok())
                .ok_or_else(|| {
                    SamlError::invalid(
                        "encrypt_assertions needs the SP's encryption certificate (encryption_certificate_pem, or one in metadata_xml)",
                    )
                })?;
            super::encryption::check_recipient(&der)?;
        }
        Ok(ServiceProvider {
            entity_id,
            display_name: self.display_name,
            acs,
            slo_url,
            certificates,
            name_id_format,
            attributes,
            assertion_lifetime_secs,
            require_signed_requests,
            sign_response: self.sign_response.unwrap_or(false),
            require_consent: self.require_consent.unwrap_or(false),
            encrypt_assertions,
            encryption_certificate,
            created_at_ms: now_ms,
        })
    }
}

/// An absolute http(s) URL without a fragment.
fn check_url(field: &str, text: &str) -> Result<(), SamlError> {
    match url::Url::parse(text) {
        Ok(u)
            if matches!(u.scheme(), "https" | "http")
                && u.fragment().is_none()
                && u.host().is_some() =>
        {
            Ok(())
        }
        _ => Err(SamlError::invalid(format!(
            "{field} must be an absolute http(s) URL without a fragment"
        ))),
    }
}

/// The DER of a PEM certificate (one `CERTIFICATE` block), checked to be
/// an X.509 certificate.
pub fn certificate_der_from_pem(pem: &str) -> Result<Vec<u8>, SamlError> {
    let cert = openssl::x509::X509::from_pem(pem.as_bytes())
        .map_err(|_| SamlError::invalid("certificate_pem is not a PEM X.509 certificate"))?;
    cert.to_der()
        .map_err(|_| SamlError::invalid("certificate_pem is not a PEM X.509 certificate"))
}

/// SP records, listed in the order of their keys (the base64url of the
/// entity id).
pub const SP_LISTING_PREFIX: &[u8] = b"saml_sp/";

fn sp_key(tenant: &str, entity_id: &str) -> Key {
    Key::new(
        tenant_keyspace(tenant),
        format!("saml_sp/{}", b64url(entity_id.as_bytes())).into_bytes(),
    )
}

/// The SP registry of every tenant.
#[derive(Clone)]
pub struct ProviderService {
    consensus: Consensus,
}

impl ProviderService {
    pub fn new(consensus: Consensus) -> Self {
        ProviderService { consensus }
    }

    /// Register `sp`; [`SamlError::Exists`] when its entity id is taken.
    pub async fn create(&self, tenant: &str, sp: &ServiceProvider) -> Result<(), SamlError> {
        let value = serde_json::to_vec(sp).map_err(SamlError::internal)?;
        let txn = Txn::put_if_absent(sp_key(tenant, &sp.entity_id), value, None);
        if self.consensus.txn(txn).await?.succeeded {
            Ok(())
        } else {
            Err(SamlError::Exists(sp.entity_id.clone()))
        }
    }

    /// Replace a registered SP (its creation time kept).
    pub async fn replace(
        &self,
        tenant: &str,
        mut sp: ServiceProvider,
    ) -> Result<ServiceProvider, SamlError> {
        let existing = self
            .get(tenant, &sp.entity_id, &crate::miss_gate::Ungated)
            .await?;
        sp.created_at_ms = existing.created_at_ms;
        let key = sp_key(tenant, &sp.entity_id);
        let value = serde_json::to_vec(&sp).map_err(SamlError::internal)?;
        let txn = Txn {
            compares: vec![Compare {
                key: key.clone(),
                target: CompareTarget::Exists(true),
            }],
            success: vec![TxnOp::Put {
                key,
                value,
                ttl_ms: None,
            }],
            failure: vec![],
        };
        if self.consensus.txn(txn).await?.succeeded {
            Ok(sp)
        } else {
            Err(SamlError::UnknownProvider)
        }
    }

    pub async fn delete(&self, tenant: &str, entity_id: &str) -> Result<(), SamlError> {
        let key = sp_key(tenant, entity_id);
        let txn = Txn {
            compares: vec![Compare {
                key: key.clone(),
                target: CompareTarget::Exists(true),
            }],
            success: vec![TxnOp::Delete { key }],
            failure: vec![],
        };
        if self.consensus.txn(txn).await?.succeeded {
            Ok(())
        } else {
            Err(SamlError::UnknownProvider)
        }
    }

    async fn read(
        &self,
        tenant: &str,
        entity_id: &str,
    ) -> Result<Option<ServiceProvider>, SamlError> {
        if entity_id.is_empty() || entity_id.len() > MAX_ENTITY_ID {
            return Ok(None);
        }
        let (kv, _) = self
            .consensus
            .get(&sp_key(tenant, entity_id), Consistency::Local)
            .await?;
        kv.map(|kv| serde_json::from_slice(&kv.value).map_err(SamlError::internal))
            .transpose()
    }

    /// A registered SP; "unknown" only after a quorum read (it may have
    /// been registered through another node a moment ago), which `gate`
    /// may refuse.
    pub async fn get(
        &self,
        tenant: &str,
        entity_id: &str,
        gate: &dyn MissGate,
    ) -> Result<ServiceProvider, SamlError> {
        if let Some(sp) = self.read(tenant, entity_id).await? {
            return Ok(sp);
        }
        if entity_id.is_empty() || entity_id.len() > MAX_ENTITY_ID {
            return Err(SamlError::UnknownProvider);
        }
        MissRefused::check(gate)?;
        self.consensus.linearizable_barrier().await?;
        self.read(tenant, entity_id)
            .await?
            .ok_or(SamlError::UnknownProvider)
    }

    /// Every SP of the tenant, in entity id order (a quorum read).
    pub async fn list(&self, tenant: &str) -> Result<Vec<ServiceProvider>, SamlError> {
        let (kvs, _) = self
            .consensus
            .range(
                &tenant_keyspace(tenant),
                b"saml_sp/",
                usize::MAX,
                Consistency::Linearizable,
            )
            .await?;
        let mut sps = kvs
            .iter()
            .map(|kv| serde_json::from_slice(&kv.value).map_err(SamlError::internal))
            .collect::<Result<Vec<ServiceProvider>, _>>()?;
        sps.sort_by(|a, b| a.entity_id.cmp(&b.entity_id));
        Ok(sps)
    }
}

/// The entity id a `saml_sp/` key names.
pub fn entity_id_of_key(key: &[u8]) -> Option<String> {
    let encoded = std::str::from_utf8(key.strip_prefix(b"saml_sp/")?).ok()?;
    String::from_utf8(b64url_decode(encoded)?).ok()
}
