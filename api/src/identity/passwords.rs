//! Password hashing: argon2id at OWASP's parameters (19 MiB, t=2, p=1) on a
//! bounded pool of blocking threads, so hashing never stalls the async
//! runtime and a burst of logins queues instead of exhausting memory.
//! Unknown users are checked against a dummy hash, so the time taken does
//! not tell whether a username exists.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, Version};
use argon2::{PasswordHash, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("passwords are {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters")]
    Length,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    params: Params,
    dummy: Arc<String>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish()
    }
}

fn argon(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

impl PasswordHasher {
    /// OWASP parameters, as many concurrent hashes as the machine has cores.
    pub fn new() -> Result<Self, PasswordError> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let params =
            Params::new(19 * 1024, 2, 1, None).map_err(|e| PasswordError::Hash(e.to_string()))?;
        Self::with(params, cores)
    }

    pub fn with(params: Params, concurrency: usize) -> Result<Self, PasswordError> {
        let dummy = argon(&params)
            .hash_password(b"rsp dummy password for unknown users")
            .map_err(|e| PasswordError::Hash(e.to_string()))?
            .to_string();
        Ok(PasswordHasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            params,
            dummy: Arc::new(dummy),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Hash("hasher closed".into()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }

    /// Hash a new password (PHC string).
    pub async fn hash(&self, password: Zeroizing<String>) -> Result<String, PasswordError> {
        let len = password.chars().count();
        if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len) {
            return Err(PasswordError::Length);
        }
        let params = self.params.clone();
        self.blocking(move || {
            argon(&params)
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await?
    }

    /// Whether `password` matches `stored`; with `None` (unknown user) checks
    /// a dummy hash and answers false, taking the same time.
    pub async fn verify(
        &self,
        password: Zeroizing<String>,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy.as_ref().clone());
        if password.len() > MAX_PASSWORD_LEN * 4 {
            return Ok(false);
        }
        let ok = self
            .blocking(move || match PasswordHash::new(&phc) {
                Ok(parsed) => Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok(),
                Err(_) => false,
            })
            .await?;
        Ok(known && ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> PasswordHasher {
        PasswordHasher::with(Params::new(1024, 1, 1, None).expect("params"), 2).expect("hasher")
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let h = fast();
        let stored = h
            .hash(Zeroizing::new("correct horse".into()))
            .await
            .expect("hash");
        assert!(stored.starts_with("$argon2id$"));
        assert!(
            h.verify(Zeroizing::new("correct horse".into()), Some(stored.clone()))
                .await
                .expect("verify")
        );
        assert!(
            !h.verify(Zeroizing::new("wrong horse".into()), Some(stored))
                .await
                .expect("verify")
        );
        assert!(
            !h.verify(Zeroizing::new("anything".into()), None)
                .await
                .expect("verify")
        );
        assert!(matches!(
            h.hash(Zeroizing::new("short".into())).await,
            Err(PasswordError::Length)
        ));
    }

    #[tokio::test]
    async fn the_default_parameters_are_owasps() {
        let h = PasswordHasher::new().expect("hasher");
        let stored = h
            .hash(Zeroizing::new("a long enough password".into()))
            .await
            .expect("hash");
        assert!(stored.contains("m=19456,t=2,p=1"), "{stored}");
    }
}
