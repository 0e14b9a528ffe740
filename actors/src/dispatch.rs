//! One task per node that turns the consensus watch stream into casts to
//! tenant actors: `session/` changes to the session manager (live set),
//! `policy/head` changes to the policy evaluator (reload: every policy
//! write changes the head, so one reload per write). One subscriber per
//! node rather than one per tenant keeps the fan-out independent of the
//! number of tenants.

use std::sync::Arc;

use rsp_consensus::Consensus;
use rsp_consensus::kv::{EventKind, WatchEvent, keyspace_tenant};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::directory::Directory;
use crate::keys::{POLICY_HEAD, SESSION_PREFIX};
use crate::policy_evaluator::PolicyMsg;
use crate::session::fingerprint;
use crate::session_manager::SessionMsg;

pub(crate) fn spawn(consensus: &Consensus, directory: Arc<Directory>) -> JoinHandle<()> {
    let mut rx = consensus.watch();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(event) => route(&directory, &event),
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "watch lagged; tenant actors resync from storage");
                    for shared in directory.all() {
                        let c = &shared.children;
                        if let Some(a) = c.sessions.get() {
                            let _ = a.cast(SessionMsg::Resync);
                        }
                        if let Some(a) = c.policy.get() {
                            let _ = a.cast(PolicyMsg::Reload);
                        }
                    }
                }
                Err(RecvError::Closed) => break,
            }
        }
    })
}

fn route(directory: &Directory, event: &WatchEvent) {
    let Some(tenant) = keyspace_tenant(&event.key.keyspace) else {
        return;
    };
    let Some(shared) = directory.get(tenant) else {
        return;
    };
    let key = &event.key.key;
    let children = &shared.children;
    if let Some(handle) = key.strip_prefix(SESSION_PREFIX) {
        if let Some(a) = children.sessions.get() {
            let _ = a.cast(SessionMsg::Changed {
                fp: fingerprint(handle),
                live: event.kind == EventKind::Put,
            });
        }
    } else if key.as_slice() == POLICY_HEAD
        && let Some(a) = children.policy.get()
    {
        let _ = a.cast(PolicyMsg::Reload);
    }
}
