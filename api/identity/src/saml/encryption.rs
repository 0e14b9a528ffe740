//! Encrypted assertions (XML Encryption 1.1): the signed `Assertion` is
//! encrypted with a fresh AES-256-GCM key, and that key with RSA-OAEP
//! (MGF1 over SHA-1, `rsa-oaep-mgf1p`, what Shibboleth, SimpleSAMLphp,
//! pysaml2/xmlsec1, Keycloak and ADFS all read) to the SP's encryption
//! certificate. The signature is inside, so the SP verifies it after
//! decrypting. OAEP's SHA-1 is a mask function, not a signature digest;
//! no SHA-1 signature or digest is made anywhere.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Padding;
use openssl::symm::{Cipher, encrypt_aead};
use openssl::x509::X509;
use zeroize::Zeroizing;

use super::SamlError;

pub const ALG_AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
pub const ALG_RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const DIGEST_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
const TYPE_ELEMENT: &str = "http://www.w3.org/2001/04/xmlenc#Element";

/// Smallest RSA key assertions are encrypted to.
const MIN_RSA_BITS: u32 = 2048;
const GCM_IV_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;

/// The public key of an SP's encryption certificate (DER), checked to be
/// RSA of at least 2048 bits.
pub fn check_recipient(certificate: &[u8]) -> Result<PKey<Public>, SamlError> {
    let key = X509::from_der(certificate)
        .and_then(|c| c.public_key())
        .map_err(|_| {
            SamlError::invalid("the encryption certificate is not an X.509 certificate")
        })?;
    if key.id() != Id::RSA || key.bits() < MIN_RSA_BITS {
        return Err(SamlError::invalid(format!(
            "the encryption certificate's key must be RSA of {MIN_RSA_BITS} bits or more"
        )));
    }
    Ok(key)
}

/// `assertion` (a signed `saml:Assertion` element) as the
/// `saml:EncryptedAssertion` element that replaces it, readable only with
/// the private key of `certificate` (DER).
pub fn encrypt_assertion(assertion: &str, certificate: &[u8]) -> Result<String, SamlError> {
    let recipient = check_recipient(certificate)?;
    let mut key = Zeroizing::new([0u8; 32]);
    let mut iv = [0u8; GCM_IV_LEN];
    openssl::rand::rand_bytes(key.as_mut()).map_err(SamlError::internal)?;
    openssl::rand::rand_bytes(&mut iv).map_err(SamlError::internal)?;
    let mut tag = [0u8; GCM_TAG_LEN];
    let sealed = encrypt_aead(
        Cipher::aes_256_gcm(),
        key.as_ref(),
        Some(&iv),
        &[],
        assertion.as_bytes(),
        &mut tag,
    )
    .map_err(SamlError::internal)?;
    // XML Encryption 1.1: the IV, then the ciphertext, then the tag.
    let mut data = Vec::with_capacity(GCM_IV_LEN + sealed.len() + GCM_TAG_LEN);
    data.extend_from_slice(&iv);
    data.extend_from_slice(&sealed);
    data.extend_from_slice(&tag);

    let rsa = recipient.rsa().map_err(SamlError::internal)?;
    let mut wrapped = vec![0u8; rsa.size() as usize];
    let len = rsa
        .public_encrypt(key.as_ref(), &mut wrapped, Padding::PKCS1_OAEP)
        .map_err(SamlError::internal)?;
    wrapped.truncate(len);

    Ok(format!(
        concat!(
            r#"<saml:EncryptedAssertion>"#,
            r#"<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="{element}">"#,
            r#"<xenc:EncryptionMethod Algorithm="{aes}"/>"#,
            r#"<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>"#,
            r#"<xenc:EncryptionMethod Algorithm="{oaep}"><ds:DigestMethod Algorithm="{sha1}"/></xenc:EncryptionMethod>"#,
            r#"<xenc:CipherData><xenc:CipherValue>{key}</xenc:CipherValue></xenc:CipherData>"#,
            r#"</xenc:EncryptedKey></ds:KeyInfo>"#,
            r#"<xenc:CipherData><xenc:CipherValue>{data}</xenc:CipherValue></xenc:CipherData>"#,
            r#"</xenc:EncryptedData></saml:EncryptedAssertion>"#
        ),
        element = TYPE_ELEMENT,
        aes = ALG_AES256_GCM,
        oaep = ALG_RSA_OAEP_MGF1P,
        sha1 = DIGEST_SHA1,
        key = STANDARD.encode(wrapped),
        data = STANDARD.encode(data),
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use openssl::pkey::Private;
    use openssl::symm::decrypt_aead;

    /// A key pair and a self-signed certificate (DER) for it.
    pub(crate) fn recipient(bits: u32) -> (PKey<Private>, Vec<u8>) {
        let rsa = openssl::rsa::Rsa::generate(bits).unwrap();
        let key = PKey::from_rsa(rsa).unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "sp").unwrap();
        let name = name.build();
        let mut cert = openssl::x509::X509Builder::new().unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(&name).unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        cert.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        cert.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        (key, cert.build().to_der().unwrap())
    }

    fn cipher_values(xml: &str) -> Vec<Vec<u8>> {
        xml.split("<xenc:CipherValue>")
            .skip(1)
            .map(|s| STANDARD.decode(&s[..s.find('<').unwrap()]).unwrap())
            .collect()
    }

    /// What an SP does with the element: unwrap the key with its private
    /// key, then open the data.
    pub(crate) fn decrypt(
        xml: &str,
        key: &PKey<Private>,
    ) -> Result<String, openssl::error::ErrorStack> {
        let values = cipher_values(xml);
        let rsa = key.rsa().unwrap();
        let mut aes = vec![0u8; rsa.size() as usize];
        let len = rsa.private_decrypt(&values[0], &mut aes, Padding::PKCS1_OAEP)?;
        let data = &values[1];
        let (iv, rest) = data.split_at(GCM_IV_LEN);
        let (sealed, tag) = rest.split_at(rest.len() - GCM_TAG_LEN);
        let plain = decrypt_aead(
            Cipher::aes_256_gcm(),
            &aes[..len],
            Some(iv),
            &[],
            sealed,
            tag,
        )?;
        Ok(String::from_utf8(plain).unwrap())
    }

    #[test]
    fn only_the_recipient_opens_the_assertion_and_a_changed_byte_is_refused() {
        let (key, cert) = recipient(2048);
        let assertion = r#"<saml:Assertion ID="_a">secret</saml:Assertion>"#;
        let xml = encrypt_assertion(assertion, &cert).unwrap();
        assert!(!xml.contains("secret"));
        assert!(xml.contains(ALG_AES256_GCM) && xml.contains(ALG_RSA_OAEP_MGF1P));
        assert_eq!(decrypt(&xml, &key).unwrap(), assertion);
        // A fresh key each time.
        assert_ne!(
            cipher_values(&xml),
            cipher_values(&encrypt_assertion(assertion, &cert).unwrap())
        );
        // Someone else's key opens nothing.
        let (other, _) = recipient(2048);
        assert!(decrypt(&xml, &other).is_err());
        // GCM's tag covers every byte of the data.
        let values = cipher_values(&xml);
        let mut data = values[1].clone();
        data[GCM_IV_LEN + 3] ^= 1;
        let forged = xml.replace(&STANDARD.encode(&values[1]), &STANDARD.encode(&data));
        assert!(decrypt(&forged, &key).is_err());
    }

    #[test]
    fn small_or_non_rsa_keys_are_refused() {
        let (_, small) = recipient(1024);
        assert!(matches!(
            check_recipient(&small),
            Err(SamlError::Invalid(_))
        ));
        assert!(matches!(
            check_recipient(b"not a certificate"),
            Err(SamlError::Invalid(_))
        ));
        let ec = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let ec = PKey::from_ec_key(ec).unwrap();
        let mut cert = openssl::x509::X509Builder::new().unwrap();
        cert.set_pubkey(&ec).unwrap();
        cert.sign(&ec, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let ec_cert = cert.build().to_der().unwrap();
        assert!(matches!(
            check_recipient(&ec_cert),
            Err(SamlError::Invalid(_))
        ));
    }
}
