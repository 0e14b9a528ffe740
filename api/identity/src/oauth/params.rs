//! What an OAuth request carries, without its HTTP wrapping: the form
//! parameters (RFC 6749 section 3.2: no repeated parameters, empty values
//! count as absent) and the credentials of an `Authorization` header
//! (`Basic` or `Bearer`, the one parser for both).

use std::collections::BTreeMap;

use crate::oauth::error::OAuthError;

/// Request parameters, each at most once. `Debug` shows names only: values
/// carry secrets (client secrets, codes, tokens).
#[derive(Clone, Default)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

impl Params {
    /// Parse a form body. A repeated name is `invalid_request`; a parameter
    /// sent without a value is treated as omitted (RFC 6749 section 3.1).
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut map = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for (name, value) in url::form_urlencoded::parse(body) {
            if !seen.insert(name.to_string()) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter `{name}` is repeated"
                )));
            }
            if !value.is_empty() {
                map.insert(name.into_owned(), value.into_owned());
            }
        }
        Ok(Params { map })
    }

    pub fn from_map(map: BTreeMap<String, String>) -> Self {
        Params { map }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// The parameter, or `invalid_request` naming it.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("parameter `{name}` is missing")))
    }

    pub fn map(&self) -> &BTreeMap<String, String> {
        &self.map
    }

    pub fn into_map(self) -> BTreeMap<String, String> {
        self.map
    }
}

/// The credentials after `scheme ` (scheme matched case-insensitively).
pub fn credentials<'a>(authorization: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = authorization.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_are_absent() {
        let p = Params::parse(b"a=1&b=&c=x%20y").expect("parse");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
        assert!(Params::parse(b"a=1&a=1").is_err());
        assert!(Params::parse(b"a=&a=1").is_err());
    }

    #[test]
    fn credentials_match_the_scheme_case_insensitively() {
        assert_eq!(credentials("Bearer abc", "bearer"), Some("abc"));
        assert_eq!(credentials("basic abc", "Basic"), Some("abc"));
        assert_eq!(credentials("Bearer", "Bearer"), None);
        assert_eq!(credentials("Digest x", "Basic"), None);
    }
}
