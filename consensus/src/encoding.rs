//! base64url without padding (RFC 4648 section 5), the one encoding of
//! binary ids, hashes and secrets in keys, session handles and tokens, for
//! every crate above (on the `base64` crate).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The bytes of base64url text without padding; `None` when it is not.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Whether `s` is exactly `len` characters of the base64url alphabet.
pub fn is_b64url(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64url_matches_rfc4648_vectors_without_padding() {
        for (raw, text) in [
            (&b""[..], ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (&[0xfb, 0xff], "-_8"),
        ] {
            assert_eq!(b64url(raw), text);
            assert_eq!(b64url_decode(text).as_deref(), Some(raw));
        }
        assert!(b64url_decode("a+b/").is_none(), "standard alphabet refused");
        assert!(is_b64url("-_8", 3) && !is_b64url("-_8", 4) && !is_b64url("a+b", 3));
    }
}
