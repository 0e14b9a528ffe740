//! Access tokens whose signature this node has already checked.
//!
//! A resource server introspects (or a client presents at userinfo) the same
//! access token many times over its life, and the signature check is the
//! costly part of each: an ECDSA or RSA verification, where the rest is a
//! local read. Here a token that passed is remembered under the SHA-256 of
//! (tenant, token), together with its claims and the revision of the key
//! record that verified it. A later sight of the same bytes skips only the
//! signature, issuer and audience checks, which depend on nothing but those
//! bytes and the tenant; still checked every time:
//! - that the key is still the one that verified it (same record revision,
//!   not retired), so removing or retiring a key ends its tokens at once;
//! - expiry, against the clock of this call;
//! - revocation of the `jti` and of the refresh-token family (by the
//!   caller, after this cache).
//!
//! Bounded: two generations of at most [`GENERATION`] entries each; when the
//! current one fills up it becomes the previous one and the old previous one
//! is dropped, so at most 64k tokens are remembered (about 30 MiB at ~460
//! bytes an entry), whatever arrives; only tokens that passed every check
//! are stored, so filling it takes valid tokens. A miss costs one full
//! verification, as without the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::AccessClaims;

/// Entries per generation.
const GENERATION: usize = 1 << 15;

/// What a successful verification established.
#[derive(Clone)]
pub(crate) struct Verified {
    /// `mod_revision` of the key record whose key checked the signature.
    pub key_revision: u64,
    pub claims: Arc<AccessClaims>,
}

#[derive(Default)]
struct Generations {
    current: HashMap<[u8; 32], Verified>,
    previous: HashMap<[u8; 32], Verified>,
}

/// See the module documentation.
#[derive(Clone, Default)]
pub(crate) struct VerifiedTokens {
    inner: Arc<Mutex<Generations>>,
}

/// The cache key of `token` in `tenant`.
pub(crate) fn digest(tenant: &str, token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((tenant.len() as u64).to_be_bytes());
    h.update(tenant.as_bytes());
    h.update(token.as_bytes());
    h.finalize().into()
}

impl VerifiedTokens {
    pub(crate) fn get(&self, key: &[u8; 32]) -> Option<Verified> {
        let g = self.inner.lock().ok()?;
        g.current.get(key).or_else(|| g.previous.get(key)).cloned()
    }

    pub(crate) fn insert(&self, key: [u8; 32], verified: Verified) {
        let Ok(mut g) = self.inner.lock() else {
            return;
        };
        if g.current.len() >= GENERATION {
            g.previous = std::mem::take(&mut g.current);
        }
        g.current.insert(key, verified);
    }

    /// Forget `key` (its key was retired or replaced).
    pub(crate) fn remove(&self, key: &[u8; 32]) {
        if let Ok(mut g) = self.inner.lock() {
            g.current.remove(key);
            g.previous.remove(key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .lock()
            .map(|g| g.current.len() + g.previous.len())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jti: &str) -> Arc<AccessClaims> {
        Arc::new(AccessClaims {
            iss: "https://id.example/t/a".into(),
            sub: "client".into(),
            aud: "https://id.example/t/a".into(),
            client_id: "client".into(),
            scope: "api".into(),
            iat: 1,
            exp: 2,
            jti: jti.into(),
            fid: None,
            auth_time: None,
            acr: None,
            amr: Vec::new(),
        })
    }

    #[test]
    fn the_same_token_in_another_tenant_is_another_entry() {
        assert_ne!(digest("a", "x.y.z"), digest("b", "x.y.z"));
        // The length prefix keeps ("ab", "c...") apart from ("a", "bc...").
        assert_ne!(digest("ab", "c.d.e"), digest("a", "bc.d.e"));
        let cache = VerifiedTokens::default();
        let key = digest("a", "x.y.z");
        cache.insert(
            key,
            Verified {
                key_revision: 7,
                claims: claims("j"),
            },
        );
        assert_eq!(cache.get(&key).map(|v| v.key_revision), Some(7));
        assert!(cache.get(&digest("b", "x.y.z")).is_none());
        cache.remove(&key);
        assert!(cache.get(&key).is_none());
    }

    #[test]
    fn memory_is_bounded_by_two_generations() {
        let cache = VerifiedTokens::default();
        let n = GENERATION * 3 + 5;
        for i in 0..n {
            let v = Verified {
                key_revision: 1,
                claims: claims("j"),
            };
            cache.insert(digest("a", &i.to_string()), v);
        }
        assert!(cache.len() <= 2 * GENERATION);
        // The newest entries are kept.
        assert!(cache.get(&digest("a", &(n - 1).to_string())).is_some());
        assert!(cache.get(&digest("a", "0")).is_none());
    }
}
