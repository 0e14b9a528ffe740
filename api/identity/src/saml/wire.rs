//! SAML messages as they arrive: the HTTP-Redirect binding's DEFLATE and
//! base64, the HTTP-POST binding's base64, and the checks every incoming
//! XML document passes before any parser sees it (size, no DTD, no
//! entities, no comments, no processing instructions besides the XML
//! declaration).

use std::io::Read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::SamlError;

/// The largest encoded message accepted (a query parameter or a form
/// field), before anything is decoded.
pub const MAX_ENCODED: usize = 64 * 1024;
/// The largest XML document accepted after decoding (and inflating: a
/// DEFLATE bomb stops here, not when it is done).
pub const MAX_XML: usize = 128 * 1024;

/// The XML of an HTTP-Redirect binding parameter: base64, then raw
/// DEFLATE (RFC 1951), inflated at most to [`MAX_XML`] bytes.
pub fn decode_redirect(encoded: &str) -> Result<String, SamlError> {
    let raw = decode_base64(encoded)?;
    let mut out = Vec::new();
    let mut inflater = flate2::read::DeflateDecoder::new(raw.as_slice()).take(MAX_XML as u64 + 1);
    inflater
        .read_to_end(&mut out)
        .map_err(|_| SamlError::malformed("the message is not DEFLATE-compressed"))?;
    if out.len() > MAX_XML {
        return Err(SamlError::malformed(
            "the message inflates past the size limit",
        ));
    }
    checked_xml(out)
}

/// The XML of an HTTP-POST binding field: base64.
pub fn decode_post(encoded: &str) -> Result<String, SamlError> {
    checked_xml(decode_base64(encoded)?)
}

fn decode_base64(encoded: &str) -> Result<Vec<u8>, SamlError> {
    if encoded.len() > MAX_ENCODED {
        return Err(SamlError::malformed("the message is too large"));
    }
    // Line breaks are allowed in the POST binding's base64.
    let compact: String = encoded
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD
        .decode(compact)
        .map_err(|_| SamlError::malformed("the message is not base64"))
}

/// UTF-8, at most [`MAX_XML`] bytes, and none of the XML features an
/// attacker uses against parsers and signature checks: a document type
/// declaration (entity expansion, external entities), comments (which
/// split text nodes: `admin@example.com<!---->.evil.com`), or processing
/// instructions other than the XML declaration.
pub fn checked_xml(bytes: Vec<u8>) -> Result<String, SamlError> {
    if bytes.len() > MAX_XML {
        return Err(SamlError::malformed("the message is too large"));
    }
    let text =
        String::from_utf8(bytes).map_err(|_| SamlError::malformed("the message is not UTF-8"))?;
    let body = match text.trim_start_matches('\u{feff}').trim_start() {
        t if t.starts_with("<?xml") => match t.find("?>") {
            Some(end) => &t[end + 2..],
            None => return Err(SamlError::malformed("unterminated XML declaration")),
        },
        t => t,
    };
    if body.contains("<!") {
        // `<!DOCTYPE`, `<!ENTITY`, `<!--` and `<![CDATA[` alike.
        return Err(SamlError::malformed(
            "document type declarations, comments and CDATA are not accepted",
        ));
    }
    if body.contains("<?") {
        return Err(SamlError::malformed(
            "processing instructions are not accepted",
        ));
    }
    Ok(text)
}

/// `text` with the five XML special characters escaped, for element text
/// and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 does not allow at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Base64 (standard, no line breaks) for the POST binding.
pub fn encode_post(xml: &str) -> String {
    STANDARD.encode(xml.as_bytes())
}

/// DEFLATE then base64, for the HTTP-Redirect binding.
pub fn encode_redirect(xml: &str) -> String {
    use std::io::Write;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = enc.write_all(xml.as_bytes());
    STANDARD.encode(enc.finish().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_messages_round_trip_and_bombs_stop_at_the_limit() {
        let xml =
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="a"/>"#;
        assert_eq!(decode_redirect(&encode_redirect(xml)).expect("decode"), xml);
        // 100 MB of spaces deflate to ~100 KB; inflating stops at MAX_XML.
        let bomb = encode_redirect(&format!("<a>{}</a>", " ".repeat(100 * 1024 * 1024)));
        assert!(bomb.len() <= MAX_ENCODED * 4);
        let small_bomb = encode_redirect(&format!("<a>{}</a>", " ".repeat(4 * MAX_XML)));
        assert!(small_bomb.len() < MAX_ENCODED);
        let err = decode_redirect(&small_bomb).expect_err("too large");
        assert!(err.to_string().contains("size limit"), "{err}");
        assert!(decode_redirect(&"A".repeat(MAX_ENCODED + 4)).is_err());
        assert!(decode_redirect("not base64!").is_err());
    }

    #[test]
    fn inflating_stops_at_the_bound_and_never_reaches_the_rest_of_a_bomb() {
        use std::io::Write;
        // Sixteen times the bound of spaces, then a block DEFLATE cannot
        // read: an inflater that went past the bound would reach it and
        // fail on it instead.
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b' '; 16 * MAX_XML]).expect("deflate");
        enc.flush().expect("sync flush");
        let mut raw = enc.get_ref().clone();
        raw.extend_from_slice(&[0xff; 8]);
        let mut all = Vec::new();
        let unbounded = flate2::read::DeflateDecoder::new(raw.as_slice()).read_to_end(&mut all);
        assert!(unbounded.is_err(), "the tail is not DEFLATE");
        let err = decode_redirect(&STANDARD.encode(&raw)).expect_err("refused");
        assert!(err.to_string().contains("size limit"), "{err}");
    }

    #[test]
    fn dtds_entities_comments_and_processing_instructions_are_refused() {
        for bad in [
            r#"<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>"#,
            "<a><b>admin@example.com<!---->.evil.com</b></a>",
            "<a><![CDATA[x]]></a>",
            "<?xml version=\"1.0\"?><?xml-stylesheet href=\"x\"?><a/>",
        ] {
            assert!(checked_xml(bad.as_bytes().to_vec()).is_err(), "{bad}");
        }
        assert!(checked_xml(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><a/>".to_vec()).is_ok());
        assert!(checked_xml(vec![0xff, 0xfe]).is_err());
    }

    #[test]
    fn escaping_covers_markup_and_drops_forbidden_characters() {
        assert_eq!(escape("a<b>&\"'\u{1}"), "a&lt;b&gt;&amp;&quot;&apos;");
    }
}
