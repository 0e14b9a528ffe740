//! Enveloped XML signatures of the messages the IdP writes (XML-DSig 1.0):
//! the signed element's exclusive canonical form (Exclusive XML
//! Canonicalization 1.0, without comments, no inclusive prefixes),
//! digested with SHA-256, and the canonical `SignedInfo` signed with the
//! tenant's key as [`crate::keys::KeyService`] keeps it, parsed once per key
//! and node.
//!
//! Only for XML rsp wrote itself from its templates: one root element
//! whose `ID` the signature's reference names, elements, attributes,
//! namespace declarations and text. It refuses what it was not written
//! for (a DOCTYPE, processing instructions, unknown entities, an unbound
//! prefix, a second root) rather than guess. Verifying is not done here:
//! signatures of SPs are checked by libxmlsec1 ([`super::request`]).
//!
//! Not libxmlsec1 (through samael) here: it takes the key as a PKCS#8
//! document and decodes it for every signature, which with OpenSSL 3 costs
//! about as much as the RSA signature itself. The tests below check that
//! both make the same bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use quick_xml::events::{BytesStart, Event};
use sha2::{Digest, Sha256};

use super::SamlError;
use crate::keys::Signer;

pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

const SIGNATURE_START: &str = "<ds:Signature ";
const SIGNATURE_END: &str = "</ds:Signature>";
const DIGEST_EMPTY: &str = "<ds:DigestValue></ds:DigestValue>";
const SIGNATURE_VALUE_EMPTY: &str = "<ds:SignatureValue></ds:SignatureValue>";

/// `xml` with its signature template (the first `ds:Signature` in document
/// order, whose `DigestValue` and `SignatureValue` are empty and whose one
/// reference is `#<ID of the root>` with the enveloped-signature and
/// exclusive C14N transforms) filled in by `signer` (RSA-SHA256).
pub fn sign_enveloped(xml: &str, signer: &Signer) -> Result<String, SamlError> {
    let bad = |m: &str| SamlError::internal(format!("signing the XML: {m}"));
    let start = xml
        .find(SIGNATURE_START)
        .ok_or_else(|| bad("no signature template"))?;
    let end = start
        + xml[start..]
            .find(SIGNATURE_END)
            .ok_or_else(|| bad("unterminated signature template"))?
        + SIGNATURE_END.len();
    let template = &xml[start..end];
    let reference = between(template, r##"<ds:Reference URI="#"##, "\"")
        .ok_or_else(|| bad("no same-document reference"))?;
    // The enveloped-signature transform: the signed element without its
    // Signature.
    let mut unsigned = String::with_capacity(xml.len() - template.len());
    unsigned.push_str(&xml[..start]);
    unsigned.push_str(&xml[end..]);
    let (canonical, root_id) = canonicalize(&unsigned, &[])?;
    if root_id.as_deref() != Some(reference) {
        return Err(bad("the reference does not name the root element"));
    }
    let digest = STANDARD.encode(Sha256::digest(canonical.as_bytes()));
    let template = fill(template, DIGEST_EMPTY, "ds:DigestValue", &digest)
        .ok_or_else(|| bad("no empty DigestValue"))?;
    let signed_info = section(&template, "<ds:SignedInfo>", "</ds:SignedInfo>")
        .ok_or_else(|| bad("no SignedInfo"))?;
    // SignedInfo's canonical form: it is the apex, `ds` comes from the
    // Signature element around it.
    let (signed_info, _) = canonicalize(signed_info, &[("ds", DSIG_NS)])?;
    let signature = signer
        .sign(signed_info.as_bytes())
        .map_err(|e| bad(&e.to_string()))?;
    let template = fill(
        &template,
        SIGNATURE_VALUE_EMPTY,
        "ds:SignatureValue",
        &STANDARD.encode(signature),
    )
    .ok_or_else(|| bad("no empty SignatureValue"))?;
    let mut signed = String::with_capacity(xml.len() + 400);
    signed.push_str(&xml[..start]);
    signed.push_str(&template);
    signed.push_str(&xml[end..]);
    Ok(signed)
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let from = text.find(open)? + open.len();
    Some(&text[from..from + text[from..].find(close)?])
}

/// `text[open .. close]`, both included.
fn section<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let from = text.find(open)?;
    Some(&text[from..from + text[from..].find(close)? + close.len()])
}

/// `template` with its element `empty` given the text `value`.
fn fill(template: &str, empty: &str, name: &str, value: &str) -> Option<String> {
    template
        .contains(empty)
        .then(|| template.replacen(empty, &format!("<{name}>{value}</{name}>"), 1))
}

/// One element's namespace declarations: those it makes, and those the
/// canonical form shows on it.
#[derive(Default)]
struct Scope {
    declared: Vec<(String, String)>,
    rendered: Vec<(String, String)>,
}

/// The exclusive canonical form (without comments) of `xml`, a document
/// or one element, where `outer` are the namespace bindings in scope
/// around it; and the root element's `ID`.
pub fn canonicalize(
    xml: &str,
    outer: &[(&str, &str)],
) -> Result<(String, Option<String>), SamlError> {
    let bad = |m: String| SamlError::internal(format!("canonicalizing: {m}"));
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = String::with_capacity(xml.len());
    let mut scopes: Vec<Scope> = Vec::new();
    let mut open: Vec<String> = Vec::new();
    let mut root_id = None;
    let mut roots = 0;
    loop {
        let event = reader.read_event().map_err(|e| bad(e.to_string()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if open.is_empty() {
                    roots += 1;
                    if roots > 1 {
                        return Err(bad("more than one root element".into()));
                    }
                }
                let (name, id) = start_tag(e, &mut scopes, outer, &mut out).map_err(bad)?;
                if open.is_empty() {
                    root_id = id;
                }
                if matches!(event, Event::Empty(_)) {
                    end_tag(&name, &mut out);
                    scopes.pop();
                } else {
                    open.push(name);
                }
            }
            Event::End(_) => {
                let name = open.pop().ok_or_else(|| bad("unbalanced end tag".into()))?;
                end_tag(&name, &mut out);
                scopes.pop();
            }
            Event::Text(t) => {
                let text = t.xml10_content().map_err(|e| bad(e.to_string()))?;
                if open.is_empty() {
                    // Outside the root: only whitespace, not in the
                    // canonical form.
                    if !text.trim().is_empty() {
                        return Err(bad("text outside the root".into()));
                    }
                } else {
                    text_escaped(&text, &mut out);
                }
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().map_err(|e| bad(e.to_string()))? {
                    Some(c) => c,
                    None => match r.decode().map_err(|e| bad(e.to_string()))?.as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => return Err(bad(format!("unknown entity &{other};"))),
                    },
                };
                if open.is_empty() {
                    return Err(bad("a reference outside the root".into()));
                }
                text_escaped(c.encode_utf8(&mut [0; 4]), &mut out);
            }
            Event::CData(c) => {
                let text = c.decode().map_err(|e| bad(e.to_string()))?;
                text_escaped(&text.replace("\r\n", "\n").replace('\r', "\n"), &mut out);
            }
            // Without comments; an XML declaration is not in the
            // canonical form.
            Event::Comment(_) | Event::Decl(_) => {}
            Event::PI(_) | Event::DocType(_) => {
                return Err(bad(
                    "processing instructions and DOCTYPEs are not written here".into(),
                ));
            }
            Event::Eof => break,
        }
    }
    if !open.is_empty() || roots != 1 {
        return Err(bad("not one whole element".into()));
    }
    Ok((out, root_id))
}

/// The namespace URI bound to `prefix` ("" the default namespace) in
/// `scopes` (innermost first), then in `outer`.
fn lookup<'a>(scopes: &'a [Scope], outer: &'a [(&str, &str)], prefix: &str) -> Option<&'a str> {
    if prefix == "xml" {
        return Some(XML_NS);
    }
    for scope in scopes.iter().rev() {
        if let Some((_, uri)) = scope.declared.iter().rev().find(|(p, _)| p == prefix) {
            return Some(uri);
        }
    }
    outer
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, uri)| *uri)
}

/// What the closest output ancestor's canonical form shows for `prefix`.
fn rendered<'a>(scopes: &'a [Scope], prefix: &str) -> Option<&'a str> {
    scopes.iter().rev().find_map(|s| {
        s.rendered
            .iter()
            .find(|(p, _)| p == prefix)
            .map(|(_, uri)| uri.as_str())
    })
}

fn prefix_of(qname: &str) -> &str {
    qname.split_once(':').map_or("", |(p, _)| p)
}

fn local_of(qname: &str) -> &str {
    qname.split_once(':').map_or(qname, |(_, l)| l)
}

/// Write the canonical start tag of `e`, pushing its scope: its name, and
/// its `ID` attribute.
fn start_tag(
    e: &BytesStart<'_>,
    scopes: &mut Vec<Scope>,
    outer: &[(&str, &str)],
    out: &mut String,
) -> Result<(String, Option<String>), String> {
    let name = std::str::from_utf8(e.name().as_ref())
        .map_err(|e| e.to_string())?
        .to_string();
    let mut scope = Scope::default();
    let mut attributes: Vec<(String, String)> = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let key = std::str::from_utf8(a.key.as_ref()).map_err(|e| e.to_string())?;
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?
            .into_owned();
        if key == "xmlns" {
            scope.declared.push((String::new(), value));
        } else if let Some(prefix) = key.strip_prefix("xmlns:") {
            if prefix != "xml" {
                scope.declared.push((prefix.to_string(), value));
            }
        } else {
            attributes.push((key.to_string(), value));
        }
    }
    scopes.push(scope);
    let id = attributes
        .iter()
        .find(|(k, _)| k == "ID")
        .map(|(_, v)| v.clone());

    // Visibly utilized prefixes: the element's (or the default namespace),
    // and those of its prefixed attributes.
    let mut utilized = vec![prefix_of(&name).to_string()];
    for (k, _) in &attributes {
        let p = prefix_of(k);
        if !p.is_empty() && !utilized.iter().any(|u| u == p) {
            utilized.push(p.to_string());
        }
    }
    let mut render = Vec::new();
    for prefix in utilized {
        if prefix == "xml" {
            continue;
        }
        let uri = match lookup(scopes, outer, &prefix) {
            Some(uri) => uri.to_string(),
            None if prefix.is_empty() => String::new(),
            None => return Err(format!("unbound prefix {prefix}")),
        };
        // Not shown already by the closest output ancestor (which shows no
        // default namespace as the empty one).
        let shown = rendered(&scopes[..scopes.len() - 1], &prefix);
        let needed = if prefix.is_empty() {
            shown.unwrap_or("") != uri
        } else {
            shown != Some(uri.as_str())
        };
        if needed {
            render.push((prefix, uri));
        }
    }
    render.sort();

    // Attributes by namespace URI (none first), then local name.
    let mut keyed = Vec::with_capacity(attributes.len());
    for (k, v) in attributes {
        let p = prefix_of(&k);
        let uri = if p.is_empty() {
            String::new()
        } else {
            lookup(scopes, outer, p)
                .ok_or_else(|| format!("unbound prefix {p}"))?
                .to_string()
        };
        keyed.push(((uri, local_of(&k).to_string()), k, v));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));

    out.push('<');
    out.push_str(&name);
    for (prefix, uri) in &render {
        if prefix.is_empty() {
            out.push_str(" xmlns=\"");
        } else {
            out.push_str(" xmlns:");
            out.push_str(prefix);
            out.push_str("=\"");
        }
        attribute_escaped(uri, out);
        out.push('"');
    }
    for (_, k, v) in &keyed {
        out.push(' ');
        out.push_str(k);
        out.push_str("=\"");
        attribute_escaped(v, out);
        out.push('"');
    }
    out.push('>');
    if let Some(scope) = scopes.last_mut() {
        scope.rendered = render;
    }
    Ok((name, id))
}

fn end_tag(name: &str, out: &mut String) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn text_escaped(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn attribute_escaped(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::response::signature_template;
    use crate::saml::response::tests::{signer, test_key};

    fn c14n(xml: &str) -> String {
        canonicalize(xml, &[]).expect("canonical").0
    }

    #[test]
    fn namespaces_are_shown_where_used_and_attributes_sorted() {
        // `xs` is used only in a value: not shown; `xsi` moves down to the
        // element whose attribute uses it; `b` shows where first used.
        assert_eq!(
            c14n(concat!(
                r#"<a:x xmlns:a="urn:a" xmlns:xs="urn:xs" xmlns:xsi="urn:xsi" xmlns:b="urn:b" z="1" ID="i" b:y="2">"#,
                r#"<a:v xsi:type="xs:string"/><b:c/><a:d xmlns:a="urn:other"/></a:x>"#
            )),
            concat!(
                r#"<a:x xmlns:a="urn:a" xmlns:b="urn:b" ID="i" z="1" b:y="2">"#,
                r#"<a:v xmlns:xsi="urn:xsi" xsi:type="xs:string"></a:v><b:c></b:c>"#,
                r#"<a:d xmlns:a="urn:other"></a:d></a:x>"#
            )
        );
        // A default namespace, undone for a child without one.
        assert_eq!(
            c14n(r#"<x xmlns="urn:d"><y xmlns=""/><z/></x>"#),
            r#"<x xmlns="urn:d"><y xmlns=""></y><z></z></x>"#
        );
        assert_eq!(c14n(r#"<x xmlns=""/>"#), "<x></x>");
    }

    #[test]
    fn text_and_values_are_escaped_as_the_canonical_form_says() {
        assert_eq!(
            c14n("<x a=\"&gt;&apos;&#9;\t&quot;&amp;&lt;\">&quot;&apos;&#13;&gt;&lt;&amp;\r\n</x>"),
            "<x a=\">'&#x9; &quot;&amp;&lt;\">\"'&#xD;&gt;&lt;&amp;\n</x>"
        );
        assert_eq!(c14n("<x><![CDATA[<&>]]></x>"), "<x>&lt;&amp;&gt;</x>");
        assert_eq!(
            c14n("<?xml version=\"1.0\"?>\n<x><!-- c --></x>\n"),
            "<x></x>"
        );
    }

    #[test]
    fn what_rsp_does_not_write_is_refused() {
        for xml in [
            "<!DOCTYPE x><x/>",
            "<x><?pi?></x>",
            "<x>&nbsp;</x>",
            "<a:x/>",
            "<x/><y/>",
            "<x>",
            "text<x/>",
        ] {
            assert!(canonicalize(xml, &[]).is_err(), "{xml}");
        }
    }

    /// An assertion-like template with markup characters, quotes, white
    /// space and non-ASCII in its text and values.
    fn template(cert: &[u8]) -> String {
        format!(
            concat!(
                r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" "#,
                r#"xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" "#,
                r#"Version="2.0" ID="_abc" IssueInstant="2026-01-01T00:00:00.000Z">"#,
                r#"<saml:Issuer>https://idp.test/t/a?x=1&amp;y=&lt;2&gt;</saml:Issuer>{signature}"#,
                r#"<saml:Subject><saml:NameID SPNameQualifier="q&quot;&apos;&gt;&#9;&#10;t	n">"#,
                "caf\u{e9} \"'&gt;&#13;\r\n\u{1F600}</saml:NameID></saml:Subject>",
                r#"<saml:AttributeStatement><saml:Attribute Name="n"><saml:AttributeValue xsi:type="xs:string">v</saml:AttributeValue>"#,
                r#"</saml:Attribute></saml:AttributeStatement></saml:Assertion>"#
            ),
            signature = signature_template("_abc", cert)
        )
    }

    fn element(xml: &str, name: &str) -> String {
        between(xml, &format!("<{name}>"), &format!("</{name}>"))
            .unwrap_or_else(|| panic!("{name} in {xml}"))
            .split_whitespace()
            .collect()
    }

    #[test]
    fn the_digest_and_signature_are_the_ones_libxmlsec1_makes() {
        use samael::crypto::{Crypto, CryptoProvider};
        let (pkcs8, cert) = test_key();
        let xml = template(&cert);
        let ours = sign_enveloped(&xml, &signer(&pkcs8)).expect("signed");
        let theirs = Crypto::sign_xml(&xml, &pkcs8).expect("xmlsec");
        for name in ["ds:DigestValue", "ds:SignatureValue"] {
            assert_eq!(element(&ours, name), element(&theirs, name), "{name}");
        }
        // Only the template's two values changed.
        let emptied = ours
            .replace(&element(&ours, "ds:DigestValue"), "")
            .replace(&element(&ours, "ds:SignatureValue"), "");
        assert_eq!(emptied, xml);
    }

    #[test]
    fn the_reference_must_name_the_root() {
        let (pkcs8, cert) = test_key();
        let xml = template(&cert).replace(r##"URI="#_abc""##, r##"URI="#_other""##);
        assert!(sign_enveloped(&xml, &signer(&pkcs8)).is_err());
        assert!(sign_enveloped("<x ID=\"a\"/>", &signer(&pkcs8)).is_err());
    }
}
