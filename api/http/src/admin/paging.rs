//! Paged admin listings: `?limit=N&after=CURSOR`, answered as
//! `{"items": [...], "next": CURSOR | null}`.
//!
//! A cursor is opaque to callers: the base64url of the last listed record's
//! key, with a tag naming the listing it came from, so a cursor of the user
//! list cannot be replayed against the client list. Records are listed in
//! key order and each page starts strictly after the cursor's key, so a page
//! walk while others write never shows a record twice, and never skips one
//! that existed for the whole walk. A page reads at most `limit + 1`
//! records (the extra one tells whether there is a next page): listing a
//! tenant of any size holds one page in memory.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsp_consensus::kv::KeyValue;
use rsp_consensus::{Consensus, Consistency};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

/// Items per page unless the caller asks.
pub const DEFAULT_LIMIT: usize = 100;
/// The most items a page holds.
pub const MAX_LIMIT: usize = 1000;
/// The longest cursor accepted (a key is at most a few hundred bytes).
const MAX_CURSOR_LEN: usize = 2048;

/// The paging part of a listing's query. `limit` is kept as text and
/// parsed here: a listing's query flattens this in, and flattened query
/// fields reach serde as strings.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub after: Option<String>,
}

/// One page of a listing.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The cursor of the next page (`?after=`); null on the last page.
    pub next: Option<String>,
}

/// A listing: which records (`prefix` of a tenant's or the system
/// keyspace) and the tag its cursors carry.
pub struct Listing<'a> {
    pub tag: &'static str,
    pub keyspace: &'a str,
    pub prefix: &'a [u8],
}

impl PageQuery {
    /// The page size asked for, within bounds; 0 and over [`MAX_LIMIT`]
    /// are refused.
    pub fn limit(&self) -> ApiResult<usize> {
        match self.limit.as_deref().map(str::parse::<usize>) {
            None => Ok(DEFAULT_LIMIT),
            Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit must be 1 to {MAX_LIMIT}"),
            )),
        }
    }

    /// The key the page starts after, from the cursor; a cursor that is not
    /// one of `listing`'s is refused.
    pub fn after_key(&self, listing: &Listing<'_>) -> ApiResult<Option<Vec<u8>>> {
        let Some(cursor) = &self.after else {
            return Ok(None);
        };
        let bad =
            || ApiError::bad_request("invalid_cursor", "the cursor is not one this listing gave");
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(bad());
        }
        let raw = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
        let key = raw
            .strip_prefix(listing.tag.as_bytes())
            .and_then(|rest| rest.strip_prefix(b"\0"))
            .ok_or_else(bad)?;
        if !key.starts_with(listing.prefix) {
            return Err(bad());
        }
        Ok(Some(key.to_vec()))
    }
}

/// A listed record's JSON; one that does not decode is an internal error.
pub fn decode<T: DeserializeOwned>(kv: &KeyValue) -> ApiResult<T> {
    serde_json::from_slice(&kv.value).map_err(ApiError::internal)
}

pub(crate) fn cursor(listing: &Listing<'_>, key: &[u8]) -> String {
    let mut raw = Vec::with_capacity(listing.tag.len() + 1 + key.len());
    raw.extend_from_slice(listing.tag.as_bytes());
    raw.push(0);
    raw.extend_from_slice(key);
    URL_SAFE_NO_PAD.encode(raw)
}

/// Read one page of `listing`, read linearizably (a record written through
/// any node before the call is listed), mapping each record with `item`;
/// a record `item` skips (`None`) still moves the cursor.
pub async fn read_page<T>(
    consensus: &Consensus,
    listing: &Listing<'_>,
    query: &PageQuery,
    mut item: impl FnMut(&KeyValue) -> ApiResult<Option<T>>,
) -> ApiResult<Page<T>> {
    let limit = query.limit()?;
    let after = query.after_key(listing)?;
    let (mut kvs, _) = consensus
        .range_after(
            listing.keyspace,
            listing.prefix,
            after.as_deref(),
            limit + 1,
            Consistency::Linearizable,
        )
        .await?;
    let more = kvs.len() > limit;
    kvs.truncate(limit);
    let next = more
        .then(|| kvs.last().map(|kv| cursor(listing, &kv.key.key)))
        .flatten();
    let mut items = Vec::with_capacity(kvs.len());
    for kv in &kvs {
        if let Some(t) = item(kv)? {
            items.push(t);
        }
    }
    Ok(Page { items, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: Listing<'static> = Listing {
        tag: "users",
        keyspace: "t.acme",
        prefix: b"user/",
    };

    fn query(after: Option<String>, limit: Option<usize>) -> PageQuery {
        PageQuery {
            limit: limit.map(|n| n.to_string()),
            after,
        }
    }

    #[test]
    fn a_cursor_names_the_key_it_was_made_from_and_only_for_its_listing() {
        let c = cursor(&USERS, b"user/0192");
        assert_eq!(
            query(Some(c.clone()), None).after_key(&USERS).unwrap(),
            Some(b"user/0192".to_vec())
        );
        let clients = Listing {
            tag: "clients",
            keyspace: "t.acme",
            prefix: b"client/",
        };
        let e = query(Some(c), None).after_key(&clients).unwrap_err();
        assert_eq!(e.code, "invalid_cursor");
    }

    #[test]
    fn bad_cursors_and_limits_are_refused_with_their_codes() {
        for bad in ["%%%", "not base64!", &"A".repeat(5000)] {
            let e = query(Some(bad.to_string()), None)
                .after_key(&USERS)
                .unwrap_err();
            assert_eq!(e.code, "invalid_cursor", "{bad}");
        }
        // Right tag, key outside the listing's prefix.
        let outside = URL_SAFE_NO_PAD.encode(b"users\0client/x");
        assert_eq!(
            query(Some(outside), None)
                .after_key(&USERS)
                .unwrap_err()
                .code,
            "invalid_cursor"
        );
        for limit in [0, MAX_LIMIT + 1] {
            assert_eq!(
                query(None, Some(limit)).limit().unwrap_err().code,
                "invalid_limit"
            );
        }
        assert_eq!(query(None, None).limit().unwrap(), DEFAULT_LIMIT);
    }
}
