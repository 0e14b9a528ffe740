//! Faults a test injects into a tenant actor (feature `testing`), and how
//! the actor that receives one acts it out.

use std::time::Duration;

/// A fault a test can inject into a tenant actor.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Panic in the message handler.
    Panic,
    /// Sleep in the message handler, blocking the actor's mailbox.
    Stall(Duration),
}

/// Act out `fault` in the message handler that received it.
pub(crate) async fn apply_fault(fault: Fault) {
    match fault {
        Fault::Panic => panic!("injected fault"),
        Fault::Stall(d) => tokio::time::sleep(d).await,
    }
}
