//! Metadata both ways: the tenant IdP's own `EntityDescriptor` (what an
//! SP is configured from), and the fields rsp takes from an SP's metadata
//! when it is registered with `metadata_xml`.

use std::str::FromStr;

use samael::metadata::EntityDescriptor;

use super::SamlError;
use super::providers::{Acs, BINDING_POST, BINDING_REDIRECT, NameIdFormat};
use super::wire::{checked_xml, escape};

/// What an SP's metadata says, as rsp uses it.
#[derive(Debug, Clone)]
pub struct SpMetadata {
    pub entity_id: String,
    /// The HTTP-POST assertion consumer services (rsp answers by POST).
    pub acs: Vec<Acs>,
    pub slo_url: Option<String>,
    /// Signing certificates, DER base64.
    pub certificates: Vec<String>,
    /// Encryption certificates (`use="encryption"`, or no `use`), DER
    /// base64.
    pub encryption_certificates: Vec<String>,
    pub name_id_format: Option<NameIdFormat>,
    pub authn_requests_signed: bool,
}

/// Read an SP's `EntityDescriptor`.
pub fn parse_sp_metadata(xml: &str) -> Result<SpMetadata, SamlError> {
    let xml = checked_xml(xml.as_bytes().to_vec())?;
    let descriptor = EntityDescriptor::from_str(&xml)
        .map_err(|e| SamlError::invalid(format!("metadata_xml is not SAML metadata: {e}")))?;
    let entity_id = descriptor
        .entity_id
        .clone()
        .ok_or_else(|| SamlError::invalid("metadata_xml has no entityID"))?;
    let sp = descriptor
        .sp_sso_descriptors
        .as_ref()
        .and_then(|d| d.first())
        .ok_or_else(|| SamlError::invalid("metadata_xml has no SPSSODescriptor"))?;
    let acs = sp
        .assertion_consumer_services
        .iter()
        .filter(|e| e.binding == BINDING_POST)
        .map(|e| Acs {
            index: e.index as u32,
            url: e.location.clone(),
            is_default: e.is_default.unwrap_or(false),
        })
        .collect();
    let slo = sp.single_logout_services.as_deref().unwrap_or_default();
    let slo_url = slo
        .iter()
        .find(|e| e.binding == BINDING_REDIRECT)
        .or_else(|| slo.iter().find(|e| e.binding == BINDING_POST))
        .map(|e| e.location.clone());
    let keys = sp.key_descriptors.as_deref().unwrap_or_default();
    let certificates_for = |key_use: &str| -> Result<Vec<String>, SamlError> {
        let certificates = keys
            .iter()
            .filter(|k| k.key_use.as_deref().is_none_or(|u| u == key_use))
            .filter_map(|k| k.key_info.x509_data.as_ref())
            .flat_map(|d| d.certificates.iter())
            .map(|c| c.chars().filter(|c| !c.is_whitespace()).collect::<String>())
            .collect::<Vec<_>>();
        for cert in &certificates {
            let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, cert)
                .map_err(|_| {
                    SamlError::invalid("metadata_xml: an X509Certificate is not base64")
                })?;
            openssl::x509::X509::from_der(&der).map_err(|_| {
                SamlError::invalid("metadata_xml: an X509Certificate is not a certificate")
            })?;
        }
        Ok(certificates)
    };
    let certificates = certificates_for("signing")?;
    let encryption_certificates = certificates_for("encryption")?;
    let name_id_format = sp
        .name_id_formats
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find_map(|f| NameIdFormat::parse(f.trim()));
    Ok(SpMetadata {
        entity_id,
        acs,
        slo_url,
        certificates,
        encryption_certificates,
        name_id_format,
        authn_requests_signed: sp.authn_requests_signed.unwrap_or(false),
    })
}

/// The tenant IdP's endpoints.
#[derive(Debug, Clone)]
pub struct IdpEndpoints {
    pub entity_id: String,
    pub sso: String,
    pub slo: String,
}

impl IdpEndpoints {
    /// The endpoints of the tenant whose issuer is `issuer`.
    pub fn of(issuer: &str) -> Self {
        IdpEndpoints {
            entity_id: format!("{issuer}/saml/metadata"),
            sso: format!("{issuer}/saml/sso"),
            slo: format!("{issuer}/saml/slo"),
        }
    }
}

/// The IdP's `EntityDescriptor`: every certificate in `certificates` (DER;
/// the one that signs and the one published to sign next), single sign-on
/// and logout by HTTP-Redirect and HTTP-POST, the NameID formats.
pub fn idp_metadata(endpoints: &IdpEndpoints, certificates: &[Vec<u8>]) -> String {
    use base64::Engine;
    let mut xml = String::with_capacity(4096);
    xml.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    xml.push_str(&format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{}">"#,
        escape(&endpoints.entity_id)
    ));
    xml.push_str(r#"<md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">"#);
    for cert in certificates {
        xml.push_str(&format!(
            r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#,
            base64::engine::general_purpose::STANDARD.encode(cert)
        ));
    }
    for binding in [BINDING_REDIRECT, BINDING_POST] {
        xml.push_str(&format!(
            r#"<md:SingleLogoutService Binding="{binding}" Location="{}"/>"#,
            escape(&endpoints.slo)
        ));
    }
    for format in NameIdFormat::ALL {
        xml.push_str(&format!(
            "<md:NameIDFormat>{}</md:NameIDFormat>",
            format.uri()
        ));
    }
    for binding in [BINDING_REDIRECT, BINDING_POST] {
        xml.push_str(&format!(
            r#"<md:SingleSignOnService Binding="{binding}" Location="{}"/>"#,
            escape(&endpoints.sso)
        ));
    }
    xml.push_str("</md:IDPSSODescriptor></md:EntityDescriptor>");
    xml
}
