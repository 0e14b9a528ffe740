//! The one wall clock of a node: milliseconds since the Unix epoch.
//!
//! Every crate above storage reads the time through a [`Clock`] it was
//! given (most reach it as [`crate::Consensus::clock`]), never through
//! `SystemTime::now()` directly, so a test can run a whole node on a
//! [`ManualClock`] and move time on by hand. The leader's clock also stamps
//! every replicated command, so TTLs are decided by one clock per write.
//!
//! Not for: timeouts and intervals, which stay on tokio's monotonic time
//! (`tokio::time::pause` controls those in tests).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a [`Clock`] reads the time.
pub trait TimeSource: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl TimeSource for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A clock handle. Cheap to clone; the system clock by default.
#[derive(Clone)]
pub struct Clock(Arc<dyn TimeSource>);

impl Clock {
    /// The operating system's wall clock.
    pub fn system() -> Self {
        Clock(Arc::new(SystemClock))
    }

    /// A clock that stands at `start_ms` until the returned handle moves it.
    pub fn manual(start_ms: u64) -> (Self, ManualClock) {
        let handle = ManualClock(Arc::new(AtomicU64::new(start_ms)));
        (Clock(Arc::new(handle.clone())), handle)
    }

    /// A clock reading from any source.
    pub fn from_source(source: impl TimeSource) -> Self {
        Clock(Arc::new(source))
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }

    /// Whole seconds since the Unix epoch (JWT `iat`/`exp`).
    pub fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({} ms)", self.now_ms())
    }
}

/// The hand that moves a manual [`Clock`].
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// Moves the clock on by `by`.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    /// Sets the clock to `ms` since the epoch (it may go back, as a wall
    /// clock can).
    pub fn set_ms(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl TimeSource for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let (clock, hand) = Clock::manual(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        hand.advance(Duration::from_secs(2));
        assert_eq!(clock.now_ms(), 3_000);
        assert_eq!(clock.clone().now_secs(), 3);
        hand.set_ms(500);
        assert_eq!(clock.now_ms(), 500);
    }

    #[test]
    fn the_system_clock_reads_the_epoch_time() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let now = Clock::system().now_ms();
        assert!(now >= before && now < before + 60_000);
    }
}
