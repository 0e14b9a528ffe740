//! The second-factor seam of the sign-in: which factors a user has
//! enrolled, and checking a TOTP code ([`SecondFactors`]). A node uses the
//! identity store's factors ([`StoredFactors`]); tests plug in their own;
//! [`NoSecondFactors`] is a build without a factor store (nobody has a
//! factor, and any check is unavailable, so a login that needs one is
//! refused, never completed without it).

use futures::future::BoxFuture;

use rsp_identity::factors::FactorService;

/// A second factor a user has enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorKind {
    Totp,
}

/// The outcome of checking a TOTP code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpCheck {
    Valid,
    Invalid,
    /// This build cannot verify the factor: the login must be refused.
    Unavailable,
}

/// The factor store could not answer (nothing was decided).
#[derive(Debug, thiserror::Error)]
pub enum FactorStoreError {
    #[error("the factor store is unavailable: {0}")]
    Unavailable(String),
}

/// The seam where multi-factor authentication plugs in: which factors a
/// user has, and checking a code. The login page asks for a `totp` code
/// when [`SecondFactors::enrolled`] names one, and refuses the login when
/// the check answers [`TotpCheck::Unavailable`]; it never skips a factor.
pub trait SecondFactors: Send + Sync {
    fn enrolled<'a>(
        &'a self,
        tenant: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<FactorKind>, FactorStoreError>>;

    fn verify_totp<'a>(
        &'a self,
        tenant: &'a str,
        user_id: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Result<TotpCheck, FactorStoreError>>;
}

/// No factor store in this build: nobody has a factor enrolled, and any
/// verification is unavailable.
pub struct NoSecondFactors;

impl SecondFactors for NoSecondFactors {
    fn enrolled<'a>(
        &'a self,
        _tenant: &'a str,
        _user_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<FactorKind>, FactorStoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn verify_totp<'a>(
        &'a self,
        _tenant: &'a str,
        _user_id: &'a str,
        _code: &'a str,
    ) -> BoxFuture<'a, Result<TotpCheck, FactorStoreError>> {
        Box::pin(async { Ok(TotpCheck::Unavailable) })
    }
}

/// The identity store's factors ([`FactorService`]: TOTP, each code
/// accepted once cluster-wide): what a node uses.
pub struct StoredFactors(pub FactorService);

fn store_error(e: rsp_identity::factors::FactorError) -> FactorStoreError {
    FactorStoreError::Unavailable(e.to_string())
}

impl SecondFactors for StoredFactors {
    fn enrolled<'a>(
        &'a self,
        tenant: &'a str,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<FactorKind>, FactorStoreError>> {
        Box::pin(async move {
            // A linearizable read: a factor added a moment ago on another
            // node must not be missed (that would skip it).
            let totp = self
                .0
                .list(tenant, user_id)
                .await
                .map_err(store_error)?
                .iter()
                .any(|f| f.kind == "totp");
            Ok(if totp {
                vec![FactorKind::Totp]
            } else {
                Vec::new()
            })
        })
    }

    fn verify_totp<'a>(
        &'a self,
        tenant: &'a str,
        user_id: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Result<TotpCheck, FactorStoreError>> {
        Box::pin(async move {
            let ok = self
                .0
                .verify_totp(tenant, user_id, code, self.0.clock().now_secs())
                .await
                .map_err(store_error)?;
            Ok(if ok {
                TotpCheck::Valid
            } else {
                TotpCheck::Invalid
            })
        })
    }
}
