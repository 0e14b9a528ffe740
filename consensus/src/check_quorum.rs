//! Check-quorum: a leader that has heard no reply from a quorum of voters
//! for a while steps aside.
//!
//! openraft 0.9 has no step-down. Followers keep a leader's lease for as
//! long as its AppendEntries reach them, even when the replies never make it
//! back (a slow or one-way link from the leader): nothing commits, and no
//! follower stands for election. This module watches, on the leader, when
//! each voter last answered an AppendEntries. When fewer than a quorum
//! (this node included) answered within [`CheckQuorum::window`], the leader
//! goes *silent*: it sends no AppendEntries (so no heartbeats either) and
//! refuses writes, which lets the followers' leases run out and one of them
//! win a new term; the old leader then grants that vote (its own vote is
//! older than its lease) and follows. Silence is bounded (a leader that
//! stays leader after [`CheckQuorum::max_silence`] speaks again and is
//! judged afresh), so a leader cut off from everyone loses nothing by it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use openraft::ServerState;

use crate::node::Consensus;
use crate::types::NodeId;

/// Replies seen by this node's Raft network, and whether it is silent.
#[derive(Debug, Default)]
pub struct Contacts {
    replies: Mutex<HashMap<NodeId, Instant>>,
    silent: AtomicBool,
}

impl Contacts {
    /// `target` answered an AppendEntries (any answer: it is reachable).
    pub(crate) fn replied(&self, target: NodeId) {
        if let Ok(mut r) = self.replies.lock() {
            r.insert(target, Instant::now());
        }
    }

    fn last_reply(&self, target: NodeId) -> Option<Instant> {
        self.replies
            .lock()
            .ok()
            .and_then(|r| r.get(&target).copied())
    }

    /// True while this node, as leader, sends no AppendEntries.
    pub fn is_silent(&self) -> bool {
        self.silent.load(Ordering::Relaxed)
    }

    fn set_silent(&self, silent: bool) {
        self.silent.store(silent, Ordering::Relaxed);
    }
}

/// The timing of the check, from the Raft timers.
#[derive(Debug, Clone, Copy)]
pub struct CheckQuorum {
    /// A voter counts as in contact when it answered within this.
    pub window: Duration,
    /// The longest a leader stays silent before speaking again.
    pub max_silence: Duration,
    /// How often the leader checks.
    pub every: Duration,
}

impl CheckQuorum {
    /// The longest election timeout, as etcd's check-quorum: a healthy
    /// leader's heartbeats are answered several times over in that span,
    /// and it is as long as the lease followers grant a leader.
    pub fn from_timers(heartbeat_ms: u64, election_timeout_max_ms: u64) -> Self {
        let window = Duration::from_millis(election_timeout_max_ms);
        CheckQuorum {
            window,
            // Followers need their lease (one window) plus an election
            // timeout to elect; leave room for several rounds.
            max_silence: window * 6,
            every: Duration::from_millis(heartbeat_ms.max(10)),
        }
    }
}

/// What the leader decides on one check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Enough voters answered (or too early to judge).
    Keep,
    /// Fewer than a quorum answered within the window.
    LostQuorum { answered: usize, voters: usize },
}

/// Counts the voters in contact, this node included.
pub(crate) fn judge(
    me: NodeId,
    voters: &[NodeId],
    last_reply: impl Fn(NodeId) -> Option<Instant>,
    now: Instant,
    window: Duration,
) -> Verdict {
    if voters.len() <= 1 {
        return Verdict::Keep;
    }
    let answered = voters
        .iter()
        .filter(|v| {
            **v == me || last_reply(**v).is_some_and(|t| now.saturating_duration_since(t) < window)
        })
        .count();
    if answered * 2 > voters.len() {
        Verdict::Keep
    } else {
        Verdict::LostQuorum {
            answered,
            voters: voters.len(),
        }
    }
}

/// What the leader's watch decides on one check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Nothing,
    /// Fewer than a quorum answered within the window: stop sending.
    GoSilent {
        answered: usize,
        voters: usize,
    },
    /// End the silence.
    Speak(SpeakBecause),
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SpeakBecause {
    /// This node no longer leads: another took over.
    SteppedDown,
    /// It leads again, in a later term than the one it fell silent in.
    NewTerm,
    /// It still leads after the longest silence.
    NobodyTookOver,
}

/// The timing side of check-quorum, apart from the clock and the network so
/// it can be tested alone.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    /// (term, since): when this node became leader, or last spoke again.
    leading: Option<(u64, Instant)>,
    /// (term, since): when it went silent, as leader of that term.
    silent: Option<(u64, Instant)>,
}

impl Watch {
    /// One check. `leader_term` is the term if this node leads; `judge`
    /// counts the voters in contact (called only when due).
    pub(crate) fn step(
        &mut self,
        leader_term: Option<u64>,
        now: Instant,
        check: &CheckQuorum,
        judge: impl FnOnce() -> Verdict,
    ) -> Step {
        let Some(term) = leader_term else {
            self.leading = None;
            return match self.silent.take() {
                Some(_) => Step::Speak(SpeakBecause::SteppedDown),
                None => Step::Nothing,
            };
        };
        if let Some((silent_term, since)) = self.silent {
            if silent_term != term {
                self.silent = None;
                self.leading = Some((term, now));
                return Step::Speak(SpeakBecause::NewTerm);
            }
            if now.duration_since(since) < check.max_silence {
                return Step::Nothing;
            }
            // Nobody took over: speak again and judge afresh after a full
            // window.
            self.silent = None;
            self.leading = Some((term, now));
            return Step::Speak(SpeakBecause::NobodyTookOver);
        }
        let since = match self.leading {
            Some((t, since)) if t == term => since,
            _ => {
                self.leading = Some((term, now));
                now
            }
        };
        if now.duration_since(since) < check.window {
            return Step::Nothing;
        }
        match judge() {
            Verdict::Keep => Step::Nothing,
            Verdict::LostQuorum { answered, voters } => {
                self.silent = Some((term, now));
                Step::GoSilent { answered, voters }
            }
        }
    }
}

pub(crate) async fn run(c: Consensus) {
    let check = c.inner.config.check_quorum();
    let contacts = c.inner.contacts.clone();
    let me = c.inner.id;
    let mut stop = c.inner.stop_tx.subscribe();
    let mut interval = tokio::time::interval(check.every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watch = Watch::default();
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.changed() => return,
        }
        let (leader_term, voters) = {
            let metrics = c.raft().metrics();
            let m = metrics.borrow();
            if m.state == ServerState::Leader {
                let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
                (Some(m.current_term), voters)
            } else {
                (None, Vec::new())
            }
        };
        let now = Instant::now();
        let step = watch.step(leader_term, now, &check, || {
            judge(me, &voters, |v| contacts.last_reply(v), now, check.window)
        });
        match step {
            Step::Nothing => {}
            Step::GoSilent { answered, voters } => {
                tracing::warn!(
                    term = leader_term,
                    answered,
                    voters,
                    window_ms = check.window.as_millis() as u64,
                    "leader heard from fewer than a quorum of voters; going silent so another node can lead"
                );
                contacts.set_silent(true);
                c.inner.metrics.check_quorum_stepdowns.inc();
            }
            Step::Speak(why) => {
                tracing::info!(term = leader_term, ?why, "check-quorum silence over");
                contacts.set_silent(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quorum_counts_this_node_and_recent_answers_only() {
        let now = Instant::now();
        let window = Duration::from_millis(900);
        let recent = now - Duration::from_millis(100);
        let old = now - Duration::from_millis(1000);
        let replies = |r: HashMap<NodeId, Instant>| move |v: NodeId| r.get(&v).copied();
        // One recent answer out of two others: 2 of 3.
        assert_eq!(
            judge(
                1,
                &[1, 2, 3],
                replies([(2, recent), (3, old)].into()),
                now,
                window
            ),
            Verdict::Keep
        );
        // Only stale answers: 1 of 3.
        assert_eq!(
            judge(
                1,
                &[1, 2, 3],
                replies([(2, old), (3, old)].into()),
                now,
                window
            ),
            Verdict::LostQuorum {
                answered: 1,
                voters: 3
            }
        );
        // 2 of 4 is not a quorum.
        assert_eq!(
            judge(1, &[1, 2, 3, 4], replies([(2, recent)].into()), now, window),
            Verdict::LostQuorum {
                answered: 2,
                voters: 4
            }
        );
        // A single voter always keeps leading.
        assert_eq!(
            judge(1, &[1], replies(HashMap::new()), now, window),
            Verdict::Keep
        );
    }

    fn check() -> CheckQuorum {
        CheckQuorum::from_timers(50, 450)
    }

    #[test]
    fn a_new_leader_is_judged_only_after_a_full_window() {
        let (c, t0) = (check(), Instant::now());
        let mut w = Watch::default();
        let lost = || Verdict::LostQuorum {
            answered: 1,
            voters: 3,
        };
        assert_eq!(w.step(Some(2), t0, &c, lost), Step::Nothing);
        let early = t0 + c.window - Duration::from_millis(1);
        assert_eq!(w.step(Some(2), early, &c, lost), Step::Nothing);
        assert_eq!(
            w.step(Some(2), t0 + c.window, &c, lost),
            Step::GoSilent {
                answered: 1,
                voters: 3
            }
        );
    }

    #[test]
    fn silence_ends_on_step_down_new_term_or_after_the_longest_silence() {
        let (c, t0) = (check(), Instant::now());
        let lost = || Verdict::LostQuorum {
            answered: 1,
            voters: 3,
        };
        let silent = |w: &mut Watch| {
            w.step(Some(2), t0, &c, lost);
            assert!(matches!(
                w.step(Some(2), t0 + c.window, &c, lost),
                Step::GoSilent { .. }
            ));
        };
        let at = t0 + c.window + Duration::from_millis(10);

        let mut w = Watch::default();
        silent(&mut w);
        assert_eq!(w.step(Some(2), at, &c, lost), Step::Nothing);
        assert_eq!(
            w.step(None, at, &c, lost),
            Step::Speak(SpeakBecause::SteppedDown)
        );
        assert_eq!(w.step(None, at, &c, lost), Step::Nothing);

        let mut w = Watch::default();
        silent(&mut w);
        assert_eq!(
            w.step(Some(3), at, &c, lost),
            Step::Speak(SpeakBecause::NewTerm)
        );
        // The new term is judged after its own full window.
        assert_eq!(w.step(Some(3), at + c.window / 2, &c, lost), Step::Nothing);

        let mut w = Watch::default();
        silent(&mut w);
        let end = t0 + c.window + c.max_silence;
        assert_eq!(
            w.step(Some(2), end, &c, lost),
            Step::Speak(SpeakBecause::NobodyTookOver)
        );
        assert_eq!(w.step(Some(2), end + c.window / 2, &c, lost), Step::Nothing);
        assert!(matches!(
            w.step(Some(2), end + c.window, &c, lost),
            Step::GoSilent { .. }
        ));
    }

    #[test]
    fn a_leader_that_hears_from_a_quorum_never_goes_silent() {
        let (c, t0) = (check(), Instant::now());
        let mut w = Watch::default();
        for i in 0..100u32 {
            let now = t0 + c.every * i;
            assert_eq!(w.step(Some(2), now, &c, || Verdict::Keep), Step::Nothing);
        }
    }
}
