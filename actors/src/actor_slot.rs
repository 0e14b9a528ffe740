//! [`ActorSlot`]: where a restartable actor publishes its reference as it
//! starts (and again after each restart), so that callers reach the
//! incarnation that runs now without asking its supervisor.

use std::sync::RwLock;

use ractor::{ActorRef, Message};

use crate::error::{ActorError, RESTART_RETRY};

/// The current reference to one actor; empty while it is not running.
pub(crate) struct ActorSlot<M>(RwLock<Option<ActorRef<M>>>);

impl<M> Default for ActorSlot<M> {
    fn default() -> Self {
        ActorSlot(RwLock::new(None))
    }
}

impl<M: Message> ActorSlot<M> {
    /// The actor, as it starts.
    pub fn publish(&self, actor: ActorRef<M>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(actor);
    }

    /// Forget the actor (it stopped or failed).
    pub fn clear(&self) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub fn get(&self) -> Option<ActorRef<M>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The actor, or [`ActorError::Restarting`] while none is published.
    pub fn current(&self) -> Result<ActorRef<M>, ActorError> {
        self.get().ok_or(ActorError::Restarting {
            retry_after: RESTART_RETRY,
        })
    }
}
