//! Password hashing: argon2id at OWASP's parameters (19 MiB, t=2, p=1) on a
//! small pool of dedicated OS threads, one per core, so hashing never stalls
//! the async runtime and a burst of logins queues (bounded) instead of
//! exhausting memory. Each worker keeps its 19 MiB of argon2 memory between
//! hashes instead of allocating (and faulting in) fresh zeroed pages for
//! every login; that is what lets the login path reach the machine's argon2
//! ceiling (docs/benchmarks.md). Unknown users are checked against a dummy
//! hash, so the time taken does not tell whether a username exists.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;
use tokio::sync::{Semaphore, oneshot};
use zeroize::Zeroizing;

pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Stored hashes asking for more memory than this (KiB) are refused rather
/// than allowed to make a worker allocate without bound.
const MAX_STORED_M_COST: u32 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("passwords are {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters")]
    Length,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// The length rule of a new password ([`MIN_PASSWORD_LEN`] to
/// [`MAX_PASSWORD_LEN`] characters), checked before any hashing.
pub fn check_length(password: &str) -> Result<(), PasswordError> {
    let len = password.chars().count();
    if (MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len) {
        Ok(())
    } else {
        Err(PasswordError::Length)
    }
}

/// A unit of work for a hashing thread; it gets the thread's memory.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

#[derive(Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    jobs: SyncSender<Job>,
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

/// A hashing thread: takes jobs until every `PasswordHasher` clone is gone.
fn worker(jobs: Arc<Mutex<Receiver<Job>>>) {
    let mut memory = Vec::new();
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(&mut memory),
            Err(_) => return,
        }
    }
}

/// argon2 into `out` with the worker's memory, sized for `params`.
fn compute(
    argon: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> Result<(), PasswordError> {
    let blocks = params.block_count();
    if memory.len() != blocks {
        memory.clear();
        memory.shrink_to_fit();
        memory.resize(blocks, Block::default());
    }
    argon
        .hash_password_into_with_memory(password, salt, out, memory.as_mut_slice())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// A new PHC string for `password` with a random 16-byte salt.
fn hash_with(
    params: &Params,
    password: &[u8],
    memory: &mut Vec<Block>,
) -> Result<String, PasswordError> {
    let err = |e: argon2::password_hash::phc::Error| PasswordError::Hash(e.to_string());
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = Zeroizing::new([0u8; 32]);
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    compute(&argon, params, password, &salt, out.as_mut_slice(), memory)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| PasswordError::Hash(e.to_string()))?,
        salt: Some(Salt::new(&salt).map_err(err)?),
        hash: Some(Output::new(out.as_slice()).map_err(err)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc` (any argon2 variant and
/// parameters it names, within [`MAX_STORED_M_COST`]).
fn verify_with(phc: &str, password: &[u8], memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm.as_str()),
        parsed.salt.as_ref(),
        parsed.hash.as_ref(),
    ) else {
        return false;
    };
    let Ok(version) = Version::try_from(parsed.version.unwrap_or(0x13)) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_STORED_M_COST {
        return false;
    }
    let mut out = Zeroizing::new(vec![0u8; expected.as_bytes().len()]);
    let argon = Argon2::new(algorithm, version, params.clone());
    if compute(&argon, &params, password, salt, &mut out, memory).is_err() {
        return false;
    }
    bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

impl PasswordHasher {
    /// OWASP parameters, as many hashing threads as the machine has cores.
    pub fn new() -> Result<Self, PasswordError> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let params =
            Params::new(19 * 1024, 2, 1, None).map_err(|e| PasswordError::Hash(e.to_string()))?;
        Self::with(params, cores)
    }

    /// `params` for new hashes, `concurrency` hashing threads.
    pub fn with(params: Params, concurrency: usize) -> Result<Self, PasswordError> {
        let concurrency = concurrency.max(1);
        let mut memory = Vec::new();
        let dummy = hash_with(
            &params,
            b"rsp dummy password for unknown users",
            &mut memory,
        )?;
        drop(memory);
        let (jobs, rx) = sync_channel::<Job>(concurrency);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..concurrency {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("rsp-argon2-{i}"))
                .spawn(move || worker(rx))
                .map_err(|e| PasswordError::Hash(format!("starting a hashing thread: {e}")))?;
        }
        Ok(PasswordHasher {
            permits: Arc::new(Semaphore::new(concurrency)),
            jobs,
            params,
            dummy: Arc::new(dummy),
        })
    }

    /// Run `f` on a hashing thread once one is free (waiting asynchronously;
    /// at most `concurrency` jobs are ever handed over at once).
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let closed = || PasswordError::Hash("hasher closed".into());
        let _permit = self.permits.acquire().await.map_err(|_| closed())?;
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _ = tx.send(f(memory));
        });
        // Never blocks: the channel holds as many jobs as there are permits.
        self.jobs.try_send(job).map_err(|_| closed())?;
        rx.await.map_err(|_| closed())
    }

    /// Hash a new password (PHC string). Traced as `password.hash` (the
    /// wait for a hashing thread and the hashing), with no field.
    #[tracing::instrument(name = "password.hash", skip_all)]
    pub async fn hash(&self, password: Zeroizing<String>) -> Result<String, PasswordError> {
        check_length(&password)?;
        let params = self.params.clone();
        self.run(move |memory| hash_with(&params, password.as_bytes(), memory))
            .await?
    }

    /// Whether `password` matches `stored`; with `None` (unknown user) checks
    /// a dummy hash and answers false, taking the same time. Traced as
    /// `password.verify`, with no field (not even the outcome).
    #[tracing::instrument(name = "password.verify", skip_all)]
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
            .run(move |memory| verify_with(&phc, password.as_bytes(), memory))
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
    async fn hashes_interoperate_with_the_argon2_crates_phc_strings() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let h = fast();
        let ours = h
            .hash(Zeroizing::new("correct horse".into()))
            .await
            .expect("hash");
        let parsed = PasswordHash::new(&ours).expect("phc");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        // A hash made elsewhere (other parameters, argon2i) verifies here.
        let params = Params::new(2048, 3, 1, None).expect("params");
        let theirs = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password(b"battery staple")
            .expect("hash")
            .to_string();
        assert!(
            h.verify(
                Zeroizing::new("battery staple".into()),
                Some(theirs.clone())
            )
            .await
            .expect("verify")
        );
        assert!(
            !h.verify(Zeroizing::new("battery stapler".into()), Some(theirs))
                .await
                .expect("verify")
        );
        assert!(
            !h.verify(Zeroizing::new("x".repeat(10)), Some("not a phc".into()))
                .await
                .expect("verify")
        );
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
