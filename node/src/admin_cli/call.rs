//! One admin API call as a command describes it: method, path under
//! `/admin/v1`, query, body, and how its answer is shown to a person.

use clap::Args;
use reqwest::Method;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::exit::{CliResult, Failure};

/// A request to make, and how to show its answer.
pub struct Call {
    pub method: Method,
    /// Segments after `/admin/v1`, each percent-encoded on its own (so an
    /// entity id URL or a key with `/` stays one segment).
    pub path: Vec<String>,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Body>,
    pub view: View,
    /// Text the body carries (a policy set), to place Cedar's diagnostics.
    pub source: Option<String>,
}

/// A JSON request body.
pub enum Body {
    Json(Value),
    /// Serialized once from a value holding a secret; wiped when dropped.
    Secret(Zeroizing<Vec<u8>>),
}

impl Body {
    /// `value` serialized into a buffer that is wiped on drop. The buffer is
    /// reserved up front so that serializing does not leave copies behind in
    /// freed memory.
    pub fn secret(value: &impl serde::Serialize, secret_len: usize) -> CliResult<Body> {
        let mut buf = Zeroizing::new(Vec::with_capacity(4096 + 8 * secret_len));
        serde_json::to_writer(&mut *buf, value)
            .map_err(|e| Failure::usage(format!("cannot encode the request: {e}")))?;
        Ok(Body::Secret(buf))
    }
}

/// How a successful answer is shown in `--output table`.
pub enum View {
    /// One object: `key: value` lines; arrays of objects in it as tables.
    Object,
    /// A list: the answer itself, or the array under `field`, as a table.
    List {
        field: Option<&'static str>,
        columns: &'static [&'static str],
    },
    /// A paged list (`{"items", "next"}`) followed as `paging` says.
    Paged {
        columns: &'static [&'static str],
        paging: Paging,
    },
    /// An answer without a body worth showing: this line instead.
    Done(String),
}

/// `--limit`, `--after`, `--all` of a paged list.
#[derive(Args, Debug, Clone, Default)]
pub struct Paging {
    /// Items per page (the server's default when absent)
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Start after this cursor (the `next` of the previous page)
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
    /// Follow `next` cursors and show every page
    #[arg(long, conflicts_with = "after")]
    pub all: bool,
}

impl Call {
    fn new(method: Method, path: &[&str]) -> Call {
        Call {
            method,
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: None,
            view: View::Object,
            source: None,
        }
    }

    pub fn get(path: &[&str]) -> Call {
        Call::new(Method::GET, path)
    }

    pub fn post(path: &[&str], body: Option<Value>) -> Call {
        Call::new(Method::POST, path).body(body)
    }

    pub fn put(path: &[&str], body: Value) -> Call {
        Call::new(Method::PUT, path).body(Some(body))
    }

    pub fn patch(path: &[&str], body: Value) -> Call {
        Call::new(Method::PATCH, path).body(Some(body))
    }

    /// A `DELETE`; `done` is shown when the answer has no body.
    pub fn delete(path: &[&str], done: impl Into<String>) -> Call {
        Call::new(Method::DELETE, path).view(View::Done(done.into()))
    }

    fn body(mut self, body: Option<Value>) -> Call {
        self.body = body.map(Body::Json);
        self
    }

    pub fn secret_body(mut self, body: Body) -> Call {
        self.body = Some(body);
        self
    }

    pub fn view(mut self, view: View) -> Call {
        self.view = view;
        self
    }

    /// Shown as a list of `columns` (all fields when none of them occur).
    pub fn list(self, field: Option<&'static str>, columns: &'static [&'static str]) -> Call {
        self.view(View::List { field, columns })
    }

    pub fn paged(self, columns: &'static [&'static str], paging: Paging) -> Call {
        self.view(View::Paged { columns, paging })
    }

    pub fn query(mut self, key: &'static str, value: Option<impl ToString>) -> Call {
        if let Some(v) = value {
            self.query.push((key, v.to_string()));
        }
        self
    }

    pub fn source(mut self, text: String) -> Call {
        self.source = Some(text);
        self
    }

    /// `METHOD /admin/v1/...` for messages (segments as given, unencoded).
    pub fn describe(&self) -> String {
        format!("{} /admin/v1/{}", self.method, self.path.join("/"))
    }
}

/// `/admin/v1/tenants/{tenant}/...rest` as segments.
pub fn tenant_path<'a>(tenant: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut path = vec!["tenants", tenant];
    path.extend_from_slice(rest);
    path
}

/// Sets `body[key]` when `value` is given.
pub fn insert(body: &mut Value, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        body[key] = v.into();
    }
}

/// A change must change something.
pub fn nonempty(body: Value) -> CliResult<Value> {
    match body.as_object().is_some_and(Map::is_empty) {
        true => Err(Failure::usage("nothing to change: give at least one field")),
        false => Ok(body),
    }
}
