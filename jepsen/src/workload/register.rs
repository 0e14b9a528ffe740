//! The `register` workload: reads (`GET ?consistency=linearizable`), writes
//! (`PUT`) and compare-and-sets (`POST /kv/txn` comparing the value) on a
//! few keys at once.
//!
//! Every written value is unique in the run, so a read names the write it
//! saw. A CAS expects the last value any client saw on that key, so many of
//! them succeed. After `ops_per_key` operations a key is retired and a fresh
//! one takes its place: each key's history stays small enough for the
//! linearizability search, and keys are checked independently.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::{OpCtx, WorkloadOptions};
use crate::checker::register::COMPARE_FAILED;
use crate::history::EventType;
use crate::outcome::Outcome;

struct Slot {
    key: String,
    issued: usize,
    /// The last value a client saw on the key (read or written).
    last: Option<i64>,
}

struct Pool {
    slots: Vec<Slot>,
    next_key: u64,
}

pub struct RegisterWorkload {
    prefix: String,
    ops_per_key: usize,
    pool: Mutex<Pool>,
    next_value: AtomicI64,
}

enum Choice {
    Read,
    Write,
    Cas(i64),
}

impl RegisterWorkload {
    pub fn new(opts: &WorkloadOptions) -> Self {
        let keys = opts.keys.max(1);
        let prefix = format!("{}/r", opts.prefix);
        let slots = (0..keys as u64)
            .map(|i| Slot {
                key: format!("{prefix}{i}"),
                issued: 0,
                last: None,
            })
            .collect();
        Self {
            prefix,
            ops_per_key: opts.ops_per_key.max(1),
            pool: Mutex::new(Pool {
                slots,
                next_key: keys as u64,
            }),
            next_value: AtomicI64::new(1),
        }
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn choose(&self, rng: &mut StdRng) -> (String, Choice) {
        let mut pool = self.pool();
        let i = rng.random_range(0..pool.slots.len());
        if pool.slots[i].issued >= self.ops_per_key {
            let key = format!("{}{}", self.prefix, pool.next_key);
            pool.next_key += 1;
            pool.slots[i] = Slot {
                key,
                issued: 0,
                last: None,
            };
        }
        let slot = &mut pool.slots[i];
        slot.issued += 1;
        let roll: f64 = rng.random();
        let choice = match (roll, slot.last) {
            (r, _) if r < 0.5 => Choice::Read,
            (r, Some(last)) if r >= 0.75 => Choice::Cas(last),
            _ => Choice::Write,
        };
        (slot.key.clone(), choice)
    }

    fn saw(&self, key: &str, value: Option<i64>) {
        let mut pool = self.pool();
        if let Some(slot) = pool.slots.iter_mut().find(|s| s.key == key) {
            slot.last = value;
        }
    }

    pub async fn step(&self, ctx: &OpCtx<'_>, rng: &mut StdRng) -> EventType {
        let (key, choice) = self.choose(rng);
        let k = Some(key.as_str());
        match choice {
            Choice::Read => {
                ctx.invoke("read", k, Value::Null);
                let outcome = match ctx.client.read(&key).await {
                    Outcome::Ok(None) => Outcome::Ok(None),
                    Outcome::Ok(Some(s)) => match s.parse::<i64>() {
                        Ok(v) => Outcome::Ok(Some(v)),
                        Err(_) => Outcome::Fail(format!("not a register value: {s:?}")),
                    },
                    Outcome::Fail(e) => Outcome::Fail(e),
                    Outcome::Info(e) => Outcome::Fail(e),
                };
                if let Outcome::Ok(v) = &outcome {
                    self.saw(&key, *v);
                }
                ctx.complete("read", k, &outcome, |v| json!(v))
            }
            Choice::Write => {
                let v = self.next_value.fetch_add(1, Ordering::Relaxed);
                ctx.invoke("write", k, json!(v));
                let outcome = ctx.client.write(&key, &v.to_string()).await;
                if matches!(outcome, Outcome::Ok(())) {
                    self.saw(&key, Some(v));
                }
                ctx.complete("write", k, &outcome, |_| json!(v))
            }
            Choice::Cas(from) => {
                let to = self.next_value.fetch_add(1, Ordering::Relaxed);
                ctx.invoke("cas", k, json!([from, to]));
                let outcome = match ctx
                    .client
                    .cas(&key, &from.to_string(), &to.to_string())
                    .await
                {
                    Outcome::Ok(true) => {
                        self.saw(&key, Some(to));
                        Outcome::Ok(())
                    }
                    Outcome::Ok(false) => Outcome::Fail(COMPARE_FAILED.to_string()),
                    Outcome::Fail(e) => Outcome::Fail(e),
                    Outcome::Info(e) => Outcome::Info(e),
                };
                ctx.complete("cas", k, &outcome, |_| json!([from, to]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn keys_are_retired_after_their_share_of_operations() {
        let w = RegisterWorkload::new(&WorkloadOptions {
            prefix: "p".into(),
            keys: 2,
            ops_per_key: 3,
            read_window: 1,
            ..WorkloadOptions::default()
        });
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..60 {
            let (key, _) = w.choose(&mut rng);
            *counts.entry(key).or_insert(0) += 1;
        }
        assert!(counts.values().all(|n| *n <= 3), "{counts:?}");
        assert!(counts.len() >= 20, "{counts:?}");
        assert!(counts.keys().all(|k| k.starts_with("p/r")));
    }

    #[test]
    fn cas_expects_the_last_value_seen() {
        let w = RegisterWorkload::new(&WorkloadOptions {
            prefix: "p".into(),
            keys: 1,
            ops_per_key: 1000,
            read_window: 1,
            ..WorkloadOptions::default()
        });
        w.saw("p/r0", Some(42));
        let mut rng = StdRng::seed_from_u64(1);
        let cas: Vec<i64> = (0..100)
            .filter_map(|_| match w.choose(&mut rng).1 {
                Choice::Cas(from) => Some(from),
                _ => None,
            })
            .collect();
        assert!(!cas.is_empty());
        assert!(cas.iter().all(|f| *f == 42));
    }
}
