//! Authentication of peer messages by the cluster's join token.
//!
//! Every member holds the same [`JoinToken`]. Two HMAC-SHA256 keys are
//! derived from it, one per direction, so a request's tag can never be
//! played back as an answer's. A request carries the tag of its body in
//! [`PEER_MAC_HEADER`]; the listener checks it (in constant time) before it
//! decodes anything, and answers 401 without acting when it is missing or
//! wrong. The answer carries the tag of the request's tag followed by the
//! answer's body, so the caller knows it reached a member, and which request
//! the answer belongs to. The node that joins is admitted only by presenting
//! the token, and only an admitted node is handed node-wide secrets such as
//! the key-encryption key.
//!
//! The tags bind messages to the token, not to a moment: replaying a
//! captured message needs the wire, which is why links that leave the host
//! must run over mutual TLS (the node refuses to start otherwise).

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::error::ConsensusError;

/// The HTTP header that carries a peer message's tag (hex).
pub const PEER_MAC_HEADER: &str = "x-rsp-peer-mac";

/// The shortest join token accepted, in characters.
pub const MIN_JOIN_TOKEN_LEN: usize = 32;

/// The secret every member of a cluster shares. Never logged: its `Debug`
/// shows only its length.
#[derive(Clone)]
pub struct JoinToken(Zeroizing<String>);

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JoinToken({} chars)", self.0.len())
    }
}

impl JoinToken {
    /// A new random token: 32 random bytes, base64url (43 characters).
    pub fn generate() -> Self {
        let bytes = Zeroizing::new(rand::random::<[u8; 32]>());
        JoinToken(Zeroizing::new(crate::encoding::b64url(bytes.as_slice())))
    }

    /// A token as an operator gives it (surrounding whitespace ignored): at
    /// least [`MIN_JOIN_TOKEN_LEN`] visible ASCII characters.
    pub fn parse(text: &str) -> Result<Self, ConsensusError> {
        let token = text.trim();
        if token.len() < MIN_JOIN_TOKEN_LEN {
            return Err(ConsensusError::Config(format!(
                "a join token needs at least {MIN_JOIN_TOKEN_LEN} characters, this one has {}",
                token.len()
            )));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConsensusError::Config(
                "a join token is visible ASCII characters without spaces".into(),
            ));
        }
        Ok(JoinToken(Zeroizing::new(token.to_owned())))
    }

    /// The token as it is written to a file or given to another node.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The two keys derived from a join token. Cheap to clone.
#[derive(Clone)]
pub struct PeerAuth {
    request: hmac::Key,
    response: hmac::Key,
}

impl std::fmt::Debug for PeerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerAuth(..)")
    }
}

fn derive(token: &JoinToken, label: &[u8]) -> hmac::Key {
    let root = hmac::Key::new(hmac::HMAC_SHA256, token.expose().as_bytes());
    let derived = hmac::sign(&root, label);
    hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
}

impl PeerAuth {
    pub fn new(token: &JoinToken) -> Self {
        PeerAuth {
            request: derive(token, b"rsp peer request v1"),
            response: derive(token, b"rsp peer response v1"),
        }
    }

    /// The tag a request with this body carries.
    pub fn sign_request(&self, body: &[u8]) -> String {
        hex::encode(hmac::sign(&self.request, body).as_ref())
    }

    /// Whether `tag` (hex) is the tag of a request with this body.
    pub fn verify_request(&self, tag: &str, body: &[u8]) -> bool {
        match hex_decode(tag) {
            Some(tag) => hmac::verify(&self.request, body, &tag).is_ok(),
            None => false,
        }
    }

    fn response_ctx(&self, request_tag: &str, body: &[u8]) -> hmac::Context {
        let mut ctx = hmac::Context::with_key(&self.response);
        ctx.update(request_tag.as_bytes());
        ctx.update(&[0]);
        ctx.update(body);
        ctx
    }

    /// The tag of the answer `body` to the request tagged `request_tag`.
    pub fn sign_response(&self, request_tag: &str, body: &[u8]) -> String {
        hex::encode(self.response_ctx(request_tag, body).sign().as_ref())
    }

    /// Whether `tag` is the tag of the answer `body` to `request_tag`,
    /// compared in constant time.
    pub fn verify_response(&self, request_tag: &str, body: &[u8], tag: &str) -> bool {
        let Some(tag) = hex_decode(tag) else {
            return false;
        };
        let expected = self.response_ctx(request_tag, body).sign();
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_ref(), &tag).is_ok()
    }
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok().filter(|b| b.len() == 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(token: &str) -> PeerAuth {
        PeerAuth::new(&JoinToken::parse(token).expect("token"))
    }

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_request_verifies_only_with_the_same_token_and_body() {
        let a = auth(TOKEN);
        let tag = a.sign_request(b"append entries");
        assert!(a.verify_request(&tag, b"append entries"));
        assert!(!a.verify_request(&tag, b"append entriez"), "body changed");
        assert!(
            !auth("0123456789abcdef0123456789abcdeX").verify_request(&tag, b"append entries"),
            "another cluster's token"
        );
        assert!(!a.verify_request("", b"append entries"));
        assert!(!a.verify_request(&tag[..62], b"append entries"));
        assert!(!a.verify_request(&"zz".repeat(32), b"append entries"));
    }

    #[test]
    fn an_answer_is_bound_to_its_request_and_is_not_a_request_tag() {
        let a = auth(TOKEN);
        let req = a.sign_request(b"get secret");
        let resp = a.sign_response(&req, b"the kek");
        assert!(a.verify_response(&req, b"the kek", &resp));
        assert!(!a.verify_response(&req, b"another kek", &resp));
        let other_req = a.sign_request(b"read index");
        assert!(!a.verify_response(&other_req, b"the kek", &resp));
        // The two directions use different keys: a captured request tag
        // is no answer's tag.
        assert_ne!(a.sign_request(b"x"), a.sign_response("", b"x"));
    }

    #[test]
    fn short_or_spaced_tokens_are_refused_and_debug_hides_the_value() {
        assert!(JoinToken::parse("too short").is_err());
        assert!(JoinToken::parse("0123456789abcdef 0123456789abcdef").is_err());
        let t = JoinToken::parse(&format!("  {TOKEN}\n")).expect("trimmed");
        assert_eq!(t.expose(), TOKEN);
        assert!(!format!("{t:?}").contains(TOKEN));
        let g = JoinToken::generate();
        assert_eq!(g.expose().len(), 43);
        assert!(JoinToken::parse(g.expose()).is_ok());
    }
}
