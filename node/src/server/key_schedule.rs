//! The key schedule's background job: once a minute, on the node that
//! leads, run every tenant's signing-key schedule
//! ([`rsp_identity::keys::KeyService::run_schedule`]). Followers skip it;
//! each step the schedule takes is a compare-and-set, so a node that still
//! believes it leads after losing leadership changes nothing twice.

use std::time::Duration;

use rsp_consensus::Consensus;
use rsp_identity::Identity;
use rsp_identity::tenants::TenantService;

/// How often the schedule runs.
const PERIOD: Duration = Duration::from_secs(60);

/// The running job; it stops when this is dropped.
pub(super) struct KeySchedule(tokio::task::JoinHandle<()>);

impl Drop for KeySchedule {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) fn start(consensus: &Consensus, identity: &Identity) -> KeySchedule {
    let (consensus, keys) = (consensus.clone(), identity.keys.clone());
    let tenants = TenantService::new(consensus.clone());
    KeySchedule(tokio::spawn(async move {
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let status = consensus.status();
            if status.leader != Some(status.this_node) {
                continue;
            }
            let ids = match tenants.ids().await {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::warn!(error = %e, "key schedule: listing tenants failed");
                    continue;
                }
            };
            for tenant in ids {
                match keys.run_schedule(&tenant, consensus.clock().now_ms()).await {
                    Ok(run) => {
                        for staged in &run.staged {
                            tracing::info!(%tenant, kid = %staged.kid, alg = staged.alg.name(),
                                activates_at_ms = staged.activates_at_ms, "signing key published");
                        }
                        for kid in &run.activated {
                            tracing::info!(%tenant, %kid, "signing key now signs");
                        }
                    }
                    Err(e) => tracing::warn!(%tenant, error = %e, "key schedule failed"),
                }
            }
        }
    }))
}
