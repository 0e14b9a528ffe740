//! [`Outcome`]: how one operation of a client ended, as the history
//! records it: `ok`, `fail` (certainly not applied) or `info`
//! (indeterminate). Every client (rsp's KV API, etcd's) answers with one.

/// How a request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    Ok(T),
    Fail(String),
    Info(String),
}
