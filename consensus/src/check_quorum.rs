//! Check-quorum: a leader that has heard no answer from a quorum of voters
//! for a while steps aside.
//!
//! openraft 0.9 has no step-down. Followers keep a leader's lease for as
//! long as its AppendEntries reach them, even when the answers never make it
//! back (a slow or one-way link from the leader): nothing commits, and no
//! follower stands for election. This module watches, on the leader, when
//! each voter last answered a request in time, and when a request to it last
//! failed at the connection. When fewer than a quorum (this node included)
//! answered within [`CheckQuorum::window`], but enough voters are *mute*
//! rather than down to elect another leader, the leader goes *silent*: it
//! sends no AppendEntries (so no heartbeats either) and refuses writes,
//! which lets the followers' leases run out and one of them win a new term;
//! the old leader then grants that vote (its own vote is older than its
//! lease) and follows. Silence is bounded (a leader that stays leader after
//! [`CheckQuorum::max_silence`] speaks again and is judged afresh), so a
//! leader cut off from everyone loses nothing by it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use openraft::ServerState;

use crate::node::Consensus;
use crate::types::NodeId;

/// What this node's Raft network last saw of a peer.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Seen {
    /// The peer answered a request in time.
    pub reply: Option<Instant>,
    /// A request to the peer failed at the connection (refused, reset):
    /// the peer, or the way to it, is down rather than slow.
    pub failure: Option<Instant>,
}

/// Replies seen by this node's Raft network, and whether it is silent.
#[derive(Debug, Default)]
pub struct Contacts {
    seen: Mutex<HashMap<NodeId, Seen>>,
    silent: AtomicBool,
}

impl Contacts {
    /// `target` answered a request in time (any answer: it is reachable).
    pub(crate) fn replied(&self, target: NodeId) {
        if let Ok(mut s) = self.seen.lock() {
            s.entry(target).or_default().reply = Some(Instant::now());
        }
    }

    /// A request to `target` failed at the connection. A request that
    /// timed out is not a failure here: it may have arrived.
    pub(crate) fn failed(&self, target: NodeId) {
        if let Ok(mut s) = self.seen.lock() {
            s.entry(target).or_default().failure = Some(Instant::now());
        }
    }

    fn seen(&self, target: NodeId) -> Seen {
        self.seen
            .lock()
            .ok()
            .and_then(|s| s.get(&target).copied())
            .unwrap_or_default()
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
    /// Twice the longest election timeout: a healthy leader's heartbeats
    /// are answered many times over in that span, and a node that is busy
    /// starting up (its first answers can miss openraft's one-heartbeat
    /// deadline for a while) is not mistaken for a cut-off link.
    pub fn from_timers(heartbeat_ms: u64, election_timeout_max_ms: u64) -> Self {
        CheckQuorum {
            window: Duration::from_millis(election_timeout_max_ms * 2),
            // Followers need their lease (one election timeout) and then
            // at most one election timeout to elect. A silence that no
            // election ended by then helped nobody.
            max_silence: Duration::from_millis(election_timeout_max_ms * 3),
            every: Duration::from_millis(heartbeat_ms.max(10)),
        }
    }
}

/// What the leader decides on one check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Enough voters answered, or too few are reachable for silence to let
    /// anyone else lead.
    Keep,
    /// Fewer than a quorum answered within the window, yet enough voters
    /// may be up (their requests time out rather than fail) to elect
    /// another leader.
    LostQuorum { answered: usize, voters: usize },
}

/// Counts the voters in contact, this node included. A voter that neither
/// answered nor failed at the connection within the window is *mute*: our
/// messages may reach it while its answers do not reach us. Silence helps
/// only if the voters in contact and the mute ones make a quorum: then
/// they can elect a leader once this node stops renewing its lease (this
/// node grants its vote). Voters that are down could not, and a leader
/// waiting for them to come back must keep sending.
pub(crate) fn judge(
    me: NodeId,
    voters: &[NodeId],
    seen: impl Fn(NodeId) -> Seen,
    now: Instant,
    window: Duration,
) -> Verdict {
    if voters.len() <= 1 {
        return Verdict::Keep;
    }
    let recent = |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) < window);
    let (mut answered, mut mute) = (0, 0);
    for v in voters {
        if *v == me {
            answered += 1;
            continue;
        }
        let s = seen(*v);
        if recent(s.reply) {
            answered += 1;
        } else if !recent(s.failure) {
            mute += 1;
        }
    }
    let quorum = voters.len() / 2 + 1;
    if answered >= quorum || answered + mute < quorum {
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
    /// (term, voters, since): when this node became leader of the term
    /// with these voters, or last spoke again. A new voter gets a full
    /// window to be heard.
    leading: Option<(u64, Vec<NodeId>, Instant)>,
    /// (term, since): when it went silent, as leader of that term.
    silent: Option<(u64, Instant)>,
}

impl Watch {
    /// One check. `leader_term` is the term if this node leads; `judge`
    /// counts the voters in contact (called only when due).
    pub(crate) fn step(
        &mut self,
        leader_term: Option<u64>,
        voters: &[NodeId],
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
                self.leading = Some((term, voters.to_vec(), now));
                return Step::Speak(SpeakBecause::NewTerm);
            }
            if now.duration_since(since) < check.max_silence {
                return Step::Nothing;
            }
            // Nobody took over: speak again and judge afresh after a full
            // window.
            self.silent = None;
            self.leading = Some((term, voters.to_vec(), now));
            return Step::Speak(SpeakBecause::NobodyTookOver);
        }
        let since = match &self.leading {
            Some((t, v, since)) if *t == term && v == voters => *since,
            _ => {
                self.leading = Some((term, voters.to_vec(), now));
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
    let check = {
        // The timers Raft runs with: one source for both.
        let raft = c.raft().config();
        CheckQuorum::from_timers(raft.heartbeat_interval, raft.election_timeout_max)
    };
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
        let step = watch.step(leader_term, &voters, now, &check, || {
            judge(me, &voters, |v| contacts.seen(v), now, check.window)
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
                c.inner.metrics.check_quorum_silences.inc();
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

    fn judge_with(voters: &[NodeId], seen: HashMap<NodeId, Seen>) -> Verdict {
        judge(
            1,
            voters,
            move |v| seen.get(&v).copied().unwrap_or_default(),
            Instant::now(),
            Duration::from_millis(900),
        )
    }

    fn replied(ago_ms: u64) -> Seen {
        Seen {
            reply: Some(Instant::now() - Duration::from_millis(ago_ms)),
            failure: None,
        }
    }

    fn down() -> Seen {
        Seen {
            reply: None,
            failure: Some(Instant::now() - Duration::from_millis(100)),
        }
    }

    #[test]
    fn a_quorum_counts_this_node_and_recent_answers_only() {
        // One recent answer out of two others: 2 of 3.
        assert_eq!(
            judge_with(&[1, 2, 3], [(2, replied(100)), (3, replied(1000))].into()),
            Verdict::Keep
        );
        // Only stale answers, no connection failures: both may be up.
        assert_eq!(
            judge_with(&[1, 2, 3], [(2, replied(1000)), (3, replied(1000))].into()),
            Verdict::LostQuorum {
                answered: 1,
                voters: 3
            }
        );
        // Never heard from at all counts as mute too.
        assert_eq!(
            judge_with(&[1, 2, 3], HashMap::new()),
            Verdict::LostQuorum {
                answered: 1,
                voters: 3
            }
        );
        // 2 of 4 is not a quorum.
        assert_eq!(
            judge_with(&[1, 2, 3, 4], [(2, replied(100))].into()),
            Verdict::LostQuorum {
                answered: 2,
                voters: 4
            }
        );
        // A single voter always keeps leading.
        assert_eq!(judge_with(&[1], HashMap::new()), Verdict::Keep);
    }

    #[test]
    fn voters_that_are_down_leave_nobody_to_take_over() {
        let mute = Seen::default();
        // A two-voter cluster whose second node is not up yet.
        assert_eq!(judge_with(&[1, 2], [(2, down())].into()), Verdict::Keep);
        // Both followers down: nobody could be elected.
        assert_eq!(
            judge_with(&[1, 2, 3], [(2, down()), (3, down())].into()),
            Verdict::Keep
        );
        // One down, one mute: the mute one can win with this node's vote.
        assert_eq!(
            judge_with(&[1, 2, 3], [(2, down()), (3, mute)].into()),
            Verdict::LostQuorum {
                answered: 1,
                voters: 3
            }
        );
        // Five voters, two down and two mute: 1 + 2 make a quorum.
        assert_eq!(
            judge_with(
                &[1, 2, 3, 4, 5],
                [(2, down()), (3, down()), (4, mute), (5, mute)].into()
            ),
            Verdict::LostQuorum {
                answered: 1,
                voters: 5
            }
        );
        // Five voters, three down: nobody else could win.
        assert_eq!(
            judge_with(
                &[1, 2, 3, 4, 5],
                [(2, down()), (3, down()), (4, down()), (5, mute)].into()
            ),
            Verdict::Keep
        );
    }

    const V: [NodeId; 3] = [1, 2, 3];

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
        assert_eq!(w.step(Some(2), &V, t0, &c, lost), Step::Nothing);
        let early = t0 + c.window - Duration::from_millis(1);
        assert_eq!(w.step(Some(2), &V, early, &c, lost), Step::Nothing);
        assert_eq!(
            w.step(Some(2), &V, t0 + c.window, &c, lost),
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
            w.step(Some(2), &V, t0, &c, lost);
            assert!(matches!(
                w.step(Some(2), &V, t0 + c.window, &c, lost),
                Step::GoSilent { .. }
            ));
        };
        let at = t0 + c.window + Duration::from_millis(10);

        let mut w = Watch::default();
        silent(&mut w);
        assert_eq!(w.step(Some(2), &V, at, &c, lost), Step::Nothing);
        assert_eq!(
            w.step(None, &V, at, &c, lost),
            Step::Speak(SpeakBecause::SteppedDown)
        );
        assert_eq!(w.step(None, &V, at, &c, lost), Step::Nothing);

        let mut w = Watch::default();
        silent(&mut w);
        assert_eq!(
            w.step(Some(3), &V, at, &c, lost),
            Step::Speak(SpeakBecause::NewTerm)
        );
        // The new term is judged after its own full window.
        assert_eq!(
            w.step(Some(3), &V, at + c.window / 2, &c, lost),
            Step::Nothing
        );

        let mut w = Watch::default();
        silent(&mut w);
        let end = t0 + c.window + c.max_silence;
        assert_eq!(
            w.step(Some(2), &V, end, &c, lost),
            Step::Speak(SpeakBecause::NobodyTookOver)
        );
        assert_eq!(
            w.step(Some(2), &V, end + c.window / 2, &c, lost),
            Step::Nothing
        );
        assert!(matches!(
            w.step(Some(2), &V, end + c.window, &c, lost),
            Step::GoSilent { .. }
        ));
    }

    #[test]
    fn a_change_of_voters_restarts_the_window() {
        let (c, t0) = (check(), Instant::now());
        let mut w = Watch::default();
        let lost = || Verdict::LostQuorum {
            answered: 1,
            voters: 2,
        };
        assert_eq!(w.step(Some(2), &[1], t0, &c, lost), Step::Nothing);
        // Node 2 was just promoted: it gets a full window to be heard.
        let promoted = t0 + c.window;
        assert_eq!(w.step(Some(2), &[1, 2], promoted, &c, lost), Step::Nothing);
        let mid = promoted + c.window / 2;
        assert_eq!(w.step(Some(2), &[1, 2], mid, &c, lost), Step::Nothing);
        assert!(matches!(
            w.step(Some(2), &[1, 2], promoted + c.window, &c, lost),
            Step::GoSilent { .. }
        ));
    }

    #[test]
    fn a_leader_that_hears_from_a_quorum_never_goes_silent() {
        let (c, t0) = (check(), Instant::now());
        let mut w = Watch::default();
        for i in 0..100u32 {
            let now = t0 + c.every * i;
            assert_eq!(
                w.step(Some(2), &V, now, &c, || Verdict::Keep),
                Step::Nothing
            );
        }
    }
}
