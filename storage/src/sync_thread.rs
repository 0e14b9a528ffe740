//! Group commit: one thread turns many "make this durable" requests into one
//! `flush + fdatasync`.
//!
//! The Raft log store hands in a completion callback per append and returns at
//! once; the thread waits for the first request, takes every other request that
//! queued up meanwhile, syncs once, and completes them all. Under load, one sync
//! therefore covers every entry appended while the previous sync ran.

use std::sync::mpsc;
use std::thread;

use crate::db::Store;
use crate::error::StorageError;

type Done = Box<dyn FnOnce(Result<(), std::io::Error>) + Send>;

/// Called with the time each sync took (for a latency histogram).
pub type SyncObserver = std::sync::Arc<dyn Fn(std::time::Duration) + Send + Sync>;

/// Counts of syncs and of requests they covered, for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct SyncStats {
    pub syncs: std::sync::atomic::AtomicU64,
    pub requests: std::sync::atomic::AtomicU64,
    /// Time spent in syncs, in nanoseconds.
    pub nanos: std::sync::atomic::AtomicU64,
}

/// Handle to the group-commit thread; the thread stops when every handle is
/// dropped.
#[derive(Clone)]
pub struct SyncThread {
    tx: mpsc::Sender<Done>,
    stats: std::sync::Arc<SyncStats>,
}

impl SyncThread {
    pub fn start(store: Store) -> Result<SyncThread, StorageError> {
        Self::start_with(store, false, None)
    }

    /// With `skip_sync`, requests complete without any flush or sync: a
    /// deliberately broken mode for proving that the Jepsen checkers catch
    /// lost writes. Never use it otherwise. `observer` hears the time of
    /// every sync.
    pub fn start_with(
        store: Store,
        skip_sync: bool,
        observer: Option<SyncObserver>,
    ) -> Result<SyncThread, StorageError> {
        let (tx, rx) = mpsc::channel::<Done>();
        let stats = std::sync::Arc::new(SyncStats::default());
        let thread_stats = stats.clone();
        thread::Builder::new()
            .name("rsp-log-sync".into())
            .spawn(move || run(store, rx, thread_stats, skip_sync, observer))
            .map_err(|e| StorageError::io(std::path::Path::new("<sync thread>"), e))?;
        Ok(SyncThread { tx, stats })
    }

    /// Queue `done` to run once everything written so far is durable.
    pub fn request(
        &self,
        done: impl FnOnce(Result<(), std::io::Error>) + Send + 'static,
    ) -> Result<(), StorageError> {
        self.tx
            .send(Box::new(done))
            .map_err(|_| StorageError::SyncStopped)
    }

    /// Wait until everything written so far is durable.
    pub async fn sync(&self) -> Result<(), StorageError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.request(move |r| {
            let _ = tx.send(r);
        })?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StorageError::io(std::path::Path::new("<log sync>"), e)),
            Err(_) => Err(StorageError::SyncStopped),
        }
    }

    pub fn stats(&self) -> &SyncStats {
        &self.stats
    }
}

fn run(
    store: Store,
    rx: mpsc::Receiver<Done>,
    stats: std::sync::Arc<SyncStats>,
    skip_sync: bool,
    observer: Option<SyncObserver>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let started = std::time::Instant::now();
        let result = if skip_sync { Ok(()) } else { store.sync() };
        let elapsed = started.elapsed();
        if let Some(observe) = &observer {
            observe(elapsed);
        }
        let took = elapsed.as_nanos().min(u64::MAX as u128) as u64;
        stats.nanos.fetch_add(took, Relaxed);
        stats.syncs.fetch_add(1, Relaxed);
        stats.requests.fetch_add(batch.len() as u64, Relaxed);
        if let Err(e) = &result {
            tracing::error!(error = %e, "log sync failed");
        }
        for done in batch {
            done(
                result
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| std::io::Error::other(e.to_string())),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::db::StoreConfig;

    #[tokio::test]
    async fn the_observer_hears_every_sync() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&StoreConfig::new(dir.path())).expect("store");
        let heard = Arc::new(AtomicUsize::new(0));
        let counter = heard.clone();
        let thread = SyncThread::start_with(
            store.clone(),
            false,
            Some(Arc::new(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            })),
        )
        .expect("sync thread");
        thread.sync().await.expect("sync");
        thread.sync().await.expect("sync");
        assert_eq!(heard.load(Ordering::SeqCst), 2);
        assert!(store.size_on_disk().expect("size") > 0);
    }
}
