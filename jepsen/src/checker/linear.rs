//! A linearizability checker: Wing and Gong's search with Lowe's
//! just-in-time linearization and the memoization of Porcupine.
//!
//! Every operation is a call entry and a return entry on a time line
//! (calls before returns at equal times, so touching operations count as
//! concurrent). The search walks the line: at a call entry it tries to
//! linearize that operation now (the model accepts its input and output in
//! the current state); at a return entry of an operation not yet linearized
//! it has gone too far and backtracks to the last choice. Linearized
//! operations are lifted out of the line, so the next candidates are always
//! the calls before the first pending return. A configuration (set of
//! linearized operations, model state) that was reached before is never
//! explored again; that cache is what makes the search practical.
//!
//! Indeterminate operations have no return entry (their return is at
//! infinity): they may be linearized anywhere after their call, and
//! linearizing one at the very end stands for "never took effect", so the
//! model must accept them with any state (see [`Model::step`]).
//!
//! Interchangeable operations: indeterminate operations with the same
//! effect (e.g. timed-out writes of values nobody ever read, which a model
//! may map to one "unobserved" value) can be used in any order, so the
//! search only linearizes a member of such a class after every member that
//! was invoked before it. Any linearization can be rearranged into that
//! canonical one (swap which member is used where: all of them are
//! available from their call onwards, forever), so nothing is lost, and the
//! subsets of a class the search must consider shrink from 2^k to k + 1.
//! Without this, a few dozen timed-out writes in a partition make the
//! search hopeless.
//!
//! The search is exponential in the worst case; it stops at a step or time
//! budget and answers [`Outcome::Unknown`].

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// A sequential specification.
pub trait Model {
    type State: Clone + Eq + Hash + Debug;
    type Input: Debug;
    type Output: Debug;

    fn init(&self) -> Self::State;

    /// The state after an operation with this input and output, or `None`
    /// when the output is impossible in `state`. Outputs of indeterminate
    /// operations must be accepted in every state.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;
}

/// One operation of a history for the checker.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation<I, O> {
    /// The caller's id for it (e.g. the history index), for reports.
    pub id: u64,
    pub call: u64,
    /// `None`: never returned (indeterminate).
    pub ret: Option<u64>,
    pub input: I,
    pub output: O,
    /// Interchangeable indeterminate operations share a class (see the
    /// module docs); only meaningful with `ret: None`.
    pub class: Option<u64>,
}

/// Limits of one search.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub max_steps: u64,
    pub deadline: Option<Instant>,
}

impl Budget {
    pub fn new(max_steps: u64, time: Duration) -> Self {
        Self {
            max_steps,
            deadline: Some(Instant::now() + time),
        }
    }

    pub fn unlimited() -> Self {
        Self {
            max_steps: u64::MAX,
            deadline: None,
        }
    }
}

/// Why a history is not linearizable: the longest prefix of operations the
/// search could linearize, and an operation it then could not place.
#[derive(Debug, Clone, PartialEq)]
pub struct Counterexample<S> {
    /// Ids of the operations linearized, in order.
    pub linearized: Vec<u64>,
    /// The model state after them.
    pub state: S,
    /// The operation whose return came before it could be linearized.
    pub stuck: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<S> {
    /// A linearization exists; the ids in one such order.
    Linearizable(Vec<u64>),
    NotLinearizable(Counterexample<S>),
    /// The budget ran out; `steps` were taken.
    Unknown {
        steps: u64,
        reason: String,
    },
}

impl<S> Outcome<S> {
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Outcome::Linearizable(_))
    }
}

const NIL: usize = usize::MAX;

#[derive(Debug)]
struct Entry {
    /// Index of the operation.
    op: usize,
    /// For a call entry: the index of its return entry (`NIL` when none).
    ret: usize,
    is_call: bool,
}

/// A fixed-size bit set with cheap cloning for the cache.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Box<[u64]>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64).max(1)].into_boxed_slice())
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
}

/// Checks one history (e.g. one key's operations).
pub fn check<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    budget: Budget,
) -> Outcome<M::State> {
    let n = ops.len();
    // Entries 1.. are the time line; index 0 is the list head.
    let mut timeline: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        timeline.push((op.call, true, i));
        if let Some(ret) = op.ret {
            timeline.push((ret.max(op.call), false, i));
        }
    }
    // By time; calls before returns at the same time; then by op.
    timeline.sort_by_key(|(t, is_call, i)| (*t, !*is_call, *i));
    let mut entries: Vec<Entry> = Vec::with_capacity(timeline.len() + 1);
    entries.push(Entry {
        op: NIL,
        ret: NIL,
        is_call: false,
    });
    let mut call_entry = vec![NIL; n];
    for (_, is_call, op) in &timeline {
        let idx = entries.len();
        if *is_call {
            call_entry[*op] = idx;
        } else {
            entries[call_entry[*op]].ret = idx;
        }
        entries.push(Entry {
            op: *op,
            ret: NIL,
            is_call: *is_call,
        });
    }
    // Within a class, each member waits for the one invoked before it.
    let mut after: Vec<usize> = vec![NIL; n];
    {
        let mut members: std::collections::HashMap<u64, Vec<usize>> = Default::default();
        for (i, op) in ops.iter().enumerate() {
            if let (Some(c), None) = (op.class, op.ret) {
                members.entry(c).or_default().push(i);
            }
        }
        for list in members.values_mut() {
            list.sort_by_key(|i| (ops[*i].call, *i));
            for w in list.windows(2) {
                after[w[1]] = w[0];
            }
        }
    }
    let len = entries.len();
    let mut next: Vec<usize> = (1..=len).map(|i| if i < len { i } else { NIL }).collect();
    let mut prev: Vec<usize> = (0..len).map(|i| if i == 0 { NIL } else { i - 1 }).collect();

    let lift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, e: usize, r: usize| {
        next[prev[e]] = next[e];
        if next[e] != NIL {
            prev[next[e]] = prev[e];
        }
        if r != NIL {
            next[prev[r]] = next[r];
            if next[r] != NIL {
                prev[next[r]] = prev[r];
            }
        }
    };
    let unlift = |next: &mut Vec<usize>, prev: &mut Vec<usize>, e: usize, r: usize| {
        if r != NIL {
            next[prev[r]] = r;
            if next[r] != NIL {
                prev[next[r]] = r;
            }
        }
        next[prev[e]] = e;
        if next[e] != NIL {
            prev[next[e]] = e;
        }
    };

    let mut state = model.init();
    let mut linearized = Bits::new(n);
    let mut cache: HashSet<(Bits, M::State)> = HashSet::new();
    // (call entry, state before it)
    let mut calls: Vec<(usize, M::State)> = Vec::new();
    let mut best: Option<Counterexample<M::State>> = None;
    let mut steps: u64 = 0;
    let mut entry = next[0];

    while next[0] != NIL {
        steps += 1;
        if steps > budget.max_steps {
            return Outcome::Unknown {
                steps,
                reason: format!("step budget of {} exhausted", budget.max_steps),
            };
        }
        if steps.is_multiple_of(4096)
            && let Some(deadline) = budget.deadline
            && Instant::now() >= deadline
        {
            return Outcome::Unknown {
                steps,
                reason: "time budget exhausted".to_string(),
            };
        }
        if entry != NIL && entries[entry].is_call {
            let e = &entries[entry];
            let op = &ops[e.op];
            let mut advanced = false;
            let waits = after[e.op] != NIL && !linearized.get(after[e.op]);
            if waits {
                // A member of its class invoked earlier is still unused.
            } else if let Some(new_state) = model.step(&state, &op.input, &op.output) {
                let mut bits = linearized.clone();
                bits.set(e.op);
                if cache.insert((bits, new_state.clone())) {
                    calls.push((entry, state));
                    state = new_state;
                    linearized.set(e.op);
                    lift(&mut next, &mut prev, entry, e.ret);
                    entry = next[0];
                    advanced = true;
                }
            }
            if !advanced {
                entry = next[entry];
            }
            continue;
        }
        // A return of an operation not linearized yet (or the end of the
        // line with operations left that fit nowhere): backtrack.
        let stuck = ops[entries[if entry == NIL { next[0] } else { entry }].op].id;
        if best
            .as_ref()
            .is_none_or(|b| calls.len() > b.linearized.len())
        {
            best = Some(Counterexample {
                linearized: calls.iter().map(|(c, _)| ops[entries[*c].op].id).collect(),
                state: state.clone(),
                stuck,
            });
        }
        let Some((call, before)) = calls.pop() else {
            return Outcome::NotLinearizable(best.unwrap_or(Counterexample {
                linearized: Vec::new(),
                state,
                stuck,
            }));
        };
        state = before;
        let c = &entries[call];
        linearized.clear(c.op);
        unlift(&mut next, &mut prev, call, c.ret);
        entry = next[call];
    }
    Outcome::Linearizable(calls.iter().map(|(c, _)| ops[entries[*c].op].id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A counter with `inc` (no output) and `get` (returns the value).
    struct Counter;

    #[derive(Debug)]
    enum In {
        Inc,
        Get,
    }

    impl Model for Counter {
        type State = u32;
        type Input = In;
        type Output = Option<u32>;
        fn init(&self) -> u32 {
            0
        }
        fn step(&self, s: &u32, i: &In, o: &Option<u32>) -> Option<u32> {
            match (i, o) {
                (In::Inc, _) => Some(s + 1),
                (In::Get, Some(v)) => (v == s).then_some(*s),
                (In::Get, None) => Some(*s),
            }
        }
    }

    fn op(
        id: u64,
        call: u64,
        ret: Option<u64>,
        input: In,
        output: Option<u32>,
    ) -> Operation<In, Option<u32>> {
        Operation {
            id,
            call,
            ret,
            input,
            output,
            class: None,
        }
    }

    #[test]
    fn empty_history_is_linearizable() {
        assert!(check(&Counter, &[], Budget::unlimited()).is_linearizable());
    }

    #[test]
    fn sequential_history_is_checked_in_order() {
        let ops = [
            op(0, 0, Some(1), In::Inc, None),
            op(1, 2, Some(3), In::Get, Some(1)),
        ];
        assert_eq!(
            check(&Counter, &ops, Budget::unlimited()),
            Outcome::Linearizable(vec![0, 1])
        );
        let bad = [
            op(0, 0, Some(1), In::Inc, None),
            op(1, 2, Some(3), In::Get, Some(0)),
        ];
        match check(&Counter, &bad, Budget::unlimited()) {
            Outcome::NotLinearizable(c) => {
                assert_eq!(c.stuck, 1);
                assert_eq!(c.linearized, vec![0]);
                assert_eq!(c.state, 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn concurrent_operations_may_be_reordered() {
        // get overlaps inc and sees it already applied: fine.
        let ops = [
            op(0, 0, Some(10), In::Inc, None),
            op(1, 1, Some(5), In::Get, Some(1)),
        ];
        assert_eq!(
            check(&Counter, &ops, Budget::unlimited()),
            Outcome::Linearizable(vec![0, 1])
        );
    }

    #[test]
    fn operations_touching_in_time_count_as_concurrent() {
        let ops = [
            op(0, 0, Some(5), In::Inc, None),
            op(1, 5, Some(6), In::Get, Some(0)),
        ];
        assert!(check(&Counter, &ops, Budget::unlimited()).is_linearizable());
    }

    #[test]
    fn an_indeterminate_operation_may_take_effect_late_or_never() {
        // inc never returned; later gets see 0, then 1.
        let ops = [
            op(0, 0, None, In::Inc, None),
            op(1, 1, Some(2), In::Get, Some(0)),
            op(2, 3, Some(4), In::Get, Some(1)),
        ];
        assert!(check(&Counter, &ops, Budget::unlimited()).is_linearizable());
        let never = [
            op(0, 0, None, In::Inc, None),
            op(1, 1, Some(2), In::Get, Some(0)),
        ];
        assert!(check(&Counter, &never, Budget::unlimited()).is_linearizable());
        // ... but not twice.
        let twice = [
            op(0, 0, None, In::Inc, None),
            op(1, 1, Some(2), In::Get, Some(2)),
        ];
        assert!(!check(&Counter, &twice, Budget::unlimited()).is_linearizable());
    }

    #[test]
    fn interchangeable_operations_keep_the_search_small_and_the_answer_right() {
        // 60 timed-out incs of one class; a get sees 3 of them applied.
        let mut ops: Vec<_> = (0..60)
            .map(|i| Operation {
                class: Some(1),
                ..op(i, i, None, In::Inc, None)
            })
            .collect();
        ops.push(op(60, 100, Some(101), In::Get, Some(3)));
        let budget = Budget {
            max_steps: 100_000,
            deadline: None,
        };
        assert!(check(&Counter, &ops, budget).is_linearizable());
        // Impossible: more than were sent before the get returned.
        ops.push(op(61, 102, Some(103), In::Get, Some(61)));
        assert!(matches!(
            check(&Counter, &ops, budget),
            Outcome::NotLinearizable(_)
        ));
    }

    #[test]
    fn the_budget_gives_unknown() {
        let mut ops = Vec::new();
        for i in 0..40 {
            ops.push(op(i, 0, None, In::Inc, None));
        }
        ops.push(op(40, 1, Some(2), In::Get, Some(41)));
        let budget = Budget {
            max_steps: 1000,
            deadline: None,
        };
        assert!(matches!(
            check(&Counter, &ops, budget),
            Outcome::Unknown { .. }
        ));
    }
}
